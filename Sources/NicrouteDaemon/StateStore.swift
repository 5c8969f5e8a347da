import NicrouteCore

#if canImport(Glibc)
import Glibc
#endif

/// The state directory: the NIC slot table, so table ids survive re-plug and reboot.
public struct StateStore: Sendable {
    public static let defaultDirectory = "/var/lib/nicroute"
    public var directory: String
    public init(directory: String?) { self.directory = directory ?? Self.defaultDirectory }

    var slotsPath: String { directory + "/slots" }

    /// The persisted slots; empty when there are none yet.
    public func loadSlots() -> SlotTable { loadSlots(problem: { _ in }) }

    /// The persisted slots; `problem` hears why what is there could not be read whole (not a
    /// file, unreadable, or lines that are not slots): those NICs get new slots, and the file is
    /// written anew at the first pass.
    public func loadSlots(problem: (String) -> Void) -> SlotTable {
        var st = stat()
        guard stat(slotsPath, &st) == 0 else {
            if errno != ENOENT { problem("cannot read \(slotsPath): \(String(cString: strerror(errno)))") }
            return SlotTable()
        }
        guard (st.st_mode & S_IFMT) == S_IFREG, let bytes = Files.read(slotsPath) else {
            problem(
                "cannot read \(slotsPath): \((st.st_mode & S_IFMT) == S_IFDIR ? "a directory" : "not a readable file")")
            return SlotTable()
        }
        let parsed = SlotTable.parse(String(decoding: bytes, as: UTF8.self))
        if parsed.unreadable > 0 {
            problem(
                "\(slotsPath): \(parsed.unreadable) line(s) are not NIC slots and were ignored "
                    + "(first: \(parsed.first.map { $0.debugDescription } ?? "")); NICs without a slot get new tables")
        }
        return parsed.table
    }

    /// Persists `slots` atomically.
    public func save(_ slots: SlotTable) throws(FileError) {
        try Files.makeDirectories(directory)
        try Files.writeAtomically(
            "# nicroute NIC slots: MAC SLOT (table = first table + slot). Managed by nicrouted.\n"
                + slots.serialized(), to: slotsPath)
    }
}
