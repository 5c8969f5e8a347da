# shellcheck shell=bash
# What the package tests share (package.sh: the .deb's life in a booted Debian;
# upgrade-dynamicuser.sh: the upgrade from the last DynamicUser= release): the current packages,
# the container's view of nicrouted.service and its rules, and an upgrade watched all along.
# Source it after lib-nspawn.sh and lib-checks.sh; the container is lib-nspawn's (eth0
# 10.10.10.29/24, eth1 20.20.20.16/24).
#
#   pkg_build DIST [--version V]  the .deb and the .rpm in $NICROUTE_PKG_DIR/DIST (else
#                                 $NSB_WORK/DIST): taken from there, or built there by
#                                 scripts/build-packages.sh; sets PKG_DEB, PKG_RPM, PKG_FRESH
#   pkg_upgrade_checked DEB OLD_VERSION NEW_VERSION
#                                 `apt-get install DEB` (already in the container) while the
#                                 host polls the rules and `ip monitor rule` records; three checks
#                                 (call it under `set +e`, as the checks after boot run)

PKG_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

in_ct() { nsb_exec "$@"; }
prop() { in_ct systemctl show -P "$1" nicrouted.service; }
is_active() { [[ $(prop ActiveState) == active ]]; }
apt_ct() { NSB_EXEC_TIMEOUT=120 in_ct env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Use-Pty=0 "$@"; }
diagnose() {
    in_ct systemctl status --no-pager -l nicrouted.service 2>&1 | indent || true
    in_ct journalctl -q --no-pager -u nicrouted.service -n 20 2>&1 | indent || true
}

# The nicroute rules in the container's namespace, seen from the host (no process inside; the
# host's `ip` has no name for protocol 110).
nicroute_rules() { ip -n "$NSB_NS" rule show | grep -E 'proto (nicroute|110)' || true; }
rules_ok() {
    local r
    r=$(nicroute_rules)
    grep -qE 'from 10\.10\.10\.29 lookup [0-9]+ proto (nicroute|110)' <<<"$r" &&
        grep -qE 'from 20\.20\.20\.16 lookup [0-9]+ proto (nicroute|110)' <<<"$r"
}
route_eth1() { ip -n "$NSB_NS" route get 192.0.2.1 from 20.20.20.16 | grep -q 'via 20.20.20.1 dev eth1'; }

# pkg_build DIST [BUILD-PACKAGES OPTIONS...]: PKG_DEB and PKG_RPM from $NICROUTE_PKG_DIR/DIST
# when a run before this one built them there (PKG_FRESH=0; scripts/test.sh shares the folder
# between its package stages), else built now (PKG_FRESH=1; log in $NSB_WORK/build-DIST.log).
# Returns non-zero when the build failed (the folder is then emptied).
# shellcheck disable=SC2034  # PKG_DEB, PKG_RPM and PKG_FRESH are for the caller
# pkg_boot: boots the staged tree and waits for systemd (the run ends when it does not boot).
pkg_boot() {
    local state
    nsb_boot 30 || {
        not_ok "the container boots"
        summary
        exit 1
    }
    state=$(nsb_wait_running 60) || true
    nsb_log "systemd in the container: $state ($(in_ct systemctl --version | head -n1))"
}

pkg_build() {
    local dist=$1 dir out
    shift
    dir=${NICROUTE_PKG_DIR:-$NSB_WORK}/$dist
    PKG_DEB=$(find "$dir" -name '*.deb' 2>/dev/null | head -n1 || true)
    PKG_RPM=$(find "$dir" -name '*.rpm' 2>/dev/null | head -n1 || true)
    PKG_FRESH=0
    [[ -n $PKG_DEB && -n $PKG_RPM ]] && return 0
    PKG_FRESH=1
    rm -rf "$dir"
    mkdir -p "$dir"
    if ! out=$(bash "$PKG_REPO/scripts/build-packages.sh" "$@" "$dir" 2>"$NSB_WORK/build-$dist.log"); then
        rm -rf "$dir"
        return 1
    fi
    PKG_DEB=$(grep '\.deb$' <<<"$out")
    PKG_RPM=$(grep '\.rpm$' <<<"$out")
}

# pkg_upgrade_checked DEB OLD_VERSION NEW_VERSION: upgrades to DEB (a path in the container),
# with the rules watched all along: `ip monitor rule` sees every deletion, and a poll every few
# milliseconds sees whether both rules are there. Checks that the package was upgraded, that the
# daemon restarted (new PID, active), that no poll missed a rule and no nicroute rule was
# deleted. Leaves apt's output in PKG_UPGRADE_OUT, the PIDs in PKG_PID_BEFORE and PKG_PID_AFTER.
pkg_upgrade_checked() {
    local deb=$1 old_version=$2 new_version=$3 rc mon poller polls gaps deleted
    PKG_PID_BEFORE=$(prop MainPID)
    rm -f "$NSB_WORK/upgrade-done" "$NSB_WORK/upgrade-polls"
    ip -n "$NSB_NS" monitor rule >"$NSB_WORK/upgrade-monitor.log" 2>&1 &
    mon=$!
    (
        polls=0 gaps=0
        end=$((SECONDS + 120))
        while [[ ! -f $NSB_WORK/upgrade-done ]] && ((SECONDS < end)); do
            polls=$((polls + 1))
            rules_ok || gaps=$((gaps + 1))
            sleep 0.005
        done
        echo "$polls $gaps" >"$NSB_WORK/upgrade-polls"
    ) &
    poller=$!
    sleep 0.3
    PKG_UPGRADE_OUT=$(apt_ct install --no-install-recommends "$deb" 2>&1)
    rc=$?
    wait_for 20 is_active
    sleep 1 # the new daemon's first pass has run (READY); keep watching a moment longer
    touch "$NSB_WORK/upgrade-done"
    wait "$poller"
    kill "$mon" 2>/dev/null
    wait "$mon" 2>/dev/null
    read -r polls gaps <"$NSB_WORK/upgrade-polls"
    deleted=$(grep -cE '^Deleted.*proto (nicroute|110)' "$NSB_WORK/upgrade-monitor.log")
    if ((rc == 0)) && [[ $(in_ct dpkg-query -W -f='${Version}' nicroute) == "$new_version" ]]; then
        ok "apt-get install ./${deb##*/}: upgraded $old_version -> $new_version"
    else
        not_ok "upgrade to $new_version (exit $rc)"
        tail -n 20 <<<"$PKG_UPGRADE_OUT" | indent
    fi
    PKG_PID_AFTER=$(prop MainPID)
    if [[ $PKG_PID_AFTER =~ ^[1-9][0-9]*$ && $PKG_PID_AFTER != "$PKG_PID_BEFORE" && $(prop ActiveState) == active ]]; then
        ok "the upgrade restarted the daemon: MainPID $PKG_PID_BEFORE -> $PKG_PID_AFTER, active"
    else
        not_ok "the upgrade restarted the daemon (MainPID $PKG_PID_BEFORE -> $PKG_PID_AFTER, $(prop ActiveState))"
        diagnose
    fi
    if ((polls > 20 && gaps == 0 && deleted == 0)); then
        ok "rules in place throughout the upgrade: $polls polls, none without both rules; no nicroute rule deleted (ip monitor rule)"
    else
        not_ok "rules in place throughout the upgrade: $gaps of $polls polls without both rules, $deleted deletions"
        indent <"$NSB_WORK/upgrade-monitor.log"
    fi
}
