import CPosix
import Logging
import Netlink
import NicrouteCore

#if canImport(Glibc)
import Glibc
#endif

/// Settings of the daemon that come from its command line.
public struct DaemonOptions: Sendable {
    public var configuration: ConfigurationLoader
    public var stateDirectory: String?
    /// How long the loop waits after the first event of a burst before it reads the kernel
    /// (zero: it starts at once, after reading what is already queued).
    public var coalescing: Duration
    /// Overrides the configuration's control socket path (`--control-socket`).
    public var controlSocket: String?

    public init(
        configuration: ConfigurationLoader, stateDirectory: String?, coalescing: Duration = .zero,
        controlSocket: String? = nil
    ) {
        self.configuration = configuration
        self.stateDirectory = stateDirectory
        self.coalescing = coalescing
        self.controlSocket = controlSocket
    }
}

/// nicrouted: one sd-event loop on the calling thread, driving `DaemonMachine`.
///
/// Subscribe first, then dump and reconcile (so no event falls between the two), open the
/// control socket, report READY, then: read what the sockets, signals and the timer bring, hand
/// it to the machine, and carry out its actions. Level triggered: every pass starts from a fresh
/// dump, so a lost event (ENOBUFS) or a stale picture cannot mislead it. The loop only moves
/// data; what to do and when is the machine's. The loop is the only user of the `Reconciler`.
public final class NicrouteDaemon {
    let options: DaemonOptions
    let logger: Logger

    /// glibc's mmap threshold for the daemon.
    ///
    /// A pass at 80 NICs x 50 addresses builds arrays of megabytes (dumps, their fingerprints,
    /// snapshot, plan) and frees them at its end. By default glibc raises its mmap threshold to
    /// the largest such block freed, so from the second pass on they come from the heap, whose
    /// freed pages it keeps: the idle daemon stayed at 21.6 MB RSS (10.4 MB anonymous, of which
    /// ~5 MB live). A fixed 1 MiB threshold gives the large blocks their own mappings, unmapped
    /// when freed: 17.2 MB (6.1 MB anonymous), for ~1-2 ms more on a pass that reads and plans
    /// everything there (page faults on the fresh mappings; most passes read less).
    /// (`malloc_trim` after large passes did not help: the everyday passes after them grow the
    /// heap again.)
    static let mmapThreshold: Int32 = 1 << 20

    /// The signals the loop takes: block them (`EventLoop.blockSignals`) before any thread starts.
    public static let signals = [SIGHUP, SIGTERM, SIGINT]

