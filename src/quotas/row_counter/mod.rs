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
//!
//! By phase, as pgvector's access method files: handler.rs (the handler, the callbacks that
//! store, scan and vacuum nothing, the `resource` option), build.rs (building one, and who may),
//! insert.rs (aminsert and the flush), hooks.rs (the executor hooks' statement stack), this file
//! (the backend's state, its transaction callbacks).

#![allow(clippy::too_many_arguments)] // PostgreSQL's callback signatures

use std::cell::RefCell;

use pgrx::pg_sys;
use pgrx::prelude::*;

mod build;
mod handler;
mod hooks;
mod insert;
pub use build::{is_plain_quota_index, issuing};

extension_sql_file!(
    "../../../sql/row_counter.sql",
    name = "row_counter",
    requires = ["quota_tables"]
);

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
    /// gucs::context_fingerprint() when the statement started.
    context: u64,
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

/// Whether a statement that writes rows (INSERT, UPDATE, DELETE, MERGE, COPY FROM, a writable
/// CTE) is running in this backend now: its frame is on the stack from its executor's start to
/// its end, and (sub)transaction aborts take the frames of what they abort.
pub fn writing() -> bool {
    STATE.with(|s| s.try_borrow().map(|s| !s.frames.is_empty()).unwrap_or(true))
}

/// This module's part of each transaction event (registered with crate::xact from _PG_init).
pub fn on_xact(event: pg_sys::XactEvent::Type) {
    match event {
        // A safety net: statements flush when they finish, so this finds nothing to do unless a
        // row reached aminsert outside the executor and COPY (none known).
        pg_sys::XactEvent::XACT_EVENT_PRE_COMMIT | pg_sys::XactEvent::XACT_EVENT_PRE_PREPARE => {
            crate::error::guarded(insert::flush);
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
                build::forget_issuer();
            }
        }
        _ => {}
    }
}

/// This module's part of each subtransaction event (registered with crate::xact).
pub fn on_subxact(event: pg_sys::SubXactEvent::Type, level: i32) {
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
fn on_relcache_invalidation(relid: pg_sys::Oid) {
    STATE.with(|s| {
        if let Ok(mut s) = s.try_borrow_mut() {
            s.resources
                .retain(|(oid, _)| relid != pg_sys::Oid::INVALID && *oid != relid);
        }
    });
}

/// Installs the executor and utility hooks and the relcache callback (from _PG_init, which also
/// registers [`on_xact`] and [`on_subxact`] with crate::xact).
pub fn init() {
    hooks::install();
    crate::xact::on_relcache(on_relcache_invalidation);
}
