#!/usr/bin/env bash
# The benchmark (not a test): pgbench, side by side in one run, on a throwaway cluster.
# Prints TPS and ratios to the explicit-filter baseline, plus the plans.
set -euo pipefail
. "$(dirname "$0")/../tests/lib.sh"   # PG_BIN and the port (no SUITE: no check counting)
PORT=$(suite_port bench)
SECONDS_PER_RUN=${BENCH_SECONDS:-8}
ROUNDS=${BENCH_ROUNDS:-5}
CLIENTS=${BENCH_CLIENTS:-2}
PARTS=${1:-reads quotas stats clone citus}
# pg_tenant preloaded: count quotas in shared memory (the quotas part also measures without).
dir=$(PG_TENANT_PRELOAD=1 scripts/cluster.sh start bench "$PORT")
bench_clusters=(bench)  # stopped at exit (the citus part adds its three)
trap 'for c in "${bench_clusters[@]}"; do scripts/cluster.sh stop "$c" >/dev/null 2>&1; done' EXIT
export PGHOST=$dir PGPORT=$PORT
"$PG_BIN/psql" -X -q -U postgres -d postgres -c "CREATE DATABASE bench"

tps() {  # script -> TPS
  "$PG_BIN/pgbench" -n -U bench_app -M prepared -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" -D ctx=0 \
    -f "bench/$1.sql" bench 2>&1 | awk '/^tps = / { print $3; exit }'
}
ratio() { awk "BEGIN { printf \"%.3f\", $1 / $2 }"; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2]; else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

reads() {
echo "== setup: 1,000 tenants, 3 x 1,000,000 rows =="
"$PG_BIN/psql" -X -q -U postgres -d bench -f bench/setup.sql
echo "== plans (as the application role) =="
"$PG_BIN/psql" -X -U bench_app -d bench -f bench/plans.sql

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
}

