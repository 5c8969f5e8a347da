#!/usr/bin/env bash
# nicroute's benchmark suite (docs/design.md, "Performance targets"): not a test, nothing passes or
# fails. Builds the release binaries, runs them in network namespaces it creates (nrb-*-PID;
# nothing in the root namespace, deleted on every exit path) and writes its figures to
# docs/BENCHMARKS.md, between the "generated" markers (text outside them is kept).
#
#   sudo bash scripts/bench.sh                      # everything, full trial counts (~10 min + build)
#   sudo bash scripts/bench.sh --quick              # fewer trials, 15 s idle window (a smoke run)
#   sudo bash scripts/bench.sh --only latency,scale # a subset: latency, scale, footprint, robustness,
#                                                   # firsthost
#
# Options:
#   --quick            fewer trials everywhere
#   --only LIST        comma-separated subset of: latency, scale, footprint, churn, load, robustness,
#                      firsthost
#   --trials N         latency trials per case (default 300; --quick 40)
#   --idle S           idle observation window in seconds (default 60; --quick 15)
#   --bin DIR          use nicrouted/nicroutectl from DIR instead of building
#   --bin-commit TEXT  what the binaries in DIR were built from (recorded in the report)
#   --out FILE         write the report to FILE (default docs/BENCHMARKS.md)
#   --keep-tmp         keep the temp dir (daemon logs, raw samples) and print its path
#
# Measurements:
#   latency    an address added on a managed NIC -> nicroute's rule for it, from rtnetlink
#              notification receive times (Tests/Bench/nlbench.py), two cases: a secondary
#              address on a NIC that already has a table, and the first address of an
#              address-less NIC (a new table: routes, then the rule); the removal too.
#   scale      80 NICs x 50 addresses, 64/8/1 NICs x 16: daemon start -> READY (first pass included) and the
#              first pass alone, against `ip -batch` of exactly the objects nicroute installed;
#              then no-op passes (the first event after each start; a link event on an unmanaged
#              veth; an address renewal; a route event in main; a rule event) and `nicroutectl
#              reconfigure` round trips on that state; the daemon's memory there.
#   load       200 clients (as uid 65534) polling `status` on the public control socket as fast as
#              they are answered for 60 s, while addresses come and go: answers sorted (complete
#              status, busy, invalid, error), the reaction under that load against idle, root's
#              `nicroutectl status` meanwhile, memory and descriptors before and after.
#   churn      at 16 x 16: 100,000 address add/remove events on a managed NIC and 1,000 hot-plug
#              cycles (a NIC with an address plugged, then removed): RSS and open descriptors
#              before and after.
#   footprint  idle RSS/HWM and context switches of every thread over the idle window, with
#              WATCHDOG_USEC=20 s and a NOTIFY_SOCKET we bind (pings counted); start -> READY.
#   robustness Tests/Robustness/robustness.sh --long with the same binaries (storm with socket
#              overrun, 200 hot-plug cycles with traffic, 30 SIGKILLs, fights): its figures.
#   firsthost  Tests/Scenario/first-host.sh with 50 plugs: an IPv6 address -> the default route
#              via the subnet's first host in the NIC's table.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
NR_PREFIX=nrb
NR_ID=$$
# shellcheck source-path=SCRIPTDIR source=../Tests/Scenario/lib.sh
source "$REPO/Tests/Scenario/lib.sh"
PY="$REPO/Tests/Bench/nlbench.py"

QUICK=0 ONLY="latency,scale,footprint,churn,load,robustness,firsthost" TRIALS="" IDLE="" BIN="" BIN_COMMIT="" OUT="$REPO/docs/BENCHMARKS.md" KEEP=0
ARGS="$*"
while [[ $# -gt 0 ]]; do
  case $1 in
    --quick) QUICK=1 ;;
    --only) ONLY=$2; shift ;;
    --trials) TRIALS=$2; shift ;;
    --idle) IDLE=$2; shift ;;
    --bin) BIN=$2; shift ;;
    --bin-commit) BIN_COMMIT=$2; shift ;;
    --out) OUT=$2; shift ;;
    --keep-tmp) KEEP=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
[[ -n $TRIALS ]] || TRIALS=$((QUICK ? 40 : 300))
[[ -n $IDLE ]] || IDLE=$((QUICK ? 15 : 60))
SCALE_TRIALS=$((QUICK ? 2 : 5))   # daemon and ip -batch runs per size
SCALE_SIZES=${NR_SCALE_SIZES:-"80x50 64x16 8x16 1x16"} # NICs x addresses per NIC (the scale section)
NOOP_TRIALS=$((QUICK ? 10 : 40))  # no-op passes per size
STARTS=$((QUICK ? 5 : 20))        # start -> READY trials
want() { [[ ",$ONLY," == *",$1,"* ]]; }

nr_require_root
nr_install_traps
nr_ensure_packages ip:iproute2 python3:python3 ps:procps
NR_KEEP_TMP=$KEEP
NR_TMP=$(mktemp -d /tmp/nrb-bench.XXXXXX)
RES="$NR_TMP/results.md"
: >"$RES"
emit() { printf '%s\n' "$*" >>"$RES"; }
say() { printf '# %s\n' "$*" >&2; }

# ---- binaries ---------------------------------------------------------------------------
BUILT_HERE=""
if [[ -z $BIN ]]; then
  nr_find_swift || nr_die "swift not found (or pass --bin DIR)"
  say "building the release binaries the packages ship (scripts/build-release.sh)"
  BIN=$(bash "$REPO/scripts/build-release.sh" 2>"$NR_TMP/build.log") ||
    { tail -n 30 "$NR_TMP/build.log" >&2; nr_die "release build failed"; }
  BUILT_HERE=1
fi
BIN=$(cd "$BIN" && pwd)
NICROUTED="$BIN/nicrouted"
NICROUTECTL="$BIN/nicroutectl"
[[ -x $NICROUTED && -x $NICROUTECTL ]] || nr_die "no nicrouted/nicroutectl in $BIN"

# ---- helpers ----------------------------------------------------------------------------
NS_VM="nrb-vm-$$"
NS_PEER="nrb-peer-$$"

