import ArgumentParser
import Logging
import Netlink
import NicrouteCore
import NicrouteDaemon

#if canImport(Glibc)
import Glibc
#endif

struct Nicroutectl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nicroutectl",
        abstract: "Inspect and control nicroute's per-NIC routing tables and source rules.",
        discussion: """
            Talks to nicrouted over its control socket. When no daemon answers, status, plan and check \
            are computed here from the kernel, and reconfigure and flush (as root) act on the kernel \
            directly: the one-shot mode for images and scripts. Options may come before or after the \
            command, as with systemctl and networkctl.

            Exit status: 0 success (check: every address answers through its own NIC); 1 failure (a \
            change failed, the daemon reported an error, check found an address that does not \
            answer through its own NIC); 2 usage error; 3 nicrouted is not running and the one-shot \
            mode needs root; 4 permission denied; 78 invalid configuration.
            """,
        version: "0.1.0",
        subcommands: [Status.self, Plan.self, Check.self, Reconfigure.self, Flush.self],
        defaultSubcommand: Status.self)

    // Every option is declared here too, so that it may precede the command; each command
    // declares the groups that apply to it, and refuses the others (`refuseOptions`).
    @OptionGroup var shared: SharedOptions
    @OptionGroup var format: FormatOptions
    @OptionGroup var verbosity: VerbosityOptions
    @OptionGroup var destinations: DestinationOptions

    /// Usage errors exit with 2, as documented (swift-argument-parser's own is 64, EX_USAGE).
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                FileHandleLite.writeStderr(fullMessage(for: error) + "\n")
                Glibc.exit(usageExitCode)
            }
            exit(withError: error)
        }
    }

    static let usageExitCode: Int32 = 2

    /// Throws a usage error for an option given before a command it does not apply to.
    func refuseOptions(for command: String, json: Bool = false, verbosity: Bool = false, to: Bool = false) throws {
        if !json, format.json { throw ValidationError("'--json' does not apply to '\(command)'") }
        if !verbosity, self.verbosity.quiet || self.verbosity.verbose {
            throw ValidationError("'--quiet' and '--verbose' do not apply to '\(command)'")
        }
        if !to, !destinations.to.isEmpty { throw ValidationError("'--to' does not apply to '\(command)'") }
    }
}

/// `--json`.
struct FormatOptions: ParsableArguments {
    @Flag(name: .long, help: "Print JSON (status, plan, check).") var json = false
}

/// `-q`, `-v`.
struct VerbosityOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Print nothing but errors (reconfigure, flush, check).") var quiet = false
    @Flag(name: .shortAndLong, help: "Also log on stderr what is done (reconfigure, flush, check).") var verbose = false

    func validate() throws {
        if quiet && verbose { throw ValidationError("'--quiet' and '--verbose' exclude each other") }
    }

    /// The log level for the one-shot mode: nothing below critical unless asked.
    var logLevel: Logger.Level { verbose ? .debug : .critical }
}

/// `--to`.
struct DestinationOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "For check: the outside destination, one per family (default: 192.0.2.1 and 2001:db8::1).",
            valueName: "address"))
    var to: [IPAddress] = []

    func validate() throws {
        for family in AddressFamily.allCases where to.filter({ $0.family == family }).count > 1 {
            throw ValidationError("'--to' takes one \(family == .inet ? "IPv4" : "IPv6") destination")
        }
    }

    var byFamily: [AddressFamily: IPAddress] {
        Dictionary(to.map { ($0.family, $0) }, uniquingKeysWith: { a, _ in a })
    }
}

extension IPAddress: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

