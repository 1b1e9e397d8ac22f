//! Counting: the executor, planner and utility hooks of the statistics.
//!
//! A statement is counted when a tenant is current as it starts and it is one the client sent:
//! an optimizable statement that starts outside any other statement's run, plan or utility
//! command (a depth raised around ExecutorRun, ExecutorFinish, the planner and ProcessUtility,
//! as pg_stat_statements keeps it) and whose text is the active portal's own (a
//! function's, a trigger's or pg_tenant's own SQL has its own text); a utility command when
//! PostgreSQL says it is top level and no other is under way. An error skips the lowering of the
//! depth: a subtransaction's abort puts back the depth it started at, a transaction's abort sets
//! it to 0 and forgets the statements under way.
//!
//! Per counted statement: the current tenant (gucs::current_tenant(), as every statement on a
//! protected table reads it), two clock reads, and one spinlock of the tenant's entry. The entry
//! is looked up again only when the tenant changes. Nothing is allocated.

use std::cell::{Cell, RefCell};

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::shmem::{self, Found, Handle, Kind};

static mut PREV_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;
static mut PREV_EXECUTOR_RUN: pg_sys::ExecutorRun_hook_type = None;
static mut PREV_EXECUTOR_FINISH: pg_sys::ExecutorFinish_hook_type = None;
static mut PREV_PLANNER: pg_sys::planner_hook_type = None;
static mut PREV_EXECUTOR_END: pg_sys::ExecutorEnd_hook_type = None;
static mut PREV_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

unsafe extern "C-unwind" {
    // Called directly, not through pgrx's error-catching wrapper: it cannot fail.
    #[link_name = "GetCurrentTimestamp"]
    fn now() -> pg_sys::TimestampTz;
}

/// A counted statement under way.
struct Running {
    /// The QueryDesc (executor) or PlannedStmt (utility) address.
    key: usize,
    tenant: [u8; 16],
    handle: Handle,
    start: pg_sys::TimestampTz,
    /// The subtransaction level it started in (its abort forgets it).
    level: i32,
}

/// The tenant whose entry this backend found last.
#[derive(Clone, Copy)]
enum Cached {
    None,
    Entry([u8; 16], Handle),
    /// No room for this tenant; the table's number of frees then.
    Full([u8; 16], u64),
}

thread_local! {
    /// Runs, finishes, plans and top-level utility commands under way.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The depth at the start of each open subtransaction.
    static SUB_DEPTHS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    static RUNNING: RefCell<Vec<Running>> = const { RefCell::new(Vec::new()) };
    static CACHED: Cell<Cached> = const { Cell::new(Cached::None) };
    /// The transaction (gucs::transaction_generation), tenant and entry of the last statement
    /// counted (see current_handle).
    static LAST_COUNTED: Cell<Option<(u64, [u8; 16], Handle)>> = const { Cell::new(None) };
    /// The server log said once that a tenant found no room.
    static TOLD_FULL: Cell<bool> = const { Cell::new(false) };
}

fn enter() {
    DEPTH.with(|d| d.set(d.get() + 1));
}

fn leave() {
    DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
}

/// Outside any statement's run, plan or utility command, counting on, with statistics in shared memory (a
/// parallel worker has no portal: its part belongs to its leader's statement).
fn counting() -> bool {
    DEPTH.with(|d| d.get()) == 0 && crate::gucs::stats_on() && shmem::available().is_ok()
}

/// The current tenant and the handle of its entry, when a tenant is current and has one.
fn current_handle() -> Option<([u8; 16], Handle)> {
    let generation = crate::gucs::transaction_generation();
    // The ROLLBACK (or COMMIT, ROLLBACK TO) of a failed transaction or savepoint runs where no
    // context may be judged (gucs::current_tenant): it counts for the tenant of the
    // transaction's last counted statement.
    if !unsafe { pg_sys::IsTransactionState() } {
        return LAST_COUNTED
            .with(|l| l.get())
            .filter(|(g, ..)| *g == generation)
            .map(|(_, t, h)| (t, h));
    }
    // A context that no longer holds (an expired token, say) counts for nobody; the statement
    // itself meets the error where the tenant matters.
    let found = current_entry();
    LAST_COUNTED.with(|l| l.set(found.map(|(t, h)| (generation, t, h))));
    found
}

fn current_entry() -> Option<([u8; 16], Handle)> {
    let tenant = *crate::error::quietly(crate::gucs::current_tenant)??.as_bytes();
    match CACHED.with(|c| c.get()) {
        Cached::Entry(t, h) if t == tenant => return Some((tenant, h)),
        Cached::Full(t, frees) if t == tenant && !shmem::freed_since(frees) => return None,
        _ => {}
    }
    Some((tenant, lookup(tenant)?))
}

