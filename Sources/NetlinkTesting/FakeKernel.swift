import CNetlink
import Netlink
import NicrouteCore
import Synchronization
import SystemPackage

/// An in-memory rtnetlink peer for tests, after mdlayher/netlink's `nltest`: `RouteNetlink`
/// talks to it through `NetlinkTransport` as it would to the kernel, without root.
///
/// It keeps links, addresses, routes, rules and neighbours, answers dumps (a few objects per
/// datagram, then `NLMSG_DONE`), makes the changes it is asked for and acks each with its
/// sequence number: "File exists" for an exclusive add of an existing route or rule, "No such
/// process" for a missing route, "No such file or directory" for a missing rule, as the kernel
/// does. Every datagram sent is kept (`sent`) for tests to read. Faults are injected with
/// `interruptDumps`, `answer` and `receiveError`; `receive()` on an empty queue throws
/// `EAGAIN` rather than block, so a client waiting for an answer that never comes fails fast.
public final class FakeKernel: NetlinkTransport {
    /// What the fake does with one request, when `answer` says otherwise than the default.
    public enum Answer: Sendable {
        /// Ack with this errno (nil: success) without touching the objects.
        case ack(Errno?)
        /// No answer at all (as the kernel skips a request interrupted by a signal).
        case silent
        /// These datagrams, as they are.
        case datagrams([[UInt8]])
    }

    /// The objects the fake kernel holds: the core's own picture of a kernel.
    public typealias Objects = KernelSnapshot

    private struct State {
        var objects: Objects
        var sent: [[UInt8]] = []
        var inbox: [[UInt8]] = []
        var interruptDumps = 0
        var dumps = 0
        var objectsPerDatagram = 3
        var answer: (@Sendable (NetlinkMessage) -> Answer?)?
        var receiveError: NetlinkError?
    }
    private let state: Mutex<State>

    public init(_ objects: Objects = Objects()) {
        state = Mutex(State(objects: objects))
    }

    /// The objects as they are now.
    public var objects: Objects {
        get { state.withLock { $0.objects } }
        set { state.withLock { $0.objects = newValue } }
    }

    /// Every datagram received from the client, in order.
    public var sent: [[UInt8]] { state.withLock { $0.sent } }

    /// The messages of every datagram received from the client, in order.
    public func sentMessages() throws -> [NetlinkMessage] { try sent.flatMap(NetlinkMessage.split) }

    /// How many dump requests were answered.
    public var dumps: Int { state.withLock { $0.dumps } }

    /// Flags the next `count` dumps as interrupted (`NLM_F_DUMP_INTR` on their messages).
    public func interruptDumps(_ count: Int) { state.withLock { $0.interruptDumps = count } }

    /// How many objects each datagram of a dump carries (the last one also carries `NLMSG_DONE`).
    public func setObjectsPerDatagram(_ count: Int) { state.withLock { $0.objectsPerDatagram = max(1, count) } }

    /// Decides the answer to each request before the default does; nil leaves it to the default.
    public func setAnswer(_ answer: (@Sendable (NetlinkMessage) -> Answer?)?) { state.withLock { $0.answer = answer } }

    /// Makes the next `receive()` throw `error` (once).
    public func failNextReceive(_ error: NetlinkError) { state.withLock { $0.receiveError = error } }

    // MARK: NetlinkTransport

    public func send(_ bytes: [UInt8]) throws {
        let messages = try NetlinkMessage.split(bytes)
        try state.withLock { s in
            s.sent.append(bytes)
            var out: [UInt8] = []
            for message in messages {
                switch s.answer?(message) {
                case .ack(let errno): out += Self.ack(message, errno: errno)
                case .silent: continue
                case .datagrams(let datagrams):
                    s.inbox += datagrams
                case nil:
                    // RTM_GET* is a dump with NLM_F_DUMP (NLM_F_ROOT | NLM_F_MATCH, whose bits
                    // other requests use for NLM_F_REPLACE and NLM_F_EXCL), as the kernel reads it.
                    if message.header.type & 3 == 2, message.header.flags & MessageFlags.dump == MessageFlags.dump {
                        s.inbox += try Self.dump(message, state: &s)
                    } else {
                        out += Self.ack(message, errno: try Self.change(message, objects: &s.objects))
                    }
                }
            }
            if !out.isEmpty { s.inbox.append(out) }
        }
    }

