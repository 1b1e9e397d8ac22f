//! Counting the rows of `count` quotas: an index access method that stores nothing.
//!
//! `attach_quota(tbl, resource, 'count')` puts an index `USING tenant_quota (tenant_column) WITH
//! (resource = '...')` on the table. PostgreSQL calls its `aminsert` once for every row version
//! written to the table (COPY's multi-insert batches included), with the tenant id already
//! extracted: a few nanoseconds per row, where an AFTER trigger with a transition table copies
//! every row (about 10% of a COPY). The rows are added up here per tenant and charged once per
//! tenant and statement (`quotas::charge_rows`) when the statement finishes: in ExecutorFinish,
//! or after COPY. Deletes and TRUNCATE stay with the statement triggers (`quotas::quota_trigger`).
//!
//! `aminsert` cannot tell a new row from the new version of an updated row, nor an
//! `INSERT ... ON CONFLICT` row that lost a race and was taken back, so the executor hooks keep a
//! stack of what each running statement can write:
//! - INSERT (without ON CONFLICT) and COPY FROM write new rows only: counted as they come;
//! - UPDATE and DELETE write no new rows (an UPDATE's index entries are new versions): ignored;
//! - MERGE, INSERT ... ON CONFLICT and writable CTEs may do both: each row's tuple header is read
//!   when the statement finishes, and only rows that are neither updated versions
//!   (HEAP_UPDATED) nor taken back (no xmin) count.
//!
//! Rows of a statement that fails are forgotten with its (sub)transaction. As with triggers,
//! nothing is counted while `session_replication_role = replica` (superusers only).

#![allow(clippy::too_many_arguments)] // PostgreSQL's callback signatures

use std::cell::RefCell;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::TenantError;

mod build;
pub use build::{is_plain_quota_index, issuing};

extension_sql_file!(
    "../sql/row_counter.sql",
    name = "row_counter",
    requires = ["quota_tables"]
);

#[no_mangle]
#[doc(hidden)]
pub extern "C" fn pg_finfo_quota_index_handler() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

/// The access method's handler: what the index can do (store, scan: nothing) and its callbacks.
#[no_mangle]
#[pg_guard]
pub unsafe extern "C-unwind" fn quota_index_handler(
    _fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    let mut am = PgBox::<pg_sys::IndexAmRoutine>::alloc_node(pg_sys::NodeTag::T_IndexAmRoutine);
    am.amoptionalkey = true;
    am.amkeytype = pg_sys::InvalidOid;
    am.ambuild = Some(build::ambuild);
    am.ambuildempty = Some(build::ambuildempty);
    am.aminsert = Some(aminsert);
    am.ambulkdelete = Some(ambulkdelete);
    am.amvacuumcleanup = Some(amvacuumcleanup);
    am.amcostestimate = Some(amcostestimate);
    am.amoptions = Some(amoptions);
    am.amvalidate = Some(amvalidate);
    am.ambeginscan = Some(ambeginscan);
    am.amrescan = Some(amrescan);
    am.amendscan = Some(amendscan);
    // No amgettuple and no amgetbitmap: the planner never considers the index for a scan.
    pg_sys::Datum::from(am.into_pg())
}

#[pg_guard]
unsafe extern "C-unwind" fn ambulkdelete(
    _info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
    _callback: pg_sys::IndexBulkDeleteCallback,
    _state: *mut std::ffi::c_void,
) -> *mut pg_sys::IndexBulkDeleteResult {
    stats_or_empty(stats)
}

#[pg_guard]
unsafe extern "C-unwind" fn amvacuumcleanup(
    _info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    stats_or_empty(stats)
}

