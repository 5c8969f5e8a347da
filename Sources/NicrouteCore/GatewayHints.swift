/// Where a NIC's gateway was learned; `status` prints it.
public enum GatewaySource: String, Sendable, Hashable, Codable, CustomStringConvertible {
    case configuration
    case mainTable = "main-table"
    case networkd = "systemd-networkd lease"
    case dhclient = "dhclient lease"
    case networkManager = "NetworkManager lease"
    case dhcpcd = "dhcpcd lease"
    case networkData = "OpenStack network data"
    case firstHost = "first host"
    case routerAdvertisement = "router advertisement"

    public var description: String { rawValue }
}

/// A gateway for a NIC and where it came from.
public struct GatewayHint: Hashable, Sendable {
    public var gateway: IPAddress
    public var source: GatewaySource

    public init(gateway: IPAddress, source: GatewaySource) {
        self.gateway = gateway
        self.source = source
    }
}

/// The default gateways `network_data.json` gives one link.
public struct NetworkDataGateways: Hashable, Sendable {
    public var ipv4: IPAddress?
    public var ipv6: IPAddress?

    public init(ipv4: IPAddress? = nil, ipv6: IPAddress? = nil) {
        self.ipv4 = ipv4
        self.ipv6 = ipv6
    }
}

/// Which addresses can be a gateway at all.
enum GatewayAddress {
    /// Why `a` cannot be anyone's gateway, or nil when it can be.
    static func problem(_ a: IPAddress) -> String? {
        if isZero(a) { return "unspecified address" }
        if a.family == .inet {
            switch UInt32(truncatingIfNeeded: a.low) {
            case 0xFFFF_FFFF: return "broadcast address"
            case let v where v >> 28 == 0xE: return "multicast address"
            case let v where v >> 24 == 127: return "loopback address"
            default: return nil
            }
        }
        if a.isIPv6Multicast { return "multicast address" }
        if a.isLoopback { return "loopback address" }
        return nil
    }

    /// True when `a` can be a gateway.
    static func isUsable(_ a: IPAddress) -> Bool { problem(a) == nil }

    /// True for `0.0.0.0` and `::`.
    static func isZero(_ a: IPAddress) -> Bool { a.high == 0 && a.low == 0 }
}

/// Reads gateways out of the files DHCP clients and config drives leave behind.
///
/// Every function takes untrusted text or bytes (a lease may be half written, a config drive
/// may hold anything): malformed input yields nil or an empty result, never a trap. Only
/// usable gateway addresses are returned (not unspecified, broadcast, multicast or loopback).
public enum LeaseParser {
    // MARK: - systemd-networkd

    /// The gateway in a systemd-networkd lease (`/run/systemd/netif/leases/IFINDEX`), or in a
    /// NetworkManager internal-client lease (`/var/lib/NetworkManager/internal-*-IFACE.lease`),
    /// which has the same `KEY=VALUE` format.
    ///
    /// The first usable address of `ROUTER=`; without one, the gateway of a default route in
    /// `CLASSLESS_ROUTES=` or `ROUTES=` (`0.0.0.0/0,GATEWAY`).
    public static func networkd(_ text: String) -> IPAddress? {
        var values: [String: Substring] = [:]
        for line in ScalarText.lines(Substring(text)) {
            let line = ScalarText.trimmed(line)
            guard line.unicodeScalars.first != "#", let (key, value) = ScalarText.split(line, at: "=") else { continue }
            values[String(key)] = value
        }
        for word in ScalarText.words(values["ROUTER"] ?? "") {
            if let address = IPAddress(word), address.family == .inet, GatewayAddress.isUsable(address) {
                return address
            }
        }
        for key in ["CLASSLESS_ROUTES", "ROUTES"] {
            // Routes are separated by blanks; each is DESTINATION/LENGTH,GATEWAY.
            for route in (values[key] ?? "").unicodeScalars.split(whereSeparator: ScalarText.isBlank) {
                let parts = ScalarText.components(Substring(route), ",")
                guard parts.count == 2, let destination = IPPrefix(parts[0]), destination.isDefault,
                    destination.family == .inet, let address = IPAddress(parts[1]), address.family == .inet,
                    GatewayAddress.isUsable(address)
                else { continue }
                return address
            }
        }
        return nil
    }

    // MARK: - NetworkManager

