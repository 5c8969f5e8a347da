/// An address family, as rtnetlink numbers it.
///
/// The corresponding C constants are `AF_INET` and `AF_INET6`.
public enum AddressFamily: UInt8, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case inet = 2
    case inet6 = 10

    /// The number of bytes of an address of this family.
    public var addressLength: Int { self == .inet ? 4 : 16 }
    /// The number of bits of an address of this family.
    public var bitWidth: UInt8 { self == .inet ? 32 : 128 }
    public var description: String { self == .inet ? "inet" : "inet6" }
    /// The `ip` command's family switch: `-4` or `-6`.
    public var ipFlag: String { self == .inet ? "-4" : "-6" }
}

/// An IPv4 or IPv6 address.
///
/// IPv4 addresses are kept in the low 32 bits of `low`; `high` is zero for them.
public struct IPAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let family: AddressFamily
    public let high: UInt64
    public let low: UInt64

    /// An IPv4 address from its 32-bit value (first octet in the most significant byte).
    public init(v4 value: UInt32) {
        family = .inet
        high = 0
        low = UInt64(value)
    }

    /// An IPv6 address from its two 64-bit halves (first octet in the most significant byte).
    public init(v6 high: UInt64, _ low: UInt64) {
        family = .inet6
        self.high = high
        self.low = low
    }

    /// An address from its network-order bytes: 4 for IPv4, 16 for IPv6; nil for any other length.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        // No allocation: the codec decodes thousands of these per kernel dump.
        var high: UInt64 = 0
        var low: UInt64 = 0
        switch bytes.count {
        case 4:
            for b in bytes { low = low << 8 | UInt64(b) }
            self.init(v4: UInt32(low))
        case 16:
            var i = 0
            for b in bytes {
                if i < 8 { high = high << 8 | UInt64(b) } else { low = low << 8 | UInt64(b) }
                i += 1
            }
            self.init(v6: high, low)
        default:
            return nil
        }
    }

    /// The address in network byte order.
    public var bytes: [UInt8] {
        if family == .inet {
            return (0..<4).map { UInt8(truncatingIfNeeded: low >> (24 - 8 * UInt64($0))) }
        }
        return (0..<16).map { i in
            let word = i < 8 ? high : low
            return UInt8(truncatingIfNeeded: word >> (56 - 8 * UInt64(i % 8)))
        }
    }

    /// The IPv4 value, for an IPv4 address.
    public var v4Value: UInt32? { family == .inet ? UInt32(truncatingIfNeeded: low) : nil }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text; nil when the text is not an address.
    public init?(_ text: some StringProtocol) {
        if text.contains(":") {
            guard let v = Self.parseV6(Substring(text)) else { return nil }
            self = v
        } else {
            guard let v = Self.parseV4(Substring(text)) else { return nil }
            self.init(v4: v)
        }
    }

    /// Four decimal octets, as `inet_pton(3)` reads them: no leading zeros, which other
    /// readers (`inet_aton(3)`, iproute2) take for octal, so that `010.0.0.1` is refused rather
    /// than read as 10.0.0.1 here and 8.0.0.1 there.
    private static func parseV4(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                part.count == 1 || part.first != "0", let octet = UInt32(part), octet <= 255
            else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    private static func splitOnDoubleColon(_ s: String) -> [String] {
        var out: [String] = []
        var current = ""
        var previousColon = false
        for ch in s {
            if ch == ":" && previousColon {
                current.removeLast()
                out.append(current)
                current = ""
                previousColon = false
                continue
            }
            current.append(ch)
            previousColon = ch == ":"
        }
        out.append(current)
        return out
    }

    private static func parseV6(_ text: Substring) -> IPAddress? {
        var groups: [UInt16] = []
        var gapIndex: Int? = nil
        let halves = splitOnDoubleColon(String(text))
        guard halves.count <= 2, !text.isEmpty else { return nil }
        func parseGroups(_ s: String, allowV4Tail: Bool) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            let items = s.split(separator: ":", omittingEmptySubsequences: false)
            for (i, item) in items.enumerated() {
                if allowV4Tail, i == items.count - 1, item.contains(".") {
                    guard let v4 = parseV4(item) else { return nil }
                    out.append(UInt16(v4 >> 16))
                    out.append(UInt16(v4 & 0xffff))
                } else {
                    // Hex digits only: `UInt16(_:radix:)` alone would take a sign ("+1::", "-0::1").
                    guard (1...4).contains(item.count), item.allSatisfy({ $0.isASCII && $0.isHexDigit }),
                        let g = UInt16(item, radix: 16)
                    else { return nil }
                    out.append(g)
                }
            }
            return out
        }
        if halves.count == 2 {
            guard let head = parseGroups(halves[0], allowV4Tail: false),
                let tail = parseGroups(halves[1], allowV4Tail: true), head.count + tail.count <= 7
            else { return nil }
            groups = head
            gapIndex = head.count
            groups += tail
        } else {
            guard let all = parseGroups(halves[0], allowV4Tail: true), all.count == 8 else { return nil }
            groups = all
        }
        if let gap = gapIndex {
            groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: gap)
        }
        var h: UInt64 = 0
        var l: UInt64 = 0
        for (i, g) in groups.enumerated() {
            if i < 4 { h = h << 16 | UInt64(g) } else { l = l << 16 | UInt64(g) }
        }
        return IPAddress(v6: h, l)
    }

    /// The canonical text form (RFC 5952 for IPv6).
    public var description: String {
        if family == .inet {
            let v = low
            return "\(v >> 24 & 255).\(v >> 16 & 255).\(v >> 8 & 255).\(v & 255)"
        }
        let groups: [UInt16] = (0..<8).map { i in
            let word = i < 4 ? high : low
            return UInt16(truncatingIfNeeded: word >> (48 - 16 * UInt64(i % 4)))
        }
        // Longest run (length >= 2) of zero groups, first one on ties.
        var bestStart = -1
        var bestLength = 1
        var i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8 && groups[j] == 0 { j += 1 }
                if j - i > bestLength {
                    bestStart = i
                    bestLength = j - i
                }
                i = j
            } else {
                i += 1
            }
        }
        func hex(_ range: Range<Int>) -> String {
            groups[range].map { String($0, radix: 16) }.joined(separator: ":")
        }
        if bestStart < 0 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        (a.family.rawValue, a.high, a.low) < (b.family.rawValue, b.high, b.low)
    }

    /// True for fe80::/10.
    public var isIPv6LinkLocal: Bool { family == .inet6 && high >> 54 == 0x3fa }
    /// True for ff00::/8.
    public var isIPv6Multicast: Bool { family == .inet6 && high >> 56 == 0xff }
    /// True for 127.0.0.0/8 and ::1.
    public var isLoopback: Bool {
        family == .inet ? low >> 24 == 127 : (high == 0 && low == 1)
    }
    /// True for 169.254.0.0/16 (IPv4 link-local).
    public var isIPv4LinkLocal: Bool { family == .inet && low >> 16 == 0xa9fe }

    /// This address with all bits after the first `length` cleared.
    public func masked(to length: UInt8) -> IPAddress {
        if family == .inet {
            let l = min(Int(length), 32)
            let mask: UInt32 = l == 0 ? 0 : ~UInt32(0) << (32 - l)
            return IPAddress(v4: UInt32(truncatingIfNeeded: low) & mask)
        }
        let l = min(Int(length), 128)
        let hmask: UInt64 = l == 0 ? 0 : (l >= 64 ? ~0 : ~UInt64(0) << (64 - l))
        let lmask: UInt64 = l <= 64 ? 0 : (l == 128 ? ~0 : ~UInt64(0) << (128 - l))
        return IPAddress(v6: high & hmask, low & lmask)
    }

    /// This address plus `n` (wrapping within the family), e.g. the first host of a subnet.
    public func adding(_ n: UInt64) -> IPAddress {
        if family == .inet { return IPAddress(v4: UInt32(truncatingIfNeeded: low &+ n)) }
        let (l, overflow) = low.addingReportingOverflow(n)
        return IPAddress(v6: overflow ? high &+ 1 : high, l)
    }
}

