import NicrouteCore

extension ApplyOutput {
    /// The `reconfigure` answer for a reconcile pass: its changes as `ip` commands.
    public init(report: Reconciler.Report) {
        let names = Dictionary(report.snapshot.links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        self.init(
            applied: report.applied.map { $0.ipCommand(linkName: { names[$0] }) },
            failed: report.failed.map { "\($0.change.ipCommand(linkName: { names[$0] })): \($0.error)" },
            nics: report.plan.nics.count)
    }
}
