#!/usr/bin/env python3
"""Sends hand-made datagrams to a DNS server from a fixed source address and port, so that
they share one UDP flow with a `dig -b SRC#PORT` run before or after them. Used by
record.sh (see README.md beside this file); prints what the server answered.

Usage: craft.py junk|fwdptr SRC SPORT DST [DPORT]

junk:   three datagrams that are not DNS queries a server acts on: 6 bytes of text
        (shorter than a DNS header), an HTTP/1.0 request line (its second byte pair reads as
        opcode 10, which no server implements), and 20 bytes of 0xdeadbeef (QR set: a
        "response" to the server, with counts that cannot fit).
fwdptr: a query for `fwd.b.x A` (dnsmasq answers it: --address=/b.x/) whose QNAME is a single compression pointer FORWARD to a
        name stored after the question, inside the data of an EDNS option (code 65001,
        a private-use option number), so every section of the message adds up. RFC 1035
        4.1.4 speaks of pointers to a "prior occurrence"; dnsmasq, Unbound, Wireshark and
        Suricata follow a pointer to any offset in the message (bounding the jumps),
        BIND and Knot refuse it.
"""
import socket
import struct
import sys


def fwdptr_query(msg_id):
    name = b"\x03fwd\x01b\x01x\x00"
    header = struct.pack(">HHHHHH", msg_id, 0x0100, 1, 0, 0, 1)
    # Question: the pointer, then QTYPE A, QCLASS IN. The OPT record follows: root owner,
    # type 41, UDP size 1232, no extended rcode/flags, RDLENGTH, then one option whose data
    # starts with the name the pointer targets.
    question_len = 2 + 4
    opt_head = b"\x00" + struct.pack(">HHIH", 41, 1232, 0, 4 + len(name))
    option = struct.pack(">HH", 65001, len(name)) + name
    target = 12 + question_len + len(opt_head) + 4
    assert target < 0x3FFF
    question = struct.pack(">H", 0xC000 | target) + struct.pack(">HH", 1, 1)
    msg = header + question + opt_head + option
    assert msg[target:target + len(name)] == name
    return msg


def main():
    kind, src, sport, dst = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    dport = int(sys.argv[5]) if len(sys.argv) > 5 else 53
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((src, sport))
    s.settimeout(1.0)
    if kind == "junk":
        datagrams = [b"hello\n", b"GET / HTTP/1.0\r\n\r\n", b"\xde\xad\xbe\xef" * 5]
    elif kind == "fwdptr":
        datagrams = [fwdptr_query(0x4657)]
    else:
        sys.exit(f"unknown kind {kind}")
    for d in datagrams:
        s.sendto(d, (dst, dport))
        try:
            reply, _ = s.recvfrom(65535)
            print(f"{kind}: {len(d)} bytes sent, {len(reply)} bytes answered")
        except socket.timeout:
            print(f"{kind}: {len(d)} bytes sent, no answer")
    s.close()


if __name__ == "__main__":
    main()
