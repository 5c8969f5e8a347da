#!/usr/bin/env bash
# VM test: the packaged nicroute in a real Debian 12 VM under qemu (TCG), with the default
# configuration users get: physical NICs managed (virtio, renamed by udev), the installed unit,
# a real DHCP client and a real network manager writing its leases.
#
#   sudo bash Tests/VM/vm.sh [networkd|networkmanager|ifupdown|dib|cloud-init|cloud-init-metadata|trixie]...
#                                                                       (default: all seven)
#
# The guest trees (Tests/VM/guest-tree.sh: Debian 12 with a kernel, udev, openssh-server, the
# three managers and cloud-init; Debian 13 as its cloud images are) are cached under
# /var/cache/nicroute-test; the .deb comes from scripts/build-packages.sh (or
# NICROUTE_PKG_NEW) and is installed in a chroot as an image builder would (policy-rc.d: not
# started, enabled for boot). For each manager the test boots the image with two virtio NICs,
# each behind a router namespace of its own that serves DHCP (dnsmasq, the fixed address by
# MAC), does the floating-IP NAT and drops what leaves the NIC with another source address
# (port security). A client namespace reaches the VM through both floating IPs:
#   boot       ssh through floating IP A and B; `nicroutectl status` names each NIC's gateway
#              and its source; `nicroutectl check` passes; no warning in the daemon's journal;
#   IPv6       SLAAC from each router's advertisements (sent from link-local addresses; nothing
#              owns the subnets' first hosts): each NIC's own router is its IPv6 gateway and
#              its global address answers the client (routed, no NAT);
#   hot-plug   a third NIC added over QMP (netdev_add, device_add) answers through its own
#              floating IP; removed (device_del), no nicroute rule is left for its address;
#              networkd: first opted out by the image's udev rule (ENV{NICROUTE_MANAGE}="0" by
#              its MAC): no rule for its address, NIC A and B keep theirs, status says why;
#              then the rule removed and `udevadm trigger --action=change`: it is managed
#              and answers through its floating IP (sd-device's monitor brings the pass);
#   manager    the network manager restarted and the DHCP lease renewed while the client
#              pings floating IP B: no nicroute rule deleted for good, FIP B still answers;
#   reboot     after a reboot the same table per NIC (slots by MAC), both FIPs answer;
#   dib        an image made by diskimage-builder's disk-image-create with the nicroute element
#              (and a test element for DHCP and the ssh key) boots and answers through both
#              floating IPs, status, check and the journal as above.
#
# cloud-init as OpenStack boots images (cloud-init, cloud-init-metadata, trixie): cloud-init
# configures the NICs from OpenStack's network_data.json, which describes NIC 1 as DHCP and NIC 2
# as static (20.20.20.29/24 and fd00:12::29/64, default routes via 20.20.20.254 and fd00:12::fe)
# on a network without DHCP or router advertisements, where nothing answers at the first host;
# root's ssh key comes from the metadata (public_keys). The daemon has to find NIC 2's gateways
# in what cloud-init read from the cloud (/run/cloud-init/instance-data.json):
#   cloud-init          Debian 12, config drive (ISO labelled config-2), cloud-init renders
#                       netplan for systemd-networkd (as Debian's cloud images do); its hotplug
#                       hook enabled in user data;
#   cloud-init-metadata Debian 12, the metadata service (169.254.169.254 in router A's
#                       namespace: Tests/VM/metadata.py, found through the SMBIOS product name),
#                       cloud-init renders ENI for ifupdown: issue 19's rendering, whose
#                       `post-up route add default gw ... || true` needs net-tools, which is not
#                       installed, so main never gets a default route via NIC 2; its hotplug hook
#                       enabled, the service describing a hot-plugged NIC as Nova's does;
#   trixie              Debian 13, config drive, netplan, cloud-init's defaults (no hotplug
#                       hook); strict rp_filter and a port published by nft DNAT to a network
#                       namespace behind a bridge in the VM (a container): forwarded connections.
# Checks: what cloud-init rendered and main's routes (printed), instance-data.json readable by
# all; main's default route via NIC 2 deleted where netplan made one, then NIC 2's gateways come
# from OpenStack's network data and floating IP B answers; check and the journal; NIC 2's
# static IPv6 address answers; a hot-plugged NIC answers through its floating IP (on a config
# drive, which never changes after boot, it is not described: the image's catch-all networkd
# file gives it DHCP; the metadata service describes it once it is attached); unplugged, its
# rules go; a reboot keeps each NIC's table.
#
# Network safety: everything lives in namespaces made here (nrv-ID-*); the taps qemu opens are
# made in the root namespace and moved into the router namespaces before any traffic (qemu
# keeps its file descriptor); nothing else touches the root namespace. qemu and dnsmasq are
# ended by PID on every exit path.
#
# Prints `ok - ...` / `not ok - ...` per check, ends with `vm: N passed, M failed`.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CHECKS_LABEL=vm
# shellcheck source=../System/lib-checks.sh
source "$REPO/Tests/System/lib-checks.sh"
# shellcheck source=../../scripts/lib-debian.sh
source "$REPO/scripts/lib-debian.sh"
export LC_ALL=C

