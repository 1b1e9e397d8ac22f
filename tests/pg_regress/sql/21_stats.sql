-- Per-tenant statistics (tenant.stats, tenant.stats_reset, info()'s stats) on a server that does
-- not preload pg_tenant: there is no shared memory to count in, so reading or resetting them is
-- refused with 55000 and a hint, and info()'s stats is NULL. (Counting itself, with the library
-- preloaded, is tests/stats/run.sh.) Who may read them does not depend on the mode.
\set SHOW_CONTEXT never
SELECT tenant.create('stats-a') IS NOT NULL AS created;
CREATE ROLE stats_app;
SELECT tenant.grant_gateway('stats_app');

SHOW pg_tenant.stats;
-- The size of the shared table exists only where the library is preloaded.
SELECT test.try($$SHOW pg_tenant.stats_max_tenants$$);

-- Administrators: a clear refusal, with what to do.
SELECT * FROM tenant.stats;
SELECT tenant.stats_reset();
SELECT test.try($$SELECT * FROM tenant.stats$$);
SELECT test.try($$SELECT tenant.stats_reset('stats-a')$$);
SELECT test.try($$SELECT tenant.stats_reset('no-such-tenant')$$);

-- The application role may not read the view nor reset, and may not turn counting off.
SET ROLE stats_app;
SELECT test.try($$SELECT * FROM tenant.stats$$);
SELECT test.try($$SELECT * FROM tenant.stats_rows()$$);
SELECT test.try($$SELECT tenant.stats_reset()$$);
SELECT test.try($$SET pg_tenant.stats = off$$);
-- Its own tenant's row through info(): stats is NULL here (nothing is counted).
SELECT tenant.set('stats-a') IS NOT NULL AS ok;
SELECT slug, stats IS NULL AS no_stats FROM tenant.info();
SELECT tenant.reset();
RESET ROLE;

-- Privileges: the view and both functions are for administrators only.
SELECT has_table_privilege('stats_app', 'tenant.stats', 'SELECT') AS app_reads_view,
       has_function_privilege('stats_app', 'tenant.stats_rows()', 'EXECUTE') AS app_runs_rows,
       has_function_privilege('stats_app', 'tenant.stats_reset(text)', 'EXECUTE') AS app_resets;

SELECT tenant.revoke_gateway('stats_app');
SELECT tenant."drop"('stats-a');
DROP ROLE stats_app;
