//! What the application may know about its own tenancy: `tenant.info()` (the current tenant,
//! its plan, limits and usage) and `tenant.my_tenants()` (the tenants the current role may act
//! as). Both are executable by PUBLIC and read pg_tenant's registry as the extension owner, for
//! the caller's own tenant or rights only.

use pgrx::prelude::*;
use serde_json::{json, Map, Value};

use crate::error::{guarded, TenantError};
use crate::owner::{as_extension_owner, current_role};

#[pg_extern(
    sql = r#"
CREATE FUNCTION tenant.info()
RETURNS TABLE (id uuid, slug text, name text, status text, plan text, limits jsonb, usage jsonb, stats jsonb)
STABLE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.info() IS 'pg_tenant: the current tenant: id, slug, name, status, plan, per resource its limit (-1 unlimited) and usage ({"used", "remaining", "period_end"}), and its statement statistics (NULL unless pg_tenant is preloaded)';
"#,
    requires = ["quota_tables"]
)]
#[allow(clippy::type_complexity)]
fn info() -> TableIterator<
    'static,
    (
        name!(id, pgrx::Uuid),
        name!(slug, String),
        name!(name, Option<String>),
        name!(status, String),
        name!(plan, String),
        name!(limits, pgrx::JsonB),
        name!(usage, pgrx::JsonB),
        name!(stats, Option<pgrx::JsonB>),
    ),
> {
    guarded(|| {
        let t = crate::registry::current().unwrap_or_else(|| TenantError::NoTenant.raise());
        let (name, plan, resources) = as_extension_owner(|| {
            Spi::connect(|client| {
                let row = client
                    .select(
                        crate::owner::data_sql("SELECT t.name, t.plan,
                                ARRAY(SELECT r FROM (SELECT pg_catalog.jsonb_object_keys(p.limits) AS r
                                                       FROM tenant_data.plans p WHERE p.name OPERATOR(pg_catalog.=) t.plan
                                                     UNION
                                                     SELECT o.resource FROM tenant_data.limit_overrides o
                                                      WHERE o.tenant_id OPERATOR(pg_catalog.=) t.id) x
                                      ORDER BY r)
                           FROM tenant_data.tenants t WHERE t.id OPERATOR(pg_catalog.=) $1"),
                        Some(1),
                        &[t.id.into()],
                    )?
                    .first();
                Ok::<_, pgrx::spi::Error>((
                    row.get::<String>(1)?,
                    row.get::<String>(2)?.unwrap_or_default(),
                    row.get::<Vec<String>>(3)?.unwrap_or_default(),
                ))
            })
            .unwrap_or_else(|e| error!("pg_tenant: {e}"))
        });
        let mut limits = Map::new();
        let mut usage = Map::new();
        for resource in resources {
            let s = crate::quotas::standing(&t, &resource);
            limits.insert(resource.clone(), json!(s.limit));
            usage.insert(
                resource,
                json!({
                    "used": s.used,
                    "remaining": s.remaining,
                    "period_end": s.period_end.map(|e| e.to_string()),
                }),
            );
        }
        TableIterator::once((
            t.id,
            t.slug.clone(),
            name,
            t.status.clone(),
            plan,
            pgrx::JsonB(Value::Object(limits)),
            pgrx::JsonB(Value::Object(usage)),
            crate::stats::of_tenant(t.id).map(pgrx::JsonB),
        ))
    })
}

#[pg_extern(sql = r#"
CREATE FUNCTION tenant.my_tenants()
RETURNS TABLE (id uuid, slug text, name text, status text, transaction_only boolean)
STABLE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.my_tenants() IS 'pg_tenant: the tenants the current role may act as (with transaction_only: for a transaction at a time only)';
"#)]
#[allow(clippy::type_complexity)]
fn my_tenants() -> TableIterator<
    'static,
    (
        name!(id, pgrx::Uuid),
        name!(slug, String),
        name!(name, Option<String>),
        name!(status, String),
        name!(transaction_only, bool),
    ),
> {
    guarded(|| {
        let role = current_role();
        // A role that may act as any tenant sees them all; any other, the tenants it has a grant
        // for (then checked one by one: the strongest of its grants wins).
        let any = crate::context::right_to_any(role);
        let query = if any.is_some() {
            crate::owner::data_sql(
                "SELECT id, slug, name, status FROM tenant_data.tenants ORDER BY slug",
            )
        } else {
            crate::owner::data_sql("SELECT id, slug, name, status FROM tenant_data.tenants t
              WHERE EXISTS (SELECT 1 FROM tenant_data.tenant_access a WHERE a.tenant_id OPERATOR(pg_catalog.=) t.id)
              ORDER BY slug")
        };
        let rows = as_extension_owner(|| {
            Spi::connect(|client| {
                let mut rows = Vec::new();
                for row in client.select(query, None, &[])? {
                    rows.push((
                        row.get::<pgrx::Uuid>(1)?.expect("id is NOT NULL"),
                        row.get::<String>(2)?.unwrap_or_default(),
                        row.get::<String>(3)?,
                        row.get::<String>(4)?.unwrap_or_default(),
                    ));
                }
                Ok::<_, pgrx::spi::Error>(rows)
            })
            .unwrap_or_else(|e| error!("pg_tenant: {e}"))
        });
        let mine: Vec<_> = rows
            .into_iter()
            .filter_map(|(id, slug, name, status)| {
                crate::context::right_to(role, id)
                    .map(|transaction_only| (id, slug, name, status, transaction_only))
            })
            .collect();
        TableIterator::new(mine)
    })
}
