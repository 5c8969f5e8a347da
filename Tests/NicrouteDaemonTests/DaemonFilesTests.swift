import Foundation
import Netlink
import NicrouteCore
import Testing

@testable import NicrouteDaemon

/// A scratch directory tree, removed when the test ends.
final class ScratchTree {
    let root: String
    init() throws {
        root = NSTemporaryDirectory() + "nicroute-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: root) }

    func write(_ relative: String, _ text: String) throws {
        let path = root + "/" + relative
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    func copyFixture(_ fixture: String, to relative: String) throws {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures").appendingPathComponent(fixture)
        try write(relative, "")
        try Data(contentsOf: source).write(to: URL(fileURLWithPath: root + "/" + relative))
    }
}

private func link(_ index: Int32, _ name: String, mac: String) -> Link {
    Link(index: index, name: name, mac: MACAddress(mac), flags: [.up], hardwareType: 1)
}

@Suite struct GatewayHintCollectorTests {
    @Test func leasesAreFoundWhereEachClientKeepsThem() throws {
        let tree = try ScratchTree()
        try tree.copyFixture("leases/networkd-2", to: "run/systemd/netif/leases/2")
        try tree.copyFixture("leases/dhclient.leases", to: "var/lib/dhcp/dhclient.leases")
        try tree.copyFixture(
            "leases/internal-6f0c5c6e-2a5f-3b8e-9c1d-0a7e4c6b2f11-eth1.lease",
            to: "var/lib/NetworkManager/internal-6f0c5c6e-2a5f-3b8e-9c1d-0a7e4c6b2f11-eth7.lease")
        try tree.copyFixture("leases/dhcpcd-eth0.lease", to: "var/lib/dhcpcd/eth8.lease")
        let collector = GatewayHintCollector(root: tree.root, networkDataPaths: [])
        let hints = collector.hints(for: [
            link(2, "eth0", mac: "fa:16:3e:00:00:02"), link(7, "eth7", mac: "fa:16:3e:00:00:07"),
            link(8, "eth8", mac: "fa:16:3e:00:00:08"), link(9, "eth9", mac: "fa:16:3e:00:00:09"),
        ])
        #expect(hints[2]?.first == GatewayHint(gateway: IPAddress("10.0.0.1")!, source: .networkd))
        #expect(hints[7]?.first?.source == .networkManager)
        #expect(hints[8]?.first?.source == .dhcpcd)
        #expect(hints[9] == nil)
        // Every hint comes from the parser's answer for the same bytes.
        let nm = try String(
            contentsOfFile: tree.root
                + "/var/lib/NetworkManager/internal-6f0c5c6e-2a5f-3b8e-9c1d-0a7e4c6b2f11-eth7.lease",
            encoding: .utf8)
        #expect(hints[7]?.first?.gateway == LeaseParser.networkd(nm))
    }

    /// The default paths: cloud-init's instance data first (what its OpenStack datasources read,
    /// from the metadata service or the config drive), passed over when it holds no OpenStack
    /// network data (another cloud's datasource), then a mounted config drive's file.
    @Test func networkDataFromCloudInitFirstThenTheConfigDrive() throws {
        let defaults = Configuration().networkDataPaths
        #expect(defaults.first == "/run/cloud-init/instance-data.json")
        let drive = defaults[1]
        let links = [link(2, "ens3", mac: "52:54:00:00:00:02"), link(3, "ens4", mac: "fa:16:3e:11:22:33")]

        let tree = try ScratchTree()
        try tree.copyFixture("network_data/two-nics-dual-stack.json", to: String(drive.dropFirst()))
        var hints = GatewayHintCollector(root: tree.root, networkDataPaths: defaults).hints(for: links)
        #expect(hints[3] == [GatewayHint(gateway: IPAddress("192.168.50.1")!, source: .networkData)])

        try tree.copyFixture("network_data/cloud-init-instance-data.json", to: "run/cloud-init/instance-data.json")
        hints = GatewayHintCollector(root: tree.root, networkDataPaths: defaults).hints(for: links)
        #expect(
            hints[2] == [
                GatewayHint(gateway: IPAddress("20.20.20.254")!, source: .networkData),
                GatewayHint(gateway: IPAddress("fd00:12::fe")!, source: .networkData),
            ])
        #expect(hints[3] == nil)

        try tree.copyFixture(
            "network_data/cloud-init-instance-data-nocloud.json", to: "run/cloud-init/instance-data.json")
        hints = GatewayHintCollector(root: tree.root, networkDataPaths: defaults).hints(for: links)
        #expect(hints[2] == nil)
        #expect(hints[3] == [GatewayHint(gateway: IPAddress("192.168.50.1")!, source: .networkData)])
    }

    /// The network data is read again only when its file changed (inode, size or time): the
    /// same bytes rewritten in place with the old time are not looked at; a new file is.
    @Test func networkDataIsReadAgainOnlyWhenItChanged() throws {
        let tree = try ScratchTree()
        try tree.copyFixture("network_data/cloud-init-instance-data.json", to: "run/cloud-init/instance-data.json")
        let path = tree.root + "/run/cloud-init/instance-data.json"
        let cache = NetworkDataCache()
        let collector = GatewayHintCollector(
            root: tree.root, networkDataPaths: ["/run/cloud-init/instance-data.json"], networkDataCache: cache)
        let links = [link(2, "ens4", mac: "52:54:00:00:00:02")]
        #expect(collector.hints(for: links)[2]?.first?.gateway == IPAddress("20.20.20.254"))

        // Another gateway of the same length, written in place with the old modification time.
        var before = stat()
        #expect(stat(path, &before) == 0)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.write(contentsOf: Data(text.replacingOccurrences(of: "20.20.20.254", with: "20.20.20.253").utf8))
        try handle.close()
        var times = [before.st_atim, before.st_mtim]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        #expect(collector.hints(for: links)[2]?.first?.gateway == IPAddress("20.20.20.254"))

        // A new file (cloud-init writes a new one and renames it): read.
        try FileManager.default.removeItem(atPath: path)
        try text.replacingOccurrences(of: "20.20.20.254", with: "20.20.20.252").write(
            toFile: path, atomically: true, encoding: .utf8)
        #expect(collector.hints(for: links)[2]?.first?.gateway == IPAddress("20.20.20.252"))
    }

    @Test func networkDataIsMatchedByMAC() throws {
        let tree = try ScratchTree()
        try tree.copyFixture("network_data/two-nics-dual-stack.json", to: "cd/network_data.json")
        let collector = GatewayHintCollector(
            root: tree.root, networkDataPaths: ["/missing.json", "/cd/network_data.json"])
        let hints = collector.hints(for: [
            link(3, "ens4", mac: "fa:16:3e:11:22:33"), link(2, "ens3", mac: "fa:16:3e:6d:1a:2b"),
        ])
        #expect(hints[3] == [GatewayHint(gateway: IPAddress("192.168.50.1")!, source: .networkData)])
        #expect(
            hints[2] == [
                GatewayHint(gateway: IPAddress("10.0.0.1")!, source: .networkData),
                GatewayHint(gateway: IPAddress("2001:db8:0:1::1")!, source: .networkData),
            ])
    }
}

