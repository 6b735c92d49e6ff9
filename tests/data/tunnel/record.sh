#!/usr/bin/env bash
# Records real HTTP CONNECT tunnels (curl through tinyproxy to nginx, HTTP and HTTPS inside
# the tunnel) and a plain forward-proxy request, as the client's side of the proxy sees
# them. Usage: sudo bash tests/data/tunnel/record.sh      (see README.md beside this file)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
source "$ROOT/tests/netns/lib.sh"
netns_init
T=$(ns_tmp)
export LC_ALL=C
C4=10.99.31.1 S4=10.99.31.2 PROXY=3128

ns_create cli srv
ns_veth cli eth0 srv eth0
ns_addr cli eth0 $C4/24
ns_addr srv eth0 $S4/24

# The proxy resolves the names in CONNECT requests: `ip netns exec` bind-mounts
# /etc/netns/<namespace>/hosts over /etc/hosts, so shop.test is the server inside `srv`
# only. Removed on exit with the namespaces.
HOSTS_DIR=/etc/netns/$(ns_name srv)
mkdir -p "$HOSTS_DIR"
printf '127.0.0.1 localhost\n%s shop.test\n' $S4 >"$HOSTS_DIR/hosts"
forget_hosts() { rm -rf "$HOSTS_DIR"; rmdir /etc/netns 2>/dev/null || true; }
trap 'forget_hosts; cleanup' EXIT
trap 'forget_hosts; cleanup; exit 130' INT
trap 'forget_hosts; cleanup; exit 143' TERM

# A throwaway certificate for shop.test (not kept), which curl is told to trust.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=shop.test -addext subjectAltName=DNS:shop.test \
    -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null

mkdir -p "$T/www"
printf '<html><body>shop</body></html>\n' >"$T/www/index.html"
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
        listen $S4:80;
        listen $S4:8000;
        listen $S4:443 ssl;
        server_name shop.test;
        ssl_certificate $T/cert.pem;
        ssl_certificate_key $T/key.pem;
        root $T/www;
        location /api/orders/ {
            default_type application/json;
            return 200 '{"id":7,"item":"mug"}\n';
        }
    }
}
NGINX
ns_spawn srv nginx -c "$T/nginx.conf" -e "$T/nginx-error.log"
ns_wait_tcp srv $S4 443

# tinyproxy: no Via header and no upstream; CONNECT allowed to 80, 8000 and 443 only.
cat >"$T/tinyproxy.conf" <<CONF
User nobody
Group nogroup
Port $PROXY
Listen $S4
Timeout 30
LogLevel Info
MaxClients 10
Allow 10.99.31.0/24
ConnectPort 443
ConnectPort 80
ConnectPort 8000
DisableViaHeader Yes
CONF
ns_spawn srv tinyproxy -d -c "$T/tinyproxy.conf"
ns_wait_tcp srv $S4 $PROXY
ns_settle cli srv
ns_capture cli eth0 "$T/connect.pcap" "tcp port $PROXY"

P=http://$S4:$PROXY
CURL=(curl -sS --http1.1 -H 'User-Agent: palisade-test/1' -x "$P")
# 0: plain forward proxying: "GET http://shop.test/index.html" (absolute form), no tunnel.
ns_exec cli "${CURL[@]}" -o /dev/null http://shop.test/index.html
ns_wait_closed cli
# 1: -p (--proxytunnel) asks for a tunnel even for http: "CONNECT shop.test:80", "200
# Connection established", then two HTTP/1.1 requests inside it, one connection.
ns_exec cli "${CURL[@]}" -p -o /dev/null -o /dev/null \
    http://shop.test/index.html http://shop.test/api/orders/7
ns_wait_closed cli
# 2: the same to port 8000. tshark does not read HTTP inside a tunnel to a port it takes
# for HTTP itself (80, 8080...: packet-http.c guards against recursion and calls the data
# dissector), so the first tunnel's requests are invisible to it; to 8000 it looks the
# port up as for any TCP payload and its heuristics find HTTP.
ns_exec cli "${CURL[@]}" -p -o /dev/null -o /dev/null \
    http://shop.test:8000/index.html http://shop.test:8000/api/orders/8
ns_wait_closed cli
# 3: https through the proxy: "CONNECT shop.test:443", then TLS inside the tunnel with SNI
# shop.test (and HTTP/1.1 in it, encrypted).
ns_exec cli "${CURL[@]}" --cacert "$T/cert.pem" -o /dev/null https://shop.test/index.html
ns_wait_closed cli
ns_capture_stop "$T/connect.pcap"

cp "$T/connect.pcap" "$HERE/connect.pcap"
{ tinyproxy -v; nginx -v 2>&1; curl --version | head -1; openssl version; tcpdump --version | head -1;
  tshark --version | head -1; } >"$HERE/recorded-with.txt"
