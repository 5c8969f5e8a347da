import Netlink
import NicrouteCore
import Testing

/// Hand-built netlink bytes, for the decoder tests. Integers in host byte order, as netlink.
enum Fixtures {
    static func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }

    /// `struct nlmsghdr` + `payload`, with `nlmsg_len` = 16 + payload size unless `length` says otherwise.
    static func message(
        type: UInt16, flags: UInt16 = 0, sequence: UInt32 = 1, portID: UInt32 = 0, payload: [UInt8],
        length: UInt32? = nil
    ) -> [UInt8] {
        le(length ?? UInt32(16 + payload.count)) + le(type) + le(flags) + le(sequence) + le(portID) + payload
    }

    /// `struct rtattr` + `payload`, padded to 4 bytes.
    static func attribute(_ type: UInt16, _ payload: [UInt8]) -> [UInt8] {
        var bytes = le(UInt16(4 + payload.count)) + le(type) + payload
        while bytes.count % 4 != 0 { bytes.append(0) }
        return bytes
    }

    static func attribute(_ type: UInt16, string: String) -> [UInt8] { attribute(type, Array(string.utf8) + [0]) }
    static func attribute(_ type: UInt16, u32: UInt32) -> [UInt8] { attribute(type, le(u32)) }

    /// The seeds every malformed-input test starts from: each request kind RouteCodec encodes,
    /// plus kernel-shaped link, address, neighbour and error messages.
    static func validMessages() throws -> [[UInt8]] {
        var rng = SeededGenerator(seed: 7)
        var out: [[UInt8]] = []
        for type in [MessageType.getLink, MessageType.getAddress, MessageType.getRoute, MessageType.getRule] {
            out.append(RouteCodec.dumpRequest(type, family: .inet, sequence: 1))
        }
        for _ in 0..<8 {
            out.append(
                try RouteCodec.routeRequest(
                    MessageType.newRoute, flags: 0, route: ModelGenerator.route(&rng), sequence: 2))
            out.append(
                try RouteCodec.ruleRequest(MessageType.newRule, flags: 0, rule: ModelGenerator.rule(&rng), sequence: 3))
        }
        out.append(try RouteCodec.neighborProbeRequest(address: IPAddress("fe80::1")!, linkIndex: 3, sequence: 4))
        out.append(
            try RouteCodec.routeLookupRequest(
                RouteQuery(destination: IPAddress("192.0.2.1")!, source: IPAddress("10.0.0.1")!, inputInterface: 3),
                sequence: 5))
        out += [KernelShaped.link, KernelShaped.address, KernelShaped.neighbor, KernelShaped.errorWithMessage]
        // Multipath routes: the kernel's IPv6 ECMP default and a request with RTA_VIA paths.
        out.append(KernelShapedMultipath.ipv6Default)
        var multipath = SeededGenerator(seed: 8)
        out.append(
            try RouteCodec.routeRequest(
                MessageType.newRoute, flags: 0, route: ModelGenerator.multipathRoute(&multipath), sequence: 5))
        return out
    }
}

/// Messages shaped like the kernel's, annotated per field.
enum KernelShaped {
    typealias F = Fixtures

    /// RTM_NEWLINK for eth0 (index 3): up, lower up, MTU 1500, MAC 02:00:00:00:00:01, veth.
    static let link: [UInt8] = F.message(
        type: MessageType.newLink, flags: MessageFlags.multi,
        payload: [
            // struct ifinfomsg
            0x00, 0x00,  // ifi_family = AF_UNSPEC, __ifi_pad
            0x01, 0x00,  // ifi_type = ARPHRD_ETHER
            0x03, 0x00, 0x00, 0x00,  // ifi_index = 3
            0x43, 0x10, 0x01, 0x00,  // ifi_flags = UP | BROADCAST | RUNNING | MULTICAST | LOWER_UP
            0x00, 0x00, 0x00, 0x00,  // ifi_change
        ]
            + F.attribute(3, string: "eth0")  // IFLA_IFNAME
            + F.attribute(4, u32: 1500)  // IFLA_MTU
            + F.attribute(16, [6])  // IFLA_OPERSTATE = IF_OPER_UP
            + F.attribute(1, [0x02, 0x00, 0x00, 0x00, 0x00, 0x01])  // IFLA_ADDRESS
            // IFLA_LINKINFO, nested: { IFLA_INFO_KIND "veth" }
            + F.attribute(18 | MessageWriter.nestedFlag, F.attribute(1, string: "veth"))
    )

