/// An invalid configuration file: which file, which line, and why.
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The file's path, as given to the parser.
    public var file: String
    /// The 1-based line number.
    public var line: Int
    /// What is wrong, in words an operator can act on.
    public var reason: String

    public init(file: String, line: Int, reason: String) {
        self.file = file
        self.line = line
        self.reason = reason
    }

    /// `FILE:LINE: REASON`, the way compilers and systemd print it.
    public var description: String { "\(file):\(line): \(reason)" }
}

/// Reads `nicroute.conf` and its drop-ins: systemd-style INI text.
///
/// ```
/// # Lines starting with '#' or ';' are comments.
/// [Routing]
/// Tables=10000-10999
/// Priorities=10000-10999
/// IPv6=yes
/// FirstHostFallback=yes
/// ForwardedConnections=auto
/// ForwardMarkMask=0x3010
/// NetworkData=/mnt/config/openstack/latest/network_data.json
/// LocalRoutes=yes
///
/// [Interfaces]
/// Manage=eth* fa:16:3e:00:00:01
/// Ignore=docker* veth*
///
/// [Gateway]
/// Interface=eth1
/// IPv4=192.0.2.1
/// IPv6=fe80::1
///
/// [Source]
/// Interface=eth1
/// Prefix=10.98.0.0/24 2001:db8:98::/64
/// ```
///
/// Section and key names are case-sensitive. Sections and keys whose names begin with `X-`
/// are ignored, as systemd does, so that other tools can keep their notes in the file.
/// Comments take whole lines: a `#` after a value is part of the value.
///
/// A scalar key given again replaces its value (a later drop-in wins), and an empty
/// assignment (`Tables=`) restores its default. `Manage=` and `Ignore=` accumulate, and an
/// empty assignment resets the list; `NetworkData=` replaces the whole list, and an empty
/// assignment leaves it empty. Each `[Gateway]` section adds one override, each `[Source]`
/// section one set of source prefixes (its `Prefix=` lines accumulate, an empty one resets the
/// section's list). Words are separated by whitespace or commas.
public enum ConfigurationParser {
    /// Applies configuration files in order over the defaults: the main file first, then its
    /// drop-ins (conventionally sorted by file name).
    ///
    /// - Throws: `ConfigurationError` for the first invalid line of any file.
    public static func load(_ files: [(path: String, text: String)]) throws(ConfigurationError) -> Configuration {
        var configuration = Configuration()
        for file in files {
            configuration = try parse(file.text, file: file.path, into: configuration)
        }
        return configuration
    }

    /// Applies one configuration file over `base`.
    ///
    /// - Parameter file: the file's path, for error messages.
    /// - Throws: `ConfigurationError` for the first invalid line.
    public static func parse(
        _ text: String, file: String, into base: Configuration
    ) throws(ConfigurationError) -> Configuration {
        var parser = FileParser(file: file, configuration: base)
        var text = Substring(text)
        if text.unicodeScalars.first == "\u{FEFF}" { text.unicodeScalars.removeFirst() }  // A byte order mark.
        for (index, line) in ScalarText.lines(text).enumerated() {
            try parser.consume(line: ScalarText.trimmed(line), number: index + 1)
        }
        try parser.finishSection()
        return parser.configuration
    }

    /// Parses the command line's `--manage` argument: words separated by commas and/or
    /// whitespace (`'eth*,ens5'`, `'eth0 fa:16:3e:00:00:01'`), each a MAC address or a name glob.
    public static func parseManageList(_ arg: String) -> [InterfaceMatch] {
        ScalarText.words(Substring(arg)).map { InterfaceMatch(String($0)) }
    }
}

/// Line and word splitting on Unicode scalars rather than Characters, as systemd splits bytes:
/// a combining mark after a separator must not glue the separator to the next word, as it
/// would inside a grapheme cluster.
enum ScalarText {
    /// Space, tab, and the carriage return of a CRLF line end.
    static func isBlank(_ c: Unicode.Scalar) -> Bool { c == " " || c == "\t" || c == "\r" }

