#!/usr/bin/env bash
# A policy's life on a live node, with curl against nginx through palisade run --nfqueue:
# a shadow candidate that denies what the active policy allows writes shadow records
# while the requests still succeed; promote makes it refuse them; rollback restores
# them; the history says where each version came from; live learning exported and
# switched to protect admits what it observed and refuses a new request.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
live_topology_nfqueue
T=$(ns_tmp)
live_nginx
live_write_inventory "$T/inventory.yaml"

# policy NAME EXTRA_RULES: client may GET anything on the server; EXTRA_RULES follow.
policy() {
    cat <<YAML
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: $1}
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
      http: [{methods: [GET]}]
      action: allow
$2
YAML
}
policy active "" >"$T/active.yaml"
policy candidate "    - id: no-admin
      from: [client]
      to: [server]
      ports: [80]
      app: http
      http: [{paths: [/admin]}]
      action: deny" >"$T/candidate.yaml"

live_start --nfqueue 0 --policy "$T/active.yaml" --inventory "$T/inventory.yaml" \
    --shadow "$T/candidate.yaml"
get() { ns_exec cli curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$SRV_IP$1"; }

# 1. The candidate is judged beside the active policy and never enforces.
expect_eq "$($CTL status | jq -r .shadow.name)" candidate "status names the shadow policy"
expect_eq "$(get /admin)" 200 "/admin still served while only the candidate denies it"
expect_eq "$(get /api/orders/1)" 200 "/api/orders/1 served"
nginx_saw_admin || fail "nginx did not see /admin"
sleep 0.5
n=$(events_where '.event_type=="shadow" and .http.url=="/admin" and .policy_verdict.action=="allow" and .policy_verdict.rule=="reads" and .shadow.action=="deny" and .shadow.rule=="no-admin"')
expect_eq "$n" 1 "a shadow record for /admin: active allow by reads, candidate deny by no-admin"
expect_eq "$(events_where '.event_type=="shadow" and .http.url=="/api/orders/1"')" 0 "no shadow record where both agree"
expect_eq "$(events_where '.event_type=="shadow" and (.src_workload.name=="client-0") and (.dest_workload.name=="server-0")')" 1 "the record names both workloads"
show=$($CTL shadow show) || fail "shadow show: $show"
expect_eq "$(echo "$show" | jq -r '.counts.pairs[] | select(.level=="transaction" and .active.rule=="reads" and .shadow.rule=="no-admin") | .count')" 1 "shadow show counts the rule pair"
metrics | grep -qE '^palisade_shadow_disagreements_total\{level="transaction",active_action="allow",active_rule="reads",shadow_action="deny",shadow_rule="no-admin",shadow_version="2"\} 1$' ||
    fail "metrics: the disagreement by rule pair: $(metrics | grep shadow)"
ok "metrics count the disagreement by rule pair"

# 2. Promote: the candidate is the active policy, in one swap.
out=$($CTL shadow promote) || fail "shadow promote: $out"
expect_eq "$(echo "$out" | jq -r .version)" 3 "promote made version 3"
expect_eq "$($CTL status | jq -r .policy.origin)" shadow-promote "status: version 3 came from a promote"
expect_eq "$($CTL status | jq -r .shadow)" null "no shadow policy after promote"
expect_eq "$(get /admin)" 000 "/admin refused after promote"
expect_eq "$(get /api/orders/1)" 200 "/api/orders/1 still served after promote"
sleep 0.3
expect_eq "$(events_where '.event_type=="alert" and .http.url=="/admin" and .policy_verdict.rule=="no-admin" and .policy_verdict.policy_version==3')" 1 "the refusal is an alert of version 3's no-admin"

# 3. Rollback: the version before (the startup file's text) is in force again.
out=$($CTL policy rollback) || fail "policy rollback: $out"
expect_eq "$(echo "$out" | jq -r .version)" 4 "rollback made version 4"
expect_eq "$(get /admin)" 200 "/admin served again after rollback"
hist=$($CTL policy show --history) || fail "policy show --history"
expect_eq "$(echo "$hist" | jq -r '[.history[] | "\(.version):\(.origin):\(.text_of // "-")"] | join(" ")')" "4:rollback:1" "history: version 4 runs version 1's text (3 was rolled back)"
expect_eq "$($CTL policy show | head -1 | grep -c 'version 4')" 1 "policy show names version 4"
out=$($CTL policy rollback 2>&1)
expect_eq "$?" 2 "a second rollback has nothing to go back to"
echo "$out" | grep -q "nothing to roll back" || fail "rollback refusal says why: $out"

# 4. A candidate applied over the control socket, then cleared; a bad one is refused.
out=$($CTL shadow apply "$T/candidate.yaml") || fail "shadow apply: $out"
expect_eq "$(echo "$out" | jq -r .shadow_version)" 5 "shadow apply loaded the candidate as version 5"
expect_eq "$(get /admin)" 200 "/admin served while the new candidate judges beside"
sleep 0.5
expect_eq "$(events_where '.event_type=="shadow" and .http.url=="/admin" and .shadow.policy_version==5')" 1 "the new candidate's shadow record"
printf 'apiVersion: palisade.dev/v1\nkind: SegmentationPolicy\nspec: {mode: protekt}\n' >"$T/bad.yaml"
out=$($CTL shadow apply "$T/bad.yaml" 2>&1)
expect_eq "$?" 2 "a bad candidate is refused"
expect_eq "$($CTL status | jq -r .shadow.version)" 5 "the candidate in force stays"
$CTL shadow clear >/dev/null || fail "shadow clear"
expect_eq "$($CTL status | jq -r .shadow)" null "no candidate after clear"
before=$(events_where '.event_type=="shadow"')
expect_eq "$(get /admin)" 200 "/admin served with no candidate"
sleep 0.5
expect_eq "$(events_where '.event_type=="shadow"')" "$before" "no shadow record without a candidate"

live_stop

# 5. Live learning: the node starts in learn mode; what it observed, exported and switched
# to protect, admits that traffic and refuses a request it never saw.
cat >"$T/learning.yaml" <<YAML
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: learning}
spec:
  mode: learn
  defaultAction: deny
  groups:
    client: {selector: {app: client}}
    server: {selector: {app: server}}
  rules:
    # Not enforced in learn mode: what it catches is held for review, not learned.
    - id: no-admin
      from: [client]
      to: [server]
      app: http
      http: [{paths: [/admin]}]
      action: deny
YAML
live_start --nfqueue 0 --policy "$T/learning.yaml" --inventory "$T/inventory.yaml"
sleep 0.5
for p in /index.html /api/orders/1 /index.html /api/orders/1 /admin; do
    expect_eq "$(get $p)" 200 "$p served while learning"
done
sleep 0.5
out=$($CTL learn export -o "$T/proposal.yaml") || fail "learn export: $out"
echo "$out" | grep -q "wrote $T/proposal.yaml" || fail "learn export says what it wrote: $out"
grep -q '/api/orders/' "$T/proposal.yaml" || fail "the proposal has the observed path: $(cat "$T/proposal.yaml")"
grep -E '^ *# review:.*no-admin.*/admin' "$T/proposal.yaml" >/dev/null ||
    fail "/admin, caught by the running policy's deny rule, is held for review: $(cat "$T/proposal.yaml")"
ok "/admin is held for review as a comment, not allowed"
sed -i 's/^  mode: monitor/  mode: protect/' "$T/proposal.yaml"
grep -q '^  mode: protect' "$T/proposal.yaml" || fail "the proposal's mode: $(cat "$T/proposal.yaml")"
$PALISADE policy check "$T/proposal.yaml" --inventory "$T/inventory.yaml" >/dev/null ||
    fail "the proposal does not check: $($PALISADE policy check "$T/proposal.yaml" --inventory "$T/inventory.yaml" 2>&1)"
out=$($CTL policy apply "$T/proposal.yaml") || fail "apply the proposal: $out"
expect_eq "$(get /index.html)" 200 "/index.html admitted by what was learned"
expect_eq "$(get /api/orders/1)" 200 "/api/orders/1 admitted by what was learned"
expect_eq "$(get /admin)" 000 "/admin, held for review, refused"
sleep 0.3
expect_eq "$(events_where '.event_type=="alert" and .http.url=="/admin" and .policy_verdict.rule=="default" and .policy_verdict.action=="deny"')" 1 "the refusal is an alert of the learned policy's default deny"
live_stop
echo "PASS nfqueue-lifecycle"
