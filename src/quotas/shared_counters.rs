//! Count quotas in shared memory, when pg_tenant is in `shared_preload_libraries`.
//!
//! A count quota's usage is the number of the tenant's rows in the tables it is attached to, so
//! it never has to be stored: it can be counted again. With the library preloaded, each (database,
//! tenant, resource) gets a slot in shared memory that holds that number, counted from the tables
//! the first time it is needed after the server starts, and kept exact from then on:
//!
//! - a statement's new rows reserve their units with one compare-and-swap against the limit (no
//!   counter row is written, which is what a transactional counter costs: about as much as the
//!   row itself); a rollback, of the transaction or to a savepoint, gives them back;
//! - deleted rows give their units back when the deleting transaction commits;
//! - the count that fills a slot excludes this transaction's own changes (a snapshot with
//!   command id 0) and sees every committed row; a row of a transaction still under way is
//!   added by that transaction's reservation, never by the count, because nobody can reserve
//!   before the slot is filled.
//!
//! The usage counters table then holds nothing for count quotas. So that a server started later
//! without the library (or a restored dump) does not trust it, the first use in each database
//! after a start leaves a marker row there; quotas/recount.rs counts every count quota again when it
//! finds one. Without the library, or when the slots are full, count quotas use the counters
//! table like every other quota.

use std::cell::RefCell;
use std::ffi::c_int;
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};

use pgrx::pg_sys;
use pgrx::prelude::*;

/// Longest resource name a slot holds; longer names use the counters table.
const RESOURCE_BYTES: usize = 64;
/// Databases that can have slots.
const DATABASES: usize = 256;
/// Slots a key may be placed in after its hash position.
const MAX_PROBES: usize = 64;

#[repr(C, align(64))] // a cache line each: the atomics are aligned and slots never share a line
struct Slot {
    /// 0: free, 1: key being written, 2: key set.
    state: AtomicU32,
    /// Taken (0 -> 1) for the few stores that publish a count or start a new generation.
    fill_lock: AtomicU32,
    db: u32,
    tenant: [u8; 16],
    resource_len: u32,
    resource: [u8; RESOURCE_BYTES],
    /// Low two bits: 0 not counted, 2 counted; the rest: a generation, bumped when
    /// attach_quota/detach_quota (or an import) change what the slot counts.
    load: AtomicU64,
    /// Committed rows plus the units reserved by transactions under way.
    used: AtomicI64,
}

#[repr(C)]
struct DatabaseFlag {
    /// 0: free, else the database's oid (claimed with a compare-and-swap).
    db: AtomicU32,
    /// 1 once a marker row has been committed in this database since the server started.
    marked: AtomicU32,
}

#[repr(C)]
struct Shared {
    capacity: u32,
    databases: [DatabaseFlag; DATABASES],
    // `capacity` slots follow.
}

static mut SHARED: *mut Shared = std::ptr::null_mut();
static mut CAPACITY_SETTING: c_int = 100_000;
#[cfg(not(any(feature = "pg13", feature = "pg14")))]
static mut PREV_SHMEM_REQUEST: pg_sys::shmem_request_hook_type = None;
static mut PREV_SHMEM_STARTUP: pg_sys::shmem_startup_hook_type = None;

/// Where the slots start: after the header, at a slot's alignment.
fn slots_offset() -> usize {
    let align = std::mem::align_of::<Slot>();
    std::mem::size_of::<Shared>().div_ceil(align) * align
}

fn size_of_shared(capacity: usize) -> usize {
    // ShmemInitStruct's memory is aligned to a cache line (PostgreSQL's shmem allocator).
    slots_offset() + capacity * std::mem::size_of::<Slot>()
}

/// From _PG_init: when preloading, defines `pg_tenant.shared_counters` and asks for the memory.
pub fn init() {
    unsafe {
        if !pg_sys::process_shared_preload_libraries_in_progress {
            return;
        }
        pg_sys::DefineCustomIntVariable(
            c"pg_tenant.shared_counters".as_ptr(),
            c"Slots for count quotas in shared memory (one per database, tenant and resource in use); 0 keeps them in tenant_data.usage_counters.".as_ptr(),
            c"Takes effect at server start; needs pg_tenant in shared_preload_libraries.".as_ptr(),
            &raw mut CAPACITY_SETTING,
            100_000,
            0,
            10_000_000,
            pg_sys::GucContext::PGC_POSTMASTER,
            0,
            None,
            None,
            None,
        );
        #[cfg(not(any(feature = "pg13", feature = "pg14")))]
        {
            crate::hooks::install_hook!(PREV_SHMEM_REQUEST, shmem_request_hook, shmem_request);
        }
        #[cfg(any(feature = "pg13", feature = "pg14"))]
        pg_sys::RequestAddinShmemSpace(size_of_shared(CAPACITY_SETTING.max(0) as usize));
        crate::hooks::install_hook!(PREV_SHMEM_STARTUP, shmem_startup_hook, shmem_startup);
    }
}

