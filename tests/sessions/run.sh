#!/usr/bin/env bash
# The `sessions` limit (issue 15, part 2): how many backends may act as a tenant at the same time,
# over real connections of a gateway role, on a cluster without the library preloaded ("plain:")
# and on one with shared_preload_libraries = 'pg_tenant' ("preload:"): exact under a 16-client
# race, the quota error with its JSON detail, a slot freed by reset(), at the end of the
# transaction for set_local(), by a rollback, DISCARD ALL, the end of the session and a crash.
SUITE=sessions
. "$(dirname "$0")/../lib.sh"
EXPECTED_CHECKS=74   # 37 per mode
CLIENTS=16
SECRET=sessions-suite-secret-0123456789-abcdef
work=$(mktemp -d)
on_exit "rm -rf '$work'"

run_mode() {
  local mode=$1 name port preload
  if [ "$mode" = plain ]; then name=sessions port=$(suite_port sessions) preload=0
  else name=sessions_pre port=$(suite_port sessions_pre) preload=1; fi
  # (synchronous_commit: the crash below must not lose the commits before it.)
  dir=$(PG_TENANT_PRELOAD=$preload PG_TENANT_CONF="synchronous_commit = on
max_prepared_transactions = 10" scripts/cluster.sh start $name "$port") || exit 1
  on_exit "scripts/cluster.sh stop $name >/dev/null 2>&1"
  export PGHOST=$dir PGPORT=$port
  "$PG_BIN/psql" -X -q -U postgres -d postgres -c "CREATE DATABASE sess" || exit 1
  { gateway_fixture '' sess_app small '{"sessions": {"limit": 3}}' acme globex
    echo "SELECT tenant.create('free');"
    echo "SELECT tenant.set_signing_key('HS256', '$SECRET');"; } | "$PG_BIN/psql" -X -q -U postgres -d sess >/dev/null || exit 1
  # app / su SQL...: one session of the gateway role / a superuser; errors as "ERROR:  CODE: ...".
  app() { "$PG_BIN/psql" -X -q -t -A -v VERBOSITY=verbose -U sess_app -d sess "$@" 2>&1; }
  su() { "$PG_BIN/psql" -X -q -t -A -U postgres -d sess "$@" 2>&1; }
  code() { grep -o '^ERROR:  [0-9A-Z]\{5\}' | head -1 | awk '{print $2}'; }
  # Slots: the lock-manager locks pg_tenant takes for them ("userlock" in pg_locks).
  slots() { su -c "SELECT count(*) FROM pg_locks WHERE locktype = 'userlock' AND granted"; }
  mine="SELECT count(*) FROM pg_locks WHERE locktype = 'userlock' AND pid = pg_backend_pid()"
  # Waits (up to 20 s) until N slots are held: holders started in the background have connected.
  wait_slots() { for _ in $(seq 1 100); do [ "$(slots)" = "$1" ] && return; sleep 0.2; done; }

  # 1. The race: 16 clients at once, each holding on for 5 seconds once it acts as acme.
  for c in $(seq 1 "$CLIENTS"); do
    app -v ON_ERROR_STOP=1 -c "SELECT tenant.set('acme') IS NULL" -c "SELECT 'won'" -c "SELECT pg_sleep(5)" > "$work/race.$mode.$c" &
  done
  wait
  check "$mode: 16 clients race for acme's 3 sessions: exactly 3 act as acme, 13 get the quota error (PT010)" "3|13" \
    "$(cat "$work"/race."$mode".* | grep -c '^won$')|$(cat "$work"/race."$mode".* | grep -c '^ERROR:  PT010: quota exceeded for "sessions": 3 of 3 used (plan small)')"
  check "$mode: the error's DETAIL is the quota as JSON" 'DETAIL:  {"limit":3,"period_end":null,"plan":"small","requested":1,"resource":"sessions","used":3}' \
    "$(cat "$work"/race."$mode".* | grep -m1 '^DETAIL:')"
  check "$mode: when the race is over, every slot is free again (sessions ended)" "0" "$(slots)"

  # 2. Three holders: a fourth session of the gateway, or a superuser acting as acme, is refused;
  #    another tenant and a tenant without the limit are not; an admin acting as nobody is not counted.
  for h in 1 2 3; do app -c "SELECT tenant.set('acme') IS NULL" -c "SELECT pg_sleep(60)" > "$work/hold.$mode.$h" & done
  for _ in $(seq 1 100); do [ "$(slots)" = 3 ] && break; sleep 0.1; done
  check "$mode: three sessions acting as acme hold three slots" "3" "$(slots)"
  check "$mode: a fourth session: set() and set_local() refused (PT010), the session acts as no tenant" "PT010|PT010|" \
    "$(app -c "SELECT tenant.set('acme')" | code)|$(app -c "BEGIN" -c "SELECT tenant.set_local('acme')" | code)|$(app -c "SELECT tenant.set('acme')" -c "SELECT tenant.current(true)" | grep -v ERROR | grep -v '^DETAIL\|^LOCATION\|^HINT')"
  check "$mode: ... acting as globex, or as a tenant without the limit, is not limited by acme's" "t|t" \
    "$(app -c "SELECT tenant.set('globex') IS NOT NULL")|$(app -c "SELECT tenant.set('free') IS NOT NULL")"
  check "$mode: a superuser acting as acme is counted (refused), one acting as no tenant is not" "PT010|3" \
    "$(su -v VERBOSITY=verbose -c "SELECT tenant.set('acme')" | code)|$(slots)"
  local victim
  victim=$(su -c "SELECT pid FROM pg_locks WHERE locktype = 'userlock' LIMIT 1")
  su -c "SELECT pg_terminate_backend($victim)" >/dev/null
  for _ in $(seq 1 50); do [ "$(slots)" = 2 ] && break; sleep 0.1; done
  check "$mode: a holder's session ends (terminated): its slot is free for the next session" "t" \
    "$(app -c "SELECT tenant.set('acme') IS NOT NULL")"

  # 3. One session's slot, as its contexts come and go (two holders still hold two of three).
  check "$mode: set() holds one slot; reset() gives it back" "1|0" \
    "$(app -c "SELECT tenant.set('acme') IS NULL" -c "$mine" -c "SELECT tenant.reset()" -c "$mine" | grep -E '^[0-9]+$' | paste -sd'|')"
  check "$mode: set_local() holds one for the transaction; none after COMMIT, none after ROLLBACK" "1|0|0" \
    "$(app -c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "$mine" -c "COMMIT" -c "$mine" \
         -c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "ROLLBACK" -c "$mine" | grep -E '^[0-9]+$' | paste -sd'|')"
  check "$mode: set() in a rolled-back transaction (or savepoint) holds nothing afterwards" "0|0" \
    "$(app -c "BEGIN" -c "SELECT tenant.set('acme') IS NULL" -c "ROLLBACK" -c "$mine" \
         -c "BEGIN" -c "SAVEPOINT s" -c "SELECT tenant.set('acme') IS NULL" -c "ROLLBACK TO s" -c "COMMIT" -c "$mine" | grep -E '^[0-9]+$' | paste -sd'|')"
  check "$mode: the same tenant again (set_local() in a set() session) takes no second slot; another takes one for the transaction" "1|1|2|1" \
    "$(app -c "SELECT tenant.set('acme') IS NULL" -c "$mine" -c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "$mine" \
         -c "SELECT tenant.set_local('globex') IS NULL" -c "$mine" -c "COMMIT" -c "$mine" | grep -E '^[0-9]+$' | paste -sd'|')"
  check "$mode: switching tenants gives the old slot back; DISCARD ALL (a pooler's reset) gives it back" "1|0" \
    "$(app -c "SELECT tenant.set('acme') IS NULL" -c "SELECT tenant.set('globex') IS NULL" \
         -c "SELECT count(*) FROM pg_locks WHERE locktype = 'userlock' AND pid = pg_backend_pid()" -c "DISCARD ALL" -c "$mine" | grep -E '^[0-9]+$' | paste -sd'|')"

  # The token parameter: a slot for each transaction that uses it. A savepoint rolled back gives
  # back the slot taken in it, and the next use takes one again (attack review: it went on acting
  # as the tenant without one).
  local tok
  tok=$(hs256_token "$SECRET" acme)
  check "$mode: SET pg_tenant.token: a slot while a transaction uses it, again after ROLLBACK TO, none once it is reset" "1|1|0" \
    "$(app -c "SET pg_tenant.token = '$tok'" -c "BEGIN" -c "SAVEPOINT s" -c "SELECT tenant.current() IS NULL" -c "$mine" -c "ROLLBACK TO s" \
         -c "SELECT tenant.current() IS NULL" -c "$mine" -c "COMMIT" -c "RESET pg_tenant.token" -c "$mine" | grep -E '^[0-9]+$' | paste -sd'|')"

  # 4. A crash (a backend killed): the server restarts every backend, and no slot survives.
  app -c "SELECT tenant.set('acme') IS NULL" -c "SELECT pg_sleep(60)" > "$work/hold.$mode.4" 2>&1 &
  for _ in $(seq 1 100); do [ "$(slots)" = 3 ] && break; sleep 0.1; done
  victim=$(su -c "SELECT pid FROM pg_locks WHERE locktype = 'userlock' LIMIT 1")
  kill -9 "$victim"
  for _ in $(seq 1 100); do su -c "SELECT 1" >/dev/null 2>&1 && [ "$(slots)" = 0 ] && break; sleep 0.2; done
  wait
  check "$mode: after a crash (kill -9 of a holder), the server restarted and no slot is held" "yes|0" \
    "$(grep -q 'terminated by signal 9' "$dir/server.log" && echo yes)|$(slots)"
  check "$mode: ... and three sessions act as acme again, a fourth is refused" "PT010|t|t|t" \
    "$( { for _ in 1 2 3; do app -c "SELECT tenant.set('acme') IS NOT NULL" -c "SELECT pg_sleep(5)" & done
          wait_slots 3; app -c "SELECT tenant.set('acme')" | code; wait; } | grep . | LC_ALL=C sort | paste -sd'|')"
  # 5. Limits: the plan's, a tenant's own, and what is refused.
  su -c "SELECT tenant.set_limit('globex', 'sessions', 1)" >/dev/null
  check "$mode: a tenant's own limit (set_limit) replaces the plan's: globex with 1 session" "PT010|t" \
    "$( { app -c "SELECT tenant.set('globex') IS NOT NULL" -c "SELECT pg_sleep(5)" & wait_slots 1; app -c "SELECT tenant.set('globex')" | code; wait; } | grep . | LC_ALL=C sort | paste -sd'|')"
  check "$mode: a sessions limit with a period is refused (22023) by create_plan, alter_plan and set_limit; limit 0: PT011" "22023|22023|22023|PT011" \
    "$(su -v VERBOSITY=verbose -c "SELECT tenant.create_plan('p', '{\"sessions\": {\"limit\": 2, \"period\": \"day\"}}')" | code)|$(su -v VERBOSITY=verbose -c "SELECT tenant.alter_plan('small', '{\"sessions\": {\"limit\": 2, \"period\": \"month\"}}')" | code)|$(su -v VERBOSITY=verbose -c "SELECT tenant.set_limit('acme', 'sessions', 2, 'day')" | code)|$(su -c "SELECT tenant.set_limit('globex', 'sessions', 0)" >/dev/null; app -c "SELECT tenant.set('globex')" | code)"

  # 6. Third attack review: a token set by other routes than SET (set_config() once pg_tenant is
  #    loaded, connection options, a placeholder SET before it loads) gets acme's plan settings and the
  #    statement_timeout ceiling, and holds a slot; a tenant emptied by set_config(..., NULL) puts
  #    its settings back and frees its slot; a revoked session gives its slot back.
  #    acme gets one session and the plan 300ms / 8MB (the defaults: 0, 4MB).
  su -c "SELECT tenant.set_limit('acme', 'sessions', 1)" -c "SELECT tenant.set_plan_settings('small', '{\"statement_timeout\": \"300ms\", \"work_mem\": \"8MB\"}')" \
     -c "CREATE ROLE sess_app2 LOGIN" -c "SELECT tenant.grant_gateway('sess_app2')" >/dev/null
  # vals: one line per result, an error as its SQLSTATE, joined with |.
  vals() { sed -E 's/^ERROR:  ([0-9A-Z]{5}):.*/\1/' | grep -vE '^(DETAIL|LOCATION|HINT|CONTEXT):' | grep . | paste -sd'|'; }
  shows=(-c "SHOW statement_timeout" -c "SHOW work_mem")
  check "$mode: set_config(token, false): acme's settings from the next statement, the ceiling cancels pg_sleep after SET statement_timeout = 0 (57014)" "t|t|300ms|8MB|57014|t" \
    "$(app -c "SELECT tenant.current(true) IS NULL" -c "SELECT set_config('pg_tenant.token', '$tok', false) IS NOT NULL" "${shows[@]}" -c "SET statement_timeout = 0" -c "SELECT pg_sleep(2)" -c "SELECT tenant.current() IS NOT NULL" | vals)"
  check "$mode: set_config(token, true): the settings and the ceiling for the transaction, none after it" "t|t|300ms|8MB|57014|0|4MB" \
    "$(app -c "SELECT tenant.current(true) IS NULL" -c "BEGIN" -c "SELECT set_config('pg_tenant.token', '$tok', true) IS NOT NULL" "${shows[@]}" -c "SET LOCAL statement_timeout = 0" -c "SELECT pg_sleep(2)" -c "ROLLBACK" "${shows[@]}" | vals)"
  check "$mode: a token in the connection's options (PGOPTIONS): the settings, and the first statement that uses the tenant is cancelled at the ceiling" "t|300ms|8MB|57014|57014" \
    "$(PGOPTIONS="-c pg_tenant.token=$tok" app -c "SELECT tenant.current() IS NOT NULL" "${shows[@]}" -c "SET statement_timeout = 0" -c "SELECT pg_sleep(2)" | vals)|$(PGOPTIONS="-c pg_tenant.token=$tok -c statement_timeout=0" app -c "SELECT tenant.current() IS NOT NULL, pg_sleep(2)" | vals)"
  check "$mode: SET pg_tenant.token as the session's first statement (a placeholder until pg_tenant loads, without preloading): the settings and the ceiling" "t|300ms|8MB|57014" \
    "$(app -c "SET pg_tenant.token = '$tok'" -c "SELECT tenant.current() IS NOT NULL" "${shows[@]}" -c "SET statement_timeout = 0" -c "SELECT pg_sleep(2)" | vals)"
  check "$mode: a set_config() token, or one in the connection's options, holds acme's only slot while its transaction uses it: another session's set() gets PT010" "PT010|PT010" \
    "$( { app -c "SELECT set_config('pg_tenant.token', '$tok', false) IS NOT NULL" -c "BEGIN" -c "SELECT tenant.current() IS NOT NULL" -c '\! sleep 3' -c "COMMIT" >/dev/null & sleep 1.5; app -c "SELECT tenant.set('acme')" | code; wait; } )|$( { PGOPTIONS="-c pg_tenant.token=$tok" app -c "BEGIN" -c "SELECT tenant.current() IS NOT NULL" -c '\! sleep 3' -c "COMMIT" >/dev/null & sleep 1.5; app -c "SELECT tenant.set('acme')" | code; wait; } )"
  check "$mode: set_config('pg_tenant.tenant_id', NULL, false): no tenant, the settings put back (no ceiling) and the slot freed from the next statement" "t|8MB|t|t|0|4MB|slept|0" \
    "$(app -c "SELECT tenant.set('acme') IS NOT NULL" -c "SHOW work_mem" -c "SELECT set_config('pg_tenant.tenant_id', NULL, false) = ''" -c "SELECT tenant.current(true) IS NULL" "${shows[@]}" -c "SELECT 'slept' FROM pg_sleep(0.5)" -c "$mine" | vals)"
  check "$mode: ... with is_local, for the transaction: acme and its settings and slot back after COMMIT" "t|t|4MB|t|8MB|1" \
    "$(app -c "SELECT tenant.set('acme') IS NOT NULL" -c "BEGIN" -c "SELECT set_config('pg_tenant.tenant_id', NULL, true) IS NOT NULL" -c "SHOW work_mem" -c "COMMIT" -c "SELECT tenant.current() IS NOT NULL" -c "SHOW work_mem" -c "$mine" | vals)"
  check "$mode: ... a session that emptied its tenant so and idles: another session takes acme's only slot" "t" \
    "$( { app -c "SELECT tenant.set('acme') IS NOT NULL" -c "SELECT set_config('pg_tenant.tenant_id', NULL, false) = ''" -c "SELECT 1" -c '\! sleep 3' >/dev/null & sleep 1.5; app -c "SELECT tenant.set('acme') IS NOT NULL"; wait; } )"
  # A revoked session: its slot goes at its next statement (whatever it runs), its use of the
  # tenant is refused (42501); granted again, it takes the slot back at its next use.
  app2() { "$PG_BIN/psql" -X -q -t -A -v VERBOSITY=verbose -U sess_app2 -d sess "$@" 2>&1; }
  app2 -c "SELECT tenant.set('acme') IS NOT NULL" -c '\! sleep 2' -c "SELECT 1" -c '\! sleep 3' -c "SELECT tenant.current() IS NOT NULL" > "$work/revoked.$mode" &
  sleep 1; su -c "SELECT tenant.revoke_gateway('sess_app2')" >/dev/null
  local held_after_revoke held_after_statement taken
  held_after_revoke=$(slots); sleep 2
  held_after_statement=$(slots); taken=$(app -c "SELECT tenant.set('acme') IS NOT NULL"); wait
  check "$mode: revoke_gateway: the revoked session's slot is held until its next statement (SELECT 1), then free for another session; its next use is refused (42501)" "1|0|t|t|1|42501" \
    "$held_after_revoke|$held_after_statement|$taken|$(vals < "$work/revoked.$mode")"
  su -c "SELECT tenant.grant_gateway('sess_app2')" >/dev/null
  app2 -c "SELECT tenant.set('acme') IS NOT NULL" -c '\! sleep 2' -c "SELECT 1" -c '\! sleep 2' -c "SELECT tenant.current() IS NOT NULL" -c "$mine" > "$work/regranted.$mode" &
  sleep 1; su -c "SELECT tenant.revoke_gateway('sess_app2')" >/dev/null; sleep 1.5
  su -c "SELECT tenant.grant_gateway('sess_app2')" >/dev/null; wait
  check "$mode: granted again: the session takes its slot back at its next use (1 slot held)" "t|1|t|1" \
    "$(vals < "$work/regranted.$mode")"
  app2 -c "SELECT tenant.set('acme') IS NOT NULL" -c '\! sleep 2' -c "SELECT 1" -c '\! sleep 3' -c "SELECT tenant.current() IS NOT NULL" \
       -c "SELECT tenant.reset()" -c "SELECT tenant.current(true) IS NULL" > "$work/retaken.$mode" &
  sleep 1; su -c "SELECT tenant.revoke_gateway('sess_app2')" >/dev/null; sleep 1.5
  app -c "SELECT tenant.set('acme') IS NOT NULL" -c '\! sleep 4' > "$work/taker.$mode" &
  sleep 0.5; su -c "SELECT tenant.grant_gateway('sess_app2')" >/dev/null; wait
  check "$mode: ... unless another session took the slot meanwhile: its next use gets PT010, and reset() still runs" "t|t|1|PT010|t" \
    "$(vals < "$work/taker.$mode")|$(vals < "$work/retaken.$mode")"

  # 7. Fourth attack review (acme: one session, 300ms / 8MB). pg_advisory_unlock_all() releases
  #    every session-level lock of the lock method slots use: the session's next transaction finds
  #    its slot lost and takes it again at its next use, or gets PT010 if another session took it.
  #    DISCARD ALL released the slot before pg_tenant gave it back (a WARNING reached the client).
  #    RESET ALL / DISCARD ALL with a token from the connection's options: the token still decides,
  #    and its settings and ceiling apply again from the next query (they were dropped; utility
  #    statements such as SHOW and SET run before any query see the values RESET ALL left).
  app -c "SELECT tenant.set('acme') IS NOT NULL" -c "SELECT pg_advisory_unlock_all()" -c "SELECT tenant.current() IS NOT NULL" \
      -c "$mine" -c '\! sleep 3' -c "$mine" > "$work/unlock_all.$mode" &
  sleep 1.5
  local intruder; intruder=$(app -c "SELECT tenant.set('acme')" | code); wait
  app -c "SELECT tenant.set('acme') IS NOT NULL" -c "SELECT pg_advisory_unlock_all()" -c '\! sleep 3' -c "SELECT tenant.current() IS NOT NULL" \
      -c "SELECT tenant.reset()" > "$work/unlock_idle.$mode" &
  sleep 1.5
  local taker; taker=$(app -c "SELECT tenant.set('acme') IS NOT NULL" -c '\! sleep 3' | vals); wait
  check "$mode: pg_advisory_unlock_all() in a set() session: its slot is taken again at its next use (another set() gets PT010); idle meanwhile, another session takes it and its next use gets PT010" \
    "t|t|1|1|PT010|t|PT010" "$(vals < "$work/unlock_all.$mode")|$intruder|$taker|$(vals < "$work/unlock_idle.$mode" | cut -d'|' -f2)"
  check "$mode: set() then DISCARD ALL: the slot is free, and no warning reaches the client" "t|0" \
    "$(app -c "SELECT tenant.set('acme') IS NOT NULL" -c "DISCARD ALL" -c "$mine" | vals)"
  check "$mode: a token in the connection's options, then RESET ALL or DISCARD ALL: still acme, with its settings and its ceiling (57014)" \
    "t|t|300ms|8MB|57014 t|t|300ms|8MB|57014" \
    "$(for reset in "RESET ALL" "DISCARD ALL"; do PGOPTIONS="-c pg_tenant.token=$tok" app -c "SELECT tenant.current() IS NOT NULL" -c "$reset" -c "SELECT tenant.current() IS NOT NULL" "${shows[@]}" -c "SET statement_timeout = 0" -c "SELECT pg_sleep(2)" | vals; done | paste -sd' ')"

  # 8. Second round of that review. set_token() for the session then pg_advisory_unlock_all():
  #    the lost slot was never noticed (no grant to judge). A COMMIT that fails after its
  #    pre-commit step (a holdable cursor refused at commit) gave the slot back but kept the
  #    tenant. A slot taken inside a cursor's FETCH belonged to the portal: PREPARE TRANSACTION
  #    handed it to the prepared transaction (which held it across restarts) and the commit
  #    warned "you don't own a lock".
  app -c "SELECT tenant.set_token('$tok') IS NOT NULL" -c "SELECT pg_advisory_unlock_all()" -c "SELECT tenant.current() IS NOT NULL" \
      -c '\! sleep 3' > "$work/token_unlock.$mode" &
  sleep 1.5
  intruder=$(app -c "SELECT tenant.set('acme')" | code); wait
  check "$mode: set_token() then pg_advisory_unlock_all(): the slot is taken again at the next use, another set() gets PT010" \
    "t|t|PT010" "$(vals < "$work/token_unlock.$mode")|$intruder"
  app -c "SELECT tenant.set('acme') IS NOT NULL" -c "BEGIN" -c "SELECT tenant.current() IS NOT NULL" -c "SELECT tenant.reset()" -c "DECLARE h CURSOR WITH HOLD FOR SELECT 1" -c "COMMIT" \
      -c "SELECT tenant.current() IS NOT NULL" -c "$mine" -c '\! sleep 3' > "$work/failed_commit.$mode" &
  sleep 1.5
  intruder=$(app -c "SELECT tenant.set('acme')" | code); wait
  check "$mode: a COMMIT that fails at its end (a holdable cursor refused) keeps the tenant and its slot: another set() gets PT010" \
    "t|t|0A000|t|1|PT010" "$(vals < "$work/failed_commit.$mode")|$intruder"
  app -c "SELECT tenant.set('acme') IS NOT NULL" -c "BEGIN" -c "SELECT pg_advisory_unlock_all()" -c "SELECT tenant.current() IS NOT NULL" \
      -c "$mine" -c '\! sleep 3' -c "COMMIT" > "$work/unlock_in_txn.$mode" &
  sleep 1.5
  intruder=$(app -c "SELECT tenant.set('acme')" | code); wait
  check "$mode: pg_advisory_unlock_all() inside a transaction: its next statement takes the slot again, another set() gets PT010 meanwhile" \
    "t|t|1|PT010" "$(vals < "$work/unlock_in_txn.$mode")|$intruder"
  su -c "CREATE TABLE gp_items (id serial, tenant_id uuid, body text)" -c "SELECT tenant.protect('gp_items')" \
     -c "GRANT SELECT, INSERT ON gp_items TO sess_app" -c "GRANT USAGE ON SEQUENCE gp_items_id_seq TO sess_app" >/dev/null
  check "$mode: a prepared INSERT run as a cached generic plan (extended protocol) after pg_advisory_unlock_all() and another session took the slot: PT010, nothing written" \
    "PT010|0" "$(python3 "$ROOT/tests/sessions/generic_plan.py" "$dir" "$port" sess sess_app 2>&1 | tail -1)|$(su -c "SELECT count(*) FROM gp_items WHERE body = 'generic-after'")"
  check "$mode: set_local() in a cursor's FETCH, then PREPARE TRANSACTION: the prepared transaction holds no slot, and no warning" \
    "0|t|0" \
    "$(app -c "BEGIN" -c "DECLARE c CURSOR FOR SELECT tenant.set_local('acme') IS NULL" -c "FETCH c" -c "PREPARE TRANSACTION 'sessions_$mode'" | grep -ciE 'warning')|$(app -c "SELECT tenant.set('acme') IS NOT NULL" -c "SELECT tenant.reset()" | head -1)|$(su -c "ROLLBACK PREPARED 'sessions_$mode'" >/dev/null; slots)"
  scripts/cluster.sh stop $name >/dev/null 2>&1
}

run_mode plain
run_mode preload
exit "$failed"
