import CNetlink
import Netlink
import NetlinkTesting
import NicrouteCore
import SystemPackage
import Testing

// The rtnetlink client over the in-memory FakeKernel: requests, dumps, acks, without root.
// The kernel tests (KernelTests) prove the same bytes against the real kernel.

private let eth1: Int32 = 3

private func route(_ i: Int, table: UInt32 = 1000) -> Route {
    Route(
        family: .inet, table: table, destination: IPPrefix("198.51.\(i).0/24")!, proto: .nicroute,
        gateway: IPAddress("10.1.0.254"), outputInterface: eth1)
}

private func rule(_ i: Int) -> Rule {
    Rule(family: .inet, priority: 1000, table: 1000, source: IPPrefix("10.1.\(i).0/24"), proto: .nicroute)
}

@Suite("Client over the fake transport")
struct TransportTests {
    struct Kind: CustomTestStringConvertible, Sendable {
        var change: Change
        var type: UInt16
        var flags: UInt16
        var testDescription: String { change.ipCommand() }
    }

    static let request = MessageFlags.request | MessageFlags.ack
    static let kinds: [Kind] = [
        Kind(
            change: .addRoute(route(1)), type: MessageType.newRoute,
            flags: request | MessageFlags.create | MessageFlags.exclusive),
        Kind(
            change: .replaceRoute(route(1)), type: MessageType.newRoute,
            flags: request | MessageFlags.create | MessageFlags.replace),
        Kind(change: .deleteRoute(route(1)), type: MessageType.deleteRoute, flags: request),
        Kind(
            change: .addRule(rule(1)), type: MessageType.newRule,
            flags: request | MessageFlags.create | MessageFlags.exclusive),
        Kind(change: .deleteRule(rule(1)), type: MessageType.deleteRule, flags: request),
    ]

    @Test("one change sends one request of its kind, with the next sequence number", arguments: kinds)
    func singleRequest(kind: Kind) throws {
        let kernel = FakeKernel()
        let client = RouteNetlink(transport: kernel, firstSequence: 41)
        _ = try? client.apply(kind.change)
        _ = try? client.apply(kind.change)
        let sent = try kernel.sentMessages()
        #expect(kernel.sent.count == 2)
        #expect(sent.map(\.header.type) == [kind.type, kind.type])
        #expect(sent.map(\.header.flags) == [kind.flags, kind.flags])
        #expect(sent.map(\.header.sequence) == [41, 42])
        let object: RouteObject =
            switch kind.change {
            case .addRoute(let r), .replaceRoute(let r), .deleteRoute(let r): .route(r)
            case .addRule(let r), .deleteRule(let r): .rule(r)
            }
        #expect(try RouteCodec.decode(sent[0]) == object)
        // The batch sends the same bytes as the single call.
        let batch = FakeKernel()
        _ = RouteNetlink(transport: batch, firstSequence: 41).apply([kind.change])
        #expect(batch.sent == [kernel.sent[0]])
    }

    @Test("add and delete: already there and already gone count as done (false); other errors throw")
    func tolerated() throws {
        let kernel = FakeKernel()
        let client = RouteNetlink(transport: kernel)
        #expect(try client.add(route(1)) == true)
        #expect(try client.add(route(1)) == false)  // EEXIST
        #expect(kernel.objects.routes == [route(1)])
        #expect(try client.delete(route(1)) == true)
        #expect(try client.delete(route(1)) == false)  // ESRCH
        #expect(try client.add(rule(1)) == true)
        #expect(try client.add(rule(1)) == false)  // EEXIST
        #expect(try client.delete(rule(1)) == true)
        #expect(try client.delete(rule(1)) == false)  // ENOENT
        #expect(kernel.objects == FakeKernel.Objects())

        kernel.setAnswer { _ in .ack(.fileExists) }
        // replace tolerates nothing: EEXIST there is an error, named as `ip` would.
        let error = try #require(throws: NetlinkError.self) { try client.replace(route(2)) }
        #expect(error.errno == .fileExists)
        #expect(error.operation == "replace route")
        #expect(error.object == IPCommand.route("replace", route(2)))
    }

