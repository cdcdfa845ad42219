#!/usr/bin/env bash
# The whole test suite: formatting, contract artifacts, contract tests, lints, docs, Rust tests.
# Installs what it needs (pinned tools from npm). PostgreSQL tests run whenever a server answers
# on 127.0.0.1:5432 (or at POCO_TEST_DATABASE_URL).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$poco_root"

poco_log "formatting"
cargo fmt --all --check
(cd contracts && forge fmt --check)

poco_log "contract artifacts"
scripts/artifacts.sh --check

poco_log "example apps (reproducible WASM builds)"
poco_ensure_packages clang lld wasi-libc libclang-rt-14-dev-wasm32
apps/build.sh --check

poco_log "contract tests (forge)"
(cd contracts && forge test)

poco_log "lints (clippy)"
cargo clippy --workspace --all-targets --locked -- -D warnings

poco_log "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

export POCO_TEST_DATABASE_URL="${POCO_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if pg_isready -q -d "$POCO_TEST_DATABASE_URL" 2>/dev/null; then
    poco_log "Rust tests (PostgreSQL tests included)"
    cargo test --workspace --locked -- --include-ignored
else
    poco_log "Rust tests (no PostgreSQL answering: its tests are skipped)"
    unset POCO_TEST_DATABASE_URL
    cargo test --workspace --locked
fi
poco_log "all tests passed"
