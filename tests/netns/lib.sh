#!/usr/bin/env bash
# Helpers for tests that run real clients and servers in network namespaces.
#
#   source tests/netns/lib.sh
#   netns_init                               # unique prefix, cleanup trap
#   ns_create client server                  # namespaces pal-<pid>-<rand>-client, ...
#   ns_veth client eth0 server eth0          # a veth pair between two namespaces
#   ns_addr client eth0 10.99.0.1/24 fd00:99::1/64
#   ns_addr server eth0 10.99.0.2/24 fd00:99::2/64
#   ns_switch sw                             # or: a bridge in a "switch" namespace ...
#   ns_plug sw client eth0 10.99.0.1/24 fd00:99::1/64   # ... and a host on it
#   ns_spawn server nginx -c "$cfg"          # background process, killed by cleanup
#   ns_wait_tcp server 10.99.0.2 80
#   ns_capture client eth0 out.pcap          # tcpdump, returns once it is listening
#   ns_exec client curl -s http://10.99.0.2/
#   ns_capture_stop out.pcap
#
# Also: ns_route, ns_settle (wait out IPv6 DAD), ns_forget (flush neighbour caches),
# ns_wait_udp, ns_wait_log, ns_wait_closed (no TCP connection left but TIME_WAIT),
# ns_stop PID, ns_vlan (802.1Q/802.1ad tags by tc eBPF), ns_span (SPAN-port mirror).
#
# Everything lives in namespaces this file creates, with 10.99.0.0/16 and fd00:99::/32
# addresses that exist nowhere else, so tests never touch the host's network. Names are
# prefixed per run so parallel runs do not collide. `cleanup` runs on EXIT, INT and TERM,
# kills what was started (only the recorded pids and whatever still runs inside our
# namespaces) and deletes the namespaces; it is safe to call twice.
#
# Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN) and iproute2. No `set -e` here: the
# sourcing script chooses its own error handling.

NS_PREFIX=""
NS_LIST=()
NS_PIDS=()
NS_CAPTURES=()   # entries "file:pid"
NS_TMP=""

# netns_init [prefix]: choose the per-run prefix and install the cleanup trap (it
# replaces the caller's EXIT/INT/TERM traps: a caller with its own exit work should
# call `cleanup` from its own trap, set after this). The
# default is pal-<pid>-<random>, short enough that ifnames derived from it are not needed
# (interfaces are created inside the namespaces, where names need only be locally unique).
netns_init() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "netns: needs root to create network namespaces" >&2
        return 1
    fi
    NS_PREFIX=${1:-pal-$$-$RANDOM}
    NS_TMP=$(mktemp -d "${TMPDIR:-/tmp}/$NS_PREFIX.XXXXXX")
    trap cleanup EXIT
    trap 'cleanup; exit 130' INT
    trap 'cleanup; exit 143' TERM
}

# ns_name NAME: the real namespace name for a short name.
ns_name() { printf '%s-%s' "$NS_PREFIX" "$1"; }

# ns_tmp: a scratch directory removed by cleanup.
ns_tmp() { printf '%s' "$NS_TMP"; }

# ns_create NAME...: create namespaces with loopback up. Router solicitations are turned
# off so captures hold the test's traffic, not the kernel's chatter.
ns_create() {
    local n full
    [ -n "$NS_PREFIX" ] || netns_init || return 1
    for n in "$@"; do
        [[ $n =~ ^[A-Za-z0-9_-]+$ ]] || { echo "netns: bad namespace name '$n'" >&2; return 1; }
        full=$(ns_name "$n")
        ip netns add "$full" || return 1
        NS_LIST+=("$full")
        ip -n "$full" link set lo up
        ip netns exec "$full" sysctl -qw \
            net.ipv6.conf.all.router_solicitations=0 \
            net.ipv6.conf.default.router_solicitations=0 \
            net.ipv6.conf.all.accept_ra=0 \
            net.ipv6.conf.default.accept_ra=0 >/dev/null
    done
}

# ns_exec NAME CMD...: run a command inside a namespace, in the foreground.
ns_exec() {
    local n=$1
    shift
    ip netns exec "$(ns_name "$n")" "$@"
}

