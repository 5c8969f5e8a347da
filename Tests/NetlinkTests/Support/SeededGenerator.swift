import NicrouteCore

/// A deterministic random number generator (SplitMix64), so that every property test replays
/// the same inputs on every run and a failure names the seed that reproduces it.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    mutating func bool() -> Bool { next() & 1 == 1 }

    /// `value()` half of the time, nil otherwise.
    mutating func maybe<T>(_ value: (inout SeededGenerator) -> T) -> T? { bool() ? value(&self) : nil }

    mutating func bytes(count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) } }
}

/// Random routes and rules that the codec must carry unchanged.
///
/// They are "canonical" in the two ways the wire format cannot express otherwise: a zero-length
/// prefix is sent as no attribute at all (so it decodes as `nil` or the default route), and only
/// `RTNH_F_ONLINK` of a route's flags is sent.
enum ModelGenerator {
    static func address(_ family: AddressFamily, _ rng: inout SeededGenerator) -> IPAddress {
        family == .inet
            ? IPAddress(v4: UInt32.random(in: 0...UInt32.max, using: &rng)) : IPAddress(v6: rng.next(), rng.next())
    }

    /// A prefix of length 1 ... width.
    static func prefix(_ family: AddressFamily, _ rng: inout SeededGenerator) -> IPPrefix {
        IPPrefix(address(family, &rng), length: UInt8.random(in: 1...family.bitWidth, using: &rng))!
    }

    static func table(_ rng: inout SeededGenerator) -> UInt32 {
        let interesting: [UInt32] = [0, 1, 253, 254, 255, 256, 1000, 65535, 65536, UInt32.max]
        return rng.bool() ? interesting.randomElement(using: &rng)! : UInt32.random(in: 0...UInt32.max, using: &rng)
    }

    static func interfaceName(_ rng: inout SeededGenerator) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789-_.:@")
        return String((0..<Int.random(in: 1...15, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! })
    }

    static func route(_ rng: inout SeededGenerator) -> Route {
        let family: AddressFamily = rng.bool() ? .inet : .inet6
        return Route(
            family: family,
            table: table(&rng),
            destination: rng.bool() ? .any(family) : prefix(family, &rng),
            source: rng.maybe { prefix(family, &$0) },
            tos: UInt8.random(in: 0...255, using: &rng),
            proto: RouteProtocol(rawValue: UInt8.random(in: 0...255, using: &rng)),
            scope: Scope(rawValue: UInt8.random(in: 0...255, using: &rng)),
            type: RouteType(rawValue: UInt8.random(in: 0...255, using: &rng)),
            flags: rng.bool() ? Route.onlinkFlag : 0,
            gateway: rng.maybe { address(family, &$0) },
            outputInterface: rng.maybe { Int32.random(in: Int32.min...Int32.max, using: &$0) },
            preferredSource: rng.maybe { address(family, &$0) },
            metric: rng.maybe { UInt32.random(in: 0...UInt32.max, using: &$0) }
        )
    }

    static func rule(_ rng: inout SeededGenerator) -> Rule {
        let family: AddressFamily = rng.bool() ? .inet : .inet6
        return Rule(
            family: family,
            priority: rng.maybe { UInt32.random(in: 0...UInt32.max, using: &$0) },
            table: table(&rng),
            source: rng.maybe { prefix(family, &$0) },
            destination: rng.maybe { prefix(family, &$0) },
            inputInterface: rng.maybe { interfaceName(&$0) },
            outputInterface: rng.maybe { interfaceName(&$0) },
            firewallMark: rng.maybe { UInt32.random(in: 0...UInt32.max, using: &$0) },
            firewallMask: rng.maybe { UInt32.random(in: 0...UInt32.max, using: &$0) },
            // UInt32.max is how the kernel spells "unset" (-1), so it decodes as nil.
            suppressPrefixLength: rng.maybe { UInt32.random(in: 0..<UInt32.max, using: &$0) },
            proto: RouteProtocol(rawValue: UInt8.random(in: 0...255, using: &rng)),
            action: RuleAction(rawValue: UInt8.random(in: 0...255, using: &rng)),
            tos: UInt8.random(in: 0...255, using: &rng),
            invert: rng.bool()
        )
    }
}
