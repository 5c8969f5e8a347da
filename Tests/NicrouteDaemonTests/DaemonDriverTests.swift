import Foundation
import Logging
import Netlink
import NetlinkTesting
import NicrouteCore
import Testing

@testable import NicrouteDaemon

// The glue between the event loop and DaemonMachine (DaemonDriver), over the FakeKernel and a
// real sd-event loop, without root: what a start, kernel events, control requests, a reload
// and a stop do to the kernel's objects and to the answers. The machine's decisions have their
// own table tests (DaemonMachineTests); the real kernel and systemd stages cover the sockets.

private final class DriverFixture {
    let kernel = FakeKernel(twoNICVM())
    /// nftables in memory (the forwarder never looks at the host's ruleset).
    let nftables = FakeNftables()
    let directory: String
    let configPath: String
    let loop: EventLoop
    let driver: DaemonDriver
    /// Answers to control requests, in the order they came.
    var answers: [(ControlCommand, ControlResponse)] = []

    /// eth1's gateway by configuration; no first-host probe, no network_data.json, forwarded
    /// connections as `forwarding` says.
    static func configuration(forwarding: ForwardingMode = .no) -> String {
        """
        [Routing]
        FirstHostFallback=no
        ForwardedConnections=\(forwarding.rawValue)
        NetworkData=

        [Gateway]
        Interface=eth1
        IPv4=20.20.20.1
        """
    }

