import Foundation
import Netlink
import NicrouteCore
import SystemPackage
import Testing

#if canImport(Glibc)
import Glibc
#endif

// The real kernel, inside network namespaces each test makes and deletes (veth pairs only: the
// machines have no dummy module). iproute2's `ip -j` is the oracle.

/// The link flags `ip link` prints by name, and ours.
private let namedLinkFlags: [(String, LinkFlags)] = [
    ("UP", .up), ("BROADCAST", .broadcast), ("LOOPBACK", .loopback), ("POINTOPOINT", .pointToPoint),
    ("NOARP", .noARP), ("LOWER_UP", .lowerUp),
]

/// The address flags nicroute models, as `ip -j address` spells them.
private func addressFlags(_ info: IPAddressJSON.Info) -> AddressFlags {
    var flags: AddressFlags = []
    if info.secondary == true || info.temporary == true { flags.insert(.secondary) }
    if info.nodad == true { flags.insert(.noDAD) }
    if info.optimistic == true { flags.insert(.optimistic) }
    if info.dadfailed == true { flags.insert(.dadFailed) }
    if info.deprecated == true { flags.insert(.deprecated) }
    if info.tentative == true { flags.insert(.tentative) }
    if info.noprefixroute == true { flags.insert(.noPrefixRoute) }
    if info.dynamic != true { flags.insert(.permanent) }  // ip prints "dynamic" when not permanent
    return flags
}

private let modelledAddressFlags: AddressFlags = [
    .secondary, .noDAD, .optimistic, .dadFailed, .deprecated, .tentative, .permanent, .noPrefixRoute,
]

/// A namespace with the veth pair eth0/eth1 up and addressed: 10.0.0.1/24 and 2001:db8:1::1/64
/// on eth0, 10.0.0.2/24 and 2001:db8:1::2/64 on eth1.
private func addressedPair() throws -> TestNamespace {
    let ns = try TestNamespace()
    do {
        try ns.addVethPair("eth0", "eth1")
        try ns.ip("address", "add", "10.0.0.1/24", "dev", "eth0")
        try ns.ip("address", "add", "2001:db8:1::1/64", "dev", "eth0", "nodad")
        try ns.ip("address", "add", "10.0.0.2/24", "dev", "eth1")
        try ns.ip("address", "add", "2001:db8:1::2/64", "dev", "eth1", "nodad")
    } catch {
        ns.delete()
        throw error
    }
    return ns
}

struct RouteCase: CustomTestStringConvertible, Sendable {
    var family: AddressFamily
    var table: UInt32
    var destination: String
    var gateway: String
    var preferredSource: String
    var testDescription: String { "\(family) table \(table)" }
}

struct RuleCase: CustomTestStringConvertible, Sendable {
    var family: AddressFamily
    var table: UInt32
    var source: String
    var testDescription: String { "\(family) table \(table)" }
}

@Suite("Real kernel", .enabled(if: runningAsRoot, "needs root to create network namespaces"))
struct KernelTests {
    // MARK: Dumps

