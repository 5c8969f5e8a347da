import Testing

@testable import NicrouteCore

// Forwarded connections: the marks, the nft ruleset, the fwmark rules in the plan, the
// preflight's collision check and the configuration keys.

private let up: LinkFlags = [.up, .broadcast, .running, .lowerUp]

private func vm(nics: Int, ipv6: Bool = true) -> KernelSnapshot {
    var s = KernelSnapshot(links: [Link(index: 1, name: "lo", flags: [.up, .loopback], hardwareType: 772)])
    for i in 0..<nics {
        let index = Int32(2 + i)
        s.links.append(
            Link(
                index: index, name: "eth\(i)", mac: MACAddress(bytes: [0xfa, 0x16, 0x3e, 0, 0, UInt8(i + 1)]),
                flags: up, operationalState: .up))
        s.addresses.append(
            InterfaceAddress(linkIndex: index, address: IPAddress("10.0.\(i).5")!, prefixLength: 24, flags: .permanent))
        if ipv6 {
            s.addresses.append(
                InterfaceAddress(
                    linkIndex: index, address: IPAddress("fd00:\(i)::5")!, prefixLength: 64, flags: .permanent))
        }
    }
    return s
}

private func apply(_ changes: [Change], to s: KernelSnapshot) -> KernelSnapshot {
    var s = s
    for c in changes {
        switch c {
        case .addRoute(var r), .replaceRoute(var r):
            if r.family == .inet6 && r.metric == nil { r.metric = 1024 }
            s.routes.removeAll { $0.key == r.key }
            s.routes.append(r)
        case .deleteRoute(let r): s.routes.removeAll { $0.key == r.key && $0.proto == r.proto }
        case .addRule(let r): s.rules.append(r)
        case .deleteRule(let r): if let i = s.rules.firstIndex(of: r) { s.rules.remove(at: i) }
        }
    }
    return s
}

@Suite struct ForwardMarksTests {
    @Test(
        arguments: [
            // mask, slot, mark (nil: no room)
            (UInt32(0x3010), 0, UInt32?(0x10)),
            (0x3010, 1, 0x1000),
            (0x3010, 2, 0x1010),
            (0x3010, 3, 0x2000),
            (0x3010, 6, 0x3010),
            (0x3010, 7, nil),
            (0xff00_0000, 0, 0x0100_0000),
            (0xff00_0000, 254, 0xff00_0000),
            (0xff00_0000, 255, nil),
            (0x1, 0, 0x1),
            (0x1, 1, nil),
        ] as [(UInt32, Int, UInt32?)])
    func markSpreadsSlotPlusOneOverTheMaskBits(mask: UInt32, slot: Int, mark: UInt32?) {
        #expect(ForwardMarks(mask: mask).mark(slot: slot) == mark)
    }

    @Test func everyMarkLiesInTheMaskAndIsDistinct() {
        let marks = ForwardMarks(mask: ForwardMarks.defaultMask)
        let all = (0..<marks.capacity).compactMap { marks.mark(slot: $0) }
        #expect(all.count == 7)
        #expect(Set(all).count == all.count)
        #expect(all.allSatisfy { $0 & ~marks.mask == 0 && $0 != 0 })
    }

    /// The default stays clear of the other tools' bits (see ForwardMarks.defaultMask).
    @Test(arguments: [
        ("kube-proxy masquerade", UInt32(0x4000)), ("kube-proxy drop", 0x8000), ("Calico", 0xffff_0000),
        ("Tailscale", 0x00ff_0000), ("Cilium magic", 0x0f00), ("wg-quick 51820", 0xca6c), ("AWS VPC CNI", 0x80),
        ("Docker encrypted overlay", 0x00d0_c4e3),
    ])
    func defaultMaskAvoids(tool: String, bits: UInt32) {
        #expect(ForwardMarks.defaultMask & bits == 0, "\(tool)")
    }
}

