/// What the kernel looks like right now: the inputs of a plan.
public struct KernelSnapshot: Hashable, Sendable {
    public var links: [Link]
    public var addresses: [InterfaceAddress]
    /// Routes of both families, of every table (the daemon's snapshot keeps of the `local` table
    /// only the local-type routes that are not the kernel's own: see `Planner.isLocalSource`).
    public var routes: [Route]
    /// Rules of both families.
    public var rules: [Rule]
    /// Neighbour cache entries (used to confirm a first-host gateway).
    public var neighbors: [Neighbor]
    /// Links udev keeps away from nicroute, by index, and why (`NICROUTE_MANAGE=0`, not yet
    /// processed): not managed whatever the configuration says. Read by the daemon from udev's
    /// database, not from the kernel; empty where udev does not run.
    public var deviceHolds: [Int32: DeviceHold]

    public init(
        links: [Link] = [], addresses: [InterfaceAddress] = [], routes: [Route] = [], rules: [Rule] = [],
        neighbors: [Neighbor] = [], deviceHolds: [Int32: DeviceHold] = [:]
    ) {
        self.links = links
        self.addresses = addresses
        self.routes = routes
        self.rules = rules
        self.neighbors = neighbors
        self.deviceHolds = deviceHolds
    }
}

extension KernelSnapshot {
    /// The picture after `changes` were made, as the kernel makes them (and as nicroute asks
    /// for them): an add of what exists leaves it as it is, a replace takes the place of the
    /// route with the same key, a delete removes one object and ignores one already gone.
    /// This is the kernel as a pass left it, without dumping it again (the daemon answers
    /// `status` and `plan` from it).
    public func applying(_ changes: [Change]) -> KernelSnapshot {
        guard !changes.isEmpty else { return self }
        var routes = self.routes.map(Optional.some)
        var routesByKey: [Route.Key: [Int]] = [:]
        for i in routes.indices { routesByKey[self.routes[i].key, default: []].append(i) }
        var rules = self.rules.map(Optional.some)
        var rulesByValue: [Rule: [Int]] = [:]
        for i in rules.indices { rulesByValue[self.rules[i], default: []].append(i) }
        for change in changes {
            switch change {
            case .addRoute(let r):
                guard routesByKey[r.key, default: []].isEmpty else { continue }
                routesByKey[r.key] = [routes.count]
                routes.append(r)
            case .replaceRoute(let r):
                if let i = routesByKey[r.key]?.first {
                    routes[i] = r
                } else {
                    routesByKey[r.key] = [routes.count]
                    routes.append(r)
                }
            case .deleteRoute(let r):
                guard let i = routesByKey[r.key]?.first else { continue }
                routes[i] = nil
                routesByKey[r.key]?.removeFirst()
            case .addRule(let r):
                guard rulesByValue[r, default: []].isEmpty else { continue }
                rulesByValue[r] = [rules.count]
                rules.append(r)
            case .deleteRule(let r):
                guard let i = rulesByValue[r]?.first else { continue }
                rules[i] = nil
                rulesByValue[r]?.removeFirst()
            }
        }
        var out = self
        out.routes = routes.compactMap { $0 }
        out.rules = rules.compactMap { $0 }
        return out
    }
}

/// One change to the kernel.
public enum Change: Hashable, Sendable {
    case addRoute(Route)
    case replaceRoute(Route)
    case deleteRoute(Route)
    case addRule(Rule)
    case deleteRule(Rule)

    /// The equivalent `ip` command.
    public func ipCommand(linkName: (Int32) -> String? = { _ in nil }) -> String {
        switch self {
        case .addRoute(let r): IPCommand.route("add", r, linkName: linkName)
        case .replaceRoute(let r): IPCommand.route("replace", r, linkName: linkName)
        case .deleteRoute(let r): IPCommand.route("del", r, linkName: linkName)
        case .addRule(let r): IPCommand.rule("add", r)
        case .deleteRule(let r): IPCommand.rule("del", r)
        }
    }

    /// True for changes that add or replace (as opposed to delete).
    public var isAddition: Bool {
        switch self {
        case .addRoute, .replaceRoute, .addRule: true
        case .deleteRoute, .deleteRule: false
        }
    }

    /// A stable identity of the object changed, independent of the verb: for routes their key,
    /// for rules all their fields.
    public var objectIdentity: String {
        switch self {
        case .addRoute(let r), .replaceRoute(let r), .deleteRoute(let r):
            "route \(r.family) \(r.table) \(r.destination) \(r.effectiveMetric) \(r.tos)"
        case .addRule(let r), .deleteRule(let r): IPCommand.rule("", r)
        }
    }

