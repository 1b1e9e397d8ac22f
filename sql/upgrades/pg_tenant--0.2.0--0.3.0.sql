-- pg_tenant 0.2.0 -> 0.3.0 (committed whole; scripts/upgrade.sh checks that an upgraded database
-- equals a fresh 0.3.0 install object for object).
\echo Use "ALTER EXTENSION pg_tenant UPDATE TO '0.3.0'" to load this file. \quit

-- Which tables are protected comes from pg_tenant's own catalog, written by tenant.protect(),
-- no longer from a trigger name anyone can create (a TEMP view with a "tenant_guard" trigger was
-- taken for a protected table). The tables 0.2.0 protected are the permanent tables that carry
-- both the guard trigger and the restrictive policy protect() installed.
CREATE TABLE tenant.protected_relations (
    relid         regclass PRIMARY KEY,
    tenant_column name NOT NULL,
    protected_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant.protected_relations IS 'pg_tenant: the relations tenant.protect() isolated (read tenant.protected_tables)';
SELECT pg_catalog.pg_extension_config_dump('tenant.protected_relations', '');
INSERT INTO tenant.protected_relations (relid, tenant_column)
SELECT c.oid::regclass,
       pg_catalog.encode(pg_catalog.substr(t.tgargs, 1, pg_catalog.position(t.tgargs, '\x00'::bytea) - 1), 'escape')::name
  FROM pg_catalog.pg_trigger t
  JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
 WHERE t.tgname = 'tenant_guard'
   AND t.tgfoid = 'tenant.guard()'::regprocedure
   AND c.relkind IN ('r', 'p')
   AND c.relpersistence <> 't'
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_policy p
                WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation' AND NOT p.polpermissive);

CREATE OR REPLACE VIEW tenant.protected_tables AS
SELECT c.oid::regclass AS table_name,
       r.tenant_column,
       c.relkind = 'p' AS partitioned,
       (SELECT i.inhparent::regclass FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid LIMIT 1) AS parent,
       c.relrowsecurity AS rls_enabled,
       c.relforcerowsecurity AS rls_forced
  FROM tenant.protected_relations r
  JOIN pg_catalog.pg_class c ON c.oid = r.relid::pg_catalog.oid
 WHERE c.relkind IN ('r', 'p')
   AND c.relpersistence <> 't'
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = c.oid AND a.attname = r.tenant_column
                  AND a.atttypid = 'pg_catalog.uuid'::pg_catalog.regtype AND NOT a.attisdropped);

-- The permissive policies protect() and schema tenants install named no extension object, so
-- DROP EXTENSION ... CASCADE dropped only the restrictive one and left every row readable. They
-- now name tenant.current() (the planner still folds them to true): CASCADE drops both, and the
-- tables fail closed.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT p.polrelid::regclass AS rel, p.polname
               FROM pg_catalog.pg_policy p
              WHERE p.polname IN ('tenant_access', 'tenant_schema_access') AND p.polpermissive
                AND pg_catalog.pg_get_expr(p.polqual, p.polrelid) = 'true'
                AND EXISTS (SELECT 1 FROM pg_catalog.pg_policy q
                             WHERE q.polrelid = p.polrelid AND q.polname = 'tenant_isolation' AND NOT q.polpermissive)
    LOOP
        EXECUTE pg_catalog.format('ALTER POLICY %I ON %s USING (tenant."current"(true) IS NULL OR true) WITH CHECK (tenant."current"(true) IS NULL OR true)',
                                  r.polname, r.rel);
    END LOOP;
END
$$;
