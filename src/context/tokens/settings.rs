//! The settings of token verification: `pg_tenant.jwt_claim`, `jwt_audience`, `jwt_issuer` and
//! the `pg_tenant.token` parameter, defined from _PG_init.

use std::ffi::{c_char, c_int, c_void, CStr};

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::parameter::{assign_token_guc, check_token_guc, show_token_guc};
use super::verify::forget_verified;

pub(super) static mut JWT_CLAIM: *mut c_char = std::ptr::null_mut();
pub(super) static mut JWT_AUDIENCE: *mut c_char = std::ptr::null_mut();
pub(super) static mut JWT_ISSUER: *mut c_char = std::ptr::null_mut();
pub(super) static mut TOKEN: *mut c_char = std::ptr::null_mut();

pub(super) fn setting(ptr: *mut c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    let value = unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned();
    (!value.is_empty()).then_some(value)
}

/// Defines the token parameters (from _PG_init, before gucs::reserve_prefix).
pub fn init() {
    unsafe {
        // A change of what a token must say makes every token be verified again.
        let define =
            |name: &CStr, short: &CStr, boot: &CStr, var: *mut *mut c_char, flags: c_int| {
                pg_sys::DefineCustomStringVariable(
                    name.as_ptr(),
                    short.as_ptr(),
                    std::ptr::null(),
                    var,
                    boot.as_ptr(),
                    pg_sys::GucContext::PGC_SUSET,
                    flags,
                    None,
                    Some(verification_settings_changed),
                    None,
                );
            };
        define(
            c"pg_tenant.jwt_claim",
            c"The token claim that names the tenant (a slug or an id).",
            c"tenant",
            &raw mut JWT_CLAIM,
            pg_sys::GUC_NOT_IN_SAMPLE as c_int,
        );
        define(
            c"pg_tenant.jwt_audience",
            c"When set, a token's aud must contain it.",
            c"",
            &raw mut JWT_AUDIENCE,
            pg_sys::GUC_NOT_IN_SAMPLE as c_int,
        );
        define(
            c"pg_tenant.jwt_issuer",
            c"When set, a token's iss must equal it.",
            c"",
            &raw mut JWT_ISSUER,
            pg_sys::GUC_NOT_IN_SAMPLE as c_int,
        );
        pg_sys::DefineCustomStringVariable(
            c"pg_tenant.token".as_ptr(),
            c"A signed tenant token (JWT); verified when set, and then it names the session's tenant.".as_ptr(),
            c"SET [LOCAL] pg_tenant.token = '<jwt>', or in the connection's options. Empty: no token.".as_ptr(),
            &raw mut TOKEN,
            c"".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            (pg_sys::GUC_NOT_IN_SAMPLE | pg_sys::GUC_NO_SHOW_ALL) as c_int,
            Some(check_token_guc),
            Some(assign_token_guc),
            // A credential: SHOW, current_setting() and set_config()'s result never print it
            // (behind a pooler, the next client of the server session could read it otherwise).
            Some(show_token_guc),
        );
    }
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn verification_settings_changed(
    _newval: *const c_char,
    _extra: *mut c_void,
) {
    forget_verified();
}
