//! Plans and quotas: per-plan limits, per-tenant overrides, usage per period, `consume` and
//! `check_quota` for application code, and quota triggers on protected tables.
//!
//! Exactness: every change of usage is one `INSERT ... ON CONFLICT DO UPDATE ... WHERE used +
//! delta <= limit` on the counter row of (tenant, resource, period). PostgreSQL applies it to the
//! latest row version under a row lock, so concurrent sessions serialize per tenant and resource,
//! exactly K of them win the last K units, and a rollback (or savepoint rollback) undoes its own
//! increment. Other tenants use other rows and never wait.

use std::collections::{BTreeMap, HashMap};

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, quote_literal, OwnedPreparedStatement};
use pgrx::{PgBuiltInOids, PgOid};
use serde_json::{json, Value};

use crate::audit;
use crate::error::{guarded, required, TenantError};
use crate::owner::{as_extension_owner, as_table_owner, run_as_owner, run_with_args};
use crate::registry;
use crate::types::{Period, Quota, Tenant};
use crate::shared_counters::{self, Charged};

extension_sql_file!(
    "../sql/quotas.sql",
    name = "quota_tables",
    requires = ["registry_tables", "protected_tables_view"]
);

/// Validates a plan's `limits`: `{"resource": {"limit": N, "period": P}, ...}` with N >= -1.
/// The error names the offending key.
pub fn validate_limits(limits: &Value) -> Result<BTreeMap<String, (i64, Period)>, String> {
    let map = limits.as_object().ok_or("limits must be a JSON object")?;
    let mut out = BTreeMap::new();
    for (resource, spec) in map {
        let at = format!(
            "limits.{}",
            serde_json::to_string(resource).unwrap_or_default()
        );
        if resource.is_empty() || resource.len() > RESOURCE_NAME_MAX {
            return Err(format!(
                "limits: a resource name has 1 to {RESOURCE_NAME_MAX} bytes"
            ));
        }
        let spec = spec.as_object().ok_or_else(|| {
            format!("{at} must be an object like {{\"limit\": 10, \"period\": \"month\"}}")
        })?;
        if let Some(unknown) = spec.keys().find(|k| *k != "limit" && *k != "period") {
            return Err(format!(
                "{at} has an unknown key \"{unknown}\" (allowed: limit, period)"
            ));
        }
        let limit = spec
            .get("limit")
            .ok_or_else(|| format!("{at}.limit is missing"))?;
        let limit = limit.as_i64().filter(|n| *n >= -1).ok_or_else(|| {
            format!("{at}.limit must be an integer of at least -1 (-1 unlimited, 0 not available)")
        })?;
        let period = match spec.get("period") {
            None => Period::None,
            Some(p) => p
                .as_str()
                .and_then(Period::parse)
                .ok_or_else(|| format!("{at}.period must be one of {}", Period::NAMES))?,
        };
        out.insert(resource.clone(), (limit, period));
    }
    Ok(out)
}

fn plan_exists(name: &str) -> bool {
    as_extension_owner(|| {
        Spi::get_one_with_args::<bool>(
            crate::owner::data_sql(
                "SELECT EXISTS (SELECT 1 FROM tenant_data.plans WHERE name = $1)",
            ),
            &[name.into()],
        )
    })
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// Raises the unknown-plan error unless the plan exists.
pub fn require_plan(name: &str) {
    if !plan_exists(name) {
        TenantError::UnknownPlan(name.to_string()).raise();
    }
}

fn checked_limits(limits: Option<pgrx::JsonB>) -> Value {
    let limits = required(limits, "limits").0;
    if let Err(reason) = validate_limits(&limits) {
        TenantError::InvalidLimits(reason).raise();
    }
    limits
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.create_plan(name text, limits jsonb)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.create_plan(text, jsonb) IS 'pg_tenant: define a plan and its limits';
"#,
    requires = ["quota_tables"]
)]
fn create_plan(name: Option<&str>, limits: Option<pgrx::JsonB>) {
    guarded(|| {
        let name = required(name, "name");
        if name.is_empty() {
            TenantError::invalid("name", "must not be empty").raise();
        }
        let limits = checked_limits(limits);
        if plan_exists(name) {
            TenantError::DuplicatePlan(name.to_string()).raise();
        }
        run_as_owner(
            crate::owner::data_sql("INSERT INTO tenant_data.plans (name, limits) VALUES ($1, $2)"),
            &[name.into(), pgrx::JsonB(limits.clone()).into()],
        );
        audit::record("create_plan", None, json!({"plan": name, "limits": limits}));
    })
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.alter_plan(name text, limits jsonb)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.alter_plan(text, jsonb) IS 'pg_tenant: replace a plan''s limits (takes effect at once for its tenants)';
"#,
    requires = ["quota_tables"]
)]
fn alter_plan(name: Option<&str>, limits: Option<pgrx::JsonB>) {
    guarded(|| {
        let name = required(name, "name");
        let limits = checked_limits(limits);
        require_plan(name);
        run_as_owner(
            crate::owner::data_sql("UPDATE tenant_data.plans SET limits = $2, updated_at = pg_catalog.now() WHERE name = $1"),
            &[name.into(), pgrx::JsonB(limits.clone()).into()],
        );
        audit::record("alter_plan", None, json!({"plan": name, "limits": limits}));
    })
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.drop_plan(name text)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.drop_plan(text) IS 'pg_tenant: remove a plan no tenant is on';
"#,
    requires = ["quota_tables"]
)]
fn drop_plan(name: Option<&str>) {
    guarded(|| {
        let name = required(name, "name");
        require_plan(name);
        let users = as_extension_owner(|| {
            Spi::get_one_with_args::<i64>(
                crate::owner::data_sql("SELECT count(*) FROM tenant_data.tenants WHERE plan = $1"),
                &[name.into()],
            )
        })
        .ok()
        .flatten()
        .unwrap_or(0);
        if users > 0 {
            TenantError::PlanInUse {
                plan: name.to_string(),
                tenants: users,
            }
            .raise();
        }
        run_as_owner(
            crate::owner::data_sql("DELETE FROM tenant_data.plans WHERE name = $1"),
            &[name.into()],
        );
        audit::record("drop_plan", None, json!({"plan": name}));
    })
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.change_plan(tenant text, plan text)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.change_plan(text, text) IS 'pg_tenant: move a tenant to another plan (at once; usage counted so far stays)';
"#,
    requires = ["quota_tables"]
)]
fn change_plan(tenant: Option<&str>, plan: Option<&str>) {
    guarded(|| {
        let t = registry::resolve(tenant);
        let plan = required(plan, "plan");
        require_plan(plan);
        // Read whole (no row limit): a statement stopped after its first RETURNING row would skip
        // its AFTER STATEMENT triggers.
        let previous = as_extension_owner(|| {
            Spi::connect_mut(|client| {
                client
                    .update(
                        crate::owner::data_sql("UPDATE tenant_data.tenants SET plan = $2, updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1
                         RETURNING (SELECT plan FROM tenant_data.tenants WHERE id OPERATOR(pg_catalog.=) $1)"),
                        None,
                        &[t.id.into(), plan.into()],
                    )?
                    .first()
                    .get_one::<String>()
            })
        })
        .ok()
        .flatten();
        audit::record(
            "change_plan",
            Some(t.id),
            json!({"slug": t.slug, "from": previous, "to": plan}),
        );
    })
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.set_limit(tenant text, resource text, "limit" bigint, period text DEFAULT NULL)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.set_limit(text, text, bigint, text) IS 'pg_tenant: a tenant''s own limit for a resource, replacing its plan''s (period NULL: the plan''s)';
"#,
    requires = ["quota_tables"]
)]
fn set_limit(
    tenant: Option<&str>,
    resource: Option<&str>,
    limit: Option<i64>,
    period: Option<&str>,
) {
    guarded(|| {
        let t = registry::resolve(tenant);
        let resource = required_resource(resource);
        let limit = required(limit, "limit");
        if limit < -1 {
            TenantError::invalid(
                "limit",
                "must be at least -1 (-1 unlimited, 0 not available)",
            )
            .raise();
        }
        if let Some(p) = period {
            if Period::parse(p).is_none() {
                TenantError::invalid("period", format!("must be one of {}", Period::NAMES)).raise();
            }
        }
        registry::hold(&t);
        run_as_owner(
            crate::owner::data_sql("INSERT INTO tenant_data.limit_overrides (tenant_id, resource, \"limit\", period) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, resource) DO UPDATE SET \"limit\" = EXCLUDED.\"limit\", period = EXCLUDED.period"),
            &[t.id.into(), resource.into(), limit.into(), period.into()],
        );
        audit::record(
            "set_limit",
            Some(t.id),
            json!({"slug": t.slug, "resource": resource, "limit": limit, "period": period}),
        );
    })
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.clear_limit(tenant text, resource text)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.clear_limit(text, text) IS 'pg_tenant: remove a tenant''s own limit (its plan''s applies again)';
"#,
    requires = ["quota_tables"]
)]
fn clear_limit(tenant: Option<&str>, resource: Option<&str>) {
    guarded(|| {
        let t = registry::resolve(tenant);
        let resource = required(resource, "resource");
        run_as_owner(
            crate::owner::data_sql(
                "DELETE FROM tenant_data.limit_overrides WHERE tenant_id = $1 AND resource = $2",
            ),
            &[t.id.into(), resource.into()],
        );
        audit::record(
            "clear_limit",
            Some(t.id),
            json!({"slug": t.slug, "resource": resource}),
        );
    })
}

