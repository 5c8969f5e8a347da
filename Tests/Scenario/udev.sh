#!/usr/bin/env bash
# Real-kernel test of udev's per-NIC opt-out (NICROUTE_MANAGE=) on lib.sh's OpenStack VM in
# network namespaces, with `Manage=eth*` naming every NIC: the daemon reads a real udev database
# through libsystemd's sd-device, and the kernel is the oracle (`ip rule`, `ip route get`).
#
#   sudo bash Tests/Scenario/udev.sh
#
# The database is the test's own: nicrouted runs in the VM's namespace (`ip netns exec`, which
# mounts a /sys of that namespace) and in a mount namespace of its own (`unshare --mount`), with
# a tmpfs over /run and the test's directory bound on /run/udev; the machine's own /run/udev is
# never touched (nor is udev needed on the machine). The test writes what udev writes:
# `/run/udev/data/n<ifindex>` (`I:` the time udev processed the NIC, `E:KEY=VALUE` its
# properties) and `/run/udev/control` (udev runs). What udevd announces after processing a NIC
# (its monitor message: "libudev" header, then the properties) is sent the same way, on
# NETLINK_KOBJECT_UEVENT's udev group inside the VM's network namespace, where only the daemon
# listens (netlink multicast does not leave a network namespace).
#
#   opt-out     eth1 with NICROUTE_MANAGE=0: no rule, its replies follow main; eth0 managed
#               (ID_NET_MANAGED_BY=, which names who configures it, does not count); `status`
#               names eth1 and why
#   not yet     a hot-plugged eth2 without a database entry: nothing until udev's entry and
#               its event come, then its rule
#   change      eth1's property removed + a change event: managed; `off`: loses its rules again
#   invalid     `maybe`: ignored (managed), one warning naming it, however many events come
#   no udev     /run/udev/control gone: the configuration decides alone (eth1 managed with =0)
#
# Environment: NICROUTED, NICROUTECTL, NR_KEEP_TMP as for cli.sh.
#
# Prints one `ok - ...` / `not ok - ...` line per check and ends with `udev: N passed, M failed`;
# exits non-zero when any check failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
NR_PREFIX=nru
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$HERE/lib.sh"

nr_require_root
nr_install_traps
nr_summary udev
nr_ensure_deps
nr_ensure_packages unshare:util-linux

step() { printf '# --- %s\n' "$*"; }

nr_find_binaries

topo_create
SOCK=$NR_TMP/control.sock
UDEV=$NR_TMP/udev
DAEMON_LOG=$NR_TMP/nicrouted.log
mkdir -p "$UDEV/data" "$NR_TMP/state"
V4_DST=192.0.2.1

ifindex() { ip -n "$NS_VM" -j link show "$1" | jq -r '.[0].ifindex'; }
# db NIC [PROPERTY=VALUE...]: udev's database entry for NIC (processed now), with its properties.
db() {
  local nic=$1 idx
  shift
  idx=$(ifindex "$nic")
  { printf 'I:%s\n' "$(($(nr_now_us)))"; printf 'E:%s\n' "$@"; } | grep -v '^E:$' >"$UDEV/data/n$idx.tmp"
  mv "$UDEV/data/n$idx.tmp" "$UDEV/data/n$idx"
}
# event ACTION NIC: what udevd sends when it is done with NIC.
event() {
  local idx
  idx=$(ifindex "$2")
  ip netns exec "$NS_VM" python3 - "$1" "$2" "$idx" <<'PY'
import os, socket, struct, sys
action, name, index = sys.argv[1], sys.argv[2], sys.argv[3]

def murmur2(data, seed=0):
    # systemd's string_hash32: MurmurHash2, 32 bits, seed 0.
    m, h, n = 0x5BD1E995, seed ^ len(data), len(data)
    i = 0
    while n - i >= 4:
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
        i += 4
    rest = n - i
    if rest == 3: h ^= data[i + 2] << 16
    if rest >= 2: h ^= data[i + 1] << 8
    if rest >= 1:
        h ^= data[i]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h

props = b"".join(p.encode() + b"\0" for p in [
    f"ACTION={action}", f"DEVPATH=/devices/virtual/net/{name}", "SUBSYSTEM=net", f"INTERFACE={name}",
    f"IFINDEX={index}", f"SEQNUM={os.getpid()}", "USEC_INITIALIZED=1"])
# The magic and the filter hashes in network order (a BPF filter reads them), the sizes in the
# host's.
header = (struct.pack("8s", b"libudev") + struct.pack(">I", 0xFEEDCAFE) + struct.pack("=III", 40, 40, len(props))
          + struct.pack(">IIII", murmur2(b"net"), 0, 0, 0))
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 15)  # NETLINK_KOBJECT_UEVENT
s.bind((0, 0))
s.sendto(header + props, (0, 2))  # the udev group
PY
}
# ctl ARGS...: nicroutectl in the VM, asking the daemon.
ctl() { ip netns exec "$NS_VM" "$NICROUTECTL" --control-socket "$SOCK" --state-dir "$NR_TMP/state" --config /dev/null "$@"; }
rule() { has_nicroute_rule "$NS_VM" "$1"; }
no_rule() { has_no_nicroute_rule "$NS_VM" "$1"; }
# stays_without_rule ADDR: no rule for ADDR now, nor half a second later.
stays_without_rule() { no_rule "$1" && sleep 0.5 && no_rule "$1"; }
warnings() { grep -c "NICROUTE_MANAGE=$1 is neither" "$DAEMON_LOG" || true; }

