// libFuzzer targets for every parser of untrusted bytes, in one executable (wireguard-tools'
// src/fuzz/ keeps one per parser; one binary here builds once and links once). The environment
// variable NICROUTE_FUZZ_TARGET picks the parser (default `netlink`):
//
//   netlink         what the kernel sends: NetlinkMessage.split, RouteCodec.decode/decodeError
//   control         a control request (any local user) and a daemon's answer: ControlRequest,
//                   and the answer read as each command's typed result (ControlCall.decode)
//   config          nicroute.conf and its drop-ins: ConfigurationParser, with the globs it yields
//   networkd-lease  /run/systemd/netif/leases/N, NetworkManager internal leases: LeaseParser.networkd
//   dhclient-lease  ISC dhclient leases files: LeaseParser.dhclient(interface: "eth0")
//   dhcpcd-lease    dhcpcd's raw DHCP message: LeaseParser.dhcpcd
//   networkmanager-dhcp4  NetworkManager's DHCPv4 options (D-Bus DHCP4Config.Options), in the
//                   `nmcli` form: LeaseParser.nmcliDHCP4Options, then networkManagerDHCP4
//   network-data    the config drive's network_data.json: LeaseParser.networkData
//   json            JSONDecoder into a JSONValue (any JSON, as JSONCoding reads a document
//                   to name what it found), and back
//   slots           the state file /var/lib/nicroute/slots: SlotTable(parsing:), assign, serialized
//
// Each must throw or return nil, never trap; where a parser has a round trip, the target checks
// it too and aborts (a crash for libFuzzer) when it does not hold. The text targets also hold
// every word of their input against the C library: `IPAddress(word)` must agree with
// `inet_pton(3)`.
//
// Built with `-sanitize=fuzzer,address` (scripts/fuzz-smoke.sh), main hands over to libFuzzer's
// driver. In a normal build the driver is absent and main replays the files (or directories of
// files) given as arguments through the same function: a crash artifact or a seed corpus can be
// rerun under the debugger without the sanitizers:
//
//   NICROUTE_FUZZ_TARGET=control swift run nicroute-fuzz fuzz-artifacts/crash-...

import CFuzzer
import Netlink
import NicrouteCore

#if canImport(Glibc)
import Glibc
#endif

/// One fuzz target: a parser of untrusted bytes.
enum FuzzTarget: String, CaseIterable {
    case netlink
    case control
    case config
    case networkdLease = "networkd-lease"
    case dhclientLease = "dhclient-lease"
    case dhcpcdLease = "dhcpcd-lease"
    case networkManagerDHCP4 = "networkmanager-dhcp4"
    case networkData = "network-data"
    case json
    case slots

    /// The target NICROUTE_FUZZ_TARGET names (`netlink` when it is unset); nil for an unknown name.
    static let selected: FuzzTarget? = {
        guard let name = getenv("NICROUTE_FUZZ_TARGET").map({ String(cString: $0) }), !name.isEmpty else {
            return .netlink
        }
        return FuzzTarget(rawValue: name)
    }()