/// An address with a prefix length: a subnet (`10.0.0.0/24`) or an address on one (`10.0.0.5/24`).
public struct IPPrefix: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let address: IPAddress
    public let length: UInt8

    /// A prefix; nil when the length exceeds the family's width.
    public init?(_ address: IPAddress, length: UInt8) {
        guard length <= address.family.bitWidth else { return nil }
        self.address = address
        self.length = length
    }

    /// Parses `ADDR/LEN` or a bare address (full length).
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(parts[0]) else { return nil }
        var length = address.family.bitWidth
        if parts.count == 2 {
            // Decimal without leading zeros: iproute2 reads "/010" as octal.
            guard !parts[1].isEmpty, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), parts[1].count <= 3,
                parts[1].count == 1 || parts[1].first != "0", let l = UInt8(parts[1])
            else { return nil }
            length = l
        }
        self.init(address, length: length)
    }

    /// The default route's destination: `0.0.0.0/0` or `::/0`.
    public static func any(_ family: AddressFamily) -> IPPrefix {
        IPPrefix(family == .inet ? IPAddress(v4: 0) : IPAddress(v6: 0, 0), length: 0)!
    }

    /// A full-length prefix holding one address (`/32`, `/128`).
    public static func host(_ address: IPAddress) -> IPPrefix {
        IPPrefix(address, length: address.family.bitWidth)!
    }

    public var family: AddressFamily { address.family }
    /// The subnet this prefix lies in, host bits cleared.
    public var network: IPPrefix { IPPrefix(address.masked(to: length), length: length)! }
    public var isDefault: Bool { length == 0 }
    public var isHost: Bool { length == family.bitWidth }

    /// True when `other` lies inside this prefix.
    public func contains(_ other: IPAddress) -> Bool {
        other.family == family && other.masked(to: length) == address.masked(to: length)
    }

    /// True when every address of `other` lies inside this prefix.
    public func contains(_ other: IPPrefix) -> Bool {
        other.length >= length && contains(other.address)
    }

    /// `ip`'s spelling: `default` for the zero-length prefix, the bare address for a host prefix.
    public var ipSpelling: String {
        if isDefault { return "default" }
        return isHost ? address.description : description
    }

    public var description: String { "\(address)/\(length)" }

    public static func < (a: IPPrefix, b: IPPrefix) -> Bool {
        (a.address, a.length) < (b.address, b.length)
    }
}

