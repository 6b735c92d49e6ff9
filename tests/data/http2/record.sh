#!/usr/bin/env bash
# Records real HTTP/2 cleartext (h2c) conversations for the HTTP/2 parser's tests and
# extracts each TCP connection's payload into proto-parsers/src/http2/testdata/.
# Usage: sudo bash tests/data/http2/record.sh      (see README.md beside this file)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
FIX="$ROOT/proto-parsers/src/http2/testdata"
source "$ROOT/tests/netns/lib.sh"
netns_init
T=$(ns_tmp)
export LC_ALL=C
C4=10.99.22.1 S4=10.99.22.2 PORT=8080 UPORT=8081

ns_create cli srv
ns_veth cli eth0 srv eth0
ns_addr cli eth0 $C4/24
ns_addr srv eth0 $S4/24

# A small docroot: an index, a 100 KB file (several DATA frames, WINDOW_UPDATEs) and an
# empty one; everything else is a 404 from nghttpd.
mkdir -p "$T/www/api"
printf '<html><body>palisade h2 test</body></html>\n' >"$T/www/index.html"
head -c 100000 /dev/zero | tr '\0' 'a' >"$T/www/big.bin"
: >"$T/www/api/empty"
printf '{"item":"widget","qty":3}' >"$T/post.json"

ns_spawn srv nghttpd --no-tls -a $S4 -d "$T/www" --echo-upload $PORT
ns_wait_tcp srv $S4 $PORT
# nghttpd does not take HTTP/1.1 Upgrade; nghttpx (cleartext frontend) does, and forwards
# to nghttpd over HTTP/2.
ns_spawn srv nghttpx --frontend="$S4,$UPORT;no-tls" --backend="$S4,$PORT;;proto=h2" \
    --workers=1 --no-ocsp --conf=/dev/null --errorlog-file="$T/nghttpx.log" --accesslog-file=/dev/null
ns_wait_tcp srv $S4 $UPORT
ns_settle cli srv
ns_capture cli eth0 "$T/h2.pcap" -B 65536 "tcp port $PORT or tcp port $UPORT"

U=http://$S4:$PORT
# 0: nghttp, prior knowledge, several URLs on one connection as concurrent streams.
ns_exec cli nghttp -nv $U/index.html $U/big.bin $U/missing $U/api/empty >/dev/null
ns_wait_closed cli
# 1: the same URL five times at once (-m 5), with a custom header.
ns_exec cli nghttp -nv -m 5 -H 'x-trace: abc123' $U/index.html >/dev/null
ns_wait_closed cli
# 2: a POST with a body (nghttpd echoes uploads) and a 20 KB header, which nghttp sends as
# HEADERS + CONTINUATION (the block is larger than the 16 KB default frame size; random
# letters so that Huffman coding cannot shrink it below that).
BIG=$(python3 -c 'import random,string; r=random.Random(7); print("".join(r.choice(string.ascii_letters+string.digits) for _ in range(30000)))')
ns_exec cli nghttp -nv -d "$T/post.json" -H "x-big: $BIG" -H 'content-type: application/json' \
    $U/api/orders >/dev/null || true
ns_wait_closed cli
# 3: curl with prior knowledge, GET then a POST on a second connection (4).
ns_exec cli curl -s -o /dev/null --http2-prior-knowledge -A 'curl-test/1.0' $U/index.html
ns_wait_closed cli
ns_exec cli curl -s -o /dev/null --http2-prior-knowledge -H 'content-type: application/json' \
    --data-binary @"$T/post.json" $U/api/orders
ns_wait_closed cli
# 5: h2c upgrade from HTTP/1.1 (nghttp -u, to nghttpx): the upgraded request's response is
# stream 1.
ns_exec cli nghttp -nvu http://$S4:$UPORT/index.html >/dev/null
ns_wait_closed cli
ns_capture_stop "$T/h2.pcap"

cp "$T/h2.pcap" "$HERE/h2.pcap"
mkdir -p "$FIX"
tshark -r "$HERE/h2.pcap" -w "$T/pk.pcap" -Y "tcp.port == $PORT"
python3 "$ROOT/tests/data/redis/segments.py" "$T/pk.pcap" tcp $PORT "$FIX/h2"
# The upgrade connection (frontend port) separately; the nghttpx->nghttpd leg is on the
# server's own address and not on the capture's interface.
tshark -r "$HERE/h2.pcap" -w "$T/up.pcap" -Y "tcp.port == $UPORT"
python3 "$ROOT/tests/data/redis/segments.py" "$T/up.pcap" tcp $UPORT "$FIX/h2-upgrade"
{ nghttpd --version; nghttp --version; nghttpx --version; curl --version | head -1; tshark --version | head -1; } \
    >"$HERE/recorded-with.txt"
