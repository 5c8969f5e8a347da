import NicrouteCore
import Testing

/// A configuration: the defaults with `edit` applied.
private func config(_ edit: (inout Configuration) -> Void = { _ in }) -> Configuration {
    var c = Configuration()
    edit(&c)
    return c
}

private func mac(_ text: String) -> MACAddress { MACAddress(text)! }
private func ip(_ text: String) -> IPAddress { IPAddress(text)! }

@Suite struct ConfigurationParserTests {
    struct Valid: Sendable, CustomTestStringConvertible {
        var name: String
        var text: String
        var expected: Configuration
        var testDescription: String { name }
    }

    static let valid: [Valid] = [
        Valid(name: "empty file", text: "", expected: config()),
        Valid(
            name: "comments and blank lines only",
            text: "# nicroute.conf\n\n; nothing here\n   # indented comment\n\t\n",
            expected: config()),
        Valid(
            name: "empty sections", text: "[Routing]\n[Interfaces]\n[Routing]\n", expected: config()),
        Valid(
            name: "Tables", text: "[Routing]\nTables=100-199",
            expected: config { $0.tables = 100...199 }),
        Valid(
            name: "Tables with spaces", text: "[Routing]\n  Tables  =  100 - 199  ",
            expected: config { $0.tables = 100...199 }),
        Valid(
            name: "Tables just below the reserved ids", text: "[Routing]\nTables=1-252",
            expected: config { $0.tables = 1...252 }),
        Valid(
            name: "Tables just above the reserved ids", text: "[Routing]\nTables=256-32765",
            expected: config { $0.tables = 256...32765 }),
        Valid(
            name: "Tables of one id", text: "[Routing]\nTables=5000-5000",
            expected: config { $0.tables = 5000...5000 }),
        Valid(
            name: "Tables= restores the default", text: "[Routing]\nTables=100-199\nTables=",
            expected: config()),
        Valid(
            name: "Priorities, whole band", text: "[Routing]\nPriorities=1-32765",
            expected: config { $0.priorities = 1...32765 }),
        Valid(
            name: "Priorities may include 253-255", text: "[Routing]\nPriorities=250-260",
            expected: config { $0.priorities = 250...260 }),
        Valid(
            name: "Priorities= restores the default", text: "[Routing]\nPriorities=5-6\nPriorities=",
            expected: config()),
        Valid(name: "IPv6=no", text: "[Routing]\nIPv6=no", expected: config { $0.ipv6 = false }),
        Valid(name: "IPv6=false", text: "[Routing]\nIPv6=false", expected: config { $0.ipv6 = false }),
        Valid(name: "IPv6=0", text: "[Routing]\nIPv6=0", expected: config { $0.ipv6 = false }),
        Valid(name: "IPv6=off", text: "[Routing]\nIPv6=off", expected: config { $0.ipv6 = false }),
        Valid(name: "IPv6=OFF", text: "[Routing]\nIPv6=OFF", expected: config { $0.ipv6 = false }),
        Valid(name: "IPv6=yes", text: "[Routing]\nIPv6=no\nIPv6=yes", expected: config()),
        Valid(name: "IPv6=true", text: "[Routing]\nIPv6=no\nIPv6=true", expected: config()),
        Valid(name: "IPv6=1", text: "[Routing]\nIPv6=no\nIPv6=1", expected: config()),
        Valid(name: "IPv6=On", text: "[Routing]\nIPv6=no\nIPv6=On", expected: config()),
        Valid(name: "IPv6= restores the default", text: "[Routing]\nIPv6=no\nIPv6=", expected: config()),
        Valid(
            name: "FirstHostFallback=no", text: "[Routing]\nFirstHostFallback=no",
            expected: config { $0.firstHostFallback = false }),
        Valid(
            name: "FirstHostFallback=Yes", text: "[Routing]\nFirstHostFallback=off\nFirstHostFallback=Yes",
            expected: config()),
        Valid(
            name: "NetworkData replaces the list",
            text: "[Routing]\nNetworkData=/a/network_data.json /b/network_data.json",
            expected: config { $0.networkDataPaths = ["/a/network_data.json", "/b/network_data.json"] }),
        Valid(
            name: "NetworkData given twice: the last wins",
            text: "[Routing]\nNetworkData=/a.json\nNetworkData=/b.json",
            expected: config { $0.networkDataPaths = ["/b.json"] }),
        Valid(
            name: "NetworkData= empties the list", text: "[Routing]\nNetworkData=",
            expected: config { $0.networkDataPaths = [] }),
        Valid(
            name: "Manage: names, globs and MACs",
            text: "[Interfaces]\nManage=eth* ens5 FA:16:3E:00:00:01 52-54-00-12-34-56",
            expected: config {
                $0.manage = [
                    .name("eth*"), .name("ens5"), .mac(mac("fa:16:3e:00:00:01")), .mac(mac("52:54:00:12:34:56")),
                ]
            }),
        Valid(
            name: "Manage lines accumulate", text: "[Interfaces]\nManage=eth0\nManage=eth1 eth2",
            expected: config { $0.manage = [.name("eth0"), .name("eth1"), .name("eth2")] }),
        Valid(
            name: "Manage= resets the list", text: "[Interfaces]\nManage=eth0\nManage=\nManage=eth1",
            expected: config { $0.manage = [.name("eth1")] }),
        Valid(
            name: "Manage separated by commas", text: "[Interfaces]\nManage=eth0,eth1, ens[0-9]",
            expected: config { $0.manage = [.name("eth0"), .name("eth1"), .name("ens[0-9]")] }),
        Valid(
            name: "Ignore", text: "[Interfaces]\nIgnore=docker* veth*\nIgnore=fa:16:3e:aa:bb:cc",
            expected: config { $0.ignore = [.name("docker*"), .name("veth*"), .mac(mac("fa:16:3e:aa:bb:cc"))] }),
        Valid(
            name: "Ignore= resets the list", text: "[Interfaces]\nIgnore=docker*\nIgnore=",
            expected: config()),
        Valid(
            name: "Gateway with both families",
            text: "[Gateway]\nInterface=eth1\nIPv4=192.0.2.1\nIPv6=fe80::1",
            expected: config {
                $0.gateways = [GatewayOverride(match: .name("eth1"), ipv4: ip("192.0.2.1"), ipv6: ip("fe80::1"))]
            }),
        Valid(
            name: "Gateways in order, by name and by MAC",
            text: """
                [Gateway]
                Interface=fa:16:3e:00:00:02
                IPv6=2001:db8::1

                [Gateway]
                # A glob works too.
                Interface=ens*
                IPv4=10.1.0.1
                """,
            expected: config {
                $0.gateways = [
                    GatewayOverride(match: .mac(mac("fa:16:3e:00:00:02")), ipv6: ip("2001:db8::1")),
                    GatewayOverride(match: .name("ens*"), ipv4: ip("10.1.0.1")),
                ]
            }),
        Valid(
            name: "Gateway keys given again: the last wins; IPv4= clears",
            text: "[Gateway]\nInterface=eth0\nInterface=eth1\nIPv4=10.0.0.1\nIPv4=\nIPv6=fe80::2",
            expected: config { $0.gateways = [GatewayOverride(match: .name("eth1"), ipv6: ip("fe80::2"))] }),
        Valid(
            name: "Gateway followed by another section",
            text: "[Gateway]\nInterface=eth1\nIPv4=192.0.2.1\n[Routing]\nIPv6=no",
            expected: config {
                $0.gateways = [GatewayOverride(match: .name("eth1"), ipv4: ip("192.0.2.1"))]
                $0.ipv6 = false
            }),
        Valid(
            name: "X- sections and keys are ignored",
            text: "[X-Vendor]\nAnything=goes\nEven without equals=\n[Routing]\nX-Note=hello\nIPv6=no",
            expected: config { $0.ipv6 = false }),
        Valid(
            name: "CRLF line endings and a byte order mark",
            text: "\u{FEFF}[Routing]\r\nTables=100-199\r\n\r\n[Interfaces]\r\nManage=eth0\r\n",
            expected: config {
                $0.tables = 100...199
                $0.manage = [.name("eth0")]
            }),
        Valid(
            name: "a value may contain '=' and '#'", text: "[Interfaces]\nManage=a=b c#d",
            expected: config { $0.manage = [.name("a=b"), .name("c#d")] }),
        Valid(
            name: "the example from the documentation",
            text: """
                # Lines starting with '#' or ';' are comments.
                [Routing]
                Tables=10000-10999
                Priorities=10000-10999
                IPv6=yes
                FirstHostFallback=yes
                NetworkData=/mnt/config/openstack/latest/network_data.json

                [Interfaces]
                Manage=eth* fa:16:3e:00:00:01
                Ignore=docker* veth*

                [Gateway]
                Interface=eth1
                IPv4=192.0.2.1
                IPv6=fe80::1
                """,
            expected: config {
                $0.networkDataPaths = ["/mnt/config/openstack/latest/network_data.json"]
                $0.manage = [.name("eth*"), .mac(mac("fa:16:3e:00:00:01"))]
                $0.ignore = [.name("docker*"), .name("veth*")]
                $0.gateways = [GatewayOverride(match: .name("eth1"), ipv4: ip("192.0.2.1"), ipv6: ip("fe80::1"))]
            }),
    ]

