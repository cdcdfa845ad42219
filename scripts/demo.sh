#!/usr/bin/env bash
# The main job: a whole marketplace on this machine, and one purchase on it.
#
# 1. builds the `poco` binary (the first build takes several minutes);
# 2. starts a fresh devnet in the background: anvil with the protocol, the market, a workerpool
#    whose scheduler runs 5 workers (the last one commits wrong results on purpose), and the
#    result store;
# 3. an app provider registers the pi app (apps/pi) and publishes an app order;
# 4. a requester runs 3 tasks of it with trust 4: the best orders are found, the deal matched,
#    the tasks followed until their results are certified, and the results downloaded after
#    their digests are checked against the chain;
# 5. prints a result, and who paid and who earned what (the cheater loses its stakes).
#
# The devnet lives in target/demo-home and is stopped at the end; set POCO_DEMO_KEEP=1 to keep
# it running (then `poco --home target/demo-home devnet status` shows it).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$poco_root"

poco_log "building poco (the first build takes several minutes)"
cargo build --locked --quiet -p poco-cli
home="$poco_root/target/demo-home"
poco() { "$poco_root/target/debug/poco" --home "$home" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

poco devnet reset >/dev/null
if [ "${POCO_DEMO_KEEP:-0}" != 1 ]; then
    trap 'poco devnet down >/dev/null 2>&1 || true' EXIT
fi

step "starting a devnet: chain, market, scheduler, 4 honest workers and 1 byzantine, result store"
poco devnet up --detach --workers 4 --byzantine-workers 1 --slots 1

step "the app provider registers the pi app and sells it at 0.1 RLC per task"
app_json="$(poco --devnet-account app-provider --json app deploy --name pi --file apps/pi/pi.wasm)"
app="$(sed -n 's/^ *"address": "\(0x[0-9a-fA-F]*\)".*/\1/p' <<<"$app_json" | head -n1)"
echo "app $app"
poco --devnet-account app-provider order publish app --asset "$app" --price "0.1 RLC" --volume 100

poco devnet balances --json >"$home/balances-before.json"

step "the requester runs 3 tasks of it with trust 4 and downloads the certified results"
rm -rf "$home/results"
poco --devnet-account requester run "$app" --args "200000" --trust 4 --volume 3 --yes \
    --download "$home/results"

step "a result (computed by the honest majority, verified against the chain)"
first="$(find "$home/results" -name result.txt | sort | head -n1)"
cat "$first"

step "who paid and who earned what"
poco devnet balances --since "$home/balances-before.json"
