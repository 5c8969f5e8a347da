import CPosix
import Logging
import Netlink
import NicrouteCore

#if canImport(Glibc)
import Glibc
#endif

/// Carries out `DaemonMachine`'s actions on the loop's thread and feeds their results back.
final class DaemonDriver {
    private var machine: DaemonMachine
    let loop: EventLoop
    private let reconciler: Reconciler
    private let box: TriggerBox
    private let options: DaemonOptions
    private var configuration: Configuration
    private let logger: Logger
    private let notifier = SystemdNotifier()
    var server: ControlServer?
    private var timer: EventLoop.Source?
    private var passSource: EventLoop.Source?
    private var lastReport: Reconciler.Report?
    private var replies: [DaemonMachine.RequestID: (ControlResponse) -> Void] = [:]
    private var nextRequest = 0
    /// What is left to do, in order: inputs for the machine and the actions it returned. One
    /// queue: an action's result goes in front (what it brings is carried out before the rest
    /// of the actions, as the machine expects), whatever comes from outside while the queue is
    /// worked through (events read during a pass, a lost-events report) goes to the back.
    private var work: [Work] = []
    private var working = false

    private enum Work {
        case input(DaemonMachine.Input)
        case action(DaemonMachine.Action)
    }

    init(
        machine: DaemonMachine, loop: EventLoop, reconciler: Reconciler, box: TriggerBox, options: DaemonOptions,
        configuration: Configuration, logger: Logger
    ) throws {
        self.machine = machine
        self.loop = loop
        self.reconciler = reconciler
        self.box = box
        self.options = options
        self.configuration = configuration
        self.logger = logger
        timer = try loop.timer(name: "machine") { [unowned self] in feed(.timerExpired) }
        // After every io source ready in the same turn (priority 0): what is already queued is
        // read before the pass starts.
        passSource = try loop.deferred(priority: 10, name: "pass") { [unowned self] in feed(.passDue) }
    }

    /// Hands `input` to the machine and carries out what it says (after the input in progress).
    func feed(_ input: DaemonMachine.Input) {
        work.append(.input(input))
        guard !working else { return }
        working = true
        defer { working = false }
        while !work.isEmpty {
            switch work.removeFirst() {
            case .input(let input):
                work.insert(contentsOf: machine.handle(input, now: monotonicSeconds()).map(Work.action), at: 0)
            case .action(let action):
                if let result = perform(action) { work.insert(.input(result), at: 0) }
            }
        }
    }

    /// Hands over the kernel events the box gathered, stamped with the wall-clock time.
    func feedEvents() {
        guard let events = takeEvents() else { return }
        feed(.kernelEvents(events))
    }

    /// What the box gathered, stamped with the wall-clock time; nil when nothing came.
    private func takeEvents() -> KernelEvents? {
        var events = box.take()
        guard !events.isEmpty else { return nil }
        let time = wallClockTime()
        events.lastChange = events.lastChange.map { "\(time) \($0)" }
        events.linkChanges = events.linkChanges.mapValues { "\(time) \($0)" }
        return events
    }

    func control(_ command: ControlCommand, reply: @escaping (ControlResponse) -> Void) {
        nextRequest += 1
        replies[nextRequest] = reply
        feed(.control(nextRequest, command))
    }

    /// Carries out one action; the result to feed back, for those that have one.
    private func perform(_ action: DaemonMachine.Action) -> DaemonMachine.Input? {
        switch action {
        case .reconcile(let why, let reading):
            return pass(why, reading: reading)
        case .passSoon:
            passSource?.fireOnce()
        case .loadConfiguration:
            do {
                let previous = configuration
                configuration = try options.configuration.load()
                reconciler.update(configuration)
                return .configurationLoaded(
                    .loaded(
                        controlChanged: previous.controlSocket != configuration.controlSocket
                            || previous.controlGroup != configuration.controlGroup))
            } catch {
                return .configurationLoaded(.rejected("\(error)"))
            }
        case .flush(let id):
            do { return .flushFinished(id, .success(try reconciler.flush())) } catch {
                return .flushFinished(id, .failure(.init("\(error)")))
            }
        case .checkPreflight:
            guard let report = lastReport else { return .preflightFindings([]) }
            let findings = Preflight.findings(
                plan: report.plan, inputs: reconciler.preflightInputs(plan: report.plan, snapshot: report.snapshot))
            // The machine logs these as warnings, once while they hold; notes are for `status`.
            return .preflightFindings(Set(findings.filter { $0.severity == "warning" }.map(\.message)))
        case .notify(.ready(let status)): notifier.ready(status: status)
        case .notify(.status(let status)): notifier.status(status)
        case .notify(.reloading): notifier.reloading()
        case .notify(.stopping): notifier.stopping()
        case .reply(let id, let reply):
            replies.removeValue(forKey: id)?(response(reply))
        case .armTimer(let at): timer?.arm(at: at)
        case .disarmTimer: timer?.disarm()
        case .log(let level, let message, let metadata):
            logger.log(level: Logger.Level(level), "\(message)", metadata: metadata.mapValues { .string($0) })
        case .exit(let success):
            // Requests in flight are told that the daemon is stopping.
            server?.stop()
            for reply in replies.values { reply(.failure(ControlError(.failed, "nicrouted is stopping"))) }
            replies = [:]
            loop.exit(success ? 0 : 1)
        }
        return nil
    }

