#!/usr/bin/env bash
# System test: nicrouted's sd_notify contract against a real Unix datagram socket.
#
#   sudo bash Tests/System/notify.sh
#
# In network namespaces of its own (nsn-vm-PID with eth0 10.10.10.29/24 and eth1
# 20.20.20.16/24, their gateways 10.10.10.1 and 20.20.20.1 in nsn-gw-PID) it runs
# `nicrouted --manage 'eth*'` with NOTIFY_SOCKET pointing at a listener (syshelper.py) that
# timestamps every datagram on CLOCK_MONOTONIC and snapshots `ip -j rule` when READY=1 comes.
# Checks: READY=1 only once the rules are in the kernel, with STATUS "2 NICs, 2 rules, last
# change ..."; a new STATUS after an address is added; SIGHUP -> RELOADING=1 with a current
# MONOTONIC_USEC, then READY=1; no WATCHDOG=1 unless asked; with WATCHDOG_USEC=400000 pings
# from the event loop (between interval/2 and 3/4) that stop while the daemon is SIGSTOPped and
# resume on SIGCONT, on the daemon's only thread; SIGTERM -> STOPPING=1 and exit status 0.
#
# Environment:
#   NICROUTED=/path/to/nicrouted   test this binary (default: `swift build --product nicrouted`
#                                  with scratch path $NR_SCRATCH_PATH, default .build)
#   NR_KEEP_TMP=1                  keep the temp dir (notify log, daemon logs) after the run
#
# Prints one `ok - ...` / `not ok - ...` line per check, ends with `notify: N passed, M failed`
# and exits non-zero when a check failed. Nothing is configured in the root namespace.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
NR_PREFIX=nsn
# shellcheck source-path=SCRIPTDIR source=../Scenario/lib.sh
source "$REPO/Tests/Scenario/lib.sh"
NS_GW="$NR_PREFIX-gw-$NR_ID"

nr_require_root
nr_install_traps
nr_summary notify
nr_ensure_packages ip:iproute2 python3:python3 jq:jq ps:procps
nr_tmp_init

HELPER="$HERE/syshelper.py"
SOCK="$NR_TMP/notify.sock"
LOG="$NR_TMP/notify.jsonl"
DAEMON_PID=""

# bail REASON: fail REASON, show what the daemon and the listener said, summary, stop.
bail() {
  nr_fail "$1"
  show_logs
  nr_summary_line
  exit 1
}

# show_logs: the daemon logs and the datagrams received, as comments.
show_logs() {
  local f
  for f in "$NR_TMP"/daemon-*.log; do
    [[ -s $f ]] || continue
    echo "# $(basename "$f") (last 20 lines):"
    tail -n 20 "$f" | sed 's/^/#   /'
  done
  if [[ -s $LOG ]]; then
    echo "# datagrams received (last 30):"
    jq -r '"\(.us) \(.msg | gsub("\n"; " | "))"' "$LOG" | tail -n 30 | sed 's/^/#   /'
  fi
}

# ---- the notify log -------------------------------------------------------------------

# mark NAME: send the marker MARK=NAME to the listener (ordered with the daemon's datagrams).
mark() {
  "$NR_PY" "$HELPER" mark "$SOCK" "MARK=$1"
  wait_until 5 marked "$1" || bail "marker $1 never reached the listener"
}

# marked NAME: true once the listener logged marker NAME.
marked() { [[ -n $(mark_us "$1") ]]; }

# mark_us NAME: the listener's receipt time of marker NAME (empty until it arrived).
mark_us() { jq -r --arg m "MARK=$1" 'select(.msg == $m) | .us' "$LOG" | tail -n1; }

# count_after MARK REGEX [UNTIL_MARK]: datagrams matching REGEX received after marker MARK
# (and before UNTIL_MARK).
count_after() {
  local from until=1e18
  from=$(mark_us "$1")
  [[ -n ${3:-} ]] && until=$(mark_us "$3")
  jq -s --arg re "$2" --argjson f "${from:-1e18}" --argjson u "${until:-1e18}" \
    '[.[] | select(.us >= $f and .us <= $u and (.msg | test($re)))] | length' "$LOG"
}

# has_after MARK REGEX: at least one datagram matching REGEX after marker MARK.
has_after() { [[ $(count_after "$1" "$2") -ge 1 ]]; }

# first_after MARK REGEX: the first such datagram, as a JSON record ("null" when none).
first_after() {
  local from
  from=$(mark_us "$1")
  jq -sc --arg re "$2" --argjson f "${from:-1e18}" \
    '[.[] | select(.us >= $f and (.msg | test($re)))] | .[0]' "$LOG"
}

