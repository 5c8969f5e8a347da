#!/usr/bin/env bash
# Real-kernel test of nicroutectl as a user meets it, on lib.sh's two-NIC OpenStack VM in
# network namespaces: options before or after the command, every documented exit status, one
# line per change in the one-shot mode (nothing with -q, logs on stderr only with -v), the
# daemon's stderr stating each message once, and `nicroutectl check`'s verdicts, each provoked
# and compared with the kernel's own answer (`ip route get`); then the daemon's answers as
# nicroutectl reads them (a canned daemon's: each command's result, errors, malformed ones).
#
#   sudo bash Tests/Scenario/cli.sh
#
# Environment:
#   NICROUTED=/path/to/nicrouted       the daemon (default: `swift build`, then .build/debug)
#   NICROUTECTL=/path/to/nicroutectl   the CLI (default: next to NICROUTED)
#   NR_KEEP_TMP=1                      keep the temp dir after the run
#
# Prints one `ok - ...` / `not ok - ...` line per check and ends with
# `cli: N passed, M failed`; exits non-zero when any check failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

nr_require_root
nr_install_traps
nr_summary cli
nr_ensure_deps
nr_ensure_packages setpriv:util-linux

step() { printf '# --- %s\n' "$*"; }

nr_find_binaries

topo_create
chmod 0755 "$NR_TMP" # the unprivileged client must reach the binaries and the control socket
cp "$NICROUTECTL" "$NR_TMP/nicroutectl"
CTL=$NR_TMP/nicroutectl
CONF=$NR_TMP/nicroute.conf
SOCK=$NR_TMP/control.sock
: >"$CONF"
mkdir -p "$NR_TMP/state"
printf '[Routing]\nTables=200-300\n' >"$NR_TMP/invalid.conf"
OPTS=(--config "$CONF" --state-dir "$NR_TMP/state" --control-socket "$SOCK" --manage 'eth*')
V4_DST=192.0.2.1 # check's default IPv4 destination