VARIANTS=("$@")
((${#VARIANTS[@]})) || VARIANTS=(networkd networkmanager ifupdown dib cloud-init cloud-init-metadata trixie)
ID="$$"
PFX="nrv-$ID"
WORK=""
PIDS=()
NETNS=()
TAPS=()

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM HUP
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do [[ -d /proc/$pid ]] || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    for t in "${TAPS[@]}"; do ip link del "$t" 2>/dev/null || true; done
    for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    [[ -n $WORK && ${NICROUTE_VM_KEEP:-0} != 1 ]] && rm -rf --one-file-system "$WORK"
    exit "$rc"
}

[[ $(id -u) -eq 0 ]] || { echo "vm.sh: run as root" >&2; exit 1; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

missing=()
for p in qemu-system-x86 dnsmasq-base openssh-client debootstrap e2fsprogs iptables python3 python3-venv jq \
    sudo qemu-utils genisoimage; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    apt-get update -qq -o DPkg::Lock::Timeout=600 >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2
fi

WORK=$(mktemp -d /var/tmp/nicroute-vm.XXXXXX)
if [[ -z ${NICROUTE_PKG_NEW:-} ]]; then
    mkdir -p "$WORK/dist"
    NICROUTE_PKG_NEW=$(bash "$REPO/scripts/build-packages.sh" "$WORK/dist" 2>"$WORK/build.log" | grep '\.deb$') || {
        tail -n 20 "$WORK/build.log" >&2
        not_ok "build-packages"
        summary
        exit 1
    }
fi
ssh-keygen -q -t ed25519 -N '' -f "$WORK/key"
DIB_VERSION=3.43.0
# use_tree SUITE: the guest tree of Debian SUITE (built or taken from the cache), its kernel and
# initrd for the next boot.
declare -A TREES=()
TREE="" KERNEL="" INITRD=""
use_tree() {
    [[ -n ${TREES[$1]:-} ]] || TREES[$1]=$(VM_SUITE=$1 bash "$HERE/guest-tree.sh") || return 1
    TREE=${TREES[$1]}
    KERNEL=$(ls "$TREE"/boot/vmlinuz-* | tail -n1)
    INITRD=$(ls "$TREE"/boot/initrd.img-* | tail -n1)
}
# cloudy VARIANT: true for the variants where cloud-init configures the network.
cloudy() { [[ $1 == cloud-init || $1 == cloud-init-metadata || $1 == trixie ]]; }

# ---- network ----------------------------------------------------------------------------------

CLIENT="$PFX-x"
# router NAME IDX SUBNET FIP UPLINK: router namespace $PFX-NAME for the tap nrvIDNAME (qemu's
# NIC number IDX), the floating IP FIP (DNAT to SUBNET.29, SNAT back) on its uplink UPLINK.0/24
# to the client, and port security on the tap (router_attach adds DHCP once the tap is there).
router() {
    local name=$1 subnet=$3 fip=$4 up=$5 ns="$PFX-$1" tap="nrv${ID}$1"
    ip netns add "$ns"
    NETNS+=("$ns")
    ip -n "$ns" link set lo up
    ip -n "$ns" link add "up$name" type veth peer name "r$name" netns "$CLIENT"
    ip -n "$ns" addr add "$up.1/24" dev "up$name"
    ip -n "$ns" addr add "$fip/32" dev "up$name"
    ip -n "$ns" link set "up$name" up
    ip -n "$CLIENT" addr add "$up.2/24" dev "r$name"
    ip -n "$CLIENT" link set "r$name" up
    # IPv6: routed, no NAT (clouds give IPv6 without floating IPs). Uplink fd00:NAME::/64, the
    # NIC's subnet fd00:1IDX::/64 behind the router.
    ip -n "$ns" addr add "fd00:$name::1/64" dev "up$name" nodad
    ip -n "$CLIENT" addr add "fd00:$name::2/64" dev "r$name" nodad
    ip -n "$CLIENT" route add "fd00:1$2::/64" via "fd00:$name::1"
    ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    ip netns exec "$ns" iptables -t nat -A PREROUTING -d "$fip" -j DNAT --to-destination "$subnet.29"
    ip netns exec "$ns" iptables -t nat -A POSTROUTING -s "$subnet.29" -o "up$name" -j SNAT --to-source "$fip"
    # Port security: the NIC may send from its own address only.
    ip netns exec "$ns" iptables -A FORWARD -i "$tap" ! -s "$subnet.29" -j DROP
    ip netns exec "$ns" ip6tables -A FORWARD -i "$tap" ! -s "fd00:1$2::/64" -j DROP
}

# router_attach NAME SUBNET MAC IDX [MODE]: moves the tap into its router namespace (after qemu
# opened it), addresses it and serves the network as MODE says:
#   dhcp-ra (default)  the router at SUBNET.1 (router B also at .254, which its DHCP names as the
#                      router: see the NetworkManager check) and fd00:1IDX::fe; dnsmasq serves
#                      DHCPv4 and router advertisements for SLAAC from the router's link-local
#                      address (nothing answers at fd00:1IDX::1, as in most clouds);
#   dhcp               the router at SUBNET.1, DHCPv4 only (no RA: IPv6 only as the cloud's
#                      network data says);
#   static             no DHCP and no RA at all: the router holds SUBNET.254 and fd00:1IDX::fe
#                      only (nothing at SUBNET.1), for addresses the cloud's network data assigns.
router_attach() {
    local name=$1 subnet=$2 ns="$PFX-$1" tap="nrv${ID}$1" mac=$3 idx=$4 mode=${5:-dhcp-ra} gw ra=()
    ip link set "$tap" netns "$ns"
    [[ $mode != static ]] && ip -n "$ns" addr add "$subnet.1/24" dev "$tap"
    [[ $name == b || $mode == static ]] && ip -n "$ns" addr add "$subnet.254/24" dev "$tap"
    ip -n "$ns" addr add "fd00:1$idx::fe/64" dev "$tap" nodad
    ip -n "$ns" link set "$tap" up
    [[ $mode == static ]] && return 0
    gw="$subnet.$([[ $name == b ]] && echo 254 || echo 1)"
    [[ $mode == dhcp-ra ]] && ra=(--enable-ra --dhcp-range="::,constructor:$tap,ra-only,64")
    ip netns exec "$ns" dnsmasq --conf-file=/dev/null --port=0 --interface="$tap" --bind-interfaces \
        "${ra[@]}" \
        --dhcp-range="$subnet.100,$subnet.200,255.255.255.0,2m" --dhcp-host="$mac,$subnet.29" \
        --dhcp-option=option:router,"$gw" --dhcp-leasefile="$WORK/$name.leases" \
        --pid-file="$WORK/dnsmasq-$name.pid" --log-facility="$WORK/dnsmasq-$name.log" --log-dhcp
    for _ in $(seq 50); do [[ -s $WORK/dnsmasq-$name.pid ]] && break; sleep 0.1; done
    PIDS+=("$(cat "$WORK/dnsmasq-$name.pid")")
}

# metadata_service: OpenStack's metadata service (Tests/VM/metadata.py) at 169.254.169.254:80 on
# router A's tap, serving $WORK/md (the guest reaches it through its DHCP gateway, router A).
metadata_service() {
    local ns="$PFX-a" tap="nrv${ID}a"
    ip -n "$ns" addr add 169.254.169.254/32 dev "$tap"
    rm -f "$WORK/metadata.pid"
    ip netns exec "$ns" python3 "$HERE/metadata.py" "$WORK/md" 169.254.169.254 80 "$WORK/metadata.pid" \
        "$WORK/metadata.log" </dev/null >>"$WORK/metadata.err" 2>&1 &
    for _ in $(seq 100); do [[ -s $WORK/metadata.pid ]] && break; sleep 0.1; done
    [[ -s $WORK/metadata.pid ]] || { cat "$WORK/metadata.err" >&2; return 1; }
    PIDS+=("$(cat "$WORK/metadata.pid")")
}

ip netns add "$CLIENT"
NETNS+=("$CLIENT")
ip -n "$CLIENT" link set lo up
router a 1 10.10.10 192.0.2.10 192.0.2
router b 2 20.20.20 198.51.100.10 198.51.100
router c 3 30.30.30 203.0.113.10 203.0.113
TAPA="nrv${ID}a" TAPB="nrv${ID}b" TAPC="nrv${ID}c"
MACA=52:54:00:00:00:01 MACB=52:54:00:00:00:02 MACC=52:54:00:00:00:03
FIPA=192.0.2.10 FIPB=198.51.100.10 FIPC=203.0.113.10

# ---- the guest ----------------------------------------------------------------------------------

# in_root ROOT CMD...: CMD chrooted into ROOT with /proc, /sys, /dev (private mount namespace).
in_root() {
    local root=$1
    shift
    timeout 300 unshare --mount --propagation private bash -c '
        set -e
        mount -t proc proc "$1/proc"; mount -t sysfs sysfs "$1/sys"; mount --bind /dev "$1/dev"
        root=$1; shift
        exec chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C DEBIAN_FRONTEND=noninteractive "$@"
    ' vm "$root" "$@"
}

# openstack_data DIR VARIANT [c]: OpenStack's documents for the VM in DIR/openstack/latest, as
# Nova writes them: meta_data.json (uuid, hostname, the client's ssh key), user_data and
# network_data.json (NIC 1 by DHCP; NIC 2 static, IPv4 and IPv6, default routes via the
# routers' .254 and ::fe; with c, also the hot-plugged NIC 3 by DHCP).
openstack_data() {
    local dir=$1/openstack/latest v=$2 c=${3:-} uuid
    mkdir -p "$dir"
    uuid=$(printf '%s' "$v" | sha256sum | sed -E 's/^(.{8})(.{4}).(.{3}).(.{3})(.{12}).*/\1-\2-4\3-8\4-\5/')
    jq -n --arg key "$(cat "$WORK/key.pub")" --arg host "vm-$v" --arg uuid "$uuid" \
        '{uuid: $uuid, name: $host, hostname: $host,
          availability_zone: "nova", launch_index: 0, project_id: "nicroute-test",
          public_keys: {k: $key}, keys: [{name: "k", type: "ssh", data: $key}], meta: {}}' >"$dir/meta_data.json"
    if [[ $v == trixie ]]; then
        # cloud-init's defaults: the network is configured at the first boot only, no hotplug hook.
        printf '#cloud-config\n{}\n' >"$dir/user_data"
    else
        printf '#cloud-config\nupdates:\n  network:\n    when: [boot, hotplug]\n' >"$dir/user_data"
    fi
    jq -n --arg c "$c" '{
        links: ([
            {id: "tap1", vif_id: "p1", type: "phy", mtu: 1500, ethernet_mac_address: "52:54:00:00:00:01"},
            {id: "tap2", vif_id: "p2", type: "phy", mtu: 1500, ethernet_mac_address: "52:54:00:00:00:02"}
        ] + if $c == "" then [] else
            [{id: "tap3", vif_id: "p3", type: "phy", mtu: 1500, ethernet_mac_address: "52:54:00:00:00:03"}] end),
        networks: ([
            {id: "network0", type: "ipv4_dhcp", link: "tap1", network_id: "n1"},
            {id: "network1", type: "ipv4", link: "tap2", network_id: "n2",
             ip_address: "20.20.20.29", netmask: "255.255.255.0",
             routes: [{network: "0.0.0.0", netmask: "0.0.0.0", gateway: "20.20.20.254"}]},
            {id: "network2", type: "ipv6", link: "tap2", network_id: "n2",
             ip_address: "fd00:12::29", netmask: "ffff:ffff:ffff:ffff::",
             routes: [{network: "::", netmask: "::", gateway: "fd00:12::fe"}]}
        ] + if $c == "" then [] else
            [{id: "network3", type: "ipv4_dhcp", link: "tap3", network_id: "n3"}] end),
        services: []
    }' >"$dir/network_data.json.new"
    mv "$dir/network_data.json.new" "$dir/network_data.json"
    printf '{}\n' >"$dir/vendor_data2.json"
}

# The cloud-init settings of the test's images besides the datasource and renderer: root's key
# usable (disable_root: false); the locale the tree has (it has no locales package); and, for
# time under TCG, the host keys the tree has kept rather than generated at first boot (RSA
# takes many seconds) and neither keys on the console nor grub's device set (no grub here); no
# resizing of the root file system (made at its size; Debian 13's minbase has no resize2fs).
CLOUD_CFG=('disable_root: false' 'locale: C.UTF-8' 'ssh_deletekeys: false' 'ssh: {emit_keys_to_console: false}'
    'grub_dpkg: {enabled: false}' 'resize_rootfs: false')

# image VARIANT: the guest's disk for one manager: the cached tree, the .deb installed as an image
# builder installs it (in a chroot, a policy-rc.d that forbids starting services), the client's
# ssh key, the manager enabled and configured for DHCP on every Ethernet NIC, the others off.
# cloud-init is off (/etc/cloud/cloud-init.disabled) except in the variants it is the subject of:
# there it has the ssh key from the metadata, and a datasource list and renderer of the variant.
image() {
    local v=$1 root="$WORK/root-$1"
    cp -a --reflink=auto "$TREE" "$root"
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    cp "$NICROUTE_PKG_NEW" "$root/var/tmp/nicroute.deb"
    in_root "$root" apt-get install -y -q --no-install-recommends /var/tmp/nicroute.deb >"$WORK/install-$v.log" 2>&1 || {
        tail -n 20 "$WORK/install-$v.log" >&2
        return 1
    }
    rm -f "$root/usr/sbin/policy-rc.d" "$root/var/tmp/nicroute.deb"
    if ! cloudy "$v"; then
        install -d -m 0700 "$root/root/.ssh"
        install -m 0600 "$WORK/key.pub" "$root/root/.ssh/authorized_keys"
        [[ -d $root/etc/cloud ]] && touch "$root/etc/cloud/cloud-init.disabled"
    fi
    echo "/dev/vda / ext4 defaults 0 1" >"$root/etc/fstab"
    echo "vm-$v" >"$root/etc/hostname"
    local units_off=()
    case $v in
        networkd)
            printf '[Match]\nName=en*\n\n[Network]\nDHCP=yes\n' >"$root/etc/systemd/network/50-dhcp.network"
            in_root "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
            units_off=(NetworkManager.service networking.service)
            ;;
        networkmanager)
            # Debian's default: NetworkManager connects every Ethernet NIC with DHCP itself.
            in_root "$root" systemctl enable NetworkManager.service >/dev/null 2>&1
            units_off=(systemd-networkd.service networking.service)
            ;;
        ifupdown)
            printf 'auto lo\niface lo inet loopback\n' >"$root/etc/network/interfaces"
            for n in ens3 ens4 ens5; do
                printf '\nallow-hotplug %s\niface %s inet dhcp\n' "$n" "$n" >>"$root/etc/network/interfaces"
            done
            in_root "$root" systemctl enable networking.service >/dev/null 2>&1
            units_off=(systemd-networkd.service NetworkManager.service)
            ;;
        cloud-init | trixie)
            # As Debian's cloud images of 12 and 13: cloud-init renders netplan for
            # systemd-networkd, from a config drive.
            printf '%s\n' 'datasource_list: [ ConfigDrive, None ]' "${CLOUD_CFG[@]}" \
                'system_info: {network: {renderers: [netplan], activators: [netplan]}}' \
                >"$root/etc/cloud/cloud.cfg.d/90-nicroute-test.cfg"
            # A NIC attached after boot is not on the config drive (Nova writes it once, at the
            # instance's creation), so cloud-init has nothing to configure it from: this
            # catch-all, the image's own, gives such NICs DHCP. cloud-init's netplan files
            # (/run/systemd/network/10-netplan-*) sort first and keep the NICs they describe.
            printf '[Match]\nName=en*\n\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\n' \
                >"$root/etc/systemd/network/99-attached-later.network"
            in_root "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
            units_off=(NetworkManager.service networking.service)
            if [[ $v == trixie ]]; then
                # Strict reverse-path filtering on every interface (systemd's 50-default.conf
                # makes it loose), and forwarding for the container's published port.
                printf '%s\n' 'net.ipv4.conf.default.rp_filter = 1' 'net.ipv4.conf.*.rp_filter = 1' \
                    'net.ipv4.ip_forward = 1' >"$root/etc/sysctl.d/90-nicroute-test.conf"
            fi
            ;;
        cloud-init-metadata)
            # Issue 19's rendering: ENI for ifupdown, from the metadata service.
            printf '%s\n' 'datasource_list: [ OpenStack, None ]' "${CLOUD_CFG[@]}" \
                'system_info: {network: {renderers: [eni], activators: [eni]}}' \
                >"$root/etc/cloud/cloud.cfg.d/90-nicroute-test.cfg"
            printf 'source /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n' >"$root/etc/network/interfaces"
            in_root "$root" systemctl enable networking.service >/dev/null 2>&1
            units_off=(systemd-networkd.service NetworkManager.service)
            ;;
    esac
    in_root "$root" systemctl mask "${units_off[@]}" >/dev/null 2>&1
    mkfs.ext4 -q -F -d "$root" "$WORK/$v.img" 3G >/dev/null
    rm -rf --one-file-system "$root"
}

