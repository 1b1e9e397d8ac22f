//! Runs pg_tenant's own catalog work with the extension owner's rights.
//!
//! The registry tables are readable only by the extension owner, yet `tenant.set()` and the
//! write guard run as the caller. They switch to the owner for their lookups the way PostgreSQL's
//! own code does (SetUserIdAndSecContext), and switch back however the closure ends.

use std::cell::Cell;

use pgrx::pg_sys;
use pgrx::prelude::*;

thread_local! {
    static OWNER: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
}

/// The role that owns the pg_tenant extension (cached: an extension's owner never changes).
pub fn extension_owner() -> pg_sys::Oid {
    if let Some(owner) = OWNER.with(|o| o.get()) {
        return owner;
    }
    let owner = Spi::get_one::<pg_sys::Oid>(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_tenant'",
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| error!("pg_tenant: the extension is not installed in this database"));
    OWNER.with(|o| o.set(Some(owner)));
    owner
}

/// The role whose privileges apply now (current_user).
pub fn current_role() -> pg_sys::Oid {
    unsafe { pg_sys::GetUserId() }
}

pub fn role_name(role: pg_sys::Oid) -> String {
    unsafe {
        let name = pg_sys::GetUserNameFromId(role, true);
        if name.is_null() {
            format!("{}", role.to_u32())
        } else {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        }
    }
}

/// Whether `role` has the privileges of `other` (as pg_has_role(..., 'USAGE')).
pub fn has_privileges_of(role: pg_sys::Oid, other: pg_sys::Oid) -> bool {
    unsafe { pg_sys::has_privs_of_role(role, other) }
}

pub fn is_superuser(role: pg_sys::Oid) -> bool {
    unsafe { pg_sys::superuser_arg(role) }
}

pub fn bypasses_rls(role: pg_sys::Oid) -> bool {
    unsafe { pg_sys::has_bypassrls_privilege(role) }
}

/// Runs one statement as the extension owner; an SPI failure becomes an ERROR.
pub fn run_as_owner(query: &str, args: &[pgrx::datum::DatumWithOid]) {
    as_extension_owner(|| run_with_args(query, args))
}

/// Runs one statement as the current role; an SPI failure becomes an ERROR.
pub fn run_with_args(query: &str, args: &[pgrx::datum::DatumWithOid]) {
    Spi::run_with_args(query, args).unwrap_or_else(|e| error!("pg_tenant: {e}"));
}

/// Runs `f` as the extension owner, then restores the caller's identity.
pub fn as_extension_owner<R>(f: impl FnOnce() -> R) -> R {
    as_role(extension_owner(), f)
}

/// Runs `f` with `role`'s privileges, then restores the caller's identity however `f` ends.
pub fn as_role<R>(role: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    let mut saved_user = pg_sys::Oid::INVALID;
    let mut saved_context: i32 = 0;
    unsafe { pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context) };

    struct Restore(pg_sys::Oid, i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) };
        }
    }
    let _restore = Restore(saved_user, saved_context);
    unsafe {
        pg_sys::SetUserIdAndSecContext(
            role,
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        )
    };
    f()
}