    /// The object's identity as a hashable value, cheap to compute for thousands of objects: a
    /// route's key (the fields the kernel tells routes apart by), a rule's fields.
    public var objectKey: ObjectKey {
        switch self {
        case .addRoute(let r), .replaceRoute(let r), .deleteRoute(let r): .route(r.key)
        case .addRule(let r), .deleteRule(let r): .rule(r)
        }
    }

    /// A kernel object's identity, independent of the verb (see `objectKey`).
    public enum ObjectKey: Hashable, Sendable {
        case route(Route.Key)
        case rule(Rule)
    }

    /// The interface the change concerns, if any.
    public var linkIndex: Int32? {
        switch self {
        case .addRoute(let r), .replaceRoute(let r), .deleteRoute(let r): r.outputInterface
        case .addRule, .deleteRule: nil
        }
    }
}

/// What nicroute does for one managed NIC.
public struct ManagedNIC: Hashable, Sendable {
    public var link: Link
    public var slot: Int
    public var table: UInt32
    public var priority: UInt32
    /// The addresses that get a rule.
    public var addresses: [InterfaceAddress]
    /// The NIC's other sources, each with a `from PREFIX` rule: its local routes and its
    /// configured `[Source]` prefixes (docs/design.md, Routing semantics).
    public var sources: [ExtraSource] = []
    public var ipv4Gateway: GatewayHint?
    public var ipv6Gateway: GatewayHint?
    /// Why a family has no gateway, for `status` ("first host 10.0.0.1 has not answered").
    public var notes: [String]

    public func gateway(_ family: AddressFamily) -> GatewayHint? { family == .inet ? ipv4Gateway : ipv6Gateway }
}

/// A source of a NIC that is not one of its addresses: a prefix its own `from` rule covers.
public struct ExtraSource: Hashable, Sendable, CustomStringConvertible {
    public enum Origin: Hashable, Sendable {
        /// A local-type route of the `local` table through the NIC (a cloud guest agent's
        /// forwarded or alias IP, an "AnyIP" range), with the route's protocol.
        case localRoute(RouteProtocol)
        /// A `[Source]` section of the configuration.
        case configuration
    }
    public var prefix: IPPrefix
    public var origin: Origin

    public init(prefix: IPPrefix, origin: Origin) {
        self.prefix = prefix
        self.origin = origin
    }

    /// `10.99.0.0/24 (local route, proto boot)`, `10.98.0.0/24 (configuration)`.
    public var description: String {
        switch origin {
        case .localRoute(let p): "\(prefix) (local route, proto \(p))"
        case .configuration: "\(prefix) (configuration)"
        }
    }
}

/// The result of planning: the NICs, the ordered changes, and the side requests.
public struct Plan: Hashable, Sendable {
    public var nics: [ManagedNIC]
    /// Ordered: route additions (connected before gateway routes), rule additions, rule
    /// deletions, route deletions. Never a main-table route, a kernel default rule, or an
    /// object without nicroute's protocol.
    public var changes: [Change]
    /// The slot table after this plan (new NICs got a slot).
    public var slots: SlotTable
    /// First-host gateways to confirm with a neighbour probe: (address, link index).
    public var neighborProbes: [NeighborProbe]
    /// Desired objects that a foreign object blocks (same key, another protocol): left alone.
    public var conflicts: [String]
    /// The NICs whose forwarded connections are marked, with their marks, in slot order;
    /// nil when forwarded connections are not handled (the ruleset is then removed).
    public var forwardMarks: [ForwardedNIC]? = nil

    public var isEmpty: Bool { changes.isEmpty }

    /// The plan once its changes are made: what planning the kernel's picture after them gives
    /// (the same NICs, slots, conflicts and marks; nothing to change).
    public var settled: Plan {
        var plan = self
        plan.changes = []
        return plan
    }
}

/// A NIC whose forwarded connections carry a mark.
public struct ForwardedNIC: Hashable, Sendable {
    public var name: String
    public var mark: UInt32
    public var table: UInt32
    public init(name: String, mark: UInt32, table: UInt32) {
        self.name = name
        self.mark = mark
        self.table = table
    }
}

/// A request to resolve a candidate gateway.
public struct NeighborProbe: Hashable, Sendable {
    public var address: IPAddress
    public var linkIndex: Int32

    public init(address: IPAddress, linkIndex: Int32) {
        self.address = address
        self.linkIndex = linkIndex
    }
}

