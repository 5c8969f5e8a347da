import CNetlink
import NicrouteCore

/// Message types of rtnetlink.
///
/// The corresponding C constants are `RTM_*` and `NLMSG_*`.
public enum MessageType {
    public static let noop = UInt16(NLMSG_NOOP)
    public static let error = UInt16(NLMSG_ERROR)
    public static let done = UInt16(NLMSG_DONE)
    public static let overrun = UInt16(NLMSG_OVERRUN)
    public static let newLink = UInt16(RTM_NEWLINK)
    public static let deleteLink = UInt16(RTM_DELLINK)
    public static let getLink = UInt16(RTM_GETLINK)
    public static let newAddress = UInt16(RTM_NEWADDR)
    public static let deleteAddress = UInt16(RTM_DELADDR)
    public static let getAddress = UInt16(RTM_GETADDR)
    public static let newRoute = UInt16(RTM_NEWROUTE)
    public static let deleteRoute = UInt16(RTM_DELROUTE)
    public static let getRoute = UInt16(RTM_GETROUTE)
    public static let newNeighbor = UInt16(RTM_NEWNEIGH)
    public static let deleteNeighbor = UInt16(RTM_DELNEIGH)
    public static let getNeighbor = UInt16(RTM_GETNEIGH)
    public static let newRule = UInt16(RTM_NEWRULE)
    public static let deleteRule = UInt16(RTM_DELRULE)
    public static let getRule = UInt16(RTM_GETRULE)
}

/// `nlmsg_flags`.
///
/// The corresponding C constants are `NLM_F_*`.
public enum MessageFlags {
    public static let request = UInt16(NLM_F_REQUEST)
    public static let multi = UInt16(NLM_F_MULTI)
    public static let ack = UInt16(NLM_F_ACK)
    public static let dumpInterrupted = UInt16(NLM_F_DUMP_INTR)
    public static let dump = UInt16(NLM_F_DUMP)
    public static let replace = UInt16(NLM_F_REPLACE)
    public static let exclusive = UInt16(NLM_F_EXCL)
    public static let create = UInt16(NLM_F_CREATE)
    /// In an error message: the original payload was left out.
    public static let capped = UInt16(NLM_F_CAPPED)
    /// In an error message: extended-ack TLVs follow.
    public static let ackTLVs = UInt16(NLM_F_ACK_TLVS)
}

/// One decoded rtnetlink object.
public enum RouteObject: Hashable, Sendable {
    case link(Link)
    case address(InterfaceAddress)
    case route(Route)
    case rule(Rule)
    case neighbor(Neighbor)
}

/// One route lookup: where would the kernel send a packet to `destination`?
///
/// The fields are the selectors of `ip route get`.
public struct RouteQuery: Hashable, Sendable {
    /// `RTA_DST`: the packet's destination.
    public var destination: IPAddress
    /// `RTA_SRC`: its source address (a local one, unless it arrives on `inputInterface`).
    public var source: IPAddress?
    /// `RTA_IIF`: the interface it arrives on; nil for a packet this host sends.
    public var inputInterface: Int32?
    /// `RTA_OIF`: the interface it must leave through.
    public var outputInterface: Int32?
    /// `RTA_MARK`: its firewall mark.
    public var mark: UInt32?

    public init(
        destination: IPAddress, source: IPAddress? = nil, inputInterface: Int32? = nil, outputInterface: Int32? = nil,
        mark: UInt32? = nil
    ) {
        self.destination = destination
        self.source = source
        self.inputInterface = inputInterface
        self.outputInterface = outputInterface
        self.mark = mark
    }
}

@inline(__always) private func t<T: BinaryInteger>(_ v: T) -> UInt16 { UInt16(truncatingIfNeeded: v) }

/// Encoding and decoding of the rtnetlink messages nicroute uses: links, addresses, routes,
/// rules and neighbours, for IPv4 and IPv6.
public enum RouteCodec {
    /// `NTF_USE`: asks the kernel to resolve a neighbour.
    static let neighborUseFlag: UInt8 = 0x01
    /// `FIB_RULE_INVERT`.
    static let ruleInvertFlag: UInt32 = 0x2

    // MARK: Requests

