// libFuzzer target for the rtnetlink decoder: every byte the kernel could send goes through
// NetlinkMessage.split, RouteCodec.decode and RouteCodec.decodeError, which must throw, never trap.
//
// Built with `-sanitize=fuzzer,address` (scripts/fuzz-smoke.sh), main hands over to libFuzzer's
// driver. In a normal build the driver is absent and main replays the files (or directories of
// files) given as arguments through the same function: a crash artifact or the seed corpus can
// be rerun under the debugger without the sanitizers.

import CFuzzer
import Netlink
import NicrouteCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Decodes `bytes` as one datagram from the kernel, and re-encodes what it decoded.
func fuzz(_ bytes: [UInt8]) {
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

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzz(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    return 0
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
        fuzz(bytes)
        replayed += 1
    }
}
print("netlink-fuzz: replayed \(replayed) input(s)" + (unreadable > 0 ? ", \(unreadable) unreadable" : ""))
exit(unreadable > 0 ? 1 : 0)
