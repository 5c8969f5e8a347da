import NicrouteCore

/// The caller on the other end of the control socket, from `SO_PEERCRED` and `SO_PEERGROUPS`.
public struct PeerCredentials: Hashable, Sendable {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32
    /// Supplementary groups (may be empty when the kernel cannot tell).
    public var groups: [UInt32]

    public init(pid: Int32, uid: UInt32, gid: UInt32, groups: [UInt32] = []) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }
}

/// Who may do what: anyone may read (status, plan); root, members of the configured group, and
/// the daemon's own user may change things (reconfigure, flush).
///
/// The daemon's own user is there for the unit's `ExecReload=nicroutectl reconfigure`, which
/// systemd runs as the service's (dynamic) user: only the service's processes have that uid.
public struct ControlPolicy: Sendable {
    public var group: (name: String, gid: UInt32)?
    /// The uid the daemon runs as, when it is not root.
    public var serviceUID: UInt32?

    public init(group: (name: String, gid: UInt32)? = nil, serviceUID: UInt32? = nil) {
        self.group = group
        self.serviceUID = serviceUID == 0 ? nil : serviceUID
    }

    /// True when `peer` may change things: root, the service's own user, the control group.
    public func isTrusted(_ peer: PeerCredentials) -> Bool {
        if peer.uid == 0 { return true }
        if let serviceUID, peer.uid == serviceUID { return true }
        if let group, peer.gid == group.gid || peer.groups.contains(group.gid) { return true }
        return false
    }

    /// nil when `peer` may run `command`; otherwise the refusal.
    public func refusal(_ command: ControlCommand, peer: PeerCredentials) -> ControlError? {
        guard command.isPrivileged, !isTrusted(peer) else { return nil }
        let who = group.map { "root or members of group '\($0.name)'" } ?? "root"
        return ControlError(
            .permissionDenied, "'\(command.rawValue)' is allowed to \(who) only (you are uid \(peer.uid))")
    }
}

/// What carries out an authorized command: the daemon's loop, or a test double. Called on the
/// loop's thread; `reply` is called once, on the same thread, at once or later.
public protocol ControlBackend: AnyObject {
    func perform(_ command: ControlCommand, reply: @escaping (ControlResponse) -> Void)
}

/// Decodes, authorizes and dispatches one request. The same code serves the socket and
/// in-process callers (tests run the same assertions both ways).
public struct ControlService {
    public var policy: ControlPolicy
    public var backend: any ControlBackend

    public init(policy: ControlPolicy, backend: any ControlBackend) {
        self.policy = policy
        self.backend = backend
    }

    /// Answers one request line from `peer` through `reply`.
    public func handle(_ line: [UInt8], peer: PeerCredentials, reply: @escaping (ControlResponse) -> Void) {
        let request: ControlRequest
        do { request = try ControlRequest.decode(line) } catch { return reply(.failure(error)) }
        if let refusal = policy.refusal(request.command, peer: peer) { return reply(.failure(refusal)) }
        backend.perform(request.command, reply: reply)
    }
}
