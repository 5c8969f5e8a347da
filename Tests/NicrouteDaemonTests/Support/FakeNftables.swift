import NicrouteCore

@testable import NicrouteDaemon

/// nftables in memory: nicroute's table as a script's definition, listed back as the kernel
/// would (here: the definition itself). Records every script it was given.
final class FakeNftables: Nftables {
    /// The table in "the kernel", as its listing; nil when absent.
    var table: String?
    /// Why the library cannot be loaded; nil when it can.
    var libraryProblem: String?
    /// When set, scripts that replace the table fail with this error.
    var replaceError: String?
    /// Every script run, in order.
    private(set) var scripts: [String] = []

    func run(_ script: String) -> (status: Int32, output: String, error: String) {
        scripts.append(script)
        if libraryProblem != nil { return (-2, "", "no library") }
        if script == Forwarder.listScript {
            return table.map { (0, $0, "") } ?? (1, "", "Error: No such file or directory")
        }
        if script == ForwardRuleset.deleteScript {
            defer { table = nil }
            return table == nil ? (1, "", "Error: No such file or directory") : (0, "", "")
        }
        if let replaceError { return (1, "", replaceError) }
        // `add table; delete table; <definition>`: the definition is what is listed.
        let lines = script.split(separator: "\n", omittingEmptySubsequences: false)
        table = lines.dropFirst(2).joined(separator: "\n")
        return (0, "", "")
    }

    /// The scripts run since `count` (`scripts.count` taken earlier).
    func scripts(since count: Int) -> [String] { Array(scripts[count...]) }
}
