//! A per-session cache of the registry (tenants, gateway roles, per-tenant access roles), so that
//! `tenant.set()` and the write guard do no SPI on the hot path.
//!
//! Correctness comes from PostgreSQL's invalidation messages: every write to a table the cache
//! reads fires `tenant.registry_changed` (a row trigger, and a statement trigger for TRUNCATE,
//! both ENABLE ALWAYS), which queues a relcache invalidation for that table. So every way of
//! changing the registry goes through it: each admin function, plain SQL by the extension owner,
//! a restore, logical replication. At commit the invalidation reaches every session, which
//! processes it at its next transaction start (or lock acquisition); this session sees it at once,
//! and again if the transaction (or a savepoint) rolls back; a transaction that rolls back sends
//! nothing. The callback below then empties the cache. Role membership is not cached: it is
//! checked live with has_privs_of_role.
//!
//! A statement trigger alone is not enough: PostgreSQL skips AFTER STATEMENT triggers of an
//! `UPDATE ... RETURNING` whose caller stops reading after its first row (SPI with a row limit,
//! as `Spi::get_one` runs it), which is how `tenant.change_plan` once changed the plan without
//! telling anyone.
//!
//! An invalidation processed in the middle of a transaction (at a lock acquisition) may be
//! followed, in that transaction, by a load that reads with a snapshot older than the change (a
//! statement's snapshot, or REPEATABLE READ's): the cache is emptied again when such a
//! transaction ends, so that nothing loaded then outlives it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::types::{Quota, RoleGrant, Tenant};

#[derive(Default)]
struct RegistryCache {
    tenants: HashMap<String, Option<Tenant>>,
    gateways: Option<Vec<RoleGrant>>,
    access: HashMap<[u8; 16], Vec<RoleGrant>>,
    quotas: HashMap<([u8; 16], String), Quota>,
    /// The settings in force for a tenant (quotas::settings): (name, value) pairs.
    settings: HashMap<[u8; 16], Vec<(String, String)>>,
    /// The grant tables still lack transaction_only (a database not updated to 0.3.0 yet).
    legacy_grants: Option<bool>,
}

thread_local! {
    /// See [`on_keys_changed`].
    static KEYS_CHANGED: Cell<Option<fn()>> = const { Cell::new(None) };
    static CACHE: RefCell<RegistryCache> = RefCell::new(RegistryCache::default());
    /// Oids of CACHED_TABLES, once known.
    static REGISTRY_RELIDS: Cell<Option<[pg_sys::Oid; 7]>> = const { Cell::new(None) };
    /// With Citus: this node's placements of those that are reference tables (else InvalidOid);
    /// Citus fires their triggers on the placements.
    static PLACEMENT_RELIDS: Cell<[pg_sys::Oid; 7]> = const { Cell::new([pg_sys::Oid::INVALID; 7]) };
    /// Look the oids up again before the next load (DROP EXTENSION and CREATE EXTENSION make new
    /// tables; the old oids still match until then, and the cache is empty meanwhile).
    static RELIDS_STALE: Cell<bool> = const { Cell::new(false) };
    /// An invalidation was processed inside the current transaction (see the module comment).
    static CLEAR_AT_END: Cell<bool> = const { Cell::new(false) };
}

/// The tables (in schema tenant_data) whose changes empty the cache; each has the
/// registry_changed and registry_truncated triggers. signing_keys is sixth (see
/// on_relcache_invalidation); node_key (the Citus node key, node_context) last.
const CACHED_TABLES: [&std::ffi::CStr; 7] = [
    c"tenants",
    c"gateways",
    c"tenant_access",
    c"plans",
    c"limit_overrides",
    c"signing_keys",
    c"node_key",
];

pub fn init() {
    crate::xact::on_relcache(on_relcache_invalidation);
}