impl Quota {
    pub fn set_bounds(&mut self, bounds: Option<(i64, i64)>) {
        self.bounds = bounds;
    }

    fn load(tenant: pgrx::Uuid, resource: &str) -> Quota {
        let row = as_extension_owner(|| {
            Spi::connect(|client| {
                let rows = client.select(
                    crate::owner::data_sql("SELECT plan, \"limit\", period, anchor,
                            EXISTS (SELECT FROM tenant_data.quota_attachments a
                                     WHERE a.resource OPERATOR(pg_catalog.=) $2 AND a.mode OPERATOR(pg_catalog.=) 'count'),
                            EXISTS (SELECT FROM tenant_data.limit_overrides o
                                     WHERE o.tenant_id OPERATOR(pg_catalog.=) $1 AND o.resource OPERATOR(pg_catalog.=) $2)
                            OR EXISTS (SELECT FROM tenant_data.tenants t JOIN tenant_data.plans p ON p.name OPERATOR(pg_catalog.=) t.plan
                                        WHERE t.id OPERATOR(pg_catalog.=) $1 AND pg_catalog.jsonb_exists(p.limits, $2))
                       FROM tenant.effective_limit($1, $2)"),
                    Some(1),
                    &[tenant.into(), resource.into()],
                )?;
                let row = rows.first();
                Ok::<_, pgrx::spi::Error>((
                    row.get::<String>(1)?,
                    row.get::<i64>(2)?,
                    row.get::<String>(3)?,
                    row.get::<TimestampWithTimeZone>(4)?,
                    row.get::<bool>(5)?,
                    row.get::<bool>(6)?,
                ))
            })
        })
        .unwrap_or_else(|e| error!("pg_tenant: {e}"));
        Quota {
            plan: row.0.unwrap_or_default(),
            limit: row.1.unwrap_or(-1),
            period: row
                .2
                .as_deref()
                .and_then(Period::parse)
                .unwrap_or(Period::None),
            anchor: row.3.map(|t| t.into_inner()).unwrap_or(0),
            counted: row.4.unwrap_or(false),
            named: row.5.unwrap_or(false),
            bounds: None,
        }
    }

    /// (start, end) of the period containing `now`, computed by tenant.period_bounds() and
    /// reused until `now` leaves it.
    fn period_at(&mut self, now: i64) -> (i64, i64) {
        if self.period == Period::None {
            return (i64::MIN, i64::MAX);
        }
        if let Some((start, end)) = self.bounds {
            if start <= now && now < end {
                return (start, end);
            }
        }
        let ts = |v: i64| TimestampWithTimeZone::try_from(v).expect("valid timestamp");
        // Read-only SPI: no transaction id, so a hot standby can check quotas too.
        let (start, end) = Spi::connect(|client| {
            let row = client
                .select(
                    "SELECT period_start, period_end FROM tenant.period_bounds($1, $2, $3)",
                    Some(1),
                    &[
                        ts(self.anchor).into(),
                        self.period.as_str().into(),
                        ts(now).into(),
                    ],
                )?
                .first();
            Ok::<_, pgrx::spi::Error>((
                row.get::<TimestampWithTimeZone>(1)?,
                row.get::<TimestampWithTimeZone>(2)?,
            ))
        })
        .unwrap_or_else(|e| error!("pg_tenant: {e}"));
        let bounds = (
            start.expect("start").into_inner(),
            end.expect("end").into_inner(),
        );
        self.bounds = Some(bounds);
        bounds
    }
}

/// The quota in force, cached per session like the registry (see cache.rs).
fn quota_for(tenant: pgrx::Uuid, resource: &str) -> Quota {
    crate::cache::quota(tenant, resource, || Quota::load(tenant, resource))
}

fn now() -> i64 {
    unsafe { pg_sys::GetCurrentTransactionStartTimestamp() }
}

fn timestamp_text(v: i64) -> Option<String> {
    if v == i64::MAX || v == i64::MIN {
        return None;
    }
    // UTC, so that the JSON an application reads does not depend on the session's TimeZone.
    TimestampWithTimeZone::try_from(v)
        .ok()
        .map(|t| format!("{}Z", t.to_utc().to_iso_string()))
}

thread_local! {
    static ADD_USAGE: std::cell::RefCell<Option<OwnedPreparedStatement>> = const { std::cell::RefCell::new(None) };
}

/// Runs a statement prepared once per session (kept in `cache`) and returns the first column
/// of its first row, if any.
fn run_kept(
    client: &mut pgrx::spi::SpiClient<'_>,
    cache: &'static std::thread::LocalKey<std::cell::RefCell<Option<OwnedPreparedStatement>>>,
    sql: &str,
    types: &[PgOid],
    args: &[pgrx::datum::DatumWithOid],
) -> Result<Option<i64>, pgrx::spi::Error> {
    if cache.with(|p| p.borrow().is_none()) {
        let plan = client.prepare_mut(sql, types)?.keep();
        cache.with(|p| *p.borrow_mut() = Some(plan));
    }
    cache.with(|p| {
        let plan = p.borrow();
        let rows = client.update(plan.as_ref().expect("prepared above"), None, args)?;
        if rows.is_empty() {
            Ok(None)
        } else {
            rows.first().get::<i64>(1)
        }
    })
}

/// Adds `delta` to a counter unless that would pass `limit` (deltas <= 0 always apply). Returns
/// the new value, or None when refused. Runs as the extension owner with a kept plan. (An UPDATE
/// first and the upsert only when it changed nothing was tried: its generic plan picked a
/// sequential scan of the counters' heap page, slower than the upsert's unique-index probe.)
fn add_usage(
    tenant: pgrx::Uuid,
    resource: &str,
    period_start: i64,
    delta: i64,
    limit: i64,
) -> Option<i64> {
    let start = TimestampWithTimeZone::try_from(period_start).expect("valid period start");
    let uuid = PgOid::BuiltIn(PgBuiltInOids::UUIDOID);
    let text = PgOid::BuiltIn(PgBuiltInOids::TEXTOID);
    let tstz = PgOid::BuiltIn(PgBuiltInOids::TIMESTAMPTZOID);
    let int8 = PgOid::BuiltIn(PgBuiltInOids::INT8OID);
    as_extension_owner(|| {
        Spi::connect_mut(|client| {
            run_kept(
                client,
                &ADD_USAGE,
                crate::owner::data_sql("INSERT INTO tenant_data.usage_counters AS u (tenant_id, resource, period_start, used)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant_id, resource, period_start) DO UPDATE
                    SET used = u.used OPERATOR(pg_catalog.+) EXCLUDED.used
                  WHERE $5 OPERATOR(pg_catalog.<) 0 OR EXCLUDED.used OPERATOR(pg_catalog.<=) 0
                     OR u.used OPERATOR(pg_catalog.+) EXCLUDED.used OPERATOR(pg_catalog.<=) $5
                 RETURNING u.used"),
                &[uuid, text, tstz, int8, int8],
                &[
                    tenant.into(),
                    resource.into(),
                    start.into(),
                    delta.into(),
                    limit.into(),
                ],
            )
        })
        .unwrap_or_else(|e| error!("pg_tenant: {e}"))
    })
}

fn current_usage(tenant: pgrx::Uuid, resource: &str, period_start: i64) -> i64 {
    let start = TimestampWithTimeZone::try_from(period_start).expect("valid period start");
    as_extension_owner(|| {
        crate::owner::read_one::<i64>(
            crate::owner::data_sql("SELECT used FROM tenant_data.usage_counters WHERE tenant_id OPERATOR(pg_catalog.=) $1
                AND resource OPERATOR(pg_catalog.=) $2 AND period_start OPERATOR(pg_catalog.=) $3"),
            &[tenant.into(), resource.into(), start.into()],
        )
    })
    .unwrap_or(0)
}

fn exceeded(resource: &str, q: &Quota, used: i64, requested: i64, period_end: i64) -> TenantError {
    let detail = json!({
        "resource": resource,
        "used": used,
        "limit": q.limit,
        "requested": requested,
        "plan": q.plan,
        "period_end": timestamp_text(period_end),
    });
    if q.limit == 0 {
        TenantError::NotInPlan {
            resource: resource.to_string(),
            plan: q.plan.clone(),
            detail,
        }
    } else {
        TenantError::QuotaExceeded {
            resource: resource.to_string(),
            used,
            limit: q.limit,
            plan: q.plan.clone(),
            detail,
        }
    }
}

/// Charges `delta` units of `resource` to `tenant` in the period of `now` (or the "none" period
/// when `force_none`). Returns the usage afterwards and the quota, or raises the quota error.
fn charge(tenant: pgrx::Uuid, resource: &str, delta: i64, force_none: bool) -> (i64, Quota) {
    let mut q = quota_for(tenant, resource);
    if force_none {
        q.period = Period::None;
    }
    let (start, end) = q.period_at(now());
    if !force_none {
        crate::cache::store_bounds(tenant, resource, q.bounds);
    }
    // Not in the plan, or more than the whole limit: refused without touching the counter.
    let hopeless = delta > 0 && (q.limit == 0 || (q.limit > 0 && delta > q.limit));
    match if hopeless {
        None
    } else {
        add_usage(tenant, resource, start, delta, q.limit)
    } {
        Some(used) => (used, q),
        None => exceeded(
            resource,
            &q,
            current_usage(tenant, resource, start),
            delta,
            end,
        )
        .raise(),
    }
}

/// Raises the quota error when the tenant's usage of `resource` (a quota with no period, such as
/// a metered size) already passes its limit, or the resource is not in its plan.
pub fn require_within(tenant: &Tenant, resource: &str) {
    let q = quota_for(tenant.id, resource);
    if q.limit < 0 {
        return;
    }
    let used = current_usage(tenant.id, resource, i64::MIN);
    if q.limit == 0 || used > q.limit {
        exceeded(resource, &q, used, 0, i64::MAX).raise();
    }
}

/// The longest resource name (as PostgreSQL's identifiers: 63 bytes).
pub const RESOURCE_NAME_MAX: usize = 63;

/// A resource argument: not NULL, not empty, at most [`RESOURCE_NAME_MAX`] bytes.
pub fn required_resource(resource: Option<&str>) -> &str {
    let resource = required(resource, "resource");
    if resource.is_empty() || resource.len() > RESOURCE_NAME_MAX {
        TenantError::invalid(
            "resource",
            format!("a resource name has 1 to {RESOURCE_NAME_MAX} bytes"),
        )
        .raise();
    }
    resource
}

/// The current tenant, which must be set and registered.
fn current_tenant() -> Tenant {
    registry::current().unwrap_or_else(|| TenantError::NoTenant.raise())
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.consume(resource text, amount bigint DEFAULT 1)
RETURNS bigint VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.consume(text, bigint) IS 'pg_tenant: use up units of a resource for the current tenant; returns what remains (-1 unlimited) or raises PT010/PT011';
"#,
    requires = ["quota_tables"]
)]
fn consume(resource: Option<&str>, amount: Option<i64>) -> i64 {
    guarded(|| {
        let resource = required_resource(resource);
        let amount = required(amount, "amount");
        if amount <= 0 {
            TenantError::invalid("amount", "must be positive").raise();
        }
        let t = registry::require_writable(current_tenant());
        let q = quota_for(t.id, resource);
        // Unlimited and named by no plan or limit: nothing to meter, and no counter row (any
        // name an application sends would otherwise store one).
        if !q.named && q.limit < 0 {
            return -1;
        }
        if q.counted {
            TenantError::invalid(
                "resource",
                format!("\"{resource}\" is a count quota: its usage is the tenant's rows in the tables it is attached to"),
            )
            .raise();
        }
        let (used, q) = charge(t.id, resource, amount, false);
        if q.limit < 0 {
            -1
        } else {
            q.limit - used
        }
    })
}

#[pg_extern(
    stable,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.check_quota(resource text, amount bigint DEFAULT 1)
RETURNS TABLE (allowed boolean, used bigint, "limit" bigint, remaining bigint, plan text, period_end timestamptz)
STABLE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.check_quota(text, bigint) IS 'pg_tenant: whether the current tenant could use this much of a resource now (consumes nothing)';
"#,
    requires = ["quota_tables"]
)]
fn check_quota(
    resource: Option<&str>,
    amount: Option<i64>,
) -> TableIterator<
    'static,
    (
        name!(allowed, bool),
        name!(used, i64),
        name!(limit, i64),
        name!(remaining, i64),
        name!(plan, String),
        name!(period_end, Option<TimestampWithTimeZone>),
    ),
