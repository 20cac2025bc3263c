#!/usr/bin/env bash
# Install what PentaVision needs on Debian 12 / Ubuntu 24.04, skipping what is already there.
#   bins/install-deps.sh run    # to build and run the server
#   bins/install-deps.sh test   # also what the test suite needs (Chromium, Node.js, databases)
set -euo pipefail
purpose="${1:-run}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# GStreamer (recording, motion, snapshots, RTMP) and ffmpeg (fallback recorder) are run-time
# needs; the -dev packages are what gstreamer-rs links against. libsmbclient is the SMB storage
# backend's library (pavao); openssh-client runs SFTP and SCP uploads.
run_pkgs=(gcc libc6-dev pkg-config curl ca-certificates
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
  libgstrtspserver-1.0-dev gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-rtsp ffmpeg
  glib-networking libsmbclient-dev openssh-client)
# Test peers: Chromium for the UI, nginx-rtmp as an RTMP endpoint, nginx and wrk for the
# blocklist benchmark.
test_pkgs=(chromium procps nginx-light libnginx-mod-rtmp wrk)

missing=()
want=("${run_pkgs[@]}")
[ "$purpose" = test ] && want+=("${test_pkgs[@]}")
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm may come from elsewhere than Debian (e.g. NodeSource, which bundles npm):
# only install Debian's when the commands are absent.
if [ "$purpose" = test ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing system packages: ${missing[*]}"
  as_root apt-get update -qq
  # Daemons installed for tests (nginx) must not start on their default ports: the tests own
  # their ports and start them themselves.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 755 /usr/sbin/policy-rc.d
    remove_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ "${remove_policy:-0}" = 1 ]; then as_root rm -f /usr/sbin/policy-rc.d; fi
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] || {
    echo "==> installing the Rust toolchain (rustup)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  }
  export PATH="$HOME/.cargo/bin:$PATH"
fi

if [ "$purpose" = test ]; then
  # The database tests run on PostgreSQL (127.0.0.1:5432, trust) and MariaDB (127.0.0.1:3306,
  # root without password). Start them when installed but stopped; install them when absent.
  up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
  if ! up 5432; then
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
      echo "==> installing PostgreSQL"
      DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends postgresql
      hba=$(ls /etc/postgresql/*/main/pg_hba.conf | head -n1)
      as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
    fi
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
  if ! up 3306; then
    command -v mariadbd >/dev/null 2>&1 || command -v /usr/sbin/mariadbd >/dev/null 2>&1 || {
      echo "==> installing MariaDB"
      DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends mariadb-server
    }
    as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd || true
  fi
  for port in 5432 3306; do
    for _ in $(seq 1 50); do up "$port" && break; sleep 0.2; done
    up "$port" || { echo "database server on 127.0.0.1:$port is not reachable" >&2; exit 1; }
  done
fi

if [ "$purpose" = test ]; then
  # schemathesis (PyPI) fuzzes the REST API against its OpenAPI document (bins/api-fuzz.sh), from
  # a virtualenv of its own so nothing touches the system's Python packages.
  schemathesis_version=4.32.5
  venv="$HOME/.cache/pentavision/venv-schemathesis"
  if ! "$venv/bin/st" --version 2>/dev/null | grep -qF "$schemathesis_version"; then
    echo "==> installing schemathesis $schemathesis_version into $venv"
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
      as_root apt-get update -qq
      DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends python3 python3-venv
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$schemathesis_version"
  fi
fi

if [ "$purpose" = test ]; then
  # Storage test servers (S3, Azure Blob, GCS, WebDAV, FTP/FTPS, SFTP, SMB on loopback) for the
  # pv-storage conformance suite; bins/storage-servers.sh installs what is missing.
  bash "$(dirname "$0")/storage-servers.sh" install
fi
