//! PostgreSQL's parameter machinery as pg_tenant uses it: setting a parameter with the rights
//! and scope of a `SET`, reading what a check or assign hook receives, and asking PostgreSQL's
//! record of a parameter whether it was changed (or `SET LOCAL`) in the current transaction.

use std::ffi::{c_char, c_int, CStr, CString};

use pgrx::pg_sys;
use pgrx::prelude::*;

/// Sets a parameter as a session-level `SET` (`GUC_ACTION_SET`), `SET LOCAL` (`GUC_ACTION_LOCAL`)
/// or a function's `SET` clause (`GUC_ACTION_SAVE`, undone by `AtEOXact_GUC` at its nest level)
/// would; a refused value is an ERROR.
pub fn set_parameter(name: &CStr, value: &str, action: pg_sys::GucAction::Type) {
    set_config_option(name, value, pg_sys::GucContext::PGC_USERSET, action, true);
}

/// PostgreSQL's set_config_option for a session-sourced value: with `change`, sets it with the
/// rights of `context` (PGC_USERSET: as any session may; PGC_SUSET: as a superuser may) and the
/// scope of `action`; without, only checks it as `SET` would. A refused value is an ERROR.
pub fn set_config_option(
    name: &CStr,
    value: &str,
    context: pg_sys::GucContext::Type,
    action: pg_sys::GucAction::Type,
    change: bool,
) {
    let value =
        CString::new(value).unwrap_or_else(|_| error!("pg_tenant: a setting value contains NUL"));
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            context,
            pg_sys::GucSource::PGC_S_SESSION,
            action,
            change,
            pg_sys::PGERROR as c_int,
            false,
        );
    }
}

/// The value a string parameter's check hook is asked about ("" for none).
///
/// # Safety
/// `newval` as PostgreSQL passes it to a check hook.
pub unsafe fn check_hook_value(newval: *mut *mut c_char) -> String {
    if newval.is_null() {
        String::new()
    } else {
        assign_hook_value(*newval)
    }
}

/// The value a string parameter's assign hook receives ("" for none).
///
/// # Safety
/// `newval` as PostgreSQL passes it to an assign hook.
pub unsafe fn assign_hook_value(newval: *const c_char) -> String {
    if newval.is_null() {
        String::new()
    } else {
        CStr::from_ptr(newval).to_string_lossy().into_owned()
    }
}

/// Whether parameter `name` was changed in the current transaction and the change is still in
/// force: PostgreSQL keeps a stack entry for each change until its transaction or savepoint
/// ends (a value committed earlier has none).
pub fn changed_in_this_transaction(name: &'static CStr) -> bool {
    let record = record_of(name);
    !record.is_null() && unsafe { !(*record).stack.is_null() }
}

/// Whether the value of parameter `name` in force was set with `SET LOCAL` in the current
/// transaction (not `SET`, nor a value applied when the library loaded, which are `SET`s).
pub fn set_locally_in_this_transaction(name: &'static CStr) -> bool {
    let record = record_of(name);
    if record.is_null() {
        return false;
    }
    let stack = unsafe { (*record).stack };
    !stack.is_null()
        && matches!(
            unsafe { (*stack).state },
            pg_sys::GucStackState::GUC_LOCAL | pg_sys::GucStackState::GUC_SET_LOCAL
        )
}

/// PostgreSQL's record of parameter `name`, looked up once per name (PostgreSQL never moves a
/// parameter's record), so a hot path does not search every parameter each time.
fn record_of(name: &'static CStr) -> *mut pg_sys::config_generic {
    thread_local! {
        static FOUND: std::cell::RefCell<Vec<(*const c_char, *mut pg_sys::config_generic)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    if let Some(record) = FOUND.with(|f| {
        f.borrow()
            .iter()
            .find(|(n, _)| *n == name.as_ptr())
            .map(|(_, r)| *r)
    }) {
        return record;
    }
    let record = find_parameter(name);
    if !record.is_null() {
        FOUND.with(|f| f.borrow_mut().push((name.as_ptr(), record)));
    }
    record
}

/// PostgreSQL's record of a parameter (null if there is none).
#[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
pub(super) fn find_parameter(name: &CStr) -> *mut pg_sys::config_generic {
    unsafe {
        let vars = pg_sys::get_guc_variables();
        let n = pg_sys::GetNumConfigOptions();
        for i in 0..n.max(0) as usize {
            let var = *vars.add(i);
            if !var.is_null() && !(*var).name.is_null() && CStr::from_ptr((*var).name) == name {
                return var;
            }
        }
        std::ptr::null_mut()
    }
}

#[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
pub(super) fn find_parameter(name: &CStr) -> *mut pg_sys::config_generic {
    unsafe { pg_sys::find_option(name.as_ptr(), false, true, pg_sys::ERROR as c_int) }
}
