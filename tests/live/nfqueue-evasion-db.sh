#!/usr/bin/env bash
# SQL and Redis evasion tricks from the real clients (psql, redis-cli, and python3 over an
# ordinary socket for an inline command redis-cli cannot send) through palisade run
# --nfqueue (FORWARD topology) against real PostgreSQL and redis-server, under a policy
# that denies the SQL verbs DROP/TRUNCATE and the Redis commands FLUSHALL/FLUSHDB/CONFIG.
#
# Each trick is played twice: first with no daemon bound to the queue (--queue-bypass)
# against a sacrificial table or key set, which must be gone afterwards (so the trick is
# real: the server runs the hidden command), then through palisade, where the table
# `orders` and the key `order:1` must still be there afterwards (checked on the server
# itself, not through palisade). Honest statements and commands still work. How palisade
# decided each trick (the rule, or the uninspectable cause) is printed from its events.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
START=$(date +%s)
live_topology_nfqueue
T=$(ns_tmp)
export LC_ALL=C
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

ns_spawn srv redis-server --bind "$SRV_IP" --port 6379 --protected-mode no --save "" --appendonly no --dir "$T"
ns_wait_tcp srv "$SRV_IP" 6379 || fail "redis-server did not start"

chmod 755 "$T"
install -d -o postgres -m 700 "$T/pg" "$T/pgsock"
runuser -u postgres -- "$PGBIN/initdb" -D "$T/pg" -U postgres --auth-local=trust \
    --auth-host=trust >/dev/null || fail "initdb"
echo "host all all 10.99.0.0/16 trust" >>"$T/pg/pg_hba.conf"
ns_spawn srv runuser -u postgres -- "$PGBIN/postgres" -D "$T/pg" -k "$T/pgsock" \
    -c listen_addresses="$SRV_IP" -c port=5432 -c ssl=off -c fsync=off
ns_wait_tcp srv "$SRV_IP" 5432 || fail "postgres did not start"
ns_exec srv runuser -u postgres -- psql -q -h "$T/pgsock" -U postgres <<'SQL' || fail "schema"
CREATE ROLE shop LOGIN;
CREATE DATABASE shop OWNER shop;
SQL

live_write_inventory "$T/inventory.yaml"
cat >"$T/policy.yaml" <<'YAML'
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: live-evasion-db}
spec:
  mode: protect
  defaultAction: deny
  onUninspectable: deny
  groups:
    client: {selector: {app: client}}
    server: {selector: {app: server}}
  rules:
    - {id: pg, from: [client], to: [server], ports: [5432], app: postgres, action: allow}
    - {id: cache, from: [client], to: [server], ports: [6379], app: redis, action: allow}
    - id: deny-pg-drop
      from: ["*"]
      to: [server]
      app: postgres
      sql: [{verbs: [DROP, TRUNCATE]}]
      action: deny
    - id: deny-redis-cmd
      from: ["*"]
      to: [server]
      app: redis
      redis: [{commands: [FLUSHALL, FLUSHDB, CONFIG]}]
      action: deny
YAML

# The client's view (through the router, and palisade when it runs) ...
pq() {
    ns_exec cli env PGCONNECT_TIMEOUT=5 psql -X -q -t -A \
        "host=$SRV_IP user=shop dbname=shop sslmode=disable" "$@" 2>&1
}
rcli() { ns_exec cli timeout 5 redis-cli -h "$SRV_IP" "$@" 2>&1; }
send() { ns_exec cli /usr/bin/python3 "$HERE_LIVE/tcpsend.py" "$SRV_IP" 6379 1.5 2>&1; }
# ... and the server's own (its local socket, or from inside srv: palisade never sees it).
pq_srv() {
    ns_exec srv runuser -u postgres -- psql -X -q -t -A -h "$T/pgsock" -U shop -d shop "$@"
}
rcli_srv() { ns_exec srv redis-cli -h "$SRV_IP" "$@"; }
table_exists() { [ "$(pq_srv -c "SELECT to_regclass('public.$1') IS NOT NULL")" = t ]; }

comment40k="/* $(head -c 40000 /dev/zero | tr '\0' 'c') */"
selects1000=$(printf 'SELECT 1; %.0s' $(seq 1 1000))
printf 'PING\r\n%.0s' $(seq 1 1000) >"$T/pings.txt"
printf 'FLUSHALL\r\n' >>"$T/pings.txt"

SQL_TRICKS=(long-comment 1000-selects string-literal dollar-quote)
sql_trick() {
    local table=$2
    case "$1" in
        long-comment) pq -c "$comment40k DROP TABLE $table" ;;
        1000-selects) pq -c "$selects1000 DROP TABLE $table" ;;
        string-literal) pq -c "SELECT 'it''s; DROP TABLE x' AS note; DROP TABLE $table" ;;
        dollar-quote) pq -c "SELECT \$q\$'\$q\$ AS a; DROP TABLE $table; -- '" ;;
        *) fail "unknown trick $1" ;;
    esac
}
REDIS_TRICKS=(pipeline-1000 inline-hex-escape-after-ping inline-hex-escape inline-leading-space
    inline-single-quoted lowercase)
