// The kernel objects nicroute observes and owns, as plain values.
//
// Raw values are the kernel's numbers. The Core never imports the kernel headers; NetlinkTests
// checks every number here against them.

/// Interface flags.
///
/// The corresponding C constants are `IFF_UP`, `IFF_LOOPBACK`, ... from `<net/if.h>`.
public struct LinkFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `IFF_UP`: administratively up.
    public static let up = LinkFlags(rawValue: 0x1)
    /// `IFF_BROADCAST`.
    public static let broadcast = LinkFlags(rawValue: 0x2)
    /// `IFF_LOOPBACK`.
    public static let loopback = LinkFlags(rawValue: 0x8)
    /// `IFF_POINTOPOINT`.
    public static let pointToPoint = LinkFlags(rawValue: 0x10)
    /// `IFF_RUNNING`: operationally up.
    public static let running = LinkFlags(rawValue: 0x40)
    /// `IFF_NOARP`.
    public static let noARP = LinkFlags(rawValue: 0x80)
    /// `IFF_LOWER_UP`: carrier.
    public static let lowerUp = LinkFlags(rawValue: 0x10000)
}

/// RFC 2863 operational state of a link.
///
/// The corresponding C enum is `IF_OPER_*` (`IFLA_OPERSTATE`).
public enum OperationalState: UInt8, Hashable, Sendable, CustomStringConvertible {
    case unknown = 0, notPresent = 1, down = 2, lowerLayerDown = 3, testing = 4, dormant = 5, up = 6
    public var description: String {
        switch self {
        case .unknown: "unknown"
        case .notPresent: "not-present"
        case .down: "down"
        case .lowerLayerDown: "lower-layer-down"
        case .testing: "testing"
        case .dormant: "dormant"
        case .up: "up"
        }
    }
}

/// A network interface (`RTM_NEWLINK`).
public struct Link: Hashable, Sendable {
    /// `ifi_index`.
    public var index: Int32
    /// `IFLA_IFNAME`.
    public var name: String
    /// `IFLA_ADDRESS`, when the link has a hardware address.
    public var mac: MACAddress?
    /// `ifi_flags`.
    public var flags: LinkFlags
    /// `IFLA_OPERSTATE`.
    public var operationalState: OperationalState
    /// `IFLA_MTU`.
    public var mtu: UInt32?
    /// `ifi_type`: the ARPHRD type (1 is Ethernet, 772 loopback).
    public var hardwareType: UInt16
    /// `IFLA_INFO_KIND` inside `IFLA_LINKINFO`: "veth", "bridge", ...; nil for physical devices.
    public var kind: String?

    public init(
        index: Int32, name: String, mac: MACAddress? = nil, flags: LinkFlags = [],
        operationalState: OperationalState = .unknown, mtu: UInt32? = nil, hardwareType: UInt16 = 1,
        kind: String? = nil
    ) {
        self.index = index
        self.name = name
        self.mac = mac
        self.flags = flags
        self.operationalState = operationalState
        self.mtu = mtu
        self.hardwareType = hardwareType
        self.kind = kind
    }

    /// `ARPHRD_ETHER`.
    public static let etherType: UInt16 = 1
    public var isUp: Bool { flags.contains(.up) }
}

/// Address flags.
///
/// The corresponding C constants are `IFA_F_*` (`ifa_flags` and `IFA_FLAGS`).
public struct AddressFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `IFA_F_SECONDARY`.
    public static let secondary = AddressFlags(rawValue: 0x01)
    /// `IFA_F_NODAD`.
    public static let noDAD = AddressFlags(rawValue: 0x02)
    /// `IFA_F_OPTIMISTIC`.
    public static let optimistic = AddressFlags(rawValue: 0x04)
    /// `IFA_F_DADFAILED`.
    public static let dadFailed = AddressFlags(rawValue: 0x08)
    /// `IFA_F_DEPRECATED`.
    public static let deprecated = AddressFlags(rawValue: 0x20)
    /// `IFA_F_TENTATIVE`.
    public static let tentative = AddressFlags(rawValue: 0x40)
    /// `IFA_F_PERMANENT`.
    public static let permanent = AddressFlags(rawValue: 0x80)
    /// `IFA_F_NOPREFIXROUTE`.
    public static let noPrefixRoute = AddressFlags(rawValue: 0x200)
}

