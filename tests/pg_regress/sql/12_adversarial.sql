-- The adversarial cases not already proven elsewhere (README "Security model" maps every case
-- to its test): hostile names in every function that builds SQL from one (case 13), and the
-- quota machinery out of the application role's reach (case 17).
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE TABLE adv_canary (x int);
INSERT INTO adv_canary VALUES (1);
CREATE ROLE adv_app LOGIN;
SELECT tenant.grant_gateway('adv_app');

-- Case 12: a SECURITY DEFINER function of the extension would have to pin its search_path (so
-- that objects planted earlier in the caller's path are never picked up); there is none, and
-- this lists any that appears. 04_isolation plants an operator against the others.
SELECT p.oid::regprocedure AS security_definer_function, p.proconfig
  FROM pg_proc p
  JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_tenant'
 WHERE p.prosecdef AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false) ORDER BY 1;

-- Case 13: quotes, semicolons, comment markers, spaces, uppercase and unicode in schema, table,
-- column and resource names. Each is quoted where SQL is built; were one ever executed, the
-- canary table would be gone.
CREATE SCHEMA "Wëird; DROP TABLE adv_canary; --";
CREATE TABLE "Wëird; DROP TABLE adv_canary; --"."Tab'le ""x"" 名前" (id serial PRIMARY KEY, body text);
SELECT '"Wëird; DROP TABLE adv_canary; --"."Tab''le ""x"" 名前"' AS weird_table \gset
SELECT tenant.protect(:'weird_table', 'Tenant''s "Col"; DROP TABLE adv_canary; --');
SELECT tenant.attach_quota(:'weird_table', 'res''; DROP TABLE adv_canary; --', 'count');
SELECT tenant.create_plan('adv_plan', '{"res''; DROP TABLE adv_canary; --": {"limit": 2}}');
SELECT tenant.create('adv-one', plan => 'adv_plan') IS NOT NULL AS created, tenant.create('adv-two') IS NOT NULL AS created;
GRANT USAGE ON SCHEMA "Wëird; DROP TABLE adv_canary; --" TO adv_app;
GRANT SELECT, INSERT, DELETE ON :weird_table TO adv_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA "Wëird; DROP TABLE adv_canary; --" TO adv_app;
SELECT table_name, tenant_column FROM tenant.protected_tables WHERE table_name = :'weird_table'::regclass;
SELECT table_name, resource, mode FROM tenant.quota_attachments WHERE table_name = :'weird_table'::regclass;
-- Slugs that would need quoting are refused outright; lookups of such keys find nothing.
SELECT test.try($$SELECT tenant.create('adv; DROP TABLE adv_canary; --')$$);
SELECT test.try($$SELECT tenant.create('ADV')$$);
SELECT test.try($$SELECT tenant.create('adv é')$$);
SELECT test.try($$SELECT tenant.create('adv"x')$$);
SELECT test.try($$SELECT tenant.suspend('x''; DROP TABLE adv_canary; --')$$);

\c - adv_app
SET client_min_messages = warning;
SELECT test.try($$SELECT tenant.set('adv''; DROP TABLE adv_canary; --')$$);
SELECT tenant.set('adv-one') IS NOT NULL AS set;
INSERT INTO "Wëird; DROP TABLE adv_canary; --"."Tab'le ""x"" 名前" (body) VALUES ('one'), ('two');
SELECT test.try($$INSERT INTO "Wëird; DROP TABLE adv_canary; --"."Tab'le ""x"" 名前" (body) VALUES ('three')$$);
SELECT allowed, used, "limit" FROM tenant.check_quota('res''; DROP TABLE adv_canary; --');
-- Case 17: the quota machinery is out of the application role's reach.
SELECT test.try($$SELECT * FROM tenant_data.usage_counters$$);
SELECT test.try($$UPDATE tenant_data.usage_counters SET used = 0$$);
SELECT test.try($$UPDATE tenant_data.plans SET limits = '{}'$$);
SELECT test.try($$INSERT INTO tenant_data.limit_overrides VALUES (tenant.current(), 'res', -1, 'none')$$);
SELECT test.try($$SET session_replication_role = replica$$);
SELECT test.try($$SELECT set_config('session_replication_role', 'replica', true)$$);
SELECT test.try(format('ALTER TABLE %s DISABLE TRIGGER ALL', :'weird_table'));
SELECT test.try(format('ALTER TABLE %s DISABLE TRIGGER USER', :'weird_table'));
SELECT test.try(format('DROP TRIGGER IF EXISTS tenant_guard ON %s', :'weird_table'));
SELECT test.try($$SELECT tenant.detach_quota('"Wëird; DROP TABLE adv_canary; --"."Tab''le ""x"" 名前"', 'res''; DROP TABLE adv_canary; --')$$);
SELECT test.try($$SELECT tenant.set_limit('adv-one', 'res''; DROP TABLE adv_canary; --', 100)$$);
SELECT allowed, used, "limit" FROM tenant.check_quota('res''; DROP TABLE adv_canary; --');

\c - postgres
SET client_min_messages = warning;
-- Export and import name the table in their JSON and in the SQL they build.
SELECT k AS exported FROM jsonb_object_keys(tenant.export('adv-one')->'tables') k WHERE k LIKE '%Wëird%';
SELECT tenant.export('adv-one') AS adv_export \gset
SELECT tenant.drop('adv-one');
SELECT value AS imported FROM jsonb_each(tenant.import('adv-two', :'adv_export')) WHERE key LIKE '%Wëird%';
SELECT tenant.set('adv-two') IS NOT NULL AS set;
SELECT body FROM "Wëird; DROP TABLE adv_canary; --"."Tab'le ""x"" 名前" ORDER BY id;
SELECT tenant.reset();
-- The isolation checker quotes what it reports.
SELECT severity, problem FROM tenant.check() WHERE object LIKE '%Wëird%' ORDER BY 1, 2;
-- clone_schema, a schema tenant from that template, a migration and drift: all quoted.
SELECT cloned FROM tenant.clone_schema('Wëird; DROP TABLE adv_canary; --', 'Clöne "x"; DROP TABLE adv_canary; --', true)
 WHERE kind = 'rows';
SELECT tenant.create('adv-schema', isolation => 'schema', template => 'Wëird; DROP TABLE adv_canary; --') IS NOT NULL AS created;
SELECT tenant.migrate('adv-1; DROP TABLE adv_canary; --', $$ALTER TABLE "Tab'le ""x"" 名前" ADD COLUMN "Ëxtra; --" int$$);
SELECT count(*) AS drift FROM tenant.schema_drift() WHERE tenant = 'adv-schema';
SELECT count(*) AS canary_rows FROM adv_canary;

SELECT tenant.drop(slug) FROM tenant_data.tenants WHERE slug LIKE 'adv-%' ORDER BY slug;
SELECT tenant.detach_quota(:'weird_table', 'res''; DROP TABLE adv_canary; --');
SELECT tenant.unprotect(:'weird_table');
SELECT tenant.drop_plan('adv_plan');
SELECT tenant.revoke_gateway('adv_app');
DROP SCHEMA "Wëird; DROP TABLE adv_canary; --", "Clöne ""x""; DROP TABLE adv_canary; --" CASCADE;
DROP TABLE adv_canary;
DROP OWNED BY adv_app;
DROP ROLE adv_app;
RESET client_min_messages;
