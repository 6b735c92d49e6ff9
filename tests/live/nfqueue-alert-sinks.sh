#!/usr/bin/env bash
# palisade run --alert-sink between curl and nginx: the alert of a denied request reaches
# rsyslogd over UDP and over TCP (octet counting) with the rule and both workloads in the
# message, and webhooks over HTTP and HTTPS (a private CA given with --alert-sink-ca) as a
# JSON array of the alert records the event file has. Dead receivers (a webhook and a
# syslog+tcp sink on ports where nothing listens) are counted as failures while requests
# are judged as fast as ever. --alert-rate 1 keeps a burst of 10 alerts from the sinks
# but one or two, counts the rest and sends a summary.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
live_topology_nfqueue
T=$(ns_tmp)
HERE=$(cd "$(dirname "$0")" && pwd)

command -v rsyslogd >/dev/null || fail "rsyslogd is not installed (bash tests/peers/install.sh)"

live_nginx
live_write_inventory "$T/inventory.yaml"
cat >"$T/policy.yaml" <<'YAML'
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: live-sinks}
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
      http: [{methods: [GET], paths: ["/api/orders/*"]}]
      action: allow
    - id: no-delete
      from: [client]
      to: [server]
      app: http
      http: [{methods: [DELETE]}]
      action: deny
      severity: high
YAML