# The daemon in its own mount namespace, udev's directories the test's.
cat >"$NR_TMP/in-udev-ns" <<EOF
#!/bin/bash
exec unshare --mount --propagation private bash -c 'mount -t tmpfs -o mode=0755 nru-run /run && mkdir /run/udev && mount --bind "\$0" /run/udev && exec "\$@"' "$UDEV" "$NICROUTED" "\$@"
EOF
chmod 0755 "$NR_TMP/in-udev-ns"

step "opt-out at start: eth1 carries NICROUTE_MANAGE=0"
# eth0 as systemd-networkd 255+ marks the links it configures: who configures a link is no
# reason to leave its routing alone.
db "$NIC_A" ID_NET_MANAGED_BY=io.systemd.Network
db "$NIC_B" NICROUTE_MANAGE=0
: >"$UDEV/control"
NICROUTED_REAL=$NICROUTED
NICROUTED=$NR_TMP/in-udev-ns
nicrouted_start "$DAEMON_LOG" --manage 'eth*' --state-dir "$NR_TMP/state" --config /dev/null \
  --control-socket "$SOCK" --log-level debug
NICROUTED=$NICROUTED_REAL
wait_until 10 test -S "$SOCK" || true
check "eth0 (ID_NET_MANAGED_BY=io.systemd.Network) gets its rule" wait_until 5 rule "$ADDR_A"
check "eth1 (NICROUTE_MANAGE=0, Manage=eth* names it) gets no rule" stays_without_rule "$ADDR_B"
check_route "eth0's replies leave through eth0" "$V4_DST" "$ADDR_A" "dev $NIC_A via $GW_A"
check_route "eth1's replies follow main (nicroute leaves it alone)" "$V4_DST" "$ADDR_B" "dev $NIC_A via $GW_A"
out=$(ctl status 2>&1 || true)
check "status: 'Not managed: eth1: NICROUTE_MANAGE=0 in udev's database', eth0 managed" \
  bash -c "grep -q \"^Not managed: $NIC_B: NICROUTE_MANAGE=0 in udev's database\$\" <<<\"\$0\" && grep -q '^● $NIC_A ' <<<\"\$0\" && ! grep -q '^[●○] $NIC_B ' <<<\"\$0\"" "$out"
out=$(ctl check "$ADDR_B" 2>&1 || true)
check "check $ADDR_B: not managed, and why" grep -qF "eth1 is not managed by nicroute: no table or rule of its own (NICROUTE_MANAGE=0 in udev's database)" <<<"$out"
json=$(ctl status --json 2>/dev/null || true)
check "status --json: excluded [eth1]" \
  test "$(jq -c '[.excluded[] | .name]' <<<"$json" 2>/dev/null)" == "[\"$NIC_B\"]"

