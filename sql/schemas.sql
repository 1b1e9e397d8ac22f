-- Schema-isolated tenants (src/schemas.rs): templates, migrations, drift, schema sizes.

-- Template schemas tenants were cloned from; tenant.migrate changes them along with the tenants.
CREATE TABLE tenant_data.schema_templates (
    schema_name   name PRIMARY KEY,
    registered_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant_data.schema_templates IS 'pg_tenant: template schemas of schema tenants (registered by tenant.create)';

CREATE TABLE tenant_data.schema_migrations (
    version     text NOT NULL,
    schema_name name NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    duration    interval NOT NULL,
    PRIMARY KEY (version, schema_name)
);
COMMENT ON TABLE tenant_data.schema_migrations IS 'pg_tenant: which migration (tenant.migrate) ran in which schema, when, and how long it took';

-- Locks pg_tenant serializes on, by name (src/owner.rs, take_named_lock): row locks on this table,
-- which only the extension owner may lock. Since 0.3.0.
CREATE TABLE tenant_data.locks (name text PRIMARY KEY);
COMMENT ON TABLE tenant_data.locks IS 'pg_tenant: named locks (migrate, recount), taken as row locks by the extension owner';
INSERT INTO tenant_data.locks (name) VALUES ('migrate'), ('recount');

SELECT pg_catalog.pg_extension_config_dump('tenant_data.schema_templates', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_data.schema_migrations', '');

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
COMMENT ON FUNCTION tenant.schema_drift() IS 'pg_tenant: every difference between a schema tenant''s schema and its template (none: no rows)';

REVOKE EXECUTE ON FUNCTION tenant.schema_drift(), tenant.schema_structure(name) FROM PUBLIC;
REVOKE EXECUTE ON PROCEDURE tenant.migrate_batches(text, text, integer) FROM PUBLIC;
