#!/usr/bin/env bash
# Fault tolerance: a backend SIGKILLed (PostgreSQL then restarts every backend and runs crash
# recovery) in the middle of tenant.create() cloning pagila, of tenant.migrate() and of CALL
# tenant.migrate_batches() leaves all or nothing (per batch for the procedure), and a re-run
# finishes the job; tenant lifecycle changes (suspend, resume, change_plan, drop) under real
# concurrent writers of the same tenant end without deadlock, with exact quota counters, no row
# of the dropped tenant left and one audit row per call. Prints "test NAME ... ok|FAILED" lines
# and the closing summary line of tests/lib.sh; exits non-zero when a check fails.
SUITE=faults
. "$(dirname "$0")/../lib.sh"
EXPECTED_CHECKS=28
# (A crash test: commits must be in the WAL before a backend is killed; the test clusters
# otherwise run with synchronous_commit = off, and a crash loses the last commits.)
PG_TENANT_CONF="synchronous_commit = on" start_cluster faults "$(suite_port faults)"
work=$(mktemp -d)
LOG=$dir/server.log

# sql DB [psql options]: stops at the first error; tuples only, unaligned.
sql() { local db=$1; shift; "$PG_BIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -U postgres -d "$db" "$@"; }

restarts() { grep -c 'all server processes terminated; reinitializing' "$LOG"; }
# shellcheck disable=SC2317 # called through wait_for
restarted_since() { [ "$(restarts)" -gt "$1" ]; }
# shellcheck disable=SC2317 # called through wait_for
accepting() { "$PG_BIN/psql" -X -q -t -A -U postgres -d postgres -c "SELECT 1" | grep -qx 1; }

# crash PID: SIGKILL the backend PID (after checking it is a child of this suite's postmaster),
# then wait until the postmaster has noticed, reinitialized and accepts connections again.
# Returns 2 when PID is no longer a running backend.
crash() {
  local pid=$1 postmaster before
  postmaster=$(head -1 "$dir/data/postmaster.pid")
  before=$(restarts)
  if [ "$(ps -o ppid= -p "$pid" | tr -d ' ')" != "$postmaster" ] || ! kill -9 "$pid" 2>/dev/null; then
    return 2  # no longer running (its statement finished first)
  fi
  # Once reaped, a backend the signal reached alive is logged as terminated by signal 9; one that
  # was already exiting (a zombie) is not, and then no restart follows.
  wait_for 30 eval "! ps -p $pid >/dev/null" || { echo "crash: $pid still there" >&2; return 1; }
  wait_for 2 grep -q "(PID $pid) was terminated by signal 9" "$LOG" || return 2
  wait_for 60 restarted_since "$before" || { echo "crash: no restart after killing $pid" >&2; return 1; }
  wait_for 60 accepting || { echo "crash: the server did not come back" >&2; return 1; }
}

# backend_of APPNAME QUERY_PATTERN: pid of the active backend of that application whose query
# matches the LIKE pattern.
backend_of() {
  sql postgres -v app="$1" -v pat="$2" <<<"SELECT pid FROM pg_stat_activity WHERE application_name = :'app' AND state = 'active' AND query LIKE :'pat'" | grep -E '^[0-9]+$'
}

# ================================================================================================
# 1. SIGKILL during tenant.create(isolation => 'schema', template => 'pagila')
# ================================================================================================
DB=faults_create
sql postgres -c "CREATE DATABASE $DB" >/dev/null || exit 1
sql $DB -c "CREATE EXTENSION pg_tenant" >/dev/null || exit 1
sql $DB -f ../shared/fixtures/pagila/pagila-in-schema-pagila.sql >/dev/null || exit 1
tables=$(sql $DB -c "SELECT count(*) FROM pg_class WHERE relnamespace = 'pagila'::regnamespace AND relkind IN ('r', 'p')")
check "create: the pagila template has 22 tables" 22 "$tables"
CREATE_SQL="SELECT tenant.create('victim', isolation => 'schema', template => 'pagila')"
# victim_state: registry rows:schemas:tables in tenant_victim:audited creates of victim (committed).
victim_state() {
  sql $DB -c "SELECT (SELECT count(*) FROM tenant_data.tenants WHERE slug = 'victim' AND schema_name = 'tenant_victim')
                || ':' || (SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant_victim')
                || ':' || (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                            WHERE n.nspname = 'tenant_victim' AND c.relkind IN ('r', 'p'))"
}
complete="1:1:$tables"; absent="0:0:0"

# 1a. The clone done but not committed (an explicit transaction sleeping after it).
PGAPPNAME=victim_tx "$PG_BIN/psql" -X -q -U postgres -d $DB >"$work/create_tx.out" 2>&1 <<SQL &
BEGIN;
$CREATE_SQL;
SELECT pg_sleep(30);
COMMIT;
SQL
client=$!
pid=""
wait_for 30 backend_of victim_tx 'SELECT pg_sleep(30)%' && pid=$(backend_of victim_tx 'SELECT pg_sleep(30)%')
if [ -n "$pid" ] && crash "$pid"; then killed=yes; else killed=no; fi
wait $client
check "create in a transaction: the backend was killed after the clone, before COMMIT" yes "$killed"
check "create in a transaction: after crash recovery nothing of the tenant exists" "$absent" "$(victim_state)"
check "create in a transaction: re-running tenant.create() gives a complete tenant" "$complete" "$(sql $DB -c "$CREATE_SQL" >/dev/null && victim_state)"
sql $DB -c "SELECT tenant.drop('victim')" >/dev/null || failed=1

# 1b. Killed while tenant.create() runs, at increasing delays after it starts (the connection's
# pid is known before the statement is sent, so the kill needs no polling).
attempts=10; interrupted=0; bad_states=""; bad_reruns=""
for i in $(seq 1 $attempts); do
  rm -f "$work/pid"
  printf '%s\n' "SELECT pg_backend_pid() \\g $work/pid" "$CREATE_SQL;" |
    "$PG_BIN/psql" -X -q -t -A -U postgres -d $DB >"$work/create.$i.out" 2>&1 &
  client=$!
  wait_for 30 grep -qE '^[0-9]+$' "$work/pid"
  sleep "$(awk -v i="$i" 'BEGIN { printf "%.3f", (i - 1) * 0.03 }')"
  crash "$(head -1 "$work/pid")"; rc=$?
  wait $client
  if [ "$rc" = 1 ]; then bad_states="$bad_states $i:no-recovery"; break; fi
  [ "$rc" = 0 ] && ! grep -qE '^[0-9a-f-]{36}$' "$work/create.$i.out" && interrupted=$((interrupted + 1))
  state=$(victim_state)
  case "$state" in
    "$complete") ;;
    "$absent")
      state=$(sql $DB -c "$CREATE_SQL" >/dev/null 2>"$work/rerun.$i.err"; victim_state)
      [ "$state" = "$complete" ] || bad_reruns="$bad_reruns $i:$state"
      ;;
    *) bad_states="$bad_states $i:$state" ;;
  esac
  sql $DB -c "SELECT tenant.drop('victim')" >/dev/null 2>&1
