import Logging
import Netlink
import NicrouteCore
import ServiceLifecycle
import UnixSignals

/// Settings of the daemon that come from its command line.
public struct DaemonOptions: Sendable {
    public var configuration: ConfigurationLoader
    public var stateDirectory: String?
    /// How long the loop waits after the first event of a burst before it reads the kernel.
    public var coalescing: Duration

    public init(configuration: ConfigurationLoader, stateDirectory: String?, coalescing: Duration = .milliseconds(2)) {
        self.configuration = configuration
        self.stateDirectory = stateDirectory
        self.coalescing = coalescing
    }
}

/// nicrouted's event loop, as a swift-service-lifecycle `Service`.
///
/// Subscribe first, then dump and reconcile (so no event falls between the two), report
/// READY, then: wait for a relevant event, coalesce the burst, re-read the whole kernel picture
/// and reconcile against it. Level triggered: every pass starts from a fresh dump, so a lost
/// event (ENOBUFS) or a stale picture cannot mislead it.
public final class NicrouteDaemon: Service {
    let options: DaemonOptions
    let logger: Logger
    let notifier = Notifier()

    public init(options: DaemonOptions, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    public func run() async throws {
        var configuration = try options.configuration.load()
        let client = try RouteNetlink()
        let subscription = try RouteNetlinkSubscription(groups: MulticastGroup.routing + [.neighbor])
        let reconciler = Reconciler(
            client: client, configuration: configuration, store: StateStore(directory: options.stateDirectory),
            logger: logger)
        let box = TriggerBox()
        var lastChange = "none"
        var timer: Task<Void, Never>? = nil

        func pass(_ why: String) -> Reconciler.Report? {
            let now = monotonicSeconds()
            do {
                let report = try reconciler.reconcile(now: now)
                box.setInterest(
                    TriggerBox.Interest(
                        tables: configuration.tables, probes: Set(report.plan.neighborProbes.map(\.address)),
                        linkNames: Dictionary(report.plan.nics.map { ($0.link.index, $0.link.name) }, uniquingKeysWith: { a, _ in a }),
                        managed: Set(report.plan.nics.map(\.link.index))))
                timer?.cancel()
                if let at = report.retryAt {
                    let delay = max(at - now, 0.001)
                    timer = Task {
                        try? await Task.sleep(for: .seconds(delay))
                        if !Task.isCancelled { box.requestReconcile() }
                    }
                }
                logger.debug(
                    "reconciled", metadata: ["why": "\(why)", "changes": "\(report.applied.count)", "failed": "\(report.failed.count)"])
                return report
            } catch {
                logger.error("cannot read the kernel's state: \(error)")
                timer?.cancel()
                timer = Task {
                    try? await Task.sleep(for: .seconds(1))
                    if !Task.isCancelled { box.requestReconcile() }
                }
                return nil
            }
        }

        func statusLine(_ report: Reconciler.Report?) -> String {
            guard let report else { return "error reading kernel state, retrying" }
            let rules = report.plan.nics.reduce(0) { $0 + $1.addresses.count }
            var s = "\(report.plan.nics.count) NIC\(report.plan.nics.count == 1 ? "" : "s"), \(rules) rule\(rules == 1 ? "" : "s"), last change \(lastChange)"
            if !report.deferred.isEmpty { s += ", \(report.deferred.count) deferred (another tool deletes them)" }
            if !report.failed.isEmpty { s += ", \(report.failed.count) failed" }
            return s
        }

        let first = pass("startup")
        logger.info("ready", metadata: ["status": "\(statusLine(first))"])
        notifier.ready(status: statusLine(first))

        let signals = await UnixSignalsSequence(trapping: .sighup)
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await event in subscription { box.post(event) }
                }
                group.addTask {
                    for await _ in signals { box.requestReload() }
                }
                if let interval = notifier.watchdogInterval {
                    // The ping is sent by the loop itself (below), so a stuck loop stops pinging
                    // and systemd restarts the service.
                    group.addTask {
                        while !Task.isCancelled {
                            try? await Task.sleep(for: interval / 2)
                            box.requestWatchdog()
                        }
                    }
                }
                for await _ in box.wakes {
                    var pending = box.take()
                    if pending.watchdog {
                        notifier.watchdog()
                        pending.watchdog = false
                    }
                    guard pending.needsPass else { continue }
                    // Coalesce the burst: wait a few ms, then take what else arrived.
                    try? await Task.sleep(for: options.coalescing)
                    pending.merge(box.take())
                    if pending.watchdog { notifier.watchdog() }
                    if pending.resync { logger.warning("netlink messages were lost (ENOBUFS): full resync") }
                    if let change = pending.lastChange { lastChange = "\(wallClockTime()) \(change)" }
                    if pending.reload {
                        notifier.reloading()
                        do {
                            configuration = try options.configuration.load()
                            reconciler.update(configuration)
                            logger.notice("configuration reloaded")
                        } catch {
                            logger.error("configuration rejected, keeping the last good one: \(error)")
                        }
                    }
                    let report = pass(pending.reload ? "reload" : pending.resync ? "resync" : "events")
                    if pending.reload {
                        notifier.ready(status: statusLine(report))
                    } else {
                        notifier.status(statusLine(report))
                    }
                }
                subscription.cancel()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            box.finish()
        }
        timer?.cancel()
        notifier.stopping()
        logger.info("stopping; nicroute's rules and routes stay in place")
    }
}