# field REC KEY: the value of KEY= in the datagram of record REC (JSON), empty when absent.
field() { jq -r --arg k "$2" '.msg | split("\n")[] | select(startswith($k + "=")) | .[($k | length) + 1:]' <<<"$1" | head -n1; }

# ---- topology and daemon --------------------------------------------------------------

# topo: the VM namespace with eth0/eth1 and the gateway namespace behind them.
topo() {
  nr_ns_new "$NS_VM"
  nr_ns_new "$NS_GW"
  # No IPv6 DAD: a link-local address finishing DAD is an RTM_NEWADDR of its own, which the
  # daemon reports as the "last change" and which could race with the change under test.
  nr_sysctl "$NS_VM" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  ip -n "$NS_VM" link add eth0 type veth peer name gw0 netns "$NS_GW"
  ip -n "$NS_VM" link add eth1 type veth peer name gw1 netns "$NS_GW"
  ip -n "$NS_GW" addr add 10.10.10.1/24 dev gw0
  ip -n "$NS_GW" addr add 20.20.20.1/24 dev gw1
  ip -n "$NS_GW" link set gw0 up
  ip -n "$NS_GW" link set gw1 up
  ip -n "$NS_VM" addr add 10.10.10.29/24 dev eth0
  ip -n "$NS_VM" addr add 20.20.20.16/24 dev eth1
  ip -n "$NS_VM" link set eth0 up
  ip -n "$NS_VM" link set eth1 up
  ip -n "$NS_VM" route add default via 10.10.10.1 dev eth0
}

# start_daemon NAME ENV...: start nicrouted in the VM with NOTIFY_SOCKET and the extra
# environment ENV (KEY=VALUE); its PID (`ip netns exec` and `env` exec) in DAEMON_PID.
start_daemon() {
  local name=$1
  shift
  mark "start-$name"
  env -u WATCHDOG_USEC -u WATCHDOG_PID -u JOURNAL_STREAM NOTIFY_SOCKET="$SOCK" "$@" \
    ip netns exec "$NS_VM" "$NICROUTED" --manage 'eth*' --state-dir "$NR_TMP/state" \
    >"$NR_TMP/daemon-$name.log" 2>&1 &
  DAEMON_PID=$!
  NR_PIDS+=("$DAEMON_PID")
}

