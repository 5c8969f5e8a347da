import CSystemd
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A swift-log handler that writes structured entries to the systemd journal through
/// `sd_journal_sendv`.
///
/// Fields: `MESSAGE`, `PRIORITY` (syslog level), `CODE_FILE`/`CODE_LINE`/`CODE_FUNC`,
/// `SYSLOG_IDENTIFIER`, and every metadata key as `NICROUTE_<KEY>` (upper-cased, non
/// alphanumerics as `_`): `link` -> `NICROUTE_LINK`, `table` -> `NICROUTE_TABLE`, `action` ->
/// `NICROUTE_ACTION`, `command` (the equivalent `ip` command) -> `NICROUTE_COMMAND`.
public struct JournalLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    public let identifier: String

    public init(identifier: String) { self.identifier = identifier }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// True when stderr is connected to the journal: systemd sets `JOURNAL_STREAM` to the
    /// `device:inode` of the stream it gave the service (systemd.exec(5)).
    public static var stderrIsJournal: Bool {
        guard let value = getenv("JOURNAL_STREAM").map({ String(cString: $0) }) else { return false }
        var st = stat()
        guard fstat(2, &st) == 0 else { return false }
        return value == "\(st.st_dev):\(st.st_ino)"
    }

    /// The syslog priority of a swift-log level.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// `link.name` -> `NICROUTE_LINK_NAME`.
    static func fieldName(_ key: String) -> String {
        "NICROUTE_"
            + String(
                key.uppercased().unicodeScalars.map {
                    ($0.properties.isAlphabetic && $0.isASCII) || ("0"..."9").contains($0) ? Character($0) : "_"
                })
    }

    public func log(event: LogEvent) {
        var fields = [
            "MESSAGE=\(event.message)",
            "PRIORITY=\(Self.priority(event.level))",
            "CODE_FILE=\(event.file)",
            "CODE_LINE=\(event.line)",
            "CODE_FUNC=\(event.function)",
            "SYSLOG_IDENTIFIER=\(identifier)",
        ]
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            fields.append("\(Self.fieldName(key))=\(value)")
        }
        Self.send(fields)
    }

    /// Sends one entry; returns sd_journal_sendv's result (0, or a negative errno).
    @discardableResult
    static func send(_ fields: [String]) -> Int32 {
        var buffers = fields.map { Array($0.utf8) }
        return buffers.withUnsafeMutableBufferPointer { bufs -> Int32 in
            var iovecs = [iovec]()
            iovecs.reserveCapacity(bufs.count)
            for i in bufs.indices {
                bufs[i].withUnsafeMutableBytes { raw in
                    iovecs.append(iovec(iov_base: raw.baseAddress, iov_len: raw.count))
                }
            }
            // The pointers stay valid: `bufs` is not mutated until this closure returns.
            return sd_journal_sendv(&iovecs, Int32(iovecs.count))
        }
    }
}
