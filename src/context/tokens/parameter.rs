//! The `pg_tenant.token` parameter (the form poolers and Citus forward): its check, show and
//! assign hooks, and the tenant it names, judged again at every use.

use std::cell::RefCell;
use std::ffi::{c_char, c_void};

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::{refuse_setting, TenantError};

use super::replay::refuse_below_lock;
use super::settings::{setting, TOKEN};
use super::verify::{expired, refuse_if_expired, remember_verified, verified, verify};

thread_local! {
    /// The value of `pg_tenant.token` as PostgreSQL last assigned it, and what it resolved to.
    pub(super) static PARAMETER: RefCell<(Option<String>, Option<Resolved>)> = const { RefCell::new((None, None)) };
    /// Values of `pg_tenant.token` that passed the check hook in this transaction (set by a
    /// statement of this transaction, not restored by a rollback, RESET or the end of a SET LOCAL).
    pub(super) static CHECKED_IN_XACT: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// (transaction, role, whether that role may act as tenants only for a transaction).
    pub(super) static TXN_ONLY: std::cell::Cell<Option<(u64, pg_sys::Oid, bool)>> = const { std::cell::Cell::new(None) };
}

/// What the parameter's token resolved to; checked again at every use (exp, the session lock,
/// transaction_only), since all three can change while the value stays.
#[derive(Debug, Clone, Copy)]
pub(super) struct Resolved {
    id: pgrx::Uuid,
    iat: Option<i64>,
    exp: Option<i64>,
}

/// The tenant named by `pg_tenant.token`, resolved through the registry (cached); the
/// unknown-tenant error when the token names no tenant. None when no token is set. A value this
/// backend has not verified yet (one given in the connection's options before a transaction
/// could read the keys) is verified here, and refused with the token's error if it fails. At
/// every use the token must still be valid (exp), newer than a session lock, and, for a role
/// granted transaction_only, set by a statement of this transaction.
pub fn parameter_tenant() -> Option<pgrx::Uuid> {
    // The hot path (every tenant.current()): no token, or one already resolved; no copying.
    let (set, resolved) = PARAMETER.with(|p| {
        let p = p.borrow();
        (p.0.is_some(), p.1)
    });
    if !set {
        return None;
    }
    let r = match resolved {
        Some(r) => r,
        None => resolve_parameter(),
    };
    // A parallel worker runs for its leader, which judged the token when the statement began.
    if unsafe { pg_sys::ParallelWorkerNumber } < 0 {
        refuse_if_expired(r.exp);
        refuse_below_lock(r.iat).unwrap_or_else(|e| TenantError::Token(e).raise());
        if transaction_only_now() && !parameter_set_in_this_transaction() {
            TenantError::TransactionOnly(crate::owner::role_name(crate::owner::current_role()))
                .raise();
        }
        crate::quotas::sessions::occupy_for_transaction(r.id);
    }
    Some(r.id)
}

/// The tenant the token in `pg_tenant.token` names, without raising, however the value got
/// there (`SET`, `set_config()`, the connection's options, a placeholder applied when the library
/// loaded): None when no token is set, or when its use would be refused (it does not verify, has
/// expired, names no tenant, is older than a session lock, or is a value not set in this
/// transaction for a role granted transaction_only). For the tenant's settings
/// (context/settings.rs) only, never to decide access: every use judges the token again
/// ([`parameter_tenant`]) and raises there.
pub fn parameter_tenant_quietly() -> Option<pgrx::Uuid> {
    let (value, resolved) = PARAMETER.with(|p| {
        let p = p.borrow();
        (p.0.clone(), p.1)
    });
    let value = value?;
    let (id, iat, exp) = match resolved {
        Some(r) => (r.id, r.iat, r.exp),
        None => {
            let v = match verified(&value) {
                Some(v) => v,
                None => {
                    let v = verify(&value).ok()?;
                    remember_verified(&value, &v);
                    v
                }
            };
            // (Read acting as no tenant: the lookup's own statement judges no context.)
            let id = crate::gucs::without_tenant(|| crate::registry::lookup(&v.tenant))?.id;
            (id, v.iat, v.exp)
        }
    };
    let refused = expired(exp)
        || refuse_below_lock(iat).is_err()
        || (transaction_only_now() && !parameter_set_in_this_transaction());
    (!refused).then_some(id)
}

