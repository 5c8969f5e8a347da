import Testing

@testable import NicrouteCore

// Sources that are not interface addresses (docs/design.md, Routing semantics): local routes of
// the `local` table through a managed NIC, and `[Source]` prefixes of the configuration. Each
// gets a `from PREFIX lookup T(I)` rule at the NIC's priority, like its addresses.

private func ip(_ s: String) -> IPAddress { IPAddress(s)! }
private func pfx(_ s: String) -> IPPrefix { IPPrefix(s)! }

private func link(_ index: Int32, _ name: String, mac: UInt8) -> Link {
    Link(
        index: index, name: name, mac: MACAddress(bytes: [0xfa, 0x16, 0x3e, 0, 0, mac]),
        flags: [.up, .broadcast, .running, .lowerUp], operationalState: .up, mtu: 1500, hardwareType: 1)
}

private func addr(_ index: Int32, _ p: String) -> InterfaceAddress {
    let prefix = pfx(p)
    return InterfaceAddress(
        linkIndex: index, address: prefix.address, prefixLength: prefix.length, scope: .universe,
        flags: [.permanent])
}

/// A route of the `local` table: `ip route add local PREFIX dev DEV proto PROTO` (type local),
/// or the kernel's own.
private func localRoute(
    _ p: String, dev: Int32, proto: RouteProtocol = .boot, type: RouteType = .local, table: UInt32 = RoutingTable.local
) -> Route {
    let d = pfx(p)
    return Route(
        family: d.family, table: table, destination: d, proto: proto, scope: .host, type: type,
        outputInterface: dev, metric: d.family == .inet6 ? 1024 : nil)
}

/// The kernel's local table for an IPv4 address: its local route and its broadcast routes.
private func kernelLocalRoutes(_ a: InterfaceAddress) -> [Route] {
    [
        localRoute("\(a.address)/32", dev: a.linkIndex, proto: .kernel),
        localRoute(
            "\(a.subnet.address.adding(UInt64(1) << (32 - UInt64(a.prefixLength)) - 1))/32",
            dev: a.linkIndex, proto: .kernel, type: .broadcast),
    ]
}

/// Two NICs: eth0 with the main default route, eth1 (GCE's nic1) with a configured gateway
/// and an IPv6 address.
private func vm(local: [Route] = []) -> KernelSnapshot {
    let a0 = addr(2, "10.128.0.2/20")
    let a1 = addr(3, "10.130.0.5/20")
    let a1v6 = addr(3, "2001:db8:1::5/64")
    return KernelSnapshot(
        links: [
            Link(index: 1, name: "lo", flags: [.up, .loopback], hardwareType: 772), link(2, "eth0", mac: 1),
            link(3, "eth1", mac: 2),
            Link(
                index: 4, name: "docker0", flags: [.up, .broadcast], operationalState: .up, hardwareType: 1,
                kind: "bridge"),
        ],
        addresses: [a0, a1, a1v6, addr(4, "172.17.0.1/16")],
        routes: [
            Route(
                family: .inet, table: RoutingTable.main, destination: .any(.inet), proto: .dhcp,
                gateway: ip("10.128.0.1"), outputInterface: 2)
        ] + kernelLocalRoutes(a0) + kernelLocalRoutes(a1) + [localRoute("2001:db8:1::5/128", dev: 3, proto: .kernel)]
            + local,
        rules: [])
}

private let hints: [Int32: [GatewayHint]] = [
    3: [
        GatewayHint(gateway: ip("10.130.0.1"), source: .networkd),
        GatewayHint(gateway: ip("fe80::1"), source: .networkd),
    ]
]

private func addedRules(_ plan: Plan) -> [Rule] {
    plan.changes.compactMap { if case .addRule(let r) = $0 { r } else { nil } }
}

private func eth1Rule(_ p: String) -> Rule {
    let prefix = pfx(p)
    return Rule(family: prefix.family, priority: 10001, table: 10001, source: prefix, proto: .nicroute)
}

@Suite struct LocalSourceTests {
    static func planner(_ edit: (inout Configuration) -> Void = { _ in }) -> Planner {
        var c = Configuration()
        edit(&c)
        return Planner(configuration: c)
    }

    /// Plans, applies the plan as the kernel would, and plans again: nothing left to do.
    static func settle(_ planner: Planner, _ s: KernelSnapshot) -> (Plan, KernelSnapshot) {
        let plan = planner.plan(snapshot: s, slots: SlotTable(), hints: hints)
        let after = KernelSim.apply(plan.changes, to: s)
        let again = planner.plan(snapshot: after, slots: plan.slots, hints: hints)
        #expect(again.changes.isEmpty, "a second plan changes nothing: \(again.changes)")
        return (plan, after)
    }

