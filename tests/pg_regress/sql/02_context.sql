-- The tenant context: set, set_local, reset, current; who may act as whom; and every route that
-- must NOT change the tenant.
\set SHOW_CONTEXT never
SELECT tenant.create('ctx-a') AS a_id \gset
SELECT tenant.create('ctx-b') AS b_id \gset

-- No tenant yet.
SELECT test.try($$SELECT tenant.current()$$);
SELECT tenant.current(missing_ok => true) IS NULL AS none;
SELECT tenant.current();

-- set() by slug and by id; current() and SHOW agree.
SELECT tenant.set('ctx-a') = :'a_id' AS set_returns_id;
SELECT tenant.current() = :'a_id' AS current_is_a;
SELECT current_setting('pg_tenant.tenant_id') = :'a_id' AS show_is_a;
SELECT tenant.set(:'b_id') = :'b_id' AS set_by_id;
SELECT tenant.current() = :'b_id' AS current_is_b;
SELECT tenant.reset();
SELECT tenant.current(true) IS NULL AS reset_clears;
SHOW pg_tenant.tenant_id;

-- Errors leave the context unchanged.
SELECT tenant.set('ctx-a') IS NOT NULL AS ok;
SELECT test.try($$SELECT tenant.set('no-such-tenant')$$);
SELECT test.try($$SELECT tenant.set('00000000-0000-0000-0000-000000000000')$$);
SELECT test.try($$SELECT tenant.set(NULL)$$);
SELECT test.try($$SELECT tenant.set_local(NULL)$$);
SELECT tenant.current() = :'a_id' AS still_a;

-- Rollback restores the previous tenant; commit keeps the new one.
BEGIN;
SELECT tenant.set('ctx-b') IS NOT NULL AS ok;
SELECT tenant.current() = :'b_id' AS inside_is_b;
ROLLBACK;
SELECT tenant.current() = :'a_id' AS back_to_a;
BEGIN;
SELECT tenant.set('ctx-b') IS NOT NULL AS ok;
SAVEPOINT s1;
SELECT tenant.set('ctx-a') IS NOT NULL AS ok;
ROLLBACK TO s1;
SELECT tenant.current() = :'b_id' AS savepoint_rolled_back;
COMMIT;
SELECT tenant.current() = :'b_id' AS committed_b;

-- set_local lasts until the end of the transaction, committed or not.
BEGIN;
SELECT tenant.set_local('ctx-a') IS NOT NULL AS ok;
SELECT tenant.current() = :'a_id' AS local_a;
COMMIT;
SELECT tenant.current() = :'b_id' AS after_commit_b;
SELECT tenant.reset();
BEGIN;
SELECT tenant.set_local('ctx-a') IS NOT NULL AS ok;
COMMIT;
SELECT tenant.current(true) IS NULL AS nothing_survives;
-- Outside a transaction block it warns and lasts for the statement only.
SELECT tenant.set_local('ctx-a') IS NOT NULL AS ok;
SELECT tenant.current(true) IS NULL AS gone;

-- RESET ALL and DISCARD ALL clear it.
SELECT tenant.set('ctx-a') IS NOT NULL AS ok;
RESET ALL;
SELECT tenant.current(true) IS NULL AS reset_all_clears;
SELECT tenant.set('ctx-a') IS NOT NULL AS ok;
DISCARD ALL;
SELECT tenant.current(true) IS NULL AS discard_all_clears;