/// Options every subcommand shares.
struct SharedOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("nicrouted's control socket.", valueName: "path"))
    var controlSocket: String?
    @Option(
        name: .long,
        help: ArgumentHelp("Configuration file for the one-shot mode (drop-ins in PATH.d/).", valueName: "path"))
    var config: String?
    @Option(name: .long, help: ArgumentHelp("State directory for the one-shot mode.", valueName: "path"))
    var stateDir: String?
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Interface patterns for the one-shot mode, instead of the default selection.", valueName: "glob[,glob...]"))
    var manage: [String] = []

    func loadConfiguration() throws -> Configuration {
        do {
            return try ConfigurationLoader(configPath: config, manage: manage).load()
        } catch {
            throw CLIError("invalid configuration: \(error)", code: 78)
        }
    }

    /// The socket path: `--control-socket`, else the configuration's.
    var socketPath: String {
        controlSocket ?? (try? ConfigurationLoader(configPath: config, manage: []).load())?.controlSocket
            ?? Configuration().controlSocket
    }

    /// Asks the daemon: `call`'s result, as its type; nil when no daemon is running.
    func ask<Output>(_ call: ControlCall<Output>) throws -> Output? {
        let answer: Result<Output, ControlError>
        do { answer = try ControlClient.send(call, to: socketPath) } catch {
            if case .notRunning = error { return nil }
            throw CLIError("\(error)")
        }
        switch answer {
        case .success(let result): return result
        case .failure(let e):
            let code: Int32 =
                switch e.code {
                case .permissionDenied: 4
                case .invalidConfiguration: 78
                default: 1
                }
            throw CLIError(e.message, code: code)
        }
    }

    /// A reconciler over the kernel for the one-shot mode.
    ///
    /// - Parameters:
    ///   - configuration: nil reads the configuration files (an invalid one is an error).
    ///   - logLevel: what the reconciler logs on stderr (nothing unless `--verbose`).
    func reconciler(configuration: Configuration? = nil, logLevel: Logger.Level = .critical) throws -> Reconciler {
        DaemonLogging.bootstrap(level: logLevel, identifier: "nicroutectl")
        return Reconciler(
            client: try RouteNetlink(), configuration: try configuration ?? loadConfiguration(),
            store: StateStore(directory: stateDir), logger: Logger(label: "nicroutectl"))
    }

    /// The daemon's status report, or one computed here when no daemon runs.
    func statusReport(logLevel: Logger.Level = .critical) throws -> StatusReport {
        if let report = try ask(.status) { return report }
        let r = try reconciler(logLevel: logLevel)
        let snapshot = try r.snapshot()
        let plan = r.plan(from: snapshot)
        let rules = plan.nics.reduce(0) { $0 + $1.addresses.count }
        return StatusReport(
            plan: plan, snapshot: snapshot, summary: "\(plan.nics.count) NICs, \(rules) rules", fromDaemon: false,
            findings: Preflight.findings(plan: plan, inputs: r.preflightInputs(plan: plan, snapshot: snapshot)),
            forwarding: r.forwardingStatus(observe: true))
    }

    /// One-shot changes need root.
    func requireRoot(_ what: String) throws {
        guard geteuid() == 0 else {
            throw CLIError("nicrouted is not running (\(socketPath)), and \(what) without it needs root", code: 3)
        }
    }
}

struct CLIError: Error, CustomStringConvertible {
    var description: String
    var code: Int32
    init(_ d: String, code: Int32 = 1) {
        description = d
        self.code = code
    }
}

/// Runs `body`, printing errors as `nicroutectl: ...` with a meaningful exit code.
func guarded(_ body: () throws -> Void) throws {
    do { try body() } catch let e as CLIError {
        printError(e.description)
        throw ExitCode(e.code)
    } catch let e as NetlinkError {
        printError("\(e)")
        throw ExitCode(e.errno == .notPermitted ? 4 : 1)
    }
}

func printError(_ s: String) { FileHandleLite.writeStderr("nicroutectl: \(s)\n") }

