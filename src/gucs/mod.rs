//! The tenant parameter `pg_tenant.tenant_id`.
//!
//! It is a normal string GUC so that `SHOW`, transaction rollback, `SET LOCAL` semantics,
//! `RESET ALL`/`DISCARD ALL` and parallel workers all behave the PostgreSQL way. What makes it
//! tamper-proof is its check hook: it accepts a value only when `tenant.set()`/`set_local()`/
//! `reset()` have just authorized exactly that value, or while a parallel worker copies its
//! leader's state. `SET`, `set_config()`, `ALTER ROLE/DATABASE ... SET`, `PGOPTIONS` and placeholder
//! values from before the library was loaded all go through the hook and are refused.

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::{refuse_setting, sqlstate};

mod records;
use crate::txn_cell::TxCell;
use records::find_parameter;
pub use records::{
    assign_hook_value, changed_in_this_transaction, check_hook_value, set_config_option,
    set_locally_in_this_transaction, set_parameter,
};

pub const TENANT_GUC: &CStr = c"pg_tenant.tenant_id";

/// `pg_tenant.transaction_only` (superusers set it, typically `ALTER ROLE ... SET`): the session's
/// roles may act as tenants only for a transaction at a time, whatever their grants, tokens
/// included (a role that presents tokens needs no grant, so a grant cannot say it).
static mut TRANSACTION_ONLY: bool = false;
/// pg_tenant.tenant_hidden: see [`without_tenant`].
static mut TENANT_HIDDEN: bool = false;
/// pg_tenant.citus_routing: see crate::isolation::routing.
static mut CITUS_ROUTING: bool = true;
const TENANT_HIDDEN_GUC: &CStr = c"pg_tenant.tenant_hidden";

/// `pg_tenant.stats`: count per-tenant statement statistics (src/stats/), with the library
/// preloaded. Superusers turn it off (`ALTER SYSTEM`, `ALTER ROLE ... SET`) to compare.
static mut STATS: bool = true;
/// `pg_tenant.stats_max_tenants`: how many (database, tenant) pairs the statistics keep in shared
/// memory (set at server start; defined only when preloading).
static mut STATS_MAX_TENANTS: c_int = 1000;

/// The C string PostgreSQL keeps for the parameter (PostgreSQL owns the memory).
static mut TENANT_GUC_VALUE: *mut c_char = std::ptr::null_mut();

/// A session lock: the locked tenant and the iat of the token that locked it.
type Lock = ([u8; 16], i64);

