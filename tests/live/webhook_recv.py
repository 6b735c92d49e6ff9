#!/usr/bin/env python3
"""A webhook receiver for the alert-sink tests: records every POST and answers 200.

    webhook_recv.py PORT OUT.jsonl [CERT.pem KEY.pem]

Listens on 127.0.0.1:PORT (TLS when a certificate and key are given). Each POST is
appended to OUT.jsonl as one line: {"path": ..., "auth": <Authorization header or null>,
"content_type": ..., "body": <the body parsed as JSON, or the raw text if it is not>}.
"""

import json
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def main():
    port, out = int(sys.argv[1]), sys.argv[2]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(n).decode("utf-8", "replace")
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
            rec = {
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "content_type": self.headers.get("Content-Type"),
                "body": body,
            }
            with LOCK, open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "3")
            self.end_headers()
            self.wfile.write(b"ok\n")

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if len(sys.argv) > 4:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[3], sys.argv[4])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print("listening", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
