-- Loaded by tests/admin_changes/run.py into a fresh database: roles, plans, a protected table, an
-- unprotected one, a schema template. Each check uses its own tenants.
CREATE EXTENSION pg_tenant;
CREATE ROLE ac_app LOGIN;    -- a gateway for the whole suite
CREATE ROLE ac_late LOGIN;   -- granted a gateway while connected
CREATE ROLE ac_rev LOGIN;    -- loses its gateway while connected
CREATE ROLE ac_txo LOGIN;    -- its gateway becomes transaction_only while connected
CREATE ROLE ac_acc LOGIN;    -- granted, then refused, access to one tenant
CREATE ROLE ac_tok LOGIN;    -- no grant: acts through signed tokens
SELECT tenant.grant_gateway('ac_app');
SELECT tenant.grant_gateway('ac_rev');
SELECT tenant.grant_gateway('ac_txo');
SELECT tenant.create_plan('free', '{"calls": {"limit": 10}, "items": {"limit": 2}, "writes": {"limit": 1}}');
SELECT tenant.create_plan('pro', '{"calls": {"limit": 1000}}');
SELECT tenant.create_plan('alt', '{"calls": {"limit": 3}}');

CREATE TABLE items (id serial PRIMARY KEY, body text, tenant_id uuid);
SELECT tenant.protect('items');
GRANT SELECT, INSERT, DELETE ON items TO ac_app;
GRANT USAGE ON SEQUENCE items_id_seq TO ac_app;
-- Not protected yet (tenant.protect while a session reads it).
CREATE TABLE docs (id int, tenant_id uuid NOT NULL);
GRANT SELECT ON docs TO ac_app;

CREATE SCHEMA tpl;
CREATE TABLE tpl.notes (id int, body text);
GRANT USAGE ON SCHEMA tpl TO ac_app;
GRANT SELECT, INSERT ON tpl.notes TO ac_app;
