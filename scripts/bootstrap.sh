#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build and test pg_tenant. Idempotent: each step
# is skipped when its result is already there. Runs as root (apt) or with sudo available.
set -euo pipefail
PG_MAJOR=${PG_MAJOR:-15}
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
PGRX_VERSION=0.18.0

need_pkgs=()
for p in postgresql-$PG_MAJOR postgresql-server-dev-$PG_MAJOR libclang-dev clang sudo pgbouncer shellcheck; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  # Debian's package starts a cluster of its own; the project's tests use throwaway clusters only.
  systemctl disable --now pgbouncer >/dev/null 2>&1 || service pgbouncer stop >/dev/null 2>&1 || true
fi

# The test clusters' private ports (tests/lib.sh, from 54300) lie in the kernel's ephemeral range:
# keep them out of it where the machine lets us (scripts/cluster.sh also retries a busy port).
reserved=/proc/sys/net/ipv4/ip_local_reserved_ports
if [ -w "$reserved" ] && [ -z "$(cat "$reserved" 2>/dev/null)" ]; then
  echo 54300-54399 >"$reserved" 2>/dev/null || true
fi

if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  echo "bootstrap: installing cargo-pgrx $PGRX_VERSION (takes several minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

PGRX_HOME=${PGRX_HOME:-$HOME/.pgrx}
if ! grep -qs "pg$PG_MAJOR = \"$PG_CONFIG\"" "$PGRX_HOME/config.toml"; then
  echo "bootstrap: cargo pgrx init --pg$PG_MAJOR $PG_CONFIG"
  cargo pgrx init --pg"$PG_MAJOR" "$PG_CONFIG"
fi

# The application client examples (clients/): psycopg for Python, pg for Node.js.
if ! python3 -c 'import psycopg' 2>/dev/null; then
  echo "bootstrap: installing psycopg"
  python3 -m pip install --quiet --root-user-action=ignore "psycopg[binary]"
fi
here=$(cd "$(dirname "$0")/.." && pwd)
if [ ! -d "$here/clients/node/node_modules/pg" ]; then
  echo "bootstrap: installing the Node.js client's packages"
  (cd "$here/clients/node" && npm ci --no-audit --no-fund --loglevel=error)
fi
# Citus 13.2.2 (the distributed engine, for the Citus suite), built from the source in
# ../shared/vendor because its packages are not reachable here (about 2 minutes the first time).
if ! grep -qs "default_version = '13.2-1'" "$($PG_CONFIG --sharedir)/extension/citus.control"; then
  echo "bootstrap: building Citus 13.2.2 from ../shared/vendor/citus (about 2 minutes)"
  PG_CONFIG="$PG_CONFIG" bash "$here/../shared/vendor/citus/build.sh"
fi
echo "bootstrap: ok"
