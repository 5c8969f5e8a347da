/// nicrouted's settings, from `/etc/nicroute/nicroute.conf`, its drop-ins and the command line.
public struct Configuration: Hashable, Sendable {
    /// Table ids handed out to NICs, one per slot. Must lie in 1...32765 and avoid 253-255.
    public var tables: ClosedRange<UInt32> = 10000...10999
    /// Rule priorities handed out to NICs, one per slot. Must lie in 1...32765.
    public var priorities: ClosedRange<UInt32> = 10000...10999
    /// Manage IPv6 addresses too.
    public var ipv6: Bool = true
    /// Use the first host of a NIC's subnet as its gateway when nothing else names one, once it
    /// answers a neighbour probe.
    public var firstHostFallback: Bool = true
    /// Interfaces to manage. Empty: the default selection (physical Ethernet-like devices).
    public var manage: [InterfaceMatch] = []
    /// Interfaces never to manage, whatever `manage` says.
    public var ignore: [InterfaceMatch] = []
    /// Per-NIC gateway overrides; the first whose match fits a NIC wins.
    public var gateways: [GatewayOverride] = []
    /// Where an OpenStack config drive's `network_data.json` may be found.
    public var networkDataPaths: [String] = [
        "/mnt/config/openstack/latest/network_data.json",
        "/media/configdrive/openstack/latest/network_data.json",
        "/var/lib/cloud/seed/config_drive/openstack/latest/network_data.json",
    ]

    public init() {}

    /// The number of NIC slots: as many as both bands allow.
    public var slotCount: Int { min(tables.count, priorities.count) }
}

/// Selects interfaces by name (a shell glob: `*`, `?`, `[...]`) or by MAC address.
public enum InterfaceMatch: Hashable, Sendable, CustomStringConvertible {
    case name(String)
    case mac(MACAddress)

    /// Parses one word: a MAC address (`aa:bb:cc:dd:ee:ff`) or a name glob.
    public init(_ word: String) {
        if let mac = MACAddress(word), word.count == 17 { self = .mac(mac) } else { self = .name(word) }
    }

    public func matches(name: String, mac: MACAddress?) -> Bool {
        switch self {
        case .name(let pattern): Glob.matches(pattern, name)
        case .mac(let m): m == mac
        }
    }

    public var description: String {
        switch self {
        case .name(let p): p
        case .mac(let m): m.description
        }
    }
}

/// A configured gateway for the NICs an `InterfaceMatch` selects.
public struct GatewayOverride: Hashable, Sendable {
    public var match: InterfaceMatch
    public var ipv4: IPAddress?
    public var ipv6: IPAddress?
    public init(match: InterfaceMatch, ipv4: IPAddress? = nil, ipv6: IPAddress? = nil) {
        self.match = match
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }
}

/// Shell-style glob matching (`fnmatch(3)` without flags), written here because the Core
/// imports no libc: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`, and `\` escapes.
public enum Glob {
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.unicodeScalars)
        let t = Array(text.unicodeScalars)
        // Iterative matcher with single-star backtracking.
        var pi = 0
        var ti = 0
        var starP = -1
        var starT = 0
        while ti < t.count {
            if pi < p.count {
                switch p[pi] {
                case "*":
                    starP = pi
                    starT = ti
                    pi += 1
                    continue
                case "?":
                    pi += 1
                    ti += 1
                    continue
                case "[":
                    if let (matched, next) = bracket(p, pi, t[ti]) {
                        if matched {
                            pi = next
                            ti += 1
                            continue
                        }
                    } else if t[ti] == "[" {
                        pi += 1
                        ti += 1
                        continue
                    }
                case "\\" where pi + 1 < p.count:
                    if p[pi + 1] == t[ti] {
                        pi += 2
                        ti += 1
                        continue
                    }
                default:
                    if p[pi] == t[ti] {
                        pi += 1
                        ti += 1
                        continue
                    }
                }
            }
            guard starP >= 0 else { return false }
            pi = starP + 1
            starT += 1
            ti = starT
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }

    /// Matches `c` against the bracket expression at `p[start]`; nil when it is not closed.
    private static func bracket(_ p: [Unicode.Scalar], _ start: Int, _ c: Unicode.Scalar) -> (Bool, Int)? {
        var i = start + 1
        var negate = false
        if i < p.count && (p[i] == "!" || p[i] == "^") {
            negate = true
            i += 1
        }
        var matched = false
        var first = true
        while i < p.count && (first || p[i] != "]") {
            first = false
            if i + 2 < p.count && p[i + 1] == "-" && p[i + 2] != "]" {
                if p[i].value <= c.value && c.value <= p[i + 2].value { matched = true }
                i += 3
            } else {
                if p[i] == c { matched = true }
                i += 1
            }
        }
        guard i < p.count else { return nil }
        return (matched != negate, i + 1)
    }
}
