-- Schema-isolated tenants: provisioning from a template, the search_path, isolation between
-- tenant schemas (from an unprivileged gateway role over a real connection), quotas inside
-- them, migrations across 200 of them (with a failure half way), drift, drop.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE ROLE st_app LOGIN;
SELECT tenant.grant_gateway('st_app');

-- The template: a table protected by pg_tenant (so its quota triggers come along) and a plain one.
CREATE SCHEMA app_template;
CREATE TABLE app_template.projects (id serial PRIMARY KEY, name text NOT NULL);
SELECT tenant.protect('app_template.projects');
SELECT tenant.attach_quota('app_template.projects', 'projects');
CREATE TABLE app_template.files (id serial PRIMARY KEY, project_id int REFERENCES app_template.projects, body text);
GRANT USAGE ON SCHEMA app_template TO st_app;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA app_template TO st_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA app_template TO st_app;
SELECT tenant.create_plan('st_small', '{"projects": {"limit": 2}, "schema_bytes": {"limit": 1000000}}');

SELECT tenant.create('st-acme', plan => 'st_small', isolation => 'schema', template => 'app_template') IS NOT NULL AS created;
SELECT tenant.create('st-globex', isolation => 'schema', template => 'app_template') IS NOT NULL AS created;
SELECT slug, isolation, schema_name, template FROM tenant_data.tenants WHERE slug LIKE 'st-%' ORDER BY slug;
SELECT count(*) AS tables_in_tenant_schema FROM pg_class WHERE relnamespace = 'tenant_st_acme'::regnamespace AND relkind = 'r';
-- The guard on every table of a tenant schema.
SELECT c.relname, c.relforcerowsecurity,
       (SELECT array_agg(p.polname ORDER BY p.polname) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies,
       EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'tenant_schema_guard') AS guarded
  FROM pg_class c
 WHERE c.relnamespace = 'tenant_st_acme'::regnamespace AND c.relkind = 'r' ORDER BY c.relname;

-- Bad input, with nothing registered and no schema created.
SELECT test.try($$SELECT tenant.create('st-x', isolation => 'schema')$$);
SELECT test.try($$SELECT tenant.create('st-x', template => 'app_template')$$);
SELECT test.try($$SELECT tenant.create('st-x', isolation => 'separate', template => 'app_template')$$);
SELECT test.try($$SELECT tenant.create('st-x', isolation => NULL)$$);
SELECT test.try($$SELECT tenant.create('st-x', isolation => 'schema', template => 'no_such_template')$$);
SELECT test.try($$SELECT tenant.create('st-x', isolation => 'schema', template => 'pg_catalog')$$);
SELECT test.try($$SELECT tenant.create(repeat('x', 57), isolation => 'schema', template => 'app_template')$$);
SELECT test.try($$SELECT tenant.create('st-acme', isolation => 'schema', template => 'app_template')$$);
CREATE SCHEMA tenant_st_taken;
SELECT test.try($$SELECT tenant.create('st-taken', isolation => 'schema', template => 'app_template')$$);
DROP SCHEMA tenant_st_taken;
SELECT count(*) AS registered, (SELECT count(*) FROM pg_namespace WHERE nspname IN ('tenant_st_x', 'tenant_st_taken')) AS schemas
  FROM tenant_data.tenants WHERE slug IN ('st-x', 'st-taken');

\c - st_app
SET client_min_messages = warning;
SHOW search_path;
-- No tenant: a tenant schema fails closed.
SELECT test.try($$SELECT count(*) FROM tenant_st_acme.projects$$);
-- globex's first row, there before acme looks at globex's schema below.
SELECT tenant.set('st-globex') IS NOT NULL AS set;
INSERT INTO tenant_st_globex.projects (name) VALUES ('g1');
SELECT tenant.set('st-acme') IS NOT NULL AS set;
SHOW search_path;
INSERT INTO projects (name) VALUES ('alpha'), ('beta');
INSERT INTO files (project_id, body) VALUES (1, 'readme');
SELECT name FROM projects ORDER BY id;
-- The count quota came with the template's triggers.
SELECT test.try($$INSERT INTO projects (name) VALUES ('gamma')$$);
SELECT allowed, used, "limit" FROM tenant.check_quota('projects');
-- Another tenant's schema, which holds a row: no row visible, none written, none changed, no
-- TRUNCATE.
SELECT count(*) AS globex_rows_seen FROM tenant_st_globex.projects;
SELECT id, name FROM tenant_st_globex.projects;
UPDATE tenant_st_globex.projects SET name = 'hijacked' RETURNING id;
DELETE FROM tenant_st_globex.projects RETURNING id;
SELECT test.try($$INSERT INTO tenant_st_globex.projects (name) VALUES ('intruder')$$);
SELECT test.try($$TRUNCATE tenant_st_globex.files$$);
SELECT test.try($$TRUNCATE files$$);
-- Switching tenants switches the schema on the search_path (never both).
SELECT tenant.set('st-globex') IS NOT NULL AS set;
SHOW search_path;
-- globex's row is intact, and nothing of acme's is here.
SELECT name FROM projects ORDER BY id;
UPDATE tenant_st_acme.projects SET name = 'hijacked';
DELETE FROM tenant_st_acme.files;
-- Another tenant's schema put on the path by hand is taken off too.
SET search_path = tenant_st_globex, tenant_st_acme, public;
SELECT tenant.set('st-acme') IS NOT NULL AS set;
SHOW search_path;
RESET search_path;
-- set_local: the schema is on the path for the transaction only; a rollback undoes set too.
SELECT tenant.reset();
SHOW search_path;
BEGIN;
SELECT tenant.set_local('st-acme') IS NOT NULL AS set_local;
SHOW search_path;
SELECT name FROM projects ORDER BY id;
SELECT count(*) AS acme_files_left_by_globex FROM files;
COMMIT;
SHOW search_path;
BEGIN;
SELECT tenant.set('st-acme') IS NOT NULL AS set;
ROLLBACK;
SHOW search_path;

