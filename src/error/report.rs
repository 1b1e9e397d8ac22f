//! Raising and reporting: [`guarded`] around every SQL entry point turns a raised
//! [`TenantError`] into PostgreSQL's `ereport` once Rust's destructors have run; warnings and
//! notices.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;

use super::TenantError;

thread_local! {
    static GUARD_DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The last error reported, so that an outer entry point can restore its SQLSTATE when the
    /// error came back through SPI (where pgrx keeps only PostgreSQL's own SQLSTATEs).
    static LAST_REPORTED: RefCell<Option<TenantError>> = const { RefCell::new(None) };
}

/// Whether a [`guarded`] entry point is running (TenantError::raise needs one).
pub(super) fn under_guard() -> bool {
    GUARD_DEPTH.with(|d| d.get()) > 0
}

/// Runs an SQL entry point so that a [`TenantError`] raised inside it reaches the client with
/// its own SQLSTATE. Other panics (including PostgreSQL errors caught by pgrx) pass through.
pub fn guarded<R>(f: impl FnOnce() -> R) -> R {
    GUARD_DEPTH.with(|d| d.set(d.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARD_DEPTH.with(|d| d.set(d.get() - 1));
    match result {
        Ok(value) => value,
        Err(payload) => match payload.downcast::<TenantError>() {
            Ok(err) => report(*err),
            Err(other) => {
                if let Some(CaughtError::PostgresError(e)) = other.downcast_ref::<CaughtError>() {
                    let ours = LAST_REPORTED.with(|l| l.borrow_mut().take());
                    if let Some(ours) = ours.filter(|o| o.message() == e.message()) {
                        drop(other);
                        report(ours);
                    }
                }
                resume_unwind(other)
            }
        },
    }
}

/// Runs `f` for something that must not fail a statement (statistics): a [`TenantError`] it
/// raises gives None and reaches nobody. Other panics (PostgreSQL errors) pass through.
pub fn quietly<R>(f: impl FnOnce() -> R) -> Option<R> {
    GUARD_DEPTH.with(|d| d.set(d.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    GUARD_DEPTH.with(|d| d.set(d.get() - 1));
    match result {
        Ok(value) => Some(value),
        Err(payload) => match payload.downcast::<TenantError>() {
            Ok(_) => None,
            Err(other) => resume_unwind(other),
        },
    }
}

/// What a parameter's check hook does to refuse a value: PostgreSQL then raises `message` (and
/// `hint`) with `sqlstate`. Returns false, the hook's answer.
///
/// # Safety
/// Only from a GUC check hook.
pub unsafe fn refuse_setting(sqlstate: &str, message: &str, hint: Option<&str>) -> bool {
    let text = |s: &str| std::ffi::CString::new(s.replace('\0', "")).unwrap_or_default();
    pgrx::pg_sys::GUC_check_errcode(packed_sqlstate(sqlstate));
    pgrx::pg_sys::GUC_check_errmsg_string = pgrx::pg_sys::pstrdup(text(message).as_ptr());
    if let Some(hint) = hint {
        pgrx::pg_sys::GUC_check_errhint_string = pgrx::pg_sys::pstrdup(text(hint).as_ptr());
    }
    false
}

/// Turns a five-character SQLSTATE into PostgreSQL's packed integer form (MAKE_SQLSTATE).
pub fn packed_sqlstate(code: &str) -> c_int {
    let b = code.as_bytes();
    let six = |c: u8| ((c.wrapping_sub(b'0')) & 0x3F) as c_int;
    six(b[0]) | (six(b[1]) << 6) | (six(b[2]) << 12) | (six(b[3]) << 18) | (six(b[4]) << 24)
}

unsafe extern "C-unwind" {
    fn errstart(elevel: c_int, domain: *const c_char) -> bool;
    fn errcode(sqlerrcode: c_int) -> c_int;
    fn errmsg(fmt: *const c_char, ...) -> c_int;
    fn errdetail(fmt: *const c_char, ...) -> c_int;
    fn errhint(fmt: *const c_char, ...) -> c_int;
    fn errfinish(filename: *const c_char, lineno: c_int, funcname: *const c_char);
}

/// Reports `err` at ERROR level. Every Rust value is dropped before `errfinish` jumps back into
/// PostgreSQL, so the only frames skipped are this one and pgrx's entry-point wrapper.
pub(super) fn report(err: TenantError) -> ! {
    let to_c = |s: String| CString::new(s.replace('\0', "")).unwrap_or_default();
    let code = packed_sqlstate(err.sqlstate());
    let message = to_c(err.message());
    let detail = err.detail().map(to_c);
    let hint = err.hint().map(to_c);
    LAST_REPORTED.with(|l| *l.borrow_mut() = Some(err));
    unsafe {
        if errstart(pg_sys::PGERROR as c_int, std::ptr::null()) {
            errcode(code);
            errmsg(c"%s".as_ptr(), message.as_ptr());
            if let Some(d) = &detail {
                errdetail(c"%s".as_ptr(), d.as_ptr());
            }
            if let Some(h) = &hint {
                errhint(c"%s".as_ptr(), h.as_ptr());
            }
        }
        // errmsg() and friends copied the strings into the error's own memory.
        drop(message);
        drop(detail);
        drop(hint);
        errfinish(c"pg_tenant".as_ptr(), 0, c"pg_tenant".as_ptr());
    }
    unreachable!("errfinish returned at ERROR level")
}

/// Raises a caught PostgreSQL error again with `detail` in place of its own, keeping its
/// SQLSTATE, message and hint. (An error pg_tenant raised itself reaches Rust as XX000, since
/// pgrx knows no SQLSTATE of pg_tenant's own: its own code is put back.)
pub fn reraise_with_detail(e: &pgrx::pg_sys::panic::ErrorReportWithLevel, detail: &str) -> ! {
    let ours = LAST_REPORTED
        .with(|l| l.borrow_mut().take())
        .filter(|o| o.message() == e.message());
    let sqlstate = match &ours {
        Some(o) => o.sqlstate(),
        None => unpacked_sqlstate(e.sql_error_code() as isize as c_int),
    };
    report(TenantError::Reraised {
        sqlstate,
        message: e.message().to_string(),
        detail: detail.to_string(),
        hint: e.hint().map(str::to_string),
    })
}

/// A packed SQLSTATE as its five characters (PGUNSIXBIT), kept for the session: an error's code.
fn unpacked_sqlstate(code: c_int) -> &'static str {
    let text: String = (0..5)
        .map(|i| (((code >> (6 * i)) & 0x3F) as u8 + b'0') as char)
        .collect();
    Box::leak(text.into_boxed_str())
}

/// Reports a WARNING (SQLSTATE 01000) with pg_tenant as its location, never a source file.
pub fn warn(message: &str) {
    inform(pg_sys::WARNING as c_int, "01000", message);
}

/// Writes `message` to the server log only (never to the client), located like [`warn`]: it
/// stays when the transaction rolls back.
pub fn log_server(message: &str) {
    inform(pg_sys::LOG_SERVER_ONLY as c_int, "00000", message);
}

/// Reports a NOTICE, located like [`warn`].
pub fn notice(message: &str) {
    inform(pg_sys::NOTICE as c_int, "00000", message);
}

pub(super) fn inform(level: c_int, sqlstate: &str, message: &str) {
    let message = CString::new(message.replace('\0', "")).unwrap_or_default();
    unsafe {
        if errstart(level, std::ptr::null()) {
            errcode(packed_sqlstate(sqlstate));
            errmsg(c"%s".as_ptr(), message.as_ptr());
            errfinish(c"pg_tenant".as_ptr(), 0, c"pg_tenant".as_ptr());
        }
    }
}
