import CNetlink
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// An `AF_NETLINK`/`NETLINK_ROUTE` socket: open, bind, send and receive datagrams.
///
/// Not thread-safe by itself; `RouteNetlink` and `RouteEventReader` each own one and
/// serialize its use.
public final class NetlinkSocket: @unchecked Sendable {
    public let descriptor: Int32
    /// The port id the kernel gave the socket at bind (`nl_pid`).
    public let portID: UInt32
    private var buffer: [UInt8]

    /// Opens and binds a socket, joins `groups` (`RTNLGRP_*`), and asks for extended acks.
    ///
    /// - Parameter networkNamespace: a path such as `/run/netns/NAME`; the socket is created in
    ///   that namespace (the calling thread enters it for the `socket(2)` call only) and stays
    ///   bound to it.
    /// - Throws: `NetlinkError` naming the failing call.
    public init(groups: [UInt32] = [], networkNamespace: String? = nil, receiveBufferSize: Int? = nil) throws {
        let fd: Int32
        if let path = networkNamespace {
            fd = try Self.inNamespace(path) {
                try syscall("socket(AF_NETLINK)") {
                    socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_ROUTE)
                }
            }
        } else {
            fd = try syscall("socket(AF_NETLINK)") {
                socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_ROUTE)
            }
        }
        do {
            var one: Int32 = 1
            let intSize = socklen_t(MemoryLayout<Int32>.size)
            // Extended acks carry the kernel's reason with an error; capped acks keep them short.
            _ = setsockopt(fd, CNL_SOL_NETLINK, CNL_NETLINK_EXT_ACK, &one, intSize)
            _ = setsockopt(fd, CNL_SOL_NETLINK, CNL_NETLINK_CAP_ACK, &one, intSize)
            if var size = receiveBufferSize.map(Int32.init) {
                // SO_RCVBUFFORCE needs CAP_NET_ADMIN; fall back to the capped SO_RCVBUF.
                if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, intSize) != 0 {
                    try syscall("setsockopt(SO_RCVBUF)") { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, intSize) }
                }
            }
            var address = sockaddr_nl()
            address.nl_family = sa_family_t(AF_NETLINK)
            _ = try withUnsafePointer(to: &address) { ptr in
                try ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    try syscall("bind(AF_NETLINK)") { bind(fd, sa, socklen_t(MemoryLayout<sockaddr_nl>.size)) }
                }
            }
            var bound = sockaddr_nl()
            var length = socklen_t(MemoryLayout<sockaddr_nl>.size)
            _ = try withUnsafeMutablePointer(to: &bound) { ptr in
                try ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    try syscall("getsockname(AF_NETLINK)") { getsockname(fd, sa, &length) }
                }
            }
            for group in groups {
                var g = group
                try syscall("setsockopt(NETLINK_ADD_MEMBERSHIP \(group))") {
                    setsockopt(
                        fd, CNL_SOL_NETLINK, CNL_NETLINK_ADD_MEMBERSHIP, &g, socklen_t(MemoryLayout<UInt32>.size))
                }
            }
            portID = bound.nl_pid
        } catch {
            close(fd)
            throw error
        }
        descriptor = fd
        buffer = [UInt8](repeating: 0, count: 64 * 1024)
    }

    deinit { close(descriptor) }

    /// Runs `body` with the calling thread inside the network namespace at `path`, then returns
    /// the thread to the namespace it was in.
    static func inNamespace<T>(_ path: String, _ body: () throws -> T) throws -> T {
        let original = try syscall("open(/proc/thread-self/ns/net)") {
            open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        }
        defer { close(original) }
        let target = try syscall("open(\(path))") { open(path, O_RDONLY | O_CLOEXEC) }
        defer { close(target) }
        try syscall("setns(\(path))") { cnl_setns(target, CNL_CLONE_NEWNET) }
        defer { _ = cnl_setns(original, CNL_CLONE_NEWNET) }
        return try body()
    }

    /// Sends one datagram to the kernel.
    public func send(_ bytes: [UInt8]) throws {
        var kernel = sockaddr_nl()
        kernel.nl_family = sa_family_t(AF_NETLINK)
        let sent = try bytes.withUnsafeBytes { raw in
            try withUnsafePointer(to: &kernel) { ptr in
                try ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    try syscall("sendto(AF_NETLINK)") {
                        sendto(descriptor, raw.baseAddress, raw.count, 0, sa, socklen_t(MemoryLayout<sockaddr_nl>.size))
                    }
                }
            }
        }
        guard sent == bytes.count else {
            throw NetlinkError(operation: "sendto(AF_NETLINK): short write", errno: .messageTooLong)
        }
    }

    /// Receives one datagram, blocking. Throws ENOBUFS when the kernel dropped messages for this socket (its receive queue
    /// overran), and EMSGSIZE when a datagram did not fit the buffer.
    public func receive() throws -> [UInt8] { try receive(nonBlocking: false) }

    /// `receive()`, or EAGAIN at once when no datagram is queued (`nonBlocking`).
    public func receive(nonBlocking: Bool) throws -> [UInt8] {
        var source = sockaddr_nl()
        let count: Int = try buffer.withUnsafeMutableBytes { raw in
            var iov = iovec(iov_base: raw.baseAddress, iov_len: raw.count)
            return try withUnsafeMutablePointer(to: &source) { src in
                try withUnsafeMutablePointer(to: &iov) { iovPtr in
                    var msg = msghdr()
                    msg.msg_name = UnsafeMutableRawPointer(src)
                    msg.msg_namelen = socklen_t(MemoryLayout<sockaddr_nl>.size)
                    msg.msg_iov = iovPtr
                    msg.msg_iovlen = 1
                    let n = try syscall("recvmsg(AF_NETLINK)") {
                        recvmsg(descriptor, &msg, nonBlocking ? Int32(MSG_DONTWAIT) : 0)
                    }
                    if msg.msg_flags & Int32(MSG_TRUNC) != 0 {
                        throw NetlinkError(operation: "recvmsg(AF_NETLINK): datagram truncated", errno: .messageTooLong)
                    }
                    return n
                }
            }
        }
        // Only the kernel (port 0) may speak to us; anything else is dropped.
        guard source.nl_pid == 0 else { return [] }
        return Array(buffer[0..<count])
    }
}