    /// The gateway in the DHCPv4 options NetworkManager publishes for a device: the `Options`
    /// property (`a{sv}` of strings) of its `org.freedesktop.NetworkManager.DHCP4Config` object
    /// on D-Bus, which `nmcli device show` prints as `DHCP4.OPTION[n]: routers = 20.20.20.254`.
    ///
    /// Why D-Bus and not a file: NetworkManager's default (internal) DHCP client saves leases
    /// with only `ADDRESS=` under a "This is private data. Do not parse." header
    /// (src/core/dhcp/nm-dhcp-nettools.c, `lease_save`), and its run-state files
    /// /run/NetworkManager/devices/IFINDEX hold device state, no DHCP options
    /// (src/core/nm-config.c); the D-Bus API is the documented interface
    /// (https://networkmanager.dev/docs/api/latest/gdbus-org.freedesktop.NetworkManager.DHCP4Config.html).
    ///
    /// The values are NetworkManager's spelling of the lease (src/core/dhcp/nm-dhcp-nettools.c,
    /// `lease_parse_routes`; names from src/core/dhcp/nm-dhcp-options.c): `routers` is a
    /// blank-separated list of IPv4 addresses; `rfc3442_classless_static_routes` (option 121) and
    /// `ms_classless_static_routes` (249) are `DESTINATION/LENGTH GATEWAY` pairs. As in
    /// NetworkManager and RFC 3442, a classless option present means `routers` is ignored: the
    /// gateway is its default route's (121 before 249), else the first usable router.
    ///
    /// Strict: a value with any word that is not what NetworkManager writes yields nil for that
    /// option, never a guess.
    public static func networkManagerDHCP4(_ options: [String: String]) -> IPAddress? {
        for key in ["rfc3442_classless_static_routes", "ms_classless_static_routes"] {
            guard let value = options[key] else { continue }
            return classlessDefault(value)
        }
        guard let value = options["routers"] else { return nil }
        var routers: [IPAddress] = []
        for word in ScalarText.words(Substring(value)) {
            guard let address = IPAddress(word), address.family == .inet, word.unicodeScalars.allSatisfy(isDotted)
            else { return nil }
            routers.append(address)
        }
        // NetworkManager lists 0.0.0.0 too and skips it ("silently skip 0.0.0.0").
        return routers.first(where: GatewayAddress.isUsable)
    }

    /// DHCPv4 options as `nmcli -f DHCP4 device show IFACE` prints them (one
    /// `DHCP4.OPTION[N]:  KEY = VALUE` line each; `-t` leaves out the blanks after the colon):
    /// the form of the fixtures, the fuzz target's input and what an administrator can paste.
    /// Lines of any other shape are skipped.
    public static func nmcliDHCP4Options(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in ScalarText.lines(Substring(text)) {
            guard let (field, rest) = ScalarText.split(line, at: ":"), field.hasPrefix("DHCP4.OPTION"),
                let (key, value) = ScalarText.split(rest, at: "=")
            else { continue }
            let name = ScalarText.trimmed(key)
            guard !name.isEmpty else { continue }
            out[String(name)] = String(ScalarText.trimmed(value))
        }
        return out
    }

    /// The gateway of the `0.0.0.0/0` pair in NetworkManager's spelling of a classless option,
    /// nil when it has none or any pair is malformed.
    private static func classlessDefault(_ value: String) -> IPAddress? {
        let words = value.unicodeScalars.split(whereSeparator: ScalarText.isBlank).map(Substring.init)
        guard words.count % 2 == 0 else { return nil }
        var result: IPAddress?
        for i in stride(from: 0, to: words.count, by: 2) {
            guard words[i].unicodeScalars.allSatisfy({ isDotted($0) || $0 == "/" }),
                words[i + 1].unicodeScalars.allSatisfy(isDotted),
                let destination = IPPrefix(words[i]), destination.family == .inet,
                let gateway = IPAddress(words[i + 1]), gateway.family == .inet
            else { return nil }
            if result == nil, destination.isDefault, GatewayAddress.isUsable(gateway) { result = gateway }
        }
        return result
    }

    /// A character of a dotted-quad IPv4 address.
    private static func isDotted(_ c: Unicode.Scalar) -> Bool { c == "." || ("0"..."9").contains(c) }

    // MARK: - ISC dhclient

    /// The gateway in an ISC dhclient leases file (`/var/lib/dhcp/dhclient*.leases`, or
    /// NetworkManager's `/var/lib/NetworkManager/dhclient-*-IFACE.lease`).
    ///
    /// The file may hold many `lease { ... }` blocks, for several interfaces, oldest first; the
    /// last complete block whose `interface` is `interface` counts. Its gateway is the first
    /// usable address of `option routers`, or else the default route of
    /// `option rfc3442-classless-static-routes`. `lease6` and other blocks are skipped.
    public static func dhclient(_ text: String, interface: String) -> IPAddress? {
        var result: IPAddress?
        var statement: [DhclientToken] = []
        var depth = 0
        var lease: DhclientLease?
        for token in DhclientTokenizer(text) {
            switch token {
            case .open:
                if depth == 0 && statement == [.word("lease")] { lease = DhclientLease() }
                depth += 1
                statement = []
            case .close:
                if depth == 1, let complete = lease {
                    if complete.interface == interface { result = complete.gateway }
                    lease = nil
                }
                depth = max(depth - 1, 0)
                statement = []
            case .semicolon:
                if depth == 1 { lease?.apply(statement) }
                statement = []
            default:
                statement.append(token)
            }
        }
        return result
    }

