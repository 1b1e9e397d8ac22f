#!/usr/bin/env bash
# Per-tenant statistics (src/stats/) with pg_tenant preloaded, over real connections as the
# application role: statements counted by kind exactly (simple and extended protocol), rows
# returned and written, times, last activity; nested statements, failed ones and sessions
# without a tenant not counted; two tenants apart; stats_reset of one and of all; the
# application role refused on tenant.stats but reading its own row in info(); the full rule with
# pg_tenant.stats_max_tenants = 3; pg_tenant.stats = off; a restart empties them.
# (Without the library: tests/pg_regress/sql/21_stats.sql.) Prints "test NAME ... ok|FAILED".
SUITE=stats
. "$(dirname "$0")/../lib.sh"
EXPECTED_CHECKS=32
PORT=$(suite_port stats)
export PG_TENANT_PRELOAD=1 PG_TENANT_CONF="pg_tenant.stats_max_tenants = 3"
start_cluster stats "$PORT"
data=$dir/data
as_owner() { runuser -u postgres -- "$@"; }
restart() { as_owner "$PG_BIN/pg_ctl" -D "$data" -l "$dir/server.log" -w restart -m fast >/dev/null; }
super() { "$PG_BIN/psql" -X -q -t -A -U postgres -d stats "$@"; }
app() { "$PG_BIN/psql" -X -q -t -A -U stats_app -d stats "$@" 2>&1; }
# row TENANT COLUMNS: the tenant's row of tenant.stats, as the administrator reads it.
row() { super -c "SELECT $2 FROM tenant.stats WHERE tenant = '$1'"; }
counts() { row "$1" "concat_ws(' ', selects, inserts, updates, deletes, others, rows_returned, rows_written)"; }
"$PG_BIN/psql" -X -q -U postgres -d postgres -c "CREATE DATABASE stats" || exit 1
super >/dev/null <<'SQL' || exit 1
\set ON_ERROR_STOP on
CREATE EXTENSION pg_tenant;
CREATE ROLE stats_app LOGIN;
SELECT tenant.grant_gateway('stats_app');
SELECT tenant.create(s) FROM unnest(ARRAY['st-a', 'st-b', 'st-c', 'st-d']) s;
CREATE TABLE items (id bigserial PRIMARY KEY, body text);
SELECT tenant.protect('items');
GRANT SELECT, INSERT, UPDATE, DELETE ON items TO stats_app;
GRANT USAGE ON SEQUENCE items_id_seq TO stats_app;
-- A function whose own statements are not the application's: one SELECT is counted.
CREATE FUNCTION nested() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
    INSERT INTO items (body) VALUES ('nested');
    PERFORM count(*) FROM items;
    FOR r IN SELECT id FROM items LOOP END LOOP;  -- a cursor portal of its own
    RETURN (SELECT count(*) FROM items);
END $$;
SQL
check "the server keeps statistics for 3 tenants, counting on" "3 on" "$(super -c "SHOW pg_tenant.stats_max_tenants" | tr '\n' ' ')$(super -c "SHOW pg_tenant.stats")"
check "nothing counted yet: every tenant's row has zeros and no stats_since" "4 0" "$(super -c "SELECT count(*), count(stats_since) + sum(selects + inserts + updates + deletes + others) FROM tenant.stats" | tr '|' ' ')"

# One session of the application acting as st-a (tenant.set itself starts with no tenant: not
# counted), each kind of statement, a nested one, a failing one, a transaction with a savepoint.
app >/dev/null <<'SQL'
SELECT tenant.set('st-a') IS NULL;
INSERT INTO items (body) VALUES ('1'), ('2'), ('3');
SELECT * FROM items;
UPDATE items SET body = 'one' WHERE body = '1';
DELETE FROM items WHERE body = '2';
SELECT pg_sleep(0.25);
CREATE TEMP TABLE scratch (x int);
DO $$ BEGIN PERFORM count(*) FROM items; END $$;
EXPLAIN ANALYZE SELECT * FROM items;
SELECT nested();
SELECT 1 / 0;
BEGIN;
SAVEPOINT s;
SELECT 1 / 0;
ROLLBACK TO s;
SELECT 1;
COMMIT;
SQL
# selects: SELECT *, pg_sleep, nested(), SELECT 1; inserts 1, updates 1, deletes 1; others:
# CREATE TEMP TABLE, DO, EXPLAIN ANALYZE (its SELECT is not one more), BEGIN, SAVEPOINT,
# ROLLBACK TO, COMMIT. Rows returned 3 + 1 + 1 + 1,
# written 3 + 1 + 1 (the function's own insert is not the application's statement).
check "st-a: statements by kind and rows, exactly (selects inserts updates deletes others returned written)" \
  "4 1 1 1 7 6 5" "$(counts st-a)"
