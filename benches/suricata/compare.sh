#!/usr/bin/env bash
# Side by side with Suricata 7 on the same capture (issue 7). Not part of CI.
#
#   cargo build --release -p dataplane --bin palisade
#   target/release/palisade bench --flows 45000 --write-pcap /tmp/ew.pcap
#   bash benches/suricata/compare.sh [/tmp/ew.pcap] [RUNS=3]
#
# Needs suricata 7 (Debian bookworm-backports), tcpdump, capinfos (tshark) and python3
# with PyYAML. Writes the rules, logs and a summary under $OUT (/tmp/suricata-compare),
# and prints a Markdown table: median (and range) of RUNS runs of each of
#   suricata with the converted policy (policy_to_rules.py), the same writing a flow record
#   per flow as palisade does (EVE `flow`, the output of equal size), suricata with no
#   rules, tcpdump -r FILE -w /dev/null, palisade replay with the policy, 1 worker.
# Runs are interleaved (one of each, RUNS times) so that load from others on a shared
# machine spreads over all four; the 1-minute load average before each run is kept.
# Every figure is the whole process under /usr/bin/time -v (start-up and rule loading
# included; compare.sh prints the start-up cost separately from a run on a 1-packet pcap).
# CPU seconds (user+sys, all threads) are given next to wall time: on a shared machine
# they move less than wall time. NICE="nice -n -10" runs every tool under that prefix.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PCAP=${1:-/tmp/ew.pcap}
RUNS=${2:-3}
BASE=${PCAP%.pcap}
POLICY=${POLICY:-$BASE-policy.yaml}
INVENTORY=${INVENTORY:-$BASE-inventory.yaml}
PALISADE=${PALISADE:-$ROOT/target/release/palisade}
SURICATA=${SURICATA:-suricata}
OUT=${OUT:-/tmp/suricata-compare}
NICE=${NICE:-}

for f in "$PCAP" "$POLICY" "$INVENTORY" "$PALISADE"; do
    [ -e "$f" ] || { echo "compare.sh: $f is missing (see the header of this script)" >&2; exit 2; }
done
rm -rf "$OUT"
mkdir -p "$OUT"

python3 "$HERE/policy_to_rules.py" "$POLICY" "$INVENTORY" -o "$OUT/eastwest.rules"
: > "$OUT/empty.rules"

read -r PACKETS BYTES < <(capinfos -M -T -r -c -d "$PCAP" | awk -F'\t' '{print $2, $3}')
echo "capture: $PCAP, $PACKETS packets, $BYTES bytes (capinfos)" >&2

# Into the page cache before the first timed run.
cat "$PCAP" > /dev/null

# An empty capture with the same link type: each tool's start-up cost alone.
tcpdump -r "$PCAP" -c 1 -w "$OUT/one.pcap" 2>/dev/null

# The same configuration with EVE flow records on: palisade writes one per flow.
sed 's/^        - stats:$/        - flow\n        - stats:/' "$HERE/suricata.yaml" > "$OUT/suricata-flows.yaml"
grep -q '^        - flow$' "$OUT/suricata-flows.yaml" || { echo "compare.sh: could not add flow records to suricata.yaml" >&2; exit 2; }

suricata_cmd() { # rules logdir pcap [config]
    echo "$SURICATA -r $3 -c ${4:-$HERE/suricata.yaml} -k none --runmode single -S $1 -l $2"
}

run() { # name run-number command...
    local name=$1 i=$2
    shift 2
    local dir="$OUT/$name.$i"
    mkdir -p "$dir"
    cut -d' ' -f1 /proc/loadavg > "$dir/load"
    # shellcheck disable=SC2086
    $NICE /usr/bin/time -v -o "$dir/time" "$@" > "$dir/stdout" 2> "$dir/stderr" || {
        echo "compare.sh: $name run $i failed:" >&2
        tail -5 "$dir/stderr" >&2
        exit 1
    }
}

