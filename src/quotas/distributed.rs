//! Count and meter quotas on Citus tables hash-distributed by their tenant column, counted on the
//! coordinator (docs/operations.md, "Citus").
//!
//! On a shard nothing can be charged: the counters live on the coordinator, and a worker serving
//! a shard task may not run a distributed query. So such a table gets no counting index and no
//! trigger that reaches its shards: attach_quota records the quota with the same statement
//! triggers as elsewhere, created on the coordinator only (Citus's DDL propagation off), where
//! they never fire (a distributed table's rows are on the shards) except the TRUNCATE one, which
//! refuses. The statements are counted here instead, once each, on the coordinator, where the
//! application connects: every row a role subject to row security writes into a protected table
//! is the tenant in force's (the policy's WITH CHECK, on every shard), so a statement's row count
//! (`es_processed`, which Citus sums over the shards; COPY's QueryCompletion) is that tenant's
//! change. INSERT and COPY FROM add their rows, DELETE gives them back, UPDATE changes nothing
//! (Citus refuses to change a distribution column). Statements whose count would be ambiguous
//! (INSERT ... ON CONFLICT, MERGE, writable CTEs on such a table) and
//! writes whose rows need not be the tenant in force's (a role row security does not filter, or
//! no tenant) are refused (0A000), unless they changed no row. The charge is the local counters'
//! (`charge`, on the counter row: the same limit check, error and per-tenant serialization) and
//! is taken when the statement finishes: over the limit, the error rolls the distributed
//! transaction back on every node.
//!
//! The statement is found in its plan's range table: Citus's plans (a CustomScan) keep the
//! original range table for permission checks, each entry with the rights it needs. It needs
//! pg_tenant in shared_preload_libraries on the coordinator (attach_quota refuses otherwise): a
//! session that never loads the library would count nothing.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::{guarded, TenantError};
use crate::owner::as_extension_owner;

use super::attach::Mode;
use super::recount::{in_latest_snapshot, latest_select};
use super::usage::charge;

static mut PREV_PLANNER: pg_sys::planner_hook_type = None;
static mut PREV_EXECUTOR_FINISH: pg_sys::ExecutorFinish_hook_type = None;
static mut PREV_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;
/// Whether this library was loaded at server start (shared_preload_libraries): only then does
/// every session of the coordinator count (a session that never loads it on demand would not).
static mut PRELOADED: bool = false;

/// Whether pg_tenant is in shared_preload_libraries here.
pub(super) fn preloaded() -> bool {
    unsafe { PRELOADED }
}

/// A table's count and meter quotas: (resource, mode).
type Quotas = Vec<(String, Mode)>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Insert,
    Delete,
}

struct Pending {
    rel: pg_sys::Oid,
    kind: Kind,
    quotas: Quotas,
}

thread_local! {
    /// Per table written: its count and meter quotas when it is a Citus table hash-distributed by
    /// its tenant column (else none). A table's entry is forgotten on its relcache invalidation:
    /// the attachments are its quota triggers (tenant_data.quota_attachments reads pg_trigger),
    /// and creating or dropping a trigger, like Citus changing its distribution, invalidates the
    /// table's relcache entry, in this session at once (again when the transaction or savepoint
    /// rolls back) and in the others at their next transaction or lock of the table. Emptied by
    /// attach_quota/detach_quota too.
    static ATTACHED: RefCell<HashMap<pg_sys::Oid, Quotas>> = RefCell::new(HashMap::new());
    /// Counts the invalidations: a value read while one arrived is not kept.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
}

/// Forgets the quotas read (attach_quota and detach_quota changed those of `tree`, a table and
/// its partitions), here and, through a relcache invalidation of each, in every session: a
/// partition's writes count for its partitioned table's quotas (see [`attached`]), but its
/// relcache entry is not invalidated by its parent's statement triggers.
pub(super) fn forget_tree(tree: &[crate::types::TreeRelation]) {
    GENERATION.with(|g| g.set(g.get() + 1));
    ATTACHED.with(|a| a.borrow_mut().clear());
    for relation in tree {
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relation.oid) };
    }
}

