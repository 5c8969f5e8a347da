import CNetlink
import Netlink
import NicrouteCore
import Testing

// Golden bytes of every request RouteCodec encodes, annotated per C struct field.
//
// Netlink integers are in host byte order; these tables are written for a little-endian host
// (x86_64, aarch64), the only kind nicroute runs on. Addresses are in network byte order.

private let eth0: Int32 = 2
private let eth1: Int32 = 3

struct DumpRequestCase: CustomTestStringConvertible, Sendable {
    var type: UInt16
    var family: AddressFamily?
    var expected: [UInt8]
    var testDescription: String { "type \(type) family \(family.map(String.init(describing:)) ?? "unspec")" }
}

@Suite("Golden bytes")
struct GoldenBytesTests {
    static let dumpCases: [DumpRequestCase] = [
        DumpRequestCase(
            type: MessageType.getLink, family: nil,
            expected: [
                // struct nlmsghdr
                0x20, 0x00, 0x00, 0x00,  // nlmsg_len = 32
                0x12, 0x00,  // nlmsg_type = RTM_GETLINK (18)
                0x01, 0x03,  // nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP (0x301)
                0x01, 0x00, 0x00, 0x00,  // nlmsg_seq = 1
                0x00, 0x00, 0x00, 0x00,  // nlmsg_pid = 0
                // struct ifinfomsg
                0x00,  // ifi_family = AF_UNSPEC
                0x00,  // __ifi_pad
                0x00, 0x00,  // ifi_type
                0x00, 0x00, 0x00, 0x00,  // ifi_index
                0x00, 0x00, 0x00, 0x00,  // ifi_flags
                0x00, 0x00, 0x00, 0x00,  // ifi_change
            ]),
        DumpRequestCase(
            type: MessageType.getAddress, family: .inet6,
            expected: [
                // struct nlmsghdr
                0x18, 0x00, 0x00, 0x00,  // nlmsg_len = 24
                0x16, 0x00,  // nlmsg_type = RTM_GETADDR (22)
                0x01, 0x03,  // nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP
                0x01, 0x00, 0x00, 0x00,  // nlmsg_seq = 1
                0x00, 0x00, 0x00, 0x00,  // nlmsg_pid = 0
                // struct ifaddrmsg
                0x0a,  // ifa_family = AF_INET6
                0x00,  // ifa_prefixlen
                0x00,  // ifa_flags
                0x00,  // ifa_scope
                0x00, 0x00, 0x00, 0x00,  // ifa_index
            ]),
        DumpRequestCase(
            type: MessageType.getRoute, family: .inet,
            expected: [
                // struct nlmsghdr
                0x1c, 0x00, 0x00, 0x00,  // nlmsg_len = 28
                0x1a, 0x00,  // nlmsg_type = RTM_GETROUTE (26)
                0x01, 0x03,  // nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP
                0x01, 0x00, 0x00, 0x00,  // nlmsg_seq = 1
                0x00, 0x00, 0x00, 0x00,  // nlmsg_pid = 0
                // struct rtmsg
                0x02,  // rtm_family = AF_INET
                0x00,  // rtm_dst_len
                0x00,  // rtm_src_len
                0x00,  // rtm_tos
                0x00,  // rtm_table
                0x00,  // rtm_protocol
                0x00,  // rtm_scope
                0x00,  // rtm_type
                0x00, 0x00, 0x00, 0x00,  // rtm_flags
            ]),
        DumpRequestCase(
            type: MessageType.getRule, family: .inet6,
            expected: [
                // struct nlmsghdr
                0x1c, 0x00, 0x00, 0x00,  // nlmsg_len = 28
                0x22, 0x00,  // nlmsg_type = RTM_GETRULE (34)
                0x01, 0x03,  // nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP
                0x01, 0x00, 0x00, 0x00,  // nlmsg_seq = 1
                0x00, 0x00, 0x00, 0x00,  // nlmsg_pid = 0
                // struct fib_rule_hdr
                0x0a,  // family = AF_INET6
                0x00,  // dst_len
                0x00,  // src_len
                0x00,  // tos
                0x00,  // table
                0x00,  // res1
                0x00,  // res2
                0x00,  // action
                0x00, 0x00, 0x00, 0x00,  // flags
            ]),
        DumpRequestCase(
            type: MessageType.getNeighbor, family: .inet,
            expected: [
                // struct nlmsghdr
                0x1c, 0x00, 0x00, 0x00,  // nlmsg_len = 28
                0x1e, 0x00,  // nlmsg_type = RTM_GETNEIGH (30)
                0x01, 0x03,  // nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP
                0x01, 0x00, 0x00, 0x00,  // nlmsg_seq = 1
                0x00, 0x00, 0x00, 0x00,  // nlmsg_pid = 0
                // struct ndmsg
                0x02,  // ndm_family = AF_INET
                0x00,  // ndm_pad1
                0x00, 0x00,  // ndm_pad2
                0x00, 0x00, 0x00, 0x00,  // ndm_ifindex
                0x00, 0x00,  // ndm_state
                0x00,  // ndm_flags
                0x00,  // ndm_type
            ]),
    ]