    init(forwarding: ForwardingMode = .no) throws {
        directory = NSTemporaryDirectory() + "nicroute-driver-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        configPath = directory + "/nicroute.conf"
        try Self.configuration(forwarding: forwarding).write(toFile: configPath, atomically: true, encoding: .utf8)
        let loader = ConfigurationLoader(path: configPath, manageOverride: [InterfaceMatch("eth*")])
        let configuration = try loader.load()
        let logger = Logger(label: "test")
        // The sysctls forwarded connections read and write, in a scratch tree.
        let proc = directory + "/proc"
        for path in ["sys/net/ipv4/ip_forward", "sys/net/ipv6/conf/all/forwarding"]
            + ["eth0", "eth1"].map({ "sys/net/ipv4/conf/\($0)/src_valid_mark" })
        {
            try FileManager.default.createDirectory(
                atPath: proc + "/" + path.split(separator: "/").dropLast().joined(separator: "/"),
                withIntermediateDirectories: true)
            try "0\n".write(toFile: proc + "/" + path, atomically: true, encoding: .utf8)
        }
        loop = try EventLoop()
        driver = try DaemonDriver(
            machine: DaemonMachine(settings: .init(controlPath: directory + "/control.sock")), loop: loop,
            reconciler: Reconciler(
                client: RouteNetlink(transport: kernel), configuration: configuration,
                store: StateStore(directory: directory + "/state"), logger: logger, nftables: nftables,
                procRoot: directory),
            box: TriggerBox(),
            options: DaemonOptions(configuration: loader, stateDirectory: directory + "/state"),
            configuration: configuration, logger: logger)
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    var ownedRules: [Rule] { kernel.objects.rules.filter(Planner.isOwned) }

    /// A NIC's src_valid_mark in the scratch /proc.
    func srcValidMark(_ nic: String) -> String? {
        (try? String(contentsOfFile: directory + "/proc/sys/net/ipv4/conf/\(nic)/src_valid_mark", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
    var ownedRoutes: [Route] { kernel.objects.routes.filter(Planner.isOwned) }

    func ask(_ command: ControlCommand) {
        driver.control(command) { [unowned self] in answers.append((command, $0)) }
    }

    /// Runs `steps` 20 ms apart, each armed when the one before has run (so the pass that a
    /// step asks for, a defer source below the timers' priority, runs in between), then a
    /// stop; returns the loop's exit code.
    func run(_ steps: [() throws -> Void]) throws -> Int32 {
        let all = steps + [{ self.driver.feed(.stopRequested) }]
        var next = 0
        var stepTimer: EventLoop.Source?
        stepTimer = try loop.timer(name: "steps") {
            do { try all[next]() } catch { Issue.record("step \(next): \(error)") }
            next += 1
            if next < all.count { stepTimer?.arm(at: monotonicSeconds() + 0.02) }
        }
        stepTimer?.arm(at: monotonicSeconds())
        // A bound on the whole run: a driver that never exits fails the test, not the suite.
        let bound = try loop.timer(name: "bound") { [unowned self] in
            Issue.record("the driver did not stop within 10 s")
            loop.exit(2)
        }
        bound.arm(at: monotonicSeconds() + 10)
        defer { withExtendedLifetime((stepTimer, bound)) {} }
        return try loop.run()
    }
}

@Suite("DaemonDriver over the fake kernel and a real sd-event loop")
struct DaemonDriverTests {
    @Test("start installs the plan; status, flush, reconfigure answer; a stop ends the loop with 0")
    func lifecycle() throws {
        let f = try DriverFixture()
        var afterStart: (rules: Int, routes: Int) = (0, 0)
        var afterFlush: (rules: Int, routes: Int) = (-1, -1)
        let code = try f.run([
            { f.driver.feed(.start) },
            {
                afterStart = (f.ownedRules.count, f.ownedRoutes.count)
                f.ask(.status)
            },
            { f.ask(.flush) },
            {
                afterFlush = (f.ownedRules.count, f.ownedRoutes.count)
                f.ask(.reconfigure)
            },
        ])
        #expect(code == 0)
        #expect(afterStart.rules == 2 && afterStart.routes == 6)
        #expect(afterFlush.rules == 0 && afterFlush.routes == 0)
        #expect(f.ownedRules.count == 2 && f.ownedRoutes.count == 6)  // back after reconfigure
        #expect(f.answers.map(\.0) == [.status, .flush, .reconfigure])
        guard f.answers.count == 3 else { return }
        guard case .success(let status) = f.answers[0].1 else {
            Issue.record("status failed: \(f.answers[0].1)")
            return
        }
        let report = try ControlCall.status.read(status)
        #expect(report.nics.map(\.name) == ["eth0", "eth1"])
        #expect(report.nics.allSatisfy { $0.rulesInstalled == $0.rulesWanted })
        guard case .success(let flushed) = f.answers[1].1 else {
            Issue.record("flush failed: \(f.answers[1].1)")
            return
        }
        #expect(try ControlCall.flush.read(flushed).removed.count == 8)
        guard case .success(let applied) = f.answers[2].1 else {
            Issue.record("reconfigure failed: \(f.answers[2].1)")
            return
        }
        #expect(try ControlCall.reconfigure.read(applied).applied.count == 8)
    }

    @Test(
        "forwarded connections: the table installed at start, put back after nftables announced its loss, status says so, flush removes it"
    )
    func forwardedConnections() throws {
        let f = try DriverFixture(forwarding: .yes)
        var installed: String?
        var healed: String?
        var fwmarkRules = 0
        var marksWhileInstalled: [String?] = []
        _ = try f.run([
            { f.driver.feed(.start) },
            {
                installed = f.nftables.table
                marksWhileInstalled = [f.srcValidMark("eth0"), f.srcValidMark("eth1")]
                fwmarkRules = f.ownedRules.filter { $0.firewallMask != nil }.count
                f.nftables.table = nil  // `nft flush ruleset` by another tool
                f.driver.feed(.nftablesChanged)
            },
            {
                healed = f.nftables.table
                f.ask(.status)
            },
            { f.ask(.flush) },
        ])
        #expect(installed?.contains("ct mark set") == true)
        #expect(fwmarkRules == 3)  // the shared rule and one per NIC
        #expect(healed == installed)
        #expect(f.nftables.table == nil)
        // src_valid_mark set in the scratch tree, and put back by the flush.
        #expect(f.srcValidMark("eth1") == "0")
        #expect(marksWhileInstalled == ["1", "1"])
        guard f.answers.count == 2, case .success(let status) = f.answers[0].1 else {
            Issue.record("status: \(f.answers)")
            return
        }
        let report = try ControlCall.status.read(status)
        #expect(report.forwarding.state == "installed")
        guard case .success(let flushed) = f.answers[1].1 else {
            Issue.record("flush: \(f.answers[1].1)")
            return
        }
        #expect(try ControlCall.flush.read(flushed).removed.contains("nft delete table inet nicroute"))
    }

    @Test("a paused daemon (after flush) ignores kernel events until reconfigure")
    func pausedAfterFlush() throws {
        let f = try DriverFixture()
        var rulesAfterEvent = -1
        _ = try f.run([
            { f.driver.feed(.start) },
            { f.ask(.flush) },
            {
                f.kernel.objects.addresses.append(address(3, "20.20.20.17/24"))
                f.driver.feed(.kernelEvents(KernelEvents(relevant: true, lastChange: "eth1 +20.20.20.17")))
            },
            { rulesAfterEvent = f.ownedRules.count },
        ])
        #expect(rulesAfterEvent == 0)
    }

    @Test("an address announced by the kernel gets its rule on the next loop turn")
    func kernelEvent() throws {
        let f = try DriverFixture()
        var rules: [Rule] = []
        _ = try f.run([
            { f.driver.feed(.start) },
            {
                f.kernel.objects.addresses.append(address(3, "20.20.20.17/24"))
                f.driver.feed(.kernelEvents(KernelEvents(relevant: true, lastChange: "eth1 +20.20.20.17")))
            },
            { rules = f.ownedRules },
        ])
        #expect(rules.contains { $0.source == IPPrefix("20.20.20.17/32") })
        #expect(rules.count == 3)
    }

    @Test(
        "status and plan dump nothing: they show the kernel as the last pass left it, after the pass an event asked for"
    )
    func statusFromThePicture() throws {
        let f = try DriverFixture()
        var dumps: (before: Int, after: Int) = (0, 0)
        var answeredBeforePass = -1
        _ = try f.run([
            { f.driver.feed(.start) },
            {
                dumps.before = f.kernel.dumps
                f.ask(.status)
                f.ask(.plan)
                dumps.after = f.kernel.dumps
            },
            {
                f.kernel.objects.addresses.append(address(3, "20.20.20.17/24"))
                f.driver.feed(.kernelEvents(KernelEvents(relevant: true, lastChange: "eth1 +20.20.20.17")))
                f.ask(.status)
                answeredBeforePass = f.answers.count
            },
        ])
        #expect(dumps.before > 0 && dumps.after == dumps.before)
        #expect(answeredBeforePass == 2)
        #expect(f.answers.map(\.0) == [.status, .plan, .status])
        guard f.answers.count == 3, case .success(let first) = f.answers[0].1,
            case .success(let plan) = f.answers[1].1, case .success(let last) = f.answers[2].1
        else {
            Issue.record("answers: \(f.answers)")
            return
        }
        #expect(try ControlCall.status.read(first).nics.map(\.rulesInstalled) == [1, 1])
        #expect(try ControlCall.plan.read(plan).changes.isEmpty)
        // Answered after the pass: the new address, and its rule, installed.
        let report = try ControlCall.status.read(last)
        #expect(report.nics.map(\.rulesInstalled) == [1, 2])
        #expect(report.nics.map(\.rulesWanted) == [1, 2])
    }

    @Test("SIGHUP reloads: a valid file takes effect; an invalid one is refused and the last good one kept")
    func reload() throws {
        let f = try DriverFixture()
        func eth1Gateway() -> IPAddress? {
            f.ownedRoutes.first { $0.table == 10001 && $0.destination == IPPrefix("0.0.0.0/0") }?.gateway
        }
        let moved = DriverFixture.configuration().replacingOccurrences(of: "20.20.20.1", with: "20.20.20.254")
        var gateways: [IPAddress?] = []
        _ = try f.run([
            { f.driver.feed(.start) },
            {
                gateways.append(eth1Gateway())
                try moved.write(toFile: f.configPath, atomically: true, encoding: .utf8)
                f.driver.feed(.reloadRequested)
            },
            {
                gateways.append(eth1Gateway())
                // Would move the gateway back, but the file as a whole is invalid.
                try (DriverFixture.configuration() + "\n[Routing]\nNoSuchSetting=1\n").write(
                    toFile: f.configPath, atomically: true, encoding: .utf8)
                f.driver.feed(.reloadRequested)
            },
            { gateways.append(eth1Gateway()) },
        ])
        #expect(gateways == [IPAddress("20.20.20.1"), IPAddress("20.20.20.254"), IPAddress("20.20.20.254")])
    }
}
