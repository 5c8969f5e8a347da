#!/usr/bin/env python3
"""nicroute benchmark helper (used by scripts/bench.sh; not a test).

Subcommands (run inside the VM namespace with `ip netns exec NS python3 nlbench.py ...`
where a netlink socket is involved):

  latency --dev NAME --base A.B.C --first N --trials N --plen P --out FILE
      For each trial: add address A.B.C.(first+i)/P to NAME through rtnetlink (RTM_NEWADDR,
      what `ip addr add` sends), wait for nicroute's rule `from` that address, then delete the
      address and wait for the rule's removal. Timestamps are taken by one netlink listener
      (IPv4 address + IPv4 rule groups) as each notification is received, on CLOCK_MONOTONIC:
      add latency = RTM_NEWADDR -> RTM_NEWRULE (protocol 110, FRA_SRC = the address), remove
      latency = RTM_DELADDR -> RTM_DELRULE. Netlink gives no kernel receive timestamps, so two
      starts are recorded: the moment the request is sent (the kernel emits RTM_NEWADDR inside
      that sendmsg: an upper bound of the latency) and the receipt of RTM_NEWADDR (a late
      receipt underestimates). One line per trial, microseconds:
      "send->rule addr->rule send->rule-gone deladdr->rule-gone".
  notify-listen SOCK LOG
      Binds a Unix datagram socket at SOCK (the NOTIFY_SOCKET) and appends each message to LOG
      as "wallclock_ns message-with-newlines-as-|".
  stats FILE [COLUMN] [SCALE]
      Prints "n min median max p50 p99 mean" for a column of numbers (0-based; SCALE divides).
  logpasses LOG
      Prints the duration_us of each "reconciled" debug line of a nicrouted log, with its
      why= and changes= fields: "why changes duration_us snapshot_us plan_us apply_us".
  ctxwatch PID SECONDS
      Context switches of every thread of PID over SECONDS (threads that come and go included).
  ctxsw PID
      Prints the sum of voluntary and nonvoluntary context switches of every thread of PID,
      then one "tid name voluntary nonvoluntary" line per thread.
  ctlload --socket PATH --clients N --seconds S --out FILE
      N threads, each asking `status` on the control socket at PATH (a JSON request line, the
      answer read to the end) again and again as fast as it is answered, for S seconds. Each
      answer is parsed as JSON and sorted: ok (a status result with its `nics` list), busy (the
      daemon's `busy`), invalid (not one whole JSON object), error (another error, or the
      connection broke), unconnected (connect(2) failed: the listening socket's queue was full).
      Prints "ok busy invalid error unconnected"; FILE gets one line per ok answer: its round
      trip in microseconds.
"""
import json
import threading

import os
import random
import re
import socket
import struct
import sys
import time

NETLINK_ROUTE = 0
RTM_NEWADDR, RTM_DELADDR = 20, 21
RTM_NEWRULE, RTM_DELRULE = 32, 33
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
IFA_ADDRESS, IFA_LOCAL = 1, 2
FRA_SRC, FRA_PROTOCOL = 2, 21
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_RULE = 1 << (8 - 1)  # RTNLGRP_IPV4_RULE = 8
NICROUTE_PROTO = 110


def attrs(buf, off, end):
    """Yields (type, payload) of the rtattrs in buf[off:end]."""
    while off + 4 <= end:
        ln, ty = struct.unpack_from("=HH", buf, off)
        if ln < 4 or off + ln > end:
            return
        yield ty & 0x3FFF, buf[off + 4 : off + ln]
        off += (ln + 3) & ~3


def messages(buf):
    """Yields (type, payload) of each netlink message in a datagram."""
    off = 0
    while off + 16 <= len(buf):
        ln, ty, _fl, _seq, _pid = struct.unpack_from("=IHHII", buf, off)
        if ln < 16 or off + ln > len(buf):
            return
        yield ty, buf[off + 16 : off + ln]
        off += (ln + 3) & ~3


