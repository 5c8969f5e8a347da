import CNetlink
import CPosix
import NicrouteCore
import Synchronization
import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// rtnetlink multicast groups.
///
/// The corresponding C constants are `RTNLGRP_*`.
public enum MulticastGroup: UInt32, Sendable, CaseIterable {
    case link = 1  // RTNLGRP_LINK
    case neighbor = 3  // RTNLGRP_NEIGH
    case ipv4Address = 5  // RTNLGRP_IPV4_IFADDR
    case ipv4Route = 7  // RTNLGRP_IPV4_ROUTE
    case ipv4Rule = 8  // RTNLGRP_IPV4_RULE
    case ipv6Address = 9  // RTNLGRP_IPV6_IFADDR
    case ipv6Route = 11  // RTNLGRP_IPV6_ROUTE
    case ipv6Rule = 19  // RTNLGRP_IPV6_RULE

    /// What nicrouted listens to: links, addresses, routes and rules of both families.
    public static let routing: [MulticastGroup] = [
        .link, .ipv4Address, .ipv6Address, .ipv4Route, .ipv6Route, .ipv4Rule, .ipv6Rule,
    ]
}

/// A change the kernel announced.
public enum RouteEvent: Hashable, Sendable {
    /// An object appeared or changed (`RTM_NEW*`).
    case added(RouteObject)
    /// An object went away (`RTM_DEL*`).
    case removed(RouteObject)
    /// Messages were lost (ENOBUFS on the socket, or the consumer fell behind): the picture
    /// must be rebuilt from a full dump.
    case resyncNeeded
}

/// The kernel's rtnetlink notifications as an `AsyncSequence` of typed events.
///
/// A dedicated thread blocks in `poll(2)` on the socket and an eventfd (so there are no timed
/// wake-ups when nothing changes), decodes each datagram and yields events. Overruns are
/// reported as `.resyncNeeded`, never as a silent gap. `cancel()` (or deinit) stops the thread.
public final class RouteNetlinkSubscription: AsyncSequence, Sendable {
    public typealias Element = RouteEvent
    public typealias AsyncIterator = AsyncStream<RouteEvent>.Iterator

    /// Events buffered for a slow consumer before the oldest are dropped (and a resync reported).
    public static let bufferLimit = 16 * 1024

    private let stream: AsyncStream<RouteEvent>
    private let wake: WakeSignal

    /// Given a notification's header and its undecoded payload, true when it is worth decoding
    /// and delivering.
    public typealias Filter = @Sendable (NetlinkHeader, ByteReader) -> Bool

    /// Subscribes to `groups`, in `networkNamespace` if given.
    ///
    /// - Parameter filter: drops notifications before they are decoded (nil: none), so that a
    ///   consumer's own changes echoed back by the thousand cost little.
    /// - Throws: `NetlinkError` when the socket cannot be opened or a group joined.
    public init(
        groups: [MulticastGroup] = MulticastGroup.routing, networkNamespace: String? = nil,
        receiveBufferSize: Int = 4 << 20, filter: Filter? = nil
    ) throws {
        let socket = try NetlinkSocket(
            groups: groups.map(\.rawValue), networkNamespace: networkNamespace, receiveBufferSize: receiveBufferSize)
        let wake = try WakeSignal()
        self.wake = wake
        let (stream, continuation) = AsyncStream<RouteEvent>.makeStream(
            bufferingPolicy: .bufferingNewest(Self.bufferLimit))
        self.stream = stream
        let reader = Reader(socket: socket, wake: wake, continuation: continuation, filter: filter)
        try DetachedThread.start(name: "nicroute-events") { reader.run() }
        continuation.onTermination = { _ in wake.signal() }
    }

    public func makeAsyncIterator() -> AsyncStream<RouteEvent>.Iterator { stream.makeAsyncIterator() }

    /// Stops the reader thread and finishes the sequence.
    public func cancel() { wake.signal() }

    deinit { cancel() }

    /// An eventfd that wakes the reader's poll. Shared by the subscription, the stream's
    /// termination handler and the reader, and closed only when all are gone, so no write can
    /// reach a closed (or reused) descriptor.
    private final class WakeSignal: Sendable {
        let descriptor: Int32
        init() throws { descriptor = try syscall("eventfd") { cnl_eventfd_cloexec() } }
        func signal() {
            var one: UInt64 = 1
            _ = write(descriptor, &one, 8)
        }
        deinit { close(descriptor) }
    }

    /// The reader thread's state: it owns the socket.
    private final class Reader: @unchecked Sendable {
        let socket: NetlinkSocket
        let wake: WakeSignal
        let continuation: AsyncStream<RouteEvent>.Continuation
        let filter: Filter?

        init(
            socket: NetlinkSocket, wake: WakeSignal, continuation: AsyncStream<RouteEvent>.Continuation,
            filter: Filter?
        ) {
            self.socket = socket
            self.wake = wake
            self.continuation = continuation
            self.filter = filter
        }