for i in $(seq 1 "$RUNS"); do
    echo "run $i of $RUNS (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    mkdir -p "$OUT/suricata-rules.$i/log" "$OUT/suricata-none.$i/log" "$OUT/suricata-flows.$i/log"
    # shellcheck disable=SC2046
    run suricata-rules "$i" $(suricata_cmd "$OUT/eastwest.rules" "$OUT/suricata-rules.$i/log" "$PCAP")
    # shellcheck disable=SC2046
    run suricata-flows "$i" $(suricata_cmd "$OUT/eastwest.rules" "$OUT/suricata-flows.$i/log" "$PCAP" "$OUT/suricata-flows.yaml")
    # shellcheck disable=SC2046
    run suricata-none "$i" $(suricata_cmd "$OUT/empty.rules" "$OUT/suricata-none.$i/log" "$PCAP")
    run tcpdump "$i" tcpdump -r "$PCAP" -w /dev/null
    run palisade "$i" "$PALISADE" replay "$PCAP" --policy "$POLICY" --inventory "$INVENTORY" \
        --workers 1 --format json
done

# Start-up alone: one packet.
mkdir -p "$OUT/suricata-rules.startup/log"
# shellcheck disable=SC2046
run suricata-rules startup $(suricata_cmd "$OUT/eastwest.rules" "$OUT/suricata-rules.startup/log" "$OUT/one.pcap")
run palisade startup "$PALISADE" replay "$OUT/one.pcap" --policy "$POLICY" --inventory "$INVENTORY" \
    --workers 1 --format json

NICE="$NICE" python3 - "$OUT" "$RUNS" "$PACKETS" "$BYTES" "$PCAP" <<'EOF'
import json, re, statistics, sys, collections

out, runs, packets, nbytes, pcap = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]

def timev(path):
    t = open(path).read()
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", t)
    wall = int(m.group(1) or 0) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    cpu = float(re.search(r"User time \(seconds\): ([\d.]+)", t).group(1)) + \
        float(re.search(r"System time \(seconds\): ([\d.]+)", t).group(1))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) / 1024
    return wall, cpu, rss

def med(xs):
    return statistics.median(xs)

rows = collections.OrderedDict([
    ("suricata-rules", "Suricata 7.0.10, converted policy (`-S eastwest.rules`)"),
    ("suricata-flows", "Suricata 7.0.10, converted policy, EVE flow records on"),
    ("suricata-none", "Suricata 7.0.10, no rules (`-S empty.rules`)"),
    ("tcpdump", "`tcpdump -r FILE -w /dev/null`"),
    ("palisade", "`palisade replay --workers 1`, the policy"),
])
res = {}
for k in rows:
    res[k] = [timev(f"{out}/{k}.{i}/time") for i in range(1, runs + 1)]
    res[k + ".load"] = [float(open(f"{out}/{k}.{i}/load").read()) for i in range(1, runs + 1)]

def mpps(wall):
    return packets / wall / 1e6

import os
print(f"Capture `{pcap}`: {packets:,} packets, {nbytes / 1e6:.0f} MB (capinfos). "
      + (f"Every tool under `{os.environ['NICE']}`. " if os.environ.get("NICE") else "")
      +
      f"Median of {runs} interleaved runs, range in brackets; whole process (start-up included).\n")
print("| run | wall s | Mpps (wall) | CPU s (user+sys) | Mpps per CPU-second | max RSS MiB | load (1 min) at start |")
print("|---|---|---|---|---|---|---|")
for k, label in rows.items():
    w = [r[0] for r in res[k]]
    c = [r[1] for r in res[k]]
    m = [r[2] for r in res[k]]
    ld = res[k + ".load"]
    print(f"| {label} | {med(w):.2f} ({min(w):.2f} - {max(w):.2f}) | **{mpps(med(w)):.3f}** "
          f"({mpps(max(w)):.3f} - {mpps(min(w)):.3f}) | {med(c):.2f} ({min(c):.2f} - {max(c):.2f}) | "
          f"{mpps(med(c)):.3f} | "
          f"{med(m):.0f} ({min(m):.0f} - {max(m):.0f}) | {', '.join(f'{x:.2f}' for x in ld)} |")

sr = med([r[0] for r in res["suricata-rules"]])
sn = med([r[0] for r in res["suricata-none"]])
td = med([r[0] for r in res["tcpdump"]])
pa = med([r[0] for r in res["palisade"]])
print()
print(f"- palisade / Suricata with rules: **{sr / pa:.1f}x** packets/s (target >= 15x); per run pairs "
      + ", ".join(f"{a[0] / b[0]:.1f}x" for a, b in zip(res["suricata-rules"], res["palisade"])))
