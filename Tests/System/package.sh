#!/usr/bin/env bash
# Package test: the .deb's life in a booted Debian under systemd-nspawn with two veth NICs:
# install, upgrade, remove, purge; and the diskimage-builder element's install step. The same
# .deb in each release nicroute supports and tests (NSB_SUITE): bullseye (Debian 11: glibc
# 2.31, systemd 247, the floors), bookworm (Debian 12, systemd 252, the default) and trixie
# (Debian 13, systemd 257, merged /usr).
#
#   sudo NSB_SUITE=bullseye bash Tests/System/package.sh
#
# Builds the packages twice with scripts/build-packages.sh (an "old" build, version V~~old, and
# the current one, V~git...: a newer build), which also runs lintian and compares the .rpm's
# file list with the .deb's; with NICROUTE_PKG_DIR set, into that folder, and a later run with
# the same folder takes them from there (scripts/test.sh builds once for the three releases).
# The .deb's dependencies must name floors no higher than glibc 2.31 and libsystemd 247. Then,
# in the container (eth0 10.10.10.29/24 with the default route, eth1 20.20.20.16/24; veths are
# not managed by default, so a drop-in says Manage=eth*, as a user's would):
#   install  `apt-get install ./old.deb`: the service is enabled and active, its unit read from
#            /usr/lib/systemd/system, the rules for both addresses are in (named "nicroute" by
#            the shipped rt_protos.d file), the kernel routes traffic from eth1's address out of
#            eth1; `systemctl reload` works, and fails with an invalid drop-in while the daemon
#            keeps its rules; with systemd-networkd managing eth1, the preflight names its
#            foreign-rule clean-up when the shipped drop-in is masked and not when it is in place;
#            the journal holds no warning from the daemon's start;
#   upgrade  `apt-get install ./new.deb` while the host polls `ip rule` in the container's
#            namespace and `ip monitor rule` records every change: no poll without both rules,
#            no nicroute rule deleted, the daemon restarted (new PID), no duplicate rule;
#   forward  the container forwards (ip_forward=1): the default ForwardedConnections=auto keeps
#            the nftables table inet nicroute and fwmark rules under the unit; src_valid_mark is
#            1 on eth1 (Debian 11, 12), or (13: nspawn's read-only /proc/sys, which systemd 257's
#            ReadWritePaths= keeps read-only) status and one journal warning say it is not;
#   remove   `apt-get remove`, with an invalid drop-in written just before: the service is gone
#            and no rule or route with protocol 110, no nftables table is left in the kernel; a
#            src_valid_mark the flush cannot put back (nspawn's /proc/sys is read-only to prerm)
#            is named, and kept in the record;
#   purge    `apt-get purge`: no file is left that was not there before the install, none is
#            gone but /etc/nicroute (where the test's own drop-in was), and dpkg printed no
#            warning;
#   DIB      the element's install.d script with DIB_NICROUTE_MANAGE: installs, enables, writes
#            the Manage= drop-in.
#
# Environment:
#   NSB_SUITE                            bullseye, bookworm (default) or trixie
#   NICROUTE_PKG_OLD, NICROUTE_PKG_NEW   use these .deb files instead of building them
#   NICROUTE_PKG_DIR                     build the packages there, or reuse the ones there
#   NSB_KEEP=1, ...                      see lib-nspawn.sh
#
# Prints `ok - ...` / `not ok - ...` per check, ends with `package-SUITE: N passed, M failed`,
# exits non-zero when a check failed. Leaves no namespace, mount, process or work dir behind.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib-nspawn.sh
source "$HERE/lib-nspawn.sh"

CHECKS_LABEL=package-$NSB_SUITE
# shellcheck source-path=SCRIPTDIR source=lib-checks.sh
source "$HERE/lib-checks.sh"
# in_ct, prop, is_active, apt_ct, diagnose, nicroute_rules, rules_ok, route_eth1, pkg_build,
# pkg_upgrade_checked
# shellcheck source-path=SCRIPTDIR source=lib-package.sh
source "$HERE/lib-package.sh"
T0=$SECONDS

