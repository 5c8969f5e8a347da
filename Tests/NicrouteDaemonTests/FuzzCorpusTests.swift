import Foundation
import NicrouteCore
import Testing

// The seed corpora of the fuzz targets (Sources/NetlinkFuzz, Tests/Fuzz/<target>-corpus),
// replayed in a normal build through the parsers each target feeds: no seed may trap, and the
// seeds meant to be valid must be accepted. A seed named `invalid-*` must be refused; one named
// `none-*` is well-formed but holds no gateway. (The netlink corpus has its own test:
// NetlinkTests/CorpusTests.)

private let fuzzDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz")

/// One seed: the target it belongs to and its file name.
struct Seed: Sendable, CustomTestStringConvertible {
    var target: String
    var file: String
    var testDescription: String { "\(target)/\(file)" }

    var bytes: [UInt8] {
        get throws { [UInt8](try Data(contentsOf: fuzzDirectory.appendingPathComponent("\(target)-corpus/\(file)"))) }
    }
    var text: String { get throws { String(decoding: try bytes, as: UTF8.self) } }
    var isInvalid: Bool { file.hasPrefix("invalid-") }
    var holdsNothing: Bool { file.hasPrefix("none-") }
}

@Suite struct FuzzCorpusTests {
    static let targets = [
        "control", "config", "networkd-lease", "dhclient-lease", "dhcpcd-lease", "networkmanager-dhcp4", "network-data",
        "json", "slots",
    ]

