import SystemPackage

#if canImport(Glibc)
import Glibc
#endif

/// Runs a system call, retrying on EINTR; throws a `NetlinkError` naming `operation` and errno.
///
/// The one place where the Netlink module turns a -1 return into an error (as swift-nio's
/// `syscall(blocking:where:)` and swift-system's `valueOrErrno` do).
@discardableResult
@inline(__always)
func syscall<T: FixedWidthInteger>(_ operation: @autoclosure () -> String, _ body: () -> T) throws -> T {
    while true {
        let result = body()
        if result == -1 {
            let code = Glibc.errno
            if code == EINTR { continue }
            throw NetlinkError(operation: operation(), errno: Errno(rawValue: code))
        }
        return result
    }
}

/// Runs a system call again while it is interrupted by a signal (-1 with EINTR); returns its
/// last result, with `errno` as that call left it. For the callers that handle -1 themselves
/// (EAGAIN on a non-blocking socket is no error there); the others use `syscall`.
@inline(__always)
public func retryingInterrupts<T: FixedWidthInteger>(_ body: () -> T) -> T {
    while true {
        let result = body()
        if result == -1 && Glibc.errno == EINTR { continue }
        return result
    }
}
