/// The `ip(8)` command equivalent to a change: what `plan` prints and the journal records.
public enum IPCommand {
    /// `ip -4 route VERB DST [via GW] dev NAME table T proto P [scope S] [src A] [metric M] [onlink]`,
    /// for a multipath route followed by `nexthop via GW dev NAME weight W [onlink]` per path.
    ///
    /// - Parameter linkName: resolves an interface index to its name; unresolved indexes print
    ///   as `if#N`.
    public static func route(_ verb: String, _ r: Route, linkName: (Int32) -> String? = { _ in nil }) -> String {
        var parts = ["ip", r.family.ipFlag, "route", verb]
        if r.type != .unicast { parts.append(r.type.description) }
        parts.append(r.destination.ipSpelling)
        if let src = r.source { parts += ["from", src.ipSpelling] }
        if let gw = r.gateway { parts += ["via", gw.description] }
        if let oif = r.outputInterface { parts += ["dev", linkName(oif) ?? "if#\(oif)"] }
        parts += ["table", tableName(r.table)]
        parts += ["proto", r.proto.description]
        if r.scope != .universe { parts += ["scope", r.scope.description] }
        if let src = r.preferredSource { parts += ["src", src.description] }
        if let m = r.metric { parts += ["metric", String(m)] }
        if r.configuredFlags & Route.onlinkFlag != 0 { parts.append("onlink") }
        for hop in r.nextHops {
            parts.append("nexthop")
            if let gw = hop.gateway {
                // `via inet6 ADDR` when the gateway's family is not the route's (RTA_VIA).
                parts.append("via")
                if gw.family != r.family { parts.append(gw.family == .inet ? "inet" : "inet6") }
                parts.append(gw.description)
            }
            parts += ["dev", linkName(hop.outputInterface) ?? "if#\(hop.outputInterface)"]
            parts += ["weight", String(hop.weight)]
            if hop.configuredFlags != 0 { parts.append("onlink") }
        }
        return parts.joined(separator: " ")
    }

    /// `ip -4 rule VERB priority P from SRC lookup T proto P`.
    public static func rule(_ verb: String, _ r: Rule) -> String {
        var parts = ["ip", r.family.ipFlag, "rule", verb]
        if let p = r.priority { parts += ["priority", String(p)] }
        if r.invert { parts.append("not") }
        parts += ["from", r.source?.ipSpelling ?? "all"]
        if let d = r.destination { parts += ["to", d.ipSpelling] }
        if let i = r.inputInterface { parts += ["iif", i] }
        if let o = r.outputInterface { parts += ["oif", o] }
        if r.firewallMark != nil || r.firewallMask != nil {
            let m = r.firewallMark ?? 0
            parts += [
                "fwmark", "0x" + String(m, radix: 16) + (r.firewallMask.map { "/0x" + String($0, radix: 16) } ?? ""),
            ]
        }
        if r.action == .toTable {
            parts += ["lookup", tableName(r.table)]
        } else {
            parts.append(r.action.description)
        }
        if let s = r.suppressPrefixLength { parts += ["suppress_prefixlength", String(s)] }
        if r.proto != .unspecified { parts += ["proto", r.proto.description] }
        return parts.joined(separator: " ")
    }

    static func tableName(_ id: UInt32) -> String {
        switch id {
        case RoutingTable.main: "main"
        case RoutingTable.local: "local"
        case RoutingTable.default: "default"
        default: String(id)
        }
    }
}