/// Verifies (unless this backend verified this exact value already) and resolves the token.
pub(super) fn resolve_parameter() -> Resolved {
    let token = PARAMETER.with(|p| p.borrow().0.clone()).unwrap_or_default();
    let v = match verified(&token) {
        Some(v) => v,
        None => {
            let v = verify(&token).unwrap_or_else(|e| TenantError::Token(e).raise());
            remember_verified(&token, &v);
            v
        }
    };
    let id = crate::registry::lookup(&v.tenant)
        .map(|t| t.id)
        .unwrap_or_else(|| TenantError::UnknownTenant(v.tenant.clone()).raise());
    let r = Resolved {
        id,
        iat: v.iat,
        exp: v.exp,
    };
    // Only if the parameter still holds this token (the lookup ran SQL).
    PARAMETER.with(|p| {
        let mut p = p.borrow_mut();
        if p.0.as_deref() == Some(token.as_str()) {
            p.1 = Some(r);
        }
    });
    r
}

/// Whether the current role may act as tenants only for a transaction (judged once per
/// transaction and role).
pub(super) fn transaction_only_now() -> bool {
    let role = crate::owner::current_role();
    let generation = crate::gucs::transaction_generation();
    if let Some((g, r, only)) = TXN_ONLY.with(|t| t.get()) {
        if g == generation && r == role {
            return only;
        }
    }
    let only = crate::context::transaction_only_role();
    TXN_ONLY.with(|t| t.set(Some((generation, role, only))));
    only
}

/// Whether the value of `pg_tenant.token` in force was set by a statement of this transaction:
/// it passed the check hook in this transaction, and the parameter has changed in this
/// transaction (PostgreSQL keeps a stack entry for every change until the transaction ends; a
/// value committed earlier, restored by ROLLBACK TO, RESET or the end of a SET LOCAL, or applied
/// when the library loaded has none, or did not pass the check hook in this transaction).
pub(super) fn parameter_set_in_this_transaction() -> bool {
    let Some(value) = PARAMETER.with(|p| p.borrow().0.clone()) else {
        return false;
    };
    CHECKED_IN_XACT.with(|c| c.borrow().contains(&value))
        && crate::gucs::changed_in_this_transaction(c"pg_tenant.token")
}

/// The end of a transaction (registered with crate::xact from _PG_init): the per-transaction
/// judgements end with it.
pub fn on_xact(event: pg_sys::XactEvent::Type) {
    if crate::xact::ended(event).is_none() {
        return;
    }
    CHECKED_IN_XACT.with(|c| c.borrow_mut().clear());
}

/// Whether `pg_tenant.token` is set (it then decides the tenant).
pub fn parameter_is_set() -> bool {
    PARAMETER.with(|p| p.borrow().0.is_some())
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn check_token_guc(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    let value = crate::gucs::check_hook_value(newval);
    if pg_sys::InitializingParallelWorker {
        return true;
    }
    // (See context::refuse_in_restricted_operation: not while a statement writes rows.)
    if pg_sys::IsTransactionState() && crate::quotas::row_counter::writing() {
        let e = TenantError::ChangedWhileWriting("SET pg_tenant.token");
        return refuse_setting(e.sqlstate(), &e.message(), None);
    }
    // No token.
    if value.is_empty() {
        return true;
    }
    // Connection options with the library preloaded: no transaction (or, while the backend
    // starts, no snapshot) to read the keys with yet. Accepted for now, unverified: the first
    // use verifies this exact value (see parameter_tenant) and fails closed.
    if !pg_sys::IsTransactionState()
        || (!pg_sys::ActiveSnapshotSet() && pg_sys::ActivePortal.is_null())
    {
        return true;
    }
    // No replay judgement here: the parameter is the form poolers and Citus forward, which
    // interleave many clients' tokens on one server session (exp bounds a token's use).
    match verify(&value).and_then(|v| refuse_below_lock(v.iat).map(|_| v)) {
        Ok(v) => {
            remember_verified(&value, &v);
            CHECKED_IN_XACT.with(|c| {
                let mut c = c.borrow_mut();
                if !c.contains(&value) {
                    c.push(value.clone());
                }
            });
            true
        }
        Err(e) => refuse_setting(e.sqlstate(), &e.message(), None),
    }
}

/// What SHOW prints for the token: whether one is set, never the token.
#[pg_guard]
pub(super) unsafe extern "C-unwind" fn show_token_guc() -> *const c_char {
    if setting(TOKEN).is_some() {
        c"(hidden)".as_ptr()
    } else {
        c"".as_ptr()
    }
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn assign_token_guc(
    newval: *const c_char,
    _extra: *mut c_void,
) {
    // No decoding here: the value counts only once it is found verified (parameter_tenant).
    let value = crate::gucs::assign_hook_value(newval);
    PARAMETER.with(|p| *p.borrow_mut() = ((!value.is_empty()).then_some(value), None));
    crate::gucs::mark_context_parameters_changed();
    crate::tenant_plans::context_changed();
}
