#!/usr/bin/env bash
# Upgrade test from the last release that ran nicrouted with DynamicUser=yes to the current
# package (User=nicroute, a static system user from sysusers.d, since 1f53148), in a booted
# Debian under systemd-nspawn with two veth NICs (lib-nspawn.sh), in each release nicroute
# supports (NSB_SUITE: bullseye, bookworm, trixie).
#
#   sudo NSB_SUITE=bullseye bash Tests/System/upgrade-dynamicuser.sh
#
# A test of its own rather than a section of package.sh: it needs a container that never had the
# current package (package.sh's purge leaves the system user nicroute behind, as Debian leaves
# system users) and the package of another commit.
#
# The old package is 1ef97fb's (the last commit with DynamicUser=), built by that commit's own
# scripts/build-packages.sh and cached (scripts/build-old-packages.sh: about 5 minutes cold,
# once per machine); its version, 0.1.0~git144.1ef97fbb, sorts below the current snapshot's.
# The current one comes from NICROUTE_PKG_DIR/dist-new when package.sh built it there (as in
# scripts/test.sh), else it is built (lib-package.sh's pkg_build). Then, in the container:
#   install  `apt-get install ./dynamicuser.deb` with eth0 down, then eth0 up: the service
#            active as a dynamic user, its state in /var/lib/private/nicroute behind the link
#            /var/lib/nicroute, eth1 in the first slot and eth0 in the second (the order a
#            daemon that lost its state would not give them again), rules for both addresses;
#   upgrade  `apt-get install ./new.deb` while the host polls `ip rule` in the container's
#            namespace and `ip monitor rule` records every change (lib-package.sh, as package.sh
#            does for its own upgrade): no poll without both rules, no nicroute rule deleted,
#            the daemon restarted, dpkg printed no warning;
#   after    the daemon runs as the static system user nicroute (ps, /proc/PID/status and
#            getent agree); systemd moved the state back to /var/lib/nicroute (a directory now,
#            no /var/lib/private/nicroute), owned by nicroute, the slots file unchanged; the same
#            table for each NIC (nicroutectl status --json) and the same rules as before; no
#            warning in the journal since the upgrade began.
#
# Environment:
#   NSB_SUITE                  bullseye, bookworm (default) or trixie
#   NICROUTE_PKG_DYNAMICUSER   use this .deb as the old package instead of 1ef97fb's
#   NICROUTE_PKG_NEW           use this .deb as the new package instead of building it
#   NICROUTE_PKG_DIR           reuse (or build) the current packages in DIR/dist-new
#   NSB_KEEP=1, ...            see lib-nspawn.sh
#
# Prints `ok - ...` / `not ok - ...` per check, ends with `upgrade-dynamicuser-SUITE: N passed,
# M failed`, exits non-zero when a check failed. Leaves no namespace, mount, process or work dir.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib-nspawn.sh
source "$HERE/lib-nspawn.sh"
CHECKS_LABEL=upgrade-dynamicuser-$NSB_SUITE
# shellcheck source-path=SCRIPTDIR source=lib-checks.sh
source "$HERE/lib-checks.sh"
# shellcheck source-path=SCRIPTDIR source=lib-package.sh
source "$HERE/lib-package.sh"
T0=$SECONDS

# The last commit whose unit ran nicrouted with DynamicUser=yes (1f53148 replaced it).
DYNAMICUSER_COMMIT=1ef97fb

# The unit a .deb ships, as text.
deb_unit() { dpkg-deb --fsys-tarfile "$1" | tar -xO --wildcards '*/systemd/system/nicrouted.service'; }
# MAC TABLE NAME per managed NIC, from the daemon's status, sorted.
tables() { in_ct nicroutectl status --json | jq -r '.nics[] | "\(.mac) \(.table) \(.name)"' | sort; }
table_of() { tables | awk -v n="$1" '$3 == n { print $2 }'; }
eth1_rule() { nicroute_rules | grep -qE 'from 20\.20\.20\.16 lookup [0-9]+'; }

