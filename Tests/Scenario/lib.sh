# shellcheck shell=bash
# Shared topology and assertion helpers for nicroute's real-kernel scenario tests and demo.
#
# Source it from bash (`source Tests/Scenario/lib.sh`); it defines variables and functions
# only. Everything it builds lives in network namespaces named "$NR_PREFIX-<role>-$NR_ID"
# (NR_ID defaults to the caller's PID): nothing is configured in the root namespace, and
# traffic only flows between those namespaces. Call nr_install_traps right after sourcing so
# that every exit path (normal, error, INT, TERM) kills what was started and deletes the
# namespaces.
#
# The topology: an OpenStack VM with two NICs, each behind its own Neutron router with one
# floating IP, and a client ("the internet") that reaches both floating IPs.
#
#   client 192.0.2.100 (lo)                                       VM (strict rp_filter)
#     c-a 203.0.113.100 ── qg-a [rtrA: FIP 203.0.113.10] qr-a ── eth0 10.10.10.29  (default route)
#     c-b 198.51.100.100 ── qg-b [rtrB: FIP 198.51.100.20] qr-b ── eth1 20.20.20.16
#     c-c 100.64.0.100 ── qg-c [rtrC: FIP 100.64.0.30] qr-c ── eth2 30.30.30.17   (hot-plugged)
#                                                        br-docker 172.17.0.1/16 ── container 172.17.0.2
#
# Each router DNATs its floating IP to the NIC's fixed address, SNATs that address back, and
# drops in FORWARD what comes from the VM with another source (Neutron port security).
# A NIC is named by a letter (A, B, C); `nv LETTER FIELD` reads its variable FIELD_LETTER.

export LC_ALL=C

# ---- names and addresses (override before sourcing) -------------------------------------
: "${NR_PREFIX:=nr}"
: "${NR_ID:=$$}"
: "${NS_VM:=$NR_PREFIX-vm-$NR_ID}"
: "${NS_CLIENT:=$NR_PREFIX-cl-$NR_ID}"
: "${NS_CT:=$NR_PREFIX-ct-$NR_ID}"
: "${NS_RTR_A:=$NR_PREFIX-ra-$NR_ID}"
: "${NS_RTR_B:=$NR_PREFIX-rb-$NR_ID}"
: "${NS_RTR_C:=$NR_PREFIX-rc-$NR_ID}"

# NIC A: eth0, the VM's default-route NIC, with the metadata route.
: "${NIC_A:=eth0}" "${MAC_A:=fa:16:3e:a5:c9:72}" "${ADDR_A:=10.10.10.29}" "${NET_A:=10.10.10.0/24}"
: "${GW_A:=10.10.10.1}" "${ADDR6_A:=fd00:10::29}" "${NET6_A:=fd00:10::/64}" "${GW6_A:=fd00:10::1}"
: "${QR_A:=qr-a}" "${QG_A:=qg-a}" "${CIF_A:=c-a}" "${EXTNET_A:=203.0.113.0/24}"
: "${EXT_RTR_A:=203.0.113.1}" "${EXT_CLI_A:=203.0.113.100}" "${FIP_A:=203.0.113.10}"
# NIC B: eth1, no default route: its floating IP is the one that is dead without nicroute.
: "${NIC_B:=eth1}" "${MAC_B:=fa:16:3e:7b:85:2d}" "${ADDR_B:=20.20.20.16}" "${NET_B:=20.20.20.0/24}"
: "${GW_B:=20.20.20.1}" "${ADDR6_B:=fd00:20::16}" "${NET6_B:=fd00:20::/64}" "${GW6_B:=fd00:20::1}"
: "${QR_B:=qr-b}" "${QG_B:=qg-b}" "${CIF_B:=c-b}" "${EXTNET_B:=198.51.100.0/24}"
: "${EXT_RTR_B:=198.51.100.1}" "${EXT_CLI_B:=198.51.100.100}" "${FIP_B:=198.51.100.20}"
# NIC C: eth2, hot-plugged while the daemon runs; IPv4 only.
: "${NIC_C:=eth2}" "${MAC_C:=fa:16:3e:3c:11:07}" "${ADDR_C:=30.30.30.17}" "${NET_C:=30.30.30.0/24}"
: "${GW_C:=30.30.30.1}" "${ADDR6_C:=}" "${NET6_C:=}" "${GW6_C:=}"
: "${QR_C:=qr-c}" "${QG_C:=qg-c}" "${CIF_C:=c-c}" "${EXTNET_C:=100.64.0.0/24}"
: "${EXT_RTR_C:=100.64.0.1}" "${EXT_CLI_C:=100.64.0.100}" "${FIP_C:=100.64.0.30}"