@Suite struct ConfigurationLoaderTests {
    @Test func dropInsApplyInOrderAndTheCommandLineReplacesManage() throws {
        let tree = try ScratchTree()
        try tree.write("nicroute.conf", "[Routing]\nTables=2000-2099\n[Interfaces]\nManage=ens*\n")
        try tree.write("nicroute.conf.d/20-later.conf", "[Routing]\nTables=3000-3099\n")
        try tree.write("nicroute.conf.d/10-first.conf", "[Routing]\nTables=4000-4099\nIPv6=no\n")
        try tree.write("nicroute.conf.d/README", "not a drop-in: ignored")
        var loader = ConfigurationLoader(path: tree.root + "/nicroute.conf")
        var c = try loader.load()
        #expect(c.tables == 3000...3099)
        #expect(c.ipv6 == false)
        #expect(c.manage == [.name("ens*")])
        loader = ConfigurationLoader(configPath: tree.root + "/nicroute.conf", manage: ["eth*,veth0"])
        c = try loader.load()
        #expect(c.manage == [.name("eth*"), .name("veth0")])
    }

    @Test func errorsNameTheFileAndLine() throws {
        let tree = try ScratchTree()
        try tree.write("nicroute.conf", "[Routing]\nTables=1-10\n")
        try tree.write("nicroute.conf.d/50-bad.conf", "# comment\n[Routing]\nPriorities=40000-40010\n")
        #expect {
            try ConfigurationLoader(path: tree.root + "/nicroute.conf").load()
        } throws: { error in
            guard let e = error as? ConfigurationError else { return false }
            return e.file.hasSuffix("50-bad.conf") && e.line == 3 && e.reason.contains("Priorities")
        }
    }

    @Test func missingFileIsFineOnlyAtTheDefaultPath() throws {
        let tree = try ScratchTree()
        let explicit = ConfigurationLoader(path: tree.root + "/absent.conf")
        #expect(throws: ConfigurationError.self) { try explicit.load() }
        var implicit = ConfigurationLoader(path: nil)
        implicit.path = tree.root + "/absent.conf"
        #expect(try implicit.load() == Configuration())
    }
}

