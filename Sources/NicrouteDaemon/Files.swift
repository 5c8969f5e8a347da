import Netlink

#if canImport(Glibc)
import Glibc
#endif

/// Small file helpers over POSIX calls (the daemon avoids Foundation to stay small).
enum Files {
    /// The whole content of a file, or nil when it cannot be read. At most `limit` bytes are
    /// read: lease files and configuration are small, and a huge file is not ours.
    static func read(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while out.count < limit {
            let n = retryingInterrupts { chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) } }
            if n <= 0 { break }
            out += chunk[0..<n]
        }
        return out
    }

    static func readText(_ path: String) -> String? {
        read(path).map { String(decoding: $0, as: UTF8.self) }
    }

    /// True when `path` exists.
    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// The names in a directory, sorted; empty when it cannot be read.
    static func list(_ directory: String) -> [String] { listing(directory) ?? [] }

    /// The names in a directory, sorted; empty when it does not exist, nil when it exists but
    /// cannot be listed (its files may still be readable by name).
    static func listing(_ directory: String) -> [String]? {
        guard let dir = opendir(directory) else { return errno == ENOENT || errno == ENOTDIR ? [] : nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Creates a directory and its parents (mode 0755).
    static func makeDirectories(_ path: String) throws(FileError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw FileError(path: current, operation: "mkdir", errno: errno)
            }
        }
    }

    /// Writes `text` to `path` atomically: a temporary file in the same directory, fsync,
    /// rename, fsync of the directory. A crash leaves the old or the new content, never a torn
    /// file, and once this returns the new content survives a power loss.
    static func writeAtomically(_ text: String, to path: String) throws(FileError) {
        let temp = path + ".tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileError(path: temp, operation: "open", errno: errno) }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = retryingInterrupts { bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
            if n <= 0 {
                let e = n < 0 ? errno : EIO
                close(fd)
                unlink(temp)
                throw FileError(path: temp, operation: "write", errno: e)
            }
            written += n
        }
        // On disk before it replaces the old file: a crash after the rename finds the new
        // content whole, never an empty file (ext4 and xfs may reorder the two otherwise).
        guard retryingInterrupts({ fsync(fd) }) == 0 else {
            let e = errno
            close(fd)
            unlink(temp)
            throw FileError(path: temp, operation: "fsync", errno: e)
        }
        close(fd)
        guard rename(temp, path) == 0 else {
            let e = errno
            unlink(temp)
            throw FileError(path: path, operation: "rename", errno: e)
        }
        // The rename is a change of the directory: without this a power loss may undo it and
        // bring the old content back.
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let dfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 {
            fsync(dfd)
            close(dfd)
        }
    }
}

/// A file operation that failed.
public struct FileError: Error, CustomStringConvertible {
    public var path: String
    public var operation: String
    public var errno: Int32
    public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
}

/// Writing to stderr without Foundation.
public enum FileHandleLite {
    public static func writeStderr(_ s: String) {
        var bytes = Array(s.utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }
}
