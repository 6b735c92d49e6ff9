#!/usr/bin/env python3
"""Extracts the application payload of each TCP connection or UDP flow in a pcap, in
wire order, into `<prefix>-<n>.seg` files (n = tshark's stream index) for the parser
tests. Format: repeated records `dir:u8 (0 = to server, 1 = to client) | len:u32 BE |
payload`. The server is the side whose port is SERVER_PORT.

Usage: segments.py PCAP tcp|udp SERVER_PORT OUT_PREFIX
"""
import subprocess
import struct
import sys

pcap, proto, port, prefix = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
fields = [f"{proto}.stream", f"{proto}.srcport", f"{proto}.payload"]
cmd = ["tshark", "-r", pcap, "-Y", f"{proto}.payload", "-T", "fields"]
for f in fields:
    cmd += ["-e", f]
out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
streams = {}
for line in out.splitlines():
    stream, sport, payload = line.split("\t")
    d = 1 if int(sport) == port else 0
    data = bytes.fromhex(payload.replace(":", ""))
    streams.setdefault(int(stream), []).append((d, data))
for n, segs in sorted(streams.items()):
    with open(f"{prefix}-{n}.seg", "wb") as f:
        for d, data in segs:
            f.write(struct.pack(">BI", d, len(data)) + data)
    print(f"{prefix}-{n}.seg: {len(segs)} segments, {sum(len(s) for _, s in segs)} bytes")
