//! The `sessions` limit: how many backends may act as a tenant at the same time.
//!
//! A backend that acts as a tenant with such a limit holds one of the tenant's slots: a lock of
//! PostgreSQL's lock manager on (database, tenant, slot number) of the type PostgreSQL keeps for
//! extensions (`LOCKTAG_USERLOCK`). No SQL function takes or holds such a lock (the advisory
//! lock functions take another type), so no role can occupy a tenant's slots (one function can
//! release it, `pg_advisory_unlock_all()`: the next statement finds it lost and takes it again,
//! see [`notice_if_lost`]), and the lock
//! manager makes the choice of a free slot exact however many backends race for it. So the limit
//! needs no shared memory of pg_tenant's own: it works with or without `shared_preload_libraries`.
//!
//! - A context chosen for the transaction (`set_local`, `set_token(..., local => true)`, the token
//!   parameter) holds a transaction-level lock: PostgreSQL releases it when the transaction (or
//!   the savepoint it was taken in) ends.
//! - A context chosen for the session (`set`, `set_token`) takes a transaction-level lock too; when
//!   the transaction commits still acting as that tenant for the session, the slot becomes a
//!   session-level lock, released by `tenant.reset()` or a switch to another tenant (at that
//!   transaction's commit), and by PostgreSQL when the backend exits. A crash restarts every
//!   backend: no slot survives it.
//! - A backend counts once per tenant: acting as the tenant it already holds a slot for takes no
//!   second one. While a transaction acts as another tenant than its session's, it holds both.

use std::cell::{Cell, RefCell};

use crate::txn_cell::TxCell;
use pgrx::pg_sys;

/// The resource name of the limit.
pub const SESSIONS: &str = "sessions";

/// The highest number of slots a tenant can have (the slot number is 16 bits of the lock's key).
pub const MAX_SESSIONS: i64 = 65_535;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Slot {
    tenant: [u8; 16],
    number: u16,
}

thread_local! {
    /// The tenant the session acts as beyond the current transaction, as far as the limit cares
    /// (tenant.set()/set_token() for the session; None after tenant.reset()).
    static SESSION_TENANT: RefCell<TxCell<Option<[u8; 16]>>> = const { RefCell::new(TxCell::none()) };
    /// The slot held by a session-level lock.
    static SESSION_SLOT: Cell<Option<Slot>> = const { Cell::new(None) };
    /// Slots taken by transaction-level locks in this transaction, with the nest level of the
    /// (sub)transaction that took each.
    static XACT_SLOTS: RefCell<Vec<(Slot, i32)>> = const { RefCell::new(Vec::new()) };
}

fn lock_tag(slot: Slot) -> pg_sys::LOCKTAG {
    let t = slot.tenant;
    let word = |i: usize| u32::from_le_bytes([t[i], t[i + 1], t[i + 2], t[i + 3]]);
    pg_sys::LOCKTAG {
        locktag_field1: unsafe { pg_sys::MyDatabaseId }.into(),
        locktag_field2: word(0) ^ word(8),
        locktag_field3: word(4) ^ word(12),
        locktag_field4: slot.number,
        locktag_type: pg_sys::LockTagType::LOCKTAG_USERLOCK as u8,
        locktag_lockmethodid: pg_sys::USER_LOCKMETHOD as u8,
    }
}

fn take(slot: Slot, session: bool) -> bool {
    let tag = lock_tag(slot);
    let got = in_transaction_owner(|| unsafe {
        pg_sys::LockAcquire(&tag, pg_sys::ExclusiveLock as i32, session, true)
    });
    got != pg_sys::LockAcquireResult::LOCKACQUIRE_NOT_AVAIL
}

fn give_back(slot: Slot, session: bool) {
    let tag = lock_tag(slot);
    // (DISCARD ALL and pg_advisory_unlock_all() release every session-level lock of the method
    // PostgreSQL keeps for extensions, a slot included: nothing to give back then.)
    if held_by_me(&tag) {
        in_transaction_owner(|| unsafe {
            pg_sys::LockRelease(&tag, pg_sys::ExclusiveLock as i32, session)
        });
    }
}