# dib_image: the image diskimage-builder makes with the nicroute element (packaging/dib) and the
# test's own (Tests/VM/dib-elements: networkd with DHCP, the ssh key), one ext4 file system
# without a partition table (Tests/VM/dib-block-device.yaml says why), and the kernel and initrd
# the baremetal element exports. diskimage-builder comes from PyPI, in a virtualenv cached
# beside the trees.
dib_image() {
    local venv=${NSB_CACHE_ROOT:-/var/cache/nicroute-test}/dib-venv-$DIB_VERSION mirror
    if [[ ! -x $venv/bin/disk-image-create ]]; then
        rm -rf "$venv"
        python3 -m venv "$venv" && "$venv/bin/pip" install -q "diskimage-builder==$DIB_VERSION" >"$WORK/pip.log" 2>&1 || {
            tail -n 20 "$WORK/pip.log" >&2
            rm -rf "$venv"
            return 1
        }
    fi
    mirror=$(debian_mirror)
    ELEMENTS_PATH="$REPO/packaging/dib:$HERE/dib-elements" DIB_RELEASE=bookworm \
        DIB_DISTRIBUTION_MIRROR="$mirror" DIB_DEBIAN_SECURITY_MIRROR="${mirror%/debian*}/debian-security" \
        DIB_BLOCK_DEVICE_CONFIG="file://$HERE/dib-block-device.yaml" \
        DIB_NICROUTE_PACKAGE="$NICROUTE_PKG_NEW" DIB_NICROUTE_VM_TEST_KEY="$WORK/key.pub" \
        timeout 1500 "$venv/bin/disk-image-create" --no-tmpfs -t raw --image-size 3 -o "$WORK/dib" \
        debian-minimal baremetal nicroute nicroute-vm-test >"$WORK/dib.log" 2>&1 || {
        grep -vE '^[^|]*\| \+' "$WORK/dib.log" | tail -n 30 >&2
        return 1
    }
    mv "$WORK/dib.raw" "$WORK/dib.img"
    KERNEL=$WORK/dib.vmlinuz INITRD=$WORK/dib.initrd
}

