#!/usr/bin/env bash
# Builds every example app of poco to WebAssembly (WASI preview 1), reproducibly.
#
#   apps/build.sh           build apps/<name>/<name>.c and apps/testing/<name>/<name>.c into
#                           <name>.wasm next to the source, write apps/SHA256SUMS, print the
#                           sha256 of each module (the checksum an app is registered with)
#   apps/build.sh --check   rebuild into a temporary directory and fail if any committed .wasm
#                           (or SHA256SUMS) differs; skipped, with a message, when no clang able
#                           to target wasm32-wasi is installed
#
# Toolchain (Debian 12): apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32
# The flags are pinned here; sources are compiled from inside apps/ by relative path, so no
# build path ends up in a module. The same compiler version gives byte-identical modules.
set -euo pipefail

APPS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CC="${WASM_CC:-clang}"

# The flags, one per line, shared with `poco app build` (poco_sdk::app_project): see
# apps/wasm-cflags and apps/wasm-ldflags. The C stack sits below the data (an overflow traps
# instead of overwriting globals); debug info is stripped but the name section kept (function
# names in trap backtraces).
mapfile -t CFLAGS < "$APPS_DIR/wasm-cflags"
CFLAGS+=(-ffile-prefix-map="$APPS_DIR"=.)
mapfile -t LDFLAGS < "$APPS_DIR/wasm-ldflags"

mode=build
case "${1:-}" in
  "") ;;
  --check) mode=check ;;
  -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# Every app: a directory <name> holding <name>.c, under apps/ or apps/testing/.
apps() {
  cd "$APPS_DIR"
  for dir in */ testing/*/; do
    dir="${dir%/}"
    name="$(basename "$dir")"
    [ -f "$dir/$name.c" ] && echo "$dir/$name"
  done
}

toolchain_ok() {
  command -v "$CC" >/dev/null 2>&1 || return 1
  printf 'int main(void){return 0;}\n' |
    "$CC" --target=wasm32-wasi -x c - -o /dev/null >/dev/null 2>&1
}

if ! toolchain_ok; then
  msg="no $CC able to build for wasm32-wasi (apt-get install -y clang lld wasi-libc libclang-rt-14-dev-wasm32)"
  if [ "$mode" = check ]; then
    echo "apps/build.sh --check: skipped: $msg"
    exit 0
  fi
  echo "apps/build.sh: error: $msg" >&2
  exit 1
fi

# build <dest root>: compiles every app into <dest root>/<dir>/<name>.wasm and writes
# <dest root>/SHA256SUMS.
build() {
  local dest="$1"
  cd "$APPS_DIR"
  : > "$dest/SHA256SUMS.tmp"
  for app in $(apps); do
    mkdir -p "$dest/$(dirname "$app")"
    "$CC" "${CFLAGS[@]}" -o "$dest/$app.wasm" "$app.c" "${LDFLAGS[@]}"
    (cd "$dest" && sha256sum "$app.wasm") >> "$dest/SHA256SUMS.tmp"
  done
  mv "$dest/SHA256SUMS.tmp" "$dest/SHA256SUMS"
}

echo "compiler: $("$CC" --version | head -n 1)"
if [ "$mode" = build ]; then
  build "$APPS_DIR"
  echo "sha256 of each module (the app checksum registered on-chain):"
  sed 's/^/  /' "$APPS_DIR/SHA256SUMS"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
build "$tmp"
status=0
for app in $(apps); do
  if ! cmp -s "$tmp/$app.wasm" "$APPS_DIR/$app.wasm"; then
    echo "differs: apps/$app.wasm (rebuilt sha256 $(sha256sum < "$tmp/$app.wasm" | cut -d' ' -f1))"
    status=1
  fi
done
if ! cmp -s "$tmp/SHA256SUMS" "$APPS_DIR/SHA256SUMS"; then
  echo "differs: apps/SHA256SUMS"
  status=1
fi
if [ "$status" = 0 ]; then
  echo "apps/build.sh --check: every committed module matches its source"
else
  echo "apps/build.sh --check: run apps/build.sh and commit the modules" >&2
fi
exit "$status"