> {
    guarded(|| {
        let resource = required_resource(resource);
        let amount = required(amount, "amount");
        // 0 peeks: the usage and limit as they are (allowed: not over the limit).
        if amount < 0 {
            TenantError::invalid("amount", "must not be negative").raise();
        }
        let t = current_tenant();
        let s = standing(&t, resource);
        let allowed = !t.is_suspended()
            && (s.limit < 0 || s.used.checked_add(amount).is_some_and(|n| n <= s.limit));
        TableIterator::once((allowed, s.used, s.limit, s.remaining, s.plan, s.period_end))
    })
}

/// Where a tenant stands on a resource now.
pub struct Standing {
    pub used: i64,
    /// -1: unlimited.
    pub limit: i64,
    /// -1: unlimited.
    pub remaining: i64,
    pub plan: String,
    pub period_end: Option<TimestampWithTimeZone>,
}

/// The usage, limit and period of `resource` for tenant `t` (check_quota, tenant.info).
pub fn standing(t: &Tenant, resource: &str) -> Standing {
    let mut q = quota_for(t.id, resource);
    let (start, end) = q.period_at(now());
    crate::cache::store_bounds(t.id, resource, q.bounds);
    let used = if q.counted {
        counted_used(t.id, resource)
    } else {
        current_usage(t.id, resource, start)
    };
    let remaining = if q.limit < 0 {
        -1
    } else {
        (q.limit - used).max(0)
    };
    let period_end = if end == i64::MAX {
        None
    } else {
        TimestampWithTimeZone::try_from(end).ok()
    };
    Standing {
        used,
        limit: q.limit,
        remaining,
        plan: q.plan,
        period_end,
    }
}