/// Runs `f` with the current (sub)transaction's resource owner: a transaction-level slot
/// belongs to the transaction (or savepoint), not to the portal of the statement that took it
/// (a cursor's FETCH, an extended-protocol Execute), so pg_tenant can give it back before a
/// PREPARE, and a savepoint rolled back releases it.
fn in_transaction_owner<R>(f: impl FnOnce() -> R) -> R {
    unsafe {
        let saved = pg_sys::CurrentResourceOwner;
        if !pg_sys::CurTransactionResourceOwner.is_null() {
            pg_sys::CurrentResourceOwner = pg_sys::CurTransactionResourceOwner;
        }
        let result = f();
        pg_sys::CurrentResourceOwner = saved;
        result
    }
}

/// Whether this backend holds the slot's lock (at session or transaction level).
fn held_by_me(tag: &pg_sys::LOCKTAG) -> bool {
    #[cfg(any(feature = "pg17", feature = "pg18"))]
    let held = unsafe { pg_sys::LockHeldByMe(tag, pg_sys::ExclusiveLock as i32, false) };
    #[cfg(not(any(feature = "pg17", feature = "pg18")))]
    let held = unsafe { pg_sys::LockHeldByMe(tag, pg_sys::ExclusiveLock as i32) };
    held
}

/// At each statement's start (context::follow_parameters, and the executor's start, which a
/// cached plan reaches without the other hooks): a slot the session no longer holds
/// (pg_advisory_unlock_all() releases every session-level lock of the lock method slots use,
/// not only advisory locks) counts as given back, and is taken again at the tenant's next use,
/// or the quota error is raised then if every slot is held (see [`take_back`]). Reads no
/// catalog; one lookup in the backend's lock table while the session holds a slot.
pub fn notice_if_lost() {
    if let Some(slot) = SESSION_SLOT.with(|s| s.get()) {
        if !held_by_me(&lock_tag(slot)) {
            SESSION_SLOT.with(|s| s.set(None));
            GIVEN_BACK.with(|g| g.set(Some(slot.tenant)));
        }
    }
}

fn holds(tenant: [u8; 16]) -> bool {
    SESSION_SLOT
        .with(|s| s.get())
        .is_some_and(|s| s.tenant == tenant)
        || XACT_SLOTS.with(|x| x.borrow().iter().any(|(s, _)| s.tenant == tenant))
}

/// Before a context for `tenant` is chosen (`local`: for the transaction, else for the session):
/// takes one of the tenant's slots when its plan (or its own limit) has a `sessions` limit and
/// this backend holds none yet, or raises the quota error (nothing changed) when every slot is
/// held.
pub fn occupy(tenant: pgrx::Uuid, local: bool) {
    let id = *tenant.as_bytes();
    let q = super::usage::quota_for(tenant, SESSIONS);
    if q.limit >= 0 && !holds(id) {
        let limit = q.limit.min(MAX_SESSIONS);
        // Start from a slot of this backend's own, so that racing backends rarely try the same.
        let start = (unsafe { pg_sys::MyProcPid } as i64).rem_euclid(limit.max(1));
        let free = (0..limit)
            .map(|i| Slot {
                tenant: id,
                number: ((start + i) % limit) as u16,
            })
            .find(|s| take(*s, false));
        let Some(slot) = free else {
            super::usage::exceeded(SESSIONS, &q, q.limit, 1, i64::MAX).raise();
        };
        XACT_SLOTS.with(|x| x.borrow_mut().push((slot, crate::xact::nest_level())));
    }
    if !local {
        SESSION_TENANT.with(|c| {
            c.borrow_mut()
                .set(Some(id), false, crate::xact::nest_level())
        });
    }
}

