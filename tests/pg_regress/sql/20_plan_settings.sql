-- Plan settings (issue 15, part 3): tenant.set_plan_settings() and set_tenant_settings() attach
-- settings (statement_timeout, work_mem, ...) that are in force while a session acts as the
-- tenant, with the context's scope; a tenant's own values override its plan's key by key; the
-- plan's statement_timeout is a ceiling the session cannot raise.
\set SHOW_CONTEXT never
SELECT tenant.create_plan('ps-basic', '{}');
SELECT tenant.create('ps-a', plan => 'ps-basic') IS NOT NULL AS created;
SELECT tenant.create('ps-b', plan => 'ps-basic') IS NOT NULL AS created;
SELECT tenant.create('ps-c') IS NOT NULL AS created;
CREATE ROLE ps_app;
SELECT tenant.grant_gateway('ps_app');
-- Sleeps, and says whether the statement was cancelled, and how soon. Under a tenant's ceiling
-- the handler itself is cancelled too (no statement runs on past the ceiling, see below): the
-- statement fails with 57014 instead of returning; 'not cancelled' would mean no ceiling.
CREATE FUNCTION test.sleep_cancelled(seconds float8) RETURNS text LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    PERFORM pg_sleep(seconds);
    RETURN 'not cancelled';
EXCEPTION WHEN query_canceled THEN
    RETURN SQLSTATE || ': ' || SQLERRM || CASE WHEN clock_timestamp() - t0 < interval '1 s'
                                               THEN ' (within 1 s)' ELSE ' (after 1 s)' END;
END
$$;
GRANT EXECUTE ON FUNCTION test.sleep_cancelled(float8) TO PUBLIC;
-- Sleeps when the planner folds it to a constant.
CREATE FUNCTION test.slow_constant(seconds float8) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM pg_sleep(seconds);
    RETURN 1;
END
$$;
GRANT EXECUTE ON FUNCTION test.slow_constant(float8) TO PUBLIC;