    public func receive() throws -> [UInt8] {
        try state.withLock { s in
            if let error = s.receiveError {
                s.receiveError = nil
                throw error
            }
            guard !s.inbox.isEmpty else {
                throw NetlinkError(
                    operation: "FakeKernel.receive: nothing to answer", errno: .resourceTemporarilyUnavailable)
            }
            return s.inbox.removeFirst()
        }
    }

    // MARK: Answers

    /// `NLMSG_ERROR` for `request`: errno 0 is the ack. Capped, as `NETLINK_CAP_ACK` asks.
    public static func ack(_ request: NetlinkMessage, errno: Errno?) -> [UInt8] {
        var w = MessageWriter(type: MessageType.error, flags: MessageFlags.capped, sequence: request.header.sequence)
        w.append(Int32(0) &- (errno?.rawValue ?? 0))  // nlmsgerr.error
        w.append(request.header.length)  // nlmsgerr.msg: the request's header
        w.append(request.header.type)
        w.append(request.header.flags)
        w.append(request.header.sequence)
        w.append(request.header.portID)
        return w.finish()
    }

    /// `NLMSG_DONE` ending a dump with `sequence`.
    public static func done(sequence: UInt32, flags: UInt16 = MessageFlags.multi) -> [UInt8] {
        var w = MessageWriter(type: MessageType.done, flags: flags, sequence: sequence)
        w.append(Int32(0))
        return w.finish()
    }

    private static func dump(_ request: NetlinkMessage, state s: inout State) throws -> [[UInt8]] {
        let family = AddressFamily(rawValue: try request.payload.read(UInt8.self, at: 0))
        let sequence = request.header.sequence
        s.dumps += 1
        var flags = MessageFlags.multi
        if s.interruptDumps > 0 {
            s.interruptDumps -= 1
            flags |= MessageFlags.dumpInterrupted
        }
        let o = s.objects
        var messages: [[UInt8]] = []
        switch request.header.type {
        case MessageType.getLink:
            messages = o.links.map { link($0, flags: flags, sequence: sequence) }
        case MessageType.getAddress:
            messages = try o.addresses.filter { family == nil || $0.family == family }
                .map { try address($0, flags: flags, sequence: sequence) }
        case MessageType.getRoute:
            messages = try o.routes.filter { family == nil || $0.family == family }
                .map { try RouteCodec.routeRequest(MessageType.newRoute, flags: flags, route: $0, sequence: sequence) }
        case MessageType.getRule:
            messages = try o.rules.filter { family == nil || $0.family == family }
                .map { try RouteCodec.ruleRequest(MessageType.newRule, flags: flags, rule: $0, sequence: sequence) }
        case MessageType.getNeighbor:
            messages = try o.neighbors.filter { family == nil || $0.address.family == family }
                .map { try neighbor($0, flags: flags, sequence: sequence) }
        default:
            return [ack(request, errno: .notSupportedOnSocket)]
        }
        var datagrams: [[UInt8]] = []
        var index = 0
        repeat {
            let end = min(index + s.objectsPerDatagram, messages.count)
            var datagram = messages[index..<end].flatMap { $0 }
            index = end
            if index == messages.count { datagram += done(sequence: sequence, flags: flags) }
            datagrams.append(datagram)
        } while index < messages.count
        return datagrams
    }