@Suite struct StateStoreTests {
    @Test func slotsSurviveARestart() throws {
        let tree = try ScratchTree()
        let store = StateStore(directory: tree.root + "/state/nested")
        #expect(store.loadSlots() == SlotTable())
        var slots = SlotTable()
        slots.assign(["fa:16:3e:00:00:01", "fa:16:3e:00:00:02"], capacity: 8)
        try store.save(slots)
        #expect(StateStore(directory: tree.root + "/state/nested").loadSlots() == slots)
        #expect(!FileManager.default.fileExists(atPath: tree.root + "/state/nested/slots.tmp"))
    }

    /// A slot file that is garbage in part, or not a file at all, is read as far as it can be
    /// and the rest is named; a missing one is no problem.
    @Test func aDamagedSlotFileIsNamed() throws {
        let tree = try ScratchTree()
        let store = StateStore(directory: tree.root + "/state")
        var problems: [String] = []
        #expect(store.loadSlots { problems.append($0) } == SlotTable())
        #expect(problems.isEmpty)

        try tree.write(
            "state/slots", "# comment\nfa:16:3e:00:00:01 0\n\u{7f}ELF\u{2}\u{1}garbage\nfa:16:3e:00:00:02 x\n\n")
        #expect(store.loadSlots { problems.append($0) } == SlotTable(["fa:16:3e:00:00:01": 0]))
        #expect(problems.count == 1)
        #expect(problems.first?.contains("2 line(s) are not NIC slots") == true)

        try FileManager.default.removeItem(atPath: tree.root + "/state/slots")
        try FileManager.default.createDirectory(atPath: tree.root + "/state/slots", withIntermediateDirectories: true)
        problems = []
        #expect(store.loadSlots { problems.append($0) } == SlotTable())
        #expect(problems == ["cannot read \(tree.root)/state/slots: a directory"])
        #expect(throws: FileError.self) { try store.save(SlotTable(["fa:16:3e:00:00:01": 0])) }
    }
}