# ns_veth NS_A IF_A NS_B IF_B: a veth pair with one end in each namespace, both up.
# Created directly inside the namespaces so no name ever appears in the host's namespace.
ns_veth() {
    local a b
    a=$(ns_name "$1")
    b=$(ns_name "$3")
    ip link add "$2" netns "$a" type veth peer name "$4" netns "$b" || return 1
    if [ "${NS_GSO:-0}" != 1 ]; then
        # veth does TSO, so captures would hold 30 KB "segments" that never exist on a
        # real wire. One segment per GSO packet makes TCP emit MSS-sized frames, as a NIC
        # would. NS_GSO=1 keeps the offload (faster, for throughput tests).
        ip -n "$a" link set "$2" gso_max_segs 1
        ip -n "$b" link set "$4" gso_max_segs 1
    fi
    ip -n "$a" link set "$2" up
    ip -n "$b" link set "$4" up
}

# ns_addr NS IF ADDR/PREFIX...: add IPv4 and/or IPv6 addresses (IPv6 with nodad, so the
# address is usable at once instead of after ~1 s of duplicate detection).
ns_addr() {
    local ns if a
    ns=$(ns_name "$1")
    if=$2
    shift 2
    for a in "$@"; do
        case $a in
            *:*) ip -n "$ns" -6 addr add "$a" dev "$if" nodad || return 1 ;;
            *) ip -n "$ns" addr add "$a" dev "$if" || return 1 ;;
        esac
    done
    ip -n "$ns" link set "$if" up
}

# ns_switch NAME [BRIDGE]: a namespace holding a Linux bridge (default br0) that hosts are
# plugged into. STP off and forward delay 0 so ports forward as soon as they are up.
ns_switch() {
    local br=${2:-br0} ns
    ns_create "$1" || return 1
    ns=$(ns_name "$1")
    # A switch has no addresses: with IPv6 off by default in its namespace, neither the
    # bridge nor any port created later sends MLD/ND chatter of its own.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 \
        net.ipv6.conf.all.disable_ipv6=1 >/dev/null
    ip -n "$ns" link add "$br" type bridge stp_state 0 forward_delay 0 || return 1
    ip -n "$ns" link set "$br" up
}

