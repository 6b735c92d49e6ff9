#!/usr/bin/env python3
"""The demo's `orders` service: a small HTTP/1.1 JSON API used only to record shop.pcap.

GET  /api/orders/<id>  -> 200 the order
POST /api/orders       -> 201 the new order (JSON body required)
anything else          -> 404

Listens on [::]:8080 with IPV6_V6ONLY off, so IPv4 and IPv6 clients reach one socket.
HTTP/1.1 with Content-Length on every reply, so curl keeps connections alive.
"""

import json
import re
import socket
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ORDERS = {7: {"id": 7, "item": "mug", "qty": 2, "status": "shipped"},
          8: {"id": 8, "item": "teapot", "qty": 1, "status": "packed"}}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "orders/1.0"
    sys_version = ""

    def reply(self, status, body):
        data = (json.dumps(body, separators=(",", ":")) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        m = re.fullmatch(r"/api/orders/(\d+)", self.path.split("?", 1)[0])
        if m and int(m.group(1)) in ORDERS:
            self.reply(200, ORDERS[int(m.group(1))])
        else:
            self.reply(404, {"error": "not found"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if 0 < length <= 65536 else b""
        if self.path != "/api/orders":
            self.reply(404, {"error": "not found"})
            return
        try:
            order = json.loads(body)
        except ValueError:
            self.reply(400, {"error": "body must be JSON"})
            return
        new_id = max(ORDERS) + 1
        ORDERS[new_id] = {"id": new_id, **order, "status": "new"}
        self.reply(201, ORDERS[new_id])


class DualStackServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    DualStackServer(("::", port), Handler).serve_forever()
