#!/usr/bin/env bash
# palisade run --nfqueue in front of redis-server and PostgreSQL: allowed commands and
# statements work, FLUSHALL and DROP TABLE are reset before the server runs them (the data
# is still there afterwards), and the clients see an error at once.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
live_topology_nfqueue
T=$(ns_tmp)
export LC_ALL=C
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

# redis-server with a password.
ns_spawn srv redis-server --bind "$SRV_IP" --port 6379 --requirepass s3cret --save "" \
    --appendonly no --dir "$T"
ns_wait_tcp srv "$SRV_IP" 6379 || fail "redis-server did not start"

# PostgreSQL with a shop database.
chmod 755 "$T"
install -d -o postgres -m 700 "$T/pg" "$T/pgsock"
echo secret >"$T/pw"
chmod 644 "$T/pw"
runuser -u postgres -- "$PGBIN/initdb" -D "$T/pg" -U postgres --auth-local=trust \
    --auth-host=scram-sha-256 --pwfile="$T/pw" >/dev/null || fail "initdb"
echo "host all all 10.99.0.0/16 scram-sha-256" >>"$T/pg/pg_hba.conf"
ns_spawn srv runuser -u postgres -- "$PGBIN/postgres" -D "$T/pg" -k "$T/pgsock" \
    -c listen_addresses="$SRV_IP" -c port=5432 -c ssl=off
ns_wait_tcp srv "$SRV_IP" 5432 || fail "postgres did not start"
ns_exec srv runuser -u postgres -- psql -q -h "$T/pgsock" -U postgres <<'SQL' || fail "schema"
CREATE ROLE shop LOGIN PASSWORD 'secret';
CREATE DATABASE shop OWNER shop;
\c shop
SET ROLE shop;
CREATE TABLE orders (id int PRIMARY KEY, item text);
INSERT INTO orders VALUES (1, 'mug'), (2, 'cup');
SQL

live_write_inventory "$T/inventory.yaml"
cat >"$T/policy.yaml" <<'YAML'
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: live-db}
spec:
  mode: protect
  defaultAction: deny
  groups:
    client: {selector: {app: client}}
    server: {selector: {app: server}}
  rules:
    - id: cache
      from: [client]
      to: [server]
      app: redis
      action: allow
    - id: no-flush
      from: ["*"]
      to: [server]
      app: redis
      redis: [{commands: [FLUSHALL, FLUSHDB, CONFIG]}]
      action: deny
      severity: critical
      capture: true
    - id: orders-rw
      from: [client]
      to: [server]
      app: postgres
      sql: [{verbs: [SELECT, INSERT], tables: [orders]}]
      action: allow
YAML
live_start --nfqueue 0 --policy "$T/policy.yaml" --inventory "$T/inventory.yaml" --log-all \
    --capture-dir "$T/captures"

rcli() { ns_exec cli redis-cli -h "$SRV_IP" -a s3cret --no-auth-warning "$@"; }
pq() {
    ns_exec cli env PGPASSWORD=secret PGCONNECT_TIMEOUT=5 psql -X -q -t -A \
        "host=$SRV_IP user=shop dbname=shop sslmode=disable" "$@"
}

# Redis: allowed commands work.
expect_eq "$(rcli SET order:1 mug)" OK "redis SET allowed"
expect_eq "$(rcli GET order:1)" mug "redis GET allowed"
# FLUSHALL is reset: redis-cli reports the lost connection, and the key survives.
out=$(rcli FLUSHALL 2>&1)
echo "$out" | grep -qiE "reset|closed|lost|Error" || fail "redis-cli FLUSHALL did not fail: $out"
ok "FLUSHALL refused: $out"
expect_eq "$(rcli DBSIZE)" 1 "the key survived the denied FLUSHALL"
# CONFIG inside a pipeline (redis-cli --pipe writes the commands in one segment): the
# segment that completes the denied command is dropped whole, so neither the SET before
# it nor the one after it reaches the server, and the connection is reset.
printf 'SET order:2 cup\r\nCONFIG SET save ""\r\nSET order:3 plate\r\n' >"$T/pipe.txt"
ns_exec cli sh -c "redis-cli -h $SRV_IP -a s3cret --no-auth-warning --pipe <$T/pipe.txt" \
    >"$T/pipe.out" 2>&1
