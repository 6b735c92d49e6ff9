#!/usr/bin/env bash
# palisade run --bridge between two veths (the router namespace has no addresses, it only
# forwards what palisade allows), then --tap on one of them (passive: denials are reported
# with enforced=false and counted as would_drop; raced with resets only with --tap-resets),
# then a tap on the loopback where palisade's metrics listen (never judged: `self`).
set -uo pipefail
source "$(dirname "$0")/lib.sh"
live_topology_bridge
T=$(ns_tmp)

ns_spawn srv redis-server --bind "$SRV_IP" --port 6379 --protected-mode no --save "" --appendonly no --dir "$T"
live_write_inventory "$T/inventory.yaml"
cat >"$T/policy.yaml" <<'YAML'
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: live-bridge}
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
      redis: [{commands: [FLUSHALL]}]
      action: deny
YAML
# Nothing crosses the router until palisade bridges it.
ns_exec cli ping -c 1 -W 1 "$SRV_IP" >/dev/null 2>&1 && fail "traffic crossed without the bridge"
ok "no path without the bridge"

live_start --bridge c0,s0 --policy "$T/policy.yaml" --inventory "$T/inventory.yaml"
ns_wait_tcp srv "$SRV_IP" 6379 || fail "redis-server did not start"
rcli() { ns_exec cli redis-cli -h "$SRV_IP" "$@"; }
expect_eq "$(rcli SET k v)" OK "redis SET through the bridge"
expect_eq "$(rcli GET k)" v "redis GET through the bridge"
out=$(rcli FLUSHALL 2>&1)
echo "$out" | grep -qi "reset" || fail "FLUSHALL through the bridge: $out"
ok "FLUSHALL reset by the bridge"
expect_eq "$(rcli DBSIZE)" 1 "the key survived"
# ICMP is not admitted by any rule: protect mode drops it.
ns_exec cli ping -c 1 -W 1 "$SRV_IP" >/dev/null 2>&1 && fail "ping was forwarded"
ok "ping dropped by the default action"
sleep 0.3
st=$($CTL status)
[ "$(echo "$st" | jq -r .source_counters.forwarded)" -gt 5 ] || fail "bridge forwarded count: $st"
[ "$(echo "$st" | jq -r .source_counters.resets_sent)" -ge 2 ] || fail "bridge resets: $st"
ok "status shows forwarded frames and resets"
expect_eq "$(events_where '.event_type=="alert" and .redis.command=="FLUSHALL" and .policy_verdict.enforced==true')" 1 \
    "enforced alert for FLUSHALL"
live_stop

# The tap: a plain bridge in the router (the kernel forwards), palisade watches c0.
ip -n "$(ns_name rtr)" link add br0 type bridge
ip -n "$(ns_name rtr)" link set c0 master br0
ip -n "$(ns_name rtr)" link set s0 master br0
ip -n "$(ns_name rtr)" link set br0 up
rm -f "$EVENTS"
live_start --tap c0 --policy "$T/policy.yaml" --inventory "$T/inventory.yaml"
expect_eq "$(rcli SET k2 v2)" OK "redis SET past the tap"
# A tap only observes: no reset races the denied FLUSHALL (resets are opt-in).
expect_eq "$(rcli FLUSHALL 2>&1)" OK "FLUSHALL past the tap, not reset"
ns_exec cli ping -c 1 -W 1 "$SRV_IP" >/dev/null 2>&1 || fail "ping past the tap"
ok "ping past the tap"
sleep 0.5
expect_eq "$(events_where '.event_type=="alert" and .redis.command=="FLUSHALL" and .policy_verdict.enforced==false')" 1 \
    "the tap reports FLUSHALL as not enforced"
st=$($CTL status)
expect_eq "$(echo "$st" | jq -r .enforcing)" false "status: a tap does not enforce"
expect_eq "$(echo "$st" | jq -r .packet_verdicts.drop)" 0 "status: a tap drops nothing"
[ "$(echo "$st" | jq -r .packet_verdicts.would_drop)" -ge 2 ] || fail "status: would_drop: $st"
ok "status: what an inline palisade would drop is would_drop"
expect_eq "$(echo "$st" | jq -r .source_counters.resets_sent)" 0 "no resets from a tap by default"
m=$(metrics)
echo "$m" | grep -q '^palisade_packet_verdicts_total{verdict="drop"} 0$' || fail "metrics drop: $m"
echo "$m" | grep -qE '^palisade_packet_verdicts_total\{verdict="would_drop"\} [1-9]' || fail "metrics would_drop: $m"
ok "metrics: would_drop, no drop"
live_stop
grep -qE 'palisade run: stopped after .* packets \(accept [0-9]+, would_drop [1-9][0-9]*, self [0-9]+\)' "$PALISADE_LOG" ||
    fail "the stop line: $(grep stopped "$PALISADE_LOG")"
ok "the stop line says would_drop"
expect_eq "$(events_where '.event_type=="flow" and .policy_verdict.dropped_pkts != null')" 0 \
    "flow records of a tap claim no dropped packets"
[ "$(events_where '.event_type=="flow" and .policy_verdict.would_drop_pkts > 0')" -ge 1 ] ||
    fail "no flow record with would_drop_pkts"
ok "flow records say would_drop_pkts"

# --tap-resets: the denial is raced with resets.
rm -f "$EVENTS"
live_start --tap c0 --tap-resets --policy "$T/policy.yaml" --inventory "$T/inventory.yaml"
rcli SET k3 v3 >/dev/null
rcli FLUSHALL >/dev/null 2>&1
sleep 0.5
[ "$($CTL status | jq -r .source_counters.resets_sent)" -ge 1 ] || fail "--tap-resets sent no reset"
ok "--tap-resets races the denial with resets"
live_stop

# Palisade never judges its own connections: a tap on the router's loopback, where its
# metrics listener is, with resets on and a policy that allows nothing there.
rm -f "$EVENTS"
live_start --tap lo --tap-resets --policy "$T/policy.yaml" --inventory "$T/inventory.yaml"
for i in 1 2 3 4 5; do
    metrics >/dev/null || fail "metrics fetch $i through a tap on lo"
done
ok "metrics answered five times through a resetting tap on lo"
# Another connection on lo is judged (default deny, not enforced).
ns_exec rtr bash -c 'exec 3<>/dev/tcp/127.0.0.1/9999' >/dev/null 2>&1
sleep 0.5
st=$($CTL status)
[ "$(echo "$st" | jq -r .packet_verdicts.self)" -ge 10 ] || fail "status self: $st"
ok "status counts palisade's own packets as self"
expect_eq "$(events_where '.dest_port==9464 or .src_port==9464')" 0 "no event about the metrics connections"
[ "$(events_where '.event_type=="alert" and .dest_port==9999')" -ge 1 ] || fail "the other connection on lo was not judged"
ok "another connection on lo is judged"
metrics | grep -qE '^palisade_packet_verdicts_total\{verdict="self"\} [1-9]' || fail "metrics self"
ok "metrics: self"
live_stop
echo "PASS bridge-tap"
