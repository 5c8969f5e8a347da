import Foundation
import NicrouteCore
import Synchronization
import Testing

@testable import NicrouteDaemon

#if canImport(Glibc)
import Glibc
#endif

// The control protocol, asserted once and run twice (hummingbird's `.router` / `.live` testing):
// in process through `ControlService.handle`, and over a real `ControlServer` on a Unix socket.
// Over the socket the caller's credentials are real: callers other than root run as a child
// process under `setpriv --reuid/--regid/--groups`. Then the socket's own limits: garbage, size,
// slow and vanishing clients, many clients at once, more than the server serves at once.

// MARK: - Test doubles and clients

/// A backend that records the commands that reached it: a refused request must never get here.
final class RecordingBackend: ControlBackend, @unchecked Sendable {
    private let reached = Mutex<[ControlCommand]>([])
    private let delay: Duration

    init(delay: Duration = .zero) { self.delay = delay }

    /// Answers after `delay`, holding the loop's thread meanwhile, as a slow pass would.
    func perform(_ command: ControlCommand, reply: @escaping (ControlResponse) -> Void) {
        reached.withLock { $0.append(command) }
        if delay > .zero {
            usleep(UInt32(delay.components.attoseconds / 1_000_000_000_000 + delay.components.seconds * 1_000_000))
        }
        reply(.success(ControlResult(Self.result(command))))
    }

    /// What the backend answers to `command`: nested, so that the whole JSON travels. Not the
    /// command's own result type: clients here read it as any JSON (`readAnswer`).
    static func result(_ command: ControlCommand) -> JSONValue {
        [
            "command": .string(command.rawValue),
            "nested": ["list": [1, "two", nil, ["deep": true]], "text": "é\n\"x\""],
        ]
    }

    var commands: [ControlCommand] { reached.withLock { $0 } }
}

/// A daemon's answer as a client reads it, its result as any JSON (`RecordingBackend`'s).
typealias Answer = Result<JSONValue, ControlError>

/// Reads the daemon's answer `bytes` as `Answer`, as `ControlClient` reads its answers.
func readAnswer(_ bytes: some Collection<UInt8>) throws(ControlError) -> Answer {
    try ControlCall(.status, as: JSONValue.self).decode(bytes)
}

extension ControlCall {
    /// A result the daemon answered with, read as a client reads it: sent in a response, decoded
    /// as this call's result type.
    func read(_ result: ControlResult) throws -> Output {
        try decode(ControlResponse.success(result).encoded()).get()
    }
}

/// The callers the assertions use.
enum Callers {
    static let root = PeerCredentials(pid: 1, uid: 0, gid: 0)
    static let nobody = PeerCredentials(pid: 2, uid: 65534, gid: 65534)
    static let controlGroup: (name: String, gid: UInt32) = ("nicroute-test", 4242)
    /// In the control group by its primary group.
    static let primaryMember = PeerCredentials(pid: 3, uid: 65534, gid: 4242)
    /// In the control group by a supplementary group.
    static let supplementaryMember = PeerCredentials(pid: 4, uid: 65534, gid: 65534, groups: [4343, 4242])
}

/// Runs blocking work on a thread of its own, off Swift's cooperative pool (which has as many
/// threads as cores: 50 blocking clients on it would not be "at once").
func onThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: body()) }
    }
}

