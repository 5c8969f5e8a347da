import Netlink
import NicrouteCore

extension RouteNetlink {
    /// A full picture of what the planner reads: links, addresses, routes (of every table; of
    /// `local`, only the local-type routes that are not the kernel's own, which may be a NIC's
    /// sources: the kernel's one route per local and broadcast address is skipped undecoded) and
    /// rules of both families, and the neighbour caches. Each
    /// dump retries itself when interrupted. Every call reads everything from the kernel; a dump
    /// whose bytes are those of the previous call is not decoded again (`remember`).
    /// - Parameter addresses: the addresses, when the caller has just read them.
    /// - Throws: `NetlinkError` when a dump fails.
    public func snapshot(
        includeNeighbors: Bool = true, addresses: [InterfaceAddress]? = nil
    ) throws
        -> KernelSnapshot
    {
        KernelSnapshot(
            links: try links(),
            addresses: try addresses ?? self.addresses(remember: true),
            // Both families in one dump each (AF_UNSPEC: the kernel's IPv4 objects, then IPv6;
            // other families, such as multicast routing's, are not decoded): the remembered
            // result is the snapshot's array itself, not a second copy made by joining two
            // (1.7 MB at 80 NICs x 50 addresses), and one round of dumps instead of two.
            routes: try routes(family: nil, skipLocal: true, keepLocalSources: true, remember: true),
            rules: try rules(family: nil, remember: true),
            neighbors: includeNeighbors ? try neighbors(family: .inet) + neighbors(family: .inet6) : [])
    }
}
