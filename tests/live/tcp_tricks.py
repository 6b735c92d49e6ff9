#!/usr/bin/env python3
"""TCP-level evasion tricks no ordinary client produces, played live with scapy.

    tcp_tricks.py SRC DST PORT FIRST_SPORT TRICK...

Each trick opens its own connection from SRC:FIRST_SPORT+i (keep these ports outside the
kernel's ephemeral range, and drop the kernel's own RSTs from them: the kernel knows
nothing of these connections and would reset them) to DST:PORT, plays the trick, waits
for the server's answer, and prints one line:

    TRICK status=200|none rst=yes|no bytes=N

(the status of the first HTTP response, whether a RST came back, how many payload bytes the
server sent). Tricks, each ending with the real request `GET /admin` unless said:

  honest                 GET /index.html, nothing else (the machinery works);
  bad-checksum-decoy     GET /index.html with a bad TCP checksum at the sequence numbers of
                         the real request, then the real request (receivers drop the decoy);
  no-ack-decoy           the decoy without the ACK flag (Linux drops it), then the request;
  second-syn             a SYN with another ISN after the handshake (the server sends a
                         challenge ACK), then the request at the original sequence numbers;
  retransmit-different   GET /aaaaa at the request's sequence numbers with TTL 33 (the test
                         drops TTL 32 on the server: the segment is lost behind the firewall),
                         then a retransmission of the same range carrying the request.

The decoys and the real request have the same length.
"""

import random
import sys
import threading
import time

from scapy.all import IP, TCP, AsyncSniffer, conf, send, sr1

conf.verb = 0
LENGTH = 100


def request(path):
    """GET path, padded to LENGTH bytes with a header field."""
    head = b"GET " + path + b" HTTP/1.1\r\nHost: srv\r\nConnection: close\r\nX-Pad: "
    tail = b"\r\n\r\n"
    fill = LENGTH - len(head) - len(tail)
    assert fill > 0
    return head + b"p" * fill + tail


REAL = request(b"/admin")
DECOY = request(b"/index.html")
OTHER = request(b"/aaaaa")


def play(trick, src, dst, dport, sport):
    ip = IP(src=src, dst=dst)
    listening = threading.Event()
    ended = threading.Event()  # the server's FIN or a RST came

    def seen(p):
        if TCP in p and p[TCP].flags & 0x05:
            ended.set()

    sniffer = AsyncSniffer(
        iface=conf.route.route(dst)[0],
        filter=f"tcp and src host {dst} and src port {dport} and dst port {sport}",
        store=True,
        prn=seen,
        started_callback=listening.set,
    )
    sniffer.start()
    if not listening.wait(5):
        raise SystemExit("the sniffer did not start")
    isn = random.randrange(1 << 32)
    synack = sr1(
        ip / TCP(sport=sport, dport=dport, flags="S", seq=isn, window=64240,
                 options=[("MSS", 1400)]),
        timeout=2,
    )
    if synack is None or synack[TCP].flags & 0x12 != 0x12:
        sniffer.stop()
        return "status=none rst=yes bytes=0 (no SYN-ACK)"
    seq, ack = (isn + 1) & 0xFFFFFFFF, (synack[TCP].seq + 1) & 0xFFFFFFFF

    def seg(payload, flags="PA", s=None, **kw):
        return ip / TCP(sport=sport, dport=dport, flags=flags,
                        seq=seq if s is None else s, ack=ack, window=64240, **kw) / payload

    send(ip / TCP(sport=sport, dport=dport, flags="A", seq=seq, ack=ack, window=64240))
    if trick == "honest":
        send(seg(DECOY))
    elif trick == "bad-checksum-decoy":
        good = IP(bytes(seg(DECOY)))[TCP].chksum
        send(seg(DECOY, chksum=good ^ 0x5A5A))
        time.sleep(0.05)
        send(seg(REAL))
    elif trick == "no-ack-decoy":
        decoy = ip / TCP(sport=sport, dport=dport, flags="P", seq=seq, window=64240) / DECOY
        send(decoy)
        time.sleep(0.05)
        send(seg(REAL))
    elif trick == "second-syn":
        send(ip / TCP(sport=sport, dport=dport, flags="S",
                      seq=(isn + (1 << 31)) & 0xFFFFFFFF, window=64240))
        time.sleep(0.1)
        send(seg(REAL))
    elif trick == "retransmit-different":
        lost = IP(src=src, dst=dst, ttl=33) / TCP(sport=sport, dport=dport, flags="PA",
                                                 seq=seq, ack=ack, window=64240) / OTHER
        send(lost)
        time.sleep(0.2)
        send(seg(REAL))
    else:
        raise SystemExit(f"unknown trick {trick}")

    # Wait for the answer: the server's FIN or a RST, or 1.5 s.
    ended.wait(1.5)
    time.sleep(0.1)
    pkts = sniffer.stop() or []
    data = {}
    rst = False
    for p in pkts:
        if TCP not in p:
            continue
        if p[TCP].flags & 0x04:
            rst = True
        payload = bytes(p[TCP].payload)
        if payload:
            data[p[TCP].seq] = payload
    stream = b"".join(data[k] for k in sorted(data))
    status = "none"
    if stream.startswith(b"HTTP/1."):
        status = stream.split(b" ", 2)[1].decode("latin-1")
    # Leave the server nothing half-open: our own reset after whatever was sent.
    sent_end = (seq + LENGTH) & 0xFFFFFFFF
    if not rst:
        send(ip / TCP(sport=sport, dport=dport, flags="R", seq=sent_end, window=0))
    return f"status={status} rst={'yes' if rst else 'no'} bytes={len(stream)}"


def main():
    src, dst, dport, first = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    for i, trick in enumerate(sys.argv[5:]):
        print(f"{trick} {play(trick, src, dst, dport, first + i)}", flush=True)


if __name__ == "__main__":
    main()