    /// One reconcile pass; hands the reconciler's interest to the box.
    private func pass(_ why: String, reading: PassReading) -> DaemonMachine.Input {
        let now = monotonicSeconds()
        let report: Reconciler.Report
        do {
            report = try reconciler.reconcile(
                now: now, reading: reading)
        } catch {
            lastReport = nil
            if let error = error as? NetlinkError, error.errno == .resourceTemporarilyUnavailable {
                return .passFinished(.interrupted("\(error)"))
            }
            return .passFinished(.readFailed("\(error)"))
        }
        lastReport = report
        box.setInterest(
            TriggerBox.Interest(
                tables: configuration.tables, probes: Set(report.plan.neighborProbes.map(\.address)),
                linkNames: Dictionary(
                    report.snapshot.links.filter { reconciler.planner.isManaged($0) }.map { ($0.index, $0.name) },
                    uniquingKeysWith: { a, _ in a }),
                managed: Set(report.plan.nics.map(\.link.index)), localRoutes: configuration.localRoutes))
        // Events read during the pass (its changes' echoes and whatever else came: the socket
        // may now be empty and not wake the loop) and a probe's early answer (`setInterest`
        // marks it relevant) go to the machine.
        if let events = takeEvents() { work.append(.input(.kernelEvents(events))) }
        let t = report.timings
        logger.debug(
            "reconciled",
            metadata: [
                "why": "\(why)", "changes": "\(report.applied.count)", "failed": "\(report.failed.count)",
                "duration_us": "\(Int((monotonicSeconds() - now) * 1e6))", "snapshot_us": "\(t.snapshot)",
                "plan_us": "\(t.plan)", "apply_us": "\(t.apply)", "read": "\(report.read.rawValue)",
            ])
        return .passFinished(
            .completed(
                DaemonMachine.PassSummary(
                    plan: report.plan, deferred: report.deferred.count, failed: report.failed.count,
                    retryAt: report.retryAt)))
    }

    /// The kernel as the last pass left it (the machine answers `status` and `plan` after the
    /// pass due, if any): no dump on the loop while it answers. Read afresh only when no pass
    /// left a picture (before the first, after a failed one, after a flush).
    private func picture() throws -> KernelSnapshot {
        if let picture = reconciler.picture { return picture }
        return try reconciler.snapshot()
    }

    /// How long the costly part of `status` and `plan` is reused while the picture stays the same.
    static let answerReuse = 1.0
    /// That part (planning the picture, the preflight's reads of /proc and the lease files):
    /// clients polling `status` as fast as they are answered cost one computation a second, not
    /// one each, and what they see is at most `answerReuse` old (a pass makes it new at once).
    private var answered:
        (generation: Int, at: Double, snapshot: KernelSnapshot, plan: Plan, findings: [StatusReport.Finding])?

    /// The picture, its plan and the preflight's findings, for `status` and `plan`.
    private func planned() throws -> (KernelSnapshot, Plan, [StatusReport.Finding]) {
        let now = monotonicSeconds()
        if let a = answered, a.generation == reconciler.pictureGeneration, reconciler.picture != nil,
            now - a.at < Self.answerReuse
        {
            return (a.snapshot, a.plan, a.findings)
        }
        let snapshot = try picture()
        let plan = reconciler.plan(from: snapshot)
        let findings = Preflight.findings(
            plan: plan, inputs: reconciler.preflightInputs(plan: plan, snapshot: snapshot))
        answered = reconciler.picture == nil ? nil : (reconciler.pictureGeneration, now, snapshot, plan, findings)
        return (snapshot, plan, findings)
    }

    /// The control answer the machine chose, computed where it needs the kernel.
    private func response(_ reply: DaemonMachine.Reply) -> ControlResponse {
        do {
            switch reply {
            case .status(let summary, let paused, let deferred, let lastChanges):
                let (snapshot, plan, findings) = try planned()
                let report = StatusReport(
                    plan: plan, snapshot: snapshot, summary: summary, fromDaemon: true, paused: paused,
                    deferred: deferred, lastChanges: lastChanges, findings: findings,
                    forwarding: reconciler.forwardingStatus(observe: false))
                return .success(report.json)
            case .plan:
                let (snapshot, plan, _) = try planned()
                return .success(PlanOutput(plan: plan, snapshot: snapshot).json)
            case .applied:
                guard let report = lastReport else {
                    return .failure(ControlError(.failed, "cannot read the kernel's state"))
                }
                return .success(ApplyOutput(report: report).json)
            case .removed(let removed):
                // What the flush could not put back is the reconciler's to tell (kept for the next one).
                return .success(FlushOutput(removed: removed, problems: reconciler.flushProblems).json)
            case .failure(let error):
                return .failure(error)
            }
        } catch {
            return .failure(ControlError(.failed, "\(error)"))
        }
    }
}

extension Logger.Level {
    init(_ level: DaemonMachine.LogLevel) {
        switch level {
        case .debug: self = .debug
        case .info: self = .info
        case .notice: self = .notice
        case .warning: self = .warning
        case .error: self = .error
        case .critical: self = .critical
        }
    }
}

/// Sends control commands into the daemon's machine; answered on the loop's thread.
final class LoopBackend: ControlBackend {
    unowned let driver: DaemonDriver
    init(driver: DaemonDriver) { self.driver = driver }
    func perform(_ command: ControlCommand, reply: @escaping (ControlResponse) -> Void) {
        driver.control(command, reply: reply)
    }
}
