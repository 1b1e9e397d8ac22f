-- A count quota's row counter (src/row_counter.rs): an index access method that stores nothing
-- and cannot be scanned; PostgreSQL hands it every row written to the table, and pg_tenant
-- counts them. tenant.attach_quota(tbl, resource, 'count') creates the index.
CREATE FUNCTION tenant.quota_index_handler(internal) RETURNS index_am_handler
LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'quota_index_handler';
CREATE ACCESS METHOD tenant_quota TYPE INDEX HANDLER tenant.quota_index_handler;
COMMENT ON ACCESS METHOD tenant_quota IS 'pg_tenant: counts the rows of a count quota (tenant.attach_quota); stores nothing';
CREATE OPERATOR CLASS tenant.quota_uuid_ops DEFAULT FOR TYPE uuid USING tenant_quota AS STORAGE uuid;
-- The views over usage (and what they need). CREATE OR REPLACE: the 0.1.0 -> 0.2.0 upgrade runs
-- this file too.

-- A count quota's usage where it lives in shared memory (src/shared_counters.rs), else NULL:
-- the views then read tenant.usage_counters.
CREATE OR REPLACE FUNCTION tenant.counted_usage(tenant_id uuid, resource text) RETURNS bigint
STABLE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'counted_usage_wrapper';

CREATE OR REPLACE VIEW tenant.usage AS
SELECT t.slug AS tenant, r.resource, v.used, l."limit",
       CASE WHEN l."limit" < 0 THEN -1 ELSE GREATEST(l."limit" - v.used, 0) END AS remaining,
       NULLIF(b.period_start, '-infinity') AS period_start, NULLIF(b.period_end, 'infinity') AS period_end
  FROM tenant.tenants t
 CROSS JOIN LATERAL (
        SELECT jsonb_object_keys(p.limits) FROM tenant.plans p WHERE p.name = t.plan
        UNION SELECT o.resource FROM tenant.limit_overrides o WHERE o.tenant_id = t.id
        UNION SELECT u.resource FROM tenant.usage_counters u WHERE u.tenant_id = t.id) r(resource)
 CROSS JOIN LATERAL tenant.effective_limit(t.id, r.resource) l
 CROSS JOIN LATERAL tenant.period_bounds(l.anchor, l.period, now()) b
  LEFT JOIN tenant.usage_counters c
         ON c.tenant_id = t.id AND c.resource = r.resource AND c.period_start = b.period_start
 CROSS JOIN LATERAL (SELECT COALESCE(tenant.counted_usage(t.id, r.resource), c.used, 0) AS used) v;
COMMENT ON VIEW tenant.usage IS 'pg_tenant: current usage and limit of every tenant and resource with a limit or usage';

CREATE OR REPLACE VIEW tenant.usage_history AS
SELECT t.slug AS tenant, c.tenant_id, c.resource,
       NULLIF(c.period_start, '-infinity') AS period_start,
       NULLIF(b.period_end, 'infinity') AS period_end,
       CASE WHEN c.period_start = '-infinity' THEN COALESCE(tenant.counted_usage(c.tenant_id, c.resource), c.used)
            ELSE c.used END AS used,
       c.period_start = cur.period_start AS is_current
  FROM tenant.usage_counters c
  LEFT JOIN tenant.tenants t ON t.id = c.tenant_id
 CROSS JOIN LATERAL tenant.effective_limit(c.tenant_id, c.resource) l
 CROSS JOIN LATERAL tenant.period_bounds(COALESCE(l.anchor, c.period_start), COALESCE(l.period, 'none'),
                                         CASE WHEN c.period_start = '-infinity' THEN now() ELSE c.period_start END) b
 CROSS JOIN LATERAL tenant.period_bounds(COALESCE(l.anchor, c.period_start), COALESCE(l.period, 'none'), now()) cur
 WHERE c.tenant_id <> '00000000-0000-0000-0000-000000000000';  -- the shared-memory marker (src/shared_counters.rs)
COMMENT ON VIEW tenant.usage_history IS 'pg_tenant: usage of every period, past ones included (for billing)';

-- Rows per tenant over every protected table (a partitioned or inheritance tree counted once).
CREATE OR REPLACE FUNCTION tenant.protected_row_counts(OUT tenant_id uuid, OUT row_count bigint) RETURNS SETOF record
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parts text[] := '{}';
    r record;
