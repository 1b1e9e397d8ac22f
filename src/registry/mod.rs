//! The tenant registry and its lifecycle: create, suspend, resume, drop, and the grants that say
//! which roles may act as which tenant.

pub mod audit;
pub mod cache;

use pgrx::pg_sys;
use pgrx::prelude::*;
use serde_json::json;

use crate::error::{guarded, required, TenantError};
use crate::owner::{as_extension_owner, role_name, run_as_owner};
use crate::types::{RoleGrant, Tenant};

extension_sql_file!(
    "../../sql/registry.sql",
    name = "registry_tables",
    bootstrap
);

/// Checks a slug: 1 to 63 characters of [a-z0-9_-], starting with a letter or digit, and not
/// shaped like a uuid (every function accepts a slug or an id, so the two must not overlap).
pub fn validate_slug(slug: &str) -> Result<(), &'static str> {
    if slug.is_empty() {
        return Err("it is empty");
    }
    if slug.len() > 63 {
        return Err("it is longer than 63 characters");
    }
    if !slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err("only lowercase letters, digits, '-' and '_' are allowed");
    }
    if !slug.as_bytes()[0].is_ascii_alphanumeric() {
        return Err("it must start with a letter or digit");
    }
    if uuid::Uuid::parse_str(slug).is_ok() {
        return Err("it must not look like a uuid");
    }
    Ok(())
}

/// Finds a tenant by id (when `key` parses as a uuid) or by slug (cached; see cache.rs).
pub fn lookup(key: &str) -> Option<Tenant> {
    crate::registry::cache::tenant(key, || load_tenant(key))
}

fn load_tenant(key: &str) -> Option<Tenant> {
    let by_id = uuid::Uuid::parse_str(key).ok();
    as_extension_owner(|| {
        let query = if by_id.is_some() {
            crate::owner::data_sql("SELECT id, slug, status, suspended_reason, pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.->>) 'schema_name' FROM tenant_data.tenants t WHERE id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid")
        } else {
            crate::owner::data_sql("SELECT id, slug, status, suspended_reason, pg_catalog.to_jsonb(t) OPERATOR(pg_catalog.->>) 'schema_name' FROM tenant_data.tenants t WHERE slug OPERATOR(pg_catalog.=) $1")
        };
        let key = by_id
            .map(|u| u.to_string())
            .unwrap_or_else(|| key.to_string());
        Spi::connect(|client| {
            let rows = client.select(query, Some(1), &[key.into()])?;
            Ok::<_, pgrx::spi::Error>(rows.into_iter().next().map(|row| Tenant {
                id: row.get(1).ok().flatten().expect("id is NOT NULL"),
                slug: row.get(2).ok().flatten().expect("slug is NOT NULL"),
                status: row.get(3).ok().flatten().expect("status is NOT NULL"),
                suspended_reason: row.get(4).ok().flatten(),
                schema_name: row.get(5).ok().flatten(),
            }))
        })
        .unwrap_or_else(|e| error!("pg_tenant: registry lookup failed: {e}"))
    })
}

/// Roles given tenant.grant_gateway() (cached).
pub fn gateway_roles() -> Vec<RoleGrant> {
    crate::registry::cache::gateways(|| {
        role_list(
            if legacy_grants() {
                crate::owner::data_sql(
                    "SELECT role::pg_catalog.oid, false, false FROM tenant_data.gateways",
                )
            } else {
                crate::owner::data_sql(
                    "SELECT role::pg_catalog.oid, transaction_only, read_only FROM tenant_data.gateways",
                )
            },
            &[],
        )
    })
}

/// Roles given tenant.grant_access() for this tenant (cached).
pub fn access_roles(tenant: pgrx::Uuid) -> Vec<RoleGrant> {
    crate::registry::cache::access(tenant, || {
        role_list(
            if legacy_grants() {
                crate::owner::data_sql("SELECT role::pg_catalog.oid, false, false FROM tenant_data.tenant_access WHERE tenant_id OPERATOR(pg_catalog.=) $1")
            } else {
                crate::owner::data_sql("SELECT role::pg_catalog.oid, transaction_only, read_only FROM tenant_data.tenant_access WHERE tenant_id OPERATOR(pg_catalog.=) $1")
            },
            &[tenant.into()],
        )
    })
}

/// Roles given tenant.grant_access(..., transaction_only => true) for some tenant.
pub fn transaction_only_access_roles() -> Vec<pg_sys::Oid> {
    role_list(
        if legacy_grants() {
            "SELECT NULL::pg_catalog.oid, true, false WHERE false"
        } else {
            crate::owner::data_sql("SELECT DISTINCT role::pg_catalog.oid, true, false FROM tenant_data.tenant_access WHERE transaction_only")
        },
        &[],
    )
    .into_iter()
    .map(|g| g.role)
    .collect()
}