#[cfg(not(any(feature = "pg13", feature = "pg14")))]
#[pg_guard]
unsafe extern "C-unwind" fn shmem_request() {
    if let Some(prev) = PREV_SHMEM_REQUEST {
        prev();
    }
    pg_sys::RequestAddinShmemSpace(size_of_shared(CAPACITY_SETTING.max(0) as usize));
}

#[pg_guard]
unsafe extern "C-unwind" fn shmem_startup() {
    if let Some(prev) = PREV_SHMEM_STARTUP {
        prev();
    }
    let capacity = CAPACITY_SETTING.max(0) as usize;
    // AddinShmemInitLock, a macro in C: the 22nd of the main LWLocks.
    let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
    pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
    let mut found = false;
    let shared = pg_sys::ShmemInitStruct(
        c"pg_tenant shared counters".as_ptr(),
        size_of_shared(capacity),
        &mut found,
    ) as *mut Shared;
    if !found {
        // Zeroed memory is the initial state: every slot and database flag free.
        std::ptr::write_bytes(shared as *mut u8, 0, size_of_shared(capacity));
        (*shared).capacity = capacity as u32;
    }
    pg_sys::LWLockRelease(init_lock);
    SHARED = shared;
}

/// Whether count quotas live in shared memory in this server.
pub fn enabled() -> bool {
    unsafe { !SHARED.is_null() && (*SHARED).capacity > 0 }
}

unsafe fn slots() -> &'static [Slot] {
    let shared = SHARED;
    let first = (shared as *mut u8).add(slots_offset()) as *const Slot;
    std::slice::from_raw_parts(first, (*shared).capacity as usize)
}

fn my_database() -> u32 {
    unsafe { pg_sys::MyDatabaseId.to_u32() }
}

fn hash(db: u32, tenant: &[u8; 16], resource: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in db
        .to_le_bytes()
        .iter()
        .chain(tenant.iter())
        .chain(resource.iter())
    {
        h = (h ^ *b as u64).wrapping_mul(0x100000001b3);
    }
    h
}

/// The slot of (this database, tenant, resource), claimed if new; None when the name is too
/// long or every slot is taken (that key then uses the counters table, always: slots are never
/// given back while the server runs).
fn slot(tenant: &[u8; 16], resource: &str) -> Option<(usize, &'static Slot)> {
    if !enabled() || resource.len() > RESOURCE_BYTES {
        return None;
    }
    let db = my_database();
    let name = resource.as_bytes();
    let slots = unsafe { slots() };
    let start = (hash(db, tenant, name) % slots.len() as u64) as usize;
    // A bounded probe: when the table is (nearly) full, a new key gives up quickly and uses its
    // counter row; lookups and inserts follow the same sequence, so a key is always found.
    for probe in 0..slots.len().min(MAX_PROBES) {
        let i = (start + probe) % slots.len();
        let s = &slots[i];
        loop {
            match s.state.load(Ordering::Acquire) {
                2 => {
                    if s.db == db
                        && &s.tenant == tenant
                        && &s.resource[..s.resource_len as usize] == name
                    {
                        return Some((i, s));
                    }
                    break;
                }
                1 => std::hint::spin_loop(),
                _ => {
                    if s.state
                        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        // Written before state 2 publishes them; nobody reads them before.
                        let raw = s as *const Slot as *mut Slot;
                        unsafe {
                            (*raw).db = db;
                            (*raw).tenant = *tenant;
                            (*raw).resource_len = name.len() as u32;
                            std::ptr::copy_nonoverlapping(
                                name.as_ptr(),
                                (&raw mut (*raw).resource) as *mut u8,
                                name.len(),
                            );
                        }
                        s.load.store(0, Ordering::Release);
                        s.used.store(0, Ordering::Release);
                        s.state.store(2, Ordering::Release);
                        return Some((i, s));
                    }
                }
            }
        }
    }
    None
}

enum Invalidation {
    Resource(String),
    Tenant([u8; 16]),
}

/// A change this transaction made to a slot, undone or completed when it ends.
struct Pending {
    slot: usize,
    /// > 0: units reserved (given back on rollback); < 0: units given back at commit.
    units: i64,
    level: i32,
}

