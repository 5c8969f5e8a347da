/// What reconcile passes say in the log, and when they ask to be run again: the reconciler's
/// log de-duplication and its two back-offs, as a value (the daemon's other decisions are in
/// `DaemonMachine`).
///
/// The reconciler reports what a pass found (changes the kernel refused, objects left alone,
/// forwarded connections that cannot be handled, files it could not write, gateway hint files
/// it could not read, kernel objects it could not decode); the logbook answers with the lines to
/// log and the time of the next try. Each problem is logged once at its level while it lasts
/// (a change refused on every pass would otherwise log a line a pass), again at debug when it
/// recurs where that helps, and afresh once it went away and came back.
///
/// Pure: no clock (time comes in as `now`), no I/O.
public struct PassLogbook: Sendable {
    /// One line to log.
    public struct Entry: Equatable, Sendable {
        public var level: DaemonMachine.LogLevel
        public var message: String
        public var metadata: [String: String]

        public init(_ level: DaemonMachine.LogLevel, _ message: String, metadata: [String: String] = [:]) {
            self.level = level
            self.message = message
            self.metadata = metadata
        }
    }

    /// A change the kernel refused.
    public struct Failure: Equatable, Sendable {
        /// What the change is about (`Change.objectIdentity`), whatever the error.
        public var object: String
        public var error: String
        /// The change as an `ip` command.
        public var command: String

        public init(object: String, error: String, command: String) {
            self.object = object
            self.error = error
            self.command = command
        }
    }

    /// A NIC whose `src_valid_mark` could not be set.
    public struct SourceValidMarkFailure: Equatable, Sendable {
        public var link: String
        public var error: String
        /// What it means, as `status` says it.
        public var note: String

        public init(link: String, error: String, note: String) {
            self.link = link
            self.error = error
            self.note = note
        }
    }

    /// A file of the state directory that could not be written.
    public struct UnwrittenFile: Equatable, Sendable {
        public var errno: Int32
        /// `strerror(errno)`.
        public var reason: String
        /// The file's name (not its temporary name).
        public var file: String

        public init(errno: Int32, reason: String, file: String) {
            self.errno = errno
            self.reason = reason
            self.file = file
        }
    }

    /// An object another tool keeps deleting, whose re-install is held back from this pass on.
    public struct HeldBack: Equatable, Sendable {
        public var command: String
        public var reinstalls: Int
        /// Seconds until it is tried again.
        public var retryIn: Int

        public init(command: String, reinstalls: Int, retryIn: Int) {
            self.command = command
            self.reinstalls = reinstalls
            self.retryIn = retryIn
        }
    }

    /// What a pass found after its changes, besides the changes refused.
    public struct Outcome: Equatable, Sendable {
        /// Objects left alone because another tool's objects stand in their way.
        public var conflicts: [String]
        /// Why forwarded connections cannot be handled at all, if so.
        public var forwardingUnavailable: String?
        public var sourceValidMarkFailures: [SourceValidMarkFailure]
        /// The state directory's files kept in memory because they could not be written.
        public var unwrittenFiles: [UnwrittenFile]

        public init(
            conflicts: [String] = [], forwardingUnavailable: String? = nil,
            sourceValidMarkFailures: [SourceValidMarkFailure] = [], unwrittenFiles: [UnwrittenFile] = []
        ) {
            self.conflicts = conflicts
            self.forwardingUnavailable = forwardingUnavailable
            self.sourceValidMarkFailures = sourceValidMarkFailures
            self.unwrittenFiles = unwrittenFiles
        }
    }

    /// The retry delay while some changes keep failing.
    public static let failureRetry = Backoff(initial: 2, maximum: 60)
    /// The retry delay while files of the state directory cannot be written.
    public static let stateRetry = Backoff(initial: 2, maximum: 60)

    /// The state directory, as the warnings name it.
    public let stateDirectory: String
    /// Failures already logged at error or warning level, by object and error.
    private(set) var loggedFailures: Set<String> = []
    /// Those of the pass in progress.
    private var failing: Set<String> = []
    private(set) var loggedConflicts: Set<String> = []
    /// The causes (errno) of unwritable state files already logged.
    private(set) var loggedStateCauses: Set<Int32> = []
    private var failureBackoff = Self.failureRetry
    private var stateBackoff = Self.stateRetry
    private var loggedSourceProblems: Set<String> = []
    private var loggedUndecodable: (count: Int, reason: String?) = (0, nil)

    public init(stateDirectory: String) {
        self.stateDirectory = stateDirectory
    }

    /// The warning for re-installs held back in this pass: one line for all of them (a tool that
    /// flushes every rule would otherwise cause one line per rule at each step); nil for none.
    public static func heldBack(_ objects: [HeldBack]) -> Entry? {
        guard let first = objects.first else { return nil }
        let what = objects.count == 1 ? "object" : "\(objects.count) objects"
        var metadata = [
            "object": first.command, "reinstalls": "\(objects.map(\.reinstalls).max() ?? first.reinstalls)",
            "retry_in_s": "\(objects.map(\.retryIn).min() ?? first.retryIn)",
        ]
        if objects.count > 1 { metadata["objects"] = "\(objects.count)" }
        return Entry(.warning, "another tool keeps deleting nicroute's \(what); backing off", metadata: metadata)
    }

