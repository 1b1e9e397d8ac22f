-- Isolation over real connections, as an application role that neither owns the tables nor is a
-- superuser, and as the tables' owner. Every spoofing route is tried the way a client would.
\set SHOW_CONTEXT never
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE ROLE iso_owner LOGIN;
CREATE ROLE iso_app LOGIN;          -- the application's connection role: a gateway
CREATE ROLE iso_acme_user LOGIN;    -- may act only as iso-acme
SELECT tenant.create('iso-acme') AS acme \gset
SELECT tenant.create('iso-globex') AS globex \gset
SELECT tenant.grant_gateway('iso_app');
SELECT tenant.grant_access('iso-acme', 'iso_acme_user');
SELECT tenant.grant_access('iso-acme', 'iso_owner');
SELECT tenant.grant_access('iso-globex', 'iso_owner');

CREATE SCHEMA iso AUTHORIZATION iso_owner;
CREATE SCHEMA iso_scratch AUTHORIZATION iso_acme_user;   -- where that role plants objects
GRANT USAGE ON SCHEMA iso TO iso_app, iso_acme_user;
SET ROLE iso_owner;
CREATE TABLE iso.items (id int PRIMARY KEY, name text);
CREATE TABLE iso.logs (id int, at date NOT NULL, tenant_id uuid NOT NULL DEFAULT tenant.current()) PARTITION BY RANGE (at);
CREATE TABLE iso.logs_2025 PARTITION OF iso.logs FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE iso.logs_2026 PARTITION OF iso.logs FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE iso.big (n int);
CREATE TABLE iso.docs (id int, body text, tenant_id uuid NOT NULL DEFAULT tenant.current());
CREATE TABLE iso.docs_archived (archived_at date) INHERITS (iso.docs);
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA iso TO iso_app, iso_acme_user;
RESET ROLE;
SELECT tenant.protect('iso.items');
SELECT tenant.protect('iso.logs');
SELECT tenant.protect('iso.big');
SELECT tenant.protect('iso.docs');
-- Rows for both tenants, written as the superuser acting as each.
SELECT tenant.set('iso-acme') IS NOT NULL AS ok;
INSERT INTO iso.items VALUES (1, 'acme anvil'), (2, 'acme rocket');
INSERT INTO iso.logs (id, at) VALUES (1, '2025-05-01'), (2, '2026-05-01');
INSERT INTO iso.big SELECT g FROM generate_series(1, 30000) g;
INSERT INTO iso.docs (id, body) VALUES (1, 'acme doc');
INSERT INTO iso.docs_archived (id, body, archived_at) VALUES (2, 'acme archived', '2025-03-01');
SELECT tenant.set('iso-globex') IS NOT NULL AS ok;
INSERT INTO iso.items VALUES (3, 'globex widget');
INSERT INTO iso.logs (id, at) VALUES (3, '2025-06-01');
INSERT INTO iso.big SELECT g FROM generate_series(1, 20000) g;
INSERT INTO iso.docs_archived (id, body, archived_at) VALUES (3, 'globex archived', '2025-04-01');
SELECT tenant.reset();
ANALYZE iso.items, iso.logs, iso.big, iso.docs, iso.docs_archived;
-- dblink's second session needs the server's socket and port.
SELECT format('host=%s port=%s dbname=pg_tenant_regress user=iso_app', :'HOST', :'PORT') AS app_conninfo \gset

-- ===== As the application role, over a new connection =====
\c - iso_app
SELECT current_user, tenant.current(true) IS NULL AS no_tenant_yet;
-- No tenant: reads and writes fail closed instead of returning nothing.
SELECT * FROM iso.items;
SELECT test.try($$SELECT count(*) FROM iso.items$$);
SELECT test.try($$INSERT INTO iso.items VALUES (9, 'no tenant')$$);
SELECT test.try($$DELETE FROM iso.items$$);
SELECT test.try($$SELECT count(*) FROM iso.logs_2025$$);
SELECT test.try($$SELECT count(*) FROM iso.docs_archived$$);

SELECT tenant.set('iso-acme') IS NOT NULL AS ok;
SELECT id, name, tenant_id = :'acme' AS is_acme FROM iso.items ORDER BY id;
SELECT id, at FROM iso.logs ORDER BY id;
-- Partitions queried directly are filtered the same way.
SELECT id FROM iso.logs_2025 ORDER BY id;
SELECT id FROM iso.logs_2026 ORDER BY id;
-- So are inheritance children: each tenant reads its own rows of the child and the parent.
SELECT id, body FROM iso.docs_archived ORDER BY id;
SELECT id, body FROM iso.docs ORDER BY id;
SELECT tenant.set('iso-globex') IS NOT NULL AS ok;
SELECT id, name FROM iso.items ORDER BY id;
SELECT id FROM iso.logs_2025 ORDER BY id;
SELECT id, body FROM iso.docs_archived ORDER BY id;
SELECT id, body FROM iso.docs ORDER BY id;