# all_threads_stopped PID: every thread of PID is in state T (stopped).
all_threads_stopped() {
  local f state
  for f in /proc/"$1"/task/*/stat; do
    state=$(sed -E 's/^.*\) (.).*$/\1/' "$f" 2>/dev/null) || return 1
    [[ $state == T ]] || return 1
  done
}

# stop_daemon WHAT: SIGTERM the daemon; check STOPPING=1 and exit status 0 within 5 s.
stop_daemon() {
  mark "term-$1"
  nr_stop_pid "$DAEMON_PID" 5
  if [[ $NR_STOP_RC == 0 ]]; then
    nr_pass "$1: SIGTERM -> exit status 0 within 5 s"
  else
    nr_fail "$1: SIGTERM -> exit status 0 within 5 s (got: $NR_STOP_RC)"
  fi
  if wait_until 2 has_after "term-$1" '(^|\n)STOPPING=1(\n|$)'; then
    nr_pass "$1: SIGTERM -> STOPPING=1"
  else
    nr_fail "$1: SIGTERM -> STOPPING=1 (none received)"
  fi
  # NotifyAccess=main: systemd only listens to the main PID (SO_PASSCRED on our socket).
  local others
  others=$(jq -rs --arg from "MARK=start-$1" --argjson pid "$DAEMON_PID" '
    (map(.msg) | index($from)) as $i | .[$i + 1:] | map(select((.msg | startswith("MARK=")) | not))
    | map(select(.pid != $pid) | "pid \(.pid): \(.msg | gsub("\n"; " | "))") | join("; ")' "$LOG")
  if [[ -z $others ]]; then
    nr_pass "$1: every datagram came from the daemon's main PID $DAEMON_PID"
  else
    nr_fail "$1: every datagram came from the daemon's main PID $DAEMON_PID (also: $others)"
  fi
}

# ---- build ----------------------------------------------------------------------------
if [[ -z ${NICROUTED:-} ]]; then
  nr_ensure_packages pkg-config:pkg-config pkgconfig-libsystemd:libsystemd-dev
  nr_find_swift || bail "swift toolchain not found (set NICROUTED=/path/to/nicrouted to skip the build)"
  scratch=${NR_SCRATCH_PATH:-$REPO/.build}
  if (cd "$REPO" && swift build --scratch-path "$scratch" --product nicrouted) >"$NR_TMP/build.log" 2>&1; then
    nr_pass "swift build --product nicrouted"
  else
    tail -n 30 "$NR_TMP/build.log" | sed 's/^/#   /'
    bail "swift build --product nicrouted"
  fi
  NICROUTED="$scratch/debug/nicrouted"
fi
[[ -x $NICROUTED ]] || bail "no executable at NICROUTED=$NICROUTED"
NICROUTED=$(cd "$(dirname "$NICROUTED")" && pwd)/$(basename "$NICROUTED")

# ---- setup ----------------------------------------------------------------------------
topo
nr_bg - "$NR_TMP/listener.log" "$NR_PY" "$HELPER" notify-listen "$SOCK" "$LOG" "$NS_VM"
wait_until 5 test -e "$LOG" || bail "sd_notify listener did not start"
echo "# namespaces $NS_VM, $NS_GW; NOTIFY_SOCKET=$SOCK"

# ---- run 1: READY, STATUS, RELOADING, STOPPING (no watchdog) ---------------------------
echo "# --- run 1: nicrouted --manage 'eth*' (no WATCHDOG_USEC)"
start_daemon run1
if wait_until 10 has_after start-run1 '(^|\n)READY=1(\n|$)'; then
  nr_pass "READY=1 received"
else
  bail "READY=1 received within 10 s"
fi
ready=$(first_after start-run1 '(^|\n)READY=1(\n|$)')

# The kernel's rules at the moment READY=1 was received.
rule_from_at_ready() {
  jq -e --arg a "$1" --arg re "^($NICROUTE_PROTO_RE)\$" \
    '[.rules[]? | select(.src == $a and ((.protocol // "") | tostring | test($re)))] | length >= 1' \
    <<<"$ready" >/dev/null
}
for a in 10.10.10.29 20.20.20.16; do
  if [[ $(jq -r .frozen <<<"$ready") != true ]]; then
    nr_fail "the listener froze the daemon (SIGSTOP) to read the kernel at READY=1"
  elif rule_from_at_ready "$a"; then
    nr_pass "at READY=1 the kernel already holds nicroute's rule from $a (daemon frozen while asked)"
  else
    nr_fail "at READY=1 the kernel already holds nicroute's rule from $a; kernel had: $(jq -c '[.rules[]? | {src, table, priority, protocol}]' <<<"$ready")"
  fi
done
status=$(field "$ready" STATUS)
if [[ $status =~ ^2\ NICs,\ 2\ rules,\ last\ change\  ]]; then
  nr_pass "READY=1 comes with STATUS=$status"
else
  nr_fail "READY=1 comes with STATUS='2 NICs, 2 rules, last change ...' (got '$status')"
fi
if [[ $(count_after start-run1 '(^|\n)READY=1(\n|$)') -eq 1 ]]; then
  nr_pass "exactly one READY=1 at startup"
else
  nr_fail "exactly one READY=1 at startup (got $(count_after start-run1 '(^|\n)READY=1(\n|$)'))"
fi

# An address change: a new STATUS, and no READY=1 (that is for reloads).
mark addr
ip -n "$NS_VM" addr add 20.20.20.17/24 dev eth1
status_re='(^|\n)STATUS=[^\n]*3 rules[^\n]*eth1 \+20\.20\.20\.17'
if wait_until 5 has_after addr "$status_re"; then
  nr_pass "after 'ip addr add 20.20.20.17/24 dev eth1': STATUS=$(field "$(first_after addr "$status_re")" STATUS)"
else
  nr_fail "after 'ip addr add 20.20.20.17/24 dev eth1': a STATUS with '3 rules' and 'eth1 +20.20.20.17' within 5 s (got: $(jq -r --argjson f "$(mark_us addr)" 'select(.us >= $f) | .msg | gsub("\n"; " | ")' "$LOG" | paste -sd ';'))"
fi
check "no READY=1 for a plain address change" test "$(count_after addr '(^|\n)READY=1(\n|$)')" -eq 0

# SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1.
mark hup
kill -HUP "$DAEMON_PID"
if wait_until 5 has_after hup '(^|\n)RELOADING=1(\n|$)'; then
  nr_pass "SIGHUP -> RELOADING=1"
  reloading=$(first_after hup '(^|\n)RELOADING=1(\n|$)')
  usec=$(field "$reloading" MONOTONIC_USEC)
  recv_us=$(jq -r .us <<<"$reloading")
  hup_us=$(mark_us hup)
  if [[ $usec =~ ^[0-9]+$ ]]; then
    delta=$((recv_us - usec))
    # Sent after the signal (the marker left before kill) and before the listener got it.
    if ((usec >= hup_us - 1000 && delta >= 0 && delta < 3000000)); then
      nr_pass "RELOADING=1 carries MONOTONIC_USEC=$usec (CLOCK_MONOTONIC; received ${delta} us later, SIGHUP $((usec - hup_us)) us before)"
    else
      nr_fail "RELOADING=1 carries a current MONOTONIC_USEC (got $usec; SIGHUP at $hup_us, received at $recv_us)"
    fi
  else
    nr_fail "RELOADING=1 carries MONOTONIC_USEC=<number> (got '${usec}' in '$(jq -r '.msg | gsub("\n"; " | ")' <<<"$reloading")')"
  fi
  if wait_until 5 has_after hup '(^|\n)READY=1(\n|$)'; then
    ready2=$(first_after hup '(^|\n)READY=1(\n|$)')
    if [[ $(jq -r .us <<<"$ready2") -ge $recv_us ]]; then
      nr_pass "READY=1 after RELOADING=1 (STATUS=$(field "$ready2" STATUS))"
    else
      nr_fail "READY=1 after RELOADING=1 (it came first)"
    fi
  else
    nr_fail "READY=1 after RELOADING=1 within 5 s"
  fi
else
  nr_fail "SIGHUP -> RELOADING=1 within 5 s"
fi
check "no WATCHDOG=1 without WATCHDOG_USEC" test "$(count_after start-run1 '(^|\n)WATCHDOG=1(\n|$)')" -eq 0
stop_daemon run1

# ---- run 2: the watchdog --------------------------------------------------------------
echo "# --- run 2: WATCHDOG_USEC=400000 (WATCHDOG_PID unset)"
start_daemon run2 WATCHDOG_USEC=400000
wait_until 10 has_after start-run2 '(^|\n)READY=1(\n|$)' || bail "run 2: READY=1 within 10 s"
mark window
sleep 1.5
mark window-end
n=$(count_after window '(^|\n)WATCHDOG=1(\n|$)' window-end)
if [[ $n -ge 3 ]]; then
  nr_pass "WATCHDOG=1 pings with WATCHDOG_USEC=400000: $n in 1.5 s"
else
  nr_fail "at least 3 WATCHDOG=1 within 1.5 s with WATCHDOG_USEC=400000 (got $n)"
fi
gap=$(jq -s --argjson f "$(mark_us window)" --argjson u "$(mark_us window-end)" \
  '[.[] | select(.us >= $f and .us <= $u and (.msg | test("(^|\n)WATCHDOG=1(\n|$)"))) | .us]
   | [range(1; length) as $i | .[$i] - .[$i - 1]] | min // -1' "$LOG")
if [[ $gap == -1 ]]; then
  nr_fail "WATCHDOG=1 pings no closer than interval/4 (fewer than 2 pings)"
elif [[ $gap -ge 100000 ]]; then
  nr_pass "WATCHDOG=1 pings no closer than interval/4 (closest: $((gap / 1000)) ms apart)"
else
  nr_fail "WATCHDOG=1 pings no closer than interval/4 = 100 ms (closest: $((gap / 1000)) ms apart)"
fi

# nicrouted is one sd-event loop on one thread, which also sends the watchdog's pings
# (sd_event_set_watchdog): no Swift concurrency executor, no libdispatch worker (a thread named
# *-qos, whose pool monitor would wake the daemon every second for good), no reader thread.
threads=$(cat /proc/"$DAEMON_PID"/task/*/comm 2>/dev/null | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')
check "nicrouted runs on one thread, the event loop's (threads: $threads)" \
  test "$(ls /proc/"$DAEMON_PID"/task | wc -l)" -eq 1

kill -STOP "$DAEMON_PID"
wait_until 2 all_threads_stopped "$DAEMON_PID" || nr_log "daemon threads not all in state T"
mark stopped
sleep 1
mark continued
kill -CONT "$DAEMON_PID"
n=$(count_after stopped '(^|\n)WATCHDOG=1(\n|$)' continued)
check "no WATCHDOG=1 during 1 s of SIGSTOP (got $n)" test "$n" -eq 0
if wait_until 2 has_after continued '(^|\n)WATCHDOG=1(\n|$)'; then
  nr_pass "WATCHDOG=1 resumes after SIGCONT"
else
  nr_fail "WATCHDOG=1 resumes within 2 s of SIGCONT"
fi
stop_daemon run2

# ---- run 3: WATCHDOG_PID naming another process disables the pings --------------------
echo "# --- run 3: WATCHDOG_USEC=400000 WATCHDOG_PID=1 (not the daemon)"
start_daemon run3 WATCHDOG_USEC=400000 WATCHDOG_PID=1
wait_until 10 has_after start-run3 '(^|\n)READY=1(\n|$)' || bail "run 3: READY=1 within 10 s"
sleep 1
n=$(count_after start-run3 '(^|\n)WATCHDOG=1(\n|$)')
check "no WATCHDOG=1 when WATCHDOG_PID is another process (got $n in 1 s)" test "$n" -eq 0
stop_daemon run3

[[ $NR_FAIL -eq 0 ]] || show_logs
nr_summary_line
[[ $NR_FAIL -eq 0 ]]
