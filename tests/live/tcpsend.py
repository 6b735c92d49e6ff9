#!/usr/bin/env python3
"""Sends bytes over one ordinary TCP connection and says how the server answered.

    tcpsend.py HOST PORT [TIMEOUT] < PAYLOAD

The whole payload goes out in one write (the kernel cuts it into segments), then the
connection is read until the server closes it, resets it, or TIMEOUT seconds (default 3)
pass. Prints one line: the outcome (`reset`, `closed` or `timeout`), the seconds it took,
and the first line of each HTTP response or each RESP reply seen, e.g.

    reset 0.002 | HTTP/1.1 200 OK | HTTP/1.1 200 OK

Exit status: 0 closed, 56 reset (as curl's "recv failure"), 28 timeout (as curl's).
"""

import socket
import sys
import time


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    payload = sys.stdin.buffer.read()
    start = time.monotonic()
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    got = b""
    outcome = "closed"
    try:
        s.sendall(payload)
        deadline = start + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                outcome = "timeout"
                break
            s.settimeout(left)
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        outcome = "reset"
    except BrokenPipeError:
        outcome = "reset"
    except socket.timeout:
        outcome = "timeout"
    finally:
        s.close()
    took = time.monotonic() - start
    firsts = []
    for line in got.split(b"\n"):
        line = line.rstrip(b"\r")
        if line.startswith(b"HTTP/") or line[:1] in (b"+", b"-", b":"):
            firsts.append(line.decode("latin-1")[:60])
    print(" | ".join([f"{outcome} {took:.3f}"] + firsts))
    sys.exit({"closed": 0, "reset": 56, "timeout": 28}[outcome])


if __name__ == "__main__":
    main()
