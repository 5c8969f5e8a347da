#!/usr/bin/env bash
# Builds the release binary that packages and system tests ship: nicrouted and nicroutectl in one
# executable (nicroute-multicall, run as either name) with the Swift runtime, libstdc++ and
# libgcc linked in, linked against Debian 11's glibc 2.31
# and libsystemd 247, so that they run on any distribution with glibc 2.31 and libsystemd0 247
# or newer (docs/platforms.md).
#
#   bash scripts/build-release.sh        # prints the directory holding nicrouted and nicroutectl
#                                        # (a symlink to nicrouted)
#
# The sysroot comes from scripts/build-sysroot.sh (debootstrapped once, as root, then cached).
# Scratch path .build-release (shared by scripts/build-packages.sh and Tests/System/*.sh, so the
# flags below must stay the same everywhere: a change rebuilds from scratch, ~5 min on 2 cores).
# The build fails when the binary needs more than glibc and libsystemd, or a glibc newer than
# 2.31 (scripts/check-glibc-floor.sh names the symbols). Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
export LC_ALL=C

sysroot=$(bash scripts/build-sysroot.sh)

# How the link is made, and why:
# - `--sysroot`: clang's linker driver takes crt1.o, libc.so (glibc 2.31), libpthread, libdl,
#   libm, GCC 10's crtbegin/libgcc/libgcc_eh and libsystemd.so (247) from the sysroot. Only the
#   link changes: the code is compiled against this machine's headers as before (glibc's and
#   libsystemd's), and whatever it calls that the older libraries lack fails the link or the
#   floor check below.
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
# libsystemd as SwiftPM sees it (it reads .pc files itself, PKG_CONFIG_PATH first): this
# machine's headers (the sysroot's would bring its glibc 2.31 headers in beside the
# toolchain's), the sysroot's library (SwiftPM puts the libdir of the .pc ahead of the default
# paths: this machine's would make -lc this machine's glibc). SwiftPM keeps the flags in its
# build plan and does not notice a change of .pc file: the plan is made anew each time.
mkdir -p "$libs/pkgconfig"
cat >"$libs/pkgconfig/libsystemd.pc" <<EOF
Name: systemd
Description: libsystemd of the release build's sysroot (scripts/build-sysroot.sh)
Version: $(sed -nE 's/^Version: *//p' "$sysroot/usr/lib/x86_64-linux-gnu/pkgconfig/libsystemd.pc")
Libs: -L$sysroot/usr/lib/x86_64-linux-gnu -lsystemd
Cflags:
EOF
export PKG_CONFIG_PATH=$libs/pkgconfig
unset PKG_CONFIG_SYSROOT_DIR
rm -f .build-release/release.yaml

# `--disable-local-rpath`: no RUNPATH $ORIGIN (the binaries load no library of their own).
flags=(-c release --static-swift-stdlib --disable-local-rpath --scratch-path .build-release
    -Xswiftc -Xclang-linker -Xswiftc "--sysroot=$sysroot" -Xlinker "-L$libs" -Xlinker "$libs/glibc-compat.o"
    -Xswiftc -Xclang-linker -Xswiftc -static-libgcc -Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now)
echo "# swift build ${flags[*]}" >&2
swift build "${flags[@]}" --product nicroute-multicall >&2
bin=$PWD/.build-release/release
# glibc 2.31 keeps libpthread, libdl, libutil and librt apart from libc (2.34 merged them);
# all are the libc6 package.
extra=$(readelf -d "$bin/nicroute-multicall" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p' |
    grep -vxE 'ld-linux-x86-64\.so\.2|lib(c|m|pthread|dl|util|rt)\.so\.[0-9]+|libsystemd\.so\.0' || true)
if [[ -n $extra ]]; then
    echo "build-release: nicroute-multicall needs more than glibc and libsystemd: $extra" >&2
    exit 1
fi
bash scripts/check-glibc-floor.sh --glibc 2.31 --libsystemd 247 "$bin/nicroute-multicall" >&2
# One binary holds both tools and runs the one named by argv[0] (Sources/NicrouteCommands/
# Entry.swift): nicrouted is that binary (a hard link), nicroutectl a symlink to it, as the
# packages install them.
ln -f "$bin/nicroute-multicall" "$bin/nicrouted"
ln -sfn nicrouted "$bin/nicroutectl"
echo "$bin"