/// A relation's relcache entry was invalidated (InvalidOid: all of them): see [`ATTACHED`].
fn forget_relation(rel: pg_sys::Oid) {
    GENERATION.with(|g| g.set(g.get() + 1));
    ATTACHED.with(|a| {
        if let Ok(mut a) = a.try_borrow_mut() {
            if rel == pg_sys::Oid::INVALID {
                a.clear();
            } else {
                a.remove(&rel);
            }
        }
    });
}

/// The count and meter quotas of `rel` when it is a Citus table hash-distributed (by its tenant
/// column, as attach_quota requires): its own and those of the partitioned tables it is a
/// partition of (a partition created after the quota was attached has no trigger of it).
fn attached(rel: pg_sys::Oid) -> Quotas {
    if let Some(hit) = ATTACHED.with(|a| a.borrow().get(&rel).cloned()) {
        return hit;
    }
    let generation = GENERATION.with(|g| g.get());
    // (Nothing where pg_tenant's extension is not created.)
    // (On a worker nothing is counted: a write that reaches a worker directly is not seen by the
    // coordinator, where the counters are; such connections must not be allowed.)
    let quotas = if crate::owner::data_namespace() != pg_sys::Oid::INVALID
        && crate::citus::metadata_present()
        && crate::citus::is_coordinator()
    {
        // As committed now, Citus's distribution too (a statement that waited for
        // attach_quota's lock sees its quota; and what is kept across transactions must not
        // come from a REPEATABLE READ transaction's older snapshot).
        in_latest_snapshot(false, || {
            latest_select(
                crate::owner::data_sql(
                    "SELECT DISTINCT a.resource, a.mode FROM tenant_data.quota_attachments a
                      WHERE (a.table_name::pg_catalog.oid OPERATOR(pg_catalog.=) $1
                             -- (no row for a table that is no partition)
                             OR a.table_name::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (ARRAY(
                                SELECT relid::pg_catalog.oid FROM pg_catalog.pg_partition_ancestors($1))))
                        AND a.mode OPERATOR(pg_catalog.<>) 'bytes'
                        AND EXISTS (SELECT FROM pg_catalog.pg_dist_partition p
                                     WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1
                                       AND p.partmethod OPERATOR(pg_catalog.=) 'h')
                      ORDER BY 1",
                ),
                &[(pg_sys::OIDOID, rel.into_datum().expect("oid"))],
            )
        })
        .into_iter()
        .filter_map(|r| {
            let mode = Mode::parse(r.get(1)?)?;
            Some((r.first()?.clone(), mode))
        })
        .collect()
    } else {
        Vec::new()
    };
    if GENERATION.with(|g| g.get()) == generation {
        ATTACHED.with(|a| a.borrow_mut().insert(rel, quotas.clone()));
    }
    quotas
}

/// Whether a count quota's resource is attached to a distributed table: its usage is then kept
/// on the counter row (never in shared memory, which counts a resource again from its tables'
/// rows, which the coordinator cannot read per tenant).
pub(super) fn on_distributed_table(resource: &str) -> bool {
    if !crate::citus::metadata_present() {
        return false;
    }
    as_extension_owner(|| {
        crate::owner::read_one::<bool>(
            crate::owner::data_sql(
                "SELECT EXISTS (SELECT FROM tenant_data.quota_attachments a
                                  JOIN pg_catalog.pg_dist_partition p ON p.logicalrelid OPERATOR(pg_catalog.=) a.table_name::pg_catalog.oid
                                 WHERE a.resource OPERATOR(pg_catalog.=) $1 AND a.mode OPERATOR(pg_catalog.=) 'count')",
            ),
            &[resource.into()],
        )
    })
    .unwrap_or(false)
}

