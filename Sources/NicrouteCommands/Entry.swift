// The two tools' entry points, shared by the development executables (nicrouted, nicroutectl:
// one tool each) and by the release build's one binary (nicroute-multicall), which holds both
// and is installed once as /usr/bin/nicrouted with /usr/bin/nicroutectl a symlink to it: the
// Swift runtime and the libraries, linked in statically, are most of each tool's bytes.
import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

public enum NicrouteCommands {
    /// The daemon: `nicrouted [options]`.
    public static func nicrouted() { Nicrouted.main() }

    /// The command-line tool: `nicroutectl [options] [command]`.
    public static func nicroutectl() { Nicroutectl.main() }

    /// Runs the tool named by the last component of argv[0] (busybox's way); under any other
    /// name, a usage error (exit 2) that names the two.
    public static func multicall() {
        guard let argv0 = CommandLine.arguments.first else {
            // Without /proc (a chroot), Swift's `CommandLine.arguments` comes back empty.
            let message = "nicroute: cannot read the command line (is /proc mounted?); not starting\n"
            _ = message.withCString { write(2, $0, strlen($0)) }
            exit(2)
        }
        switch basename(argv0) {
        case "nicrouted": nicrouted()
        case "nicroutectl": nicroutectl()
        default: Multicall.main()
        }
    }

    static func basename(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }
}

/// The multi-call binary run under a name of its own: `--help` (and swift-argument-parser's
/// `--experimental-dump-help`, which its generate-manual plugin runs on every executable) say
/// what it is; anything else is a usage error.
struct Multicall: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nicroute-multicall",
        abstract: "nicrouted and nicroutectl in one binary, chosen by the name it is run under.",
        discussion: """
            Installed as /usr/bin/nicrouted, with /usr/bin/nicroutectl a symlink to it. Run under any \
            other name it does nothing but say so.
            """,
        version: "0.1.0")

    func run() throws { throw ValidationError("") }

    /// Anything but `--help`, `--version` and the like: a usage error (exit 2, as nicroutectl's)
    /// that names the two tools.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            if exitCode(for: error) == .validationFailure {
                let name = NicrouteCommands.basename(CommandLine.arguments.first ?? "")
                let message = """
                    \(name): run as '\(name)', which is neither of the tools this binary holds: run it as \
                    nicrouted (the daemon) or nicroutectl (the command-line tool), e.g. through the symlink \
                    /usr/bin/nicroutectl -> nicrouted

                    """
                _ = message.withCString { write(2, $0, strlen($0)) }
                Glibc.exit(2)
            }
            exit(withError: error)
        }
    }
}
