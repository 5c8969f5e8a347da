# shellcheck shell=bash
# forward.sh's topology on top of lib.sh (also used by Tests/Bench/forward-bench.sh): lib.sh's
# two-NIC VM plus floating IPv6 addresses on the routers (ip6tables NAT and port security),
# IPv6 on the container bridge, the VM forwarding with Docker-shaped nat rules publishing the
# container's port 80 as 8081 (tcp and udp, both families), and an echo server in the
# container. Source lib.sh first; call fwd_topo_create.

PORT=8081                                  # the published port on the VM
CT_PORT=80                                 # the container's port
BENCH_PORT=5201                            # published 1:1 for iperf3 (benchmark)
BR6_ADDR=fd00:17::1 CT6_ADDR=fd00:17::2    # IPv6 on the container bridge
# shellcheck disable=SC2034 # read indirectly (${!name}) by fwd_topo_create and fwd_probe
EXT6_RTR_A=fd00:a::1 EXT6_CLI_A=fd00:a::100 FIP6_A=fd00:a::10
# shellcheck disable=SC2034 # read indirectly
EXT6_RTR_B=fd00:b::1 EXT6_CLI_B=fd00:b::100 FIP6_B=fd00:b::20

step() { printf '# --- %s\n' "$*"; }

show_daemon_log() {
  if [[ -s ${DAEMON_LOG:-/nonexistent} ]]; then
    echo "# nicrouted log (last 30 lines):"
    tail -n 30 "$DAEMON_LOG" | sed 's/^/#   /'
  fi
}

# ---- topology -----------------------------------------------------------------------------