/// Scope of an address or route.
///
/// The corresponding C constants are `RT_SCOPE_*`.
public struct Scope: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// `RT_SCOPE_UNIVERSE`.
    public static let universe = Scope(rawValue: 0)
    /// `RT_SCOPE_SITE`.
    public static let site = Scope(rawValue: 200)
    /// `RT_SCOPE_LINK`.
    public static let link = Scope(rawValue: 253)
    /// `RT_SCOPE_HOST`.
    public static let host = Scope(rawValue: 254)
    /// `RT_SCOPE_NOWHERE`.
    public static let nowhere = Scope(rawValue: 255)
    public var description: String {
        switch rawValue {
        case 0: "global"
        case 200: "site"
        case 253: "link"
        case 254: "host"
        case 255: "nowhere"
        default: String(rawValue)
        }
    }
}

/// An address on an interface (`RTM_NEWADDR`).
public struct InterfaceAddress: Hashable, Sendable {
    /// `ifa_index`.
    public var linkIndex: Int32
    /// The local address: `IFA_LOCAL` when present (IPv4), else `IFA_ADDRESS`.
    public var address: IPAddress
    /// `ifa_prefixlen`.
    public var prefixLength: UInt8
    /// The peer of a point-to-point address (`IFA_ADDRESS` when it differs from `IFA_LOCAL`).
    public var peer: IPAddress?
    /// `ifa_scope`.
    public var scope: Scope
    /// `IFA_FLAGS` (or `ifa_flags` when the attribute is absent).
    public var flags: AddressFlags
    /// `IFA_LABEL` (IPv4 only).
    public var label: String?

    public init(
        linkIndex: Int32, address: IPAddress, prefixLength: UInt8, peer: IPAddress? = nil,
        scope: Scope = .universe, flags: AddressFlags = [], label: String? = nil
    ) {
        self.linkIndex = linkIndex
        self.address = address
        self.prefixLength = prefixLength
        self.peer = peer
        self.scope = scope
        self.flags = flags
        self.label = label
    }

    public var family: AddressFamily { address.family }
    /// The address with its prefix length, e.g. `10.0.0.5/24`.
    public var prefix: IPPrefix { IPPrefix(address, length: min(prefixLength, family.bitWidth))! }
    /// The connected subnet, e.g. `10.0.0.0/24`.
    public var subnet: IPPrefix { prefix.network }
}

/// Routing protocol (who installed a route or rule).
///
/// The corresponding C constants are `RTPROT_*` (`rtm_protocol`, `FRA_PROTOCOL`).
public struct RouteProtocol: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// `RTPROT_UNSPEC`.
    public static let unspecified = RouteProtocol(rawValue: 0)
    /// `RTPROT_REDIRECT`.
    public static let redirect = RouteProtocol(rawValue: 1)
    /// `RTPROT_KERNEL`: routes the kernel made for an address.
    public static let kernel = RouteProtocol(rawValue: 2)
    /// `RTPROT_BOOT`: the default for `ip route add`.
    public static let boot = RouteProtocol(rawValue: 3)
    /// `RTPROT_STATIC`.
    public static let `static` = RouteProtocol(rawValue: 4)
    /// `RTPROT_RA`: IPv6 router advertisement.
    public static let ra = RouteProtocol(rawValue: 9)
    /// `RTPROT_DHCP`.
    public static let dhcp = RouteProtocol(rawValue: 16)
    /// nicroute's own number, registered for `ip` in `/etc/iproute2/rt_protos.d/nicroute.conf`.
    /// nicroute only ever deletes objects that carry it.
    public static let nicroute = RouteProtocol(rawValue: 110)

    public var description: String {
        switch rawValue {
        case 0: "unspec"
        case 1: "redirect"
        case 2: "kernel"
        case 3: "boot"
        case 4: "static"
        case 9: "ra"
        case 16: "dhcp"
        case 110: "nicroute"
        default: String(rawValue)
        }
    }
}

