import Logging
import Netlink
import NicrouteCore
import ServiceLifecycle
import Synchronization
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// Settings of the daemon that come from its command line.
public struct DaemonOptions: Sendable {
    public var configuration: ConfigurationLoader
    public var stateDirectory: String?
    /// How long the loop waits after the first event of a burst before it reads the kernel.
    public var coalescing: Duration
    /// Overrides the configuration's control socket path (`--control-socket`).
    public var controlSocket: String?

    public init(
        configuration: ConfigurationLoader, stateDirectory: String?, coalescing: Duration = .milliseconds(2),
        controlSocket: String? = nil
    ) {
        self.configuration = configuration
        self.stateDirectory = stateDirectory
        self.coalescing = coalescing
        self.controlSocket = controlSocket
    }
}

/// nicrouted's event loop, as a swift-service-lifecycle `Service`.
///
/// Subscribe first, then dump and reconcile (so no event falls between the two), open the
/// control socket, report READY, then: wait for a relevant event, a signal, a control request
/// or a timer; coalesce the burst; re-read the whole kernel picture and reconcile against it.
/// Level triggered: every pass starts from a fresh dump, so a lost event (ENOBUFS) or a stale
/// picture cannot mislead it. The loop is the only user of the `Reconciler`.
public final class NicrouteDaemon: Service {
    let options: DaemonOptions
    let logger: Logger
    let notifier = Notifier()