BEGIN
    FOR r IN SELECT p.table_name, p.tenant_column FROM tenant.protected_tables p
              WHERE p.parent IS NULL OR p.parent NOT IN (SELECT table_name FROM tenant.protected_tables)
    LOOP
        parts := parts || format('SELECT %I AS tenant_id, count(*) AS n FROM %s GROUP BY 1', r.tenant_column, r.table_name);
    END LOOP;
    IF cardinality(parts) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE 'SELECT tenant_id, sum(n)::bigint FROM (' || array_to_string(parts, ' UNION ALL ') || ') s GROUP BY 1';
END
$$;

CREATE OR REPLACE VIEW tenant.overview AS
SELECT t.slug AS tenant, t.status, t.plan,
       COALESCE(rc.row_count, 0) AS protected_rows,
       (SELECT max(round(100.0 * u.used / u."limit", 1)) FROM tenant.usage u
         WHERE u.tenant = t.slug AND u."limit" > 0) AS max_quota_use_pct
  FROM tenant.tenants t
  LEFT JOIN tenant.protected_row_counts() rc ON rc.tenant_id = t.id;
COMMENT ON VIEW tenant.overview IS 'pg_tenant: one row per tenant: status, plan, rows in protected tables, highest quota use';

REVOKE EXECUTE ON FUNCTION tenant.counted_usage(uuid, text), tenant.protected_row_counts() FROM PUBLIC;
-- What upgrading 0.1.0 to 0.2.0 changes in place (the new objects follow from their own files).

-- Schema tenants (src/schemas.rs): the registry records a tenant's isolation and schema.
ALTER TABLE tenant.tenants
    ADD COLUMN isolation   text NOT NULL DEFAULT 'shared' CHECK (isolation IN ('shared', 'schema')),
    ADD COLUMN schema_name name UNIQUE,
    ADD COLUMN template    name,
    ADD CONSTRAINT tenants_schema_check CHECK ((isolation = 'schema') = (schema_name IS NOT NULL AND template IS NOT NULL));

-- tenant.create gains isolation and template.
DROP FUNCTION tenant."create"(text, text, text, jsonb);
CREATE FUNCTION tenant."create"(slug text, name text DEFAULT NULL, plan text DEFAULT 'default', settings jsonb DEFAULT '{}',
                                isolation text DEFAULT 'shared', template name DEFAULT NULL)
RETURNS uuid VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'create_tenant_wrapper';
COMMENT ON FUNCTION tenant."create"(text, text, text, jsonb, text, name) IS 'pg_tenant: register a tenant (with isolation => ''schema'', in its own schema cloned from template); returns its id';

CREATE FUNCTION tenant.clone_schema(source name, target name, with_data boolean DEFAULT false)
RETURNS TABLE (kind text, cloned bigint) VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'clone_schema_wrapper';
COMMENT ON FUNCTION tenant.clone_schema(name, name, boolean) IS 'pg_tenant: create schema target as an exact copy of schema source (and its rows with with_data); returns how many objects of each kind were cloned';

CREATE FUNCTION tenant.schema_guard() RETURNS trigger LANGUAGE c AS 'MODULE_PATHNAME', 'schema_guard_wrapper';

CREATE FUNCTION tenant.migrate(version text, ddl text)
RETURNS integer VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'migrate_wrapper';
COMMENT ON FUNCTION tenant.migrate(text, text) IS 'pg_tenant: run ddl in every template and schema tenant schema that has not recorded version, all or nothing; returns how many schemas it ran in';

CREATE FUNCTION tenant.migrate_next(version text, ddl text, batch_size integer DEFAULT 100)
RETURNS integer VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'migrate_next_wrapper';
COMMENT ON FUNCTION tenant.migrate_next(text, text, integer) IS 'pg_tenant: like tenant.migrate, for at most batch_size schemas; returns how many it ran in (0: all done). CALL tenant.migrate_batches() commits after each batch';

REVOKE EXECUTE ON FUNCTION
    tenant."create"(text, text, text, jsonb, text, name),
    tenant.clone_schema(name, name, boolean),
    tenant.migrate(text, text),
    tenant.migrate_next(text, text, integer)
FROM PUBLIC;

-- Signed tenant tokens (src/tokens.rs; their key table comes from sql/tokens.sql).

