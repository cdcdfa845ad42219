#!/usr/bin/env bash
# Builds the explorer (TypeScript, type-checked by tsc, bundled by esbuild) into
# crates/market/explorer, which the market embeds and serves at `/`. The built files are
# committed, so that building poco needs no JavaScript toolchain; `--check` builds into a
# temporary folder and fails when they differ from the committed ones.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/crates/market/explorer
bin=$root/node_modules/.bin
check=0
[ "${1:-}" = "--check" ] && check=1

if [ ! -f "$root/node_modules/uplot/dist/uPlot.min.css" ]; then
  echo "explorer: the chart library is missing: run \`npm ci\` at the repository root" >&2
  exit 1
fi
for tool in tsc esbuild; do
  if [ ! -x "$bin/$tool" ]; then
    echo "explorer: $bin/$tool is missing: run \`npm ci\` at the repository root" >&2
    exit 1
  fi
done

"$bin/tsc" -p "$root/explorer/tsconfig.json"
dest=$out
if [ $check = 1 ]; then
  dest=$(mktemp -d)
  trap 'rm -rf "$dest"' EXIT
fi
mkdir -p "$dest"
"$bin/esbuild" "$root/explorer/src/main.ts" --bundle --format=esm --target=es2022 --minify \
  --legal-comments=none --log-level=warning --outfile="$dest/app.js"
cp "$root/explorer/index.html" "$dest/"
# The chart library's style, then the explorer's own.
cat "$root/node_modules/uplot/dist/uPlot.min.css" "$root/explorer/app.css" >"$dest/app.css"

if [ $check = 1 ]; then
  if ! diff -r "$dest" "$out" >/dev/null; then
    echo "explorer: crates/market/explorer differs from what explorer/src builds: run explorer/build.sh and commit" >&2
    diff -r "$dest" "$out" | head -20 >&2 || true
    exit 1
  fi
  echo "explorer/build.sh --check: the committed explorer matches its sources"
fi
