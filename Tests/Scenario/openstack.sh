#!/usr/bin/env bash
# Real-kernel scenario test: an OpenStack VM with two NICs, one floating IP per NIC, each on
# its own Neutron router (see lib.sh for the topology), with nicrouted running in the VM.
#
#   sudo bash Tests/Scenario/openstack.sh
#
# Environment:
#   NICROUTED=/path/to/nicrouted   test this binary (default: `swift build` then .build/debug/nicrouted)
#   NICROUTED=manual               run lib.sh's hand-made stand-in instead of the daemon: checks the
#                                  topology and the checks themselves, not nicroute
#   NR_KEEP_TMP=1                  keep the temp dir (daemon log, monitor output) after the run
#
# Prints one `ok - ...` / `not ok - ...` line per check and ends with
# `scenario: N passed, M failed`; exits non-zero when any check failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

nr_require_root
nr_install_traps
nr_summary scenario
nr_ensure_deps

# step NAME: print a phase heading.
step() { printf '# --- %s\n' "$*"; }

# bail REASON: fail REASON, show the daemon's log, print the summary and stop.
bail() {
  nr_fail "$1"
  show_daemon_log
  nr_summary_line
  exit 1
}

# show_daemon_log: the end of the daemon's log, as comments.
show_daemon_log() {
  if [[ -s ${DAEMON_LOG:-/nonexistent} ]]; then
    echo "# nicrouted log (last 40 lines):"
    tail -n 40 "$DAEMON_LOG" | sed 's/^/#   /'
  fi
}

# start_daemon: start nicrouted in the VM with the test's arguments (a control socket of its
# own: another run at the same time, or a daemon on the machine, keeps the default one).
start_daemon() {
  nicrouted_start "$DAEMON_LOG" --manage 'eth*' --state-dir "$NR_TMP/state" --config "$NR_TMP/nicroute.conf" \
    --control-socket "$NR_TMP/control.sock" --log-level debug
}

# check_traffic X [TRIES]: ping, TCP and UDP through NIC X's floating IP all work.
check_traffic() {
  local x=$1 tries=${2:-3} fip
  fip=$(nv "$x" FIP)
  check "ping via floating IP $x ($fip)" probe_ping "$fip" "$tries"
  check "TCP via floating IP $x ($fip)" probe_tcp "$fip" "$TCP_PORT" "$tries"
  check "UDP via floating IP $x ($fip)" probe_udp "$fip" "$UDP_PORT" "$tries"
}

# check_invariants WHEN: the main tables and the foreign rules are as before the daemon.
check_invariants() {
  check_same "main table (IPv4+IPv6) unchanged $1" "$NR_TMP/main.before" main_tables "$NS_VM"
  check_same "foreign and kernel rules unchanged, not duplicated $1" "$NR_TMP/rules.before" foreign_rules "$NS_VM"
}

# check_one_rule_per_address WHEN: exactly one nicroute rule per VM address (A and B).
check_one_rule_per_address() {
  local a n
  for a in "$ADDR_A" "$ADDR_B" "$ADDR6_A" "$ADDR6_B"; do
    n=$(nicroute_rule_count "$NS_VM" "$a")
    if [[ $n -eq 1 ]]; then
      nr_pass "exactly one nicroute rule from $a $1"
    else
      nr_fail "exactly one nicroute rule from $a $1 (found $n)"
    fi
  done
}

