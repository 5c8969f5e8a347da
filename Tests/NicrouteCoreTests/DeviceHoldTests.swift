import Testing

@testable import NicrouteCore

// udev's per-NIC opt-out (`NICROUTE_MANAGE=`) and the wait for udev, as the planner sees them:
// the daemon reads udev's database and hands over `KernelSnapshot.deviceHolds`.

private func pfx(_ s: String) -> IPPrefix { IPPrefix(s)! }
private let up: LinkFlags = [.up, .broadcast, .running, .lowerUp]

private func nic(_ index: Int32, _ name: String) -> Link {
    Link(
        index: index, name: name, mac: MACAddress(bytes: [0xfa, 0x16, 0x3e, 0, 0, UInt8(index)]), flags: up,
        operationalState: .up, mtu: 1500, hardwareType: 1)
}

private func addr(_ index: Int32, _ p: String) -> InterfaceAddress {
    let prefix = pfx(p)
    return InterfaceAddress(
        linkIndex: index, address: prefix.address, prefixLength: prefix.length, scope: .universe, flags: [.permanent])
}

/// Two NICs, each with an address and its connected route, a default route through each.
private func twoNICs(holds: [Int32: DeviceHold] = [:]) -> KernelSnapshot {
    let a = [addr(2, "10.0.1.5/24"), addr(3, "10.0.2.5/24")]
    return KernelSnapshot(
        links: [
            Link(index: 1, name: "lo", flags: [.up, .loopback], hardwareType: 772), nic(2, "eth0"), nic(3, "eth1"),
        ],
        addresses: a,
        routes: a.map {
            Route(
                family: .inet, table: RoutingTable.main, destination: $0.subnet, proto: .kernel, scope: .link,
                outputInterface: $0.linkIndex, preferredSource: $0.address)
        } + [
            Route(
                family: .inet, table: RoutingTable.main, destination: pfx("0.0.0.0/0"), proto: .dhcp,
                gateway: IPAddress("10.0.1.1")!, outputInterface: 2),
            Route(
                family: .inet, table: RoutingTable.main, destination: pfx("0.0.0.0/0"), proto: .dhcp,
                gateway: IPAddress("10.0.2.1")!, outputInterface: 3, metric: 200),
        ],
        deviceHolds: holds)
}

/// A configuration whose `Manage=` names both NICs.
private let planner: Planner = {
    var c = Configuration()
    c.manage = [InterfaceMatch("eth*")]
    return Planner(configuration: c)
}()

/// The changes of a plan to the rules and routes of `table`.
private func touches(_ changes: [Change], table: UInt32) -> [Change] {
    changes.filter { c in
        switch c {
        case .addRoute(let r), .replaceRoute(let r), .deleteRoute(let r): r.table == table
        case .addRule(let r), .deleteRule(let r): r.table == table
        }
    }
}

/// The table of the plan's only NIC, when every change it adds is of that table (a held NIC
/// gets no table; its connected route is copied into the other's table as any unmanaged
/// interface's is).
private func onlyTable(_ plan: Plan) -> UInt32? {
    guard plan.nics.count == 1, let table = plan.nics.first?.table else { return nil }
    return plan.changes.allSatisfy { !$0.isAddition || touches([$0], table: table) == [$0] } ? table : nil
}

struct ValueCase: CustomTestStringConvertible, Sendable {
    var value: String
    var parsed: DeviceHold.Value
    var testDescription: String { "\"\(value)\"" }
}

@Suite struct DeviceHoldTests {
    @Test(arguments: [
        ValueCase(value: "0", parsed: .no), ValueCase(value: "no", parsed: .no),
        ValueCase(value: "false", parsed: .no), ValueCase(value: "off", parsed: .no),
        ValueCase(value: "NO", parsed: .no), ValueCase(value: "Off", parsed: .no),
        ValueCase(value: "1", parsed: .yes), ValueCase(value: "yes", parsed: .yes),
        ValueCase(value: "true", parsed: .yes), ValueCase(value: "on", parsed: .yes),
        ValueCase(value: "TRUE", parsed: .yes), ValueCase(value: "", parsed: .invalid),
        ValueCase(value: "2", parsed: .invalid), ValueCase(value: "maybe", parsed: .invalid),
        ValueCase(value: " 0", parsed: .invalid), ValueCase(value: "n", parsed: .invalid),
    ])
    func values(_ c: ValueCase) {
        #expect(DeviceHold.parse(c.value) == c.parsed)
    }

    @Test func holdFollowsUdev() {
        // Where udev does not run the configuration decides alone, whatever a file says.
        #expect(DeviceHold.hold(udevRuns: false, initialized: false, value: nil) == nil)
        #expect(DeviceHold.hold(udevRuns: false, initialized: true, value: "0") == nil)
        // Not processed yet: held until udev is done.
        #expect(DeviceHold.hold(udevRuns: true, initialized: false, value: nil) == .uninitialized)
        #expect(DeviceHold.hold(udevRuns: true, initialized: true, value: nil) == nil)
        #expect(DeviceHold.hold(udevRuns: true, initialized: true, value: "0") == .optedOut("0"))
        #expect(DeviceHold.hold(udevRuns: true, initialized: true, value: "off") == .optedOut("off"))
        // Yes and invalid values have no effect.
        #expect(DeviceHold.hold(udevRuns: true, initialized: true, value: "1") == nil)
        #expect(DeviceHold.hold(udevRuns: true, initialized: true, value: "maybe") == nil)
    }

