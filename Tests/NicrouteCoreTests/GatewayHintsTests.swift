import NicrouteCore
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of a file under `Tests/Fixtures/`.
func fixtureBytes(_ name: String, filePath: String = #filePath) -> [UInt8] {
    let testsDirectory = filePath.split(separator: "/", omittingEmptySubsequences: false).dropLast(2)
    let path = (testsDirectory + ["Fixtures", Substring(name)]).joined(separator: "/")
    guard let file = fopen(path, "rb") else {
        Issue.record("cannot open fixture \(path)")
        return []
    }
    defer { fclose(file) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = fread(&buffer, 1, buffer.count, file)
        if n <= 0 { break }
        bytes += buffer[0..<n]
    }
    return bytes
}

/// The text of a file under `Tests/Fixtures/`.
func fixtureText(_ name: String) -> String {
    String(decoding: fixtureBytes(name), as: UTF8.self)
}

private func ip(_ text: String) -> IPAddress { IPAddress(text)! }

@Suite struct GatewayHintsTests {
    // MARK: - systemd-networkd

    struct TextCase: Sendable, CustomTestStringConvertible {
        var name: String
        var text: String
        var expected: IPAddress?
        var testDescription: String { name }
    }

    static let networkdFixtures: [(file: String, gateway: String?)] = [
        ("leases/networkd-2", "10.0.0.1"),
        ("leases/networkd-3-classless-only", "192.168.40.1"),
        ("leases/networkd-4-no-router", nil),
        ("leases/networkd-5-old-routes", "10.20.0.1"),
        ("leases/internal-6f0c5c6e-2a5f-3b8e-9c1d-0a7e4c6b2f11-eth1.lease", "192.168.122.1"),
    ]

    @Test(arguments: networkdFixtures)
    func networkdFixture(_ file: String, _ gateway: String?) {
        #expect(LeaseParser.networkd(fixtureText(file)) == gateway.map(ip))
    }

    static let networkdCases: [TextCase] = [
        TextCase(name: "empty", text: "", expected: nil),
        TextCase(name: "one router", text: "ROUTER=10.0.0.1\n", expected: ip("10.0.0.1")),
        TextCase(name: "first of several", text: "ROUTER=10.0.0.1 10.0.0.254", expected: ip("10.0.0.1")),
        TextCase(name: "skips unusable", text: "ROUTER=0.0.0.0 255.255.255.255 10.0.0.9", expected: ip("10.0.0.9")),
        TextCase(
            name: "no trailing newline, CRLF", text: "ADDRESS=1.2.3.4\r\nROUTER=10.0.0.1", expected: ip("10.0.0.1")),
        TextCase(name: "commented out", text: "#ROUTER=10.0.0.1\n", expected: nil),
        TextCase(name: "not an address", text: "ROUTER=router.example\n", expected: nil),
        TextCase(name: "IPv6 is not a DHCPv4 router", text: "ROUTER=fe80::1\n", expected: nil),
        TextCase(name: "empty value", text: "ROUTER=\n", expected: nil),
        TextCase(name: "key must match exactly", text: "XROUTER=10.0.0.1\nROUTERS=10.0.0.2\n", expected: nil),
        TextCase(
            name: "classless default route", text: "CLASSLESS_ROUTES=10.1.0.0/16,10.0.0.3 0.0.0.0/0,10.0.0.4",
            expected: ip("10.0.0.4")),
        TextCase(
            name: "ROUTER wins over classless", text: "CLASSLESS_ROUTES=0.0.0.0/0,10.0.0.4\nROUTER=10.0.0.1",
            expected: ip("10.0.0.1")),
        TextCase(name: "malformed classless", text: "CLASSLESS_ROUTES=0.0.0.0/0 ,10.0.0.4 0/0,x", expected: nil),
        TextCase(name: "garbage", text: "\u{0}\u{1}=\n==\nROUTER\n=ROUTER=1.2.3.4", expected: nil),
    ]

    @Test(arguments: networkdCases)
    func networkd(_ c: TextCase) {
        #expect(LeaseParser.networkd(c.text) == c.expected)
    }

    // MARK: - dhclient