# check_oracle: the kernel's routing answers for the two-NIC VM with nicroute's policy.
check_oracle() {
  local w=${1:-5}
  check_route "reply from NIC B to the internet" "$CLIENT_ADDR" "$ADDR_B" "dev $NIC_B via $GW_B" "$w"
  check_route "reply from NIC A to the internet" "$CLIENT_ADDR" "$ADDR_A" "dev $NIC_A via $GW_A" "$w"
  check_route "NIC B's own subnet" 20.20.20.50 "$ADDR_B" "dev $NIC_B" "$w"
  check_route "NIC A's subnet from B goes via B's gateway" 10.10.10.50 "$ADDR_B" "dev $NIC_B via $GW_B" "$w"
  check_route "metadata from B goes via B's gateway" "$METADATA_ADDR" "$ADDR_B" "dev $NIC_B via $GW_B" "$w"
  check_route "docker bridge from B stays on the bridge" "$CT_ADDR" "$ADDR_B" "dev $BR_DOCKER" "$w"
  check_route "no source: main table" "$CLIENT_ADDR" "" "dev $NIC_A via $GW_A" "$w"
  check_route "IPv6 reply from NIC B" "$V6_PROBE_DST" "$ADDR6_B" "dev $NIC_B via $GW6_B" "$w"
  check_route "IPv6 reply from NIC A" "$V6_PROBE_DST" "$ADDR6_A" "dev $NIC_A via $GW6_A" "$w"
}

# rule_present_b: the nicroute rule for NIC B's address is in the kernel (cheap, for polling).
# (Output captured first: `ip | grep -q` under pipefail fails when grep exits before ip.)
rule_present_b() {
  grep -Eq "^[0-9]+:[[:space:]]+from $ADDR_B(/32)? .*proto ($NICROUTE_PROTO_RE)( |\$)" <<<"$(ip -n "$NS_VM" -4 rule show)"
}

# gap_poller OUT STOPFILE: poll rule_present_b until STOPFILE exists (at most 20 s / 20000
# samples); write "samples misses" to OUT.
gap_poller() {
  local out=$1 stop=$2 samples=0 misses=0 deadline
  deadline=$(($(nr_now_us) + 20000000))
  while [[ ! -e $stop && $samples -lt 20000 && $(nr_now_us) -lt $deadline ]]; do
    rule_present_b || misses=$((misses + 1))
    samples=$((samples + 1))
  done
  echo "$samples $misses" >"$out"
}

# monitor_start FILE: `ip -ts monitor rule` on the VM into FILE (PID in MONITOR_PID), returning
# once it provably listens: a canary rule (re-added until seen, bounded) shows up in FILE.
monitor_start() {
  local file=$1 i
  # shellcheck disable=SC2086 # MONITOR_OBJECTS is a word list
  nr_bg - "$file" ip -n "$NS_VM" -ts monitor ${MONITOR_OBJECTS:-rule}
  MONITOR_PID=$NR_LAST_PID
  for ((i = 0; i < 25; i++)); do
    ip -n "$NS_VM" -4 rule add fwmark 0x98 lookup 98 priority 498
    wait_until 0.2 grep -q 'fwmark 0x98' "$file" && break
    ip -n "$NS_VM" -4 rule del fwmark 0x98 lookup 98 priority 498
  done
  ip -n "$NS_VM" -4 rule del fwmark 0x98 lookup 98 priority 498 2>/dev/null || true
  grep -q 'fwmark 0x98' "$file" || echo "# ip monitor never reported the canary rule"
}

# monitor_min_count FILE ADDR START: replay FILE's events for nicroute rules from ADDR,
# starting from START such rules; print "events minimum".
monitor_min_count() {
  awk -v a="$2" -v n="$3" -v re="proto ($NICROUTE_PROTO_RE)( |\$)" '
    BEGIN { min = n; ev = 0 }
    $0 ~ ("[0-9]+:[ \t]+from " a "(/32)? ") && $0 ~ re {
      ev++
      if ($2 == "Deleted") n--; else n++
      if (n < min) min = n
    }
    END { print ev, min }' "$1"
}

# monitor_has_rule FILE ADDR: true once `ip monitor` FILE shows a new rule from ADDR.
monitor_has_rule() {
  grep -Eq "^\[[^]]+\] [0-9]+:[[:space:]]+from $2(/32)? " "$1"
}

