-- The extension's objects and their definitions, to compare an upgraded database with a fresh one:
-- members with their definitions (functions, views), column types, constraints, triggers
-- (definition and whether they fire under session_replication_role), privileges (functions,
-- relations, the schemas tenant and tenant_data), configuration settings of functions, row security, and the
-- configuration tables with the condition pg_dump applies to their rows.
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
SELECT 'function acl ' || p.oid::regprocedure || ' ' || COALESCE(p.proacl::text, 'default') || ' config=' || COALESCE(p.proconfig::text, '')
  FROM pg_proc p WHERE p.pronamespace = 'tenant'::regnamespace
UNION ALL
SELECT 'relation acl ' || c.oid::regclass || ' ' || COALESCE(c.relacl::text, 'default') || ' rls=' || c.relrowsecurity || '/' || c.relforcerowsecurity
  FROM pg_class c WHERE c.relnamespace IN ('tenant'::regnamespace, 'tenant_data'::regnamespace)
UNION ALL
SELECT 'schema acl ' || nspname || ' ' || COALESCE(nspacl::text, 'default') || ' owner=' || nspowner::regrole || ' ' || COALESCE(obj_description(oid, 'pg_namespace'), '')
  FROM pg_namespace WHERE nspname IN ('tenant', 'tenant_data')
UNION ALL
SELECT 'config table ' || t.config::regclass || ' ' || t.condition
  FROM pg_extension e CROSS JOIN LATERAL unnest(e.extconfig, e.extcondition) AS t(config, condition) WHERE e.extname = 'pg_tenant'
ORDER BY 1;
