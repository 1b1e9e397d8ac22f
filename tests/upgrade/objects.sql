-- The extension's objects and their definitions, to compare an upgraded database with a fresh one:
-- members with their definitions (functions, views), column types, constraints, triggers
-- (definition and whether they fire under session_replication_role), privileges (functions,
-- relations, the schemas tenant and tenant_data; the extension's initial privileges, which pg_dump
-- leaves out), comments of functions and relations, configuration settings of functions, row
-- security and policies (pg_tenant's own tables have none today), and the configuration tables
-- with the condition pg_dump applies to their rows. The parts of the committed upgrade script
-- copied from sql/*.sql (check.sql, export.sql, ...) are compared here through what they create:
-- function definitions, comments and privileges.
SELECT pg_describe_object(classid, objid, objsubid) ||
       COALESCE(' ' || md5(pg_get_functiondef(objid)), '') ||
       CASE WHEN classid = 'pg_class'::regclass THEN COALESCE(' ' || md5(pg_get_viewdef(objid)), '') ELSE '' END AS object
  FROM pg_depend d
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_tenant')
   AND deptype = 'e'
   AND (classid <> 'pg_proc'::regclass OR (SELECT prokind FROM pg_proc WHERE oid = objid) <> 'a')
UNION ALL
SELECT 'column ' || attrelid::regclass || '.' || attname || ' ' || format_type(atttypid, atttypmod) ||
       ' notnull=' || attnotnull || COALESCE(' default=' || pg_get_expr(d.adbin, d.adrelid), '')
  FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE attrelid IN (SELECT oid FROM pg_class WHERE relnamespace IN ('tenant'::regnamespace, 'tenant_data'::regnamespace)) AND attnum > 0 AND NOT attisdropped
UNION ALL
SELECT 'constraint ' || conrelid::regclass || '.' || conname || ' ' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace IN ('tenant'::regnamespace, 'tenant_data'::regnamespace)
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(oid) || ' enabled=' || tgenabled::text FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace IN ('tenant'::regnamespace, 'tenant_data'::regnamespace))
UNION ALL
SELECT 'function acl ' || p.oid::regprocedure || ' ' || COALESCE(p.proacl::text, 'default') || ' config=' || COALESCE(p.proconfig::text, '') ||
       ' comment=' || COALESCE(obj_description(p.oid, 'pg_proc'), '')
  FROM pg_proc p WHERE p.pronamespace = 'tenant'::regnamespace
UNION ALL
SELECT 'relation acl ' || c.oid::regclass || ' ' || COALESCE(c.relacl::text, 'default') || ' rls=' || c.relrowsecurity || '/' || c.relforcerowsecurity ||
       ' comment=' || COALESCE(obj_description(c.oid, 'pg_class'), '')
  FROM pg_class c WHERE c.relnamespace IN ('tenant'::regnamespace, 'tenant_data'::regnamespace)
UNION ALL
SELECT 'schema acl ' || nspname || ' ' || COALESCE(nspacl::text, 'default') || ' owner=' || nspowner::regrole || ' ' || COALESCE(obj_description(oid, 'pg_namespace'), '')
  FROM pg_namespace WHERE nspname IN ('tenant', 'tenant_data')
UNION ALL
SELECT 'policy ' || polrelid::regclass || '.' || polname || ' cmd=' || polcmd::text || ' permissive=' || polpermissive ||
       ' roles=' || polroles::regrole[]::text || ' using=' || COALESCE(pg_get_expr(polqual, polrelid), '') ||
       ' check=' || COALESCE(pg_get_expr(polwithcheck, polrelid), '')
  FROM pg_policy WHERE polrelid IN (SELECT oid FROM pg_class WHERE relnamespace IN ('tenant'::regnamespace, 'tenant_data'::regnamespace))
UNION ALL
SELECT 'initial privileges ' || pg_describe_object(classoid, objoid, objsubid) || ' ' || privtype::text || ' ' || initprivs::text
  FROM pg_init_privs
 WHERE (classoid, objoid) IN (SELECT classid, objid FROM pg_depend
                               WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
                                 AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_tenant'))
    OR (classoid = 'pg_namespace'::regclass AND objoid IN ('tenant'::regnamespace, 'tenant_data'::regnamespace))
UNION ALL
SELECT 'config table ' || t.config::regclass || ' ' || t.condition
  FROM pg_extension e CROSS JOIN LATERAL unnest(e.extconfig, e.extcondition) AS t(config, condition) WHERE e.extname = 'pg_tenant'
ORDER BY 1;