    @Test("dump requests", arguments: dumpCases)
    func dumpRequest(_ c: DumpRequestCase) {
        #expect(RouteCodec.dumpRequest(c.type, family: c.family, sequence: 1) == c.expected)
    }

    @Test("route add, IPv4, table >= 256 in RTA_TABLE with gateway, oif, prefsrc and metric")
    func routeAddIPv4() throws {
        let route = Route(
            family: .inet, table: 1000, destination: IPPrefix("198.51.100.0/24")!, proto: .nicroute,
            gateway: IPAddress("10.0.0.254"), outputInterface: eth0, preferredSource: IPAddress("10.0.0.1"),
            metric: 50)
        let flags = MessageFlags.request | MessageFlags.ack | MessageFlags.create | MessageFlags.exclusive
        let bytes = try RouteCodec.routeRequest(MessageType.newRoute, flags: flags, route: route, sequence: 7)
        let expected: [UInt8] = [
            // struct nlmsghdr
            0x4c, 0x00, 0x00, 0x00,  // nlmsg_len = 76
            0x18, 0x00,  // nlmsg_type = RTM_NEWROUTE (24)
            0x05, 0x06,  // nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE (0x605)
            0x07, 0x00, 0x00, 0x00,  // nlmsg_seq = 7
            0x00, 0x00, 0x00, 0x00,  // nlmsg_pid = 0
            // struct rtmsg
            0x02,  // rtm_family = AF_INET
            0x18,  // rtm_dst_len = 24
            0x00,  // rtm_src_len = 0
            0x00,  // rtm_tos = 0
            0x00,  // rtm_table = RT_TABLE_UNSPEC: 1000 does not fit, it travels in RTA_TABLE
            0x6e,  // rtm_protocol = 110 (nicroute)
            0x00,  // rtm_scope = RT_SCOPE_UNIVERSE
            0x01,  // rtm_type = RTN_UNICAST
            0x00, 0x00, 0x00, 0x00,  // rtm_flags = 0
            // RTA_TABLE: struct rtattr + u32
            0x08, 0x00, 0x0f, 0x00,  // rta_len = 8, rta_type = RTA_TABLE (15)
            0xe8, 0x03, 0x00, 0x00,  // 1000
            // RTA_DST
            0x08, 0x00, 0x01, 0x00,  // rta_len = 8, rta_type = RTA_DST (1)
            0xc6, 0x33, 0x64, 0x00,  // 198.51.100.0
            // RTA_GATEWAY
            0x08, 0x00, 0x05, 0x00,  // rta_len = 8, rta_type = RTA_GATEWAY (5)
            0x0a, 0x00, 0x00, 0xfe,  // 10.0.0.254
            // RTA_OIF
            0x08, 0x00, 0x04, 0x00,  // rta_len = 8, rta_type = RTA_OIF (4)
            0x02, 0x00, 0x00, 0x00,  // ifindex 2
            // RTA_PREFSRC
            0x08, 0x00, 0x07, 0x00,  // rta_len = 8, rta_type = RTA_PREFSRC (7)
            0x0a, 0x00, 0x00, 0x01,  // 10.0.0.1
            // RTA_PRIORITY
            0x08, 0x00, 0x06, 0x00,  // rta_len = 8, rta_type = RTA_PRIORITY (6)
            0x32, 0x00, 0x00, 0x00,  // metric 50
        ]
        #expect(bytes == expected)
    }

