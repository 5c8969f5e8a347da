import NicrouteCore

/// The one writer of netlink bytes: header, fixed structs, attributes and nests.
///
/// Alignment (`NLMSG_ALIGN`, `RTA_ALIGN`), the length fields and the bounds live here and
/// nowhere else, after systemd's sd-netlink and wireguard-tools' `mnl_attr_put_check`: a write
/// that would pass `capacity` or overflow an attribute's 16-bit length throws instead.
/// Integers are written in host byte order, as netlink requires.
public struct MessageWriter {
    /// The largest message this writer produces.
    public static let defaultCapacity = 32 * 1024
    /// `NLA_F_NESTED`.
    public static let nestedFlag: UInt16 = 0x8000

    public private(set) var bytes: [UInt8]
    public let capacity: Int

    /// Starts a message with an `nlmsghdr` whose length is filled in by `finish()`.
    public init(type: UInt16, flags: UInt16, sequence: UInt32, portID: UInt32 = 0, capacity: Int = defaultCapacity) {
        self.capacity = capacity
        bytes = []
        bytes.reserveCapacity(128)
        append(UInt32(0))  // nlmsg_len, patched by finish()
        append(type)
        append(flags)
        append(sequence)
        append(portID)
    }

    /// Appends an integer in host byte order, unaligned.
    public mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) }
    }

    /// Appends a fixed C header (`struct rtmsg`, `struct ifinfomsg`, ...) as the kernel lays it
    /// out, padded to 4 bytes. The reader's counterpart is `ByteReader.load(_:at:)`.
    public mutating func append<T: BitwiseCopyable>(header: T) {
        withUnsafeBytes(of: header) { bytes.append(contentsOf: $0) }
        align()
    }

    /// Pads with zeros to the next 4-byte boundary (`NLMSG_ALIGNTO`, `RTA_ALIGNTO`).
    public mutating func align() {
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    private mutating func reserve(_ n: Int) throws {
        guard bytes.count + n <= capacity else {
            throw NetlinkEncodingError("message would exceed \(capacity) bytes")
        }
    }

    /// Appends an attribute (`struct rtattr` + payload + padding).
    public mutating func attribute(_ type: UInt16, bytes payload: some Collection<UInt8>) throws {
        let length = 4 + payload.count
        guard length <= Int(UInt16.max) else {
            throw NetlinkEncodingError("attribute \(type) payload of \(payload.count) bytes exceeds 65531")
        }
        try reserve((length + 3) & ~3)
        append(UInt16(length))
        append(type)
        bytes.append(contentsOf: payload)
        align()
    }

    public mutating func attribute(_ type: UInt16, u8 value: UInt8) throws {
        try attribute(type, bytes: CollectionOfOne(value))
    }
    public mutating func attribute(_ type: UInt16, u32 value: UInt32) throws {
        try attribute(type, bytes: withUnsafeBytes(of: value) { Array($0) })
    }
    public mutating func attribute(_ type: UInt16, i32 value: Int32) throws {
        try attribute(type, bytes: withUnsafeBytes(of: value) { Array($0) })
    }
    /// A NUL-terminated string attribute, as `IFLA_IFNAME` and `FRA_IIFNAME` expect.
    public mutating func attribute(_ type: UInt16, string value: String) throws {
        try attribute(type, bytes: Array(value.utf8) + [0])
    }
    /// An address in network byte order (4 or 16 bytes).
    public mutating func attribute(_ type: UInt16, address value: IPAddress) throws {
        try attribute(type, bytes: value.bytes)
    }

    /// Appends a nested attribute whose payload `body` writes.
    /// - Parameter flagged: sets `NLA_F_NESTED`; false for the older nests that the kernel and
    ///   iproute2 write without it (`RTA_MULTIPATH`).
    public mutating func nested(
        _ type: UInt16, flagged: Bool = true, _ body: (inout MessageWriter) throws -> Void
    ) throws {
        try reserve(4)
        let start = bytes.count
        append(UInt16(0))
        append(flagged ? type | Self.nestedFlag : type)
        try body(&self)
        let length = bytes.count - start
        guard length <= Int(UInt16.max) else { throw NetlinkEncodingError("nested attribute \(type) too long") }
        withUnsafeBytes(of: UInt16(length)) { bytes.replaceSubrange(start..<start + 2, with: $0) }
        align()
    }

    /// Appends a record that starts with its own 16-bit length and is not an attribute, such as
    /// a `struct rtnexthop` and the attributes after it: `body` writes the header (length 0,
    /// `headerSize` bytes, checked against the capacity here) and the rest; the length is then
    /// filled in and the record padded (`RTNH_ALIGN`).
    public mutating func record(headerSize: Int, _ body: (inout MessageWriter) throws -> Void) throws {
        try reserve(headerSize)
        let start = bytes.count
        try body(&self)
        let length = bytes.count - start
        guard length >= 2, length <= Int(UInt16.max) else { throw NetlinkEncodingError("record of \(length) bytes") }
        withUnsafeBytes(of: UInt16(length)) { bytes.replaceSubrange(start..<start + 2, with: $0) }
        try reserve((4 - length % 4) % 4)
        align()
    }

    /// The finished message, with `nlmsg_len` filled in.
    public func finish() -> [UInt8] {
        var out = bytes
        withUnsafeBytes(of: UInt32(out.count)) { out.replaceSubrange(0..<4, with: $0) }
        return out
    }
}