thread_local! {
    /// The transaction (gucs::transaction_generation) and tenant the token parameter last
    /// occupied a slot for.
    static PARAMETER_OCCUPIED: Cell<Option<(u64, [u8; 16])>> = const { Cell::new(None) };
}

/// The token parameter (`pg_tenant.token`) decides the tenant: a slot for the transaction,
/// taken at its first use in each transaction (the check costs one comparison afterwards).
pub fn occupy_for_transaction(tenant: pgrx::Uuid) {
    let key = (crate::gucs::transaction_generation(), *tenant.as_bytes());
    if PARAMETER_OCCUPIED.with(|o| o.get()) == Some(key) {
        return;
    }
    // With Citus, only on the coordinator, where the application connects: on a worker the
    // token reaches the shards of a statement the coordinator admitted (each of its connections
    // would take a slot of its own, and the limit cannot be read through Citus in a shard task).
    if !crate::citus::metadata_present() || crate::node_context::this_node_is_coordinator() {
        occupy(tenant, true);
    }
    PARAMETER_OCCUPIED.with(|o| o.set(Some(key)));
}

/// The tenant the session acts as beyond the current transaction, as far as the limit knows.
pub fn session_tenant() -> Option<pgrx::Uuid> {
    SESSION_TENANT.with(|c| c.borrow().get().map(pgrx::Uuid::from_bytes))
}

thread_local! {
    /// The tenant whose session slot [`give_back_revoked`] gave back while the session still
    /// names it (until the session's tenant changes, or the slot is taken again).
    static GIVEN_BACK: Cell<Option<[u8; 16]>> = const { Cell::new(None) };
}

/// The role that chose the session's tenant may no longer act as it (its grant was revoked or
/// narrowed): the session's slot for `tenant` is given back now, not with the transaction (the
/// refusal that follows rolls the transaction back), so another session may take it.
pub fn give_back_revoked(tenant: pgrx::Uuid) {
    let id = *tenant.as_bytes();
    if let Some(slot) = SESSION_SLOT.with(|s| s.get()).filter(|s| s.tenant == id) {
        give_back(slot, true);
        SESSION_SLOT.with(|s| s.set(None));
        GIVEN_BACK.with(|g| g.set(Some(id)));
    }
}

/// Whether the session gave its slot for `tenant` back on a revocation and still names it.
pub fn owes_slot(tenant: pgrx::Uuid) -> bool {
    GIVEN_BACK.with(|g| g.get()) == Some(*tenant.as_bytes())
}

/// The role that chose the session's tenant may act as it again (a grant came back): the slot
/// [`give_back_revoked`] gave back is taken again, for the session from this transaction's
/// commit, or the quota error is raised when every slot is held now.
pub fn take_back(tenant: pgrx::Uuid) {
    if owes_slot(tenant) {
        // A slot for the transaction; the commit makes it the session's, since the session
        // still acts as the tenant.
        occupy(tenant, true);
    }
}

/// tenant.reset() (or RESET of the tenant): from this transaction's commit on, the session acts
/// as no tenant; its slot is given back then.
pub fn vacate() {
    SESSION_TENANT.with(|c| c.borrow_mut().set(None, false, crate::xact::nest_level()));
}

thread_local! {
    /// The session's slot before and after the transaction committing now, from its pre-commit
    /// step (see [`before_commit`]) to its end.
    static PENDING: Cell<Option<(Option<Slot>, Option<Slot>)>> = const { Cell::new(None) };
}