: "${CLIENT_ADDR:=192.0.2.100}"      # the client's own address (on lo); probes use it as source
: "${METADATA_ADDR:=169.254.169.254}"
: "${BR_DOCKER:=br-docker}" "${BR_ADDR:=172.17.0.1}" "${BR_NET:=172.17.0.0/16}" "${CT_ADDR:=172.17.0.2}"
: "${BR_PORT:=veth-ct}"              # the bridge's port in the VM (a veth: never managed)
: "${V6_PROBE_DST:=2001:db8::1}"     # an off-link IPv6 destination for the route oracle
: "${NICROUTE_PROTO_RE:=110|nicroute}"  # how `ip` prints nicroute's protocol number
: "${TCP_PORT:=8080}" "${UDP_PORT:=5353}"

NR_LIB="${BASH_SOURCE[0]}"
NR_NAMESPACES=()   # namespaces created so far (deleted by nr_cleanup)
NR_PIDS=()         # background processes started so far (killed by nr_cleanup)
NR_RMDIRS=()       # empty directories to remove once they are (cgroups; by nr_cleanup)
NR_PASS=0
NR_FAIL=0
NR_SUMMARY_DONE=0
NR_CLEANED=0
: "${NR_TMP:=}"
: "${NR_PY:=}"

# nv LETTER FIELD: print the value of variable FIELD_LETTER (e.g. `nv B ADDR` -> 20.20.20.16).
nv() {
  local name="$2_$1"
  printf '%s' "${!name}"
}

# nr_log MSG...: print a progress line to stderr.
nr_log() { printf '# %s\n' "$*" >&2; }

# nr_die MSG...: print an error and exit 1 (the traps clean up).
nr_die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# ---- prerequisites --------------------------------------------------------------------

# nr_require_root: exit unless running as root (namespaces need CAP_SYS_ADMIN/NET_ADMIN).
nr_require_root() {
  [[ $(id -u) -eq 0 ]] || nr_die "must run as root (try: sudo bash $0)"
}

# nr_ensure_deps: install what the scenario needs (iproute2 iptables python3 jq procps
# iputils-ping), only when something is missing.
nr_ensure_deps() {
  nr_ensure_packages ip:iproute2 iptables:iptables python3:python3 jq:jq ps:procps ping:iputils-ping
}