    /// Feeds `bytes` to the target's parser.
    func run(_ bytes: [UInt8]) {
        switch self {
        case .netlink: Self.netlink(bytes)
        case .control: Self.control(bytes)
        case .config: Self.config(bytes)
        case .networkdLease:
            Self.gateway(LeaseParser.networkd(Self.text(bytes)))
            Self.addresses(Self.text(bytes))
        case .dhclientLease:
            Self.gateway(LeaseParser.dhclient(Self.text(bytes), interface: "eth0"))
            Self.addresses(Self.text(bytes))
        case .dhcpcdLease: Self.gateway(LeaseParser.dhcpcd(bytes))
        case .networkManagerDHCP4:
            let options = LeaseParser.nmcliDHCP4Options(Self.text(bytes))
            let gateway = LeaseParser.networkManagerDHCP4(options)
            Self.gateway(gateway)
            // The gateway is one of the words NetworkManager wrote, never made up.
            if let gateway {
                let words = options.values.flatMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }) }
                Self.check(
                    words.contains { IPAddress($0) == gateway }, "gateway \(gateway) is in no option of \(options)")
            }
            Self.addresses(Self.text(bytes))
        case .networkData:
            Self.networkData(bytes)
            Self.addresses(Self.text(bytes))
        case .json: Self.json(bytes)
        case .slots: Self.slots(bytes)
        }
    }

    /// Files become text the way the daemon reads them (`Files.readText`).
    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// Ends the run as a crash, with the reason on stderr, when `condition` does not hold.
    static func check(_ condition: Bool, _ reason: @autoclosure () -> String) {
        guard !condition else { return }
        printError("nicroute-fuzz: invariant violated: \(reason())")
        abort()
    }

    /// The bytes as the slot state file (the daemon's own, but a disk or a hand edit may have
    /// mangled it): the parsed table round-trips through its persisted form, and assigning slots
    /// keeps them unique and inside the band.
    static func slots(_ bytes: [UInt8]) {
        var table = SlotTable(parsing: Self.text(bytes))
        let again = SlotTable(parsing: table.serialized())
        check(again == table, "slots \(table.slots) came back as \(again.slots)")
        let keys = ["52:54:00:00:00:01", "name:eth1"] + table.slots.keys.sorted().prefix(3)
        let capacity = bytes.count % 7 + 1
        table.assign(keys, capacity: capacity)
        let values = Array(table.slots.values)
        check(values.allSatisfy { $0 < capacity }, "a slot outside 0..<\(capacity): \(table.slots)")
        check(Set(values).count == values.count, "two keys share a slot: \(table.slots)")
    }

    /// Decodes `bytes` as one datagram from the kernel, and re-encodes what it decoded.
    static func netlink(_ bytes: [UInt8]) {
        guard let messages = try? NetlinkMessage.split(bytes) else { return }
        for message in messages {
            _ = try? RouteCodec.decodeError(message)
            switch try? RouteCodec.decode(message) {
            case .route(let route):
                _ = try? RouteCodec.routeRequest(MessageType.newRoute, flags: 0, route: route, sequence: 0)
                _ = IPCommand.route("add", route)
            case .rule(let rule):
                _ = try? RouteCodec.ruleRequest(MessageType.newRule, flags: 0, rule: rule, sequence: 0)
                _ = IPCommand.rule("add", rule)
            case .neighbor(let neighbor):
                _ = try? RouteCodec.neighborProbeRequest(
                    address: neighbor.address, linkIndex: neighbor.linkIndex, sequence: 0)
            case .address(let address):
                _ = address.subnet
            case .link, nil:
                break
            }
        }
    }

    /// The bytes as a request line (what any local user may send the daemon) and as a daemon's
    /// answer to each command (what `nicroutectl` reads), with the codec's round trips; a status
    /// result is also rendered, as `nicroutectl status` does.
    static func control(_ bytes: [UInt8]) {
        if let request = try? ControlRequest.decode(bytes) {
            check((try? ControlRequest.decode(request.encoded())) == request, "request \(request) does not round-trip")
        }
        answer(bytes, to: .status).map { _ = $0.rendered() }
        answer(bytes, to: .plan)
        answer(bytes, to: .reconfigure)
        answer(bytes, to: .flush)
        answer(bytes, to: ControlCall(.status, as: JSONValue.self))
    }

    /// The bytes as the daemon's answer to `call`; when they read, the answer sent again reads
    /// the same. Returns the result, if it is one.
    @discardableResult
    static func answer<Output: Encodable & Equatable & Sendable>(
        _ bytes: [UInt8], to call: ControlCall<Output>
    ) -> Output? {
        guard let answer = try? call.decode(bytes) else { return nil }
        let response: ControlResponse =
            switch answer {
            case .success(let result): .success(ControlResult(result))
            case .failure(let error): .failure(error)
            }
        let again = try? call.decode(response.encoded())
        check(again == answer, "\(call.command) answer \(response) came back as \(again.map { "\($0)" } ?? "an error")")
        return try? answer.get()
    }

    /// The bytes as a configuration file over the defaults, and as a `--manage` argument; every
    /// interface pattern it yields is matched against a few names (the glob matcher).
    static func config(_ bytes: [UInt8]) {
        let text = Self.text(bytes)
        Self.addresses(text)
        var matches = ConfigurationParser.parseManageList(text)
        if let configuration = try? ConfigurationParser.parse(text, file: "fuzz.conf", into: Configuration()) {
            matches += configuration.manage + configuration.ignore + configuration.gateways.map(\.match)
        }
        let mac = MACAddress(bytes: [0xfa, 0x16, 0x3e, 0, 0, 1])
        for match in matches.prefix(64) {
            for name in ["eth0", "ens3", "veth-a.b", "", String(text.unicodeScalars.prefix(16))] {
                _ = match.matches(name: name, mac: mac)
            }
        }
    }

    /// The address parser against the C library's: every word of `text` that `IPAddress`
    /// accepts, `inet_pton` accepts as the same address, and the other way round (the files
    /// these targets read are full of addresses, and the words around them are near misses).
    static func addresses(_ text: String) {
        let words = text.unicodeScalars.split(whereSeparator: { " \t\r\n,;=\"/{}[]()".unicodeScalars.contains($0) })
        // Words without '.' or ':' are no address to either parser: skipped, for speed.
        for scalars in words.prefix(512)
        where scalars.count <= 64 && !scalars.contains("\0") && scalars.contains(where: { $0 == "." || $0 == ":" }) {
            let word = String(String.UnicodeScalarView(scalars))
            let ours = IPAddress(word)
            let libc = presentationToAddress(word)
            check(ours == libc, "IPAddress(\(word.debugDescription)) is \(show(ours)), inet_pton says \(show(libc))")
            if let ours { check(IPAddress(ours.description) == ours, "\(ours) does not round-trip through its text") }
        }
    }

    /// An address, or "nil", for a message.
    static func show(_ address: IPAddress?) -> String { address.map { "\($0)" } ?? "nil" }

    /// `inet_pton(3)`'s reading of `text`: IPv4 dotted quad, else IPv6; nil when neither.
    static func presentationToAddress(_ text: String) -> IPAddress? {
        var buffer = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, text, &buffer) == 1 { return IPAddress(bytes: buffer[0..<4]) }
        if inet_pton(AF_INET6, text, &buffer) == 1 { return IPAddress(bytes: buffer) }
        return nil
    }

    /// A lease parser's answer is an IPv4 gateway or nothing.
    static func gateway(_ gateway: IPAddress?) {
        guard let gateway else { return }
        check(gateway.family == .inet, "lease gateway \(gateway) is not IPv4")
        check(IPAddress(gateway.description) == gateway, "gateway \(gateway) does not round-trip through its text")
    }

    /// The gateways of a network_data.json, each of its family; or an error that names what
    /// is wrong.
    static func networkData(_ bytes: [UInt8]) {
        let gateways: [MACAddress: NetworkDataGateways]
        do { gateways = try LeaseParser.networkData(Self.text(bytes)) } catch {
            check(!error.reason.isEmpty, "an error without a reason at \(error.path)")
            return
        }
        for (mac, gateways) in gateways {
            check(mac.bytes.count == 6, "MAC \(mac) is not 6 bytes")
            check(gateways.ipv4.map { $0.family == .inet } ?? true, "IPv4 gateway \(gateways.ipv4!) of \(mac)")
            check(gateways.ipv6.map { $0.family == .inet6 } ?? true, "IPv6 gateway \(gateways.ipv6!) of \(mac)")
        }
    }

    /// Decodes a JSONValue (any JSON, as JSONCoding reads a document to name what it found), and
    /// when the text decodes: its encoding decodes to the same value and encodes to the same text.
    static func json(_ bytes: [UInt8]) {
        guard let value = try? JSONCoding.decode(JSONValue.self, from: bytes) else { return }
        let text = JSONCoding.encode(value)
        let again = try? JSONCoding.decode(JSONValue.self, from: text)
        check(again == value, "\(value) does not decode back to the same value")
        check(again.map { JSONCoding.encode($0) } == text, "\(value) encodes differently the second time")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    FuzzTarget.selected?.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
}

