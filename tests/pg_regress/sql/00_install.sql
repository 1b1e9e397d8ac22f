-- Installing pg_tenant: schema, objects, privileges, and refusing a prepared schema.
\set SHOW_CONTEXT never
CREATE EXTENSION pg_tenant;
-- The SQL API, with volatility, strictness, parallel safety and who may execute it.
SELECT p.oid::regprocedure AS function,
       p.provolatile AS vol, p.proisstrict AS strict, p.proparallel AS par,
       p.prosecdef AS secdef,
       has_function_privilege('public', p.oid, 'EXECUTE') AS public_exec
  FROM pg_proc p
 WHERE p.pronamespace = 'tenant'::regnamespace
 ORDER BY p.oid::regprocedure::text;
-- Tables and views; only the extension owner reads the registry. The tables (and the views
-- pg_tenant's own code reads) are in schema tenant_data, which PUBLIC may not use: a role that
-- cannot name them cannot lock them either.
SELECT c.oid::regclass, c.relkind,
       has_table_privilege('public', c.oid, 'SELECT') AS public_select
  FROM pg_class c
 WHERE c.relnamespace IN ('tenant'::regnamespace, 'tenant_data'::regnamespace) AND c.relkind IN ('r', 'v')
 ORDER BY c.oid::regclass::text;
SELECT nspname, nspowner::regrole, has_schema_privilege('public', oid, 'USAGE') AS public_usage,
       has_schema_privilege('public', oid, 'CREATE') AS public_create
  FROM pg_namespace WHERE nspname IN ('tenant', 'tenant_data') ORDER BY 1;
-- Configuration tables are kept by pg_dump.
SELECT unnest(extconfig)::regclass::text AS config_table FROM pg_extension WHERE extname = 'pg_tenant' ORDER BY config_table;
-- The schema is the extension's and cannot be moved.
SELECT extrelocatable, extnamespace::regnamespace FROM pg_extension WHERE extname = 'pg_tenant';
-- The tenant parameter exists, is empty, and says how to change it.
SHOW pg_tenant.tenant_id;
SELECT name, setting, context, short_desc FROM pg_settings WHERE name = 'pg_tenant.tenant_id';

-- A schema "tenant" prepared by someone else before CREATE EXTENSION: the install fails.
CREATE DATABASE pg_tenant_planted;
\c pg_tenant_planted
CREATE SCHEMA tenant;
CREATE FUNCTION tenant.current(missing_ok boolean DEFAULT false) RETURNS uuid
    LANGUAGE sql AS $$ SELECT '00000000-0000-0000-0000-000000000000'::uuid $$;
CREATE EXTENSION pg_tenant;
SELECT count(*) AS installed FROM pg_extension WHERE extname = 'pg_tenant';
\c pg_tenant_regress
DROP DATABASE pg_tenant_planted;

-- Every function of schema tenant, whether PUBLIC may execute it and whether it runs with its
-- owner's rights (SECURITY DEFINER). The REVOKE lists (sql/finalize.sql and the module files)
-- decide the first column: a change to them, or a new function, shows up here.
SELECT p.oid::regprocedure AS function,
       p.proacl IS NULL OR EXISTS (SELECT FROM aclexplode(p.proacl) a
                                    WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE') AS public_execute,
       p.prosecdef AS security_definer
  FROM pg_proc p
 WHERE p.pronamespace = 'tenant'::regnamespace
 ORDER BY p.oid::regprocedure::text;
