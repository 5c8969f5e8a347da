import Testing

@testable import NicrouteCore

// What a pass may keep from the last one: the quiet plan while its inputs stand, and the kernel
// picture a pass leaves (its snapshot with its changes made), from which the daemon answers
// status and plan. The planner's own fixed point ("plan, apply, plan again is empty") is checked
// with `applying` here too.

private func pfx(_ s: String) -> IPPrefix { IPPrefix(s)! }
private let up: LinkFlags = [.up, .broadcast, .running, .lowerUp]

private func nic(_ index: Int32, _ name: String, mtu: UInt32 = 1500, flags: LinkFlags = up) -> Link {
    Link(
        index: index, name: name, mac: MACAddress(bytes: [0xfa, 0x16, 0x3e, 0, 0, UInt8(index)]), flags: flags,
        operationalState: .up, mtu: mtu, hardwareType: 1)
}

private func addr(_ index: Int32, _ p: String) -> InterfaceAddress {
    let prefix = pfx(p)
    return InterfaceAddress(
        linkIndex: index, address: prefix.address, prefixLength: prefix.length, scope: .universe, flags: [.permanent])
}

private func connected(_ a: InterfaceAddress) -> Route {
    Route(
        family: .inet, table: RoutingTable.main, destination: a.subnet, proto: .kernel, scope: .link,
        outputInterface: a.linkIndex, preferredSource: a.address)
}

/// Two NICs, each with an address and its connected route, a default route through the first.
private let twoNICs: KernelSnapshot = {
    let a = [addr(2, "10.0.1.5/24"), addr(3, "10.0.2.5/24")]
    return KernelSnapshot(
        links: [nic(1, "lo", flags: [.up, .loopback]), nic(2, "eth0"), nic(3, "eth1")], addresses: a,
        routes: a.map(connected) + [
            Route(
                family: .inet, table: RoutingTable.main, destination: pfx("0.0.0.0/0"), proto: .dhcp,
                gateway: IPAddress("10.0.1.1")!, outputInterface: 2)
        ])
}()

private let planner: Planner = {
    var c = Configuration()
    c.manage = []
    return Planner(configuration: c)
}()

@Suite struct KernelPictureTests {
    @Test func aPlanAppliedToItsSnapshotLeavesNothingToDo() {
        let plan = planner.plan(snapshot: twoNICs, slots: SlotTable())
        #expect(!plan.changes.isEmpty)
        let after = twoNICs.applying(plan.changes)
        #expect(planner.plan(snapshot: after, slots: plan.slots).changes == [])
        #expect(
            after.routes.count == twoNICs.routes.count
                + plan.changes.filter { if case .addRoute = $0 { true } else { false } }.count)
    }

    @Test func aSettledPlanIsWhatPlanningThePictureAfterItsChangesGives() {
        let hints = [Int32(3): [GatewayHint(gateway: IPAddress("10.0.2.1")!, source: .configuration)]]
        for h in [[:], hints] {
            let plan = planner.plan(snapshot: twoNICs, slots: SlotTable(), hints: h)
            #expect(!plan.changes.isEmpty)
            #expect(planner.plan(snapshot: twoNICs.applying(plan.changes), slots: plan.slots, hints: h) == plan.settled)
        }
    }

    @Test func changesAreMadeAsTheKernelMakesThem() {
        let plan = planner.plan(snapshot: twoNICs, slots: SlotTable())
        let installed = twoNICs.applying(plan.changes)
        let rule = installed.rules.first(where: Planner.isOwned)!
        let route = installed.routes.first(where: Planner.isOwned)!
        var regateway = route
        regateway.preferredSource = IPAddress("10.0.1.99")!

        // An add of what exists leaves it; a replace takes its place; deletes remove one each
        // and ignore what is gone.
        #expect(installed.applying([.addRoute(regateway), .addRule(rule)]) == installed)
        let replaced = installed.applying([.replaceRoute(regateway)])
        #expect(replaced.routes.count == installed.routes.count)
        #expect(replaced.routes.contains(regateway) && !replaced.routes.contains(route))
        let deleted = installed.applying([.deleteRoute(route), .deleteRule(rule), .deleteRule(rule)])
        #expect(deleted.routes.count == installed.routes.count - 1)
        #expect(deleted.rules.count == installed.rules.count - 1)
        #expect(!deleted.rules.contains(rule))
        // Deleted, then added again: back in place, once.
        let back = installed.applying([.deleteRule(rule), .addRule(rule), .addRule(rule)])
        #expect(back.rules.filter { $0 == rule }.count == 1)
        #expect(installed.applying([]) == installed)
    }
}

