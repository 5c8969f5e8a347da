# shellcheck shell=bash
# Booting a real systemd for nicroute's unit, system and package tests: a debootstrapped Debian
# tree (NSB_SUITE: bullseye = Debian 11, systemd 247, glibc 2.31; bookworm = Debian 12, 252, the
# default; trixie = Debian 13, 257; NSB_BACKPORTS=yes takes bookworm-backports' 254 instead),
# cached outside the repository, booted with systemd-nspawn inside a private mount namespace, in
# a network namespace of its own holding two veth NICs.
#
# Source it from bash, then call nsb_init first: it installs the traps that tear everything down
# on every exit path (normal end, error, INT, TERM, HUP).
#
#   nsb_init                      root check, tools (debootstrap, systemd-nspawn), stale runs
#                                 reaped, a per-run work dir ($NSB_WORK), exit traps
#   nsb_tree                      prints the cached tree's path, building it when missing
#   nsb_stage TREE                prepares the per-run root: an overlay over TREE (or a copy);
#                                 files go to $NSB_STAGE before boot (nsb_install, nsb_enable)
#   nsb_chroot CMD...             runs CMD chrooted into the staged root (private mount
#                                 namespace with /proc, /sys, /dev; nothing is left mounted)
#   nsb_netns                     namespaces $NSB_NS (the container's: eth0 10.10.10.29/24 with
#                                 a default route via 10.10.10.1, eth1 20.20.20.16/24) and
#                                 $NSB_RNS (the router: 10.10.10.1 and 20.20.20.1)
#   nsb_boot                      boots the staged root in $NSB_NS, sets $NSB_PID1
#   nsb_exec CMD...               runs CMD inside the booted container (nsenter)
#   nsb_wait_running [SECONDS]    waits until `systemctl is-system-running` answers
#   nsb_teardown                  what the traps run; safe to call more than once
#
# Environment:
#   NSB_SUITE          bullseye, bookworm (default) or trixie; each has a tree of its own
#   NSB_CACHE_ROOT     where trees are cached (default /var/cache/nicroute-test)
#   NSB_BACKPORTS      no (default): Debian 12's systemd 252; yes: systemd, libsystemd0 from
#                      bookworm-backports
#   NSB_STAGE_MODE     overlay (default) or copy (cp -a --reflink=auto of the cached tree)
#   NSB_KEEP=1         keep the work dir after the run (console log, the upper layer or copy);
#                      the next run removes it
#   NICROUTE_DEBIAN_MIRROR  Debian mirror (default: the one in /etc/apt/sources.list*, else
#                      deb.debian.org; scripts/lib-debian.sh)

export LC_ALL=C
# shellcheck source=../../scripts/lib-debian.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/lib-debian.sh"

: "${NSB_CACHE_ROOT:=/var/cache/nicroute-test}"
: "${NSB_BACKPORTS:=no}"
: "${NSB_STAGE_MODE:=overlay}"
: "${NSB_SUITE:=bookworm}"
: "${NSB_WORK_PARENT:=/var/tmp}"

# Bump when the way the tree is built changes (it is part of the cache key).
NSB_RECIPE=1
# What the tree holds. nicroutectl and nicrouted (static Swift runtime) need libc6, libstdc++6
# and libsystemd0 at run time; iproute2 is for the tests' `ip` inside; procps for `ps`; man-db
# because `systemd-analyze verify` checks the man pages named in Documentation=.
# libnftables1: what nicrouted loads for forwarded connections' marks (the .deb recommends it).
NSB_PACKAGES=(systemd systemd-sysv iproute2 dbus libsystemd0 libstdc++6 procps man-db libnftables1)
# Taken from bookworm-backports when NSB_BACKPORTS=yes.
NSB_BPO_PACKAGES=(systemd systemd-sysv libsystemd0 libsystemd-shared)

