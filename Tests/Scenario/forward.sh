#!/usr/bin/env bash
# Real-kernel scenario test of forwarded connections (docs/design.md, "Forwarded connections"): a
# published container port, DNATed by the VM the way Docker does it, reached through both
# floating IPs, IPv4 and IPv6, TCP and UDP, with strict (1) and loose (2) rp_filter.
#
#   sudo bash Tests/Scenario/forward.sh
#
# The topology is lib.sh's two-NIC OpenStack VM (routers with floating-IP DNAT/SNAT and port
# security) plus, here: floating IPv6 addresses on the routers (ip6tables NAT), IPv6 on the
# container bridge, and the VM's Docker-shaped nat rules for tcp/udp 8081 -> container:80.
# Through floating IP B the container answers only with nicroute's marks in place.
#
# Environment:
#   NICROUTED=/path/to/nicrouted     the daemon (default: `swift build`, .build/debug/nicrouted)
#   NICROUTECTL=/path/to/nicroutectl the CLI (default: next to NICROUTED)
#   NR_KEEP_TMP=1                    keep the temp dir (daemon log)
#
# Prints `ok - ...` / `not ok - ...` per check and ends with `forward: N passed, M failed`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
NR_PREFIX=nrf
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

nr_require_root
nr_install_traps
nr_summary forward
nr_ensure_deps
nr_ensure_packages nft:nftables ip6tables:iptables

nr_find_binaries

# shellcheck source-path=SCRIPTDIR source=forward-lib.sh
source "$HERE/forward-lib.sh"
fwd_topo_create

start_daemon() {
  nicrouted_start "$DAEMON_LOG" --manage 'eth*' --state-dir "$NR_TMP/state" --config "$NR_TMP/nicroute.conf" \
    --control-socket "$NR_TMP/control.sock" --log-level debug
}
stop_daemon() { nr_stop_pid "$NICROUTED_PID" 5; }
# ctl ARGS...: nicroutectl inside the VM (its one-shot mode must never act on the root namespace).
ctl() {
  ip netns exec "$NS_VM" "$NICROUTECTL" --control-socket "$NR_TMP/control.sock" --state-dir "$NR_TMP/state" \
    --config "$NR_TMP/nicroute.conf" --manage 'eth*' "$@"
}

table_present() { ip netns exec "$NS_VM" nft list table inet nicroute >/dev/null 2>&1; }
table_absent() { ! table_present; }
fwmark_rules() { { ip -n "$NS_VM" -4 rule show; ip -n "$NS_VM" -6 rule show; } | grep -c 'fwmark' || true; }
fwmark_rules_are() { [[ $(fwmark_rules) -eq $1 ]]; }
svm() { ip netns exec "$NS_VM" sysctl -n "net.ipv4.conf.$1.src_valid_mark"; }

# all_forwarded X WANT DESC: TCP, UDP and ICMP echo, IPv4 and IPv6 through floating IP X;
# WANT ok|fail.
all_forwarded() {
  local x=$1 outcome=$2 when=$3 proto fam
  for fam in 4 6; do
    for proto in tcp udp icmp; do
      if [[ $outcome == ok ]]; then
        check "$proto/IPv$fam to the published port via floating IP $x $when" fwd_probe_retry "$proto" "$x" "$fam"
      else
        check_fails "$proto/IPv$fam to the published port via floating IP $x fails $when" fwd_probe "$proto" "$x" "$fam"
      fi
    done
  done
}

# log_count_above WORD N: the daemon's log has more than N lines with WORD.
log_count_above() { [[ $(grep -c "$1" "$DAEMON_LOG" || true) -gt $2 ]]; }

# mark_route_is DST SRC IIF MARK WANT: the VM's kernel routes a packet from SRC to DST arriving
# on IIF with MARK as WANT ("dev D[ via G]").
mark_route_is() {
  local got
  got=$(ip -j -n "$NS_VM" route get "$1" from "$2" iif "$3" mark "$4" 2>/dev/null |
    jq -r '.[0] | "dev \(.dev)" + (if .gateway then " via \(.gateway)" else "" end)') || true
  [[ $got == "$5" ]] || { echo "# route get $1 from $2 iif $3 mark $4: $got"; return 1; }
}

set_rp_filter() {
  local v=$1 i
  for i in all default "$NIC_A" "$NIC_B" "$BR_DOCKER"; do nr_sysctl "$NS_VM" "net.ipv4.conf.$i.rp_filter=$v"; done
}

