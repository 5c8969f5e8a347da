/// What `nicroutectl status` shows: per managed NIC its addresses, gateway and where it came
/// from, table, rules and last change; then the preflight findings. Built by the daemon (or by
/// `nicroutectl` itself in one-shot mode), sent as JSON, rendered by the CLI.
public struct StatusReport: Hashable, Sendable {
    public struct Gateway: Hashable, Sendable {
        public var family: AddressFamily
        public var address: IPAddress?
        public var source: GatewaySource?
    }

    /// A source of a NIC besides its addresses (`ExtraSource`).
    public struct Source: Hashable, Sendable {
        public var prefix: IPPrefix
        /// `local-route` or `configuration`.
        public var origin: String
        /// The local route's protocol (`boot`, `66`); nil for a configured prefix.
        public var routeProtocol: String?

        public init(prefix: IPPrefix, origin: String, routeProtocol: String? = nil) {
            self.prefix = prefix
            self.origin = origin
            self.routeProtocol = routeProtocol
        }

        init(_ s: ExtraSource) {
            switch s.origin {
            case .localRoute(let p): self.init(prefix: s.prefix, origin: "local-route", routeProtocol: p.description)
            case .configuration: self.init(prefix: s.prefix, origin: "configuration")
            }
        }

        /// True for a local route's prefix: the kernel delivers its addresses here.
        public var isLocal: Bool { origin == "local-route" }

        /// `10.99.0.0/24 (local route, proto boot)`.
        public var description: String {
            isLocal ? "\(prefix) (local route, proto \(routeProtocol ?? "?"))" : "\(prefix) (\(origin))"
        }
    }

    public struct NIC: Hashable, Sendable {
        public var name: String
        public var index: Int32
        public var mac: MACAddress?
        public var state: String
        public var table: UInt32
        public var priority: UInt32
        public var addresses: [IPPrefix]
        /// Its other sources, each with a rule: local routes and configured prefixes.
        public var sources: [Source] = []
        public var gateways: [Gateway]
        /// nicroute rules in the kernel for this NIC's table, and how many it wants.
        public var rulesInstalled: Int
        public var rulesWanted: Int
        public var routesInstalled: Int
        public var notes: [String]
        public var lastChange: String?
    }

    /// A NIC the configuration would manage that udev keeps away (`NICROUTE_MANAGE=0`, or not
    /// processed by udev yet), and why.
    public struct Excluded: Hashable, Sendable {
        public var name: String
        public var index: Int32
        public var reason: String
        public init(name: String, index: Int32, reason: String) {
            self.name = name
            self.index = index
            self.reason = reason
        }
    }

    public struct Finding: Hashable, Sendable {
        public var severity: String
        public var message: String
        public init(severity: String = "warning", _ message: String) {
            self.severity = severity
            self.message = message
        }
    }

    /// The daemon's one-line STATUS.
    public var summary: String
    /// True when the report comes from a running daemon, false in one-shot mode.
    public var fromDaemon: Bool
    /// True after `flush`: the daemon does nothing until the next reconfigure.
    public var paused: Bool
    public var nics: [NIC]
    /// NICs udev keeps away from nicroute (`KernelSnapshot.deviceHolds`), in index order.
    public var excluded: [Excluded] = []
    /// Changes a reconcile would still make right now (0 when all is in place).
    public var pendingChanges: Int
    /// Re-installs held back because another tool keeps deleting them.
    public var deferred: Int
    public var conflicts: [String]
    public var findings: [Finding]
    /// Forwarded connections (docs/forwarding.md): whether nicroute's nftables table and fwmark rules are
    /// in place, and why not.
    public var forwarding: Forwarding

    public struct Forwarding: Hashable, Sendable {
        /// "installed", "off" or "unavailable".
        public var state: String
        /// Why (for off and unavailable), or what (for installed).
        public var reason: String
        public var mask: UInt32
        /// The marked NICs: name, mark, and whether its fwmark rules are all in the kernel.
        public var marks: [Mark]
        public struct Mark: Hashable, Sendable {
            public var nic: String
            public var mark: UInt32
            public var rulesInstalled: Bool
        }
        public init(state: String, reason: String, mask: UInt32, marks: [Mark] = []) {
            self.state = state
            self.reason = reason
            self.mask = mask
            self.marks = marks
        }
        public static let unknown = Forwarding(state: "off", reason: "not reported", mask: 0)
    }

