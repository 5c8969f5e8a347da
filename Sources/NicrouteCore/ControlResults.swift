// The results of the control commands: what the daemon sends as a response's `result`, and
// what `nicroutectl` decodes from it, exactly (an unknown key, a missing one or one of the wrong
// type is an error naming its path), through the command's `ControlCall`. `status` answers with
// a `StatusReport` (StatusReport.swift); the others' are here. Their JSON form is documented in
// docs/control-protocol.md.

/// A control command's result, as the daemon sends it in a response's `result` and
/// `nicroutectl` reads it back.
public protocol ControlOutput: Codable, Sendable {}

extension ControlOutput {
    /// The answer as a response's `result` (`ControlResponse.success`), sent as JSON.
    public var json: ControlResult { ControlResult(self) }
}

extension ControlCall where Output == StatusReport {
    /// Managed NICs, gateways, tables, rules, findings.
    public static var status: Self { Self(.status) }
}

extension ControlCall where Output == PlanOutput {
    /// The changes a reconcile would make, as `ip` commands.
    public static var plan: Self { Self(.plan) }
}

extension ControlCall where Output == ApplyOutput {
    /// Reload the configuration and reconcile now.
    public static var reconfigure: Self { Self(.reconfigure) }
}

extension ControlCall where Output == FlushOutput {
    /// Remove everything nicroute owns and pause until the next reconfigure.
    public static var flush: Self { Self(.flush) }
}

extension StatusReport: ControlOutput {}

/// The `plan` answer: the changes as `ip` commands, and what is left alone.
public struct PlanOutput: Hashable, Sendable {
    public var changes: [String]
    public var conflicts: [String]

    public init(changes: [String], conflicts: [String]) {
        self.changes = changes
        self.conflicts = conflicts
    }

    public init(plan: Plan, snapshot: KernelSnapshot) {
        let names = Dictionary(snapshot.links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        changes = plan.changes.map { $0.ipCommand(linkName: { names[$0] }) }
        conflicts = plan.conflicts
    }
}

extension PlanOutput: ControlOutput {
    private enum CodingKeys: String, CodingKey {
        case changes, conflicts
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        changes = try c.decode([String].self, forKey: .changes)
        conflicts = try c.decode([String].self, forKey: .conflicts)
    }
}

/// The `reconfigure` answer: what was applied and what failed.
public struct ApplyOutput: Hashable, Sendable {
    public var applied: [String]
    public var failed: [String]
    public var nics: Int

    public init(applied: [String], failed: [String], nics: Int) {
        self.applied = applied
        self.failed = failed
        self.nics = nics
    }
}

extension ApplyOutput: ControlOutput {
    private enum CodingKeys: String, CodingKey {
        case applied, failed, nics
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        applied = try c.decode([String].self, forKey: .applied)
        failed = try c.decode([String].self, forKey: .failed)
        nics = Int(try c.decodeInteger(UInt32.self, forKey: .nics))
    }
}

/// The `flush` answer: what was removed, as `ip` commands.
public struct FlushOutput: Hashable, Sendable {
    public var removed: [String]
    /// What could not be put back (a `src_valid_mark` under a read-only /proc/sys): the record
    /// is kept for the next flush, and `nicroutectl flush` exits 1 naming each.
    public var problems: [String]

    public init(removed: [String], problems: [String] = []) {
        self.removed = removed
        self.problems = problems
    }
}

extension FlushOutput: ControlOutput {
    private enum CodingKeys: String, CodingKey {
        case removed, problems
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let container = try decoder.container(keyedBy: CodingKeys.self)
        removed = try container.decode([String].self, forKey: .removed)
        // Absent from the answers of daemons before the field existed: none reported.
        problems = try container.decodeIfPresent([String].self, forKey: .problems) ?? []
    }
}
