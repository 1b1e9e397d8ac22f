#!/usr/bin/env bash
# Count quotas in shared memory (pg_tenant in shared_preload_libraries, src/shared_counters.rs):
# exact under 16 racing clients with rollbacks; counted again from the rows after a crash and a
# restart; a server started without the library (or a restored dump) counts them again from the
# rows; slots that run out fall back to the counters table, still exact; PREPARE TRANSACTION is
# refused. Prints "test NAME ... ok|FAILED" lines.
SUITE=shared-counters
. "$(dirname "$0")/../lib.sh"
EXPECTED_CHECKS=28
CLIENTS=16
PORT=$(suite_port shared_counters)
export PG_TENANT_PRELOAD=1
# (A crash test: commits must be in the WAL before a backend is killed; the test clusters
# otherwise run with synchronous_commit = off, and a crash loses the last commits.)
PG_TENANT_CONF="synchronous_commit = on" start_cluster shared "$PORT"
data=$dir/data
echo "max_prepared_transactions = 4" >>"$data/postgresql.conf"
as_owner() { runuser -u postgres -- "$@"; }
restart() { as_owner "$PG_BIN/pg_ctl" -D "$data" -l "$dir/server.log" -w restart -m fast >/dev/null; }
super() { "$PG_BIN/psql" -X -q -t -A -U postgres -d shared "$@"; }
app() { "$PG_BIN/psql" -X -q -t -A -U shared_app -d shared "$@" 2>&1; }
used() { super -c "SELECT tenant.set('$1') IS NULL" -c "SELECT used FROM tenant.check_quota('docs')" | tail -1; }
restart
"$PG_BIN/psql" -X -q -U postgres -d postgres -c "CREATE DATABASE shared" || exit 1
{ gateway_fixture '' shared_app race '{"docs": {"limit": 50}}' race-a race-b; cat <<'SQL'; } | super >/dev/null || exit 1
CREATE TABLE docs (id bigserial PRIMARY KEY, body text);
SELECT tenant.protect('docs');
SELECT tenant.attach_quota('docs', 'docs', 'count');
GRANT SELECT, INSERT, DELETE ON docs TO shared_app;
GRANT USAGE ON SEQUENCE docs_id_seq TO shared_app;
SQL
check "the server keeps count quotas in shared memory" 100000 "$(super -c "SHOW pg_tenant.shared_counters")"
work=$(mktemp -d)

# 16 clients of race-a, 10 inserts each, with rolled-back attempts (whole and to a savepoint).
won=$(race_clients shared_app shared race-a race "INSERT INTO docs (body) VALUES ('d') RETURNING '@TAG@:' || id" 10)
check "16 clients x 10 inserts for 50 rows: exactly 50 win" 50 "$won"
check "50 rows exist" 50 "$(super -c "SELECT count(*) FROM docs")"
check "the losers got the quota error" 1 "$(grep -l 'quota exceeded for "docs": 50 of 50' "$work"/race.*.out | wc -l | awk '{print ($1 > 0)}')"
check "check_quota says 50 (from shared memory)" 50 "$(used race-a)"
check "the usage view says 50" 50 "$(super -c "SELECT used FROM tenant.usage WHERE tenant = 'race-a' AND resource = 'docs'")"
check "the counters table was not written for it" 0 "$(super -c "SELECT count(*) FROM tenant_data.usage_counters WHERE resource = 'docs' AND used > 0")"
# (At least one: first writers racing after a start may each leave one, keyed by their time.)
check "marker rows say so" t "$(super -c "SELECT count(*) > 0 FROM tenant_data.usage_counters WHERE resource = 'pg_tenant.shared_counters'")"

# Deletes give units back at commit; a rolled-back delete gives nothing.
app -c "SELECT tenant.set('race-a') IS NULL" -c "BEGIN" -c "DELETE FROM docs WHERE id IN (SELECT id FROM docs ORDER BY id LIMIT 5)" -c "ROLLBACK" >/dev/null
check "a rolled-back delete gives nothing back" 50 "$(used race-a)"
app -c "SELECT tenant.set('race-a') IS NULL" -c "DELETE FROM docs WHERE id IN (SELECT id FROM docs ORDER BY id LIMIT 5)" >/dev/null
check "a delete gives its rows back" 45 "$(used race-a)"
check "another tenant counts on its own" 3 "$(app -c "SELECT tenant.set('race-b') IS NULL" -c "INSERT INTO docs (body) VALUES ('b1'), ('b2'), ('b3')" >/dev/null; used race-b)"

# Two-phase commit cannot carry a reservation in shared memory.
prepared=$(app -c "SELECT tenant.set('race-b') IS NULL" -c "BEGIN" -c "INSERT INTO docs (body) VALUES ('p')" -c "PREPARE TRANSACTION 'p1'")
check "PREPARE TRANSACTION after a counted insert is refused" 1 "$(echo "$prepared" | grep -c 'cannot be prepared')"
check "... and nothing stays reserved" 3 "$(used race-b)"