extension_sql_file!(
    "../sql/usage_views.sql",
    name = "usage_views",
    requires = ["quota_tables", "protected_tables_view"]
);

/// For the views: a count quota's usage where it lives in shared memory, else NULL (declared in
/// sql/usage_views.sql, which the upgrade from 0.1.0 runs too).
#[pg_extern(stable, parallel_unsafe, sql = false)]
fn counted_usage(tenant_id: Option<pgrx::Uuid>, resource: Option<&str>) -> Option<i64> {
    guarded(|| {
        let (tenant, resource) = (tenant_id?, resource?);
        if !shared_counters::enabled() || !quota_for(tenant, resource).counted {
            return None;
        }
        shared_counters::used(tenant, resource)
    })
}

/// For tenant.import(), which loads rows without firing triggers or counting them: its count
/// quotas' usage becomes the rows it loaded.
#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.recount_tenant(tenant_id uuid) RETURNS void
VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
REVOKE EXECUTE ON FUNCTION tenant.recount_tenant(uuid) FROM PUBLIC;
"#,
    requires = ["quota_attachments_view", "row_counter"]
)]
fn recount_tenant(tenant_id: Option<pgrx::Uuid>) {
    guarded(|| {
        let tenant = required(tenant_id, "tenant_id");
        let resources = count_resources();
        for resource in resources {
            // No reservation of the tenant may be under way when its slots count again.
            lock_counted_tables(&resource);
            set_counter_to_rows(tenant, &resource, false);
        }
        shared_counters::invalidate_tenant_at_commit(tenant);
    })
}

/// Quota attachment modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Count,
    Meter,
    Bytes,
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "count" => Mode::Count,
            "meter" => Mode::Meter,
            "bytes" => Mode::Bytes,
            _ => return None,
        })
    }
    fn as_str(self) -> &'static str {
        match self {
            Mode::Count => "count",
            Mode::Meter => "meter",
            Mode::Bytes => "bytes",
        }
    }
}

/// Trigger names of one attachment: a short hash of the resource keeps them unique and short.
fn trigger_prefix(resource: &str) -> String {
    let mut h: u32 = 2166136261;
    for b in resource.bytes() {
        h = (h ^ b as u32).wrapping_mul(16777619);
    }
    format!("tenant_quota_{h:08x}")
}

/// The mode of `resource`'s quota on `tbl`, if attached.
fn attached_mode(tbl: pg_sys::Oid, resource: &str) -> Option<Mode> {
    crate::owner::as_extension_owner(|| {
        Spi::get_one_with_args::<String>(
        crate::owner::data_sql("SELECT mode FROM tenant_data.quota_attachments WHERE table_name OPERATOR(pg_catalog.=) $1::pg_catalog.oid::pg_catalog.regclass AND resource OPERATOR(pg_catalog.=) $2"),
        &[tbl.into(), resource.into()],
    )
    .ok()
    .flatten()
    .and_then(|m| Mode::parse(&m))
    })
}

