#!/usr/bin/env bash
# Builds pg_tenant (release) and installs it into the system PostgreSQL's directories.
# The library is copied beside its place and renamed over it, so a server that runs meanwhile keeps
# the file it mapped (an in-place overwrite crashes running backends). That is not enough for a
# server that preloads pg_tenant: a backend that next calls one of its C functions finds a new
# inode under the library's name and loads a second copy beside the preloaded one, and crashes
# (signal 11). Restart such servers after installing.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
log=$(mktemp /tmp/pg_tenant_install.XXXXXX.log)
cargo pgrx package --pg-config "$PG_CONFIG" --no-default-features --features pg15 >"$log" 2>&1 \
  || { tail -50 "$log"; exit 1; }
rm -f "$log"
pkg=target/release/pg_tenant-pg15
libdir=$($PG_CONFIG --pkglibdir)
extdir="$($PG_CONFIG --sharedir)/extension"
place() {  # file, directory: copy, then rename into place
  local tmp
  tmp="$2/.$(basename "$1").$$"
  cp "$1" "$tmp" && chmod 644 "$tmp" && mv -f "$tmp" "$2/$(basename "$1")"
}
place "$pkg$libdir/pg_tenant.so" "$libdir"
for f in "$pkg$extdir"/*; do place "$f" "$extdir"; done
# Older versions' scripts (frozen when they were released) and the committed upgrade scripts.
for f in sql/archive/pg_tenant--*.sql sql/upgrades/pg_tenant--*.sql; do [ -f "$f" ] && place "$f" "$extdir"; done

echo "install: pg_tenant $(grep '^version' Cargo.toml | head -1 | cut -d'"' -f2) installed into $extdir"