@Suite struct QuietPlanTests {
    /// eth1's gateway (without it, the plan would probe for one: not quiet).
    private let hints = [Int32(3): [GatewayHint(gateway: IPAddress("10.0.2.1")!, source: .configuration)]]

    /// A quiet plan over `twoNICs` with its rules in place.
    private func quiet() -> (QuietPlan, KernelSnapshot, Plan) {
        let first = planner.plan(snapshot: twoNICs, slots: SlotTable(), hints: hints)
        let picture = twoNICs.applying(first.changes)
        let plan = planner.plan(snapshot: picture, slots: first.slots, hints: hints)
        var quiet = QuietPlan()
        quiet.record(snapshot: picture, hints: hints, plan: plan)
        return (quiet, picture, plan)
    }

    @Test func onlyAQuietPlanIsKept() {
        var q = QuietPlan()
        let busy = planner.plan(snapshot: twoNICs, slots: SlotTable(), hints: hints)
        q.record(snapshot: twoNICs, hints: hints, plan: busy)
        #expect(q.isEmpty)
        let (kept, _, _) = quiet()
        #expect(!kept.isEmpty)
    }

    @Test func lessIsReadOnlyAfterAnnouncementsOfAddressesOrLinksUnderTheSameSlots() {
        let (q, _, plan) = quiet()
        #expect(q.mayReadLess(.addresses, slots: plan.slots))
        #expect(q.mayReadLess(.linksAndAddresses, slots: plan.slots))
        #expect(!q.mayReadLess(.everything, slots: plan.slots))
        #expect(!q.mayReadLess(.addresses, slots: SlotTable()))
        #expect(!QuietPlan().mayReadLess(.addresses, slots: plan.slots))
        var forgotten = q
        forgotten.forget()
        #expect(!forgotten.mayReadLess(.addresses, slots: plan.slots))
    }

    @Test func theSameAddressesAndLinksThatPlanAlikeLeaveThePictureStanding() {
        var (q, picture, plan) = quiet()
        // A DHCP renewal: the same addresses.
        #expect(q.picture(addresses: picture.addresses, links: nil) == picture)
        // An MTU change: plans alike; the plan's NIC shows the new MTU.
        var links = picture.links
        links[2].mtu = 9000
        let standing = q.picture(addresses: picture.addresses, links: links)
        #expect(standing?.links == links)
        let reused = q.reuse(snapshot: standing!, hints: hints, slots: plan.slots)
        #expect(reused?.changes == [])
        #expect(reused?.nics.first { $0.link.index == 3 }?.link.mtu == 9000)
        #expect(reused?.nics.count == plan.nics.count)
        // A link down, an address gone: the picture does not stand.
        links[2].flags.remove(.up)
        #expect(q.picture(addresses: picture.addresses, links: links) == nil)
        #expect(q.picture(addresses: Array(picture.addresses.dropLast()), links: nil) == nil)
    }

    @Test func aWholePictureReusesThePlanOnlyWhenNothingItDependsOnChanged() {
        let (q, picture, plan) = quiet()
        var same = q
        #expect(same.reuse(snapshot: picture, hints: hints, slots: plan.slots) == plan)
        var hinted = q
        #expect(hinted.reuse(snapshot: picture, hints: [:], slots: plan.slots) == nil)
        var slotted = q
        #expect(slotted.reuse(snapshot: picture, hints: hints, slots: SlotTable()) == nil)
        var routed = q
        var other = picture
        other.routes.removeLast()
        #expect(routed.reuse(snapshot: other, hints: hints, slots: plan.slots) == nil)
        var ruled = q
        other = picture
        other.rules.removeLast()
        #expect(ruled.reuse(snapshot: other, hints: hints, slots: plan.slots) == nil)
    }
}