networkd_active() { [[ $(in_ct systemctl is-active systemd-networkd.service) == active ]]; }
kernel_objects() {
    { ip -n "$NSB_NS" -4 rule show; ip -n "$NSB_NS" -6 rule show; } | grep -E 'proto (nicroute|110)' || true
    { ip -n "$NSB_NS" -4 route show table all proto 110; ip -n "$NSB_NS" -6 route show table all proto 110; } 2>/dev/null || true
}

# ---- the packages -------------------------------------------------------------------------

nsb_init
if [[ -z ${NICROUTE_PKG_OLD:-} || -z ${NICROUTE_PKG_NEW:-} ]]; then
    base=$(tr -d ' \n' <"$REPO/packaging/VERSION")
    if pkg_build dist-old --version "$base~~old" && NICROUTE_PKG_OLD=$PKG_DEB && old_fresh=$PKG_FRESH &&
        pkg_build dist-new; then
        NICROUTE_PKG_NEW=$PKG_DEB
        ((old_fresh)) && nsb_log "built $(basename "$NICROUTE_PKG_OLD")"
        if ((PKG_FRESH)); then
            ok "build-packages: $(basename "$PKG_DEB") and $(basename "$PKG_RPM"); $(grep -m1 '^# lintian' "$NSB_WORK/build-dist-new.log" | sed 's/^# //'); $(grep -m1 '^# file lists' "$NSB_WORK/build-dist-new.log" | sed 's/^# //')"
            grep -h '^nicroute.*highest GLIBC' "$NSB_WORK/build-dist-new.log" | indent
        else
            ok "packages built by an earlier run: $(basename "$PKG_DEB") and $(basename "$PKG_RPM")"
        fi
    else
        not_ok "build-packages builds the .deb and the .rpm"
        tail -n 30 "$NSB_WORK"/build-*.log | indent
        summary
        exit 1
    fi
fi
# The floors the .deb states (dpkg-shlibdeps, from the symbol versions the binaries use) must
# be met by Debian 11: glibc 2.31, libsystemd0 247. Besides the libraries, only what
# dh_installsysusers adds for the postinst that makes the unit's user (systemd-sysusers).
deps=$(dpkg-deb -f "$NICROUTE_PKG_NEW" Depends)
if [[ $deps =~ ^libc6\ \(\>=\ ([0-9.]+)\),\ libsystemd0\ \(\>=\ ([0-9.]+)\),\ systemd\ \|\ systemd-standalone-sysusers\ \|\ systemd-sysusers$ ]] &&
    dpkg --compare-versions "${BASH_REMATCH[1]}" le 2.31 && dpkg --compare-versions "${BASH_REMATCH[2]}" le 247; then
    ok "the .deb depends on libc6, libsystemd0 and systemd-sysusers only, with floors Debian 11 meets: $deps"
else
    not_ok "the .deb depends on libc6, libsystemd0 and systemd-sysusers only, with floors <= 2.31 and <= 247: $deps"
fi
# One binary for both tools (issue 20: two static binaries made a 34 MB package): nicrouted a
# file, nicroutectl a relative symlink to it; installed, at most 20 MB (Installed-Size is in KiB).
listing=$(dpkg-deb -c "$NICROUTE_PKG_NEW")
daemon=$(awk '$6 == "./usr/bin/nicrouted" { print substr($1, 1, 1) }' <<<"$listing")
ctl=$(awk '$6 == "./usr/bin/nicroutectl" { print substr($1, 1, 1), $7, $8 }' <<<"$listing")
isize=$(dpkg-deb -f "$NICROUTE_PKG_NEW" Installed-Size)
if [[ $daemon == - && $ctl == "l -> nicrouted" && $isize =~ ^[0-9]+$ ]] && ((isize * 1024 <= 20000000)); then
    ok "the .deb ships one binary, /usr/bin/nicrouted, and /usr/bin/nicroutectl -> nicrouted; Installed-Size $isize KiB (at most 20 MB)"
else
    not_ok "the .deb ships /usr/bin/nicrouted and the symlink nicroutectl -> nicrouted ('$daemon', '$ctl'), installed at most 20 MB (Installed-Size $isize KiB)"
fi
old_version=$(dpkg-deb -f "$NICROUTE_PKG_OLD" Version)
new_version=$(dpkg-deb -f "$NICROUTE_PKG_NEW" Version)
dpkg --compare-versions "$new_version" gt "$old_version" || nsb_die "$new_version is not newer than $old_version"

