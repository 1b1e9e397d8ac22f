//! Usage per period: the quota in force for a tenant and resource, the counter rows that
//! `consume`, `check_quota` and the quota triggers charge, and what `tenant.info()` reports
//! (sql/usage_views.sql: usage, usage_history, overview).

use pgrx::datum::TimestampWithTimeZone;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{PgBuiltInOids, PgOid};
use serde_json::json;

use crate::error::{guarded, required, TenantError};
use crate::owner::as_extension_owner;
use crate::registry;
use crate::types::{Period, Quota, Tenant};

use super::recount::counted_used;
use super::shared_counters::{self};

impl Quota {
    pub fn set_bounds(&mut self, bounds: Option<(i64, i64)>) {
        self.bounds = bounds;
    }

    pub(super) fn load(tenant: pgrx::Uuid, resource: &str) -> Quota {
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
pub(super) fn quota_for(tenant: pgrx::Uuid, resource: &str) -> Quota {
    crate::registry::cache::quota(tenant, resource, || Quota::load(tenant, resource))
}

pub(super) fn now() -> i64 {
    unsafe { pg_sys::GetCurrentTransactionStartTimestamp() }
}

pub(super) fn timestamp_text(v: i64) -> Option<String> {
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
pub(super) fn run_kept(
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
pub(super) fn add_usage(
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

pub(super) fn current_usage(tenant: pgrx::Uuid, resource: &str, period_start: i64) -> i64 {
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

pub(super) fn exceeded(
    resource: &str,
    q: &Quota,
    used: i64,
    requested: i64,
    period_end: i64,
) -> TenantError {
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
pub(super) fn charge(
    tenant: pgrx::Uuid,
    resource: &str,
    delta: i64,
    force_none: bool,
) -> (i64, Quota) {
    let mut q = quota_for(tenant, resource);
    if force_none {
        q.period = Period::None;
    }
    let (start, end) = q.period_at(now());
    if !force_none {
        crate::registry::cache::store_bounds(tenant, resource, q.bounds);
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
pub(super) fn current_tenant() -> Tenant {
    registry::current().unwrap_or_else(|| TenantError::NoTenant.raise())
}

#[pg_extern(
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
    crate::registry::cache::store_bounds(t.id, resource, q.bounds);
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
    "../../sql/usage_views.sql",
    name = "usage_views",
    requires = ["quota_tables", "protected_tables_view"]
);

/// For the views: a count quota's usage where it lives in shared memory, else NULL (declared in
/// sql/usage_views.sql, which the upgrade from 0.1.0 runs too).
#[pg_extern(sql = false)]
fn counted_usage(tenant_id: Option<pgrx::Uuid>, resource: Option<&str>) -> Option<i64> {
    guarded(|| {
        let (tenant, resource) = (tenant_id?, resource?);
        if !shared_counters::enabled()
            || !quota_for(tenant, resource).counted
            || super::distributed::on_distributed_table(resource)
        {
            return None;
        }
        shared_counters::used(tenant, resource)
    })
}
