import Testing

@testable import NicrouteCore

// Table-driven tests of the planner over the cases of docs/design.md. The "kernel" here is a value:
// `KernelSim` applies a plan the way the kernel would (IPv6 default metric, IPv6 scope), so the
// invariant "plan, apply, plan again is empty" can be checked for every case.

private func ip(_ s: String) -> IPAddress { IPAddress(s)! }
private func pfx(_ s: String) -> IPPrefix { IPPrefix(s)! }
private let upFlags: LinkFlags = [.up, .broadcast, .running, .lowerUp]

private func nic(_ index: Int32, _ name: String, mac: UInt8, kind: String? = nil, up: Bool = true) -> Link {
    Link(
        index: index, name: name, mac: MACAddress(bytes: [0xfa, 0x16, 0x3e, 0, 0, mac]),
        flags: up ? upFlags : [.broadcast],
        operationalState: up ? .up : .down, mtu: 1500, hardwareType: 1, kind: kind)
}

private func addr(
    _ index: Int32, _ p: String, flags: AddressFlags = [.permanent], scope: Scope = .universe
) -> InterfaceAddress {
    let prefix = pfx(p)
    return InterfaceAddress(
        linkIndex: index, address: prefix.address, prefixLength: prefix.length, scope: scope, flags: flags)
}

/// The kernel's connected route for an address (what `ip addr add` creates in main).
private func kernelRoute(_ a: InterfaceAddress) -> Route {
    Route(
        family: a.family, table: RoutingTable.main, destination: a.subnet, proto: .kernel,
        scope: a.family == .inet ? .link : .universe, outputInterface: a.linkIndex,
        preferredSource: a.family == .inet ? a.address : nil, metric: a.family == .inet ? nil : 256)
}

private func mainRoute(
    _ dst: String, via: String? = nil, dev: Int32, proto: RouteProtocol = .boot, metric: UInt32? = nil
) -> Route {
    let d = pfx(dst)
    return Route(
        family: d.family, table: RoutingTable.main, destination: d, proto: proto,
        scope: via == nil && d.family == .inet ? .link : .universe, gateway: via.map(ip), outputInterface: dev,
        metric: metric)
}

private let kernelDefaultRules: [Rule] = [
    Rule(family: .inet, priority: nil, table: RoutingTable.local, proto: .kernel),
    Rule(family: .inet, priority: 32766, table: RoutingTable.main, proto: .kernel),
    Rule(family: .inet, priority: 32767, table: RoutingTable.default, proto: .kernel),
    Rule(family: .inet6, priority: nil, table: RoutingTable.local, proto: .kernel),
    Rule(family: .inet6, priority: 32766, table: RoutingTable.main, proto: .kernel),
]

/// A VM as docs/design.md describes it: eth0 with the default route, eth1 without, metadata route on eth0.
private func twoNICVM() -> KernelSnapshot {
    let a0 = addr(2, "10.10.10.29/24")
    let a1 = addr(3, "20.20.20.16/24")
    return KernelSnapshot(
        links: [
            Link(index: 1, name: "lo", flags: [.up, .loopback], hardwareType: 772), nic(2, "eth0", mac: 1),
            nic(3, "eth1", mac: 2),
        ],
        addresses: [a0, a1],
        routes: [
            kernelRoute(a0), kernelRoute(a1), mainRoute("0.0.0.0/0", via: "10.10.10.1", dev: 2, proto: .dhcp),
            mainRoute("169.254.169.254/32", via: "10.10.10.1", dev: 2, proto: .dhcp),
        ],
        rules: kernelDefaultRules)
}

/// Applies changes the way the kernel stores them.
struct KernelSim {
    static func apply(_ changes: [Change], to s: KernelSnapshot) -> KernelSnapshot {
        var s = s
        for c in changes {
            switch c {
            case .addRoute(var r), .replaceRoute(var r):
                if r.family == .inet6 && r.metric == nil { r.metric = 1024 }
                s.routes.removeAll { $0.key == r.key }
                s.routes.append(r)
            case .deleteRoute(let r): s.routes.removeAll { $0.key == r.key && $0.proto == r.proto }
            case .addRule(let r): s.rules.append(r)
            case .deleteRule(let r):
                if let i = s.rules.firstIndex(of: r) { s.rules.remove(at: i) }
            }
        }
        return s
    }
}

private func routes(_ plan: Plan, table: UInt32) -> [Route] {
    plan.changes.compactMap { if case .addRoute(let r) = $0, r.table == table { r } else { nil } }
}
private func rules(_ plan: Plan) -> [Rule] {
    plan.changes.compactMap { if case .addRule(let r) = $0 { r } else { nil } }
}

@Suite struct PlannerTests {
    let planner: Planner = {
        var c = Configuration()
        c.manage = []
        return Planner(configuration: c)
    }()

