#!/usr/bin/env bash
# palisade run --nfqueue between curl and nginx: allowed requests are answered, a denied
# DELETE is reset before nginx sees it, a denied new flow is refused at its SYN, and the
# events, metrics and palisadectl show each decision.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
live_topology_nfqueue
T=$(ns_tmp)

mkdir -p "$T/www/api/orders"
echo "order 1" >"$T/www/api/orders/1"
chmod 755 "$T"
chmod -R a+rX "$T/www"
cat >"$T/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $T/nginx.pid;
error_log $T/nginx-error.log;
events { worker_connections 64; }
http {
    access_log $T/access.log;
    client_body_temp_path $T;
    server {
        listen $SRV_IP:80;
        listen [fd00:99:2::2]:80;
        listen $SRV_IP:8081;
        root $T/www;
        # DELETE is answered (204) so a request that got through would show in the log.
        location /api/ { if (\$request_method = DELETE) { return 204; } }
    }
}
CONF
ns_spawn srv nginx -c "$T/nginx.conf"
ns_wait_tcp srv "$SRV_IP" 80 || fail "nginx did not start"

live_write_inventory "$T/inventory.yaml"
cat >"$T/policy.yaml" <<'YAML'
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: live-http}
spec:
  mode: protect
  defaultAction: deny
  groups:
    client: {selector: {app: client}}
    server: {selector: {app: server}}
  rules:
    - id: read-orders
      from: [client]
      to: [server]
      ports: [80]
      app: http
      http: [{methods: [GET, HEAD], paths: ["/api/orders/*"]}]
      action: allow
    - id: no-delete
      from: [client]
      to: [server]
      app: http
      http: [{methods: [DELETE]}]
      action: deny
      severity: high
YAML
"$PALISADE" policy check "$T/policy.yaml" --inventory "$T/inventory.yaml" >/dev/null ||
    fail "policy check"

# --queue-bypass: with no daemon bound to the queue, traffic flows (even a DELETE).
expect_eq "$(ns_exec cli curl -s -o /dev/null -w '%{http_code}' --max-time 5 -X DELETE "http://$SRV_IP/api/orders/1")" \
    204 "traffic flows past the queue while no daemon is bound"
: >"$T/access.log"

live_start --nfqueue 0 --policy "$T/policy.yaml" --inventory "$T/inventory.yaml" --log-all

# 1. An allowed GET gets its answer (IPv4 and IPv6).
body=$(ns_exec cli curl -sS --max-time 5 "http://$SRV_IP/api/orders/1") || fail "allowed GET failed"
expect_eq "$body" "order 1" "allowed GET answered"
body=$(ns_exec cli curl -sS --max-time 5 "http://[fd00:99:2::2]/api/orders/1") ||
    fail "allowed GET over IPv6 failed"
expect_eq "$body" "order 1" "allowed GET over IPv6 answered"

# 2. A denied DELETE on its own connection is reset promptly (curl exit 56: connection
#    reset by peer), and nginx never logs it.
start=$(date +%s%N)
ns_exec cli curl -sS --max-time 5 -o /dev/null -X DELETE "http://$SRV_IP/api/orders/1" \
    2>"$T/curl-delete.err"
rc=$?
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$rc" -eq 56 ] || fail "denied DELETE: curl exit $rc, expected 56 (reset): $(cat "$T/curl-delete.err")"
grep -qi "reset" "$T/curl-delete.err" || fail "curl did not report a reset: $(cat "$T/curl-delete.err")"
[ "$elapsed_ms" -lt 3000 ] || fail "denied DELETE took ${elapsed_ms} ms (a hang, not a reset)"
ok "denied DELETE reset in ${elapsed_ms} ms"
sleep 0.3
n=$(events_where '.event_type=="alert" and .policy_verdict.rule=="no-delete" and .http.http_method=="DELETE" and .policy_verdict.enforced==true and .policy_verdict.policy_version==1')
expect_eq "$n" 1 "one enforced alert for the DELETE"

# 3. The same on a kept-alive connection, after an allowed GET: the GET is answered and the
#    DELETE is judged at the packet that completes its head. curl retries a request once on
#    a fresh connection when a reused one dies before answering, so it is refused twice.
ns_exec cli curl -sS --max-time 5 -o /dev/null "http://$SRV_IP/api/orders/1" \
    --next --max-time 5 -o /dev/null -X DELETE "http://$SRV_IP/api/orders/1" 2>"$T/curl-ka.err"