# monitor_ts_us FILE ADDR [Deleted]: the monitor's timestamp (us) of the first new rule from
# ADDR (with "Deleted": of the first deletion of one).
monitor_ts_us() {
  local ts kind=${3:+$3 }
  ts=$(grep -Em1 "^\[[^]]+\] ${kind}[0-9]+:[[:space:]]+from $2(/32)? " "$1" | sed -E 's/^\[([^]]+)\].*/\1/')
  [[ -z $ts ]] || date -d "$ts" +%s%6N
}

# nothing_left_for_c: no nicroute rule from ADDR_C and no nicroute route for NIC C anywhere.
nothing_left_for_c() {
  local net=${ADDR_C%.*} # the /24's first three octets
  has_no_nicroute_rule "$NS_VM" "$ADDR_C" &&
    ! grep -Eq "(^|[ /])${net//./\\.}\.|dev $NIC_C( |\$)" <<<"$(nicroute_routes "$NS_VM")"
}

# table_is NS TABLE FILE: true when TABLE's IPv4 routes equal FILE's content.
table_is() {
  [[ $(ip -n "$1" -4 route show table "$2" 2>/dev/null) == "$(cat "$3")" ]]
}

# ms_between US0 US1: milliseconds (1 decimal) from US0 to US1 (microseconds); "?" if unknown.
ms_between() {
  if [[ -n $1 && -n $2 ]]; then
    awk -v d="$(($2 - $1))" 'BEGIN { printf "%.1f", d / 1000 }'
  else
    printf '?'
  fi
}

# ms_since US: milliseconds (1 decimal) since the microsecond timestamp US.
ms_since() { ms_between "$1" "$(nr_now_us)"; }

# =====================================================================================
step "0. the binary"
if [[ -z ${NICROUTED:-} ]]; then
  nr_find_swift || bail "swift toolchain not found (set NICROUTED=/path/to/nicrouted to skip the build)"
  if (cd "$REPO" && swift build --product nicrouted) >"/tmp/nicroute-scenario-build.$$.log" 2>&1; then
    nr_pass "swift build --product nicrouted"
    rm -f "/tmp/nicroute-scenario-build.$$.log"
  else
    tail -n 30 "/tmp/nicroute-scenario-build.$$.log" | sed 's/^/#   /'
    rm -f "/tmp/nicroute-scenario-build.$$.log"
    bail "swift build --product nicrouted"
  fi
  NICROUTED="$REPO/.build/debug/nicrouted"
fi
if [[ $NICROUTED == manual ]]; then
  echo "# NICROUTED=manual: lib.sh's hand-made stand-in plays the daemon (validates the test, not nicroute)"
else
  [[ -x $NICROUTED ]] || bail "nicrouted binary at $NICROUTED"
  NICROUTED=$(cd "$(dirname "$NICROUTED")" && pwd)/$(basename "$NICROUTED")
  if help=$("$NICROUTED" --help 2>&1) && grep -q -- '--manage' <<<"$help"; then
    nr_pass "nicrouted --help works and documents --manage"
  else
    printf '%s\n' "$help" | head -n 10 | sed 's/^/#   /'
    nr_fail "nicrouted --help works and documents --manage"
  fi
fi

# =====================================================================================
step "1. the topology, without nicrouted"
topo_create
DAEMON_LOG="$NR_TMP/nicrouted.log"
: >"$NR_TMP/nicroute.conf"
mkdir -p "$NR_TMP/state"
start_tcp_echo "$TCP_PORT"
start_udp_echo "$ADDR_A" "$UDP_PORT"
start_udp_echo "$ADDR_B" "$UDP_PORT"

check_traffic A
check_fails "ping via floating IP B fails without nicroute" probe_ping "$FIP_B" 1
check_fails "TCP via floating IP B fails without nicroute" probe_tcp "$FIP_B" "$TCP_PORT" 1
check_fails "UDP via floating IP B fails without nicroute" probe_udp "$FIP_B" "$UDP_PORT" 1
check_route "without nicroute, a reply from B leaves through A (the bug)" "$CLIENT_ADDR" "$ADDR_B" "dev $NIC_A via $GW_A"

