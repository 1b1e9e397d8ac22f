#!/usr/bin/env bash
# Builds pg_tenant (release) and installs it into the system PostgreSQL's directories.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
cargo pgrx install --release --pg-config "$PG_CONFIG" --no-default-features --features pg15 >/tmp/pg_tenant_install.log 2>&1 \
  || { tail -50 /tmp/pg_tenant_install.log; exit 1; }
echo "install: pg_tenant $(grep '^version' Cargo.toml | head -1 | cut -d'"' -f2) installed into $($PG_CONFIG --sharedir)/extension"