done
check "create killed mid-way: the kill interrupted tenant.create() at least once" 1 "$((interrupted > 0))"
check "create killed mid-way: the tenant is complete or absent after each of $attempts crashes" "" "$bad_states"
check "create killed mid-way: when absent, re-running tenant.create() gives a complete tenant" "" "$bad_reruns"
echo "# create: $interrupted of $attempts kills interrupted tenant.create()"

# ================================================================================================
# 2. SIGKILL during tenant.migrate() and CALL tenant.migrate_batches()
# ================================================================================================
DB=faults_migrate
sql postgres -c "CREATE DATABASE $DB" >/dev/null || exit 1
sql $DB >/dev/null <<'SQL' || exit 1
CREATE EXTENSION pg_tenant;
CREATE SCHEMA app_tpl;
CREATE TABLE app_tpl.items (id serial PRIMARY KEY, name text);
SELECT count(tenant.create('mig-' || lpad(i::text, 2, '0'), isolation => 'schema', template => 'app_tpl')) FROM generate_series(1, 30) i;
SQL
schemas=$(sql $DB -c "SELECT count(*) FROM (SELECT schema_name FROM tenant_data.schema_templates UNION SELECT schema_name FROM tenant_data.tenants WHERE schema_name IS NOT NULL) s")
check "migrate: 31 schemas (the template and 30 tenants)" 31 "$schemas"
# migration_state COLUMN VERSION: schemas with the column:schemas with a record:schemas where the
# two disagree:duplicate records.
migration_state() {
  sql $DB -v col="$1" -v ver="$2" <<'SQL'
WITH s AS (SELECT schema_name FROM tenant_data.schema_templates
           UNION SELECT schema_name FROM tenant_data.tenants WHERE schema_name IS NOT NULL),
     st AS (SELECT s.schema_name,
                   EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
                            WHERE n.nspname = s.schema_name AND c.relname = 'items' AND a.attname = :'col' AND NOT a.attisdropped) AS has_column,
                   EXISTS (SELECT 1 FROM tenant_data.schema_migrations m WHERE m.version = :'ver' AND m.schema_name = s.schema_name) AS recorded
              FROM s)
