# shellcheck shell=bash
# Sourced by scripts/bench.sh: the Citus part (issue 14), through the coordinator of a coordinator
# and two workers (three throwaway clusters, Citus and pg_tenant preloaded on each). A per-tenant
# point read and a single-row insert: pg_tenant (set_local() per transaction, the query routed to
# the tenant's shard) against the explicit WHERE tenant_id = (one statement; and in the same
# four-statement transaction shape as pg_tenant's) and the hand-written current_setting() policy
# (which fans out to every shard); the count-quota insert against the same insert without quota.
# Rounds in rotating order; reported: the median of each round's ratio, and the best tps.
# pgbench -M simple (every variant alike): the hand-written policy needs its tenant in a SET LOCAL
# (Citus forwards only that to the workers), which a prepared statement cannot take as a parameter.
citus() {
  local C W1 W2 conf node round s t i
  C=$(suite_port bench_citus_coord); W1=$(suite_port bench_citus_w1); W2=$(suite_port bench_citus_w2)
  conf=$(citus_conf citus,pg_tenant)
  for node in bench_citus_coord:$C bench_citus_w1:$W1 bench_citus_w2:$W2; do
    PG_TENANT_CONF="$conf" scripts/cluster.sh start "${node%%:*}" "${node##*:}" >/dev/null
    bench_clusters+=("${node%%:*}")
    "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "${node##*:}" -U postgres -d postgres -c "CREATE DATABASE bench" >/dev/null
    "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "${node##*:}" -U postgres -d bench -c "CREATE EXTENSION citus" >/dev/null
  done
  "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$C" -U postgres -d bench -v ON_ERROR_STOP=1 >/dev/null <<SQL
SELECT citus_set_coordinator_host('127.0.0.1', $C);
SELECT citus_add_node('127.0.0.1', $W1);
SELECT citus_add_node('127.0.0.1', $W2);
SQL
  echo "== Citus setup: coordinator + 2 workers, 100 tenants, 3 x 200,000 rows, 32 shards =="
  "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$C" -U postgres -d bench -f bench/citus/setup.sql >/dev/null
  echo "== Citus plans (as the application role) =="
  "$PG_BIN/psql" -X -h 127.0.0.1 -p "$C" -U bench_app -d bench -f bench/citus/plans.sql | grep -E 'Task Count|Tasks Shown|EXPLAIN|^ *->  Custom' || true
  ctps() {  # script -> TPS through the coordinator
    "$PG_BIN/pgbench" -n -h 127.0.0.1 -p "$C" -U bench_app -M simple -c "$CLIENTS" -j 2 -T "$SECONDS_PER_RUN" -D ctx=0 \
      -f "bench/citus/$1.sql" bench 2>&1 | awk '/^tps = / { print $3; exit }'
  }
  local variants=(read_explicit read_explicit_txn read_protected read_rls insert_explicit insert_explicit_txn insert_protected insert_quota)
  for s in "${variants[@]}"; do SECONDS_PER_RUN=2 ctps "$s" >/dev/null; done
  declare -A best this
  local p_stmt="" p_txn="" p_rls="" p_ins_stmt="" p_ins_txn="" p_quota=""
  for round in $(seq 1 "$ROUNDS"); do
    # (Rotating order: each round starts one variant later.)
    for i in $(seq 0 $((${#variants[@]} - 1))); do
      s=${variants[$(( (i + round) % ${#variants[@]} ))]}
      t=$(ctps "$s")
      echo "round $round  citus $s: $t tps"
      this[$s]=$t
      if [ -z "${best[$s]:-}" ] || awk "BEGIN { exit !($t > ${best[$s]}) }"; then best[$s]=$t; fi
    done
    p_stmt+=" $(ratio "${this[read_explicit]}" "${this[read_protected]}")"
    p_txn+=" $(ratio "${this[read_explicit_txn]}" "${this[read_protected]}")"
    p_rls+=" $(ratio "${this[read_explicit_txn]}" "${this[read_rls]}")"
    p_ins_stmt+=" $(ratio "${this[insert_explicit]}" "${this[insert_protected]}")"
    p_ins_txn+=" $(ratio "${this[insert_explicit_txn]}" "${this[insert_protected]}")"
    p_quota+=" $(ratio "${this[insert_protected]}" "${this[insert_quota]}")"
  done
  echo
  echo "== Citus results ($ROUNDS rounds of ${SECONDS_PER_RUN}s, $CLIENTS clients, pgbench -M simple, through the coordinator) =="
  printf '%-58s %10s\n' "variant (best tps)" "tps"
  for s in "${variants[@]}"; do printf '%-58s %10.0f\n' "$s" "${best[$s]}"; done
  echo "cost ratios (baseline tps / variant tps, median of the rounds' ratios):"
  printf '  %-64s %sx\n' "point read, pg_tenant routed vs explicit WHERE (same transaction)" "$(echo "$p_txn" | median)"
  printf '  %-64s %sx\n' "point read, pg_tenant routed vs explicit WHERE (one statement)" "$(echo "$p_stmt" | median)"
  printf '  %-64s %sx\n' "point read, current_setting() policy (fan-out) vs explicit (txn)" "$(echo "$p_rls" | median)"
  printf '  %-64s %sx\n' "insert, pg_tenant vs explicit tenant_id (same transaction)" "$(echo "$p_ins_txn" | median)"
  printf '  %-64s %sx\n' "insert, pg_tenant vs explicit tenant_id (one statement)" "$(echo "$p_ins_stmt" | median)"
  printf '  %-64s %sx\n' "insert, pg_tenant count quota vs no quota" "$(echo "$p_quota" | median)"
  local rows
  rows=$("$PG_BIN/psql" -X -q -t -A -h 127.0.0.1 -p "$C" -U postgres -d bench -c "SELECT (SELECT count(*) FROM c_ins_quota) = (SELECT sum(used) FROM tenant.usage WHERE resource = 'c_rows')")
  echo "(count quota exact after the run: $rows)"
}
