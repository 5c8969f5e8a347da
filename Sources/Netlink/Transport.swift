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
