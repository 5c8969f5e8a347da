import NicrouteCore
import Testing

@testable import NicrouteDaemon

private let v4 = NeighborProbe(address: IPAddress("20.20.20.1")!, linkIndex: 3)
private let v6 = NeighborProbe(address: IPAddress("fd00:20::1")!, linkIndex: 3)

/// First-host probes: when they leave, and what the loop is told when a probe's answer comes
/// back before the pass that sent it has handed over its interest.
@Suite struct ProbeScheduleTests {
    /// (time, probes wanted, links with a usable link-local address) -> the probes sent.
    struct Step: Sendable, CustomTestStringConvertible {
        var now: Double
        var wanted: [NeighborProbe]
        var linkLocalReady: Set<Int32>
        var sent: [NeighborProbe]
        var testDescription: String { "t=\(now)" }
    }

    static let sequences: [(String, [Step])] = [
        (
            "IPv4: at once, then after 2, 4, 8 s",
            [
                Step(now: 0, wanted: [v4], linkLocalReady: [], sent: [v4]),
                Step(now: 1.9, wanted: [v4], linkLocalReady: [], sent: []),
                Step(now: 2, wanted: [v4], linkLocalReady: [], sent: [v4]),
                Step(now: 5.9, wanted: [v4], linkLocalReady: [], sent: []),
                Step(now: 6, wanted: [v4], linkLocalReady: [], sent: [v4]),
                Step(now: 14, wanted: [v4], linkLocalReady: [], sent: [v4]),
            ]
        ),
        (
            "IPv6 waits for the link-local address, then leaves at once",
            [
                Step(now: 0, wanted: [v6], linkLocalReady: [], sent: []),
                Step(now: 0.3, wanted: [v6], linkLocalReady: [7], sent: []),
                Step(now: 0.4, wanted: [v6], linkLocalReady: [3], sent: [v6]),
                Step(now: 0.5, wanted: [v6], linkLocalReady: [3], sent: []),
                Step(now: 2.4, wanted: [v6], linkLocalReady: [3], sent: [v6]),
            ]
        ),
        (
            "a link-local address lost again holds the probe; back, it leaves at once",
            [
                Step(now: 0, wanted: [v6], linkLocalReady: [3], sent: [v6]),
                Step(now: 1, wanted: [v6], linkLocalReady: [], sent: []),
                Step(now: 1.5, wanted: [v6], linkLocalReady: [3], sent: [v6]),
            ]
        ),
        (
            "a candidate no longer wanted is forgotten: wanted again, it leaves at once",
            [
                Step(now: 0, wanted: [v4, v6], linkLocalReady: [3], sent: [v4, v6]),
                Step(now: 1, wanted: [v6], linkLocalReady: [3], sent: []),
                Step(now: 1.5, wanted: [v4, v6], linkLocalReady: [3], sent: [v4]),
            ]
        ),
    ]

    @Test(arguments: sequences.indices)
    func schedule(_ i: Int) {
        let (name, steps) = Self.sequences[i]
        var schedule = ProbeSchedule()
        for step in steps {
            let sent = schedule.due(step.wanted, now: step.now, linkLocalReady: step.linkLocalReady)
            #expect(sent == step.sent, "\(name), \(step.testDescription)")
        }
    }

    @Test func theDeadlineIsTheNextProbeWaitingForItsTime() {
        var schedule = ProbeSchedule()
        _ = schedule.due([v4, v6], now: 10, linkLocalReady: [])
        #expect(schedule.nextDeadline == 12)  // the IPv6 probe waits for an event, not a time
        _ = schedule.due([], now: 11, linkLocalReady: [])
        #expect(schedule.nextDeadline == nil)
    }