CREATE FUNCTION tenant.set_signing_key(algorithm text, key text)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'set_signing_key_wrapper';
COMMENT ON FUNCTION tenant.set_signing_key(text, text) IS 'pg_tenant: register the key that verifies tenant tokens of an algorithm (HS256/HS384/HS512: a secret of at least 32 bytes; EdDSA/ES256: a PEM public key); NULL removes it. Superusers only';
REVOKE EXECUTE ON FUNCTION tenant.set_signing_key(text, text) FROM PUBLIC;

CREATE FUNCTION tenant.set_token(token text, local boolean DEFAULT false, "lock" boolean DEFAULT false)
RETURNS uuid VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'set_token_wrapper';
COMMENT ON FUNCTION tenant.set_token(text, boolean, boolean) IS 'pg_tenant: verify a signed tenant token (JWT) and act as the tenant it names; lock => true: only a newer token can change the tenant afterwards';

CREATE FUNCTION tenant.refresh_usage()
RETURNS integer VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'refresh_usage_wrapper';
COMMENT ON FUNCTION tenant.refresh_usage() IS 'pg_tenant: measure every schema tenant''s schema size as its schema_bytes usage; returns how many it measured';
REVOKE EXECUTE ON FUNCTION tenant.refresh_usage() FROM PUBLIC;

-- Count quotas count inserted rows with a tenant_quota index (sql/row_counter.sql, before this
-- file) instead of an INSERT trigger with a transition table; the trigger may no longer be
-- attached by just anyone.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT t.tgrelid::regclass AS rel, t.tgname, a.args
          FROM pg_catalog.pg_trigger t
         CROSS JOIN LATERAL (SELECT pg_catalog.string_to_array(pg_catalog.encode(t.tgargs, 'escape'), '\000') AS args) a
         WHERE t.tgfoid = 'tenant.quota_trigger()'::regprocedure AND a.args[2] = 'count'
           AND t.tgtype::int & 4 <> 0   -- an INSERT trigger
         ORDER BY t.tgrelid
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', r.tgname, r.rel);
        -- A partition gets its index from its partitioned parent's, when that counts the same
        -- resource (an inheritance child needs its own).
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_inherits i
                         JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid AND c.relispartition
                         JOIN pg_catalog.pg_trigger p ON p.tgrelid = i.inhparent AND p.tgfoid = 'tenant.quota_trigger()'::regprocedure
                        WHERE i.inhrelid = r.rel::oid
                          AND (pg_catalog.string_to_array(pg_catalog.encode(p.tgargs, 'escape'), '\000'))[1:2] = ARRAY[r.args[1], 'count']) THEN
            EXECUTE pg_catalog.format('CREATE INDEX ON %s USING tenant_quota (%I) WITH (resource = %L)', r.rel, r.args[3], r.args[1]);
        END IF;
    END LOOP;
END
$$;
REVOKE EXECUTE ON FUNCTION tenant.quota_trigger() FROM PUBLIC;

-- tenant.import() recounts the count quotas of the rows it loads (src/quotas.rs).
CREATE FUNCTION tenant.recount_tenant(tenant_id uuid) RETURNS void
VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'recount_tenant_wrapper';
REVOKE EXECUTE ON FUNCTION tenant.recount_tenant(uuid) FROM PUBLIC;
-- Keys that verify tenant tokens (src/tokens.rs). Only the extension owner reads them.
CREATE TABLE tenant.signing_keys (
    algorithm  text PRIMARY KEY CHECK (algorithm IN ('HS256', 'HS384', 'HS512', 'EdDSA', 'ES256')),
    key        text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant.signing_keys IS 'pg_tenant: keys that verify tenant tokens (tenant.set_signing_key); readable by the extension owner only';
SELECT pg_catalog.pg_extension_config_dump('tenant.signing_keys', '');
-- Export and import of one tenant's data (GDPR export; tenant.drop() is the erasure).
-- Added in 0.2.0.

-- A schema tenant's own schema: every row of every table (a partitioned table through its root,
-- other tables ONLY themselves), without the tenant column of protected ones, and where each
-- sequence stands, so that an import continues numbering where the export left off.
CREATE FUNCTION tenant.export_schema(schema_name name) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tables jsonb := '{}';
    sequences jsonb := '{}';
    rows jsonb;
    r record;
