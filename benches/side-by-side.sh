#!/usr/bin/env bash
# Side by side, in one run: `palisade bench` and a replay of the generated east-west
# capture, for two builds of palisade (the previous main and this tree), alternating
# BASE/NEW so that machine noise hits both alike; prints every run and the medians.
#
#   benches/side-by-side.sh BASE_BIN NEW_BIN [RUNS] [WORKDIR]
#
# The capture is generated once by BASE (`bench --flows 45000 --write-pcap`) so both
# replay the same bytes; NEW's verdict counts on it must equal BASE's (printed as a check).
set -euo pipefail
base=$1 new=$2 runs=${3:-5} dir=${4:-/tmp/side-by-side}
mkdir -p "$dir"
cap=$dir/ew.pcap
[ -s "$cap" ] || "$base" bench --flows 45000 --write-pcap "$cap" >/dev/null
pol=$dir/ew-policy.yaml inv=$dir/ew-inventory.yaml

bench() { "$1" bench --flows 2000 --seconds 10 --workers 1 --format json; }
# Both write their events to a file (the previous main has no `--events none`).
replay() {
    "$1" replay "$cap" --policy "$pol" --inventory "$inv" --events "$dir/eve.json" \
        --format json 2>/dev/null
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

: >"$dir/runs.tsv"
for i in $(seq 1 "$runs"); do
    for who in base new; do
        bin=$base; [ $who = new ] && bin=$new
        b=$(bench "$bin" | jq -r '.packets_per_sec')
        # `elapsed_s` was the key before `elapsed_seconds` (a BASE build may be that old).
        r=$(replay "$bin" | jq -r '(.packets / (.elapsed_seconds // .elapsed_s))')
        printf '%s\t%s\tbench_pps\t%s\n' "$i" "$who" "$b" >>"$dir/runs.tsv"
        printf '%s\t%s\treplay_pps\t%s\n' "$i" "$who" "$r" >>"$dir/runs.tsv"
        printf 'run %s %-4s bench %12.0f pkt/s   replay %12.0f pkt/s\n' "$i" "$who" "$b" "$r"
    done
done
for m in bench_pps replay_pps; do
    b=$(awk -v m=$m '$2=="base" && $3==m {print $4}' "$dir/runs.tsv" | median)
    n=$(awk -v m=$m '$2=="new" && $3==m {print $4}' "$dir/runs.tsv" | median)
    awk -v m=$m -v b="$b" -v n="$n" 'BEGIN {printf "median %-10s base %12.0f  new %12.0f  new/base %.3f\n", m, b, n, n/b}'
done
# The same verdicts on the same capture.
vb=$(replay "$base" | jq -S -c '{v: .verdicts, t: .transactions.verdicts}')
vn=$(replay "$new" | jq -S -c '{v: .verdicts, t: .transactions.verdicts}')
[ "$vb" = "$vn" ] && echo "verdicts: identical" || { echo "verdicts: DIFFER"; exit 1; }