    // MARK: - dhcpcd

    /// The gateway in a dhcpcd lease (`/var/lib/dhcpcd/IFACE.lease`): the raw DHCP message.
    ///
    /// The message is a 236-byte BOOTP header, the magic cookie 99.130.83.99, then options
    /// (pad 0, end 255, else code, length, value). The gateway is the first usable address of
    /// option 3 (routers), or else the default route of option 121 (classless static routes,
    /// RFC 3442). Options split into several instances are joined (RFC 3396), and the `file`
    /// and `sname` fields are read too when option 52 (overload) says they hold options.
    public static func dhcpcd(_ bytes: [UInt8]) -> IPAddress? {
        let optionsStart = 240
        guard bytes.count >= optionsStart, bytes[236..<240].elementsEqual([99, 130, 83, 99]) else { return nil }
        var options = DHCPOptions()
        options.scan(bytes, optionsStart..<bytes.count, isOptionsField: true)
        // RFC 2131 4.1: the options field first, then `file` (bytes 108-235), then `sname` (44-107).
        let overload = options.overload
        if overload & 1 != 0 { options.scan(bytes, 108..<236, isOptionsField: false) }
        if overload & 2 != 0 { options.scan(bytes, 44..<108, isOptionsField: false) }
        return options.gateway
    }

    // MARK: - OpenStack network data

    /// The default gateways in an OpenStack `network_data.json`, by link MAC address: the file
    /// itself (a config drive's), or cloud-init's instance data, which holds the same document
    /// under `ds.network_json` (see `openStackNetworkData(_:)`). A file with no network data
    /// gives no gateway.
    ///
    /// - Throws: `NetworkDataError`, as `openStackNetworkData(_:)`.
    public static func networkData(_ text: String) throws(NetworkDataError) -> [MACAddress: NetworkDataGateways] {
        try openStackNetworkData(text) ?? [:]
    }

    /// The default gateways in OpenStack's network data, by link MAC address; nil when `text`
    /// is cloud-init's instance data (`/run/cloud-init/instance-data.json`, a top-level `ds`
    /// object) without network data: a cloud other than OpenStack, or a datasource that read
    /// none.
    ///
    /// `network_data.json` is read as it is, or from the instance data's `ds.network_json`,
    /// where cloud-init's OpenStack and ConfigDrive datasources keep the document they read
    /// (from the metadata service or the config drive), world-readable, and update it when a
    /// hot-plug makes them read it again.
    ///
    /// `links[]` name each link's `id` and `ethernet_mac_address` (`vlan_mac_address` for a
    /// VLAN link); `networks[]` refer to a link by id and carry `routes[]` of `network`,
    /// `netmask` and `gateway`. A default route has an all-zero network and netmask
    /// (`0.0.0.0`/`0.0.0.0`, `::`/`::`, or a `/0` or `0` prefix). The first default route of each
    /// family on a link wins. A link whose MAC is no MAC, a route whose gateway is no usable
    /// address, or a network pointing at no known link gives no gateway (as before).
    ///
    /// - Throws: `NetworkDataError` naming the key path and the problem when the text is not
    ///   JSON, not an object, or one of the keys above holds a value of another JSON type
    ///   (`"gateway": 167772161`, `ds.network_json.links: 1`). Keys nicroute does not read are
    ///   ignored; null reads as absent.
    public static func openStackNetworkData(
        _ text: String
    ) throws(NetworkDataError) -> [MACAddress: NetworkDataGateways]? {
        let bytes = Array(text.utf8)
        let document: NetworkData.Document
        do {
            let instance = try JSONCoding.decode(NetworkData.InstanceData.self, from: bytes)
            if let ds = instance.ds {
                guard let inner = ds.networkJSON else { return nil }
                document = inner
            } else {
                document = try JSONCoding.decode(NetworkData.Document.self, from: bytes)
            }
        } catch {
            throw NetworkDataError(error)
        }
        var macs: [String: MACAddress] = [:]
        for link in document.links ?? [] {
            guard let id = link.id, let macText = link.ethernetMAC ?? link.vlanMAC, let mac = MACAddress(macText)
            else { continue }
            if macs[id] == nil { macs[id] = mac }
        }
        var result: [MACAddress: NetworkDataGateways] = [:]
        for network in document.networks ?? [] {
            guard let linkID = network.link, let mac = macs[linkID] else { continue }
            for route in network.routes ?? [] {
                guard let gateway = defaultGateway(route) else { continue }
                var entry = result[mac] ?? NetworkDataGateways()
                if gateway.family == .inet {
                    if entry.ipv4 == nil { entry.ipv4 = gateway }
                } else if entry.ipv6 == nil {
                    entry.ipv6 = gateway
                }
                result[mac] = entry
            }
        }
        return result
    }

