//! The executor and utility hooks that keep the stack of what each running statement can write
//! (see the module comment), and flush when a statement (or COPY FROM) finishes.

#![allow(clippy::too_many_arguments)] // PostgreSQL's callback signatures

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::xact::nest_level;

use super::insert::flush;
use super::{Frame, Writes, STATE};

pub(super) static mut PREV_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;
pub(super) static mut PREV_EXECUTOR_FINISH: pg_sys::ExecutorFinish_hook_type = None;
pub(super) static mut PREV_EXECUTOR_END: pg_sys::ExecutorEnd_hook_type = None;
pub(super) static mut PREV_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

/// What a planned statement can write (see the module comment).
pub(super) unsafe fn classify(stmt: *mut pg_sys::PlannedStmt) -> Option<Writes> {
    if (*stmt).hasModifyingCTE {
        return Some(Writes::Either);
    }
    match (*stmt).commandType {
        pg_sys::CmdType::CMD_INSERT => {
            let plan = (*stmt).planTree;
            if !plan.is_null() && (*plan).type_ == pg_sys::NodeTag::T_ModifyTable {
                let modify = plan as *mut pg_sys::ModifyTable;
                if (*modify).onConflictAction == pg_sys::OnConflictAction::ONCONFLICT_NONE {
                    return Some(Writes::Rows);
                }
            }
            Some(Writes::Either)
        }
        pg_sys::CmdType::CMD_UPDATE | pg_sys::CmdType::CMD_DELETE => Some(Writes::Versions),
        // A plain query writes nothing itself: no frame, so that one left open (a cursor, a
        // set-returning function) cannot hide the statement that runs it.
        pg_sys::CmdType::CMD_SELECT => None,
        _ => Some(Writes::Either),
    }
}

pub(super) fn push_frame(key: usize, writes: Writes) {
    let level = nest_level();
    let context = crate::gucs::context_fingerprint();
    STATE.with(|s| {
        s.borrow_mut().frames.push(Frame {
            key,
            writes,
            level,
            context,
        })
    });
}

/// A statement that writes rows finishes (its AFTER triggers have run): the tenant context must
/// be the one its write guard judged when it started. tenant.set() and the like refuse to run
/// meanwhile; this catches every other way (RESET, set_config(..., NULL), ...), and the error
/// takes the statement's rows with it.
pub(super) fn refuse_changed_context(key: usize) {
    let started = STATE.with(|s| {
        s.borrow()
            .frames
            .iter()
            .rev()
            .find(|f| f.key == key)
            .map(|f| f.context)
    });
    if started.is_some_and(|c| c != crate::gucs::context_fingerprint()) {
        crate::error::TenantError::ChangedWhileWriting(
            "RESET or set_config() of pg_tenant's settings",
        )
        .raise();
    }
}

pub(super) fn pop_frame(key: usize) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if let Some(i) = s.frames.iter().rposition(|f| f.key == key) {
            s.frames.remove(i);
        }
    });
}

// The next hook is called through crate::hooks (see there, on why not through pgrx's wrappers);
// the Rust work runs in guarded functions after the call returns.

pub(super) unsafe extern "C-unwind" fn executor_start(
    query: *mut pg_sys::QueryDesc,
    eflags: std::ffi::c_int,
) {
    crate::hooks::executor_start(PREV_EXECUTOR_START, query, eflags);
    started(query);
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn started(query: *mut pg_sys::QueryDesc) {
    if let Some(writes) = classify((*query).plannedstmt) {
        push_frame(query as usize, writes);
    }
}

pub(super) unsafe extern "C-unwind" fn executor_finish(query: *mut pg_sys::QueryDesc) {
    crate::hooks::executor_finish(PREV_EXECUTOR_FINISH, query);
    finished(query as usize);
    flush_guarded();
}

#[pg_guard]
unsafe extern "C-unwind" fn finished(key: usize) {
    crate::error::guarded(|| refuse_changed_context(key));
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn flush_guarded() {
    crate::error::guarded(flush);
}

pub(super) unsafe extern "C-unwind" fn executor_end(query: *mut pg_sys::QueryDesc) {
    ended(query as usize);
    crate::hooks::executor_end(PREV_EXECUTOR_END, query);
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn ended(key: usize) {
    pop_frame(key);
}

crate::hooks::utility_hook!(pub(super) fn process_utility(call) {
    let copy_from = call
        .node::<pg_sys::CopyStmt>(pg_sys::NodeTag::T_CopyStmt)
        .is_some_and(|copy| (*copy).is_from);
    let key = call.stmt as usize;
    if copy_from {
        started_copy(key);
    }
    call.run(PREV_PROCESS_UTILITY);
    if copy_from {
        finished(key);
        ended(key);
        flush_guarded();
    }
});

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn started_copy(key: usize) {
    push_frame(key, Writes::Rows);
}

/// Installs the hooks (from [`super::init`]).
pub(super) fn install() {
    unsafe {
        crate::hooks::install_hook!(PREV_EXECUTOR_START, ExecutorStart_hook, executor_start);
        crate::hooks::install_hook!(PREV_EXECUTOR_FINISH, ExecutorFinish_hook, executor_finish);
        crate::hooks::install_hook!(PREV_EXECUTOR_END, ExecutorEnd_hook, executor_end);
        crate::hooks::install_hook!(PREV_PROCESS_UTILITY, ProcessUtility_hook, process_utility);
    }
}
