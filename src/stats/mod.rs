//! Per-tenant statement statistics (issue 15): `tenant.stats` (one row per tenant of the
//! current database) and `tenant.stats_reset(tenant)`, for administrators; the current tenant's
//! own in `tenant.info()` (context/info.rs reads [`current`]).
//!
//! Counted in shared memory (shmem.rs), so only with pg_tenant in `shared_preload_libraries`;
//! without it, `tenant.stats` and `stats_reset` refuse with `55000` and a hint, and info()'s
//! `stats` is NULL. hooks.rs counts: top-level statements run while a tenant is current, by kind
//! (SELECT, INSERT, UPDATE, DELETE; MERGE and utility commands are "others"), the rows a SELECT
//! returned or a write wrote, the time from ExecutorStart to ExecutorEnd (around
//! ProcessUtility for a utility command), the end of the last one. A statement that fails is not
//! counted. `pg_tenant.stats = off` stops counting.

mod hooks;
mod shmem;

use pgrx::prelude::*;
use serde_json::{json, Value};

use crate::error::{guarded, TenantError};

pub use shmem::Counters;

/// From _PG_init, after the settings are defined: when preloading, asks for the shared memory
/// and installs the hooks.
pub fn init() {
    if unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        shmem::init();
        hooks::install();
    }
}

thread_local! {
    /// Entries to free when this transaction commits, with the subtransaction level that asked:
    /// of a tenant (tenant.drop(), stats_reset(tenant)) or, None, of the whole database
    /// (stats_reset()).
    static TO_FREE: std::cell::RefCell<Vec<(Option<[u8; 16]>, i32)>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn free_at_commit(tenant: Option<[u8; 16]>) {
    let level = crate::xact::nest_level();
    TO_FREE.with(|d| d.borrow_mut().push((tenant, level)));
}

/// tenant.drop() of `tenant`: its entry is freed if the transaction commits (a dropped tenant
/// keeps no room).
pub fn forget_at_commit(tenant: pgrx::Uuid) {
    if shmem::available().is_ok() {
        free_at_commit(Some(*tenant.as_bytes()));
    }
}

/// Transaction events (registered with crate::xact from _PG_init).
pub fn on_xact(event: pg_sys::XactEvent::Type) {
    hooks::on_xact(event);
    if let Some(committed) = crate::xact::ended(event) {
        let to_free = TO_FREE.with(|d| std::mem::take(&mut *d.borrow_mut()));
        if committed {
            for (tenant, _) in to_free {
                shmem::free(tenant.as_ref());
            }
        }
    }
}

/// Subtransaction events (registered with crate::xact from _PG_init).
pub fn on_subxact(event: pg_sys::SubXactEvent::Type, level: i32) {
    hooks::on_subxact(event, level);
    TO_FREE.with(|d| match event {
        pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB => d.borrow_mut().retain(|(_, l)| *l < level),
        pg_sys::SubXactEvent::SUBXACT_EVENT_COMMIT_SUB => {
            for (_, l) in d.borrow_mut().iter_mut().filter(|(_, l)| *l >= level) {
                *l = level - 1;
            }
        }
        _ => {}
    });
}

fn require_statistics() {
    if let Err(preloaded) = shmem::available() {
        TenantError::NoStatistics { preloaded }.raise();
    }
}

fn timestamp(t: i64) -> Option<TimestampWithTimeZone> {
    (t != 0)
        .then(|| TimestampWithTimeZone::try_from(t).ok())
        .flatten()
}

/// One tenant's row of tenant.stats_rows().
struct Row {
    tenant_id: pgrx::Uuid,
    c: Counters,
}

#[pg_extern(
    sql = r#"
CREATE FUNCTION tenant.stats_rows()
RETURNS TABLE (tenant_id uuid, selects bigint, inserts bigint, updates bigint, deletes bigint, others bigint,
               rows_returned bigint, rows_written bigint, total_time_ms double precision, max_time_ms double precision,
               last_activity timestamptz, stats_since timestamptz)
VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.stats_rows() IS 'pg_tenant: the per-tenant statistics kept in shared memory for the current database (read tenant.stats)';
CREATE VIEW tenant.stats AS
SELECT t.slug AS tenant, t.id AS tenant_id,
       COALESCE(s.selects, 0) AS selects, COALESCE(s.inserts, 0) AS inserts,
       COALESCE(s.updates, 0) AS updates, COALESCE(s.deletes, 0) AS deletes,
       COALESCE(s.others, 0) AS others,
       COALESCE(s.rows_returned, 0) AS rows_returned, COALESCE(s.rows_written, 0) AS rows_written,
       COALESCE(s.total_time_ms, 0) AS total_time_ms, COALESCE(s.max_time_ms, 0) AS max_time_ms,
       s.last_activity, s.stats_since
  FROM tenant_data.tenants t
  LEFT JOIN tenant.stats_rows() s ON s.tenant_id OPERATOR(pg_catalog.=) t.id;
COMMENT ON VIEW tenant.stats IS 'pg_tenant: statements run as each tenant of this database since stats_since (NULL: not counted since the server started or the last tenant.stats_reset), by kind, with rows and times';
REVOKE ALL ON tenant.stats FROM PUBLIC;
"#,
    requires = ["registry_tables"]
)]
#[allow(clippy::type_complexity)]
fn stats_rows() -> TableIterator<
    'static,
    (
        name!(tenant_id, pgrx::Uuid),
        name!(selects, i64),
        name!(inserts, i64),
        name!(updates, i64),
        name!(deletes, i64),
        name!(others, i64),
        name!(rows_returned, i64),
        name!(rows_written, i64),
        name!(total_time_ms, f64),
        name!(max_time_ms, f64),
        name!(last_activity, Option<TimestampWithTimeZone>),
        name!(stats_since, Option<TimestampWithTimeZone>),
    ),