thread_local! {
    /// The parsed value, refreshed by the assign hook, so `tenant.current()` does no parsing.
    static CURRENT: std::cell::Cell<Option<[u8; 16]>> = const { std::cell::Cell::new(None) };
    /// The session lock of tenant.set_token(..., lock => true): the locked tenant and the iat of
    /// the token that locked it. Not a parameter: RESET and set_config(..., NULL) reach a
    /// parameter without its check hook. It rolls back with its transaction or savepoint like the
    /// tenant it locks, and ends only with a newer token, RESET ALL or DISCARD ALL.
    static LOCK: RefCell<TxCell<Option<Lock>>> = const { RefCell::new(TxCell::none()) };
    /// The `exp` of the token that chose the tenant (tenant.set_token), scoped like the tenant:
    /// once it passes, the tenant it chose is no longer in force.
    static CONTEXT_EXP: RefCell<TxCell<Option<i64>>> = const { RefCell::new(TxCell::none()) };
    /// Who chose the tenant with tenant.set() or set_local() (and whether for the transaction
    /// only), scoped like the tenant: that role's right is checked again in each transaction, so
    /// a revoked grant ends the context. None when a token chose it (the token is the right).
    static CONTEXT_ORIGIN: RefCell<TxCell<Option<(pg_sys::Oid, bool)>>> = const { RefCell::new(TxCell::none()) };
    /// Whether a tenant context decided anything in this transaction (see context/mod.rs, WITH HOLD).
    static CONTEXT_USED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Counts transactions, so that a per-transaction judgement can be cached.
    static XACT_GEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// A (parameter, value) pg_tenant is about to apply; that parameter's check hook consumes it.
    static AUTHORIZED: RefCell<Option<(&'static CStr, String)>> = const { RefCell::new(None) };
    /// A parameter that decides the tenant (`pg_tenant.tenant_id`, `pg_tenant.token`) was
    /// assigned since the context last followed it (see [`context_parameters_changed`]).
    static PARAMETERS_CHANGED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// How many of pg_tenant's own GUC nest levels ([`in_nest_level`]) are open.
    static OWN_NEST_LEVELS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Whether `pg_tenant.tenant_id` or `pg_tenant.token` was assigned since
/// [`context_parameters_followed`]: by pg_tenant, or by a route no hook of pg_tenant sees
/// (`set_config()`, a connection's options, a placeholder applied when the library loaded, a
/// rollback). What the context keeps beside them (the tenant's settings, its sessions slot)
/// follows them at the next statement (context::follow_parameters).
#[inline]
pub fn context_parameters_changed() -> bool {
    PARAMETERS_CHANGED.with(|c| c.get())
}

/// The context followed the parameters (see [`context_parameters_changed`]).
pub fn context_parameters_followed() {
    PARAMETERS_CHANGED.with(|c| c.set(false));
}

/// Called from the assign hooks of the parameters that decide the tenant.
pub fn mark_context_parameters_changed() {
    PARAMETERS_CHANGED.with(|c| c.set(true));
}

/// Whether one of pg_tenant's own GUC nest levels is open ([`in_nest_level`]: a `SET` made
/// meanwhile is undone when it closes).
pub fn in_own_nest_level() -> bool {
    OWN_NEST_LEVELS.with(|n| n.get()) > 0
}

/// Set when the library loaded (not preloaded) and a non-superuser's connection options had set
/// one of pg_tenant's superuser-only parameters: PostgreSQL let that value replace the role's or
/// database's configured one, then refuses it when the parameter is defined, leaving the built-in
/// default. The session then fails closed: tokens are refused and it is transaction-only.
static mut OVERRIDDEN_BY_CLIENT: bool = false;

/// pg_tenant's parameters only a superuser may set.
const SUPERUSER_ONLY: [&CStr; 4] = [
    c"pg_tenant.transaction_only",
    c"pg_tenant.jwt_claim",
    c"pg_tenant.jwt_audience",
    c"pg_tenant.jwt_issuer",
];

/// See [`OVERRIDDEN_BY_CLIENT`].
pub fn settings_overridden_by_client() -> bool {
    unsafe { OVERRIDDEN_BY_CLIENT }
}

/// Before the parameters are defined: whether a placeholder of a superuser-only one came from a
/// non-superuser's connection options.
fn client_overrode_superuser_settings() -> bool {
    SUPERUSER_ONLY.iter().any(|name| {
        let record = find_parameter(name);
        !record.is_null()
            && unsafe {
                ((*record).flags & pg_sys::GUC_CUSTOM_PLACEHOLDER as c_int) != 0
                    && ((*record).source == pg_sys::GucSource::PGC_S_CLIENT
                        || (*record).reset_source == pg_sys::GucSource::PGC_S_CLIENT)
                    && !pg_sys::superuser_arg(client_role(record))
            }
    })
}

#[cfg(any(feature = "pg13", feature = "pg14"))]
unsafe fn client_role(_record: *mut pg_sys::config_generic) -> pg_sys::Oid {
    pg_sys::GetSessionUserId()
}

#[cfg(not(any(feature = "pg13", feature = "pg14")))]
unsafe fn client_role(record: *mut pg_sys::config_generic) -> pg_sys::Oid {
    if (*record).source == pg_sys::GucSource::PGC_S_CLIENT {
        (*record).srole
    } else {
        (*record).reset_srole
    }
}

pub fn init() {
    unsafe {
        OVERRIDDEN_BY_CLIENT = client_overrode_superuser_settings();
        pg_sys::DefineCustomStringVariable(
            TENANT_GUC.as_ptr(),
            c"The current tenant (read-only: change it with tenant.set(), tenant.set_local() or tenant.reset()).".as_ptr(),
            c"Empty when no tenant is set. SET, set_config() and role or database defaults are refused.".as_ptr(),
            &raw mut TENANT_GUC_VALUE,
            c"".as_ptr(),
            pg_sys::GucContext::PGC_USERSET,
            (pg_sys::GUC_NOT_IN_SAMPLE | pg_sys::GUC_DISALLOW_IN_FILE | pg_sys::GUC_DISALLOW_IN_AUTO_FILE) as c_int,
            Some(check_tenant_guc),
            Some(assign_tenant_guc),
            Some(show_tenant_guc),
        );
        pg_sys::DefineCustomBoolVariable(
            c"pg_tenant.transaction_only".as_ptr(),
            c"Act as tenants only for a transaction at a time (set_local, set_token(..., local => true), SET LOCAL pg_tenant.token).".as_ptr(),
            c"Superusers set it, for a role behind a transaction pooler: ALTER ROLE ... SET pg_tenant.transaction_only = on.".as_ptr(),
            &raw mut TRANSACTION_ONLY,
            false,
            pg_sys::GucContext::PGC_SUSET,
            pg_sys::GUC_NOT_IN_SAMPLE as c_int,
            None,
            None,
            None,
        );
        pg_sys::DefineCustomBoolVariable(
            TENANT_HIDDEN_GUC.as_ptr(),
            c"Set by pg_tenant while it runs a table owner's code on someone else's behalf: the session acts as no tenant.".as_ptr(),
            c"A setting, not a flag in memory, so that parallel workers (a parallel index build in the owner's code, say) copy it.".as_ptr(),
            &raw mut TENANT_HIDDEN,
            false,
            pg_sys::GucContext::PGC_SUSET,
            (pg_sys::GUC_NOT_IN_SAMPLE
                | pg_sys::GUC_NO_SHOW_ALL
                | pg_sys::GUC_NO_RESET_ALL
                | pg_sys::GUC_DISALLOW_IN_FILE
                | pg_sys::GUC_DISALLOW_IN_AUTO_FILE) as c_int,
            None,
            Some(assign_tenant_hidden),
            None,
        );
        pg_sys::DefineCustomBoolVariable(
            c"pg_tenant.citus_routing".as_ptr(),
            c"On a Citus coordinator, send a tenant's queries on tables distributed by their tenant column to the tenant's shard only.".as_ptr(),
            c"pg_tenant adds tenant_column = <the current tenant> where the row-security policy already demands it; off: every query asks every shard, as the policy alone does.".as_ptr(),
            &raw mut CITUS_ROUTING,
            true,
            pg_sys::GucContext::PGC_USERSET,
            pg_sys::GUC_NOT_IN_SAMPLE as c_int,
            None,
            None,
            None,
        );
        pg_sys::DefineCustomBoolVariable(
            c"pg_tenant.stats".as_ptr(),
            c"Count per-tenant statement statistics (tenant.stats); needs pg_tenant in shared_preload_libraries.".as_ptr(),
            c"Off: statements are not counted (what is counted stays readable).".as_ptr(),
            &raw mut STATS,
            true,
            pg_sys::GucContext::PGC_SUSET,
            0,
            None,
            None,
            None,
        );
        if pg_sys::process_shared_preload_libraries_in_progress {
            pg_sys::DefineCustomIntVariable(
                c"pg_tenant.stats_max_tenants".as_ptr(),
                c"Tenants (per database) whose statement statistics shared memory keeps; a tenant beyond them is not counted until tenant.stats_reset() frees room.".as_ptr(),
                c"Takes effect at server start; needs pg_tenant in shared_preload_libraries; 0 keeps no statistics.".as_ptr(),
                &raw mut STATS_MAX_TENANTS,
                1000,
                0,
                1_000_000,
                pg_sys::GucContext::PGC_POSTMASTER,
                0,
                None,
                None,
                None,
            );
        }
    }
}

/// Whether pg_tenant.citus_routing is on.
#[inline]
pub fn citus_routing() -> bool {
    unsafe { CITUS_ROUTING }
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_tenant_hidden(_newval: bool, _extra: *mut c_void) {
    crate::tenant_plans::context_changed();
}

/// Whether `pg_tenant.stats` is on.
#[inline]
pub fn stats_on() -> bool {
    unsafe { STATS }
}

/// `pg_tenant.stats_max_tenants` (read when shared memory is sized, at server start).
pub fn stats_max_tenants() -> usize {
    unsafe { STATS_MAX_TENANTS.max(0) as usize }
}

/// After every pg_tenant parameter is defined (here and by the features, from _PG_init): drops
/// any other "pg_tenant.*" placeholder and refuses new ones.
pub fn reserve_prefix() {
    #[cfg(not(any(feature = "pg13", feature = "pg14")))]
    unsafe {
        pg_sys::MarkGUCPrefixReserved(c"pg_tenant".as_ptr())
    };
}

/// What the tenant context (context/, a feature above this layer) decides about the tenant that
/// [`current_tenant`] returns; registered from _PG_init by [`on_current_tenant`].
#[derive(Clone, Copy)]
pub struct ContextRules {
    /// The tenant the parameter `pg_tenant.token` names, when it is set.
    pub token_parameter_tenant: fn() -> Option<pgrx::Uuid>,
    /// The tenant a Citus coordinator passed to this node for the current role (pg_tenant.context).
    pub node_tenant: fn() -> Option<pgrx::Uuid>,
    /// Raises when the token that chose the tenant (its `exp`, if a token did) has expired.
    pub refuse_if_expired: fn(Option<i64>),
    /// Raises when the role that chose the tenant may no longer act as it.
    pub refuse_if_no_longer_allowed: fn(pgrx::Uuid),
    /// The role whose read-only grant chose the current context, if one did.
    pub read_only: fn() -> Option<pg_sys::Oid>,
}

/// The role whose read-only grant chose the current context, if one did: writes to protected
/// tables and tenant schemas are refused (registry::require_writable).
pub fn context_read_only() -> Option<pg_sys::Oid> {
    (context_rules().read_only)()
}

static CONTEXT_RULES: std::sync::OnceLock<ContextRules> = std::sync::OnceLock::new();

/// Registers the tenant context's rules (once, from _PG_init).
pub fn on_current_tenant(rules: ContextRules) {
    let _ = CONTEXT_RULES.set(rules);
}

fn context_rules() -> &'static ContextRules {
    CONTEXT_RULES
        .get()
        .expect("_PG_init registers the tenant context's rules")
}

/// The current tenant, or None: the one `pg_tenant.token` names when that is set (resolved once
/// per token, see context/tokens/parameter.rs), else the one tenant.set()/set_local()/set_token()
/// chose, else the one a Citus coordinator passed to this node (node_context.rs).
#[inline]
pub fn current_tenant() -> Option<pgrx::Uuid> {
    // Outside a transaction that can run statements (a failed transaction's ROLLBACK or COMMIT,
    // an abort's cleanup) no row is read or written, and judging the context may read catalogs,
    // which must not happen there (locks taken then outlive their resource owner): no tenant.
    if tenant_hidden() || !unsafe { pg_sys::IsTransactionState() } {
        return None;
    }
    let rules = context_rules();
    if let Some(id) = (rules.token_parameter_tenant)() {
        CONTEXT_USED.with(|u| u.set(true));
        return Some(id);
    }
    let Some(id) = set_tenant() else {
        let id = (rules.node_tenant)()?;
        CONTEXT_USED.with(|u| u.set(true));
        return Some(id);
    };
    // A tenant chosen by a token lasts no longer than the token; one chosen by tenant.set() as
    // long as the right of the role that chose it; a locked session's is the lock's.
    (rules.refuse_if_expired)(context_expiry());
    (rules.refuse_if_no_longer_allowed)(id);
    if session_lock().is_some_and(|(locked, _)| locked != id) {
        crate::error::TenantError::SessionLocked.raise();
    }
    CONTEXT_USED.with(|u| u.set(true));
    Some(id)
}

/// Runs `f` acting as no tenant, whatever the session's context: for a table owner's code that
/// pg_tenant runs on someone else's behalf (owner::as_table_owner, as_role_restricted), which
/// must not borrow the caller's tenant. pg_tenant.tenant_hidden is on meanwhile, as a function's
/// SET clause would set it (parallel workers copy it; only a superuser could change it, RESET ALL
/// leaves it); the context itself is untouched and back when `f` ends, however it ends.
pub fn without_tenant<R>(f: impl FnOnce() -> R) -> R {
    in_nest_level(|| {
        unsafe {
            pg_sys::set_config_option(
                TENANT_HIDDEN_GUC.as_ptr(),
                c"on".as_ptr(),
                pg_sys::GucContext::PGC_SUSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                pg_sys::PGERROR as c_int,
                false,
            );
        }
        f()
    })
}

/// Whether the session's tenant is hidden now (see [`without_tenant`]).
pub fn tenant_hidden() -> bool {
    unsafe { TENANT_HIDDEN }
}

/// What decides the session's tenant, as one number: the values of pg_tenant.tenant_id,
/// pg_tenant.token and pg_tenant.context and whether the tenant is hidden. A statement that
/// writes rows compares it when it starts and when it finishes (quotas::row_counter): its write
/// guard judged the tenant once, before its first row.
pub fn context_fingerprint() -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for name in [TENANT_GUC, c"pg_tenant.token", c"pg_tenant.context"] {
        let value = unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) };
        if value.is_null() {
            0u8.hash(&mut hasher);
        } else {
            unsafe { CStr::from_ptr(value) }
                .to_bytes()
                .hash(&mut hasher);
        }
    }
    tenant_hidden().hash(&mut hasher);
    hasher.finish()
}