/// The planner: observed kernel state + configuration -> desired tables and rules -> an ordered
/// plan against what nicroute owns. Pure: no clock, no I/O.
///
/// Routing semantics (docs/design.md), for a source address A on managed NIC I with gateway G, all in
/// I's table and selected by one rule `from A lookup T(I)`:
/// 1. I's connected subnets and the non-default main-table routes on I are copied (via I);
/// 2. non-default main-table routes through unmanaged interfaces are copied as they are;
/// 3. non-default main-table routes through another managed NIC are rerouted via G on I;
/// 4. `default via G dev I`.
/// Where destinations collide, the earlier item wins. A multipath route of the main table is
/// split by these items: its paths on I, else its paths through unmanaged interfaces, are
/// copied; a route with neither is reached via G.
public struct Planner: Sendable {
    public var configuration: Configuration
    public init(configuration: Configuration) { self.configuration = configuration }

    /// True when the configuration alone manages `link` (no udev hold).
    public func isManaged(_ link: Link) -> Bool { isManaged(link, hold: nil) }

    /// True when nicroute manages `link` under the configuration: never loopback; never a link
    /// udev holds back (`hold`: `NICROUTE_MANAGE=0`, or not processed yet); `ignore` wins; an
    /// explicit `manage` list replaces the default (Ethernet-like devices with no link kind).
    public func isManaged(_ link: Link, hold: DeviceHold?) -> Bool {
        if link.flags.contains(.loopback) || hold != nil { return false }
        if configuration.ignore.contains(where: { $0.matches(name: link.name, mac: link.mac) }) { return false }
        if !configuration.manage.isEmpty {
            return configuration.manage.contains(where: { $0.matches(name: link.name, mac: link.mac) })
        }
        return link.kind == nil && link.hardwareType == Link.etherType
    }

    /// True when an address gets a rule: a family nicroute manages, global scope, not link-local,
    /// tentative or failed DAD.
    public func isUsable(_ a: InterfaceAddress) -> Bool {
        if a.family == .inet6 && !configuration.ipv6 { return false }
        if a.scope != .universe || a.address.isLoopback || a.address.isIPv6LinkLocal || a.address.isIPv4LinkLocal {
            return false
        }
        return a.flags.isDisjoint(with: [.tentative, .dadFailed])
    }

    /// True when two pictures' links make the same plan: the same links in the same order,
    /// equal but for their MTU, which no plan depends on (a plan's NICs carry it for `status`:
    /// see the reconciler's refresh).
    public static func planAlike(_ a: [Link], _ b: [Link]) -> Bool {
        a.count == b.count
            && zip(a, b).allSatisfy { x, y in
                var y = y
                y.mtu = x.mtu
                return x == y
            }
    }

    /// True when a route makes a source of the NIC it goes through, whatever that NIC's
    /// addresses: a local-type route of the `local` table that is not the kernel's own (the
    /// kernel's, protocol `kernel`, are those of the addresses themselves, and their broadcast
    /// and anycast routes have other types), for a prefix that is neither the default (which would
    /// take every source) nor link-local, multicast or loopback. `ip route add local
    /// 10.99.0.0/24 dev eth1` (protocol boot), the GCE guest agent's forwarded IPs (protocol 66).
    public static func isLocalSource(_ r: Route) -> Bool {
        guard r.table == RoutingTable.local, r.type == .local, r.proto != .kernel, r.outputInterface != nil,
            r.source == nil, !r.destination.isDefault
        else { return false }
        let a = r.destination.address
        return !a.isLoopback && !a.isIPv6LinkLocal && !a.isIPv6Multicast && !a.isIPv4LinkLocal
    }

    /// Objects nicroute owns: its protocol, outside the main/local/default tables, not a kernel
    /// default rule.
    public static func isOwned(_ r: Route) -> Bool {
        // (A switch, not `[...].contains`: that built an array for each of the thousands of
        // routes a pass looks at.)
        guard r.proto == .nicroute else { return false }
        switch r.table {
        case RoutingTable.main, RoutingTable.local, RoutingTable.default, RoutingTable.unspecified: return false
        default: return true
        }
    }
    public static func isOwned(_ r: Rule) -> Bool { r.proto == .nicroute && !r.isKernelDefault }

