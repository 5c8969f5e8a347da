import Netlink
import NicrouteCore
import Synchronization

/// Where kernel events, signals and timers meet the reconcile loop.
///
/// Producers record what happened under a lock and wake the loop; the wake stream holds at
/// most one element, so a burst of thousands of events costs one wake and bounded memory. The
/// loop then waits the coalescing window and takes everything at once.
final class TriggerBox: Sendable {
    /// A control request waiting for the loop, and how to answer it.
    struct ControlCall: Sendable {
        var command: ControlCommand
        var reply: @Sendable (ControlResponse) -> Void
    }

    struct Pending: Sendable {
        var reconcile = false
        var reload = false
        var resync = false
        /// The watchdog interval elapsed: the loop proves it is alive by answering.
        var watchdog = false
        /// Something besides address announcements happened since the last pass (another event,
        /// relevant or not, decoded or not, a resync, a timer, a reload): the next pass reads the
        /// whole kernel picture. While only addresses were announced, a pass may read the
        /// addresses alone (see `Reconciler.observe(addressesOnly:)`).
        var beyondAddresses = false
        /// The latest address change on a managed NIC, e.g. "eth1 +10.20.20.17".
        var lastChange: String?
        /// The latest address change per NIC name, e.g. "eth1" -> "+10.20.20.17".
        var linkChanges: [String: String] = [:]
        var controls: [ControlCall] = []

        /// True when the plan may have changed.
        var needsPass: Bool { reconcile || reload || resync }

        /// Adds what was recorded later.
        mutating func merge(_ later: Pending) {
            reconcile = reconcile || later.reconcile
            reload = reload || later.reload
            resync = resync || later.resync
            beyondAddresses = beyondAddresses || later.beyondAddresses
            watchdog = watchdog || later.watchdog
            lastChange = later.lastChange ?? lastChange
            linkChanges.merge(later.linkChanges) { _, new in new }
            controls += later.controls
        }
    }

    /// What makes an event worth a reconcile, refreshed after every pass.
    struct Interest: Sendable {
        var tables: ClosedRange<UInt32>? = nil
        var probes: Set<IPAddress> = []
        var linkNames: [Int32: String] = [:]
        var managed: Set<Int32> = []
    }

