import CNetlink
import Netlink
import NetlinkTesting
import NicrouteCore
import SystemPackage
import Testing

// RouteEventReader over the FakeKernel's notifications, without root: what nicrouted's loop
// reads when the rtnetlink socket is readable. KernelTests read the real kernel's.

private let eth1: Int32 = 3

private func route(_ i: Int, table: UInt32 = 1000) -> Route {
    Route(
        family: .inet, table: table, destination: IPPrefix("198.51.\(i).0/24")!, proto: .nicroute,
        gateway: IPAddress("10.1.0.254"), outputInterface: eth1)
}

private func rule(_ i: Int) -> Rule {
    Rule(family: .inet, priority: 1000, table: 1000, source: IPPrefix("10.1.\(i).0/24"), proto: .nicroute)
}

private let link = Link(index: eth1, name: "eth1", mac: MACAddress("02:00:00:00:00:01"), flags: [.up, .lowerUp])
private let address = InterfaceAddress(linkIndex: eth1, address: IPAddress("10.1.0.5")!, prefixLength: 24)
private let neighbor = Neighbor(
    linkIndex: eth1, address: IPAddress("10.1.0.254")!, linkLayerAddress: MACAddress("02:00:00:00:00:fe"),
    state: .reachable)

/// Everything `drain` hands over in one call.
private func drained(
    _ reader: RouteEventReader, filter: ((NetlinkHeader, ByteReader) -> Bool)? = nil
) throws -> [RouteEvent] {
    var events: [RouteEvent] = []
    try reader.drain(filter: filter) { events.append($0) }
    return events
}

