#!/usr/bin/env bash
# Runs the #[pg_test] units. cargo-pgrx starts its own cluster; as root it must run it as the
# unprivileged "postgres" OS user (through sudo), in a data directory that user can own.
set -euo pipefail
cd "$(dirname "$0")/.."
PGDATA_DIR=/tmp/pg_tenant_pgtest
rm -rf "$PGDATA_DIR"
if [ "$(id -u)" = 0 ]; then
  cargo pgrx test pg15 --runas postgres --pgdata "$PGDATA_DIR" || exit 1
else
  cargo pgrx test pg15 || exit 1
fi
# cargo pgrx test installed its test build (with the #[pg_test] functions) into the system
# directories; put the release build back so the other suites and the demo see the real thing.
scripts/install.sh
