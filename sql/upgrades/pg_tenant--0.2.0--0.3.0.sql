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

-- tenant.import() writes only where tenant.export() reads (never into another tenant's schema, an
-- unprotected table or a partition of a protected one), and restores limits and usage only when
-- asked (restore_quotas), checked (security issue, item 14).
DROP FUNCTION tenant.import(text, jsonb);
-- Loads an export into an existing tenant that has no rows yet: rows get the target tenant's id;
-- with restore_quotas, its own limits (each as tenant.set_limit sets it) and usage are restored
-- from the document. Triggers (the write guard, quota triggers, foreign-key checks) are off while
-- loading, so it needs a superuser and does all or nothing. It writes only where tenant.export
-- reads: the shared protected tables (through their roots; never a table of a tenant schema) and
-- the target's own schema.
CREATE FUNCTION tenant.import(tenant text, data jsonb, restore_quotas boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    target uuid;
    r record;
    tbl regclass;
    col name;
    root regclass;
    owner_slug text;
    existing bigint;
    counts jsonb := '{}';
    own name;
    seen regclass[] := '{}';
BEGIN
    IF tenant IS NULL OR data IS NULL OR restore_quotas IS NULL THEN
        RAISE EXCEPTION 'argument "%" must not be NULL',
            CASE WHEN tenant IS NULL THEN 'tenant' WHEN data IS NULL THEN 'data' ELSE 'restore_quotas' END
            USING ERRCODE = '22004';
    END IF;
    IF data->>'format' IS DISTINCT FROM 'pg_tenant-export-1' OR jsonb_typeof(data->'tables') IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'invalid value for argument "data": not a pg_tenant export (format pg_tenant-export-1)'
            USING ERRCODE = '22023';
    END IF;
    SELECT x.id, x.schema_name INTO target, own FROM tenant.tenants x
     WHERE x.slug = import.tenant OR x.id::text = lower(import.tenant);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant "%" does not exist', tenant USING ERRCODE = 'PT002';
    END IF;
    -- Every table must be a shared protected table, as tenant.export lists them, and the tenant
    -- must have no rows in it yet.
    FOR r IN SELECT key AS name, value AS rows FROM jsonb_each(data->'tables') LOOP
        tbl := to_regclass(r.name);
        SELECT p.tenant_column, p.parent INTO col, root FROM tenant.protected_tables p WHERE p.table_name = tbl;
        IF tbl IS NULL OR col IS NULL THEN
            RAISE EXCEPTION 'table % of the export is not a protected table here', r.name USING ERRCODE = '42809';
        END IF;
        SELECT x.slug INTO owner_slug FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN tenant.tenants x ON x.schema_name = n.nspname WHERE c.oid = tbl;
        IF FOUND THEN
            RAISE EXCEPTION 'table % of the export belongs to the schema of tenant "%"', tbl, owner_slug
                USING ERRCODE = '42501',
                      HINT = 'import() writes only into the importing tenant''s own tables: a schema tenant''s tables come in the export''s "schema" part, into its own schema.';
        END IF;
        IF root IS NOT NULL AND root IN (SELECT p.table_name FROM tenant.protected_tables p) THEN
            RAISE EXCEPTION 'table % of the export is a partition or child of protected table %', tbl, root
                USING ERRCODE = '42809', HINT = 'An export holds a protected table''s rows through its root.';
        END IF;
        IF jsonb_typeof(r.rows) IS DISTINCT FROM 'array' THEN
            RAISE EXCEPTION 'invalid value for argument "data": the rows of table % are not an array', tbl
                USING ERRCODE = '22023';
        END IF;
        IF tbl = ANY (seen) THEN
            RAISE EXCEPTION 'invalid value for argument "data": table % is named twice', tbl USING ERRCODE = '22023';
        END IF;
        seen := seen || tbl;
        EXECUTE format('SELECT count(*) FROM %s WHERE %I = $1', tbl, col) INTO existing USING target;
        IF existing > 0 THEN
            RAISE EXCEPTION 'tenant "%" already has % row(s) in %', tenant, existing, tbl
                USING ERRCODE = '55000', HINT = 'Import into a new, empty tenant.';
        END IF;
    END LOOP;
    IF data ? 'schema' AND own IS NULL THEN
        RAISE EXCEPTION 'the export holds a tenant schema but tenant "%" has none', tenant
            USING ERRCODE = '42809', HINT = 'Import into a tenant created with isolation => ''schema'' from the same template.';
    END IF;
    -- Limits and usage only when asked, each checked: limits as tenant.set_limit checks them
    -- (it sets them below), usage a non-negative count of a named resource.
    IF restore_quotas THEN
        IF jsonb_typeof(coalesce(data->'limits', '[]')) <> 'array' OR jsonb_typeof(coalesce(data->'usage', '[]')) <> 'array' THEN
            RAISE EXCEPTION 'invalid value for argument "data": "limits" and "usage" must be arrays' USING ERRCODE = '22023';
        END IF;
        FOR r IN SELECT u.resource, u.period_start, u.used
                   FROM jsonb_to_recordset(coalesce(data->'usage', '[]')) AS u(resource text, period_start timestamptz, used bigint)
        LOOP
            IF r.resource IS NULL OR r.resource = '' OR r.period_start IS NULL OR r.used IS NULL THEN
                RAISE EXCEPTION 'invalid value for argument "data": a usage entry needs a resource, a period_start and used'
                    USING ERRCODE = '22023';
            END IF;
            IF r.used < 0 THEN
                RAISE EXCEPTION 'invalid value for argument "data": usage of "%" must not be negative (%)', r.resource, r.used
                    USING ERRCODE = '22023';
            END IF;
        END LOOP;
    END IF;
    SET LOCAL session_replication_role = replica;
    FOR r IN SELECT key AS name, value AS rows FROM jsonb_each(data->'tables') LOOP
        tbl := to_regclass(r.name);
        counts := counts || jsonb_build_object(tbl::text, tenant.import_rows(tbl, r.rows, target));
    END LOOP;
    -- A schema tenant's own tables, into the target's schema (which must have them, empty), as
    -- tenant.export_schema lists them.
    IF data ? 'schema' THEN
        FOR r IN SELECT key AS name, value AS rows FROM jsonb_each(data->'schema'->'tables') LOOP
            SELECT c.oid INTO tbl FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = own AND c.relname = r.name AND c.relkind IN ('r', 'p') AND NOT c.relispartition;
            IF NOT FOUND THEN
                RAISE EXCEPTION 'table % of the export does not exist in schema %', r.name, own USING ERRCODE = '42P01';
            END IF;
            EXECUTE format('SELECT count(*) FROM %s', tbl) INTO existing;
            IF existing > 0 THEN
                RAISE EXCEPTION 'tenant "%" already has % row(s) in %', tenant, existing, tbl
                    USING ERRCODE = '55000', HINT = 'Import into a new, empty tenant.';
            END IF;
            counts := counts || jsonb_build_object(tbl::text, tenant.import_rows(tbl, r.rows, target));
        END LOOP;
        FOR r IN SELECT c.oid::regclass AS seq, s.value AS position
                   FROM jsonb_each(data->'schema'->'sequences') s
                   JOIN pg_class c ON c.relname = s.key AND c.relkind = 'S'
                   JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = own
        LOOP
            PERFORM setval(r.seq, (r.position->>'last_value')::bigint, (r.position->>'is_called')::boolean);
        END LOOP;
    END IF;
    SET LOCAL session_replication_role = origin;
    IF restore_quotas THEN
        DELETE FROM tenant.limit_overrides WHERE tenant_id = target;
        PERFORM tenant.set_limit(target::text, o.resource, o."limit", o.period)
           FROM jsonb_to_recordset(coalesce(data->'limits', '[]')) AS o(resource text, "limit" bigint, period text);
        DELETE FROM tenant.usage_counters WHERE tenant_id = target;
        INSERT INTO tenant.usage_counters (tenant_id, resource, period_start, used)
        SELECT target, u.resource, u.period_start, u.used
          FROM jsonb_to_recordset(coalesce(data->'usage', '[]')) AS u(resource text, period_start timestamptz, used bigint);
    END IF;
    -- Count quotas are the rows just loaded, whatever the document says.
    PERFORM tenant.recount_tenant(target);
    INSERT INTO tenant.audit_log (tenant_id, action, detail)
    VALUES (target, 'import', jsonb_build_object('slug', (SELECT slug FROM tenant.tenants WHERE id = target),
                                                 'from', data->'tenant'->>'slug', 'rows', counts,
                                                 'restore_quotas', restore_quotas));
    RETURN counts;
END
$$;
COMMENT ON FUNCTION tenant.import(text, jsonb, boolean) IS 'pg_tenant: load a tenant.export() document into an empty tenant (its limits and usage too with restore_quotas)';
REVOKE EXECUTE ON FUNCTION tenant.import(text, jsonb, boolean) FROM PUBLIC;
