import NicrouteCore

/// When to ask the kernel to resolve each first-host gateway candidate (a neighbour probe):
/// at once, then after 2, 4, 8 ... 60 s while the plan still wants it, so that a subnet whose
/// first host never answers costs almost nothing.
///
/// An IPv6 probe waits until its link has a usable link-local address. The kernel sends a
/// neighbour solicitation only from a link-local address that is neither tentative nor
/// optimistic (net/ipv6/ndisc.c, `ndisc_send_ns`), and a NIC that has just come up is still
/// doing duplicate address detection on it (its global address may be ready first): a probe
/// sent then is lost, and its neighbour entry stays INCOMPLETE, deaf to further probes, until
/// the kernel's own retransmission a second later. Held back instead, it is sent by the pass
/// that the link-local address's announcement (RTM_NEWADDR without IFA_F_TENTATIVE) wakes, and
/// a router that answers is confirmed within a round trip.
///
/// A global address can be usable before the link-local one (added with `nodad`, as static
/// configuration may do): then the probe is a datagram from that address instead (`datagrams`).
/// The kernel queues it while it resolves the router and solicits from the queued packet's
/// source when that address is valid on the link (`ndisc_solicit`), so the router is confirmed
/// without waiting for the link-local address's DAD.
///
/// Values in, values out: the caller passes the time and the links' addresses.
struct ProbeSchedule: Equatable {
    /// An address and the subnet it is in.
    struct IPPrefixedAddress: Equatable {
        var address: IPAddress
        var subnet: IPPrefix
    }

    struct Entry: Equatable {
        /// When the candidate may be probed again.
        var next: Double
        /// The waits: 2, 4, 8 ... 60 s.
        var backoff: Backoff
    }

    /// The waits between probes of one candidate.
    static let backoff = Backoff(initial: 2, maximum: 60)

    private(set) var entries: [IPAddress: Entry] = [:]
    /// The datagrams sent while the link-local address could not solicit, by candidate and link
    /// (a NIC plugged again is a new link: its first datagram leaves at once).
    private(set) var datagramEntries: [NeighborProbe: Entry] = [:]

    /// The probes of `wanted` to send at `now`; the candidates no longer wanted are forgotten.
    /// - Parameter linkLocalReady: the links with a usable IPv6 link-local address.
    mutating func due(_ wanted: [NeighborProbe], now: Double, linkLocalReady: Set<Int32>) -> [NeighborProbe] {
        let keep = Set(wanted.map(\.address))
        entries = entries.filter { keep.contains($0.key) }
        var out: [NeighborProbe] = []
        for probe in wanted {
            guard probe.address.family == .inet || linkLocalReady.contains(probe.linkIndex) else {
                entries[probe.address] = nil  // held back: sent at once when it can leave
                continue
            }
            if let entry = entries[probe.address], now < entry.next { continue }
            var backoff = entries[probe.address]?.backoff ?? Self.backoff
            let wait = backoff.next()
            entries[probe.address] = Entry(next: now + wait, backoff: backoff)
            out.append(probe)
        }
        return out
    }

    /// The probes of `wanted` held back for their link-local address that can leave as a
    /// datagram from a usable global address of their link instead (`sources`), with that
    /// address: at once, then after 2, 4, 8 ... 60 s while still held back. Call after `due`, on
    /// every pass (the candidates no longer wanted are forgotten).
    mutating func datagrams(
        _ wanted: [NeighborProbe], now: Double, linkLocalReady: Set<Int32>,
        sources: [Int32: [ProbeSchedule.IPPrefixedAddress]]
    ) -> [(probe: NeighborProbe, from: IPAddress)] {
        let held = wanted.filter { $0.address.family == .inet6 && !linkLocalReady.contains($0.linkIndex) }
        let keep = Set(held)
        datagramEntries = datagramEntries.filter { keep.contains($0.key) }
        var out: [(NeighborProbe, IPAddress)] = []
        for probe in held {
            let candidates = sources[probe.linkIndex] ?? []
            // One in the router's subnet if there is one (the router answers it on-link).
            guard
                let source = candidates.first(where: { $0.subnet.contains(probe.address) })?.address
                    ?? candidates.first?.address
            else { continue }
            if let entry = datagramEntries[probe], now < entry.next { continue }
            var backoff = datagramEntries[probe]?.backoff ?? Self.backoff
            datagramEntries[probe] = Entry(next: now + backoff.next(), backoff: backoff)
            out.append((probe, source))
        }
        return out
    }

    /// When the next probe is due, if any is waiting for its time.
    var nextDeadline: Double? { (entries.values.map(\.next) + datagramEntries.values.map(\.next)).min() }

    /// The global IPv6 addresses each link can send from now (not tentative, optimistic or
    /// failed), with their prefix lengths.
    static func globalSources(_ addresses: [InterfaceAddress]) -> [Int32: [IPPrefixedAddress]] {
        var out: [Int32: [IPPrefixedAddress]] = [:]
        for a in addresses
        where a.family == .inet6 && a.scope == .universe && !a.address.isIPv6LinkLocal
            && a.flags.isDisjoint(with: [.tentative, .optimistic, .dadFailed])
        {
            out[a.linkIndex, default: []].append(IPPrefixedAddress(address: a.address, subnet: a.subnet))
        }
        return out
    }

    /// The links whose IPv6 link-local address can send a neighbour solicitation.
    static func linkLocalReady(_ addresses: [InterfaceAddress]) -> Set<Int32> {
        Set(
            addresses.filter {
                $0.family == .inet6 && $0.address.isIPv6LinkLocal
                    && $0.flags.isDisjoint(with: [.tentative, .optimistic, .dadFailed])
            }.map(\.linkIndex))
    }
}