    @Test func twoNICsGetOneTableAndOneRuleEach() {
        let plan = planner.plan(
            snapshot: twoNICVM(), slots: SlotTable(),
            hints: [3: [GatewayHint(gateway: ip("20.20.20.1"), source: .networkd)]])
        #expect(plan.nics.map(\.link.name) == ["eth0", "eth1"])
        #expect(plan.nics.map(\.table) == [10000, 10001])
        #expect(plan.nics[0].ipv4Gateway == GatewayHint(gateway: ip("10.10.10.1"), source: .mainTable))
        #expect(plan.nics[1].ipv4Gateway == GatewayHint(gateway: ip("20.20.20.1"), source: .networkd))
        #expect(
            rules(plan) == [
                Rule(family: .inet, priority: 10000, table: 10000, source: pfx("10.10.10.29/32"), proto: .nicroute),
                Rule(family: .inet, priority: 10001, table: 10001, source: pfx("20.20.20.16/32"), proto: .nicroute),
            ])
        let t1 = routes(plan, table: 10001)
        let byDst = Dictionary(uniqueKeysWithValues: t1.map { ($0.destination, $0) })
        // 1. own subnet via eth1, no gateway
        #expect(byDst[pfx("20.20.20.0/24")]?.gateway == nil)
        #expect(byDst[pfx("20.20.20.0/24")]?.outputInterface == 3)
        #expect(byDst[pfx("20.20.20.0/24")]?.preferredSource == ip("20.20.20.16"))
        // 3. another managed NIC's subnet and its metadata route are reached via eth1's gateway
        #expect(byDst[pfx("10.10.10.0/24")]?.gateway == ip("20.20.20.1"))
        #expect(byDst[pfx("10.10.10.0/24")]?.outputInterface == 3)
        #expect(byDst[pfx("169.254.169.254/32")]?.gateway == ip("20.20.20.1"))
        // 4. default via eth1's gateway
        #expect(byDst[pfx("0.0.0.0/0")]?.gateway == ip("20.20.20.1"))
        #expect(t1.allSatisfy { $0.proto == .nicroute && $0.outputInterface == 3 })
    }

    @Test func connectedRoutesComeBeforeGatewayRoutesAndRulesAfterRoutes() {
        let plan = planner.plan(snapshot: twoNICVM(), slots: SlotTable())
        let kinds = plan.changes.map { c -> Int in
            switch c {
            case .addRoute(let r): r.gateway == nil ? 0 : 1
            case .replaceRoute: 1
            case .addRule: 2
            case .deleteRule: 3
            case .deleteRoute: 4
            }
        }
        #expect(kinds == kinds.sorted())
    }

    @Test func neverTouchesMainTableForeignOrKernelDefaultObjects() {
        var s = twoNICVM()
        let foreignRule = Rule(family: .inet, priority: 500, table: 99, firewallMark: 0x99, proto: .boot)
        let foreignRoute = Route(
            family: .inet, table: 99, destination: pfx("0.0.0.0/0"), proto: .static, gateway: ip("10.10.10.254"),
            outputInterface: 2)
        s.rules.append(foreignRule)
        s.routes.append(foreignRoute)
        // A stale nicroute object in the main table (never ours to touch) and a stale rule (ours).
        s.routes.append(
            Route(
                family: .inet, table: RoutingTable.main, destination: pfx("192.0.2.0/24"), proto: .nicroute,
                outputInterface: 2))
        let stale = Rule(family: .inet, priority: 10005, table: 10005, source: pfx("10.99.0.1/32"), proto: .nicroute)
        s.rules.append(stale)
        let plan = planner.plan(snapshot: s, slots: SlotTable())
        for c in plan.changes {
            switch c {
            case .addRoute(let r), .replaceRoute(let r), .deleteRoute(let r):
                #expect(r.table != RoutingTable.main)
                #expect(r.proto == .nicroute)
            case .addRule(let r), .deleteRule(let r):
                #expect(r.proto == .nicroute)
                #expect(!r.isKernelDefault)
            }
        }
        #expect(plan.changes.contains(.deleteRule(stale)))
        #expect(!plan.changes.contains(.deleteRule(foreignRule)))
    }

    @Test func secondaryAddressesEachGetARuleAndShareTheSubnetRoute() {
        var s = twoNICVM()
        s.addresses.append(addr(3, "20.20.20.17/24", flags: [.permanent, .secondary]))
        s.addresses.append(addr(3, "20.20.30.5/24"))
        let plan = planner.plan(snapshot: s, slots: SlotTable())
        #expect(
            Set(rules(plan).filter { $0.table == 10001 }.compactMap(\.source)) == [
                pfx("20.20.20.16/32"), pfx("20.20.20.17/32"), pfx("20.20.30.5/32"),
            ])
        let subnets = routes(plan, table: 10001).filter { $0.destination == pfx("20.20.20.0/24") }
        #expect(subnets.count == 1)
        #expect(subnets.first?.preferredSource == ip("20.20.20.16"))  // the primary
        #expect(routes(plan, table: 10001).contains { $0.destination == pfx("20.20.30.0/24") && $0.gateway == nil })
    }

    @Test func ipv6SubnetSourceDoesNotFollowTheNewestAddress() {
        // The kernel lists IPv6 addresses newest first. Whatever the order, the subnet route's
        // `src` is a stable choice, and adding or removing another address changes no route.
        var s = twoNICVM()
        s.routes.append(mainRoute("::/0", via: "fd00:20::1", dev: 3, proto: .ra, metric: 1024))
        let slots = SlotTable(["fa:16:3e:00:00:01": 0, "fa:16:3e:00:00:02": 1])
        func subnetSource(_ plan: Plan) -> IPAddress? {
            plan.changes.compactMap {
                switch $0 {
                case .addRoute(let r), .replaceRoute(let r):
                    r.destination == pfx("fd00:20::/64") ? r.preferredSource : nil
                default: nil
                }
            }.first
        }
        for order in [["fd00:20::16/64", "fd00:20::5/64"], ["fd00:20::5/64", "fd00:20::16/64"]] {
            var t = s
            t.addresses += order.map { addr(3, $0) }
            #expect(subnetSource(planner.plan(snapshot: t, slots: slots)) == ip("fd00:20::5"))
        }
        s.addresses.append(addr(3, "fd00:20::16/64"))
        s = KernelSim.apply(planner.plan(snapshot: s, slots: slots).changes, to: s)
        for added in ["fd00:20::99/64", "fd00:20::3/64", "fd00:20::4/64"] {
            s.addresses.insert(addr(3, added), at: s.addresses.firstIndex { $0.family == .inet6 } ?? 0)
            let plan = planner.plan(snapshot: s, slots: slots)
            #expect(
                plan.changes == [
                    .addRule(
                        Rule(
                            family: .inet6, priority: 10001, table: 10001, source: .host(pfx(added).address),
                            proto: .nicroute))
                ])
            s = KernelSim.apply(plan.changes, to: s)
        }
        // A temporary (privacy) or deprecated address is not chosen while a permanent one exists.
        var u = twoNICVM()
        u.routes.append(mainRoute("::/0", via: "fd00:20::1", dev: 3, proto: .ra, metric: 1024))
        u.addresses += [
            addr(3, "fd00:20::1:1/64", flags: [.secondary]), addr(3, "fd00:20::2/64", flags: [.deprecated]),
            addr(3, "fd00:20::9/64"),
        ]
        #expect(subnetSource(planner.plan(snapshot: u, slots: slots)) == ip("fd00:20::9"))
        // When the `src` goes away, the lowest remaining address takes over.
        s.addresses.removeAll { $0.address == ip("fd00:20::16") }
        s.rules.removeAll { $0.source == pfx("fd00:20::16/128") }
        #expect(subnetSource(planner.plan(snapshot: s, slots: slots)) == ip("fd00:20::3"))
    }

    @Test func nicWithoutGatewayGetsOnlySubnetRoutesAndAProbe() {
        let plan = planner.plan(snapshot: twoNICVM(), slots: SlotTable())
        let t1 = routes(plan, table: 10001)
        #expect(t1.map(\.destination) == [pfx("20.20.20.0/24")])
        #expect(plan.nics[1].ipv4Gateway == nil)
        #expect(plan.nics[1].notes.contains { $0.contains("20.20.20.1") })
        #expect(plan.neighborProbes == [NeighborProbe(address: ip("20.20.20.1"), linkIndex: 3)])
        // The rule is still there: traffic from the address at least reaches its own subnet via eth1.
        #expect(rules(plan).contains { $0.source == pfx("20.20.20.16/32") })
    }

    @Test func firstHostIsUsedOnceItAnswers() {
        var s = twoNICVM()
        s.neighbors = [Neighbor(linkIndex: 3, address: ip("20.20.20.1"), state: .stale)]
        let plan = planner.plan(snapshot: s, slots: SlotTable())
        #expect(plan.nics[1].ipv4Gateway == GatewayHint(gateway: ip("20.20.20.1"), source: .firstHost))
        #expect(plan.neighborProbes.isEmpty)
        s.neighbors = [Neighbor(linkIndex: 3, address: ip("20.20.20.1"), state: .failed)]
        #expect(planner.plan(snapshot: s, slots: SlotTable()).nics[1].ipv4Gateway == nil)
        var noFallback = Configuration()
        noFallback.firstHostFallback = false
        s.neighbors = [Neighbor(linkIndex: 3, address: ip("20.20.20.1"), state: .reachable)]
        #expect(Planner(configuration: noFallback).plan(snapshot: s, slots: SlotTable()).nics[1].ipv4Gateway == nil)
    }

    struct DiscoveryCase: Sendable, CustomTestStringConvertible {
        var name: String
        var override: String? = nil
        var mainDefault: String? = nil
        var hints: [GatewayHint] = []
        var neighbor: String? = nil
        var expected: GatewayHint?
        var testDescription: String { name }
    }

    @Test(arguments: [
        DiscoveryCase(
            name: "override beats everything", override: "20.20.20.254", mainDefault: "20.20.20.1",
            hints: [GatewayHint(gateway: ip("20.20.20.2"), source: .networkd)], neighbor: "20.20.20.1",
            expected: GatewayHint(gateway: ip("20.20.20.254"), source: .configuration)),
        DiscoveryCase(
            name: "main-table default on the NIC beats leases", mainDefault: "20.20.20.1",
            hints: [GatewayHint(gateway: ip("20.20.20.2"), source: .networkd)],
            expected: GatewayHint(gateway: ip("20.20.20.1"), source: .mainTable)),
        DiscoveryCase(
            name: "first lease in order wins",
            hints: [
                GatewayHint(gateway: ip("20.20.20.3"), source: .dhclient),
                GatewayHint(gateway: ip("20.20.20.4"), source: .networkData),
            ], neighbor: "20.20.20.1", expected: GatewayHint(gateway: ip("20.20.20.3"), source: .dhclient)),
        DiscoveryCase(
            name: "a hint of the wrong family or the NIC's own address is skipped",
            hints: [
                GatewayHint(gateway: ip("fd00::1"), source: .networkd),
                GatewayHint(gateway: ip("20.20.20.16"), source: .dhclient),
                GatewayHint(gateway: ip("20.20.20.5"), source: .networkData),
            ], expected: GatewayHint(gateway: ip("20.20.20.5"), source: .networkData)),
        DiscoveryCase(
            name: "first host only when it answered", neighbor: "20.20.20.1",
            expected: GatewayHint(gateway: ip("20.20.20.1"), source: .firstHost)),
        DiscoveryCase(name: "nothing at all", expected: nil),
    ])
    func gatewayDiscoveryOrder(_ c: DiscoveryCase) {
        var s = twoNICVM()
        var config = Configuration()
        if let o = c.override { config.gateways = [GatewayOverride(match: .name("eth1"), ipv4: ip(o))] }
        if let d = c.mainDefault { s.routes.append(mainRoute("0.0.0.0/0", via: d, dev: 3, metric: 200)) }
        if let n = c.neighbor { s.neighbors = [Neighbor(linkIndex: 3, address: ip(n), state: .reachable)] }
        let plan = Planner(configuration: config).plan(snapshot: s, slots: SlotTable(), hints: [3: c.hints])
        #expect(plan.nics[1].ipv4Gateway == c.expected)
    }

    @Test func sameSubnetNICsEachKeepTheirOwnSubnetRoute() {
        let a0 = addr(2, "10.0.0.5/24")
        let a1 = addr(3, "10.0.0.6/24")
        let s = KernelSnapshot(
            links: [nic(2, "eth0", mac: 1), nic(3, "eth1", mac: 2)], addresses: [a0, a1],
            routes: [kernelRoute(a0), kernelRoute(a1), mainRoute("0.0.0.0/0", via: "10.0.0.1", dev: 2)],
            rules: kernelDefaultRules)
        let plan = planner.plan(
            snapshot: s, slots: SlotTable(), hints: [3: [GatewayHint(gateway: ip("10.0.0.1"), source: .networkd)]])
        for (table, dev, src) in [(UInt32(10000), Int32(2), "10.0.0.5"), (10001, 3, "10.0.0.6")] {
            let subnet = routes(plan, table: table).first { $0.destination == pfx("10.0.0.0/24") }
            #expect(subnet?.outputInterface == dev)
            #expect(subnet?.gateway == nil)
            #expect(subnet?.preferredSource == ip(src))
            #expect(routes(plan, table: table).first { $0.destination.isDefault }?.outputInterface == dev)
        }
    }

    @Test func nicsSharingAMACGetTheirOwnTables() {
        var s = twoNICVM()
        s.links[2].mac = s.links[1].mac
        let plan = planner.plan(snapshot: s, slots: SlotTable())
        #expect(Set(plan.nics.map(\.table)).count == 2)
        #expect(plan.slots.slots.keys.sorted() == ["name:eth0", "name:eth1"])
    }

    @Test func theLowerMetricRouteToAPrefixIsCopied() {
        var s = twoNICVM()
        s.routes.append(mainRoute("10.200.0.0/16", via: "10.10.10.9", dev: 2, metric: 500))
        s.routes.append(mainRoute("10.200.0.0/16", via: "10.10.10.8", dev: 2, metric: 100))
        let plan = planner.plan(snapshot: s, slots: SlotTable())
        #expect(
            routes(plan, table: 10000).first { $0.destination == pfx("10.200.0.0/16") }?.gateway == ip("10.10.10.8"))
    }

    @Test func bridgeAndOtherUnmanagedRoutesAreCopiedAsTheyAre() {
        var s = twoNICVM()
        let bridge = Link(
            index: 7, name: "docker0", mac: MACAddress(bytes: [2, 0x42, 0, 0, 0, 1]), flags: upFlags, hardwareType: 1,
            kind: "bridge")
        let vpn = Link(index: 8, name: "wg0", flags: upFlags, hardwareType: 65534, kind: "wireguard")
        s.links += [bridge, vpn]
        let ba = addr(7, "172.17.0.1/16")
        s.addresses.append(ba)
        s.routes += [kernelRoute(ba), mainRoute("10.200.0.0/16", dev: 8, proto: .static)]
        let plan = planner.plan(
            snapshot: s, slots: SlotTable(), hints: [3: [GatewayHint(gateway: ip("20.20.20.1"), source: .networkd)]])
        #expect(!plan.nics.contains { $0.link.name == "docker0" || $0.link.name == "wg0" })
        for table: UInt32 in [10000, 10001] {
            let docker = routes(plan, table: table).first { $0.destination == pfx("172.17.0.0/16") }
            #expect(docker?.outputInterface == 7)
            #expect(docker?.gateway == nil)
            #expect(docker?.preferredSource == ip("172.17.0.1"))
            #expect(routes(plan, table: table).first { $0.destination == pfx("10.200.0.0/16") }?.outputInterface == 8)
        }
    }

    @Test func routesLearnedOnTheNICAreKeptOnIt() {
        var s = twoNICVM()
        // A DHCP classless static route on eth1 and a host route.
        s.routes.append(mainRoute("30.30.30.0/24", via: "20.20.20.254", dev: 3, proto: .dhcp))
        s.routes.append(mainRoute("20.20.99.9/32", dev: 3, proto: .static))
        let plan = planner.plan(
            snapshot: s, slots: SlotTable(), hints: [3: [GatewayHint(gateway: ip("20.20.20.1"), source: .networkd)]])
        let t1 = routes(plan, table: 10001)
        #expect(t1.first { $0.destination == pfx("30.30.30.0/24") }?.gateway == ip("20.20.20.254"))
        #expect(t1.first { $0.destination == pfx("20.20.99.9/32") }?.outputInterface == 3)
        // From eth0's source, the same destinations go via eth0's gateway.
        let t0 = routes(plan, table: 10000)
        #expect(t0.first { $0.destination == pfx("30.30.30.0/24") }?.gateway == ip("10.10.10.1"))
        #expect(t0.first { $0.destination == pfx("30.30.30.0/24") }?.outputInterface == 2)
    }

    struct SelectionCase: Sendable, CustomTestStringConvertible {
        var name: String
        var link: Link
        var manage: [String]
        var ignore: [String]
        var managed: Bool
        var testDescription: String { name }
    }

    @Test(arguments: [
        SelectionCase(
            name: "physical NIC by default", link: nic(2, "ens3", mac: 1), manage: [], ignore: [], managed: true),
        SelectionCase(
            name: "veth not by default", link: nic(2, "eth0", mac: 1, kind: "veth"), manage: [], ignore: [],
            managed: false),
        SelectionCase(
            name: "bridge never by default", link: nic(2, "br0", mac: 1, kind: "bridge"), manage: [], ignore: [],
            managed: false),
        SelectionCase(
            name: "loopback never", link: Link(index: 1, name: "lo", flags: [.up, .loopback], hardwareType: 772),
            manage: ["*"],
            ignore: [], managed: false),
        SelectionCase(
            name: "tunnel not by default", link: Link(index: 5, name: "tun0", flags: upFlags, hardwareType: 65534),
            manage: [], ignore: [], managed: false),
        SelectionCase(
            name: "manage glob selects veth", link: nic(2, "eth0", mac: 1, kind: "veth"), manage: ["eth*"], ignore: [],
            managed: true),
        SelectionCase(
            name: "manage list replaces default", link: nic(2, "ens3", mac: 1), manage: ["eth*"], ignore: [],
            managed: false),
        SelectionCase(
            name: "manage by MAC", link: nic(2, "ens3", mac: 9), manage: ["fa:16:3e:00:00:09"], ignore: [],
            managed: true),
        SelectionCase(
            name: "ignore wins", link: nic(2, "eth0", mac: 1), manage: ["eth*"], ignore: ["eth0"], managed: false),
    ])
    func interfaceSelection(_ c: SelectionCase) {
        var config = Configuration()
        config.manage = c.manage.map(InterfaceMatch.init)
        config.ignore = c.ignore.map(InterfaceMatch.init)
        #expect(Planner(configuration: config).isManaged(c.link) == c.managed)
    }

    @Test func downLinkGetsNothingAndLosesItsRules() {
        var s = KernelSim.apply(planner.plan(snapshot: twoNICVM(), slots: SlotTable()).changes, to: twoNICVM())
        s.links[2].flags = [.broadcast]
        let plan = planner.plan(snapshot: s, slots: SlotTable())
        #expect(plan.nics.map(\.link.name) == ["eth0"])
        #expect(
            plan.changes.contains {
                if case .deleteRule(let r) = $0 { r.source == pfx("20.20.20.16/32") } else { false }
            })
    }

    @Test func ipv6UsesTheRouterAndSkipsLinkLocalAndTentative() {
        var s = twoNICVM()
        s.addresses += [
            addr(3, "fd00:20::16/64"), addr(3, "fe80::1234/64", scope: .link),
            addr(3, "fd00:20::99/64", flags: [.tentative]),
            addr(3, "fd00:20::98/64", flags: [.dadFailed]), addr(3, "fd00:20::97/64", flags: [.deprecated]),
        ]
        s.routes.append(mainRoute("::/0", via: "fe80::1", dev: 3, proto: .ra, metric: 1024))
        s.routes.append(mainRoute("fe80::/64", dev: 3, proto: .kernel, metric: 256))
        let plan = planner.plan(snapshot: s, slots: SlotTable())
        #expect(plan.nics[1].ipv6Gateway == GatewayHint(gateway: ip("fe80::1"), source: .routerAdvertisement))
        let v6rules = rules(plan).filter { $0.family == .inet6 }.compactMap(\.source)
        #expect(Set(v6rules) == [pfx("fd00:20::16/128"), pfx("fd00:20::97/128")])
        let t1 = routes(plan, table: 10001).filter { $0.family == .inet6 }
        #expect(!t1.contains { $0.destination.address.isIPv6LinkLocal })
        #expect(t1.contains { $0.destination.isDefault && $0.gateway == ip("fe80::1") && $0.outputInterface == 3 })
        var off = Configuration()
        off.ipv6 = false
        #expect(
            !Planner(configuration: off).plan(snapshot: s, slots: SlotTable()).changes.contains {
                if case .addRule(let r) = $0 { r.family == .inet6 } else { false }
            })
    }

    @Test func ipv6FirstHostIsProbedThenUsed() {
        var s = twoNICVM()
        s.addresses.append(addr(3, "fd00:20::16/64"))
        var plan = planner.plan(snapshot: s, slots: SlotTable())
        #expect(plan.nics[1].ipv6Gateway == nil)
        #expect(plan.neighborProbes.contains(NeighborProbe(address: ip("fd00:20::1"), linkIndex: 3)))
        s.neighbors = [Neighbor(linkIndex: 3, address: ip("fd00:20::1"), state: .reachable)]
        plan = planner.plan(snapshot: s, slots: SlotTable())
        #expect(plan.nics[1].ipv6Gateway == GatewayHint(gateway: ip("fd00:20::1"), source: .firstHost))
        #expect(
            routes(plan, table: 10001).contains { $0.destination == .any(.inet6) && $0.gateway == ip("fd00:20::1") })
    }

    @Test func gatewayOutsideTheSubnetIsOnlink() {
        var s = twoNICVM()
        s.addresses[1] = addr(3, "20.20.20.16/32")
        s.routes.removeAll { $0.outputInterface == 3 }
        var config = Configuration()
        config.gateways = [GatewayOverride(match: .name("eth1"), ipv4: ip("169.254.1.1"))]
        let plan = Planner(configuration: config).plan(snapshot: s, slots: SlotTable())
        let d = routes(plan, table: 10001).first { $0.destination.isDefault }
        #expect(d?.gateway == ip("169.254.1.1"))
        #expect(d?.flags == Route.onlinkFlag)
    }

    @Test func foreignRouteInOurTableIsAConflictNotAChange() {
        var s = twoNICVM()
        s.routes.append(
            Route(
                family: .inet, table: 10000, destination: pfx("0.0.0.0/0"), proto: .static, gateway: ip("10.10.10.99"),
                outputInterface: 2))
        let plan = planner.plan(snapshot: s, slots: SlotTable())
        #expect(
            !plan.changes.contains {
                if case .addRoute(let r) = $0 { r.table == 10000 && r.destination.isDefault } else { false }
            })
        #expect(plan.conflicts.count == 1)
    }

    @Test func changedGatewayIsReplacedInPlace() {
        let first = KernelSim.apply(planner.plan(snapshot: twoNICVM(), slots: SlotTable()).changes, to: twoNICVM())
        var s = first
        s.routes = s.routes.map { r in
            var r = r
            if r.table == RoutingTable.main && r.destination.isDefault { r.gateway = ip("10.10.10.2") }
            return r
        }
        let plan = planner.plan(snapshot: s, slots: SlotTable(["fa:16:3e:00:00:01": 0, "fa:16:3e:00:00:02": 1]))
        #expect(
            plan.changes.contains {
                if case .replaceRoute(let r) = $0 {
                    r.destination.isDefault && r.gateway == ip("10.10.10.2")
                } else {
                    false
                }
            })
        #expect(!plan.changes.contains { if case .deleteRule = $0 { true } else { false } })
    }

    @Test func duplicateOwnedRulesAreReducedToOne() {
        let applied = KernelSim.apply(planner.plan(snapshot: twoNICVM(), slots: SlotTable()).changes, to: twoNICVM())
        var s = applied
        let dup = s.rules.first { $0.proto == .nicroute }!
        s.rules.append(dup)
        let plan = planner.plan(snapshot: s, slots: SlotTable(["fa:16:3e:00:00:01": 0, "fa:16:3e:00:00:02": 1]))
        #expect(plan.changes == [.deleteRule(dup)])
    }

    @Test func movedBandsMoveEverything() {
        let s = KernelSim.apply(planner.plan(snapshot: twoNICVM(), slots: SlotTable()).changes, to: twoNICVM())
        var config = Configuration()
        config.tables = 2000...2099
        config.priorities = 3000...3099
        let plan = Planner(configuration: config).plan(
            snapshot: s, slots: SlotTable(["fa:16:3e:00:00:01": 0, "fa:16:3e:00:00:02": 1]))
        let after = KernelSim.apply(plan.changes, to: s)
        #expect(
            after.rules.filter(Planner.isOwned).allSatisfy {
                $0.table >= 2000 && $0.table < 2100 && $0.priority! >= 3000
            })
        #expect(after.routes.filter(Planner.isOwned).allSatisfy { $0.table >= 2000 && $0.table < 2100 })
    }

    /// Every scenario above, applied, then planned again: nothing left to do.
    @Test(arguments: ["two-nic", "secondary", "ipv6", "bridge", "first-host"])
    func planApplyPlanIsEmpty(_ name: String) {
        var s = twoNICVM()
        switch name {
        case "secondary": s.addresses.append(addr(3, "20.20.20.17/24", flags: [.secondary]))
        case "ipv6":
            s.addresses.append(addr(3, "fd00:20::16/64"))
            s.routes.append(mainRoute("::/0", via: "fe80::1", dev: 3, proto: .ra, metric: 1024))
        case "bridge":
            s.links.append(Link(index: 7, name: "docker0", flags: upFlags, kind: "bridge"))
            let ba = addr(7, "172.17.0.1/16")
            s.addresses.append(ba)
            s.routes.append(kernelRoute(ba))
        case "first-host": s.neighbors = [Neighbor(linkIndex: 3, address: ip("20.20.20.1"), state: .reachable)]
        default: break
        }
        let first = planner.plan(snapshot: s, slots: SlotTable())
        #expect(!first.changes.isEmpty)
        let applied = KernelSim.apply(first.changes, to: s)
        let second = planner.plan(snapshot: applied, slots: first.slots)
        #expect(second.changes == [])
    }
}

