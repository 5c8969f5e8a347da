#!/usr/bin/env bash
# Real-kernel scenario test: sources that are not interface addresses (docs/design.md, Routing
# semantics). lib.sh's two-NIC VM gets, on eth1 (NIC B):
#
#   - a GCE-style forwarded IP: `local 20.20.20.50 dev eth1 proto 66` (the guest agent's
#     protocol), reached through a second floating IP of router B (198.51.100.21);
#   - an "AnyIP" range: `local 10.99.0.0/24 dev eth1`, routed to the VM by router B, one of its
#     addresses (10.99.0.7) reached through a third floating IP (198.51.100.22);
#   - an IPv6 local prefix: `local fd00:99::/64 dev eth1`, pinged from an address of router B's
#     that is not on eth1's subnet;
#   - a `[Source]` prefix of the configuration (10.97.0.0/24): forwarded traffic from it.
#
# The kernel is the oracle: `ip route get DST from SRC` and real pings and TCP round trips
# through the floating IPs, whose replies leave through NIC B only with nicroute (without it
# they leave through NIC A, where router A's port security and the VM's strict reverse-path
# filtering drop them: the control). Then the rules follow the routes as they come and go, are
# put back when deleted by hand, and go away with `LocalRoutes=no`.
#
#   sudo bash Tests/Scenario/local-routes.sh
#
# Environment: NICROUTED, NICROUTECTL, NR_KEEP_TMP as for openstack.sh and cli.sh.
#
# Prints one `ok - ...` / `not ok - ...` line per check and ends with
# `local-routes: N passed, M failed`; exits non-zero when any check failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# Namespaces of this script's own (nrlr-*-PID): never another run's or another script's.
: "${NR_PREFIX:=nrlr}"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

nr_require_root
nr_install_traps
nr_summary local-routes
nr_ensure_deps

step() { printf '# --- %s\n' "$*"; }

nr_find_binaries

# The sources of NIC B besides its address.
GCE_IP=20.20.20.50 FIP_G=198.51.100.21              # the guest agent's forwarded IP
ANY_NET=10.99.0.0/24 ANY_IP=10.99.0.7 FIP_N=198.51.100.22 # the AnyIP range
ANY2_NET=10.99.1.0/24 ANY2_IP=10.99.1.9             # added and removed while the daemon runs
ANY6_NET=fd00:99::/64 ANY6_IP=fd00:99::7            # the IPv6 local prefix
R6_FAR=2001:db8:77::1                               # router B's address off eth1's subnet
CONF_NET=10.97.0.0/24 CONF_IP=10.97.0.5             # the [Source] prefix
BR_NET2=10.98.5.0/24                                # a local route on the (unmanaged) bridge
GCE_PROTO=66

# =====================================================================================
step "1. the topology with the extra sources, without nicrouted"
topo_create
DAEMON_LOG="$NR_TMP/nicrouted.log"
CONF=$NR_TMP/nicroute.conf
SOCK=$NR_TMP/control.sock
mkdir -p "$NR_TMP/state"
# Forwarding on (the [Source] prefix is forwarded traffic); forwarded connections are not this
# test's subject.
nr_sysctl "$NS_VM" net.ipv4.ip_forward=1
printf '[Routing]\nForwardedConnections=no\n\n[Source]\nInterface=%s\nPrefix=%s\n' "$NIC_B" "$CONF_NET" >"$CONF"

# Router B: the floating IPs of the forwarded IP and of one AnyIP address, the route to the
# AnyIP range and the IPv6 prefix, and the allowed-address pairs that let them out.
ip -n "$NS_RTR_B" addr add "$FIP_G/32" dev "$QG_B"
ip -n "$NS_RTR_B" addr add "$FIP_N/32" dev "$QG_B"
ip -n "$NS_RTR_B" route add "$ANY_NET" via "$ADDR_B" dev "$QR_B"
ip -n "$NS_RTR_B" -6 route add "$ANY6_NET" via "$ADDR6_B" dev "$QR_B"
ip -n "$NS_RTR_B" -6 addr add "$R6_FAR/128" dev lo
for pair in "$FIP_G:$GCE_IP" "$FIP_N:$ANY_IP"; do
  ip netns exec "$NS_RTR_B" iptables -w 5 -t nat -A PREROUTING -d "${pair%%:*}" -j DNAT --to-destination "${pair#*:}"
  ip netns exec "$NS_RTR_B" iptables -w 5 -t nat -A POSTROUTING -s "${pair#*:}" -j SNAT --to-source "${pair%%:*}"