    @Test func aGuestAgentsLocalHostRouteIsASourceOfItsNIC() {
        // GCE's guest agent: `ip route add to local 10.130.0.50/32 dev eth1 proto 66`.
        let (plan, _) = Self.settle(
            Self.planner(), vm(local: [localRoute("10.130.0.50/32", dev: 3, proto: RouteProtocol(rawValue: 66))]))
        #expect(addedRules(plan).contains(eth1Rule("10.130.0.50/32")))
        #expect(
            plan.nics[1].sources == [
                ExtraSource(prefix: pfx("10.130.0.50/32"), origin: .localRoute(.init(rawValue: 66)))
            ])
        #expect(plan.nics[0].sources.isEmpty)
    }

    @Test func anAnyIPRangeGetsOneRuleForTheWholePrefix() {
        let (plan, _) = Self.settle(Self.planner(), vm(local: [localRoute("10.99.0.0/24", dev: 3)]))
        let rules = addedRules(plan)
        #expect(rules.contains(eth1Rule("10.99.0.0/24")))
        // At the NIC's priority, looking up its table: the same as its addresses' rules.
        let addressRule = rules.first { $0.source == pfx("10.130.0.5/32") }
        #expect(addressRule?.priority == eth1Rule("10.99.0.0/24").priority)
        #expect(addressRule?.table == eth1Rule("10.99.0.0/24").table)
        #expect(rules.count == 4, "eth0's address, eth1's two addresses, the range: \(rules)")
    }

    @Test func anIPv6LocalPrefixIsASourceToo() {
        let (plan, _) = Self.settle(Self.planner(), vm(local: [localRoute("2001:db8:99::/64", dev: 3)]))
        #expect(addedRules(plan).contains(eth1Rule("2001:db8:99::/64")))
        // With IPv6 off, it gets nothing.
        let off = Self.planner { $0.ipv6 = false }.plan(
            snapshot: vm(local: [localRoute("2001:db8:99::/64", dev: 3)]), slots: SlotTable(), hints: hints)
        #expect(!addedRules(off).contains { $0.source == pfx("2001:db8:99::/64") })
        #expect(off.nics.allSatisfy { $0.sources.isEmpty && !$0.notes.contains { $0.contains("2001:db8:99::/64") } })
    }

    @Test func aFamilyTheNICHasNoAddressOfGetsANoteNotARule() {
        // eth0 has no IPv6 address: its table has no IPv6 routes.
        let plan = Self.planner().plan(
            snapshot: vm(local: [localRoute("2001:db8:98::/64", dev: 2)]), slots: SlotTable(), hints: hints)
        #expect(!addedRules(plan).contains { $0.source == pfx("2001:db8:98::/64") })
        #expect(plan.nics[0].notes.contains { $0.contains("2001:db8:98::/64") && $0.contains("no IPv6 address") })
    }

    /// The kernel's own routes of the local table add nothing: its local route of each address
    /// and its broadcast routes (protocol kernel), a local route of the kernel's for an address
    /// the addresses dump no longer showed (dumps are not atomic), another protocol's local
    /// route for the NIC's own address, local routes through unmanaged interfaces or in other
    /// tables, and a local default route (it would take every source).
    @Test func theKernelsOwnLocalRoutesAndOtherLookalikesAddNothing() {
        let lookalikes = [
            localRoute("10.130.0.77/32", dev: 3, proto: .kernel),
            localRoute("10.130.15.255/32", dev: 3, proto: .boot, type: .broadcast),
            localRoute("10.130.0.5/32", dev: 3, proto: RouteProtocol(rawValue: 66)),
            localRoute("2001:db8:1::5/128", dev: 3, proto: .static),
            localRoute("172.17.5.0/24", dev: 4),
            localRoute("10.97.0.0/24", dev: 3, table: 100),
            localRoute("0.0.0.0/0", dev: 3),
            localRoute("fe80::/64", dev: 3),
            localRoute("10.96.0.0/24", dev: 1),
        ]
        for r in lookalikes {
            let plan = Self.planner().plan(snapshot: vm(local: [r]), slots: SlotTable(), hints: hints)
            #expect(plan.nics.allSatisfy { $0.sources.isEmpty }, "\(r)")
            #expect(addedRules(plan).count == 3, "only the three addresses' rules with \(r)")
        }
        // Those the route alone rules out.
        for r in lookalikes where ![2, 3].contains(lookalikes.firstIndex(of: r)!) && r.outputInterface == 3 {
            #expect(!Planner.isLocalSource(r), "\(r)")
        }
        #expect(Planner.isLocalSource(localRoute("10.130.0.77/32", dev: 3, proto: .boot)))
    }

    @Test func localRoutesNoGivesThemNoRuleAndRemovesTheirs() {
        let s = vm(local: [localRoute("10.99.0.0/24", dev: 3)])
        let (_, after) = Self.settle(Self.planner(), s)
        let plan = Self.planner { $0.localRoutes = false }.plan(snapshot: after, slots: SlotTable(), hints: hints)
        #expect(plan.changes == [.deleteRule(eth1Rule("10.99.0.0/24"))])
        #expect(plan.nics.allSatisfy { $0.sources.isEmpty })
    }

    @Test func aLocalRouteThatGoesAwayTakesItsRuleWithIt() {
        let route = localRoute("10.99.0.0/24", dev: 3)
        let (_, after) = Self.settle(Self.planner(), vm(local: [route]))
        var gone = after
        gone.routes.removeAll { $0 == route }
        let plan = Self.planner().plan(snapshot: gone, slots: SlotTable(), hints: hints)
        #expect(plan.changes == [.deleteRule(eth1Rule("10.99.0.0/24"))])
        // And a rule deleted by another tool is put back.
        var healed = after
        healed.rules.removeAll { $0 == eth1Rule("10.99.0.0/24") }
        #expect(
            Self.planner().plan(snapshot: healed, slots: SlotTable(), hints: hints).changes == [
                .addRule(eth1Rule("10.99.0.0/24"))
            ])
    }

    @Test func configuredSourcesGetARuleOnTheNICsTheyMatch() {
        let byName = Self.planner {
            $0.sources = [
                SourceOverride(match: .name("eth1"), prefixes: [pfx("10.98.0.0/24"), pfx("2001:db8:98::/64")])
            ]
        }
        let (plan, _) = Self.settle(byName, vm())
        #expect(addedRules(plan).contains(eth1Rule("10.98.0.0/24")))
        #expect(addedRules(plan).contains(eth1Rule("2001:db8:98::/64")))
        #expect(plan.nics[1].sources.map(\.origin) == [.configuration, .configuration])
        #expect(plan.nics[0].sources.isEmpty)

        let byMAC = Self.planner {
            $0.sources = [
                SourceOverride(match: .mac(MACAddress("fa:16:3e:00:00:01")!), prefixes: [pfx("10.98.0.0/24")])
            ]
        }
        let macPlan = byMAC.plan(snapshot: vm(), slots: SlotTable(), hints: hints)
        #expect(
            addedRules(macPlan).contains(
                Rule(family: .inet, priority: 10000, table: 10000, source: pfx("10.98.0.0/24"), proto: .nicroute)))
        #expect(macPlan.nics[1].sources.isEmpty)
    }

    @Test func aPrefixThatIsBothALocalRouteAndConfiguredGetsOneRule() {
        let planner = Self.planner {
            $0.sources = [SourceOverride(match: .name("eth*"), prefixes: [pfx("10.99.0.0/24")])]
        }
        let (plan, _) = Self.settle(planner, vm(local: [localRoute("10.99.0.0/24", dev: 3)]))
        #expect(plan.nics[1].sources == [ExtraSource(prefix: pfx("10.99.0.0/24"), origin: .localRoute(.boot))])
        // eth0 gets it too (its own rule, at its own priority): the configuration says so.
        #expect(plan.nics[0].sources == [ExtraSource(prefix: pfx("10.99.0.0/24"), origin: .configuration)])
    }

    @Test func statusShowsTheSourcesAndCountsTheirRules() throws {
        let s = vm(local: [localRoute("10.130.0.50/32", dev: 3, proto: RouteProtocol(rawValue: 66))])
        let planner = Self.planner {
            $0.sources = [SourceOverride(match: .name("eth1"), prefixes: [pfx("10.98.0.0/24")])]
        }
        let (_, after) = Self.settle(planner, s)
        let plan = planner.plan(snapshot: after, slots: SlotTable(), hints: hints)
        let report = StatusReport(plan: plan, snapshot: after, summary: "", fromDaemon: true)
        #expect(report.nics[1].rulesWanted == 4)
        #expect(report.nics[1].rulesInstalled == 4)
        #expect(
            report.nics[1].sources == [
                .init(prefix: pfx("10.130.0.50/32"), origin: "local-route", routeProtocol: "66"),
                .init(prefix: pfx("10.98.0.0/24"), origin: "configuration"),
            ])
        #expect(
            report.rendered().contains("Sources: 10.130.0.50/32 (local route, proto 66) 10.98.0.0/24 (configuration)"))
        #expect(try JSONCoding.decode(StatusReport.self, from: JSONCoding.encode(report)) == report)
        // A NIC without sources has no `sources` key (a report without it reads as none).
        #expect(!String(decoding: JSONCoding.encode(report.nics[0]), as: UTF8.self).contains("sources"))
    }
}

