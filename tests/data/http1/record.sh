#!/usr/bin/env bash
# Records real curl <-> nginx HTTP/1.x conversations (and one h2c upgrade through nghttpx)
# for the HTTP/1 parser's tests, and extracts each TCP connection's payload into
# proto-parsers/src/http1/testdata/ (format: segments.py beside this file).
# Usage: sudo bash tests/data/http1/record.sh      (see README.md beside this file)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
FIX="$ROOT/proto-parsers/src/http1/testdata"
source "$ROOT/tests/netns/lib.sh"
netns_init
T=$(ns_tmp)
export LC_ALL=C
C4=10.99.11.1 S4=10.99.11.2 H2PORT=8080 UPPORT=8082

ns_create cli srv
ns_veth cli eth0 srv eth0
ns_addr cli eth0 $C4/24
ns_addr srv eth0 $S4/24

# Docroot: an index, a 120 KB file (a large response body), an SSI page (nginx cannot know
# its length in advance: chunked to HTTP/1.1 clients, close-delimited to HTTP/1.0 ones).
mkdir -p "$T/www" "$T/h2www"
printf '<html><body><h1>shop</h1></body></html>\n' >"$T/www/index.html"
head -c 120000 /dev/zero | tr "\0" b >"$T/www/big.bin"
printf '<html><body>now: <!--# echo var="date_gmt" --> <!--# include file="/index.html" --></body></html>\n' \
    >"$T/www/ssi.html"
printf '<html><body>h2c</body></html>\n' >"$T/h2www/index.html"
# Upload payloads: 110 KB for the chunked upload (curl sends 64 KB chunks), 120 KB for the
# Expect: 100-continue one.
head -c 110000 /dev/zero | tr "\0" u >"$T/upload.bin"
head -c 120000 /dev/zero | tr "\0" e >"$T/expect.bin"

cat >"$T/nginx.conf" <<EOF
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
    types { text/html html; application/octet-stream bin; }
    client_max_body_size 10m;
    keepalive_requests 100;
    server {
        listen $S4:80;
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
        # Uploads go to an upstream so that nginx really reads the body (and answers
        # "100 Continue" when asked); the upstream leg is on loopback, not captured.
        location /upload {
            proxy_pass http://127.0.0.1:8081;
            proxy_request_buffering on;
        }
        location = /ssi.html { ssi on; }
    }
    server {
        listen 127.0.0.1:8081;
        location / {
            default_type text/plain;
            return 201 "stored\n";
        }
    }
}
EOF
ns_spawn srv nginx -c "$T/nginx.conf" -e "$T/nginx-error.log"
ns_wait_tcp srv $S4 80
# h2c upgrade: nghttpx takes HTTP/1.1 Upgrade on its cleartext frontend and forwards to
# nghttpd over HTTP/2 (nghttpd itself does not take Upgrade).
ns_spawn srv nghttpd --no-tls -a 127.0.0.1 -d "$T/h2www" $H2PORT
ns_wait_tcp srv 127.0.0.1 $H2PORT
ns_spawn srv nghttpx --frontend="$S4,$UPPORT;no-tls" --backend="127.0.0.1,$H2PORT;;proto=h2" \
    --workers=1 --no-ocsp --conf=/dev/null --errorlog-file="$T/nghttpx.log" --accesslog-file=/dev/null
ns_wait_tcp srv $S4 $UPPORT
ns_settle cli srv
ns_capture cli eth0 "$T/http1.pcap" -B 65536 "tcp port 80 or tcp port $UPPORT"

U=http://$S4
CURL=(curl -sS --http1.1 -H 'User-Agent: palisade-test/1' -H 'Host: orders.shop')
c() { ns_exec cli "${CURL[@]}" "$@"; ns_wait_closed cli; }
# 0: keep-alive, one connection (curl --next reuses it): GET, HEAD, a 404, a POST with a
# JSON body, a GET with a query string.
c -o /dev/null $U/index.html \
    --next -sS -H 'User-Agent: palisade-test/1' -I -o /dev/null $U/api/orders/7 \
    --next -sS -H 'User-Agent: palisade-test/1' -o /dev/null $U/missing \
    --next -sS -H 'User-Agent: palisade-test/1' -H 'Content-Type: application/json' \
        -d '{"item":"mug","qty":2}' -o /dev/null $U/api/orders \
    --next -sS -H 'User-Agent: palisade-test/1' -o /dev/null "$U/api/orders/8?verbose=1&x=%2e"
# 1: a chunked upload (curl sends the 110 KB file as chunks).
c -o /dev/null -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/octet-stream' \
    --data-binary @"$T/upload.bin" $U/upload/chunked
# 2: a large response body (120 KB), then a chunked response (SSI) on the same connection.
c -o /dev/null $U/big.bin --next -sS -o /dev/null $U/ssi.html
# 3: Expect: 100-continue with a 120 KB POST: "100 Continue", then the body, then 201.
c -o /dev/null -H 'Expect: 100-continue' --data-binary @"$T/expect.bin" $U/upload/expect
# 4: HTTP/1.0 (curl -0) to a static file: Content-Length, connection closed after.
c -0 -o /dev/null $U/index.html
# 5: HTTP/1.0 to the SSI page: no length known, the body ends when the connection closes.
c -0 -o /dev/null $U/ssi.html
# 6: curl --http2 over cleartext asks nginx (no h2 here) to upgrade: nginx ignores the
# Upgrade header and answers in HTTP/1.1.
ns_exec cli curl -sS --http2 -o /dev/null $U/index.html
ns_wait_closed cli
# 7: the same against nghttpx: "101 Switching Protocols", then HTTP/2 in both directions.
ns_exec cli curl -sS --http2 -o /dev/null http://$S4:$UPPORT/index.html
ns_wait_closed cli
ns_capture_stop "$T/http1.pcap"

cp "$T/http1.pcap" "$HERE/http1.pcap"
mkdir -p "$FIX"
rm -f "$FIX"/http1-*.seg
tshark -r "$HERE/http1.pcap" -w "$T/p80.pcap" -Y "tcp.port == 80"
python3 "$HERE/segments.py" "$T/p80.pcap" 80 "$FIX/http1"
tshark -r "$HERE/http1.pcap" -w "$T/up.pcap" -Y "tcp.port == $UPPORT"
python3 "$HERE/segments.py" "$T/up.pcap" $UPPORT "$FIX/http1-h2c"
{ nginx -v 2>&1; curl --version | head -1; nghttpx --version; nghttpd --version; tshark --version | head -1; } \
    >"$HERE/recorded-with.txt"
