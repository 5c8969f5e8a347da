import NicrouteCore
import Testing

/// JSONCoding's strictness helpers and JSONValue, over FoundationEssentials' JSON coders.
@Suite struct JSONTests {
    /// A type with every kind of field the helpers check.
    struct Sample: Decodable, Equatable {
        var count: UInt32
        var offset: Int32
        var address: IPAddress
        var gateway: IPAddress?

        enum CodingKeys: String, CodingKey {
            case count, offset, address, gateway
        }

        init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            count = try c.decodeInteger(forKey: .count)
            offset = try c.decodeInteger(forKey: .offset)
            address = try c.decodeParsed(forKey: .address, "an IP address") { IPAddress($0) }
            gateway = try c.decodeParsedOrNull(forKey: .gateway, "an IP address") { IPAddress($0) }
        }

        init(count: UInt32, offset: Int32, address: String, gateway: String?) {
            self.count = count
            self.offset = offset
            self.address = IPAddress(address)!
            self.gateway = gateway.map { IPAddress($0)! }
        }
    }

    struct Wrapper: Decodable, Equatable {
        var items: [Sample]
    }

    static func decode(_ text: String) throws -> Wrapper {
        try JSONCoding.decode(Wrapper.self, from: Array(text.utf8))
    }

    static func item(_ fields: String) -> String {
        #"{"items":[{"count":1,"offset":-1,"address":"10.0.0.1","gateway":null},{"# + fields + "}]}"
    }

    @Test func decodesAnExactDocument() throws {
        #expect(
            try Self.decode(Self.item(#""count":4294967295,"offset":-2147483648,"address":"::1","gateway":"fe80::1""#))
                == Wrapper(items: [
                    Sample(count: 1, offset: -1, address: "10.0.0.1", gateway: nil),
                    Sample(count: 4_294_967_295, offset: -2_147_483_648, address: "::1", gateway: "fe80::1"),
                ]))
    }

    /// Every error names the path of the offending value (`items[1].count`) and what is wrong.
    @Test(arguments: [
        (
            #""count":"5","offset":0,"address":"::1","gateway":null"#,
            "items[1].count: expected a number, found a string"
        ),
        (
            #""count":-1,"offset":0,"address":"::1","gateway":null"#,
            "items[1].count: expected an integer in 0...4294967295, found -1"
        ),
        (
            #""count":1.5,"offset":0,"address":"::1","gateway":null"#,
            "items[1].count: expected an integer in 0...4294967295, found 1.5"
        ),
        (#""count":4294967296,"offset":0,"address":"::1","gateway":null"#, "items[1].count: expected an integer"),
        (#""count":true,"offset":0,"address":"::1","gateway":null"#, "items[1].count: expected a number, found a boolean"),
        (#""count":null,"offset":0,"address":"::1","gateway":null"#, "items[1].count"),
        (
            #""count":1,"offset":2147483648,"address":"::1","gateway":null"#,
            "items[1].offset: expected an integer in -2147483648...2147483647"
        ),
        (#""count":1,"offset":0,"address":"::1","gateway":null,"extra":0"#, "items[1].extra: unknown key"),
        (
            #""count":1,"offset":0,"address":"10.0.0.256","gateway":null"#,
            #"items[1].address: expected an IP address, found "10.0.0.256""#
        ),
        (#""count":1,"offset":0,"address":1,"gateway":null"#, "items[1].address: expected a string, found a number"),
        (#""count":1,"offset":0,"address":"::1""#, "items[1].gateway: missing"),
        (#""count":1,"offset":0,"gateway":null"#, "items[1].address: missing"),
    ])
    func errorsNameThePath(_ fields: String, _ message: String) {
        #expect {
            try Self.decode(Self.item(fields))
        } throws: { error in
            let e = error as! JSONDecodeError
            return "\(e)".hasPrefix(message)
        }
    }

    @Test(arguments: [
        "", "{", "[", "nul", #"{"items":[{"count":1e400}]}"#, #"{"items":[}"#, #"{"items":[{"count":01}]}"#, "{} x",
        "\u{0}",
    ])
    func malformedTextIsAnError(_ text: String) {
        #expect(throws: JSONDecodeError.self) { try Self.decode(text) }
    }

    @Test func unknownKeysAreListedSorted() {
        #expect {
            try Self.decode(Self.item(#""zz":0,"aa":0,"count":1,"offset":0,"address":"::1","gateway":null"#))
        } throws: { error in "\(error)" == "items[1].aa: unknown key" }
    }

    // MARK: JSONValue

    static let values: [JSONValue] = [
        .null, true, false, 0, -1, 1.5, 4_294_967_295, .number(1e300), "", "é😀\n\t\"\\/\u{1}",
        [], [:], [1, "a", nil, [true]], ["a": ["b": [true, ["c": []]]], "": "empty key"],
    ]

    @Test(arguments: values)
    func valueRoundTrips(_ value: JSONValue) throws {
        let text = JSONCoding.encode(value)
        #expect(try JSONCoding.decode(JSONValue.self, from: text) == value)
        #expect(JSONCoding.encode(try JSONCoding.decode(JSONValue.self, from: text)) == text)
    }

    @Test func encodingIsCompactSortedAndKeepsSlashes() {
        #expect(
            JSONCoding.encodeString(["b": 1, "a": ["10.0.0.0/24"], "C": .null] as JSONValue)
                == #"{"C":null,"a":["10.0.0.0/24"],"b":1}"#)
        #expect(JSONCoding.encodeString(JSONValue.number(4_294_967_295)) == "4294967295")
    }

    /// The config drive's file decodes as a value (the fuzz target's round trip).
    @Test(arguments: ["network_data/two-nics-dual-stack.json", "network_data/bond-vlan.json"])
    func fixtureRoundTrips(_ file: String) throws {
        let value = try JSONCoding.decode(JSONValue.self, from: fixtureBytes(file))
        #expect(try JSONCoding.decode(JSONValue.self, from: JSONCoding.encode(value)) == value)
    }
}
