import NicrouteCore

/// The state directory: the NIC slot table, so table ids survive re-plug and reboot.
public struct StateStore: Sendable {
    public static let defaultDirectory = "/var/lib/nicroute"
    public var directory: String
    public init(directory: String?) { self.directory = directory ?? Self.defaultDirectory }

    var slotsPath: String { directory + "/slots" }

    /// The persisted slots; empty when there are none yet.
    public func loadSlots() -> SlotTable {
        Files.readText(slotsPath).map(SlotTable.init(parsing:)) ?? SlotTable()
    }

    /// Persists `slots` atomically.
    public func save(_ slots: SlotTable) throws(FileError) {
        try Files.makeDirectories(directory)
        try Files.writeAtomically(
            "# nicroute NIC slots: MAC SLOT (table = first table + slot). Managed by nicrouted.\n"
                + slots.serialized(), to: slotsPath)
    }
}
