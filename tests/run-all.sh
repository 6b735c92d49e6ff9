#!/usr/bin/env bash
# Every check CI runs, in one command (README.md). Installs what it needs first: Debian
# packages for the real peers and capture tools, and cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
step() { printf '\n=== %s (%s)\n' "$*" "$(date +%T)"; }

step "install peers and tools"
bash tests/peers/install.sh
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked --version '^0.13'
fi

step "format"
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)

step "clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "unit and integration tests"
cargo test --workspace

step "benches compile"
cargo bench --workspace --no-run

step "allocation check (steady state allocates nothing per packet or request)"
cargo bench -p benches --bench alloc

step "fuzz smoke"
bash tests/fuzz-smoke.sh

step "done"
