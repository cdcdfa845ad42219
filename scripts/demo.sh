#!/usr/bin/env bash
# The main job. Until the devnet demo lands, it runs the gas benchmark: the whole task
# lifecycle on a local anvil with the real contracts, gas per step against the reference.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$poco_root"
poco_log "building the gas benchmark (first build takes several minutes)"
cargo build --release --locked -p poco-bench --bin gas
poco_log "running it"
exec ./target/release/gas
