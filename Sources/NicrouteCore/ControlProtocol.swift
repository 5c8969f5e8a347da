import FoundationEssentials

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
        JSONCoding.encode(Wire(version: ControlProtocol.version, command: command.rawValue)) + [UInt8(ascii: "\n")]
    }

    /// Decodes one request line (with or without its newline). Exact: `version` first (another
    /// version may carry other fields), then no key but `version` and `command`, each of its type.
    /// - Throws: `ControlError` with `malformed-request` (naming the key and what is wrong),
    ///   `unsupported-version`, `unknown-command` or `request-too-large`.
    public static func decode(_ bytes: some Collection<UInt8>) throws(ControlError) -> ControlRequest {
        guard bytes.count <= ControlProtocol.maximumRequestSize else {
            throw ControlError(.requestTooLarge, "request longer than \(ControlProtocol.maximumRequestSize) bytes")
        }
        do {
            return try JSONCoding.decode(ControlRequest.self, from: bytes)
        } catch let error as ControlError {
            throw error
        } catch {
            throw ControlError(.malformedRequest, "malformed request: \(error)")
        }
    }

    /// The request's JSON form.
    private struct Wire: Encodable {
        var version: Int
        var command: String
    }
}

extension ControlRequest: Decodable {
    private enum CodingKeys: String, CodingKey {
        case version, command
    }

