import Foundation
import Netlink
import NicrouteCore
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// True when the tests can create network namespaces.
let runningAsRoot = getuid() == 0

/// A failed `ip` command, with what it printed.
struct CommandError: Error, CustomStringConvertible {
    var command: [String]
    var status: Int32
    var standardError: String
    var description: String { "\(command.joined(separator: " ")) exited with \(status): \(standardError)" }
}

/// Runs iproute2's `ip`, the oracle of the real-kernel tests.
enum IPTool {
    static let path =
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        } ?? "/sbin/ip"

    /// Runs `ip ARGUMENTS...` and returns what it printed; throws when it exits non-zero.
    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Drain stderr concurrently so that neither pipe can fill up and block `ip`.
        let errorData = Mutex(Data())
        let drained = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            let data = errors.fileHandleForReading.readDataToEndOfFile()
            errorData.withLock { $0 = data }
            drained.signal()
        }
        let data = output.fileHandleForReading.readDataToEndOfFile()
        drained.wait()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CommandError(
                command: ["ip"] + arguments, status: process.terminationStatus,
                standardError: String(decoding: errorData.withLock { $0 }, as: UTF8.self))
        }
        return String(decoding: data, as: UTF8.self)
    }
}

/// A network namespace made for one test: unique name, deleted by `delete()` (call it from a
/// `defer` right after creating it) or, as a last resort, when the object goes away.
///
/// All commands run inside the namespace (`ip -n NAME ...`); nothing touches the root namespace.
final class TestNamespace: @unchecked Sendable {
    let name: String
    private let deleted = Mutex(false)

    /// `ip netns add` mutates shared mounts under /run/netns: one at a time.
    private static let lifecycleLock = Mutex(())

    /// Creates `nlt-<pid>-<random>`.
    init() throws {
        Self.deleteOrphans
        name = "nlt-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"
        _ = try Self.lifecycleLock.withLock { _ in try IPTool.run(["netns", "add", name]) }
    }

    /// Once per process: deletes the namespaces of test processes that were killed before their
    /// `defer` could run (`nlt-<pid>-*` whose pid no longer exists). Live processes' are left alone.
    private static let deleteOrphans: Void = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []
        for name in names where name.hasPrefix("nlt-") {
            let parts = name.split(separator: "-")
            guard parts.count == 3, let pid = pid_t(parts[1]), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH
            else { continue }
            print("note: deleting network namespace \(name), left behind by a killed test process")
            _ = try? lifecycleLock.withLock { _ in try IPTool.run(["netns", "delete", name]) }
        }
    }()

    /// The path `RouteNetlink(networkNamespace:)` opens.
    var path: String { "/run/netns/\(name)" }

    /// Runs `ip -n NAME ARGUMENTS...`.
    @discardableResult
    func ip(_ arguments: String...) throws -> String { try ip(arguments) }

    /// Runs `ip -n NAME ARGUMENTS...`.
    @discardableResult
    func ip(_ arguments: [String]) throws -> String { try IPTool.run(["-n", name] + arguments) }

    /// Runs `ip -j -n NAME ARGUMENTS...` and decodes its JSON.
    func json<T: Decodable>(_ type: T.Type, _ arguments: String...) throws -> T {
        let text = try IPTool.run(["-j", "-n", name] + arguments)
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase  // addr_info -> addrInfo
        return try decoder.decode(T.self, from: Data(text.utf8))
    }

    /// Runs `ip -n NAME -batch FILE` over `commands`, one per line.
    func batch(_ commands: [String]) throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString).batch")
        try (commands.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        try IPTool.run(["-n", name, "-batch", file.path])
    }

    /// Adds the veth pair `a`/`b` inside the namespace, without IPv6 link-local addresses (so no
    /// duplicate address detection runs behind the tests' back), and brings both up unless told
    /// otherwise.
    func addVethPair(_ a: String, _ b: String, up: Bool = true) throws {
        try ip("link", "add", a, "type", "veth", "peer", "name", b)
        for link in [a, b] {
            try ip("link", "set", "dev", link, "addrgenmode", "none")
            if up { try ip("link", "set", "dev", link, "up") }
        }
    }

    /// The index of `link` in the namespace.
    func index(of link: String) throws -> Int32 {
        let links = try json([IPLinkJSON].self, "link", "show", "dev", link)
        guard let index = links.first?.ifindex else {
            throw CommandError(command: [link], status: 0, standardError: "no index")
        }
        return index
    }

    /// Deletes the namespace (idempotent). Links inside it go with it.
    func delete() {
        let wasDeleted = deleted.withLock { d in
            defer { d = true }
            return d
        }
        guard !wasDeleted else { return }
        do {
            _ = try Self.lifecycleLock.withLock { _ in try IPTool.run(["netns", "delete", name]) }
        } catch {
            print("warning: could not delete network namespace \(name): \(error)")
        }
    }

    deinit { delete() }
}

