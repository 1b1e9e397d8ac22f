-- tenant.protect() and tenant.unprotect(): what they install, idempotence, partitions,
-- inheritance, and errors.
\set SHOW_CONTEXT never
CREATE SCHEMA app;

-- A table without a tenant column gets one.
CREATE TABLE app.notes (id serial PRIMARY KEY, body text);
SELECT tenant.protect('app.notes');
SELECT column_name, data_type, is_nullable, column_default
  FROM information_schema.columns WHERE table_schema = 'app' AND table_name = 'notes' ORDER BY ordinal_position;
SELECT indexrelid::regclass, pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'app.notes'::regclass ORDER BY indexrelid::regclass::text;
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'app.notes'::regclass;
SELECT polname, polpermissive, polcmd, polroles::regrole[], pg_get_expr(polqual, polrelid) AS using_expr,
       pg_get_expr(polwithcheck, polrelid) AS check_expr
  FROM pg_policy WHERE polrelid = 'app.notes'::regclass ORDER BY polname;
SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = 'app.notes'::regclass AND NOT tgisinternal;

-- An existing uuid column of another name, nullable and without default, is taken as it is
-- and made NOT NULL with the default.
CREATE TABLE app.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, org uuid, total numeric);
CREATE INDEX orders_org_total ON app.orders (org, total);
SELECT tenant.protect('app.orders', 'org');
SELECT column_name, is_nullable, column_default FROM information_schema.columns
 WHERE table_schema = 'app' AND table_name = 'orders' AND column_name = 'org';
-- The existing index already leads with the column: no second one.
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'app.orders'::regclass;

-- Idempotent: a second call changes nothing.
SELECT tenant.protect('app.notes');
SELECT count(*) AS policies FROM pg_policy WHERE polrelid = 'app.notes'::regclass;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'app.notes'::regclass AND NOT tgisinternal;
SELECT count(*) AS indexes FROM pg_index WHERE indrelid = 'app.notes'::regclass;

-- Partitioned tables: every partition, at every level, is protected too.
CREATE TABLE app.events (id bigint, at date NOT NULL, tenant_id uuid) PARTITION BY RANGE (at);
CREATE TABLE app.events_2025 PARTITION OF app.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE app.events_2026 PARTITION OF app.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')
    PARTITION BY LIST (id);
CREATE TABLE app.events_2026_all PARTITION OF app.events_2026 DEFAULT;
SELECT tenant.protect('app.events');
SELECT table_name, tenant_column, partitioned, parent, rls_enabled, rls_forced
  FROM tenant.protected_tables ORDER BY table_name::text;
SELECT c.relname, count(i.indexrelid) AS tenant_indexes
  FROM pg_class c LEFT JOIN pg_index i ON i.indrelid = c.oid
 WHERE c.relnamespace = 'app'::regnamespace AND c.relname LIKE 'events%' AND c.relkind IN ('r', 'p')
 GROUP BY c.relname ORDER BY c.relname;

-- Inheritance children are protected too.
CREATE TABLE app.docs (id int, tenant_id uuid NOT NULL DEFAULT tenant.current());
CREATE TABLE app.docs_archived (archived_at date) INHERITS (app.docs);
SELECT tenant.protect('app.docs');
SELECT table_name, parent FROM tenant.protected_tables WHERE table_name::text LIKE 'app.docs%' ORDER BY table_name::text;

-- Names that need quoting.
CREATE SCHEMA "My App";
CREATE TABLE "My App"."Line Items" ("Tenant Ref" uuid, qty int);
SELECT tenant.protect('"My App"."Line Items"', 'Tenant Ref');
SELECT table_name, tenant_column FROM tenant.protected_tables WHERE table_name::text LIKE '%Line%';

-- Errors, each leaving nothing behind.
CREATE TABLE app.wrong_type (tenant_id text);
SELECT test.try($$SELECT tenant.protect('app.wrong_type')$$);
SELECT test.try($$SELECT tenant.protect('app.no_such_table')$$);
SELECT test.try($$SELECT tenant.protect(NULL)$$);
SELECT test.try($$SELECT tenant.protect('app.notes', NULL)$$);
CREATE VIEW app.notes_view AS SELECT * FROM app.notes;
SELECT test.try($$SELECT tenant.protect('app.notes_view')$$);
CREATE SEQUENCE app.seq;
SELECT test.try($$SELECT tenant.protect('app.seq')$$);
-- Existing rows without a tenant cannot be protected silently.
CREATE TABLE app.legacy (id int);
INSERT INTO app.legacy VALUES (1);
SELECT test.try($$SELECT tenant.protect('app.legacy')$$);
-- The error says how to backfill (HINT), for a table without the column and for NULLs in it.
SELECT tenant.protect('app.legacy');
CREATE TABLE app.half_filled (id int, tenant_id uuid);
INSERT INTO app.half_filled VALUES (1, NULL), (2, NULL), (3, gen_random_uuid());
SELECT tenant.protect('app.half_filled');
DROP TABLE app.half_filled;
SELECT tenant.protect('app.wrong_type');
SELECT count(*) AS legacy_columns FROM pg_attribute WHERE attrelid = 'app.legacy'::regclass AND attnum > 0;
SELECT count(*) AS not_protected FROM tenant.protected_tables WHERE table_name::text IN ('app.legacy', 'app.wrong_type');
SELECT test.try($$SELECT tenant.unprotect('app.legacy')$$);
SELECT test.try($$SELECT tenant.unprotect(NULL)$$);

