//! The quota trigger that meter and bytes quotas attach: per-statement transition tables,
//! charged per tenant.

use std::collections::HashMap;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::{guarded, TenantError};
use crate::registry;

use super::attach::Mode;
use super::recount::charge_counted;
use super::usage::charge;

/// Per-tenant totals of the rows in a transition table: (rows, bytes).
pub(super) unsafe fn scan_transition(
    store: *mut pg_sys::Tuplestorestate,
    desc: pg_sys::TupleDesc,
    attnum: i32,
    sign: i64,
    totals: &mut HashMap<[u8; 16], (i64, i64)>,
) {
    if store.is_null() {
        return;
    }
    let natts = (*desc).natts;
    let slot = pg_sys::MakeSingleTupleTableSlot(desc, &raw const pg_sys::TTSOpsMinimalTuple);
    pg_sys::tuplestore_rescan(store);
    while pg_sys::tuplestore_gettupleslot(store, true, false, slot) {
        pg_sys::slot_getsomeattrs_int(slot, natts);
        let idx = (attnum - 1) as usize;
        if *(*slot).tts_isnull.add(idx) {
            continue;
        }
        let datum = *(*slot).tts_values.add(idx);
        let id = *(datum.cast_mut_ptr::<[u8; 16]>());
        let minimal = slot as *mut pg_sys::MinimalTupleTableSlot;
        let len = if (*minimal).mintuple.is_null() {
            0
        } else {
            (*(*minimal).mintuple).t_len as i64 + out_of_line_bytes(slot, desc)
        };
        let entry = totals.entry(id).or_insert((0, 0));
        entry.0 += sign;
        entry.1 += sign * len;
    }
    pg_sys::ExecDropSingleTupleTableSlot(slot);
}

/// AFTER ... FOR EACH STATEMENT trigger installed by attach_quota(): one counter update per
/// tenant per statement, read straight from the statement's transition tables.
#[pg_trigger]
pub(super) fn quota_trigger<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, pgrx::AllocatedByPostgres>>, pgrx::PgTriggerError> {
    guarded(|| {
        let args = trigger.extra_args()?;
        let (resource, mode, column) = (&args[0], Mode::parse(&args[1]).expect("mode"), &args[2]);
        if trigger.event().fired_by_truncate() {
            let table = format!("{}.{}", trigger.table_schema()?, trigger.table_name()?);
            TenantError::TruncateRefused(table).raise();
        }
        // The triggers of a distributed table record its quota, counted on the coordinator
        // (distributed.rs); Citus copies them to the shards it creates or moves later and to the
        // workers' copies of the table, where they count nothing.
        if trigger.name()?.contains(super::attach::DISTRIBUTED_TRIGGER) {
            return Ok(None);
        }
        let data = trigger.trigger_data();
        let mut totals: HashMap<[u8; 16], (i64, i64)> = HashMap::new();
        unsafe {
            let rel = data.tg_relation;
            let desc = (*rel).rd_att;
            let cname = std::ffi::CString::new(column.as_str()).expect("column name");
            let attnum = pg_sys::get_attnum((*rel).rd_id, cname.as_ptr()) as i32;
            if attnum <= 0 {
                error!("pg_tenant: tenant column \"{column}\" not found");
            }
            // The column is read as a uuid below: never trust a column by its name alone (its
            // owner may have renamed it and added another of that name).
            let attr = (*desc).attrs.as_ptr().add((attnum - 1) as usize);
            if (*attr).atttypid != pg_sys::UUIDOID {
                TenantError::WrongColumnType {
                    table: format!("{}.{}", trigger.table_schema()?, trigger.table_name()?),
                    column: column.clone(),
                    found: crate::owner::type_name((*attr).atttypid),
                }
                .raise();
            }
            scan_transition(data.tg_newtable, desc, attnum, 1, &mut totals);
            if mode != Mode::Meter {
                scan_transition(data.tg_oldtable, desc, attnum, -1, &mut totals);
            }
        }
        // A fixed order of tenants, so two statements never wait on each other's counters in a cycle.
        let mut deltas: Vec<([u8; 16], i64)> = totals
            .into_iter()
            .map(|(id, (rows, bytes))| (id, if mode == Mode::Bytes { bytes } else { rows }))
            .filter(|(_, d)| *d != 0)
            .collect();
        deltas.sort();
        for (id, delta) in deltas {
            let id = pgrx::Uuid::from_bytes(id);
            let t = registry::lookup(&id.to_string())
                .unwrap_or_else(|| TenantError::UnknownTenant(id.to_string()).raise());
            if mode == Mode::Count {
                charge_counted(t.id, resource, delta);
            } else {
                charge(t.id, resource, delta, mode != Mode::Meter);
            }
        }
        Ok(None)
    })
}

/// What a row's out-of-line (TOAST) values occupy where they are stored, compressed or not: the
/// row itself holds only an 18-byte pointer to each. (Inline values, compressed or not, are in
/// the row's own length.) So a bytes quota charges a row what it stores on disk, the same for an
/// insert, a copy, an update and a delete.
pub(super) unsafe fn out_of_line_bytes(
    slot: *mut pg_sys::TupleTableSlot,
    desc: pg_sys::TupleDesc,
) -> i64 {
    let mut bytes = 0i64;
    for i in 0..(*desc).natts as usize {
        let attr = (*desc).attrs.as_ptr().add(i);
        if (*attr).attisdropped || (*attr).attlen != -1 || *(*slot).tts_isnull.add(i) {
            continue;
        }
        let value = *(*slot).tts_values.add(i);
        if pgrx::varlena::varatt_is_1b_e(value.cast_mut_ptr::<pg_sys::varlena>()) {
            bytes += pg_sys::toast_datum_size(value) as i64;
        }
    }
    bytes
}
