import Foundation
import Glibc
import Netlink
import NicrouteCore
import Testing

// Multipath routes against the real kernel, in namespaces each test makes and deletes:
// what dumps and notifications carry for IPv4 and IPv6 ECMP routes (`ip -j route` is the
// oracle), and multipath routes nicroute writes itself.

/// One path of `ip -j route`'s `nexthops`.
private struct IPNexthopJSON: Decodable {
    struct Via: Decodable {
        var family: String
        var host: String
    }
    var gateway: String?
    /// A gateway of the other family (RTA_VIA).
    var via: Via?
    var dev: String
    var weight: UInt16?
    var anyGateway: String? { gateway ?? via?.host }
}

/// A route of `ip -j route` with its paths.
private struct IPMultipathRouteJSON: Decodable {
    var dst: String
    var `protocol`: String?
    var metric: UInt32?
    var nexthops: [IPNexthopJSON]?
}

/// A namespace with the veth pair eth0/eth1 up, 10.0.0.1/24 on eth0, 10.1.0.1/24 on eth1.
private func twoLinks() throws -> TestNamespace {
    let ns = try TestNamespace()
    do {
        try ns.addVethPair("eth0", "eth1")
        try ns.ip("address", "add", "10.0.0.1/24", "dev", "eth0")
        try ns.ip("address", "add", "10.1.0.1/24", "dev", "eth1")
    } catch {
        ns.delete()
        throw error
    }
    return ns
}

@Suite("Real kernel: multipath routes", .enabled(if: runningAsRoot, "needs root to create network namespaces"))
struct KernelMultipathTests {
    @Test("IPv4 and IPv6 ECMP defaults dump as one route each with every path, as ip shows them")
    func dumps() throws {
        let ns = try twoLinks()
        defer { ns.delete() }
        let eth0 = try ns.index(of: "eth0")
        let eth1 = try ns.index(of: "eth1")
        _ = try ns.ip(
            "-6", "route", "add", "default", "proto", "ra", "metric", "1024", "nexthop", "via", "fe80::1", "dev",
            "eth0", "nexthop", "via", "fe80::2", "dev", "eth1")
        _ = try ns.ip(
            "route", "add", "default", "nexthop", "via", "10.0.0.254", "dev", "eth0", "nexthop", "via", "10.1.0.254",
            "dev", "eth1", "weight", "3")
        _ = try ns.ip(
            "route", "add", "192.0.2.0/24", "nexthop", "via", "inet6", "fe80::9", "dev", "eth0", "nexthop", "via",
            "10.1.0.9", "dev", "eth1")

        let netlink = try RouteNetlink(networkNamespace: ns.path)
        let v6 = try netlink.routes(family: .inet6).filter { $0.table == RoutingTable.main && $0.destination.isDefault }
        #expect(v6.count == 1, "\(v6)")
        let route6 = try #require(v6.first)
        #expect(route6.proto == .ra && route6.metric == 1024)
        #expect(
            route6.matches(
                Route(
                    family: .inet6, table: RoutingTable.main, destination: .any(.inet6), proto: .ra, metric: 1024,
                    nextHops: [
                        NextHop(gateway: IPAddress("fe80::1"), outputInterface: eth0),
                        NextHop(gateway: IPAddress("fe80::2"), outputInterface: eth1),
                    ])), "\(route6)")