    /// Makes the change `request` asks for; the errno of its ack (nil: done).
    private static func change(_ request: NetlinkMessage, objects o: inout Objects) throws -> Errno? {
        let flags = request.header.flags
        let exclusive = flags & MessageFlags.exclusive != 0
        let replace = flags & MessageFlags.replace != 0
        let type = request.header.type
        switch try RouteCodec.decode(request) {
        case .route(let r) where type == MessageType.newRoute:
            if let i = o.routes.firstIndex(where: { $0.key == r.key }) {
                if exclusive { return .fileExists }
                if replace { o.routes[i] = r }
                return nil
            }
            o.routes.append(r)
        case .route(let r) where type == MessageType.deleteRoute:
            guard let i = o.routes.firstIndex(where: { $0.key == r.key }) else { return .noSuchProcess }
            o.routes.remove(at: i)
        case .rule(let r) where type == MessageType.newRule:
            if o.rules.contains(r) { return exclusive ? .fileExists : nil }
            o.rules.append(r)
        case .rule(let r) where type == MessageType.deleteRule:
            guard let i = o.rules.firstIndex(of: r) else { return .noSuchFileOrDirectory }
            o.rules.remove(at: i)
        case .neighbor where type == MessageType.newNeighbor:
            return nil  // a probe: the fake has no wire to send it on
        default:
            return .notSupportedOnSocket
        }
        return nil
    }

    // MARK: Encoders of what only the kernel sends

    /// `RTM_NEWLINK` for `l`.
    public static func link(_ l: Link, flags: UInt16 = MessageFlags.multi, sequence: UInt32 = 0) -> [UInt8] {
        var w = MessageWriter(type: MessageType.newLink, flags: flags, sequence: sequence)
        var header = ifinfomsg()
        header.ifi_type = l.hardwareType
        header.ifi_index = l.index
        header.ifi_flags = l.flags.rawValue
        w.append(header: header)
        try! w.attribute(UInt16(IFLA_IFNAME), string: l.name)
        if let mac = l.mac { try! w.attribute(UInt16(IFLA_ADDRESS), bytes: mac.bytes) }
        if let mtu = l.mtu { try! w.attribute(UInt16(IFLA_MTU), u32: mtu) }
        try! w.attribute(UInt16(IFLA_OPERSTATE), u8: l.operationalState.rawValue)
        if let kind = l.kind {
            try! w.nested(UInt16(IFLA_LINKINFO)) { try $0.attribute(UInt16(IFLA_INFO_KIND), string: kind) }
        }
        return w.finish()
    }

    /// `RTM_NEWADDR` for `a`.
    public static func address(
        _ a: InterfaceAddress, flags: UInt16 = MessageFlags.multi, sequence: UInt32 = 0
    ) throws -> [UInt8] {
        var w = MessageWriter(type: MessageType.newAddress, flags: flags, sequence: sequence)
        var header = ifaddrmsg()
        header.ifa_family = a.family.rawValue
        header.ifa_prefixlen = a.prefixLength
        header.ifa_flags = UInt8(truncatingIfNeeded: a.flags.rawValue)
        header.ifa_scope = a.scope.rawValue
        header.ifa_index = UInt32(bitPattern: a.linkIndex)
        w.append(header: header)
        try w.attribute(UInt16(IFA_ADDRESS), address: a.peer ?? a.address)
        if a.family == .inet || a.peer != nil { try w.attribute(UInt16(IFA_LOCAL), address: a.address) }
        if let label = a.label { try w.attribute(UInt16(IFA_LABEL), string: label) }
        try w.attribute(UInt16(IFA_FLAGS), u32: a.flags.rawValue)
        return w.finish()
    }

    /// `RTM_NEWNEIGH` for `n`.
    public static func neighbor(
        _ n: Neighbor, flags: UInt16 = MessageFlags.multi, sequence: UInt32 = 0
    ) throws
        -> [UInt8]
    {
        var w = MessageWriter(type: MessageType.newNeighbor, flags: flags, sequence: sequence)
        var header = ndmsg()
        header.ndm_family = n.address.family.rawValue
        header.ndm_ifindex = n.linkIndex
        header.ndm_state = n.state.rawValue
        w.append(header: header)
        try w.attribute(UInt16(NDA_DST), address: n.address)
        if let mac = n.linkLayerAddress { try w.attribute(UInt16(NDA_LLADDR), bytes: mac.bytes) }
        return w.finish()
    }
}