    @Test("route add, IPv6, main table, source-specific and onlink")
    func routeAddIPv6() throws {
        let route = Route(
            family: .inet6, table: RoutingTable.main, destination: IPPrefix("2001:db8:99::/48")!,
            source: IPPrefix("2001:db8:1::/64"), proto: .nicroute, flags: Route.onlinkFlag,
            gateway: IPAddress("fe80::1"), outputInterface: eth1, metric: 1024)
        let flags = MessageFlags.request | MessageFlags.ack | MessageFlags.create | MessageFlags.replace
        let bytes = try RouteCodec.routeRequest(MessageType.newRoute, flags: flags, route: route, sequence: 8)
        let expected: [UInt8] = [
            // struct nlmsghdr
            0x70, 0x00, 0x00, 0x00,  // nlmsg_len = 112
            0x18, 0x00,  // nlmsg_type = RTM_NEWROUTE (24)
            0x05, 0x05,  // nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE | NLM_F_CREATE (0x505)
            0x08, 0x00, 0x00, 0x00,  // nlmsg_seq = 8
            0x00, 0x00, 0x00, 0x00,  // nlmsg_pid = 0
            // struct rtmsg
            0x0a,  // rtm_family = AF_INET6
            0x30,  // rtm_dst_len = 48
            0x40,  // rtm_src_len = 64
            0x00,  // rtm_tos = 0
            0xfe,  // rtm_table = RT_TABLE_MAIN (254): fits, and is sent in RTA_TABLE as well
            0x6e,  // rtm_protocol = 110 (nicroute)
            0x00,  // rtm_scope = RT_SCOPE_UNIVERSE
            0x01,  // rtm_type = RTN_UNICAST
            0x04, 0x00, 0x00, 0x00,  // rtm_flags = RTNH_F_ONLINK
            // RTA_TABLE
            0x08, 0x00, 0x0f, 0x00,  // rta_len = 8, rta_type = RTA_TABLE (15)
            0xfe, 0x00, 0x00, 0x00,  // 254
            // RTA_DST
            0x14, 0x00, 0x01, 0x00,  // rta_len = 20, rta_type = RTA_DST (1)
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x99, 0x00, 0x00,  // 2001:db8:99::
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            // RTA_SRC
            0x14, 0x00, 0x02, 0x00,  // rta_len = 20, rta_type = RTA_SRC (2)
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00,  // 2001:db8:1::
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            // RTA_GATEWAY
            0x14, 0x00, 0x05, 0x00,  // rta_len = 20, rta_type = RTA_GATEWAY (5)
            0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,  // fe80::1
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
            // RTA_OIF
            0x08, 0x00, 0x04, 0x00,  // rta_len = 8, rta_type = RTA_OIF (4)
            0x03, 0x00, 0x00, 0x00,  // ifindex 3
            // RTA_PRIORITY
            0x08, 0x00, 0x06, 0x00,  // rta_len = 8, rta_type = RTA_PRIORITY (6)
            0x00, 0x04, 0x00, 0x00,  // metric 1024
        ]
        #expect(bytes == expected)
    }