-- The parameter cannot be set any other way, by anyone (this is a superuser).
SELECT tenant.set('ctx-a') IS NOT NULL AS ok;
SET pg_tenant.tenant_id = '00000000-0000-0000-0000-000000000000';
SELECT test.try($$SET pg_tenant.tenant_id = '00000000-0000-0000-0000-000000000000'$$);
SELECT test.try($$SET LOCAL pg_tenant.tenant_id = '00000000-0000-0000-0000-000000000000'$$);
SELECT test.try(format($$SET pg_tenant.tenant_id = %L$$, :'b_id'));
SELECT test.try(format($$SELECT set_config('pg_tenant.tenant_id', %L, false)$$, :'b_id'));
SELECT test.try(format($$SELECT set_config('pg_tenant.tenant_id', %L, true)$$, :'b_id'));
SELECT test.try($$SELECT set_config('pg_tenant.tenant_id', '', false)$$);
SELECT test.try(format($$ALTER ROLE CURRENT_USER SET pg_tenant.tenant_id = %L$$, :'b_id'));
SELECT test.try(format($$ALTER DATABASE pg_tenant_regress SET pg_tenant.tenant_id = %L$$, :'b_id'));
ALTER SYSTEM SET pg_tenant.tenant_id = '00000000-0000-0000-0000-000000000000';
SELECT test.try(format($$CREATE FUNCTION test.sneaky() RETURNS uuid LANGUAGE sql SET pg_tenant.tenant_id = %L AS 'SELECT tenant.current()'$$, :'b_id'));
SELECT test.try($$SET pg_tenant.other_setting = 'x'$$);
SELECT tenant.current() = :'a_id' AS still_a;
SELECT count(*) AS role_or_db_defaults FROM pg_db_role_setting WHERE array_to_string(setconfig, ',') LIKE '%pg_tenant%';

-- Who may act as a tenant.
CREATE ROLE ctx_gateway;
CREATE ROLE ctx_member_of_gateway IN ROLE ctx_gateway;
CREATE ROLE ctx_a_only;
CREATE ROLE ctx_nobody;
SELECT tenant.grant_gateway('ctx_gateway');
SELECT tenant.grant_access('ctx-a', 'ctx_a_only');
SELECT tenant.reset();

SET ROLE ctx_gateway;
SELECT tenant.set('ctx-b') = :'b_id' AS gateway_any;
SELECT test.try($$SELECT tenant.set('no-such-tenant')$$);
RESET ROLE;
SET ROLE ctx_member_of_gateway;
SELECT tenant.set('ctx-a') = :'a_id' AS member_of_gateway;
RESET ROLE;

SELECT tenant.reset();
SET ROLE ctx_a_only;
SELECT tenant.set('ctx-a') = :'a_id' AS own_tenant;
SELECT test.try($$SELECT tenant.set('ctx-b')$$);
-- An unknown tenant looks the same as a forbidden one to a role without gateway rights.
SELECT test.try($$SELECT tenant.set('no-such-tenant')$$);
SELECT test.try($$SELECT tenant.set_local('ctx-b')$$);
SELECT tenant.current() = :'a_id' AS unchanged;
SELECT tenant.set('ctx-b');
RESET ROLE;

SET ROLE ctx_nobody;
SELECT test.try($$SELECT tenant.set('ctx-a')$$);
SELECT tenant.current() = :'a_id' AS unchanged;
-- reset and current are open to everyone.
SELECT tenant.reset();
SELECT tenant.current(true) IS NULL AS cleared;
RESET ROLE;

-- Revoking takes effect at once.
SELECT tenant.revoke_access('ctx-a', 'ctx_a_only');
SET ROLE ctx_a_only;
SELECT test.try($$SELECT tenant.set('ctx-a')$$);
RESET ROLE;
SELECT tenant.revoke_gateway('ctx_gateway');
SET ROLE ctx_member_of_gateway;
SELECT test.try($$SELECT tenant.set('ctx-a')$$);
RESET ROLE;

-- A suspended tenant can still be set (reads keep working).
SELECT tenant.suspend('ctx-b', 'testing');
SELECT tenant.set('ctx-b') = :'b_id' AS suspended_can_be_set;
SELECT tenant.resume('ctx-b');
SELECT tenant.reset();
DROP ROLE ctx_gateway, ctx_member_of_gateway, ctx_a_only, ctx_nobody;