# ns_plug SWITCH HOST IF [ADDR...] [-- BRIDGE]: connect HOST (created if missing) to the
# switch's bridge by a veth; the switch side is named after the host (truncated to 15).
ns_plug() {
    local sw=$1 host=$2 if=$3 br=br0 port
    shift 3
    local addrs=()
    while [ $# -gt 0 ]; do
        if [ "$1" = "--" ]; then
            br=$2
            break
        fi
        addrs+=("$1")
        shift
    done
    ip netns list | grep -qw "$(ns_name "$host")" || ns_create "$host" || return 1
    port="p-$host"
    port=${port:0:15}
    ns_veth "$host" "$if" "$sw" "$port" || return 1
    ip -n "$(ns_name "$sw")" link set "$port" master "$br" || return 1
    [ ${#addrs[@]} -eq 0 ] || ns_addr "$host" "$if" "${addrs[@]}"
}

# ns_route NS ROUTE...: add a route, e.g. ns_route a default via 10.99.0.254.
ns_route() {
    local ns=$1
    shift
    case "$*" in
        *:*) ip -n "$(ns_name "$ns")" -6 route add "$@" ;;
        *) ip -n "$(ns_name "$ns")" route add "$@" ;;
    esac
}

# ns_spawn NS CMD...: start a background process in a namespace; its pid goes to
# NS_LAST_PID and to the list cleanup kills, its stdout+stderr to the file NS_LAST_LOG.
ns_spawn() {
    local n=$1
    shift
    NS_LAST_LOG="$NS_TMP/$n.${#NS_PIDS[@]}.log"
    ip netns exec "$(ns_name "$n")" "$@" >"$NS_LAST_LOG" 2>&1 &
    NS_LAST_PID=$!
    NS_PIDS+=("$NS_LAST_PID")
}

# ns_wait_log FILE PATTERN [SECONDS]: wait until FILE contains PATTERN (grep -E).
ns_wait_log() {
    local file=$1 pat=$2 secs=${3:-10} i
    for ((i = 0; i < secs * 20; i++)); do
        grep -qE "$pat" "$file" 2>/dev/null && return 0
        sleep 0.05
    done
    echo "netns: '$pat' did not appear in $file after ${secs}s:" >&2
    cat "$file" >&2 2>/dev/null
    return 1
}

# ns_stop PID: stop one process we started (SIGINT first: capture tools flush on it).
ns_stop() {
    local pid=$1 i
    kill -INT "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 0
}

# ns_wait_tcp NS IP PORT [SECONDS]: wait until something listens on IP:PORT (checked from
# inside NS with a plain connect, so it works for any server).
ns_wait_tcp() {
    local n=$1 ip=$2 port=$3 secs=${4:-10} i
    for ((i = 0; i < secs * 20; i++)); do
        if ip netns exec "$(ns_name "$n")" bash -c "exec 3<>/dev/tcp/$ip/$port" 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    echo "netns: nothing listening on $ip:$port in $n after ${secs}s" >&2
    return 1
}

# ns_wait_udp NS PORT [SECONDS]: wait until a UDP socket is bound to PORT inside NS.
ns_wait_udp() {
    local n=$1 port=$2 secs=${3:-10} i
    for ((i = 0; i < secs * 20; i++)); do
        if ip netns exec "$(ns_name "$n")" ss -Hlun "sport = :$port" | grep -q .; then
            return 0
        fi
        sleep 0.05
    done
    echo "netns: no UDP socket on port $port in $n after ${secs}s" >&2
    return 1
}

# ns_wait_closed NS [SECONDS]: wait until NS has no TCP connection left in any state but
# LISTEN (so FIN/ACK exchanges and TIME_WAIT's last ACK are on the wire before a capture
# stops). TIME_WAIT itself is ignored: it sends nothing more.
ns_wait_closed() {
    local n=$1 secs=${2:-10} i
    for ((i = 0; i < secs * 20; i++)); do
        if ! ip netns exec "$(ns_name "$n")" ss -Htan state connected exclude time-wait | grep -q .; then
            return 0
        fi
        sleep 0.05
    done
    echo "netns: TCP connections still open in $n after ${secs}s:" >&2
    ip netns exec "$(ns_name "$n")" ss -tan >&2
    return 1
}

# ns_capture NS IF FILE [TCPDUMP_ARGS...]: start tcpdump writing FILE and return once it
# is listening (tcpdump says so on stderr), so no early packet is missed.
ns_capture() {
    local n=$1 if=$2 file=$3 log i pid
    shift 3
    log="$NS_TMP/capture.${#NS_CAPTURES[@]}.log"
    # --immediate-mode: with TPACKET_V3, packets wait in a ring block until it fills or a
    # 1 s timeout retires it, and SIGINT discards an unretired block, losing the last
    # second of traffic. Immediate mode hands each packet up at once.
    ip netns exec "$(ns_name "$n")" tcpdump -i "$if" --immediate-mode -U -s 0 -w "$file" "$@" 2>"$log" &
    pid=$!
    NS_CAPTURES+=("$file:$pid")
    NS_PIDS+=("$pid")
    for ((i = 0; i < 200; i++)); do
        grep -q 'listening on' "$log" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    echo "netns: tcpdump on $n/$if did not start:" >&2
    cat "$log" >&2
    return 1
}

# ns_capture_stop FILE: stop the tcpdump writing FILE (SIGINT flushes it) and wait for it.
ns_capture_stop() {
    local file=$1 e pid rc i=-1
    for e in "${NS_CAPTURES[@]}"; do
        i=$((i + 1))
        if [ "${e%:*}" = "$file" ]; then
            pid=${e##*:}
            # Let packets still queued in the kernel reach tcpdump's buffer first.
            sleep 0.3
            kill -INT "$pid" 2>/dev/null
            rc=0
            wait "$pid" 2>/dev/null || rc=$?
            # tcpdump exits 0 on SIGINT; 130 means it died before installing its handler.
            [ "$rc" -eq 0 ] || [ "$rc" -eq 130 ] || echo "netns: tcpdump for $file exited $rc" >&2
            # A capture that lost packets is not evidence: say so loudly.
            if grep -qE '^[1-9][0-9]* packets? dropped' "$NS_TMP/capture.$i.log" 2>/dev/null; then
                echo "netns: tcpdump for $file dropped packets:" >&2
                cat "$NS_TMP/capture.$i.log" >&2
                return 1
            fi
            return 0
        fi
    done
    echo "netns: no capture writing $file" >&2
    return 1
}

# ns_settle NS... : wait until no IPv6 address in the namespaces is still tentative (the
# link-local ones run duplicate detection), then a little longer for the unsolicited MLD
# reports, so a capture started afterwards holds the test's traffic and little chatter.
ns_settle() {
    local n i busy
    for ((i = 0; i < 100; i++)); do
        busy=0
        for n in "$@"; do
            if ip -n "$(ns_name "$n")" -6 addr show tentative | grep -q inet6; then
                busy=1
            fi
        done
        [ "$busy" -eq 0 ] && break
        sleep 0.05
    done
    sleep "${NS_SETTLE_SECONDS:-1.5}"
}

# ns_forget NS... : flush the neighbour caches so the next exchange starts with ARP / ND
# on the wire, as a fresh peer would.
ns_forget() {
    local n
    for n in "$@"; do
        ip -n "$(ns_name "$n")" neigh flush all >/dev/null 2>&1
    done
}

# ns_vlan NS IF push TPID:VID... | pop COUNT : tag (egress) or untag (ingress) every frame
# on IF with a tiny tc eBPF program (tests/data/vlan_tag.py). For kernels without
# CONFIG_VLAN_8021Q, where `ip link add ... type vlan` does not exist; tcpdump on IF, or
# on the veth peer, then sees real 802.1Q / 802.1ad tags. Tags are listed outermost first.
# Typical: ns_vlan a eth0 push 0x8100:100; ns_vlan a eth0 pop 1; same for the peer.
ns_vlan() {
    local n=$1 if=$2 op=$3 pin dir
    shift 3
    local helper
    helper="$(cd "$(dirname "${BASH_SOURCE[0]}")/../data" && pwd)/vlan_tag.py"
    dir="$NS_TMP/bpffs"
    if ! mountpoint -q "$dir"; then
        mkdir -p "$dir"
        mount -t bpf bpf "$dir" || return 1
    fi
    pin="$dir/$n-$if-$op-${#NS_PIDS[@]}-$RANDOM"
    python3 "$helper" "$pin" "$op" "$@" || return 1
    ip netns exec "$(ns_name "$n")" tc qdisc replace dev "$if" clsact || return 1
    if [ "$op" = push ]; then
        ip netns exec "$(ns_name "$n")" tc filter add dev "$if" egress bpf direct-action object-pinned "$pin"
    else
        ip netns exec "$(ns_name "$n")" tc filter add dev "$if" ingress bpf direct-action object-pinned "$pin"
    fi
}

# ns_span NS SRC_IF... -- DST_IF : mirror every frame that enters NS on each SRC_IF to
# DST_IF (a SPAN port). Mirroring only ingress means a frame crossing a bridge is copied
# once, on the port it came in by. Uses u32 match-all + mirred (no cls_matchall needed).
ns_span() {
    local n=$1 ns src dst
    shift
    ns=$(ns_name "$n")
    local srcs=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        srcs+=("$1")
        shift
    done
    dst=$2
    for src in "${srcs[@]}"; do
        ip netns exec "$ns" tc qdisc replace dev "$src" clsact || return 1
        ip netns exec "$ns" tc filter add dev "$src" ingress protocol all prio 1 \
            u32 match u32 0 0 action mirred egress mirror dev "$dst" || return 1
    done
}

# cleanup: kill what we started, then anything still inside our namespaces (daemons that
# forked away from their recorded pid), then delete the namespaces and scratch files.
cleanup() {
    # Options become local (bash >= 4.4), so a caller's `set -e` cannot abort cleanup
    # half-way when `wait` reports the signal that ended a process.
    local -
    set +eu
    local pid ns
    for pid in "${NS_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for ns in "${NS_LIST[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -TERM "$pid" 2>/dev/null
        done
    done
    sleep 0.2
    for ns in "${NS_LIST[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null
        done
    done
    for pid in "${NS_PIDS[@]}"; do
        wait "$pid" 2>/dev/null
    done
    for ns in "${NS_LIST[@]}"; do
        ip netns del "$ns" 2>/dev/null
    done
    if [ -n "$NS_TMP" ]; then
        mountpoint -q "$NS_TMP/bpffs" && umount "$NS_TMP/bpffs"
        rm -rf "$NS_TMP"
    fi
    NS_PIDS=()
    NS_LIST=()
    NS_CAPTURES=()
    NS_TMP=""
    return 0
}