/// A database still at 0.1.0 or 0.2.0 (not updated yet): the grant tables have no
/// transaction_only column, and every grant is for the session.
fn legacy_grants() -> bool {
    crate::registry::cache::legacy_grants(|| {
        as_extension_owner(|| {
            crate::owner::read_one::<bool>(
                crate::owner::data_sql("SELECT NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute
                                     WHERE attrelid OPERATOR(pg_catalog.=) 'tenant_data.gateways'::pg_catalog.regclass
                                       AND attname OPERATOR(pg_catalog.=) 'transaction_only' AND NOT attisdropped)"),
                &[],
            )
        })
        .unwrap_or(false)
    })
}

fn role_list(query: &str, args: &[pgrx::datum::DatumWithOid]) -> Vec<RoleGrant> {
    as_extension_owner(|| {
        Spi::connect(|client| {
            let mut roles = Vec::new();
            for row in client.select(query, None, args)? {
                if let Some(role) = row.get::<pg_sys::Oid>(1)? {
                    roles.push(RoleGrant {
                        role,
                        transaction_only: row.get::<bool>(2)?.unwrap_or(false),
                        read_only: row.get::<bool>(3)?.unwrap_or(false),
                    });
                }
            }
            Ok::<_, pgrx::spi::Error>(roles)
        })
        .unwrap_or_else(|e| error!("pg_tenant: registry lookup failed: {e}"))
    })
}

/// The session's tenant as registered: None when no tenant is set; the unknown-tenant error when
/// it no longer exists (dropped while the session still had it set).
pub fn current() -> Option<Tenant> {
    let id = crate::gucs::current_tenant()?;
    Some(
        lookup(&id.to_string())
            .unwrap_or_else(|| TenantError::UnknownTenant(id.to_string()).raise()),
    )
}

/// Raises the suspended error unless the tenant may write.
pub fn require_writable(t: Tenant) -> Tenant {
    if t.is_suspended() {
        TenantError::Suspended {
            slug: t.slug,
            reason: t.suspended_reason,
        }
        .raise();
    }
    // A context a role chose through a read-only grant (see context::writes_as).
    if let Some(role) = crate::gucs::context_read_only() {
        TenantError::ReadOnlyAccess {
            slug: t.slug,
            role: role_name(role),
        }
        .raise();
    }
    t
}

/// Like [`lookup`], raising the unknown-tenant error when there is no such tenant.
pub fn resolve(key: Option<&str>) -> Tenant {
    let key = required(key, "tenant");
    lookup(key).unwrap_or_else(|| TenantError::UnknownTenant(key.to_string()).raise())
}

/// Holds the tenant's registry row until the transaction ends, as a foreign key to it would,
/// before a row naming the tenant is written to tenant_access or limit_overrides (which have no
/// foreign key, see sql/registry.sql): a concurrent tenant.drop() waits for this transaction, or
/// has dropped the tenant and this fails (PT002) instead of leaving a row behind.
pub fn hold(t: &Tenant) {
    let held = as_extension_owner(|| {
        Spi::connect_mut(|client| {
            client
                .update(
                    crate::owner::data_sql("SELECT FROM tenant_data.tenants WHERE id OPERATOR(pg_catalog.=) $1 FOR KEY SHARE"),
                    None,
                    &[t.id.into()],
                )
                .map(|rows| rows.len())
        })
    })
    .unwrap_or_else(|e| error!("pg_tenant: {e}"));
    if held == 0 {
        TenantError::UnknownTenant(t.slug.clone()).raise();
    }
}

