#!/usr/bin/env python3
"""OpenStack's metadata service, as much of it as cloud-init's OpenStack datasource reads.

    metadata.py ROOT ADDRESS PORT PIDFILE LOG

Serves ROOT/openstack/latest/<name> at /openstack/latest/<name> and the version list
("latest") at /openstack; everything else (the EC2 paths cloud-init also tries, an absent
vendor_data.json) is a 404. Files are read at each request, so the test changes what is served
by replacing a file (as Nova's metadata API answers from the instance's current ports).
Every request is logged as "METHOD PATH STATUS" to LOG. Run by Tests/VM/vm.sh in the router
namespace of the VM's first NIC, bound to 169.254.169.254.
"""
import http.server
import os
import sys

root, address, port, pidfile, logfile = sys.argv[1:6]
log = open(logfile, "a", buffering=1)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = self.path.split("?", 1)[0]
        body = None
        if path.rstrip("/") == "/openstack":
            body = b"latest\n"
        elif path.startswith("/openstack/latest/"):
            name = path[len("/openstack/latest/"):]
            if name and "/" not in name and not name.startswith("."):
                try:
                    with open(os.path.join(root, "openstack", "latest", name), "rb") as f:
                        body = f.read()
                except OSError:
                    body = None
        status = 200 if body is not None else 404
        log.write(f"GET {path} {status}\n")
        self.send_response(status)
        if body is None:
            body = b"not found\n"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer((address, int(port)), Handler)
with open(pidfile + ".tmp", "w") as f:
    f.write(f"{os.getpid()}\n")
os.rename(pidfile + ".tmp", pidfile)
server.serve_forever()
