/// nicrouted's decisions, as a state machine: inputs in, actions out.
///
/// The event loop (NicrouteDaemon's `EventLoop`, driven by `DaemonDriver`) owns the sockets, the signals and the one
/// timer, and only moves data: it turns what happened into an `Input`, hands it over with the
/// monotonic time, and carries out the `Action`s in order. When an action produces a result
/// (`reconcile`, `loadConfiguration`, `flush`, `checkPreflight`), the loop feeds it back at once
/// and carries out what that returns before the rest of the list.
/// When to pass, the back-off after a failed read, the retry and probe deadlines, the
/// coalescing window, the periodic nftables check, reload with the last good configuration,
/// pausing after a flush, when `status` and `plan` are answered, the STATUS= cache and the
/// preflight findings' de-duplication all live here, tested with tables (like swift-nio's state
/// machines that return an action and let the caller do the I/O). Beside it, as pure values too:
/// what a pass logs and its retries after failures (`PassLogbook`), when the last plan stands
/// (`QuietPlan`), forwarded connections' table (`ForwardTableKeeper`).
///
/// Pure: no clock (time comes in as `now`, monotonic seconds), no I/O.
public struct DaemonMachine: Sendable {
    /// What the machine is told at start.
    public struct Settings: Equatable, Sendable {
        /// How long to wait after the first event before a pass (0: start at once, after the
        /// events already readable).
        public var coalescing: Double
        /// How often to look at nicroute's nftables table when its changes are not announced
        /// (nil: they are).
        public var nftablesPollInterval: Double?
        /// The control socket's path, for the "ready" log line.
        public var controlPath: String

        public init(coalescing: Double = 0, nftablesPollInterval: Double? = nil, controlPath: String = "") {
            self.coalescing = coalescing
            self.nftablesPollInterval = nftablesPollInterval
            self.controlPath = controlPath
        }
    }

    /// The wait before a pass retries after the kernel could not be read.
    public static let readRetry: Double = 1
    /// The wait before a pass tries again when the kernel's picture changed during every dump
    /// (the loop reads the events of the storm meanwhile), and how many such passes in a row
    /// before it counts as a failure to read (about 1 s).
    public static let interruptedRetry: Double = 0.02
    public static let interruptedLimit = 50
    /// The shortest wait the timer is armed for (a deadline already past fires at once).
    public static let minimumWait: Double = 0.001
    /// The periodic nftables check when the kernel's announcements cannot be heard.
    public static let nftablesPollInterval: Double = 10

    /// A control request in flight, numbered by the loop.
    public typealias RequestID = Int

    public enum Input: Equatable, Sendable {
        /// The first snapshot and reconcile are due (configuration loaded, sockets open).
        case start
        /// Kernel notifications, summarised (relevance decided by the loop's filter).
        case kernelEvents(KernelEvents)
        /// Notifications were lost (ENOBUFS): the next pass is a full resync.
        case eventsLost
        /// The nftables ruleset changed.
        case nftablesChanged
        /// udev finished processing a NIC a pass looked at (its properties may opt it out).
        case deviceProcessed
        /// The timer armed by `armTimer` fired.
        case timerExpired
        /// Everything readable has been read after `passSoon`: the pass may start.
        case passDue
        /// A control request, authorized.
        case control(RequestID, ControlCommand)
        /// SIGHUP.
        case reloadRequested
        /// SIGTERM or SIGINT.
        case stopRequested
        /// The netlink event subscription failed: the daemon would go blind.
        case subscriptionFailed
        /// The result of `reconcile`.
        case passFinished(PassOutcome)
        /// The result of `loadConfiguration`.
        case configurationLoaded(ConfigurationOutcome)
        /// The result of `flush`: the objects removed, or why not.
        case flushFinished(RequestID, Result<[String], DaemonFailure>)
        /// The result of `checkPreflight`: the findings' messages.
        case preflightFindings(Set<String>)
    }

    public enum Action: Equatable, Sendable {
        /// Read the kernel and reconcile it; answer with `passFinished`. `reading` says how much
        /// of the kernel may have changed since the last pass (see `Reconciler.observe`).
        case reconcile(why: String, reading: PassReading)
        /// Feed `passDue` once everything already readable has been read.
        case passSoon
        /// Load the configuration again (keeping the last good one on error); answer with
        /// `configurationLoaded`.
        case loadConfiguration
        /// Remove everything nicroute installed; answer with `flushFinished`.
        case flush(RequestID)
        /// Compute the preflight findings of the last pass; answer with `preflightFindings`.
        case checkPreflight
        case notify(Notification)
        case reply(RequestID, Reply)
        /// Arm the single timer at `at` (monotonic seconds), replacing any earlier deadline.
        case armTimer(at: Double)
        case disarmTimer
        case log(LogLevel, String, metadata: [String: String] = [:])
        /// End the loop: success after a requested stop, failure when the daemon went blind.
        case exit(success: Bool)
    }