/// VACUUM's statistics for an index with nothing in it: those given, or new zeroed ones.
unsafe fn stats_or_empty(
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    if stats.is_null() {
        PgBox::<pg_sys::IndexBulkDeleteResult>::alloc0().into_pg()
    } else {
        stats
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn amcostestimate(
    _root: *mut pg_sys::PlannerInfo,
    _path: *mut pg_sys::IndexPath,
    _loop_count: f64,
    startup: *mut pg_sys::Cost,
    total: *mut pg_sys::Cost,
    selectivity: *mut pg_sys::Selectivity,
    correlation: *mut f64,
    pages: *mut f64,
) {
    *startup = 1.0e10;
    *total = 1.0e10;
    *selectivity = 1.0;
    *correlation = 0.0;
    *pages = 0.0;
}

#[pg_guard]
unsafe extern "C-unwind" fn amvalidate(_opclass: pg_sys::Oid) -> bool {
    true
}

#[pg_guard]
unsafe extern "C-unwind" fn ambeginscan(
    _index: pg_sys::Relation,
    _nkeys: std::ffi::c_int,
    _norderbys: std::ffi::c_int,
) -> pg_sys::IndexScanDesc {
    error!("pg_tenant: a tenant_quota index cannot be scanned")
}

#[pg_guard]
unsafe extern "C-unwind" fn amrescan(
    _scan: pg_sys::IndexScanDesc,
    _keys: pg_sys::ScanKey,
    _nkeys: std::ffi::c_int,
    _orderbys: pg_sys::ScanKey,
    _norderbys: std::ffi::c_int,
) {
}

#[pg_guard]
unsafe extern "C-unwind" fn amendscan(_scan: pg_sys::IndexScanDesc) {}

/// The one option, `resource`: which quota the rows count for. Kept in the index's reloptions so
/// that pg_dump, clone_schema and REINDEX carry it. The parsed form (rd_options) is the resource
/// name as a text datum.
#[pg_guard]
unsafe extern "C-unwind" fn amoptions(
    reloptions: pg_sys::Datum,
    validate: bool,
) -> *mut pg_sys::bytea {
    if reloptions.is_null() {
        return std::ptr::null_mut();
    }
    crate::error::guarded(|| parse_options(reloptions, validate))
}

unsafe fn parse_options(reloptions: pg_sys::Datum, validate: bool) -> *mut pg_sys::bytea {
    let options: Vec<Option<String>> =
        Vec::from_polymorphic_datum(reloptions, false, pg_sys::TEXTARRAYOID).unwrap_or_default();
    let mut resource = None;
    for option in options.into_iter().flatten() {
        match option.split_once('=') {
            Some(("resource", value)) if !value.is_empty() => resource = Some(value.to_string()),
            _ if validate => TenantError::invalid(
                "reloptions",
                "a tenant_quota index takes one option, resource = '<name>'",
            )
            .raise(),
            _ => {}
        }
    }
    match resource {
        Some(r) => r.into_datum().expect("text").cast_mut_ptr(),
        None => std::ptr::null_mut(),
    }
}

/// The resource an index counts for, from its parsed options.
unsafe fn resource_of(index: pg_sys::Relation) -> String {
    let options = (*index).rd_options;
    if options.is_null() {
        error!("pg_tenant: tenant_quota index without a resource option");
    }
    String::from_datum(pg_sys::Datum::from(options), false).expect("resource")
}

/// What the statements running in this backend may write, innermost last.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Writes {
    /// INSERT or COPY FROM: every index entry is a new row.
    Rows,
    /// UPDATE or DELETE: index entries are new versions of existing rows.
    Versions,
    /// MERGE, ON CONFLICT, writable CTEs: decided per row from its tuple header.
    Either,
}

struct Frame {
    key: usize,
    writes: Writes,
    level: i32,
}

/// Rows counted for one index (resource) and tenant in one (sub)transaction.
struct Counted {
    index: pg_sys::Oid,
    tenant: [u8; 16],
    rows: i64,
    level: i32,
}

/// A row whose nature is decided when its statement finishes.
struct Undecided {
    heap: pg_sys::Oid,
    index: pg_sys::Oid,
    tid: pg_sys::ItemPointerData,
    tenant: [u8; 16],
    level: i32,
}

#[derive(Default)]
struct State {
    frames: Vec<Frame>,
    counted: Vec<Counted>,
    undecided: Vec<Undecided>,
    resources: Vec<(pg_sys::Oid, String)>,
    flushing: bool,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

impl State {
    fn writes(&self) -> Writes {
        // No frame: the statement started before this library was loaded (its first use in the
        // session), so what it writes is not known.
        self.frames
            .last()
            .map(|f| f.writes)
            .unwrap_or(Writes::Either)
    }

    fn count(&mut self, index: pg_sys::Oid, tenant: [u8; 16], rows: i64, level: i32) {
        if let Some(c) = self
            .counted
            .iter_mut()
            .rev()
            .find(|c| c.index == index && c.tenant == tenant && c.level == level)
        {
            c.rows += rows;
        } else {
            self.counted.push(Counted {
                index,
                tenant,
                rows,
                level,
            });
        }
    }

    fn forget_from(&mut self, level: i32) {
        self.frames.retain(|f| f.level < level);
        self.counted.retain(|c| c.level < level);
        self.undecided.retain(|u| u.level < level);
    }

    fn merge_into_parent(&mut self, level: i32) {
        for f in self.frames.iter_mut().filter(|f| f.level >= level) {
            f.level = level - 1;
        }
        for u in self.undecided.iter_mut().filter(|u| u.level >= level) {
            u.level = level - 1;
        }
        let children: Vec<Counted> = {
            let (children, rest) = std::mem::take(&mut self.counted)
                .into_iter()
                .partition(|c| c.level >= level);
            self.counted = rest;
            children
        };
        for c in children {
            self.count(c.index, c.tenant, c.rows, level - 1);
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn aminsert(
    index: pg_sys::Relation,
    values: *mut pg_sys::Datum,
    isnull: *mut bool,
    heap_tid: pg_sys::ItemPointer,
    heap: pg_sys::Relation,
    _check_unique: pg_sys::IndexUniqueCheck::Type,
    _index_unchanged: bool,
    _info: *mut pg_sys::IndexInfo,
) -> bool {
    if pg_sys::SessionReplicationRole == pg_sys::SESSION_REPLICATION_ROLE_REPLICA as i32 || *isnull
    {
        return false;
    }
    // The key is read as a uuid: an index whose key is of another type counts nothing.
    if (*(*(*index).rd_att).attrs.as_ptr()).atttypid != pg_sys::UUIDOID {
        error!("pg_tenant: a tenant_quota index must be built on a uuid tenant column");
    }
    let tenant = *((*values).cast_mut_ptr::<[u8; 16]>());
    let index_oid = (*index).rd_id;
    let level = nest_level();
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let writes = s.writes();
        if writes != Writes::Versions && !s.resources.iter().any(|(oid, _)| *oid == index_oid) {
            let resource = resource_of(index);
            s.resources.push((index_oid, resource));
        }
        match writes {
            Writes::Versions => {}
            Writes::Rows => s.count(index_oid, tenant, 1, level),
            Writes::Either => s.undecided.push(Undecided {
                heap: (*heap).rd_id,
                index: index_oid,
                tid: *heap_tid,
                tenant,
                level,
            }),
        }
    });
    // A long MERGE or ON CONFLICT statement: decide the rows so far now (each is complete once
    // the next row is written; the one just written may still be speculative and waits).
    if STATE.with(|s| s.borrow().undecided.len() >= UNDECIDED_BATCH) {
        decide_rows();
    }
    false
}

/// Rows kept undecided before they are decided in the middle of a statement.
const UNDECIDED_BATCH: usize = 65_536;

/// Decides the undecided rows whose tuples are complete: new rows are counted, the others
/// dropped; still-speculative ones stay.
fn decide_rows() {
    let undecided = STATE.with(|s| std::mem::take(&mut s.borrow_mut().undecided));
    let mut still_undecided = Vec::new();
    for u in undecided {
        match unsafe { is_new_row(u.heap, &u.tid) } {
            Some(true) => STATE.with(|s| s.borrow_mut().count(u.index, u.tenant, 1, u.level)),
            Some(false) => {}
            None => still_undecided.push(u),
        }
    }
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        still_undecided.append(&mut s.undecided);
        s.undecided = still_undecided;
    });
}

/// Whether the row at `tid` is a new row of this transaction that stays: not the new version of
/// an updated row and not an ON CONFLICT insertion taken back. None while still speculative.
unsafe fn is_new_row(heap: pg_sys::Oid, tid: &pg_sys::ItemPointerData) -> Option<bool> {
    let rel = pg_sys::relation_open(heap, pg_sys::NoLock as pg_sys::LOCKMODE);
    let block = ((tid.ip_blkid.bi_hi as u32) << 16) | tid.ip_blkid.bi_lo as u32;
    let buffer = pg_sys::ReadBuffer(rel, block);
    pg_sys::LockBuffer(buffer, pg_sys::BUFFER_LOCK_SHARE as i32);
    let page = pg_sys::BufferGetPage(buffer);
    let item = pg_sys::PageGetItemId(page, tid.ip_posid);
    let verdict = if (*item).lp_flags() != pg_sys::LP_NORMAL {
        Some(false)
    } else {
        let header = pg_sys::PageGetItem(page, item) as *const pg_sys::HeapTupleHeaderData;
        let xmin = pg_sys::HeapTupleHeaderGetRawXmin(header);
        if (*header).t_ctid.ip_posid as u32 == pg_sys::SpecTokenOffsetNumber {
            None
        } else {
            Some(
                xmin != pg_sys::InvalidTransactionId
                    && pg_sys::TransactionIdIsCurrentTransactionId(xmin)
                    && (*header).t_infomask as u32 & pg_sys::HEAP_UPDATED == 0,
            )
        }
    };
    pg_sys::UnlockReleaseBuffer(buffer);
    pg_sys::relation_close(rel, pg_sys::NoLock as pg_sys::LOCKMODE);
    verdict
}

/// Charges what the finished statements of the current (sub)transaction wrote: one charge per
/// resource and tenant. Rows of an enclosing subtransaction wait for their own statement, so
/// that a quota error here cannot take them along when only this subtransaction rolls back.
fn flush() {
    let level = nest_level();
    let (idle, undecided) = STATE.with(|s| {
        let s = s.borrow();
        (
            s.flushing || (s.counted.is_empty() && s.undecided.is_empty()),
            !s.undecided.is_empty(),
        )
    });
    if idle {
        return;
    }
    if undecided {
        decide_rows();
    }
    let mut charges: Vec<(String, [u8; 16], i64)> = STATE.with(|s| {
        let mut s = s.borrow_mut();
        let mine: Vec<Counted> = if s.counted.iter().all(|c| c.level >= level) {
            s.counted.drain(..).collect()
        } else {
            let (mine, outer): (Vec<Counted>, Vec<Counted>) = std::mem::take(&mut s.counted)
                .into_iter()
                .partition(|c| c.level >= level);
            s.counted = outer;
            mine
        };
        let mut charges: Vec<(String, [u8; 16], i64)> = Vec::new();
        for c in mine.into_iter().filter(|c| c.rows != 0) {
            let resource = s
                .resources
                .iter()
                .find(|(oid, _)| *oid == c.index)
                .map(|(_, r)| r.clone())
                .expect("resource of a counted index");
            match charges
                .iter_mut()
                .find(|(r, t, _)| *r == resource && *t == c.tenant)
            {
                Some(charge) => charge.2 += c.rows,
                None => charges.push((resource, c.tenant, c.rows)),
            }
        }
        charges
    });
    if charges.is_empty() {
        return;
    }
    // A fixed order, so two statements never wait on each other's counters in a cycle.
    charges.sort();
    STATE.with(|s| s.borrow_mut().flushing = true);
    for (resource, tenant, rows) in charges {
        crate::quotas::charge_rows(&resource, pgrx::Uuid::from_bytes(tenant), rows);
    }
    STATE.with(|s| s.borrow_mut().flushing = false);
}

unsafe extern "C-unwind" {
    #[link_name = "GetCurrentTransactionNestLevel"]
    fn current_nest_level() -> std::ffi::c_int;
}

/// The (sub)transaction nesting level. Called for every counted row, so directly, not through
/// pgrx's error-catching wrapper (it cannot fail).
pub fn nest_level() -> i32 {
    unsafe { current_nest_level() }
}

static mut PREV_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;
static mut PREV_EXECUTOR_FINISH: pg_sys::ExecutorFinish_hook_type = None;
static mut PREV_EXECUTOR_END: pg_sys::ExecutorEnd_hook_type = None;
static mut PREV_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

/// What a planned statement can write (see the module comment).
unsafe fn classify(stmt: *mut pg_sys::PlannedStmt) -> Option<Writes> {
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

fn push_frame(key: usize, writes: Writes) {
    let level = nest_level();
    STATE.with(|s| s.borrow_mut().frames.push(Frame { key, writes, level }));
}

fn pop_frame(key: usize) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if let Some(i) = s.frames.iter().rposition(|f| f.key == key) {
            s.frames.remove(i);
        }
    });
}