    @Test("an ack of another sequence number is not this request's")
    func staleAck() throws {
        let kernel = FakeKernel()
        let client = RouteNetlink(transport: kernel, firstSequence: 10)
        kernel.setAnswer { request in
            var stale = request
            stale.header.sequence = 9
            return .datagrams([FakeKernel.ack(stale, errno: .invalidArgument), FakeKernel.ack(request, errno: nil)])
        }
        #expect(try client.add(rule(1)) == true)
    }

    @Test("a dump reads every datagram up to NLMSG_DONE, in order", arguments: [1, 2, 7, 100])
    func multipartDump(perDatagram: Int) throws {
        let routes = (0..<20).map { route($0) } + [route(0, table: 255)]
        let kernel = FakeKernel(FakeKernel.Objects(routes: routes))
        kernel.setObjectsPerDatagram(perDatagram)
        let client = RouteNetlink(transport: kernel, firstSequence: 5)
        #expect(try client.routes(family: .inet) == routes)
        #expect(try client.routes(family: .inet, skipLocal: true) == Array(routes.dropLast()))
        #expect(try client.routes(family: .inet6).isEmpty)
        let sent = try kernel.sentMessages()
        #expect(sent.map(\.header.type) == [MessageType.getRoute, MessageType.getRoute, MessageType.getRoute])
        #expect(sent.map(\.header.flags) == Array(repeating: MessageFlags.request | MessageFlags.dump, count: 3))
        #expect(sent.map(\.header.sequence) == [5, 6, 7])
        #expect(try sent.map { try $0.payload.load(rtmsg.self).rtm_family } == [2, 2, 10])
    }

    @Test("links, addresses, rules and neighbours come back as the kernel holds them")
    func everyKind() throws {
        let objects = FakeKernel.Objects(
            links: [
                Link(index: 1, name: "lo", flags: [.up], operationalState: .unknown, mtu: 65536, hardwareType: 772),
                Link(
                    index: eth1, name: "eth1", mac: MACAddress("02:00:00:00:00:01"), flags: [.up],
                    operationalState: .up, mtu: 1500, kind: "veth"),
            ],
            addresses: [
                InterfaceAddress(linkIndex: eth1, address: IPAddress("10.1.0.5")!, prefixLength: 24, label: "eth1"),
                InterfaceAddress(
                    linkIndex: eth1, address: IPAddress("2001:db8::5")!, prefixLength: 64,
                    flags: AddressFlags(rawValue: 0x80)),
            ],
            rules: [rule(1), rule(2)],
            neighbors: [
                Neighbor(
                    linkIndex: eth1, address: IPAddress("10.1.0.254")!,
                    linkLayerAddress: MACAddress("02:00:00:00:00:fe"), state: NeighborState(rawValue: 2))
            ])
        let kernel = FakeKernel(objects)
        let client = RouteNetlink(transport: kernel)
        #expect(try client.links() == objects.links)
        #expect(try client.addresses() == objects.addresses)
        #expect(try client.addresses(family: .inet6) == [objects.addresses[1]])
        #expect(try client.rules(family: .inet) == objects.rules)
        #expect(try client.neighbors(family: .inet) == objects.neighbors)
        #expect(try client.neighbors(family: .inet6).isEmpty)
    }

    @Test("an interrupted dump (NLM_F_DUMP_INTR) is made again until one is whole", arguments: [1, 3, 5])
    func interruptedDump(interruptions: Int) throws {
        let kernel = FakeKernel(FakeKernel.Objects(rules: [rule(1), rule(2)]))
        kernel.interruptDumps(interruptions)
        let client = RouteNetlink(transport: kernel)
        #expect(try client.rules(family: .inet) == [rule(1), rule(2)])
        #expect(kernel.dumps == interruptions + 1)
        // Each attempt is a new request with a new sequence number.
        #expect(try kernel.sentMessages().map(\.header.sequence) == Array(1...UInt32(interruptions + 1)))
    }

