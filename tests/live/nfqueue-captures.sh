#!/usr/bin/env bash
# Bounded forensic captures (issue 19): palisade run --nfqueue between curl and nginx with a
# deny rule on /admin that captures. With --capture-max-files 3, ten denied requests leave
# the pcaps of the last three flows (by their client ports), each readable by tshark with
# its request, mode 0600 in a directory palisade made 0700; /metrics and palisadectl status
# count the seven removals; palisadectl captures lists the three with their size and alert.
# A restart over the same directory with --capture-max-bytes counts the files it finds:
# Palisade's files there never pass the byte bound (strict: every byte is accounted before
# it is written), and a file of someone else's is never touched.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
live_topology_nfqueue
T=$(ns_tmp)
live_nginx
live_write_inventory "$T/inventory.yaml"
cat >"$T/policy.yaml" <<'YAML'
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: live-captures}
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
      http: [{paths: ["/admin"]}]
      action: deny
      capture: true
      severity: high
YAML
CAPS="$T/caps"
live_start --nfqueue 0 --policy "$T/policy.yaml" --inventory "$T/inventory.yaml" \
    --capture-dir "$CAPS" --capture-max-files 3
[ "$(stat -c %a "$CAPS")" = 700 ] || fail "capture dir mode $(stat -c %a "$CAPS"), not 0700"
ok "palisade made the capture directory 0700"

# Ten denied requests, each on its own connection from a known client port.
for i in $(seq 1 10); do
    ns_exec cli curl -s -o /dev/null --max-time 5 --local-port $((41000 + i)) \
        "http://$SRV_IP/admin?n=$i"
    [ "$(ls "$CAPS"/*.pcap 2>/dev/null | wc -l)" -le 3 ] || fail "more than 3 pcaps after request $i: $(ls "$CAPS")"
done
sleep 0.5
expect_eq "$(events_where '.event_type=="alert" and .policy_verdict.rule=="no-admin"')" 10 \
    "ten alerts of no-admin"
nginx_served_admin && fail "nginx served /admin"

# The directory holds the pcaps of the last three flows.
pcaps=$(cd "$CAPS" && ls -- *.pcap | sort)
expect_eq "$(echo "$pcaps" | wc -l)" 3 "three pcaps kept"
want=$(jq -r 'select(.event_type=="alert" and .policy_verdict.rule=="no-admin" and .src_port > 41007)
    | .capture_file | split("/") | last' "$EVENTS" | sort)
expect_eq "$pcaps" "$want" "the pcaps kept are those of the flows from ports 41008-41010"
for f in $pcaps; do
    [ "$(stat -c %a "$CAPS/$f")" = 600 ] || fail "$f mode $(stat -c %a "$CAPS/$f")"
    [ "$(stat -c %a "$CAPS/$f.json")" = 600 ] || fail "$f.json mode $(stat -c %a "$CAPS/$f.json")"
    uri=$(tshark -r "$CAPS/$f" -Y http.request -T fields -e http.request.uri 2>/dev/null | sort -u) ||
        fail "tshark -r $f"
    [ "$uri" = "/admin?n=$(( $(jq -r .src_port "$CAPS/$f.json") - 41000 ))" ] ||
        fail "$f: tshark shows request '$uri'"
    tshark -r "$CAPS/$f" -T fields -e tcp.flags.syn -e tcp.flags.ack 2>/dev/null | head -1 |
        grep -qE '^(1|True)\s+(0|False)$' || fail "$f does not start with the SYN"
done
ok "each kept pcap is 0600 with a 0600 sidecar, starts at the SYN and shows its request in tshark"

m=$(metrics) || fail "metrics"
echo "$m" | grep -qE '^palisade_capture_removed_total 7$' || fail "metrics: removed $(echo "$m" | grep removed_total)"
echo "$m" | grep -qE '^palisade_capture_limit_total\{limit="dir_files"\} 7$' || fail "metrics: dir_files limit"
echo "$m" | grep -qE '^palisade_capture_files_total 10$' || fail "metrics: files"
echo "$m" | grep -qE '^palisade_capture_dir_files 3$' || fail "metrics: dir files gauge"
ok "metrics count 10 files, 7 removals"
st=$($CTL status) || fail "palisadectl status"
expect_eq "$(echo "$st" | jq .flow_captures.removed)" 7 "status: seven removals"

js=$($CTL captures --format json) || fail "palisadectl captures --format json"
expect_eq "$(echo "$js" | jq '.captures | length')" 3 "captures lists three files"
expect_eq "$(echo "$js" | jq -r '[.captures[] | select(.bytes > 0 and .policy_verdict.rule == "no-admin"
    and .alert.signature != null and .src_workload.name == "client-0" and .dest_port == 80)]
    | map(.src_port) | sort | join(",")')" 41008,41009,41010 \
    "each listed file has its size and its alert (rule, signature, ports, workloads)"