    public init(options: DaemonOptions, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    /// Runs until SIGTERM or SIGINT.
    /// - Throws: when the daemon cannot start, or must stop to be restarted (the netlink
    ///   subscription failed, another nicrouted holds the control socket).
    public func run() throws {
        EventLoop.blockSignals(Self.signals)
        _ = cposix_set_mmap_threshold(Self.mmapThreshold)
        let configuration = try options.configuration.load()
        let loop = try EventLoop()
        let box = TriggerBox()
        let events = try RouteEventReader(groups: MulticastGroup.routing + [.neighbor])
        let reconciler = Reconciler(
            client: try RouteNetlink(), configuration: configuration,
            store: StateStore(directory: options.stateDirectory), logger: logger)
        let controlPath = options.controlSocket ?? configuration.controlSocket
        // nftables changes (forwarded connections: nicroute's table is put back when deleted).
        // Without the watch, reconcile passes and the periodic check still put the table back.
        let nftWatch: NftablesWatch?
        do { nftWatch = try NftablesWatch() } catch {
            nftWatch = nil
            logger.warning(
                "nftables changes are not watched (\(error)): nicroute's table is checked every 10 s instead")
        }
        let driver = try DaemonDriver(
            machine: DaemonMachine(
                settings: .init(
                    coalescing: options.coalescing.seconds,
                    nftablesPollInterval: nftWatch == nil ? DaemonMachine.nftablesPollInterval : nil,
                    controlPath: controlPath)),
            loop: loop, reconciler: reconciler, box: box, options: options, configuration: configuration,
            logger: logger)
        driver.server = try openControlSocket(path: controlPath, configuration: configuration, driver: driver)
        // The tables are known before the first pass (the box judges foreign routes there).
        box.setInterest(TriggerBox.Interest(tables: configuration.tables))

        var sources = [
            try watchKernel(events, box: box, loop: loop, reconciler: reconciler, driver: driver),
            try loop.signal(SIGHUP, name: "SIGHUP") { driver.feed(.reloadRequested) },
            try loop.signal(SIGTERM, name: "SIGTERM") { driver.feed(.stopRequested) },
            try loop.signal(SIGINT, name: "SIGINT") { driver.feed(.stopRequested) },
        ]
        if let nftWatch {
            sources.append(try watchNftables(nftWatch, loop: loop, reconciler: reconciler, driver: driver))
        }
        try loop.enableWatchdog()
        driver.feed(.start)
        let code = try loop.run()
        withExtendedLifetime((sources, nftWatch, events)) {}
        if code != 0 {
            throw NetlinkError(operation: "netlink event subscription ended", errno: .ioError)
        }
    }

    /// The rtnetlink subscription as a loop source: what it holds goes into the box, then to the
    /// machine. During a pass's changes the echo of each change is read as it comes (see
    /// `Reconciler.betweenBatches`); what the box gathers then is handed over after the pass.
    private func watchKernel(
        _ events: RouteEventReader, box: TriggerBox, loop: EventLoop, reconciler: Reconciler, driver: DaemonDriver
    ) throws -> EventLoop.Source {
        // False when the subscription failed.
        func drain() -> Bool {
            var lost = false
            do {
                try events.drain(filter: box.filter) { event in
                    if case .resyncNeeded = event { lost = true } else { box.post(event) }
                }
            } catch {
                // The daemon would go blind while still feeding the watchdog: it stops.
                driver.feed(.subscriptionFailed)
                return false
            }
            if lost { driver.feed(.eventsLost) }
            return true
        }
        reconciler.betweenBatches = { _ = drain() }
        return try loop.io(events.descriptor, name: "rtnetlink") { _ in
            if drain() { driver.feedEvents() }
        }
    }

    /// nftables' announcements as a loop source. While it works, the forwarder lists its table
    /// only after an announced change; once it fails, at every pass again.
    private func watchNftables(
        _ nftWatch: NftablesWatch, loop: EventLoop, reconciler: Reconciler, driver: DaemonDriver
    ) throws -> EventLoop.Source {
        var watch: EventLoop.Source?
        reconciler.forwarder.changesAnnounced = true
        watch = try loop.io(nftWatch.descriptor, name: "nftables") { _ in
            do {
                if try nftWatch.drain() {
                    reconciler.forwarder.nftablesChanged()
                    driver.feed(.nftablesChanged)
                }
            } catch {
                reconciler.forwarder.changesAnnounced = false
                watch?.cancel()
            }
        }
        return watch!
    }

    /// The control socket, or nil (with an error logged) when it cannot be opened.
    /// - Throws: when another nicrouted listens there: two daemons would fight over the same objects.
    private func openControlSocket(
        path: String, configuration: Configuration, driver: DaemonDriver
    ) throws -> ControlServer? {
        // The service's own uid (for ExecReload=) only when systemd started us: a daemon started
        // by hand as a shared user (nobody) must not hand that user's other processes the keys.
        var policy = ControlPolicy(serviceUID: getenv("INVOCATION_ID") != nil ? getuid() : nil)
        if let name = configuration.controlGroup {
            if let group = getgrnam(name) {
                policy.group = (name, group.pointee.gr_gid)
            } else {
                logger.warning("control group '\(name)' does not exist: only root may change things")
            }
        }
        do {
            return try ControlServer(
                path: path, service: ControlService(policy: policy, backend: LoopBackend(driver: driver)),
                loop: driver.loop)
        } catch let error as ControlSocketError where error.anotherDaemon {
            logger.critical("\(error.operation)")
            throw error
        } catch {
            logger.error("control socket unavailable, nicroutectl cannot reach the daemon: \(error)")
            return nil
        }
    }
}

/// Carries out `DaemonMachine`'s actions on the loop's thread and feeds their results back.
final class DaemonDriver {
    private var machine: DaemonMachine
    let loop: EventLoop
    private let reconciler: Reconciler
    private let box: TriggerBox
    private let options: DaemonOptions
    private var configuration: Configuration
    private let logger: Logger
    private let notifier = Notifier()
    var server: ControlServer?
    private var timer: EventLoop.Source?
    private var passSource: EventLoop.Source?
    private var lastReport: Reconciler.Report?
    private var replies: [DaemonMachine.RequestID: (ControlResponse) -> Void] = [:]
    private var nextRequest = 0
    private var inputs: [DaemonMachine.Input] = []
    private var feeding = false

