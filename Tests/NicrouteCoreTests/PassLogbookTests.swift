import Testing

@testable import NicrouteCore

// What reconcile passes log and when they retry, pass after pass: each problem once at its
// level while it lasts, again after it went away and came back; back-offs that double and reset.

private typealias E = PassLogbook.Entry

private let refused = PassLogbook.Failure(
    object: "rule 10.0.1.7", error: "Operation not permitted", command: "ip rule add from 10.0.1.7 table 1001")
private let full = PassLogbook.UnwrittenFile(errno: 28, reason: "No space left on device", file: "slots")
private let readOnly = PassLogbook.UnwrittenFile(errno: 30, reason: "Read-only file system", file: "forward-marks")

@Suite struct PassLogbookTests {
    @Test func aRefusedChangeIsAnErrorOnceThenDebugUntilItSucceeds() {
        var book = PassLogbook(stateDirectory: "/var/lib/nicroute")
        let error = E(.error, "change failed: Operation not permitted", metadata: ["command": refused.command])
        let again = E(.debug, "change failed again: Operation not permitted", metadata: ["command": refused.command])
        #expect(book.changesFailed([refused]) == [error])
        _ = book.review(.init(), changesFailed: true, now: 0)
        #expect(book.changesFailed([refused]) == [again])
        _ = book.review(.init(), changesFailed: true, now: 2)
        // It succeeded once: the next failure is news again.
        #expect(book.changesFailed([]) == [])
        _ = book.review(.init(), changesFailed: false, now: 4)
        #expect(book.changesFailed([refused]) == [error])
        // Another error for the same object is news too.
        var other = refused
        other.error = "No such device"
        #expect(book.changesFailed([other]).map(\.level) == [.error])
    }

    @Test func failedChangesRetryAfter2Then4Then8SecondsAtMost60AndStartAgainOnceTheyPass() {
        var book = PassLogbook(stateDirectory: "/s")
        var retries: [Double?] = []
        for now in [0.0, 10, 20, 30, 40, 50, 60] {
            _ = book.changesFailed([refused])
            retries.append(book.review(.init(), changesFailed: true, now: now).retryAt)
        }
        #expect(retries == [2, 14, 28, 46, 72, 110, 120])
        _ = book.changesFailed([])
        #expect(book.review(.init(), changesFailed: false, now: 70).retryAt == nil)
        _ = book.changesFailed([refused])
        #expect(book.review(.init(), changesFailed: true, now: 80).retryAt == 82)
    }

