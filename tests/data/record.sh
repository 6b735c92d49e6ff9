#!/usr/bin/env bash
# Re-records the captures in tests/data/ from real clients and servers (curl, nginx,
# redis-cli, redis-server, dig, dnsmasq, ping) in throwaway network namespaces.
# See README.md beside this file for what each capture holds.
#
# Usage: sudo bash tests/data/record.sh [OUT_DIR]     (default: this directory)
# Needs: bash tests/peers/install.sh (tcpdump, tshark, nginx, redis, dnsmasq, ...).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=$(mkdir -p "${1:-$HERE}" && cd "${1:-$HERE}" && pwd)
# shellcheck source=../netns/lib.sh
source "$HERE/../netns/lib.sh"
netns_init
T=$(ns_tmp)
export LC_ALL=C

# --- servers -------------------------------------------------------------------------

# nginx NS TAG ADDR4 ADDR6: a foreground nginx on port 80 with a tiny "shop" API.
start_nginx() {
    local n=$1 tag=$2 a4=$3 a6=$4 dir="$T/nginx-$2"
    mkdir -p "$dir/www"
    cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
user root;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen $a4:80;
        listen [$a6]:80;
        server_name orders.shop;
        root $dir/www;
        location = / {
            default_type text/html;
            return 200 "<html><body><h1>shop</h1></body></html>\n";
        }
        location /api/orders/ {
            default_type application/json;
            return 200 '{"id":7,"item":"mug","qty":2,"status":"shipped"}\n';
        }
        location = /api/orders {
            default_type application/json;
            return 201 '{"id":9,"status":"created"}\n';
        }
    }
}
EOF
    ns_spawn "$n" nginx -c "$dir/nginx.conf" -e "$dir/error.log"
    ns_wait_tcp "$n" "$a4" 80
}

start_redis() {
    local n=$1 a4=$2 a6=$3
    ns_spawn "$n" redis-server --port 6379 --bind "$a4" "$a6" --save '' --appendonly no \
        --daemonize no --protected-mode no --dir "$T"
    ns_wait_tcp "$n" "$a4" 6379
}

start_dnsmasq() {
    local n=$1 a4=$2 a6=$3
    ns_spawn "$n" dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
        --bind-interfaces --listen-address="$a4" --listen-address="$a6" --pid-file= \
        --user=root --local=/shop/ \
        --host-record="orders.shop,$a4,$a6" --host-record="cache.shop,$a4,$a6" \
        --log-facility=-
    ns_wait_udp "$n" 53
    ns_wait_tcp "$n" "$a4" 53
}

# dumpcap NS IF FILE: a pcapng capture by Wireshark's own capture engine.
start_dumpcap() {
    ns_spawn "$1" dumpcap -i "$2" -w "$3" -q
    DUMPCAP_PID=$NS_LAST_PID
    # dumpcap -q still reports "Capturing on ..." once the ring is open.
    ns_wait_log "$NS_LAST_LOG" "Capturing on" || { sleep 1; true; }
}

# --- the spine run: one client, one server, every protocol once ----------------------

spine_traffic() {
    local c=$1 s4=$2 s6=$3
    # Three requests on one keep-alive connection (curl reuses it), the last a 404.
    ns_exec "$c" curl -sS --http1.1 -H 'User-Agent: palisade-test/1' \
        -o /dev/null -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
        "http://$s4/" "http://$s4/api/orders/7" "http://$s4/missing"
    # A POST with a JSON body over IPv6.
    ns_exec "$c" curl -sS --http1.1 -H 'User-Agent: palisade-test/1' \
        -H 'Content-Type: application/json' -d '{"item":"mug","qty":2}' \
        -o /dev/null -w '%{http_code}\n' "http://[$s6]/api/orders"
    # One connection per command: redis-cli fed from a pipe would first fetch
    # COMMAND DOCS (150 KB of reply), with arguments it sends just the command.
    ns_exec "$c" redis-cli -h "$s4" PING
    ns_exec "$c" redis-cli -h "$s4" SET greeting hello
    ns_exec "$c" redis-cli -h "$s4" GET greeting
    ns_exec "$c" dig +short +tries=1 @"$s4" orders.shop A
    ns_exec "$c" dig +short +tries=1 +tcp @"$s4" cache.shop AAAA
    ns_exec "$c" dig +tries=1 @"$s6" missing.shop A | grep -o 'status: [A-Z]*'
    ns_exec "$c" ping -q -c 2 -i 0.2 "$s4" | tail -1
    ns_exec "$c" ping -6 -q -c 2 -i 0.2 "$s6" | tail -1
}