    init(
        machine: DaemonMachine, loop: EventLoop, reconciler: Reconciler, box: TriggerBox, options: DaemonOptions,
        configuration: Configuration, logger: Logger
    ) throws {
        self.machine = machine
        self.loop = loop
        self.reconciler = reconciler
        self.box = box
        self.options = options
        self.configuration = configuration
        self.logger = logger
        timer = try loop.timer(name: "machine") { [unowned self] in feed(.timerExpired) }
        // After every io source ready in the same turn (priority 0): what is already queued is
        // read before the pass starts.
        passSource = try loop.deferred(priority: 10, name: "pass") { [unowned self] in feed(.passDue) }
    }

    /// Hands `input` to the machine and carries out what it says (after the input in progress).
    func feed(_ input: DaemonMachine.Input) {
        inputs.append(input)
        guard !feeding else { return }
        feeding = true
        defer { feeding = false }
        while !inputs.isEmpty {
            execute(machine.handle(inputs.removeFirst(), now: monotonicSeconds()))
        }
    }

    /// Hands over the kernel events the box gathered, stamped with the wall-clock time.
    func feedEvents() {
        guard let events = takeEvents() else { return }
        feed(.kernelEvents(events))
    }

    /// What the box gathered, stamped with the wall-clock time; nil when nothing came.
    private func takeEvents() -> KernelEvents? {
        var events = box.take()
        guard !events.isEmpty else { return nil }
        let time = wallClockTime()
        events.lastChange = events.lastChange.map { "\(time) \($0)" }
        events.linkChanges = events.linkChanges.mapValues { "\(time) \($0)" }
        return events
    }

    func control(_ command: ControlCommand, reply: @escaping (ControlResponse) -> Void) {
        nextRequest += 1
        replies[nextRequest] = reply
        feed(.control(nextRequest, command))
    }

    private func execute(_ actions: [DaemonMachine.Action]) {
        for action in actions {
            if let result = perform(action) { execute(machine.handle(result, now: monotonicSeconds())) }
        }
    }

    /// Carries out one action; the result to feed back, for those that have one.
    private func perform(_ action: DaemonMachine.Action) -> DaemonMachine.Input? {
        switch action {
        case .reconcile(let why, let addressesOnly, let linksAndAddressesOnly):
            return pass(why, addressesOnly: addressesOnly, linksAndAddressesOnly: linksAndAddressesOnly)
        case .passSoon:
            passSource?.fireOnce()
        case .loadConfiguration:
            do {
                let previous = configuration
                configuration = try options.configuration.load()
                reconciler.update(configuration)
                return .configurationLoaded(
                    .loaded(
                        controlChanged: previous.controlSocket != configuration.controlSocket
                            || previous.controlGroup != configuration.controlGroup))
            } catch {
                return .configurationLoaded(.rejected("\(error)"))
            }
        case .flush(let id):
            do { return .flushFinished(id, .success(try reconciler.flush())) } catch {
                return .flushFinished(id, .failure(.init("\(error)")))
            }
        case .checkPreflight:
            guard let report = lastReport else { return .preflightFindings([]) }
            let findings = Preflight.findings(
                plan: report.plan, inputs: reconciler.preflightInputs(plan: report.plan, snapshot: report.snapshot))
            return .preflightFindings(Set(findings.map(\.message)))
        case .notify(.ready(let status)): notifier.ready(status: status)
        case .notify(.status(let status)): notifier.status(status)
        case .notify(.reloading): notifier.reloading()
        case .notify(.stopping): notifier.stopping()
        case .reply(let id, let reply):
            replies.removeValue(forKey: id)?(response(reply))
        case .armTimer(let at): timer?.arm(at: at)
        case .disarmTimer: timer?.disarm()
        case .log(let level, let message, let metadata):
            logger.log(level: Logger.Level(level), "\(message)", metadata: metadata.mapValues { .string($0) })
        case .exit(let success):
            // Requests in flight are told that the daemon is stopping.
            server?.stop()
            for reply in replies.values { reply(.failure(ControlError(.failed, "nicrouted is stopping"))) }
            replies = [:]
            loop.exit(success ? 0 : 1)
        }
        return nil
    }

