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
public final class NftablesWatch: Sendable {
    private let descriptor: Int32

    /// Opens the socket and starts a reader thread that calls `changed` per datagram.
    /// - Throws: `NetlinkError` when the kernel has no nf_tables netlink (then healing falls
    ///   back to the reconcile passes and the periodic check).
    public init(changed: @escaping @Sendable () -> Void) throws {
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
        try DetachedThread.start(name: "nicroute-nft") {
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if n < 0 {
                    let e = errno
                    if e == EINTR { continue }
                    if e == ENOBUFS {
                        changed()
                        continue
                    }
                    return  // closed or failed: the periodic check still heals
                }
                changed()
            }
        }
    }
}