-- Argument errors: NULLs, an unknown plan or tenant, a key outside the allowlist (named), a
-- value SET would refuse (PostgreSQL's own error, naming the parameter). None changes anything.
SELECT test.try($$SELECT tenant.set_plan_settings(NULL, '{}')$$);
SELECT test.try($$SELECT tenant.set_plan_settings('ps-basic', NULL)$$);
SELECT test.try($$SELECT tenant.set_tenant_settings(NULL, '{}')$$);
SELECT test.try($$SELECT tenant.set_tenant_settings('ps-a', NULL)$$);
SELECT test.try($$SELECT tenant.set_plan_settings('nope', '{}')$$);
SELECT test.try($$SELECT tenant.set_tenant_settings('nope', '{}')$$);
SELECT test.try($$SELECT tenant.set_plan_settings('ps-basic', '[]')$$);
SELECT test.try($$SELECT tenant.set_plan_settings('ps-basic', '{"work_mem": "8MB", "search_path": "evil"}')$$);
SELECT test.try($$SELECT tenant.set_tenant_settings('ps-a', '{"shared_buffers": "1GB"}')$$);
SELECT test.try($$SELECT tenant.set_plan_settings('ps-basic', '{"work_mem": true}')$$);
SELECT test.try($$SELECT tenant.set_plan_settings('ps-basic', '{"work_mem": "8MB", "statement_timeout": "lots"}')$$);
SELECT test.try($$SELECT tenant.set_plan_settings('ps-basic', '{"statement_timeout": -5}')$$);
SELECT test.try($$SELECT tenant.set_plan_settings('ps-basic', '{"statement_timeout": 1e400}')$$);
SELECT test.try($$SELECT tenant.set_tenant_settings('ps-a', '{"work_mem": 1e400}')$$);
SELECT test.try($$SELECT tenant.set_tenant_settings('ps-a', '{"lock_timeout": "1 fortnight"}')$$);
SELECT test.try($$SELECT tenant.set_tenant_settings('ps-a', '{"temp_file_limit": -2}')$$);
SELECT p.context_settings AS plan_settings,
       (SELECT context_settings FROM tenant_data.tenants WHERE slug = 'ps-a') AS tenant_settings,
       (SELECT count(*) FROM tenant_data.audit_log WHERE action LIKE 'set\_%\_settings') AS audited
  FROM tenant_data.plans p WHERE name = 'ps-basic';
-- Nor did the failed checks change the session's own settings.
SELECT current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS statement_timeout;

-- An application role may not call them.
SET ROLE ps_app;
SELECT test.try($$SELECT tenant.set_plan_settings('ps-basic', '{}')$$);
SELECT test.try($$SELECT tenant.set_tenant_settings('ps-a', '{}')$$);
RESET ROLE;

-- Values as strings (with units) or numbers (in the parameter's unit); audited.
SELECT tenant.set_plan_settings('ps-basic', '{"statement_timeout": "300ms", "work_mem": "8MB", "lock_timeout": 1500, "temp_file_limit": "1GB"}');
SELECT tenant.set_tenant_settings('ps-b', '{"work_mem": "16MB", "idle_in_transaction_session_timeout": "1min"}');
SELECT action, detail FROM tenant_data.audit_log WHERE action LIKE 'set\_%\_settings' ORDER BY id;

-- As the tenant: the plan's settings, the tenant's own over them; temp_file_limit (superuser-only)
-- applied on the plan's authority, and the session still may not change it.
SET ROLE ps_app;
SELECT current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS statement_timeout,
       current_setting('lock_timeout') AS lock_timeout, current_setting('temp_file_limit') AS temp_file_limit;
SELECT tenant.set('ps-a') IS NOT NULL AS ok;
SELECT current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS statement_timeout,
       current_setting('lock_timeout') AS lock_timeout, current_setting('temp_file_limit') AS temp_file_limit,
       current_setting('idle_in_transaction_session_timeout') AS idle_in_tx;
SELECT test.try($$SET temp_file_limit = -1$$);
-- Switching tenants switches settings: ps-b's work_mem and idle timeout over the plan's.
SELECT tenant.set('ps-b') IS NOT NULL AS ok;
SELECT current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS statement_timeout,
       current_setting('lock_timeout') AS lock_timeout, current_setting('idle_in_transaction_session_timeout') AS idle_in_tx;
-- ps-c's plan sets nothing: what the session had before any tenant.
SELECT tenant.set('ps-c') IS NOT NULL AS ok;
SELECT current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS statement_timeout,
       current_setting('temp_file_limit') AS temp_file_limit, current_setting('idle_in_transaction_session_timeout') AS idle_in_tx;
-- reset() puts back what the session had, its own SET included.
SET work_mem = '2MB';
SELECT tenant.set('ps-a') IS NOT NULL AS ok;
SHOW work_mem;
SELECT tenant.reset();
SELECT current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS statement_timeout,
       current_setting('lock_timeout') AS lock_timeout, current_setting('temp_file_limit') AS temp_file_limit;
RESET work_mem;

-- set_local(): for the transaction, at COMMIT and ROLLBACK alike.
BEGIN;
SELECT tenant.set_local('ps-b') IS NOT NULL AS ok;
SELECT current_setting('work_mem') AS work_mem, current_setting('lock_timeout') AS lock_timeout;
COMMIT;
SELECT current_setting('work_mem') AS work_mem, current_setting('lock_timeout') AS lock_timeout;
BEGIN;
SELECT tenant.set_local('ps-a') IS NOT NULL AS ok;
SHOW work_mem;
ROLLBACK;
SHOW work_mem;
-- set_local() over a session tenant: the transaction has the other tenant's settings only (none
-- of the session tenant's), and the session tenant's come back after it.
SELECT tenant.set('ps-b') IS NOT NULL AS ok;
BEGIN;
SELECT tenant.set_local('ps-c') IS NOT NULL AS ok;
SELECT current_setting('work_mem') AS work_mem, current_setting('lock_timeout') AS lock_timeout,
       current_setting('idle_in_transaction_session_timeout') AS idle_in_tx;
COMMIT;
SELECT current_setting('work_mem') AS work_mem, current_setting('lock_timeout') AS lock_timeout,
       current_setting('idle_in_transaction_session_timeout') AS idle_in_tx;
-- A rolled-back set() and a savepoint rolled back keep the settings of the context they keep.
BEGIN;
SELECT tenant.set('ps-a') IS NOT NULL AS ok;
SHOW work_mem;
ROLLBACK;
SHOW work_mem;
BEGIN;
SAVEPOINT s;
SELECT tenant.set('ps-a') IS NOT NULL AS ok;
SHOW work_mem;
ROLLBACK TO SAVEPOINT s;
SHOW work_mem;
COMMIT;
SHOW work_mem;
-- reset() in a transaction with a local context: after COMMIT, no tenant's settings remain
-- (a local context with settings, over none; one without, over a session tenant with some).
BEGIN;
SELECT tenant.set_local('ps-a') IS NOT NULL AS ok;
SELECT tenant.reset();
COMMIT;
SELECT current_setting('work_mem') AS work_mem, current_setting('lock_timeout') AS lock_timeout,
       current_setting('idle_in_transaction_session_timeout') AS idle_in_tx, tenant.current(true) AS tenant;
SELECT tenant.set('ps-b') IS NOT NULL AS ok;
BEGIN;
SELECT tenant.set_local('ps-c') IS NOT NULL AS ok;
SELECT tenant.reset();
COMMIT;
SELECT current_setting('work_mem') AS work_mem, current_setting('lock_timeout') AS lock_timeout,
       current_setting('idle_in_transaction_session_timeout') AS idle_in_tx, tenant.current(true) AS tenant;

-- The ceiling: ps-a's statement_timeout (300ms) cancels a statement with PostgreSQL's own 57014,
-- whatever statement_timeout the session sets afterwards (0, or larger).
SELECT tenant.set('ps-a') IS NOT NULL AS ok;
SET statement_timeout = 0;
SELECT pg_sleep(2);
SELECT test.sleep_cancelled(2);
SET statement_timeout = '1h';
SHOW statement_timeout;
SELECT pg_sleep(2);
SELECT test.sleep_cancelled(2);
RESET statement_timeout;
SELECT test.sleep_cancelled(2);
-- In a transaction block, statement after statement, and in a procedure (a utility command).
BEGIN;
SET LOCAL statement_timeout = 0;
SELECT test.sleep_cancelled(2);
ROLLBACK;
DO $$BEGIN PERFORM pg_sleep(2); END$$;
-- A statement that catches the cancellation gets no new ceiling (it counts from the statement's
-- start): what it runs next is cancelled at once (attack review: it ran on for 4 s).
DO $$BEGIN
    BEGIN
        PERFORM pg_sleep(2);
    EXCEPTION WHEN query_canceled THEN
        RAISE NOTICE 'cancelled once';
    END;
    PERFORM pg_sleep(2);
    RAISE NOTICE 'ran on past the ceiling';
END$$;
-- Code the planner runs (an IMMUTABLE function folded to a constant), a prepared statement.
SELECT test.slow_constant(2);
PREPARE ps_sleep(float8) AS SELECT pg_sleep($1);
EXECUTE ps_sleep(2);
DEALLOCATE ps_sleep;
-- A lower value of the session's own is PostgreSQL's to apply, as usual.
SET statement_timeout = '100ms';
SELECT test.sleep_cancelled(2);
-- For a transaction: set_local() over no tenant.
SELECT tenant.reset();
SET statement_timeout = 0;
BEGIN;
SELECT tenant.set_local('ps-a') IS NOT NULL AS ok;
SELECT test.sleep_cancelled(2);
COMMIT;
-- No tenant, no ceiling: the session's statement_timeout (0) lets a statement run.
SELECT test.sleep_cancelled(0.5);
SELECT tenant.set('ps-c') IS NOT NULL AS ok;
SELECT test.sleep_cancelled(0.5);
SELECT tenant.reset();
RESET statement_timeout;
RESET ROLE;

-- A change by an administrator reaches the session at its next tenant.set(); '{}' clears.
SELECT tenant.set_tenant_settings('ps-b', '{"work_mem": "32MB"}');
SET ROLE ps_app;
SELECT tenant.set('ps-b') IS NOT NULL AS ok;
SELECT current_setting('work_mem') AS work_mem, current_setting('idle_in_transaction_session_timeout') AS idle_in_tx;
RESET ROLE;
SELECT tenant.set_tenant_settings('ps-b', '{}');
SELECT tenant.set_plan_settings('ps-basic', '{"work_mem": "6MB"}');
SET ROLE ps_app;
SELECT tenant.set('ps-b') IS NOT NULL AS ok;
SELECT current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS statement_timeout;
SET statement_timeout = 0;
SELECT test.sleep_cancelled(0.5);
SELECT tenant.reset();
RESET statement_timeout;
RESET ROLE;
SELECT tenant.set_plan_settings('ps-basic', '{}');
SELECT name, context_settings FROM tenant_data.plans WHERE name = 'ps-basic';
SELECT slug, context_settings FROM tenant_data.tenants WHERE slug LIKE 'ps-%' ORDER BY slug;
-- A context a token chooses gets the tenant's settings too, with its scope: SET LOCAL
-- pg_tenant.token (the form poolers forward) and set_token(..., local => true), for the
-- transaction; the ceiling holds there as well.
SELECT tenant.set_plan_settings('ps-basic', '{"work_mem": "8MB", "statement_timeout": "300ms"}');
SELECT tenant.set_signing_key('HS256', 'ps-secret-0123456789-0123456789-abc');
SET ROLE ps_app;
SELECT test.jwt(test.claims('ps-a'), 'ps-secret-0123456789-0123456789-abc') AS tok_a \gset
BEGIN;
SET LOCAL pg_tenant.token = :'tok_a';
SELECT current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS statement_timeout;
SET LOCAL statement_timeout = 0;
SELECT test.sleep_cancelled(2);
COMMIT;
SELECT current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS statement_timeout;
BEGIN;
SELECT tenant.set_token(:'tok_a', local => true) IS NOT NULL AS ok;
SHOW work_mem;
COMMIT;
SHOW work_mem;
-- Over a session tenant (ps-c, no settings): the token's tenant's for the transaction, then
-- ps-c's (none) again; RESET pg_tenant.token goes back to ps-c's at once.
SELECT tenant.set('ps-c') IS NOT NULL AS ok;
BEGIN;
SET LOCAL pg_tenant.token = :'tok_a';
SHOW work_mem;
RESET pg_tenant.token;
SHOW work_mem;
COMMIT;
SHOW work_mem;
SELECT tenant.reset();
-- A token given through set_config() gets the settings too (attack review: it applied none, so
-- it escaped the ceiling), from the next statement on, with the value's scope: for the
-- transaction with is_local, else for the session; emptied, the settings go with it. (Connection
-- options and a placeholder SET before the library loads: tests/sessions/run.sh.)
BEGIN;
SELECT set_config('pg_tenant.token', :'tok_a', true) IS NOT NULL AS ok;
SELECT current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS statement_timeout;
SET LOCAL statement_timeout = 0;
SELECT test.sleep_cancelled(2);
ROLLBACK;
SELECT current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS statement_timeout;
SELECT set_config('pg_tenant.token', :'tok_a', false) IS NOT NULL AS ok;
SELECT current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS statement_timeout,
       tenant.current() IS NOT NULL AS acting;
SET statement_timeout = 0;
SELECT test.sleep_cancelled(2);
SELECT set_config('pg_tenant.token', '', false) IS NOT NULL AS ok;
SELECT current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS statement_timeout,
       tenant.current(true) AS tenant;
SELECT test.sleep_cancelled(0.5);
RESET statement_timeout;
-- set_config('pg_tenant.tenant_id', NULL, ...) is PostgreSQL's RESET, which no check hook or
-- utility hook sees (attack review: the tenant's settings stayed): from the next statement on,
-- what the session had before comes back, for the transaction with is_local (the tenant and its
-- settings back after it), else for the session. '' is refused, as any other value.
SELECT tenant.set('ps-a') IS NOT NULL AS ok;
SELECT test.try($$SELECT set_config('pg_tenant.tenant_id', '', false)$$);
BEGIN;
SELECT set_config('pg_tenant.tenant_id', NULL, true) IS NOT NULL AS ok;
SELECT current_setting('work_mem') AS work_mem, tenant.current(true) AS tenant;
COMMIT;
SELECT current_setting('work_mem') AS work_mem, tenant.current(true) IS NOT NULL AS acting;
SELECT set_config('pg_tenant.tenant_id', NULL, false) IS NOT NULL AS ok;
SELECT current_setting('work_mem') AS work_mem, current_setting('statement_timeout') AS statement_timeout,
       tenant.current(true) AS tenant;
SET statement_timeout = 0;
SELECT test.sleep_cancelled(0.5);
RESET statement_timeout;
RESET ROLE;
SELECT tenant.set_signing_key('HS256', NULL);
SELECT tenant.set_plan_settings('ps-basic', '{}');
-- DISCARD ALL (a pooler's reset) ends the tenant and its settings together.
SELECT tenant.set_plan_settings('ps-basic', '{"work_mem": "8MB"}');
SELECT tenant.set('ps-a') IS NOT NULL AS ok;
DISCARD ALL;
SELECT current_setting('work_mem') AS work_mem, tenant.current(true) AS tenant;
SET work_mem = '3MB';
SELECT tenant.set('ps-a') IS NOT NULL AS ok;
SHOW work_mem;
SELECT tenant.reset();
SHOW work_mem;
RESET work_mem;
-- temp_file_limit is superuser-only, and pg_tenant applies it with a superuser's rights: only a
-- superuser may configure it (attack review: a delegate granted EXECUTE lifted its own limit).
-- Other keys a delegate may set.
-- Nor replace settings that hold a superuser's temp_file_limit (second review: '{}' dropped it).
CREATE ROLE ps_delegate;
GRANT EXECUTE ON FUNCTION tenant.set_tenant_settings(text, jsonb) TO ps_delegate;
SELECT tenant.set_tenant_settings('ps-c', '{"temp_file_limit": "1GB"}');
SET ROLE ps_delegate;
SELECT test.try($$SELECT tenant.set_tenant_settings('ps-c', '{"temp_file_limit": "-1"}')$$);
SELECT test.try($$SELECT tenant.set_tenant_settings('ps-c', '{}')$$);
RESET ROLE;
SELECT slug, context_settings FROM tenant_data.tenants WHERE slug = 'ps-c';
SELECT tenant.set_tenant_settings('ps-c', '{}');
SET ROLE ps_delegate;
SELECT tenant.set_tenant_settings('ps-c', '{"work_mem": "5MB"}');
RESET ROLE;
SELECT slug, context_settings FROM tenant_data.tenants WHERE slug = 'ps-c';
SELECT tenant.set_tenant_settings('ps-c', '{}');
REVOKE EXECUTE ON FUNCTION tenant.set_tenant_settings(text, jsonb) FROM ps_delegate;
DROP ROLE ps_delegate;
