import CPosix
import Netlink
import NicrouteCore

#if canImport(Glibc)
import Glibc
#endif

/// Errors of the control socket's own system calls.
public struct ControlSocketError: Error, CustomStringConvertible {
    public var operation: String
    public var errno: Int32
    /// True when a live nicrouted in the same network namespace holds the socket.
    public var anotherDaemon = false
    public var description: String { "\(operation): \(String(cString: strerror(errno)))" }
}

/// The control socket server: two Unix stream sockets, one request and one response per
/// connection, served by the daemon's event loop.
///
/// `path` (mode 0666) is everyone's: anyone may ask for `status`, and the daemon checks each
/// caller's credentials itself. Beside it, `privilegedPath` (mode 0600, the daemon's own user)
/// can be reached by root and the service's own user only: no other user can connect there,
/// so however many connections they open on the public socket (its accept queue full, every
/// slot held) root's requests do not wait behind theirs. nicroutectl tries it first. On the
/// public socket the connection slots are shared out by `ControlAdmission` (a share reserved
/// for trusted callers, such as the `[Control] Group=`, a limit per unprivileged user); a
/// caller turned away is told `busy`.
///
/// Hand-written over POSIX calls rather than swift-nio: it serves a few short requests a day.
/// The listening sockets and every connection are io sources of the loop, read and written
/// without blocking (the privileged listener ahead of the public one when both are ready);
/// each connection has a timer bounding it (`timeout` to send its request and to take the
/// answer). Oversized, malformed, slow or vanished clients get an error or are dropped; none of
/// them can stop the daemon or the other clients.
public final class ControlServer {
    public let path: String
    /// The socket only root and the service's own user can connect to.
    public var privilegedPath: String { Self.privilegedPath(for: path) }
    public let maximumClients: Int
    public let timeout: Duration
    /// How long a request may wait for the daemon's answer.
    static let answerTimeout = 30.0
    /// The public socket's mode: anyone may connect (the daemon checks each caller itself).
    static let publicMode: mode_t = 0o666
    /// The privileged socket's mode: its owner (the daemon's user) and root only.
    static let privilegedMode: mode_t = 0o600
    /// Connections the kernel queues on a listening socket until the loop accepts them.
    static let backlog: Int32 = 64
    /// The pause after accept(2) failed for want of descriptors.
    static let acceptPause = 0.1
    /// Where the sockets' listeners and clients run among the loop's ready sources (smaller
    /// first): the privileged socket before everything, the public one after the kernel's events
    /// and the pass they ask for (rtnetlink 0, the pass 10), so that clients polling `status` as
    /// fast as they are answered cannot hold a pass back.
    static func priority(privileged: Bool) -> Int64 { privileged ? -10 : 20 }
    /// The supplementary groups read of a caller (for `[Control] Group=`).
    static let maximumPeerGroups = 256
    private let service: ControlService
    private let loop: EventLoop
    private var listeners: [Listener] = []
    private var connections: [ObjectIdentifier: Connection] = [:]
    /// Who holds the public socket's connection slots.
    private var admission: ControlAdmission
    /// Connections open on the privileged socket.
    private var privilegedCount = 0

    /// The privileged socket beside the public socket `path`: `control.sock` ->
    /// `control.privileged.sock`.
    public static func privilegedPath(for path: String) -> String {
        path.hasSuffix(".sock") ? String(path.dropLast(5)) + ".privileged.sock" : path + ".privileged"
    }

    /// One listening socket, with a pause after accept(2) failed for want of descriptors, so
    /// that it does not spin.
    private final class Listener {
        let fd: Int32
        let path: String
        let privileged: Bool
        var source: EventLoop.Source?
        var pause: EventLoop.Source?
        init(fd: Int32, path: String, privileged: Bool) {
            self.fd = fd
            self.path = path
            self.privileged = privileged
        }
    }