# nr_ensure_packages CMD:PKG...: apt-get install PKG for each CMD not found (apt-get update
# first, once, and only when something is missing); CMD "pkgconfig-LIB" checks pkg-config.
nr_ensure_packages() {
  local -a missing=()
  local pair cmd pkg
  for pair in "$@"; do
    cmd=${pair%%:*} pkg=${pair#*:}
    if [[ $cmd == pkgconfig-* ]]; then
      command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "${cmd#pkgconfig-}" && continue
    elif command -v "$cmd" >/dev/null 2>&1; then
      continue
    fi
    [[ " ${missing[*]} " == *" $pkg "* ]] || missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  nr_log "installing missing packages: ${missing[*]}"
  command -v apt-get >/dev/null 2>&1 || nr_die "missing ${missing[*]} and no apt-get to install them"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >/dev/null
}

# nr_find_swift: make sure `swift` is on PATH (Swift toolchains often live in /opt/swift).
nr_find_swift() {
  command -v swift >/dev/null 2>&1 && return 0
  local d
  for d in /opt/swift/usr/bin /usr/share/swift/usr/bin; do
    if [[ -x $d/swift ]]; then
      PATH="$d:$PATH"
      export PATH
      return 0
    fi
  done
  return 1
}

# nr_find_binaries: NICROUTED and NICROUTECTL name executables: as given, or the debug build
# of $REPO (built here when NICROUTED is not set; NICROUTECTL defaults to NICROUTED's neighbour).
nr_find_binaries() {
  if [[ -z ${NICROUTED:-} ]]; then
    nr_find_swift || nr_die "swift toolchain not found (set NICROUTED=/path/to/nicrouted)"
    (cd "$REPO" && swift build --product nicrouted && swift build --product nicroutectl) >/dev/null 2>&1 ||
      nr_die "swift build failed"
    NICROUTED=$REPO/.build/debug/nicrouted
  fi
  : "${NICROUTECTL:=$(dirname "$NICROUTED")/nicroutectl}"
  [[ -x $NICROUTED && -x $NICROUTECTL ]] || nr_die "nicrouted ($NICROUTED) and nicroutectl ($NICROUTECTL) are built"
}

# ---- lifecycle: temp dir, background processes, cleanup -------------------------------

# nr_install_traps: clean up on every exit path; a signal exits 130/143 after cleanup.
nr_install_traps() {
  trap 'nr_on_exit' EXIT
  trap 'nr_cleanup; exit 130' INT
  trap 'nr_cleanup; exit 143' TERM
}

# nr_on_exit: EXIT trap: report an unexpected abort in the summary, then clean up.
nr_on_exit() {
  local rc=$?
  if [[ ${NR_SUMMARY_NAME:-} && $NR_SUMMARY_DONE -eq 0 ]]; then
    nr_fail "script aborted unexpectedly (exit status $rc)"
    nr_summary_line
  fi
  nr_cleanup
  return "$rc"
}

# nr_cleanup: kill the processes we started, delete our namespaces and temp dir (idempotent).
nr_cleanup() {
  [[ $NR_CLEANED -eq 1 ]] && return 0
  NR_CLEANED=1
  local pid ns i errexit=$-
  set +e
  for pid in "${NR_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  # Give them a moment (bounded), then insist.
  for ((i = 0; i < 20; i++)); do
    local alive=0
    for pid in "${NR_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [[ $alive -eq 0 ]] && break
    sleep 0.05
  done
  for pid in "${NR_PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  for ns in "${NR_NAMESPACES[@]}"; do
    # Anything still running inside one of our namespaces was started by this script.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  # Directories (cgroups) a test made for its processes, once those are gone.
  for d in "${NR_RMDIRS[@]}"; do
    for ((i = 0; i < 20; i++)); do rmdir "$d" 2>/dev/null && break; [[ -d $d ]] || break; sleep 0.05; done
  done
  if [[ -n $NR_TMP && -d $NR_TMP && ${NR_KEEP_TMP:-0} != 1 ]]; then
    rm -rf -- "$NR_TMP"
  fi
  [[ $errexit == *e* ]] && set -e
  return 0
}

# nr_tmp_init: create the private temp dir ($NR_TMP) and the python helper in it.
nr_tmp_init() {
  [[ -n $NR_TMP ]] && return 0
  NR_TMP=$(mktemp -d "/tmp/$NR_PREFIX-scenario.XXXXXX")
  NR_PY=$(python3 -c 'import sys; print(sys.executable)')
  nr_write_pyhelper "$NR_TMP/nrhelper.py"
}

# nr_bg NS LOGFILE CMD...: run CMD in namespace NS (or the current one if NS is "-") in the
# background, output to LOGFILE, and remember its PID; the PID is left in NR_LAST_PID.
nr_bg() {
  local ns=$1 log=$2
  shift 2
  if [[ $ns == - ]]; then
    "$@" >"$log" 2>&1 &
  else
    # `ip netns exec` execs CMD, so $! is CMD's own PID.
    ip netns exec "$ns" "$@" >"$log" 2>&1 &
  fi
  NR_LAST_PID=$!
  NR_PIDS+=("$NR_LAST_PID")
}

# nr_stop_pid PID [TIMEOUT_S]: SIGTERM our child PID and wait (bounded) for it; its exit
# status goes to NR_STOP_RC ("timeout" if it had to be killed). Not in $(...): wait needs
# the parent shell.
nr_stop_pid() {
  local pid=$1 timeout=${2:-5}
  # shellcheck disable=SC2034 # read by the caller
  NR_STOP_RC=0
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_until "$timeout" nr_pid_gone "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    NR_STOP_RC=timeout
    return 0
  fi
  # shellcheck disable=SC2034 # read by the caller
  wait "$pid" 2>/dev/null || NR_STOP_RC=$?
}

# nr_pid_gone PID: true once PID has exited (a zombie child counts as exited).
nr_pid_gone() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
  [[ -z $state || $state == Z* ]]
}

# ---- polling and time -----------------------------------------------------------------

# nr_now_us: the wall clock in microseconds (no fork).
nr_now_us() {
  local t=${EPOCHREALTIME/[.,]/}
  printf '%s' "$((10#$t))"
}

# wait_until TIMEOUT_S CMD...: run CMD until it succeeds or TIMEOUT_S (decimal) has passed;
# at least one try, at most one try per 20 ms. Returns CMD's last verdict.
wait_until() {
  local timeout=$1
  shift
  local ms deadline tries max
  ms=$(awk -v t="$timeout" 'BEGIN { printf "%d", t * 1000 }')
  deadline=$(($(nr_now_us) + ms * 1000))
  max=$((ms / 20 + 1))
  for ((tries = 0; tries < max; tries++)); do
    "$@" && return 0
    [[ $(nr_now_us) -ge $deadline ]] && return 1
    sleep 0.02
  done
  "$@"
}

# ---- topology -------------------------------------------------------------------------

# nr_ns_new NS: create namespace NS (registered for cleanup first) with lo up.
nr_ns_new() {
  NR_NAMESPACES+=("$1")
  ip netns add "$1"
  ip -n "$1" link set lo up
}

# nr_sysctl NS KEY=VALUE...: set sysctls inside namespace NS.
nr_sysctl() {
  local ns=$1
  shift
  ip netns exec "$ns" sysctl -qw "$@" >/dev/null
}

