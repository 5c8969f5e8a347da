import NicrouteCore
import Testing

// `nicroutectl check`'s verdicts from the kernel's answers, one case per reason. The answers here
// are what the kernel gives in each situation (Tests/Scenario/cli.sh provokes each of them in
// network namespaces and compares with `ip route get`).

private let eth0: Int32 = 2
private let eth1: Int32 = 3
private let a = IPAddress("20.20.20.16")!
private let outside = IPAddress("192.0.2.1")!
private let gw = IPAddress("20.20.20.1")!
private let nic = RouteCheck.NIC(name: "eth1", index: eth1, table: 10001, priority: 10001, gateway: gw)
private let ownRule = Rule(
    family: .inet, priority: 10001, table: 10001, source: IPPrefix(a, length: 32)!, proto: .nicroute)
private let kernelRules = [
    Rule(family: .inet, priority: 0, table: RoutingTable.local),
    Rule(family: .inet, priority: 32766, table: RoutingTable.main),
    Rule(family: .inet, priority: 32767, table: RoutingTable.default),
]
private let ownDefault = Route(
    family: .inet, table: 10001, destination: .any(.inet), proto: .nicroute, gateway: gw, outputInterface: eth1)
private let local = RouteCheck.Answer.route(
    Route(family: .inet, table: RoutingTable.local, destination: IPPrefix(a, length: 32)!, type: .local))

private func reply(_ oif: Int32, via gateway: String?, table: UInt32) -> RouteCheck.Answer {
    .route(
        Route(
            family: .inet, table: table, destination: IPPrefix(outside, length: 32)!,
            gateway: gateway.flatMap { IPAddress($0) }, outputInterface: oif))
}
private let viaEth0 = reply(eth0, via: "10.10.10.1", table: RoutingTable.main)
private let rpRefused = RouteCheck.Answer.failed(errno: RouteCheck.einval, message: "Invalid argument")

struct CheckCase: CustomTestStringConvertible, Sendable {
    var name: String
    var evidence: RouteCheck.Evidence
    var reasons: [RouteCheck.Reason]
    /// A phrase the one-line summary must hold.
    var says: String
    var testDescription: String { name }
}

