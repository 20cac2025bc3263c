#!/usr/bin/env bash
# Fuzz the REST API against its own OpenAPI document with schemathesis (PyPI): start a fresh
# `pentavision` (temporary data dir, 127.0.0.1, a free port), make an administrator API token,
# and run every operation of /api/v1/openapi.json with generated valid and invalid input. The
# run fails on any server error (5xx), a response whose body does not match its schema, a status
# the document does not declare for the operation, an undeclared content type or a missing
# declared header.
#
# Excluded, because they would end the run itself: `logout` and `revokeToken` (the fuzzer
# would revoke its own token). The service manager is replaced by a script that does nothing, so `restartService`
# is exercised without restarting anything on this machine. The caller's address is exempted
# from IP rules first, so a generated block rule cannot lock the fuzzer out.
#
#   bins/api-fuzz.sh                    # needs target/debug/pentavision (cargo build --bin pentavision)
#   PV_BIN=… PV_FUZZ_EXAMPLES=20 bins/api-fuzz.sh
#
# Env: PV_BIN (the binary), SCHEMATHESIS (the `st` command; default the venv that
# `bins/install-deps.sh test` makes), PV_FUZZ_EXAMPLES (test cases per operation and phase,
# default 8), PV_FUZZ_SEED (default 1: the same requests every run), PV_FUZZ_REPORT (a directory
# for a JUnit report).
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-$HOME/.cache/pentavision/target}"
bin="${PV_BIN:-$target/debug/pentavision}"
st="${SCHEMATHESIS:-$HOME/.cache/pentavision/venv-schemathesis/bin/st}"
examples="${PV_FUZZ_EXAMPLES:-8}"
seed="${PV_FUZZ_SEED:-1}"
[ -x "$bin" ] || { echo "api-fuzz: $bin is missing; run cargo build --bin pentavision" >&2; exit 1; }
[ -x "$st" ] || command -v "$st" >/dev/null 2>&1 || {
  echo "api-fuzz: schemathesis ($st) is missing; run bins/install-deps.sh test" >&2
  exit 1
}

data="$(mktemp -d "${TMPDIR:-/tmp}/pv-api-fuzz.XXXXXX")"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
    kill -9 "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT

printf '#!/bin/sh\necho active\n' >"$data/systemctl"
chmod +x "$data/systemctl"
export PV_SERVICES__SYSTEMCTL="$data/systemctl" PV_LOGGING__LEVEL="${PV_LOGGING__LEVEL:-warn}"
# Face recognition on, so the face operations answer as they do for users (422 for a picture
# without a face, not 503 "face recognition is off"); the models are fetched once, checked
# by their sha256, and not downloaded again.
models="${PV_FACE_MODELS:-$HOME/.cache/pentavision/models}"
"$bin" faces fetch-models --dir "$models" >/dev/null
export PV_FACES__MODEL_DIR="$models"
# The WHEP operations send SDP bodies; the hooks teach schemathesis to serialise them.
export SCHEMATHESIS_HOOKS="$PWD/pv-web/tests/fuzz/schemathesis_hooks.py"
env -u PENTAVISION_CONFIG "$bin" --data-dir "$data" --listen 127.0.0.1:0 \
  >"$data/server.out" 2>"$data/server.err" &
server_pid=$!
# The banner's first line names the URL (127.0.0.1 or localhost); talk to 127.0.0.1 on its port.
url=""
for _ in $(seq 1 200); do
  port="$(head -n1 "$data/server.out" 2>/dev/null | grep -Eo 'http://[^/ ]*:[0-9]+' | grep -Eo '[0-9]+$' || true)"
  [ -n "$port" ] && url="http://127.0.0.1:$port" && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$url" ] || { echo "api-fuzz: pentavision did not start:" >&2; cat "$data/server.err" >&2; exit 1; }
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$url/readyz" 2>/dev/null && break
  sleep 0.2
done

token="$(env -u PENTAVISION_CONFIG "$bin" --data-dir "$data" token create --user Thalia \
  --name api-fuzz 2>"$data/token.err")" || { echo "api-fuzz: cannot make a token:" >&2; cat "$data/token.err" >&2; exit 1; }
curl -fsS -o /dev/null -X POST -H "Authorization: Bearer $token" \
  "$url/api/v1/security/ip-rules/exempt-me"

report=()
if [ -n "${PV_FUZZ_REPORT:-}" ]; then
  report=(--report junit --report-dir "$(realpath -m "$PV_FUZZ_REPORT")")
fi
echo "==> schemathesis over $url/api/v1/openapi.json ($examples examples per operation, seed $seed)"
started=$(date +%s)
status=0
# Excluded: logout and revokeToken would end the fuzzer's own session; streamFaceEvents is an
# endless event stream (its guard and format are tested in pv-web's faces and RBAC tests).
# Run from the data dir: schemathesis keeps a cache directory (.schemathesis/) in its working dir.
# One worker: Hypothesis parses lambdas' source with `ast` in each worker thread, and CPython 3.11
# can fail that from two threads at once ("AST constructor recursion depth mismatch").
(cd "$data" && "$st" run "$url/api/v1/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --exclude-operation-id logout --exclude-operation-id revokeToken \
  --exclude-operation-id streamFaceEvents \
  --phases examples,coverage,fuzzing \
  --max-examples "$examples" --seed "$seed" --workers 1 \
  --request-timeout 30 --max-failures 200 --no-shrink \
  --suppress-health-check all --warnings off \
  "${report[@]}") || status=$?
echo "==> schemathesis finished in $(($(date +%s) - started)) s (exit $status)"
if [ "$status" != 0 ]; then
  echo "--- last lines of the server's log" >&2
  tail -n 30 "$data/server.err" >&2 || true
fi
exit "$status"