/// A link-layer (MAC) address.
public struct MACAddress: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// Parses `aa:bb:cc:dd:ee:ff` (also with `-`), case-insensitive.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == ":" || $0 == "-" })
        guard parts.count == 6 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard p.count == 2, p.allSatisfy({ $0.isASCII && $0.isHexDigit }), let b = UInt8(p, radix: 16) else {
                return nil
            }
            out.append(b)
        }
        bytes = out
    }

    public var description: String {
        bytes.map { b in
            let s = String(b, radix: 16)
            return s.count == 1 ? "0" + s : s
        }.joined(separator: ":")
    }

    public static func < (a: MACAddress, b: MACAddress) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
}

// Hashing: every pass hashes thousands of addresses, prefixes, route keys and rules (80 NICs x
// 50 addresses: ~20,000 per no-op pass), and the synthesized `hash(into:)` feeds the hasher one
// field at a time, a one-byte family or length costing as much as a 64-bit word. These feed it
// whole words; equal values still hash alike (the same fields, or a subset of them).
extension IPAddress {
    public func hash(into hasher: inout Hasher) {
        hasher.combine(high)
        hasher.combine(low ^ UInt64(family.rawValue) << 56)
    }
}

extension IPPrefix {
    public func hash(into hasher: inout Hasher) {
        hasher.combine(address.high)
        // The family in the low word's top byte (an IPv4 address uses the low 32 bits), the
        // length in the byte below it.
        hasher.combine(address.low ^ (UInt64(address.family.rawValue) << 56 | UInt64(length) << 48))
    }
}
