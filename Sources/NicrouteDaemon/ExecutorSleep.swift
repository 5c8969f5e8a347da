import CGlobalExecutor
import Synchronization

/// `Task.sleep(for:)` that does not wake libdispatch's worker pool in nicrouted.
///
/// nicrouted runs Swift concurrency on its own executor (`CGlobalExecutor`) so that an idle
/// daemon wakes for the watchdog only. Swift 6.3's `Task.sleep` schedules its wake-up with
/// libdispatch's default executor directly, which would start libdispatch's worker pool and its
/// 1 s monitor timer again; this sleep uses the executor's own timers instead. Without that
/// executor (tests, other programs) it is `Task.sleep`.
public enum ExecutorSleep {
    /// Suspends for `duration`; throws `CancellationError` as soon as the task is cancelled.
    public static func sleep(for duration: Duration) async throws {
        guard nicroute_global_executor_installed() != 0 else {
            try await Task.sleep(for: duration)
            return
        }
        let (seconds, attoseconds) = duration.components
        let nanoseconds: UInt64 =
            if seconds < 0 || (seconds == 0 && attoseconds <= 0) {
                0
            } else if seconds >= Int64(UInt64.max / 1_000_000_000) - 1 {
                .max
            } else {
                UInt64(seconds) * 1_000_000_000 + UInt64(max(attoseconds, 0) / 1_000_000_000)
            }
        let sleeper = Sleeper()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                guard sleeper.start(continuation) else { return }
                nicroute_global_executor_after(
                    nanoseconds,
                    { context in
                        Unmanaged<Sleeper>.fromOpaque(context!).takeRetainedValue().finish(cancelled: false)
                    }, Unmanaged.passRetained(sleeper).toOpaque())
            }
        } onCancel: {
            sleeper.finish(cancelled: true)
        }
    }

    /// One sleep's continuation, resumed exactly once: by the timer or by cancellation, whichever
    /// comes first (a cancelled sleep's timer still fires later, and finds nothing to do).
    private final class Sleeper: Sendable {
        private let state = Mutex<(continuation: CheckedContinuation<Void, any Error>?, finished: Bool)>((nil, false))

        /// Keeps the continuation; false (and the continuation resumed) when already cancelled.
        func start(_ continuation: CheckedContinuation<Void, any Error>) -> Bool {
            let cancelled = state.withLock { state in
                if state.finished { return true }
                state.continuation = continuation
                return false
            }
            if cancelled { continuation.resume(throwing: CancellationError()) }
            return !cancelled
        }

        func finish(cancelled: Bool) {
            let continuation = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                if state.finished { return nil }
                state.finished = true
                defer { state.continuation = nil }
                return state.continuation
            }
            if cancelled { continuation?.resume(throwing: CancellationError()) } else { continuation?.resume() }
        }
    }
}
