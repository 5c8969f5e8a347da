import CSystemd
import NicrouteCore

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
    /// True once a call had no answer within `timeoutUsec` (NetworkManager hangs): the caller
    /// asks no more in this pass (`NetworkManagerSilence`).
    private(set) var timedOut = false

    /// `result` of an sd-bus call, `timedOut` noted; true when it succeeded.
    private func succeeded(_ result: Int32) -> Bool {
        if result == -ETIMEDOUT { timedOut = true }
        return result >= 0
    }

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
        guard succeeded(sd_bus_call(bus, call, Self.timeoutUsec, &error, &reply)) else { return nil }
        defer { sd_bus_message_unref(reply) }
        return readString(reply, type: "o")
    }

    /// A property of type `o` (sd_bus_get_property leaves the reply inside its variant).
    private func objectProperty(_ path: String, interface: String, name: String) -> String? {
        guard let bus else { return nil }
        var error = sd_bus_error()
        defer { sd_bus_error_free(&error) }
        var reply: OpaquePointer?
        guard succeeded(sd_bus_get_property(bus, Self.service, path, interface, name, &error, &reply, "o")) else {
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
        guard succeeded(sd_bus_get_property(bus, Self.service, path, interface, name, &error, &reply, "a{sv}"))
        else {
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

/// When NetworkManager was last found not answering on the bus, kept between passes by the
/// caller: a NetworkManager that hangs costs one call's timeout (250 ms), then is not asked
/// again for 2, 4, 8 ... 60 s, and each pass meanwhile knows which NICs went without its lease.
public final class NetworkManagerSilence {
    /// Until when (monotonic seconds) the bus is not asked; nil while NetworkManager answers.
    private(set) var quietUntil: Double?
    private var backoff = Backoff(initial: 2, maximum: 60)
    /// The NICs whose lease the last pass could not ask for, by name.
    public private(set) var unasked: [String] = []

    public init() {}

    /// Whether the bus may be asked at `now`.
    func mayAsk(now: Double) -> Bool { quietUntil.map { now >= $0 } ?? true }

    /// The outcome of a pass's questions: `timedOut` when a call had no answer; `unasked`, the
    /// NICs that needed the bus and went without it (the one that timed out included).
    func record(timedOut: Bool, unasked: [String], now: Double) {
        self.unasked = unasked
        if timedOut {
            quietUntil = now + backoff.next()
        } else if quietUntil.map({ now >= $0 }) ?? true, unasked.isEmpty {
            quietUntil = nil
            backoff.reset()
        }
    }

    /// Why the NICs in `unasked` have no NetworkManager lease, for `status`; nil when none.
    public var note: String? {
        guard !unasked.isEmpty else { return nil }
        return
            "NetworkManager did not answer on the system bus within \(NetworkManagerBus.timeoutUsec / 1000) ms: its DHCP lease is not known (asked again after a back-off of 2 to 60 s)"
    }
}
