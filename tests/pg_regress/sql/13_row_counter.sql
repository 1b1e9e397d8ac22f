-- Count quotas count rows with a tenant_quota index (src/row_counter.rs): every way a row gets
-- written, as the application role over its own connection, counts new rows once and updated
-- or taken-back rows never; the index is never scanned; only attach_quota makes one.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE ROLE rc_app LOGIN;
SELECT tenant.grant_gateway('rc_app');
SELECT tenant.create_plan('rc_plan', '{"rc_rows": {"limit": 12}}');
SELECT tenant.create('rc-one', plan => 'rc_plan') IS NOT NULL AS created;
SELECT tenant.create('rc-two', plan => 'rc_plan') IS NOT NULL AS created;
CREATE SCHEMA rc;
GRANT USAGE ON SCHEMA rc TO rc_app;
-- tag is indexed, so an UPDATE that changes it cannot be HOT: the index sees the new version.
CREATE TABLE rc.items (id int PRIMARY KEY, tag int, name text);
CREATE INDEX ON rc.items (tag);
SELECT tenant.protect('rc.items');
SELECT tenant.attach_quota('rc.items', 'rc_rows');
GRANT SELECT, INSERT, UPDATE, DELETE ON rc.items TO rc_app;
-- The index attach_quota made: on the tenant column, with the resource as its option.
SELECT indexrelid::regclass AS index, pg_get_indexdef(indexrelid) AS definition
  FROM pg_index WHERE indrelid = 'rc.items'::regclass AND pg_get_indexdef(indexrelid) LIKE '%tenant_quota%';
SELECT count(*) AS insert_triggers FROM pg_trigger WHERE tgrelid = 'rc.items'::regclass AND tgname LIKE 'tenant_quota%ins';

\c - rc_app
\set SHOW_CONTEXT never
SELECT tenant.set('rc-one') IS NOT NULL AS ok;
CREATE FUNCTION pg_temp.used() RETURNS bigint LANGUAGE sql AS $$ SELECT used FROM tenant.check_quota('rc_rows') $$;
INSERT INTO rc.items VALUES (1, 1, 'a'), (2, 1, 'b'), (3, 1, 'c');
SELECT pg_temp.used() AS used_after_3_inserts;
-- Updates write new row versions, HOT or not, even when the SET list names the tenant column
-- (as ORMs that save every field do): never counted.
UPDATE rc.items SET name = name || '!';
UPDATE rc.items SET tag = tag + 1, tenant_id = tenant_id;
SELECT pg_temp.used() AS used_after_updates, (SELECT count(*) FROM rc.items) AS rows;
-- ON CONFLICT: only inserted rows count (DO NOTHING and DO UPDATE).
INSERT INTO rc.items VALUES (1, 0, 'dup'), (4, 0, 'new') ON CONFLICT (id) DO NOTHING;
INSERT INTO rc.items VALUES (2, 0, 'dup'), (5, 0, 'new') ON CONFLICT (id) DO UPDATE SET tag = EXCLUDED.tag + 10;
SELECT pg_temp.used() AS used_after_on_conflict, (SELECT count(*) FROM rc.items) AS rows;
-- MERGE: the inserted row counts, the updated one does not.
MERGE INTO rc.items i USING (VALUES (3, 'merged'), (6, 'merged new')) AS s(id, name) ON i.id = s.id
 WHEN MATCHED THEN UPDATE SET name = s.name, tag = 99
 WHEN NOT MATCHED THEN INSERT (id, tag, name) VALUES (s.id, 0, s.name);
SELECT pg_temp.used() AS used_after_merge, (SELECT count(*) FROM rc.items) AS rows;
-- A writable CTE that updates and inserts.
WITH u AS (UPDATE rc.items SET tag = tag + 1 WHERE id = 1 RETURNING id)
INSERT INTO rc.items SELECT 7, 0, 'from cte' FROM u;
SELECT pg_temp.used() AS used_after_cte, (SELECT count(*) FROM rc.items) AS rows;
-- Rolled back work gives nothing: a savepoint, an exception block, a whole transaction.
BEGIN;
INSERT INTO rc.items VALUES (8, 0, 'kept');
SAVEPOINT s;
INSERT INTO rc.items VALUES (9, 0, 'rolled back'), (10, 0, 'rolled back');
ROLLBACK TO s;
DO $$ BEGIN
    INSERT INTO rc.items VALUES (11, 0, 'undone by the exception');
    RAISE EXCEPTION 'undo';
