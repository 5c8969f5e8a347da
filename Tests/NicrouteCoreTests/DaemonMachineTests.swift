import Testing

@testable import NicrouteCore

// nicrouted's decisions, without root, sockets or a clock: each case is a list of inputs, the
// time each arrives at, and exactly the actions expected back.

private typealias M = DaemonMachine

/// One input at a time, with what must come out.
private struct Step: Sendable {
    var input: M.Input
    var now: Double
    var expect: [M.Action]
    init(_ input: M.Input, at now: Double = 0, _ expect: [M.Action]) {
        self.input = input
        self.now = now
        self.expect = expect
    }
}

private struct Case: Sendable, CustomTestStringConvertible {
    var name: String
    var settings = M.Settings(controlPath: "/run/c.sock")
    var steps: [Step]
    var testDescription: String { name }
}

// MARK: - Vocabulary

private let eth1 = M.PreflightKey(name: "eth1", subnets: [IPPrefix("10.0.1.0/24")!])
private let pass2 = M.PassSummary(nics: 2, rules: 3, preflightKey: [eth1])
private let status2 = "2 NICs, 3 rules, last change none"
private func status(_ change: String) -> String { "2 NICs, 3 rules, last change \(change)" }
private let address = KernelEvents(
    relevant: true, lastChange: "12:00:01 eth1 +10.0.1.7", linkChanges: ["eth1": "12:00:01 +10.0.1.7"])
private let route = KernelEvents(relevant: true, beyondAddresses: true)
private let irrelevant = KernelEvents(relevant: false, beyondAddresses: true)
private let link = KernelEvents(relevant: true, beyondAddresses: true, beyondLinks: false)
private let paused = "paused after flush; nothing installed"
private let readError = "error reading kernel state, retrying"

/// Start, a first pass that finds two NICs, READY.
private let startup: [Step] = [
    Step(.start, [.reconcile(why: "startup", reading: .everything)]),
    Step(
        .passFinished(.completed(pass2)),
        [
            .checkPreflight, .log(.info, "ready", metadata: ["status": status2, "control": "/run/c.sock"]),
            .notify(.ready(status: status2)),
        ]),
    Step(.preflightFindings([]), []),
]

/// An event and the pass that follows it, finding the same as before.
private func eventPass(
    _ events: KernelEvents, at now: Double = 1, reading: PassReading, status: [M.Action] = []
)
    -> [Step]
{
    [
        Step(.kernelEvents(events), at: now, [.passSoon]),
        Step(.passDue, at: now, [.reconcile(why: "events", reading: reading)]),
        Step(.passFinished(.completed(pass2)), at: now, status),
    ]
}

extension M.Action {
    fileprivate var isReady: Bool { if case .notify(.ready) = self { true } else { false } }
}