/// Whether pg_tenant.transaction_only is on for this session.
pub fn transaction_only_setting() -> bool {
    unsafe { TRANSACTION_ONLY || OVERRIDDEN_BY_CLIENT }
}

/// The tenant chosen by tenant.set()/set_local()/set_token(), or None. No SPI, no catalog access.
#[inline]
pub fn set_tenant() -> Option<pgrx::Uuid> {
    CURRENT.with(|c| c.get()).map(pgrx::Uuid::from_bytes)
}

/// The tenant and token iat the session is locked to (tenant.set_token(..., lock => true)).
#[inline]
pub fn session_lock() -> Option<(pgrx::Uuid, i64)> {
    LOCK.with(|l| *l.borrow().get())
        .map(|(id, iat)| (pgrx::Uuid::from_bytes(id), iat))
}

/// The `exp` of the token that chose the current tenant, if a token did.
#[inline]
pub fn context_expiry() -> Option<i64> {
    CONTEXT_EXP.with(|e| *e.borrow().get())
}

fn nest_level() -> i32 {
    unsafe { pg_sys::GetCurrentTransactionNestLevel() }
}

/// Applies `value` (a canonical uuid, or "" for none) through PostgreSQL's GUC machinery, so that
/// it is undone by rollback, and for `local` at the end of the transaction.
pub fn apply(value: &str, local: bool) {
    apply_authorized(TENANT_GUC, value, local);
}