@Suite struct TriggerBoxTests {
    @Test(arguments: [
        (RouteEvent.added(.rule(Rule(family: .inet, priority: 10000, table: 10000, proto: .nicroute))), false),
        (.removed(.rule(Rule(family: .inet, priority: 10000, table: 10000, proto: .nicroute))), true),
        (.removed(.rule(Rule(family: .inet, priority: 500, table: 99, proto: .boot))), false),
        (.added(.route(Route(family: .inet, table: 254, destination: IPPrefix("10.0.0.0/8")!))), true),
        (
            .added(.route(Route(family: .inet, table: 10003, destination: IPPrefix("10.0.0.0/8")!, proto: .static))),
            true
        ),
        (.added(.route(Route(family: .inet, table: 77, destination: IPPrefix("10.0.0.0/8")!, proto: .static))), false),
        (
            .added(.route(Route(family: .inet, table: 10003, destination: IPPrefix("10.0.0.0/8")!, proto: .nicroute))),
            false
        ),
        (
            .removed(
                .route(Route(family: .inet, table: 10003, destination: IPPrefix("10.0.0.0/8")!, proto: .nicroute))),
            true
        ),
        (.added(.neighbor(Neighbor(linkIndex: 3, address: IPAddress("20.20.20.1")!, state: .reachable))), true),
        (.added(.neighbor(Neighbor(linkIndex: 3, address: IPAddress("20.20.20.1")!, state: .incomplete))), false),
        (.added(.neighbor(Neighbor(linkIndex: 3, address: IPAddress("20.20.20.9")!, state: .reachable))), false),
        (.added(.link(Link(index: 3, name: "eth1"))), true),
    ])
    func onlyEventsThatCanChangeThePlanWakeTheLoop(_ event: RouteEvent, _ wakes: Bool) {
        let box = TriggerBox()
        box.setInterest(
            .init(tables: 10000...10999, probes: [IPAddress("20.20.20.1")!], linkNames: [3: "eth1"], managed: [3]))
        box.post(event)
        let events = box.take()
        #expect(events.relevant == wakes)
        // None of these is an address: the next pass reads the whole picture.
        #expect(events.beyondAddresses)
    }

    /// Address announcements alone let the next pass read only the addresses; an event of
    /// another kind, relevant or not, makes it read everything (the machine keeps that until the
    /// pass: see `DaemonMachineTests`).
    @Test func onlyAddressAnnouncementsAllowAnAddressOnlyPass() {
        let box = TriggerBox()
        box.setInterest(.init(tables: 10000...10999, probes: [], linkNames: [3: "eth1"], managed: [3]))
        let renewal = RouteEvent.added(
            .address(InterfaceAddress(linkIndex: 3, address: IPAddress("10.20.20.17")!, prefixLength: 24)))
        box.post(renewal)
        box.post(renewal)
        var events = box.take()
        #expect(events.relevant && !events.beyondAddresses)

        box.post(renewal)
        box.post(.added(.route(Route(family: .inet, table: 77, destination: IPPrefix("10.0.0.0/8")!, proto: .static))))
        events = box.take()
        #expect(events.beyondAddresses, "an irrelevant route event still counts")

        box.post(.removed(.neighbor(Neighbor(linkIndex: 3, address: IPAddress("10.20.20.1")!, state: .failed))))
        events = box.take()
        #expect(!events.relevant && events.beyondAddresses, "an irrelevant event alone wakes nothing")
        box.post(renewal)
        #expect(!box.take().beyondAddresses, "taken")
    }

    /// Notifications the subscription's filter drops undecoded (nicroute's own routes echoed
    /// back, or someone else's with its protocol) still count as events beyond addresses.
    @Test func notificationsDroppedUndecodedStillCount() throws {
        let box = TriggerBox()
        let route = Route(family: .inet, table: 1001, destination: IPPrefix("0.0.0.0/0")!, proto: .nicroute)
        let bytes = try RouteCodec.routeRequest(MessageType.newRoute, flags: 0, route: route, sequence: 1)
        let message = try #require(try NetlinkMessage.split(bytes).first)
        #expect(!box.filter(message.header, message.payload))
        box.post(.added(.address(InterfaceAddress(linkIndex: 3, address: IPAddress("10.20.20.17")!, prefixLength: 24))))
        #expect(box.take().beyondAddresses)
    }