    /// Plans the changes that bring the kernel from `snapshot` to the desired state.
    ///
    /// - Parameters:
    ///   - slots: the persisted NIC slots; new NICs are added to the returned copy.
    ///   - hints: gateway candidates per link index from leases and the config drive, in
    ///     docs/design.md's order; the main table and configuration are consulted here.
    ///   - forwarding: whether forwarded connections are handled (the daemon resolves
    ///     `ForwardedConnections=auto` from the forwarding sysctls); adds the fwmark rules.
    public func plan(
        snapshot: KernelSnapshot, slots: SlotTable, hints: [Int32: [GatewayHint]] = [:], forwarding: Bool = false
    ) -> Plan {
        let linksByIndex = Dictionary(snapshot.links.map { ($0.index, $0) }, uniquingKeysWith: { a, _ in a })
        let managedLinks = snapshot.links.filter { isManaged($0, hold: snapshot.deviceHolds[$0.index]) && $0.isUp }
            .sorted { $0.index < $1.index }
        let managedIndexes = Set(managedLinks.map(\.index))
        let mainRoutes = snapshot.routes.filter { $0.table == RoutingTable.main }
        var addressesByLink: [Int32: [InterfaceAddress]] = [:]
        for a in snapshot.addresses where isUsable(a) { addressesByLink[a.linkIndex, default: []].append(a) }
        // The first address of a subnet becomes its route's `src`: the primary (IPv4), else a
        // permanent (not temporary: the same flag bit) and not deprecated address; among equals
        // the one the route already has, then the lowest. The kernel lists IPv6 addresses newest
        // first, so taken as listed every new address would move the `src` and replace the route.
        var sourcesInUse: [Int32: Set<IPAddress>] = [:]
        for r in snapshot.routes where Self.isOwned(r) {
            if let oif = r.outputInterface, let src = r.preferredSource { sourcesInUse[oif, default: []].insert(src) }
        }
        for (k, v) in addressesByLink {
            let inUse = sourcesInUse[k] ?? []
            // Each address's rank computed once, not in every comparison (a set lookup each:
            // 80 NICs x 50 addresses made that a tenth of a no-op pass).
            let ranked = v.map { a in
                (
                    address: a,
                    rank: (
                        a.flags.contains(.secondary) ? 1 : 0, a.flags.contains(.deprecated) ? 1 : 0,
                        inUse.contains(a.address) ? 0 : 1
                    )
                )
            }
            // Stable: IPv4 addresses of one rank keep the kernel's order (as they were added).
            addressesByLink[k] = ranked.sorted { x, y in
                if x.address.family != y.address.family { return x.address.family == .inet }
                if x.rank != y.rank { return x.rank < y.rank }
                return x.address.family == .inet6 && x.address.address < y.address.address
            }.map(\.address)
        }

        // Two NICs with one MAC (a failover pair) are told apart by name.
        var macCount: [String: Int] = [:]
        for link in managedLinks { macCount[SlotTable.key(link), default: 0] += 1 }
        func slotKey(_ link: Link) -> String {
            let key = SlotTable.key(link)
            return (macCount[key] ?? 0) > 1 ? "name:\(link.name)" : key
        }
        // Each managed NIC's distinct subnets (not host prefixes), computed once: every other NIC's
        // table routes them via its own gateway.
        var subnetsByLink: [Int32: [IPPrefix]] = [:]
        for index in managedIndexes {
            var seen = Set<IPPrefix>()
            subnetsByLink[index] = (addressesByLink[index] ?? []).filter { !$0.prefix.isHost }.map(\.subnet).filter {
                seen.insert($0).inserted
            }
        }
        // Flattened once, in the dictionary's order, for the per-NIC `otherSubnets` below (each
        // NIC skips its own): not a lazy filter over the dictionary for every NIC.
        let allSubnets = subnetsByLink.flatMap { entry in entry.value.map { (link: entry.key, subnet: $0) } }

        // The local routes that may be sources, per interface: only the managed NICs' are looked
        // up below. Only the `local` table is looked at: one comparison per route.
        var localSourcesByLink: [Int32: [Route]] = [:]
        if configuration.localRoutes {
            for r in snapshot.routes where r.table == RoutingTable.local && Self.isLocalSource(r) {
                guard let oif = r.outputInterface else { continue }
                if r.family == .inet6 && !configuration.ipv6 { continue }
                localSourcesByLink[oif, default: []].append(r)
            }
        }

        var slotTable = slots
        slotTable.assign(
            managedLinks.filter { addressesByLink[$0.index] != nil }.map(slotKey), capacity: configuration.slotCount)

        var nics: [ManagedNIC] = []
        var desiredRoutes: [Route] = []
        var desiredRules: [Rule] = []
        // Each NIC's table routes its own and every other NIC's subnets, plus a default.
        desiredRoutes.reserveCapacity(managedLinks.count * (allSubnets.count + 2))
        desiredRules.reserveCapacity(addressesByLink.values.reduce(0) { $0 + $1.count } + managedLinks.count)
        var probes: [NeighborProbe] = []
        for link in managedLinks {
            guard let addresses = addressesByLink[link.index], let slot = slotTable.slot(for: slotKey(link))
            else {
                continue
            }
            let table = configuration.tables.lowerBound + UInt32(slot)
            let priority = configuration.priorities.lowerBound + UInt32(slot)
            var nic = ManagedNIC(
                link: link, slot: slot, table: table, priority: priority, addresses: addresses, notes: [])
            for family in AddressFamily.allCases {
                let own = addresses.filter { $0.family == family }
                guard !own.isEmpty else { continue }
                let (choice, note, probe) = gateway(
                    for: link, family: family, own: own, mainRoutes: mainRoutes, neighbors: snapshot.neighbors,
                    hints: hints[link.index] ?? [])
                if family == .inet { nic.ipv4Gateway = choice } else { nic.ipv6Gateway = choice }
                if let note { nic.notes.append(note) }
                if let probe { probes.append(probe) }
                desiredRoutes += tableRoutes(
                    link: link, family: family, table: table, own: own, gateway: choice?.gateway,
                    mainRoutes: mainRoutes, managed: managedIndexes, links: linksByIndex,
                    otherSubnets: allSubnets.lazy.filter { $0.link != link.index }.map(\.subnet))
                for a in own {
                    desiredRules.append(
                        Rule(
                            family: family, priority: priority, table: table, source: .host(a.address), proto: .nicroute
                        ))
                }
            }
            nic.sources = extraSources(
                link: link, addresses: addresses, localRoutes: localSourcesByLink[link.index] ?? [],
                allAddresses: snapshot.addresses, notes: &nic.notes)
            // At the NIC's priority, like its addresses: one band, one priority per NIC, and the
            // rules of one priority all look up the same table.
            for source in nic.sources {
                desiredRules.append(
                    Rule(
                        family: source.prefix.family, priority: priority, table: table, source: source.prefix,
                        proto: .nicroute))
            }
            nics.append(nic)
        }
        var forwarded: [ForwardedNIC]?
        if forwarding {
            let marks = ForwardMarks(mask: configuration.forwardMarkMask)
            forwarded = []
            for i in nics.indices {
                if let mark = marks.mark(slot: nics[i].slot) {
                    forwarded?.append(ForwardedNIC(name: nics[i].link.name, mark: mark, table: nics[i].table))
                } else {
                    nics[i].notes.append(
                        "forwarded connections not marked: ForwardMarkMask=\(ForwardRuleset.hex(marks.mask)) has room for \(marks.capacity) NIC(s)"
                    )
                }
            }
            desiredRules += forwardRules(nics: nics, marks: marks)
        }
        let (changes, conflicts) = Self.diff(
            desiredRoutes: desiredRoutes, desiredRules: desiredRules, current: snapshot)
        return Plan(
            nics: nics, changes: changes, slots: slotTable, neighborProbes: probes, conflicts: conflicts,
            forwardMarks: forwarded)
    }

