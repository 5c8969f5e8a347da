import CPosix
import Dispatch
import Netlink
import NicrouteCore
import Synchronization

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

/// The control socket server: a Unix stream socket, one request and one response per
/// connection.
///
/// Hand-written over POSIX calls rather than swift-nio: it serves a few short requests a day,
/// and a thread per connection (at most `maximumClients`, each bounded by `timeout` for reading
/// and writing) keeps the daemon small. Oversized, malformed, slow or vanished clients get an
/// error or are dropped; none of them can stop the daemon or the other clients.
public final class ControlServer: Sendable {
    public let path: String
    public let maximumClients: Int
    public let timeout: Duration
    private let service: ControlService
    private let listenFD: Int32
    /// A pipe whose write end `stop()` writes to, to wake the accept loop's poll.
    private let wakeRead: Int32
    private let wakeWrite: Int32
    private let active = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)

    /// Binds `path` (replacing a stale socket there), makes it connectable by everyone (the
    /// daemon checks each caller's credentials itself) and starts accepting.
    /// - Throws: `ControlSocketError` naming the failing call.
    public init(path: String, service: ControlService, maximumClients: Int = 32, timeout: Duration = .seconds(2)) throws
    {
        self.path = path
        self.service = service
        self.maximumClients = maximumClients
        self.timeout = timeout
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw ControlSocketError(operation: "control socket path too long: \(path)", errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let directory = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
        if !directory.isEmpty { try? Files.makeDirectories(directory) }
        // Only a stale socket is removed, never another kind of file, nor a live daemon's socket.
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
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw ControlSocketError(operation: "socket(AF_UNIX)", errno: errno) }
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard bound == 0, chmod(path, 0o666) == 0, listen(fd, 64) == 0 else {
            let e = errno
            close(fd)
            throw ControlSocketError(operation: "bind/listen \(path)", errno: e)
        }
        var pipeFDs: [Int32] = [0, 0]
        guard cposix_pipe_cloexec(&pipeFDs) == 0 else {
            let e = errno
            close(fd)
            throw ControlSocketError(operation: "pipe2", errno: e)
        }
        listenFD = fd
        wakeRead = pipeFDs[0]
        wakeWrite = pipeFDs[1]
        do {
            try DetachedThread.start(name: "nicroute-listen") { [self] in acceptLoop() }
        } catch {
            // The object is fully initialized: deinit closes the pipe; the listener is closed here.
            close(fd)
            throw ControlSocketError(operation: "start the control socket thread", errno: EAGAIN)
        }
    }

    /// Stops accepting and removes the socket file. Connections in progress finish.
    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var one: UInt8 = 1
        _ = write(wakeWrite, &one, 1)
        unlink(path)
    }

    deinit {
        stop()
        close(wakeRead)
        close(wakeWrite)
    }

    private func acceptLoop() {
        defer { close(listenFD) }
        var fds = [
            pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0),
            pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0),
        ]
        while !stopped.load(ordering: .acquiring) {
            fds[0].revents = 0
            fds[1].revents = 0
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                return
            }
            if fds[1].revents != 0 { return }
            guard fds[0].revents != 0 else { continue }
            let client = cposix_accept_cloexec(listenFD)
            guard client >= 0 else {
                // Out of descriptors: the listener stays readable, so pause instead of spinning.
                if errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM { usleep(100_000) }
                continue
            }
            setTimeouts(client)
            if active.wrappingAdd(1, ordering: .acquiringAndReleasing).newValue > maximumClients {
                active.wrappingSubtract(1, ordering: .acquiringAndReleasing)
                send(client, .failure(ControlError(.busy, "too many control connections; try again")))
                close(client)
                continue
            }
            do {
                try DetachedThread.start(name: "nicroute-client") { [self] in
                    serve(client)
                    close(client)
                    active.wrappingSubtract(1, ordering: .acquiringAndReleasing)
                }
            } catch {
                send(client, .failure(ControlError(.busy, "cannot serve more connections now")))
                close(client)
                active.wrappingSubtract(1, ordering: .acquiringAndReleasing)
            }
        }
    }

    private func setTimeouts(_ fd: Int32) {
        let (seconds, attoseconds) = timeout.components
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Reads one request line within the deadline, answers it, and returns.
    private func serve(_ fd: Int32) {
        let deadline =
            monotonicSeconds() + Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        var line: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        while !line.contains(UInt8(ascii: "\n")) {
            guard line.count <= ControlProtocol.maximumRequestSize else {
                send(
                    fd,
                    .failure(
                        ControlError(
                            .requestTooLarge, "request longer than \(ControlProtocol.maximumRequestSize) bytes")))
                return
            }
            guard monotonicSeconds() < deadline else {
                send(fd, .failure(ControlError(.timeout, "no complete request within \(timeout)")))
                return
            }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }  // end of the request (a client may close its write side instead of a newline)
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    send(fd, .failure(ControlError(.timeout, "no complete request within \(timeout)")))
                }
                return
            }
            line += chunk[0..<n]
        }
        if let newline = line.firstIndex(of: UInt8(ascii: "\n")) { line = Array(line[...newline]) }
        guard !line.isEmpty else { return }  // connected and left without a word
        guard let peer = Self.credentials(fd) else {
            send(fd, .failure(ControlError(.permissionDenied, "cannot read the caller's credentials")))
            return
        }
        // The handler is async (it waits for the daemon's loop); this thread waits for it.
        let result = Mutex<ControlResponse?>(nil)
        let done = DispatchSemaphore(value: 0)
        let service = self.service
        Task {
            let response = await service.handle(line, peer: peer)
            result.withLock { $0 = response }
            done.signal()
        }
        if done.wait(timeout: .now() + .seconds(30)) == .timedOut {
            send(fd, .failure(ControlError(.timeout, "the daemon did not answer within 30 s")))
            return
        }
        send(fd, result.withLock { $0 } ?? .failure(ControlError(.failed, "no answer")))
    }

    private func send(_ fd: Int32, _ response: ControlResponse) {
        let bytes = response.encoded()
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }  // slow or gone reader: dropped after the send timeout
            offset += n
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
        var groups = [gid_t](repeating: 0, count: 256)
        var groupsLength = socklen_t(groups.count * MemoryLayout<gid_t>.size)
        let soPeerGroups: Int32 = 59  // SO_PEERGROUPS (Linux 4.13)
        let n =
            getsockopt(fd, SOL_SOCKET, soPeerGroups, &groups, &groupsLength) == 0
            ? Int(groupsLength) / MemoryLayout<gid_t>.size : 0
        return PeerCredentials(pid: pid, uid: uid, gid: gid, groups: Array(groups.prefix(n)))
    }
}

