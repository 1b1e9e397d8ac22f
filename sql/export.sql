-- Export and import of one tenant's data (GDPR export; tenant.drop() is the erasure).
-- Added in 0.2.0.

-- A schema tenant's own schema: every row of every table (a partitioned table through its root,
-- other tables ONLY themselves), without the tenant column of protected ones, and where each
-- sequence stands, so that an import continues numbering where the export left off.
CREATE OR REPLACE FUNCTION tenant.export_schema(schema_name name) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tables jsonb := '{}';
    sequences jsonb := '{}';
    rows jsonb;
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS tbl, c.relname, c.relkind, p.tenant_column
               FROM pg_class c LEFT JOIN tenant_data.protected_tables p ON p.table_name = c.oid
              WHERE c.relnamespace = export_schema.schema_name::regnamespace
                AND (c.relkind = 'p' AND NOT c.relispartition OR c.relkind = 'r' AND NOT c.relispartition)
              ORDER BY c.relname
    LOOP
        rows := tenant.table_data(r.tbl, 'all_rows');
        tables := tables || jsonb_build_object(r.relname, rows);
    END LOOP;
    FOR r IN SELECT c.oid::regclass AS seq, c.relname FROM pg_class c
              WHERE c.relnamespace = export_schema.schema_name::regnamespace AND c.relkind = 'S' ORDER BY c.relname
    LOOP
        rows := tenant.table_data(r.seq, 'sequence');
        sequences := sequences || jsonb_build_object(r.relname, rows);
    END LOOP;
    RETURN jsonb_build_object('name', schema_name, 'tables', tables, 'sequences', sequences);
END
$$;
COMMENT ON FUNCTION tenant.export_schema(name) IS 'pg_tenant: the rows and sequence positions of a schema tenant''s schema (part of tenant.export)';

-- Everything of one tenant as one JSON document: its registry row, plan, own limits, usage, and
-- every row of every protected table (a partitioned or inheritance tree read through its root).
CREATE OR REPLACE FUNCTION tenant.export(tenant text) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t tenant_data.tenants;
    tables jsonb := '{}';
    rows jsonb;
    r record;
    own_schema jsonb;
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'argument "tenant" must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO t FROM tenant_data.tenants x
     WHERE x.slug = export.tenant OR x.id::text = lower(export.tenant);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant "%" does not exist', tenant USING ERRCODE = 'PT002';
    END IF;
    -- Shared protected tables (tables in tenant schemas are exported with their tenant below).
    FOR r IN SELECT p.table_name, p.tenant_column FROM tenant_data.protected_tables p
              JOIN pg_class c ON c.oid = p.table_name JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE (p.parent IS NULL OR p.parent NOT IN (SELECT table_name FROM tenant_data.protected_tables))
                AND n.nspname NOT IN (SELECT x.schema_name FROM tenant_data.tenants x WHERE x.schema_name IS NOT NULL)
              ORDER BY p.table_name::text
    LOOP
        -- Rows in a stable order (by their text form), so that two exports of the same data are equal.
        rows := tenant.table_data(r.table_name, 'tenant_rows', t.id);
        tables := tables || jsonb_build_object(r.table_name::text, rows);
    END LOOP;
    IF t.schema_name IS NOT NULL THEN
        own_schema := tenant.export_schema(t.schema_name);
    END IF;
    RETURN jsonb_build_object(
        'format', 'pg_tenant-export-1',
        'exported_at', now(),
        'tenant', to_jsonb(t),
        'plan', (SELECT to_jsonb(p) FROM tenant_data.plans p WHERE p.name = t.plan),
        'limits', (SELECT COALESCE(jsonb_agg(to_jsonb(o) - 'tenant_id' ORDER BY o.resource), '[]')
                     FROM tenant_data.limit_overrides o WHERE o.tenant_id = t.id),
        -- Count quotas kept in shared memory (src/shared_counters.rs) are read from there.
        'usage', (SELECT COALESCE(jsonb_agg(jsonb_build_object('resource', x.resource, 'period_start', x.period_start,
                                                               'used', x.used)
                                            ORDER BY x.resource, x.period_start), '[]')
                    FROM (SELECT u.resource, u.period_start,
                                 CASE WHEN u.period_start = '-infinity'
                                      THEN COALESCE(tenant.counted_usage(u.tenant_id, u.resource), u.used)
                                      ELSE u.used END AS used
                            FROM tenant_data.usage_counters u WHERE u.tenant_id = t.id
                          UNION ALL
                          SELECT c.resource, '-infinity'::timestamptz, c.used
                            FROM (SELECT a.resource, tenant.counted_usage(t.id, a.resource) AS used
                                    FROM (SELECT DISTINCT q.resource FROM tenant_data.quota_attachments q WHERE q.mode = 'count') a) c
                           WHERE c.used IS NOT NULL
                             AND NOT EXISTS (SELECT FROM tenant_data.usage_counters u
                                              WHERE u.tenant_id = t.id AND u.resource = c.resource
                                                AND u.period_start = '-infinity')) x),
        'tables', tables)
        || CASE WHEN own_schema IS NULL THEN '{}' ELSE jsonb_build_object('schema', own_schema) END;
END
$$;
COMMENT ON FUNCTION tenant.export(text) IS 'pg_tenant: every row of a tenant in every protected table, with its registry row, plan, limits and usage (GDPR export)';

