//! Count quotas' usage as rows: charging the rows a statement added, counting a tenant's rows
//! again (recount_tenant, after a crash with shared counters), through a raw SPI layer that
//! reads with the latest snapshot, and the marker that tells a later session to recount.

use std::collections::BTreeMap;

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::quote_identifier;

use crate::error::{guarded, required, TenantError};
use crate::exemption::unfiltered;
use crate::owner::{as_extension_owner, as_table_owner, relation_name, run_as_owner};
use crate::registry;
use crate::types::Quota;

use super::attach::{count_resources, lock_counted_tables, set_counter_to_rows, zero_counter_rows};
use super::shared_counters::{self, Charged};
use super::usage::{charge, current_usage, exceeded, quota_for};

/// For tenant.import(), which loads rows without firing triggers or counting them: its count
/// quotas' usage becomes the rows it loaded (on Citus distributed tables too).
#[pg_extern(
    sql = r#"
CREATE FUNCTION tenant.recount_tenant(tenant_id uuid) RETURNS void
VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
REVOKE EXECUTE ON FUNCTION tenant.recount_tenant(uuid) FROM PUBLIC;
"#,
    requires = ["quota_attachments_view", "row_counter"]
)]
fn recount_tenant(tenant_id: Option<pgrx::Uuid>) {
    guarded(|| {
        let tenant = required(tenant_id, "tenant_id");
        let resources = count_resources();
        for resource in resources {
            if super::distributed::on_distributed_table(&resource) {
                // Kept on its counter row, counted here from the workers' rows.
                super::distributed::set_counter_to_rows(tenant, &resource);
                continue;
            }
            // No reservation of the tenant may be under way when its slots count again.
            lock_counted_tables(&resource);
            set_counter_to_rows(tenant, &resource, false);
        }
        shared_counters::invalidate_tenant_at_commit(tenant);
    })
}

/// Charges `rows` new rows of a count quota to a tenant (row_counter/insert.rs calls this once per
/// resource and tenant when a statement finishes).
pub fn charge_rows(resource: &str, tenant: pgrx::Uuid, rows: i64) {
    // Rows of the current tenant (nearly always, and the only ones RLS lets a role subject to it
    // write) need no registry lookup: tenant.set() checked that it exists.
    if crate::gucs::current_tenant() != Some(tenant)
        && registry::lookup(&tenant.to_string()).is_none()
    {
        TenantError::UnknownTenant(tenant.to_string()).raise();
    }
    charge_counted(tenant, resource, rows);
}

/// Charges `delta` rows (deleted ones: negative) to a count quota: in shared memory when the
/// library is preloaded (shared_counters.rs), else on the counters table.
pub(super) fn charge_counted(t: pgrx::Uuid, resource: &str, delta: i64) {
    if super::distributed::on_distributed_table(resource) {
        // Kept on its counter row (distributed.rs), which nothing counts again.
        charge(t, resource, delta, true);
        return;
    }
    if shared_counters::enabled() {
        let limit = crate::registry::cache::quota_limit(t, resource, || Quota::load(t, resource));
        let hopeless = delta > 0 && (limit == 0 || (limit > 0 && delta > limit));
        let refused = if hopeless {
            Some(counted_used(t, resource))
        } else {
            match shared_counters::charge(t, resource, delta, limit) {
                Some(Charged::Done) => return,
                Some(Charged::Refused(used)) => Some(used),
                None => {
                    resync_key(t, resource);
                    None
                }
            }
        };
        if let Some(used) = refused {
            exceeded(resource, &quota_for(t, resource), used, delta, i64::MAX).raise();
        }
    } else {
        resync_if_marked();
    }
    charge(t, resource, delta, true);
}

