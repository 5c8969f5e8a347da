import CNetlink
import NicrouteCore
import Synchronization
import SystemPackage

/// A request/response rtnetlink client: dumps, and add/replace/delete with `NLM_F_ACK`.
///
/// Calls are serialized; each waits for the kernel's answer to its own sequence number.
public final class RouteNetlink: Sendable {
    private struct State: ~Copyable {
        var socket: NetlinkSocket
        var sequence: UInt32
    }
    private let state: Mutex<State>
    /// How often a dump interrupted by a concurrent change (`NLM_F_DUMP_INTR`) is retried.
    public static let dumpRetries = 8

    /// Opens a client socket, in `networkNamespace` (a path such as `/run/netns/NAME`) if given.
    public init(networkNamespace: String? = nil) throws {
        state = Mutex(State(socket: try NetlinkSocket(networkNamespace: networkNamespace), sequence: 0))
    }

    // MARK: Dumps

    /// Every link. Equivalent to `ip link show`.
    public func links() throws -> [Link] {
        try dump(MessageType.getLink, family: nil, what: "links").compactMap {
            if case .link(let l) = $0 { return l } else { return nil }
        }
    }

    /// Every address of `family` (nil: both). Equivalent to `ip address show`.
    public func addresses(family: AddressFamily? = nil) throws -> [InterfaceAddress] {
        try dump(MessageType.getAddress, family: family, what: "addresses").compactMap {
            if case .address(let a) = $0 { return a } else { return nil }
        }
    }

    /// Every route of `family` in every table. Equivalent to `ip route show table all`.
    public func routes(family: AddressFamily) throws -> [Route] {
        try dump(MessageType.getRoute, family: family, what: "routes").compactMap {
            if case .route(let r) = $0 { return r } else { return nil }
        }
    }

    /// Every rule of `family`. Equivalent to `ip rule show`.
    public func rules(family: AddressFamily) throws -> [Rule] {
        try dump(MessageType.getRule, family: family, what: "rules").compactMap {
            if case .rule(let r) = $0 { return r } else { return nil }
        }
    }

    /// The neighbour cache of `family`. Equivalent to `ip neigh show`.
    public func neighbors(family: AddressFamily) throws -> [Neighbor] {
        try dump(MessageType.getNeighbor, family: family, what: "neighbours").compactMap {
            if case .neighbor(let n) = $0 { return n } else { return nil }
        }
    }

    /// Dumps objects of `type`, retrying when the kernel flags the dump as interrupted.
    public func dump(_ type: UInt16, family: AddressFamily?, what: String) throws -> [RouteObject] {
        for _ in 0..<Self.dumpRetries {
            let (objects, interrupted) = try state.withLock { state in
                state.sequence &+= 1
                let seq = state.sequence
                try state.socket.send(RouteCodec.dumpRequest(type, family: family, sequence: seq))
                var objects: [RouteObject] = []
                var interrupted = false
                while true {
                    let datagram = try state.socket.receive()
                    for message in try NetlinkMessage.split(datagram) where message.header.sequence == seq {
                        if message.header.flags & MessageFlags.dumpInterrupted != 0 { interrupted = true }
                        switch message.header.type {
                        case MessageType.done:
                            let code = message.payload.count >= 4 ? try message.payload.read(Int32.self, at: 0) : 0
                            if code < 0 {
                                throw NetlinkError(operation: "dump \(what)", errno: Errno(rawValue: 0 &- code))
                            }
                            return (objects, interrupted)
                        case MessageType.error:
                            let (errno, text) = try RouteCodec.decodeError(message)
                            throw NetlinkError(
                                operation: "dump \(what)", errno: Errno(rawValue: errno), kernelMessage: text)
                        case MessageType.noop, MessageType.overrun:
                            continue
                        default:
                            // One object the decoder cannot read is skipped, not the whole picture.
                            if let object = try? RouteCodec.decode(message) { objects.append(object) }
                        }
                    }
                }
            }
            if !interrupted { return objects }
        }
        throw NetlinkError(
            operation: "dump \(what): interrupted \(Self.dumpRetries) times", errno: .resourceTemporarilyUnavailable)
    }