# ---- the container ------------------------------------------------------------------------

TREE=$(nsb_tree)
nsb_stage "$TREE"
nsb_install "$NICROUTE_PKG_OLD" /var/tmp/pkg/old.deb
nsb_install "$NICROUTE_PKG_NEW" /var/tmp/pkg/new.deb
mkdir -p "$NSB_STAGE/var/tmp/dib"
cp -a "$REPO/packaging/dib/nicroute" "$NSB_STAGE/var/tmp/dib/element"
# What an administrator (or an image's own element) puts next to the package's configuration.
printf '# test: veths are not managed by default\n[Interfaces]\nManage=eth*\n' |
    nsb_write /etc/nicroute/nicroute.conf.d/50-test.conf
nsb_netns
ip netns exec "$NSB_NS" sysctl -qw net.ipv4.ip_forward=1
pkg_boot

set +e

# Every file of the system before the package (what purge must return to), less the volatile
# places that change by themselves.
snapshot() {
    in_ct find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \
        -o -path /var/log -o -path /var/cache/man -o -path /var/cache/apt -o -path /var/lib/apt \
        -o -path /var/cache/debconf -o -path /var/lib/systemd/catalog -o -path /var/lib/systemd/timers \
        -o -path /var/lib/dpkg -o -path /var/tmp \) -prune -o -print | sort
}
snapshot >"$NSB_WORK/before.files"

# 1. install
out=$(apt_ct install --no-install-recommends /var/tmp/pkg/old.deb 2>&1)
rc=$?
if ((rc == 0)) && [[ $(in_ct dpkg-query -W -f='${Status} ${Version}' nicroute) == "install ok installed $old_version" ]]; then
    ok "apt-get install ./$(basename "$NICROUTE_PKG_OLD"): installed $old_version"
else
    not_ok "apt-get install of the .deb (exit $rc)"
    tail -n 20 <<<"$out" | indent
fi
enabled=$(in_ct systemctl is-enabled nicrouted.service)
if [[ $enabled == enabled ]] && wait_for 20 is_active; then
    ok "after install: nicrouted.service enabled and active ($(prop StatusText))"
else
    not_ok "after install: enabled ($enabled) and active ($(prop ActiveState))"
    diagnose
fi
if wait_for 15 rules_ok && [[ $(in_ct ip rule show | grep -E 'proto nicroute' | grep -cE 'from [0-9]') == 2 ]]; then
    ok "rules for both addresses, named by the shipped rt_protos.d file: $(in_ct ip rule show | grep nicroute | tr -s ' \t' ' ' | paste -sd ';')"
else
    not_ok "rules for both addresses with proto nicroute (inside the container)"
    in_ct ip rule show | indent
fi
# Forwarded connections: the container forwards (ip_forward=1, set before boot), so with
# ForwardedConnections=auto, the shipped default, the daemon keeps its nftables table (through
# the tree's libnftables1, under the unit's sandbox), fwmark rules and src_valid_mark on the NICs.
# (`nft list tables`: this machine's nft may not decode the rules a newer libnftables wrote.)
nft_table() { ip netns exec "$NSB_NS" nft list tables 2>/dev/null | grep -qx 'table inet nicroute'; }
fwmark_rules() { ip -n "$NSB_NS" rule show | grep -E 'fwmark .* proto (nicroute|110)' || true; }
if wait_for 15 nft_table && [[ $(fwmark_rules | grep -c lookup) -ge 2 ]]; then
    ok "forwarded connections under the unit: table inet nicroute in place, $(fwmark_rules | wc -l) fwmark rules"
else
    not_ok "forwarded connections under the unit: nft table ($(nft_table && echo yes || echo no)), fwmark rules ($(fwmark_rules | grep -c lookup))"
    fwmark_rules | indent
    in_ct nicroutectl status 2>&1 | tail -n 12 | indent
