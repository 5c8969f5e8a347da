#!/usr/bin/env bash
# Real-kernel scenario test: the two-NIC OpenStack VM of lib.sh, but with multipath routes in its
# main table, as systemd-networkd leaves them when both NICs' router advertisements give default
# routes of one metric: `default proto ra metric 1024 nexthop via fe80::a dev eth0 nexthop via
# fe80::b dev eth1`. The routers answer only from their link-local addresses and do not own the
# subnets' first hosts (as most clouds send RAs), so the multipath default is the only IPv6
# gateway source. nicrouted runs in the VM.
#
#   sudo bash Tests/Scenario/multipath.sh
#
# Environment: NICROUTED, NR_KEEP_TMP as for openstack.sh.
#
# Prints one `ok - ...` / `not ok - ...` line per check and ends with
# `multipath: N passed, M failed`; exits non-zero when any check failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ADDR6_C=fd00:30::17 NET6_C=fd00:30::/64 GW6_C=fd00:30::1
LL_A=fe80::a LL_B=fe80::b LL_C=fe80::c
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

nr_require_root
nr_install_traps
nr_summary multipath
nr_ensure_deps

step() { printf '# --- %s\n' "$*"; }

show_daemon_log() {
  if [[ -s ${DAEMON_LOG:-/nonexistent} ]]; then
    echo "# nicrouted log (last 30 lines):"
    tail -n 30 "$DAEMON_LOG" | sed 's/^/#   /'
  fi
}

# router_link_local X: router X answers on the VM's link from LL_X only (lib.sh gave it the
# subnet's first host GW6_X: taken away, so that the first host never answers), and routes the
# NIC's IPv6 subnet to it; its "internet" is 2001:db8:X::1 on lo.
router_link_local() {
  local x=$1 rtr qr lower
  rtr=$(nv "$x" NS_RTR) qr=$(nv "$x" QR) lower=${x,,}
  ip -n "$rtr" addr del "$(nv "$x" GW6)/$(nv "$x" NET6 | cut -d/ -f2)" dev "$qr"
  ip -n "$rtr" addr add "$(nv "$x" LL)/64" dev "$qr" nodad
  ip -n "$rtr" -6 route add "$(nv "$x" NET6)" dev "$qr"
  ip -n "$rtr" addr add "2001:db8:$lower::1/128" dev lo
}

# flows_via NIC SRC: true when the kernel sends 16 different IPv6 destinations from SRC all
# through NIC (a multipath route would spread them over its paths).
flows_via() {
  local nic=$1 src=$2 i
  for ((i = 1; i <= 16; i++)); do
    [[ $(route_get "$NS_VM" "2001:db8:ff::$i" "$src") == "dev $nic via "* ]] || return 1
  done
}

# status_says NIC TEXT: `nicroutectl status` shows TEXT in NIC's block.
status_says() {
  local out
  out=$(ip netns exec "$NS_VM" "$NICROUTECTL" status --control-socket "$NR_TMP/control.sock" 2>&1) || true
  awk -v nic="$1" '/^(●|○) / { on = ($2 == nic) } on' <<<"$out" | grep -qF -- "$2"
}

if [[ -z ${NICROUTED:-} ]]; then
  (cd "$REPO" && swift build --product nicrouted >/dev/null && swift build --product nicroutectl >/dev/null)
  NICROUTED="$REPO/.build/debug/nicrouted"
fi
: "${NICROUTECTL:=$(dirname "$NICROUTED")/nicroutectl}"

step "1. topology: routers on link-local addresses only, multipath routes in main"
nr_tmp_init
DAEMON_LOG="$NR_TMP/nicrouted.log"
nr_ns_new "$NS_CLIENT"
nr_ns_new "$NS_VM"
nr_ns_new "$NS_CT"
ip -n "$NS_CLIENT" addr add "$CLIENT_ADDR/32" dev lo
nr_sysctl "$NS_VM" net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1 \
  net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.default.accept_ra=0
for x in A B; do
  router_create "$x"
  vm_nic_plug "$x"
  vm_nic_address "$x"
  router_link_local "$x"
done
docker_bridge_create
# As systemd-networkd leaves it: each NIC's RA default of one metric, merged by the kernel.
ip -n "$NS_VM" -6 route add default proto ra metric 1024 \
  nexthop via "$LL_A" dev "$NIC_A" nexthop via "$LL_B" dev "$NIC_B"
ip -n "$NS_VM" route add default nexthop via "$GW_A" dev "$NIC_A" nexthop via "$GW_B" dev "$NIC_B"
ip -n "$NS_VM" route add "$METADATA_ADDR" via "$GW_A" dev "$NIC_A"
# Multipath routes to other destinations: one path per NIC (IPv6); eth0 and the docker bridge;
# two paths on eth0.
ip -n "$NS_VM" -6 route add fd00:99::/64 metric 512 nexthop via "$LL_A" dev "$NIC_A" nexthop via "$LL_B" dev "$NIC_B"
ip -n "$NS_VM" route add 198.18.0.0/15 nexthop via 10.10.10.5 dev "$NIC_A" nexthop via "$CT_ADDR" dev "$BR_DOCKER"
ip -n "$NS_VM" route add 192.168.77.0/24 nexthop via 10.10.10.5 dev "$NIC_A" nexthop via 10.10.10.6 dev "$NIC_A"
main_before=$(main_tables "$NS_VM")

# The test itself: without nicroute, main's multipath default spreads B's flows over both
# NICs, so the checks below can fail.
check "without nicroute, flows from $ADDR6_B leave through both NICs" test "$(
  flows_via "$NIC_B" "$ADDR6_B" && echo all-on-B || echo spread
)" = spread

