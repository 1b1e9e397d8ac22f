-- Whether a table is a Citus table (false where Citus is not installed: its catalogs exist only
-- there). Added in 0.3.0.
CREATE FUNCTION tenant_data.is_citus_table(rel pg_catalog.regclass)
RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found boolean;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) $1)'
       INTO found USING rel;
    RETURN found;
END
$$;
REVOKE EXECUTE ON FUNCTION tenant_data.is_citus_table(pg_catalog.regclass) FROM PUBLIC;

-- The checker's findings for Citus (none where Citus is not installed): its catalogs exist only
-- there, so they are read with EXECUTE. Added in 0.3.0.
CREATE FUNCTION tenant_data.citus_findings()
RETURNS TABLE (severity text, object text, problem text, fix text)
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    node record;
    here text;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'citus') THEN
        RETURN;
    END IF;
    -- The registry tables workers need are reference tables (tenant.citus_setup()).
    RETURN QUERY EXECUTE $q$
        SELECT 'high'::text, ('tenant_data.' OPERATOR(pg_catalog.||) t)::text,
               'not a Citus reference table: the workers cannot verify tokens or know the tenants'::text,
               'SELECT tenant.citus_setup();'::text
          FROM pg_catalog.unnest('{tenants,plans,limit_overrides,signing_keys,node_key}'::text[]) t
         WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition
                            WHERE logicalrelid OPERATOR(pg_catalog.=) ('tenant_data.' OPERATOR(pg_catalog.||) t)::pg_catalog.regclass
                              AND partmethod OPERATOR(pg_catalog.=) 'n')$q$;
    -- A protected table with the policies protect() makes without Citus: on the shards, Citus
    -- makes them all permissive, and tenant_access then admits every row.
    RETURN QUERY
        SELECT 'high'::text, p.table_name::text,
               'protected before Citus was installed (a RESTRICTIVE tenant_isolation or a tenant_access policy): distributed, its shards would admit every row'::text,
               pg_catalog.format('SELECT tenant.protect(%L, %L%s);', p.table_name::text, p.tenant_column,
                                 CASE WHEN p.shared_rows THEN ', shared_rows => true' ELSE '' END)
          FROM tenant_data.protected_tables p
         WHERE EXISTS (SELECT FROM pg_catalog.pg_policy po
                        WHERE po.polrelid OPERATOR(pg_catalog.=) p.table_name::pg_catalog.oid
                          AND (po.polname OPERATOR(pg_catalog.=) 'tenant_access'
                               OR (po.polname OPERATOR(pg_catalog.=) 'tenant_isolation' AND NOT po.polpermissive)));
    -- A protected hash-distributed table distributed by another column than its tenant column.
    RETURN QUERY EXECUTE $q$
        SELECT 'medium'::text, p.table_name::text,
               pg_catalog.format('distributed by column %I, not by its tenant column %I: each tenant''s rows are on every shard, and every query reaches all of them',
                                 pg_catalog.column_to_column_name(d.logicalrelid, d.partkey), p.tenant_column),
               pg_catalog.format('SELECT undistribute_table(%L); SELECT create_distributed_table(%L, %L);',
                                 p.table_name::text, p.table_name::text, p.tenant_column)
          FROM tenant_data.protected_tables p
          JOIN pg_catalog.pg_dist_partition d ON d.logicalrelid OPERATOR(pg_catalog.=) p.table_name
         WHERE d.partmethod OPERATOR(pg_catalog.=) 'h'
           AND pg_catalog.column_to_column_name(d.logicalrelid, d.partkey) OPERATOR(pg_catalog.<>) p.tenant_column::text$q$;
    -- Loaded on demand, a session's statements planned before pg_tenant loads miss its planner
    -- hook: unrouted, and open to Citus's crash on joins of filtered tables (citus_setup() makes
    -- each session load it at its start). Read only where the settings may be read.
    IF pg_catalog.pg_has_role(CURRENT_USER, 'pg_read_all_settings', 'USAGE')
       AND NOT EXISTS (SELECT FROM pg_catalog.unnest(pg_catalog.string_to_array(
                           pg_catalog.current_setting('shared_preload_libraries') OPERATOR(pg_catalog.||) ','
                           OPERATOR(pg_catalog.||) pg_catalog.current_setting('session_preload_libraries'), ',')) l
                        WHERE pg_catalog.btrim(l, ' "') OPERATOR(pg_catalog.=) ANY ('{pg_tenant,$libdir/pg_tenant}'::text[])) THEN
        severity := 'high';
        object := pg_catalog.format('database %I', pg_catalog.current_database());
        problem := 'pg_tenant is neither preloaded nor loaded at each session''s start: a session''s statements before it loads are not routed, and a join of filtered tables can crash the Citus coordinator';
        fix := 'SELECT tenant.citus_setup();';
        RETURN NEXT;
    END IF;
    -- A node without the signing keys or the node key this node has (one added before its
    -- reference tables were copied to it, say).
    here := (SELECT pg_catalog.md5(pg_catalog.concat(
                 (SELECT pg_catalog.string_agg(algorithm OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) key, ',' ORDER BY algorithm) FROM tenant_data.signing_keys),
                 '|', (SELECT secret FROM tenant_data.node_key))));
    FOR node IN EXECUTE $q$
        SELECT nodename, nodeport, success, result
          FROM pg_catalog.run_command_on_workers($c$SELECT pg_catalog.md5(pg_catalog.concat(
                 (SELECT pg_catalog.string_agg(algorithm OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||) key, ',' ORDER BY algorithm) FROM tenant_data.signing_keys),
                 '|', (SELECT secret FROM tenant_data.node_key)))$c$)$q$ LOOP
        IF NOT node.success OR node.result IS DISTINCT FROM here THEN
            severity := 'high';
            object := pg_catalog.format('node %s:%s', node.nodename, node.nodeport);
            problem := 'does not have the signing keys or the node key this node has: tokens and tenant.set_local() fail there';
            fix := 'SELECT replicate_reference_tables();';
            RETURN NEXT;
        END IF;
    END LOOP;