    public init(
        plan: Plan, snapshot: KernelSnapshot, summary: String, fromDaemon: Bool, paused: Bool = false,
        deferred: Int = 0, lastChanges: [String: String] = [:], findings: [Finding] = [],
        forwarding: (state: String, reason: String, mask: UInt32) = ("off", "not reported", 0)
    ) {
        var marks: [Forwarding.Mark] = []
        for f in plan.forwardMarks ?? [] {
            let wanted = Set(
                plan.nics.first { $0.link.name == f.name }.map { n in
                    AddressFamily.allCases.filter { fam in n.addresses.contains { $0.family == fam } }
                } ?? [])
            let present = Set(
                snapshot.rules.filter {
                    Planner.isOwned($0) && $0.firewallMark == f.mark && $0.firewallMask == forwarding.mask
                        && $0.table == f.table
                }.map(\.family))
            marks.append(.init(nic: f.name, mark: f.mark, rulesInstalled: wanted.isSubset(of: present)))
        }
        self.forwarding = Forwarding(
            state: forwarding.state, reason: forwarding.reason, mask: forwarding.mask, marks: marks)
        self.summary = summary
        self.fromDaemon = fromDaemon
        self.paused = paused
        self.deferred = deferred
        conflicts = plan.conflicts
        self.findings = findings
        pendingChanges = plan.changes.count
        excluded = snapshot.links.sorted { $0.index < $1.index }.compactMap { link in
            snapshot.deviceHolds[link.index].map {
                Excluded(name: link.name, index: link.index, reason: $0.description)
            }
        }
        nics = plan.nics.map { n in
            NIC(
                name: n.link.name, index: n.link.index, mac: n.link.mac, state: n.link.operationalState.description,
                table: n.table, priority: n.priority, addresses: n.addresses.map(\.prefix),
                sources: n.sources.map(Source.init),
                gateways: AddressFamily.allCases.filter { f in n.addresses.contains { $0.family == f } }.map { f in
                    Gateway(family: f, address: n.gateway(f)?.gateway, source: n.gateway(f)?.source)
                },
                rulesInstalled: snapshot.rules.filter { Planner.isOwned($0) && $0.table == n.table }.count,
                rulesWanted: n.addresses.count + n.sources.count
                    + (plan.forwardMarks?.contains { $0.name == n.link.name } == true
                        ? Set(n.addresses.map(\.family)).count : 0),
                routesInstalled: snapshot.routes.filter { Planner.isOwned($0) && $0.table == n.table }.count,
                notes: n.notes, lastChange: lastChanges[n.link.name])
        }
    }

    // MARK: Text

    /// The human form, in the style of `networkctl status`.
    public func rendered() -> String {
        var out: [String] = []
        out.append(fromDaemon ? "nicrouted: \(summary)" : "nicrouted is not running; computed now: \(summary)")
        if paused { out.append("Paused after 'flush': nothing is installed until 'nicroutectl reconfigure'.") }
        if nics.isEmpty { out.append("No managed NICs.") }
        for n in nics {
            out.append("")
            let ok = n.rulesInstalled == n.rulesWanted ? "●" : "○"
            out.append("\(ok) \(n.name) (\(n.mac?.description ?? "no MAC"), \(n.state))")
            out.append("       Table: \(n.table) (\(n.routesInstalled) routes)   Priority: \(n.priority)")
            out.append("       Rules: \(n.rulesInstalled) of \(n.rulesWanted) installed")
            out.append("   Addresses: \(n.addresses.map(\.description).joined(separator: " "))")
            if !n.sources.isEmpty { out.append("     Sources: \(n.sources.map(\.description).joined(separator: " "))") }
            for g in n.gateways {
                let label = g.family == .inet ? "IPv4 gateway" : "IPv6 gateway"
                if let a = g.address {
                    out.append("\(label): \(a) (from \(g.source?.rawValue ?? "unknown"))")
                } else {
                    out.append("\(label): none (subnet routes only)")
                }
            }
            if let m = forwarding.marks.first(where: { $0.nic == n.name }) {
                out.append(
                    "Forward mark: \(ForwardRuleset.hex(m.mark))/\(ForwardRuleset.hex(forwarding.mask)) "
                        + (m.rulesInstalled ? "(fwmark rules installed)" : "(fwmark rules missing)"))
            }
            if let c = n.lastChange { out.append(" Last change: \(c)") }
            for note in n.notes { out.append("        Note: \(note)") }
        }
        if !excluded.isEmpty {
            out.append("")
            for e in excluded { out.append("Not managed: \(e.name): \(e.reason)") }
        }
        out.append("")
        switch forwarding.state {
        case "installed":
            out.append(
                "Forwarded connections: marked by ingress NIC (nftables table inet nicroute, mask \(ForwardRuleset.hex(forwarding.mask)))"
            )
            // In place with a caveat (a src_valid_mark nicroute could not set): said here too.
            if forwarding.reason != "in place" { out.append("  \(forwarding.reason)") }
        case "unavailable": out.append("Forwarded connections: NOT covered: \(forwarding.reason)")
        default: out.append("Forwarded connections: off (\(forwarding.reason))")
        }
        if pendingChanges > 0 {
            out.append("")
            out.append("\(pendingChanges) change(s) pending: see 'nicroutectl plan'.")
        }
        if deferred > 0 {
            out.append("\(deferred) re-install(s) deferred: another tool keeps deleting nicroute's objects.")
        }
        for c in conflicts { out.append("Left alone: \(c)") }
        if !findings.isEmpty {
            out.append("")
            out.append("Preflight:")
            for f in findings { out.append("  \(f.severity): \(f.message)") }
        }
        return out.joined(separator: "\n")
    }
}