[ $? -ne 0 ] || fail "redis-cli --pipe with CONFIG succeeded: $(cat "$T/pipe.out")"
ok "pipelined CONFIG refused: $(tr '\n' ' ' <"$T/pipe.out")"
expect_eq "$(rcli EXISTS order:2 order:3)" 0 "nothing of the refused segment ran"
expect_eq "$(rcli CONFIG GET save 2>&1 | grep -ci reset)" 1 "CONFIG GET refused too"

# PostgreSQL: SELECT and INSERT on orders work.
expect_eq "$(pq -c 'SELECT item FROM orders WHERE id = 1')" mug "SELECT allowed"
pq -c "INSERT INTO orders VALUES (3, 'plate')" >/dev/null || fail "INSERT allowed"
ok "INSERT allowed"
# DROP TABLE is reset: psql reports the lost connection at once.
start=$(date +%s%N)
out=$(pq -c 'DROP TABLE orders' 2>&1)
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$rc" -ne 0 ] || fail "DROP TABLE succeeded"
echo "$out" | grep -qiE "closed the connection|connection to server|reset" || fail "psql: $out"
[ "$ms" -lt 3000 ] || fail "DROP TABLE took $ms ms"
ok "DROP TABLE refused in $ms ms: $(echo "$out" | head -n 1)"
# The bypass attempt: an allowed SELECT with a DROP behind it in one message.
out=$(pq -c 'SELECT 1; DROP TABLE orders' 2>&1)
[ $? -ne 0 ] || fail "SELECT 1; DROP TABLE orders went through"
ok "multi-statement bypass refused"
# The table and its rows are still there (checked over the server's own socket).
n=$(ns_exec srv runuser -u postgres -- psql -X -q -t -A -h "$T/pgsock" -U postgres -d shop \
    -c 'SELECT count(*) FROM orders')
expect_eq "$n" 3 "orders kept its 3 rows"

sleep 0.5
n=$(events_where '.event_type=="alert" and .policy_verdict.rule=="no-flush" and .redis.command=="FLUSHALL" and .policy_verdict.enforced==true')
expect_eq "$n" 1 "alert for FLUSHALL"
n=$(events_where '.event_type=="alert" and .policy_verdict.rule=="no-flush" and .redis.command=="CONFIG"')
expect_eq "$n" 2 "alerts for the two CONFIGs"
n=$(events_where '.event_type=="alert" and (.sql.verb|test("DROP")) and .policy_verdict.rule=="default"')
expect_eq "$n" 2 "alerts for the two DROP TABLEs"
n=$(events_where '.event_type=="pgsql" and .sql.verb=="SELECT" and .sql.user=="shop" and .policy_verdict.action=="allow"')
[ "$n" -ge 1 ] || fail "l7 events for SELECT"
ok "l7 events for allowed statements"
m=$(metrics)
echo "$m" | grep -qE '^palisade_transaction_verdicts_total\{action="deny",rule="no-flush"\} 3$' ||
    fail "metrics: no-flush: $(echo "$m" | grep transaction_verdicts)"
ok "metrics count the denials"

# Flow capture (`capture: true` on no-flush): each of the three reset Redis connections is
# in its own pcap, from its SYN (held before the rule matched) to the dropped command; the
# allowed connections are not captured; every alert names its file.
caps=$($CTL captures --format json) || fail "palisadectl captures"
expect_eq "$(echo "$caps" | jq '.total')" 3 "palisadectl captures lists 3 files"
n=$(events_where '.event_type=="alert" and .policy_verdict.rule=="no-flush" and (.capture_file|type)=="string"')
expect_eq "$n" 3 "every no-flush alert names its capture file"
for f in $(jq -r 'select(.event_type=="alert" and .policy_verdict.rule=="no-flush") | .capture_file' "$EVENTS"); do
    [ -s "$f" ] || fail "capture file $f missing"
    syn=$(tshark -r "$f" -Y 'tcp.flags.syn==1 && tcp.flags.ack==0' 2>/dev/null | wc -l)
    expect_eq "$syn" 1 "$(basename "$f") starts with the connection's SYN"
    # The denied command's bytes are in the file (the dropped packet is captured too).
    grep -qaE 'FLUSHALL|CONFIG' "$f" || fail "$(basename "$f") does not hold the denied command"
done
ok "captures hold the whole connection up to the denied command"

live_stop
echo "PASS nfqueue-db"