END
$$;
REVOKE EXECUTE ON FUNCTION tenant_data.citus_findings() FROM PUBLIC;

-- The isolation checker: where a tenancy setup is weak. Added in 0.2.0.
-- One row per finding; a clean setup returns none. Each finding is described in docs/reference.md.
CREATE OR REPLACE FUNCTION tenant.check()
RETURNS TABLE (severity text, object text, problem text, fix text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
WITH protected AS (  -- with the protect() call that installs it again (shared_rows kept)
    SELECT p.table_name::oid AS relid, p.table_name, p.tenant_column, p.parent, p.shared_rows,
           format('SELECT tenant.protect(%L, %L%s);', p.table_name::text, p.tenant_column,
                  CASE WHEN p.shared_rows THEN ', shared_rows => true' ELSE '' END) AS protect_call
      FROM tenant_data.protected_tables p
),
tree AS (  -- every relation below a protected table, protected or not
    WITH RECURSIVE t(relid, root, tenant_column, protect_call) AS (
        SELECT relid, relid, tenant_column, protect_call FROM protected
        UNION
        SELECT i.inhrelid, t.root, t.tenant_column, t.protect_call FROM pg_inherits i JOIN t ON i.inhparent = t.relid)
    SELECT * FROM t
),
app_roles AS (  -- roles that may act as tenants
    SELECT g.role::oid AS roleid FROM tenant_data.gateways g
    UNION
    SELECT a.role::oid FROM tenant_data.tenant_access a
),
app_tables AS (
    SELECT c.oid, c.relname, c.relkind, c.relowner, c.relacl
      FROM pg_class c
     WHERE c.relkind IN ('r', 'p', 'v', 'm')
       AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'tenant'::regnamespace, 'tenant_data'::regnamespace)
       AND c.relnamespace::regnamespace::text NOT LIKE 'pg\_%'
)
SELECT * FROM (
-- 1. A table with a tenant-like uuid column that is not protected.
SELECT 'high', c.oid::regclass::text, format('column %I looks like a tenant column but the table is not protected', a.attname),
       format('SELECT tenant.protect(%L, %L);', c.oid::regclass::text, a.attname)
  FROM app_tables c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'p') AND a.atttypid = 'uuid'::regtype AND a.attname ~ '^(tenant|tenant_id|org|org_id|organization_id|account_id)$'
   AND c.oid NOT IN (SELECT relid FROM tree)
