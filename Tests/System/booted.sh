#!/usr/bin/env bash
# System test: nicrouted under a real, booted systemd (Debian 12's 252; NSB_BACKPORTS=yes for 254)
# with the shipped unit, units/nicrouted.service, unchanged.
#
#   sudo bash Tests/System/booted.sh
#
# A debootstrapped Debian 12 (cached under /var/cache/nicroute-test, built once: a few minutes)
# gets the release binaries in /usr/bin, the unit in /etc/systemd/system (enabled),
# /etc/nicroute/nicroute.conf with `Manage=eth*` (veths are not managed by default) and
# /etc/iproute2/rt_protos.d/nicroute.conf; it boots under systemd-nspawn in a network namespace
# of its own (nsb-PID-RANDOM) with eth0 10.10.10.29/24 (default route via 10.10.10.1) and eth1
# 20.20.20.16/24, whose gateways live in a router namespace (nsb-PID-RANDOM-rt).
# Checks: the service reaches active with its STATUS text; it runs as the system user nicroute
# (made from the packages' sysusers.d file, as their scripts do) with CAP_NET_ADMIN only and writes its state directory; the rules are in the kernel and the
# kernel routes traffic from eth1's address out of eth1 via 20.20.20.1; `nicroutectl status`
# works inside; `systemctl reload` goes through RELOADING and back to active, and fails on an
# invalid configuration while the daemon keeps the last good one; SIGSTOP trips the
# watchdog and systemd restarts the service, which keeps the rules; the journal holds the
# daemon's structured fields (NICROUTE_ACTION, NICROUTE_COMMAND); with systemd-networkd started
# and managing eth1, the preflight (which looks at /proc and networkd.conf) still sees it through
# the sandbox, and the rules are in place.
#
# Environment:
#   NICROUTE_BINDIR=DIR   use DIR/nicrouted and DIR/nicroutectl (default: build them with
#                         scripts/build-release.sh, the packages' build)
#   NSB_KEEP=1            keep the work dir (console log, the container's upper layer)
#   see lib-nspawn.sh for the cache and mirror settings
#
# Prints `ok - ...` / `not ok - ...` per check, ends with `system: N passed, M failed`, exits
# non-zero when a check failed. Leaves no namespace, mount, process or work dir behind.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib-nspawn.sh
source "$HERE/lib-nspawn.sh"

CHECKS_LABEL=system
# shellcheck source-path=SCRIPTDIR source=lib-checks.sh
source "$HERE/lib-checks.sh"
T0=$SECONDS

in_ct() { nsb_exec "$@"; }
prop() { in_ct systemctl show -P "$1" nicrouted.service; }
is_active() { [[ $(prop ActiveState) == active ]]; }
journal() { in_ct journalctl -q --no-pager -u nicrouted.service "$@"; }

# Shown after a failed check: what systemd and the daemon said.
diagnose() {
    echo "# systemctl status nicrouted:"
    in_ct systemctl status --no-pager -l nicrouted.service 2>&1 | sed 's/^/#   /' || true
    echo "# journalctl -u nicrouted (last 30):"
    journal -n 30 2>&1 | sed 's/^/#   /' || true
}

# ---- binaries -----------------------------------------------------------------------------

nsb_init
if [[ -z ${NICROUTE_BINDIR:-} ]]; then
    NICROUTE_BINDIR=$(bash "$REPO/scripts/build-release.sh" 2> >(tail -n 3 >&2))
fi
for b in nicrouted nicroutectl; do
    [[ -x $NICROUTE_BINDIR/$b ]] || nsb_die "no $NICROUTE_BINDIR/$b (set NICROUTE_BINDIR or build the release binaries)"
done

# ---- the container ------------------------------------------------------------------------

TREE=$(nsb_tree)
nsb_log "tree $TREE ($(head -n1 "$TREE/.nicroute-tree-complete"))"
nsb_stage "$TREE"
nsb_install "$NICROUTE_BINDIR/nicrouted" /usr/bin/nicrouted 0755
# One binary for both tools (scripts/build-release.sh): nicroutectl a symlink to it, as packaged.
ln -sfn nicrouted "$NSB_STAGE/usr/bin/nicroutectl"
nsb_install "$REPO/units/nicrouted.service" /etc/systemd/system/nicrouted.service
nsb_install "$REPO/packaging/common/sysusers.conf" /usr/lib/sysusers.d/nicroute.conf
nsb_chroot systemd-sysusers nicroute.conf
nsb_enable nicrouted.service multi-user.target
printf '[Interfaces]\nManage=eth*\n' | nsb_write /etc/nicroute/nicroute.conf
printf '110 nicroute\n' | nsb_write /etc/iproute2/rt_protos.d/nicroute.conf
nsb_netns
T_BOOT=$SECONDS
nsb_boot 30 || {
    not_ok "the container boots"
    summary
    exit 1
}
state=$(nsb_wait_running 60) || true
nsb_log "systemd in the container: $state after $((SECONDS - T_BOOT)) s ($(in_ct systemctl --version | head -n1))"

