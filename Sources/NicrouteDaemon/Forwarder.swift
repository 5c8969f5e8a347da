import CNftables
import Glibc
import Netlink
import NicrouteCore

/// What runs nft scripts: libnftables (`LibNftables`), or a fake in tests.
public protocol Nftables: AnyObject {
    /// Why the library cannot be used, or nil when it can.
    var libraryProblem: String? { get }
    /// Runs an nft script in one transaction (`nft -f -`). Returns nft's status (0: done; -2:
    /// no library), what it printed, and its error text.
    func run(_ script: String) -> (status: Int32, output: String, error: String)
}

/// libnftables, loaded at run time (Sources/CNftables says why dlopen).
public final class LibNftables: Nftables {
    public init() {}

    public var libraryProblem: String? {
        var why: UnsafePointer<CChar>?
        if nicroute_nft_load(&why) == 0 { return nil }
        return why.map { String(cString: $0) } ?? "libnftables.so.1 cannot be loaded"
    }

    public func run(_ script: String) -> (status: Int32, output: String, error: String) {
        var out: UnsafeMutablePointer<CChar>?
        var err: UnsafeMutablePointer<CChar>?
        let rc = nicroute_nft_run(script, &out, &err)
        defer {
            nicroute_nft_free(out)
            nicroute_nft_free(err)
        }
        return (rc, out.map { String(cString: $0) } ?? "", (err.map { String(cString: $0) } ?? "").trimmingSpaces)
    }
}

/// nftables and sysctl side of forwarded connections: keeps nicroute's table (`inet nicroute`)
/// as the plan wants it, and `src_valid_mark` on the marked NICs.
///
/// The decisions (list the table? replace it? which state follows?) are `ForwardTableKeeper`'s,
/// a value in the core; this class runs the nft calls they ask for (through `Nftables`), the
/// sysctl writes, and keeps the records a restart and a flush need in the state directory:
/// the installed table (for adoption) and the NICs whose `src_valid_mark` nicroute set (for
/// flush to put back). A record that cannot be written (a full or read-only disk) stays in
/// memory, is named in `fileProblems`, and is written again at the next pass: never dropped.
///
/// Healing: the daemon runs a pass whenever nftables announces a change (`NftablesWatch`), and
/// the pass lists the table and replaces it when it differs from what was installed, so a
/// `nft flush ruleset` is undone within milliseconds.
///
/// Not thread-safe: used by the reconciler only.
public final class Forwarder {
    /// The table's decisions and memory.
    public private(set) var keeper: ForwardTableKeeper
    /// What the last pass found or did, for `status`.
    public var state: ForwardingState { keeper.state }
    /// NICs whose `src_valid_mark` could not be set (a read-only /proc/sys, e.g. under
    /// `ProtectKernelTunables=` without the unit's `ReadWritePaths=`): the preflight names them.
    public private(set) var sourceValidMarkFailures: [String] = []
    /// Why they could not, per NIC (`Read-only file system`): the journal and `status` say it.
    public private(set) var sourceValidMarkErrors: [String: String] = [:]
    /// What `remove()` could not put back (`net.ipv4.conf.eth1.src_valid_mark=0: ...`); the
    /// record keeps those NICs for the next flush.
    public private(set) var restoreFailures: [String] = []
    /// Records that could not be written, kept in memory and written again at the next pass;
    /// empty when every record is on disk.
    public var fileProblems: [FileError] { pending.keys.sorted().compactMap { pending[$0] ?? nil } }
    /// True while nftables changes are announced to the daemon (`NftablesWatch` works): then
    /// a pass lists the table only when `nftablesChanged()` was called since the last listing.
    public var changesAnnounced: Bool {
        get { keeper.changesAnnounced }
        set { keeper.changesAnnounced = newValue }
    }
    /// The NICs whose `src_valid_mark` nicroute set (the record's content, kept in memory).
    private var ownedMarks: Set<String>
    /// Records waiting to be written: path -> the last error (nil before the first try).
    private var pending: [String: FileError?] = [:]
    private let stateDirectory: String
    private let nftables: any Nftables
    /// A prefix for /proc paths (tests).
    private let root: String

