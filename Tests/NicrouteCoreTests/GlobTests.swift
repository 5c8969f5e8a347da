import NicrouteCore
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `Glob.matches` must agree with `fnmatch(3)` without flags, which is what an operator who
/// writes `Manage=eth*` expects from systemd's `Name=` and from the shell.
@Suite struct GlobTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var pattern: String
        var text: String
        var matches: Bool
        var testDescription: String { "'\(pattern)' ~ '\(text)' -> \(matches)" }
    }

    static let cases: [Case] = [
        // Literals.
        Case(pattern: "eth0", text: "eth0", matches: true),
        Case(pattern: "eth0", text: "eth1", matches: false),
        Case(pattern: "eth0", text: "eth00", matches: false),
        Case(pattern: "eth00", text: "eth0", matches: false),
        Case(pattern: "", text: "", matches: true),
        Case(pattern: "", text: "a", matches: false),
        Case(pattern: "a", text: "", matches: false),
        Case(pattern: "ETH0", text: "eth0", matches: false),
        // Star.
        Case(pattern: "*", text: "", matches: true),
        Case(pattern: "*", text: "eth0", matches: true),
        Case(pattern: "eth*", text: "eth", matches: true),
        Case(pattern: "eth*", text: "eth12", matches: true),
        Case(pattern: "eth*", text: "ens5", matches: false),
        Case(pattern: "*0", text: "eth0", matches: true),
        Case(pattern: "*0", text: "eth01", matches: false),
        Case(pattern: "e*h*0", text: "eth0", matches: true),
        Case(pattern: "e*h*0", text: "ehhh0", matches: true),
        Case(pattern: "e*h*0", text: "eth01", matches: false),
        Case(pattern: "**", text: "x", matches: true),
        Case(pattern: "a*b*c", text: "abbbcbc", matches: true),
        Case(pattern: "a*b*c", text: "abbbcbd", matches: false),
        Case(pattern: "*a*a*a*b", text: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaac", matches: false),
        Case(pattern: "*/*", text: "a/b", matches: true),
        Case(pattern: "*", text: ".hidden", matches: true),
        // Question mark.
        Case(pattern: "eth?", text: "eth0", matches: true),
        Case(pattern: "eth?", text: "eth", matches: false),
        Case(pattern: "eth?", text: "eth10", matches: false),
        Case(pattern: "??", text: "ab", matches: true),
        Case(pattern: "?*", text: "", matches: false),
        Case(pattern: "?", text: "/", matches: true),
        // Bracket expressions.
        Case(pattern: "eth[01]", text: "eth0", matches: true),
        Case(pattern: "eth[01]", text: "eth2", matches: false),
        Case(pattern: "eth[0-3]", text: "eth3", matches: true),
        Case(pattern: "eth[0-3]", text: "eth4", matches: false),
        Case(pattern: "eth[!0-3]", text: "eth4", matches: true),
        Case(pattern: "eth[!0-3]", text: "eth2", matches: false),
        Case(pattern: "eth[^0-3]", text: "eth4", matches: true),
        Case(pattern: "eth[^0-3]", text: "eth0", matches: false),
        Case(pattern: "[a-cx-z]", text: "y", matches: true),
        Case(pattern: "[a-cx-z]", text: "m", matches: false),
        Case(pattern: "[]]", text: "]", matches: true),
        Case(pattern: "[]a]", text: "a", matches: true),
        Case(pattern: "[!]]", text: "]", matches: false),
        Case(pattern: "[!]]", text: "a", matches: true),
        Case(pattern: "[a-]", text: "-", matches: true),
        Case(pattern: "[-a]", text: "-", matches: true),
        Case(pattern: "[z-a]", text: "m", matches: false),
        Case(pattern: "[[]", text: "[", matches: true),
        Case(pattern: "[*]", text: "*", matches: true),
        Case(pattern: "[*]", text: "a", matches: false),
        Case(pattern: "[?]", text: "a", matches: false),
        Case(pattern: "eth[0-9]*", text: "eth10", matches: true),
        Case(pattern: "*[0-9]", text: "ens5", matches: true),
        Case(pattern: "*[0-9]", text: "ens", matches: false),
        // Character classes, equivalence classes and collating symbols.
        Case(pattern: "eth[[:digit:]]", text: "eth7", matches: true),
        Case(pattern: "eth[[:digit:]]", text: "ethx", matches: false),
        Case(pattern: "[[:alpha:]]*", text: "ens5", matches: true),
        Case(pattern: "[[:alpha:]]*", text: "5ens", matches: false),
        Case(pattern: "[![:alnum:]]", text: "-", matches: true),
        Case(pattern: "[[:upper:][:digit:]]", text: "Q", matches: true),
        Case(pattern: "[[:xdigit:]]", text: "f", matches: true),
        Case(pattern: "[[:xdigit:]]", text: "g", matches: false),
        Case(pattern: "[[:space:]]", text: "\t", matches: true),
        Case(pattern: "[[:punct:]]", text: "_", matches: true),
        Case(pattern: "[[:nope:]]", text: "a", matches: false),
        Case(pattern: "[[:a]", text: ":", matches: true),
        Case(pattern: "[[=a=]]", text: "a", matches: true),
        Case(pattern: "[[=a=]b]", text: "b", matches: true),
        Case(pattern: "[[.-.]]", text: "-", matches: true),
        Case(pattern: "[[.a.]-c]", text: "b", matches: true),
        Case(pattern: "[[.ab.]]", text: "a", matches: false),
        // An unclosed bracket is a literal '['.
        Case(pattern: "[", text: "[", matches: true),
        Case(pattern: "[a", text: "[a", matches: true),
        Case(pattern: "[a", text: "a", matches: false),
        Case(pattern: "eth[0", text: "eth[0", matches: true),
        Case(pattern: "[!", text: "[!", matches: true),
        // Backslash escapes.
        Case(pattern: "\\*", text: "*", matches: true),
        Case(pattern: "\\*", text: "a", matches: false),
        Case(pattern: "\\?", text: "?", matches: true),
        Case(pattern: "\\[a]", text: "[a]", matches: true),
        Case(pattern: "\\a", text: "a", matches: true),
        Case(pattern: "a\\", text: "a\\", matches: false),
        Case(pattern: "\\", text: "\\", matches: false),
        Case(pattern: "\\\\", text: "\\", matches: true),
        Case(pattern: "[\\]]", text: "]", matches: true),
        Case(pattern: "[\\]]", text: "\\", matches: false),
        Case(pattern: "[\\!a]", text: "!", matches: true),
        Case(pattern: "[a\\-z]", text: "-", matches: true),
        Case(pattern: "[a\\-z]", text: "m", matches: false),
        Case(pattern: "*\\*", text: "abc*", matches: true),
        // Realistic interface names.
        Case(pattern: "en*", text: "enp0s3", matches: true),
        Case(pattern: "enp*s[0-9]", text: "enp0s3", matches: true),
        Case(pattern: "veth*", text: "veth1a2b3c", matches: true),
        Case(pattern: "docker*", text: "docker0", matches: true),
        Case(pattern: "br-*", text: "br-5f2a9c", matches: true),
        Case(pattern: "tap????????-??", text: "tap1a2b3c4d-5e", matches: true),
        Case(pattern: "eth0.*", text: "eth0.42", matches: true),
        Case(pattern: "eth0.*", text: "eth0", matches: false),
    ]

    @Test(arguments: cases)
    func matchesLikeTheTable(_ c: Case) {
        #expect(Glob.matches(c.pattern, c.text) == c.matches)
    }

    /// The table itself is checked against the C library, so that it states fnmatch's
    /// behaviour rather than our guess of it.
    @Test(arguments: cases)
    func tableAgreesWithFnmatch(_ c: Case) {
        #expect((fnmatch(c.pattern, c.text, 0) == 0) == c.matches)
    }

    /// Random patterns and names over a small alphabet, compared with fnmatch.
    @Test func randomPatternsAgreeWithFnmatch() {
        var random = SplitMix64(seed: 0x6E69_6372_6F75_7465)
        let patternAlphabet: [Character] = ["a", "b", "-", "*", "?", "[", "]", "!", "^", "\\", ":", ".", "="]
        let textAlphabet: [Character] = ["a", "b", "-", "[", "]", "!", "\\", "*", ":", "."]
        for _ in 0..<100_000 {
            let length = Int(random.next() % 9)
            let pattern = String((0..<length).map { _ in patternAlphabet.randomElement(using: &random)! })
            let text = String((0..<Int(random.next() % 6)).map { _ in textAlphabet.randomElement(using: &random)! })
            let expected = fnmatch(pattern, text, 0) == 0
            #expect(Glob.matches(pattern, text) == expected, "pattern '\(pattern)' text '\(text)'")
        }
    }

    /// Random patterns built from bracket-expression pieces (classes, equivalence classes,
    /// collating symbols, ranges), compared with fnmatch.
    @Test func randomBracketExpressionsAgreeWithFnmatch() {
        var random = SplitMix64(seed: 42)
        let pieces = [
            "[", "]", "[!", "[:digit:]", "[:alpha:]", "[:bogus:]", "[:", ":]", "[=a=]", "[=", "=]", "[.a.]",
            "[.-.]", "[.ab.]", ".]", "a", "1", "-", "\\", "*", "?", "z",
        ]
        let textAlphabet: [Character] = ["a", "1", "-", "[", "]", ":", "=", ".", "z", "\\"]
        for _ in 0..<100_000 {
            let pattern = (0..<Int(random.next() % 6)).map { _ in pieces.randomElement(using: &random)! }.joined()
            let text = String((0..<Int(random.next() % 4)).map { _ in textAlphabet.randomElement(using: &random)! })
            let expected = fnmatch(pattern, text, 0) == 0
            #expect(Glob.matches(pattern, text) == expected, "pattern '\(pattern)' text '\(text)'")
        }
    }
}

/// A small deterministic generator (SplitMix64), so that random tests repeat exactly.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