    public init(from decoder: any Decoder) throws {
        let fields = try decoder.container(keyedBy: CodingKeys.self)
        let version = try fields.decodeInteger(Int.self, forKey: .version)
        guard version == ControlProtocol.version else {
            throw ControlError(
                .unsupportedVersion,
                "protocol version \(version) is not supported (this daemon speaks \(ControlProtocol.version))")
        }
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let name = try fields.decode(String.self, forKey: .command)
        guard let command = ControlCommand(rawValue: name) else {
            throw ControlError(
                .unknownCommand,
                "unknown command '\(name)' (expected \(ControlCommand.allCases.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        self.command = command
    }
}

/// A command and the type its result is read as: what a client asks. Each command's is here
/// (`.status`, `.plan`, `.reconfigure`, `.flush`, in ControlResults.swift), so that a client
/// sends a command and gets its answer back typed, decoded once from the daemon's bytes.
public struct ControlCall<Output: Decodable>: Sendable {
    public var command: ControlCommand

    /// `command`, its result read as `Output` (a test may read any result as a `JSONValue`).
    public init(_ command: ControlCommand, as output: Output.Type = Output.self) {
        self.command = command
    }

    /// The request as sent: one JSON line.
    public func encoded() -> [UInt8] { ControlRequest(command).encoded() }

    /// Decodes the daemon's answer to this call: its result, or the error the daemon answered.
    /// Exact, like a request: in the envelope and in the result, an unknown key, a missing one or
    /// one of the wrong type is an error. An error code this client does not know reads as
    /// `failed` (with the daemon's message): the user still sees what went wrong.
    /// - Throws: `ControlError(.malformedRequest)` when the answer is not a response
    ///   (`the daemon's answer is not a version 1 response: ok: missing`) or its result is not
    ///   this command's (`the daemon's answer is not a status result: nics[0].table: ...`, the
    ///   path told from the result).
    public func decode(_ bytes: some Collection<UInt8>) throws(ControlError) -> Result<Output, ControlError> {
        guard bytes.count <= ControlProtocol.maximumResponseSize else {
            throw ControlError(
                .malformedRequest, "the daemon's answer is longer than \(ControlProtocol.maximumResponseSize) bytes")
        }
        let wire: ResponseWire<Output>
        do { wire = try JSONCoding.decode(ResponseWire<Output>.self, from: bytes) } catch let error as ResultError {
            let reason =
                (error.underlying as? DecodingError).map { JSONDecodeError($0, in: Data(bytes), depth: 1).description }
                ?? "\(error.underlying)"
            throw ControlError(.malformedRequest, "the daemon's answer is not a \(command.rawValue) result: \(reason)")
        } catch {
            throw ControlError(
                .malformedRequest, "the daemon's answer is not a version \(ControlProtocol.version) response: \(error)")
        }
        if let result = wire.result { return .success(result) }
        let error = wire.error!  // the wire's decoder requires one of the two
        return .failure(ControlError(ControlError.Code(rawValue: error.code) ?? .failed, error.message))
    }
}

/// A command's result as the daemon sends it: any value with a JSON form (`StatusReport`,
/// `PlanOutput`, ...), written into the response as it is when the response is encoded.
public struct ControlResult: Hashable, Sendable, CustomStringConvertible {
    let value: any Encodable & Sendable

    public init(_ value: some Encodable & Sendable) { self.value = value }

    /// Its JSON text, as the response carries it.
    public var description: String { JSONCoding.encodeString(value) }

    /// Results are equal when their JSON texts are.
    public static func == (a: ControlResult, b: ControlResult) -> Bool {
        JSONCoding.encode(a.value) == JSONCoding.encode(b.value)
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(JSONCoding.encode(value)) }
}

/// A response, as the daemon sends it: a result or an error. The client reads it back through
/// the `ControlCall` it made, its result typed.
public enum ControlResponse: Hashable, Sendable {
    case success(ControlResult)
    case failure(ControlError)

    /// The response as sent: one JSON line.
    public func encoded() -> [UInt8] {
        switch self {
        case .success(let result): Self.successLine(result.value)
        case .failure(let error):
            JSONCoding.encode(
                ResponseWire<JSONValue>(ok: false, error: .init(code: error.code.rawValue, message: error.message)))
                + [UInt8(ascii: "\n")]
        }
    }

    private static func successLine(_ result: some Encodable) -> [UInt8] {
        JSONCoding.encode(ResponseWire(ok: true, result: result)) + [UInt8(ascii: "\n")]
    }
}

/// What went wrong inside a response's `result`: told apart from what is wrong with the
/// envelope around it.
private struct ResultError: Error {
    var underlying: any Error
}

/// A response's JSON form: `result` (a `Payload`) when `ok`, else `error`.
private struct ResponseWire<Payload> {
    var version = ControlProtocol.version
    var ok: Bool
    var result: Payload?
    var error: ErrorBody?

    struct ErrorBody: Codable {
        var code: String
        var message: String

        private enum CodingKeys: String, CodingKey {
            case code, message
        }

        init(code: String, message: String) {
            self.code = code
            self.message = message
        }

        init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let fields = try decoder.container(keyedBy: CodingKeys.self)
            code = try fields.decode(String.self, forKey: .code)
            message = try fields.decode(String.self, forKey: .message)
        }
    }

    enum CodingKeys: String, CodingKey {
        case version, ok, result, error
    }

    init(ok: Bool, result: Payload? = nil, error: ErrorBody? = nil) {
        self.ok = ok
        self.result = result
        self.error = error
    }
}

extension ResponseWire: Encodable where Payload: Encodable {
    func encode(to encoder: any Encoder) throws {
        var fields = encoder.container(keyedBy: CodingKeys.self)
        try fields.encode(version, forKey: .version)
        try fields.encode(ok, forKey: .ok)
        // A result that is null (JSONValue.null, an absent optional) is written as null, not
        // left out.
        if let result { try fields.encode(result, forKey: .result) }
        try fields.encodeIfPresent(error, forKey: .error)
    }
}

extension ResponseWire: Decodable where Payload: Decodable {
    init(from decoder: any Decoder) throws {
        let fields = try decoder.container(keyedBy: CodingKeys.self)
        version = try fields.decodeInteger(Int.self, forKey: .version)
        guard version == ControlProtocol.version else {
            throw DecodingError.dataCorruptedError(
                forKey: .version, in: fields,
                debugDescription: "expected \(ControlProtocol.version), found \(version)")
        }
        try decoder.rejectUnknownKeys(CodingKeys.self)
        ok = try fields.decode(Bool.self, forKey: .ok)
        if ok {
            guard !fields.contains(.error) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .error, in: fields, debugDescription: "an error in a successful response")
            }
            // `result` must be there (it may be null, when the command's result type allows it);
            // what is wrong inside it is the result's error, not the envelope's.
            guard fields.contains(.result) else {
                throw DecodingError.keyNotFound(
                    CodingKeys.result, .init(codingPath: fields.codingPath, debugDescription: "missing"))
            }
            do { result = try fields.decode(Payload.self, forKey: .result) } catch {
                throw ResultError(underlying: error)
            }
        } else {
            error = try fields.decode(ErrorBody.self, forKey: .error)
            guard !fields.contains(.result) else {
                throw DecodingError.dataCorruptedError(
                    forKey: .result, in: fields, debugDescription: "a result in a failed response")
            }
        }
    }
}
