#!/usr/bin/env bash
# Benchmark (not a test) of forwarded connections: the per-packet cost of nicroute's marks.
#
#   sudo bash Tests/Bench/forward-bench.sh [SECONDS]
#
# On forward.sh's topology (Tests/Scenario/forward-lib.sh: the two-NIC VM behind two routers
# with floating IPs, a container behind a bridge with Docker-shaped DNAT), from the client to
# the container's published ports:
#   - TCP throughput (iperf3, SECONDS each, default 5) and sequential TCP connections per second
#     (connect, one echo, close), IPv4;
#   - through floating IP A without nicrouted (no ruleset: the baseline), through A with
#     nicrouted (every packet passes nicroute's prerouting chain and carries a mark), and
#     through B with nicrouted (the only way B works);
#   - the size of nicroute's table as NICs grow (nft rules and the bytes of its listing), from
#     the definition nicrouted installs, loaded into a namespace of its own.
# Everything lives in namespaces named nrf-*-PID, removed on exit.
#
# Environment: NICROUTED as for forward.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SECONDS_EACH=${1:-5}
NR_PREFIX=nrf
# shellcheck source-path=SCRIPTDIR source=../Scenario/lib.sh
source "$REPO/Tests/Scenario/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../Scenario/forward-lib.sh
source "$REPO/Tests/Scenario/forward-lib.sh"

nr_require_root
nr_install_traps
nr_ensure_deps
nr_ensure_packages nft:nftables iperf3:iperf3

if [[ -z ${NICROUTED:-} ]]; then
  nr_find_swift || nr_die "no swift toolchain: set NICROUTED"
  (cd "$REPO" && swift build -c release --product nicrouted) >/dev/null 2>&1 || nr_die "swift build failed"
  NICROUTED="$REPO/.build/release/nicrouted"
fi

fwd_topo_create
# Loose rp_filter: the baseline through A must not depend on src_valid_mark.
for i in all default "$NIC_A" "$NIC_B" "$BR_DOCKER"; do nr_sysctl "$NS_VM" "net.ipv4.conf.$i.rp_filter=2"; done
nr_bg "$NS_CT" "$NR_TMP/iperf3.log" iperf3 -s -p "$BENCH_PORT"
sleep 0.5

# throughput FIP: iperf3 TCP, client -> FIP:5201 (DNAT to the container), Gbit/s.
throughput() {
  ip netns exec "$NS_CLIENT" timeout $((SECONDS_EACH + 10)) iperf3 -c "$1" -p "$BENCH_PORT" -B "$CLIENT_ADDR" \
    -t "$SECONDS_EACH" -J 2>/dev/null | jq -r '.end.sum_received.bits_per_second / 1e9 | . * 100 | round / 100'
}

# conn_rate FIP: sequential TCP connections per second to FIP:8081 (and how many failed).
conn_rate() {
  ip netns exec "$NS_CLIENT" timeout $((SECONDS_EACH + 10)) "$NR_PY" "$NR_TMP/fwd.py" rate "$CLIENT_ADDR" "$1" \
    "$PORT" "$SECONDS_EACH" | awk '{ printf "%.0f conn/s (%d failed)", $1, $2 }'
}

measure() {
  local label=$1 fip=$2 t r
  t=$(throughput "$fip" 2>/dev/null | head -n1 || true)
  [[ $t =~ ^[0-9.]+$ && $t != 0 ]] && t="$t Gbit/s" || t="failed"
  r=$(conn_rate "$fip" || echo "failed")
  printf '| %s | %s | %s |\n' "$label" "$t" "$r"
}

ROUNDS=${ROUNDS:-3}
NICROUTECTL=${NICROUTECTL:-$(dirname "$NICROUTED")/nicroutectl}
# nicroute_on: nicrouted installs everything, then stops (SIGTERM leaves it all in place, so
# the daemon's own CPU use is not measured). nicroute_off: `nicroutectl flush` in the VM.
nicroute_on() {
  nicrouted_start "$NR_TMP/nicrouted.log" --manage 'eth*' --state-dir "$NR_TMP/state" \
    --config "$NR_TMP/nicroute.conf" --control-socket "$NR_TMP/control.sock" --log-level info
  wait_until 10 ip netns exec "$NS_VM" nft list table inet nicroute >/dev/null 2>&1 || nr_die "no ruleset"
  wait_until 5 has_nicroute_rule "$NS_VM" "$ADDR_B" || nr_die "no rules"
  nr_stop_pid "$NICROUTED_PID" 5
}
nicroute_off() {
  ip netns exec "$NS_VM" "$NICROUTECTL" --state-dir "$NR_TMP/state" --config "$NR_TMP/nicroute.conf" \
    --control-socket "$NR_TMP/control.sock" --manage 'eth*' -q flush
}

echo "# forward-bench: $(nproc) CPU(s), kernel $(uname -r), ${SECONDS_EACH}s per figure, $ROUNDS rounds"
echo "# (without and with alternate, so that load from elsewhere on the machine hits both)"
echo
echo "| round | path | TCP throughput (iperf3) | TCP connections |"
echo "|---|---|---|---|"
for ((round = 1; round <= ROUNDS; round++)); do
  nicroute_off
  printf '| %d ' "$round"; measure "floating IP A, without nicroute (no ruleset)" "$FIP_A"
  nicroute_on
  printf '| %d ' "$round"; measure "floating IP A, with nicroute's marks" "$FIP_A"
  printf '| %d ' "$round"; measure "floating IP B, with nicroute's marks" "$FIP_B"
done
nicroute_off
printf '| - '; measure "floating IP B, without nicroute" "$FIP_B"

# The ruleset as NICs grow: the definition nicrouted installs for N NICs (mask 0xffff: up to
# 65535 NICs), loaded into an empty namespace.
echo
echo "| NICs | rules in table inet nicroute | listing (bytes) |"
echo "|---|---|---|"
NS_SIZE="$NR_PREFIX-size-$NR_ID"
nr_ns_new "$NS_SIZE"
for n in 1 2 4 8 16 64; do
  {
    printf 'add table inet nicroute\ndelete table inet nicroute\ntable inet nicroute {\n chain prerouting {\n'
    printf '  type filter hook prerouting priority -150; policy accept;\n'
    for ((i = 0; i < n; i++)); do
      printf '  ct state new iifname "eth%d" ct mark set ct mark & 0xffff0000 | 0x%x\n' "$i" $((i + 1))
    done
    for ((i = 0; i < n; i++)); do
      printf '  ct mark & 0xffff == 0x%x meta mark set meta mark & 0xffff0000 | 0x%x\n' $((i + 1)) $((i + 1))
    done
    printf ' }\n}\n'
  } >"$NR_TMP/size.nft"
  ip netns exec "$NS_SIZE" nft -f "$NR_TMP/size.nft"
  listing=$(ip netns exec "$NS_SIZE" nft list table inet nicroute)
  printf '| %d | %d | %d |\n' "$n" "$(grep -c 'mark set' <<<"$listing")" "${#listing}"
done