    /// A NIC's sources besides its addresses: its local routes (sorted by prefix), then the
    /// prefixes of the `[Source]` sections that match it, each prefix once. Left out: a host
    /// prefix of an address of the NIC (the kernel's local route of an address, whoever added it:
    /// the address has its rule), and a family the NIC has no usable address of (its table has no
    /// routes of that family: a note says so).
    func extraSources(
        link: Link, addresses: [InterfaceAddress], localRoutes: [Route], allAddresses: [InterfaceAddress],
        notes: inout [String]
    ) -> [ExtraSource] {
        var candidates = localRoutes.sorted { $0.destination < $1.destination }.map {
            ExtraSource(prefix: $0.destination.network, origin: .localRoute($0.proto))
        }
        for s in configuration.sources where s.match.matches(name: link.name, mac: link.mac) {
            for p in s.prefixes where p.family == .inet || configuration.ipv6 {
                candidates.append(ExtraSource(prefix: p, origin: .configuration))
            }
        }
        guard !candidates.isEmpty else { return [] }
        let own = Set(allAddresses.lazy.filter { $0.linkIndex == link.index }.map(\.address))
        let families = Set(addresses.map(\.family))
        var seen = Set<IPPrefix>()
        var out: [ExtraSource] = []
        for c in candidates {
            if c.prefix.isHost && own.contains(c.prefix.address) { continue }
            guard seen.insert(c.prefix).inserted else { continue }
            guard families.contains(c.prefix.family) else {
                notes.append(
                    "source \(c) has no rule: \(link.name) has no \(c.prefix.family == .inet ? "IPv4" : "IPv6") address"
                )
                continue
            }
            out.append(c)
        }
        return out
    }