    @Test("route delete, IPv4 blackhole in table 100000")
    func routeDelete() throws {
        let route = Route(
            family: .inet, table: 100_000, destination: IPPrefix("203.0.113.7/32")!, proto: .nicroute,
            scope: .host, type: .blackhole)
        let flags = MessageFlags.request | MessageFlags.ack
        let bytes = try RouteCodec.routeRequest(MessageType.deleteRoute, flags: flags, route: route, sequence: 9)
        let expected: [UInt8] = [
            // struct nlmsghdr
            0x2c, 0x00, 0x00, 0x00,  // nlmsg_len = 44
            0x19, 0x00,  // nlmsg_type = RTM_DELROUTE (25)
            0x05, 0x00,  // nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK
            0x09, 0x00, 0x00, 0x00,  // nlmsg_seq = 9
            0x00, 0x00, 0x00, 0x00,  // nlmsg_pid = 0
            // struct rtmsg
            0x02,  // rtm_family = AF_INET
            0x20,  // rtm_dst_len = 32
            0x00,  // rtm_src_len = 0
            0x00,  // rtm_tos = 0
            0x00,  // rtm_table = RT_TABLE_UNSPEC
            0x6e,  // rtm_protocol = 110 (nicroute)
            0xfe,  // rtm_scope = RT_SCOPE_HOST
            0x06,  // rtm_type = RTN_BLACKHOLE
            0x00, 0x00, 0x00, 0x00,  // rtm_flags = 0
            // RTA_TABLE
            0x08, 0x00, 0x0f, 0x00,  // rta_len = 8, rta_type = RTA_TABLE (15)
            0xa0, 0x86, 0x01, 0x00,  // 100000
            // RTA_DST
            0x08, 0x00, 0x01, 0x00,  // rta_len = 8, rta_type = RTA_DST (1)
            0xcb, 0x00, 0x71, 0x07,  // 203.0.113.7
        ]
        #expect(bytes == expected)
    }

    @Test("rule add, IPv4, priority, FRA_TABLE >= 256, FRA_SRC and FRA_PROTOCOL")
    func ruleAddIPv4() throws {
        let rule = Rule(
            family: .inet, priority: 1000, table: 1000, source: IPPrefix("10.0.0.1/32"), proto: .nicroute)
        let flags = MessageFlags.request | MessageFlags.ack | MessageFlags.create | MessageFlags.exclusive
        let bytes = try RouteCodec.ruleRequest(MessageType.newRule, flags: flags, rule: rule, sequence: 10)
        let expected: [UInt8] = [
            // struct nlmsghdr
            0x3c, 0x00, 0x00, 0x00,  // nlmsg_len = 60
            0x20, 0x00,  // nlmsg_type = RTM_NEWRULE (32)
            0x05, 0x06,  // nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
            0x0a, 0x00, 0x00, 0x00,  // nlmsg_seq = 10
            0x00, 0x00, 0x00, 0x00,  // nlmsg_pid = 0
            // struct fib_rule_hdr
            0x02,  // family = AF_INET
            0x00,  // dst_len = 0
            0x20,  // src_len = 32
            0x00,  // tos = 0
            0x00,  // table = RT_TABLE_UNSPEC: 1000 travels in FRA_TABLE
            0x00,  // res1
            0x00,  // res2
            0x01,  // action = FR_ACT_TO_TBL
            0x00, 0x00, 0x00, 0x00,  // flags = 0
            // FRA_TABLE
            0x08, 0x00, 0x0f, 0x00,  // len = 8, type = FRA_TABLE (15)
            0xe8, 0x03, 0x00, 0x00,  // 1000
            // FRA_PRIORITY
            0x08, 0x00, 0x06, 0x00,  // len = 8, type = FRA_PRIORITY (6)
            0xe8, 0x03, 0x00, 0x00,  // 1000
            // FRA_SRC
            0x08, 0x00, 0x02, 0x00,  // len = 8, type = FRA_SRC (2)
            0x0a, 0x00, 0x00, 0x01,  // 10.0.0.1
            // FRA_PROTOCOL: u8, padded to 4 bytes
            0x05, 0x00, 0x15, 0x00,  // len = 5, type = FRA_PROTOCOL (21)
            0x6e, 0x00, 0x00, 0x00,  // 110 (nicroute) + 3 bytes of padding
        ]
        #expect(bytes == expected)
    }

