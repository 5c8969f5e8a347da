import ArgumentParser
import Logging
import Netlink
import NicrouteCore
import NicrouteDaemon

#if canImport(Glibc)
import Glibc
#endif

@main
struct Nicroutectl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nicroutectl",
        abstract: "Inspect and control nicroute's per-NIC routing tables and source rules.",
        discussion: """
            Talks to nicrouted over its control socket. When no daemon answers, status and plan are \
            computed here from the kernel, and reconfigure and flush (as root) act on the kernel \
            directly: the one-shot mode for images and scripts.

            Exit status: 0 success; 1 failure (a change failed, the daemon reported an error); \
            2 usage error; 3 nicrouted is not running and the one-shot mode needs root; \
            4 permission denied; 78 invalid configuration.
            """,
        version: "0.1.0",
        subcommands: [Status.self, Plan.self, Reconfigure.self, Flush.self],
        defaultSubcommand: Status.self)
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

    /// Asks the daemon; nil when none is running.
    func ask(_ command: ControlCommand) throws -> JSONValue? {
        let response: ControlResponse
        do { response = try ControlClient.send(ControlRequest(command), to: socketPath) } catch {
            if case .notRunning = error { return nil }
            throw CLIError("\(error)")
        }
        switch response {
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
    /// - Parameter configuration: nil reads the configuration files (an invalid one is an error).
    func reconciler(configuration: Configuration? = nil) throws -> Reconciler {
        DaemonLogging.bootstrap(level: .notice, identifier: "nicroutectl")
        return Reconciler(
            client: try RouteNetlink(), configuration: try configuration ?? loadConfiguration(),
            store: StateStore(directory: stateDir), logger: Logger(label: "nicroutectl"))
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
        @OptionGroup var shared: SharedOptions
        @Flag(name: .long, help: "Print the status as JSON.") var json = false

        func run() throws {
            try guarded {
                let report: StatusReport
                if let answer = try shared.ask(.status) {
                    report = try StatusReport(json: answer)
                } else {
                    let r = try shared.reconciler()
                    let snapshot = try r.client.snapshot()
                    let plan = r.plan(from: snapshot)
                    let rules = plan.nics.reduce(0) { $0 + $1.addresses.count }
                    report = StatusReport(
                        plan: plan, snapshot: snapshot, summary: "\(plan.nics.count) NICs, \(rules) rules",
                        fromDaemon: false,
                        findings: Preflight.findings(
                            plan: plan, inputs: SystemInspector().inputs(for: plan.nics.map(\.link.name))))
                }
                print(json ? report.json.serialized() : report.rendered())
            }
        }
    }

    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the changes a reconcile would make, as ip commands.")
        @OptionGroup var shared: SharedOptions
        @Flag(name: .long, help: "Print the plan as JSON.") var json = false

        func run() throws {
            try guarded {
                let output: PlanOutput
                if let answer = try shared.ask(.plan) {
                    output = PlanOutput(json: answer)
                } else {
                    let r = try shared.reconciler()
                    let snapshot = try r.client.snapshot()
                    output = PlanOutput(plan: r.plan(from: snapshot), snapshot: snapshot)
                }
                if json {
                    print(output.json.serialized())
                } else {
                    for change in output.changes { print(change) }
                    for conflict in output.conflicts { printError("left alone: \(conflict)") }
                }
            }
        }
    }

    struct Reconfigure: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reload the configuration and reconcile now (without a daemon: one pass as root, then exit).")
        @OptionGroup var shared: SharedOptions

        func run() throws {
            try guarded {
                let output: ApplyOutput
                if let answer = try shared.ask(.reconfigure) {
                    output = ApplyOutput(json: answer)
                } else {
                    try shared.requireRoot("the one-shot reconfigure")
                    let reconciler = try shared.reconciler()
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
                for line in output.applied { print(line) }
                for line in output.failed { printError("failed: \(line)") }
                print(
                    "\(output.applied.count) change(s) applied, \(output.failed.count) failed; \(output.nics) NIC(s) managed."
                )
                if !output.failed.isEmpty { throw CLIError("some changes failed", code: 1) }
            }
        }
    }

    struct Flush: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove every rule and route nicroute owns (a running daemon then pauses until reconfigure).")
        @OptionGroup var shared: SharedOptions

        func run() throws {
            try guarded {
                let removed: [String]
                if let answer = try shared.ask(.flush) {
                    removed = answer["removed"]?.arrayValue?.compactMap(\.stringValue) ?? []
                } else {
                    try shared.requireRoot("flush")
                    // What nicroute owns is told by the routing protocol alone, whatever the
                    // configuration says: an invalid file must not keep a flush (or a package's
                    // removal) from cleaning up.
                    removed = try shared.reconciler(configuration: Configuration()).flush()
                }
                for line in removed { print(line) }
                print("\(removed.count) object(s) removed.")
            }
        }
    }
}