    /// sd_notify messages.
    public enum Notification: Equatable, Sendable {
        /// `READY=1` with `STATUS=`.
        case ready(status: String)
        /// `STATUS=` alone, sent only when it changed.
        case status(String)
        /// `RELOADING=1` (with `MONOTONIC_USEC=`).
        case reloading
        /// `STOPPING=1`.
        case stopping
    }

    /// The answer to a control request.
    public enum Reply: Equatable, Sendable {
        /// The status of the kernel as the last pass left it, with what only the loop knows.
        case status(summary: String, paused: Bool, deferred: Int, lastChanges: [String: String])
        /// The plan for the kernel as the last pass left it.
        case plan
        /// What the last pass applied (reconfigure).
        case applied
        /// The objects a flush removed.
        case removed([String])
        case failure(ControlError)
    }

    public enum LogLevel: String, Equatable, Sendable {
        case debug, info, notice, warning, error, critical
    }

    /// A failure reported by the loop, as text.
    public struct DaemonFailure: Error, Equatable, Sendable {
        public var message: String
        public init(_ message: String) { self.message = message }
    }

    /// What a pass found and did, as far as the decisions need it.
    public struct PassSummary: Equatable, Sendable {
        public var nics: Int
        public var rules: Int
        public var deferred: Int
        public var failed: Int
        /// When the reconciler wants another pass (fights, failures, neighbour probes).
        public var retryAt: Double?
        /// What the preflight findings depend on; a new key asks for a new check.
        public var preflightKey: [PreflightKey]

        public init(
            nics: Int = 0, rules: Int = 0, deferred: Int = 0, failed: Int = 0, retryAt: Double? = nil,
            preflightKey: [PreflightKey] = []
        ) {
            self.nics = nics
            self.rules = rules
            self.deferred = deferred
            self.failed = failed
            self.retryAt = retryAt
            self.preflightKey = preflightKey
        }

        /// The summary of a pass that planned `plan`: its NICs, one rule per address, and what
        /// the preflight findings depend on.
        public init(plan: Plan, deferred: Int, failed: Int, retryAt: Double?) {
            self.init(
                nics: plan.nics.count, rules: plan.nics.reduce(0) { $0 + $1.addresses.count }, deferred: deferred,
                failed: failed, retryAt: retryAt,
                preflightKey: plan.nics.map { nic in
                    PreflightKey(
                        name: nic.link.name,
                        subnets: Set(nic.addresses.filter { $0.family == .inet && !$0.prefix.isHost }.map(\.subnet))
                            .sorted())
                })
        }
    }

    public enum PassOutcome: Equatable, Sendable {
        case completed(PassSummary)
        /// The kernel's state could not be read.
        case readFailed(String)
        /// The kernel's picture changed during every dump the pass made (a storm of changes):
        /// nothing done; tried again shortly.
        case interrupted(String)
    }

    public enum ConfigurationOutcome: Equatable, Sendable {
        /// The new configuration is in use; `controlChanged`: its [Control] section differs.
        case loaded(controlChanged: Bool)
        /// Refused; the last good configuration stays.
        case rejected(String)
    }

    /// What the preflight findings depend on, per NIC: its name (sysctls) and IPv4 subnets (two
    /// NICs on one subnet). A new address in a known subnet does not cause a new check (which
    /// reads /proc).
    public struct PreflightKey: Hashable, Sendable {
        public var name: String
        public var subnets: [IPPrefix]
        public init(name: String, subnets: [IPPrefix]) {
            self.name = name
            self.subnets = subnets
        }
    }

    /// Who asked for the configuration to be loaded again.
    enum Reload: Equatable {
        case signal
        case control(RequestID)
    }

    /// What happened since the last pass.
    struct Pending: Equatable {
        var needsPass = false
        var reload = false
        var resync = false
        /// Something besides address announcements happened: the next pass reads everything.
        var beyondAddresses = false
        /// Something besides link and address announcements happened.
        var beyondLinks = false
    }

    enum Phase: Equatable {
        case starting
        case running
        case stopped
    }

