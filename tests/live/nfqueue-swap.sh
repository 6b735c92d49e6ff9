#!/usr/bin/env bash
# Policy swaps under live traffic: palisadectl policy apply, a rejected policy, the file
# watch (which does not undo an applied policy) and SIGHUP. A client loops allowed requests through every swap and none fails; a
# kept-alive connection's next request is judged by the new version.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
live_topology_nfqueue
T=$(ns_tmp)

mkdir -p "$T/www/api/orders" "$T/www/api/stock"
echo "order 1" >"$T/www/api/orders/1"
echo "stock 1" >"$T/www/api/stock/1"
chmod 755 "$T"
chmod -R a+rX "$T/www"
cat >"$T/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $T/nginx.pid;
error_log $T/nginx-error.log;
events { worker_connections 256; }
http {
    access_log $T/access.log;
    keepalive_timeout 60s;
    server { listen $SRV_IP:80; root $T/www; }
}
CONF
ns_spawn srv nginx -c "$T/nginx.conf"
ns_wait_tcp srv "$SRV_IP" 80 || fail "nginx did not start"

live_write_inventory "$T/inventory.yaml"
policy() { # policy NAME PATHS...
    local name=$1
    shift
    local paths
    paths=$(printf '"%s", ' "$@")
    cat <<YAML
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: $name}
spec:
  mode: protect
  defaultAction: deny
  groups:
    client: {selector: {app: client}}
    server: {selector: {app: server}}
  rules:
    - id: reads
      from: [client]
      to: [server]
      ports: [80]
      app: http
      http: [{methods: [GET], paths: [${paths%, }]}]
      action: allow
YAML
}
mkdir -p "$T/etc"
policy v1 "/api/orders/*" >"$T/etc/policy.yaml"
policy v2 "/api/orders/*" "/api/stock/*" >"$T/v2.yaml"
live_start --nfqueue 0 --policy "$T/etc/policy.yaml" --inventory "$T/inventory.yaml" --log-all

get() { ns_exec cli curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$SRV_IP$1"; }
expect_eq "$(get /api/stock/1)" 000 "stock refused under v1"

# A kept-alive connection opened under v1 (python's http.client keeps it open).
cat >"$T/keepalive.py" <<'PY'
import http.client, sys, time
c = http.client.HTTPConnection(sys.argv[1], 80, timeout=5)
def get(p):
    c.request("GET", p); r = c.getresponse(); r.read(); return r.status
print("first", get("/api/orders/1"), flush=True)
# Wait for the test to swap the policy, then ask for what only v2 allows.
while not __import__("os").path.exists(sys.argv[2]):
    time.sleep(0.05)
print("second", get("/api/stock/1"), flush=True)
PY
ns_spawn cli /usr/bin/python3 "$T/keepalive.py" "$SRV_IP" "$T/swapped"
KA_LOG=$NS_LAST_LOG
KA_PID=$NS_LAST_PID
ns_wait_log "$KA_LOG" "first 200" 5 || fail "kept-alive client's first request"

# A client loops allowed requests on new connections through all the swaps below.
cat >"$T/loop.sh" <<LOOP
for i in \$(seq 1 60); do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 3 "http://$SRV_IP/api/orders/1"
    sleep 0.05
done
LOOP
ns_spawn cli bash "$T/loop.sh"
LOOP_LOG=$NS_LAST_LOG
LOOP_PID=$NS_LAST_PID
sleep 0.5

# 1. palisadectl policy apply: version 2.
out=$($CTL policy apply "$T/v2.yaml") || fail "policy apply: $out"
expect_eq "$(echo "$out" | jq -r .version)" 2 "policy apply loaded version 2"
touch "$T/swapped"
wait "$KA_PID"
grep -q "second 200" "$KA_LOG" || fail "kept-alive connection after the swap: $(cat "$KA_LOG")"
ok "the kept-alive connection's next request was judged by version 2"
expect_eq "$(get /api/stock/1)" 200 "stock allowed under v2"

# 2. A policy with an error is rejected; version 2 stays in force.
printf 'apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nspec: {mode: protekt}\n' >"$T/bad.yaml"
out=$($CTL policy apply "$T/bad.yaml" 2>&1)
expect_eq "$?" 2 "palisadectl reports the rejection as bad input"
echo "$out" | grep -q "bad.yaml" || fail "the rejection does not name the file: $out"
expect_eq "$($CTL status | jq -r .policy.version)" 2 "version 2 still in force"
expect_eq "$(get /api/stock/1)" 200 "traffic still judged by version 2"

# 3. An applied policy stays applied: the file watch sees the startup file replaced (by
# rename, as editors and ConfigMaps do) and records the reload as skipped.
policy v3 "/api/orders/*" >"$T/etc/.policy.yaml.new"
mv "$T/etc/.policy.yaml.new" "$T/etc/policy.yaml"
for i in $(seq 1 50); do
    [ "$($CTL status | jq -r '.policy_loads[-1].skipped')" = true ] && break
    sleep 0.1
done
expect_eq "$($CTL status | jq -r '.policy_loads[-1].trigger')" file-watch "the file watch saw the change"
expect_eq "$($CTL status | jq -r .policy.version)" 2 "the applied version 2 stays"
expect_eq "$($CTL status | jq -r .policy.origin)" control-socket "status says where version 2 came from"
expect_eq "$(get /api/stock/1)" 200 "stock still allowed under the applied version 2"
# Applying the startup file follows it again; the file watch then reloads it.
out=$($CTL policy apply "$T/etc/policy.yaml") || fail "policy apply of the startup file: $out"
expect_eq "$($CTL status | jq -r .policy.version)" 3 "the startup file applied as version 3"
expect_eq "$($CTL status | jq -r .policy.follows_file)" true "the policy follows its file again"
expect_eq "$($CTL status | jq -r .policy.name)" v3 "version 3 is the file's text"
expect_eq "$(get /api/stock/1)" 000 "stock refused again under v3"

# 4. SIGHUP reloads the policy file.
kill -HUP "$PALISADE_PID"
for i in $(seq 1 50); do
    [ "$($CTL status | jq -r .policy.version)" = 4 ] && break
    sleep 0.1
done
expect_eq "$($CTL status | jq -r '.policy_loads[-1].trigger')" sighup "SIGHUP reloaded (version 4)"

wait "$LOOP_PID"
expect_eq "$(grep -c '^200$' "$LOOP_LOG")" 60 "all 60 looped allowed requests succeeded through 3 swaps and a skipped reload"

sleep 0.3
expect_eq "$(events_where '.event_type=="policy" and .policy.status=="rejected"')" 1 "a policy event for the rejection"
expect_eq "$(events_where '.event_type=="policy" and .policy.status=="loaded"')" 4 "policy events for 4 loads"
expect_eq "$(events_where '.event_type=="policy" and .policy.status=="skipped"')" 1 "a policy event for the skipped reload"
n=$(events_where '.event_type=="http" and .http.url=="/api/stock/1" and .policy_verdict.policy_version==2 and .policy_verdict.action=="allow"')
expect_eq "$n" 4 "l7 events for stock under version 2"
# Every event's version was in force when written: none claims a version before its load.
m=$(metrics)
echo "$m" | grep -qE '^palisade_policy_version 4$' || fail "metrics: policy version"
echo "$m" | grep -qE '^palisade_policy_rejected_total 1$' || fail "metrics: rejected"
ok "metrics show version 4 and one rejection"

live_stop
echo "PASS nfqueue-swap"