fi
# src_valid_mark (strict rp_filter needs it): set by the daemon, or said not to be. nspawn mounts
# the container's /proc/sys read-only (no private network: --network-namespace-path), so root in
# the container cannot write it. systemd 247's and 252's ReadWritePaths=/proc/sys/net/ipv4/conf
# bind mount makes that subtree writable for the service all the same: 1 on Debian 11 and 12.
# systemd 257's keeps a read-only source read-only: on Debian 13 it stays 0, and the daemon must
# say so: a note on eth1 in `status`, the forwarding reason in `status --json`, one journal
# warning. (Where /proc/sys/net is writable, as on a VM, 257 lets the unit write it:
# docs/platforms.md shows it.)
svm_note='src_valid_mark is 0 here and nicroute could not set it (cannot write /proc/sys/net/ipv4/conf/eth1/src_valid_mark: Read-only file system)'
svm_said() {
    in_ct nicroutectl status | grep -qF "Note: $svm_note" &&
        in_ct nicroutectl status --json | grep -F 'src_valid_mark could not be set on ' | grep -qF 'eth1 (cannot write'
}
svm_installed=$(ip netns exec "$NSB_NS" sysctl -n net.ipv4.conf.eth1.src_valid_mark)
if [[ $svm_installed == 1 ]] && in_ct grep -qx eth1 /var/lib/nicroute/src_valid_mark; then
    ok "src_valid_mark=1 on eth1 under the unit, recorded in /var/lib/nicroute/src_valid_mark"
elif [[ $NSB_SUITE == trixie ]] && wait_for 5 svm_said &&
    [[ $(in_ct journalctl -q --no-pager -u nicrouted.service -p warning _COMM=nicrouted | grep -cF "eth1: $svm_note") == 1 ]]; then
    ok "src_valid_mark stays 0 on eth1 (nspawn's read-only /proc/sys under systemd 257): status and status --json name it, one journal warning"
else
    not_ok "src_valid_mark on eth1 under the unit: $svm_installed, and status does not name the problem"
    in_ct nicroutectl status 2>&1 | grep -E 'Note|Forward' | indent
    in_ct journalctl -q --no-pager -u nicrouted.service -p warning _COMM=nicrouted | indent
fi
if wait_for 15 route_eth1; then
    ok "ip route get 192.0.2.1 from 20.20.20.16: $(ip -n "$NSB_NS" route get 192.0.2.1 from 20.20.20.16 | head -n1)"
else
    not_ok "traffic from 20.20.20.16 leaves via 20.20.20.1 dev eth1: $(ip -n "$NSB_NS" route get 192.0.2.1 from 20.20.20.16 | head -n1)"
fi
if out=$(in_ct nicroutectl status 2>&1) && grep -q eth1 <<<"$out" && in_ct timeout 30 systemctl reload nicrouted.service; then
    ok "nicroutectl status shows the NICs; systemctl reload (ExecReload=nicroutectl reconfigure) succeeds"
else
    not_ok "nicroutectl status and systemctl reload"
    indent <<<"$out"
fi
# An invalid drop-in: the reload fails, the daemon keeps its last good configuration and rules.
printf '[Routing]\nTables=10-300\n' | in_ct tee /etc/nicroute/nicroute.conf.d/99-invalid.conf >/dev/null
if ! in_ct timeout 30 systemctl reload nicrouted.service >/dev/null 2>&1 && is_active && rules_ok &&
    in_ct journalctl -q --no-pager -u nicrouted.service | grep -q '99-invalid.conf:2'; then
    ok "systemctl reload with an invalid drop-in fails (99-invalid.conf:2 in the journal); still active, rules in place"
else
    not_ok "systemctl reload with an invalid drop-in fails and the daemon keeps its rules"
    diagnose
fi
in_ct rm -f /etc/nicroute/nicroute.conf.d/99-invalid.conf
in_ct timeout 30 systemctl reload nicrouted.service
# The unit under this systemd: `systemd-analyze verify` in the booted system. Directives newer
# than this systemd are ignored with a notice; those listed in units/nicrouted.service's header
# as ignorable (PrivateIPC=, systemd 248: on 247 the service shares the host's IPC namespace,
# and nicrouted uses no System V IPC or POSIX message queue) are allowed, nothing else.
verify=$(in_ct systemd-analyze verify --man=no /usr/lib/systemd/system/nicrouted.service 2>&1 |
    grep -vE "Unknown key name 'PrivateIPC' in section 'Service', ignoring|Unknown key 'PrivateIPC'" || true)
