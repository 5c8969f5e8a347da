"""Helper for nicroute's system tests (notify.sh, journal.sh).

Modes:
  notify-listen SOCK LOG [NETNS]
      Bind a Unix datagram socket at SOCK (the NOTIFY_SOCKET) and append one JSON line per
      datagram to LOG: {"us": CLOCK_MONOTONIC in microseconds at receipt, "pid": the sender's
      PID (SCM_CREDENTIALS), "msg": text}. When a datagram holds READY=1 and NETNS is given,
      the sender is SIGSTOPped, `ip -n NETNS -j rule` is run and its answer stored as "rules"
      ("frozen": whether every thread was stopped meanwhile), and the sender is SIGCONTinued:
      the test sees what the kernel held when READY=1 was sent.
      LOG is created once the socket is bound (the caller waits for it).
  mark SOCK TEXT
      Send TEXT as one datagram to SOCK: a marker that the listener timestamps on its own
      clock, in order with the daemon's datagrams.
  journal-exec IDENTIFIER CMD...
      Connect stdout and stderr to journald's stream socket (/run/systemd/journal/stdout), the
      way systemd does for StandardError=journal, set JOURNAL_STREAM to that socket's
      device:inode, and exec CMD.
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time


def all_threads_stopped(pid):
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "T":
                    return False
    except OSError:
        return False
    return True


def notify_listen(path, log, netns=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    # The kernel then attaches the sender's credentials to every datagram: its PID is the
    # one systemd compares with MAINPID (NotifyAccess=main).
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    s.bind(path)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    creds_len = socket.CMSG_SPACE(struct.calcsize("3i"))
    while True:
        data, ancdata, _, _ = s.recvmsg(65536, creds_len)
        us = time.monotonic_ns() // 1000
        pid = None
        for level, kind, value in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("3i", value[:struct.calcsize("3i")])[0]
        msg = data.decode(errors="replace")
        rec = {"us": us, "pid": pid, "msg": msg}
        if netns and "READY=1" in msg.split("\n"):
            # Freeze the sender while the kernel is asked: what `ip rule` shows then was
            # there when READY=1 was sent, not added a moment later.
            frozen = False
            if pid:
                try:
                    os.kill(pid, signal.SIGSTOP)
                    deadline = time.monotonic() + 1
                    while not all_threads_stopped(pid) and time.monotonic() < deadline:
                        time.sleep(0.001)
                    frozen = all_threads_stopped(pid)
                except OSError:
                    pass
            out = subprocess.run(["ip", "-n", netns, "-j", "rule", "show"],
                                 capture_output=True, text=True, check=False)
            if pid:
                try:
                    os.kill(pid, signal.SIGCONT)
                except OSError:
                    pass
            try:
                rec["rules"] = json.loads(out.stdout or "[]")
            except ValueError:
                rec["rules"] = []
                rec["rules_error"] = out.stdout + out.stderr
            rec["rules_us"] = time.monotonic_ns() // 1000
            rec["frozen"] = frozen
        # One write() per line: a concurrent reader never sees half a record.
        os.write(fd, (json.dumps(rec) + "\n").encode())


def mark(path, text):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(text.encode(), path)


def journal_exec(identifier, argv):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect("/run/systemd/journal/stdout")
    s.shutdown(socket.SHUT_RD)
    # journald's stream header (journald-stream.c): identifier, unit id, priority,
    # level_prefix, forward_to_syslog, forward_to_kmsg, forward_to_console.
    s.sendall(("%s\n\n6\n0\n0\n0\n0\n" % identifier).encode())
    os.dup2(s.fileno(), 1)
    os.dup2(s.fileno(), 2)
    s.close()
    st = os.fstat(2)
    os.environ["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
    os.execvp(argv[0], argv)


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    mode, args = argv[1], argv[2:]
    if mode == "notify-listen":
        notify_listen(*args)
    elif mode == "mark":
        mark(*args)
    elif mode == "journal-exec":
        journal_exec(args[0], args[1:])
    else:
        print("unknown mode " + mode, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