# Foreign rules that must survive untouched, then the reference state.
ip -n "$NS_VM" -4 rule add fwmark 0x99 lookup 99 priority 500
ip -n "$NS_VM" -6 rule add fwmark 0x99 lookup 99 priority 500
main_tables "$NS_VM" >"$NR_TMP/main.before"
foreign_rules "$NS_VM" >"$NR_TMP/rules.before"

# =====================================================================================
step "2. nicrouted on a two-NIC VM"
start_daemon
wait_until 10 nicrouted_rule_or_dead "$ADDR_B" || true
if has_nicroute_rule "$NS_VM" "$ADDR_B"; then
  nr_pass "nicroute rule from $ADDR_B (protocol 110) appears"
else
  nicrouted_alive || echo "# nicrouted is not running (exited early)"
  bail "nicroute rule from $ADDR_B (protocol 110) appears within 10 s"
fi
check "nicrouted reports READY=1 through sd_notify" wait_until 5 notify_count_at_least READY=1 1
for a in "$ADDR_A" "$ADDR6_A" "$ADDR6_B"; do
  check "nicroute rule from $a" wait_until 5 has_nicroute_rule "$NS_VM" "$a"
done
check_oracle 5
check_traffic A
check_traffic B
check "docker container reachable from NIC B's address" probe_vm_ping "$ADDR_B" "$CT_ADDR"
check_invariants "with nicrouted"

# =====================================================================================
step "3. hot-plug a third NIC"
router_create C
vm_nic_plug C
MONITOR_OBJECTS="address rule" monitor_start "$NR_TMP/monitor.log"
T0=$(nr_now_us)
ip -n "$NS_VM" addr add "$ADDR_C/${NET_C#*/}" dev "$NIC_C"
if wait_until 5 monitor_has_rule "$NR_TMP/monitor.log" "$ADDR_C"; then
  T1=$(monitor_ts_us "$NR_TMP/monitor.log" "$ADDR_C")
  LAT=$(ms_between "$T0" "$T1")
  # The daemon's own share: from the kernel's address notification to its rule notification,
  # both timestamped by the same `ip -ts monitor`.
  TA=$(grep -Em1 "^\[[^]]+\] [0-9]+: $NIC_C +inet $ADDR_C/" "$NR_TMP/monitor.log" | sed -E 's/^\[([^]]+)\].*/\1/')
  KLAT=none
  [[ -z $TA ]] || KLAT=$(ms_between "$(date -d "$TA" +%s%6N)" "$T1")
  echo "hotplug-rule-latency-ms: $LAT (from the ip command); kernel address event -> rule event: $KLAT ms"
  nr_pass "rule for hot-plugged $ADDR_C appears (${LAT} ms after ip addr add; ${KLAT} ms after the kernel's address event)"
else
  echo "hotplug-rule-latency-ms: none"
  nr_fail "rule for hot-plugged $ADDR_C appears within 5 s"
fi
kill "$MONITOR_PID" 2>/dev/null || true
check "nicroute rule from $ADDR_C (ip rule)" has_nicroute_rule "$NS_VM" "$ADDR_C"
start_udp_echo "$ADDR_C" "$UDP_PORT"
UDP_C_PID=$NR_LAST_PID
check_route "reply from NIC C to the internet" "$CLIENT_ADDR" "$ADDR_C" "dev $NIC_C via $GW_C" 5
check_route "NIC C's subnet from B goes via B's gateway" 30.30.30.50 "$ADDR_B" "dev $NIC_B via $GW_B" 5
check_traffic C
check_traffic B 1
kill "$UDP_C_PID" 2>/dev/null || true
vm_nic_unplug C
if wait_until 3 nothing_left_for_c; then
  nr_pass "unplugged NIC C: no nicroute rule or route left for $ADDR_C"
