import CNetlink
import Netlink
import NicrouteCore
import Testing

// Bytes from the kernel are untrusted input: truncated, oversized or random bytes must throw
// (or decode to nil), never trap. A trap here kills the test process, so "no trap" is implied by
// the suite finishing; the expectations pin down *which* inputs must be refused.

/// What a decoder does with one input.
enum Outcome: Equatable {
    case decoded
    case threw
}

/// Splits and decodes every message of `bytes`, and reads it as an error too, as nicroute does
/// with a datagram.
@discardableResult
func exercise(_ bytes: [UInt8]) -> Outcome {
    do {
        for message in try NetlinkMessage.split(bytes) {
            _ = try RouteCodec.decode(message)
            if message.header.type == MessageType.error { _ = try RouteCodec.decodeError(message) }
        }
        return .decoded
    } catch {
        return .threw
    }
}

/// The size of the fixed struct after the header of a message of `type`, for the types the
/// codec decodes.
private func fixedSize(_ type: UInt16) -> Int? {
    switch type {
    case MessageType.newLink, MessageType.deleteLink: Int(CNL_IFINFOMSG_SIZE)
    case MessageType.newAddress, MessageType.deleteAddress: Int(CNL_IFADDRMSG_SIZE)
    case MessageType.newRoute, MessageType.deleteRoute: Int(CNL_RTMSG_SIZE)
    case MessageType.newRule, MessageType.deleteRule: Int(CNL_FIB_RULE_HDR_SIZE)
    case MessageType.newNeighbor, MessageType.deleteNeighbor: Int(CNL_NDMSG_SIZE)
    default: nil
    }
}

/// The byte ranges of the top-level attributes of a valid message (`rta_len` bytes, unpadded).
private func attributeRanges(_ bytes: [UInt8], from start: Int) -> [Range<Int>] {
    var ranges: [Range<Int>] = []
    var offset = start
    while offset + 4 <= bytes.count {
        let length = Int(UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8)
        ranges.append(offset..<offset + length)
        offset += (length + 3) & ~3
    }
    return ranges
}

private func withLength(_ bytes: [UInt8], _ length: UInt32) -> [UInt8] {
    var out = bytes
    out.replaceSubrange(0..<4, with: Fixtures.le(length))
    return out
}