NSB_ID="$$-$RANDOM"
NSB_NS="nsb-$NSB_ID"
NSB_RNS="nsb-$NSB_ID-rt"
NSB_WORK=""
NSB_STAGE=""
NSB_ROOT=""
NSB_NSPAWN_PID=""
NSB_PID1=""
NSB_PID1_START=""
NSB_NETNS_MADE=()

nsb_log() { printf '# %s\n' "$*" >&2; }
nsb_die() {
    printf 'lib-nspawn: %s\n' "$*" >&2
    exit 1
}

# ---- setup and teardown -------------------------------------------------------------------

nsb_init() {
    [[ $(id -u) -eq 0 ]] || nsb_die "run as root (namespaces, mounts, systemd-nspawn)"
    trap nsb_teardown EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    trap 'exit 129' HUP
    nsb_reap_stale
    nsb_need_tools
    mkdir -p "$NSB_WORK_PARENT"
    NSB_WORK=$(mktemp -d "$NSB_WORK_PARENT/nicroute-nsb.XXXXXX")
    echo $$ >"$NSB_WORK/owner"
}

# Installs debootstrap and systemd-container when missing (one apt-get update at most).
nsb_need_tools() {
    local missing=() p
    for p in debootstrap systemd-container iproute2 util-linux; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    nsb_log "installing ${missing[*]}"
    apt-get update -qq -o DPkg::Lock::Timeout=600 >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2
}

# Removes what an earlier run killed with SIGKILL left behind: its container, namespaces and
# work dir (each carries the PID of the shell that made it; only dead owners are reaped).
nsb_reap_stale() {
    local dir owner pid start ns f
    for dir in "$NSB_WORK_PARENT"/nicroute-nsb.*; do
        [[ -d $dir ]] || continue
        owner=$(cat "$dir/owner" 2>/dev/null || true)
        [[ $owner =~ ^[0-9]+$ ]] && [[ -d /proc/$owner ]] && continue
        # nspawn and the container's PID 1 (which outlives a killed nspawn), if still the same
        # processes (PID and start time recorded at boot).
        for f in nspawn pid1; do
            read -r pid start <"$dir/$f.pid" 2>/dev/null || continue
            [[ $pid =~ ^[0-9]+$ && $(nsb_start_time "$pid") == "$start" ]] || continue
            nsb_log "killing $f $pid of a dead run"
            kill -KILL "$pid" 2>/dev/null || true
            for _ in $(seq 50); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
        done
        rm -rf --one-file-system "$dir"
    done
    while read -r ns _; do
        [[ $ns =~ ^nsb-([0-9]+)- ]] || continue
        [[ -d /proc/${BASH_REMATCH[1]} ]] && continue
        ip netns del "$ns" 2>/dev/null || true
    done < <(ip netns list 2>/dev/null)
}

# nsb_start_time PID: the process's start time (clock ticks since boot), empty when gone.
nsb_start_time() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    awk '{ print $20 }' <<<"$stat"
}

nsb_teardown() {
    local rc=$? pid
    trap - EXIT INT TERM HUP
    if [[ -n $NSB_NSPAWN_PID ]] && [[ -d /proc/$NSB_NSPAWN_PID ]]; then
        # nspawn turns SIGTERM into SIGRTMIN+3 for the container's systemd: an orderly poweroff.
        kill -TERM "$NSB_NSPAWN_PID" 2>/dev/null || true
        for _ in $(seq 100); do [[ -d /proc/$NSB_NSPAWN_PID ]] || break; sleep 0.1; done
        if [[ -d /proc/$NSB_NSPAWN_PID ]]; then
            nsb_log "container did not power off in 10 s: killing it"
            [[ -n $NSB_PID1 ]] && kill -KILL "$NSB_PID1" 2>/dev/null
            kill -KILL "$NSB_NSPAWN_PID" 2>/dev/null || true
            for _ in $(seq 50); do [[ -d /proc/$NSB_NSPAWN_PID ]] || break; sleep 0.1; done
        fi
    fi
    wait "$NSB_NSPAWN_PID" 2>/dev/null || true
    # The container's PID 1 outlives an nspawn that died abnormally.
    if [[ -n $NSB_PID1 && $(nsb_start_time "$NSB_PID1") == "$NSB_PID1_START" ]]; then
        kill -KILL "$NSB_PID1" 2>/dev/null || true
    fi
    for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
    for ns in "${NSB_NETNS_MADE[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    NSB_NETNS_MADE=()
    if [[ -n $NSB_WORK && -d $NSB_WORK ]]; then
        if [[ ${NSB_KEEP:-0} == 1 ]]; then
            nsb_log "kept $NSB_WORK"
            rm -f "$NSB_WORK/owner"
        else
            rm -rf --one-file-system "$NSB_WORK"
        fi
    fi
    NSB_WORK=""
    exit "$rc"
}

