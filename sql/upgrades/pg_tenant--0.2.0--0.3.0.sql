-- pg_tenant 0.2.0 -> 0.3.0 (committed whole; scripts/upgrade.sh checks that an upgraded database
-- equals a fresh 0.3.0 install object for object).
\echo Use "ALTER EXTENSION pg_tenant UPDATE TO '0.3.0'" to load this file. \quit

-- pg_tenant's tables move to schema tenant_data, which only the extension owner may use (security
-- review N2): PostgreSQL locks the tables a statement names while it parses it, before it checks
-- privileges, so any role that could name tenant.tenants could hold a lock on it (PREPARE in an
-- open transaction) and queue an ACCESS EXCLUSIVE one behind it (CREATE RULE, refused only once
-- granted), and every later tenant.set() waited. A role without USAGE on a schema cannot name
-- what is in it. The functions and views stay in "tenant"; the views follow their tables by oid,
-- and so do the configuration-dump registrations, indexes, sequences, triggers and row types.
DO $guard$
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) 'tenant_data') THEN
        RAISE EXCEPTION 'pg_tenant needs schema "tenant_data" for its tables, and a schema of that name exists already'
            USING ERRCODE = '42P06',
                  DETAIL = pg_catalog.format('Schema "tenant_data" belongs to role %s; pg_tenant did not create it and reads nothing from it.',
                      (SELECT pg_catalog.quote_ident(r.rolname) FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner WHERE n.nspname OPERATOR(pg_catalog.=) 'tenant_data')),
                  HINT = 'Look at what it holds, then rename or drop it (ALTER SCHEMA tenant_data RENAME TO ...) and run the command again.';
    END IF;
END
$guard$;
CREATE SCHEMA tenant_data;
COMMENT ON SCHEMA tenant_data IS 'pg_tenant: its tables (only the extension owner uses this schema; the API is in schema tenant)';
ALTER TABLE tenant.tenants SET SCHEMA tenant_data;
ALTER TABLE tenant.gateways SET SCHEMA tenant_data;
ALTER TABLE tenant.tenant_access SET SCHEMA tenant_data;
ALTER TABLE tenant.signing_keys SET SCHEMA tenant_data;
ALTER TABLE tenant.audit_log SET SCHEMA tenant_data;
ALTER TABLE tenant.plans SET SCHEMA tenant_data;
ALTER TABLE tenant.limit_overrides SET SCHEMA tenant_data;
ALTER TABLE tenant.usage_counters SET SCHEMA tenant_data;
ALTER TABLE tenant.schema_templates SET SCHEMA tenant_data;
ALTER TABLE tenant.schema_migrations SET SCHEMA tenant_data;