    static let dhclientFixtures: [(file: String, interface: String, gateway: String?)] = [
        // The last of two eth0 leases counts.
        ("leases/dhclient.leases", "eth0", "10.0.0.1"),
        // A string holding braces, a semicolon, a quote and '#' does not end the block.
        ("leases/dhclient.leases", "eth1", "192.168.50.1"),
        // No routers option: the default route of the classless static routes.
        ("leases/dhclient.leases", "ens6", "172.31.0.1"),
        // The file ends inside this lease: it is incomplete and ignored.
        ("leases/dhclient.leases", "eth2", nil),
        ("leases/dhclient.leases", "eth9", nil),
        ("leases/dhclient.leases", "eth", nil),
        ("leases/dhclient6.leases", "eth0", nil),
        ("leases/dhclient-7d3c1b7e-8f11-4a9e-b5a2-2c0e5d9a4f00-eth0.lease", "eth0", "198.51.100.65"),
    ]

    @Test(arguments: dhclientFixtures)
    func dhclientFixture(_ file: String, _ interface: String, _ gateway: String?) {
        #expect(LeaseParser.dhclient(fixtureText(file), interface: interface) == gateway.map(ip))
    }

    static let dhclientCases: [TextCase] = [
        TextCase(name: "empty", text: "", expected: nil),
        TextCase(
            name: "minimal", text: #"lease { interface "eth0"; option routers 10.0.0.1; }"#, expected: ip("10.0.0.1")),
        TextCase(
            name: "on one line, no spaces", text: #"lease{interface "eth0";option routers 10.0.0.1,10.0.0.2;}"#,
            expected: ip("10.0.0.1")),
        TextCase(
            name: "unquoted interface", text: "lease {\n interface eth0;\n option routers 10.0.0.1;\n}",
            expected: ip("10.0.0.1")),
        TextCase(
            name: "the last lease has no router",
            text: """
                lease { interface "eth0"; option routers 10.0.0.1; }
                lease { interface "eth0"; fixed-address 10.0.0.5; }
                """, expected: nil),
        TextCase(
            name: "other interface's later lease",
            text: """
                lease { interface "eth0"; option routers 10.0.0.1; }
                lease { interface "eth1"; option routers 10.1.0.1; }
                """, expected: ip("10.0.0.1")),
        TextCase(
            name: "routers before interface", text: #"lease { option routers 10.0.0.1; interface "eth0"; }"#,
            expected: ip("10.0.0.1")),
        TextCase(
            name: "interface outside a lease does not count",
            text: #"interface "eth0"; lease { interface "eth1"; option routers 10.0.0.1; }"#, expected: nil),
        TextCase(
            name: "nested block inside a lease is skipped",
            text: """
                lease { interface "eth0"; foo { option routers 10.9.9.9; } option routers 10.0.0.1; }
                """, expected: ip("10.0.0.1")),
        TextCase(
            name: "lease6 is not a lease", text: #"lease6 { interface "eth0"; option routers 10.0.0.1; }"#,
            expected: nil),
        TextCase(
            name: "comment hides a router", text: "lease { interface \"eth0\";\n# option routers 10.0.0.9;\n}",
            expected: nil),
        TextCase(
            name: "comment after a statement",
            text: "lease { interface \"eth0\"; # was eth1\n option routers 10.0.0.1; # main\n}",
            expected: ip("10.0.0.1")),
        TextCase(
            name: "unusable routers are skipped",
            text: #"lease { interface "eth0"; option routers 0.0.0.0, 10.0.0.7; }"#,
            expected: ip("10.0.0.7")),
        TextCase(
            name: "unterminated string ends the file",
            text: #"lease { interface "eth0"; option routers 10.0.0.1; } "#
                + #"lease { interface "eth0; option routers 10.9.9.9; }"#,
            expected: ip("10.0.0.1")),
        TextCase(
            name: "stray closing braces", text: #"} } lease { interface "eth0"; option routers 10.0.0.1; } }"#,
            expected: ip("10.0.0.1")),
        TextCase(
            name: "classless routes with a non-default entry first",
            text: #"lease { interface "eth0"; option rfc3442-classless-static-routes 24,10,2,0,10,0,0,3,0,10,0,0,9; }"#,
            expected: ip("10.0.0.9")),
        TextCase(
            name: "truncated classless routes",
            text: #"lease { interface "eth0"; option rfc3442-classless-static-routes 0,10,0,0; }"#, expected: nil),
        TextCase(
            name: "classless routes with a bad prefix length",
            text: #"lease { interface "eth0"; option rfc3442-classless-static-routes 33,1,1,1,1,1,0,10,0,0,1; }"#,
            expected: nil),
        TextCase(name: "garbage", text: "{{{;;;\"\\\"}}} lease lease { { } ; ,,, option routers", expected: nil),
    ]

    @Test(arguments: dhclientCases)
    func dhclient(_ c: TextCase) {
        #expect(LeaseParser.dhclient(c.text, interface: "eth0") == c.expected)
    }

    // MARK: - dhcpcd

    static let dhcpcdFixtures: [(file: String, gateway: String?)] = [
        ("leases/dhcpcd-eth0.lease", "10.0.0.1"),
        // Option 52 puts the routers option into the `file` field.
        ("leases/dhcpcd-eth1.lease", "192.168.50.1"),
        ("leases/dhcpcd-eth2.lease", nil),
    ]

    @Test(arguments: dhcpcdFixtures)
    func dhcpcdFixture(_ file: String, _ gateway: String?) {
        #expect(LeaseParser.dhcpcd(fixtureBytes(file)) == gateway.map(ip))
    }

    /// A DHCP message: a zero BOOTP header with `sname` and `file`, the cookie, then `options`.
    static func message(options: [UInt8], sname: [UInt8] = [], file: [UInt8] = []) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 236)
        header[0] = 2
        header.replaceSubrange(44..<44 + sname.count, with: sname)
        header.replaceSubrange(108..<108 + file.count, with: file)
        return header + [99, 130, 83, 99] + options
    }

    struct BytesCase: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        var expected: IPAddress?
        var testDescription: String { name }
    }