BEGIN
    FOR r IN SELECT c.oid::regclass AS tbl, c.relname, c.relkind, p.tenant_column
               FROM pg_class c LEFT JOIN tenant.protected_tables p ON p.table_name = c.oid
              WHERE c.relnamespace = export_schema.schema_name::regnamespace
                AND (c.relkind = 'p' AND NOT c.relispartition OR c.relkind = 'r' AND NOT c.relispartition)
              ORDER BY c.relname
    LOOP
        EXECUTE format('SELECT COALESCE(jsonb_agg(to_jsonb(x) %s ORDER BY x::text), ''[]'') FROM %s %s x',
                       CASE WHEN r.tenant_column IS NULL THEN '' ELSE format('- %L', r.tenant_column) END,
                       CASE WHEN r.relkind = 'p' THEN '' ELSE 'ONLY' END, r.tbl)
           INTO rows;
        tables := tables || jsonb_build_object(r.relname, rows);
    END LOOP;
    FOR r IN SELECT c.oid::regclass AS seq, c.relname FROM pg_class c
              WHERE c.relnamespace = export_schema.schema_name::regnamespace AND c.relkind = 'S' ORDER BY c.relname
    LOOP
        EXECUTE format('SELECT jsonb_build_object(''last_value'', last_value, ''is_called'', is_called) FROM %s', r.seq) INTO rows;
        sequences := sequences || jsonb_build_object(r.relname, rows);
    END LOOP;
    RETURN jsonb_build_object('name', schema_name, 'tables', tables, 'sequences', sequences);
END
$$;
COMMENT ON FUNCTION tenant.export_schema(name) IS 'pg_tenant: the rows and sequence positions of a schema tenant''s schema (part of tenant.export)';

-- Everything of one tenant as one JSON document: its registry row, plan, own limits, usage, and
-- every row of every protected table (a partitioned or inheritance tree read through its root).
CREATE FUNCTION tenant.export(tenant text) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t tenant.tenants;
    tables jsonb := '{}';
    rows jsonb;
    r record;
    own_schema jsonb;
BEGIN
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'argument "tenant" must not be NULL' USING ERRCODE = '22004';
    END IF;
    SELECT * INTO t FROM tenant.tenants x
     WHERE x.slug = export.tenant OR x.id::text = lower(export.tenant);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant "%" does not exist', tenant USING ERRCODE = 'PT002';
    END IF;
    -- Shared protected tables (tables in tenant schemas are exported with their tenant below).
    FOR r IN SELECT p.table_name, p.tenant_column FROM tenant.protected_tables p
              JOIN pg_class c ON c.oid = p.table_name JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE (p.parent IS NULL OR p.parent NOT IN (SELECT table_name FROM tenant.protected_tables))
                AND n.nspname NOT IN (SELECT x.schema_name FROM tenant.tenants x WHERE x.schema_name IS NOT NULL)
              ORDER BY p.table_name::text
    LOOP
        -- Rows in a stable order (by their text form), so that two exports of the same data are equal.
        EXECUTE format('SELECT COALESCE(jsonb_agg(to_jsonb(x) - %L ORDER BY x::text), ''[]'') FROM %s x WHERE %I = $1',
                       r.tenant_column, r.table_name, r.tenant_column)
           INTO rows USING t.id;
        tables := tables || jsonb_build_object(r.table_name::text, rows);
    END LOOP;
    IF t.schema_name IS NOT NULL THEN
        own_schema := tenant.export_schema(t.schema_name);
    END IF;
    RETURN jsonb_build_object(
        'format', 'pg_tenant-export-1',
        'exported_at', now(),
        'tenant', to_jsonb(t),
        'plan', (SELECT to_jsonb(p) FROM tenant.plans p WHERE p.name = t.plan),
        'limits', (SELECT COALESCE(jsonb_agg(to_jsonb(o) - 'tenant_id' ORDER BY o.resource), '[]')
                     FROM tenant.limit_overrides o WHERE o.tenant_id = t.id),
        -- Count quotas kept in shared memory (src/shared_counters.rs) are read from there.
        'usage', (SELECT COALESCE(jsonb_agg(jsonb_build_object('resource', x.resource, 'period_start', x.period_start,
                                                               'used', x.used)
                                            ORDER BY x.resource, x.period_start), '[]')
                    FROM (SELECT u.resource, u.period_start,
                                 CASE WHEN u.period_start = '-infinity'
                                      THEN COALESCE(tenant.counted_usage(u.tenant_id, u.resource), u.used)
                                      ELSE u.used END AS used
                            FROM tenant.usage_counters u WHERE u.tenant_id = t.id
                          UNION ALL
                          SELECT c.resource, '-infinity'::timestamptz, c.used
                            FROM (SELECT a.resource, tenant.counted_usage(t.id, a.resource) AS used
                                    FROM (SELECT DISTINCT q.resource FROM tenant.quota_attachments q WHERE q.mode = 'count') a) c
                           WHERE c.used IS NOT NULL
                             AND NOT EXISTS (SELECT FROM tenant.usage_counters u
                                              WHERE u.tenant_id = t.id AND u.resource = c.resource
                                                AND u.period_start = '-infinity')) x),
        'tables', tables)
        || CASE WHEN own_schema IS NULL THEN '{}' ELSE jsonb_build_object('schema', own_schema) END;