/// A raw Unix stream socket client, for the bytes `ControlClient` would never send.
enum RawClient {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Connects to `path`, sends `bytes`, then closes its write side (`closeWrite`) or waits
    /// (`pause`) or closes the connection at once (`hangUp`); reads the answer until the
    /// server closes. Every wait is bounded by `timeout`.
    static func exchange(
        _ path: String, _ bytes: [UInt8], closeWrite: Bool = true, hangUp: Bool = false,
        timeout: Duration = .seconds(10),
        beforeSending: @Sendable () -> Void = {}
    ) throws(Failure) -> [UInt8] {
        let fd = try connect(path, timeout: timeout)
        defer { close(fd) }
        beforeSending()
        var offset = 0
        while offset < bytes.count {
            // Errors are ignored: a server that refused the request may already be gone.
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            offset += n
        }
        if hangUp { return [] }
        if closeWrite { shutdown(fd, Int32(SHUT_WR)) }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                throw Failure(description: "no answer within \(timeout)")
            }
            // ECONNRESET after the answer: the server closed with our unread bytes in its queue.
            if n <= 0 { return answer }
            answer += chunk[0..<n]
        }
    }

    /// A connected socket with `timeout` on both directions.
    static func connect(_ path: String, timeout: Duration) throws(Failure) -> Int32 {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: errno \(errno)") }
        var tv = timeval(tv_sec: Int(timeout.components.seconds), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw Failure(description: "connect \(path): errno \(e)")
        }
        return fd
    }

    /// The same exchange from a child process running as `peer` (uid, gid, supplementary
    /// groups), through `setpriv`: how a caller other than root reaches the socket.
    static func exchange(_ path: String, _ bytes: [UInt8], as peer: PeerCredentials) throws -> [UInt8] {
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            s.connect(sys.argv[1])
            try:
                s.sendall(bytes.fromhex(sys.argv[2]))
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            out = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                out += chunk
            sys.stdout.buffer.write(out)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
        process.arguments = [
            "--reuid=\(peer.uid)", "--regid=\(peer.gid)",
            peer.groups.isEmpty ? "--clear-groups" : "--groups=\(peer.groups.map(String.init).joined(separator: ","))",
            "/usr/bin/python3", "-I", "-c", script, path, bytes.map { String(format: "%02x", $0) }.joined(),
        ]
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let answer = out.fileHandleForReading.readDataToEndOfFile()
        let diagnostics = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(
                description: "client as uid \(peer.uid) failed: \(String(decoding: diagnostics, as: UTF8.self))")
        }
        return [UInt8](answer)
    }
}

/// A scratch directory that any user may traverse (the socket's callers are not all root),
/// removed with its contents when the last reference goes.
final class SocketDirectory: Sendable {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "nicroute-ctl-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        chmod(root, 0o755)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }
}

// MARK: - One set of assertions, two transports

/// How the bytes of a request reach `ControlService.handle`.
enum Transport: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case inProcess = "in process"
    case socket = "over the socket"

    var testDescription: String { rawValue }

    /// A running service and the way to send it one request line as `peer`.
    struct Harness: Sendable {
        let backend: RecordingBackend
        let send: @Sendable (_ bytes: [UInt8], _ peer: PeerCredentials) async throws -> Answer
        let stop: @Sendable () -> Void
    }

    func start(
        policy: ControlPolicy = ControlPolicy(), backend: RecordingBackend = RecordingBackend()
    ) throws -> Harness {
        let service = ControlService(policy: policy, backend: backend)
        switch self {
        case .inProcess:
            let handler = Unchecked(value: service)
            return Harness(
                backend: backend,
                send: { bytes, peer in
                    // Encoded and read back, as it would travel.
                    try readAnswer(
                        await withCheckedContinuation { continuation in
                            handler.value.handle(bytes, peer: peer) { continuation.resume(returning: $0.encoded()) }
                        })
                }, stop: {})
        case .socket:
            let tree = try SocketDirectory()
            let path = tree.root + "/control.sock"
            let server = try LoopServer(path: path, service: service)
            return Harness(
                backend: backend,
                send: { bytes, peer in
                    let answer = try await onThread { () -> Result<[UInt8], any Error> in
                        // The test runs as root: root's requests come from this process itself.
                        Result {
                            peer.uid == 0
                                ? try RawClient.exchange(path, bytes) : try RawClient.exchange(path, bytes, as: peer)
                        }
                    }.get()
                    return try readAnswer(answer)
                },
                stop: {
                    server.stop()
                    _ = tree
                })
        }
    }
}

private func line(_ text: String) -> [UInt8] { Array((text + "\n").utf8) }
private func request(_ command: ControlCommand) -> [UInt8] { ControlRequest(command).encoded() }