    /// `answered`: neighbours that answered while no probe was known for them (at most
    /// `answeredLimit`): a probe's answer can come back within a millisecond, before the pass
    /// that sent it has handed its new interest over (`setInterest`), and must not wait for the
    /// next event. Kept under the same lock as the interest, so that no answer falls between.
    private let state = Mutex<(pending: Pending, interest: Interest, finished: Bool, answered: [IPAddress])>(
        (Pending(), Interest(), false, []))
    static let answeredLimit = 64
    /// A notification was dropped before decoding (`worthDecoding`): an event all the same, so
    /// the next pass reads everything.
    private let undecoded = Atomic<Bool>(false)
    let wakes: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() {
        (wakes, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    func setInterest(_ interest: Interest) {
        let early = state.withLock { s -> Bool in
            let early = s.answered.contains(where: interest.probes.contains)
            s.answered.removeAll()
            s.interest = interest
            if early { s.pending.reconcile = true }
            return early
        }
        if early { continuation.yield() }
    }

    /// Records a kernel event; wakes the loop when it can change the plan.
    func post(_ event: RouteEvent) {
        let wake = state.withLock { s -> Bool in
            let relevant: Bool
            switch event {
            case .resyncNeeded:
                s.pending.resync = true
                s.pending.beyondAddresses = true
                relevant = true
            case .added(let object), .removed(let object):
                let added: Bool = if case .added = event { true } else { false }
                if case .address = object {} else { s.pending.beyondAddresses = true }
                relevant = Self.isRelevant(object, added: added, interest: s.interest)
                // Link-local and host-scope addresses get no rules: not a change worth naming.
                if case .address(let a) = object, a.scope == .universe, !a.address.isIPv6LinkLocal,
                    let name = s.interest.linkNames[a.linkIndex]
                {
                    s.pending.lastChange = "\(name) \(added ? "+" : "-")\(a.address)"
                    s.pending.linkChanges[name] = "\(added ? "+" : "-")\(a.address)"
                }
            }
            if relevant {
                s.pending.reconcile = true
            } else if case .added(.neighbor(let n)) = event, n.state.hasAnswered {
                if s.answered.count >= Self.answeredLimit { s.answered.removeFirst() }
                s.answered.append(n.address)
            }
            return relevant
        }
        if wake { continuation.yield() }
    }

    /// The subscription's filter: `worthDecoding`, remembering what it drops (see `undecoded`).
    var filter: RouteNetlinkSubscription.Filter {
        { [self] header, payload in
            let worth = Self.worthDecoding(header, payload)
            if !worth { undecoded.store(true, ordering: .relaxed) }
            return worth
        }
    }

    /// False for notifications that `isRelevant` would turn down whatever the interest, told from
    /// the undecoded bytes: nicroute's own routes added outside the main table (the echo of its
    /// own changes, thousands in a full reconcile), told from `RouteCodec.routeHeader`: `rtm_table` is the
    /// table itself below 256 and `RT_TABLE_COMPAT` above.
    static func worthDecoding(_ header: NetlinkHeader, _ payload: ByteReader) -> Bool {
        guard header.type == MessageType.newRoute, let h = RouteCodec.routeHeader(payload) else { return true }
        return h.proto != .nicroute || UInt32(h.table) == RoutingTable.main
    }

    /// Links and addresses always matter; routes in the main table or in nicroute's tables;
    /// rules and routes of nicroute's that went away; neighbours being probed.
    static func isRelevant(_ object: RouteObject, added: Bool, interest: Interest) -> Bool {
        switch object {
        case .link, .address:
            return true
        case .route(let r):
            if r.table == RoutingTable.main { return true }
            if r.proto == .nicroute { return !added }
            return interest.tables?.contains(r.table) ?? false
        case .rule(let r):
            return r.proto == .nicroute && !added
        case .neighbor(let n):
            return interest.probes.contains(n.address) && n.state.hasAnswered
        }
    }

    func requestReconcile() {
        state.withLock {
            $0.pending.reconcile = true
            $0.pending.beyondAddresses = true
        }
        continuation.yield()
    }

    func requestWatchdog() {
        state.withLock { $0.pending.watchdog = true }
        continuation.yield()
    }

    func requestReload() {
        state.withLock {
            $0.pending.reload = true
            $0.pending.beyondAddresses = true
        }
        continuation.yield()
    }

    /// Takes everything recorded since the last call. `beyondAddresses` stays recorded until a
    /// take that needs a pass: a wake for the watchdog or a control request alone does not spend
    /// it, so that it covers everything since the last pass.
    func take() -> Pending {
        state.withLock { s in
            if undecoded.exchange(false, ordering: .relaxed) { s.pending.beyondAddresses = true }
            let taken = s.pending
            s.pending = Pending()
            s.pending.beyondAddresses = taken.beyondAddresses && !taken.needsPass
            return taken
        }
    }

    /// Queues a control request for the loop; answered at once when the loop has ended.
    func postControl(_ command: ControlCommand, reply: @escaping @Sendable (ControlResponse) -> Void) {
        let accepted = state.withLock { s -> Bool in
            guard !s.finished else { return false }
            s.pending.controls.append(ControlCall(command: command, reply: reply))
            return true
        }
        if accepted {
            continuation.yield()
        } else {
            reply(.failure(ControlError(.failed, "nicrouted is stopping")))
        }
    }

    /// Ends the wake stream; control requests still queued are answered with an error.
    func finish() {
        let orphans = state.withLock { s -> [ControlCall] in
            s.finished = true
            defer { s.pending.controls = [] }
            return s.pending.controls
        }
        for call in orphans { call.reply(.failure(ControlError(.failed, "nicrouted is stopping"))) }
        continuation.finish()
    }
}