step "not yet processed: a hot-plugged eth2 waits for udev"
router_create C
vm_nic_plug C
vm_nic_address C
check "eth2 without a database entry (udev busy with it) gets no rule" stays_without_rule "$ADDR_C"
out=$(ctl status 2>&1 || true)
check "status: eth2 not managed yet" grep -q "^Not managed: $NIC_C: udev has not finished with it yet\$" <<<"$out"
db "$NIC_C"
event add "$NIC_C"
check "udev done with eth2 (its entry, its add event): its rule" wait_until 5 rule "$ADDR_C"
check_route "eth2's replies leave through eth2" "$V4_DST" "$ADDR_C" "dev $NIC_C via $GW_C" 2

step "change: eth1's property removed, then set to off"
db "$NIC_B"
event change "$NIC_B"
check "eth1 without the property (change event): its rule" wait_until 5 rule "$ADDR_B"
check_route "eth1's replies leave through eth1" "$V4_DST" "$ADDR_B" "dev $NIC_B via $GW_B" 2
db "$NIC_B" NICROUTE_MANAGE=off
event change "$NIC_B"
check "eth1 with NICROUTE_MANAGE=off (change event): its rule goes" wait_until 5 no_rule "$ADDR_B"
# nicroute_routes_via NIC: nicroute's routes out of NIC, outside eth0's and eth2's tables (where
# eth1's subnet is copied from main, as any unmanaged interface's is).
others_tables() { printf '%s\n' "$(nicroute_table_of "$NS_VM" "$ADDR_A")" "$(nicroute_table_of "$NS_VM" "$ADDR_C")"; }
routes_of_eth1() { nicroute_routes "$NS_VM" | grep "dev $NIC_B" | grep -vwF -f <(others_tables | sed 's/^/table /') || true; }
check "no table of eth1's own is left (its routes are gone)" test -z "$(routes_of_eth1)"
check_route "eth1's replies follow main again" "$V4_DST" "$ADDR_B" "dev $NIC_A via $GW_A"
check "eth0 and eth2 keep theirs" bash -c "$(declare -f has_nicroute_rule nicroute_rule_count nicroute_rules); NICROUTE_PROTO_RE='$NICROUTE_PROTO_RE'; has_nicroute_rule '$NS_VM' '$ADDR_A' && has_nicroute_rule '$NS_VM' '$ADDR_C'"

step "an invalid value: ignored, one warning"
db "$NIC_B" NICROUTE_MANAGE=maybe
event change "$NIC_B"
check "eth1 with NICROUTE_MANAGE=maybe: managed (the configuration decides)" wait_until 5 rule "$ADDR_B"
db "$NIC_B" NICROUTE_MANAGE=maybe
event change "$NIC_B"
sleep 0.5
check "one warning naming 'maybe' after two events ($(warnings maybe))" test "$(warnings maybe)" -eq 1
db "$NIC_B" NICROUTE_MANAGE=1
event change "$NIC_B"
sleep 0.5
check "NICROUTE_MANAGE=1: still managed, no warning" bash -c "$(declare -f has_nicroute_rule nicroute_rule_count nicroute_rules); NICROUTE_PROTO_RE='$NICROUTE_PROTO_RE'; has_nicroute_rule '$NS_VM' '$ADDR_B' && ! grep -q 'NICROUTE_MANAGE=1 is' '$DAEMON_LOG'"

step "udev not running: the configuration decides alone"
db "$NIC_B" NICROUTE_MANAGE=0
event change "$NIC_B"
check "eth1 with =0 again: no rule" wait_until 5 no_rule "$ADDR_B"
rm -f "$UDEV/control"
ctl reconfigure >/dev/null 2>&1 || true
check "no /run/udev/control (reconfigure): eth1 managed whatever its entry says" wait_until 5 rule "$ADDR_B"

check "nicrouted still runs" nicrouted_alive
kill -TERM "$NICROUTED_PID"
check "nicrouted stops" wait_until 5 nr_pid_gone "$NICROUTED_PID"
check "no warning in the daemon's log but the one for 'maybe'" \
  bash -c "! grep -E '(warning|error|critical)' \"\$0\" | grep -v 'NICROUTE_MANAGE=maybe is neither' | grep -q ." "$DAEMON_LOG"
if [[ $NR_FAIL -gt 0 && -s $DAEMON_LOG ]]; then grep -v ' debug' "$DAEMON_LOG" | tail -n 30 | sed 's/^/#   /'; fi
nr_summary_line
[[ $NR_FAIL -eq 0 ]]