    /// Binds `path` for everyone and `privilegedPath` for root and the daemon's own user
    /// (replacing stale sockets there) and starts accepting on `loop`.
    /// - Throws: `ControlSocketError` naming the failing call; `anotherDaemon` when a live
    ///   nicrouted in this network namespace listens at `path`.
    public init(
        path: String, service: ControlService, loop: EventLoop, maximumClients: Int = 32,
        timeout: Duration = .seconds(2)
    ) throws {
        self.path = path
        self.service = service
        self.loop = loop
        self.maximumClients = maximumClients
        self.timeout = timeout
        admission = ControlAdmission(capacity: maximumClients)
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !directory.isEmpty { try? Files.makeDirectories(directory) }
        do {
            for (socketPath, privileged) in [(path, false), (Self.privilegedPath(for: path), true)] {
                let fd = try Self.bindListening(socketPath, mode: privileged ? Self.privilegedMode : Self.publicMode)
                let listener = Listener(fd: fd, path: socketPath, privileged: privileged)
                listeners.append(listener)
                listener.source = try loop.io(
                    fd, priority: Self.priority(privileged: privileged), name: "control-listen"
                ) {
                    [unowned self, unowned listener] _ in acceptAll(listener)
                }
                listener.pause = try loop.timer(accuracy: 0.01, name: "control-accept-pause") {
                    [unowned listener] in listener.source?.setEvents(EventLoop.readable)
                }
            }
        } catch {
            closeListeners()
            if let error = error as? ControlSocketError { throw error }
            throw ControlSocketError(operation: "\(error)", errno: (error as? EventLoopError)?.errno ?? EINVAL)
        }
    }

