#!/usr/bin/env bash
# Runs the pg_regress suite (tests/pg_regress/sql/*.sql against expected/*.out) on a throwaway
# cluster, the way supabase/pg_graphql's bin/installcheck does; then the files listed in
# tests/pg_regress/preloaded again, with pg_tenant preloaded. Each file counts as one check.
# Extra arguments name files to run (once, without the preloaded pass).
SUITE=pg_regress
. "$(dirname "$0")/../lib.sh"
PG_REGRESS=$(dirname "$($PG_CONFIG --pgxs)")/../test/regress/pg_regress
PORT=$(suite_port regress)
HERE=tests/pg_regress
tests=("$@")
preloaded=()
if [ ${#tests[@]} -eq 0 ]; then
  for f in "$HERE"/sql/*.sql; do tests+=("$(basename "$f" .sql)"); done
  while read -r name; do
    [ -f "$HERE/sql/$name.sql" ] || { echo "test $SUITE: $HERE/preloaded names $name, which has no $HERE/sql/$name.sql ... FAILED"; exit 1; }
    preloaded+=("$name")
  done < <(grep -v '^#' "$HERE/preloaded" | grep .)
fi
EXPECTED_CHECKS=$((${#tests[@]} + ${#preloaded[@]}))   # one per file and pass
start_cluster regress "$PORT"
export PGUSER=postgres

# regress INPUTDIR NAMES...: pg_regress over NAMES, their outputs in INPUTDIR; on failure the
# start of the diffs.
regress() {
  local in=$1; shift
  count_checks "$PG_REGRESS" --bindir="$PG_BIN" --host="$dir" --port="$PORT" --user=postgres \
    --inputdir="$in" --outputdir="$in" --dbname=pg_tenant_regress "$@" \
    || { [ -f "$in/regression.diffs" ] && head -200 "$in/regression.diffs"; return 1; }
}
regress "$HERE" "${tests[@]}" || exit 1
[ ${#preloaded[@]} -gt 0 ] || exit 0

scripts/cluster.sh stop regress
dir=$(PG_TENANT_PRELOAD=1 scripts/cluster.sh start regress "$PORT") || exit 1
export PGHOST=$dir
work=$(mktemp -d)
cp -r "$HERE/sql" "$HERE/expected" "$work/"
echo "(pg_tenant preloaded: count quotas in shared memory)"
regress "$work" "${preloaded[@]}" > >(sed 's/^test \([0-9a-z_]*\) /test \1 (preloaded) /') || exit 1
rm -rf "$work"
exit "$failed"