/// Locks the session to `lock` (tenant, iat), or unlocks it (None), with the scope of `local`.
pub fn apply_lock(lock: Option<(pgrx::Uuid, i64)>, local: bool) {
    let value = lock.map(|(id, iat)| (*id.as_bytes(), iat));
    LOCK.with(|l| l.borrow_mut().set(value, local, nest_level()));
}

/// RESET ALL or DISCARD ALL (a pooler's reset): the session lock ends (at commit).
pub fn end_lock() {
    LOCK.with(|l| l.borrow_mut().set(None, false, nest_level()));
}

/// Records the `exp` of the token that chose the tenant just applied (None: not a token).
pub fn apply_context_expiry(exp: Option<i64>, local: bool) {
    CONTEXT_EXP.with(|e| e.borrow_mut().set(exp, local, nest_level()));
}

/// Records who chose the tenant just applied, and whether for the transaction only (None: a
/// token chose it, or no tenant).
pub fn apply_context_origin(origin: Option<(pg_sys::Oid, bool)>, local: bool) {
    CONTEXT_ORIGIN.with(|o| o.borrow_mut().set(origin, local, nest_level()));
}

/// The role that chose the current tenant with tenant.set()/set_local(), and whether for the
/// transaction only.
#[inline]
pub fn context_origin() -> Option<(pg_sys::Oid, bool)> {
    CONTEXT_ORIGIN.with(|o| *o.borrow().get())
}

