#!/usr/bin/env bash
# Records real dig <-> dnsmasq exchanges over UDP and TCP for the DNS parser's tests and
# extracts each flow's payload into proto-parsers/src/dns/testdata/.
# Usage: sudo bash tests/data/dns/record.sh      (see README.md beside this file)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
FIX="$ROOT/proto-parsers/src/dns/testdata"
source "$ROOT/tests/netns/lib.sh"
netns_init
T=$(ns_tmp)
export LC_ALL=C
C4=10.99.8.1 S4=10.99.8.2

ns_create cli srv
ns_veth cli eth0 srv eth0
ns_addr cli eth0 $C4/24
ns_addr srv eth0 $S4/24
# Authoritative for x. only, no upstream: names it does not know are NXDOMAIN.
ns_spawn srv dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --bind-interfaces --listen-address=$S4 --pid-file= --user=root --local=/x/ \
    --address=/b.x/10.99.8.20 \
    --host-record=a.x,10.99.8.10,fd00:99:8::10 --cname=www.x,a.x \
    --txt-record=t.x,"v=spf1 -all","second string" --mx-host=x,mail.x,10 --log-facility=-
ns_wait_udp srv 53
ns_wait_tcp srv $S4 53
ns_settle cli srv

d() { ns_exec cli dig +tries=1 +time=2 @$S4 "$@"; }
ns_capture cli eth0 "$T/dns-udp.pcap" udp port 53
d a.x A; d a.x AAAA; d t.x TXT; d nope.x A; d WWW.X A; d x MX; d b.x A
ns_capture_stop "$T/dns-udp.pcap"
ns_capture cli eth0 "$T/dns-tcp.pcap" tcp port 53
d +tcp a.x AAAA
ns_wait_closed cli
# Several queries in one TCP connection.
d +tcp +keepopen a.x A www.x A nope.x TXT t.x TXT
ns_wait_closed cli
ns_capture_stop "$T/dns-tcp.pcap"

cp "$T/dns-udp.pcap" "$T/dns-tcp.pcap" "$HERE/"
mkdir -p "$FIX"
python3 "$ROOT/tests/data/redis/segments.py" "$HERE/dns-udp.pcap" udp 53 "$FIX/udp"
python3 "$ROOT/tests/data/redis/segments.py" "$HERE/dns-tcp.pcap" tcp 53 "$FIX/tcp"
{ dnsmasq --version | head -1; dig -v 2>&1; tshark --version | head -1; } >"$HERE/recorded-with.txt"