// MARK: ip's JSON

/// One entry of `ip -j -d link show`.
struct IPLinkJSON: Decodable {
    struct LinkInfo: Decodable { var infoKind: String? }
    var ifindex: Int32
    var ifname: String
    var flags: [String]
    var mtu: UInt32
    var operstate: String
    var linkType: String
    var address: String?
    var linkinfo: LinkInfo?
}

/// One entry of `ip -j address show`.
struct IPAddressJSON: Decodable {
    struct Info: Decodable {
        var family: String
        var local: String
        var address: String?
        var prefixlen: UInt8
        var scope: String
        var label: String?
        var secondary: Bool?
        var temporary: Bool?
        var nodad: Bool?
        var optimistic: Bool?
        var dadfailed: Bool?
        var deprecated: Bool?
        var tentative: Bool?
        var noprefixroute: Bool?
        var dynamic: Bool?
    }
    var ifindex: Int32
    var ifname: String
    var addrInfo: [Info]
}

/// One entry of `ip -j route show`.
struct IPRouteJSON: Decodable {
    var dst: String
    var gateway: String?
    var dev: String?
    var `protocol`: String?
    var prefsrc: String?
    var metric: UInt32?
    var table: String?
}

/// One entry of `ip -j rule show`.
struct IPRuleJSON: Decodable {
    var priority: UInt32
    var src: String
    var srclen: UInt8?
    var table: String?
    var `protocol`: String?
}

/// ip prints table and protocol numbers as names when it knows one: back to numbers.
enum IPNames {
    static func table(_ text: String?) -> UInt32? {
        switch text {
        case nil: nil
        case "main": RoutingTable.main
        case "local": RoutingTable.local
        case "default": RoutingTable.default
        case let text?: UInt32(text)
        }
    }

    static func `protocol`(_ text: String?) -> UInt8? {
        let names: [String: UInt8] = ["unspec": 0, "redirect": 1, "kernel": 2, "boot": 3, "static": 4, "nicroute": 110]
        guard let text else { return nil }
        return names[text] ?? UInt8(text)
    }

    static func scope(_ text: String) -> Scope? {
        let names: [String: Scope] = [
            "global": .universe, "site": .site, "link": .link, "host": .host, "nowhere": .nowhere,
        ]
        return names[text] ?? UInt8(text).map(Scope.init(rawValue:))
    }
}

// MARK: Events

/// Reads a `RouteEventReader` as the daemon does (wait for its descriptor, then drain), so that a
/// test can act and then wait, with a deadline, for the event it expects, never forever.
final class EventRecorder {
    private let reader: RouteEventReader
    private var events: [RouteEvent] = []
    private var cursor = 0

    init(_ reader: RouteEventReader) {
        self.reader = reader
    }

    /// Every event received so far, with those already queued.
    var all: [RouteEvent] {
        drain()
        return events
    }

    /// Waits up to `timeout` for an event, after the last one matched, that satisfies `predicate`.
    func next(timeout: Duration = .seconds(5), where predicate: (RouteEvent) -> Bool) -> RouteEvent? {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while true {
            drain()
            if cursor < events.count, let hit = events[cursor...].firstIndex(where: predicate) {
                cursor = hit + 1
                return events[hit]
            }
            let left = ContinuousClock.now.duration(to: deadline)
            if left <= .zero { return nil }
            // poll(2), as sd-event would: readable when a datagram (or an error) is queued.
            var fd = pollfd(fd: reader.descriptor, events: Int16(POLLIN), revents: 0)
            let (seconds, attoseconds) = left.components
            _ = poll(&fd, 1, Int32(min(seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1, 1000)))
        }
    }

    /// Reads what is queued; a failed socket is the test's failure.
    private func drain() {
        do {
            try reader.drain { events.append($0) }
        } catch {
            Issue.record("the event subscription failed: \(error)")
        }
    }
}