SELECT count(*) FILTER (WHERE has_column) || ':' || count(*) FILTER (WHERE recorded) || ':'
       || count(*) FILTER (WHERE has_column <> recorded) || ':'
       || (SELECT count(*) - count(DISTINCT schema_name) FROM tenant_data.schema_migrations WHERE version = :'ver')
  FROM st
SQL
}
# kill_after_applied APP VERSION N ERRFILE: once the client has been told that N schemas got the
# migration, kill its backend.
kill_after_applied() {
  local n=$3 pid
  wait_for 60 eval "[ \$(grep -c 'migration $2 applied' '$4') -ge $n ]" || return 1
  pid=$(backend_of "$1" '%migrat%') || return 1
  crash "$pid"
}
# migrate_killed APP VERSION N STATEMENT: runs STATEMENT (a migration VERSION) as application APP,
# outputs in $work/VERSION.out and .err, SIGKILLs its backend once N schemas have VERSION applied
# and waits for the client; prints yes when the kill came so, no otherwise.
migrate_killed() {
  local client
  PGAPPNAME=$1 "$PG_BIN/psql" -X -q -t -A -U postgres -d "$DB" -c "$4" >"$work/$2.out" 2>"$work/$2.err" &
  client=$!
  if kill_after_applied "$1" "$2" "$3" "$work/$2.err"; then echo yes; else echo no; fi
  wait $client
}

# 2a. tenant.migrate(): one transaction, all or nothing.
MIG1="SELECT tenant.migrate('m1', 'ALTER TABLE items ADD COLUMN x int; SELECT pg_sleep(0.2)')"
check "migrate: the backend was killed after 10 schemas were migrated" yes "$(migrate_killed migrate_m1 m1 10 "$MIG1")"
check "migrate killed mid-way: no schema has the column, no m1 record" "0:0:0:0" "$(migration_state x m1)"
check "migrate re-run: returns 31" 31 "$(sql $DB -c "$MIG1" 2>/dev/null)"
check "migrate re-run: every schema has the column and one record" "31:31:0:0" "$(migration_state x m1)"

# 2b. CALL tenant.migrate_batches(..., 5): committed batches stay, a re-run finishes the rest.
MIG2="CALL tenant.migrate_batches('m2', 'ALTER TABLE items ADD COLUMN y int; SELECT pg_sleep(0.2)', 5)"
check "migrate_batches: the backend was killed in the third batch or later" yes "$(migrate_killed migrate_m2 m2 12 "$MIG2")"
state=$(migration_state y m2)
IFS=: read -r _ recorded _ _ <<<"$state"
check "migrate_batches killed mid-way: whole batches committed (records a multiple of 5, at least 10, not all 31)" yes \
  "$( [ $((recorded % 5)) = 0 ] && [ "$recorded" -ge 10 ] && [ "$recorded" -lt 31 ] && echo yes || echo "no ($state)")"
