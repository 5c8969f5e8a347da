import CPosix
import Logging
import Netlink
import NicrouteCore

#if canImport(Glibc)
import Glibc
#endif

/// One reconcile pass: read the kernel, plan, apply what the plan says, record the slots.
///
/// Used by the daemon loop and by `nicroutectl` in one-shot mode. Not thread-safe: one caller.
public final class Reconciler {
    public let client: RouteNetlink
    public private(set) var configuration: Configuration
    public let store: StateStore
    private var slots: SlotTable
    private var guardRail = ReinstallGuard()
    /// What the last pass saw and did, from which the objects it left installed are derived
    /// (to tell a re-install from a first install) only when a later pass wants to add
    /// something: a no-op pass does not hash every object it owns.
    private var lastPass: (snapshot: KernelSnapshot, plan: Plan, failed: [Change])?
    /// The kernel as the last pass left it: what it read, with the changes it made (nil before
    /// the first pass, after a failed one and after a flush).
    public private(set) var picture: KernelSnapshot? { didSet { pictureGeneration &+= 1 } }
    /// Changes whenever `picture` or the configuration does (what `status` is computed from).
    public private(set) var pictureGeneration = 0
    /// The objects the last pass left installed, once derived from `lastPass`.
    private var installedCache: Set<Change.ObjectKey>?
    /// The last plan that had nothing to do, while it stands (not made again).
    private var quiet = QuietPlan()
    /// First-host probes: when each candidate may be probed again.
    private var probes = ProbeSchedule()
    /// True while the slot file lags behind `slots` (its last write failed).
    private var slotsUnsaved = false
    /// What passes log (each problem once while it lasts) and their retries after failures.
    private var logbook: PassLogbook
    /// What the network data files held when last read (not read again while unchanged).
    private let networkDataCache = NetworkDataCache()
    /// When NetworkManager last hung on the bus (not asked again for a while).
    private let networkManagerSilence = NetworkManagerSilence()
    let logger: Logger
    /// nicroute's nftables table and src_valid_mark (forwarded connections).
    public let forwarder: Forwarder
    /// udev's opt-out (`NICROUTE_MANAGE=0`) and the NICs it has not processed yet.
    public let devices: UdevDevices
    /// Whether the current pass handles forwarded connections (decided once per pass).
    private var forwarding = false
    /// Called between the batches of a pass's changes (the daemon drains its event subscription
    /// there). Why: the kernel announces every change nicroute makes to every subscriber, and a
    /// first pass at 80 NICs x 50 addresses makes 10,480 of them, about 10 MB of socket
    /// accounting: more than the subscription's 4 MB buffer holds while the single-threaded
    /// loop is busy applying, so the kernel dropped the rest (ENOBUFS) and a full resync
    /// followed, with a misleading warning at every large start. Reading the echoes as they
    /// come keeps the buffer nearly empty; they are filtered and summarised like any other
    /// events (`TriggerBox`), so nothing is lost and the pass after is decided as usual. (A
    /// larger buffer would only move the limit; a second socket for changes does not stop the
    /// echo; filtering in the kernel would need a BPF filter on every notification type.)
    public var betweenBatches: (() -> Void)?
    /// Called with a pass's changes before they are made, and with none once they are made and
    /// `betweenBatches` has run after the last batch: the daemon's event box takes their echoes
    /// as its own (they change nothing the pass's picture does not show).
    public var applying: ((_ changes: [Change]?) -> Void)?

    /// The outcome of a pass.
    public struct Report: Sendable {
        public var plan: Plan
        public var snapshot: KernelSnapshot
        public var applied: [Change] = []
        public var failed: [(change: Change, error: String)] = []
        /// Re-installs held back because another tool keeps deleting them.
        public var deferred: [Change] = []
        /// When the loop should run again by itself (a back-off or a probe retry), if ever.
        public var retryAt: Double?
        /// Where the pass spent its time.
        public var timings = Timings()
        /// What the pass read from the kernel.
        /// What the pass read from the kernel (the debug log's `read=`).
        public var read = PassReading.everything
    }

    /// How long each phase of a pass took, in microseconds (for the debug log and benchmarks).
    public struct Timings: Sendable {
        /// Dumping the kernel's links, addresses, routes, rules (and neighbours).
        public var snapshot = 0
        /// Reading gateway hints and planning.
        public var plan = 0
        /// Applying the changes, saving slots, sending probes.
        public var apply = 0
    }

