//! The access method's handler and the callbacks that store, scan and vacuum nothing; the
//! `resource` option, and the resource an index counts for.

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::TenantError;

use super::build;
use super::insert::aminsert;

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
pub(super) unsafe extern "C-unwind" fn ambulkdelete(
    _info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
    _callback: pg_sys::IndexBulkDeleteCallback,
    _state: *mut std::ffi::c_void,
) -> *mut pg_sys::IndexBulkDeleteResult {
    stats_or_empty(stats)
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn amvacuumcleanup(
    _info: *mut pg_sys::IndexVacuumInfo,
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    stats_or_empty(stats)
}

/// VACUUM's statistics for an index with nothing in it: those given, or new zeroed ones.
pub(super) unsafe fn stats_or_empty(
    stats: *mut pg_sys::IndexBulkDeleteResult,
) -> *mut pg_sys::IndexBulkDeleteResult {
    if stats.is_null() {
        PgBox::<pg_sys::IndexBulkDeleteResult>::alloc0().into_pg()
    } else {
        stats
    }
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn amcostestimate(
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
pub(super) unsafe extern "C-unwind" fn amvalidate(_opclass: pg_sys::Oid) -> bool {
    true
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn ambeginscan(
    _index: pg_sys::Relation,
    _nkeys: std::ffi::c_int,
    _norderbys: std::ffi::c_int,
) -> pg_sys::IndexScanDesc {
    error!("pg_tenant: a tenant_quota index cannot be scanned")
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn amrescan(
    _scan: pg_sys::IndexScanDesc,
    _keys: pg_sys::ScanKey,
    _nkeys: std::ffi::c_int,
    _orderbys: pg_sys::ScanKey,
    _norderbys: std::ffi::c_int,
) {
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn amendscan(_scan: pg_sys::IndexScanDesc) {}

/// The one option, `resource`: which quota the rows count for. Kept in the index's reloptions so
/// that pg_dump, clone_schema and REINDEX carry it. The parsed form (rd_options) is the resource
/// name as a text datum.
#[pg_guard]
pub(super) unsafe extern "C-unwind" fn amoptions(
    reloptions: pg_sys::Datum,
    validate: bool,
) -> *mut pg_sys::bytea {
    if reloptions.is_null() {
        return std::ptr::null_mut();
    }
    crate::error::guarded(|| parse_options(reloptions, validate))
}

pub(super) unsafe fn parse_options(
    reloptions: pg_sys::Datum,
    validate: bool,
) -> *mut pg_sys::bytea {
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
pub(super) unsafe fn resource_of(index: pg_sys::Relation) -> String {
    let options = (*index).rd_options;
    if options.is_null() {
        error!("pg_tenant: tenant_quota index without a resource option");
    }
    String::from_datum(pg_sys::Datum::from(options), false).expect("resource")
}
