-- Plans, per-tenant limit overrides and usage counters. Readable by the extension owner only;
-- applications see their numbers through tenant.check_quota() and tenant.consume().

CREATE TABLE tenant.plans (
    name       text PRIMARY KEY CHECK (name <> ''),
    limits     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(limits) = 'object'),
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
COMMENT ON TABLE tenant.plans IS 'pg_tenant: plans and their limits ({"resource": {"limit": N, "period": P}})';
INSERT INTO tenant.plans (name) VALUES ('default');

-- pg_restore copies the dumped plans after CREATE EXTENSION has inserted "default": an insert of
-- an existing plan becomes an update, so the dumped version wins instead of a duplicate-key error.
CREATE FUNCTION tenant.plans_insert_as_update() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE tenant.plans SET limits = NEW.limits, created_at = NEW.created_at, updated_at = NEW.updated_at
     WHERE name = NEW.name;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER plans_insert_as_update BEFORE INSERT ON tenant.plans
    FOR EACH ROW EXECUTE FUNCTION tenant.plans_insert_as_update();

CREATE TABLE tenant.limit_overrides (
    tenant_id uuid NOT NULL REFERENCES tenant.tenants (id) ON DELETE CASCADE,
    resource  text NOT NULL CHECK (resource <> ''),
    "limit"   bigint NOT NULL CHECK ("limit" >= -1),
    period    text CHECK (period IN ('none', 'minute', 'hour', 'day', 'month')),
    PRIMARY KEY (tenant_id, resource)
);
COMMENT ON TABLE tenant.limit_overrides IS 'pg_tenant: per-tenant limits that replace the plan''s (tenant.set_limit)';

-- One row per tenant, resource and period; period_start is -infinity for period "none".
-- Past periods stay for billing (tenant.usage_history).
CREATE TABLE tenant.usage_counters (
    tenant_id    uuid NOT NULL,
    resource     text NOT NULL,
    period_start timestamptz NOT NULL,
    used         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, resource, period_start)
) WITH (fillfactor = 50);  -- room on the page for HOT updates of these hot rows
COMMENT ON TABLE tenant.usage_counters IS 'pg_tenant: usage per tenant, resource and period';

SELECT pg_catalog.pg_extension_config_dump('tenant.plans', '');
SELECT pg_catalog.pg_extension_config_dump('tenant.limit_overrides', '');
SELECT pg_catalog.pg_extension_config_dump('tenant.usage_counters', '');

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
      FROM tenant.tenants t
      LEFT JOIN tenant.plans p ON p.name = t.plan
      LEFT JOIN tenant.limit_overrides o ON o.tenant_id = t.id AND o.resource = effective_limit.resource
     WHERE t.id = effective_limit.tenant_id
$$;

CREATE VIEW tenant.usage AS
SELECT t.slug AS tenant, r.resource, COALESCE(c.used, 0) AS used, l."limit",
       CASE WHEN l."limit" < 0 THEN -1 ELSE GREATEST(l."limit" - COALESCE(c.used, 0), 0) END AS remaining,
       NULLIF(b.period_start, '-infinity') AS period_start, NULLIF(b.period_end, 'infinity') AS period_end
  FROM tenant.tenants t
 CROSS JOIN LATERAL (
        SELECT jsonb_object_keys(p.limits) FROM tenant.plans p WHERE p.name = t.plan
        UNION SELECT o.resource FROM tenant.limit_overrides o WHERE o.tenant_id = t.id
        UNION SELECT u.resource FROM tenant.usage_counters u WHERE u.tenant_id = t.id) r(resource)
 CROSS JOIN LATERAL tenant.effective_limit(t.id, r.resource) l
 CROSS JOIN LATERAL tenant.period_bounds(l.anchor, l.period, now()) b
  LEFT JOIN tenant.usage_counters c
         ON c.tenant_id = t.id AND c.resource = r.resource AND c.period_start = b.period_start;
COMMENT ON VIEW tenant.usage IS 'pg_tenant: current usage and limit of every tenant and resource with a limit or usage';

CREATE VIEW tenant.usage_history AS
SELECT t.slug AS tenant, c.tenant_id, c.resource,
       NULLIF(c.period_start, '-infinity') AS period_start,
       NULLIF(b.period_end, 'infinity') AS period_end,
       c.used,
       c.period_start = cur.period_start AS is_current
  FROM tenant.usage_counters c
  LEFT JOIN tenant.tenants t ON t.id = c.tenant_id
 CROSS JOIN LATERAL tenant.effective_limit(c.tenant_id, c.resource) l
 CROSS JOIN LATERAL tenant.period_bounds(COALESCE(l.anchor, c.period_start), COALESCE(l.period, 'none'),
                                         CASE WHEN c.period_start = '-infinity' THEN now() ELSE c.period_start END) b
 CROSS JOIN LATERAL tenant.period_bounds(COALESCE(l.anchor, c.period_start), COALESCE(l.period, 'none'), now()) cur;
COMMENT ON VIEW tenant.usage_history IS 'pg_tenant: usage of every period, past ones included (for billing)';

-- Rows per tenant over every protected table (a partitioned or inheritance tree counted once).
CREATE FUNCTION tenant.protected_row_counts(OUT tenant_id uuid, OUT row_count bigint) RETURNS SETOF record
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    parts text[] := '{}';
    r record;
BEGIN
    FOR r IN SELECT p.table_name, p.tenant_column FROM tenant.protected_tables p
              WHERE p.parent IS NULL OR p.parent NOT IN (SELECT table_name FROM tenant.protected_tables)
    LOOP
        parts := parts || format('SELECT %I AS tenant_id, count(*) AS n FROM %s GROUP BY 1', r.tenant_column, r.table_name);
    END LOOP;
    IF cardinality(parts) = 0 THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE 'SELECT tenant_id, sum(n)::bigint FROM (' || array_to_string(parts, ' UNION ALL ') || ') s GROUP BY 1';
END
$$;

CREATE VIEW tenant.overview AS
SELECT t.slug AS tenant, t.status, t.plan,
       COALESCE(rc.row_count, 0) AS protected_rows,
       (SELECT max(round(100.0 * u.used / u."limit", 1)) FROM tenant.usage u
         WHERE u.tenant = t.slug AND u."limit" > 0) AS max_quota_use_pct
  FROM tenant.tenants t
  LEFT JOIN tenant.protected_row_counts() rc ON rc.tenant_id = t.id;
COMMENT ON VIEW tenant.overview IS 'pg_tenant: one row per tenant: status, plan, rows in protected tables, highest quota use';

REVOKE EXECUTE ON FUNCTION tenant.effective_limit(uuid, text), tenant.protected_row_counts(),
    tenant.plans_insert_as_update() FROM PUBLIC;
