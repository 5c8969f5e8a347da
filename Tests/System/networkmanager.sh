#!/usr/bin/env bash
# System test: the router of a NIC that NetworkManager runs with DHCP and `ipv4.never-default`,
# read from a real NetworkManager (Debian 12's) over D-Bus, as nicrouted reads it.
#
#   sudo bash Tests/System/networkmanager.sh
#
# A debootstrapped Debian 12 with network-manager (cached beside the other system tests' trees in /var/cache/nicroute-test,
# built once) boots under systemd-nspawn (lib-nspawn.sh) with eth0 static (unmanaged by
# NetworkManager) and eth1 under a keyfile profile: DHCP, never-default. dnsmasq in the router
# namespace hands out 20.20.20.100-150 with the router 20.20.20.254. Once NetworkManager has the
# lease, NetworkManagerBusTests.aRealNetworkManager runs here against the container's system
# bus (/proc/PID1/root/run/dbus/system_bus_socket) and file system: the options as NetworkManager
# publishes them, the router parsed from them, the lease file without a router, and the
# collector's hint `NetworkManager lease`. `nmcli -f DHCP4 device show eth1` is compared with
# the bus and kept with NM_CAPTURE=FILE (how Tests/Fixtures/leases/nmcli-dhcp4-* were checked).
#
# Environment: NSB_KEEP=1, NICROUTE_DEBIAN_MIRROR (lib-nspawn.sh); NM_CAPTURE=FILE; NM_CLASSLESS=yes: the
# DHCP server also sends classless static routes (option 121) with the same default router.
#
# Prints `ok - ...` / `not ok - ...` per check, ends with `networkmanager: N passed, M failed`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib-nspawn.sh
source "$HERE/lib-nspawn.sh"
CHECKS_LABEL=networkmanager
# shellcheck source-path=SCRIPTDIR source=lib-checks.sh
source "$HERE/lib-checks.sh"

ROUTER=20.20.20.254

nsb_init
if ! command -v dnsmasq >/dev/null; then
    nsb_log "installing dnsmasq-base (the router's DHCP server)"
    apt-get update -qq -o DPkg::Lock::Timeout=600 >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 dnsmasq-base >&2
fi
export PATH=/opt/swift/usr/bin:$PATH
(cd "$REPO" && swift build --build-tests >/dev/null)