# topo_create: build the client, routers A and B, the VM with eth0/eth1 and the docker bridge.
topo_create() {
  nr_tmp_init
  nr_ns_new "$NS_CLIENT"
  nr_ns_new "$NS_VM"
  nr_ns_new "$NS_CT"

  # The client: its own address on lo; links to the routers come with each router.
  ip -n "$NS_CLIENT" addr add "$CLIENT_ADDR/32" dev lo

  # The VM: strict reverse-path filtering, like the "reply via the wrong NIC" drop.
  nr_sysctl "$NS_VM" net.ipv4.conf.all.rp_filter=1 net.ipv4.conf.default.rp_filter=1 \
    net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0

  router_create A
  router_create B
  vm_nic_plug A
  vm_nic_address A
  vm_nic_plug B
  vm_nic_address B

  # The main table, as cloud-init/DHCP leaves it: one default route, on eth0, and metadata.
  ip -n "$NS_VM" route add default via "$GW_A" dev "$NIC_A"
  ip -n "$NS_VM" route add "$METADATA_ADDR" via "$GW_A" dev "$NIC_A"
  ip -n "$NS_VM" -6 route add default via "$GW6_A" dev "$NIC_A"

  docker_bridge_create
}

# router_create X: namespace rtrX with qg-x (to the client) carrying floating IP FIP_X,
# DNAT/SNAT between FIP_X and ADDR_X, port security on qr-x, default route to the client.
router_create() {
  local x=$1 ns qg cif plen
  ns=$(nv "$x" NS_RTR) qg=$(nv "$x" QG) cif=$(nv "$x" CIF) plen=$(nv "$x" EXTNET | cut -d/ -f2)
  nr_ns_new "$ns"
  nr_sysctl "$ns" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
    net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  ip -n "$NS_CLIENT" link add "$cif" type veth peer name "$qg" netns "$ns"
  ip -n "$NS_CLIENT" addr add "$(nv "$x" EXT_CLI)/$plen" dev "$cif"
  ip -n "$NS_CLIENT" link set "$cif" up
  ip -n "$ns" addr add "$(nv "$x" EXT_RTR)/$plen" dev "$qg"
  ip -n "$ns" addr add "$(nv "$x" FIP)/32" dev "$qg"
  ip -n "$ns" link set "$qg" up
  ip -n "$ns" route add default via "$(nv "$x" EXT_CLI)" dev "$qg"
  # The floating IP (Neutron's legacy router: iptables nat in the qrouter namespace).
  ip netns exec "$ns" iptables -w 5 -t nat -A PREROUTING -d "$(nv "$x" FIP)" \
    -j DNAT --to-destination "$(nv "$x" ADDR)"
  ip netns exec "$ns" iptables -w 5 -t nat -A POSTROUTING -s "$(nv "$x" ADDR)" \
    -j SNAT --to-source "$(nv "$x" FIP)"
  # Port security: the VM port may only send with its own fixed address.
  ip netns exec "$ns" iptables -w 5 -A FORWARD -i "$(nv "$x" QR)" ! -s "$(nv "$x" ADDR)" -j DROP
}

# vm_nic_plug X: hot-plug NIC X into the VM (a veth whose peer qr-x is router X's inside leg).
vm_nic_plug() {
  local x=$1 nic qr rtr
  nic=$(nv "$x" NIC) qr=$(nv "$x" QR) rtr=$(nv "$x" NS_RTR)
  ip -n "$NS_VM" link add "$nic" address "$(nv "$x" MAC)" type veth peer name "$qr" netns "$rtr"
  ip -n "$rtr" addr add "$(nv "$x" GW)/$(nv "$x" NET | cut -d/ -f2)" dev "$qr"
  if [[ -n $(nv "$x" GW6) ]]; then
    ip -n "$rtr" addr add "$(nv "$x" GW6)/$(nv "$x" NET6 | cut -d/ -f2)" dev "$qr" nodad
  fi
  ip -n "$rtr" link set "$qr" up
  nr_sysctl "$NS_VM" "net.ipv4.conf.$nic.rp_filter=1"
  ip -n "$NS_VM" link set "$nic" up
}

# vm_nic_address X: give NIC X its fixed address(es), as DHCP/cloud-init would.
vm_nic_address() {
  local x=$1 nic
  nic=$(nv "$x" NIC)
  ip -n "$NS_VM" addr add "$(nv "$x" ADDR)/$(nv "$x" NET | cut -d/ -f2)" dev "$nic"
  if [[ -n $(nv "$x" ADDR6) ]]; then
    ip -n "$NS_VM" addr add "$(nv "$x" ADDR6)/$(nv "$x" NET6 | cut -d/ -f2)" dev "$nic" nodad
  fi
}

# vm_nic_unplug X: remove NIC X from the VM (deleting the veth deletes its router-side peer).
vm_nic_unplug() {
  ip -n "$NS_VM" link del "$(nv "$1" NIC)"
}