    public init(stateDirectory: String, root: String = "", nftables: any Nftables = LibNftables()) {
        self.stateDirectory = stateDirectory
        self.root = root
        self.nftables = nftables
        // Adoption: what the previous run installed (its script and the kernel's listing of
        // the result). When the kernel still lists exactly that and the script is the same, a
        // restart leaves the table alone; otherwise it is replaced (still one transaction).
        var adopted: (script: String, listing: String)?
        if let text = Files.readText(stateDirectory + "/nftables"), let cut = text.firstRange(of: Self.separator) {
            adopted = (String(text[..<cut.lowerBound]), String(text[cut.upperBound...]))
        }
        keeper = ForwardTableKeeper(adopting: adopted)
        ownedMarks = Set(
            (Files.readText(stateDirectory + "/src_valid_mark") ?? "").split(separator: "\n").map(String.init)
                .filter { !$0.isEmpty })
    }

    var tableFile: String { stateDirectory + "/nftables" }
    private static let separator = "\n#---- kernel listing ----\n"

    /// Writes the records that are due (`pending`) from memory: the installed table and the
    /// `src_valid_mark` NICs; an empty record is removed. A failure stays pending with its
    /// error.
    private func writeRecords() {
        for path in pending.keys.sorted() {
            let text: String?
            if path == tableFile {
                text = keeper.installedScript.flatMap { script in
                    keeper.installedListing.map { script + Self.separator + $0 }
                }
            } else {
                text = ownedMarks.isEmpty ? nil : ownedMarks.sorted().map { $0 + "\n" }.joined()
            }
            do throws(FileError) {
                if let text {
                    try Files.makeDirectories(stateDirectory)
                    try Files.writeAtomically(text, to: path)
                } else if unlink(path) != 0 && errno != ENOENT {
                    throw FileError(path: path, operation: "unlink", errno: errno)
                }
                pending[path] = nil
            } catch {
                pending[path] = .some(error)
            }
        }
    }

    /// Marks a record as changed and writes it (and any other still pending).
    private func recordChanged(_ path: String) {
        if pending[path] == nil { pending[path] = .some(nil) }
        writeRecords()
    }

    /// Whether the configuration wants forwarded connections handled now: nil when it does,
    /// else why not (`ForwardedConnections=`, and the forwarding sysctls for `auto`).
    public func unwanted(_ configuration: Configuration) -> ForwardingState.Off? {
        ForwardTableKeeper.unwanted(
            configuration.forwardedConnections,
            ipv4Forwarding: (readInt("/proc/sys/net/ipv4/ip_forward") ?? 0) != 0,
            ipv6Forwarding: (readInt("/proc/sys/net/ipv6/conf/all/forwarding") ?? 0) != 0)
    }

    /// Whether the pass should plan the fwmark rules: wanted and nftables usable (recorded).
    public func decide(_ configuration: Configuration) -> Bool {
        keeper.decide(unwanted: unwanted(configuration), libraryProblem: nftables.libraryProblem)
    }

    /// What `decide` would answer, without recording it (`status`, `plan`).
    public func wouldHandle(_ configuration: Configuration) -> Bool {
        keeper.wouldHandle(unwanted: unwanted(configuration), libraryProblem: nftables.libraryProblem)
    }