    public let settings: Settings
    var phase = Phase.starting
    var pending = Pending()
    /// `passSoon` was sent and its `passDue` has not come back yet.
    var passRequested = false
    /// A `reconcile` was sent and its `passFinished` has not come back yet.
    var passing = false
    /// `status` and `plan` requests that came while a pass was due, answered after it: they
    /// show the kernel as it is after the events already heard, not as it was before them.
    var awaitingPass: [(RequestID, ControlCommand)] = []
    /// The deadlines the single timer serves.
    var retryAt: Double?
    var coalesceUntil: Double?
    var pollAt: Double?
    var armedAt: Double?
    /// A reload in progress, and who is waiting for it.
    var reloading: Reload?
    /// A reconfigure waiting for its pass's result.
    var reconfiguring: RequestID?
    var paused = false
    var lastPass: PassSummary?
    var lastChange = "none"
    var linkChanges: [String: String] = [:]
    /// The last STATUS= sent.
    var sentStatus: String?
    var preflightKey: [PreflightKey]?
    var loggedFindings: Set<String> = []
    /// Passes in a row whose dumps were all interrupted.
    var interruptions = 0

    public init(settings: Settings) {
        self.settings = settings
    }

    /// The one-line status (STATUS=, `nicroutectl status`'s summary).
    public var statusLine: String {
        if paused { return "paused after flush; nothing installed" }
        guard let pass = lastPass else { return "error reading kernel state, retrying" }
        var s = "\(pass.nics) NIC\(pass.nics == 1 ? "" : "s"), \(pass.rules) rule\(pass.rules == 1 ? "" : "s"), "
        s += "last change \(lastChange)"
        if pass.deferred > 0 { s += ", \(pass.deferred) deferred (another tool deletes them)" }
        if pass.failed > 0 { s += ", \(pass.failed) failed" }
        return s
    }

    /// Takes `input`, which happened at `now` (monotonic seconds), and returns what to do.
    public mutating func handle(_ input: Input, now: Double) -> [Action] {
        if phase == .stopped {
            if case .control(let id, _) = input { return [.reply(id, .failure(Self.stopping))] }
            return []
        }
        var actions: [Action] = []
        switch input {
        case .start:
            if let interval = settings.nftablesPollInterval { pollAt = now + interval }
            actions = reconcile("startup")
        case .kernelEvents(let events):
            if let change = events.lastChange { lastChange = change }
            linkChanges.merge(events.linkChanges) { _, new in new }
            pending.beyondAddresses = pending.beyondAddresses || events.beyondAddresses
            pending.beyondLinks = pending.beyondLinks || events.beyondLinks
            if events.relevant { actions = want(now: now) }
        case .eventsLost:
            pending.resync = true
            pending.beyondAddresses = true
            pending.beyondLinks = true
            actions = want(now: now)
        case .nftablesChanged, .deviceProcessed:
            actions = requestReconcile(now: now)
        case .timerExpired:
            armedAt = nil
            if let at = pollAt, at <= now {
                pollAt = now + (settings.nftablesPollInterval ?? Self.nftablesPollInterval)
                pending.needsPass = true
                pending.beyondAddresses = true
                pending.beyondLinks = true
            }
            if let at = retryAt, at <= now {
                retryAt = nil
                pending.needsPass = true
                pending.beyondAddresses = true
                pending.beyondLinks = true
            }
            if let at = coalesceUntil, at <= now {
                coalesceUntil = nil
                actions = passNow()
            } else if pending.needsPass && coalesceUntil == nil {
                actions = want(now: now)
            }
        case .passDue:
            passRequested = false
            if coalesceUntil == nil { actions = passNow() }
        case .control(let id, let command):
            actions = control(id, command)
        case .reloadRequested:
            pending.reload = true
            pending.beyondAddresses = true
            pending.beyondLinks = true
            actions = want(now: now)
        case .stopRequested:
            phase = .stopped
            actions = [
                .log(.info, "stopping; nicroute's rules and routes stay in place"), .notify(.stopping),
                .exit(success: true),
            ]
            armedAt = nil
            return [.disarmTimer] + actions
        case .subscriptionFailed:
            phase = .stopped
            armedAt = nil
            return [
                .disarmTimer,
                .log(.critical, "the netlink event subscription failed; exiting so that the service is restarted"),
                .notify(.stopping), .exit(success: false),
            ]
        case .passFinished(let outcome):
            actions = passFinished(outcome, now: now)
        case .configurationLoaded(let outcome):
            actions = configurationLoaded(outcome)
        case .flushFinished(let id, let result):
            switch result {
            case .success(let removed): actions = [.reply(id, .removed(removed))]
            case .failure(let error): actions = [.reply(id, .failure(ControlError(.failed, error.message)))]
            }
            actions += updateStatus()
        case .preflightFindings(let messages):
            for message in messages.subtracting(loggedFindings).sorted() {
                actions.append(.log(.warning, "preflight: \(message)"))
            }
            loggedFindings = messages
        }
        if !awaitingPass.isEmpty && !passDue {
            let waiting = awaitingPass
            awaitingPass = []
            actions += waiting.flatMap { control($0.0, $0.1) }
        }
        return timer(before: actions)
    }