fn on_relcache_invalidation(relid: pg_sys::Oid) {
    // Until the registry's oids are known every invalidation clears the cache; that is cheap.
    let relids = REGISTRY_RELIDS.with(|r| r.get());
    let placements = PLACEMENT_RELIDS.with(|p| p.get());
    let ours = match relids {
        Some(relids) => {
            relid == pg_sys::Oid::INVALID || relids.contains(&relid) || placements.contains(&relid)
        }
        None => true,
    };
    if !ours {
        return;
    }
    clear();
    RELIDS_STALE.with(|s| s.set(true));
    // Tokens this session verified are verified again with the keys as they are now.
    if relids
        .is_none_or(|r| relid == pg_sys::Oid::INVALID || relid == r[5] || relid == placements[5])
    {
        if let Some(keys_changed) = KEYS_CHANGED.with(|k| k.get()) {
            keys_changed();
        }
    }
    if unsafe { pg_sys::IsTransactionState() } {
        CLEAR_AT_END.with(|c| c.set(true));
    }
}

/// Registers what to do when the signing keys change (the tokens verified with them, in
/// context::tokens, a feature that reads this cache).
pub fn on_keys_changed(f: fn()) {
    KEYS_CHANGED.with(|k| k.set(Some(f)));
}

/// The end of a transaction that processed an invalidation empties the cache again (registered
/// with crate::xact from _PG_init).
pub fn on_xact(event: pg_sys::XactEvent::Type) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_COMMIT
        | pg_sys::XactEvent::XACT_EVENT_ABORT
        | pg_sys::XactEvent::XACT_EVENT_PREPARE
        | pg_sys::XactEvent::XACT_EVENT_PARALLEL_COMMIT
        | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
            if CLEAR_AT_END.with(|c| c.replace(false)) =>
        {
            clear()
        }
        _ => {}
    }
}

pub fn clear() {
    CACHE.with(|c| *c.borrow_mut() = RegistryCache::default());
    crate::citus::forget();
    crate::node_context::forget_key();
}

fn remember_relids() {
    if REGISTRY_RELIDS.with(|r| r.get()).is_some() && !RELIDS_STALE.with(|s| s.get()) {
        return;
    }
    let ns = crate::owner::data_namespace();
    // A table missing (signing_keys in a database still at 0.1.0, node_key before 0.3.0) is
    // InvalidOid, which matches nothing more than the invalidation of every relation does.
    let relids = CACHED_TABLES.map(|name| unsafe { pg_sys::get_relname_relid(name.as_ptr(), ns) });
    if relids[0] != pg_sys::Oid::INVALID {
        let placements =
            CACHED_TABLES.map(|name| crate::citus::placement_relid(name.to_str().unwrap_or("")));
        PLACEMENT_RELIDS.with(|p| p.set(placements));
        REGISTRY_RELIDS.with(|r| r.set(Some(relids)));
        RELIDS_STALE.with(|s| s.set(false));
    }
}

/// Tells every session (this one at once, the others at their next transaction) to drop its
/// cache, as a change of the registry tables does.
pub fn invalidate_everywhere() {
    let ns = crate::owner::data_namespace();
    let plans = unsafe { pg_sys::get_relname_relid(c"plans".as_ptr(), ns) };
    if plans != pg_sys::Oid::INVALID {
        unsafe { pg_sys::CacheInvalidateRelcacheByRelid(plans) };
    }
    clear();
}

/// The cached value that `slot` finds in the cache, or `load`'s, which `store` then caches: the
/// one way every lookup below reads through the cache.
fn cached<V: Clone>(
    slot: impl FnOnce(&RegistryCache) -> Option<V>,
    load: impl FnOnce() -> V,
    store: impl FnOnce(&mut RegistryCache, V),
) -> V {
    remember_relids();
    if let Some(hit) = CACHE.with(|c| slot(&c.borrow())) {
        return hit;
    }
    let loaded = load();
    CACHE.with(|c| store(&mut c.borrow_mut(), loaded.clone()));
    loaded
}

/// The tenant a slug or id names (None: no such tenant), cached.
pub fn tenant(key: &str, load: impl FnOnce() -> Option<Tenant>) -> Option<Tenant> {
    cached(
        |c| c.tenants.get(key).cloned(),
        load,
        |c, v| {
            c.tenants.insert(key.to_string(), v);
        },
    )
}