/// Checks of the system around nicroute that `status` reports: things that make multi-NIC
/// routing fail even with the right rules. Pure: the daemon reads the values.
public enum Preflight {
    /// What the daemon read from `/proc/sys` and the network managers' configuration.
    public struct Inputs: Sendable {
        /// Effective values per interface name (the maximum of `all` and the interface's).
        public var rpFilter: [String: Int] = [:]
        public var arpIgnore: [String: Int] = [:]
        public var arpAnnounce: [String: Int] = [:]
        /// systemd-networkd runs and will remove foreign rules/routes (its defaults), if known.
        public var networkdManagesForeignRules: Bool = false
        public var networkdManagesForeignRoutes: Bool = false
        /// The kernel's rules and nicroute's forward mark mask (when forwarded connections are
        /// handled): foreign fwmark rules on the same bits are another tool's marks.
        public var rules: [Rule] = []
        public var forwardMask: UInt32? = nil
        /// Marked NICs whose `src_valid_mark` nicroute could not set.
        public var sourceValidMarkFailures: [String] = []
        public init() {}
    }

    public static func findings(plan: Plan, inputs: Inputs) -> [StatusReport.Finding] {
        var out: [StatusReport.Finding] = []
        // A note, not a warning: with nicroute's rules in place strict filtering passes (the
        // reverse path of a request to an address of I is I, by its rule), and `check` says
        // when it does not. Forwarded requests under it need src_valid_mark (a warning below
        // when it could not be set).
        for n in plan.nics where (inputs.rpFilter[n.link.name] ?? 0) == 1 {
            out.append(
                .init(
                    severity: "note",
                    "\(n.link.name): strict reverse-path filtering (rp_filter=1): traffic arriving here is answered "
                        + "only while nicroute's rule for its address is in place (`nicroutectl check` tells); loose "
                        + "mode (rp_filter=2) is more forgiving"))
        }
        let v4 = plan.nics.map { n in
            (n, Set(n.addresses.filter { $0.family == .inet && !$0.prefix.isHost }.map(\.subnet)))
        }
        for i in v4.indices {
            for j in v4.indices where j > i {
                for subnet in v4[i].1.intersection(v4[j].1).sorted() {
                    let names = [v4[i].0.link.name, v4[j].0.link.name]
                    let weak = names.filter { (inputs.arpIgnore[$0] ?? 0) < 1 || (inputs.arpAnnounce[$0] ?? 0) < 2 }
                    if !weak.isEmpty {
                        out.append(
                            .init(
                                "\(names.joined(separator: " and ")) share \(subnet): set net.ipv4.conf."
                                    + "{\(weak.joined(separator: ","))}.arp_ignore=1 and arp_announce=2, or ARP may answer "
                                    + "for one NIC's address through the other"))
                    }
                }
            }
        }
        if let mask = inputs.forwardMask {
            var seen = Set<String>()
            for r in Planner.markCollisions(rules: inputs.rules, mask: mask) {
                let text = IPCommand.rule("add", r)
                guard seen.insert(text).inserted else { continue }
                out.append(
                    .init(
                        "another tool's rule uses the forward mark bits \(ForwardRuleset.hex(mask)): '\(text)'; "
                            + "set [Routing] ForwardMarkMask= to bits it does not use"))
            }
        }
        for name in inputs.sourceValidMarkFailures where (inputs.rpFilter[name] ?? 0) == 1 {
            out.append(
                .init(
                    "\(name): strict reverse-path filtering (rp_filter=1) drops forwarded requests arriving here: nicroute "
                        + "could not set net.ipv4.conf.\(name).src_valid_mark=1 (is /proc/sys read-only?); set it, or "
                        + "rp_filter=2"))
        }
        if inputs.networkdManagesForeignRules {
            out.append(
                .init(
                    "systemd-networkd removes foreign routing policy rules (ManageForeignRoutingPolicyRules=yes): nicroute "
                        + "puts them back, but set it to no in /etc/systemd/networkd.conf.d/"))
        }
        if inputs.networkdManagesForeignRoutes {
            out.append(
                .init(
                    "systemd-networkd removes foreign routes (ManageForeignRoutes=yes): nicroute puts them back, but set it "
                        + "to no in /etc/systemd/networkd.conf.d/"))
        }
        return out
    }
}

