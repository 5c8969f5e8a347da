import CSystemd
import Foundation
import NicrouteCore
import Synchronization
import Testing

@testable import NicrouteDaemon

// NetworkManager's D-Bus API, as NetworkManagerBus asks it, answered by a stand-in on a private
// dbus-daemon (no system bus, no NetworkManager on these machines): the same object paths,
// interfaces, method and property types as NetworkManager's introspection data
// (introspection/org.freedesktop.NetworkManager.xml: GetDeviceByIpIface(s) -> o;
// org.freedesktop.NetworkManager.Device.xml: Dhcp4Config o; ...DHCP4Config.xml: Options a{sv}).

/// A private dbus-daemon in `directory`, ended by `stop()` (by its PID, waited for).
final class PrivateBus {
    let address: String
    private var pid: pid_t = 0

    init(directory: String) throws {
        let socket = directory + "/bus"
        address = "unix:path=" + socket
        let config = directory + "/bus.conf"
        try """
        <!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
         "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
        <busconfig>
          <type>nicroute-test</type>
          <listen>\(address)</listen>
          <auth>EXTERNAL</auth>
          <policy context="default">
            <allow send_destination="*" eavesdrop="true"/>
            <allow eavesdrop="true"/>
            <allow own="*"/>
          </policy>
        </busconfig>
        """.write(toFile: config, atomically: true, encoding: .utf8)
        let argv = ["/usr/bin/dbus-daemon", "--config-file=\(config)", "--nofork", "--nopidfile", "--nosyslog"]
        var cArgs = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        guard posix_spawn(&pid, argv[0], nil, nil, &cArgs, environ) == 0 else {
            throw CocoaError(.executableNotLoadable)
        }
        for _ in 0..<250 where !FileManager.default.fileExists(atPath: socket) { usleep(20_000) }  // 5 s at most
        guard FileManager.default.fileExists(atPath: socket) else {
            stop()
            throw CocoaError(.fileNoSuchFile)
        }
    }

    func stop() {
        guard pid > 0 else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        pid = 0
    }

    deinit { stop() }
}

/// Answers as NetworkManager does, for the devices it is given, on its own thread.
final class FakeNetworkManager: @unchecked Sendable {
    struct Device {
        var index: Int
        /// The DHCPv4 options; nil: the device runs without DHCP (`Dhcp4Config` is "/").
        var options: [String: String]?
    }
    let devices: [String: Device]
    /// While true, calls are taken and never answered (a NetworkManager that hangs).
    let hangs = Atomic<Bool>(false)
    private var bus: OpaquePointer?
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    let calls = Mutex<[String]>([])

    init(address: String, devices: [String: Device]) throws {
        self.devices = devices
        var bus: OpaquePointer?
        guard sd_bus_new(&bus) >= 0, sd_bus_set_address(bus, address) >= 0, sd_bus_set_bus_client(bus, 1) >= 0,
            sd_bus_start(bus) >= 0, sd_bus_request_name(bus, NetworkManagerBus.service, 0) >= 0
        else {
            sd_bus_flush_close_unref(bus)
            throw CocoaError(.featureUnsupported)
        }
        self.bus = bus
        let handler: sd_bus_message_handler_t = { message, userdata, _ in
            Unmanaged<FakeNetworkManager>.fromOpaque(userdata!).takeUnretainedValue().handle(message)
        }
        let me = Unmanaged.passUnretained(self).toOpaque()
        var paths = [NetworkManagerBus.managerPath]
        for device in devices.values {
            paths += ["/org/freedesktop/NetworkManager/Devices/\(device.index)", dhcpPath(device)].compactMap { $0 }
        }
        for path in paths { sd_bus_add_object(bus, nil, path, handler, me) }
        Thread { [self] in
            while !stopping.load(ordering: .relaxed) {
                let r = sd_bus_process(self.bus, nil)
                if r < 0 { break }
                if r == 0 { sd_bus_wait(self.bus, 50_000) }
            }
            finished.signal()
        }.start()
    }

    func stop() {
        guard !stopping.exchange(true, ordering: .relaxed) else { return }
        finished.wait()
        sd_bus_flush_close_unref(bus)
    }

    private func dhcpPath(_ device: Device) -> String? {
        device.options == nil ? nil : "/org/freedesktop/NetworkManager/DHCP4Config/\(device.index)"
    }

