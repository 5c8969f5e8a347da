#!/usr/bin/env bash
# Prints the path of the sysroot the release binaries are linked against: Debian 11's glibc
# 2.31 and libsystemd 247 headers and libraries, and GCC 10's crt files and libgcc (built for
# that glibc), debootstrapped once (about a minute, 300 MB) and cached under
# /var/cache/nicroute-build (NICROUTE_SYSROOT_CACHE). Linking against the oldest glibc and
# libsystemd nicroute supports is what makes the binaries start on every newer one: glibc
# versions its symbols, and a program gets the versions of the library it was linked with.
#
#   bash scripts/build-sysroot.sh        # as root the first time (debootstrap)
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib-debian.sh
source scripts/lib-debian.sh
export LC_ALL=C

CACHE=${NICROUTE_SYSROOT_CACHE:-/var/cache/nicroute-build}
SUITE=bullseye
# Bump when the way the tree is made changes (part of the cache key).
RECIPE=1
PACKAGES=(libc6-dev libsystemd-dev libgcc-10-dev)

build() {
    local dir=$1 mirror start l target
    [[ $(id -u) -eq 0 ]] || { echo "build-sysroot: no cached sysroot in $CACHE; run once as root (debootstrap)" >&2; return 1; }
    command -v debootstrap >/dev/null || { echo "build-sysroot: debootstrap is not installed" >&2; return 1; }
    mirror=$(debian_mirror)
    start=$SECONDS
    echo "# debootstrap $SUITE ($mirror) into $dir: about a minute, once" >&2
    debian_debootstrap "$dir" "$SUITE" "${PACKAGES[@]}" || return 1
    # Absolute symbolic links (libpthread.so -> /lib/x86_64-linux-gnu/libpthread.so.0, the
    # dynamic loader in /lib64) would point into the build machine's own /lib: make them
    # relative, inside the tree.
    while IFS= read -r l; do
        target=$(readlink "$l")
        ln -sfnr "$dir$target" "$l"
    done < <(find "$dir" -xdev -type l -lname '/*')
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
    {
        echo "built $(date -u +%FT%TZ) in $((SECONDS - start)) s from $mirror"
        chroot "$dir" dpkg-query -W libc6-dev libsystemd-dev libgcc-10-dev
    } >"$dir/.nicroute-tree-complete"
    echo "# sysroot ready in $((SECONDS - start)) s" >&2
}

key=$({
    echo "recipe=$RECIPE suite=$SUITE arch=$(dpkg --print-architecture)"
    echo "packages=${PACKAGES[*]}"
} | sha256sum | cut -c1-16)
debian_cached_tree "$CACHE" "sysroot-$SUITE" "$key" build