    @Test("links match ip link: names, indexes, MACs, MTU, kind, flags, state")
    func links() throws {
        let ns = try TestNamespace()
        defer { ns.delete() }
        try ns.addVethPair("eth0", "eth1")
        try ns.addVethPair("eth2", "eth3", up: false)
        try ns.ip("link", "set", "dev", "eth0", "address", "02:00:00:00:00:01", "mtu", "9000")
        try ns.ip("link", "set", "dev", "eth2", "up")  // up, but its peer is down: no carrier

        let links = try RouteNetlink(networkNamespace: ns.path).links()
        let oracle = try ns.json([IPLinkJSON].self, "-d", "link", "show")
        #expect(links.map(\.name).sorted() == ["eth0", "eth1", "eth2", "eth3", "lo"])
        #expect(links.count == oracle.count)
        for expected in oracle {
            let link = try #require(links.first { $0.index == expected.ifindex }, "\(expected.ifname)")
            #expect(link.name == expected.ifname)
            #expect(link.mac?.description == expected.address)
            #expect(link.mtu == expected.mtu)
            #expect(link.kind == expected.linkinfo?.infoKind)
            #expect(link.hardwareType == (expected.linkType == "ether" ? 1 : 772))  // ARPHRD_ETHER, ARPHRD_LOOPBACK
            #expect(
                link.operationalState.description.uppercased().replacingOccurrences(of: "-", with: "")
                    == expected.operstate)
            for (name, flag) in namedLinkFlags {
                #expect(link.flags.contains(flag) == expected.flags.contains(name), "\(link.name) \(name)")
            }
        }
        let eth0 = try #require(links.first { $0.name == "eth0" })
        #expect(eth0.mac == MACAddress("02:00:00:00:00:01"))
        #expect(eth0.mtu == 9000)
        #expect(eth0.kind == "veth")
        #expect(eth0.hardwareType == Link.etherType)  // ARPHRD_ETHER: ip's "ether"
        #expect(oracle.first { $0.ifname == "eth0" }?.linkType == "ether")
        #expect(eth0.flags.isSuperset(of: [.up, .running, .lowerUp]))
        let eth2 = try #require(links.first { $0.name == "eth2" })
        #expect(eth2.isUp && !eth2.flags.contains(.lowerUp))
        #expect(eth2.operationalState == .lowerLayerDown)
        let lo = try #require(links.first { $0.name == "lo" })
        #expect(lo.flags.contains(.loopback) && lo.kind == nil)
    }

    @Test("addresses match ip address: prefixes, scopes, labels, peers and flags")
    func addresses() throws {
        let ns = try TestNamespace()
        defer { ns.delete() }
        try ns.addVethPair("eth0", "eth1")
        try ns.addVethPair("eth2", "eth3", up: false)
        for command in [
            ["10.0.0.1/24", "dev", "eth0"],
            ["10.0.0.7/24", "dev", "eth0", "preferred_lft", "0"],  // secondary, deprecated
            ["10.0.0.9/24", "dev", "eth0", "label", "eth0:9"],  // secondary, labelled
            ["10.5.0.1", "peer", "10.5.0.2/32", "dev", "eth0"],  // point-to-point
            ["10.6.0.1/16", "dev", "eth0", "scope", "link", "noprefixroute"],
            ["10.7.0.1/24", "dev", "eth1", "valid_lft", "3600", "preferred_lft", "1800"],  // not permanent
            ["2001:db8:1::1/64", "dev", "eth0", "nodad"],
            ["2001:db8:1::7/64", "dev", "eth0", "nodad", "preferred_lft", "0"],  // deprecated
            ["2001:db8:2::1/64", "dev", "eth2"],  // tentative while eth2 is down
        ] {
            try ns.ip(["address", "add"] + command)
        }

        let addresses = try RouteNetlink(networkNamespace: ns.path).addresses()
        let oracle = try ns.json([IPAddressJSON].self, "address", "show")
        let expected = oracle.flatMap { link in
            link.addrInfo.map { info in
                InterfaceAddress(
                    linkIndex: link.ifindex, address: IPAddress(info.local)!, prefixLength: info.prefixlen,
                    peer: info.address.flatMap { IPAddress($0) }, scope: IPNames.scope(info.scope)!,
                    flags: addressFlags(info), label: info.label)
            }
        }
        let ours = addresses.map { a in
            var a = a
            a.flags = a.flags.intersection(modelledAddressFlags)
            return a
        }
        #expect(Set(ours) == Set(expected))
        #expect(ours.count == expected.count)

        func flags(_ text: String) -> AddressFlags? { addresses.first { $0.address == IPAddress(text) }?.flags }
        #expect(flags("10.0.0.1")?.contains(.permanent) == true)
        #expect(flags("10.0.0.7")?.isSuperset(of: [.secondary, .deprecated]) == true)
        #expect(flags("10.6.0.1")?.contains(.noPrefixRoute) == true)
        #expect(flags("10.7.0.1")?.contains(.permanent) == false)
        #expect(flags("2001:db8:1::1")?.contains(.noDAD) == true)
        #expect(flags("2001:db8:1::7")?.contains(.deprecated) == true)
        #expect(flags("2001:db8:2::1")?.contains(.tentative) == true)
        #expect(addresses.first { $0.address == IPAddress("10.5.0.1") }?.peer == IPAddress("10.5.0.2"))
        #expect(addresses.first { $0.address == IPAddress("10.0.0.9") }?.label == "eth0:9")
        #expect(addresses.first { $0.address == IPAddress("10.6.0.1") }?.scope == .link)
        #expect(
            try RouteNetlink(networkNamespace: ns.path).addresses(family: .inet6).allSatisfy { $0.family == .inet6 })
    }

    // MARK: Routes and rules

    static let routeCases = [
        RouteCase(
            family: .inet, table: 1000, destination: "198.51.100.0/24", gateway: "10.0.0.254",
            preferredSource: "10.0.0.1"),
        RouteCase(
            family: .inet6, table: 1000, destination: "2001:db8:99::/48", gateway: "2001:db8:1::fe",
            preferredSource: "2001:db8:1::1"),
        RouteCase(
            family: .inet, table: 100, destination: "203.0.113.0/24", gateway: "10.0.0.253",
            preferredSource: "10.0.0.1"),
        RouteCase(
            family: .inet6, table: 4_000_000, destination: "2001:db8:98::/64", gateway: "2001:db8:1::fd",
            preferredSource: "2001:db8:1::1"),
    ]

    @Test("route add, dump, ip route show, delete", arguments: routeCases)
    func route(_ c: RouteCase) throws {
        let ns = try addressedPair()
        defer { ns.delete() }
        let netlink = try RouteNetlink(networkNamespace: ns.path)
        let eth0 = try ns.index(of: "eth0")
        let route = Route(
            family: c.family, table: c.table, destination: IPPrefix(c.destination)!, proto: .nicroute,
            gateway: IPAddress(c.gateway), outputInterface: eth0, preferredSource: IPAddress(c.preferredSource),
            metric: 50)
        let familyFlag = c.family == .inet ? "-4" : "-6"

        #expect(try netlink.add(route) == true)
        #expect(try netlink.add(route) == false)  // EEXIST counts as done

        let dumped = try netlink.routes(family: c.family).filter { $0.table == c.table }
        #expect(dumped.count == 1)
        #expect(dumped.first.map { $0.matches(route) } == true, "\(dumped)")
        #expect(dumped.first?.proto == .nicroute)

        let oracle = try ns.json([IPRouteJSON].self, familyFlag, "route", "show", "table", String(c.table))
        #expect(oracle.count == 1)
        let shown = try #require(oracle.first)
        #expect(IPPrefix(shown.dst) == route.destination)
        #expect(shown.gateway.flatMap { IPAddress($0) } == route.gateway)
        #expect(shown.dev == "eth0")
        #expect(IPNames.protocol(shown.protocol) == RouteProtocol.nicroute.rawValue)
        #expect(shown.prefsrc.flatMap { IPAddress($0) } == route.preferredSource)
        #expect(shown.metric == 50)

        #expect(try netlink.delete(route) == true)
        #expect(try netlink.routes(family: c.family).filter { $0.table == c.table }.isEmpty)
        #expect(try ns.json([IPRouteJSON].self, familyFlag, "route", "show", "table", String(c.table)).isEmpty)
        #expect(try netlink.delete(route) == false)  // ESRCH counts as done
    }

    static let ruleCases = [
        RuleCase(family: .inet, table: 1000, source: "10.0.0.1/32"),
        RuleCase(family: .inet6, table: 1000, source: "2001:db8:1::1/128"),
        RuleCase(family: .inet, table: 4_000_000, source: "10.0.0.0/24"),
        RuleCase(family: .inet6, table: 200, source: "2001:db8:1::/64"),
    ]

    @Test("rule add, dump, ip rule show, delete", arguments: ruleCases)
    func rule(_ c: RuleCase) throws {
        let ns = try addressedPair()
        defer { ns.delete() }
        let netlink = try RouteNetlink(networkNamespace: ns.path)
        let rule = Rule(family: c.family, priority: 1000, table: c.table, source: IPPrefix(c.source), proto: .nicroute)
        let familyFlag = c.family == .inet ? "-4" : "-6"

        #expect(try netlink.add(rule) == true)
        #expect(try netlink.add(rule) == false)  // EEXIST counts as done

        let dumped = try netlink.rules(family: c.family).filter { !$0.isKernelDefault }
        #expect(dumped == [rule])

        let oracle = try ns.json([IPRuleJSON].self, familyFlag, "rule", "show").filter { $0.priority == 1000 }
        #expect(oracle.count == 1)
        let shown = try #require(oracle.first)
        let prefix = try #require(IPPrefix(c.source))
        #expect(IPAddress(shown.src) == prefix.address)
        #expect(shown.srclen ?? prefix.family.bitWidth == prefix.length)
        #expect(IPNames.table(shown.table) == c.table)
        #expect(IPNames.protocol(shown.protocol) == RouteProtocol.nicroute.rawValue)

        #expect(try netlink.delete(rule) == true)
        #expect(try netlink.rules(family: c.family).filter { !$0.isKernelDefault }.isEmpty)
        #expect(try ns.json([IPRuleJSON].self, familyFlag, "rule", "show").filter { $0.priority == 1000 }.isEmpty)
        #expect(try netlink.delete(rule) == false)  // ENOENT counts as done
    }

    // MARK: Errors

    @Test("a route on a nonexistent link is ENODEV")
    func routeOnMissingLink() throws {
        let ns = try addressedPair()
        defer { ns.delete() }
        let route = Route(
            family: .inet, table: 1000, destination: IPPrefix("198.51.100.0/24")!, proto: .nicroute, scope: .link,
            outputInterface: 9999)
        let error = try #require(throws: NetlinkError.self) { try RouteNetlink(networkNamespace: ns.path).add(route) }
        #expect(error.errno == .operationNotSupportedByDevice)  // ENODEV
        #expect(error.operation == "add route")
        #expect(error.object == IPCommand.route("add", route))
    }

    @Test("a route via a gateway on a down link (or a missing one) is ENETUNREACH with the kernel's reason")
    func routeOnDownLink() throws {
        let ns = try addressedPair()
        defer { ns.delete() }
        try ns.addVethPair("eth2", "eth3", up: false)
        try ns.ip("address", "add", "10.9.0.1/24", "dev", "eth2")
        for oif in [try ns.index(of: "eth2"), 9999] {
            let route = Route(
                family: .inet, table: 1000, destination: IPPrefix("198.51.100.0/24")!, proto: .nicroute,
                gateway: IPAddress("10.9.0.254"), outputInterface: oif)
            let error = try #require(throws: NetlinkError.self) {
                try RouteNetlink(networkNamespace: ns.path).add(route)
            }
            #expect(error.errno == .networkUnreachable)  // ENETUNREACH
            #expect(error.kernelMessage == "Nexthop has invalid gateway")
            #expect(error.description.hasSuffix(": Nexthop has invalid gateway"))
        }
    }

    @Test("a batch applies in order across datagrams, goes on after a failure and says which change failed")
    func batch() throws {
        let ns = try addressedPair()
        defer { ns.delete() }
        let netlink = try RouteNetlink(networkNamespace: ns.path)
        // 80 rules (three datagrams), one of them already there, and in the middle a route whose
        // gateway is not reachable.
        let rules = (0..<80).map { i in
            Rule(family: .inet, priority: 1000, table: 1000, source: IPPrefix("10.1.\(i).0/24"), proto: .nicroute)
        }
        let unreachable = Route(
            family: .inet, table: 1000, destination: IPPrefix("198.51.100.0/24")!, proto: .nicroute,
            gateway: IPAddress("10.9.0.254"), outputInterface: try ns.index(of: "eth0"))
        try netlink.add(rules[5])
        let changes = FailingBatch.changes(rules, unreachable: unreachable)
        let results = netlink.apply(changes)
        FailingBatch.expectOutcome(results, of: changes, unreachable: unreachable)
        #expect(Set(try netlink.rules(family: .inet).filter { $0.proto == .nicroute }) == Set(rules))
        let deletions = rules.map(Change.deleteRule)
        #expect(netlink.apply(deletions).allSatisfy { (try? $0.get()) == true })
        #expect(netlink.apply(deletions).allSatisfy { (try? $0.get()) == false })  // ENOENT counts as done
        #expect(try netlink.rules(family: .inet).filter { $0.proto == .nicroute }.isEmpty)
    }

    @Test("a remembered dump follows the kernel's changes and equals a plain dump")
    func rememberedDump() throws {
        let ns = try addressedPair()
        defer { ns.delete() }
        let netlink = try RouteNetlink(networkNamespace: ns.path)
        let before = try netlink.routes(family: .inet, remember: true)
        #expect(try netlink.routes(family: .inet, remember: true) == before)
        let route = Route(
            family: .inet, table: 1000, destination: IPPrefix("198.51.100.0/24")!, proto: .nicroute, scope: .link,
            outputInterface: try ns.index(of: "eth0"))
        let rule = Rule(family: .inet, priority: 1000, table: 1000, source: IPPrefix("10.0.0.1/32"), proto: .nicroute)
        let rulesBefore = try netlink.rules(family: .inet, remember: true)
        try netlink.add(route)
        try netlink.add(rule)
        let during = try netlink.routes(family: .inet, remember: true)
        #expect(during.contains { $0.matches(route) })
        #expect(during == (try netlink.routes(family: .inet)))
        #expect(try netlink.rules(family: .inet, remember: true).contains(rule))
        try netlink.delete(route)
        try netlink.delete(rule)
        #expect(try netlink.routes(family: .inet, remember: true) == before)
        #expect(try netlink.rules(family: .inet, remember: true) == rulesBefore)
    }

    @Test("an IPv6 rule to table 0 is EINVAL with the extended-ack message")
    func ruleToTableZero() throws {
        let ns = try TestNamespace()
        defer { ns.delete() }
        let rule = Rule(family: .inet6, priority: 1000, table: 0, proto: .nicroute)
        let error = try #require(throws: NetlinkError.self) { try RouteNetlink(networkNamespace: ns.path).add(rule) }
        #expect(error.errno == .invalidArgument)  // EINVAL
        #expect(error.kernelMessage == "Invalid table")
    }

    @Test("a goto rule without a target is EINVAL with the extended-ack message")
    func gotoWithoutTarget() throws {
        let ns = try TestNamespace()
        defer { ns.delete() }
        let rule = Rule(family: .inet, priority: 1000, table: 0, proto: .nicroute, action: .goto)
        let error = try #require(throws: NetlinkError.self) { try RouteNetlink(networkNamespace: ns.path).add(rule) }
        #expect(error.errno == .invalidArgument)  // EINVAL
        #expect(error.kernelMessage == "Missing goto target for action goto")
    }

    // MARK: Route lookups

    /// `ip -j route get` as the oracle: interface, gateway, table, or the failure.
    private func ipRouteGet(_ ns: TestNamespace, _ args: String...) -> (dev: String?, gateway: String?, table: String?)?
    {
        struct Answer: Decodable {
            var dev: String?
            var gateway: String?
            var table: String?
        }
        guard let out = try? ns.ip(["-j", "route", "get"] + args),
            let answers = try? JSONDecoder().decode([Answer].self, from: Data(out.utf8)), let a = answers.first
        else { return nil }
        return (a.dev, a.gateway, a.table)
    }

    @Test("route lookups answer as ip route get: the rule's table, its gateway, and rp_filter's refusal")
    func routeLookups() throws {
        let ns = try TestNamespace()
        defer { ns.delete() }
        try ns.addVethPair("eth0", "eth1")
        try ns.ip("address", "add", "10.1.0.1/24", "dev", "eth0")
        try ns.ip("address", "add", "10.2.0.1/24", "dev", "eth1")
        try ns.ip("address", "add", "2001:db8:2::1/64", "dev", "eth1", "nodad")
        try ns.ip("route", "add", "default", "via", "10.1.0.254", "dev", "eth0")
        try ns.ip("-6", "route", "add", "default", "via", "2001:db8:2::fe", "dev", "eth1", "table", "1000")
        try ns.ip("-6", "rule", "add", "from", "2001:db8:2::1", "lookup", "1000", "priority", "100")
        _ = try IPTool.run(["netns", "exec", ns.name, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1"])
        let netlink = try RouteNetlink(networkNamespace: ns.path)
        let eth0 = try ns.index(of: "eth0")
        let eth1 = try ns.index(of: "eth1")
        let outside = IPAddress("192.0.2.1")!
        let mine = IPAddress("10.2.0.1")!

        // No rule: the reply from eth1's address leaves through eth0, by the main table; a
        // request arriving on eth1 fails strict reverse-path filtering.
        var reply = try netlink.lookup(RouteQuery(destination: outside, source: mine))
        var oracle = try #require(ipRouteGet(ns, "192.0.2.1", "from", "10.2.0.1"))
        #expect(reply.outputInterface == eth0 && oracle.dev == "eth0")
        #expect(reply.gateway == IPAddress("10.1.0.254") && oracle.gateway == "10.1.0.254")
        #expect(reply.table == RoutingTable.main)
        let refused = try #require(throws: NetlinkError.self) {
            try netlink.lookup(RouteQuery(destination: mine, source: outside, inputInterface: eth1))
        }
        #expect(refused.errno == .invalidArgument)
        #expect(ipRouteGet(ns, "10.2.0.1", "from", "192.0.2.1", "iif", "eth1") == nil)

        // With a rule and a table of its own: both answer through eth1, the table is reported.
        try ns.ip("route", "add", "default", "via", "10.2.0.254", "dev", "eth1", "table", "1000")
        try ns.ip("rule", "add", "from", "10.2.0.1", "lookup", "1000", "priority", "100")
        reply = try netlink.lookup(RouteQuery(destination: outside, source: mine))
        oracle = try #require(ipRouteGet(ns, "192.0.2.1", "from", "10.2.0.1"))
        #expect(reply.outputInterface == eth1 && oracle.dev == "eth1")
        #expect(reply.gateway == IPAddress("10.2.0.254") && oracle.gateway == "10.2.0.254")
        #expect(reply.table == 1000 && oracle.table == "1000")
        let request = try netlink.lookup(RouteQuery(destination: mine, source: outside, inputInterface: eth1))
        #expect(request.type == .local)
        #expect(ipRouteGet(ns, "10.2.0.1", "from", "192.0.2.1", "iif", "eth1")?.dev == "lo")

        // IPv6: the rule's table and gateway.
        let reply6 = try netlink.lookup(
            RouteQuery(destination: IPAddress("2001:db8::1")!, source: IPAddress("2001:db8:2::1")!))
        let oracle6 = try #require(ipRouteGet(ns, "2001:db8::1", "from", "2001:db8:2::1"))
        #expect(reply6.outputInterface == eth1 && oracle6.dev == "eth1")
        #expect(reply6.gateway == IPAddress("2001:db8:2::fe") && oracle6.gateway == "2001:db8:2::fe")
        #expect(reply6.table == 1000)

        // No route at all: the kernel's errno.
        try ns.ip("route", "del", "default", "via", "10.1.0.254")
        let unreachable = try #require(throws: NetlinkError.self) {
            try netlink.lookup(RouteQuery(destination: IPAddress("198.51.100.1")!))
        }
        #expect(unreachable.errno == .networkUnreachable)
    }

    @Test("a neighbour probe creates an entry the dump shows")
    func neighborProbe() throws {
        let ns = try addressedPair()
        defer { ns.delete() }
        let netlink = try RouteNetlink(networkNamespace: ns.path)
        let eth0 = try ns.index(of: "eth0")
        try netlink.probeNeighbor(IPAddress("10.0.0.99")!, linkIndex: eth0)
        let entry = try netlink.neighbors(family: .inet).first { $0.address == IPAddress("10.0.0.99") }
        #expect(entry?.linkIndex == eth0)
        #expect(entry.map { !$0.state.isEmpty } == true)
    }

    // MARK: Events

    @Test("address and link changes arrive as events")
    func events() throws {
        let ns = try addressedPair()
        defer { ns.delete() }
        let recorder = EventRecorder(try RouteEventReader(networkNamespace: ns.path))
        let eth0 = try ns.index(of: "eth0")

        func isAddress(_ event: RouteEvent, added: Bool, _ text: String) -> Bool {
            switch event {
            case .added(.address(let a)): added && a.address == IPAddress(text) && a.linkIndex == eth0
            case .removed(.address(let a)): !added && a.address == IPAddress(text) && a.linkIndex == eth0
            default: false
            }
        }
        func isLink(_ event: RouteEvent, up: Bool) -> Bool {
            guard case .added(.link(let link)) = event else { return false }
            return link.index == eth0 && link.name == "eth0" && link.isUp == up
        }

        try ns.ip("address", "add", "10.0.0.42/24", "dev", "eth0")
        let added = recorder.next { isAddress($0, added: true, "10.0.0.42") }
        #expect(added != nil, "no .added for 10.0.0.42 in \(recorder.all)")
        if case .added(.address(let a))? = added { #expect(a.prefixLength == 24 && a.flags.contains(.secondary)) }

        try ns.ip("address", "del", "10.0.0.42/24", "dev", "eth0")
        #expect(recorder.next { isAddress($0, added: false, "10.0.0.42") } != nil)

        try ns.ip("address", "add", "2001:db8:1::42/64", "dev", "eth0", "nodad")
        #expect(recorder.next { isAddress($0, added: true, "2001:db8:1::42") } != nil)

        try ns.ip("link", "set", "dev", "eth0", "down")
        #expect(recorder.next { isLink($0, up: false) } != nil)
        // Taking the link down flushes its IPv6 prefix route with an RTM_DELROUTE. (The kernel
        // flushes the IPv4 connected route silently: only a re-dump shows that one gone.)
        let flushed = recorder.next {
            if case .removed(.route(let r)) = $0 { return r.destination == IPPrefix("2001:db8:1::/64") }
            return false
        }
        #expect(flushed != nil)

        try ns.ip("link", "set", "dev", "eth0", "up")
        #expect(recorder.next { isLink($0, up: true) } != nil)

        try ns.ip("rule", "add", "from", "10.0.0.1", "table", "1000", "priority", "1000", "proto", "110")
        let rule = recorder.next {
            if case .added(.rule(let r)) = $0 { return r.priority == 1000 }
            return false
        }
        let expected = Rule(
            family: .inet, priority: 1000, table: 1000, source: IPPrefix("10.0.0.1/32"), proto: .nicroute)
        #expect(rule == .added(.rule(expected)))
        #expect(!recorder.all.contains(.resyncNeeded))
    }

    @Test("with the default receive buffer, hundreds of changes arrive complete and without a resync")
    func noLoss() throws {
        let ns = try addressedPair()
        defer { ns.delete() }
        let recorder = EventRecorder(try RouteEventReader(networkNamespace: ns.path))
        let hosts = (1...300).map { "10.201.\($0 / 250).\($0 % 250 + 1)" }
        try ns.batch(hosts.map { "address add \($0)/32 dev eth1" })
        let wanted = Set(hosts.compactMap { IPAddress($0) })
        var added = Set<IPAddress>()
        while added.count < wanted.count {
            let event = recorder.next {
                if case .added(.address(let a)) = $0 { return wanted.contains(a.address) }
                return false
            }
            guard case .added(.address(let a))? = event else { break }
            added.insert(a.address)
        }
        #expect(added == wanted)
        #expect(!recorder.all.contains(.resyncNeeded))
    }

    @Test("a receive-queue overrun surfaces as .resyncNeeded")
    func overrun() throws {
        let ns = try addressedPair()
        defer { ns.delete() }
        // SO_RCVBUFFORCE applies as we are root; the kernel doubles it to 8 KiB, a few messages.
        let reader = try RouteEventReader(networkNamespace: ns.path, receiveBufferSize: 4096)

        // Thousands of changes while nobody reads: a queue this small overflows, and the reader
        // must say so. (/32s: no secondaries that the deletion of a primary would take along.)
        let hosts = (0..<1500).map { "10.200.\($0 / 250).\($0 % 250 + 1)/32" }
        let storm = hosts.map { "address add \($0) dev eth1" } + hosts.map { "address del \($0) dev eth1" }
        try ns.batch(storm)

        // Now read. Should the queue have kept up after all, a few more storms, bounded.
        let recorder = EventRecorder(reader)
        var storms = 1
        var resync = recorder.next(timeout: .seconds(2)) { $0 == .resyncNeeded }
        while resync == nil && storms < 5 {
            try ns.batch(storm)
            storms += 1
            resync = recorder.next(timeout: .seconds(2)) { $0 == .resyncNeeded }
        }
        #expect(resync != nil, "no .resyncNeeded after \(storms) storms; \(recorder.all.count) events")

        // Changes after the resync still arrive.
        try ns.ip("address", "add", "10.0.0.77/24", "dev", "eth0")
        let later = recorder.next {
            if case .added(.address(let a)) = $0 { return a.address == IPAddress("10.0.0.77") }
            return false
        }
        #expect(later != nil)
    }

    // MARK: Corpus

    /// Captures the kernel's own bytes: notifications, dumps of every kind, an ack and an error
    /// with an extended ack. Every message must split and decode. With NETLINK_CORPUS_DIR set, the
    /// datagrams (and a few of our own requests) are written there: that is how
    /// Tests/Fuzz/netlink-corpus was made.
    @Test("kernel datagrams all decode (and seed the fuzz corpus)")
    func kernelDatagrams() throws {
        let ns = try TestNamespace()
        defer { ns.delete() }
        let groups = MulticastGroup.allCases.map(\.rawValue)
        let notifications = try NetlinkSocket(groups: groups, networkNamespace: ns.path)
        try ns.addVethPair("eth0", "eth1")
        try ns.ip("address", "add", "10.0.0.1/24", "dev", "eth0")
        try ns.ip("address", "add", "10.0.0.7/24", "dev", "eth0", "preferred_lft", "0")
        try ns.ip("address", "add", "2001:db8:1::1/64", "dev", "eth0", "nodad")
        try ns.ip("route", "add", "198.51.100.0/24", "via", "10.0.0.254", "table", "1000", "proto", "110")
        try ns.ip("-6", "route", "add", "2001:db8:99::/48", "via", "2001:db8:1::fe", "table", "1000", "proto", "110")
        try ns.ip("rule", "add", "from", "10.0.0.1", "table", "1000", "priority", "1000", "proto", "110")
        try ns.ip("-6", "rule", "add", "from", "2001:db8:1::1", "table", "1000", "priority", "1000", "proto", "110")
        try ns.ip("neighbour", "add", "10.0.0.254", "lladdr", "02:00:00:00:00:fe", "dev", "eth0", "nud", "permanent")
        try ns.ip("address", "del", "10.0.0.7/24", "dev", "eth0")

        var captured: [(name: String, bytes: [UInt8])] = []
        var pending = pollfd(fd: notifications.descriptor, events: Int16(POLLIN), revents: 0)
        while poll(&pending, 1, 100) > 0 {  // until the queue has been quiet for 100 ms
            captured.append(("event-\(captured.count)", try notifications.receive()))
        }
        #expect(captured.count >= 10)

        let socket = try NetlinkSocket(networkNamespace: ns.path)
        func request(_ name: String, _ bytes: [UInt8]) throws {
            try socket.send(bytes)
            for index in 0... {
                let datagram = try socket.receive()
                captured.append(("\(name)-\(index)", datagram))
                let types = try NetlinkMessage.split(datagram).map(\.header.type)
                if types.contains(MessageType.done) || types.contains(MessageType.error) { break }
                // A route lookup is answered by one RTM_NEWROUTE, without NLMSG_DONE.
                if name.hasPrefix("route-get"), types.contains(MessageType.newRoute) { break }
            }
        }
        try request("dump-links", RouteCodec.dumpRequest(MessageType.getLink, family: nil, sequence: 1))
        try request("dump-addresses", RouteCodec.dumpRequest(MessageType.getAddress, family: nil, sequence: 2))
        try request("dump-routes-ipv4", RouteCodec.dumpRequest(MessageType.getRoute, family: .inet, sequence: 3))
        try request("dump-routes-ipv6", RouteCodec.dumpRequest(MessageType.getRoute, family: .inet6, sequence: 4))
        try request("dump-rules-ipv4", RouteCodec.dumpRequest(MessageType.getRule, family: .inet, sequence: 5))
        try request("dump-rules-ipv6", RouteCodec.dumpRequest(MessageType.getRule, family: .inet6, sequence: 6))
        try request("dump-neighbours", RouteCodec.dumpRequest(MessageType.getNeighbor, family: .inet, sequence: 7))
        let flags = MessageFlags.request | MessageFlags.ack | MessageFlags.create | MessageFlags.exclusive
        let invalid = Rule(family: .inet6, table: 0)
        try request(
            "error-extack", RouteCodec.ruleRequest(MessageType.newRule, flags: flags, rule: invalid, sequence: 8))
        let valid = Rule(family: .inet, priority: 5, table: 5)
        try request("ack", RouteCodec.ruleRequest(MessageType.newRule, flags: flags, rule: valid, sequence: 9))
        let eth0 = try ns.index(of: "eth0")
        try request(
            "route-get-ipv4",
            RouteCodec.routeLookupRequest(
                RouteQuery(destination: IPAddress("198.51.100.1")!, source: IPAddress("10.0.0.1")!), sequence: 10))
        try request(
            "route-get-iif",
            RouteCodec.routeLookupRequest(
                RouteQuery(destination: IPAddress("10.0.0.1")!, source: IPAddress("10.0.0.9")!, inputInterface: eth0),
                sequence: 11))
        try request(
            "route-get-ipv6",
            RouteCodec.routeLookupRequest(
                RouteQuery(destination: IPAddress("2001:db8:99::1")!, source: IPAddress("2001:db8:1::1")!),
                sequence: 12))

        var objects = 0
        for (name, datagram) in captured {
            for message in try NetlinkMessage.split(datagram) {
                if try RouteCodec.decode(message) != nil { objects += 1 }
                if message.header.type == MessageType.error {
                    #expect(try RouteCodec.decodeError(message).errno == (name.hasPrefix("ack") ? 0 : 22))
                }
            }
        }
        #expect(objects >= 30)

        if let directory = ProcessInfo.processInfo.environment["NETLINK_CORPUS_DIR"] {
            try writeCorpus(captured, to: URL(fileURLWithPath: directory))
        }
    }
}