UNION ALL
-- 2. A protected table that lost part of what protect() installed.
-- The write guard missing or not firing (disabled, or for replication sessions only).
SELECT 'high', p.table_name::text,
       'the write guard trigger tenant_guard is missing or disabled: writes are not refused for a suspended tenant, a read-only grant or no tenant',
       CASE WHEN EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = p.relid AND t.tgname = 'tenant_guard')
            THEN format('ALTER TABLE %s ENABLE TRIGGER tenant_guard;', p.table_name)
            ELSE p.protect_call END
  FROM protected p
 WHERE NOT EXISTS (SELECT 1 FROM pg_trigger t
                    WHERE t.tgrelid = p.relid AND t.tgname = 'tenant_guard' AND t.tgenabled IN ('O', 'A'))
UNION ALL
SELECT 'high', p.table_name::text, 'row-level security is not enabled or not forced', p.protect_call
  FROM protected p JOIN pg_class c ON c.oid = p.relid
 WHERE NOT (c.relrowsecurity AND c.relforcerowsecurity)
UNION ALL
SELECT 'high', p.table_name::text, 'the tenant_isolation policy is missing', p.protect_call
  FROM protected p
 WHERE NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = p.relid AND polname = 'tenant_isolation')
UNION ALL
-- With shared_rows: tenants may update or delete the shared rows without these two.
SELECT 'high', p.table_name::text, format('the %s policy of a table with shared rows is missing: tenants may %s its shared rows', w.polname, w.verb),
       p.protect_call
  FROM protected p CROSS JOIN (VALUES ('tenant_shared_update', 'update'), ('tenant_shared_delete', 'delete')) w(polname, verb)
 WHERE p.shared_rows
   -- (RESTRICTIVE, or PERMISSIVE where Citus is installed: see tenant.protect())
   AND NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = p.relid AND polname = w.polname
                      AND polpermissive = EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus'))
UNION ALL
SELECT 'medium', p.table_name::text, format('no index leads with the tenant column %I: every query scans other tenants'' rows', p.tenant_column),
       format('CREATE INDEX ON %s (%I);', p.table_name, p.tenant_column)
  FROM protected p
 WHERE NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                    WHERE i.indrelid = p.relid AND a.attname = p.tenant_column)
UNION ALL
-- 3. A partition or inheritance child that is not filtered when queried directly. (Under a
-- Citus table, protect() of the table itself is refused: the child is protected alone.)
SELECT 'high', t.relid::regclass::text, format('partition or child of protected table %s is not protected: querying it directly is not filtered', t.root::regclass),
       CASE WHEN tenant_data.is_citus_table(t.root)
            THEN format('SELECT tenant.protect(%L, %L);', t.relid::regclass::text, t.tenant_column)
            ELSE t.protect_call END
  FROM tree t
 WHERE t.relid NOT IN (SELECT relid FROM protected)
UNION ALL
-- 4. A foreign key between protected tables that does not pair the two tenant columns: its
-- checks and cascades bypass row security (a row may reference, and a cascade delete, another
-- tenant's rows; a failed insert reveals another tenant's keys).
SELECT 'high', format('%s (%s)', con.conrelid::regclass, con.conname),
       format('foreign key to %s does not pair the tenant columns: its checks and cascades cross tenants', con.confrelid::regclass),
       format('ALTER TABLE %s ADD UNIQUE (%I, ...referenced columns); ALTER TABLE %s DROP CONSTRAINT %I, ADD FOREIGN KEY (%I, ...) REFERENCES %s (%I, ...);',
              con.confrelid::regclass, dst.tenant_column, con.conrelid::regclass, con.conname, src.tenant_column,
              con.confrelid::regclass, dst.tenant_column)
  FROM pg_constraint con
  JOIN protected src ON src.relid = con.conrelid
  JOIN protected dst ON dst.relid = con.confrelid
 WHERE con.contype = 'f' AND con.conparentid = 0
   AND NOT EXISTS (SELECT 1 FROM unnest(con.conkey, con.confkey) k(a, b)
                     JOIN pg_attribute sa ON sa.attrelid = con.conrelid AND sa.attnum = k.a
                     JOIN pg_attribute da ON da.attrelid = con.confrelid AND da.attnum = k.b
                    WHERE sa.attname = src.tenant_column AND da.attname = dst.tenant_column)