    /// Gateway discovery in docs/design.md's order; returns the choice, a note when there is none, and
    /// a neighbour probe to send when the first host is the only candidate and has not answered.
    func gateway(
        for link: Link, family: AddressFamily, own: [InterfaceAddress], mainRoutes: [Route], neighbors: [Neighbor],
        hints: [GatewayHint]
    ) -> (GatewayHint?, String?, NeighborProbe?) {
        let ownAddresses = Set(own.map(\.address))
        func valid(_ g: IPAddress?) -> IPAddress? {
            guard let g, g.family == family, !ownAddresses.contains(g) else { return nil }
            return g
        }
        // 1. Configuration override.
        if let o = configuration.gateways.first(where: { $0.match.matches(name: link.name, mac: link.mac) }),
            let g = valid(family == .inet ? o.ipv4 : o.ipv6)
        {
            return (GatewayHint(gateway: g, source: .configuration), nil, nil)
        }
        // 2. A default route on this NIC in the main table (any metric; the lowest wins). A
        //    multipath default (two NICs' RA routes of one metric, merged by the kernel) gives each
        //    NIC the gateway of its own path.
        let defaults = mainRoutes.lazy.filter {
            $0.family == family && $0.destination.isDefault && $0.type == .unicast
        }.flatMap { r in
            r.paths.lazy.filter { $0.outputInterface == link.index }.compactMap { valid($0.gateway) }.map { (r, $0) }
        }.sorted { $0.0.effectiveMetric < $1.0.effectiveMetric }
        if let (d, g) = defaults.first {
            return (GatewayHint(gateway: g, source: d.proto == .ra ? .routerAdvertisement : .mainTable), nil, nil)
        }
        // 3-4. DHCP leases, then network_data.json, as the daemon found them.
        if let h = hints.first(where: { valid($0.gateway) != nil }) {
            return (GatewayHint(gateway: h.gateway, source: h.source), nil, nil)
        }
        // 5. The first host of the subnet (Neutron's default for both families), once it answers
        //    a neighbour probe (ARP or neighbour solicitation).
        let familyName = family == .inet ? "IPv4" : "IPv6"
        guard configuration.firstHostFallback,
            let subnet = own.map(\.subnet).first(where: { $0.length <= family.bitWidth - 2 })
        else {
            return (nil, "no \(familyName) gateway found: subnet routes only", nil)
        }
        let candidate = subnet.address.adding(1)
        guard valid(candidate) != nil else { return (nil, "no \(familyName) gateway found: subnet routes only", nil) }
        if neighbors.contains(where: { $0.linkIndex == link.index && $0.address == candidate && $0.state.hasAnswered })
        {
            return (GatewayHint(gateway: candidate, source: .firstHost), nil, nil)
        }
        return (
            nil, "first host \(candidate) has not answered a neighbour probe yet: subnet routes only",
            NeighborProbe(address: candidate, linkIndex: link.index)
        )
    }

