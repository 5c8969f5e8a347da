import Netlink
import NicrouteCore

/// Asks the kernel, for each managed address, where a reply goes and whether a request arriving
/// on its NIC is accepted (`nicroutectl check`); `RouteCheck` judges the answers. Read-only:
/// route lookups and dumps need no privilege.
public struct RouteChecker {
    public let client: RouteNetlink
    public var inspector: SystemInspector

    /// The outside destination per family when none is given: documentation addresses
    /// (RFC 5737, RFC 3849), which no network routes specially.
    public static let defaultDestinations: [AddressFamily: IPAddress] = [
        .inet: IPAddress("192.0.2.1")!, .inet6: IPAddress("2001:db8::1")!,
    ]

    public init(client: RouteNetlink, inspector: SystemInspector = SystemInspector()) {
        self.client = client
        self.inspector = inspector
    }

    /// Checks `addresses` (nil: every address `report` manages, and one address inside each of
    /// its NICs' local-route sources) against `destinations` (per family; missing families use
    /// `defaultDestinations`). An address of a configured source prefix is checked only when
    /// named, and only its reply (it need not be local).
    /// - Throws: `NetlinkError` when the kernel cannot be read.
    public func check(
        report: StatusReport, addresses: [IPAddress]? = nil, destinations: [AddressFamily: IPAddress] = [:]
    ) throws -> [RouteCheck.Verdict] {
        let snapshot = try client.snapshot(includeNeighbors: false)
        let names = Dictionary(snapshot.links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        let rpFilter = inspector.inputs(for: report.nics.map(\.name)).rpFilter
        // (address, its NIC, whether the kernel delivers it here: a request is asked for then)
        var targets: [(IPAddress, StatusReport.NIC?, Bool)] = []
        if let addresses {
            for a in addresses {
                if let n = report.nics.first(where: { $0.addresses.contains { $0.address == a } }) {
                    targets.append((a, n, true))
                } else if let (n, s) = report.nics.lazy.compactMap({ n in
                    n.sources.first { $0.prefix.contains(a) }.map { (n, $0) }
                }).first {
                    targets.append((a, n, s.isLocal))
                } else {
                    targets.append((a, nil, true))
                }
            }
        } else {
            for n in report.nics {
                for p in n.addresses { targets.append((p.address, n, true)) }
                for s in n.sources where s.isLocal { targets.append((Self.representative(s.prefix), n, true)) }
            }
        }
        return try targets.map { address, nic, local in
            let destination = destinations[address.family] ?? Self.defaultDestinations[address.family]!
            guard let nic else {
                let index = snapshot.addresses.first { $0.address == address }?.linkIndex
                let link = index.flatMap { names[$0] }
                return RouteCheck.judge(
                    RouteCheck.Evidence(
                        address: address, destination: destination, nic: nil, unmanagedLink: link,
                        unmanagedReason: report.excluded.first { $0.index == index }?.reason),
                    linkName: { names[$0] })
            }
            let n = RouteCheck.NIC(
                name: nic.name, index: nic.index, table: nic.table, priority: nic.priority,
                gateway: nic.gateways.first { $0.family == address.family }?.address)
            let evidence = RouteCheck.Evidence(
                address: address, destination: destination, nic: n,
                reply: try answer(RouteQuery(destination: destination, source: address)),
                request: local
                    ? try answer(RouteQuery(destination: address, source: destination, inputInterface: nic.index))
                    : nil,
                rules: snapshot.rules.filter { $0.family == address.family },
                tableRoutes: snapshot.routes.filter { $0.table == nic.table && $0.family == address.family },
                rpFilter: address.family == .inet ? rpFilter[nic.name] : nil)
            return RouteCheck.judge(evidence, linkName: { names[$0] })
        }
    }

    /// The address checked for a source prefix: the host of a host prefix, else the first after
    /// the network's own address (inside the prefix, and no subnet-router anycast).
    static func representative(_ p: IPPrefix) -> IPAddress {
        p.isHost ? p.address : p.network.address.adding(1)
    }

    /// One lookup; the kernel's refusals are answers, a broken socket is an error.
    private func answer(_ query: RouteQuery) throws -> RouteCheck.Answer {
        do { return .route(try client.lookup(query)) } catch let e as NetlinkError where e.operation == "route lookup" {
            return .failed(errno: e.errno.rawValue, message: e.kernelMessage ?? e.errno.description)
        }
    }
}
