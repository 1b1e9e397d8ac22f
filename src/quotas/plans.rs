//! Plans and per-tenant limits: create_plan, alter_plan, drop_plan, change_plan, set_limit,
//! clear_limit, and the validation of a plan's `limits`.

use std::collections::BTreeMap;

use pgrx::prelude::*;
use serde_json::{json, Value};

use crate::error::{guarded, required, TenantError};
use crate::owner::{as_extension_owner, run_as_owner};
use crate::registry;
use crate::registry::audit;
use crate::types::Period;

use super::usage::{required_resource, RESOURCE_NAME_MAX};

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
        if resource == super::sessions::SESSIONS && period != Period::None {
            return Err(format!(
                "{at} cannot have a period: it limits sessions acting as the tenant at the same time"
            ));
        }
        out.insert(resource.clone(), (limit, period));
    }
    Ok(out)
}

pub(super) fn plan_exists(name: &str) -> bool {
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

pub(super) fn checked_limits(limits: Option<crate::args::Jsonb>) -> Value {
    let limits = required(limits, "limits").0;
    if let Err(reason) = validate_limits(&limits) {
        TenantError::InvalidLimits(reason).raise();
    }
    limits
}

/// Writes a plan's limits with `sql` ($1 the name, $2 the limits) and records `action`.
fn write_plan(action: &str, sql: &'static str, name: &str, limits: serde_json::Value) {
    run_as_owner(
        crate::owner::data_sql(sql),
        &[name.into(), pgrx::JsonB(limits.clone()).into()],
    );
    audit::record(action, None, json!({"plan": name, "limits": limits}));
}

#[pg_extern(
    sql = r#"
CREATE FUNCTION tenant.create_plan(name text, limits jsonb)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.create_plan(text, jsonb) IS 'pg_tenant: define a plan and its limits';
"#,
    requires = ["quota_tables"]
)]
fn create_plan(name: Option<&str>, limits: Option<crate::args::Jsonb>) {
    guarded(|| {
        let name = required(name, "name");
        if name.is_empty() {
            TenantError::invalid("name", "must not be empty").raise();
        }
        let limits = checked_limits(limits);
        if plan_exists(name) {
            TenantError::DuplicatePlan(name.to_string()).raise();
        }
        write_plan(
            "create_plan",
            "INSERT INTO tenant_data.plans (name, limits) VALUES ($1, $2)",
            name,
            limits,
        );
    })
}

#[pg_extern(
    sql = r#"
CREATE FUNCTION tenant.alter_plan(name text, limits jsonb)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.alter_plan(text, jsonb) IS 'pg_tenant: replace a plan''s limits (takes effect at once for its tenants)';
"#,
    requires = ["quota_tables"]
)]
fn alter_plan(name: Option<&str>, limits: Option<crate::args::Jsonb>) {
    guarded(|| {
        let name = required(name, "name");
        let limits = checked_limits(limits);
        require_plan(name);
        write_plan(
            "alter_plan",
            "UPDATE tenant_data.plans SET limits = $2, updated_at = pg_catalog.now() WHERE name = $1",
            name,
            limits,
        );
    })
}

#[pg_extern(
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
            if resource == super::sessions::SESSIONS && Period::parse(p) != Some(Period::None) {
                TenantError::invalid(
                    "period",
                    "the sessions limit has none: it limits sessions acting as the tenant at the same time",
                )
                .raise();
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