quotas() {
declare -A this
local paired_quota="" paired_plpgsql="" paired_copy=""
echo "== quota setup: 100 tenants =="
"$PG_BIN/psql" -X -q -U postgres -d bench -f bench/quota_setup.sql >/dev/null
local clients=$CLIENTS
CLIENTS=4
declare -A best
for round in $(seq 1 "$ROUNDS"); do
  for s in insert_plain insert_quota insert_plpgsql consume; do
    t=$(tps "$s")
    echo "round $round  $s: $t tps"
    if [ -z "${best[$s]:-}" ] || awk "BEGIN { exit !($t > ${best[$s]}) }"; then best[$s]=$t; fi
    this[$s]=$t
  done
  # The same round's plain and quota runs, one after the other: a paired ratio.
  paired_quota+=" $(ratio "${this[insert_plain]}" "${this[insert_quota]}")"
  paired_plpgsql+=" $(ratio "${this[insert_plain]}" "${this[insert_plpgsql]}")"
done
# The same single-row inserts with pg_tenant not preloaded: the count quota on its counter row.
sed -i "/^shared_preload_libraries/d" "$dir/data/postgresql.conf"
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w restart -m fast >/dev/null
for round in $(seq 1 "$ROUNDS"); do
  for s in insert_plain insert_quota; do
    t=$(tps "$s")
    echo "round $round  $s (not preloaded): $t tps"
    if [ -z "${best[${s}_table]:-}" ] || awk "BEGIN { exit !($t > ${best[${s}_table]}) }"; then best[${s}_table]=$t; fi
  done
done
echo "shared_preload_libraries = 'pg_tenant'" >>"$dir/data/postgresql.conf"
runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w restart -m fast >/dev/null
CLIENTS=$clients
# COPY of 100,000 rows for one tenant (as a superuser: PostgreSQL refuses COPY FROM into a table
# with row-level security to roles it filters) into a fresh protected table per round, with and
# without a count quota, alternating; best of the rounds. check_quota() first, untimed: after
# attach_quota the first use counts the tenant's rows into shared memory once; the COPY is timed
# in the steady state.
"$PG_BIN/psql" -X -q -U postgres -d bench -c "COPY (SELECT g, md5(g::text) FROM generate_series(1, 100000) g) TO '$dir/copy.data'"
declare -A copy_best
for round in $(seq 1 $((ROUNDS * 2))); do
  for v in plain quota; do
    "$PG_BIN/psql" -X -q -U postgres -d bench -c "DROP TABLE IF EXISTS copy_$v" \
      -c "CREATE TABLE copy_$v (id bigint, payload text)" -c "SELECT tenant.protect('copy_$v')" >/dev/null
    if [ "$v" = quota ]; then
      "$PG_BIN/psql" -X -q -U postgres -d bench -c "SELECT tenant.attach_quota('copy_quota', 'copy_items', 'count')" >/dev/null
    fi
    "$PG_BIN/psql" -X -q -U postgres -d bench -c "CHECKPOINT"
    ms=$("$PG_BIN/psql" -X -q -U postgres -d bench -c "SELECT tenant.set('q1')" \
          -c "SELECT used FROM tenant.check_quota('copy_items')" -c '\timing on' \
          -c "COPY copy_$v (id, payload) FROM '$dir/copy.data'" | awk '/^Time: / { print $2 }')
    echo "round $round  copy_$v: $ms ms"
    if [ -z "${copy_best[$v]:-}" ] || awk "BEGIN { exit !($ms < ${copy_best[$v]}) }"; then copy_best[$v]=$ms; fi
    this[copy_$v]=$ms
  done
  paired_copy+=" $(ratio "${this[copy_quota]}" "${this[copy_plain]}")"
done
echo
echo "== quota results (best of $ROUNDS, 4 clients, 100 tenants, pgbench -M prepared; pg_tenant preloaded unless said) =="
printf '%-44s %12s %12s\n' "variant" "tps" "cost ratio"
printf '%-44s %12.0f %11sx\n' "single-row insert, no quota (baseline)" "${best[insert_plain]}" "1.000"
printf '%-44s %12.0f %11sx\n' "single-row insert, pg_tenant count quota" "${best[insert_quota]}" "$(ratio "${best[insert_plain]}" "${best[insert_quota]}")"
printf '%-44s %12.0f %11sx\n' "single-row insert, PL/pgSQL row trigger" "${best[insert_plpgsql]}" "$(ratio "${best[insert_plain]}" "${best[insert_plpgsql]}")"
printf '%-44s %12.0f %11sx\n' "not preloaded: no quota (baseline)" "${best[insert_plain_table]}" "1.000"
printf '%-44s %12.0f %11sx\n' "not preloaded: count quota (counter row)" "${best[insert_quota_table]}" "$(ratio "${best[insert_plain_table]}" "${best[insert_quota_table]}")"
printf '%-44s %12s %11sx\n' "COPY 100,000 rows, no quota (baseline)" "${copy_best[plain]} ms" "1.000"
printf '%-44s %12s %11sx\n' "COPY 100,000 rows, count quota" "${copy_best[quota]} ms" "$(ratio "${copy_best[quota]}" "${copy_best[plain]}")"
printf '%-44s %12.0f\n' "tenant.consume() calls per second" "${best[consume]}"
echo "(cost ratio: of the best runs. Median of the paired ratios (each round's runs back to back):"
echo " count quota $(echo "$paired_quota" | median)x, PL/pgSQL trigger $(echo "$paired_plpgsql" | median)x, COPY $(echo "$paired_copy" | median)x)"
}

clone() {
# clone_schema of pagila against the fastest faithful way users have today: pg_dump of the
# schema, renamed, replayed by psql in one transaction. Both timed the same way (wall clock of
# the client process, connection included), best of the rounds.
local pagila=../shared/fixtures/pagila/pagila-in-schema-pagila.sql
local tenants=${BENCH_TENANTS:-1000}
echo "== clone setup: pagila =="
"$PG_BIN/psql" -X -q -U postgres -d bench -c "CREATE EXTENSION IF NOT EXISTS pg_tenant" >/dev/null
"$PG_BIN/psql" -X -q -U postgres -d bench -f "$pagila" >/dev/null
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
declare -A best
for round in $(seq 1 "$ROUNDS"); do
  for v in dump_schema clone_schema dump_data clone_data; do
    local target="b_${v}_$round" start
    start=$(date +%s%N)
    case $v in
      dump_schema) "$PG_BIN/pg_dump" -U postgres --schema-only -n pagila bench | sed "s/\bpagila\b/$target/g" \
                     | "$PG_BIN/psql" -X -q -1 -v ON_ERROR_STOP=1 -U postgres -d bench >/dev/null ;;
      dump_data)   "$PG_BIN/pg_dump" -U postgres -n pagila bench | sed "s/\bpagila\b/$target/g" \
                     | "$PG_BIN/psql" -X -q -1 -v ON_ERROR_STOP=1 -U postgres -d bench >/dev/null ;;
      clone_schema) "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -U postgres -d bench \
                     -c "SELECT count(*) FROM tenant.clone_schema('pagila', '$target')" >/dev/null ;;
      clone_data)  "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -U postgres -d bench \
                     -c "SELECT count(*) FROM tenant.clone_schema('pagila', '$target', true)" >/dev/null ;;
    esac
    local ms; ms=$(ms_since "$start")
    echo "round $round  $v: $ms ms"
    if [ -z "${best[$v]:-}" ] || [ "$ms" -lt "${best[$v]}" ]; then best[$v]=$ms; fi
    "$PG_BIN/psql" -X -q -U postgres -d bench -c "DROP SCHEMA \"$target\" CASCADE" >/dev/null 2>&1
  done
