-- Keys that verify tenant tokens (src/tokens.rs). Only the extension owner reads them.
CREATE TABLE tenant_data.signing_keys (
    algorithm  text PRIMARY KEY CHECK (algorithm IN ('HS256', 'HS384', 'HS512', 'EdDSA', 'ES256')),
    key        text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant_data.signing_keys IS 'pg_tenant: keys that verify tenant tokens (tenant.set_signing_key); readable by the extension owner only';
SELECT pg_catalog.pg_extension_config_dump('tenant_data.signing_keys', '');