/// A number that changes at the end of every transaction.
#[inline]
pub fn transaction_generation() -> u64 {
    XACT_GEN.with(|g| g.get())
}

/// Transaction events for the session lock and the context expiry (registered with crate::xact
/// from _PG_init).
pub fn on_xact(event: pg_sys::XactEvent::Type) {
    let Some(committed) = crate::xact::ended(event) else {
        return;
    };
    LOCK.with(|l| l.borrow_mut().on_xact(committed));
    CONTEXT_EXP.with(|e| e.borrow_mut().on_xact(committed));
    CONTEXT_ORIGIN.with(|o| o.borrow_mut().on_xact(committed));
    XACT_GEN.with(|g| g.set(g.get().wrapping_add(1)));
    CONTEXT_USED.with(|u| u.set(false));
    // No nest level of pg_tenant's outlives its transaction (should an error have skipped the
    // count's decrement).
    OWN_NEST_LEVELS.with(|n| n.set(0));
    // An error may have left the context's bookkeeping half followed: judged again.
    if !committed {
        mark_context_parameters_changed();
    }
}

/// Whether tenant.current() found a tenant in force at any time in this transaction.
pub fn context_used_in_transaction() -> bool {
    CONTEXT_USED.with(|u| u.get())
}

/// Subtransaction events for the same (registered with crate::xact).
pub fn on_subxact(event: pg_sys::SubXactEvent::Type, level: i32) {
    let committed = match event {
        pg_sys::SubXactEvent::SUBXACT_EVENT_COMMIT_SUB => true,
        pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB => false,
        _ => return,
    };
    LOCK.with(|l| l.borrow_mut().on_subxact(committed, level));
    CONTEXT_EXP.with(|e| e.borrow_mut().on_subxact(committed, level));
    CONTEXT_ORIGIN.with(|o| o.borrow_mut().on_subxact(committed, level));
}

