#!/usr/bin/env bash
# The benchmark (not a test): pgbench, side by side in one run, on a throwaway cluster.
# Prints TPS and ratios to the explicit-filter baseline, plus the plans.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_BIN=$(${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config} --bindir)
PORT=${BENCH_PORT:-54327}
SECONDS_PER_RUN=${BENCH_SECONDS:-8}
ROUNDS=${BENCH_ROUNDS:-5}
CLIENTS=${BENCH_CLIENTS:-2}
dir=$(scripts/cluster.sh start bench "$PORT")
trap 'scripts/cluster.sh stop bench' EXIT
export PGHOST=$dir PGPORT=$PORT
"$PG_BIN/psql" -X -q -U postgres -d postgres -c "CREATE DATABASE bench"
echo "== setup: 1,000 tenants, 3 x 1,000,000 rows =="
"$PG_BIN/psql" -X -q -U postgres -d bench -f bench/setup.sql
echo "== plans (as the application role) =="
"$PG_BIN/psql" -X -U bench_app -d bench -f bench/plans.sql

tps() {  # script -> TPS
  "$PG_BIN/pgbench" -n -U bench_app -M prepared -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" -D ctx=0 \
    -f "bench/$1.sql" bench 2>&1 | awk '/^tps = / { print $3; exit }'
}
echo "== warm-up (not counted) =="
for s in read_explicit read_protected read_handwritten; do
  SECONDS_PER_RUN=3 tps "$s" >/dev/null
done
declare -A best
for round in $(seq 1 "$ROUNDS"); do
  for s in read_explicit read_protected read_handwritten request_explicit request_protected request_handwritten; do
    t=$(tps "$s")
    echo "round $round  $s: $t tps"
    if [ -z "${best[$s]:-}" ] || awk "BEGIN { exit !($t > ${best[$s]}) }"; then best[$s]=$t; fi
  done
done
echo
echo "== results (best of $ROUNDS runs of ${SECONDS_PER_RUN}s, $CLIENTS clients, pgbench -M prepared) =="
printf '%-34s %12s %22s\n' "variant" "tps" "cost vs explicit WHERE"
for kind in read request; do
  base=${best[${kind}_explicit]}
  for v in explicit protected handwritten; do
    t=${best[${kind}_$v]}
    printf '%-34s %12.0f %21.3fx\n' "${kind}_$v" "$t" "$(awk "BEGIN { print $base / $t }")"
  done
done
echo "(cost ratio = baseline tps / variant tps; 1.05 means 5% slower than the explicit filter)"