    /// Brings the table (and `src_valid_mark`) to what `nics` needs; nil removes them. Writes
    /// the records still pending from an earlier pass first.
    /// - Returns: the changes made, as nft/sysctl commands (for the log); empty when in place.
    @discardableResult
    public func apply(_ nics: [ForwardedNIC]?, mask: UInt32) -> [String] {
        if !pending.isEmpty { writeRecords() }
        guard let nics else {
            // Not wanted. Look at nftables only when this or an earlier run installed the table:
            // a VM that does not forward never loads libnftables and pays nothing per pass.
            // (`flush` always looks.)
            guard keeper.installedScript != nil || Files.exists(tableFile) else {
                return restoreSourceValidMark()
            }
            return remove()
        }
        var done: [String] = []
        let script = ForwardRuleset.script(nics: nics, mask: mask)
        guard keeper.mustList(script) else { return setSourceValidMark(nics.map(\.name)) }
        let (rc, listing, _) = nftables.run(Self.listScript)
        if keeper.listed(rc == 0 ? listing : nil, wanting: script) {
            let (rc, _, error) = nftables.run(script)
            guard rc == 0 else {
                keeper.replaceFailed(error.isEmpty ? "status \(rc)" : error)
                return []
            }
            keeper.replaced(script, listing: nftables.run(Self.listScript).output)
            recordChanged(tableFile)
            done.append("nft: replace table inet nicroute (\(nics.count) NIC(s))")
        }
        done += setSourceValidMark(nics.map(\.name))
        return done
    }

    static let listScript = "list table \(ForwardRuleset.family) \(ForwardRuleset.table)\n"

    /// The nftables ruleset changed (`NftablesWatch`): the next pass lists the table again.
    public func nftablesChanged() { keeper.nftablesChanged() }

    /// The state the kernel shows now, without recording it (`status` in one-shot mode, where
    /// no pass keeps it current).
    public func observe(_ configuration: Configuration) -> ForwardingState {
        var keeper = self.keeper
        guard keeper.decide(unwanted: unwanted(configuration), libraryProblem: nftables.libraryProblem) else {
            return keeper.state
        }
        let (rc, listing, _) = nftables.run(Self.listScript)
        return keeper.observed(rc == 0 ? listing : nil)
    }

    /// Removes the table and puts `src_valid_mark` back (`flush`, `ForwardedConnections=no`).
    @discardableResult
    public func remove() -> [String] {
        var done: [String] = []
        if keeper.removed() || Files.exists(tableFile) { recordChanged(tableFile) }
        let (rc, _, _) = nftables.run(Self.listScript)
        if rc == 0 {
            let (rc, _, _) = nftables.run(ForwardRuleset.deleteScript)
            if rc == 0 { done.append("nft delete table inet nicroute") }
        }
        done += restoreSourceValidMark()
        sourceValidMarkFailures = []
        sourceValidMarkErrors = [:]
        return done
    }

    // MARK: - src_valid_mark
    //
    // Strict reverse-path filtering (rp_filter=1, RHEL's default) checks a forwarded request's
    // source by a lookup that ignores the packet mark unless `src_valid_mark` is 1; without it
    // the way back is the main table's default NIC and the request through the second NIC is
    // dropped before it reaches the container. The daemon sets it on the NICs it marks (it
    // changes nothing for unmarked packets), records which ones it changed in the state
    // directory, and puts them back to 0 on flush and when forwarded connections are turned
    // off: a setting, like a rule, that nicroute owns only when it made it.

    //
    // When the write fails (a container manager's read-only /proc/sys: systemd-nspawn without
    // a private network mounts it so, and systemd 257's ReadWritePaths= keeps a read-only source
    // read-only, where 252's made it writable), the NIC is named with the reason: a journal
    // warning once, a note on the NIC in `status`, the preflight finding under rp_filter=1.

    var markFile: String { stateDirectory + "/src_valid_mark" }

    /// Writes a sysctl; returns nil or the errno. A seam for tests (the real /proc/sys is the
    /// machine's own).
    var writeSysctl: (String, String) -> Int32? = Forwarder.write