# ---- checks -------------------------------------------------------------------------------
# A failing command is a failed check from here on, never the end of the run.
set +e

# 1. active, with the STATUS text of the first pass.
if wait_for 30 is_active; then
    ok "nicrouted.service is active (Type=$(prop Type), $((SECONDS - T_BOOT)) s after boot)"
else
    not_ok "nicrouted.service is active (ActiveState=$(prop ActiveState), Result=$(prop Result))"
    diagnose
fi

status=$(in_ct systemctl show -p StatusText nicrouted.service)
if [[ $status =~ ^StatusText=[0-9]+\ NICs?,\ [0-9]+\ rules?,\ last\ change ]]; then
    ok "STATUS text: ${status#StatusText=}"
else
    not_ok "STATUS text matches 'N NICs, M rules, last change': got '$status'"
fi

# 2. The sandbox the unit asks for, as the kernel sees the process.
main_pid=$(prop MainPID)
if [[ $main_pid =~ ^[1-9][0-9]*$ ]]; then
    uid=$(in_ct awk '/^Uid:/ { print $2 }' "/proc/$main_pid/status")
    capeff=$(in_ct awk '/^CapEff:/ { print $2 }' "/proc/$main_pid/status")
    capbnd=$(in_ct awk '/^CapBnd:/ { print $2 }' "/proc/$main_pid/status")
    nnp=$(in_ct awk '/^NoNewPrivs:/ { print $2 }' "/proc/$main_pid/status")
    seccomp=$(in_ct awk '/^Seccomp:/ { print $2 }' "/proc/$main_pid/status")
    # CAP_NET_ADMIN is capability 12: 0x1000.
    user_uid=$(in_ct getent passwd nicroute | cut -d: -f3)
    if [[ $uid != 0 && $uid == "$user_uid" && $capeff == 0000000000001000 && $capbnd == 0000000000001000 && $nnp == 1 && $seccomp == 2 ]]; then
        ok "runs as user nicroute ($uid) with CAP_NET_ADMIN only, no_new_privs, seccomp filter"
    else
        not_ok "sandbox: uid=$uid (nicroute: ${user_uid:-none}) CapEff=$capeff CapBnd=$capbnd NoNewPrivs=$nnp Seccomp=$seccomp"
    fi
else
    not_ok "sandbox: no MainPID"
fi

rules_ok() {
    local r
    r=$(in_ct ip rule show)
    grep -qE 'from 10\.10\.10\.29 lookup [0-9]+ proto nicroute' <<<"$r" &&
        grep -qE 'from 20\.20\.20\.16 lookup [0-9]+ proto nicroute' <<<"$r"
}
if wait_for 10 rules_ok; then
    ok "rules for both addresses, proto nicroute (named by rt_protos.d)"
else
    not_ok "rules for both addresses"
    in_ct ip rule show | sed 's/^/#   /'
fi

if wait_for 5 in_ct test -s /var/lib/nicroute/slots; then
    ok "state directory written: $(in_ct readlink -f /var/lib/nicroute)/slots"
else
    not_ok "state directory /var/lib/nicroute/slots written"
    in_ct ls -la /var/lib/ /var/lib/private 2>&1 | sed 's/^/#   /'
fi

# 3. The kernel's answer (first-host discovery confirms 20.20.20.1 by ARP first).
route_eth1() { ip -n "$NSB_NS" route get 192.0.2.1 from 20.20.20.16 | grep -q 'via 20.20.20.1 dev eth1'; }
if wait_for 15 route_eth1; then
    ok "ip route get 192.0.2.1 from 20.20.20.16: $(ip -n "$NSB_NS" route get 192.0.2.1 from 20.20.20.16 | head -n1)"
else
    not_ok "ip route get 192.0.2.1 from 20.20.20.16 goes via 20.20.20.1 dev eth1: $(ip -n "$NSB_NS" route get 192.0.2.1 from 20.20.20.16 | head -n1)"
    in_ct ip route show table all | grep -v '^local\|^broadcast\|^multicast\|fe80\|ff00' | sed 's/^/#   /'
fi
main_route=$(ip -n "$NSB_NS" route get 192.0.2.1 | head -n1)
if [[ $main_route == *"via 10.10.10.1 dev eth0"* ]] && ! grep -q nicroute <(in_ct ip route show table main); then
    ok "main table untouched: $main_route"
else
    not_ok "main table untouched: $main_route"
fi

