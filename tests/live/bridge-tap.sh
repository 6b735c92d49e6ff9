#!/usr/bin/env bash
# palisade run --bridge between two veths (the router namespace has no addresses, it only
# forwards what palisade allows), then --tap on one of them (passive: denials are reported
# with enforced=false and raced with resets).
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
rcli FLUSHALL >/dev/null 2>&1
sleep 0.5
expect_eq "$(events_where '.event_type=="alert" and .redis.command=="FLUSHALL" and .policy_verdict.enforced==false')" 1 \
    "the tap reports FLUSHALL as not enforced"
expect_eq "$($CTL status | jq -r .enforcing)" false "status: a tap does not enforce"
live_stop
echo "PASS bridge-tap"