    /// One reconcile pass; hands the reconciler's interest to the box.
    private func pass(_ why: String, addressesOnly: Bool, linksAndAddressesOnly: Bool) -> DaemonMachine.Input {
        let now = monotonicSeconds()
        let report: Reconciler.Report
        do {
            report = try reconciler.reconcile(
                now: now, addressesOnly: addressesOnly, linksAndAddressesOnly: linksAndAddressesOnly)
        } catch {
            lastReport = nil
            return .passFinished(.readFailed("\(error)"))
        }
        lastReport = report
        box.setInterest(
            TriggerBox.Interest(
                tables: configuration.tables, probes: Set(report.plan.neighborProbes.map(\.address)),
                linkNames: Dictionary(
                    report.snapshot.links.filter { reconciler.planner.isManaged($0) }.map { ($0.index, $0.name) },
                    uniquingKeysWith: { a, _ in a }),
                managed: Set(report.plan.nics.map(\.link.index))))
        // Events read during the pass (its changes' echoes and whatever else came: the socket
        // may now be empty and not wake the loop) and a probe's early answer (`setInterest`
        // marks it relevant) go to the machine.
        if let events = takeEvents() { inputs.append(.kernelEvents(events)) }
        let t = report.timings
        logger.debug(
            "reconciled",
            metadata: [
                "why": "\(why)", "changes": "\(report.applied.count)", "failed": "\(report.failed.count)",
                "duration_us": "\(Int((monotonicSeconds() - now) * 1e6))", "snapshot_us": "\(t.snapshot)",
                "plan_us": "\(t.plan)", "apply_us": "\(t.apply)", "read": "\(report.read.rawValue)",
            ])
        return .passFinished(
            .completed(
                DaemonMachine.PassSummary(
                    nics: report.plan.nics.count, rules: report.plan.nics.reduce(0) { $0 + $1.addresses.count },
                    deferred: report.deferred.count, failed: report.failed.count, retryAt: report.retryAt,
                    preflightKey: report.plan.nics.map { nic in
                        DaemonMachine.PreflightKey(
                            name: nic.link.name,
                            subnets: Set(
                                nic.addresses.filter { $0.family == .inet && !$0.prefix.isHost }.map(\.subnet)
                            ).sorted())
                    })))
    }

    /// The control answer the machine chose, computed where it needs the kernel.
    private func response(_ reply: DaemonMachine.Reply) -> ControlResponse {
        do {
            switch reply {
            case .status(let summary, let paused, let deferred, let lastChanges):
                let snapshot = try reconciler.client.snapshot()
                let plan = reconciler.plan(from: snapshot)
                let findings = Preflight.findings(
                    plan: plan, inputs: reconciler.preflightInputs(plan: plan, snapshot: snapshot))
                let report = StatusReport(
                    plan: plan, snapshot: snapshot, summary: summary, fromDaemon: true, paused: paused,
                    deferred: deferred, lastChanges: lastChanges, findings: findings,
                    forwarding: reconciler.forwardingStatus(observe: false))
                return .success(report.json)
            case .plan:
                let snapshot = try reconciler.client.snapshot()
                return .success(PlanOutput(plan: reconciler.plan(from: snapshot), snapshot: snapshot).json)
            case .applied:
                guard let report = lastReport else {
                    return .failure(ControlError(.failed, "cannot read the kernel's state"))
                }
                return .success(ApplyOutput(report: report).json)
            case .removed(let removed):
                // What the flush could not put back is the reconciler's to tell (kept for the next one).
                return .success(FlushOutput(removed: removed, problems: reconciler.flushProblems).json)
            case .failure(let error):
                return .failure(error)
            }
        } catch {
            return .failure(ControlError(.failed, "\(error)"))
        }
    }
}

extension Logger.Level {
    init(_ level: DaemonMachine.LogLevel) {
        switch level {
        case .debug: self = .debug
        case .info: self = .info
        case .notice: self = .notice
        case .warning: self = .warning
        case .error: self = .error
        case .critical: self = .critical
        }
    }
}

/// Sends control commands into the daemon's machine; answered on the loop's thread.
final class LoopBackend: ControlBackend {
    unowned let driver: DaemonDriver
    init(driver: DaemonDriver) { self.driver = driver }
    func perform(_ command: ControlCommand, reply: @escaping (ControlResponse) -> Void) {
        driver.control(command, reply: reply)
    }
}
