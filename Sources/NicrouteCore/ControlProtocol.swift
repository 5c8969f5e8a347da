/// The control protocol between `nicroutectl` and `nicrouted`, version 1 (docs/control-protocol.md).
///
/// One request per connection on a Unix stream socket: the client sends one JSON object on
/// one line, the daemon answers with one JSON object on one line and closes.
///
///     -> {"version":1,"command":"status"}
///     <- {"version":1,"ok":true,"result":{...}}
///     <- {"version":1,"ok":false,"error":{"code":"permission-denied","message":"..."}}
public enum ControlProtocol {
    public static let version = 1
    /// The largest request the daemon reads; longer ones are refused.
    public static let maximumRequestSize = 4096
    /// The largest response a client accepts.
    public static let maximumResponseSize = 4 << 20
}

/// A control command.
public enum ControlCommand: String, CaseIterable, Sendable {
    /// Managed NICs, gateways, tables, rules, findings. Anyone may ask.
    case status
    /// The changes a reconcile would make, as `ip` commands. Anyone may ask.
    case plan
    /// Reload the configuration and reconcile now. Root or the control group only.
    case reconfigure
    /// Remove everything nicroute owns and pause until the next reconfigure. Root or the
    /// control group only.
    case flush

    /// True for commands that change the kernel or the daemon.
    public var isPrivileged: Bool { self == .reconfigure || self == .flush }
}

/// Why a request failed.
public struct ControlError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        case malformedRequest = "malformed-request"
        case unsupportedVersion = "unsupported-version"
        case unknownCommand = "unknown-command"
        case requestTooLarge = "request-too-large"
        case timeout
        case permissionDenied = "permission-denied"
        case busy
        case failed
        /// The configuration was refused (reconfigure); the daemon keeps its last good one.
        case invalidConfiguration = "invalid-configuration"
    }
    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(message) (\(code.rawValue))" }
}

/// A decoded request.
public struct ControlRequest: Hashable, Sendable {
    public var command: ControlCommand

    public init(_ command: ControlCommand) { self.command = command }

    /// The request as sent: one JSON line.
    public func encoded() -> [UInt8] {
        let json: JSONValue = [
            "version": .number(Double(ControlProtocol.version)), "command": .string(command.rawValue),
        ]
        return Array((json.serialized() + "\n").utf8)
    }

    /// Decodes one request line (with or without its newline).
    /// - Throws: `ControlError` with `malformed-request`, `unsupported-version`,
    ///   `unknown-command` or `request-too-large`.
    public static func decode(_ bytes: some Collection<UInt8>) throws(ControlError) -> ControlRequest {
        guard bytes.count <= ControlProtocol.maximumRequestSize else {
            throw ControlError(.requestTooLarge, "request longer than \(ControlProtocol.maximumRequestSize) bytes")
        }
        var line = Array(bytes)
        if line.last == UInt8(ascii: "\n") { line.removeLast() }
        let json: JSONValue
        do { json = try JSONValue.parse(utf8: line, maxDepth: 8) } catch {
            throw ControlError(.malformedRequest, "request is not valid JSON: \(error)")
        }
        guard case .object(let fields) = json else {
            throw ControlError(.malformedRequest, "request is not a JSON object")
        }
        guard let version = fields["version"]?.intValue else {
            throw ControlError(.malformedRequest, "request has no integer \"version\"")
        }
        guard version == ControlProtocol.version else {
            throw ControlError(
                .unsupportedVersion,
                "protocol version \(version) is not supported (this daemon speaks \(ControlProtocol.version))")
        }
        guard let name = fields["command"]?.stringValue else {
            throw ControlError(.malformedRequest, "request has no string \"command\"")
        }
        guard let command = ControlCommand(rawValue: name) else {
            throw ControlError(
                .unknownCommand,
                "unknown command '\(name)' (expected \(ControlCommand.allCases.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        return ControlRequest(command)
    }
}

/// A response: a result or an error.
public enum ControlResponse: Hashable, Sendable {
    case success(JSONValue)
    case failure(ControlError)

    /// The response as sent: one JSON line.
    public func encoded() -> [UInt8] {
        var json: [String: JSONValue] = ["version": .number(Double(ControlProtocol.version))]
        switch self {
        case .success(let result):
            json["ok"] = true
            json["result"] = result
        case .failure(let error):
            json["ok"] = false
            json["error"] = ["code": .string(error.code.rawValue), "message": .string(error.message)]
        }
        return Array((JSONValue.object(json).serialized() + "\n").utf8)
    }

    /// Decodes a response line.
    /// - Throws: `ControlError(.malformedRequest)` when the daemon's answer is not a response.
    public static func decode(_ bytes: some Collection<UInt8>) throws(ControlError) -> ControlResponse {
        let json: JSONValue
        do { json = try JSONValue.parse(utf8: bytes, maxLength: ControlProtocol.maximumResponseSize) } catch {
            throw ControlError(.malformedRequest, "the daemon's answer is not valid JSON: \(error)")
        }
        guard json["version"]?.intValue == ControlProtocol.version, let ok = json["ok"]?.boolValue else {
            throw ControlError(
                .malformedRequest, "the daemon's answer is not a version \(ControlProtocol.version) response")
        }
        if ok { return .success(json["result"] ?? .null) }
        let code = json["error"]?["code"]?.stringValue.flatMap(ControlError.Code.init(rawValue:)) ?? .failed
        return .failure(ControlError(code, json["error"]?["message"]?.stringValue ?? "unknown error"))
    }
}