else
  nr_fail "unplugged NIC C: no nicroute rule or route left for $ADDR_C"
  { nicroute_rules "$NS_VM"; nicroute_routes "$NS_VM"; } | grep -E "${ADDR_C%.*}|$NIC_C" | sed 's/^/#   left: /' || true
fi
check_invariants "after unplug"

# =====================================================================================
step "4. restart"
RULES_B=$(nicroute_rule_count "$NS_VM" "$ADDR_B")
monitor_start "$NR_TMP/monitor-restart.log"
rm -f "$NR_TMP/gap.stop"
gap_poller "$NR_TMP/gap.out" "$NR_TMP/gap.stop" &
GAP_PID=$!
NR_PIDS+=("$GAP_PID")
READY_BEFORE=$(notify_count READY=1)
nr_stop_pid "$NICROUTED_PID" 5
check "SIGTERM before restart: exit status 0 (got $NR_STOP_RC)" test "$NR_STOP_RC" = 0
start_daemon
if ! wait_until 10 notify_count_at_least READY=1 $((READY_BEFORE + 1)); then
  echo "# no READY=1 from the restarted daemon; giving it 2 s"
  sleep 2
fi
touch "$NR_TMP/gap.stop"
wait "$GAP_PID" || true
kill "$MONITOR_PID" 2>/dev/null || true
read -r GAP_SAMPLES GAP_MISSES <"$NR_TMP/gap.out"
read -r GAP_EVENTS GAP_MIN < <(monitor_min_count "$NR_TMP/monitor-restart.log" "$ADDR_B" "$RULES_B")
check "no moment without the rule from $ADDR_B during restart (events: $GAP_EVENTS, fewest rules: $GAP_MIN; polls: $GAP_MISSES of $GAP_SAMPLES missed it)" \
  test "$GAP_MIN" -ge 1 -a "$GAP_MISSES" -eq 0 -a "$GAP_SAMPLES" -gt 0
check "nicrouted still running after restart" nicrouted_alive
check_one_rule_per_address "after restart"
check_traffic B 1
check_invariants "after restart"

# =====================================================================================
step "5. somebody deletes nicroute's objects"
TABLE_B=$(nicroute_table_of "$NS_VM" "$ADDR_B")
monitor_start "$NR_TMP/monitor-repair.log"
while read -r src table prio; do
  [[ $src == "$ADDR_B" || $src == "$ADDR_B/32" ]] || continue
  ip -n "$NS_VM" -4 rule del from "$ADDR_B" lookup "$table" priority "$prio"
done < <(nicroute_rules "$NS_VM")
if wait_until 3 monitor_has_rule "$NR_TMP/monitor-repair.log" "$ADDR_B"; then
  T0=$(monitor_ts_us "$NR_TMP/monitor-repair.log" "$ADDR_B" Deleted)
  T1=$(monitor_ts_us "$NR_TMP/monitor-repair.log" "$ADDR_B")
  nr_pass "deleted rule from $ADDR_B is back ($(ms_between "$T0" "$T1") ms after the deletion)"
else
  nr_fail "deleted rule from $ADDR_B is back within 3 s"
fi
kill "$MONITOR_PID" 2>/dev/null || true
check "nicroute rule from $ADDR_B (ip rule)" has_nicroute_rule "$NS_VM" "$ADDR_B"
ip -n "$NS_VM" -6 rule del from "$ADDR6_B" lookup "$(nicroute_table_of "$NS_VM" "$ADDR6_B")" 2>/dev/null || true
check "deleted rule from $ADDR6_B is back" wait_until 3 has_nicroute_rule "$NS_VM" "$ADDR6_B"
if [[ -n $TABLE_B ]]; then
  ip -n "$NS_VM" -4 route show table "$TABLE_B" >"$NR_TMP/table-b.before"
  ip -n "$NS_VM" -4 route flush table "$TABLE_B"
  T0=$(nr_now_us)
  if wait_until 3 table_is "$NS_VM" "$TABLE_B" "$NR_TMP/table-b.before"; then
    nr_pass "flushed table $TABLE_B is refilled ($(ms_since "$T0") ms)"
  else
    nr_fail "flushed table $TABLE_B is refilled within 3 s"
  fi