    /// The gateway of a `network_data.json` route, when the route is a default route.
    private static func defaultGateway(_ route: NetworkData.Route) -> IPAddress? {
        guard let network = route.network, let gatewayText = route.gateway,
            let gateway = IPAddress(gatewayText), GatewayAddress.isUsable(gateway)
        else { return nil }
        let destination: IPPrefix?
        if network.contains("/") {
            destination = IPPrefix(network)
        } else {
            let netmask = route.netmask
            let isZeroMask = netmask == "0" || netmask.flatMap { IPAddress($0) }.map(GatewayAddress.isZero) == true
            destination = isZeroMask ? IPAddress(network).flatMap { IPPrefix($0, length: 0) } : nil
        }
        guard let destination, destination.isDefault, GatewayAddress.isZero(destination.address),
            destination.family == gateway.family
        else { return nil }
        return gateway
    }
}

/// A `network_data.json` that cannot be read: the key path and what is wrong there.
public struct NetworkDataError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Where, as in `networks[0].routes[1].gateway`; empty for the document itself.
    public var path: String
    public var reason: String

    init(_ error: any Error) {
        let e = error as? JSONDecodeError ?? JSONDecodeError(path: "", reason: "\(error)")
        path = e.path
        reason = e.reason
    }

    public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }
}

/// What nicroute reads of `network_data.json`.
///
/// OpenStack writes many keys nicroute has no use for (`mtu`, `bond_links`, `services`, ...)
/// and adds new ones over releases, so unknown keys are ignored here, unlike in nicroute's own
/// control messages: refusing them would refuse the file of the next OpenStack release. The
/// keys read are typed: one holding another JSON type is an error naming its path, so a
/// changed or broken file is reported, never read as "no gateway" in silence. Null reads as
/// absent (OpenStack writes null for values it does not know).
enum NetworkData {
    /// cloud-init's instance data (`instance-data.json`): of its many keys, only the
    /// datasource's own part, `ds`, and in it the network data an OpenStack datasource read.
    struct InstanceData: Decodable {
        var ds: Datasource?
    }

    struct Datasource: Decodable {
        var networkJSON: Document?

        enum CodingKeys: String, CodingKey {
            case networkJSON = "network_json"
        }
    }

    struct Document: Decodable {
        var links: [Link]?
        var networks: [Network]?
    }

    struct Link: Decodable {
        var id: String?
        var ethernetMAC: String?
        var vlanMAC: String?

        enum CodingKeys: String, CodingKey {
            case id
            case ethernetMAC = "ethernet_mac_address"
            case vlanMAC = "vlan_mac_address"
        }
    }

    struct Network: Decodable {
        var link: String?
        var routes: [Route]?
    }

    struct Route: Decodable {
        var network: String?
        var netmask: String?
        var gateway: String?
    }
}

// MARK: - dhclient internals

/// A lexical token of dhclient's leases syntax.
private enum DhclientToken: Equatable {
    case word(String)
    case string(String)
    case open
    case close
    case semicolon
    case comma
}

/// Splits dhclient leases text into tokens, byte by byte as dhclient's own lexer does; `#`
/// comments run to the end of the line. An unterminated string ends the stream (the file is
/// being written).
private struct DhclientTokenizer: Sequence, IteratorProtocol {
    let bytes: [UInt8]
    var index = 0

    init(_ text: String) { bytes = Array(text.utf8) }

