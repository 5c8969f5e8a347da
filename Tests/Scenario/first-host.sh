#!/usr/bin/env bash
# Real-kernel scenario test: an IPv6 first-host gateway (Neutron's default) confirmed as soon as
# the kernel can ask for it. A NIC is plugged into the VM and given an address with duplicate
# address detection on, as cloud-init/DHCPv6 would; the router owns the subnet's first host.
# The kernel sends a neighbour solicitation only once the NIC's link-local address has left
# DAD, so that is the earliest moment; the default route via the first host must follow within
# a round trip and a pass (the target is 100 ms; the check allows 300 ms on a loaded machine,
# where a lost probe costs a second or more).
#
#   sudo bash Tests/Scenario/first-host.sh
#
# Environment: NICROUTED, NR_KEEP_TMP as for openstack.sh; ROUNDS (default 3) plugs.
#
# Prints one `ok - ...` / `not ok - ...` line per check and ends with
# `first-host: N passed, M failed`; exits non-zero when any check failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

nr_require_root
nr_install_traps
nr_summary first-host
nr_ensure_deps

: "${ROUNDS:=3}"
LIMIT_MS=300

if [[ -z ${NICROUTED:-} ]]; then
  (cd "$REPO" && swift build --product nicrouted >/dev/null)
  NICROUTED="$REPO/.build/debug/nicrouted"
fi

nr_tmp_init
DAEMON_LOG="$NR_TMP/nicrouted.log"
NS_R=$NR_PREFIX-fhr-$NR_ID
nr_ns_new "$NS_VM"
nr_ns_new "$NS_R"
nr_sysctl "$NS_VM" net.ipv6.conf.default.accept_ra=0 net.ipv6.conf.default.accept_dad=1
nr_sysctl "$NS_R" net.ipv6.conf.all.forwarding=1 net.ipv6.conf.default.accept_dad=0

nicrouted_start "$DAEMON_LOG" --manage 'eth*' --state-dir "$NR_TMP/state" --config /dev/null \
  --control-socket "$NR_TMP/control.sock" --log-level debug
wait_until 5 test -S "$NR_TMP/control.sock" || true

# seconds LINE: the `ip -ts monitor` timestamp of LINE in seconds since midnight.
seconds() { sed -E 's/^\[[0-9-]+T([0-9]+):([0-9]+):([0-9.]+)\].*/\1 \2 \3/' <<<"$1" | awk '{ printf "%.6f", $1 * 3600 + $2 * 60 + $3 }'; }

# route_in_table: nicroute's IPv6 default via the first host is in some table.
route_in_table() { grep -Eq "^default via $GW6_B dev $NIC_B .*proto ($NICROUTE_PROTO_RE)( |$)" <<<"$(ip -n "$NS_VM" -6 route show table all)"; }

for ((round = 1; round <= ROUNDS; round++)); do
  mon="$NR_TMP/monitor-$round.log"
  nr_bg - "$mon" ip -n "$NS_VM" -ts monitor address route neigh
  MON=$NR_LAST_PID
  sleep 0.2
  ip -n "$NS_VM" link add "$NIC_B" address "$MAC_B" type veth peer name "$QR_B" netns "$NS_R"
  ip -n "$NS_R" addr add "$GW6_B/64" dev "$QR_B" nodad
  ip -n "$NS_R" link set "$QR_B" up
  ip -n "$NS_VM" link set "$NIC_B" up
  ip -n "$NS_VM" addr add "$ADDR6_B/64" dev "$NIC_B"
  wait_until 6 route_in_table || true
  sleep 0.2
  nr_stop_pid "$MON"
  global=$(grep -E "$NIC_B +inet6 $ADDR6_B/64 scope global *$" "$mon" | head -n1 || true)
  linklocal=$(grep -E "$NIC_B +inet6 fe80::[0-9a-f:]+/64 scope link *$" "$mon" | head -n1 || true)
  route=$(grep -E "default via $GW6_B dev $NIC_B table [0-9]+ proto ($NICROUTE_PROTO_RE)" "$mon" | head -n1 || true)
  if [[ -z $global || -z $linklocal || -z $route ]]; then
    nr_fail "round $round: address, link-local address and route all announced (got: ${global:+global }${linklocal:+link-local }${route:+route})"
  else
    ms=$(awk -v g="$(seconds "$global")" -v l="$(seconds "$linklocal")" -v r="$(seconds "$route")" \
      'BEGIN { s = g > l ? g : l; printf "%d", (r - s) * 1000 }')
    check "round $round: default via the first host ${ms} ms after both addresses left DAD (limit $LIMIT_MS)" \
      test "$ms" -lt "$LIMIT_MS"
  fi
  ip -n "$NS_VM" link del "$NIC_B"
  wait_until 5 bash -c "! ip -n '$NS_VM' -6 rule show | grep -q '$ADDR6_B'" || true
done

# A NIC without a link-local address (addr_gen_mode none) cannot solicit at all: the router's
# own solicitation, when it sends the VM a packet, leaves the neighbour entry that confirms it.
ip -n "$NS_VM" link add "$NIC_B" address "$MAC_B" type veth peer name "$QR_B" netns "$NS_R"
nr_sysctl "$NS_VM" "net.ipv6.conf.$NIC_B.addr_gen_mode=1"
ip -n "$NS_R" addr add "$GW6_B/64" dev "$QR_B" nodad
ip -n "$NS_R" link set "$QR_B" up
ip -n "$NS_VM" link set "$NIC_B" up
ip -n "$NS_VM" addr add "$ADDR6_B/64" dev "$NIC_B" nodad
wait_until 5 has_nicroute_rule "$NS_VM" "$ADDR6_B" || true
check "no link-local address: no default via the first host without a word from the router" \
  bash -c "sleep 0.5; ! ip -n '$NS_VM' -6 route show table all | grep -q '^default via $GW6_B dev $NIC_B'"
ip netns exec "$NS_R" ping -n -q -c1 -W1 -I "$GW6_B" "$ADDR6_B" >/dev/null 2>&1 || true
check "no link-local address: the router's own solicitation confirms it within a second" wait_until 1 route_in_table
ip -n "$NS_VM" link del "$NIC_B"

kill -TERM "$NICROUTED_PID"
check "nicrouted stops" wait_until 5 nr_pid_gone "$NICROUTED_PID"
if [[ $NR_FAIL -gt 0 && -s $DAEMON_LOG ]]; then tail -n 20 "$DAEMON_LOG" | sed 's/^/#   /'; fi
nr_summary_line
[[ $NR_FAIL -eq 0 ]]
