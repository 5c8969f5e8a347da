/// Detects a fight with another tool that keeps deleting nicroute's objects, and backs off.
///
/// Each re-install of an object nicroute had already installed is recorded. Up to `threshold`
/// re-installs within `window` seconds go ahead at once (that is the normal "someone flushed a
/// table" case, repaired in milliseconds). Past that, the object is deferred with an exponential
/// back-off (`initialBackoff` doubling to `maximumBackoff`), and the caller reports it. Pure:
/// the caller passes the time in.
public struct ReinstallGuard: Sendable {
    public var window: Double
    public var threshold: Int
    public var initialBackoff: Double
    public var maximumBackoff: Double

    private var history: [String: [Double]] = [:]
    private var backoff: [String: Backoff] = [:]

    private struct Backoff {
        var until: Double
        var step: Double
        /// The one re-install allowed once the wait is over has been handed out.
        var retried: Bool
    }

    public init(window: Double = 30, threshold: Int = 5, initialBackoff: Double = 1, maximumBackoff: Double = 60) {
        self.window = window
        self.threshold = threshold
        self.initialBackoff = initialBackoff
        self.maximumBackoff = maximumBackoff
    }

    public enum Verdict: Equatable, Sendable {
        /// Re-install now.
        case proceed
        /// Wait until the given time; `firstTime` is true when this starts or lengthens a back-off
        /// (report it once, not on every event).
        case deferred(until: Double, fights: Int, firstTime: Bool)
    }

    /// Records that `identity` needs re-installing at `now` and says whether to do it.
    ///
    /// Within a back-off, requests are refused (and not counted). When the wait is over, one
    /// re-install goes ahead; if the object is deleted again, the wait doubles.
    public mutating func admit(_ identity: String, now: Double) -> Verdict {
        if let b = backoff[identity], now < b.until {
            return .deferred(until: b.until, fights: history[identity]?.count ?? 0, firstTime: false)
        }
        var times = (history[identity] ?? []).filter { now - $0 < window }
        times.append(now)
        history[identity] = times
        if var b = backoff[identity] {
            if !b.retried {
                b.retried = true
                backoff[identity] = b
                return .proceed
            }
            let step = min(b.step * 2, maximumBackoff)
            backoff[identity] = Backoff(until: now + step, step: step, retried: false)
            return .deferred(until: now + step, fights: times.count, firstTime: true)
        }
        guard times.count > threshold else { return .proceed }
        backoff[identity] = Backoff(until: now + initialBackoff, step: initialBackoff, retried: false)
        return .deferred(until: now + initialBackoff, fights: times.count, firstTime: true)
    }

    /// The earliest time a deferred object may be retried, if any is deferred.
    public func nextDeadline(after now: Double) -> Double? {
        backoff.values.filter { !$0.retried }.map(\.until).filter { $0 > now }.min()
    }

    /// Forgets objects with no re-install for a whole window (bounded memory).
    public mutating func prune(now: Double) {
        history = history.filter { $0.value.contains { now - $0 < window } }
        backoff = backoff.filter { now < $0.value.until + window || history[$0.key] != nil }
    }
}