@Suite("Malformed input")
struct MalformedInputTests {
    @Test("every truncation of a valid message fails to split")
    func truncatedDatagrams() throws {
        for message in try Fixtures.validMessages() {
            #expect(try NetlinkMessage.split(Array(message.prefix(0))).isEmpty)
            for cut in 1..<message.count {
                #expect(throws: NetlinkDecodingError.self, "cut at \(cut) of \(message.count)") {
                    try NetlinkMessage.split(Array(message.prefix(cut)))
                }
            }
        }
    }

    @Test("every truncation with a consistent nlmsg_len throws inside the struct or an attribute")
    func truncatedMessages() throws {
        for message in try Fixtures.validMessages() {
            let type = UInt16(message[4]) | UInt16(message[5]) << 8
            let fixed = fixedSize(type).map { NetlinkHeader.size + $0 }
            let attributes = fixed.map { attributeRanges(message, from: $0) } ?? []
            for cut in NetlinkHeader.size..<message.count {
                let outcome = exercise(withLength(Array(message.prefix(cut)), UInt32(cut)))
                if let fixed, cut < fixed {
                    #expect(outcome == .threw, "type \(type) cut at \(cut) inside the fixed struct")
                }
                // Past an attribute's own header, rta_len overruns the message. (1 to 3 bytes of a
                // header are taken as trailing padding, as the kernel's nla_parse does.)
                if let hit = attributes.first(where: { $0.contains(cut) && cut - $0.lowerBound >= 4 }) {
                    #expect(outcome == .threw, "type \(type) cut at \(cut) inside attribute \(hit)")
                }
            }
        }
    }

    @Test("nlmsg_len shorter than a header or longer than the datagram")
    func impossibleLengths() throws {
        for message in try Fixtures.validMessages() {
            for length in [0, 1, 15, UInt32(message.count + 1), UInt32(message.count + 4), 0x7fff_ffff, UInt32.max] {
                #expect(throws: NetlinkDecodingError.self, "nlmsg_len \(length)") {
                    try NetlinkMessage.split(withLength(message, length))
                }
            }
            // A valid message followed by one whose length is zero must not loop forever.
            #expect(throws: NetlinkDecodingError.self) {
                try NetlinkMessage.split(message + Fixtures.message(type: MessageType.done, payload: [], length: 0))
            }
        }
    }

    @Test("attribute lengths that overrun the message or are shorter than a header")
    func impossibleAttributeLengths() throws {
        let route = Route(
            family: .inet, table: 1000, destination: IPPrefix("198.51.100.0/24")!, gateway: IPAddress("10.0.0.254"))
        let valid = try RouteCodec.routeRequest(MessageType.newRoute, flags: 0, route: route, sequence: 1)
        let first = NetlinkHeader.size + Int(CNL_RTMSG_SIZE)
        for rtaLength: UInt16 in [0, 1, 2, 3, 9, 0x100, 0xffff] {
            var bytes = valid
            bytes.replaceSubrange(first..<first + 2, with: Fixtures.le(rtaLength))
            let message = try #require(try NetlinkMessage.split(bytes).first)
            #expect(throws: NetlinkDecodingError.self, "rta_len \(rtaLength)") { try RouteCodec.decode(message) }
        }

        // The nested IFLA_INFO_KIND inside IFLA_LINKINFO claims more than its container holds.
        var link = KernelShaped.link
        let linkInfo = try #require(
            attributeRanges(link, from: NetlinkHeader.size + Int(CNL_IFINFOMSG_SIZE)).last)
        link.replaceSubrange(linkInfo.lowerBound + 4..<linkInfo.lowerBound + 6, with: Fixtures.le(UInt16(64)))
        let message = try #require(try NetlinkMessage.split(link).first)
        #expect(throws: NetlinkDecodingError.self) { try RouteCodec.decode(message) }
    }

    @Test("attributes of the wrong size for their type")
    func wrongSizedAttributes() throws {
        // RTA_TABLE with 2 bytes, RTA_GATEWAY with 5, RTA_DST with 16 bytes in an IPv4 route.
        let header: [UInt8] = [2, 24, 0, 0, 0, 110, 0, 1, 0, 0, 0, 0]  // struct rtmsg, AF_INET, /24
        let dst = Fixtures.attribute(1, [198, 51, 100, 0])
        let cases: [[UInt8]] = [
            dst + Fixtures.attribute(15, [0xe8, 0x03]),
            dst + Fixtures.attribute(5, [10, 0, 0, 254, 0]),
            Fixtures.attribute(1, IPAddress("2001:db8::")!.bytes),
            [],  // rtm_dst_len 24 without RTA_DST
        ]
        for attributes in cases {
            let bytes = Fixtures.message(type: MessageType.newRoute, payload: header + attributes)
            let message = try #require(try NetlinkMessage.split(bytes).first)
            #expect(throws: NetlinkDecodingError.self) { try RouteCodec.decode(message) }
        }
        // A prefix length longer than the family allows.
        let tooLong: [UInt8] = [2, 33, 0, 0, 0, 110, 0, 1, 0, 0, 0, 0] + Fixtures.attribute(1, [10, 0, 0, 0])
        let message = try #require(
            try NetlinkMessage.split(Fixtures.message(type: MessageType.newRoute, payload: tooLong)).first)
        #expect(throws: NetlinkDecodingError.self) { try RouteCodec.decode(message) }
    }

    @Test("a prefix length without its address (rule src/dst, route src)")
    func prefixLengthWithoutAddress() throws {
        // struct fib_rule_hdr: AF_INET, dst_len 0, src_len 32, action FR_ACT_TO_TBL, and no FRA_SRC.
        let rule: [UInt8] = [2, 0, 32, 0, 254, 0, 0, 1, 0, 0, 0, 0]
        // struct fib_rule_hdr: AF_INET6, dst_len 64, src_len 0, and no FRA_DST.
        let rule6: [UInt8] = [10, 64, 0, 0, 254, 0, 0, 1, 0, 0, 0, 0]
        // struct rtmsg: AF_INET6, dst_len 0, src_len 48, table main, and no RTA_SRC.
        let route: [UInt8] = [10, 0, 48, 0, 254, 3, 0, 1, 0, 0, 0, 0]
        for (type, payload) in [
            (MessageType.newRule, rule), (MessageType.newRule, rule6), (MessageType.newRoute, route),
        ] {
            let message = try #require(try NetlinkMessage.split(Fixtures.message(type: type, payload: payload)).first)
            #expect(throws: NetlinkDecodingError.self) { try RouteCodec.decode(message) }
        }
    }

    @Test("an address message without an address of its family")
    func addressWithoutAddress() throws {
        let header: [UInt8] = [10, 64, 0, 0, 3, 0, 0, 0]  // struct ifaddrmsg, AF_INET6 /64 on index 3
        for attributes in [[], Fixtures.attribute(1, [10, 0, 0, 1])] {
            let message = try #require(
                try NetlinkMessage.split(Fixtures.message(type: MessageType.newAddress, payload: header + attributes))
                    .first)
            #expect(throws: NetlinkDecodingError.self) { try RouteCodec.decode(message) }
        }
    }

    @Test("an error message with any errno and any original length")
    func extremeErrors() throws {
        for error in [Int32.min, Int32.min + 1, -4096, -4095, -1, 0, 1, Int32.max] {
            for original in [0, 15, 16, 17, 0xffff, UInt32.max] {
                let payload = Fixtures.le(error) + Fixtures.le(original) + [UInt8](repeating: 0, count: 12)
                for flags in [0, MessageFlags.ackTLVs, MessageFlags.ackTLVs | MessageFlags.capped] {
                    let bytes = Fixtures.message(type: MessageType.error, flags: flags, payload: payload)
                    let message = try #require(try NetlinkMessage.split(bytes).first)
                    if (-4095...0).contains(error) {
                        let decoded = try RouteCodec.decodeError(message)
                        #expect(decoded.errno == -error)
                        #expect(decoded.kernelMessage == nil)
                    } else {
                        // Not an errno: INT32_MIN used to trap negating it.
                        #expect(throws: NetlinkDecodingError.self, "error \(error)") {
                            try RouteCodec.decodeError(message)
                        }
                    }
                }
            }
        }
        let short = Fixtures.message(type: MessageType.error, payload: [0xea, 0xff])
        #expect(throws: NetlinkDecodingError.self) {
            try RouteCodec.decodeError(try #require(try NetlinkMessage.split(short).first))
        }
    }

    @Test("random datagrams", arguments: [11, 12, 13, 14] as [UInt64])
    func randomDatagrams(seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        for _ in 0..<2_000 {
            exercise(rng.bytes(count: Int.random(in: 0..<512, using: &rng)))
        }
    }

    /// Random payloads behind a well-formed header of each type the codec decodes: these get
    /// past `split` and into the decoders.
    @Test("random payloads of every message type", arguments: [21, 22] as [UInt64])
    func randomPayloads(seed: UInt64) {
        let types = [
            MessageType.newLink, MessageType.deleteLink, MessageType.newAddress, MessageType.deleteAddress,
            MessageType.newRoute, MessageType.deleteRoute, MessageType.newRule, MessageType.deleteRule,
            MessageType.newNeighbor, MessageType.deleteNeighbor, MessageType.error, MessageType.done,
        ]
        var rng = SeededGenerator(seed: seed)
        var outcomes: [Outcome: Int] = [:]
        for _ in 0..<3_000 {
            let type = types.randomElement(using: &rng)!
            var payload = rng.bytes(count: Int.random(in: 0..<160, using: &rng))
            if !payload.isEmpty, rng.bool() { payload[0] = rng.bool() ? 2 : 10 }  // a family we model
            let flags = UInt16.random(in: 0...UInt16.max, using: &rng)
            outcomes[exercise(Fixtures.message(type: type, flags: flags, payload: payload)), default: 0] += 1
        }
        // Random attribute runs are rarely well-formed, but short ones are: both paths are taken.
        #expect(outcomes[.threw, default: 0] > 0)
        #expect(outcomes[.decoded, default: 0] > 0)
    }

    /// Valid messages with a few random bytes changed: the inputs closest to real bugs.
    @Test("mutated valid messages", arguments: [31, 32, 33] as [UInt64])
    func mutatedMessages(seed: UInt64) throws {
        let valid = try Fixtures.validMessages()
        var rng = SeededGenerator(seed: seed)
        for _ in 0..<3_000 {
            var bytes = valid.randomElement(using: &rng)!
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let index = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[index] =
                    rng.bool() ? UInt8.random(in: 0...255, using: &rng) : bytes[index] ^ (1 << (rng.next() % 8))
            }
            exercise(bytes)
            // Keep nlmsg_len consistent so the damage reaches the decoders.
            exercise(withLength(bytes, UInt32(bytes.count)))
        }
    }
}