QEMU_PID=""
# boot VARIANT: starts qemu (TCG) with NIC A and B (their taps, then moved to the routers). The
# cloud-init variants: the SMBIOS product name Nova gives its VMs, NIC A with DHCP only, NIC B
# without DHCP (static), and the config drive (an ISO labelled config-2 with the OpenStack
# documents) or the metadata service.
boot() {
    local v=$1 t extra=() mode_a=dhcp-ra mode_b=dhcp-ra
    for t in "$TAPA" "$TAPB"; do
        ip tuntap add "$t" mode tap
        TAPS+=("$t")
    done
    if cloudy "$v"; then
        # -nodefaults: no floppy drive, which cloud-init's search for the config drive would
        # probe (I/O errors and seconds of retries under TCG).
        extra=(-nodefaults -smbios "type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova")
        mode_a=dhcp mode_b=static
        if [[ $v != cloud-init-metadata ]]; then
            rm -rf "$WORK/cfg" "$WORK/cfg.iso"
            openstack_data "$WORK/cfg" "$v"
            genisoimage -quiet -V config-2 -r -J -o "$WORK/cfg.iso" "$WORK/cfg"
            extra+=(-drive "file=$WORK/cfg.iso,media=cdrom,if=ide,readonly=on")
        elif [[ ! -d $WORK/md ]]; then
            openstack_data "$WORK/md" "$v"
        fi
    fi
    rm -f "$WORK/qmp.sock" "$WORK/qemu.pid"
    qemu-system-x86_64 -machine pc -accel tcg -m 1024 -smp 2 "${extra[@]}" \
        -kernel "$KERNEL" -initrd "$INITRD" -append 'root=/dev/vda rw console=ttyS0 panic=-1' \
        -drive "file=$WORK/$v.img,format=raw,if=virtio" -display none -vga none \
        -serial "file:$WORK/console-$v.log" -qmp "unix:$WORK/qmp.sock,server,nowait" \
        -netdev "tap,id=na,ifname=$TAPA,script=no,downscript=no" -device "virtio-net-pci,netdev=na,mac=$MACA,addr=0x3" \
        -netdev "tap,id=nb,ifname=$TAPB,script=no,downscript=no" -device "virtio-net-pci,netdev=nb,mac=$MACB,addr=0x4" \
        -daemonize -pidfile "$WORK/qemu.pid"
    QEMU_PID=$(cat "$WORK/qemu.pid")
    PIDS+=("$QEMU_PID")
    router_attach a 10.10.10 "$MACA" 1 "$mode_a"
    router_attach b 20.20.20 "$MACB" 2 "$mode_b"
    TAPS=()
    if [[ $v == cloud-init-metadata ]]; then metadata_service || return 1; fi
}

# qmp JSON: one QMP command; prints the answer ("return" or "error").
qmp() {
    python3 - "$WORK/qmp.sock" "$1" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())
for cmd in ('{"execute": "qmp_capabilities"}', sys.argv[2]):
    f.write(cmd + "\n"); f.flush()
    while True:
        msg = json.loads(f.readline())
        if "return" in msg or "error" in msg:
            break
print(json.dumps(msg))
PY
}

cssh() { # cssh FIP CMD...
    local fip=$1
    shift
    timeout "${CSSH_TIMEOUT:-20}" ip netns exec "$CLIENT" ssh -i "$WORK/key" -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=3 "root@$fip" "$@"
}
answers() { cssh "$1" true; }
# tables FIP: "MAC=TABLE ..." for every managed NIC, from nicroutectl status --json.
tables() { cssh "$1" nicroutectl status --json | jq -r '[.nics[] | "\(.mac)=\(.table)"] | sort | join(" ")'; }
# until SECONDS CMD...: CMD every half second until it succeeds; prints the seconds it took.
until_ok() {
    local limit=$1 start=$SECONDS
    shift
    while ! "$@" >/dev/null 2>&1; do
        ((SECONDS - start < limit)) || return 1
        sleep 0.5
    done
    echo $((SECONDS - start))
}
# pings FIP COUNT: pings through FIP every 0.2 s in the background (not a child of this shell:
# poll /proc for its end); prints the PID. The summary lands in $WORK/ping-FIP.
pings() {
    ip netns exec "$CLIENT" ping -n -q -i 0.2 -W 1 -c "$2" "$1" >"$WORK/ping-$1" 2>&1 &
    echo $!
}
received() { sed -nE 's/.* ([0-9]+) received.*/\1/p' "$WORK/ping-$1"; }
manager_restart() {
    case $1 in
        networkd) cssh "$FIPA" systemctl restart systemd-networkd.service ;;
        networkmanager) cssh "$FIPA" systemctl restart NetworkManager.service ;;
        # ifupdown has no daemon: its DHCP client is restarted as ifup started it, without a
        # release (-x), so the new one takes the same lease again. (ifdown would take the address
        # away: an outage of its own, not nicroute's.)
        ifupdown) cssh "$FIPA" 'dhclient -x -pf /run/dhclient.ens4.pid && dhclient -4 -pf /run/dhclient.ens4.pid -lf /var/lib/dhcp/dhclient.ens4.leases ens4' ;;
    esac
}
shutdown_vm() {
    [[ -n $QEMU_PID ]] || return 0
    qmp '{"execute": "quit"}' >/dev/null 2>&1 || kill "$QEMU_PID" 2>/dev/null || true
    for _ in $(seq 100); do [[ -d /proc/$QEMU_PID ]] || break; sleep 0.1; done
    kill -KILL "$QEMU_PID" 2>/dev/null || true
    QEMU_PID=""
    local f
    for f in "$WORK"/dnsmasq-*.pid "$WORK/metadata.pid"; do
        [[ -f $f ]] && { kill "$(cat "$f")" 2>/dev/null || true; }
        rm -f "$f"
    done
    for t in "$TAPA" "$TAPB" "$TAPC"; do
        for ns in "$PFX-a" "$PFX-b" "$PFX-c"; do ip -n "$ns" link del "$t" 2>/dev/null || true; done
    done
}