    @Test func aProbeHeldBackForItsLinkLocalAddressLeavesFromAReadyGlobalAddress() {
        func a(_ text: String, _ flags: AddressFlags = [.permanent], link: Int32 = 3) -> InterfaceAddress {
            InterfaceAddress(
                linkIndex: link, address: IPAddress(text)!, prefixLength: 64, scope: .universe, flags: flags)
        }
        // The router's subnet first, a ready address; tentative, optimistic and other links' never.
        let sources = ProbeSchedule.globalSources([
            a("fd00:99::5"), a("fd00:20::5", [.permanent]), a("fd00:20::6", [.tentative]),
            a("fd00:20::7", [.optimistic]), a("fd00:20::8", link: 4),
            InterfaceAddress(linkIndex: 3, address: IPAddress("fe80::3")!, prefixLength: 64, scope: .link),
        ])
        #expect(sources[3]?.map(\.address) == [IPAddress("fd00:99::5")!, IPAddress("fd00:20::5")!])
        var schedule = ProbeSchedule()
        func sent(_ now: Double, ready: Set<Int32> = [], _ s: [Int32: [ProbeSchedule.IPPrefixedAddress]]) -> [String] {
            _ = schedule.due([v4, v6], now: now, linkLocalReady: ready)
            return schedule.datagrams([v4, v6], now: now, linkLocalReady: ready, sources: s).map {
                "\($0.probe.address) from \($0.from)"
            }
        }
        #expect(sent(0, [:]) == [])  // no global address ready: it waits, as before
        #expect(sent(0.1, sources) == ["fd00:20::1 from fd00:20::5"])
        #expect(sent(1, sources) == [])
        #expect(schedule.nextDeadline == 2)  // the IPv4 probe's retry and the datagram's
        #expect(sent(2.1, sources) == ["fd00:20::1 from fd00:20::5"])
        // The link-local address is ready: an ordinary probe, no datagram; the datagram's
        // schedule is forgotten.
        #expect(sent(2.2, ready: [3], sources) == [])
        #expect(schedule.datagramEntries.isEmpty)
        #expect(sent(2.3, sources) == ["fd00:20::1 from fd00:20::5"])
        // The NIC unplugged (no probe wanted: forgotten) and plugged again (a new link): the
        // first datagram leaves at once, whatever the old one's back-off.
        _ = schedule.datagrams([], now: 2.4, linkLocalReady: [], sources: [:])
        #expect(schedule.datagramEntries.isEmpty)
        let again = NeighborProbe(address: v6.address, linkIndex: 9)
        let moved = [Int32(9): sources[3]!]
        #expect(schedule.datagrams([again], now: 2.5, linkLocalReady: [], sources: moved).count == 1)
        #expect(schedule.datagrams([again], now: 2.6, linkLocalReady: [], sources: moved).isEmpty)
        #expect(schedule.datagrams([v6], now: 2.7, linkLocalReady: [], sources: sources).count == 1)
    }

    @Test func onlyAUsableLinkLocalAddressLetsASolicitationLeave() {
        func a(_ index: Int32, _ text: String, _ flags: AddressFlags) -> InterfaceAddress {
            InterfaceAddress(linkIndex: index, address: IPAddress(text)!, prefixLength: 64, scope: .link, flags: flags)
        }
        let addresses = [
            a(2, "fe80::2", [.permanent]), a(3, "fe80::3", [.tentative]), a(4, "fe80::4", [.optimistic]),
            a(5, "fe80::5", [.tentative, .dadFailed]), a(6, "fd00:6::1", []),
            InterfaceAddress(linkIndex: 7, address: IPAddress("169.254.0.7")!, prefixLength: 16, scope: .link),
        ]
        #expect(ProbeSchedule.linkLocalReady(addresses) == [2])
    }

    @Test func anAnswerBeforeTheInterestWakesTheLoopWhenTheInterestArrives() {
        let box = TriggerBox()
        box.setInterest(.init(tables: 10000...10999, probes: [], linkNames: [3: "eth1"], managed: [3]))
        // The pass sent the probe; the router answered before the pass handed its interest over.
        box.post(.added(.neighbor(Neighbor(linkIndex: 3, address: IPAddress("fd00:20::1")!, state: .reachable))))
        #expect(!box.take().relevant)
        box.setInterest(
            .init(tables: 10000...10999, probes: [IPAddress("fd00:20::1")!], linkNames: [3: "eth1"], managed: [3]))
        #expect(box.take().relevant)
        // Spent: the same interest again wakes nothing.
        box.setInterest(
            .init(tables: 10000...10999, probes: [IPAddress("fd00:20::1")!], linkNames: [3: "eth1"], managed: [3]))
        #expect(!box.take().relevant)
        // Unanswered neighbours and answers for other addresses do not count.
        box.setInterest(.init(tables: 10000...10999, probes: [], linkNames: [3: "eth1"], managed: [3]))
        box.post(.added(.neighbor(Neighbor(linkIndex: 3, address: IPAddress("fd00:20::1")!, state: .incomplete))))
        box.post(.added(.neighbor(Neighbor(linkIndex: 3, address: IPAddress("fd00:20::9")!, state: .stale))))
        _ = box.take()
        box.setInterest(
            .init(tables: 10000...10999, probes: [IPAddress("fd00:20::1")!], linkNames: [3: "eth1"], managed: [3]))
        #expect(!box.take().relevant)
    }
}
