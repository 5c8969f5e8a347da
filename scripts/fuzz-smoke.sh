#!/usr/bin/env bash
# Fuzzes every parser of untrusted bytes (Sources/NetlinkFuzz, product nicroute-fuzz) with
# libFuzzer + AddressSanitizer for a short while each, starting from the seed corpora in
# Tests/Fuzz/<target>-corpus.
#
#   scripts/fuzz-smoke.sh [SECONDS] [TARGET...]   (default 5 seconds per target, every target)
#
# Builds once, then runs each target (NICROUTE_FUZZ_TARGET=<target>) for SECONDS and prints one
# line per target with its executions and coverage. Exits non-zero when a target crashed,
# leaving the input that did it in fuzz-artifacts/<target>-crash-... (replay it with a plain
# build: `NICROUTE_FUZZ_TARGET=<target> swift run nicroute-fuzz fuzz-artifacts/<file>`).
# Builds in .build-fuzz, apart from the normal build.
set -euo pipefail

targets_all=(netlink control config networkd-lease dhclient-lease dhcpcd-lease networkmanager-dhcp4 network-data json slots)

seconds="${1:-5}"
case "$seconds" in
'' | *[!0-9]* | 0)
    echo "usage: $0 [SECONDS] [TARGET...]   (targets: ${targets_all[*]})" >&2
    exit 2
    ;;
esac
shift || true
targets=("$@")
((${#targets[@]})) || targets=("${targets_all[@]}")

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

for target in "${targets[@]}"; do
    if [ ! -d "Tests/Fuzz/$target-corpus" ]; then
        echo "fuzz-smoke: unknown target '$target' (no Tests/Fuzz/$target-corpus; targets: ${targets_all[*]})" >&2
        exit 2
    fi
done

# A trap inside the target must end in libFuzzer's crash handler, not hang in Swift's backtracer.
export SWIFT_BACKTRACE=enable=no

build=(swift build --scratch-path .build-fuzz --product nicroute-fuzz -Xswiftc -sanitize=fuzzer,address -c debug)
work="$(mktemp -d -t nicroute-fuzz.XXXXXX)"
trap 'rm -rf "$work"' EXIT

echo "fuzz-smoke: building nicroute-fuzz with -sanitize=fuzzer,address"
if ! "${build[@]}" >"$work/build.log" 2>&1; then
    # ld.gold warns about every ASan helper symbol; show only what matters.
    grep -v "Cannot export local symbol" "$work/build.log" | tail -40 >&2
    echo "fuzz-smoke: build failed" >&2
    exit 1
fi
binary="$("${build[@]}" --show-bin-path)/nicroute-fuzz"
mkdir -p fuzz-artifacts

echo "fuzz-smoke: ${#targets[@]} target(s), ${seconds}s each"
failed=()
for target in "${targets[@]}"; do
    # libFuzzer adds what it finds to the corpus directory: work on a copy.
    corpus="$work/$target-corpus"
    mkdir -p "$corpus"
    cp "Tests/Fuzz/$target-corpus/"* "$corpus/"
    seeds=$(find "$corpus" -type f | wc -l)
    log="$work/$target.log"
    set +e
    NICROUTE_FUZZ_TARGET="$target" "$binary" \
        -max_total_time="$seconds" \
        -timeout=10 \
        -rss_limit_mb=4096 \
        -print_final_stats=1 \
        -artifact_prefix="$root/fuzz-artifacts/$target-" \
        "$corpus" >"$log" 2>&1
    status=$?
    set -e
    # The last status line ("#N DONE cov: C ft: F corp: N/..."); none when a seed crashed it.
    last="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")"
    cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
    ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
    corp="$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")"
    if [ "$status" -eq 0 ]; then
        printf 'fuzz-smoke: %-15s ok     %10s executions in %ss, coverage %s edges, %s features, corpus %s -> %s\n' \
            "$target" "${execs:-?}" "$seconds" "${cov:-?}" "${ft:-?}" "$seeds" "${corp:-?}"
    else
        printf 'fuzz-smoke: %-15s CRASH  %10s executions, exit status %s; the end of its log:\n' \
            "$target" "${execs:-?}" "$status" >&2
        tail -40 "$log" >&2
        failed+=("$target")
    fi
done

if ((${#failed[@]})); then
    echo "fuzz-smoke: crashed: ${failed[*]}; inputs in fuzz-artifacts/:" >&2
    ls -l fuzz-artifacts/ >&2
    exit 1
fi
echo "fuzz-smoke: ok, no crash in ${#targets[@]} target(s)"