    /// - Parameters:
    ///   - nftables: what runs nft scripts for forwarded connections (libnftables; a fake in
    ///     tests).
    ///   - procRoot: a prefix for the /proc/sys paths forwarded connections read and write
    ///     (tests point it at a scratch tree: the machine's own sysctls are never theirs).
    public init(
        client: RouteNetlink, configuration: Configuration, store: StateStore, logger: Logger,
        nftables: any Nftables = LibNftables(), procRoot: String = ""
    ) {
        self.client = client
        self.configuration = configuration
        self.store = store
        self.logger = logger
        forwarder = Forwarder(stateDirectory: store.directory, root: procRoot, nftables: nftables)
        devices = UdevDevices(logger: logger)
        logbook = PassLogbook(stateDirectory: store.directory)
        var problem: String?
        slots = store.loadSlots { problem = $0 }
        if let problem {
            logger.warning("NIC slots: \(problem)")
            slotsUnsaved = true  // the first pass writes the file anew
        }
    }

    /// Replaces the configuration (after a successful reload); udev's database is read anew.
    public func update(_ configuration: Configuration) {
        self.configuration = configuration
        pictureGeneration &+= 1
        quiet.forget()
        devices.forget()
    }

    /// The planner for the current configuration.
    public var planner: Planner { Planner(configuration: configuration) }

    /// The kernel's picture (`RouteNetlink.snapshot`) with udev's holds on the NICs the
    /// configuration would manage.
    /// - Throws: `NetlinkError` when a dump fails.
    public func snapshot(includeNeighbors: Bool = true, addresses: [InterfaceAddress]? = nil) throws -> KernelSnapshot {
        var snapshot = try client.snapshot(includeNeighbors: includeNeighbors, addresses: addresses)
        snapshot.deviceHolds = devices.holds(for: snapshot.links.filter(planner.isManaged))
        return snapshot
    }

    /// Plans from `snapshot` without changing anything (for `status` and `plan`): a NIC whose
    /// `src_valid_mark` the last pass could not set carries a note saying so.
    public func plan(from snapshot: KernelSnapshot) -> Plan {
        var plan = planner.plan(
            snapshot: snapshot, slots: slots, hints: hints(for: snapshot).hints,
            forwarding: forwarder.wouldHandle(configuration))
        if plan.forwardMarks != nil {
            for i in plan.nics.indices {
                if let note = forwarder.sourceValidMarkNote(plan.nics[i].link.name) { plan.nics[i].notes.append(note) }
            }
        }
        // A gateway source that is stuck, named where it is missing.
        if let note = networkManagerSilence.note {
            for i in plan.nics.indices where networkManagerSilence.unasked.contains(plan.nics[i].link.name) {
                plan.nics[i].notes.append(note)
            }
        }
        return plan
    }

    /// The preflight's inputs for `plan`: the sysctls, and the kernel's rules when forwarded
    /// connections are handled (foreign fwmark rules on nicroute's bits).
    public func preflightInputs(plan: Plan, snapshot: KernelSnapshot) -> Preflight.Inputs {
        var inputs = SystemInspector().inputs(for: plan.nics.map(\.link.name))
        if plan.forwardMarks != nil {
            inputs.rules = snapshot.rules
            inputs.forwardMask = configuration.forwardMarkMask
            inputs.sourceValidMarkFailures = forwarder.sourceValidMarkFailures
        }
        return inputs
    }

    /// The forwarding part of `status` (state, reason, mask): as the last pass left it (the
    /// daemon's passes keep it current: nftables announces its changes), or, with `observe`
    /// (one-shot mode, where no pass ran), as the kernel has it now. Changes nothing.
    public func forwardingStatus(observe: Bool) -> (state: String, reason: String, mask: UInt32) {
        let mask = configuration.forwardMarkMask
        let state = observe ? forwarder.observe(configuration) : forwarder.state
        let errors = forwarder.sourceValidMarkErrors.sorted { $0.key < $1.key }
        guard case .installed = state, !errors.isEmpty else { return (state.name, state.reason, mask) }
        return (
            state.name,
            "in place, but src_valid_mark could not be set on "
                + errors.map { "\($0.key) (\($0.value))" }.joined(separator: ", ")
                + ": under strict reverse-path filtering (rp_filter=1) forwarded requests arriving there are dropped",
            mask
        )
    }

