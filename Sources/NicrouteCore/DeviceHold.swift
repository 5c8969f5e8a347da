/// Why udev keeps nicroute away from a NIC that the configuration would manage: the per-NIC
/// opt-out an image writes as a udev rule (`ENV{NICROUTE_MANAGE}="0"`), or udev not having
/// finished with a new NIC yet. The daemon reads udev's database (I/O) and hands the planner
/// these values in `KernelSnapshot.deviceHolds`; nothing here reads a file.
public enum DeviceHold: Hashable, Sendable, CustomStringConvertible {
    /// `NICROUTE_MANAGE=` holds a value meaning no (the value, as udev has it).
    case optedOut(String)
    /// udev runs and has not processed the NIC yet: it may opt it out a few milliseconds later,
    /// so it gets nothing until udev is done (and announces it).
    case uninitialized

    /// udev's property that opts a NIC out.
    public static let property = "NICROUTE_MANAGE"

    public var description: String {
        switch self {
        case .optedOut(let value): "\(Self.property)=\(value) in udev's database"
        case .uninitialized: "udev has not finished with it yet"
        }
    }

    /// What a value of `NICROUTE_MANAGE=` means.
    public enum Value: Hashable, Sendable {
        /// 0, no, false, off (any case): not managed, whatever the configuration says.
        case no
        /// 1, yes, true, on: no effect; the configuration decides (it does not add a NIC that
        /// `Manage=` leaves out, nor one `Ignore=` names).
        case yes
        /// Anything else: ignored (the configuration decides), with a warning naming it.
        case invalid
    }

    /// Reads a value of `NICROUTE_MANAGE=` (case does not matter; nothing else is forgiven).
    public static func parse(_ value: String) -> Value {
        switch value.lowercased() {
        case "0", "no", "false", "off": .no
        case "1", "yes", "true", "on": .yes
        default: .invalid
        }
    }

    /// The hold for a NIC as udev describes it: `udevRuns` (its control socket exists),
    /// `initialized` (udev has processed the NIC: its database entry exists) and the value of
    /// `NICROUTE_MANAGE=` (nil: not set). Nil: no hold, the configuration decides.
    /// Where udev does not run (containers) nothing is held.
    public static func hold(udevRuns: Bool, initialized: Bool, value: String?) -> DeviceHold? {
        guard udevRuns else { return nil }
        guard initialized else { return .uninitialized }
        guard let value, parse(value) == .no else { return nil }
        return .optedOut(value)
    }
}