    @Test func conflictsAreWarnedOnceWhileTheyLast() {
        var book = PassLogbook(stateDirectory: "/s")
        let outcome = PassLogbook.Outcome(conflicts: ["a", "b"])
        #expect(
            book.review(outcome, changesFailed: false, now: 0).entries == [
                E(.warning, "left alone: a"), E(.warning, "left alone: b"),
            ])
        #expect(book.review(outcome, changesFailed: false, now: 1).entries == [])
        #expect(book.review(.init(conflicts: ["b"]), changesFailed: false, now: 2).entries == [])
        #expect(book.review(outcome, changesFailed: false, now: 3).entries == [E(.warning, "left alone: a")])
    }

    @Test func forwardingProblemsAreLoggedOnceWhileTheyLast() {
        var book = PassLogbook(stateDirectory: "/s")
        let mark = PassLogbook.SourceValidMarkFailure(link: "eth1", error: "EROFS", note: "src_valid_mark not set")
        let outcome = PassLogbook.Outcome(forwardingUnavailable: "no libnftables", sourceValidMarkFailures: [mark])
        _ = book.changesFailed([])
        #expect(
            book.review(outcome, changesFailed: false, now: 0).entries == [
                E(.error, "forwarded connections: no libnftables"),
                E(
                    .warning, "forwarded connections: eth1: src_valid_mark not set",
                    metadata: ["link.name": "eth1", "action": "forward"]),
            ])
        _ = book.changesFailed([])
        #expect(book.review(outcome, changesFailed: false, now: 1).entries == [])
        // Set in between: a new failure is warned again.
        _ = book.changesFailed([])
        _ = book.review(.init(forwardingUnavailable: "no libnftables"), changesFailed: false, now: 2)
        _ = book.changesFailed([])
        #expect(book.review(outcome, changesFailed: false, now: 3).entries.map(\.level) == [.warning])
    }

    @Test func unwritableStateFilesAreWarnedOncePerCauseRetriedAndTheirRecoveryNoted() {
        var book = PassLogbook(stateDirectory: "/var/lib/nicroute")
        _ = book.changesFailed([])
        let first = book.review(.init(unwrittenFiles: [full, readOnly]), changesFailed: false, now: 0)
        #expect(
            first.entries == [
                E(
                    .warning,
                    "cannot write in the state directory /var/lib/nicroute: No space left on device; slots kept in memory, written again as soon as it can be",
                    metadata: ["errno": "28", "files": "slots"]),
                E(
                    .warning,
                    "cannot write in the state directory /var/lib/nicroute: Read-only file system; forward-marks kept in memory, written again as soon as it can be",
                    metadata: ["errno": "30", "files": "forward-marks"]),
            ])
        #expect(first.retryAt == 2)
        let second = book.review(.init(unwrittenFiles: [full]), changesFailed: false, now: 2)
        #expect(second.entries == [])
        #expect(second.retryAt == 6)
        let recovered = book.review(.init(), changesFailed: false, now: 6)
        #expect(recovered.entries == [E(.notice, "state directory /var/lib/nicroute: every file written again")])
        #expect(recovered.retryAt == nil)
        #expect(book.review(.init(), changesFailed: false, now: 7).entries == [])
    }

    @Test func theEarlierRetryWins() {
        var book = PassLogbook(stateDirectory: "/s")
        for now in [0.0, 2] {
            _ = book.changesFailed([refused])
            _ = book.review(.init(), changesFailed: true, now: now)
        }
        _ = book.changesFailed([refused])
        // Failures back off to 8 s by now; the state directory starts at 2 s.
        #expect(book.review(.init(unwrittenFiles: [full]), changesFailed: true, now: 10).retryAt == 12)
    }

    @Test func aSourceProblemIsWarnedOnceWhileItLasts() {
        var book = PassLogbook(stateDirectory: "/s")
        #expect(book.sourceProblems([]) == [])
        #expect(book.sourceProblems(["ignoring a: bad JSON"]) == [E(.warning, "gateway hints: ignoring a: bad JSON")])
        #expect(book.sourceProblems(["ignoring a: bad JSON"]) == [])
        #expect(
            book.sourceProblems(["ignoring a: bad JSON", "NM silent"]) == [E(.warning, "gateway hints: NM silent")])
        #expect(book.sourceProblems(["NM silent"]) == [])
        #expect(book.sourceProblems([]) == [])
        #expect(book.sourceProblems(["NM silent"]).count == 1)
    }

    @Test func undecodableObjectsAreAWarningForANewReasonAndDebugForTheSame() {
        var book = PassLogbook(stateDirectory: "/s")
        #expect(book.undecodable(count: 0, reason: nil) == nil)
        #expect(
            book.undecodable(count: 2, reason: "bad attribute")
                == E(
                    .warning, "skipped kernel objects that could not be decoded: bad attribute",
                    metadata: ["skipped": "2", "total": "2"]))
        #expect(book.undecodable(count: 2, reason: "bad attribute") == nil)
        #expect(book.undecodable(count: 5, reason: "bad attribute")?.level == .debug)
        #expect(book.undecodable(count: 5, reason: "bad attribute") == nil)
        #expect(book.undecodable(count: 6, reason: "short header")?.level == .warning)
    }

    @Test func heldBackReinstallsAreOneWarning() {
        #expect(PassLogbook.heldBack([]) == nil)
        let one = PassLogbook.HeldBack(command: "ip rule add a", reinstalls: 3, retryIn: 8)
        let two = PassLogbook.HeldBack(command: "ip rule add b", reinstalls: 5, retryIn: 4)
        #expect(
            PassLogbook.heldBack([one])
                == E(
                    .warning, "another tool keeps deleting nicroute's object; backing off",
                    metadata: ["object": "ip rule add a", "reinstalls": "3", "retry_in_s": "8"]))
        #expect(
            PassLogbook.heldBack([one, two])
                == E(
                    .warning, "another tool keeps deleting nicroute's 2 objects; backing off",
                    metadata: ["object": "ip rule add a", "reinstalls": "5", "retry_in_s": "4", "objects": "2"]))
    }
}