done
ip netns exec "$NS_RTR_B" iptables -w 5 -I FORWARD -i "$QR_B" -s "$GCE_IP" -j ACCEPT
ip netns exec "$NS_RTR_B" iptables -w 5 -I FORWARD -i "$QR_B" -s "$ANY_NET" -j ACCEPT

# The VM: the guest agent's route, the AnyIP range, the IPv6 prefix, one on the bridge.
ip -n "$NS_VM" route add local "$GCE_IP" dev "$NIC_B" proto "$GCE_PROTO" scope host
ip -n "$NS_VM" route add local "$ANY_NET" dev "$NIC_B"
ip -n "$NS_VM" -6 route add local "$ANY6_NET" dev "$NIC_B"
ip -n "$NS_VM" route add local "$BR_NET2" dev "$BR_DOCKER"
# The configured prefix is a network behind the "container" (a guest, a VPN's clients).
ip -n "$NS_VM" route add "$CONF_NET" via "$CT_ADDR" dev "$BR_DOCKER"
start_tcp_echo "$TCP_PORT"

check "control: ping via floating IP A works (the topology)" probe_ping "$FIP_A" 3
check_fails "control: ping of the forwarded IP via $FIP_G fails without nicroute" probe_ping "$FIP_G" 1
check_fails "control: ping of an AnyIP address via $FIP_N fails without nicroute" probe_ping "$FIP_N" 1
check_route "control: without nicroute a reply from $GCE_IP leaves through A" "$CLIENT_ADDR" "$GCE_IP" \
  "dev $NIC_A via $GW_A"
check_route "control: without nicroute a reply from $ANY_IP leaves through A" "$CLIENT_ADDR" "$ANY_IP" \
  "dev $NIC_A via $GW_A"
check_route "control: without nicroute a reply from $ANY6_IP leaves through A" "$V6_PROBE_DST" "$ANY6_IP" \
  "dev $NIC_A via $GW6_A"
check_fails "control: ping of $ANY6_IP from router B's $R6_FAR fails without nicroute" \
  ip netns exec "$NS_RTR_B" ping -n -q -c1 -W1 -I "$R6_FAR" "$ANY6_IP" >/dev/null 2>&1
main_tables "$NS_VM" >"$NR_TMP/main.before"

# forwarded_from SRC: where the VM forwards a packet from SRC (arriving on the bridge) to the
# client: "dev D via G".
forwarded_from() {
  ip -j -n "$NS_VM" route get "$CLIENT_ADDR" from "$1" iif "$BR_DOCKER" 2>/dev/null |
    jq -r '.[0] | "dev \(.dev)" + (if .gateway then " via \(.gateway)" else "" end)'
}
forwarded_is() { [[ $(forwarded_from "$1") == "$2" ]]; }
check "control: without nicroute traffic forwarded from $CONF_IP leaves through A" \
  forwarded_is "$CONF_IP" "dev $NIC_A via $GW_A"

# =====================================================================================
step "2. nicrouted: one rule per source prefix, at NIC B's table and priority"
nicrouted_start "$DAEMON_LOG" --manage 'eth*' --state-dir "$NR_TMP/state" --config "$CONF" \
  --control-socket "$SOCK" --log-level debug
wait_until 10 nicrouted_rule_or_dead "$GCE_IP" || true
check "a rule from the forwarded IP $GCE_IP (proto $GCE_PROTO local route)" has_nicroute_rule "$NS_VM" "$GCE_IP"
check "a rule from the AnyIP range $ANY_NET" wait_until 5 has_nicroute_rule "$NS_VM" "$ANY_NET"
check "a rule from the IPv6 local prefix $ANY6_NET" wait_until 5 has_nicroute_rule "$NS_VM" "$ANY6_NET"
check "a rule from the configured prefix $CONF_NET" wait_until 5 has_nicroute_rule "$NS_VM" "$CONF_NET"
TABLE_B=$(nicroute_table_of "$NS_VM" "$ADDR_B")
# prio_of SRC: the priority of nicroute's rule from SRC.
prio_of() { nicroute_rules "$NS_VM" | awk -v a="$1" '$1 == a || $1 == a "/32" { print $3; exit }'; }
for s in "$GCE_IP" "$ANY_NET" "$ANY6_NET" "$CONF_NET"; do
  check "the rule from $s looks up NIC B's table ($TABLE_B) at its priority" \
    test "$(nicroute_table_of "$NS_VM" "$s") $(prio_of "$s")" == "$TABLE_B $(prio_of "$ADDR_B")"
