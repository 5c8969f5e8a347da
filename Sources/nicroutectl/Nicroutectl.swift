import ArgumentParser
import Logging
import Netlink
import NicrouteCore
import NicrouteDaemon

@main
struct Nicroutectl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nicroutectl",
        abstract: "Inspect and control nicroute's per-NIC routing tables and rules.",
        version: "0.1.0",
        subcommands: [Status.self, Plan.self, Reconfigure.self, Flush.self],
        defaultSubcommand: Status.self)
}

/// Options every subcommand shares: where the configuration and state live.
struct SharedOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Configuration file (drop-ins in PATH.d/).", valueName: "path"))
    var config: String?
    @Option(name: .long, help: ArgumentHelp("State directory holding the NIC slot table.", valueName: "path"))
    var stateDir: String?
    @Option(name: .long, help: ArgumentHelp("Interface patterns to manage instead of the default selection.", valueName: "glob[,glob...]"))
    var manage: [String] = []

    /// A reconciler over the kernel, with the loaded configuration.
    func reconciler() throws -> Reconciler {
        DaemonLogging.bootstrap(level: .notice, identifier: "nicroutectl")
        let configuration: Configuration
        do {
            configuration = try ConfigurationLoader(configPath: config, manage: manage).load()
        } catch {
            throw CLIError("invalid configuration: \(error)", code: 78)
        }
        return Reconciler(
            client: try RouteNetlink(), configuration: configuration, store: StateStore(directory: stateDir),
            logger: Logger(label: "nicroutectl"))
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

func printError(_ s: String) {
    var err = StandardError()
    print("nicroutectl: \(s)", to: &err)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandleLite.writeStderr(string)
    }
}

extension Nicroutectl {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show managed NICs: addresses, gateway and its source, table, rules.")
        @OptionGroup var shared: SharedOptions

        func run() throws {
            try guarded {
                let r = try shared.reconciler()
                let snapshot = try r.client.snapshot()
                let plan = try r.plan()
                if plan.nics.isEmpty { print("No managed NICs.") }
                for nic in plan.nics {
                    let rules = snapshot.rules.filter { Planner.isOwned($0) && $0.table == nic.table }.count
                    print("● \(nic.link.name) (\(nic.link.mac?.description ?? "no MAC"), \(nic.link.operationalState))")
                    print("      Table: \(nic.table)  Priority: \(nic.priority)  Rules: \(rules) of \(nic.addresses.count)")
                    print("  Addresses: \(nic.addresses.map { $0.prefix.description }.joined(separator: " "))")
                    for family in AddressFamily.allCases where nic.addresses.contains(where: { $0.family == family }) {
                        let label = family == .inet ? "IPv4 gateway" : "IPv6 gateway"
                        if let g = nic.gateway(family) {
                            print("  \(label): \(g.gateway) (from \(g.source.rawValue))")
                        } else {
                            print("  \(label): none")
                        }
                    }
                    for note in nic.notes { print("       Note: \(note)") }
                }
                if !plan.changes.isEmpty {
                    print("\n\(plan.changes.count) change(s) pending: see 'nicroutectl plan'.")
                }
            }
        }
    }

    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the changes a reconcile would make, as ip commands.")
        @OptionGroup var shared: SharedOptions

        func run() throws {
            try guarded {
                let r = try shared.reconciler()
                let snapshot = try r.client.snapshot(includeNeighbors: false)
                let plan = try r.plan()
                let names = Dictionary(snapshot.links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
                for change in plan.changes { print(change.ipCommand(linkName: { names[$0] })) }
                for conflict in plan.conflicts { printError("left alone: \(conflict)") }
            }
        }
    }

    struct Reconfigure: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-read everything and reconcile now (one pass, then exit).")
        @OptionGroup var shared: SharedOptions

        func run() throws {
            try guarded {
                let r = try shared.reconciler()
                let report = try r.reconcile(now: 0)
                print("\(report.applied.count) change(s) applied, \(report.failed.count) failed; \(report.plan.nics.count) NIC(s) managed.")
                if !report.failed.isEmpty { throw ExitCode(1) }
            }
        }
    }

    struct Flush: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove every rule and route nicroute owns.")
        @OptionGroup var shared: SharedOptions

        func run() throws {
            try guarded {
                let r = try shared.reconciler()
                let removed = try r.flush()
                print("\(removed.count) object(s) removed.")
            }
        }
    }
}