    /// A dump request for every object of `type` (`RTM_GETLINK`, ...) in `family` (nil: all).
    public static func dumpRequest(_ type: UInt16, family: AddressFamily?, sequence: UInt32) -> [UInt8] {
        var w = MessageWriter(type: type, flags: MessageFlags.request | MessageFlags.dump, sequence: sequence)
        let f = family?.rawValue ?? 0
        switch type {
        case MessageType.getLink:
            var h = ifinfomsg()
            h.ifi_family = f
            w.append(header: h)
        case MessageType.getAddress:
            var h = ifaddrmsg()
            h.ifa_family = f
            w.append(header: h)
        case MessageType.getRule:
            var h = fib_rule_hdr()
            h.family = f
            w.append(header: h)
        case MessageType.getNeighbor:
            var h = ndmsg()
            h.ndm_family = f
            w.append(header: h)
        default:
            var h = rtmsg()
            h.rtm_family = f
            w.append(header: h)
        }
        return w.finish()
    }

    /// `RTM_NEWROUTE`/`RTM_DELROUTE` for `route`. Table ids of 256 and above travel in `RTA_TABLE`
    /// with `rtm_table` = `RT_TABLE_UNSPEC`; every table id is sent in `RTA_TABLE`.
    public static func routeRequest(_ type: UInt16, flags: UInt16, route: Route, sequence: UInt32) throws -> [UInt8] {
        var w = MessageWriter(type: type, flags: flags, sequence: sequence)
        var h = rtmsg()
        h.rtm_family = route.family.rawValue
        h.rtm_dst_len = route.destination.length
        h.rtm_src_len = route.source?.length ?? 0
        h.rtm_tos = route.tos
        h.rtm_table = UInt8(route.table < 256 ? route.table : RoutingTable.unspecified)
        h.rtm_protocol = route.proto.rawValue
        h.rtm_scope = route.scope.rawValue
        h.rtm_type = route.type.rawValue
        h.rtm_flags = route.configuredFlags
        w.append(header: h)
        try w.attribute(t(RTA_TABLE.rawValue), u32: route.table)
        if route.destination.length > 0 { try w.attribute(t(RTA_DST.rawValue), address: route.destination.address) }
        if let src = route.source, src.length > 0 { try w.attribute(t(RTA_SRC.rawValue), address: src.address) }
        if let gw = route.gateway { try gateway(gw, of: route.family, into: &w) }
        if let oif = route.outputInterface { try w.attribute(t(RTA_OIF.rawValue), i32: oif) }
        if let src = route.preferredSource { try w.attribute(t(RTA_PREFSRC.rawValue), address: src) }
        if let m = route.metric { try w.attribute(t(RTA_PRIORITY.rawValue), u32: m) }
        if !route.nextHops.isEmpty {
            // Written without NLA_F_NESTED, as iproute2 writes it and the kernel reports it.
            try w.nested(t(RTA_MULTIPATH.rawValue), flagged: false) { w in
                for hop in route.nextHops {
                    try w.record(headerSize: Int(CNL_RTNEXTHOP_SIZE)) { w in
                        w.append(UInt16(0))  // rtnh_len, filled in by record()
                        w.append(hop.configuredFlags)  // rtnh_flags
                        w.append(UInt8(clamping: max(hop.weight, 1) - 1))  // rtnh_hops: the weight - 1
                        w.append(hop.outputInterface)  // rtnh_ifindex
                        if let gw = hop.gateway { try gateway(gw, of: route.family, into: &w) }
                    }
                }
            }
        }
        return w.finish()
    }

    /// A gateway of a route of `family`: `RTA_GATEWAY` when the families agree, else `RTA_VIA`
    /// (`struct rtvia`: the gateway's family, then its address; an IPv4 route via IPv6).
    private static func gateway(_ gw: IPAddress, of family: AddressFamily, into w: inout MessageWriter) throws {
        if gw.family == family {
            try w.attribute(t(RTA_GATEWAY.rawValue), address: gw)
        } else {
            try w.attribute(
                t(RTA_VIA.rawValue), bytes: withUnsafeBytes(of: UInt16(gw.family.rawValue)) { Array($0) } + gw.bytes)
        }
    }

