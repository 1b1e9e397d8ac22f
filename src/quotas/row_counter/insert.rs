//! aminsert: every row version written to a counted table, added up per statement, tenant and
//! resource; MERGE's, ON CONFLICT's and writable CTEs' rows decided when the statement
//! finishes; the flush that charges them.

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::xact::nest_level;

use super::handler::resource_of;
use super::{Counted, Undecided, Writes, STATE};

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn aminsert(
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
pub(super) const UNDECIDED_BATCH: usize = 65_536;

/// Decides the undecided rows whose tuples are complete: new rows are counted, the others
/// dropped; still-speculative ones stay.
pub(super) fn decide_rows() {
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
pub(super) unsafe fn is_new_row(heap: pg_sys::Oid, tid: &pg_sys::ItemPointerData) -> Option<bool> {
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
pub(super) fn flush() {
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
        crate::quotas::recount::charge_rows(&resource, pgrx::Uuid::from_bytes(tenant), rows);
    }
    STATE.with(|s| s.borrow_mut().flushing = false);
}
