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
    /// Mark forwarded connections by their ingress NIC and route their packets by its table.
    public var forwardedConnections: ForwardingMode = .auto
    /// The packet and conntrack mark bits nicroute uses for forwarded connections.
    public var forwardMarkMask: UInt32 = ForwardMarks.defaultMask
    /// Interfaces to manage. Empty: the default selection (physical Ethernet-like devices).
    public var manage: [InterfaceMatch] = []
    /// Interfaces never to manage, whatever `manage` says.
    public var ignore: [InterfaceMatch] = []
    /// Per-NIC gateway overrides; the first whose match fits a NIC wins.
    public var gateways: [GatewayOverride] = []
    /// Local-type routes of the kernel's `local` table through a managed NIC (a cloud guest
    /// agent's forwarded and alias IPs, "AnyIP" ranges) are sources of that NIC, each with a
    /// `from PREFIX` rule, like its addresses (docs/design.md, Routing semantics).
    public var localRoutes: Bool = true
    /// Further sources from `[Source]` sections: every NIC a section's match fits gets a
    /// `from PREFIX` rule for each of its prefixes.
    public var sources: [SourceOverride] = []
    /// Where OpenStack's network data may be found, first match wins: cloud-init's instance
    /// data (its OpenStack and ConfigDrive datasources keep `network_data.json` there, from the
    /// metadata service or the config drive, world-readable), then a mounted config drive's
    /// `network_data.json`.
    public var networkDataPaths: [String] = [
        "/run/cloud-init/instance-data.json",
        "/mnt/config/openstack/latest/network_data.json",
        "/media/configdrive/openstack/latest/network_data.json",
        "/var/lib/cloud/seed/config_drive/openstack/latest/network_data.json",
    ]

    /// The control socket `nicroutectl` talks to.
    public var controlSocket: String = "/run/nicroute/control.sock"
    /// A group (besides root) whose members may change things over the control socket.
    public var controlGroup: String? = nil

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

/// Source prefixes configured for the NICs an `InterfaceMatch` selects (`[Source]`).
public struct SourceOverride: Hashable, Sendable {
    public var match: InterfaceMatch
    /// Network prefixes (host bits clear), never a default route's.
    public var prefixes: [IPPrefix]
    public init(match: InterfaceMatch, prefixes: [IPPrefix]) {
        self.match = match
        self.prefixes = prefixes
    }
}