check "migrate_batches killed mid-way: column <=> record in every schema, no duplicates" "$recorded:$recorded:0:0" "$state"
check "migrate_batches re-run: succeeds" 0 "$(sql $DB -c "$MIG2" >/dev/null 2>"$work/m2.rerun.err"; echo $?)"
check "migrate_batches re-run: every schema has the column and one record" "31:31:0:0" "$(migration_state y m2)"

# ================================================================================================
# 3. Lifecycle changes under concurrent writers of the same tenant
# ================================================================================================
DB=faults_life
WORKERS=4
sql postgres -c "CREATE DATABASE $DB" >/dev/null || exit 1
sql $DB >/dev/null <<'SQL' || exit 1
CREATE EXTENSION pg_tenant;
CREATE ROLE faults_app LOGIN;
SELECT tenant.grant_gateway('faults_app');
SELECT tenant.create_plan('life_small', '{"things": {"limit": 50}}');
SELECT tenant.create_plan('life_big', '{"things": {"limit": 1000000}}');
CREATE TABLE things (id bigserial PRIMARY KEY, body text);
SELECT tenant.protect('things');
SELECT tenant.attach_quota('things', 'things', 'count');
GRANT SELECT, INSERT, DELETE ON things TO faults_app;
GRANT USAGE ON SEQUENCE things_id_seq TO faults_app;
SELECT tenant.create('busy', plan => 'life_small');
SELECT tenant.create('calm', plan => 'life_small');
SELECT tenant.set('calm');
INSERT INTO things (body) SELECT 'calm' FROM generate_series(1, 10);
SQL
T=$(sql $DB -c "SELECT id FROM tenant_data.tenants WHERE slug = 'busy'")
usage_and_rows() {  # TENANT_ID: counter:rows
  sql $DB -v t="$1" <<<"SELECT coalesce((SELECT sum(used) FROM tenant_data.usage_counters WHERE tenant_id = :'t' AND resource = 'things'), 0)
                               || ':' || (SELECT count(*) FROM things WHERE tenant_id = :'t')"
}
C=$(sql $DB -c "SELECT id FROM tenant_data.tenants WHERE slug = 'calm'")
calm_before=$(usage_and_rows "$C")

# A worker: one connection of faults_app acting for busy, inserting (and now and then deleting)
# in autocommit until the stop file appears; errors are printed as their SQLSTATE.
CHUNK="INSERT INTO things (body) VALUES ('w');
INSERT INTO things (body) VALUES ('w');
DELETE FROM things WHERE id = (SELECT min(id) FROM things);"
worker() {  # phase, n
  {
    echo '\set VERBOSITY sqlstate'
    echo "SELECT tenant.set('busy') IS NOT NULL;"
    while [ ! -e "$work/stop.$1" ]; do printf '%s\n' "$CHUNK"; done
  } | timeout 60 "$PG_BIN/psql" -X -q -t -A -U faults_app -d $DB >"$work/w.$1.$2.out" 2>"$work/w.$1.$2.err"
  echo $? >"$work/w.$1.$2.rc"
}
start_workers() { for n in $(seq 1 $WORKERS); do worker "$1" "$n" & done; }
stop_workers() { touch "$work/stop.$1"; wait; }
# lifecycle CALL: one call from the main session, with a timeout; counts the failures.
calls=0; call_failures=""
lifecycle() {
  calls=$((calls + 1))
  timeout 30 "$PG_BIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -U postgres -d $DB -c '\set VERBOSITY sqlstate' -c "$1" \
    >/dev/null 2>>"$work/lifecycle.err" || call_failures="$call_failures [$1]"
}

