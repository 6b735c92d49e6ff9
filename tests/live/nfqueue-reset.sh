#!/usr/bin/env bash
# A denied request fails at once with a TCP reset, in both NFQUEUE topologies:
# - forward: cli -- rtr(palisade, FORWARD queued) -- srv;
# - local server: palisade in srv with nginx, INPUT/OUTPUT queued (the server is a workload
#   on palisade's own node);
# - local client: palisade in cli with curl, INPUT/OUTPUT queued.
# On INPUT/OUTPUT palisade's own resets pass through the netfilter hooks again; they carry
# palisade's firewall mark (SO_MARK 0x5041) and the steering rules let marked packets
# pass, so the reset reaches the end on palisade's node instead of being dropped as part
# of the denied flow. In each: curl for /admin exits 56 (connection reset) in under a
# second, nginx never logs /admin, an allowed request is answered (IPv4 and IPv6).
# The local-server case runs once more with PALISADE_MARK=0x7 in the environment of both
# the steering script and palisade (an operator whose node uses 0x5041 for something else).
set -uo pipefail
source "$(dirname "$0")/lib.sh"

write_policy() {
    cat >"$1" <<'YAML'
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: live-reset}
spec:
  mode: protect
  defaultAction: deny
  groups:
    client: {selector: {app: client}}
    server: {selector: {app: server}}
  rules:
    - id: web
      from: [client]
      to: [server]
      ports: [80]
      app: http
      action: allow
    - id: no-admin
      from: [client]
      to: [server]
      app: http
      http: [{paths: ["/admin", "/admin/*"]}]
      action: deny
YAML
}

# denied_is_reset URL LABEL: curl exits 56 with a reset, in under one second.
denied_is_reset() {
    local url=$1 label=$2 t out rc total
    t=$(ns_tmp)
    out=$(ns_exec cli curl -sS -o /dev/null -w '%{time_total}' --max-time 5 "$url" 2>"$t/curl.err")
    rc=$?
    total=${out:-9}
    [ "$rc" -eq 56 ] || fail "$label: curl exit $rc, expected 56 (reset) after ${total}s: $(cat "$t/curl.err")"
    grep -qi "reset" "$t/curl.err" || fail "$label: curl did not report a reset: $(cat "$t/curl.err")"
    less_than "$total" 1 || fail "$label: the reset took ${total}s (expected < 1 s)"
    ok "$label: reset in ${total}s ($(cat "$t/curl.err"))"
}

run_topology() {
    local topo=$1
    case "$topo" in
        forward) live_topology_nfqueue ;;
        local-server) live_topology_local srv ;;
        local-client) live_topology_local cli ;;
        local-server-mark7)
            export PALISADE_MARK=0x7
            live_topology_local srv
            ns_exec srv iptables -S PALISADE | grep -q -- '--mark 0x7 -j RETURN' ||
                fail "$topo: the PALISADE chain does not return mark 0x7: $(ns_exec srv iptables -S PALISADE)"
            ;;
    esac
    local T
    T=$(ns_tmp)
    live_nginx
    live_write_inventory "$T/inventory.yaml"
    write_policy "$T/policy.yaml"
    live_start --nfqueue 0 --policy "$T/policy.yaml" --inventory "$T/inventory.yaml"

    local body
    body=$(ns_exec cli curl -sS --max-time 5 "http://$SRV_IP/api/orders/1") ||
        fail "$topo: allowed GET failed"
    expect_eq "$body" "order 1" "$topo: allowed GET answered"
    denied_is_reset "http://$SRV_IP/admin" "$topo: GET /admin"
    body=$(ns_exec cli curl -sS --max-time 5 "http://[$SRV_IP6]/index.html") ||
        fail "$topo: allowed GET over IPv6 failed"
    expect_eq "$body" "index" "$topo: allowed GET over IPv6 answered"
    denied_is_reset "http://[$SRV_IP6]/admin" "$topo: GET /admin over IPv6"
    # The server side is freed too: no connection left open in srv (the reset reached it).
    ns_wait_closed srv 3 || fail "$topo: nginx still holds a connection"
    ok "$topo: nginx holds no connection"
    nginx_saw_admin && fail "$topo: nginx served /admin: $(grep admin "$NGINX_LOG")"
    ok "$topo: nginx never saw /admin"
    expect_eq "$(grep -c '^GET ' "$NGINX_LOG")" 2 "$topo: nginx answered the 2 allowed GETs"

    local m
    sleep 0.3 # counters are published every 100 ms
    m=$(metrics) || fail "$topo: metrics endpoint (127.0.0.1 in palisade's namespace)"
    echo "$m" | grep -qE '^palisade_resets_sent_total [1-9]' || fail "$topo: metrics: no reset sent"
    echo "$m" | grep -qE '^palisade_resets_failed_total 0$' ||
        fail "$topo: metrics: resets failed: $(echo "$m" | grep resets)"
    ok "$topo: metrics count the resets"
    live_stop
    cleanup
    unset PALISADE_MARK
}

start=$(date +%s)
for topo in forward local-server local-client local-server-mark7; do
    run_topology "$topo"
done
echo "nfqueue-reset: $(( $(date +%s) - start )) s"
echo "PASS nfqueue-reset"