else
  nr_fail "table of the rule from $ADDR_B found"
fi
check_one_rule_per_address "after repair"
check_oracle 3
check_traffic B 1
check_invariants "after repair"

# =====================================================================================
step "5a. a NIC goes down and up"
# The kernel drops the routes through a link that goes down (IPv4 without a notification);
# nicroute withdraws the NIC's rules and puts everything back when it comes up. (IPv6 drops its
# addresses on down unless keep_addr_on_down is set, as network managers do.)
ip netns exec "$NS_VM" sysctl -qw "net.ipv6.conf.$NIC_B.keep_addr_on_down=1"
ip -n "$NS_VM" link set "$NIC_B" down
check "NIC B down: its rules are withdrawn" wait_until 3 has_no_nicroute_rule "$NS_VM" "$ADDR_B"
check "NIC A keeps its rule while B is down" has_nicroute_rule "$NS_VM" "$ADDR_A"
ip -n "$NS_VM" link set "$NIC_B" up
check "NIC B up again: its rule is back" wait_until 5 has_nicroute_rule "$NS_VM" "$ADDR_B"
check_route "after the bounce, replies from B leave through B" "$CLIENT_ADDR" "$ADDR_B" "dev $NIC_B via $GW_B" 5
check_traffic B 3
check_one_rule_per_address "after the bounce"
check_invariants "after the bounce"

# =====================================================================================
step "5b. configuration reload (SIGHUP)"
# An invalid file is refused with file, line and reason; the running policy stays.
printf '[Routing]\nTables=200-300\n' >"$NR_TMP/nicroute.conf"
kill -HUP "$NICROUTED_PID"
check "invalid configuration refused with file:line: reason" \
  wait_until 3 grep -q "nicroute.conf:2: .*253" "$DAEMON_LOG"
check "nicrouted still running after the refused reload" nicrouted_alive
check_one_rule_per_address "after a refused reload"
# A valid change is applied: ignoring eth1 removes its rules; an empty file brings them back.
printf '[Interfaces]\nIgnore=%s\n' "$NIC_B" >"$NR_TMP/nicroute.conf"
kill -HUP "$NICROUTED_PID"
check "reload with Ignore=$NIC_B removes the rules from $ADDR_B" wait_until 3 has_no_nicroute_rule "$NS_VM" "$ADDR_B"
check "rules from $ADDR_A stay" has_nicroute_rule "$NS_VM" "$ADDR_A"
: >"$NR_TMP/nicroute.conf"
kill -HUP "$NICROUTED_PID"
check "reload with the default configuration restores the rule from $ADDR_B" \
  wait_until 3 has_nicroute_rule "$NS_VM" "$ADDR_B"
check_one_rule_per_address "after reloads"

# =====================================================================================
step "5d. address renewals (a DHCP client resetting lifetimes)"
# While nothing but addresses is announced and they are the ones the last quiet pass saw, a pass
# reads the addresses alone (its debug line says read=addresses) and changes nothing; a new
# address, or a renewal arriving with any other change, makes it read everything.
renew_a() { ip -n "$NS_VM" addr change "$ADDR_A/${NET_A#*/}" dev "$NIC_A" valid_lft "$1" preferred_lft "$1"; }
# reconciled_since LINE PATTERN: the daemon's "reconciled" lines after line LINE that match.
reconciled_since() { tail -n +"$(($1 + 1))" "$DAEMON_LOG" | grep ' reconciled' | grep -E -- "$2" || true; }
# After 5b's reloads the IPv6 gateways are confirmed by a neighbour probe (first host) a moment
# later: start from the complete state, so that the renewals meet a quiet daemon.
check_oracle 5
renew_a 3600 # the first renewal makes the address non-permanent: a change of the picture
sleep 0.3
L0=$(wc -l <"$DAEMON_LOG")
for ((i = 0; i < 5; i++)); do
  renew_a 3600
  sleep 0.1
