//! The tenant context: `tenant.set`, `set_local`, `reset` and `current`, and the rule for who may
//! act as which tenant.

mod hooks;
pub mod info;
pub mod settings;
pub mod tokens;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::{guarded, required, TenantError};
use crate::gucs;
use crate::owner::{current_role, extension_owner, has_privileges_of, is_superuser, role_name};
use crate::registry;
use crate::types::RoleGrant;
use crate::types::Tenant;

/// How far a role's right to act as a tenant reaches.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum Right {
    None,
    /// Granted with transaction_only: set_local, set_token(..., local => true), SET LOCAL.
    Transaction,
    Session,
}

fn right_of(role: pg_sys::Oid, grants: &[RoleGrant]) -> Right {
    grants
        .iter()
        .filter(|g| has_privileges_of(role, g.role))
        .map(|g| {
            if g.transaction_only {
                Right::Transaction
            } else {
                Right::Session
            }
        })
        .fold(Right::None, |a, b| if b > a { b } else { a })
}

/// Superusers, members of the extension owner, and gateway roles may act as any tenant.
fn right_to_any_tenant(role: pg_sys::Oid) -> Right {
    if is_superuser(role) || has_privileges_of(role, extension_owner()) {
        return Right::Session;
    }
    right_of(role, &registry::gateway_roles())
}

/// Whether `role` may act as any tenant: None if not, else Some(transaction_only).
pub fn right_to_any(role: pg_sys::Oid) -> Option<bool> {
    match right_to_any_tenant(role) {
        Right::None => None,
        Right::Transaction => Some(true),
        Right::Session => Some(false),
    }
}

/// Whether `role` may act as `tenant`: None if not, else Some(transaction_only).
pub fn right_to(role: pg_sys::Oid, tenant: pgrx::Uuid) -> Option<bool> {
    let any = right_to_any_tenant(role);
    let own = right_of(role, &registry::access_roles(tenant));
    match if own > any { own } else { any } {
        Right::None => None,
        Right::Transaction => Some(true),
        Right::Session => Some(false),
    }
}

/// Whether the current role may act as tenants only for a transaction at a time: its rights all
/// come from grants made with transaction_only (the strongest grant a role has wins).
pub fn transaction_only_role() -> bool {
    if gucs::transaction_only_setting() {
        return true;
    }
    let role = current_role();
    match right_to_any_tenant(role) {
        Right::Session => false,
        Right::Transaction => true,
        Right::None => registry::transaction_only_access_roles()
            .into_iter()
            .any(|r| has_privileges_of(role, r)),
    }
}

/// Whether `role` may write while acting as `tenant` in a context of this scope (`local`: for the
/// transaction): some grant it holds allows that scope and was not made with read_only. The
/// stronger grant wins: a role with a read-only gateway and a writing grant for one tenant writes
/// as that tenant. Superusers and members of the extension owner always write.
pub fn writes_as(role: pg_sys::Oid, tenant: pgrx::Uuid, local: bool) -> bool {
    if is_superuser(role) || has_privileges_of(role, extension_owner()) {
        return true;
    }
    registry::gateway_roles()
        .into_iter()
        .chain(registry::access_roles(tenant))
        .any(|g| has_privileges_of(role, g.role) && (local || !g.transaction_only) && !g.read_only)
}

/// A context as judged once per transaction: (transaction, role that chose it, tenant, local).
type ContextKey = (u64, pg_sys::Oid, [u8; 16], bool);

thread_local! {
    /// The context last judged, and whether it writes.
    static WRITES: std::cell::Cell<Option<(ContextKey, bool)>> = const { std::cell::Cell::new(None) };
}

/// The role whose read-only grant chose the current context, if one did (a context a token
/// chose, or none, is not read-only). Judged once per transaction, as the right itself.
fn read_only_context() -> Option<pg_sys::Oid> {
    let Some((role, local)) = gucs::context_origin() else {
        // On a Citus worker the context is the node token the coordinator minted after judging
        // the role's grants there (the grants are not on the workers); it says read-only.
        return crate::node_context::node_read_only().then(current_role);
    };
    // (The node context set_local() passed on is the tenant when pg_tenant.tenant_id was reset
    // by other means than tenant.reset(): set_config(..., NULL), say.)
    let tenant = gucs::set_tenant().or_else(crate::node_context::node_tenant)?;
    let key = (
        gucs::transaction_generation(),
        role,
        *tenant.as_bytes(),
        local,
    );
    let writes = match WRITES.with(|w| w.get()) {
        Some((k, writes)) if k == key => writes,
        _ => {
            let writes = writes_as(role, tenant, local);
            WRITES.with(|w| w.set(Some((key, writes))));
            writes
        }
    };
    (!writes).then_some(role)
}