// The hooks call the next hook or PostgreSQL's own function directly, not through pgrx's
// wrappers: those turn an error into a Rust panic and back, which keeps only PostgreSQL's own
// SQLSTATEs, and every error of every statement passes through these hooks. Their own frames
// hold nothing to drop; the Rust work runs in guarded functions after the call returns.
unsafe extern "C-unwind" {
    fn standard_ExecutorStart(query: *mut pg_sys::QueryDesc, eflags: std::ffi::c_int);
    fn standard_ExecutorFinish(query: *mut pg_sys::QueryDesc);
    fn standard_ExecutorEnd(query: *mut pg_sys::QueryDesc);
    fn standard_ProcessUtility(
        stmt: *mut pg_sys::PlannedStmt,
        query_string: *const std::ffi::c_char,
        read_only_tree: bool,
        context: pg_sys::ProcessUtilityContext::Type,
        params: pg_sys::ParamListInfo,
        query_env: *mut pg_sys::QueryEnvironment,
        dest: *mut pg_sys::DestReceiver,
        qc: *mut pg_sys::QueryCompletion,
    );
}

unsafe extern "C-unwind" fn executor_start(query: *mut pg_sys::QueryDesc, eflags: std::ffi::c_int) {
    judge_parallel(query);
    match PREV_EXECUTOR_START {
        Some(prev) => prev(query, eflags),
        None => standard_ExecutorStart(query, eflags),
    }
    started(query);
}