# plug_nic_c [MODE]: hot-plugs NIC C over QMP (its tap in router C's namespace, router_attach
# MODE as given); QMP's answers in $WORK/qmp.out.
plug_nic_c() {
    ip tuntap add "$TAPC" mode tap
    TAPS+=("$TAPC")
    qmp "{\"execute\": \"netdev_add\", \"arguments\": {\"type\": \"tap\", \"id\": \"nc\", \"ifname\": \"$TAPC\", \"script\": \"no\", \"downscript\": \"no\"}}" >"$WORK/qmp.out"
    router_attach c 30.30.30 "$MACC" 3 "$@"
    TAPS=()
    qmp "{\"execute\": \"device_add\", \"arguments\": {\"driver\": \"virtio-net-pci\", \"id\": \"nicc\", \"netdev\": \"nc\", \"mac\": \"$MACC\", \"addr\": \"0x5\"}}" >>"$WORK/qmp.out"
}

# unplug_nic_c VARIANT: unplugs NIC C (device_del) and checks that no nicroute rule or route is
# left for its address; ends router C's DHCP.
unplug_nic_c() {
    local v=$1 secs
    qmp '{"execute": "device_del", "arguments": {"id": "nicc"}}' >/dev/null
    gone() { ! cssh "$FIPA" ip rule show | grep -q '30\.30\.30\.29'; }
    if secs=$(until_ok 30 gone) && ! cssh "$FIPA" ip route show table all proto 110 | grep -q 30.30.30; then
        ok "$v: unplugged (device_del): no nicroute rule or route left for its address after $secs s"
    else
        not_ok "$v: unplugged NIC's rule and routes removed"
        cssh "$FIPA" 'ip rule; ip route show table all proto 110' 2>&1 | indent
    fi
    qmp '{"execute": "netdev_del", "arguments": {"id": "nc"}}' >/dev/null 2>&1 || true
    kill "$(cat "$WORK/dnsmasq-c.pid")" 2>/dev/null || true
}

run_variant() {
    local v=$1 t0 secs out before after pid lost
    echo "# --- $v"
    t0=$SECONDS
    if ! use_tree bookworm; then
        not_ok "$v: the Debian 12 guest tree (Tests/VM/guest-tree.sh)"
        return
    fi
    if [[ $v == dib ]]; then
        if ! dib_image; then
            not_ok "dib: disk-image-create with the nicroute element"
            return
        fi
        ok "dib: disk-image-create debian-minimal baremetal nicroute nicroute-vm-test built the image in $((SECONDS - t0)) s"
    elif ! image "$v"; then
        not_ok "$v: image with the .deb installed in a chroot"
        return
    fi
    echo "# image built in $((SECONDS - t0)) s"
    t0=$SECONDS
    boot "$v"
    if secs=$(until_ok 240 answers "$FIPA") && secs2=$(until_ok 60 answers "$FIPB"); then
        ok "$v: ssh through floating IP A after $((secs)) s of boot, through floating IP B $secs2 s later"
    else
        not_ok "$v: ssh through both floating IPs after boot (A: $(answers "$FIPA" && echo yes || echo no), B: $(answers "$FIPB" && echo yes || echo no))"
        tail -n 30 "$WORK/console-$v.log" | indent
        cssh "$FIPA" 'nicroutectl status; journalctl -b -u nicrouted --no-pager | tail -n 20' 2>&1 | indent
        shutdown_vm
        return
    fi
    out=$(cssh "$FIPA" nicroutectl status 2>&1)
    if grep -qE 'IPv4 gateway: 10\.10\.10\.1 \(from ' <<<"$out" && grep -qE 'IPv4 gateway: 20\.20\.20\.254 \(from ' <<<"$out" &&
        [[ $(grep -c '^●' <<<"$out") == 2 ]]; then
        ok "$v: nicroutectl status: 2 NICs (default configuration); $(grep -E 'gateway|^●' <<<"$out" | tr -s ' ' | paste -sd ';')"
    else
        not_ok "$v: nicroutectl status names both NICs' gateways"
        indent <<<"$out"
    fi
    if out=$(cssh "$FIPA" nicroutectl check 2>&1); then
        ok "$v: nicroutectl check passes: $(tail -n1 <<<"$out")"
    else
        not_ok "$v: nicroutectl check"
        indent <<<"$out"
    fi
    out=$(cssh "$FIPA" "journalctl -b -q --no-pager -u nicrouted -p warning; journalctl -b -q --no-pager -u nicrouted _TRANSPORT=syslog" 2>&1 |
        grep -v 'Failed to set thread priority for worker thread' || true)
    if [[ -z $out ]]; then
        ok "$v: no warning in the daemon's journal"
    else
        not_ok "$v: warnings in the daemon's journal"
        indent <<<"$out"
    fi

    if [[ $v == dib ]]; then
        # The element's image boots and routes; the rest is the same daemon, checked above.
        shutdown_vm
        rm -f "$WORK/dib.img"
        echo "# dib: $((SECONDS - t0)) s"
        return
    fi

    # IPv6 by router advertisement (SLAAC) on both NICs: each NIC's gateway is its own router's
    # link-local address (under networkd both defaults share a metric: one multipath route in
    # main), and each NIC's global address answers the client through its own router.
    v6=$(cssh "$FIPA" "ip -6 -br addr show scope global" 2>/dev/null | awk '{ for (i = 3; i <= NF; i++) print $i }' | sed 's|/.*||')
    addr6a=$(grep '^fd00:11:' <<<"$v6" | head -n1)
    addr6b=$(grep '^fd00:12:' <<<"$v6" | head -n1)
    out=$(cssh "$FIPA" nicroutectl status 2>&1)
    ra=$(grep -cE 'IPv6 gateway: fe80::[0-9a-f:]+ \(from router advertisement\)' <<<"$out" || true)
    pinged=0
    for a in $addr6a $addr6b; do
        timeout 10 ip netns exec "$CLIENT" ping -n -q -c 2 -W 2 "$a" >/dev/null 2>&1 && pinged=$((pinged + 1))
    done
    if [[ -n $addr6a && -n $addr6b ]] && ((ra == 2 && pinged == 2)); then
        ok "$v: IPv6 by RA on both NICs ($addr6a, $addr6b): each NIC's gateway is its router's link-local address (from router advertisement), both answer"
    else
        not_ok "$v: IPv6 by RA: addresses '$addr6a' '$addr6b', $ra NICs with an RA gateway, $pinged of 2 answer"
        grep -E '^●|IPv6' <<<"$out" | indent
        cssh "$FIPA" 'ip -6 route show table main; ip -6 rule' 2>&1 | indent
    fi

    # NetworkManager: NIC B's profile set never-default, so main has no default route on it; its
    # router comes from NetworkManager's DHCP lease, read over D-Bus by the daemon as the unit's
    # static user (dbus-daemon rejects DynamicUser= clients: units/nicrouted.service).
    if [[ $v == networkmanager ]]; then
        conn=$(cssh "$FIPA" nmcli -g GENERAL.CONNECTION device show ens4 2>/dev/null)
        cssh "$FIPA" "nmcli connection modify '$conn' ipv4.never-default yes && nmcli connection up '$conn'" >/dev/null 2>&1
        lease() { cssh "$FIPA" nicroutectl status | grep -qE 'IPv4 gateway: 20\.20\.20\.254 \(from NetworkManager lease\)'; }
        if secs=$(until_ok 20 lease); then
            ok "$v: '$conn' never-default: gateway 20.20.20.254 from NetworkManager lease after $secs s (as user $(cssh "$FIPA" 'ps -o user= -C nicrouted'))"
        else
            not_ok "$v: never-default profile: gateway from NetworkManager's lease (status says: $(cssh "$FIPA" nicroutectl status | grep -A5 ens4 | grep 'IPv4 gateway' | tr -s ' '))"
            cssh "$FIPA" 'journalctl -b -q --no-pager -u nicrouted | grep -i -E "bus|networkmanager" | tail -n 5; journalctl -b -q --no-pager -u dbus | tail -n 5' 2>&1 | indent
        fi
        if until_ok 30 answers "$FIPB" >/dev/null; then
            ok "$v: never-default profile on ens4: floating IP B still answers"
        else
            not_ok "$v: never-default profile on ens4: floating IP B answers"
            cssh "$FIPA" 'ip route; nicroutectl status' 2>&1 | indent
        fi
    fi

    # Hot-plug a third NIC, then unplug it. networkd: the image's udev rule opts it out first
    # (NICROUTE_MANAGE=0 by its MAC, as an image keeps SR-IOV VFs away): no rule for it while
    # the others keep theirs; the rule removed and a change event from udev make it managed.
    # The rule matches every event but remove: udev renames the NIC (eth0 -> ens5), and the
    # move event that follows sets the properties anew (a rule for ACTION=="add" alone was
    # seen gone from the database after it, systemd 252).
    if [[ $v == networkd ]]; then
        cssh "$FIPA" "printf '%s\n' 'SUBSYSTEM==\"net\", ACTION!=\"remove\", ATTR{address}==\"$MACC\", ENV{NICROUTE_MANAGE}=\"0\"' >/etc/udev/rules.d/80-nicroute-test.rules && udevadm control --reload" ||
            not_ok "$v: udev rule with ENV{NICROUTE_MANAGE}=\"0\" installed"
    fi
    plug_nic_c
    if [[ $v == networkd ]]; then
        has_address() { cssh "$FIPA" ip -br addr | grep -q '30\.30\.30\.29/'; }
        if secs=$(until_ok 90 has_address); then
            sleep 5
            nic3=$(nic_of "$MACC")
            out=$(cssh "$FIPA" "ip rule; echo ---; nicroutectl status; echo ---; udevadm info -q property /sys/class/net/$nic3 | grep NICROUTE" 2>&1 || true)
            if ! grep -q 'from 30\.30\.30\.29 ' <<<"$out" && grep -q 'from 10\.10\.10\.' <<<"$out" &&
                grep -q 'from 20\.20\.20\.' <<<"$out" &&
                grep -q "Not managed: $nic3: NICROUTE_MANAGE=0 in udev's database" <<<"$out" &&
                [[ $(grep -c '^●' <<<"$out") == 2 ]]; then
                ok "$v: hot-plugged $nic3 opted out by a udev rule (ACTION!=\"remove\", by MAC, ENV{NICROUTE_MANAGE}=\"0\"): its address 30.30.30.29 came after $secs s and has no rule 5 s later; NIC A and B keep theirs; status: $(grep 'Not managed' <<<"$out")"
            else
                not_ok "$v: hot-plugged NIC opted out by udev gets no rule, the others keep theirs"
                indent <<<"$out"
                cssh "$FIPA" "cat /etc/udev/rules.d/80-nicroute-test.rules; journalctl -b -q --no-pager -u nicrouted | tail -n 15" 2>&1 | indent
            fi
        else
            not_ok "$v: hot-plugged NIC (opted out) got its address by DHCP"
            cssh "$FIPA" 'ip -br addr; ip rule' 2>&1 | indent
        fi
        cssh "$FIPA" "rm /etc/udev/rules.d/80-nicroute-test.rules && udevadm control --reload && udevadm trigger --action=change /sys/class/net/$nic3" ||
            not_ok "$v: udev rule removed, change event triggered"
    fi
    if secs=$(until_ok 90 answers "$FIPC"); then
        ok "$v: a NIC hot-plugged over QMP answers through its floating IP after $secs s"
    else
        not_ok "$v: hot-plugged NIC answers through its floating IP"
        indent <"$WORK/qmp.out"
        cssh "$FIPA" 'ip -br addr; ip rule; nicroutectl status' 2>&1 | indent
    fi
    unplug_nic_c "$v"

    # The manager restarted and the DHCP lease renewed (2-minute leases: the client renews
    # after one), with the client pinging floating IP B all along.
    pid=$(pings "$FIPB" 400)
    sleep 2
    manager_restart "$v" >/dev/null 2>&1
    renewed() { (($(grep -c 'DHCPACK' "$WORK/dnsmasq-b.log") > before)); }
    before=$(grep -c 'DHCPACK' "$WORK/dnsmasq-b.log")
    until_ok 75 renewed >/dev/null || true
    after=$(grep -c 'DHCPACK' "$WORK/dnsmasq-b.log")
    for _ in $(seq 200); do [[ -d /proc/$pid ]] || break; sleep 0.5; done
    lost=$((400 - $(received "$FIPB")))
    if ((after > before)) && ((lost <= 10)) && answers "$FIPB"; then
        ok "$v: manager restarted and lease renewed ($((after - before)) DHCPACK): floating IP B lost $lost of 400 pings over 80 s"
    else
        not_ok "$v: manager restart and lease renewal without outage: $((after - before)) DHCPACK, $lost of 400 pings lost"
        cssh "$FIPA" 'journalctl -b -q --no-pager -u nicrouted | tail -n 20' 2>&1 | indent
    fi

    # Reboot: the same table for each NIC.
    before=$(tables "$FIPA")
    cssh "$FIPA" 'systemctl reboot' >/dev/null 2>&1 || true
    sleep 5
    if secs=$(until_ok 240 answers "$FIPA") && until_ok 60 answers "$FIPB" >/dev/null &&
        after=$(tables "$FIPA") && [[ -n $before && $after == "$before" ]]; then
        ok "$v: after a reboot both floating IPs answer ($secs s), same table per NIC: $after"
    else
        not_ok "$v: reboot: tables before '$before', after '${after:-}'"
    fi
    shutdown_vm
    rm -f "$WORK/$v.img"
    echo "# $v: $((SECONDS - t0)) s from boot"
}