@Suite struct SourceConfigurationTests {
    static func parse(_ text: String) throws(ConfigurationError) -> Configuration {
        try ConfigurationParser.parse(text, file: "/etc/nicroute/nicroute.conf", into: Configuration())
    }

    @Test func localRoutesIsABooleanOnByDefault() throws {
        #expect(Configuration().localRoutes)
        #expect(try !Self.parse("[Routing]\nLocalRoutes=no").localRoutes)
        #expect(try Self.parse("[Routing]\nLocalRoutes=no\nLocalRoutes=").localRoutes)
        #expect(try Self.parse("[Routing]\nLocalRoutes=off\nLocalRoutes=yes").localRoutes)
    }

    @Test func sourceSectionsAccumulate() throws {
        let c = try Self.parse(
            """
            [Source]
            Interface=eth1
            Prefix=10.98.0.0/24 2001:db8:98::/64
            Prefix=10.97.0.5

            [Source]
            MACAddress=fa:16:3e:00:00:02
            Prefix=10.96.0.0/16
            Prefix=
            Prefix=10.95.0.0/16
            """)
        #expect(
            c.sources == [
                SourceOverride(
                    match: .name("eth1"), prefixes: [pfx("10.98.0.0/24"), pfx("2001:db8:98::/64"), pfx("10.97.0.5/32")]),
                SourceOverride(match: .mac(MACAddress("fa:16:3e:00:00:02")!), prefixes: [pfx("10.95.0.0/16")]),
            ])
    }

    @Test(arguments: [
        (
            "[Routing]\nLocalRoutes=maybe", 2,
            "LocalRoutes=maybe: not a boolean (expected yes/no, true/false, on/off or 1/0)"
        ),
        ("[Source]\nPrefix=10.98.0.0/24", 1, "[Source] section has no Interface= or MACAddress="),
        ("[Source]\nInterface=eth1\n[Routing]", 1, "[Source] section for 'eth1' has no Prefix="),
        ("[Source]\nInterface=eth1\nPrefix=10.98.0.0/24\nPrefix=", 1, "[Source] section for 'eth1' has no Prefix="),
        (
            "[Source]\nInterface=eth1\nPrefix=10.98.0.0/33", 3,
            "Prefix=10.98.0.0/33: '10.98.0.0/33' is not an IP prefix (expected ADDRESS/LENGTH, e.g. 10.98.0.0/24)"
        ),
        (
            "[Source]\nInterface=eth1\nPrefix=eth1", 3,
            "Prefix=eth1: 'eth1' is not an IP prefix (expected ADDRESS/LENGTH, e.g. 10.98.0.0/24)"
        ),
        (
            "[Source]\nInterface=eth1\nPrefix=10.98.0.7/24", 3,
            "Prefix=10.98.0.7/24: '10.98.0.7/24' has host bits set (did you mean 10.98.0.0/24?)"
        ),
        (
            "[Source]\nInterface=eth1\nPrefix=::/0", 3,
            "Prefix=::/0: '::/0' would take every source address: give a narrower prefix"
        ),
        (
            "[Source]\nInterface=eth1\nPrefix=fe80::/64", 3,
            "Prefix=fe80::/64: 'fe80::/64' is not usable as a source (link-local, multicast or loopback)"
        ),
        (
            "[Source]\nInterface=eth1\nInterface=eth2\nPrefix=10.98.0.0/24", 3,
            "Interface=eth2: the section already names its interface on line 2 (use one [Source] per interface)"
        ),
        (
            "[Source]\nInterface=eth1 eth2", 2,
            "Interface=eth1 eth2: expected one interface name pattern or MAC address (use one [Source] per interface)"
        ),
        ("[Source]\nMACAddress=eth1", 2, "MACAddress=eth1: not a MAC address"),
        ("[Source]\nInterface=", 2, "Interface=: expected an interface name pattern or MAC address"),
        ("[Source]\nGateway=10.0.0.1", 2, "unknown key 'Gateway' in section [Source]"),
    ])
    func invalidSourceConfigurationIsRefusedWithFileLineAndReason(_ text: String, _ line: Int, _ reason: String) {
        #expect(throws: ConfigurationError(file: "/etc/nicroute/nicroute.conf", line: line, reason: reason)) {
            try Self.parse(text)
        }
    }
}