    /// RTM_NEWADDR: 10.0.0.1/24 on index 3, permanent, with IFA_LOCAL, IFA_ADDRESS, IFA_LABEL, IFA_FLAGS.
    static let address: [UInt8] = F.message(
        type: MessageType.newAddress, flags: MessageFlags.multi,
        payload: [
            // struct ifaddrmsg
            0x02,  // ifa_family = AF_INET
            0x18,  // ifa_prefixlen = 24
            0x80,  // ifa_flags = IFA_F_PERMANENT
            0x00,  // ifa_scope = RT_SCOPE_UNIVERSE
            0x03, 0x00, 0x00, 0x00,  // ifa_index = 3
        ]
            + F.attribute(1, [10, 0, 0, 1])  // IFA_ADDRESS
            + F.attribute(2, [10, 0, 0, 1])  // IFA_LOCAL
            + F.attribute(3, string: "eth0")  // IFA_LABEL
            + F.attribute(8, u32: 0x80)  // IFA_FLAGS = IFA_F_PERMANENT
    )

    /// RTM_NEWNEIGH: 10.0.0.254 on index 3 is reachable at 02:00:00:00:00:fe.
    static let neighbor: [UInt8] = F.message(
        type: MessageType.newNeighbor,
        payload: [
            // struct ndmsg
            0x02, 0x00, 0x00, 0x00,  // ndm_family = AF_INET, ndm_pad1, ndm_pad2
            0x03, 0x00, 0x00, 0x00,  // ndm_ifindex = 3
            0x02, 0x00,  // ndm_state = NUD_REACHABLE
            0x00, 0x01,  // ndm_flags, ndm_type = RTN_UNICAST
        ]
            + F.attribute(1, [10, 0, 0, 254])  // NDA_DST
            + F.attribute(2, [0x02, 0x00, 0x00, 0x00, 0x00, 0xfe])  // NDA_LLADDR
    )

    /// NLMSG_ERROR, capped, with an extended-ack message: EINVAL "Invalid table".
    static let errorWithMessage: [UInt8] = F.message(
        type: MessageType.error, flags: MessageFlags.capped | MessageFlags.ackTLVs, sequence: 5,
        payload: F.le(Int32(-22))  // struct nlmsgerr: error = -EINVAL
            // msg: the request's struct nlmsghdr (len 60, RTM_NEWRULE, flags 0x605, seq 5, pid 0)
            + F.le(UInt32(60)) + F.le(MessageType.newRule) + F.le(UInt16(0x605)) + F.le(UInt32(5)) + F.le(UInt32(0))
            + F.attribute(1, string: "Invalid table")  // NLMSGERR_ATTR_MSG
    )
}

/// The batch both `apply` tests send (over the fake transport and to the real kernel): 80 rules,
/// the sixth already there, with a route the kernel refuses (ENETUNREACH) as change 40.
enum FailingBatch {
    static func changes(_ rules: [Rule], unreachable: Route) -> [Change] {
        rules[..<40].map(Change.addRule) + [.addRoute(unreachable)] + rules[40...].map(Change.addRule)
    }

    /// Each change's outcome: rule 5 "already there" (EEXIST counts as done), the route named
    /// with its errno, operation and `ip` command, every other one added.
    static func expectOutcome(_ results: [Result<Bool, NetlinkError>], of changes: [Change], unreachable: Route) {
        #expect(results.count == changes.count)
        for (i, result) in results.enumerated() {
            switch (i, result) {
            case (5, .success(let added)): #expect(added == false)
            case (40, .failure(let error)):
                #expect(error.errno == .networkUnreachable)
                #expect(error.operation == "add route")
                #expect(error.object == IPCommand.route("add", unreachable))
            case (_, .success(let added)): #expect(added == true && i != 40)
            case (_, .failure(let error)): Issue.record("change \(i) failed: \(error)")
            }
        }
    }
}
