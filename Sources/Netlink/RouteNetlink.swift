import CNetlink
import NicrouteCore
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// A request/response rtnetlink client: dumps, and add/replace/delete with `NLM_F_ACK`.
///
/// Calls are serialized; each waits for the kernel's answer to its own sequence number.
public final class RouteNetlink: Sendable {
    private struct State: ~Copyable {
        var socket: any NetlinkTransport
        var sequence: UInt32
        /// Dumps made with `remember`: their bytes and what was decoded from them, by kind.
        var remembered: [String: (bytes: [UInt8], objects: any Sendable)] = [:]
        var undecodable = Undecodable()
    }

    /// Objects of dumps that the decoder refused, skipped so that one odd object does not hide
    /// the whole picture (and, for `RouteEventReader`, notifications it could not decode).
    public struct Undecodable: Sendable, Equatable {
        /// How many were skipped since the client (or reader) was opened.
        public var count = 0
        /// Why the last one was refused, and what it was ("routes: ...").
        public var lastError: String?

        public init(count: Int = 0, lastError: String? = nil) {
            self.count = count
            self.lastError = lastError
        }
    }
    private let state: Mutex<State>
    private let dumpRetry: DumpRetry

    /// What a dump interrupted by a concurrent change (`NLM_F_DUMP_INTR`) does.
    public enum DumpRetry: Sendable {
        /// Tried `patientAttempts` times in all: the first retries at once, later ones after 1, 2,
        /// 4 ... 20 ms (about 1 s in all), so that a storm of changes (a DHCP client, a hot-plug
        /// burst) has gaps to be read in. For one-shot commands (`nicroutectl status` must not
        /// fail at the first burst).
        case patient
        /// Tried `immediateAttempts` times at once, then given up (EAGAIN): for an event loop,
        /// which must not sleep in a handler; it reads what the storm brings and tries again.
        case immediate

        /// How many attempts in all.
        public var attempts: Int {
            switch self {
            case .patient: 64
            case .immediate: 8
            }
        }

        /// The pause before attempt `attempt` (0-based), in milliseconds.
        func delayMs(_ attempt: Int) -> Int {
            switch self {
            case .patient: attempt < 3 ? 0 : min(1 << (attempt - 3), 20)
            case .immediate: 0
            }
        }
    }

    /// Opens a client socket, in `networkNamespace` (a path such as `/run/netns/NAME`) if given.
    public convenience init(networkNamespace: String? = nil, dumpRetry: DumpRetry = .patient) throws {
        self.init(transport: try NetlinkSocket(networkNamespace: networkNamespace), dumpRetry: dumpRetry)
    }

    /// A client over `transport` (a `NetlinkSocket`, or a fake in tests); the first request
    /// carries sequence number `firstSequence`.
    public init(transport: any NetlinkTransport, firstSequence: UInt32 = 1, dumpRetry: DumpRetry = .patient) {
        state = Mutex(State(socket: transport, sequence: firstSequence &- 1))
        self.dumpRetry = dumpRetry
    }

    /// The objects of dumps skipped because they could not be decoded, for the caller to report
    /// (this library does not log).
    public var undecodable: Undecodable { state.withLock { $0.undecodable } }

    /// `message` decoded, or nil (counted in `undecodable`) when the decoder refuses it.
    private func decodeOrCount(_ message: NetlinkMessage, what: String) -> RouteObject? {
        do {
            return try RouteCodec.decode(message)
        } catch {
            state.withLock {
                $0.undecodable.count += 1
                $0.undecodable.lastError = "\(what): \(error)"
            }
            return nil
        }
    }

    // MARK: Dumps

    /// Every link. Equivalent to `ip link show`.
    public func links() throws -> [Link] {
        try dump(MessageType.getLink, family: nil, what: "links").compactMap {
            if case .link(let l) = $0 { return l } else { return nil }
        }
    }

    /// Every address of `family` (nil: both). Equivalent to `ip address show`.
    ///
    /// - Parameter remember: see `routes(family:skipLocal:keepLocalSources:remember:)`.
    public func addresses(family: AddressFamily? = nil, remember: Bool = false) throws -> [InterfaceAddress] {
        try typedDump(
            MessageType.getAddress, family: family, what: "addresses",
            key: remember ? "addresses \(family.map(\.description) ?? "all")" : nil
        ) { if case .address(let a) = $0 { a } else { nil } }
    }