def rtattr(ty, payload):
    ln = 4 + len(payload)
    return struct.pack("=HH", ln, ty) + payload + b"\0" * (((ln + 3) & ~3) - ln)


class Requester:
    """A request socket: sends one message and waits for its ack."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = random.randint(1, 1 << 20)

    def address(self, add, ifindex, addr, plen):
        self.seq += 1
        packed = socket.inet_aton(addr)
        body = struct.pack("=BBBBI", socket.AF_INET, plen, 0, 0, ifindex)
        body += rtattr(IFA_LOCAL, packed) + rtattr(IFA_ADDRESS, packed)
        flags = NLM_F_REQUEST | NLM_F_ACK | ((NLM_F_CREATE | NLM_F_EXCL) if add else 0)
        msg = struct.pack("=IHHII", 16 + len(body), RTM_NEWADDR if add else RTM_DELADDR, flags, self.seq, 0) + body
        self.sock.send(msg)
        while True:
            data = self.sock.recv(65536)
            for ty, payload in messages(data):
                if ty == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", payload, 0)
                    if code != 0:
                        raise OSError(-code, f"{'add' if add else 'del'} {addr}/{plen}: {os.strerror(-code)}")
                    return


def latency(args):
    opts = dict(zip(args[::2], args[1::2]))
    dev, base = opts["--dev"], opts["--base"]
    first, trials, plen = int(opts.get("--first", "100")), int(opts["--trials"]), int(opts.get("--plen", "24"))
    timeout = float(opts.get("--timeout", "2"))
    gap = float(opts.get("--gap-ms", "20")) / 1000
    ifindex = socket.if_nametoindex(dev)
    mon = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
    mon.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    mon.bind((0, RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_RULE))
    req = Requester()
    out = open(opts["--out"], "w")
    failures = 0

    def wait(kind, addr, deadline):
        """Receives notifications until `kind` for addr; returns its receive time (ns)."""
        packed = socket.inet_aton(addr)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            mon.settimeout(left)
            try:
                data = mon.recv(1 << 16)
            except socket.timeout:
                return None
            now = time.monotonic_ns()
            for ty, payload in messages(data):
                if ty != kind:
                    continue
                if ty in (RTM_NEWADDR, RTM_DELADDR):
                    if len(payload) < 8:
                        continue
                    (idx,) = struct.unpack_from("=I", payload, 4)
                    a = dict(attrs(payload, 8, len(payload)))
                    if idx == ifindex and a.get(IFA_LOCAL) == packed:
                        return now
                else:
                    if len(payload) < 12:
                        continue
                    a = dict(attrs(payload, 12, len(payload)))
                    proto = a.get(FRA_PROTOCOL)
                    if a.get(FRA_SRC) == packed and proto and proto[0] == NICROUTE_PROTO:
                        return now

    for i in range(trials):
        addr = f"{base}.{first + (i % 100)}"
        time.sleep(gap * (0.5 + random.random()))  # idle daemon before each trial, jittered
        s0 = time.monotonic_ns()
        req.address(True, ifindex, addr, plen)
        t0 = wait(RTM_NEWADDR, addr, time.monotonic() + timeout)
        t1 = wait(RTM_NEWRULE, addr, time.monotonic() + timeout) if t0 else None
        time.sleep(gap * (0.5 + random.random()))
        s2 = time.monotonic_ns()
        req.address(False, ifindex, addr, plen)
        t2 = wait(RTM_DELADDR, addr, time.monotonic() + timeout)
        t3 = wait(RTM_DELRULE, addr, time.monotonic() + timeout) if t2 else None
        if t0 is None or t1 is None or t2 is None or t3 is None:
            failures += 1
            out.write("nan nan nan nan\n")
            if failures > 5:
                sys.exit(f"latency: {failures} trials timed out")
            continue
        out.write(f"{(t1 - s0) / 1000:.0f} {(t1 - t0) / 1000:.0f} {(t3 - s2) / 1000:.0f} {(t3 - t2) / 1000:.0f}\n")
    out.close()


def notify_listen(args):
    path, log = args
    if os.path.exists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    with open(log, "a", buffering=1) as f:
        f.write(f"{time.time_ns()} LISTENING\n")
        deadline = time.monotonic() + 3600  # bounded: an hour at most
        while time.monotonic() < deadline:
            s.settimeout(max(deadline - time.monotonic(), 0.1))
            try:
                data = s.recv(4096)
            except socket.timeout:
                break
            f.write(f"{time.time_ns()} {data.decode(errors='replace').replace(chr(10), '|')}\n")


def percentile(sorted_values, p):
    """Nearest-rank percentile."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, int(-(-p * len(sorted_values) // 100)) - 1))
    return sorted_values[k]