    /// The lines of `text`, split at each line feed.
    static func lines(_ text: Substring) -> [Substring] {
        text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map(Substring.init)
    }

    /// `s` without leading and trailing blanks.
    static func trimmed(_ s: Substring) -> Substring {
        let scalars = s.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isBlank($0) }),
            let last = scalars.lastIndex(where: { !isBlank($0) })
        else { return "" }
        return Substring(scalars[first...last])
    }

    /// The words of `s`, separated by blanks and/or commas.
    static func words(_ s: Substring) -> [Substring] {
        s.unicodeScalars.split(whereSeparator: { isBlank($0) || $0 == "," }).map(Substring.init)
    }

    /// The parts of `s` before and after the first `separator`, or nil when there is none.
    static func split(_ s: Substring, at separator: Unicode.Scalar) -> (before: Substring, after: Substring)? {
        let scalars = s.unicodeScalars
        guard let index = scalars.firstIndex(of: separator) else { return nil }
        return (Substring(scalars[..<index]), Substring(scalars[scalars.index(after: index)...]))
    }

    /// The parts of `s` between each `separator`, empty parts included.
    static func components(_ s: Substring, _ separator: Unicode.Scalar) -> [Substring] {
        s.unicodeScalars.split(separator: separator, omittingEmptySubsequences: false).map(Substring.init)
    }
}

/// The state of one file's parse.
private struct FileParser {
    enum Section {
        case routing
        case control
        case interfaces
        case gateway
        case source
        /// An `X-` section, ignored.
        case extensionSection
    }

    /// A `[Gateway]` section being read.
    struct PendingGateway {
        var headerLine: Int
        var match: InterfaceMatch?
        var ipv4: IPAddress?
        var ipv6: IPAddress?
    }

    /// A `[Source]` section being read.
    struct PendingSource {
        var headerLine: Int
        var match: InterfaceMatch?
        /// The line of the `Interface=` or `MACAddress=` that set `match`.
        var matchLine: Int?
        var prefixes: [IPPrefix] = []
    }

    let file: String
    var configuration: Configuration
    var section: Section?
    var gateway: PendingGateway?
    var source: PendingSource?

    init(file: String, configuration: Configuration) {
        self.file = file
        self.configuration = configuration
    }

    func error(_ line: Int, _ reason: String) -> ConfigurationError {
        ConfigurationError(file: file, line: line, reason: reason)
    }

    mutating func consume(line: Substring, number: Int) throws(ConfigurationError) {
        let scalars = line.unicodeScalars
        guard let first = scalars.first, first != "#", first != ";" else { return }
        if first == "[" {
            guard scalars.last == "]", scalars.count > 2 else {
                throw error(number, "invalid section header '\(line)' (expected [Name])")
            }
            try finishSection()
            let name = Substring(scalars.dropFirst().dropLast())
            switch name {
            case "Routing": section = .routing
            case "Interfaces": section = .interfaces
            case "Control": section = .control
            case "Gateway":
                section = .gateway
                gateway = PendingGateway(headerLine: number)
            case "Source":
                section = .source
                source = PendingSource(headerLine: number)
            case _ where name.hasPrefix("X-"): section = .extensionSection
            default:
                throw error(
                    number,
                    "unknown section [\(name)] (expected [Routing], [Interfaces], [Gateway], [Source] or [Control])")
            }
            return
        }
        guard let (rawKey, rawValue) = ScalarText.split(line, at: "=") else {
            throw error(number, "expected KEY=VALUE, a [Section] header or a comment, got '\(line)'")
        }
        let key = ScalarText.trimmed(rawKey)
        let value = ScalarText.trimmed(rawValue)
        guard !key.isEmpty else { throw error(number, "missing key name before '=' in '\(line)'") }
        guard let section else {
            throw error(number, "\(key)= appears before any section header (such as [Routing])")
        }
        if key.hasPrefix("X-") { return }
        let assignment = Assignment(file: file, line: number, key: String(key), value: value)
        switch section {
        case .routing: try routing(assignment)
        case .interfaces: try interfaces(assignment)
        case .gateway: try gatewayKey(assignment)
        case .source: try sourceKey(assignment)
        case .control: try control(assignment)
        case .extensionSection: return
        }
    }

