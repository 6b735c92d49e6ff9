#!/usr/bin/env bash
# palisade run --nfqueue in front of dnsmasq and a grpcio server: only cluster names
# resolve (UDP and TCP), and only the allowed gRPC method gets through; the denied call
# fails at once with UNAVAILABLE and the server never runs it.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
live_topology_nfqueue
T=$(ns_tmp)

ns_spawn srv dnsmasq --no-daemon --no-resolv --no-hosts --bind-interfaces \
    --listen-address="$SRV_IP" --port=53 --log-queries --log-facility=- \
    --address=/orders.svc.cluster.local/10.99.2.50 --address=/evil.example.com/10.99.2.66
DNS_LOG=$NS_LAST_LOG
ns_wait_udp srv "$SRV_IP" 53 2>/dev/null || sleep 1

cat >"$T/echo_server.py" <<'PY'
import sys
from concurrent import futures
import grpc
ident = lambda b: b
log = open(sys.argv[2], "a", buffering=1)
def say(req, ctx):
    log.write("Say\n"); return req
def count(req, ctx):
    log.write("Count\n")
    for i in range(3):
        yield b"item-%d" % i
h = {"Say": grpc.unary_unary_rpc_method_handler(say, ident, ident),
     "Count": grpc.unary_stream_rpc_method_handler(count, ident, ident)}
s = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
s.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("demo.v1.Echo", h),))
s.add_insecure_port(sys.argv[1]); s.start(); print("serving", flush=True); s.wait_for_termination()
PY
cat >"$T/echo_client.py" <<'PY'
import sys
import grpc
ident = lambda b: b
with grpc.insecure_channel(sys.argv[1]) as ch:
    m = sys.argv[2]
    try:
        if m == "Say":
            print("OK", ch.unary_unary("/demo.v1.Echo/Say", ident, ident)(b"hi", timeout=5).decode())
        else:
            print("OK", list(ch.unary_stream("/demo.v1.Echo/Count", ident, ident)(b"x", timeout=5)))
    except grpc.RpcError as e:
        print("ERR", e.code().name)
PY
ns_spawn srv /usr/bin/python3 "$T/echo_server.py" "$SRV_IP:50051" "$T/grpc-calls.log"
ns_wait_tcp srv "$SRV_IP" 50051 || fail "gRPC server did not start"

live_write_inventory "$T/inventory.yaml"
cat >"$T/policy.yaml" <<'YAML'
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: live-dns-grpc}
spec:
  mode: protect
  defaultAction: deny
  groups:
    client: {selector: {app: client}}
    server: {selector: {app: server}}
  rules:
    - id: cluster-dns
      from: [client]
      to: [server]
      app: dns
      dns: [{names: ["*.svc.cluster.local"]}]
      action: allow
    - id: echo-say
      from: [client]
      to: [server]
      app: grpc
      grpc: [{service: demo.v1.Echo, methods: [Say]}]
      action: allow
YAML
live_start --nfqueue 0 --policy "$T/policy.yaml" --inventory "$T/inventory.yaml" --log-all

# DNS over UDP: the cluster name resolves, the other one is dropped (dig times out).
expect_eq "$(ns_exec cli dig +short +tries=1 +time=2 @"$SRV_IP" orders.svc.cluster.local)" \
    10.99.2.50 "cluster name resolves over UDP"
ns_exec cli dig +short +tries=1 +time=1 @"$SRV_IP" evil.example.com >"$T/dig-evil.out" 2>&1
expect_eq "$?" 9 "denied name over UDP gets no answer (dig exit 9)"
# DNS over TCP: same decisions; the denied query's connection is reset.
expect_eq "$(ns_exec cli dig +tcp +short +tries=1 +time=2 @"$SRV_IP" orders.svc.cluster.local)" \
    10.99.2.50 "cluster name resolves over TCP"
ns_exec cli dig +tcp +short +tries=1 +time=2 @"$SRV_IP" evil.example.com >"$T/dig-evil-tcp.out" 2>&1
[ $? -ne 0 ] || fail "denied name over TCP answered: $(cat "$T/dig-evil-tcp.out")"
ok "denied name over TCP refused"
grep -q "query\[A\] evil.example.com" "$DNS_LOG" && fail "dnsmasq saw the denied query"
ok "dnsmasq never saw the denied name"

# gRPC: Say is allowed, Count is not.
expect_eq "$(ns_exec cli /usr/bin/python3 "$T/echo_client.py" "$SRV_IP:50051" Say)" "OK hi" "gRPC Say allowed"
start=$(date +%s%N)
out=$(ns_exec cli /usr/bin/python3 "$T/echo_client.py" "$SRV_IP:50051" Count)
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_eq "$out" "ERR UNAVAILABLE" "gRPC Count refused"
[ "$ms" -lt 4000 ] || fail "denied gRPC call took $ms ms"
expect_eq "$(ns_exec cli /usr/bin/python3 "$T/echo_client.py" "$SRV_IP:50051" Say)" "OK hi" "gRPC Say still allowed"
grep -q Count "$T/grpc-calls.log" && fail "the server ran the denied Count"
expect_eq "$(grep -c Say "$T/grpc-calls.log")" 2 "the server ran both allowed Say calls"

sleep 0.5
n=$(events_where '.event_type=="alert" and .dns.rrname=="evil.example.com" and .policy_verdict.rule=="default"')
[ "$n" -ge 2 ] || fail "alerts for the denied name: $n"
ok "alerts for the denied name ($n)"
n=$(events_where '.event_type=="alert" and .grpc.service=="demo.v1.Echo" and .grpc.method=="Count" and .policy_verdict.enforced==true')
expect_eq "$n" 1 "alert for the denied gRPC method"
n=$(events_where '.event_type=="http" and .grpc.method=="Say" and .grpc.status==0')
expect_eq "$n" 2 "l7 events for the allowed calls with grpc status 0"

live_stop
echo "PASS nfqueue-dns-grpc"
