#!/usr/bin/env bash
# HTTP/1 evasion tricks from real clients (curl, and python3 over an ordinary socket where
# curl cannot write the bytes) through palisade run --nfqueue against real nginx, under a
# policy that denies /admin, in both topologies: forward (palisade on the router, FORWARD
# queued) and local-server (palisade beside nginx, INPUT/OUTPUT queued).
#
# Each trick is played twice: first with no daemon bound to the queue (--queue-bypass),
# where nginx must serve it as a request for /admin (so the trick is real: nginx reads it
# as /admin), then through palisade, where nginx must never serve /admin. nginx's log has
# the URI as nginx judged it ($uri: percent-decoded, dot segments resolved), so every
# spelling of /admin shows as /admin. A head longer than one segment is judged at the
# packet that completes it: nginx may have read the request line from the earlier
# segments when the reset comes, and logs a 400 for a head cut short, which is not a
# request served (see nginx_served_admin in lib.sh); the script says when that happened.
# An honest request still works afterwards. How palisade decided each trick (the rule, or
# the uninspectable cause) is printed from its events.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
START=$(date +%s)

write_policy() {
    cat >"$1" <<'YAML'
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: live-evasion-http}
spec:
  mode: protect
  defaultAction: deny
  onUninspectable: deny
  groups:
    client: {selector: {app: client}}
    server: {selector: {app: server}}
  rules:
    - {id: web, from: [client], to: [server], ports: [80], app: http, action: allow}
    - id: deny-admin
      from: ["*"]
      to: [server]
      ports: [80]
      app: http
      http: [{paths: ["/admin", "/admin/*"]}]
      action: deny
YAML
}

ccurl() { ns_exec cli curl -sS -o /dev/null --max-time 3 "$@" 2>&1; }
send() { ns_exec cli /usr/bin/python3 "$HERE_LIVE/tcpsend.py" "$SRV_IP" 80 3 2>&1; }
H='Host: srv\r\nUser-Agent: evasion\r\nConnection: close'

# 70 header fields, and a 24 KiB head (24 fields of 1 KiB), as curl -H arguments.
headers70=()
for i in $(seq 1 70); do headers70+=(-H "X-Field-$i: value-$i"); done
pad=$(head -c 1000 /dev/zero | tr '\0' 'p')
headers24k=()
for i in $(seq 1 24); do headers24k+=(-H "X-Pad-$i: $pad"); done
# 20 allowed GETs pipelined before GET /admin, in one write.
pipeline=""
for i in $(seq 1 20); do pipeline+="GET /index.html HTTP/1.1\r\nHost: srv\r\n\r\n"; done
pipeline+="GET /admin HTTP/1.1\r\n$H\r\n\r\n"

TRICKS=(leading-empty-lines bare-lf unlisted-method 70-headers head-24k percent-encoded
    dot-segments double-slash absolute-uri double-space pipeline-20)
trick() {
    case "$1" in
        leading-empty-lines) printf "\r\n\r\nGET /admin HTTP/1.1\r\n$H\r\n\r\n" | send ;;
        bare-lf) printf "GET /admin HTTP/1.1\n${H//\\r/}\n\n" | send ;;
        unlisted-method) ccurl -X PROPFIND "$URL/admin" ;;
        70-headers) ccurl "${headers70[@]}" "$URL/admin" ;;
        head-24k) ccurl "${headers24k[@]}" "$URL/admin" ;;
        percent-encoded) ccurl --path-as-is "$URL/%61dmin" ;;
        dot-segments) ccurl --path-as-is "$URL/x/../admin" ;;
        double-slash) ccurl --path-as-is "$URL//admin" ;;
        absolute-uri) ccurl --request-target "http://srv/admin" "$URL/" ;;
        double-space) printf "GET  /admin HTTP/1.1\r\n$H\r\n\r\n" | send ;;
        pipeline-20) printf "$pipeline" | send ;;
        *) fail "unknown trick $1" ;;
    esac
}

run_topology() {
    local topo=$1 T t out how mark seen body
    case "$topo" in
        forward) live_topology_nfqueue ;;
        local-server) live_topology_local srv ;;
    esac
    T=$(ns_tmp)
    URL="http://$SRV_IP"
    live_nginx
    live_write_inventory "$T/inventory.yaml"
    write_policy "$T/policy.yaml"
    # 1. No daemon bound: every trick reaches nginx as a request for /admin.
    for t in "${TRICKS[@]}"; do
        : >"$NGINX_LOG"
        out=$(trick "$t")
        nginx_served_admin || fail "$topo: without palisade, trick $t did not reach nginx as /admin: $out; log: $(cat "$NGINX_LOG")"
    done
    ok "$topo: without palisade, nginx reads all ${#TRICKS[@]} tricks as requests for /admin"

    # 2. Through palisade: none does, and the client is reset.
    live_start --nfqueue 0 --policy "$T/policy.yaml" --inventory "$T/inventory.yaml"
    for t in "${TRICKS[@]}"; do
        : >"$NGINX_LOG"
        : >"$NGINX_ERR"
        mark=$(events_count)
        out=$(trick "$t")
        how=$(alerts_since "$mark")
        if nginx_served_admin; then
            fail "$topo: trick $t reached nginx through palisade (client: $out; palisade: ${how:-no alert}): $(grep admin "$NGINX_LOG")"
        fi
        [ -n "$how" ] || fail "$topo: trick $t: palisade wrote no alert (client: $out)"
        seen="never saw /admin"
        nginx_saw_admin && seen="never served /admin (read a head cut short by the reset: 400)"
        ok "$topo: $t: nginx $seen; palisade: $how; client: $(echo "$out" | head -n 1)"
    done

    # 3. Honest requests still work, on their own and kept alive.
    : >"$NGINX_LOG"
    body=$(ns_exec cli curl -sS --max-time 5 "$URL/api/orders/1") || fail "honest GET failed"
    expect_eq "$body" "order 1" "$topo: honest GET answered"
    out=$(printf "GET /index.html HTTP/1.1\r\nHost: srv\r\n\r\nGET /api/orders/1 HTTP/1.1\r\n$H\r\n\r\n" | send)
    expect_eq "$(echo "$out" | grep -o 'HTTP/1.1 200' | wc -l)" 2 "$topo: two honest pipelined GETs answered ($out)"
    live_stop
    cleanup
}

for topo in forward local-server; do
    run_topology "$topo"
done
echo "nfqueue-evasion-http: $(($(date +%s) - START)) s"
echo "PASS nfqueue-evasion-http"
