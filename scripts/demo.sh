#!/usr/bin/env bash
# The tour: a throwaway cluster, examples/demo.sql run through psql with every statement shown,
# then the cluster is stopped.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"   # the port (no SUITE: no check counting)
PORT=$(suite_port demo)
dir=$(scripts/cluster.sh start demo "$PORT")
trap 'scripts/cluster.sh stop demo' EXIT
PSQL="$(${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config} --bindir)/psql"
"$PSQL" -X -h "$dir" -p "$PORT" -U postgres -d postgres -q -c "CREATE DATABASE demo"
echo "== pg_tenant demo (cluster $dir, port $PORT) =="
PGHOST=$dir PGPORT=$PORT "$PSQL" -X -h "$dir" -p "$PORT" -U postgres -d demo \
  --echo-all --no-psqlrc -v VERBOSITY=default -P pager=off -f examples/demo.sql 2>&1
echo "== demo finished; cluster stopped =="