# docker_bridge_create: a docker-like bridge in the VM with one "container" behind it.
docker_bridge_create() {
  ip -n "$NS_VM" link add "$BR_DOCKER" type bridge
  ip -n "$NS_VM" addr add "$BR_ADDR/${BR_NET#*/}" dev "$BR_DOCKER"
  ip -n "$NS_VM" link set "$BR_DOCKER" up
  ip -n "$NS_VM" link add "$BR_PORT" type veth peer name eth0 netns "$NS_CT"
  ip -n "$NS_VM" link set "$BR_PORT" master "$BR_DOCKER" up
  nr_sysctl "$NS_VM" "net.ipv4.conf.$BR_DOCKER.rp_filter=1"
  ip -n "$NS_CT" addr add "$CT_ADDR/${BR_NET#*/}" dev eth0
  ip -n "$NS_CT" link set eth0 up
  ip -n "$NS_CT" route add default via "$BR_ADDR"
}

# topo_destroy: tear everything down now (the traps do the same at exit).
topo_destroy() { nr_cleanup; }

# ---- servers and probes ---------------------------------------------------------------

# nr_write_pyhelper FILE: write the python3 helper (echo servers, probes, sd_notify) to FILE.
nr_write_pyhelper() {
  cat >"$1" <<'PY'
"""nicroute scenario helper: echo servers, probe clients, sd_notify listener and sender."""
import os
import socket
import sys


def ready(path):
    if path:
        open(path, "w").close()


def tcp_server(port, ready_file):
    # TCP answers from the address the connection reached, whatever it was bound to.
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(port)))
    s.listen(64)
    ready(ready_file)
    while True:
        conn, _ = s.accept()
        with conn:
            conn.settimeout(2)
            try:
                conn.sendall(conn.recv(4096))
            except OSError:
                pass


def udp_server(addr, port, ready_file):
    # Bound to one address, so the reply's source is the address the request reached
    # (a wildcard UDP socket without IP_PKTINFO would answer from the main table's choice).
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, int(port)))
    ready(ready_file)
    while True:
        data, peer = s.recvfrom(4096)
        s.sendto(data, peer)


def tcp_client(src, dst, port, timeout):
    token = os.urandom(8).hex().encode()
    with socket.create_connection((dst, int(port)), timeout=float(timeout),
                                  source_address=(src, 0)) as c:
        c.sendall(token)
        return c.recv(4096) == token


def udp_client(src, dst, port, timeout):
    token = os.urandom(8).hex().encode()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(float(timeout))
    s.bind((src, 0))
    s.connect((dst, int(port)))  # only the floating IP's answer counts
    s.send(token)
    return s.recv(4096) == token


def notify_listen(path, out):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    ready(out)
    with open(out, "a") as f:
        while True:
            f.write(s.recv(65536).decode(errors="replace").replace("\n", " ") + "\n")
            f.flush()


def notify_send(msg):
    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return True
    if path.startswith("@"):
        path = "\0" + path[1:]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(msg.encode(), path)
    return True


