# shellcheck shell=bash
# Sourced by every test suite (tests/FEATURE/run.sh) and by the scripts that start a throwaway
# cluster (scripts/demo.sh, scripts/bench.sh). It gives:
#   - the repository root as the working directory, PG_BIN (exported: scripts/cluster.sh starts
#     clusters with the same PostgreSQL);
#   - ports: suite_port NAME, from one base, PG_TENANT_PORT_BASE (default 54300): a second checkout
#     testing beside this one sets that one variable (and its clusters then live in
#     /tmp/pg_tenant_portsBASE/, unless PG_TENANT_CLUSTER_DIR says where). A suite's own *_PORT
#     variable still overrides its port;
#   - start_cluster, and on_exit for whatever a suite must stop when it ends;
#   - check, printing the "test SUITE: NAME ... ok|FAILED" lines, and count_checks for the lines of
#     a program the suite runs (Python, Node.js, Rust, pg_regress);
#   - at exit, the declared number of checks: a suite sets EXPECTED_CHECKS (after sourcing this
#     file); one that ran fewer (it stopped early) or more fails, and the closing line
#       summary SUITE: P passed, F failed, M missing of E declared
#     is what scripts/test.sh adds up (missing checks count as failures).
# The sourcing script sets SUITE first.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
PG_BIN=$("$PG_CONFIG" --bindir)
export PG_BIN
PG_TENANT_PORT_BASE=${PG_TENANT_PORT_BASE:-54300}
if [ -z "${PG_TENANT_CLUSTER_DIR:-}" ] && [ "$PG_TENANT_PORT_BASE" != 54300 ]; then
  export PG_TENANT_CLUSTER_DIR=/tmp/pg_tenant_ports$PG_TENANT_PORT_BASE
  mkdir -p "$PG_TENANT_CLUSTER_DIR"
fi
failed=0          # 1 once anything failed (the suite exits with it)
checks_ran=0      # check lines printed, ok or not
checks_failed=0   # of which FAILED

# suite_port NAME: the port of a cluster (or of the pgbouncer of the pooler suite): the suite's
# *_PORT variable when set, else PG_TENANT_PORT_BASE + its offset. Every port of the project is here.
suite_port() {
  local var off
  case $1 in
    standby) var=STANDBY_PORT off=13 ;;
    standby_replica) var=STANDBY_REPLICA_PORT off=14 ;;
    admin_changes) var=ADMIN_CHANGES_PORT off=15 ;;
    admin_changes_pre) var=ADMIN_CHANGES_PRE_PORT off=16 ;;
    security_pre) var=SECURITY_PRE_PORT off=17 ;;
    security) var=SECURITY_PORT off=18 ;;
    faults) var=FAULTS_PORT off=19 ;;
    shared_counters) var=SHARED_COUNTERS_PORT off=20 ;;
    clients) var=CLIENTS_PORT off=21 ;;
    upgrade) var=UPGRADE_PORT off=22 ;;
    dump_restore) var=DUMP_PORT off=23 ;;
    pooler) var=POOLER_PG_PORT off=24 ;;
    pgbouncer) var=POOLER_PORT off=30 ;;
    clone_fidelity) var=CLONE_PORT off=25 ;;
    concurrency) var=CONCURRENCY_PORT off=26 ;;
    bench) var=BENCH_PORT off=27 ;;
    demo) var=DEMO_PORT off=28 ;;
    regress) var=REGRESS_PORT off=29 ;;
    citus_coord) var=CITUS_PORT off=31 ;;
    citus_w1) var=CITUS_W1_PORT off=32 ;;
    citus_w2) var=CITUS_W2_PORT off=33 ;;
    citus_w3) var=CITUS_W3_PORT off=34 ;;
    sessions) var=SESSIONS_PORT off=35 ;;
    sessions_pre) var=SESSIONS_PRE_PORT off=36 ;;
    stats) var=STATS_PORT off=37 ;;
    bench_citus_coord) var=BENCH_CITUS_PORT off=38 ;;
    bench_citus_w1) var=BENCH_CITUS_W1_PORT off=39 ;;
    bench_citus_w2) var=BENCH_CITUS_W2_PORT off=40 ;;
    *) echo "suite_port: no port for '$1' (tests/lib.sh)" >&2; return 1 ;;
  esac
  echo "${!var:-$((PG_TENANT_PORT_BASE + off))}"
}

# citus_conf PRELOAD: the postgresql.conf lines of a Citus node (tests/citus, the bench), with
# shared_preload_libraries = PRELOAD ('citus' or 'citus,pg_tenant').
citus_conf() {
  printf '%s\n' "shared_preload_libraries = '$1'" "max_prepared_transactions = 100" "wal_level = logical" \
    "citus.node_conninfo = 'sslmode=disable'" "max_connections = 100" "shared_buffers = 128MB"
}

# on_exit COMMAND: run COMMAND when the script exits (last registered, first run).
_on_exit=()
on_exit() { _on_exit+=("$1"); }

# start_cluster NAME PORT: (re)creates and starts cluster NAME (scripts/cluster.sh), sets $dir and
# PGHOST/PGPORT; the cluster stops when the script exits (unless PG_TENANT_KEEP_CLUSTERS=1).
start_cluster() {
  dir=$(scripts/cluster.sh start "$1" "$2") || exit 1
  [ "${PG_TENANT_KEEP_CLUSTERS:-0}" = 1 ] || on_exit "scripts/cluster.sh stop $1 >/dev/null 2>&1"
  export PGHOST=$dir PGPORT=$2
}