    // MARK: Changes

    /// Adds `route`; returns false when an identical key already existed ("File exists" counts
    /// as done). Equivalent to `ip route add ...`.
    @discardableResult
    public func add(_ route: Route) throws -> Bool {
        try change(
            "add route", object: IPCommand.route("add", route),
            flags: MessageFlags.create | MessageFlags.exclusive, tolerate: [.fileExists]
        ) { try RouteCodec.routeRequest(MessageType.newRoute, flags: $1, route: route, sequence: $0) }
    }

    /// Adds or replaces the route with `route`'s key. Equivalent to `ip route replace ...`.
    public func replace(_ route: Route) throws {
        _ = try change(
            "replace route", object: IPCommand.route("replace", route),
            flags: MessageFlags.create | MessageFlags.replace, tolerate: []
        ) { try RouteCodec.routeRequest(MessageType.newRoute, flags: $1, route: route, sequence: $0) }
    }

    /// Deletes `route`; returns false when it was already gone ("No such process" counts as done).
    /// Equivalent to `ip route del ...`.
    @discardableResult
    public func delete(_ route: Route) throws -> Bool {
        try change(
            "delete route", object: IPCommand.route("del", route), flags: 0,
            tolerate: [.noSuchProcess, .noSuchFileOrDirectory]
        ) {
            try RouteCodec.routeRequest(MessageType.deleteRoute, flags: $1, route: route, sequence: $0)
        }
    }

    /// Adds `rule`; returns false when it already existed. Equivalent to `ip rule add ...`.
    @discardableResult
    public func add(_ rule: Rule) throws -> Bool {
        try change(
            "add rule", object: IPCommand.rule("add", rule), flags: MessageFlags.create | MessageFlags.exclusive,
            tolerate: [.fileExists]
        ) { try RouteCodec.ruleRequest(MessageType.newRule, flags: $1, rule: rule, sequence: $0) }
    }

    /// Deletes `rule`; returns false when it was already gone. Equivalent to `ip rule del ...`.
    @discardableResult
    public func delete(_ rule: Rule) throws -> Bool {
        try change(
            "delete rule", object: IPCommand.rule("del", rule), flags: 0,
            tolerate: [.noSuchFileOrDirectory, .noSuchProcess]
        ) {
            try RouteCodec.ruleRequest(MessageType.deleteRule, flags: $1, rule: rule, sequence: $0)
        }
    }

    /// Asks the kernel to resolve `address` on a link (ARP or neighbour solicitation).
    public func probeNeighbor(_ address: IPAddress, linkIndex: Int32) throws {
        _ = try change("probe neighbour", object: "\(address) dev #\(linkIndex)", flags: 0, tolerate: []) { seq, _ in
            try RouteCodec.neighborProbeRequest(address: address, linkIndex: linkIndex, sequence: seq)
        }
    }

    /// Sends one request with `NLM_F_REQUEST | NLM_F_ACK | flags` and waits for its ack.
    private func change(
        _ operation: String, object: String, flags: UInt16, tolerate: Set<Errno>,
        _ build: (UInt32, UInt16) throws -> [UInt8]
    ) throws -> Bool {
        try state.withLock { state in
            state.sequence &+= 1
            let seq = state.sequence
            try state.socket.send(build(seq, MessageFlags.request | MessageFlags.ack | flags))
            while true {
                for message in try NetlinkMessage.split(try state.socket.receive())
                where message.header.sequence == seq && message.header.type == MessageType.error {
                    let (code, text) = try RouteCodec.decodeError(message)
                    if code == 0 { return true }
                    let errno = Errno(rawValue: code)
                    if tolerate.contains(errno) { return false }
                    throw NetlinkError(operation: operation, errno: errno, kernelMessage: text, object: object)
                }
            }
        }
    }
}