expect_eq "$?" 56 "DELETE after a GET on one connection reset"
sleep 0.3
n=$(events_where '.event_type=="alert" and .policy_verdict.rule=="no-delete" and .http.http_method=="DELETE"')
expect_eq "$n" 3 "alerts for the kept-alive DELETE and curl's retry"
grep -q '"DELETE ' "$T/access.log" && fail "nginx saw a denied DELETE"
ok "nginx never saw a DELETE"
expect_eq "$(grep -c '"GET /api/orders/1' "$T/access.log")" 3 "nginx answered the 3 allowed GETs"

# palisadectl events --follow streams what happens from now on.
$CTL events --follow >"$T/follow.json" 2>&1 &
FOLLOW_PID=$!
NS_PIDS+=("$FOLLOW_PID")
sleep 0.3

# 4. A path no rule allows falls to protect mode's default deny: reset too.
ns_exec cli curl -sS --max-time 5 -o /dev/null "http://$SRV_IP/admin" 2>/dev/null
expect_eq "$?" 56 "GET /admin refused by the default action"

# 5. A port no rule admits: the SYN is refused with a reset (curl 7: connection refused).
ns_exec cli curl -sS --max-time 5 -o /dev/null "http://$SRV_IP:8081/api/orders/1" 2>/dev/null
expect_eq "$?" 7 "new flow to port 8081 refused at its SYN"

sleep 0.5
# 6. Events: l7 events for the allowed requests, an alert for the flow refused at its SYN.
n=$(events_where '.event_type=="http" and .http.http_method=="GET" and .http.status==200 and .policy_verdict.rule=="read-orders"')
[ "$n" -ge 3 ] || fail "l7 events for the allowed GETs: $n"
ok "l7 events for allowed GETs ($n)"
n=$(events_where '.event_type=="alert" and .dest_port==8081 and .policy_verdict.rule=="default"')
expect_eq "$n" 1 "alert for the refused flow to 8081"

# 7. Metrics and palisadectl.
m=$(metrics) || fail "metrics endpoint"
echo "$m" | grep -qE '^palisade_transaction_verdicts_total\{action="deny",rule="no-delete"\} 3$' ||
    fail "metrics: no-delete count"
echo "$m" | grep -qE '^palisade_packets_total [1-9]' || fail "metrics: packets"
echo "$m" | grep -qE '^palisade_resets_sent_total [1-9]' || fail "metrics: resets"
echo "$m" | grep -qE '^palisade_policy_version 1$' || fail "metrics: policy version"
ok "metrics show the decisions"
st=$($CTL status) || fail "palisadectl status"
expect_eq "$(echo "$st" | jq -r .policy.version)" 1 "status: policy version"
expect_eq "$(echo "$st" | jq -r .enforcing)" true "status: enforcing"
[ "$(echo "$st" | jq -r .packets)" -gt 10 ] || fail "status: packets"
$CTL policy show | grep -q "id: no-delete" || fail "policy show"
ok "palisadectl status and policy show"
[ "$(stat -c %a "$SOCK")" = 600 ] || fail "control socket mode is not 0600"
fl=$($CTL flows --max 50) || fail "palisadectl flows"
n=$(echo "$fl" | jq '[.flows[] | select(.dst[1] == 80 and .src_workload == "client-0" and .dst_workload == "server-0" and .app_proto == "http")] | length')
[ "$n" -ge 1 ] || fail "palisadectl flows lists no HTTP flow: $fl"
ok "palisadectl flows lists the HTTP flows ($n)"
kill "$FOLLOW_PID" 2>/dev/null
n=$(grep -c '"url":"/admin"' "$T/follow.json")
[ "$n" -ge 1 ] || fail "events --follow did not stream the /admin alert: $(head -c 500 "$T/follow.json")"
ok "palisadectl events --follow streamed the alerts as they happened"

live_stop
expect_eq "$(ns_exec cli curl -s --max-time 5 "http://$SRV_IP/api/orders/1")" "order 1" \
    "traffic flows again once the daemon is gone"
# The flows ended at shutdown have their flow events.
n=$(events_where '.event_type=="flow"')
[ "$n" -ge 5 ] || fail "flow events at shutdown: $n"
ok "flow events written at shutdown ($n)"
echo "PASS nfqueue-http"