    @Test(
        "a dump interrupted every time gives up after its attempts with EAGAIN",
        arguments: [RouteNetlink.DumpRetry.immediate, .patient])
    func alwaysInterrupted(retry: RouteNetlink.DumpRetry) throws {
        let kernel = FakeKernel(FakeKernel.Objects(rules: [rule(1)]))
        kernel.interruptDumps(retry.attempts)
        let client = RouteNetlink(transport: kernel, dumpRetry: retry)
        let error = try #require(throws: NetlinkError.self) { try client.rules(family: .inet) }
        #expect(error.errno == .resourceTemporarilyUnavailable)
        #expect(kernel.dumps == retry.attempts)
        #expect(try client.rules(family: .inet) == [rule(1)])  // the next one is whole
    }

    @Test("a dump ending in an error throws the kernel's errno")
    func dumpErrors() throws {
        let kernel = FakeKernel()
        let client = RouteNetlink(transport: kernel)
        kernel.setAnswer { request in
            var w = MessageWriter(type: MessageType.done, flags: MessageFlags.multi, sequence: request.header.sequence)
            w.append(Int32(0) &- Errno.notPermitted.rawValue)
            return .datagrams([w.finish()])
        }
        let refused = try #require(throws: NetlinkError.self) { try client.rules(family: .inet) }
        #expect(refused.errno == .notPermitted)
        #expect(refused.operation == "dump rules")
        kernel.setAnswer { _ in .ack(.invalidArgument) }
        let error = try #require(throws: NetlinkError.self) { try client.links() }
        #expect(error.errno == .invalidArgument)
        #expect(error.operation == "dump links")
    }

    @Test("an object the decoder refuses is skipped and counted, not the whole dump")
    func undecodable() throws {
        let kernel = FakeKernel()
        let client = RouteNetlink(transport: kernel)
        kernel.setAnswer { request in
            let seq = request.header.sequence
            let good = try! RouteCodec.routeRequest(
                MessageType.newRoute, flags: MessageFlags.multi, route: route(1), sequence: seq)
            // rtm_dst_len 24 without RTA_DST.
            var w = MessageWriter(type: MessageType.newRoute, flags: MessageFlags.multi, sequence: seq)
            var header = rtmsg()
            header.rtm_family = 2
            header.rtm_dst_len = 24
            header.rtm_table = 254
            w.append(header: header)
            return .datagrams([good + w.finish() + FakeKernel.done(sequence: seq)])
        }
        #expect(client.undecodable.count == 0)
        #expect(try client.routes(family: .inet) == [route(1)])
        #expect(client.undecodable.count == 1)
        #expect(client.undecodable.lastError?.hasPrefix("routes: ") == true)
        #expect(try client.routes(family: .inet, remember: true) == [route(1)])
        #expect(try client.routes(family: .inet, remember: true) == [route(1)])  // remembered: not decoded again
        #expect(client.undecodable.count == 2)
    }

    @Test("a remembered dump answers with what the kernel holds now")
    func remembered() throws {
        let kernel = FakeKernel(FakeKernel.Objects(routes: [route(1)]))
        let client = RouteNetlink(transport: kernel)
        #expect(try client.routes(family: .inet, remember: true) == [route(1)])
        #expect(try client.routes(family: .inet, remember: true) == [route(1)])
        kernel.objects.routes[0].metric = 7
        #expect(try client.routes(family: .inet, remember: true).map(\.metric) == [7])
        kernel.objects.routes.append(route(2))
        #expect(try client.routes(family: .inet, remember: true).count == 2)
        #expect(kernel.dumps == 4)
    }

    @Test("a batch: batchSize requests a datagram, acks matched by sequence, failures in the middle named")
    func batch() throws {
        let rules = (0..<80).map(rule)
        let unreachable = route(99)
        let kernel = FakeKernel(FakeKernel.Objects(rules: [rules[5]]))
        kernel.setAnswer { request in
            if case .route(let r) = try? RouteCodec.decode(request), r == unreachable {
                return .ack(.networkUnreachable)
            }
            return nil
        }
        let client = RouteNetlink(transport: kernel, firstSequence: 100)
        let changes = FailingBatch.changes(rules, unreachable: unreachable)
        let results = client.apply(changes)
        FailingBatch.expectOutcome(results, of: changes, unreachable: unreachable)
        let perDatagram = try kernel.sent.map { try NetlinkMessage.split($0).count }
        #expect(perDatagram == [RouteNetlink.batchSize, RouteNetlink.batchSize, 81 - 2 * RouteNetlink.batchSize])
        #expect(try kernel.sentMessages().map(\.header.sequence) == Array(100..<181))
        #expect(Set(kernel.objects.rules) == Set(rules))
        let deletions = rules.map(Change.deleteRule)
        #expect(client.apply(deletions).allSatisfy { (try? $0.get()) == true })
        #expect(client.apply(deletions).allSatisfy { (try? $0.get()) == false })  // ENOENT counts as done
        #expect(kernel.objects.rules.isEmpty)
    }