    @Test("rule add, IPv6, with destination, iif, oif, fwmark/mask, suppress_prefixlength and not")
    func ruleAddIPv6() throws {
        let rule = Rule(
            family: .inet6, priority: 1001, table: 70_000, source: IPPrefix("2001:db8:1::5/128"),
            destination: IPPrefix("2001:db8:2::/64"), inputInterface: "eth0", outputInterface: "vrf-blue",
            firewallMark: 0x10, firewallMask: 0xff, suppressPrefixLength: 0, proto: .nicroute, invert: true)
        let flags = MessageFlags.request | MessageFlags.ack | MessageFlags.create | MessageFlags.exclusive
        let bytes = try RouteCodec.ruleRequest(MessageType.newRule, flags: flags, rule: rule, sequence: 11)
        let expected: [UInt8] = [
            // struct nlmsghdr
            0x90, 0x00, 0x00, 0x00,  // nlmsg_len = 144
            0x20, 0x00,  // nlmsg_type = RTM_NEWRULE (32)
            0x05, 0x06,  // nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
            0x0b, 0x00, 0x00, 0x00,  // nlmsg_seq = 11
            0x00, 0x00, 0x00, 0x00,  // nlmsg_pid = 0
            // struct fib_rule_hdr
            0x0a,  // family = AF_INET6
            0x40,  // dst_len = 64
            0x80,  // src_len = 128
            0x00,  // tos = 0
            0x00,  // table = RT_TABLE_UNSPEC: 70000 travels in FRA_TABLE
            0x00,  // res1
            0x00,  // res2
            0x01,  // action = FR_ACT_TO_TBL
            0x02, 0x00, 0x00, 0x00,  // flags = FIB_RULE_INVERT
            // FRA_TABLE
            0x08, 0x00, 0x0f, 0x00,  // len = 8, type = FRA_TABLE (15)
            0x70, 0x11, 0x01, 0x00,  // 70000
            // FRA_PRIORITY
            0x08, 0x00, 0x06, 0x00,  // len = 8, type = FRA_PRIORITY (6)
            0xe9, 0x03, 0x00, 0x00,  // 1001
            // FRA_SRC
            0x14, 0x00, 0x02, 0x00,  // len = 20, type = FRA_SRC (2)
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0x00, 0x00,  // 2001:db8:1::5
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
            // FRA_DST
            0x14, 0x00, 0x01, 0x00,  // len = 20, type = FRA_DST (1)
            0x20, 0x01, 0x0d, 0xb8, 0x00, 0x02, 0x00, 0x00,  // 2001:db8:2::
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            // FRA_IIFNAME: NUL-terminated string, padded
            0x09, 0x00, 0x03, 0x00,  // len = 9, type = FRA_IIFNAME (3)
            0x65, 0x74, 0x68, 0x30, 0x00, 0x00, 0x00, 0x00,  // "eth0\0" + 3 bytes of padding
            // FRA_OIFNAME
            0x0d, 0x00, 0x11, 0x00,  // len = 13, type = FRA_OIFNAME (17)
            0x76, 0x72, 0x66, 0x2d, 0x62, 0x6c, 0x75, 0x65,  // "vrf-blue"
            0x00, 0x00, 0x00, 0x00,  // "\0" + 3 bytes of padding
            // FRA_FWMARK
            0x08, 0x00, 0x0a, 0x00,  // len = 8, type = FRA_FWMARK (10)
            0x10, 0x00, 0x00, 0x00,  // 0x10
            // FRA_FWMASK
            0x08, 0x00, 0x10, 0x00,  // len = 8, type = FRA_FWMASK (16)
            0xff, 0x00, 0x00, 0x00,  // 0xff
            // FRA_SUPPRESS_PREFIXLEN
            0x08, 0x00, 0x0e, 0x00,  // len = 8, type = FRA_SUPPRESS_PREFIXLEN (14)
            0x00, 0x00, 0x00, 0x00,  // 0
            // FRA_PROTOCOL
            0x05, 0x00, 0x15, 0x00,  // len = 5, type = FRA_PROTOCOL (21)
            0x6e, 0x00, 0x00, 0x00,  // 110 (nicroute) + padding
        ]
        #expect(bytes == expected)
    }