@Suite("MessageWriter bounds")
struct MessageWriterTests {
    @Test("an attribute longer than a 16-bit rta_len allows throws")
    func attributeLength() throws {
        var writer = MessageWriter(type: MessageType.newRoute, flags: 0, sequence: 1, capacity: 1 << 20)
        try writer.attribute(1, bytes: [UInt8](repeating: 0xaa, count: 65_531))  // rta_len = 65535: the largest
        let before = writer.bytes
        #expect(throws: NetlinkEncodingError.self) {
            try writer.attribute(1, bytes: [UInt8](repeating: 0xaa, count: 65_532))
        }
        #expect(writer.bytes == before)
    }

    @Test("a nest longer than 64 KiB throws")
    func nestedLength() throws {
        var writer = MessageWriter(type: MessageType.newLink, flags: 0, sequence: 1, capacity: 1 << 20)
        #expect(throws: NetlinkEncodingError.self) {
            try writer.nested(18) { w in
                for _ in 0..<3 { try w.attribute(1, bytes: [UInt8](repeating: 0, count: 30_000)) }
            }
        }
    }

    @Test("writes never pass the capacity", arguments: [16, 20, 24, 31, 64, 100, 4096])
    func capacity(_ capacity: Int) throws {
        var writer = MessageWriter(type: MessageType.newRule, flags: 0, sequence: 1, capacity: capacity)
        var written = 0
        do {
            while true {
                try writer.attribute(3, string: "eth\(written)")
                written += 1
                #expect(writer.bytes.count <= capacity)
            }
        } catch is NetlinkEncodingError {
            #expect(writer.bytes.count <= max(capacity, NetlinkHeader.size))
            #expect(writer.bytes.count + 12 > capacity)  // the next 9- to 12-byte attribute did not fit
        }
        #expect(throws: NetlinkEncodingError.self) { try writer.nested(1) { try $0.attribute(2, u32: 0) } }
        #expect(writer.finish().count <= max(capacity, NetlinkHeader.size))
    }

    @Test("a rule whose interface name exceeds the message throws instead of being cut")
    func oversizedRule() {
        let rule = Rule(family: .inet, table: 1000, inputInterface: String(repeating: "x", count: 40_000))
        #expect(throws: NetlinkEncodingError.self) {
            try RouteCodec.ruleRequest(MessageType.newRule, flags: 0, rule: rule, sequence: 1)
        }
    }

    @Test("finish fills in nlmsg_len and the attributes are aligned")
    func finish() throws {
        var writer = MessageWriter(type: MessageType.newRule, flags: 0, sequence: 1)
        try writer.attribute(21, u8: 110)
        try writer.nested(3) { try $0.attribute(1, string: "abc") }
        let bytes = writer.finish()
        #expect(bytes.count == 16 + 8 + 4 + 8)
        #expect(Array(bytes[0..<4]) == Fixtures.le(UInt32(bytes.count)))
        #expect(Array(bytes[24..<28]) == [12, 0, 3, 0x80])  // nest: rta_len = 12, type 3 | NLA_F_NESTED
    }
}
