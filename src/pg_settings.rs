//! PostgreSQL's own settings as pg_tenant applies them for a tenant context (issue 15, plan
//! settings): checked as `SET` would, applied as `SET`/`SET LOCAL` with the configuring
//! administrator's rights, read back as `SHOW` prints them; and the statement-timeout ceiling,
//! armed on PostgreSQL's own statement timer.

use std::ffi::{c_int, CStr, CString};

use pgrx::pg_sys;

use crate::gucs::{set_action, set_config_option};

/// PostgreSQL's timeouts (utils/timeout.h, which pgrx does not bind): STATEMENT_TIMEOUT is the
/// fourth of enum TimeoutId (PostgreSQL 13 to 17).
const STATEMENT_TIMEOUT: c_int = 3;

unsafe extern "C-unwind" {
    fn get_timeout_active(id: c_int) -> bool;
    fn get_timeout_finish_time(id: c_int) -> pg_sys::TimestampTz;
    fn enable_timeout_at(id: c_int, fin_time: pg_sys::TimestampTz);
}

/// Checks `value` for PostgreSQL parameter `name` as `SET` would (its parser, range and check
/// hook), changing nothing: PostgreSQL's own error (22023, naming the parameter) when refused.
/// Superuser-only parameters are checked as pg_tenant applies them (see [`apply_setting`]).
pub fn validate_setting(name: &str, value: &str) {
    let name = CString::new(name).expect("setting name");
    set_config_option(
        &name,
        value,
        pg_sys::GucContext::PGC_SUSET,
        pg_sys::GucAction::GUC_ACTION_SET,
        false,
    );
}

/// Applies a tenant context's setting as `SET` (or `SET LOCAL`, `local`) would, with the rights
/// of the administrator who configured it: a superuser-only one (temp_file_limit) too, which the
/// session itself still may not change.
pub fn apply_setting(name: &str, value: &str, local: bool) {
    let name = CString::new(name).expect("setting name");
    set_config_option(
        &name,
        value,
        pg_sys::GucContext::PGC_SUSET,
        set_action(local),
        true,
    );
}

/// The value of parameter `name` in force, as SHOW prints it (with its unit), which `SET` takes
/// back.
pub fn setting_value(name: &str) -> String {
    let name = CString::new(name).expect("setting name");
    unsafe {
        let value = pg_sys::GetConfigOptionByName(name.as_ptr(), std::ptr::null_mut(), false);
        if value.is_null() {
            String::new()
        } else {
            CStr::from_ptr(value).to_string_lossy().into_owned()
        }
    }
}

/// `statement_timeout` in force, in milliseconds (0: none).
pub fn statement_timeout_ms() -> i32 {
    unsafe { pg_sys::StatementTimeout }
}

/// Makes sure the statement running now is cancelled (PostgreSQL's own statement timeout, 57014)
/// once it has run `ceiling_ms` milliseconds, whatever `statement_timeout` the session set:
/// PostgreSQL arms its timer when a statement starts (and again at each extended-protocol
/// Execute) from `statement_timeout`, and disarms it when that is 0. Called as the statement is
/// analyzed, planned and run; the timer is brought forward, never pushed back.
pub fn cap_statement_timeout(ceiling_ms: i32) {
    if ceiling_ms <= 0 {
        return;
    }
    let id = STATEMENT_TIMEOUT;
    unsafe {
        // From the statement's start, not from now: a statement that caught the cancellation
        // (an exception block) must not get a fresh ceiling for what it runs next; a deadline
        // already past fires at once.
        let deadline = pg_sys::GetCurrentStatementStartTimestamp() + i64::from(ceiling_ms) * 1000;
        if get_timeout_active(id) && get_timeout_finish_time(id) <= deadline {
            return;
        }
        enable_timeout_at(id, deadline);
    }
}
