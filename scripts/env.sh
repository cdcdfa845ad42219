# Sourced by the scripts: installs the pinned tools when missing and puts them on PATH.
# Tools come from package-lock.json (anvil, forge, cast, solc, OpenZeppelin, forge-std).

poco_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# A stage's title, with the time since the script started (so a slow stage shows in CI's log).
poco_log() { printf '\033[1m==> [%d:%02d] %s\033[0m\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }

# npm ci when node_modules is missing or older than the lock file.
if [ ! -x "$poco_root/node_modules/.bin/forge" ] \
    || [ "$poco_root/package-lock.json" -nt "$poco_root/node_modules/.package-lock.json" ]; then
    poco_log "installing pinned tools (npm ci)"
    (cd "$poco_root" && npm ci --no-audit --no-fund --loglevel=error)
fi
export PATH="$poco_root/node_modules/.bin:$PATH"
export POCO_ANVIL="$poco_root/node_modules/.bin/anvil"

# Installs Debian packages that are missing (needs root and the Debian registry); returns
# non-zero, with a message, when they cannot be installed.
poco_ensure_packages() {
    local missing=()
    for package in "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    poco_log "installing ${missing[*]} (apt-get)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"; } >/dev/null 2>&1; then
        echo "could not install ${missing[*]}" >&2
        return 1
    fi
}
