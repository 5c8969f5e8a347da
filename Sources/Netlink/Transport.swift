/// What `RouteNetlink` needs of a socket: send one datagram, receive one datagram.
///
/// The seam between the rtnetlink client and the kernel, like mdlayher/netlink's `Socket`
/// interface: `NetlinkSocket` is the real one, and the `NetlinkTesting` target's
/// `FakeKernel` answers from memory, so that requests, dumps, acks and everything
/// built on them are tested without root. Sequence numbers are the client's: it stamps each
/// request and matches the answers, whatever the transport.
public protocol NetlinkTransport: AnyObject, Sendable {
    /// Sends one datagram (one or more netlink messages) to the kernel.
    /// - Throws: `NetlinkError` naming the failing call.
    func send(_ bytes: [UInt8]) throws

    /// Receives one datagram, blocking; empty when it did not come from the kernel.
    /// - Throws: `NetlinkError` (ENOBUFS when the kernel dropped messages, EMSGSIZE when a
    ///   datagram did not fit).
    func receive() throws -> [UInt8]
}

extension NetlinkSocket: NetlinkTransport {}

/// What `RouteEventReader` needs of a socket that joined multicast groups: a descriptor for the
/// event loop to watch, and a receive that never blocks.
///
/// The seam between the event reader and the kernel's notifications: `NetlinkSocket` is the
/// real one, and a `FakeKernel.Subscriber` (the `NetlinkTesting` target) queues the
/// notifications of the fake kernel's changes, and the faults a test injects, so that the
/// reader is tested without root.
public protocol NetlinkEventTransport: AnyObject {
    /// What the event loop watches for readability (-1 for a fake that has no descriptor).
    var descriptor: Int32 { get }

    /// Receives one queued datagram at once; empty when it did not come from the kernel.
    /// - Throws: `NetlinkError`: EAGAIN when nothing is queued, ENOBUFS when the kernel dropped
    ///   messages, EMSGSIZE when a datagram did not fit.
    func receiveWithoutBlocking() throws -> [UInt8]
}

extension NetlinkSocket: NetlinkEventTransport {
    public func receiveWithoutBlocking() throws -> [UInt8] { try receive(nonBlocking: true) }
}