extension Nicroutectl {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Show managed NICs: addresses, gateway and its source, table, rules, last change; then preflight findings."
        )
        @ParentCommand var root: Nicroutectl
        @OptionGroup var shared: SharedOptions
        @OptionGroup var format: FormatOptions

        func validate() throws { try root.refuseOptions(for: "status", json: true) }

        func run() throws {
            try guarded {
                let report = try shared.statusReport()
                print(format.json ? JSONCoding.encodeString(report) : report.rendered())
            }
        }
    }

    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the changes a reconcile would make, as ip commands.")
        @ParentCommand var root: Nicroutectl
        @OptionGroup var shared: SharedOptions
        @OptionGroup var format: FormatOptions

        func validate() throws { try root.refuseOptions(for: "plan", json: true) }

        func run() throws {
            try guarded {
                let output: PlanOutput
                if let answer = try shared.ask(.plan) {
                    output = answer
                } else {
                    let r = try shared.reconciler()
                    let snapshot = try r.snapshot()
                    output = PlanOutput(plan: r.plan(from: snapshot), snapshot: snapshot)
                }
                if format.json {
                    print(JSONCoding.encodeString(output))
                } else {
                    for change in output.changes { print(change) }
                    for conflict in output.conflicts { printError("left alone: \(conflict)") }
                }
            }
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask the kernel whether each managed address answers through its own NIC.",
            discussion: """
                For each managed address A on NIC I (or each ADDRESS named), two route lookups: where a \
                reply from A to an outside destination D goes (ip route get D from A), and what becomes \
                of a packet from D to A that arrives on I (ip route get A from D iif I: reverse-path \
                filtering refuses it when the way back does not go out through I). An address passes \
                when the reply leaves through I via I's gateway and the request is accepted; otherwise \
                the line says why: no rule, no default route in its table, gateway unconfirmed, a \
                foreign rule of higher priority wins, rp_filter would drop the request, NIC not \
                managed, not an address of this host. Local routes a NIC answers for (a forwarded IP \
                as GCE's agent installs it, an AnyIP range) are checked too, from an address inside \
                each prefix.

                Not checked here: replies to connections forwarded to containers or guests behind this \
                host (Docker ports, DNAT). They carry the container's source address, which no source \
                rule matches; nicroute routes them by a connection mark and one fwmark rule per NIC \
                ([Routing] ForwardedConnections=), and status shows whether that is in place.

                Prints one line per address, ok or FAIL, its NIC, the address, where the reply goes and \
                why that is wrong when it is; then a count. With --json, an object with ok and one \
                result per address (reasons as keywords: no-rule, foreign-rule, no-default, \
                gateway-unconfirmed, wrong-gateway, wrong-interface, no-route, rp-filter, \
                request-not-local, not-managed, not-local).

                Read-only and allowed to every user; works with and without nicrouted (the managed \
                NICs come from the daemon, else from the configuration). Exit status 0 when every \
                address passes, 1 when one does not or there is none to check.
                """)
        @ParentCommand var root: Nicroutectl
        @OptionGroup var shared: SharedOptions
        @OptionGroup var format: FormatOptions
        @OptionGroup var verbosity: VerbosityOptions
        @OptionGroup var destinations: DestinationOptions
        @Argument(help: ArgumentHelp("Addresses to check (default: every managed address).", valueName: "address"))
        var addresses: [IPAddress] = []

        func validate() throws { try root.refuseOptions(for: "check", json: true, verbosity: true, to: true) }

        func run() throws {
            try guarded {
                let report = try shared.statusReport(logLevel: verbosity.logLevel)
                let verdicts = try RouteChecker(client: try RouteNetlink()).check(
                    report: report, addresses: addresses.isEmpty ? nil : addresses,
                    destinations: destinations.byFamily)
                if !verbosity.quiet {
                    print(format.json ? RouteCheck.json(verdicts) : RouteCheck.rendered(verdicts))
                }
                if verdicts.isEmpty || !verdicts.allSatisfy(\.ok) { throw ExitCode(1) }
            }
        }
    }

    struct Reconfigure: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reload the configuration and reconcile now (without a daemon: one pass as root, then exit).",
            discussion: """
                Prints each change made, one line each in the form of the equivalent ip command, then \
                a count; failures go to stderr.
                """)
        @ParentCommand var root: Nicroutectl
        @OptionGroup var shared: SharedOptions
        @OptionGroup var verbosity: VerbosityOptions

        func validate() throws { try root.refuseOptions(for: "reconfigure", verbosity: true) }

        func run() throws {
            try guarded {
                let output: ApplyOutput
                if let answer = try shared.ask(.reconfigure) {
                    output = answer
                } else {
                    try shared.requireRoot("the one-shot reconfigure")
                    let reconciler = try shared.reconciler(logLevel: verbosity.logLevel)
                    var report = try reconciler.reconcile(now: 0)
                    // A first-host gateway is usable once it answers the probe just sent:
                    // give it a moment, then plan once more (bounded: one extra pass).
                    if !report.plan.neighborProbes.isEmpty {
                        usleep(1_000_000)
                        let applied = report.applied
                        report = try reconciler.reconcile(now: 1)
                        report.applied = applied + report.applied
                    }
                    output = ApplyOutput(report: report)
                }
                for line in output.failed { printError("failed: \(line)") }
                if !verbosity.quiet {
                    for line in output.applied { print(line) }
                    print(
                        "\(output.applied.count) change(s) applied, \(output.failed.count) failed; \(output.nics) NIC(s) managed."
                    )
                }
                if !output.failed.isEmpty { throw CLIError("some changes failed", code: 1) }
            }
        }
    }

    struct Flush: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove every rule and route nicroute owns (a running daemon then pauses until reconfigure).",
            discussion: """
                Prints each object removed, one line each in the form of the equivalent ip command, \
                then a count. A src_valid_mark it set and cannot put back (a read-only /proc/sys) is \
                named on stderr and kept in the state directory for the next flush; the exit status \
                is then 1.
                """)
        @ParentCommand var root: Nicroutectl
        @OptionGroup var shared: SharedOptions
        @OptionGroup var verbosity: VerbosityOptions

        func validate() throws { try root.refuseOptions(for: "flush", verbosity: true) }

        func run() throws {
            try guarded {
                let removed: [String]
                var problems: [String] = []
                if let answer = try shared.ask(.flush) {
                    removed = answer.removed
                    problems = answer.problems
                } else {
                    try shared.requireRoot("flush")
                    // What nicroute owns is told by the routing protocol alone, whatever the
                    // configuration says: an invalid file must not keep a flush (or a package's
                    // removal) from cleaning up.
                    let reconciler = try shared.reconciler(configuration: Configuration(), logLevel: verbosity.logLevel)
                    removed = try reconciler.flush()
                    problems = reconciler.flushProblems
                }
                if !verbosity.quiet {
                    for line in removed { print(line) }
                    print("\(removed.count) object(s) removed.")
                }
                // A setting it could not put back (a read-only /proc/sys): said, and a failure, so
                // that scripts (the packages' removal) see that not everything was undone.
                if !problems.isEmpty {
                    for p in problems.dropLast() { printError(p) }
                    throw CLIError(problems[problems.count - 1], code: 1)
                }
            }
        }
    }
}