@Suite struct SlotTableTests {
    @Test func slotsAreStableAcrossReplugAndGaps() {
        var t = SlotTable()
        t.assign(["a", "b", "c"], capacity: 10)
        #expect([t.slot(for: "a"), t.slot(for: "b"), t.slot(for: "c")] == [0, 1, 2])
        // b unplugged and c re-plugged: same slots; a new NIC d gets the lowest free slot (3, as b keeps 1).
        t.assign(["a", "c", "d"], capacity: 10)
        #expect([t.slot(for: "a"), t.slot(for: "c"), t.slot(for: "d")] == [0, 2, 3])
        #expect(t.slot(for: "b") == 1)
        #expect(SlotTable(parsing: t.serialized()) == t)
    }

    @Test func fullBandEvictsAbsentNICs() {
        var t = SlotTable()
        t.assign(["a", "b"], capacity: 2)
        t.assign(["a", "c"], capacity: 2)
        #expect(t.slot(for: "c") == 1)
        #expect(t.slot(for: "b") == nil)
        t.assign(["a", "c", "d"], capacity: 2)
        #expect(t.slot(for: "d") == nil)  // no room: that NIC is not managed
    }

    @Test func slotsOutsideAShrunkBandAreReassigned() {
        var t = SlotTable(["a": 0, "b": 7])
        t.assign(["a", "b"], capacity: 4)
        #expect(t.slot(for: "a") == 0)
        #expect(t.slot(for: "b") == 1)
    }