# ---- the cached tree ------------------------------------------------------------------------

nsb_tree_key() {
    {
        echo "recipe=$NSB_RECIPE suite=$NSB_SUITE arch=$(dpkg --print-architecture)"
        echo "packages=${NSB_PACKAGES[*]}"
        if [[ $NSB_BACKPORTS == yes ]]; then echo "backports=${NSB_BPO_PACKAGES[*]}"; else echo "backports=no"; fi
    } | sha256sum | cut -c1-16
}

# Prints the path of the cached tree of $NSB_SUITE, building it first when it is not there
# (scripts/lib-debian.sh: locked, built aside then renamed; other suites' trees stay).
nsb_tree() {
    debian_cached_tree "$NSB_CACHE_ROOT" "$NSB_SUITE" "$(nsb_tree_key)" nsb_build_tree ||
        nsb_die "building the Debian $NSB_SUITE tree failed"
}

nsb_build_tree() {
    local dir=$1 mirror start
    mirror=$(debian_mirror)
    start=$SECONDS
    nsb_log "debootstrap $NSB_SUITE ($mirror) into $dir: about 2 minutes, once"
    debian_debootstrap "$dir" "$NSB_SUITE" "${NSB_PACKAGES[@]}" || return 1
    if [[ $NSB_BACKPORTS == yes ]]; then
        nsb_log "systemd from $NSB_SUITE-backports"
        cat >"$dir/etc/apt/sources.list.d/backports.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $NSB_SUITE-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        timeout 600 unshare --mount --propagation private bash -c '
            set -e
            mount -t proc proc "$1/proc"
            mount --bind /dev "$1/dev"
            chroot "$1" apt-get update -qq
            DEBIAN_FRONTEND=noninteractive chroot "$1" apt-get install -y -qq --no-install-recommends \
                -t "$2-backports" "${@:3}"
        ' nsb "$dir" "$NSB_SUITE" "${NSB_BPO_PACKAGES[@]}" >"$dir.log" 2>&1 || {
            tail -n 30 "$dir.log" >&2
            rm -f "$dir.log"
            return 1
        }
        rm -f "$dir.log"
        rm -f "$dir/etc/apt/sources.list.d/backports.sources"
    fi
    chroot "$dir" apt-get clean
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin
    # A fixed machine id, so that the first boot of each copy is not a "first boot" that
    # applies presets to every unit.
    [[ -s $dir/etc/machine-id ]] || chroot "$dir" systemd-machine-id-setup >/dev/null
    {
        echo "built $(date -u +%FT%TZ) in $((SECONDS - start)) s from $mirror"
        chroot "$dir" dpkg-query -W systemd libsystemd0 iproute2
    } >"$dir/.nicroute-tree-complete"
    nsb_log "tree ready in $((SECONDS - start)) s: $(chroot "$dir" dpkg-query -W -f='systemd ${Version}' systemd)"
}

# ---- the per-run root -----------------------------------------------------------------------

