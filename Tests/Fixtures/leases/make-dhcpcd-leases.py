#!/usr/bin/env python3
"""Writes the dhcpcd lease fixtures: raw DHCPACK messages as dhcpcd stores them.

dhcpcd keeps the last DHCP message it accepted in /var/lib/dhcpcd/IFACE.lease, byte for
byte: the 236-byte BOOTP header, the magic cookie 99.130.83.99, then the options. Run from
this directory to regenerate the files; the tests only read them.
"""
import socket
import struct


def ip(text):
    return socket.inet_aton(text)


def option(code, value):
    return bytes([code, len(value)]) + value


def bootp(yiaddr, siaddr, mac, options, sname=b"", file=b""):
    header = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        2, 1, 6, 0,           # op BOOTREPLY, htype Ethernet, hlen, hops
        0x3903F326, 0, 0,     # xid, secs, flags
        ip("0.0.0.0"), ip(yiaddr), ip(siaddr), ip("0.0.0.0"),
        bytes.fromhex(mac.replace(":", "")).ljust(16, b"\0"),
        sname.ljust(64, b"\0"), file.ljust(128, b"\0"),
    )
    assert len(header) == 236
    return header + bytes([99, 130, 83, 99]) + options


# An OpenStack (Neutron dnsmasq) DHCPACK for eth0.
eth0 = bootp("10.0.0.23", "10.0.0.2", "fa:16:3e:6d:1a:2b", b"".join([
    option(53, b"\x05"),                                   # DHCPACK
    option(54, ip("10.0.0.2")),                            # server identifier
    option(51, struct.pack("!I", 86400)),                  # lease time
    option(58, struct.pack("!I", 43200)),                  # renewal time
    option(59, struct.pack("!I", 75600)),                  # rebinding time
    option(1, ip("255.255.255.0")),                        # subnet mask
    option(28, ip("10.0.0.255")),                          # broadcast
    option(15, b"openstacklocal"),                         # domain name
    option(12, b"host-10-0-0-23"),                         # host name
    option(6, ip("10.0.0.2") + ip("10.0.0.3")),            # DNS
    option(26, struct.pack("!H", 1450)),                   # MTU
    option(121, bytes([32, 169, 254, 169, 254]) + ip("10.0.0.2") + bytes([0]) + ip("10.0.0.1")),
    option(3, ip("10.0.0.1") + ip("10.0.0.254")),          # routers
    b"\xff",                                               # end
]) + b"\0" * 16)                                           # padding to the minimum size

# A DHCPACK whose options overflow into the `file` field (option 52, overload = 1): the
# routers option lives there, after a long domain search list in the options field.
eth1 = bootp("192.168.50.14", "192.168.50.2", "fa:16:3e:11:22:33", b"".join([
    option(53, b"\x05"),
    option(54, ip("192.168.50.2")),
    option(51, struct.pack("!I", 3600)),
    option(52, b"\x01"),
    option(1, ip("255.255.255.0")),
    option(119, b"\x07example\x03com\x00" * 10),
    b"\xff",
]), file=b"".join([option(3, ip("192.168.50.1")), option(6, ip("192.168.50.2")), b"\xff"]))

# A DHCPACK with no router at all (an isolated network).
eth2 = bootp("172.16.9.4", "172.16.9.2", "fa:16:3e:44:55:66", b"".join([
    option(53, b"\x05"),
    option(54, ip("172.16.9.2")),
    option(51, struct.pack("!I", 86400)),
    option(1, ip("255.255.255.0")),
    option(121, bytes([32, 169, 254, 169, 254]) + ip("172.16.9.2")),
    b"\xff",
]))

for name, data in [("dhcpcd-eth0.lease", eth0), ("dhcpcd-eth1.lease", eth1), ("dhcpcd-eth2.lease", eth2)]:
    with open(name, "wb") as f:
        f.write(data)
