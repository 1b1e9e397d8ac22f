#!/usr/bin/env bash
# Exactness under concurrency, with real parallel clients (16 psql sessions of a non-superuser
# application role): exactly K of them win the last K units, for tenant.consume(), a count quota
# and a meter quota, with rolled-back attempts in the mix; and one tenant's contention does not
# block another tenant. Prints "test NAME ... ok|FAILED" lines.
SUITE=concurrency
. "$(dirname "$0")/../lib.sh"
EXPECTED_CHECKS=13
CLIENTS=16
start_cluster conc "$(suite_port concurrency)"
psql_super() { "$PG_BIN/psql" -X -q -t -A -U postgres -d conc "$@"; }
"$PG_BIN/psql" -X -q -U postgres -d postgres -c "CREATE DATABASE conc" || exit 1
{ gateway_fixture '' conc_app race \
    '{"credits": {"limit": 100}, "docs": {"limit": 50}, "events": {"limit": 40, "period": "day"}}' race-a race-b
  cat tests/concurrency/setup.sql; } | psql_super >/dev/null || exit 1
work=$(mktemp -d)

run_clients() { race_clients conc_app conc race-a "$@"; }

won=$(run_clients consume "SELECT '@TAG@:' || tenant.consume('credits')" 20)
check "consume: 16 clients x 20 attempts for 100 credits, exactly 100 win" 100 "$won"
check "consume: the counter says 100" 100 "$(psql_super -c "SELECT sum(used) FROM tenant_data.usage_counters WHERE resource = 'credits'")"
check "consume: the losers got the quota error" 1 "$(grep -l 'quota exceeded for "credits"' "$work"/consume.*.out | wc -l | awk '{print ($1 > 0)}')"

won=$(run_clients docs "INSERT INTO conc.docs (body) VALUES ('d') RETURNING '@TAG@:' || id" 10)
check "count quota: 16 clients x 10 inserts for 50 rows, exactly 50 win" 50 "$won"
check "count quota: 50 rows exist" 50 "$(psql_super -c "SELECT count(*) FROM conc.docs")"
check "count quota: the counter equals the rows" 50 "$(psql_super -c "SELECT sum(used) FROM tenant_data.usage_counters WHERE resource = 'docs'")"

won=$(run_clients events "INSERT INTO conc.events (kind) VALUES ('e') RETURNING '@TAG@:' || id" 10)
check "meter quota: 16 clients x 10 inserts for 40 units, exactly 40 win" 40 "$won"
check "meter quota: 40 rows exist" 40 "$(psql_super -c "SELECT count(*) FROM conc.events")"

# While race-a's counter row is locked by an open transaction, race-b is not blocked (and race-a is).
"$PG_BIN/psql" -X -q -U conc_app -d conc -c "BEGIN; SELECT tenant.set_local('race-a'); DELETE FROM conc.docs WHERE id = (SELECT min(id) FROM conc.docs); SELECT pg_sleep(4); COMMIT;" >/dev/null 2>&1 &
holder=$!
wait_for 20 sleeping "BEGIN; SELECT tenant.set_local(''race-a'')%" conc
other=$("$PG_BIN/psql" -X -q -t -A -U conc_app -d conc -c "SET lock_timeout = '1s'" -c "SELECT tenant.set('race-b') IS NOT NULL" -c "INSERT INTO conc.docs (body) VALUES ('b') RETURNING 'inserted'" 2>&1 | tail -1)
same=$("$PG_BIN/psql" -X -q -t -A -U conc_app -d conc -c "SET lock_timeout = '1s'" -c "SELECT tenant.set('race-a') IS NOT NULL" -c "INSERT INTO conc.docs (body) VALUES ('a') RETURNING 'inserted'" 2>&1 | grep -c 'lock timeout')
wait $holder
check "another tenant's insert is not blocked by race-a's open transaction" inserted "$other"
check "race-a's own insert does wait for it (lock_timeout hit)" 1 "$same"

# A grant and a limit racing tenant.drop(): they wait for the drop (on the tenant's registry row,
# as a foreign key to it would make them), then fail (PT002), and no row names the dropped tenant.
# (tenant_access and limit_overrides have no foreign key: pg_restore -j copies them in any order.)
psql_super -c "SELECT tenant.create('race-drop') IS NOT NULL" >/dev/null
"$PG_BIN/psql" -X -q -U postgres -d conc -c "BEGIN; SELECT tenant.drop('race-drop'); SELECT pg_sleep(3); COMMIT;" >/dev/null 2>&1 &
dropper=$!
wait_for 20 sleeping "BEGIN; SELECT tenant.drop(''race-drop'')%" conc
psql_super -c '\set VERBOSITY verbose' -c "SELECT tenant.grant_access('race-drop', 'conc_app')" > "$work/drop-grant.out" 2>&1 &
granter=$!
psql_super -c '\set VERBOSITY verbose' -c "SELECT tenant.set_limit('race-drop', 'docs', 5)" > "$work/drop-limit.out" 2>&1 &
limiter=$!
waiting=0
for _ in $(seq 1 20); do
  waiting=$(psql_super -c "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND (query LIKE '%grant_access(''race-drop''%' OR query LIKE '%set_limit(''race-drop''%')")
  [ "$waiting" = 2 ] && break
  sleep 0.1
done
wait $dropper $granter $limiter
check "grant_access and set_limit wait for a concurrent drop of their tenant" 2 "$waiting"
check "... then fail: the tenant does not exist (PT002)" "1|1" "$(grep -c PT002 "$work/drop-grant.out")|$(grep -c PT002 "$work/drop-limit.out")"
check "... and leave no grant or limit of the dropped tenant" "0|0" \
  "$(psql_super -c "SELECT (SELECT count(*) FROM tenant_data.tenant_access a WHERE NOT EXISTS (SELECT FROM tenant_data.tenants t WHERE t.id = a.tenant_id)) || '|' ||
                           (SELECT count(*) FROM tenant_data.limit_overrides o WHERE NOT EXISTS (SELECT FROM tenant_data.tenants t WHERE t.id = o.tenant_id))")"

[ "$failed" = 0 ] && rm -rf "$work" || echo "outputs kept in $work"
exit "$failed"
