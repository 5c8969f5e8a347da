import Testing

@testable import NicrouteCore

// The control protocol's codec (docs/control-protocol.md), the status report's JSON round trip
// and text form, and the preflight findings. Pure: bytes and values in, values out.

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// A successful answer carrying `result` (JSON text) as it is.
private func answer(_ result: String) -> [UInt8] { bytes(#"{"ok":true,"result":"# + result + #","version":1}"#) }

/// What decoding gives: a value, or an error with this code.
enum Decoded<Value: Hashable & Sendable>: Hashable, Sendable {
    case value(Value)
    case error(ControlError.Code)

    init(_ body: () throws(ControlError) -> Value) {
        do { self = .value(try body()) } catch { self = .error(error.code) }
    }
}

@Suite struct ControlRequestTests {
    /// One request line and what decoding it gives.
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var input: [UInt8]
        var expected: Decoded<ControlCommand>
        var testDescription: String { name }

        init(_ name: String, _ text: String, _ expected: Decoded<ControlCommand>) {
            self.init(name, bytes(text), expected)
        }
        init(_ name: String, _ input: [UInt8], _ expected: Decoded<ControlCommand>) {
            self.name = name
            self.input = input
            self.expected = expected
        }
    }

    /// A valid request padded with blanks inside the object to exactly `size` bytes (newline
    /// included when `newline`).
    static func padded(to size: Int, newline: Bool) -> [UInt8] {
        let head = #"{"version":1,"command":"status""#
        let tail = "}" + (newline ? "\n" : "")
        return bytes(head + String(repeating: " ", count: size - head.utf8.count - tail.utf8.count) + tail)
    }

    static let cases: [Case] =
        ControlCommand.allCases.flatMap { c in
            [
                Case("\(c.rawValue) with newline", #"{"version":1,"command":"\#(c.rawValue)"}"# + "\n", .value(c)),
                Case("\(c.rawValue) without newline", #"{"version":1,"command":"\#(c.rawValue)"}"#, .value(c)),
            ]
        } + [
            // What the client itself sends.
            Case("encoded() of plan", ControlRequest(.plan).encoded(), .value(.plan)),
            // Framing and whitespace.
            Case("fields in another order", #"{"command":"flush","version":1}"#, .value(.flush)),
            Case("blanks around and inside", " \t{ \"version\" : 1 , \"command\" : \"plan\" } \r\n", .value(.plan)),
            Case("CRLF line end", "{\"version\":1,\"command\":\"status\"}\r\n", .value(.status)),
            Case(
                "two newlines (the second is whitespace)", "{\"version\":1,\"command\":\"status\"}\n\n", .value(.status)
            ),
            Case("version as 1.0 (a JSON number is a number)", #"{"version":1.0,"command":"status"}"#, .value(.status)),
            Case("version as 1e0", #"{"version":1e0,"command":"status"}"#, .value(.status)),
            // Exact: a key but version and command is refused; a later version may carry others.
            Case(
                "extra fields refused",
                #"{"version":1,"command":"plan","client":"nicroutectl 2.0","verbose":true,"x":[1,{"y":null}]}"#,
                .error(.malformedRequest)),
            Case("a misspelt key", #"{"version":1,"comand":"status"}"#, .error(.malformedRequest)),
            Case(
                "extra fields in version 2 are a version matter", #"{"version":2,"command":"status","client":"x"}"#,
                .error(.unsupportedVersion)),
            // Size limit: the bytes as received, newline included.
            Case(
                "exactly maximumRequestSize bytes", padded(to: ControlProtocol.maximumRequestSize, newline: false),
                .value(.status)),
            Case(
                "maximumRequestSize bytes with the newline",
                padded(to: ControlProtocol.maximumRequestSize, newline: true),
                .value(.status)),
            Case(
                "one byte more than maximumRequestSize",
                padded(to: ControlProtocol.maximumRequestSize + 1, newline: false),
                .error(.requestTooLarge)),
            Case("5000 bytes of garbage", [UInt8](repeating: 0x41, count: 5000), .error(.requestTooLarge)),
            // Not JSON.
            Case("empty", "", .error(.malformedRequest)),
            Case("only a newline", "\n", .error(.malformedRequest)),
            Case("truncated object", #"{"version":1,"command":"sta"#, .error(.malformedRequest)),
            // JSONDecoder tolerates a trailing comma and keeps the first of two equal keys.
            Case("trailing comma", #"{"version":1,"command":"status",}"#, .value(.status)),
            Case("single quotes", "{'version':1,'command':'status'}", .error(.malformedRequest)),
            Case(
                "two requests on one line", #"{"version":1,"command":"status"}{"version":1,"command":"flush"}"#,
                .error(.malformedRequest)),
            Case("data after the newline", "{\"version\":1,\"command\":\"status\"}\nflush", .error(.malformedRequest)),
            Case(
                "duplicate key: the first counts", #"{"version":1,"command":"status","command":"flush"}"#,
                .value(.status)),
            Case("invalid UTF-8", [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D], .error(.malformedRequest)),
            Case("NUL byte", [0x7B, 0x00, 0x7D], .error(.malformedRequest)),
            Case(
                "nesting deeper than 8 levels", #"{"version":1,"command":"status","x":[[[[[[[[1]]]]]]]]}"#,
                .error(.malformedRequest)),
            // Not an object.
            Case("an array", #"[{"version":1,"command":"status"}]"#, .error(.malformedRequest)),
            Case("a string", #""status""#, .error(.malformedRequest)),
            Case("a number", "1", .error(.malformedRequest)),
            Case("null", "null", .error(.malformedRequest)),
            // Version.
            Case("missing version", #"{"command":"status"}"#, .error(.malformedRequest)),
            Case("version as a string", #"{"version":"1","command":"status"}"#, .error(.malformedRequest)),
            Case("version not an integer", #"{"version":1.5,"command":"status"}"#, .error(.malformedRequest)),
            Case("version null", #"{"version":null,"command":"status"}"#, .error(.malformedRequest)),
            Case("version beyond 2^53", #"{"version":1e300,"command":"status"}"#, .error(.malformedRequest)),
            Case("version 2", #"{"version":2,"command":"status"}"#, .error(.unsupportedVersion)),
            Case("version 0", #"{"version":0,"command":"status"}"#, .error(.unsupportedVersion)),
            Case("version -1", #"{"version":-1,"command":"status"}"#, .error(.unsupportedVersion)),
            Case(
                "version 2 is checked before the command", #"{"version":2,"command":"reboot"}"#,
                .error(.unsupportedVersion)),
            // Command.
            Case("missing command", #"{"version":1}"#, .error(.malformedRequest)),
            Case("command as a number", #"{"version":1,"command":1}"#, .error(.malformedRequest)),
            Case("command as an array", #"{"version":1,"command":["status"]}"#, .error(.malformedRequest)),
            Case("command null", #"{"version":1,"command":null}"#, .error(.malformedRequest)),
            Case("unknown command", #"{"version":1,"command":"reboot"}"#, .error(.unknownCommand)),
            Case("version as a boolean", #"{"version":true,"command":"status"}"#, .error(.malformedRequest)),
            Case("command names are case-sensitive", #"{"version":1,"command":"Status"}"#, .error(.unknownCommand)),
            Case("empty command", #"{"version":1,"command":""}"#, .error(.unknownCommand)),
            Case("command with a blank", #"{"version":1,"command":"status "}"#, .error(.unknownCommand)),
        ]

    @Test(arguments: cases)
    func decodes(_ c: Case) {
        #expect(Decoded { () throws(ControlError) in try ControlRequest.decode(c.input).command } == c.expected)
    }

    @Test(arguments: ControlCommand.allCases)
    func encodedIsOneVersionOneLine(_ command: ControlCommand) throws {
        let line = ControlRequest(command).encoded()
        #expect(line.last == UInt8(ascii: "\n"))
        #expect(line.dropLast().contains(UInt8(ascii: "\n")) == false)
        #expect(
            try JSONCoding.decode(JSONValue.self, from: line) == ["version": 1, "command": .string(command.rawValue)])
        #expect(
            String(decoding: line, as: UTF8.self) == #"{"command":"\#(command.rawValue)","version":1}"# + "\n")
        #expect(try ControlRequest.decode(line) == ControlRequest(command))
    }

    @Test func unknownCommandNamesTheKnownOnes() {
        #expect {
            try ControlRequest.decode(bytes(#"{"version":1,"command":"reboot"}"#))
        } throws: { error in
            let e = error as! ControlError
            return e.message.contains("'reboot'")
                && ControlCommand.allCases.allSatisfy { e.message.contains($0.rawValue) }
        }
    }

    /// The reason names the key and what is wrong with it.
    @Test(arguments: [
        (#"{"version":1,"command":"status","verbose":true}"#, "verbose: unknown key"),
        (#"{"version":1,"command":7}"#, "command: expected a string, found a number"),
        (#"{"version":"1","command":"status"}"#, "version: expected a number, found a string"),
        (#"{"version":1.5,"command":"status"}"#, "version: expected an integer"),
        (#"{"command":"status"}"#, "version: missing"),
        (#"[1]"#, "expected an object"),
    ])
    func malformedRequestNamesTheKey(_ text: String, _ reason: String) {
        #expect {
            try ControlRequest.decode(bytes(text))
        } throws: { error in
            let e = error as! ControlError
            return e.code == .malformedRequest && e.message.contains(reason)
        }
    }

    @Test func onlyReconfigureAndFlushArePrivileged() {
        #expect(ControlCommand.allCases.filter(\.isPrivileged) == [.reconfigure, .flush])
    }
}

@Suite struct ControlResponseTests {
    static let nested: JSONValue = [
        "changes": ["ip -4 rule add priority 10001 from 20.20.20.16 lookup 10001 proto nicroute"],
        "conflicts": [],
        "deep": ["a": [1, 2.5, -3, true, false, nil, ["b": "c"]], "unicode": "é😀\n\t\"\\", "empty": [:]],
        "big": 4_294_967_295,
    ]

    /// Answers, their results as any JSON.
    static let answers: [Result<JSONValue, ControlError>] =
        [.success(nested), .success(.null), .success([:]), .success("text"), .success([1, [2, [3]]])]
        + ControlError.Code.allCases.map {
            .failure(ControlError($0, "why \($0.rawValue) happened: \"quoted\"\nline 2 é"))
        }

    /// A call reading any JSON as its result.
    static let anyResult = ControlCall(.status, as: JSONValue.self)

    @Test(arguments: answers)
    func roundTrips(_ answer: Result<JSONValue, ControlError>) throws {
        let response: ControlResponse =
            switch answer {
            case .success(let value): .success(ControlResult(value))
            case .failure(let error): .failure(error)
            }
        let line = response.encoded()
        #expect(line.last == UInt8(ascii: "\n"))
        #expect(line.dropLast().contains(UInt8(ascii: "\n")) == false)
        #expect(try Self.anyResult.decode(line) == answer)
        #expect(try Self.anyResult.decode(line.dropLast()) == answer)
    }

    @Test(arguments: ControlError.Code.allCases)
    func errorWireForm(_ code: ControlError.Code) throws {
        let json = try JSONCoding.decode(
            JSONValue.self, from: ControlResponse.failure(ControlError(code, "m")).encoded())
        #expect(json == ["version": 1, "ok": false, "error": ["code": .string(code.rawValue), "message": "m"]])
    }

    @Test func successWireForm() throws {
        #expect(
            String(decoding: ControlResponse.success(ControlResult(["a": 1] as JSONValue)).encoded(), as: UTF8.self)
                == #"{"ok":true,"result":{"a":1},"version":1}"# + "\n")
    }

    struct Bad: Sendable, CustomTestStringConvertible {
        var text: String
        var expected: Decoded<Result<JSONValue, ControlError>>
        var testDescription: String { text }
    }

    static let oddAnswers: [Bad] = [
        Bad(text: "", expected: .error(.malformedRequest)),
        Bad(text: "not json", expected: .error(.malformedRequest)),
        Bad(text: #"{"version":1,"ok":true"#, expected: .error(.malformedRequest)),
        Bad(text: "[]", expected: .error(.malformedRequest)),
        Bad(text: #"{"ok":true,"result":1}"#, expected: .error(.malformedRequest)),
        Bad(text: #"{"version":2,"ok":true,"result":1}"#, expected: .error(.malformedRequest)),
        Bad(text: #"{"version":1,"result":1}"#, expected: .error(.malformedRequest)),
        Bad(text: #"{"version":1,"ok":"yes"}"#, expected: .error(.malformedRequest)),
        // Exact: a success without a result, a failure without its error or details, an unknown
        // key, a result beside an error are refused.
        Bad(text: #"{"version":1,"ok":true}"#, expected: .error(.malformedRequest)),
        Bad(text: #"{"version":1,"ok":true,"result":null}"#, expected: .value(.success(.null))),
        Bad(text: #"{"version":1,"ok":false}"#, expected: .error(.malformedRequest)),
        Bad(text: #"{"version":1,"ok":false,"error":{"code":"busy"}}"#, expected: .error(.malformedRequest)),
        Bad(
            text: #"{"version":1,"ok":false,"error":{"code":"busy","message":"m"},"extra":1}"#,
            expected: .error(.malformedRequest)),
        Bad(
            text: #"{"version":1,"ok":false,"error":{"code":"busy","message":"m","hint":"x"}}"#,
            expected: .error(.malformedRequest)),
        Bad(
            text: #"{"version":1,"ok":true,"result":1,"error":{"code":"busy","message":"m"}}"#,
            expected: .error(.malformedRequest)),
        Bad(text: #"{"version":1,"ok":false,"result":1}"#, expected: .error(.malformedRequest)),
        Bad(text: #"{"version":"1","ok":true,"result":1}"#, expected: .error(.malformedRequest)),
        // An error code this client does not know still shows the daemon's message.
        Bad(
            text: #"{"version":1,"ok":false,"error":{"code":"on-fire","message":"m"}}"#,
            expected: .value(.failure(ControlError(.failed, "m")))),
    ]

    @Test(arguments: oddAnswers)
    func decodesOddAnswers(_ c: Bad) {
        #expect(Decoded { () throws(ControlError) in try Self.anyResult.decode(bytes(c.text)) } == c.expected)
    }

    @Test func refusesAnswersLargerThanTheLimit() {
        let huge =
            bytes(#"{"version":1,"ok":true,"result":""#)
            + [UInt8](repeating: 0x61, count: ControlProtocol.maximumResponseSize)
            + bytes("\"}")
        #expect(Decoded { () throws(ControlError) in try Self.anyResult.decode(huge) } == .error(.malformedRequest))
    }
}

// MARK: - Status report

private func ip(_ s: String) -> IPAddress { IPAddress(s)! }
private func pfx(_ s: String) -> IPPrefix { IPPrefix(s)! }

private func ethernet(_ index: Int32, _ name: String, mac: UInt8) -> Link {
    Link(
        index: index, name: name, mac: MACAddress(bytes: [0xfa, 0x16, 0x3e, 0, 0, mac]),
        flags: [.up, .broadcast, .running, .lowerUp], operationalState: .up, mtu: 1500, hardwareType: 1)
}

private func address(_ index: Int32, _ p: String) -> InterfaceAddress {
    let prefix = pfx(p)
    return InterfaceAddress(linkIndex: index, address: prefix.address, prefixLength: prefix.length, flags: [.permanent])
}

private func connected(_ a: InterfaceAddress) -> Route {
    Route(
        family: a.family, table: RoutingTable.main, destination: a.subnet, proto: .kernel,
        scope: a.family == .inet ? .link : .universe, outputInterface: a.linkIndex,
        preferredSource: a.family == .inet ? a.address : nil, metric: a.family == .inet ? nil : 256)
}

/// eth0 (IPv4 and IPv6, default route in main), eth1 (gateway from a networkd lease), eth2
/// (no gateway anywhere, first-host fallback off).
private func threeNICs(eth1: String = "20.20.20.16/24") -> (KernelSnapshot, Plan) {
    let a0 = address(2, "10.10.10.29/24")
    let a0v6 = address(2, "2001:db8:0:1::29/64")
    let a1 = address(3, eth1)
    let a2 = address(4, "30.30.30.7/24")
    let snapshot = KernelSnapshot(
        links: [
            Link(index: 1, name: "lo", flags: [.up, .loopback], hardwareType: 772), ethernet(2, "eth0", mac: 1),
            ethernet(3, "eth1", mac: 2), ethernet(4, "eth2", mac: 3),
        ],
        addresses: [a0, a0v6, a1, a2],
        routes: [
            connected(a0), connected(a0v6), connected(a1), connected(a2),
            Route(
                family: .inet, table: RoutingTable.main, destination: pfx("0.0.0.0/0"), proto: .dhcp,
                gateway: ip("10.10.10.1"), outputInterface: 2),
            Route(
                family: .inet6, table: RoutingTable.main, destination: pfx("::/0"), proto: .ra,
                gateway: ip("fe80::1"), outputInterface: 2, metric: 1024),
        ])
    return (snapshot, planThreeNICs(snapshot))
}

private func planThreeNICs(_ snapshot: KernelSnapshot) -> Plan {
    var configuration = Configuration()
    configuration.firstHostFallback = false
    return Planner(configuration: configuration).plan(
        snapshot: snapshot, slots: SlotTable(), hints: [3: [GatewayHint(gateway: ip("20.20.20.1"), source: .networkd)]])
}

/// The snapshot after the kernel carried out `plan`'s additions.
private func applied(_ plan: Plan, to snapshot: KernelSnapshot) -> KernelSnapshot {
    var s = snapshot
    for change in plan.changes {
        switch change {
        case .addRoute(let r), .replaceRoute(let r): s.routes.append(r)
        case .addRule(let r): s.rules.append(r)
        case .deleteRoute, .deleteRule: break
        }
    }
    return s
}

@Suite struct StatusReportTests {
    static let findings = [
        StatusReport.Finding("eth1: strict reverse-path filtering (rp_filter=1)"),
        StatusReport.Finding(severity: "error", "systemd-networkd removes foreign routes"),
    ]

    static func report(appliedFirst: Bool) -> StatusReport {
        var (snapshot, plan) = threeNICs()
        if appliedFirst {
            snapshot = applied(plan, to: snapshot)
            plan = planThreeNICs(snapshot)
        }
        return StatusReport(
            plan: plan, snapshot: snapshot, summary: "3 NICs, 4 rules",
            fromDaemon: true, paused: false, deferred: 1, lastChanges: ["eth1": "12:01:07 +20.20.20.16"],
            findings: findings)
    }

    @Test func isBuiltFromThePlanAndTheKernel() {
        let before = Self.report(appliedFirst: false)
        let after = Self.report(appliedFirst: true)
        #expect(before.nics.map(\.name) == ["eth0", "eth1", "eth2"])
        #expect(before.nics.map(\.rulesWanted) == [2, 1, 1])
        #expect(before.nics.map(\.rulesInstalled) == [0, 0, 0])
        #expect(before.pendingChanges > 0)
        #expect(after.nics.map(\.rulesInstalled) == [2, 1, 1])
        #expect(after.pendingChanges == 0)
        #expect(after.nics.allSatisfy { $0.routesInstalled > 0 })
        let eth0 = before.nics[0]
        #expect(eth0.gateways.map(\.family) == [.inet, .inet6])
        #expect(eth0.gateways.map(\.source) == [.mainTable, .routerAdvertisement])
        #expect(
            before.nics[1].gateways == [
                StatusReport.Gateway(family: .inet, address: ip("20.20.20.1"), source: .networkd)
            ])
        #expect(before.nics[2].gateways == [StatusReport.Gateway(family: .inet, address: nil, source: nil)])
        #expect(before.nics[2].notes.contains { $0.contains("no IPv4 gateway") })
        #expect(before.nics[1].lastChange == "12:01:07 +20.20.20.16")
        #expect(before.nics[1].mac == MACAddress("fa:16:3e:00:00:02"))
    }

    @Test(arguments: [false, true])
    func jsonRoundTrips(appliedFirst: Bool) throws {
        let report = Self.report(appliedFirst: appliedFirst)
        #expect(try JSONCoding.decode(StatusReport.self, from: JSONCoding.encode(report)) == report)
        // And through the wire, as nicroutectl receives it.
        #expect(try ControlCall.status.decode(ControlResponse.success(report.json).encoded()) == .success(report))
    }

    @Test func pausedOneShotReportRoundTrips() throws {
        var report = Self.report(appliedFirst: true)
        report.fromDaemon = false
        report.paused = true
        report.conflicts = ["route inet 10001 0.0.0.0/0: installed by boot"]
        #expect(try ControlCall.status.decode(ControlResponse.success(report.json).encoded()) == .success(report))
    }

    @Test func rendersNICsGatewaySourcesAndFindings() {
        let text = Self.report(appliedFirst: false).rendered()
        for expected in [
            "nicrouted: 3 NICs, 4 rules",
            "○ eth0 (fa:16:3e:00:00:01, up)", "○ eth1 (fa:16:3e:00:00:02, up)", "eth2",
            "IPv4 gateway: 10.10.10.1 (from main-table)",
            "IPv6 gateway: fe80::1 (from router advertisement)",
            "IPv4 gateway: 20.20.20.1 (from systemd-networkd lease)",
            "IPv4 gateway: none (subnet routes only)",
            "Addresses: 10.10.10.29/24 2001:db8:0:1::29/64",
            "Rules: 0 of 2 installed",
            "Last change: 12:01:07 +20.20.20.16",
            "change(s) pending: see 'nicroutectl plan'",
            "1 re-install(s) deferred",
            "Preflight:",
            "  warning: eth1: strict reverse-path filtering (rp_filter=1)",
            "  error: systemd-networkd removes foreign routes",
        ] {
            #expect(text.contains(expected), "missing \(expected.debugDescription) in:\n\(text)")
        }
        let installed = Self.report(appliedFirst: true).rendered()
        #expect(installed.contains("● eth0 (fa:16:3e:00:00:01, up)"))
        #expect(installed.contains("Rules: 2 of 2 installed"))
        #expect(!installed.contains("pending"))
    }

    @Test func rendersTheEmptyAndPausedCases() {
        var report = StatusReport(
            plan: Planner(configuration: Configuration()).plan(snapshot: KernelSnapshot(), slots: SlotTable()),
            snapshot: KernelSnapshot(), summary: "idle", fromDaemon: false, paused: true)
        #expect(report.rendered().contains("nicrouted is not running; computed now: idle"))
        #expect(report.rendered().contains("No managed NICs."))
        #expect(report.rendered().contains("Paused after 'flush'"))
        #expect(!report.rendered().contains("Preflight:"))
        report.paused = false
        #expect(!report.rendered().contains("Paused"))
    }

    struct BadJSON: Sendable, CustomTestStringConvertible {
        var text: String
        var testDescription: String { text }
    }

    /// Each of these, put into a valid report, must be refused with an error naming the key.
    @Test(arguments: [
        (#""table":-1"#, "nics[0].table: expected an integer in 0...4294967295, found -1"),
        (#""table":"10001""#, "nics[0].table: expected a number, found a string"),
        (#""table":1.5"#, "nics[0].table: expected an integer"),
        (#""table":4294967296"#, "nics[0].table: expected an integer in 0...4294967295"),
        (#""index":2147483648"#, "nics[0].index: expected an integer in -2147483648...2147483647"),
        (#""priority":-1"#, "nics[0].priority: expected an integer"),
        (#""rulesInstalled":-3"#, "nics[0].rulesInstalled: expected an integer"),
        (#""mac":"fa:16:3e""#, "nics[0].mac: expected a MAC address"),
        (#""mac":7"#, "nics[0].mac: expected a string, found a number"),
        (#""addresses":["10.0.0.300/24"]"#, "nics[0].addresses[0]: expected an address/length"),
        (#""lastChange":false"#, "nics[0].lastChange"),
        (#""colour":"blue""#, "nics[0].colour: unknown key"),
    ])
    func refusesMistypedNICFields(_ field: String, _ reason: String) throws {
        let report = Self.reportWithOneNIC()
        var text = JSONCoding.encodeString(report)
        let key = String(field.prefix { $0 != ":" })
        // Replace the key's value, or add the key.
        if let range = text.firstRange(of: key + ":") {
            let end = text[range.upperBound...].firstIndex { $0 == "," || $0 == "}" }!
            var valueEnd = end
            if text[range.upperBound] == "[" {
                valueEnd = text.index(after: text[range.upperBound...].firstIndex(of: "]")!)
            }
            text.replaceSubrange(range.lowerBound..<valueEnd, with: field)
        } else {
            text = text.replacing(#""name":"eth1","#, with: #""name":"eth1","# + field + ",")
        }
        #expect {
            try ControlCall.status.decode(answer(text))
        } throws: { error in
            let e = error as! ControlError
            return e.code == .malformedRequest && e.message.contains("not a status result: " + reason)
        }
    }

    @Test(arguments: [
        (#"{}"#, "summary: missing"),
        (#"{"summary":1}"#, "summary: expected a string, found a number"),
    ])
    func refusesReportsWithoutTheEssentials(_ text: String, _ reason: String) throws {
        #expect {
            try ControlCall.status.decode(answer(text))
        } throws: { error in (error as! ControlError).message == "the daemon's answer is not a status result: " + reason
        }
    }

    @Test func refusesUnknownTopLevelKeyAndMissingOnes() throws {
        guard case .object(var members) = Self.reportWithOneNICJSON else { Issue.record("not an object"); return }
        func decode(_ members: [String: JSONValue]) throws(ControlError) -> StatusReport {
            try ControlCall.status.decode(answer(JSONCoding.encodeString(JSONValue.object(members)))).get()
        }
        members["extra"] = 1
        #expect(throws: ControlError.self) { try decode(members) }
        members["extra"] = nil
        // A daemon older than forwarded connections sends no `forwarding`: "not reported".
        var old = members
        old["forwarding"] = nil
        #expect(try decode(old).forwarding == .unknown)
        members["paused"] = nil
        #expect(throws: ControlError.self) { try decode(members) }
    }

    /// The JSON form of a report is stable: the keys and shapes `nicroutectl status --json`
    /// has always printed, sorted, nulls written out.
    @Test func statusJSONIsStable() {
        let text = JSONCoding.encodeString(Self.reportWithOneNIC())
        #expect(
            text
                == #"{"conflicts":[],"deferred":0,"findings":[{"message":"m","severity":"warning"}],"#
                + #""forwarding":{"marks":[],"mask":"0x0","reason":"not reported","state":"off"},"fromDaemon":true,"#
                + #""nics":[{"addresses":["20.20.20.16/24"],"gateways":[{"address":"20.20.20.1","family":"ipv4","#
                + #""source":"main-table"},{"address":null,"family":"ipv6","source":null}],"index":3,"lastChange":null,"#
                + #""mac":"fa:16:3e:00:00:03","name":"eth1","notes":[],"priority":10001,"routesInstalled":0,"#
                + #""rulesInstalled":0,"rulesWanted":1,"state":"up","table":10001}],"paused":false,"pendingChanges":0,"#
                + #""summary":"s"}"#)
    }

    static func reportWithOneNIC() -> StatusReport {
        var report = try! JSONCoding.decode(StatusReport.self, from: Array(reportWithOneNICText.utf8))
        report.findings = [.init("m")]
        return report
    }

    static var reportWithOneNICJSON: JSONValue {
        try! JSONCoding.decode(JSONValue.self, from: JSONCoding.encode(reportWithOneNIC()))
    }

    static let reportWithOneNICText =
        #"{"conflicts":[],"deferred":0,"findings":[],"#
        + #""forwarding":{"marks":[],"mask":"0x0","reason":"not reported","state":"off"},"fromDaemon":true,"#
        + #""nics":[{"addresses":["20.20.20.16/24"],"gateways":[{"address":"20.20.20.1","family":"ipv4","#
        + #""source":"main-table"},{"address":null,"family":"ipv6","source":null}],"index":3,"lastChange":null,"#
        + #""mac":"fa:16:3e:00:00:03","name":"eth1","notes":[],"priority":10001,"routesInstalled":0,"#
        + #""rulesInstalled":0,"rulesWanted":1,"state":"up","table":10001}],"paused":false,"pendingChanges":0,"#
        + #""summary":"s"}"#

}

// MARK: - Preflight

@Suite struct PreflightTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        /// eth1's address: 20.20.20.16/24 (its own subnet) or one in eth0's subnet.
        var eth1: String = "20.20.20.16/24"
        var rpFilter: [String: Int] = [:]
        var arpIgnore: [String: Int] = [:]
        var arpAnnounce: [String: Int] = [:]
        var networkdRules = false
        var networkdRoutes = false
        /// Per expected finding, text it must contain; the count must match too.
        var expected: [[String]]
        var testDescription: String { name }
    }

    static let sharing = "10.10.10.30/24"
    static let arpSafe = ["eth0": 1, "eth1": 1]
    static let announceSafe = ["eth0": 2, "eth1": 2]

    static let cases: [Case] = [
        Case(name: "nothing to report", expected: []),
        Case(
            name: "strict rp_filter on a managed NIC", rpFilter: ["eth1": 1],
            expected: [["note:", "eth1: strict reverse-path filtering", "rp_filter=1", "nicroutectl check"]]),
        Case(
            name: "strict rp_filter on two managed NICs", rpFilter: ["eth0": 1, "eth1": 1],
            expected: [["note:", "eth0: strict reverse-path"], ["note:", "eth1: strict reverse-path"]]),
        Case(name: "loose rp_filter", rpFilter: ["eth0": 2, "eth1": 2], expected: []),
        Case(name: "rp_filter off", rpFilter: ["eth0": 0], expected: []),
        Case(name: "strict rp_filter on an unmanaged NIC", rpFilter: ["lo": 1, "docker0": 1], expected: []),
        Case(
            name: "two NICs share a subnet, ARP defaults", eth1: sharing,
            expected: [
                ["eth0 and eth1 share 10.10.10.0/24", "net.ipv4.conf.{eth0,eth1}.arp_ignore=1 and arp_announce=2"]
            ]),
        Case(
            name: "two NICs share a subnet, ARP set on both", eth1: sharing, arpIgnore: arpSafe,
            arpAnnounce: announceSafe, expected: []),
        Case(
            name: "two NICs share a subnet, stricter ARP values", eth1: sharing, arpIgnore: ["eth0": 2, "eth1": 8],
            arpAnnounce: announceSafe, expected: []),
        Case(
            name: "two NICs share a subnet, ARP set on eth0 only", eth1: sharing, arpIgnore: ["eth0": 1],
            arpAnnounce: ["eth0": 2],
            expected: [["eth0 and eth1 share 10.10.10.0/24", "net.ipv4.conf.{eth1}."]]),
        Case(
            name: "two NICs share a subnet, arp_ignore without arp_announce", eth1: sharing, arpIgnore: arpSafe,
            expected: [["share 10.10.10.0/24", "{eth0,eth1}"]]),
        Case(
            name: "two NICs share a subnet, arp_announce=1 is not enough", eth1: sharing, arpIgnore: arpSafe,
            arpAnnounce: ["eth0": 2, "eth1": 1], expected: [["{eth1}"]]),
        Case(name: "ARP settings alone say nothing", arpIgnore: ["eth0": 0], expected: []),
        Case(name: "host addresses do not share a subnet", eth1: "10.10.10.30/32", expected: []),
        Case(
            name: "networkd manages foreign rules", networkdRules: true,
            expected: [["ManageForeignRoutingPolicyRules=yes", "/etc/systemd/networkd.conf.d/"]]),
        Case(name: "networkd manages foreign routes", networkdRoutes: true, expected: [["ManageForeignRoutes=yes"]]),
        Case(
            name: "everything at once", eth1: sharing, rpFilter: ["eth0": 1], networkdRules: true, networkdRoutes: true,
            expected: [
                ["note:", "eth0: strict"], ["eth0 and eth1 share"], ["ManageForeignRoutingPolicyRules"],
                ["ManageForeignRoutes="],
            ]),
    ]

    @Test(arguments: cases)
    func findings(_ c: Case) {
        let (_, plan) = threeNICs(eth1: c.eth1)
        var inputs = Preflight.Inputs()
        inputs.rpFilter = c.rpFilter
        inputs.arpIgnore = c.arpIgnore
        inputs.arpAnnounce = c.arpAnnounce
        inputs.networkdManagesForeignRules = c.networkdRules
        inputs.networkdManagesForeignRoutes = c.networkdRoutes
        let findings = Preflight.findings(plan: plan, inputs: inputs)
        #expect(findings.count == c.expected.count, "\(findings.map(\.message))")
        // Each expected finding: the parts of its message, after "note:" for a note (else a warning).
        for (finding, parts) in zip(findings, c.expected) {
            #expect(finding.severity == (parts.first == "note:" ? "note" : "warning"), "\(finding.message)")
            for part in parts.drop(while: { $0 == "note:" }) {
                #expect(finding.message.contains(part), "\(finding.message)")
            }
        }
    }
}