private let cases: [Case] = [
    Case(name: "startup: one full pass, then READY with the status and a log line", steps: startup),
    Case(
        name: "startup: the kernel cannot be read: READY all the same, retry after 1 s",
        steps: [
            Step(.start, [.reconcile(why: "startup", reading: .everything)]),
            Step(
                .passFinished(.readFailed("EPERM")),
                [
                    .log(.error, "cannot read the kernel's state: EPERM"),
                    .log(.info, "ready", metadata: ["status": readError, "control": "/run/c.sock"]),
                    .notify(.ready(status: readError)), .armTimer(at: 1),
                ]),
            Step(.timerExpired, at: 1, [.passSoon]),
            Step(.passDue, at: 1, [.reconcile(why: "events", reading: .everything)]),
            Step(.passFinished(.completed(pass2)), at: 1, [.checkPreflight, .notify(.status(status2))]),
        ]),
    Case(
        name: "an address event: the pass starts at once and reads the addresses alone; STATUS= names the change",
        steps: startup
            + eventPass(address, reading: .addresses, status: [.notify(.status(status("12:00:01 eth1 +10.0.1.7")))])),
    Case(
        name: "link and address events alone: the pass may read links and addresses alone; a route event reads all",
        steps: startup + [
            Step(.kernelEvents(link), at: 1, [.passSoon]),
            Step(.kernelEvents(address), at: 1, []),
            Step(
                .passDue, at: 1,
                [.reconcile(why: "events", reading: .linksAndAddresses)]),
            Step(.passFinished(.completed(pass2)), at: 1, [.notify(.status(status("12:00:01 eth1 +10.0.1.7")))]),
            Step(.kernelEvents(link), at: 2, [.passSoon]),
            Step(.kernelEvents(route), at: 2, []),
            Step(.passDue, at: 2, [.reconcile(why: "events", reading: .everything)]),
            Step(.passFinished(.completed(pass2)), at: 2, []),
        ]),
    Case(
        name: "an unchanged status is not sent again",
        steps: startup + eventPass(route, reading: .everything) + eventPass(route, at: 2, reading: .everything)),
    Case(
        name: "an irrelevant event wakes nothing, but makes the next pass read everything",
        steps: startup + [Step(.kernelEvents(irrelevant), at: 1, [])]
            + eventPass(
                address, at: 2, reading: .everything, status: [.notify(.status(status("12:00:01 eth1 +10.0.1.7")))])),
    Case(
        name: "a burst before the pass starts, and what arrives during the pass, make one pass each",
        steps: startup + [
            Step(.kernelEvents(address), at: 1, [.passSoon]),
            Step(.kernelEvents(address), at: 1, []),
            Step(.kernelEvents(route), at: 1, []),
            Step(.passDue, at: 1, [.reconcile(why: "events", reading: .everything)]),
            Step(.kernelEvents(address), at: 1.001, [.passSoon]),
            Step(.kernelEvents(address), at: 1.002, []),
            Step(.passFinished(.completed(pass2)), at: 1.003, [.notify(.status(status("12:00:01 eth1 +10.0.1.7")))]),
            Step(.passDue, at: 1.003, [.reconcile(why: "events", reading: .addresses)]),
            Step(.passFinished(.completed(pass2)), at: 1.004, []),
            Step(.passDue, at: 1.005, []),
        ]),
    Case(
        name: "lost notifications (ENOBUFS): a full resync, with a warning",
        steps: startup + [
            Step(.eventsLost, at: 1, [.passSoon]),
            Step(.eventsLost, at: 1, []),
            Step(
                .passDue, at: 1,
                [
                    .log(.warning, "netlink messages were lost (ENOBUFS): full resync"),
                    .reconcile(why: "resync", reading: .everything),
                ]),
            Step(.passFinished(.completed(pass2)), at: 1, []),
        ]),
    Case(
        name: "the reconciler's retry deadline arms the timer; its expiry brings a full pass; none disarms it",
        steps: startup + [
            Step(.kernelEvents(route), at: 1, [.passSoon]),
            Step(.passDue, at: 1, [.reconcile(why: "events", reading: .everything)]),
            Step(
                .passFinished(
                    .completed(M.PassSummary(nics: 2, rules: 3, failed: 1, retryAt: 3, preflightKey: [eth1]))), at: 1,
                [.notify(.status(status2 + ", 1 failed")), .armTimer(at: 3)]),
            Step(.timerExpired, at: 3, [.passSoon]),
            Step(.passDue, at: 3, [.reconcile(why: "events", reading: .everything)]),
            Step(.passFinished(.completed(pass2)), at: 3, [.notify(.status(status2))]),
        ]),
    Case(
        name: "a deadline already past fires at once; a new pass replaces the deadline",
        steps: startup + [
            Step(.kernelEvents(route), at: 5, [.passSoon]),
            Step(.passDue, at: 5, [.reconcile(why: "events", reading: .everything)]),
            Step(
                .passFinished(.completed(M.PassSummary(nics: 2, rules: 3, retryAt: 4, preflightKey: [eth1]))), at: 5,
                [.armTimer(at: 5.001)]),
            Step(.kernelEvents(route), at: 5.0005, [.passSoon]),
            Step(.passDue, at: 5.0005, [.reconcile(why: "events", reading: .everything)]),
            Step(
                .passFinished(.completed(M.PassSummary(nics: 2, rules: 3, retryAt: 9, preflightKey: [eth1]))),
                at: 5.0006,
                [.armTimer(at: 9)]),
        ]),
    Case(
        name: "deferred and failed changes show in the status line",
        steps: startup + [
            Step(.kernelEvents(route), at: 1, [.passSoon]),
            Step(.passDue, at: 1, [.reconcile(why: "events", reading: .everything)]),
            Step(
                .passFinished(
                    .completed(M.PassSummary(nics: 1, rules: 1, deferred: 2, failed: 3, preflightKey: [eth1]))), at: 1,
                [.notify(.status("1 NIC, 1 rule, last change none, 2 deferred (another tool deletes them), 3 failed"))]),
        ]),
    Case(
        name: "a read failure after startup: an error, the status says so, a retry after 1 s",
        steps: startup + [
            Step(.kernelEvents(route), at: 1, [.passSoon]),
            Step(.passDue, at: 1, [.reconcile(why: "events", reading: .everything)]),
            Step(
                .passFinished(.readFailed("ENOBUFS")), at: 1.5,
                [
                    .log(.error, "cannot read the kernel's state: ENOBUFS"), .notify(.status(readError)),
                    .armTimer(at: 2.5),
                ]),
            Step(.timerExpired, at: 2.5, [.passSoon]),
        ]),
    Case(
        name: "SIGHUP: RELOADING, the configuration, a full pass, READY",
        steps: startup + [
            Step(.reloadRequested, at: 1, [.passSoon]),
            Step(.passDue, at: 1, [.notify(.reloading), .loadConfiguration]),
            Step(
                .configurationLoaded(.loaded(controlChanged: false)), at: 1,
                [.log(.notice, "configuration reloaded"), .reconcile(why: "reload", reading: .everything)]),
            Step(.passFinished(.completed(pass2)), at: 1, [.checkPreflight, .notify(.ready(status: status2))]),
            Step(.preflightFindings([]), at: 1, []),
        ]),
    Case(
        name: "SIGHUP with a bad file: the last good configuration stays, the pass still runs, READY",
        steps: startup + [
            Step(.reloadRequested, at: 1, [.passSoon]),
            Step(.passDue, at: 1, [.notify(.reloading), .loadConfiguration]),
            Step(
                .configurationLoaded(.rejected("nicroute.conf:3: bad")), at: 1,
                [
                    .log(.error, "configuration rejected, keeping the last good one: nicroute.conf:3: bad"),
                    .reconcile(why: "reload", reading: .everything),
                ]),
            Step(.passFinished(.completed(pass2)), at: 1, [.checkPreflight, .notify(.ready(status: status2))]),
        ]),
    Case(
        name: "a reload that changes [Control] warns that it waits for a restart",
        steps: startup + [
            Step(.reloadRequested, at: 1, [.passSoon]),
            Step(.passDue, at: 1, [.notify(.reloading), .loadConfiguration]),
            Step(
                .configurationLoaded(.loaded(controlChanged: true)), at: 1,
                [
                    .log(.warning, "[Control] Socket= and Group= take effect at the next restart"),
                    .log(.notice, "configuration reloaded"), .reconcile(why: "reload", reading: .everything),
                ]),
        ]),
    Case(
        name: "reconfigure: RELOADING, the configuration, a full pass, the answer, READY",
        steps: startup + [
            Step(.control(7, .reconfigure), at: 1, [.notify(.reloading), .loadConfiguration]),
            Step(
                .configurationLoaded(.loaded(controlChanged: false)), at: 1,
                [.log(.notice, "configuration reloaded"), .reconcile(why: "reconfigure", reading: .everything)]),
            Step(
                .passFinished(.completed(pass2)), at: 1,
                [.checkPreflight, .reply(7, .applied), .notify(.ready(status: status2))]),
        ]),
    Case(
        name: "reconfigure with a bad file: an invalid-configuration answer, no pass, READY",
        steps: startup + [
            Step(.control(7, .reconfigure), at: 1, [.notify(.reloading), .loadConfiguration]),
            Step(
                .configurationLoaded(.rejected("x:1: y")), at: 1,
                [
                    .log(.error, "configuration rejected, keeping the last good one: x:1: y"),
                    .reply(
                        7, .failure(ControlError(.invalidConfiguration, "x:1: y; keeping the last good configuration"))),
                    .notify(.ready(status: status2)),
                ]),
        ]),
    Case(
        name: "reconfigure when the kernel cannot be read: a failure answer",
        steps: startup + [
            Step(.control(7, .reconfigure), at: 1, [.notify(.reloading), .loadConfiguration]),
            Step(
                .configurationLoaded(.loaded(controlChanged: false)), at: 1,
                [.log(.notice, "configuration reloaded"), .reconcile(why: "reconfigure", reading: .everything)]),
            Step(
                .passFinished(.readFailed("EIO")), at: 1,
                [
                    .log(.error, "cannot read the kernel's state: EIO"),
                    .reply(7, .failure(ControlError(.failed, "cannot read the kernel's state"))),
                    .notify(.ready(status: readError)), .armTimer(at: 2),
                ]),
        ]),
    Case(
        name: "flush pauses: no pass, no retry, STATUS= says paused; events change nothing until reconfigure",
        steps: startup + [
            Step(.kernelEvents(route), at: 1, [.passSoon]),
            Step(.passDue, at: 1, [.reconcile(why: "events", reading: .everything)]),
            Step(
                .passFinished(.completed(M.PassSummary(nics: 2, rules: 3, retryAt: 30, preflightKey: [eth1]))), at: 1,
                [.armTimer(at: 30)]),
            Step(.control(8, .flush), at: 2, [.disarmTimer, .flush(8)]),
            Step(
                .flushFinished(8, .success(["ip rule del ..."])), at: 2,
                [.reply(8, .removed(["ip rule del ..."])), .notify(.status(paused))]),
            Step(.kernelEvents(address), at: 3, [.passSoon]),
            Step(.passDue, at: 3, []),
            Step(
                .control(9, .status), at: 3,
                [
                    .reply(
                        9,
                        .status(summary: paused, paused: true, deferred: 0, lastChanges: ["eth1": "12:00:01 +10.0.1.7"])
                    )
                ]),
            Step(.control(10, .reconfigure), at: 4, [.notify(.reloading), .loadConfiguration]),
            Step(
                .configurationLoaded(.loaded(controlChanged: false)), at: 4,
                [.log(.notice, "configuration reloaded"), .reconcile(why: "reconfigure", reading: .everything)]),
            Step(
                .passFinished(.completed(pass2)), at: 4,
                [.checkPreflight, .reply(10, .applied), .notify(.ready(status: status("12:00:01 eth1 +10.0.1.7")))]),
        ]),
    Case(
        name: "after a flush, SIGHUP with a bad file stays paused; with a good one it resumes",
        steps: startup + [
            Step(.control(8, .flush), at: 2, [.flush(8)]),
            Step(
                .flushFinished(8, .failure(.init("EPERM"))), at: 2,
                [.reply(8, .failure(ControlError(.failed, "EPERM"))), .notify(.status(paused))]),
            Step(.reloadRequested, at: 3, [.passSoon]),
            Step(.passDue, at: 3, [.notify(.reloading), .loadConfiguration]),
            Step(
                .configurationLoaded(.rejected("bad")), at: 3,
                [
                    .log(.error, "configuration rejected, keeping the last good one: bad"),
                    .notify(.ready(status: paused)),
                ]),
            Step(.reloadRequested, at: 4, [.passSoon]),
            Step(.passDue, at: 4, [.notify(.reloading), .loadConfiguration]),
            Step(
                .configurationLoaded(.loaded(controlChanged: false)), at: 4,
                [.log(.notice, "configuration reloaded"), .reconcile(why: "reload", reading: .everything)]),
        ]),
    Case(
        name: "status and plan are answered at once, with the loop's own knowledge",
        steps: startup
            + eventPass(address, reading: .addresses, status: [.notify(.status(status("12:00:01 eth1 +10.0.1.7")))]) + [
                Step(
                    .control(1, .status), at: 2,
                    [
                        .reply(
                            1,
                            .status(
                                summary: status("12:00:01 eth1 +10.0.1.7"), paused: false, deferred: 0,
                                lastChanges: ["eth1": "12:00:01 +10.0.1.7"]))
                    ]),
                Step(.control(2, .plan), at: 2, [.reply(2, .plan)]),
            ]),
    Case(
        name: "status and plan asked while a pass is due wait for it, and show what it found",
        steps: startup + [
            Step(.kernelEvents(address), at: 1, [.passSoon]),
            Step(.control(1, .status), at: 1, []),
            Step(.control(2, .plan), at: 1, []),
            Step(.passDue, at: 1, [.reconcile(why: "events", reading: .addresses)]),
            Step(
                .passFinished(.completed(pass2)), at: 1,
                [
                    .notify(.status(status("12:00:01 eth1 +10.0.1.7"))),
                    .reply(
                        1,
                        .status(
                            summary: status("12:00:01 eth1 +10.0.1.7"), paused: false, deferred: 0,
                            lastChanges: ["eth1": "12:00:01 +10.0.1.7"])),
                    .reply(2, .plan),
                ]),
            Step(.control(3, .plan), at: 2, [.reply(3, .plan)]),
        ]),
    Case(
        name: "status waits out the coalescing window, and a pass that cannot read the kernel",
        settings: M.Settings(coalescing: 0.5, controlPath: "/run/c.sock"),
        steps: startup + [
            Step(.kernelEvents(route), at: 1, [.armTimer(at: 1.5)]),
            Step(.control(1, .status), at: 1.2, []),
            Step(.timerExpired, at: 1.5, [.reconcile(why: "events", reading: .everything)]),
            Step(
                .passFinished(.readFailed("EIO")), at: 1.5,
                [
                    .log(.error, "cannot read the kernel's state: EIO"), .notify(.status(readError)),
                    .reply(1, .status(summary: readError, paused: false, deferred: 0, lastChanges: [:])),
                    .armTimer(at: 2.5),
                ]),
        ]),
    Case(
        name: "while paused, status asked before the pass due is answered when it is skipped",
        steps: startup + [
            Step(.control(8, .flush), at: 2, [.flush(8)]),
            Step(
                .flushFinished(8, .success([])), at: 2, [.reply(8, .removed([])), .notify(.status(paused))]),
            Step(.kernelEvents(route), at: 3, [.passSoon]),
            Step(.control(9, .status), at: 3, []),
            Step(
                .passDue, at: 3,
                [.reply(9, .status(summary: paused, paused: true, deferred: 0, lastChanges: [:]))]),
        ]),
    Case(
        name: "a pass whose dumps were all interrupted tries again in 20 ms; READY and status wait for a whole one",
        steps: [
            Step(.start, [.reconcile(why: "startup", reading: .everything)]),
            Step(
                .passFinished(.interrupted("EAGAIN")), at: 0,
                [
                    .log(.debug, "the kernel's state changed during every dump (EAGAIN); again shortly"),
                    .armTimer(at: 0.02),
                ]),
            Step(.control(1, .status), at: 0.01, []),
            Step(.timerExpired, at: 0.02, [.passSoon]),
            Step(.passDue, at: 0.02, [.reconcile(why: "events", reading: .everything)]),
            Step(
                .passFinished(.completed(pass2)), at: 0.02,
                [
                    .checkPreflight, .log(.info, "ready", metadata: ["status": status2, "control": "/run/c.sock"]),
                    .notify(.ready(status: status2)),
                    .reply(1, .status(summary: status2, paused: false, deferred: 0, lastChanges: [:])),
                ]),
        ]),
    Case(
        name: "an nftables change brings a full pass",
        steps: startup + [
            Step(.nftablesChanged, at: 1, [.passSoon]),
            Step(.passDue, at: 1, [.reconcile(why: "events", reading: .everything)]),
        ]),
    Case(
        name: "udev done with a NIC brings a full pass (its properties may opt it out)",
        steps: startup + [
            Step(.deviceProcessed, at: 1, [.passSoon]),
            Step(.passDue, at: 1, [.reconcile(why: "events", reading: .everything)]),
        ]),
    Case(
        name: "without nftables announcements, a full pass every 10 s",
        settings: M.Settings(nftablesPollInterval: 10, controlPath: "/run/c.sock"),
        steps: [
            Step(.start, [.armTimer(at: 10), .reconcile(why: "startup", reading: .everything)]),
            Step(
                .passFinished(.completed(pass2)),
                [
                    .checkPreflight,
                    .log(.info, "ready", metadata: ["status": status2, "control": "/run/c.sock"]),
                    .notify(.ready(status: status2)),
                ]),
            Step(.timerExpired, at: 10, [.passSoon, .armTimer(at: 20)]),
            Step(.passDue, at: 10, [.reconcile(why: "events", reading: .everything)]),
            Step(
                .passFinished(.completed(M.PassSummary(nics: 2, rules: 3, retryAt: 12, preflightKey: [eth1]))), at: 10,
                [.armTimer(at: 12)]),
            Step(.timerExpired, at: 12, [.passSoon, .armTimer(at: 20)]),
        ]),
    Case(
        name: "a coalescing window delays the first pass and gathers what comes within it",
        settings: M.Settings(coalescing: 0.002, controlPath: "/run/c.sock"),
        steps: startup + [
            Step(.kernelEvents(address), at: 1, [.armTimer(at: 1.002)]),
            Step(.kernelEvents(route), at: 1.001, []),
            Step(.timerExpired, at: 1.002, [.reconcile(why: "events", reading: .everything)]),
            Step(.passFinished(.completed(pass2)), at: 1.003, [.notify(.status(status("12:00:01 eth1 +10.0.1.7")))]),
        ]),
    Case(
        name: "SIGTERM: STOPPING, a log line, success; later requests are told it is stopping",
        steps: startup + [
            Step(
                .stopRequested, at: 1,
                [
                    .disarmTimer, .log(.info, "stopping; nicroute's rules and routes stay in place"),
                    .notify(.stopping),
                    .exit(success: true),
                ]),
            Step(.kernelEvents(route), at: 1, []),
            Step(.control(3, .status), at: 1, [.reply(3, .failure(ControlError(.failed, "nicrouted is stopping")))]),
        ]),
    Case(
        name: "the subscription failed: the daemon exits with a failure so that systemd restarts it",
        steps: startup + [
            Step(
                .subscriptionFailed, at: 1,
                [
                    .disarmTimer,
                    .log(.critical, "the netlink event subscription failed; exiting so that the service is restarted"),
                    .notify(.stopping), .exit(success: false),
                ])
        ]),
    Case(
        name: "preflight findings: checked when the NICs' key changes, each logged once while it holds",
        steps: [
            Step(.start, [.reconcile(why: "startup", reading: .everything)]),
            Step(
                .passFinished(.completed(pass2)),
                [
                    .checkPreflight,
                    .log(.info, "ready", metadata: ["status": status2, "control": "/run/c.sock"]),
                    .notify(.ready(status: status2)),
                ]),
            Step(.preflightFindings(["b", "a"]), [.log(.warning, "preflight: a"), .log(.warning, "preflight: b")]),
        ] + eventPass(route, reading: .everything) + [
            Step(.kernelEvents(route), at: 2, [.passSoon]),
            Step(.passDue, at: 2, [.reconcile(why: "events", reading: .everything)]),
            Step(
                .passFinished(.completed(M.PassSummary(nics: 2, rules: 3, preflightKey: []))), at: 2, [.checkPreflight]),
            Step(.preflightFindings(["a", "c"]), at: 2, [.log(.warning, "preflight: c")]),
            Step(.kernelEvents(route), at: 3, [.passSoon]),
            Step(.passDue, at: 3, [.reconcile(why: "events", reading: .everything)]),
            Step(.passFinished(.completed(pass2)), at: 3, [.checkPreflight]),
            Step(.preflightFindings(["b"]), at: 3, [.log(.warning, "preflight: b")]),
        ]),
]

