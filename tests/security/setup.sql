-- The deployment the attack suite works against, made by the superuser (psql variable :secret is
-- the HS256 key). Roles, from the most to the least privileged non-superuser:
--   sec_delegate  EXECUTE on some admin functions (drop, export, check, suspend, ...), nothing else
--   sec_owner     owns the application tables (schema app) and template tpl; may act as globex
--   sec_app       the application's gateway (any tenant), table privileges, no ownership
--   sec_tenant    may act as acme only, table privileges
--   sec_token     table privileges, no gateway or grant: gets a tenant only from a token
--   sec_nobody    LOGIN and its own schema scratch (default privileges only)
--   sec_txapp / sec_txten   transaction-only gateway / access (issue 11, item 10)
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION pg_tenant;

CREATE ROLE sec_app LOGIN;
CREATE ROLE sec_tenant LOGIN;
CREATE ROLE sec_owner LOGIN;
CREATE ROLE sec_nobody LOGIN;
CREATE ROLE sec_delegate LOGIN;
CREATE ROLE sec_token LOGIN;
CREATE ROLE sec_txapp LOGIN;
CREATE ROLE sec_txten LOGIN;
CREATE SCHEMA scratch AUTHORIZATION sec_nobody;
CREATE SCHEMA app AUTHORIZATION sec_owner;
CREATE SCHEMA tpl AUTHORIZATION sec_owner;

SELECT tenant.set_signing_key('HS256', :'secret');
SELECT tenant.create_plan('sec', '{"api_calls": {"limit": 1000}, "docs": {"limit": 50},
    "events": {"limit": 100000, "period": "day"}, "blob_bytes": {"limit": 100000000}, "c16": {"limit": 1000}}');
SELECT count(tenant.create(s, plan => 'sec'))
  FROM unnest(ARRAY['acme', 'globex', 'somet', 'victim4', 'imp4', 'bytes5', 'imp14a', 'imp14b', 'sweep1', 'sweep2']) s;
SELECT tenant.grant_gateway('sec_app');
SELECT tenant.grant_access('acme', 'sec_tenant');
SELECT tenant.grant_access('globex', 'sec_owner');

-- The application tables belong to sec_owner (not a superuser).
SET ROLE sec_owner;
CREATE TABLE app.projects (id serial PRIMARY KEY, title text);
CREATE TABLE app.docs (id bigserial PRIMARY KEY, body text);
CREATE TABLE app.events (id bigserial PRIMARY KEY, kind text);
CREATE TABLE app.blobs (id bigserial PRIMARY KEY, data text);
CREATE TABLE app.blob_src (data text);
CREATE TABLE app.crash16 (id bigserial PRIMARY KEY, v int);
CREATE TABLE app.customers (id int PRIMARY KEY, name text);
CREATE TABLE app.invoices (id serial PRIMARY KEY, customer_id int REFERENCES app.customers (id));
CREATE TABLE app.inv2 (id serial PRIMARY KEY, customer_id int);
-- Reference rows: the two without a tenant are shared (issue 12, item 4).
CREATE TABLE app.refs (id int PRIMARY KEY, name text);
INSERT INTO app.refs VALUES (1, 'shared-default'), (2, 'shared-other');
-- 3,072,000 characters of random hex: stored out of line, practically incompressible.
INSERT INTO app.blob_src SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 96000);
RESET ROLE;

SELECT tenant.protect(t) FROM unnest(ARRAY['app.projects', 'app.docs', 'app.events', 'app.blobs', 'app.crash16',
                                           'app.customers', 'app.inv2']::regclass[]) t;
SELECT tenant.protect('app.refs', shared_rows => true);
SELECT tenant.attach_quota('app.docs', 'docs', 'count');
SELECT tenant.attach_quota('app.events', 'events', 'meter');
SELECT tenant.attach_quota('app.blobs', 'blob_bytes', 'bytes');
SELECT tenant.attach_quota('app.crash16', 'c16', 'count');
SELECT tenant.attach_quota('app.crash16', 'm16', 'meter');
SELECT tenant.attach_quota('app.crash16', 'b16', 'bytes');

GRANT USAGE ON SCHEMA app TO sec_app, sec_tenant, sec_token, sec_txapp, sec_txten;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA app TO sec_app, sec_tenant, sec_token, sec_txapp, sec_txten;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA app TO sec_app, sec_tenant, sec_token, sec_txapp, sec_txten;
GRANT EXECUTE ON FUNCTION tenant."drop"(text), tenant.export(text), tenant."check"(), tenant.suspend(text, text),
    tenant.resume(text), tenant.change_plan(text, text), tenant.set_limit(text, text, bigint, text),
    tenant.clear_limit(text, text), tenant.import(text, jsonb, boolean), tenant.refresh_usage(), tenant.schema_drift()
    TO sec_delegate;

-- Rows the attacks must never reach.
SELECT tenant.set('acme') IS NOT NULL;
INSERT INTO app.projects (title) VALUES ('acme-secret-1'), ('acme-secret-2');
INSERT INTO app.refs VALUES (20, 'acme-ref');
SELECT tenant.set('globex') IS NOT NULL;
INSERT INTO app.projects (title) VALUES ('globex-row');
INSERT INTO app.refs VALUES (10, 'globex-ref');
SELECT tenant.set('somet') IS NOT NULL;
INSERT INTO app.projects (title) VALUES ('somet-row');
SELECT tenant.set('victim4') IS NOT NULL;
INSERT INTO app.projects (title) VALUES ('victim4-a'), ('victim4-b');
SELECT tenant.set('sweep1') IS NOT NULL;
INSERT INTO app.projects (title) VALUES ('sweep1-row');
SELECT tenant.set('sweep2') IS NOT NULL;
INSERT INTO app.projects (title) VALUES ('sweep2-row');
SELECT tenant.reset();

