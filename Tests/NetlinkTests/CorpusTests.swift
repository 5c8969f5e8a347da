import Foundation
import Netlink
import Testing

/// The fuzz target's seed corpus (Tests/Fuzz/netlink-corpus) holds only well-formed datagrams:
/// the kernel's own (captured by `KernelTests.kernelDatagrams` with NETLINK_CORPUS_DIR set) and
/// our requests. Each must split and decode without an error.
@Suite("Seed corpus")
struct CorpusTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fuzz/netlink-corpus")

    static var files: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
    }

    @Test func corpusIsSmall() throws {
        let sizes = try Self.files.map { try Data(contentsOf: Self.directory.appendingPathComponent($0)).count }
        #expect(sizes.count >= 12)
        #expect(sizes.reduce(0, +) < 100 * 1024)
    }

    @Test(arguments: files)
    func decodes(_ file: String) throws {
        let bytes = [UInt8](try Data(contentsOf: Self.directory.appendingPathComponent(file)))
        let messages = try NetlinkMessage.split(bytes)
        #expect(!messages.isEmpty)
        for message in messages {
            if message.header.type == MessageType.error {
                _ = try RouteCodec.decodeError(message)
            } else {
                _ = try RouteCodec.decode(message)
            }
        }
    }
}
