import Netlink
import NicrouteCore

extension RouteNetlink {
    /// A full picture of what the planner reads: links, addresses, routes (of every table but
    /// `local`, which nothing reads) and rules of both families, and the neighbour caches. Each
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
            routes: try routes(family: .inet, skipLocal: true, remember: true)
                + routes(family: .inet6, skipLocal: true, remember: true),
            rules: try rules(family: .inet, remember: true) + rules(family: .inet6, remember: true),
            neighbors: includeNeighbors ? try neighbors(family: .inet) + neighbors(family: .inet6) : [])
    }
}