    /// `RTM_NEWRULE`/`RTM_DELRULE` for `rule`. The table always travels in `FRA_TABLE`.
    public static func ruleRequest(_ type: UInt16, flags: UInt16, rule: Rule, sequence: UInt32) throws -> [UInt8] {
        var w = MessageWriter(type: type, flags: flags, sequence: sequence)
        var h = fib_rule_hdr()
        h.family = rule.family.rawValue
        h.dst_len = rule.destination?.length ?? 0
        h.src_len = rule.source?.length ?? 0
        h.tos = rule.tos
        h.table = UInt8(rule.table < 256 ? rule.table : RoutingTable.unspecified)
        h.action = rule.action.rawValue
        h.flags = rule.invert ? ruleInvertFlag : 0
        w.append(header: h)
        try w.attribute(t(FRA_TABLE), u32: rule.table)
        if let p = rule.priority { try w.attribute(t(FRA_PRIORITY), u32: p) }
        if let s = rule.source, s.length > 0 { try w.attribute(t(FRA_SRC), address: s.address) }
        if let d = rule.destination, d.length > 0 { try w.attribute(t(FRA_DST), address: d.address) }
        if let i = rule.inputInterface { try w.attribute(t(FRA_IIFNAME), string: i) }
        if let o = rule.outputInterface { try w.attribute(t(FRA_OIFNAME), string: o) }
        if let m = rule.firewallMark { try w.attribute(t(FRA_FWMARK), u32: m) }
        if let m = rule.firewallMask { try w.attribute(t(FRA_FWMASK), u32: m) }
        if let s = rule.suppressPrefixLength { try w.attribute(t(FRA_SUPPRESS_PREFIXLEN), u32: s) }
        if rule.proto != .unspecified { try w.attribute(t(FRA_PROTOCOL), u8: rule.proto.rawValue) }
        return w.finish()
    }

    /// `RTM_NEWNEIGH` with `NTF_USE`: asks the kernel to resolve `address` on `linkIndex`
    /// (an ARP request or neighbour solicitation) without changing the entry otherwise.
    public static func neighborProbeRequest(address: IPAddress, linkIndex: Int32, sequence: UInt32) throws -> [UInt8] {
        var w = MessageWriter(
            type: MessageType.newNeighbor, flags: MessageFlags.request | MessageFlags.ack | MessageFlags.create,
            sequence: sequence)
        var h = ndmsg()
        h.ndm_family = address.family.rawValue
        h.ndm_ifindex = linkIndex
        h.ndm_flags = neighborUseFlag
        w.append(header: h)
        try w.attribute(t(NDA_DST), address: address)
        return w.finish()
    }

    /// `RTM_F_LOOKUP_TABLE`: asks a route lookup to report the table it matched in `RTA_TABLE`.
    static let lookupTableFlag = UInt32(RTM_F_LOOKUP_TABLE)

    /// `RTM_GETROUTE` for one lookup (no `NLM_F_DUMP`): which route the kernel would use for a
    /// packet to `query.destination`. With an input interface the kernel looks the packet up as
    /// if it arrived there (reverse-path filtering included); otherwise as sent by this host.
    /// `RTM_F_LOOKUP_TABLE` makes the answer carry the table the rules chose, in `RTA_TABLE`.
    /// The answer is an `RTM_NEWROUTE` (read by `decode`) or an `NLMSG_ERROR`.
    ///
    /// Equivalent to `ip route get DST [from SRC] [iif DEV] [oif DEV] [mark M]`.
    public static func routeLookupRequest(_ query: RouteQuery, sequence: UInt32) throws -> [UInt8] {
        let family = query.destination.family
        if let s = query.source, s.family != family {
            throw NetlinkEncodingError("route lookup from \(s.family) \(s) to \(family) \(query.destination)")
        }
        var w = MessageWriter(type: MessageType.getRoute, flags: MessageFlags.request, sequence: sequence)
        var h = rtmsg()
        h.rtm_family = family.rawValue
        h.rtm_dst_len = family.bitWidth  // a host
        h.rtm_src_len = query.source == nil ? 0 : family.bitWidth
        h.rtm_flags = lookupTableFlag
        w.append(header: h)
        try w.attribute(t(RTA_DST.rawValue), address: query.destination)
        if let s = query.source { try w.attribute(t(RTA_SRC.rawValue), address: s) }
        if let i = query.inputInterface { try w.attribute(t(RTA_IIF.rawValue), i32: i) }
        if let o = query.outputInterface { try w.attribute(t(RTA_OIF.rawValue), i32: o) }
        if let m = query.mark { try w.attribute(t(RTA_MARK.rawValue), u32: m) }
        return w.finish()
    }

    // MARK: Decoding

