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