# A crash (SIGKILL of a backend: the postmaster resets shared memory) with a transaction under way.
"$PG_BIN/psql" -X -q -U shared_app -d shared -c "SELECT tenant.set('race-b') IS NULL" -c "BEGIN" -c "INSERT INTO docs (body) VALUES ('lost')" -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
wait_for 20 sleeping 'SELECT pg_sleep(60)' shared
victim=$(super -c "SELECT pid FROM pg_stat_activity WHERE usename = 'shared_app' AND query LIKE '%pg_sleep%'")
restarts() { grep -c 'all server processes terminated; reinitializing' "$dir/server.log"; }
restarts_before=$(restarts)
kill -9 "$victim" 2>/dev/null
wait
for _ in $(seq 1 30); do super -c "SELECT 1" >/dev/null 2>&1 && break; sleep 1; done
check "the kill -9 of a backend (pid '$victim') crashed the server: the postmaster reinitialized, the backend is gone" \
  "$((restarts_before + 1)) 0" "$(restarts) $(super -c "SELECT count(*) FROM pg_stat_activity WHERE pid = ${victim:-0}")"
check "after a crash: counted again from the rows (race-a)" 45 "$(used race-a)"
check "after a crash: the insert under way left nothing (race-b)" 3 "$(used race-b)"
added=$(app -c "SELECT tenant.set('race-a') IS NULL" -c "INSERT INTO docs (body) SELECT 'r' FROM generate_series(1, 5) RETURNING 'won'" | grep -c '^won')
refused=$(app -c "SELECT tenant.set('race-a') IS NULL" -c "INSERT INTO docs (body) VALUES ('6th')" | grep -c 'quota exceeded')
check "after a crash: the limit holds (race-a adds 5, the 6th is refused)" "5 1" "$added $refused"
restart
check "after a restart: counted again (race-a 50, race-b 3)" "50 3" "$(used race-a) $(used race-b)"

# A dump taken now holds stale counter rows and the marker; restored into a server without the
# library, the first count quota use counts again.
"$PG_BIN/pg_dump" -U postgres -Fc -d shared -f "$work/shared.dump"

# Slots that run out: with one slot, race-a's key gets it and race-b's uses the counters table.
sed -i "s/^shared_preload_libraries.*/&\npg_tenant.shared_counters = 1/" "$data/postgresql.conf"
restart
check "one slot" 1 "$(super -c "SHOW pg_tenant.shared_counters")"
check "with one slot: race-a (slot) and race-b (table) both counted from the rows" "50 3" "$(used race-a) $(used race-b)"
app -c "SELECT tenant.set('race-b') IS NULL" -c "INSERT INTO docs (body) VALUES ('b4')" -c "DELETE FROM docs WHERE body = 'b1'" >/dev/null
check "with one slot: race-b's insert and delete are exact" 3 "$(used race-b)"
check "with one slot: race-a's limit still holds" 1 "$(app -c "SELECT tenant.set('race-a') IS NULL" -c "INSERT INTO docs (body) VALUES ('51st')" | grep -c 'quota exceeded for "docs": 50 of 50')"

# Without the library: the marker makes the first use count every count quota again.
sed -i "/^shared_preload_libraries/d; /^pg_tenant.shared_counters/d" "$data/postgresql.conf"
restart
check "without the library: counters counted again at the first use" "50 3" "$(used race-a) $(used race-b)"
check "... and the marker is gone" 0 "$(super -c "SELECT count(*) FROM tenant_data.usage_counters WHERE resource = 'pg_tenant.shared_counters'")"
app -c "SELECT tenant.set('race-b') IS NULL" -c "INSERT INTO docs (body) VALUES ('b5'), ('b6')" >/dev/null
check "without the library: the counters table counts again" 5 "$(used race-b)"
check "without the library: the limit holds" 1 "$(app -c "SELECT tenant.set('race-a') IS NULL" -c "INSERT INTO docs (body) VALUES ('51st')" | grep -c 'quota exceeded for "docs": 50 of 50')"

# The dump (from shared memory days) restored here.
"$PG_BIN/psql" -X -q -U postgres -d postgres -c "CREATE DATABASE restored" >/dev/null
"$PG_BIN/pg_restore" -U postgres -d restored "$work/shared.dump" 2>"$work/restore.err"
check "the dump restores" 0 "$(grep -c ERROR "$work/restore.err")"
check "restored without the library: usage counted from the rows" "50 3" "$("$PG_BIN/psql" -X -q -t -A -U postgres -d restored -c "SELECT tenant.set('race-a') IS NULL" -c "SELECT used FROM tenant.check_quota('docs')" | tail -1) $("$PG_BIN/psql" -X -q -t -A -U postgres -d restored -c "SELECT tenant.set('race-b') IS NULL" -c "SELECT used FROM tenant.check_quota('docs')" | tail -1)"

[ "$failed" = 0 ] && rm -rf "$work" || echo "outputs kept in $work"
exit "$failed"
