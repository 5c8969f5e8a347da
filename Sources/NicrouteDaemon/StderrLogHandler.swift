import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A swift-log handler for stderr when no journal listens: one line per entry,
/// `TIME LEVEL LABEL: MESSAGE [key=value ...]`, saying each thing once.
///
/// The structured fields exist for the journal (`JournalLogHandler`); on a terminal, a field whose
/// value is the message itself or one of its words (a change's `command`, `link`, `table`,
/// `action`, all spelled out in its `ip` command) would only repeat it, and is left out. The
/// others follow the message as `key=value`, sorted by key.
public struct StderrLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// The line for one entry, without the time stamp.
    static func format(
        level: Logger.Level, label: String, message: String, metadata: Logger.Metadata
    ) -> String {
        let words = Set(message.split(separator: " ").map(String.init))
        var line = "\(level) \(label): \(message)"
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            let text = "\(value)"
            if text == message || words.contains(text) { continue }
            line += " \(key)=\(text)"
        }
        return line
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let line =
            Self.timestamp() + " "
            + Self.format(level: event.level, label: label, message: "\(event.message)", metadata: merged) + "\n"
        FileHandleLite.writeStderr(line)
    }

    /// Local time as `2026-12-06T09:53:51+0000`.
    static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [CChar](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