    static let dhcpcdCases: [BytesCase] = [
        BytesCase(name: "empty", bytes: [], expected: nil),
        BytesCase(name: "header only", bytes: [UInt8](repeating: 0, count: 236), expected: nil),
        BytesCase(name: "no options", bytes: message(options: []), expected: nil),
        BytesCase(
            name: "bad cookie",
            bytes: Array(message(options: [3, 4, 10, 0, 0, 1, 255]).enumerated().map { $0 == 236 ? 0 : $1 }),
            expected: nil),
        BytesCase(name: "router", bytes: message(options: [3, 4, 10, 0, 0, 1, 255]), expected: ip("10.0.0.1")),
        BytesCase(name: "no end option", bytes: message(options: [3, 4, 10, 0, 0, 1]), expected: ip("10.0.0.1")),
        BytesCase(
            name: "pads before the router", bytes: message(options: [0, 0, 0, 3, 4, 10, 0, 0, 1, 255]),
            expected: ip("10.0.0.1")),
        BytesCase(
            name: "options after end are ignored", bytes: message(options: [255, 3, 4, 10, 0, 0, 1]), expected: nil),
        BytesCase(name: "truncated router", bytes: message(options: [3, 4, 10, 0, 0]), expected: nil),
        BytesCase(name: "short router", bytes: message(options: [3, 3, 10, 0, 0, 255]), expected: nil),
        BytesCase(name: "zero length router", bytes: message(options: [3, 0, 255]), expected: nil),
        BytesCase(name: "length byte missing", bytes: message(options: [3]), expected: nil),
        BytesCase(
            name: "unusable first router", bytes: message(options: [3, 8, 0, 0, 0, 0, 10, 0, 0, 2, 255]),
            expected: ip("10.0.0.2")),
        BytesCase(
            name: "router split in two instances (RFC 3396)",
            bytes: message(options: [3, 2, 10, 0, 3, 2, 0, 1, 255]), expected: ip("10.0.0.1")),
        BytesCase(
            name: "classless default route", bytes: message(options: [121, 5, 0, 10, 0, 0, 1, 255]),
            expected: ip("10.0.0.1")),
        BytesCase(
            name: "router wins over classless",
            bytes: message(options: [121, 5, 0, 10, 0, 0, 1, 3, 4, 10, 0, 0, 2, 255]), expected: ip("10.0.0.2")),
        BytesCase(
            name: "overload into sname",
            bytes: message(options: [52, 1, 2, 255], sname: [3, 4, 10, 0, 0, 3, 255]), expected: ip("10.0.0.3")),
        BytesCase(
            name: "overload into both: file before sname",
            bytes: message(
                options: [52, 1, 3, 255], sname: [3, 4, 10, 0, 0, 4, 255], file: [3, 4, 10, 0, 0, 5, 255]),
            expected: ip("10.0.0.5")),
        BytesCase(
            name: "no overload: sname is not read",
            bytes: message(options: [255], sname: [3, 4, 10, 0, 0, 3, 255]), expected: nil),
        BytesCase(
            name: "overload option inside the file field is ignored",
            bytes: message(options: [52, 1, 1, 255], sname: [3, 4, 10, 0, 0, 3, 255], file: [52, 1, 2, 255]),
            expected: nil),
        BytesCase(
            name: "option running past the file field",
            bytes: message(options: [52, 1, 1, 255], file: [UInt8](repeating: 0, count: 126) + [3, 4]),
            expected: nil),
    ]