/// A role that reads through a read-only grant is recorded in the audit log at every tenant.set()
/// and set_local(): who looked at which tenant, and when. The audit row goes with the caller's
/// transaction (a rollback takes it); the server log line written with it stays. Returns whether
/// the role reads only.
fn audit_read_only(t: &Tenant, local: bool) -> bool {
    let role = current_role();
    let read_only = !writes_as(role, t.id, local);
    if read_only {
        crate::error::log_server(&format!(
            "pg_tenant: read-only access: role {} (session user {}) acts as tenant \"{}\" ({}){}",
            role_name(role),
            role_name(unsafe { pg_sys::GetSessionUserId() }),
            t.slug,
            t.id,
            if local { " for the transaction" } else { "" }
        ));
        crate::registry::audit::record(
            "read_only_access",
            Some(t.id),
            serde_json::json!({"slug": t.slug, "role": role_name(role), "local": local}),
        );
    }
    read_only
}

/// Resolves `key` and checks the current role may act as it, for the transaction (`local`) or
/// the session. A role with no right to the tenant is told so whether or not the tenant exists,
/// so unprivileged roles cannot probe for slugs.
fn authorize(key: Option<&str>, local: bool) -> Tenant {
    let key = required(key, "tenant");
    let role = current_role();
    let any = right_to_any_tenant(role);
    let denied = || TenantError::NotAllowedToActAs {
        tenant: key.to_string(),
        role: role_name(role),
    };
    let (t, right) = match registry::lookup(key) {
        Some(t) => {
            let own = right_of(role, &registry::access_roles(t.id));
            (t, if own > any { own } else { any })
        }
        None if any != Right::None => TenantError::UnknownTenant(key.to_string()).raise(),
        None => denied().raise(),
    };
    match right {
        Right::None => denied().raise(),
        Right::Transaction if !local => TenantError::TransactionOnly(role_name(role)).raise(),
        _ if !local && gucs::transaction_only_setting() => {
            TenantError::TransactionOnly(role_name(role)).raise()
        }
        _ => t,
    }
}

/// Makes `t` the session's tenant (or the transaction's, `local`), with its schema on the
/// search_path for a schema tenant, until `exp` when a token chose it. The caller has checked
/// that it may.
pub fn enter(t: &Tenant, local: bool, exp: Option<i64>) {
    // First, so that a tenant whose sessions are all taken changes nothing.
    crate::quotas::sessions::occupy(t.id, local);
    let previous = gucs::set_tenant();
    gucs::apply(&t.id.to_string(), local);
    gucs::apply_context_expiry(exp, local);
    let origin = exp.is_none().then(|| (current_role(), local));
    gucs::apply_context_origin(origin, local);
    CHECKED.with(|c| c.set(None));
    crate::schemas::apply_search_path(previous, Some(t), local);
    settings::switch_to(Some(t.id), local);
}

#[pg_extern(sql = r#"
CREATE FUNCTION tenant."set"(tenant text)
RETURNS uuid VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant."set"(text) IS 'pg_tenant: act as this tenant (slug or id) for the rest of the session';
"#)]
fn set(tenant: Option<&str>) -> pgrx::Uuid {
    guarded(|| {
        refuse_in_restricted_operation("tenant.set()");
        crate::context::tokens::refuse_if_locked();
        let t = authorize(tenant, false);
        audit_read_only(&t, false);
        enter(&t, false, None);
        crate::node_context::end_for_workers();
        t.id
    })
}

#[pg_extern(sql = r#"
CREATE FUNCTION tenant.set_local(tenant text)
RETURNS uuid VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.set_local(text) IS 'pg_tenant: act as this tenant (slug or id) until the end of the current transaction';
"#)]
fn set_local(tenant: Option<&str>) -> pgrx::Uuid {
    guarded(|| {
        refuse_in_restricted_operation("tenant.set_local()");
        crate::context::tokens::refuse_if_locked();
        let t = authorize(tenant, true);
        let read_only = audit_read_only(&t, true);
        if !unsafe { pg_sys::IsTransactionBlock() } {
            crate::error::warn("tenant.set_local() outside a transaction block lasts only until the end of this statement");
        }
        enter(&t, true, None);
        crate::node_context::pass_to_workers(t.id, None, read_only);
        t.id
    })
}

