#!/usr/bin/env bash
# Runs the pg_regress suite (tests/pg_regress/sql/*.sql against expected/*.out) on a throwaway
# cluster, the way supabase/pg_graphql's bin/installcheck does. Extra arguments name tests to run.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PG_REGRESS=$(dirname "$($PG_CONFIG --pgxs)")/../test/regress/pg_regress
PORT=${REGRESS_PORT:-54329}
dir=$(scripts/cluster.sh start regress "$PORT")
trap 'scripts/cluster.sh stop regress' EXIT
tests=("$@")
if [ ${#tests[@]} -eq 0 ]; then
  for f in tests/pg_regress/sql/*.sql; do tests+=("$(basename "$f" .sql)"); done
fi
export PGHOST=$dir PGPORT=$PORT PGUSER=postgres
"$PG_REGRESS" --bindir="$($PG_CONFIG --bindir)" --host="$dir" --port="$PORT" --user=postgres \
  --inputdir=tests/pg_regress --outputdir=tests/pg_regress --dbname=pg_tenant_regress \
  "${tests[@]}" || { [ -f tests/pg_regress/regression.diffs ] && head -200 tests/pg_regress/regression.diffs; exit 1; }