def main(argv):
    mode, args = argv[1], argv[2:]
    try:
        if mode == "tcp-server":
            tcp_server(*args)
        elif mode == "udp-server":
            udp_server(*args)
        elif mode == "tcp-client":
            return 0 if tcp_client(*args) else 1
        elif mode == "udp-client":
            return 0 if udp_client(*args) else 1
        elif mode == "notify-listen":
            notify_listen(*args)
        elif mode == "notify":
            return 0 if notify_send(*args) else 1
        else:
            print("unknown mode " + mode, file=sys.stderr)
            return 2
    except (OSError, ValueError) as e:
        print("%s: %s" % (mode, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
PY
}

# nr_py ARGS...: run the python helper.
nr_py() { "$NR_PY" "$NR_TMP/nrhelper.py" "$@"; }

# start_tcp_echo [PORT]: TCP echo server on 0.0.0.0:PORT in the VM (background, tracked).
start_tcp_echo() {
  local port=${1:-$TCP_PORT} ready
  ready="$NR_TMP/tcp-$port.ready"
  nr_bg "$NS_VM" "$NR_TMP/tcp-echo-$port.log" "$NR_PY" "$NR_TMP/nrhelper.py" tcp-server "$port" "$ready"
  wait_until 5 test -e "$ready" || nr_die "TCP echo server on port $port did not start"
}

# start_udp_echo ADDR [PORT]: UDP echo server bound to ADDR:PORT in the VM; PID in NR_LAST_PID.
start_udp_echo() {
  local addr=$1 port=${2:-$UDP_PORT} ready
  ready="$NR_TMP/udp-$addr-$port.ready"
  rm -f "$ready"
  nr_bg "$NS_VM" "$NR_TMP/udp-echo-$addr-$port.log" "$NR_PY" "$NR_TMP/nrhelper.py" udp-server "$addr" "$port" "$ready"
  wait_until 5 test -e "$ready" || nr_die "UDP echo server on $addr:$port did not start"
}

# probe_ping FIP [TRIES]: ping FIP from the client (source CLIENT_ADDR), 1 s per try.
probe_ping() {
  local fip=$1 tries=${2:-3} i
  for ((i = 0; i < tries; i++)); do
    ip netns exec "$NS_CLIENT" ping -n -q -c1 -W1 -I "$CLIENT_ADDR" "$fip" >/dev/null 2>&1 && return 0
  done
  return 1
}

# probe_tcp FIP [PORT] [TRIES]: TCP echo round trip from the client to FIP:PORT.
probe_tcp() {
  local fip=$1 port=${2:-$TCP_PORT} tries=${3:-3} i
  for ((i = 0; i < tries; i++)); do
    ip netns exec "$NS_CLIENT" "$NR_PY" "$NR_TMP/nrhelper.py" tcp-client "$CLIENT_ADDR" "$fip" "$port" 1 \
      >/dev/null 2>&1 && return 0
  done
  return 1
}

# probe_udp FIP [PORT] [TRIES]: UDP echo round trip from the client to FIP:PORT.
probe_udp() {
  local fip=$1 port=${2:-$UDP_PORT} tries=${3:-3} i
  for ((i = 0; i < tries; i++)); do
    ip netns exec "$NS_CLIENT" "$NR_PY" "$NR_TMP/nrhelper.py" udp-client "$CLIENT_ADDR" "$fip" "$port" 1 \
      >/dev/null 2>&1 && return 0
  done
  return 1
}

# probe_vm_ping SRC DST [TRIES]: ping DST from inside the VM with source SRC.
probe_vm_ping() {
  local src=$1 dst=$2 tries=${3:-3} i
  for ((i = 0; i < tries; i++)); do
    ip netns exec "$NS_VM" ping -n -q -c1 -W1 -I "$src" "$dst" >/dev/null 2>&1 && return 0
  done
  return 1
}

# ---- the kernel's answers -------------------------------------------------------------

# route_get NS DST [SRC]: the kernel's route for DST (from SRC), printed as "dev D[ via G]",
# or "error: ..." when there is none.
route_get() {
  local ns=$1 dst=$2 src=${3:-} out
  local -a from=()
  [[ -n $src ]] && from=(from "$src")
  if ! out=$(ip -j -n "$ns" route get "$dst" "${from[@]}" 2>&1); then
    printf 'error: %s' "$(printf '%s' "$out" | head -n1)"
    return 0
  fi
  printf '%s' "$out" | jq -r '.[0] | "dev \(.dev)" + (if .gateway then " via \(.gateway)" else "" end)'
}

# route_is NS DST SRC WANT: true when route_get NS DST SRC prints exactly WANT.
route_is() {
  [[ $(route_get "$1" "$2" "$3") == "$4" ]]
}

# nicroute_rules NS: print "src table priority" for each nicroute-owned rule (IPv4 and IPv6).
nicroute_rules() {
  local ns=$1
  { ip -j -n "$ns" -4 rule show; ip -j -n "$ns" -6 rule show; } |
    jq -r --arg re "^($NICROUTE_PROTO_RE)\$" \
      '.[] | select((.protocol // "") | test($re)) | "\(.src)\(if .srclen then "/\(.srclen)" else "" end) \(.table) \(.priority)"'
}

# nicroute_rule_count NS ADDR: how many nicroute-owned rules have source ADDR.
nicroute_rule_count() {
  local n
  n=$(nicroute_rules "$1" | awk -v a="$2" '$1 == a || $1 == a "/32" || $1 == a "/128"' | wc -l)
  printf '%s' "$n"
}

# has_nicroute_rule NS ADDR: true when at least one nicroute-owned rule has source ADDR.
has_nicroute_rule() {
  [[ $(nicroute_rule_count "$1" "$2") -ge 1 ]]
}

# has_no_nicroute_rule NS ADDR: true when no nicroute-owned rule has source ADDR.
has_no_nicroute_rule() {
  [[ $(nicroute_rule_count "$1" "$2") -eq 0 ]]
}

# nicroute_table_of NS ADDR: the table of the (first) nicroute rule with source ADDR.
nicroute_table_of() {
  nicroute_rules "$1" | awk -v a="$2" '$1 == a || $1 == a "/32" || $1 == a "/128" { print $2; exit }'
}

# nicroute_routes NS: every nicroute-owned route in every table, both families.
nicroute_routes() {
  local p
  for p in ${NICROUTE_PROTO_RE//|/ }; do
    ip -n "$1" -4 route show table all proto "$p" 2>/dev/null || true
    ip -n "$1" -6 route show table all proto "$p" 2>/dev/null || true
  done
}

# main_tables NS: the main routing table, IPv4 then IPv6 (for before/after comparisons).
main_tables() {
  # Sorted: a route the kernel re-adds (e.g. fe80::/64 after a link bounce) moves in the dump.
  ip -n "$1" -4 route show table main | sort
  echo ---
  ip -n "$1" -6 route show table main | sort
}

# foreign_rules NS: every rule that nicroute does not own, IPv4 then IPv6.
foreign_rules() {
  { ip -n "$1" -4 rule show; echo ---; ip -n "$1" -6 rule show; } | grep -Ev "proto ($NICROUTE_PROTO_RE)( |\$)"
}

# ---- checks and summary ---------------------------------------------------------------

# nr_pass DESC: record and print a passing check.
nr_pass() {
  NR_PASS=$((NR_PASS + 1))
  printf 'ok - %s\n' "$1"
}

# nr_fail DESC: record and print a failing check.
nr_fail() {
  NR_FAIL=$((NR_FAIL + 1))
  printf 'not ok - %s\n' "$1"
}

# check DESC CMD...: pass when CMD succeeds.
check() {
  local desc=$1
  shift
  if "$@"; then nr_pass "$desc"; else nr_fail "$desc"; fi
}

# check_fails DESC CMD...: pass when CMD fails.
check_fails() {
  local desc=$1
  shift
  if "$@"; then nr_fail "$desc"; else nr_pass "$desc"; fi
}

# check_route DESC DST SRC WANT [TIMEOUT_S]: pass when the VM's kernel routes DST from SRC as
# WANT ("dev D[ via G]"), waiting up to TIMEOUT_S for it (default: one look).
check_route() {
  local desc=$1 dst=$2 src=$3 expect=$4 timeout=${5:-0}
  if wait_until "$timeout" route_is "$NS_VM" "$dst" "$src" "$expect"; then
    nr_pass "$desc: $expect"
  else
    nr_fail "$desc: want '$expect', kernel says '$(route_get "$NS_VM" "$dst" "$src")'"
  fi
}

# check_same DESC FILE CMD...: pass when CMD's output equals FILE's content (else show a diff).
check_same() {
  local desc=$1 file=$2
  shift 2
  local now
  now=$("$@")
  if [[ $now == "$(cat "$file")" ]]; then
    nr_pass "$desc"
  else
    nr_fail "$desc"
    diff <(cat "$file") <(printf '%s\n' "$now") | sed 's/^/#   /' || true
  fi
}

# nr_summary NAME: from now on an abort still prints NAME's summary line.
nr_summary() { NR_SUMMARY_NAME=$1; }

# nr_summary_line: print "NAME: N passed, M failed" once.
nr_summary_line() {
  [[ $NR_SUMMARY_DONE -eq 1 ]] && return 0
  NR_SUMMARY_DONE=1
  printf '%s: %d passed, %d failed\n' "${NR_SUMMARY_NAME:-scenario}" "$NR_PASS" "$NR_FAIL"
}

# ---- the daemon -----------------------------------------------------------------------

# nicrouted_start LOG ARGS...: start $NICROUTED in the VM namespace in the background with
# NOTIFY_SOCKET pointing at our listener; PID in NICROUTED_PID. NICROUTED=manual runs the
# hand-made stand-in below instead (validation of the test itself, not of nicroute).
nicrouted_start() {
  local log=$1
  shift
  local -a cmd=("$NICROUTED")
  if [[ $NICROUTED == manual ]]; then
    cmd=(env "NS_VM=$NS_VM" "NR_TMP=$NR_TMP" "NR_PY=$NR_PY" bash "$NR_LIB" standin-daemon)
  fi
  nr_notify_listen
  # Appends, so a restart keeps the first run's log.
  NOTIFY_SOCKET="$NR_TMP/notify.sock" ip netns exec "$NS_VM" "${cmd[@]}" "$@" >>"$log" 2>&1 &
  NICROUTED_PID=$!
  NR_PIDS+=("$NICROUTED_PID")
}

# nicrouted_alive: true while the daemon started by nicrouted_start runs.
nicrouted_alive() { ! nr_pid_gone "$NICROUTED_PID"; }

# nicrouted_rule_or_dead ADDR: true once a nicroute rule from ADDR exists or the daemon died.
nicrouted_rule_or_dead() { has_nicroute_rule "$NS_VM" "$1" || ! nicrouted_alive; }

# nr_notify_listen: start (once) an sd_notify listener; messages land in $NR_TMP/notify.log.
nr_notify_listen() {
  [[ -e $NR_TMP/notify.log ]] && return 0
  nr_bg - "$NR_TMP/notify-listener.log" "$NR_PY" "$NR_TMP/nrhelper.py" notify-listen \
    "$NR_TMP/notify.sock" "$NR_TMP/notify.log"
  wait_until 5 test -e "$NR_TMP/notify.log" || nr_die "sd_notify listener did not start"
}

# notify_count WORD: how many sd_notify messages so far contained WORD (e.g. READY=1).
notify_count() {
  local n=0
  [[ -e $NR_TMP/notify.log ]] && n=$(grep -c -- "$1" "$NR_TMP/notify.log" || true)
  printf '%s' "$n"
}

# notify_count_at_least WORD N: true once WORD was seen in N sd_notify messages.
notify_count_at_least() { [[ $(notify_count "$1") -ge $2 ]]; }

# ---- the hand-made policy (validation stand-in for nicrouted) --------------------------

# nic_table X: the routing table the manual policy gives NIC X (A 10000, B 10001, C 10002).
nic_table() {
  case $1 in A) echo 10000 ;; B) echo 10001 ;; C) echo 10002 ;; *) return 1 ;; esac
}

