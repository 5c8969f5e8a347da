#!/usr/bin/env bash
# System test: nicrouted's logging, to a real systemd-journald and to plain stderr.
#
#   sudo bash Tests/System/journal.sh
#
# Plain runs first (no journald): without JOURNAL_STREAM, and with a JOURNAL_STREAM that does
# not match stderr, the daemon logs its changes to stderr. Then, in a private mount and PID
# namespace (`unshare --mount --propagation private --pid --fork --kill-child --mount-proc`)
# with tmpfs on /run/systemd, /run/log and /var/log/journal, a private systemd-journald is
# started; nicrouted runs with stdout/stderr connected to journald's stream socket and
# JOURNAL_STREAM set to that socket's device:inode, as systemd does for StandardError=journal
# (`systemd-cat` does not set JOURNAL_STREAM: syshelper.py journal-exec does). The test
# asserts the structured fields of its entries: PRIORITY, NICROUTE_ACTION, NICROUTE_COMMAND,
# NICROUTE_TABLE, NICROUTE_LINK, CODE_FILE/CODE_LINE/CODE_FUNC, MESSAGE. The host's journal is
# never touched: everything of journald's lives in that namespace's tmpfs and dies with it.
#
# Environment:
#   NICROUTED=/path/to/nicrouted   test this binary (default: `swift build --product nicrouted`
#                                  with scratch path $NR_SCRATCH_PATH, default .build)
#   NR_KEEP_TMP=1                  keep the temp dir (journal export, logs) after the run
#
# Prints one `ok - ...` / `not ok - ...` line per check, ends with `journal: N passed, M failed`
# and exits non-zero when a check failed. Nothing is configured in the root namespace.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
HELPER="$HERE/syshelper.py"
JOURNALD=/lib/systemd/systemd-journald

# ---- inside the private mount+PID namespace -------------------------------------------
# `journal.sh --inner`: runs as PID 1 of the new PID namespace (so every process it starts
# dies with it). Starts journald, runs the daemon against it in $NS_J, exports the journal
# to $NR_TMP; leaves "key=value" facts in $NR_TMP/inner.facts for the outer script to check.
inner() {
  # shellcheck source-path=SCRIPTDIR source=../Scenario/lib.sh
  source "$REPO/Tests/Scenario/lib.sh"
  local facts="$NR_TMP/inner.facts" d
  # Globals: the EXIT trap runs after this function has returned.
  jpid="" dpid=""
  fact() { printf '%s=%s\n' "$1" "$2" >>"$facts"; }
  # shellcheck disable=SC2317 # called by the trap
  inner_cleanup() {
    set +e
    [[ -n $dpid ]] && kill -KILL "$dpid" 2>/dev/null
    if [[ -n $jpid ]]; then
      kill -TERM "$jpid" 2>/dev/null
      wait_until 3 nr_pid_gone "$jpid" || kill -KILL "$jpid" 2>/dev/null
    fi
  }
  trap inner_cleanup EXIT
  : >"$facts"

  for d in /run/systemd /run/log /var/log/journal; do
    [[ -d $d ]] || mkdir -p "$d" # only when missing; hidden below our tmpfs from now on
    mount -t tmpfs -o mode=0755 tmpfs "$d"
  done
  # A quiet, volatile, unthrottled journal that does not import the host's kernel log.
  mkdir -p /run/systemd/journald.conf.d
  printf '[Journal]\nStorage=volatile\nReadKMsg=no\nForwardToSyslog=no\nForwardToKMsg=no\nForwardToConsole=no\nForwardToWall=no\nRateLimitBurst=0\n' \
    >/run/systemd/journald.conf.d/50-nicroute-test.conf
  env -u NOTIFY_SOCKET SYSTEMD_LOG_TARGET=console "$JOURNALD" >"$NR_TMP/journald.log" 2>&1 &
  jpid=$!
  if wait_until 10 test -S /run/systemd/journal/socket -a -S /run/systemd/journal/stdout; then
    fact journald_ready 1
  else
    fact journald_ready 0
    return 1
  fi

  # nicrouted with stdout+stderr on a journald stream and JOURNAL_STREAM naming it.
  "$NR_PY" "$HELPER" journal-exec nicrouted env -u NOTIFY_SOCKET -u WATCHDOG_USEC \
    ip netns exec "$NS_J" "$NICROUTED" --manage eth1 --state-dir "$NR_TMP/state-j" &
  dpid=$!
  if wait_until 10 has_nicroute_rule "$NS_J" 20.20.20.16; then
    fact rule16 1
  else
    fact rule16 0
  fi
  fact table16 "$(nicroute_table_of "$NS_J" 20.20.20.16)"
  ip -n "$NS_J" addr add 20.20.20.17/24 dev eth1
  if wait_until 10 has_nicroute_rule "$NS_J" 20.20.20.17; then
    fact rule17 1
  else
    fact rule17 0
  fi
  nr_stop_pid "$dpid" 5
  dpid=""
  fact daemon_rc "$NR_STOP_RC"
  # journald writes as it receives; wait (bounded) for the last entry of the daemon.
  # shellcheck disable=SC2317 # called through wait_until
  journal_has_stopping() {
    journalctl --no-pager -q -o cat SYSLOG_IDENTIFIER=nicrouted 2>/dev/null | grep -q '^stopping'
  }
  if wait_until 5 journal_has_stopping; then fact journal_stopping 1; else fact journal_stopping 0; fi
  journalctl --no-pager -q -o json SYSLOG_IDENTIFIER=nicrouted >"$NR_TMP/journal.json"
  journalctl --no-pager -q -o verbose SYSLOG_IDENTIFIER=nicrouted >"$NR_TMP/journal.verbose"
  journalctl --no-pager -q -o verbose NICROUTE_ACTION=add >"$NR_TMP/journal.add.verbose"
  fact finished 1
}

