-- The audit trail. Kept by pg_dump; readable by the extension owner (superusers) only.
CREATE TABLE tenant_data.audit_log (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    tenant_id uuid,
    actor     text NOT NULL DEFAULT SESSION_USER,
    action    text NOT NULL,
    detail    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_tenant_id_idx ON tenant_data.audit_log (tenant_id, at);
COMMENT ON TABLE tenant_data.audit_log IS 'pg_tenant: every administrative change (create, suspend, resume, drop, protect, unprotect, grants); kept when a tenant is dropped';
SELECT pg_catalog.pg_extension_config_dump('tenant_data.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('tenant_data.audit_log', 'id'), '');