    @Test(arguments: dhcpcdCases)
    func dhcpcd(_ c: BytesCase) {
        #expect(LeaseParser.dhcpcd(c.bytes) == c.expected)
    }

    // MARK: - network_data.json

    static let networkDataFixtures: [(file: String, gateways: [String: NetworkDataGateways])] = [
        (
            "network_data/two-nics-dual-stack.json",
            [
                "fa:16:3e:6d:1a:2b": NetworkDataGateways(ipv4: ip("10.0.0.1"), ipv6: ip("2001:db8:0:1::1")),
                "fa:16:3e:11:22:33": NetworkDataGateways(ipv4: ip("192.168.50.1")),
            ]
        ),
        ("network_data/dhcp-only.json", [:]),
        (
            "network_data/cloud-init-instance-data.json",
            ["52:54:00:00:00:02": NetworkDataGateways(ipv4: ip("20.20.20.254"), ipv6: ip("fd00:12::fe"))]
        ),
        ("network_data/cloud-init-instance-data-nocloud.json", [:]),
        (
            "network_data/bond-vlan.json",
            ["52:54:00:12:34:42": NetworkDataGateways(ipv4: ip("203.0.113.1"), ipv6: ip("fe80::1"))]
        ),
    ]

    @Test(arguments: networkDataFixtures)
    func networkDataFixture(_ file: String, _ gateways: [String: NetworkDataGateways]) throws {
        let expected = Dictionary(uniqueKeysWithValues: gateways.map { (MACAddress($0.key)!, $0.value) })
        #expect(try LeaseParser.networkData(fixtureText(file)) == expected)
    }

    struct NetworkDataCase: Sendable, CustomTestStringConvertible {
        var name: String
        var json: String
        var expected: NetworkDataGateways?
        var testDescription: String { name }
    }

    /// `network_data.json` for one link `l` with MAC fa:16:3e:00:00:01 and the given routes.
    static func document(routes: String, type: String = "ipv4") -> String {
        """
        {"links": [{"id": "l", "ethernet_mac_address": "fa:16:3e:00:00:01"}],
         "networks": [{"id": "n", "link": "l", "type": "\(type)", "routes": [\(routes)]}]}
        """
    }

