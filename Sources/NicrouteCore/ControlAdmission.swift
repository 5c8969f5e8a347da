/// Who gets one of the control socket's connection slots.
///
/// The socket is open to every local user (anyone may ask for `status`), and each connection
/// holds a slot until it is answered or times out. Shared out first come, first served, a single
/// unprivileged user holding idle connections (re-opening each one the daemon closes) kept root
/// out. So the slots are shared out by who is asking, from the caller's credentials at
/// `accept(2)` (`SO_PEERCRED`):
/// - trusted callers (those who may change things: root, the service's own user, the
///   `[Control] Group=`) may take any free slot, including `reserved` ones no one else may use;
/// - every other user takes at most `perUser` slots at once, and all of them together at most
///   `capacity - reserved`.
/// A caller turned away is answered `busy`. Values in, values out: the server counts its
/// connections here and performs nothing.
public struct ControlAdmission: Hashable, Sendable {
    /// Connections served at once, in all.
    public let capacity: Int
    /// Slots that only trusted callers may take.
    public let reserved: Int
    /// The most connections one untrusted user may hold at once.
    public let perUser: Int

    private var untrustedByUser: [UInt32: Int] = [:]
    private var untrusted = 0
    private var trusted = 0

    /// `capacity` slots, a quarter of them reserved for trusted callers and an eighth the most
    /// any other user may hold (32: 8 reserved, 4 per user), at least one each.
    public init(capacity: Int = 32) {
        self.init(capacity: capacity, reserved: max(1, capacity / 4), perUser: max(1, capacity / 8))
    }

    public init(capacity: Int, reserved: Int, perUser: Int) {
        self.capacity = max(1, capacity)
        self.reserved = min(max(0, reserved), self.capacity)
        self.perUser = max(1, perUser)
    }

    public enum Verdict: Hashable, Sendable {
        case admitted
        /// Turned away, with the reason the `busy` answer gives.
        case busy(String)
    }

    /// Takes a slot for a caller with `uid`, or says why not.
    public mutating func admit(uid: UInt32, trusted isTrusted: Bool) -> Verdict {
        guard trusted + untrusted < capacity else { return .busy("too many control connections; try again") }
        if isTrusted {
            trusted += 1
            return .admitted
        }
        guard untrusted < capacity - reserved else {
            return .busy("too many control connections from unprivileged users; try again")
        }
        guard untrustedByUser[uid, default: 0] < perUser else {
            return .busy("too many control connections from uid \(uid) (at most \(perUser) at once); try again")
        }
        untrusted += 1
        untrustedByUser[uid, default: 0] += 1
        return .admitted
    }

    /// Gives back the slot of a connection `admit` let in.
    public mutating func release(uid: UInt32, trusted isTrusted: Bool) {
        if isTrusted {
            trusted = max(0, trusted - 1)
            return
        }
        guard let held = untrustedByUser[uid], held > 0 else { return }
        untrusted -= 1
        untrustedByUser[uid] = held == 1 ? nil : held - 1
    }

    /// Connections holding a slot now.
    public var count: Int { trusted + untrusted }
}
