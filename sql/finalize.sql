-- Privileges, set once every object exists.
-- Administrative functions: superusers and the extension owner; GRANT EXECUTE to delegate.
REVOKE EXECUTE ON FUNCTION
    tenant."create"(text, text, text, jsonb, text, name),
    tenant.clone_schema(name, name, boolean),
    tenant.set_signing_key(text, text),
    tenant.migrate(text, text),
    tenant.migrate_next(text, text, integer),
    tenant.refresh_usage(),
    tenant.suspend(text, text),
    tenant.resume(text),
    tenant."drop"(text),
    tenant.protect(regclass, name, boolean),
    tenant.unprotect(regclass),
    tenant.grant_gateway(regrole, boolean, boolean),
    tenant.revoke_gateway(regrole),
    tenant.grant_access(text, regrole, boolean, boolean),
    tenant.revoke_access(text, regrole),
    tenant.create_plan(text, jsonb),
    tenant.alter_plan(text, jsonb),
    tenant.drop_plan(text),
    tenant.change_plan(text, text),
    tenant.set_limit(text, text, bigint, text),
    tenant.clear_limit(text, text),
    tenant.set_plan_settings(text, jsonb),
    tenant.set_tenant_settings(text, jsonb),
    tenant.attach_quota(regclass, text, text),
    tenant.detach_quota(regclass, text),
    tenant.citus_setup(),
    tenant.stats_rows(),
    tenant.stats_reset(text)
FROM PUBLIC;
-- The quota trigger charges whatever tenant ids the rows of its table hold: only attach_quota
-- (and DDL by those who may run it) creates it. Firing needs no EXECUTE privilege.
REVOKE EXECUTE ON FUNCTION tenant.quota_trigger() FROM PUBLIC;
-- tenant.consume/check_quota/info act for the current tenant only; my_tenants lists the
-- caller's own rights.
-- tenant.set/set_local check who may act as the tenant themselves; current/reset are harmless;
-- guard runs as a trigger. All stay executable by PUBLIC.

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