        let v4 = try netlink.routes(family: .inet).filter { $0.table == RoutingTable.main }
        let default4 = try #require(v4.first { $0.destination.isDefault })
        #expect(
            default4.nextHops.map { [$0.gateway?.description, String($0.outputInterface), String($0.weight)] } == [
                ["10.0.0.254", String(eth0), "1"], ["10.1.0.254", String(eth1), "3"],
            ])
        let via = try #require(v4.first { $0.destination == IPPrefix("192.0.2.0/24") })
        #expect(via.nextHops.map(\.gateway) == [IPAddress("fe80::9"), IPAddress("10.1.0.9")])

        // The oracle: ip's own reading of the same dump.
        let shown = try ns.json([IPMultipathRouteJSON].self, "-6", "route", "show", "default")
        #expect(shown.count == 1)
        #expect(
            shown.first?.nexthops?.map { [$0.gateway, $0.dev] }
                == route6.nextHops.map {
                    [$0.gateway?.description, $0.outputInterface == eth0 ? "eth0" : "eth1"]
                })
        let shown4 = try ns.json([IPMultipathRouteJSON].self, "-4", "route", "show", "default")
        #expect(shown4.first?.nexthops?.map(\.weight) == default4.nextHops.map { Optional($0.weight) })
    }

    @Test("IPv6 siblings: appended one by one, notified with every path; one deleted, notified alone")
    func siblingNotifications() throws {
        let ns = try twoLinks()
        defer { ns.delete() }
        let eth0 = try ns.index(of: "eth0")
        let eth1 = try ns.index(of: "eth1")
        let recorder = EventRecorder(try RouteEventReader(networkNamespace: ns.path))
        func isDefault6(_ event: RouteEvent, added: Bool, paths: Int) -> Bool {
            switch event {
            case .added(.route(let r)):
                added && r.family == .inet6 && r.destination.isDefault && r.paths.count == paths
            case .removed(.route(let r)):
                !added && r.family == .inet6 && r.destination.isDefault && r.paths.count == paths
            default: false
            }
        }

        // As systemd-networkd installs two NICs' RA routes of one metric: one, then the other.
        _ = try ns.ip("-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0", "proto", "ra", "metric", "1024")
        #expect(recorder.next { isDefault6($0, added: true, paths: 1) } != nil)
        _ = try ns.ip(
            "-6", "route", "append", "default", "via", "fe80::2", "dev", "eth1", "proto", "ra", "metric", "1024")
        let merged = recorder.next { isDefault6($0, added: true, paths: 2) }
        #expect(merged != nil, "\(recorder.all)")
        if case .added(.route(let r))? = merged { #expect(Set(r.paths.map(\.outputInterface)) == [eth0, eth1]) }
        let dumped = try RouteNetlink(networkNamespace: ns.path).routes(family: .inet6).filter {
            $0.table == RoutingTable.main && $0.destination.isDefault
        }
        #expect(dumped.count == 1 && dumped.first?.nextHops.count == 2, "\(dumped)")

        _ = try ns.ip("-6", "route", "del", "default", "via", "fe80::1", "dev", "eth0", "metric", "1024")
        let removed = recorder.next { isDefault6($0, added: false, paths: 1) }
        #expect(removed != nil, "\(recorder.all)")
        if case .removed(.route(let r))? = removed {
            #expect(r.nextHops.isEmpty && r.outputInterface == eth0 && r.gateway == IPAddress("fe80::1"))
        }
        let left = try RouteNetlink(networkNamespace: ns.path).routes(family: .inet6).filter {
            $0.table == RoutingTable.main && $0.destination.isDefault
        }
        #expect(left.map(\.paths) == [[NextHop(gateway: IPAddress("fe80::2"), outputInterface: eth1)]])
    }

    @Test("a multipath route nicroute adds is the one ip shows, dumps back equal, replaces and deletes")
    func addMultipath() throws {
        let ns = try twoLinks()
        defer { ns.delete() }
        let eth0 = try ns.index(of: "eth0")
        let eth1 = try ns.index(of: "eth1")
        let netlink = try RouteNetlink(networkNamespace: ns.path)
        for route in [
            Route(
                family: .inet, table: 1000, destination: IPPrefix("198.51.100.0/24")!, proto: .nicroute,
                nextHops: [
                    NextHop(gateway: IPAddress("10.0.0.254"), outputInterface: eth0, weight: 2),
                    NextHop(gateway: IPAddress("10.1.0.254"), outputInterface: eth1),
                ]),
            Route(
                family: .inet6, table: 1000, destination: .any(.inet6), proto: .nicroute,
                nextHops: [
                    NextHop(gateway: IPAddress("fe80::1"), outputInterface: eth0),
                    NextHop(gateway: IPAddress("fe80::2"), outputInterface: eth1),
                ]),
            // An IPv4 route with a path via an IPv6 gateway: RTA_VIA.
            Route(
                family: .inet, table: 1000, destination: IPPrefix("192.0.2.0/24")!, proto: .nicroute,
                nextHops: [
                    NextHop(gateway: IPAddress("fe80::9"), outputInterface: eth0, weight: 3),
                    NextHop(gateway: IPAddress("10.1.0.254"), outputInterface: eth1),
                ]),
        ] {
            #expect(try netlink.add(route) == true)
            #expect(try netlink.add(route) == false)
            let dumped = try netlink.routes(family: route.family).filter { $0.table == 1000 }
            #expect(dumped.count == 1 && dumped.first?.matches(route) == true, "\(dumped)")
            let shown = try ns.json([IPMultipathRouteJSON].self, route.family.ipFlag, "route", "show", "table", "1000")
            #expect(
                shown.first?.nexthops?.map { [$0.anyGateway, $0.dev, $0.weight.map(String.init)] }
                    == route.nextHops.map {
                        [$0.gateway?.description, $0.outputInterface == eth0 ? "eth0" : "eth1", String($0.weight)]
                    })
            // Replacing it with one path leaves one path.
            var single = route
            single.nextHops = []
            single.gateway = route.nextHops[1].gateway
            single.outputInterface = eth1
            try netlink.replace(single)
            let after = try netlink.routes(family: route.family).filter { $0.table == 1000 }
            #expect(after.count == 1 && after.first?.matches(single) == true, "\(after)")
            try netlink.replace(route)
            #expect(try netlink.routes(family: route.family).filter { $0.table == 1000 }.first?.matches(route) == true)
            #expect(try netlink.delete(route) == true)
            #expect(try netlink.routes(family: route.family).filter { $0.table == 1000 }.isEmpty)
        }
    }

    /// The kernel's multipath datagrams (notifications and dumps) all decode, with their paths.
    /// With NETLINK_CORPUS_DIR set they are written there, with our own multipath requests: that
    /// is how Tests/Fuzz/netlink-corpus/*multipath* were made.
    @Test("kernel multipath datagrams all decode (and seed the fuzz corpus)")
    func datagrams() throws {
        let ns = try twoLinks()
        defer { ns.delete() }
        let notifications = try NetlinkSocket(
            groups: [MulticastGroup.ipv4Route.rawValue, MulticastGroup.ipv6Route.rawValue], networkNamespace: ns.path)
        _ = try ns.ip("-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0", "proto", "ra", "metric", "1024")
        _ = try ns.ip(
            "-6", "route", "append", "default", "via", "fe80::2", "dev", "eth1", "proto", "ra", "metric", "1024")
        _ = try ns.ip("-6", "route", "del", "default", "via", "fe80::1", "dev", "eth0", "metric", "1024")
        _ = try ns.ip(
            "route", "add", "192.0.2.0/24", "nexthop", "via", "inet6", "fe80::9", "dev", "eth0", "nexthop", "via",
            "10.1.0.9", "dev", "eth1", "weight", "7")
        var captured: [(name: String, bytes: [UInt8])] = []
        var pending = pollfd(fd: notifications.descriptor, events: Int16(POLLIN), revents: 0)
        while poll(&pending, 1, 100) > 0, captured.count < 64 {  // until quiet for 100 ms
            captured.append(("event-\(captured.count)", try notifications.receive()))
        }
        #expect(captured.count >= 4)
        let socket = try NetlinkSocket(networkNamespace: ns.path)
        for (i, family) in [AddressFamily.inet, .inet6].enumerated() {
            try socket.send(RouteCodec.dumpRequest(MessageType.getRoute, family: family, sequence: UInt32(i + 1)))
            for index in 0..<64 {
                let datagram = try socket.receive()
                captured.append(("dump-routes-\(family)-\(index)", datagram))
                if try NetlinkMessage.split(datagram).contains(where: { $0.header.type == MessageType.done }) { break }
            }
        }
        var multipath = 0
        for (_, datagram) in captured {
            for message in try NetlinkMessage.split(datagram) {
                if case .route(let r)? = try RouteCodec.decode(message), !r.nextHops.isEmpty { multipath += 1 }
            }
        }
        #expect(multipath >= 3, "the append's notification, the IPv4 route's, and its dump")

        guard let directory = ProcessInfo.processInfo.environment["NETLINK_CORPUS_DIR"] else { return }
        let url = URL(fileURLWithPath: directory)
        for (name, datagram) in captured where datagram.count > 20 {
            let routes = try NetlinkMessage.split(datagram).compactMap { try RouteCodec.decode($0) }
            guard routes.contains(where: { if case .route(let r) = $0 { !r.nextHops.isEmpty } else { false } }) else {
                continue
            }
            try Data(datagram).write(to: url.appendingPathComponent("kernel-multipath-\(name)"))
        }
        try Data(KernelShapedMultipath.ipv6Default).write(
            to: url.appendingPathComponent("shaped-multipath-ipv6-default"))
        var rng = SeededGenerator(seed: 5)
        for i in 0..<2 {
            let bytes = try RouteCodec.routeRequest(
                MessageType.newRoute, flags: 0, route: ModelGenerator.multipathRoute(&rng), sequence: 1)
            try Data(bytes).write(to: url.appendingPathComponent("codec-multipath-route-\(i)"))
        }
    }
}
