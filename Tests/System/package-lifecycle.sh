#!/usr/bin/env bash
# Package lifecycle test (issue 22): what dpkg does to the .deb beyond install, upgrade, remove
# and purge (package.sh), checked with the kernel as the oracle (`ip rule`, `ip route show table
# all proto 110` in the container's network namespace, read from the host), in a booted Debian
# under systemd-nspawn with veth NICs (lib-nspawn.sh: eth0 10.10.10.29/24, eth1 20.20.20.16/24),
# one boot per release, the five parts in a row:
#
#   1. downgrade, upgrade  `dpkg -i previous.deb` over the current package, then `dpkg -i
#            current.deb` again, each while the host polls the rules every few milliseconds and
#            `ip monitor rule` records every change: the version installed, the daemon restarted
#            (new MainPID) and active, no poll without both rules and no nicroute rule deleted,
#            the same slots file, the same table per NIC (nicroutectl status --json), the same
#            rules. The previous package is 1ef97fb's (the last DynamicUser= build, already
#            built and cached for upgrade-dynamicuser.sh by scripts/build-old-packages.sh, so no
#            build of its own): the oldest daemon the current one must still hand over to and
#            take over from, across the state directory's move to /var/lib/private and back.
#   2. reinstall   a local edit of the conffile /etc/nicroute/nicroute.conf, then `dpkg -i` of
#            the installed .deb again (stdin closed, so a conffile prompt would fail it): the
#            daemon restarted and active, rules throughout, the edit kept byte for byte, no
#            .dpkg-new/.dpkg-dist/.dpkg-old beside it.
#   3. interrupted configure  the upgrade from the previous package again, twice, with dpkg and
#            everything its postinst started killed (SIGKILL, the postinst's process tree frozen
#            first): once the moment its postinst starts, once while the postinst's `systemctl
#            restart` waits for the new daemon (systemd carries on with the restart job). That is
#            what a killed session, an OOM kill or a crash of the administrator's tool does:
#            "dpkg was interrupted". The package must be left half-configured and named by `dpkg
#            --audit`; `dpkg --configure -a` then runs postinst again: installed, enabled,
#            restarted (a new daemon again) and active, rules throughout (the old daemon keeps them
#            while the configuration waits), slots and tables kept, the conffile edit kept.
#            (Not a failing policy-rc.d or deb-systemd-invoke: the snippets ignore their failure,
#            and it would not be dpkg's interrupted state; and not `dpkg --unpack` then
#            `--configure`: that is apt's ordinary way, not an interruption.)
#   4. remove during a large pass  NICS (80) more veth NICs with ADDRS (50) addresses each are
#            added while the daemon is stopped; it is started without waiting (`systemctl start
#            --no-block`), and frozen (SIGSTOP from the host) as soon as the first rule of the new
#            NICs is in the kernel; then `dpkg -r nicroute`: prerm's `systemctl stop` (SIGTERM,
#            SIGCONT) lands in the daemon's first pass, the flush after it. Frozen, because the
#            pass is quicker than dpkg: 4,000 rules in about 0.1 s (READY 0.25 s after the start),
#            while dpkg -r takes about 0.5 s to reach prerm's stop, so a plain `start; dpkg -r`
#            removes after the pass. After: nothing with protocol 110 in the kernel (rules, routes
#            in every table), no nicrouted process, the unit gone, dpkg printed no warning.
#   5. purge after a failed remove  /usr is made read-only in the container (a bind mount, as
#            on systems that mount /usr read-only) and `dpkg -r` fails where dpkg deletes the
#            package's files (prerm has run: the daemon stopped, its rules flushed), leaving the
#            package half-installed; /usr writable again, `dpkg --purge`: dpkg knows no file of
#            the package (dpkg -L), none of the .deb's files is on disk, /etc/nicroute,
#            /var/lib/nicroute, /run/nicroute, the unit and its enablement link, the nicroutectl
#            symlink are gone, no file named *nicroute*, nothing with protocol 110 in the
#            kernel, no daemon. (The prerm itself cannot be made to fail honestly: it ignores a
#            failed stop, as debhelper's snippet does, and a failed flush, which it reports.)
#
#   sudo bash Tests/System/package-lifecycle.sh                        # Debian 11, 12, 13
#   sudo NSB_SUITE=bookworm bash Tests/System/package-lifecycle.sh     # one release
#
# Environment:
#   NSB_SUITE                 one release (bullseye, bookworm, trixie); unset: the three in turn
#   NICROUTE_PKG_DIR          reuse (or build) the current packages in DIR/dist-new, as package.sh
#   NICROUTE_PKG_NEW          the current .deb instead of building it
#   NICROUTE_PKG_PREVIOUS     the previous .deb instead of 1ef97fb's
#   NICROUTE_PREVIOUS_COMMIT  build the previous package of this commit (build-old-packages.sh)
#   NICROUTE_LIFECYCLE_NICS, NICROUTE_LIFECYCLE_ADDRS  part 4's size (80 NICs x 50 addresses)
#   NSB_KEEP=1, ...           see lib-nspawn.sh
#
# Prints `ok - ...` / `not ok - ...` per check, `package-lifecycle-SUITE: N passed, M failed`
# per release and, when it ran the releases itself, `package-lifecycle: N passed, M failed`;
# exits non-zero when a check failed. Leaves no namespace, mount, process or work dir behind.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

