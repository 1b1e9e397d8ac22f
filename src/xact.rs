//! Transaction and subtransaction callbacks, and relcache invalidation callbacks, fanned out
//! from one place: PostgreSQL gets one of each, and the features register what they do at each
//! event from _PG_init (lib.rs), which fixes the order they run in. A callback that raises an
//! error stops the ones after it, as PostgreSQL's own list would. (PostgreSQL has room for ten
//! relcache callbacks in all, Citus takes several: one each per feature ran out of them.)

use std::cell::RefCell;

use pgrx::pg_sys;
use pgrx::prelude::*;

/// What a feature does at a transaction event.
pub type OnXact = fn(pg_sys::XactEvent::Type);
/// What a feature does at a subtransaction event, with the nesting level of the subtransaction.
pub type OnSubXact = fn(pg_sys::SubXactEvent::Type, i32);
/// What a feature does when a relation's relcache entry is invalidated (InvalidOid: every
/// relation's). It may not access the catalogs or raise an error.
pub type OnRelcache = fn(pg_sys::Oid);

thread_local! {
    static ON_XACT: RefCell<Vec<OnXact>> = const { RefCell::new(Vec::new()) };
    static ON_SUBXACT: RefCell<Vec<OnSubXact>> = const { RefCell::new(Vec::new()) };
    static ON_RELCACHE: RefCell<Vec<OnRelcache>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` at every transaction event, after the callbacks registered before it.
pub fn on_xact(f: OnXact) {
    ON_XACT.with(|c| c.borrow_mut().push(f));
}

/// Runs `f` at every subtransaction event, after the callbacks registered before it.
pub fn on_subxact(f: OnSubXact) {
    ON_SUBXACT.with(|c| c.borrow_mut().push(f));
}

/// Runs `f` at every relcache invalidation, after the callbacks registered before it.
pub fn on_relcache(f: OnRelcache) {
    ON_RELCACHE.with(|c| c.borrow_mut().push(f));
}

/// Whether `event` ends the transaction, and how: Some(true) for a commit (a PREPARE ends this
/// session's part as one), Some(false) for an abort.
pub fn ended(event: pg_sys::XactEvent::Type) -> Option<bool> {
    match event {
        pg_sys::XactEvent::XACT_EVENT_COMMIT
        | pg_sys::XactEvent::XACT_EVENT_PREPARE
        | pg_sys::XactEvent::XACT_EVENT_PARALLEL_COMMIT => Some(true),
        pg_sys::XactEvent::XACT_EVENT_ABORT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT => {
            Some(false)
        }
        _ => None,
    }
}

unsafe extern "C-unwind" {
    #[link_name = "GetCurrentTransactionNestLevel"]
    fn current_nest_level() -> std::ffi::c_int;
}

/// The (sub)transaction nesting level. Called for every counted row, so directly, not through
/// pgrx's error-catching wrapper (it cannot fail).
pub fn nest_level() -> i32 {
    unsafe { current_nest_level() }
}

#[pg_guard]
unsafe extern "C-unwind" fn xact_callback(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    // A copy: a callback may not register another.
    let callbacks = ON_XACT.with(|c| c.borrow().clone());
    for f in callbacks {
        f(event);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn subxact_callback(
    event: pg_sys::SubXactEvent::Type,
    _my: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    let level = nest_level();
    let callbacks = ON_SUBXACT.with(|c| c.borrow().clone());
    for f in callbacks {
        f(event, level);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn relcache_callback(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let callbacks = ON_RELCACHE.with(|c| c.borrow().clone());
    for f in callbacks {
        f(relid);
    }
}

/// Registers the three callbacks with PostgreSQL (from _PG_init, once the features registered).
pub fn init() {
    unsafe {
        pg_sys::RegisterXactCallback(Some(xact_callback), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(subxact_callback), std::ptr::null_mut());
        pg_sys::CacheRegisterRelcacheCallback(Some(relcache_callback), pg_sys::Datum::from(0));
    }
}