if [[ -z $verify ]]; then
    ok "systemd-analyze verify in the booted system: nothing but the documented ignorable directives ($(in_ct systemctl --version | head -n1))"
else
    not_ok "systemd-analyze verify in the booted system"
    indent <<<"$verify"
fi
# The package ships the unit in /usr/lib/systemd/system and systemd reads it from there (on a
# merged-/usr system systemd may name it through /lib, the same directory).
fragment=$(prop FragmentPath)
if in_ct dpkg-query -L nicroute | grep -qx /usr/lib/systemd/system/nicrouted.service &&
    [[ -n $fragment && $(in_ct realpath "$fragment") == $(in_ct realpath /usr/lib/systemd/system/nicrouted.service) ]]; then
    ok "the unit is shipped in /usr/lib/systemd/system and read from there (FragmentPath $fragment)"
else
    not_ok "the unit is shipped in and read from /usr/lib/systemd/system (FragmentPath: $fragment)"
fi
# Nothing the daemon logged at warning level or worse since it started (priority 0-4, but the
# invalid drop-in above), and nothing that reached the journal by syslog(3) (nicroute itself
# writes with sd_journal_sendv): that is where the Swift runtime's libraries would complain
# (libdispatch's "Failed to set thread priority" line is gone since nicrouted runs on one
# sd-event loop without worker threads). On Debian 13 the src_valid_mark warnings (one per NIC,
# asserted above) are expected.
warnings=$({
    in_ct journalctl -q --no-pager -u nicrouted.service -p warning _COMM=nicrouted
    in_ct journalctl -q --no-pager -u nicrouted.service _TRANSPORT=syslog
} | grep -vE '99-invalid\.conf' |
    grep -vE 'forwarded connections: eth[01]: src_valid_mark is 0 here and nicroute could not set it \(cannot write [^)]*: Read-only file system\)' || true)
if [[ -z $warnings ]]; then
    ok "no warning in the daemon's journal since it started"
else
    not_ok "the daemon's journal has warnings"
    indent <<<"$warnings"
fi
if in_ct man -w nicroute.conf >/dev/null 2>&1 && in_ct test -f /usr/share/bash-completion/completions/nicroutectl; then
    ok "man nicroute.conf(5) and the bash completion are installed"
else
    not_ok "man nicroute.conf(5) and the bash completion are installed"
fi

# The shipped networkd drop-in, with networkd managing eth1. What is checked is that the file
# lies where networkd reads its settings: masked, the preflight (which reads them as networkd
# does) names ManageForeignRoutingPolicyRules=yes; shipped, it has no finding. Whether networkd
# deletes the rules is recorded (`ip monitor rule`) but not asserted: networkd 252 under
# systemd-nspawn was not seen deleting them even with the drop-in masked.
printf '[Match]\nName=eth1\n\n[Network]\nAddress=20.20.20.16/24\n' |
    in_ct tee /etc/systemd/network/50-eth1.network >/dev/null
in_ct mkdir -p /etc/systemd/networkd.conf.d
# networkd_run LOG: (re)start networkd while `ip monitor rule` records; prints the number of
# nicroute rules deleted.
networkd_run() {
    local mon
    ip -n "$NSB_NS" monitor rule >"$1" 2>&1 &
    mon=$!
    sleep 0.2
    in_ct systemctl restart systemd-networkd.service && wait_for 10 networkd_active
    sleep 2
    kill "$mon" 2>/dev/null
    wait "$mon" 2>/dev/null
    grep -cE '^Deleted.*proto (nicroute|110)' "$1"
}
finding() { in_ct nicroutectl status 2>&1 | grep -m1 -o 'systemd-networkd removes foreign routing policy rules' || true; }
in_ct ln -sf /dev/null /etc/systemd/networkd.conf.d/80-nicroute.conf
deleted_masked=$(networkd_run "$NSB_WORK/networkd-monitor-masked.log")
masked_finding=$(finding)
in_ct systemctl stop systemd-networkd.service systemd-networkd.socket
in_ct rm -f /etc/systemd/networkd.conf.d/80-nicroute.conf
deleted=$(networkd_run "$NSB_WORK/networkd-monitor.log")
shipped_finding=$(finding)
if [[ -n $masked_finding && -z $shipped_finding ]] && rules_ok; then
    ok "networkd drop-in in effect: masked, the preflight reports '$masked_finding'; shipped, no finding (rules deleted by networkd: $deleted_masked masked, $deleted shipped)"
