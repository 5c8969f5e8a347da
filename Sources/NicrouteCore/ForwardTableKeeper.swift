/// What nicroute's forwarded-connection table (`inet nicroute`) is doing; `status` prints it.
public enum ForwardingState: Hashable, Sendable {
    /// Not wanted (or not looked at yet); nothing installed.
    case off(Off)
    /// The table is in place.
    case installed
    /// Wanted but impossible.
    case unavailable(Problem)

    public enum Off: Hashable, Sendable {
        /// No pass has decided yet.
        case notCheckedYet
        /// `ForwardedConnections=no`.
        case configuredOff
        /// `ForwardedConnections=auto` and the VM forwards no packets.
        case notForwarding
        /// Removed by `flush`.
        case removed
    }

    public enum Problem: Hashable, Sendable {
        /// libnftables cannot be loaded (why).
        case noLibrary(String)
        /// The transaction that installs the table failed (nft's error).
        case installFailed(String)
        /// The table is not in the kernel as nicroute left it.
        case notInPlace
    }

    /// `off`, `installed` or `unavailable` (`status --json`'s `forwarding.state`).
    public var name: String {
        switch self {
        case .off: "off"
        case .installed: "installed"
        case .unavailable: "unavailable"
        }
    }

    /// Why, in a sentence `status` prints.
    public var reason: String {
        switch self {
        case .off(.notCheckedYet): "not checked yet"
        case .off(.configuredOff): "ForwardedConnections=no"
        case .off(.notForwarding):
            "ForwardedConnections=auto and the VM does not forward packets (ip_forward=0)"
        case .off(.removed): "removed"
        case .installed: "in place"
        case .unavailable(.noLibrary(let why)):
            "libnftables is not available (\(why)): forwarded replies are not covered"
        case .unavailable(.installFailed(let error)):
            "cannot install nftables table inet nicroute (\(error)): forwarded replies are not covered"
        case .unavailable(.notInPlace):
            "nftables table inet nicroute is not in place: forwarded replies are not covered"
        }
    }
}

/// The decisions about nicroute's nftables table for forwarded connections, as a value: what a
/// pass must ask nftables (list the table? replace it?) and what follows from each answer.
/// Values in, values out; `Forwarder` in the daemon runs the nftables calls it asks for.
///
/// Healing and adoption: the kernel's listing of the table right after nicroute installed it
/// is kept (and saved in the state directory, so that a restart adopts the table in place). A
/// pass lists the table and replaces it when the listing differs, the script differs (other
/// NICs, another mask) or nothing was installed yet. While nftables announces its changes
/// (`changesAnnounced`), a pass whose script is the one installed skips the listing until a
/// change was announced: listing builds libnftables' whole ruleset cache, the largest cost of
/// a pass on a forwarding VM.
public struct ForwardTableKeeper: Hashable, Sendable {
    public private(set) var state: ForwardingState = .off(.notCheckedYet)
    /// The script of the table in place, as nicroute installed it; nil when none.
    public private(set) var installedScript: String?
    /// The kernel's listing of the table right after nicroute installed it.
    public private(set) var installedListing: String?
    /// True while nftables changes are announced to the daemon (`NftablesWatch` works).
    public var changesAnnounced = false
    /// Whether the kernel's table may differ from the last listing (an announced change, or
    /// nothing listed yet).
    public private(set) var listingStale = true

    /// What a restart found in the state directory (nil: nothing).
    public init(adopting installed: (script: String, listing: String)? = nil) {
        installedScript = installed?.script
        installedListing = installed?.listing
    }

    /// Whether forwarded connections are wanted: `yes`, or `auto` while the VM forwards IPv4 or
    /// IPv6 packets. Returns nil when wanted, else why not.
    public static func unwanted(
        _ mode: ForwardingMode, ipv4Forwarding: Bool, ipv6Forwarding: Bool
    ) -> ForwardingState.Off? {
        switch mode {
        case .yes: nil
        case .no: .configuredOff
        case .auto: ipv4Forwarding || ipv6Forwarding ? nil : .notForwarding
        }
    }

    /// Records the pass's decision; returns whether the pass handles forwarded connections (it
    /// does when wanted and libnftables can be loaded).
    /// - Parameters:
    ///   - unwanted: `unwanted(...)`'s answer.
    ///   - libraryProblem: why libnftables cannot be loaded, nil when it can (asked only when
    ///     wanted).
    public mutating func decide(unwanted: ForwardingState.Off?, libraryProblem: @autoclosure () -> String?) -> Bool {
        if let unwanted {
            state = .off(unwanted)
            return false
        }
        if let problem = libraryProblem() {
            state = .unavailable(.noLibrary(problem))
            return false
        }
        // The library is back: what it could not do is no longer known.
        if case .unavailable(.noLibrary) = state { state = .off(.notCheckedYet) }
        return true
    }

    /// What `decide` would answer, without recording it (`status`, `plan`).
    public func wouldHandle(unwanted: ForwardingState.Off?, libraryProblem: @autoclosure () -> String?) -> Bool {
        var copy = self
        return copy.decide(unwanted: unwanted, libraryProblem: libraryProblem())
    }

    /// Whether a pass that wants `script` in place must list the table: false when it is the
    /// script installed, the table is in place and no change was announced since the last
    /// listing.
    public func mustList(_ script: String) -> Bool {
        guard changesAnnounced, !listingStale, case .installed = state, installedListing != nil,
            script == installedScript
        else { return true }
        return false
    }

    /// The table was listed (`listing` nil: it is not there, or nftables failed): returns
    /// whether it must be replaced by `script`. What is read now is current until the next
    /// announced change.
    public mutating func listed(_ listing: String?, wanting script: String) -> Bool {
        listingStale = false
        guard let listing, let installedListing, listing == installedListing, script == installedScript else {
            return true
        }
        state = .installed
        return false
    }

    /// The table was replaced by `script`, and the kernel lists it as `listing`.
    public mutating func replaced(_ script: String, listing: String) {
        installedScript = script
        installedListing = listing
        state = .installed
    }

    /// Replacing the table failed with nft's `error`.
    public mutating func replaceFailed(_ error: String) {
        installedListing = nil
        state = .unavailable(.installFailed(error))
    }

    /// nftables announced a change: the next pass lists the table again.
    public mutating func nftablesChanged() { listingStale = true }

    /// The table was removed (flush, or no longer wanted); returns whether nicroute had one
    /// installed (its record must then be cleared).
    @discardableResult
    public mutating func removed() -> Bool {
        let had = installedScript != nil
        installedScript = nil
        installedListing = nil
        listingStale = true
        if case .installed = state { state = .off(.removed) }
        return had
    }

    /// The state a listing of the kernel shows (nil: no table), without recording it: for
    /// `status` in one-shot mode, where no pass ran.
    public func observed(_ listing: String?) -> ForwardingState {
        if let listing, installedListing == nil || listing == installedListing { return .installed }
        if case .unavailable = state { return state }
        return .unavailable(.notInPlace)
    }
}
