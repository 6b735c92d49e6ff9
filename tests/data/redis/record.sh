#!/usr/bin/env bash
# Records real redis-cli <-> redis-server conversations for the Redis parser's tests and
# extracts each TCP connection's payload into proto-parsers/src/redis/testdata/.
# Usage: sudo bash tests/data/redis/record.sh      (see README.md beside this file)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
FIX="$ROOT/proto-parsers/src/redis/testdata"
source "$ROOT/tests/netns/lib.sh"
netns_init
T=$(ns_tmp)
export LC_ALL=C
C4=10.99.7.1 S4=10.99.7.2 PASS=s3cret-pass

ns_create cli srv
ns_veth cli eth0 srv eth0
ns_addr cli eth0 $C4/24
ns_addr srv eth0 $S4/24
ns_spawn srv redis-server --port 6379 --bind $S4 --save '' --appendonly no --daemonize no \
    --protected-mode no --dir "$T" --requirepass "$PASS" --enable-debug-command yes
ns_wait_tcp srv $S4 6379
ns_settle cli srv

rc() { ns_exec cli redis-cli -h $S4 "$@"; }
ns_capture cli eth0 "$T/redis.pcap" -B 65536 tcp port 6379

# 0: an interactive session fed on stdin (redis-cli reads one command per line and waits
# for each reply; it fetches COMMAND DOCS first only on a tty, so not here).
printf '%s\n' "AUTH $PASS" 'SET greeting hello' 'GET greeting' 'INCR greeting' \
    'DEL nothing' 'MGET greeting nothing' 'EXPIRE greeting 100' 'HSET user:1 name ann age 7' \
    'HGET user:1 name' 'LPUSH q a b c' 'LRANGE q 0 -1' 'CONFIG GET maxmemory' 'FLUSHALL' \
    'PING' | rc
ns_wait_closed cli
# 1: mass insert with --pipe: RESP multi-bulk and inline commands, one 200 KB value.
python3 - "$T/mass.txt" "$PASS" <<'PY'
import sys
out = open(sys.argv[1], "wb")
def cmd(*args):
    out.write(b"*%d\r\n" % len(args))
    for a in args:
        out.write(b"$%d\r\n%s\r\n" % (len(a), a))
cmd(b"AUTH", sys.argv[2].encode())
for i in range(40):
    cmd(b"SET", b"key:%d" % i, b"value-%d" % i)
cmd(b"SET", b"big", b"x" * 200_000)
out.write(b"GET key:1\r\n")          # inline commands, as typed over telnet
out.write(b"SADD tags red green blue\r\n")
for i in range(20):
    cmd(b"ZADD", b"board", b"%d" % i, b"p%d" % i)
cmd(b"STRLEN", b"big")
PY
rc --pipe <"$T/mass.txt"
ns_wait_closed cli
# 2: RESP3 (AUTH, HELLO 3; on stdin redis-cli -3 fetches COMMAND DOCS, a 170 KB nested map)
# and the RESP3 reply types the server produces, a client-tracking push among them.
printf '%s\n' 'HSET h f1 v1 f2 v2' 'HGETALL h' 'SADD s m1 m2' 'SMEMBERS s' 'ZADD z 1.5 a' \
    'ZSCORE z a' 'CLIENT TRACKING ON' 'GET tracked' 'SET tracked 1' 'GET missing' \
    'DEBUG PROTOCOL verbatim' 'DEBUG PROTOCOL true' 'DEBUG PROTOCOL false' \
    'DEBUG PROTOCOL null' 'DEBUG PROTOCOL double' 'DEBUG PROTOCOL map' 'DEBUG PROTOCOL set' \
    'DEBUG PROTOCOL push' 'INCR h' 'CONFIG GET port' |
    rc -3 --user default --pass "$PASS" --no-auth-warning
ns_wait_closed cli
# redis-cli 7.0 cannot print big numbers or attributes (it drops the connection after the
# reply): one connection each, with the command as arguments (no COMMAND DOCS then).
for t in bignum attrib; do
    rc -3 --user default --pass "$PASS" --no-auth-warning DEBUG PROTOCOL $t || true
    ns_wait_closed cli
done
# 5: a wrong password, then commands refused for lack of authentication.
printf '%s\n' 'AUTH wrong' 'GET greeting' | rc || true
ns_wait_closed cli
ns_capture_stop "$T/redis.pcap"

cp "$T/redis.pcap" "$HERE/redis.pcap"
mkdir -p "$FIX"
python3 "$HERE/segments.py" "$HERE/redis.pcap" tcp 6379 "$FIX/redis"
{ redis-server --version; redis-cli --version; tshark --version | head -1; } >"$HERE/recorded-with.txt"
