#!/usr/bin/env bash
# Builds every cached Debian tree the tests use, in parallel, when missing: the release build's
# Debian 11 sysroot, the booted tests' Debian 11, 12 and 13, the NetworkManager test's tree and
# the VM test's guest. scripts/test.sh starts it in the background first thing, so that on a
# machine where nothing is cached yet the downloads overlap the Swift build and tests; each
# tree's user waits for it on the tree's lock (scripts/lib-debian.sh). Cached trees cost nothing.
#
#   sudo bash Tests/System/trees.sh
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
start=$SECONDS
pids=()
bash "$REPO/scripts/build-sysroot.sh" >/dev/null &
pids+=($!)
for suite in bullseye bookworm trixie; do
    NSB_SUITE=$suite bash -c 'source "$1/lib-nspawn.sh"; nsb_tree' trees "$HERE" >/dev/null &
    pids+=($!)
done
for suite in bookworm trixie; do
    VM_SUITE=$suite bash "$REPO/Tests/VM/guest-tree.sh" >/dev/null &
    pids+=($!)
done
rc=0
for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
echo "# trees ready in $((SECONDS - start)) s (rc $rc)" >&2
exit "$rc"