    /// Decodes one message into an object; nil for types and families nicroute does not model
    /// (e.g. `AF_BRIDGE` neighbours, MPLS routes). Throws on malformed bytes.
    public static func decode(_ message: NetlinkMessage) throws -> RouteObject? {
        let p = message.payload
        switch message.header.type {
        case MessageType.newLink, MessageType.deleteLink: return try decodeLink(p).map(RouteObject.link)
        case MessageType.newAddress, MessageType.deleteAddress: return try decodeAddress(p).map(RouteObject.address)
        case MessageType.newRoute, MessageType.deleteRoute: return try decodeRoute(p).map(RouteObject.route)
        case MessageType.newRule, MessageType.deleteRule: return try decodeRule(p).map(RouteObject.rule)
        case MessageType.newNeighbor, MessageType.deleteNeighbor: return try decodeNeighbor(p).map(RouteObject.neighbor)
        default: return nil
        }
    }

    private static func family(_ raw: UInt8) -> AddressFamily? { AddressFamily(rawValue: raw) }

    static func decodeLink(_ p: ByteReader) throws -> Link? {
        let h = try p.load(ifinfomsg.self)
        let size = MemoryLayout<ifinfomsg>.size
        let attrs = try Attributes(try p.window(at: size, length: p.count - size))
        var link = Link(
            index: h.ifi_index, name: attrs[IFLA_IFNAME]?.string() ?? "", mac: attrs[IFLA_ADDRESS]?.mac(),
            flags: LinkFlags(rawValue: h.ifi_flags), hardwareType: h.ifi_type)
        if let s = attrs[IFLA_OPERSTATE] { link.operationalState = OperationalState(rawValue: try s.u8()) ?? .unknown }
        if let m = attrs[IFLA_MTU] { link.mtu = try m.u32() }
        if let info = attrs[IFLA_LINKINFO] {
            let nested = try Attributes(info)
            link.kind = nested[IFLA_INFO_KIND]?.string()
        }
        return link
    }

    static func decodeAddress(_ p: ByteReader) throws -> InterfaceAddress? {
        let h = try p.load(ifaddrmsg.self)
        let size = MemoryLayout<ifaddrmsg>.size
        guard let fam = family(h.ifa_family) else { return nil }
        let prefixLength = h.ifa_prefixlen
        let shortFlags = h.ifa_flags
        let scope = h.ifa_scope
        let index = h.ifa_index
        let attrs = try Attributes(try p.window(at: size, length: p.count - size))
        let peerOrLocal = try attrs[IFA_ADDRESS]?.address()
        let local = try attrs[IFA_LOCAL]?.address()
        guard let addr = local ?? peerOrLocal, addr.family == fam, prefixLength <= fam.bitWidth else {
            throw NetlinkDecodingError("address message without a \(fam) address", at: p.range.lowerBound)
        }
        let flags = try attrs[IFA_FLAGS]?.u32() ?? UInt32(shortFlags)
        return InterfaceAddress(
            linkIndex: Int32(bitPattern: index), address: addr, prefixLength: prefixLength,
            peer: (local != nil && peerOrLocal != local) ? peerOrLocal : nil, scope: Scope(rawValue: scope),
            flags: AddressFlags(rawValue: flags), label: attrs[IFA_LABEL]?.string())
    }

    private static func prefix(
        _ reader: ByteReader?, length: UInt8, family: AddressFamily, at offset: Int
    ) throws -> IPPrefix? {
        guard length <= family.bitWidth else {
            throw NetlinkDecodingError("prefix length \(length) for \(family)", at: offset)
        }
        guard let reader else {
            guard length == 0 else {
                throw NetlinkDecodingError("prefix length \(length) without its address", at: offset)
            }
            return nil
        }
        let a = try reader.address()
        guard a.family == family else {
            throw NetlinkDecodingError("\(a.family) address in a \(family) message", at: offset)
        }
        return IPPrefix(a, length: length)
    }

    /// `rtm_table`, `rtm_protocol` and `rtm_type` of a route message's payload, read from its
    /// `struct rtmsg` without decoding the rest; nil when the payload is shorter than the header.
    /// Enough to leave out routes that are not wanted before paying for their attributes.
    public static func routeHeader(_ p: ByteReader) -> (table: UInt8, proto: RouteProtocol, type: RouteType)? {
        guard let h = try? p.load(rtmsg.self) else { return nil }
        return (h.rtm_table, RouteProtocol(rawValue: h.rtm_protocol), RouteType(rawValue: h.rtm_type))
    }

