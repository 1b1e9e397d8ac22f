-- Protected tables, read from the catalogs (the guard trigger's argument is the tenant column),
-- so the list survives pg_dump/pg_restore and never goes stale when a table is dropped.
CREATE VIEW tenant.protected_tables AS
SELECT c.oid::regclass AS table_name,
       pg_catalog.encode(pg_catalog.substr(t.tgargs, 1, pg_catalog.position(t.tgargs, '\x00'::bytea) - 1), 'escape')::name
           AS tenant_column,
       c.relkind = 'p' AS partitioned,
       (SELECT i.inhparent::regclass FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid LIMIT 1) AS parent,
       c.relrowsecurity AS rls_enabled,
       c.relforcerowsecurity AS rls_forced
  FROM pg_catalog.pg_trigger t
  JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
 WHERE t.tgname = 'tenant_guard'
   AND t.tgfoid = 'tenant.guard()'::regprocedure;
COMMENT ON VIEW tenant.protected_tables IS 'pg_tenant: tables isolated by tenant.protect(), with their partitions and children';
GRANT SELECT ON tenant.protected_tables TO PUBLIC;