#[pg_extern(sql = r#"
CREATE FUNCTION tenant.reset()
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.reset() IS 'pg_tenant: leave the tenant context (no tenant is set afterwards)';
"#)]
fn reset() {
    guarded(|| reset_context("tenant.reset()"))
}

/// tenant.reset(), and `RESET pg_tenant.tenant_id` / `SET pg_tenant.tenant_id TO DEFAULT`
/// (which PostgreSQL applies without asking the parameter's check hook; hooks.rs runs this
/// first): no tenant afterwards, its origin, expiry, schema path and node context gone too.
pub fn reset_context(what: &'static str) {
    refuse_in_restricted_operation(what);
    crate::context::tokens::refuse_if_locked();
    let previous = gucs::set_tenant();
    gucs::apply("", false);
    gucs::apply_context_expiry(None, false);
    gucs::apply_context_origin(None, false);
    crate::schemas::apply_search_path(previous, None, false);
    settings::switch_to(None, false);
    crate::node_context::end_for_workers();
    crate::quotas::sessions::vacate();
}

/// The current tenant. STABLE (never IMMUTABLE: cached plans must see a switch) and parallel
/// safe; reads a value the GUC's assign hook already parsed, with no SPI or catalog access.
#[pg_extern(sql = r#"
CREATE FUNCTION tenant."current"(missing_ok boolean DEFAULT false)
RETURNS uuid STABLE PARALLEL SAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant."current"(boolean) IS 'pg_tenant: the current tenant''s id; raises PT001 when none is set unless missing_ok';
"#)]
fn current(missing_ok: Option<bool>) -> Option<pgrx::Uuid> {
    guarded(|| match gucs::current_tenant() {
        Some(id) => Some(id),
        None if missing_ok.unwrap_or(false) => None,
        None => TenantError::NoTenant.raise(),
    })
}

thread_local! {
    /// (transaction, role, tenant) whose right was last found still in force.
    static CHECKED: std::cell::Cell<Option<(u64, pg_sys::Oid, [u8; 16])>> = const { std::cell::Cell::new(None) };
}

/// A tenant chosen by tenant.set()/set_local() stays in force only while the role that chose it
/// may still act as it (a revoked gateway or access grant, or one narrowed to transaction_only,
/// ends a session-level context at the next transaction). Checked once per transaction. A
/// session refused so gives its `sessions` slot back at once; should the grant come back, the
/// slot is taken again (or the quota error raised) before the tenant counts.
pub fn refuse_if_no_longer_allowed(tenant: pgrx::Uuid) {
    // A parallel worker runs for its leader, which checked.
    if unsafe { pg_sys::ParallelWorkerNumber } >= 0 {
        return;
    }
    if !still_allowed(tenant, true) {
        let role = gucs::context_origin().map_or_else(current_role, |(role, _)| role);
        TenantError::NotAllowedToActAs {
            tenant: tenant.to_string(),
            role: role_name(role),
        }
        .raise();
    }
}

/// Whether the role that chose `tenant` with tenant.set()/set_local() may still act as it
/// (true for a context a token chose); judged once per transaction. A session-level context
/// found no longer allowed gives its `sessions` slot back; one allowed again takes it back at
/// its next use (`at_use`: the tenant is about to count), which may raise the quota error.
fn still_allowed(tenant: pgrx::Uuid, at_use: bool) -> bool {
    let Some((role, local)) = gucs::context_origin() else {
        // A context a token chose (set_token()): no grant to judge, but a slot it lost
        // (pg_advisory_unlock_all()) is taken back at its use like any.
        if at_use {
            crate::quotas::sessions::take_back(tenant);
        }
        return true;
    };
    let generation = gucs::transaction_generation();
    let key = (generation, role, *tenant.as_bytes());
    // (Judged again for a slot to take back, lost in this transaction.)
    if CHECKED.with(|c| c.get()) == Some(key)
        && !(at_use && crate::quotas::sessions::owes_slot(tenant))
    {
        return true;
    }
    let allowed = match right_to(role, tenant) {
        None => false,
        Some(transaction_only) => local || !transaction_only,
    };
    if !allowed {
        if !local {
            crate::quotas::sessions::give_back_revoked(tenant);
        }
        return false;
    }
    if at_use {
        crate::quotas::sessions::take_back(tenant);
    } else if crate::quotas::sessions::owes_slot(tenant) {
        // Judged again at the use, which takes the slot back.
        return true;
    }
    CHECKED.with(|c| c.set(Some(key)));
    true
}

