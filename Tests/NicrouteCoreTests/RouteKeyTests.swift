import Testing

@testable import NicrouteCore

// Route.Key's order agrees with its equality: of two keys exactly one of a < b, b < a, a == b
// holds, so sorting and sets agree on which routes are the same.

private func key(
    _ dst: String, source: String? = nil, table: UInt32 = 1000, tos: UInt8 = 0, metric: UInt32? = nil,
    family: AddressFamily = .inet
) -> Route.Key {
    Route(
        family: family, table: table, destination: IPPrefix(dst)!, source: source.map { IPPrefix($0)! }, tos: tos,
        metric: metric
    ).key
}

@Suite("Route.Key order")
struct RouteKeyTests {
    static let keys: [Route.Key] = [
        key("10.0.0.0/24"),
        key("10.0.0.0/24", source: "10.1.0.0/24"),
        key("10.0.0.0/24", source: "10.1.0.0/16"),
        key("10.0.0.0/24", source: "10.2.0.0/24"),
        key("10.0.0.0/24", tos: 4),
        key("10.0.0.0/24", metric: 100),
        key("10.0.0.0/24", table: 1001),
        key("10.0.0.0/16"),
        key("2001:db8::/64", family: .inet6),
        key("2001:db8::/64", source: "2001:db8:1::/64", family: .inet6),
    ]

    @Test("exactly one of a < b, b < a, a == b", arguments: keys.indices)
    func trichotomy(i: Int) {
        let a = Self.keys[i]
        for b in Self.keys {
            let outcomes = [a < b, b < a, a == b].filter { $0 }
            #expect(outcomes.count == 1, "\(a) vs \(b)")
        }
    }

    @Test("keys that differ only in their source sort apart, the one without a source first")
    func source() {
        let plain = key("0.0.0.0/0")
        let sourced = key("0.0.0.0/0", source: "10.1.0.0/24")
        #expect(plain != sourced)
        #expect(plain < sourced)
        #expect(!(sourced < plain))
        #expect([sourced, plain].sorted() == [plain, sourced])
    }
}