    private func handle(_ message: OpaquePointer?) -> Int32 {
        let path = String(cString: sd_bus_message_get_path(message))
        if sd_bus_message_is_method_call(message, NetworkManagerBus.service, "GetDeviceByIpIface") > 0 {
            let name = readString(message) ?? ""
            calls.withLock { $0.append("GetDeviceByIpIface \(name)") }
            if hangs.load(ordering: .relaxed) { return 1 }
            guard let device = devices[name] else {
                return error(message, "org.freedesktop.NetworkManager.UnknownDevice", "No device found for \(name)")
            }
            return reply(message) { reply in
                append(reply, "o", "/org/freedesktop/NetworkManager/Devices/\(device.index)")
            }
        }
        guard sd_bus_message_is_method_call(message, "org.freedesktop.DBus.Properties", "Get") > 0,
            let interface = readString(message), let property = readString(message)
        else { return 0 }
        calls.withLock { $0.append("Get \(path) \(interface).\(property)") }
        for device in devices.values {
            if path == "/org/freedesktop/NetworkManager/Devices/\(device.index)",
                interface == "org.freedesktop.NetworkManager.Device", property == "Dhcp4Config"
            {
                return reply(message) { reply in
                    sd_bus_message_open_container(reply, CChar(UInt8(ascii: "v")), "o")
                    append(reply, "o", dhcpPath(device) ?? "/")
                    sd_bus_message_close_container(reply)
                }
            }
            if path == dhcpPath(device), interface == "org.freedesktop.NetworkManager.DHCP4Config",
                property == "Options", let options = device.options
            {
                return reply(message) { reply in
                    sd_bus_message_open_container(reply, CChar(UInt8(ascii: "v")), "a{sv}")
                    sd_bus_message_open_container(reply, CChar(UInt8(ascii: "a")), "{sv}")
                    for (key, value) in options.sorted(by: { $0.key < $1.key }) {
                        sd_bus_message_open_container(reply, CChar(UInt8(ascii: "e")), "sv")
                        append(reply, "s", key)
                        sd_bus_message_open_container(reply, CChar(UInt8(ascii: "v")), "s")
                        append(reply, "s", value)
                        sd_bus_message_close_container(reply)
                        sd_bus_message_close_container(reply)
                    }
                    // A value of another type, as NetworkManager may add one day: skipped.
                    sd_bus_message_open_container(reply, CChar(UInt8(ascii: "e")), "sv")
                    append(reply, "s", "zz_not_a_string")
                    sd_bus_message_open_container(reply, CChar(UInt8(ascii: "v")), "u")
                    var number: UInt32 = 7
                    sd_bus_message_append_basic(reply, CChar(UInt8(ascii: "u")), &number)
                    sd_bus_message_close_container(reply)
                    sd_bus_message_close_container(reply)
                    sd_bus_message_close_container(reply)
                    sd_bus_message_close_container(reply)
                }
            }
        }
        return error(message, "org.freedesktop.DBus.Error.UnknownProperty", "No such property \(property)")
    }

    private func readString(_ message: OpaquePointer?) -> String? {
        var value: UnsafePointer<CChar>?
        guard sd_bus_message_read_basic(message, CChar(UInt8(ascii: "s")), &value) > 0, let value else { return nil }
        return String(cString: value)
    }

    private func append(_ message: OpaquePointer?, _ type: Character, _ text: String) {
        _ = text.withCString { sd_bus_message_append_basic(message, CChar(type.asciiValue!), $0) }
    }

    private func reply(_ call: OpaquePointer?, _ body: (OpaquePointer?) -> Void) -> Int32 {
        var reply: OpaquePointer?
        guard sd_bus_message_new_method_return(call, &reply) >= 0 else { return -1 }
        body(reply)
        let r = sd_bus_send(nil, reply, nil)
        sd_bus_message_unref(reply)
        return r < 0 ? r : 1
    }

    private func error(_ call: OpaquePointer?, _ name: String, _ text: String) -> Int32 {
        var e = sd_bus_error()
        sd_bus_error_set(&e, name, text)
        let r = sd_bus_reply_method_error(call, &e)
        sd_bus_error_free(&e)
        return r < 0 ? r : 1
    }

    deinit { stop() }
}

private func link(_ index: Int32, _ name: String) -> Link {
    Link(index: index, name: name, mac: MACAddress("fa:16:3e:00:00:\(String(format: "%02x", index))"), flags: [.up])
}