@Suite("Event reader over the fake kernel")
struct EventReaderTests {
    @Test("the changes the kernel makes come as decoded events, in order; the next drain finds nothing")
    func inOrder() throws {
        let kernel = FakeKernel()
        let reader = RouteEventReader(transport: kernel.subscribe(groups: MulticastGroup.routing + [.neighbor]))
        let client = RouteNetlink(transport: kernel)
        #expect(try client.add(route(1)))
        #expect(try client.add(rule(1)))
        #expect(try client.delete(route(1)))
        #expect(try client.add(rule(1)) == false)  // already there: no change, no event
        try kernel.announce(.added(.link(link)), .added(.address(address)), .added(.neighbor(neighbor)))
        try kernel.announce(.removed(.address(address)))
        let events = try drained(reader)
        #expect(
            events == [
                .added(.route(route(1))), .added(.rule(rule(1))), .removed(.route(route(1))),
                .added(.link(link)), .added(.address(address)), .added(.neighbor(neighbor)),
                .removed(.address(address)),
            ])
        #expect(try drained(reader).isEmpty)
        #expect(reader.undecodable.count == 0)
        #expect(kernel.objects.links == [link] && kernel.objects.addresses.isEmpty)
    }

    @Test("a subscriber hears only its groups")
    func groups() throws {
        let kernel = FakeKernel()
        let routes = RouteEventReader(transport: kernel.subscribe(groups: [.ipv4Route]))
        let neighbors = RouteEventReader(transport: kernel.subscribe(groups: [.neighbor]))
        let client = RouteNetlink(transport: kernel)
        _ = try client.add(rule(1))
        _ = try client.add(route(1))
        try kernel.announce(.added(.neighbor(neighbor)))
        #expect(try drained(routes) == [.added(.route(route(1)))])
        #expect(try drained(neighbors) == [.added(.neighbor(neighbor))])
    }

    @Test("several messages in one datagram: every one, in order")
    func multipart() throws {
        let kernel = FakeKernel()
        let subscriber = kernel.subscribe()
        let reader = RouteEventReader(transport: subscriber)
        kernel.setNotificationsPerDatagram(3)
        let routes = (1...5).map { route($0) }
        let results = RouteNetlink(transport: kernel).apply(routes.map(Change.addRoute))
        #expect(results.allSatisfy { (try? $0.get()) == true })
        #expect(subscriber.queued == 2)  // 3 + 2
        kernel.notify(
            try FakeKernel.notification(.rule(rule(1)), added: true)
                + FakeKernel.notification(.route(route(1)), added: false)
                + FakeKernel.notification(.link(link), added: false))
        #expect(
            try drained(reader)
                == routes.map { .added(.route($0)) } + [
                    .added(.rule(rule(1))), .removed(.route(route(1))), .removed(.link(link)),
                ])
    }

    @Test("lost messages (ENOBUFS, a datagram too large) come as .resyncNeeded, and reading goes on")
    func lost() throws {
        let kernel = FakeKernel()
        let subscriber = kernel.subscribe(queueLimit: 2)
        let reader = RouteEventReader(transport: subscriber)
        let client = RouteNetlink(transport: kernel)
        for i in 1...4 { _ = try client.add(route(i)) }
        // The queue held two; the kernel reports the overrun at the next receive, before them.
        #expect(try drained(reader) == [.resyncNeeded, .added(.route(route(1))), .added(.route(route(2)))])

        _ = try client.add(route(5))
        kernel.overrun()
        subscriber.queue(error: NetlinkError(operation: "recvmsg: datagram truncated", errno: .messageTooLong))
        _ = try client.add(route(6))
        #expect(
            try drained(reader) == [.resyncNeeded, .added(.route(route(5))), .resyncNeeded, .added(.route(route(6)))])
        #expect(reader.undecodable.count == 0)
    }

    @Test("a message that cannot be decoded is counted and comes as .resyncNeeded, in its place")
    func undecodable() throws {
        let kernel = FakeKernel()
        let reader = RouteEventReader(transport: kernel.subscribe())
        let good = try FakeKernel.notification(.route(route(1)), added: true)
        kernel.notify(
            good + FakeKernel.undecodable(type: MessageType.newRule)
                + (try FakeKernel.notification(.rule(rule(1)), added: true)))
        #expect(try drained(reader) == [.added(.route(route(1))), .resyncNeeded, .added(.rule(rule(1)))])
        #expect(reader.undecodable.count == 1)
        #expect(reader.undecodable.lastError?.contains("message type \(MessageType.newRule)") == true)

        // A truncated datagram cannot even be split: one count, one resync, and reading goes on.
        kernel.notify(Array(good.dropLast(4)))
        kernel.notify(good)
        #expect(try drained(reader) == [.resyncNeeded, .added(.route(route(1)))])
        #expect(reader.undecodable.count == 2)
        #expect(reader.undecodable.lastError?.contains("datagram") == true)

        // An object nicroute does not model (another family: a bridge's) is neither.
        var w = MessageWriter(type: MessageType.newNeighbor, flags: 0, sequence: 0)
        var header = ndmsg()
        header.ndm_family = 7  // AF_BRIDGE
        header.ndm_ifindex = eth1
        w.append(header: header)
        kernel.notify(w.finish())
        #expect(try drained(reader).isEmpty)
        #expect(reader.undecodable.count == 2)
    }

    @Test("the filter sees each notification before it is decoded; what it drops is not handed over")
    func filter() throws {
        let kernel = FakeKernel()
        let reader = RouteEventReader(transport: kernel.subscribe())
        let client = RouteNetlink(transport: kernel)
        _ = try client.add(route(1))
        _ = try client.add(route(2, table: RoutingTable.main))
        _ = try client.add(rule(1))
        kernel.notify(FakeKernel.undecodable(type: MessageType.newRoute))
        var seen: [UInt16] = []
        let events = try drained(reader) { header, payload in
            seen.append(header.type)
            // As nicrouted's: nicroute's own routes outside main are echoes not worth decoding;
            // a route whose header cannot be read is let through.
            guard header.type == MessageType.newRoute, let h = RouteCodec.routeHeader(payload) else { return true }
            return UInt32(h.table) == RoutingTable.main
        }
        #expect(seen == [MessageType.newRoute, MessageType.newRoute, MessageType.newRule, MessageType.newRoute])
        #expect(events == [.added(.route(route(2, table: RoutingTable.main))), .added(.rule(rule(1))), .resyncNeeded])
        #expect(reader.undecodable.count == 1)

        // What the filter drops is never decoded, so never counted.
        kernel.notify(FakeKernel.undecodable(type: MessageType.newRoute))
        _ = try client.add(route(3))
        #expect(try drained(reader) { _, _ in false }.isEmpty)
        #expect(reader.undecodable.count == 1)
    }

    @Test("a drain ends when the socket would block; what comes after is the next drain's")
    func wouldBlock() throws {
        let kernel = FakeKernel()
        let subscriber = kernel.subscribe()
        let reader = RouteEventReader(transport: subscriber)
        #expect(try drained(reader).isEmpty)
        let client = RouteNetlink(transport: kernel)
        _ = try client.add(route(1))
        subscriber.queue(error: NetlinkError(operation: "recvmsg", errno: .wouldBlock))
        _ = try client.add(route(2))
        #expect(try drained(reader) == [.added(.route(route(1)))])
        #expect(subscriber.queued == 1)
        #expect(try drained(reader) == [.added(.route(route(2)))])
        #expect(try drained(reader).isEmpty)
    }

    @Test("any other receive error ends the subscription: drain throws")
    func failure() throws {
        let kernel = FakeKernel()
        let subscriber = kernel.subscribe()
        let reader = RouteEventReader(transport: subscriber)
        subscriber.queue(error: NetlinkError(operation: "recvmsg", errno: .badFileDescriptor))
        #expect(throws: NetlinkError.self) { try drained(reader) }
    }
}
