import Netlink
import NicrouteCore

/// Where kernel events meet the daemon's state machine: decides which notifications can change
/// the plan and summarises them (`KernelEvents`), so that a burst of thousands costs one input.
///
/// Lives on the loop's thread, like everything the loop owns.
final class TriggerBox {
    /// What makes an event worth a reconcile, refreshed after every pass.
    struct Interest: Sendable {
        var tables: ClosedRange<UInt32>? = nil
        var probes: Set<IPAddress> = []
        var linkNames: [Int32: String] = [:]
        var managed: Set<Int32> = []
        /// `LocalRoutes=`: whether local routes through managed NICs are sources.
        var localRoutes: Bool = true
    }

    private var pending = KernelEvents()
    private var interest = Interest()
    /// The echoes of the changes a pass is making, not yet heard (`expect`): the kernel as the
    /// pass leaves it already shows them, so they change nothing, not even how much the next
    /// pass must read. Empty between passes.
    private var expected = Expected()

    struct Expected {
        var applying = false
        var routeDeletions: [Route.Key: Int] = [:]
        var ruleAdditions: [Rule: Int] = [:]
        var ruleDeletions: [Rule: Int] = [:]

        /// Takes one expected echo of `object`; false when it was not expected.
        mutating func take(_ object: RouteObject, added: Bool) -> Bool {
            switch object {
            case .route(let r) where r.proto == .nicroute && !added:
                return Self.take(r.key, from: &routeDeletions)
            case .rule(let r) where r.proto == .nicroute:
                return added ? Self.take(r, from: &ruleAdditions) : Self.take(r, from: &ruleDeletions)
            default:
                return false
            }
        }

        private static func take<K: Hashable>(_ key: K, from counts: inout [K: Int]) -> Bool {
            guard let n = counts[key] else { return false }
            counts[key] = n > 1 ? n - 1 : nil
            return true
        }
    }
    /// Neighbours that answered while no probe was known for them (at most `answeredLimit`): a
    /// probe's answer can come back within a millisecond, before the pass that sent it has
    /// handed its new interest over (`setInterest`), and must not wait for the next event.
    private var answered: [IPAddress] = []
    static let answeredLimit = 64

    /// Takes the interest of the last pass; true when a neighbour it probes has already
    /// answered (then `take()` has a relevant event).
    @discardableResult
    func setInterest(_ interest: Interest) -> Bool {
        let early = answered.contains(where: interest.probes.contains)
        answered.removeAll()
        self.interest = interest
        if early { pending.relevant = true }
        return early
    }

    /// A pass is about to make `changes`: their echoes, heard until `applied()`, are its own.
    /// (nicroute's own route additions are told apart before they are decoded, by `filter`.)
    func expect(_ changes: [Change]) {
        expected.applying = true
        for change in changes {
            switch change {
            case .deleteRoute(let r): expected.routeDeletions[r.key, default: 0] += 1
            case .addRule(let r): expected.ruleAdditions[r, default: 0] += 1
            case .deleteRule(let r): expected.ruleDeletions[r, default: 0] += 1
            case .addRoute, .replaceRoute: break
            }
        }
    }

    /// The pass's changes are made and their echoes read (the kernel queues a change's echo
    /// before it answers the request): whatever comes from now on is someone else's.
    func applied() { expected = Expected() }

    /// Records a kernel event (`.resyncNeeded` is the loop's to handle).
    func post(_ event: RouteEvent) {
        switch event {
        case .resyncNeeded:
            pending.beyondAddresses = true
            pending.beyondLinks = true
        case .added(let object), .removed(let object):
            let added: Bool = if case .added = event { true } else { false }
            if expected.applying && expected.take(object, added: added) { return }
            switch object {
            case .address: break
            case .link: pending.beyondAddresses = true
            default:
                pending.beyondAddresses = true
                pending.beyondLinks = true
            }
            let relevant = Self.isRelevant(object, added: added, interest: interest)
            // Link-local and host-scope addresses get no rules: not a change worth naming.
            if case .address(let a) = object, a.scope == .universe, !a.address.isIPv6LinkLocal,
                let name = interest.linkNames[a.linkIndex]
            {
                pending.lastChange = "\(name) \(added ? "+" : "-")\(a.address)"
                pending.linkChanges[name] = "\(added ? "+" : "-")\(a.address)"
            }
            if relevant {
                pending.relevant = true
            } else if case .added(.neighbor(let n)) = event, n.state.hasAnswered {
                if answered.count >= Self.answeredLimit { answered.removeFirst() }
                answered.append(n.address)
            }
        }
    }

    /// The subscription's filter: `worthDecoding`; a notification it drops still counts as an
    /// event beyond addresses, unless a pass is applying its changes (it is their echo).
    func filter(_ header: NetlinkHeader, _ payload: ByteReader) -> Bool {
        let worth = Self.worthDecoding(header, payload)
        // (While a pass applies, such a notification is the echo of one of its additions.)
        if !worth && !expected.applying {
            pending.beyondAddresses = true
            pending.beyondLinks = true
        }
        return worth
    }

    /// False for notifications that `isRelevant` would turn down whatever the interest, told from
    /// the undecoded bytes: nicroute's own routes added outside the main table (the echo of its
    /// own changes, thousands in a full reconcile), and the `local` table's routes that cannot be
    /// a source (the kernel's own local and broadcast routes, added and removed with every
    /// address), told from `RouteCodec.routeHeader`: `rtm_table` is the table itself below 256
    /// and `RT_TABLE_COMPAT` above.
    static func worthDecoding(_ header: NetlinkHeader, _ payload: ByteReader) -> Bool {
        guard header.type == MessageType.newRoute || header.type == MessageType.deleteRoute,
            let h = RouteCodec.routeHeader(payload)
        else { return true }
        if RouteCodec.isLocalTableNoise(table: h.table, proto: h.proto, type: h.type) { return false }
        return header.type == MessageType.deleteRoute || h.proto != .nicroute || UInt32(h.table) == RoutingTable.main
    }

    /// Links and addresses always matter; routes in the main table or in nicroute's tables;
    /// local routes that are sources of a managed NIC (`Planner.isLocalSource`), added or
    /// removed; rules and routes of nicroute's that went away; neighbours being probed.
    static func isRelevant(_ object: RouteObject, added: Bool, interest: Interest) -> Bool {
        switch object {
        case .link, .address:
            return true
        case .route(let r):
            if r.table == RoutingTable.main { return true }
            if r.table == RoutingTable.local {
                guard interest.localRoutes, let oif = r.outputInterface else { return false }
                return interest.managed.contains(oif) && Planner.isLocalSource(r)
            }
            if r.proto == .nicroute { return !added }
            return interest.tables?.contains(r.table) ?? false
        case .rule(let r):
            return r.proto == .nicroute && !added
        case .neighbor(let n):
            return interest.probes.contains(n.address) && n.state.hasAnswered
        }
    }

    /// Takes everything recorded since the last call.
    func take() -> KernelEvents {
        defer { pending = KernelEvents() }
        return pending
    }
}