/// Writes `message` and a newline to standard error.
func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

/// The contents of the file at `path`, nil when it cannot be read.
func readFile(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 64 * 1024)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        guard n >= 0 else { return nil }
        if n == 0 { return out }
        out += chunk[0..<n]
    }
}

/// `path` itself when it is a file, the regular files in it (sorted) when it is a directory;
/// nil when it cannot be read.
func inputs(_ path: String) -> [String]? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    guard info.st_mode & S_IFMT == S_IFDIR else { return [path] }
    guard let directory = opendir(path) else { return nil }
    defer { closedir(directory) }
    var files: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) {
            String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self)
        }
        let file = path + "/" + name
        var fileInfo = stat()
        if name != ".", name != "..", stat(file, &fileInfo) == 0, fileInfo.st_mode & S_IFMT == S_IFREG {
            files.append(file)
        }
    }
    return files.sorted()
}

guard let target = FuzzTarget.selected else {
    let name = String(cString: getenv("NICROUTE_FUZZ_TARGET"))
    printError(
        "nicroute-fuzz: unknown NICROUTE_FUZZ_TARGET '\(name)' (expected one of: "
            + FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ") + ")")
    exit(2)
}

if cfuzzer_driver_available() != 0 {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) })
}

var replayed = 0
var unreadable = 0
for argument in CommandLine.arguments.dropFirst() where !argument.hasPrefix("-") {
    guard let files = inputs(argument) else {
        unreadable += 1
        continue
    }
    for file in files {
        guard let bytes = readFile(file) else {
            unreadable += 1
            continue
        }
        target.run(bytes)
        replayed += 1
    }
}
print(
    "nicroute-fuzz[\(target.rawValue)]: replayed \(replayed) input(s)"
        + (unreadable > 0 ? ", \(unreadable) unreadable" : ""))
exit(unreadable > 0 ? 1 : 0)
