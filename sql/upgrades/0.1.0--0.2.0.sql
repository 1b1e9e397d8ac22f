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