\c - postgres
SET client_min_messages = warning;
SELECT tenant.create('st-initech', isolation => 'schema', template => 'app_template') IS NOT NULL AS created;
-- Suspension stops writes in the tenant's schema; reads stay.
SELECT tenant.suspend('st-globex');
\c - st_app
SET client_min_messages = warning;
SELECT tenant.set('st-globex') IS NOT NULL AS set;
SELECT count(*) AS readable FROM projects;
SELECT test.try($$INSERT INTO projects (name) VALUES ('g2')$$);
\c - postgres
SET client_min_messages = warning;
SELECT tenant.resume('st-globex');
-- Shared protected tables and the tenant's own schema together, for the same tenant.
CREATE TABLE st_shared_settings (key text PRIMARY KEY, value text);
SELECT tenant.protect('st_shared_settings');
GRANT SELECT, INSERT ON st_shared_settings TO st_app;
-- schema_bytes: measured by tenant.refresh_usage(); once over the limit, inserts and updates in
-- the schema are refused, deletes still work.
SELECT tenant.refresh_usage() >= 3 AS measured;
SELECT tenant, used > 0 AS measured, "limit" FROM tenant.usage WHERE resource = 'schema_bytes' AND tenant = 'st-acme';
SELECT tenant.set_limit('st-acme', 'schema_bytes', 1000);
\c - st_app
SET client_min_messages = warning;
SELECT tenant.set('st-acme') IS NOT NULL AS set;
INSERT INTO st_shared_settings VALUES ('theme', 'dark');
SELECT s.value, count(p.*) AS projects FROM st_shared_settings s CROSS JOIN projects p GROUP BY s.value;
SELECT test.try($$INSERT INTO files (project_id, body) VALUES (1, 'more')$$);
SELECT test.try($$UPDATE files SET body = 'x'$$);
DELETE FROM files;
\c - postgres
SET client_min_messages = warning;
SELECT tenant.clear_limit('st-acme', 'schema_bytes');

