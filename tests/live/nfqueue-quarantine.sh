#!/usr/bin/env bash
# Quarantine with real clients and servers through palisade run --nfqueue: a rule with
# `quarantine: true` matched by a curl request quarantines the client: its next
# connection (another port, another server of the node) fails at once; the quarantine
# survives a policy swap and a restart; `palisadectl quarantine release` lifts it.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
live_topology_nfqueue
T=$(ns_tmp)
live_nginx
# A second server on the same node: python's http.server on port 8080.
mkdir -p "$T/www2"
echo "second" >"$T/www2/index.html"
chmod -R a+rX "$T/www2"
ns_spawn srv python3 -m http.server 8080 --bind "$SRV_IP" --directory "$T/www2"
ns_wait_tcp srv "$SRV_IP" 8080 || fail "the second server did not start"
live_write_inventory "$T/inventory.yaml"

policy() { # policy NAME QUARANTINE(true|false)
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
    - id: web
      from: [client]
      to: [server]
      ports: [80, 8080]
      app: http
      action: allow
    - id: admin-probe
      from: [client]
      to: [server]
      app: http
      http: [{paths: [/admin]}]
      action: deny
      quarantine: $2
YAML
}
policy q1 true >"$T/policy.yaml"
policy q2 false >"$T/policy2.yaml"
STATE="$T/state"
live_start --nfqueue 0 --policy "$T/policy.yaml" --inventory "$T/inventory.yaml" --state-dir "$STATE"

get() { ns_exec cli curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$SRV_IP$1"; }
timed() { # timed URL: "CODE SECONDS"
    ns_exec cli curl -s -o /dev/null -w '%{http_code} %{time_total}' --max-time 3 "http://$SRV_IP$1"
}
expect_eq "$(get /index.html)" 200 "port 80 served before the quarantine"
expect_eq "$(get :8080/index.html)" 200 "port 8080 served before the quarantine"

# The probe: denied, and the client is quarantined.
expect_eq "$(get /admin)" 000 "/admin refused"
set -- $(timed :8080/index.html)
expect_eq "$1" 000 "the quarantined client's connection to the other server is refused"
less_than "$2" 1 || fail "the refusal took $2 s; it must come at once (a reset at the SYN)"
ok "refused in $2 s"
expect_eq "$(get /index.html)" 000 "and to the first one"
list=$($CTL quarantine list) || fail "quarantine list: $list"
expect_eq "$(echo "$list" | jq -r '.quarantined[0].workload')" shop/client-0 "quarantine list names the workload"
expect_eq "$(echo "$list" | jq -r '.quarantined[0].rule')" admin-probe "and the rule that quarantined it"
sleep 0.3
n=$(events_where '.event_type=="alert" and .alert.category=="quarantine" and .policy_verdict.rule=="quarantine" and .src_workload.name=="client-0" and .dest_port==8080')
less_than 0 "$n" || fail "no quarantine alert for the refused connection to 8080"
ok "the refused connection is an alert with category quarantine"
metrics | grep -qE '^palisade_quarantined_workloads 1$' || fail "metrics: quarantined workloads"
ok "metrics count the quarantined workload"
expect_eq "$(stat -c %a "$STATE/quarantine.json")" 600 "the state file is 0600"

# A policy swap keeps the quarantine.
$CTL policy apply "$T/policy2.yaml" >/dev/null || fail "policy apply"
expect_eq "$(get :8080/index.html)" 000 "still refused after a policy swap"

# A restart keeps it.
live_stop
live_start --nfqueue 0 --policy "$T/policy2.yaml" --inventory "$T/inventory.yaml" --state-dir "$STATE"
expect_eq "$(get :8080/index.html)" 000 "still refused after a restart"
expect_eq "$($CTL quarantine list | jq -r '.quarantined | length')" 1 "the restarted daemon lists it"

# Release.
out=$($CTL quarantine release shop/client-0) || fail "release: $out"
expect_eq "$(get :8080/index.html)" 200 "port 8080 served after release"
expect_eq "$(get /index.html)" 200 "port 80 served after release"
expect_eq "$($CTL quarantine list | jq -r '.quarantined | length')" 0 "nothing quarantined"
out=$($CTL quarantine release shop/client-0 2>&1)
expect_eq "$?" 2 "releasing what is not quarantined is refused"
live_stop
echo "PASS nfqueue-quarantine"
