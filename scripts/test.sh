#!/usr/bin/env bash
# The whole test suite: formatting, contract artifacts, contract tests, lints, docs, Rust tests.
# Installs what it needs (pinned tools from npm). The PostgreSQL tests need a server at
# POCO_TEST_DATABASE_URL (default 127.0.0.1:5432): without one the suite fails, unless
# POCO_SKIP_POSTGRES=1 says to leave them out.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$poco_root"

poco_log "formatting"
cargo fmt --all --check
(cd contracts && forge fmt --check)

poco_log "architecture (docs/ARCHITECTURE.md)"
python3 scripts/check-architecture.py

# The Solidity compiler (solc-js) uses one core for minutes: the contract stage runs beside the
# Rust stages, its output shown when it ends; the suite fails if it fails.
poco_log "contract artifacts and contract tests (forge), beside the Rust stages"
contracts_log="$(mktemp)"
(scripts/artifacts.sh --check && cd contracts && forge test) >"$contracts_log" 2>&1 &
contracts_pid=$!
trap 'kill "$contracts_pid" 2>/dev/null || true; rm -f "$contracts_log"' EXIT
contracts_done() {
    local status=0
    wait "$contracts_pid" || status=$?
    poco_log "contract stage: artifacts and forge tests"
    cat "$contracts_log"
    if [ "$status" -ne 0 ]; then
        echo "the contract stage failed (exit $status)" >&2
        exit "$status"
    fi
}

poco_log "example apps (reproducible WASM builds)"
poco_ensure_packages clang lld wasi-libc libclang-rt-14-dev-wasm32
apps/build.sh --check

poco_log "explorer (TypeScript checked, committed bundle reproducible; Chromium for its tests)"
poco_ensure_packages chromium chromium-driver
explorer/build.sh --check

poco_log "lints (clippy)"
cargo clippy --workspace --all-targets --locked -- -D warnings

poco_log "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

contracts_done

poco_log "an S3-compatible server for the result store's tests (moto_server, from PyPI)"
if ! command -v moto_server >/dev/null; then
    python3 -m pip install --quiet 'moto[server]' >/dev/null
    hash -r
fi
if ! command -v moto_server >/dev/null; then
    echo "moto_server is missing and pip could not install it: pip install 'moto[server]'" >&2
    exit 1
fi

poco_log "Python runtime (pinned, kept in target/runtimes)"
export POCO_PYTHON_RUNTIME="$(scripts/python-runtime.sh)"

export POCO_TEST_DATABASE_URL="${POCO_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if pg_isready -q -d "$POCO_TEST_DATABASE_URL" 2>/dev/null; then
    poco_log "Rust tests (PostgreSQL tests included)"
    cargo test --workspace --locked -- --include-ignored
elif [ "${POCO_SKIP_POSTGRES:-}" = "1" ]; then
    poco_log "Rust tests WITHOUT the PostgreSQL tests (POCO_SKIP_POSTGRES=1)"
    unset POCO_TEST_DATABASE_URL
    cargo test --workspace --locked
else
    cat >&2 <<EOF_MESSAGE
no PostgreSQL answers at $POCO_TEST_DATABASE_URL, and the storage tests need one.
Start one (on Debian: pg_ctlcluster <version> main start; trust authentication, user postgres),
or point POCO_TEST_DATABASE_URL at one, or set POCO_SKIP_POSTGRES=1 to run without them.
EOF_MESSAGE
    exit 1
fi
poco_log "all tests passed"