# install_manual_policy NS X...: install by hand, idempotently, what nicroute should install
# for the NICs X... (letters) and remove what it would have left for the other letters.
install_manual_policy() {
  local ns=$1
  shift
  local -a want=("$@")
  local x y t gw gw6 nic rules4 rules6 b4="" b6=""
  rules4=$(ip -n "$ns" -4 rule show)
  rules6=$(ip -n "$ns" -6 rule show)
  for x in "${want[@]}"; do
    t=$(nic_table "$x") nic=$(nv "$x" NIC) gw=$(nv "$x" GW) gw6=$(nv "$x" GW6)
    b4+="route replace $(nv "$x" NET) dev $nic table $t proto 110"$'\n'
    for y in "${want[@]}"; do
      [[ $y == "$x" ]] && continue
      b4+="route replace $(nv "$y" NET) via $gw dev $nic table $t proto 110"$'\n'
      if [[ -n $gw6 && -n $(nv "$y" NET6) ]]; then
        b6+="route replace $(nv "$y" NET6) via $gw6 dev $nic table $t proto 110"$'\n'
      fi
    done
    b4+="route replace $METADATA_ADDR via $gw dev $nic table $t proto 110"$'\n'
    b4+="route replace $BR_NET dev $BR_DOCKER table $t proto 110"$'\n'
    b4+="route replace default via $gw dev $nic table $t proto 110"$'\n'
    if ! grep -Eq "^[0-9]+:[[:space:]]+from $(nv "$x" ADDR) lookup $t " <<<"$rules4"; then
      b4+="rule add from $(nv "$x" ADDR) lookup $t priority $((t - 9000)) proto 110"$'\n'
    fi
    if [[ -n $(nv "$x" ADDR6) ]]; then
      b6+="route replace $(nv "$x" NET6) dev $nic table $t proto 110"$'\n'
      b6+="route replace default via $gw6 dev $nic table $t proto 110"$'\n'
      if ! grep -Eq "^[0-9]+:[[:space:]]+from $(nv "$x" ADDR6) lookup $t " <<<"$rules6"; then
        b6+="rule add from $(nv "$x" ADDR6) lookup $t priority $((t - 9000)) proto 110"$'\n'
      fi
    fi
  done
  for x in A B C; do
    [[ " ${want[*]} " == *" $x "* ]] && continue
    t=$(nic_table "$x")
    if grep -Eq "from $(nv "$x" ADDR) lookup $t " <<<"$rules4"; then
      b4+="rule del from $(nv "$x" ADDR) lookup $t"$'\n'
    fi
    for y in "${want[@]}"; do
      if grep -q "^$(nv "$x" NET) " <<<"$(ip -n "$ns" -4 route show table "$(nic_table "$y")" 2>/dev/null)"; then
        b4+="route del $(nv "$x" NET) table $(nic_table "$y")"$'\n'
      fi
    done
  done
  printf '%s' "$b4" | ip -n "$ns" -4 -force -batch - >/dev/null 2>&1 || true
  printf '%s' "$b6" | ip -n "$ns" -6 -force -batch - >/dev/null 2>&1 || true
}

