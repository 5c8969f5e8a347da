import ArgumentParser
import Logging
import NicrouteCore
import NicrouteDaemon

#if canImport(Glibc)
import Glibc
#endif

struct Nicrouted: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nicrouted",
        abstract: "Keep per-NIC routing tables and source rules so replies leave through the NIC they came in on.",
        discussion: """
            Runs in the foreground (systemd Type=notify). Listens to rtnetlink link, address, \
            route and rule events, gives each managed NIC its own routing table and adds \
            `ip rule from ADDRESS lookup TABLE` for each of its addresses. Objects it installs carry \
            routing protocol 110 ("nicroute"); it never changes anything else. A NIC whose udev \
            database carries NICROUTE_MANAGE=0 (or no, false, off) is not managed, whatever --manage \
            and the configuration say; while udev runs, a new NIC waits until udev has processed it. \
            SIGHUP reloads the configuration (an invalid file is refused and the last good one kept). \
            Logs go to stderr.
            """,
        version: "0.1.0")

    @Option(
        name: .long, help: ArgumentHelp("Configuration file; drop-ins are read from PATH.d/*.conf.", valueName: "path"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("State directory holding the NIC slot table.", valueName: "path"))
    var stateDir: String?

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Interface name patterns or MAC addresses to manage, replacing the default selection of physical NICs (comma separated; repeatable).",
            valueName: "glob[,glob...]"))
    var manage: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Control socket path (default: [Control] Socket=, /run/nicroute/control.sock).", valueName: "path"))
    var controlSocket: String?

    @Option(
        name: .long, help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error.", valueName: "level"))
    var logLevel: String = "info"

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Milliseconds to wait after the first event of a burst before acting (0: act at once, on what has arrived; what arrives during a pass makes one more pass).",
            valueName: "ms"))
    var coalesceMs: Int = 0

    @Flag(name: .long, help: "Check the configuration, print it, and exit.")
    var checkConfig = false

    /// Blocks the signals the event loop takes before anything else runs, and refuses to start
    /// when the command line cannot be read.
    ///
    /// Without /proc (a chroot), Swift's `CommandLine.arguments` comes back empty: parsed as
    /// no arguments, `nicrouted --version` would start the daemon.
    static func main() {
        EventLoop.blockSignals(NicrouteDaemon.signals)
        guard !CommandLine.arguments.isEmpty else {
            let message = "nicrouted: cannot read the command line (is /proc mounted?); not starting\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
            Glibc.exit(2)
        }
        main(nil)
    }

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("invalid --log-level '\(logLevel)': use trace, debug, info, notice, warning or error")
        }
        guard (0...1000).contains(coalesceMs) else { throw ValidationError("--coalesce-ms must be within 0...1000") }
    }

    func run() throws {
        DaemonLogging.bootstrap(level: Logger.Level(rawValue: logLevel) ?? .info, identifier: "nicrouted")
        let logger = Logger(label: "nicrouted")
        let loader = ConfigurationLoader(configPath: config, manage: manage)
        do {
            let configuration = try loader.load()
            if checkConfig {
                print(
                    "configuration OK: tables \(configuration.tables), priorities \(configuration.priorities), IPv6 \(configuration.ipv6 ? "on" : "off"), manage \(configuration.manage.isEmpty ? "physical NICs" : configuration.manage.map(\.description).joined(separator: " "))"
                )
                return
            }
        } catch {
            logger.error("invalid configuration: \(error)")
            throw ExitCode(78)  // EX_CONFIG
        }
        let daemon = NicrouteDaemon(
            options: DaemonOptions(
                configuration: loader, stateDirectory: stateDir, coalescing: .milliseconds(coalesceMs),
                controlSocket: controlSocket),
            logger: logger)
        do {
            try daemon.run()
        } catch {
            logger.error("fatal: \(error)")
            throw ExitCode.failure
        }
    }
}
