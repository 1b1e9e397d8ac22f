-- Which tables tenant.protect() isolated: written only by protect()/unprotect() (and by schema
-- tenant provisioning for the copies of protected template tables), never inferred from names,
-- triggers or comments that others can create. Dumped with its rows (by name: regclass), so the
-- list survives pg_dump/pg_restore; a row of a relation dropped since is left out (a regclass
-- that names no relation is written as its bare oid, which a restore would take for whichever
-- relation has that oid there).
CREATE TABLE tenant_data.protected_relations (
    relid         regclass PRIMARY KEY,
    tenant_column name NOT NULL,
    protected_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    shared_rows   boolean NOT NULL DEFAULT false  -- rows without a tenant are read by every tenant
);
COMMENT ON TABLE tenant_data.protected_relations IS 'pg_tenant: the relations tenant.protect() isolated (read tenant.protected_tables)';
SELECT pg_catalog.pg_extension_config_dump('tenant_data.protected_relations',
    'WHERE EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) protected_relations.relid::pg_catalog.oid)');

-- The registered relations that still are what protect() made: a permanent table or partitioned
-- table whose tenant column is a uuid. A relation dropped since, a temporary relation or a view
-- is never listed. shared_rows: protect(..., shared_rows => true), rows without a tenant are
-- shared reference rows every tenant reads.
CREATE VIEW tenant_data.protected_tables AS
SELECT c.oid::regclass AS table_name,
       r.tenant_column,
       c.relkind = 'p' AS partitioned,
       (SELECT i.inhparent::regclass FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid LIMIT 1) AS parent,
       c.relrowsecurity AS rls_enabled,
       c.relforcerowsecurity AS rls_forced,
       r.shared_rows
  FROM tenant_data.protected_relations r
  JOIN pg_catalog.pg_class c ON c.oid = r.relid::pg_catalog.oid
 WHERE c.relkind IN ('r', 'p')
   AND c.relpersistence <> 't'
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                WHERE a.attrelid = c.oid AND a.attname = r.tenant_column
                  AND a.atttypid = 'pg_catalog.uuid'::pg_catalog.regtype AND NOT a.attisdropped);
-- pg_tenant's own code reads tenant_data.protected_tables; tenant.protected_tables, the one others
-- read, selects from it. A role that can name a view can queue an ACCESS EXCLUSIVE lock on it
-- (CREATE RULE locks before it checks ownership): such a queue then holds up only readers of
-- the public view, never protect(), attach_quota() or the write paths.
CREATE VIEW tenant.protected_tables AS
SELECT table_name, tenant_column, partitioned, parent, rls_enabled, rls_forced, shared_rows
  FROM tenant_data.protected_tables;
COMMENT ON VIEW tenant.protected_tables IS 'pg_tenant: tables isolated by tenant.protect(), with their partitions and children';
GRANT SELECT ON tenant.protected_tables TO PUBLIC;

-- In a database with Citus, protect() gives a table permissive policies only, because Citus turns
-- every policy into a permissive one on the shards: there, any other permissive policy beside
-- the permissive tenant_isolation (tenant_schema_isolation for a schema tenant's table) would
-- admit other tenants' rows. This event trigger refuses every CREATE/ALTER POLICY (on any node,
-- Citus's own shard DDL included) that leaves such a relation with another permissive policy: an
-- application's policy on a protected table, a table protected before Citus was installed
-- (whose tenant_access Citus copies to the shards) being distributed, a schema tenant's schema
-- being distributed. It runs as whoever ran the DDL, reads only pg_catalog, and does nothing
-- where Citus is not installed.
CREATE FUNCTION tenant_data.citus_policy_guard() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rel pg_catalog.oid;
    others text;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RETURN;
    END IF;
    FOR rel IN SELECT DISTINCT p.polrelid
                 FROM pg_catalog.pg_event_trigger_ddl_commands() c
                 JOIN pg_catalog.pg_policy p ON p.oid OPERATOR(pg_catalog.=) c.objid
                WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_policy'::pg_catalog.regclass LOOP
        CONTINUE WHEN NOT EXISTS (
            SELECT FROM pg_catalog.pg_policy
             WHERE polrelid OPERATOR(pg_catalog.=) rel AND polpermissive
               AND polname OPERATOR(pg_catalog.=) ANY ('{tenant_isolation,tenant_schema_isolation}'::pg_catalog.name[]));
        SELECT pg_catalog.string_agg(pg_catalog.quote_ident(polname), ', ' ORDER BY polname) INTO others
          FROM pg_catalog.pg_policy
         WHERE polrelid OPERATOR(pg_catalog.=) rel AND polpermissive
           AND NOT polname OPERATOR(pg_catalog.=) ANY ('{tenant_isolation,tenant_schema_isolation,tenant_shared_insert,tenant_shared_update,tenant_shared_delete}'::pg_catalog.name[]);
        IF others IS NOT NULL THEN
            RAISE EXCEPTION 'a table isolated by pg_tenant in a database with Citus can have no other permissive policy'
                USING ERRCODE = '0A000',
                      DETAIL = pg_catalog.format('Table %s would have the permissive policies tenant_isolation and %s. Citus makes every policy permissive on the shards, where any other one admits other tenants'' rows.', rel::pg_catalog.regclass, others),
                      HINT = 'Drop the other policy (an application''s own policy cannot narrow a protected table on Citus). A table protected before Citus was installed: run tenant.protect() on it again before distributing it. A schema tenant''s schema cannot be distributed.';
        END IF;
    END LOOP;
END
$$;
REVOKE EXECUTE ON FUNCTION tenant_data.citus_policy_guard() FROM PUBLIC;
CREATE EVENT TRIGGER tenant_citus_policy_guard ON ddl_command_end
    WHEN TAG IN ('CREATE POLICY', 'ALTER POLICY')
    EXECUTE FUNCTION tenant_data.citus_policy_guard();
-- Also under session_replication_role = replica.
ALTER EVENT TRIGGER tenant_citus_policy_guard ENABLE ALWAYS;