-- Migrations: the template and every tenant schema, recorded, skipped when already applied.
SELECT tenant.migrate('001_tags', 'CREATE TABLE tags (id serial PRIMARY KEY, label text NOT NULL)');
SELECT tenant.migrate('001_tags', 'CREATE TABLE tags (id serial PRIMARY KEY, label text NOT NULL)');
SELECT version, schema_name FROM tenant_data.schema_migrations ORDER BY schema_name;
SELECT c.relname, c.relforcerowsecurity, (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
  FROM pg_class c WHERE c.relname = 'tags' AND c.relnamespace = 'tenant_st_acme'::regnamespace;
SELECT test.try($$SELECT tenant.migrate(NULL, 'SELECT 1')$$);
SELECT test.try($$SELECT tenant.migrate('002', NULL)$$);
SELECT test.try($$SELECT tenant.migrate('', 'SELECT 1')$$);
SELECT test.try($$SELECT tenant.migrate('002', '  ')$$);
SELECT test.try($$SELECT tenant.migrate_next('002', 'SELECT 1', 0)$$);
-- A tenant created after a migration has it, and records it.
SELECT tenant.create('st-late', isolation => 'schema', template => 'app_template') IS NOT NULL AS created;
SELECT to_regclass('tenant_st_late.tags') IS NOT NULL AS has_tags,
       (SELECT count(*) FROM tenant_data.schema_migrations WHERE schema_name = 'tenant_st_late') AS recorded;

-- Drift: none, then what a hand change did.
SELECT count(*) AS drift FROM tenant.schema_drift();
CREATE INDEX tags_label_idx ON tenant_st_globex.tags (label);
ALTER TABLE tenant_st_initech.files ADD COLUMN size int;
ALTER TABLE tenant_st_late.files ALTER COLUMN body SET NOT NULL;
DROP TABLE tenant_st_acme.tags;
SELECT tenant, object, difference FROM tenant.schema_drift();

-- Export and import of a schema tenant: its own tables and sequence positions, lossless.
SELECT tenant.set('st-late') IS NOT NULL AS set;
INSERT INTO tenant_st_late.projects (name) VALUES ('l1'), ('l2');
INSERT INTO tenant_st_late.files (project_id, body) SELECT id, 'file of ' || name FROM tenant_st_late.projects;
SELECT tenant.reset();
SELECT jsonb_object_keys(tenant.export('st-late')->'schema'->'tables') AS exported_tables;
-- Its shared part names no table of any tenant schema (its own come in "schema", others' never).
SELECT count(*) AS tenant_schema_tables_in_shared_part
  FROM jsonb_object_keys(tenant.export('st-late')->'tables') k WHERE k LIKE 'tenant\_%';
SELECT tenant.create('st-import', isolation => 'schema', template => 'app_template') IS NOT NULL AS created;
ALTER TABLE tenant_st_import.files ALTER COLUMN body SET NOT NULL;
SELECT key AS imported_table, value AS imported_rows FROM jsonb_each(tenant.import('st-import', tenant.export('st-late')))
 WHERE key LIKE 'tenant_st_import.%' ORDER BY key;
SELECT (tenant.export('st-late')->'schema'->'tables') = (tenant.export('st-import')->'schema'->'tables') AS same_rows,
       (tenant.export('st-late')->'schema'->'sequences') = (tenant.export('st-import')->'schema'->'sequences') AS same_sequences,
       (tenant.export('st-import')->'schema'->'tables'->'projects'->0->>'name') AS first_project;
SELECT test.try($$SELECT tenant.import('st-import', tenant.export('st-late'))$$);
SELECT tenant.create('st-shared') IS NOT NULL AS created;
SELECT test.try($$SELECT tenant.import('st-shared', tenant.export('st-late'))$$);
SELECT tenant.drop('st-import'), tenant.drop('st-shared');

-- 200 schema tenants and a migration across all of them.
SELECT count(tenant.create('st-many-' || i, isolation => 'schema', template => 'app_template')) AS created
  FROM generate_series(1, 200) i;
SELECT count(*) AS tenant_schemas FROM pg_namespace WHERE nspname LIKE 'tenant_st_many_%';
-- All or nothing: a failure in one schema (st-many-99 already has the column) leaves none changed.
ALTER TABLE tenant_st_many_99.projects ADD COLUMN archived boolean;
SELECT test.try($$SELECT tenant.migrate('003_archived', 'ALTER TABLE projects ADD COLUMN archived boolean NOT NULL DEFAULT false')$$);
SELECT count(*) AS recorded FROM tenant_data.schema_migrations WHERE version = '003_archived';
SELECT count(*) AS changed FROM pg_attribute
 WHERE attname = 'archived' AND attrelid::regclass::text LIKE '%.projects' AND attrelid <> 'tenant_st_many_99.projects'::regclass;
-- The procedure commits per batch (schemas in slug order, the template first): the failure
-- keeps the batches before the one holding st-many-99 ...
CALL tenant.migrate_batches('003_archived', 'ALTER TABLE projects ADD COLUMN archived boolean NOT NULL DEFAULT false', 50);
SELECT count(*) AS recorded_before_the_failure FROM tenant_data.schema_migrations WHERE version = '003_archived';
-- ... and a re-run after the fix finishes the rest.
ALTER TABLE tenant_st_many_99.projects DROP COLUMN archived;
CALL tenant.migrate_batches('003_archived', 'ALTER TABLE projects ADD COLUMN archived boolean NOT NULL DEFAULT false', 50);
SELECT count(*) AS recorded, count(DISTINCT schema_name) AS schemas FROM tenant_data.schema_migrations WHERE version = '003_archived';
SELECT count(*) AS tenant_schemas_with_the_column FROM pg_attribute
 WHERE attname = 'archived' AND attrelid::regclass::text LIKE 'tenant_st_%.projects' AND NOT attisdropped;

-- Drop: the schema and its migration records go, the audit trail stays; the slug can come back
-- with nothing of the old tenant.
SELECT count(tenant.drop('st-many-' || i)) AS dropped FROM generate_series(1, 200) i;
SELECT tenant.drop('st-acme');
SELECT count(*) AS schemas_left FROM pg_namespace WHERE nspname = 'tenant_st_acme' OR nspname LIKE 'tenant_st_many%';
SELECT count(*) AS migrations_left FROM tenant_data.schema_migrations WHERE schema_name = 'tenant_st_acme';
SELECT action, detail->>'schema' AS schema FROM tenant_data.audit_log WHERE detail->>'slug' = 'st-acme' ORDER BY id;
SELECT tenant.create('st-acme', isolation => 'schema', template => 'app_template') IS NOT NULL AS recreated;
SELECT count(*) AS old_projects FROM tenant_st_acme.projects;

SELECT tenant.drop(slug) FROM tenant_data.tenants WHERE slug LIKE 'st-%' ORDER BY slug;
SELECT tenant.unprotect('st_shared_settings');
DROP TABLE st_shared_settings;
SELECT tenant.detach_quota('app_template.projects', 'projects');
DROP SCHEMA app_template CASCADE;
SELECT tenant.drop_plan('st_small');
SELECT tenant.revoke_gateway('st_app');
DROP OWNED BY st_app;
DROP ROLE st_app;
RESET client_min_messages;