    /// Every route of `family` (nil: IPv4 and IPv6, in one dump) in every table. Equivalent to
    /// `ip route show table all`.
    ///
    /// - Parameters:
    ///   - skipLocal: leave out the kernel's `local` table (255: one route per local and
    ///     broadcast address), which is skipped before it is decoded.
    ///   - keepLocalSources: with `skipLocal`, keep the local table's routes that may be a NIC's
    ///     sources (local-type, not the kernel's own: `RouteCodec.isLocalTableNoise`), told
    ///     from their header before the rest is decoded.
    ///   - remember: keep this dump's bytes and result, and answer the next dump that brings the
    ///     same bytes with the same routes, without decoding them again. Every call still reads
    ///     the kernel's whole answer: only the decoding is saved.
    public func routes(
        family: AddressFamily?, skipLocal: Bool = false, keepLocalSources: Bool = false, remember: Bool = false
    ) throws -> [Route] {
        // rtm_table is exact for tables below 256.
        let skip: ((ByteReader) -> Bool)?
        if !skipLocal {
            skip = nil
        } else if keepLocalSources {
            skip = { p in
                guard let h = RouteCodec.routeHeader(p) else { return false }
                return RouteCodec.isLocalTableNoise(table: h.table, proto: h.proto, type: h.type)
            }
        } else {
            skip = { p in RouteCodec.routeHeader(p)?.table == UInt8(RoutingTable.local) }
        }
        return try typedDump(
            MessageType.getRoute, family: family, what: "routes", skip: skip,
            key: remember ? "routes \(family.map(\.description) ?? "all") \(skipLocal) \(keepLocalSources)" : nil
        ) { if case .route(let r) = $0 { r } else { nil } }
    }

    /// Every rule of `family` (nil: IPv4 and IPv6, in one dump). Equivalent to `ip rule show`.
    ///
    /// - Parameter remember: see `routes(family:skipLocal:keepLocalSources:remember:)`.
    public func rules(family: AddressFamily?, remember: Bool = false) throws -> [Rule] {
        try typedDump(
            MessageType.getRule, family: family, what: "rules",
            key: remember ? "rules \(family.map(\.description) ?? "all")" : nil
        ) {
            if case .rule(let r) = $0 { r } else { nil }
        }
    }

    /// The neighbour cache of `family`. Equivalent to `ip neigh show`.
    public func neighbors(family: AddressFamily) throws -> [Neighbor] {
        try dump(MessageType.getNeighbor, family: family, what: "neighbours").compactMap {
            if case .neighbor(let n) = $0 { return n } else { return nil }
        }
    }

    /// Dumps objects of `type`, retrying when the kernel flags the dump as interrupted.
    ///
    /// - Parameter skip: given a message's payload, true when it is not wanted: it is not decoded.
    public func dump(
        _ type: UInt16, family: AddressFamily?, what: String, skip: ((ByteReader) -> Bool)? = nil
    ) throws -> [RouteObject] {
        // One object the decoder cannot read is skipped (and counted), not the whole picture.
        try rawDump(type, family: family, what: what, skip: skip, fingerprint: false).messages.compactMap {
            decodeOrCount($0, what: what)
        }
    }

    /// A dump decoded into `T`s; with a `key`, remembered (see `routes(family:skipLocal:keepLocalSources:remember:)`).
    private func typedDump<T: Sendable>(
        _ type: UInt16, family: AddressFamily?, what: String, skip: ((ByteReader) -> Bool)? = nil, key: String?,
        _ extract: (RouteObject) -> T?
    ) throws -> [T] {
        let (messages, fingerprint) = try rawDump(
            type, family: family, what: what, skip: skip, fingerprint: key != nil)
        if let key, let last = state.withLock({ $0.remembered[key] }), let value = last.objects as? [T],
            Self.sameBytes(last.bytes, fingerprint)
        {
            return value
        }
        let value = messages.compactMap { message in decodeOrCount(message, what: what).flatMap(extract) }
        if let key { state.withLock { $0.remembered[key] = (fingerprint, value) } }
        return value
    }

