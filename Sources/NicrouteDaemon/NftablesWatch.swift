import CNetlink
import Glibc
import Netlink
import SystemPackage

/// Wakes the daemon when the nftables ruleset changes, so that a tool that deletes nicroute's
/// table (`nft flush ruleset`, a firewalld reload) sees it back within milliseconds.
///
/// An `AF_NETLINK`/`NETLINK_NETFILTER` socket joined to `NFNLGRP_NFTABLES`: the kernel sends
/// every committed nf_tables change there. The messages are not decoded (no parser of
/// untrusted bytes): any datagram, or a lost one (ENOBUFS), means "look again", and the
/// reconcile pass compares the kernel's listing of nicroute's table with what it installed.
/// nicroute's own replacement is announced too; the pass that follows finds the table as
/// installed and changes nothing, so there is no loop.
/// The daemon's event loop watches `descriptor` and calls `drain()` when it is readable.
public final class NftablesWatch {
    public let descriptor: Int32

    /// Opens the socket.
    /// - Throws: `NetlinkError` when the kernel has no nf_tables netlink (then healing falls
    ///   back to the reconcile passes and the periodic check).
    public init() throws {
        func check(_ operation: String, _ rc: Int32) throws {
            if rc < 0 { throw NetlinkError(operation: operation, errno: Errno(rawValue: errno)) }
        }
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_NETFILTER)
        try check("socket(NETLINK_NETFILTER)", fd)
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        do {
            let rc = withUnsafePointer(to: &address) { ptr in
                ptr.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    bind(fd, sa, socklen_t(MemoryLayout<sockaddr_nl>.size))
                }
            }
            try check("bind(NETLINK_NETFILTER)", rc)
            var group = UInt32(NFNLGRP_NFTABLES.rawValue)
            try check(
                "setsockopt(NETLINK_ADD_MEMBERSHIP NFNLGRP_NFTABLES)",
                setsockopt(
                    fd, CNL_SOL_NETLINK, CNL_NETLINK_ADD_MEMBERSHIP, &group, socklen_t(MemoryLayout<UInt32>.size)))
        } catch {
            close(fd)
            throw error
        }
        descriptor = fd
    }

    deinit { close(descriptor) }

    /// Reads every datagram already queued without blocking; true when the ruleset changed (a
    /// datagram, or lost ones). Throws when the socket failed (the periodic check still heals).
    public func drain() throws -> Bool {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var changed = false
        while true {
            let n = retryingInterrupts {
                buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            }
            if n >= 0 {
                changed = true
                continue
            }
            switch errno {
            case ENOBUFS: changed = true
            case EAGAIN: return changed
            default: throw NetlinkError(operation: "recv(NETLINK_NETFILTER)", errno: Errno(rawValue: errno))
            }
        }
    }
}
