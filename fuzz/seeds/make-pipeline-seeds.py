#!/usr/bin/env python3
"""Makes fuzz/seeds/pipeline/ from the recorded captures in tests/data.

The `pipeline` target reads: byte 0 link type (0 Ethernet, 1 SLL, 2 SLL2, 3 raw IP,
4 BSD loopback), byte 1 options (bit 0 deny policy, bit 1 tight limits, bit 2 compare
with the other policy), then frames as
u16 big-endian length, u8 time step (ms below 128, else seconds - 127), frame bytes.

Each capture is cut into runs of consecutive packets that fit in MAX_SEED bytes (runs
follow the capture, so handshakes stay with their data). The Ethernet capture is also
re-framed as raw IP and loopback, and two of its packets are split into IPv4 fragments
(out of order) so defragmentation is reached from the start. Deterministic: re-running
gives the same files.

    python3 fuzz/seeds/make-pipeline-seeds.py
"""
import os
import struct
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DATA = os.path.join(ROOT, "tests", "data")
OUT = os.path.join(ROOT, "fuzz", "seeds", "pipeline")
MAX_SEED = 4000
LINK_INDEX = {1: 0, 113: 1, 276: 2}


def read_pcap(path):
    """Classic pcap, either byte order and resolution: (linktype, [(ts_ns, frame)])."""
    with open(path, "rb") as f:
        raw = f.read()
    magic = raw[:4]
    orders = {
        b"\xd4\xc3\xb2\xa1": ("<", 1000),
        b"\xa1\xb2\xc3\xd4": (">", 1000),
        b"\x4d\x3c\xb2\xa1": ("<", 1),
        b"\xa1\xb2\x3c\x4d": (">", 1),
    }
    end, mult = orders[magic]
    linktype = struct.unpack(end + "I", raw[20:24])[0]
    pkts, off = [], 24
    while off + 16 <= len(raw):
        sec, frac, incl, _orig = struct.unpack(end + "IIII", raw[off : off + 16])
        off += 16
        pkts.append((sec * 1_000_000_000 + frac * mult, raw[off : off + incl]))
        off += incl
    return linktype, pkts


def step(prev_ns, ts_ns):
    ms = max(0, ts_ns - prev_ns) // 1_000_000
    if ms < 128:
        return ms
    return min(255, 127 + max(1, ms // 1000))


def seeds_of(link, opts, pkts):
    """Consecutive packets, cut into seeds that fit in MAX_SEED bytes."""
    out, cur, prev = [], bytearray([link, opts]), None
    for ts, frame in pkts:
        rec = struct.pack(">HB", len(frame), step(prev if prev else ts, ts)) + frame
        if len(cur) + len(rec) > MAX_SEED and len(cur) > 2:
            out.append(bytes(cur))
            cur = bytearray([link, opts])
        cur += rec
        prev = ts
    if len(cur) > 2:
        out.append(bytes(cur))
    return out


def ip_of_eth(frame):
    """The IP packet inside an Ethernet frame, or None (ARP and the like)."""
    if len(frame) < 14:
        return None
    if frame[12:14] in (b"\x08\x00", b"\x86\xdd"):
        return frame[14:]
    return None


def null_header(ip):
    family = 2 if ip[0] >> 4 == 4 else 30  # AF_INET, AF_INET6 (BSD), host order
    return struct.pack("<I", family) + ip


def ipv4_checksum(hdr):
    s = sum(struct.unpack(">%dH" % (len(hdr) // 2), hdr))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def fragments(ip, chunk, ident):
    """An IPv4 packet (20-byte header) as fragments of `chunk` bytes, last one first."""
    assert chunk % 8 == 0 and ip[0] == 0x45
    payload, out = ip[20:], []
    for off in range(0, len(payload), chunk):
        data = payload[off : off + chunk]
        more = off + chunk < len(payload)
        hdr = bytearray(ip[:20])
        struct.pack_into(">HHH", hdr, 2, 20 + len(data), ident, (off // 8) | (0x2000 if more else 0))
        hdr[10:12] = b"\0\0"
        struct.pack_into(">H", hdr, 10, ipv4_checksum(bytes(hdr)))
        out.append(bytes(hdr) + data)
    return out[::-1]


def main():
    os.makedirs(OUT, exist_ok=True)
    written = []

    def write(name, data):
        assert len(data) <= 4096, (name, len(data))
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        written.append(name)

    opts_cycle = [1, 0, 3, 6, 2, 5]
    for cap in ["spine-eth.pcap", "spine-any-sll.pcap", "spine-any-sll2.pcap", "vlan-8021q.pcap", "vlan-qinq.pcap"]:
        linktype, pkts = read_pcap(os.path.join(DATA, cap))
        stem = cap[: -len(".pcap")]
        for i, s in enumerate(seeds_of(LINK_INDEX[linktype], 0, pkts)):
            # Rotate policy and limits over the seeds so each capture meets several.
            opts = opts_cycle[len(written) % len(opts_cycle)]
            write(f"{stem}-{i}", s[:1] + bytes([opts]) + s[2:])

    _, eth = read_pcap(os.path.join(DATA, "spine-eth.pcap"))
    ips = [(ts, ip) for ts, f in eth if (ip := ip_of_eth(f)) is not None]
    for i, s in enumerate(seeds_of(3, 1, ips)):
        write(f"raw-ip-{i}", s)
    for i, s in enumerate(seeds_of(4, 3, [(ts, null_header(ip)) for ts, ip in ips])):
        write(f"null-loopback-{i}", s)

    # The HTTP GET (first IPv4 TCP segment with payload) and the UDP DNS query, each split
    # into fragments and preceded by the handshake where there is one.
    v4 = [(ts, ip) for ts, ip in ips if ip[0] == 0x45]
    tcp_data = next(i for i, (_, ip) in enumerate(v4) if ip[9] == 6 and len(ip) > 20 + 32 + 8)
    frames = v4[tcp_data - 3 : tcp_data]
    frames += [(v4[tcp_data][0], f) for f in fragments(v4[tcp_data][1], 24, 0x4242)]
    frames += v4[tcp_data + 1 : tcp_data + 3]
    write("frag-tcp-http", seeds_of(3, 1, frames)[0])
    udp = next(ip for _, ip in v4 if ip[9] == 17)
    write("frag-udp-dns", seeds_of(3, 3, [(0, f) for f in fragments(udp, 16, 0x0707)])[0])

    print(f"{len(written)} seeds in {os.path.relpath(OUT, ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