EXCEPTION WHEN OTHERS THEN NULL;
END $$;
COMMIT;
BEGIN;
INSERT INTO rc.items VALUES (12, 0, 'aborted');
ROLLBACK;
SELECT pg_temp.used() AS used_after_rollbacks, (SELECT count(*) FROM rc.items) AS rows;
-- Rows a function inserts inside an exception block, for a statement that inserts too.
CREATE FUNCTION pg_temp.add_side(i int) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        INSERT INTO rc.items VALUES (i + 100, 0, 'side');
    EXCEPTION WHEN unique_violation THEN NULL;
    END;
    RETURN i;
END $$;
INSERT INTO rc.items SELECT pg_temp.add_side(g), 0, 'main' FROM generate_series(20, 21) g;
SELECT pg_temp.used() AS used_after_nested, (SELECT count(*) FROM rc.items) AS rows;
-- Deletes give units back; a statement over the limit fails whole and changes nothing.
DELETE FROM rc.items WHERE id >= 100;
SELECT pg_temp.used() AS used_after_delete;
SELECT test.try($$INSERT INTO rc.items SELECT g, 0, 'too many' FROM generate_series(200, 204) g$$);
SELECT pg_temp.used() AS used, (SELECT count(*) FROM rc.items) AS rows;
INSERT INTO rc.items SELECT g, 0, 'fits' FROM generate_series(200, 201) g;
SELECT test.try($$INSERT INTO rc.items VALUES (300, 0, 'the 13th')$$);
SELECT test.try($$INSERT INTO rc.items VALUES (1, 0, 'dup'), (300, 0, 'the 13th') ON CONFLICT (id) DO NOTHING$$);
SELECT test.try($$INSERT INTO rc.items VALUES (1, 0, 'dup') ON CONFLICT (id) DO UPDATE SET name = 'a full tenant may update'$$);
SELECT test.try($$MERGE INTO rc.items i USING (VALUES (300)) s(id) ON i.id = s.id WHEN NOT MATCHED THEN INSERT (id, tag) VALUES (s.id, 0)$$);
-- An update of a full tenant is still allowed: it adds no row.
UPDATE rc.items SET tag = tag + 1;
SELECT pg_temp.used() AS used, (SELECT count(*) FROM rc.items) AS rows;
-- Another tenant counts on its own.
SELECT tenant.set('rc-two') IS NOT NULL AS ok;
INSERT INTO rc.items VALUES (400, 0, 'two');
SELECT pg_temp.used() AS used_by_two;
-- The application role cannot drop, alter or replace the index, nor make one of its own.
SELECT test.try($$DROP INDEX rc.items_tenant_id_idx1$$);
SELECT test.try($$ALTER INDEX rc.items_tenant_id_idx1 SET (resource = 'other')$$);
SELECT test.try($$CREATE TABLE public.rc_mine (tenant_id uuid)$$);
SELECT test.try($$SELECT tenant.quota_trigger()$$);

\c - postgres
\set SHOW_CONTEXT never
SET client_min_messages = warning;
-- The planner never uses it: a query on the tenant column reads the table or the btree index.
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT * FROM rc.items WHERE tenant_id = '00000000-0000-0000-0000-000000000000';
RESET enable_seqscan;
-- Rebuilds (REINDEX, VACUUM FULL, a rewriting ALTER TABLE) keep the count and counting.
SELECT tenant.set('rc-one') IS NOT NULL AS ok;
REINDEX TABLE rc.items;
VACUUM FULL rc.items;
ALTER TABLE rc.items ALTER COLUMN tag TYPE bigint;
SELECT used, (SELECT count(*) FROM rc.items WHERE tenant_id = tenant.current()) AS rows FROM tenant.check_quota('rc_rows');
DELETE FROM rc.items WHERE id = 201;
INSERT INTO rc.items VALUES (500, 0, 'after rebuilds');
SELECT used, (SELECT count(*) FROM rc.items WHERE tenant_id = tenant.current()) AS rows FROM tenant.check_quota('rc_rows');
-- COPY (a superuser here: RLS refuses COPY FROM to roles it filters) counts in batches too.
DELETE FROM rc.items WHERE id >= 200 AND tenant_id = tenant.current();
SELECT used AS used_before_copy FROM tenant.check_quota('rc_rows');
COPY rc.items (id, tag, name) FROM STDIN;
600	0	copied
601	0	copied
\.
SELECT used, (SELECT count(*) FROM rc.items WHERE tenant_id = tenant.current()) AS rows FROM tenant.check_quota('rc_rows');
-- A long ON CONFLICT statement: rows are decided in batches as it goes (65,536 at a time).
CREATE TABLE rc.big (id int PRIMARY KEY);
SELECT tenant.protect('rc.big');
SELECT tenant.attach_quota('rc.big', 'rc_big');
INSERT INTO rc.big SELECT g FROM generate_series(1, 100) g;
INSERT INTO rc.big SELECT g FROM generate_series(1, 70000) g ON CONFLICT (id) DO NOTHING;
SELECT used, (SELECT count(*) FROM rc.big WHERE tenant_id = tenant.current()) AS rows FROM tenant.check_quota('rc_big');
SELECT tenant.detach_quota('rc.big', 'rc_big');
DROP TABLE rc.big;