    /// The echoes of a pass's own changes, heard while it applies them, change nothing (the
    /// kernel as the pass leaves it shows them): no wake-up, and the next pass may still read
    /// the addresses alone. The same events from someone else, or after the pass, count.
    @Test func theEchoesOfAPassOwnChangesAreItsOwn() throws {
        let box = TriggerBox()
        box.setInterest(.init(tables: 10000...10999, probes: [], linkNames: [3: "eth1"], managed: [3]))
        let gone = Route(family: .inet, table: 10003, destination: IPPrefix("10.9.0.0/24")!, proto: .nicroute)
        let rule = Rule(
            family: .inet, priority: 10003, table: 10003, source: .host(IPAddress("10.20.20.17")!), proto: .nicroute)
        let old = Rule(
            family: .inet, priority: 10003, table: 10003, source: .host(IPAddress("10.20.20.9")!), proto: .nicroute)
        let added = Route(family: .inet, table: 10003, destination: IPPrefix("0.0.0.0/0")!, proto: .nicroute)
        let bytes = try RouteCodec.routeRequest(MessageType.newRoute, flags: 0, route: added, sequence: 1)
        let echo = try #require(try NetlinkMessage.split(bytes).first)

        box.expect([.addRoute(added), .deleteRoute(gone), .addRule(rule), .deleteRule(old)])
        #expect(!box.filter(echo.header, echo.payload))
        box.post(.removed(.route(gone)))
        box.post(.added(.rule(rule)))
        box.post(.removed(.rule(old)))
        box.applied()
        #expect(box.take() == KernelEvents())

        // Each echo is expected once: a second deletion of the same rule is someone else's.
        box.expect([.deleteRule(old)])
        box.post(.removed(.rule(old)))
        box.post(.removed(.rule(old)))
        box.applied()
        var events = box.take()
        #expect(events.relevant && events.beyondAddresses)

        // After the pass, the same notifications are someone else's.
        #expect(!box.filter(echo.header, echo.payload))
        #expect(box.take().beyondAddresses)
        box.post(.removed(.route(gone)))
        events = box.take()
        #expect(events.relevant && events.beyondAddresses)
        // And a deletion the pass did not make, while it applies, is someone else's too.
        box.expect([.deleteRule(old)])
        box.post(.removed(.rule(rule)))
        box.applied()
        #expect(box.take().relevant)
    }

    /// The pre-decode filter drops exactly the added routes `isRelevant` turns down whatever the
    /// interest: nicroute's own, outside the main table (tables above 255 included).
    @Test(arguments: [
        (MessageType.newRoute, UInt32(10003), RouteProtocol.nicroute, false),
        (MessageType.newRoute, 300, .nicroute, false),
        (MessageType.newRoute, 254, .nicroute, true),
        (MessageType.newRoute, 10003, .static, true),
        (MessageType.newRoute, 254, .boot, true),
        (MessageType.deleteRoute, 10003, .nicroute, true),
    ])
    func echoesOfOwnRoutesAreNotDecoded(
        _ type: UInt16, _ table: UInt32, _ proto: RouteProtocol, _ decoded: Bool
    )
        throws
    {
        let route = Route(family: .inet, table: table, destination: IPPrefix("10.0.0.0/8")!, proto: proto)
        let bytes = try RouteCodec.routeRequest(type, flags: 0, route: route, sequence: 1)
        let message = try #require(try NetlinkMessage.split(bytes).first)
        #expect(TriggerBox.worthDecoding(message.header, message.payload) == decoded)
        if !decoded {
            #expect(!TriggerBox.isRelevant(.route(route), added: true, interest: .init(tables: 0...4_000_000)))
        }
    }

    @Test func addressChangesAreRememberedForTheStatusLine() {
        let box = TriggerBox()
        box.setInterest(.init(tables: nil, probes: [], linkNames: [3: "eth1"], managed: [3]))
        box.post(.added(.address(InterfaceAddress(linkIndex: 3, address: IPAddress("10.20.20.17")!, prefixLength: 24))))
        #expect(box.take().lastChange == "eth1 +10.20.20.17")
        #expect(box.take().lastChange == nil)
    }
}