UNION ALL
-- 5. A unique constraint of a protected table without the tenant column.
SELECT 'low', format('%s (%s)', i.indrelid::regclass, i.indexrelid::regclass),
       'unique index without the tenant column: its violation errors reveal that a key exists in another tenant',
       'Include the tenant column in the unique key if keys need only be unique per tenant.'
  FROM pg_index i JOIN protected p ON p.relid = i.indrelid
 WHERE i.indisunique
   AND NOT EXISTS (SELECT 1 FROM unnest(i.indkey) k JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k
                    WHERE a.attname = p.tenant_column)
UNION ALL
-- 6. A view that reads a protected table with its owner's rights, or a materialized view of one.
SELECT 'high', v.oid::regclass::text,
       CASE WHEN v.relkind = 'm'
            THEN format('materialized view over protected table %s holds every tenant''s rows, unfiltered', d.refobjid::regclass)
            ELSE format('view over protected table %s runs as its owner (no security_invoker): the owner''s rights decide what it shows', d.refobjid::regclass) END,
       CASE WHEN v.relkind = 'm' THEN 'Replace it with a protected table, or do not grant it to application roles.'
            ELSE format('ALTER VIEW %s SET (security_invoker = true);', v.oid::regclass) END
  FROM app_tables v
  JOIN pg_rewrite r ON r.ev_class = v.oid
  JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
 WHERE v.relkind IN ('v', 'm')
   AND d.refobjid IN (SELECT relid FROM tree)
   AND (v.relkind = 'm' OR NOT COALESCE((SELECT option_value::boolean FROM pg_options_to_table(
            (SELECT reloptions FROM pg_class WHERE oid = v.oid)) WHERE option_name = 'security_invoker'), false))
 GROUP BY v.oid, v.relkind, d.refobjid
UNION ALL
-- 7. SECURITY DEFINER functions: reading protected tables, or without a pinned search_path.
SELECT 'medium', f.oid::regprocedure::text, 'SECURITY DEFINER function without SET search_path: objects planted in the caller''s search_path can capture it',
       format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp;', f.oid::regprocedure)
  FROM pg_proc f
 WHERE f.prosecdef AND f.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
   AND NOT EXISTS (SELECT 1 FROM unnest(f.proconfig) c WHERE c LIKE 'search_path=%')
UNION ALL
SELECT 'high', f.oid::regprocedure::text, format('SECURITY DEFINER function mentions protected table %s: it reads it with its owner''s rights', p.table_name),
       'Make it SECURITY INVOKER, or make sure its owner is subject to row-level security.'
  FROM pg_proc f JOIN protected p ON f.prosrc ~* ('\m' || (SELECT relname FROM pg_class WHERE oid = p.relid) || '\M')
 WHERE f.prosecdef AND f.pronamespace NOT IN ('pg_catalog'::regnamespace, 'tenant'::regnamespace)
UNION ALL
-- 8. Login roles that bypass row-level security (other than the bootstrap superuser).
SELECT 'medium', r.rolname::text, CASE WHEN r.rolsuper THEN 'login role is a superuser: row-level security does not filter it'
                                        ELSE 'login role has BYPASSRLS: row-level security does not filter it' END,
       format('ALTER ROLE %I NOSUPERUSER NOBYPASSRLS;', r.rolname)
  FROM pg_roles r
 WHERE r.rolcanlogin AND (r.rolsuper OR r.rolbypassrls) AND r.oid <> 10
UNION ALL
-- 9. A role that owns a protected table and can log in.
SELECT 'medium', p.table_name::text, format('owned by login role %I, which can disable row-level security or drop the policies', r.rolname),
       format('ALTER TABLE %s OWNER TO a role that does not log in;', p.table_name)
  FROM protected p JOIN pg_class c ON c.oid = p.relid JOIN pg_roles r ON r.oid = c.relowner
 WHERE r.rolcanlogin AND r.oid <> 10
UNION ALL
-- 10. SET granted on the tenant parameter (pg_tenant refuses it anyway, but the grant says someone tried).
SELECT DISTINCT 'low', 'parameter ' || pa.parname, format('SET or ALTER SYSTEM is granted on it to %s', a.grantee::regrole),
       format('REVOKE ALL ON PARAMETER %s FROM %s;', pa.parname, a.grantee::regrole)
  FROM pg_parameter_acl pa CROSS JOIN LATERAL aclexplode(pa.paracl) a
 WHERE pa.parname LIKE 'pg_tenant.%' AND a.grantee <> 0
   AND NOT (SELECT rolsuper FROM pg_roles WHERE oid = a.grantee)
