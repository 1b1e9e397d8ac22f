//! Plan settings (issue 15): `set_plan_settings` and `set_tenant_settings`, the allowlist and
//! the validation of their `settings`, and the settings in force for a tenant (its own over its
//! plan's, key by key), which context/settings.rs applies while a session acts as the tenant.

use pgrx::prelude::*;
use serde_json::{json, Map, Value};

use crate::error::{guarded, required, TenantError};
use crate::owner::{as_extension_owner, run_as_owner};
use crate::registry;
use crate::registry::audit;

use super::plans::require_plan;

/// The parameters a plan or tenant may set: limits on what a statement, a transaction or a
/// session may use. temp_file_limit is superuser-only: pg_tenant applies it on the authority of
/// the administrator who configured it.
pub const ALLOWED: [&str; 7] = [
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "idle_session_timeout",
    "work_mem",
    "maintenance_work_mem",
    "temp_file_limit",
];

/// A setting's value as `SET` takes it: a JSON string as is, a JSON number as written (in the
/// parameter's base unit: milliseconds, kilobytes). Anything else is None.
pub fn setting_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The keys of `settings` that are not allowed, or the reason the object is malformed; the
/// message names the offending key.
pub fn check_keys(settings: &Value) -> Result<&Map<String, Value>, String> {
    let map = settings
        .as_object()
        .ok_or("settings must be a JSON object")?;
    for (key, value) in map {
        if !ALLOWED.contains(&key.as_str()) {
            return Err(format!(
                "setting \"{key}\" is not allowed (allowed: {})",
                ALLOWED.join(", ")
            ));
        }
        if setting_text(value).is_none() {
            return Err(format!(
                "the value of setting \"{key}\" must be a string or a number"
            ));
        }
    }
    Ok(map)
}

/// Checks every key against the allowlist and every value as `SET` would, before anything is
/// written (a refused value changes nothing).
fn checked_settings(
    settings: Option<crate::args::Jsonb>,
    stored_sql: &'static str,
    key: &str,
) -> Value {
    let settings = required(settings, "settings").0;
    let map = check_keys(&settings)
        .unwrap_or_else(|reason| TenantError::invalid("settings", reason).raise());
    // A superuser-only parameter is applied with a superuser's rights: only a superuser may
    // configure it, or replace settings that hold it (a delegate granted EXECUTE could otherwise
    // set or drop its own limit).
    if !crate::owner::is_superuser(crate::owner::current_role()) {
        let stored = as_extension_owner(|| {
            crate::owner::read_one::<pgrx::JsonB>(crate::owner::data_sql(stored_sql), &[key.into()])
        });
        let stored_has = stored.is_some_and(|j| j.0.get("temp_file_limit").is_some());
        if map.contains_key("temp_file_limit") || stored_has {
            TenantError::NotSuperuser(
                "tenant.set_plan_settings()/set_tenant_settings() with temp_file_limit",
            )
            .raise();
        }
    }
    for (key, value) in map {
        crate::pg_settings::validate_setting(key, &setting_text(value).unwrap_or_default());
    }
    settings
}

#[pg_extern(
    sql = r#"
CREATE FUNCTION tenant.set_plan_settings(plan text, settings jsonb)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.set_plan_settings(text, jsonb) IS 'pg_tenant: settings (statement_timeout, work_mem, ...) applied while a session acts as a tenant of this plan; its statement_timeout is a ceiling; ''{}'' clears';
"#,
    requires = ["quota_tables"]
)]
fn set_plan_settings(plan: Option<&str>, settings: Option<crate::args::Jsonb>) {
    guarded(|| {
        let plan = required(plan, "plan");
        let settings = checked_settings(
            settings,
            "SELECT context_settings FROM tenant_data.plans WHERE name OPERATOR(pg_catalog.=) $1",
            plan,
        );
        require_plan(plan);
        run_as_owner(
            crate::owner::data_sql("UPDATE tenant_data.plans SET context_settings = $2, updated_at = pg_catalog.now() WHERE name OPERATOR(pg_catalog.=) $1"),
            &[plan.into(), pgrx::JsonB(settings.clone()).into()],
        );
        audit::record(
            "set_plan_settings",
            None,
            json!({"plan": plan, "settings": settings}),
        );
    })
}