# ---- the packages -------------------------------------------------------------------------

nsb_init
command -v jq >/dev/null || nsb_die "jq is needed (apt-get install jq; scripts/test.sh installs it)"
if [[ -z ${NICROUTE_PKG_DYNAMICUSER:-} ]]; then
    if out=$(bash "$REPO/scripts/build-old-packages.sh" "$DYNAMICUSER_COMMIT" 2>"$NSB_WORK/build-old.log"); then
        NICROUTE_PKG_DYNAMICUSER=$(grep '\.deb$' <<<"$out")
        ok "$DYNAMICUSER_COMMIT's packages by its own build-packages.sh (scripts/build-old-packages.sh): $(basename "$NICROUTE_PKG_DYNAMICUSER"), $(head -n1 "$(dirname "$NICROUTE_PKG_DYNAMICUSER")/.nicroute-tree-complete" | cut -d' ' -f1-5)"
    else
        not_ok "scripts/build-old-packages.sh $DYNAMICUSER_COMMIT"
        tail -n 30 "$NSB_WORK/build-old.log" | indent
        summary
        exit 1
    fi
fi
if [[ -z ${NICROUTE_PKG_NEW:-} ]]; then
    if pkg_build dist-new; then
        NICROUTE_PKG_NEW=$PKG_DEB
        ok "the current package: $(basename "$PKG_DEB") ($( ((PKG_FRESH)) && echo "built now" || echo "built by an earlier run"))"
    else
        not_ok "build-packages builds the current .deb and .rpm"
        tail -n 30 "$NSB_WORK/build-dist-new.log" | indent
        summary
        exit 1
    fi
fi
old_version=$(dpkg-deb -f "$NICROUTE_PKG_DYNAMICUSER" Version)
new_version=$(dpkg-deb -f "$NICROUTE_PKG_NEW" Version)
old_unit=$(deb_unit "$NICROUTE_PKG_DYNAMICUSER")
new_unit=$(deb_unit "$NICROUTE_PKG_NEW")
if dpkg --compare-versions "$old_version" lt "$new_version" &&
    grep -qx 'DynamicUser=yes' <<<"$old_unit" && ! grep -qE '^User=' <<<"$old_unit" &&
    grep -qx 'User=nicroute' <<<"$new_unit" && ! grep -qE '^DynamicUser=' <<<"$new_unit"; then
    ok "$old_version (DynamicUser=yes) sorts below $new_version (User=nicroute): an upgrade"
else
    not_ok "an upgrade from a DynamicUser= unit to User=nicroute: $old_version -> $new_version"
    grep -E '^(DynamicUser|User)=' <<<"$old_unit" | sed 's/^/old: /' | indent
    grep -E '^(DynamicUser|User)=' <<<"$new_unit" | sed 's/^/new: /' | indent
    summary
    exit 1
fi

# ---- the container ------------------------------------------------------------------------

TREE=$(nsb_tree)
nsb_stage "$TREE"
nsb_install "$NICROUTE_PKG_DYNAMICUSER" /var/tmp/pkg/dynamicuser.deb
nsb_install "$NICROUTE_PKG_NEW" /var/tmp/pkg/new.deb
printf '# test: veths are not managed by default\n[Interfaces]\nManage=eth*\n' |
    nsb_write /etc/nicroute/nicroute.conf.d/50-test.conf
nsb_netns
pkg_boot

set +e

# 1. The DynamicUser= package, eth0 down at first: eth1 takes the first slot, eth0 the second
# when it comes up, the reverse of the order a start without state gives them (by link index).
ip -n "$NSB_NS" link set eth0 down
out=$(apt_ct install --no-install-recommends /var/tmp/pkg/dynamicuser.deb 2>&1)
rc=$?
if ((rc == 0)) && [[ $(in_ct dpkg-query -W -f='${Status} ${Version}' nicroute) == "install ok installed $old_version" ]] &&
    wait_for 20 is_active && wait_for 15 eth1_rule; then
    ok "apt-get install ./$(basename "$NICROUTE_PKG_DYNAMICUSER") with eth0 down: active ($(prop StatusText)), eth1's rule in"
