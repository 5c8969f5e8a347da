import NicrouteCore

/// Collects gateway candidates for each NIC from the files other tools leave behind, in
/// SPEC.md's order: DHCP leases of systemd-networkd, dhclient, NetworkManager and dhcpcd, then
/// OpenStack's `network_data.json`. File parsing is NicrouteCore's `LeaseParser`.
public struct GatewayHintCollector: Sendable {
    /// A prefix for every path (tests point it at a fixture tree); "" in production.
    public var root: String
    public var networkDataPaths: [String]

    public init(root: String = "", networkDataPaths: [String]) {
        self.root = root
        self.networkDataPaths = networkDataPaths
    }

    /// Hints per link index, best first.
    public func hints(for links: [Link]) -> [Int32: [GatewayHint]] {
        let networkData = loadNetworkData()
        var out: [Int32: [GatewayHint]] = [:]
        for link in links {
            var hints: [GatewayHint] = []
            func add(_ g: IPAddress?, _ source: GatewaySource) {
                if let g { hints.append(GatewayHint(gateway: g, source: source)) }
            }
            add(
                Files.readText(root + "/run/systemd/netif/leases/\(link.index)").flatMap(LeaseParser.networkd),
                .networkd)
            add(dhclient(link.name), .dhclient)
            add(networkManager(link.name), .networkManager)
            add(dhcpcd(link.name), .dhcpcd)
            if let mac = link.mac, let gw = networkData[mac] {
                add(gw.ipv4, .networkData)
                add(gw.ipv6, .networkData)
            }
            if !hints.isEmpty { out[link.index] = hints }
        }
        return out
    }

    private func dhclient(_ name: String) -> IPAddress? {
        for dir in ["/var/lib/dhcp", "/var/lib/dhclient"] {
            // Interface-specific files first, then shared ones; the newest lease block wins inside.
            let files = Files.list(root + dir).filter { $0.hasSuffix(".leases") || $0.hasSuffix(".lease") }
            for file in files.filter({ $0.contains(name) }) + files.filter({ !$0.contains(name) }) {
                if let text = Files.readText(root + dir + "/" + file),
                    let g = LeaseParser.dhclient(text, interface: name)
                {
                    return g
                }
            }
        }
        return nil
    }

    private func networkManager(_ name: String) -> IPAddress? {
        let dir = root + "/var/lib/NetworkManager"
        for file in Files.list(dir) where file.hasSuffix("-\(name).lease") {
            guard let text = Files.readText(dir + "/" + file) else { continue }
            let g =
                file.hasPrefix("dhclient-") ? LeaseParser.dhclient(text, interface: name) : LeaseParser.networkd(text)
            if let g { return g }
        }
        return nil
    }

    private func dhcpcd(_ name: String) -> IPAddress? {
        for path in [
            "/var/lib/dhcpcd/\(name).lease", "/var/lib/dhcpcd/dhcpcd-\(name).lease",
            "/var/lib/dhcpcd5/dhcpcd-\(name).lease",
        ] {
            if let bytes = Files.read(root + path), let g = LeaseParser.dhcpcd(bytes) { return g }
        }
        return nil
    }

    private func loadNetworkData() -> [MACAddress: NetworkDataGateways] {
        for path in networkDataPaths {
            if let text = Files.readText(root + path) { return LeaseParser.networkData(text) }
        }
        return [:]
    }
}
