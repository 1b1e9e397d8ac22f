-- Plans, per-tenant limit overrides and usage counters. Readable by the extension owner only;
-- applications see their numbers through tenant.check_quota() and tenant.consume().

CREATE TABLE tenant_data.plans (
    name       text PRIMARY KEY CHECK (name <> ''),
    limits     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(limits) = 'object'),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- Since 0.3.0: settings applied while a session acts as a tenant of the plan
    -- (tenant.set_plan_settings).
    context_settings jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(context_settings) = 'object')
);
COMMENT ON TABLE tenant_data.plans IS 'pg_tenant: plans and their limits ({"resource": {"limit": N, "period": P}})';
INSERT INTO tenant_data.plans (name) VALUES ('default');

-- pg_restore copies the dumped plans after CREATE EXTENSION has inserted "default": an insert of
-- an existing plan becomes an update, so the dumped version wins instead of a duplicate-key error.
CREATE FUNCTION tenant.plans_insert_as_update() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE tenant_data.plans SET limits = NEW.limits, created_at = NEW.created_at, updated_at = NEW.updated_at,
                                 context_settings = NEW.context_settings
     WHERE name = NEW.name;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER plans_insert_as_update BEFORE INSERT ON tenant_data.plans
    FOR EACH ROW EXECUTE FUNCTION tenant.plans_insert_as_update();

-- tenant_id names a row of tenant_data.tenants, kept so by set_limit() and drop() rather than a
-- foreign key (see tenant_data.tenant_access in sql/registry.sql).
CREATE TABLE tenant_data.limit_overrides (
    tenant_id uuid NOT NULL,
    resource  text NOT NULL CHECK (resource <> ''),
    "limit"   bigint NOT NULL CHECK ("limit" >= -1),
    period    text CHECK (period IN ('none', 'minute', 'hour', 'day', 'month')),
    PRIMARY KEY (tenant_id, resource)
);
COMMENT ON TABLE tenant_data.limit_overrides IS 'pg_tenant: per-tenant limits that replace the plan''s (tenant.set_limit)';

-- One row per tenant, resource and period; period_start is -infinity for period "none".
-- Past periods stay for billing (tenant.usage_history).
CREATE TABLE tenant_data.usage_counters (
    tenant_id    uuid NOT NULL,
    resource     text NOT NULL,
    period_start timestamptz NOT NULL,
    used         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, resource, period_start)
) WITH (fillfactor = 50);  -- room on the page for HOT updates of these hot rows
COMMENT ON TABLE tenant_data.usage_counters IS 'pg_tenant: usage per tenant, resource and period';

SELECT pg_catalog.pg_extension_config_dump('tenant_data.plans', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_data.limit_overrides', '');
SELECT pg_catalog.pg_extension_config_dump('tenant_data.usage_counters', '');

-- The period containing "at": minute, hour and day periods follow UTC boundaries; month periods
-- start on the tenant's billing anchor (the same day and time of every month, clamped to the
-- month's last day the way PostgreSQL adds months).
CREATE FUNCTION tenant.period_bounds(anchor timestamptz, period text, at timestamptz,
                                     OUT period_start timestamptz, OUT period_end timestamptz)
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    a timestamp := anchor AT TIME ZONE 'UTC';
    t timestamp := at AT TIME ZONE 'UTC';
    k int;
BEGIN
    CASE period
    WHEN 'none' THEN
        period_start := '-infinity';
        period_end := 'infinity';
    WHEN 'minute', 'hour', 'day' THEN
        period_start := date_trunc(period, t) AT TIME ZONE 'UTC';
        period_end := (date_trunc(period, t) + ('1 ' || period)::interval) AT TIME ZONE 'UTC';
    WHEN 'month' THEN
        k := (extract(year FROM t)::int - extract(year FROM a)::int) * 12
             + extract(month FROM t)::int - extract(month FROM a)::int;
        IF a + make_interval(months => k) > t THEN
            k := k - 1;
        END IF;
        period_start := (a + make_interval(months => k)) AT TIME ZONE 'UTC';
        period_end := (a + make_interval(months => k + 1)) AT TIME ZONE 'UTC';
    ELSE
        RAISE EXCEPTION 'unknown period "%"', period USING ERRCODE = '22023';
    END CASE;
END
$$;

-- The limit that applies to a tenant and resource: its override, else its plan's, else unlimited.
CREATE FUNCTION tenant.effective_limit(tenant_id uuid, resource text,
                                       OUT plan text, OUT "limit" bigint, OUT period text, OUT anchor timestamptz)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT t.plan,
           COALESCE(o."limit", (p.limits -> effective_limit.resource ->> 'limit')::bigint, -1),
           COALESCE(o.period, p.limits -> effective_limit.resource ->> 'period', 'none'),
           COALESCE((t.settings ->> 'billing_anchor')::timestamptz, t.created_at)
      FROM tenant_data.tenants t
      LEFT JOIN tenant_data.plans p ON p.name = t.plan
      LEFT JOIN tenant_data.limit_overrides o ON o.tenant_id = t.id AND o.resource = effective_limit.resource
     WHERE t.id = effective_limit.tenant_id
$$;

REVOKE EXECUTE ON FUNCTION tenant.effective_limit(uuid, text), tenant.plans_insert_as_update() FROM PUBLIC;
-- The views over usage are in sql/usage_views.sql.