/// tenant.import() (through recount_tenant): a tenant's counter row of a count quota on
/// distributed tables becomes its rows there, as a local table's count does. Writes of those
/// tables through this node wait first (a SHARE lock on each, here only: this transaction's own
/// writes hold the placements on the workers), so that none is missed or counted twice; each
/// table's rows are counted as import reads them (export::tenant_row_count: as the table's owner,
/// with a node token naming the tenant). The counter row is locked before it is counted.
pub(super) fn set_counter_to_rows(tenant: pgrx::Uuid, resource: &str) {
    let tables: Vec<pg_sys::Oid> = as_extension_owner(|| {
        Spi::connect(|client| {
            let rows = client.select(
                crate::owner::data_sql(
                    "SELECT table_name::pg_catalog.oid FROM tenant_data.quota_attachments
                      WHERE resource OPERATOR(pg_catalog.=) $1 AND mode OPERATOR(pg_catalog.=) 'count'
                      ORDER BY 1",
                ),
                None,
                &[resource.into()],
            )?;
            let mut out = Vec::new();
            for row in rows {
                out.extend(row.get::<pg_sys::Oid>(1)?);
            }
            Ok::<_, pgrx::spi::Error>(out)
        })
        .unwrap_or_else(|e| error!("pg_tenant: {e}"))
    });
    for rel in &tables {
        unsafe { pg_sys::LockRelationOid(*rel, pg_sys::ShareLock as pg_sys::LOCKMODE) };
    }
    super::usage::add_usage(tenant, resource, i64::MIN, 0, -1);
    let rows: i64 = tables
        .iter()
        .map(|rel| crate::export::tenant_row_count(*rel, tenant))
        .sum();
    crate::owner::run_as_owner(
        crate::owner::data_sql("UPDATE tenant_data.usage_counters SET used = $3 WHERE tenant_id = $1 AND resource = $2 AND period_start = '-infinity'"),
        &[tenant.into(), resource.into(), rows.into()],
    );
}

fn table_name(rel: pg_sys::Oid) -> String {
    crate::owner::relation_name(rel)
}

fn refuse(rel: pg_sys::Oid, reason: &'static str) -> ! {
    TenantError::CitusQuota {
        table: table_name(rel),
        reason,
    }
    .raise()
}

const WRITES: u64 = (pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE | pg_sys::ACL_DELETE) as u64;

