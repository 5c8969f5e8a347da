import Foundation
import NicrouteCore
import Testing

@testable import NicrouteDaemon

#if canImport(Glibc)
import Glibc
#endif

/// The Forwarder over nftables in memory (`FakeNftables`) and a scratch state directory: the
/// table installed, adopted, healed, removed; the state it reports; records a flush needs,
/// kept and retried when they cannot be written. Without root, never the machine's nftables.
@Suite struct ForwarderTests {
    static let nics = [
        ForwardedNIC(name: "eth0", mark: 0x10, table: 10000), ForwardedNIC(name: "eth1", mark: 0x1000, table: 10001),
    ]
    static let mask = ForwardMarks.defaultMask

    static func forwarder(_ tree: ScratchTree, _ nft: FakeNftables) -> Forwarder {
        Forwarder(stateDirectory: tree.root + "/state", root: tree.root, nftables: nft)
    }

    static func wanted() -> Configuration {
        var c = Configuration()
        c.forwardedConnections = .yes
        return c
    }

    @Test func installsAdoptsAndHeals() throws {
        let tree = try ScratchTree()
        let nft = FakeNftables()
        let f = Self.forwarder(tree, nft)
        #expect(f.state == .off(.notCheckedYet))
        #expect(f.decide(Self.wanted()))
        #expect(f.apply(Self.nics, mask: Self.mask) == ["nft: replace table inet nicroute (2 NIC(s))"])
        #expect(f.state == .installed)
        #expect(nft.table == ForwardRuleset.definition(nics: Self.nics, mask: Self.mask))
        #expect(FileManager.default.fileExists(atPath: f.tableFile))

        // Changes announced and none since the install's own listing: the next pass does not
        // even list the table.
        f.changesAnnounced = true
        var seen = nft.scripts.count
        #expect(f.apply(Self.nics, mask: Self.mask).isEmpty)
        #expect(nft.scripts(since: seen).isEmpty)
        // Without the announcements, every pass lists it.
        f.changesAnnounced = false
        #expect(f.apply(Self.nics, mask: Self.mask).isEmpty)
        #expect(nft.scripts(since: seen) == [Forwarder.listScript])
        f.changesAnnounced = true

        // Another tool deletes it and nftables says so: listed, found missing, put back.
        nft.table = nil
        f.nftablesChanged()
        #expect(f.apply(Self.nics, mask: Self.mask) == ["nft: replace table inet nicroute (2 NIC(s))"])
        #expect(nft.table != nil && f.state == .installed)

        // A restart adopts the table in place: listed, not replaced.
        let g = Self.forwarder(tree, nft)
        #expect(g.decide(Self.wanted()))
        seen = nft.scripts.count
        #expect(g.apply(Self.nics, mask: Self.mask).isEmpty)
        #expect(nft.scripts(since: seen) == [Forwarder.listScript])
        #expect(g.state == .installed)

        // Another set of NICs: replaced.
        #expect(g.apply(Array(Self.nics.prefix(1)), mask: Self.mask).count == 1)
    }

    @Test func withoutTheLibraryOrWhenTheTransactionFails() throws {
        let tree = try ScratchTree()
        let nft = FakeNftables()
        nft.libraryProblem = "libnftables.so.1: cannot open shared object file"
        let f = Self.forwarder(tree, nft)
        #expect(!f.decide(Self.wanted()))
        #expect(f.state == .unavailable(.noLibrary("libnftables.so.1: cannot open shared object file")))
        #expect(f.state.reason.hasPrefix("libnftables is not available"))

        nft.libraryProblem = nil
        #expect(f.decide(Self.wanted()))
        #expect(f.state == .off(.notCheckedYet))
        nft.replaceError = "Error: Could not process rule: Operation not supported"
        #expect(f.apply(Self.nics, mask: Self.mask).isEmpty)
        #expect(f.state == .unavailable(.installFailed("Error: Could not process rule: Operation not supported")))
        nft.replaceError = nil
        #expect(f.apply(Self.nics, mask: Self.mask).count == 1)
        #expect(f.state == .installed)

        var c = Configuration()
        c.forwardedConnections = .no
        #expect(!f.decide(c))
        #expect(f.state == .off(.configuredOff))
        #expect(f.apply(nil, mask: Self.mask) == ["nft delete table inet nicroute"])
        #expect(nft.table == nil)
        #expect(!FileManager.default.fileExists(atPath: f.tableFile))
    }