/// Shell-style glob matching with the semantics of glibc's `fnmatch(3)` without flags, written
/// here because the Core imports no libc.
///
/// `*` matches any run of characters, `?` any one character (both also match `/` and a leading
/// `.`), `\x` the character `x`; a bracket expression matches one character: `[abc]`, `[a-z]`,
/// `[!x]` or `[^x]`, `[]x]` (a leading `]` is literal), `[[:digit:]]` (ASCII classes),
/// `[[=x=]]`, `[[.x.]]`, with `\` escapes inside. An unclosed `[` is a literal `[`; a trailing
/// `\` matches nothing. Characters compare as Unicode scalars, ranges by code point (glibc's
/// C locale).
public enum Glob {
    /// True when `text` matches `pattern` as a whole.
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.unicodeScalars)
        let t = Array(text.unicodeScalars)
        // Every element but `*` matches exactly one character, so single-star backtracking
        // suffices: a later star can always absorb what an earlier one would have.
        var pi = 0
        var ti = 0
        var starP: Int?
        var starT = 0
        while ti < t.count {
            if pi < p.count && p[pi] == "*" {
                starP = pi
                starT = ti
                pi += 1
                continue
            }
            if pi < p.count, let next = element(p, pi, t[ti]) {
                pi = next
                ti += 1
                continue
            }
            guard let star = starP else { return false }
            pi = star + 1
            starT += 1
            ti = starT
        }
        while pi < p.count && p[pi] == "*" { pi += 1 }
        return pi == p.count
    }

    /// Matches `c` against the one-character element at `p[i]`: the index after the element,
    /// or nil.
    private static func element(_ p: [Unicode.Scalar], _ i: Int, _ c: Unicode.Scalar) -> Int? {
        switch p[i] {
        case "?":
            return i + 1
        case "\\":
            guard i + 1 < p.count, p[i + 1] == c else { return nil }
            return i + 2
        case "[":
            switch Bracket(pattern: p, start: i + 1).match(c) {
            case .matched(let next): return next
            case .unterminated: return c == "[" ? i + 1 : nil
            case .failed: return nil
            }
        default:
            return p[i] == c ? i + 1 : nil
        }
    }

    /// One bracket expression, read the way glibc's `fnmatch` reads it.
    private struct Bracket {
        enum Outcome {
            /// The character matches; the pattern continues at `next`.
            case matched(next: Int)
            /// The character does not match (or the expression is malformed).
            case failed
            /// There is no closing `]`: the `[` stands for itself.
            case unterminated
        }

        /// glibc's `CHAR_CLASS_MAX_LENGTH`.
        static let maxClassNameLength = 256

        let pattern: [Unicode.Scalar]
        /// The index after the opening `[`.
        let start: Int

        func at(_ k: Int) -> Unicode.Scalar? { k < pattern.count ? pattern[k] : nil }

        func match(_ c: Unicode.Scalar) -> Outcome {
            var k = start
            let negated = at(k) == "!" || at(k) == "^"
            if negated { k += 1 }
            var current = at(k)
            k += 1
            // The first member is taken literally even when it is `]`.
            while true {
                guard let member = current else { return .unterminated }
                let low: Unicode.Scalar
                let isRange: Bool
                if member == "\\" {
                    guard let escaped = at(k) else { return .failed }
                    k += 1
                    low = escaped
                    isRange = at(k) == "-" && at(k + 1) != nil && at(k + 1) != "]"
                } else if member == "[", at(k) == ":", case let syntax = className(colon: k),
                    syntax != .notAName
                {
                    guard case .name(let name, let end) = syntax, let set = ASCIIClass(rawValue: name) else {
                        return .failed
                    }
                    if set.contains(c) { return skipRest(from: end, negated: negated) }
                    current = at(end)
                    k = end + 1
                    if current == "]" { break }
                    continue
                } else if member == "[", at(k) == "=", let x = at(k + 1), at(k + 2) == "=", at(k + 3) == "]" {
                    if x == c { return skipRest(from: k + 4, negated: negated) }
                    current = at(k + 4)
                    k += 5
                    if current == "]" { break }
                    continue
                } else if member == "[", at(k) == "." {
                    guard let (symbol, end) = collatingSymbol(dot: k) else { return .failed }
                    k = end
                    low = symbol
                    isRange = at(k) == "-" && at(k + 1) != nil
                } else {
                    low = member
                    isRange = at(k) == "-" && at(k + 1) != nil && at(k + 1) != "]"
                }
                if !isRange && low == c { return skipRest(from: k, negated: negated) }
                current = at(k)
                k += 1
                if current == "-" && at(k) != "]" {
                    let high: Unicode.Scalar
                    if at(k) == "[" && at(k + 1) == "." {
                        guard let (symbol, end) = collatingSymbol(dot: k + 1) else { return .failed }
                        high = symbol
                        k = end
                    } else {
                        if at(k) == "\\" { k += 1 }
                        guard let h = at(k) else { return .failed }
                        high = h
                        k += 1
                    }
                    if low.value <= c.value && c.value <= high.value { return skipRest(from: k, negated: negated) }
                    current = at(k)
                    k += 1
                }
                if current == "]" { break }
            }
            return negated ? .matched(next: k) : .failed
        }

        enum ClassName: Equatable {
            case name(String, end: Int)
            case notAName
            case tooLong
        }

        /// Reads `[:name:]` whose `:` is at `colon`; `end` is the index after `:]`.
        func className(colon: Int) -> ClassName {
            var name = ""
            var j = colon
            while true {
                if name.unicodeScalars.count == Self.maxClassNameLength { return .tooLong }
                j += 1
                if at(j) == ":" && at(j + 1) == "]" { return .name(name, end: j + 2) }
                guard let ch = at(j), ch >= "a", ch < "z" else { return .notAName }
                name.unicodeScalars.append(ch)
            }
        }

        /// Reads `[.x.]` whose first `.` is at `dot`: the symbol and the index after `.]`, or
        /// nil when it is unterminated or longer than one character (glibc's C locale).
        func collatingSymbol(dot: Int) -> (Unicode.Scalar, Int)? {
            var j = dot + 1
            while !(at(j) == "." && at(j + 1) == "]") {
                guard at(j) != nil else { return nil }
                j += 1
            }
            return j == dot + 2 ? (pattern[dot + 1], j + 2) : nil
        }

        /// Skips to the closing `]` after a member matched.
        func skipRest(from start: Int, negated: Bool) -> Outcome {
            var k = start
            while true {
                guard let ch = at(k) else { return .failed }
                k += 1
                if ch == "]" { break }
                if ch == "\\" {
                    guard at(k) != nil else { return .failed }
                    k += 1
                } else if ch == "[" && at(k) == ":" {
                    switch className(colon: k) {
                    case .name(_, let end): k = end
                    case .notAName: break
                    case .tooLong: return .failed
                    }
                } else if ch == "[" && at(k) == "=" {
                    guard at(k + 1) != nil, at(k + 2) == "=", at(k + 3) == "]" else { return .failed }
                    k += 4
                } else if ch == "[" && at(k) == "." {
                    var j = k + 1
                    while !(at(j) == "." && at(j + 1) == "]") {
                        guard at(j) != nil else { return .failed }
                        j += 1
                    }
                    k = j + 2
                }
            }
            return negated ? .failed : .matched(next: k)
        }
    }

    /// The POSIX character classes, for ASCII (glibc's C locale).
    private enum ASCIIClass: String {
        case alnum, alpha, blank, cntrl, digit, graph, lower, print, punct, space, upper, xdigit

        func contains(_ c: Unicode.Scalar) -> Bool {
            guard c.isASCII else { return false }
            let v = c.value
            let isDigit = (0x30...0x39).contains(v)
            let isUpper = (0x41...0x5A).contains(v)
            let isLower = (0x61...0x7A).contains(v)
            let isGraph = (0x21...0x7E).contains(v)
            switch self {
            case .alnum: return isDigit || isUpper || isLower
            case .alpha: return isUpper || isLower
            case .blank: return v == 0x20 || v == 0x09
            case .cntrl: return v < 0x20 || v == 0x7F
            case .digit: return isDigit
            case .graph: return isGraph
            case .lower: return isLower
            case .print: return isGraph || v == 0x20
            case .punct: return isGraph && !(isDigit || isUpper || isLower)
            case .space: return v == 0x20 || (0x09...0x0D).contains(v)
            case .upper: return isUpper
            case .xdigit: return isDigit || (0x41...0x46).contains(v) || (0x61...0x66).contains(v)
            }
        }
    }
}