-- The SQL functions of 0.2.0 that name pg_tenant's tables, as they are now (their bodies are kept
-- as text and looked up when they run: they name the tables in tenant_data).
CREATE OR REPLACE FUNCTION tenant.plans_insert_as_update() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE tenant_data.plans SET limits = NEW.limits, created_at = NEW.created_at, updated_at = NEW.updated_at
     WHERE name = NEW.name;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE FUNCTION tenant.effective_limit(tenant_id uuid, resource text,
                                       OUT plan text, OUT "limit" bigint, OUT period text, OUT anchor timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT t.plan,
           COALESCE(o."limit", (p.limits -> effective_limit.resource ->> 'limit')::bigint, -1),
           COALESCE(o.period, p.limits -> effective_limit.resource ->> 'period', 'none'),
           COALESCE((t.settings ->> 'billing_anchor')::timestamptz, t.created_at)
      FROM tenant_data.tenants t
      LEFT JOIN tenant_data.plans p ON p.name = t.plan
      LEFT JOIN tenant_data.limit_overrides o ON o.tenant_id = t.id AND o.resource = effective_limit.resource
     WHERE t.id = effective_limit.tenant_id
$$;
CREATE OR REPLACE FUNCTION tenant.schema_drift()
RETURNS TABLE (tenant text, schema_name name, template name, object text, difference text,
               template_definition text, tenant_definition text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT t.slug, t.schema_name, t.template, d.object, d.difference, d.template_definition, d.tenant_definition
FROM tenant_data.tenants t
CROSS JOIN LATERAL (
    SELECT coalesce(a.object, b.object) AS object,
           CASE WHEN b.object IS NULL THEN 'missing in tenant schema'
                WHEN a.object IS NULL THEN 'not in template'
                ELSE 'differs' END AS difference,
           a.definition AS template_definition, b.definition AS tenant_definition
    FROM tenant.schema_structure(t.template) a
    FULL JOIN tenant.schema_structure(t.schema_name) b ON a.object = b.object
    WHERE a.definition IS DISTINCT FROM b.definition OR a.object IS NULL OR b.object IS NULL
) d
WHERE t.isolation = 'schema'
ORDER BY t.slug, d.object
$$;

-- Which tables are protected comes from pg_tenant's own catalog, written by tenant.protect(),
-- no longer from a trigger name anyone can create (a TEMP view with a "tenant_guard" trigger was
-- taken for a protected table). The tables 0.2.0 protected are the permanent tables that carry
-- both the guard trigger and the restrictive policy protect() installed (none with shared rows:
-- 0.2.0 had no shared_rows).
CREATE TABLE tenant_data.protected_relations (
    relid         regclass PRIMARY KEY,
    tenant_column name NOT NULL,
    protected_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    shared_rows   boolean NOT NULL DEFAULT false  -- rows without a tenant are read by every tenant
);
COMMENT ON TABLE tenant_data.protected_relations IS 'pg_tenant: the relations tenant.protect() isolated (read tenant.protected_tables)';
-- (A row of a relation dropped since is not dumped: see the grants below.)
SELECT pg_catalog.pg_extension_config_dump('tenant_data.protected_relations',
    'WHERE EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) protected_relations.relid::pg_catalog.oid)');
INSERT INTO tenant_data.protected_relations (relid, tenant_column)
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

DROP VIEW tenant.protected_tables;
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

-- Likewise tenant.quota_attachments (pg_tenant's quota code reads tenant_data.quota_attachments).
DROP VIEW tenant.quota_attachments;
CREATE VIEW tenant_data.quota_attachments AS
SELECT DISTINCT ON (t.tgrelid, args[1])
       t.tgrelid::regclass AS table_name, args[1] AS resource, args[2] AS mode, args[3]::name AS tenant_column
  FROM pg_catalog.pg_trigger t
 CROSS JOIN LATERAL (SELECT pg_catalog.string_to_array(pg_catalog.encode(t.tgargs, 'escape'), '\000') AS args) a
 WHERE t.tgfoid = 'tenant.quota_trigger()'::regprocedure
 ORDER BY t.tgrelid, args[1];
-- pg_tenant's own code reads tenant_data.quota_attachments (see tenant.protected_tables).
CREATE VIEW tenant.quota_attachments AS
SELECT table_name, resource, mode, tenant_column FROM tenant_data.quota_attachments;
COMMENT ON VIEW tenant.quota_attachments IS 'pg_tenant: quotas attached to tables (tenant.attach_quota)';
GRANT SELECT ON tenant.quota_attachments TO PUBLIC;

-- tenant.protect() gains shared_rows (rows without a tenant are shared reference rows every
-- tenant reads, written only by roles that bypass row security). One function with a new
-- defaulted argument, so that tenant.protect('t') and tenant.protect('t', 'col') keep working:
-- the 0.2.0 function is replaced (the tables it protected keep their policies, trigger and
-- catalog row). EXECUTE that was granted on the old function (to delegate protecting tables) is
-- granted on the new one and stays a grant of the database's (pg_dump dumps it), not one of the
-- extension's initial privileges. A user's object that depends on the old function (a
-- BEGIN ATOMIC function calling it) stops the update with what to do.
DO $$
DECLARE
    old_fn regprocedure := 'tenant.protect(regclass, name)'::regprocedure;
    new_fn oid;
    grantees oid[];
    grantable boolean[];
    initial aclitem[];
BEGIN
    SELECT pg_catalog.array_agg(a.grantee), pg_catalog.array_agg(a.is_grantable) INTO grantees, grantable
      FROM pg_catalog.pg_proc p CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE p.oid = old_fn AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner
       AND NOT EXISTS (SELECT FROM pg_catalog.pg_init_privs i CROSS JOIN LATERAL pg_catalog.aclexplode(i.initprivs) b
                        WHERE i.objoid = old_fn AND i.classoid = 'pg_catalog.pg_proc'::regclass AND i.objsubid = 0
                          AND b.grantee = a.grantee AND b.privilege_type = 'EXECUTE');
    BEGIN
        DROP FUNCTION tenant.protect(regclass, name);
    EXCEPTION WHEN dependent_objects_still_exist THEN
        RAISE EXCEPTION 'tenant.protect(regclass, name) is replaced by tenant.protect(regclass, name, boolean), and objects depend on it'
            USING ERRCODE = 'dependent_objects_still_exist',
                  HINT = 'Drop the objects that call it (SELECT pg_describe_object(classid, objid, objsubid) FROM pg_depend WHERE refobjid = ''tenant.protect(regclass, name)''::regprocedure), run ALTER EXTENSION pg_tenant UPDATE, then create them again.';
    END;
    CREATE FUNCTION tenant.protect(tbl regclass, tenant_column name DEFAULT 'tenant_id', shared_rows boolean DEFAULT false)
    RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'protect_with_shared_rows_wrapper'
    SET search_path = pg_catalog, pg_temp;
    COMMENT ON FUNCTION tenant.protect(regclass, name, boolean) IS 'pg_tenant: isolate a table (and its partitions) by tenant with row-level security (with shared_rows, rows without a tenant are read by every tenant and written only by roles that bypass row security)';
    REVOKE EXECUTE ON FUNCTION tenant.protect(regclass, name, boolean) FROM PUBLIC;
    new_fn := 'tenant.protect(regclass, name, boolean)'::regprocedure;
    SELECT p.proacl INTO initial FROM pg_catalog.pg_proc p WHERE p.oid = new_fn;
    FOR i IN 1 .. COALESCE(pg_catalog.array_length(grantees, 1), 0) LOOP
        EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION tenant.protect(regclass, name, boolean) TO %s%s',
                                  CASE WHEN grantees[i] = 0 THEN 'PUBLIC' ELSE grantees[i]::regrole::text END,
                                  CASE WHEN grantable[i] THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    -- A GRANT in an extension script is recorded as an initial privilege of the extension: the
    -- grants above are the database's own, as they were.
    IF grantees IS NOT NULL THEN
        UPDATE pg_catalog.pg_init_privs SET initprivs = initial
         WHERE objoid = new_fn AND classoid = 'pg_catalog.pg_proc'::regclass AND objsubid = 0;
    END IF;
END
$$;

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
-- asked (restore_quotas), checked (security issue, item 14). Export and import read and write
-- user tables as each table's owner in a security-restricted operation (item 4): the whole of
-- sql/export.sql as 0.3.0 has it follows.
DROP FUNCTION tenant.import(text, jsonb);
CREATE FUNCTION tenant.table_data(tbl regclass, operation text, target uuid DEFAULT NULL, "rows" jsonb DEFAULT NULL)
RETURNS jsonb VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'table_data_wrapper';
COMMENT ON FUNCTION tenant.table_data(regclass, text, uuid, jsonb) IS 'pg_tenant (internal): read a tenant''s rows of a protected or tenant-schema table, or load rows into one (superusers), as the table''s owner in a security-restricted operation';
REVOKE EXECUTE ON FUNCTION tenant.table_data(regclass, text, uuid, jsonb) FROM PUBLIC;

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
DROP FUNCTION tenant.import_rows(regclass, jsonb, uuid);
CREATE FUNCTION tenant.import_rows(tbl regclass, data_rows jsonb, target uuid) RETURNS bigint
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

-- Rows per tenant over every protected table (a partitioned or inheritance tree counted once),
-- each table counted by its owner (tenant.table_data): the owner's code that planning a query
-- of the table may run never runs with the rights of the admin reading tenant.overview.
CREATE OR REPLACE FUNCTION tenant.protected_row_counts(OUT tenant_id uuid, OUT row_count bigint) RETURNS SETOF record
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    counts jsonb := '{}';
    r record;
BEGIN
    FOR r IN SELECT p.table_name, p.tenant_column FROM tenant_data.protected_tables p
              WHERE p.parent IS NULL OR p.parent NOT IN (SELECT table_name FROM tenant_data.protected_tables)
    LOOP
        counts := counts || COALESCE((SELECT jsonb_object_agg(k, COALESCE((counts->>k)::bigint, 0) + v::bigint)
          FROM (SELECT key AS k, value AS v
                  FROM jsonb_each_text(tenant.table_data(r.table_name, 'counts'))) s), '{}');
    END LOOP;
    RETURN QUERY SELECT key::uuid, value::bigint FROM jsonb_each_text(counts);
END
$$;


-- Gateways and access grants for a transaction at a time (behind a transaction pooler, a
-- session-level tenant.set() would stay with the server session for the next client), and
-- read-only ones (support staff).
ALTER TABLE tenant_data.gateways ADD COLUMN transaction_only boolean NOT NULL DEFAULT false;
ALTER TABLE tenant_data.gateways ADD COLUMN read_only boolean NOT NULL DEFAULT false;
ALTER TABLE tenant_data.tenant_access ADD COLUMN transaction_only boolean NOT NULL DEFAULT false;
ALTER TABLE tenant_data.tenant_access ADD COLUMN read_only boolean NOT NULL DEFAULT false;
DROP FUNCTION tenant.grant_gateway(regrole);
CREATE FUNCTION tenant.grant_gateway(role regrole, transaction_only boolean DEFAULT false, read_only boolean DEFAULT false)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'grant_gateway_scoped_wrapper';
COMMENT ON FUNCTION tenant.grant_gateway(regrole, boolean, boolean) IS 'pg_tenant: let a role (and its members) act as any tenant (with transaction_only, for a transaction at a time: behind a transaction pooler; with read_only, to read only)';
DROP FUNCTION tenant.grant_access(text, regrole);
CREATE FUNCTION tenant.grant_access(tenant text, role regrole, transaction_only boolean DEFAULT false, read_only boolean DEFAULT false)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'grant_access_scoped_wrapper';
COMMENT ON FUNCTION tenant.grant_access(text, regrole, boolean, boolean) IS 'pg_tenant: let a role (and its members) act as this one tenant (with transaction_only, for a transaction at a time; with read_only, to read only)';
REVOKE EXECUTE ON FUNCTION tenant.grant_gateway(regrole, boolean, boolean), tenant.grant_access(text, regrole, boolean, boolean) FROM PUBLIC;

-- No foreign key between configuration tables: pg_restore -j copies them in parallel, in no
-- order, and the copy of tenant_access or limit_overrides failed when it came before the one of
-- tenants. grant_access(), set_limit() and drop() keep them consistent instead.
ALTER TABLE tenant_data.tenant_access DROP CONSTRAINT tenant_access_tenant_id_fkey;
ALTER TABLE tenant_data.limit_overrides DROP CONSTRAINT limit_overrides_tenant_id_fkey;
-- A grant to a role dropped since is not dumped: a regrole that names no role is written as its
-- bare oid, which a restore took for whichever role had that oid there.
SELECT pg_catalog.pg_extension_config_dump('tenant_data.gateways',
    'WHERE EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) gateways.role::pg_catalog.oid)');
SELECT pg_catalog.pg_extension_config_dump('tenant_data.tenant_access',
    'WHERE EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) tenant_access.role::pg_catalog.oid)');

-- tenant.check() rates a foreign key between protected tables that does not pair the tenant
-- columns high (its cascades cross tenants), and reports foreign keys from unprotected tables
-- into protected ones and roles that may act as tenants but lack the grants their tables need;
-- its fixes keep shared_rows, and it reports a table with shared rows that lost the policies that
-- keep tenants from writing them. The whole of sql/check.sql as 0.3.0 has it follows.
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

-- Registry invalidation (src/cache.rs): a row trigger on every table the session cache reads,
-- signing_keys included, and a statement trigger for TRUNCATE, both ENABLE ALWAYS (0.2.0 had one
-- statement trigger, which an UPDATE ... RETURNING stopped after its first row skips).
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'gateways', 'tenant_access', 'plans', 'limit_overrides'] LOOP
        EXECUTE format('DROP TRIGGER registry_changed ON tenant_data.%I', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['tenants', 'gateways', 'tenant_access', 'plans', 'limit_overrides', 'signing_keys'] LOOP
        EXECUTE format('CREATE TRIGGER registry_changed AFTER INSERT OR UPDATE OR DELETE ON tenant_data.%I
                        FOR EACH ROW EXECUTE FUNCTION tenant.registry_changed()', t);
        EXECUTE format('CREATE TRIGGER registry_truncated AFTER TRUNCATE ON tenant_data.%I
                        FOR EACH STATEMENT EXECUTE FUNCTION tenant.registry_changed()', t);
        EXECUTE format('ALTER TABLE tenant_data.%I ENABLE ALWAYS TRIGGER registry_changed,
                                              ENABLE ALWAYS TRIGGER registry_truncated', t);
    END LOOP;
END
$$;

-- What the application may know about its own tenancy (issue 12, item 5), with its statement
-- statistics (issue 15).
CREATE FUNCTION tenant.info()
RETURNS TABLE (id uuid, slug text, name text, status text, plan text, limits jsonb, usage jsonb, stats jsonb)
STABLE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'info_wrapper';
COMMENT ON FUNCTION tenant.info() IS 'pg_tenant: the current tenant: id, slug, name, status, plan, per resource its limit (-1 unlimited) and usage ({"used", "remaining", "period_end"}), and its statement statistics (NULL unless pg_tenant is preloaded)';
CREATE FUNCTION tenant.my_tenants()
RETURNS TABLE (id uuid, slug text, name text, status text, transaction_only boolean)
STABLE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'my_tenants_wrapper';
COMMENT ON FUNCTION tenant.my_tenants() IS 'pg_tenant: the tenants the current role may act as (with transaction_only: for a transaction at a time only)';

-- Named locks as row locks on an owner-only table (security review): the migration lock was a
-- SHARE ROW EXCLUSIVE table lock, which any role could block by PREPAREing an INSERT into the
-- table (the table is locked while the statement is parsed, before privileges are checked).
CREATE TABLE tenant_data.locks (name text PRIMARY KEY);
COMMENT ON TABLE tenant_data.locks IS 'pg_tenant: named locks (migrate, recount), taken as row locks by the extension owner';
INSERT INTO tenant_data.locks (name) VALUES ('migrate'), ('recount');

-- The tables under their 0.2.0 names, for administrators' SQL (SELECT ... FROM tenant.audit_log):
-- read-only views that only the extension owner and superusers may use, as the tables were. Each
-- reads its table through a function in tenant_data (EXECUTE revoked from PUBLIC): a statement
-- naming the view, prepared by anyone, locks the view only, never the table (a simple view would
-- let a PREPAREd INSERT hold ROW EXCLUSIVE on it). tenant_data.signing_keys has no such view.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'gateways', 'tenant_access', 'audit_log', 'plans', 'limit_overrides',
                             'usage_counters', 'schema_templates', 'schema_migrations'] LOOP
        EXECUTE format('CREATE FUNCTION tenant_data.%I() RETURNS SETOF tenant_data.%I LANGUAGE sql STABLE
                        SET search_path = pg_catalog, pg_temp AS %L', t || '_rows', t, format('SELECT * FROM tenant_data.%I', t));
        EXECUTE format('REVOKE EXECUTE ON FUNCTION tenant_data.%I() FROM PUBLIC', t || '_rows');
        EXECUTE format('CREATE VIEW tenant.%I AS SELECT * FROM tenant_data.%I()', t, t || '_rows');
        EXECUTE format('REVOKE ALL ON tenant.%I FROM PUBLIC', t);
    END LOOP;
END
$$;

-- pg_tenant on Citus (issue 14): the registry tables workers need become reference tables.
CREATE FUNCTION tenant.citus_setup()
RETURNS text[] VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'citus_setup_wrapper'
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tenant.citus_setup() IS 'pg_tenant on Citus (run on the coordinator, superusers only): makes the tables workers need (tenants, plans, limit_overrides, signing_keys, node_key) reference tables, makes the node key that signs the context tenant.set_local() passes to the workers, lets SET LOCAL reach the workers, and (unless the server preloads pg_tenant) makes each session of the database load pg_tenant at its start; returns the tables it converted';
REVOKE EXECUTE ON FUNCTION tenant.citus_setup() FROM PUBLIC;

-- The key that signs the tenant context tenant.set_local() passes to Citus workers (see
-- sql/tokens.sql).
CREATE TABLE tenant_data.node_key (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    secret     text NOT NULL CHECK (secret ~ '^[0-9a-f]{64}$'),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant_data.node_key IS 'pg_tenant: the key that signs the tenant context passed to Citus workers (tenant.citus_setup); readable by the extension owner only';
-- A change of it empties every session's cache of it, as the registry's tables do (src/registry/cache.rs).
CREATE TRIGGER registry_changed AFTER INSERT OR UPDATE OR DELETE ON tenant_data.node_key
    FOR EACH ROW EXECUTE FUNCTION tenant.registry_changed();
CREATE TRIGGER registry_truncated AFTER TRUNCATE ON tenant_data.node_key
    FOR EACH STATEMENT EXECUTE FUNCTION tenant.registry_changed();
ALTER TABLE tenant_data.node_key ENABLE ALWAYS TRIGGER registry_changed, ENABLE ALWAYS TRIGGER registry_truncated;

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

-- Plan settings (issue 15): settings applied while a session acts as a tenant
-- (statement_timeout, work_mem, ...), a plan's and a tenant's own over them, key by key. The new
-- columns come last, as in a fresh install; the views over the two tables (made above) are made
-- again to show them, and a restored plan keeps its settings.
ALTER TABLE tenant_data.plans ADD COLUMN context_settings jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(context_settings) = 'object');
ALTER TABLE tenant_data.tenants ADD COLUMN context_settings jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(context_settings) = 'object');
CREATE OR REPLACE VIEW tenant.plans AS SELECT * FROM tenant_data.plans_rows();
CREATE OR REPLACE VIEW tenant.tenants AS SELECT * FROM tenant_data.tenants_rows();
CREATE OR REPLACE FUNCTION tenant.plans_insert_as_update() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE tenant_data.plans SET limits = NEW.limits, created_at = NEW.created_at, updated_at = NEW.updated_at,
                                 context_settings = NEW.context_settings
     WHERE name = NEW.name;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE FUNCTION tenant.set_plan_settings(plan text, settings jsonb)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'set_plan_settings_wrapper';
COMMENT ON FUNCTION tenant.set_plan_settings(text, jsonb) IS 'pg_tenant: settings (statement_timeout, work_mem, ...) applied while a session acts as a tenant of this plan; its statement_timeout is a ceiling; ''{}'' clears';
REVOKE EXECUTE ON FUNCTION tenant.set_plan_settings(text, jsonb) FROM PUBLIC;
CREATE FUNCTION tenant.set_tenant_settings(tenant text, settings jsonb)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'set_tenant_settings_wrapper';
COMMENT ON FUNCTION tenant.set_tenant_settings(text, jsonb) IS 'pg_tenant: a tenant''s own settings, over its plan''s key by key; ''{}'' clears';
REVOKE EXECUTE ON FUNCTION tenant.set_tenant_settings(text, jsonb) FROM PUBLIC;

-- Per-tenant statement statistics (issue 15), kept in shared memory (src/stats/): the view
-- tenant.stats and tenant.stats_reset(), for administrators only.
CREATE FUNCTION tenant.stats_rows()
RETURNS TABLE (tenant_id uuid, selects bigint, inserts bigint, updates bigint, deletes bigint, others bigint,
               rows_returned bigint, rows_written bigint, total_time_ms double precision, max_time_ms double precision,
               last_activity timestamptz, stats_since timestamptz)
VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'stats_rows_wrapper';
COMMENT ON FUNCTION tenant.stats_rows() IS 'pg_tenant: the per-tenant statistics kept in shared memory for the current database (read tenant.stats)';
CREATE VIEW tenant.stats AS
SELECT t.slug AS tenant, t.id AS tenant_id,
       COALESCE(s.selects, 0) AS selects, COALESCE(s.inserts, 0) AS inserts,
       COALESCE(s.updates, 0) AS updates, COALESCE(s.deletes, 0) AS deletes,
       COALESCE(s.others, 0) AS others,
       COALESCE(s.rows_returned, 0) AS rows_returned, COALESCE(s.rows_written, 0) AS rows_written,
       COALESCE(s.total_time_ms, 0) AS total_time_ms, COALESCE(s.max_time_ms, 0) AS max_time_ms,
       s.last_activity, s.stats_since
  FROM tenant_data.tenants t
  LEFT JOIN tenant.stats_rows() s ON s.tenant_id OPERATOR(pg_catalog.=) t.id;
COMMENT ON VIEW tenant.stats IS 'pg_tenant: statements run as each tenant of this database since stats_since (NULL: not counted since the server started or the last tenant.stats_reset), by kind, with rows and times';
REVOKE ALL ON tenant.stats FROM PUBLIC;
CREATE FUNCTION tenant.stats_reset(tenant text DEFAULT NULL)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'stats_reset_wrapper';
COMMENT ON FUNCTION tenant.stats_reset(text) IS 'pg_tenant: forget the statistics of one tenant (its slug or id), or of every tenant of this database (NULL), when the transaction commits; frees their room in shared memory';
REVOKE EXECUTE ON FUNCTION tenant.stats_rows(), tenant.stats_reset(text) FROM PUBLIC;
