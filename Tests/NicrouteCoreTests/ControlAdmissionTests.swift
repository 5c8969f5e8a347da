import NicrouteCore
import Testing

/// The control socket's slots, shared out by who is asking (`ControlAdmission`).
@Suite struct ControlAdmissionTests {
    /// One step: a caller (uid, trusted) arrives (`+`) or leaves (`-`).
    struct Step: Sendable {
        var uid: UInt32
        var trusted: Bool
        var arrives: Bool
        static func comes(_ uid: UInt32, trusted: Bool = false) -> Step {
            Step(uid: uid, trusted: trusted, arrives: true)
        }
        static func goes(_ uid: UInt32, trusted: Bool = false) -> Step {
            Step(uid: uid, trusted: trusted, arrives: false)
        }
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var capacity: Int
        var steps: [Step]
        /// For each arrival, in order: admitted or not.
        var admitted: [Bool]
        var testDescription: String { name }
    }

    static let root: UInt32 = 0
    static let nobody: UInt32 = 65534

    static let cases: [Case] = [
        Case(
            name: "one user holding idle connections gets its share, and root still gets in", capacity: 32,
            steps: Array(repeating: .comes(nobody), count: 6) + [.comes(root, trusted: true)],
            admitted: [true, true, true, true, false, false, true]),
        Case(
            name: "many unprivileged users fill the shared slots; the reserved ones stay root's", capacity: 8,
            steps: (1...7).map { .comes(UInt32(1000 + $0)) } + [
                .comes(root, trusted: true), .comes(root, trusted: true),
            ],
            admitted: [true, true, true, true, true, true, false, true, true]),
        Case(
            name: "trusted callers may take every slot, the reserved ones too", capacity: 4,
            steps: Array(repeating: .comes(root, trusted: true), count: 5),
            admitted: [true, true, true, true, false]),
        Case(
            name: "a slot given back can be taken again", capacity: 16,
            steps: [.comes(nobody), .comes(nobody), .comes(nobody), .goes(nobody), .comes(nobody)],
            admitted: [true, true, false, true]),
        Case(
            name: "a full socket turns everyone away, root too", capacity: 2,
            steps: [
                .comes(root, trusted: true), .comes(root, trusted: true), .comes(nobody), .comes(root, trusted: true),
            ],
            admitted: [true, true, false, false]),
        Case(
            name: "leaving without having come changes nothing", capacity: 16,
            steps: [.goes(nobody), .goes(nobody), .comes(nobody), .comes(nobody), .comes(nobody)],
            admitted: [true, true, false]),
    ]

    @Test(arguments: cases)
    func sharesOutTheSlots(_ c: Case) {
        var admission = ControlAdmission(capacity: c.capacity)
        var verdicts: [Bool] = []
        for step in c.steps {
            if step.arrives {
                verdicts.append(admission.admit(uid: step.uid, trusted: step.trusted) == .admitted)
            } else {
                admission.release(uid: step.uid, trusted: step.trusted)
            }
        }
        #expect(verdicts == c.admitted)
    }

    @Test func defaultsAndTheBusyReason() {
        let admission = ControlAdmission()
        #expect(admission.capacity == 32 && admission.reserved == 8 && admission.perUser == 4)
        var a = ControlAdmission(capacity: 8)
        _ = a.admit(uid: 7, trusted: false)
        #expect(
            a.admit(uid: 7, trusted: false)
                == .busy("too many control connections from uid 7 (at most 1 at once); try again"))
        #expect(a.count == 1)
    }
}