/// The usage of a count quota: its slot in shared memory, or its counter row.
pub(super) fn counted_used(t: pgrx::Uuid, resource: &str) -> i64 {
    // A read-only transaction (a report, a hot standby) cannot count a counter row again: it
    // reads the row as it is.
    let writable = unsafe { !pg_sys::XactReadOnly };
    if super::distributed::on_distributed_table(resource) {
        // Kept on its counter row (distributed.rs), which nothing counts again.
        return current_usage(t, resource, i64::MIN);
    }
    if shared_counters::enabled() {
        if let Some(used) = shared_counters::used(t, resource) {
            return used;
        }
        if writable {
            resync_key(t, resource);
        }
    } else if writable {
        resync_if_marked();
    }
    current_usage(t, resource, i64::MIN)
}

/// The tables a count quota counts and their tenant columns, from the tenant_quota indexes
/// attach_quota made: a partitioned table once, through its root (its partitions' indexes are
/// children of the root's); a table with inheritance children by itself (`ONLY`), each child by
/// itself. Third column: whether to read it with `ONLY`.
pub(super) const COUNTED_TABLES: &str = "SELECT i.indrelid::pg_catalog.regclass::pg_catalog.text, a.attname::pg_catalog.text,
            (t.relkind OPERATOR(pg_catalog.<>) 'p')::pg_catalog.text, i.indrelid::pg_catalog.text
       FROM pg_catalog.pg_index i
       JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
       JOIN pg_catalog.pg_class t ON t.oid OPERATOR(pg_catalog.=) i.indrelid
       JOIN pg_catalog.pg_am am ON am.oid OPERATOR(pg_catalog.=) c.relam
       JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0]
      WHERE am.amname OPERATOR(pg_catalog.=) 'tenant_quota'
        AND c.reloptions OPERATOR(pg_catalog.@>) ARRAY['resource=' OPERATOR(pg_catalog.||) $1]
        AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits h WHERE h.inhrelid OPERATOR(pg_catalog.=) i.indexrelid)
      ORDER BY 1";

