#!/usr/bin/env bash
# TCP-level evasion tricks, crafted live with scapy (tests/live/tcp_tricks.py) in the client
# namespace, through palisade run --nfqueue (FORWARD topology) against real nginx, under a
# policy that denies /admin: a decoy with a bad TCP checksum and one without the ACK flag
# at the request's sequence numbers (decoy first), a second SYN with another ISN after the
# handshake, and a segment lost behind the firewall then retransmitted with other bytes.
#
# scapy owns these connections: the client kernel's own RSTs for them are dropped by an
# OUTPUT rule (their source ports, 61000 and up, are outside the ephemeral range). The
# server drops segments arriving with TTL 32 (sent with 33, one hop through the router):
# that is how a segment palisade passed is lost before the server.
#
# Each trick is played twice: first with no daemon bound to the queue (--queue-bypass),
# where nginx must serve /admin (so the trick is real), then through palisade, where nginx
# must never serve /admin (palisade denies it by the rule, or resets the flow as
# uninspectable). An honest scapy request is answered in both phases.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
START=$(date +%s)
/usr/bin/python3 -c 'import scapy' 2>/dev/null ||
    fail "python3-scapy is missing (tests/peers/install.sh installs it)"
live_topology_nfqueue
T=$(ns_tmp)
live_nginx
live_write_inventory "$T/inventory.yaml"
cat >"$T/policy.yaml" <<'YAML'
apiVersion: palisade.dev/v1
kind: SegmentationPolicy
metadata: {name: live-evasion-tcp}
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
ns_exec cli iptables -A OUTPUT -p tcp --sport 61000:65535 --tcp-flags RST RST -j DROP ||
    fail "iptables in cli"
ns_exec srv iptables -A INPUT -p tcp --dport 80 -m ttl --ttl-eq 32 -j DROP ||
    fail "iptables in srv"

TRICKS=(bad-checksum-decoy no-ack-decoy second-syn retransmit-different)
# play FIRST_SPORT TRICK: one trick on a fresh connection; prints tcp_tricks.py's line.
play() {
    ns_exec cli /usr/bin/python3 "$HERE_LIVE/tcp_tricks.py" "$CLI_IP" "$SRV_IP" 80 "$1" "$2" 2>&1
}

# 1. No daemon bound: the machinery works and every trick gets /admin served.
out=$(play 61000 honest)
echo "$out" | grep -q "status=200" || fail "without palisade, scapy's honest GET: $out"
ok "without palisade, scapy's honest GET is answered ($out)"
port=61010
for t in "${TRICKS[@]}"; do
    : >"$NGINX_LOG"
    out=$(play "$port" "$t")
    port=$((port + 1))
    nginx_served_admin || fail "without palisade, trick $t did not get /admin served: $out; log: $(cat "$NGINX_LOG")"
    ok "without palisade, $t gets /admin served ($out)"
done

# 2. Through palisade: none does.
live_start --nfqueue 0 --policy "$T/policy.yaml" --inventory "$T/inventory.yaml"
port=61100
for t in "${TRICKS[@]}"; do
    : >"$NGINX_LOG"
    : >"$NGINX_ERR"
    mark=$(events_count)
    out=$(play "$port" "$t")
    port=$((port + 1))
    how=$(alerts_since "$mark")
    if nginx_served_admin; then
        fail "trick $t got /admin served through palisade (client: $out; palisade: ${how:-no alert}): $(grep admin "$NGINX_LOG")"
    fi
    [ -n "$how" ] || fail "trick $t: palisade wrote no alert (client: $out)"
    seen="never saw /admin"
    nginx_saw_admin && seen="never served /admin (read a head cut short by the reset: 400)"
    ok "$t: nginx $seen; palisade: $how; client: $out"
done
out=$(play 61200 honest)
echo "$out" | grep -q "status=200" || fail "through palisade, scapy's honest GET: $out"
ok "through palisade, scapy's honest GET is answered ($out)"
body=$(ns_exec cli curl -sS --max-time 5 "http://$SRV_IP/api/orders/1") || fail "honest curl GET failed"
expect_eq "$body" "order 1" "honest curl GET answered"
live_stop
echo "nfqueue-evasion-tcp: $(($(date +%s) - START)) s"
echo "PASS nfqueue-evasion-tcp"