/// Sets one of pg_tenant's guarded parameters to a value pg_tenant authorized; their check hooks
/// refuse every other value.
fn apply_authorized(name: &'static CStr, value: &str, local: bool) {
    struct Revoke;
    impl Drop for Revoke {
        fn drop(&mut self) {
            AUTHORIZED.with(|a| a.borrow_mut().take());
        }
    }
    let _revoke = Revoke;
    AUTHORIZED.with(|a| *a.borrow_mut() = Some((name, value.to_string())));
    set_parameter(name, value, set_action(local));
}

/// Whether pg_tenant just authorized exactly this value for this parameter (consumed once).
fn take_authorized(name: &CStr, value: &str) -> bool {
    AUTHORIZED.with(|a| {
        let mut a = a.borrow_mut();
        let matches = matches!(a.as_ref(), Some((n, v)) if *n == name && v == value);
        if matches {
            a.take();
        }
        matches
    })
}

/// `SET LOCAL` (until the end of the transaction) when `local`, else `SET` (for the session).
pub fn set_action(local: bool) -> pg_sys::GucAction::Type {
    if local {
        pg_sys::GucAction::GUC_ACTION_LOCAL
    } else {
        pg_sys::GucAction::GUC_ACTION_SET
    }
}

/// Runs `f` with these settings, then restores them (as a function's SET clause does), however
/// `f` ends: an error caught further up (without a subtransaction) finds the caller's settings.
pub fn with_settings<R>(settings: &[(&str, String)], f: impl FnOnce() -> R) -> R {
    in_nest_level(|| {
        for (name, value) in settings {
            let name = CString::new(*name).expect("setting name");
            set_parameter(&name, value, pg_sys::GucAction::GUC_ACTION_SAVE);
        }
        f()
    })
}