@Suite("check verdicts")
struct RouteCheckTests {
    static let cases: [CheckCase] = [
        CheckCase(
            name: "through its NIC via its gateway, request accepted",
            evidence: .init(
                address: a, destination: outside, nic: nic, reply: reply(eth1, via: "20.20.20.1", table: 10001),
                request: local, rules: kernelRules + [ownRule], tableRoutes: [ownDefault], rpFilter: 1),
            reasons: [], says: "leaves through eth1 via 20.20.20.1 (table 10001)"),
        CheckCase(
            name: "on its own link without a gateway (a destination on its subnet)",
            evidence: .init(
                address: a, destination: IPAddress("20.20.20.50")!, nic: nic,
                reply: reply(eth1, via: nil, table: 10001),
                request: local, rules: kernelRules + [ownRule], tableRoutes: [ownDefault]),
            reasons: [], says: "leaves through eth1 on-link"),
        CheckCase(
            name: "no rule, strict rp_filter",
            evidence: .init(
                address: a, destination: outside, nic: nic, reply: viaEth0, request: rpRefused, rules: kernelRules,
                tableRoutes: [], rpFilter: 1),
            reasons: [.noRule, .reversePathFilter],
            says: "no rule from 20.20.20.16 (nicroute's `from 20.20.20.16 lookup 10001` at priority 10001 is missing)"),
        CheckCase(
            name: "no rule, rp_filter off: EINVAL is not blamed on it",
            evidence: .init(
                address: a, destination: outside, nic: nic, reply: viaEth0, request: rpRefused, rules: kernelRules,
                rpFilter: 0),
            reasons: [.noRule, .requestNotLocal], says: "is refused (Invalid argument)"),
        CheckCase(
            name: "forwarded-packet refusal (EXDEV) is reverse-path filtering whatever the mode read",
            evidence: .init(
                address: a, destination: outside, nic: nic, reply: viaEth0,
                request: .failed(errno: RouteCheck.exdev, message: "Invalid cross-device link"),
                rules: kernelRules + [ownRule], tableRoutes: [ownDefault]),
            reasons: [.wrongInterface, .reversePathFilter], says: "reverse-path filtering on eth1 drops"),
        CheckCase(
            name: "a foreign rule of higher priority wins",
            evidence: .init(
                address: a, destination: outside, nic: nic, reply: reply(eth0, via: "10.10.10.1", table: 99),
                request: local,
                rules: kernelRules + [
                    ownRule, Rule(family: .inet, priority: 500, table: 99, source: IPPrefix(a, length: 32)!),
                ],
                tableRoutes: [ownDefault]),
            reasons: [.foreignRule], says: "a rule of higher priority wins: priority 500 from 20.20.20.16 lookup 99"),
        CheckCase(
            name: "a foreign rule for another address does not count",
            evidence: .init(
                address: a, destination: outside, nic: nic, reply: viaEth0, request: local,
                rules: kernelRules + [
                    ownRule, Rule(family: .inet, priority: 500, table: 99, source: IPPrefix("10.10.10.29/32")!),
                ], tableRoutes: []),
            reasons: [.noDefault], says: "no default route in table 10001"),
        CheckCase(
            name: "no default route in its table",
            evidence: .init(
                address: a, destination: outside, nic: nic, reply: viaEth0, request: local,
                rules: kernelRules + [ownRule], tableRoutes: []),
            reasons: [.noDefault], says: "no default route in table 10001"),
        CheckCase(
            name: "gateway unconfirmed: subnet routes only",
            evidence: .init(
                address: a, destination: outside,
                nic: .init(name: "eth1", index: eth1, table: 10001, priority: 10001, gateway: nil), reply: viaEth0,
                request: local, rules: kernelRules + [ownRule], tableRoutes: []),
            reasons: [.gatewayUnconfirmed], says: "gateway unconfirmed: table 10001 has no default route"),
        CheckCase(
            name: "through its NIC via another gateway",
            evidence: .init(
                address: a, destination: outside, nic: nic, reply: reply(eth1, via: "20.20.20.2", table: 10001),
                request: local, rules: kernelRules + [ownRule], tableRoutes: [ownDefault]),
            reasons: [.wrongGateway], says: "not via its gateway 20.20.20.1"),
        CheckCase(
            name: "its table sends the destination elsewhere",
            evidence: .init(
                address: a, destination: outside, nic: nic, reply: reply(eth0, via: nil, table: 10001), request: local,
                rules: kernelRules + [ownRule], tableRoutes: [ownDefault]),
            reasons: [.wrongInterface], says: "table 10001 does not send 192.0.2.1 through eth1"),
        CheckCase(
            name: "no route at all",
            evidence: .init(
                address: a, destination: outside, nic: nic,
                reply: .failed(errno: 101, message: "Network is unreachable"), request: local,
                rules: kernelRules + [ownRule], tableRoutes: []),
            reasons: [.noDefault], says: "no route from 20.20.20.16 to 192.0.2.1 (Network is unreachable, errno 101)"),
        CheckCase(
            name: "NIC not managed",
            evidence: .init(address: a, destination: outside, nic: nil, unmanagedLink: "eth1"),
            reasons: [.notManaged], says: "eth1 is not managed by nicroute"),
        CheckCase(
            name: "NIC opted out by udev",
            evidence: .init(
                address: a, destination: outside, nic: nil, unmanagedLink: "eth1",
                unmanagedReason: "NICROUTE_MANAGE=0 in udev's database"),
            reasons: [.notManaged],
            says: "eth1 is not managed by nicroute: no table or rule of its own (NICROUTE_MANAGE=0 in udev's database)"),
        CheckCase(
            name: "not an address of this host",
            evidence: .init(address: IPAddress("192.0.2.77")!, destination: outside, nic: nil),
            reasons: [.notLocal], says: "192.0.2.77 is not an address of this host"),
    ]

    @Test(arguments: cases)
    func verdict(_ c: CheckCase) {
        let v = RouteCheck.judge(c.evidence, linkName: { [eth0: "eth0", eth1: "eth1"][$0] })
        #expect(v.reasons == c.reasons)
        #expect(v.ok == c.reasons.isEmpty)
        #expect(v.summary.contains(c.says), "\(v.summary)")
        #expect(!v.summary.contains("\n"))
    }

    @Test func renderedAndJSON() throws {
        let ok = RouteCheck.judge(Self.cases[0].evidence, linkName: { [eth0: "eth0", eth1: "eth1"][$0] })
        let bad = RouteCheck.judge(Self.cases[2].evidence, linkName: { [eth0: "eth0", eth1: "eth1"][$0] })
        let text = RouteCheck.rendered([ok, bad])
        #expect(text.hasPrefix("ok   eth1 20.20.20.16: leaves through eth1 via 20.20.20.1 (table 10001)\nFAIL eth1 "))
        #expect(text.hasSuffix("1 of 2 address(es) do not answer through their own NIC."))
        #expect(RouteCheck.rendered([]) == "No managed addresses to check.")
        let json = try JSONCoding.decode(CheckJSON.self, from: Array(RouteCheck.json([ok, bad]).utf8))
        #expect(json.ok == false)
        #expect(json.results.count == 2)
        #expect(json.results[1].reasons == ["no-rule", "rp-filter"])
        #expect(json.results[0].reply?.table == 10001)
        #expect(RouteCheck.json([]) == #"{"ok":false,"results":[]}"#)
    }

    /// What a script reads of `nicroutectl check --json`.
    struct CheckJSON: Decodable {
        var ok: Bool
        var results: [Result]
        struct Result: Decodable {
            var address: String
            var interface: String?
            var destination: String
            var ok: Bool
            var reasons: [String]
            var summary: String
            var reply: Reply?
            var requestAccepted: Bool?
        }
        struct Reply: Decodable {
            var interface: String?
            var gateway: String?
            var table: UInt32?
        }
    }
}
