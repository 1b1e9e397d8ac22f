-- pg_tenant's registry. Created first (bootstrap) so the Rust functions can refer to it.

-- Refuse to install into a schema somebody prepared in advance: objects planted in "tenant"
-- before CREATE EXTENSION would otherwise be adopted by the extension's functions.
DO $$
BEGIN
    IF (SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = 'tenant')
           IS DISTINCT FROM (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = current_user)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE relnamespace = 'tenant'::regnamespace)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc WHERE pronamespace = 'tenant'::regnamespace)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_type WHERE typnamespace = 'tenant'::regnamespace)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_operator WHERE oprnamespace = 'tenant'::regnamespace)
    THEN
        RAISE EXCEPTION 'schema "tenant" already exists and holds objects or belongs to another role'
            USING ERRCODE = '42P06',
                  HINT = 'pg_tenant creates and owns schema "tenant"; drop or rename the existing one first.';
    END IF;
END
$$;

REVOKE ALL ON SCHEMA tenant FROM PUBLIC;
GRANT USAGE ON SCHEMA tenant TO PUBLIC;

-- The tables live in schema tenant_data, which only the extension owner may use: PostgreSQL locks
-- the tables a statement names while it parses it, before it checks privileges, so a role that
-- could name them could hold a lock (PREPARE in an open transaction) and queue an ACCESS EXCLUSIVE
-- one behind it (CREATE RULE, refused only once granted) that every later tenant.set() waits
-- for. A role without USAGE on a schema cannot name what is in it. The API (functions, views)
-- is in schema tenant. A tenant_data schema made by someone else (a role with CREATE on the
-- database can) is refused with a clear error before anything is created.
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

CREATE TABLE tenant_data.tenants (
    id               uuid PRIMARY KEY,
    slug             text NOT NULL UNIQUE
                     CHECK (slug ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    name             text,
    status           text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    plan             text NOT NULL DEFAULT 'default',
    settings         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(settings) = 'object'),
    suspended_reason text,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- Since 0.2.0 (last, as ALTER TABLE ADD COLUMN puts them on an upgraded database):
    isolation        text NOT NULL DEFAULT 'shared' CHECK (isolation IN ('shared', 'schema')),
    schema_name      name UNIQUE,          -- a schema tenant's own schema
    template         name,                 -- the schema it was cloned from
    -- Since 0.3.0: settings applied while a session acts as the tenant, over its plan's
    -- (tenant.set_tenant_settings).
    context_settings jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(context_settings) = 'object'),
    CONSTRAINT tenants_schema_check CHECK ((isolation = 'schema') = (schema_name IS NOT NULL AND template IS NOT NULL))
);
COMMENT ON TABLE tenant_data.tenants IS 'pg_tenant: the tenant registry';

-- Roles that may act as any tenant (an application's connection role behind a pooler, say).
CREATE TABLE tenant_data.gateways (
    role       regrole PRIMARY KEY,
    granted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- Since 0.3.0: may act as a tenant only for a transaction (behind a transaction pooler).
    transaction_only boolean NOT NULL DEFAULT false,
    -- Since 0.3.0: may read as a tenant, not write (support staff).
    read_only boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE tenant_data.gateways IS 'pg_tenant: roles that may act as any tenant (tenant.grant_gateway)';

-- Roles that may act as one tenant. tenant_id names a row of tenant_data.tenants, kept so by
-- grant_access() (which holds that row while it writes) and drop() (which deletes the tenant's
-- grants), not by a foreign key: pg_restore -j copies configuration tables in parallel, in no
-- order, and a foreign key between two of them fails the copy that comes first.
CREATE TABLE tenant_data.tenant_access (
    tenant_id  uuid NOT NULL,
    role       regrole NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (tenant_id, role),
    -- Since 0.3.0 (see tenant_data.gateways).
    transaction_only boolean NOT NULL DEFAULT false,
    read_only boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE tenant_data.tenant_access IS 'pg_tenant: roles that may act as one tenant (tenant.grant_access)';

-- Configuration tables are dumped by pg_dump with their rows. A grant to a role dropped since
-- is left out: a regrole that names no role is written as its bare oid, which a restore takes for
-- whichever role has that oid there (in another cluster, quite possibly one).
SELECT pg_catalog.pg_extension_config_dump('tenant_data.tenants', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_data.gateways',
    'WHERE EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) gateways.role::pg_catalog.oid)');
SELECT pg_catalog.pg_extension_config_dump('tenant_data.tenant_access',
    'WHERE EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) tenant_access.role::pg_catalog.oid)');
