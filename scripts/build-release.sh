#!/usr/bin/env bash
# Builds the release binaries that packages and system tests ship: nicrouted and nicroutectl
# with the Swift runtime, libstdc++ and libgcc linked in, so that they need only glibc
# (libc6) and libsystemd0 at run time.
#
#   bash scripts/build-release.sh        # prints the directory holding the two binaries
#
# Scratch path .build-release (shared by scripts/build-packages.sh and Tests/System/*.sh, so the
# flags below must stay the same everywhere: a change rebuilds from scratch, ~5 min on 2 cores).
# Progress goes to stderr; the last lines of SwiftPM's output only.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH

# `--static-swift-stdlib` links the Swift runtime statically but names libstdc++ with a plain
# `-lstdc++` (swift_static/linux/static-stdlib-args.lnk), which the linker resolves to the shared
# library. A directory holding only libstdc++.a, searched first, makes that same `-lstdc++` the
# static archive; `-static-libgcc` does the same for libgcc_s. `-z relro -z now`: full RELRO
# (immediate binding), as Debian's hardening flags ask of every binary.
libs=$PWD/.build-static-libs
archive=$(g++ -print-file-name=libstdc++.a 2>/dev/null || true)
if [[ ! -f $archive ]]; then
    echo "build-release: libstdc++.a not found (apt-get install g++)" >&2
    exit 1
fi
mkdir -p "$libs"
ln -sfn "$archive" "$libs/libstdc++.a"

echo "# swift build -c release --static-swift-stdlib --scratch-path .build-release" >&2
swift build -c release --static-swift-stdlib --scratch-path .build-release \
    -Xlinker "-L$libs" -Xswiftc -Xclang-linker -Xswiftc -static-libgcc -Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now \
    --product nicrouted >&2
swift build -c release --static-swift-stdlib --scratch-path .build-release \
    -Xlinker "-L$libs" -Xswiftc -Xclang-linker -Xswiftc -static-libgcc -Xlinker -z -Xlinker relro -Xlinker -z -Xlinker now \
    --product nicroutectl >&2
bin=$PWD/.build-release/release
for b in nicrouted nicroutectl; do
    needed=$(readelf -d "$bin/$b" | sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p' | grep -v '^ld-linux' | sort | tr '\n' ' ')
    if [[ $needed != "libc.so.6 libm.so.6 libsystemd.so.0 " ]]; then
        echo "build-release: $b needs more than glibc and libsystemd: $needed" >&2
        exit 1
    fi
done
echo "$bin"