> {
    guarded(|| {
        require_statistics();
        let rows: Vec<Row> = shmem::snapshot()
            .into_iter()
            .map(|(id, c)| Row {
                tenant_id: pgrx::Uuid::from_bytes(id),
                c,
            })
            .collect();
        TableIterator::new(rows.into_iter().map(|r| {
            let c = r.c;
            (
                r.tenant_id,
                c.selects as i64,
                c.inserts as i64,
                c.updates as i64,
                c.deletes as i64,
                c.others as i64,
                c.rows_returned as i64,
                c.rows_written as i64,
                c.total_time as f64 / 1000.0,
                c.max_time as f64 / 1000.0,
                timestamp(c.last_activity),
                timestamp(c.since),
            )
        }))
    })
}

#[pg_extern(sql = r#"
CREATE FUNCTION tenant.stats_reset(tenant text DEFAULT NULL)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.stats_reset(text) IS 'pg_tenant: forget the statistics of one tenant (its slug or id), or of every tenant of this database (NULL), when the transaction commits; frees their room in shared memory';
"#)]
fn stats_reset(tenant: Option<&str>) {
    guarded(|| {
        require_statistics();
        // Freed when the transaction commits, like the audit row: a failed or rolled-back call
        // changes nothing.
        match tenant {
            None => {
                crate::registry::audit::record("stats_reset", None, json!({"tenants": "all"}));
                free_at_commit(None);
            }
            Some(_) => {
                let t = crate::registry::resolve(tenant);
                crate::registry::audit::record("stats_reset", Some(t.id), json!({"slug": t.slug}));
                free_at_commit(Some(*t.id.as_bytes()));
            }
        }
    })
}

/// The statistics of `tenant` as info() shows them: None where the server keeps none; zeros and
/// a NULL stats_since while the tenant is not counted.
pub fn of_tenant(tenant: pgrx::Uuid) -> Option<Value> {
    shmem::available().ok()?;
    let c = shmem::of(tenant.as_bytes()).unwrap_or_default();
    Some(json!({
        "selects": c.selects,
        "inserts": c.inserts,
        "updates": c.updates,
        "deletes": c.deletes,
        "others": c.others,
        "rows_returned": c.rows_returned,
        "rows_written": c.rows_written,
        "total_time_ms": c.total_time as f64 / 1000.0,
        "max_time_ms": c.max_time as f64 / 1000.0,
        "last_activity": timestamp(c.last_activity).map(|t| t.to_string()),
        "stats_since": timestamp(c.since).map(|t| t.to_string()),
    }))
}
