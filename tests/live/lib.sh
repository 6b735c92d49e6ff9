#!/usr/bin/env bash
# Shared set-up for the live (`palisade run`) tests: a client and a server namespace
# joined through a router namespace where palisade judges the forwarded traffic.
#
#   cli (10.99.1.2, fd00:99:1::2) -- rtr (10.99.1.1 | 10.99.2.1) -- srv (10.99.2.2, fd00:99:2::2)
#
# live_topology_nfqueue: the router forwards and queues FORWARD traffic to NFQUEUE 0 with
#   --queue-bypass (traffic flows past when no daemon is bound), with deploy/nfqueue-rules.sh
#   as an operator would on a node.
# live_topology_local SIDE: the same namespaces and addresses, but the router only routes;
#   palisade runs in SIDE (srv: the server is a workload on palisade's own node, cli: the
#   client is), where deploy/nfqueue-rules.sh --chain INPUT,OUTPUT queues the node's own
#   traffic to NFQUEUE 0.
# live_topology_bridge: the router has no addresses; palisade bridges its two interfaces
#   (cli and srv share one /24 then: 10.99.3.2 and 10.99.3.3).
# live_start ARGS...: starts palisade run in the namespace LIVE_NS (rtr, or SIDE for the
#   local topology) with a control socket and metrics, waits until it answers, and sets
#   PALISADE_PID, CTL (palisadectl command).
# Assertions: ok MSG (prints), fail MSG (prints and exits 1), expect_eq A B MSG.
#
# Needs PALISADE and PALISADECTL (paths to the binaries) in the environment.

HERE_LIVE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE_LIVE/../.." && pwd)
# shellcheck source=../netns/lib.sh
source "$ROOT/tests/netns/lib.sh"

: "${PALISADE:?set PALISADE to the palisade binary}"
: "${PALISADECTL:?set PALISADECTL to the palisadectl binary}"

