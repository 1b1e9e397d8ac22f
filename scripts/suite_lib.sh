# Sourced by the shell test suites (concurrency, shared_counters, pooler, dump_restore, upgrade): a
# throwaway cluster, check() printing the "test SUITE: NAME ... ok|FAILED" lines scripts/test.sh
# counts, and race_clients() for the exactness races.
# The sourcing script sets SUITE first.
set -uo pipefail
cd "$(dirname "$0")/.."
# Exported: scripts/cluster.sh starts clusters with the same PostgreSQL.
export PG_BIN=$(${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config} --bindir)
failed=0

# start_cluster NAME PORT: sets $dir and PGHOST/PGPORT; the cluster stops when the script exits.
start_cluster() {
  dir=$(scripts/cluster.sh start "$1" "$2") || exit 1
  # shellcheck disable=SC2064 # the name is meant to be expanded now
  trap "scripts/cluster.sh stop $1" EXIT
  export PGHOST=$dir PGPORT=$2
}

check() {  # name, expected, actual
  if [ "$2" = "$3" ]; then
    echo "test $SUITE: $1 ... ok"
  else
    echo "test $SUITE: $1 ... FAILED (expected '$2', got '$3')"
    failed=1
  fi
}

# race_clients ROLE DB TENANT NAME STATEMENT ATTEMPTS: $CLIENTS parallel psql sessions of ROLE,
# each acting for TENANT and running STATEMENT ATTEMPTS times in autocommit, with rolled-back
# attempts in between (whole, and to a savepoint) that must not count. @TAG@ marks a success's
# output ("won:"); prints how many won. Files go to $work.
race_clients() {
  local role=$1 db=$2 tenant=$3 name=$4 stmt=$5 n=$6
  for c in $(seq 1 "$CLIENTS"); do
    {
      echo "SELECT tenant.set('$tenant') IS NOT NULL;"
      for i in $(seq 1 "$n"); do
        echo "${stmt//@TAG@/won};"
        if [ $((i % 4)) = 0 ]; then echo "BEGIN; ${stmt//@TAG@/rolled-back}; ROLLBACK;"; fi
        if [ $((i % 5)) = 0 ]; then echo "BEGIN; SAVEPOINT s; ${stmt//@TAG@/rolled-back}; ROLLBACK TO s; COMMIT;"; fi
      done
    } > "$work/$name.$c.sql"
  done
  for c in $(seq 1 "$CLIENTS"); do
    "$PG_BIN/psql" -X -q -t -A -U "$role" -d "$db" -f "$work/$name.$c.sql" > "$work/$name.$c.out" 2>&1 &
  done
  wait
  cat "$work/$name".*.out | grep -c '^won:'
}
