-- The views over usage (and what they need). CREATE OR REPLACE: the 0.1.0 -> 0.2.0 upgrade runs
-- this file too.

-- A count quota's usage where it lives in shared memory (src/shared_counters.rs), else NULL:
-- the views then read tenant_data.usage_counters.
CREATE OR REPLACE FUNCTION tenant.counted_usage(tenant_id uuid, resource text) RETURNS bigint
STABLE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', 'counted_usage_wrapper';

CREATE OR REPLACE VIEW tenant.usage AS
SELECT t.slug AS tenant, r.resource, v.used, l."limit",
       CASE WHEN l."limit" < 0 THEN -1 ELSE GREATEST(l."limit" - v.used, 0) END AS remaining,
       NULLIF(b.period_start, '-infinity') AS period_start, NULLIF(b.period_end, 'infinity') AS period_end
  FROM tenant_data.tenants t
 CROSS JOIN LATERAL (
        SELECT jsonb_object_keys(p.limits) FROM tenant_data.plans p WHERE p.name = t.plan
        UNION SELECT o.resource FROM tenant_data.limit_overrides o WHERE o.tenant_id = t.id
        UNION SELECT u.resource FROM tenant_data.usage_counters u WHERE u.tenant_id = t.id) r(resource)
 CROSS JOIN LATERAL tenant.effective_limit(t.id, r.resource) l
 CROSS JOIN LATERAL tenant.period_bounds(l.anchor, l.period, now()) b
  LEFT JOIN tenant_data.usage_counters c
         ON c.tenant_id = t.id AND c.resource = r.resource AND c.period_start = b.period_start
 CROSS JOIN LATERAL (SELECT COALESCE(tenant.counted_usage(t.id, r.resource), c.used, 0) AS used) v;
COMMENT ON VIEW tenant.usage IS 'pg_tenant: current usage and limit of every tenant and resource with a limit or usage';

CREATE OR REPLACE VIEW tenant.usage_history AS
SELECT t.slug AS tenant, c.tenant_id, c.resource,
       NULLIF(c.period_start, '-infinity') AS period_start,
       NULLIF(b.period_end, 'infinity') AS period_end,
       CASE WHEN c.period_start = '-infinity' THEN COALESCE(tenant.counted_usage(c.tenant_id, c.resource), c.used)
            ELSE c.used END AS used,
       c.period_start = cur.period_start AS is_current
  FROM tenant_data.usage_counters c
  LEFT JOIN tenant_data.tenants t ON t.id = c.tenant_id
 CROSS JOIN LATERAL tenant.effective_limit(c.tenant_id, c.resource) l
 CROSS JOIN LATERAL tenant.period_bounds(COALESCE(l.anchor, c.period_start), COALESCE(l.period, 'none'),
                                         CASE WHEN c.period_start = '-infinity' THEN now() ELSE c.period_start END) b
 CROSS JOIN LATERAL tenant.period_bounds(COALESCE(l.anchor, c.period_start), COALESCE(l.period, 'none'), now()) cur
 WHERE c.tenant_id <> '00000000-0000-0000-0000-000000000000';  -- the shared-memory marker (src/shared_counters.rs)
COMMENT ON VIEW tenant.usage_history IS 'pg_tenant: usage of every period, past ones included (for billing)';

-- Rows per tenant over every protected table (a partitioned or inheritance tree counted once),
-- each table counted by its owner (tenant.table_data): the owner's code that planning a query
-- of the table may run never runs with the rights of the admin reading tenant.overview.
CREATE OR REPLACE FUNCTION tenant.protected_row_counts(OUT tenant_id uuid, OUT row_count bigint) RETURNS SETOF record
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    counts jsonb := '{}';
    r record;
BEGIN
    FOR r IN SELECT p.table_name, p.tenant_column FROM tenant_data.protected_tables p
              WHERE p.parent IS NULL OR p.parent NOT IN (SELECT table_name FROM tenant_data.protected_tables)
    LOOP
        counts := counts || COALESCE((SELECT jsonb_object_agg(k, COALESCE((counts->>k)::bigint, 0) + v::bigint)
          FROM (SELECT key AS k, value AS v
                  FROM jsonb_each_text(tenant.table_data(r.table_name, 'counts'))) s), '{}');
    END LOOP;
    RETURN QUERY SELECT key::uuid, value::bigint FROM jsonb_each_text(counts);
END
$$;

CREATE OR REPLACE VIEW tenant.overview AS
SELECT t.slug AS tenant, t.status, t.plan,
       COALESCE(rc.row_count, 0) AS protected_rows,
       (SELECT max(round(100.0 * u.used / u."limit", 1)) FROM tenant.usage u
         WHERE u.tenant = t.slug AND u."limit" > 0) AS max_quota_use_pct
  FROM tenant_data.tenants t
  LEFT JOIN tenant.protected_row_counts() rc ON rc.tenant_id = t.id;
COMMENT ON VIEW tenant.overview IS 'pg_tenant: one row per tenant: status, plan, rows in protected tables, highest quota use';

REVOKE EXECUTE ON FUNCTION tenant.counted_usage(uuid, text), tenant.protected_row_counts() FROM PUBLIC;