-- A tenant_quota index takes the tenant column alone and one option, the resource.
SELECT test.try($$CREATE INDEX ON rc.items USING tenant_quota (tenant_id)$$);
SELECT test.try($$CREATE INDEX ON rc.items USING tenant_quota (tenant_id) WITH (colour = 'red')$$);
SELECT test.try($$CREATE INDEX ON rc.items USING tenant_quota ((tenant_id)) WITH (resource = 'rc_rows') WHERE id > 0$$);
-- A role that may not attach quotas cannot count rows of its own table into anyone's quota:
-- neither with the quota trigger nor with an index, whether it sends the CREATE INDEX itself, asks
-- for a resource other than the one attached to its table, or has a superuser's statement run it
-- (through its security-definer function, its materialized view's refresh, or an IMMUTABLE
-- function PostgreSQL folds while it checks the expression of the superuser's CREATE INDEX: all
-- of them run as the owner while the superuser's statement is active).
CREATE ROLE rc_owner LOGIN;
CREATE SCHEMA rc_own AUTHORIZATION rc_owner;
\c - rc_owner
\set SHOW_CONTEXT never
CREATE TABLE rc_own.mine (tenant_id uuid NOT NULL);
CREATE TABLE rc_own.counted (id int);
CREATE TABLE rc_own.parted (tenant_id uuid) PARTITION BY LIST (tenant_id);
CREATE FUNCTION rc_own.make_index(name text) RETURNS uuid LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE INDEX %I ON rc_own.mine USING tenant_quota (tenant_id) WITH (resource = rc_rows)', name);
    RETURN NULL;
END
$$;
CREATE FUNCTION rc_own.definer() RETURNS uuid LANGUAGE sql SECURITY DEFINER AS $$ SELECT rc_own.make_index('by_definer') $$;
CREATE MATERIALIZED VIEW rc_own.refreshed AS SELECT rc_own.make_index('by_refresh') AS x WITH NO DATA;
CREATE FUNCTION rc_own.folded(x int) RETURNS uuid LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN rc_own.make_index('by_expression');
END
$$;
CREATE INDEX ON rc_own.mine USING tenant_quota (tenant_id) WITH (resource = 'rc_rows');
SELECT test.try($$CREATE INDEX ON rc_own.mine USING tenant_quota (tenant_id) WITH (resource = 'rc_rows')$$);
SELECT test.try($$CREATE TRIGGER t AFTER DELETE ON rc_own.mine REFERENCING OLD TABLE AS o FOR EACH STATEMENT EXECUTE FUNCTION tenant.quota_trigger('rc_rows', 'count', 'tenant_id')$$);
\c - postgres
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT tenant.protect('rc_own.counted');
SELECT tenant.attach_quota('rc_own.counted', 'rc_owned');
SELECT rc_own.definer();
REFRESH MATERIALIZED VIEW rc_own.refreshed;
CREATE INDEX ON ONLY rc_own.parted USING tenant_quota ((rc_own.folded(1))) WITH (resource = 'rc_rows');
SET ROLE rc_owner;
CREATE INDEX ON rc_own.mine USING tenant_quota (tenant_id) WITH (resource = 'rc_rows');
CREATE INDEX ON rc_own.counted USING tenant_quota (tenant_id) WITH (resource = 'rc_rows');
-- Rebuilding the index of the quota attached to its table is fine.
REINDEX TABLE rc_own.counted;
RESET ROLE;
-- A superuser's own CREATE INDEX on plain columns makes one: what pg_restore and psql replay
-- from a dump (tests/dump_restore/run.sh restores such tables).
CREATE INDEX by_superuser ON rc_own.mine USING tenant_quota (tenant_id) WITH (resource = 'rc_rows');
SELECT i.indrelid::regclass AS "table", c.relname AS index, pg_get_indexdef(i.indexrelid) LIKE '%USING tenant_quota%' AS counting
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid IN ('rc_own.mine'::regclass, 'rc_own.counted'::regclass, 'rc_own.parted'::regclass)
 ORDER BY 1, 2;
SELECT tenant.detach_quota('rc_own.counted', 'rc_owned');
SELECT tenant.unprotect('rc_own.counted');
DROP SCHEMA rc_own CASCADE;
DROP ROLE rc_owner;
SELECT tenant.set('rc-one') IS NOT NULL AS ok;

-- A partitioned table: the index reaches every partition, those made later too.
CREATE TABLE rc.events (id int, tenant_id uuid NOT NULL DEFAULT tenant.current()) PARTITION BY RANGE (id);
CREATE TABLE rc.events_low PARTITION OF rc.events FOR VALUES FROM (0) TO (100);
SELECT tenant.protect('rc.events');
SELECT tenant.attach_quota('rc.events', 'rc_events');
CREATE TABLE rc.events_high PARTITION OF rc.events FOR VALUES FROM (100) TO (200);
INSERT INTO rc.events VALUES (1), (150);
INSERT INTO rc.events_high VALUES (151);
SELECT used, (SELECT count(*) FROM rc.events) AS rows FROM tenant.check_quota('rc_events');
SELECT c.relname, pg_get_indexdef(i.indexrelid) LIKE '%USING tenant_quota (tenant_id) WITH (resource=rc_events)' AS counting
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
 WHERE c.relname LIKE 'events%' AND pg_get_indexdef(i.indexrelid) LIKE '%tenant_quota%' ORDER BY 1;

-- Inheritance children (not partitions) get their own counting index: rows inserted straight
-- into a child count too, and the parent's rows are counted once.
CREATE TABLE rc.notes (id int, tenant_id uuid NOT NULL DEFAULT tenant.current());
CREATE TABLE rc.notes_archive () INHERITS (rc.notes);
SELECT tenant.protect('rc.notes');
SELECT tenant.attach_quota('rc.notes', 'rc_notes');
INSERT INTO rc.notes VALUES (1);
INSERT INTO rc.notes_archive VALUES (2), (3);
SELECT used, (SELECT count(*) FROM rc.notes) AS rows FROM tenant.check_quota('rc_notes');
DELETE FROM rc.notes_archive WHERE id = 3;
SELECT used, (SELECT count(*) FROM rc.notes) AS rows FROM tenant.check_quota('rc_notes');
SELECT tenant.detach_quota('rc.notes', 'rc_notes');
SELECT count(*) AS quota_indexes_left FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid IN ('rc.notes'::regclass, 'rc.notes_archive'::regclass) AND a.amname = 'tenant_quota';

-- At the limit, a transaction that deletes a row may insert one (its delete frees the unit if it
-- commits, and both happen or neither).
SELECT tenant.set_limit('rc-one', 'rc_events', 3);
SELECT used, "limit" FROM tenant.check_quota('rc_events');
BEGIN;
DELETE FROM rc.events WHERE id = 151;
INSERT INTO rc.events VALUES (152);
SELECT test.try($$INSERT INTO rc.events VALUES (153)$$);
COMMIT;
SELECT used, (SELECT count(*) FROM rc.events) AS rows FROM tenant.check_quota('rc_events');
SELECT tenant.clear_limit('rc-one', 'rc_events');

-- Detaching drops the index and gives the rows' usage back.
SELECT tenant.detach_quota('rc.items', 'rc_rows');
SELECT count(*) AS quota_indexes FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
  JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = 'rc.items'::regclass AND a.amname = 'tenant_quota';
SELECT used FROM tenant.check_quota('rc_rows');
SELECT tenant.detach_quota('rc.events', 'rc_events');
SELECT tenant.reset();
DROP SCHEMA rc CASCADE;
SELECT tenant.drop('rc-one'), tenant.drop('rc-two');
SELECT tenant.revoke_gateway('rc_app');
DROP OWNED BY rc_app;
DROP ROLE rc_app;