/// Runs `f` in a GUC nest level of its own: every setting changed inside (with a function's SET
/// clause action, or a plain SET in user code `f` runs) is undone when `f` ends, however it ends,
/// as a function's SET clause does on error.
pub fn in_nest_level<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(c_int);
    impl Drop for Restore {
        fn drop(&mut self) {
            OWN_NEST_LEVELS.with(|n| n.set(n.get().saturating_sub(1)));
            unsafe { pg_sys::AtEOXact_GUC(false, self.0) };
        }
    }
    let _restore = Restore(unsafe { pg_sys::NewGUCNestLevel() });
    OWN_NEST_LEVELS.with(|n| n.set(n.get() + 1));
    f()
}

#[pg_guard]
unsafe extern "C-unwind" fn check_tenant_guc(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    source: pg_sys::GucSource::Type,
) -> bool {
    let value = check_hook_value(newval);
    // A parallel worker copying its leader's value: the leader already authorized it.
    if pg_sys::InitializingParallelWorker || take_authorized(TENANT_GUC, &value) {
        return true;
    }
    // The boot value, applied when the parameter is defined, or RESET pg_tenant.tenant_id (which
    // is tenant.reset(), and like it refused while a token locks the session).
    if source == pg_sys::GucSource::PGC_S_DEFAULT && value.is_empty() {
        if session_lock().is_none() {
            return true;
        }
        return refuse_setting(
            sqlstate::CANT_CHANGE_PARAMETER,
            "the session is locked to its tenant token: only a newer token can change the tenant",
            Some("RESET ALL or DISCARD ALL end the lock."),
        );
    }
    refuse_setting(
        sqlstate::CANT_CHANGE_PARAMETER,
        "parameter \"pg_tenant.tenant_id\" can only be changed by tenant.set(), tenant.set_local() or tenant.reset()",
        Some("SET, set_config() and role, database or connection defaults cannot choose the tenant."),
    )
}

/// SHOW and current_setting(): the tenant's id, or "" while it is hidden (see [`without_tenant`]).
unsafe extern "C-unwind" fn show_tenant_guc() -> *const c_char {
    if TENANT_HIDDEN || TENANT_GUC_VALUE.is_null() {
        c"".as_ptr()
    } else {
        TENANT_GUC_VALUE
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn assign_tenant_guc(newval: *const c_char, _extra: *mut c_void) {
    let parsed = if newval.is_null() {
        None
    } else {
        CStr::from_ptr(newval)
            .to_str()
            .ok()
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .map(|u| *u.as_bytes())
    };
    CURRENT.with(|c| c.set(parsed));
    mark_context_parameters_changed();
    crate::tenant_plans::context_changed();
}