    /// Gateway hints from lease files and the config drive, and the file that could not be used
    /// (if any). Read for managed NICs only: nobody else's gateway matters, and this runs on
    /// every pass.
    private func hints(for snapshot: KernelSnapshot) -> (hints: [Int32: [GatewayHint]], problems: [String]) {
        let planner = self.planner
        var problems: [String] = []
        let hints = GatewayHintCollector(
            networkDataPaths: configuration.networkDataPaths, networkDataCache: networkDataCache,
            networkManagerSilence: networkManagerSilence
        )
        .hints(
            for: snapshot.links.filter(planner.isManaged),
            mainRoutes: snapshot.routes, problem: { problems.append("ignoring \($0)") })
        if let note = networkManagerSilence.note {
            problems.append("\(note); NICs without it: \(networkManagerSilence.unasked.joined(separator: ", "))")
        }
        return (hints, problems)
    }

    /// A pass's gateway hints, the problems logged (each once while it lasts).
    private func passHints(for snapshot: KernelSnapshot) -> [Int32: [GatewayHint]] {
        let (hints, problems) = hints(for: snapshot)
        logbook.sourceProblems(problems).forEach(log)
        return hints
    }

    private func log(_ entry: PassLogbook.Entry?) {
        guard let entry else { return }
        logger.log(
            level: Logger.Level(entry.level), "\(entry.message)", metadata: entry.metadata.mapValues { .string($0) })
    }

    /// Reads the kernel and plans. The neighbour caches only confirm first-host gateways, so
    /// they are dumped only when the plan asks for a probe, and the plan is then made again with
    /// them: the same plan as from a full snapshot, without two dumps on almost every pass.
    ///
    /// - Parameter reading: what may have changed since the last pass (the caller knows).
    ///   `.addresses`: nothing but address announcements came (no link, route or rule event,
    ///   no resync, timer or reload). When the
    ///   last pass found nothing to do and the addresses read now are the ones it saw (a DHCP
    ///   renewal: new lifetimes, same addresses), the rest of its picture stands: the kernel
    ///   changes routes and rules without announcing it only when addresses or links change
    ///   (an address removed, a link down), and any announced change would have come as an
    ///   event. Otherwise, and always without the parameter, the whole picture is read.
    ///   `.linksAndAddresses`: nothing but link and address announcements came
    ///   (no route, rule or neighbour event, no resync, timer or reload). Then the links are
    ///   read too, and when they plan alike (`Planner.planAlike`: equal but for their MTU, an
    ///   unmanaged veth's MTU changed, say) the last quiet pass's picture stands as above: a
    ///   link change that can take routes with it silently (down, carrier, gone, renamed)
    ///   changes the links' flags, state or names and the whole picture is read. (At 80 NICs x
    ///   50 addresses the whole picture is ~16,000 objects: 9 ms of dumps, 11 ms of planning.)
    /// - Throws: `NetlinkError` when a dump fails.
    func observe(
        reading: PassReading = .everything
    ) throws -> (
        snapshot: KernelSnapshot, hints: [Int32: [GatewayHint]], plan: Plan, dumped: Double, read: PassReading
    ) {
        var addresses: [InterfaceAddress]?
        let forwarding = forwarder.decide(configuration)
        if forwarding != self.forwarding { quiet.forget() }
        self.forwarding = forwarding
        if quiet.mayReadLess(reading, slots: slots) {
            let read = try client.addresses(remember: true)
            addresses = read
            let links = reading == .addresses ? nil : try client.links()
            let dumped = monotonicSeconds()
            if let snapshot = quiet.picture(addresses: read, links: links) {
                let hints = passHints(for: snapshot)
                if let plan = quiet.reuse(snapshot: snapshot, hints: hints, slots: slots) {
                    return (snapshot, hints, plan, dumped, reading)
                }
            }
        }
        // The addresses just read (if any) belong to the whole picture: not read twice.
        var snapshot = try self.snapshot(includeNeighbors: false, addresses: addresses)
        let dumped = monotonicSeconds()
        let hints = passHints(for: snapshot)
        if let plan = quiet.reuse(snapshot: snapshot, hints: hints, slots: slots) {
            return (snapshot, hints, plan, dumped, .everything)
        }
        var plan = planner.plan(snapshot: snapshot, slots: slots, hints: hints, forwarding: forwarding)
        let families = Set(plan.neighborProbes.map(\.address.family))
        if !families.isEmpty {
            for family in AddressFamily.allCases where families.contains(family) {
                snapshot.neighbors += try client.neighbors(family: family)
            }
            plan = planner.plan(snapshot: snapshot, slots: slots, hints: hints, forwarding: forwarding)
        }
        quiet.record(snapshot: snapshot, hints: hints, plan: plan)
        return (snapshot, hints, plan, dumped, .everything)
    }

