#!/usr/bin/env python3
"""Rewrite a classic pcap file in the other byte order, packets unchanged.

Why: no packaged tool writes a big-endian pcap on a little-endian machine (tcpdump,
dumpcap and editcap all write host order), yet readers must handle files recorded on
big-endian hosts. Only the file header and the per-record headers change; packet bytes
are copied as they are. `tshark -r` on both files must print the same packets.

Usage: pcap_swap.py IN.pcap OUT.pcap
"""

import struct
import sys

MAGICS = {0xA1B2C3D4: "usec", 0xA1B23C4D: "nsec"}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    data = open(sys.argv[1], "rb").read()
    if len(data) < 24:
        sys.exit("not a pcap file: shorter than its header")
    for src in ("<", ">"):
        (magic,) = struct.unpack(src + "I", data[:4])
        if magic in MAGICS:
            break
    else:
        sys.exit("not a classic pcap file (pcapng? convert with editcap -F pcap first)")
    dst = ">" if src == "<" else "<"
    hdr = struct.unpack(src + "IHHiIII", data[:24])
    out = [struct.pack(dst + "IHHiIII", *hdr)]
    off = 24
    while off < len(data):
        if off + 16 > len(data):
            sys.exit(f"truncated record header at offset {off}")
        sec, frac, incl, orig = struct.unpack(src + "IIII", data[off : off + 16])
        body = data[off + 16 : off + 16 + incl]
        if len(body) != incl:
            sys.exit(f"truncated packet at offset {off}")
        out.append(struct.pack(dst + "IIII", sec, frac, incl, orig))
        out.append(body)
        off += 16 + incl
    with open(sys.argv[2], "wb") as f:
        f.write(b"".join(out))


if __name__ == "__main__":
    main()