ok() { echo "ok: $*"; }
fail() {
    echo "FAIL: $*" >&2
    if [ -n "${EVENTS:-}" ] && [ -f "$EVENTS" ]; then
        echo "--- last events:" >&2
        tail -n 30 "$EVENTS" >&2
    fi
    for f in "$(ns_tmp)"/*.log; do
        [ -f "$f" ] || continue
        echo "--- $f:" >&2
        tail -n 30 "$f" >&2
    done
    exit 1
}
expect_eq() { [ "$1" == "$2" ] || fail "$3: expected '$2', got '$1'"; ok "$3"; }

# The three namespaces, routed through rtr.
live_routed_namespaces() {
    netns_init
    ns_create cli rtr srv
    ns_veth cli eth0 rtr c0
    ns_veth rtr s0 srv eth0
    ns_addr cli eth0 10.99.1.2/24 fd00:99:1::2/64
    ns_addr rtr c0 10.99.1.1/24 fd00:99:1::1/64
    ns_addr rtr s0 10.99.2.1/24 fd00:99:2::1/64
    ns_addr srv eth0 10.99.2.2/24 fd00:99:2::2/64
    ns_route cli default via 10.99.1.1
    ns_route srv default via 10.99.2.1
    ns_route cli default via fd00:99:1::1
    ns_route srv default via fd00:99:2::1
    ip netns exec "$(ns_name rtr)" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
    CLI_IP=10.99.1.2
    SRV_IP=10.99.2.2
    CLI_IP6=fd00:99:1::2
    SRV_IP6=fd00:99:2::2
}

live_topology_nfqueue() {
    live_routed_namespaces
    # The operator's steering script, as on a node.
    ip netns exec "$(ns_name rtr)" bash "$ROOT/deploy/nfqueue-rules.sh" add --queues 0 ||
        fail "deploy/nfqueue-rules.sh add"
    ns_settle cli rtr srv
    LIVE_NS=rtr
}

live_topology_local() {
    local side=${1:?live_topology_local srv|cli}
    live_routed_namespaces
    ip netns exec "$(ns_name "$side")" bash "$ROOT/deploy/nfqueue-rules.sh" add --queues 0 \
        --chain INPUT,OUTPUT || fail "deploy/nfqueue-rules.sh add --chain INPUT,OUTPUT"
    ns_settle cli rtr srv
    LIVE_NS=$side
}

live_topology_bridge() {
    netns_init
    ns_create cli rtr srv
    ns_veth cli eth0 rtr c0
    ns_veth rtr s0 srv eth0
    ns_addr cli eth0 10.99.3.2/24
    ns_addr srv eth0 10.99.3.3/24
    local n
    for n in cli srv; do
        # Frames are forwarded by a packet socket: the senders must fill in checksums and
        # must not hand over segments larger than the MTU.
        ip netns exec "$(ns_name $n)" ethtool -K eth0 tx off tso off gso off >/dev/null 2>&1 ||
            fail "ethtool -K in $n"
    done
    for n in c0 s0; do
        ip netns exec "$(ns_name rtr)" ethtool -K "$n" gro off tso off gso off tx off >/dev/null 2>&1 ||
            fail "ethtool -K $n"
        ip -n "$(ns_name rtr)" link set "$n" up
    done
    ns_settle cli srv
    CLI_IP=10.99.3.2
    SRV_IP=10.99.3.3
    LIVE_NS=rtr
}

# live_write_inventory FILE: the two workloads of the topology.
live_write_inventory() {
    cat >"$1" <<YAML
apiVersion: palisade.dev/v1
kind: WorkloadInventory
workloads:
  - {name: client-0, namespace: shop, labels: {app: client}, ips: [$CLI_IP, "fd00:99:1::2"]}
  - {name: server-0, namespace: shop, labels: {app: server}, ips: [$SRV_IP, "fd00:99:2::2"]}
YAML
}

# live_start ARGS...: palisade run in LIVE_NS (default rtr).
live_start() {
    local t
    t=$(ns_tmp)
    SOCK="$t/palisade.sock"
    EVENTS="$t/events.json"
    METRICS_ADDR=127.0.0.1:9464
    ns_spawn "${LIVE_NS:-rtr}" "$PALISADE" run "$@" --events "$EVENTS" --control "$SOCK" \
        --metrics "$METRICS_ADDR"
    PALISADE_PID=$NS_LAST_PID
    PALISADE_LOG=$NS_LAST_LOG
    CTL="$PALISADECTL --socket $SOCK"
    local i
    for i in $(seq 1 100); do
        if $CTL status >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$PALISADE_PID" 2>/dev/null || fail "palisade run exited at start"
        sleep 0.1
    done
    fail "palisade run did not answer on its control socket"
}

# live_stop: SIGTERM, and check a clean exit.
live_stop() {
    kill -TERM "$PALISADE_PID"
    local i
    for i in $(seq 1 50); do
        kill -0 "$PALISADE_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$PALISADE_PID" 2>/dev/null && fail "palisade run did not stop on SIGTERM"
    wait "$PALISADE_PID" 2>/dev/null
    local rc=$?
    expect_eq "$rc" 0 "palisade run exits 0 on SIGTERM"
    [ -e "$SOCK" ] && fail "control socket left behind"
    true
}

# metrics: the Prometheus text from palisade's namespace.
metrics() { ns_exec "${LIVE_NS:-rtr}" curl -sf "http://$METRICS_ADDR/metrics"; }

# events_where JQ_FILTER: count of events matching.
events_where() { jq -c "select($1)" "$EVENTS" | wc -l; }

# live_nginx: nginx in srv on $SRV_IP:80 and [$SRV_IP6]:80 (when set), serving
# /index.html, /api/orders/1 and /admin (so a request that gets through is answered and
# logged). Its access log, NGINX_LOG, has one line per request: method, the URI as nginx
# judged it (percent-decoded, dot segments resolved: a smuggled /admin shows as /admin
# whatever its spelling on the wire), the request line as sent, the status. Its error
# log, NGINX_ERR, is at level info, so a request whose head was cut short is explained.
live_nginx() {
    local t
    t=$(ns_tmp)
    mkdir -p "$t/www/api/orders"
    echo "index" >"$t/www/index.html"
    echo "order 1" >"$t/www/api/orders/1"
    echo "admin page" >"$t/www/admin"
    chmod 755 "$t"
    chmod -R a+rX "$t/www"
    NGINX_LOG="$t/access.log"
    NGINX_ERR="$t/nginx-error.log"
    local listen6=""
    [ -n "${SRV_IP6:-}" ] && listen6="listen [$SRV_IP6]:80;"
    cat >"$t/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $t/nginx.pid;
error_log $t/nginx-error.log info;
events { worker_connections 256; }
http {
    log_format judged '\$request_method \$uri "\$request" \$status';
    access_log $NGINX_LOG judged;
    client_body_temp_path $t;
    large_client_header_buffers 8 64k;
    server {
        listen $SRV_IP:80;
        $listen6
        root $t/www;
        default_type text/plain;
    }
}
CONF
    ns_spawn srv nginx -c "$t/nginx.conf"
    ns_wait_tcp srv "$SRV_IP" 80 || fail "nginx did not start"
}

# nginx_saw_admin: true when nginx's access log has a request for /admin (any spelling).
nginx_saw_admin() { grep -qE '^[A-Z]+ /+admin' "$NGINX_LOG"; }

# nginx_served_admin: true when nginx read a whole request for /admin. A request palisade
# judges when the packet completing its head arrives may have its first segments (the
# request line among them) delivered before the last one is dropped and the flow reset:
# nginx then logs the request line with status 400 and its error log says the
# connection ended "while reading client request headers". Such a line is not a request
# served: any other /admin line, or more such 400s than cut-short heads, is.
nginx_served_admin() {
    local other cut short
    other=$(grep -E '^[A-Z]+ /+admin' "$NGINX_LOG" | grep -cvE ' 400$')
    cut=$(grep -E '^[A-Z]+ /+admin' "$NGINX_LOG" | grep -cE ' 400$')
    short=$(grep -c 'while reading client request headers' "$NGINX_ERR")
    [ "$other" -gt 0 ] || [ "$cut" -gt "$short" ]
}

# less_than A B: true when the decimal A < B.
less_than() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

# events_count: how many event lines are written so far (a mark for alerts_since).
events_count() { wc -l <"$EVENTS"; }

# alerts_since N: how palisade decided the alerts written after event line N, one word
# each, unique and comma-separated: `rule:ID` for a rule's denial, `uninspectable:CAUSE`
# when the flow was judged uninspectable. Reads the decision from `policy_verdict` or
# (older events) `verdict`.
alerts_since() {
    sleep "${ALERT_SETTLE:-0.3}"
    tail -n +"$(($1 + 1))" "$EVENTS" | jq -r 'select(.event_type == "alert")
        | (.policy_verdict // .verdict // {}) as $v
        | (.uninspectable.cause // $v.uninspectable // null) as $cause
        | if $cause != null or $v.rule == "uninspectable" or .alert.category == "uninspectable"
          then "uninspectable:\($cause // .alert.signature // "?")"
          else "rule:\($v.rule // "?")" end' | sort -u | paste -sd, -
}

