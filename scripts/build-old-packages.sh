#!/usr/bin/env bash
# Prints the paths of the .deb and the .rpm of an earlier commit of nicroute, built by that
# commit's own scripts/build-packages.sh (its binaries, unit, maintainer scripts and packaging
# as they were), for the upgrade tests (Tests/System/upgrade-dynamicuser.sh). Built once and
# cached under /var/cache/nicroute-build/packages-<commit>-<key> (NICROUTE_OLD_PACKAGES_CACHE):
# built aside, then renamed, marked complete last; concurrent callers wait on a lock
# (scripts/lib-debian.sh's debian_cached_tree, as for the sysroot and the test trees).
#
#   sudo bash scripts/build-old-packages.sh COMMIT
#
# COMMIT must be in this clone's history (a fresh clone has it; a shallow one may not). It is
# checked out with `git worktree add --detach` into a temporary folder under /var/tmp, removed
# afterwards (with its .build-release scratch: a cold release build of that commit, 4.5 minutes
# measured on 2 busy cores from a fresh clone, ~230 s of CPU; the sysroot is the current one,
# scripts/build-sysroot.sh being the same there, built first when missing). The version is that commit's snapshot version, VERSION~git<commits>.<hash>, below
# every later snapshot of the same VERSION. Progress and the build's output go to stderr, and
# its log stays in the cache folder (build.log).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
# shellcheck source=lib-debian.sh
source scripts/lib-debian.sh
export LC_ALL=C

CACHE=${NICROUTE_OLD_PACKAGES_CACHE:-/var/cache/nicroute-build}
# Bump when the way the packages are built here changes (part of the cache key).
RECIPE=1

[[ $# -eq 1 ]] || { echo "usage: build-old-packages.sh COMMIT" >&2; exit 2; }
commit=$(git rev-parse --verify -q "$1^{commit}") || {
    echo "build-old-packages: $1 is not a commit of this clone (a shallow clone? git fetch --unshallow)" >&2
    exit 1
}
short=$(git rev-parse --short=12 "$commit")

wt=""
remove_worktree() {
    [[ -n $wt ]] || return 0
    git -C "$REPO" worktree remove --force "$wt" 2>/dev/null || rm -rf --one-file-system "$wt"
    git -C "$REPO" worktree prune
    wt=""
}
trap remove_worktree EXIT

# build DIR: (run by debian_cached_tree under its lock, so not under set -e: each step checked)
build() {
    local dir=$1 start=$SECONDS out deb
    [[ $(id -u) -eq 0 ]] || { echo "build-old-packages: no cached packages of $short in $CACHE; run once as root" >&2; return 1; }
    mkdir -p "$dir" || return 1
    wt=$(mktemp -d "/var/tmp/nicroute-old-$short.XXXXXX") || return 1
    git -C "$REPO" worktree add -q --detach "$wt" "$commit" >&2 || return 1
    echo "# building the packages of $short with its own scripts/build-packages.sh in $wt (cold: about 5 minutes)" >&2
    if ! out=$(bash "$wt/scripts/build-packages.sh" "$dir" 2>"$dir/build.log"); then
        tail -n 40 "$dir/build.log" >&2
        echo "build-old-packages: $short's build-packages.sh failed" >&2
        return 1
    fi
    remove_worktree
    deb=$(grep '\.deb$' <<<"$out" | head -n1)
    [[ -f $deb ]] || { echo "build-old-packages: no .deb from $short's build-packages.sh" >&2; return 1; }
    {
        echo "built $(date -u +%FT%TZ) in $((SECONDS - start)) s from $commit"
        dpkg-deb -f "$deb" Package Version
    } >"$dir/.nicroute-tree-complete"
    echo "# packages of $short built in $((SECONDS - start)) s: $(dpkg-deb -f "$deb" Version)" >&2
}

key=$(echo "recipe=$RECIPE commit=$commit arch=$(dpkg --print-architecture)" | sha256sum | cut -c1-16)
# A cold build takes minutes (more when the sysroot is built first or the cores are shared): a
# second caller waits up to an hour for it.
dir=$(debian_cached_tree "$CACHE" "packages-$short" "$key" build 3600)
find "$dir" -maxdepth 1 -name '*.deb'
find "$dir" -maxdepth 1 -name '*.rpm'