    /// A listening, non-blocking socket at `path` with `mode`, replacing a stale socket there
    /// (only a socket nobody listens on, never another kind of file, nor a live daemon's).
    private static func bindListening(_ path: String, mode: mode_t) throws -> Int32 {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw ControlSocketError(operation: "control socket path too long: \(path)", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        var st = stat()
        if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFSOCK {
            let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            let live =
                withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                    }
                } == 0
            let owner = live ? Self.credentials(probe)?.pid : nil
            close(probe)
            if live {
                // A daemon in the same network namespace manages the same objects: a conflict.
                // One in another namespace (tests, containers sharing /run) is left alone.
                let sameNamespace =
                    owner.map { Self.networkNamespace("self") == Self.networkNamespace("\($0)") } ?? true
                throw ControlSocketError(
                    operation: "another nicrouted (pid \(owner.map(String.init) ?? "?")) listens on \(path)"
                        + (sameNamespace ? "" : " from another network namespace"),
                    errno: EADDRINUSE, anotherDaemon: sameNamespace)
            }
            unlink(path)
        }
        let fd = socket(
            AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw ControlSocketError(operation: "socket(AF_UNIX)", errno: errno) }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, chmod(path, mode) == 0, listen(fd, Self.backlog) == 0 else {
            let e = errno
            close(fd)
            if bound == 0 { unlink(path) }
            throw ControlSocketError(operation: "bind/listen \(path)", errno: e)
        }
        return fd
    }

    /// Stops accepting and removes the socket files; connections still open are told that the
    /// daemon is stopping (unless their answer is on its way) and closed.
    public func stop() {
        guard !listeners.isEmpty else { return }
        closeListeners()
        for connection in connections.values {
            connection.finish(.failure(ControlError(.failed, "nicrouted is stopping")), blocking: true)
        }
        connections = [:]
    }

    private func closeListeners() {
        for listener in listeners {
            listener.source?.cancel()
            listener.pause?.cancel()
            close(listener.fd)
            unlink(listener.path)
        }
        listeners = []
    }

    deinit { stop() }

    private func acceptAll(_ listener: Listener) {
        while listener.source != nil {
            let client = cposix_accept_cloexec(listener.fd)
            guard client >= 0 else {
                // Out of descriptors: the listener stays readable, so pause instead of spinning.
                if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM {
                    listener.source?.setEvents(0)
                    listener.pause?.arm(at: monotonicSeconds() + Self.acceptPause)
                }
                return
            }
            _ = fcntl(client, F_SETFL, fcntl(client, F_GETFL) | O_NONBLOCK)
            // The caller as it connected; without credentials it is no one's and trusted by none.
            let peer = Self.credentials(client)
            let trusted = peer.map(service.policy.isTrusted) ?? false
            let uid = peer?.uid ?? UInt32.max
            if let refusal = admit(uid: uid, trusted: trusted, privileged: listener.privileged) {
                Connection.sendNow(client, .failure(refusal))
                close(client)
                continue
            }
            do {
                let connection = try Connection(
                    fd: client, server: self, peer: peer, trusted: trusted, privileged: listener.privileged)
                connections[ObjectIdentifier(connection)] = connection
            } catch {
                release(uid: uid, trusted: trusted, privileged: listener.privileged)
                Connection.sendNow(client, .failure(ControlError(.busy, "cannot serve more connections now")))
                close(client)
            }
        }
    }

    /// Takes a slot for a caller, or says why not.
    private func admit(uid: UInt32, trusted: Bool, privileged: Bool) -> ControlError? {
        guard privileged else {
            if case .busy(let why) = admission.admit(uid: uid, trusted: trusted) { return ControlError(.busy, why) }
            return nil
        }
        // Only root and the daemon's user can connect here (the file's mode); anyone else who
        // could (a mode changed by hand) is sent to the public socket.
        guard trusted else {
            return ControlError(.permissionDenied, "this socket is root's; use \(path) (you are uid \(uid))")
        }
        guard privilegedCount < maximumClients else {
            return ControlError(.busy, "too many privileged control connections; try again")
        }
        privilegedCount += 1
        return nil
    }

    private func release(uid: UInt32, trusted: Bool, privileged: Bool) {
        if privileged {
            privilegedCount = max(0, privilegedCount - 1)
        } else {
            admission.release(uid: uid, trusted: trusted)
        }
    }

    fileprivate func forget(_ connection: Connection) {
        guard connections.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
        release(uid: connection.peer?.uid ?? UInt32.max, trusted: connection.trusted, privileged: connection.privileged)
    }

    /// One client: its request read, its answer computed, then written; bounded by a timer.
    fileprivate final class Connection {
        enum Phase { case reading, answering, writing, done }
        let fd: Int32
        unowned let server: ControlServer
        /// The caller's credentials at accept(2); nil when the kernel would not tell.
        let peer: PeerCredentials?
        /// Whether it may change things (its slot counts as a trusted one).
        let trusted: Bool
        /// Whether it came through the privileged socket.
        let privileged: Bool
        var phase = Phase.reading
        var input: [UInt8] = []
        var output: [UInt8] = []
        var io: EventLoop.Source?
        var timer: EventLoop.Source?

        init(fd: Int32, server: ControlServer, peer: PeerCredentials?, trusted: Bool, privileged: Bool) throws {
            self.fd = fd
            self.server = server
            self.peer = peer
            self.trusted = trusted
            self.privileged = privileged
            // Root's connections ahead of everyone else's when both are ready in one turn.
            io = try server.loop.io(
                fd, priority: ControlServer.priority(privileged: privileged), name: "control-client"
            ) {
                [unowned self] events in ready(events)
            }
            timer = try server.loop.timer(name: "control-client-timeout") { [unowned self] in expired() }
            timer?.arm(at: monotonicSeconds() + server.timeout.seconds)
        }

        func ready(_ events: UInt32) {
            switch phase {
            case .reading: read()
            case .writing: write()
            case .answering, .done:
                // Waiting for the daemon: a client that hung up is noticed when the answer goes out.
                io?.setEvents(0)
            }
        }

        /// Reads what is there; answers once a line (or the end of the request) is complete.
        func read() {
            var chunk = [UInt8](repeating: 0, count: 1024)
            while phase == .reading {
                let n = retryingInterrupts { chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } }
                if n < 0 {
                    if errno == EAGAIN || errno == EWOULDBLOCK { return }
                    return close()
                }
                if n > 0 { input += chunk[0..<n] }
                if let newline = input.firstIndex(of: UInt8(ascii: "\n")) {
                    input = Array(input[...newline])
                } else if input.count > ControlProtocol.maximumRequestSize {
                    return finish(
                        .failure(
                            ControlError(
                                .requestTooLarge, "request longer than \(ControlProtocol.maximumRequestSize) bytes")))
                } else if n > 0 {
                    continue
                }
                // A line, or the end of the request (a client may close its write side instead).
                guard !input.isEmpty else { return close() }  // connected and left without a word
                return answer()
            }
        }

        func answer() {
            guard let peer else {
                return finish(.failure(ControlError(.permissionDenied, "cannot read the caller's credentials")))
            }
            phase = .answering
            io?.setEvents(0)
            timer?.arm(at: monotonicSeconds() + ControlServer.answerTimeout)
            server.service.handle(input, peer: peer) { [weak self] response in self?.finish(response) }
        }

        func expired() {
            switch phase {
            case .reading:
                finish(.failure(ControlError(.timeout, "no complete request within \(server.timeout)")))
            case .answering:
                finish(
                    .failure(
                        ControlError(.timeout, "the daemon did not answer within \(Int(ControlServer.answerTimeout)) s")
                    ))
            case .writing, .done:
                close()  // slow or gone reader: dropped
            }
        }

        /// Sends `response` and closes; `blocking` when the loop is going away.
        func finish(_ response: ControlResponse, blocking: Bool = false) {
            guard phase != .writing && phase != .done else {
                if blocking { close() }
                return
            }
            output = response.encoded()
            phase = .writing
            if blocking {
                Self.sendNow(fd, response)
                return close()
            }
            timer?.arm(at: monotonicSeconds() + server.timeout.seconds)
            write()
        }

        func write() {
            while !output.isEmpty {
                let n = retryingInterrupts {
                    output.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                }
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                    io?.setEvents(EventLoop.writable)
                    return
                }
                if n <= 0 { break }
                output.removeFirst(n)
            }
            close()
        }

        func close() {
            guard phase != .done else { return }
            phase = .done
            io?.cancel()
            timer?.cancel()
            Glibc.close(fd)
            server.forget(self)
        }

        /// Writes `response` at once, as far as the socket takes it (busy, stopping).
        static func sendNow(_ fd: Int32, _ response: ControlResponse) {
            let bytes = response.encoded()
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
        }
    }

    /// The network namespace of a process (`self` or a pid), as `/proc/PID/ns/net` names it.
    static func networkNamespace(_ pid: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 128)
        let n = readlink("/proc/\(pid)/ns/net", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `SO_PEERCRED` and `SO_PEERGROUPS` of a connected socket.
    static func credentials(_ fd: Int32) -> PeerCredentials? {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        guard cposix_peer_credentials(fd, &pid, &uid, &gid) == 0 else { return nil }
        var groups = [UInt32](repeating: 0, count: Self.maximumPeerGroups)
        var n = Int32(groups.count)
        if cposix_peer_groups(fd, &groups, &n) != 0 { n = 0 }
        return PeerCredentials(pid: pid, uid: uid, gid: gid, groups: Array(groups.prefix(Int(n))))
    }
}