    /// True for a route of the `local` table (by its header) that cannot be a NIC's source
    /// (`Planner.isLocalSource`): the kernel's own (protocol `kernel`: the local routes of the
    /// addresses), and every route that is not of type local (broadcast, anycast, multicast).
    public static func isLocalTableNoise(table: UInt8, proto: RouteProtocol, type: RouteType) -> Bool {
        table == UInt8(RoutingTable.local) && (proto == .kernel || type != .local)
    }

    static func decodeRoute(_ p: ByteReader) throws -> Route? {
        let h = try p.load(rtmsg.self)
        let size = MemoryLayout<rtmsg>.size
        guard let fam = family(h.rtm_family) else { return nil }
        let dstLen = h.rtm_dst_len
        let srcLen = h.rtm_src_len
        let attrs = try Attributes(try p.window(at: size, length: p.count - size))
        let dst = try prefix(attrs[RTA_DST.rawValue], length: dstLen, family: fam, at: p.range.lowerBound)
        guard dst != nil || dstLen == 0 else {
            throw NetlinkDecodingError("rtm_dst_len \(dstLen) without RTA_DST", at: p.range.lowerBound)
        }
        var route = Route(
            family: fam, table: UInt32(h.rtm_table), destination: dst ?? .any(fam),
            source: try prefix(attrs[RTA_SRC.rawValue], length: srcLen, family: fam, at: p.range.lowerBound),
            tos: h.rtm_tos, proto: RouteProtocol(rawValue: h.rtm_protocol), scope: Scope(rawValue: h.rtm_scope),
            type: RouteType(rawValue: h.rtm_type), flags: h.rtm_flags)
        if let table = attrs[RTA_TABLE.rawValue] { route.table = try table.u32() }
        route.gateway = try gateway(attrs, family: fam)
        if let oif = attrs[RTA_OIF.rawValue] { route.outputInterface = try oif.i32() }
        if let src = attrs[RTA_PREFSRC.rawValue] { route.preferredSource = try src.address() }
        if let m = attrs[RTA_PRIORITY.rawValue] { route.metric = try m.u32() }
        if let multipath = attrs[RTA_MULTIPATH.rawValue] { route.nextHops = try nextHops(multipath, family: fam) }
        return route
    }

    /// The gateway among `attrs`: `RTA_GATEWAY` (an address of the route's family) or `RTA_VIA`.
    private static func gateway(_ attrs: Attributes, family: AddressFamily) throws -> IPAddress? {
        if let gw = attrs[RTA_GATEWAY.rawValue] {
            let a = try gw.address()
            guard a.family == family else {
                throw NetlinkDecodingError("\(a.family) RTA_GATEWAY in a \(family) route", at: gw.range.lowerBound)
            }
            return a
        }
        guard let via = attrs[RTA_VIA.rawValue] else { return nil }
        let size = Int(CNL_RTVIA_SIZE)
        // struct rtvia ends in a flexible array, which Swift does not copy: its one fixed field
        // is read at the offset the C struct gives it.
        let rawFamily = try via.read(
            __kernel_sa_family_t.self, at: MemoryLayout<rtvia>.offset(of: \rtvia.rtvia_family) ?? 0)
        guard rawFamily <= UInt8.max, let viaFamily = AddressFamily(rawValue: UInt8(truncatingIfNeeded: rawFamily))
        else {
            throw NetlinkDecodingError("RTA_VIA of family \(rawFamily)", at: via.range.lowerBound)
        }
        let a = try via.window(at: size, length: via.count - size).address()
        guard a.family == viaFamily else {
            throw NetlinkDecodingError("RTA_VIA of \(viaFamily) with a \(a.family) address", at: via.range.lowerBound)
        }
        return a
    }

    /// The paths in `RTA_MULTIPATH`: a run of `struct rtnexthop`, each followed by its own
    /// attributes (`RTA_GATEWAY`, `RTA_VIA`) within `rtnh_len`, each padded to `RTNH_ALIGN`.
    /// Throws on a length that under- or overruns, and on an empty list.
    static func nextHops(_ reader: ByteReader, family: AddressFamily) throws -> [NextHop] {
        let size = Int(CNL_RTNEXTHOP_SIZE)
        var hops: [NextHop] = []
        var offset = 0
        while offset < reader.count {
            let header = try reader.load(rtnexthop.self, at: offset)
            let length = Int(header.rtnh_len)
            guard length >= size, length <= reader.count - offset else {
                throw NetlinkDecodingError(
                    "rtnh_len \(length) with \(reader.count - offset) bytes left", at: reader.range.lowerBound + offset)
            }
            let attrs = try Attributes(try reader.window(at: offset + size, length: length - size))
            hops.append(
                NextHop(
                    gateway: try gateway(attrs, family: family), outputInterface: header.rtnh_ifindex,
                    weight: UInt16(header.rtnh_hops) + 1, flags: header.rtnh_flags))
            offset += (length + 3) & ~3
        }
        guard !hops.isEmpty else {
            throw NetlinkDecodingError("RTA_MULTIPATH without a path", at: reader.range.lowerBound)
        }
        return hops
    }