-- Only the table's owner (or a superuser) can protect it.
CREATE ROLE protect_stranger;
GRANT USAGE ON SCHEMA app TO protect_stranger;
GRANT EXECUTE ON FUNCTION tenant.protect(regclass, name, boolean) TO protect_stranger;
SET ROLE protect_stranger;
SELECT test.try($$SELECT tenant.protect('app.legacy')$$);
RESET ROLE;
REVOKE ALL ON SCHEMA app FROM protect_stranger;
REVOKE EXECUTE ON FUNCTION tenant.protect(regclass, name, boolean) FROM protect_stranger;
DROP ROLE protect_stranger;

-- unprotect removes policies, trigger, RLS and the default, and keeps column, index and data.
SELECT tenant.unprotect('app.docs');
SELECT count(*) AS policies FROM pg_policy WHERE polrelid IN ('app.docs'::regclass, 'app.docs_archived'::regclass);
SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid IN ('app.docs'::regclass, 'app.docs_archived'::regclass) ORDER BY 1;
SELECT column_name, column_default FROM information_schema.columns WHERE table_schema = 'app' AND table_name = 'docs' AND column_name = 'tenant_id';
SELECT count(*) AS still_listed FROM tenant.protected_tables WHERE table_name::text LIKE 'app.docs%';
-- A policy of the user's own keeps RLS on after unprotect.
CREATE POLICY mine ON app.orders USING (total > 0);
SELECT tenant.unprotect('app.orders');
SELECT relrowsecurity FROM pg_class WHERE oid = 'app.orders'::regclass;
SELECT polname FROM pg_policy WHERE polrelid = 'app.orders'::regclass;
DROP POLICY mine ON app.orders;
SELECT tenant.protect('app.orders', 'org');

-- The audit log records protect and unprotect.
SELECT action, detail->>'table' AS tbl FROM tenant_data.audit_log WHERE action IN ('protect', 'unprotect') ORDER BY id;

-- Converting an existing application (the README's worked example, as written there).
CREATE SCHEMA conv;
SET search_path = conv, public;
-- The application as it was: an account id on every row, plain foreign keys.
CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE projects (id serial PRIMARY KEY, account_id int NOT NULL REFERENCES accounts, title text);
CREATE TABLE tasks (id serial PRIMARY KEY, account_id int NOT NULL REFERENCES accounts,
                    project_id int NOT NULL REFERENCES projects, done boolean DEFAULT false);
INSERT INTO accounts (name) VALUES ('Acme'), ('Globex');
INSERT INTO projects (account_id, title) VALUES (1, 'acme launch'), (2, 'globex audit');
INSERT INTO tasks (account_id, project_id) VALUES (1, 1), (2, 2);

BEGIN;
-- 1. One tenant per account; the slug is what the application passes to tenant.set_local().
CREATE TEMP TABLE account_tenant AS
SELECT id AS account_id, tenant.create('acct-' || id, name) AS tenant_id FROM accounts;
-- 2. A uuid tenant column on every table that holds an account's rows, filled from the old key.
ALTER TABLE projects ADD COLUMN tenant_id uuid;
UPDATE projects p SET tenant_id = m.tenant_id FROM account_tenant m WHERE m.account_id = p.account_id;
ALTER TABLE tasks ADD COLUMN tenant_id uuid;
UPDATE tasks t SET tenant_id = m.tenant_id FROM account_tenant m WHERE m.account_id = t.account_id;
-- 3. Foreign keys between tenant tables pair the tenant columns (a plain one would let a row
--    reference, and a cascade delete, another tenant's rows; protect() refuses it).
ALTER TABLE projects ADD UNIQUE (tenant_id, id);
ALTER TABLE tasks DROP CONSTRAINT tasks_project_id_fkey,
                  ADD FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id);
-- 4. Protect: NOT NULL, DEFAULT tenant.current(), an index, the policies and the guard.
SELECT tenant.protect('projects'), tenant.protect('tasks');
COMMIT;

-- 5. The application role acts as one tenant per transaction.
CREATE ROLE web LOGIN;
GRANT SELECT, INSERT, UPDATE, DELETE ON projects, tasks TO web;
GRANT USAGE ON SEQUENCE projects_id_seq, tasks_id_seq TO web;
GRANT USAGE ON SCHEMA conv TO web;  -- (the README's tables are in public)
SELECT tenant.grant_gateway('web', transaction_only => true);
SELECT severity, object, problem FROM tenant.check() WHERE object LIKE 'conv.%' OR object = 'web';
SET ROLE web;
BEGIN;
SELECT tenant.set_local('acct-1') IS NOT NULL;
SELECT title FROM projects;
INSERT INTO projects (account_id, title) VALUES (1, 'acme second') RETURNING tenant_id IS NOT NULL;
INSERT INTO tasks (account_id, project_id) VALUES (1, 3);
COMMIT;
-- A task of acme's pointing at globex's project 2 is refused by the paired foreign key (23503).
BEGIN;
SELECT tenant.set_local('acct-1') IS NOT NULL;
INSERT INTO tasks (account_id, project_id) VALUES (1, 2);
ROLLBACK;
RESET ROLE;
SELECT slug FROM tenant_data.tenants WHERE slug LIKE 'acct-%' ORDER BY slug;
SET client_min_messages = warning;
SELECT tenant.unprotect('conv.tasks'), tenant.unprotect('conv.projects');
DROP SCHEMA conv CASCADE;
SELECT tenant.drop(slug) FROM tenant_data.tenants WHERE slug LIKE 'acct-%';
SELECT tenant.revoke_gateway('web');
DROP ROLE web;
RESET client_min_messages;
RESET search_path;