/// Route type.
///
/// The corresponding C constants are `RTN_*` (`rtm_type`).
public struct RouteType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// `RTN_UNICAST`.
    public static let unicast = RouteType(rawValue: 1)
    /// `RTN_LOCAL`.
    public static let local = RouteType(rawValue: 2)
    /// `RTN_BROADCAST`.
    public static let broadcast = RouteType(rawValue: 3)
    /// `RTN_MULTICAST`.
    public static let multicast = RouteType(rawValue: 5)
    /// `RTN_BLACKHOLE`.
    public static let blackhole = RouteType(rawValue: 6)
    /// `RTN_UNREACHABLE`.
    public static let unreachable = RouteType(rawValue: 7)
    /// `RTN_PROHIBIT`.
    public static let prohibit = RouteType(rawValue: 8)
    public var description: String {
        switch rawValue {
        case 1: "unicast"
        case 2: "local"
        case 3: "broadcast"
        case 5: "multicast"
        case 6: "blackhole"
        case 7: "unreachable"
        case 8: "prohibit"
        default: String(rawValue)
        }
    }
}

/// Well-known routing table ids.
///
/// The corresponding C constants are `RT_TABLE_*`. Ids are `UInt32`: ids of 256 and above
/// travel only in `RTA_TABLE`/`FRA_TABLE`.
public enum RoutingTable {
    /// `RT_TABLE_UNSPEC`.
    public static let unspecified: UInt32 = 0
    /// `RT_TABLE_DEFAULT`.
    public static let `default`: UInt32 = 253
    /// `RT_TABLE_MAIN`.
    public static let main: UInt32 = 254
    /// `RT_TABLE_LOCAL`.
    public static let local: UInt32 = 255
}

/// One path of a multipath route: a `struct rtnexthop` in `RTA_MULTIPATH` and its attributes.
///
/// `ip route` prints each as `nexthop via GATEWAY dev NAME weight W`.
public struct NextHop: Hashable, Sendable {
    /// `RTA_GATEWAY` (or `RTA_VIA`, whose family may differ from the route's) inside the nexthop.
    public var gateway: IPAddress?
    /// `rtnh_ifindex`.
    public var outputInterface: Int32
    /// `rtnh_hops` + 1: the path's share of the flows (1...256), as `ip route` prints it.
    public var weight: UInt16
    /// `rtnh_flags` (`RTNH_F_ONLINK` = 4; the kernel adds state flags such as `RTNH_F_LINKDOWN`).
    public var flags: UInt8

    public init(gateway: IPAddress? = nil, outputInterface: Int32, weight: UInt16 = 1, flags: UInt8 = 0) {
        self.gateway = gateway
        self.outputInterface = outputInterface
        self.weight = weight
        self.flags = flags
    }

    /// The flags that describe the path (`RTNH_F_ONLINK`), without the kernel's state flags.
    public var configuredFlags: UInt8 { flags & UInt8(Route.onlinkFlag) }

    /// True when `other` is the same path as far as a reconcile is concerned.
    public func matches(_ other: NextHop) -> Bool {
        gateway == other.gateway && outputInterface == other.outputInterface && weight == other.weight
            && configuredFlags == other.configuredFlags
    }
}