# nic_of MAC: the VM's name for the NIC with MAC (udev names them; cloud-init may set names).
nic_of() { cssh "$FIPA" ip -br link 2>/dev/null | awk -v m="$1" '$3 == m { sub(/@.*/, "", $1); print $1; exit }'; }
# journal_clean V: the daemon's journal since boot holds no warning (nor anything it printed to
# stderr).
journal_clean() {
    local out
    out=$(cssh "$FIPA" "journalctl -b -q --no-pager -u nicrouted -p warning; journalctl -b -q --no-pager -u nicrouted _TRANSPORT=syslog" 2>&1 |
        grep -v 'Failed to set thread priority for worker thread' || true)
    if [[ -z $out ]]; then
        ok "$1: no warning in the daemon's journal"
    else
        not_ok "$1: warnings in the daemon's journal"
        indent <<<"$out"
    fi
}

# run_cloud_variant VARIANT: cloud-init configures the network from OpenStack's documents (see
# the top of this file).
run_cloud_variant() {
    local v=$1 t0 t1 secs secs2 out mode nic1 nic2 nic3 main2 before after status1 status2 body
    echo "# --- $v"
    t0=$SECONDS
    if ! use_tree "$([[ $v == trixie ]] && echo trixie || echo bookworm)"; then
        not_ok "$v: the guest tree (Tests/VM/guest-tree.sh)"
        return
    fi
    if ! image "$v"; then
        not_ok "$v: image with the .deb installed in a chroot"
        return
    fi
    echo "# image built in $((SECONDS - t0)) s"
    t1=$SECONDS
    rm -rf "$WORK/md"
    boot "$v"

    # 1. Both floating IPs. Root's key is cloud-init's doing (public_keys in meta_data.json).
    if ! secs=$(until_ok 300 answers "$FIPA"); then
        not_ok "$v: ssh through floating IP A after boot (root's key from the OpenStack metadata)"
        tail -n 40 "$WORK/console-$v.log" | indent
        [[ -f $WORK/metadata.log ]] && indent <"$WORK/metadata.log"
        shutdown_vm
        return
    fi
    if secs2=$(until_ok 60 answers "$FIPB"); then
        ok "$v: ssh through floating IP A after $secs s of boot, through floating IP B $secs2 s later"
    else
        not_ok "$v: ssh through floating IP B after boot (A answered after $secs s)"
        cssh "$FIPA" 'nicroutectl status; ip rule; journalctl -b -u nicrouted --no-pager | tail -n 20' 2>&1 | indent
    fi
    nic1=$(nic_of "$MACA" || true)
    nic2=$(nic_of "$MACB" || true)

    # 2. What cloud-init rendered, and main's routes, before anything changes them.
    echo "# $v: what cloud-init rendered (NIC 1 $nic1, NIC 2 $nic2), and main's routes before anything else:"
    cssh "$FIPA" 'for f in /etc/netplan/50-cloud-init.yaml /etc/network/interfaces.d/50-cloud-init; do
            [ -f "$f" ] && { echo "$f:"; sed "s/^/    /" "$f"; }
        done
        echo "ip -4 route:"; ip -4 route | sed "s/^/    /"
        echo "ip -6 route:"; ip -6 route | sed "s/^/    /"' 2>&1 | indent
    mode=$(cssh "$FIPA" 'stat -c %a /run/cloud-init/instance-data.json && setpriv --reuid=nicroute --regid=nicroute --clear-groups test -r /run/cloud-init/instance-data.json && echo readable-by-nicroute' 2>&1 | paste -sd ' ' || true)
    if [[ $mode =~ ^[0-7]*[4567]\ readable-by-nicroute$ ]]; then
        ok "$v: /run/cloud-init/instance-data.json exists, mode $(cut -d' ' -f1 <<<"$mode"): readable by all (the daemon's user nicroute reads it)"
    else
        not_ok "$v: /run/cloud-init/instance-data.json world-readable (stat and read as nicroute: '$mode')"
    fi
    out=$(cssh "$FIPA" "python3 -c '
import json
ds = json.load(open(\"/run/cloud-init/instance-data.json\")).get(\"ds\", {})
nj = ds.get(\"network_json\")
print(\"ds keys:\", \" \".join(sorted(ds)))
if isinstance(nj, dict):
    macs = {l.get(\"id\"): l.get(\"ethernet_mac_address\") for l in nj.get(\"links\") or []}
    for n in nj.get(\"networks\") or []:
        for r in n.get(\"routes\") or []:
            print(\"route\", macs.get(n.get(\"link\")), r.get(\"network\"), r.get(\"netmask\"), \"via\", r.get(\"gateway\"))
'" 2>&1 || true)
    note "instance-data.json: $(head -n1 <<<"$out")"
    if grep -qx "route $MACB 0.0.0.0 0.0.0.0 via 20.20.20.254" <<<"$out" && grep -qx "route $MACB :: :: via fd00:12::fe" <<<"$out"; then
        ok "$v: instance-data.json's ds.network_json holds NIC 2's default routes (via 20.20.20.254 and fd00:12::fe)"
    else
        not_ok "$v: instance-data.json's ds.network_json with NIC 2's default routes"
        indent <<<"$out"
    fi

    # 3. main's default route via NIC 2 (netplan renders one) deleted, as an admin or another
    # tool could: NIC 2's gateways must then come from OpenStack's network data.
    main2=$(cssh "$FIPA" "ip -4 route show default dev $nic2; ip -6 route show default dev $nic2" 2>&1 || true)
    if [[ -n $main2 ]]; then
        cssh "$FIPA" "for i in 1 2 3 4; do ip -4 route del default dev $nic2 2>/dev/null || break; done
            for i in 1 2 3 4; do ip -6 route del default dev $nic2 2>/dev/null || break; done" || true
        note "main's default routes via $nic2 deleted: $(paste -sd ';' <<<"$main2")"
        sleep 3
    else
        note "main holds no default route via $nic2"
    fi
    nic2_gateways() {
        cssh "$FIPA" nicroutectl status >"$WORK/status" 2>&1 &&
            grep -qF 'IPv4 gateway: 20.20.20.254 (from OpenStack network data)' "$WORK/status" &&
            grep -qF 'IPv6 gateway: fd00:12::fe (from OpenStack network data)' "$WORK/status" &&
            grep -qE 'IPv4 gateway: 10\.10\.10\.1 \(from ' "$WORK/status"
    }
    if secs=$(until_ok 20 nic2_gateways); then
        ok "$v: nicroutectl status: NIC 2's gateways 20.20.20.254 and fd00:12::fe from OpenStack network data, NIC 1's 10.10.10.1 ($(grep -E 'gateway|^●' "$WORK/status" | tr -s ' ' | paste -sd ';'))"
    else
        not_ok "$v: nicroutectl status names NIC 2's gateways 20.20.20.254 and fd00:12::fe (from OpenStack network data) and NIC 1's 10.10.10.1"
        indent <"$WORK/status"
    fi
    if secs=$(until_ok 30 answers "$FIPB"); then
        ok "$v: floating IP B answers$([[ -n $main2 ]] && echo " with main's default route via $nic2 gone")"
    else
        not_ok "$v: floating IP B answers$([[ -n $main2 ]] && echo " with main's default route via $nic2 gone")"
        cssh "$FIPA" "ip rule; ip route show table all | grep -v '^local\|^broadcast\|^multicast\|^anycast'" 2>&1 | indent
    fi

    # 4. check, journal.
    if out=$(cssh "$FIPA" nicroutectl check 2>&1); then
        ok "$v: nicroutectl check passes: $(tail -n1 <<<"$out")"
    else
        not_ok "$v: nicroutectl check"
        indent <<<"$out"
    fi
    journal_clean "$v"

    # 5. NIC 2's static IPv6 address (no RA anywhere: the address and gateway are the network
    # data's) answers the client, routed through router B.
    if timeout 15 ip netns exec "$CLIENT" ping -n -q -c 3 -W 2 fd00:12::29 >"$WORK/ping6" 2>&1; then
        ok "$v: NIC 2's static IPv6 address fd00:12::29 answers the client ($(grep -oE '[0-9]+ received' "$WORK/ping6"))"
    else
        not_ok "$v: NIC 2's static IPv6 address fd00:12::29 answers the client"
        cssh "$FIPA" "ip -6 addr show dev $nic2; ip -6 rule; ip -6 route show table all | grep -v '^local\|^multicast\|^anycast'" 2>&1 | indent
    fi

    # Forwarded connections (trixie): a container's port published by DNAT on NIC 2.
    if [[ $v == trixie ]]; then
        forwarded_check "$v" "$nic2"
    fi

    # cloud-init's last stages (its hotplug hook is installed in modules-final) run on while
    # the checks above do.
    CSSH_TIMEOUT=160 cssh "$FIPA" 'timeout 150 cloud-init status --wait' >/dev/null 2>&1 || true
    out=$(cssh "$FIPA" 'cloud-init status --long; cloud-init analyze blame | head -n 4
        grep -E "WARNING|ERROR" /var/log/cloud-init.log | cut -c1-200 | head -n 5' 2>&1 | grep -v '^$' || true)
    note "cloud-init done after $((SECONDS - t1)) s of boot:"
    indent <<<"$out"

    # 6. Hot-plug NIC C. The config drive never changes after boot (not describing C); the
    # metadata service describes C once it is attached, as Nova's does.
    [[ $v == cloud-init-metadata ]] && openstack_data "$WORK/md" "$v" c
    plug_nic_c dhcp
    if secs=$(until_ok 150 answers "$FIPC"); then
        nic3=$(nic_of "$MACC" || true)
        ok "$v: a NIC hot-plugged over QMP ($nic3) answers through its floating IP after $secs s"
    else
        not_ok "$v: hot-plugged NIC answers through its floating IP"
        indent <"$WORK/qmp.out"
        cssh "$FIPA" 'ip -br addr; ip rule; nicroutectl status' 2>&1 | indent
    fi
    # Who configured it: cloud-init's hotplug hook (its log), or the image's catch-all.
    out=$(cssh "$FIPA" "networkctl list --no-legend 2>/dev/null | grep -E ' en'" 2>&1 || true)
    [[ -n $out ]] && { note "hot-plug: networkd's links:"; indent <<<"$out"; }
    if [[ $v == cloud-init-metadata ]]; then
        if [[ -n ${nic3:-} ]] && cssh "$FIPA" "grep -qE '^iface $nic3 inet dhcp' /etc/network/interfaces.d/50-cloud-init"; then
            ok "$v: cloud-init's hotplug hook rendered $nic3 (iface $nic3 inet dhcp) from the metadata service's network_data.json"
        else
            not_ok "$v: cloud-init's hotplug hook rendered the hot-plugged NIC from the metadata service"
            grep -c 'network_data' "$WORK/metadata.log" | sed 's/^/network_data.json fetched: /' | indent
        fi
    fi
    unplug_nic_c "$v"
    rm -f "$WORK/dnsmasq-c.pid"
    # Detached: Nova's metadata no longer describes it.
    [[ $v == cloud-init-metadata ]] && openstack_data "$WORK/md" "$v"

    # 7. Reboot: the same table per NIC, both floating IPs answer.
    before=$(tables "$FIPA" || true)
    cssh "$FIPA" 'systemctl reboot' >/dev/null 2>&1 || true
    sleep 5
    after=""
    if secs=$(until_ok 300 answers "$FIPA") && until_ok 60 answers "$FIPB" >/dev/null &&
        after=$(tables "$FIPA") && [[ -n $before && $after == "$before" ]]; then
        ok "$v: after a reboot both floating IPs answer ($secs s), same table per NIC: $after"
    else
        not_ok "$v: reboot: tables before '$before', after '${after:-}' (A: $(answers "$FIPA" && echo yes || echo no), B: $(answers "$FIPB" && echo yes || echo no))"
        cssh "$FIPA" 'nicroutectl status; ip rule' 2>&1 | indent
    fi
    # What cloud-init's hotplug hook did with the NIC's arrival and removal (its log survives
    # the reboot).
    out=$(cssh "$FIPA" "grep -E 'hotplug not|update attempt|processing hotplug|Ifaces with ID|Applying config|Received fatal|Exiting hotplug|hotplug-hook' /var/log/cloud-init.log | grep -v 'start: ' | cut -c1-200 | tail -n 14" 2>&1 || true)
    note "cloud-init's hotplug hook, from its log:"
    indent <<<"${out:-(nothing)}"
    shutdown_vm
    rm -f "$WORK/$v.img" "$WORK/cfg.iso"
    rm -rf "$WORK/md" "$WORK/cfg"
    echo "# $v: $((SECONDS - t1)) s from boot, $((SECONDS - t0)) s with the image"
}

# forwarded_check VARIANT NIC2: a container (a network namespace behind a bridge in the VM) serves
# TCP 8081, published on NIC 2 by an nft DNAT; strict rp_filter on every interface. The request
# arrives on NIC 2 from the client's address, which main routes via NIC 1: strict rp_filter
# passes it only by the mark (src_valid_mark on NIC 2), and the reply, from the container's
# address, leaves through NIC 2 only by the daemon's mark rules (ForwardedConnections=auto).
forwarded_check() {
    local v=$1 nic2=$2 out body
    # (Not ve-*/vb-*: systemd-networkd's own 80-container-*.network would take the host side
    # of the veth out of the bridge.)
    out=$(cssh "$FIPA" "set -e
        ip netns add ctr
        ip link add brctr0 type bridge
        ip addr add 172.31.0.1/24 dev brctr0
        ip link set brctr0 up
        ip link add vhctr0 type veth peer name eth0 netns ctr
        ip link set vhctr0 master brctr0 up
        ip -n ctr addr add 172.31.0.2/24 dev eth0
        ip -n ctr link set lo up
        ip -n ctr link set eth0 up
        ip -n ctr route add default via 172.31.0.1
        mkdir -p /srv/ctr && echo nicroute-forwarded >/srv/ctr/index.html
        printf '%s\n' 'table ip nrvtest {' ' chain pre {' '  type nat hook prerouting priority dstnat;' \
            '  iifname \"$nic2\" tcp dport 8081 dnat to 172.31.0.2:8081' ' }' '}' | nft -f -
        setsid -f sh -c 'cd /srv/ctr && exec ip netns exec ctr python3 -m http.server 8081 --bind 172.31.0.2' </dev/null >/dev/null 2>&1
        for i in \$(seq 50); do ip netns exec ctr python3 -c 'import socket; socket.create_connection((\"172.31.0.2\", 8081), 1)' 2>/dev/null && break; sleep 0.2; done
        sysctl -n net.ipv4.conf.all.rp_filter net.ipv4.conf.$nic2.rp_filter net.ipv4.conf.$nic2.src_valid_mark net.ipv4.ip_forward | paste -sd ' '" 2>&1 || true)
    note "in the VM: rp_filter (all, $nic2), src_valid_mark ($nic2), ip_forward: $(tail -n1 <<<"$out")"
    body=$(timeout 15 ip netns exec "$CLIENT" python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().strip())' \
        "http://$FIPB:8081/" 2>&1 | tail -n1 || true)
    read -r rpa rp2 svm fwd <<<"$(tail -n1 <<<"$out")" || true
    if [[ $body == nicroute-forwarded && $rpa == 1 && $rp2 == 1 && $fwd == 1 ]]; then
        ok "$v: forwarded connection: http://$FIPB:8081 (nft DNAT on $nic2 to a container) answers with strict rp_filter on all and $nic2"
    else
        not_ok "$v: forwarded connection to a container through floating IP B: '$body'; rp_filter all $rpa, $nic2 $rp2, ip_forward $fwd"
        indent <<<"$out"
        cssh "$FIPA" "ip rule; nft list table inet nicroute; sysctl net.ipv4.conf.$nic2.forwarding net.ipv4.conf.brctr0.forwarding net.ipv4.conf.brctr0.rp_filter
            ip -s -br link show dev brctr0; ip -n ctr -s -br link; ip netns exec ctr ss -ltn; ip route show table all | grep -v '^local\\|^broadcast\\|^multicast\\|^anycast\\|^fe80\\|^ff00'
            nstat -az 2>/dev/null | grep -E 'ReversePath|InNoRoutes|ForwDatagrams|OutNoRoutes|InAddrErrors'" 2>&1 | indent
    fi
    if [[ $svm == 1 ]]; then
        ok "$v: net.ipv4.conf.$nic2.src_valid_mark is 1 (set by the daemon under the shipped unit)"
    else
        not_ok "$v: net.ipv4.conf.$nic2.src_valid_mark is '$svm', not 1"
    fi
    journal_clean "$v (after the forwarded connection)"
}

for v in "${VARIANTS[@]}"; do
    case $v in
        networkd | networkmanager | ifupdown | dib) run_variant "$v" ;;
        cloud-init | cloud-init-metadata | trixie) run_cloud_variant "$v" ;;
        *) echo "vm.sh: unknown variant $v" >&2; exit 2 ;;
    esac
done
summary
((FAILED == 0))
