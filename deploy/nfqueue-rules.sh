#!/usr/bin/env bash
# Steers traffic between workloads into palisade's NFQUEUE queues, or takes the rules out.
# palisade never changes the host's firewall itself: this script is the operator's, run
# once per node (or from the node's own provisioning).
#
#   deploy/nfqueue-rules.sh add    [--queues N[-M]] [--chain FORWARD] [--match "-i cni+"]
#   deploy/nfqueue-rules.sh remove [same options]
#   deploy/nfqueue-rules.sh show
#
# Rules go in a chain of their own (PALISADE), jumped to from CHAIN (default FORWARD: pod
# to pod traffic on a node that routes between veths). --queue-bypass keeps traffic
# flowing while no palisade is bound to the queues (upgrades, crashes); with a range,
# --queue-balance spreads flows over the queues by hash (both directions of a flow land
# on the same queue), one palisade packet thread each. nft's `queue` statement is missing
# on some kernels; iptables -j NFQUEUE works with both iptables backends.
set -euo pipefail

action=${1:-}
shift || true
queues=0
chain=FORWARD
match=()
while [ $# -gt 0 ]; do
    case "$1" in
        --queues) queues=$2; shift 2 ;;
        --chain) chain=$2; shift 2 ;;
        --match) read -r -a match <<<"$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
case "$queues" in
    *-*) target=(-j NFQUEUE --queue-balance "${queues/-/:}" --queue-bypass) ;;
    *) target=(-j NFQUEUE --queue-num "$queues" --queue-bypass) ;;
esac

for ipt in iptables ip6tables; do
    case "$action" in
        add)
            $ipt -N PALISADE 2>/dev/null || $ipt -F PALISADE
            $ipt -A PALISADE "${target[@]}"
            $ipt -C "$chain" "${match[@]}" -j PALISADE 2>/dev/null ||
                $ipt -I "$chain" 1 "${match[@]}" -j PALISADE
            ;;
        remove)
            while $ipt -D "$chain" "${match[@]}" -j PALISADE 2>/dev/null; do :; done
            $ipt -F PALISADE 2>/dev/null || true
            $ipt -X PALISADE 2>/dev/null || true
            ;;
        show) $ipt -S PALISADE 2>/dev/null || echo "$ipt: no PALISADE chain" ;;
        *) echo "usage: $0 add|remove|show [--queues N[-M]] [--chain CHAIN] [--match ARGS]" >&2; exit 2 ;;
    esac
done