/// A control client: one request, one response, bounded by `timeout`.
public enum ControlClient {
    /// Why no answer came, or none that reads.
    public enum Failure: Error, CustomStringConvertible {
        /// Nothing listens at the path (no daemon).
        case notRunning(String)
        case io(String)
        /// The daemon's answer is not a response, or its result not the command's
        /// (`ControlCall.decode`): the key and what is wrong there.
        case malformedAnswer(String)
        public var description: String {
            switch self {
            case .notRunning(let s), .io(let s), .malformedAnswer(let s): s
            }
        }
    }

    /// Sends `call`'s command to the daemon at `path` and returns its answer: the command's
    /// result, typed, or the error the daemon answered. The daemon's privileged socket beside it
    /// is tried first: only root and the daemon's own user can connect there (for anyone else it
    /// fails at once, and `path` is used).
    public static func send<Output>(
        _ call: ControlCall<Output>, to path: String, timeout: Duration = .seconds(60)
    ) throws(Failure) -> Result<Output, ControlError> {
        let fd: Int32
        if let privileged = try? connect(ControlServer.privilegedPath(for: path), timeout: timeout) {
            fd = privileged
        } else {
            fd = try connect(path, timeout: timeout)
        }
        defer { close(fd) }
        return try exchange(call, fd: fd, path: path)
    }

    /// A stream socket connected to `path`, with `timeout` on its sends and receives.
    private static func connect(_ path: String, timeout: Duration) throws(Failure) -> Int32 {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw .io("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .io("socket: \(String(cString: strerror(errno)))") }
        let (seconds, attoseconds) = timeout.components
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            let e = errno
            close(fd)
            if e == ENOENT || e == ECONNREFUSED {
                throw .notRunning("nicrouted is not running (no one listens on \(path))")
            }
            throw .io("connect \(path): \(String(cString: strerror(e)))")
        }
        return fd
    }

    /// Sends `call`'s request on the connected socket `fd` and reads the answer (`path` names
    /// the daemon in errors).
    static func exchange<Output>(
        _ call: ControlCall<Output>, fd: Int32, path: String
    ) throws(Failure) -> Result<Output, ControlError> {
        let out = call.encoded()
        // A daemon that turns the connection away (`busy`) answers and closes at once, maybe
        // before the request is sent: the send then fails (EPIPE, ECONNRESET), and its answer is
        // still waiting to be read. That answer is the daemon's word, not the broken pipe.
        var sendError: Int32?
        if out.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) != out.count {
            sendError = errno
            shutdown(fd, Int32(SHUT_WR))
        }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while answer.count <= ControlProtocol.maximumResponseSize {
            let n = retryingInterrupts { chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } }
            if n < 0 {
                if let sendError { throw .io("send to \(path): \(String(cString: strerror(sendError)))") }
                throw .io("no answer from nicrouted: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            answer += chunk[0..<n]
            if answer.last == UInt8(ascii: "\n") { break }
        }
        if answer.isEmpty, let sendError { throw .io("send to \(path): \(String(cString: strerror(sendError)))") }
        do { return try call.decode(answer) } catch { throw .malformedAnswer(error.message) }
    }
}

extension Duration {
    /// In seconds, as a `Double`.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