    @Test("rule delete with an unspecified protocol leaves FRA_PROTOCOL out")
    func ruleDeleteWithoutProtocol() throws {
        let rule = Rule(family: .inet, table: RoutingTable.main, proto: .unspecified)
        let bytes = try RouteCodec.ruleRequest(
            MessageType.deleteRule, flags: MessageFlags.request, rule: rule, sequence: 12)
        let expected: [UInt8] = [
            // struct nlmsghdr
            0x24, 0x00, 0x00, 0x00,  // nlmsg_len = 36
            0x21, 0x00,  // nlmsg_type = RTM_DELRULE (33)
            0x01, 0x00,  // nlmsg_flags = NLM_F_REQUEST
            0x0c, 0x00, 0x00, 0x00,  // nlmsg_seq = 12
            0x00, 0x00, 0x00, 0x00,  // nlmsg_pid = 0
            // struct fib_rule_hdr
            0x02, 0x00, 0x00, 0x00,  // family = AF_INET, dst_len = 0, src_len = 0, tos = 0
            0xfe,  // table = RT_TABLE_MAIN
            0x00, 0x00,  // res1, res2
            0x01,  // action = FR_ACT_TO_TBL
            0x00, 0x00, 0x00, 0x00,  // flags = 0
            // FRA_TABLE
            0x08, 0x00, 0x0f, 0x00,  // len = 8, type = FRA_TABLE (15)
            0xfe, 0x00, 0x00, 0x00,  // 254
        ]
        #expect(bytes == expected)
    }

    @Test("route lookup, IPv4, a request arriving on an interface (ip route get DST from SRC iif DEV)")
    func routeLookupIPv4() throws {
        let query = RouteQuery(
            destination: IPAddress("20.20.20.16")!, source: IPAddress("192.0.2.1")!, inputInterface: eth1)
        let bytes = try RouteCodec.routeLookupRequest(query, sequence: 9)
        let expected: [UInt8] = [
            // struct nlmsghdr
            0x34, 0x00, 0x00, 0x00,  // nlmsg_len = 52
            0x1a, 0x00,  // nlmsg_type = RTM_GETROUTE (26)
            0x01, 0x00,  // nlmsg_flags = NLM_F_REQUEST: one answer, no dump, no ack
            0x09, 0x00, 0x00, 0x00,  // nlmsg_seq = 9
            0x00, 0x00, 0x00, 0x00,  // nlmsg_pid = 0
            // struct rtmsg
            0x02,  // rtm_family = AF_INET
            0x20,  // rtm_dst_len = 32
            0x20,  // rtm_src_len = 32
            0x00,  // rtm_tos
            0x00,  // rtm_table
            0x00,  // rtm_protocol
            0x00,  // rtm_scope
            0x00,  // rtm_type
            0x00, 0x10, 0x00, 0x00,  // rtm_flags = RTM_F_LOOKUP_TABLE (0x1000)
            // RTA_DST
            0x08, 0x00, 0x01, 0x00,  // rta_len = 8, rta_type = RTA_DST (1)
            0x14, 0x14, 0x14, 0x10,  // 20.20.20.16
            // RTA_SRC
            0x08, 0x00, 0x02, 0x00,  // rta_len = 8, rta_type = RTA_SRC (2)
            0xc0, 0x00, 0x02, 0x01,  // 192.0.2.1
            // RTA_IIF
            0x08, 0x00, 0x03, 0x00,  // rta_len = 8, rta_type = RTA_IIF (3)
            0x03, 0x00, 0x00, 0x00,  // ifindex 3
        ]
        #expect(bytes == expected)
    }