#[pg_extern(
    sql = r#"
CREATE FUNCTION tenant.set_tenant_settings(tenant text, settings jsonb)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.set_tenant_settings(text, jsonb) IS 'pg_tenant: a tenant''s own settings, over its plan''s key by key; ''{}'' clears';
"#,
    requires = ["quota_tables"]
)]
fn set_tenant_settings(tenant: Option<&str>, settings: Option<crate::args::Jsonb>) {
    guarded(|| {
        let t = registry::resolve(tenant);
        let settings = checked_settings(
            settings,
            "SELECT context_settings FROM tenant_data.tenants WHERE id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid",
            &t.id.to_string(),
        );
        run_as_owner(
            crate::owner::data_sql("UPDATE tenant_data.tenants SET context_settings = $2, updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1"),
            &[t.id.into(), pgrx::JsonB(settings.clone()).into()],
        );
        audit::record(
            "set_tenant_settings",
            Some(t.id),
            json!({"slug": t.slug, "settings": settings}),
        );
    })
}

/// The settings in force for `tenant`: its own over its plan's, key by key, as (name, value)
/// pairs in name order (cached; a change to either table reaches every session at its next
/// transaction, see registry/cache.rs). Empty in a database not updated to 0.3.0 yet.
pub fn tenant_settings(tenant: pgrx::Uuid) -> Vec<(String, String)> {
    // With Citus, on the coordinator only: a worker serves the shards of a statement that runs
    // under the coordinator's settings and ceiling (and cannot read them through Citus there).
    if crate::citus::metadata_present() && !crate::node_context::this_node_is_coordinator() {
        return Vec::new();
    }
    registry::cache::context_settings(tenant, || load(tenant))
}

fn load(tenant: pgrx::Uuid) -> Vec<(String, String)> {
    // Read acting as no tenant: this runs while the context changes (after RESET
    // pg_tenant.token, say), and its own statement (a parallel plan under force_parallel_mode)
    // must not judge a context that is not settled yet.
    let merged = crate::gucs::without_tenant(|| as_extension_owner(|| read_merged(tenant)));
    let Some(pgrx::JsonB(Value::Object(map))) = merged else {
        return Vec::new();
    };
    // Only what the allowlist admits (a value written by hand into the tables is not applied).
    map.iter()
        .filter(|(k, _)| ALLOWED.contains(&k.as_str()))
        .filter_map(|(k, v)| setting_text(v).map(|v| (k.clone(), v)))
        .collect()
}

/// The tenant's own settings over its plan's, as one JSON object (None: no such tenant).
fn read_merged(tenant: pgrx::Uuid) -> Option<pgrx::JsonB> {
    // Read-only SPI: this runs at every set()/set_local(), on a hot standby too (no transaction
    // id may be assigned there).
    crate::owner::read_one::<pgrx::JsonB>(
        crate::owner::data_sql(
            "SELECT COALESCE(pg_catalog.to_jsonb(p) OPERATOR(pg_catalog.->) 'context_settings', '{}'::pg_catalog.jsonb)
                    OPERATOR(pg_catalog.||)
                    COALESCE(pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.->) 'context_settings', '{}'::pg_catalog.jsonb)
               FROM tenant_data.tenants t
               LEFT JOIN tenant_data.plans p ON p.name OPERATOR(pg_catalog.=) t.plan
              WHERE t.id OPERATOR(pg_catalog.=) $1",
        ),
        &[tenant.into()],
    )
}

#[cfg(test)]
mod unit_tests {
    use super::check_keys;
    use serde_json::json;

    #[test]
    fn keys_outside_the_allowlist_and_odd_values_are_refused_by_name() {
        assert!(check_keys(&json!({"work_mem": "8MB", "statement_timeout": 5000})).is_ok());
        assert!(check_keys(&json!([])).unwrap_err().contains("JSON object"));
        assert!(check_keys(&json!({"search_path": "x"}))
            .unwrap_err()
            .contains("\"search_path\" is not allowed"));
        assert!(check_keys(&json!({"work_mem": true}))
            .unwrap_err()
            .contains("\"work_mem\" must be a string or a number"));
    }
}