/// Per-tenant usage of the rows now in `tbl` (count or bytes), for attaching and detaching.
fn existing_usage(
    rel: pg_sys::Oid,
    table: &str,
    column: &str,
    mode: Mode,
) -> Vec<(pgrx::Uuid, i64)> {
    let measure = if mode == Mode::Bytes {
        "pg_catalog.sum(pg_catalog.pg_column_size(t.*))::pg_catalog.int8"
    } else {
        "pg_catalog.count(*)"
    };
    // As the table's owner (see count_rows).
    as_table_owner(rel, || {
        Spi::connect(|client| {
            let mut out = Vec::new();
            let sql = format!(
                // Shared rows (no tenant: protect(..., shared_rows => true)) count for nobody.
                "SELECT {col}, {measure} FROM {table} t WHERE {col} IS NOT NULL GROUP BY 1 ORDER BY 1",
                col = quote_identifier(column)
            );
            for row in client.select(&sql, None, &[])? {
                out.push((row.get(1)?.expect("tenant"), row.get(2)?.unwrap_or(0)));
            }
            Ok::<_, pgrx::spi::Error>(out)
        })
    })
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.attach_quota(tbl regclass, resource text, mode text DEFAULT 'count')
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@'
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tenant.attach_quota(regclass, text, text) IS 'pg_tenant: limit a protected table''s rows (count), inserts per period (meter) or stored bytes (bytes) by a resource''s quota';
"#,
    requires = ["quota_attachments_view", quota_trigger]
)]
fn attach_quota(tbl: Option<pg_sys::Oid>, resource: Option<&str>, mode: Option<&str>) {
    guarded(|| {
        let tbl = required(tbl, "tbl");
        let resource = required_resource(resource);
        let mode_text = required(mode, "mode");
        let mode = Mode::parse(mode_text).unwrap_or_else(|| {
            TenantError::invalid("mode", "must be one of count, meter, bytes").raise()
        });
        let tree = crate::policies::relation_tree(tbl);
        let name = tree.first().map(|t| t.1.clone()).unwrap_or_default();
        let column = crate::policies::protected_column(tbl)
            .unwrap_or_else(|| TenantError::NotProtected(name.clone()).raise());
        match attached_mode(tbl, resource) {
            Some(m) if m == mode => return,
            Some(m) => TenantError::QuotaAttached {
                table: name,
                resource: resource.to_string(),
                mode: m.as_str(),
            }
            .raise(),
            None => {}
        }
        let prefix = trigger_prefix(resource);
        let args = format!(
            "{}, {}, {}",
            quote_literal(resource),
            quote_literal(mode.as_str()),
            quote_literal(&column)
        );
        // Inserted rows of a count quota are counted by an index that stores nothing
        // (src/row_counter.rs); a database still at version 0.1.0 has no such index yet and
        // keeps the INSERT trigger until ALTER EXTENSION UPDATE replaces it.
        let counted_by_index = mode == Mode::Count
            && Spi::get_one::<bool>(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_am WHERE amname OPERATOR(pg_catalog.=) 'tenant_quota')",
            )
            .ok()
            .flatten()
            .unwrap_or(false);
        for (_, rel, _) in &tree {
            let create = |suffix: &str, event: &str, transition: &str| {
                run_with_args(
                    &format!(
                        "CREATE TRIGGER {} AFTER {event} ON {rel} {transition} FOR EACH STATEMENT EXECUTE FUNCTION tenant.quota_trigger({args})",
                        quote_identifier(format!("{prefix}_{suffix}"))
                    ),
                    &[],
                );
            };
            if !counted_by_index {
                create("ins", "INSERT", "REFERENCING NEW TABLE AS pg_tenant_new");
            }
            if mode != Mode::Meter {
                create("del", "DELETE", "REFERENCING OLD TABLE AS pg_tenant_old");
                run_with_args(
                    &format!(
                        "CREATE TRIGGER {} BEFORE TRUNCATE ON {rel} FOR EACH STATEMENT EXECUTE FUNCTION tenant.quota_trigger({args})",
                        quote_identifier(format!("{prefix}_trunc"))
                    ),
                    &[],
                );
            }
            if mode == Mode::Bytes {
                create(
                    "upd",
                    "UPDATE",
                    "REFERENCING OLD TABLE AS pg_tenant_old NEW TABLE AS pg_tenant_new",
                );
            }
        }
        if mode == Mode::Count {
            prepare_count_change(resource);
            if counted_tables(resource).is_empty() {
                // The first table of a count quota: its usage is rows from now on, not what
                // consume() may have used of the resource before.
                zero_counter_rows(resource);
            }
        }
        if counted_by_index {
            // On the table and each inheritance child; a partition gets it from its partitioned
            // parent's index (PostgreSQL does not do that for inheritance children).
            for (rel_oid, rel, _) in &tree {
                if *rel_oid != tbl && is_partition(*rel_oid) {
                    continue;
                }
                run_with_args(
                    &format!(
                        "CREATE INDEX ON {rel} USING tenant_quota ({}) WITH (resource = {})",
                        quote_identifier(&column),
                        quote_literal(resource)
                    ),
                    &[],
                );
            }
        }
        if mode != Mode::Meter {
            for (tenant, amount) in existing_usage(tbl, &name, &column, mode) {
                add_usage(tenant, resource, i64::MIN, amount, -1);
            }
        }
        audit::record(
            "attach_quota",
            None,
            json!({"table": name, "resource": resource, "mode": mode.as_str()}),
        );
    })
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.detach_quota(tbl regclass, resource text)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@'
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tenant.detach_quota(regclass, text) IS 'pg_tenant: remove a quota from a table (a count or bytes quota gives its rows'' usage back)';
"#,
    requires = ["quota_attachments_view", quota_trigger]
)]
fn detach_quota(tbl: Option<pg_sys::Oid>, resource: Option<&str>) {
    guarded(|| {
        let tbl = required(tbl, "tbl");
        let resource = required(resource, "resource");
        let tree = crate::policies::relation_tree(tbl);
        let name = tree.first().map(|t| t.1.clone()).unwrap_or_default();
        let mode = attached_mode(tbl, resource).unwrap_or_else(|| {
            TenantError::QuotaNotAttached {
                table: name.clone(),
                resource: resource.to_string(),
            }
            .raise()
        });
        let column = crate::policies::protected_column(tbl)
            .unwrap_or_else(|| TenantError::NotProtected(name.clone()).raise());
        let prefix = trigger_prefix(resource);
        for (rel_oid, rel, _) in &tree {
            let names = Spi::get_one_with_args::<Vec<String>>(
                "SELECT ARRAY(SELECT tgname::pg_catalog.text FROM pg_catalog.pg_trigger
                               WHERE tgrelid OPERATOR(pg_catalog.=) $1 AND tgname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($2))",
                &[(*rel_oid).into(), ["ins", "del", "upd", "trunc"].map(|s| format!("{prefix}_{s}")).to_vec().into()],
            )
            .unwrap_or_else(|e| error!("pg_tenant: {e}"))
            .unwrap_or_default();
            for name in names {
                run_with_args(
                    &format!("DROP TRIGGER {} ON {rel}", quote_identifier(&name)),
                    &[],
                );
            }
        }
        if mode == Mode::Count {
            prepare_count_change(resource);
            for (rel_oid, _, _) in &tree {
                if let Some(index) = counting_index(*rel_oid, resource) {
                    run_with_args(&format!("DROP INDEX {index}"), &[]);
                }
            }
        }
        if mode == Mode::Count && counted_tables(resource).is_empty() {
            // The last table of a count quota: no rows count any more.
            zero_counter_rows(resource);
        } else if mode != Mode::Meter {
            for (tenant, amount) in existing_usage(tbl, &name, &column, mode) {
                add_usage(tenant, resource, i64::MIN, -amount, -1);
            }
        }
        audit::record(
            "detach_quota",
            None,
            json!({"table": name, "resource": resource, "mode": mode.as_str()}),
        );
    })
}

/// Before attach_quota/detach_quota change what a count quota counts: its tables take no writes
/// until this transaction ends (so no reservation in shared memory is under way when the slots
/// count again), the slots count again after commit, and every session reads the quota afresh
/// (Quota::counted).
fn prepare_count_change(resource: &str) {
    lock_counted_tables(resource);
    shared_counters::invalidate_at_commit(resource);
    crate::cache::invalidate_everywhere();
}

/// Holds off writes to a count quota's tables until this transaction ends.
fn lock_counted_tables(resource: &str) {
    let tables: Vec<String> = counted_tables(resource)
        .into_iter()
        .map(|(t, _, _)| t)
        .collect();
    if !tables.is_empty() {
        run_with_args(
            &format!("LOCK TABLE {} IN SHARE MODE", tables.join(", ")),
            &[],
        );
    }
}