-- Writes cannot reach another tenant.
SELECT tenant.set('iso-acme') IS NOT NULL AS ok;
INSERT INTO iso.items (id, name) VALUES (4, 'acme cart') RETURNING id, tenant_id = :'acme' AS stamped_acme;
SELECT test.try(format($$INSERT INTO iso.items VALUES (5, 'forged', %L)$$, :'globex'));
SELECT test.try(format($$UPDATE iso.items SET tenant_id = %L WHERE id = 1$$, :'globex'));
UPDATE iso.items SET name = 'stolen' WHERE id = 3;   -- globex's row: invisible, 0 rows
DELETE FROM iso.items WHERE id = 3;                  -- same
SELECT test.try($$INSERT INTO iso.items VALUES (3, 'collide') ON CONFLICT (id) DO UPDATE SET name = 'taken over'$$);
SELECT test.try(format($$INSERT INTO iso.logs (id, at, tenant_id) VALUES (7, '2025-01-02', %L)$$, :'globex'));
SELECT test.try(format($$INSERT INTO iso.logs_2025 (id, at, tenant_id) VALUES (7, '2025-01-02', %L)$$, :'globex'));
-- The same through a partition and an inheritance child written directly: globex's rows there
-- are not matched, and a row for globex is refused.
UPDATE iso.logs_2025 SET id = 99 WHERE id = 3 RETURNING id;
DELETE FROM iso.logs_2025 WHERE id = 3 RETURNING id;
UPDATE iso.docs_archived SET body = 'stolen' WHERE id = 3 RETURNING id;
DELETE FROM iso.docs_archived WHERE id = 3 RETURNING id;
SELECT test.try(format($$INSERT INTO iso.docs_archived (id, body, tenant_id) VALUES (7, 'forged', %L)$$, :'globex'));
SELECT test.try(format($$UPDATE iso.docs_archived SET tenant_id = %L WHERE id = 2$$, :'globex'));
INSERT INTO iso.docs_archived (id, body) VALUES (4, 'acme archived later') RETURNING id, tenant_id = :'acme' AS stamped_acme;

-- Spoofing the parameter.
SELECT test.try(format($$SET pg_tenant.tenant_id = %L$$, :'globex'));
SELECT test.try(format($$SET LOCAL pg_tenant.tenant_id = %L$$, :'globex'));
SELECT test.try(format($$SELECT set_config('pg_tenant.tenant_id', %L, false)$$, :'globex'));
SELECT test.try($$RESET pg_tenant.tenant_id$$);
SELECT tenant.current(true) IS NULL AS reset_only_clears;
SELECT tenant.set('iso-acme') IS NOT NULL AS ok;
-- A switch inside a transaction that rolls back leaves the previous tenant, with its rows.
BEGIN;
SELECT tenant.set('iso-globex') IS NOT NULL AS ok;
SELECT count(*) AS globex_items FROM iso.items;
ROLLBACK;
SELECT tenant.current() = :'acme' AS back_to_acme, (SELECT count(*) FROM iso.items) AS acme_items;
SELECT test.try(format($$ALTER ROLE iso_app SET pg_tenant.tenant_id = %L$$, :'globex'));
-- A leaky function in WHERE sees only the current tenant's rows.
CREATE FUNCTION pg_temp.leak(text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS
$$ BEGIN RAISE NOTICE 'saw %', $1; RETURN true; END $$;
SELECT count(*) FROM iso.items WHERE pg_temp.leak(name);
-- What only the owner may do is refused.
SELECT test.try($$TRUNCATE iso.items$$);
SELECT test.try($$ALTER TABLE iso.items DISABLE ROW LEVEL SECURITY$$);
SELECT test.try($$ALTER TABLE iso.items NO FORCE ROW LEVEL SECURITY$$);
SELECT test.try($$DROP POLICY tenant_isolation ON iso.items$$);
SELECT test.try($$ALTER TABLE iso.items DISABLE TRIGGER tenant_guard$$);
SELECT test.try($$SET session_replication_role = replica$$);
TRUNCATE iso.items;

-- A generic cached plan never serves the previous tenant's rows.
SET plan_cache_mode = force_generic_plan;
PREPARE count_items AS SELECT count(*), min(name) FROM iso.items;
EXECUTE count_items;
SELECT tenant.set('iso-globex') IS NOT NULL AS ok;
EXECUTE count_items;
SET plan_cache_mode = auto;
PREPARE names_by_id(int) AS SELECT name FROM iso.items WHERE id >= $1 ORDER BY id;
SELECT tenant.set('iso-acme') IS NOT NULL AS ok;
EXECUTE names_by_id(0); EXECUTE names_by_id(0); EXECUTE names_by_id(0);
EXECUTE names_by_id(0); EXECUTE names_by_id(0); EXECUTE names_by_id(0);
SELECT tenant.set('iso-globex') IS NOT NULL AS ok;
EXECUTE names_by_id(0);
SELECT generic_plans > 0 AS went_generic FROM pg_prepared_statements WHERE name = 'names_by_id';
-- PL/pgSQL caches its plans too.
CREATE FUNCTION pg_temp.item_names() RETURNS text LANGUAGE plpgsql AS
$$ BEGIN RETURN (SELECT string_agg(name, ', ' ORDER BY id) FROM iso.items); END $$;
SELECT tenant.set('iso-acme') IS NOT NULL AS ok;
SELECT pg_temp.item_names();
SELECT tenant.set('iso-globex') IS NOT NULL AS ok;
SELECT pg_temp.item_names();

-- A forced parallel plan returns exactly the serial rows (workers get the tenant too).
SELECT tenant.set('iso-acme') IS NOT NULL AS ok;
SET max_parallel_workers_per_gather = 0;
SELECT count(*), sum(n) FROM iso.big;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET force_parallel_mode = on;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*), sum(n) FROM iso.big;
SELECT count(*), sum(n) FROM iso.big;
SELECT tenant.set('iso-globex') IS NOT NULL AS ok;
SELECT count(*), sum(n) FROM iso.big;
RESET ALL;
SELECT tenant.current(true) IS NULL AS reset_all_cleared;

