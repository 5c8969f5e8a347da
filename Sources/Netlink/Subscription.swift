import NicrouteCore
import SystemPackage

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
    /// Something changed that the reader cannot name: messages were lost (ENOBUFS, a truncated
    /// datagram) or could not be decoded. The picture must be rebuilt from a full dump.
    case resyncNeeded
}

/// The kernel's rtnetlink notifications, read without blocking by an event loop that owns the
/// socket (nicrouted's): `descriptor` goes into the loop, `drain` runs when it is readable.
///
/// Nothing the kernel announces is dropped in silence: lost messages (ENOBUFS, a truncated
/// datagram) and messages that cannot be decoded are handed over as `.resyncNeeded`, and the
/// undecodable ones are also counted (`undecodable`) for the owner to report.
public final class RouteEventReader {
    private let transport: any NetlinkEventTransport

    /// Notifications that could not be decoded (a datagram that cannot be split into messages
    /// counts as one), each handed over as `.resyncNeeded`; this library does not log.
    public private(set) var undecodable = RouteNetlink.Undecodable()

    /// The socket's descriptor, for the loop to watch.
    public var descriptor: Int32 { transport.descriptor }

    /// Subscribes to `groups`, in `networkNamespace` if given.
    /// - Throws: `NetlinkError` when the socket cannot be opened or a group joined.
    public convenience init(
        groups: [MulticastGroup] = MulticastGroup.routing, networkNamespace: String? = nil,
        receiveBufferSize: Int = 4 << 20
    ) throws {
        self.init(
            transport: try NetlinkSocket(
                groups: groups.map(\.rawValue), networkNamespace: networkNamespace,
                receiveBufferSize: receiveBufferSize))
    }

    /// A reader over `transport`: a subscribed `NetlinkSocket`, or a fake in tests.
    public init(transport: any NetlinkEventTransport) {
        self.transport = transport
    }

    /// Reads every datagram already queued and hands over its events, in order, until the
    /// transport would block; lost messages (ENOBUFS, truncation) and undecodable ones as
    /// `.resyncNeeded`.
    /// - Parameter filter: drops notifications before they are decoded.
    /// - Throws: `NetlinkError` when the socket failed (the subscription is gone).
    public func drain(
        filter: ((NetlinkHeader, ByteReader) -> Bool)? = nil, _ handle: (RouteEvent) -> Void
    ) throws {
        while true {
            let datagram: [UInt8]
            do {
                datagram = try transport.receiveWithoutBlocking()
            } catch let error as NetlinkError where error.errno == .wouldBlock {
                return
            } catch let error as NetlinkError where error.errno == .noBufferSpace || error.errno == .messageTooLong {
                handle(.resyncNeeded)
                continue
            }
            guard !datagram.isEmpty else { continue }
            events(in: datagram, filter: filter, handle)
        }
    }

    /// Hands over the events of one datagram; a message that cannot be decoded (or a datagram
    /// that cannot be split) is counted and handed over as `.resyncNeeded`.
    private func events(
        in datagram: [UInt8], filter: ((NetlinkHeader, ByteReader) -> Bool)?, _ handle: (RouteEvent) -> Void
    ) {
        let messages: [NetlinkMessage]
        do {
            messages = try NetlinkMessage.split(datagram)
        } catch {
            count(error, what: "\(datagram.count)-byte datagram")
            handle(.resyncNeeded)
            return
        }
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
            let object: RouteObject?
            do {
                object = try RouteCodec.decode(message)
            } catch {
                count(error, what: "message type \(message.header.type)")
                handle(.resyncNeeded)
                continue
            }
            // nil: an object nicroute does not model (another address family).
            guard let object else { continue }
            handle(isNew ? .added(object) : .removed(object))
        }
    }

    private func count(_ error: any Error, what: String) {
        undecodable.count += 1
        undecodable.lastError = "events, \(what): \(error)"
    }
}