# ---- the three releases in turn ----------------------------------------------------------

if [[ -z ${NSB_SUITE:-} ]]; then
    [[ $(id -u) -eq 0 ]] || { echo "package-lifecycle: run as root" >&2; exit 1; }
    # The current packages are built once, by the first release's run, into a folder the runs
    # share (scripts/test.sh passes the package stages' own).
    if [[ -z ${NICROUTE_PKG_DIR:-} ]]; then
        NICROUTE_PKG_DIR=$(mktemp -d /var/tmp/nicroute-lifecycle-pkgs.XXXXXX)
        trap 'rm -rf "$NICROUTE_PKG_DIR"' EXIT
    fi
    export NICROUTE_PKG_DIR
    passed=0 failed=0 times=()
    for suite in bullseye bookworm trixie; do
        start=$SECONDS
        out=$(mktemp)
        NSB_SUITE=$suite bash "$0" 2>&1 | tee "$out" || true
        line=$(grep -E "^package-lifecycle-$suite: [0-9]+ passed, [0-9]+ failed" "$out" | tail -n 1 || true)
        rm -f "$out"
        if [[ $line =~ :\ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
            passed=$((passed + BASH_REMATCH[1]))
            failed=$((failed + BASH_REMATCH[2]))
        else
            echo "not ok - Debian $suite: the run ended without its summary"
            failed=$((failed + 1))
        fi
        times+=("$suite $((SECONDS - start)) s")
    done
    printf '# time per release: %s\n' "$(printf '%s, ' "${times[@]}" | sed 's/, $//')"
    echo "package-lifecycle: $passed passed, $failed failed"
    ((failed == 0))
    exit
fi

# ---- one release ----------------------------------------------------------------------------

# shellcheck source-path=SCRIPTDIR source=lib-nspawn.sh
source "$HERE/lib-nspawn.sh"
CHECKS_LABEL=package-lifecycle-$NSB_SUITE
# shellcheck source-path=SCRIPTDIR source=lib-checks.sh
source "$HERE/lib-checks.sh"
# in_ct, prop, is_active, diagnose, nicroute_rules, rules_ok, route_eth1, pkg_build, pkg_boot
# shellcheck source-path=SCRIPTDIR source=lib-package.sh
source "$HERE/lib-package.sh"
T0=$SECONDS

PREVIOUS_COMMIT=${NICROUTE_PREVIOUS_COMMIT:-1ef97fb}
NICS=${NICROUTE_LIFECYCLE_NICS:-80}
ADDRS=${NICROUTE_LIFECYCLE_ADDRS:-50}
((NICS >= 1 && NICS <= 200 && ADDRS >= 1 && ADDRS <= 240)) || nsb_die "NICROUTE_LIFECYCLE_NICS 1-200, NICROUTE_LIFECYCLE_ADDRS 1-240"

# dpkg in the container, stdin closed (a prompt fails instead of waiting), no pager, no debconf.
dpkg_ct() { NSB_EXEC_TIMEOUT=180 in_ct env DEBIAN_FRONTEND=noninteractive dpkg "$@" </dev/null; }
status_of() { in_ct dpkg-query -W -f='${Status} ${Version}' nicroute 2>/dev/null; }
# MAC TABLE NAME per managed NIC, from the daemon's status, sorted.
tables() { in_ct nicroutectl status --json | jq -r '.nics[] | "\(.mac) \(.table) \(.name)"' | sort; }
# The slot lines of the state file (through the /var/lib/nicroute link under DynamicUser=).
slots() { in_ct cat /var/lib/nicroute/slots 2>/dev/null | grep -vE '^(#|$)'; }
# Everything with protocol 110 in the container's kernel: rules (v4, v6), routes in every table.
kernel_objects() {
    { ip -n "$NSB_NS" -4 rule show; ip -n "$NSB_NS" -6 rule show; } | grep -E 'proto (nicroute|110)' || true
    { ip -n "$NSB_NS" -4 route show table all proto 110; ip -n "$NSB_NS" -6 route show table all proto 110; } 2>/dev/null || true
}
# nicrouted processes in the container (its own PID namespace: only this container's).
daemons() { in_ct ps -e -o pid=,comm= | awk '$2 == "nicrouted" { print $1 }'; }
# The dpkg output's warnings and errors, less the lines given as extended regexps.
warnings_in() {
    local text=$1
    shift
    grep -iE 'warning|error' <<<"$text" | { if (($#)); then grep -vE "$(IFS='|'; echo "$*")"; else cat; fi; } || true
}

# The state a step must keep: the slots file, the table per NIC, the rules.
save_state() {
    STATE_SLOTS=$(slots)
    STATE_TABLES=$(tables)
    STATE_RULES=$(nicroute_rules | sort)
}
state_kept() {
    [[ -n $STATE_SLOTS && -n $STATE_TABLES && $(slots) == "$STATE_SLOTS" && $(tables) == "$STATE_TABLES" &&
        $(nicroute_rules | sort) == "$STATE_RULES" ]]
}
state_diff() {
    diff <(echo "$STATE_SLOTS") <(slots) | sed 's/^/slots: /' | indent
    diff <(echo "$STATE_TABLES") <(tables) | sed 's/^/tables: /' | indent
    diff <(echo "$STATE_RULES") <(nicroute_rules | sort) | sed 's/^/rules: /' | indent
}
tables_line() { awk '{ print $3 "=" $2 }' <<<"$STATE_TABLES" | paste -sd ' '; }

# watch_start / watch_stop: the host polls the rules every few milliseconds (both addresses'
# rules there?) and `ip monitor rule` records every change, from watch_start on. watch_stop
# succeeds when more than 20 polls ran, none without both rules, and no nicroute rule was
# deleted; WATCH says what it saw.
watch_start() {
    rm -f "$NSB_WORK/watch-done" "$NSB_WORK/watch-polls"
    ip -n "$NSB_NS" monitor rule >"$NSB_WORK/watch-monitor.log" 2>&1 &
    WATCH_MON=$!
    (
        polls=0 gaps=0
        end=$((SECONDS + 400))
        while [[ ! -f $NSB_WORK/watch-done ]] && ((SECONDS < end)); do
            polls=$((polls + 1))
            rules_ok || gaps=$((gaps + 1))
            sleep 0.005
        done
        echo "$polls $gaps" >"$NSB_WORK/watch-polls"
    ) &
    WATCH_POLLER=$!
    sleep 0.3
}
watch_stop() {
    local polls gaps deleted
    touch "$NSB_WORK/watch-done"
    wait "$WATCH_POLLER"
    kill "$WATCH_MON" 2>/dev/null
    wait "$WATCH_MON" 2>/dev/null
    read -r polls gaps <"$NSB_WORK/watch-polls"
    deleted=$(grep -cE '^Deleted.*proto (nicroute|110)' "$NSB_WORK/watch-monitor.log")
    WATCH="$polls polls, $gaps without both rules; $deleted nicroute rules deleted (ip monitor rule)"
    ((polls > 20 && gaps == 0 && deleted == 0))
}
watch_log() { grep -E '^Deleted' "$NSB_WORK/watch-monitor.log" | head -n 10 | indent; }

# settle: after a dpkg step, until the service is active with both rules (bounded), and a
# moment more for the poller.
settle() {
    wait_for 30 is_active
    wait_for 15 rules_ok
    sleep 1
}

# checked_dpkg WHAT VERSION [ALLOWED-WARNING-RE...] -- DPKG-ARGS...: runs dpkg while watched;
# four checks: the package installed at VERSION with no other warning, the daemon restarted and
# active, the rules throughout, the state kept.
checked_dpkg() {
    local what=$1 version=$2 allowed=() out rc pid_before pid_after warn
    shift 2
    while [[ $1 != -- ]]; do allowed+=("$1"); shift; done
    shift
    pid_before=$(prop MainPID)
    watch_start
    out=$(dpkg_ct "$@" 2>&1)
    rc=$?
    settle
    watch_stop
    local watched=$?
    warn=$(warnings_in "$out" "${allowed[@]}")
    if ((rc == 0)) && [[ $(status_of) == "install ok installed $version" && -z $warn ]]; then
        ok "$what: dpkg $*: installed $version, no unexpected warning"
    else
        not_ok "$what: dpkg $* (exit $rc): $(status_of)"
        indent <<<"$warn"
        tail -n 15 <<<"$out" | indent
    fi
    pid_after=$(prop MainPID)
    if [[ $pid_after =~ ^[1-9][0-9]*$ && $pid_after != "$pid_before" ]] && is_active; then
        ok "$what: the daemon restarted (MainPID $pid_before -> $pid_after) and is active"
    else
        not_ok "$what: the daemon restarted and is active (MainPID $pid_before -> $pid_after, $(prop ActiveState))"
        diagnose
    fi
    if ((watched == 0)); then
        ok "$what: the rules in place throughout: $WATCH"
    else
        not_ok "$what: the rules in place throughout: $WATCH"
        watch_log
    fi
    if state_kept; then
        ok "$what: slots kept ($(wc -l <<<"$STATE_SLOTS") lines), the same table per NIC ($(tables_line)), the same $(wc -l <<<"$STATE_RULES") rules"
    else
        not_ok "$what: slots, tables per NIC and rules kept"
        state_diff
    fi
}

# ---- the packages -------------------------------------------------------------------------

nsb_init
command -v jq >/dev/null || nsb_die "jq is needed (apt-get install jq; scripts/test.sh installs it)"
if [[ -z ${NICROUTE_PKG_PREVIOUS:-} ]]; then
    if out=$(bash "$REPO/scripts/build-old-packages.sh" "$PREVIOUS_COMMIT" 2>"$NSB_WORK/build-old.log"); then
        NICROUTE_PKG_PREVIOUS=$(grep '\.deb$' <<<"$out")
    else
        not_ok "scripts/build-old-packages.sh $PREVIOUS_COMMIT"
        tail -n 30 "$NSB_WORK/build-old.log" | indent
        summary
        exit 1
    fi
fi
if [[ -z ${NICROUTE_PKG_NEW:-} ]]; then
    if pkg_build dist-new; then
        NICROUTE_PKG_NEW=$PKG_DEB
    else
        not_ok "build-packages builds the current .deb and .rpm"
        tail -n 30 "$NSB_WORK/build-dist-new.log" | indent
        summary
        exit 1
    fi
fi
old_version=$(dpkg-deb -f "$NICROUTE_PKG_PREVIOUS" Version)
new_version=$(dpkg-deb -f "$NICROUTE_PKG_NEW" Version)
dpkg --compare-versions "$old_version" lt "$new_version" || nsb_die "$old_version is not older than $new_version"
nsb_log "previous $old_version ($(basename "$NICROUTE_PKG_PREVIOUS")), current $new_version"

# ---- the container ------------------------------------------------------------------------

TREE=$(nsb_tree)
nsb_stage "$TREE"
nsb_install "$NICROUTE_PKG_PREVIOUS" /var/tmp/pkg/previous.deb
nsb_install "$NICROUTE_PKG_NEW" /var/tmp/pkg/current.deb
printf '# test: veths are not managed by default\n[Interfaces]\nManage=eth*\n' |
    nsb_write /etc/nicroute/nicroute.conf.d/50-test.conf
nsb_netns
pkg_boot

set +e

# ---- 0. the current package, installed ------------------------------------------------------

# eth0 down at first: eth1 takes the first slot, eth0 the second when it comes up, the reverse of
# the order a start without state gives them (by link index): a step that lost the slots file
# would show in the tables.
eth1_rule() { nicroute_rules | grep -qE 'from 20\.20\.20\.16 lookup [0-9]+'; }
table_of() { tables | awk -v n="$1" '$3 == n { print $2 }'; }
ip -n "$NSB_NS" link set eth0 down
out=$(dpkg_ct -i /var/tmp/pkg/current.deb 2>&1)
rc=$?
wait_for 20 is_active && wait_for 15 eth1_rule
ip -n "$NSB_NS" link set eth0 up
ip -n "$NSB_NS" route replace default via 10.10.10.1 dev eth0
t0=$(wait_for 15 rules_ok && table_of eth0)
t1=$(table_of eth1)
if ((rc == 0)) && [[ $(status_of) == "install ok installed $new_version" && $t0 =~ ^[0-9]+$ && $t1 =~ ^[0-9]+$ ]] &&
    ((t1 < t0)) && is_active && rules_ok; then
    save_state
    ok "dpkg -i current.deb with eth0 down, then eth0 up: $new_version installed, active, rules for both addresses; eth1 in table $t1, eth0 in $t0 (not the order a start without slots gives)"
else
    not_ok "dpkg -i current.deb (exit $rc): $(status_of), $(prop ActiveState); eth1 in the first slot, eth0 in the second (eth0 ${t0:-none}, eth1 ${t1:-none})"
    tail -n 15 <<<"$out" | indent
    diagnose
    save_state
fi

# ---- 1. downgrade, then upgrade -------------------------------------------------------------

t=$SECONDS
checked_dpkg "downgrade to $old_version" "$old_version" \
    "^dpkg: warning: downgrading nicroute (from $new_version to $old_version|\\($new_version\\) to \\($old_version\\))\$" \
    -- -i /var/tmp/pkg/previous.deb
checked_dpkg "upgrade again to $new_version" "$new_version" -- -i /var/tmp/pkg/current.deb
nsb_log "1. downgrade and upgrade: $((SECONDS - t)) s"

# ---- 2. reinstall with the conffile edited ----------------------------------------------------

t=$SECONDS
conf=/etc/nicroute/nicroute.conf
# The default written out (same meaning) and a line of the administrator's.
in_ct sed -i 's/^#Tables=10000-10999$/Tables=10000-10999/' "$conf"
echo '# local edit: kept across reinstalls and upgrades (package-lifecycle.sh)' | in_ct tee -a "$conf" >/dev/null
edited=$(in_ct sha256sum "$conf" | cut -d' ' -f1)
if ! in_ct grep -qx 'Tables=10000-10999' "$conf"; then
    not_ok "the shipped $conf has '#Tables=10000-10999' to edit"
fi
checked_dpkg "reinstall" "$new_version" -- -i /var/tmp/pkg/current.deb
leftovers=$(in_ct find /etc/nicroute -name '*.dpkg-*' -o -name '*.ucf-*')
if [[ $(in_ct sha256sum "$conf" | cut -d' ' -f1) == "$edited" && -z $leftovers ]] &&
    in_ct dpkg-query -W -f='${Conffiles}\n' nicroute | grep -qE "^ $conf [0-9a-f]{32}\$"; then
    ok "reinstall: the edited conffile $conf kept byte for byte, still a conffile, no .dpkg-new/.dpkg-dist/.dpkg-old"
else
    not_ok "reinstall: the edited conffile $conf kept (sha256 $edited -> $(in_ct sha256sum "$conf" | cut -d' ' -f1)), no leftovers"
    indent <<<"$leftovers"
    in_ct dpkg-query -W -f='${Conffiles}\n' nicroute | indent
fi
nsb_log "2. reinstall: $((SECONDS - t)) s"

# ---- 3. an upgrade killed in postinst, then dpkg --configure -a -------------------------------

# The killer, in the container: as soon as a process matches $1 (an ERE for pgrep -f) while
# nicroute's postinst runs (the only dpkg in the container), the postinst and whatever it runs
# are frozen (SIGSTOP: nothing more starts), then they and dpkg are killed (SIGKILL). (dpkg
# itself is not stopped: nsenter, its parent, would stop itself when its child stops.) The
# patterns are written so that they do not match their own text in the killer's command line.
# It gives up when /var/tmp/killer.stop appears (dpkg ended without a match).
killer='
end=$(($(date +%s) + 120))
until pgrep -f "$1" >/dev/null && p=$(pgrep -o -f "/var/lib/dpkg/info/nicroute[.]postinst configure"); do
    [ "$(date +%s)" -lt "$end" ] && [ ! -e /var/tmp/killer.stop ] || { echo "nothing matched $1 while dpkg ran"; exit 1; }
    sleep 0.002
done
d=$(ps -o ppid= -p "$p" | tr -d " ")
[ "$(ps -o comm= -p "$d")" = dpkg ] || { echo "the postinst parent $d is not dpkg"; exit 1; }
tree() { echo "$1"; for c in $(pgrep -P "$1"); do tree "$c"; done; }
t=$(tree "$p")
kill -STOP $t 2>/dev/null
doing=$(for x in $(tree "$p"); do ps -o args= -p "$x"; done | sed 1d | paste -sd "|" -)
kill -KILL "$d" $t 2>/dev/null
echo "killed dpkg (PID $d) and its postinst, which was running: ${doing:-nothing yet}"
'

# interrupted_configure WHEN PATTERN: the previous package installed again (to upgrade from),
# then the upgrade to the current one with dpkg killed WHEN (PATTERN matches), then
# `dpkg --configure -a`; watched from the upgrade's start to the end. Six checks.
interrupted_configure() {
    local when=$1 pattern=$2 out rc killer_pid killed status_killed audit pid_before pid_killed pid_after warn watched
    # The conffile edited in part 2 differs from both packages' versions, which differ from
    # each other: dpkg would ask; the administrator keeps theirs (--force-confold), throughout.
    out=$(dpkg_ct --force-confold -i /var/tmp/pkg/previous.deb 2>&1)
    rc=$?
    settle
    if ((rc == 0)) && [[ $(status_of) == "install ok installed $old_version" ]] && is_active && rules_ok; then
        ok "killed $when: $old_version installed again (dpkg --force-confold -i) to upgrade from, active, rules in"
    else
        not_ok "killed $when: the downgrade to $old_version to upgrade from (exit $rc): $(status_of), $(prop ActiveState)"
        tail -n 15 <<<"$out" | indent
    fi
    pid_before=$(prop MainPID)
    save_state
    watch_start
    in_ct rm -f /var/tmp/killer.stop
    NSB_EXEC_TIMEOUT=130 in_ct sh -c "$killer" killer "$pattern" >"$NSB_WORK/killer.out" 2>&1 &
    killer_pid=$!
    sleep 0.2
    out=$(dpkg_ct --force-confold -i /var/tmp/pkg/current.deb 2>&1)
    rc=$?
    in_ct touch /var/tmp/killer.stop # dpkg is done: the killer, if it is still looking, gives up
    wait "$killer_pid"
    killed=$(cat "$NSB_WORK/killer.out")
    status_killed=$(status_of)
    audit=$(in_ct dpkg --audit 2>&1)
    pid_killed=$(prop MainPID)
    if ((rc != 0)) && [[ $killed == killed* && $status_killed == "install ok half-configured $new_version" ]] &&
        grep -q nicroute <<<"$audit"; then
        ok "killed $when: $killed; nicroute left half-configured at $new_version, named by dpkg --audit; the daemon meanwhile: $(prop ActiveState), MainPID $pid_killed"
    else
        not_ok "killed $when: dpkg killed in postinst (exit $rc; killer: $killed), half-configured ($status_killed)"
        tail -n 10 <<<"$out" | indent
        indent <<<"$audit"
    fi
    out=$(dpkg_ct --force-confold --configure -a 2>&1)
    rc=$?
    settle
    watch_stop
    watched=$?
    warn=$(warnings_in "$out")
    pid_after=$(prop MainPID)
    if ((rc == 0)) && [[ $(status_of) == "install ok installed $new_version" && -z $warn &&
        $(in_ct systemctl is-enabled nicrouted.service) == enabled && -z $(in_ct dpkg --audit 2>&1) &&
        $(in_ct sha256sum "$conf" | cut -d' ' -f1) == "$edited" ]]; then
        ok "killed $when, then dpkg --configure -a: $new_version installed, nothing for dpkg --audit, the service enabled, the local edit of $conf kept, no warning"
    else
        not_ok "killed $when, then dpkg --configure -a (exit $rc): $(status_of), $(in_ct systemctl is-enabled nicrouted.service), $conf $(in_ct sha256sum "$conf" | cut -d' ' -f1) (edited: $edited)"
        indent <<<"$warn"
        tail -n 15 <<<"$out" | indent
    fi
    if [[ $pid_after =~ ^[1-9][0-9]*$ && $pid_after != "$pid_before" && $pid_after != "$pid_killed" ]] && is_active &&
        [[ $(in_ct readlink "/proc/$pid_after/exe" 2>/dev/null) == /usr/bin/nicrouted ]]; then
        ok "killed $when, then dpkg --configure -a: the daemon restarted (MainPID $pid_before -> $pid_killed when killed -> $pid_after), active, running the installed binary"
    else
        not_ok "killed $when, then dpkg --configure -a: the daemon restarted, active (MainPID $pid_before -> $pid_killed -> $pid_after, $(prop ActiveState), exe $(in_ct readlink "/proc/$pid_after/exe"))"
        diagnose
    fi
    if ((watched == 0)); then
        ok "killed $when: the rules in place from the upgrade's start to the end of dpkg --configure -a: $WATCH"
    else
        not_ok "killed $when: the rules in place throughout: $WATCH"
        watch_log
    fi
    if state_kept; then
        ok "killed $when: slots kept, the same table per NIC ($(tables_line)), the same $(wc -l <<<"$STATE_RULES") rules"
    else
        not_ok "killed $when: slots, tables per NIC and rules kept"
        state_diff
    fi
}

t=$SECONDS
interrupted_configure "as its postinst starts" '/var/lib/dpkg/info/nicroute[.]postinst configure'
interrupted_configure "while its postinst's systemctl restarts the daemon" 'systemctl .*restart.*nicrouted[.]service'
nsb_log "3. interrupted configure, twice: $((SECONDS - t)) s"

# ---- 4. remove while the daemon's first pass over many NICs is under way ----------------------

t=$SECONDS
in_ct systemctl stop nicrouted.service
{
    for ((i = 0; i < NICS; i++)); do
        echo "link add eth$((i + 2)) type veth peer name q$i netns $NSB_RNS"
    done
} | ip -n "$NSB_NS" -batch -
# NIC i: 172.(16 + i/16).((i % 16) * 16).0/20, addresses .10 to .(9 + ADDRS).
{
    for ((i = 0; i < NICS; i++)); do
        for ((j = 0; j < ADDRS; j++)); do
            echo "addr add 172.$((16 + i / 16)).$(((i % 16) * 16)).$((10 + j))/20 dev eth$((i + 2))"
        done
        echo "link set eth$((i + 2)) up"
    done
} | ip -n "$NSB_NS" -batch -
{ for ((i = 0; i < NICS; i++)); do echo "link set q$i up"; done; } | ip -n "$NSB_RNS" -batch -
made=$(ip -n "$NSB_NS" -4 addr show | grep -c 'inet 172\.')
nsb_log "4. $NICS veth NICs with $made addresses made in $((SECONDS - t)) s"
expected=$((NICS * ADDRS))
ip -n "$NSB_NS" monitor rule >"$NSB_WORK/remove-monitor.log" 2>&1 &
mon=$!
sleep 0.3
# The first pass is quick (measured: 4,000 rules in about 0.1 s, READY 0.25 s after the start),
# quicker than dpkg -r takes to reach prerm's stop (about 0.5 s): a plain `systemctl start;
# dpkg -r` removes after the pass. So the daemon is frozen (SIGSTOP, from the host) as soon as
# the first rule of the new NICs is in the kernel, as a slow pass on a loaded machine would be
# held; prerm's `systemctl stop` sends it SIGTERM and SIGCONT: it resumes in its pass.
in_ct systemctl start --no-block nicrouted.service
main_pid() { [[ $(prop MainPID) =~ ^[1-9][0-9]*$ ]]; }
wait_for 10 main_pid
ct_pid=$(prop MainPID)
host_pid=""
for p in $(pgrep -P "$NSB_PID1"); do
    [[ $(awk '/^NSpid:/ { print $NF }' "/proc/$p/status" 2>/dev/null) == "$ct_pid" ]] && host_pid=$p
done
end=$((SECONDS + 30))
until grep -qE '^[0-9]+:.*from 172\.' "$NSB_WORK/remove-monitor.log" || ((SECONDS > end)); do sleep 0.002; done
[[ -n $host_pid ]] && kill -STOP "$host_pid"
frozen=$(ip -n "$NSB_NS" rule show | grep -c 'from 172\.')
state_at_remove=$(prop ActiveState)
out=$(dpkg_ct -r nicroute 2>&1)
rc=$?
sleep 0.5
kill "$mon" 2>/dev/null
wait "$mon" 2>/dev/null
# Rules of the new NICs the daemon had added when the flush began deleting (the first deletion).
added=$(awk '/^Deleted/ { exit } /from 172\./ { n++ } END { print n + 0 }' "$NSB_WORK/remove-monitor.log")
left=$(kernel_objects)
running=$(daemons)
warn=$(warnings_in "$out")
if [[ -n $host_pid && $state_at_remove == activating ]] && ((frozen > 0 && frozen < expected)); then
    ok "remove during the first pass: dpkg -r began with the daemon (PID $ct_pid) activating, frozen in its pass with $frozen of the $expected rules of the $NICS new NICs in; it had added $added when the flush began"
else
    not_ok "remove during the first pass: the daemon (host PID ${host_pid:-not found}) frozen in its pass, activating ($state_at_remove), $frozen of $expected rules in"
fi
if ((rc == 0)) && [[ $(status_of) == "deinstall ok config-files $new_version" && -z $left && -z $running && -z $warn ]] &&
    [[ $(prop LoadState) == not-found ]]; then
    ok "dpkg -r during the pass: no rule or route with protocol 110 left (in any table), no nicrouted process, the unit gone, no warning"
else
    not_ok "dpkg -r during the pass (exit $rc, $(status_of)): $(wc -l <<<"$left") kernel objects left, nicrouted PIDs '$running', unit $(prop LoadState)"
    head -n 10 <<<"$left" | indent
    indent <<<"$warn"
    tail -n 10 <<<"$out" | indent
fi
{ for ((i = 0; i < NICS; i++)); do echo "link del eth$((i + 2))"; done; } | ip -n "$NSB_NS" -batch -
nsb_log "4. remove during a pass: $((SECONDS - t)) s"

# ---- 5. a remove that fails, then purge ---------------------------------------------------

t=$SECONDS
out=$(dpkg_ct -i /var/tmp/pkg/current.deb 2>&1)
rc=$?
settle
if ((rc == 0)) && [[ $(status_of) == "install ok installed $new_version" ]] && is_active && rules_ok; then
    ok "dpkg -i current.deb from config-files: installed, active, rules in"
else
    not_ok "dpkg -i current.deb from config-files (exit $rc): $(status_of), $(prop ActiveState)"
    tail -n 15 <<<"$out" | indent
fi
in_ct mount --bind /usr /usr && in_ct mount -o remount,bind,ro /usr
out=$(dpkg_ct -r nicroute 2>&1)
rc=$?
status_failed=$(status_of)
in_ct umount -l /usr
if ((rc != 0)) && grep -q 'Read-only file system' <<<"$out" && [[ $status_failed == *half-installed* ]] &&
    in_ct touch /usr/.nicroute-lifecycle-rw && in_ct rm /usr/.nicroute-lifecycle-rw; then
    ok "dpkg -r with /usr read-only fails deleting the files: $(grep -m1 'Read-only file system' <<<"$out" | sed 's/^dpkg: error processing package nicroute (--remove)://'); left '$status_failed'; the daemon $(prop ActiveState), $(kernel_objects | wc -l) protocol-110 objects (prerm ran)"
else
    not_ok "dpkg -r with /usr read-only fails, the package half-installed (exit $rc, '$status_failed')"
    tail -n 10 <<<"$out" | indent
fi
files=$(dpkg-deb --fsys-tarfile "$NICROUTE_PKG_NEW" | tar -t | sed 's|^\./|/|; s|/$||' | grep -vE '^/?$')
out=$(dpkg_ct --purge nicroute 2>&1)
rc=$?
# Debian 11's known line (package.sh explains it): the last owner dpkg knows of
# /usr/lib/systemd/system goes, and the directory is full.
if [[ $NSB_SUITE == bullseye ]]; then
    warn=$(warnings_in "$out" "directory '/usr/lib/systemd/system' not empty so not removed")
else
    warn=$(warnings_in "$out")
fi
dpkg_l=$(in_ct dpkg -L nicroute 2>/dev/null | grep '^/')
# Of the .deb's paths, those still there: its files and links, and its own directories
# (the package's docs folder, /etc/nicroute), not the shared ones (/usr/bin, ...).
on_disk=$(in_ct sh -c 'while read -r f; do
    if [ -e "$f" ] || [ -L "$f" ]; then
        if [ ! -d "$f" ] || case $f in *nicroute*) true ;; *) false ;; esac; then echo "$f"; fi
    fi
done' <<<"$files")
gone=(/etc/nicroute /var/lib/nicroute /var/lib/private/nicroute /run/nicroute /usr/bin/nicrouted /usr/bin/nicroutectl
    /usr/lib/systemd/system/nicrouted.service /etc/systemd/system/multi-user.target.wants/nicrouted.service
    /var/lib/systemd/deb-systemd-helper-enabled/nicrouted.service.dsh-also
    /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/nicrouted.service)
there=$(in_ct sh -c 'for f; do if [ -e "$f" ] || [ -L "$f" ]; then echo "$f"; fi; done' sh "${gone[@]}")
named=$(in_ct find / -xdev \( -path /proc -o -path /sys -o -path /var/log -o -path /var/tmp \) -prune -o -name '*nicroute*' \
    ! -path /.nicroute-tree-complete -print)
if ((rc == 0)) && [[ -z $warn ]] && ! in_ct dpkg-query -W nicroute >/dev/null 2>&1; then
    ok "dpkg --purge after the failed remove: purged, dpkg knows no package nicroute, no warning"
else
    not_ok "dpkg --purge after the failed remove (exit $rc): $(status_of)"
    indent <<<"$warn"
    tail -n 10 <<<"$out" | indent
fi
if [[ -z $dpkg_l && -z $on_disk && -z $there && -z $named ]]; then
    ok "after purge: dpkg -L lists nothing, none of the .deb's $(wc -l <<<"$files") paths left, no /etc/nicroute, /var/lib/nicroute, /run/nicroute, unit, enablement link or nicroutectl symlink, no file named *nicroute*"
else
    not_ok "after purge: files left"
    printf '%s\n' "$dpkg_l" "$on_disk" "$there" "$named" | sed '/^$/d; s/^/left: /' | sort -u | indent
fi
left=$(kernel_objects)
if [[ -z $left && -z $(daemons) && $(prop LoadState) == not-found ]]; then
    ok "after purge: nothing with protocol 110 in the kernel, no nicrouted process, the unit unknown to systemd"
else
    not_ok "after purge: kernel objects ($(wc -l <<<"$left")), nicrouted PIDs '$(daemons)', unit $(prop LoadState)"
    head -n 10 <<<"$left" | indent
fi
nsb_log "5. failed remove and purge: $((SECONDS - t)) s"

nsb_log "checks done in $((SECONDS - T0)) s"
summary
((FAILED == 0))