done
sleep 0.3
if [[ $NICROUTED != manual ]]; then # the stand-in writes no debug log
  n=$(reconciled_since "$L0" 'read=addresses' | grep -c 'changes=0' || true)
  check "renewals: passes read the addresses only and change nothing ($n of 5)" test "$n" -ge 3
  check "renewals: no pass after them changed anything" test -z "$(reconciled_since "$L0" 'changes=[1-9]')"
fi
L0=$(wc -l <"$DAEMON_LOG")
while read -r src table prio; do
  [[ $src == "$ADDR_B" || $src == "$ADDR_B/32" ]] || continue
  ip -n "$NS_VM" -4 rule del from "$ADDR_B" lookup "$table" priority "$prio"
done < <(nicroute_rules "$NS_VM")
renew_a 3600
check "a renewal with a deleted rule: the rule from $ADDR_B is back" wait_until 3 has_nicroute_rule "$NS_VM" "$ADDR_B"
if [[ $NICROUTED != manual ]]; then
  check "... by a pass that read everything" \
    test -n "$(reconciled_since "$L0" 'read=everything' | grep -E 'changes=[1-9]')"
fi
ADDR_A2=${ADDR_A%.*}.77
ip -n "$NS_VM" addr add "$ADDR_A2/${NET_A#*/}" dev "$NIC_A"
check "a new address after renewals gets its rule ($ADDR_A2)" wait_until 3 has_nicroute_rule "$NS_VM" "$ADDR_A2"
ip -n "$NS_VM" addr del "$ADDR_A2/${NET_A#*/}" dev "$NIC_A"
check "its removal withdraws the rule" wait_until 3 has_no_nicroute_rule "$NS_VM" "$ADDR_A2"
renew_a forever
check_one_rule_per_address "after renewals"
check_oracle 3

# =====================================================================================
step "5c. another tool keeps deleting nicroute's rule"
# A bounded loop (3 s, at most 300 rounds) deletes the rule from B as soon as it reappears.
monitor_start "$NR_TMP/monitor-fight.log"
FIGHT_END=$(($(nr_now_us) + 3000000))
for ((i = 0; i < 300; i++)); do
  (($(nr_now_us) < FIGHT_END)) || break
  ip -n "$NS_VM" -4 rule del from "$ADDR_B" 2>/dev/null || sleep 0.01
done
kill "$MONITOR_PID" 2>/dev/null || true
READDS=$(grep -cE "^\[[^]]+\] [0-9]+:[[:space:]]+from $ADDR_B(/32)? " "$NR_TMP/monitor-fight.log" || true)
echo "# fight: nicrouted re-added the rule $READDS times in 3 s"
check "no tight fight loop: at most 15 re-adds in 3 s (got $READDS)" test "$READDS" -le 15
check "the fight is reported (back-off in the log)" grep -q "backing off" "$DAEMON_LOG"
check "after the fight the rule from $ADDR_B is back (within the back-off)" \
  wait_until 10 has_nicroute_rule "$NS_VM" "$ADDR_B"
check_one_rule_per_address "after the fight"

# =====================================================================================
step "6. stop"
nr_stop_pid "$NICROUTED_PID" 5
check "SIGTERM: nicrouted exits with status 0 within 5 s (got $NR_STOP_RC)" test "$NR_STOP_RC" = 0
check "rules kept after exit (a restart must not cause a gap)" has_nicroute_rule "$NS_VM" "$ADDR_B"
check_invariants "after exit"

[[ $NR_FAIL -gt 0 ]] && show_daemon_log
nr_summary_line
[[ $NR_FAIL -eq 0 ]]