# The usual tree, then network-manager installed into a copy of it (debootstrap itself cannot
# configure polkitd, a dependency), cached beside it.
nm_tree() {
    local base nmtree
    base=$(nsb_tree)
    nmtree="$NSB_CACHE_ROOT/nm-$(basename "$base")"
    if [[ ! -f $nmtree/.nicroute-nm-complete ]]; then
        exec 9>"$NSB_CACHE_ROOT/.lock-nm"
        flock -w 900 9 || nsb_die "cannot lock $NSB_CACHE_ROOT/.lock-nm"
        if [[ ! -f $nmtree/.nicroute-nm-complete ]]; then
            nsb_log "installing network-manager into a copy of $base: a minute or two, once"
            rm -rf --one-file-system "$nmtree" "$nmtree.build"
            cp -a "$base" "$nmtree.build"
            # shellcheck disable=SC2016 # expanded by the inner shell, from its arguments
            timeout 900 unshare --mount --propagation private bash -c '
                set -e
                mount -t proc proc "$1/proc"
                mount -t sysfs sysfs "$1/sys"
                mount --bind /dev "$1/dev"
                printf "#!/bin/sh\nexit 101\n" >"$1/usr/sbin/policy-rc.d"
                chmod 0755 "$1/usr/sbin/policy-rc.d"
                chroot "$1" apt-get update -qq
                DEBIAN_FRONTEND=noninteractive chroot "$1" apt-get install -y -qq --no-install-recommends \
                    network-manager
                rm -f "$1/usr/sbin/policy-rc.d"
                chroot "$1" apt-get clean
            ' nm "$nmtree.build" >"$NSB_WORK/nm-build.log" 2>&1 || {
                tail -n 30 "$NSB_WORK/nm-build.log" >&2
                rm -rf --one-file-system "$nmtree.build"
                nsb_die "installing network-manager failed"
            }
            rm -rf "$nmtree.build"/var/lib/apt/lists/*
            chroot "$nmtree.build" dpkg-query -W network-manager >"$nmtree.build/.nicroute-nm-complete"
            mv "$nmtree.build" "$nmtree"
        fi
        exec 9>&-
    fi
    echo "$nmtree"
}

tree=$(nm_tree)
nsb_stage "$tree"
nsb_write /etc/NetworkManager/conf.d/90-nicroute-test.conf <<'EOF'
[main]
plugins=keyfile
no-auto-default=*

[keyfile]
unmanaged-devices=interface-name:eth0
EOF
nsb_write /etc/NetworkManager/system-connections/eth1.nmconnection 0600 <<'EOF'
[connection]
id=eth1
type=ethernet
interface-name=eth1

[ipv4]
method=auto
never-default=true

[ipv6]
method=ignore
EOF
nsb_netns
ip -n "$NSB_NS" addr flush dev eth1
ip netns exec "$NSB_RNS" dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --interface=r1 \
    --bind-interfaces --dhcp-range=20.20.20.100,20.20.20.150,255.255.255.0,1h \
    --dhcp-option=option:router,$ROUTER \
    ${NM_CLASSLESS:+--dhcp-option=121,169.254.169.254/32,20.20.20.2,0.0.0.0/0,$ROUTER} --dhcp-leasefile="$NSB_WORK/dnsmasq.leases" --pid-file= \
    >"$NSB_WORK/dnsmasq.log" 2>&1 &
nsb_boot 30
state=$(nsb_wait_running 90) || true
note "container: $state"

has_lease() { nsb_exec nmcli -t -f DHCP4 device show eth1 | grep -q "routers = $ROUTER"; }
if wait_for 60 has_lease; then
    ok "NetworkManager took a lease on eth1 with routers = $ROUTER"
else
    not_ok "NetworkManager took a lease on eth1"
    nsb_exec nmcli device status 2>&1 | indent || true
    nsb_exec journalctl -u NetworkManager --no-pager -n 30 2>&1 | indent || true
fi
if nsb_exec ip route show default | grep -q "dev eth1"; then
    not_ok "never-default: no default route on eth1 in main"
else
    ok "never-default: no default route on eth1 in main"
fi

nmcli_out="$NSB_WORK/nmcli-dhcp4-eth1.txt"
nsb_exec nmcli -f DHCP4 device show eth1 >"$nmcli_out" || true
[[ -n ${NM_CAPTURE:-} ]] && cp "$nmcli_out" "$NM_CAPTURE"
note "lease files: $(nsb_exec sh -c 'head -n 3 /var/lib/NetworkManager/*.lease' 2>&1 | tr '\n' '|')"

# nicrouted runs as an unprivileged system user (User=nicroute): NetworkManager's bus policy must
# let any user ask these three questions.
as_nobody() { nsb_exec setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
device=$(as_nobody busctl call org.freedesktop.NetworkManager /org/freedesktop/NetworkManager \
    org.freedesktop.NetworkManager GetDeviceByIpIface s eth1 2>&1 | sed -nE 's/^o "(.*)"$/\1/p' || true)
config=""
if [[ -n $device ]]; then
    config=$(as_nobody busctl get-property org.freedesktop.NetworkManager "$device" \
        org.freedesktop.NetworkManager.Device Dhcp4Config 2>&1 | sed -nE 's/^o "(.*)"$/\1/p' || true)
fi
if [[ -n $config ]] && as_nobody busctl get-property org.freedesktop.NetworkManager "$config" \
    org.freedesktop.NetworkManager.DHCP4Config Options | grep -q "\"routers\" s \"$ROUTER\""; then
    ok "an unprivileged user reads the options over the bus ($device, $config)"
else
    not_ok "an unprivileged user reads the options over the bus (device '$device', config '$config')"
fi

if NICROUTE_NM_BUS="unix:path=/proc/$NSB_PID1/root/run/dbus/system_bus_socket" \
    NICROUTE_NM_ROOT="/proc/$NSB_PID1/root" NICROUTE_NM_INTERFACE=eth1 NICROUTE_NM_ROUTER=$ROUTER \
    NICROUTE_NM_IFINDEX="$(ip -n "$NSB_NS" -j link show eth1 | sed -E 's/.*"ifindex":([0-9]+).*/\1/')" \
    NICROUTE_NM_NMCLI="$nmcli_out" SWIFT_BACKTRACE=enable=no \
    timeout 120 "$REPO/.build/debug/nicroutePackageTests.xctest" --testing-library swift-testing \
    --filter aRealNetworkManager >"$NSB_WORK/swift-test.log" 2>&1 &&
    grep -q "Test aRealNetworkManager() passed" "$NSB_WORK/swift-test.log"; then
    ok "nicroute reads the router from the real NetworkManager's D-Bus options (NetworkManager lease)"
else
    not_ok "nicroute reads the router from the real NetworkManager's D-Bus options"
    grep -E "✘|Expectation|recorded" "$NSB_WORK/swift-test.log" | head -n 20 | indent || tail -n 20 "$NSB_WORK/swift-test.log" | indent
fi

summary
((FAILED == 0))
