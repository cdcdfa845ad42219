#!/usr/bin/env bash
# Schema-driven fuzzing of the market's HTTP API with schemathesis (PyPI): starts a devnet and
# the market (examples/fuzz_server.rs), then runs every schemathesis phase against the
# OpenAPI document the market serves, with every check but one. Exits non-zero on any failure.
#
# The check left out, positive_data_acceptance, expects every schema-valid request to be
# accepted. A schema cannot say "signed by the current owner of a registered asset", so
# schema-valid random orders are refused (422 invalid_signature / asset_not_registered), and
# a plain GET of /ws is refused with 426 (it is a WebSocket handshake). Everything else the
# schema can express is exact (volumes, prices, cursors, tags, expiries), so no other
# schema-valid request is refused.
#
# Usage: crates/market/fuzz/schemathesis.sh [max seconds (default 300)] [sqlite|postgres]
# Environment: PORT (default 18645), SCHEMATHESIS (an `st` to use instead of a fresh venv).
set -euo pipefail
source "$(dirname "$0")/../../../scripts/env.sh"
cd "$poco_root"
max_time="${1:-300}"
backend="${2:-sqlite}"
port="${PORT:-18645}"

st="${SCHEMATHESIS:-}"
if [ -z "$st" ]; then
    venv="$poco_root/target/schemathesis-venv"
    if [ ! -x "$venv/bin/st" ]; then
        poco_log "installing schemathesis in $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet schemathesis
    fi
    st="$venv/bin/st"
fi

poco_log "building the fuzz server"
cargo build --quiet -p poco-market --example fuzz_server
log="$(mktemp)"
"$poco_root/target/debug/examples/fuzz_server" "$port" "$backend" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 600); do
    grep -q '^ready' "$log" && break
    kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done
grep -q '^ready' "$log" || { cat "$log" >&2; echo "the fuzz server did not start" >&2; exit 1; }

poco_log "schemathesis $("$st" --version) against http://127.0.0.1:$port/openapi.json (${max_time} s, $backend)"
# Schemathesis and Hypothesis keep their caches in the working directory: keep them in target/.
work="$poco_root/target/schemathesis"
mkdir -p "$work"
status=0
(cd "$work" && "$st" --no-color run "http://127.0.0.1:$port/openapi.json" \
    --checks all \
    --exclude-checks positive_data_acceptance \
    --max-time "$max_time" \
    --workers 2 \
    --suppress-health-check all) || status=$?
if grep -q 'internal error\|panicked' "$log"; then
    echo "the server logged failures:" >&2
    grep 'internal error\|panicked\|ERROR' "$log" >&2 || true
    status=1
fi
exit "$status"