/// The error code of a failure, nil for a success.
private func code(_ response: Answer) -> ControlError.Code? {
    if case .failure(let error) = response { return error.code }
    return nil
}

@Suite(.serialized) struct ControlServiceTests {
    @Test(arguments: Transport.allCases)
    func anyoneMayRead(_ transport: Transport) async throws {
        let h = try transport.start()
        defer { h.stop() }
        for peer in [Callers.root, Callers.nobody] {
            for command in [ControlCommand.status, .plan] {
                #expect(try await h.send(request(command), peer) == .success(RecordingBackend.result(command)))
            }
        }
        #expect(h.backend.commands == [.status, .plan, .status, .plan])
    }

    @Test(arguments: Transport.allCases)
    func onlyRootMayChangeThings(_ transport: Transport) async throws {
        let h = try transport.start()
        defer { h.stop() }
        for command in [ControlCommand.reconfigure, .flush] {
            let refused = try await h.send(request(command), Callers.nobody)
            guard case .failure(let error) = refused else {
                Issue.record("\(command) by uid 65534 was not refused: \(refused)")
                continue
            }
            #expect(error.code == .permissionDenied)
            #expect(error.message.contains("'\(command.rawValue)' is allowed to root only"))
            #expect(error.message.contains("uid 65534"))
            #expect(try await h.send(request(command), Callers.root) == .success(RecordingBackend.result(command)))
        }
        // The refused requests never reached the backend.
        #expect(h.backend.commands == [.reconfigure, .flush])
    }