// MARK: - Codable

// The JSON form of `nicroutectl status --json` and of the `status` result
// (docs/control-protocol.md): every key always present, null where a value is absent (so the
// types with optionals encode by hand: synthesized Encodable leaves a nil out). Decoding is
// exact: an unknown key, a missing one or a value of the wrong type or range is an error naming
// its path.

extension StatusReport: Codable {
    private enum CodingKeys: String, CodingKey {
        case summary, fromDaemon, paused, pendingChanges, deferred, conflicts, findings, forwarding, nics, excluded
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        summary = try c.decode(String.self, forKey: .summary)
        fromDaemon = try c.decode(Bool.self, forKey: .fromDaemon)
        paused = try c.decode(Bool.self, forKey: .paused)
        pendingChanges = Int(try c.decodeInteger(UInt32.self, forKey: .pendingChanges))
        deferred = Int(try c.decodeInteger(UInt32.self, forKey: .deferred))
        conflicts = try c.decode([String].self, forKey: .conflicts)
        findings = try c.decode([Finding].self, forKey: .findings)
        // The one key that may be absent: a daemon older than forwarded connections does not
        // send it (docs/control-protocol.md), and its report reads as "not reported".
        forwarding = try c.decodeIfPresent(Forwarding.self, forKey: .forwarding) ?? .unknown
        nics = try c.decode([NIC].self, forKey: .nics)
        // Absent: none (a report of a daemon before udev's opt-out, or nothing held back).
        excluded = try c.decodeIfPresent([Excluded].self, forKey: .excluded) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(summary, forKey: .summary)
        try c.encode(fromDaemon, forKey: .fromDaemon)
        try c.encode(paused, forKey: .paused)
        try c.encode(pendingChanges, forKey: .pendingChanges)
        try c.encode(deferred, forKey: .deferred)
        try c.encode(conflicts, forKey: .conflicts)
        try c.encode(findings, forKey: .findings)
        try c.encode(forwarding, forKey: .forwarding)
        try c.encode(nics, forKey: .nics)
        // Only when some NIC is held back: a report without is what older daemons sent.
        if !excluded.isEmpty { try c.encode(excluded, forKey: .excluded) }
    }
}

extension StatusReport.Finding: Codable {
    private enum CodingKeys: String, CodingKey {
        case severity, message
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        severity = try c.decode(String.self, forKey: .severity)
        message = try c.decode(String.self, forKey: .message)
    }
}

extension StatusReport.Forwarding: Codable {
    private enum CodingKeys: String, CodingKey {
        case state, reason, mask, marks
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        state = try c.decode(String.self, forKey: .state)
        reason = try c.decode(String.self, forKey: .reason)
        mask = try c.decodeParsed(forKey: .mask, "a hex number (0x...)", StatusReport.parseHex)
        marks = try c.decode([Mark].self, forKey: .marks)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(state, forKey: .state)
        try c.encode(reason, forKey: .reason)
        try c.encode(ForwardRuleset.hex(mask), forKey: .mask)
        try c.encode(marks, forKey: .marks)
    }
}

extension StatusReport.Forwarding.Mark: Codable {
    private enum CodingKeys: String, CodingKey {
        case nic, mark, rulesInstalled
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        nic = try c.decode(String.self, forKey: .nic)
        mark = try c.decodeParsed(forKey: .mark, "a hex number (0x...)", StatusReport.parseHex)
        rulesInstalled = try c.decode(Bool.self, forKey: .rulesInstalled)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(nic, forKey: .nic)
        try c.encode(ForwardRuleset.hex(mark), forKey: .mark)
        try c.encode(rulesInstalled, forKey: .rulesInstalled)
    }
}

