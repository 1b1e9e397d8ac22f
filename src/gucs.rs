//! The tenant parameter `pg_tenant.tenant_id`.
//!
//! It is a normal string GUC so that `SHOW`, transaction rollback, `SET LOCAL` semantics,
//! `RESET ALL`/`DISCARD ALL` and parallel workers all behave the PostgreSQL way. What makes it
//! tamper-proof is its check hook: it accepts a value only when `tenant.set()`/`set_local()`/
//! `reset()` have just authorized exactly that value, or while a parallel worker copies its
//! leader's state. `SET`, `set_config()`, `ALTER ROLE/DATABASE ... SET`, `PGOPTIONS` and placeholder
//! values from before the library was loaded all go through the hook and are refused.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::{packed_sqlstate, sqlstate};

pub const TENANT_GUC: &CStr = c"pg_tenant.tenant_id";

/// The C string PostgreSQL keeps for the parameter (PostgreSQL owns the memory).
static mut TENANT_GUC_VALUE: *mut c_char = std::ptr::null_mut();

/// `pg_tenant.session_lock`: set by `tenant.set_token(..., lock => true)` as `<tenant id>:<iat>`.
/// A parameter (hidden from SHOW ALL) so that it rolls back with its transaction or savepoint
/// like the tenant it locks, and ends with `RESET ALL`/`DISCARD ALL` (poolers' reset) alone.
pub const LOCK_GUC: &CStr = c"pg_tenant.session_lock";
static mut LOCK_GUC_VALUE: *mut c_char = std::ptr::null_mut();

