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
    tenant.grant_gateway(regrole, boolean),
    tenant.revoke_gateway(regrole),
    tenant.grant_access(text, regrole, boolean),
    tenant.revoke_access(text, regrole),
    tenant.create_plan(text, jsonb),
    tenant.alter_plan(text, jsonb),
    tenant.drop_plan(text),
    tenant.change_plan(text, text),
    tenant.set_limit(text, text, bigint, text),
    tenant.clear_limit(text, text),
    tenant.attach_quota(regclass, text, text),
    tenant.detach_quota(regclass, text),
    tenant.citus_setup()
FROM PUBLIC;
-- The quota trigger charges whatever tenant ids the rows of its table hold: only attach_quota
-- (and DDL by those who may run it) creates it. Firing needs no EXECUTE privilege.
REVOKE EXECUTE ON FUNCTION tenant.quota_trigger() FROM PUBLIC;
-- tenant.consume/check_quota/info act for the current tenant only; my_tenants lists the
-- caller's own rights.
-- tenant.set/set_local check who may act as the tenant themselves; current/reset are harmless;
-- guard runs as a trigger. All stay executable by PUBLIC.

-- The tables under their 0.2.0 names, for administrators' SQL (SELECT ... FROM tenant.audit_log):
-- simple views (so updatable too) that only the extension owner and superusers may use, as the
-- tables were. pg_tenant itself reads tenant_data; a lock held on one of these views holds up
-- only readers of that view. tenant_data.signing_keys has no such view.
CREATE VIEW tenant.tenants AS SELECT * FROM tenant_data.tenants;
CREATE VIEW tenant.gateways AS SELECT * FROM tenant_data.gateways;
CREATE VIEW tenant.tenant_access AS SELECT * FROM tenant_data.tenant_access;
CREATE VIEW tenant.audit_log AS SELECT * FROM tenant_data.audit_log;
CREATE VIEW tenant.plans AS SELECT * FROM tenant_data.plans;
CREATE VIEW tenant.limit_overrides AS SELECT * FROM tenant_data.limit_overrides;
CREATE VIEW tenant.usage_counters AS SELECT * FROM tenant_data.usage_counters;
CREATE VIEW tenant.schema_templates AS SELECT * FROM tenant_data.schema_templates;
CREATE VIEW tenant.schema_migrations AS SELECT * FROM tenant_data.schema_migrations;
REVOKE ALL ON tenant.tenants, tenant.gateways, tenant.tenant_access, tenant.audit_log, tenant.plans,
    tenant.limit_overrides, tenant.usage_counters, tenant.schema_templates, tenant.schema_migrations
    FROM PUBLIC;