@Suite(.serialized) struct NetworkManagerBusTests {
    /// The never-default profile of issue 14: eth0 has main's default route, eth1 only a lease.
    static let neverDefault = LeaseParser.nmcliDHCP4Options(
        (try? String(
            contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/leases/nmcli-dhcp4-eth1-never-default.txt"), encoding: .utf8)) ?? "")

    @Test func theOptionsOfADeviceAreReadAsNetworkManagerPublishesThem() throws {
        let tree = try ScratchTree()
        let bus = try PrivateBus(directory: tree.root)
        defer { bus.stop() }
        let nm = try FakeNetworkManager(
            address: bus.address,
            devices: ["eth1": .init(index: 3, options: Self.neverDefault), "eth2": .init(index: 4, options: nil)])
        defer { nm.stop() }
        let client = try #require(NetworkManagerBus(address: bus.address))
        defer { client.close() }
        #expect(client.dhcp4Options(interface: "eth1") == Self.neverDefault)
        #expect(client.dhcp4Options(interface: "eth2") == nil)  // no DHCP: Dhcp4Config is "/"
        #expect(client.dhcp4Options(interface: "eth9") == nil)  // UnknownDevice
        #expect(NetworkManagerBus(address: "unix:path=\(tree.root)/no-such-bus") == nil)
    }

    @Test func aNeverDefaultProfileYieldsItsLeasesRouterAndStatusSaysFromWhere() throws {
        let tree = try ScratchTree()
        let bus = try PrivateBus(directory: tree.root)
        defer { bus.stop() }
        let nm = try FakeNetworkManager(
            address: bus.address,
            devices: [
                "eth0": .init(index: 2, options: ["routers": "10.10.10.1"]),
                "eth1": .init(index: 3, options: Self.neverDefault),
            ])
        defer { nm.stop() }
        try tree.write("run/NetworkManager/devices/3", "[device]\nmanaged=true\n")
        let collector = GatewayHintCollector(root: tree.root, networkDataPaths: [], networkManagerBus: bus.address)
        let mainDefault = Route(
            family: .inet, table: RoutingTable.main, destination: .any(.inet), proto: .dhcp,
            gateway: IPAddress("10.10.10.1"), outputInterface: 2, metric: 100)
        let hints = collector.hints(for: [link(2, "eth0"), link(3, "eth1")], mainRoutes: [mainDefault])
        #expect(hints[3] == [GatewayHint(gateway: IPAddress("20.20.20.254")!, source: .networkManager)])
        // eth0's default route is in main: NetworkManager is not asked about it.
        #expect(hints[2] == nil)
        #expect(!nm.calls.withLock { $0 }.contains("GetDeviceByIpIface eth0"))

        // The planner takes it, and status names the source.
        let a0 = InterfaceAddress(linkIndex: 2, address: IPAddress("10.10.10.29")!, prefixLength: 24)
        let a1 = InterfaceAddress(linkIndex: 3, address: IPAddress("20.20.20.16")!, prefixLength: 24)
        var configuration = Configuration()
        configuration.manage = [.name("eth*")]
        let plan = Planner(configuration: configuration).plan(
            snapshot: KernelSnapshot(
                links: [link(2, "eth0"), link(3, "eth1")], addresses: [a0, a1], routes: [mainDefault]),
            slots: SlotTable(), hints: hints)
        let eth1 = try #require(plan.nics.first { $0.link.name == "eth1" })
        #expect(eth1.ipv4Gateway == GatewayHint(gateway: IPAddress("20.20.20.254")!, source: .networkManager))
        #expect(GatewaySource.networkManager.rawValue == "NetworkManager lease")
    }

    /// A NetworkManager that takes calls and never answers costs one call's timeout per pass at
    /// most, then is left alone for a back-off (2, 4 ... 60 s); the NICs that went without its
    /// lease are named, and it is asked again once the back-off is over.
    @Test func aNetworkManagerThatHangsCostsOneTimeoutThenBacksOff() throws {
        let tree = try ScratchTree()
        let bus = try PrivateBus(directory: tree.root)
        defer { bus.stop() }
        let nm = try FakeNetworkManager(
            address: bus.address,
            devices: [
                "eth1": .init(index: 3, options: Self.neverDefault),
                "eth2": .init(index: 4, options: ["routers": "30.30.30.1"]),
            ])
        defer { nm.stop() }
        nm.hangs.store(true, ordering: .relaxed)
        try tree.write("run/NetworkManager/devices/3", "[device]\nmanaged=true\n")
        let silence = NetworkManagerSilence()
        let collector = GatewayHintCollector(
            root: tree.root, networkDataPaths: [], networkManagerBus: bus.address, networkManagerSilence: silence)
        let links = [link(3, "eth1"), link(4, "eth2")]
        #expect(collector.hints(for: links, now: 100).isEmpty)
        // One call, unanswered: eth2 was not asked at all.
        #expect(nm.calls.withLock { $0 } == ["GetDeviceByIpIface eth1"])
        #expect(silence.unasked == ["eth1", "eth2"])
        #expect(silence.note?.contains("did not answer") == true)
        // Within the back-off, not asked.
        #expect(collector.hints(for: links, now: 101).isEmpty)
        #expect(nm.calls.withLock { $0 }.count == 1)
        // Answering again, asked once the back-off is over; the note goes.
        nm.hangs.store(false, ordering: .relaxed)
        let hints = collector.hints(for: links, now: 102)
        #expect(hints[3] == [GatewayHint(gateway: IPAddress("20.20.20.254")!, source: .networkManager)])
        #expect(hints[4] == [GatewayHint(gateway: IPAddress("30.30.30.1")!, source: .networkManager)])
        #expect(silence.unasked.isEmpty && silence.note == nil)
    }

    @Test func withoutNetworkManagerRunningTheBusIsNotAsked() throws {
        let tree = try ScratchTree()
        let bus = try PrivateBus(directory: tree.root)
        defer { bus.stop() }
        let nm = try FakeNetworkManager(
            address: bus.address, devices: ["eth1": .init(index: 3, options: Self.neverDefault)])
        defer { nm.stop() }
        // No run/NetworkManager in the tree: NetworkManager does not run there.
        let collector = GatewayHintCollector(root: tree.root, networkDataPaths: [], networkManagerBus: bus.address)
        #expect(collector.hints(for: [link(3, "eth1")]).isEmpty)
        #expect(nm.calls.withLock { $0 }.isEmpty)
    }

    @Test func aLeaseFileWithARouterIsReadBeforeTheBus() throws {
        let tree = try ScratchTree()
        try tree.write("run/NetworkManager/devices/3", "[device]\nmanaged=true\n")
        try tree.copyFixture(
            "leases/internal-6f0c5c6e-2a5f-3b8e-9c1d-0a7e4c6b2f11-eth1.lease",
            to: "var/lib/NetworkManager/internal-6f0c5c6e-2a5f-3b8e-9c1d-0a7e4c6b2f11-eth1.lease")
        let collector = GatewayHintCollector(
            root: tree.root, networkDataPaths: [], networkManagerBus: "unix:path=\(tree.root)/no-such-bus")
        #expect(
            collector.hints(for: [link(3, "eth1")])[3] == [
                GatewayHint(gateway: IPAddress("192.168.122.1")!, source: .networkManager)
            ])
    }

    /// Against a real NetworkManager, when Tests/System/networkmanager.sh provides one (booted in
    /// a container): its bus, the root of its file system, the interface it runs DHCP on with
    /// `ipv4.never-default`, the router its DHCP server hands out, and `nmcli -f DHCP4 device
    /// show` of that interface.
    static let real = ProcessInfo.processInfo.environment

    @Test(.enabled(if: real["NICROUTE_NM_BUS"] != nil, "needs Tests/System/networkmanager.sh"))
    func aRealNetworkManager() throws {
        let env = Self.real
        let bus = try #require(env["NICROUTE_NM_BUS"])
        let root = try #require(env["NICROUTE_NM_ROOT"])
        let interface = try #require(env["NICROUTE_NM_INTERFACE"])
        let router = try #require(env["NICROUTE_NM_ROUTER"].flatMap { IPAddress($0) })
        let client = try #require(NetworkManagerBus(address: bus))
        defer { client.close() }
        let options = try #require(client.dhcp4Options(interface: interface))
        #expect(options["routers"] == router.description)
        #expect(LeaseParser.networkManagerDHCP4(options) == router)
        // What nmcli prints is what the bus says: the fixtures' form is NetworkManager's.
        if let nmcli = env["NICROUTE_NM_NMCLI"] {
            #expect(LeaseParser.nmcliDHCP4Options(try String(contentsOfFile: nmcli, encoding: .utf8)) == options)
        }
        // The collector over the container's file system: its lease file holds no router, the
        // bus does.
        let leases = (try? FileManager.default.contentsOfDirectory(atPath: root + "/var/lib/NetworkManager")) ?? []
        for lease in leases where lease.hasSuffix("-\(interface).lease") {
            let text = try String(contentsOfFile: root + "/var/lib/NetworkManager/" + lease, encoding: .utf8)
            #expect(LeaseParser.networkd(text) == nil, "\(lease): \(text)")
        }
        let index = try #require(env["NICROUTE_NM_IFINDEX"].flatMap { Int32($0) })
        let hints = GatewayHintCollector(root: root, networkDataPaths: [], networkManagerBus: bus).hints(
            for: [Link(index: index, name: interface, flags: [.up])])
        #expect(hints[index] == [GatewayHint(gateway: router, source: .networkManager)])
    }
}
