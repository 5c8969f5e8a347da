#!/usr/bin/env bash
# Builds the release binaries that packages and system tests ship: nicrouted and nicroutectl
# with the Swift runtime, libstdc++ and libgcc linked in, linked against Debian 11's glibc 2.31
# and libsystemd 247, so that they run on any distribution with glibc 2.31 and libsystemd0 247
# or newer (docs/platforms.md).
#
#   bash scripts/build-release.sh        # prints the directory holding the two binaries
#
# The sysroot comes from scripts/build-sysroot.sh (debootstrapped once, as root, then cached).
# Scratch path .build-release (shared by scripts/build-packages.sh and Tests/System/*.sh, so the
# flags below must stay the same everywhere: a change rebuilds from scratch, ~5 min on 2 cores).
# The build fails when a binary needs more than glibc and libsystemd, or a glibc newer than
# 2.31 (scripts/check-glibc-floor.sh names the symbols). Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
export LC_ALL=C

sysroot=$(bash scripts/build-sysroot.sh)

# How the link is made, and why:
# - `--sysroot`: clang's linker driver takes crt1.o, libc.so (glibc 2.31), libpthread, libdl,
#   libm and GCC 10's crtbegin/libgcc/libgcc_eh from the sysroot; pkg-config, pointed at the
#   sysroot, does the same for libsystemd. Only the link changes: Swift code is compiled against
#   the toolchain's Glibc module as before (glibc's headers declare no function the older
#   library lacks that our code calls; the floor check below proves it on every build).
# - `--static-swift-stdlib` links the Swift runtime statically but names libstdc++ with a plain
#   `-lstdc++` (swift_static/linux/static-stdlib-args.lnk), which the linker resolves to the
#   shared library. A directory holding only the host's libstdc++.a, searched first, makes that
#   same `-lstdc++` the static archive (GCC 10's is too old for the Swift runtime);
#   packaging/glibc-compat/glibc-compat.c supplies the one glibc 2.32 symbol it expects.
#   `-static-libgcc` does the same for libgcc_s.
# - `-z relro -z now`: full RELRO (immediate binding), as Debian's hardening flags ask.
libs=$PWD/.build-static-libs
archive=$(g++ -print-file-name=libstdc++.a 2>/dev/null || true)
if [[ ! -f $archive ]]; then
    echo "build-release: libstdc++.a not found (apt-get install g++)" >&2
    exit 1
fi
mkdir -p "$libs"
ln -sfn "$archive" "$libs/libstdc++.a"
clang --sysroot="$sysroot" -O2 -fPIC -Wall -Werror -c packaging/glibc-compat/glibc-compat.c -o "$libs/glibc-compat.o"

export PKG_CONFIG_LIBDIR=$sysroot/usr/lib/x86_64-linux-gnu/pkgconfig:$sysroot/usr/share/pkgconfig
export PKG_CONFIG_SYSROOT_DIR=$sysroot
unset PKG_CONFIG_PATH
# `--disable-local-rpath`: no RUNPATH $ORIGIN (the binaries load no library of their own).
flags=(-c release --static-swift-stdlib --disable-local-rpath --scratch-path .build-release
    -Xswiftc -Xclang-linker -Xswiftc "--sysroot=$sysroot" -Xlinker "-L$libs" -Xlinker "$libs/glibc-compat.o"
    -Xswiftc -Xclang-linker -Xswiftc -static-libgcc -Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now)
echo "# swift build ${flags[*]}" >&2
swift build "${flags[@]}" --product nicrouted >&2
swift build "${flags[@]}" --product nicroutectl >&2
bin=$PWD/.build-release/release
for b in nicrouted nicroutectl; do
    # glibc 2.31 keeps libpthread, libdl, libutil and librt apart from libc (2.34 merged them);
    # all are the libc6 package.
    extra=$(readelf -d "$bin/$b" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p' |
        grep -vxE 'ld-linux-x86-64\.so\.2|lib(c|m|pthread|dl|util|rt)\.so\.[0-9]+|libsystemd\.so\.0' || true)
    if [[ -n $extra ]]; then
        echo "build-release: $b needs more than glibc and libsystemd: $extra" >&2
        exit 1
    fi
done
bash scripts/check-glibc-floor.sh --glibc 2.31 --libsystemd 247 "$bin/nicrouted" "$bin/nicroutectl" >&2
echo "$bin"
