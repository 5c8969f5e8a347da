#!/usr/bin/env bash
# Robustness tests of nicrouted in network namespaces (a CI stage; --long for the benchmark):
#   a. storm: 4 NICs, IPv4 and IPv6, thousands of address changes per second from concurrent
#      `ip -batch` files, once with the daemon running and once with it stopped (SIGSTOP) so
#      that its netlink socket overruns (ENOBUFS): afterwards the exact state (one rule per
#      address, one table per NIC, exactly the right routes; `ip route get` agrees), no route
#      churn from one more address, and memory and descriptors back near the baseline;
#   b. soak: hot-plug/unplug cycles of a NIC with ping/TCP/UDP through its floating IP
#      (Neutron-like router namespace: DNAT/SNAT, port security): no failure, nothing left
#      after unplug, the same table every time, no descriptor or memory growth;
#   c. chaos: 16 NICs x 8 addresses, SIGKILL right after a random N-th change of a reconcile
#      (counted live from `ip monitor`) or after a random delay, then a restart repairs the
#      exact state with the same tables; another tool deleting one NIC's rules, then emptying
#      another NIC's table, in a loop: the daemon backs off (re-adds counted) and logs it;
#   d. control: an unprivileged user (uid 65534) holds 100 idle connections to the control
#      socket (re-opening each one the daemon closes) and floods it with requests from 8 more:
#      root's `status --json` and `reconfigure` are each answered within 1 s, complete, and
#      nobody's own nicroutectl reports the daemon's `busy`, not a broken pipe;
#   e. state: the state directory on a 64 kB tmpfs of its own (a private mount namespace): full,
#      read-only, the slot file replaced by a directory, then by garbage, and SIGKILLs right
#      after slot changes: the kernel state stays right (a rule for every NIC plugged), the
#      daemon runs on, one warning per cause, and once the fault is gone the slots and the
#      forwarding records are on disk (a final flush puts back every src_valid_mark it set).
#
#   sudo bash Tests/Robustness/robustness.sh           # fast mode: about 2 minutes
#   sudo bash Tests/Robustness/robustness.sh --long    # full size: 4 to 7 minutes
#
# Environment:
#   NICROUTED=/path/to/nicrouted       the daemon (default: .build/debug/nicrouted; not built here)
#   NICROUTECTL=/path/to/nicroutectl   the CLI (default: next to NICROUTED)
#   ROBUST_PARTS="storm soak chaos control state"  which parts to run
#   ROBUST_STORM_ROUNDS=N              add/remove rounds per NIC and storm phase (fast 3, long 20)
#   ROBUST_SOAK_CYCLES=N               hot-plug/unplug cycles (fast 20, long 200)
#   ROBUST_CHAOS_KILLS=N               SIGKILLs in the middle of a reconcile (fast 6, long 30)
#   ROBUST_FIGHT_SECONDS=S             how long each fight lasts (fast 4, long 15)
#   ROBUST_RSS_SLACK_KB=K              allowed resident-memory growth after the storm (8192)
#   ROBUST_SEED=N                      the random seed (default: from the PID; printed)
#   NR_KEEP_TMP=1                      keep the temp dir (daemon logs, monitor output)
#
# Everything runs in namespaces named nrr-<role>-<pid>; nothing is configured in the root
# namespace and every exit path deletes them. Prints `ok - ...` / `not ok - ...` per check,
# `# ...` figures, and ends with `robustness: N passed, M failed` (exit non-zero on failure).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
export NR_PREFIX=nrr
# shellcheck source-path=SCRIPTDIR source=../Scenario/lib.sh
source "$REPO/Tests/Scenario/lib.sh"

MODE=fast
for arg in "$@"; do
  case $arg in
    --long) MODE=long ;;
    --fast) MODE=fast ;;
    -h | --help)
      awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"
      exit 0
      ;;
    *)
      echo "usage: robustness.sh [--long]" >&2
      exit 2
      ;;
  esac
done
if [[ $MODE == long ]]; then
  : "${ROBUST_STORM_ROUNDS:=20}" "${ROBUST_SOAK_CYCLES:=200}" "${ROBUST_CHAOS_KILLS:=30}" "${ROBUST_FIGHT_SECONDS:=15}"
else
  : "${ROBUST_STORM_ROUNDS:=3}" "${ROBUST_SOAK_CYCLES:=20}" "${ROBUST_CHAOS_KILLS:=6}" "${ROBUST_FIGHT_SECONDS:=4}"
fi
: "${ROBUST_PARTS:=storm soak chaos control state}"
: "${ROBUST_RSS_SLACK_KB:=8192}"

nr_require_root
nr_install_traps
nr_summary robustness
nr_ensure_deps

