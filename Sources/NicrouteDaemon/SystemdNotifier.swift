import CSystemd

#if canImport(Glibc)
import Glibc
#endif

/// The systemd notification protocol (sd_notify): READY, STATUS, RELOADING, STOPPING (WATCHDOG
/// is sent by the event loop: `EventLoop.enableWatchdog`).
/// Without `NOTIFY_SOCKET` (not under systemd) every call is a no-op.
public struct SystemdNotifier: Sendable {
    public init() {}

    /// Sends `state` (newline-separated `KEY=VALUE` assignments).
    public func send(_ state: String) {
        _ = sd_notify(0, state)
    }

    public func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
    public func status(_ status: String) { send("STATUS=\(status)") }
    public func stopping() { send("STOPPING=1\nSTATUS=stopping") }

    /// `RELOADING=1` with the `MONOTONIC_USEC` that Type=notify-reload requires.
    public func reloading() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let usec = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(usec)\nSTATUS=reloading")
    }
}

/// Monotonic time in seconds, for the reconcile loop's back-offs.
func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Local wall-clock time as `HH:MM:SS`, for the STATUS line.
func wallClockTime() -> String {
    var now = time(nil)
    var parts = tm()
    localtime_r(&now, &parts)
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))"
}
