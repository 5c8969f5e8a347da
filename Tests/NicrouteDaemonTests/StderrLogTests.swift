import Logging
import Testing

@testable import NicrouteDaemon

/// The stderr log line says each thing once: the fields a change's `ip` command already spells
/// out stay for the journal.
@Suite("stderr log lines")
struct StderrLogTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var message: String
        var metadata: [String: String]
        var expected: String
        var testDescription: String { expected }
    }

    static let cases: [Case] = [
        // A change: the command is the message; link, table and action are words of it.
        Case(
            message: "ip -4 route add default via 20.20.20.1 dev eth1 table 10001 proto nicroute",
            metadata: [
                "command": "ip -4 route add default via 20.20.20.1 dev eth1 table 10001 proto nicroute",
                "link": "eth1", "table": "10001", "action": "add",
            ],
            expected: "notice nicrouted: ip -4 route add default via 20.20.20.1 dev eth1 table 10001 proto nicroute"),
        // A rule names no interface: the link stays.
        Case(
            message: "ip -4 rule add priority 10001 from 20.20.20.16 lookup 10001 proto nicroute",
            metadata: [
                "command": "ip -4 rule add priority 10001 from 20.20.20.16 lookup 10001 proto nicroute",
                "link": "eth1", "table": "10001", "action": "add",
            ],
            expected:
                "notice nicrouted: ip -4 rule add priority 10001 from 20.20.20.16 lookup 10001 proto nicroute link=eth1"
        ),
        // A failure: the command is not in the message, so it follows it.
        Case(
            message: "change failed: add rule: File exists (errno 17)",
            metadata: ["command": "ip -4 rule add priority 5 from 10.0.0.1 lookup 5 proto nicroute"],
            expected:
                "notice nicrouted: change failed: add rule: File exists (errno 17) command=ip -4 rule add priority 5 from 10.0.0.1 lookup 5 proto nicroute"
        ),
        // Fields that are not in the message keep their key=value form, sorted (the benchmark reads them).
        Case(
            message: "reconciled", metadata: ["why": "address", "changes": "0", "duration_us": "812"],
            expected: "notice nicrouted: reconciled changes=0 duration_us=812 why=address"),
    ]

    @Test(arguments: cases)
    func line(_ c: Case) {
        let metadata = c.metadata.mapValues { Logger.MetadataValue.string($0) }
        #expect(
            StderrLogHandler.format(level: .notice, label: "nicrouted", message: c.message, metadata: metadata)
                == c.expected)
    }
}