    public init(options: DaemonOptions, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// The loop's state between passes.
    private final class LoopState {
        var configuration: Configuration
        var paused = false
        var lastChange = "none"
        var linkChanges: [String: String] = [:]
        var lastReport: Reconciler.Report?
        var timer: Task<Void, Never>?
        /// The last STATUS= sent, so an unchanged line is not sent again.
        var sentStatus = ""
        /// Preflight findings already logged, so each is logged once while it holds.
        var loggedFindings: Set<String> = []
        /// The NICs and subnets the findings were last computed for (not on every pass: the
        /// check reads /proc); nil forces a new check.
        var findingsKey: [FindingsKey]?
        init(configuration: Configuration) { self.configuration = configuration }
    }

    public func run() async throws {
        let state = LoopState(configuration: try options.configuration.load())
        let client = try RouteNetlink()
        let box = TriggerBox()
        let subscription = try RouteNetlinkSubscription(
            groups: MulticastGroup.routing + [.neighbor], filter: box.filter)
        let reconciler = Reconciler(
            client: client, configuration: state.configuration, store: StateStore(directory: options.stateDirectory),
            logger: logger)
        let logger = self.logger
        let notifier = self.notifier

        func schedule(after seconds: Double) {
            state.timer?.cancel()
            state.timer = Task {
                try? await ExecutorSleep.sleep(for: .seconds(max(seconds, 0.001)))
                if !Task.isCancelled { box.requestReconcile() }
            }
        }

        func pass(_ why: String, addressesOnly: Bool = false) {
            guard !state.paused else { return }
            let now = monotonicSeconds()
            do {
                let report = try reconciler.reconcile(now: now, addressesOnly: addressesOnly)
                state.lastReport = report
                box.setInterest(
                    TriggerBox.Interest(
                        tables: state.configuration.tables, probes: Set(report.plan.neighborProbes.map(\.address)),
                        linkNames: Dictionary(
                            report.snapshot.links.filter { reconciler.planner.isManaged($0) }.map {
                                ($0.index, $0.name)
                            },
                            uniquingKeysWith: { a, _ in a }),
                        managed: Set(report.plan.nics.map(\.link.index))))
                state.timer?.cancel()
                if let at = report.retryAt { schedule(after: at - now) }
                logFindings(report.plan)
                let t = report.timings
                logger.debug(
                    "reconciled",
                    metadata: [
                        "why": "\(why)", "changes": "\(report.applied.count)", "failed": "\(report.failed.count)",
                        "duration_us": "\(Int((monotonicSeconds() - now) * 1e6))", "snapshot_us": "\(t.snapshot)",
                        "plan_us": "\(t.plan)", "apply_us": "\(t.apply)", "read": "\(report.read.rawValue)",
                    ])
            } catch {
                state.lastReport = nil
                logger.error("cannot read the kernel's state: \(error)")
                schedule(after: 1)
            }
        }

        /// Logs each preflight finding once, as a warning, when it first appears.
        func logFindings(_ plan: Plan) {
            let key = plan.nics.map { nic in
                FindingsKey(
                    name: nic.link.name,
                    subnets: Set(nic.addresses.filter { $0.family == .inet && !$0.prefix.isHost }.map(\.subnet))
                        .sorted())
            }
            guard key != state.findingsKey else { return }
            state.findingsKey = key
            let findings = Preflight.findings(
                plan: plan,
                inputs: reconciler.preflightInputs(plan: plan, snapshot: state.lastReport?.snapshot ?? KernelSnapshot())
            )
            let messages = Set(findings.map(\.message))
            for message in messages.subtracting(state.loggedFindings).sorted() {
                logger.warning("preflight: \(message)")
            }
            state.loggedFindings = messages
        }

        /// Sends READY=1 with the current STATUS= (after startup and after a reload).
        func announceReady() {
            state.sentStatus = statusLine()
            notifier.ready(status: state.sentStatus)
        }

        /// Sends STATUS= when it changed.
        func updateStatus() {
            let line = statusLine()
            guard line != state.sentStatus else { return }
            state.sentStatus = line
            notifier.status(line)
        }

        func statusLine() -> String {
            if state.paused { return "paused after flush; nothing installed" }
            guard let report = state.lastReport else { return "error reading kernel state, retrying" }
            let nics = report.plan.nics.count
            let rules = report.plan.nics.reduce(0) { $0 + $1.addresses.count }
            var s =
                "\(nics) NIC\(nics == 1 ? "" : "s"), \(rules) rule\(rules == 1 ? "" : "s"), last change \(state.lastChange)"
            if !report.deferred.isEmpty { s += ", \(report.deferred.count) deferred (another tool deletes them)" }
            if !report.failed.isEmpty { s += ", \(report.failed.count) failed" }
            return s
        }

        /// Reloads the configuration; on error keeps the last good one and says why.
        func reload() -> ConfigurationError? {
            do {
                let previous = state.configuration
                state.configuration = try options.configuration.load()
                if previous.controlSocket != state.configuration.controlSocket
                    || previous.controlGroup != state.configuration.controlGroup
                {
                    logger.warning("[Control] Socket= and Group= take effect at the next restart")
                }
                reconciler.update(state.configuration)
                logger.notice("configuration reloaded")
                return nil
            } catch {
                logger.error("configuration rejected, keeping the last good one: \(error)")
                return error
            }
        }

        func control(_ command: ControlCommand) -> ControlResponse {
            do {
                switch command {
                case .status:
                    let snapshot = try client.snapshot()
                    let plan = reconciler.plan(from: snapshot)
                    let findings = Preflight.findings(
                        plan: plan, inputs: reconciler.preflightInputs(plan: plan, snapshot: snapshot))
                    let report = StatusReport(
                        plan: plan, snapshot: snapshot, summary: statusLine(), fromDaemon: true, paused: state.paused,
                        deferred: state.lastReport?.deferred.count ?? 0, lastChanges: state.linkChanges,
                        findings: findings, forwarding: reconciler.forwardingStatus)
                    return .success(report.json)
                case .plan:
                    let snapshot = try client.snapshot()
                    return .success(PlanOutput(plan: reconciler.plan(from: snapshot), snapshot: snapshot).json)
                case .reconfigure:
                    notifier.reloading()
                    defer { announceReady() }
                    if let error = reload() {
                        return .failure(
                            ControlError(.invalidConfiguration, "\(error); keeping the last good configuration"))
                    }
                    state.paused = false
                    pass("reconfigure")
                    guard let report = state.lastReport else {
                        return .failure(ControlError(.failed, "cannot read the kernel's state"))
                    }
                    return .success(ApplyOutput(report: report).json)
                case .flush:
                    state.paused = true
                    state.timer?.cancel()
                    let removed = try reconciler.flush()
                    updateStatus()
                    return .success(["removed": .array(removed.map(JSONValue.string))])
                }
            } catch {
                return .failure(ControlError(.failed, "\(error)"))
            }
        }

        let controlPath = options.controlSocket ?? state.configuration.controlSocket
        // The service's own uid (for ExecReload=) only when systemd started us: a daemon started
        // by hand as a shared user (nobody) must not hand that user's other processes the keys.
        var policy = ControlPolicy(serviceUID: getenv("INVOCATION_ID") != nil ? getuid() : nil)
        if let name = state.configuration.controlGroup {
            if let group = getgrnam(name) {
                policy.group = (name, group.pointee.gr_gid)
            } else {
                logger.warning("control group '\(name)' does not exist: only root may change things")
            }
        }
        let server: ControlServer?
        do {
            server = try ControlServer(
                path: controlPath, service: ControlService(policy: policy, backend: LoopBackend(box: box)))
        } catch let error as ControlSocketError where error.anotherDaemon {
            // Two daemons would fight over the same objects: the second one refuses to run.
            logger.critical("\(error.operation)")
            throw error
        } catch {
            server = nil
            logger.error("control socket unavailable, nicroutectl cannot reach the daemon: \(error)")
        }
        // nftables changes (forwarded connections: nicroute's table is put back when deleted).
        // Held for the daemon's lifetime; without it, reconcile passes and the periodic check
        // still put the table back.
        let nftWatch: NftablesWatch?
        do { nftWatch = try NftablesWatch(changed: { box.requestReconcile() }) } catch {
            nftWatch = nil
            logger.warning(
                "nftables changes are not watched (\(error)): nicroute's table is checked every 10 s instead")
        }
        let pollNftables = nftWatch == nil
        // Trap SIGHUP before the first pass: its default action would end the daemon.
        let signals = await UnixSignalsSequence(trapping: .sighup)
        pass("startup")
        logger.info("ready", metadata: ["status": "\(statusLine())", "control": "\(controlPath)"])
        announceReady()

        let subscriptionLost = SharedFlag()
        /// Set before the loop stops the subscription on purpose (shutdown).
        let stopping = SharedFlag()
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await event in subscription { box.post(event) }
                    // The stream ends on cancellation, or when the socket failed: then the
                    // daemon would go blind while still feeding the watchdog, so it stops.
                    if !stopping.isSet && !Task.isCancelled {
                        subscriptionLost.set()
                        box.finish()
                    }
                }
                group.addTask {
                    for await _ in signals { box.requestReload() }
                }
                if pollNftables {
                    // Without nftables' announcements, a deleted table is noticed by this check.
                    group.addTask {
                        while !Task.isCancelled {
                            try? await ExecutorSleep.sleep(for: .seconds(10))
                            box.requestReconcile()
                        }
                    }
                }
                if let interval = notifier.watchdogInterval {
                    // The ping is sent by the loop itself (below), so a stuck loop stops pinging
                    // and systemd restarts the service.
                    group.addTask {
                        while !Task.isCancelled {
                            try? await ExecutorSleep.sleep(for: interval / 2)
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
                    if pending.needsPass {
                        // Coalesce the burst: wait a few ms, then take what else arrived.
                        try? await ExecutorSleep.sleep(for: options.coalescing)
                        pending.merge(box.take())
                        if pending.watchdog { notifier.watchdog() }
                        if pending.resync { logger.warning("netlink messages were lost (ENOBUFS): full resync") }
                        if let change = pending.lastChange { state.lastChange = "\(wallClockTime()) \(change)" }
                        for (name, change) in pending.linkChanges {
                            state.linkChanges[name] = "\(wallClockTime()) \(change)"
                        }
                        if pending.reload {
                            notifier.reloading()
                            if reload() == nil { state.paused = false }
                            state.findingsKey = nil
                        }
                        pass(
                            pending.reload ? "reload" : pending.resync ? "resync" : "events",
                            addressesOnly: !pending.beyondAddresses)
                        if pending.reload { announceReady() } else { updateStatus() }
                    }
                    for call in pending.controls { call.reply(control(call.command)) }
                }
                stopping.set()
                group.cancelAll()
                subscription.cancel()
            }
        } onGracefulShutdown: {
            stopping.set()
            box.finish()
        }
        withExtendedLifetime(nftWatch) {}
        box.finish()  // also after a cancellation: queued control requests get an answer
        server?.stop()
        state.timer?.cancel()
        notifier.stopping()
        if subscriptionLost.isSet {
            logger.critical("the netlink event subscription failed; exiting so that the service is restarted")
            throw NetlinkError(operation: "netlink event subscription ended", errno: .ioError)
        }
        logger.info("stopping; nicroute's rules and routes stay in place")
    }
}

/// What the preflight findings depend on, per NIC: its name (sysctls) and IPv4 subnets (two
/// NICs on one subnet). Compared on every pass, so a value rather than text; a new address in a
/// known subnet does not cause a new check (which reads /proc).
struct FindingsKey: Hashable {
    var name: String
    var subnets: [IPPrefix]
}

/// A flag set by one task and read by another.
final class SharedFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

/// Sends control commands into the daemon's loop and waits for its answer.
struct LoopBackend: ControlBackend {
    let box: TriggerBox
    func perform(_ command: ControlCommand) async -> ControlResponse {
        await withCheckedContinuation { continuation in
            box.postControl(command) { continuation.resume(returning: $0) }
        }
    }
}