    @Test(arguments: Transport.allCases)
    func theControlGroupMayChangeThings(_ transport: Transport) async throws {
        let h = try transport.start(policy: ControlPolicy(group: Callers.controlGroup))
        defer { h.stop() }
        #expect(
            try await h.send(request(.reconfigure), Callers.primaryMember)
                == .success(RecordingBackend.result(.reconfigure)))
        #expect(
            try await h.send(request(.flush), Callers.supplementaryMember) == .success(RecordingBackend.result(.flush)))
        let refused = try await h.send(request(.flush), Callers.nobody)
        #expect(code(refused) == .permissionDenied)
        if case .failure(let error) = refused {
            #expect(error.message.contains("root or members of group 'nicroute-test'"))
        }
        #expect(
            try await h.send(request(.reconfigure), Callers.root) == .success(RecordingBackend.result(.reconfigure)))
        #expect(h.backend.commands == [.reconfigure, .flush, .reconfigure])
    }

    /// The unit's `ExecReload=nicroutectl reconfigure` runs as the service's own user (nicroute).
    @Test(arguments: Transport.allCases)
    func theDaemonsOwnUserMayChangeThings(_ transport: Transport) async throws {
        let service = PeerCredentials(pid: 5, uid: 61234, gid: 61234)
        let h = try transport.start(policy: ControlPolicy(serviceUID: 61234))
        defer { h.stop() }
        #expect(try await h.send(request(.reconfigure), service) == .success(RecordingBackend.result(.reconfigure)))
        #expect(code(try await h.send(request(.reconfigure), Callers.nobody)) == .permissionDenied)
        #expect(h.backend.commands == [.reconfigure])
        // A daemon running as root grants nothing extra to uid 0's peers beyond root itself.
        #expect(ControlPolicy(serviceUID: 0).serviceUID == nil)
    }

    struct BadRequest: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        var code: ControlError.Code
        var testDescription: String { name }
    }

    static let badRequests: [BadRequest] = [
        BadRequest(name: "garbage", bytes: [0xFF, 0x00, 0x13, 0x37, 0xC3, 0x28, 0x0A], code: .malformedRequest),
        BadRequest(name: "malformed JSON", bytes: line(#"{"version":1,"command":"#), code: .malformedRequest),
        BadRequest(name: "not an object", bytes: line(#"["status"]"#), code: .malformedRequest),
        BadRequest(name: "no version", bytes: line(#"{"command":"status"}"#), code: .malformedRequest),
        BadRequest(name: "version 2", bytes: line(#"{"version":2,"command":"status"}"#), code: .unsupportedVersion),
        BadRequest(name: "no command", bytes: line(#"{"version":1}"#), code: .malformedRequest),
        BadRequest(name: "unknown command", bytes: line(#"{"version":1,"command":"reboot"}"#), code: .unknownCommand),
        BadRequest(
            name: "oversized",
            bytes: line(#"{"version":1,"command":"status","pad":""# + String(repeating: "x", count: 5000) + #""}"#),
            code: .requestTooLarge),
    ]

    @Test(arguments: Transport.allCases, badRequests)
    func badRequestsAreAnsweredAndNeverReachTheBackend(_ transport: Transport, _ bad: BadRequest) async throws {
        let h = try transport.start()
        defer { h.stop() }
        // Decoding comes before authorization: the answer is the same for any caller.
        let asRoot = try await h.send(bad.bytes, Callers.root)
        let asNobody = try await h.send(bad.bytes, Callers.nobody)
        #expect(code(asRoot) == bad.code, "\(asRoot)")
        #expect(code(asNobody) == bad.code, "\(asNobody)")
        #expect(h.backend.commands.isEmpty)
    }

    @Test(arguments: Transport.allCases)
    func theNewlineIsOptionalAndExtraFieldsAreRefused(_ transport: Transport) async throws {
        let h = try transport.start()
        defer { h.stop() }
        let bare = Array(#"{"version":1,"command":"plan"}"#.utf8)
        #expect(try await h.send(bare, Callers.root) == .success(RecordingBackend.result(.plan)))
        let extra = line(#"{"client":"nicroutectl 9","command":"status","version":1}"#)
        let answer = try await h.send(extra, Callers.nobody)
        guard case .failure(let error) = answer else {
            Issue.record("an unknown key was accepted: \(answer)")
            return
        }
        #expect(error.code == .malformedRequest)
        #expect(error.message.contains("client: unknown key"), "\(error.message)")
        #expect(h.backend.commands == [.plan])
    }
}

// MARK: - The socket's own limits

@Suite(.serialized) struct ControlSocketTests {
    /// A started server in a fresh directory.
    struct Running {
        let tree: SocketDirectory
        let path: String
        let server: LoopServer
        let backend: RecordingBackend

        init(maximumClients: Int = 32, timeout: Duration = .seconds(2), delay: Duration = .zero) throws {
            tree = try SocketDirectory()
            path = tree.root + "/run/nicroute/control.sock"
            backend = RecordingBackend(delay: delay)
            server = try LoopServer(
                path: path, service: ControlService(policy: ControlPolicy(), backend: backend),
                maximumClients: maximumClients,
                timeout: timeout)
        }

        /// A normal request through the real client.
        func status() async -> Answer? {
            let path = self.path
            return await onThread {
                try? ControlClient.send(ControlCall(.status, as: JSONValue.self), to: path, timeout: .seconds(10))
            }
        }

        func exchange(_ bytes: [UInt8], closeWrite: Bool = true, hangUp: Bool = false) async throws -> Answer? {
            let path = self.path
            let answer = try await onThread { () -> Result<[UInt8], RawClient.Failure> in
                Result { () throws(RawClient.Failure) in
                    try RawClient.exchange(path, bytes, closeWrite: closeWrite, hangUp: hangUp)
                }
            }.get()
            return answer.isEmpty ? nil : try readAnswer(answer)
        }

        /// Stops the server and checks that it took its socket file with it.
        func stop() {
            server.stop()
            var st = stat()
            let rc = lstat(path, &st)
            let e = errno
            #expect(rc != 0 && e == ENOENT, "socket file left at \(path)")
            #expect(throws: ControlClient.Failure.self) {
                try ControlClient.send(ControlCall(.status, as: JSONValue.self), to: path, timeout: .seconds(2))
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func survivesGarbageOversizedSlowAndVanishingClients() async throws {
        let s = try Running(timeout: .milliseconds(300))
        #expect(
            try await s.exchange([0x00, 0xFF, 0xFE, 0x7B, 0x0A, 0x80, 0x81, 0x0A]).flatMap(code) == .malformedRequest)
        #expect(try await s.exchange([0x00, 0xFF, 0x42], closeWrite: true).flatMap(code) == .malformedRequest)

        // 5000 bytes and no newline, the write side left open: refused once past the limit
        // (not at the timeout, which would answer `timeout`).
        #expect(
            try await s.exchange([UInt8](repeating: 0x7B, count: 5000), closeWrite: false).flatMap(code)
                == .requestTooLarge)

        // Half a request, then silence: answered with a timeout after the server's timeout.
        let clock = ContinuousClock.now
        let half = Array(#"{"version":1,"comm"#.utf8)
        #expect(try await s.exchange(half, closeWrite: false).flatMap(code) == .timeout)
        let waited = ContinuousClock.now - clock
        #expect(waited >= .milliseconds(250) && waited < .seconds(5), "answered after \(waited)")

        // Half a request, then gone.
        #expect(try await s.exchange(half, hangUp: true) == nil)
        // Connected and gone without a word: no answer, no harm.
        #expect(try await s.exchange([], closeWrite: true) == nil)

        #expect(s.backend.commands.isEmpty)
        #expect(await s.status() == .success(RecordingBackend.result(.status)))
        #expect(s.backend.commands == [.status])
        s.stop()
    }

    @Test(.timeLimit(.minutes(1)))
    func fiftyClientsAtOnceAllGetTheirAnswer() async throws {
        let s = try Running(maximumClients: 64)
        let path = s.path
        let answers = await withTaskGroup(of: (ControlCommand, Answer?).self) { group in
            for i in 0..<50 {
                let command: ControlCommand = i % 2 == 0 ? .status : .plan
                group.addTask {
                    (
                        command,
                        await onThread {
                            try? ControlClient.send(
                                ControlCall(command, as: JSONValue.self), to: path, timeout: .seconds(10))
                        }
                    )
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.count == 50)
        for (command, answer) in answers {
            #expect(answer == .success(RecordingBackend.result(command)))
        }
        #expect(s.backend.commands.count == 50)
        #expect(await s.status() == .success(RecordingBackend.result(.status)))
        s.stop()
    }

    @Test(.timeLimit(.minutes(1)))
    func clientsBeyondTheLimitAreToldBusyAndNoneHangs() async throws {
        let s = try Running(maximumClients: 2, delay: .milliseconds(200))
        let path = s.path
        let clients = 12
        // Every client connects first, then all send: the two served connections stay busy
        // (reading, then 200 ms in the backend) while the others are accepted.
        let connected = DispatchGroup()
        let go = DispatchSemaphore(value: 0)
        let start = ContinuousClock.now
        let answers = await withTaskGroup(of: Answer?.self) { group in
            for _ in 0..<clients {
                connected.enter()
                group.addTask {
                    await onThread {
                        let answer = try? RawClient.exchange(path, ControlRequest(.status).encoded()) {
                            connected.leave()
                            go.wait()
                        }
                        return answer.flatMap { try? readAnswer($0) }
                    }
                }
            }
            await onThread {
                connected.wait()
                for _ in 0..<clients { go.signal() }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let elapsed = ContinuousClock.now - start
        let served = answers.filter { $0 == .success(RecordingBackend.result(.status)) }.count
        let busy = answers.filter { $0.flatMap(code) == .busy }.count
        #expect(served + busy == clients, "\(answers)")
        #expect(served >= 2)
        #expect(busy >= 1)
        #expect(s.backend.commands.count == served)
        #expect(elapsed < .seconds(10))
        // The server survived it.
        #expect(await s.status() == .success(RecordingBackend.result(.status)))
        s.stop()
    }

    /// A daemon that turns a connection away answers `busy` and closes, often before the
    /// client has sent its request: the client's send then fails with a broken pipe, and the
    /// answer waiting in its socket is what it reports.
    @Test func theClientReportsBusyNotABrokenPipe() throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer { close(fds[0]) }
        let busy = ControlError(.busy, "too many control connections from uid 65534")
        let bytes = ControlResponse.failure(busy).encoded()
        #expect(bytes.withUnsafeBytes { send(fds[1], $0.baseAddress, $0.count, 0) } == bytes.count)
        close(fds[1])
        let answer = try ControlClient.exchange(ControlCall(.status, as: JSONValue.self), fd: fds[0], path: "test.sock")
        #expect(answer == .failure(busy))

        // With nothing in the socket, the broken pipe is the error.
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        close(fds[1])
        #expect {
            try ControlClient.exchange(ControlCall(.status, as: JSONValue.self), fd: fds[0], path: "test.sock")
        } throws: { "\($0)".contains("Broken pipe") }
        close(fds[0])
    }

    /// SO_PEERCRED and SO_PEERGROUPS of a real socket: this process's ids and groups.
    @Test func peerCredentialsAreTheCallersOwn() throws {
        var fds: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        let peer = try #require(ControlServer.credentials(fds[0]))
        #expect(peer.pid == getpid() && peer.uid == getuid() && peer.gid == getgid())
        var groups = [gid_t](repeating: 0, count: 256)
        let n = getgroups(Int32(groups.count), &groups)
        #expect(Set(peer.groups) == Set(groups.prefix(Int(max(n, 0)))))
    }

    @Test func aStaleSocketFileIsReplaced() async throws {
        let tree = try SocketDirectory()
        let path = tree.root + "/control.sock"
        // A socket file nobody listens on, as a crashed daemon leaves it.
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        close(fd)
        try #require(bound == 0)
        #expect(throws: ControlClient.Failure.self) {
            try ControlClient.send(ControlCall(.status, as: JSONValue.self), to: path, timeout: .seconds(2))
        }

        let backend = RecordingBackend()
        let server = try LoopServer(path: path, service: ControlService(policy: ControlPolicy(), backend: backend))
        defer { server.stop() }
        let answer = await onThread {
            try? ControlClient.send(ControlCall(.plan, as: JSONValue.self), to: path, timeout: .seconds(10))
        }
        #expect(answer == .success(RecordingBackend.result(.plan)))
        var st = stat()
        #expect(stat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFSOCK && st.st_mode & 0o777 == 0o666)
    }

    @Test func aLiveServersSocketIsNotTakenOver() async throws {
        let s = try Running()
        #expect {
            try LoopServer(
                path: s.path, service: ControlService(policy: ControlPolicy(), backend: RecordingBackend()))
        } throws: { error in
            (error as? ControlSocketError)?.errno == EADDRINUSE
        }
        #expect(await s.status() == .success(RecordingBackend.result(.status)))
        s.stop()
    }

    @Test func anotherKindOfFileAtThePathIsLeftAlone() throws {
        let tree = try SocketDirectory()
        let path = tree.root + "/control.sock"
        try "not a socket\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(throws: ControlSocketError.self) {
            try LoopServer(path: path, service: ControlService(policy: ControlPolicy(), backend: RecordingBackend()))
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "not a socket\n")

        try FileManager.default.createDirectory(atPath: tree.root + "/dir.sock", withIntermediateDirectories: false)
        #expect(throws: ControlSocketError.self) {
            try LoopServer(
                path: tree.root + "/dir.sock",
                service: ControlService(policy: ControlPolicy(), backend: RecordingBackend()))
        }
        var isDirectory: ObjCBool = false
        #expect(
            FileManager.default.fileExists(atPath: tree.root + "/dir.sock", isDirectory: &isDirectory)
                && isDirectory.boolValue)
    }

    @Test func aPathTooLongForAUnixSocketIsRefused() throws {
        let tree = try SocketDirectory()
        let path = tree.root + "/" + String(repeating: "s", count: 120)
        #expect {
            try LoopServer(path: path, service: ControlService(policy: ControlPolicy(), backend: RecordingBackend()))
        } throws: { error in
            (error as? ControlSocketError)?.errno == ENAMETOOLONG
        }
    }
}
