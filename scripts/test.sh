#!/usr/bin/env bash
# Runs every test of nicroute: the Swift test suites (pure core, netlink codec, real-kernel tests
# in network namespaces), the OpenStack scenario and the robustness tests (storm, soak, chaos) in
# network namespaces, the unit and the packages in a booted Debian (systemd-nspawn), and a short
# fuzz run.
# Installs what it needs on a fresh Debian 12 machine with the Swift toolchain. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-5}

log() { printf '\n=== %s\n' "$*"; }

# Installs Debian packages that are missing (apt-get update only when something is).
ensure_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "installing ${missing[*]}"
        apt-get update -qq -o DPkg::Lock::Timeout=600
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}"
    fi
}

if [[ $(id -u) -ne 0 ]]; then
    echo "scripts/test.sh: run as root (the real-kernel tests create network namespaces)" >&2
    exit 1
fi
ensure_packages libsystemd-dev pkg-config iproute2 iptables python3 jq procps iputils-ping util-linux \
    g++ debootstrap systemd-container debhelper lintian rpm rpmlint fakeroot nftables
export PATH=/opt/swift/usr/bin:$PATH

passed=0
failed=0
count() { # count "<stage>" <passed> <failed>
    passed=$((passed + $2))
    failed=$((failed + $3))
    printf '%s: %s passed, %s failed\n' "$1" "$2" "$3"
}

# The cached Debian trees (sysroot, booted releases, VM guest), built in the background while
# the Swift build and tests run; whoever needs a tree waits on its lock. Nothing to do when cached.
bash Tests/System/trees.sh >/tmp/nicroute-trees.$$ 2>&1 &
trees_pid=$!

log "swift build"
swift build 2>&1 | tail -n 3

