//! The tenant's settings (tenant.set_plan_settings, set_tenant_settings) in force while a session
//! acts as the tenant, with the context's scope: applied by tenant.set() for the session (until
//! reset() or the next set()) and by set_local(), set_token(..., local => true) or
//! `SET LOCAL pg_tenant.token` for the transaction, as `SET` and `SET LOCAL` would. What was
//! there before is put back when the context ends or switches; PostgreSQL undoes a `SET LOCAL`
//! at the end of the transaction, and both with a rollback. The tenant's statement_timeout is
//! also a ceiling: see [`cap_statement`].

use std::cell::RefCell;

use pgrx::pg_sys;

use crate::pg_settings;
use crate::txn_cell::TxCell;

/// The settings a tenant context applied: the tenant whose settings they are, what was in force
/// before (to put back), and its statement_timeout ceiling in milliseconds (0: none).
#[derive(Debug, Clone)]
struct Applied {
    tenant: [u8; 16],
    saved: Vec<(String, String)>,
    ceiling_ms: i32,
}

thread_local! {
    /// Scoped like the context that applied them, and rolled back with it.
    static APPLIED: RefCell<TxCell<Option<Applied>>> = const { RefCell::new(TxCell::none()) };
}

fn nest_level() -> i32 {
    unsafe { pg_sys::GetCurrentTransactionNestLevel() }
}

/// The context switches to `tenant` (None: no tenant), for the transaction when `local`, else
/// for the session: the settings the previous context applied are put back, with the same
/// scope, then the tenant's are applied. What was in force before any tenant's settings is
/// remembered (through a switch too), so reset() puts exactly that back.
pub fn switch_to(tenant: Option<pgrx::Uuid>, local: bool) {
    let previous = APPLIED.with(|a| a.borrow().get().clone());
    let settings = tenant
        .map(crate::quotas::settings::tenant_settings)
        .unwrap_or_default();
    if previous.is_none() && settings.is_empty() {
        // Nothing to apply or put back; which tenant's settings (none) are in force is kept.
        if let Some(t) = tenant {
            let applied = Applied {
                tenant: *t.as_bytes(),
                saved: Vec::new(),
                ceiling_ms: 0,
            };
            APPLIED.with(|a| a.borrow_mut().set(Some(applied), local, nest_level()));
        }
        return;
    }
    let mut saved = previous.map(|a| a.saved).unwrap_or_default();
    for (name, value) in &saved {
        pg_settings::apply_setting(name, value, local);
    }
    for (name, _) in &settings {
        if !saved.iter().any(|(n, _)| n == name) {
            saved.push((name.clone(), pg_settings::setting_value(name)));
        }
    }
    for (name, value) in &settings {
        pg_settings::apply_setting(name, value, local);
    }
    let ceiling_ms = if settings.iter().any(|(n, _)| n == "statement_timeout") {
        pg_settings::statement_timeout_ms()
    } else {
        0
    };
    // What was saved is kept while something must be put back later: the tenant's own
    // settings, or (for the transaction) the session's tenant's, put back above only until the
    // transaction ends.
    let keep = !saved.is_empty() && (!settings.is_empty() || local);
    let applied = tenant.map(|t| Applied {
        tenant: *t.as_bytes(),
        saved: if keep { saved } else { Vec::new() },
        ceiling_ms,
    });
    APPLIED.with(|a| a.borrow_mut().set(applied, local, nest_level()));
    // The statement that chose the context runs on under the new ceiling.
    cap_statement();
}

/// `SET [LOCAL] pg_tenant.token` or `RESET pg_tenant.token` ran: the tenant the token names (a
/// verified one naming a known tenant), else the one tenant.set() chose, gets its settings, with
/// the statement's scope.
pub fn token_changed(local: bool) {
    let tenant =
        crate::context::tokens::parameter_tenant_quietly().or_else(crate::gucs::set_tenant);
    switch_to(tenant, local);
}

/// The tenant whose settings are in force (the one [`switch_to`] last switched to, in this
/// scope), whether it has settings or not.
pub fn in_force() -> Option<pgrx::Uuid> {
    APPLIED.with(|a| {
        a.borrow()
            .get()
            .as_ref()
            .map(|a| pgrx::Uuid::from_bytes(a.tenant))
    })
}

/// RESET ALL or DISCARD ALL: PostgreSQL puts every setting back to its default, those applied
/// for a tenant too; nothing is left to put back.
pub fn forget() {
    APPLIED.with(|a| a.borrow_mut().set(None, false, nest_level()));
}

/// The statement running now is cancelled by PostgreSQL's own statement timeout once it has run
/// longer than the tenant's statement_timeout, whatever the session set since (0, or more).
/// Called as each statement is analyzed, planned and run (context/hooks.rs).
pub fn cap_statement() {
    let ceiling = APPLIED.with(|a| a.borrow().get().as_ref().map_or(0, |a| a.ceiling_ms));
    if ceiling > 0 {
        pg_settings::cap_statement_timeout(ceiling);
    }
}

/// Transaction events (registered with crate::xact from _PG_init).
pub fn on_xact(event: pg_sys::XactEvent::Type) {
    if let Some(committed) = crate::xact::ended(event) {
        APPLIED.with(|a| a.borrow_mut().on_xact(committed));
    }
}

/// Subtransaction events (registered with crate::xact).
pub fn on_subxact(event: pg_sys::SubXactEvent::Type, level: i32) {
    let committed = match event {
        pg_sys::SubXactEvent::SUBXACT_EVENT_COMMIT_SUB => true,
        pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB => false,
        _ => return,
    };
    APPLIED.with(|a| a.borrow_mut().on_subxact(committed, level));
}
