-- Keys that verify tenant tokens (src/tokens.rs). Only the extension owner reads them.
CREATE TABLE tenant_data.signing_keys (
    algorithm  text PRIMARY KEY CHECK (algorithm IN ('HS256', 'HS384', 'HS512', 'EdDSA', 'ES256')),
    key        text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant_data.signing_keys IS 'pg_tenant: keys that verify tenant tokens (tenant.set_signing_key); readable by the extension owner only';
SELECT pg_catalog.pg_extension_config_dump('tenant_data.signing_keys', '');

-- The key that signs the tenant context tenant.set_local() passes to Citus workers
-- (pg_tenant.context, src/context/node.rs). tenant.citus_setup() makes it (and makes the table a
-- reference table); only the extension owner reads it. Not dumped: after a restore,
-- citus_setup() makes a new one.
CREATE TABLE tenant_data.node_key (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    secret     text NOT NULL CHECK (secret ~ '^[0-9a-f]{64}$'),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant_data.node_key IS 'pg_tenant: the key that signs the tenant context passed to Citus workers (tenant.citus_setup); readable by the extension owner only';