    @Test("route lookup, IPv6, sent by this host, with oif and mark")
    func routeLookupIPv6() throws {
        let query = RouteQuery(destination: IPAddress("2001:db8::1")!, outputInterface: eth0, mark: 0x42)
        let bytes = try RouteCodec.routeLookupRequest(query, sequence: 10)
        let expected: [UInt8] =
            [
                // struct nlmsghdr
                0x40, 0x00, 0x00, 0x00,  // nlmsg_len = 64
                0x1a, 0x00,  // nlmsg_type = RTM_GETROUTE (26)
                0x01, 0x00,  // nlmsg_flags = NLM_F_REQUEST
                0x0a, 0x00, 0x00, 0x00,  // nlmsg_seq = 10
                0x00, 0x00, 0x00, 0x00,  // nlmsg_pid = 0
                // struct rtmsg
                0x0a,  // rtm_family = AF_INET6
                0x80,  // rtm_dst_len = 128
                0x00,  // rtm_src_len = 0: no source
                0x00, 0x00, 0x00, 0x00, 0x00,  // rtm_tos, rtm_table, rtm_protocol, rtm_scope, rtm_type
                0x00, 0x10, 0x00, 0x00,  // rtm_flags = RTM_F_LOOKUP_TABLE
                // RTA_DST
                0x14, 0x00, 0x01, 0x00,  // rta_len = 20, rta_type = RTA_DST (1)
            ] + IPAddress("2001:db8::1")!.bytes + [
                // RTA_OIF
                0x08, 0x00, 0x04, 0x00,  // rta_len = 8, rta_type = RTA_OIF (4)
                0x02, 0x00, 0x00, 0x00,  // ifindex 2
                // RTA_MARK
                0x08, 0x00, 0x10, 0x00,  // rta_len = 8, rta_type = RTA_MARK (16)
                0x42, 0x00, 0x00, 0x00,  // 0x42
            ]
        #expect(bytes == expected)
    }

    @Test("route lookup with a source of the other family is refused before it is sent")
    func routeLookupMixedFamilies() {
        let query = RouteQuery(destination: IPAddress("192.0.2.1")!, source: IPAddress("2001:db8::1")!)
        #expect(throws: NetlinkEncodingError.self) { try RouteCodec.routeLookupRequest(query, sequence: 1) }
    }

    @Test("neighbour probe (RTM_NEWNEIGH with NTF_USE)")
    func neighborProbe() throws {
        let bytes = try RouteCodec.neighborProbeRequest(
            address: IPAddress("10.0.0.254")!, linkIndex: eth0, sequence: 13)
        let expected: [UInt8] = [
            // struct nlmsghdr
            0x24, 0x00, 0x00, 0x00,  // nlmsg_len = 36
            0x1c, 0x00,  // nlmsg_type = RTM_NEWNEIGH (28)
            0x05, 0x04,  // nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE (0x405)
            0x0d, 0x00, 0x00, 0x00,  // nlmsg_seq = 13
            0x00, 0x00, 0x00, 0x00,  // nlmsg_pid = 0
            // struct ndmsg
            0x02,  // ndm_family = AF_INET
            0x00,  // ndm_pad1
            0x00, 0x00,  // ndm_pad2
            0x02, 0x00, 0x00, 0x00,  // ndm_ifindex = 2
            0x00, 0x00,  // ndm_state = 0
            0x01,  // ndm_flags = NTF_USE
            0x00,  // ndm_type
            // NDA_DST
            0x08, 0x00, 0x01, 0x00,  // len = 8, type = NDA_DST (1)
            0x0a, 0x00, 0x00, 0xfe,  // 10.0.0.254
        ]
        #expect(bytes == expected)
    }

    @Test("neighbour probe, IPv6")
    func neighborProbeIPv6() throws {
        let bytes = try RouteCodec.neighborProbeRequest(address: IPAddress("fe80::1")!, linkIndex: eth1, sequence: 14)
        #expect(bytes.count == 16 + 12 + 20)
        #expect(bytes[16] == 10)  // ndm_family = AF_INET6
        #expect(bytes[20..<24] == [0x03, 0x00, 0x00, 0x00])  // ndm_ifindex = 3
        #expect(bytes[28..<32] == [0x14, 0x00, 0x01, 0x00])  // NDA_DST, 20 bytes
        #expect(Array(bytes[32..<48]) == IPAddress("fe80::1")!.bytes)
    }
}