# docker_nat: the VM's nat and filter rules for the published ports, shaped like Docker's
# (`docker run -p 8081:80 -p 5201:5201`), for both families.
docker_nat() {
  local ipt ct net proto map host inside
  for ipt in iptables ip6tables; do
    # shellcheck disable=SC2153 # CT_ADDR and BR_NET come from lib.sh
    if [[ $ipt == iptables ]]; then ct=$CT_ADDR net=$BR_NET; else ct=$CT6_ADDR net=fd00:17::/64; fi
    ip netns exec "$NS_VM" $ipt -w 5 -t nat -N DOCKER
    ip netns exec "$NS_VM" $ipt -w 5 -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
    ip netns exec "$NS_VM" $ipt -w 5 -t nat -A POSTROUTING -s "$net" ! -o "$BR_DOCKER" -j MASQUERADE
    for map in "$PORT:$CT_PORT" "$BENCH_PORT:$BENCH_PORT"; do
      host=${map%:*} inside=${map#*:}
      for proto in tcp udp; do
        if [[ $ipt == iptables ]]; then dst=$ct:$inside; else dst=[$ct]:$inside; fi
        ip netns exec "$NS_VM" $ipt -w 5 -t nat -A DOCKER ! -i "$BR_DOCKER" -p $proto --dport "$host" \
          -j DNAT --to-destination "$dst"
        ip netns exec "$NS_VM" $ipt -w 5 -A FORWARD -d "$ct" ! -i "$BR_DOCKER" -o "$BR_DOCKER" -p $proto \
          --dport "$inside" -j ACCEPT
      done
    done
    # ICMP echo to the VM's addresses goes to the container too (a 1:1 DNAT, as a guest behind
    # the VM would have; Docker itself publishes TCP and UDP only).
    if [[ $ipt == iptables ]]; then
      ip netns exec "$NS_VM" $ipt -w 5 -t nat -A DOCKER ! -i "$BR_DOCKER" -p icmp --icmp-type echo-request \
        -j DNAT --to-destination "$ct"
    else
      ip netns exec "$NS_VM" $ipt -w 5 -t nat -A DOCKER ! -i "$BR_DOCKER" -p icmpv6 --icmpv6-type echo-request \
        -j DNAT --to-destination "$ct"
    fi
    if [[ $ipt == iptables ]]; then proto=icmp; else proto=icmpv6; fi
    ip netns exec "$NS_VM" $ipt -w 5 -A FORWARD -d "$ct" ! -i "$BR_DOCKER" -o "$BR_DOCKER" -p $proto -j ACCEPT
    ip netns exec "$NS_VM" $ipt -w 5 -A FORWARD -o "$BR_DOCKER" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    ip netns exec "$NS_VM" $ipt -w 5 -A FORWARD -i "$BR_DOCKER" ! -o "$BR_DOCKER" -j ACCEPT
  done
}

fwd_topo_create() {
  local x ns qg cif rtr6 cli6 fip6
  topo_create
  DAEMON_LOG="$NR_TMP/nicrouted.log"
  : >"$NR_TMP/nicroute.conf"

  # IPv6 floating IPs: the same DNAT/SNAT and port security as IPv4, with ip6tables.
  for x in A B; do
    ns=$(nv "$x" NS_RTR) qg=$(nv "$x" QG) cif=$(nv "$x" CIF)
    rtr6=EXT6_RTR_$x cli6=EXT6_CLI_$x fip6=FIP6_$x
    ip -n "$NS_CLIENT" addr add "${!cli6}/64" dev "$cif" nodad
    ip -n "$ns" addr add "${!rtr6}/64" dev "$qg" nodad
    ip -n "$ns" addr add "${!fip6}/128" dev "$qg" nodad
    ip -n "$ns" -6 route add default via "${!cli6}" dev "$qg"
    ip netns exec "$ns" ip6tables -w 5 -t nat -A PREROUTING -d "${!fip6}" -j DNAT --to-destination "$(nv "$x" ADDR6)"
    ip netns exec "$ns" ip6tables -w 5 -t nat -A POSTROUTING -s "$(nv "$x" ADDR6)" -j SNAT --to-source "${!fip6}"
    ip netns exec "$ns" ip6tables -w 5 -A FORWARD -i "$(nv "$x" QR)" ! -s "$(nv "$x" ADDR6)" -j DROP
  done

  # The VM forwards (Docker turns it on) and publishes container port 80 as 8081, the way
  # Docker's nat table does (DOCKER chain for local destinations, MASQUERADE of the bridge).
  nr_sysctl "$NS_VM" net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
  # The VM itself does not answer pings: an answer through a floating IP is the container's.
  nr_sysctl "$NS_VM" net.ipv4.icmp_echo_ignore_all=1 net.ipv6.icmp.echo_ignore_all=1
  ip -n "$NS_VM" addr add "$BR6_ADDR/64" dev "$BR_DOCKER" nodad
  ip -n "$NS_CT" addr add "$CT6_ADDR/64" dev eth0 nodad
  ip -n "$NS_CT" -6 route add default via "$BR6_ADDR"
  docker_nat

  fwd_container_server
}

# fwd_container_server: the container's TCP and UDP echo on [::]:80, both families.
fwd_container_server() {
cat >"$NR_TMP/fwd.py" <<'PY'
import socket, sys, threading

def serve(ready):
    t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("::", 80)); t.listen(64)
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    u.bind(("::", 80))
    def udp():
        while True:
            data, peer = u.recvfrom(4096)
            u.sendto(data, peer)
    threading.Thread(target=udp, daemon=True).start()
    open(ready, "w").close()
    while True:
        c, _ = t.accept()
        with c:
            c.settimeout(2)
            try: c.sendall(c.recv(4096))
            except OSError: pass

def probe(proto, src, dst, port, timeout):
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(float(timeout))
    s.bind((src, 0))
    token = b"nicroute-forward"
    if proto == "tcp":
        s.connect((dst, int(port))); s.sendall(token)
    else:
        s.sendto(token, (dst, int(port)))
    return s.recv(4096) == token

def rate(src, dst, port, seconds):
    # Sequential TCP connections with one echo each, for SECONDS: connections per second.
    import time
    fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
    end = time.monotonic() + float(seconds)
    n = failed = 0
    while time.monotonic() < end:
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.settimeout(1)
        try:
            s.bind((src, 0)); s.connect((dst, int(port))); s.sendall(b"x")
            if s.recv(16) == b"x": n += 1
            else: failed += 1
        except OSError:
            failed += 1
        finally:
            s.close()
    print(n / float(seconds), failed)

if sys.argv[1] == "serve":
    serve(sys.argv[2])
elif sys.argv[1] == "rate":
    rate(*sys.argv[2:6])
else:
    try: ok = probe(*sys.argv[2:7])
    except OSError: ok = False
    sys.exit(0 if ok else 1)
PY
nr_bg "$NS_CT" "$NR_TMP/ct-server.log" "$NR_PY" "$NR_TMP/fwd.py" serve "$NR_TMP/ct.ready"
wait_until 5 test -e "$NR_TMP/ct.ready" || nr_die "container echo server did not start"

}

# fwd_probe PROTO X FAMILY: one round trip to the published port (tcp, udp) or one ping
# (icmp, DNATed to the container as well) through floating IP X.
fwd_probe() {
  local proto=$1 x=$2 fam=$3 src dst
  if [[ $fam == 4 ]]; then src=$CLIENT_ADDR dst=$(nv "$x" FIP); else
    src=EXT6_CLI_$x dst=FIP6_$x src=${!src} dst=${!dst}
  fi
  if [[ $proto == icmp ]]; then
    ip netns exec "$NS_CLIENT" ping -"$fam" -n -q -c1 -W2 -I "$src" "$dst" >/dev/null 2>&1
    return
  fi
  ip netns exec "$NS_CLIENT" timeout 5 "$NR_PY" "$NR_TMP/fwd.py" probe "$proto" "$src" "$dst" "$PORT" 2
}

# fwd_probe_retry PROTO X FAMILY: up to 3 tries (a lost first packet is not a failure).
fwd_probe_retry() {
  local i
  for ((i = 0; i < 3; i++)); do fwd_probe "$@" && return 0; done
  return 1
}

