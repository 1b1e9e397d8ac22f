# Sourced by the shell test suites (concurrency, pooler, dump_restore, upgrade): a throwaway
# cluster, and check() printing the "test SUITE: NAME ... ok|FAILED" lines scripts/test.sh counts.
# The sourcing script sets SUITE first.
set -uo pipefail
cd "$(dirname "$0")/.."
PG_BIN=$(${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config} --bindir)
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