step "2. nicrouted"
: >"$NR_TMP/nicroute.conf"
nicrouted_start "$DAEMON_LOG" --manage 'eth*' --state-dir "$NR_TMP/state" --config "$NR_TMP/nicroute.conf" \
  --control-socket "$NR_TMP/control.sock" --log-level debug
wait_until 10 nicrouted_rule_or_dead "$ADDR6_B" || true
nicrouted_alive || { nr_fail "nicrouted died"; show_daemon_log; nr_summary_line; exit 1; }

check_route "IPv6 from NIC B: its own path of the multipath default" "$V6_PROBE_DST" "$ADDR6_B" "dev $NIC_B via $LL_B" 5
check_route "IPv6 from NIC A: its own path" "$V6_PROBE_DST" "$ADDR6_A" "dev $NIC_A via $LL_A" 5
check "16 IPv6 flows from $ADDR6_B all leave through $NIC_B" flows_via "$NIC_B" "$ADDR6_B"
check "16 IPv6 flows from $ADDR6_A all leave through $NIC_A" flows_via "$NIC_A" "$ADDR6_A"
check_route "IPv4 from NIC B: its own path" "$CLIENT_ADDR" "$ADDR_B" "dev $NIC_B via $GW_B" 5
check_route "IPv4 from NIC A: its own path" "$CLIENT_ADDR" "$ADDR_A" "dev $NIC_A via $GW_A"
check_route "rule 1: multipath fd00:99::/64 from B keeps B's path" fd00:99::1 "$ADDR6_B" "dev $NIC_B via $LL_B"
check_route "rule 1: multipath fd00:99::/64 from A keeps A's path" fd00:99::1 "$ADDR6_A" "dev $NIC_A via $LL_A"
check_route "rule 2: eth0+bridge route from B keeps the bridge path" 198.18.0.1 "$ADDR_B" "dev $BR_DOCKER via $CT_ADDR"
check_route "rule 1: eth0+bridge route from A keeps A's path" 198.18.0.1 "$ADDR_A" "dev $NIC_A via 10.10.10.5"
check_route "rule 3: two paths on eth0, from B via B's gateway" 192.168.77.1 "$ADDR_B" "dev $NIC_B via $GW_B"
check "rule 1: two paths on eth0, from A through eth0" \
  grep -Eq "^dev $NIC_A via 10\.10\.10\.[56]$" <<<"$(route_get "$NS_VM" 192.168.77.1 "$ADDR_A")"
check "status: NIC B's IPv6 gateway from the router advertisement" status_says "$NIC_B" \
  "IPv6 gateway: $LL_B (from router advertisement)"
check "status: NIC A's IPv6 gateway from the router advertisement" status_says "$NIC_A" \
  "IPv6 gateway: $LL_A (from router advertisement)"
check "status: NIC B's IPv4 gateway from the main table" status_says "$NIC_B" "IPv4 gateway: $GW_B (from main-table)"
check "main table unchanged" test "$(main_tables "$NS_VM")" = "$main_before"

step "3. traffic: each router pings its NIC's IPv6 address from its internet"
check "ping $ADDR6_B from 2001:db8:b::1 (reply through $NIC_B)" \
  ip netns exec "$NS_RTR_B" ping -n -q -c3 -i0.2 -W1 -I 2001:db8:b::1 "$ADDR6_B"
check "ping $ADDR6_A from 2001:db8:a::1 (reply through $NIC_A)" \
  ip netns exec "$NS_RTR_A" ping -n -q -c3 -i0.2 -W1 -I 2001:db8:a::1 "$ADDR6_A"
check "ping floating IP B" probe_ping "$FIP_B" 3

step "4. hot-plugged NIC C: its RA route joins the multipath default"
router_create C
vm_nic_plug C
vm_nic_address C
router_link_local C
ip -n "$NS_VM" -6 route append default proto ra metric 1024 via "$LL_C" dev "$NIC_C"
check "main holds one IPv6 default with three paths" test "$(
  ip -j -n "$NS_VM" -6 route show default | jq '[.[] | .nexthops | length] | add'
)" = 3
check_route "IPv6 from hot-plugged NIC C: its own path" "$V6_PROBE_DST" "$ADDR6_C" "dev $NIC_C via $LL_C" 5
check "ping $ADDR6_C from 2001:db8:c::1 (reply through $NIC_C)" \
  ip netns exec "$NS_RTR_C" ping -n -q -c3 -i0.2 -W1 -I 2001:db8:c::1 "$ADDR6_C"
# One sibling gone (the kernel notifies it alone): NIC A loses its IPv6 gateway, B keeps its own.
ip -n "$NS_VM" -6 route del default via "$LL_A" dev "$NIC_A" metric 1024
check "without its path, NIC A's table has no IPv6 default" wait_until 5 bash -c \
  "! ip -n '$NS_VM' -6 route show table all | grep -q '^default via $LL_A dev $NIC_A .*proto \\(110\\|nicroute\\)'"
check_route "IPv6 from NIC B unchanged" "$V6_PROBE_DST" "$ADDR6_B" "dev $NIC_B via $LL_B"

step "5. stop"
kill -TERM "$NICROUTED_PID"
check "nicrouted stops" wait_until 5 nr_pid_gone "$NICROUTED_PID"
[[ $NR_FAIL -eq 0 ]] || show_daemon_log
nr_summary_line
[[ $NR_FAIL -eq 0 ]]
