import CSystemd
import Logging
import NicrouteCore

#if canImport(Glibc)
import Glibc
#endif

/// udev's word on each NIC: `NICROUTE_MANAGE=` from its database, and whether it has processed
/// the NIC yet (`DeviceHold`). Read through libsystemd's sd-device (`/run/udev/data/n<ifindex>`
/// and `/sys/class/net`), not by parsing the database's files here. Only the calls of
/// LIBSYSTEMD_240 are used (`sd_device_new_from_device_id`: `sd_device_new_from_ifindex` is
/// LIBSYSTEMD_249, above the floor of 247).
///
/// Where udev does not run (no `/run/udev/control`: containers) nothing is read and nothing is
/// held. While the daemon hears udev's events (`UdevMonitor`, `monitored`), what was read is
/// kept until an event for the NIC (`heard`), and a NIC udev has not processed yet is held: its
/// event brings the pass that manages it. Without them every pass reads anew, and such a NIC is
/// not held (nothing would say when udev is done): the configuration decides at once.
/// Not thread-safe: the loop's thread only.
public final class UdevDevices {
    /// udev's control socket, there while udev runs.
    public let controlPath: String
    /// True while udev's events are heard (set by the daemon once `UdevMonitor` started).
    public var monitored = false
    private let logger: Logger
    /// What the last reads found per link index (while monitored).
    private var known: [Int32: DeviceHold?] = [:]
    /// The invalid value each NIC was warned about (one warning per NIC and value).
    private var warned: [Int32: String] = [:]

    public init(logger: Logger, controlPath: String = "/run/udev/control") {
        self.logger = logger
        self.controlPath = controlPath
    }

    /// The holds of `links` (those the configuration would manage), by index.
    public func holds(for links: [Link]) -> [Int32: DeviceHold] {
        guard access(controlPath, F_OK) == 0 else {
            known = [:]
            return [:]
        }
        var out: [Int32: DeviceHold] = [:]
        var seen: [Int32: DeviceHold?] = [:]
        for link in links {
            let hold: DeviceHold?
            if monitored, let k = known[link.index] {
                hold = k
            } else {
                hold = read(link)
            }
            seen[link.index] = hold
            if let hold { out[link.index] = hold }
        }
        known = monitored ? seen : [:]
        warned = warned.filter { seen[$0.key] != nil }
        return out
    }

    /// udev announced an event for the link with `index`: forgets what was read for it. True
    /// when a pass looked at it (the pass that follows reads it again); false for a link no pass
    /// considered (a veth the configuration leaves alone).
    public func heard(index: Int32) -> Bool {
        known.removeValue(forKey: index) != nil
    }

    /// Forgets what was read: the next pass reads udev's database again (a reload).
    public func forget() { known = [:] }

    private func read(_ link: Link) -> DeviceHold? {
        var device: OpaquePointer?
        let rc = sd_device_new_from_device_id(&device, "n\(link.index)")
        guard rc >= 0, let device else {
            // Gone meanwhile, or /sys is not this network namespace's: udev has no word on it.
            logger.debug("udev: no device for \(link.name) (ifindex \(link.index)): \(String(cString: strerror(-rc)))")
            return nil
        }
        defer { sd_device_unref(device) }
        let initialized = sd_device_get_is_initialized(device) > 0
        var raw: UnsafePointer<CChar>?
        let value =
            sd_device_get_property_value(device, DeviceHold.property, &raw) >= 0 ? raw.map { String(cString: $0) } : nil
        if initialized, let value, DeviceHold.parse(value) == .invalid, warned[link.index] != value {
            warned[link.index] = value
            logger.warning(
                "udev: \(link.name): \(DeviceHold.property)=\(value) is neither 0/no/false/off nor 1/yes/true/on: ignored, the configuration decides"
            )
        }
        return DeviceHold.hold(udevRuns: true, initialized: initialized || !monitored, value: value)
    }
}

/// udev's events for network devices as a source of the daemon's loop (sd-device's monitor):
/// `handler` gets the link index of each device udev finished processing (added, changed,
/// renamed, removed).
public final class UdevMonitor {
    private let monitor: OpaquePointer
    private let box: Box

    private final class Box {
        let handler: (Int32) -> Void
        init(_ handler: @escaping (Int32) -> Void) { self.handler = handler }
    }

    /// - Throws: `EventLoopError` when the monitor cannot be opened or attached.
    public init(loop: EventLoop, handler: @escaping (Int32) -> Void) throws {
        func check(_ operation: String, _ rc: Int32) throws {
            if rc < 0 { throw EventLoopError(operation: operation, errno: -rc) }
        }
        var m: OpaquePointer?
        try check("sd_device_monitor_new", sd_device_monitor_new(&m))
        guard let m else { throw EventLoopError(operation: "sd_device_monitor_new", errno: ENOMEM) }
        monitor = m
        box = Box(handler)
        do {
            try check(
                "sd_device_monitor_filter_add_match_subsystem_devtype(net)",
                sd_device_monitor_filter_add_match_subsystem_devtype(m, "net", nil))
            try check("sd_device_monitor_attach_event", sd_device_monitor_attach_event(m, loop.event))
            try check(
                "sd_device_monitor_start",
                sd_device_monitor_start(
                    m,
                    { _, device, userdata in
                        var index: Int32 = 0
                        if let device, sd_device_get_ifindex(device, &index) >= 0 {
                            Unmanaged<Box>.fromOpaque(userdata!).takeUnretainedValue().handler(index)
                        }
                        return 0
                    }, Unmanaged.passUnretained(box).toOpaque()))
        } catch {
            sd_device_monitor_unref(m)
            throw error
        }
    }

    deinit {
        sd_device_monitor_stop(monitor)
        sd_device_monitor_unref(monitor)
    }
}
