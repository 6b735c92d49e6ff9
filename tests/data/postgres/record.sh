#!/usr/bin/env bash
# Records real PostgreSQL 15 conversations (psql and psycopg 3) in throwaway network
# namespaces, one pcap per conversation, then extracts each conversation's TCP payload into
# proto-parsers/src/postgres/testdata/<name>.bin (see extract.py).
#
# Usage: sudo bash tests/data/postgres/record.sh        (needs tests/peers/packages/postgres.txt)
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
FIX="$ROOT/proto-parsers/src/postgres/testdata"
# shellcheck source=../../netns/lib.sh
source "$ROOT/tests/netns/lib.sh"
netns_init
T=$(ns_tmp)
export LC_ALL=C
PGBIN=/usr/lib/postgresql/15/bin
PY=/usr/bin/python3

ns_create cli srv
ns_veth cli eth0 srv eth0
ns_addr cli eth0 10.99.0.1/24
ns_addr srv eth0 10.99.0.2/24
chmod 755 "$T"
install -d -o postgres -m 700 "$T/sock"

# Two clusters: "plain" (ssl off, port 5432: SSLRequest is answered 'N') and "tls"
# (ssl on, port 5433: answered 'S').
for c in plain tls; do
    install -d -o postgres -m 700 "$T/$c"
    echo secret >"$T/pw"
    chmod 644 "$T/pw"
    runuser -u postgres -- "$PGBIN/initdb" -D "$T/$c" -U postgres --auth-local=trust \
        --auth-host=scram-sha-256 --pwfile="$T/pw" >/dev/null
    echo "host all all 10.99.0.0/24 scram-sha-256" >>"$T/$c/pg_hba.conf"
done
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=db.shop \
    -keyout "$T/tls/server.key" -out "$T/tls/server.crt" 2>/dev/null
chown postgres "$T/tls/server.key" "$T/tls/server.crt"
chmod 600 "$T/tls/server.key"
ns_spawn srv runuser -u postgres -- "$PGBIN/postgres" -D "$T/plain" -k "$T/sock" \
    -c listen_addresses=10.99.0.2 -c port=5432 -c ssl=off
ns_spawn srv runuser -u postgres -- "$PGBIN/postgres" -D "$T/tls" -k "$T/sock" \
    -c listen_addresses=10.99.0.2 -c port=5433 -c ssl=on
ns_wait_tcp srv 10.99.0.2 5432 || { cat "$T"/srv.*.log; exit 1; }
ns_wait_tcp srv 10.99.0.2 5433

ns_exec srv runuser -u postgres -- psql -q -h "$T/sock" -p 5432 -U postgres <<'SQL'
CREATE ROLE shop LOGIN PASSWORD 'secret';
CREATE DATABASE shop OWNER shop;
\c shop
SET ROLE shop;
CREATE TABLE orders (id int PRIMARY KEY, item text, qty int);
CREATE TABLE order_items (order_id int, sku text);
CREATE TABLE customers (id int, name text);
INSERT INTO orders VALUES (1, 'mug', 2), (2, 'cup', 1);
INSERT INTO customers VALUES (1, 'ada');
SQL
ns_exec srv runuser -u postgres -- psql -q -h "$T/sock" -p 5433 -U postgres \
    -c "CREATE ROLE shop LOGIN PASSWORD 'secret'" -c 'CREATE DATABASE shop OWNER shop'
ns_settle cli srv

# rec NAME CMD...: capture one conversation run in cli.
rec() {
    local name=$1
    shift
    ns_capture srv eth0 "$HERE/$name.pcap" tcp
    ns_exec cli "$@" || true
    ns_wait_closed cli
    ns_capture_stop "$HERE/$name.pcap"
}

cat >"$T/session.sql" <<'SQL'
SELECT id, item FROM public.orders WHERE id = 1;
SELECT 1 \; SELECT count(*) FROM orders o JOIN order_items i ON i.order_id = o.id;
WITH recent AS (SELECT * FROM orders WHERE id > 0) SELECT r.id FROM recent r JOIN customers c ON c.id = r.id;
INSERT INTO order_items (order_id, sku) SELECT id, 'sku-' || id FROM orders;
UPDATE orders SET qty = qty + 1 FROM customers WHERE customers.id = orders.id;
DELETE FROM order_items USING orders WHERE orders.id = order_items.order_id AND orders.qty > 100;
SELECT * FROM no_such_table;
SELECT $tag$ it's; DROP TABLE orders; $tag$ AS s, "Item" FROM (SELECT item AS "Item" FROM orders) q;
\copy customers (id, name) from stdin
2	bob
3	eve
\.
COPY orders TO STDOUT;
SQL
rec pg-psql env PGPASSWORD=secret psql -X -q \
    "host=10.99.0.2 port=5432 user=shop dbname=shop sslmode=prefer gssencmode=disable application_name=palisade-test" \
    -f "$T/session.sql"
rec pg-badpass env PGPASSWORD=wrong psql -X -q \
    "host=10.99.0.2 port=5432 user=shop dbname=shop sslmode=disable gssencmode=disable" -c 'SELECT 1'
rec pg-tls env PGPASSWORD=secret psql -X -q \
    "host=10.99.0.2 port=5433 user=shop dbname=shop sslmode=require gssencmode=disable" -c 'SELECT 1'

cat >"$T/ext.py" <<'PY'
import threading, time
import psycopg
dsn = "host=10.99.0.2 port=5432 user=shop password=secret dbname=shop sslmode=disable gssencmode=disable application_name=psycopg-test"
with psycopg.connect(dsn, autocommit=True) as conn:
    for i in (1, 2):
        # prepare=True: a named statement (Parse "_pg3_0") executed twice by Bind/Execute.
        conn.execute("SELECT item, qty FROM orders WHERE id = %s", (i,), prepare=True).fetchall()
    # Unnamed statement (Parse "" + Bind + Execute + Sync).
    conn.execute("UPDATE orders SET qty = %s WHERE id = %s", (5, 1))
    try:
        conn.execute("SELECT * FROM missing_table WHERE id = %s", (1,))
    except psycopg.Error:
        pass
    # CancelRequest on its own connection while pg_sleep runs.
    t = threading.Timer(0.5, conn.cancel)
    t.start()
    try:
        conn.execute("SELECT pg_sleep(5)")
    except psycopg.Error:
        pass
    t.join()
    conn.execute("SELECT count(*) FROM customers", prepare=True).fetchone()
PY
rec pg-psycopg "$PY" "$T/ext.py"

{
    date -u +"recorded: %Y-%m-%dT%H:%M:%SZ on $(uname -sr)"
    "$PGBIN/postgres" --version
    psql --version
    "$PY" -c 'import psycopg; print("psycopg", psycopg.__version__, "libpq", psycopg.pq.version())'
    tcpdump --version 2>&1 | head -1
} >"$HERE/recorded-with.txt"

mkdir -p "$FIX"
for f in "$HERE"/*.pcap; do
    "$PY" "$HERE/../sql_extract.py" "$f" "$FIX"
done
