-- The extension's objects and their definitions, to compare an upgraded database with a fresh one.
SELECT pg_describe_object(classid, objid, objsubid) ||
       COALESCE(' ' || md5(pg_get_functiondef(objid)), '') AS object
  FROM pg_depend d
 WHERE refclassid = 'pg_extension'::regclass
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pg_tenant')
   AND deptype = 'e'
   AND (classid <> 'pg_proc'::regclass OR (SELECT prokind FROM pg_proc WHERE oid = objid) <> 'a')
UNION ALL
SELECT 'column ' || attrelid::regclass || '.' || attname || ' ' || format_type(atttypid, atttypmod)
  FROM pg_attribute WHERE attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'tenant'::regnamespace) AND attnum > 0
UNION ALL
SELECT 'trigger ' || tgrelid::regclass || '.' || tgname FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'tenant'::regnamespace)
ORDER BY 1;
