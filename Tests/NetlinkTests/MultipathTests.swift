import CNetlink
import Netlink
import NicrouteCore
import Testing

// RTA_MULTIPATH: a run of `struct rtnexthop`, each followed by its own attributes. Golden bytes
// annotated per struct field (little-endian host, as GoldenBytesTests), the kernel-shaped dump of
// an IPv6 ECMP default route decoded, malformed paths that must throw, and round trips.

private let eth0: Int32 = 2
private let eth1: Int32 = 3

/// The kernel's dump of `default proto ra metric 1024 nexthop via fe80::1 dev eth0 nexthop via
/// fe80::2 dev eth1` (an IPv6 ECMP default: two RA routes of one metric), as 6.x sends it.
enum KernelShapedMultipath {
    typealias F = Fixtures

    static let ipv6Default: [UInt8] = F.message(
        type: MessageType.newRoute, flags: MessageFlags.multi,
        payload: [
            // struct rtmsg
            0x0a,  // rtm_family = AF_INET6
            0x00,  // rtm_dst_len = 0: the default route
            0x00,  // rtm_src_len
            0x00,  // rtm_tos
            0xfe,  // rtm_table = RT_TABLE_MAIN
            0x09,  // rtm_protocol = RTPROT_RA
            0x00,  // rtm_scope = RT_SCOPE_UNIVERSE
            0x01,  // rtm_type = RTN_UNICAST
            0x00, 0x00, 0x00, 0x00,  // rtm_flags
        ]
            + F.attribute(UInt16(RTA_TABLE.rawValue), u32: 254)
            + F.attribute(UInt16(RTA_PRIORITY.rawValue), u32: 1024)
            + [
                // RTA_MULTIPATH (no NLA_F_NESTED, as the kernel writes it)
                0x3c, 0x00, 0x09, 0x00,  // rta_len = 60, rta_type = RTA_MULTIPATH (9)
                // struct rtnexthop
                0x1c, 0x00,  // rtnh_len = 28: the struct and RTA_GATEWAY
                0x00,  // rtnh_flags
                0x00,  // rtnh_hops = 0: weight 1
                0x02, 0x00, 0x00, 0x00,  // rtnh_ifindex = 2 (eth0)
                0x14, 0x00, 0x05, 0x00,  // rta_len = 20, rta_type = RTA_GATEWAY (5)
                0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // fe80::1
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
                // struct rtnexthop
                0x1c, 0x00,  // rtnh_len = 28
                0x10,  // rtnh_flags = RTNH_F_LINKDOWN (a state flag the kernel adds)
                0x00,  // rtnh_hops = 0
                0x03, 0x00, 0x00, 0x00,  // rtnh_ifindex = 3 (eth1)
                0x14, 0x00, 0x05, 0x00,  // rta_len = 20, rta_type = RTA_GATEWAY (5)
                0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // fe80::2
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
            ]
            + F.attribute(UInt16(RTA_PREF.rawValue), [0x00]))

    /// The same route's paths with `rtnh_len` replaced by `length` in the second one.
    static func ipv6Default(secondLength length: UInt16) -> [UInt8] {
        var bytes = ipv6Default
        // nlmsghdr 16 + rtmsg 12 + RTA_TABLE 8 + RTA_PRIORITY 8 + RTA_MULTIPATH header 4 + path 28
        let offset = 16 + Int(CNL_RTMSG_SIZE) + 8 + 8 + 4 + 28
        bytes.replaceSubrange(offset..<offset + 2, with: F.le(length))
        return bytes
    }
}

private func decodeRoute(_ bytes: [UInt8]) throws -> Route? {
    let messages = try NetlinkMessage.split(bytes)
    try #require(messages.count == 1)
    guard case .route(let r)? = try RouteCodec.decode(messages[0]) else { return nil }
    return r
}

/// A route of `family` with `RTA_MULTIPATH` = `multipath` (the attribute's payload).
private func routeWithMultipath(_ family: AddressFamily, _ multipath: [UInt8]) -> [UInt8] {
    Fixtures.message(
        type: MessageType.newRoute,
        payload: [family.rawValue, 0, 0, 0, 0xfe, 0x03, 0x00, 0x01, 0, 0, 0, 0]
            + Fixtures.attribute(UInt16(RTA_MULTIPATH.rawValue), multipath))
}

/// `struct rtnexthop` with `rtnh_len` = `length` (default: the struct and `attributes`).
private func nexthop(
    ifindex: Int32, hops: UInt8 = 0, flags: UInt8 = 0, length: UInt16? = nil, _ attributes: [UInt8]
)
    -> [UInt8]
{
    Fixtures.le(length ?? UInt16(Int(CNL_RTNEXTHOP_SIZE) + attributes.count)) + [flags, hops] + Fixtures.le(ifindex)
        + attributes
}

