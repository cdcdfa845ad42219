# Sourced by the scripts: installs the pinned tools when missing and puts them on PATH.
# Tools come from package-lock.json (anvil, forge, cast, solc, OpenZeppelin, forge-std).

poco_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

poco_log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# npm ci when node_modules is missing or older than the lock file.
if [ ! -x "$poco_root/node_modules/.bin/forge" ] \
    || [ "$poco_root/package-lock.json" -nt "$poco_root/node_modules/.package-lock.json" ]; then
    poco_log "installing pinned tools (npm ci)"
    (cd "$poco_root" && npm ci --no-audit --no-fund --loglevel=error)
fi
export PATH="$poco_root/node_modules/.bin:$PATH"
export POCO_ANVIL="$poco_root/node_modules/.bin/anvil"
