#!/usr/bin/env bash
# Records two HTTP/1.1 edge cases against real nginx, each in its own capture:
#   tfo.pcap             curl --tcp-fastopen, twice: the cookie exchange, then a request
#                        carried by the SYN (TCP Fast Open, RFC 7413)
#   content-length.pcap  requests with two identical and with two conflicting
#                        Content-Length fields, written by printf | nc
# Usage: sudo bash tests/data/http1/record-edge.sh      (see README.md beside this file)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
source "$ROOT/tests/netns/lib.sh"
netns_init
T=$(ns_tmp)
export LC_ALL=C
C4=10.99.12.1 S4=10.99.12.2

ns_create cli srv
ns_veth cli eth0 srv eth0
ns_addr cli eth0 $C4/24
ns_addr srv eth0 $S4/24
# TCP Fast Open as client and as server (bit 0 and bit 1), in each namespace.
for n in cli srv; do ns_exec $n sysctl -qw net.ipv4.tcp_fastopen=3; done

mkdir -p "$T/www"
printf '<html><body><h1>shop</h1></body></html>\n' >"$T/www/index.html"
cat >"$T/nginx.conf" <<NGINX
daemon off;
master_process off;
user root;
worker_processes 1;
pid $T/nginx.pid;
error_log $T/nginx-error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $T/body;
    proxy_temp_path $T/proxy;
    fastcgi_temp_path $T/fastcgi;
    uwsgi_temp_path $T/uwsgi;
    scgi_temp_path $T/scgi;
    types { text/html html; }
    server {
        # fastopen=16: TCP_FASTOPEN on the listening socket, at most 16 pending.
        listen $S4:80 fastopen=16;
        server_name orders.shop;
        root $T/www;
        location /api/orders/ {
            default_type application/json;
            return 200 '{"id":7,"item":"mug","qty":2,"status":"shipped"}\n';
        }
        location = /api/orders {
            default_type application/json;
            return 201 '{"id":9,"status":"created"}\n';
        }
    }
}
NGINX
ns_spawn srv nginx -c "$T/nginx.conf" -e "$T/nginx-error.log"
ns_wait_tcp srv $S4 80
ns_settle cli srv

U=http://$S4
CURL=(curl -sS --http1.1 -H 'User-Agent: palisade-test/1' -H 'Host: orders.shop')

# TCP Fast Open. The first connection's SYN asks for a cookie (an empty TFO option) and
# the SYN-ACK brings one; the second SYN carries the cookie and the whole request, which
# nginx reads before the handshake completes. (ns_wait_tcp's probe connected without TFO,
# so no cookie exists before the capture.)
ns_capture cli eth0 "$T/tfo.pcap" "tcp port 80"
ns_exec cli "${CURL[@]}" --tcp-fastopen -o /dev/null $U/index.html
ns_wait_closed cli
ns_exec cli "${CURL[@]}" --tcp-fastopen -o /dev/null $U/api/orders/7
ns_wait_closed cli
ns_capture_stop "$T/tfo.pcap"

# Repeated Content-Length. RFC 9112 6.3: identical repeated values may be taken as one,
# different ones make the message invalid. nginx 1.22 refuses both with 400 (it takes
# Content-Length as a header that must not repeat) and closes.
ns_capture cli eth0 "$T/content-length.pcap" "tcp port 80"
BODY='{"item":"mug","qty":2}'
send() { printf "$1" | ns_exec cli nc -N -w 3 $S4 80 >/dev/null; ns_wait_closed cli; }
send "POST /api/orders HTTP/1.1\r\nHost: orders.shop\r\nUser-Agent: palisade-test/1\r\nContent-Type: application/json\r\nContent-Length: 22\r\nContent-Length: 22\r\n\r\n$BODY"
send "POST /api/orders HTTP/1.1\r\nHost: orders.shop\r\nUser-Agent: palisade-test/1\r\nContent-Type: application/json\r\nContent-Length: 22\r\nContent-Length: 5\r\n\r\n$BODY"
ns_capture_stop "$T/content-length.pcap"

cp "$T/tfo.pcap" "$T/content-length.pcap" "$HERE/"
{ nginx -v 2>&1; curl --version | head -1; dpkg-query -W -f='netcat-openbsd ${Version}\n' netcat-openbsd;
  tcpdump --version | head -1; tshark --version | head -1; uname -sr; } >"$HERE/recorded-with-edge.txt"
