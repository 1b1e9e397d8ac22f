//! `TRUNCATE` of a Citus shard of a protected table, refused.
//!
//! The write guard refuses `TRUNCATE` (it bypasses row security and removes every tenant's rows)
//! with its trigger `tenant_guard_truncate`, which Citus copies to the shards it makes when it
//! distributes a table, but not to the shards it makes later: those of a partition created after
//! its table was distributed, of a table it makes a Citus local table (whose shard is on the
//! coordinator), or after `alter_distributed_table()`. A role that may `TRUNCATE` the table could
//! then empty such a shard directly (`SET citus.enable_manual_changes_to_shards = on`, or on a
//! worker) with no tenant at all (attack review of issue 14). So, on a node with Citus's
//! metadata, a `TRUNCATE` naming (or, with CASCADE, reaching) a shard of a table that has
//! pg_tenant's write guard is refused
//! (`PT004`) for a role that does not bypass row security, as the guard refuses it on the table.
//! (A table whose owner gave it pg_tenant's guard function by hand is refused alike: refusing
//! more, never less.)

use pgrx::pg_sys;
use pgrx::prelude::*;

static mut PREV_PROCESS_UTILITY: pg_sys::ProcessUtility_hook_type = None;

/// Installs the utility hook (from _PG_init).
pub fn init() {
    unsafe {
        crate::hooks::install_hook!(PREV_PROCESS_UTILITY, ProcessUtility_hook, process_utility);
    }
}

crate::hooks::utility_hook!(fn process_utility(call) {
    if let Some(truncate) = call.node::<pg_sys::TruncateStmt>(pg_sys::NodeTag::T_TruncateStmt) {
        refuse_shards(truncate);
    }
    call.run(PREV_PROCESS_UTILITY);
});

#[pg_guard]
unsafe extern "C-unwind" fn refuse_shards(truncate: *mut pg_sys::TruncateStmt) {
    if !crate::citus::metadata_present() || crate::owner::bypasses_rls(crate::owner::current_role())
    {
        return;
    }
    crate::error::guarded(|| {
        let mut rels: Vec<pg_sys::Oid> = Vec::new();
        for range in pgrx::PgList::<pg_sys::RangeVar>::from_pg((*truncate).relations).iter_ptr() {
            let rel = pg_sys::RangeVarGetRelidExtended(
                range,
                pg_sys::NoLock as _,
                pg_sys::RVROption::RVR_MISSING_OK as _,
                None,
                std::ptr::null_mut(),
            );
            if rel != pg_sys::Oid::INVALID {
                rels.push(rel);
            }
        }
        // With CASCADE, the tables whose foreign keys reference them, as PostgreSQL adds them
        // (a Citus local table's shard referencing a reference table's shard, say).
        if (*truncate).behavior == pg_sys::DropBehavior::DROP_CASCADE {
            loop {
                let mut list: *mut pg_sys::List = std::ptr::null_mut();
                for rel in &rels {
                    list = pg_sys::lappend_oid(list, *rel);
                }
                let added: Vec<pg_sys::Oid> =
                    pgrx::PgList::<pg_sys::Oid>::from_pg(pg_sys::heap_truncate_find_FKs(list))
                        .iter_oid()
                        .filter(|o| !rels.contains(o))
                        .collect();
                if added.is_empty() {
                    break;
                }
                rels.extend(added);
            }
        }
        for &rel in &rels {
            if is_guarded_shard(rel) {
                crate::error::TenantError::TruncateRefused(crate::owner::relation_name(rel))
                    .raise();
            }
        }
    })
}

/// Whether `rel` is a Citus shard (named `<table>_<shard id>` beside its table) of a table with
/// a trigger calling pg_tenant's write guard. (Its name and schema from the relcache: Citus hides
/// shards from queries on pg_class.)
fn is_guarded_shard(rel: pg_sys::Oid) -> bool {
    let (name, namespace) = unsafe {
        let name = pg_sys::get_rel_name(rel);
        if name.is_null() {
            return false;
        }
        (
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned(),
            pg_sys::get_rel_namespace(rel),
        )
    };
    crate::owner::read_one::<bool>(
        "SELECT EXISTS (
           SELECT FROM pg_catalog.pg_dist_shard s
             JOIN pg_catalog.pg_class l ON l.oid OPERATOR(pg_catalog.=) s.logicalrelid
            WHERE s.shardid OPERATOR(pg_catalog.=) pg_catalog.substring($1, '_([0-9]+)$')::pg_catalog.int8
              AND l.relnamespace OPERATOR(pg_catalog.=) $2
              AND EXISTS (SELECT FROM pg_catalog.pg_trigger t
                           WHERE t.tgrelid OPERATOR(pg_catalog.=) l.oid
                             AND t.tgfoid OPERATOR(pg_catalog.=) pg_catalog.to_regprocedure('tenant.guard()')))",
        &[name.as_str().into(), namespace.into()],
    )
    .unwrap_or(false)
}
