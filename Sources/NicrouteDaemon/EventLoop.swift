import CSystemd

#if canImport(Glibc)
import Glibc
#endif

/// One event loop for the whole daemon: libsystemd's sd-event, on the thread that calls `run`.
///
/// Why sd-event rather than an epoll loop of our own: the library is already linked (sd_notify,
/// the journal), and it brings what the daemon needs, tested in systemd-networkd, which runs on
/// it: io sources over epoll, signal sources over signalfd (no async-signal-safety concerns in
/// handlers), timers over timerfd with an accuracy that lets the kernel coalesce wake-ups, and
/// `sd_event_set_watchdog`, which pings systemd's watchdog from the loop itself (a stuck loop
/// stops pinging and is restarted). Only the calls of LIBSYSTEMD_221 are used, far below the
/// floor (247).
///
/// Not thread-safe: create sources and call everything from the loop's thread (or before it
/// runs). A source lives as long as its `Source` object; `cancel()` ends it at once.
public final class EventLoop {
    let event: OpaquePointer

    /// A registered source and its handler.
    public final class Source {
        fileprivate var pointer: OpaquePointer?
        fileprivate let handler: Handler

        fileprivate init(_ handler: Handler) { self.handler = handler }

        /// Stops the source; it never fires again.
        public func cancel() {
            guard let pointer else { return }
            sd_event_source_set_enabled(pointer, Int32(SD_EVENT_OFF))
            sd_event_source_unref(pointer)
            self.pointer = nil
        }

        /// Watches `events` (`EPOLLIN`, `EPOLLOUT`) from now on (io sources).
        public func setEvents(_ events: UInt32) {
            if let pointer { sd_event_source_set_io_events(pointer, events) }
        }

        /// Fires once at `deadline` (monotonic seconds), replacing an earlier deadline (timers).
        public func arm(at deadline: Double) {
            guard let pointer else { return }
            sd_event_source_set_time(pointer, UInt64(max(deadline, 0) * 1e6))
            sd_event_source_set_enabled(pointer, Int32(SD_EVENT_ONESHOT))
        }

        /// Fires once, at the loop's next turn (defer sources), or once more (timers).
        public func fireOnce() {
            if let pointer { sd_event_source_set_enabled(pointer, Int32(SD_EVENT_ONESHOT)) }
        }

        /// Disarms a timer or a defer source without removing it.
        public func disarm() {
            if let pointer { sd_event_source_set_enabled(pointer, Int32(SD_EVENT_OFF)) }
        }

        deinit { cancel() }
    }

    /// `EPOLLIN` and `EPOLLOUT`, for io sources.
    public static let readable: UInt32 = 0x001
    public static let writable: UInt32 = 0x004

    fileprivate enum Handler {
        case io((UInt32) -> Void)
        case plain(() -> Void)
    }

    /// - Throws: `EventLoopError` when sd-event cannot be set up.
    public init() throws {
        var e: OpaquePointer?
        try check("sd_event_new", sd_event_new(&e))
        event = e!
    }

    deinit { sd_event_unref(event) }

    /// Calls `handler` with the ready events (`EPOLLIN`, `EPOLLOUT`, `EPOLLERR`, `EPOLLHUP`)
    /// whenever `fd` is ready for `events`.
    /// - Parameter priority: among sources ready in the same turn, smaller runs first (the
    ///   default, 0, is every io source's; `sd_event_source_set_priority`).
    public func io(
        _ fd: Int32, events: UInt32 = EventLoop.readable, priority: Int64 = 0, name: String,
        _ handler: @escaping (UInt32) -> Void
    ) throws -> Source {
        let source = Source(.io(handler))
        var s: OpaquePointer?
        try check(
            "sd_event_add_io(\(name))",
            sd_event_add_io(
                event, &s, fd, events,
                { _, _, revents, userdata in
                    let source = Unmanaged<Source>.fromOpaque(userdata!).takeUnretainedValue()
                    if case .io(let handler) = source.handler { handler(revents) }
                    return 0
                }, Unmanaged.passUnretained(source).toOpaque()))
        let adopted = adopt(source, s, name)
        if priority != 0, let pointer = adopted.pointer { sd_event_source_set_priority(pointer, priority) }
        return adopted
    }