/// A control client: one request, one response, bounded by `timeout`.
public enum ControlClient {
    /// Why no answer came.
    public enum Failure: Error, CustomStringConvertible {
        /// Nothing listens at the path (no daemon).
        case notRunning(String)
        case io(String)
        public var description: String {
            switch self {
            case .notRunning(let s), .io(let s): s
            }
        }
    }

    /// Sends `request` to the daemon at `path` and returns its response.
    public static func send(
        _ request: ControlRequest, to path: String, timeout: Duration = .seconds(60)
    ) throws(Failure) -> ControlResponse {
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
        defer { close(fd) }
        let (seconds, attoseconds) = timeout.components
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else {
            let e = errno
            if e == ENOENT || e == ECONNREFUSED {
                throw .notRunning("nicrouted is not running (no one listens on \(path))")
            }
            throw .io("connect \(path): \(String(cString: strerror(e)))")
        }
        let out = request.encoded()
        guard out.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == out.count else {
            throw .io("send to \(path): \(String(cString: strerror(errno)))")
        }
        var answer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while answer.count <= ControlProtocol.maximumResponseSize {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .io("no answer from nicrouted: \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            answer += chunk[0..<n]
            if answer.last == UInt8(ascii: "\n") { break }
        }
        do { return try ControlResponse.decode(answer) } catch { throw .io("\(error)") }
    }
}
