import SystemPackage

/// A request the kernel refused, or a socket call that failed.
public struct NetlinkError: Error, CustomStringConvertible, Sendable {
    /// What was being done: "add route", "dump rules", "recvmsg", ...
    public var operation: String
    /// The errno the kernel answered with.
    public var errno: Errno
    /// The kernel's extended-ack message (`NLMSGERR_ATTR_MSG`), when it sent one.
    public var kernelMessage: String?
    /// The object concerned, in `ip` syntax, when there is one.
    public var object: String?

    public init(operation: String, errno: Errno, kernelMessage: String? = nil, object: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.kernelMessage = kernelMessage
        self.object = object
    }

    public var description: String {
        var s = "\(operation)"
        if let object { s += " (\(object))" }
        s += ": \(errno.description) (errno \(errno.rawValue))"
        if let kernelMessage, !kernelMessage.isEmpty { s += ": \(kernelMessage)" }
        return s
    }
}

/// Bytes that are not a well-formed rtnetlink message.
public struct NetlinkDecodingError: Error, CustomStringConvertible, Sendable, Equatable {
    public var reason: String
    public var offset: Int
    public init(_ reason: String, at offset: Int) {
        self.reason = reason
        self.offset = offset
    }
    public var description: String { "malformed netlink message at byte \(offset): \(reason)" }
}

/// A message that would not fit the netlink framing (an attribute over 64 KiB, a message over
/// the buffer limit).
public struct NetlinkEncodingError: Error, CustomStringConvertible, Sendable, Equatable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "cannot encode netlink message: \(reason)" }
}
