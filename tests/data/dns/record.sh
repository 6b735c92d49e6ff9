#!/usr/bin/env bash
# Records real dig <-> dnsmasq exchanges over UDP and TCP for the DNS parser's tests and
# extracts each flow's payload into proto-parsers/src/dns/testdata/.
# Usage: sudo bash tests/data/dns/record.sh [CAPTURE...]   (see README.md beside this file)
# CAPTURE is one of: basic flags edns types empty junk fwdptr (default: all of them).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
FIX="$ROOT/proto-parsers/src/dns/testdata"
source "$ROOT/tests/netns/lib.sh"
ALL=(basic flags edns types empty junk fwdptr)
WANT=("$@")
[ ${#WANT[@]} -gt 0 ] || WANT=("${ALL[@]}")
for w in "${WANT[@]}"; do
    [[ " ${ALL[*]} " == *" $w "* ]] || { echo "unknown capture '$w' (one of: ${ALL[*]})" >&2; exit 2; }
done
netns_init
T=$(ns_tmp)
export LC_ALL=C
C4=10.99.8.1 S4=10.99.8.2
# SHA-256 of nothing: the fingerprint/association data of the SSHFP and TLSA records.
SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

ns_create cli srv
ns_veth cli eth0 srv eth0
ns_addr cli eth0 $C4/24
ns_addr srv eth0 $S4/24
# Authoritative for x. only, no upstream: names it does not know are NXDOMAIN.
# --dns-rr serves any type from hex RDATA (nothing after the type: empty RDATA).
ns_spawn srv dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
    --bind-interfaces --listen-address=$S4 --pid-file= --user=root --local=/x/ \
    --address=/b.x/10.99.8.20 \
    --host-record=a.x,10.99.8.10,fd00:99:8::10 --cname=www.x,a.x \
    --txt-record=t.x,"v=spf1 -all","second string" --mx-host=x,mail.x,10 \
    --dns-rr=n.x,10,deadbeef \
    --dns-rr=h.x,13,065044502d313104554e4958 \
    --dns-rr=s.x,44,0402$SHA \
    --dns-rr=_443._tcp.w.x,52,030101$SHA \
    --dns-rr=_http._tcp.w.x,256,000a000168747470733a2f2f772e782f \
    --dns-rr=x,257,000569737375656c657473656e63727970742e6f7267 \
    --dns-rr=e.x,10 --dns-rr=e.x,16 --dns-rr=e.x,42 \
    --log-facility=-
ns_wait_udp srv 53
ns_wait_tcp srv $S4 53
ns_settle cli srv

d() { ns_exec cli dig +tries=1 +time=2 @$S4 "$@"; }
# extract NAME: each UDP flow and TCP connection of $T/dns-NAME.pcap into testdata.
extract() {
    cp "$T/dns-$1.pcap" "$HERE/"
    mkdir -p "$FIX"
    python3 "$ROOT/tests/data/redis/segments.py" "$HERE/dns-$1.pcap" udp 53 "$FIX/$1-udp"
    python3 "$ROOT/tests/data/redis/segments.py" "$HERE/dns-$1.pcap" tcp 53 "$FIX/$1-tcp"
}

basic() {
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
}

# Header flags dig can set in a query: the reserved Z bit, CD, AA; AD is dig's default.
flags() {
    ns_capture cli eth0 "$T/dns-flags.pcap" port 53
    d +zflag a.x A; d +cdflag a.x A; d +noadflag +aaflag a.x A
    d +zflag +cdflag nope.x A
    d +tcp +zflag +cdflag a.x A
    ns_wait_closed cli
    ns_capture_stop "$T/dns-flags.pcap"
    extract flags
}

# EDNS(0) OPT records of every shape dig makes.
edns() {
    ns_capture cli eth0 "$T/dns-edns.pcap" port 53
    d +cookie a.x A
    d +subnet=10.99.0.0/24 a.x A
    d +padding=128 a.x A
    # dig 9.18 ignores sizes over 16384 or so; 0 is legal (read as 512 by servers).
    d +bufsize=16384 a.x A
    d +bufsize=0 a.x A
    d +nsid +expire +subnet=fd00:99::/56 +ednsopt=65001:c0ffee a.x A
    d +edns=1 +noednsnegotiation a.x A
    d +dnssec +nocookie t.x TXT
    d +tcp +padding=468 +subnet=10.99.0.0/24 a.x A
    ns_wait_closed cli
    ns_capture_stop "$T/dns-edns.pcap"
    extract edns
}

# Record types beyond the common ones, types nothing serves, and unassigned numbers.
types() {
    ns_capture cli eth0 "$T/dns-types.pcap" port 53
    d n.x NULL; d h.x HINFO; d s.x SSHFP; d _443._tcp.w.x TLSA; d _http._tcp.w.x URI
    d x CAA; d +norecurse a.x SSHFP; d +norecurse nope.x TLSA; d a.x TYPE262
    d a.x TYPE65280; d x ANY
    d +tcp +keepopen s.x SSHFP x CAA a.x TYPE65280
    ns_wait_closed cli
    ns_capture_stop "$T/dns-types.pcap"
    extract types
}

# Answers with RDLENGTH 0, and an UPDATE whose delete carries no RDATA (dnsmasq does not
# implement UPDATE: it answers with an error).
empty() {
    ns_capture cli eth0 "$T/dns-empty.pcap" port 53
    d e.x NULL; d e.x APL; d e.x TXT
    printf 'server %s\nzone x\nupdate delete old.x A\nupdate add new.x 60 A 10.99.8.30\nsend\n' \
        $S4 | ns_exec cli nsupdate -t 2 -r 0 || true
    ns_capture_stop "$T/dns-empty.pcap"
    extract empty
}

# Datagrams that are not DNS queries, then a real query, all from 10.99.8.1:40053: one flow.
junk() {
    ns_capture cli eth0 "$T/dns-junk.pcap" port 53
    ns_exec cli python3 "$HERE/craft.py" junk $C4 40053 $S4
    d -b "$C4#40053" a.x A
    ns_capture_stop "$T/dns-junk.pcap"
    extract junk
}

# A query whose name is a forward compression pointer (crafted by craft.py, answered by
# dnsmasq): once inside a flow dig opened, once as a flow's first datagram.
fwdptr() {
    ns_capture cli eth0 "$T/dns-fwdptr.pcap" port 53
    d -b "$C4#40054" a.x A
    ns_exec cli python3 "$HERE/craft.py" fwdptr $C4 40054 $S4
    d -b "$C4#40054" b.x A
    ns_exec cli python3 "$HERE/craft.py" fwdptr $C4 40055 $S4
    ns_capture_stop "$T/dns-fwdptr.pcap"
    extract fwdptr
}

for w in "${WANT[@]}"; do
    "$w"
done
{ dnsmasq --version | head -1; dig -v 2>&1; tshark --version | head -1; } >"$HERE/recorded-with.txt"