    @Test("a batch: a request left without an ack failed with EINTR once a later one is answered")
    func skippedAck() throws {
        let kernel = FakeKernel()
        kernel.setAnswer { request in request.header.sequence == 3 ? .silent : nil }
        let client = RouteNetlink(transport: kernel)
        let results = client.apply((1...5).map { .addRule(rule($0)) })
        #expect(results.map { (try? $0.get()) == true } == [true, true, false, true, true])
        guard case .failure(let error) = results[2] else { return }
        #expect(error.errno == .interrupted)
        #expect(error.object == IPCommand.rule("add", rule(3)))
    }

    @Test("a batch: when the socket fails, the changes not yet answered fail with its errno")
    func socketFailure() throws {
        let kernel = FakeKernel()
        let client = RouteNetlink(transport: kernel)
        let changes = (1...4).map { Change.addRule(rule($0)) }
        // Acks of the first two requests only.
        kernel.setAnswer { request in request.header.sequence > 2 ? .silent : .ack(nil) }
        let results = client.apply(changes)
        // The fake's empty queue throws EAGAIN, standing in for a socket that failed.
        #expect(results.prefix(2).allSatisfy { (try? $0.get()) == true })
        for result in results.suffix(2) {
            guard case .failure(let error) = result else {
                Issue.record("expected a failure, got \(result)")
                continue
            }
            #expect(error.errno == .resourceTemporarilyUnavailable)
        }
        kernel.setAnswer(nil)
        kernel.failNextReceive(NetlinkError(operation: "recvmsg(AF_NETLINK)", errno: .noBufferSpace))
        #expect(client.apply(changes).allSatisfy { (try? $0.get()) == nil })
    }

    @Test("a route lookup is one request without NLM_F_DUMP; the answer is the route, or the kernel's errno")
    func lookup() throws {
        let kernel = FakeKernel()
        let client = RouteNetlink(transport: kernel)
        let chosen = route(7)
        kernel.setAnswer { request in
            .datagrams([
                try! RouteCodec.routeRequest(
                    MessageType.newRoute, flags: 0, route: chosen, sequence: request.header.sequence)
            ])
        }
        let query = RouteQuery(destination: IPAddress("198.51.7.1")!, source: IPAddress("10.1.0.5")!)
        #expect(try client.lookup(query) == chosen)
        let sent = try #require(try kernel.sentMessages().first)
        #expect(sent.header.type == MessageType.getRoute)
        #expect(sent.header.flags == MessageFlags.request)

        kernel.setAnswer { _ in .ack(.noRouteToHost) }
        let error = try #require(throws: NetlinkError.self) { try client.lookup(query) }
        #expect(error.errno == .noRouteToHost)
        #expect(error.object == "ip -4 route get 198.51.7.1 from 10.1.0.5")
    }

    @Test("a neighbour probe is RTM_NEWNEIGH with NTF_USE and waits for its ack")
    func probe() throws {
        let kernel = FakeKernel()
        let client = RouteNetlink(transport: kernel)
        try client.probeNeighbor(IPAddress("10.1.0.254")!, linkIndex: eth1)
        let sent = try #require(try kernel.sentMessages().first)
        #expect(sent.header.type == MessageType.newNeighbor)
        #expect(sent.header.flags == MessageFlags.request | MessageFlags.ack | MessageFlags.create)
        let header = try sent.payload.load(ndmsg.self)
        #expect(header.ndm_ifindex == eth1)
        #expect(header.ndm_flags == UInt8(NTF_USE))
        kernel.setAnswer { _ in .ack(.operationNotSupportedByDevice) }
        #expect(throws: NetlinkError.self) { try client.probeNeighbor(IPAddress("10.1.0.254")!, linkIndex: 99) }
    }
}
