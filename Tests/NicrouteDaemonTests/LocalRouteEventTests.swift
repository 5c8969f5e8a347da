import Foundation
import Logging
import Netlink
import NetlinkTesting
import NicrouteCore
import Testing

@testable import NicrouteDaemon

// Local routes as sources, on the daemon's side: what its snapshot reads of the `local` table
// (skipping the kernel's own routes undecoded), which local-table notifications wake the loop,
// and a pass over the FakeKernel that adds and removes a source's rule.

private func pfx(_ s: String) -> IPPrefix { IPPrefix(s)! }

private func localRoute(
    _ p: String, dev: Int32, proto: RouteProtocol = .boot, type: RouteType = .local
) -> Route {
    let d = pfx(p)
    return Route(
        family: d.family, table: RoutingTable.local, destination: d, proto: proto, scope: .host, type: type,
        outputInterface: dev, metric: d.family == .inet6 ? 1024 : nil)
}

/// The kernel's own local table for eth1's 20.20.20.16/24, plus `extra`.
private func localTable(_ extra: [Route] = []) -> [Route] {
    [
        localRoute("20.20.20.16/32", dev: 3, proto: .kernel),
        localRoute("20.20.20.255/32", dev: 3, proto: .kernel, type: .broadcast),
        localRoute("10.10.10.29/32", dev: 2, proto: .kernel),
    ] + extra
}

private let gce = localRoute("10.130.0.50/32", dev: 3, proto: RouteProtocol(rawValue: 66))
private let anyIP = localRoute("10.99.0.0/24", dev: 3)

@Suite struct LocalRouteEventTests {
    static func interest(localRoutes: Bool = true) -> TriggerBox.Interest {
        .init(
            tables: 10000...10999, probes: [], linkNames: [2: "eth0", 3: "eth1"], managed: [2, 3],
            localRoutes: localRoutes)
    }

    @Test(arguments: [
        (RouteEvent.added(.route(gce)), true),
        (.removed(.route(gce)), true),
        (.added(.route(anyIP)), true),
        (.removed(.route(anyIP)), true),
        (.added(.route(localRoute("2001:db8:99::/64", dev: 3))), true),
        // The kernel's own, added and removed with each address.
        (.added(.route(localRoute("20.20.20.16/32", dev: 3, proto: .kernel))), false),
        (.removed(.route(localRoute("20.20.20.16/32", dev: 3, proto: .kernel))), false),
        (.added(.route(localRoute("20.20.20.255/32", dev: 3, proto: .boot, type: .broadcast))), false),
        // Through an unmanaged interface.
        (.added(.route(localRoute("10.99.0.0/24", dev: 9))), false),
        // nicroute's own rule for a source, echoed back.
        (
            .added(
                .rule(Rule(family: .inet, priority: 10001, table: 10001, source: pfx("10.99.0.0/24"), proto: .nicroute))
            ),
            false
        ),
    ])
    func localSourceRoutesWakeTheLoopAndTheKernelsOwnDoNot(_ event: RouteEvent, _ wakes: Bool) {
        let box = TriggerBox()
        box.setInterest(Self.interest())
        box.post(event)
        #expect(box.take().relevant == wakes)
    }

    @Test func withLocalRoutesOffNoLocalRouteWakesTheLoop() {
        let box = TriggerBox()
        box.setInterest(Self.interest(localRoutes: false))
        box.post(.added(.route(anyIP)))
        #expect(!box.take().relevant)
    }

    /// The kernel's own local-table routes (one local and up to two broadcast routes per
    /// address) are dropped before they are decoded, added or removed; a local route of another
    /// protocol is decoded.
    @Test(arguments: [
        (MessageType.newRoute, localRoute("20.20.20.16/32", dev: 3, proto: .kernel), false),
        (MessageType.deleteRoute, localRoute("20.20.20.16/32", dev: 3, proto: .kernel), false),
        (MessageType.newRoute, localRoute("20.20.20.255/32", dev: 3, proto: .kernel, type: .broadcast), false),
        (
            MessageType.newRoute, localRoute("2001:db8:1::/64", dev: 3, proto: .boot, type: RouteType(rawValue: 4)),
            false
        ),
        (MessageType.newRoute, gce, true),
        (MessageType.deleteRoute, anyIP, true),
    ])
    func theKernelsOwnLocalRoutesAreNotDecoded(_ type: UInt16, _ route: Route, _ decoded: Bool) throws {
        let bytes = try RouteCodec.routeRequest(type, flags: 0, route: route, sequence: 1)
        let message = try #require(try NetlinkMessage.split(bytes).first)
        #expect(TriggerBox.worthDecoding(message.header, message.payload) == decoded)
        if !decoded {
            #expect(!TriggerBox.isRelevant(.route(route), added: true, interest: Self.interest()))
        }
    }

    @Test func theSnapshotKeepsTheLocalRoutesThatMayBeSources() throws {
        var objects = twoNICVM()
        objects.routes += localTable([gce, anyIP])
        let client = RouteNetlink(transport: FakeKernel(objects))
        let snapshot = try client.snapshot(includeNeighbors: false)
        #expect(snapshot.routes.filter { $0.table == RoutingTable.local } == [gce, anyIP])
        #expect(try client.routes(family: nil, skipLocal: true).allSatisfy { $0.table != RoutingTable.local })
        #expect(try client.routes(family: nil).filter { $0.table == RoutingTable.local }.count == 5)
    }

    @Test func aPassAddsASourcesRuleAndRemovesItWithItsRoute() throws {
        var objects = twoNICVM()
        objects.routes += localTable([anyIP])
        let kernel = FakeKernel(objects)
        var configuration = Configuration()
        configuration.networkDataPaths = []
        configuration.firstHostFallback = false
        configuration.forwardedConnections = .no
        let directory = NSTemporaryDirectory() + "nicroute-local-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let reconciler = Reconciler(
            client: RouteNetlink(transport: kernel), configuration: configuration,
            store: StateStore(directory: directory), logger: Logger(label: "test"))
        let want = Rule(family: .inet, priority: 10001, table: 10001, source: pfx("10.99.0.0/24"), proto: .nicroute)
        var report = try reconciler.reconcile(now: 0)
        #expect(kernel.objects.rules.contains(want))
        #expect(report.plan.nics.first { $0.link.name == "eth1" }?.sources.map(\.prefix) == [pfx("10.99.0.0/24")])

        kernel.objects.routes.removeAll { $0 == anyIP }
        report = try reconciler.reconcile(now: 1)
        #expect(!kernel.objects.rules.contains(want))
        #expect(report.applied == [Change.deleteRule(want)])
    }
}