    mutating func next() -> DhclientToken? {
        while index < bytes.count {
            let b = bytes[index]
            switch b {
            case _ where Self.isSpace(b):
                index += 1
            case UInt8(ascii: "#"):
                while index < bytes.count && bytes[index] != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: ";"), UInt8(ascii: ","):
                index += 1
                switch b {
                case UInt8(ascii: "{"): return .open
                case UInt8(ascii: "}"): return .close
                case UInt8(ascii: ";"): return .semicolon
                default: return .comma
                }
            case UInt8(ascii: "\""):
                return string()
            default:
                let start = index
                while index < bytes.count && !Self.endsWord(bytes[index]) { index += 1 }
                return .word(String(decoding: bytes[start..<index], as: UTF8.self))
            }
        }
        return nil
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || (0x09...0x0D).contains(b) }

    private static func endsWord(_ b: UInt8) -> Bool {
        isSpace(b) || b == UInt8(ascii: "{") || b == UInt8(ascii: "}") || b == UInt8(ascii: ";")
            || b == UInt8(ascii: ",") || b == UInt8(ascii: "\"") || b == UInt8(ascii: "#")
    }

    /// A quoted string; `\"` and `\\` are unescaped, other escapes (`\000`) kept as written.
    private mutating func string() -> DhclientToken? {
        var value: [UInt8] = []
        var i = index + 1
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\"") {
                index = i + 1
                return .string(String(decoding: value, as: UTF8.self))
            }
            if b == UInt8(ascii: "\\") {
                guard i + 1 < bytes.count else { break }
                let escaped = bytes[i + 1]
                if escaped != UInt8(ascii: "\"") && escaped != UInt8(ascii: "\\") { value.append(b) }
                value.append(escaped)
                i += 2
                continue
            }
            value.append(b)
            i += 1
        }
        index = bytes.count
        return nil
    }
}

/// What one dhclient `lease { ... }` block says.
private struct DhclientLease {
    var interface: String?
    var routers: IPAddress?
    var classlessDefault: IPAddress?

    var gateway: IPAddress? { routers ?? classlessDefault }

    /// Records one `statement;` of the block.
    mutating func apply(_ statement: [DhclientToken]) {
        switch statement.first {
        case .word("interface"):
            switch statement.dropFirst().first {
            case .string(let name): interface = name
            case .word(let name): interface = name
            default: break
            }
        case .word("option"):
            guard statement.count > 2 else { return }
            switch statement[1] {
            case .word("routers"):
                for case .word(let word) in statement.dropFirst(2) {
                    if let address = IPAddress(word), address.family == .inet, GatewayAddress.isUsable(address) {
                        routers = address
                        return
                    }
                }
            case .word("rfc3442-classless-static-routes"), .word("classless-static-routes"):
                var octets: [UInt8] = []
                for case .word(let word) in statement.dropFirst(2) {
                    guard let octet = UInt8(word) else { return }
                    octets.append(octet)
                }
                classlessDefault = DHCPOptions.classlessDefault(octets)
            default:
                break
            }
        default:
            break
        }
    }
}

// MARK: - DHCP message internals

/// The options of a DHCP message that name a gateway.
private struct DHCPOptions {
    var routers: [UInt8] = []
    var classless: [UInt8] = []
    var overload: UInt8 = 0

    /// Reads the options in `bytes[range]` up to the end option or the first malformed one.
    /// Option 52 counts only in the options field proper (RFC 2132 9.3).
    mutating func scan(_ bytes: [UInt8], _ range: Range<Int>, isOptionsField: Bool) {
        var i = range.lowerBound
        while i < range.upperBound {
            let code = bytes[i]
            if code == 0 {
                i += 1
                continue
            }
            if code == 255 { return }
            guard i + 1 < range.upperBound else { return }
            let length = Int(bytes[i + 1])
            let value = i + 2..<i + 2 + length
            guard value.upperBound <= range.upperBound else { return }
            switch code {
            case 3: routers += bytes[value]
            case 121: classless += bytes[value]
            case 52 where length >= 1 && isOptionsField: overload |= bytes[value.lowerBound]
            default: break
            }
            i = value.upperBound
        }
    }

    var gateway: IPAddress? {
        var i = 0
        while i + 4 <= routers.count {
            if let address = IPAddress(bytes: routers[i..<i + 4]), GatewayAddress.isUsable(address) { return address }
            i += 4
        }
        return Self.classlessDefault(classless)
    }

    /// The router of the default route (prefix length 0) in option 121's encoding: for each
    /// route, the prefix length, the significant octets of the destination, then the router.
    static func classlessDefault(_ octets: [UInt8]) -> IPAddress? {
        var i = 0
        while i < octets.count {
            let length = Int(octets[i])
            guard length <= 32 else { return nil }
            let routerStart = i + 1 + (length + 7) / 8
            guard routerStart + 4 <= octets.count else { return nil }
            if length == 0, let router = IPAddress(bytes: octets[routerStart..<routerStart + 4]),
                GatewayAddress.isUsable(router)
            {
                return router
            }
            i = routerStart + 4
        }
        return nil
    }
}