    @Test func garbageStateIsSkippedLineByLine() {
        let t = SlotTable(parsing: "# comment\nfa:16:3e:00:00:01 0\nbroken\nx -1\ny 0\nz 3\n")
        #expect(t.slots == ["fa:16:3e:00:00:01": 0, "z": 3])
    }
}

@Suite struct ReinstallGuardTests {
    @Test func occasionalDeletesAreRepairedAtOnce() {
        var g = ReinstallGuard(window: 30, threshold: 5)
        for i in 0..<5 { #expect(g.admit("r", now: Double(i) * 10) == .proceed) }
    }

    @Test func aFightBacksOffExponentiallyAndIsReportedOnce() {
        var g = ReinstallGuard(window: 30, threshold: 3, initialBackoff: 1, maximumBackoff: 4)
        for i in 0..<3 { #expect(g.admit("r", now: Double(i) * 0.01) == .proceed) }
        #expect(g.admit("r", now: 0.05) == .deferred(until: 1.05, fights: 4, firstTime: true))
        #expect(g.admit("r", now: 0.5) == .deferred(until: 1.05, fights: 4, firstTime: false))
        #expect(g.nextDeadline(after: 0.5) == 1.05)
        // The wait is over: one re-install; deleted again: the wait doubles, up to the maximum.
        #expect(g.admit("r", now: 1.1) == .proceed)
        #expect(g.nextDeadline(after: 1.1) == nil)
        #expect(g.admit("r", now: 1.2) == .deferred(until: 3.2, fights: 6, firstTime: true))
        #expect(g.admit("r", now: 3.3) == .proceed)
        #expect(g.admit("r", now: 3.4) == .deferred(until: 7.4, fights: 8, firstTime: true))
        #expect(g.admit("r", now: 7.5) == .proceed)
        #expect(g.admit("r", now: 7.6) == .deferred(until: 11.6, fights: 10, firstTime: true))  // capped at 4 s
        #expect(g.admit("other", now: 7.6) == .proceed)
        // Once the tool stops, the retry after the wait sticks and the history ages out.
        #expect(g.admit("r", now: 11.7) == .proceed)
        g.prune(now: 100)
        for t in [100.0, 100.1, 100.2] { #expect(g.admit("r", now: t) == .proceed) }
    }
}

@Suite struct AddressParsingTests {
    @Test(arguments: [
        "010.0.0.1", "1.0.00.1", "+1::", "-0::1", "1:2:3:4:5:6:+7:8", "1.2.3", "1.2.3.256", ":::", "1::2::3",
    ])
    func rejected(_ text: String) { #expect(IPAddress(text) == nil) }

    @Test(arguments: [
        ("10.0.0.1", "10.0.0.1"), ("0.0.0.0", "0.0.0.0"), ("2001:DB8::1", "2001:db8::1"),
        ("::ffff:1.2.3.4", "::ffff:102:304"),
    ])
    func canonical(_ text: String, _ expected: String) { #expect(IPAddress(text)?.description == expected) }

    @Test func prefixesAndMACs() {
        #expect(IPPrefix("10.0.0.0/010") == nil)
        #expect(IPPrefix("10.0.0.0/00") == nil)
        #expect(IPPrefix("10.0.0.0/33") == nil)
        #expect(IPPrefix("10.0.0.5/24")?.network.description == "10.0.0.0/24")
        #expect(MACAddress("fa::16:3e:00:00:0a") == nil)
        #expect(MACAddress("fa:16:3e:00:00:0a:") == nil)
        #expect(MACAddress("FA-16-3E-00-00-0A")?.description == "fa:16:3e:00:00:0a")
    }
}

/// A multipath route of the main table (`nexthop via GW dev INDEX` per path).
private func multipathRoute(
    _ dst: String, _ paths: [(via: String, dev: Int32)], proto: RouteProtocol = .boot, metric: UInt32? = nil
) -> Route {
    let d = pfx(dst)
    return Route(
        family: d.family, table: RoutingTable.main, destination: d, proto: proto, metric: metric,
        nextHops: paths.map { NextHop(gateway: ip($0.via), outputInterface: $0.dev) })
}

/// The two-NIC VM with IPv6 on both NICs and, as under systemd-networkd, both NICs' RA default
/// routes of one metric merged into one multipath route; no IPv4 default route anywhere but a
/// multipath one too.
private func multipathVM() -> KernelSnapshot {
    var s = twoNICVM()
    s.routes.removeAll { $0.destination.isDefault }
    let v6 = [addr(2, "fd00:10::29/64"), addr(3, "fd00:20::16/64")]
    s.addresses += v6
    s.routes += v6.map(kernelRoute)
    s.routes.append(
        multipathRoute("::/0", [("fe80::a", 3), ("fe80::b", 2)].reversed(), proto: .ra, metric: 1024))
    s.routes.append(multipathRoute("0.0.0.0/0", [("10.10.10.1", 2), ("20.20.20.254", 3)], proto: .dhcp))
    return s
}

@Suite struct MultipathPlannerTests {
    let planner: Planner = {
        var c = Configuration()
        c.manage = []
        return Planner(configuration: c)
    }()

    @Test func aMultipathDefaultGivesEachNICItsOwnPath() {
        let plan = planner.plan(snapshot: multipathVM(), slots: SlotTable())
        #expect(plan.nics[0].ipv6Gateway == GatewayHint(gateway: ip("fe80::b"), source: .routerAdvertisement))
        #expect(plan.nics[1].ipv6Gateway == GatewayHint(gateway: ip("fe80::a"), source: .routerAdvertisement))
        #expect(plan.nics[0].ipv4Gateway == GatewayHint(gateway: ip("10.10.10.1"), source: .mainTable))
        #expect(plan.nics[1].ipv4Gateway == GatewayHint(gateway: ip("20.20.20.254"), source: .mainTable))
        #expect(plan.neighborProbes.isEmpty)
        for (table, dev, gw6) in [(UInt32(10000), Int32(2), "fe80::b"), (10001, 3, "fe80::a")] {
            let d6 = routes(plan, table: table).first { $0.family == .inet6 && $0.destination.isDefault }
            #expect(d6?.gateway == ip(gw6) && d6?.outputInterface == dev && d6?.nextHops == [])
        }
        let report = plan.nics.flatMap(\.notes)
        #expect(report.isEmpty, "\(report)")
    }

    @Test func aMultipathDefaultBeatsAHigherMetricSinglePathAndLosesToALowerOne() {
        var s = multipathVM()
        s.routes.append(mainRoute("::/0", via: "fe80::c", dev: 3, proto: .static, metric: 2048))
        #expect(planner.plan(snapshot: s, slots: SlotTable()).nics[1].ipv6Gateway?.gateway == ip("fe80::a"))
        s.routes.append(mainRoute("::/0", via: "fe80::d", dev: 3, proto: .static, metric: 100))
        let plan = planner.plan(snapshot: s, slots: SlotTable())
        #expect(plan.nics[1].ipv6Gateway == GatewayHint(gateway: ip("fe80::d"), source: .mainTable))
    }

    struct SpecificCase: Sendable, CustomTestStringConvertible {
        var name: String
        /// The main-table route's paths: (gateway, link index); 2 is eth0, 3 eth1, 7 docker0.
        var paths: [(via: String, dev: Int32)]
        /// eth1's (table 10001) route to the destination: its paths, or one via eth1's gateway.
        var eth1: [(via: String, dev: Int32)]
        /// eth0's (table 10000).
        var eth0: [(via: String, dev: Int32)]
        var testDescription: String { name }
    }

    // docs/design.md's rules 1-3 per path: a source on I keeps I's paths (1); else the unmanaged paths
    // (2); a route through other managed NICs only is reached via I's gateway (3).
    @Test(arguments: [
        SpecificCase(
            name: "one path per NIC: each NIC keeps its own", paths: [("10.10.10.5", 2), ("20.20.20.5", 3)],
            eth1: [("20.20.20.5", 3)], eth0: [("10.10.10.5", 2)]),
        SpecificCase(
            name: "both paths on eth0: eth0 keeps both, eth1 goes via its gateway",
            paths: [("10.10.10.5", 2), ("10.10.10.6", 2)], eth1: [("20.20.20.1", 3)],
            eth0: [("10.10.10.5", 2), ("10.10.10.6", 2)]),
        SpecificCase(
            name: "eth0 and the bridge: eth1 keeps the bridge path, eth0 its own",
            paths: [("10.10.10.5", 2), ("172.17.0.2", 7)], eth1: [("172.17.0.2", 7)], eth0: [("10.10.10.5", 2)]),
        SpecificCase(
            name: "two bridge paths are copied as they are",
            paths: [("172.17.0.2", 7), ("172.17.0.3", 7)], eth1: [("172.17.0.2", 7), ("172.17.0.3", 7)],
            eth0: [("172.17.0.2", 7), ("172.17.0.3", 7)]),
    ])
    func aMultipathSpecificRouteIsSplitByTheRules(_ c: SpecificCase) {
        var s = twoNICVM()
        let bridge = Link(index: 7, name: "docker0", flags: upFlags, hardwareType: 1, kind: "bridge")
        s.links.append(bridge)
        let ba = addr(7, "172.17.0.1/16")
        s.addresses.append(ba)
        s.routes += [kernelRoute(ba), multipathRoute("198.18.0.0/15", c.paths)]
        let plan = planner.plan(
            snapshot: s, slots: SlotTable(), hints: [3: [GatewayHint(gateway: ip("20.20.20.1"), source: .networkd)]])
        for (table, want) in [(UInt32(10001), c.eth1), (10000, c.eth0)] {
            let r = routes(plan, table: table).first { $0.destination == pfx("198.18.0.0/15") }
            #expect(
                r?.paths.map { [$0.gateway?.description, String($0.outputInterface)] }
                    == want.map { [$0.via, String($0.dev)] }, "table \(table)")
            #expect(r?.proto == .nicroute && r?.metric == nil)
        }
        let applied = KernelSim.apply(plan.changes, to: s)
        #expect(
            planner.plan(
                snapshot: applied, slots: plan.slots,
                hints: [3: [GatewayHint(gateway: ip("20.20.20.1"), source: .networkd)]]
            ).changes == [])
    }

    @Test func planApplyPlanIsEmptyWithMultipathRoutes() {
        var s = multipathVM()
        s.routes.append(multipathRoute("fd00:99::/64", [("fe80::a", 3), ("fe80::b", 2)], metric: 1024))
        let first = planner.plan(snapshot: s, slots: SlotTable())
        #expect(!first.changes.isEmpty)
        // The kernel reports the paths with a state flag of its own and in another order.
        var applied = KernelSim.apply(first.changes, to: s)
        for i in applied.routes.indices where !applied.routes[i].nextHops.isEmpty {
            applied.routes[i].nextHops.reverse()
            applied.routes[i].nextHops[0].flags |= 0x10  // RTNH_F_LINKDOWN
        }
        #expect(planner.plan(snapshot: applied, slots: first.slots).changes == [])
    }

    @Test func ipCommandsSpellThePaths() {
        var s = twoNICVM()
        s.routes.append(multipathRoute("198.18.0.0/15", [("10.10.10.5", 2), ("10.10.10.6", 2)]))
        let plan = planner.plan(snapshot: s, slots: SlotTable())
        let names: [Int32: String] = [2: "eth0", 3: "eth1"]
        let commands = plan.changes.map { $0.ipCommand(linkName: { names[$0] }) }
        #expect(
            commands.contains(
                "ip -4 route add 198.18.0.0/15 table 10000 proto nicroute nexthop via 10.10.10.5 dev eth0 weight 1"
                    + " nexthop via 10.10.10.6 dev eth0 weight 1"), "\(commands)")
    }
}
