import NicrouteCore

#if canImport(Glibc)
import Glibc
#endif

/// Collects gateway candidates for each NIC from the files other tools leave behind, in
/// docs/design.md's order (Gateway discovery): DHCP leases of systemd-networkd, dhclient, NetworkManager and dhcpcd, then
/// OpenStack's network data (what cloud-init kept of it, or a mounted config drive's
/// `network_data.json`). File parsing is NicrouteCore's `LeaseParser`.
///
/// NetworkManager's lease is read from its lease files (dhclient's, older internal clients'),
/// else from its D-Bus API (`NetworkManagerBus`), asked only while NetworkManager runs (its
/// runtime directory /run/NetworkManager exists) and only for NICs the main table gives no
/// IPv4 default route: the planner prefers that route anyway, so no pass waits on the bus for
/// nothing.
public struct GatewayHintCollector {
    /// A prefix for every path (tests point it at a fixture tree); "" in production.
    public var root: String
    public var networkDataPaths: [String]
    /// The D-Bus address where NetworkManager is asked; nil for the system bus.
    public var networkManagerBus: String?
    /// What the network data files held when last read, kept between calls by the caller.
    public var networkDataCache: NetworkDataCache?
    /// When NetworkManager last hung on the bus, kept between calls by the caller.
    public var networkManagerSilence: NetworkManagerSilence?

    public init(
        root: String = "", networkDataPaths: [String], networkManagerBus: String? = nil,
        networkDataCache: NetworkDataCache? = nil, networkManagerSilence: NetworkManagerSilence? = nil
    ) {
        self.root = root
        self.networkDataPaths = networkDataPaths
        self.networkManagerBus = networkManagerBus
        self.networkDataCache = networkDataCache
        self.networkManagerSilence = networkManagerSilence
    }

    /// Hints per link index, best first.
    /// - Parameters:
    ///   - routes: the kernel's routes (the main table's IPv4 default routes spare the
    ///     NetworkManager question for their NICs; looked at only while NetworkManager runs).
    ///   - problem: told of a file that exists but cannot be read as what it should be
    ///     (OpenStack network data: the path, key and what is wrong); the other sources still count.
    ///   - now: monotonic seconds (for `networkManagerSilence`'s back-off); nil: the clock's.
    public func hints(
        for links: [Link], mainRoutes routes: [Route] = [], now: Double? = nil,
        problem: (String) -> Void = { _ in }
    ) -> [Int32: [GatewayHint]] {
        let now = now ?? monotonicSeconds()
        guard !links.isEmpty else { return [:] }
        let networkData = loadNetworkData(problem: problem)
        let networkManagerRuns = Files.exists(root + "/run/NetworkManager")
        var withDefault = Set<Int32>()
        if networkManagerRuns {
            for r in routes
            where r.table == RoutingTable.main && r.family == .inet && r.destination.isDefault && r.type == .unicast {
                for path in r.paths where path.gateway != nil { withDefault.insert(path.outputInterface) }
            }
        }
        // One connection for all NICs of this call, opened at the first NIC that needs it; none
        // after a call had no answer (in this call, or while the silence's back-off lasts).
        var bus: NetworkManagerBus??
        var mayAsk = networkManagerSilence?.mayAsk(now: now) ?? true
        var unasked: [String] = []
        defer {
            if case .some(.some(let b)) = bus { b.close() }
            if networkManagerRuns {
                let timedOut: Bool = if case .some(.some(let b)) = bus { b.timedOut } else { false }
                networkManagerSilence?.record(timedOut: timedOut, unasked: unasked, now: now)
            }
        }
        func networkManagerOverBus(_ link: Link) -> IPAddress? {
            guard networkManagerRuns, !withDefault.contains(link.index) else { return nil }
            guard mayAsk else {
                unasked.append(link.name)
                return nil
            }
            if bus == nil { bus = .some(NetworkManagerBus(address: networkManagerBus)) }
            guard case .some(.some(let b)) = bus else { return nil }
            let options = b.dhcp4Options(interface: link.name)
            if b.timedOut {
                mayAsk = false
                unasked.append(link.name)
            }
            return options.flatMap(LeaseParser.networkManagerDHCP4)
        }
        // Each lease directory is listed once per call, not once per NIC, and only files that
        // exist are opened: on a machine with one DHCP client most directories are absent.
        let dirs = Directories(root: root)
        var out: [Int32: [GatewayHint]] = [:]
        for link in links {
            var hints: [GatewayHint] = []
            func add(_ g: IPAddress?, _ source: GatewaySource) {
                if let g { hints.append(GatewayHint(gateway: g, source: source)) }
            }
            let networkd = "/run/systemd/netif/leases/\(link.index)"
            if dirs.mayExist(networkd) {
                add(Files.readText(root + networkd).flatMap(LeaseParser.networkd), .networkd)
            }
            add(dhclient(link.name, dirs), .dhclient)
            add(networkManager(link.name, dirs) ?? networkManagerOverBus(link), .networkManager)
            add(dhcpcd(link.name, dirs), .dhcpcd)
            if let mac = link.mac, let gw = networkData[mac] {
                add(gw.ipv4, .networkData)
                add(gw.ipv6, .networkData)
            }
            if !hints.isEmpty { out[link.index] = hints }
        }
        return out
    }

