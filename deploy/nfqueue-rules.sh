#!/usr/bin/env bash
# Steers traffic between workloads into palisade's NFQUEUE queues, or takes the rules out.
# palisade never changes the host's firewall itself: this script is the operator's, run
# once per node (or from the node's own provisioning).
#
#   deploy/nfqueue-rules.sh add    [--queues N[-M]] [--chain FORWARD|INPUT,OUTPUT|...]
#                                  [--match "-i cni+"] [--mark 0x5041]
#   deploy/nfqueue-rules.sh remove
#   deploy/nfqueue-rules.sh show
#
# Rules go in a chain of their own (PALISADE), jumped to from each CHAIN of the
# comma-separated list (default FORWARD: pod to pod traffic on a node that routes between
# veths). `--chain INPUT,OUTPUT` steers the node's own traffic too: a workload in the
# node's network namespace (host network), as server (INPUT) or client (OUTPUT); give
# `--chain FORWARD,INPUT,OUTPUT` for both kinds. --match narrows the jumps (it is added to
# each, so give -i only with FORWARD/INPUT and -o only with FORWARD/OUTPUT).
#
# The PALISADE chain first lets these pass unqueued:
# - packets carrying palisade's firewall mark (--mark, default $PALISADE_MARK or 0x5041,
#   "PA"; palisade marks its own packets with the same value: set PALISADE_MARK for both
#   when 0x5041 is taken on the node). These are the TCP resets palisade sends: on
#   INPUT/OUTPUT a reset to a local end would otherwise be queued again, judged as part of
#   the flow it ends, and dropped, so that end would hang until its timeout. The mark is
#   matched exactly.
# - loopback traffic (-i lo, -o lo): the node talking to itself, including palisade's own
#   metrics endpoint and the control tools.
#
# --queue-bypass keeps traffic flowing while no palisade is bound to the queues (upgrades,
# crashes); with a range, --queue-balance spreads flows over the queues by hash (both
# directions of a flow land on the same queue), one palisade packet thread each. nft's
# `queue` statement is missing on some kernels; iptables -j NFQUEUE works with both
# iptables backends.
#
# `remove` deletes every jump to PALISADE (from whichever chains `add` used) and the chain.
set -euo pipefail

usage() {
    echo "usage: $0 add|remove|show [--queues N[-M]] [--chain CHAIN[,CHAIN...]] [--match ARGS] [--mark MARK]" >&2
    exit 2
}

action=${1:-}
shift || true
queues=0
chains=FORWARD
match=()
mark=${PALISADE_MARK:-0x5041}
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case "$1" in
        --queues) queues=$2; shift 2 ;;
        --chain) chains=$2; shift 2 ;;
        --match) read -r -a match <<<"$2"; shift 2 ;;
        --mark) mark=$2; shift 2 ;;
        *) echo "unknown option $1" >&2; usage ;;
    esac
done
case "$queues" in
    *-*) target=(-j NFQUEUE --queue-balance "${queues/-/:}" --queue-bypass) ;;
    *) target=(-j NFQUEUE --queue-num "$queues" --queue-bypass) ;;
esac
[[ $mark =~ ^(0[xX][0-9a-fA-F]{1,8}|[1-9][0-9]{0,9}|0)$ ]] ||
    { echo "--mark $mark: expected a firewall mark, decimal or 0x hex" >&2; exit 2; }
IFS=, read -r -a chain_list <<<"$chains"
[ ${#chain_list[@]} -gt 0 ] || usage
for c in "${chain_list[@]}"; do
    [[ $c =~ ^[A-Za-z0-9_-]+$ && $c != PALISADE ]] ||
        { echo "--chain $c: expected a filter chain such as FORWARD, INPUT, OUTPUT" >&2; exit 2; }
done

# remove_jumps IPT: deletes every rule of the filter table that jumps to PALISADE.
remove_jumps() {
    local ipt=$1 line
    while read -r line; do
        case "$line" in
            "-A "*" -j PALISADE") eval "$ipt -D ${line#-A }" ;;
        esac
    done < <($ipt -S 2>/dev/null)
}

for ipt in iptables ip6tables; do
    case "$action" in
        add)
            $ipt -N PALISADE 2>/dev/null || $ipt -F PALISADE
            if (( mark != 0 )); then
                $ipt -A PALISADE -m mark --mark "$mark" -j RETURN
            fi
            $ipt -A PALISADE -i lo -j RETURN
            $ipt -A PALISADE -o lo -j RETURN
            $ipt -A PALISADE "${target[@]}"
            for c in "${chain_list[@]}"; do
                $ipt -C "$c" "${match[@]}" -j PALISADE 2>/dev/null ||
                    $ipt -I "$c" 1 "${match[@]}" -j PALISADE
            done
            ;;
        remove)
            remove_jumps "$ipt"
            $ipt -F PALISADE 2>/dev/null || true
            $ipt -X PALISADE 2>/dev/null || true
            ;;
        show)
            $ipt -S PALISADE 2>/dev/null || echo "$ipt: no PALISADE chain"
            $ipt -S 2>/dev/null | grep -E '^-A .* -j PALISADE$' || true
            ;;
        *) usage ;;
    esac
done