END
$$;
COMMENT ON FUNCTION tenant.export(text) IS 'pg_tenant: every row of a tenant in every protected table, with its registry row, plan, limits and usage (GDPR export)';

-- Inserts exported rows (a JSON array) into a table, the tenant column (of a protected table)
-- set to the target tenant; generated columns are computed again. Returns how many.
CREATE FUNCTION tenant.import_rows(tbl regclass, data_rows jsonb, target uuid) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    col name;
    cols text;
    n bigint;
BEGIN
    SELECT p.tenant_column INTO col FROM tenant.protected_tables p WHERE p.table_name = tbl;
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
      FROM pg_attribute a
     WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
    EXECUTE format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM jsonb_populate_recordset(NULL::%s, $1)',
                   tbl, cols, cols, tbl)
       USING (SELECT COALESCE(jsonb_agg(CASE WHEN col IS NULL THEN e ELSE e || jsonb_build_object(col, target) END), '[]')
                FROM jsonb_array_elements(data_rows) e);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

-- Loads an export into an existing tenant that has no rows yet: rows get the target tenant's id,
-- its own limits and usage are restored. Triggers (the write guard, quota triggers, foreign-key
-- checks) are off while loading, so it needs a superuser and does all or nothing.
CREATE FUNCTION tenant.import(tenant text, data jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    target uuid;
    r record;
    tbl regclass;
    col name;
    existing bigint;
    counts jsonb := '{}';
    own name;
BEGIN
    IF tenant IS NULL OR data IS NULL THEN
        RAISE EXCEPTION 'argument "%" must not be NULL', CASE WHEN tenant IS NULL THEN 'tenant' ELSE 'data' END
            USING ERRCODE = '22004';
    END IF;
    IF data->>'format' IS DISTINCT FROM 'pg_tenant-export-1' OR jsonb_typeof(data->'tables') IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'invalid value for argument "data": not a pg_tenant export (format pg_tenant-export-1)'
            USING ERRCODE = '22023';
    END IF;
    SELECT x.id INTO target FROM tenant.tenants x WHERE x.slug = import.tenant OR x.id::text = lower(import.tenant);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'tenant "%" does not exist', tenant USING ERRCODE = 'PT002';
    END IF;
    -- Every table must exist and be protected, and the tenant must have no rows in it yet.
    FOR r IN SELECT key AS name, value AS rows FROM jsonb_each(data->'tables') LOOP
        tbl := to_regclass(r.name);
        SELECT p.tenant_column INTO col FROM tenant.protected_tables p WHERE p.table_name = tbl;
        IF tbl IS NULL OR col IS NULL THEN
            RAISE EXCEPTION 'table % of the export is not a protected table here', r.name USING ERRCODE = '42809';
        END IF;
        EXECUTE format('SELECT count(*) FROM %s WHERE %I = $1', tbl, col) INTO existing USING target;
        IF existing > 0 THEN
            RAISE EXCEPTION 'tenant "%" already has % row(s) in %', tenant, existing, tbl
                USING ERRCODE = '55000', HINT = 'Import into a new, empty tenant.';
        END IF;
    END LOOP;
    SET LOCAL session_replication_role = replica;
    FOR r IN SELECT key AS name, value AS rows FROM jsonb_each(data->'tables') LOOP
        tbl := to_regclass(r.name);
        counts := counts || jsonb_build_object(tbl::text, tenant.import_rows(tbl, r.rows, target));
    END LOOP;
    -- A schema tenant's own tables, into the target's schema (which must have them, empty).
    IF data ? 'schema' THEN
        SELECT x.schema_name INTO own FROM tenant.tenants x WHERE x.id = target;
        IF own IS NULL THEN
            RAISE EXCEPTION 'the export holds a tenant schema but tenant "%" has none', tenant
                USING ERRCODE = '42809', HINT = 'Import into a tenant created with isolation => ''schema'' from the same template.';
        END IF;
        FOR r IN SELECT key AS name, value AS rows FROM jsonb_each(data->'schema'->'tables') LOOP
            tbl := to_regclass(format('%I.%I', own, r.name));
            IF tbl IS NULL THEN
                RAISE EXCEPTION 'table % of the export does not exist in schema %', r.name, own USING ERRCODE = '42P01';
            END IF;
            EXECUTE format('SELECT count(*) FROM %s', tbl) INTO existing;
            IF existing > 0 THEN
                RAISE EXCEPTION 'tenant "%" already has % row(s) in %', tenant, existing, tbl
                    USING ERRCODE = '55000', HINT = 'Import into a new, empty tenant.';
            END IF;
            counts := counts || jsonb_build_object(tbl::text, tenant.import_rows(tbl, r.rows, target));
        END LOOP;
        FOR r IN SELECT key AS name, value AS position FROM jsonb_each(data->'schema'->'sequences') LOOP
            IF to_regclass(format('%I.%I', own, r.name)) IS NOT NULL THEN
                PERFORM setval(format('%I.%I', own, r.name)::regclass, (r.position->>'last_value')::bigint,
                               (r.position->>'is_called')::boolean);
            END IF;
        END LOOP;
    END IF;
    SET LOCAL session_replication_role = origin;
    DELETE FROM tenant.limit_overrides WHERE tenant_id = target;
    INSERT INTO tenant.limit_overrides (tenant_id, resource, "limit", period)
    SELECT target, o.resource, o."limit", o.period
      FROM jsonb_populate_recordset(NULL::tenant.limit_overrides, data->'limits') o;
    DELETE FROM tenant.usage_counters WHERE tenant_id = target;
    INSERT INTO tenant.usage_counters (tenant_id, resource, period_start, used)
    SELECT target, u.resource, u.period_start, u.used
      FROM jsonb_populate_recordset(NULL::tenant.usage_counters, data->'usage') u;
    -- Count quotas are the rows just loaded, whatever the document says.
    PERFORM tenant.recount_tenant(target);
    INSERT INTO tenant.audit_log (tenant_id, action, detail)
    VALUES (target, 'import', jsonb_build_object('slug', (SELECT slug FROM tenant.tenants WHERE id = target),
                                                 'from', data->'tenant'->>'slug', 'rows', counts));
    RETURN counts;
END
$$;
COMMENT ON FUNCTION tenant.import(text, jsonb) IS 'pg_tenant: load a tenant.export() document into an empty tenant';

REVOKE EXECUTE ON FUNCTION tenant.export(text), tenant.import(text, jsonb), tenant.export_schema(name),
    tenant.import_rows(regclass, jsonb, uuid) FROM PUBLIC;
-- The isolation checker: where a tenancy setup is weak. Added in 0.2.0.
-- One row per finding; a clean setup returns none. Each finding is described in the README.
CREATE FUNCTION tenant.check()
RETURNS TABLE (severity text, object text, problem text, fix text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
WITH protected AS (
    SELECT p.table_name::oid AS relid, p.table_name, p.tenant_column, p.parent
      FROM tenant.protected_tables p
),
tree AS (  -- every relation below a protected table, protected or not
    WITH RECURSIVE t(relid, root, tenant_column) AS (
        SELECT relid, relid, tenant_column FROM protected
        UNION
        SELECT i.inhrelid, t.root, t.tenant_column FROM pg_inherits i JOIN t ON i.inhparent = t.relid)
    SELECT * FROM t
),
app_tables AS (
    SELECT c.oid, c.relname, c.relkind, c.relowner, c.relacl
      FROM pg_class c
     WHERE c.relkind IN ('r', 'p', 'v', 'm')
       AND c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'tenant'::regnamespace)
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
SELECT 'high', p.table_name::text, 'row-level security is not enabled or not forced',
       format('SELECT tenant.protect(%L, %L);', p.table_name::text, p.tenant_column)
  FROM protected p JOIN pg_class c ON c.oid = p.relid
 WHERE NOT (c.relrowsecurity AND c.relforcerowsecurity)
UNION ALL
SELECT 'high', p.table_name::text, 'the tenant_isolation policy is missing',
       format('SELECT tenant.protect(%L, %L);', p.table_name::text, p.tenant_column)
  FROM protected p
 WHERE NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = p.relid AND polname = 'tenant_isolation')
UNION ALL
SELECT 'medium', p.table_name::text, format('no index leads with the tenant column %I: every query scans other tenants'' rows', p.tenant_column),
       format('CREATE INDEX ON %s (%I);', p.table_name, p.tenant_column)
  FROM protected p
 WHERE NOT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                    WHERE i.indrelid = p.relid AND a.attname = p.tenant_column)