#[pg_extern(sql = r#"
CREATE FUNCTION tenant.grant_gateway(role regrole, transaction_only boolean DEFAULT false, read_only boolean DEFAULT false)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.grant_gateway(regrole, boolean, boolean) IS 'pg_tenant: let a role (and its members) act as any tenant (with transaction_only, for a transaction at a time: behind a transaction pooler; with read_only, to read only)';
"#)]
fn grant_gateway_scoped(
    role: Option<pg_sys::Oid>,
    transaction_only: Option<bool>,
    read_only: Option<bool>,
) {
    guarded(|| {
        let role = required(role, "role");
        let transaction_only = required(transaction_only, "transaction_only");
        let read_only = required(read_only, "read_only");
        if legacy_grants() {
            refuse_scoped_grant_before_update(transaction_only || read_only);
            run_as_owner(
                crate::owner::data_sql("INSERT INTO tenant_data.gateways (role) VALUES ($1::pg_catalog.oid::pg_catalog.regrole) ON CONFLICT DO NOTHING"),
                &[role.into()],
            );
        } else {
            run_as_owner(
                crate::owner::data_sql("INSERT INTO tenant_data.gateways (role, transaction_only, read_only) VALUES ($1::pg_catalog.oid::pg_catalog.regrole, $2, $3)
                 ON CONFLICT (role) DO UPDATE SET transaction_only = EXCLUDED.transaction_only, read_only = EXCLUDED.read_only"),
                &[role.into(), transaction_only.into(), read_only.into()],
            );
        }
        audit::record(
            "grant",
            None,
            json!({"kind": "gateway", "role": role_name(role), "transaction_only": transaction_only, "read_only": read_only}),
        );
    })
}

/// In a database not updated to 0.3.0 yet, grants are for the session and may write.
fn refuse_scoped_grant_before_update(scoped: bool) {
    if scoped {
        TenantError::invalid(
            "transaction_only",
            "transaction_only and read_only grants need ALTER EXTENSION pg_tenant UPDATE first",
        )
        .raise();
    }
}

/// The C symbol 0.1.0's and 0.2.0's `tenant.grant_gateway(regrole)` call (until they are updated).
#[pg_extern(sql = false)]
fn grant_gateway(role: Option<pg_sys::Oid>) {
    grant_gateway_scoped(role, Some(false), Some(false))
}

/// The C symbol 0.1.0's and 0.2.0's `tenant.grant_access(text, regrole)` call.
#[pg_extern(sql = false)]
fn grant_access(tenant: Option<&str>, role: Option<pg_sys::Oid>) {
    grant_access_scoped(tenant, role, Some(false), Some(false))
}

#[pg_extern(sql = r#"
CREATE FUNCTION tenant.revoke_gateway(role regrole)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.revoke_gateway(regrole) IS 'pg_tenant: take back tenant.grant_gateway()';
"#)]
fn revoke_gateway(role: Option<pg_sys::Oid>) {
    guarded(|| {
        let role = required(role, "role");
        run_as_owner(
            crate::owner::data_sql("DELETE FROM tenant_data.gateways WHERE role::pg_catalog.oid OPERATOR(pg_catalog.=) $1"),
            &[role.into()],
        );
        audit::record(
            "revoke",
            None,
            json!({"kind": "gateway", "role": role_name(role)}),
        );
    })
}

#[pg_extern(sql = r#"
CREATE FUNCTION tenant.grant_access(tenant text, role regrole, transaction_only boolean DEFAULT false, read_only boolean DEFAULT false)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.grant_access(text, regrole, boolean, boolean) IS 'pg_tenant: let a role (and its members) act as this one tenant (with transaction_only, for a transaction at a time; with read_only, to read only)';
"#)]
fn grant_access_scoped(
    tenant: Option<&str>,
    role: Option<pg_sys::Oid>,
    transaction_only: Option<bool>,
    read_only: Option<bool>,
) {
    guarded(|| {
        let t = resolve(tenant);
        let role = required(role, "role");
        let transaction_only = required(transaction_only, "transaction_only");
        let read_only = required(read_only, "read_only");
        hold(&t);
        if legacy_grants() {
            refuse_scoped_grant_before_update(transaction_only || read_only);
            run_as_owner(
                crate::owner::data_sql("INSERT INTO tenant_data.tenant_access (tenant_id, role) VALUES ($1, $2::pg_catalog.oid::pg_catalog.regrole) ON CONFLICT DO NOTHING"),
                &[t.id.into(), role.into()],
            );
        } else {
            run_as_owner(
                crate::owner::data_sql("INSERT INTO tenant_data.tenant_access (tenant_id, role, transaction_only, read_only) VALUES ($1, $2::pg_catalog.oid::pg_catalog.regrole, $3, $4)
                 ON CONFLICT (tenant_id, role) DO UPDATE SET transaction_only = EXCLUDED.transaction_only, read_only = EXCLUDED.read_only"),
                &[t.id.into(), role.into(), transaction_only.into(), read_only.into()],
            );
        }
        audit::record(
            "grant",
            Some(t.id),
            json!({"kind": "access", "slug": t.slug, "role": role_name(role), "transaction_only": transaction_only, "read_only": read_only}),
        );
    })
}

#[pg_extern(sql = r#"
CREATE FUNCTION tenant.revoke_access(tenant text, role regrole)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.revoke_access(text, regrole) IS 'pg_tenant: take back tenant.grant_access()';
"#)]
fn revoke_access(tenant: Option<&str>, role: Option<pg_sys::Oid>) {
    guarded(|| {
        let t = resolve(tenant);
        let role = required(role, "role");
        run_as_owner(
            crate::owner::data_sql("DELETE FROM tenant_data.tenant_access WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND role::pg_catalog.oid OPERATOR(pg_catalog.=) $2"),
            &[t.id.into(), role.into()],
        );
        audit::record(
            "revoke",
            Some(t.id),
            json!({"kind": "access", "slug": t.slug, "role": role_name(role)}),
        );
    })
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use super::validate_slug;
    use pgrx::prelude::*;

    #[pg_test]
    fn slugs() {
        assert!(validate_slug("acme").is_ok());
        assert!(validate_slug("a").is_ok());
        assert!(validate_slug("9lives_co-op").is_ok());
        assert!(validate_slug(&"a".repeat(63)).is_ok());
        assert!(validate_slug(&"a".repeat(64)).is_err());
        assert!(validate_slug("").is_err());
        assert!(validate_slug("-acme").is_err());
        assert!(validate_slug("_acme").is_err());
        assert!(validate_slug("Acme").is_err());
        assert!(validate_slug("acme corp").is_err());
        assert!(validate_slug("acme';drop").is_err());
        assert!(validate_slug("café").is_err());
        assert!(validate_slug("6f1c2a2e-8a51-4a8e-9a43-0d3c6a9b1e11").is_err());
    }
}