    /// The lease directories' listings, read once per `hints(for:)`.
    struct Directories {
        /// Directory -> its names; nil when it exists but cannot be listed.
        var listings: [String: Set<String>?] = [:]
        var sorted: [String: [String]] = [:]

        init(root: String) {
            for dir in [
                "/run/systemd/netif/leases", "/var/lib/dhcp", "/var/lib/dhclient", "/var/lib/NetworkManager",
                "/var/lib/dhcpcd", "/var/lib/dhcpcd5",
            ] {
                let names = Files.listing(root + dir)
                listings[dir] = names.map(Set.init)
                sorted[dir] = names ?? []
            }
        }

        /// False when `path`'s directory was listed and does not hold it.
        func mayExist(_ path: String) -> Bool {
            guard let slash = path.lastIndex(of: "/") else { return true }
            let dir = String(path[..<slash])
            guard let entry = listings[dir], let names = entry else { return true }
            return names.contains(String(path[path.index(after: slash)...]))
        }

        /// The sorted names of a listed directory.
        func names(_ dir: String) -> [String] { sorted[dir] ?? [] }
    }

    private func dhclient(_ name: String, _ dirs: Directories) -> IPAddress? {
        for dir in ["/var/lib/dhcp", "/var/lib/dhclient"] {
            // Interface-specific files first, then shared ones; the newest lease block wins inside.
            let files = dirs.names(dir).filter { $0.hasSuffix(".leases") || $0.hasSuffix(".lease") }
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

    private func networkManager(_ name: String, _ dirs: Directories) -> IPAddress? {
        let dir = root + "/var/lib/NetworkManager"
        for file in dirs.names("/var/lib/NetworkManager") where file.hasSuffix("-\(name).lease") {
            guard let text = Files.readText(dir + "/" + file) else { continue }
            let g =
                file.hasPrefix("dhclient-") ? LeaseParser.dhclient(text, interface: name) : LeaseParser.networkd(text)
            if let g { return g }
        }
        return nil
    }

    private func dhcpcd(_ name: String, _ dirs: Directories) -> IPAddress? {
        for path in [
            "/var/lib/dhcpcd/\(name).lease", "/var/lib/dhcpcd/dhcpcd-\(name).lease",
            "/var/lib/dhcpcd5/dhcpcd-\(name).lease",
        ] where dirs.mayExist(path) {
            if let bytes = Files.read(root + path), let g = LeaseParser.dhcpcd(bytes) { return g }
        }
        return nil
    }

    /// The network data of the first of `networkDataPaths` that holds some (cloud-init's
    /// instance data without OpenStack network data is passed over); an invalid file gives no
    /// gateway, and `problem` hears why. A file that has not changed since the last call (the
    /// same inode, size and modification time) is not read again: cloud-init's instance data
    /// runs to tens of kilobytes on some clouds, and this is asked in every pass.
    private func loadNetworkData(problem: (String) -> Void) -> [MACAddress: NetworkDataGateways] {
        for path in networkDataPaths {
            var st = stat()
            guard stat(root + path, &st) == 0 else { continue }
            let key = NetworkDataCache.Key(
                inode: UInt64(st.st_ino), size: Int64(st.st_size), modified: Int64(st.st_mtim.tv_sec),
                modifiedNanoseconds: Int64(st.st_mtim.tv_nsec))
            let parsed: NetworkDataCache.Parsed
            if let cached = networkDataCache?.entries[path], cached.key == key {
                parsed = cached.parsed
            } else {
                guard let text = Files.readText(root + path) else { continue }
                do {
                    parsed = .gateways(try LeaseParser.openStackNetworkData(text))
                } catch {
                    parsed = .invalid("\(error)")
                }
                networkDataCache?.entries[path] = (key, parsed)
            }
            switch parsed {
            case .gateways(nil): continue
            case .gateways(let gateways?): return gateways
            case .invalid(let why):
                problem("\(path): \(why)")
                return [:]
            }
        }
        return [:]
    }
}

/// What each network data file held when last read, by path, with the file's identity then.
public final class NetworkDataCache {
    struct Key: Equatable {
        var inode: UInt64
        var size: Int64
        var modified: Int64
        var modifiedNanoseconds: Int64
    }

    enum Parsed {
        /// nil: the file holds no network data (another cloud's instance data).
        case gateways([MACAddress: NetworkDataGateways]?)
        case invalid(String)
    }

    var entries: [String: (key: Key, parsed: Parsed)] = [:]

    public init() {}
}