    /// A monotonic timer, disarmed until `arm(at:)`. Fires within `accuracy` seconds after its
    /// deadline, so that the kernel may coalesce wake-ups.
    public func timer(accuracy: Double = 0.001, name: String, _ handler: @escaping () -> Void) throws -> Source {
        let source = Source(.plain(handler))
        var s: OpaquePointer?
        try check(
            "sd_event_add_time(\(name))",
            sd_event_add_time(
                event, &s, CLOCK_MONOTONIC, 0, UInt64(accuracy * 1e6),
                { _, _, userdata in EventLoop.dispatch(userdata) }, Unmanaged.passUnretained(source).toOpaque()))
        let adopted = adopt(source, s, name)
        adopted.disarm()
        return adopted
    }

    /// A source that fires once per `fireOnce()`, after every source of higher priority that is
    /// ready in the same turn (`priority`: larger is later; io sources have 0).
    public func deferred(priority: Int64, name: String, _ handler: @escaping () -> Void) throws -> Source {
        let source = Source(.plain(handler))
        var s: OpaquePointer?
        try check(
            "sd_event_add_defer(\(name))",
            sd_event_add_defer(
                event, &s, { _, userdata in EventLoop.dispatch(userdata) }, Unmanaged.passUnretained(source).toOpaque())
        )
        let adopted = adopt(source, s, name)
        adopted.disarm()
        if let pointer = adopted.pointer { sd_event_source_set_priority(pointer, priority) }
        return adopted
    }

    /// Calls `handler` for each delivery of `signal`, which must be blocked in every thread
    /// (`blockSignals`) before: sd-event reads it from a signalfd.
    public func signal(_ signal: Int32, name: String, _ handler: @escaping () -> Void) throws -> Source {
        let source = Source(.plain(handler))
        var s: OpaquePointer?
        try check(
            "sd_event_add_signal(\(name))",
            sd_event_add_signal(
                event, &s, signal, { _, _, userdata in EventLoop.dispatch(userdata) },
                Unmanaged.passUnretained(source).toOpaque()))
        return adopt(source, s, name)
    }

    /// Blocks `signals` in the calling thread (and the threads it starts later): call before any
    /// thread exists, so that no thread takes them in place of the loop's signalfd.
    /// `sigprocmask` rather than `pthread_sigmask`, which glibc versions 2.32 (the floor is 2.31);
    /// on Linux both set the calling thread's mask.
    public static func blockSignals(_ signals: [Int32]) {
        var set = sigset_t()
        sigemptyset(&set)
        for s in signals { sigaddset(&set, s) }
        sigprocmask(SIG_BLOCK, &set, nil)
    }

    /// Lets sd-event send `WATCHDOG=1` while the loop runs, when systemd asked for it
    /// (`WatchdogSec=`); otherwise nothing.
    public func enableWatchdog() throws {
        try check("sd_event_set_watchdog", sd_event_set_watchdog(event, 1))
    }

    /// Runs until `exit`; returns its code.
    /// - Throws: `EventLoopError` when the loop itself failed.
    public func run() throws -> Int32 {
        let rc = sd_event_loop(event)
        try check("sd_event_loop", rc)
        return rc
    }

    /// Ends `run` with `code` once the current handler returns.
    public func exit(_ code: Int32) { sd_event_exit(event, code) }

    private func adopt(_ source: Source, _ pointer: OpaquePointer?, _ name: String) -> Source {
        source.pointer = pointer
        if let pointer { sd_event_source_set_description(pointer, name) }
        return source
    }

    fileprivate static func dispatch(_ userdata: UnsafeMutableRawPointer?) -> Int32 {
        let source = Unmanaged<Source>.fromOpaque(userdata!).takeUnretainedValue()
        if case .plain(let handler) = source.handler { handler() }
        return 0
    }
}

/// An sd-event call that failed.
public struct EventLoopError: Error, CustomStringConvertible {
    public var operation: String
    public var errno: Int32
    public var description: String { "\(operation): \(String(cString: strerror(errno)))" }
}

private func check(_ operation: @autoclosure () -> String, _ rc: Int32) throws {
    if rc < 0 { throw EventLoopError(operation: operation(), errno: -rc) }
}