# nsb_stage TREE: the root the container boots (or the chroot runs in) is TREE plus what the
# test installs. overlay: the tree is the lower layer and $NSB_WORK/upper the upper one (mounted
# in the private mount namespace of the container or chroot only); copy: a copy of the tree.
# Either way the cache stays untouched.
nsb_stage() {
    local tree=$1
    NSB_TREE=$tree
    if [[ $NSB_STAGE_MODE == overlay ]] && nsb_overlay_works "$tree"; then
        mkdir -p "$NSB_WORK/upper" "$NSB_WORK/ovl" "$NSB_WORK/root"
        NSB_STAGE="$NSB_WORK/upper"
    else
        NSB_STAGE_MODE=copy
        cp -a --reflink=auto "$tree" "$NSB_WORK/root"
        NSB_STAGE="$NSB_WORK/root"
    fi
    NSB_ROOT="$NSB_WORK/root"
}

nsb_overlay_works() {
    local t="$NSB_WORK/ovltest"
    mkdir -p "$t/u" "$t/w" "$t/m"
    if unshare --mount --propagation private \
        mount -t overlay overlay -o "lowerdir=$1,upperdir=$t/u,workdir=$t/w" "$t/m" 2>/dev/null; then
        rm -rf "$t"
        return 0
    fi
    rm -rf "$t"
    nsb_log "overlayfs unavailable: copying the tree instead"
    return 1
}

# The shell snippet that mounts the staged root at $NSB_ROOT (run inside the private namespace).
nsb_mount_root_snippet() {
    if [[ $NSB_STAGE_MODE == overlay ]]; then
        printf 'mount -t overlay overlay -o %q %q\n' \
            "lowerdir=$NSB_TREE,upperdir=$NSB_WORK/upper,workdir=$NSB_WORK/ovl" "$NSB_ROOT"
    fi
}

# nsb_install SRC DEST [MODE]: puts SRC at DEST (an absolute path inside the container).
nsb_install() {
    install -D -m "${3:-0644}" "$1" "$NSB_STAGE$2"
}

# nsb_write DEST [MODE] < content
nsb_write() {
    mkdir -p "$(dirname "$NSB_STAGE$1")"
    cat >"$NSB_STAGE$1"
    chmod "${2:-0644}" "$NSB_STAGE$1"
}

# nsb_enable UNIT TARGET: what `systemctl enable` does for WantedBy=TARGET, before boot.
nsb_enable() {
    mkdir -p "$NSB_STAGE/etc/systemd/system/$2.wants"
    ln -sfn "/etc/systemd/system/$1" "$NSB_STAGE/etc/systemd/system/$2.wants/$1"
}

# nsb_chroot CMD...: runs CMD chrooted into the staged root, with /proc, /sys and /dev, in a
# private mount namespace (so nothing stays mounted). stdout and stderr are CMD's.
nsb_chroot() {
    timeout "${NSB_EXEC_TIMEOUT:-60}" unshare --mount --propagation private bash -c "
        set -e
        $(nsb_mount_root_snippet)
        mount -t proc proc $(printf %q "$NSB_ROOT")/proc
        mount -t sysfs sysfs $(printf %q "$NSB_ROOT")/sys
        mount --bind /dev $(printf %q "$NSB_ROOT")/dev
        mount -t tmpfs tmpfs $(printf %q "$NSB_ROOT")/run
        exec chroot $(printf %q "$NSB_ROOT") env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C SYSTEMD_COLORS=0 SYSTEMD_PAGER= \"\$@\"
    " nsb "$@"
}

# ---- network ------------------------------------------------------------------------------