else
    not_ok "networkd drop-in: finding masked '${masked_finding:-none}', shipped '${shipped_finding:-none}'"
fi
in_ct systemctl stop systemd-networkd.service systemd-networkd.socket
in_ct rm -f /etc/systemd/network/50-eth1.network
in_ct rmdir /etc/systemd/networkd.conf.d 2>/dev/null

rules_before_upgrade=$(nicroute_rules | wc -l)

# 2. upgrade, with the rules watched all along (lib-package.sh): upgraded, restarted, no poll
# without both rules, no nicroute rule deleted.
pkg_upgrade_checked /var/tmp/pkg/new.deb "$old_version" "$new_version"
if [[ $(nicroute_rules | grep -cE 'from [0-9]') == 2 && $(nicroute_rules | wc -l) == "$rules_before_upgrade" ]] && route_eth1; then
    ok "after the upgrade: exactly 2 nicroute address rules, $rules_before_upgrade rules in all as before (adopted, no duplicates), routing right"
else
    not_ok "after the upgrade: exactly 2 nicroute rules"
    nicroute_rules | indent
fi

# 3. remove: the service stops and nothing nicroute installed stays in the kernel, even with a
# configuration file the administrator broke just before (the flush does not need it).
printf '[Routing]\nTables=10-300\n' | in_ct tee /etc/nicroute/nicroute.conf.d/99-broken.conf >/dev/null
out=$(apt_ct remove nicroute 2>&1)
rc=$?
left=$(kernel_objects)
remove_warnings=$(grep -iE 'warning|error' <<<"$out" || true)
if ! nft_table; then
    ok "apt-get remove: no nftables table inet nicroute left"
else
    not_ok "apt-get remove takes the nftables table inet nicroute out"
fi
# src_valid_mark after the removal. nspawn's /proc/sys is read-only to prerm's one-shot flush
# (only the unit's ReadWritePaths= made it writable for the daemon), so where the daemon set it
# (Debian 11, 12) the flush cannot put it back to 0: it must say so and keep the record for the
# next flush (on a VM it can: Tests/Scenario/forward.sh shows the one-shot flush doing it).
# Where the daemon could not set it (13), there is nothing to put back and nothing to say.
svm_removed=$(ip netns exec "$NSB_NS" sysctl -n net.ipv4.conf.eth1.src_valid_mark)
svm_msg='cannot put back net.ipv4.conf.eth1.src_valid_mark=0: Read-only file system; /var/lib/nicroute/src_valid_mark keeps it for the next flush'
if [[ $svm_installed == 1 ]]; then
    if [[ $svm_removed == 1 ]] && grep -qF "nicroutectl: $svm_msg" <<<"$out" && in_ct grep -qx eth1 /var/lib/nicroute/src_valid_mark; then
        ok "remove: the flush says it cannot put src_valid_mark back on eth1 (read-only /proc/sys) and keeps the record"
    else
        not_ok "remove: src_valid_mark $svm_removed on eth1, the flush's message or the record missing"
        grep -iE 'src_valid_mark|flush' <<<"$out" | indent
    fi
elif [[ $svm_removed == 0 ]] && ! grep -qF src_valid_mark <<<"$out" && ! in_ct test -e /var/lib/nicroute/src_valid_mark; then
    ok "remove: src_valid_mark was never set, nothing to put back, nothing said"
else
    not_ok "remove: src_valid_mark $svm_removed on eth1 (never set)"
    grep -iE 'src_valid_mark|flush' <<<"$out" | indent
fi
if ((rc == 0)) && [[ -z $left && -z $remove_warnings ]] && ! in_ct test -e /usr/bin/nicrouted; then
    ok "apt-get remove (with an invalid drop-in in place): no rule or route with protocol 110 left in the kernel, binaries gone"
else
    not_ok "apt-get remove (exit $rc) leaves no nicroute rule or route, with no warning"
    indent <<<"$left"
    indent <<<"$remove_warnings"
    tail -n 10 <<<"$out" | indent
