//! The tenant context: `tenant.set`, `set_local`, `reset` and `current`, and the rule for who may
//! act as which tenant.

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::{guarded, required, TenantError};
use crate::gucs;
use crate::owner::{current_role, extension_owner, has_privileges_of, is_superuser, role_name};
use crate::registry::{self, Tenant};

/// Superusers, members of the extension owner, and gateway roles may act as any tenant.
fn may_act_as_any_tenant(role: pg_sys::Oid) -> bool {
    is_superuser(role)
        || has_privileges_of(role, extension_owner())
        || registry::gateway_roles()
            .into_iter()
            .any(|g| has_privileges_of(role, g))
}

/// Roles given tenant.grant_access() may act as that one tenant.
fn may_act_as(role: pg_sys::Oid, tenant: &Tenant) -> bool {
    registry::access_roles(tenant.id)
        .into_iter()
        .any(|r| has_privileges_of(role, r))
}

/// Resolves `key` and checks the current role may act as it. A role with no right to the tenant
/// is told so whether or not the tenant exists, so unprivileged roles cannot probe for slugs.
fn authorize(key: Option<&str>) -> Tenant {
    let key = required(key, "tenant");
    let role = current_role();
    let privileged = may_act_as_any_tenant(role);
    let denied = || TenantError::NotAllowedToActAs {
        tenant: key.to_string(),
        role: role_name(role),
    };
    match registry::lookup(key) {
        Some(t) if privileged || may_act_as(role, &t) => t,
        Some(_) => denied().raise(),
        None if privileged => TenantError::UnknownTenant(key.to_string()).raise(),
        None => denied().raise(),
    }
}

/// Makes `t` the session's tenant (or the transaction's, `local`), with its schema on the
/// search_path for a schema tenant. The caller has checked that it may.
pub fn enter(t: &Tenant, local: bool) {
    let previous = gucs::set_tenant();
    gucs::apply(&t.id.to_string(), local);
    crate::schemas::apply_search_path(previous, Some(t), local);
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant."set"(tenant text)
RETURNS uuid VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant."set"(text) IS 'pg_tenant: act as this tenant (slug or id) for the rest of the session';
"#
)]
fn set(tenant: Option<&str>) -> pgrx::Uuid {
    guarded(|| {
        crate::tokens::refuse_if_locked();
        let t = authorize(tenant);
        enter(&t, false);
        t.id
    })
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.set_local(tenant text)
RETURNS uuid VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.set_local(text) IS 'pg_tenant: act as this tenant (slug or id) until the end of the current transaction';
"#
)]
fn set_local(tenant: Option<&str>) -> pgrx::Uuid {
    guarded(|| {
        crate::tokens::refuse_if_locked();
        let t = authorize(tenant);
        if !unsafe { pg_sys::IsTransactionBlock() } {
            warning!("tenant.set_local() outside a transaction block lasts only until the end of this statement");
        }
        enter(&t, true);
        t.id
    })
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.reset()
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.reset() IS 'pg_tenant: leave the tenant context (no tenant is set afterwards)';
"#
)]
fn reset() {
    guarded(|| {
        crate::tokens::refuse_if_locked();
        let previous = gucs::set_tenant();
        gucs::apply("", false);
        crate::schemas::apply_search_path(previous, None, false);
    })
}

/// The current tenant. STABLE (never IMMUTABLE: cached plans must see a switch) and parallel
/// safe; reads a value the GUC's assign hook already parsed, with no SPI or catalog access.
#[pg_extern(
    stable,
    parallel_safe,
    sql = r#"
CREATE FUNCTION tenant."current"(missing_ok boolean DEFAULT false)
RETURNS uuid STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant."current"(boolean) IS 'pg_tenant: the current tenant''s id; raises PT001 when none is set unless missing_ok';
"#
)]
fn current(missing_ok: Option<bool>) -> Option<pgrx::Uuid> {
    guarded(|| match gucs::current_tenant() {
        Some(id) => Some(id),
        None if missing_ok.unwrap_or(false) => None,
        None => TenantError::NoTenant.raise(),
    })
}

thread_local! {
    /// Cursors declared WITH HOLD in the current transaction.
    static HOLDABLE: std::cell::RefCell<Vec<std::ffi::CString>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether a tenant context (tenant.set, set_local, set_token or the token parameter) is in force.
fn in_tenant_context() -> bool {
    gucs::set_tenant().is_some() || crate::tokens::parameter_is_set()
}

/// `DECLARE ... WITH HOLD`: a holdable cursor keeps its rows after its transaction, so rows read
/// as a tenant could be fetched after that tenant's context ended (behind a transaction pooler,
/// by the next client). Refused while a tenant context is in force; one declared without a
/// context is checked again at commit (see [`holdable_cursors_at_commit`]).
pub fn declaring_holdable_cursor(name: &std::ffi::CStr) {
    guarded(|| {
        if in_tenant_context() {
            TenantError::HoldableCursor(name.to_string_lossy().into_owned()).raise();
        }
        HOLDABLE.with(|h| h.borrow_mut().push(name.to_owned()));
    })
}

/// At commit, a holdable cursor of this transaction is materialized with the context then in
/// force; if there is one, the commit fails (and the cursor goes with the transaction).
pub fn holdable_cursors_at_commit() {
    let names = HOLDABLE.with(|h| std::mem::take(&mut *h.borrow_mut()));
    if names.is_empty() {
        return;
    }
    guarded(|| {
        if !in_tenant_context() {
            return;
        }
        for name in names {
            let portal = unsafe { pg_sys::GetPortalByName(name.as_ptr()) };
            if !portal.is_null() {
                TenantError::HoldableCursor(name.to_string_lossy().into_owned()).raise();
            }
        }
    })
}

/// The transaction ended: its cursor list goes with it.
pub fn forget_holdable_cursors() {
    HOLDABLE.with(|h| h.borrow_mut().clear());
}