# wait_for SECONDS COMMAND...: runs COMMAND until it succeeds (every 50 ms); fails after SECONDS.
# Tests wait for what a background session must have reached, never for a fixed time.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# sleeping QUERY_PATTERN [DB]: whether a session whose statement is LIKE the pattern has reached
# its pg_sleep() (for wait_for: a background session got that far).
sleeping() {
  [ "$("$PG_BIN/psql" -X -q -t -A -U postgres -d "${2:-postgres}" -c "SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE '$1'")" = t ]
}

check() {  # name, expected, actual
  checks_ran=$((checks_ran + 1))
  if [ "$2" = "$3" ]; then
    echo "test $SUITE: $1 ... ok"
  else
    # (The words of the result that differ come first: a CI log cuts long lines.)
    local differ
    differ=$(comm -13 <(tr ' ' '\n' <<<"$2" | sort -u) <(tr ' ' '\n' <<<"$3" | sort -u) | tr '\n' ' ')
    echo "test $SUITE: $1 ... FAILED (differs: ${differ% }; expected '$2', got '$3')"
    failed=1
    checks_failed=$((checks_failed + 1))
  fi
}

# count_checks COMMAND...: runs COMMAND, which prints its own "test ... ok|FAILED" lines, and counts
# them as this suite's checks. Returns COMMAND's exit status; a non-zero one fails the suite.
count_checks() {
  local out rc ok bad
  out=$(mktemp)
  "$@" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  ok=$(grep -cE '^test .*\.\.\. ok' "$out")
  bad=$(grep -cE '\.\.\. FAILED' "$out")
  rm -f "$out"
  checks_ran=$((checks_ran + ok + bad))
  checks_failed=$((checks_failed + bad))
  if [ "$bad" != 0 ] || [ "$rc" != 0 ]; then failed=1; fi
  return "$rc"
}

# At exit: the registered commands, then the declared count against what ran, then the summary.
suite_end() {
  local rc=$? i missing=0
  set +e
  for ((i = ${#_on_exit[@]} - 1; i >= 0; i--)); do eval "${_on_exit[i]}"; done
  if [ -z "${EXPECTED_CHECKS:-}" ]; then
    echo "test $SUITE: declares how many checks it runs (EXPECTED_CHECKS) ... FAILED"
    checks_failed=$((checks_failed + 1)); rc=1
  elif [ "$checks_ran" -lt "$EXPECTED_CHECKS" ]; then
    missing=$((EXPECTED_CHECKS - checks_ran))
    echo "test $SUITE: ran $checks_ran of the $EXPECTED_CHECKS checks it declares ($missing missing) ... FAILED"
    rc=1
  elif [ "$checks_ran" -gt "$EXPECTED_CHECKS" ]; then
    echo "test $SUITE: ran $checks_ran checks, more than the $EXPECTED_CHECKS it declares (update EXPECTED_CHECKS) ... FAILED"
    checks_failed=$((checks_failed + 1)); rc=1
  fi
  [ "$checks_failed" = 0 ] && [ "$failed" = 0 ] || rc=1
  echo "summary $SUITE: $((checks_ran - checks_failed)) passed, $checks_failed failed, $missing missing of ${EXPECTED_CHECKS:-?} declared"
  exit "$rc"
}
# Scripts that only borrow the ports (demo, bench) set no SUITE and keep their own EXIT trap.
if [ -n "${SUITE:-}" ]; then trap suite_end EXIT; fi

# hs256_token SECRET TENANT: a tenant token signed with SECRET (HS256), issued 5 s ago, valid for
# 10 minutes.
hs256_token() {
  python3 - "$1" "$2" <<'PY'
import base64, hashlib, hmac, json, sys, time
secret, tenant = sys.argv[1], sys.argv[2]; now = int(time.time())
b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"tenant": tenant, "iat": now - 5, "exp": now + 600}).encode())
sig = b64(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
print(f"{head}.{body}.{sig}")
PY
}

# gateway_fixture VERSION ROLE PLAN LIMITS TENANT...: the SQL most suites start from: pg_tenant
# installed (VERSION, or the default one when empty), ROLE a login gateway, PLAN with LIMITS
# (jsonb) and the TENANTs on it; ON_ERROR_STOP on. Pipe it, then the suite's own SQL, into psql.
gateway_fixture() {
  local version=$1 role=$2 plan=$3 limits=$4 t create="CREATE EXTENSION pg_tenant;"
  shift 4
  [ -z "$version" ] || create="CREATE EXTENSION pg_tenant VERSION '$version';"
  printf '%s\n' '\set ON_ERROR_STOP on' "$create" \
    "CREATE ROLE $role LOGIN;" "SELECT tenant.grant_gateway('$role');" \
    "SELECT tenant.create_plan('$plan', '$limits');"
  for t in "$@"; do printf '%s\n' "SELECT tenant.create('$t', plan => '$plan');"; done
}

# race_clients ROLE DB TENANT NAME STATEMENT ATTEMPTS: $CLIENTS parallel psql sessions of ROLE,
# each acting for TENANT and running STATEMENT ATTEMPTS times in autocommit, with rolled-back
# attempts in between (whole, and to a savepoint) that must not count. @TAG@ marks a success's
# output ("won:"); prints how many won. Files go to $work.
# shellcheck disable=SC2154 # $work: the calling suite's directory for its files
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