    /// The routes of one NIC's table for one family.
    func tableRoutes(
        link: Link, family: AddressFamily, table: UInt32, own: [InterfaceAddress], gateway: IPAddress?,
        mainRoutes: [Route], managed: Set<Int32>, links: [Int32: Link], otherSubnets: some Sequence<IPPrefix>
    ) -> [Route] {
        // The routes in the order they were put; the first for a destination wins.
        var seen = Set<IPPrefix>()
        var out: [Route] = []
        func put(_ r: Route) {
            if seen.insert(r.destination).inserted { out.append(r) }
        }
        func ours(_ r: Route) -> Route {
            var r = r
            r.table = table
            r.proto = .nicroute
            r.metric = nil
            r.flags = r.configuredFlags
            r.nextHops = r.nextHops.map {
                NextHop(
                    gateway: $0.gateway, outputInterface: $0.outputInterface, weight: $0.weight,
                    flags: $0.configuredFlags)
            }
            if family == .inet6 { r.scope = .universe }
            return r
        }
        // A multipath route counts in each item below for its paths that the item describes, and
        // is copied with those paths only: its paths on I (1), else through unmanaged interfaces
        // (2), else it is reached via G (3); traffic from A never takes a path of another
        // managed NIC.
        let candidates = mainRoutes.filter {
            $0.family == family && !$0.destination.isDefault && $0.type == .unicast && !$0.paths.isEmpty
                && $0.source == nil && !$0.destination.address.isIPv6LinkLocal
                && !$0.destination.address.isIPv6Multicast
        }.sorted { $0.effectiveMetric < $1.effectiveMetric }  // the preferred route to a prefix wins
        // 1. Own connected subnets, then the main table's other routes on this NIC.
        for a in own where !a.prefix.isHost && !a.flags.contains(.noPrefixRoute) {
            put(
                Route(
                    family: family, table: table, destination: a.subnet, proto: .nicroute,
                    scope: family == .inet ? .link : .universe, outputInterface: link.index,
                    preferredSource: a.address))
        }
        for r in candidates {
            if let r = r.restricted(to: { $0.outputInterface == link.index }) { put(ours(r)) }
        }
        // 2. Specific routes through unmanaged interfaces stay as the main table has them.
        for r in candidates {
            let unmanaged = r.restricted {
                $0.outputInterface != link.index && !managed.contains($0.outputInterface)
                    && links[$0.outputInterface].map { !$0.flags.contains(.loopback) } ?? false
            }
            if let unmanaged { put(ours(unmanaged)) }
        }
        // 3. Routes through another managed NIC are reached via this NIC's gateway instead.
        if let gateway {
            let onlink = !own.contains { $0.subnet.contains(gateway) }
            var others = candidates.filter {
                $0.paths.contains { managed.contains($0.outputInterface) && $0.outputInterface != link.index }
            }
            .map(\.destination)
            others += otherSubnets.filter { $0.address.family == family }
            for dst in others {
                put(
                    Route(
                        family: family, table: table, destination: dst, proto: .nicroute,
                        flags: onlink ? Route.onlinkFlag : 0, gateway: gateway, outputInterface: link.index))
            }
            // 4. The default route.
            put(
                Route(
                    family: family, table: table, destination: .any(family), proto: .nicroute,
                    flags: onlink ? Route.onlinkFlag : 0, gateway: gateway, outputInterface: link.index))
        }
        return out
    }

    /// True when a route has a gateway on any of its paths.
    static func hasGateway(_ r: Route) -> Bool { r.paths.contains { $0.gateway != nil } || r.gateway != nil }

    /// Compares desired objects with the kernel's; only nicroute's own objects are changed.
    static func diff(desiredRoutes: [Route], desiredRules: [Rule], current: KernelSnapshot) -> ([Change], [String]) {
        var conflicts: [String] = []
        // Each key's first route, and the rare further routes with the same key; `wanted` marks
        // the routes whose key is desired. (Indexes, not arrays per key: this runs on every pass
        // over thousands of routes.)
        let routes = current.routes
        var firstByKey: [Route.Key: Int] = [:]
        firstByKey.reserveCapacity(routes.count)
        var moreByKey: [Route.Key: [Int]] = [:]
        // (By index, here and below: iterating the elements copied each route, retains included.)
        for i in routes.indices {
            let key = routes[i].key
            if firstByKey[key] == nil { firstByKey[key] = i } else { moreByKey[key, default: []].append(i) }
        }
        var wanted = [Bool](repeating: false, count: routes.count)
        var adds: [Change] = []
        for w in desiredRoutes.indices {
            let key = desiredRoutes[w].key
            guard let first = firstByKey[key] else {
                adds.append(.addRoute(desiredRoutes[w]))
                continue
            }
            let more = moreByKey[key] ?? []
            wanted[first] = true
            for i in more { wanted[i] = true }
            if routes[first].matches(desiredRoutes[w]) || more.contains(where: { routes[$0].matches(desiredRoutes[w]) })
            {
                continue
            }
            let want = desiredRoutes[w]
            let existing = [routes[first]] + more.map { routes[$0] }
            if existing.contains(where: isOwned) {
                adds.append(.replaceRoute(want))
            } else if let foreign = existing.first {
                conflicts.append(
                    "\(IPCommand.route("add", want)) is blocked by a route with protocol \(foreign.proto) in table \(foreign.table)"
                )
            } else {
                adds.append(.addRoute(want))
            }
        }
        // Connected routes before gateway routes: the kernel checks a gateway against the table.
        let routeAdds =
            adds.filter { if case .addRoute(let r) = $0 { !Self.hasGateway(r) } else { false } }
            + adds.filter { if case .addRoute(let r) = $0 { Self.hasGateway(r) } else { true } }
        let routeDeletes = routes.indices.filter { !wanted[$0] && isOwned(routes[$0]) }.map {
            Change.deleteRoute(routes[$0])
        }

        // (Lazily: not a filtered copy of thousands of rules.)
        let ownedRules = current.rules.lazy.filter(isOwned)
        // Per rule, how many times the kernel has it (a duplicate of a desired rule is removed
        // too) and whether it is desired: one table for both (this runs on every pass over
        // thousands of rules, and each hash of a rule costs).
        var tally: [Rule: (owned: Int, desired: Bool)] = [:]
        tally.reserveCapacity(max(current.rules.count, desiredRules.count))
        for r in ownedRules { tally[r, default: (0, false)].owned += 1 }
        // Each desired rule once, the first time it comes: added unless the kernel has it.
        var ruleAdds: [Change] = []
        for r in desiredRules {
            if let i = tally.index(forKey: r) {
                tally.values[i].desired = true
            } else {
                tally[r] = (0, true)
                ruleAdds.append(.addRule(r))
            }
        }
        var ruleDeletes: [Change] = []
        var deleted = Set<Rule>()
        for r in ownedRules where tally[r]?.desired != true && deleted.insert(r).inserted {
            ruleDeletes.append(.deleteRule(r))
        }
        // (Duplicates are rare: only they are sorted, by their `ip` spelling, for a stable order.)
        let duplicates = tally.filter { $0.value.owned > 1 && $0.value.desired }
        for (r, n) in duplicates.map({ (IPCommand.rule("", $0.key), $0.key, $0.value.owned) }).sorted(by: {
            $0.0 < $1.0
        })
        .map({ ($0.1, $0.2) }) {
            ruleDeletes += Array(repeating: .deleteRule(r), count: n - 1)
        }
        return (routeAdds + ruleAdds + ruleDeletes + routeDeletes, conflicts)
    }
}