UNION ALL
-- 3. A partition or inheritance child that is not filtered when queried directly.
SELECT 'high', t.relid::regclass::text, format('partition or child of protected table %s is not protected: querying it directly is not filtered', t.root::regclass),
       format('SELECT tenant.protect(%L, %L);', t.root::regclass::text, t.tenant_column)
  FROM tree t
 WHERE t.relid NOT IN (SELECT relid FROM protected)
UNION ALL
-- 4. A foreign key between protected tables that does not include the tenant column.
SELECT 'medium', format('%s (%s)', con.conrelid::regclass, con.conname),
       format('foreign key to %s does not include the tenant column: rows can reference another tenant''s rows and probe for their existence', con.confrelid::regclass),
       'Add the tenant column to both sides of the key (and to the referenced unique key).'
  FROM pg_constraint con
  JOIN protected src ON src.relid = con.conrelid
  JOIN protected dst ON dst.relid = con.confrelid
 WHERE con.contype = 'f'
   AND NOT EXISTS (SELECT 1 FROM unnest(con.conkey) k JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k
                    WHERE a.attname = src.tenant_column)
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
) AS findings (severity, object, problem, fix)
ORDER BY CASE severity WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END, object, problem
$$;
COMMENT ON FUNCTION tenant.check() IS 'pg_tenant: findings about weak spots of the tenancy setup (none for a clean setup)';
REVOKE EXECUTE ON FUNCTION tenant.check() FROM PUBLIC;
-- Schema-isolated tenants (src/schemas.rs): templates, migrations, drift, schema sizes.