@Suite("Multipath routes")
struct MultipathTests {
    @Test("route add, IPv6 ECMP default in table 1000: RTA_MULTIPATH with weights and onlink")
    func encodeIPv6() throws {
        let route = Route(
            family: .inet6, table: 1000, destination: .any(.inet6), proto: .nicroute,
            nextHops: [
                NextHop(gateway: IPAddress("fe80::1"), outputInterface: eth0),
                NextHop(
                    gateway: IPAddress("fe80::2"), outputInterface: eth1, weight: 2, flags: UInt8(Route.onlinkFlag)),
            ])
        let flags = MessageFlags.request | MessageFlags.ack | MessageFlags.create | MessageFlags.exclusive
        let bytes = try RouteCodec.routeRequest(MessageType.newRoute, flags: flags, route: route, sequence: 9)
        let expected: [UInt8] = [
            // struct nlmsghdr
            0x60, 0x00, 0x00, 0x00,  // nlmsg_len = 96
            0x18, 0x00,  // nlmsg_type = RTM_NEWROUTE (24)
            0x05, 0x06,  // nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
            0x09, 0x00, 0x00, 0x00,  // nlmsg_seq = 9
            0x00, 0x00, 0x00, 0x00,  // nlmsg_pid = 0
            // struct rtmsg
            0x0a,  // rtm_family = AF_INET6
            0x00,  // rtm_dst_len = 0 (no RTA_DST follows)
            0x00,  // rtm_src_len
            0x00,  // rtm_tos
            0x00,  // rtm_table = RT_TABLE_UNSPEC: 1000 travels in RTA_TABLE
            0x6e,  // rtm_protocol = 110 (nicroute)
            0x00,  // rtm_scope = RT_SCOPE_UNIVERSE
            0x01,  // rtm_type = RTN_UNICAST
            0x00, 0x00, 0x00, 0x00,  // rtm_flags: the paths carry their own
            // RTA_TABLE
            0x08, 0x00, 0x0f, 0x00,  // rta_len = 8, rta_type = RTA_TABLE (15)
            0xe8, 0x03, 0x00, 0x00,  // 1000
            // RTA_MULTIPATH, without NLA_F_NESTED (as iproute2 writes it)
            0x3c, 0x00, 0x09, 0x00,  // rta_len = 60, rta_type = RTA_MULTIPATH (9)
            // struct rtnexthop
            0x1c, 0x00,  // rtnh_len = 28
            0x00,  // rtnh_flags
            0x00,  // rtnh_hops = weight 1 - 1
            0x02, 0x00, 0x00, 0x00,  // rtnh_ifindex = 2
            0x14, 0x00, 0x05, 0x00,  // rta_len = 20, rta_type = RTA_GATEWAY (5)
            0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // fe80::1
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
            // struct rtnexthop
            0x1c, 0x00,  // rtnh_len = 28
            0x04,  // rtnh_flags = RTNH_F_ONLINK
            0x01,  // rtnh_hops = weight 2 - 1
            0x03, 0x00, 0x00, 0x00,  // rtnh_ifindex = 3
            0x14, 0x00, 0x05, 0x00,  // rta_len = 20, rta_type = RTA_GATEWAY (5)
            0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // fe80::2
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
        ]
        #expect(bytes == expected)
    }