else
    not_ok "install of $old_version (exit $rc), active ($(prop ActiveState)), eth1's rule"
    tail -n 20 <<<"$out" | indent
    diagnose
fi
ip -n "$NSB_NS" link set eth0 up
ip -n "$NSB_NS" route replace default via 10.10.10.1 dev eth0
if wait_for 15 rules_ok; then
    ok "eth0 up: rules for both addresses: $(nicroute_rules | grep -E 'from [0-9]' | tr -s ' \t' ' ' | paste -sd ';')"
else
    not_ok "eth0 up: rules for both addresses"
    nicroute_rules | indent
fi
pid=$(prop MainPID)
uid=$(in_ct awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
if [[ $(prop DynamicUser) == yes && $uid =~ ^[0-9]+$ ]] && ((uid >= 61184 && uid <= 65519)) &&
    ! in_ct getent passwd nicroute >/dev/null &&
    [[ $(in_ct readlink /var/lib/nicroute) == private/nicroute ]] && in_ct test -s /var/lib/private/nicroute/slots; then
    ok "the old daemon runs as a dynamic user (uid $uid, in systemd's range 61184-65519), no user nicroute yet; state in /var/lib/private/nicroute behind /var/lib/nicroute"
else
    not_ok "the old daemon as a dynamic user: DynamicUser=$(prop DynamicUser), uid $uid, /var/lib/nicroute -> $(in_ct readlink /var/lib/nicroute)"
fi
tables_before=$(tables)
slots_before=$(in_ct cat /var/lib/private/nicroute/slots)
rules_before=$(nicroute_rules | sort)
t0=$(table_of eth0)
t1=$(table_of eth1)
if [[ $t0 =~ ^[0-9]+$ && $t1 =~ ^[0-9]+$ ]] && ((t1 < t0)) && [[ $(grep -cvE '^(#|$)' <<<"$slots_before") == 2 ]]; then
    ok "slots recorded: eth1 table $t1, eth0 table $t0 (not the order a start without state gives); slots file: $(grep -vE '^(#|$)' <<<"$slots_before" | paste -sd ';')"
else
    not_ok "eth1 in the first slot, eth0 in the second, two slots recorded (tables: eth0 $t0, eth1 $t1)"
    indent <<<"$tables_before"
    indent <<<"$slots_before"
fi

# 2. The upgrade. The journal from here on is checked below.
cursor=$(in_ct journalctl -q -n 1 --show-cursor | sed -n 's/^-- cursor: //p')
pkg_upgrade_checked /var/tmp/pkg/new.deb "$old_version" "$new_version"
dpkg_warnings=$(grep -iE 'warning|error' <<<"$PKG_UPGRADE_OUT" || true)
if [[ -z $dpkg_warnings ]]; then
    ok "the upgrade printed no warning or error"
else
    not_ok "the upgrade printed warnings"
    indent <<<"$dpkg_warnings"
fi

# 3. After: the user, the state, the tables, the journal.
pid=$PKG_PID_AFTER
users=$(in_ct ps -o user= -C nicrouted | tr -d ' ')
uids=$(in_ct awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$pid/status")
pw=$(in_ct getent passwd nicroute)
static_uid=$(cut -d: -f3 <<<"$pw")
if [[ $users == nicroute && $static_uid =~ ^[0-9]+$ && $uids == "$static_uid $static_uid $static_uid $static_uid" ]] &&
    ((static_uid < 1000)) && [[ $(prop DynamicUser) == no ]]; then
    ok "the new daemon (PID $pid) runs as the static system user nicroute: ps says nicroute, /proc/$pid/status Uid $uids, getent $pw"
else
    not_ok "the new daemon runs as the static user nicroute: ps '$users', Uid '$uids', getent '$pw', DynamicUser=$(prop DynamicUser)"
fi
owners=$(in_ct stat -c %U /var/lib/nicroute /var/lib/nicroute/slots | sort -u)
slots_after=$(in_ct cat /var/lib/nicroute/slots)
if in_ct test -d /var/lib/nicroute && ! in_ct test -L /var/lib/nicroute && ! in_ct test -e /var/lib/private/nicroute &&
    [[ $owners == nicroute && -n $slots_after && $slots_after == "$slots_before" ]]; then
    ok "state moved back: /var/lib/nicroute a directory owned by nicroute, no /var/lib/private/nicroute, the slots file unchanged"
else
    not_ok "state moved back to /var/lib/nicroute ($(in_ct stat -c '%F %U' /var/lib/nicroute)), /var/lib/private/nicroute gone ($(in_ct ls -d /var/lib/private/nicroute 2>&1)), owners '$owners', slots kept"
    diff <(echo "$slots_before") <(echo "$slots_after") | indent
fi
tables_after=$(tables)
rules_after=$(nicroute_rules | sort)
if [[ -n $tables_before && $tables_after == "$tables_before" && $rules_after == "$rules_before" ]] && route_eth1; then
    ok "the same table per NIC after the upgrade ($(awk '{ print $3 "=" $2 }' <<<"$tables_after" | paste -sd ' ')) and the same $(wc -l <<<"$rules_after") nicroute rules"
else
    not_ok "the same table per NIC and the same rules after the upgrade"
    diff <(echo "$tables_before") <(echo "$tables_after") | indent
    diff <(echo "$rules_before") <(echo "$rules_after") | indent
fi
# The old release shipped two binaries; the new one, one binary with nicroutectl a symlink to it
# (the binary runs the tool argv[0] names): dpkg replaces the old regular file with the link.
ctl_link=$(in_ct readlink /usr/bin/nicroutectl)
if in_ct test -f /usr/bin/nicrouted && ! in_ct test -L /usr/bin/nicrouted && [[ $ctl_link == nicrouted ]] &&
    in_ct nicroutectl --help 2>&1 | grep -q '^USAGE: nicroutectl' && in_ct nicrouted --help 2>&1 | grep -q '^USAGE: nicrouted'; then
    ok "/usr/bin/nicroutectl, a regular file before, is a symlink to nicrouted after the upgrade; both names run their tool"
else
    not_ok "/usr/bin/nicroutectl a symlink to nicrouted after the upgrade (readlink: '$ctl_link'), both names run their tool"
    in_ct ls -l /usr/bin/nicrouted /usr/bin/nicroutectl 2>&1 | indent
fi
# Everything logged at warning or worse since the upgrade began, by anyone (dpkg, systemd,
# sysusers, the old daemon stopping, the new one starting), and what reached the journal
# through syslog(3) from the unit (where the Swift runtime's libraries would complain). One line
# is the old release's own and expected: its daemon ran Swift concurrency on libdispatch, whose
# new worker threads (as when it stops) cannot lower their priority under the unit's filter
# (errno 13); the one-loop daemon has no worker threads (d543c64 dropped package.sh's exception).
old_line="nicrouted\[$PKG_PID_BEFORE\]: Failed to set thread priority for worker thread: pqc=0x[0-9a-f]+ errno=13\$"
journal=$({
    in_ct journalctl -q --no-pager --after-cursor="$cursor" -p warning
    in_ct journalctl -q --no-pager --after-cursor="$cursor" -u nicrouted.service _TRANSPORT=syslog
} || true)
warnings=$(grep -vE "$old_line" <<<"$journal" || true)
old_lines=$(grep -cE "$old_line" <<<"$journal")
if [[ -n $cursor && -z $warnings ]]; then
    ok "no warning in the journal since the upgrade began ($(in_ct journalctl -q --no-pager --after-cursor="$cursor" | wc -l) lines; the old daemon's libdispatch thread-priority line: $old_lines)"
else
    not_ok "the journal since the upgrade has warnings (cursor: ${cursor:-none})"
    indent <<<"$warnings"
fi

nsb_log "checks done in $((SECONDS - T0)) s"
summary
((FAILED == 0))
