import CNftables
import Glibc
import NicrouteCore

/// nftables and sysctl side of forwarded connections: keeps nicroute's table (`inet nicroute`)
/// as the plan wants it, and `src_valid_mark` on the marked NICs.
///
/// Healing: every reconcile pass compares the kernel's listing of the table with the one taken
/// right after nicroute installed it (one small netlink dump through libnftables) and replaces
/// the table when they differ; the daemon runs a pass whenever nftables announces a change
/// (`NftablesWatch`), so a `nft flush ruleset` is undone within milliseconds.
///
/// Not thread-safe: used by the reconciler only.
public final class Forwarder {
    /// What the last pass found or did, for `status`.
    public enum State: Hashable, Sendable {
        /// Not wanted (configuration or `auto` without forwarding); nothing installed.
        case off(String)
        /// The table is in place for these NICs.
        case installed
        /// Wanted but impossible: libnftables or the kernel's nf_tables is missing, or the
        /// transaction failed.
        case unavailable(String)
    }

    public private(set) var state: State = .off("not checked yet")
    /// NICs whose `src_valid_mark` could not be set (a read-only /proc/sys, e.g. under
    /// `ProtectKernelTunables=` without the unit's `ReadWritePaths=`): the preflight names them.
    public private(set) var sourceValidMarkFailures: [String] = []
    /// Why they could not, per NIC (`Read-only file system`): the journal and `status` say it.
    public private(set) var sourceValidMarkErrors: [String: String] = [:]
    /// What `remove()` could not put back (`net.ipv4.conf.eth1.src_valid_mark=0: ...`); the
    /// record keeps those NICs for the next flush.
    public private(set) var restoreFailures: [String] = []
    /// The kernel's listing of the table right after nicroute installed it.
    private var installedListing: String?
    /// The script that produced it (another set of NICs or another mask means a new table).
    private var installedScript: String?
    /// True while nftables changes are announced to the daemon (`NftablesWatch` works): then
    /// a pass lists the table only when `nftablesChanged()` was called since the last listing.
    public var changesAnnounced = false
    /// Whether the kernel's table may differ from the last listing (an announced change, or
    /// nothing listed yet).
    private var listingStale = true
    private let stateDirectory: String
    /// A prefix for /proc paths (tests).
    private let root: String

    public init(stateDirectory: String, root: String = "") {
        self.stateDirectory = stateDirectory
        self.root = root
        // Adoption: what the previous run installed (its script and the kernel's listing of
        // the result). When the kernel still lists exactly that and the script is the same, a
        // restart leaves the table alone; otherwise it is replaced (still one transaction).
        if let text = Files.readText(tableFile), let cut = text.firstRange(of: Self.separator) {
            installedScript = String(text[..<cut.lowerBound])
            installedListing = String(text[cut.upperBound...])
        }
    }

    private var tableFile: String { stateDirectory + "/nftables" }
    private static let separator = "\n#---- kernel listing ----\n"

    private func saveInstalled() {
        guard let script = installedScript, let listing = installedListing else {
            unlink(tableFile)
            return
        }
        try? Files.makeDirectories(stateDirectory)
        try? Files.writeAtomically(script + Self.separator + listing, to: tableFile)
    }

    /// Runs an nft script. Returns (status, output, error text); status -2: no library.
    public static func run(_ script: String) -> (Int32, String, String) {
        var out: UnsafeMutablePointer<CChar>?
        var err: UnsafeMutablePointer<CChar>?
        let rc = nicroute_nft_run(script, &out, &err)
        defer {
            nicroute_nft_free(out)
            nicroute_nft_free(err)
        }
        let o = out.map { String(cString: $0) } ?? ""
        let e = err.map { String(cString: $0) } ?? ""
        return (rc, o, e.trimmingSpaces)
    }

    /// Why libnftables cannot be used, or nil when it can.
    public static var libraryProblem: String? {
        var why: UnsafePointer<CChar>?
        if nicroute_nft_load(&why) == 0 { return nil }
        return why.map { String(cString: $0) } ?? "libnftables.so.1 cannot be loaded"
    }

    /// Whether the configuration wants forwarded connections handled now: `yes`, or `auto` and
    /// the VM forwards IPv4 or IPv6. Returns the decision and, when off, why.
    public func wanted(_ configuration: Configuration) -> (Bool, String) {
        switch configuration.forwardedConnections {
        case .yes: return (true, "ForwardedConnections=yes")
        case .no: return (false, "ForwardedConnections=no")
        case .auto:
            let v4 = readInt("/proc/sys/net/ipv4/ip_forward") ?? 0
            let v6 = readInt("/proc/sys/net/ipv6/conf/all/forwarding") ?? 0
            if v4 != 0 || v6 != 0 { return (true, "ForwardedConnections=auto and the VM forwards packets") }
            return (false, "ForwardedConnections=auto and the VM does not forward packets (ip_forward=0)")
        }
    }

    /// Whether the pass should plan the fwmark rules: wanted and nftables usable.
    public func decide(_ configuration: Configuration) -> Bool {
        let (want, why) = wanted(configuration)
        guard want else {
            state = .off(why)
            return false
        }
        if let problem = Self.libraryProblem {
            state = .unavailable("libnftables is not available (\(problem)): forwarded replies are not covered")
            return false
        }
        if case .unavailable(let why) = state, why.hasPrefix("libnftables") { state = .off("") }
        return true
    }