    @Test("route add, IPv4 via an IPv6 gateway: RTA_VIA in the path")
    func encodeVia() throws {
        let route = Route(
            family: .inet, table: 254, destination: IPPrefix("10.9.0.0/16")!,
            nextHops: [
                NextHop(gateway: IPAddress("fe80::1"), outputInterface: eth0),
                NextHop(gateway: IPAddress("10.0.0.1"), outputInterface: eth1),
            ])
        let bytes = try RouteCodec.routeRequest(MessageType.newRoute, flags: 0, route: route, sequence: 1)
        let expected: [UInt8] = [
            // struct nlmsghdr
            0x60, 0x00, 0x00, 0x00,  // nlmsg_len = 96
            0x18, 0x00,  // nlmsg_type = RTM_NEWROUTE
            0x00, 0x00,  // nlmsg_flags
            0x01, 0x00, 0x00, 0x00,  // nlmsg_seq = 1
            0x00, 0x00, 0x00, 0x00,  // nlmsg_pid
            // struct rtmsg
            0x02,  // rtm_family = AF_INET
            0x10,  // rtm_dst_len = 16
            0x00, 0x00,  // rtm_src_len, rtm_tos
            0xfe,  // rtm_table = RT_TABLE_MAIN
            0x03,  // rtm_protocol = RTPROT_BOOT
            0x00,  // rtm_scope
            0x01,  // rtm_type = RTN_UNICAST
            0x00, 0x00, 0x00, 0x00,  // rtm_flags
            // RTA_TABLE
            0x08, 0x00, 0x0f, 0x00, 0xfe, 0x00, 0x00, 0x00,  // 254
            // RTA_DST
            0x08, 0x00, 0x01, 0x00, 0x0a, 0x09, 0x00, 0x00,  // 10.9.0.0
            // RTA_MULTIPATH
            0x34, 0x00, 0x09, 0x00,  // rta_len = 52
            // struct rtnexthop
            0x20, 0x00,  // rtnh_len = 32: the struct and RTA_VIA (4 + 2 + 16 bytes, padded to 24)
            0x00, 0x00,  // rtnh_flags, rtnh_hops
            0x02, 0x00, 0x00, 0x00,  // rtnh_ifindex = 2
            0x16, 0x00, 0x12, 0x00,  // rta_len = 22, rta_type = RTA_VIA (18)
            0x0a, 0x00,  // struct rtvia: rtvia_family = AF_INET6
            0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // rtvia_addr = fe80::1
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
            0x00, 0x00,  // padding (RTA_ALIGN)
            // struct rtnexthop
            0x10, 0x00,  // rtnh_len = 16
            0x00, 0x00,  // rtnh_flags, rtnh_hops
            0x03, 0x00, 0x00, 0x00,  // rtnh_ifindex = 3
            0x08, 0x00, 0x05, 0x00,  // rta_len = 8, rta_type = RTA_GATEWAY
            0x0a, 0x00, 0x00, 0x01,  // 10.0.0.1
        ]
        #expect(bytes == expected)
        #expect(try decodeRoute(bytes)?.matches(route) == true)
    }