def stats(args):
    path = args[0]
    col = int(args[1]) if len(args) > 1 else 0
    scale = float(args[2]) if len(args) > 2 else 1.0
    vals = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) > col and parts[col] != "nan":
                vals.append(float(parts[col]) / scale)
    vals.sort()
    if not vals:
        print("0 nan nan nan nan nan nan")
        return
    n = len(vals)
    median = vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2
    print(
        n,
        *(f"{v:.3f}" for v in (vals[0], median, vals[-1], percentile(vals, 50), percentile(vals, 99), sum(vals) / n)),
    )


def logpasses(args):
    pat = re.compile(r"reconciled")
    for line in open(args[0], errors="replace"):
        if not pat.search(line):
            continue
        fields = dict(re.findall(r"(\w+)=(\S+)", line))
        print(
            fields.get("why", "?"),
            fields.get("changes", "?"),
            fields.get("duration_us", "nan"),
            fields.get("snapshot_us", "nan"),
            fields.get("plan_us", "nan"),
            fields.get("apply_us", "nan"),
        )


def thread_switches(pid):
    """{tid: (name, voluntary, nonvoluntary)} for every thread of pid now."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            text = open(f"/proc/{pid}/task/{tid}/status").read()
        except OSError:
            continue
        name = re.search(r"^Name:\s*(.*)$", text, re.M).group(1).replace(" ", "_")
        vol = int(re.search(r"^voluntary_ctxt_switches:\s*(\d+)", text, re.M).group(1))
        nonvol = int(re.search(r"^nonvoluntary_ctxt_switches:\s*(\d+)", text, re.M).group(1))
        out[int(tid)] = (name, vol, nonvol)
    return out


def ctxwatch(args):
    """ctxwatch PID SECONDS: context switches of every thread of PID during SECONDS, sampled
    every 0.25 s so that threads that come and go are counted (a thread born in the window
    counts from zero; one that ends counts up to its last sample). Prints
    "voluntary involuntary threads_seen threads_born threads_ended", then per-thread lines."""
    pid, seconds = args[0], float(args[1])
    first = thread_switches(pid)
    last = dict(first)
    born, names = set(), {t: v[0] for t, v in first.items()}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(0.25, max(deadline - time.monotonic(), 0)))
        now = thread_switches(pid)
        for tid, v in now.items():
            if tid not in first and tid not in born:
                born.add(tid)
            names[tid] = v[0]
            last[tid] = v
    final = thread_switches(pid)
    vol = nonvol = 0
    rows = []
    for tid, (name, v, n) in sorted(last.items()):
        v0, n0 = (first[tid][1], first[tid][2]) if tid in first else (0, 0)
        vol += v - v0
        nonvol += n - n0
        state = "born" if tid in born else ("ended" if tid not in final else "")
        rows.append(f"{tid} {name} +{v - v0} +{n - n0} {state}".rstrip())
    ended = len([t for t in last if t not in final])
    print(vol, nonvol, len(last), len(born), ended)
    print("\n".join(rows))


def ctxsw(args):
    pid = args[0]
    total = 0
    rows = []
    for tid in sorted(os.listdir(f"/proc/{pid}/task"), key=int):
        try:
            text = open(f"/proc/{pid}/task/{tid}/status").read()
        except OSError:
            continue
        name = re.search(r"^Name:\s*(.*)$", text, re.M).group(1)
        vol = int(re.search(r"^voluntary_ctxt_switches:\s*(\d+)", text, re.M).group(1))
        nonvol = int(re.search(r"^nonvoluntary_ctxt_switches:\s*(\d+)", text, re.M).group(1))
        total += vol + nonvol
        rows.append(f"{tid} {name.replace(' ', '_')} {vol} {nonvol}")
    print(total)
    print("\n".join(rows))


def ctlload(args):
    opts = dict(zip(args[::2], args[1::2]))
    path, clients, seconds = opts["--socket"], int(opts["--clients"]), float(opts["--seconds"])
    request = json.dumps({"version": 1, "command": "status"}).encode() + b"\n"
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    counts = {"ok": 0, "busy": 0, "invalid": 0, "error": 0, "unconnected": 0}
    times = []
    kinds = {}

    def client():
        mine = {"ok": 0, "busy": 0, "invalid": 0, "error": 0, "unconnected": 0}
        mytimes = []
        mykinds = {}

        def error(kind):
            mine["error"] += 1
            mykinds[kind] = mykinds.get(kind, 0) + 1
        while time.monotonic() < deadline:
            t0 = time.monotonic_ns()
            data = b""
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.settimeout(35)
                    try:
                        s.connect(path)
                    except OSError:
                        # The listening socket's queue is full (EAGAIN): the kernel's answer,
                        # before the daemon sees the connection.
                        mine["unconnected"] += 1
                        time.sleep(0.001)
                        continue
                    try:
                        s.sendall(request)
                    except (BrokenPipeError, ConnectionResetError):
                        pass  # turned away before the request was read: the answer says why
                    while not data.endswith(b"\n"):
                        # (A connection turned away is closed before its request is read: the
                        # answer comes, then ECONNRESET instead of the end. One line is whole.)
                        chunk = s.recv(1 << 16)
                        if not chunk:
                            break
                        data += chunk
            except OSError as e:
                error(type(e).__name__)
                continue
            try:
                answer = json.loads(data)
            except ValueError:
                mine["invalid"] += 1
                continue
            if not isinstance(answer, dict):
                mine["invalid"] += 1
            elif answer.get("ok") is True and isinstance(answer.get("result", {}).get("nics"), list):
                mine["ok"] += 1
                mytimes.append((time.monotonic_ns() - t0) // 1000)
            elif answer.get("ok") is False and answer.get("error", {}).get("code") == "busy":
                mine["busy"] += 1
                time.sleep(0.001)  # as a polite client would before trying again
            else:
                error(str(answer.get("error", {}).get("code")))
        with lock:
            for k in counts:
                counts[k] += mine[k]
            times.extend(mytimes)
            for k, v in mykinds.items():
                kinds[k] = kinds.get(k, 0) + v

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(opts["--out"], "w") as out:
        out.write("".join(f"{t}\n" for t in times))
    with open(opts["--out"] + ".errors", "w") as out:
        out.write("".join(f"{k} {v}\n" for k, v in sorted(kinds.items())))
    print(counts["ok"], counts["busy"], counts["invalid"], counts["error"], counts["unconnected"])


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cmd, args = sys.argv[1], sys.argv[2:]
    {"latency": latency, "notify-listen": notify_listen, "stats": stats, "logpasses": logpasses, "ctxsw": ctxsw,
     "ctxwatch": ctxwatch, "ctlload": ctlload}[cmd](
        args
    )


if __name__ == "__main__":
    main()