check "st-a: the slowest statement took at least pg_sleep(0.25), the total at least that" \
  t "$(row st-a "max_time_ms >= 250 AND total_time_ms >= max_time_ms AND total_time_ms < 60000")"
check "st-a: last_activity is set, after stats_since, not in the future" \
  t "$(row st-a "last_activity >= stats_since AND last_activity <= now()")"
check "the other tenants: nothing" "0 0 0 0 0 0 0|0 0 0 0 0 0 0|0 0 0 0 0 0 0" "$(counts st-b)|$(counts st-c)|$(counts st-d)"

# An administrator's session without a tenant counts for nobody, its reads of the view included.
before=$(counts st-a)
super -c "SELECT count(*) FROM items" -c "SELECT * FROM tenant.stats" -c "SELECT 1" >/dev/null
check "an administrator's statements without a tenant are not counted" "$before" "$(counts st-a)"

# last_activity moves with the next statement.
last=$(row st-a "last_activity")
sleep 0.2
app -c "SELECT tenant.set('st-a') IS NULL" -c "SELECT count(*) FROM items" >/dev/null
check "last_activity moved with st-a's next statement" t "$(row st-a "last_activity > '$last'")"
check "... which counted one more select" "5 7" "$(row st-a "selects || ' ' || rows_returned")"

# Another tenant is counted apart.
app -c "SELECT tenant.set('st-b') IS NULL" -c "SELECT 1" -c "SELECT 2" -c "INSERT INTO items (body) VALUES ('b')" >/dev/null
check "st-b counted apart (2 selects, 1 insert)" "2 1 0 0 0 2 1" "$(counts st-b)"
check "st-a unchanged" "5 1 1 1 7 7 5" "$(counts st-a)"

# The extended protocol (pgbench -M prepared, one client, 20 transactions of one SELECT; the
# tenant is set in the first one).
cat >"$dir/ext.sql" <<'EOF'
\if :ctx = 0
SELECT tenant.set('st-c');
\set ctx 1
\endif
SELECT count(*) FROM items;
EOF
"$PG_BIN/pgbench" -n -U stats_app -M prepared -c 1 -t 20 -D ctx=0 -f "$dir/ext.sql" stats >/dev/null 2>&1
check "extended protocol (pgbench -M prepared): 20 selects of 1 row for st-c" "20 0 0 0 0 20 0" "$(counts st-c)"

# The application role: no access to the view or the reset, its own row through info().
check "the application role may not read tenant.stats (42501)" 1 "$(app -c "SELECT * FROM tenant.stats" | grep -c 'permission denied for view stats')"
check "the application role may not reset (42501)" 1 "$(app -c "SELECT tenant.stats_reset()" | grep -c 'permission denied for function stats_reset')"
check "the application role reads its own tenant's statistics in info() (before this statement)" "2 1 st-b" \
  "$(app -c "SELECT tenant.set('st-b') IS NULL" -c "SELECT concat_ws(' ', stats->>'selects', stats->>'inserts', slug) FROM tenant.info()" | tail -1)"
check "info() without a tenant is still PT001" 1 "$(app -c "SELECT stats FROM tenant.info()" | grep -c 'no tenant')"

# stats_reset of one tenant; an unknown tenant is refused.
super -c "SELECT tenant.stats_reset('st-b')" >/dev/null
check "stats_reset('st-b'): its row is zeros with no stats_since; st-a and st-c unchanged" \
  "0 0 0 0 0 0 0||5 1 1 1 7 7 5|20 0 0 0 0 20 0" "$(counts st-b)|$(row st-b stats_since)|$(counts st-a)|$(counts st-c)"