done
# The kernel's own local routes (addresses, broadcasts, IPv6 multicast) and the bridge's local
# route add nothing: 4 address rules + 4 source rules.
check "exactly 8 nicroute rules: the kernel's local routes and the bridge's add none (got $(nicroute_rules "$NS_VM" | wc -l))" \
  test "$(nicroute_rules "$NS_VM" | wc -l)" -eq 8
check "no rule from the bridge's local route $BR_NET2" has_no_nicroute_rule "$NS_VM" "$BR_NET2"
check "no rule from the kernel's broadcast route of NIC B" has_no_nicroute_rule "$NS_VM" 20.20.20.255

step "3. the kernel's answers and real replies"
check_route "a reply from $GCE_IP leaves through B" "$CLIENT_ADDR" "$GCE_IP" "dev $NIC_B via $GW_B" 5
check "ping of the forwarded IP via floating IP $FIP_G" probe_ping "$FIP_G" 3
check "TCP to the forwarded IP via floating IP $FIP_G" probe_tcp "$FIP_G" "$TCP_PORT" 3
check_route "a reply from $ANY_IP (inside the AnyIP range) leaves through B" "$CLIENT_ADDR" "$ANY_IP" \
  "dev $NIC_B via $GW_B" 5
check "ping of $ANY_IP via floating IP $FIP_N" probe_ping "$FIP_N" 3
check "TCP to $ANY_IP via floating IP $FIP_N" probe_tcp "$FIP_N" "$TCP_PORT" 3
check_route "a reply from $ANY6_IP leaves through B" "$V6_PROBE_DST" "$ANY6_IP" "dev $NIC_B via $GW6_B" 5
check "ping of $ANY6_IP from router B's $R6_FAR (off eth1's subnet)" \
  ip netns exec "$NS_RTR_B" ping -n -q -c1 -W2 -I "$R6_FAR" "$ANY6_IP" >/dev/null 2>&1
check "traffic forwarded from the configured prefix ($CONF_IP) leaves through B" \
  wait_until 5 forwarded_is "$CONF_IP" "dev $NIC_B via $GW_B"
check_route "a reply from NIC B's address still leaves through B" "$CLIENT_ADDR" "$ADDR_B" "dev $NIC_B via $GW_B"
check "ping via floating IP B (NIC B's address)" probe_ping "$FIP_B" 3
check_same "main table (IPv4+IPv6) unchanged" "$NR_TMP/main.before" main_tables "$NS_VM"

step "4. status and check name the sources"
ctl() { ip netns exec "$NS_VM" "$NICROUTECTL" --control-socket "$SOCK" "$@"; }
STATUS=$(ctl --json status 2>&1 || true)
srcs=$(jq -r --arg n "$NIC_B" '.nics[] | select(.name == $n) | .sources // [] | map("\(.prefix) \(.origin) \(.protocol)") | join(",")' <<<"$STATUS" 2>/dev/null || true)
WANT_SOURCES="$ANY_NET local-route boot,$GCE_IP/32 local-route $GCE_PROTO,${ANY6_NET} local-route boot,$CONF_NET configuration null"
check "status --json lists NIC B's sources (got: $srcs)" test "$srcs" == "$WANT_SOURCES"
TEXT=$(ctl status 2>&1 || true)
check "status shows them in its text" grep -q "Sources: $ANY_NET (local route, proto boot) $GCE_IP/32 (local route, proto $GCE_PROTO)" <<<"$TEXT"
CHECK=$(ctl --json check 2>&1 || true)
# verdict ADDR FIELD: a field of check's JSON result for ADDR.
verdict() { jq -r --arg a "$1" ".results[] | select(.address == \$a) | $2" <<<"$CHECK" 2>/dev/null || true; }
check "check judges the forwarded IP $GCE_IP: ok, through $NIC_B" \
  test "$(verdict "$GCE_IP" '"\(.ok) \(.reply.interface)"')" == "true $NIC_B"
check "check judges an address inside the AnyIP range (10.99.0.1): ok, through $NIC_B" \
  test "$(verdict 10.99.0.1 '"\(.ok) \(.reply.interface)"')" == "true $NIC_B"
check "check judges an address inside the IPv6 prefix (fd00:99::1): ok, through $NIC_B" \
  test "$(verdict fd00:99::1 '"\(.ok) \(.reply.interface)"')" == "true $NIC_B"
check "check passes as a whole" test "$(jq -r .ok <<<"$CHECK" 2>/dev/null)" == true