pub fn legacy_grants(load: impl FnOnce() -> bool) -> bool {
    cached(|c| c.legacy_grants, load, |c, v| c.legacy_grants = Some(v))
}

pub fn gateways(load: impl FnOnce() -> Vec<RoleGrant>) -> Vec<RoleGrant> {
    cached(|c| c.gateways.clone(), load, |c, v| c.gateways = Some(v))
}

pub fn access(tenant: pgrx::Uuid, load: impl FnOnce() -> Vec<RoleGrant>) -> Vec<RoleGrant> {
    let key = *tenant.as_bytes();
    cached(
        |c| c.access.get(&key).cloned(),
        load,
        |c, v| {
            c.access.insert(key, v);
        },
    )
}

/// The settings in force for a tenant (its own over its plan's), cached.
pub fn context_settings(
    tenant: pgrx::Uuid,
    load: impl FnOnce() -> Vec<(String, String)>,
) -> Vec<(String, String)> {
    remember_relids();
    let key = *tenant.as_bytes();
    if let Some(hit) = CACHE.with(|c| c.borrow().settings.get(&key).cloned()) {
        return hit;
    }
    let loaded = load();
    CACHE.with(|c| c.borrow_mut().settings.insert(key, loaded.clone()));
    loaded
}

/// The quota in force for a tenant and resource (plan, override, period), cached.
pub fn quota(tenant: pgrx::Uuid, resource: &str, load: impl FnOnce() -> Quota) -> Quota {
    let key = (*tenant.as_bytes(), resource.to_string());
    cached(
        |c| c.quotas.get(&key).cloned(),
        load,
        |c, v| {
            c.quotas.insert(key.clone(), v);
        },
    )
}

/// The limit of a quota, cached like quota() but without copying the rest.
pub fn quota_limit(tenant: pgrx::Uuid, resource: &str, load: impl FnOnce() -> Quota) -> i64 {
    remember_relids();
    let hit = CACHE.with(|c| {
        c.borrow()
            .quotas
            .get(&(*tenant.as_bytes(), resource.to_string()))
            .map(|q| q.limit)
    });
    hit.unwrap_or_else(|| quota(tenant, resource, load).limit)
}

/// Remembers the current period's bounds of a cached quota, so they are computed once a period.
pub fn store_bounds(tenant: pgrx::Uuid, resource: &str, bounds: Option<(i64, i64)>) {
    let key = (*tenant.as_bytes(), resource.to_string());
    CACHE.with(|c| {
        if let Some(q) = c.borrow_mut().quotas.get_mut(&key) {
            q.set_bounds(bounds);
        }
    });
}

/// Row and TRUNCATE trigger on the registry tables: tells every session to drop its cache.
#[pg_trigger]
fn registry_changed<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, pgrx::AllocatedByPostgres>>, pgrx::PgTriggerError> {
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(trigger.relid()?) };
    Ok(None)
}

// The same tables as CACHED_TABLES (sql/upgrades/pg_tenant--0.2.0--0.3.0.sql makes the same;
// node_key's where it creates that table).
extension_sql!(
    r#"
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['tenants', 'gateways', 'tenant_access', 'plans', 'limit_overrides', 'signing_keys', 'node_key'] LOOP
        EXECUTE format('CREATE TRIGGER registry_changed AFTER INSERT OR UPDATE OR DELETE ON tenant_data.%I
                        FOR EACH ROW EXECUTE FUNCTION tenant.registry_changed()', t);
        EXECUTE format('CREATE TRIGGER registry_truncated AFTER TRUNCATE ON tenant_data.%I
                        FOR EACH STATEMENT EXECUTE FUNCTION tenant.registry_changed()', t);
        -- Also under session_replication_role = replica (as logical replication applies changes).
        EXECUTE format('ALTER TABLE tenant_data.%I ENABLE ALWAYS TRIGGER registry_changed,
                                              ENABLE ALWAYS TRIGGER registry_truncated', t);
    END LOOP;
END
$$;
"#,
    name = "registry_invalidation",
    requires = [
        "registry_tables",
        "quota_tables",
        "token_keys",
        registry_changed
    ]
);