    static let networkDataCases: [NetworkDataCase] = [
        NetworkDataCase(
            name: "IPv4 default",
            json: document(routes: #"{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"}"#),
            expected: NetworkDataGateways(ipv4: ip("10.0.0.1"))),
        NetworkDataCase(
            name: "IPv6 default with netmask ::",
            json: document(routes: #"{"network": "::", "netmask": "::", "gateway": "2001:db8::1"}"#, type: "ipv6"),
            expected: NetworkDataGateways(ipv6: ip("2001:db8::1"))),
        NetworkDataCase(
            name: "IPv6 default with netmask 0",
            json: document(routes: #"{"network": "::", "netmask": "0", "gateway": "2001:db8::1"}"#, type: "ipv6"),
            expected: NetworkDataGateways(ipv6: ip("2001:db8::1"))),
        NetworkDataCase(
            name: "IPv6 default as ::/0", json: document(routes: #"{"network": "::/0", "gateway": "fe80::1"}"#),
            expected: NetworkDataGateways(ipv6: ip("fe80::1"))),
        NetworkDataCase(
            name: "IPv4 default as 0.0.0.0/0",
            json: document(routes: #"{"network": "0.0.0.0/0", "gateway": "10.0.0.1"}"#),
            expected: NetworkDataGateways(ipv4: ip("10.0.0.1"))),
        NetworkDataCase(
            name: "not a default route",
            json: document(routes: #"{"network": "10.0.0.0", "netmask": "255.0.0.0", "gateway": "10.0.0.1"}"#),
            expected: nil),
        NetworkDataCase(
            name: "zero netmask on a non-zero network",
            json: document(routes: #"{"network": "10.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"}"#),
            expected: nil),
        NetworkDataCase(
            name: "missing netmask", json: document(routes: #"{"network": "0.0.0.0", "gateway": "10.0.0.1"}"#),
            expected: nil),
        NetworkDataCase(
            name: "family mismatch",
            json: document(routes: #"{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "fe80::1"}"#),
            expected: nil),
        NetworkDataCase(
            name: "unusable gateway",
            json: document(routes: #"{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "0.0.0.0"}"#),
            expected: nil),
        NetworkDataCase(
            name: "first default per family wins",
            json: document(
                routes: #"""
                    {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"},
                    {"network": "::", "netmask": "::", "gateway": "fe80::1"},
                    {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.2"},
                    {"network": "::", "netmask": "::", "gateway": "fe80::2"}
                    """#),
            expected: NetworkDataGateways(ipv4: ip("10.0.0.1"), ipv6: ip("fe80::1"))),
        NetworkDataCase(name: "no routes", json: document(routes: ""), expected: nil),
        NetworkDataCase(name: "empty object", json: "{}", expected: nil),
        NetworkDataCase(
            name: "unknown keys and nulls are ignored",
            json: #"""
                {"links": [{"id": "l", "ethernet_mac_address": "fa:16:3e:00:00:01", "mtu": null, "vlan_mac_address": null}],
                 "networks": [{"link": "l", "netmask": null, "services": [{"type": "dns"}], "routes": [
                    {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1", "metric": 5}]}],
                 "services": [], "future": {"x": 1}}
                """#,
            expected: NetworkDataGateways(ipv4: ip("10.0.0.1"))),
        NetworkDataCase(
            name: "network pointing at an unknown link",
            json: #"""
                {"links": [{"id": "l", "ethernet_mac_address": "fa:16:3e:00:00:01"}],
                 "networks": [{"link": "m", "routes": [
                    {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"}]}]}
                """#,
            expected: nil),
        NetworkDataCase(
            name: "link with a bad MAC",
            json: #"""
                {"links": [{"id": "l", "ethernet_mac_address": "fa:16:3e:00:00"}],
                 "networks": [{"link": "l", "routes": [
                    {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"}]}]}
                """#,
            expected: nil),
    ]

    @Test(arguments: networkDataCases)
    func networkData(_ c: NetworkDataCase) throws {
        let mac = MACAddress("fa:16:3e:00:00:01")!
        #expect(try LeaseParser.networkData(c.json) == (c.expected.map { [mac: $0] } ?? [:]))
    }

    /// cloud-init's instance data holds OpenStack's network data under `ds.network_json`: read
    /// there, and the rest of the file (its own keys, another datasource's `ds`) is not network
    /// data. Without `ds.network_json` the file has none (nil: the next path is asked), while a
    /// plain `network_data.json` always has some, if only no gateway.
    @Test func cloudInitInstanceData() throws {
        let inner = Self.document(routes: #"{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"}"#)
        let mac = MACAddress("fa:16:3e:00:00:01")!
        let wrapped =
            #"{"v1": {"cloud_name": "openstack"}, "merged_cfg": "redacted", "ds": {"_doc": "x", "meta_data": {}, "network_json": "#
            + inner + "}}"
        #expect(try LeaseParser.openStackNetworkData(wrapped) == [mac: NetworkDataGateways(ipv4: ip("10.0.0.1"))])
        #expect(try LeaseParser.openStackNetworkData(inner) == [mac: NetworkDataGateways(ipv4: ip("10.0.0.1"))])
        #expect(try LeaseParser.openStackNetworkData(#"{"ds": {"meta_data": {"instance-id": "i"}}}"#) == nil)
        #expect(try LeaseParser.openStackNetworkData(#"{"ds": {"network_json": null}}"#) == nil)
        #expect(try LeaseParser.openStackNetworkData(#"{"ds": null, "links": []}"#) == [:])
        #expect(try LeaseParser.openStackNetworkData("{}") == [:])
    }

    /// A file that is not JSON, or where a key nicroute reads holds another JSON type, is an
    /// error naming the key path, never an empty answer in silence.
    @Test(arguments: [
        (
            document(routes: #"{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": 167772161}"#),
            "networks[0].routes[0].gateway: expected a string, found a number"
        ),
        (
            document(routes: #"{"network": "0.0.0.0", "netmask": 0, "gateway": "10.0.0.1"}"#),
            "networks[0].routes[0].netmask: expected a string, found a number"
        ),
        (
            #"{"links": {"id": "l"}, "networks": [{"link": "l", "routes": []}]}"#,
            "links: expected an array, found an object"
        ),
        (
            #"{"links": [{"id": 7, "ethernet_mac_address": "fa:16:3e:00:00:01"}]}"#,
            "links[0].id: expected a string, found a number"
        ),
        (#"{"networks": [{"link": "l", "routes": {}}]}"#, "networks[0].routes: expected an array"),
        (#"{"ds": {"network_json": {"links": 1}}}"#, "ds.network_json.links: expected an array"),
        (#"{"ds": "redacted for non-root user"}"#, "ds: expected an object"),
        ("[1, 2, 3]", "expected an object, found an array"),
        ("", ""),
        (String(document(routes: "").dropLast(3)), ""),
    ])
    func networkDataErrorNamesTheKey(_ json: String, _ message: String) {
        #expect {
            try LeaseParser.networkData(json)
        } throws: { error in
            "\(error)".hasPrefix(message)
        }
    }

    // MARK: - Robustness: truncated, mutated and random input never traps

    static let textFixtures = [
        "leases/networkd-2", "leases/networkd-3-classless-only", "leases/dhclient.leases", "leases/dhclient6.leases",
        "leases/dhclient-7d3c1b7e-8f11-4a9e-b5a2-2c0e5d9a4f00-eth0.lease",
        "network_data/two-nics-dual-stack.json", "network_data/bond-vlan.json", "network_data/dhcp-only.json",
    ]

    static let binaryFixtures = ["leases/dhcpcd-eth0.lease", "leases/dhcpcd-eth1.lease", "leases/dhcpcd-eth2.lease"]

    /// Every text parser over every prefix of every text fixture.
    @Test(arguments: textFixtures)
    func truncatedTextNeverTraps(_ file: String) {
        let bytes = fixtureBytes(file)
        for length in 0...bytes.count {
            let text = String(decoding: bytes[0..<length], as: UTF8.self)
            _ = LeaseParser.networkd(text)
            _ = LeaseParser.dhclient(text, interface: "eth0")
            _ = try? LeaseParser.networkData(text)
        }
    }

    /// The dhcpcd parser over every prefix of the dhcpcd fixtures, and over the fixtures with
    /// random bytes overwritten.
    @Test(arguments: binaryFixtures)
    func truncatedAndMutatedMessagesNeverTrap(_ file: String) {
        let bytes = fixtureBytes(file)
        for length in 0...bytes.count { _ = LeaseParser.dhcpcd(Array(bytes[0..<length])) }
        var random = SplitMix64(seed: UInt64(bytes.count))
        for _ in 0..<20000 {
            var mutated = bytes
            for _ in 0..<(1 + Int(random.next() % 8)) {
                // Mostly the options area, where the lengths live.
                let index = Int(random.next() % UInt64(mutated.count))
                let target = random.next() % 4 == 0 ? index : max(index, 236)
                mutated[min(target, mutated.count - 1)] = UInt8(truncatingIfNeeded: random.next())
            }
            if random.next() % 4 == 0 { mutated.removeLast(Int(random.next() % UInt64(mutated.count))) }
            _ = LeaseParser.dhcpcd(mutated)
        }
    }

    @Test func randomBytesNeverTrap() {
        var random = SplitMix64(seed: 99)
        for iteration in 0..<20000 {
            let count = Int(random.next() % 600)
            var bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if bytes.count >= 240 && random.next() % 2 == 0 {
                bytes.replaceSubrange(236..<240, with: [99, 130, 83, 99])
            }
            _ = LeaseParser.dhcpcd(bytes)
            // Decoding invalid UTF-8 is slow in a debug build: the text parsers get fewer rounds.
            guard iteration % 10 == 0 else { continue }
            let text = String(decoding: bytes, as: UTF8.self)
            _ = LeaseParser.networkd(text)
            _ = LeaseParser.dhclient(text, interface: "eth0")
            _ = try? LeaseParser.networkData(text)
        }
    }

    /// Random text from each format's own vocabulary, which reaches deeper than random bytes.
    @Test func randomTokensNeverTrap() {
        var random = SplitMix64(seed: 1234)
        let dhclientPieces = [
            "lease", "lease6", "{", "}", ";", ",", "\"", "\\", "#", "\n", " ", "interface", "\"eth0\"", "eth0",
            "option", "routers", "rfc3442-classless-static-routes", "10.0.0.1", "0", "24", "32", "255", "300",
        ]
        let jsonPieces = [
            "{", "}", "[", "]", ",", ":", "\"", "\\", "\\u", "d800", "\"links\"", "\"networks\"", "\"id\"",
            "\"link\"", "\"routes\"", "\"network\"", "\"netmask\"", "\"gateway\"", "\"l\"", "\"0.0.0.0\"", "\"::\"",
            "\"10.0.0.1\"", "\"ethernet_mac_address\"", "\"fa:16:3e:00:00:01\"", "1", "-", "e", ".", "true", "null",
        ]
        let networkdPieces = [
            "ROUTER", "CLASSLESS_ROUTES", "ROUTES", "=", " ", ",", "/", "\n", "0.0.0.0", "0", "10.0.0.1",
        ]
        for _ in 0..<20000 {
            let dhclient = (0..<Int(random.next() % 40)).map { _ in dhclientPieces.randomElement(using: &random)! }
            _ = LeaseParser.dhclient(dhclient.joined(), interface: "eth0")
            let json = (0..<Int(random.next() % 40)).map { _ in jsonPieces.randomElement(using: &random)! }
            _ = try? LeaseParser.networkData(json.joined())
            let networkd = (0..<Int(random.next() % 20)).map { _ in networkdPieces.randomElement(using: &random)! }
            _ = LeaseParser.networkd(networkd.joined())
        }
    }

    // MARK: - Sources

    @Test func sourceNamesAreWhatStatusPrints() throws {
        #expect(GatewaySource.networkd.rawValue == "systemd-networkd lease")
        #expect(GatewaySource.mainTable.description == "main-table")
        #expect(GatewaySource(rawValue: "OpenStack network data") == .networkData)
        let hint = GatewayHint(gateway: ip("10.0.0.1"), source: .dhcpcd)
        #expect(hint.source == .dhcpcd && hint.gateway == ip("10.0.0.1"))
    }
}

/// NetworkManager's DHCPv4 options (its D-Bus `DHCP4Config.Options`, as `nmcli` prints them).
@Suite struct NetworkManagerDHCP4Tests {
    @Test func theNeverDefaultProfileOfTheIssueYieldsItsRouter() {
        // A profile with ipv4.never-default: NetworkManager installs no default route, but the
        // lease's router is in its options (`DHCP4.OPTION routers = 20.20.20.254`).
        let options = LeaseParser.nmcliDHCP4Options(fixtureText("leases/nmcli-dhcp4-eth1-never-default.txt"))
        #expect(options.count == 27)
        #expect(options["routers"] == "20.20.20.254")
        #expect(options["requested_routers"] == "1")
        #expect(LeaseParser.networkManagerDHCP4(options) == IPAddress("20.20.20.254"))
    }

    @Test func aClasslessDefaultRouteWinsOverRouters() {
        let options = LeaseParser.nmcliDHCP4Options(fixtureText("leases/nmcli-dhcp4-classless.txt"))
        #expect(options["rfc3442_classless_static_routes"] == "169.254.169.254/32 20.20.20.2 0.0.0.0/0 20.20.20.254")
        #expect(LeaseParser.networkManagerDHCP4(options) == IPAddress("20.20.20.254"))
        // The same lease with another default router in option 121: that one wins.
        var other = options
        other["rfc3442_classless_static_routes"] = "0.0.0.0/0 20.20.20.253"
        #expect(LeaseParser.networkManagerDHCP4(other) == IPAddress("20.20.20.253"))
    }

    struct OptionsCase: Sendable, CustomTestStringConvertible {
        var name: String
        var options: [String: String]
        var gateway: String?
        var testDescription: String { name }
    }

    @Test(arguments: [
        OptionsCase(name: "one router", options: ["routers": "10.0.0.1"], gateway: "10.0.0.1"),
        OptionsCase(name: "the first of several", options: ["routers": "10.0.0.1 10.0.0.2"], gateway: "10.0.0.1"),
        OptionsCase(
            name: "0.0.0.0 is skipped as NetworkManager skips it", options: ["routers": "0.0.0.0 10.0.0.2"],
            gateway: "10.0.0.2"),
        OptionsCase(
            name: "no router", options: ["ip_address": "10.0.0.5", "subnet_mask": "255.255.255.0"], gateway: nil),
        OptionsCase(name: "empty routers", options: ["routers": ""], gateway: nil),
        OptionsCase(name: "broadcast only", options: ["routers": "255.255.255.255"], gateway: nil),
        OptionsCase(
            name: "a malformed word refuses the value", options: ["routers": "10.0.0.1 10.0.0.x"], gateway: nil),
        OptionsCase(
            name: "an IPv6 router is not NetworkManager's spelling", options: ["routers": "fe80::1"], gateway: nil),
        OptionsCase(name: "a leading-plus number is refused", options: ["routers": "+10.0.0.1"], gateway: nil),
        OptionsCase(
            name: "a comma-separated list is split", options: ["routers": "10.0.0.1,10.0.0.2"], gateway: "10.0.0.1"),
        OptionsCase(
            name: "classless without a default ignores routers (RFC 3442)",
            options: ["rfc3442_classless_static_routes": "10.9.0.0/16 10.0.0.9", "routers": "10.0.0.1"], gateway: nil),
        OptionsCase(
            name: "option 121 before 249",
            options: [
                "rfc3442_classless_static_routes": "0.0.0.0/0 10.0.0.1",
                "ms_classless_static_routes": "0.0.0.0/0 10.0.0.2",
            ], gateway: "10.0.0.1"),
        OptionsCase(
            name: "option 249 alone", options: ["ms_classless_static_routes": "0.0.0.0/0 10.0.0.2"], gateway: "10.0.0.2"
        ),
        OptionsCase(
            name: "an odd number of words refuses the routes",
            options: ["rfc3442_classless_static_routes": "0.0.0.0/0 10.0.0.1 10.9.0.0/16"], gateway: nil),
        OptionsCase(
            name: "a malformed destination refuses the routes",
            options: ["rfc3442_classless_static_routes": "0.0.0.0/33 10.0.0.1"], gateway: nil),
        OptionsCase(
            name: "an unusable default gateway gives none",
            options: ["rfc3442_classless_static_routes": "0.0.0.0/0 0.0.0.0"], gateway: nil),
    ])
    func options(_ c: OptionsCase) {
        #expect(LeaseParser.networkManagerDHCP4(c.options) == c.gateway.flatMap { IPAddress($0) })
    }

    @Test func nmcliLinesOfOtherShapesAreSkipped() {
        let text = """
            GENERAL.DEVICE:eth1
            DHCP4.OPTION[1]:routers = 10.0.0.1
            DHCP4.OPTION[2]:no equals sign
            DHCP4.OPTION[3]: = 10.0.0.3
            IP4.GATEWAY:--
            DHCP4.OPTION[4]:subnet_mask =255.255.255.0\r
            """
        #expect(LeaseParser.nmcliDHCP4Options(text) == ["routers": "10.0.0.1", "subnet_mask": "255.255.255.0"])
    }
}