-- Schema tenants from a superuser-owned template whose table is protected (items 11, 14, 15).
CREATE SCHEMA tpl_base;
CREATE TABLE tpl_base.documents (id serial PRIMARY KEY, title text);
SELECT tenant.protect('tpl_base.documents');
GRANT USAGE ON SCHEMA tpl_base TO sec_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON tpl_base.documents TO sec_app;
GRANT USAGE ON SEQUENCE tpl_base.documents_id_seq TO sec_app;
SELECT tenant.create('s14', plan => 'sec', isolation => 'schema', template => 'tpl_base') IS NOT NULL;
SELECT tenant.create('s15', plan => 'sec', isolation => 'schema', template => 'tpl_base') IS NOT NULL;

-- The sweep's call list (superuser-only schema; the attackers never see it).
CREATE SCHEMA sectest;
REVOKE ALL ON SCHEMA sectest FROM PUBLIC;
-- The value the sweep passes for one argument of a pg_tenant function.
CREATE FUNCTION sectest.arg_value(aname text, atype oid, role name, tenant text, token text) RETURNS text
LANGUAGE sql STABLE AS $$
SELECT CASE atype::regtype::text
  WHEN 'regclass' THEN '''app.docs''::regclass'
  WHEN 'regrole' THEN quote_literal(role) || '::regrole'
  WHEN 'uuid' THEN COALESCE(quote_literal((SELECT id::text FROM tenant_data.tenants WHERE slug = tenant)), 'NULL') || '::uuid'
  WHEN 'jsonb' THEN CASE aname WHEN 'data' THEN '''{"format": "pg_tenant-export-1", "tables": {}}'''
                               WHEN 'limits' THEN '''{"api_calls": {"limit": 1000}}''' ELSE '''{}''' END || '::jsonb'
  WHEN 'bigint' THEN '1'
  WHEN 'integer' THEN '1'
  WHEN 'boolean' THEN 'false'
  WHEN 'timestamp with time zone' THEN 'now()'
  WHEN 'name' THEN quote_literal(CASE aname WHEN 'tenant_column' THEN 'tenant_id' WHEN 'target' THEN 'sweep_clone_' || role
                                            ELSE 'tpl_base' END) || '::name'
  WHEN 'text' THEN quote_literal(CASE aname
      WHEN 'tenant' THEN tenant WHEN 'resource' THEN 'api_calls' WHEN 'token' THEN token
      WHEN 'slug' THEN 'sweep-new-' || replace(role, '_', '-') WHEN 'plan' THEN 'sec' WHEN 'name' THEN 'sec'
      WHEN 'mode' THEN 'count' WHEN 'period' THEN 'none' WHEN 'algorithm' THEN 'HS256'
      WHEN 'version' THEN 'sweep_' || role WHEN 'ddl' THEN 'SELECT 1' WHEN 'isolation' THEN 'shared'
      ELSE 'sweep' END) || '::text'
  ELSE 'NULL::' || atype::regtype::text END
$$;
-- One statement per SQL-callable pg_tenant function the role may execute (required arguments
-- only; tenant.drop last).
CREATE FUNCTION sectest.calls(role name, tenant text, token text) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
WITH f AS (
    SELECT p.proname, p.prokind, p.pronargs - p.pronargdefaults AS nreq, p.proargtypes,
           CASE WHEN p.proargmodes IS NULL THEN p.proargnames
                ELSE ARRAY(SELECT u.n FROM unnest(p.proargnames, p.proargmodes) WITH ORDINALITY AS u(n, m, o)
                            WHERE u.m IN ('i', 'b', 'v') ORDER BY u.o) END AS innames
      FROM pg_proc p
     WHERE p.pronamespace = 'tenant'::regnamespace
       AND has_function_privilege(role, p.oid, 'EXECUTE')
       AND p.prorettype NOT IN ('trigger'::regtype, 'index_am_handler'::regtype, 'event_trigger'::regtype)
       AND NOT ('internal'::regtype = ANY (p.proargtypes::oid[]))
)
SELECT CASE WHEN f.prokind = 'p' THEN 'CALL ' ELSE 'SELECT ' END || 'tenant.' || quote_ident(f.proname) || '('
       || COALESCE((SELECT string_agg(sectest.arg_value(f.innames[i], f.proargtypes[i - 1], role, tenant, token), ', ' ORDER BY i)
                      FROM generate_series(1, f.nreq) i), '') || ');'
  FROM f
 ORDER BY f.proname = 'drop', f.proname, f.nreq
$$;
-- Every view in schema tenant the role may read.
CREATE FUNCTION sectest.views(role name) RETURNS SETOF text LANGUAGE sql STABLE AS $$
SELECT format('SELECT * FROM tenant.%I;', c.relname) FROM pg_class c
 WHERE c.relnamespace = 'tenant'::regnamespace AND c.relkind IN ('v', 'm')
   AND has_table_privilege(role, c.oid, 'SELECT')
 ORDER BY 1
$$;

-- An application function whose plan the backend caches (PL/pgSQL), for the review's parallel
-- and WITH HOLD attacks: its result is computed once and kept by a function scan.
CREATE FUNCTION app.list_projects() RETURNS SETOF text LANGUAGE plpgsql STABLE AS
$$BEGIN RETURN QUERY SELECT title FROM app.projects; END$$;
GRANT EXECUTE ON FUNCTION app.list_projects() TO PUBLIC;
