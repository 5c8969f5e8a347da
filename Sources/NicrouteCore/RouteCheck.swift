/// `nicroutectl check`: does the kernel answer each managed address through its own NIC?
///
/// The kernel is asked twice per address A on NIC I (the caller does the asking, this judges):
/// - the reply: `ip route get D from A`, where a reply from A to an outside destination D goes.
///   It passes when it leaves through I via I's gateway (or on I's link without one);
/// - the request: `ip route get A from D iif I`, what happens to a packet from D to A that
///   arrives on I. It passes when it is delivered locally; strict reverse-path filtering
///   refuses it (`EXDEV`) when the reverse route does not go out through I.
///
/// Replies to connections forwarded to containers or guests behind the host carry their own
/// source address, which no `from` rule matches: they are routed by a connection mark and a
/// `fwmark` rule per NIC (see Forwarding.swift), which `status` reports; they are not judged here.
///
/// Pure: values in, a verdict out.
public enum RouteCheck {
    /// The kernel's answer to one lookup.
    public enum Answer: Hashable, Sendable {
        case route(Route)
        /// The lookup failed with `errno` (`EXDEV`: reverse-path filtering; `ENETUNREACH`: no route).
        case failed(errno: Int32, message: String)
    }

    /// The NIC an address is on, as `status` reports it.
    public struct NIC: Hashable, Sendable {
        public var name: String
        public var index: Int32
        public var table: UInt32
        public var priority: UInt32
        /// The gateway nicroute confirmed for the address's family; nil: none (subnet routes only).
        public var gateway: IPAddress?
        public init(name: String, index: Int32, table: UInt32, priority: UInt32, gateway: IPAddress?) {
            self.name = name
            self.index = index
            self.table = table
            self.priority = priority
            self.gateway = gateway
        }
    }

    /// Everything the verdict on one address rests on.
    public struct Evidence: Hashable, Sendable {
        public var address: IPAddress
        /// The outside destination D.
        public var destination: IPAddress
        /// The managed NIC holding the address; nil when it is not managed.
        public var nic: NIC?
        /// The interface holding the address when it is not managed (nil: not an address here).
        public var unmanagedLink: String?
        /// Why that interface is not managed when the configuration would manage it (udev's
        /// opt-out, `StatusReport.Excluded`).
        public var unmanagedReason: String?
        /// `ip route get D from A`.
        public var reply: Answer?
        /// `ip route get A from D iif I`.
        public var request: Answer?
        /// The kernel's rules of the address's family.
        public var rules: [Rule]
        /// The routes of the NIC's table.
        public var tableRoutes: [Route]
        /// The effective `rp_filter` of the NIC (IPv4), when known.
        public var rpFilter: Int?

        public init(
            address: IPAddress, destination: IPAddress, nic: NIC?, unmanagedLink: String? = nil,
            unmanagedReason: String? = nil, reply: Answer? = nil, request: Answer? = nil, rules: [Rule] = [],
            tableRoutes: [Route] = [], rpFilter: Int? = nil
        ) {
            self.address = address
            self.destination = destination
            self.nic = nic
            self.unmanagedLink = unmanagedLink
            self.unmanagedReason = unmanagedReason
            self.reply = reply
            self.request = request
            self.rules = rules
            self.tableRoutes = tableRoutes
            self.rpFilter = rpFilter
        }
    }

    /// Why an address does not pass (the first reason that applies is the one stated).
    public enum Reason: String, Hashable, Sendable, CaseIterable {
        case notLocal = "not-local"
        case notManaged = "not-managed"
        case noRule = "no-rule"
        case foreignRule = "foreign-rule"
        case gatewayUnconfirmed = "gateway-unconfirmed"
        case noDefault = "no-default"
        case wrongInterface = "wrong-interface"
        case wrongGateway = "wrong-gateway"
        case noRoute = "no-route"
        case reversePathFilter = "rp-filter"
        case requestNotLocal = "request-not-local"
    }

    /// The verdict on one address.
    public struct Verdict: Hashable, Sendable {
        public var address: IPAddress
        public var destination: IPAddress
        /// The NIC holding the address (managed or not), if any.
        public var interface: String?
        public var ok: Bool
        /// Every reason it fails, in order; empty when it passes.
        public var reasons: [Reason]
        /// One line: what the kernel does, and why it is wrong when it is.
        public var summary: String
        /// Where the reply leaves: interface name, gateway, table (nil when the lookup failed).
        public var replyInterface: String?
        public var replyGateway: IPAddress?
        public var replyTable: UInt32?
        /// True when a request arriving on the NIC is delivered (nil when not asked).
        public var requestAccepted: Bool?
    }