/// The commented configuration the packages install as /etc/nicroute/nicroute.conf.
@Suite struct ShippedConfigurationTests {
    static let text: String = {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("packaging/common/nicroute.conf").path
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }()

    @Test func asShippedItChangesNothing() throws {
        #expect(Self.text.contains("[Routing]"))
        let parsed = try ConfigurationParser.parse(Self.text, file: "nicroute.conf", into: Configuration())
        #expect(parsed == Configuration())
    }

    /// Each commented `#Key=value` states the default (or a valid example): uncommented, the
    /// file still parses, and the defaults it states are the real ones.
    @Test func everyCommentedSettingIsValid() throws {
        let uncommented = Self.text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            guard line.hasPrefix("#"), let next = line.dropFirst().first, next.isUppercase || next == "[" else {
                return String(line)
            }
            return String(line.dropFirst())
        }.joined(separator: "\n")
        #expect(uncommented.contains("\nTables=10000-10999\n"))
        let parsed = try ConfigurationParser.parse(uncommented, file: "nicroute.conf", into: Configuration())
        let defaults = Configuration()
        #expect(parsed.tables == defaults.tables)
        #expect(parsed.priorities == defaults.priorities)
        #expect(parsed.ipv6 == defaults.ipv6)
        #expect(parsed.firstHostFallback == defaults.firstHostFallback)
        #expect(parsed.forwardedConnections == defaults.forwardedConnections)
        #expect(parsed.forwardMarkMask == defaults.forwardMarkMask)
        #expect(uncommented.contains("\nForwardedConnections=auto\n"))
        #expect(uncommented.contains("\nForwardMarkMask=0x3010\n"))
        #expect(parsed.networkDataPaths == defaults.networkDataPaths)
        #expect(parsed.controlSocket == defaults.controlSocket)
        #expect(parsed.controlGroup == nil)
        #expect(parsed.manage.map(\.description) == ["eth*", "ens*"])
        #expect(parsed.gateways.count == 1)
        #expect(uncommented.contains("\nLocalRoutes=yes\n"))
        #expect(parsed.localRoutes == defaults.localRoutes)
        #expect(parsed.sources.count == 1)
    }
}

/// `ForwardedConnections=auto` follows the forwarding sysctls (read under a fixture root; the
/// nftables side is tested in network namespaces by Tests/Scenario/forward.sh, never here: these
/// tests run in the machine's own namespace).
@Suite struct ForwarderDecisionTests {
    @Test(
        arguments: [
            // ip_forward, IPv6 forwarding, mode -> wanted
            ("0", "0", ForwardingMode.auto, false), ("1", "0", .auto, true), ("0", "1", .auto, true),
            ("1", "1", .no, false), ("0", "0", .yes, true), (nil, nil, .auto, false),
        ] as [(String?, String?, ForwardingMode, Bool)])
    func autoFollowsForwarding(v4: String?, v6: String?, mode: ForwardingMode, wanted: Bool) throws {
        let tree = try ScratchTree()
        if let v4 { try tree.write("proc/sys/net/ipv4/ip_forward", v4 + "\n") }
        if let v6 { try tree.write("proc/sys/net/ipv6/conf/all/forwarding", v6 + "\n") }
        var c = Configuration()
        c.forwardedConnections = mode
        let unwanted = Forwarder(stateDirectory: tree.root + "/state", root: tree.root, nftables: FakeNftables())
            .unwanted(c)
        #expect((unwanted == nil) == wanted)
        if let unwanted {
            #expect(ForwardingState.off(unwanted).reason.contains("ForwardedConnections=\(mode.rawValue)"))
        }
    }
}

/// `src_valid_mark` on marked NICs, in a scratch /proc: set where 0, recorded, put back on flush;
/// a write that fails (a read-only /proc/sys, faked here as EROFS) is named with its reason and,
/// on flush, kept in the record for the next one.
@Suite struct SourceValidMarkTests {
    static func conf(_ nic: String) -> String { "proc/sys/net/ipv4/conf/\(nic)/src_valid_mark" }

