#!/usr/bin/env bash
# The main job. Until the devnet demo lands, it builds the contracts and prints their sizes.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$poco_root/contracts"
forge build --sizes