# standin_daemon: a polling bash stand-in for nicrouted (NICROUTED=manual): applies
# install_manual_policy for the NICs that have their address, every 50 ms, until SIGTERM.
standin_daemon() {
  trap 'exit 0' TERM INT
  local i addrs x last="" now
  local -a present
  for ((i = 0; i < 36000; i++)); do # at most 30 minutes
    now=$(ip -n "$NS_VM" -o addr show; ip -n "$NS_VM" rule; ip -n "$NS_VM" -6 rule
      ip -n "$NS_VM" route show table all proto 110; ip -n "$NS_VM" -6 route show table all proto 110)
    if [[ $now != "$last" ]]; then
      addrs=$(ip -n "$NS_VM" -o -4 addr show)
      present=()
      for x in A B C; do
        [[ $addrs == *" $(nv "$x" ADDR)/"* ]] && present+=("$x")
      done
      install_manual_policy "$NS_VM" "${present[@]}"
      # The state seen before applying: a change made meanwhile is caught next round.
      last=$now
      [[ $i -eq 0 ]] && { nr_py notify "READY=1" || true; }
    fi
    sleep 0.05
  done
}

# Run as a script (`bash lib.sh standin-daemon ...`): the NICROUTED=manual stand-in.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  set -euo pipefail
  case ${1:-} in
    standin-daemon) standin_daemon ;;
    *)
      echo "usage: bash lib.sh standin-daemon   (otherwise: source it)" >&2
      exit 2
      ;;
  esac
fi