# Phase 1: three rounds of suspend, resume and change_plan while 4 sessions write.
started=$SECONDS
start_workers 1
wait_for 10 eval "[ \$(cat $work/w.1.*.out 2>/dev/null | grep -c '^t$') -ge $WORKERS ]"
plans=(life_big life_small life_big)
for round in 0 1 2; do
  sleep 0.4; lifecycle "SELECT tenant.suspend('busy', 'round $round')"
  sleep 0.4; lifecycle "SELECT tenant.resume('busy')"
  sleep 0.4; lifecycle "SELECT tenant.change_plan('busy', '${plans[$round]}')"
done
while [ $((SECONDS - started)) -lt 5 ]; do sleep 0.2; done
stop_workers 1
state=$(usage_and_rows "$T")
check "lifecycle: with the writers stopped, busy's usage counter equals its rows ($state)" yes "$(awk -F: '{ print ($1 == $2 && $2 > 0) ? "yes" : "no" }' <<<"$state")"

# Phase 2: the writers again, and tenant.drop() in the middle of them.
start_workers 2
wait_for 10 eval "[ \$(cat $work/w.2.*.out 2>/dev/null | grep -c '^t$') -ge $WORKERS ]"
sleep 1
lifecycle "SELECT tenant.drop('busy')"
sleep 1
stop_workers 2

rcs=$(cat "$work"/w.*.rc | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }')
check "lifecycle: every writer session finished on its own (exit 0, no timeout)" "0 x$((2 * WORKERS))" "$rcs"
check "lifecycle: every suspend/resume/change_plan/drop call succeeded within 30 s" "" "$call_failures"
errors() { cat "$@" 2>/dev/null | sed -nE 's/^(psql:[^ ]* )?ERROR:  ([0-9A-Z]{5})$/\2/p' | sort | uniq -c | awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }'; }
echo "# lifecycle: writer errors while suspending/resuming/changing plans: $(errors "$work"/w.1.*.err)"
echo "# lifecycle: writer errors around the drop: $(errors "$work"/w.2.*.err)"
unexpected() {  # allowed SQLSTATEs (regex), files: any other error line
  local allowed=$1; shift
  cat "$@" 2>/dev/null | grep -v '^$' | grep -vE "^(psql:[^ ]* )?ERROR:  ($allowed)$" | sort | uniq -c | head -5 | tr -s ' \n' ' '
}
check "lifecycle: writers saw only PT003 (suspended) and PT010 (quota) errors" "" "$(unexpected 'PT003|PT010' "$work"/w.1.*.err)"
check "lifecycle: around the drop writers saw only PT003, PT010 and, once dropped, PT002" "" "$(unexpected 'PT002|PT003|PT010' "$work"/w.2.*.err)"
check "lifecycle: both kinds of expected errors occurred (the quota and the suspension were hit)" "PT003 PT010" \
  "$(cat "$work"/w.1.*.err | grep -oE 'PT003|PT010' | sort -u | tr '\n' ' ' | sed 's/ $//')"
check "lifecycle: busy is gone from the registry" 0 "$(sql $DB -c "SELECT count(*) FROM tenant_data.tenants WHERE id = '$T'")"
check "lifecycle: no row of busy remains in the table after the drop" 0 "$(sql $DB -c "SELECT count(*) FROM things WHERE tenant_id = '$T'")"
check "lifecycle: no usage counter of busy remains after the drop" 0 "$(sql $DB -c "SELECT count(*) FROM tenant_data.usage_counters WHERE tenant_id = '$T'")"
check "lifecycle: the other tenant's rows and counter are untouched" "$calm_before" "$(usage_and_rows "$C")"
check "lifecycle: one audit row per call ($calls calls)" "change_plan:3 drop:1 resume:3 suspend:3" \
  "$(sql $DB -c "SELECT string_agg(action || ':' || n, ' ' ORDER BY action) FROM (SELECT action, count(*) AS n FROM tenant_data.audit_log WHERE tenant_id = '$T' AND action IN ('suspend', 'resume', 'change_plan', 'drop') GROUP BY action) a")"

[ "$failed" = 0 ] && rm -rf "$work" || echo "outputs kept in $work"
exit "$failed"