    /// Judges one address. `linkName` resolves interface indexes for the summary.
    public static func judge(_ e: Evidence, linkName: (Int32) -> String?) -> Verdict {
        var v = Verdict(
            address: e.address, destination: e.destination, interface: e.nic?.name ?? e.unmanagedLink, ok: false,
            reasons: [], summary: "")
        guard let nic = e.nic else {
            if let link = e.unmanagedLink {
                v.reasons = [.notManaged]
                v.summary =
                    "\(link) is not managed by nicroute: no table or rule of its own"
                    + (e.unmanagedReason.map { " (\($0))" } ?? "")
            } else {
                v.reasons = [.notLocal]
                v.summary = "\(e.address) is not an address of this host"
            }
            return v
        }
        func name(_ index: Int32?) -> String { index.map { linkName($0) ?? "if#\($0)" } ?? "no interface" }
        func tableName(_ t: UInt32) -> String {
            switch t {
            case RoutingTable.main: "main"
            case RoutingTable.local: "local"
            case RoutingTable.default: "default"
            default: String(t)
            }
        }
        var parts: [String] = []

        // The reply.
        switch e.reply {
        case .route(let r)?:
            v.replyInterface = name(r.outputInterface)
            v.replyGateway = r.gateway
            v.replyTable = r.table == 0 ? nil : r.table
            let how =
                "leaves through \(name(r.outputInterface))"
                + (r.gateway.map { " via \($0)" } ?? " on-link")
                + (r.table == 0 ? "" : " (table \(tableName(r.table)))")
            if r.outputInterface == nic.index {
                if let gw = r.gateway, let own = nic.gateway, gw != own {
                    v.reasons.append(.wrongGateway)
                    parts.append("\(how), not via its gateway \(own)")
                } else if r.gateway != nil, nic.gateway == nil {
                    // Through its NIC, but via a gateway nicroute has not confirmed for it.
                    v.reasons.append(.gatewayUnconfirmed)
                    parts.append("\(how), a gateway nicroute has not confirmed for \(nic.name)")
                } else {
                    parts.append(how)
                }
            } else {
                let reason = diagnose(e, nic: nic, answeredTable: r.table)
                v.reasons.append(reason.reason)
                parts.append("\(how): \(reason.text)")
            }
        case .failed(let errno, let message)?:
            let reason = diagnose(e, nic: nic, answeredTable: nil)
            v.reasons.append(reason.reason == .wrongInterface ? .noRoute : reason.reason)
            parts.append(
                "no route from \(e.address) to \(e.destination) (\(message), errno \(errno))"
                    + (reason.reason == .wrongInterface ? "" : ": \(reason.text)"))
        case nil:
            break
        }

        // The request arriving on the NIC.
        switch e.request {
        case .route(let r)?:
            if r.type == .local {
                v.requestAccepted = true
            } else {
                v.requestAccepted = false
                v.reasons.append(.requestNotLocal)
                parts.append("a packet to \(e.address) arriving on \(nic.name) is not delivered here (\(r.type))")
            }
        case .failed(let errno, let message)?:
            v.requestAccepted = false
            // The kernel refuses a packet that fails reverse-path filtering with EINVAL when it is
            // for a local address (EXDEV when forwarded): EINVAL counts as the filter's when the
            // filter is on and the way back (the reply) does not leave through the NIC.
            let replyElsewhere: Bool =
                switch e.reply {
                case .route(let r)?: r.outputInterface != nic.index
                case .failed?: true
                case nil: false
                }
            if errno == exdev || (errno == einval && (e.rpFilter ?? 0) >= 1 && replyElsewhere) {
                v.reasons.append(.reversePathFilter)
                let mode = e.rpFilter.map { "rp_filter=\($0)" } ?? "reverse-path filtering"
                parts.append("\(mode) on \(nic.name) drops requests from \(e.destination) arriving there")
            } else {
                v.reasons.append(.requestNotLocal)
                parts.append("a packet from \(e.destination) arriving on \(nic.name) is refused (\(message))")
            }
        case nil:
            break
        }
        v.ok = v.reasons.isEmpty
        v.summary = parts.joined(separator: "; ")
        return v
    }

    /// `EXDEV`: what the kernel answers when reverse-path filtering refuses a forwarded packet.
    public static let exdev: Int32 = 18
    /// `EINVAL`: what it answers when reverse-path filtering refuses a packet for a local address
    /// (`ip_route_input_slow`'s martian source), and for other invalid sources.
    public static let einval: Int32 = 22

