// JSON through Codable and FoundationEssentials' JSONEncoder/JSONDecoder.
//
// FoundationEssentials, not Foundation: both executables already link FoundationEssentials
// (swift-argument-parser imports it), so its JSON coders cost no byte and no new dependency.
// Foundation proper would bring Foundation, FoundationInternationalization and _FoundationICU
// along (in this toolchain's shared libraries 9.0 + 3.8 + 40.8 MB, most of it ICU data, linked
// in with `--static-swift-stdlib`) for nothing nicroute uses. In the release build before this
// change, nicrouted already held 22,467 FoundationEssentials symbols, 522 of them JSONDecoder's.
//
// Strictness lives here, in one place each:
// - `Decoder.rejectUnknownKeys(_:)`: Codable ignores keys it does not know; nicroute's own
//   messages (control requests and responses, status) call this so that an unknown key is an
//   error naming its path. The config drive's `network_data.json` does not (see LeaseParser).
// - `KeyedDecodingContainer.decodeInteger(_:forKey:)`: JSONDecoder reports a negative, fractional
//   or out-of-range number for an integer type as "not valid JSON" without a coding path; this
//   decodes the number and checks the range itself, so the error names the key.
// - `JSONCoding.decode(_:from:)` turns every `DecodingError` into a `JSONDecodeError` whose text
//   names the path (`nics[0].table`) and what was wrong there.

import FoundationEssentials

/// Encoding and decoding of nicroute's JSON documents.
public enum JSONCoding {
    /// Compact text, object keys sorted, `/` not escaped: equal values always give the same text,
    /// and prefixes (`10.0.0.0/24`) read as they are.
    public static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // nicroute's types encode strings, integers, booleans and nulls only: nothing can fail.
        do { return Array(try encoder.encode(value)) } catch { fatalError("JSON encoding failed: \(error)") }
    }

    /// `encode(_:)` as a string.
    public static func encodeString(_ value: some Encodable) -> String {
        String(decoding: encode(value), as: UTF8.self)
    }

    /// Decodes one JSON text.
    /// - Throws: `JSONDecodeError` naming the coding path of the first problem and what it is;
    ///   an error thrown by a type's own `init(from:)` that is not a `DecodingError` (such as
    ///   `ControlError`) is passed through unchanged.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: some Collection<UInt8>) throws -> T {
        let data = Data(bytes)
        do {
            return try JSONDecoder().decode(type, from: data)
        } catch let error as DecodingError {
            throw JSONDecodeError(error, in: data)
        }
    }
}

/// A JSON document that does not decode: where (the coding path) and why.
public struct JSONDecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The coding path, as in `nics[0].table`; empty for the document itself.
    public var path: String
    /// What is wrong there.
    public var reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    /// `error`, met decoding `document`.
    /// - Parameter depth: how many keys of the error's coding path to leave out of `path`: the
    ///   error is told from the value that deep in the document (a control response's `result`
    ///   is told from itself, not from the envelope around it).
    init(_ error: DecodingError, in document: Data, depth: Int = 0) {
        func path(_ keys: [any CodingKey]) -> String { Self.path(Array(keys.dropFirst(depth))) }
        switch error {
        case .typeMismatch(let type, let context):
            // What was found where another type was expected is read from the document itself
            // (on this error path only), not from JSONDecoder's English debug text.
            let found = (try? JSONDecoder().decode(JSONValue.self, from: document))?.value(at: context.codingPath)
            self.init(
                path: path(context.codingPath),
                reason: "expected \(Self.name(type)), found \(found?.kind ?? "another type")")
        case .valueNotFound(let type, let context):
            self.init(path: path(context.codingPath), reason: "expected \(Self.name(type)), found null")
        case .keyNotFound(let key, let context):
            self.init(path: path(context.codingPath + [key]), reason: "missing")
        case .dataCorrupted(let context):
            let detail = (context.underlyingError as? CustomStringConvertible)?.description
            self.init(
                path: path(context.codingPath),
                reason: context.debugDescription + (detail.map { ": \($0)" } ?? ""))
        @unknown default:
            self.init(path: "", reason: "\(error)")
        }
    }

    public var description: String { path.isEmpty ? reason : "\(path): \(reason)" }

    static func path(_ keys: [any CodingKey]) -> String {
        var out = ""
        for key in keys {
            if let index = key.intValue {
                out += "[\(index)]"
            } else {
                out += (out.isEmpty ? "" : ".") + key.stringValue
            }
        }
        return out
    }

    /// JSON's name for what a Swift type stands for.
    private static func name(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Double.Type, is Int.Type, is Int32.Type, is UInt32.Type, is Int64.Type: "a number"
        default:
            "\(type)".hasPrefix("Dictionary") ? "an object" : "\(type)".hasPrefix("Array") ? "an array" : "\(type)"
        }
    }

}

