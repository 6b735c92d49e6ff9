#!/usr/bin/env bash
# Re-records dataplane/demo/shop.pcap: a small shop (frontend, orders, cache, db, dns and
# an outside client) of real programs in network namespaces on one Linux bridge, seen
# from a SPAN port that mirrors every frame entering the switch. See README.md here.
#
# Usage: sudo bash dataplane/demo/record.sh [OUT.pcap]   (default: shop.pcap beside it)
# Needs: bash tests/peers/install.sh (tcpdump, tshark, curl, redis, dnsmasq, postgresql).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/shop.pcap}
# shellcheck source=../../tests/netns/lib.sh
source "$HERE/../../tests/netns/lib.sh"
netns_init
T=$(ns_tmp)
chmod 711 "$T" # postgres runs as its own user and needs to reach its data dir
export LC_ALL=C
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
PW=orders-demo-pw

# --- the network: every host on one bridge, a SPAN port to a silent monitor ------------
ns_switch sw
ns_plug sw frontend eth0 10.0.1.5/16 fd00::1:5/64
ns_plug sw orders eth0 10.0.2.7/16 fd00::2:7/64
ns_plug sw cache eth0 10.0.3.9/16 fd00::3:9/64
ns_plug sw db eth0 10.0.4.11/16 fd00::4:11/64
ns_plug sw dns eth0 10.0.5.53/16 fd00::5:53/64
ns_plug sw outside eth0 198.51.100.23/24
# The outside client is on the same wire but in another subnet: on-link routes both ways.
ns_route outside 10.0.0.0/16 dev eth0
for h in frontend orders cache db dns; do ns_route "$h" 198.51.100.0/24 dev eth0; done

ns_create tap
ns_exec tap sysctl -qw net.ipv6.conf.default.disable_ipv6=1 >/dev/null
ns_veth sw span0 tap mon0
ns_span sw p-frontend p-orders p-cache p-db p-dns p-outside -- span0

# --- servers -------------------------------------------------------------------------
ns_spawn orders python3 "$HERE/orders_server.py" 8080
ns_wait_tcp orders 10.0.2.7 8080

ns_spawn cache redis-server --port 6379 --bind 10.0.3.9 fd00::3:9 --save '' \
    --appendonly no --daemonize no --protected-mode no --dir "$T"
ns_wait_tcp cache 10.0.3.9 6379

ns_spawn dns dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --bind-interfaces --listen-address=10.0.5.53 --listen-address=fd00::5:53 --pid-file= \
    --user=root --local=/cluster.local/ --log-facility=- \
    --host-record=orders.shop.svc.cluster.local,10.0.2.7,fd00::2:7 \
    --host-record=cache.shop.svc.cluster.local,10.0.3.9,fd00::3:9 \
    --host-record=postgres.shop.svc.cluster.local,10.0.4.11,fd00::4:11
ns_wait_udp dns 53

# PostgreSQL: only orders may log in (pg_hba), with SCRAM; everything set up over the
# Unix socket so none of it is on the wire.
PG=$T/pg
install -d -o postgres -g postgres -m 700 "$PG"
runuser -u postgres -- "$PGBIN/initdb" -D "$PG" -U postgres -A trust -E UTF8 --locale=C \
    --no-sync >/dev/null
cat >"$PG/pg_hba.conf" <<EOF
local all           postgres                  trust
local shop          orders_svc                trust
host  shop          orders_svc 10.0.2.7/32    scram-sha-256
host  shop          orders_svc fd00::2:7/128  scram-sha-256
EOF
ns_spawn db runuser -u postgres -- "$PGBIN/postgres" -D "$PG" -k "$PG" -p 5432 \
    -c "listen_addresses=10.0.4.11,fd00::4:11" -c ssl=off -c fsync=off \
    -c log_connections=on -c log_statement=all
ns_wait_log "$NS_LAST_LOG" 'ready to accept connections' 30
psql_local() { runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -h "$PG" "$@"; }
psql_local -d postgres -c "CREATE ROLE orders_svc LOGIN PASSWORD '$PW'" \
    -c "CREATE DATABASE shop OWNER orders_svc"
psql_local -d shop -U orders_svc \
    -c "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL, qty int NOT NULL, status text NOT NULL)" \
    -c "CREATE TABLE order_items (order_id int REFERENCES orders(id), sku text, qty int)" \
    -c "INSERT INTO orders (item, qty, status) VALUES ('cup', 1, 'shipped'), ('bowl', 3, 'packed'), ('plate', 2, 'new'), ('spoon', 6, 'new'), ('fork', 6, 'new'), ('knife', 6, 'new'), ('mug', 2, 'shipped')"

ns_settle frontend orders cache db dns outside
ns_forget frontend orders cache db dns outside

# --- the recorded traffic ------------------------------------------------------------
ns_capture tap mon0 "$T/shop.pcap"
step() { printf '  %-44s ' "$1"; }

step "frontend: DNS A orders (UDP)"
ns_exec frontend dig +short +tries=1 @10.0.5.53 orders.shop.svc.cluster.local A

step "frontend: 2 GETs on one connection"
ns_exec frontend curl -sS --http1.1 -H 'Host: orders.shop' -A 'shop-frontend/2.3' \
    -o /dev/null -o /dev/null -w '%{http_code} ' \
    http://10.0.2.7:8080/api/orders/7 http://10.0.2.7:8080/api/orders/8
echo

step "frontend: POST a new order"
ns_exec frontend curl -sS --http1.1 -H 'Host: orders.shop' -A 'shop-frontend/2.3' \
    -H 'Content-Type: application/json' -d '{"item":"mug","qty":2}' \
    -w ' %{http_code}\n' http://10.0.2.7:8080/api/orders

step "frontend: GET over IPv6"
ns_exec frontend curl -sS --http1.1 -H 'Host: orders.shop' -A 'shop-frontend/2.3' \
    -o /dev/null -w '%{http_code}\n' 'http://[fd00::2:7]:8080/api/orders/7'

step "orders: redis SET, GET"
ns_exec orders redis-cli -h 10.0.3.9 SET order:7 '{"id":7,"status":"shipped"}'
step ""
ns_exec orders redis-cli -h 10.0.3.9 GET order:7

step "orders: postgres SELECT + INSERT"
PGPASSWORD=$PW ns_exec orders psql -X -q -A -t -h 10.0.4.11 -U orders_svc -d shop \
    -c "SELECT id, item, qty, status FROM orders WHERE id = 7" \
    -c "INSERT INTO order_items (order_id, sku, qty) VALUES (7, 'MUG-BLUE', 2)" | tr '\n' ' '
echo

step "orders: redis FLUSHALL"
ns_exec orders redis-cli -h 10.0.3.9 FLUSHALL

step "frontend: straight to postgres (refused)"
PGPASSWORD=$PW ns_exec frontend psql -X -h 10.0.4.11 -U orders_svc -d shop \
    -c "SELECT * FROM orders" 2>&1 | head -1 || true

step "outside: GET /admin on orders"
ns_exec outside curl -sS --http1.1 -A 'Mozilla/5.0 (scanner)' -o /dev/null \
    -w '%{http_code}\n' http://10.0.2.7:8080/admin

for h in frontend orders cache db dns outside; do ns_wait_closed "$h"; done
ns_capture_stop "$T/shop.pcap"
install -m 644 "$T/shop.pcap" "$OUT"
tshark -r "$OUT" -q -z conv,tcp -z conv,udp >"$OUT.tshark-conv.txt" 2>/dev/null
echo "wrote $OUT ($(stat -c %s "$OUT") bytes); ports changed: update the flow table in README.md"
