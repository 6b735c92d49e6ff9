#!/usr/bin/env bash
# Records real gRPC conversations (python3-grpcio client and server, echo.py beside this
# file) for the HTTP/2 parser's gRPC tests and extracts each TCP connection's payload into
# proto-parsers/src/grpc/testdata/.
# Usage: sudo bash tests/data/grpc/record.sh      (see README.md beside this file)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
FIX="$ROOT/proto-parsers/src/grpc/testdata"
source "$ROOT/tests/netns/lib.sh"
netns_init
T=$(ns_tmp)
export LC_ALL=C
# Debian's grpcio lives in the system python, not in a pyenv one that may come first.
PY=/usr/bin/python3
C4=10.99.23.1 S4=10.99.23.2 PORT=50051

ns_create cli srv
ns_veth cli eth0 srv eth0
ns_addr cli eth0 $C4/24
ns_addr srv eth0 $S4/24
ns_spawn srv $PY "$HERE/echo.py" serve $S4:$PORT
ns_wait_log "$NS_LAST_LOG" serving
ns_wait_tcp srv $S4 $PORT
ns_settle cli srv
ns_capture cli eth0 "$T/grpc.pcap" -B 65536 tcp port $PORT

# One channel: unary, server streaming, an error status (NOT_FOUND), a gzip-compressed call.
ns_exec cli $PY "$HERE/echo.py" call $S4:$PORT
ns_wait_closed cli
ns_capture_stop "$T/grpc.pcap"

cp "$T/grpc.pcap" "$HERE/grpc.pcap"
mkdir -p "$FIX"
python3 "$ROOT/tests/data/redis/segments.py" "$HERE/grpc.pcap" tcp $PORT "$FIX/grpc"
{ dpkg-query -W python3-grpcio python3-protobuf; tshark --version | head -1; } >"$HERE/recorded-with.txt"