    /// Ends the current section; a `[Gateway]` or `[Source]` section is checked and added here.
    mutating func finishSection() throws(ConfigurationError) {
        defer {
            gateway = nil
            source = nil
        }
        if section == .source, let pending = source {
            guard let match = pending.match else {
                throw error(pending.headerLine, "[Source] section has no Interface= or MACAddress=")
            }
            guard !pending.prefixes.isEmpty else {
                throw error(pending.headerLine, "[Source] section for '\(match)' has no Prefix=")
            }
            configuration.sources.append(SourceOverride(match: match, prefixes: pending.prefixes))
            return
        }
        guard section == .gateway, let pending = gateway else { return }
        guard let match = pending.match else {
            throw error(pending.headerLine, "[Gateway] section has no Interface=")
        }
        guard pending.ipv4 != nil || pending.ipv6 != nil else {
            throw error(pending.headerLine, "[Gateway] section for '\(match)' has neither IPv4= nor IPv6=")
        }
        configuration.gateways.append(GatewayOverride(match: match, ipv4: pending.ipv4, ipv6: pending.ipv6))
    }

    // MARK: - Sections

    mutating func routing(_ a: Assignment) throws(ConfigurationError) {
        let defaults = Configuration()
        switch a.key {
        case "Tables":
            guard !a.value.isEmpty else {
                configuration.tables = defaults.tables
                return
            }
            let range = try a.range()
            if range.overlaps(RoutingTable.default...RoutingTable.local) {
                throw a.invalid("range must not include 253-255 (reserved tables)")
            }
            configuration.tables = range
        case "Priorities":
            configuration.priorities = a.value.isEmpty ? defaults.priorities : try a.range()
        case "IPv6":
            configuration.ipv6 = a.value.isEmpty ? defaults.ipv6 : try a.boolean()
        case "FirstHostFallback":
            configuration.firstHostFallback = a.value.isEmpty ? defaults.firstHostFallback : try a.boolean()
        case "ForwardedConnections":
            if a.value.isEmpty {
                configuration.forwardedConnections = defaults.forwardedConnections
            } else if a.value.lowercased() == "auto" {
                configuration.forwardedConnections = .auto
            } else {
                configuration.forwardedConnections = try a.boolean() ? .yes : .no
            }
        case "ForwardMarkMask":
            guard !a.value.isEmpty else {
                configuration.forwardMarkMask = defaults.forwardMarkMask
                return
            }
            let text = a.value.lowercased()
            let digits = text.hasPrefix("0x") ? text.dropFirst(2) : Substring(text)
            guard let mask = UInt32(digits, radix: text.hasPrefix("0x") ? 16 : 10) else {
                throw a.invalid("not a 32-bit mask (expected e.g. 0x3010)")
            }
            guard mask != 0 else { throw a.invalid("the mask must have at least one bit") }
            configuration.forwardMarkMask = mask
        case "LocalRoutes":
            configuration.localRoutes = a.value.isEmpty ? defaults.localRoutes : try a.boolean()
        case "NetworkData":
            let paths = ScalarText.words(a.value).map(String.init)
            if let relative = paths.first(where: { !$0.hasPrefix("/") }) {
                throw a.invalid("'\(relative)' is not an absolute path")
            }
            configuration.networkDataPaths = paths
        default: throw a.unknownKey(in: "Routing")
        }
    }