print(f"- palisade / Suricata without rules: {sn / pa:.1f}x")
sf = med([r[0] for r in res["suricata-flows"]])
sfc = med([r[1] for r in res["suricata-flows"]])
flows = sum(1 for line in open(f"{out}/suricata-flows.1/log/eve.json") if '"event_type":"flow"' in line)
print(f"- with the same output (Suricata writing its {flows:,} flow records too): palisade / Suricata "
      f"**{sf / pa:.1f}x** by wall time, **{sfc / med([r[1] for r in res['palisade']]):.1f}x** by CPU")
sc = med([r[1] for r in res["suricata-rules"]])
tc = med([r[1] for r in res["tcpdump"]])
pc = med([r[1] for r in res["palisade"]])
print(f"- by CPU seconds: palisade / Suricata with rules **{sc / pc:.1f}x**; palisade uses {pc / tc:.1f}x tcpdump's CPU time")
print(f"- palisade vs tcpdump: palisade takes **{pa / td:.2f}x** tcpdump's wall time (target <= 1.25x, i.e. >= 0.8x its speed); per run "
      + ", ".join(f"{b[0] / a[0]:.2f}x" for a, b in zip(res["tcpdump"], res["palisade"])))
su = timev(f"{out}/suricata-rules.startup/time")
ps = timev(f"{out}/palisade.startup/time")
print(f"- start-up alone (1-packet capture): Suricata with rules {su[0]:.2f} s, palisade {ps[0]:.2f} s; "
      f"without it, Suricata with rules runs at {packets / (sr - su[0]) / 1e6:.3f} Mpps, palisade at "
      f"{packets / max(pa - ps[0], 1e-9) / 1e6:.3f} Mpps ({(sr - su[0]) / (pa - ps[0]):.1f}x)")

# --- sanity: do the rules fire?
alerts = collections.Counter()
stats = None
for line in open(f"{out}/suricata-rules.1/log/eve.json"):
    e = json.loads(line)
    if e.get("event_type") == "alert":
        md = e["alert"].get("signature", "").split()
        alerts[(md[1], md[2])] += 1
    elif e.get("event_type") == "stats":
        stats = e["stats"]
s_deny = sum(v for (a, _), v in alerts.items() if a == "deny")
s_alert = sum(v for (a, _), v in alerts.items() if a == "alert")
pj = json.load(open(f"{out}/palisade.1/stdout"))
json.dump(pj, open(f"{out}/palisade-summary.json", "w"), indent=1)
print()
pal = collections.Counter()
for v in pj.get("transactions", {}).get("verdicts", []):
    if v["action"] in ("deny", "alert"):
        pal[(v["action"], v["rule"])] += v["transactions"]
p_deny = sum(v for (a, _), v in pal.items() if a == "deny")
p_alert = sum(v for (a, _), v in pal.items() if a == "alert")
print(f"Sanity (run 1 of each): Suricata raised {s_deny + s_alert} alerts ({s_deny} from deny rules, "
      f"{s_alert} from alert rules); palisade denied {p_deny} and alerted on {p_alert} transactions "
      f"({pj.get('alerts')} alerts, packet verdicts {pj.get('packet_verdicts')}).\n")
print("| Palisade rule | action | palisade transactions | Suricata alerts |")
print("|---|---|---|---|")
for key in sorted(set(alerts) | set(pal), key=lambda k: (k[0] != "deny", k[1])):
    print(f"| `{key[1]}` | {key[0]} | {pal.get(key, 0)} | {alerts.get(key, 0)} |")
if stats:
    fl = {k: v for k, v in stats["app_layer"]["flow"].items() if v}
    tcp = stats.get("tcp", {})
    print(f"Suricata flows by app-layer: {fl}; decoder packets {stats['decoder']['pkts']}; "
          f"reassembly gaps {tcp.get('reassembly_gap')}; segment memcap drops {tcp.get('segment_memcap_drop')}; "
          f"session memcap drops {tcp.get('ssn_memcap_drop')}; flow memcap {stats['flow'].get('memcap')}; "
          f"emergency mode {stats['flow'].get('emerg_mode_entered')}")
print("palisade (run 1) summary: see", f"{out}/palisade-summary.json")
EOF
