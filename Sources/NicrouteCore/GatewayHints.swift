/// Where a NIC's gateway was learned; `status` prints it.
public enum GatewaySource: String, Sendable, Hashable, Codable, CustomStringConvertible {
    case configuration
    case mainTable = "main-table"
    case networkd = "systemd-networkd lease"
    case dhclient = "dhclient lease"
    case networkManager = "NetworkManager lease"
    case dhcpcd = "dhcpcd lease"
    case networkData = "network_data.json"
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

extension IPAddress {
    /// Why this address cannot be anyone's gateway, or nil when it can be.
    var gatewayProblem: String? {
        if family == .inet {
            switch UInt32(truncatingIfNeeded: low) {
            case 0: return "unspecified address"
            case 0xFFFF_FFFF: return "broadcast address"
            case let v where v >> 28 == 0xE: return "multicast address"
            case let v where v >> 24 == 127: return "loopback address"
            default: return nil
            }
        }
        if high == 0 && low == 0 { return "unspecified address" }
        if isIPv6Multicast { return "multicast address" }
        if isLoopback { return "loopback address" }
        return nil
    }

    var isUsableGateway: Bool { gatewayProblem == nil }
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
        var values: [Substring: Substring] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            let line = ConfigurationParser.trimmed(line)
            guard !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") else { continue }
            values[line[..<equals]] = line[line.index(after: equals)...]
        }
        if let routers = values["ROUTER"] {
            for word in ConfigurationParser.words(routers) {
                if let address = IPAddress(word), address.family == .inet, address.isUsableGateway {
                    return address
                }
            }
        }
        for key: Substring in ["CLASSLESS_ROUTES", "ROUTES"] {
            for route in (values[key] ?? "").split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                let parts = route.split(separator: ",", omittingEmptySubsequences: false)
                guard parts.count == 2, let destination = IPPrefix(parts[0]), destination.isDefault,
                    destination.family == .inet, let address = IPAddress(parts[1]), address.family == .inet,
                    address.isUsableGateway
                else { continue }
                return address
            }
        }
        return nil
    }

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
        options.scan(bytes, optionsStart..<bytes.count)
        // RFC 2131 4.1: the options field first, then `file` (bytes 108-235), then `sname` (44-107).
        if options.overload & 1 != 0 { options.scan(bytes, 108..<236) }
        if options.overload & 2 != 0 { options.scan(bytes, 44..<108) }
        return options.gateway
    }

    // MARK: - OpenStack config drive

    /// The default gateways in an OpenStack `network_data.json`, by link MAC address.
    ///
    /// `links[]` name each link's `id` and `ethernet_mac_address` (`vlan_mac_address` for a
    /// VLAN link); `networks[]` refer to a link by id and carry `routes[]` of `network`,
    /// `netmask` and `gateway`. A default route has an all-zero network and netmask
    /// (`0.0.0.0`/`0.0.0.0`, `::`/`::`, or a `/0` or `0` prefix). The first default route of each
    /// family on a link wins. Malformed JSON gives an empty result.
    public static func networkData(_ text: String) -> [MACAddress: NetworkDataGateways] {
        guard let document = try? JSONValue.parse(text) else { return [:] }
        var macs: [String: MACAddress] = [:]
        for link in document["links"]?.arrayValue ?? [] {
            guard let id = link["id"]?.stringValue,
                let macText = link["ethernet_mac_address"]?.stringValue ?? link["vlan_mac_address"]?.stringValue,
                let mac = MACAddress(macText)
            else { continue }
            if macs[id] == nil { macs[id] = mac }
        }
        var result: [MACAddress: NetworkDataGateways] = [:]
        for network in document["networks"]?.arrayValue ?? [] {
            guard let linkID = network["link"]?.stringValue, let mac = macs[linkID] else { continue }
            for route in network["routes"]?.arrayValue ?? [] {
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
    private static func defaultGateway(_ route: JSONValue) -> IPAddress? {
        guard let networkText = route["network"]?.stringValue,
            let gatewayText = route["gateway"]?.stringValue,
            let gateway = IPAddress(gatewayText), gateway.isUsableGateway
        else { return nil }
        let network: IPPrefix
        if networkText.contains("/") {
            guard let prefix = IPPrefix(networkText) else { return nil }
            network = prefix
        } else {
            guard let address = IPAddress(networkText) else { return nil }
            let netmask = route["netmask"]?.stringValue
            let isZeroMask = netmask == "0" || netmask.flatMap { IPAddress($0) }.map { $0.high == 0 && $0.low == 0 }
                ?? false
            guard isZeroMask, let prefix = IPPrefix(address, length: 0) else { return nil }
            network = prefix
        }
        guard network.isDefault, network.address.high == 0, network.address.low == 0,
            network.family == gateway.family
        else { return nil }
        return gateway
    }
}

// MARK: - dhclient internals

/// A lexical token of dhclient's leases syntax.
private enum DhclientToken: Equatable {
    case word(Substring)
    case string(String)
    case open
    case close
    case semicolon
    case comma
}

/// Splits dhclient leases text into tokens; `#` comments run to the end of a line. An
/// unterminated string ends the stream (the file is being written).
private struct DhclientTokenizer: Sequence, IteratorProtocol {
    let text: Substring
    var index: Substring.Index

    init(_ text: String) {
        self.text = Substring(text)
        index = self.text.startIndex
    }

    mutating func next() -> DhclientToken? {
        while index < text.endIndex {
            let c = text[index]
            switch c {
            case _ where c.isWhitespace:
                index = text.index(after: index)
            case "#":
                index = text[index...].firstIndex(where: \.isNewline) ?? text.endIndex
            case "{", "}", ";", ",":
                index = text.index(after: index)
                return c == "{" ? .open : c == "}" ? .close : c == ";" ? .semicolon : .comma
            case "\"":
                return string()
            default:
                let start = index
                while index < text.endIndex, !Self.endsWord(text[index]) { index = text.index(after: index) }
                return .word(text[start..<index])
            }
        }
        return nil
    }

    private static func endsWord(_ c: Character) -> Bool {
        c.isWhitespace || c == "{" || c == "}" || c == ";" || c == "," || c == "\"" || c == "#"
    }

    /// A quoted string with backslash escapes kept undecoded except `\"` and `\\`.
    private mutating func string() -> DhclientToken? {
        var value = ""
        var i = text.index(after: index)
        while i < text.endIndex {
            let c = text[i]
            if c == "\"" {
                index = text.index(after: i)
                return .string(value)
            }
            if c == "\\" {
                let next = text.index(after: i)
                guard next < text.endIndex else { break }
                if text[next] == "\"" || text[next] == "\\" {
                    value.append(text[next])
                } else {
                    value.append(c)
                    value.append(text[next])
                }
                i = text.index(after: next)
                continue
            }
            value.append(c)
            i = text.index(after: i)
        }
        index = text.endIndex
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
            case .word(let name): interface = String(name)
            default: break
            }
        case .word("option"):
            guard statement.count > 2 else { return }
            switch statement[1] {
            case .word("routers"):
                for case .word(let word) in statement.dropFirst(2) {
                    if let address = IPAddress(word), address.family == .inet, address.isUsableGateway {
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
    mutating func scan(_ bytes: [UInt8], _ range: Range<Int>) {
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
            case 52 where length >= 1: overload |= bytes[value.lowerBound]
            default: break
            }
            i = value.upperBound
        }
    }

    var gateway: IPAddress? {
        var i = 0
        while i + 4 <= routers.count {
            if let address = IPAddress(bytes: routers[i..<i + 4]), address.isUsableGateway { return address }
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
                router.isUsableGateway
            {
                return router
            }
            i = routerStart + 4
        }
        return nil
    }
}