    mutating func interfaces(_ a: Assignment) throws(ConfigurationError) {
        switch a.key {
        case "Manage":
            if a.value.isEmpty { configuration.manage = [] } else { configuration.manage += try a.matches() }
        case "Ignore":
            if a.value.isEmpty { configuration.ignore = [] } else { configuration.ignore += try a.matches() }
        default: throw a.unknownKey(in: "Interfaces")
        }
    }

    mutating func control(_ a: Assignment) throws(ConfigurationError) {
        let defaults = Configuration()
        switch a.key {
        case "Socket":
            guard !a.value.isEmpty else {
                configuration.controlSocket = defaults.controlSocket
                return
            }
            guard a.value.hasPrefix("/") else { throw a.invalid("not an absolute path") }
            guard a.value.utf8.count < 108 else { throw a.invalid("longer than a Unix socket path may be (107 bytes)") }
            configuration.controlSocket = String(a.value)
        case "Group":
            guard !a.value.isEmpty else {
                configuration.controlGroup = nil
                return
            }
            let valid = a.value.unicodeScalars.allSatisfy {
                ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                    || "_-.".unicodeScalars.contains($0)
            }
            guard valid, a.value.count <= 32 else { throw a.invalid("not a valid group name") }
            configuration.controlGroup = String(a.value)
        default: throw a.unknownKey(in: "Control")
        }
    }

    mutating func gatewayKey(_ a: Assignment) throws(ConfigurationError) {
        switch a.key {
        case "Interface":
            let matches = try a.matches()
            guard matches.count <= 1 else {
                throw a.invalid("expected one interface name pattern or MAC address (use one [Gateway] per interface)")
            }
            gateway?.match = matches.first
        case "IPv4": gateway?.ipv4 = try a.gateway(.inet)
        case "IPv6": gateway?.ipv6 = try a.gateway(.inet6)
        default: throw a.unknownKey(in: "Gateway")
        }
    }

    mutating func sourceKey(_ a: Assignment) throws(ConfigurationError) {
        switch a.key {
        case "Interface", "MACAddress":
            if let line = source?.matchLine {
                throw a.invalid(
                    "the section already names its interface on line \(line) (use one [Source] per interface)")
            }
            let matches = try a.matches()
            guard matches.count == 1, let match = matches.first else {
                throw a.invalid(
                    matches.isEmpty
                        ? "expected an interface name pattern or MAC address"
                        : "expected one interface name pattern or MAC address (use one [Source] per interface)")
            }
            if a.key == "MACAddress", case .name = match { throw a.invalid("not a MAC address") }
            source?.match = match
            source?.matchLine = a.line
        case "Prefix":
            if a.value.isEmpty {
                source?.prefixes = []
            } else {
                source?.prefixes += try a.sourcePrefixes()
            }
        default: throw a.unknownKey(in: "Source")
        }
    }
}

/// One `Key=Value` line and the value conversions it may need.
private struct Assignment {
    let file: String
    let line: Int
    let key: String
    let value: Substring

    /// The first and last number the bands may use: below 32766, the main table's rule.
    static let band: ClosedRange<UInt32> = 1...32765

    /// An error that quotes the assignment: `Key=Value: reason`.
    func invalid(_ reason: String) -> ConfigurationError {
        ConfigurationError(file: file, line: line, reason: "\(key)=\(value): \(reason)")
    }

    func unknownKey(in section: String) -> ConfigurationError {
        ConfigurationError(file: file, line: line, reason: "unknown key '\(key)' in section [\(section)]")
    }

    /// `yes|no|true|false|on|off|1|0`, case-insensitive like systemd's `parse_boolean()`.
    func boolean() throws(ConfigurationError) -> Bool {
        switch value.lowercased() {
        case "yes", "true", "on", "1": return true
        case "no", "false", "off", "0": return false
        default: throw invalid("not a boolean (expected yes/no, true/false, on/off or 1/0)")
        }
    }