    /// Sets `src_valid_mark=1` on the NICs in `names` where it is 0 and records the ones it
    /// changed. Equivalent to `sysctl net.ipv4.conf.NIC.src_valid_mark=1`.
    /// - Returns: the changes made, as sysctl commands.
    func setSourceValidMark(_ names: [String]) -> [String] {
        var changed: [String] = []
        var errors: [String: String] = [:]
        for name in names {
            let path = sysctlPath(name)
            let value: Int
            switch readSysctl(path) {
            case .success(let v): value = v
            case .failure(let e):
                errors[name] = "cannot read \(path): \(e)"
                continue
            }
            guard value == 0 else { continue }
            if let e = writeSysctl(root + path, "1\n") {
                errors[name] = "cannot write \(path): \(Self.describe(e))"
            } else {
                ownedMarks.insert(name)
                changed.append("sysctl net.ipv4.conf.\(name).src_valid_mark=1")
            }
        }
        sourceValidMarkFailures = errors.keys.sorted()
        sourceValidMarkErrors = errors
        if !changed.isEmpty { recordChanged(markFile) }
        return changed
    }

    /// What `status` says on a NIC whose `src_valid_mark` nicroute could not set, or nil.
    public func sourceValidMarkNote(_ name: String) -> String? {
        sourceValidMarkErrors[name].map {
            "src_valid_mark is 0 here and nicroute could not set it (\($0)): under strict reverse-path "
                + "filtering (rp_filter=1) forwarded requests arriving on \(name) are dropped; set "
                + "net.ipv4.conf.\(name).src_valid_mark=1 where /proc/sys is writable, or use rp_filter=2"
        }
    }

    /// Puts `src_valid_mark` back to 0 on the NICs the record names (those nicroute set). A NIC
    /// whose write fails stays in the record, for the next flush, and in `restoreFailures`.
    /// - Returns: the changes made, as sysctl commands.
    func restoreSourceValidMark() -> [String] {
        restoreFailures = []
        guard !ownedMarks.isEmpty else { return [] }
        var done: [String] = []
        var kept: Set<String> = []
        for name in ownedMarks.sorted() {
            let path = sysctlPath(name)
            switch readSysctl(path) {
            case .failure(.noSuchFile):
                continue  // the NIC is gone, and its setting with it
            case .failure(let e):
                kept.insert(name)
                restoreFailures.append("net.ipv4.conf.\(name).src_valid_mark=0: cannot read \(path): \(e)")
            case .success(let v) where v == 1:
                if let e = writeSysctl(root + path, "0\n") {
                    kept.insert(name)
                    restoreFailures.append("net.ipv4.conf.\(name).src_valid_mark=0: \(Self.describe(e))")
                } else {
                    done.append("sysctl net.ipv4.conf.\(name).src_valid_mark=0")
                }
            case .success:
                continue  // put back by someone else already
            }
        }
        ownedMarks = kept
        recordChanged(markFile)
        return done
    }

    private func sysctlPath(_ name: String) -> String { "/proc/sys/net/ipv4/conf/\(name)/src_valid_mark" }

    enum SysctlReadError: Error, CustomStringConvertible {
        case noSuchFile
        case failed(Int32)
        case notANumber
        var description: String {
            switch self {
            case .noSuchFile: return Forwarder.describe(ENOENT)
            case .failed(let e): return Forwarder.describe(e)
            case .notANumber: return "not a number"
            }
        }
    }

    private func readSysctl(_ path: String) -> Result<Int, SysctlReadError> {
        guard let bytes = Files.read(root + path, limit: 64) else {
            return .failure(errno == ENOENT || errno == ENOTDIR ? .noSuchFile : .failed(errno))
        }
        guard let v = Int(String(decoding: bytes, as: UTF8.self).trimmingSpaces) else { return .failure(.notANumber) }
        return .success(v)
    }

    static func describe(_ e: Int32) -> String { String(cString: strerror(e)) }

    static func write(_ path: String, _ text: String) -> Int32? {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let n = retryingInterrupts { bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } }
        if n == bytes.count { return nil }
        return n < 0 ? errno : EIO
    }

    private func readInt(_ path: String) -> Int? {
        Files.readText(root + path).flatMap { Int($0.trimmingSpaces) }
    }
}