/// In the leader of a plan with parallel workers: the tenant context is judged before the
/// workers start (see context::judge_before_workers).
#[pg_guard]
unsafe extern "C-unwind" fn judge_parallel(query: *mut pg_sys::QueryDesc) {
    let stmt = (*query).plannedstmt;
    if pg_sys::ParallelWorkerNumber < 0 && !stmt.is_null() && (*stmt).parallelModeNeeded {
        crate::context::judge_before_workers();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn started(query: *mut pg_sys::QueryDesc) {
    if let Some(writes) = classify((*query).plannedstmt) {
        push_frame(query as usize, writes);
    }
}

unsafe extern "C-unwind" fn executor_finish(query: *mut pg_sys::QueryDesc) {
    match PREV_EXECUTOR_FINISH {
        Some(prev) => prev(query),
        None => standard_ExecutorFinish(query),
    }
    flush_guarded();
}

#[pg_guard]
unsafe extern "C-unwind" fn flush_guarded() {
    crate::error::guarded(flush);
}

unsafe extern "C-unwind" fn executor_end(query: *mut pg_sys::QueryDesc) {
    ended(query as usize);
    match PREV_EXECUTOR_END {
        Some(prev) => prev(query),
        None => standard_ExecutorEnd(query),
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn ended(key: usize) {
    pop_frame(key);
}

unsafe extern "C-unwind" fn process_utility(
    stmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    let node = (*stmt).utilityStmt;
    let copy_from = !node.is_null()
        && (*node).type_ == pg_sys::NodeTag::T_CopyStmt
        && (*(node as *mut pg_sys::CopyStmt)).is_from;
    if copy_from {
        started_copy(stmt as usize);
    }
    if !node.is_null() && (*node).type_ == pg_sys::NodeTag::T_VariableSetStmt {
        let set = node as *mut pg_sys::VariableSetStmt;
        let token =
            !(*set).name.is_null() && std::ffi::CStr::from_ptr((*set).name) == c"pg_tenant.token";
        match (*set).kind {
            pg_sys::VariableSetKind::VAR_SET_VALUE if token && !(*set).is_local => {
                setting_session_token()
            }
            pg_sys::VariableSetKind::VAR_SET_CURRENT if token => setting_token_from_current(),
            pg_sys::VariableSetKind::VAR_RESET_ALL => resetting_all(),
            _ => {}
        }
    }
    if !node.is_null()
        && (*node).type_ == pg_sys::NodeTag::T_DiscardStmt
        && (*(node as *mut pg_sys::DiscardStmt)).target == pg_sys::DiscardMode::DISCARD_ALL
    {
        resetting_all();
    }
    if !node.is_null() && (*node).type_ == pg_sys::NodeTag::T_DeclareCursorStmt {
        let declare = node as *mut pg_sys::DeclareCursorStmt;
        if (*declare).options & pg_sys::CURSOR_OPT_HOLD as i32 != 0
            && !(*declare).portalname.is_null()
        {
            declaring_holdable_cursor((*declare).portalname);
        }
    }
    match PREV_PROCESS_UTILITY {
        Some(prev) => prev(
            stmt,
            query_string,
            read_only_tree,
            context,
            params,
            query_env,
            dest,
            qc,
        ),
        None => standard_ProcessUtility(
            stmt,
            query_string,
            read_only_tree,
            context,
            params,
            query_env,
            dest,
            qc,
        ),
    }
    if copy_from {
        ended(stmt as usize);
        flush_guarded();
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn setting_session_token() {
    crate::context::setting_session_token();
}

#[pg_guard]
unsafe extern "C-unwind" fn setting_token_from_current() {
    crate::context::setting_token_from_current();
}

#[pg_guard]
unsafe extern "C-unwind" fn resetting_all() {
    crate::context::resetting_all();
}

#[pg_guard]
unsafe extern "C-unwind" fn declaring_holdable_cursor(name: *const std::ffi::c_char) {
    crate::context::declaring_holdable_cursor(std::ffi::CStr::from_ptr(name));
}

#[pg_guard]
unsafe extern "C-unwind" fn started_copy(key: usize) {
    push_frame(key, Writes::Rows);
}

#[pg_guard]
unsafe extern "C-unwind" fn xact_callback(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    xact_event(event);
    crate::shared_counters::on_xact(event);
    match event {
        pg_sys::XactEvent::XACT_EVENT_COMMIT
        | pg_sys::XactEvent::XACT_EVENT_PREPARE
        | pg_sys::XactEvent::XACT_EVENT_PARALLEL_COMMIT => {
            crate::gucs::on_xact(true);
            crate::tokens::on_xact();
        }
        pg_sys::XactEvent::XACT_EVENT_ABORT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT => {
            crate::gucs::on_xact(false);
            crate::tokens::on_xact();
        }
        _ => {}
    }
}

fn xact_event(event: pg_sys::XactEvent::Type) {
    match event {
        // A safety net: statements flush when they finish, so this finds nothing to do unless a
        // row reached aminsert outside the executor and COPY (none known).
        pg_sys::XactEvent::XACT_EVENT_PRE_COMMIT | pg_sys::XactEvent::XACT_EVENT_PRE_PREPARE => {
            crate::error::guarded(flush);
            crate::context::holdable_cursors_at_commit();
        }
        pg_sys::XactEvent::XACT_EVENT_ABORT
        | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
        | pg_sys::XactEvent::XACT_EVENT_COMMIT
        | pg_sys::XactEvent::XACT_EVENT_PREPARE => {
            STATE.with(|s| {
                let mut s = s.borrow_mut();
                s.frames.clear();
                s.counted.clear();
                s.undecided.clear();
                s.flushing = false;
            });
            if event == pg_sys::XactEvent::XACT_EVENT_ABORT {
                crate::quotas::forget_resyncs();
                build::forget_issuer();
            }
            crate::context::forget_holdable_cursors();
        }
        _ => {}
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn subxact_callback(
    event: pg_sys::SubXactEvent::Type,
    _my: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    let level = nest_level();
    crate::shared_counters::on_subxact(event, level);
    match event {
        pg_sys::SubXactEvent::SUBXACT_EVENT_COMMIT_SUB => crate::gucs::on_subxact(true, level),
        pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB => crate::gucs::on_subxact(false, level),
        _ => {}
    }
    match event {
        pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB => STATE.with(|s| {
            let mut s = s.borrow_mut();
            s.forget_from(level);
            s.flushing = false;
        }),
        pg_sys::SubXactEvent::SUBXACT_EVENT_COMMIT_SUB => {
            STATE.with(|s| s.borrow_mut().merge_into_parent(level))
        }
        _ => {}
    }
}

/// The resource of an index is kept across transactions; an invalidation of the index (ALTER
/// INDEX ... SET, DROP, or of every relation) forgets it.
#[pg_guard]
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    STATE.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            s.resources
                .retain(|(oid, _)| relid != pg_sys::Oid::INVALID && *oid != relid);
        }
    });
}

/// Installs the executor and utility hooks and the transaction callbacks (from _PG_init; the
/// callbacks also end shared_counters' work, after this module's flush).
pub fn init() {
    unsafe {
        PREV_EXECUTOR_START = pg_sys::ExecutorStart_hook;
        pg_sys::ExecutorStart_hook = Some(executor_start);
        PREV_EXECUTOR_FINISH = pg_sys::ExecutorFinish_hook;
        pg_sys::ExecutorFinish_hook = Some(executor_finish);
        PREV_EXECUTOR_END = pg_sys::ExecutorEnd_hook;
        pg_sys::ExecutorEnd_hook = Some(executor_end);
        PREV_PROCESS_UTILITY = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
        pg_sys::RegisterXactCallback(Some(xact_callback), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(subxact_callback), std::ptr::null_mut());
        pg_sys::CacheRegisterRelcacheCallback(
            Some(on_relcache_invalidation),
            pg_sys::Datum::from(0),
        );
    }
}
