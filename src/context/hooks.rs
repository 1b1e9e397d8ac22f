//! The tenant context's executor and utility hooks: a parallel plan's leader judges the context
//! before its workers start; each statement is analyzed, planned and run under the tenant's
//! statement_timeout ceiling; `SET pg_tenant.token`, `RESET ALL`, `DISCARD ALL` and
//! `DECLARE ... WITH HOLD` are seen before they run. Installed from _PG_init after
//! quotas::row_counter's, so they run first; the statements they act on are disjoint from
//! those.

use pgrx::pg_sys;
use pgrx::prelude::*;

static mut PREV_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;
static mut PREV_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;
static mut PREV_EXECUTOR_RUN: pg_sys::ExecutorRun_hook_type = None;
static mut PREV_PLANNER: pg_sys::planner_hook_type = None;
static mut PREV_POST_PARSE_ANALYZE: pg_sys::post_parse_analyze_hook_type = None;

// The next hook is called through crate::hooks (see there); the Rust work runs in guarded functions.

unsafe extern "C-unwind" fn executor_start(query: *mut pg_sys::QueryDesc, eflags: std::ffi::c_int) {
    // (A cached plan reaches no parse or planner hook: a sessions slot lost to
    // pg_advisory_unlock_all() is noticed here too.)
    crate::quotas::sessions::notice_if_lost();
    judge_parallel(query);
    exempt_statement_executes((*query).plannedstmt);
    crate::hooks::executor_start(PREV_EXECUTOR_START, query, eflags);
}

crate::hooks::executor_run_hook!(fn executor_run(query, PREV_EXECUTOR_RUN) {
    cap_statement();
} {});

/// The tenant's statement_timeout ceiling, armed as the statement is analyzed, planned and run:
/// PostgreSQL arms (or, with statement_timeout 0, disarms) its own timer when a statement starts
/// and again at each extended-protocol message (Bind plans, Execute runs), before these hooks;
/// code the planner runs (an IMMUTABLE function folded to a constant) counts too. First, the
/// context follows parameters changed by routes no hook sees (`set_config()`, connection
/// options, a placeholder applied when the library loaded; see [`super::follow_parameters`]).
#[pg_guard]
unsafe extern "C-unwind" fn cap_statement() {
    crate::error::guarded(|| {
        super::follow_parameters();
        super::settings::cap_statement();
    });
}

crate::hooks::post_parse_analyze_hook!(fn post_parse_analyze(PREV_POST_PARSE_ANALYZE, _query) {
    cap_statement();
});

crate::hooks::planner_hook!(fn planner(call) {
    cap_statement();
    call.run(PREV_PLANNER)
});

/// A statement pg_tenant rewrote with FORCE ROW LEVEL SECURITY set aside is planned: the
/// exemption is over before it runs (crate::exemption::statement_executes).
#[pg_guard]
unsafe extern "C-unwind" fn exempt_statement_executes(stmt: *mut pg_sys::PlannedStmt) {
    crate::error::guarded(|| unsafe { crate::exemption::statement_executes(stmt) });
}

/// In the leader of a plan with parallel workers: the tenant context is judged before the
/// workers start (see [`super::judge_before_workers`]).
#[pg_guard]
unsafe extern "C-unwind" fn judge_parallel(query: *mut pg_sys::QueryDesc) {
    let stmt = (*query).plannedstmt;
    if pg_sys::ParallelWorkerNumber < 0 && !stmt.is_null() && (*stmt).parallelModeNeeded {
        super::judge_before_workers();
    }
}