    /// `FIRST-LAST` within `Assignment.band`.
    func range() throws(ConfigurationError) -> ClosedRange<UInt32> {
        let parts = ScalarText.components(value, "-").map(ScalarText.trimmed)
        let isNumber = { (s: Substring) in !s.isEmpty && s.unicodeScalars.allSatisfy { ("0"..."9").contains($0) } }
        guard parts.count == 2, isNumber(parts[0]), isNumber(parts[1]) else {
            throw invalid("not a range (expected FIRST-LAST, e.g. 10000-10999)")
        }
        let band = Self.band
        guard let first = UInt32(parts[0]), let last = UInt32(parts[1]), band.contains(first),
            band.contains(last)
        else {
            throw invalid("range must lie within \(band.lowerBound)-\(band.upperBound)")
        }
        guard first <= last else { throw invalid("first (\(first)) is greater than last (\(last))") }
        return first...last
    }

    /// Interface matches: MAC addresses or name globs.
    func matches() throws(ConfigurationError) -> [InterfaceMatch] {
        try ScalarText.words(value).map { word throws(ConfigurationError) in
            let match = InterfaceMatch(String(word))
            // The kernel's dev_valid_name() refuses '/' and ':' in interface names, so such a
            // word can only have been meant as a MAC address; the colons of a character class
            // (`eth[[:digit:]]`) are the glob's, not the name's.
            if case .name = match, Self.withoutCharacterClasses(word).contains(where: { $0 == ":" || $0 == "/" }) {
                throw invalid("'\(word)' is neither a MAC address nor an interface name pattern")
            }
            return match
        }
    }

    /// The scalars of `word` without its character classes: each `[:` letters `:]` is dropped.
    static func withoutCharacterClasses(_ word: Substring) -> [Unicode.Scalar] {
        let scalars = Array(word.unicodeScalars)
        var out: [Unicode.Scalar] = []
        var i = 0
        while i < scalars.count {
            if scalars[i] == "[", i + 1 < scalars.count, scalars[i + 1] == ":" {
                var end = i + 2
                while end < scalars.count, ("a"..."z").contains(scalars[end]) { end += 1 }
                if end > i + 2, end + 1 < scalars.count, scalars[end] == ":", scalars[end + 1] == "]" {
                    i = end + 2
                    continue
                }
            }
            out.append(scalars[i])
            i += 1
        }
        return out
    }

    /// Source prefixes (`10.98.0.0/24`, `2001:db8:98::/64`, a bare address for one host): each a
    /// network (no host bits set) and not a default route's prefix, which would take every
    /// source.
    func sourcePrefixes() throws(ConfigurationError) -> [IPPrefix] {
        try ScalarText.words(value).map { word throws(ConfigurationError) in
            guard let prefix = IPPrefix(word) else {
                throw invalid("'\(word)' is not an IP prefix (expected ADDRESS/LENGTH, e.g. 10.98.0.0/24)")
            }
            guard prefix.network == prefix else {
                throw invalid("'\(word)' has host bits set (did you mean \(prefix.network)?)")
            }
            guard !prefix.isDefault else {
                throw invalid("'\(word)' would take every source address: give a narrower prefix")
            }
            if prefix.address.isIPv6LinkLocal || prefix.address.isIPv6Multicast || prefix.address.isLoopback {
                throw invalid("'\(word)' is not usable as a source (link-local, multicast or loopback)")
            }
            return prefix
        }
    }

    /// One gateway address of `family`, or nil for an empty assignment.
    func gateway(_ family: AddressFamily) throws(ConfigurationError) -> IPAddress? {
        if value.isEmpty { return nil }
        guard let address = IPAddress(value) else {
            if ScalarText.words(value).count > 1 { throw invalid("expected one address") }
            throw invalid("not an IP address")
        }
        guard address.family == family else {
            throw invalid("not an \(family == .inet ? "IPv4" : "IPv6") address")
        }
        if let problem = GatewayAddress.problem(address) { throw invalid("not usable as a gateway (\(problem))") }
        return address
    }
}
