import CSystemd

#if canImport(Glibc)
import Glibc
#endif

/// NetworkManager's DHCPv4 options for a device, read over D-Bus with libsystemd's sd-bus.
///
/// NetworkManager's default DHCP client keeps no router in its lease files (see
/// `LeaseParser.networkManagerDHCP4`); its documented D-Bus API publishes the lease's options:
/// `GetDeviceByIpIface(name)` on `/org/freedesktop/NetworkManager` gives the device object, its
/// `Dhcp4Config` property the `org.freedesktop.NetworkManager.DHCP4Config` object ("/" without
/// DHCP), whose `Options` property (`a{sv}`) holds the options as strings.
///
/// One connection per `open()`, closed by `close()`; every call waits at most `timeoutUsec`, so
/// a NetworkManager that hangs delays a pass by that much at most, never more. Any failure (no
/// bus, no NetworkManager on it, an unknown device, a reply of another shape) gives nil.
final class NetworkManagerBus {
    static let service = "org.freedesktop.NetworkManager"
    static let managerPath = "/org/freedesktop/NetworkManager"
    /// The reply time allowed for each call: NetworkManager answers these from memory.
    static let timeoutUsec: UInt64 = 250_000

    private var bus: OpaquePointer?

    /// Connects to the bus at `address` (a D-Bus address such as `unix:path=/run/x/bus`), or
    /// to the system bus when nil; nil when it cannot.
    init?(address: String? = nil) {
        var bus: OpaquePointer?
        if let address {
            guard sd_bus_new(&bus) >= 0 else { return nil }
            guard sd_bus_set_address(bus, address) >= 0, sd_bus_set_bus_client(bus, 1) >= 0,
                sd_bus_start(bus) >= 0
            else {
                sd_bus_flush_close_unref(bus)
                return nil
            }
        } else {
            guard sd_bus_open_system(&bus) >= 0 else { return nil }
        }
        self.bus = bus
        sd_bus_set_method_call_timeout(bus, Self.timeoutUsec)
    }

    deinit { close() }

    /// Closes the connection (idempotent).
    func close() {
        if let bus { sd_bus_flush_close_unref(bus) }
        bus = nil
    }

    /// The DHCPv4 options of the device named `interface`; nil when NetworkManager does not run
    /// it with DHCP or cannot be asked.
    func dhcp4Options(interface: String) -> [String: String]? {
        guard let device = deviceObject(interface),
            let config = objectProperty(device, interface: "\(Self.service).Device", name: "Dhcp4Config"),
            config != "/"
        else { return nil }
        return stringMap(config, interface: "\(Self.service).DHCP4Config", name: "Options")
    }

    /// `GetDeviceByIpIface(interface)`: the device's object path.
    private func deviceObject(_ interface: String) -> String? {
        guard let bus else { return nil }
        var call: OpaquePointer?
        guard
            sd_bus_message_new_method_call(
                bus, &call, Self.service, Self.managerPath, Self.service, "GetDeviceByIpIface") >= 0
        else { return nil }
        defer { sd_bus_message_unref(call) }
        let appended = interface.withCString { sd_bus_message_append_basic(call, CChar(UInt8(ascii: "s")), $0) }
        guard appended >= 0 else { return nil }
        var error = sd_bus_error()
        defer { sd_bus_error_free(&error) }
        var reply: OpaquePointer?
        guard sd_bus_call(bus, call, Self.timeoutUsec, &error, &reply) >= 0 else { return nil }
        defer { sd_bus_message_unref(reply) }
        return readString(reply, type: "o")
    }

    /// A property of type `o` (sd_bus_get_property leaves the reply inside its variant).
    private func objectProperty(_ path: String, interface: String, name: String) -> String? {
        guard let bus else { return nil }
        var error = sd_bus_error()
        defer { sd_bus_error_free(&error) }
        var reply: OpaquePointer?
        guard sd_bus_get_property(bus, Self.service, path, interface, name, &error, &reply, "o") >= 0 else {
            return nil
        }
        defer { sd_bus_message_unref(reply) }
        return readString(reply, type: "o")
    }

    /// A property of type `a{sv}` whose values are strings; entries of another type are skipped.
    private func stringMap(_ path: String, interface: String, name: String) -> [String: String]? {
        guard let bus else { return nil }
        var error = sd_bus_error()
        defer { sd_bus_error_free(&error) }
        var reply: OpaquePointer?
        guard sd_bus_get_property(bus, Self.service, path, interface, name, &error, &reply, "a{sv}") >= 0 else {
            return nil
        }
        defer { sd_bus_message_unref(reply) }
        guard sd_bus_message_enter_container(reply, CChar(UInt8(ascii: "a")), "{sv}") > 0 else { return nil }
        var out: [String: String] = [:]
        while sd_bus_message_enter_container(reply, CChar(UInt8(ascii: "e")), "sv") > 0 {
            guard let key = readString(reply, type: "s") else { return nil }
            if sd_bus_message_enter_container(reply, CChar(UInt8(ascii: "v")), "s") > 0 {
                guard let value = readString(reply, type: "s") else { return nil }
                out[key] = value
                guard sd_bus_message_exit_container(reply) >= 0 else { return nil }
            } else {
                guard sd_bus_message_skip(reply, "v") >= 0 else { return nil }
            }
            guard sd_bus_message_exit_container(reply) >= 0 else { return nil }
        }
        return out
    }

    /// The next basic value of `type` ("s" or "o") in `message`.
    private func readString(_ message: OpaquePointer?, type: Character) -> String? {
        var value: UnsafePointer<CChar>?
        let r = withUnsafeMutablePointer(to: &value) {
            sd_bus_message_read_basic(message, CChar(type.asciiValue ?? 0), $0)
        }
        guard r > 0, let value else { return nil }
        return String(cString: value)
    }
}