/// Writes the seed corpus: one notification of each message type, every dump datagram but the
/// bare NLMSG_DONEs, and a few of our own requests and hand-made kernel-shaped messages.
private func writeCorpus(_ captured: [(name: String, bytes: [UInt8])], to url: URL) throws {
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    let typeNames: [UInt16: String] = [
        MessageType.newLink: "newlink", MessageType.deleteLink: "dellink", MessageType.newAddress: "newaddr",
        MessageType.deleteAddress: "deladdr", MessageType.newRoute: "newroute", MessageType.deleteRoute: "delroute",
        MessageType.newRule: "newrule", MessageType.newNeighbor: "newneigh",
    ]
    var seen = Set<UInt16>()
    for (name, datagram) in captured {
        let type = try NetlinkMessage.split(datagram)[0].header.type
        if name.hasPrefix("event-") {
            guard seen.insert(type).inserted else { continue }
            try Data(datagram).write(to: url.appendingPathComponent("kernel-event-\(typeNames[type] ?? "\(type)")"))
        } else if datagram.count > 20 || name == "ack-0" {
            try Data(datagram).write(to: url.appendingPathComponent("kernel-\(name)"))
        }
    }
    let names =
        ["dump-link", "dump-addr", "dump-route", "dump-rule"]
        + (0..<8).flatMap { ["route-\($0)", "rule-\($0)"] }
        + [
            "neighbour-probe", "lookup-request", "shaped-link", "shaped-addr", "shaped-neighbour",
            "shaped-error-extack",
        ]
    for (name, message) in zip(names, try Fixtures.validMessages()) {
        let generated = name.hasPrefix("route-") || name.hasPrefix("rule-")
        if !generated || name.hasSuffix("-0") || name.hasSuffix("-1") {
            try Data(message).write(to: url.appendingPathComponent("codec-\(name)"))
        }
    }
}