    static func files(_ target: String) -> [String] {
        let directory = fuzzDirectory.appendingPathComponent("\(target)-corpus").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    static let seeds: [Seed] = targets.flatMap { target in files(target).map { Seed(target: target, file: $0) } }

    @Test(arguments: targets + ["netlink"])
    func everyTargetHasASmallCorpus(_ target: String) throws {
        let files = Self.files(target)
        #expect(files.count >= 3)
        let sizes = try files.map {
            try Data(contentsOf: fuzzDirectory.appendingPathComponent("\(target)-corpus/\($0)")).count
        }
        // The netlink corpus holds the kernel's own dumps, a little larger than the others.
        #expect(sizes.reduce(0, +) < (target == "netlink" ? 100 : 50) * 1024)
    }

    @Test(arguments: seeds)
    func seedIsAcceptedOrRefusedAsNamed(_ seed: Seed) throws {
        switch seed.target {
        case "control":
            let bytes = try seed.bytes
            let request = try? ControlRequest.decode(bytes)
            let response = try? ControlCall(.status, as: JSONValue.self).decode(bytes)
            if seed.file.hasPrefix("request-") {
                let request = try #require(request)
                #expect(try ControlRequest.decode(request.encoded()) == request)
            } else if seed.file.hasPrefix("response-") {
                #expect(response != nil)
                // Each answer reads as its command's result, and sent again, reads the same.
                switch seed.file {
                case "response-status", "response-status-forwarding":
                    let report = try ControlCall.status.decode(bytes).get()
                    #expect(report.nics.map(\.name) == ["eth0", "eth1"])
                    #expect(
                        try ControlCall.status.decode(ControlResponse.success(report.json).encoded())
                            == .success(report))
                    #expect(report.rendered().contains("IPv4 gateway: 10.0.0.1 (from main-table)"))
                case "response-plan":
                    let plan = try ControlCall.plan.decode(bytes).get()
                    #expect(plan.changes.count == 1)
                    #expect(try ControlCall.plan.decode(ControlResponse.success(plan.json).encoded()) == .success(plan))
                case "response-reconfigure":
                    let applied = try ControlCall.reconfigure.decode(bytes).get()
                    #expect(applied.nics == 2)
                    #expect(
                        try ControlCall.reconfigure.decode(ControlResponse.success(applied.json).encoded())
                            == .success(applied))
                case "response-flush":
                    let flushed = try ControlCall.flush.decode(bytes).get()
                    #expect(flushed.removed.count == 1 && flushed.problems.isEmpty)
                    #expect(
                        try ControlCall.flush.decode(ControlResponse.success(flushed.json).encoded())
                            == .success(flushed))
                default:
                    let answer = try #require(response)
                    guard case .failure(let error) = answer else {
                        Issue.record("\(seed.file) is not an error")
                        break
                    }
                    #expect(try ControlCall.status.decode(ControlResponse.failure(error).encoded()) == .failure(error))
                }
            } else {
                #expect(seed.isInvalid)
                #expect(request == nil)
                #expect(response == nil)
            }
        case "config":
            let parsed = Result { try ConfigurationParser.parse(try seed.text, file: seed.file, into: Configuration()) }
            if seed.isInvalid {
                #expect(throws: ConfigurationError.self) { try parsed.get() }
            } else {
                let configuration = try parsed.get()
                #expect(configuration != Configuration())
                if seed.file == "drop-in-reset" {
                    // A POSIX character class is a glob, not a mistyped MAC address.
                    #expect(configuration.manage.contains { $0.matches(name: "eth7", mac: nil) })
                }
            }
        case "networkd-lease":
            #expect((LeaseParser.networkd(try seed.text) == nil) == seed.holdsNothing)
        case "dhclient-lease":
            #expect((LeaseParser.dhclient(try seed.text, interface: "eth0") == nil) == seed.holdsNothing)
        case "dhcpcd-lease":
            #expect((LeaseParser.dhcpcd(try seed.bytes) == nil) == seed.holdsNothing)
        case "networkmanager-dhcp4":
            let options = LeaseParser.nmcliDHCP4Options(try seed.text)
            #expect(!options.isEmpty)
            #expect((LeaseParser.networkManagerDHCP4(options) == nil) == seed.holdsNothing)
        case "network-data":
            let text = try seed.text
            let parsed = Result { () throws(NetworkDataError) in try LeaseParser.networkData(text) }
            if seed.isInvalid {
                #expect(throws: NetworkDataError.self) { try parsed.get() }
            } else {
                #expect(try parsed.get().isEmpty == seed.holdsNothing)
            }
        case "json":
            let parsed = Result { try JSONCoding.decode(JSONValue.self, from: try seed.bytes) }
            if seed.isInvalid {
                #expect(throws: JSONDecodeError.self) { try parsed.get() }
            } else {
                let value = try parsed.get()
                #expect(try JSONCoding.decode(JSONValue.self, from: JSONCoding.encode(value)) == value)
            }
        case "slots":
            let table = SlotTable(parsing: try seed.text)
            #expect(table.slots.isEmpty == seed.holdsNothing)
            #expect(SlotTable(parsing: table.serialized()) == table)
        default:
            Issue.record("no replay for target \(seed.target)")
        }
    }

    /// The fuzz executable of a normal build, next to the test bundle when `swift build` or
    /// `swift test` built it.
    static var replayBinary: String? {
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [directory, directory.deletingLastPathComponent()].map {
            $0.appendingPathComponent("nicroute-fuzz").path
        }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// The executable's own replay mode (what a crash artifact is rerun with) over each corpus:
    /// the target named in NICROUTE_FUZZ_TARGET reads every seed and exits 0.
    @Test(
        .enabled(if: replayBinary != nil, "nicroute-fuzz not built next to the tests"), arguments: targets + ["netlink"]
    )
    func fuzzExecutableReplaysTheCorpus(_ target: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(Self.replayBinary))
        process.arguments = [fuzzDirectory.appendingPathComponent("\(target)-corpus").path]
        process.environment = ProcessInfo.processInfo.environment.merging(
            ["NICROUTE_FUZZ_TARGET": target, "SWIFT_BACKTRACE": "enable=no"], uniquingKeysWith: { _, new in new })
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(output.contains("nicroute-fuzz[\(target)]: replayed \(Self.files(target).count) input(s)"), "\(output)")
    }

    @Test(.enabled(if: replayBinary != nil, "nicroute-fuzz not built next to the tests"))
    func fuzzExecutableRefusesAnUnknownTarget() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try #require(Self.replayBinary))
        process.environment = ["NICROUTE_FUZZ_TARGET": "nosuch"]
        process.standardError = Pipe()
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 2)
    }
}