: "${NICROUTED:=$REPO/.build/debug/nicrouted}"
[[ $NICROUTED == /* ]] || NICROUTED=$PWD/$NICROUTED
: "${NICROUTECTL:=$(dirname "$NICROUTED")/nicroutectl}"
[[ $NICROUTECTL == /* ]] || NICROUTECTL=$PWD/$NICROUTECTL
if [[ ! -x $NICROUTED || ! -x $NICROUTECTL ]]; then
  nr_fail "nicrouted ($NICROUTED) and nicroutectl ($NICROUTECTL) are built (swift build)"
  nr_summary_line
  exit 1
fi
nr_tmp_init
unset NOTIFY_SOCKET
T_START=$(nr_now_us)
: "${ROBUST_SEED:=$(($$ % 32768))}"
RANDOM=$ROBUST_SEED
echo "# mode $MODE: storm rounds $ROBUST_STORM_ROUNDS, soak cycles $ROBUST_SOAK_CYCLES, chaos kills $ROBUST_CHAOS_KILLS, fight ${ROBUST_FIGHT_SECONDS}s, ROBUST_SEED=$ROBUST_SEED"

# step NAME: print a phase heading.
step() { printf '# --- %s\n' "$*"; }

# ---- the daemon, per part ---------------------------------------------------------------

# rd_start NS TAG: start nicrouted in NS with its own state, configuration, control socket and
# log under $NR_TMP/TAG (managing eth*); PID in DPID. The log is appended across restarts.
rd_start() {
  local ns=$1 tag=$2
  mkdir -p "$NR_TMP/$tag/state"
  [[ -e $NR_TMP/$tag/nicroute.conf ]] || : >"$NR_TMP/$tag/nicroute.conf"
  ip netns exec "$ns" "$NICROUTED" --manage 'eth*' --state-dir "$NR_TMP/$tag/state" \
    --config "$NR_TMP/$tag/nicroute.conf" --control-socket "$NR_TMP/$tag/control.sock" \
    >>"$NR_TMP/$tag/nicrouted.log" 2>&1 &
  DPID=$!
  NR_PIDS+=("$DPID")
}

# rd_alive: true while the daemon DPID runs.
rd_alive() { ! nr_pid_gone "$DPID"; }

# rd_kill9: SIGKILL the daemon DPID and reap it.
rd_kill9() {
  kill -KILL "$DPID" 2>/dev/null || true
  wait "$DPID" 2>/dev/null || true
}

# rd_ctl NS TAG ARGS...: nicroutectl in NS, talking to TAG's daemon.
rd_ctl() {
  local ns=$1 tag=$2
  shift 2
  ip netns exec "$ns" "$NICROUTECTL" "$@" --control-socket "$NR_TMP/$tag/control.sock" \
    --config "$NR_TMP/$tag/nicroute.conf" --state-dir "$NR_TMP/$tag/state" --manage 'eth*'
}

# rd_ctl_within SECONDS NS TAG ARGS...: rd_ctl, killed after SECONDS.
rd_ctl_within() {
  local limit=$1 ns=$2 tag=$3
  shift 3
  timeout "$limit" ip netns exec "$ns" "$NICROUTECTL" "$@" --control-socket "$NR_TMP/$tag/control.sock" \
    --config "$NR_TMP/$tag/nicroute.conf" --state-dir "$NR_TMP/$tag/state" --manage 'eth*'
}

# rd_ctl_quiet NS TAG ARGS...: rd_ctl without its output (for its exit status).
rd_ctl_quiet() { rd_ctl "$@" >/dev/null 2>&1; }

# plan_is_empty NS TAG: `nicroutectl plan` has nothing to change.
plan_is_empty() {
  local out
  out=$(rd_ctl "$1" "$2" plan 2>/dev/null) || return 1
  [[ -z $out ]]
}

# show_log TAG [N]: the end of TAG's daemon log, as comments.
show_log() {
  local f=$NR_TMP/$1/nicrouted.log
  [[ -s $f ]] || return 0
  echo "# nicrouted log ($1, last ${2:-25} lines):"
  tail -n "${2:-25}" "$f" | cut -c1-300 | sed 's/^/#   /'
}

# proc_kb PID FIELD: a /proc/PID/status figure in kB (VmRSS, VmHWM), or 0.
proc_kb() {
  local v
  v=$(awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null)
  printf '%s' "${v:-0}"
}

# fd_count PID: how many descriptors PID has open.
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# fd_list PID: "fd -> target" for each descriptor PID has open (socket inodes elided).
fd_list() {
  find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -printf '%f -> %l\n' 2>/dev/null | sed -E 's/\[[0-9]+\]$/[]/' | sort -n
}

# cpu_ticks PID: user + system clock ticks PID has used.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# netlink_drops NS PID: the Drops counters of PID's netlink sockets, summed.
netlink_drops() {
  local inodes
  inodes=$(find "/proc/$2/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null |
    sed -nE 's/^socket:\[([0-9]+)\]$/\1/p' | tr '\n' ' ')
  ip netns exec "$1" cat /proc/net/netlink |
    awk -v list=" $inodes " 'NR > 1 && index(list, " " $10 " ") { d += $9 } END { print d + 0 }'
}

# kb_mb KB: KB as MB with one decimal.
kb_mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# rule_count NS: how many nicroute rules (IPv4 and IPv6).
rule_count() {
  { ip -n "$1" -4 rule show; ip -n "$1" -6 rule show; } | grep -Ec "proto ($NICROUTE_PROTO_RE)( |\$)" || true
}

# route_count NS: how many nicroute routes (IPv4 and IPv6, every table).
route_count() { nicroute_routes "$1" | grep -c . || true; }

# ---- the exact expected state -----------------------------------------------------------
# A "multi-NIC VM" namespace NS holds NICs eth0..eth(N-1) (veths whose peers sit in a peer
# namespace), NIC i on subnet NETS[i] with gateway GWS[i] (and NETS6[i]/GWS6[i] when IPv6 is
# on). nicroute must install exactly: one
# rule per global address of a NIC, all of a NIC's rules pointing at one table of its own, and
# in that table exactly: its subnet on the NIC, every other NIC's subnet via its gateway, and
# a default route via its gateway. Nothing else carries nicroute's protocol.
NICS=()
NETS=()
GWS=()
NETS6=() # IPv6 subnet and gateway per NIC (empty: IPv4 only)
GWS6=()

# addr_lines NS: "nic address" for every global address of a managed NIC, sorted.
addr_lines() {
  ip -j -n "$1" addr show |
    jq -r '.[] | select(.ifname | test("^eth")) | .ifname as $n | .addr_info[]
      | select(.scope == "global") | "\($n) \(.local)"' | sort
}

# rule_lines NS: "address table priority" for every nicroute rule, sorted.
rule_lines() { nicroute_rules "$1" | sed -E 's#/(32|128) # #' | sort; }

# route_lines NS: "table dst gateway dev" for every nicroute route (both families), sorted.
route_lines() {
  { ip -j -n "$1" -4 route show table all; ip -j -n "$1" -6 route show table all; } |
    jq -r --arg re "^($NICROUTE_PROTO_RE)\$" '.[] | select((.protocol // "" | tostring) | test($re))
      | "\(.table // "main") \(.dst) \(.gateway // "-") \(.dev // "-")"' | sort
}

# state_problems NS: print what differs from the exact expected state (nothing when right).
state_problems() {
  local ns=$1 addrs rules routes want i j t nic
  addrs=$(addr_lines "$ns")
  rules=$(rule_lines "$ns")
  routes=$(route_lines "$ns")
  # Rules: exactly one per address, and no rule without its address.
  comm -3 <(awk '{ print $2 }' <<<"$addrs" | sort) <(awk '{ print $1 }' <<<"$rules" | sort) |
    awk -F'\t' 'NF && $1 != "" { print "address without a rule: " $1 } $2 != "" { print "rule without an address (or a duplicate): " $2 }'
  awk '{ print $1 }' <<<"$rules" | sort | uniq -d | sed 's/^/duplicate rule from: /'
  # One table per NIC; the routes in it.
  want=""
  declare -A table_of=()
  while read -r nic addr; do
    [[ -n $nic ]] || continue
    t=$(awk -v a="$addr" '$1 == a { print $2; exit }' <<<"$rules")
    [[ -n $t ]] || continue
    if [[ -n ${table_of[$nic]:-} && ${table_of[$nic]} != "$t" ]]; then
      echo "$nic's rules point at two tables: ${table_of[$nic]} and $t"
    fi
    table_of[$nic]=$t
  done <<<"$addrs"
  for ((i = 0; i < ${#NICS[@]}; i++)); do
    nic=${NICS[$i]}
    t=${table_of[$nic]:-}
    [[ -n $t ]] || continue
    want+="$t default ${GWS[$i]} $nic"$'\n'
    [[ -z ${NETS6[$i]:-} ]] || want+="$t default ${GWS6[$i]} $nic"$'\n'
    for ((j = 0; j < ${#NICS[@]}; j++)); do
      if ((i == j)); then
        want+="$t ${NETS[$j]} - $nic"$'\n'
        [[ -z ${NETS6[$j]:-} ]] || want+="$t ${NETS6[$j]} - $nic"$'\n'
      elif [[ -n ${table_of[${NICS[$j]}]:-} ]]; then
        want+="$t ${NETS[$j]} ${GWS[$i]} $nic"$'\n'
        [[ -z ${NETS6[$j]:-} || -z ${NETS6[$i]:-} ]] || want+="$t ${NETS6[$j]} ${GWS6[$i]} $nic"$'\n'
      fi
    done
  done
  if [[ $(printf '%s' "$want" | sort | uniq -d) ]]; then echo "two NICs share a table"; fi
  comm -3 <(printf '%s' "$want" | sort) <(printf '%s\n' "$routes" | sed '/^$/d') |
    awk -F'\t' '$1 != "" { print "missing route: table " $1 } $2 != "" { print "unexpected route: table " $2 }'
  printf '%s\n' "$routes" | sed '/^$/d' | uniq -d | sed 's/^/duplicate route: /'
}

# state_exact NS: true when state_problems finds nothing.
state_exact() { [[ -z $(state_problems "$1") ]]; }

# converged NS TAG: the exact state, and the daemon sees nothing left to do.
converged() { state_exact "$1" && plan_is_empty "$1" "$2"; }

# check_state NS DESC: pass when the state is exact; else show the first problems.
check_state() {
  local problems
  problems=$(state_problems "$1")
  if [[ -z $problems ]]; then
    nr_pass "$2"
  else
    nr_fail "$2 ($(grep -c . <<<"$problems") problems)"
    head -n 12 <<<"$problems" | sed 's/^/#   /'
  fi
}

# check_oracle_sample NS PER_NIC: `ip route get` from up to PER_NIC addresses of each NIC and
# family: the internet and every other NIC's subnet via the NIC's own gateway, its subnet directly.
check_oracle_sample() {
  local ns=$1 per=$2 i j nic addr bad=0 total=0 got want dst gw
  local -a nets
  for ((i = 0; i < ${#NICS[@]}; i++)); do
    nic=${NICS[$i]}
    while read -r addr; do
      [[ -n $addr ]] || continue
      if [[ $addr == *:* ]]; then
        nets=("${NETS6[@]}") gw=${GWS6[$i]:-}
      else
        nets=("${NETS[@]}") gw=${GWS[$i]}
      fi
      for ((j = 0; j <= ${#NICS[@]}; j++)); do
        if ((j == ${#NICS[@]})); then
          if [[ $addr == *:* ]]; then dst=2001:db8::1; else dst=198.18.0.1; fi
          want="dev $nic via $gw"
        else
          dst=${nets[$j]%/*}
          if [[ $addr == *:* ]]; then dst=${dst}250; else dst=${dst%.*}.250; fi
          if ((i == j)); then want="dev $nic"; else want="dev $nic via $gw"; fi
        fi
        got=$(route_get "$ns" "$dst" "$addr")
        total=$((total + 1))
        if [[ $got != "$want" ]]; then
          bad=$((bad + 1))
          ((bad <= 5)) && echo "#   from $addr to $dst: want '$want', kernel says '$got'"
        fi
      done
    done < <(addr_lines "$ns" | awk -v n="$nic" '$1 == n { print $2 }' | shuf -n "$per" --random-source=<(yes))
  done
  if ((bad == 0 && total > 0)); then
    nr_pass "kernel oracle (ip route get ... from ...): $total answers from sampled addresses all right"
  else
    nr_fail "kernel oracle (ip route get ... from ...): $bad of $total answers wrong"
  fi
}

# multinic_create NS PEER N BASE MACBYTE CONF [ipv6]: a VM namespace NS with NICs
# eth0..eth(N-1), peers in PEER; NIC i on BASE.i.0/24 with address BASE.i.2 and gateway BASE.i.1
# (the peer). eth0 has the main table's default route; the others' gateways come from
# [Gateway] overrides in CONF. With "ipv6", NIC i also has fd00:X:ai::2/64 (X: BASE's second
# number; "a" keeps the text canonical for i=0) with gateway fd00:X:ai::1; without, IPv6 is off in both namespaces. Fills
# NICS/NETS/GWS/NETS6/GWS6.
multinic_create() {
  local ns=$1 peer=$2 n=$3 base=$4 macbyte=$5 conf=$6 v6=${7:-} i nic b6
  b6=fd00:${base#*.}
  nr_ns_new "$ns"
  nr_ns_new "$peer"
  if [[ $v6 == ipv6 ]]; then
    nr_sysctl "$ns" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    nr_sysctl "$peer" net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  else
    nr_sysctl "$ns" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    nr_sysctl "$peer" net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  fi
  NICS=() NETS=() GWS=() NETS6=() GWS6=()
  : >"$conf"
  for ((i = 0; i < n; i++)); do
    nic=eth$i
    NICS+=("$nic")
    NETS+=("$base.$i.0/24")
    GWS+=("$base.$i.1")
    ip -n "$ns" link add "$nic" address "$(printf 'fa:16:3e:%s:00:%02x' "$macbyte" "$i")" type veth peer name "p$i" netns "$peer"
    ip -n "$peer" addr add "$base.$i.1/24" dev "p$i"
    ip -n "$ns" addr add "$base.$i.2/24" dev "$nic"
    if [[ $v6 == ipv6 ]]; then
      NETS6+=("$b6:a$i::/64")
      GWS6+=("$b6:a$i::1")
      ip -n "$peer" addr add "$b6:a$i::1/64" dev "p$i" nodad
      ip -n "$ns" addr add "$b6:a$i::2/64" dev "$nic" nodad
    fi
    ip -n "$peer" link set "p$i" up
    ip -n "$ns" link set "$nic" up
    if ((i > 0)); then
      printf '[Gateway]\nInterface=%s\nIPv4=%s\n' "$nic" "$base.$i.1"
      [[ $v6 != ipv6 ]] || printf 'IPv6=%s\n' "$b6:a$i::1"
      echo
    fi >>"$conf"
  done
  ip -n "$ns" route add default via "$base.0.1" dev eth0
  [[ $v6 != ipv6 ]] || ip -n "$ns" -6 route add default via "$b6:a0::1" dev eth0
}

# =====================================================================================
# a. event storm
# =====================================================================================

# storm_files DIR ROUNDS KEEP_EXPR: one `ip -batch` file per NIC: ROUNDS rounds of adding and
# removing the secondary addresses .10-.249 of its /24 (and ::10-::129 of its /64 when it has
# IPv6), then a last round that adds them all and removes those whose number K does not
# satisfy the awk expression KEEP_EXPR.
storm_files() {
  local dir=$1 rounds=$2 keep=$3 i
  mkdir -p "$dir"
  for ((i = 0; i < ${#NICS[@]}; i++)); do
    awk -v r="$rounds" -v nic="${NICS[$i]}" -v net="${NETS[$i]%.*}" -v net6="${NETS6[$i]:+${NETS6[$i]%/*}}" "BEGIN {
      for (round = 0; round <= r; round++) {
        for (k = 10; k < 250; k++) {
          print \"addr add \" net \".\" k \"/24 dev \" nic
          if (net6 != \"\" && k < 130) print \"addr add \" net6 k \"/64 dev \" nic \" nodad\"
        }
        for (k = 10; k < 250; k++) {
          if (round < r || !($keep)) {
            print \"addr del \" net \".\" k \"/24 dev \" nic
            if (net6 != \"\" && k < 130) print \"addr del \" net6 k \"/64 dev \" nic
          }
        }
      }
    }" >"$dir/$i.batch"
  done
}

# storm_run DIR NS: run every batch file of DIR at once in NS; sets STORM_LINES, STORM_MS.
storm_run() {
  local dir=$1 ns=$2 f t0 pid
  local -a pids=()
  STORM_LINES=$(cat "$dir"/*.batch | wc -l)
  t0=$(nr_now_us)
  for f in "$dir"/*.batch; do
    ip -n "$ns" -force -batch "$f" >/dev/null 2>&1 &
    pids+=("$!")
    NR_PIDS+=("$!")
  done
  for pid in "${pids[@]}"; do wait "$pid" || true; done
  STORM_MS=$((($(nr_now_us) - t0) / 1000))
}

# side_load NS TAG PID OUT: 20 SIGHUPs to PID, 20 ms apart, then 10 concurrent
# `nicroutectl status` (30 s each at most); writes "answered asked" to OUT.
side_load() {
  local ns=$1 tag=$2 pid=$3 out=$4 i ok=0
  local -a clients=()
  for ((i = 0; i < 20; i++)); do
    kill -HUP "$pid" 2>/dev/null || true
    sleep 0.02
  done
  for ((i = 0; i < 10; i++)); do
    timeout 30 ip netns exec "$ns" "$NICROUTECTL" status --json --control-socket "$NR_TMP/$tag/control.sock" \
      >/dev/null 2>"$out.client$i" &
    clients+=("$!")
  done
  for i in "${!clients[@]}"; do
    if wait "${clients[$i]}"; then
      ok=$((ok + 1))
    else
      # Shown under the check: why a client got no answer.
      sed "s/^/#   client $i: /" "$out.client$i" >>"$out.errors"
    fi
  done
  echo "$ok ${#clients[@]}" >"$out"
}

# link_storm NS PEER FIRST COUNT ROUNDS DIR: hot-plug NICs eth<FIRST>..eth<FIRST+COUNT-1>
# (veths, peers in PEER answering as first hosts), give them an address, bring them up, and
# unplug them again, ROUNDS times; in the last round the even ones stay. They are IPv4 only,
# with no [Gateway] override: the first-host probe finds their gateway. Adds the kept NICs to
# NICS/NETS/GWS.
link_storm() {
  local ns=$1 peer=$2 first=$3 count=$4 rounds=$5 dir=$6 base=${NETS[0]%.*.*} r k
  mkdir -p "$dir"
  for ((r = 0; r <= rounds; r++)); do
    for ((k = first; k < first + count; k++)); do
      printf 'link add eth%d address fa:16:3e:5a:00:%02x type veth peer name p%d netns %s\n' "$k" "$k" "$k" "$peer"
    done >"$dir/plug.batch"
    for ((k = first; k < first + count; k++)); do
      echo "addr add $base.$k.1/24 dev p$k"
      echo "link set p$k up"
    done >"$dir/peer.batch"
    for ((k = first; k < first + count; k++)); do
      echo "addr add $base.$k.2/24 dev eth$k"
      echo "link set eth$k up"
    done >"$dir/up.batch"
    for ((k = first; k < first + count; k++)); do
      ((r == rounds && k % 2 == 0)) || echo "link del eth$k"
    done >"$dir/unplug.batch"
    ip -n "$ns" -force -batch "$dir/plug.batch" >/dev/null 2>&1 || true
    ip -n "$peer" -force -batch "$dir/peer.batch" >/dev/null 2>&1 || true
    ip -n "$ns" -force -batch "$dir/up.batch" >/dev/null 2>&1 || true
    ip -n "$ns" -force -batch "$dir/unplug.batch" >/dev/null 2>&1 || true
  done
  for ((k = first; k < first + count; k++)); do
    ((k % 2 == 0)) || continue
    NICS+=("eth$k") NETS+=("$base.$k.0/24") GWS+=("$base.$k.1") NETS6+=("") GWS6+=("")
  done
}

# churn_check NS TAG: on a NIC with many addresses, adding and removing one address of each
# family adds and removes its rule and touches no route (the subnet route's `src` stays put).
churn_check() {
  local ns=$1 tag=$2 mon=$NR_TMP/$2/monitor-churn.log a4 a6 i mon_pid routes rules
  a4=${NETS[1]%.*}.251 a6=${NETS6[1]%/*}251
  nr_bg - "$mon" ip -n "$ns" -ts monitor route rule
  mon_pid=$NR_LAST_PID
  for ((i = 0; i < 25; i++)); do
    ip -n "$ns" -4 rule add fwmark 0x96 lookup 96 priority 496
    ip -n "$ns" -4 rule del fwmark 0x96 lookup 96 priority 496
    wait_until 0.2 grep -q 'fwmark 0x96' "$mon" && break
  done
  ip -n "$ns" addr add "$a4/24" dev "${NICS[1]}"
  ip -n "$ns" addr add "$a6/64" dev "${NICS[1]}" nodad
  wait_until 10 has_nicroute_rule "$ns" "$a4" || true
  wait_until 10 has_nicroute_rule "$ns" "$a6" || true
  ip -n "$ns" addr del "$a4/24" dev "${NICS[1]}"
  ip -n "$ns" addr del "$a6/64" dev "${NICS[1]}"
  wait_until 10 has_no_nicroute_rule "$ns" "$a4" || true
  wait_until 10 has_no_nicroute_rule "$ns" "$a6" || true
  sleep 0.3
  kill "$mon_pid" 2>/dev/null || true
  wait "$mon_pid" 2>/dev/null || true
  rules=$(grep -Ec "^\[[^]]+\] (Deleted )?[0-9]+:[[:space:]]+from ($a4|$a6) .*proto ($NICROUTE_PROTO_RE)( |\$)" "$mon" || true)
  routes=$(grep -Ev "^\[[^]]+\] (Deleted )?[0-9]+:[[:space:]]" "$mon" | grep -E "proto ($NICROUTE_PROTO_RE)( |\$)" || true)
  check "no churn: adding and removing $a4 and $a6 on ${NICS[1]} added and removed their 2 rules (rule events: $rules)" \
    test "$rules" -eq 4
  if [[ -z $routes ]]; then
    nr_pass "no churn: an address coming and going on a busy NIC touches no route"
  else
    nr_fail "no churn: an address coming and going on a busy NIC touches no route ($(grep -c . <<<"$routes") route events)"
    head -n 6 <<<"$routes" | cut -c1-200 | sed 's/^/#   /'
  fi
  check "no churn: exact state afterwards" wait_until 10 converged "$ns" "$tag"
}

part_storm() {
  local ns=$NR_PREFIX-sv-$NR_ID peer=$NR_PREFIX-sp-$NR_ID tag=storm
  local base_rss base_fd rss hwm fd drops0 drops1 resyncs rate n reloads side answered asked i
  step "a. event storm: 4 NICs (IPv4 and IPv6), thousands of address changes per second, socket overrun"
  mkdir -p "$NR_TMP/$tag"
  multinic_create "$ns" "$peer" 4 10.50 5a "$NR_TMP/$tag/nicroute.conf" ipv6
  rd_start "$ns" "$tag"
  if ! wait_until 15 converged "$ns" "$tag"; then
    nr_fail "storm: nicrouted installs the 4 NICs' rules and tables, both families (within 15 s)"
    state_problems "$ns" | head -n 10 | sed 's/^/#   /'
    show_log "$tag"
    return 0
  fi
  nr_pass "storm: nicrouted installs the 4 NICs' rules and tables, both families"
  # Warm-up: one address comes and goes, so that what the runtime creates on first use (the
  # timerfd of the first coalescing sleep) is part of the baseline, not taken for a leak.
  ip -n "$ns" addr add "${NETS[0]%.*}.9/24" dev "${NICS[0]}"
  wait_until 10 has_nicroute_rule "$ns" "${NETS[0]%.*}.9" || true
  ip -n "$ns" addr del "${NETS[0]%.*}.9/24" dev "${NICS[0]}"
  wait_until 10 converged "$ns" "$tag" || true
  sleep 1
  base_rss=$(proc_kb "$DPID" VmRSS) base_fd=$(fd_count "$DPID")
  fd_list "$DPID" >"$NR_TMP/$tag/fds.before"
  drops0=$(netlink_drops "$ns" "$DPID")
  echo "# storm: baseline VmRSS $(kb_mb "$base_rss") MB, $base_fd fds"

  # Phase 1: the daemon keeps up as best it can, while it is told to reload (SIGHUP) and asked
  # for its status (nicroutectl, concurrently).
  storm_files "$NR_TMP/$tag/s1" "$ROBUST_STORM_ROUNDS" 'k % 2 == 0'
  reloads=$(grep -c 'configuration reloaded' "$NR_TMP/$tag/nicrouted.log" || true)
  side_load "$ns" "$tag" "$DPID" "$NR_TMP/$tag/side.out" &
  side=$!
  NR_PIDS+=("$side")
  storm_run "$NR_TMP/$tag/s1" "$ns"
  wait "$side" || true
  rate=$((STORM_LINES * 1000 / (STORM_MS > 0 ? STORM_MS : 1)))
  echo "# storm phase 1 (daemon running): $STORM_LINES address changes in $STORM_MS ms ($rate/s)"
  read -r answered asked <"$NR_TMP/$tag/side.out" || answered=0 asked=unknown
  check "storm phase 1: nicroutectl status answered during the storm ($answered of $asked concurrent clients)" \
    test "$answered" = "$asked"
  [[ ! -s $NR_TMP/$tag/side.out.errors ]] || cat "$NR_TMP/$tag/side.out.errors"
  check "storm phase 1: SIGHUPs during the storm were taken as reloads (log: $(($(grep -c 'configuration reloaded' "$NR_TMP/$tag/nicrouted.log" || true) - reloads)) reloads)" \
    test "$(grep -c 'configuration reloaded' "$NR_TMP/$tag/nicrouted.log" || true)" -gt "$reloads"
  if wait_until 60 converged "$ns" "$tag"; then
    nr_pass "storm phase 1: converged to the exact state ($(grep -c . <<<"$(rule_lines "$ns")") rules)"
  else
    nr_fail "storm phase 1: converged to the exact state within 60 s"
    state_problems "$ns" | head -n 10 | sed 's/^/#   /'
  fi
  drops1=$(netlink_drops "$ns" "$DPID")
  echo "# storm phase 1: netlink drops on the daemon's sockets: $((drops1 - drops0))"

  # Phase 2: the daemon is frozen while the storm runs, so its socket buffer overruns.
  resyncs=$(grep -c 'ENOBUFS' "$NR_TMP/$tag/nicrouted.log" || true)
  storm_files "$NR_TMP/$tag/s2" "$ROBUST_STORM_ROUNDS" 'k % 3 == 0'
  kill -STOP "$DPID"
  storm_run "$NR_TMP/$tag/s2" "$ns"
  drops0=$drops1
  drops1=$(netlink_drops "$ns" "$DPID")
  kill -CONT "$DPID"
  rate=$((STORM_LINES * 1000 / (STORM_MS > 0 ? STORM_MS : 1)))
  echo "# storm phase 2 (daemon stopped): $STORM_LINES address changes in $STORM_MS ms ($rate/s); netlink drops: $((drops1 - drops0))"
  check "storm phase 2: the daemon's netlink socket overran (kernel drop counter grew by $((drops1 - drops0)))" \
    test "$((drops1 - drops0))" -gt 0
  if wait_until 60 converged "$ns" "$tag"; then
    nr_pass "storm phase 2: converged to the exact state after the overrun ($(grep -c . <<<"$(rule_lines "$ns")") rules)"
  else
    nr_fail "storm phase 2: converged to the exact state within 60 s after the overrun"
    state_problems "$ns" | head -n 10 | sed 's/^/#   /'
  fi
  n=$(grep -c 'ENOBUFS' "$NR_TMP/$tag/nicrouted.log" || true)
  check "storm phase 2: the daemon reported the lost messages and resynced (log: $((n - resyncs)) new 'ENOBUFS' lines)" \
    test "$((n - resyncs))" -ge 1
  check "storm: nicrouted still running" rd_alive
  check_state "$ns" "storm: exactly one rule per remaining address, one table per NIC, exactly the right routes"
  check_oracle_sample "$ns" 6
  hwm=$(proc_kb "$DPID" VmHWM)
  churn_check "$ns" "$tag"

  # Phase 3: NICs hot-plugged and unplugged in bursts, on top of the remaining addresses.
  link_storm "$ns" "$peer" 4 8 "$ROBUST_STORM_ROUNDS" "$NR_TMP/$tag/links"
  echo "# storm phase 3: 8 NICs plugged, addressed and unplugged $ROBUST_STORM_ROUNDS times, then 4 of them plugged to stay"
  if wait_until 30 converged "$ns" "$tag"; then
    nr_pass "storm phase 3: after the hot-plug bursts, the exact state for ${#NICS[@]} NICs ($(rule_count "$ns") rules, $(route_count "$ns") routes; gateways of the new NICs by first-host probe)"
  else
    nr_fail "storm phase 3: after the hot-plug bursts, the exact state for ${#NICS[@]} NICs within 30 s"
    state_problems "$ns" | head -n 10 | sed 's/^/#   /'
  fi
  check_oracle_sample "$ns" 2
  check "storm phase 3: nicrouted still running" rd_alive

  # Back to the starting NICs and addresses: the baseline's state, so memory must come back.
  for ((i = 4; i < ${#NICS[@]}; i++)); do echo "link del ${NICS[$i]}"; done >"$NR_TMP/$tag/unplug.batch"
  ip -n "$ns" -force -batch "$NR_TMP/$tag/unplug.batch" >/dev/null 2>&1 || true
  NICS=("${NICS[@]:0:4}") NETS=("${NETS[@]:0:4}") GWS=("${GWS[@]:0:4}") NETS6=("${NETS6[@]:0:4}") GWS6=("${GWS6[@]:0:4}")
  for ((i = 0; i < ${#NICS[@]}; i++)); do
    addr_lines "$ns" | awk -v n="${NICS[$i]}" -v p="${NETS[$i]%.*}.2" -v p6="${NETS6[$i]%/*}2" \
      '$1 == n && $2 != p && $2 != p6 { print "addr del " $2 (index($2, ":") ? "/64" : "/24") " dev " n }'
  done >"$NR_TMP/$tag/undo.batch"
  ip -n "$ns" -force -batch "$NR_TMP/$tag/undo.batch" >/dev/null 2>&1 || true
  if wait_until 30 converged "$ns" "$tag"; then
    nr_pass "storm: back to the first addresses, back to exactly 8 rules ($(rule_count "$ns"))"
  else
    nr_fail "storm: back to the first addresses, back to exactly 8 rules within 30 s"
    state_problems "$ns" | head -n 10 | sed 's/^/#   /'
  fi
  sleep 2
  rss=$(proc_kb "$DPID" VmRSS) fd=$(fd_count "$DPID")
  echo "# storm memory: VmRSS baseline $(kb_mb "$base_rss") MB, peak (VmHWM) $(kb_mb "$hwm") MB, after settle $(kb_mb "$rss") MB (+$(kb_mb $((rss - base_rss))) MB); fds $base_fd -> $fd"
  check "storm: memory back near the baseline (VmRSS $(kb_mb "$base_rss") -> $(kb_mb "$rss") MB, bound +$(kb_mb "$ROBUST_RSS_SLACK_KB") MB; peak $(kb_mb "$hwm") MB)" \
    test "$rss" -le "$((base_rss + ROBUST_RSS_SLACK_KB))"
  if [[ $fd -le $base_fd ]]; then
    nr_pass "storm: no descriptor leak ($base_fd -> $fd)"
  else
    nr_fail "storm: no descriptor leak ($base_fd -> $fd)"
    diff "$NR_TMP/$tag/fds.before" <(fd_list "$DPID") | sed 's/^/#   /' || true
  fi
  [[ $NR_FAIL -gt 0 ]] && show_log "$tag" 15
  nr_stop_pid "$DPID" 5
  check "storm: SIGTERM: exit status 0 (got $NR_STOP_RC)" test "$NR_STOP_RC" = 0
  ip netns del "$ns" 2>/dev/null || true
  ip netns del "$peer" 2>/dev/null || true
}

# =====================================================================================
# b. soak: hot-plug/unplug cycles with traffic through the floating IP
# =====================================================================================

# leftovers_c: print nicroute rules and routes still referring to NIC C.
leftovers_c() {
  nicroute_rules "$NS_VM" | awk -v a="$ADDR_C" '$1 == a || $1 == a "/32"' | sed 's/^/rule /'
  nicroute_routes "$NS_VM" | grep -E "(^|[ /])${ADDR_C%.*}\.|dev $NIC_C( |\$)" | sed 's/^/route /' || true
}

# nothing_left_c: true when leftovers_c prints nothing.
nothing_left_c() { [[ -z $(leftovers_c) ]]; }

part_soak() {
  local tag=soak cycles=$ROBUST_SOAK_CYCLES c t0 pid servers=() rule_fail=0 ping_fail=0 tcp_fail=0 udp_fail=0 left_fail=0 ctl_fail=0
  local table first_table="" table_changes=0 rss fd rss1=0 fd1=0 rssmax=0 fdmax=0 udp_pid warm elapsed
  step "b. soak: $cycles hot-plug/unplug cycles of NIC C with traffic through its floating IP"
  mkdir -p "$NR_TMP/$tag"
  topo_create
  router_create C
  start_tcp_echo "$TCP_PORT"
  servers+=("$NR_LAST_PID")
  start_udp_echo "$ADDR_A" "$UDP_PORT"
  servers+=("$NR_LAST_PID")
  start_udp_echo "$ADDR_B" "$UDP_PORT"
  servers+=("$NR_LAST_PID")
  rd_start "$NS_VM" "$tag"
  if ! wait_until 15 has_nicroute_rule "$NS_VM" "$ADDR_B"; then
    nr_fail "soak: nicrouted installs the rule from $ADDR_B (within 15 s)"
    show_log "$tag"
    return 0
  fi
  nr_pass "soak: nicrouted installs the rule from $ADDR_B"
  check "soak: traffic through floating IP B before the cycles" probe_tcp "$FIP_B" "$TCP_PORT" 5
  warm=$(((cycles + 9) / 10)) # samples before this cycle are the warm-up
  t0=$(nr_now_us)
  for ((c = 1; c <= cycles; c++)); do
    vm_nic_plug C
    vm_nic_address C
    if ! wait_until 10 has_nicroute_rule "$NS_VM" "$ADDR_C"; then
      rule_fail=$((rule_fail + 1))
      echo "#   cycle $c: no rule from $ADDR_C within 10 s"
    fi
    table=$(nicroute_table_of "$NS_VM" "$ADDR_C")
    [[ -z $first_table ]] && first_table=$table
    [[ $table == "$first_table" ]] || table_changes=$((table_changes + 1))
    start_udp_echo "$ADDR_C" "$UDP_PORT"
    udp_pid=$NR_LAST_PID
    probe_ping "$FIP_C" 5 || { ping_fail=$((ping_fail + 1)); echo "#   cycle $c: ping via $FIP_C failed"; }
    probe_tcp "$FIP_C" "$TCP_PORT" 5 || { tcp_fail=$((tcp_fail + 1)); echo "#   cycle $c: TCP via $FIP_C failed"; }
    probe_udp "$FIP_C" "$UDP_PORT" 5 || { udp_fail=$((udp_fail + 1)); echo "#   cycle $c: UDP via $FIP_C failed"; }
    kill "$udp_pid" 2>/dev/null || true
    wait "$udp_pid" 2>/dev/null || true
    # A control client every cycle too: descriptors of the control socket must not pile up.
    rd_ctl_quiet "$NS_VM" "$tag" status --json || { ctl_fail=$((ctl_fail + 1)); echo "#   cycle $c: nicroutectl status failed"; }
    vm_nic_unplug C
    if ! wait_until 10 nothing_left_c; then
      left_fail=$((left_fail + 1))
      echo "#   cycle $c: left after unplug:"
      leftovers_c | head -n 5 | sed 's/^/#     /'
    fi
    rss=$(proc_kb "$DPID" VmRSS) fd=$(fd_count "$DPID")
    if ((c == warm)); then rss1=$rss fd1=$fd; fi
    if ((c > warm)); then
      ((rss > rssmax)) && rssmax=$rss
      ((fd > fdmax)) && fdmax=$fd
    fi
    if ((c % 10 == 0 || c == cycles)); then echo "#   cycle $c: VmRSS $(kb_mb "$rss") MB, $fd fds"; fi
  done
  elapsed=$((($(nr_now_us) - t0) / 1000000))
  ((cycles > warm)) || { rssmax=$rss1 fdmax=$fd1; }
  echo "# soak: $cycles cycles in ${elapsed}s; failures: rule $rule_fail, ping $ping_fail, TCP $tcp_fail, UDP $udp_fail, leftovers $left_fail; table $first_table ($table_changes changes)"
  echo "# soak: after warm-up (cycle $warm): VmRSS $(kb_mb "$rss1") MB, $fd1 fds; later max VmRSS $(kb_mb "$rssmax") MB, max $fdmax fds; last VmRSS $(kb_mb "$rss") MB, $fd fds"
  check "soak: the rule appeared in all $cycles cycles ($rule_fail failures)" test "$rule_fail" -eq 0
  check "soak: ping, TCP and UDP through floating IP C in all $cycles cycles (failures: $ping_fail/$tcp_fail/$udp_fail)" \
    test $((ping_fail + tcp_fail + udp_fail)) -eq 0
  check "soak: nicroutectl status answered in all $cycles cycles ($ctl_fail failures)" test "$ctl_fail" -eq 0
  check "soak: no nicroute rule or route left after each unplug ($left_fail cycles with leftovers)" test "$left_fail" -eq 0
  check "soak: NIC C keeps its table $first_table across re-plugs ($table_changes changes)" test "$table_changes" -eq 0
  check "soak: no descriptor growth across cycles ($fd1 after warm-up, at most $fdmax later)" test "$fdmax" -le "$fd1"
  # Allocator noise is not growth: the bound is 2 MB plus 8 kB per cycle, far below a leak of
  # one NIC's worth of state per cycle multiplied by the cycles.
  check "soak: no memory growth across cycles (VmRSS $(kb_mb "$rss1") MB after warm-up, at most $(kb_mb "$rssmax") MB later)" \
    test "$rssmax" -le $((rss1 + 2048 + 8 * cycles))
  check "soak: traffic through floating IP B after the cycles" probe_tcp "$FIP_B" "$TCP_PORT" 3
  for a in "$ADDR_A" "$ADDR_B" "$ADDR6_A" "$ADDR6_B"; do
    check "soak: exactly one nicroute rule from $a after the cycles" test "$(nicroute_rule_count "$NS_VM" "$a")" -eq 1
  done
  check "soak: nicrouted still running" rd_alive
  [[ $NR_FAIL -gt 0 ]] && show_log "$tag" 15
  nr_stop_pid "$DPID" 5
  check "soak: SIGTERM: exit status 0 (got $NR_STOP_RC)" test "$NR_STOP_RC" = 0
  for pid in "${servers[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  local ns
  for ns in "$NS_VM" "$NS_CLIENT" "$NS_CT" "$NS_RTR_A" "$NS_RTR_B" "$NS_RTR_C"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

# =====================================================================================
# c. chaos: SIGKILL in the middle of a reconcile; another tool deleting rules in a loop
# =====================================================================================

# table_map NS: "nic table" for each NIC with a nicroute rule, sorted.
table_map() {
  local rules
  rules=$(rule_lines "$1")
  addr_lines "$1" | while read -r nic addr; do
    awk -v a="$addr" -v n="$nic" '$1 == a { print n, $2; exit }' <<<"$rules"
  done | sort -u
}

# killer_start NS N: SIGKILL the PID written to $NR_TMP/chaos/killer.pid as soon as the
# kernel has announced N rule or route changes in NS; returns once the killer listens. The
# killer is a netlink socket in python3 that signals from the same process (no `ip monitor`
# pipe, no shell per kill): a batch of changes takes the daemon a few milliseconds, and a slower
# killer struck after the pass had ended. killer_done says whether it struck.
killer_start() {
  local ns=$1 n=$2 dir=$NR_TMP/chaos
  rm -f "$dir/killer.pid" "$dir/killer.ready" "$dir/killer.done"
  ip netns exec "$ns" python3 - "$n" "$dir" <<'PY' &
import os, signal, socket, struct, sys, time
n, d = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
# RTNLGRP_IPV4_ROUTE (7), RTNLGRP_IPV4_RULE (8), RTNLGRP_IPV6_ROUTE (11), RTNLGRP_IPV6_RULE (19)
s.bind((0, (1 << 6) | (1 << 7) | (1 << 10) | (1 << 18)))
open(d + "/killer.ready", "w").close()
seen, deadline = 0, time.monotonic() + 20
s.settimeout(1)
while seen < n and time.monotonic() < deadline:
    try:
        buf = s.recv(1 << 20)
    except socket.timeout:
        continue
    off = 0
    while off + 16 <= len(buf):
        length, kind = struct.unpack_from("=IH", buf, off)
        if kind in (24, 25, 32, 33):  # RTM_NEWROUTE, RTM_DELROUTE, RTM_NEWRULE, RTM_DELRULE
            seen += 1
        off += max((length + 3) & ~3, 16)
if seen >= n:
    while time.monotonic() < deadline:
        try:
            pid = int(open(d + "/killer.pid").read())
            break
        except (OSError, ValueError):
            time.sleep(0.0005)
    else:
        sys.exit(1)
    os.kill(pid, signal.SIGKILL)
    open(d + "/killer.done", "w").close()
PY
  KILLER_PY=$!
  NR_PIDS+=("$KILLER_PY")
  wait_until 5 test -e "$dir/killer.ready" || echo "# the killer did not start listening"
}

# killer_done: true once the killer has struck.
killer_done() { [[ -e $NR_TMP/chaos/killer.done ]]; }

# killer_stop: end the killer.
killer_stop() {
  kill "$KILLER_PY" 2>/dev/null || true
  wait "$KILLER_PY" 2>/dev/null || true
}

# owned_count NS: nicroute rules plus routes.
owned_count() { echo $(($(rule_count "$1") + $(route_count "$1"))); }

# disturb NS ROUND: while no daemon runs, change what it will find: delete the rules and
# routes of a random half of the NICs, remove one address and add another.
disturb() {
  local ns=$1 r=$2 i t x y
  {
    for ((i = 0; i < ${#NICS[@]}; i++)); do
      ((RANDOM % 2)) || continue
      t=$(awk -v n="${NICS[$i]}" '$1 == n { print $2 }' "$NR_TMP/chaos/tables.clean")
      [[ -n $t ]] || continue
      rule_lines "$ns" | awk -v t="$t" '$2 == t { print "rule del from " $1 " lookup " $2 " priority " $3 }'
      echo "route flush table $t"
    done
  } >"$NR_TMP/chaos/disturb.batch"
  ip -n "$ns" -4 -force -batch "$NR_TMP/chaos/disturb.batch" >/dev/null 2>&1 || true
  x=$((r % ${#NICS[@]})) y=$(((r + 7) % ${#NICS[@]}))
  ip -n "$ns" addr del "${NETS[$x]%.*}.$((17 - r % 4))/24" dev "${NICS[$x]}" 2>/dev/null || true
  ip -n "$ns" addr add "${NETS[$y]%.*}.$((30 + r))/24" dev "${NICS[$y]}" 2>/dev/null || true
}

# fight_run NS rule|route TABLE SECONDS: another tool deletes nicroute's rules pointing at
# TABLE (or flushes TABLE) whenever they are there, for SECONDS (bounded in rounds too), while
# `ip -ts monitor` records what nicrouted puts back. Sets FIGHT_DELETES (deletions made),
# FIGHT_READDS (objects put back), FIGHT_MAX / FIGHT_KEY (most re-adds of one object, which),
# FIGHT_GAP (seconds between that object's last two re-adds), FIGHT_CPU_MS (daemon CPU).
fight_run() {
  local ns=$1 kind=$2 t=$3 secs=$4 mon end i ticks0 ticks1 mon_pid batch re
  mon=$NR_TMP/chaos/monitor-$kind-fight.log batch=$NR_TMP/chaos/fight.batch
  nr_bg - "$mon" ip -n "$ns" -ts monitor "$kind"
  mon_pid=$NR_LAST_PID
  for ((i = 0; i < 25; i++)); do
    ip -n "$ns" -4 route add 192.0.2.98/32 dev lo table 98
    ip -n "$ns" -4 rule add fwmark 0x98 lookup 98 priority 498
    ip -n "$ns" -4 rule del fwmark 0x98 lookup 98 priority 498
    ip -n "$ns" -4 route del 192.0.2.98/32 dev lo table 98
    wait_until 0.2 grep -qE 'fwmark 0x98|192\.0\.2\.98' "$mon" && break
  done
  FIGHT_DELETES=0
  ticks0=$(cpu_ticks "$DPID")
  end=$(($(nr_now_us) + secs * 1000000))
  for ((i = 0; i < secs * 200; i++)); do
    (($(nr_now_us) < end)) || break
    if [[ $kind == rule ]]; then
      rule_lines "$ns" | awk -v t="$t" '$2 == t { print "rule del from " $1 " lookup " $2 " priority " $3 }' >"$batch"
    else
      ip -n "$ns" -4 route show table "$t" | sed 's/^/route del /; s/$/ table '"$t"'/' >"$batch"
    fi
    if [[ -s $batch ]]; then
      FIGHT_DELETES=$((FIGHT_DELETES + $(grep -c . "$batch")))
      ip -n "$ns" -4 -force -batch "$batch" >/dev/null 2>&1 || true
    else
      sleep 0.01
    fi
  done
  ticks1=$(cpu_ticks "$DPID")
  FIGHT_CPU_MS=$(((ticks1 - ticks0) * 1000 / $(getconf CLK_TCK)))
  sleep 0.2
  kill "$mon_pid" 2>/dev/null || true
  wait "$mon_pid" 2>/dev/null || true
  # What nicrouted put back: additions (not "Deleted") of a rule to TABLE / a route in TABLE,
  # as "key timestamp".
  if [[ $kind == rule ]]; then
    re="^\[([^]]+)\] [0-9]+:[[:space:]]+from ([^ ]+) lookup $t( |\$)"
  else
    re="^\[([^]]+)\] ([^ ]+) .*table $t( |\$)"
  fi
  grep -v '^\[[^]]*\] Deleted ' "$mon" | grep -E "$re" | sed -E "s/$re.*/\1 \2/" |
    while read -r ts key; do echo "$key $(date -d "$ts" +%s.%N)"; done >"$mon.readds"
  FIGHT_READDS=$(grep -c . "$mon.readds" || true)
  read -r FIGHT_MAX FIGHT_KEY FIGHT_GAP < <(awk '
    { n[$1]++; if (n[$1] > 1) gap[$1] = $2 - last[$1]; last[$1] = $2 }
    END { m = 0; w = "-"; for (a in n) if (n[a] > m) { m = n[a]; w = a }
          printf "%d %s %.2f\n", m, w, (m > 1 ? gap[w] : 0) }' "$mon.readds")
}

# fight_checks LABEL WHAT: the verdicts on the last fight_run.
fight_checks() {
  local label=$1 what=$2 secs=$ROBUST_FIGHT_SECONDS bound
  echo "# $label: ${secs}s, the other tool deleted $FIGHT_DELETES $what; nicrouted put back $FIGHT_READDS ($FIGHT_MAX at most for one object, $FIGHT_KEY; last gap ${FIGHT_GAP}s); daemon CPU $FIGHT_CPU_MS ms"
  # The guard lets 5 re-adds through per 30 s, then backs off 1 s, 2 s, 4 s ... (so 7 in 4 s).
  bound=$((6 + 2 * secs / 3))
  ((bound > 15)) && bound=15
  check "$label: no tight loop: at most $bound re-adds of one object in ${secs}s (got $FIGHT_MAX)" \
    test "$FIGHT_MAX" -le "$bound"
  check "$label: the other tool did delete and nicrouted did put back ($FIGHT_DELETES deletions, $FIGHT_READDS re-adds)" \
    test "$FIGHT_DELETES" -gt 0 -a "$FIGHT_READDS" -gt 0
  check "$label: the daemon backs off (the last gap between re-adds of $FIGHT_KEY is ${FIGHT_GAP}s, at least 0.9 s)" \
    awk -v g="$FIGHT_GAP" 'BEGIN { exit !(g >= 0.9) }'
  check "$label: reported in the log (a new 'backing off' warning)" wait_until 2 backoff_logged_after "${FIGHT_LOGGED:-0}"
  FIGHT_LOGGED=$(backoff_logged)
}

# backoff_logged: how many back-off warnings the chaos daemon has logged.
backoff_logged() { grep -c 'backing off' "$NR_TMP/chaos/nicrouted.log" || true; }

# backoff_logged_after N: true when there are more than N.
backoff_logged_after() { (($(backoff_logged) > $1)); }

part_chaos() {
  local ns=$NR_PREFIX-cv-$NR_ID peer=$NR_PREFIX-cp-$NR_ID tag=chaos i k total target got at mode
  local dup_rules=0 partial=0 restarted_dead=0 missing
  step "c. chaos: 16 NICs x 8 addresses, SIGKILL in the middle of reconciles, a rule-deleting tool"
  mkdir -p "$NR_TMP/$tag"
  multinic_create "$ns" "$peer" 16 10.60 cc "$NR_TMP/$tag/nicroute.conf"
  {
    for ((i = 0; i < 16; i++)); do
      for k in 3 4 5 6 7 8 9; do echo "addr add 10.60.$i.$((10 + k))/24 dev eth$i"; done
    done
  } >"$NR_TMP/$tag/addrs.batch"
  ip -n "$ns" -force -batch "$NR_TMP/$tag/addrs.batch" >/dev/null 2>&1
  echo "# chaos: $(addr_lines "$ns" | grep -c .) addresses on 16 NICs"

  # A clean run first: the reference (tables per NIC, kept in the state directory).
  rd_start "$ns" "$tag"
  if ! wait_until 30 converged "$ns" "$tag"; then
    nr_fail "chaos: a clean start installs the exact state (within 30 s)"
    state_problems "$ns" | head -n 10 | sed 's/^/#   /'
    show_log "$tag"
    return 0
  fi
  total=$(owned_count "$ns")
  table_map "$ns" >"$NR_TMP/$tag/tables.clean"
  nr_pass "chaos: a clean start installs the exact state ($(rule_count "$ns") rules, $(route_count "$ns") routes)"
  nr_stop_pid "$DPID" 5
  rd_ctl "$ns" "$tag" flush >/dev/null 2>&1 || true
  check "chaos: nicroutectl flush (one-shot) leaves nothing" test "$(owned_count "$ns")" -eq 0

  for ((k = 1; k <= ROBUST_CHAOS_KILLS; k++)); do
    ((k > 1)) && disturb "$ns" "$k"
    missing=$((total - $(owned_count "$ns")))
    if ((k % 2 && missing > 1)); then
      # Kill right after the daemon's N-th change (N random among the first half of the
      # changes to make), as the kernel announces it: a point in the middle of the reconcile.
      # (Later points are often past by the time the signal lands: the daemon sends 32 changes
      # a datagram.)
      mode="after change"
      target=$((1 + RANDOM % (missing / 2)))
      killer_start "$ns" "$target"
      rd_start "$ns" "$tag"
      echo "$DPID" >"$NR_TMP/$tag/killer.pid"
      # (stderr: bash's "Killed" notice for the daemon the killer struck)
      wait_until 10 killer_done 2>/dev/null || true
      killer_stop 2>/dev/null
    else
      # Kill after a random delay, within about the time a start takes.
      mode="after ms"
      target=$((10 + RANDOM % 140))
      rd_start "$ns" "$tag"
      sleep "$(awk -v m="$target" 'BEGIN { printf "%.3f", m / 1000 }')"
    fi
    if rd_alive; then
      rd_kill9
    elif [[ $mode == "after change" && -e $NR_TMP/$tag/killer.done ]]; then
      wait "$DPID" 2>/dev/null || true # the killer's SIGKILL
    else
      restarted_dead=$((restarted_dead + 1))
    fi
    at=$(owned_count "$ns")
    ((at > 0 && at < total)) && partial=$((partial + 1))
    n=$(rule_lines "$ns" | awk '{ print $1 }' | uniq -d | grep -c . || true)
    dup_rules=$((dup_rules + n))
    echo "#   kill $k ($mode $target): SIGKILL with $(rule_count "$ns") rules and $(route_count "$ns") routes installed ($(state_problems "$ns" | grep -c . || true) differences from the exact state)"
  done
  check "chaos: every SIGKILLed daemon was still running when killed ($restarted_dead had exited)" test "$restarted_dead" -eq 0
  check "chaos: no duplicate rule at any SIGKILL ($dup_rules seen)" test "$dup_rules" -eq 0
  echo "# chaos: $partial of $ROBUST_CHAOS_KILLS kills left a partial state"
  check "chaos: some kills hit the middle of a reconcile ($partial of $ROBUST_CHAOS_KILLS left a partial state)" \
    test "$partial" -ge 1

  rd_start "$ns" "$tag"
  if wait_until 30 converged "$ns" "$tag"; then
    nr_pass "chaos: after the kills, a restart repairs the state (exact, and nothing left to plan)"
  else
    nr_fail "chaos: after the kills, a restart repairs the state within 30 s"
    state_problems "$ns" | head -n 10 | sed 's/^/#   /'
  fi
  check_state "$ns" "chaos: exactly one rule per address, no duplicate rules or routes ($(rule_count "$ns") rules, $(route_count "$ns") routes)"
  check_same "chaos: every NIC keeps its table across the kills" "$NR_TMP/$tag/tables.clean" table_map "$ns"
  check "chaos: nicrouted running after the restart (stale control socket taken over)" rd_alive
  check "chaos: nicroutectl status answers" rd_ctl_quiet "$ns" "$tag" status --json
  check_oracle_sample "$ns" 2

  # Another tool deletes the rules of one NIC in a loop, then flushes another NIC's table.
  local vt other_before other_after
  vt=$(awk '$1 == "eth5" { print $2 }' "$NR_TMP/$tag/tables.clean")
  other_before=$(rule_lines "$ns" | awk -v t="$vt" '$2 != t' | md5sum)
  fight_run "$ns" rule "$vt" "$ROBUST_FIGHT_SECONDS"
  fight_checks "rule fight" "rules of eth5 (table $vt)"
  other_after=$(rule_lines "$ns" | awk -v t="$vt" '$2 != t' | md5sum)
  check "rule fight: the other NICs' rules are untouched" test "$other_before" = "$other_after"
  if wait_until 70 converged "$ns" "$tag"; then
    nr_pass "rule fight: once the other tool stops, the rules of eth5 are back (exact state)"
  else
    nr_fail "rule fight: once the other tool stops, the rules of eth5 are back within the back-off"
    state_problems "$ns" | head -n 10 | sed 's/^/#   /'
  fi
  vt=$(awk '$1 == "eth6" { print $2 }' "$NR_TMP/$tag/tables.clean")
  fight_run "$ns" route "$vt" "$ROBUST_FIGHT_SECONDS"
  fight_checks "route fight" "routes of eth6 (table $vt)"
  if wait_until 70 converged "$ns" "$tag"; then
    nr_pass "route fight: once the other tool stops, table $vt is complete again (exact state)"
  else
    nr_fail "route fight: once the other tool stops, table $vt is complete again within the back-off"
    state_problems "$ns" | head -n 10 | sed 's/^/#   /'
  fi
  check "chaos: nicrouted still running after the fights" rd_alive
  [[ $NR_FAIL -gt 0 ]] && show_log "$tag" 15
  nr_stop_pid "$DPID" 5
  check "chaos: SIGTERM: exit status 0 (got $NR_STOP_RC)" test "$NR_STOP_RC" = 0
  ip netns del "$ns" 2>/dev/null || true
  ip netns del "$peer" 2>/dev/null || true
}

# =====================================================================================
# d. the control socket under an unprivileged flood
# =====================================================================================

# control_client_py: writes $NR_TMP/control/ctl.py, a control client in python:
#   ctl.py flood SOCK SECONDS IDLE SENDERS  hold IDLE connections open (re-opening each one the
#                                           daemon closes) and send `status` from SENDERS
#                                           threads as fast as answers come; prints the counts
#   ctl.py timed SOCK N                     N `status` requests one after another; prints each
#                                           one's time from connect to the whole answer
control_client_py() {
  cat >"$NR_TMP/control/ctl.py" <<'PY'
import socket, sys, threading, time

def status(path, timeout):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(b'{"version": 1, "command": "status"}\n')
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data
    finally:
        s.close()

def flood(path, seconds, idle, senders):
    deadline = time.monotonic() + seconds
    counts = {"opened": 0, "answers": 0, "busy": 0, "errors": 0}
    lock = threading.Lock()
    def bump(key):
        with lock:
            counts[key] += 1
    def holder():
        while time.monotonic() < deadline:
            s = socket.socket(socket.AF_UNIX)
            try:
                s.settimeout(max(0.05, deadline - time.monotonic()))
                s.connect(path)
                bump("opened")
                s.recv(4096)  # until the daemon answers (busy, timeout) or closes it
            except OSError:
                bump("errors")
                time.sleep(0.01)
            finally:
                s.close()
    def sender():
        while time.monotonic() < deadline:
            try:
                bump("busy" if b'"busy"' in status(path, 5) else "answers")
            except OSError:
                bump("errors")
                time.sleep(0.01)
    threads = [threading.Thread(target=holder, daemon=True) for _ in range(idle)]
    threads += [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0, deadline - time.monotonic()) + 6)
    print(" ".join(f"{k}={v}" for k, v in counts.items()), flush=True)

def timed(path, n):
    out = []
    for _ in range(n):
        t0 = time.monotonic()
        status(path, 5)
        out.append("%.1f" % ((time.monotonic() - t0) * 1000))
    print(" ".join(out) + " ms")

if sys.argv[1] == "flood":
    flood(sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
else:
    timed(sys.argv[2], int(sys.argv[3]))
PY
}

# control_flood SOCK SECONDS IDLE SENDERS: as uid 65534, hold IDLE connections to SOCK open
# (re-opening each one that the daemon closes) and send `status` requests from SENDERS threads
# as fast as answers come, for SECONDS; prints what it did. Its PID in NR_LAST_PID.
control_flood() {
  control_client_py
  nr_bg "$3" "$NR_TMP/control/flood.log" setpriv --reuid=65534 --regid=65534 --clear-groups \
    /usr/bin/python3 "$NR_TMP/control/ctl.py" flood "$1" "$2" "$4" "$5"
  # CPU: under systemd a user's processes share one cgroup (user.slice) against the service's
  # (system.slice); here, with no cgroup of its own, each of the flood's 108 threads would weigh
  # as much as the daemon's one and starve it (and root's nicroutectl) whatever the socket does.
  # So the flood gets a cpu cgroup of its own, as a login session would (v1 or v2, default
  # weight: the whole flood weighs as much as one process of the root group).
  FLOOD_CGROUP=""
  local cg
  for cg in /sys/fs/cgroup/cpu /sys/fs/cgroup/unified /sys/fs/cgroup; do
    [[ -w $cg/cgroup.procs ]] || continue
    mkdir "$cg/nrr-flood-$$" 2>/dev/null && NR_RMDIRS+=("$cg/nrr-flood-$$")
    if [[ -d $cg/nrr-flood-$$ ]] && echo "$NR_LAST_PID" >"$cg/nrr-flood-$$/cgroup.procs" 2>/dev/null; then
      FLOOD_CGROUP=$cg/nrr-flood-$$
      break
    fi
    rmdir "$cg/nrr-flood-$$" 2>/dev/null || true
  done
  echo "# control: the flood's cpu cgroup: ${FLOOD_CGROUP:-none (it competes thread by thread)}"
}

# control_flood_end: removes the flood's cgroup (once its processes are gone).
control_flood_end() {
  [[ -n ${FLOOD_CGROUP:-} ]] || return 0
  for _ in $(seq 50); do rmdir "$FLOOD_CGROUP" 2>/dev/null && break; sleep 0.1; done
  FLOOD_CGROUP=""
}

# timed_ms CMD...: runs CMD with its output to $NR_TMP/control/out; prints the milliseconds it
# took; its exit status is CMD's.
timed_ms() {
  local t0 rc=0
  t0=$(nr_now_us)
  "$@" >"$NR_TMP/control/out" 2>&1 || rc=$?
  echo $((($(nr_now_us) - t0) / 1000))
  return "$rc"
}

part_control() {
  local tag=control ns="nrr-ctl-$$" peer="nrr-ctlp-$$" i ms worst=0 slow=0 failed=0 incomplete=0 flood_pid
  step "d. control socket: root served within 1 s while uid 65534 holds and floods it"
  mkdir -p "$NR_TMP/$tag"
  multinic_create "$ns" "$peer" 2 10.77 77 "$NR_TMP/$tag/nicroute.conf"
  # The socket is 0666; its directory must let the other user reach it.
  chmod 0755 "$NR_TMP" "$NR_TMP/$tag"
  rd_start "$ns" "$tag"
  if ! wait_until 15 has_nicroute_rule "$ns" 10.77.1.2; then
    nr_fail "control: nicrouted installs its rules (within 15 s)"
    show_log "$tag"
    return 0
  fi
  local idle_ms=() flood_ms=()
  for i in 1 2 3; do idle_ms+=("$(timed_ms rd_ctl_within 5 "$ns" "$tag" status --json || true)"); done
  control_flood "$NR_TMP/$tag/control.sock" 12 "$ns" 100 8
  flood_pid=$NR_LAST_PID
  sleep 2 # the holders have taken every slot they can
  for i in $(seq 10); do
    if ms=$(timed_ms rd_ctl_within 5 "$ns" "$tag" status --json); then
      jq -e '.nics | length == 2' "$NR_TMP/$tag/out" >/dev/null 2>&1 || incomplete=$((incomplete + 1))
    else
      failed=$((failed + 1))
      sed 's/^/#   /' "$NR_TMP/$tag/out" | head -n 3
    fi
    flood_ms+=("$ms")
    ((ms <= worst)) || worst=$ms
    ((ms <= 1000)) || slow=$((slow + 1))
  done
  echo "# control: root's status --json took ${idle_ms[*]} ms before the flood, ${flood_ms[*]} ms under it"
  # The daemon's part alone (no process started): root's request on an open connection.
  # The daemon's own part (no process started, no namespace entered): root's requests on its
  # socket, from connect to the whole answer.
  local answers slowest
  answers=$(ip netns exec "$ns" /usr/bin/python3 "$NR_TMP/$tag/ctl.py" timed "$NR_TMP/$tag/control.privileged.sock" 10 2>&1 || true)
  for i in 1 2 3; do
    if ms=$(timed_ms rd_ctl_within 5 "$ns" "$tag" -q reconfigure); then :; else
      failed=$((failed + 1))
      sed 's/^/#   /' "$NR_TMP/$tag/out" | head -n 3
    fi
    ((ms <= worst)) || worst=$ms
    ((ms <= 1000)) || slow=$((slow + 1))
  done
  # The daemon answers each of root's requests within 1 s. nicroutectl's own time adds a process
  # start and `ip netns exec`, which the machine's load sets, not the daemon: those requests
  # must all succeed, complete, and their times are shown (within 1 s when the machine is
  # otherwise idle, as in CI).
  slowest=$(tr ' ' '\n' <<<"${answers% ms}" | sort -n | tail -n 1)
  if [[ $answers =~ ^([0-9.]+\ )+ms$ ]] && awk -v s="$slowest" 'BEGIN { exit !(s < 1000) }'; then
    nr_pass "control: under the flood, the daemon answered root's 10 status requests within 1 s each ($answers)"
  else
    nr_fail "control: under the flood, the daemon answers root's status requests within 1 s each (got: $answers)"
  fi
  if ((failed == 0 && incomplete == 0)); then
    nr_pass "control: under the flood, root's 10 nicroutectl status --json and 3 reconfigure all succeeded, each status complete (slowest $worst ms with the process start; $slow over 1 s)"
  else
    nr_fail "control: under the flood, root's nicroutectl: $failed failed, $incomplete incomplete (slowest $worst ms)"
  fi
  # The flooding user's own nicroutectl, while its holders keep their slots taken: the daemon's
  # answer, `busy`, not a broken pipe (a slot its holders just gave back may serve it: tried
  # up to 10 times).
  local busy=0 pipe=0
  : >"$NR_TMP/$tag/nobody.out"
  for i in $(seq 10); do
    ip netns exec "$ns" setpriv --reuid=65534 --regid=65534 --clear-groups "$NICROUTECTL" status \
      --control-socket "$NR_TMP/$tag/control.sock" >"$NR_TMP/$tag/out" 2>&1 || true
    cat "$NR_TMP/$tag/out" >>"$NR_TMP/$tag/nobody.out"
    grep -qi 'broken pipe' "$NR_TMP/$tag/out" && pipe=$((pipe + 1))
    if grep -q 'too many control connections' "$NR_TMP/$tag/out"; then
      busy=$((busy + 1))
      break
    fi
  done
  if ((busy > 0 && pipe == 0)); then
    nr_pass "control: uid 65534's own nicroutectl is told the daemon's answer: $(grep -m1 'too many' "$NR_TMP/$tag/nobody.out")"
  else
    nr_fail "control: uid 65534's own nicroutectl reports the daemon's busy answer ($busy busy, $pipe broken pipes in $i tries; last: $(head -n2 "$NR_TMP/$tag/out" | tr '\n' ' '))"
  fi
  for _ in $(seq 200); do nr_pid_gone "$flood_pid" && break; sleep 0.1; done
  control_flood_end
  echo "# control: flood as uid 65534: $(cat "$NR_TMP/$tag/flood.log" 2>/dev/null)"
  check "control: nicrouted still running after the flood" rd_alive
  check "control: status answers after the flood" rd_ctl_quiet "$ns" "$tag" status
  [[ $NR_FAIL -gt 0 ]] && show_log "$tag" 15
  nr_stop_pid "$DPID" 5
  ip netns del "$ns" 2>/dev/null || true
  ip netns del "$peer" 2>/dev/null || true
}

# =====================================================================================
# e. faults in the state directory
# =====================================================================================

# The state directory lives on a small tmpfs in a mount namespace held by a process of its own
# (SF_HOLDER), so that it outlives daemon restarts; the daemon runs in a copy of that
# namespace (ip netns exec makes one), sharing the tmpfs. sf_sh CMD runs CMD in the holder's.
sf_sh() { nsenter -t "$SF_HOLDER" -m sh -c "$1"; }

# sf_start NS TAG: nicrouted in NS with its state directory on the tmpfs; PID in DPID.
sf_start() {
  local ns=$1 tag=$2
  nsenter -t "$SF_HOLDER" -m ip netns exec "$ns" "$NICROUTED" --manage 'eth*' --state-dir "$SF_STATE" \
    --config "$NR_TMP/$tag/nicroute.conf" --control-socket "$NR_TMP/$tag/control.sock" \
    >>"$NR_TMP/$tag/nicrouted.log" 2>&1 &
  DPID=$!
  NR_PIDS+=("$DPID")
}

# sf_nic NS PEER I: plugs NIC ethI (MAC fa:16:3e:78:00:I, 10.78.I.2/24).
sf_nic() {
  local ns=$1 peer=$2 i=$3
  ip -n "$ns" link add "eth$i" address "$(printf 'fa:16:3e:78:00:%02x' "$i")" type veth peer name "p$i" netns "$peer"
  ip -n "$peer" addr add "10.78.$i.1/24" dev "p$i"
  ip -n "$peer" link set "p$i" up
  ip -n "$ns" addr add "10.78.$i.2/24" dev "eth$i"
  ip -n "$ns" link set "eth$i" up
}

# sf_slot_saved I: the slot file on the tmpfs names NIC I's MAC.
sf_slot_saved() { sf_sh "grep -q '^$(printf 'fa:16:3e:78:00:%02x' "$1") ' '$SF_STATE/slots'" 2>/dev/null; }

# sf_count TAG TEXT: lines of TAG's daemon log that contain TEXT.
sf_count() { grep -cF -- "$2" "$NR_TMP/$1/nicrouted.log" || true; }

# sf_fault TAG NS PEER I NAME BREAK MENDS REASON: with the state broken by BREAK, NIC I is
# plugged: its rule must come, the daemon live on, one warning naming REASON; after MENDS, its
# slot must reach the file.
sf_fault() {
  local tag=$1 ns=$2 peer=$3 i=$4 name=$5 break=$6 mend=$7 reason=$8 before after
  before=$(sf_count "$tag" "$reason")
  sf_sh "$break"
  sf_nic "$ns" "$peer" "$i"
  if wait_until 5 has_nicroute_rule "$ns" "10.78.$i.2" && rd_alive; then
    nr_pass "state $name: NIC eth$i plugged meanwhile gets its rule, the daemon runs on"
  else
    nr_fail "state $name: NIC eth$i plugged meanwhile gets its rule, the daemon runs on"
  fi
  sleep 2.5 # a retry or two of the back-off
  after=$(sf_count "$tag" "$reason")
  if ((after - before == 1)) && ! sf_slot_saved "$i"; then
    nr_pass "state $name: one warning ($(grep -F -- "$reason" "$NR_TMP/$tag/nicrouted.log" | tail -n 1 | sed -E 's/^[^ ]+ //' | cut -c1-140))"
  else
    nr_fail "state $name: one warning naming '$reason' (got $((after - before))), the slot not on disk yet"
  fi
  sf_sh "$mend"
  if wait_until 10 sf_slot_saved "$i"; then
    nr_pass "state $name: once mended, NIC eth$i's slot is saved (a retry, no event needed)"
  else
    nr_fail "state $name: once mended, NIC eth$i's slot is saved within 10 s"
    sf_sh "ls -la '$SF_STATE'; cat '$SF_STATE/slots'" 2>&1 | sed 's/^/#   /'
  fi
}

part_state() {
  local tag=state ns="nrr-sf-$$" peer="nrr-sfp-$$" i k t0 marks bad=0 tables
  step "e. the state directory full, read-only, damaged; SIGKILL right after slot changes"
  mkdir -p "$NR_TMP/$tag"
  SF_STATE=$NR_TMP/$tag/state
  mkdir -p "$SF_STATE"
  multinic_create "$ns" "$peer" 2 10.78 78 "$NR_TMP/$tag/nicroute.conf"
  # Forwarding on: the daemon also keeps its forwarding records (nftables table, the
  # src_valid_mark it set) in the state directory.
  nr_sysctl "$ns" net.ipv4.ip_forward=1
  unshare --mount --propagation private sleep 900 &
  SF_HOLDER=$!
  NR_PIDS+=("$SF_HOLDER")
  for _ in $(seq 50); do [[ $(readlink "/proc/$SF_HOLDER/ns/mnt") != "$(readlink /proc/self/ns/mnt)" ]] && break; sleep 0.05; done
  sf_sh "mount -t tmpfs -o size=64k,mode=0755 nrr-state '$SF_STATE'"
  sf_start "$ns" "$tag"
  if ! wait_until 15 has_nicroute_rule "$ns" 10.78.1.2 || ! wait_until 5 sf_slot_saved 1; then
    nr_fail "state: nicrouted installs its rules and saves its slots on the tmpfs (within 15 s)"
    show_log "$tag"
    return 0
  fi
  nr_pass "state: rules in, slots saved on the tmpfs"

  sf_fault "$tag" "$ns" "$peer" 2 "full" \
    "dd if=/dev/zero of='$SF_STATE/filler' bs=4k 2>/dev/null; true" "rm -f '$SF_STATE/filler'" \
    "No space left on device"
  sf_fault "$tag" "$ns" "$peer" 3 "read-only" \
    "mount -o remount,ro '$SF_STATE'" "mount -o remount,rw '$SF_STATE'" "Read-only file system"
  sf_fault "$tag" "$ns" "$peer" 4 "slot file replaced by a directory" \
    "rm -f '$SF_STATE/slots' && mkdir '$SF_STATE/slots'" "rmdir '$SF_STATE/slots'" "Is a directory"
  # What a later flush needs was kept through the faults: the forwarding records name every NIC.
  marks=$(sf_sh "cat '$SF_STATE/src_valid_mark'" 2>/dev/null | sort | tr '\n' ' ' || true)
  if [[ $marks == "eth0 eth1 eth2 eth3 eth4 " ]] && sf_sh "test -s '$SF_STATE/nftables'"; then
    nr_pass "state: the forwarding records are on disk after the faults (src_valid_mark set on: $marks)"
  else
    nr_fail "state: the forwarding records name every NIC after the faults (src_valid_mark record: '$marks')"
  fi

  # Garbage in the slot file at a start: one warning, the lines it can read kept, the file
  # written anew.
  tables=$(rd_ctl "$ns" "$tag" status --json | jq -r '[.nics[] | "\(.mac)=\(.table)"] | sort | join(" ")' || true)
  nr_stop_pid "$DPID" 5
  sf_sh "printf '\\177ELF\\002\\001garbage\\n' >>'$SF_STATE/slots'"
  sf_start "$ns" "$tag"
  if wait_until 10 rd_ctl_quiet "$ns" "$tag" status && wait_until 5 sf_sh "! grep -q ELF '$SF_STATE/slots'" &&
    [[ $(sf_count "$tag" "line(s) are not NIC slots") == 1 ]] &&
    [[ $(rd_ctl "$ns" "$tag" status --json | jq -r '[.nics[] | "\(.mac)=\(.table)"] | sort | join(" ")') == "$tables" ]]; then
    nr_pass "state: garbage in the slot file at a start: one warning, every NIC keeps its table, the file written anew"
  else
    nr_fail "state: garbage in the slot file at a start: one warning ($(sf_count "$tag" "line(s) are not NIC slots")), same tables, file rewritten"
  fi

  # SIGKILL right after slot changes (a crash between write and rename): the file is always
  # whole, and every NIC keeps its table across the restarts.
  for k in $(seq 5 10); do
    sf_nic "$ns" "$peer" "$k"
    sleep "0.0$((RANDOM % 10))"
    kill -KILL "$DPID" 2>/dev/null || true
    wait "$DPID" 2>/dev/null || true
    if ! sf_sh "awk '!/^#/ && NF && !(NF == 2 && \$2 ~ /^[0-9]+\$/) { exit 1 }' '$SF_STATE/slots'"; then
      bad=$((bad + 1))
      echo "#   after kill $k the slot file is not whole:"
      sf_sh "cat '$SF_STATE/slots'" 2>&1 | sed 's/^/#     /'
    fi
    sf_sh "ls '$SF_STATE'" | grep -q 'slots.tmp' && echo "#   after kill $k: slots.tmp left (ignored, replaced at the next save)"
    sf_start "$ns" "$tag"
    wait_until 10 has_nicroute_rule "$ns" "10.78.$k.2" || bad=$((bad + 1))
  done
  tables=$(rd_ctl "$ns" "$tag" status --json | jq -r '[.nics[] | .table] | unique | length' || true)
  if ((bad == 0)) && [[ $tables == 11 ]] && wait_until 5 sf_slot_saved 10; then
    nr_pass "state: 6 SIGKILLs right after slot changes: the slot file always whole, 11 NICs with 11 tables, all saved"
  else
    nr_fail "state: SIGKILLs right after slot changes: $bad problem(s), $tables distinct tables for 11 NICs"
  fi

  # Nothing a flush needs was lost: it puts back every src_valid_mark the daemon set.
  nr_stop_pid "$DPID" 5
  nsenter -t "$SF_HOLDER" -m ip netns exec "$ns" "$NICROUTECTL" -q flush --state-dir "$SF_STATE" \
    --config "$NR_TMP/$tag/nicroute.conf" --control-socket "$NR_TMP/$tag/control.sock" --manage 'eth*' || true
  marks=$(for i in $(seq 0 10); do ip netns exec "$ns" cat "/proc/sys/net/ipv4/conf/eth$i/src_valid_mark"; done | sort -u | tr '\n' ' ' || true)
  if [[ $marks == "0 " ]]; then
    nr_pass "state: nicroutectl flush puts src_valid_mark back on all 11 NICs"
  else
    nr_fail "state: nicroutectl flush puts src_valid_mark back on all 11 NICs (values: $marks)"
  fi
  [[ $NR_FAIL -gt 0 ]] && show_log "$tag" 20
  kill "$SF_HOLDER" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  ip netns del "$peer" 2>/dev/null || true
}

for part in $ROBUST_PARTS; do
  case $part in
    state) part_state ;;
    storm) part_storm ;;
    soak) part_soak ;;
    chaos) part_chaos ;;
    control) part_control ;;
    *) nr_fail "unknown part '$part' in ROBUST_PARTS" ;;
  esac
done

echo "# robustness ($MODE) took $((($(nr_now_us) - T_START) / 1000000)) s"
nr_summary_line
[[ $NR_FAIL -eq 0 ]]
