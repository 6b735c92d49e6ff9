#!/usr/bin/env bash
# Records real openssl s_client <-> openssl s_server handshakes for the TLS parser's tests
# and extracts each connection's payload into proto-parsers/src/tls/testdata/.
# Usage: sudo bash tests/data/tls/record.sh      (see README.md beside this file)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
FIX="$ROOT/proto-parsers/src/tls/testdata"
source "$ROOT/tests/netns/lib.sh"
netns_init
T=$(ns_tmp)
export LC_ALL=C
C4=10.99.9.1 S4=10.99.9.2

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=shop.test -addext subjectAltName=DNS:shop.test,DNS:api.shop.test \
    -keyout "$T/key.pem" -out "$T/cert.pem" 2>/dev/null
ns_create cli srv
ns_veth cli eth0 srv eth0
ns_addr cli eth0 $C4/24
ns_addr srv eth0 $S4/24
# Accepts ffdhe8192 (1 KB key shares, to make big ClientHellos) but not P-384, so a client
# whose first group is P-384 gets a HelloRetryRequest.
ns_spawn srv openssl s_server -accept $S4:4433 -cert "$T/cert.pem" -key "$T/key.pem" \
    -alpn h2,http/1.1 -groups X25519:P-256:ffdhe8192 -quiet
ns_wait_tcp srv $S4 4433
ns_settle cli srv

cl() { ns_exec cli openssl s_client -connect $S4:4433 "$@" </dev/null >/dev/null 2>&1 || true; ns_wait_closed cli; }
ns_capture cli eth0 "$T/tls.pcap" tcp port 4433
cl -tls1_3 -servername shop.test -alpn h2,http/1.1                         # tls-0
cl -tls1_2 -servername api.shop.test -alpn http/1.1                        # tls-1
cl -tls1_3 -noservername                                                   # tls-2
cl -tls1_3 -servername big.shop.test -alpn h2,http/1.1 -groups ffdhe8192 -max_send_frag 512  # tls-3: CH in 3 records
cl -tls1_3 -servername hrr.shop.test -groups P-384:P-256                    # tls-4: HelloRetryRequest
ns_capture_stop "$T/tls.pcap"

cp "$T/tls.pcap" "$HERE/"
mkdir -p "$FIX"
python3 "$ROOT/tests/data/redis/segments.py" "$HERE/tls.pcap" tcp 4433 "$FIX/tls"
{ openssl version; tshark --version | head -1; } >"$HERE/recorded-with.txt"