# rsyslogd of our own in the router namespace (where palisade runs): UDP and TCP inputs on
# loopback, everything to one file with the input, PRI, app and MSGID in front of MSG.
mkdir -p "$T/rsyslog-work"
cat >"$T/rsyslog.conf" <<CONF
global(workDirectory="$T/rsyslog-work" maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
input(type="imudp" address="127.0.0.1" port="5514")
input(type="imtcp" address="127.0.0.1" port="5515")
template(name="seen" type="string" string="%inputname% pri=%pri% app=%app-name% msgid=%msgid% %msg%\n")
*.* action(type="omfile" file="$T/syslog.log" template="seen")
CONF
SYSLOG="$T/syslog.log"
ns_spawn rtr rsyslogd -n -f "$T/rsyslog.conf" -i "$T/rsyslogd.pid"
ns_wait_tcp rtr 127.0.0.1 5515 || fail "rsyslogd did not start"
ns_wait_udp rtr 5514 || fail "rsyslogd imudp did not start"

# A test CA, and a server certificate for 127.0.0.1 signed by it.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj "/CN=palisade test CA" -keyout "$T/ca.key" -out "$T/ca.pem" 2>/dev/null ||
    fail "openssl: test CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$T/srv.key" -out "$T/srv.csr" 2>/dev/null || fail "openssl: server key"
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n' \
    >"$T/srv.ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
    -days 2 -extfile "$T/srv.ext" -out "$T/srv.pem" 2>/dev/null || fail "openssl: sign"

HOOK="$T/hook.jsonl"
HOOKS="$T/hooks.jsonl"
ns_spawn rtr python3 "$HERE/webhook_recv.py" 8088 "$HOOK"
ns_spawn rtr python3 "$HERE/webhook_recv.py" 8443 "$HOOKS" "$T/srv.pem" "$T/srv.key"
ns_wait_tcp rtr 127.0.0.1 8088 || fail "webhook receiver did not start"
ns_wait_tcp rtr 127.0.0.1 8443 || fail "TLS webhook receiver did not start"

# Bad sink options are bad input, named, before anything starts.
out=$("$PALISADE" run --nfqueue 0 --policy "$T/policy.yaml" --alert-sink ftp://x/ 2>&1)
expect_eq "$?" 2 "an unknown sink scheme exits 2"
echo "$out" | grep -q -- "--alert-sink" || fail "the error does not name --alert-sink: $out"
out=$("$PALISADE" run --nfqueue 0 --policy "$T/policy.yaml" --alert-sink https://127.0.0.1:8443/ \
    --alert-sink-ca "$T/missing.pem" 2>&1)
expect_eq "$?" 2 "an unreadable CA file exits 2"
echo "$out" | grep -q -- "--alert-sink-ca" || fail "the error does not name --alert-sink-ca: $out"

# 1. Four live receivers and two dead ones at once.
# Warnings (a sink failing, the rate-limit summary) are logged at level warn: the daemon
# runs with PALISADE_LOG=warn (lib.sh's PALISADE_LOG is the log file's path).
printf '#!/bin/sh\nPALISADE_LOG=warn exec "%s" "$@"\n' "$PALISADE" >"$T/palisade-warn"
chmod 755 "$T/palisade-warn"
PALISADE="$T/palisade-warn"
live_start --nfqueue 0 --policy "$T/policy.yaml" --inventory "$T/inventory.yaml" --log-all \
    --alert-sink syslog://127.0.0.1:5514 \
    --alert-sink "syslog+tcp://127.0.0.1:5515?facility=local0" \
    --alert-sink "http://alice:s3cret@127.0.0.1:8088/hook?token=t0ken" \
    --alert-sink https://127.0.0.1:8443/hook --alert-sink-ca "$T/ca.pem" \
    --alert-sink "http://bob:hunter2@127.0.0.1:5599/dead" \
    --alert-sink syslog+tcp://127.0.0.1:5598

body=$(ns_exec cli curl -sS --max-time 5 "http://$SRV_IP/api/orders/1") || fail "allowed GET failed"
expect_eq "$body" "order 1" "allowed GET answered"
start=$(date +%s%N)
ns_exec cli curl -sS --max-time 5 -o /dev/null -X DELETE "http://$SRV_IP/api/orders/1" 2>/dev/null
rc=$?
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_eq "$rc" 56 "denied DELETE reset"
[ "$ms" -lt 1000 ] || fail "denied DELETE took ${ms} ms with dead sinks configured"

# rsyslog: over UDP and over TCP, RFC 5424 parsed (app-name, MSGID), the rule and both
# workloads in the message.
for input in imudp imtcp; do
    ns_wait_log "$SYSLOG" "^$input .*msgid=alert .*no-delete" 10 || fail "no $input alert in rsyslog"
    line=$(grep -E "^$input .*msgid=alert " "$SYSLOG" | head -1)
    for want in "app=palisade" "by rule no-delete" "client-0 (namespace shop, group client)" \
        "server-0 (namespace shop, group server)" '"signature_id"' "blocked"; do
        [[ "$line" == *"$want"* ]] || fail "$input line lacks '$want': $line"
    done
    ok "rsyslog got the alert over $input: rule, both workloads, signature, action"
done
# The rule's `severity: high` is the alert's severity 1, syslog's crit (2):
# authpriv (10) * 8 + 2 = 82 by default; local0 (16) * 8 + 2 = 130 as asked.
grep -qE '^imudp pri=82 ' "$SYSLOG" || fail "UDP: PRI is not authpriv.crit: $(head -2 "$SYSLOG")"
grep -qE '^imtcp pri=130 ' "$SYSLOG" || fail "TCP: PRI is not local0.crit: $(head -2 "$SYSLOG")"
ok "syslog PRI: the facility asked for, severity from the alert"

# The webhooks: a JSON array holding the alert record exactly as the event file has it.
ns_wait_log "$HOOK" 'no-delete' 10 || fail "the webhook got no alert"
ns_wait_log "$HOOKS" 'no-delete' 10 || fail "the TLS webhook got no alert"
sleep 0.3
want=$(jq -c -S 'select(.event_type=="alert" and .policy_verdict.rule=="no-delete")' "$EVENTS" | head -1)
[ -n "$want" ] || fail "no alert in the event file"
for f in "$HOOK" "$HOOKS"; do
    expect_eq "$(jq -r '.body | type' "$f" | sort -u)" array "$(basename "$f"): bodies are JSON arrays"
    got=$(jq -c -S '.body[] | select(.event_type=="alert")' "$f" | head -1)
    expect_eq "$got" "$want" "$(basename "$f"): the alert record as the event file has it"
    n=$(jq '[.body[] | select(.event_type != "alert")] | length' "$f" | sort -u)
    expect_eq "$n" 0 "$(basename "$f"): only alerts (the event file also has http records)"
    expect_eq "$(jq -r .content_type "$f" | sort -u)" application/json "$(basename "$f"): content type"
done
[ "$(events_where '.event_type=="http"')" -ge 1 ] || fail "--log-all wrote no http record"
expect_eq "$(jq -r .auth "$HOOK" | sort -u)" "Basic $(printf alice:s3cret | base64)" \
    "user info becomes Basic authorization"
expect_eq "$(jq -r .path "$HOOK" | sort -u)" "/hook?token=t0ken" "the webhook's path and query"

# Dead receivers: counted, while traffic is judged as before.
ok_count=0
start=$(date +%s%N)
for i in $(seq 1 50); do
    b=$(ns_exec cli curl -sS --max-time 5 "http://$SRV_IP/api/orders/1") && [ "$b" = "order 1" ] &&
        ok_count=$((ok_count + 1))
done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
expect_eq "$ok_count" 50 "50 allowed GETs answered with dead sinks configured"
[ "$ms" -lt 15000 ] || fail "50 allowed GETs took ${ms} ms"
ok "50 allowed GETs in ${ms} ms"
for i in 1 2 3; do
    start=$(date +%s%N)
    ns_exec cli curl -sS --max-time 5 -o /dev/null -X DELETE "http://$SRV_IP/api/orders/1" 2>/dev/null
    rc=$?
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    expect_eq "$rc" 56 "denied DELETE $i reset"
    [ "$ms" -lt 1000 ] || fail "denied DELETE $i took ${ms} ms with dead sinks configured"
done
# The dead webhook tries each batch 4 times over 3.5 s; the dead TCP sink 3 times.
for i in $(seq 1 100); do
    m=$(metrics) || fail "metrics endpoint"
    echo "$m" | grep -qE '^palisade_alert_sink_failed_total\{sink="http://127.0.0.1:5599/dead"\} [1-9]' &&
        echo "$m" | grep -qE '^palisade_alert_sink_failed_total\{sink="syslog\+tcp://127.0.0.1:5598"\} [1-9]' &&
        break
    sleep 0.1
done
echo "$m" | grep -qE '^palisade_alert_sink_failed_total\{sink="http://127.0.0.1:5599/dead"\} [1-9]' ||
    fail "metrics: the dead webhook's failures: $(echo "$m" | grep alert_sink)"
echo "$m" | grep -qE '^palisade_alert_sink_failed_total\{sink="syslog\+tcp://127.0.0.1:5598"\} [1-9]' ||
    fail "metrics: the dead TCP sink's failures: $(echo "$m" | grep alert_sink)"
ok "dead receivers counted as failures"
for s in 'syslog://127.0.0.1:5514' 'syslog\+tcp://127.0.0.1:5515' 'http://127.0.0.1:8088/hook' 'https://127.0.0.1:8443/hook'; do
    echo "$m" | grep -qE "^palisade_alert_sink_sent_total\{sink=\"$s\"\} [1-9]" ||
        fail "metrics: nothing sent to $s: $(echo "$m" | grep alert_sink)"
done
echo "$m" | grep -qE '^palisade_alert_sink_queue_depth\{sink="syslog://127.0.0.1:5514"\} 0$' ||
    fail "metrics: queue depth"
echo "$m" | grep -qE '^palisade_alert_sink_dropped_total\{sink=' || fail "metrics: dropped"
echo "$m" | grep -qE '^palisade_alert_rate_suppressed_total 0$' || fail "metrics: suppressed"
echo "$m" | grep -qE 's3cret|hunter2|alice|bob|t0ken' && fail "metrics leak sink credentials"
ok "metrics per sink, without credentials"
st=$($CTL status) || fail "palisadectl status"
expect_eq "$(echo "$st" | jq '.alert_sinks | length')" 6 "status lists the 6 sinks"
[ "$(echo "$st" | jq '[.alert_sinks[] | select(.sink == "http://127.0.0.1:5599/dead")][0].failed')" -ge 1 ] ||
    fail "status: the dead webhook's failures: $st"
echo "$st" | grep -qE 's3cret|hunter2' && fail "status leaks sink credentials"
ok "palisadectl status has the sink figures"
# Shutdown waits at most 2 s for the dead sinks: live_stop allows 5.
live_stop

# 2. --alert-rate 1: a burst of 10 denied requests sends one or two alerts to the sinks.
#    The TLS webhook, without --alert-sink-ca this time, is not trusted: nothing reaches it.
: >"$HOOK"
hooks_before=$(wc -l <"$HOOKS")
udp_before=$(grep -cE '^imudp .*msgid=alert ' "$SYSLOG")
live_start --nfqueue 0 --policy "$T/policy.yaml" --inventory "$T/inventory.yaml" \
    --alert-sink syslog://127.0.0.1:5514 --alert-sink http://127.0.0.1:8088/hook --alert-rate 1 \
    --alert-sink https://127.0.0.1:8443/hook
alerts_before=$(events_where '.event_type=="alert" and .policy_verdict.rule=="no-delete"')
for i in $(seq 1 10); do
    ns_exec cli curl -sS --max-time 5 -o /dev/null -X DELETE "http://$SRV_IP/api/orders/1" 2>/dev/null
    [ $? -eq 56 ] || fail "burst DELETE $i was not reset"
done
sleep 1.5
n=$(( $(events_where '.event_type=="alert" and .policy_verdict.rule=="no-delete"') - alerts_before ))
expect_eq "$n" 10 "the event file has all 10 alerts"
m=$(metrics) || fail "metrics endpoint"
supp=$(echo "$m" | awk '$1 == "palisade_alert_rate_suppressed_total" {print $2}')
[ "${supp:-0}" -ge 7 ] || fail "suppressed: ${supp:-none}"
ok "--alert-rate 1 kept $supp of 10 alerts from the sinks"
udp=$(( $(grep -cE '^imudp .*msgid=alert ' "$SYSLOG") - udp_before ))
[ "$udp" -ge 1 ] && [ "$udp" -le 3 ] || fail "rsyslog got $udp alerts of the burst"
hook=$(jq '[.body[] | select(.event_type == "alert")] | length' "$HOOK" | awk '{s += $1} END {print s + 0}')
[ "$hook" -ge 1 ] && [ "$hook" -le 3 ] || fail "the webhook got $hook alerts of the burst"
expect_eq "$((udp + supp))" 10 "sent and suppressed add up"
ok "the sinks got $udp alert(s) of the burst"
for i in $(seq 1 100); do
    metrics | grep -qE '^palisade_alert_sink_failed_total\{sink="https://127.0.0.1:8443/hook"\} [1-9]' && break
    sleep 0.1
done
metrics | grep -qE '^palisade_alert_sink_failed_total\{sink="https://127.0.0.1:8443/hook"\} [1-9]' ||
    fail "an untrusted TLS webhook is not counted failed: $(metrics | grep alert_sink)"
expect_eq "$(wc -l <"$HOOKS")" "$hooks_before" "nothing posted to a webhook whose certificate is not trusted"
grep -a 'https://127.0.0.1:8443/hook' "$PALISADE_LOG" | grep -qE 'UnknownIssuer' ||
    fail "the log does not say the certificate was not trusted: $(grep -i sink "$PALISADE_LOG")"
live_stop
# The summary of what was suppressed, at shutdown at the latest: to the log, to syslog
# and, distinguishable from alerts, to the webhook.
grep -q "alert rate limit: $supp alert(s) kept from the sinks" "$PALISADE_LOG" ||
    fail "no summary in the log: $(tail -5 "$PALISADE_LOG")"
grep -qE "^imudp .*msgid=alert_summary .*alert rate limit: [0-9]+ alert\(s\) kept .*no-delete" "$SYSLOG" ||
    fail "no summary in rsyslog: $(tail -3 "$SYSLOG")"
total=$(jq '[.body[] | select(.event_type == "alert_summary") | .alert_summary.suppressed] | add // 0' "$HOOK" |
    awk '{s += $1} END {print s + 0}')
expect_eq "$total" "$supp" "the webhook's alert_summary records count what was suppressed"
ok "summaries of what was suppressed reached the log, syslog and the webhook"
echo "PASS nfqueue-alert-sinks"
