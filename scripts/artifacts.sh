#!/usr/bin/env bash
# Builds the contracts and refreshes the ABI and bytecode the Rust crates read from
# crates/contracts/artifacts. With --check, fails instead when the committed ones differ.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$poco_root/contracts"
# A full build: an incremental one can lay the code out differently (via-IR compiles the
# changed files alone), and the artifacts must be what a fresh clone builds.
forge build --force --quiet
dest="$poco_root/crates/contracts/artifacts"
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for unit in Poco.sol:Poco PocoTasks.sol:PocoTasks interfaces/IPoco.sol:IPoco token/RLC.sol:RLC \
    registries/Apps.sol:AppRegistry registries/Apps.sol:App \
    registries/Datasets.sol:DatasetRegistry registries/Datasets.sol:Dataset \
    registries/Workerpools.sol:WorkerpoolRegistry registries/Workerpools.sol:Workerpool; do
    file="${unit%%:*}"; name="${unit##*:}"
    node -e '
        const a = require(process.argv[1]);
        const out = { abi: a.abi, bytecode: a.bytecode.object, deployedBytecode: a.deployedBytecode.object };
        process.stdout.write(JSON.stringify(out, null, 1) + "\n");
    ' "$PWD/out/$(basename "$file")/$name.json" > "$tmp/$name.json"
done
if [ "${1:-}" = "--check" ]; then
    if ! diff -r -q "$tmp" "$dest" >/dev/null; then
        diff -r -q "$tmp" "$dest" || true
        echo "crates/contracts/artifacts are stale: run scripts/artifacts.sh and commit the result" >&2
        exit 1
    fi
    echo "contract artifacts match the sources" >&2
else
    rm -f "$dest"/*.json
    cp "$tmp"/*.json "$dest/"
    echo "wrote $(ls "$dest" | wc -l) artifacts to crates/contracts/artifacts" >&2
fi
