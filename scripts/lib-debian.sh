# shellcheck shell=bash
# Helpers for the Debian trees that the release build (its glibc 2.31 sysroot) and the system
# tests (booted Debian 11, 12 and 13) debootstrap and cache under /var/cache.

# The Debian mirror this machine's apt uses (not its security or snapshot archives), else
# deb.debian.org. NICROUTE_DEBIAN_MIRROR overrides it.
debian_mirror() {
    if [[ -n ${NICROUTE_DEBIAN_MIRROR:-} ]]; then
        echo "$NICROUTE_DEBIAN_MIRROR"
        return
    fi
    local url
    url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        grep -oE '(https?|ftp)://[^ ]+/debian/?( |$)' | grep -vE 'security|snapshot' | head -n1 | tr -d ' ' || true)
    echo "${url:-http://deb.debian.org/debian}"
}

# debian_cached_tree CACHE NAME KEY BUILDER [WAIT]: prints CACHE/NAME-KEY, first calling
# `BUILDER DIR` to make it when it is missing (BUILDER writes DIR/.nicroute-tree-complete last).
# Concurrent callers wait on a lock, WAIT seconds at most (default 900); a half-built tree is
# never used (built aside, then renamed); trees of the same NAME with another KEY are removed.
debian_cached_tree() {
    local cache=$1 name=$2 key=$3 builder=$4 wait=${5:-900} tree tmp old
    tree="$cache/$name-$key"
    mkdir -p "$cache"
    if [[ ! -f $tree/.nicroute-tree-complete ]]; then
        exec 8>"$cache/.lock-$name"
        flock -w "$wait" 8 || { echo "cannot lock $cache/.lock-$name in $wait s" >&2; return 1; }
        if [[ ! -f $tree/.nicroute-tree-complete ]]; then
            tmp="$cache/build-$name-$key"
            rm -rf --one-file-system "$tree" "$tmp"
            "$builder" "$tmp" >&2 || {
                rm -rf --one-file-system "$tmp"
                exec 8>&-
                return 1
            }
            mv "$tmp" "$tree"
            for old in "$cache/$name"-*; do
                [[ $old == "$tree" ]] || rm -rf --one-file-system "$old"
            done
        fi
        exec 8>&-
    fi
    echo "$tree"
}

# debian_debootstrap DIR SUITE PACKAGE...: a minbase Debian SUITE with PACKAGEs in DIR, from
# debian_mirror; on failure the tail of debootstrap's output goes to stderr.
debian_debootstrap() {
    local dir=$1 suite=$2
    shift 2
    timeout 1200 debootstrap --variant=minbase --include="$(IFS=,; echo "$*")" \
        "$suite" "$dir" "$(debian_mirror)" >"$dir.log" 2>&1 || {
        tail -n 30 "$dir.log" >&2
        rm -f "$dir.log"
        return 1
    }
    rm -f "$dir.log"
}
