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
all=0
if [ ${#tests[@]} -eq 0 ]; then
  all=1
  for f in tests/pg_regress/sql/*.sql; do tests+=("$(basename "$f" .sql)"); done
fi
export PGHOST=$dir PGPORT=$PORT PGUSER=postgres
"$PG_REGRESS" --bindir="$($PG_CONFIG --bindir)" --host="$dir" --port="$PORT" --user=postgres \
  --inputdir=tests/pg_regress --outputdir=tests/pg_regress --dbname=pg_tenant_regress \
  "${tests[@]}" || { [ -f tests/pg_regress/regression.diffs ] && head -200 tests/pg_regress/regression.diffs; exit 1; }
[ "$all" = 1 ] || exit 0

# The quota, isolation and token files again, with pg_tenant preloaded (what the README
# recommends): count quotas then live in shared memory (src/shared_counters.rs), and every result
# must be the same. What preloading changes (a tenant in a connection's startup options is
# refused, not discarded with a warning) is in 16_startup_options, whose preloaded output is
# expected/16_startup_options_1.out (pg_regress accepts NAME_1.out as an alternative to NAME.out;
# the file prints which mode ran, so neither output passes in the other mode).
scripts/cluster.sh stop regress
dir=$(PG_TENANT_PRELOAD=1 scripts/cluster.sh start regress "$PORT")
export PGHOST=$dir
preloaded=$(mktemp -d)
cp -r tests/pg_regress/sql tests/pg_regress/expected "$preloaded/"
echo "(pg_tenant preloaded: count quotas in shared memory)"
"$PG_REGRESS" --bindir="$($PG_CONFIG --bindir)" --host="$dir" --port="$PORT" --user=postgres \
  --inputdir="$preloaded" --outputdir="$preloaded" --dbname=pg_tenant_regress \
  00_install 01_registry 02_context 03_protect 04_isolation 05_drop 06_quotas 07_export 10_schema_tenants \
  11_tokens 13_row_counter 16_startup_options 18_shared_rows \
  | sed 's/^test \([0-9a-z_]*\) /test \1 (preloaded) /' \
  || { [ -f "$preloaded/regression.diffs" ] && head -200 "$preloaded/regression.diffs"; exit 1; }
rm -rf "$preloaded"