    @Test("the kernel's IPv6 ECMP default decodes to one route with both paths")
    func decodeKernelShaped() throws {
        let route = try #require(try decodeRoute(KernelShapedMultipath.ipv6Default))
        #expect(route.family == .inet6)
        #expect(route.table == RoutingTable.main)
        #expect(route.destination.isDefault)
        #expect(route.proto == .ra)
        #expect(route.metric == 1024)
        #expect(route.gateway == nil && route.outputInterface == nil)
        #expect(
            route.nextHops == [
                NextHop(gateway: IPAddress("fe80::1"), outputInterface: eth0),
                NextHop(gateway: IPAddress("fe80::2"), outputInterface: eth1, flags: 0x10),
            ])
        #expect(route.paths.map(\.outputInterface) == [eth0, eth1])
        // A state flag of the kernel's (RTNH_F_LINKDOWN) does not make it another route.
        var wanted = route
        wanted.nextHops[1].flags = 0
        #expect(route.matches(wanted))
        // Nor does the order of the paths: the kernel keeps IPv6 siblings in the order they came.
        wanted.nextHops.reverse()
        #expect(route.matches(wanted))
        wanted.nextHops[0].weight = 2
        #expect(!route.matches(wanted))
    }

    @Test(
        "a path length that under- or overruns, a short struct, or no path at all throws",
        arguments: [0, 4, 7, 29, 32, 0xffff] as [UInt16])
    func malformedLengths(_ length: UInt16) {
        #expect(throws: NetlinkDecodingError.self) {
            try decodeRoute(KernelShapedMultipath.ipv6Default(secondLength: length))
        }
    }

    static let malformedPaths: [(String, AddressFamily, [UInt8])] = [
        ("empty RTA_MULTIPATH", .inet6, []),
        ("3 bytes, less than a struct rtnexthop", .inet, [0x08, 0x00, 0x00]),
        ("7 bytes after one path", .inet, nexthop(ifindex: 2, []) + [0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]),
        (
            "an IPv4 gateway in an IPv6 route", .inet6,
            nexthop(ifindex: 2, Fixtures.attribute(UInt16(RTA_GATEWAY.rawValue), [10, 0, 0, 1]))
        ),
        (
            "a 5-byte gateway", .inet,
            nexthop(ifindex: 2, Fixtures.attribute(UInt16(RTA_GATEWAY.rawValue), [10, 0, 0, 1, 0]))
        ),
        (
            "an attribute overrunning its path", .inet,
            nexthop(ifindex: 2, length: 12, Fixtures.attribute(UInt16(RTA_GATEWAY.rawValue), [10, 0, 0, 1]))
        ),
        (
            "RTA_VIA shorter than struct rtvia", .inet,
            nexthop(ifindex: 2, Fixtures.attribute(UInt16(RTA_VIA.rawValue), [0x0a]))
        ),
        (
            "RTA_VIA of an unknown family", .inet,
            nexthop(
                ifindex: 2, Fixtures.attribute(UInt16(RTA_VIA.rawValue), Fixtures.le(UInt16(0x10a)) + [10, 0, 0, 1]))
        ),
        (
            "RTA_VIA whose address is not of its family", .inet,
            nexthop(ifindex: 2, Fixtures.attribute(UInt16(RTA_VIA.rawValue), Fixtures.le(UInt16(10)) + [10, 0, 0, 1]))
        ),
    ]

    @Test("malformed paths throw", arguments: malformedPaths.indices)
    func malformedPath(_ i: Int) {
        let (name, family, multipath) = Self.malformedPaths[i]
        #expect(throws: NetlinkDecodingError.self, "\(name)") { try decodeRoute(routeWithMultipath(family, multipath)) }
    }

    @Test("every cut of the kernel's paths, with consistent outer lengths, throws but at a path's end")
    func truncations() throws {
        // RTA_MULTIPATH's payload: after nlmsghdr 16, rtmsg 12, RTA_TABLE 8, RTA_PRIORITY 8 and
        // its own header 4; two paths of 28 bytes.
        let paths = Array(KernelShapedMultipath.ipv6Default[48..<104])
        for n in 0..<paths.count {
            let cut = routeWithMultipath(.inet6, Array(paths[0..<n]))
            if n == 28 {
                #expect(try decodeRoute(cut)?.nextHops.count == 1)
            } else {
                #expect(exercise(cut) == .threw, "cut at \(n)")
            }
        }
        #expect(try decodeRoute(routeWithMultipath(.inet6, paths))?.nextHops.count == 2)
    }

    @Test("generated multipath routes round-trip", arguments: [1, 2, 3] as [UInt64])
    func roundTrip(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        for i in 0..<300 {
            let route = ModelGenerator.multipathRoute(&rng)
            let bytes = try RouteCodec.routeRequest(MessageType.newRoute, flags: 0, route: route, sequence: UInt32(i))
            let decoded = try #require(try decodeRoute(bytes))
            #expect(decoded == route, "seed \(seed), route \(i): \(IPCommand.route("add", route))")
        }
    }

    @Test("a route's paths, and a route restricted to some of them")
    func pathsAndRestriction() {
        let multipath = Route(
            family: .inet, table: 254, destination: IPPrefix("10.9.0.0/16")!,
            nextHops: [
                NextHop(gateway: IPAddress("10.0.0.1"), outputInterface: eth0, flags: UInt8(Route.onlinkFlag)),
                NextHop(gateway: IPAddress("10.1.0.1"), outputInterface: eth1),
                NextHop(gateway: IPAddress("10.1.0.2"), outputInterface: eth1, weight: 3),
            ])
        let single = multipath.restricted { $0.outputInterface == eth0 }
        #expect(single?.nextHops == [])
        #expect(single?.gateway == IPAddress("10.0.0.1") && single?.outputInterface == eth0)
        #expect(single?.flags == Route.onlinkFlag)
        let two = multipath.restricted { $0.outputInterface == eth1 }
        #expect(two?.nextHops.count == 2 && two?.gateway == nil && two?.outputInterface == nil)
        #expect(multipath.restricted { _ in false } == nil)
        let plain = Route(
            family: .inet, table: 254, destination: IPPrefix("10.9.0.0/16")!, gateway: IPAddress("10.0.0.1"),
            outputInterface: eth0)
        #expect(plain.paths == [NextHop(gateway: IPAddress("10.0.0.1"), outputInterface: eth0)])
        #expect(Route(family: .inet, table: 254, destination: .any(.inet), type: .blackhole).paths == [])
        #expect(
            IPCommand.route("add", two!, linkName: { $0 == eth1 ? "eth1" : nil })
                == "ip -4 route add 10.9.0.0/16 table main proto boot nexthop via 10.1.0.1 dev eth1 weight 1"
                + " nexthop via 10.1.0.2 dev eth1 weight 3")
    }
}

extension ModelGenerator {
    /// A route with 1 to 4 paths, each with an optional gateway of either family (RTA_VIA when
    /// it is not the route's), any weight and `RTNH_F_ONLINK` or not.
    static func multipathRoute(_ rng: inout SeededGenerator) -> Route {
        var route = ModelGenerator.route(&rng)
        route.gateway = nil
        route.outputInterface = nil
        route.nextHops = (0..<Int.random(in: 1...4, using: &rng)).map { _ in
            NextHop(
                gateway: rng.maybe { address($0.bool() ? route.family : .inet6, &$0) },
                outputInterface: Int32.random(in: Int32.min...Int32.max, using: &rng),
                weight: UInt16.random(in: 1...256, using: &rng), flags: rng.bool() ? UInt8(Route.onlinkFlag) : 0)
        }
        return route
    }
}
