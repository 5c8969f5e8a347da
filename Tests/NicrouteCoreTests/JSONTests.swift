import NicrouteCore
import Testing

@Suite struct JSONTests {
    struct Valid: Sendable, CustomTestStringConvertible {
        var text: String
        var value: JSONValue
        var testDescription: String { text }
    }

    static let valid: [Valid] = [
        Valid(text: "null", value: .null),
        Valid(text: "true", value: true),
        Valid(text: "false", value: false),
        Valid(text: "0", value: 0),
        Valid(text: "-0", value: .number(-0.0)),
        Valid(text: "1", value: 1),
        Valid(text: "-1", value: -1),
        Valid(text: "1.5", value: 1.5),
        Valid(text: "1e3", value: 1000),
        Valid(text: "1E+3", value: 1000),
        Valid(text: "25e-2", value: 0.25),
        Valid(text: "-1.25e-2", value: -0.0125),
        Valid(text: "0.1", value: 0.1),
        Valid(text: "4294967295", value: 4_294_967_295),
        Valid(text: "1.7976931348623157e308", value: .number(1.7976931348623157e308)),
        Valid(text: "5e-324", value: .number(5e-324)),
        Valid(text: "1e-400", value: 0),
        Valid(text: #""""#, value: ""),
        Valid(text: #""abc""#, value: "abc"),
        Valid(text: #""\"\\\/\b\f\n\r\t""#, value: "\"\\/\u{8}\u{C}\n\r\t"),
        Valid(text: #""\u0041\u00e9\u00E9""#, value: "Aéé"),
        Valid(text: #""\u0000""#, value: "\u{0}"),
        Valid(text: #""\uD83D\uDE00""#, value: "😀"),
        Valid(text: #""\ud83d\ude00""#, value: "😀"),
        Valid(text: "\"é😀\u{7F}\"", value: "é😀\u{7F}"),
        Valid(text: "[]", value: []),
        Valid(text: "{}", value: [:]),
        Valid(text: " \t\r\n[ 1 , \"a\" , null ]\n", value: [1, "a", nil]),
        Valid(text: #"{"a": {"b": [true, {"c": []}]}}"#, value: ["a": ["b": [true, ["c": []]]]]),
        Valid(text: #"{"": 1, "x": "y"}"#, value: ["": 1, "x": "y"]),
        Valid(text: #"[[[[[]]]]]"#, value: [[[[[]]]]]),
    ]

    @Test(arguments: valid)
    func parsesValidText(_ c: Valid) throws {
        #expect(try JSONValue.parse(c.text) == c.value)
    }

    struct Invalid: Sendable, CustomTestStringConvertible {
        var text: String
        var offset: Int
        var reason: String
        var testDescription: String { "\(text.debugDescription) -> \(reason)" }
    }

    static let invalid: [Invalid] = [
        Invalid(text: "", offset: 0, reason: "unexpected end of text, expected a value"),
        Invalid(text: "  ", offset: 2, reason: "unexpected end of text, expected a value"),
        Invalid(text: "nul", offset: 0, reason: "invalid literal, expected 'null'"),
        Invalid(text: "tru", offset: 0, reason: "invalid literal, expected 'true'"),
        Invalid(text: "fals", offset: 0, reason: "invalid literal, expected 'false'"),
        Invalid(text: "True", offset: 0, reason: "unexpected character 'T', expected a value"),
        Invalid(text: "NaN", offset: 0, reason: "unexpected character 'N', expected a value"),
        Invalid(text: "Infinity", offset: 0, reason: "unexpected character 'I', expected a value"),
        Invalid(text: "-Infinity", offset: 1, reason: "expected a digit"),
        Invalid(text: "+1", offset: 0, reason: "unexpected character '+', expected a value"),
        Invalid(text: ".5", offset: 0, reason: "unexpected character '.', expected a value"),
        Invalid(text: "01", offset: 0, reason: "leading zeros are not allowed"),
        Invalid(text: "-01", offset: 0, reason: "leading zeros are not allowed"),
        Invalid(text: "-", offset: 1, reason: "expected a digit"),
        Invalid(text: "1.", offset: 2, reason: "expected a digit after '.'"),
        Invalid(text: "1.e5", offset: 2, reason: "expected a digit after '.'"),
        Invalid(text: "1e", offset: 2, reason: "expected a digit in the exponent"),
        Invalid(text: "1e+", offset: 3, reason: "expected a digit in the exponent"),
        Invalid(text: "1e999", offset: 0, reason: "number out of range"),
        Invalid(text: "-1e999", offset: 0, reason: "number out of range"),
        Invalid(text: "0x10", offset: 1, reason: "unexpected data after the value"),
        Invalid(text: "[1,]", offset: 3, reason: "unexpected character ']', expected a value"),
        Invalid(text: "[1 2]", offset: 3, reason: "expected ',' or ']' in an array"),
        Invalid(text: "[", offset: 1, reason: "unexpected end of text, expected a value"),
        Invalid(text: "[1", offset: 2, reason: "unexpected end of text in an array"),
        Invalid(text: "[1]]", offset: 3, reason: "unexpected data after the value"),
        Invalid(text: "[1] x", offset: 4, reason: "unexpected data after the value"),
        Invalid(text: "1 2", offset: 2, reason: "unexpected data after the value"),
        Invalid(text: #"{"a" 1}"#, offset: 5, reason: "expected ':' after an object key"),
        Invalid(text: #"{"a":1,}"#, offset: 7, reason: "expected a string key"),
        Invalid(text: "{a:1}", offset: 1, reason: "expected a string key"),
        Invalid(text: #"{"a":1"#, offset: 6, reason: "unexpected end of text in an object"),
        Invalid(text: #"{"a":1 "b":2}"#, offset: 7, reason: "expected ',' or '}' in an object"),
        Invalid(text: #"{"a":1,"a":2}"#, offset: 7, reason: "duplicate key \"a\""),
        Invalid(text: #""abc"#, offset: 0, reason: "unterminated string"),
        Invalid(text: "\"a\u{1}b\"", offset: 2, reason: "control character 0x1 in a string (must be escaped)"),
        Invalid(text: "\"a\nb\"", offset: 2, reason: "control character 0xa in a string (must be escaped)"),
        Invalid(text: #""\x""#, offset: 1, reason: "invalid escape sequence '\\x'"),
        Invalid(text: #""\"#, offset: 1, reason: "unterminated escape sequence"),
        Invalid(text: #""\u12""#, offset: 1, reason: "\\u must be followed by four hex digits"),
        Invalid(text: #""\u12G4""#, offset: 1, reason: "\\u must be followed by four hex digits"),
        Invalid(text: #""\uD800""#, offset: 1, reason: "high surrogate not followed by a low surrogate"),
        Invalid(text: #""\uD800\u0041""#, offset: 1, reason: "high surrogate not followed by a low surrogate"),
        Invalid(text: #""\uD800\uD800""#, offset: 1, reason: "high surrogate not followed by a low surrogate"),
        Invalid(text: #""\uDC00""#, offset: 1, reason: "lone low surrogate"),
        Invalid(text: "// comment\n1", offset: 0, reason: "unexpected character '/', expected a value"),
        Invalid(text: "\u{FEFF}1", offset: 0, reason: "unexpected character 0xef, expected a value"),
        Invalid(text: "'a'", offset: 0, reason: "unexpected character ''', expected a value"),
    ]

    @Test(arguments: invalid)
    func rejectsInvalidText(_ c: Invalid) {
        #expect(throws: JSONError(offset: c.offset, reason: c.reason)) { try JSONValue.parse(c.text) }
    }

    @Test func nestingIsLimited() throws {
        let deepest = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(try JSONValue.parse(deepest).arrayValue?.count == 1)
        let tooDeep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(throws: JSONError(offset: 64, reason: "nesting deeper than 64 levels")) {
            try JSONValue.parse(tooDeep)
        }
        let objects = String(repeating: #"{"a":"#, count: 3) + "1" + String(repeating: "}", count: 3)
        #expect(throws: JSONError(offset: 10, reason: "nesting deeper than 2 levels")) {
            try JSONValue.parse(objects, maxDepth: 2)
        }
        // Far too deep for any stack, were the limit not there.
        let hostile = String(repeating: "[", count: 1_000_000)
        #expect(throws: JSONError.self) { try JSONValue.parse(hostile, maxLength: 2_000_000) }
    }

    @Test func sizeIsLimited() throws {
        #expect(try JSONValue.parse("[1, 2, 3]", maxLength: 9) == [1, 2, 3])
        #expect(throws: JSONError(offset: 8, reason: "document is longer than 8 bytes")) {
            try JSONValue.parse("[1, 2, 3]", maxLength: 8)
        }
        #expect(throws: JSONError(offset: 8, reason: "document is longer than 8 bytes")) {
            try JSONValue.parse(utf8: Array("[1, 2, 3]".utf8), maxLength: 8)
        }
    }

    @Test func parsesUTF8Bytes() throws {
        #expect(try JSONValue.parse(utf8: Array(#"{"é":[1]}"#.utf8)) == ["é": [1]])
        #expect(throws: JSONError(offset: 3, reason: "invalid UTF-8")) {
            try JSONValue.parse(utf8: [0x22, 0x61, 0x62, 0xFF, 0x22])
        }
        #expect(throws: JSONError(offset: 1, reason: "invalid UTF-8")) {
            try JSONValue.parse(utf8: [0x22, 0xC3, 0x22])  // A truncated two-byte sequence.
        }
    }

    @Test func errorDescriptionHasTheOffset() {
        #expect(JSONError(offset: 3, reason: "expected a string key").description == "offset 3: expected a string key")
    }

    // MARK: - Serialization

    struct Serialized: Sendable, CustomTestStringConvertible {
        var value: JSONValue
        var text: String
        var testDescription: String { text }
    }

    static let serialized: [Serialized] = [
        Serialized(value: nil, text: "null"),
        Serialized(value: true, text: "true"),
        Serialized(value: 0, text: "0"),
        Serialized(value: .number(-0.0), text: "0"),
        Serialized(value: 1.0, text: "1"),
        Serialized(value: -42, text: "-42"),
        Serialized(value: 0.5, text: "0.5"),
        Serialized(value: 1e-7, text: "1e-07"),
        Serialized(value: 9_007_199_254_740_991, text: "9007199254740991"),
        Serialized(value: 9_007_199_254_740_992, text: "9007199254740992.0"),
        Serialized(value: 1e300, text: "1e+300"),
        Serialized(value: .number(.infinity), text: "null"),
        Serialized(value: .number(.nan), text: "null"),
        Serialized(value: "", text: #""""#),
        Serialized(value: "a\"b\\c/d", text: #""a\"b\\c/d""#),
        Serialized(value: "\n\r\t\u{8}\u{C}\u{0}\u{1F}\u{7F}", text: #""\n\r\t\b\f\u0000\u001f"# + "\u{7F}\""),
        Serialized(value: "é😀", text: "\"é😀\""),
        Serialized(value: [], text: "[]"),
        Serialized(value: [:], text: "{}"),
        Serialized(value: [1, [2, [3]], nil], text: "[1,[2,[3]],null]"),
        Serialized(
            value: ["b": 1, "a": [true, nil], "B": "x", "é": 0, "": 2],
            text: #"{"":2,"B":"x","a":[true,null],"b":1,"é":0}"#),
    ]

    @Test(arguments: serialized)
    func serializesCompactlyWithSortedKeys(_ c: Serialized) {
        #expect(c.value.serialized() == c.text)
        #expect(c.value.description == c.text)
    }

    @Test(arguments: valid)
    func roundTripsThroughSerialized(_ c: Valid) throws {
        let value = try JSONValue.parse(c.text)
        #expect(try JSONValue.parse(value.serialized()) == value)
    }

    @Test(arguments: ["network_data/two-nics-dual-stack.json", "network_data/bond-vlan.json"])
    func roundTripsAFixture(_ file: String) throws {
        let value = try JSONValue.parse(fixtureText(file))
        let text = value.serialized()
        #expect(try JSONValue.parse(text) == value)
        #expect(try JSONValue.parse(text).serialized() == text)
    }

    /// Random token soup: whatever parses must survive a round trip; nothing traps.
    @Test func randomTextRoundTripsOrThrows() {
        var random = SplitMix64(seed: 2024)
        let pieces = [
            "{", "}", "[", "]", ",", ":", " ", "\"", "\"a\"", "\"b\"", "\"\\u00e9\"", "\"\\ud83d\\ude00\"", "\\",
            "0", "1", "-", ".", "e", "E", "+", "12.5e-3", "true", "false", "null", "\n", "\"\\n\"", "é",
        ]
        var parsed = 0
        for _ in 0..<30000 {
            let text = (0..<Int(random.next() % 12)).map { _ in pieces.randomElement(using: &random)! }.joined()
            guard let value = try? JSONValue.parse(text) else { continue }
            parsed += 1
            #expect((try? JSONValue.parse(value.serialized())) == value, "\(text.debugDescription)")
        }
        #expect(parsed > 100)
    }

    // MARK: - Accessors

    @Test func accessors() throws {
        let value = try JSONValue.parse(#"{"n": 3, "f": 2.5, "s": "x", "b": false, "a": [null], "o": {}}"#)
        #expect(value["n"]?.intValue == 3)
        #expect(value["f"]?.intValue == nil)
        #expect(value["f"]?.doubleValue == 2.5)
        #expect(value["s"]?.stringValue == "x")
        #expect(value["b"]?.boolValue == false)
        #expect(value["a"]?[0]?.isNull == true)
        #expect(value["a"]?[1] == nil)
        #expect(value["a"]?[-1] == nil)
        #expect(value["o"]?.objectValue == [:])
        #expect(value["missing"] == nil)
        #expect(value["s"]?["x"] == nil)
        #expect(value[0] == nil)
        #expect(value.objectValue?.count == 6)
        #expect(JSONValue.number(1e300).intValue == nil)
    }
}