    /// A pass is due or under way: something was heard that the kernel's picture does not show
    /// yet.
    var passDue: Bool {
        pending.needsPass || pending.reload || passRequested || passing
    }

    static let stopping = ControlError(.failed, "nicrouted is stopping")

    /// Something may have changed the plan: pass after the events already readable, or after
    /// the coalescing window.
    private mutating func want(now: Double) -> [Action] {
        pending.needsPass = true
        if settings.coalescing > 0 {
            if coalesceUntil == nil { coalesceUntil = now + settings.coalescing }
            return []
        }
        guard !passRequested else { return [] }
        passRequested = true
        return [.passSoon]
    }

    /// A timer, nftables: look again at everything.
    private mutating func requestReconcile(now: Double) -> [Action] {
        pending.beyondAddresses = true
        pending.beyondLinks = true
        return want(now: now)
    }

    /// Takes what is pending and starts its pass (or its reload first).
    private mutating func passNow() -> [Action] {
        guard pending.needsPass || pending.reload else { return [] }
        let taken = pending
        pending = Pending()
        var actions: [Action] = []
        if taken.resync { actions.append(.log(.warning, "netlink messages were lost (ENOBUFS): full resync")) }
        if taken.reload {
            reloading = .signal
            return actions + [.notify(.reloading), .loadConfiguration]
        }
        return actions
            + reconcile(
                taken.resync ? "resync" : "events",
                reading: !taken.beyondAddresses ? .addresses : !taken.beyondLinks ? .linksAndAddresses : .everything)
    }

    /// A pass, unless paused (then only the status may change).
    private mutating func reconcile(_ why: String, reading: PassReading = .everything) -> [Action] {
        guard !paused else { return afterPass() }
        passing = true
        return [.reconcile(why: why, reading: reading)]
    }

    private mutating func passFinished(_ outcome: PassOutcome, now: Double) -> [Action] {
        passing = false
        var actions: [Action] = []
        var outcome = outcome
        if case .interrupted(let error) = outcome {
            interruptions += 1
            guard interruptions >= Self.interruptedLimit else {
                // Not a pass: what waits for one (READY, a reconfigure's answer, status) waits on.
                pending.needsPass = true
                pending.beyondAddresses = true
                pending.beyondLinks = true
                retryAt = now + Self.interruptedRetry
                return [.log(.debug, "the kernel's state changed during every dump (\(error)); again shortly")]
            }
            outcome = .readFailed(error)
        }
        interruptions = 0
        switch outcome {
        case .interrupted: break
        case .completed(let summary):
            lastPass = summary
            retryAt = summary.retryAt.map { max($0, now + Self.minimumWait) }
            if summary.preflightKey != preflightKey {
                preflightKey = summary.preflightKey
                actions.append(.checkPreflight)
            }
        case .readFailed(let error):
            lastPass = nil
            retryAt = now + Self.readRetry
            actions.append(.log(.error, "cannot read the kernel's state: \(error)"))
        }
        // The findings check answers at once, before what follows.
        return actions + afterPass()
    }

    /// What follows a pass (or a pass skipped while paused): READY after startup and reloads,
    /// the reconfigure's answer, STATUS= when it changed.
    private mutating func afterPass() -> [Action] {
        if phase == .starting {
            phase = .running
            sentStatus = statusLine
            return [
                .log(.info, "ready", metadata: ["status": statusLine, "control": settings.controlPath]),
                .notify(.ready(status: statusLine)),
            ]
        }
        var actions: [Action] = []
        if let id = reconfiguring {
            reconfiguring = nil
            actions.append(
                .reply(
                    id, lastPass == nil ? .failure(ControlError(.failed, "cannot read the kernel's state")) : .applied))
        }
        if reloading != nil {
            reloading = nil
            return actions + announceReady()
        }
        return actions + updateStatus()
    }

    private mutating func announceReady() -> [Action] {
        sentStatus = statusLine
        return [.notify(.ready(status: statusLine))]
    }

    private mutating func updateStatus() -> [Action] {
        guard statusLine != sentStatus else { return [] }
        sentStatus = statusLine
        return [.notify(.status(statusLine))]
    }

