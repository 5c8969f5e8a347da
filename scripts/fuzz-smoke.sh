#!/usr/bin/env bash
# Fuzzes the rtnetlink decoder (Sources/NetlinkFuzz) with libFuzzer + AddressSanitizer for a
# short while, starting from the seed corpus in Tests/Fuzz/netlink-corpus.
#
#   scripts/fuzz-smoke.sh [SECONDS]     (default 20)
#
# Prints libFuzzer's final figures (executions, coverage); exits non-zero when the target
# crashed, leaving the input that did it in fuzz-artifacts/ (replay it with a plain build:
# `swift run netlink-fuzz fuzz-artifacts/crash-...`). Builds in .build-fuzz, apart from the
# normal build.
set -euo pipefail

seconds="${1:-20}"
case "$seconds" in
'' | *[!0-9]*)
    echo "usage: $0 [SECONDS]" >&2
    exit 2
    ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# A trap inside the target must end in libFuzzer's crash handler, not hang in Swift's backtracer.
export SWIFT_BACKTRACE=enable=no

build=(swift build --scratch-path .build-fuzz --product netlink-fuzz -Xswiftc -sanitize=fuzzer,address -c debug)
work="$(mktemp -d -t netlink-fuzz.XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "fuzz-smoke: building netlink-fuzz with -sanitize=fuzzer,address"
if ! "${build[@]}" >"$work/build.log" 2>&1; then
    # ld.gold warns about every ASan helper symbol; show only what matters.
    grep -v "Cannot export local symbol" "$work/build.log" | tail -40 >&2
    echo "fuzz-smoke: build failed" >&2
    exit 1
fi
binary="$("${build[@]}" --show-bin-path)/netlink-fuzz"

# libFuzzer adds what it finds to the corpus directory: work on a copy.
mkdir -p "$work/corpus" fuzz-artifacts
cp Tests/Fuzz/netlink-corpus/* "$work/corpus/"

echo "fuzz-smoke: fuzzing for ${seconds}s from $(ls "$work/corpus" | wc -l) seeds"
set +e
"$binary" \
    -max_total_time="$seconds" \
    -timeout=10 \
    -rss_limit_mb=4096 \
    -print_final_stats=1 \
    -artifact_prefix="$root/fuzz-artifacts/" \
    "$work/corpus" >"$work/fuzz.log" 2>&1
status=$?
set -e

# The last status line ("#N DONE cov: C ft: F corp: ...") and the final statistics.
grep -E '^#[0-9]+' "$work/fuzz.log" | tail -1 || true
grep -E '^stat::' "$work/fuzz.log" || true

if [ "$status" -ne 0 ]; then
    echo "fuzz-smoke: netlink-fuzz exited with $status; the end of its log:" >&2
    tail -60 "$work/fuzz.log" >&2
    ls -l fuzz-artifacts/ >&2
    exit 1
fi
execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/fuzz.log")"
cov="$(grep -E '^#[0-9]+' "$work/fuzz.log" | tail -1 | sed -n 's/.* cov: \([0-9]*\).*/\1/p')"
echo "fuzz-smoke: ok, ${execs:-?} executions in ${seconds}s, coverage ${cov:-?} edges, no crash"