/// A route (`RTM_NEWROUTE`).
public struct Route: Hashable, Sendable {
    public var family: AddressFamily
    /// `RTA_TABLE` (or `rtm_table`).
    public var table: UInt32
    /// `RTA_DST` with `rtm_dst_len`; the zero-length prefix for a default route.
    public var destination: IPPrefix
    /// `RTA_SRC` with `rtm_src_len` (IPv6 source-specific routes).
    public var source: IPPrefix?
    /// `rtm_tos`.
    public var tos: UInt8
    /// `rtm_protocol`.
    public var proto: RouteProtocol
    /// `rtm_scope`.
    public var scope: Scope
    /// `rtm_type`.
    public var type: RouteType
    /// `rtm_flags` (`RTNH_F_ONLINK` = 4).
    public var flags: UInt32
    /// `RTA_GATEWAY`.
    public var gateway: IPAddress?
    /// `RTA_OIF`.
    public var outputInterface: Int32?
    /// `RTA_PREFSRC`.
    public var preferredSource: IPAddress?
    /// `RTA_PRIORITY`: the metric.
    public var metric: UInt32?
    /// `RTA_MULTIPATH`: the paths of a multipath route (empty for a route with one path, whose
    /// next hop is `gateway` and `outputInterface`). The kernel reports an IPv4 or IPv6 ECMP
    /// route as one route with all its paths here, in dumps and in most notifications.
    public var nextHops: [NextHop] = []

    /// `RTNH_F_ONLINK`: the gateway is on the link even if no subnet says so.
    public static let onlinkFlag: UInt32 = 4

    public init(
        family: AddressFamily, table: UInt32, destination: IPPrefix, source: IPPrefix? = nil, tos: UInt8 = 0,
        proto: RouteProtocol = .boot, scope: Scope = .universe, type: RouteType = .unicast, flags: UInt32 = 0,
        gateway: IPAddress? = nil, outputInterface: Int32? = nil, preferredSource: IPAddress? = nil,
        metric: UInt32? = nil, nextHops: [NextHop] = []
    ) {
        self.family = family
        self.table = table
        self.nextHops = nextHops
        self.destination = destination
        self.source = source
        self.tos = tos
        self.proto = proto
        self.scope = scope
        self.type = type
        self.flags = flags
        self.gateway = gateway
        self.outputInterface = outputInterface
        self.preferredSource = preferredSource
        self.metric = metric
    }

    /// What the kernel uses to tell two routes apart (its lookup key): a second route with the
    /// same key is "File exists" on add, and `replace` acts on it.
    public struct Key: Hashable, Sendable, Comparable {
        public var family: AddressFamily
        public var table: UInt32
        public var destination: IPPrefix
        public var source: IPPrefix?
        public var tos: UInt8
        public var metric: UInt32

        public static func < (a: Key, b: Key) -> Bool {
            if a.family != b.family { return a.family.rawValue < b.family.rawValue }
            if a.table != b.table { return a.table < b.table }
            if a.destination != b.destination { return a.destination < b.destination }
            if a.source != b.source {
                // No source (any) first, as `==` tells them apart.
                guard let x = a.source else { return true }
                guard let y = b.source else { return false }
                return x < y
            }
            if a.metric != b.metric { return a.metric < b.metric }
            return a.tos < b.tos
        }

        /// The fields that tell routes apart in practice (see `IPPrefix.hash(into:)`): `source`
        /// and `tos` are almost always unset, and a subset of the fields `==` compares is enough.
        public func hash(into hasher: inout Hasher) {
            destination.hash(into: &hasher)
            hasher.combine(UInt64(table) << 32 | UInt64(metric))
        }
    }

    /// The kernel's default metric when none is given: 0 for IPv4, 1024 for IPv6.
    public var effectiveMetric: UInt32 { metric ?? (family == .inet ? 0 : 1024) }

    public var key: Key {
        Key(family: family, table: table, destination: destination, source: source, tos: tos, metric: effectiveMetric)
    }

    /// The flags that describe the route (the kernel adds state flags such as `RTNH_F_LINKDOWN`).
    public var configuredFlags: UInt32 { flags & Route.onlinkFlag }