/// The tables of a count quota, in this statement's snapshot (see COUNTED_TABLES).
pub(super) fn counted_tables(resource: &str) -> Vec<CountedTable> {
    Spi::connect(|client| {
        let rows = client.select(COUNTED_TABLES, None, &[resource.into()])?;
        let mut out = Vec::new();
        for row in rows {
            out.push(CountedTable::from_text([
                row.get::<String>(1)?.unwrap_or_default(),
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<String>(3)?.unwrap_or_default(),
                row.get::<String>(4)?.unwrap_or_default(),
            ]));
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
}

/// Runs `f` with the latest snapshot active and SPI connected, as the extension owner (so no row
/// is hidden from it): every committed row and no row of other work under way (whose own
/// charges account for it), and the attachments as committed now (also under REPEATABLE READ).
/// With `hide_own`, this transaction's changes are left out too (command id 0), for a count its
/// pending charge will be added to.
pub(super) fn in_latest_snapshot<R>(hide_own: bool, f: impl FnOnce() -> R) -> R {
    as_extension_owner(|| unsafe {
        pg_sys::PushCopiedSnapshot(pg_sys::GetLatestSnapshot());
        if hide_own {
            (*pg_sys::GetActiveSnapshot()).curcid = 0;
        }
        pg_sys::SPI_connect();
        let result = f();
        pg_sys::SPI_finish();
        pg_sys::PopActiveSnapshot();
        result
    })
}

/// A read-only query through SPI with the active snapshot (inside in_latest_snapshot): every
/// row's columns as text.
pub(super) fn latest_select(sql: &str, args: &[(pg_sys::Oid, pg_sys::Datum)]) -> Vec<Vec<String>> {
    unsafe {
        let query = std::ffi::CString::new(sql).expect("query");
        let mut types: Vec<pg_sys::Oid> = args.iter().map(|a| a.0).collect();
        let mut values: Vec<pg_sys::Datum> = args.iter().map(|a| a.1).collect();
        let nulls = vec![b' ' as std::ffi::c_char; args.len()];
        let status = pg_sys::SPI_execute_with_args(
            query.as_ptr(),
            args.len() as i32,
            types.as_mut_ptr(),
            values.as_mut_ptr(),
            nulls.as_ptr(),
            true,
            0,
        );
        if status != pg_sys::SPI_OK_SELECT as i32 {
            error!("pg_tenant: counting rows failed ({status})");
        }
        let table = pg_sys::SPI_tuptable;
        let columns = (*(*table).tupdesc).natts;
        let mut out = Vec::new();
        for i in 0..pg_sys::SPI_processed as usize {
            let tuple = *(*table).vals.add(i);
            let mut row = Vec::new();
            for c in 1..=columns {
                let v = pg_sys::SPI_getvalue(tuple, (*table).tupdesc, c);
                row.push(if v.is_null() {
                    String::new()
                } else {
                    std::ffi::CStr::from_ptr(v).to_string_lossy().into_owned()
                });
            }
            out.push(row);
        }
        out
    }
}

pub(super) fn text_datum(s: &str) -> (pg_sys::Oid, pg_sys::Datum) {
    (pg_sys::TEXTOID, s.into_datum().expect("text"))
}

/// A table a count quota counts (a row of COUNTED_TABLES).
pub(super) struct CountedTable {
    pub(super) oid: pg_sys::Oid,
    /// As regclass prints it.
    pub(super) name: String,
    /// The tenant column.
    pub(super) column: String,
    /// Read with `ONLY` (it has inheritance children that count by themselves).
    pub(super) only: bool,
}

impl CountedTable {
    /// From COUNTED_TABLES' columns, as text.
    fn from_text([name, column, only, oid]: [String; 4]) -> CountedTable {
        CountedTable {
            oid: pg_sys::Oid::from(oid.parse::<u32>().unwrap_or(0)),
            name,
            column,
            only: only == "true",
        }
    }
}

/// The tables of a count quota as committed now (see COUNTED_TABLES).
pub(super) fn latest_counted_tables(resource: &str) -> Vec<CountedTable> {
    latest_select(COUNTED_TABLES, &[text_datum(resource)])
        .into_iter()
        .map(|r| {
            let mut r = r.into_iter();
            let mut next = || r.next().unwrap_or_default();
            CountedTable::from_text([next(), next(), next(), next()])
        })
        .collect()
}

/// The tenant's rows in the tables of a count quota (see in_latest_snapshot).
pub fn count_rows(tenant: pgrx::Uuid, resource: &str, hide_own: bool) -> i64 {
    in_latest_snapshot(hide_own, || {
        latest_counted_tables(resource)
            .iter()
            .map(|t| {
                // As the table's owner: planning and scanning a user table may run its owner's
                // functions (index expressions and predicates), never with pg_tenant's rights.
                as_table_owner(t.oid, || {
                    let sql = format!(
                        "SELECT pg_catalog.count(*) FROM {}{} WHERE {} OPERATOR(pg_catalog.=) $1",
                        if t.only { "ONLY " } else { "" },
                        relation_name(t.oid),
                        quote_identifier(&t.column)
                    );
                    unfiltered(|| {
                        latest_select(
                            &sql,
                            &[(pg_sys::UUIDOID, tenant.into_datum().expect("uuid"))],
                        )
                    })
                })
                .first()
                .and_then(|r| r[0].parse::<i64>().ok())
                .unwrap_or(0)
            })
            .sum()
    })
}

/// The marker row that says count quotas were kept in shared memory (shared_counters.rs): the
/// counters table's numbers for them are not to be trusted.
pub(super) const MARKER_TENANT: &str = "00000000-0000-0000-0000-000000000000";
pub(super) const MARKER_RESOURCE: &str = "pg_tenant.shared_counters";

pub fn write_shared_marker() {
    run_as_owner(
        crate::owner::data_sql(
            "INSERT INTO tenant_data.usage_counters (tenant_id, resource, period_start, used)
         VALUES ($1::pg_catalog.uuid, $2, pg_catalog.clock_timestamp(), 0) ON CONFLICT DO NOTHING",
        ),
        &[MARKER_TENANT.into(), MARKER_RESOURCE.into()],
    );
}

thread_local! {
    /// Without shared memory: whether this session found no marker (it cannot appear meanwhile:
    /// shared memory comes only with a server start).
    static UNMARKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// With shared memory, keys without a slot whose counter row this session counted again.
    static RESYNCED: std::cell::RefCell<std::collections::HashSet<([u8; 16], String)>> = std::cell::RefCell::new(Default::default());
}

pub(super) fn marker_present() -> bool {
    as_extension_owner(|| {
        crate::owner::read_one::<bool>(
            crate::owner::data_sql("SELECT EXISTS (SELECT FROM tenant_data.usage_counters WHERE tenant_id OPERATOR(pg_catalog.=) $1::pg_catalog.uuid
                              AND resource OPERATOR(pg_catalog.=) $2)"),
            &[MARKER_TENANT.into(), MARKER_RESOURCE.into()],
        )
    })
    .unwrap_or(false)
}

/// Without shared memory: when the server ran with it before (or a dump from such a server was
/// restored), counts every count quota again once, for every tenant, and drops the marker.
pub(super) fn resync_if_marked() {
    if UNMARKED.with(|u| u.get()) {
        return;
    }
    if !marker_present() {
        UNMARKED.with(|u| u.set(true));
        return;
    }
    // Every session meets the marker at its first count quota and waits here; the first one
    // counts, the others find the marker gone.
    crate::owner::take_named_lock(
        "recount",
        true,
        "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_tenant.recount'))",
    );
    if !marker_present() {
        return;
    }
    recount_all();
    run_as_owner(
        crate::owner::data_sql("DELETE FROM tenant_data.usage_counters WHERE tenant_id = $1::pg_catalog.uuid AND resource = $2"),
        &[MARKER_TENANT.into(), MARKER_RESOURCE.into()],
    );
}

/// Sets every count quota's counter rows to the rows there are.
pub(super) fn recount_all() {
    let resources = count_resources();
    // A resource on a distributed table is never counted again from rows (distributed.rs).
    for resource in resources
        .into_iter()
        .filter(|r| !super::distributed::on_distributed_table(r))
    {
        let mut totals: BTreeMap<String, i64> = BTreeMap::new();
        in_latest_snapshot(true, || {
            for t in latest_counted_tables(&resource) {
                let col = quote_identifier(&t.column);
                let only = if t.only { "ONLY " } else { "" };
                // As the table's owner (see count_rows).
                let rows = as_table_owner(t.oid, || {
                    let sql = format!(
                        "SELECT {col}, pg_catalog.count(*) FROM {only}{} WHERE {col} IS NOT NULL GROUP BY 1",
                        relation_name(t.oid)
                    );
                    unfiltered(|| latest_select(&sql, &[]))
                });
                for row in rows {
                    *totals.entry(row[0].clone()).or_insert(0) +=
                        row[1].parse::<i64>().unwrap_or(0);
                }
            }
        });
        zero_counter_rows(&resource);
        for (tenant, n) in totals {
            run_as_owner(
                crate::owner::data_sql("INSERT INTO tenant_data.usage_counters (tenant_id, resource, period_start, used)
                 VALUES ($1::pg_catalog.uuid, $2, '-infinity', $3)
                 ON CONFLICT (tenant_id, resource, period_start) DO UPDATE SET used = EXCLUDED.used"),
                &[tenant.as_str().into(), resource.as_str().into(), n.into()],
            );
        }
    }
}

/// A rolled-back transaction took its recounts of counter rows with it.
/// The quotas' part of each transaction event (registered with crate::xact from _PG_init).
pub fn on_xact(event: pg_sys::XactEvent::Type) {
    if event == pg_sys::XactEvent::XACT_EVENT_ABORT {
        forget_resyncs();
    }
}

pub(super) fn forget_resyncs() {
    RESYNCED.with(|r| r.borrow_mut().clear());
}

/// With shared memory but no slot for this key (all taken): its counter row is used, and counted
/// again once per session first (it may have had a slot, and so a stale row, before a restart).
pub(super) fn resync_key(tenant: pgrx::Uuid, resource: &str) {
    let key = (*tenant.as_bytes(), resource.to_string());
    if RESYNCED.with(|r| r.borrow().contains(&key)) {
        return;
    }
    set_counter_to_rows(tenant, resource, true);
    RESYNCED.with(|r| r.borrow_mut().insert(key));
}