    private mutating func control(_ id: RequestID, _ command: ControlCommand) -> [Action] {
        switch command {
        case .status where passDue, .plan where passDue:
            awaitingPass.append((id, command))
            return []
        case .status:
            return [
                .reply(
                    id,
                    .status(
                        summary: statusLine, paused: paused, deferred: lastPass?.deferred ?? 0, lastChanges: linkChanges
                    ))
            ]
        case .plan:
            return [.reply(id, .plan)]
        case .reconfigure:
            reloading = .control(id)
            return [.notify(.reloading), .loadConfiguration]
        case .flush:
            paused = true
            retryAt = nil
            return [.flush(id)]
        }
    }

    private mutating func configurationLoaded(_ outcome: ConfigurationOutcome) -> [Action] {
        let reload = reloading ?? .signal
        var actions: [Action] = []
        switch outcome {
        case .loaded(let controlChanged):
            if controlChanged {
                actions.append(.log(.warning, "[Control] Socket= and Group= take effect at the next restart"))
            }
            actions.append(.log(.notice, "configuration reloaded"))
            paused = false
        case .rejected(let error):
            actions.append(.log(.error, "configuration rejected, keeping the last good one: \(error)"))
            if case .control(let id) = reload {
                // No pass: nothing changed.
                reloading = nil
                actions.append(
                    .reply(
                        id,
                        .failure(ControlError(.invalidConfiguration, "\(error); keeping the last good configuration")))
                )
                return actions + announceReady()
            }
        }
        preflightKey = nil  // checked again after a reload, whatever its outcome
        if case .control(let id) = reload { reconfiguring = id }
        return actions + reconcile(reload == .signal ? "reload" : "reconfigure")
    }

    /// Adds the timer's new deadline, if it moved, in front of the first result-producing
    /// action: what the result brings is carried out before the rest, and may move it again.
    private mutating func timer(before actions: [Action]) -> [Action] {
        let deadline = [retryAt, coalesceUntil, pollAt].compactMap { $0 }.min()
        guard deadline != armedAt else { return actions }
        armedAt = deadline
        var out = actions
        out.insert(
            deadline.map { .armTimer(at: $0) } ?? .disarmTimer,
            at: out.firstIndex(where: \.producesResult) ?? out.count)
        return out
    }
}

extension DaemonMachine.Action {
    /// True for the actions whose result the loop feeds back at once.
    public var producesResult: Bool {
        switch self {
        case .reconcile, .loadConfiguration, .flush, .checkPreflight: true
        default: false
        }
    }
}

/// Kernel notifications since the last hand-over, summarised by the loop's filter.
public struct KernelEvents: Equatable, Sendable {
    /// At least one may change the plan.
    public var relevant: Bool
    /// Something besides address announcements happened (another event, relevant or not,
    /// decoded or not): the next pass reads the whole kernel picture. While only addresses were
    /// announced, a pass may read the addresses alone.
    public var beyondAddresses: Bool
    /// Something besides link and address announcements happened (a route, a rule, a
    /// neighbour, an undecoded notification): the next pass reads the whole picture. While only
    /// links and addresses were announced, a pass may read those two alone.
    public var beyondLinks: Bool
    /// The latest address change on a managed NIC, stamped, e.g. "12:00:01 eth1 +10.20.20.17".
    public var lastChange: String?
    /// The latest address change per NIC name, stamped, e.g. "eth1" -> "12:00:01 +10.20.20.17".
    public var linkChanges: [String: String]

    public init(
        relevant: Bool = false, beyondAddresses: Bool = false, beyondLinks: Bool? = nil, lastChange: String? = nil,
        linkChanges: [String: String] = [:]
    ) {
        self.relevant = relevant
        self.beyondAddresses = beyondAddresses
        // Unless told otherwise, whatever is beyond addresses is beyond links too.
        self.beyondLinks = beyondLinks ?? beyondAddresses
        self.lastChange = lastChange
        self.linkChanges = linkChanges
    }

    public var isEmpty: Bool { self == KernelEvents() }
}

/// How much of the kernel a pass reads, from what was announced since the last pass.
public enum PassReading: String, Sendable, Hashable {
    /// Links, addresses, routes and rules (and neighbours when probing): anything else came,
    /// or nothing is known (a start, a reload, lost events, a timer).
    case everything
    /// The addresses only: nothing but address announcements came (a DHCP renewal).
    case addresses
    /// The links and addresses only: link announcements came, and nothing else but addresses.
    case linksAndAddresses = "links+addresses"
}
