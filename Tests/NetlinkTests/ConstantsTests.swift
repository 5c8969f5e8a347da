import CNetlink
import NicrouteCore
import Testing

@testable import Netlink

#if canImport(Glibc)
import Glibc
#endif

// NicrouteCore retypes the kernel's numbers (it must not import kernel headers); every one of
// them is checked here against the headers, through CNetlink and Glibc.

/// One of our raw values next to the kernel constant it stands for.
struct Constant: CustomTestStringConvertible, Sendable {
    var name: String
    var ours: UInt64
    var kernel: UInt64

    init(_ name: String, _ ours: some BinaryInteger, _ kernel: some BinaryInteger) {
        self.name = name
        self.ours = UInt64(ours)
        self.kernel = UInt64(kernel)
    }

    var testDescription: String { name }
}

@Suite("Raw values match the kernel headers")
struct ConstantsTests {
    @Test(
        "LinkFlags",
        arguments: [
            Constant("IFF_UP", LinkFlags.up.rawValue, IFF_UP),
            Constant("IFF_BROADCAST", LinkFlags.broadcast.rawValue, IFF_BROADCAST),
            Constant("IFF_LOOPBACK", LinkFlags.loopback.rawValue, IFF_LOOPBACK),
            Constant("IFF_POINTOPOINT", LinkFlags.pointToPoint.rawValue, IFF_POINTOPOINT),
            Constant("IFF_RUNNING", LinkFlags.running.rawValue, IFF_RUNNING),
            Constant("IFF_NOARP", LinkFlags.noARP.rawValue, IFF_NOARP),
            // IFF_LOWER_UP is only in <linux/if.h>, which collides with Glibc's <net/if.h> and so
            // is not imported; its value is 1 << 16 there. The real-kernel link test checks it
            // against the flags the kernel reports (`ip link`'s LOWER_UP).
            Constant("IFF_LOWER_UP", LinkFlags.lowerUp.rawValue, 1 << 16),
        ])
    func linkFlags(_ c: Constant) { #expect(c.ours == c.kernel) }

    @Test(
        "AddressFlags",
        arguments: [
            Constant("IFA_F_SECONDARY", AddressFlags.secondary.rawValue, IFA_F_SECONDARY),
            Constant("IFA_F_NODAD", AddressFlags.noDAD.rawValue, IFA_F_NODAD),
            Constant("IFA_F_OPTIMISTIC", AddressFlags.optimistic.rawValue, IFA_F_OPTIMISTIC),
            Constant("IFA_F_DADFAILED", AddressFlags.dadFailed.rawValue, IFA_F_DADFAILED),
            Constant("IFA_F_DEPRECATED", AddressFlags.deprecated.rawValue, IFA_F_DEPRECATED),
            Constant("IFA_F_TENTATIVE", AddressFlags.tentative.rawValue, IFA_F_TENTATIVE),
            Constant("IFA_F_PERMANENT", AddressFlags.permanent.rawValue, IFA_F_PERMANENT),
            Constant("IFA_F_NOPREFIXROUTE", AddressFlags.noPrefixRoute.rawValue, IFA_F_NOPREFIXROUTE),
        ])
    func addressFlags(_ c: Constant) { #expect(c.ours == c.kernel) }

    @Test(
        "Scope",
        arguments: [
            Constant("RT_SCOPE_UNIVERSE", Scope.universe.rawValue, RT_SCOPE_UNIVERSE.rawValue),
            Constant("RT_SCOPE_SITE", Scope.site.rawValue, RT_SCOPE_SITE.rawValue),
            Constant("RT_SCOPE_LINK", Scope.link.rawValue, RT_SCOPE_LINK.rawValue),
            Constant("RT_SCOPE_HOST", Scope.host.rawValue, RT_SCOPE_HOST.rawValue),
            Constant("RT_SCOPE_NOWHERE", Scope.nowhere.rawValue, RT_SCOPE_NOWHERE.rawValue),
        ])
    func scope(_ c: Constant) { #expect(c.ours == c.kernel) }

    @Test(
        "RouteProtocol",
        arguments: [
            Constant("RTPROT_UNSPEC", RouteProtocol.unspecified.rawValue, RTPROT_UNSPEC),
            Constant("RTPROT_REDIRECT", RouteProtocol.redirect.rawValue, RTPROT_REDIRECT),
            Constant("RTPROT_KERNEL", RouteProtocol.kernel.rawValue, RTPROT_KERNEL),
            Constant("RTPROT_BOOT", RouteProtocol.boot.rawValue, RTPROT_BOOT),
            Constant("RTPROT_STATIC", RouteProtocol.static.rawValue, RTPROT_STATIC),
            Constant("RTPROT_RA", RouteProtocol.ra.rawValue, RTPROT_RA),
            Constant("RTPROT_DHCP", RouteProtocol.dhcp.rawValue, RTPROT_DHCP),
        ])
    func routeProtocol(_ c: Constant) { #expect(c.ours == c.kernel) }

    /// nicroute's own protocol number is not one the kernel headers assign to someone else.
    @Test func nicrouteProtocolIsFree() {
        let assigned: [Int32] = [
            RTPROT_UNSPEC, RTPROT_REDIRECT, RTPROT_KERNEL, RTPROT_BOOT, RTPROT_STATIC, RTPROT_GATED, RTPROT_RA,
            RTPROT_MRT, RTPROT_ZEBRA, RTPROT_BIRD, RTPROT_DNROUTED, RTPROT_XORP, RTPROT_NTK, RTPROT_DHCP,
            RTPROT_MROUTED, RTPROT_KEEPALIVED, RTPROT_BABEL, RTPROT_OPENR, RTPROT_BGP, RTPROT_ISIS, RTPROT_OSPF,
            RTPROT_RIP, RTPROT_EIGRP,
        ]
        #expect(RouteProtocol.nicroute.rawValue == 110)
        #expect(!assigned.contains(Int32(RouteProtocol.nicroute.rawValue)))
    }

    @Test(
        "RouteType",
        arguments: [
            Constant("RTN_UNICAST", RouteType.unicast.rawValue, RTN_UNICAST),
            Constant("RTN_LOCAL", RouteType.local.rawValue, RTN_LOCAL),
            Constant("RTN_BROADCAST", RouteType.broadcast.rawValue, RTN_BROADCAST),
            Constant("RTN_MULTICAST", RouteType.multicast.rawValue, RTN_MULTICAST),
            Constant("RTN_BLACKHOLE", RouteType.blackhole.rawValue, RTN_BLACKHOLE),
            Constant("RTN_UNREACHABLE", RouteType.unreachable.rawValue, RTN_UNREACHABLE),
            Constant("RTN_PROHIBIT", RouteType.prohibit.rawValue, RTN_PROHIBIT),
        ])
    func routeType(_ c: Constant) { #expect(c.ours == c.kernel) }

    @Test(
        "RuleAction",
        arguments: [
            Constant("FR_ACT_TO_TBL", RuleAction.toTable.rawValue, FR_ACT_TO_TBL),
            Constant("FR_ACT_GOTO", RuleAction.goto.rawValue, FR_ACT_GOTO),
            Constant("FR_ACT_NOP", RuleAction.nop.rawValue, FR_ACT_NOP),
            Constant("FR_ACT_BLACKHOLE", RuleAction.blackhole.rawValue, FR_ACT_BLACKHOLE),
            Constant("FR_ACT_UNREACHABLE", RuleAction.unreachable.rawValue, FR_ACT_UNREACHABLE),
            Constant("FR_ACT_PROHIBIT", RuleAction.prohibit.rawValue, FR_ACT_PROHIBIT),
        ])
    func ruleAction(_ c: Constant) { #expect(c.ours == c.kernel) }

    @Test(
        "NeighborState",
        arguments: [
            Constant("NUD_INCOMPLETE", NeighborState.incomplete.rawValue, NUD_INCOMPLETE),
            Constant("NUD_REACHABLE", NeighborState.reachable.rawValue, NUD_REACHABLE),
            Constant("NUD_STALE", NeighborState.stale.rawValue, NUD_STALE),
            Constant("NUD_DELAY", NeighborState.delay.rawValue, NUD_DELAY),
            Constant("NUD_PROBE", NeighborState.probe.rawValue, NUD_PROBE),
            Constant("NUD_FAILED", NeighborState.failed.rawValue, NUD_FAILED),
            Constant("NUD_NOARP", NeighborState.noARP.rawValue, NUD_NOARP),
            Constant("NUD_PERMANENT", NeighborState.permanent.rawValue, NUD_PERMANENT),
        ])
    func neighborState(_ c: Constant) { #expect(c.ours == c.kernel) }

    @Test(
        "RoutingTable",
        arguments: [
            Constant("RT_TABLE_UNSPEC", RoutingTable.unspecified, RT_TABLE_UNSPEC.rawValue),
            Constant("RT_TABLE_DEFAULT", RoutingTable.default, RT_TABLE_DEFAULT.rawValue),
            Constant("RT_TABLE_MAIN", RoutingTable.main, RT_TABLE_MAIN.rawValue),
            Constant("RT_TABLE_LOCAL", RoutingTable.local, RT_TABLE_LOCAL.rawValue),
        ])
    func routingTable(_ c: Constant) { #expect(c.ours == c.kernel) }

    @Test(
        "AddressFamily, Route.onlinkFlag",
        arguments: [
            Constant("AF_INET", AddressFamily.inet.rawValue, AF_INET),
            Constant("AF_INET6", AddressFamily.inet6.rawValue, AF_INET6),
            Constant("RTNH_F_ONLINK", Route.onlinkFlag, RTNH_F_ONLINK),
        ])
    func miscellaneous(_ c: Constant) { #expect(c.ours == c.kernel) }

    @Test(
        "MulticastGroup",
        arguments: [
            Constant("RTNLGRP_LINK", MulticastGroup.link.rawValue, RTNLGRP_LINK.rawValue),
            Constant("RTNLGRP_NEIGH", MulticastGroup.neighbor.rawValue, RTNLGRP_NEIGH.rawValue),
            Constant("RTNLGRP_IPV4_IFADDR", MulticastGroup.ipv4Address.rawValue, RTNLGRP_IPV4_IFADDR.rawValue),
            Constant("RTNLGRP_IPV4_ROUTE", MulticastGroup.ipv4Route.rawValue, RTNLGRP_IPV4_ROUTE.rawValue),
            Constant("RTNLGRP_IPV4_RULE", MulticastGroup.ipv4Rule.rawValue, RTNLGRP_IPV4_RULE.rawValue),
            Constant("RTNLGRP_IPV6_IFADDR", MulticastGroup.ipv6Address.rawValue, RTNLGRP_IPV6_IFADDR.rawValue),
            Constant("RTNLGRP_IPV6_ROUTE", MulticastGroup.ipv6Route.rawValue, RTNLGRP_IPV6_ROUTE.rawValue),
            Constant("RTNLGRP_IPV6_RULE", MulticastGroup.ipv6Rule.rawValue, RTNLGRP_IPV6_RULE.rawValue),
        ])
    func multicastGroup(_ c: Constant) { #expect(c.ours == c.kernel) }

    @Test("MulticastGroup lists every case once")
    func multicastGroupCases() {
        #expect(MulticastGroup.allCases.count == 8)
        #expect(Set(MulticastGroup.routing).count == MulticastGroup.routing.count)
    }

    @Test(
        "Codec internals",
        arguments: [
            Constant("NLA_F_NESTED", MessageWriter.nestedFlag, NLA_F_NESTED),
            Constant("NLA_TYPE_MASK", Attributes.typeMask, ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff),
            Constant("NTF_USE", RouteCodec.neighborUseFlag, NTF_USE),
            Constant("FIB_RULE_INVERT", RouteCodec.ruleInvertFlag, FIB_RULE_INVERT),
            Constant("sizeof(struct nlmsghdr)", NetlinkHeader.size, CNL_NLMSGHDR_SIZE),
        ])
    func codecInternals(_ c: Constant) { #expect(c.ours == c.kernel) }
}

/// An interrupted dump (NLM_F_DUMP_INTR) is retried at once a few times, then, for one-shot
/// commands, with pauses that grow to 20 ms: about a second in all before the caller hears of it
/// (a storm of changes must leave a gap to be read in, and `nicroutectl status` must not fail at
/// the first burst). The daemon's loop never sleeps: a few attempts at once, then its machine
/// tries again shortly.
@Test func interruptedDumpsAreRetriedForAboutASecondOrAtOnce() {
    let patient = (0..<RouteNetlink.DumpRetry.patient.attempts).map(RouteNetlink.DumpRetry.patient.delayMs)
    #expect(patient.prefix(8) == [0, 0, 0, 1, 2, 4, 8, 16])
    #expect(patient.max() == 20)
    #expect((900...1500).contains(patient.reduce(0, +)))
    let immediate = (0..<RouteNetlink.DumpRetry.immediate.attempts).map(RouteNetlink.DumpRetry.immediate.delayMs)
    #expect(immediate.count == 8 && immediate.allSatisfy { $0 == 0 })
}
