import Foundation

@testable import NicrouteDaemon

#if canImport(Glibc)
import Glibc
#endif

/// A `ControlServer` on an event loop of its own thread, as nicrouted serves it on its main
/// thread; `stop()` stops it on that thread and waits for the loop to end.
final class LoopServer: @unchecked Sendable {
    let path: String
    private let loop: EventLoop
    private var server: ControlServer?
    private var wakeSource: EventLoop.Source?
    private let wake: (read: Int32, write: Int32)
    private let ended = DispatchSemaphore(value: 0)
    private var stopped = false

    init(path: String, service: ControlService, maximumClients: Int = 32, timeout: Duration = .seconds(2)) throws {
        self.path = path
        loop = try EventLoop()
        server = try ControlServer(
            path: path, service: service, loop: loop, maximumClients: maximumClients, timeout: timeout)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ControlSocketError(operation: "pipe", errno: errno) }
        wake = (fds[0], fds[1])
        wakeSource = try loop.io(wake.read, name: "test-stop") { [unowned self] _ in
            server?.stop()
            server = nil
            wakeSource?.cancel()
            loop.exit(0)
        }
        Thread.detachNewThread { [self] in
            _ = try? loop.run()
            ended.signal()
        }
    }

    /// Stops the server (removing its socket file) and its loop.
    func stop() {
        guard !stopped else { return }
        stopped = true
        var one: UInt8 = 1
        _ = write(wake.write, &one, 1)
        ended.wait()
        close(wake.read)
        close(wake.write)
    }

    deinit { stop() }
}

/// Carries a value that is used on one thread at a time across a `@Sendable` boundary.
struct Unchecked<T>: @unchecked Sendable {
    let value: T
}