@Suite struct ForwardRulesetTests {
    @Test func scriptReplacesTheTableInOneTransaction() {
        let s = ForwardRuleset.script(
            nics: [
                ForwardedNIC(name: "eth0", mark: 0x10, table: 10000),
                ForwardedNIC(name: "eth1", mark: 0x1000, table: 10001),
            ],
            mask: 0x3010)
        #expect(
            s == """
                add table inet nicroute
                delete table inet nicroute
                table inet nicroute {
                \tchain prerouting {
                \t\ttype filter hook prerouting priority -150; policy accept;
                \t\tct state new iifname "eth0" ct mark set ct mark & 0xffffcfef | 0x10
                \t\tct state new iifname "eth1" ct mark set ct mark & 0xffffcfef | 0x1000
                \t\tct mark & 0x3010 == 0x10 meta mark set meta mark & 0xffffcfef | 0x10
                \t\tct mark & 0x3010 == 0x1000 meta mark set meta mark & 0xffffcfef | 0x1000
                \t}
                }

                """)
    }

    /// The ruleset grows with NICs: two lines per NIC, nothing per address or connection.
    @Test(arguments: [0, 1, 2, 7])
    func rulesetGrowsWithNICsOnly(n: Int) {
        let nics = (0..<n).map { ForwardedNIC(name: "eth\($0)", mark: UInt32($0 + 1), table: 10000) }
        let lines = ForwardRuleset.definition(nics: nics, mask: 0xff).split(separator: "\n")
        #expect(lines.count == 5 + 2 * n)
    }

    @Test func namesAreQuotedWithoutQuotes() {
        #expect(ForwardRuleset.quoted("we\"ird") == "\"weird\"")
    }
}

@Suite struct ForwardPlannerTests {
    func planner(_ mode: ForwardingMode = .yes, mask: UInt32 = ForwardMarks.defaultMask) -> Planner {
        var c = Configuration()
        c.manage = [.name("eth*")]
        c.forwardedConnections = mode
        c.forwardMarkMask = mask
        return Planner(configuration: c)
    }

    @Test(arguments: [
        // NICs, IPv6, forwarding -> fwmark rules per NIC, shared rules
        (2, true, true, 4, 2), (2, false, true, 2, 1), (3, true, true, 6, 2), (2, true, false, 0, 0),
        (1, true, true, 2, 2),
    ])
    func oneFwmarkRulePerNICAndFamily(nics: Int, ipv6: Bool, forwarding: Bool, rules: Int, shared: Int) {
        let plan = planner().plan(snapshot: vm(nics: nics, ipv6: ipv6), slots: SlotTable(), forwarding: forwarding)
        let fw = plan.changes.compactMap { c -> Rule? in
            if case .addRule(let r) = c, r.firewallMark != nil { r } else { nil }
        }
        let sharedRules = plan.changes.compactMap { c -> Rule? in
            if case .addRule(let r) = c, r.firewallMark == nil, r.firewallMask != nil { r } else { nil }
        }
        #expect(fw.count == rules)
        #expect(sharedRules.count == shared)
        for r in sharedRules {
            // `not fwmark 0/MASK lookup main suppress_prefixlength 0`, just below the band.
            #expect(r.invert && r.table == RoutingTable.main && r.suppressPrefixLength == 0)
            #expect(r.priority == 9999 && r.proto == .nicroute && r.firewallMask == ForwardMarks.defaultMask)
            #expect(
                IPCommand.rule("add", r).contains(
                    "priority 9999 not from all fwmark 0x0/0x3010 lookup main suppress_prefixlength 0 proto nicroute"))
        }
        #expect(plan.forwardMarks?.count == (forwarding ? nics : nil))
        for r in fw {
            let nic = plan.nics.first { $0.table == r.table }!
            #expect(r.priority == nic.priority)
            #expect(r.proto == .nicroute)
            #expect(r.firewallMask == ForwardMarks.defaultMask)
            #expect(r.firewallMark == ForwardMarks(mask: ForwardMarks.defaultMask).mark(slot: nic.slot))
            #expect(r.source == nil)
        }
    }

    @Test func planningAgainAfterApplyingIsEmpty() {
        var s = vm(nics: 2)
        let p = planner()
        let first = p.plan(snapshot: s, slots: SlotTable(), forwarding: true)
        s = apply(first.changes, to: s)
        #expect(p.plan(snapshot: s, slots: first.slots, forwarding: true).changes.isEmpty)
    }

    @Test func turningForwardingOffDeletesTheFwmarkRulesOnly() {
        var s = vm(nics: 2)
        let p = planner()
        let first = p.plan(snapshot: s, slots: SlotTable(), forwarding: true)
        s = apply(first.changes, to: s)
        let off = p.plan(snapshot: s, slots: first.slots, forwarding: false)
        #expect(off.changes.count == 6)
        #expect(
            off.changes.allSatisfy { if case .deleteRule(let r) = $0 { r.firewallMask != nil } else { false } })
        #expect(off.forwardMarks == nil)
    }

    @Test func nicsBeyondTheMaskGetANoteAndNoRule() {
        let plan = planner(mask: 0x1).plan(snapshot: vm(nics: 2, ipv6: false), slots: SlotTable(), forwarding: true)
        #expect(plan.forwardMarks?.map(\.name) == ["eth0"])
        #expect(plan.nics[1].notes.contains { $0.contains("ForwardMarkMask=0x1 has room for 1") })
    }

    @Test func foreignFwmarkRulesOnTheMaskBitsAreCollisions() {
        let rules = [
            // Podman's netavark-like, kube-proxy's, wg-quick's `not fwmark`, nicroute's own.
            Rule(family: .inet, priority: 100, table: 100, firewallMark: 0x2000, firewallMask: 0x2000),
            Rule(family: .inet, priority: 101, table: 101, firewallMark: 0x4000, firewallMask: 0x4000),
            Rule(family: .inet, priority: 102, table: 102, firewallMark: 0xca6c, invert: true),
            Rule(
                family: .inet, priority: 10000, table: 10000, firewallMark: 0x10, firewallMask: 0x3010, proto: .nicroute
            ),
        ]
        let hits = Planner.markCollisions(rules: rules, mask: 0x3010)
        #expect(hits.map(\.table) == [100, 102])
        let plan = planner().plan(snapshot: vm(nics: 1), slots: SlotTable(), forwarding: true)
        var inputs = Preflight.Inputs()
        inputs.rules = rules
        inputs.forwardMask = 0x3010
        let findings = Preflight.findings(plan: plan, inputs: inputs).map(\.message)
        #expect(findings.filter { $0.contains("forward mark bits 0x3010") }.count == 2)
    }
}