-- Inserts exported rows (a JSON array) into a table, the tenant column (of a protected table)
-- set to the target tenant; generated columns are computed again. Returns how many.
CREATE OR REPLACE FUNCTION tenant.import_rows(tbl regclass, data_rows jsonb, target uuid) RETURNS bigint
LANGUAGE sql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
    -- As the table's owner: its defaults, checks and ALWAYS triggers never run as the caller.
    SELECT tenant.table_data(tbl, 'insert', target, data_rows)::bigint
$$;

-- Loads an export into an existing tenant that has no rows yet: rows get the target tenant's id;
-- with restore_quotas, its plan (which must exist here), its own limits (each as tenant.set_limit
-- sets it) and usage are restored
-- from the document. Triggers (the write guard, quota triggers, foreign-key checks) are off while
-- loading, so it needs a superuser and does all or nothing. It writes only where tenant.export
-- reads: the shared protected tables (through their roots; never a table of a tenant schema) and
-- the target's own schema.
CREATE OR REPLACE FUNCTION tenant.import(tenant text, data jsonb, restore_quotas boolean DEFAULT false) RETURNS jsonb
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
    target_slug text;
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
    SELECT x.id, x.schema_name, x.slug INTO target, own, target_slug FROM tenant_data.tenants x
     WHERE x.slug = import.tenant OR x.id::text = lower(import.tenant);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant "%" does not exist', tenant USING ERRCODE = 'PT002';
    END IF;
    -- Every table must be a shared protected table, as tenant.export lists them, and the tenant
    -- must have no rows in it yet.
    FOR r IN SELECT key AS name, value AS rows FROM jsonb_each(data->'tables') LOOP
        tbl := to_regclass(r.name);
        SELECT p.tenant_column, p.parent INTO col, root FROM tenant_data.protected_tables p WHERE p.table_name = tbl;
        IF tbl IS NULL OR col IS NULL THEN
            RAISE EXCEPTION 'table % of the export is not a protected table here', r.name USING ERRCODE = '42809';
        END IF;
        SELECT x.slug INTO owner_slug FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN tenant_data.tenants x ON x.schema_name = n.nspname WHERE c.oid = tbl;
        IF FOUND THEN
            RAISE EXCEPTION 'table % of the export belongs to the schema of tenant "%"', tbl, owner_slug
                USING ERRCODE = '42501',
                      HINT = 'import() writes only into the importing tenant''s own tables: a schema tenant''s tables come in the export''s "schema" part, into its own schema.';
        END IF;
        IF root IS NOT NULL AND root IN (SELECT p.table_name FROM tenant_data.protected_tables p) THEN
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
        existing := tenant.table_data(tbl, 'tenant_count', target)::bigint;
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
        -- The plan must exist here (plans are not part of an export; create it first).
        IF data->'plan'->>'name' IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM tenant_data.plans p WHERE p.name = data->'plan'->>'name') THEN
            RAISE EXCEPTION 'plan "%" of the export does not exist here', data->'plan'->>'name'
                USING ERRCODE = 'PT005', HINT = 'Create it with tenant.create_plan() first, or import without restore_quotas.';
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
    -- (set_config, not SET LOCAL: on Citus, Citus would pass a SET LOCAL on to every worker
    -- connection of the transaction, the table owners' included, which may not set it. The
    -- shards' triggers run on the workers; there each owner acts as no tenant, as here.)
    PERFORM set_config('session_replication_role', 'replica', true);
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
            existing := tenant.table_data(tbl, 'all_count')::bigint;
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
    PERFORM set_config('session_replication_role', 'origin', true);
    IF restore_quotas THEN
        IF data->'plan'->>'name' IS NOT NULL THEN
            PERFORM tenant.change_plan(target::text, data->'plan'->>'name');
        END IF;
        DELETE FROM tenant_data.limit_overrides WHERE tenant_id = target;
        PERFORM tenant.set_limit(target::text, o.resource, o."limit", o.period)
           FROM jsonb_to_recordset(coalesce(data->'limits', '[]')) AS o(resource text, "limit" bigint, period text);
        DELETE FROM tenant_data.usage_counters WHERE tenant_id = target;
        INSERT INTO tenant_data.usage_counters (tenant_id, resource, period_start, used)
        SELECT target, u.resource, u.period_start, u.used
          FROM jsonb_to_recordset(coalesce(data->'usage', '[]')) AS u(resource text, period_start timestamptz, used bigint);
    END IF;
    -- Count quotas are the rows just loaded, whatever the document says.
    PERFORM tenant.recount_tenant(target);
    INSERT INTO tenant_data.audit_log (tenant_id, action, detail)
    -- (The slug read above: on Citus, where the registry is a reference table, an INSERT with a
    -- subquery on it is refused.)
    VALUES (target, 'import', jsonb_build_object('slug', target_slug,
                                                 'from', data->'tenant'->>'slug', 'rows', counts,
                                                 'restore_quotas', restore_quotas));
    RETURN counts;
END
$$;
COMMENT ON FUNCTION tenant.import(text, jsonb, boolean) IS 'pg_tenant: load a tenant.export() document into an empty tenant (its limits and usage too with restore_quotas)';

REVOKE EXECUTE ON FUNCTION tenant.export(text), tenant.import(text, jsonb, boolean), tenant.export_schema(name),
    tenant.import_rows(regclass, jsonb, uuid) FROM PUBLIC;
