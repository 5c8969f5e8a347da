import NicrouteCore

/// Reads what `Preflight` judges: sysctls under `/proc/sys` and systemd-networkd's settings.
public struct SystemInspector: Sendable {
    /// A prefix for every path (tests point it at a fixture tree); "" in production.
    public var root: String

    public init(root: String = "") { self.root = root }

    public func inputs(for names: [String]) -> Preflight.Inputs {
        var inputs = Preflight.Inputs()
        func sysctl(_ name: String, _ key: String) -> Int? {
            Files.readText(root + "/proc/sys/net/ipv4/conf/\(name)/\(key)").flatMap {
                Int($0.trimmingSpaces)
            }
        }
        for name in names {
            func effective(_ key: String) -> Int { max(sysctl("all", key) ?? 0, sysctl(name, key) ?? 0) }
            inputs.rpFilter[name] = effective("rp_filter")
            inputs.arpIgnore[name] = effective("arp_ignore")
            inputs.arpAnnounce[name] = effective("arp_announce")
        }
        // systemd-networkd, when it runs, removes foreign rules and routes unless told not to.
        if networkdRuns {
            let settings = networkdSettings()
            inputs.networkdManagesForeignRules = settings["ManageForeignRoutingPolicyRules"].map(Self.isTrue) ?? true
            inputs.networkdManagesForeignRoutes = settings["ManageForeignRoutes"].map(Self.isTrue) ?? true
        }
        return inputs
    }

    /// True when a systemd-networkd process runs (its comm is truncated to 15 characters).
    var networkdRuns: Bool {
        Files.list(root + "/proc").lazy.filter { $0.first?.isNumber ?? false }.contains { pid in
            Files.readText(root + "/proc/\(pid)/comm")?.trimmingSpaces == "systemd-network"
        }
    }

    /// `[Network]` keys of networkd.conf and its drop-ins, later files winning (systemd's order:
    /// drop-in directories merged by file name, /etc over /run over /usr/lib).
    func networkdSettings() -> [String: String] {
        var files = [root + "/etc/systemd/networkd.conf"]
        var dropIns: [String: String] = [:]
        for dir in ["/usr/lib/systemd/networkd.conf.d", "/run/systemd/networkd.conf.d", "/etc/systemd/networkd.conf.d"]
        {
            for name in Files.list(root + dir) where name.hasSuffix(".conf") { dropIns[name] = root + dir + "/" + name }
        }
        files += dropIns.keys.sorted().compactMap { dropIns[$0] }
        var out: [String: String] = [:]
        for file in files {
            guard let text = Files.readText(file) else { continue }
            var section = ""
            for raw in text.split(separator: "\n") {
                let line = raw.trimmingSpaces
                if line.hasPrefix("[") { section = line }
                guard section == "[Network]", let eq = line.firstIndex(of: "=") else { continue }
                out[String(line[..<eq]).trimmingSpaces] = String(line[line.index(after: eq)...]).trimmingSpaces
            }
        }
        return out
    }

    static func isTrue(_ value: String) -> Bool { ["yes", "true", "on", "1"].contains(value.lowercased()) }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let c = s.first, c == " " || c == "\t" || c == "\n" || c == "\r" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\n" || c == "\r" { s.removeLast() }
        return String(s)
    }
}
