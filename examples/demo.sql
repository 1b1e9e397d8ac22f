-- pg_tenant demo: two tenants share one table; the database, not the application, keeps them
-- apart. Every statement is printed before its result.
\set SHOW_CONTEXT never
CREATE EXTENSION pg_tenant;

-- 1. A DBA registers two tenants and protects the shared table.
SELECT tenant.create('acme', 'Acme Corp') AS acme_id \gset
SELECT tenant.create('globex', 'Globex Inc') AS globex_id \gset
CREATE TABLE public.projects (id serial PRIMARY KEY, title text NOT NULL);
SELECT tenant.protect('public.projects');
\d public.projects

-- 2. The application connects with its own role: not a superuser, not the table owner.
--    As a gateway it may act as any tenant, but only through tenant.set()/set_local().
CREATE ROLE demo_app LOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON public.projects TO demo_app;
GRANT USAGE ON SEQUENCE public.projects_id_seq TO demo_app;
SELECT tenant.grant_gateway('demo_app');

\c - demo_app
-- No tenant yet: protected tables fail closed.
SELECT * FROM projects;

-- A request for Acme (the per-request pattern behind a transaction pooler).
BEGIN;
SELECT tenant.set_local('acme');
INSERT INTO projects (title) VALUES ('Rocket skates'), ('Giant magnet');
SELECT id, title FROM projects ORDER BY id;
COMMIT;

-- A request for Globex sees only Globex's rows.
BEGIN;
SELECT tenant.set_local('globex');
INSERT INTO projects (title) VALUES ('Hammock district');
SELECT id, title FROM projects ORDER BY id;
COMMIT;
-- Writing a row for another tenant is refused, as is moving a row to another tenant.
BEGIN;
SELECT tenant.set_local('globex');
INSERT INTO projects (title, tenant_id) VALUES ('Planted row', :'acme_id');
ROLLBACK;

-- 3. Spoofing attempts are refused: the tenant parameter is visible but not settable.
SELECT tenant.set('globex');
SHOW pg_tenant.tenant_id;
SET pg_tenant.tenant_id = :'acme_id';
SELECT set_config('pg_tenant.tenant_id', :'acme_id', false);
SELECT tenant.current() = :'globex_id' AS still_globex;
-- TRUNCATE would bypass row-level security, so it is refused even with the privilege.
TRUNCATE projects;

-- 4. Suspension: the DBA suspends Globex; reads keep working, writes stop.
\c - postgres
SELECT tenant.suspend('globex', 'invoice overdue');
\c - demo_app
SELECT tenant.set('globex');
SELECT count(*) AS globex_projects FROM projects;
INSERT INTO projects (title) VALUES ('Written while suspended');

-- 5. Quotas: Acme moves to a plan with 3 projects; the database refuses the 4th, from any
--    client, with a SQLSTATE of its own and a JSON DETAIL (an HTTP 429 without parsing text).
\c - postgres
SELECT tenant.create_plan('starter', '{"projects": {"limit": 3}}');
SELECT tenant.change_plan('acme', 'starter');
SELECT tenant.attach_quota('public.projects', 'projects');
\c - demo_app
SELECT tenant.set('acme');
SELECT used, "limit", remaining FROM tenant.check_quota('projects');
INSERT INTO projects (title) VALUES ('Earthquake pills');
INSERT INTO projects (title) VALUES ('Dehydrated boulders');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Deleting a row gives its unit back.
DELETE FROM projects WHERE title = 'Giant magnet';
INSERT INTO projects (title) VALUES ('Dehydrated boulders');

-- 6. What the DBA sees: the registry, protected tables, usage, the audit trail.
\c - postgres
SELECT slug, name, status, plan FROM tenant_data.tenants ORDER BY slug;
SELECT tenant, resource, used, "limit", remaining FROM tenant.usage ORDER BY 1, 2;
SELECT * FROM tenant.protected_tables;
SELECT at::date AS day, actor, action, detail->>'slug' AS tenant FROM tenant_data.audit_log ORDER BY id;