@Suite struct ForwardConfigurationTests {
    @Test(
        arguments: [
            ("", ForwardingMode.auto, ForwardMarks.defaultMask),
            ("ForwardedConnections=yes\n", .yes, ForwardMarks.defaultMask),
            ("ForwardedConnections=no\n", .no, ForwardMarks.defaultMask),
            ("ForwardedConnections=Auto\n", .auto, ForwardMarks.defaultMask),
            ("ForwardedConnections=no\nForwardedConnections=\n", .auto, ForwardMarks.defaultMask),
            ("ForwardMarkMask=0xff000000\n", .auto, 0xff00_0000),
            ("ForwardMarkMask=256\n", .auto, 0x100),
            ("ForwardMarkMask=0x10\nForwardMarkMask=\n", .auto, ForwardMarks.defaultMask),
        ] as [(String, ForwardingMode, UInt32)])
    func parses(text: String, mode: ForwardingMode, mask: UInt32) throws {
        let c = try ConfigurationParser.parse("[Routing]\n" + text, file: "f", into: Configuration())
        #expect(c.forwardedConnections == mode)
        #expect(c.forwardMarkMask == mask)
    }

    @Test(arguments: [
        ("ForwardedConnections=maybe\n", "not a boolean"), ("ForwardMarkMask=0\n", "at least one bit"),
        ("ForwardMarkMask=0x1ffffffff\n", "not a 32-bit mask"), ("ForwardMarkMask=zz\n", "not a 32-bit mask"),
    ])
    func rejects(text: String, reason: String) {
        #expect(throws: ConfigurationError.self) {
            try ConfigurationParser.parse("[Routing]\n" + text, file: "f", into: Configuration())
        }
        do {
            _ = try ConfigurationParser.parse("[Routing]\n" + text, file: "f", into: Configuration())
        } catch {
            #expect(error.reason.contains(reason))
        }
    }
}

@Suite struct ForwardStatusTests {
    @Test func statusRoundTripsTheForwardingPart() throws {
        var c = Configuration()
        c.manage = [.name("eth*")]
        let p = Planner(configuration: c)
        var s = vm(nics: 2)
        let plan = p.plan(snapshot: s, slots: SlotTable(), forwarding: true)
        s = apply(plan.changes, to: s)
        let report = StatusReport(
            plan: p.plan(snapshot: s, slots: plan.slots, forwarding: true), snapshot: s, summary: "x", fromDaemon: true,
            forwarding: ("installed", "in place", 0x3010))
        #expect(report.forwarding.marks.map(\.rulesInstalled) == [true, true])
        #expect(report.nics.allSatisfy { $0.rulesWanted == $0.rulesInstalled })
        let back = try ControlCall.status.decode(ControlResponse.success(report.json).encoded()).get()
        #expect(back.forwarding == report.forwarding)
        let text = back.rendered()
        #expect(text.contains("Forward mark: 0x1000/0x3010 (fwmark rules installed)"))
        #expect(text.contains("Forwarded connections: marked by ingress NIC"))
    }
}
