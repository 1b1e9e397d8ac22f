-- tenant.check(): a clean setup has no findings; each weakness the checker knows is reported.
\set SHOW_CONTEXT never
CREATE DATABASE pg_tenant_check;
\c pg_tenant_check
CREATE EXTENSION pg_tenant;
CREATE ROLE chk_owner;                  -- owns the tables, cannot log in
CREATE ROLE chk_app LOGIN;
CREATE SCHEMA shop AUTHORIZATION chk_owner;
SET ROLE chk_owner;
CREATE TABLE shop.customers (id int, tenant_id uuid NOT NULL DEFAULT tenant.current(), name text,
                             PRIMARY KEY (tenant_id, id));
CREATE TABLE shop.orders (id int, tenant_id uuid NOT NULL DEFAULT tenant.current(), customer_id int,
                          PRIMARY KEY (tenant_id, id),
                          FOREIGN KEY (tenant_id, customer_id) REFERENCES shop.customers (tenant_id, id));
CREATE TABLE shop.events (id int, at date NOT NULL) PARTITION BY RANGE (at);
CREATE TABLE shop.events_2026 PARTITION OF shop.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE VIEW shop.customer_names WITH (security_invoker = true) AS SELECT name FROM shop.customers;
GRANT USAGE ON SCHEMA shop TO chk_app;
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA shop TO chk_app;
RESET ROLE;
SELECT tenant.protect('shop.customers'), tenant.protect('shop.orders'), tenant.protect('shop.events');
SELECT tenant.grant_gateway('chk_app');
-- A clean setup: no findings.
SELECT * FROM tenant.check();

-- Now each weakness, one at a time.
CREATE TABLE shop.invoices (id int, tenant_id uuid);                                   -- not protected
ALTER TABLE shop.orders NO FORCE ROW LEVEL SECURITY;                                     -- not forced
DROP POLICY tenant_isolation ON shop.customers;                                          -- policy gone
CREATE TABLE shop.events_2027 PARTITION OF shop.events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01'); -- new partition
CREATE TABLE shop.refunds (id int, tenant_id uuid NOT NULL, order_id int UNIQUE);
SELECT tenant.protect('shop.refunds');
-- (protect() refuses a foreign key between protected tables without the tenant column: added after.)
ALTER TABLE shop.refunds ADD FOREIGN KEY (order_id) REFERENCES shop.refunds (order_id); -- FK without tenant
DROP INDEX shop.refunds_tenant_id_idx;                                                    -- no tenant index
CREATE VIEW shop.all_orders AS SELECT * FROM shop.orders;                                 -- definer-rights view
CREATE MATERIALIZED VIEW shop.order_counts AS SELECT tenant_id, count(*) FROM shop.orders GROUP BY 1;
CREATE FUNCTION shop.count_orders() RETURNS bigint LANGUAGE sql SECURITY DEFINER
    AS 'SELECT count(*) FROM shop.orders';                                                -- reads protected rows, no search_path
CREATE ROLE chk_admin LOGIN BYPASSRLS;                                                    -- login role bypassing RLS
CREATE ROLE chk_login_owner LOGIN;
ALTER TABLE shop.orders OWNER TO chk_login_owner;                                         -- owner that logs in
GRANT TRUNCATE ON shop.customers TO chk_app;                                              -- TRUNCATE granted
GRANT SET ON PARAMETER pg_tenant.tenant_id TO chk_app;                                    -- SET granted
SELECT severity, object, problem, fix FROM tenant.check();

-- A foreign key from an unprotected table into a protected one (it blocks tenant.drop()), and
-- roles that may act as tenants but lack what their tables need: USAGE on the schema, USAGE on a
-- serial column's sequence, any privilege on a protected table.
CREATE TABLE shop.audit_refs (tenant uuid, order_ref int, FOREIGN KEY (tenant, order_ref) REFERENCES shop.orders (tenant_id, id));
CREATE ROLE chk_noschema;
CREATE ROLE chk_nothing;
SELECT tenant.create('acme') IS NOT NULL AS created;
SELECT tenant.grant_gateway('chk_noschema'), tenant.grant_access('acme', 'chk_nothing');
GRANT SELECT ON shop.customers TO chk_noschema;
CREATE TABLE shop.tickets (id serial, body text);
SELECT tenant.protect('shop.tickets');
GRANT INSERT ON shop.tickets TO chk_app;
SELECT severity, object, problem, fix FROM tenant.check()
 WHERE problem ~ '(foreign key from unprotected|may act as tenants|may insert into it)';
GRANT USAGE ON SEQUENCE shop.tickets_id_seq TO chk_app;
SELECT count(*) AS sequence_finding_gone FROM tenant.check() WHERE problem ~ 'may insert into it';

-- Only superusers and the extension owner run it by default.
SET ROLE chk_app;
SELECT * FROM tenant.check();
RESET ROLE;
REVOKE SET ON PARAMETER pg_tenant.tenant_id FROM chk_app;
\c pg_tenant_regress
DROP DATABASE pg_tenant_check;
DROP ROLE chk_owner, chk_app, chk_admin, chk_login_owner, chk_noschema, chk_nothing;
