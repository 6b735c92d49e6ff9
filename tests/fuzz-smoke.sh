#!/usr/bin/env bash
# Runs every fuzz target briefly from its seeds. Stable toolchain only: RUSTC_BOOTSTRAP lets
# cargo-fuzz pass its -Z flags; no sanitizer (the crates under test forbid unsafe code).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECONDS_PER_TARGET=${FUZZ_SECONDS:-20}
export RUSTC_BOOTSTRAP=1
targets=$(cargo fuzz list)
cargo fuzz build -s none
for t in $targets; do
    mkdir -p "corpus/$t"
    seeds=()
    [ -d "seeds/$t" ] && seeds=("seeds/$t")
    echo "fuzz $t for ${SECONDS_PER_TARGET}s"
    cargo fuzz run -s none "$t" "corpus/$t" "${seeds[@]}" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -print_final_stats=1 2>&1 | tail -n 3
done
echo "fuzz smoke: $(echo $targets | wc -w) targets ran"
