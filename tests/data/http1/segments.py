#!/usr/bin/env python3
"""Extracts the application payload of each TCP connection in a pcap, in wire order, into
`<prefix>-<n>.seg` files (n = tshark's stream index), in the format of
tests/data/redis/segments.py: repeated records `dir:u8 (0 = to server, 1 = to client) |
len:u32 BE | payload`. The server is the side whose port is SERVER_PORT.

Unlike a plain dump of tcp.payload, bytes are taken by sequence number, as a reassembler
would: a retransmitted segment (or the already-seen part of an overlapping one) is dropped,
so each direction's stream is exactly what the application sent. A hole (a lost segment
that the capture never saw again) is an error.

Usage: segments.py PCAP SERVER_PORT OUT_PREFIX
"""
import struct
import subprocess
import sys

pcap, port, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cmd = ["tshark", "-r", pcap, "-o", "tcp.relative_sequence_numbers:TRUE", "-Y", "tcp.payload",
       "-T", "fields", "-e", "tcp.stream", "-e", "tcp.srcport", "-e", "tcp.seq", "-e", "tcp.payload"]
out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
streams = {}
expect = {}
dropped = 0
for line in out.splitlines():
    stream, sport, seq, payload = line.split("\t")
    d = 1 if int(sport) == port else 0
    seq = int(seq)
    data = bytes.fromhex(payload.replace(":", ""))
    key = (int(stream), d)
    nxt = expect.get(key, 1)
    if seq > nxt:
        sys.exit(f"stream {stream} dir {d}: hole of {seq - nxt} bytes at {nxt}")
    if seq + len(data) <= nxt:
        dropped += len(data)
        continue
    data = data[nxt - seq:]
    dropped += nxt - seq
    expect[key] = nxt + len(data)
    streams.setdefault(int(stream), []).append((d, data))
for n, segs in sorted(streams.items()):
    with open(f"{prefix}-{n}.seg", "wb") as f:
        for d, data in segs:
            f.write(struct.pack(">BI", d, len(data)) + data)
    print(f"{prefix}-{n}.seg: {len(segs)} segments, {sum(len(s) for _, s in segs)} bytes")
if dropped:
    print(f"dropped {dropped} retransmitted bytes")
