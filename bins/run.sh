#!/usr/bin/env bash
# Build and run the PentaVision server with embedded defaults (SQLite + local disk under
# ./pentavision-data, http://127.0.0.1:8080). Extra arguments go to `pentavision`, e.g.
#   bins/run.sh --listen 127.0.0.1:9000 --data-dir /srv/pentavision
# PV_RELEASE=1 builds an optimised binary (slower to build, faster to run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash bins/install-deps.sh run
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pentavision/target}"
profile=()
[ "${PV_RELEASE:-0}" = 1 ] && profile=(--release)
exec cargo run -q "${profile[@]}" --bin pentavision -- "$@"