    /// Why a reply from the address does not leave through its NIC.
    static func diagnose(_ e: Evidence, nic: NIC, answeredTable: UInt32?) -> (reason: Reason, text: String) {
        let a = e.address
        func matches(_ r: Rule) -> Bool {
            !r.invert && (r.source?.contains(a) ?? true) && (r.destination?.contains(e.destination) ?? true)
                && r.inputInterface == nil && r.outputInterface == nil && r.firewallMark == nil
        }
        let own = e.rules.filter { Planner.isOwned($0) && $0.table == nic.table && $0.source?.contains(a) == true }
        guard let ownRule = own.min(by: { ($0.priority ?? 0) < ($1.priority ?? 0) }) else {
            return (
                .noRule,
                "no rule from \(a) (nicroute's `from \(a) lookup \(nic.table)` at priority \(nic.priority) is missing)"
            )
        }
        let ownPriority = ownRule.priority ?? 0
        // A rule before nicroute's that sends the address elsewhere.
        let earlier = e.rules.filter { ($0.priority ?? 0) < ownPriority && matches($0) && !$0.isKernelDefault }
            .sorted { ($0.priority ?? 0) < ($1.priority ?? 0) }
        if let winner = earlier.first(where: {
            $0.action != .toTable || answeredTable == nil || $0.table == answeredTable
        })
            ?? earlier.first
        {
            // `ip -4 rule add priority 500 from ...` without its first four words.
            let text = IPCommand.rule("add", winner).split(separator: " ").dropFirst(4).joined(separator: " ")
            return (.foreignRule, "a rule of higher priority wins: \(text)")
        }
        let hasDefault = e.tableRoutes.contains {
            $0.table == nic.table && $0.destination.length == 0 && $0.family == a.family && $0.type == .unicast
        }
        if !hasDefault {
            if nic.gateway == nil {
                return (
                    .gatewayUnconfirmed,
                    "gateway unconfirmed: table \(nic.table) has no default route, only \(nic.name)'s subnet routes"
                )
            }
            return (.noDefault, "no default route in table \(nic.table)")
        }
        if let t = answeredTable, t != 0, t != nic.table {
            return (.wrongInterface, "the rules chose table \(t), not \(nic.table)")
        }
        return (.wrongInterface, "table \(nic.table) does not send \(e.destination) through \(nic.name)")
    }
}

extension RouteCheck {
    /// The human form: one line per address, `ok` or `FAIL`, then a count.
    public static func rendered(_ verdicts: [Verdict]) -> String {
        guard !verdicts.isEmpty else { return "No managed addresses to check." }
        var lines = verdicts.map { v in
            "\(v.ok ? "ok  " : "FAIL") \(v.interface ?? "-") \(v.address): \(v.summary)"
        }
        let passed = verdicts.filter(\.ok).count
        lines.append(
            passed == verdicts.count
                ? "All \(verdicts.count) address(es) answer through their own NIC."
                : "\(verdicts.count - passed) of \(verdicts.count) address(es) do not answer through their own NIC.")
        return lines.joined(separator: "\n")
    }

    /// The JSON form: `{"ok": Bool, "results": [...]}`, one object per address; every key is
    /// always present, null where a value is absent.
    public static func json(_ verdicts: [Verdict]) -> String {
        JSONCoding.encodeString(Output(ok: !verdicts.isEmpty && verdicts.allSatisfy(\.ok), results: verdicts))
    }

    private struct Output: Encodable {
        var ok: Bool
        var results: [Verdict]
    }
}

extension RouteCheck.Verdict: Encodable {
    private enum CodingKeys: String, CodingKey {
        case address, interface, destination, ok, reasons, summary, reply, requestAccepted
    }

    private enum ReplyKeys: String, CodingKey {
        case interface, gateway, table
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(address.description, forKey: .address)
        try c.encode(interface, forKey: .interface)
        try c.encode(destination.description, forKey: .destination)
        try c.encode(ok, forKey: .ok)
        try c.encode(reasons.map(\.rawValue), forKey: .reasons)
        try c.encode(summary, forKey: .summary)
        if replyInterface == nil {
            try c.encodeNil(forKey: .reply)
        } else {
            var reply = c.nestedContainer(keyedBy: ReplyKeys.self, forKey: .reply)
            try reply.encode(replyInterface, forKey: .interface)
            try reply.encode(replyGateway?.description, forKey: .gateway)
            try reply.encode(replyTable, forKey: .table)
        }
        try c.encode(requestAccepted, forKey: .requestAccepted)
    }
}