/// The resources attached as count quotas to some table.
fn count_resources() -> Vec<String> {
    crate::owner::as_extension_owner(|| {
        Spi::connect(|client| {
        let rows = client.select(
            crate::owner::data_sql("SELECT DISTINCT resource FROM tenant_data.quota_attachments WHERE mode OPERATOR(pg_catalog.=) 'count' ORDER BY 1"),
            None,
            &[],
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.get::<String>(1)?.unwrap_or_default());
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
    })
}

/// Sets the counter rows of a count quota to 0 for every tenant (its first table attached, its
/// last detached, or before every tenant's rows are counted again).
fn zero_counter_rows(resource: &str) {
    run_as_owner(
        crate::owner::data_sql("UPDATE tenant_data.usage_counters SET used = 0 WHERE resource = $1 AND period_start = '-infinity'"),
        &[resource.into()],
    );
}

/// Sets a tenant's counter row of a count quota to its rows (see count_rows), locking the row
/// first: whoever charged it before has committed when the count runs.
fn set_counter_to_rows(tenant: pgrx::Uuid, resource: &str, hide_own: bool) {
    add_usage(tenant, resource, i64::MIN, 0, -1);
    let rows = count_rows(tenant, resource, hide_own);
    run_as_owner(
        crate::owner::data_sql("UPDATE tenant_data.usage_counters SET used = $3 WHERE tenant_id = $1 AND resource = $2 AND period_start = '-infinity'"),
        &[tenant.into(), resource.into(), rows.into()],
    );
}

fn is_partition(rel: pg_sys::Oid) -> bool {
    Spi::get_one_with_args::<bool>(
        "SELECT relispartition FROM pg_catalog.pg_class WHERE oid OPERATOR(pg_catalog.=) $1",
        &[rel.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// The index counting `tbl`'s rows for `resource` (attach_quota's count mode), qualified.
fn counting_index(tbl: pg_sys::Oid, resource: &str) -> Option<String> {
    Spi::get_one_with_args::<String>(
        "SELECT pg_catalog.max(i.indexrelid::pg_catalog.regclass::pg_catalog.text)
           FROM pg_catalog.pg_index i
           JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
           JOIN pg_catalog.pg_am a ON a.oid OPERATOR(pg_catalog.=) c.relam
          WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND a.amname OPERATOR(pg_catalog.=) 'tenant_quota'
            AND c.reloptions OPERATOR(pg_catalog.@>) ARRAY['resource=' OPERATOR(pg_catalog.||) $2]",
        &[tbl.into(), resource.into()],
    )
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
}

/// Charges `rows` new rows of a count quota to a tenant (src/row_counter.rs calls this once per
/// resource and tenant when a statement finishes).
pub fn charge_rows(resource: &str, tenant: pgrx::Uuid, rows: i64) {
    // Rows of the current tenant (nearly always, and the only ones RLS lets a role subject to it
    // write) need no registry lookup: tenant.set() checked that it exists.
    if crate::gucs::current_tenant() != Some(tenant)
        && registry::lookup(&tenant.to_string()).is_none()
    {
        TenantError::UnknownTenant(tenant.to_string()).raise();
    }
    charge_counted(tenant, resource, rows);
}

/// Charges `delta` rows (deleted ones: negative) to a count quota: in shared memory when the
/// library is preloaded (shared_counters.rs), else on the counters table.
fn charge_counted(t: pgrx::Uuid, resource: &str, delta: i64) {
    if shared_counters::enabled() {
        let limit = crate::cache::quota_limit(t, resource, || Quota::load(t, resource));
        let hopeless = delta > 0 && (limit == 0 || (limit > 0 && delta > limit));
        let refused = if hopeless {
            Some(counted_used(t, resource))
        } else {
            match shared_counters::charge(t, resource, delta, limit) {
                Some(Charged::Done) => return,
                Some(Charged::Refused(used)) => Some(used),
                None => {
                    resync_key(t, resource);
                    None
                }
            }
        };
        if let Some(used) = refused {
            exceeded(resource, &quota_for(t, resource), used, delta, i64::MAX).raise();
        }
    } else {
        resync_if_marked();
    }
    charge(t, resource, delta, true);
}

/// The usage of a count quota: its slot in shared memory, or its counter row.
fn counted_used(t: pgrx::Uuid, resource: &str) -> i64 {
    // A read-only transaction (a report, a hot standby) cannot count a counter row again: it
    // reads the row as it is.
    let writable = unsafe { !pg_sys::XactReadOnly };
    if shared_counters::enabled() {
        if let Some(used) = shared_counters::used(t, resource) {
            return used;
        }
        if writable {
            resync_key(t, resource);
        }
    } else if writable {
        resync_if_marked();
    }
    current_usage(t, resource, i64::MIN)
}

/// The tables a count quota counts and their tenant columns, from the tenant_quota indexes
/// attach_quota made: a partitioned table once, through its root (its partitions' indexes are
/// children of the root's); a table with inheritance children by itself (`ONLY`), each child by
/// itself. Third column: whether to read it with `ONLY`.
const COUNTED_TABLES: &str = "SELECT i.indrelid::pg_catalog.regclass::pg_catalog.text, a.attname::pg_catalog.text,
            (t.relkind OPERATOR(pg_catalog.<>) 'p')::pg_catalog.text, i.indrelid::pg_catalog.text
       FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
       JOIN pg_catalog.pg_class t ON t.oid OPERATOR(pg_catalog.=) i.indrelid
       JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) c.relam
       JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0]
      WHERE am.amname OPERATOR(pg_catalog.=) 'tenant_quota'
        AND c.reloptions OPERATOR(pg_catalog.@>) ARRAY['resource=' OPERATOR(pg_catalog.||) $1]
        AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits h WHERE h.inhrelid OPERATOR(pg_catalog.=) i.indexrelid)
      ORDER BY 1";

fn counted_tables(resource: &str) -> Vec<(String, String, bool)> {
    Spi::connect(|client| {
        let rows = client.select(COUNTED_TABLES, None, &[resource.into()])?;
        let mut out = Vec::new();
        for row in rows {
            out.push((
                row.get::<String>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<String>(3)?.as_deref() == Some("true"),
            ));
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
}

/// Runs `f` with the latest snapshot active and SPI connected, as the extension owner (so no row
/// is hidden from it): every committed row and no row of other work under way (whose own
/// charges account for it), and the attachments as committed now (also under REPEATABLE READ).
/// With `hide_own`, this transaction's changes are left out too (command id 0), for a count its
/// pending charge will be added to.
fn in_latest_snapshot<R>(hide_own: bool, f: impl FnOnce() -> R) -> R {
    as_extension_owner(|| unsafe {
        pg_sys::PushCopiedSnapshot(pg_sys::GetLatestSnapshot());
        if hide_own {
            (*pg_sys::GetActiveSnapshot()).curcid = 0;
        }
        pg_sys::SPI_connect();
        let result = f();
        pg_sys::SPI_finish();
        pg_sys::PopActiveSnapshot();
        result
    })
}

/// A read-only query through SPI with the active snapshot (inside in_latest_snapshot): every
/// row's columns as text.
fn latest_select(sql: &str, args: &[(pg_sys::Oid, pg_sys::Datum)]) -> Vec<Vec<String>> {
    unsafe {
        let query = std::ffi::CString::new(sql).expect("query");
        let mut types: Vec<pg_sys::Oid> = args.iter().map(|a| a.0).collect();
        let mut values: Vec<pg_sys::Datum> = args.iter().map(|a| a.1).collect();
        let nulls = vec![b' ' as std::ffi::c_char; args.len()];
        let status = pg_sys::SPI_execute_with_args(
            query.as_ptr(),
            args.len() as i32,
            types.as_mut_ptr(),
            values.as_mut_ptr(),
            nulls.as_ptr(),
            true,
            0,
        );
        if status != pg_sys::SPI_OK_SELECT as i32 {
            error!("pg_tenant: counting rows failed ({status})");
        }
        let table = pg_sys::SPI_tuptable;
        let columns = (*(*table).tupdesc).natts;
        let mut out = Vec::new();
        for i in 0..pg_sys::SPI_processed as usize {
            let tuple = *(*table).vals.add(i);
            let mut row = Vec::new();
            for c in 1..=columns {
                let v = pg_sys::SPI_getvalue(tuple, (*table).tupdesc, c);
                row.push(if v.is_null() {
                    String::new()
                } else {
                    std::ffi::CStr::from_ptr(v).to_string_lossy().into_owned()
                });
            }
            out.push(row);
        }
        out
    }
}

fn text_datum(s: &str) -> (pg_sys::Oid, pg_sys::Datum) {
    (pg_sys::TEXTOID, s.into_datum().expect("text"))
}

/// A table a count quota counts, as committed now.
struct CountedTable {
    oid: pg_sys::Oid,
    name: String,
    column: String,
    only: bool,
}

/// The tables of a count quota as committed now (see COUNTED_TABLES).
fn latest_counted_tables(resource: &str) -> Vec<CountedTable> {
    latest_select(COUNTED_TABLES, &[text_datum(resource)])
        .into_iter()
        .map(|r| CountedTable {
            oid: pg_sys::Oid::from(r[3].parse::<u32>().unwrap_or(0)),
            name: r[0].clone(),
            column: r[1].clone(),
            only: r[2] == "true",
        })
        .collect()
}

/// The tenant's rows in the tables of a count quota (see in_latest_snapshot).
pub fn count_rows(tenant: pgrx::Uuid, resource: &str, hide_own: bool) -> i64 {
    in_latest_snapshot(hide_own, || {
        latest_counted_tables(resource)
            .iter()
            .map(|t| {
                let sql = format!(
                    "SELECT pg_catalog.count(*) FROM {}{} WHERE {} OPERATOR(pg_catalog.=) $1",
                    if t.only { "ONLY " } else { "" },
                    t.name,
                    quote_identifier(&t.column)
                );
                // As the table's owner: planning and scanning a user table may run its owner's
                // functions (index expressions and predicates), never with pg_tenant's rights.
                as_table_owner(t.oid, || {
                    latest_select(
                        &sql,
                        &[(pg_sys::UUIDOID, tenant.into_datum().expect("uuid"))],
                    )
                })
                .first()
                .and_then(|r| r[0].parse::<i64>().ok())
                .unwrap_or(0)
            })
            .sum()
    })
}

/// The marker row that says count quotas were kept in shared memory (shared_counters.rs): the
/// counters table's numbers for them are not to be trusted.
const MARKER_TENANT: &str = "00000000-0000-0000-0000-000000000000";
const MARKER_RESOURCE: &str = "pg_tenant.shared_counters";

pub fn write_shared_marker() {
    run_as_owner(
        crate::owner::data_sql(
            "INSERT INTO tenant_data.usage_counters (tenant_id, resource, period_start, used)
         VALUES ($1::pg_catalog.uuid, $2, pg_catalog.clock_timestamp(), 0) ON CONFLICT DO NOTHING",
        ),
        &[MARKER_TENANT.into(), MARKER_RESOURCE.into()],
    );
}

thread_local! {
    /// Without shared memory: whether this session found no marker (it cannot appear meanwhile:
    /// shared memory comes only with a server start).
    static UNMARKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// With shared memory, keys without a slot whose counter row this session counted again.
    static RESYNCED: std::cell::RefCell<std::collections::HashSet<([u8; 16], String)>> = std::cell::RefCell::new(Default::default());
}

fn marker_present() -> bool {
    as_extension_owner(|| {
        crate::owner::read_one::<bool>(
            crate::owner::data_sql("SELECT EXISTS (SELECT FROM tenant_data.usage_counters WHERE tenant_id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid
                              AND resource OPERATOR(pg_catalog.=) $2)"),
            &[MARKER_TENANT.into(), MARKER_RESOURCE.into()],
        )
    })
    .unwrap_or(false)
}

/// Without shared memory: when the server ran with it before (or a dump from such a server was
/// restored), counts every count quota again once, for every tenant, and drops the marker.
fn resync_if_marked() {
    if UNMARKED.with(|u| u.get()) {
        return;
    }
    if !marker_present() {
        UNMARKED.with(|u| u.set(true));
        return;
    }
    // Every session meets the marker at its first count quota and waits here; the first one
    // counts, the others find the marker gone.
    crate::owner::take_named_lock(
        "recount",
        true,
        "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_tenant.recount'))",
    );
    if !marker_present() {
        return;
    }
    recount_all();
    run_as_owner(
        crate::owner::data_sql("DELETE FROM tenant_data.usage_counters WHERE tenant_id = $1::pg_catalog.uuid AND resource = $2"),
        &[MARKER_TENANT.into(), MARKER_RESOURCE.into()],
    );
}

/// Sets every count quota's counter rows to the rows there are.
fn recount_all() {
    let resources = count_resources();
    for resource in resources {
        let mut totals: BTreeMap<String, i64> = BTreeMap::new();
        in_latest_snapshot(true, || {
            for t in latest_counted_tables(&resource) {
                let col = quote_identifier(&t.column);
                let only = if t.only { "ONLY " } else { "" };
                let sql = format!(
                    "SELECT {col}, pg_catalog.count(*) FROM {only}{} WHERE {col} IS NOT NULL GROUP BY 1",
                    t.name
                );
                // As the table's owner (see count_rows).
                for row in as_table_owner(t.oid, || latest_select(&sql, &[])) {
                    *totals.entry(row[0].clone()).or_insert(0) +=
                        row[1].parse::<i64>().unwrap_or(0);
                }
            }
        });
        zero_counter_rows(&resource);
        for (tenant, n) in totals {
            run_as_owner(
                crate::owner::data_sql("INSERT INTO tenant_data.usage_counters (tenant_id, resource, period_start, used)
                 VALUES ($1::pg_catalog.uuid, $2, '-infinity', $3)
                 ON CONFLICT (tenant_id, resource, period_start) DO UPDATE SET used = EXCLUDED.used"),
                &[tenant.as_str().into(), resource.as_str().into(), n.into()],
            );
        }
    }
}

/// A rolled-back transaction took its recounts of counter rows with it.
pub fn forget_resyncs() {
    RESYNCED.with(|r| r.borrow_mut().clear());
}

/// With shared memory but no slot for this key (all taken): its counter row is used, and counted
/// again once per session first (it may have had a slot, and so a stale row, before a restart).
fn resync_key(tenant: pgrx::Uuid, resource: &str) {
    let key = (*tenant.as_bytes(), resource.to_string());
    if RESYNCED.with(|r| r.borrow().contains(&key)) {
        return;
    }
    set_counter_to_rows(tenant, resource, true);
    RESYNCED.with(|r| r.borrow_mut().insert(key));
}

/// Per-tenant totals of the rows in a transition table: (rows, bytes).
unsafe fn scan_transition(
    store: *mut pg_sys::Tuplestorestate,
    desc: pg_sys::TupleDesc,
    attnum: i32,
    sign: i64,
    totals: &mut HashMap<[u8; 16], (i64, i64)>,
) {
    if store.is_null() {
        return;
    }
    let natts = (*desc).natts;
    let slot = pg_sys::MakeSingleTupleTableSlot(desc, &raw const pg_sys::TTSOpsMinimalTuple);
    pg_sys::tuplestore_rescan(store);
    while pg_sys::tuplestore_gettupleslot(store, true, false, slot) {
        pg_sys::slot_getsomeattrs_int(slot, natts);
        let idx = (attnum - 1) as usize;
        if *(*slot).tts_isnull.add(idx) {
            continue;
        }
        let datum = *(*slot).tts_values.add(idx);
        let id = *(datum.cast_mut_ptr::<[u8; 16]>());
        let minimal = slot as *mut pg_sys::MinimalTupleTableSlot;
        let len = if (*minimal).mintuple.is_null() {
            0
        } else {
            (*(*minimal).mintuple).t_len as i64 + out_of_line_bytes(slot, desc)
        };
        let entry = totals.entry(id).or_insert((0, 0));
        entry.0 += sign;
        entry.1 += sign * len;
    }
    pg_sys::ExecDropSingleTupleTableSlot(slot);
}

/// AFTER ... FOR EACH STATEMENT trigger installed by attach_quota(): one counter update per
/// tenant per statement, read straight from the statement's transition tables.
#[pg_trigger]
fn quota_trigger<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, pgrx::AllocatedByPostgres>>, pgrx::PgTriggerError> {
    guarded(|| {
        let args = trigger.extra_args()?;
        let (resource, mode, column) = (&args[0], Mode::parse(&args[1]).expect("mode"), &args[2]);
        if trigger.event().fired_by_truncate() {
            let table = format!("{}.{}", trigger.table_schema()?, trigger.table_name()?);
            TenantError::TruncateRefused(table).raise();
        }
        let data = trigger.trigger_data();
        let mut totals: HashMap<[u8; 16], (i64, i64)> = HashMap::new();
        unsafe {
            let rel = data.tg_relation;
            let desc = (*rel).rd_att;
            let cname = std::ffi::CString::new(column.as_str()).expect("column name");
            let attnum = pg_sys::get_attnum((*rel).rd_id, cname.as_ptr()) as i32;
            if attnum <= 0 {
                error!("pg_tenant: tenant column \"{column}\" not found");
            }
            // The column is read as a uuid below: never trust a column by its name alone (its
            // owner may have renamed it and added another of that name).
            let attr = (*desc).attrs.as_ptr().add((attnum - 1) as usize);
            if (*attr).atttypid != pg_sys::UUIDOID {
                TenantError::WrongColumnType {
                    table: format!("{}.{}", trigger.table_schema()?, trigger.table_name()?),
                    column: column.clone(),
                    found: crate::owner::type_name((*attr).atttypid),
                }
                .raise();
            }
            scan_transition(data.tg_newtable, desc, attnum, 1, &mut totals);
            if mode != Mode::Meter {
                scan_transition(data.tg_oldtable, desc, attnum, -1, &mut totals);
            }
        }
        // A fixed order of tenants, so two statements never wait on each other's counters in a cycle.
        let mut deltas: Vec<([u8; 16], i64)> = totals
            .into_iter()
            .map(|(id, (rows, bytes))| (id, if mode == Mode::Bytes { bytes } else { rows }))
            .filter(|(_, d)| *d != 0)
            .collect();
        deltas.sort();
        for (id, delta) in deltas {
            let id = pgrx::Uuid::from_bytes(id);
            let t = registry::lookup(&id.to_string())
                .unwrap_or_else(|| TenantError::UnknownTenant(id.to_string()).raise());
            if mode == Mode::Count {
                charge_counted(t.id, resource, delta);
            } else {
                charge(t.id, resource, delta, mode != Mode::Meter);
            }
        }
        Ok(None)
    })
}

/// What a row's out-of-line (TOAST) values occupy where they are stored, compressed or not: the
/// row itself holds only an 18-byte pointer to each. (Inline values, compressed or not, are in
/// the row's own length.) So a bytes quota charges a row what it stores on disk, the same for an
/// insert, a copy, an update and a delete.
unsafe fn out_of_line_bytes(slot: *mut pg_sys::TupleTableSlot, desc: pg_sys::TupleDesc) -> i64 {
    let mut bytes = 0i64;
    for i in 0..(*desc).natts as usize {
        let attr = (*desc).attrs.as_ptr().add(i);
        if (*attr).attisdropped || (*attr).attlen != -1 || *(*slot).tts_isnull.add(i) {
            continue;
        }
        let value = *(*slot).tts_values.add(i);
        if pgrx::varlena::varatt_is_1b_e(value.cast_mut_ptr::<pg_sys::varlena>()) {
            bytes += pg_sys::toast_datum_size(value) as i64;
        }
    }
    bytes
}

/// Deletes a dropped tenant's usage and overrides.
pub fn forget_tenant(tenant: pgrx::Uuid) {
    run_as_owner(
        crate::owner::data_sql("DELETE FROM tenant_data.usage_counters WHERE tenant_id = $1"),
        &[tenant.into()],
    );
    run_as_owner(
        crate::owner::data_sql("DELETE FROM tenant_data.limit_overrides WHERE tenant_id = $1"),
        &[tenant.into()],
    );
}

extension_sql!(
    r#"
CREATE VIEW tenant_data.quota_attachments AS
SELECT DISTINCT ON (t.tgrelid, args[1])
       t.tgrelid::regclass AS table_name, args[1] AS resource, args[2] AS mode, args[3]::name AS tenant_column
  FROM pg_catalog.pg_trigger t
 CROSS JOIN LATERAL (SELECT pg_catalog.string_to_array(pg_catalog.encode(t.tgargs, 'escape'), '\000') AS args) a
 WHERE t.tgfoid = 'tenant.quota_trigger()'::regprocedure
 ORDER BY t.tgrelid, args[1];
-- pg_tenant's own code reads tenant_data.quota_attachments (see tenant.protected_tables).
CREATE VIEW tenant.quota_attachments AS
SELECT table_name, resource, mode, tenant_column FROM tenant_data.quota_attachments;
COMMENT ON VIEW tenant.quota_attachments IS 'pg_tenant: quotas attached to tables (tenant.attach_quota)';
GRANT SELECT ON tenant.quota_attachments TO PUBLIC;
"#,
    name = "quota_attachments_view",
    requires = ["quota_tables", quota_trigger]
);

#[cfg(test)]
mod unit_tests {
    use super::{validate_limits, Period, RESOURCE_NAME_MAX};
    use serde_json::json;

    #[test]
    fn limits_are_parsed_with_their_periods() {
        let limits = validate_limits(&json!({
            "calls": {"limit": 10, "period": "day"},
            "seats": {"limit": -1},
            "exports": {"limit": 0}
        }))
        .unwrap();
        assert_eq!(limits["calls"], (10, Period::Day));
        assert_eq!(limits["seats"], (-1, Period::None));
        assert_eq!(limits["exports"], (0, Period::None));
    }

    #[test]
    fn each_malformed_limit_is_refused_naming_its_key() {
        let refused = |v: serde_json::Value| validate_limits(&v).unwrap_err();
        assert!(refused(json!([])).contains("JSON object"));
        assert!(refused(json!({"calls": 10})).contains("limits.\"calls\" must be an object"));
        assert!(refused(json!({"calls": {"period": "day"}}))
            .contains("limits.\"calls\".limit is missing"));
        assert!(refused(json!({"calls": {"limit": -2}})).contains("at least -1"));
        assert!(refused(json!({"calls": {"limit": 1.5}})).contains("integer"));
        assert!(refused(json!({"calls": {"limit": 1, "period": "week"}}))
            .contains("period must be one of"));
        assert!(refused(json!({"calls": {"limit": 1, "every": "day"}}))
            .contains("unknown key \"every\""));
        assert!(refused(json!({"": {"limit": 1}})).contains("1 to"));
        let long = "r".repeat(RESOURCE_NAME_MAX + 1);
        assert!(refused(json!({ long: {"limit": 1} })).contains("1 to"));
    }
}
