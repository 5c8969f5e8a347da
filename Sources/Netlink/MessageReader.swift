import CNetlink
import NicrouteCore

/// The one reader of netlink bytes: every access is bounds-checked and throws
/// `NetlinkDecodingError` instead of trapping.
public struct ByteReader: Sendable {
    public let bytes: [UInt8]
    /// The readable window of `bytes`.
    public let range: Range<Int>

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        range = bytes.startIndex..<bytes.endIndex
    }
    public init(_ bytes: [UInt8], range: Range<Int>) {
        self.bytes = bytes
        self.range = range
    }

    public var count: Int { range.count }

    /// An integer in host byte order at `offset` from the window's start.
    public func read<T: FixedWidthInteger>(_: T.Type, at offset: Int) throws -> T {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset + size <= range.count else {
            throw NetlinkDecodingError(
                "\(size)-byte field past the end (\(range.count) bytes)", at: range.lowerBound + offset)
        }
        return bytes.withUnsafeBytes { raw in
            raw.loadUnaligned(fromByteOffset: range.lowerBound + offset, as: T.self)
        }
    }

    /// A fixed C header (`struct rtnexthop`, `struct rtvia`, ...) at `offset`, copied out of the
    /// bytes as the kernel laid it out; throws when the window is shorter than the struct.
    public func load<T: BitwiseCopyable>(_: T.Type, at offset: Int = 0) throws -> T {
        let size = MemoryLayout<T>.size
        guard offset >= 0, offset + size <= range.count else {
            throw NetlinkDecodingError(
                "\(size)-byte \(T.self) past the end (\(range.count) bytes)", at: range.lowerBound + offset)
        }
        return bytes.withUnsafeBytes { raw in
            raw.loadUnaligned(fromByteOffset: range.lowerBound + offset, as: T.self)
        }
    }

    /// A sub-window of `length` bytes at `offset`.
    public func window(at offset: Int, length: Int) throws -> ByteReader {
        guard offset >= 0, length >= 0, offset + length <= range.count else {
            throw NetlinkDecodingError(
                "\(length) bytes at \(offset) past the end (\(range.count) bytes)", at: range.lowerBound + offset)
        }
        return ByteReader(bytes, range: (range.lowerBound + offset)..<(range.lowerBound + offset + length))
    }

    /// The window's bytes.
    public var slice: ArraySlice<UInt8> { bytes[range] }

    /// The window as a NUL-terminated (or unterminated) UTF-8 string.
    public func string() -> String {
        let s = slice
        let end = s.firstIndex(of: 0) ?? s.endIndex
        return String(decoding: s[s.startIndex..<end], as: UTF8.self)
    }

    /// The window as an IPv4 or IPv6 address; throws for any other length.
    public func address() throws -> IPAddress {
        // Read as big-endian words: no generic byte loop for the thousands of addresses of a dump.
        switch count {
        case 4: return IPAddress(v4: UInt32(bigEndian: try read(UInt32.self, at: 0)))
        case 16:
            return IPAddress(
                v6: UInt64(bigEndian: try read(UInt64.self, at: 0)), UInt64(bigEndian: try read(UInt64.self, at: 8)))
        default: throw NetlinkDecodingError("address of \(count) bytes", at: range.lowerBound)
        }
    }

    /// The window as a MAC address (6 bytes), nil for other hardware address lengths.
    public func mac() -> MACAddress? { count == 6 ? MACAddress(bytes: Array(slice)) : nil }

    public func u8() throws -> UInt8 { try read(UInt8.self, at: 0) }
    public func u32() throws -> UInt32 {
        guard count >= 4 else { throw NetlinkDecodingError("u32 attribute of \(count) bytes", at: range.lowerBound) }
        return try read(UInt32.self, at: 0)
    }
    public func i32() throws -> Int32 { Int32(bitPattern: try u32()) }
}

/// The attributes of a message or a nest, by type. The last occurrence of a type wins.
public struct Attributes: Sendable {
    /// `NLA_TYPE_MASK`: the type without `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER`.
    public static let typeMask: UInt16 = 0x3fff
    /// The attributes in message order. A message holds a dozen at most, so a linear search
    /// beats hashing (this runs for every object of every dump).
    private var entries: [(type: UInt16, value: ByteReader)] = []

    /// Parses a run of `struct rtattr`s filling `reader`'s window.
    public init(_ reader: ByteReader) throws {
        var offset = 0
        entries.reserveCapacity(16)
        while offset + 4 <= reader.count {
            let length = Int(try reader.read(UInt16.self, at: offset))
            let type = try reader.read(UInt16.self, at: offset + 2) & Self.typeMask
            guard length >= 4 else {
                throw NetlinkDecodingError("attribute length \(length) < 4", at: reader.range.lowerBound + offset)
            }
            guard offset + length <= reader.count else {
                throw NetlinkDecodingError(
                    "attribute of \(length) bytes overruns its container", at: reader.range.lowerBound + offset)
            }
            entries.append((type, try reader.window(at: offset + 4, length: length - 4)))
            offset += (length + 3) & ~3
        }
        // Trailing bytes shorter than a header are padding only if they are within alignment.
        guard reader.count - min(offset, reader.count) < 4 else {
            throw NetlinkDecodingError("trailing garbage", at: reader.range.lowerBound + offset)
        }
    }

    public subscript(type: UInt16) -> ByteReader? { entries.last(where: { $0.type == type })?.value }
    public subscript<T: BinaryInteger>(type: T) -> ByteReader? { self[UInt16(truncatingIfNeeded: type)] }
}

/// The fixed `struct nlmsghdr`.
public struct NetlinkHeader: Hashable, Sendable {
    public static let size = MemoryLayout<nlmsghdr>.size
    /// `nlmsg_len`.
    public var length: UInt32
    /// `nlmsg_type`.
    public var type: UInt16
    /// `nlmsg_flags`.
    public var flags: UInt16
    /// `nlmsg_seq`.
    public var sequence: UInt32
    /// `nlmsg_pid`.
    public var portID: UInt32
}

/// One netlink message: its header and the payload after it.
public struct NetlinkMessage: Sendable {
    public var header: NetlinkHeader
    public var payload: ByteReader

    /// Splits a datagram into its messages; throws on a length that under- or overruns.
    public static func split(_ bytes: [UInt8]) throws -> [NetlinkMessage] {
        let all = ByteReader(bytes)
        var out: [NetlinkMessage] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= NetlinkHeader.size else {
                throw NetlinkDecodingError("\(bytes.count - offset) bytes left, less than a header", at: offset)
            }
            let length = Int(try all.read(UInt32.self, at: offset))  // nlmsg_len
            guard length >= NetlinkHeader.size, length <= bytes.count - offset else {
                throw NetlinkDecodingError("nlmsg_len \(length) with \(bytes.count - offset) bytes left", at: offset)
            }
            let h = try all.load(nlmsghdr.self, at: offset)
            let header = NetlinkHeader(
                length: h.nlmsg_len, type: h.nlmsg_type, flags: h.nlmsg_flags, sequence: h.nlmsg_seq,
                portID: h.nlmsg_pid)
            out.append(
                NetlinkMessage(
                    header: header,
                    payload: try all.window(at: offset + NetlinkHeader.size, length: length - NetlinkHeader.size)))
            offset += (length + 3) & ~3
        }
        return out
    }
}