    @Test func controlSection() throws {
        let parsed = try ConfigurationParser.parse(
            "[Control]\nSocket=/run/x/ctl.sock\nGroup=netadmin\n", file: "nicroute.conf", into: Configuration())
        #expect(parsed.controlSocket == "/run/x/ctl.sock")
        #expect(parsed.controlGroup == "netadmin")
        let reset = try ConfigurationParser.parse("[Control]\nSocket=\nGroup=\n", file: "d.conf", into: parsed)
        #expect(reset == Configuration())
    }

    @Test(arguments: valid)
    func parsesValidFiles(_ c: Valid) throws {
        let parsed = try ConfigurationParser.parse(c.text, file: "nicroute.conf", into: Configuration())
        #expect(parsed == c.expected)
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        var text: String
        var line: Int
        var reason: String
        var testDescription: String { reason }
    }

    static let invalid: [Invalid] = [
        // Structure.
        Invalid(
            text: "[Routing]\nTables", line: 2,
            reason: "expected KEY=VALUE, a [Section] header or a comment, got 'Tables'"),
        Invalid(text: "[Routing]\n=5", line: 2, reason: "missing key name before '=' in '=5'"),
        Invalid(
            text: "# header\nTables=1-2", line: 2,
            reason: "Tables= appears before any section header (such as [Routing])"),
        Invalid(
            text: "[Foo]", line: 1,
            reason: "unknown section [Foo] (expected [Routing], [Interfaces], [Gateway], [Source] or [Control])"),
        Invalid(
            text: "\n[routing]", line: 2,
            reason: "unknown section [routing] (expected [Routing], [Interfaces], [Gateway], [Source] or [Control])"),
        Invalid(text: "[Routing", line: 1, reason: "invalid section header '[Routing' (expected [Name])"),
        Invalid(text: "[Control]\nSocket=run/x.sock", line: 2, reason: "Socket=run/x.sock: not an absolute path"),
        Invalid(text: "[Control]\nGroup=a b", line: 2, reason: "Group=a b: not a valid group name"),
        Invalid(text: "[Control]\nUser=root", line: 2, reason: "unknown key 'User' in section [Control]"),
        Invalid(text: "[]", line: 1, reason: "invalid section header '[]' (expected [Name])"),
        Invalid(text: "[Routing]\nFoo=1", line: 2, reason: "unknown key 'Foo' in section [Routing]"),
        Invalid(text: "[Routing]\ntables=1-2", line: 2, reason: "unknown key 'tables' in section [Routing]"),
        Invalid(text: "[Interfaces]\nManaged=eth0", line: 2, reason: "unknown key 'Managed' in section [Interfaces]"),
        Invalid(
            text: "[Gateway]\nInterface=eth0\nGateway=10.0.0.1", line: 3,
            reason: "unknown key 'Gateway' in section [Gateway]"),
        Invalid(
            text: "[Routing]\r\n\r\n# comment\r\nIPv6=perhaps\r\n", line: 4,
            reason: "IPv6=perhaps: not a boolean (expected yes/no, true/false, on/off or 1/0)"),
        // Tables.
        Invalid(
            text: "[Routing]\nTables=10-300", line: 2,
            reason: "Tables=10-300: range must not include 253-255 (reserved tables)"),
        Invalid(
            text: "[Routing]\nTables=253-253", line: 2,
            reason: "Tables=253-253: range must not include 253-255 (reserved tables)"),
        Invalid(
            text: "[Routing]\nTables=255-400", line: 2,
            reason: "Tables=255-400: range must not include 253-255 (reserved tables)"),
        Invalid(text: "[Routing]\nTables=0-10", line: 2, reason: "Tables=0-10: range must lie within 1-32765"),
        Invalid(
            text: "[Routing]\nTables=32000-32766", line: 2,
            reason: "Tables=32000-32766: range must lie within 1-32765"),
        Invalid(
            text: "[Routing]\nTables=1-99999999999", line: 2,
            reason: "Tables=1-99999999999: range must lie within 1-32765"),
        Invalid(text: "[Routing]\nTables=20-10", line: 2, reason: "Tables=20-10: first (20) is greater than last (10)"),
        Invalid(
            text: "[Routing]\nTables=abc", line: 2,
            reason: "Tables=abc: not a range (expected FIRST-LAST, e.g. 10000-10999)"),
        Invalid(
            text: "[Routing]\nTables=10000", line: 2,
            reason: "Tables=10000: not a range (expected FIRST-LAST, e.g. 10000-10999)"),
        Invalid(
            text: "[Routing]\nTables=-5-10", line: 2,
            reason: "Tables=-5-10: not a range (expected FIRST-LAST, e.g. 10000-10999)"),
        Invalid(
            text: "[Routing]\nTables=+5-10", line: 2,
            reason: "Tables=+5-10: not a range (expected FIRST-LAST, e.g. 10000-10999)"),
        Invalid(
            text: "[Routing]\nTables=1-", line: 2,
            reason: "Tables=1-: not a range (expected FIRST-LAST, e.g. 10000-10999)"),
        Invalid(
            text: "[Routing]\nTables=0x10-0x20", line: 2,
            reason: "Tables=0x10-0x20: not a range (expected FIRST-LAST, e.g. 10000-10999)"),
        // Priorities.
        Invalid(text: "[Routing]\nPriorities=0-5", line: 2, reason: "Priorities=0-5: range must lie within 1-32765"),
        Invalid(
            text: "[Routing]\nPriorities=32766-32767", line: 2,
            reason: "Priorities=32766-32767: range must lie within 1-32765"),
        Invalid(
            text: "[Routing]\nPriorities=9-8", line: 2, reason: "Priorities=9-8: first (9) is greater than last (8)"),
        Invalid(
            text: "[Routing]\nPriorities=many", line: 2,
            reason: "Priorities=many: not a range (expected FIRST-LAST, e.g. 10000-10999)"),
        // Booleans.
        Invalid(
            text: "[Routing]\nIPv6=maybe", line: 2,
            reason: "IPv6=maybe: not a boolean (expected yes/no, true/false, on/off or 1/0)"),
        Invalid(
            text: "[Routing]\nIPv6=y es", line: 2,
            reason: "IPv6=y es: not a boolean (expected yes/no, true/false, on/off or 1/0)"),
        Invalid(
            text: "[Routing]\nFirstHostFallback=2", line: 2,
            reason: "FirstHostFallback=2: not a boolean (expected yes/no, true/false, on/off or 1/0)"),
        // NetworkData.
        Invalid(
            text: "[Routing]\nNetworkData=/ok.json relative/network_data.json", line: 2,
            reason: "NetworkData=/ok.json relative/network_data.json: "
                + "'relative/network_data.json' is not an absolute path"),
        // Interfaces.
        Invalid(
            text: "[Interfaces]\nManage=eth0 aa:bb:cc:dd:ee:fg", line: 2,
            reason: "Manage=eth0 aa:bb:cc:dd:ee:fg: "
                + "'aa:bb:cc:dd:ee:fg' is neither a MAC address nor an interface name pattern"),
        Invalid(
            text: "[Interfaces]\nManage=a:b:c:d:e:f", line: 2,
            reason: "Manage=a:b:c:d:e:f: 'a:b:c:d:e:f' is neither a MAC address nor an interface name pattern"),
        Invalid(
            text: "[Interfaces]\nIgnore=eth0/1", line: 2,
            reason: "Ignore=eth0/1: 'eth0/1' is neither a MAC address nor an interface name pattern"),
        // Gateway.
        Invalid(text: "[Gateway]\nIPv4=10.0.0.1", line: 1, reason: "[Gateway] section has no Interface="),
        Invalid(
            text: "[Gateway]\nInterface=eth0", line: 1,
            reason: "[Gateway] section for 'eth0' has neither IPv4= nor IPv6="),
        Invalid(
            text: "[Gateway]\nInterface=eth0\nIPv4=10.0.0.1\n\n[Gateway]\nInterface=eth1\n[Routing]\nIPv6=no", line: 5,
            reason: "[Gateway] section for 'eth1' has neither IPv4= nor IPv6="),
        Invalid(
            text: "[Gateway]\nInterface=eth0\nIPv4=10.0.0.1\nInterface=", line: 1,
            reason: "[Gateway] section has no Interface="),
        Invalid(
            text: "[Gateway]\nInterface=eth0 eth1\nIPv4=10.0.0.1", line: 2,
            reason: "Interface=eth0 eth1: "
                + "expected one interface name pattern or MAC address (use one [Gateway] per interface)"),
        Invalid(
            text: "[Gateway]\nInterface=aa:bb:cc:dd:ee\nIPv4=10.0.0.1", line: 2,
            reason: "Interface=aa:bb:cc:dd:ee: "
                + "'aa:bb:cc:dd:ee' is neither a MAC address nor an interface name pattern"),
        Invalid(
            text: "[Gateway]\nInterface=eth0\nIPv4=2001:db8::1", line: 3,
            reason: "IPv4=2001:db8::1: not an IPv4 address"),
        Invalid(
            text: "[Gateway]\nInterface=eth0\nIPv6=10.0.0.1", line: 3, reason: "IPv6=10.0.0.1: not an IPv6 address"),
        Invalid(
            text: "[Gateway]\nInterface=eth0\nIPv4=10.0.0.300", line: 3, reason: "IPv4=10.0.0.300: not an IP address"),
        Invalid(
            text: "[Gateway]\nInterface=eth0\nIPv4=10.0.0.1/24", line: 3,
            reason: "IPv4=10.0.0.1/24: not an IP address"),
        Invalid(
            text: "[Gateway]\nInterface=eth0\nIPv6=fe80::1%eth0", line: 3,
            reason: "IPv6=fe80::1%eth0: not an IP address"),
        Invalid(
            text: "[Gateway]\nInterface=eth0\nIPv4=10.0.0.1 10.0.0.2", line: 3,
            reason: "IPv4=10.0.0.1 10.0.0.2: expected one address"),
        Invalid(
            text: "[Gateway]\nInterface=eth0\nIPv4=0.0.0.0", line: 3,
            reason: "IPv4=0.0.0.0: not usable as a gateway (unspecified address)"),
        Invalid(
            text: "[Gateway]\nInterface=eth0\nIPv4=255.255.255.255", line: 3,
            reason: "IPv4=255.255.255.255: not usable as a gateway (broadcast address)"),
        Invalid(
            text: "[Gateway]\nInterface=eth0\nIPv4=224.0.0.1", line: 3,
            reason: "IPv4=224.0.0.1: not usable as a gateway (multicast address)"),
        Invalid(
            text: "[Gateway]\nInterface=eth0\nIPv4=127.0.0.1", line: 3,
            reason: "IPv4=127.0.0.1: not usable as a gateway (loopback address)"),
        Invalid(
            text: "[Gateway]\nInterface=eth0\nIPv6=::", line: 3,
            reason: "IPv6=::: not usable as a gateway (unspecified address)"),
        Invalid(
            text: "[Gateway]\nInterface=eth0\nIPv6=::1", line: 3,
            reason: "IPv6=::1: not usable as a gateway (loopback address)"),
        Invalid(
            text: "[Gateway]\nInterface=eth0\nIPv6=ff02::2", line: 3,
            reason: "IPv6=ff02::2: not usable as a gateway (multicast address)"),
    ]