    /// True when `other` is the same route as far as a reconcile is concerned: same key and the
    /// same next hops (in any order: the kernel keeps IPv6 siblings in the order they came),
    /// source, scope, type and protocol.
    public func matches(_ other: Route) -> Bool {
        key == other.key && gateway == other.gateway && outputInterface == other.outputInterface
            && preferredSource == other.preferredSource && scope == other.scope && type == other.type
            && proto == other.proto && configuredFlags == other.configuredFlags
            && nextHops.count == other.nextHops.count
            && nextHops.allSatisfy { hop in other.nextHops.contains(where: hop.matches) }
            && other.nextHops.allSatisfy { hop in nextHops.contains(where: hop.matches) }
    }

    /// The route's paths: its next hops, or the one path of `gateway` and `outputInterface`
    /// (none for a route without an interface, such as a blackhole).
    public var paths: [NextHop] {
        if !nextHops.isEmpty { return nextHops }
        guard let oif = outputInterface else { return [] }
        return [NextHop(gateway: gateway, outputInterface: oif, flags: UInt8(truncatingIfNeeded: configuredFlags))]
    }

    /// The route restricted to the paths `keep` accepts: a one-path route when one is left (its
    /// flags carry the path's `RTNH_F_ONLINK`), a multipath route when several are; nil when none.
    public func restricted(to keep: (NextHop) -> Bool) -> Route? {
        let kept = paths.filter(keep)
        guard let first = kept.first else { return nil }
        var r = self
        if kept.count == 1 {
            r.nextHops = []
            r.gateway = first.gateway
            r.outputInterface = first.outputInterface
            r.flags = (r.flags & ~Route.onlinkFlag) | UInt32(first.configuredFlags)
        } else {
            r.nextHops = kept
            r.gateway = nil
            r.outputInterface = nil
            r.flags &= ~Route.onlinkFlag
        }
        return r
    }
}

/// A rule's action.
///
/// The corresponding C constants are `FR_ACT_*` (`fib_rule_hdr.action`).
public struct RuleAction: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// `FR_ACT_TO_TBL`: look up a table.
    public static let toTable = RuleAction(rawValue: 1)
    /// `FR_ACT_GOTO`.
    public static let goto = RuleAction(rawValue: 2)
    /// `FR_ACT_NOP`.
    public static let nop = RuleAction(rawValue: 3)
    /// `FR_ACT_BLACKHOLE`.
    public static let blackhole = RuleAction(rawValue: 6)
    /// `FR_ACT_UNREACHABLE`.
    public static let unreachable = RuleAction(rawValue: 7)
    /// `FR_ACT_PROHIBIT`.
    public static let prohibit = RuleAction(rawValue: 8)
    public var description: String {
        switch rawValue {
        case 1: "lookup"
        case 2: "goto"
        case 3: "nop"
        case 6: "blackhole"
        case 7: "unreachable"
        case 8: "prohibit"
        default: String(rawValue)
        }
    }
}

/// A routing policy rule (`RTM_NEWRULE`).
public struct Rule: Hashable, Sendable {
    public var family: AddressFamily
    /// `FRA_PRIORITY`.
    public var priority: UInt32?
    /// `FRA_TABLE` (or `fib_rule_hdr.table`).
    public var table: UInt32
    /// `FRA_SRC` with `src_len`.
    public var source: IPPrefix?
    /// `FRA_DST` with `dst_len`.
    public var destination: IPPrefix?
    /// `FRA_IIFNAME`.
    public var inputInterface: String?
    /// `FRA_OIFNAME`.
    public var outputInterface: String?
    /// `FRA_FWMARK`.
    public var firewallMark: UInt32?
    /// `FRA_FWMASK`.
    public var firewallMask: UInt32?
    /// `FRA_SUPPRESS_PREFIXLEN`.
    public var suppressPrefixLength: UInt32?
    /// `FRA_PROTOCOL`.
    public var proto: RouteProtocol
    /// `fib_rule_hdr.action`.
    public var action: RuleAction
    /// `fib_rule_hdr.tos`.
    public var tos: UInt8
    /// `FIB_RULE_INVERT` in `fib_rule_hdr.flags`: the `not` keyword.
    public var invert: Bool