/// Any key: what a keyed container lists when it is asked for every key present, or an array
/// index in a coding path.
public struct JSONKey: CodingKey, Hashable, Sendable {
    public var stringValue: String
    public var intValue: Int?
    public init(stringValue: String) { self.stringValue = stringValue }
    public init(intValue: Int) {
        stringValue = "\(intValue)"
        self.intValue = intValue
    }
}

extension Decoder {
    /// Throws when the object being decoded has a key `Keys` does not name: nicroute's own
    /// messages are exact, and a misspelt field must not pass as an absent one.
    /// - Throws: `DecodingError.dataCorrupted` at the unknown key's path.
    public func rejectUnknownKeys<Keys: CodingKey>(_ keys: Keys.Type) throws {
        let container = try container(keyedBy: JSONKey.self)
        for key in container.allKeys.sorted(by: { $0.stringValue < $1.stringValue })
        where Keys(stringValue: key.stringValue) == nil {
            throw DecodingError.dataCorrupted(
                .init(codingPath: codingPath + [key], debugDescription: "unknown key"))
        }
    }
}

extension KeyedDecodingContainer {
    /// An integer that must fit `T` exactly (no fraction, no sign where `T` is unsigned).
    ///
    /// The number is read as a Double (any JSON number within Double's range is one; beyond it,
    /// JSONDecoder's parser refuses the whole text), so integers are exact up to 2^53: nicroute's
    /// are 32-bit.
    /// - Throws: `DecodingError` at the key's path when it is missing, not a number, or out of range.
    public func decodeInteger<T: FixedWidthInteger>(_ type: T.Type = T.self, forKey key: Key) throws -> T {
        let number = try decode(Double.self, forKey: key)
        guard let value = T(exactly: number) else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: self,
                debugDescription: "expected an integer in \(T.min)...\(T.max), found \(Self.show(number))")
        }
        return value
    }

    /// A string that `parse` turns into a value.
    /// - Throws: `DecodingError` at the key's path when it is missing, not a string, or `parse`
    ///   refuses it (`what` names what was expected: "an IP address").
    public func decodeParsed<T>(forKey key: Key, _ what: String, _ parse: (String) -> T?) throws -> T {
        let text = try decode(String.self, forKey: key)
        guard let value = parse(text) else {
            throw DecodingError.dataCorruptedError(
                forKey: key, in: self, debugDescription: "expected \(what), found \(text.debugDescription)")
        }
        return value
    }

    /// An array of strings that `parse` turns into values, each in turn.
    /// - Throws: `DecodingError` at the element's path (`addresses[2]`) when `parse` refuses it.
    public func decodeParsedArray<T>(forKey key: Key, _ what: String, _ parse: (String) -> T?) throws -> [T] {
        try decode([String].self, forKey: key).enumerated().map { index, text in
            guard let value = parse(text) else {
                throw DecodingError.dataCorrupted(
                    .init(
                        codingPath: codingPath + [key, JSONKey(intValue: index)],
                        debugDescription: "expected \(what), found \(text.debugDescription)"))
            }
            return value
        }
    }

    /// `decodeParsed`, where null is nil (the key must be present).
    public func decodeParsedOrNull<T>(forKey key: Key, _ what: String, _ parse: (String) -> T?) throws -> T? {
        try decodeNil(forKey: key) ? nil : try decodeParsed(forKey: key, what, parse)
    }

    private static func show(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e18 ? String(Int64(number)) : "\(number)"
    }
}

// MARK: - JSONValue

/// Any JSON value, read without knowing its type: what a document is read as to tell what was
/// found where another type was expected (`JSONCoding.decode`), and what the fuzz target and the
/// tests read arbitrary JSON as. nicroute's messages are decoded as their own types, never
/// through this.
///
/// Numbers are `Double`s: integers are exact up to 2^53, which covers every table id, priority
/// and interface index nicroute exchanges.
public enum JSONValue: Hashable, Sendable {
    case object([String: JSONValue])
    case array([JSONValue])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    /// What kind of JSON value this is, as error messages name it: "a string", "null", ...
    public var kind: String {
        switch self {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }

    /// The value at `path` (object keys and array indices, as a coding path lists them); nil
    /// when there is none.
    public func value(at path: [any CodingKey]) -> JSONValue? {
        var value = self
        for key in path {
            switch value {
            case .object(let members):
                guard let next = members[key.stringValue] else { return nil }
                value = next
            case .array(let items):
                guard let index = key.intValue, items.indices.contains(index) else { return nil }
                value = items[index]
            default:
                return nil
            }
        }
        return value
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let n = try? container.decode(Double.self) {
            self = .number(n)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let items = try? container.decode([JSONValue].self) {
            self = .array(items)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let b): try container.encode(b)
        case .number(let n): try container.encode(n)
        case .string(let s): try container.encode(s)
        case .array(let items): try container.encode(items)
        case .object(let members): try container.encode(members)
        }
    }
}

extension JSONValue: CustomStringConvertible {
    /// The compact text form (`JSONCoding.encode`: keys sorted).
    public var description: String { JSONCoding.encodeString(self) }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    /// An object; a key given twice keeps its last value.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