    /// A forwarder whose writes to the NICs in `readOnly` fail with EROFS.
    static func forwarder(_ tree: ScratchTree, readOnly: Set<String>) -> Forwarder {
        let f = Forwarder(stateDirectory: tree.root + "/state", root: tree.root, nftables: FakeNftables())
        f.writeSysctl = { path, text in
            readOnly.contains { path.hasSuffix("/\($0)/src_valid_mark") } ? EROFS : Forwarder.write(path, text)
        }
        return f
    }

    func value(_ tree: ScratchTree, _ nic: String) -> String? {
        (try? String(contentsOfFile: tree.root + "/" + Self.conf(nic), encoding: .utf8))?.trimmingCharacters(
            in: .whitespacesAndNewlines)
    }

    @Test func setWhereWritableAndSayWhyNotElsewhere() throws {
        let tree = try ScratchTree()
        for nic in ["eth0", "eth1"] { try tree.write(Self.conf(nic), "0\n") }
        try tree.write(Self.conf("eth2"), "1\n")
        let f = Self.forwarder(tree, readOnly: ["eth1"])
        let done = f.setSourceValidMark(["eth0", "eth1", "eth2", "eth3"])
        #expect(done == ["sysctl net.ipv4.conf.eth0.src_valid_mark=1"])
        #expect(value(tree, "eth0") == "1")
        #expect(value(tree, "eth1") == "0")
        // eth2 was 1 already (not nicroute's), eth3 has no file (a NIC that is gone).
        #expect(try String(contentsOfFile: f.markFile, encoding: .utf8) == "eth0\n")
        #expect(f.sourceValidMarkFailures == ["eth1", "eth3"])
        #expect(f.sourceValidMarkErrors["eth1"]?.contains("Read-only file system") == true)
        let note = try #require(f.sourceValidMarkNote("eth1"))
        #expect(note.contains("rp_filter=1") && note.contains("net.ipv4.conf.eth1.src_valid_mark=1"))
        #expect(f.sourceValidMarkNote("eth0") == nil)

        // Writable again: set, the failure and its note gone.
        f.writeSysctl = Forwarder.write
        #expect(f.setSourceValidMark(["eth0", "eth1"]) == ["sysctl net.ipv4.conf.eth1.src_valid_mark=1"])
        #expect(f.sourceValidMarkFailures.isEmpty && f.sourceValidMarkNote("eth1") == nil)
        #expect(try String(contentsOfFile: f.markFile, encoding: .utf8) == "eth0\neth1\n")
    }

    @Test func flushKeepsWhatItCannotPutBack() throws {
        let tree = try ScratchTree()
        for nic in ["eth0", "eth1", "eth2"] { try tree.write(Self.conf(nic), "0\n") }
        _ = Self.forwarder(tree, readOnly: []).setSourceValidMark(["eth0", "eth1", "eth2"])
        try tree.write(Self.conf("eth2"), "0\n")  // put back by someone else
        try tree.write("state/src_valid_mark", "eth0\neth1\neth2\neth9\n")  // eth9: gone

        let f = Self.forwarder(tree, readOnly: ["eth1"])
        #expect(f.restoreSourceValidMark() == ["sysctl net.ipv4.conf.eth0.src_valid_mark=0"])
        #expect(value(tree, "eth0") == "0" && value(tree, "eth1") == "1")
        #expect(f.restoreFailures == ["net.ipv4.conf.eth1.src_valid_mark=0: Read-only file system"])
        #expect(try String(contentsOfFile: f.markFile, encoding: .utf8) == "eth1\n")

        // The next flush, with /proc/sys writable: done, and the record gone.
        let g = Self.forwarder(tree, readOnly: [])
        #expect(g.restoreSourceValidMark() == ["sysctl net.ipv4.conf.eth1.src_valid_mark=0"])
        #expect(g.restoreFailures.isEmpty && !FileManager.default.fileExists(atPath: g.markFile))
    }
}