@Suite struct DaemonMachineTests {
    /// Interrupted dumps in a row for about a second count as a failure to read (and the count
    /// starts again after a whole pass).
    @Test func aStormThatNeverLetsADumpThroughIsAFailureToRead() {
        var machine = DaemonMachine(settings: M.Settings())
        _ = machine.handle(.start, now: 0)
        var now = 0.0
        for _ in 1..<M.interruptedLimit {
            let actions = machine.handle(.passFinished(.interrupted("EAGAIN")), now: now)
            #expect(!actions.contains { $0.isReady })
            now += M.interruptedRetry
            _ = machine.handle(.timerExpired, now: now)
            _ = machine.handle(.passDue, now: now)
        }
        let last = machine.handle(.passFinished(.interrupted("EAGAIN")), now: now)
        #expect(last.contains(.log(.error, "cannot read the kernel's state: EAGAIN")))
        #expect(last.contains { $0.isReady })
        #expect(machine.interruptions == 0)
    }

    @Test(arguments: cases)
    fileprivate func behaves(_ c: Case) {
        var machine = DaemonMachine(settings: c.settings)
        for (i, step) in c.steps.enumerated() {
            let actions = machine.handle(step.input, now: step.now)
            #expect(actions == step.expect, "step \(i): \(step.input)")
        }
    }

    /// The timer change always comes before the first action whose result is fed back: what
    /// that result brings may move the timer again, and must come last.
    @Test func theTimerChangeComesBeforeAResult() {
        var machine = DaemonMachine(settings: M.Settings(nftablesPollInterval: 10))
        let actions = machine.handle(.start, now: 0)
        #expect(actions.firstIndex(of: .armTimer(at: 10))! < actions.firstIndex(where: \.producesResult)!)
    }
}
