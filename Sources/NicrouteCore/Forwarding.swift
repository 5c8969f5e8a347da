// Forwarded connections (docs/design.md, "Forwarded connections"): a connection that arrives on
// managed NIC I and is forwarded (Docker's published ports, NodePorts, any DNAT to a guest
// behind the VM) is answered through I. The reply carries the container's source address, so
// no `from` rule sees it; instead:
//
// - nftables, in a table of nicroute's own (`inet nicroute`), stores I in the connection's
//   conntrack mark when the connection's first packet arrives on I, and copies it onto the
//   packet mark of every later packet of the connection that is routed by the VM (prerouting:
//   forwarded requests and forwarded replies);
// - one rule per NIC and family, `fwmark M(I)/MASK lookup T(I)`, sends those packets by I's
//   table where they would otherwise take the main table's default route; one shared rule per
//   family before them (`not fwmark 0/MASK lookup main suppress_prefixlength 0`) keeps the main
//   table's specific routes for marked packets (see `Planner.forwardRules`).
//
// Locally generated packets (the output hook) never get the mark: the VM's own traffic is
// routed by the source rules (docs/design.md) exactly as before.
//
// Why the request is marked too, not only the reply: with strict reverse-path filtering
// (rp_filter=1) the kernel checks a forwarded request's source by looking up the way back
// *after* DNAT (the destination is the container's address, so no `from` rule applies); that
// lookup uses the packet mark only with `src_valid_mark=1`, and then finds I's table via the
// fwmark rule. I's table holds the main table's routes through unmanaged interfaces (the
// container bridge), so the request itself is still forwarded to the container.

/// How forwarded connections are handled (`[Routing] ForwardedConnections=`).
public enum ForwardingMode: String, Hashable, Sendable, CaseIterable {
    /// Always install the marks and fwmark rules.
    case yes
    /// Never: the ruleset and fwmark rules are removed.
    case no
    /// Install them when the VM forwards IPv4 or IPv6 packets (`net.ipv4.ip_forward=1` or
    /// `net.ipv6.conf.all.forwarding=1`): Docker, Kubernetes and libvirt all turn forwarding on.
    case auto
}

/// The connection marks of managed NICs: the slot of a NIC, plus one, spread over the set bits
/// of the mask (lowest first), so that any mask works, contiguous or not.
public struct ForwardMarks: Hashable, Sendable {
    public var mask: UInt32
    public init(mask: UInt32) { self.mask = mask }

    /// The default mask: bits 4, 12 and 13 (seven NICs). Chosen clear of the marks others use:
    /// kube-proxy 0x4000 (masquerade) and 0x8000 (drop); Calico 0xffff0000 (its default
    /// `IptablesMarkMask`); Tailscale 0xff0000; Cilium's magic 0x0f00 and kube-proxy bits;
    /// wg-quick's 0xca6c (51820); the AWS VPC CNI's connmark 0x80; Docker's encrypted overlay
    /// 0xd0c4e3. Known overlaps (documented in nicroute.conf(5)): Podman/netavark's 0x2000
    /// (hostport masquerade) and the identity byte of Cilium's proxy marks (0xff).
    public static let defaultMask: UInt32 = 0x0000_3010

    /// The number of NICs the mask can tell apart (mark 0 means "no NIC").
    public var capacity: Int {
        let bits = mask.nonzeroBitCount
        return bits >= 31 ? Int(Int32.max) : (1 << bits) - 1
    }

    /// The mark of the NIC in `slot`, or nil when the mask has too few bits for it.
    public func mark(slot: Int) -> UInt32? {
        guard slot >= 0, slot < capacity else { return nil }
        var value = UInt32(slot + 1)
        var out: UInt32 = 0
        var bit: UInt32 = 1
        while value != 0 && bit != 0 {
            if mask & bit != 0 {
                if value & 1 != 0 { out |= bit }
                value >>= 1
            }
            bit = bit &<< 1
        }
        return out
    }
}

/// The ruleset nicroute keeps in the kernel for forwarded connections.
public enum ForwardRuleset {
    /// nicroute's nftables table: family `inet` (IPv4 and IPv6 in one), name `nicroute`.
    public static let family = "inet"
    public static let table = "nicroute"

    /// The priority of the prerouting chain: -150 is `mangle` (after conntrack at -200, before
    /// DNAT at -100), so the mark is on the packet before the routing decision and before any
    /// other tool's NAT; nicroute only writes mask bits and accepts (never drops), so the
    /// other tools' chains at the same hook see every packet as before.
    public static let priority = -150

    /// The nft script that replaces nicroute's table in one transaction: `add` (so that
    /// `delete` cannot fail when the table is absent), `delete`, then the definitions. The
    /// kernel applies a buffer atomically: there is no moment without the table once it was
    /// there. It grows with NICs (one rule per NIC), never with addresses or connections.
    ///
    /// - Parameter nics: the marked NICs, in slot order.
    public static func script(nics: [ForwardedNIC], mask: UInt32) -> String {
        var s = "add table \(family) \(table)\ndelete table \(family) \(table)\n"
        s += definition(nics: nics, mask: mask)
        return s
    }

