#!/usr/bin/env python3
"""Extracts the TCP payload of every connection in a pcap, in capture order, into
OUT_DIR/<pcap stem>[-<n>].bin (n counts connections after the first).

Format (read by the parsers' tests): a sequence of records, each one byte direction
(b'C' client to server, b'S' server to client), a 4-byte big-endian length, then that many
payload bytes of one TCP segment. The client is the side that sent the SYN.

Usage: sql_extract.py FILE.pcap OUT_DIR
"""
import os
import subprocess
import sys

pcap, out = sys.argv[1], sys.argv[2]
fields = ["tcp.stream", "tcp.flags.syn", "tcp.flags.ack", "ip.src", "tcp.srcport", "tcp.payload",
          "tcp.analysis.retransmission"]
cmd = ["tshark", "-r", pcap, "-o", "tcp.desegment_tcp_streams:FALSE", "-T", "fields"]
for f in fields:
    cmd += ["-e", f]
rows = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
clients = {}
streams = {}
order = []
for row in rows:
    stream, syn, ack, src, sport, payload, retrans = (row.split("\t") + [""] * 7)[:7]
    if syn in ("1", "True") and ack in ("0", "False"):
        clients[stream] = (src, sport)
    if not payload or retrans:
        continue
    if stream not in streams:
        streams[stream] = bytearray()
        order.append(stream)
    d = b"C" if clients.get(stream) == (src, sport) else b"S"
    data = bytes.fromhex(payload.replace(":", ""))
    streams[stream] += d + len(data).to_bytes(4, "big") + data
stem = os.path.splitext(os.path.basename(pcap))[0]
for i, s in enumerate(order):
    name = stem if i == 0 else f"{stem}-{i}"
    with open(os.path.join(out, name + ".bin"), "wb") as f:
        f.write(streams[s])
    print(f"{pcap}: stream {s} -> {name}.bin ({len(streams[s])} bytes)")