# The container's namespace: eth0 10.10.10.29/24 (default route via 10.10.10.1) and eth1
# 20.20.20.16/24; their peers r0 10.10.10.1/24 and r1 20.20.20.1/24 sit in the router
# namespace, which answers ARP for both gateways (nicrouted's first-host discovery on eth1).
nsb_netns() {
    ip netns add "$NSB_NS"
    NSB_NETNS_MADE+=("$NSB_NS")
    ip netns add "$NSB_RNS"
    NSB_NETNS_MADE+=("$NSB_RNS")
    ip -n "$NSB_NS" link add eth0 type veth peer name r0 netns "$NSB_RNS"
    ip -n "$NSB_NS" link add eth1 type veth peer name r1 netns "$NSB_RNS"
    ip -n "$NSB_NS" link set lo up
    ip -n "$NSB_RNS" link set lo up
    ip -n "$NSB_NS" addr add 10.10.10.29/24 dev eth0
    ip -n "$NSB_NS" addr add 20.20.20.16/24 dev eth1
    ip -n "$NSB_RNS" addr add 10.10.10.1/24 dev r0
    ip -n "$NSB_RNS" addr add 20.20.20.1/24 dev r1
    ip -n "$NSB_NS" link set eth0 up
    ip -n "$NSB_NS" link set eth1 up
    ip -n "$NSB_RNS" link set r0 up
    ip -n "$NSB_RNS" link set r1 up
    ip -n "$NSB_NS" route add default via 10.10.10.1 dev eth0
}

# ---- the container ------------------------------------------------------------------------

# Boots the staged root (MACHINE-NOTES recipe) in the background, in $NSB_NS; sets NSB_PID1 to
# the container's systemd as seen from here. Console output goes to $NSB_WORK/console.log.
nsb_boot() {
    local timeout=${1:-30} deadline child
    unshare --mount --propagation private bash -c "
        set -e
        $(nsb_mount_root_snippet)
        mkdir -p /run/systemd/nspawn
        mount -t tmpfs tmpfs /run/systemd/nspawn
        exec systemd-nspawn -q -D $(printf %q "$NSB_ROOT") -M $(printf %q "$NSB_NS") --register=no --keep-unit \
            --boot --network-namespace-path=/run/netns/$(printf %q "$NSB_NS") \
            --capability=CAP_NET_ADMIN,CAP_NET_RAW --console=passive
    " </dev/null >"$NSB_WORK/console.log" 2>&1 &
    NSB_NSPAWN_PID=$!
    echo "$NSB_NSPAWN_PID $(nsb_start_time "$NSB_NSPAWN_PID")" >"$NSB_WORK/nspawn.pid"
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        [[ -d /proc/$NSB_NSPAWN_PID ]] || break
        for child in $(pgrep -P "$NSB_NSPAWN_PID" 2>/dev/null); do
            # The container's PID 1: a child of nspawn whose PID in its own namespace is 1.
            if [[ $(awk '/^NSpid:/ { print $NF }' "/proc/$child/status" 2>/dev/null) == 1 ]]; then
                NSB_PID1=$child
                NSB_PID1_START=$(nsb_start_time "$NSB_PID1")
                echo "$NSB_PID1 $NSB_PID1_START" >"$NSB_WORK/pid1.pid"
                return 0
            fi
        done
        sleep 0.1
    done
    nsb_log "the container did not start; console:"
    sed 's/^/#   /' "$NSB_WORK/console.log" >&2
    return 1
}

# nsb_exec CMD...: runs CMD in all the container's namespaces, with a clean environment, for
# at most NSB_EXEC_TIMEOUT (60) seconds.
nsb_exec() {
    timeout "${NSB_EXEC_TIMEOUT:-60}" nsenter -t "$NSB_PID1" -a -- /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C \
        SYSTEMD_COLORS=0 SYSTEMD_PAGER= SYSTEMD_LESS= "$@"
}

# Waits (bounded) until systemd in the container answers `is-system-running` with a state
# where units can be queried (anything but "offline"/"unknown"/"initializing"), then until
# startup is over (running or degraded). Prints the final state.
nsb_wait_running() {
    local timeout=${1:-60} deadline state=""
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        state=$(timeout 5 nsenter -t "$NSB_PID1" -a -- /usr/bin/env -i /bin/systemctl is-system-running 2>/dev/null || true)
        case $state in
            running | degraded) echo "$state"; return 0 ;;
            maintenance | stopping) break ;;
        esac
        sleep 0.2
    done
    echo "${state:-no answer}"
    return 1
}
