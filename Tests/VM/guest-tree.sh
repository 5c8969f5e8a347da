#!/usr/bin/env bash
# Prints the path of a cached guest tree for the VM test, debootstrapped once (a few minutes)
# under /var/cache/nicroute-test (NSB_CACHE_ROOT):
#   VM_SUITE=bookworm (default)  Debian 12 with a kernel, udev, openssh-server, the three network
#                                managers images ship (systemd-networkd, NetworkManager, ifupdown
#                                with isc-dhcp-client), and cloud-init with netplan.io, as
#                                Debian's own cloud images have them. Each variant of the test
#                                enables one manager (cloud-init is disabled where it is not the
#                                variant's subject).
#   VM_SUITE=trixie              Debian 13 as its cloud images are: cloud-init rendering netplan
#                                for systemd-networkd, no ifupdown; nftables for the test's
#                                published port.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../../scripts/lib-debian.sh
source "$REPO/scripts/lib-debian.sh"
export LC_ALL=C

CACHE=${NSB_CACHE_ROOT:-/var/cache/nicroute-test}
SUITE=${VM_SUITE:-bookworm}
RECIPE=2
case $SUITE in
    bookworm)
        # libnss-systemd: as on images with a full systemd (nicrouted itself runs as
        # the static user nicroute: dbus-daemon cannot resolve dynamic users; units/nicrouted.service).
        PACKAGES=(linux-image-amd64 systemd-sysv udev dbus iproute2 openssh-server libsystemd0 procps
            ifupdown isc-dhcp-client libnss-systemd)
        # Installed afterwards, in a chroot with /proc mounted: polkitd's configuration fails inside
        # debootstrap's own (it needs /proc).
        LATER=(network-manager cloud-init netplan.io)
        ;;
    trixie)
        PACKAGES=(linux-image-amd64 systemd-sysv udev dbus iproute2 openssh-server libsystemd0 procps
            libnss-systemd dhcpcd-base nftables libnftables1)
        # systemd-networkd is in the systemd package in Debian 13 (trixie has no package
        # systemd-networkd: apt-get said "Unable to locate package").
        LATER=(cloud-init netplan.io)
        ;;
    *)
        echo "guest-tree.sh: unknown VM_SUITE $SUITE" >&2
        exit 2
        ;;
esac

build() {
    local dir=$1 start=$SECONDS
    echo "# debootstrap $SUITE with a kernel, its network managers and cloud-init into $dir: a few minutes, once" >&2
    debian_debootstrap "$dir" "$SUITE" "${PACKAGES[@]}" || return 1
    printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
    chmod 0755 "$dir/usr/sbin/policy-rc.d"
    timeout 900 unshare --mount --propagation private bash -c '
        set -e
        mount -t proc proc "$1/proc"; mount -t sysfs sysfs "$1/sys"; mount --bind /dev "$1/dev"
        root=$1; shift
        chroot "$root" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends "$@"
    ' tree "$dir" "${LATER[@]}" >"$dir.log" 2>&1 || {
        tail -n 30 "$dir.log" >&2
        rm -f "$dir.log"
        return 1
    }
    rm -f "$dir.log" "$dir/usr/sbin/policy-rc.d"
    chroot "$dir" apt-get clean
    rm -rf "$dir"/var/lib/apt/lists/*
    [[ -s $dir/etc/machine-id ]] || chroot "$dir" systemd-machine-id-setup >/dev/null
    {
        echo "built $(date -u +%FT%TZ) in $((SECONDS - start)) s"
        chroot "$dir" dpkg-query -W linux-image-amd64 systemd cloud-init netplan.io 2>/dev/null || true
    } >"$dir/.nicroute-tree-complete"
}

key=$({
    echo "recipe=$RECIPE suite=$SUITE arch=$(dpkg --print-architecture)"
    echo "packages=${PACKAGES[*]} later=${LATER[*]}"
} | sha256sum | cut -c1-16)
debian_cached_tree "$CACHE" "vm-$SUITE" "$key" build
