#!/usr/bin/env bash
# Builds pg_tenant (release) and installs it into the system PostgreSQL's directories.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
cargo pgrx install --release --pg-config "$PG_CONFIG" --no-default-features --features pg15 >/tmp/pg_tenant_install.log 2>&1 \
  || { tail -50 /tmp/pg_tenant_install.log; exit 1; }
# Older versions' scripts (frozen when they were released) and the upgrade scripts, each built
# from the files its manifest lists.
extdir="$($PG_CONFIG --sharedir)/extension"
cp sql/archive/pg_tenant--*.sql "$extdir/"
for manifest in sql/upgrades/*.files; do
  target="$extdir/$(basename "$manifest" .files).sql"
  grep -v '^#' "$manifest" | xargs cat > "$target"
done
echo "install: pg_tenant $(grep '^version' Cargo.toml | head -1 | cut -d'"' -f2) installed into $($PG_CONFIG --sharedir)/extension"