/// Just before the transaction commits or is prepared: the slot of the tenant the session goes
/// on acting as is held at session level too (it is held already, so this cannot wait or fail).
/// Nothing is given back yet: a later step of the commit can still fail, and the transaction
/// then rolls back with the session's tenant (the transaction's end, [`on_xact`], settles it).
/// A transaction being prepared gives back its own locks now (a prepared transaction must not
/// keep slots, nor hold one at both levels).
fn before_commit(prepare: bool) {
    let after = SESSION_TENANT.with(|c| *c.borrow().after_commit());
    let held = SESSION_SLOT.with(|s| s.get());
    if held.map(|s| s.tenant) != after {
        let promoted = after.and_then(|t| {
            XACT_SLOTS.with(|x| {
                x.borrow()
                    .iter()
                    .find(|(s, _)| s.tenant == t)
                    .map(|(s, _)| *s)
            })
        });
        if let Some(slot) = promoted {
            take(slot, true);
        }
        PENDING.with(|p| p.set(Some((held, promoted))));
    }
    if prepare {
        for (slot, _) in XACT_SLOTS.with(|x| std::mem::take(&mut *x.borrow_mut())) {
            give_back(slot, false);
        }
    }
}

/// The transaction committed (or was prepared): the session's previous slot is given back and
/// the new one is the session's. (Its transaction-level locks PostgreSQL releases itself.)
fn committed() {
    let after = SESSION_TENANT.with(|c| *c.borrow().after_commit());
    if let Some((old, new)) = PENDING.with(|p| p.take()) {
        if let Some(old) = old.filter(|o| Some(*o) != new) {
            give_back(old, true);
        }
        SESSION_SLOT.with(|s| s.set(new));
    }
    // A slot given back on a revocation is no longer owed once the session holds one again or
    // acts as another tenant.
    let given_back = GIVEN_BACK.with(|g| g.get());
    if given_back.is_some() && (after != given_back || SESSION_SLOT.with(|s| s.get()).is_some()) {
        GIVEN_BACK.with(|g| g.set(None));
    }
    XACT_SLOTS.with(|x| x.borrow_mut().clear());
    SESSION_TENANT.with(|c| c.borrow_mut().on_xact(true));
}

/// The transaction rolled back, perhaps after its pre-commit step: a session-level hold taken
/// there is given back; the session keeps the slot it had.
fn aborted() {
    if let Some((old, new)) = PENDING.with(|p| p.take()) {
        if let Some(new) = new.filter(|n| Some(*n) != old) {
            give_back(new, true);
        }
    }
    // PostgreSQL releases the transaction's locks.
    XACT_SLOTS.with(|x| x.borrow_mut().clear());
    SESSION_TENANT.with(|c| c.borrow_mut().on_xact(false));
}

/// Transaction events (forwarded by quotas::on_xact).
pub fn on_xact(event: pg_sys::XactEvent::Type) {
    use pg_sys::XactEvent::*;
    match event {
        XACT_EVENT_PRE_COMMIT | XACT_EVENT_PARALLEL_PRE_COMMIT => before_commit(false),
        XACT_EVENT_PRE_PREPARE => before_commit(true),
        XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT | XACT_EVENT_PREPARE => committed(),
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT => aborted(),
        _ => {}
    }
}

/// Subtransaction events: a savepoint rolled back released the locks taken in it.
pub fn on_subxact(event: pg_sys::SubXactEvent::Type, level: i32) {
    use pg_sys::SubXactEvent::*;
    match event {
        SUBXACT_EVENT_ABORT_SUB => {
            XACT_SLOTS.with(|x| x.borrow_mut().retain(|(_, l)| *l < level));
            // The token parameter's slot may have been one of them: judged again at next use
            // (occupy takes none while the backend still holds one for the tenant).
            PARAMETER_OCCUPIED.with(|o| o.set(None));
            SESSION_TENANT.with(|c| c.borrow_mut().on_subxact(false, level));
        }
        SUBXACT_EVENT_COMMIT_SUB => {
            XACT_SLOTS.with(|x| {
                for (_, l) in x.borrow_mut().iter_mut() {
                    if *l >= level {
                        *l = level - 1;
                    }
                }
            });
            SESSION_TENANT.with(|c| c.borrow_mut().on_subxact(true, level));
        }
        _ => {}
    }
}