    /// Brings the table (and `src_valid_mark`) to what `nics` needs; nil removes them.
    /// - Returns: the changes made, as nft/sysctl commands (for the log); empty when in place.
    @discardableResult
    public func apply(_ nics: [ForwardedNIC]?, mask: UInt32) -> [String] {
        guard let nics else {
            // Not wanted. Look at nftables only when this or an earlier run installed the table:
            // a VM that does not forward never loads libnftables and pays nothing per pass.
            // (`flush` always looks.)
            guard installedScript != nil || Files.exists(tableFile) else {
                return restoreSourceValidMark()
            }
            return remove()
        }
        var done: [String] = []
        let script = ForwardRuleset.script(nics: nics, mask: mask)
        // Installed, the same script, and no nftables change announced since the last look:
        // the table is as listed then, and listing it again (libnftables builds the whole
        // ruleset cache: the largest cost of a pass on a forwarding VM) would change nothing.
        // At startup or adoption (nothing listed yet), after a change, or without the watch, it
        // is listed as before.
        if changesAnnounced, !listingStale, case .installed = state, installedListing != nil,
            script == installedScript
        {
            return setSourceValidMark(nics.map(\.name))
        }
        // What is read now is current until the next announced change (one that comes during
        // this pass marks it stale again and brings another pass).
        listingStale = false
        let (rc, listing, _) = Self.run("list table \(ForwardRuleset.family) \(ForwardRuleset.table)\n")
        if rc != 0 || installedListing == nil || listing != installedListing || script != installedScript {
            let (rc, _, error) = Self.run(script)
            if rc != 0 {
                installedListing = nil
                state = .unavailable(
                    "cannot install nftables table inet nicroute (\(error.isEmpty ? "status \(rc)" : error)): forwarded replies are not covered"
                )
                return []
            }
            installedListing = Self.run("list table \(ForwardRuleset.family) \(ForwardRuleset.table)\n").1
            installedScript = script
            saveInstalled()
            done.append("nft: replace table inet nicroute (\(nics.count) NIC(s))")
        }
        state = .installed
        done += setSourceValidMark(nics.map(\.name))
        return done
    }

    /// The nftables ruleset changed (`NftablesWatch`): the next pass lists the table again.
    public func nftablesChanged() { listingStale = true }

    /// Looks at the kernel: is the table there? (For `status`, between passes and in one-shot
    /// mode.)
    public func observe() {
        let (rc, listing, _) = Self.run("list table \(ForwardRuleset.family) \(ForwardRuleset.table)\n")
        if rc == 0 && (installedListing == nil || listing == installedListing) {
            state = .installed
        } else if case .unavailable = state {
            return
        } else {
            state = .unavailable("nftables table inet nicroute is not in place: forwarded replies are not covered")
        }
    }

    /// Removes the table and puts `src_valid_mark` back (`flush`, `ForwardedConnections=no`).
    @discardableResult
    public func remove() -> [String] {
        var done: [String] = []
        let had = installedScript != nil
        listingStale = true
        installedListing = nil
        installedScript = nil
        if had || Files.exists(tableFile) { saveInstalled() }
        let (rc, _, _) = Self.run("list table \(ForwardRuleset.family) \(ForwardRuleset.table)\n")
        if rc == 0 {
            let (rc, _, _) = Self.run(ForwardRuleset.deleteScript)
            if rc == 0 { done.append("nft delete table inet nicroute") }
        }
        done += restoreSourceValidMark()
        sourceValidMarkFailures = []
        sourceValidMarkErrors = [:]
        if case .installed = state { state = .off("removed") }
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
        var owned = Set(ownedSourceValidMark())
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
                owned.insert(name)
                changed.append("sysctl net.ipv4.conf.\(name).src_valid_mark=1")
            }
        }
        sourceValidMarkFailures = errors.keys.sorted()
        sourceValidMarkErrors = errors
        if !changed.isEmpty {
            try? Files.makeDirectories(stateDirectory)
            try? Files.writeAtomically(owned.sorted().map { $0 + "\n" }.joined(), to: markFile)
        }
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

    private func ownedSourceValidMark() -> [String] {
        (Files.readText(markFile) ?? "").split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    /// Puts `src_valid_mark` back to 0 on the NICs the record names (those nicroute set). A NIC
    /// whose write fails stays in the record, for the next flush, and in `restoreFailures`.
    /// - Returns: the changes made, as sysctl commands.
    func restoreSourceValidMark() -> [String] {
        restoreFailures = []
        let owned = ownedSourceValidMark()
        guard !owned.isEmpty else { return [] }
        var done: [String] = []
        var kept: [String] = []
        for name in owned {
            let path = sysctlPath(name)
            switch readSysctl(path) {
            case .failure(.noSuchFile):
                continue  // the NIC is gone, and its setting with it
            case .failure(let e):
                kept.append(name)
                restoreFailures.append("net.ipv4.conf.\(name).src_valid_mark=0: cannot read \(path): \(e)")
            case .success(let v) where v == 1:
                if let e = writeSysctl(root + path, "0\n") {
                    kept.append(name)
                    restoreFailures.append("net.ipv4.conf.\(name).src_valid_mark=0: \(Self.describe(e))")
                } else {
                    done.append("sysctl net.ipv4.conf.\(name).src_valid_mark=0")
                }
            case .success:
                continue  // put back by someone else already
            }
        }
        if kept.isEmpty {
            unlink(markFile)
        } else {
            try? Files.writeAtomically(kept.map { $0 + "\n" }.joined(), to: markFile)
        }
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
        while true {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n == bytes.count { return nil }
            if n < 0 && errno == EINTR { continue }
            return n < 0 ? errno : EIO
        }
    }

    private func readInt(_ path: String) -> Int? {
        Files.readText(root + path).flatMap { Int($0.trimmingSpaces) }
    }
}
