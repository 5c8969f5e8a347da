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
    private var backoff: [String: (until: Double, step: Double)] = [:]

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
    public mutating func admit(_ identity: String, now: Double) -> Verdict {
        if let b = backoff[identity], now < b.until {
            return .deferred(until: b.until, fights: history[identity]?.count ?? 0, firstTime: false)
        }
        var times = (history[identity] ?? []).filter { now - $0 < window }
        times.append(now)
        history[identity] = times
        guard times.count > threshold else {
            if times.count == 1 { backoff[identity] = nil }
            return .proceed
        }
        let step = min((backoff[identity]?.step).map { $0 * 2 } ?? initialBackoff, maximumBackoff)
        let until = now + step
        backoff[identity] = (until, step)
        return .deferred(until: until, fights: times.count, firstTime: true)
    }

    /// The earliest time a deferred object may be retried, if any is deferred.
    public func nextDeadline(after now: Double) -> Double? {
        backoff.values.map(\.until).filter { $0 > now }.min()
    }

    /// Forgets objects with no re-install for a whole window (bounded memory).
    public mutating func prune(now: Double) {
        history = history.filter { $0.value.contains { now - $0 < window } }
        backoff = backoff.filter { now < $0.value.until + window }
    }

    /// The number of objects currently in back-off.
    public func deferredCount(now: Double) -> Int { backoff.values.filter { now < $0.until }.count }
}
