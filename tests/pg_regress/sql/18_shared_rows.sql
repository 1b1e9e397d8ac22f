-- Shared reference rows: tenant.protect(..., shared_rows => true). Rows whose tenant column is
-- NULL are read by every tenant and written only by roles that bypass row security; everything
-- else is as for any protected table. Run in both modes (see tests/pg_regress/run.sh).
\set SHOW_CONTEXT never
CREATE ROLE sh_owner;
CREATE ROLE sh_app;                  -- the application: a gateway, subject to row security
CREATE ROLE sh_admin BYPASSRLS;      -- maintains the shared rows
SELECT tenant.create('sh-acme') AS acme \gset
SELECT tenant.create('sh-globex') AS globex \gset
SELECT tenant.grant_gateway('sh_app');
SELECT tenant.grant_gateway('sh_admin');
CREATE SCHEMA sh AUTHORIZATION sh_owner;
GRANT USAGE ON SCHEMA sh TO sh_app, sh_admin;
SET ROLE sh_owner;
CREATE TABLE sh.price_types (id int PRIMARY KEY, name text);
INSERT INTO sh.price_types VALUES (1, 'retail'), (2, 'wholesale');   -- the global defaults there are
CREATE TABLE sh.categories (id int, name text, kind text, tenant_id uuid NOT NULL) PARTITION BY LIST (kind);
CREATE TABLE sh.categories_a PARTITION OF sh.categories FOR VALUES IN ('a');
CREATE TABLE sh.categories_b PARTITION OF sh.categories FOR VALUES IN ('b');
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA sh TO sh_app, sh_admin;
RESET ROLE;

-- ===== protect() =====
-- Without shared_rows, rows without a tenant are refused (the HINT names the option).
SELECT tenant.protect('sh.price_types');
SELECT tenant.protect('sh.price_types', shared_rows => NULL);
-- With it, they are the shared rows; the column is added nullable, with tenant.current() as default.
SELECT tenant.protect('sh.price_types', shared_rows => true);
-- A NOT NULL tenant column becomes nullable (on every partition too).
SELECT tenant.protect('sh.categories', 'tenant_id', true);
SELECT table_name, tenant_column, parent, shared_rows FROM tenant.protected_tables
 WHERE table_name::text LIKE 'sh.%' ORDER BY table_name::text;
SELECT a.attrelid::regclass AS rel, a.attnotnull, pg_get_expr(d.adbin, d.adrelid) AS "default"
  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attname = 'tenant_id' AND a.attrelid::regclass::text LIKE 'sh.%'
   AND (SELECT relkind FROM pg_class WHERE oid = a.attrelid) IN ('r', 'p') ORDER BY a.attrelid::regclass::text;
SELECT polrelid::regclass AS rel, polname, polcmd, polpermissive,
       pg_get_expr(polqual, polrelid) AS using, pg_get_expr(polwithcheck, polrelid) AS with_check
  FROM pg_policy WHERE polrelid IN ('sh.price_types'::regclass, 'sh.categories_a'::regclass) ORDER BY polrelid::regclass::text, 2;
SELECT detail->'shared_rows' AS audited FROM tenant_data.audit_log
 WHERE action = 'protect' AND detail->>'table' = 'sh.categories';
-- Existing calls keep their meaning: tenant.protect(tbl) and tenant.protect(tbl, column).
SELECT pg_get_function_identity_arguments('tenant.protect'::regproc) AS args,
       pg_get_function_arguments('tenant.protect'::regproc) AS with_defaults;

-- ===== Writing shared rows: roles that bypass row security =====
SET ROLE sh_admin;
-- The column default still applies: no tenant, no accidental shared row.
SELECT test.try($$INSERT INTO sh.categories (id, name, kind) VALUES (1, 'x', 'a')$$);
INSERT INTO sh.categories (id, name, kind, tenant_id) VALUES (10, 'shared a', 'a', NULL), (11, 'shared b', 'b', NULL);
INSERT INTO sh.price_types (id, name, tenant_id) VALUES (3, 'promo', NULL);
UPDATE sh.price_types SET name = 'retail (default)' WHERE id = 1;
-- Acting as a tenant, the admin writes that tenant's rows.
SELECT tenant.set('sh-acme') IS NOT NULL AS ok;
INSERT INTO sh.categories (id, name, kind) VALUES (20, 'acme a', 'a');
INSERT INTO sh.price_types (id, name) VALUES (20, 'acme special');
SELECT tenant.set('sh-globex') IS NOT NULL AS ok;
INSERT INTO sh.categories (id, name, kind) VALUES (30, 'globex b', 'b');
INSERT INTO sh.price_types (id, name) VALUES (30, 'globex special');
SELECT tenant.reset();
RESET ROLE;