/// What a finished statement wrote into a distributed table with quotas (None: nothing to
/// count), or refused when its count would be ambiguous. Read when it finishes, not when it
/// starts: loaded on demand, this library may arrive in the middle of the statement.
unsafe fn classify(query: *mut pg_sys::QueryDesc) -> Option<Pending> {
    // (Not while an extension's script runs: CREATE EXTENSION citus makes its catalogs before
    // the functions that read them.)
    // (Nor under session_replication_role = replica, superusers only, which counts nothing: as
    // tenant.import() loads rows, with one writable CTE per table, and counts them afterwards.)
    if pg_sys::creating_extension
        || !crate::citus::metadata_present()
        || pg_sys::SessionReplicationRole == pg_sys::SESSION_REPLICATION_ROLE_REPLICA as i32
    {
        return None;
    }
    let stmt = (*query).plannedstmt;
    if stmt.is_null() || (*stmt).commandType == pg_sys::CmdType::CMD_UTILITY {
        return None;
    }
    let rtable = pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*stmt).rtable);
    // (table, the rights the statement needs on it, its quotas)
    let mut written: Vec<(pg_sys::Oid, u64, Quotas)> = Vec::new();
    for rte in rtable.iter_ptr() {
        if (*rte).rtekind != pg_sys::RTEKind::RTE_RELATION {
            continue;
        }
        let perms = (*rte).requiredPerms as u64;
        if perms & WRITES == 0 || (*rte).relid.to_u32() < pg_sys::FirstNormalObjectId {
            continue;
        }
        let quotas = attached((*rte).relid);
        if !quotas.is_empty() {
            written.push(((*rte).relid, perms, quotas));
        }
    }
    let (rel, perms, _) = written.first()?;
    let (rel, perms) = (*rel, *perms);
    if written.len() > 1 {
        refuse(
            rel,
            "a statement that writes it more than once (a writable CTE) cannot be counted exactly",
        );
    }
    let kind = match (*stmt).commandType {
        pg_sys::CmdType::CMD_INSERT
            if perms & (pg_sys::ACL_UPDATE | pg_sys::ACL_DELETE) as u64 == 0 =>
        {
            Kind::Insert
        }
        pg_sys::CmdType::CMD_DELETE
            if perms & (pg_sys::ACL_INSERT | pg_sys::ACL_UPDATE) as u64 == 0 =>
        {
            Kind::Delete
        }
        pg_sys::CmdType::CMD_UPDATE
            if perms & (pg_sys::ACL_INSERT | pg_sys::ACL_DELETE) as u64 == 0 =>
        {
            return None
        }
        pg_sys::CmdType::CMD_MERGE => refuse(rel, "MERGE cannot be counted exactly"),
        pg_sys::CmdType::CMD_INSERT => refuse(
            rel,
            "INSERT ... ON CONFLICT DO UPDATE cannot be counted exactly (DO NOTHING can)",
        ),
        _ => refuse(
            rel,
            "a statement that writes it from a writable CTE cannot be counted exactly",
        ),
    };
    let quotas = written.pop().map(|w| w.2).unwrap_or_default();
    Some(Pending { rel, kind, quotas })
}

crate::hooks::planner_hook!(fn planner(call) {
    refuse_on_conflict(call.parse);
    call.run(PREV_PLANNER)
});

/// INSERT ... ON CONFLICT into a distributed table with quotas (and MERGE) is refused when it is
/// planned:
/// Citus reports the rows it sent to the shards for some of its plans (an INSERT ... SELECT
/// through the coordinator), not the rows ON CONFLICT kept. (attach_quota's triggers invalidate
/// the plans cached before it.)
#[pg_guard]
unsafe extern "C-unwind" fn refuse_on_conflict(parse: *mut pg_sys::Query) {
    guarded(|| {
        if parse.is_null() {
            return;
        }
        let merge = (*parse).commandType == pg_sys::CmdType::CMD_MERGE;
        let on_conflict =
            (*parse).commandType == pg_sys::CmdType::CMD_INSERT && !(*parse).onConflict.is_null();
        if !(merge || on_conflict)
            || (*parse).resultRelation <= 0
            || pg_sys::creating_extension
            || !crate::citus::metadata_present()
        {
            return;
        }
        let rtable = pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*parse).rtable);
        let Some(rte) = rtable.get_ptr((*parse).resultRelation as usize - 1) else {
            return;
        };
        if (*rte).relid.to_u32() >= pg_sys::FirstNormalObjectId
            && !attached((*rte).relid).is_empty()
        {
            refuse(
                (*rte).relid,
                if merge {
                    "MERGE cannot be counted exactly"
                } else {
                    "INSERT ... ON CONFLICT cannot be counted exactly (Citus reports the rows it sent)"
                },
            );
        }
    });
}

/// Charges a finished statement's rows to the tenant in force.
fn settle(pending: Pending, rows: u64) {
    if rows == 0
        || unsafe {
            pg_sys::SessionReplicationRole == pg_sys::SESSION_REPLICATION_ROLE_REPLICA as i32
        }
    {
        return;
    }
    // tenant.drop() deleting a tenant's rows: its usage goes with it.
    if pending.kind == Kind::Delete && crate::node_context::acting_for_drop() {
        return;
    }
    let filtered = !crate::owner::bypasses_rls(crate::owner::current_role());
    let tenant = match crate::gucs::current_tenant() {
        Some(t) if filtered => t,
        _ => refuse(
            pending.rel,
            "its rows are counted for the tenant in force only, written by a role that row security filters",
        ),
    };
    let rows = rows as i64;
    let mut quotas = pending.quotas;
    quotas.sort_by(|a, b| a.0.cmp(&b.0));
    for (resource, mode) in quotas {
        match (mode, pending.kind) {
            (Mode::Count, Kind::Insert) => charge(tenant, &resource, rows, true),
            (Mode::Count, Kind::Delete) => charge(tenant, &resource, -rows, true),
            (Mode::Meter, Kind::Insert) => charge(tenant, &resource, rows, false),
            _ => continue,
        };
    }
}