thread_local! {
    static PENDING: RefCell<Vec<Pending>> = const { RefCell::new(Vec::new()) };
    /// The (sub)transaction level that wrote a marker row, 0 if none (the database's flag is
    /// set when it commits; a rollback of that level forgets it).
    static MARKING: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
    /// This backend saw the database's flag set.
    static MARKED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// Slots to count again after commit: of a resource whose attachments changed, or of a
    /// tenant whose rows tenant.import() loaded (without counting them).
    static INVALIDATE: RefCell<Vec<Invalidation>> = const { RefCell::new(Vec::new()) };
}

/// What a charge did.
pub enum Charged {
    /// The units were reserved (or their release recorded).
    Done,
    /// Refused: usage now.
    Refused(i64),
}

/// Charges `delta` rows of a count quota with limit `limit` (-1: none) in shared memory, or
/// returns None when this key has no slot (the caller uses the counters table).
pub fn charge(tenant: pgrx::Uuid, resource: &str, delta: i64, limit: i64) -> Option<Charged> {
    let id = *tenant.as_bytes();
    let (index, s) = slot(&id, resource)?;
    ensure_counted(s, tenant, resource);
    ensure_marked();
    let level = crate::xact::nest_level();
    if delta <= 0 {
        // Deleted rows: their units come back only if the delete commits.
        if delta < 0 {
            PENDING.with(|p| {
                p.borrow_mut().push(Pending {
                    slot: index,
                    units: delta,
                    level,
                })
            });
        }
        return Some(Charged::Done);
    }
    // Rows this transaction deleted free their units only at commit, but they are as good as
    // free for its own inserts: if it commits, both happen; if not, neither does.
    let own_releases: i64 = PENDING.with(|p| {
        p.borrow()
            .iter()
            .filter(|x| x.slot == index && x.units < 0)
            .map(|x| -x.units)
            .sum()
    });
    let mut current = s.used.load(Ordering::Acquire);
    loop {
        if limit >= 0 && current + delta - own_releases > limit {
            return Some(Charged::Refused(current - own_releases));
        }
        match s.used.compare_exchange_weak(
            current,
            current + delta,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => break,
            Err(now) => current = now,
        }
    }
    PENDING.with(|p| {
        p.borrow_mut().push(Pending {
            slot: index,
            units: delta,
            level,
        })
    });
    Some(Charged::Done)
}

/// The usage of a count quota, or None when this key has no slot.
pub fn used(tenant: pgrx::Uuid, resource: &str) -> Option<i64> {
    let (_, s) = slot(tenant.as_bytes(), resource)?;
    ensure_counted(s, tenant, resource);
    Some(s.used.load(Ordering::Acquire))
}

/// Fills the slot from the tables the first time it is needed (per server start and per
/// change of what it counts). Whoever finds it unfilled counts; the first count to finish is
/// published, later ones are dropped. No two counts can differ: until the slot is filled nobody
/// can reserve or release in it, so the rows it counts change only by work that will reserve or
/// release afterwards (uncommitted, invisible to the count). Nobody waits for anyone.
fn ensure_counted(s: &'static Slot, tenant: pgrx::Uuid, resource: &str) {
    loop {
        let word = s.load.load(Ordering::Acquire);
        if word & 3 == 2 {
            return;
        }
        let rows = crate::quotas::recount::count_rows(tenant, resource, true);
        with_fill_lock(s, || {
            // Publish only into the generation that was counted, and only once.
            if s.load.load(Ordering::Acquire) == word {
                s.used.store(rows, Ordering::Release);
                s.load.store((word & !3) | 2, Ordering::Release);
            }
        });
    }
}

/// Runs `f` (a few stores, nothing that can fail) holding the slot's fill lock.
fn with_fill_lock(s: &Slot, f: impl FnOnce()) {
    while s
        .fill_lock
        .compare_exchange_weak(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        std::hint::spin_loop();
    }
    f();
    s.fill_lock.store(0, Ordering::Release);
}