record_spine() {
    echo "== spine: cli 10.99.0.1/fd00:99::1 <-veth-> srv 10.99.0.2/fd00:99::2"
    ns_create cli srv
    ns_veth cli eth0 srv eth0
    ns_addr cli eth0 10.99.0.1/24 fd00:99::1/64
    ns_addr srv eth0 10.99.0.2/24 fd00:99::2/64
    start_nginx srv spine 10.99.0.2 fd00:99::2
    start_redis srv 10.99.0.2 fd00:99::2
    start_dnsmasq srv 10.99.0.2 fd00:99::2
    ns_settle cli srv
    ns_forget cli srv

    # Five captures of the same run: the same packets in every file format we read.
    ns_capture cli eth0 "$T/spine-eth.pcap"
    ns_capture cli eth0 "$T/spine-eth-nsec.pcap" --time-stamp-precision=nano
    ns_capture srv any "$T/spine-any-sll2.pcap" -y LINUX_SLL2
    ns_capture srv any "$T/spine-any-sll.pcap" -y LINUX_SLL
    start_dumpcap cli eth0 "$T/spine-eth.pcapng"

    spine_traffic cli 10.99.0.2 fd00:99::2
    ns_wait_closed cli
    ns_wait_closed srv

    ns_capture_stop "$T/spine-eth.pcap"
    ns_capture_stop "$T/spine-eth-nsec.pcap"
    ns_capture_stop "$T/spine-any-sll2.pcap"
    ns_capture_stop "$T/spine-any-sll.pcap"
    ns_stop "$DUMPCAP_PID"
    python3 "$HERE/pcap_swap.py" "$T/spine-eth.pcap" "$T/spine-eth-be.pcap"
    # Every file of this run must hold the same packets; a capture that missed one is
    # not a reference. (The SLL/SLL2 ones only see the server's side, which is the same
    # set of frames on a point-to-point veth.)
    local f n want
    want=$(capinfos -c -M "$T/spine-eth.pcap" | awk -F': *' '/Number of packets/ {print $2}')
    for f in spine-eth-nsec.pcap spine-eth.pcapng spine-any-sll2.pcap spine-any-sll.pcap; do
        n=$(capinfos -c -M "$T/$f" | awk -F': *' '/Number of packets/ {print $2}')
        if [ "$n" != "$want" ]; then
            echo "record: $f has $n packets, spine-eth.pcap has $want: run again" >&2
            return 1
        fi
    done
}

# --- VLAN runs: tags pushed by tc eBPF on the veth (see vlan_tag.py for why) ----------

record_vlan() {
    local name=$1 net=$2
    shift 2
    local tags=("$@") c="${name}c" s="${name}s"
    echo "== $name: tags ${tags[*]} on a veth, 10.99.$net.1 <-> 10.99.$net.2"
    ns_create "$c" "$s"
    ns_veth "$c" eth0 "$s" eth0
    ns_addr "$c" eth0 "10.99.$net.1/24" "fd00:99:$net::1/64"
    ns_addr "$s" eth0 "10.99.$net.2/24" "fd00:99:$net::2/64"
    ns_vlan "$c" eth0 push "${tags[@]}"
    ns_vlan "$c" eth0 pop "${#tags[@]}"
    ns_vlan "$s" eth0 push "${tags[@]}"
    ns_vlan "$s" eth0 pop "${#tags[@]}"
    start_nginx "$s" "$name" "10.99.$net.2" "fd00:99:$net::2"
    ns_settle "$c" "$s"
    ns_forget "$c" "$s"
    ns_capture "$c" eth0 "$T/vlan-$name.pcap"
    ns_exec "$c" curl -sS --http1.1 -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
        "http://10.99.$net.2/api/orders/7" "http://10.99.$net.2/missing"
    ns_exec "$c" curl -sS --http1.1 -o /dev/null -w '%{http_code}\n' "http://[fd00:99:$net::2]/"
    ns_wait_closed "$c"
    ns_wait_closed "$s"
    ns_capture_stop "$T/vlan-$name.pcap"
}

record_spine
record_vlan 8021q 100 0x8100:100
record_vlan qinq 200 0x88a8:200 0x8100:300

# --- publish -------------------------------------------------------------------------

FILES=(spine-eth.pcap spine-eth-nsec.pcap spine-eth-be.pcap spine-eth.pcapng
    spine-any-sll2.pcap spine-any-sll.pcap vlan-8021q.pcap vlan-qinq.pcap)
for f in "${FILES[@]}"; do
    install -m 644 "$T/$f" "$OUT/$f"
    tshark -r "$OUT/$f" -q -z conv,tcp -z conv,udp >"$OUT/$f.tshark-conv.txt" 2>/dev/null
done
{
    echo "recorded: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -sr)"
    tcpdump --version 2>&1 | head -2
    dumpcap --version 2>/dev/null | head -1
    tshark --version 2>/dev/null | head -1
    nginx -v 2>&1
    redis-server --version
    redis-cli --version
    dnsmasq --version | head -1
    dig -v 2>&1
    curl --version | head -1
    ping -V
} >"$OUT/recorded-with.txt"
(cd "$OUT" && sha256sum "${FILES[@]}" >SHA256SUMS)
ls -l "${FILES[@]/#/$OUT/}"