thread_local! {
    /// Set while [`follow_parameters`] runs (what it runs starts statements of its own).
    static FOLLOWING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// The transaction (gucs::transaction_generation) whose first statement judged the right of
    /// the role that chose the session's tenant.
    static JUDGED_AT_START: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// As each statement starts (context/hooks.rs, with the ceiling): what pg_tenant keeps beside
/// the parameters that decide the tenant follows them when they changed by a route none of its
/// functions or hooks sees, and a revoked grant gives its `sessions` slot back.
///
/// - `pg_tenant.token` given through `set_config()`, a connection's options or a placeholder
///   `SET` before the library loaded: the tenant it names gets its settings, with the value's
///   scope (only a token whose use would be accepted; a refused one is refused where it is used).
/// - `pg_tenant.tenant_id` emptied by `set_config(..., NULL)` (PostgreSQL's RESET, which asks no
///   check hook and runs no statement pg_tenant's utility hook sees): what tenant.reset() ends
///   ends too (settings, origin, expiry, the tenant's schema on the search_path and, for the
///   session, its slot), with that change's scope.
/// - The first statement of each transaction judges the right of the role that chose the
///   session's tenant (see [`still_allowed`]): a revoked session's slot is given back even if it
///   never uses the tenant again.
///
/// Never raises for a bad token; not in a parallel worker, in a security-restricted operation,
/// while pg_tenant hides the tenant or runs its own statements, nor while a statement writes
/// rows (that statement fails when it finishes if the tenant changed, see
/// quotas::row_counter): the next statement follows.
pub fn follow_parameters() {
    // A session slot lost to pg_advisory_unlock_all() (whatever chose the tenant: set(),
    // set_token()) is noticed at the next statement, in the same transaction too, before
    // anything else (and at the executor's start: context/hooks.rs). It reads no catalog.
    crate::quotas::sessions::notice_if_lost();
    let changed = gucs::context_parameters_changed();
    let generation = gucs::transaction_generation();
    let judge = JUDGED_AT_START.with(|j| j.get()) != Some(generation)
        && gucs::set_tenant().is_some()
        && gucs::context_origin().is_some_and(|(_, local)| !local);
    if !changed && !judge {
        return;
    }
    if FOLLOWING.with(|f| f.get()) || !can_follow_now() {
        return;
    }
    FOLLOWING.with(|f| f.set(true));
    // (The flag is cleared before an error leaves: guarded() reports it with a longjmp that runs
    // no destructor of the frames it leaves.)
    let followed = std::panic::catch_unwind(|| {
        if changed {
            gucs::context_parameters_followed();
            follow_changed_parameters();
        }
        if judge {
            JUDGED_AT_START.with(|j| j.set(Some(generation)));
            if let Some(tenant) = gucs::set_tenant() {
                still_allowed(tenant, false);
            }
        }
    });
    FOLLOWING.with(|f| f.set(false));
    if let Err(error) = followed {
        std::panic::resume_unwind(error);
    }
}

/// Whether the context's bookkeeping may change now (see [`follow_parameters`]).
fn can_follow_now() -> bool {
    let state = unsafe {
        pg_sys::IsTransactionState()
            && !pg_sys::IsInParallelMode()
            && pg_sys::ParallelWorkerNumber < 0
            && !pg_sys::InSecurityRestrictedOperation()
            // (Catalog reads need a snapshot, or a portal that takes one.)
            && (pg_sys::ActiveSnapshotSet() || !pg_sys::ActivePortal.is_null())
    };
    state
        && !gucs::tenant_hidden()
        && !gucs::in_own_nest_level()
        && !crate::quotas::row_counter::writing()
}

/// See [`follow_parameters`].
fn follow_changed_parameters() {
    let chosen = gucs::set_tenant();
    if chosen.is_none()
        && (gucs::context_origin().is_some()
            || gucs::context_expiry().is_some()
            || crate::quotas::sessions::session_tenant().is_some())
    {
        let local = gucs::set_locally_in_this_transaction(gucs::TENANT_GUC);
        gucs::apply_context_expiry(None, local);
        gucs::apply_context_origin(None, local);
        crate::schemas::apply_search_path(None, None, local);
        if !local {
            crate::quotas::sessions::vacate();
        }
    }
    // The settings of the tenant that decides: the token's, else the one tenant.set() chose.
    let deciding = tokens::parameter_tenant_quietly().or(chosen);
    if deciding != settings::in_force() {
        let local = gucs::set_locally_in_this_transaction(c"pg_tenant.token")
            || gucs::set_locally_in_this_transaction(gucs::TENANT_GUC);
        settings::switch_to(deciding, local);
    }
}

thread_local! {
    /// Cursors declared WITH HOLD in the current transaction.
    static HOLDABLE: std::cell::RefCell<Vec<std::ffi::CString>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The library was loaded in this transaction: cursors declared before it are not in HOLDABLE.
    static CHECK_ALL_HOLDABLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Called when the library loads inside a transaction (see lib.rs).
pub fn check_all_holdable_cursors_at_next_commit() {
    CHECK_ALL_HOLDABLE.with(|c| c.set(true));
}

/// Whether a tenant context (tenant.set, set_local, set_token or the token parameter) is in force.
fn in_tenant_context() -> bool {
    gucs::set_tenant().is_some() || crate::context::tokens::parameter_is_set()
}

/// `DECLARE ... WITH HOLD`: a holdable cursor keeps its rows after its transaction, so rows read
/// as a tenant could be fetched after that tenant's context ended (behind a transaction pooler,
/// by the next client). Refused while a tenant context is in force; one declared without a
/// context is checked again at commit (see [`holdable_cursors_at_commit`]).
pub fn declaring_holdable_cursor(name: &std::ffi::CStr) {
    guarded(|| {
        if in_tenant_context() {
            TenantError::HoldableCursor(name.to_string_lossy().into_owned()).raise();
        }
        HOLDABLE.with(|h| h.borrow_mut().push(name.to_owned()));
    })
}

/// At commit, a holdable cursor of this transaction is materialized with the context then in
/// force; if there is one, the commit fails (and the cursor goes with the transaction).
fn holdable_cursors_at_commit() {
    let mut names = HOLDABLE.with(|h| std::mem::take(&mut *h.borrow_mut()));
    let check_all = CHECK_ALL_HOLDABLE.with(|c| c.replace(false));
    if names.is_empty() && !check_all {
        return;
    }
    guarded(|| {
        // Rows a cursor produced while a tenant context was in force may sit in it (a function
        // scan keeps its result when the portal is rewound to be materialized): any context at
        // any time in the transaction counts, not only the one at commit.
        if !in_tenant_context() && !gucs::context_used_in_transaction() {
            return;
        }
        if check_all {
            // Commit processing has no snapshot of its own; the catalog read needs one.
            unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot()) };
            let all = crate::owner::read_one::<Vec<String>>(
                "SELECT pg_catalog.array_agg(name) FROM pg_catalog.pg_cursors
                  WHERE is_holdable AND creation_time OPERATOR(pg_catalog.>=) pg_catalog.now()",
                &[],
            );
            unsafe { pg_sys::PopActiveSnapshot() };
            names.extend(
                all.unwrap_or_default()
                    .into_iter()
                    .filter_map(|n| std::ffi::CString::new(n).ok()),
            );
        }
        // By now PostgreSQL has materialized the cursor and made it a held-over cursor, which a
        // failed commit would keep: it is closed first, then the commit fails.
        let mut refused = None;
        for name in names {
            let portal = unsafe { pg_sys::GetPortalByName(name.as_ptr()) };
            if !portal.is_null() {
                unsafe { pg_sys::PortalDrop(portal, false) };
                refused.get_or_insert(name);
            }
        }
        if let Some(name) = refused {
            TenantError::HoldableCursor(name.to_string_lossy().into_owned()).raise();
        }
    })
}