    static func decodeRule(_ p: ByteReader) throws -> Rule? {
        let h = try p.load(fib_rule_hdr.self)
        let size = MemoryLayout<fib_rule_hdr>.size
        guard let fam = family(h.family) else { return nil }
        let attrs = try Attributes(try p.window(at: size, length: p.count - size))
        var rule = Rule(
            family: fam, table: UInt32(h.table),
            source: try prefix(attrs[FRA_SRC], length: h.src_len, family: fam, at: p.range.lowerBound),
            destination: try prefix(attrs[FRA_DST], length: h.dst_len, family: fam, at: p.range.lowerBound),
            proto: .unspecified, action: RuleAction(rawValue: h.action), tos: h.tos,
            invert: h.flags & ruleInvertFlag != 0)
        if let table = attrs[FRA_TABLE] { rule.table = try table.u32() }
        if let prio = attrs[FRA_PRIORITY] { rule.priority = try prio.u32() }
        rule.inputInterface = attrs[FRA_IIFNAME]?.string()
        rule.outputInterface = attrs[FRA_OIFNAME]?.string()
        if let m = attrs[FRA_FWMARK] { rule.firewallMark = try m.u32() }
        if let m = attrs[FRA_FWMASK] { rule.firewallMask = try m.u32() }
        if let s = attrs[FRA_SUPPRESS_PREFIXLEN] {
            let v = try s.u32()
            rule.suppressPrefixLength = v == UInt32.max ? nil : v  // the kernel reports -1 for "unset"
        }
        if let proto = attrs[FRA_PROTOCOL] { rule.proto = RouteProtocol(rawValue: try proto.u8()) }
        return rule
    }

    static func decodeNeighbor(_ p: ByteReader) throws -> Neighbor? {
        let h = try p.load(ndmsg.self)
        let size = MemoryLayout<ndmsg>.size
        guard let fam = family(h.ndm_family) else { return nil }
        let attrs = try Attributes(try p.window(at: size, length: p.count - size))
        guard let dst = try attrs[NDA_DST]?.address(), dst.family == fam else {
            throw NetlinkDecodingError("neighbour message without a \(fam) NDA_DST", at: p.range.lowerBound)
        }
        return Neighbor(
            linkIndex: h.ndm_ifindex, address: dst, linkLayerAddress: attrs[NDA_LLADDR]?.mac(),
            state: NeighborState(rawValue: h.ndm_state))
    }

    /// The errno and extended-ack message of an `NLMSG_ERROR` (errno 0 is an ACK).
    /// Throws when `error` is not 0 or a negative errno (-4095 ... -1, as the kernel's `MAX_ERRNO`).
    public static func decodeError(_ message: NetlinkMessage) throws -> (errno: Int32, kernelMessage: String?) {
        let p = message.payload
        let error = try p.read(Int32.self, at: 0)
        guard (-4095...0).contains(error) else {
            throw NetlinkDecodingError("nlmsgerr.error \(error) is not 0 or a negative errno", at: p.range.lowerBound)
        }
        var text: String? = nil
        if message.header.flags & MessageFlags.ackTLVs != 0 {
            // struct nlmsgerr: error + the original header, then its payload unless capped.
            let header = MemoryLayout<nlmsgerr>.offset(of: \nlmsgerr.msg) ?? 4
            var offset = MemoryLayout<nlmsgerr>.size
            if message.header.flags & MessageFlags.capped == 0 {
                let originalLength = Int(try p.read(UInt32.self, at: header))  // msg.nlmsg_len
                offset = header + max(originalLength, NetlinkHeader.size)
            }
            offset = (offset + 3) & ~3
            if offset < p.count {
                let tlvs = try Attributes(try p.window(at: offset, length: p.count - offset))
                text = tlvs[NLMSGERR_ATTR_MSG.rawValue]?.string()
            }
        }
        return (-error, text)
    }
}
