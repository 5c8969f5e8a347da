#!/usr/bin/env bash
# nicroute in two minutes: a two-NIC OpenStack VM whose second floating IP is dead, then
# alive once nicrouted runs. Everything happens in network namespaces that this script
# creates and deletes; the machine's own network is not touched.
#
#   sudo bash scripts/demo.sh
#
# Needs Debian 12 (or similar) with a Swift toolchain; installs iproute2, iptables, python3,
# jq, procps, iputils-ping, libsystemd-dev and pkg-config when they are missing.
# NICROUTED=/path/to/nicrouted skips the build. Exits 0 when floating IP B works at the end.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NR_PREFIX=nrdemo
# shellcheck source-path=SCRIPTDIR source=../Tests/Scenario/lib.sh
source "$REPO/Tests/Scenario/lib.sh"

AFTER_FAILED=0

# heading TEXT: a section heading.
heading() { printf '\n==> %s\n' "$*"; }

# say TEXT...: a line of narration (an empty line without TEXT).
say() {
  if [[ $# -eq 0 || -z $* ]]; then echo; else printf '    %s\n' "$*"; fi
}

# vm_ip ARGS...: show and run `ip ARGS` inside the VM, output indented.
vm_ip() {
  printf '    vm# ip %s\n' "$*"
  ip -n "$NS_VM" "$@" | sed 's/^/        /'
}

# try DESC CMD...: run a probe and print whether it works; returns the probe's verdict.
try() {
  local desc=$1
  shift
  if "$@"; then
    printf '    [ works ] %s\n' "$desc"
  else
    printf '    [ dead  ] %s\n' "$desc"
    return 1
  fi
}

# expect_works DESC CMD...: an "after" check: it must work, or the demo fails.
expect_works() {
  try "$@" || AFTER_FAILED=1
}

nr_require_root
nr_install_traps

heading "Preparing"
nr_ensure_deps
nr_ensure_packages pkg-config:pkg-config pkgconfig-libsystemd:libsystemd-dev
if [[ -z ${NICROUTED:-} ]]; then
  nr_find_swift || nr_die "no Swift toolchain found (install Swift 6, or set NICROUTED=/path/to/nicrouted)"
  say "building nicrouted and nicroutectl: swift build -c release (the first build takes a few minutes)"
  build_log=$(mktemp /tmp/nrdemo-build.XXXXXX)
  if ! (cd "$REPO" && swift build -c release --product nicrouted && swift build -c release --product nicroutectl) \
    >"$build_log" 2>&1; then
    tail -n 30 "$build_log" >&2
    rm -f "$build_log"
    nr_die "the build failed"
  fi
  rm -f "$build_log"
  NICROUTED="$REPO/.build/release/nicrouted"
fi
[[ $NICROUTED == manual || -x $NICROUTED ]] || nr_die "no nicrouted binary at $NICROUTED"
say "nicrouted: $NICROUTED"
: "${NICROUTECTL:=$(dirname "$NICROUTED")/nicroutectl}"
[[ -x $NICROUTECTL ]] || NICROUTECTL="" # NICROUTED=manual: no nicroutectl to show

# ctl_check: show and run `nicroutectl check` in the VM (the demo's own files and socket); returns
# its exit status.
ctl_check() {
  local rc=0
  [[ -n $NICROUTECTL ]] || return 0
  say "vm# nicroutectl check"
  ip netns exec "$NS_VM" "$NICROUTECTL" --manage 'eth*' --state-dir "$NR_TMP/state" --config "$NR_TMP/nicroute.conf" \
    --control-socket "$NR_TMP/control.sock" check 2>&1 | sed 's/^/        /' || rc=${PIPESTATUS[0]}
  say "(exit status $rc)"
  return "$rc"
}

heading "The VM: two NICs, one floating IP each"
topo_create
start_tcp_echo "$TCP_PORT"
say "An OpenStack VM (network namespace $NS_VM) with two NICs. Neutron allows one floating"
say "IP per port, so each NIC has its own, on its own router that NATs it to the NIC's address:"
say
say "  floating IP A $FIP_A  -> router A -> $NIC_A $ADDR_A   (has the default route)"
say "  floating IP B $FIP_B -> router B -> $NIC_B $ADDR_B   (no default route)"
say
say "The VM's main routing table, as DHCP/cloud-init left it:"
vm_ip -4 route show table main
say "A client on the internet ($CLIENT_ADDR) runs ping and a TCP echo against both floating IPs."

heading "The problem: floating IP B is dead"
try "ping $FIP_A (floating IP A)" probe_ping "$FIP_A" || true
try "ping $FIP_B (floating IP B)" probe_ping "$FIP_B" 1 || true
try "TCP $FIP_B:$TCP_PORT (floating IP B)" probe_tcp "$FIP_B" "$TCP_PORT" 1 || true
say
say "Why: the answer to the client leaves from $ADDR_B, and the kernel sends it out of"
say "the default route's NIC, $NIC_A:"
vm_ip route get "$CLIENT_ADDR" from "$ADDR_B"
say "There router A's port security drops a packet whose source is not $ADDR_A, and"
say "router B never sees the reply it must un-NAT. (With strict rp_filter, the VM even drops"
say "the request on the way in, because its reverse path is not $NIC_B.)"
mkdir -p "$NR_TMP/state"
: >"$NR_TMP/nicroute.conf"
say
say "nicroutectl check asks the kernel the same for every address of the NICs it would manage:"
ctl_check && AFTER_FAILED=1 # before nicrouted, it must name the missing rule and fail

heading "Starting nicrouted"
main_tables "$NS_VM" >"$NR_TMP/main.before"
say "vm# nicrouted --manage 'eth*' --state-dir $NR_TMP/state --config $NR_TMP/nicroute.conf --control-socket $NR_TMP/control.sock"
say "(--manage 'eth*' because the demo's NICs are veth pairs, which nicrouted skips by default)"
nicrouted_start "$NR_TMP/nicrouted.log" --manage 'eth*' --state-dir "$NR_TMP/state" --config "$NR_TMP/nicroute.conf" \
  --control-socket "$NR_TMP/control.sock"
wait_until 10 nicrouted_rule_or_dead "$ADDR_B" || true
if ! has_nicroute_rule "$NS_VM" "$ADDR_B"; then
  nicrouted_alive || echo "nicrouted exited early." >&2
  echo "nicrouted log:" >&2
  tail -n 20 "$NR_TMP/nicrouted.log" >&2 || true
  nr_die "nicrouted installed no rule for $ADDR_B within 10 s"
fi
# The default route of NIC B's table needs its gateway confirmed (a neighbour probe).
wait_until 5 route_is "$NS_VM" "$CLIENT_ADDR" "$ADDR_B" "dev $NIC_B via $GW_B" || true
say "running (pid $NICROUTED_PID)."

heading "What nicrouted installed"
say "One rule per NIC address, marked with nicroute's protocol number (110):"
vm_ip -4 rule show
vm_ip -6 rule show
say
say "and one routing table per NIC:"
for table in $(nicroute_rules "$NS_VM" | awk '{ print $2 }' | sort -un); do
  vm_ip -4 route show table "$table"
  vm_ip -6 route show table "$table"
done
if [[ $(main_tables "$NS_VM") == "$(cat "$NR_TMP/main.before")" ]]; then
  say "The main table (IPv4 and IPv6) is exactly as it was before."
else
  say "The main table CHANGED, which nicrouted must never do:"
  diff "$NR_TMP/main.before" <(main_tables "$NS_VM") | sed 's/^/        /' || true
  AFTER_FAILED=1
fi

heading "After: floating IP B works"
vm_ip route get "$CLIENT_ADDR" from "$ADDR_B"
route_is "$NS_VM" "$CLIENT_ADDR" "$ADDR_B" "dev $NIC_B via $GW_B" || AFTER_FAILED=1
expect_works "ping $FIP_B (floating IP B)" probe_ping "$FIP_B"
expect_works "TCP $FIP_B:$TCP_PORT (floating IP B)" probe_tcp "$FIP_B" "$TCP_PORT"
expect_works "ping $FIP_A (floating IP A, still)" probe_ping "$FIP_A"
say
ctl_check || AFTER_FAILED=1

heading "Cleaning up"
nr_stop_pid "$NICROUTED_PID" 5
say "nicrouted stopped (exit status $NR_STOP_RC; it leaves its rules in place by design, so a"
say "restart causes no gap). Deleting the demo's namespaces."
nr_cleanup

if [[ $AFTER_FAILED -ne 0 ]]; then
  printf '\nDemo FAILED: floating IP B does not work with nicrouted running.\n' >&2
  exit 1
fi
printf '\nDone: with nicrouted, both floating IPs answer.\n'