# ---- the scenario ---------------------------------------------------------------------------

for rp in 1 2; do
  step "rp_filter=$rp, without nicroute"
  set_rp_filter "$rp"
  ip netns exec "$NS_VM" conntrack -F >/dev/null 2>&1 || true
  all_forwarded A ok "(rp_filter=$rp, no daemon)"
  all_forwarded B fail "(rp_filter=$rp, no daemon)"

  step "rp_filter=$rp, nicrouted running (ForwardedConnections=auto, the VM forwards)"
  start_daemon
  if ! wait_until 10 table_present; then
    nr_fail "nicroute's nftables table appears (rp_filter=$rp)"
    show_daemon_log
  else
    nr_pass "nicroute's nftables table appears (rp_filter=$rp)"
  fi
  check "fwmark rules: one per NIC and family, one shared per family (6)" wait_until 5 fwmark_rules_are 6
  # The kernel's answers for marked packets (the oracle): a reply from the container to the
  # client leaves through B; a request from B DNATed to a host on A's subnet stays on A's link
  # (the main table's specific route, not B's table's route via B's gateway).
  check "marked reply from the container leaves through $NIC_B" \
    mark_route_is "$CLIENT_ADDR" "$CT_ADDR" "$BR_DOCKER" 0x1000 "dev $NIC_B via $GW_B"
  check "marked request to a host on $NIC_A's subnet stays on $NIC_A's link" \
    mark_route_is 10.10.10.50 "$CLIENT_ADDR" "$NIC_B" 0x1000 "dev $NIC_A"
  check "marked request to the container goes to the bridge" \
    mark_route_is "$CT_ADDR" "$CLIENT_ADDR" "$NIC_B" 0x1000 "dev $BR_DOCKER"
  if [[ $rp == 1 ]]; then
    check "src_valid_mark=1 on $NIC_B (strict rp_filter needs the mark)" wait_until 3 test "$(svm "$NIC_B")" = 1
  fi
  all_forwarded B ok "(rp_filter=$rp, daemon)"
  all_forwarded A ok "(rp_filter=$rp, daemon)"
  check_route "the VM's own reply from B still leaves by its source rule" "$CLIENT_ADDR" "$ADDR_B" "dev $NIC_B via $GW_B" 3

  if [[ $rp == 1 ]]; then
    step "status"
    out=$(ctl status 2>&1 || true)
    check "status says the ruleset is in place" grep -q 'Forwarded connections: marked by ingress NIC' <<<"$out"
    check "status shows NIC B's mark" grep -q 'Forward mark: 0x1000/0x3010 (fwmark rules installed)' <<<"$out"
    json=$(ctl status --json 2>/dev/null || true)
    check "status --json: forwarding.state installed" test "$(jq -r .forwarding.state <<<"$json")" = installed

    step "nft flush ruleset behind the daemon's back"
    T0=$(nr_now_us)
    ip netns exec "$NS_VM" nft flush ruleset
    if wait_until 3 table_present; then
      nr_pass "the table is back after nft flush ruleset ($((($(nr_now_us) - T0) / 1000)) ms)"
    else
      nr_fail "the table is back after nft flush ruleset within 3 s"
    fi
    check "the restored table marks NIC B" grep -q 'iifname "eth1"' <<<"$(ip netns exec "$NS_VM" nft list table inet nicroute)"
    # `nft flush ruleset` also removed the VM's iptables-nft tables (Docker's DNAT): putting
    # them back is Docker's job (here, the test's).
    docker_nat
    all_forwarded B ok "(after nft flush ruleset and Docker's rules restored)"

    step "restart: the table and rules are adopted"
    stop_daemon
    check "table stays after SIGTERM" table_present
    check "fwmark rules stay after SIGTERM" fwmark_rules_are 6
    replaced=$(grep -c 'nft: replace table inet nicroute' "$DAEMON_LOG" || true)
    readies=$(grep -c 'ready' "$DAEMON_LOG" || true)
    start_daemon
    check "after restart: 6 fwmark rules" wait_until 5 fwmark_rules_are 6
    wait_until 5 log_count_above ready "$readies" || true
    check "after restart: table present" table_present
    check "after restart: the table is adopted, not replaced" \
      test "$(grep -c 'nft: replace table inet nicroute' "$DAEMON_LOG" || true)" = "$replaced"
    all_forwarded B ok "(after restart)"
  fi

  # rp_filter=1: flush through the daemon (package removal's prerm, the daemon running);
  # rp_filter=2: one-shot flush with the daemon stopped (its state directory tells what to undo).
  if [[ $rp == 1 ]]; then how="through the daemon"; else how="one-shot, daemon stopped"; stop_daemon; fi
  step "flush ($how)"
  check "src_valid_mark=1 on $NIC_B before flush" test "$(svm "$NIC_B")" = 1
  out=$(ctl flush 2>&1 || true)
  check "flush ($how) removes the nftables table" table_absent
  check "flush ($how) removes the fwmark rules" fwmark_rules_are 0
  check "flush ($how) says it removed the table" grep -q 'nft delete table inet nicroute' <<<"$out"
  check "flush ($how) puts src_valid_mark back to 0 on $NIC_B" test "$(svm "$NIC_B")" = 0
  [[ $rp == 1 ]] && stop_daemon
  ip netns exec "$NS_VM" conntrack -F >/dev/null 2>&1 || true
  if [[ $rp == 2 ]]; then
    all_forwarded B fail "(after flush)"
  fi
