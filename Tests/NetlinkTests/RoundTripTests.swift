import Netlink
import NicrouteCore
import Testing

// Encode a request, split it as if the kernel had sent it back, decode it: the same object.
// A request is an RTM_NEWROUTE/RTM_NEWRULE (or DEL) message, which is what the kernel's dumps
// and notifications carry too.

@Suite("Round trips")
struct RoundTripTests {
    static let seeds: [UInt64] = [1, 2, 3, 0x6e69_6372_6f75_7465]
    static let iterations = 500

    private static func decodeOne(_ bytes: [UInt8]) throws -> (NetlinkHeader, RouteObject?) {
        let messages = try NetlinkMessage.split(bytes)
        try #require(messages.count == 1)
        return (messages[0].header, try RouteCodec.decode(messages[0]))
    }

    @Test("generated routes", arguments: seeds)
    func routes(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        for i in 0..<Self.iterations {
            let route = ModelGenerator.route(&rng)
            let type = rng.bool() ? MessageType.newRoute : MessageType.deleteRoute
            let bytes = try RouteCodec.routeRequest(
                type, flags: MessageFlags.request, route: route, sequence: UInt32(i))
            let (header, object) = try Self.decodeOne(bytes)
            #expect(header.type == type)
            #expect(header.length == UInt32(bytes.count))
            #expect(header.sequence == UInt32(i))
            #expect(header.flags == MessageFlags.request)
            #expect(object == .route(route), "seed \(seed), route \(i): \(IPCommand.route("add", route))")
        }
    }

    @Test("generated rules", arguments: seeds)
    func rules(seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        for i in 0..<Self.iterations {
            let rule = ModelGenerator.rule(&rng)
            let type = rng.bool() ? MessageType.newRule : MessageType.deleteRule
            let bytes = try RouteCodec.ruleRequest(type, flags: MessageFlags.request, rule: rule, sequence: UInt32(i))
            let (header, object) = try Self.decodeOne(bytes)
            #expect(header.type == type)
            #expect(header.length == UInt32(bytes.count))
            #expect(object == .rule(rule), "seed \(seed), rule \(i): \(IPCommand.rule("add", rule))")
        }
    }

    @Test("the wire's two lossy spots are the documented ones")
    func canonicalForms() throws {
        // Only RTNH_F_ONLINK of a route's flags is sent (the kernel sets the others).
        var route = Route(family: .inet, table: 1000, destination: IPPrefix("10.1.0.0/16")!, flags: 0xff)
        var bytes = try RouteCodec.routeRequest(MessageType.newRoute, flags: 0, route: route, sequence: 1)
        guard case .route(let decoded)? = try Self.decodeOne(bytes).1 else {
            Issue.record("not a route")
            return
        }
        #expect(decoded.flags == Route.onlinkFlag)
        #expect(decoded.matches(route))

        // A zero-length source prefix is no source at all.
        route.source = IPPrefix("10.9.0.0/0")
        bytes = try RouteCodec.routeRequest(MessageType.newRoute, flags: 0, route: route, sequence: 1)
        guard case .route(let noSource)? = try Self.decodeOne(bytes).1 else {
            Issue.record("not a route")
            return
        }
        #expect(noSource.source == nil)
    }

    @Test("several messages in one datagram split at their aligned lengths")
    func datagramOfMany() throws {
        var rng = SeededGenerator(seed: 42)
        var objects: [RouteObject] = []
        var datagram: [UInt8] = []
        for i in 0..<64 {
            if i % 2 == 0 {
                let route = ModelGenerator.route(&rng)
                objects.append(.route(route))
                datagram += try RouteCodec.routeRequest(
                    MessageType.newRoute, flags: 0, route: route, sequence: UInt32(i))
            } else {
                let rule = ModelGenerator.rule(&rng)
                objects.append(.rule(rule))
                datagram += try RouteCodec.ruleRequest(MessageType.newRule, flags: 0, rule: rule, sequence: UInt32(i))
            }
        }
        let messages = try NetlinkMessage.split(datagram)
        #expect(messages.map(\.header.sequence) == (0..<64).map(UInt32.init))
        #expect(try messages.map { try RouteCodec.decode($0) } == objects)
    }

    @Test("kernel-shaped link, address, neighbour and error messages decode field by field")
    func kernelShapedMessages() throws {
        let link = try Self.decodeOne(KernelShaped.link).1
        #expect(
            link
                == .link(
                    Link(
                        index: 3, name: "eth0", mac: MACAddress("02:00:00:00:00:01"),
                        flags: [.up, .broadcast, .running, .lowerUp, LinkFlags(rawValue: 0x1000)],
                        operationalState: .up, mtu: 1500, hardwareType: 1, kind: "veth")))

        let address = try Self.decodeOne(KernelShaped.address).1
        #expect(
            address
                == .address(
                    InterfaceAddress(
                        linkIndex: 3, address: IPAddress("10.0.0.1")!, prefixLength: 24, scope: .universe,
                        flags: .permanent, label: "eth0")))

        let neighbor = try Self.decodeOne(KernelShaped.neighbor).1
        #expect(
            neighbor
                == .neighbor(
                    Neighbor(
                        linkIndex: 3, address: IPAddress("10.0.0.254")!,
                        linkLayerAddress: MACAddress("02:00:00:00:00:fe"),
                        state: .reachable)))

        let error = try #require(try NetlinkMessage.split(KernelShaped.errorWithMessage).first)
        #expect(try RouteCodec.decode(error) == nil)
        let (errno, text) = try RouteCodec.decodeError(error)
        #expect(errno == 22)
        #expect(text == "Invalid table")
    }

    @Test("an uncapped error carries the whole request before its TLVs")
    func uncappedError() throws {
        let request = try RouteCodec.ruleRequest(
            MessageType.newRule, flags: 0, rule: Rule(family: .inet6, table: 0), sequence: 9)
        let bytes = Fixtures.message(
            type: MessageType.error, flags: MessageFlags.ackTLVs, sequence: 9,
            payload: Fixtures.le(Int32(-22)) + request + Fixtures.attribute(1, string: "Invalid table"))
        let (errno, text) = try RouteCodec.decodeError(try #require(try NetlinkMessage.split(bytes).first))
        #expect(errno == 22)
        #expect(text == "Invalid table")
    }

    @Test("an ACK is errno 0 without a message")
    func ack() throws {
        let bytes = Fixtures.message(
            type: MessageType.error, flags: MessageFlags.capped, sequence: 3,
            payload: Fixtures.le(Int32(0)) + Fixtures.message(type: MessageType.newRoute, payload: []))
        let (errno, text) = try RouteCodec.decodeError(try #require(try NetlinkMessage.split(bytes).first))
        #expect(errno == 0)
        #expect(text == nil)
    }
}