log "swift test (core, codec, real kernel)"
set +e
swift test 2>&1 | tee /tmp/nicroute-swift-test.$$ | grep -E '^(✘|✔ Suite|✔ Test run|􀢄|Test run)|error:|failed' | grep -v 'passed after' 
rc=${PIPESTATUS[0]}
set -e
# Swift Testing's closing line: "Test run with N tests in M suites passed|failed ... (with K issues)".
summary=$(grep -E 'Test run with [0-9]+ tests?' /tmp/nicroute-swift-test.$$ | tail -n 1 || true)
rm -f /tmp/nicroute-swift-test.$$
echo "$summary"
n=$(sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/' <<<"$summary")
[[ $n =~ ^[0-9]+$ ]] || n=0
if ((rc == 0)); then count "swift test" "$n" 0; else count "swift test" 0 "$((n > 0 ? n : 1))"; fi

# stage TITLE LABEL CMD...: runs a test script that ends with "LABEL: N passed, M failed".
stage() {
    local title=$1 label=$2 out rc line sp sf
    shift 2
    log "$title"
    out=$(mktemp)
    set +e
    "$@" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    set -e
    line=$(grep -E "^$label: [0-9]+ passed, [0-9]+ failed" "$out" | tail -n 1 || true)
    rm -f "$out"
    sp=$(sed -E 's/^[^:]+: ([0-9]+) passed.*/\1/' <<<"$line"); [[ $sp =~ ^[0-9]+$ ]] || sp=0
    sf=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$line"); [[ $sf =~ ^[0-9]+$ ]] || sf=0
    if ((rc != 0 && sf == 0)); then sf=1; fi
    count "$label" "$sp" "$sf"
}

export NICROUTED=$PWD/.build/debug/nicrouted
stage "OpenStack scenario in network namespaces" scenario bash Tests/Scenario/openstack.sh
stage "forwarded connections: a published container port through both floating IPs" forward bash Tests/Scenario/forward.sh
stage "nicroutectl: options, exit statuses, one-shot output, check's verdicts" cli bash Tests/Scenario/cli.sh
stage "multipath routes in main: routers on link-local addresses only" multipath bash Tests/Scenario/multipath.sh
stage "IPv6 first-host gateway confirmed as soon as the link-local address leaves DAD" first-host bash Tests/Scenario/first-host.sh
stage "sources that are not addresses: a guest agent's local route, AnyIP ranges (IPv4, IPv6), [Source] prefixes" local-routes bash Tests/Scenario/local-routes.sh
stage "udev's opt-out (NICROUTE_MANAGE=0) from a udev database of the test's own, and the wait for udev" udev bash Tests/Scenario/udev.sh
stage "robustness: address storm with netlink overrun, hot-plug soak, SIGKILL chaos, fights" robustness \
    bash Tests/Robustness/robustness.sh
stage "sd_notify contract against a datagram socket" notify bash Tests/System/notify.sh
stage "journal fields under a real systemd-journald" journal bash Tests/System/journal.sh

for suite in bookworm trixie; do
    stage "the unit: systemd-analyze verify and security (Debian $suite)" "unit-$suite" \
        env NSB_SUITE=$suite CHECKS_LABEL="unit-$suite" bash Tests/System/unit-checks.sh
done
stage "a booted Debian under systemd-nspawn with the unit and the release binaries" system bash Tests/System/booted.sh
stage "a real NetworkManager (never-default profile): the router from its D-Bus DHCP options" networkmanager bash Tests/System/networkmanager.sh
# The same .deb (built once, into a folder the three runs share) in booted Debian 11, 12 and 13.
NICROUTE_PKG_DIR=$(mktemp -d /var/tmp/nicroute-test-pkgs.XXXXXX)
export NICROUTE_PKG_DIR
trap 'rm -rf "$NICROUTE_PKG_DIR"' EXIT
for suite in bullseye bookworm trixie; do
    stage "packages: .deb and .rpm built; the .deb installed, upgraded, removed, purged in a booted Debian $suite" \
        "package-$suite" env NSB_SUITE=$suite bash Tests/System/package.sh
done
# The upgrade from the last DynamicUser= release (1ef97fb's .deb, built by its own scripts once
# and cached: scripts/build-old-packages.sh) to the current .deb above, in the same releases.
for suite in bullseye bookworm trixie; do
    stage "upgrade from the last DynamicUser= release's .deb: rules kept, state moved, User=nicroute (Debian $suite)" \
        "upgrade-dynamicuser-$suite" env NSB_SUITE=$suite bash Tests/System/upgrade-dynamicuser.sh
done
# The package's life beyond those (issue 22), with the kernel as the oracle: downgrade to
# 1ef97fb's .deb and upgrade again, reinstall with an edited conffile, upgrades killed in their
# postinst then `dpkg --configure -a`, remove during the first pass over 80 NICs x 50 addresses,
# purge after a failed remove; the same two .debs, one boot per release (about 35 s each).
stage "package lifecycle: downgrade, reinstall, interrupted configure, remove during a large pass, purge after a failed remove (Debian 11, 12, 13)" \
    package-lifecycle bash Tests/System/package-lifecycle.sh

# The packaged daemon in a real VM (qemu, TCG) with each network manager images ship, and with
# cloud-init configuring it as OpenStack boots images.
deb=$(find "$NICROUTE_PKG_DIR/dist-new" -name '*.deb' 2>/dev/null | head -n1 || true)
stage "VMs under qemu with the .deb: Debian 12 with systemd-networkd, NetworkManager, ifupdown, a diskimage-builder image, cloud-init (config drive, metadata service); Debian 13 with cloud-init" vm \
    env NICROUTE_PKG_NEW="$deb" bash Tests/VM/vm.sh

log "the glibc floor check refuses a binary linked against this machine's glibc"
if out=$(bash scripts/check-glibc-floor.sh .build/debug/nicroutectl 2>&1); then
    echo "$out"; count "floor check" 0 1
elif [[ $out == *"__libc_start_main@GLIBC_2.34"* ]]; then
    echo "${out:0:300}..."; count "floor check" 1 0
else
    echo "$out"; count "floor check" 0 1
fi

log "man pages and completions match the argument definitions"
if bash scripts/generate-docs.sh --check; then count "docs" 1 0; else count "docs" 0 1; fi

log "fuzz smoke run (${FUZZ_SECONDS}s per target, every parser of untrusted bytes)"
if bash scripts/fuzz-smoke.sh "$FUZZ_SECONDS"; then count "fuzz" 1 0; else count "fuzz" 0 1; fi

if ! wait "$trees_pid"; then
    echo "building the Debian trees in the background failed (the stages that needed one rebuilt it):"
    tail -n 20 "/tmp/nicroute-trees.$$"
fi
rm -f "/tmp/nicroute-trees.$$"

leftover=$(ip netns list | grep -cE '^(nlt-|nr-|nrr-|nrdemo-|nsn-|nsj-|nsb-|nrv-|nrf-)' || true)
if ((leftover > 0)); then
    echo "leftover test namespaces:"; ip netns list
    count "namespace leak check" 0 1
else
    count "namespace leak check" 1 0
fi

echo
echo "total: $passed passed, $failed failed"
((failed == 0))
