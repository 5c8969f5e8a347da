import Logging
import Netlink
import NicrouteCore

/// One reconcile pass: read the kernel, plan, apply what the plan says, record the slots.
///
/// Used by the daemon loop and by `nicroutectl` in one-shot mode. Not thread-safe: one caller.
public final class Reconciler {
    public let client: RouteNetlink
    public private(set) var configuration: Configuration
    public let store: StateStore
    private var slots: SlotTable
    private var guardRail = ReinstallGuard()
    /// Identities of the objects the last pass left installed (to tell a re-install from a
    /// first install).
    private var installed: Set<String> = []
    private var lastProbe: [IPAddress: Double] = [:]
    let logger: Logger

    /// The outcome of a pass.
    public struct Report: Sendable {
        public var plan: Plan
        public var snapshot: KernelSnapshot
        public var applied: [Change] = []
        public var failed: [(change: Change, error: String)] = []
        /// Re-installs held back because another tool keeps deleting them.
        public var deferred: [Change] = []
        /// When the loop should run again by itself (a back-off or a probe retry), if ever.
        public var retryAt: Double?
    }

    public init(client: RouteNetlink, configuration: Configuration, store: StateStore, logger: Logger) {
        self.client = client
        self.configuration = configuration
        self.store = store
        self.logger = logger
        slots = store.loadSlots()
    }

    /// Replaces the configuration (after a successful reload).
    public func update(_ configuration: Configuration) { self.configuration = configuration }

    /// Reads the kernel and plans, without changing anything (`nicroutectl plan`).
    /// - Throws: `NetlinkError` when a dump fails.
    public func plan() throws -> Plan {
        try plan(from: try client.snapshot())
    }

    /// The planner for the current configuration.
    public var planner: Planner { Planner(configuration: configuration) }

    /// Plans from `snapshot` without changing anything.
    public func plan(from snapshot: KernelSnapshot) -> Plan {
        let hints = GatewayHintCollector(networkDataPaths: configuration.networkDataPaths).hints(for: snapshot.links)
        return planner.plan(snapshot: snapshot, slots: slots, hints: hints)
    }

    /// Runs one pass at time `now` (seconds on a monotonic clock).
    /// - Throws: `NetlinkError` only when the kernel cannot be read; failed changes are in the
    ///   report, and the others are still applied.
    public func reconcile(now: Double) throws -> Report {
        let snapshot = try client.snapshot()
        let plan = plan(from: snapshot)
        var report = Report(plan: plan, snapshot: snapshot)
        let names = Dictionary(snapshot.links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        for change in plan.changes {
            if change.isAddition, installed.contains(change.objectIdentity) {
                if case .deferred(let until, let fights, let firstTime) = guardRail.admit(
                    change.objectIdentity, now: now)
                {
                    report.deferred.append(change)
                    if firstTime {
                        logger.warning(
                            "another tool keeps deleting nicroute's object; backing off",
                            metadata: [
                                "object": "\(change.ipCommand(linkName: { names[$0] }))", "reinstalls": "\(fights)",
                                "retry_in_s": "\(Int((until - now).rounded(.up)))",
                            ])
                    }
                    continue
                }
            }
            do {
                try client.apply(change)
                report.applied.append(change)
                logChange(change, names: names, nics: plan.nics)
            } catch {
                report.failed.append((change, "\(error)"))
                logger.error(
                    "change failed: \(error)",
                    metadata: ["command": "\(change.ipCommand(linkName: { names[$0] }))"])
            }
        }
        installed = Set(plan.changes.filter(\.isAddition).map(\.objectIdentity))
            .union(desiredIdentities(snapshot: snapshot, plan: plan))
            .subtracting(report.failed.map(\.change.objectIdentity))
        for conflict in plan.conflicts { logger.warning("left alone: \(conflict)") }
        if plan.slots != slots {
            do {
                try store.save(plan.slots)
                slots = plan.slots
            } catch {
                logger.error("cannot save NIC slots: \(error)")
                slots = plan.slots
            }
        }
        // Ask the kernel to resolve first-host candidates, at most every 5 s each.
        for probe in plan.neighborProbes where now - (lastProbe[probe.address] ?? -.infinity) >= 5 {
            lastProbe[probe.address] = now
            do { try client.probeNeighbor(probe.address, linkIndex: probe.linkIndex) } catch {
                logger.debug("neighbour probe failed: \(error)")
            }
        }
        guardRail.prune(now: now)
        var deadlines: [Double] = []
        if let d = guardRail.nextDeadline(after: now) { deadlines.append(d) }
        if !plan.neighborProbes.isEmpty { deadlines.append(now + 5) }
        if !report.failed.isEmpty { deadlines.append(now + 2) }
        report.retryAt = deadlines.min()
        return report
    }

    /// The identities of objects already in place that the plan wants kept.
    private func desiredIdentities(snapshot: KernelSnapshot, plan: Plan) -> Set<String> {
        var ids = Set<String>()
        for r in snapshot.routes where Planner.isOwned(r) { ids.insert(Change.addRoute(r).objectIdentity) }
        for r in snapshot.rules where Planner.isOwned(r) { ids.insert(Change.addRule(r).objectIdentity) }
        let deleting = Set(plan.changes.filter { !$0.isAddition }.map(\.objectIdentity))
        return ids.subtracting(deleting)
    }

    private func logChange(_ change: Change, names: [Int32: String], nics: [ManagedNIC]) {
        var metadata: Logger.Metadata = ["command": "\(change.ipCommand(linkName: { names[$0] }))"]
        switch change {
        case .addRoute(let r), .replaceRoute(let r), .deleteRoute(let r):
            metadata["table"] = "\(r.table)"
            if let oif = r.outputInterface, let n = names[oif] { metadata["link"] = "\(n)" }
        case .addRule(let r), .deleteRule(let r):
            metadata["table"] = "\(r.table)"
            if let nic = nics.first(where: { $0.table == r.table }) { metadata["link"] = "\(nic.link.name)" }
        }
        metadata["action"] = "\(change.isAddition ? "add" : "delete")"
        logger.notice("\(change.ipCommand(linkName: { names[$0] }))", metadata: metadata)
    }

    /// Removes everything nicroute owns (`nicroutectl flush`): its rules, then its routes.
    /// - Returns: the changes applied, as `ip` commands.
    /// - Throws: `NetlinkError` when the kernel cannot be read or a deletion fails.
    public func flush() throws -> [String] {
        let snapshot = try client.snapshot(includeNeighbors: false)
        let changes =
            snapshot.rules.filter(Planner.isOwned).map(Change.deleteRule)
            + snapshot.routes.filter(Planner.isOwned).map(Change.deleteRoute)
        let names = Dictionary(snapshot.links.map { ($0.index, $0.name) }, uniquingKeysWith: { a, _ in a })
        for change in changes {
            try client.apply(change)
            logChange(change, names: names, nics: [])
        }
        installed = []
        return changes.map { $0.ipCommand(linkName: { names[$0] }) }
    }
}
