import CNetlink
import Netlink
import NicrouteCore
import Synchronization
import SystemPackage

/// An in-memory rtnetlink peer for tests, after mdlayher/netlink's `nltest`: `RouteNetlink`
/// talks to it through `NetlinkTransport` as it would to the kernel, and `RouteEventReader`
/// reads its notifications through a `Subscriber` (`NetlinkEventTransport`), without root.
///
/// It keeps links, addresses, routes, rules and neighbours, answers dumps (a few objects per
/// datagram, then `NLMSG_DONE`), makes the changes it is asked for and acks each with its
/// sequence number: "File exists" for an exclusive add of an existing route or rule, "No such
/// process" for a missing route, "No such file or directory" for a missing rule, as the kernel
/// does. Every datagram sent is kept (`sent`) for tests to read. Faults are injected with
/// `interruptDumps`, `setAnswer` and `failNextReceive`; `receive()` on an empty queue throws
/// `EAGAIN` rather than block, so a client waiting for an answer that never comes fails fast.
///
/// Like the kernel, it multicasts each change it makes (a route or rule added, replaced or
/// deleted on request, anything `announce`d) as an `RTM_NEW*`/`RTM_DEL*` notification to the
/// subscribers of the object's group (`subscribe`), one message per datagram unless
/// `setNotificationsPerDatagram` says otherwise; the request's own socket gets none. A
/// subscriber's queue can overrun (`queueLimit`: the notification is dropped and the next
/// receive throws ENOBUFS, as the kernel does), and tests inject faults: `overrun()`,
/// `notify(_:)` with any bytes (several messages in one datagram, an undecodable or truncated
/// datagram) and `Subscriber.queue(error:)`.
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
        var subscribers: [Int: Subscription] = [:]
        var nextSubscriber = 0
        var notificationsPerDatagram = 1
    }

    /// One subscriber's receive queue.
    private struct Subscription {
        enum Entry {
            case datagram([UInt8])
            case error(NetlinkError)
        }
        var groups: Set<UInt32>
        var queueLimit: Int?
        var entries: [Entry] = []
        /// Messages were dropped: the next receive throws ENOBUFS (before what is queued).
        var lost = false

        mutating func deliver(_ datagram: [UInt8]) {
            let queued = entries.count { if case .datagram = $0 { true } else { false } }
            if let queueLimit, queued >= queueLimit {
                lost = true
            } else {
                entries.append(.datagram(datagram))
            }
        }
    }
    private let state: Mutex<State>

    public init(_ objects: Objects = Objects()) {
        state = Mutex(State(objects: objects))
    }

    /// The objects as they are now. Setting them notifies no one (`announce` does).
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

    // MARK: Notifications

    /// A socket that joined `groups`: from now on it receives the notifications of those groups.
    /// - Parameter queueLimit: how many datagrams its queue holds (nil: no limit; errors queued
    ///   with `Subscriber.queue(error:)` do not count); when it is full, a notification is
    ///   dropped and the next receive throws ENOBUFS.
    public func subscribe(
        groups: [MulticastGroup] = MulticastGroup.routing, queueLimit: Int? = nil
    ) -> Subscriber {
        let id = state.withLock { s in
            s.nextSubscriber += 1
            s.subscribers[s.nextSubscriber] = Subscription(
                groups: Set(groups.map(\.rawValue)), queueLimit: queueLimit)
            return s.nextSubscriber
        }
        return Subscriber(kernel: self, id: id)
    }

    /// How many notifications of one change request (or one `announce`) share a datagram; the
    /// kernel sends one per datagram (the default).
    public func setNotificationsPerDatagram(_ count: Int) {
        state.withLock { $0.notificationsPerDatagram = max(1, count) }
    }

    /// The world changes: applies `event` to the objects (an added object replaces the one with
    /// its identity: a link's index, an address's link, address and prefix length, a route's
    /// key, a neighbour's link and address) and notifies the subscribers; `.resyncNeeded` is
    /// `overrun()`.
    public func announce(_ events: RouteEvent...) throws {
        try state.withLock { s in
            var applied: [(RouteObject, Bool)] = []
            for event in events {
                switch event {
                case .added(let object):
                    Self.apply(object, added: true, to: &s.objects)
                    applied.append((object, true))
                case .removed(let object):
                    Self.apply(object, added: false, to: &s.objects)
                    applied.append((object, false))
                case .resyncNeeded:
                    for id in s.subscribers.keys { s.subscribers[id]!.lost = true }
                }
            }
            try Self.publish(applied, sequence: 0, state: &s)
        }
    }

    /// Queues `datagram` as it is (any bytes: several messages, an undecodable or truncated
    /// one) for the subscribers of `group` (nil: every subscriber).
    public func notify(_ datagram: [UInt8], group: MulticastGroup? = nil) {
        state.withLock { s in
            for id in s.subscribers.keys where group.map({ s.subscribers[id]!.groups.contains($0.rawValue) }) ?? true {
                s.subscribers[id]!.deliver(datagram)
            }
        }
    }

    /// Drops messages for every subscriber: its next receive throws ENOBUFS.
    public func overrun() {
        state.withLock { s in
            for id in s.subscribers.keys { s.subscribers[id]!.lost = true }
        }
    }

    /// A socket subscribed to the fake kernel's notifications (`subscribe`), the fake
    /// `NetlinkEventTransport`. It has no descriptor (-1): read it with `RouteEventReader.drain`.
    public final class Subscriber: NetlinkEventTransport, Sendable {
        private let kernel: FakeKernel
        private let id: Int

        fileprivate init(kernel: FakeKernel, id: Int) {
            self.kernel = kernel
            self.id = id
        }

        deinit { kernel.state.withLock { _ = $0.subscribers.removeValue(forKey: id) } }

        public var descriptor: Int32 { -1 }

        /// How many datagrams (and queued errors) wait.
        public var queued: Int { kernel.state.withLock { $0.subscribers[id]?.entries.count ?? 0 } }

        /// Makes the receive at this point of the queue throw `error`: EAGAIN (a drain stops
        /// there and reads on at its next call), EMSGSIZE (a datagram too large for the buffer).
        public func queue(error: NetlinkError) {
            kernel.state.withLock { $0.subscribers[id]?.entries.append(.error(error)) }
        }

        /// The next queued datagram: ENOBUFS first when messages were dropped, EAGAIN when
        /// nothing is queued.
        public func receiveWithoutBlocking() throws -> [UInt8] {
            try kernel.state.withLock { s in
                guard var q = s.subscribers[id] else {
                    throw NetlinkError(operation: "FakeKernel.Subscriber: unsubscribed", errno: .badFileDescriptor)
                }
                defer { s.subscribers[id] = q }
                if q.lost {
                    q.lost = false
                    throw NetlinkError(operation: "FakeKernel.Subscriber: messages dropped", errno: .noBufferSpace)
                }
                guard !q.entries.isEmpty else {
                    throw NetlinkError(
                        operation: "FakeKernel.Subscriber: nothing queued", errno: .resourceTemporarilyUnavailable)
                }
                switch q.entries.removeFirst() {
                case .datagram(let datagram): return datagram
                case .error(let error): throw error
                }
            }
        }
    }

    /// The group the kernel announces `object` to.
    public static func group(of object: RouteObject) -> MulticastGroup {
        switch object {
        case .link: .link
        case .address(let a): a.family == .inet ? .ipv4Address : .ipv6Address
        case .route(let r): r.family == .inet ? .ipv4Route : .ipv6Route
        case .rule(let r): r.family == .inet ? .ipv4Rule : .ipv6Rule
        case .neighbor: .neighbor
        }
    }

    /// The `RTM_NEW*` (`added`) or `RTM_DEL*` notification of `object`.
    public static func notification(_ object: RouteObject, added: Bool, sequence: UInt32 = 0) throws -> [UInt8] {
        switch object {
        case .link(let l):
            link(l, type: added ? MessageType.newLink : MessageType.deleteLink, flags: 0, sequence: sequence)
        case .address(let a):
            try address(
                a, type: added ? MessageType.newAddress : MessageType.deleteAddress, flags: 0, sequence: sequence)
        case .route(let r):
            try RouteCodec.routeRequest(
                added ? MessageType.newRoute : MessageType.deleteRoute, flags: 0, route: r, sequence: sequence)
        case .rule(let r):
            try RouteCodec.ruleRequest(
                added ? MessageType.newRule : MessageType.deleteRule, flags: 0, rule: r, sequence: sequence)
        case .neighbor(let n):
            try neighbor(
                n, type: added ? MessageType.newNeighbor : MessageType.deleteNeighbor, flags: 0, sequence: sequence)
        }
    }

    /// A message of `type` whose 4-byte payload is too short for its header (every rtnetlink
    /// header is longer): it splits, but does not decode.
    public static func undecodable(type: UInt16 = MessageType.newRoute, sequence: UInt32 = 0) -> [UInt8] {
        var w = MessageWriter(type: type, flags: 0, sequence: sequence)
        w.append(UInt32(0))
        return w.finish()
    }

    /// Queues the notifications of `changes` for their groups' subscribers, in order, up to
    /// `notificationsPerDatagram` of one group per datagram.
    private static func publish(_ changes: [(RouteObject, Bool)], sequence: UInt32, state s: inout State) throws {
        guard !s.subscribers.isEmpty else { return }
        let perDatagram = s.notificationsPerDatagram
        var index = 0
        while index < changes.count {
            let group = Self.group(of: changes[index].0)
            var datagram: [UInt8] = []
            var messages = 0
            while index < changes.count, messages < perDatagram, Self.group(of: changes[index].0) == group {
                datagram += try notification(changes[index].0, added: changes[index].1, sequence: sequence)
                messages += 1
                index += 1
            }
            for id in s.subscribers.keys where s.subscribers[id]!.groups.contains(group.rawValue) {
                s.subscribers[id]!.deliver(datagram)
            }
        }
    }

    /// Adds (or replaces, by identity) or removes `object`.
    private static func apply(_ object: RouteObject, added: Bool, to o: inout Objects) {
        func update<T>(_ list: inout [T], _ value: T, same: (T) -> Bool) {
            let i = list.firstIndex(where: same)
            switch (added, i) {
            case (true, let i?): list[i] = value
            case (true, nil): list.append(value)
            case (false, let i?): list.remove(at: i)
            case (false, nil): break
            }
        }
        switch object {
        case .link(let l): update(&o.links, l) { $0.index == l.index }
        case .address(let a):
            update(&o.addresses, a) {
                $0.linkIndex == a.linkIndex && $0.address == a.address && $0.prefixLength == a.prefixLength
            }
        case .route(let r): update(&o.routes, r) { $0.key == r.key }
        case .rule(let r): update(&o.rules, r) { $0 == r }
        case .neighbor(let n): update(&o.neighbors, n) { $0.linkIndex == n.linkIndex && $0.address == n.address }
        }
    }

    // MARK: NetlinkTransport

    public func send(_ bytes: [UInt8]) throws {
        let messages = try NetlinkMessage.split(bytes)
        try state.withLock { s in
            s.sent.append(bytes)
            var out: [UInt8] = []
            var changes: [(RouteObject, Bool)] = []
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
                        out += Self.ack(
                            message, errno: try Self.change(message, objects: &s.objects, changes: &changes))
                    }
                }
            }
            if !out.isEmpty { s.inbox.append(out) }
            try Self.publish(changes, sequence: messages.first?.header.sequence ?? 0, state: &s)
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

    /// Makes the change `request` asks for, and appends it to `changes` (object, added); the
    /// errno of its ack (nil: done).
    private static func change(
        _ request: NetlinkMessage, objects o: inout Objects, changes: inout [(RouteObject, Bool)]
    ) throws -> Errno? {
        let flags = request.header.flags
        let exclusive = flags & MessageFlags.exclusive != 0
        let replace = flags & MessageFlags.replace != 0
        let type = request.header.type
        switch try RouteCodec.decode(request) {
        case .route(let r) where type == MessageType.newRoute:
            if let i = o.routes.firstIndex(where: { $0.key == r.key }) {
                if exclusive { return .fileExists }
                if replace {
                    o.routes[i] = r
                    changes.append((.route(r), true))
                }
                return nil
            }
            o.routes.append(r)
            changes.append((.route(r), true))
        case .route(let r) where type == MessageType.deleteRoute:
            guard let i = o.routes.firstIndex(where: { $0.key == r.key }) else { return .noSuchProcess }
            changes.append((.route(o.routes.remove(at: i)), false))  // as it was, as the kernel says
        case .rule(let r) where type == MessageType.newRule:
            if o.rules.contains(r) { return exclusive ? .fileExists : nil }
            o.rules.append(r)
            changes.append((.rule(r), true))
        case .rule(let r) where type == MessageType.deleteRule:
            guard let i = o.rules.firstIndex(of: r) else { return .noSuchFileOrDirectory }
            changes.append((.rule(o.rules.remove(at: i)), false))
        case .neighbor where type == MessageType.newNeighbor:
            return nil  // a probe: the fake has no wire to send it on
        default:
            return .notSupportedOnSocket
        }
        return nil
    }

    // MARK: Encoders of what only the kernel sends

    /// `RTM_NEWLINK` (or `type`) for `l`.
    public static func link(
        _ l: Link, type: UInt16 = MessageType.newLink, flags: UInt16 = MessageFlags.multi, sequence: UInt32 = 0
    ) -> [UInt8] {
        var w = MessageWriter(type: type, flags: flags, sequence: sequence)
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

    /// `RTM_NEWADDR` (or `type`) for `a`.
    public static func address(
        _ a: InterfaceAddress, type: UInt16 = MessageType.newAddress, flags: UInt16 = MessageFlags.multi,
        sequence: UInt32 = 0
    ) throws -> [UInt8] {
        var w = MessageWriter(type: type, flags: flags, sequence: sequence)
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

    /// `RTM_NEWNEIGH` (or `type`) for `n`.
    public static func neighbor(
        _ n: Neighbor, type: UInt16 = MessageType.newNeighbor, flags: UInt16 = MessageFlags.multi,
        sequence: UInt32 = 0
    ) throws -> [UInt8] {
        var w = MessageWriter(type: type, flags: flags, sequence: sequence)
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