    /// The table's definition (also the text `nft list table inet nicroute` is compared with).
    public static func definition(nics: [ForwardedNIC], mask: UInt32) -> String {
        let m = hex(mask)
        var s = "table \(family) \(table) {\n"
        s += "\tchain prerouting {\n"
        s += "\t\ttype filter hook prerouting priority \(priority); policy accept;\n"
        for nic in nics {
            // A new connection remembers the NIC it came in on (other ct mark bits are kept).
            s += "\t\tct state new iifname \(quoted(nic.name)) ct mark set ct mark & \(hex(~mask)) | \(hex(nic.mark))\n"
        }
        // Every routed packet of a marked connection (request and reply) carries its NIC's
        // mark; other mark bits are kept. One rule per NIC rather than one copying `ct mark`
        // into `meta mark`: combining two registers in one expression needs a recent kernel
        // (NFT_BITWISE with a second source register), a constant mask and value works on all.
        for nic in nics {
            s += "\t\tct mark & \(m) == \(hex(nic.mark)) meta mark set meta mark & \(hex(~mask)) | \(hex(nic.mark))\n"
        }
        s += "\t}\n}\n"
        return s
    }

    /// The script that removes the table (nothing else); "No such file" counts as done.
    public static let deleteScript = "delete table \(family) \(table)\n"

    static func hex(_ v: UInt32) -> String { "0x" + String(v, radix: 16) }

    /// An interface name as an nft string literal. Names the kernel accepts contain no quote,
    /// no whitespace and no '/' (dev_valid_name), so quoting is enough.
    static func quoted(_ name: String) -> String { "\"" + name.filter { $0 != "\"" && $0 != "\\" } + "\"" }
}

/// The rules of a plan that route forwarded connections: `fwmark M(I)/MASK lookup T(I)`.
extension Planner {
    /// The fwmark rules for the planned NICs: per family, one shared rule that gives marked
    /// packets the main table's specific routes, then one rule per NIC for the rest.
    ///
    /// 1. `not fwmark 0/MASK lookup main suppress_prefixlength 0`, at the priority just below
    ///    the band (`Priorities=` first - 1): a marked packet goes where the main table's
    ///    specific routes send it (the container bridge, a backend on another NIC's subnet, a
    ///    VPN), as forwarding did before nicroute; only a default-route answer is suppressed.
    ///    Without it, a request arriving on I and DNATed to a host on another managed NIC's
    ///    subnet would follow I's table, which reaches that subnet via I's gateway (docs/design.md's
    ///    rule for the VM's own replies), and be lost.
    /// 2. `fwmark M(I)/MASK lookup T(I)` at the NIC's own priority P(I), that of its `from`
    ///    rules: what would have taken the main table's default route (the reply to the
    ///    client, the reverse-path check of the request) takes I's default route. Both kinds of
    ///    rules at P(I) send a packet by I's table, and their selectors do not meet in practice
    ///    (marks are set on forwarded packets only, never by the output hook; their source is
    ///    not one of the VM's addresses until SNAT, after routing), so the kernel's insertion
    ///    order within P(I) does not matter.
    public func forwardRules(nics: [ManagedNIC], marks: ForwardMarks) -> [Rule] {
        var rules: [Rule] = []
        var families: [AddressFamily] = []
        for nic in nics {
            guard let mark = marks.mark(slot: nic.slot) else { continue }
            for family in AddressFamily.allCases where nic.addresses.contains(where: { $0.family == family }) {
                if !families.contains(family) { families.append(family) }
                rules.append(
                    Rule(
                        family: family, priority: nic.priority, table: nic.table, firewallMark: mark,
                        firewallMask: marks.mask, proto: .nicroute))
            }
        }
        let shared = configuration.priorities.lowerBound - 1
        return families.sorted { $0.rawValue < $1.rawValue }.map { family in
            // The kernel keeps (and reports) a zero mark as no FRA_FWMARK, only FRA_FWMASK.
            Rule(
                family: family, priority: shared, table: RoutingTable.main, firewallMask: marks.mask,
                suppressPrefixLength: 0, proto: .nicroute, invert: true)
        } + rules
    }

    /// Foreign rules (not nicroute's) whose fwmark selector shares bits with `mask`: another
    /// tool that uses those bits (the preflight names them).
    public static func markCollisions(rules: [Rule], mask: UInt32) -> [Rule] {
        rules.filter { r in
            guard !isOwned(r), r.firewallMark != nil || r.firewallMask != nil else { return false }
            let mark = r.firewallMark ?? 0
            let theirs = r.firewallMask ?? 0xffff_ffff
            return theirs & mask != 0 && (mark != 0 || r.invert)
        }
    }
}