for f in $pcaps; do
    size=$(( $(stat -c %s "$CAPS/$f") + $(stat -c %s "$CAPS/$f.json") ))
    expect_eq "$(echo "$js" | jq --arg f "$f" '.captures[] | select(.file == $f) | .bytes')" "$size" \
        "$f: listed size is the file's and its sidecar's"
done
tab=$($CTL captures) || fail "palisadectl captures"
echo "$tab"
rows=$(echo "$tab" | grep -E '^[0-9]+-no-admin\.pcap( \*)? +[0-9]+ +[0-9]+ +no-admin +20[0-9]{2}-' |
    grep -E '10\.99\.1\.2:410(08|09|10) shop/client-0 +10\.99\.2\.2:80 shop/server-0 +palisade no-admin' | wc -l)
expect_eq "$rows" 3 "the table has a row per file: size, flow, rule, alert time, ends, workloads, signature"
live_stop

# A restart over the same directory, bounded by bytes: the files found count.
echo "not a capture" >"$CAPS/notes.txt"
LIMIT=4096
live_start --nfqueue 0 --policy "$T/policy.yaml" --inventory "$T/inventory.yaml" \
    --capture-dir "$CAPS" --capture-max-bytes 4K
ours() { find "$CAPS" -maxdepth 1 -type f \( -name '*.pcap' -o -name '*.pcap.json' \) -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }
js=$($CTL captures --format json) || fail "palisadectl captures"
expect_eq "$(echo "$js" | jq '[.captures[] | select(.found_at_start)] | length')" 3 \
    "the three files found at start are indexed"
expect_eq "$(echo "$js" | jq .usage.bytes)" "$(ours)" "their bytes count"
for i in $(seq 1 8); do
    ns_exec cli curl -s -o /dev/null --max-time 5 --local-port $((42000 + i)) \
        "http://$SRV_IP/admin?m=$i"
    sleep 0.2
    b=$(ours)
    [ "$b" -le "$LIMIT" ] || fail "after request $i Palisade's files hold $b bytes > $LIMIT"
done
ok "Palisade's files stayed within 4K ($(ours) bytes at the end)"
last=$(jq -r 'select(.event_type=="alert" and .src_port == 42008) | .capture_file' "$EVENTS")
[ -f "$last" ] || fail "the newest capture $last is not kept"
expect_eq "$(cat "$CAPS/notes.txt")" "not a capture" "a file of someone else's is untouched"
js=$($CTL captures --format json) || fail "palisadectl captures"
[ "$(echo "$js" | jq '[.captures[] | select(.found_at_start)] | length')" = 0 ] ||
    fail "files found at start outlived newer ones"
removed=$(metrics | sed -nE 's/^palisade_capture_removed_total ([0-9]+)$/\1/p')
[ "${removed:-0}" -ge 3 ] || fail "metrics: removed $removed"
metrics | grep -qE '^palisade_capture_limit_total\{limit="dir_bytes"\} [1-9]' || fail "metrics: dir_bytes limit"
ok "the byte bound removed $removed files, the found ones first"
live_stop
echo "PASS nfqueue-captures"