crate::hooks::utility_hook!(fn process_utility(call) {
    // Before the handlers below change the context (RESET ALL, DISCARD ALL, RESET of the
    // tenant), so that what it follows is the context as earlier statements left it.
    follow_parameters();
    // SET [LOCAL] or RESET of pg_tenant.token: Some(local), for the tenant's settings afterwards.
    let mut token_change = None;
    let mut reset_all = false;
    if let Some(set) = call.node::<pg_sys::VariableSetStmt>(pg_sys::NodeTag::T_VariableSetStmt) {
        let named = |name: &std::ffi::CStr| {
            !(*set).name.is_null() && std::ffi::CStr::from_ptr((*set).name) == name
        };
        let token = named(c"pg_tenant.token");
        if token
            && matches!(
                (*set).kind,
                pg_sys::VariableSetKind::VAR_SET_VALUE
                    | pg_sys::VariableSetKind::VAR_SET_DEFAULT
                    | pg_sys::VariableSetKind::VAR_RESET
            )
        {
            token_change = Some((*set).is_local);
        }
        match (*set).kind {
            pg_sys::VariableSetKind::VAR_SET_VALUE if token && !(*set).is_local => {
                setting_session_token()
            }
            pg_sys::VariableSetKind::VAR_SET_CURRENT if token => setting_token_from_current(),
            pg_sys::VariableSetKind::VAR_RESET_ALL => {
                resetting_all();
                reset_all = true;
            }
            pg_sys::VariableSetKind::VAR_RESET | pg_sys::VariableSetKind::VAR_SET_DEFAULT
                if named(c"pg_tenant.tenant_id") =>
            {
                resetting_tenant()
            }
            _ => {}
        }
    }
    if let Some(discard) = call.node::<pg_sys::DiscardStmt>(pg_sys::NodeTag::T_DiscardStmt) {
        if (*discard).target == pg_sys::DiscardMode::DISCARD_ALL {
            resetting_all();
            reset_all = true;
        }
    }
    if let Some(declare) =
        call.node::<pg_sys::DeclareCursorStmt>(pg_sys::NodeTag::T_DeclareCursorStmt)
    {
        if (*declare).options & pg_sys::CURSOR_OPT_HOLD as i32 != 0
            && !(*declare).portalname.is_null()
        {
            declaring_holdable_cursor((*declare).portalname);
        }
    }
    exempt_statement_executes(call.stmt);
    cap_statement();
    call.run(PREV_PROCESS_UTILITY);
    if let Some(local) = token_change {
        token_changed(local);
    }
    if reset_all {
        super::reset_all_done();
    }
});

#[pg_guard]
unsafe extern "C-unwind" fn follow_parameters() {
    crate::error::guarded(super::follow_parameters);
}

#[pg_guard]
unsafe extern "C-unwind" fn token_changed(local: bool) {
    crate::error::guarded(|| super::settings::token_changed(local));
}

#[pg_guard]
unsafe extern "C-unwind" fn resetting_tenant() {
    crate::error::guarded(|| super::reset_context("RESET pg_tenant.tenant_id"));
}

#[pg_guard]
unsafe extern "C-unwind" fn setting_session_token() {
    super::setting_session_token();
}

#[pg_guard]
unsafe extern "C-unwind" fn setting_token_from_current() {
    super::setting_token_from_current();
}

#[pg_guard]
unsafe extern "C-unwind" fn resetting_all() {
    super::resetting_all();
}

#[pg_guard]
unsafe extern "C-unwind" fn declaring_holdable_cursor(name: *const std::ffi::c_char) {
    super::declaring_holdable_cursor(std::ffi::CStr::from_ptr(name));
}

/// Installs the hooks (from _PG_init).
pub fn init() {
    unsafe {
        crate::hooks::install_hook!(PREV_EXECUTOR_START, ExecutorStart_hook, executor_start);
        crate::hooks::install_hook!(PREV_PROCESS_UTILITY, ProcessUtility_hook, process_utility);
        crate::hooks::install_hook!(PREV_EXECUTOR_RUN, ExecutorRun_hook, executor_run);
        crate::hooks::install_hook!(PREV_PLANNER, planner_hook, planner);
        crate::hooks::install_hook!(
            PREV_POST_PARSE_ANALYZE,
            post_parse_analyze_hook,
            post_parse_analyze
        );
    }
}
