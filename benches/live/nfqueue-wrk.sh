#!/usr/bin/env bash
# Requests/s and latency of HTTP/1.1 through `palisade run --nfqueue` against the direct
# path, in the same run, on the same veth topology (tests/live/lib.sh): client namespace ->
# router namespace (forwarding) -> server namespace with nginx. Not part of CI.
#
#   bash benches/live/nfqueue-wrk.sh [SECONDS] [CONNECTIONS]
#
# Three runs, each after a warm-up: direct (router forwards, no queue rule), through
# palisade with an allow-all policy, and through palisade with an L7 policy (every request
# matched against method/path rules, --log-all off). Prints a Markdown table for
# benches/RESULTS.md. Needs wrk (apt-get install wrk) and a release build of palisade.
set -uo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
CONNS=${2:-16}
export PALISADE=${PALISADE:-$PWD/target/release/palisade}
export PALISADECTL=${PALISADECTL:-$PWD/target/release/palisadectl}
[ -x "$PALISADE" ] || { echo "build first: cargo build --release -p dataplane -p control" >&2; exit 2; }
command -v wrk >/dev/null || { echo "needs wrk: apt-get install wrk" >&2; exit 2; }
source tests/live/lib.sh
live_topology_nfqueue
T=$(ns_tmp)
chmod 755 "$T"
mkdir -p "$T/www/api/orders"
head -c 512 /dev/urandom | base64 >"$T/www/api/orders/1"
chmod -R a+rX "$T/www"
cat >"$T/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $T/nginx.pid;
error_log $T/nginx-error.log;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    server { listen $SRV_IP:80; root $T/www; }
}
CONF
ns_spawn srv nginx -c "$T/nginx.conf"
ns_wait_tcp srv "$SRV_IP" 80 || fail "nginx"
live_write_inventory "$T/inventory.yaml"
cat >"$T/allow.yaml" <<'YAML'
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: allow-all}
spec:
  mode: protect
  defaultAction: deny
  groups: {client: {selector: {app: client}}, server: {selector: {app: server}}}
  rules:
    - {id: all, from: [client], to: [server], action: allow}
YAML
cat >"$T/l7.yaml" <<'YAML'
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: l7}
spec:
  mode: protect
  defaultAction: deny
  groups: {client: {selector: {app: client}}, server: {selector: {app: server}}}
  rules:
    - id: reads
      from: [client]
      to: [server]
      ports: [80]
      app: http
      http:
        - {methods: [GET, HEAD], paths: ["/api/orders/*", "/api/stock/*", "regex:^/v[0-9]+/items$"]}
        - {methods: [POST], paths: ["/api/orders"]}
      action: allow
    - id: no-admin
      from: ["*"]
      to: [server]
      app: http
      http: [{paths: ["/admin/*"]}]
      action: deny
YAML

# bench LABEL: one wrk run, prints "LABEL|req/s|p50|p90|p99|errors".
bench() {
    local out
    ns_exec cli wrk -t1 -c"$CONNS" -d2s "http://$SRV_IP/api/orders/1" >/dev/null 2>&1
    out=$(ns_exec cli wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "http://$SRV_IP/api/orders/1")
    local rps p50 p90 p99 err
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p50=$(echo "$out" | awk '$1=="50%" {print $2}')
    p90=$(echo "$out" | awk '$1=="90%" {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    err=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
    echo "| $1 | $rps | $p50 | $p90 | $p99 | ${err:-none} |"
}

echo "| path | requests/s | p50 | p90 | p99 | errors |"
echo "|---|---|---|---|---|---|"
# Direct: take the queue rule out.
ip netns exec "$(ns_name rtr)" bash deploy/nfqueue-rules.sh remove --queues 0
bench "direct (kernel forwarding, no queue)"
ip netns exec "$(ns_name rtr)" bash deploy/nfqueue-rules.sh add --queues 0
live_start --nfqueue 0 --policy "$T/allow.yaml" --inventory "$T/inventory.yaml"
bench "palisade nfqueue, allow-all (L4 + HTTP parsing)"
$CTL policy apply "$T/l7.yaml" >/dev/null || fail "apply"
bench "palisade nfqueue, L7 rules on every request"
st=$($CTL status)
echo
echo "palisade: $(echo "$st" | jq -c '{packets, dropped, transactions, source_counters}')"
live_stop >/dev/null