-- A second session never sees the first session's tenant.
SELECT tenant.set('iso-acme') IS NOT NULL AS ok;
\c - iso_app
SELECT tenant.current(true) IS NULL AS new_session_has_no_tenant;
SELECT test.try($$SELECT count(*) FROM iso.items$$);

-- A role with access to one tenant only.
\c - iso_acme_user
SELECT tenant.set('iso-acme') IS NOT NULL AS ok;
SELECT count(*) AS acme_items FROM iso.items;
SELECT test.try($$SELECT tenant.set('iso-globex')$$);
SELECT count(*) AS still_acme_items FROM iso.items;
-- MERGE cannot reach another tenant's row either: globex's row 3 is not matched, and a row
-- for another tenant is refused.
SELECT test.try($$MERGE INTO iso.items t USING (VALUES (3, 'merged')) s(id, name) ON t.id = s.id
                  WHEN MATCHED THEN UPDATE SET name = s.name$$);
SELECT test.try(format($$MERGE INTO iso.items t USING (VALUES (7, 'merged')) s(id, name) ON t.id = s.id
                  WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.name, %L)$$, :'globex'));
-- A planted operator earlier in search_path does not capture pg_tenant's own lookups. The
-- operator, and the role's search_path putting it first, are in place before a new session
-- starts, so every lookup pg_tenant makes in that session (the tenant by slug, who may act as
-- it: nothing is cached yet) runs under the hostile path. "=" on uuid is true for everything
-- there, and says so with a NOTICE whenever it runs: it must never run for pg_tenant.
CREATE FUNCTION iso_scratch.always(uuid, uuid) RETURNS boolean LANGUAGE plpgsql AS
$$ BEGIN RAISE NOTICE 'planted uuid = uuid ran as %', current_user; RETURN true; END $$;
CREATE OPERATOR iso_scratch.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = iso_scratch.always);
ALTER ROLE iso_acme_user SET search_path = iso_scratch, pg_catalog, public;
\c - iso_acme_user
SHOW search_path;
SELECT '00000000-0000-0000-0000-000000000000'::uuid = '11111111-1111-1111-1111-111111111111'::uuid AS planted_operator_works;
-- The refusal reads pg_tenant's registry (the tenant, gateways, access grants) here, under the
-- planted path: counted by the scans this transaction makes of those tables (a session that had
-- already looked the tenant up would read nothing, and prove nothing).
BEGIN;
SELECT sum(seq_scan + coalesce(idx_scan, 0)) AS registry_scans FROM pg_stat_xact_user_tables
 WHERE relid IN (SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) 'tenant_data'::pg_catalog.regnamespace
                   AND c.relname IN ('tenants', 'gateways', 'tenant_access')) \gset
