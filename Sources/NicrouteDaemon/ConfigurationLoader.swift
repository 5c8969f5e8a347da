import NicrouteCore

/// Reads the configuration file and its drop-ins from disk; parsing is NicrouteCore's.
public struct ConfigurationLoader: Sendable {
    /// The default main file.
    public static let defaultPath = "/etc/nicroute/nicroute.conf"

    public var path: String
    /// Whether a missing main file is an error (true when the path was given explicitly).
    public var required: Bool
    /// Interface patterns from the command line that replace `[Interfaces] Manage=`.
    public var manageOverride: [InterfaceMatch]?

    public init(path: String?, manageOverride: [InterfaceMatch]? = nil) {
        self.path = path ?? Self.defaultPath
        required = path != nil
        self.manageOverride = manageOverride
    }

    /// The drop-in directory: `PATH.d/`, whose `*.conf` files apply in lexical order.
    public var dropInDirectory: String { path + ".d" }

    /// The files that make up the configuration, in the order they apply.
    public func files() throws(ConfigurationError) -> [(path: String, text: String)] {
        var out: [(path: String, text: String)] = []
        if let text = Files.readText(path) {
            out.append((path, text))
        } else if required || Files.exists(path) {
            throw ConfigurationError(file: path, line: 0, reason: "cannot read the file")
        }
        for name in Files.list(dropInDirectory) where name.hasSuffix(".conf") {
            let p = dropInDirectory + "/" + name
            guard let text = Files.readText(p) else {
                throw ConfigurationError(file: p, line: 0, reason: "cannot read the file")
            }
            out.append((p, text))
        }
        return out
    }

    /// Loads and validates the whole configuration.
    /// - Throws: `ConfigurationError` with file, line and reason.
    public func load() throws(ConfigurationError) -> Configuration {
        var configuration = try ConfigurationParser.load(try files())
        if let manageOverride { configuration.manage = manageOverride }
        return configuration
    }
}

extension ConfigurationLoader {
    /// A loader from the command-line spelling: `--config PATH` and `--manage 'eth*,ens5'`.
    public init(configPath: String?, manage: [String]) {
        let matches = manage.flatMap { ConfigurationParser.parseManageList($0) }
        self.init(path: configPath, manageOverride: matches.isEmpty ? nil : matches)
    }
}
