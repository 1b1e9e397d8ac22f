//! A tenant's life: `tenant.create` (with its schema for `isolation => 'schema'`), `suspend`,
//! `resume` and `drop` (its rows, quota usage and schema with it). It ties the features together,
//! so it sits above them: the registry row (registry/), the plan (quotas/), the schema
//! (schemas/), the rows of protected tables (isolation/), the statistics (stats/).

use pgrx::prelude::*;
use serde_json::json;

use crate::error::{guarded, required, TenantError};
use crate::owner::run_as_owner;
use crate::registry::{audit, lookup, resolve, validate_slug};

#[pg_extern(sql = r#"
CREATE FUNCTION tenant."create"(slug text, name text DEFAULT NULL, plan text DEFAULT 'default', settings jsonb DEFAULT '{}',
                                isolation text DEFAULT 'shared', template name DEFAULT NULL)
RETURNS uuid VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant."create"(text, text, text, jsonb, text, name) IS 'pg_tenant: register a tenant (with isolation => ''schema'', in its own schema cloned from template); returns its id';
"#)]
fn create_tenant(
    slug: Option<&str>,
    name: Option<&str>,
    plan: Option<&str>,
    settings: Option<crate::args::Jsonb>,
    isolation: Option<&str>,
    template: Option<&core::ffi::CStr>,
) -> pgrx::Uuid {
    guarded(|| {
        let slug = required(slug, "slug");
        let plan = required(plan, "plan");
        let settings = required(settings, "settings").0;
        let isolation = required(isolation, "isolation");
        let template = template.map(|t| t.to_string_lossy().into_owned());
        if let Err(reason) = validate_slug(slug) {
            TenantError::InvalidSlug {
                slug: slug.to_string(),
                reason,
            }
            .raise();
        }
        if !settings.is_object() {
            TenantError::invalid("settings", "must be a JSON object").raise();
        }
        let schema = match (isolation, &template) {
            ("shared", None) => None,
            ("shared", Some(_)) => {
                TenantError::invalid("template", "is only used with isolation => 'schema'").raise()
            }
            ("schema", None) => {
                TenantError::invalid("template", "is required with isolation => 'schema'").raise()
            }
            ("schema", Some(_)) => Some(crate::schemas::schema_name_for(slug)),
            _ => TenantError::invalid("isolation", "must be 'shared' or 'schema'").raise(),
        };
        if lookup(slug).is_some() {
            TenantError::DuplicateSlug(slug.to_string()).raise();
        }
        crate::quotas::require_plan(plan);
        let id = pgrx::Uuid::from_bytes(*uuid::Uuid::new_v4().as_bytes());
        let settings_arg = pgrx::JsonB(settings.clone());
        match (&schema, &template) {
            (Some(schema), Some(template)) => run_as_owner(
                crate::owner::data_sql("INSERT INTO tenant_data.tenants (id, slug, name, plan, settings, isolation, schema_name, template) VALUES ($1, $2, $3, $4, $5, 'schema', $6, $7)"),
                &[id.into(), slug.into(), name.into(), plan.into(), settings_arg.into(), schema.as_str().into(), template.as_str().into()],
            ),
            // Without the 0.2.0 columns, so that a database still at 0.1.0 keeps working.
            _ => run_as_owner(
                crate::owner::data_sql("INSERT INTO tenant_data.tenants (id, slug, name, plan, settings) VALUES ($1, $2, $3, $4, $5)"),
                &[id.into(), slug.into(), name.into(), plan.into(), settings_arg.into()],
            ),
        }
        if let (Some(schema), Some(template)) = (&schema, &template) {
            crate::schemas::provision(id, template, schema);
        }
        let mut detail = json!({"slug": slug, "name": name, "plan": plan, "settings": settings});
        if let (Some(schema), Some(template)) = (&schema, &template) {
            detail["isolation"] = json!("schema");
            detail["schema"] = json!(schema);
            detail["template"] = json!(template);
        }
        audit::record("create", Some(id), detail);
        id
    })
}

/// tenant.create as 0.1.0 declared it (four arguments): a database still at 0.1.0 calls this
/// symbol until ALTER EXTENSION pg_tenant UPDATE, since the library is shared by every version.
#[pg_extern(sql = false)]
fn create(
    slug: Option<&str>,
    name: Option<&str>,
    plan: Option<&str>,
    settings: Option<crate::args::Jsonb>,
) -> pgrx::Uuid {
    create_tenant(slug, name, plan, settings, Some("shared"), None)
}

fn set_status(tenant: Option<&str>, status: &str, reason: Option<&str>) {
    let t = resolve(tenant);
    run_as_owner(
        crate::owner::data_sql("UPDATE tenant_data.tenants SET status = $2, suspended_reason = $3, updated_at = pg_catalog.now() WHERE id OPERATOR(pg_catalog.=) $1"),
        &[t.id.into(), status.into(), reason.into()],
    );
    let action = if status == "suspended" {
        "suspend"
    } else {
        "resume"
    };
    audit::record(
        action,
        Some(t.id),
        json!({"slug": t.slug, "reason": reason, "previous_status": t.status}),
    );
}

#[pg_extern(sql = r#"
CREATE FUNCTION tenant.suspend(tenant text, reason text DEFAULT NULL)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.suspend(text, text) IS 'pg_tenant: stop writes for a tenant (reads keep working)';
"#)]
fn suspend(tenant: Option<&str>, reason: Option<&str>) {
    guarded(|| set_status(tenant, "suspended", reason))
}

#[pg_extern(sql = r#"
CREATE FUNCTION tenant.resume(tenant text)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.resume(text) IS 'pg_tenant: allow writes again for a suspended tenant';
"#)]
fn resume(tenant: Option<&str>) {
    guarded(|| set_status(tenant, "active", None))
}

#[pg_extern(sql = r#"
CREATE FUNCTION tenant."drop"(tenant text)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant."drop"(text) IS 'pg_tenant: delete a tenant, all of its rows in protected tables and its registry row (the audit trail stays)';
"#)]
fn drop_tenant(tenant: Option<&str>) {
    guarded(|| {
        // Under one snapshot for the whole transaction, rows committed by the tenant's writers
        // while the drop waits for them would stay invisible to its deletes, and stay behind.
        if unsafe { pg_sys::XactIsoLevel } >= pg_sys::XACT_REPEATABLE_READ as i32 {
            TenantError::NeedsReadCommitted("tenant.drop").raise();
        }
        let t = resolve(tenant);
        if let Some(schema) = &t.schema_name {
            crate::schemas::drop_schema(schema);
        }
        let deleted = crate::isolation::tenant_rows::delete_tenant_rows(t.id);
        crate::quotas::forget_tenant(t.id);
        crate::stats::forget_at_commit(t.id);
        run_as_owner(
            crate::owner::data_sql(
                "DELETE FROM tenant_data.tenant_access WHERE tenant_id OPERATOR(pg_catalog.=) $1",
            ),
            &[t.id.into()],
        );
        run_as_owner(
            crate::owner::data_sql(
                "DELETE FROM tenant_data.tenants WHERE id OPERATOR(pg_catalog.=) $1",
            ),
            &[t.id.into()],
        );
        audit::record(
            "drop",
            Some(t.id),
            match &t.schema_name {
                Some(schema) => json!({"slug": t.slug, "deleted_rows": deleted, "schema": schema}),
                None => json!({"slug": t.slug, "deleted_rows": deleted}),
            },
        );
    })
}