    @Test func aHeldNICIsNotManagedWhateverManageSays() {
        let link = nic(3, "eth1")
        #expect(planner.isManaged(link))
        #expect(!planner.isManaged(link, hold: .optedOut("0")))
        #expect(!planner.isManaged(link, hold: .uninitialized))
        // The default selection too.
        var c = Configuration()
        c.manage = []
        #expect(Planner(configuration: c).isManaged(link))
        #expect(!Planner(configuration: c).isManaged(link, hold: .optedOut("no")))
    }

    @Test func anOptedOutNICGetsNothingEvenWhenManageMatches() {
        let plan = planner.plan(snapshot: twoNICs(holds: [3: .optedOut("0")]), slots: SlotTable())
        #expect(plan.nics.map(\.link.name) == ["eth0"])
        #expect(!plan.changes.isEmpty)
        // No rule for eth1's address, no route out of eth1 in any table of nicroute.
        #expect(
            !plan.changes.contains {
                if case .addRule(let r) = $0 { r.source == pfx("10.0.2.5/32") } else { false }
            })
        #expect(onlyTable(plan) != nil)
        // Without the hold it is managed.
        let free = planner.plan(snapshot: twoNICs(), slots: SlotTable())
        #expect(free.nics.map(\.link.name) == ["eth0", "eth1"])
    }

    @Test func anOptedOutNICLosesWhatItHad() {
        let free = planner.plan(snapshot: twoNICs(), slots: SlotTable())
        let eth1 = free.nics.first { $0.link.name == "eth1" }!
        var after = twoNICs().applying(free.changes)
        after.deviceHolds = [3: .optedOut("false")]
        let plan = planner.plan(snapshot: after, slots: free.slots)
        let gone = touches(plan.changes, table: eth1.table)
        #expect(!gone.isEmpty)
        #expect(gone.allSatisfy { !$0.isAddition })
        // Everything of eth1's table goes: planning the result finds nothing left.
        let settled = after.applying(plan.changes)
        #expect(settled.rules.filter { Planner.isOwned($0) && $0.table == eth1.table }.isEmpty)
        #expect(settled.routes.filter { Planner.isOwned($0) && $0.table == eth1.table }.isEmpty)
        #expect(planner.plan(snapshot: settled, slots: plan.slots).changes == [])
    }

    @Test func aNICUdevHasNotProcessedWaitsThenIsManaged() {
        let waiting = planner.plan(snapshot: twoNICs(holds: [3: .uninitialized]), slots: SlotTable())
        #expect(waiting.nics.map(\.link.name) == ["eth0"])
        #expect(onlyTable(waiting) != nil)
        // udev is done and did not opt it out: the next pass manages it.
        var done = twoNICs().applying(waiting.changes)
        done.deviceHolds = [:]
        let plan = planner.plan(snapshot: done, slots: waiting.slots)
        #expect(plan.nics.map(\.link.name) == ["eth0", "eth1"])
        #expect(
            plan.changes.contains {
                if case .addRule(let r) = $0 { r.source == pfx("10.0.2.5/32") } else { false }
            })
    }

    @Test func aQuietPlanDoesNotStandWhenUdevChangedItsWord() {
        let first = planner.plan(snapshot: twoNICs(), slots: SlotTable())
        let settled = twoNICs().applying(first.changes)
        var quiet = QuietPlan()
        let plan = planner.plan(snapshot: settled, slots: first.slots)
        quiet.record(snapshot: settled, hints: [:], plan: plan)
        #expect(quiet.reuse(snapshot: settled, hints: [:], slots: plan.slots) != nil)
        var optedOut = settled
        optedOut.deviceHolds = [3: .optedOut("0")]
        #expect(quiet.reuse(snapshot: optedOut, hints: [:], slots: plan.slots) == nil)
    }

    @Test func statusNamesTheNICsUdevKeepsAway() throws {
        let snapshot = twoNICs(holds: [3: .optedOut("0")])
        let report = StatusReport(
            plan: planner.plan(snapshot: snapshot, slots: SlotTable()), snapshot: snapshot, summary: "1 NIC",
            fromDaemon: true)
        #expect(report.nics.map(\.name) == ["eth0"])
        #expect(
            report.excluded == [
                StatusReport.Excluded(name: "eth1", index: 3, reason: "NICROUTE_MANAGE=0 in udev's database")
            ])
        #expect(report.rendered().contains("Not managed: eth1: NICROUTE_MANAGE=0 in udev's database"))
        let text = JSONCoding.encode(report)
        #expect(try JSONCoding.decode(StatusReport.self, from: text) == report)
        let waiting = twoNICs(holds: [3: .uninitialized])
        let report2 = StatusReport(
            plan: planner.plan(snapshot: waiting, slots: SlotTable()), snapshot: waiting, summary: "1 NIC",
            fromDaemon: true)
        #expect(report2.excluded.map(\.reason) == ["udev has not finished with it yet"])
        // Nothing held back: no key at all (the report older daemons sent).
        let free = twoNICs()
        let report3 = StatusReport(
            plan: planner.plan(snapshot: free, slots: SlotTable()), snapshot: free, summary: "2 NICs",
            fromDaemon: true)
        guard case .object(let plain) = try JSONCoding.decode(JSONValue.self, from: JSONCoding.encode(report3)) else {
            Issue.record("not an object")
            return
        }
        #expect(plain["excluded"] == nil)
        #expect(plain["nics"] != nil)
        // A daemon older than the opt-out sends no `excluded`: nothing excluded.
        guard case .object(var members) = try JSONCoding.decode(JSONValue.self, from: text) else {
            Issue.record("not an object")
            return
        }
        #expect(members["excluded"] != nil)
        members["excluded"] = nil
        #expect(
            try JSONCoding.decode(StatusReport.self, from: JSONCoding.encode(JSONValue.object(members))).excluded == [])
    }
}