done

step "without libnftables: everything else works, status says why"
lib=$(ldconfig -p | awk '/libnftables\.so\.1 / && !l { l = $NF } END { print l }')
lib=$(readlink -f "${lib:-/usr/lib/x86_64-linux-gnu/libnftables.so.1}")
# The library is hidden in a mount namespace of the daemon's own (an empty file in its place).
# shellcheck disable=SC2016 # $1 and $@ are the inner shell's
unshare --mount --propagation private sh -c 'mount --bind /dev/null "$1" && shift && exec "$@"' sh "$lib" \
  ip netns exec "$NS_VM" "$NICROUTED" --manage 'eth*' --state-dir "$NR_TMP/state" --config "$NR_TMP/nicroute.conf" \
  --control-socket "$NR_TMP/control.sock" --log-level debug >>"$DAEMON_LOG" 2>&1 &
NICROUTED_PID=$!
NR_PIDS+=("$NICROUTED_PID")
check "source rules are installed without libnftables" wait_until 10 has_nicroute_rule "$NS_VM" "$ADDR_B"
check "no table without libnftables" table_absent
check "no fwmark rules without libnftables" fwmark_rules_are 0
out=$(ctl status 2>&1 || true)
check "status says forwarded replies are not covered, and why" \
  grep -q 'Forwarded connections: NOT covered: libnftables is not available' <<<"$out"
check "the VM's own reply from B still leaves by its source rule" route_is "$NS_VM" "$CLIENT_ADDR" "$ADDR_B" "dev $NIC_B via $GW_B"
stop_daemon
ctl flush >/dev/null 2>&1 || true

step "ForwardedConnections=auto follows forwarding"
nr_sysctl "$NS_VM" net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
start_daemon
wait_until 5 has_nicroute_rule "$NS_VM" "$ADDR_B" || true
check "no table while the VM does not forward" table_absent
check "no fwmark rules while the VM does not forward" fwmark_rules_are 0
# What Docker does when it starts: forwarding on, then its iptables(-nft) rules; the rules'
# nftables announcement makes nicrouted look again.
nr_sysctl "$NS_VM" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
ip netns exec "$NS_VM" iptables -w 5 -t nat -N DOCKER-NEW
check "the table appears once the VM forwards (and the ruleset changes)" wait_until 3 table_present
check "and the fwmark rules" wait_until 3 fwmark_rules_are 6
stop_daemon
ctl flush >/dev/null 2>&1 || true

step "ForwardedConnections=no"
printf '[Routing]\nForwardedConnections=no\n' >"$NR_TMP/nicroute.conf"
start_daemon
wait_until 5 has_nicroute_rule "$NS_VM" "$ADDR_B" || true
check "no table with ForwardedConnections=no" table_absent
check "no fwmark rules with ForwardedConnections=no" fwmark_rules_are 0
stop_daemon
ctl flush >/dev/null 2>&1 || true

show_daemon_log >"$NR_TMP/log.tail"
[[ $NR_FAIL -gt 0 ]] && cat "$NR_TMP/log.tail"
nr_summary_line
[[ $NR_FAIL -eq 0 ]]