# 4. nicroutectl inside.
if out=$(in_ct nicroutectl status 2>&1) && grep -q eth0 <<<"$out" && grep -q eth1 <<<"$out"; then
    ok "nicroutectl status exits 0 and shows eth0 and eth1"
else
    not_ok "nicroutectl status exits 0 and shows eth0 and eth1"
    sed 's/^/#   /' <<<"$out"
fi
if "$NICROUTE_BINDIR/nicrouted" --help 2>&1 | grep -q -- --control-socket; then
    if in_ct test -S /run/nicroute/control.sock; then
        ok "control socket $(in_ct stat -c '%A %U' /run/nicroute/control.sock) in $(in_ct stat -c '%A' /run/nicroute)"
    else
        not_ok "control socket /run/nicroute/control.sock exists"
    fi
    # Root's own socket: the service user's, mode 0600 (no other user can connect there).
    priv=$(in_ct stat -c '%a %U' /run/nicroute/control.privileged.sock 2>&1 || true)
    if [[ $priv == "600 nicroute" ]]; then
        ok "root's control socket /run/nicroute/control.privileged.sock: mode 600, owner nicroute"
    else
        not_ok "root's control socket /run/nicroute/control.privileged.sock is mode 600, owned by nicroute (got: $priv)"
    fi
    # As nobody, through the socket: the report must say it came from the running daemon.
    if out=$(in_ct setpriv --reuid=65534 --regid=65534 --clear-groups nicroutectl status --json 2>&1) &&
        grep -q eth1 <<<"$out" && grep -qE '"fromDaemon" *: *true' <<<"$out"; then
        ok "nicroutectl status --json as an unprivileged user: answered by the daemon (fromDaemon true)"
    else
        not_ok "nicroutectl status as an unprivileged user"
        sed 's/^/#   /' <<<"$out"
    fi
else
    skip "control socket (this nicrouted has no --control-socket yet)"
fi

# 5. Reload: ExecReload=nicroutectl reconfigure; same process, active again.
pid_before=$(prop MainPID)
since=$(date +%s)
sleep 1  # journalctl --since has second granularity
reloaded() {
    local j
    j=$(journal --since "@$since")
    grep -q 'Reloading nicrouted.service' <<<"$j" && grep -q 'Reloaded nicrouted.service' <<<"$j" &&
        grep -q 'configuration reloaded' <<<"$j"
}
if in_ct timeout 30 systemctl reload nicrouted.service; then
    if wait_for 10 reloaded && is_active && [[ $(prop MainPID) == "$pid_before" ]]; then
        ok "systemctl reload: Reloading/Reloaded, 'configuration reloaded', active, same MainPID"
    else
        not_ok "systemctl reload went through RELOADING and back to active (state $(prop ActiveState))"
        journal --since "@$since" | sed 's/^/#   /'
    fi
else
    not_ok "systemctl reload nicrouted.service succeeds"
    diagnose
fi

# An invalid configuration: the reload fails with file:line: reason, the daemon keeps running
# with the last good configuration and its rules.
in_ct cp /etc/nicroute/nicroute.conf /etc/nicroute/nicroute.conf.good
printf '[Interfaces]\nManage=eth*\n[Routing]\nTables=10-300\n' | in_ct tee /etc/nicroute/nicroute.conf >/dev/null
out=$(in_ct timeout 30 systemctl reload nicrouted.service 2>&1)
rc=$?
why=$(journal -n 20 | grep -m1 -oE '/etc/nicroute/nicroute.conf:4: .*' || true)
if ((rc != 0)) && [[ -n $why ]] && is_active && [[ $(prop MainPID) == "$pid_before" ]] && rules_ok; then
    ok "systemctl reload with an invalid file fails (exit $rc), journal: '$why'; still active with its rules"
else
    not_ok "systemctl reload with an invalid file: exit $rc (want non-zero), reason '${why:-none}', $(prop ActiveState)"
    sed 's/^/#   /' <<<"$out"
    journal -n 10 | sed 's/^/#   /'
fi
in_ct mv /etc/nicroute/nicroute.conf.good /etc/nicroute/nicroute.conf
if in_ct timeout 30 systemctl reload nicrouted.service; then
    ok "systemctl reload succeeds again once the file is fixed"
else
    not_ok "systemctl reload succeeds again once the file is fixed"
fi