# A session that stays connected across a reset keeps counting, into the tenant's new entry
# (its statement under way when the reset came included).
app >/dev/null <<'SQL' &
SELECT tenant.set('st-c') IS NULL;
SELECT pg_sleep(1.5);
SELECT 2;
SELECT 3;
SQL
# (The reset comes while the session sleeps: wait until it does.)
for _ in $(seq 1 100); do
  [ "$(super -c "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(1.5);' AND state = 'active'")" = 1 ] && break
  sleep 0.05
done
super -c "SELECT tenant.stats_reset('st-c')" >/dev/null
wait
check "a session connected across stats_reset('st-c') counts on in its new entry (pg_sleep, 2, 3)" "3 0 0 0 0 3 0" "$(counts st-c)"
super -c "BEGIN" -c "SELECT tenant.stats_reset('st-a')" -c "SELECT tenant.stats_reset()" -c "ROLLBACK" >/dev/null
check "a rolled-back stats_reset (of one, of all) changes nothing" "5 1 1 1 7 7 5" "$(counts st-a)"
check "stats_reset of an unknown tenant is PT002" 1 "$(super -c "SELECT tenant.stats_reset('no-such')" 2>&1 | grep -c 'tenant "no-such" does not exist')"
check "each reset is in the audit log" 2 "$(super -c "SELECT count(*) FROM tenant_data.audit_log WHERE action = 'stats_reset'")"

# The full rule: 3 entries; st-a, st-c and st-b (again) take them; st-d is then not counted, and
# the server log says so once; a committed tenant.drop() and a reset of all free room.
app -c "SELECT tenant.set('st-b') IS NULL" -c "SELECT 1" >/dev/null
app -c "SELECT tenant.set('st-d') IS NULL" -c "SELECT 1" -c "SELECT 2" >/dev/null
check "full: st-d (a 4th tenant) is not counted, st-b (3rd) is" "0 0 0 0 0 0 0||1 0 0 0 0 1 0" "$(counts st-d)|$(row st-d stats_since)|$(counts st-b)"
check "full: the server log says so" 1 "$(grep -c 'per-tenant statistics are full (pg_tenant.stats_max_tenants = 3): tenant .* is not counted' "$dir/server.log" | awk '{print ($1 > 0)}')"
# tenant.drop() frees the dropped tenant's room when it commits (not when it rolls back).
before=$(counts st-b)
super -c "BEGIN" -c "SELECT tenant.drop('st-b')" -c "ROLLBACK" >/dev/null
app -c "SELECT tenant.set('st-d') IS NULL" -c "SELECT 1" >/dev/null
check "a rolled-back tenant.drop('st-b') keeps its row; st-d still finds no room" "$before|0 0 0 0 0 0 0" "$(counts st-b)|$(counts st-d)"
super -c "SELECT tenant.drop('st-a')" >/dev/null
app -c "SELECT tenant.set('st-d') IS NULL" -c "SELECT 1" >/dev/null
check "tenant.drop('st-a') freed its room: st-d is counted now" "1 0 0 0 0 1 0" "$(counts st-d)"
super -c "SELECT tenant.stats_reset()" >/dev/null
check "stats_reset(): every row zeros, no stats_since" "0 0" "$(super -c "SELECT count(stats_since), sum(selects + inserts + updates + deletes + others) FROM tenant.stats" | tr '|' ' ')"
app -c "SELECT tenant.set('st-d') IS NULL" -c "SELECT 1" >/dev/null
check "after the reset st-d is counted from zero" "1 0 0 0 0 1 0" "$(counts st-d)"

# pg_tenant.stats = off (a superuser's setting): nothing counted; on again: counted.
super -c "ALTER SYSTEM SET pg_tenant.stats = off" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
app -c "SELECT tenant.set('st-d') IS NULL" -c "SELECT 1" >/dev/null
check "pg_tenant.stats = off: not counted" "1 0 0 0 0 1 0" "$(counts st-d)"
super -c "ALTER SYSTEM RESET pg_tenant.stats" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
app -c "SELECT tenant.set('st-d') IS NULL" -c "SELECT 1" >/dev/null
check "pg_tenant.stats back on: counted" "2 0 0 0 0 2 0" "$(counts st-d)"
check "the application role cannot turn counting off" 1 "$(app -c "SET pg_tenant.stats = off" | grep -c 'permission denied to set parameter')"

# Another database: its tenants' statistics stay apart from this one's.
"$PG_BIN/psql" -X -q -U postgres -d postgres -c "CREATE DATABASE stats2" >/dev/null
"$PG_BIN/psql" -X -q -t -A -U postgres -d stats2 -c "CREATE EXTENSION pg_tenant" -c "SELECT tenant.create('st-x') IS NULL" \
  -c "SELECT tenant.set('st-x') IS NULL" -c "SELECT 1" >/dev/null
check "another database counts its own tenants; this one's view shows only its own" "1|2 0 0 0 0 2 0" \
  "$("$PG_BIN/psql" -X -q -t -A -U postgres -d stats2 -c "SELECT selects FROM tenant.stats WHERE tenant = 'st-x'")|$(counts st-d)"

# A restart empties them (shared memory starts zeroed).
restart
check "after a restart: nothing counted, no stats_since" "0 0" "$(super -c "SELECT count(stats_since), sum(selects + inserts + updates + deletes + others) FROM tenant.stats" | tr '|' ' ')"