/// Stable NIC slots keyed by MAC address (name when a link has none): slot n means table
/// `tables.lowerBound + n` and priority `priorities.lowerBound + n`. Persisted by the daemon.
public struct SlotTable: Hashable, Sendable {
    public private(set) var slots: [String: Int]

    public init(_ slots: [String: Int] = [:]) { self.slots = slots }

    /// The key of a link: its MAC address, or `name:NAME` without one.
    public static func key(_ link: Link) -> String {
        if let mac = link.mac, mac.bytes.contains(where: { $0 != 0 }) { return mac.description }
        return "name:\(link.name)"
    }

    public func slot(for key: String) -> Int? { slots[key] }

    /// Gives each key without a slot the lowest free slot below `capacity`. When none is free,
    /// forgets slots of keys not in `keys` (NICs gone for good), lowest slot first.
    public mutating func assign(_ keys: [String], capacity: Int) {
        // Slots outside the band (the band shrank, or the state file was edited) are forgotten:
        // their NICs get a new slot inside it.
        slots = slots.filter { $0.value < capacity }
        for key in keys where slots[key] == nil {
            var used = Set(slots.values)
            if used.count >= capacity {
                let present = Set(keys)
                if let victim = slots.filter({ !present.contains($0.key) }).min(by: { $0.value < $1.value }) {
                    slots[victim.key] = nil
                    used.remove(victim.value)
                }
            }
            if let free = (0..<capacity).first(where: { !used.contains($0) }) { slots[key] = free }
        }
    }

    /// The persisted form: one `KEY SLOT` line per NIC, sorted by slot.
    public func serialized() -> String {
        slots.sorted { $0.value < $1.value }.map { "\($0.key) \($0.value)\n" }.joined()
    }

    /// Parses the persisted form; malformed lines are skipped (the file is ours, and a lost slot
    /// only means a new table id). `# comments` and blank lines are no data.
    public init(parsing text: String) {
        self = Self.parse(text).table
    }

    /// Parses the persisted form, and counts the lines that are neither a `KEY SLOT` line nor a
    /// comment (or repeat a slot): garbage the caller reports. The first of them, for the report.
    public static func parse(_ text: String) -> (table: SlotTable, unreadable: Int, first: String?) {
        var out: [String: Int] = [:]
        var unreadable = 0
        var first: String?
        for line in text.split(separator: "\n") {
            // A comment starts with `#` after any spaces: the same rule whatever the spaces, so that
            // no key read from a line can start with `#` (its serialized line would be a comment).
            if line.drop(while: { $0 == " " }).hasPrefix("#") || line.allSatisfy(\.isWhitespace) { continue }
            let parts = line.split(separator: " ")
            if parts.count == 2, let n = Int(parts[1]), n >= 0, n < 1 << 16, !out.values.contains(n) {
                out[String(parts[0])] = n
            } else {
                unreadable += 1
                if first == nil { first = String(line.prefix(80)) }
            }
        }
        var table = SlotTable()
        table.slots = out
        return (table, unreadable, first)
    }
}