extension StatusReport.Excluded: Codable {
    private enum CodingKeys: String, CodingKey {
        case name, index, reason
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        index = try c.decodeInteger(Int32.self, forKey: .index)
        reason = try c.decode(String.self, forKey: .reason)
    }
}

extension StatusReport.NIC: Codable {
    private enum CodingKeys: String, CodingKey {
        case name, index, mac, state, table, priority, addresses, sources, gateways, rulesInstalled, rulesWanted
        case routesInstalled, notes, lastChange
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        index = try c.decodeInteger(Int32.self, forKey: .index)
        mac = try c.decodeParsedOrNull(forKey: .mac, "a MAC address") { MACAddress($0) }
        state = try c.decode(String.self, forKey: .state)
        table = try c.decodeInteger(UInt32.self, forKey: .table)
        priority = try c.decodeInteger(UInt32.self, forKey: .priority)
        addresses = try c.decodeParsedArray(forKey: .addresses, "an address/length") { IPPrefix($0) }
        // Absent: none (a report of a daemon before sources, or a NIC without any).
        sources = try c.decodeIfPresent([StatusReport.Source].self, forKey: .sources) ?? []
        gateways = try c.decode([StatusReport.Gateway].self, forKey: .gateways)
        rulesInstalled = Int(try c.decodeInteger(UInt32.self, forKey: .rulesInstalled))
        rulesWanted = Int(try c.decodeInteger(UInt32.self, forKey: .rulesWanted))
        routesInstalled = Int(try c.decodeInteger(UInt32.self, forKey: .routesInstalled))
        notes = try c.decode([String].self, forKey: .notes)
        lastChange = try c.decode(String?.self, forKey: .lastChange)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(index, forKey: .index)
        try c.encode(mac?.description, forKey: .mac)
        try c.encode(state, forKey: .state)
        try c.encode(table, forKey: .table)
        try c.encode(priority, forKey: .priority)
        try c.encode(addresses.map(\.description), forKey: .addresses)
        if !sources.isEmpty { try c.encode(sources, forKey: .sources) }
        try c.encode(gateways, forKey: .gateways)
        try c.encode(rulesInstalled, forKey: .rulesInstalled)
        try c.encode(rulesWanted, forKey: .rulesWanted)
        try c.encode(routesInstalled, forKey: .routesInstalled)
        try c.encode(notes, forKey: .notes)
        try c.encode(lastChange, forKey: .lastChange)
    }
}

extension StatusReport.Source: Codable {
    private enum CodingKeys: String, CodingKey {
        case prefix, origin
        case routeProtocol = "protocol"
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        prefix = try c.decodeParsed(forKey: .prefix, "an address/length") { IPPrefix($0) }
        origin = try c.decodeParsed(forKey: .origin, "local-route or configuration") {
            $0 == "local-route" || $0 == "configuration" ? $0 : nil
        }
        routeProtocol = try c.decode(String?.self, forKey: .routeProtocol)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(prefix.description, forKey: .prefix)
        try c.encode(origin, forKey: .origin)
        try c.encode(routeProtocol, forKey: .routeProtocol)
    }
}

extension StatusReport.Gateway: Codable {
    private enum CodingKeys: String, CodingKey {
        case family, address, source
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        family = try c.decodeParsed(forKey: .family, "ipv4 or ipv6") {
            $0 == "ipv4" ? AddressFamily.inet : $0 == "ipv6" ? .inet6 : nil
        }
        address = try c.decodeParsedOrNull(forKey: .address, "an IP address") { IPAddress($0) }
        source = try c.decodeParsedOrNull(forKey: .source, "a gateway source") { GatewaySource(rawValue: $0) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(family == .inet ? "ipv4" : "ipv6", forKey: .family)
        try c.encode(address?.description, forKey: .address)
        try c.encode(source?.rawValue, forKey: .source)
    }
}

extension StatusReport {
    /// `0x1f` as 31; nil for anything else (no sign, no space, at most 32 bits).
    static func parseHex(_ text: String) -> UInt32? {
        guard text.hasPrefix("0x"), text.count > 2, text.dropFirst(2).allSatisfy(\.isHexDigit) else { return nil }
        return UInt32(text.dropFirst(2), radix: 16)
    }
}