redis_trick() {
    case "$1" in
        pipeline-1000) ns_exec cli sh -c "timeout 5 redis-cli -h $SRV_IP --pipe <$T/pings.txt" 2>&1 ;;
        # sdssplitargs decodes \xHH inside double quotes: the server runs FLUSHALL.
        inline-hex-escape-after-ping) printf 'PING\r\n"\\x46LUSHALL"\r\n' | send ;;
        # The same as the connection's first bytes (nothing before it names the protocol).
        inline-hex-escape) printf '"\\x46LUSHALL"\r\n' | send ;;
        # Redis skips blanks before an inline command's first argument, and unquotes it.
        inline-leading-space) printf ' FLUSHALL\r\n' | send ;;
        inline-single-quoted) printf "'FLUSHALL'\r\n" | send ;;
        lowercase) rcli flushall ;;
        *) fail "unknown trick $1" ;;
    esac
}

# Inline commands that open the connection with a quote or a blank ("\x46LUSHALL",
# " FLUSHALL", 'FLUSHALL') are what redis-server's own splitting accepts: detection reads
# them as Redis, and a client opening nothing recognises is uninspectable (denied).

# 1. No daemon bound: each trick runs its hidden command.
for t in "${SQL_TRICKS[@]}"; do
    tab="scratch_${t//-/_}"
    pq_srv -c "CREATE TABLE $tab (id int)" >/dev/null || fail "create $tab"
    out=$(sql_trick "$t" "$tab")
    table_exists "$tab" && fail "without palisade, SQL trick $t did not drop $tab: $out"
done
ok "without palisade, PostgreSQL runs the DROP TABLE behind all ${#SQL_TRICKS[@]} SQL tricks"
for t in "${REDIS_TRICKS[@]}"; do
    rcli_srv SET "scratch:$t" 1 >/dev/null
    out=$(redis_trick "$t")
    [ "$(rcli_srv DBSIZE)" = 0 ] || fail "without palisade, Redis trick $t did not flush: $out"
done
ok "without palisade, redis-server runs the FLUSHALL behind all ${#REDIS_TRICKS[@]} Redis tricks"

# 2. Through palisade: the table and the key survive every trick.
pq_srv -c "CREATE TABLE orders (id int PRIMARY KEY, item text); INSERT INTO orders VALUES (1, 'mug')" \
    >/dev/null || fail "create orders"
rcli_srv SET order:1 mug >/dev/null
live_start --nfqueue 0 --policy "$T/policy.yaml" --inventory "$T/inventory.yaml"
for t in "${SQL_TRICKS[@]}"; do
    mark=$(events_count)
    out=$(sql_trick "$t" orders)
    how=$(alerts_since "$mark")
    table_exists orders || fail "SQL trick $t dropped orders through palisade (client: $out; palisade: ${how:-no alert})"
    [ -n "$how" ] || fail "SQL trick $t: palisade wrote no alert (client: $out)"
    ok "$t: orders still exists; palisade: $how; psql: $(echo "$out" | grep -v '^1$' | head -n 1)"
done
for t in "${REDIS_TRICKS[@]}"; do
    mark=$(events_count)
    out=$(redis_trick "$t")
    how=$(alerts_since "$mark")
    if [ "$(rcli_srv EXISTS order:1)" != 1 ]; then
        fail "Redis trick $t flushed through palisade (client: $out; palisade: ${how:-no alert})"
    fi
    [ -n "$how" ] || fail "Redis trick $t: palisade wrote no alert (client: $out)"
    ok "$t: order:1 still exists; palisade: $how; client: $(echo "$out" | tail -n 1)"
done

# 3. Honest statements and commands still work.
expect_eq "$(pq -c 'SELECT item FROM orders WHERE id = 1')" mug "honest SELECT answered"
expect_eq "$(pq -c "$selects1000 SELECT count(*) FROM orders" | tail -n 1)" 1 \
    "1,000 SELECT 1 then an honest SELECT answered"
expect_eq "$(rcli GET order:1)" mug "honest GET answered"
printf 'PING\r\n%.0s' $(seq 1 1000) >"$T/honest.txt"
out=$(ns_exec cli sh -c "timeout 5 redis-cli -h $SRV_IP --pipe <$T/honest.txt" 2>&1) ||
    fail "1,000 pipelined PINGs: $out"
echo "$out" | grep -q "errors: 0, replies: 1000" || fail "1,000 pipelined PINGs: $out"
ok "1,000 pipelined PINGs answered"
live_stop
echo "nfqueue-evasion-db: $(($(date +%s) - START)) s"
echo "PASS nfqueue-evasion-db"