step "5. routes that come and go; rules deleted by hand"
ip -n "$NS_VM" route add local "$ANY2_NET" dev "$NIC_B"
check "a local route added while running gets its rule ($ANY2_NET)" wait_until 3 has_nicroute_rule "$NS_VM" "$ANY2_NET"
check_route "and a reply from $ANY2_IP leaves through B" "$CLIENT_ADDR" "$ANY2_IP" "dev $NIC_B via $GW_B" 3
ip -n "$NS_VM" route del local "$ANY2_NET" dev "$NIC_B" table local
check "the route removed, its rule goes" wait_until 3 has_no_nicroute_rule "$NS_VM" "$ANY2_NET"
ip -n "$NS_VM" -6 route add local fd00:98::/64 dev "$NIC_B"
check "an IPv6 local route added while running gets its rule" wait_until 3 has_nicroute_rule "$NS_VM" fd00:98::/64
ip -n "$NS_VM" -6 route del local fd00:98::/64 dev "$NIC_B" table local
check "and loses it with the route" wait_until 3 has_no_nicroute_rule "$NS_VM" fd00:98::/64
ip -n "$NS_VM" rule del from "$ANY_NET" lookup "$TABLE_B"
check "a rule from $ANY_NET deleted by hand comes back" wait_until 3 has_nicroute_rule "$NS_VM" "$ANY_NET"
ip -n "$NS_VM" rule del from "$GCE_IP" lookup "$TABLE_B"
check "a rule from $GCE_IP deleted by hand comes back" wait_until 3 has_nicroute_rule "$NS_VM" "$GCE_IP"
check "ping of the forwarded IP via $FIP_G after healing" probe_ping "$FIP_G" 3
# An address added to NIC B (its kernel local and broadcast routes come with it) gets its own
# rule and nothing more.
ip -n "$NS_VM" addr add 20.20.20.60/24 dev "$NIC_B"
check "a new address gets its rule" wait_until 3 has_nicroute_rule "$NS_VM" 20.20.20.60
check "and nothing more (9 rules, got $(nicroute_rules "$NS_VM" | wc -l))" test "$(nicroute_rules "$NS_VM" | wc -l)" -eq 9
ip -n "$NS_VM" addr del 20.20.20.60/24 dev "$NIC_B"
check "the address removed, its rule goes" wait_until 3 has_no_nicroute_rule "$NS_VM" 20.20.20.60
check "the forwarded IP's rule stays" has_nicroute_rule "$NS_VM" "$GCE_IP"

step "6. LocalRoutes=no"
printf '[Routing]\nForwardedConnections=no\nLocalRoutes=no\n\n[Source]\nInterface=%s\nPrefix=%s\n' "$NIC_B" "$CONF_NET" >"$CONF"
kill -HUP "$NICROUTED_PID"
check "the local routes' rules go ($GCE_IP)" wait_until 3 has_no_nicroute_rule "$NS_VM" "$GCE_IP"
check "the local routes' rules go ($ANY_NET)" wait_until 3 has_no_nicroute_rule "$NS_VM" "$ANY_NET"
check "the local routes' rules go ($ANY6_NET)" wait_until 3 has_no_nicroute_rule "$NS_VM" "$ANY6_NET"
check "the configured prefix keeps its rule" has_nicroute_rule "$NS_VM" "$CONF_NET"
check "the addresses keep theirs" has_nicroute_rule "$NS_VM" "$ADDR_B"
check_route "a reply from $GCE_IP leaves through A again" "$CLIENT_ADDR" "$GCE_IP" "dev $NIC_A via $GW_A" 3
ip -n "$NS_VM" route add local "$ANY2_NET" dev "$NIC_B"
ip -n "$NS_VM" rule del from "$ADDR_B" lookup "$TABLE_B"
# The address rule's return shows a pass has run since the route was added.
wait_until 3 has_nicroute_rule "$NS_VM" "$ADDR_B" || true
check "a local route added now gets no rule" has_no_nicroute_rule "$NS_VM" "$ANY2_NET"
ip -n "$NS_VM" route del local "$ANY2_NET" dev "$NIC_B" table local

kill -TERM "$NICROUTED_PID"
check "nicrouted stops" wait_until 5 nr_pid_gone "$NICROUTED_PID"
if [[ $NR_FAIL -gt 0 && -s $DAEMON_LOG ]]; then tail -n 30 "$DAEMON_LOG" | sed 's/^/#   /'; fi
nr_summary_line
[[ $NR_FAIL -eq 0 ]]