-- Template schemas tenants were cloned from; tenant.migrate changes them along with the tenants.
CREATE TABLE tenant.schema_templates (
    schema_name   name PRIMARY KEY,
    registered_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant.schema_templates IS 'pg_tenant: template schemas of schema tenants (registered by tenant.create)';

CREATE TABLE tenant.schema_migrations (
    version     text NOT NULL,
    schema_name name NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    duration    interval NOT NULL,
    PRIMARY KEY (version, schema_name)
);
COMMENT ON TABLE tenant.schema_migrations IS 'pg_tenant: which migration (tenant.migrate) ran in which schema, when, and how long it took';

SELECT pg_catalog.pg_extension_config_dump('tenant.schema_templates', '');
SELECT pg_catalog.pg_extension_config_dump('tenant.schema_migrations', '');

-- Runs tenant.migrate_next until every schema has the migration, committing after each batch:
-- a failure keeps the batches before it, and a re-run finishes the rest. No SET clause (a
-- procedure with one cannot commit), so every name is qualified.
CREATE PROCEDURE tenant.migrate_batches(version text, ddl text, batch_size integer DEFAULT 100)
LANGUAGE plpgsql AS $$
DECLARE
    migrated integer;
BEGIN
    LOOP
        migrated := tenant.migrate_next(version, ddl, batch_size);
        COMMIT;
        EXIT WHEN migrated OPERATOR(pg_catalog.<) batch_size;
    END LOOP;
END
$$;
COMMENT ON PROCEDURE tenant.migrate_batches(text, text, integer) IS 'pg_tenant: tenant.migrate for thousands of schemas, committing per batch; re-run it after a failure to finish the rest';

-- The structure of a schema as (object, definition) pairs, with the schema's own name taken out
-- of the definitions so that a template and its clones compare equal. pg_tenant's own guard
-- policies, trigger and row security settings on tenant schemas are left out.
CREATE FUNCTION tenant.schema_structure(schema_name name)
RETURNS TABLE (object text, definition text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
WITH s AS (SELECT oid, quote_ident(nspname) || '.' AS prefix FROM pg_namespace WHERE nspname = schema_name),
objects(object, definition) AS (
    SELECT format('%s %I', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
                              WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'c' THEN 'type' END, c.relname),
           concat_ws(' ', c.relkind, c.relpersistence,
                     CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                     CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
                     CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
                     array_to_string(c.reloptions, ','),
                     (SELECT concat_ws(' ', seqtypid::regtype, seqstart, seqincrement, seqmin, seqmax, seqcache, seqcycle)
                      FROM pg_sequence WHERE seqrelid = c.oid))
    FROM pg_class c, s WHERE c.relnamespace = s.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'c')
    UNION ALL
    SELECT format('column %I.%I', c.relname, a.attname),
           concat_ws(' ', format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN 'NOT NULL' END,
                     CASE WHEN a.attcollation <> 0 THEN a.attcollation::regcollation::text END,
                     nullif(a.attidentity, ''), nullif(a.attgenerated, ''), pg_get_expr(d.adbin, d.adrelid))
    FROM pg_class c JOIN s ON c.relnamespace = s.oid JOIN pg_attribute a ON a.attrelid = c.oid
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'c') AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('constraint %I on %I', k.conname, coalesce(c.relname, t.typname)), pg_get_constraintdef(k.oid)
    FROM pg_constraint k JOIN s ON k.connamespace = s.oid
    LEFT JOIN pg_class c ON c.oid = k.conrelid LEFT JOIN pg_type t ON t.oid = k.contypid
    UNION ALL
    SELECT format('index %I', i.relname), pg_get_indexdef(i.oid)
    FROM pg_class i JOIN s ON i.relnamespace = s.oid WHERE i.relkind IN ('i', 'I')
    UNION ALL
    SELECT format('trigger %I on %I', g.tgname, c.relname), pg_get_triggerdef(g.oid) || ' ' || g.tgenabled::text
    FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid JOIN s ON c.relnamespace = s.oid
    WHERE NOT g.tgisinternal AND g.tgname <> 'tenant_schema_guard'
    UNION ALL
    SELECT format('policy %I on %I', p.polname, c.relname),
           concat_ws(' ', p.polcmd, p.polpermissive, p.polroles::regrole[]::text,
                     pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
    FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN s ON c.relnamespace = s.oid
    WHERE p.polname NOT IN ('tenant_schema_isolation', 'tenant_schema_access')
    UNION ALL
    SELECT format('rule %I on %I', w.rulename, c.relname), pg_get_ruledef(w.oid)
    FROM pg_rewrite w JOIN pg_class c ON c.oid = w.ev_class JOIN s ON c.relnamespace = s.oid WHERE w.rulename <> '_RETURN'
    UNION ALL
    SELECT format('function %I(%s)', p.proname, pg_get_function_identity_arguments(p.oid)),
           CASE WHEN p.prokind = 'a' THEN p.prorettype::regtype::text ELSE pg_get_functiondef(p.oid) END
    FROM pg_proc p JOIN s ON p.pronamespace = s.oid
    UNION ALL
    SELECT format('type %I', t.typname),
           concat_ws(' ', t.typtype, format_type(t.typbasetype, t.typtypmod), t.typnotnull,
                     (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))
    FROM pg_type t JOIN s ON t.typnamespace = s.oid WHERE t.typtype IN ('e', 'd', 'r')
)
SELECT o.object, replace(o.definition, s.prefix, '') FROM objects o, s
$$;
COMMENT ON FUNCTION tenant.schema_structure(name) IS 'pg_tenant: a schema''s structure as (object, definition) rows, comparable across schemas (used by tenant.schema_drift)';

CREATE FUNCTION tenant.schema_drift()
RETURNS TABLE (tenant text, schema_name name, template name, object text, difference text,
               template_definition text, tenant_definition text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
SELECT t.slug, t.schema_name, t.template, d.object, d.difference, d.template_definition, d.tenant_definition
FROM tenant.tenants t
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
COMMENT ON FUNCTION tenant.schema_drift() IS 'pg_tenant: every difference between a schema tenant''s schema and its template (none: no rows)';

REVOKE EXECUTE ON FUNCTION tenant.schema_drift(), tenant.schema_structure(name) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE tenant.migrate_batches(text, text, integer) FROM PUBLIC;