    /// status and plan look without changing what the next pass does.
    @Test func queriesChangeNothing() throws {
        let tree = try ScratchTree()
        let nft = FakeNftables()
        let f = Self.forwarder(tree, nft)
        nft.libraryProblem = "gone"
        #expect(!f.wouldHandle(Self.wanted()))
        #expect(f.observe(Self.wanted()) == .unavailable(.noLibrary("gone")))
        #expect(f.state == .off(.notCheckedYet))
        nft.libraryProblem = nil
        #expect(f.decide(Self.wanted()))
        _ = f.apply(Self.nics, mask: Self.mask)
        nft.table = nil
        #expect(f.observe(Self.wanted()) == .unavailable(.notInPlace))
        #expect(f.state == .installed)  // what the last pass left; the next pass heals it
        var c = Configuration()
        c.forwardedConnections = .no
        #expect(!f.wouldHandle(c))
        #expect(f.state == .installed)
    }

    /// A record a later restart or flush needs that cannot be written (the state directory
    /// unwritable) is kept in memory, reported, and written at the next pass once it can be.
    @Test func recordsThatCannotBeWrittenAreKeptAndRetried() throws {
        let tree = try ScratchTree()
        // The state directory is a file: nothing can be written under it.
        try tree.write("state", "not a directory\n")
        for nic in ["eth0", "eth1"] { try tree.write("proc/sys/net/ipv4/conf/\(nic)/src_valid_mark", "0\n") }
        let nft = FakeNftables()
        let f = Self.forwarder(tree, nft)
        #expect(f.decide(Self.wanted()))
        let done = f.apply(Self.nics, mask: Self.mask)
        #expect(done.contains("nft: replace table inet nicroute (2 NIC(s))"))
        #expect(done.contains("sysctl net.ipv4.conf.eth1.src_valid_mark=1"))
        #expect(f.state == .installed)
        #expect(f.fileProblems.count == 2)
        #expect(f.fileProblems.allSatisfy { $0.description.contains("Not a directory") || $0.description.contains("File exists") })

        // What flush must put back is still known: restored from memory.
        try FileManager.default.removeItem(atPath: tree.root + "/state")
        #expect(f.apply(Self.nics, mask: Self.mask).isEmpty)  // the pending records written
        #expect(f.fileProblems.isEmpty)
        #expect(try String(contentsOfFile: f.markFile, encoding: .utf8) == "eth0\neth1\n")
        // ... and a restart finds them.
        let g = Self.forwarder(tree, nft)
        #expect(g.restoreSourceValidMark().count == 2)
    }
}

/// `ForwardTableKeeper`'s decisions, as a value.
@Suite struct ForwardTableKeeperTests {
    @Test(
        arguments: [
            (ForwardingMode.yes, false, false, nil), (.no, true, true, .configuredOff),
            (.auto, false, false, .notForwarding), (.auto, true, false, nil), (.auto, false, true, nil),
        ] as [(ForwardingMode, Bool, Bool, ForwardingState.Off?)])
    func wantedFollowsModeAndForwarding(mode: ForwardingMode, v4: Bool, v6: Bool, unwanted: ForwardingState.Off?) {
        #expect(ForwardTableKeeper.unwanted(mode, ipv4Forwarding: v4, ipv6Forwarding: v6) == unwanted)
    }

    @Test func listsOnlyWhenItMayHaveChanged() {
        var k = ForwardTableKeeper()
        #expect(k.mustList("s"))
        do { let r = k.listed(nil, wanting: "s"); #expect(r) }  // nothing there: replace
        k.replaced("s", listing: "L")
        #expect(k.mustList("s"))  // changes not announced: always list
        k.changesAnnounced = true
        #expect(!k.mustList("s"))  // listed by the install, nothing announced since
        do { let r = k.listed("L", wanting: "s"); #expect(!r) }
        #expect(!k.mustList("s"))
        #expect(k.mustList("other"))
        k.nftablesChanged()
        #expect(k.mustList("s"))
        do { let r = k.listed("L2", wanting: "s"); #expect(r) }  // changed by someone: replace
        do { let r = k.listed("L", wanting: "other"); #expect(r) }  // another script: replace
        do { let r = k.removed(); #expect(r) }
        do { let r = k.removed(); #expect(!r) }
        #expect(k.state == .off(.removed))
    }

    @Test func adoptedTableIsLeftAloneWhenTheKernelListsIt() {
        var k = ForwardTableKeeper(adopting: (script: "s", listing: "L"))
        do { let r = k.decide(unwanted: nil, libraryProblem: nil); #expect(r) }
        #expect(k.mustList("s"))
        do { let r = k.listed("L", wanting: "s"); #expect(!r) }
        #expect(k.state == .installed)
        #expect(k.observed(nil) == .unavailable(.notInPlace))
        #expect(k.observed("L") == .installed)
        #expect(k.state == .installed)
    }
}
