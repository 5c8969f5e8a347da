import FoundationEssentials
import Testing

@testable import NicrouteCore

// The client's side of the control protocol: each command's answer read back as the command's
// own result type (`ControlCall.decode`), from the bytes the daemon's side encodes, in one
// decode; an answer that is not the command's is refused naming the key. And the daemon's
// encoding is the wire format as documented, byte for byte.

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// A successful answer carrying `result` (JSON text) as it is.
private func answer(_ result: String) -> [UInt8] { bytes(#"{"ok":true,"result":"# + result + #","version":1}"# + "\n") }

/// The message of the error decoding `bytes` as `call`'s answer throws; nil when none is thrown.
private func refusal<Output>(_ call: ControlCall<Output>, _ bytes: [UInt8]) -> ControlError? {
    do {
        _ = try call.decode(bytes)
        return nil
    } catch {
        return error
    }
}

@Suite struct ControlCallTests {
    static let plan = PlanOutput(
        changes: ["ip -4 rule add priority 10001 from 20.20.20.16 lookup 10001 proto nicroute"],
        conflicts: ["route inet 10001 0.0.0.0/0: installed by boot"])
    static let apply = ApplyOutput(applied: ["ip -4 route add default via 20.20.20.1"], failed: ["f: EEXIST"], nics: 2)
    static let flush = FlushOutput(
        removed: ["ip -4 rule del priority 10001", "nft delete table inet nicroute"],
        problems: ["eth1: src_valid_mark stays 1 (cannot write: Read-only file system)"])

    /// Each command's call sends the command and reads its own result type, the one the
    /// daemon's side sends: what the daemon encodes comes back equal.
    @Test(arguments: [false, true])
    func eachCommandReadsItsOwnResult(appliedFirst: Bool) throws {
        let report = StatusReportTests.report(appliedFirst: appliedFirst)
        #expect(try ControlCall.status.decode(ControlResponse.success(report.json).encoded()) == .success(report))
        #expect(try ControlCall.plan.decode(ControlResponse.success(Self.plan.json).encoded()) == .success(Self.plan))
        #expect(
            try ControlCall.reconfigure.decode(ControlResponse.success(Self.apply.json).encoded())
                == .success(Self.apply))
        #expect(
            try ControlCall.flush.decode(ControlResponse.success(Self.flush.json).encoded()) == .success(Self.flush))
        #expect(
            [
                ControlCall.status.command, ControlCall.plan.command, ControlCall.reconfigure.command,
                ControlCall.flush.command,
            ] == ControlCommand.allCases)
    }

    /// The request each call sends is the command's request line.
    @Test(arguments: ControlCommand.allCases)
    func aCallSendsItsCommand(_ command: ControlCommand) throws {
        #expect(ControlCall(command, as: JSONValue.self).encoded() == ControlRequest(command).encoded())
        #expect(try ControlRequest.decode(ControlCall(command, as: JSONValue.self).encoded()).command == command)
    }

    /// The daemon's error reads as the same error, whatever the command's result type.
    @Test(arguments: ControlError.Code.allCases)
    func theDaemonsErrorsReadAsErrors(_ code: ControlError.Code) throws {
        let error = ControlError(code, "why: \"quoted\" é")
        let line = ControlResponse.failure(error).encoded()
        #expect(try ControlCall.status.decode(line) == .failure(error))
        #expect(try ControlCall.plan.decode(line) == .failure(error))
        #expect(try ControlCall.reconfigure.decode(line) == .failure(error))
        #expect(try ControlCall.flush.decode(line) == .failure(error))
    }

    /// The daemon's encoding, result and envelope in one pass, is byte for byte the wire form the
    /// protocol has had: the same text as the result first turned into a JSONValue, then put
    /// into the envelope (how the daemon encoded it before), keys sorted.
    @Test func theDaemonsEncodingIsTheDocumentedWireForm() throws {
        let report = StatusReportTests.report(appliedFirst: true)
        func viaValue(_ result: some Encodable) throws -> [UInt8] {
            let value = try JSONCoding.decode(JSONValue.self, from: JSONCoding.encode(result))
            return JSONCoding.encode(["version": 1, "ok": true, "result": value] as JSONValue) + [UInt8(ascii: "\n")]
        }
        #expect(try ControlResponse.success(report.json).encoded() == viaValue(report))
        #expect(try ControlResponse.success(Self.plan.json).encoded() == viaValue(Self.plan))
        #expect(try ControlResponse.success(Self.apply.json).encoded() == viaValue(Self.apply))
        #expect(try ControlResponse.success(Self.flush.json).encoded() == viaValue(Self.flush))
        #expect(
            String(decoding: ControlResponse.success(Self.apply.json).encoded(), as: UTF8.self)
                == #"{"ok":true,"result":{"applied":["ip -4 route add default via 20.20.20.1"],"failed":["f: EEXIST"],"#
                + #""nics":2},"version":1}"# + "\n")
        #expect(
            String(
                decoding: ControlResponse.success(PlanOutput(changes: [], conflicts: []).json).encoded(), as: UTF8.self)
                == #"{"ok":true,"result":{"changes":[],"conflicts":[]},"version":1}"# + "\n")
        // The documented example of a status result decodes as one.
        #expect(try ControlCall.status.decode(answer(StatusReportTests.reportWithOneNICText)).get().nics.count == 1)
    }

    /// An answer whose result is not the command's is refused, naming the command and the
    /// key, its path told from the result.
    @Test(arguments: [
        // Another command's result.
        (
            "plan", #"{"applied":[],"failed":[],"nics":2}"#,
            "the daemon's answer is not a plan result: applied: unknown key"
        ),
        ("flush", #"{"changes":[],"conflicts":[]}"#, "the daemon's answer is not a flush result: changes: unknown key"),
        ("reconfigure", #"{"removed":[]}"#, "the daemon's answer is not a reconfigure result: removed: unknown key"),
        (
            "status", #"{"changes":[],"conflicts":[]}"#,
            "the daemon's answer is not a status result: changes: unknown key"
        ),
        // No result where one is needed; a result of another JSON type.
        ("status", "null", "the daemon's answer is not a status result: expected an object, found null"),
        ("plan", "[]", "the daemon's answer is not a plan result: expected an object, found an array"),
        ("flush", #""all""#, "the daemon's answer is not a flush result: expected an object, found a string"),
        // A key unknown, missing, of the wrong type; a value out of range.
        (
            "plan", #"{"changes":[],"conflicts":[],"extra":1}"#,
            "the daemon's answer is not a plan result: extra: unknown key"
        ),
        (
            "plan", #"{"changes":[1],"conflicts":[]}"#,
            "the daemon's answer is not a plan result: changes[0]: expected a string, found a number"
        ),
        ("plan", #"{"changes":[]}"#, "the daemon's answer is not a plan result: conflicts: missing"),
        (
            "reconfigure", #"{"applied":[],"failed":[],"nics":-1}"#,
            "the daemon's answer is not a reconfigure result: nics: expected an integer in 0...4294967295, found -1"
        ),
        (
            "reconfigure", #"{"applied":[],"failed":[],"nics":"2"}"#,
            "the daemon's answer is not a reconfigure result: nics: expected a number, found a string"
        ),
        (
            "reconfigure", #"{"applied":[],"failed":[],"nics":2,"skipped":[]}"#,
            "the daemon's answer is not a reconfigure result: skipped: unknown key"
        ),
        (
            "flush", #"{"removed":"all"}"#,
            "the daemon's answer is not a flush result: removed: expected an array, found a string"
        ),
        ("flush", #"{"removed":[],"kept":[]}"#, "the daemon's answer is not a flush result: kept: unknown key"),
        (
            "flush", #"{"removed":[],"problems":[1]}"#,
            "the daemon's answer is not a flush result: problems[0]: expected a string, found a number"
        ),
    ])
    func aResultNotTheCommandsIsRefusedNamingTheKey(_ command: String, _ result: String, _ message: String) {
        let line = answer(result)
        let error: ControlError? =
            switch ControlCommand(rawValue: command)! {
            case .status: refusal(.status, line)
            case .plan: refusal(.plan, line)
            case .reconfigure: refusal(.reconfigure, line)
            case .flush: refusal(.flush, line)
            }
        #expect(error?.code == .malformedRequest)
        #expect(error?.message == message)
    }

    /// What is wrong with the envelope is the envelope's error, even when the result is wrong
    /// too; it names the key.
    @Test(arguments: [
        (#"{"version":1,"ok":true}"#, "result: missing"),
        (
            #"{"version":1,"ok":true,"result":1,"error":{"code":"busy","message":"m"}}"#,
            "error: an error in a successful response"
        ),
        (#"{"version":1,"ok":true,"result":[],"extra":1}"#, "extra: unknown key"),
        (#"{"version":2,"ok":true,"result":[]}"#, "version: expected 1, found 2"),
        (#"{"version":1,"ok":"yes","result":{}}"#, "ok: expected a boolean, found a string"),
        (#"{"version":1,"ok":false,"result":{}}"#, "error: missing"),
    ])
    func envelopeErrorsAreTheEnvelopes(_ text: String, _ reason: String) {
        let error = refusal(.plan, bytes(text))
        #expect(error?.code == .malformedRequest)
        #expect(error?.message == "the daemon's answer is not a version 1 response: " + reason)
    }

    /// A daemon before `flush` reported problems leaves the key out: none.
    @Test func anOlderDaemonsFlushAnswerReadsWithoutProblems() throws {
        #expect(
            try ControlCall.flush.decode(answer(#"{"removed":["x"]}"#)) == .success(FlushOutput(removed: ["x"])))
    }

    /// A status answer from a daemon older than forwarded connections: no `forwarding`, read as
    /// "not reported".
    @Test func anOlderDaemonsStatusAnswerReadsWithoutForwarding() throws {
        let text = StatusReportTests.reportWithOneNICText.replacing(
            #""forwarding":{"marks":[],"mask":"0x0","reason":"not reported","state":"off"},"#, with: "")
        #expect(try ControlCall.status.decode(answer(text)).get().forwarding == .unknown)
    }
}