/// A statement that will run parallel workers starts: the leader judges the tenant context now
/// (exp, the session lock, transaction_only, a revoked grant), since its workers, which have none
/// of the leader's session state, do not. Raises if the context no longer holds.
pub fn judge_before_workers() {
    thread_local! {
        static JUDGING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }
    // Judging may run pg_tenant's own queries (verifying a token), which start executors too.
    if !in_tenant_context() || JUDGING.with(|j| j.get()) {
        return;
    }
    guarded(|| {
        // (The flag is cleared before an error leaves: guarded() reports it with a longjmp that
        // runs no destructor of the frames it leaves.)
        JUDGING.with(|j| j.set(true));
        let judged = std::panic::catch_unwind(std::panic::AssertUnwindSafe(gucs::current_tenant));
        JUDGING.with(|j| j.set(false));
        if let Err(error) = judged {
            std::panic::resume_unwind(error);
        }
    })
}

/// `RESET ALL` or `DISCARD ALL` ran: a tenant may still decide (a token given with the
/// connection, or as the role's default, is the value they restore), and its settings apply
/// again from the next query ([`follow_parameters`]).
pub fn reset_all_done() {
    gucs::mark_context_parameters_changed();
}

/// The context's part of each transaction event (registered with crate::xact from _PG_init): the
/// holdable cursors checked at commit, forgotten when the transaction ends.
pub fn on_xact(event: pg_sys::XactEvent::Type) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_PRE_COMMIT | pg_sys::XactEvent::XACT_EVENT_PRE_PREPARE => {
            holdable_cursors_at_commit()
        }
        pg_sys::XactEvent::XACT_EVENT_ABORT
        | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
        | pg_sys::XactEvent::XACT_EVENT_COMMIT
        | pg_sys::XactEvent::XACT_EVENT_PREPARE => forget_holdable_cursors(),
        _ => {}
    }
}