    @Test(arguments: invalid)
    func rejectsInvalidFiles(_ c: Invalid) {
        let expected = ConfigurationError(file: "/etc/nicroute/nicroute.conf", line: c.line, reason: c.reason)
        #expect(throws: expected) {
            try ConfigurationParser.parse(c.text, file: "/etc/nicroute/nicroute.conf", into: Configuration())
        }
    }

    @Test func errorDescriptionIsFileLineReason() {
        let error = ConfigurationError(
            file: "/etc/nicroute/nicroute.conf", line: 7, reason: "IPv6=maybe: not a boolean")
        #expect(error.description == "/etc/nicroute/nicroute.conf:7: IPv6=maybe: not a boolean")
    }

    @Test func parseStartsFromTheGivenBase() throws {
        var base = Configuration()
        base.manage = [.name("eth0")]
        base.tables = 500...599
        let parsed = try ConfigurationParser.parse("[Interfaces]\nManage=eth1", file: "x.conf", into: base)
        #expect(parsed.manage == [.name("eth0"), .name("eth1")])
        #expect(parsed.tables == 500...599)
    }

    // MARK: - Drop-ins

    @Test func loadWithNoFilesGivesTheDefaults() throws {
        #expect(try ConfigurationParser.load([]) == Configuration())
    }

    @Test func dropInsOverrideScalarsAndExtendLists() throws {
        let files: [(path: String, text: String)] = [
            (
                "/etc/nicroute/nicroute.conf",
                """
                [Routing]
                Tables=1000-1099
                IPv6=no
                NetworkData=/mnt/a.json
                [Interfaces]
                Manage=eth*
                Ignore=eth9
                [Gateway]
                Interface=eth1
                IPv4=10.1.0.1
                """
            ),
            (
                "/etc/nicroute/nicroute.conf.d/10-tables.conf",
                "[Routing]\nTables=2000-2099\n[Interfaces]\nManage=ens*\n"
            ),
            (
                "/etc/nicroute/nicroute.conf.d/20-gateway.conf",
                "[Gateway]\nInterface=eth2\nIPv6=fe80::1\n[Routing]\nNetworkData=\n"
            ),
        ]
        let loaded = try ConfigurationParser.load(files)
        #expect(
            loaded
                == config {
                    $0.tables = 2000...2099
                    $0.ipv6 = false
                    $0.networkDataPaths = []
                    $0.manage = [.name("eth*"), .name("ens*")]
                    $0.ignore = [.name("eth9")]
                    $0.gateways = [
                        GatewayOverride(match: .name("eth1"), ipv4: ip("10.1.0.1")),
                        GatewayOverride(match: .name("eth2"), ipv6: ip("fe80::1")),
                    ]
                })
    }

    @Test func dropInResetsLists() throws {
        let loaded = try ConfigurationParser.load([
            ("/etc/nicroute/nicroute.conf", "[Interfaces]\nManage=eth0 eth1\nIgnore=docker*"),
            ("/etc/nicroute/nicroute.conf.d/50-reset.conf", "[Interfaces]\nManage=\nManage=ens5\nIgnore="),
        ])
        #expect(loaded.manage == [.name("ens5")])
        #expect(loaded.ignore == [])
    }

    @Test func dropInRestoresADefault() throws {
        let loaded = try ConfigurationParser.load([
            ("/etc/nicroute/nicroute.conf", "[Routing]\nTables=100-199\nIPv6=no"),
            ("/etc/nicroute/nicroute.conf.d/50-defaults.conf", "[Routing]\nTables=\nIPv6="),
        ])
        #expect(loaded == Configuration())
    }

    @Test func errorInADropInNamesTheDropIn() {
        let expected = ConfigurationError(
            file: "/etc/nicroute/nicroute.conf.d/20-bad.conf", line: 3,
            reason: "Tables=300-200: first (300) is greater than last (200)")
        #expect(throws: expected) {
            try ConfigurationParser.load([
                ("/etc/nicroute/nicroute.conf", "[Routing]\nTables=100-199"),
                ("/etc/nicroute/nicroute.conf.d/10-good.conf", "[Routing]\nIPv6=no"),
                ("/etc/nicroute/nicroute.conf.d/20-bad.conf", "# bad\n[Routing]\nTables=300-200"),
            ])
        }
    }

    // MARK: - Command line

    struct ManageList: Sendable, CustomTestStringConvertible {
        var argument: String
        var expected: [InterfaceMatch]
        var testDescription: String { "'\(argument)'" }
    }

    static let manageLists: [ManageList] = [
        ManageList(argument: "", expected: []),
        ManageList(argument: " , ,", expected: []),
        ManageList(argument: "eth0", expected: [.name("eth0")]),
        ManageList(argument: "eth*,ens5", expected: [.name("eth*"), .name("ens5")]),
        ManageList(argument: "eth0 eth1\tens5", expected: [.name("eth0"), .name("eth1"), .name("ens5")]),
        ManageList(argument: "eth0, eth1 ,,ens5 ", expected: [.name("eth0"), .name("eth1"), .name("ens5")]),
        ManageList(
            argument: "fa:16:3e:00:00:01,eth[0-3]",
            expected: [.mac(MACAddress("fa:16:3e:00:00:01")!), .name("eth[0-3]")]),
    ]

    @Test(arguments: manageLists)
    func parsesTheManageArgument(_ c: ManageList) {
        #expect(ConfigurationParser.parseManageList(c.argument) == c.expected)
    }

    // MARK: - Robustness

    /// Random text made of the format's own characters must parse or throw, never trap.
    @Test func randomTextNeverTraps() {
        var random = SplitMix64(seed: 7)
        let pieces = [
            "[Routing]", "[Interfaces]", "[Gateway]", "[X-A]", "[", "]", "\n", "\r\n", "=", " ", "#", ";", ",", "-",
            "Tables", "Priorities", "IPv6", "FirstHostFallback", "NetworkData", "Manage", "Ignore", "Interface",
            "IPv4", "yes", "1-2", "10000-10999", "253", "10.0.0.1", "fe80::1", "/x", "eth*", "fa:16:3e:00:00:01",
            "\u{FEFF}", "é", "\u{0}",
        ]
        var parsed = 0
        for _ in 0..<20000 {
            let text = (0..<Int(random.next() % 24)).map { _ in pieces.randomElement(using: &random)! }.joined()
            if (try? ConfigurationParser.parse(text, file: "fuzz.conf", into: Configuration())) != nil { parsed += 1 }
        }
        #expect(parsed > 0)
    }
}
