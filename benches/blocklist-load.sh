#!/bin/sh
# Load test: pentavision-blocklist vs nginx serving the same CSV (see
# benches/src/bin/blocklist_load.rs). Needs wrk and nginx (apt-get install wrk nginx-light).
# Extra arguments go to the bench, e.g. `benches/blocklist-load.sh --rounds 3 --duration 5s`.
set -eu
cd "$(dirname "$0")/.."
cargo build --release -p pentavision-blocklist -p pv-benches --bins
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/blocklist_load" --bin "$target/release/pentavision-blocklist" "$@"
