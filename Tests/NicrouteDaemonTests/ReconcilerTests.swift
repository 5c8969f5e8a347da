import Foundation
import Logging
import Netlink
import NetlinkTesting
import NicrouteCore
import SystemPackage
import Testing

@testable import NicrouteDaemon

// The Reconciler driven over the in-memory FakeKernel: its passes, its caches (the quiet plan,
// the addresses-only pass, the objects it installed) and its back-off, without root.

private final class Fixture {
    let kernel: FakeKernel
    let client: RouteNetlink
    let reconciler: Reconciler
    let directory: String

    init(
        _ objects: FakeKernel.Objects = twoNICVM(), logger: Logger = Logger(label: "test"),
        configure: (inout Configuration) -> Void = { _ in }
    ) throws {
        kernel = FakeKernel(objects)
        client = RouteNetlink(transport: kernel)
        directory = NSTemporaryDirectory() + "nicroute-reconciler-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        var configuration = Configuration()
        configuration.networkDataPaths = []
        configuration.firstHostFallback = false
        // Never the machine's own nftables or sysctls (auto would follow its ip_forward).
        configuration.forwardedConnections = .no
        configuration.gateways = [GatewayOverride(match: InterfaceMatch("eth1"), ipv4: IPAddress("20.20.20.1"))]
        configure(&configuration)
        reconciler = Reconciler(
            client: client, configuration: configuration, store: StateStore(directory: directory),
            logger: logger)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// The changes of the datagrams sent since `since` (dumps left out).
    func changesSent(since: Int) throws -> [UInt16] {
        try kernel.sent[since...].flatMap(NetlinkMessage.split).map(\.header.type)
            .filter { $0 & 3 != 2 }
    }

    var owned: (routes: [Route], rules: [Rule]) {
        (kernel.objects.routes.filter(Planner.isOwned), kernel.objects.rules.filter(Planner.isOwned))
    }
}

/// A log handler that keeps what it is given (level, message, metadata), for assertions.
private final class CapturedLog: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] = []
    var entries: [(level: Logger.Level, message: String, metadata: Logger.Metadata)] {
        lock.withLock { lines }
    }

    func logger(level: Logger.Level) -> Logger {
        var logger = Logger(label: "test") { _ in Handler(log: self) }
        logger.logLevel = level
        return logger
    }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            log.lock.withLock { log.lines.append((event.level, "\(event.message)", event.metadata ?? [:])) }
        }
    }
}

@Suite("Reconciler over the fake kernel")
struct ReconcilerTests {
    @Test("each change of a small pass is logged at notice with its command; a large pass, per NIC")
    func changeLog() throws {
        let small = CapturedLog()
        _ = try Fixture(logger: small.logger(level: .info)).reconciler.reconcile(now: 0)
        let commands = small.entries.filter { $0.level == .notice && $0.metadata["command"] != nil }
        #expect(commands.count == 8)  // 2 tables x (own subnet, the other subnet, default) + 2 rules
        #expect(commands.contains { $0.message.hasPrefix("ip -4 rule add ") && $0.metadata["link"] == "eth1" })

        // eth1 with 80 addresses: 80 rules and its routes, more than are logged one by one.
        var objects = twoNICVM()
        for host in 17..<96 { objects.addresses.append(address(3, "20.20.20.\(host)/24")) }
        let large = CapturedLog()
        let report = try Fixture(objects, logger: large.logger(level: .info)).reconciler.reconcile(now: 0)
        #expect(report.applied.count > Reconciler.changesLoggedOneByOne)
        let notices = large.entries.filter { $0.level == .notice }
        #expect(notices.allSatisfy { $0.metadata["command"] == nil })
        #expect(
            notices.map(\.message).sorted() == [
                "eth0 (table 10000): 3 routes and 1 rule added", "eth1 (table 10001): 3 routes and 80 rules added",
            ])
        #expect(notices.first { $0.metadata["link"] == "eth1" }?.metadata["changes"] == "83")