# 6. Watchdog: a stopped event loop stops pinging; systemd aborts and restarts the service.
pid_before=$(prop MainPID)
restarts_before=$(prop NRestarts)
wd=$(prop WatchdogUSec)
since=$(date +%s)
sleep 1
restarted() {
    local pid
    pid=$(prop MainPID)
    [[ $pid =~ ^[1-9][0-9]*$ && $pid != "$pid_before" ]] && is_active &&
        (($(prop NRestarts) > restarts_before))
}
T_WD=$SECONDS
if [[ $pid_before =~ ^[1-9][0-9]*$ ]] && in_ct kill -STOP "$pid_before"; then
    # WatchdogSec, then SIGABRT (TimeoutAbortSec at most), RestartSec, startup.
    if wait_for 90 restarted; then
        ok "SIGSTOP: watchdog ($wd) tripped, restarted in $((SECONDS - T_WD)) s: MainPID $pid_before -> $(prop MainPID), NRestarts $restarts_before -> $(prop NRestarts)"
    else
        not_ok "SIGSTOP: watchdog restarts the service (MainPID $(prop MainPID), NRestarts $(prop NRestarts), $(prop ActiveState))"
        diagnose
    fi
    if journal --since "@$since" | grep -q 'Watchdog timeout'; then
        ok "journal: systemd logged the watchdog timeout"
    else
        not_ok "journal: systemd logged the watchdog timeout"
    fi
else
    not_ok "SIGSTOP the main process ($pid_before)"
fi
if wait_for 10 rules_ok && route_eth1; then
    ok "after the restart: rules in place, traffic from 20.20.20.16 still via eth1"
else
    not_ok "after the restart: rules in place and routing right"
fi
if [[ $(in_ct ip rule show | grep -c 'proto nicroute') == 2 ]]; then
    ok "after the restart: no duplicate rules (adopted)"
else
    not_ok "after the restart: exactly 2 nicroute rules"
    in_ct ip rule show | sed 's/^/#   /'
fi

# 7. Structured journal fields.
verbose=$(journal -o verbose)
if grep -qE '^ *NICROUTE_ACTION=' <<<"$verbose" && grep -qE '^ *NICROUTE_COMMAND=' <<<"$verbose"; then
    ok "journal fields: $(grep -m1 -E '^ *NICROUTE_COMMAND=' <<<"$verbose" | sed 's/^ *//')"
else
    not_ok "journal has NICROUTE_ACTION and NICROUTE_COMMAND fields"
    grep -E '^ *(MESSAGE|SYSLOG_IDENTIFIER|NICROUTE_[A-Z_]+)=' <<<"$verbose" | head -n 20 | sed 's/^/#   /'
fi

# No error from the daemon itself (seccomp, permissions, sandbox).
# (Less the refusal of the invalid file step 5 wrote on purpose.)
errors=$(in_ct journalctl -q --no-pager _SYSTEMD_UNIT=nicrouted.service -p err -o cat | grep -v '^$' |
    grep -v 'keeping the last good one: /etc/nicroute/nicroute.conf:4: ' || true)
if [[ -z $errors ]]; then
    ok "no error-level message from nicrouted"
else
    not_ok "no error-level message from nicrouted"
    sed 's/^/#   /' <<<"$errors"
fi

# 8. The sandbox leaves the preflight its view: systemd-networkd starts and manages eth1, with its
# default ManageForeignRoutingPolicyRules=yes; the daemon sees it running (/proc) and reads its
# settings; the rules stay (or come back: deletions are counted by `ip monitor rule`).
preflight_networkd() {
    in_ct nicroutectl status 2>&1 | grep -q 'ManageForeignRoutingPolicyRules'
}
printf '[Match]\nName=eth1\n\n[Network]\nAddress=20.20.20.16/24\n' |
    in_ct tee /etc/systemd/network/50-eth1.network >/dev/null
ip -n "$NSB_NS" monitor rule >"$NSB_WORK/networkd-monitor.log" 2>&1 &
monitor=$!
sleep 0.2
if in_ct systemctl start systemd-networkd.service; then
    if wait_for 15 preflight_networkd; then
        ok "preflight under the sandbox: $(in_ct nicroutectl status 2>&1 | grep -m1 -o 'systemd-networkd removes foreign routing policy rules[^:]*')"
    else
        not_ok "preflight under the sandbox names systemd-networkd's ManageForeignRoutingPolicyRules"
        in_ct nicroutectl status 2>&1 | sed 's/^/#   /'
    fi
    sleep 2
    kill "$monitor" 2>/dev/null
    deleted=$(grep -cE '^Deleted.*proto (nicroute|110)' "$NSB_WORK/networkd-monitor.log")
    # (Recorded, not asserted: networkd 252 under nspawn was not seen deleting them.)
    if wait_for 15 rules_ok && wait_for 15 route_eth1; then
        ok "rules and routing in place with systemd-networkd managing eth1 (it deleted $deleted nicroute rules)"
    else
        not_ok "rules and routing in place with systemd-networkd managing eth1 ($deleted deleted)"
        in_ct ip rule show | sed 's/^/#   /'
    fi
else
    not_ok "systemctl start systemd-networkd"
fi

nsb_log "checks done in $((SECONDS - T0)) s"
summary
((FAILED == 0))
