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
            client: try RouteNetlink(dumpRetry: .immediate), configuration: configuration,
            store: StateStore(directory: options.stateDirectory), logger: logger)
        let controlPath = options.controlSocket ?? configuration.controlSocket
        // nftables changes (forwarded connections: nicroute's table is put back when deleted).
        // Without the watch, reconcile passes and the periodic check still put the table back.
        let nftWatch: NftablesWatch?
        do { nftWatch = try NftablesWatch() } catch {
            nftWatch = nil
            logger.warning(
                "nftables changes are not watched (\(error)): nicroute's table is checked every \(Int(DaemonMachine.nftablesPollInterval)) s instead"
            )
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
        let udev = watchUdev(loop: loop, reconciler: reconciler, driver: driver)
        try loop.enableWatchdog()
        driver.feed(.start)
        let code = try loop.run()
        withExtendedLifetime((sources, nftWatch, events, udev)) {}
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
        var loggedUndecodable = events.undecodable
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
            // Notifications that could not be decoded came as `.resyncNeeded`: a full re-read.
            let undecodable = events.undecodable
            if undecodable.count > loggedUndecodable.count {
                let metadata: Logger.Metadata = [
                    "new": "\(undecodable.count - loggedUndecodable.count)", "total": "\(undecodable.count)",
                ]
                let reason = undecodable.lastError ?? "unknown"
                let level: Logger.Level = undecodable.lastError != loggedUndecodable.lastError ? .notice : .debug
                logger.log(
                    level: level, "kernel notifications that could not be decoded, reading everything again: \(reason)",
                    metadata: metadata)
                loggedUndecodable = undecodable
            }
            if lost { driver.feed(.eventsLost) }
            return true
        }
        reconciler.betweenBatches = { _ = drain() }
        reconciler.applying = { changes in
            if let changes { box.expect(changes) } else { box.applied() }
        }
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

    /// udev's events for network devices (sd-device's monitor): when udev has finished with a
    /// NIC a pass looked at (added, its properties changed, renamed), a pass that reads
    /// everything follows: the input nftables' announcements use, which asks for nothing else.
    /// rtnetlink announces a new NIC before udev has processed it; until then it is held
    /// (`UdevDevices`). Nil where udev does not run (containers: nothing to hear, nothing read),
    /// and, with one warning, when the monitor cannot be opened.
    private func watchUdev(loop: EventLoop, reconciler: Reconciler, driver: DaemonDriver) -> UdevMonitor? {
        guard access(reconciler.devices.controlPath, F_OK) == 0 else {
            logger.debug("udev does not run (no \(reconciler.devices.controlPath)): its database is not read")
            return nil
        }
        do {
            let monitor = try UdevMonitor(loop: loop) { [logger] index in
                let looked = reconciler.devices.heard(index: index)
                logger.debug("udev: event for ifindex \(index)\(looked ? ": read again" : "")")
                if looked { driver.feed(.deviceProcessed) }
            }
            reconciler.devices.monitored = true
            return monitor
        } catch {
            logger.warning(
                "udev's events are not heard (\(error)): a NIC is managed as soon as the kernel announces it, and \(DeviceHold.property)= counts from the next pass that reads everything"
            )
            return nil
        }
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