done
echo "== provisioning $tenants schema tenants from pagila (one transaction each), then one migration =="
local start; start=$(date +%s%N)
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -U postgres -d bench -c "
  DO \$\$ BEGIN
    FOR i IN 1..$tenants LOOP
      PERFORM tenant.create('bench-' || i, isolation => 'schema', template => 'pagila');
      COMMIT;
    END LOOP;
  END \$\$"
local provision_ms; provision_ms=$(ms_since "$start")
start=$(date +%s%N)
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -U postgres -d bench -c "SET client_min_messages = warning" \
  -c "CALL tenant.migrate_batches('bench_001', 'ALTER TABLE film ADD COLUMN subtitle text; CREATE INDEX ON film (subtitle)', 100)"
local migrate_ms; migrate_ms=$(ms_since "$start")
start=$(date +%s%N)
"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -U postgres -d bench -c "SELECT tenant.refresh_usage()" >/dev/null
local refresh_ms; refresh_ms=$(ms_since "$start")
echo
echo "== clone results (best of $ROUNDS; pagila: 22 tables, about 46,000 rows) =="
printf '%-52s %10s %16s\n' "variant" "ms" "ratio to pg_dump"
printf '%-52s %10s %15sx\n' "pg_dump --schema-only | rename | psql -1 (baseline)" "${best[dump_schema]}" "1.000"
printf '%-52s %10s %15sx\n' "tenant.clone_schema(pagila, target)" "${best[clone_schema]}" "$(ratio "${best[clone_schema]}" "${best[dump_schema]}")"
printf '%-52s %10s %15sx\n' "pg_dump (with data) | rename | psql -1 (baseline)" "${best[dump_data]}" "1.000"
printf '%-52s %10s %15sx\n' "tenant.clone_schema(pagila, target, true)" "${best[clone_data]}" "$(ratio "${best[clone_data]}" "${best[dump_data]}")"
printf '%-52s %10s %16s\n' "provision $tenants schema tenants (tenant.create)" "$provision_ms" "$(awk "BEGIN { printf \"%.1f tenants/s\", $tenants * 1000 / $provision_ms }")"
printf '%-52s %10s\n' "tenant.refresh_usage() over $tenants schema tenants" "$refresh_ms"
printf '%-52s %10s %16s\n' "migrate_batches across $((tenants + 1)) schemas" "$migrate_ms" "$(awk "BEGIN { printf \"%.1f schemas/s\", ($tenants + 1) * 1000 / $migrate_ms }")"
}