        // At trace level every change is there too.
        let traced = CapturedLog()
        _ = try Fixture(objects, logger: traced.logger(level: .trace)).reconciler.reconcile(now: 0)
        #expect(
            traced.entries.filter { $0.level == .trace && $0.metadata["command"] != nil }.count == report.applied.count)
    }

    @Test("a pass installs the plan; the next one finds nothing to do and changes nothing")
    func converges() throws {
        let f = try Fixture()
        let first = try f.reconciler.reconcile(now: 0)
        #expect(first.failed.isEmpty)
        #expect(!first.applied.isEmpty)
        #expect(first.applied == first.plan.changes)
        #expect(Set(f.owned.rules.map(\.table)) == [10000, 10001])
        #expect(f.owned.routes.contains { $0.table == 10001 && $0.gateway == IPAddress("20.20.20.1") })
        #expect(StateStore(directory: f.directory).loadSlots() == first.plan.slots)

        let sent = f.kernel.sent.count
        let second = try f.reconciler.reconcile(now: 1)
        #expect(second.plan.changes.isEmpty)
        #expect(second.applied.isEmpty)
        #expect(try f.changesSent(since: sent).isEmpty)
        #expect(second.retryAt == nil)
    }

    @Test("a NIC on a network without DHCP: its gateway from OpenStack's network data as cloud-init kept it")
    func gatewayFromCloudInitInstanceData() throws {
        // eth1 (fa:16:3e:00:00:02) has no default route in main, no lease, no override; the
        // instance data says its network's default route goes via 20.20.20.254.
        let file =
            NSTemporaryDirectory() + "nicroute-instance-data-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).json"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let instanceData = #"""
            {"v1": {"cloud_name": "openstack"}, "merged_cfg": "redacted for non-root user",
             "ds": {"_doc": "EXPERIMENTAL", "meta_data": {"uuid": "u"}, "network_json": {
               "links": [{"id": "tap-b", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:02"}],
               "networks": [{"id": "n1", "type": "ipv4", "link": "tap-b", "ip_address": "20.20.20.16",
                 "netmask": "255.255.255.0",
                 "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "20.20.20.254"}]}]}}}
            """#
        try instanceData.write(toFile: file, atomically: true, encoding: .utf8)
        let f = try Fixture {
            $0.gateways = []
            $0.networkDataPaths = ["/nonexistent/network_data.json", file]
        }
        let pass = try f.reconciler.reconcile(now: 0)
        #expect(pass.failed.isEmpty)
        let eth1 = try #require(pass.plan.nics.first { $0.link.name == "eth1" })
        #expect(eth1.ipv4Gateway == GatewayHint(gateway: IPAddress("20.20.20.254")!, source: .networkData))
        #expect(
            f.owned.routes.contains {
                $0.table == 10001 && $0.destination.isDefault && $0.gateway == IPAddress("20.20.20.254")
            })
        // Without the file, nothing names eth1's gateway: subnet routes only.
        try FileManager.default.removeItem(atPath: file)
        let after = try f.reconciler.reconcile(now: 1)
        #expect(after.plan.nics.first { $0.link.name == "eth1" }?.ipv4Gateway == nil)
        #expect(!f.owned.routes.contains { $0.table == 10001 && $0.destination.isDefault })
    }

    @Test("slots that cannot be saved are kept, warned about once, and saved once the disk lets them")
    func slotsKeptAndRetried() throws {
        let log = CapturedLog()
        let f = try Fixture(logger: log.logger(level: .info))
        // The state directory is a file: nothing can be written under it.
        try "not a directory\n".write(toFile: f.directory, atomically: true, encoding: .utf8)
        let first = try f.reconciler.reconcile(now: 0)
        #expect(first.failed.isEmpty)
        #expect(Set(f.owned.rules.map(\.table)) == [10000, 10001])
        #expect(first.retryAt != nil)
        let second = try f.reconciler.reconcile(now: 2)
        #expect(second.retryAt != nil)
        let warnings = log.entries.filter {
            $0.level == .warning && $0.message.hasPrefix("cannot write in the state directory")
        }
        #expect(warnings.count == 1)

        try FileManager.default.removeItem(atPath: f.directory)
        let third = try f.reconciler.reconcile(now: 6)
        #expect(third.retryAt == nil)
        #expect(StateStore(directory: f.directory).loadSlots() == first.plan.slots)
        #expect(log.entries.contains { $0.level == .notice && $0.message.hasSuffix("every file written again") })
    }

    @Test("with only addresses announced and the same addresses read, a quiet pass reads nothing else")
    func addressesOnly() throws {
        let f = try Fixture()
        _ = try f.reconciler.reconcile(now: 0)
        _ = try f.reconciler.reconcile(now: 1)  // quiet: nothing to do
        var dumps = f.kernel.dumps
        let quiet = try f.reconciler.reconcile(now: 2, reading: .addresses)
        #expect(quiet.read == .addresses)
        #expect(quiet.plan.changes.isEmpty)
        #expect(f.kernel.dumps == dumps + 1)

        // A new address: the whole picture is read, and the plan follows it.
        f.kernel.objects.addresses.append(address(3, "20.20.20.17/24"))
        dumps = f.kernel.dumps
        let moved = try f.reconciler.reconcile(now: 3, reading: .addresses)
        #expect(moved.read == .everything)
        #expect(f.kernel.dumps > dumps + 1)
        #expect(
            moved.applied.contains {
                if case .addRule(let r) = $0 { r.source == IPPrefix("20.20.20.17/32") } else { false }
            })
    }

    @Test("with only links and addresses announced, links that plan alike keep the quiet picture; others do not")
    func linksAndAddressesOnly() throws {
        let f = try Fixture()
        _ = try f.reconciler.reconcile(now: 0)
        _ = try f.reconciler.reconcile(now: 1)  // quiet: nothing to do
        // An MTU change: the links and addresses are read (two dumps), nothing else.
        f.kernel.objects.links[1].mtu = 1400
        var dumps = f.kernel.dumps
        let quiet = try f.reconciler.reconcile(now: 2, reading: .linksAndAddresses)
        #expect(quiet.read == .linksAndAddresses)
        #expect(quiet.plan.changes.isEmpty)
        #expect(f.kernel.dumps == dumps + 2)
        #expect(quiet.plan.nics.first { $0.link.name == "eth0" }?.link.mtu == 1400)

        // eth1 goes down: its routes may have gone with it silently: the whole picture is read.
        f.kernel.objects.links[2].flags.remove(.up)
        dumps = f.kernel.dumps
        let down = try f.reconciler.reconcile(now: 3, reading: .linksAndAddresses)
        #expect(down.read == .everything)
        #expect(f.kernel.dumps > dumps + 2)
        #expect(down.plan.nics.map(\.link.name) == ["eth0"])
    }

    @Test("a change the kernel refuses is reported and retried after a back-off; the others are applied")
    func failure() throws {
        let f = try Fixture()
        f.kernel.setAnswer { request in
            if case .rule(let r) = try? RouteCodec.decode(request), r.table == 10001,
                request.header.type == MessageType.newRule
            {
                return .ack(.invalidArgument)
            }
            return nil
        }
        let report = try f.reconciler.reconcile(now: 100)
        #expect(report.failed.count == 1)
        #expect(report.failed.first?.error.contains("Invalid argument") == true)
        #expect(report.applied.count == report.plan.changes.count - 1)
        #expect(report.retryAt == 102)
        let again = try f.reconciler.reconcile(now: 102)
        #expect(again.failed.count == 1)
        #expect(again.applied.isEmpty)
        #expect(again.retryAt == 106)  // the delay doubles
        f.kernel.setAnswer(nil)
        let healed = try f.reconciler.reconcile(now: 106)
        #expect(healed.failed.isEmpty && healed.applied.count == 1)
        #expect(healed.retryAt == nil)
    }

    @Test("an object another tool keeps deleting is re-added at once, then held back")
    func fight() throws {
        let f = try Fixture()
        _ = try f.reconciler.reconcile(now: 0)
        let rule = try #require(f.owned.rules.first)
        var deferred: [Change] = []
        for step in 1...8 {
            f.kernel.objects.rules.removeAll { $0 == rule }
            let report = try f.reconciler.reconcile(now: Double(step) * 0.1)
            if report.deferred.isEmpty {
                #expect(report.applied == [.addRule(rule)])
            } else {
                deferred = report.deferred
                #expect(report.retryAt != nil)
                break
            }
        }
        // ReinstallGuard's default: five re-installs within 30 s go ahead, the sixth waits.
        #expect(deferred == [.addRule(rule)])
        #expect(!f.kernel.objects.rules.contains(rule))
    }

    @Test("flush deletes what nicroute owns and nothing else")
    func flush() throws {
        let f = try Fixture()
        let before = f.kernel.objects
        _ = try f.reconciler.reconcile(now: 0)
        let owned = f.owned
        #expect(!owned.rules.isEmpty && !owned.routes.isEmpty)
        let commands = try f.reconciler.flush()
        #expect(commands.count == owned.routes.count + owned.rules.count)
        #expect(commands.allSatisfy { $0.contains(" del ") })
        #expect(f.owned.routes.isEmpty && f.owned.rules.isEmpty)
        #expect(f.kernel.objects == before)
    }
}