-- ===== As a tenant =====
SET ROLE sh_app;
SELECT tenant.set('sh-acme') IS NOT NULL AS ok;
-- Its own rows and the shared ones; never globex's (partitions read directly too).
SELECT id, name, tenant_id IS NULL AS shared FROM sh.price_types ORDER BY id;
SELECT id, name, kind, tenant_id IS NULL AS shared FROM sh.categories ORDER BY id;
SELECT id FROM sh.categories_b ORDER BY id;
SELECT count(*) AS globex_rows FROM sh.price_types WHERE tenant_id = :'globex';
-- No shared row is written: not inserted, not made from its own row, not updated, not deleted.
SELECT test.try($$INSERT INTO sh.price_types (id, name, tenant_id) VALUES (4, 'mine for all', NULL)$$);
SELECT test.try($$INSERT INTO sh.categories (id, name, kind, tenant_id) VALUES (4, 'mine for all', 'a', NULL)$$);
SELECT test.try(format($$INSERT INTO sh.price_types (id, name, tenant_id) VALUES (5, 'for globex', %L)$$, :'globex'));
SELECT test.try($$UPDATE sh.price_types SET tenant_id = NULL WHERE id = 20$$);
SELECT test.try($$UPDATE sh.categories SET tenant_id = NULL WHERE id = 20$$);
WITH u AS (UPDATE sh.price_types SET name = 'hacked' WHERE id IN (1, 2, 3) RETURNING 1) SELECT count(*) AS updated FROM u;
WITH u AS (UPDATE sh.categories_a SET name = name || '!' RETURNING id) SELECT array_agg(id) AS updated FROM u;
WITH d AS (DELETE FROM sh.price_types WHERE id IN (1, 2, 3) RETURNING 1) SELECT count(*) AS deleted FROM d;
WITH d AS (DELETE FROM sh.categories WHERE tenant_id IS NULL RETURNING 1) SELECT count(*) AS deleted FROM d;
-- An upsert onto a shared row's key is refused, not turned into an update of it.
SELECT test.try($$INSERT INTO sh.price_types (id, name) VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET name = 'hacked'$$);
-- Nor may a tenant lock shared rows (and hold off the admin's writes).
SELECT array_agg(id ORDER BY id) AS locked FROM (SELECT id FROM sh.price_types FOR SHARE) s;
SELECT count(*) AS locked FROM (SELECT 1 FROM sh.categories WHERE tenant_id IS NULL FOR KEY SHARE) s;
-- Its own rows are written as always.
UPDATE sh.price_types SET name = 'acme special 2' WHERE id = 20;
SELECT count(*) AS own_locked FROM (SELECT 1 FROM sh.price_types FOR UPDATE) s;
-- The shared rows are unchanged.
RESET ROLE;
SELECT id, name FROM sh.price_types WHERE tenant_id IS NULL ORDER BY id;
SELECT id, name FROM sh.categories WHERE tenant_id IS NULL ORDER BY id;
-- The policies leave the tenant comparison an index condition: shared and own rows are two
-- index scans.
SET ROLE sh_app;
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT name FROM sh.price_types;
RESET enable_seqscan;
-- With no tenant set, a table with shared rows fails closed like any protected table: the
-- shared rows too (whichever plan reads them).
SELECT tenant.reset();
SELECT test.try($$SELECT count(*) FROM sh.price_types$$);
SELECT test.try($$SELECT count(*) FROM sh.price_types WHERE tenant_id IS NULL$$);
SET enable_seqscan = off;
SELECT test.try($$SELECT count(*) FROM sh.price_types WHERE tenant_id IS NULL$$);
RESET enable_seqscan;
SELECT test.try($$SELECT count(*) FROM sh.categories_a$$);
RESET ROLE;

-- ===== Quotas: shared rows count for nobody =====
SELECT tenant.set_limit('sh-acme', 'sh_cats', 3);
SELECT tenant.set_limit('sh-acme', 'sh_bytes', 100000);
SELECT tenant.attach_quota('sh.categories', 'sh_cats');
SELECT tenant.attach_quota('sh.price_types', 'sh_bytes', 'bytes');
-- (A count quota's usage is read where it lives: in shared memory when pg_tenant is preloaded.)
SELECT t.slug, u.resource, COALESCE(tenant.counted_usage(u.tenant_id, u.resource), u.used) AS used
  FROM tenant_data.usage_counters u JOIN tenant_data.tenants t ON t.id = u.tenant_id
 WHERE u.resource LIKE 'sh\_%' AND u.period_start = '-infinity' ORDER BY 1, 2;
SELECT tenant.set('sh-acme') IS NOT NULL AS ok;
SELECT used AS bytes_before FROM tenant.check_quota('sh_bytes') \gset
SET ROLE sh_admin;
-- Shared rows written, grown and deleted by the admin (acting as acme or as nobody) change no usage.
INSERT INTO sh.categories (id, name, kind, tenant_id) VALUES (12, 'shared a2', 'a', NULL), (13, 'shared b2', 'b', NULL);
INSERT INTO sh.price_types (id, name, tenant_id) VALUES (6, repeat('s', 5000), NULL);
UPDATE sh.price_types SET name = repeat('t', 9000) WHERE id = 6;
SELECT tenant.reset();
INSERT INTO sh.categories (id, name, kind, tenant_id) VALUES (14, 'shared a3', 'a', NULL);
DELETE FROM sh.categories WHERE id = 13;
DELETE FROM sh.price_types WHERE id = 6;
RESET ROLE;
SELECT tenant.set('sh-acme') IS NOT NULL AS ok;
SELECT used, "limit" FROM tenant.check_quota('sh_cats');
SELECT used = :bytes_before AS bytes_unchanged FROM tenant.check_quota('sh_bytes');
-- acme's own rows count: 2 more fit, the third does not, shared rows or not.
SET ROLE sh_app;
SELECT tenant.set('sh-acme') IS NOT NULL AS ok;
INSERT INTO sh.categories (id, name, kind) VALUES (21, 'acme a2', 'a'), (22, 'acme b', 'b');
SELECT test.try($$INSERT INTO sh.categories (id, name, kind) VALUES (23, 'acme a3', 'a')$$);
INSERT INTO sh.price_types (id, name) VALUES (21, repeat('a', 1000));
SELECT used > :bytes_before + 1000 AS own_bytes_counted FROM tenant.check_quota('sh_bytes');
RESET ROLE;
SELECT used, "limit" FROM tenant.check_quota('sh_cats');
-- Counted again from the table (as an import does): the same numbers.
SELECT tenant.reset();
SELECT tenant.recount_tenant(:'acme');
SELECT t.slug, u.resource, COALESCE(tenant.counted_usage(u.tenant_id, u.resource), u.used) AS used
  FROM tenant_data.usage_counters u JOIN tenant_data.tenants t ON t.id = u.tenant_id
 WHERE u.resource = 'sh_cats' AND u.period_start = '-infinity' ORDER BY 1;
SELECT tenant_id::text = :'acme' AS acme, row_count FROM tenant.protected_row_counts()
 WHERE tenant_id IN (:'acme', :'globex') ORDER BY 1;

-- ===== Export, tenant.drop() and import: shared rows belong to no tenant =====
SELECT tenant.export('sh-acme') AS acme_export \gset
SELECT jsonb_path_query_array(:'acme_export'::jsonb->'tables'->'sh.price_types', '$[*].id') AS acme_price_types,
       jsonb_path_query_array(:'acme_export'::jsonb->'tables'->'sh.categories', '$[*].id') AS acme_categories,
       :'acme_export'::jsonb->'tables'->'sh.categories'->0 AS first_category;
-- tenant.drop(): the tenant's rows go, the shared ones stay.
SELECT tenant.drop('sh-acme');
SELECT id, name, tenant_id IS NULL AS shared FROM sh.categories ORDER BY id;
SELECT id, tenant_id IS NULL AS shared FROM sh.price_types ORDER BY id;
-- The export loads into a new tenant; the shared rows are neither copied nor touched.
SELECT tenant.create('sh-copy') AS copy \gset
SELECT key AS "table", value AS imported FROM jsonb_each(tenant.import('sh-copy', :'acme_export'))
 WHERE key LIKE 'sh.%' ORDER BY 1;
SELECT id, name FROM sh.categories WHERE tenant_id = :'copy' ORDER BY id;
SELECT count(*) AS shared_rows FROM sh.categories WHERE tenant_id IS NULL;
SET ROLE sh_app;
SELECT tenant.set('sh-copy') IS NOT NULL AS ok;
SELECT id, tenant_id IS NULL AS shared FROM sh.categories ORDER BY id;
SELECT used FROM tenant.check_quota('sh_cats');
SELECT tenant.reset();
RESET ROLE;
SELECT tenant.drop('sh-copy');

-- ===== check() =====
SELECT * FROM tenant.check() WHERE object LIKE 'sh.%' AND problem NOT LIKE 'unique index%';
-- A table with shared rows that lost a policy keeping tenants off them: high, fixed by protect()
-- with shared_rows kept.
DROP POLICY tenant_shared_update ON sh.price_types;
DROP POLICY tenant_shared_delete ON sh.categories_b;
ALTER TABLE sh.price_types NO FORCE ROW LEVEL SECURITY;
SELECT * FROM tenant.check() WHERE object LIKE 'sh.%' AND problem NOT LIKE 'unique index%';
SELECT tenant.protect('sh.price_types', 'tenant_id', shared_rows => true);
SELECT tenant.protect('sh.categories', 'tenant_id', shared_rows => true);
SELECT * FROM tenant.check() WHERE object LIKE 'sh.%' AND problem NOT LIKE 'unique index%';

-- ===== Switching shared rows off =====
-- Refused while shared rows exist (nothing changes), then done once they are gone.
SELECT tenant.protect('sh.categories');
SELECT table_name, shared_rows FROM tenant.protected_tables WHERE table_name = 'sh.categories'::regclass;
DELETE FROM sh.categories WHERE tenant_id IS NULL;
SELECT tenant.protect('sh.categories');
SELECT table_name, shared_rows FROM tenant.protected_tables WHERE table_name::text LIKE 'sh.categories%' ORDER BY table_name::text;
SELECT attrelid::regclass AS rel, attnotnull FROM pg_attribute
 WHERE attname = 'tenant_id' AND attrelid::regclass::text LIKE 'sh.categories%'
   AND (SELECT relkind FROM pg_class WHERE oid = attrelid) IN ('r', 'p') ORDER BY attrelid::regclass::text;
SELECT polrelid::regclass AS rel, polname FROM pg_policy WHERE polrelid::regclass::text LIKE 'sh.categories%' ORDER BY polrelid::regclass::text, 2;

-- ===== Schema tenants: a template's table with shared rows is copied with them =====
CREATE SCHEMA sh_tpl AUTHORIZATION sh_owner;
CREATE TABLE sh_tpl.labels (id int, name text);
ALTER TABLE sh_tpl.labels OWNER TO sh_owner;
SELECT tenant.protect('sh_tpl.labels', shared_rows => true);
SELECT tenant.create('sh-initech', isolation => 'schema', template => 'sh_tpl') IS NOT NULL AS created;
SELECT table_name, shared_rows FROM tenant.protected_tables WHERE table_name::text LIKE '%.labels' ORDER BY table_name::text;
SELECT count(*) AS policies FROM pg_policy WHERE polrelid = 'tenant_sh_initech.labels'::regclass
   AND polname IN ('tenant_isolation', 'tenant_shared_update', 'tenant_shared_delete');

-- ===== unprotect() removes every policy protect() installed =====
SELECT tenant.unprotect('sh.price_types');
SELECT count(*) AS policies FROM pg_policy WHERE polrelid = 'sh.price_types'::regclass;
SELECT count(*) AS still_listed FROM tenant.protected_tables WHERE table_name = 'sh.price_types'::regclass;

SET client_min_messages = warning;
SELECT tenant.drop('sh-initech') IS NOT NULL, tenant.drop('sh-globex') IS NOT NULL;
SELECT tenant.unprotect('sh.categories'), tenant.unprotect('sh_tpl.labels');
DROP SCHEMA sh, sh_tpl CASCADE;
SELECT tenant.revoke_gateway('sh_app'), tenant.revoke_gateway('sh_admin');
DROP ROLE sh_app, sh_admin, sh_owner;
RESET client_min_messages;