stats() {
# Per-tenant statistics (src/stats/) on against off, for the protected read (one tenant per
# connection), the single-row insert, and SELECT 1 (the cheapest statement, the worst case): the same scripts, pg_tenant.stats toggled with ALTER
# SYSTEM and a reload between runs (new connections see it), in one run side by side, the order
# of on and off alternating by round. Reported: the median of the rounds' paired ratios
# (off tps / on tps: 1.03 means statistics cost 3%), and the best of each.
if [ "$("$PG_BIN/psql" -X -q -t -A -U postgres -d bench -c "SELECT to_regclass('orders_protected') IS NOT NULL")" != t ]; then
  echo "== setup (reads): 1,000 tenants, 3 x 1,000,000 rows =="
  "$PG_BIN/psql" -X -q -U postgres -d bench -f bench/setup.sql
fi
if [ "$("$PG_BIN/psql" -X -q -t -A -U postgres -d bench -c "SELECT to_regclass('items_plain') IS NOT NULL")" != t ]; then
  echo "== setup (inserts): 100 tenants =="
  "$PG_BIN/psql" -X -q -U postgres -d bench -f bench/quota_setup.sql >/dev/null
fi
toggle() {
  "$PG_BIN/psql" -X -q -U postgres -d bench -c "ALTER SYSTEM SET pg_tenant.stats = $1" -c "SELECT pg_reload_conf()" >/dev/null
  sleep 0.3
}
local clients=$CLIENTS paired_read="" paired_insert="" paired_select1=""
declare -A best this
SECONDS_PER_RUN=3 tps read_protected >/dev/null
for round in $(seq 1 "$ROUNDS"); do
  local order="on off"
  if [ $((round % 2)) = 0 ]; then order="off on"; fi
  for mode in $order; do
    toggle "$mode"
    for s in read_protected insert_plain stats_select1; do
      if [ "$s" = read_protected ]; then CLIENTS=$clients; else CLIENTS=4; fi
      t=$(tps "$s")
      echo "round $round  $s, statistics $mode: $t tps"
      this[${s}_$mode]=$t
      if [ -z "${best[${s}_$mode]:-}" ] || awk "BEGIN { exit !($t > ${best[${s}_$mode]}) }"; then best[${s}_$mode]=$t; fi
    done
  done
  paired_read+=" $(ratio "${this[read_protected_off]}" "${this[read_protected_on]}")"
  paired_insert+=" $(ratio "${this[insert_plain_off]}" "${this[insert_plain_on]}")"
  paired_select1+=" $(ratio "${this[stats_select1_off]}" "${this[stats_select1_on]}")"
done
CLIENTS=$clients
# The same toggle, measured in CPU time instead of throughput (which other work on the machine
# moves far more than the statistics do): one backend runs STATS_STATEMENTS (default 100,000)
# SELECT 1 as a tenant, then sleeps while its CPU time (utime + stime) is read from /proc.
local n=${STATS_STATEMENTS:-100000} hz cpu_pairs=""
hz=$(getconf CLK_TCK)
awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) print "SELECT 1;" }' >"$dir/select1.sql"
cpu_ticks() {
  { echo "SELECT tenant.set('q1') IS NULL;"; cat "$dir/select1.sql"; echo "SELECT pg_sleep(60);"; } |
    "$PG_BIN/psql" -X -q -t -A -U bench_app -d bench >/dev/null 2>&1 &
  local job=$! pid=""
  while [ -z "$pid" ]; do
    sleep 0.2
    pid=$("$PG_BIN/psql" -X -q -t -A -U postgres -d bench -c "SELECT pid FROM pg_stat_activity WHERE usename = 'bench_app' AND query = 'SELECT pg_sleep(60);' AND state = 'active'")
  done
  awk '{ print $14 + $15 }' "/proc/$pid/stat"
  "$PG_BIN/psql" -X -q -U postgres -d bench -c "SELECT pg_cancel_backend($pid)" >/dev/null
  wait "$job"
}
declare -A ticks
for round in 1 2 3; do
  local order="on off"
  if [ $((round % 2)) = 0 ]; then order="off on"; fi
  for mode in $order; do
    toggle "$mode"
    ticks[$mode]=$(cpu_ticks)
    echo "round $round  $n x SELECT 1, statistics $mode: ${ticks[$mode]} ticks of CPU"
  done
  cpu_pairs+=" $(awk "BEGIN { printf \"%.2f\", (${ticks[on]} - ${ticks[off]}) * 1000000 / $hz / $n }")"
done
"$PG_BIN/psql" -X -q -U postgres -d bench -c "ALTER SYSTEM RESET pg_tenant.stats" -c "SELECT pg_reload_conf()" >/dev/null
echo
echo "== statistics results ($ROUNDS rounds of ${SECONDS_PER_RUN}s, pgbench -M prepared; reads $CLIENTS clients, the others 4) =="
printf '%-44s %12s %12s %14s\n' "variant" "best tps off" "best tps on" "cost (median)"
printf '%-44s %12.0f %12.0f %13sx\n' "protected read, one tenant per connection" "${best[read_protected_off]}" "${best[read_protected_on]}" "$(echo "$paired_read" | median)"
printf '%-44s %12.0f %12.0f %13sx\n' "single-row insert into a protected table" "${best[insert_plain_off]}" "${best[insert_plain_on]}" "$(echo "$paired_insert" | median)"
printf '%-44s %12.0f %12.0f %13sx\n' "SELECT 1 as a tenant (the worst case)" "${best[stats_select1_off]}" "${best[stats_select1_on]}" "$(echo "$paired_select1" | median)"
echo "(cost: median over the rounds of off tps / on tps; paired ratios: read$paired_read; insert$paired_insert; SELECT 1$paired_select1)"
echo "backend CPU per counted statement (on - off, microseconds; median of 3 rounds of $n x SELECT 1): $(echo "$cpu_pairs" | median) (rounds:$cpu_pairs)"
}

. bench/citus.sh
for part in $PARTS; do "$part"; done