UNION ALL
-- 11. TRUNCATE granted on a protected table (refused by the guard trigger, but a sign of broad grants).
SELECT 'low', p.table_name::text, format('TRUNCATE is granted to %s', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END),
       format('REVOKE TRUNCATE ON %s FROM %s;', p.table_name, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END)
  FROM protected p JOIN pg_class c ON c.oid = p.relid CROSS JOIN LATERAL aclexplode(c.relacl) a
 WHERE a.privilege_type = 'TRUNCATE' AND a.grantee <> c.relowner
UNION ALL
-- 12. A foreign key from an unprotected table into a protected one: a referencing row blocks
-- tenant.drop() of its tenant (the erasure fails), and the key's checks read across tenants.
SELECT 'medium', format('%s (%s)', con.conrelid::regclass, con.conname),
       format('foreign key from unprotected table %s into protected table %s: a row referencing a tenant''s row blocks tenant.drop() of that tenant',
              con.conrelid::regclass, con.confrelid::regclass),
       format('SELECT tenant.protect(%L, ...); with a foreign key that pairs the tenant columns (see docs/reference.md, composite foreign keys), or make it ON DELETE CASCADE / SET NULL', con.conrelid::regclass::text)
  FROM pg_constraint con
 WHERE con.contype = 'f' AND con.conparentid = 0
   AND con.confrelid IN (SELECT relid FROM protected)
   AND con.conrelid NOT IN (SELECT relid FROM tree)
UNION ALL
-- 13. A role that may act as tenants but lacks what its protected tables need.
SELECT 'medium', p.table_name::text,
       format('role %s may act as tenants and has privileges on it, but no USAGE on its schema %I', r.roleid::regrole, n.nspname),
       format('GRANT USAGE ON SCHEMA %I TO %s;', n.nspname, r.roleid::regrole)
  FROM protected p JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace
 CROSS JOIN app_roles r
 WHERE has_table_privilege(r.roleid, p.relid, 'SELECT, INSERT, UPDATE, DELETE')
   AND NOT has_schema_privilege(r.roleid, n.oid, 'USAGE')
UNION ALL
SELECT 'medium', p.table_name::text,
       format('role %s may insert into it but may not use sequence %s of column %I: its inserts fail', r.roleid::regrole, s.oid::regclass, a.attname),
       format('GRANT USAGE ON SEQUENCE %s TO %s;', s.oid::regclass, r.roleid::regrole)
  FROM protected p CROSS JOIN app_roles r
  JOIN pg_depend d ON d.refobjid = p.relid AND d.refclassid = 'pg_class'::regclass AND d.classid = 'pg_class'::regclass AND d.deptype = 'a'
  JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
  JOIN pg_attribute a ON a.attrelid = p.relid AND a.attnum = d.refobjsubid
 WHERE has_table_privilege(r.roleid, p.relid, 'INSERT')
   AND NOT has_sequence_privilege(r.roleid, s.oid, 'USAGE')
UNION ALL
SELECT 'low', r.roleid::regrole::text, 'may act as tenants but has no privilege on any protected table',
       format('GRANT SELECT, INSERT, UPDATE, DELETE ON <the protected tables it uses> TO %s;', r.roleid::regrole)
  FROM app_roles r
 WHERE EXISTS (SELECT 1 FROM protected)
   AND NOT EXISTS (SELECT 1 FROM protected p WHERE has_table_privilege(r.roleid, p.relid, 'SELECT, INSERT, UPDATE, DELETE'))
UNION ALL
-- 14. On Citus (tenant_data.citus_findings above).
SELECT * FROM tenant_data.citus_findings()
) AS findings (severity, object, problem, fix)
ORDER BY CASE severity WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, object, problem
$$;
COMMENT ON FUNCTION tenant.check() IS 'pg_tenant: findings about weak spots of the tenancy setup (none for a clean setup)';
REVOKE EXECUTE ON FUNCTION tenant.check() FROM PUBLIC;