unsafe extern "C-unwind" fn executor_finish(query: *mut pg_sys::QueryDesc) {
    crate::hooks::executor_finish(PREV_EXECUTOR_FINISH, query);
    finished(query);
}

#[pg_guard]
unsafe extern "C-unwind" fn finished(query: *mut pg_sys::QueryDesc) {
    guarded(|| {
        // Citus runs a CTE's subplan with no active snapshot; the lookups below need one.
        let pushed = !pg_sys::ActiveSnapshotSet();
        if pushed {
            pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
        }
        if let Some(p) = classify(query) {
            let estate = (*query).estate;
            let rows = if estate.is_null() {
                0
            } else {
                (*estate).es_processed
            };
            settle(p, rows);
        }
        if pushed {
            pg_sys::PopActiveSnapshot();
        }
    });
}

crate::hooks::utility_hook!(fn process_utility(call) {
    let copy = copy_into(&call);
    let qc = call.qc;
    call.run(PREV_PROCESS_UTILITY);
    if let Some(rel) = copy {
        copied(rel, qc);
    }
});

/// The distributed table with quotas a COPY FROM writes, if any.
unsafe fn copy_into(call: &crate::hooks::Utility) -> Option<pg_sys::Oid> {
    let copy = call.node::<pg_sys::CopyStmt>(pg_sys::NodeTag::T_CopyStmt)?;
    if !(*copy).is_from || (*copy).relation.is_null() {
        return None;
    }
    Some(looked_up((*copy).relation)).filter(|rel| *rel != pg_sys::Oid::INVALID)
}

#[pg_guard]
unsafe extern "C-unwind" fn looked_up(relation: *mut pg_sys::RangeVar) -> pg_sys::Oid {
    let mut out = pg_sys::Oid::INVALID;
    guarded(|| {
        if pg_sys::creating_extension || !crate::citus::metadata_present() {
            return;
        }
        let rel = pg_sys::RangeVarGetRelidExtended(
            relation,
            pg_sys::NoLock as pg_sys::LOCKMODE,
            pg_sys::RVROption::RVR_MISSING_OK,
            None,
            std::ptr::null_mut(),
        );
        if rel != pg_sys::Oid::INVALID && !attached(rel).is_empty() {
            out = rel;
        }
    });
    out
}

#[pg_guard]
unsafe extern "C-unwind" fn copied(rel: pg_sys::Oid, qc: *mut pg_sys::QueryCompletion) {
    guarded(|| {
        let rows = if qc.is_null() { 0 } else { (*qc).nprocessed };
        let quotas = attached(rel);
        settle(
            Pending {
                rel,
                kind: Kind::Insert,
                quotas,
            },
            rows,
        );
    });
}

/// Installs the hooks (from _PG_init).
pub fn init() {
    unsafe {
        PRELOADED = pg_sys::process_shared_preload_libraries_in_progress;
        crate::hooks::install_hook!(PREV_PLANNER, planner_hook, planner);
        crate::hooks::install_hook!(PREV_EXECUTOR_FINISH, ExecutorFinish_hook, executor_finish);
        crate::hooks::install_hook!(PREV_PROCESS_UTILITY, ProcessUtility_hook, process_utility);
    }
    crate::xact::on_relcache(forget_relation);
}