    /// Runs one pass at time `now` (seconds on a monotonic clock).
    /// - Throws: `NetlinkError` only when the kernel cannot be read; failed changes are in the
    ///   report, and the others are still applied.
    ///
    /// - Parameter reading: see `observe`.
    public func reconcile(now: Double, reading: PassReading = .everything) throws -> Report {
        let start = monotonicSeconds()
        picture = nil
        let (snapshot, hints, plan, planStart, read) = try observe(reading: reading)
        let applyStart = monotonicSeconds()
        var report = Report(plan: plan, snapshot: snapshot)
        report.read = read
        log(logbook.undecodable(count: client.undecodable.count, reason: client.undecodable.lastError))
        let names = Dictionary(snapshot.links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        var admitted: [Change] = []
        // Objects this pass starts backing off from: one warning for all of them.
        var heldBack: [PassLogbook.HeldBack] = []
        for change in plan.changes {
            // Only a re-add of something that vanished is a possible fight; a replace updates a
            // route that is still there (a new gateway, say).
            let isReAdd: Bool =
                switch change {
                case .addRoute, .addRule: installed().contains(change.objectKey)
                default: false
                }
            if isReAdd {
                if case .deferred(let until, let fights, let firstTime) = guardRail.admit(
                    change.objectIdentity, now: now)
                {
                    report.deferred.append(change)
                    if firstTime {
                        heldBack.append(
                            .init(
                                command: change.ipCommand(linkName: { names[$0] }), reinstalls: fights,
                                retryIn: Int((until - now).rounded(.up))))
                    }
                    continue
                }
            }
            admitted.append(change)
        }
        log(PassLogbook.heldBack(heldBack))
        // In order, several per datagram: one round trip per batch, not per change.
        if !admitted.isEmpty { applying?(admitted) }
        let results = client.apply(admitted, afterBatch: betweenBatches)
        if !admitted.isEmpty { applying?(nil) }
        for (change, result) in zip(admitted, results) {
            switch result {
            case .success:
                report.applied.append(change)
            case .failure(let error):
                report.failed.append((change, "\(error)"))
            }
        }
        logbook.changesFailed(
            report.failed.map {
                .init(
                    object: "\($0.change.objectIdentity)", error: $0.error,
                    command: $0.change.ipCommand(linkName: { names[$0] }))
            }
        ).forEach(log)
        logChanges(report.applied, names: names, nics: plan.nics)
        // The nftables table after the rules: a failure there leaves the routing of the VM's own
        // traffic as it is (and status says why forwarded replies are not covered).
        for command in forwarder.apply(plan.forwardMarks, mask: configuration.forwardMarkMask) {
            logger.notice("\(command)", metadata: ["command": "\(command)", "action": "forward"])
        }
        lastPass = (snapshot, plan, report.failed.map(\.change))
        installedCache = nil
        picture = snapshot.applying(report.applied)
        // Every change made: the next pass finds the plan settled, as a new plan from this
        // picture would (the same NICs, nothing to do), without making it; a dump that differs
        // from the picture is planned anew as usual.
        if !plan.changes.isEmpty, report.failed.isEmpty, report.deferred.isEmpty, let picture {
            quiet.record(snapshot: picture, hints: hints, plan: plan.settled)
        }
        // The slots are in force at once; the file follows. The state directory's files (the
        // slots; the forwarding records a restart and a flush need) that cannot be written (a
        // full or read-only disk, a directory in a file's place) are kept in memory and written
        // again at the next pass or after a back-off, whichever comes first.
        if plan.slots != slots {
            slots = plan.slots
            slotsUnsaved = true
        }
        var unwritten = forwarder.fileProblems
        if slotsUnsaved {
            do {
                try store.save(slots)
                slotsUnsaved = false
            } catch {
                unwritten.append(error)
            }
        }
        // Ask the kernel to resolve first-host candidates: at once, then after 2, 4, 8 ... 60 s,
        // and again as soon as a link-local address lets a lost IPv6 probe leave.
        let ipv6Probes = plan.neighborProbes.contains { $0.address.family == .inet6 }
        let linkLocalReady = ipv6Probes ? ProbeSchedule.linkLocalReady(snapshot.addresses) : []
        let due = probes.due(plan.neighborProbes, now: now, linkLocalReady: linkLocalReady)
        for probe in due {
            do { try client.probeNeighbor(probe.address, linkIndex: probe.linkIndex) } catch {
                logger.debug("neighbour probe failed: \(error)")
            }
        }
        // Held back for a link-local address still in DAD: from a global address ready before
        // it. (On every pass: what is no longer wanted is forgotten.)
        for (probe, source) in probes.datagrams(
            plan.neighborProbes, now: now, linkLocalReady: linkLocalReady,
            sources: ipv6Probes ? ProbeSchedule.globalSources(snapshot.addresses) : [:])
        where cposix_udp6_probe(source.bytes, probe.address.bytes, probe.linkIndex) != 0 {
            logger.debug("neighbour probe from \(source) failed: \(String(cString: strerror(errno)))")
        }
        guardRail.prune(now: now)
        let review = logbook.review(
            PassLogbook.Outcome(
                conflicts: plan.conflicts,
                forwardingUnavailable: {
                    if case .unavailable = forwarder.state { forwarder.state.reason } else { nil }
                }(),
                sourceValidMarkFailures: forwarder.sourceValidMarkFailures.compactMap { name in
                    forwarder.sourceValidMarkNote(name).map {
                        .init(link: name, error: forwarder.sourceValidMarkErrors[name] ?? "", note: $0)
                    }
                },
                unwrittenFiles: unwritten.map { error in
                    let name = error.path.split(separator: "/").last.map(String.init) ?? error.path
                    return .init(
                        errno: error.errno, reason: String(cString: strerror(error.errno)),
                        file: name.hasSuffix(".tmp") ? String(name.dropLast(4)) : name)
                }),
            changesFailed: !report.failed.isEmpty, now: now)
        review.entries.forEach(log)
        report.retryAt = [guardRail.nextDeadline(after: now), probes.nextDeadline, review.retryAt].compactMap { $0 }
            .min()
        let end = monotonicSeconds()
        report.timings = Timings(
            snapshot: Int((planStart - start) * 1e6), plan: Int((applyStart - planStart) * 1e6),
            apply: Int((end - applyStart) * 1e6))
        return report
    }

    /// The objects the last pass left installed: what it added or found in place and kept,
    /// minus what failed.
    private func installed() -> Set<Change.ObjectKey> {
        if let installedCache { return installedCache }
        guard let (snapshot, plan, failed) = lastPass else { return [] }
        let keys = Set(plan.changes.filter(\.isAddition).map(\.objectKey))
            .union(desiredIdentities(snapshot: snapshot, plan: plan))
            .subtracting(failed.map(\.objectKey))
        installedCache = keys
        return keys
    }

    /// The identities of objects already in place that the plan wants kept.
    private func desiredIdentities(snapshot: KernelSnapshot, plan: Plan) -> Set<Change.ObjectKey> {
        var ids = Set<Change.ObjectKey>()
        for r in snapshot.routes where Planner.isOwned(r) { ids.insert(.route(r.key)) }
        for r in snapshot.rules where Planner.isOwned(r) { ids.insert(.rule(r)) }
        let deleting = Set(plan.changes.filter { !$0.isAddition }.map(\.objectKey))
        return ids.subtracting(deleting)
    }

    /// Passes with more changes than this log one line per NIC at notice level (and each change
    /// at trace level) instead of one line per change.
    ///
    /// A first start on a large instance (80 NICs x 50 addresses: 10,480 routes and rules) would
    /// otherwise write 10,480 lines, more than journald's default rate limit lets through
    /// (`RateLimitBurst=10000` per 30 s: the rest is dropped, and with it the lines that matter),
    /// and formatting them took a quarter of that pass. Everyday passes (an address, a NIC
    /// plugged) stay below it and keep their `NICROUTE_COMMAND` per change.
    static let changesLoggedOneByOne = 64

    /// Logs what a pass or a flush applied: each change, or a summary per NIC when there are many.
    private func logChanges(_ applied: [Change], names: [Int32: String], nics: [ManagedNIC]) {
        guard applied.count > Self.changesLoggedOneByOne else {
            for change in applied { logChange(change, names: names, nics: nics, level: .notice) }
            return
        }
        if logger.logLevel <= .trace {
            for change in applied { logChange(change, names: names, nics: nics, level: .trace) }
        }
        let nicByTable = Dictionary(nics.map { ($0.table, $0.link.name) }, uniquingKeysWith: { a, _ in a })
        struct Tally {
            var routesAdded = 0, routesDeleted = 0, rulesAdded = 0, rulesDeleted = 0
        }
        var tallies: [UInt32: Tally] = [:]
        for change in applied {
            switch change {
            case .addRoute(let r), .replaceRoute(let r): tallies[r.table, default: Tally()].routesAdded += 1
            case .deleteRoute(let r): tallies[r.table, default: Tally()].routesDeleted += 1
            case .addRule(let r): tallies[r.table, default: Tally()].rulesAdded += 1
            case .deleteRule(let r): tallies[r.table, default: Tally()].rulesDeleted += 1
            }
        }
        func count(_ n: Int, _ what: String) -> String? { n == 0 ? nil : "\(n) \(what)\(n == 1 ? "" : "s")" }
        for (table, t) in tallies.sorted(by: { $0.key < $1.key }) {
            let added = [count(t.routesAdded, "route"), count(t.rulesAdded, "rule")].compactMap { $0 }
            let deleted = [count(t.routesDeleted, "route"), count(t.rulesDeleted, "rule")].compactMap { $0 }
            let parts =
                (added.isEmpty ? [] : [added.joined(separator: " and ") + " added"])
                + (deleted.isEmpty ? [] : [deleted.joined(separator: " and ") + " deleted"])
            let who = nicByTable[table].map { "\($0) (table \(table))" } ?? "table \(table)"
            var metadata: Logger.Metadata = [
                "table": "\(table)", "action": "\(deleted.isEmpty ? "add" : added.isEmpty ? "delete" : "change")",
                "changes": "\(t.routesAdded + t.routesDeleted + t.rulesAdded + t.rulesDeleted)",
            ]
            if let name = nicByTable[table] { metadata["link"] = "\(name)" }
            logger.notice("\(who): \(parts.joined(separator: ", "))", metadata: metadata)
        }
    }

    private func logChange(_ change: Change, names: [Int32: String], nics: [ManagedNIC], level: Logger.Level) {
        let command = change.ipCommand(linkName: { names[$0] })
        var metadata: Logger.Metadata = ["command": "\(command)"]
        switch change {
        case .addRoute(let r), .replaceRoute(let r), .deleteRoute(let r):
            metadata["table"] = "\(r.table)"
            if let oif = r.outputInterface, let n = names[oif] { metadata["link"] = "\(n)" }
        case .addRule(let r), .deleteRule(let r):
            metadata["table"] = "\(r.table)"
            if let nic = nics.first(where: { $0.table == r.table }) { metadata["link"] = "\(nic.link.name)" }
        }
        metadata["action"] = "\(change.isAddition ? "add" : "delete")"
        logger.log(level: level, "\(command)", metadata: metadata)
    }

    /// What the last `flush()` could not undo, as sentences (`nicroutectl flush` prints them and
    /// fails): a `src_valid_mark` it could not put back, kept in the record for the next flush.
    public var flushProblems: [String] {
        forwarder.restoreFailures.map { "cannot put back \($0); \(forwarder.markFile) keeps it for the next flush" }
    }

    /// Removes everything nicroute owns (`nicroutectl flush`): its rules, then its routes, its
    /// nftables table and the `src_valid_mark` it set (what cannot be put back: `flushProblems`).
    /// - Returns: the changes applied, as `ip` commands.
    /// - Throws: `NetlinkError` when the kernel cannot be read or a deletion fails.
    public func flush() throws -> [String] {
        let snapshot = try client.snapshot(includeNeighbors: false)
        let changes =
            snapshot.rules.filter(Planner.isOwned).map(Change.deleteRule)
            + snapshot.routes.filter(Planner.isOwned).map(Change.deleteRoute)
        let names = Dictionary(snapshot.links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        var applied: [Change] = []
        defer { logChanges(applied, names: names, nics: []) }
        for change in changes {
            try client.apply(change)
            applied.append(change)
        }
        let forward = forwarder.remove()
        for command in forward { logger.notice("\(command)", metadata: ["command": "\(command)"]) }
        for problem in flushProblems { logger.warning("flush: \(problem)") }
        lastPass = nil
        installedCache = []
        picture = nil
        quiet.forget()
        return changes.map { $0.ipCommand(linkName: { names[$0] }) } + forward
    }
}