fn lookup(tenant: [u8; 16]) -> Option<Handle> {
    match shmem::entry(&tenant) {
        Found::Entry(h) => {
            CACHED.with(|c| c.set(Cached::Entry(tenant, h)));
            Some(h)
        }
        Found::Full(frees) => {
            CACHED.with(|c| c.set(Cached::Full(tenant, frees)));
            if !TOLD_FULL.with(|t| t.replace(true)) {
                crate::error::log_server(&format!(
                    "pg_tenant: per-tenant statistics are full (pg_tenant.stats_max_tenants = {}): tenant {} is not counted until tenant.stats_reset() frees room",
                    crate::gucs::stats_max_tenants(),
                    pgrx::Uuid::from_bytes(tenant)
                ));
            }
            None
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn starting(key: usize) -> pg_sys::TimestampTz {
    if !counting() {
        return 0;
    }
    let Some((tenant, handle)) = current_handle() else {
        return 0;
    };
    let start = now();
    let level = crate::xact::nest_level();
    RUNNING.with(|r| {
        r.borrow_mut().push(Running {
            key,
            tenant,
            handle,
            start,
            level,
        })
    });
    start
}

#[pg_guard]
unsafe extern "C-unwind" fn ending(key: usize, kind: Kind, rows: u64) {
    let found = RUNNING.with(|r| {
        let mut r = r.borrow_mut();
        let i = r.iter().rposition(|x| x.key == key)?;
        Some(r.swap_remove(i))
    });
    let Some(run) = found else {
        return;
    };
    let end = now();
    let micros = (end - run.start).max(0) as u64;
    if !shmem::add(run.handle, kind, rows, micros, end) {
        // Freed by tenant.stats_reset() meanwhile: counted in the tenant's new entry.
        if let Some(h) = lookup(run.tenant) {
            shmem::add(h, kind, rows, micros, end);
        }
    }
}

unsafe extern "C-unwind" fn executor_start(query: *mut pg_sys::QueryDesc, eflags: std::ffi::c_int) {
    let portal = pg_sys::ActivePortal;
    if !portal.is_null() && (*query).sourceText == (*portal).sourceText {
        starting(query as usize);
    }
    crate::hooks::executor_start(PREV_EXECUTOR_START, query, eflags);
}

crate::hooks::executor_run_hook!(fn executor_run(query, PREV_EXECUTOR_RUN) {
    enter();
} {
    leave();
});

unsafe extern "C-unwind" fn executor_finish(query: *mut pg_sys::QueryDesc) {
    enter();
    crate::hooks::executor_finish(PREV_EXECUTOR_FINISH, query);
    leave();
}

crate::hooks::planner_hook!(fn planner(call) {
    enter();
    let planned = call.run(PREV_PLANNER);
    leave();
    planned
});

unsafe extern "C-unwind" fn executor_end(query: *mut pg_sys::QueryDesc) {
    if RUNNING.with(|r| !r.borrow().is_empty()) {
        let kind = match (*query).operation {
            pg_sys::CmdType::CMD_SELECT => Kind::Select,
            pg_sys::CmdType::CMD_INSERT => Kind::Insert,
            pg_sys::CmdType::CMD_UPDATE => Kind::Update,
            pg_sys::CmdType::CMD_DELETE => Kind::Delete,
            _ => Kind::Other,
        };
        let estate = (*query).estate;
        let rows = if estate.is_null() {
            0
        } else {
            (*estate).es_processed
        };
        ending(query as usize, kind, rows);
    }
    crate::hooks::executor_end(PREV_EXECUTOR_END, query);
}

crate::hooks::utility_hook!(fn process_utility(call) {
    let top = call.context == pg_sys::ProcessUtilityContext::PROCESS_UTILITY_TOPLEVEL;
    let counted = top && starting(call.stmt as usize) != 0;
    enter();
    call.run(PREV_PROCESS_UTILITY);
    leave();
    if counted {
        ending(call.stmt as usize, Kind::Other, 0);
    }
});

/// Transaction end: an abort skipped the lowering of the depth and the end of the statements
/// it interrupted.
pub(super) fn on_xact(event: pg_sys::XactEvent::Type) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_ABORT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT => {
            DEPTH.with(|d| d.set(0));
            SUB_DEPTHS.with(|s| s.borrow_mut().clear());
            RUNNING.with(|r| r.borrow_mut().clear());
        }
        pg_sys::XactEvent::XACT_EVENT_COMMIT | pg_sys::XactEvent::XACT_EVENT_PREPARE => {
            SUB_DEPTHS.with(|s| s.borrow_mut().clear());
        }
        _ => {}
    }
}

/// Subtransaction events at nesting `level`.
pub(super) fn on_subxact(event: pg_sys::SubXactEvent::Type, level: i32) {
    match event {
        pg_sys::SubXactEvent::SUBXACT_EVENT_START_SUB => {
            let depth = DEPTH.with(|d| d.get());
            SUB_DEPTHS.with(|s| s.borrow_mut().push(depth));
        }
        pg_sys::SubXactEvent::SUBXACT_EVENT_COMMIT_SUB => {
            SUB_DEPTHS.with(|s| s.borrow_mut().pop());
        }
        pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB => {
            if let Some(depth) = SUB_DEPTHS.with(|s| s.borrow_mut().pop()) {
                DEPTH.with(|d| d.set(depth));
            }
            RUNNING.with(|r| r.borrow_mut().retain(|x| x.level < level));
        }
        _ => {}
    }
}

/// Installs the hooks (from [`super::init`], when preloading: without shared memory nothing is
/// counted, and a library loaded later installs nothing).
pub(super) fn install() {
    RUNNING.with(|r| r.borrow_mut().reserve(8));
    SUB_DEPTHS.with(|s| s.borrow_mut().reserve(8));
    unsafe {
        crate::hooks::install_hook!(PREV_EXECUTOR_START, ExecutorStart_hook, executor_start);
        crate::hooks::install_hook!(PREV_EXECUTOR_RUN, ExecutorRun_hook, executor_run);
        crate::hooks::install_hook!(PREV_EXECUTOR_FINISH, ExecutorFinish_hook, executor_finish);
        crate::hooks::install_hook!(PREV_PLANNER, planner_hook, planner);
        crate::hooks::install_hook!(PREV_EXECUTOR_END, ExecutorEnd_hook, executor_end);
        crate::hooks::install_hook!(PREV_PROCESS_UTILITY, ProcessUtility_hook, process_utility);
    }
}
