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
    private var holds: [String: Hold] = [:]

    /// An object held back.
    private struct Hold {
        var until: Double
        var backoff: Backoff
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
        if let h = holds[identity], now < h.until {
            return .deferred(until: h.until, fights: history[identity]?.count ?? 0, firstTime: false)
        }
        var times = (history[identity] ?? []).filter { now - $0 < window }
        times.append(now)
        history[identity] = times
        var hold: Hold
        if let h = holds[identity] {
            guard h.retried else {
                holds[identity]?.retried = true
                return .proceed
            }
            hold = h
        } else {
            guard times.count > threshold else { return .proceed }
            hold = Hold(until: now, backoff: Backoff(initial: initialBackoff, maximum: maximumBackoff), retried: false)
        }
        hold.until = now + hold.backoff.next()
        hold.retried = false
        holds[identity] = hold
        return .deferred(until: hold.until, fights: times.count, firstTime: true)
    }

    /// The earliest time a deferred object may be retried, if any is deferred.
    public func nextDeadline(after now: Double) -> Double? {
        holds.values.filter { !$0.retried }.map(\.until).filter { $0 > now }.min()
    }

    /// Forgets objects with no re-install for a whole window (bounded memory).
    public mutating func prune(now: Double) {
        history = history.filter { $0.value.contains { now - $0 < window } }
        holds = holds.filter { now < $0.value.until + window || history[$0.key] != nil }
    }
}
