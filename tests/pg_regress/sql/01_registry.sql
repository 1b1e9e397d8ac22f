-- The tenant registry: create, suspend, resume, drop, grants, the audit log, and every error.
\set SHOW_CONTEXT never
-- try() runs a statement and reports its SQLSTATE, so error codes are part of the test.
CREATE SCHEMA IF NOT EXISTS test;
GRANT USAGE ON SCHEMA test TO PUBLIC;
CREATE OR REPLACE FUNCTION test.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

SELECT tenant.create('acme', 'Acme Corp') IS NOT NULL AS created;
SELECT tenant.create_plan('pro', '{}');
SELECT tenant.create('globex', plan => 'pro', settings => '{"region": "eu"}') IS NOT NULL AS created;
SELECT slug, name, status, plan, settings, created_at <= now() AS created_ok, updated_at = created_at AS fresh
  FROM tenant_data.tenants ORDER BY slug;

-- Slugs: 1 to 63 of [a-z0-9_-], first a letter or digit, not shaped like a uuid.
SELECT tenant.create('a') IS NOT NULL AS one_char;
SELECT tenant.create(repeat('x', 63)) IS NOT NULL AS sixty_three;
SELECT tenant.create('9lives_co-op') IS NOT NULL AS digits_dash_underscore;
SELECT test.try($$SELECT tenant.create('')$$);
SELECT test.try($$SELECT tenant.create(repeat('x', 64))$$);
SELECT test.try($$SELECT tenant.create('Acme')$$);
SELECT test.try($$SELECT tenant.create('-acme')$$);
SELECT test.try($$SELECT tenant.create('_acme')$$);
SELECT test.try($$SELECT tenant.create('acme corp')$$);
SELECT test.try($$SELECT tenant.create('acme'';drop table x;--')$$);
SELECT test.try($$SELECT tenant.create('café')$$);
SELECT test.try($$SELECT tenant.create('big', settings => '{"n": 1e400}')$$);
SELECT test.try($$SELECT tenant.create('6f1c2a2e-8a51-4a8e-9a43-0d3c6a9b1e11')$$);
-- Duplicates, NULLs and bad settings.
SELECT test.try($$SELECT tenant.create('acme')$$);
SELECT test.try($$SELECT tenant.create(NULL)$$);
SELECT test.try($$SELECT tenant.create('initech', plan => NULL)$$);
SELECT test.try($$SELECT tenant.create('initech', settings => NULL)$$);
SELECT test.try($$SELECT tenant.create('initech', settings => '[1, 2]')$$);
SELECT test.try($$SELECT tenant.create('initech', plan => 'no-such-plan')$$);
-- The plain error text, with its hint.
SELECT tenant.create('Bad Slug');
-- None of the failed calls left a tenant or an audit row behind.
SELECT count(*) AS tenants FROM tenant_data.tenants;
SELECT action, count(*) FROM tenant_data.audit_log GROUP BY action ORDER BY action;
-- The tables keep their 0.2.0 names as views for administrators (superusers and the extension
-- owner only, as the tables were): same rows, read-only (each reads its table through a function,
-- so that a statement prepared on the view by anyone locks nothing of pg_tenant's tables).
SELECT (SELECT count(*) FROM tenant.tenants) = (SELECT count(*) FROM tenant_data.tenants) AS same_tenants,
       (SELECT count(*) FROM tenant.audit_log) = (SELECT count(*) FROM tenant_data.audit_log) AS same_audit;
SELECT c.relname, c.relkind,
       NOT EXISTS (SELECT 1 FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
                    WHERE a.grantee <> c.relowner) AS owner_only
  FROM pg_class c WHERE c.relnamespace = 'tenant'::regnamespace
   AND c.relname IN ('tenants', 'gateways', 'tenant_access', 'audit_log', 'plans', 'limit_overrides',
                     'usage_counters', 'schema_templates', 'schema_migrations', 'signing_keys', 'locks')
 ORDER BY 1;
SELECT test.try($$UPDATE tenant.tenants SET name = 'Acme Inc' WHERE slug = 'acme'$$);
SELECT name FROM tenant_data.tenants WHERE slug = 'acme';
CREATE ROLE reg_nobody;
SET ROLE reg_nobody;
SELECT test.try($$SELECT count(*) FROM tenant.tenants$$);
SELECT test.try($$SELECT count(*) FROM tenant.audit_log$$);
SELECT test.try($$SELECT count(*) FROM tenant_data.tenants$$);
SELECT test.try($$SELECT count(*) FROM tenant_data.tenants_rows()$$);
RESET ROLE;
DROP ROLE reg_nobody;

-- Every function accepts the slug or the id.
SELECT tenant.suspend('acme', 'invoice overdue');
SELECT slug, status, suspended_reason, updated_at > created_at AS touched FROM tenant_data.tenants WHERE slug = 'acme';
SELECT tenant.resume((SELECT id::text FROM tenant_data.tenants WHERE slug = 'acme'));
SELECT slug, status, suspended_reason FROM tenant_data.tenants WHERE slug = 'acme';
SELECT test.try($$SELECT tenant.suspend('nope')$$);
SELECT test.try($$SELECT tenant.resume('00000000-0000-0000-0000-000000000000')$$);
SELECT test.try($$SELECT tenant.suspend(NULL)$$);
SELECT test.try($$SELECT tenant.resume(NULL)$$);
SELECT tenant.suspend('nope');

-- Grants: gateway roles act as any tenant, access roles as one.
CREATE ROLE reg_gateway;
CREATE ROLE reg_member;
SELECT tenant.grant_gateway('reg_gateway');
SELECT tenant.grant_gateway('reg_gateway');  -- idempotent
SELECT tenant.grant_access('acme', 'reg_member');
SELECT role FROM tenant_data.gateways;
SELECT t.slug, a.role FROM tenant_data.tenant_access a JOIN tenant_data.tenants t ON t.id = a.tenant_id;
SELECT test.try($$SELECT tenant.grant_access('nope', 'reg_member')$$);
SELECT test.try($$SELECT tenant.grant_access('acme', 'no_such_role')$$);
SELECT test.try($$SELECT tenant.grant_access('acme', NULL)$$);
SELECT test.try($$SELECT tenant.grant_gateway(NULL)$$);
SELECT tenant.revoke_access('acme', 'reg_member');
SELECT tenant.revoke_gateway('reg_gateway');
SELECT count(*) AS gateways FROM tenant_data.gateways;
SELECT count(*) AS access_rows FROM tenant_data.tenant_access;

-- Administrative functions are not for PUBLIC.
SET ROLE reg_member;
SELECT test.try($$SELECT tenant.create('sneaky')$$);
SELECT test.try($$SELECT tenant.suspend('acme')$$);
SELECT test.try($$SELECT tenant.drop('acme')$$);
SELECT test.try($$SELECT tenant.grant_gateway('reg_member')$$);
SELECT test.try($$SELECT * FROM tenant_data.tenants$$);
SELECT test.try($$SELECT * FROM tenant_data.audit_log$$);
SELECT test.try($$UPDATE tenant_data.tenants SET status = 'active'$$);
RESET ROLE;

-- Drop: the registry row and grants go, the audit trail stays.
SELECT tenant.grant_access('globex', 'reg_member');
SELECT tenant.drop('globex');
SELECT count(*) AS globex_rows FROM tenant_data.tenants WHERE slug = 'globex';
SELECT count(*) AS access_rows FROM tenant_data.tenant_access;
SELECT test.try($$SELECT tenant.drop('globex')$$);
SELECT test.try($$SELECT tenant.drop(NULL)$$);
-- The same slug can be registered again, with a new id.
SELECT tenant.create('globex') <> (SELECT tenant_id FROM tenant_data.audit_log WHERE action = 'drop') AS new_id;

-- The audit log: one row per change, actor is the session user.
SELECT action, actor = session_user AS by_me,
       (tenant_id IS NOT NULL) AS has_tenant,
       detail - 'settings' AS detail
  FROM tenant_data.audit_log ORDER BY id;
-- Audit rows of the dropped tenant are still there.
SELECT count(*) AS globex_history FROM tenant_data.audit_log WHERE detail->>'slug' = 'globex';
DROP ROLE reg_gateway, reg_member;
