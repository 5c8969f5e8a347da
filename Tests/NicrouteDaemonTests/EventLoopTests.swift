import Testing

@testable import NicrouteDaemon

#if canImport(Glibc)
import Glibc
#endif

@Suite struct EventLoopTests {
    /// A pass waits for what is already readable: the defer source (priority 10) runs after every
    /// io source ready in the same turn (priority 0), however early it was asked for.
    @Test func aDeferredSourceRunsAfterTheReadyIOSources() throws {
        let loop = try EventLoop()
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        var order: [String] = []
        let pass = try loop.deferred(priority: 10, name: "pass") {
            order.append("pass")
            loop.exit(0)
        }
        let reader = try loop.io(fds[0], name: "pipe") { _ in
            var byte: UInt8 = 0
            _ = read(fds[0], &byte, 1)
            order.append("io")
        }
        var one: UInt8 = 1
        _ = write(fds[1], &one, 1)
        pass.fireOnce()
        #expect(try loop.run() == 0)
        #expect(order == ["io", "pass"])
        withExtendedLifetime(reader) {}
    }

    /// The timer fires once at its deadline, re-armed replaces the deadline, disarmed never fires.
    @Test func theTimerFiresOnceAtItsLatestDeadline() throws {
        let loop = try EventLoop()
        var fired: [Double] = []
        let start = monotonicSeconds()
        let timer = try loop.timer(name: "t") { fired.append(monotonicSeconds() - start) }
        let never = try loop.timer(name: "never") { Issue.record("a disarmed timer fired") }
        never.arm(at: start + 0.01)
        never.disarm()
        timer.arm(at: start + 0.5)
        timer.arm(at: start + 0.02)  // replaces the first deadline
        let end = try loop.timer(name: "end") { loop.exit(0) }
        end.arm(at: start + 0.1)
        #expect(try loop.run() == 0)
        #expect(fired.count == 1)
        #expect(fired.first.map { $0 >= 0.02 && $0 < 0.1 } == true, "\(fired)")
    }

    /// Signals come through the loop (signalfd) once blocked, and a cancelled source is gone.
    /// Blocked in this thread only (the tests run on several): so the signal is sent to it alone.
    @Test func signalsArriveAsEventsOnceBlocked() throws {
        EventLoop.blockSignals([SIGUSR2])
        defer {
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, SIGUSR2)
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
        }
        let loop = try EventLoop()
        var got = 0
        let source = try loop.signal(SIGUSR2, name: "SIGUSR2") {
            got += 1
            loop.exit(0)
        }
        pthread_kill(pthread_self(), SIGUSR2)
        #expect(try loop.run() == 0)
        #expect(got == 1)
        source.cancel()
        source.cancel()  // twice is harmless
    }
}