# ctl ARGS...: nicroutectl in the VM as root (stdout, stderr, status as they are).
ctl() { ip netns exec "$NS_VM" "$CTL" "$@"; }
# ctl_nobody ARGS...: nicroutectl in the VM as an unprivileged user.
ctl_nobody() { ip netns exec "$NS_VM" setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" "$@"; }

# run CMD...: run CMD; its stdout in OUT, stderr in ERR, exit status in RC.
run() {
  set +e
  "$@" >"$NR_TMP/out" 2>"$NR_TMP/err"
  RC=$?
  set -e
  OUT=$(cat "$NR_TMP/out")
  ERR=$(cat "$NR_TMP/err")
}

# expect_rc DESC WANT CMD...: pass when CMD exits with WANT.
expect_rc() {
  local desc=$1 expected=$2
  shift 2
  run "$@"
  if [[ $RC -eq $expected ]]; then
    nr_pass "$desc: exit status $expected"
  else
    nr_fail "$desc: exit status $RC, want $expected"
    printf '%s\n%s\n' "$OUT" "$ERR" | head -n 8 | sed 's/^/#   /'
  fi
}

# kernel_dev DST SRC: the interface the kernel sends DST from SRC through (`ip route get`).
kernel_dev() { ip -j -n "$NS_VM" route get "$1" from "$2" | jq -r '.[0].dev'; }
kernel_gw() { ip -j -n "$NS_VM" route get "$1" from "$2" | jq -r '.[0].gateway // "none"'; }

# verdict JSON ADDR FIELD: a field of check's JSON result for ADDR.
verdict() { jq -r --arg a "$2" ".results[] | select(.address == \$a) | $3" <<<"$1"; }

# check_verdict DESC ADDR OK REASON: the last `check --json` ($OUT) says OK (true/false) for
# ADDR with REASON among its reasons ("" for none), and its reply interface is the kernel's.
check_verdict() {
  local desc=$1 addr=$2 want_ok=$3 reason=$4 got_ok reasons dev kdev
  got_ok=$(verdict "$OUT" "$addr" .ok)
  reasons=$(verdict "$OUT" "$addr" '.reasons | join(",")')
  dev=$(verdict "$OUT" "$addr" '.reply.interface // "none"')
  kdev=$(kernel_dev "$V4_DST" "$addr" 2>/dev/null || echo none)
  [[ $addr == *:* ]] && kdev=$(kernel_dev "$V6_PROBE_DST" "$addr" 2>/dev/null || echo none)
  if [[ $got_ok == "$want_ok" && ($reason == "" && $reasons == "" || ,$reasons, == *,$reason,*) && $dev == "$kdev" ]]; then
    nr_pass "$desc: ok=$got_ok reasons=[$reasons]; reply through $dev, as the kernel says"
  else
    nr_fail "$desc: ok=$got_ok reasons=[$reasons] reply=$dev (want ok=$want_ok reason=$reason; kernel: $kdev)"
    verdict "$OUT" "$addr" .summary | sed 's/^/#   /'
  fi
}

# owned_rules: how many rules with nicroute's protocol the VM has.
owned_rules() { nicroute_rules "$NS_VM" | wc -l; }

# =====================================================================================
step "1. options before or after the command (no daemon)"
run ctl "${OPTS[@]}" status
BEFORE=$OUT
check "options first: status exits 0 and shows eth1 (computed: no daemon)" \
  test "$RC" -eq 0 -a -n "$(grep -F 'eth1 (' <<<"$OUT")" -a -n "$(grep -F 'not running' <<<"$OUT")"
run ctl status "${OPTS[@]}"
check "options after: status prints the same" test "$RC" -eq 0 -a "$OUT" == "$BEFORE"
run ctl --json "${OPTS[@]}" status
J1=$OUT
check "--json before status: JSON with eth0 and eth1" \
  test "$(jq -r '[.nics[].name] | sort | join(",")' <<<"$J1" 2>/dev/null)" == "eth0,eth1"
run ctl status "${OPTS[@]}" --json
check "--json after status: the same JSON" test "$OUT" == "$J1"
run ctl "${OPTS[@]}" --json
check "--json with the default command (status): the same JSON" test "$OUT" == "$J1"
run ctl --to "$V4_DST" "${OPTS[@]}" check "$ADDR_A"
check "--to before check, an address after it: one verdict" \
  test "$(grep -c "$ADDR_A" <<<"$OUT")" -ge 1 -a "$(grep -c '^ok ' <<<"$OUT")" -eq 1

# =====================================================================================
step "2. documented exit statuses: --help, the man page and the README say the same"
run ctl --help
check "--help documents '2 usage error'" grep -q '2 usage error' <<<"$OUT"
check "the man page documents '2 usage error'" grep -q '2 usage error' "$REPO/docs/man/nicroutectl.1"
check "the README documents '2 usage'" grep -q '2 usage' "$REPO/README.md"
expect_rc "an unknown option before the command" 2 ctl --bogus status
expect_rc "an unknown option after the command" 2 ctl status --bogus
expect_rc "an unknown command" 2 ctl "${OPTS[@]}" frobnicate
expect_rc "check with something that is not an address" 2 ctl "${OPTS[@]}" check not-an-address
expect_rc "--json for flush (an option that does not apply)" 2 ctl "${OPTS[@]}" --json flush
expect_rc "--quiet with --verbose" 2 ctl "${OPTS[@]}" -q -v reconfigure
expect_rc "two IPv4 destinations for check" 2 ctl "${OPTS[@]}" check --to 192.0.2.1 --to 192.0.2.2
check "a usage error names the problem on stderr, not stdout" test -z "$OUT" -a -n "$(grep -i 'error' <<<"$ERR")"
expect_rc "--help" 0 ctl --help
expect_rc "status without a daemon" 0 ctl "${OPTS[@]}" status
expect_rc "one-shot reconfigure as an unprivileged user (no daemon: needs root)" 3 \
  ctl_nobody "${OPTS[@]}" reconfigure
expect_rc "one-shot flush as an unprivileged user" 3 ctl_nobody "${OPTS[@]}" flush
expect_rc "one-shot reconfigure with an invalid configuration" 78 \
  ctl --config "$NR_TMP/invalid.conf" --state-dir "$NR_TMP/state" --control-socket "$SOCK" reconfigure
check "no rule was installed by the refused reconfigure" test "$(owned_rules)" -eq 0
expect_rc "check before nicroute (the second NIC does not answer)" 1 ctl "${OPTS[@]}" check
# Exit status 4 (permission denied) needs a daemon: section 6.

# =====================================================================================
step "3. check before nicroute: the kernel answers B's address through A"
run ctl "${OPTS[@]}" check --json
check "check --json exits 1" test "$RC" -eq 1
check_verdict "eth0's address passes (the main table's default is on eth0)" "$ADDR_A" true ""
check_verdict "eth1's address fails: no rule" "$ADDR_B" false no-rule
check_verdict "eth1's IPv6 address fails: no rule" "$ADDR6_B" false no-rule
if ! out=$(ip -n "$NS_VM" route get "$ADDR_B" from "$V4_DST" iif "$NIC_B" 2>&1); then
  check "rp_filter: the kernel refuses a request arriving on eth1, and check says so" \
    test "$(verdict "$OUT" "$ADDR_B" '.reasons | index("rp-filter") != null')" == true \
    -a "$(verdict "$OUT" "$ADDR_B" .requestAccepted)" == false
else
  nr_fail "rp_filter: the kernel accepts a request arriving on eth1 without nicroute ($out)"
fi
run ctl "${OPTS[@]}" check
check "the text names the missing rule for $ADDR_B on one line" \
  grep -Eq "^FAIL $NIC_B $ADDR_B: .*no rule from $ADDR_B .*rp_filter=1 on $NIC_B" <<<"$OUT"
run ctl --manage "$NIC_A" --config "$CONF" --state-dir "$NR_TMP/state" --control-socket "$SOCK" check --json "$ADDR_B"
check "with only eth0 managed, eth1's address: NIC not managed, exit 1" \
  test "$RC" -eq 1 -a "$(verdict "$OUT" "$ADDR_B" '.reasons | join(",")')" == not-managed \
  -a "$(verdict "$OUT" "$ADDR_B" .interface)" == "$NIC_B"
run ctl "${OPTS[@]}" check --json 192.0.2.77
check "an address of no interface here: not-local, exit 1" \
  test "$RC" -eq 1 -a "$(verdict "$OUT" 192.0.2.77 '.reasons[0]')" == not-local

# =====================================================================================
step "4. one-shot reconfigure and flush: one line per change"
run ctl "${OPTS[@]}" reconfigure
n_ip=$(grep -c '^ip ' <<<"$OUT" || true)
n_rules=$(grep -cE '^ip -[46] rule add ' <<<"$OUT" || true)
check "reconfigure exits 0 and prints only ip lines and its count ($n_ip changes)" \
  test "$RC" -eq 0 -a "$n_ip" -gt 0 -a "$(grep -vc '^ip ' <<<"$OUT")" -eq 1
check "the count line agrees" grep -q "^$n_ip change(s) applied, 0 failed; 2 NIC(s) managed.$" <<<"$OUT"
check "no line is printed twice" test "$(sort <<<"$OUT" | uniq -d | wc -l)" -eq 0
check "nothing on stderr" test -z "$ERR"
check "the rules it printed are in the kernel ($n_rules)" test "$(owned_rules)" -eq "$n_rules"
run ctl "${OPTS[@]}" check
check "check after the one-shot reconfigure: exit 0, every address ok" \
  test "$RC" -eq 0 -a "$(grep -c '^ok ' <<<"$OUT")" -eq 4 -a "$(grep -c '^FAIL' <<<"$OUT" || true)" -eq 0
run ctl "${OPTS[@]}" check --json
for a in "$ADDR_A" "$ADDR_B" "$ADDR6_A" "$ADDR6_B"; do check_verdict "after reconfigure" "$a" true ""; done
check "a request arriving on eth1 is accepted now, by the kernel and by check" \
  test "$(verdict "$OUT" "$ADDR_B" .requestAccepted)" == true -a \
  -n "$(ip -n "$NS_VM" route get "$ADDR_B" from "$V4_DST" iif "$NIC_B" 2>/dev/null)"
expect_rc "check -q when all pass" 0 ctl "${OPTS[@]}" -q check
check "check -q prints nothing" test -z "$OUT$ERR"
run ctl "${OPTS[@]}" reconfigure
check "a second reconfigure has nothing to do and says so in one line" \
  test "$OUT" == "0 change(s) applied, 0 failed; 2 NIC(s) managed."
TABLE_B=$(nicroute_table_of "$NS_VM" "$ADDR_B")
PRIO_B=$(ip -j -n "$NS_VM" -4 rule show | jq -r --arg a "$ADDR_B" '.[] | select(.src == $a) | .priority' | head -n 1)
ip -n "$NS_VM" -4 rule del from "$ADDR_B" lookup "$TABLE_B" priority "$PRIO_B"
run ctl -q "${OPTS[@]}" reconfigure
check "-q reconfigure prints nothing and puts the rule back" \
  test "$RC" -eq 0 -a -z "$OUT$ERR" -a "$(nicroute_rule_count "$NS_VM" "$ADDR_B")" -eq 1
ip -n "$NS_VM" -4 rule del from "$ADDR_B" lookup "$TABLE_B" priority "$PRIO_B"
run ctl "${OPTS[@]}" reconfigure --verbose
line=$(grep "rule add" <<<"$ERR" | head -n 1)
check "--verbose logs the change on stderr, stating it once" \
  test -n "$line" -a "$(grep -o 'rule add' <<<"$line" | wc -l)" -eq 1 -a "$(grep -c '^ip -4 rule add' <<<"$OUT")" -eq 1
printf '#   %s\n' "$line"

# =====================================================================================
step "5. check's verdicts, provoked"
# No default route in the NIC's table.
ip -n "$NS_VM" -4 route del default table "$TABLE_B"
run ctl "${OPTS[@]}" check --json
check_verdict "default route deleted from table $TABLE_B" "$ADDR_B" false no-default
check "its line names the table" grep -q "no default route in table $TABLE_B" <<<"$(verdict "$OUT" "$ADDR_B" .summary)"
ctl -q "${OPTS[@]}" reconfigure
# A foreign rule of higher priority.
ip -n "$NS_VM" -4 route add default via "$GW_A" dev "$NIC_A" table 99
ip -n "$NS_VM" -4 rule add from "$ADDR_B" lookup 99 priority 500
run ctl "${OPTS[@]}" check --json
check_verdict "a foreign rule at priority 500" "$ADDR_B" false foreign-rule
check "its line names the rule" grep -q "priority 500 from $ADDR_B lookup 99" <<<"$(verdict "$OUT" "$ADDR_B" .summary)"
ip -n "$NS_VM" -4 rule del from "$ADDR_B" lookup 99 priority 500
ip -n "$NS_VM" -4 route flush table 99
# A default route in the right table via another gateway.
ip -n "$NS_VM" -4 route replace default via 20.20.20.2 dev "$NIC_B" table "$TABLE_B" proto 110
run ctl "${OPTS[@]}" check --json
check_verdict "table $TABLE_B's default via 20.20.20.2" "$ADDR_B" false wrong-gateway
check "the kernel agrees: via 20.20.20.2" test "$(kernel_gw "$V4_DST" "$ADDR_B")" == 20.20.20.2
ctl -q "${OPTS[@]}" reconfigure
run ctl "${OPTS[@]}" check
check "all ok again after reconfigure" test "$RC" -eq 0
# --to: another NIC's subnet from B goes via B's gateway.
run ctl "${OPTS[@]}" check --to 10.10.10.50 --json "$ADDR_B"
check "--to 10.10.10.50 from B: ok via $GW_B, as the kernel says" \
  test "$RC" -eq 0 -a "$(verdict "$OUT" "$ADDR_B" .reply.gateway)" == "$(kernel_gw 10.10.10.50 "$ADDR_B")" \
  -a "$(verdict "$OUT" "$ADDR_B" .destination)" == 10.10.10.50
# Gateway unconfirmed: router B no longer answers for the first host, the neighbour is forgotten.
ip -n "$NS_RTR_B" addr del "$GW_B/${NET_B#*/}" dev "$QR_B"
ip -n "$NS_VM" neigh flush dev "$NIC_B"
ctl -q "${OPTS[@]}" reconfigure || true
run ctl "${OPTS[@]}" check --json
check_verdict "router B's first host does not answer" "$ADDR_B" false gateway-unconfirmed
ip -n "$NS_RTR_B" addr add "$GW_B/${NET_B#*/}" dev "$QR_B"
ctl -q "${OPTS[@]}" reconfigure || true
wait_until 5 ctl -q "${OPTS[@]}" check || ctl -q "${OPTS[@]}" reconfigure || true
expect_rc "router B answers again: check passes after reconfigure" 0 ctl "${OPTS[@]}" check

# =====================================================================================
step "6. with nicrouted running"
run ctl "${OPTS[@]}" flush
n_del=$(grep -c '^ip ' <<<"$OUT" || true)
check "one-shot flush: one line per object ($n_del), its count, nothing on stderr, nothing left" \
  test "$RC" -eq 0 -a "$n_del" -gt 0 -a "$(sort <<<"$OUT" | uniq -d | wc -l)" -eq 0 -a -z "$ERR" \
  -a "$(owned_rules)" -eq 0 -a "$(tail -n 1 <<<"$OUT")" == "$n_del object(s) removed."
run ctl -q "${OPTS[@]}" flush
check "-q flush prints nothing" test "$RC" -eq 0 -a -z "$OUT$ERR"
DAEMON_LOG=$NR_TMP/nicrouted.log
nicrouted_start "$DAEMON_LOG" --manage 'eth*' --state-dir "$NR_TMP/state" --config "$CONF" --control-socket "$SOCK"
check "nicrouted installs the rule from $ADDR_B" wait_until 10 has_nicroute_rule "$NS_VM" "$ADDR_B"
wait_until 5 test -S "$SOCK" || true
wait_until 5 ctl -q "${OPTS[@]}" check || true
run ctl "${OPTS[@]}" check
check "check with the daemon: ok for both NICs, exit 0" \
  test "$RC" -eq 0 -a -n "$(grep "^ok   *$NIC_A " <<<"$OUT")" -a -n "$(grep "^ok   *$NIC_B " <<<"$OUT")"
expect_rc "check as an unprivileged user, answered by the daemon" 0 ctl_nobody --control-socket "$SOCK" check
expect_rc "reconfigure as an unprivileged user: the daemon refuses" 4 ctl_nobody --control-socket "$SOCK" reconfigure
expect_rc "flush as an unprivileged user: the daemon refuses" 4 ctl_nobody --control-socket "$SOCK" flush
lines=$(grep -E "rule add .*from $ADDR_B " "$DAEMON_LOG" || true)
check "the daemon's stderr logs the rule it added, the command once per line, no duplicate fields" \
  test -n "$lines" -a "$(grep -o 'rule add' <<<"$lines" | wc -l)" -eq "$(wc -l <<<"$lines")" \
  -a -z "$(grep -E 'command=|\[NicrouteDaemon\]' <<<"$lines")"
printf '#   %s\n' "$(head -n 1 <<<"$lines")"
run ctl "${OPTS[@]}" flush
check "flush through the daemon: one line per object, nothing left" \
  test "$RC" -eq 0 -a "$(owned_rules)" -eq 0 -a "$(sort <<<"$OUT" | uniq -d | wc -l)" -eq 0
expect_rc "check after flush (the daemon pauses): fails" 1 ctl "${OPTS[@]}" check
run ctl "${OPTS[@]}" reconfigure
check "reconfigure through the daemon: ip lines and the count" \
  test "$RC" -eq 0 -a "$(grep -c '^ip ' <<<"$OUT")" -gt 0 -a "$(grep -vc '^ip ' <<<"$OUT")" -eq 1
expect_rc "check after reconfigure" 0 ctl "${OPTS[@]}" check
nr_stop_pid "$NICROUTED_PID" 5

# =====================================================================================
step "7. the daemon's answers as nicroutectl reads them: a canned daemon's, each in turn"
CANNED=$NR_TMP/canned.sock
# canned ANSWER: a canned nicrouted at $CANNED that answers one request with ANSWER
# (one line), then goes.
canned() {
  rm -f "$CANNED"
  python3 -I -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(1)
s.settimeout(10)
c, _ = s.accept()
c.settimeout(5)
try:
    c.recv(4096)
except OSError:
    pass
c.sendall(sys.argv[2].encode() + b"\n")
c.close()
os.unlink(sys.argv[1])
' "$CANNED" "$1" &
  CANNED_PID=$!
  NR_PIDS+=("$CANNED_PID")
  wait_until 5 test -S "$CANNED" || true
}
# asked ANSWER ARGS...: nicroutectl ARGS... against a canned daemon answering ANSWER (in OUT, ERR, RC).
asked() {
  local answer=$1
  shift
  canned "$answer"
  run ctl --control-socket "$CANNED" "$@"
  wait "$CANNED_PID" 2>/dev/null || true
}
ok_result() { printf '{"ok":true,"result":%s,"version":1}' "$1"; }
failure() { printf '{"error":{"code":"%s","message":"%s"},"ok":false,"version":1}' "$1" "$2"; }
STATUS_RESULT=$(jq -c .result "$REPO/Tests/Fuzz/control-corpus/response-status-forwarding")
asked "$(ok_result "$STATUS_RESULT")" status --json
check "status --json prints the daemon's status result as it came, exit 0" \
  test "$RC" -eq 0 -a "$(jq -cS . <<<"$OUT" 2>/dev/null)" == "$(jq -cS . <<<"$STATUS_RESULT")"
asked "$(ok_result "$STATUS_RESULT")" status
check "status renders the daemon's report" test "$RC" -eq 0 -a -n "$(grep -F 'nicrouted: ' <<<"$OUT")"
asked "$(ok_result "$(jq -c '.nics[0].table = -1' <<<"$STATUS_RESULT")")" status
check "a status result with a negative table: exit 1, the key named" \
  test "$RC" -eq 1 -a -z "$OUT" -a "$ERR" == \
  "nicroutectl: the daemon's answer is not a status result: nics[0].table: expected an integer in 0...4294967295, found -1"
asked "$(ok_result '{"applied":[],"failed":[],"nics":2}')" plan
check "plan answered with a reconfigure result: exit 1, the key named" \
  test "$RC" -eq 1 -a "$ERR" == "nicroutectl: the daemon's answer is not a plan result: applied: unknown key"
asked '{"ok":true,"version":1}' plan
check "an answer without its result: exit 1, named" \
  test "$RC" -eq 1 -a "$ERR" == "nicroutectl: the daemon's answer is not a version 1 response: result: missing"
asked "$(ok_result '{"changes":["ip -4 rule add x"],"conflicts":["c"]}')" plan
check "plan prints the daemon's changes, its conflicts on stderr, exit 0" \
  test "$RC" -eq 0 -a "$OUT" == "ip -4 rule add x" -a "$ERR" == "nicroutectl: left alone: c"
asked "$(ok_result '{"applied":["ip -4 rule add x"],"failed":["ip -4 rule add y: EEXIST"],"nics":2}')" reconfigure
check "reconfigure with a failed change: exit 1, the failure on stderr" \
  test "$RC" -eq 1 -a -n "$(grep -F 'failed: ip -4 rule add y: EEXIST' <<<"$ERR")" \
  -a -n "$(grep -Fx '1 change(s) applied, 1 failed; 2 NIC(s) managed.' <<<"$OUT")"
asked "$(ok_result '{"removed":["ip -4 rule del x"]}')" flush
check "flush from a daemon that sends no problems: exit 0" \
  test "$RC" -eq 0 -a "$OUT" == $'ip -4 rule del x\n1 object(s) removed.'
asked "$(ok_result '{"problems":["eth1: src_valid_mark stays 1"],"removed":[]}')" flush
check "flush with a problem: exit 1, named" test "$RC" -eq 1 -a "$ERR" == "nicroutectl: eth1: src_valid_mark stays 1"
asked "$(failure invalid-configuration 'nicroute.conf:1: bad')" reconfigure
check "the daemon refuses the configuration: exit 78, its message" \
  test "$RC" -eq 78 -a "$ERR" == "nicroutectl: nicroute.conf:1: bad"
asked "$(failure permission-denied 'not you')" flush
check "the daemon refuses the caller: exit 4" test "$RC" -eq 4 -a "$ERR" == "nicroutectl: not you"
asked "$(failure on-fire 'm')" status
check "an error code nicroutectl does not know: exit 1, the daemon's message" test "$RC" -eq 1 -a "$ERR" == "nicroutectl: m"

nr_summary_line
((NR_FAIL == 0))
