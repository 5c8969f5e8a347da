/// An exponential back-off: `initial` seconds, then twice the last wait each time, at most
/// `maximum`. The one rule for every retry nicroute schedules: first-host neighbour probes,
/// changes the kernel refuses, objects another tool keeps deleting (`ReinstallGuard`). Values
/// in, values out: the caller adds the wait to its own clock.
public struct Backoff: Hashable, Sendable {
    public let initial: Double
    public let maximum: Double
    /// The last wait handed out; nil before the first one (or after `reset()`).
    public private(set) var current: Double?

    public init(initial: Double, maximum: Double) {
        self.initial = initial
        self.maximum = max(initial, maximum)
    }

    /// The next wait, remembered as the current one.
    public mutating func next() -> Double {
        let wait = current.map { min($0 * 2, maximum) } ?? initial
        current = wait
        return wait
    }

    /// Starts again from `initial`.
    public mutating func reset() { current = nil }
}