    /// True when `a` and `b` hold the same bytes.
    static func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 }
        }
    }

    /// The messages of a dump, retrying when the kernel flags it as interrupted; with
    /// `fingerprint`, also the type, length and payload of each message kept (not the headers,
    /// whose sequence numbers differ from dump to dump).
    private func rawDump(
        _ type: UInt16, family: AddressFamily?, what: String, skip: ((ByteReader) -> Bool)?, fingerprint: Bool
    ) throws -> (messages: [NetlinkMessage], fingerprint: [UInt8]) {
        for attempt in 0..<dumpRetry.attempts {
            if case let ms = dumpRetry.delayMs(attempt), ms > 0 { usleep(UInt32(ms * 1000)) }
            let (messages, bytes, interrupted) = try state.withLock { state in
                state.sequence &+= 1
                let seq = state.sequence
                try state.socket.send(RouteCodec.dumpRequest(type, family: family, sequence: seq))
                var messages: [NetlinkMessage] = []
                var bytes: [UInt8] = []
                var interrupted = false
                while true {
                    let datagram = try state.socket.receive()
                    if fingerprint { bytes.reserveCapacity(bytes.count + datagram.count) }
                    for message in try NetlinkMessage.split(datagram) where message.header.sequence == seq {
                        if message.header.flags & MessageFlags.dumpInterrupted != 0 { interrupted = true }
                        switch message.header.type {
                        case MessageType.done:
                            let code = message.payload.count >= 4 ? try message.payload.read(Int32.self, at: 0) : 0
                            if code < 0 {
                                throw NetlinkError(operation: "dump \(what)", errno: Errno(rawValue: 0 &- code))
                            }
                            return (messages, bytes, interrupted)
                        case MessageType.error:
                            let (errno, text) = try RouteCodec.decodeError(message)
                            throw NetlinkError(
                                operation: "dump \(what)", errno: Errno(rawValue: errno), kernelMessage: text)
                        case MessageType.noop, MessageType.overrun:
                            continue
                        default:
                            if let skip, skip(message.payload) { continue }
                            messages.append(message)
                            if fingerprint {
                                withUnsafeBytes(of: message.header.type) { bytes += $0 }
                                withUnsafeBytes(of: UInt32(message.payload.count)) { bytes += $0 }
                                bytes += message.payload.slice
                            }
                        }
                    }
                }
            }
            if !interrupted { return (messages, bytes) }
        }
        throw NetlinkError(
            operation: "dump \(what): interrupted \(dumpRetry.attempts) times", errno: .resourceTemporarilyUnavailable)
    }

    // MARK: Changes

    /// Applies one change and waits for its ack. "Already exists" on add and "no such" on
    /// delete count as done. Equivalent to `ip route add|replace|del ...`, `ip rule add|del ...`.
    /// - Returns: false when the kernel already was in the wanted state.
    /// - Throws: `NetlinkError` with errno, the kernel's message and the change as an `ip` command.
    @discardableResult
    public func apply(_ change: Change) throws -> Bool {
        let request = Self.describe(change)
        return try exchange(request.operation, object: change.ipCommand(), tolerate: request.tolerated) {
            try Self.request(for: change, sequence: $0)
        }
    }

    /// Adds `route`; returns false when an identical key already existed ("File exists" counts
    /// as done). Equivalent to `ip route add ...`.
    @discardableResult
    public func add(_ route: Route) throws -> Bool { try apply(.addRoute(route)) }

    /// Adds or replaces the route with `route`'s key. Equivalent to `ip route replace ...`.
    public func replace(_ route: Route) throws { _ = try apply(.replaceRoute(route)) }

    /// Deletes `route`; returns false when it was already gone ("No such process" counts as done).
    /// Equivalent to `ip route del ...`.
    @discardableResult
    public func delete(_ route: Route) throws -> Bool { try apply(.deleteRoute(route)) }

    /// Adds `rule`; returns false when it already existed. Equivalent to `ip rule add ...`.
    @discardableResult
    public func add(_ rule: Rule) throws -> Bool { try apply(.addRule(rule)) }

    /// Deletes `rule`; returns false when it was already gone. Equivalent to `ip rule del ...`.
    @discardableResult
    public func delete(_ rule: Rule) throws -> Bool { try apply(.deleteRule(rule)) }

    /// Asks the kernel to resolve `address` on a link (ARP or neighbour solicitation).
    public func probeNeighbor(_ address: IPAddress, linkIndex: Int32) throws {
        _ = try exchange("probe neighbour", object: "\(address) dev #\(linkIndex)", tolerate: []) {
            try RouteCodec.neighborProbeRequest(address: address, linkIndex: linkIndex, sequence: $0)
        }
    }

    /// The route the kernel would use for `query`: the `RTM_NEWROUTE` it answers with, its
    /// `table` the one the rules chose (0 when the kernel does not say).
    /// Equivalent to `ip route get DST [from SRC] [iif DEV]`.
    ///
    /// - Throws: `NetlinkError` with the kernel's errno when it has no route (`ENETUNREACH`,
    ///   `EHOSTUNREACH`), refuses the source (`EINVAL`), or reverse-path filtering would drop a
    ///   packet arriving on the input interface (`EXDEV`).
    public func lookup(_ query: RouteQuery) throws -> Route {
        let object = Self.describe(query)
        return try state.withLock { state in
            state.sequence &+= 1
            let seq = state.sequence
            try state.socket.send(RouteCodec.routeLookupRequest(query, sequence: seq))
            while true {
                for message in try NetlinkMessage.split(try state.socket.receive()) where message.header.sequence == seq
                {
                    switch message.header.type {
                    case MessageType.error:
                        let (code, text) = try RouteCodec.decodeError(message)
                        throw NetlinkError(
                            operation: "route lookup",
                            errno: Errno(rawValue: code == 0 ? Errno.ioError.rawValue : code),
                            kernelMessage: text, object: object)
                    case MessageType.newRoute:
                        guard let route = try RouteCodec.decodeRoute(message.payload) else {
                            throw NetlinkError(
                                operation: "route lookup: answer of another family", errno: .ioError, object: object)
                        }
                        return route
                    default: continue
                    }
                }
            }
        }
    }

    /// `query` as `ip route get` arguments.
    static func describe(_ q: RouteQuery) -> String {
        var parts = ["ip", q.destination.family.ipFlag, "route", "get", q.destination.description]
        if let s = q.source { parts += ["from", s.description] }
        if let i = q.inputInterface { parts += ["iif", "#\(i)"] }
        if let o = q.outputInterface { parts += ["oif", "#\(o)"] }
        if let m = q.mark { parts += ["mark", "0x" + String(m, radix: 16)] }
        return parts.joined(separator: " ")
    }

    /// Sends one request that asks for an ack (`build` stamps it with the sequence number it is
    /// given) and waits for the ack; returns false when the kernel answered with an errno of
    /// `tolerate`.
    private func exchange(
        _ operation: String, object: @autoclosure () -> String, tolerate: Set<Errno>,
        _ build: (UInt32) throws -> [UInt8]
    ) throws -> Bool {
        try state.withLock { state in
            state.sequence &+= 1
            let seq = state.sequence
            try state.socket.send(build(seq))
            while true {
                for message in try NetlinkMessage.split(try state.socket.receive())
                where message.header.sequence == seq && message.header.type == MessageType.error {
                    let (code, text) = try RouteCodec.decodeError(message)
                    if code == 0 { return true }
                    let errno = Errno(rawValue: code)
                    if tolerate.contains(errno) { return false }
                    throw NetlinkError(operation: operation, errno: errno, kernelMessage: text, object: object())
                }
            }
        }
    }

    // MARK: Batches

    /// How many requests `apply(_:)` sends in one datagram. Their acks must fit the socket's
    /// receive buffer (about 1 KiB of accounting each, against the default 208 KiB).
    public static let batchSize = 32

    /// Applies `changes` in order, `batchSize` requests per datagram, each with its own ack;
    /// returns each one's outcome in the same order. The kernel handles the requests of a
    /// datagram one after the other and goes on after a failure, so this is `apply` one by one
    /// without a round trip per change. "Already exists" on add and "no such" on delete count
    /// as done (false).
    ///
    /// - Parameter afterBatch: called after each batch is answered (it must not use this
    ///   client): the daemon reads its subscription there, which the kernel fills with an echo
    ///   of every change (see `Reconciler.betweenBatches`).
    public func apply(
        _ changes: [Change], afterBatch: (() -> Void)? = nil
    ) -> [Result<Bool, NetlinkError>] {
        var results = [Result<Bool, NetlinkError>](
            repeating: .failure(NetlinkError(operation: "apply", errno: .ioError)), count: changes.count)
        state.withLock { state in
            var start = 0
            while start < changes.count {
                let end = min(start + Self.batchSize, changes.count)
                var datagram: [UInt8] = []
                var pending: [(sequence: UInt32, index: Int)] = []
                for i in start..<end {
                    state.sequence &+= 1
                    do {
                        datagram += try Self.request(for: changes[i], sequence: state.sequence)
                        pending.append((state.sequence, i))
                    } catch {
                        results[i] = .failure(Self.failure(changes[i], errno: .invalidArgument, text: "\(error)"))
                    }
                }
                start = end
                guard !pending.isEmpty else { continue }
                // Acks come in request order; a request the kernel skipped without an ack
                // (EINTR) is known to be over once a later one is answered.
                var next = 0
                do {
                    try state.socket.send(datagram)
                    while next < pending.count {
                        for message in try NetlinkMessage.split(try state.socket.receive())
                        where message.header.type == MessageType.error {
                            guard
                                let k = pending[next...].firstIndex(where: { $0.sequence == message.header.sequence })
                            else { continue }
                            for skipped in pending[next..<k] {
                                results[skipped.index] = .failure(
                                    Self.failure(changes[skipped.index], errno: .interrupted, text: nil))
                            }
                            let (code, text) = try RouteCodec.decodeError(message)
                            let change = changes[pending[k].index]
                            if code == 0 {
                                results[pending[k].index] = .success(true)
                            } else if Self.describe(change).tolerated.contains(Errno(rawValue: code)) {
                                results[pending[k].index] = .success(false)
                            } else {
                                results[pending[k].index] = .failure(
                                    Self.failure(change, errno: Errno(rawValue: code), text: text))
                            }
                            next = k + 1
                        }
                    }
                } catch {
                    // The socket failed (or acks were lost): what was not answered failed.
                    let errno = (error as? NetlinkError)?.errno ?? .ioError
                    for p in pending[next...] {
                        results[p.index] = .failure(Self.failure(changes[p.index], errno: errno, text: "\(error)"))
                    }
                }
                afterBatch?()
            }
        }
        return results
    }

    /// How one kind of change goes to the kernel: the one description that the single calls,
    /// `apply`'s batches and their errors share.
    struct ChangeRequest: Equatable {
        /// The operation named in errors: "add route", "delete rule", ...
        var operation: String
        /// `RTM_NEWROUTE`, `RTM_DELRULE`, ...
        var type: UInt16
        /// The flags beyond `NLM_F_REQUEST | NLM_F_ACK`.
        var flags: UInt16
        /// The errnos that mean "already done".
        var tolerated: Set<Errno>
    }

    /// The description of `change`'s kind.
    static func describe(_ change: Change) -> ChangeRequest {
        let add = MessageFlags.create | MessageFlags.exclusive
        let gone: Set<Errno> = [.noSuchProcess, .noSuchFileOrDirectory]
        return switch change {
        case .addRoute:
            ChangeRequest(operation: "add route", type: MessageType.newRoute, flags: add, tolerated: [.fileExists])
        case .replaceRoute:
            ChangeRequest(
                operation: "replace route", type: MessageType.newRoute,
                flags: MessageFlags.create | MessageFlags.replace, tolerated: [])
        case .deleteRoute:
            ChangeRequest(operation: "delete route", type: MessageType.deleteRoute, flags: 0, tolerated: gone)
        case .addRule:
            ChangeRequest(operation: "add rule", type: MessageType.newRule, flags: add, tolerated: [.fileExists])
        case .deleteRule:
            ChangeRequest(operation: "delete rule", type: MessageType.deleteRule, flags: 0, tolerated: gone)
        }
    }

    /// The request for `change`, with `NLM_F_ACK`.
    static func request(for change: Change, sequence: UInt32) throws -> [UInt8] {
        let d = describe(change)
        let flags = MessageFlags.request | MessageFlags.ack | d.flags
        switch change {
        case .addRoute(let r), .replaceRoute(let r), .deleteRoute(let r):
            return try RouteCodec.routeRequest(d.type, flags: flags, route: r, sequence: sequence)
        case .addRule(let r), .deleteRule(let r):
            return try RouteCodec.ruleRequest(d.type, flags: flags, rule: r, sequence: sequence)
        }
    }

    /// The error `change` failed with, named as the single calls name it.
    static func failure(_ change: Change, errno: Errno, text: String?) -> NetlinkError {
        NetlinkError(
            operation: describe(change).operation, errno: errno, kernelMessage: text, object: change.ipCommand())
    }
}