# ns_pair: fresh VM and peer namespaces (IPv6 off in the VM: the figures are IPv4 only).
ns_pair() {
  local ns
  for ns in "$NS_VM" "$NS_PEER"; do
    ip netns del "$ns" 2>/dev/null || true
  done
  nr_ns_new "$NS_PEER"
  nr_ns_new "$NS_VM"
  nr_sysctl "$NS_VM" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# make_nics N ADDRS: eth0..eth(N-1) in the VM (veth peers p0.. in the peer namespace, up),
# ethI on 10.(10+I).0.0/24 with ADDRS addresses .2, .3, ...; main default route on eth0;
# an unmanaged veth x0 (for no-op link events). Writes the config with one [Gateway] per NIC.
make_nics() {
  local n=$1 addrs=$2 i j b="" c=""
  for ((i = 0; i < n; i++)); do
    b+="link add eth$i type veth peer name p$i netns $NS_PEER"$'\n'
    b+="link set eth$i up"$'\n'
    for ((j = 0; j < addrs; j++)); do
      b+="addr add 10.$((10 + i)).0.$((2 + j))/24 dev eth$i"$'\n'
    done
    c+="[Gateway]"$'\n'"Interface=eth$i"$'\n'"IPv4=10.$((10 + i)).0.1"$'\n'
  done
  b+="link add x0 type veth peer name px0 netns $NS_PEER"$'\n'"link set x0 up"$'\n'
  ip -n "$NS_VM" -batch - <<<"$b"
  ip -n "$NS_PEER" -batch - <<<"$(for ((i = 0; i < n; i++)); do echo "link set p$i up"; done; echo "link set px0 up")"
  ip -n "$NS_VM" route add default via 10.10.0.1 dev eth0
  printf '[Routing]\nIPv6=no\nFirstHostFallback=no\n%s' "$c" >"$NR_TMP/nicroute.conf"
}

# daemon_start LOG [ENV...]: start nicrouted in the VM (our control socket, state dir, config,
# debug log, $DAEMON_ARGS); PID in DPID, start time (us) in DSTART. NOTIFY_SOCKET is
# $NR_TMP/notify.sock.
DAEMON_ARGS=()
daemon_start() {
  local log=$1
  shift
  DSTART=$(nr_now_us)
  env NOTIFY_SOCKET="$NR_TMP/notify.sock" "$@" ip netns exec "$NS_VM" "$NICROUTED" --manage 'eth*' \
    --state-dir "$NR_TMP/state" --config "$NR_TMP/nicroute.conf" --control-socket "${CONTROL_SOCKET:-$NR_TMP/control.sock}" \
    --log-level debug "${DAEMON_ARGS[@]}" >"$log" 2>&1 &
  DPID=$!
  NR_PIDS+=("$DPID")
}

# notify_listen: (re)start the sd_notify listener; messages in $NR_TMP/notify.log.
notify_listen() {
  [[ -n ${LPID:-} ]] && { kill "$LPID" 2>/dev/null || true; wait "$LPID" 2>/dev/null || true; }
  : >"$NR_TMP/notify.log"
  python3 "$PY" notify-listen "$NR_TMP/notify.sock" "$NR_TMP/notify.log" &
  LPID=$!
  NR_PIDS+=("$LPID")
  wait_until 5 grep -q LISTENING "$NR_TMP/notify.log" || nr_die "notify listener did not start"
}

# ready_count: READY=1 messages so far.
# shellcheck disable=SC2317 # called through wait_until
ready_count() { grep -c 'READY=1' "$NR_TMP/notify.log" || true; }

# ready_at_least N: true once N READY=1 messages arrived.
# shellcheck disable=SC2317 # called through wait_until
ready_at_least() { [[ $(ready_count) -ge $1 ]]; }

# wait_ready N TIMEOUT: wait for the Nth READY=1; prints its wall-clock time in us.
wait_ready() {
  wait_until "$2" ready_at_least "$1" || return 1
  local ns
  ns=$(grep 'READY=1' "$NR_TMP/notify.log" | sed -n "${1}p" | cut -d' ' -f1)
  echo $((ns / 1000))
}

# daemon_stop: SIGTERM the daemon and wait (bounded).
daemon_stop() {
  nr_stop_pid "$DPID" 10
}

# owned_state: nicroute's routes and rules in the VM, sorted (to compare two runs).
owned_state() {
  { ip -n "$NS_VM" -4 route show table all proto 110; ip -n "$NS_VM" -4 rule show | grep -E 'proto (110|nicroute)'; } |
    sed 's/[[:space:]]*$//' | sort
}

# owned_count: how many routes and rules nicroute owns in the VM.
owned_count() {
  echo $(($(ip -n "$NS_VM" -4 route show table all proto 110 | wc -l) + $(ip -n "$NS_VM" -4 rule show | grep -cE 'proto (110|nicroute)')))
}

# make_batches: from what nicroute installed, $NR_TMP/add.batch (connected routes, gateway
# routes, rules: nicroute's own order) and $NR_TMP/del.batch.
make_batches() {
  local routes rules
  # (`ip route show proto 110` does not print the protocol it filters on: put it back.)
  routes=$(ip -n "$NS_VM" -4 route show table all proto 110 | sed 's/[[:space:]]*$//; s/$/ proto 110/')
  rules=$(ip -n "$NS_VM" -4 rule show | grep -E 'proto (110|nicroute)' |
    sed -E 's/^([0-9]+):[[:space:]]+/priority \1 /')
  { grep -v ' via ' <<<"$routes" | sed 's/^/route add /'
    grep ' via ' <<<"$routes" | sed 's/^/route add /'
    sed 's/^/rule add /' <<<"$rules"; } >"$NR_TMP/add.batch"
  { sed 's/^/rule del /' <<<"$rules"; sed 's/^/route del /' <<<"$routes"; } >"$NR_TMP/del.batch"
}

# flush_owned: delete nicroute's objects (the daemon is stopped) with del.batch.
flush_owned() {
  ip -n "$NS_VM" -force -batch "$NR_TMP/del.batch" >/dev/null 2>&1 || true
  [[ $(owned_count) -eq 0 ]] || nr_die "flush left $(owned_count) objects"
}

# stats FILE [COL] [SCALE]: "n min median max p50 p99 mean".
stats() { python3 "$PY" stats "$@"; }

# fmt_row LABEL FILE COL SCALE: a markdown table row of the stats of FILE's column COL (divided by SCALE).
fmt_row() {
  local label=$1 n min med max p50 p99
  read -r n min med max p50 p99 _ < <(stats "$2" "$3" "$4")
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$n" "$min" "$med" "$max" "$p50" "$p99"
}

# pass_durations LOG WHY: duration_us of the daemon's passes with why=WHY and changes=0 (WHY
# "startup": the first pass, changes whatever).
pass_durations() {
  python3 "$PY" logpasses "$1" | awk -v w="$2" '$1 == w && (w == "startup" || $2 == 0) { print $3, $4, $5, $6 }'
}

# size_mb FILE: "X MB (Y MB)", the file's size and its size stripped of symbols.
size_mb() {
  local stripped
  stripped=$(mktemp "$NR_TMP/strip.XXXXXX")
  strip -o "$stripped" "$1"
  awk -v a="$(stat -L -c %s "$1")" -v b="$(stat -c %s "$stripped")" 'BEGIN { printf "%.1f MB (%.1f MB)", a / 1e6, b / 1e6 }'
  rm -f "$stripped"
}

# fds: how many descriptors the daemon ($DPID) holds open.
fds() { find "/proc/$DPID/fd" -mindepth 1 -maxdepth 1 | wc -l; }

# mem PID: "VmRSS VmHWM" in kB.
mem() { awk '/^VmRSS:/ { r = $2 } /^VmHWM:/ { h = $2 } END { print r, h }' "/proc/$1/status"; }

# ---- header -----------------------------------------------------------------------------
COMMIT=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
DIRTY=""
if (cd "$REPO" && git status --porcelain -- Sources Package.swift 2>/dev/null | grep -q .); then
  DIRTY=" (with uncommitted changes to Sources)"
fi
if [[ -n $BUILT_HERE ]]; then
  WHAT="binaries built from commit \`$COMMIT\`$DIRTY"
else
  WHAT="binaries from \`$BIN\`${BIN_COMMIT:+ (built from $BIN_COMMIT)}, script at commit \`$COMMIT\`"
fi
emit "Run $(date -u '+%Y-%m-%d %H:%M UTC'), $WHAT, \`sudo bash scripts/bench.sh${ARGS:+ $ARGS}\`."
emit ""
emit "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r), load average at start $(cut -d' ' -f1-3 /proc/loadavg). Binaries: release, \`--static-swift-stdlib\` ($(du -k "$NICROUTED" | cut -f1) kB nicrouted)."
emit ""

# ---- a. latency -------------------------------------------------------------------------
if want latency; then
  say "latency: $TRIALS trials per case"
  ns_pair
  make_nics 2 1   # eth0 10.10.0.2 (table, default route), eth1 10.11.0.2
  # eth2: managed, no address yet (each trial gives it its first address: a new table).
  ip -n "$NS_VM" link add eth2 type veth peer name p2 netns "$NS_PEER"
  ip -n "$NS_VM" link set eth2 up
  ip -n "$NS_PEER" link set p2 up
  printf '[Gateway]\nInterface=eth2\nIPv4=10.12.0.1\n' >>"$NR_TMP/nicroute.conf"
  rm -rf "$NR_TMP/state"
  notify_listen
  daemon_start "$NR_TMP/latency.log"
  wait_ready 1 20 >/dev/null || nr_die "nicrouted not READY (latency)"
  # The listener runs SCHED_FIFO (when chrt is there) so that its receive times are not
  # delayed behind the daemon or other load: it sleeps in recv() between notifications.
  RT=()
  command -v chrt >/dev/null 2>&1 && RT=(chrt -f 10)
  ip netns exec "$NS_VM" "${RT[@]}" python3 "$PY" latency --dev eth1 --base 10.11.0 --first 100 --plen 24 \
    --trials "$TRIALS" --out "$NR_TMP/lat-secondary.txt"
  ip netns exec "$NS_VM" "${RT[@]}" python3 "$PY" latency --dev eth2 --base 10.12.0 --first 100 --plen 24 \
    --trials "$TRIALS" --out "$NR_TMP/lat-newnic.txt"
  daemon_stop
  # The same with a coalescing window before the first pass (--coalesce-ms 2, the default
  # before the pass started on the first event): what the wait costs.
  notify_listen
  DAEMON_ARGS=(--coalesce-ms 2)
  daemon_start "$NR_TMP/latency0.log"
  DAEMON_ARGS=()
  wait_ready 1 20 >/dev/null || nr_die "nicrouted not READY (latency, --coalesce-ms 2)"
  ip netns exec "$NS_VM" "${RT[@]}" python3 "$PY" latency --dev eth1 --base 10.11.0 --first 100 --plen 24 \
    --trials "$((TRIALS / 2))" --out "$NR_TMP/lat-secondary0.txt"
  daemon_stop
  # The same with 80 NICs x 50 addresses in place: a secondary address on eth1.
  ns_pair
  make_nics 80 50
  rm -rf "$NR_TMP/state"
  notify_listen
  daemon_start "$NR_TMP/latency80.log"
  wait_ready 1 120 >/dev/null || nr_die "nicrouted not READY (latency, 80 x 50)"
  sleep 1
  ip netns exec "$NS_VM" "${RT[@]}" python3 "$PY" latency --dev eth1 --base 10.11.0 --first 100 --plen 24 \
    --trials "$((TRIALS / 2))" --out "$NR_TMP/lat-secondary80.txt"
  daemon_stop
  emit "### a. Reaction latency: address added -> its rule in the kernel"
  emit ""
  emit "nicrouted \`--manage 'eth*'\` on 3 veth NICs (eth0, eth1 with one address each, eth2 none; gateways from"
  emit "\`[Gateway]\`). Each trial adds an address through rtnetlink (RTM_NEWADDR, as \`ip addr add\`), waits for"
  emit "nicroute's rule, deletes the address and waits for the rule's removal; 10-30 ms idle (jittered) before each"
  emit "step. One netlink listener in the VM namespace (SCHED_FIFO) stamps each notification on receipt"
  emit "(CLOCK_MONOTONIC; netlink gives no kernel timestamps). \"send\": from the moment the address request is"
  emit "sent (the kernel emits RTM_NEWADDR within that call, so this is an upper bound) to the receipt of"
  emit "RTM_NEWRULE; \"event\": RTM_NEWADDR receipt -> RTM_NEWRULE receipt (as \`ip -ts monitor address rule\`)."
  emit "Removal: from the delete request to RTM_DELRULE. The daemon starts its pass on the first event of a burst and"
  emit "gathers what arrives meanwhile into the next pass; one row makes it wait 2 ms first (\`--coalesce-ms 2\`); the last"
  emit "two run with 80 NICs x 50 addresses in place (as in b.), half the trials."
  emit "Milliseconds."
  emit ""
  emit "| case | trials | min | median | max | p50 | p99 |"
  emit "|---|---|---|---|---|---|---|"
  emit "$(fmt_row "secondary address on eth1 (table exists): add, send -> rule" "$NR_TMP/lat-secondary.txt" 0 1000)"
  emit "$(fmt_row "secondary address on eth1: add, event -> rule" "$NR_TMP/lat-secondary.txt" 1 1000)"
  emit "$(fmt_row "secondary address on eth1: remove, send -> rule gone" "$NR_TMP/lat-secondary.txt" 2 1000)"
  emit "$(fmt_row "first address of eth2 (new table: routes, then rule): add, send -> rule" "$NR_TMP/lat-newnic.txt" 0 1000)"
  emit "$(fmt_row "first address of eth2: add, event -> rule" "$NR_TMP/lat-newnic.txt" 1 1000)"
  emit "$(fmt_row "first address of eth2: remove (table emptied), send -> rule gone" "$NR_TMP/lat-newnic.txt" 2 1000)"
  emit "$(fmt_row "secondary address on eth1, \`--coalesce-ms 2\`: add, send -> rule" "$NR_TMP/lat-secondary0.txt" 0 1000)"
  emit "$(fmt_row "secondary address on eth1, 80 NICs x 50 addresses in place: add, send -> rule" "$NR_TMP/lat-secondary80.txt" 0 1000)"
  emit "$(fmt_row "secondary address on eth1, 80 x 50 in place: add, event -> rule" "$NR_TMP/lat-secondary80.txt" 1 1000)"
  emit ""
  emit "Targets: p50 <= 1 ms, p99 <= 5 ms (add)."
  emit ""
fi

# ---- b. scale -----------------------------------------------------------------------------
if want scale; then
  emit "### b. Full reconcile from empty, no-op reconcile"
  emit ""
  emit "N veth NICs x A IPv4 addresses (ethI: 10.(10+I).0.2 onwards, one /24 per NIC, a \`[Gateway]\` override 10.(10+I).0.1"
  emit "each, so no neighbour probe and no ARP is involved: deterministic), main default route on eth0, IPv6 off. nicroute"
  emit "installs N tables of N+1 routes (own subnet, the N-1 other subnets via its gateway, default) and A x N rules."
  emit "80 x 50 is a cloud's largest instance (AWS: 80 interfaces x 50 IPv4 addresses)."
  emit "\"start -> READY\": from the shell launching \`ip netns exec NS nicrouted\` to READY=1 on our NOTIFY_SOCKET"
  emit "(process start, first dumps, plan, every change acknowledged, slots saved). \"first pass\": the daemon's own"
  emit "duration of that pass (debug log). \`ip -batch\`: \`ip -n NS -batch FILE\` wall time, FILE being exactly the"
  emit "routes and rules nicroute installed (read back from the kernel, connected routes first), the kernel state"
  emit "checked identical afterwards. Both from empty, alternating, $SCALE_TRIALS runs each. No-op passes (durations"
  emit "from the debug log), $NOOP_TRIALS of each kind, 30-60 ms apart: link events on an unmanaged veth (MTU toggles: the"
  emit "kernel picture changed, the plan is made again, nothing to do) and address renewals on eth0 (lifetimes reset,"
  emit "as by a DHCP client: the picture the plan is made from is unchanged), routes added to and deleted from main"
  emit "(192.0.2.0/24 via eth0's gateway: nothing in nicroute's tables depends on it), rules added and deleted (priority"
  emit "5, from 192.0.2.1 lookup main: another tool's rule changes no plan, so it starts no pass; it only makes the next"
  emit "pass read everything), and the first event after each start (an MTU toggle right after READY: the"
  emit "start's pass changed everything); and \`nicroutectl reconfigure\` round trips (process start and a"
  emit "configuration reload included). Milliseconds."
  emit ""
  emit "| NICs x addrs | objects | start -> READY (median, min-max) | first pass (median) | ip -batch (median, min-max) | ratio READY / batch | ratio first pass / batch | no-op pass, link event: p50 / p99 / max | no-op pass, address renewal: p50 / p99 / max | no-op pass, route event: p50 / p99 / max | no-op pass, rule event: p50 / p99 / max | first event after start: median / max (n) | reconfigure round trip (median) | RSS / HWM / anonymous (MB) |"
  emit "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
  for size in $SCALE_SIZES; do
    n=${size%x*} per=${size#*x}
    say "scale: $n NICs x $per addresses"
    ns_pair
    make_nics "$n" "$per"
    rm -rf "$NR_TMP/state"
    : >"$NR_TMP/ready-$n.txt" ; : >"$NR_TMP/batch-$n.txt"; : >"$NR_TMP/first-$n.txt"
    : >"$NR_TMP/noop-$n.txt"; : >"$NR_TMP/reconf-$n.txt"; : >"$NR_TMP/firstev-$n.txt"
    ref=""
    for ((t = 0; t < SCALE_TRIALS; t++)); do
      notify_listen
      log="$NR_TMP/scale-$n-$t.log"
      daemon_start "$log"
      tready=$(wait_ready 1 120) || nr_die "nicrouted not READY ($n NICs)"
      echo "$((tready - DSTART))" >>"$NR_TMP/ready-$n.txt"
      pass_durations "$log" startup | head -n 1 | awk '{ print $1 }' >>"$NR_TMP/first-$n.txt"
      # The first event after the start: nothing of the start's pass is left to reuse.
      ip -n "$NS_VM" link set x0 mtu 1400
      sleep 0.3
      pass_durations "$log" events | head -n 1 | awk '{ print $1 }' >>"$NR_TMP/firstev-$n.txt"
      ip -n "$NS_VM" link set x0 mtu 1500
      sleep 0.1
      if [[ $t -eq 0 ]]; then
        # No-op passes on the installed state, and reconfigure round trips.
        for ((k = 0; k < NOOP_TRIALS; k++)); do
          ip -n "$NS_VM" link set x0 mtu $((k % 2 ? 1500 : 1400))
          sleep "0.0$((3 + RANDOM % 4))"
        done
        sleep 0.2
        pass_durations "$log" events | awk '{ print $1 }' >"$NR_TMP/noop-$n.txt"
        # Address renewals (eth0's first address gets its lifetimes reset, as a DHCP client
        # does): the picture nicroute plans from does not change at all.
        seen=$(wc -l <"$NR_TMP/noop-$n.txt")
        for ((k = 0; k <= NOOP_TRIALS; k++)); do
          ip -n "$NS_VM" addr change 10.10.0.2/24 dev eth0 valid_lft 86400 preferred_lft 86400
          sleep "0.0$((3 + RANDOM % 4))"
        done
        sleep 0.2
        # (The first renewal makes the address non-permanent, a change of the picture: skipped.)
        pass_durations "$log" events | awk '{ print $1 }' | tail -n +"$((seen + 2))" >"$NR_TMP/renew-$n.txt"
        # Route events in main that change no plan, then rule events.
        seen=$(pass_durations "$log" events | wc -l)
        for ((k = 0; k < NOOP_TRIALS; k++)); do
          op=add; ((k % 2)) && op=del
          ip -n "$NS_VM" route "$op" 192.0.2.0/24 via 10.10.0.1 dev eth0
          sleep "0.0$((3 + RANDOM % 4))"
        done
        sleep 0.2
        pass_durations "$log" events | awk '{ print $1 }' | tail -n +"$((seen + 1))" >"$NR_TMP/route-$n.txt"
        seen=$(pass_durations "$log" events | wc -l)
        for ((k = 0; k < NOOP_TRIALS; k++)); do
          op=add; ((k % 2)) && op=del
          ip -n "$NS_VM" rule "$op" priority 5 from 192.0.2.1 lookup main
          sleep "0.0$((3 + RANDOM % 4))"
        done
        sleep 0.2
        pass_durations "$log" events | awk '{ print $1 }' | tail -n +"$((seen + 1))" >"$NR_TMP/rule-$n.txt"
        for ((k = 0; k < 10; k++)); do
          t0=$(nr_now_us)
          ip netns exec "$NS_VM" "$NICROUTECTL" reconfigure --control-socket "$NR_TMP/control.sock" >/dev/null
          echo $(($(nr_now_us) - t0)) >>"$NR_TMP/reconf-$n.txt"
        done
        read -r rss hwm < <(mem "$DPID")
        ranon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$DPID/status")
        ref=$(owned_state)
        objects=$(owned_count)
        make_batches
      fi
      [[ $(owned_state) == "$ref" ]] || nr_die "daemon run $t installed something else than run 0"
      daemon_stop
      flush_owned
      t0=$(nr_now_us)
      ip -n "$NS_VM" -batch "$NR_TMP/add.batch"
      echo $(($(nr_now_us) - t0)) >>"$NR_TMP/batch-$n.txt"
      [[ $(owned_state) == "$ref" ]] || nr_die "ip -batch installed something else than nicroute"
      flush_owned
    done
    read -r _ rmin rmed rmax _ < <(stats "$NR_TMP/ready-$n.txt" 0 1000)
    read -r _ _ fmed _ _ < <(stats "$NR_TMP/first-$n.txt" 0 1000)
    read -r _ bmin bmed bmax _ < <(stats "$NR_TMP/batch-$n.txt" 0 1000)
    read -r _ _ _ nmax np50 np99 _ < <(stats "$NR_TMP/noop-$n.txt" 0 1000)
    read -r _ _ _ emax ep50 ep99 _ < <(stats "$NR_TMP/renew-$n.txt" 0 1000)
    read -r _ _ _ omax op50 op99 _ < <(stats "$NR_TMP/route-$n.txt" 0 1000)
    read -r un _ _ umax up50 up99 _ < <(stats "$NR_TMP/rule-$n.txt" 0 1000)
    read -r fen _ femed femax _ < <(stats "$NR_TMP/firstev-$n.txt" 0 1000)
    read -r _ _ cmed _ _ < <(stats "$NR_TMP/reconf-$n.txt" 0 1000)
    ratio=$(awk -v a="$rmed" -v b="$bmed" 'BEGIN { printf "%.2f", a / b }')
    fratio=$(awk -v a="$fmed" -v b="$bmed" 'BEGIN { printf "%.2f", a / b }')
    emit "| $n x $per | $objects | $rmed ($rmin-$rmax) | $fmed | $bmed ($bmin-$bmax) | $ratio | $fratio | $np50 / $np99 / $nmax | $ep50 / $ep99 / $emax | $op50 / $op99 / $omax | $( ((un)) && echo "$up50 / $up99 / $umax" || echo "no pass (not relevant)") | $femed / $femax ($fen) | $cmed | $(awk -v r="$rss" -v h="$hwm" -v a="$ranon" 'BEGIN { printf "%.1f / %.1f / %.1f", r / 1024, h / 1024, a / 1024 }') |"
    cp "$NR_TMP/scale-$n-0.log" "$NR_TMP/keep-scale-$n.log" 2>/dev/null || true
  done
  emit ""
  emit "Targets: every rule and route in place within 1.0x of \`ip -batch\` and idle RSS <= 20 MB at 80 x 50; no-op reconcile < 5 ms."
  emit ""
fi

# ---- c. footprint -------------------------------------------------------------------------
if want footprint; then
  say "footprint: ${IDLE} s idle window, $STARTS starts"
  ns_pair
  make_nics 3 2
  rm -rf "$NR_TMP/state"
  notify_listen
  daemon_start "$NR_TMP/idle.log" WATCHDOG_USEC=20000000
  wait_ready 1 20 >/dev/null || nr_die "nicrouted not READY (footprint)"
  sleep 2
  pings0=$(grep -c 'WATCHDOG=1' "$NR_TMP/notify.log" || true)
  python3 "$PY" ctxwatch "$DPID" "$IDLE" >"$NR_TMP/ctxsw.txt"
  read -r vol invol seen born ended <"$NR_TMP/ctxsw.txt"
  pings1=$(grep -c 'WATCHDOG=1' "$NR_TMP/notify.log" || true)
  read -r rss hwm < <(mem "$DPID")
  read -r ranon rfile < <(awk '/^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } END { print a, f }' "/proc/$DPID/status")
  threads=$(find "/proc/$DPID/task" -mindepth 1 -maxdepth 1 | wc -l)
  daemon_stop
  # The same idle daemon without a watchdog: nothing should wake it at all.
  IDLE0=$(((IDLE + 1) / 2))
  notify_listen
  daemon_start "$NR_TMP/idle0.log"
  wait_ready 1 20 >/dev/null || nr_die "nicrouted not READY (footprint, no watchdog)"
  sleep 2
  python3 "$PY" ctxwatch "$DPID" "$IDLE0" >"$NR_TMP/ctxsw0.txt"
  read -r vol0 invol0 _ <"$NR_TMP/ctxsw0.txt"
  daemon_stop
  # Start -> READY: the first start installs (from empty), the others adopt what is there.
  : >"$NR_TMP/start.txt"
  for ((k = 0; k < STARTS; k++)); do
    notify_listen
    daemon_start "$NR_TMP/start-$k.log"
    tready=$(wait_ready 1 20) || nr_die "nicrouted not READY (start $k)"
    echo $((tready - DSTART)) >>"$NR_TMP/start.txt"
    daemon_stop
  done
  per_min() { awk -v d="$1" -v s="$IDLE" 'BEGIN { printf "%.1f", d * 60 / s }'; }
  emit "### c. Footprint"
  emit ""
  emit "3 managed NICs x 2 addresses, started with \`WATCHDOG_USEC=20000000\` (a ping every 10 s expected) and a"
  emit "NOTIFY_SOCKET we bind; observed for $IDLE s with nothing changing, from 2 s after READY."
  emit ""
  emit "| measure | value |"
  emit "|---|---|"
  if [[ -L $NICROUTECTL && $(readlink -f "$NICROUTECTL") == "$(readlink -f "$NICROUTED")" ]]; then
    # One binary for both tools (scripts/build-release.sh since issue 20).
    emit "| binary: nicrouted, nicroutectl a symlink to it, as built (stripped, as packaged) | $(size_mb "$NICROUTED") |"
  else
    emit "| binaries: nicrouted / nicroutectl, as built (stripped, as packaged) | $(size_mb "$NICROUTED") / $(size_mb "$NICROUTECTL") |"
  fi
  emit "| VmRSS / VmHWM idle | $(awk -v r="$rss" -v h="$hwm" 'BEGIN { printf "%.1f MB / %.1f MB", r / 1024, h / 1024 }') |"
  emit "| of which anonymous / file-backed (the binary's pages) | $(awk -v a="$ranon" -v f="$rfile" 'BEGIN { printf "%.1f MB / %.1f MB", a / 1024, f / 1024 }') |"
  emit "| threads at the end (seen during the window; born; ended) | $threads ($seen; $born; $ended) |"
  emit "| watchdog pings per minute | $(per_min $((pings1 - pings0))) |"
  emit "| context switches per minute, all threads: voluntary (wake-ups) / involuntary | $(per_min "$vol") / $(per_min "$invol") |"
  emit "| without WATCHDOG_USEC ($IDLE0 s): context switches per minute, voluntary / involuntary | $(awk -v v="$vol0" -v s="$IDLE0" 'BEGIN { printf "%.1f", v * 60 / s }') / $(awk -v v="$invol0" -v s="$IDLE0" 'BEGIN { printf "%.1f", v * 60 / s }') |"
  emit "| voluntary context switches per watchdog ping | $(awk -v s="$vol" -v p=$((pings1 - pings0)) 'BEGIN { if (p > 0) printf "%.1f", s / p; else print "no ping" }') |"
  read -r n smin smed smax _ < <(stats "$NR_TMP/start.txt" 0 1000)
  emit "| start -> READY, 3 NICs ($n starts: the first from empty) | median $smed ms (min $smin, max $smax) |"
  emit ""
  emit "Per-thread context switches during the window (tid name +voluntary +involuntary):"
  emit ""
  emit '```'
  sed 1d "$NR_TMP/ctxsw.txt" >>"$RES"
  emit '```'
  emit ""
  emit "Targets: resident memory <= 14 MB; no wake-ups but the watchdog."
  emit ""
fi

# ---- d. robustness at full size ------------------------------------------------------------
# Tests/Robustness/robustness.sh --long with these binaries: the storm (socket overrun on
# purpose), 200 hot-plug cycles with traffic, 30 SIGKILLs, 15 s fights. Its checks must pass;
# its figure lines (the "# ..." lines it prints) go into the report as they are.
if want robustness; then
  size=--long
  ((QUICK)) && size=""  # --quick: the test suite's fast sizes
  say "robustness: Tests/Robustness/robustness.sh ${size:-(fast)} (${size:+4-7 minutes}${size:-about 90 s})"
  rc=0
  NICROUTED="$NICROUTED" NICROUTECTL="$NICROUTECTL" bash "$REPO/Tests/Robustness/robustness.sh" $size \
    >"$NR_TMP/robustness.log" 2>&1 || rc=$?
  emit "### d. Robustness${size:+ at full size}"
  emit ""
  emit "\`Tests/Robustness/robustness.sh ${size:-(fast sizes: --quick)}\` with the same binaries (exit status $rc): $(grep -E '^robustness: ' "$NR_TMP/robustness.log" | tail -n 1)."
  emit "Its figure lines:"
  emit ""
  emit '```'
  grep -E '^# (mode|storm|soak|chaos|rule fight|route fight|robustness)' "$NR_TMP/robustness.log" >>"$RES" || true
  emit '```'
  grep -E '^not ok' "$NR_TMP/robustness.log" | sed 's/^/    /' >>"$RES" || true
  emit ""
fi

# ---- e. IPv6 first-host gateway --------------------------------------------------------------
# Tests/Scenario/first-host.sh with ROUNDS=50 and these binaries: a NIC plugged with an IPv6
# address under DAD, the router owning the subnet's first host; from the moment both the
# address and the NIC's link-local address have left DAD (the kernel sends no solicitation
# before) to nicroute's default route via the first host in the NIC's table, from `ip -ts
# monitor` timestamps. Target: under 100 ms when the router answers.
if want firsthost; then
  rounds=50
  ((QUICK)) && rounds=10
  say "IPv6 first host: Tests/Scenario/first-host.sh, $rounds plugs"
  rc=0
  ROUNDS=$rounds NICROUTED="$NICROUTED" bash "$REPO/Tests/Scenario/first-host.sh" >"$NR_TMP/first-host.log" 2>&1 || rc=$?
  sed -nE 's/.*round [0-9]+: default via the first host ([0-9]+) ms after.*/\1/p' "$NR_TMP/first-host.log" |
    sort -n >"$NR_TMP/first-host.ms"
  n=$(wc -l <"$NR_TMP/first-host.ms")
  emit "### e. IPv6 first-host gateway confirmed"
  emit ""
  if ((n > 0)); then
    stats=$(awk '{ v[NR] = $1 } END { p50 = v[int((NR + 1) / 2)]; p99 = v[int(NR * 0.99 + 0.999)]; if (p99 == "") p99 = v[NR];
      printf "p50 %d ms, p99 %d ms, max %d ms over %d plugs", p50, p99, v[NR], NR }' "$NR_TMP/first-host.ms")
    emit "\`ROUNDS=$rounds Tests/Scenario/first-host.sh\` (exit status $rc): both addresses out of DAD -> default route via the first host in the NIC's table: $stats. Target: < 100 ms."
  else
    emit "\`ROUNDS=$rounds Tests/Scenario/first-host.sh\` (exit status $rc): no figure (see the test's output)."
  fi
  emit ""
fi

# ---- f. churn soak --------------------------------------------------------------------------
if want churn; then
  CHURN_ADDRS=$((QUICK ? 10000 : 100000)) CHURN_PLUGS=$((QUICK ? 100 : 1000))
  say "churn: 16 x 16, $CHURN_ADDRS address events, $CHURN_PLUGS hot-plug cycles"
  ns_pair
  make_nics 16 16
  rm -rf "$NR_TMP/state"
  notify_listen
  daemon_start "$NR_TMP/churn.log"
  wait_ready 1 60 >/dev/null || nr_die "nicrouted not READY (churn)"
  sleep 1
  read -r rss0 _ < <(mem "$DPID")
  fd0=$(fds)
  # Address events: /32s added and removed on eth1, 1,000 per batch (each add and each removal is
  # one notification and may be one pass).
  t0=$(nr_now_us)
  for ((k = 0; k < CHURN_ADDRS / 2000; k++)); do
    { for ((j = 0; j < 1000; j++)); do echo "addr add 10.11.$((100 + j / 250)).$((j % 250 + 1))/32 dev eth1"; done
      for ((j = 0; j < 1000; j++)); do echo "addr del 10.11.$((100 + j / 250)).$((j % 250 + 1))/32 dev eth1"; done
    } | ip -n "$NS_VM" -batch -
  done
  taddr=$(( ($(nr_now_us) - t0) / 1000 ))
  # Hot-plug cycles: a NIC with an address plugged, then removed.
  t0=$(nr_now_us)
  for ((k = 0; k < CHURN_PLUGS; k++)); do
    ip -n "$NS_VM" -batch - <<<"link add eth99 type veth peer name p99 netns $NS_PEER
link set eth99 up
addr add 10.99.0.2/24 dev eth99"
    sleep 0.005
    ip -n "$NS_VM" link del eth99
  done
  tplug=$(( ($(nr_now_us) - t0) / 1000 ))
  # Settle: the last passes done, a timer's retry come and gone.
  sleep 3
  kill -0 "$DPID" 2>/dev/null || nr_die "nicrouted died during the churn soak"
  read -r rss1 hwm1 < <(mem "$DPID")
  fd1=$(fds)
  passes=$(python3 "$PY" logpasses "$NR_TMP/churn.log" | wc -l)
  left=$(ip -n "$NS_VM" -4 rule show | grep -cE '10\.11\.1[0-9][0-9]\.|10\.99\.' || true)
  daemon_stop
  emit "### f. Churn soak"
  emit ""
  emit "16 NICs x 16 addresses in place, then $CHURN_ADDRS address events on eth1 (/32s added and removed, 1,000 per"
  emit "\`ip -batch\`, $taddr ms) and $CHURN_PLUGS hot-plug cycles (a veth NIC with an address plugged and removed, $tplug ms);"
  emit "the daemon's memory and open descriptors before and 3 s after. $passes passes ran."
  emit ""
  emit "| RSS before (MB) | RSS after (MB) | difference (MB) | HWM (MB) | open fds before / after | rules left for the churned addresses |"
  emit "|---|---|---|---|---|---|"
  emit "$(awk -v a="$rss0" -v b="$rss1" -v h="$hwm1" -v f0="$fd0" -v f1="$fd1" -v l="$left" 'BEGIN { printf "| %.1f | %.1f | %+.1f | %.1f | %d / %d | %d |", a / 1024, b / 1024, (b - a) / 1024, h / 1024, f0, f1, l }')"
  emit ""
  emit "Target: RSS after within 1 MB of before, open descriptors unchanged."
  emit ""
fi

# ---- g. the control socket under load -------------------------------------------------------
if want load; then
  LOAD_CLIENTS=200 LOAD_SECONDS=$((QUICK ? 10 : 60)) LOAD_TRIALS=$((QUICK ? 40 : 150))
  say "load: $LOAD_CLIENTS clients polling status for $LOAD_SECONDS s"
  ns_pair
  make_nics 2 1
  rm -rf "$NR_TMP/state"
  # The public socket where uid 65534 can reach it (the temp dir is root's, 0700).
  chmod 755 "$NR_TMP"
  mkdir -p "$NR_TMP/ctl"
  chmod 777 "$NR_TMP/ctl"
  CONTROL_SOCKET=$NR_TMP/ctl/control.sock
  notify_listen
  daemon_start "$NR_TMP/load.log"
  wait_ready 1 20 >/dev/null || nr_die "nicrouted not READY (load)"
  RT=()
  command -v chrt >/dev/null 2>&1 && RT=(chrt -f 10)
  ip netns exec "$NS_VM" "${RT[@]}" python3 "$PY" latency --dev eth1 --base 10.11.0 --first 100 --plen 24 \
    --trials "$LOAD_TRIALS" --out "$NR_TMP/load-idle.txt"
  read -r lrss0 _ < <(mem "$DPID")
  lfd0=$(fds)
  setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 "$PY" ctlload --socket "$CONTROL_SOCKET" \
    --clients "$LOAD_CLIENTS" --seconds "$LOAD_SECONDS" --out "$NR_TMP/ctl/times.txt" >"$NR_TMP/ctl/counts.txt" &
  LOADPID=$!
  NR_PIDS+=("$LOADPID")
  sleep 2
  # Addresses come and go meanwhile (the reaction's trials), and root asks too (its own socket).
  ip netns exec "$NS_VM" "${RT[@]}" python3 "$PY" latency --dev eth1 --base 10.11.0 --first 100 --plen 24 \
    --trials "$LOAD_TRIALS" --out "$NR_TMP/load-busy.txt"
  : >"$NR_TMP/load-root.txt"
  for ((k = 0; k < 20; k++)); do
    t0=$(nr_now_us)
    "$NICROUTECTL" status --json --control-socket "$CONTROL_SOCKET" >/dev/null || echo "failed" >>"$NR_TMP/load-root-failed.txt"
    echo $(($(nr_now_us) - t0)) >>"$NR_TMP/load-root.txt"
    sleep 0.1
  done
  wait "$LOADPID" || nr_die "the load generator failed"
  sleep 1
  kill -0 "$DPID" 2>/dev/null || nr_die "nicrouted died under load"
  read -r lrss1 lhwm1 < <(mem "$DPID")
  lfd1=$(fds)
  daemon_stop
  unset CONTROL_SOCKET
  read -r cok cbusy cinvalid cerror cunconnected <"$NR_TMP/ctl/counts.txt"
  read -r _ _ _ imax ip50 ip99 _ < <(stats "$NR_TMP/load-idle.txt" 0 1000)
  read -r _ _ _ bmax bp50 bp99 _ < <(stats "$NR_TMP/load-busy.txt" 0 1000)
  read -r _ _ _ rmax rp50 rp99 _ < <(stats "$NR_TMP/load-root.txt" 0 1000)
  read -r _ _ _ qmax qp50 qp99 _ < <(stats "$NR_TMP/ctl/times.txt" 0 1000)
  rootfailed=$(wc -l <"$NR_TMP/load-root-failed.txt" 2>/dev/null || echo 0)
  errors=$(tr '\n' ' ' <"$NR_TMP/ctl/times.txt.errors")
  emit "### g. The control socket under load"
  emit ""
  emit "nicrouted on 2 NICs; $LOAD_CLIENTS clients (threads of one process, uid 65534: the public socket's per-user limit"
  emit "applies) each ask \`status\` again as soon as they are answered, for $LOAD_SECONDS s, and check each answer; meanwhile"
  emit "addresses come and go on eth1 ($LOAD_TRIALS reaction trials, as in a.) and root runs \`nicroutectl status --json\`"
  emit "20 times (its own socket). Milliseconds."
  emit ""
  emit "| answers: complete status / busy / invalid / error; connects refused (queue full) | client round trip (complete): p50 / p99 / max | reaction idle: p50 / p99 / max | reaction under load: p50 / p99 / max | root's status: p50 / p99 / max (failed) | RSS before / after (MB) | open fds before / after |"
  emit "|---|---|---|---|---|---|---|"
  emit "| $cok / $cbusy / $cinvalid / $cerror; $cunconnected | $qp50 / $qp99 / $qmax | $ip50 / $ip99 / $imax | $bp50 / $bp99 / $bmax | $rp50 / $rp99 / $rmax ($rootfailed) | $(awk -v a="$lrss0" -v b="$lrss1" 'BEGIN { printf "%.1f / %.1f", a / 1024, b / 1024 }') | $lfd0 / $lfd1 |"
  emit ""
  emit "Errors by kind: ${errors:-none}."
  emit ""
  emit "Targets: every answer complete and valid, reaction p99 within 2x of idle, no growth of memory or descriptors."
  emit ""
fi

# ---- the report ---------------------------------------------------------------------------
BEGIN_MARK="<!-- BEGIN generated by scripts/bench.sh: do not edit by hand -->"
END_MARK="<!-- END generated by scripts/bench.sh -->"
mkdir -p "$(dirname "$OUT")"
if [[ -f $OUT ]] && grep -qF "$BEGIN_MARK" "$OUT" && grep -qF "$END_MARK" "$OUT"; then
  python3 - "$OUT" "$RES" "$BEGIN_MARK" "$END_MARK" <<'PY'
import sys
out, res, b, e = sys.argv[1:]
text = open(out).read()
head, rest = text.split(b, 1)
_, tail = rest.split(e, 1)
open(out, "w").write(head + b + "\n" + open(res).read() + e + tail)
PY
else
  { echo "# nicroute benchmarks"; echo; echo "$BEGIN_MARK"; cat "$RES"; echo "$END_MARK"; } >"$OUT"
fi
cat "$RES"
say "report written to $OUT"
[[ $KEEP -eq 1 ]] && say "raw data kept in $NR_TMP"
exit 0