/// Tells crate::gucs how to judge the tenant it returns, and installs the hooks (from _PG_init).
pub fn init() {
    gucs::on_current_tenant(gucs::ContextRules {
        token_parameter_tenant: tokens::parameter_tenant,
        node_tenant: crate::node_context::node_tenant,
        refuse_if_expired: tokens::refuse_if_expired,
        refuse_if_no_longer_allowed,
        read_only: read_only_context,
    });
    crate::registry::cache::on_keys_changed(tokens::forget_verified);
    hooks::init();
}

/// The transaction ended: its cursor list goes with it.
fn forget_holdable_cursors() {
    HOLDABLE.with(|h| h.borrow_mut().clear());
    CHECK_ALL_HOLDABLE.with(|c| c.set(false));
}

/// `SET pg_tenant.token` for the session: refused to a role granted transaction_only (SET LOCAL
/// is its form). Any other path to a session-level value (set_config(), role defaults,
/// connection options) is refused where the token is used (tokens::parameter_tenant).
pub fn setting_session_token() {
    guarded(|| {
        if transaction_only_role() {
            TenantError::TransactionOnly(role_name(current_role())).raise();
        }
    })
}

/// `SET [LOCAL] pg_tenant.token FROM CURRENT`: refused (it would make a value committed earlier,
/// perhaps another client's behind a pooler, look set by this transaction).
pub fn setting_token_from_current() {
    guarded(|| TenantError::TokenFromCurrent.raise())
}

/// `RESET ALL` or `DISCARD ALL`: a pooler's reset ends a session lock (with the statement's
/// transaction; a rollback keeps it).
pub fn resetting_all() {
    // (Not from owner code run on someone else's behalf: see refuse_in_restricted_operation.)
    if !unsafe { pg_sys::InSecurityRestrictedOperation() } {
        gucs::end_lock();
        crate::quotas::sessions::vacate();
        settings::forget();
    }
}

/// Owner code (a trigger, a CHECK function) that pg_tenant or PostgreSQL runs on someone else's
/// behalf inside a security-restricted operation may not change that session's tenant context:
/// it would outlive the owner's turn (the context is session state, not only a setting). Nor
/// may anything change it while a statement writes rows (see below).
pub fn refuse_in_restricted_operation(function: &'static str) {
    if unsafe { pg_sys::InSecurityRestrictedOperation() } {
        TenantError::InRestrictedOperation(function).raise();
    }
    // The write guards judge the tenant once per statement, before its first row (a suspended
    // tenant, a read-only grant): a tenant switched while a statement writes (from a subquery,
    // a default or a trigger of that statement) would have rows written that no guard judged.
    if crate::quotas::row_counter::writing() {
        TenantError::ChangedWhileWriting(function).raise();
    }
}