@Suite("C struct sizes")
struct StructSizeTests {
    @Test func headerSizes() {
        #expect(NetlinkHeader.size == Int(CNL_NLMSGHDR_SIZE))
        #expect(MemoryLayout<nlmsghdr>.size == Int(CNL_NLMSGHDR_SIZE))
        #expect(Int(CNL_NLMSGHDR_SIZE) == 16)
        #expect(MemoryLayout<ifinfomsg>.size == Int(CNL_IFINFOMSG_SIZE))
        #expect(MemoryLayout<ifaddrmsg>.size == Int(CNL_IFADDRMSG_SIZE))
        #expect(MemoryLayout<rtmsg>.size == Int(CNL_RTMSG_SIZE))
        #expect(MemoryLayout<fib_rule_hdr>.size == Int(CNL_FIB_RULE_HDR_SIZE))
        #expect(MemoryLayout<ndmsg>.size == Int(CNL_NDMSG_SIZE))
        #expect(MemoryLayout<rtattr>.size == Int(CNL_RTATTR_SIZE))
        #expect(Int(CNL_RTATTR_SIZE) == 4)
        #expect(MemoryLayout<nlmsgerr>.size == Int(CNL_NLMSGERR_SIZE))
        #expect(Int(CNL_NLMSGERR_SIZE) == 4 + NetlinkHeader.size)
        #expect(MemoryLayout<ifa_cacheinfo>.size == Int(CNL_IFA_CACHEINFO_SIZE))
    }

    /// The fixed struct each dump request writes is exactly the kernel's struct.
    @Test(
        arguments: [
            (MessageType.getLink, CNL_IFINFOMSG_SIZE), (MessageType.getAddress, CNL_IFADDRMSG_SIZE),
            (MessageType.getRoute, CNL_RTMSG_SIZE), (MessageType.getRule, CNL_FIB_RULE_HDR_SIZE),
            (MessageType.getNeighbor, CNL_NDMSG_SIZE),
        ])
    func dumpRequestWritesTheStruct(type: UInt16, size: Int32) {
        let bytes = RouteCodec.dumpRequest(type, family: .inet, sequence: 1)
        #expect(bytes.count == Int(CNL_NLMSGHDR_SIZE) + Int(size))
    }

    /// Requests put their first attribute right after the fixed struct.
    @Test func requestsWriteTheStruct() throws {
        let route = Route(family: .inet, table: 1000, destination: .any(.inet))
        let routeBytes = try RouteCodec.routeRequest(MessageType.newRoute, flags: 0, route: route, sequence: 1)
        #expect(routeBytes.count == Int(CNL_NLMSGHDR_SIZE + CNL_RTMSG_SIZE + CNL_RTATTR_SIZE) + 4)  // RTA_TABLE only

        let rule = Rule(family: .inet, table: 1000, proto: .unspecified)
        let ruleBytes = try RouteCodec.ruleRequest(MessageType.newRule, flags: 0, rule: rule, sequence: 1)
        #expect(ruleBytes.count == Int(CNL_NLMSGHDR_SIZE + CNL_FIB_RULE_HDR_SIZE + CNL_RTATTR_SIZE) + 4)  // FRA_TABLE

        let probe = try RouteCodec.neighborProbeRequest(address: IPAddress(v4: 1), linkIndex: 1, sequence: 1)
        #expect(probe.count == Int(CNL_NLMSGHDR_SIZE + CNL_NDMSG_SIZE + CNL_RTATTR_SIZE) + 4)  // NDA_DST
    }

    /// The decoders accept exactly the kernel's struct with no attributes, and nothing shorter.
    @Test(
        arguments: [
            (MessageType.newLink, CNL_IFINFOMSG_SIZE), (MessageType.newAddress, CNL_IFADDRMSG_SIZE),
            (MessageType.newRoute, CNL_RTMSG_SIZE), (MessageType.newRule, CNL_FIB_RULE_HDR_SIZE),
            (MessageType.newNeighbor, CNL_NDMSG_SIZE),
        ])
    func decodersReadTheStruct(type: UInt16, size: Int32) throws {
        // An AF_UNSPEC header of the right size: decoders that need a family answer nil.
        let full = Fixtures.message(type: type, payload: [UInt8](repeating: 0, count: Int(size)))
        _ = try RouteCodec.decode(try #require(NetlinkMessage.split(full).first))
        for short in 0..<Int(size) {
            let bytes = Fixtures.message(type: type, payload: [UInt8](repeating: 0, count: short))
            let message = try #require(NetlinkMessage.split(bytes).first)
            #expect(throws: NetlinkDecodingError.self, "payload of \(short) bytes") { try RouteCodec.decode(message) }
        }
    }
}