        /// Reads until cancelled; ends the stream (without a resync) on an error that is not
        /// a lost message, so the consumer can tell that the subscription is gone.
        func run() {
            defer { continuation.finish() }
            var fds = [
                pollfd(fd: socket.descriptor, events: Int16(POLLIN), revents: 0),
                pollfd(fd: wake.descriptor, events: Int16(POLLIN), revents: 0),
            ]
            var lost = false
            while true {
                fds[0].revents = 0
                fds[1].revents = 0
                let n = poll(&fds, 2, -1)
                if n < 0 {
                    if errno == EINTR { continue }
                    return
                }
                if fds[1].revents != 0 { return }
                guard fds[0].revents != 0 else { continue }
                let datagram: [UInt8]
                do {
                    datagram = try socket.receive()
                } catch let error as NetlinkError where error.errno == .noBufferSpace || error.errno == .messageTooLong
                {
                    lost = true  // overrun or truncated: messages were lost
                    datagram = []
                } catch {
                    return
                }
                if lost {
                    lost = false
                    if case .dropped = continuation.yield(.resyncNeeded) { lost = true }
                }
                guard !datagram.isEmpty else { continue }
                guard let events = RouteEventReader.events(in: datagram, filter: filter) else {
                    lost = true
                    continue
                }
                for event in events {
                    if case .dropped = continuation.yield(event) {
                        // The consumer fell behind and the oldest events were dropped: make sure
                        // the newest event it will see is a resync.
                        lost = true
                    }
                }
                if lost {
                    lost = false
                    if case .dropped = continuation.yield(.resyncNeeded) { lost = true }
                }
            }
        }
    }
}

/// The kernel's rtnetlink notifications, read without blocking by an event loop that owns the
/// socket (nicrouted's): `descriptor` goes into the loop, `drain` runs when it is readable.
public final class RouteEventReader {
    private let socket: NetlinkSocket

    /// The socket's descriptor, for the loop to watch.
    public var descriptor: Int32 { socket.descriptor }

    /// Subscribes to `groups`, in `networkNamespace` if given.
    /// - Throws: `NetlinkError` when the socket cannot be opened or a group joined.
    public init(
        groups: [MulticastGroup] = MulticastGroup.routing, networkNamespace: String? = nil,
        receiveBufferSize: Int = 4 << 20
    ) throws {
        socket = try NetlinkSocket(
            groups: groups.map(\.rawValue), networkNamespace: networkNamespace, receiveBufferSize: receiveBufferSize)
    }

    /// Reads every datagram already queued and hands over its events; lost messages (ENOBUFS,
    /// truncation, an undecodable datagram) as `.resyncNeeded`.
    /// - Parameter filter: drops notifications before they are decoded.
    /// - Throws: `NetlinkError` when the socket failed (the subscription is gone).
    public func drain(
        filter: ((NetlinkHeader, ByteReader) -> Bool)? = nil, _ handle: (RouteEvent) -> Void
    ) throws {
        while true {
            let datagram: [UInt8]
            do {
                datagram = try socket.receive(nonBlocking: true)
            } catch let error as NetlinkError where error.errno == .wouldBlock {
                return
            } catch let error as NetlinkError where error.errno == .noBufferSpace || error.errno == .messageTooLong {
                handle(.resyncNeeded)
                continue
            }
            guard !datagram.isEmpty else { continue }
            guard let events = Self.events(in: datagram, filter: filter) else {
                handle(.resyncNeeded)
                continue
            }
            events.forEach(handle)
        }
    }

    /// The events in one datagram, nil when it cannot be split (messages lost).
    static func events(in datagram: [UInt8], filter: ((NetlinkHeader, ByteReader) -> Bool)?) -> [RouteEvent]? {
        guard let messages = try? NetlinkMessage.split(datagram) else { return nil }
        var events: [RouteEvent] = []
        for message in messages {
            let isNew: Bool
            switch message.header.type {
            case MessageType.newLink, MessageType.newAddress, MessageType.newRoute, MessageType.newRule,
                MessageType.newNeighbor:
                isNew = true
            case MessageType.deleteLink, MessageType.deleteAddress, MessageType.deleteRoute, MessageType.deleteRule,
                MessageType.deleteNeighbor:
                isNew = false
            default:
                continue
            }
            if let filter, !filter(message.header, message.payload) { continue }
            guard let object = try? RouteCodec.decode(message) else { continue }
            events.append(isNew ? .added(object) : .removed(object))
        }
        return events
    }
}

/// Starts detached threads for blocking loops (the netlink reader, the control socket), which
/// must not occupy Swift concurrency's small cooperative pool.
public enum DetachedThread {
    /// Runs `body` on a new detached thread called `name` (at most 15 bytes, as `ps -L` and
    /// `top -H` show it; otherwise a thread keeps the name of the thread that started it).
    /// - Throws: `NetlinkError` when `pthread_create` fails.
    public static func start(name: String, _ body: @escaping @Sendable () -> Void) throws {
        final class Box: @unchecked Sendable {
            let name: String
            let body: @Sendable () -> Void
            init(_ name: String, _ body: @escaping @Sendable () -> Void) {
                self.name = name
                self.body = body
            }
        }
        let box = Unmanaged.passRetained(Box(String(name.utf8.prefix(15))!, body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { arg in
                let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
                _ = cposix_set_thread_name(box.name)
                box.body()
                return nil
            }, box)
        guard rc == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw NetlinkError(operation: "pthread_create", errno: Errno(rawValue: rc))
        }
        pthread_detach(thread)
    }
}