/// Makes sure this database holds a committed marker row (see the module comment).
fn ensure_marked() {
    if MARKED.with(|m| m.get()) {
        return;
    }
    let db = my_database();
    let flags = unsafe { &(*SHARED).databases };
    let flag = flags
        .iter()
        .find(|f| f.db.load(Ordering::Acquire) == db)
        .or_else(|| {
            flags.iter().find(|f| {
                f.db.compare_exchange(0, db, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            })
        });
    let marked = flag
        .map(|f| f.marked.load(Ordering::Acquire) == 1)
        .unwrap_or(false);
    if marked {
        // Once set, the flag stays until the server stops (and this backend with it).
        MARKED.with(|m| m.set(true));
        return;
    }
    if MARKING.with(|m| m.get()) > 0 {
        return;
    }
    crate::quotas::recount::write_shared_marker();
    MARKING.with(|m| m.set(crate::xact::nest_level()));
}

/// attach_quota/detach_quota changed what `resource` counts: its slots count again after commit.
pub fn invalidate_at_commit(resource: &str) {
    if enabled() {
        INVALIDATE.with(|i| {
            i.borrow_mut()
                .push(Invalidation::Resource(resource.to_string()))
        });
    }
}

/// tenant.import() loaded rows of `tenant`: its slots count again after commit.
pub fn invalidate_tenant_at_commit(tenant: pgrx::Uuid) {
    if enabled() {
        INVALIDATE.with(|i| {
            i.borrow_mut()
                .push(Invalidation::Tenant(*tenant.as_bytes()))
        });
    }
}

fn end_of_transaction(committed: bool) {
    let pending: Vec<Pending> = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if p.is_empty() {
            Vec::new()
        } else {
            p.drain(..).collect()
        }
    });
    if !enabled() {
        return;
    }
    let slots = unsafe { slots() };
    for p in pending {
        let s = &slots[p.slot];
        if committed && p.units < 0 {
            // Deleted rows: their units come back now.
            s.used.fetch_add(p.units, Ordering::AcqRel);
        } else if !committed && p.units > 0 {
            // Reserved units of rows that will never exist.
            s.used.fetch_sub(p.units, Ordering::AcqRel);
        }
    }
    if committed {
        if MARKING.with(|m| m.get()) > 0 {
            let db = my_database();
            let flags = unsafe { &(*SHARED).databases };
            if let Some(f) = flags.iter().find(|f| f.db.load(Ordering::Acquire) == db) {
                f.marked.store(1, Ordering::Release);
            }
        }
        let invalidations = INVALIDATE.with(|i| std::mem::take(&mut *i.borrow_mut()));
        if !invalidations.is_empty() {
            let db = my_database();
            for s in slots
                .iter()
                .filter(|s| s.state.load(Ordering::Acquire) == 2 && s.db == db)
            {
                let name = &s.resource[..s.resource_len as usize];
                if invalidations.iter().any(|i| match i {
                    Invalidation::Resource(r) => r.as_bytes() == name,
                    Invalidation::Tenant(t) => *t == s.tenant,
                }) {
                    // A new generation, not counted: the next use counts the rows again.
                    with_fill_lock(s, || {
                        let word = s.load.load(Ordering::Acquire);
                        s.load.store((word & !3) + 4, Ordering::Release);
                    });
                }
            }
        }
    }
    MARKING.with(|m| m.set(0));
    INVALIDATE.with(|i| i.borrow_mut().clear());
}

/// Transaction end, from row_counter's callback (one registration for both, after its flush).
pub fn on_xact(event: pg_sys::XactEvent::Type) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_PRE_PREPARE
            if PENDING.with(|p| !p.borrow().is_empty())
                || INVALIDATE.with(|i| !i.borrow().is_empty())
                || MARKING.with(|m| m.get()) > 0 =>
        {
            crate::error::guarded(|| {
                crate::error::TenantError::invalid(
                    "transaction",
                    "a transaction that changed count quotas kept in shared memory cannot be prepared (PREPARE TRANSACTION)",
                )
                .raise()
            });
        }
        pg_sys::XactEvent::XACT_EVENT_COMMIT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_COMMIT => {
            end_of_transaction(true)
        }
        pg_sys::XactEvent::XACT_EVENT_ABORT
        | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
        | pg_sys::XactEvent::XACT_EVENT_PREPARE => end_of_transaction(false),
        _ => {}
    }
}

/// Subtransaction end at nesting `level`, from row_counter's callback.
pub fn on_subxact(event: pg_sys::SubXactEvent::Type, level: i32) {
    match event {
        pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB => {
            if MARKING.with(|m| m.get()) >= level {
                MARKING.with(|m| m.set(0));
            }
            let undone: Vec<Pending> = PENDING.with(|p| {
                let mut p = p.borrow_mut();
                let (undone, kept) = std::mem::take(&mut *p)
                    .into_iter()
                    .partition(|x| x.level >= level);
                *p = kept;
                undone
            });
            if enabled() {
                let slots = unsafe { slots() };
                for u in undone.into_iter().filter(|u| u.units > 0) {
                    slots[u.slot].used.fetch_sub(u.units, Ordering::AcqRel);
                }
            }
        }
        pg_sys::SubXactEvent::SUBXACT_EVENT_COMMIT_SUB => {
            PENDING.with(|p| {
                for x in p.borrow_mut().iter_mut().filter(|x| x.level >= level) {
                    x.level = level - 1;
                }
            });
            if MARKING.with(|m| m.get()) >= level {
                MARKING.with(|m| m.set(level - 1));
            }
        }
        _ => {}
    }
}