    /// The lines for the changes the kernel refused in this pass (the first of a pass's calls):
    /// an error the first time, debug while it recurs.
    public mutating func changesFailed(_ failures: [Failure]) -> [Entry] {
        failing = []
        return failures.map { failure in
            let key = "\(failure.object) \(failure.error)"
            failing.insert(key)
            let metadata = ["command": failure.command]
            return loggedFailures.insert(key).inserted
                ? Entry(.error, "change failed: \(failure.error)", metadata: metadata)
                : Entry(.debug, "change failed again: \(failure.error)", metadata: metadata)
        }
    }

    /// The lines for the rest of the pass, and when it should run again because something
    /// failed (2, 4, 8 ... 60 s while changes keep failing or files cannot be written; nil when
    /// nothing did).
    /// - Parameter changesFailed: whether `changesFailed` had any failure for this pass.
    public mutating func review(
        _ outcome: Outcome, changesFailed: Bool, now: Double
    ) -> (
        entries: [Entry], retryAt: Double?
    ) {
        var entries: [Entry] = []
        if let why = outcome.forwardingUnavailable {
            let key = "forward \(why)"
            failing.insert(key)
            if loggedFailures.insert(key).inserted { entries.append(Entry(.error, "forwarded connections: \(why)")) }
        }
        // Again only after it was set in between (or failed for another reason).
        for failure in outcome.sourceValidMarkFailures {
            let key = "src_valid_mark \(failure.link) \(failure.error)"
            failing.insert(key)
            if loggedFailures.insert(key).inserted {
                entries.append(
                    Entry(
                        .warning, "forwarded connections: \(failure.link): \(failure.note)",
                        metadata: ["link.name": failure.link, "action": "forward"]))
            }
        }
        loggedFailures.formIntersection(failing)
        failing = []
        for conflict in outcome.conflicts where loggedConflicts.insert(conflict).inserted {
            entries.append(Entry(.warning, "left alone: \(conflict)"))
        }
        loggedConflicts.formIntersection(outcome.conflicts)
        entries += stateFiles(outcome.unwrittenFiles)

        var deadlines: [Double] = []
        if changesFailed { deadlines.append(now + failureBackoff.next()) } else { failureBackoff.reset() }
        if outcome.unwrittenFiles.isEmpty {
            stateBackoff.reset()
        } else {
            deadlines.append(now + stateBackoff.next())
        }
        return (entries, deadlines.min())
    }

    /// One warning per cause (errno) while it lasts, naming the files kept in memory; a notice
    /// once all are written again.
    private mutating func stateFiles(_ unwritten: [UnwrittenFile]) -> [Entry] {
        var entries: [Entry] = []
        let byCause = Dictionary(grouping: unwritten, by: \.errno)
        for (cause, files) in byCause.sorted(by: { $0.key < $1.key }) where !loggedStateCauses.contains(cause) {
            let names = files.map(\.file)
            entries.append(
                Entry(
                    .warning,
                    "cannot write in the state directory \(stateDirectory): \(files[0].reason); \(names.joined(separator: ", ")) kept in memory, written again as soon as it can be",
                    metadata: ["errno": "\(cause)", "files": names.joined(separator: ",")]))
        }
        if unwritten.isEmpty && !loggedStateCauses.isEmpty {
            entries.append(Entry(.notice, "state directory \(stateDirectory): every file written again"))
        }
        loggedStateCauses = Set(byCause.keys)
        return entries
    }

    /// The lines for the gateway sources a pass could not use (a network data file it ignores,
    /// a NetworkManager that does not answer): each once while it lasts, not on every pass.
    public mutating func sourceProblems(_ problems: [String]) -> [Entry] {
        defer { loggedSourceProblems = Set(problems) }
        return problems.filter { !loggedSourceProblems.contains($0) }.map { Entry(.warning, "gateway hints: \($0)") }
    }

    /// The line for kernel objects the client skipped because it could not decode them, given
    /// its running count and last reason: a warning when the reason is new, debug when the same
    /// one recurs (a route nicroute cannot read is dumped on every pass), nil when none is new.
    public mutating func undecodable(count: Int, reason: String?) -> Entry? {
        guard count > loggedUndecodable.count else { return nil }
        defer { loggedUndecodable = (count, reason) }
        let metadata = ["skipped": "\(count - loggedUndecodable.count)", "total": "\(count)"]
        let message = "skipped kernel objects that could not be decoded: \(reason ?? "unknown")"
        return Entry(reason != loggedUndecodable.reason ? .warning : .debug, message, metadata: metadata)
    }
}
