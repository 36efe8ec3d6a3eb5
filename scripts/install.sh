#!/usr/bin/env bash
# Install what Octopus needs and this machine lacks; safe to run again (it then does nothing).
#   scripts/install.sh          what `./octopus up` needs
#   scripts/install.sh --test   plus what the test suite needs (Chromium, test packages)
# Debian packages come from apt, Python packages (pinned) go into .venv, Node-RED and its
# nodes (pinned by nodered/package-lock.json) into nodered/node_modules.
set -euo pipefail
cd "$(dirname "$0")/.."
for_tests=false
[ "${1:-}" = "--test" ] && for_tests=true

say() { echo "octopus: $*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Debian packages -----------------------------------------------------------------------
missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have mosquitto || missing+=(mosquitto)
have mosquitto_pub || missing+=(mosquitto-clients)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
have psql || missing+=(postgresql-client)
have node || missing+=(nodejs)
have npm || missing+=(npm)
have openssl || missing+=(openssl)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if $for_tests; then
  have chromium || missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
# Debian starts the packaged services; Octopus runs its own instances on its own files, and
# the packaged ones would hold ports 1883 and 5432.
for unit in mosquitto postgresql; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$unit" 2>/dev/null; then
    say "stopping and disabling the system-wide $unit service (Octopus runs its own)"
    as_root systemctl disable --now "$unit" >/dev/null 2>&1 || true
  fi
done

# --- Python packages, pinned, in .venv ----------------------------------------------------
# A stamp named after the hash of every requirements file says what is installed already;
# the test set includes the runtime set, so it satisfies `up` too.
reqs_hash=$(cat requirements.txt requirements-dev.txt webapp/requirements.txt simulators/requirements.txt | sha256sum | cut -c1-16)
requirements=requirements.txt
$for_tests && requirements=requirements-dev.txt
if [ ! -e ".venv/.installed-$reqs_hash-requirements-dev" ] && [ ! -e ".venv/.installed-$reqs_hash-${requirements%.txt}" ]; then
  say "installing Python packages from $requirements into .venv"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r "$requirements"
  rm -f .venv/.installed-*
  touch ".venv/.installed-$reqs_hash-${requirements%.txt}"
fi

# --- Node-RED and its nodes, pinned by the lock file --------------------------------------
lock_hash=$(cat nodered/package-lock.json nodered/nodes/*/package.json | sha256sum | cut -c1-16)
if [ ! -e "nodered/node_modules/.installed-$lock_hash" ]; then
  say "installing Node-RED and its nodes into nodered/node_modules (npm ci)"
  (cd nodered && npm ci --no-audit --no-fund --loglevel=error)
  touch "nodered/node_modules/.installed-$lock_hash"
fi
