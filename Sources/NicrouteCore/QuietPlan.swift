/// The last plan that found nothing to do, and when it may stand for a pass without the whole
/// kernel picture being read or planned again.
///
/// The same kernel picture, gateway hints and slots under the same configuration make the same
/// plan. A pass told that only addresses (or only links and addresses) were announced since the
/// last one (`PassReading`) reads just those: when they are what the quiet plan was made from
/// (a DHCP renewal: new lifetimes, same addresses; a link that changed only its MTU), the rest
/// of its picture stands, because the kernel changes routes and rules without announcing it
/// only when addresses or links change (an address removed, a link down), and any announced
/// change would have come as an event and asked for a whole read. A pass that read everything
/// still skips planning when its picture equals the quiet one.
///
/// The reconciler does the reading and forgets the plan whatever could change it otherwise
/// (a new configuration, forwarded connections turned on or off, a flush). Pure: values in,
/// values out.
public struct QuietPlan: Sendable {
    private var last: (snapshot: KernelSnapshot, hints: [Int32: [GatewayHint]], plan: Plan)?

    public init() {}

    /// Whether there is a quiet plan.
    public var isEmpty: Bool { last == nil }

    /// Forgets the quiet plan: the next pass plans anew.
    public mutating func forget() { last = nil }

    /// Whether a pass told `reading` may read less than everything: only when something else
    /// than the whole picture was announced and the last plan was quiet under these slots.
    public func mayReadLess(_ reading: PassReading, slots: SlotTable) -> Bool {
        reading != .everything && last?.plan.slots == slots
    }

    /// The quiet plan's picture with `addresses` and `links` just read (nil: not read, the
    /// picture's stand), when they leave it standing: the same addresses, links that plan alike.
    public func picture(addresses: [InterfaceAddress], links: [Link]?) -> KernelSnapshot? {
        guard var snapshot = last?.snapshot, addresses == snapshot.addresses else { return nil }
        if let links {
            guard Planner.planAlike(links, snapshot.links) else { return nil }
            snapshot.links = links
        }
        return snapshot
    }

    /// The quiet plan, its NICs' links refreshed from `snapshot`, when `snapshot`, `hints` and
    /// `slots` are those it was made from as far as a plan depends on them (the links' MTU aside);
    /// then the new picture is remembered. Nil otherwise.
    public mutating func reuse(snapshot: KernelSnapshot, hints: [Int32: [GatewayHint]], slots: SlotTable) -> Plan? {
        // (Pictures from `picture(addresses:links:)` share the arrays of routes and rules: the
        // comparisons below are then a pointer check, not thousands of objects.)
        guard let last, last.plan.slots == slots, last.hints == hints,
            Planner.planAlike(snapshot.links, last.snapshot.links), last.snapshot.addresses == snapshot.addresses,
            last.snapshot.routes == snapshot.routes, last.snapshot.rules == snapshot.rules,
            last.snapshot.neighbors == snapshot.neighbors, last.snapshot.deviceHolds == snapshot.deviceHolds
        else { return nil }
        let plan = Self.refreshed(last.plan, links: snapshot.links)
        self.last = (snapshot, hints, plan)
        return plan
    }

    /// Remembers a new plan and its inputs when it is quiet (nothing to change, nothing to
    /// probe); forgets the last one otherwise.
    public mutating func record(snapshot: KernelSnapshot, hints: [Int32: [GatewayHint]], plan: Plan) {
        last = plan.changes.isEmpty && plan.neighborProbes.isEmpty ? (snapshot, hints, plan) : nil
    }

    /// `plan` with its NICs' links as in `links` (those that plan alike differ in what the plan
    /// does not depend on, such as the MTU, which `status` shows).
    static func refreshed(_ plan: Plan, links: [Link]) -> Plan {
        var plan = plan
        let byIndex = Dictionary(links.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
        for i in plan.nics.indices {
            if let link = byIndex[plan.nics[i].link.index] { plan.nics[i].link = link }
        }
        return plan
    }
}