fi
if [[ $(in_ct systemctl is-active nicrouted.service) != active ]] && route_main=$(ip -n "$NSB_NS" route get 192.0.2.1 | head -n1) &&
    [[ $route_main == *"via 10.10.10.1 dev eth0"* ]]; then
    ok "after remove: the service is stopped; the main table is as before ($route_main)"
else
    not_ok "after remove: service stopped, main table intact"
fi

# 4. purge: no file that was not there before.
out=$(apt_ct purge nicroute 2>&1)
rc=$?
snapshot >"$NSB_WORK/after.files"
added=$(comm -13 "$NSB_WORK/before.files" "$NSB_WORK/after.files")
# (/.nicroute-tree-complete marks the test's cached tree.)
named=$(in_ct find / -xdev \( -path /proc -o -path /sys -o -path /var/log -o -path /var/tmp \) -prune -o -name '*nicroute*' \
    ! -path /.nicroute-tree-complete -print)
# What purge took away that was there before: only /etc/nicroute (the administrator's drop-in
# this test wrote there: purge removes nicroute's whole configuration directory, documented).
removed=$(comm -23 "$NSB_WORK/before.files" "$NSB_WORK/after.files" | grep -vE '^/etc/nicroute(/|$)' || true)
# One warning is expected on Debian 11 with merged /usr (what debootstrap and the installer
# make): there no other package owns /usr/lib/systemd/system (systemd's units are registered
# under /lib/systemd/system, the same directory), so dpkg, removing the last owner it knows of,
# tries to remove the directory and finds it full. Shipped in /lib/systemd/system instead, the
# same happens on Debian 13 (where nothing is registered under /lib any more); /usr/lib is where
# Debian is going and where the .rpm has it (docs/platforms.md).
explained=$(grep -cF "directory '/usr/lib/systemd/system' not empty so not removed" <<<"$out" || true)
purge_warnings=$(grep -iE 'warning|error' <<<"$out" |
    { if [[ $NSB_SUITE == bullseye ]]; then grep -vF "directory '/usr/lib/systemd/system' not empty so not removed"; else cat; fi; } || true)
if ((rc == 0)) && [[ -z $added && -z $named && -z $removed && -z $purge_warnings ]] && ! in_ct dpkg-query -W nicroute >/dev/null 2>&1; then
    ok "apt-get purge: no warning$( ((explained)) && echo " but the explained one about /usr/lib/systemd/system"), no file left behind, none taken that was there before but /etc/nicroute ($(wc -l <"$NSB_WORK/after.files") paths compared)"
else
    not_ok "apt-get purge (exit $rc) leaves files behind or warns"
    indent <<<"$purge_warnings"
    printf '%s\n' "$added" "$named" | sed '/^$/d; s/^/left: /' | indent
    printf '%s\n' "$removed" | sed '/^$/d; s/^/removed: /' | indent
fi

# 5. The diskimage-builder element's install step (what DIB runs in the image's chroot), here in
# the booted system: the package from the directory extra-data.d fills, Manage= from the
# environment.
in_ct mkdir -p /var/tmp/dib/in_target
in_ct cp /var/tmp/pkg/new.deb "/var/tmp/dib/in_target/nicroute_${new_version}_amd64.deb"
out=$(NSB_EXEC_TIMEOUT=120 in_ct env NICROUTE_PACKAGE_DIR=/var/tmp/dib/in_target DIB_NICROUTE_MANAGE='eth*' \
    bash /var/tmp/dib/element/install.d/50-nicroute 2>&1)
rc=$?
if ((rc == 0)) && [[ $(in_ct systemctl is-enabled nicrouted.service) == enabled ]] &&
    in_ct grep -qx 'Manage=eth\*' /etc/nicroute/nicroute.conf.d/50-diskimage-builder.conf && wait_for 15 rules_ok; then
    ok "diskimage-builder element install.d: installed $new_version, enabled, Manage= drop-in written, rules in"
else
    not_ok "diskimage-builder element install.d (exit $rc)"
    tail -n 15 <<<"$out" | indent
fi

nsb_log "checks done in $((SECONDS - T0)) s"
summary
((FAILED == 0))