thread_local! {
    /// The parsed value, refreshed by the assign hook, so `tenant.current()` does no parsing.
    static CURRENT: std::cell::Cell<Option<[u8; 16]>> = const { std::cell::Cell::new(None) };
    /// The parsed session lock: the locked tenant and the iat of the token that locked it.
    static LOCK: std::cell::Cell<Option<([u8; 16], i64)>> = const { std::cell::Cell::new(None) };
    /// A (parameter, value) pg_tenant is about to apply; that parameter's check hook consumes it.
    static AUTHORIZED: RefCell<Option<(&'static CStr, String)>> = const { RefCell::new(None) };
}

pub fn init() {
    unsafe {
        pg_sys::DefineCustomStringVariable(
            TENANT_GUC.as_ptr(),
            c"The current tenant (read-only: change it with tenant.set(), tenant.set_local() or tenant.reset()).".as_ptr(),
            c"Empty when no tenant is set. SET, set_config() and role or database defaults are refused.".as_ptr(),
            &raw mut TENANT_GUC_VALUE,
            c"".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            (pg_sys::GUC_NOT_IN_SAMPLE | pg_sys::GUC_DISALLOW_IN_FILE | pg_sys::GUC_DISALLOW_IN_AUTO_FILE) as c_int,
            Some(check_tenant_guc),
            Some(assign_tenant_guc),
            None,
        );
        pg_sys::DefineCustomStringVariable(
            LOCK_GUC.as_ptr(),
            c"The tenant token that locked the session (set by tenant.set_token(..., lock => true)).".as_ptr(),
            c"Only tenant.set_token() changes it; RESET ALL and DISCARD ALL end the lock.".as_ptr(),
            &raw mut LOCK_GUC_VALUE,
            c"".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            (pg_sys::GUC_NOT_IN_SAMPLE | pg_sys::GUC_NO_SHOW_ALL | pg_sys::GUC_DISALLOW_IN_FILE | pg_sys::GUC_DISALLOW_IN_AUTO_FILE) as c_int,
            Some(check_lock_guc),
            Some(assign_lock_guc),
            None,
        );
        crate::tokens::init();
        // Drops any other "pg_tenant.*" placeholder and refuses new ones.
        #[cfg(not(any(feature = "pg13", feature = "pg14")))]
        pg_sys::MarkGUCPrefixReserved(c"pg_tenant".as_ptr());
    }
}

/// The current tenant, or None: the one `pg_tenant.token` names when that is set (resolved once
/// per token, see tokens.rs), else the one tenant.set()/set_local()/set_token() chose.
#[inline]
pub fn current_tenant() -> Option<pgrx::Uuid> {
    crate::tokens::parameter_tenant().or_else(set_tenant)
}

/// The tenant chosen by tenant.set()/set_local()/set_token(), or None. No SPI, no catalog access.
#[inline]
pub fn set_tenant() -> Option<pgrx::Uuid> {
    CURRENT.with(|c| c.get()).map(pgrx::Uuid::from_bytes)
}

/// The tenant and token iat the session is locked to (tenant.set_token(..., lock => true)).
#[inline]
pub fn session_lock() -> Option<(pgrx::Uuid, i64)> {
    LOCK.with(|l| l.get())
        .map(|(id, iat)| (pgrx::Uuid::from_bytes(id), iat))
}

/// Applies `value` (a canonical uuid, or "" for none) through PostgreSQL's GUC machinery, so that
/// it is undone by rollback, and for `local` at the end of the transaction.
pub fn apply(value: &str, local: bool) {
    apply_authorized(TENANT_GUC, value, local);
}

/// Locks the session to `lock` (tenant, iat), or unlocks it (None), with the scope of `local`.
pub fn apply_lock(lock: Option<(pgrx::Uuid, i64)>, local: bool) {
    let value = lock
        .map(|(id, iat)| format!("{id}:{iat}"))
        .unwrap_or_default();
    apply_authorized(LOCK_GUC, &value, local);
}

/// Sets one of pg_tenant's guarded parameters to a value pg_tenant authorized; their check hooks
/// refuse every other value.
fn apply_authorized(name: &'static CStr, value: &str, local: bool) {
    struct Revoke;
    impl Drop for Revoke {
        fn drop(&mut self) {
            AUTHORIZED.with(|a| a.borrow_mut().take());
        }
    }
    let _revoke = Revoke;
    AUTHORIZED.with(|a| *a.borrow_mut() = Some((name, value.to_string())));
    set_parameter(name, value, set_action(local));
}

/// Whether pg_tenant just authorized exactly this value for this parameter (consumed once).
fn take_authorized(name: &CStr, value: &str) -> bool {
    AUTHORIZED.with(|a| {
        let mut a = a.borrow_mut();
        let matches = matches!(a.as_ref(), Some((n, v)) if *n == name && v == value);
        if matches {
            a.take();
        }
        matches
    })
}

/// `SET LOCAL` (until the end of the transaction) when `local`, else `SET` (for the session).
pub fn set_action(local: bool) -> pg_sys::GucAction::Type {
    if local {
        pg_sys::GucAction::GUC_ACTION_LOCAL
    } else {
        pg_sys::GucAction::GUC_ACTION_SET
    }
}

/// Runs `f` with these settings, then restores them (as a function's SET clause does), however
/// `f` ends: an error caught further up (without a subtransaction) finds the caller's settings.
pub fn with_settings<R>(settings: &[(&str, String)], f: impl FnOnce() -> R) -> R {
    struct Restore(c_int);
    impl Drop for Restore {
        fn drop(&mut self) {
            unsafe { pg_sys::AtEOXact_GUC(!std::thread::panicking(), self.0) };
        }
    }
    let _restore = Restore(unsafe { pg_sys::NewGUCNestLevel() });
    for (name, value) in settings {
        let name = CString::new(*name).expect("setting name");
        set_parameter(&name, value, pg_sys::GucAction::GUC_ACTION_SAVE);
    }
    f()
}

/// Sets a parameter as a session-level `SET` (`GUC_ACTION_SET`), `SET LOCAL` (`GUC_ACTION_LOCAL`)
/// or a function's `SET` clause (`GUC_ACTION_SAVE`, undone by `AtEOXact_GUC` at its nest level)
/// would; a refused value is an ERROR.
pub fn set_parameter(name: &CStr, value: &str, action: pg_sys::GucAction::Type) {
    let value =
        CString::new(value).unwrap_or_else(|_| error!("pg_tenant: a setting value contains NUL"));
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GucSource::PGC_S_SESSION,
            action,
            true,
            pg_sys::PGERROR as c_int,
            false,
        );
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn check_tenant_guc(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    let value = if newval.is_null() || (*newval).is_null() {
        String::new()
    } else {
        CStr::from_ptr(*newval).to_string_lossy().into_owned()
    };
    // A parallel worker copying its leader's value: the leader already authorized it.
    if pg_sys::InitializingParallelWorker || take_authorized(TENANT_GUC, &value) {
        return true;
    }
    // The boot value, applied when the parameter is defined, or RESET pg_tenant.tenant_id (which
    // is tenant.reset(), and like it refused while a token locks the session).
    if source == pg_sys::GucSource::PGC_S_DEFAULT && value.is_empty() {
        if session_lock().is_none() {
            return true;
        }
        pg_sys::GUC_check_errcode(packed_sqlstate(sqlstate::CANT_CHANGE_PARAMETER));
        pg_sys::GUC_check_errmsg_string = pg_sys::pstrdup(
            c"the session is locked to its tenant token: only a newer token can change the tenant".as_ptr(),
        );
        pg_sys::GUC_check_errhint_string =
            pg_sys::pstrdup(c"RESET ALL or DISCARD ALL end the lock.".as_ptr());
        return false;
    }
    pg_sys::GUC_check_errcode(packed_sqlstate(sqlstate::CANT_CHANGE_PARAMETER));
    pg_sys::GUC_check_errmsg_string =
        pg_sys::pstrdup(c"parameter \"pg_tenant.tenant_id\" can only be changed by tenant.set(), tenant.set_local() or tenant.reset()".as_ptr());
    pg_sys::GUC_check_errhint_string = pg_sys::pstrdup(
        c"SET, set_config() and role, database or connection defaults cannot choose the tenant."
            .as_ptr(),
    );
    false
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_tenant_guc(newval: *const c_char, _extra: *mut c_void) {
    let parsed = if newval.is_null() {
        None
    } else {
        CStr::from_ptr(newval)
            .to_str()
            .ok()
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .map(|u| *u.as_bytes())
    };
    CURRENT.with(|c| c.set(parsed));
}

#[pg_guard]
unsafe extern "C-unwind" fn check_lock_guc(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    let value = if newval.is_null() || (*newval).is_null() {
        String::new()
    } else {
        CStr::from_ptr(*newval).to_string_lossy().into_owned()
    };
    if pg_sys::InitializingParallelWorker || take_authorized(LOCK_GUC, &value) {
        return true;
    }
    // The boot value; RESET of the parameter alone never unlocks a locked session.
    if source == pg_sys::GucSource::PGC_S_DEFAULT && value.is_empty() && session_lock().is_none() {
        return true;
    }
    pg_sys::GUC_check_errcode(packed_sqlstate(sqlstate::CANT_CHANGE_PARAMETER));
    pg_sys::GUC_check_errmsg_string = pg_sys::pstrdup(
        c"parameter \"pg_tenant.session_lock\" can only be changed by tenant.set_token()".as_ptr(),
    );
    pg_sys::GUC_check_errhint_string =
        pg_sys::pstrdup(c"RESET ALL or DISCARD ALL end a session lock.".as_ptr());
    false
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_lock_guc(newval: *const c_char, _extra: *mut c_void) {
    let parsed = if newval.is_null() {
        None
    } else {
        CStr::from_ptr(newval).to_str().ok().and_then(|s| {
            let (id, iat) = s.split_once(':')?;
            Some((*uuid::Uuid::parse_str(id).ok()?.as_bytes(), iat.parse::<i64>().ok()?))
        })
    };
    LOCK.with(|l| l.set(parsed));
}
