\set ON_ERROR_STOP on
-- A deployment as the README recommends it: the application's tables and the schema tenants'
-- template belong to dump_owner, an ordinary role (neither superuser nor extension owner), and
-- carry quotas of every kind: count (app.docs, and tpl.items in every tenant schema), meter
-- (app.events) and bytes (app.files), besides consume()'s calls.
CREATE EXTENSION pg_tenant;
CREATE ROLE dump_owner;
CREATE ROLE dump_app LOGIN;
CREATE ROLE dump_acme LOGIN;
SELECT tenant.grant_gateway('dump_app');
SELECT tenant.create_plan('free', '{"docs": {"limit": 5}, "calls": {"limit": 100, "period": "month"},
    "event_rows": {"limit": 3, "period": "month"}, "file_bytes": {"limit": 1000}, "items": {"limit": 3}}');
SELECT tenant.alter_plan('default', '{"calls": {"limit": 1000, "period": "day"}}');
SELECT tenant.create('acme', 'Acme', plan => 'free', settings => '{"billing_anchor": "2026-01-15T00:00:00Z"}');
SELECT tenant.create('globex', plan => 'default');
-- Plan settings (0.3.0): the plan's and acme's own, applied while acting as acme.
SELECT tenant.set_plan_settings('free', '{"statement_timeout": "45s", "work_mem": "8MB"}');
SELECT tenant.set_tenant_settings('acme', '{"work_mem": "24MB"}');
SELECT tenant.grant_access('acme', 'dump_acme');
SELECT tenant.set_limit('globex', 'docs', 2);
-- A registry of a real size: pg_restore -j then still copies tenant_data.tenants while other jobs copy
-- the grants and limits that name its tenants (whose order nothing in the dump fixes).
SELECT count(tenant.create('bulk-' || g)) FROM generate_series(1, 3000) g;
CREATE SCHEMA app AUTHORIZATION dump_owner;
SET ROLE dump_owner;
CREATE TABLE app.docs (id int PRIMARY KEY, body text);
CREATE TABLE app.events (id int, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE app.events_2026 PARTITION OF app.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE TABLE app.files (id int PRIMARY KEY, data text);
RESET ROLE;
SELECT tenant.protect('app.docs');
SELECT tenant.protect('app.events');
SELECT tenant.protect('app.files');
SELECT tenant.attach_quota('app.docs', 'docs', 'count');
SELECT tenant.attach_quota('app.events', 'event_rows', 'meter');
SELECT tenant.attach_quota('app.files', 'file_bytes', 'bytes');
GRANT USAGE ON SCHEMA app TO dump_app, dump_acme;
GRANT SELECT, INSERT, DELETE ON ALL TABLES IN SCHEMA app TO dump_app, dump_acme;
SELECT tenant.set('acme');
INSERT INTO app.docs SELECT g, 'acme ' || g FROM generate_series(1, 5) g;
INSERT INTO app.events VALUES (1, '2026-02-01'), (2, '2026-03-01');
INSERT INTO app.files VALUES (1, repeat('a', 500));
SELECT tenant.consume('calls', 7);
SELECT tenant.set('globex');
INSERT INTO app.docs VALUES (100, 'globex');
INSERT INTO app.events VALUES (3, '2026-04-01');
SELECT tenant.consume('calls', 3);
SELECT tenant.reset();
SELECT tenant.suspend('globex', 'testing restore');
-- A schema tenant cloned from a template of dump_owner's with a count quota, with rows and a
-- migration, and a token key.
CREATE SCHEMA tpl AUTHORIZATION dump_owner;
SET ROLE dump_owner;
CREATE TABLE tpl.items (id serial PRIMARY KEY, name text NOT NULL);
GRANT USAGE ON SCHEMA tpl TO dump_app;
GRANT SELECT, INSERT ON tpl.items TO dump_app;
GRANT USAGE ON SEQUENCE tpl.items_id_seq TO dump_app;
RESET ROLE;
SELECT tenant.protect('tpl.items');
SELECT tenant.attach_quota('tpl.items', 'items', 'count');
SELECT tenant.create('initech', plan => 'free', isolation => 'schema', template => 'tpl');
SET client_min_messages = warning;
SELECT tenant.migrate('001_sku', 'ALTER TABLE items ADD COLUMN sku text');
SELECT tenant.set('initech');
INSERT INTO items (name, sku) VALUES ('stapler', 's-1'), ('printer', 'p-1');
SELECT tenant.reset();
SELECT tenant.set_signing_key('HS256', 'dump-secret-0123456789-0123456789-x');
-- Objects dropped since pg_tenant recorded them: a role with a gateway and an access grant, and
-- a protected table. Their rows stay in pg_tenant's catalog, naming oids no object has now.
CREATE ROLE dump_gone;
SELECT tenant.grant_gateway('dump_gone');
SELECT tenant.grant_access('acme', 'dump_gone');
CREATE TABLE app.gone (id int);
SELECT tenant.protect('app.gone');
DROP TABLE app.gone;
DROP ROLE dump_gone;
-- pg_restore -j schedules the largest tables first, by the size the statistics give.
ANALYZE;