SELECT test.try($$SELECT tenant.set('iso-globex')$$);
SELECT sum(seq_scan + coalesce(idx_scan, 0)) > :registry_scans AS refusal_read_the_registry_here FROM pg_stat_xact_user_tables
 WHERE relid IN (SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) 'tenant_data'::pg_catalog.regnamespace
                   AND c.relname IN ('tenants', 'gateways', 'tenant_access'));
SELECT tenant.current(true) IS NULL AS still_no_tenant;
SELECT tenant.set('iso-acme') IS NOT NULL AS ok;
SELECT id, name FROM iso.items ORDER BY id;
SELECT id, body FROM iso.docs_archived ORDER BY id;
COMMIT;
ALTER ROLE iso_acme_user RESET search_path;

-- ===== As the tables' owner: FORCE ROW LEVEL SECURITY filters the owner too =====
\c - iso_owner
SELECT test.try($$SELECT count(*) FROM iso.items$$);
SELECT tenant.set('iso-globex') IS NOT NULL AS ok;
SELECT id, name FROM iso.items ORDER BY id;
SELECT test.try(format($$INSERT INTO iso.items VALUES (6, 'forged by owner', %L)$$, :'acme'));
SELECT test.try($$TRUNCATE iso.items$$);
SELECT test.try($$TRUNCATE iso.logs_2025$$);

-- ===== Suspension, including a session that is already connected =====
\c - postgres
-- (A role default naming the tenant, made before the library is loaded: 16_startup_options.sql.)
SELECT dblink_connect('app', :'app_conninfo');
SELECT * FROM dblink('app', 'SELECT tenant.set(''iso-acme'') IS NOT NULL') AS t(ok boolean);
SELECT dblink_exec('app', 'INSERT INTO iso.items VALUES (10, ''before suspend'')');
SELECT tenant.suspend('iso-acme', 'payment failed');
-- The connected session: its next write is refused, reads still work.
SELECT test.try($$SELECT dblink_exec('app', 'INSERT INTO iso.items VALUES (11, ''after suspend'')')$$);
SELECT test.try($$SELECT dblink_exec('app', 'UPDATE iso.items SET name = ''x''')$$);
SELECT test.try($$SELECT dblink_exec('app', 'DELETE FROM iso.items')$$);
SELECT * FROM dblink('app', 'SELECT count(*) FROM iso.items') AS t(acme_items_readable bigint);
SELECT tenant.resume('iso-acme');
SELECT dblink_exec('app', 'INSERT INTO iso.items VALUES (11, ''after resume'')');
-- Registry changes reach sessions that are already connected (their cache is invalidated):
-- a revoked gateway can no longer switch tenants ...
SELECT tenant.revoke_gateway('iso_app');
SELECT test.try($$SELECT * FROM dblink('app', 'SELECT tenant.set(''iso-globex'')') AS t(id uuid)$$);
SELECT tenant.grant_gateway('iso_app');
SELECT * FROM dblink('app', 'SELECT tenant.set(''iso-acme'') IS NOT NULL') AS t(ok boolean);
-- ... and a status changed by hand in the registry is honoured too.
UPDATE tenant_data.tenants SET status = 'suspended' WHERE slug = 'iso-acme';
SELECT test.try($$SELECT dblink_exec('app', 'INSERT INTO iso.items VALUES (13, ''x'')')$$);
UPDATE tenant_data.tenants SET status = 'active' WHERE slug = 'iso-acme';
SELECT dblink_disconnect('app');
-- The plain message of a suspended tenant's write.
SELECT tenant.suspend('iso-globex', 'abuse report');
\c - iso_app
SELECT tenant.set('iso-globex') IS NOT NULL AS ok;
INSERT INTO iso.items VALUES (12, 'suspended');
SELECT count(*) AS globex_items_readable FROM iso.items;
\c - postgres
SELECT tenant.resume('iso-globex');

-- Totals as a superuser (which bypasses row-level security): nothing leaked or lost, and
-- globex's row 3 survived every attempt (UPDATE, DELETE, ON CONFLICT, MERGE) from acme, in the
-- partition and in the inheritance child too.
SELECT id, name FROM iso.items WHERE id = 3;
SELECT t.slug, count(*) FROM iso.items i JOIN tenant_data.tenants t ON t.id = i.tenant_id GROUP BY t.slug ORDER BY t.slug;
SELECT id, at, tenant_id = :'globex' AS globex_row FROM iso.logs_2025 ORDER BY id;
SELECT id, body, tenant_id = :'globex' AS globex_row FROM iso.docs_archived ORDER BY id;