if [[ ${1:-} == --inner ]]; then
  set -euo pipefail
  inner
  exit 0
fi

# ---- outside: plain runs, then the journald run in its namespaces, then the checks ----
NR_PREFIX=nsj
# shellcheck source-path=SCRIPTDIR source=../Scenario/lib.sh
source "$REPO/Tests/Scenario/lib.sh"

nr_require_root
nr_install_traps
nr_summary journal
nr_ensure_packages ip:iproute2 python3:python3 jq:jq ps:procps journalctl:systemd unshare:util-linux
[[ -x $JOURNALD ]] || nr_ensure_packages systemd-journald-binary:systemd
nr_tmp_init

# bail REASON: fail REASON, show the logs, print the summary and stop.
bail() {
  nr_fail "$1"
  show_logs
  nr_summary_line
  exit 1
}

# show_logs: what the daemon, journald and the inner script said, as comments.
show_logs() {
  local f
  for f in "$NR_TMP"/plain-*.log "$NR_TMP"/journald.log "$NR_TMP"/inner.log "$NR_TMP"/inner.facts; do
    [[ -s $f ]] || continue
    echo "# $(basename "$f") (last 20 lines):"
    tail -n 20 "$f" | sed 's/^/#   /'
  done
}

# vm NS GW: a VM namespace NS with eth1 20.20.20.16/24 (default route via 20.20.20.1), whose
# gateway sits in namespace GW.
vm() {
  local ns=$1 gw=$2
  nr_ns_new "$ns"
  nr_ns_new "$gw"
  ip -n "$ns" link add eth1 type veth peer name gw1 netns "$gw"
  ip -n "$gw" addr add 20.20.20.1/24 dev gw1
  ip -n "$gw" link set gw1 up
  ip -n "$ns" addr add 20.20.20.16/24 dev eth1
  ip -n "$ns" link set eth1 up
  ip -n "$ns" route add default via 20.20.20.1 dev eth1
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

# ---- plain runs: stderr ---------------------------------------------------------------
NS_P="$NR_PREFIX-p-$NR_ID"
vm "$NS_P" "$NR_PREFIX-pg-$NR_ID"

# plain_run NAME ADDR ENV...: start the daemon in NS_P with environment ENV and stderr to
# plain-NAME.log, add ADDR (unless empty) once it is up, wait for ADDR's rule, stop it.
plain_run() {
  local name=$1 addr=$2 pid
  shift 2
  env -u JOURNAL_STREAM -u NOTIFY_SOCKET -u WATCHDOG_USEC "$@" \
    ip netns exec "$NS_P" "$NICROUTED" --manage eth1 --state-dir "$NR_TMP/state-p" \
    >"$NR_TMP/plain-$name.out" 2>"$NR_TMP/plain-$name.log" &
  pid=$!
  NR_PIDS+=("$pid")
  wait_until 10 has_nicroute_rule "$NS_P" 20.20.20.16 || nr_log "$name: no rule from 20.20.20.16 after 10 s"
  # The daemon's "ready" line: it has read the kernel and is listening.
  wait_until 5 grep -q 'ready' "$NR_TMP/plain-$name.log" || true
  ip -n "$NS_P" addr add "$addr/24" dev eth1
  wait_until 10 has_nicroute_rule "$NS_P" "$addr" || nr_log "$name: no rule from $addr after 10 s"
  nr_stop_pid "$pid" 5
  PLAIN_RC=$NR_STOP_RC
}

echo "# --- plain run without JOURNAL_STREAM (namespace $NS_P)"
plain_run nostream 20.20.20.18
check "without journald: 'ip -4 rule add ... from 20.20.20.16' on stderr" \
  grep -Eq 'ip -4 rule add .*from 20\.20\.20\.16( |$)' "$NR_TMP/plain-nostream.log"
check "without journald: 'ip -4 rule add ... from 20.20.20.18' on stderr after the address came" \
  grep -Eq 'ip -4 rule add .*from 20\.20\.20\.18( |$)' "$NR_TMP/plain-nostream.log"
check "without journald: exit status 0 after SIGTERM (got $PLAIN_RC)" test "$PLAIN_RC" = 0

echo "# --- plain run with a JOURNAL_STREAM that is not its stderr"
plain_run mismatch 20.20.20.19 JOURNAL_STREAM=1:1
check "JOURNAL_STREAM not matching stderr: 'ip -4 rule add ... from 20.20.20.19' on stderr" \
  grep -Eq 'ip -4 rule add .*from 20\.20\.20\.19( |$)' "$NR_TMP/plain-mismatch.log"

# ---- the journald run -----------------------------------------------------------------
NS_J="$NR_PREFIX-j-$NR_ID"
vm "$NS_J" "$NR_PREFIX-jg-$NR_ID"
echo "# --- journald run (private mount+PID namespace, namespace $NS_J)"
inner_rc=0
# --kill-child: if unshare dies (our cleanup kills it), its child, PID 1 of the new PID
# namespace, gets SIGKILL, and with it journald and the daemon.
NS_J=$NS_J NR_TMP=$NR_TMP NR_PY=$NR_PY NICROUTED=$NICROUTED \
  unshare --mount --propagation private --pid --fork --kill-child --mount-proc \
  bash "$HERE/journal.sh" --inner >"$NR_TMP/inner.log" 2>&1 &
inner_pid=$!
NR_PIDS+=("$inner_pid")
if ! wait_until 40 nr_pid_gone "$inner_pid"; then
  nr_log "journald run still going after 40 s: killing it"
  kill -KILL "$inner_pid" 2>/dev/null || true
fi
wait "$inner_pid" || inner_rc=$?

facts="$NR_TMP/inner.facts"
fact() { sed -n "s/^$1=//p" "$facts" 2>/dev/null | tail -n1; }
[[ $(fact journald_ready) == 1 ]] || bail "private systemd-journald up (sockets within 10 s)"
nr_pass "private systemd-journald up in its own mount+PID namespace"
[[ $inner_rc -eq 0 && $(fact finished) == 1 ]] || bail "journald run completed (exit status $inner_rc)"
check "journald run: nicroute rule from 20.20.20.16 installed" test "$(fact rule16)" = 1
check "journald run: nicroute rule from 20.20.20.17 installed after the address came" test "$(fact rule17)" = 1
check "journald run: exit status 0 after SIGTERM (got $(fact daemon_rc))" test "$(fact daemon_rc)" = 0
check "journald run: the 'stopping' entry reached the journal" test "$(fact journal_stopping)" = 1

J="$NR_TMP/journal.json"
TABLE=$(fact table16)
echo "# kernel: rule from 20.20.20.16 uses table ${TABLE:-?}"

# entry_for ADDR: the journal entry (JSON) of the rule addition from ADDR ("null" if none).
entry_for() {
  jq -sc --arg a "$1" '[.[] | select((.NICROUTE_COMMAND // "") | test("^ip -4 rule add .*from " + ($a | gsub("\\."; "\\.")) + "( |$)"))] | .[0]' "$J"
}
# jf ENTRY FIELD: a field of ENTRY, as text (arrays, i.e. repeated fields, joined by "|").
jf() { jq -r --arg f "$2" '.[$f] // empty | if type == "array" then map(tostring) | join("|") else tostring end' <<<"$1"; }

e16=$(entry_for 20.20.20.16)
if [[ $e16 == null ]]; then
  nr_fail "a journal entry with NICROUTE_COMMAND='ip -4 rule add ... from 20.20.20.16'"
  echo "# entries of nicrouted in the journal:"
  jq -r '"\(._TRANSPORT // "?") P\(.PRIORITY // "?") \(.MESSAGE // "")"' "$J" | head -n 30 | sed 's/^/#   /'
else
  nr_pass "a journal entry with NICROUTE_COMMAND=$(jf "$e16" NICROUTE_COMMAND)"
  check "  its PRIORITY=5 (notice) (got $(jf "$e16" PRIORITY))" test "$(jf "$e16" PRIORITY)" = 5
  check "  its NICROUTE_ACTION=add (got $(jf "$e16" NICROUTE_ACTION))" test "$(jf "$e16" NICROUTE_ACTION)" = add
  check "  its NICROUTE_TABLE=$TABLE, the kernel's table (got $(jf "$e16" NICROUTE_TABLE))" \
    test -n "$TABLE" -a "$(jf "$e16" NICROUTE_TABLE)" = "$TABLE"
  check "  its NICROUTE_LINK=eth1 (got $(jf "$e16" NICROUTE_LINK))" test "$(jf "$e16" NICROUTE_LINK)" = eth1
  check "  its MESSAGE is the command (got '$(jf "$e16" MESSAGE)')" \
    test "$(jf "$e16" MESSAGE)" = "$(jf "$e16" NICROUTE_COMMAND)"
  check "  its CODE_FILE=$(jf "$e16" CODE_FILE) names a Swift file" \
    grep -Eq '\.swift$' <<<"$(jf "$e16" CODE_FILE)"
  check "  its CODE_LINE=$(jf "$e16" CODE_LINE) is a line number" \
    grep -Eq '^[1-9][0-9]*$' <<<"$(jf "$e16" CODE_LINE)"
  check "  its CODE_FUNC=$(jf "$e16" CODE_FUNC) is present" test -n "$(jf "$e16" CODE_FUNC)"
  check "  its SYSLOG_IDENTIFIER=nicrouted" test "$(jf "$e16" SYSLOG_IDENTIFIER)" = nicrouted
  check "  it came through sd_journal_sendv (_TRANSPORT=journal, got $(jf "$e16" _TRANSPORT))" \
    test "$(jf "$e16" _TRANSPORT)" = journal
fi
e17=$(entry_for 20.20.20.17)
if [[ $e17 != null ]]; then
  nr_pass "the change after 'ip addr add 20.20.20.17/24' is in the journal: $(jf "$e17" NICROUTE_COMMAND)"
  check "  with PRIORITY=5, NICROUTE_ACTION=add, NICROUTE_LINK=eth1, NICROUTE_TABLE=$TABLE" test \
    "$(jf "$e17" PRIORITY) $(jf "$e17" NICROUTE_ACTION) $(jf "$e17" NICROUTE_LINK) $(jf "$e17" NICROUTE_TABLE)" = "5 add eth1 $TABLE"
else
  nr_fail "the change after 'ip addr add 20.20.20.17/24' is in the journal (NICROUTE_COMMAND 'ip -4 rule add ... from 20.20.20.17')"
fi
ready=$(jq -sc '[.[] | select(.MESSAGE == "ready")] | .[0]' "$J")
if [[ $ready != null ]]; then
  check "the 'ready' entry: PRIORITY=6, NICROUTE_STATUS='$(jf "$ready" NICROUTE_STATUS)'" \
    test "$(jf "$ready" PRIORITY)" = 6 -a -n "$(jf "$ready" NICROUTE_STATUS)"
else
  nr_fail "a 'ready' entry in the journal"
fi
n=$(jq -s '[.[] | select(._TRANSPORT == "stdout")] | length' "$J")
check "nothing written to the stderr stream while logging to the journal (got $n lines)" test "$n" -eq 0
n=$(jq -s '[.[] | select(._TRANSPORT == "journal" and (.NICROUTE_ACTION // "") == "add")] | length' "$J")
echo "# $n structured 'add' entries; verbose export in $NR_TMP/journal.verbose"

[[ $NR_FAIL -eq 0 ]] || show_logs
nr_summary_line
[[ $NR_FAIL -eq 0 ]]
