//! Plans made for one tenant: a plan that names the current tenant as a constant (Citus routing,
//! crate::isolation::routing) is valid only while that tenant is in force. PostgreSQL keeps such
//! a plan (a prepared statement's generic plan, a PL/pgSQL function's) across a change of the
//! tenant context, so each one carries an invalidation item of its own ([`depends_on_tenant`]),
//! and every change of a parameter that decides the tenant (pg_tenant.tenant_id, .token,
//! .context, .tenant_hidden, from their assign hooks: set, set_local, reset, SET LOCAL, the end
//! of a transaction or savepoint, RESET ALL) marks those plans, and only those, invalid
//! ([`context_changed`]): PostgreSQL plans them again at their next use, for the tenant then in
//! force.
//!
//! The item is one PostgreSQL's plan cache already understands: a dependency on a pg_proc entry,
//! here the hash of a function id no function has (0), so no catalog change ever matches it and
//! nothing else PostgreSQL caches is touched when pg_tenant announces it in this backend alone
//! (CallSyscacheCallbacks, which is what an invalidation message arriving does). A second item
//! right after it carries a hash of the tenant the plan was made for ([`planned_for`]): a plan no
//! cache holds (a SQL function plans all its statements when it starts) can still start after the
//! tenant changed, and is then refused rather than run on the wrong shard. (That item would only
//! match a function whose hash happens to equal it: the plan is then planned again, no harm.)

use std::cell::Cell;

use pgrx::pg_sys;

thread_local! {
    /// Whether a plan made for a tenant may still be cached in this backend.
    static OUTSTANDING: Cell<bool> = const { Cell::new(false) };
    /// The marker item's hash value, once computed (0 before).
    static HASH_VALUE: Cell<u32> = const { Cell::new(0) };
}

/// The invalidation item's hash value: that of pg_proc's key 0 (never zero itself, which would
/// mean "every function").
fn hash_value() -> u32 {
    let known = HASH_VALUE.with(|h| h.get());
    if known != 0 {
        return known;
    }
    let hash = unsafe {
        pg_sys::GetSysCacheHashValue(
            pg_sys::SysCacheIdentifier::PROCOID as _,
            pg_sys::Datum::from(pg_sys::Oid::INVALID),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
            pg_sys::Datum::from(0),
        )
    };
    let hash = if hash == 0 { 1 } else { hash };
    HASH_VALUE.with(|h| h.set(hash));
    hash
}

/// A 32-bit hash of a tenant's id (FNV-1a).
pub fn tenant_hash(tenant: &[u8; 16]) -> u32 {
    tenant.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

unsafe fn append_item(stmt: *mut pg_sys::PlannedStmt, hash: u32) {
    let item =
        pg_sys::palloc0(std::mem::size_of::<pg_sys::PlanInvalItem>()) as *mut pg_sys::PlanInvalItem;
    (*item).type_ = pg_sys::NodeTag::T_PlanInvalItem;
    (*item).cacheId = pg_sys::SysCacheIdentifier::PROCOID as _;
    (*item).hashValue = hash;
    (*stmt).invalItems = pg_sys::lappend((*stmt).invalItems, item.cast());
}

/// Marks `stmt` (just planned) as valid for `tenant`, the tenant in force, only.
///
/// # Safety
/// `stmt` is a plan the planner just returned, in the memory context it was made in.
pub unsafe fn depends_on_tenant(stmt: *mut pg_sys::PlannedStmt, tenant: &[u8; 16]) {
    if stmt.is_null() {
        return;
    }
    append_item(stmt, hash_value());
    append_item(stmt, tenant_hash(tenant));
    OUTSTANDING.with(|o| o.set(true));
}

/// The [`tenant_hash`] of the tenant `stmt` was made for, if it was made for one.
///
/// # Safety
/// `stmt` is a plan (or null).
pub unsafe fn planned_for(stmt: *mut pg_sys::PlannedStmt) -> Option<u32> {
    let marker = HASH_VALUE.with(|h| h.get());
    // (0: no plan of this backend was made for a tenant.)
    if stmt.is_null() || (*stmt).invalItems.is_null() || marker == 0 {
        return None;
    }
    let items = pgrx::PgList::<pg_sys::PlanInvalItem>::from_pg((*stmt).invalItems);
    let items: Vec<*mut pg_sys::PlanInvalItem> = items.iter_ptr().collect();
    items.windows(2).find_map(|pair| {
        ((*pair[0]).cacheId == pg_sys::SysCacheIdentifier::PROCOID as i32
            && (*pair[0]).hashValue == marker)
            .then(|| (*pair[1]).hashValue)
    })
}

/// A parameter that decides the tenant changed (from its assign hook, which must not fail):
/// every plan made for a tenant is planned again at its next use. Nothing to do when none was
/// made since the last change.
pub fn context_changed() {
    if OUTSTANDING.with(|o| o.replace(false)) {
        unsafe {
            pg_sys::CallSyscacheCallbacks(pg_sys::SysCacheIdentifier::PROCOID as _, hash_value())
        };
    }
}