    public init(
        family: AddressFamily, priority: UInt32? = nil, table: UInt32, source: IPPrefix? = nil,
        destination: IPPrefix? = nil, inputInterface: String? = nil, outputInterface: String? = nil,
        firewallMark: UInt32? = nil, firewallMask: UInt32? = nil, suppressPrefixLength: UInt32? = nil,
        proto: RouteProtocol = .boot, action: RuleAction = .toTable, tos: UInt8 = 0, invert: Bool = false
    ) {
        self.family = family
        self.priority = priority
        self.table = table
        self.source = source
        self.destination = destination
        self.inputInterface = inputInterface
        self.outputInterface = outputInterface
        self.firewallMark = firewallMark
        self.firewallMask = firewallMask
        self.suppressPrefixLength = suppressPrefixLength
        self.proto = proto
        self.action = action
        self.tos = tos
        self.invert = invert
    }

    /// Hashes the fields that tell nicroute's rules apart (its source rules differ by `source`,
    /// its fwmark rules by `firewallMark`), a subset of the fields `==` compares: the synthesized
    /// hash, field by field with strings, was a tenth of a no-op pass at 80 x 50 (4,000 rules).
    public func hash(into hasher: inout Hasher) {
        hasher.combine(UInt64(table) << 32 | UInt64(priority ?? 0))
        hasher.combine(UInt64(firewallMark ?? 0) << 32 | UInt64(family.rawValue))
        if let source { source.hash(into: &hasher) }
    }

    /// The kernel default rules (priorities 0, 32766, 32767: local, main, default), which
    /// nicroute never touches.
    public var isKernelDefault: Bool {
        guard source == nil, destination == nil, inputInterface == nil, outputInterface == nil,
            firewallMark == nil, action == .toTable
        else { return false }
        switch (priority ?? 0, table) {
        case (0, RoutingTable.local), (32766, RoutingTable.main), (32767, RoutingTable.default): return true
        default: return false
        }
    }
}

/// Neighbour cache states.
///
/// The corresponding C constants are `NUD_*` (`ndm_state`).
public struct NeighborState: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }
    public static let incomplete = NeighborState(rawValue: 0x01)
    public static let reachable = NeighborState(rawValue: 0x02)
    public static let stale = NeighborState(rawValue: 0x04)
    public static let delay = NeighborState(rawValue: 0x08)
    public static let probe = NeighborState(rawValue: 0x10)
    public static let failed = NeighborState(rawValue: 0x20)
    public static let noARP = NeighborState(rawValue: 0x40)
    public static let permanent = NeighborState(rawValue: 0x80)

    /// True when the neighbour answered (or was configured): reachable, stale, delay, probe,
    /// permanent or noarp.
    public var hasAnswered: Bool {
        !intersection([.reachable, .stale, .delay, .probe, .permanent, .noARP]).isEmpty
    }
}

/// A neighbour (ARP/ND) cache entry (`RTM_NEWNEIGH`).
public struct Neighbor: Hashable, Sendable {
    /// `ndm_ifindex`.
    public var linkIndex: Int32
    /// `NDA_DST`.
    public var address: IPAddress
    /// `NDA_LLADDR`.
    public var linkLayerAddress: MACAddress?
    /// `ndm_state`.
    public var state: NeighborState

    public init(linkIndex: Int32, address: IPAddress, linkLayerAddress: MACAddress? = nil, state: NeighborState) {
        self.linkIndex = linkIndex
        self.address = address
        self.linkLayerAddress = linkLayerAddress
        self.state = state
    }
}
