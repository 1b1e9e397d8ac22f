#!/usr/bin/env bash
# Runs the #[pg_test] units. cargo-pgrx starts its own cluster; as root it must run it as the
# unprivileged "postgres" OS user (through sudo), in a data directory that user can own.
set -euo pipefail
cd "$(dirname "$0")/.."
PGDATA_DIR=/tmp/pg_tenant_pgtest
rm -rf "$PGDATA_DIR"
if [ "$(id -u)" = 0 ]; then
  cargo pgrx test pg15 --runas postgres --pgdata "$PGDATA_DIR"
else
  cargo pgrx test pg15
fi
