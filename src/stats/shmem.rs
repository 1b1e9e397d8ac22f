//! The shared table of per-tenant statistics (with pg_tenant in `shared_preload_libraries`).
//!
//! One entry per (database, tenant), at most `pg_tenant.stats_max_tenants` of them, in an open
//! addressing table of twice as many entries. A backend finds its tenant's entry once per change
//! of tenant and keeps its index and generation; each counted statement then takes the entry's
//! spinlock once (a compare-and-swap), checks the generation and adds. Entries are claimed and
//! freed (tenant.stats_reset) under one table-wide spinlock, never on a statement's path except
//! the first statement of a tenant with no entry yet. A freed entry becomes a tombstone: lookups
//! go on past it, claims reuse it.
//!
//! When every entry is taken, a tenant without one is not counted until tenant.stats_reset()
//! frees entries; the server log says so once per backend. Shared memory is zeroed at server
//! start (and by the postmaster's reinitialization after a crash): statistics start empty then.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use pgrx::pg_sys;

/// Counted statements, rows and times of one tenant.
#[derive(Clone, Copy, Default)]
pub struct Counters {
    pub selects: u64,
    pub inserts: u64,
    pub updates: u64,
    pub deletes: u64,
    pub others: u64,
    pub rows_returned: u64,
    pub rows_written: u64,
    /// Microseconds.
    pub total_time: u64,
    pub max_time: u64,
    /// TimestampTz of the last counted statement's end (0: none).
    pub last_activity: i64,
    /// TimestampTz when the entry was claimed.
    pub since: i64,
}

/// What a statement was.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Select,
    Insert,
    Update,
    Delete,
    Other,
}

const EMPTY: u32 = 0;
const LIVE: u32 = 1;
const TOMBSTONE: u32 = 2;

#[repr(C, align(64))]
struct Entry {
    /// Held (0 -> 1) while anything below changes or is read as a whole.
    lock: AtomicU32,
    /// EMPTY, LIVE or TOMBSTONE; changed only under the table's claim lock and this lock.
    state: AtomicU32,
    /// Bumped at every claim and free: a backend's cached (index, generation) goes stale.
    generation: AtomicU32,
    key: UnsafeCell<(u32, [u8; 16])>,
    counters: UnsafeCell<Counters>,
}

#[repr(C)]
struct Header {
    /// The table-wide lock of claims and frees.
    claim_lock: AtomicU32,
    /// Live entries.
    live: AtomicU32,
    /// Bumped at every free: a backend that found no room may look again.
    frees: AtomicU64,
    max_tenants: u32,
    capacity: u32,
}

static mut HEADER: *mut Header = std::ptr::null_mut();
#[cfg(not(any(feature = "pg13", feature = "pg14")))]
static mut PREV_SHMEM_REQUEST: pg_sys::shmem_request_hook_type = None;
static mut PREV_SHMEM_STARTUP: pg_sys::shmem_startup_hook_type = None;

fn entries_offset() -> usize {
    let align = std::mem::align_of::<Entry>();
    std::mem::size_of::<Header>().div_ceil(align) * align
}

fn capacity_for(max_tenants: usize) -> usize {
    if max_tenants == 0 {
        0
    } else {
        max_tenants * 2
    }
}

fn size_of_table(max_tenants: usize) -> usize {
    entries_offset() + capacity_for(max_tenants) * std::mem::size_of::<Entry>()
}

/// From _PG_init when preloading (after the settings are defined): asks for the memory.
pub fn init() {
    unsafe {
        if !pg_sys::process_shared_preload_libraries_in_progress {
            return;
        }
        #[cfg(not(any(feature = "pg13", feature = "pg14")))]
        {
            crate::hooks::install_hook!(PREV_SHMEM_REQUEST, shmem_request_hook, shmem_request);
        }
        #[cfg(any(feature = "pg13", feature = "pg14"))]
        pg_sys::RequestAddinShmemSpace(size_of_table(crate::gucs::stats_max_tenants()));
        crate::hooks::install_hook!(PREV_SHMEM_STARTUP, shmem_startup_hook, shmem_startup);
    }
}

#[cfg(not(any(feature = "pg13", feature = "pg14")))]
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn shmem_request() {
    if let Some(prev) = PREV_SHMEM_REQUEST {
        prev();
    }
    pg_sys::RequestAddinShmemSpace(size_of_table(crate::gucs::stats_max_tenants()));
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn shmem_startup() {
    if let Some(prev) = PREV_SHMEM_STARTUP {
        prev();
    }
    let max_tenants = crate::gucs::stats_max_tenants();
    let size = size_of_table(max_tenants);
    // AddinShmemInitLock, a macro in C: the 22nd of the main LWLocks.
    let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
    pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
    let mut found = false;
    let header =
        pg_sys::ShmemInitStruct(c"pg_tenant statistics".as_ptr(), size, &mut found) as *mut Header;
    if !found {
        // Zeroed memory is the initial state: every entry empty.
        std::ptr::write_bytes(header as *mut u8, 0, size);
        (*header).max_tenants = max_tenants as u32;
        (*header).capacity = capacity_for(max_tenants) as u32;
    }
    pg_sys::LWLockRelease(init_lock);
    HEADER = header;
}

/// Whether this server keeps statistics: Err(preloaded) when not (see TenantError::NoStatistics).
pub fn available() -> Result<(), bool> {
    let header = unsafe { HEADER };
    if header.is_null() {
        Err(false)
    } else if unsafe { (*header).capacity } == 0 {
        Err(true)
    } else {
        Ok(())
    }
}

fn header() -> &'static Header {
    unsafe { &*HEADER }
}

fn entries() -> &'static [Entry] {
    unsafe {
        let first = (HEADER as *mut u8).add(entries_offset()) as *const Entry;
        std::slice::from_raw_parts(first, (*HEADER).capacity as usize)
    }
}

fn spin(lock: &AtomicU32) {
    while lock
        .compare_exchange_weak(0, 1, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::hint::spin_loop();
    }
}

fn unlock(lock: &AtomicU32) {
    lock.store(0, Ordering::Release);
}

/// Runs `f` holding the entry's lock.
fn locked<R>(e: &Entry, f: impl FnOnce() -> R) -> R {
    spin(&e.lock);
    let r = f();
    unlock(&e.lock);
    r
}

fn hash(db: u32, tenant: &[u8; 16]) -> usize {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in db.to_le_bytes().iter().chain(tenant.iter()) {
        h = (h ^ *b as u64).wrapping_mul(0x100000001b3);
    }
    h as usize
}

/// A backend's handle on an entry: valid while the entry's generation is unchanged.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Handle {
    index: u32,
    generation: u32,
}

/// The entry of (db, tenant), if it has one.
fn find(db: u32, tenant: &[u8; 16]) -> Option<Handle> {
    let entries = entries();
    let start = hash(db, tenant) % entries.len();
    for probe in 0..entries.len() {
        let i = (start + probe) % entries.len();
        let e = &entries[i];
        match e.state.load(Ordering::Acquire) {
            EMPTY => return None,
            LIVE => {
                let found = locked(e, || unsafe {
                    (e.state.load(Ordering::Relaxed) == LIVE && *e.key.get() == (db, *tenant))
                        .then(|| e.generation.load(Ordering::Relaxed))
                });
                if let Some(generation) = found {
                    return Some(Handle {
                        index: i as u32,
                        generation,
                    });
                }
            }
            _ => {}
        }
    }
    None
}

/// What [`entry`] found.
pub enum Found {
    Entry(Handle),
    /// Every entry is taken; the number of frees so far (look again once it changes).
    Full(u64),
}

/// The entry of (this database, tenant), claimed if it has none and there is room.
pub fn entry(tenant: &[u8; 16]) -> Found {
    let db = unsafe { pg_sys::MyDatabaseId.to_u32() };
    if let Some(h) = find(db, tenant) {
        return Found::Entry(h);
    }
    let header = header();
    spin(&header.claim_lock);
    let found = claim(db, tenant);
    unlock(&header.claim_lock);
    found
}

/// Under the claim lock.
fn claim(db: u32, tenant: &[u8; 16]) -> Found {
    let header = header();
    if let Some(h) = find(db, tenant) {
        return Found::Entry(h);
    }
    if header.live.load(Ordering::Relaxed) >= header.max_tenants {
        return Found::Full(header.frees.load(Ordering::Acquire));
    }
    let entries = entries();
    let start = hash(db, tenant) % entries.len();
    // There is room (live < max_tenants = capacity / 2), so an empty entry or a tombstone exists.
    for probe in 0..entries.len() {
        let i = (start + probe) % entries.len();
        let e = &entries[i];
        if e.state.load(Ordering::Acquire) != LIVE {
            let now = unsafe { pg_sys::GetCurrentTimestamp() };
            let generation = locked(e, || unsafe {
                *e.key.get() = (db, *tenant);
                *e.counters.get() = Counters {
                    since: now,
                    ..Counters::default()
                };
                let g = e.generation.load(Ordering::Relaxed).wrapping_add(1);
                e.generation.store(g, Ordering::Relaxed);
                e.state.store(LIVE, Ordering::Release);
                g
            });
            header.live.fetch_add(1, Ordering::Relaxed);
            return Found::Entry(Handle {
                index: i as u32,
                generation,
            });
        }
    }
    Found::Full(header.frees.load(Ordering::Acquire))
}

/// Whether entries were freed since `frees` was read.
pub fn freed_since(frees: u64) -> bool {
    header().frees.load(Ordering::Acquire) != frees
}

/// Adds one statement to the entry; false when the handle is stale (the entry was freed).
pub fn add(h: Handle, kind: Kind, rows: u64, micros: u64, end: i64) -> bool {
    let e = &entries()[h.index as usize];
    locked(e, || {
        if e.generation.load(Ordering::Relaxed) != h.generation {
            return false;
        }
        let c = unsafe { &mut *e.counters.get() };
        match kind {
            Kind::Select => {
                c.selects += 1;
                c.rows_returned += rows;
            }
            Kind::Insert => {
                c.inserts += 1;
                c.rows_written += rows;
            }
            Kind::Update => {
                c.updates += 1;
                c.rows_written += rows;
            }
            Kind::Delete => {
                c.deletes += 1;
                c.rows_written += rows;
            }
            Kind::Other => c.others += 1,
        }
        c.total_time += micros;
        c.max_time = c.max_time.max(micros);
        c.last_activity = end;
        true
    })
}

/// The live entries of this database: (tenant, counters).
pub fn snapshot() -> Vec<([u8; 16], Counters)> {
    let db = unsafe { pg_sys::MyDatabaseId.to_u32() };
    entries()
        .iter()
        .filter(|e| e.state.load(Ordering::Acquire) == LIVE)
        .filter_map(|e| {
            locked(e, || unsafe {
                let (edb, tenant) = *e.key.get();
                (e.state.load(Ordering::Relaxed) == LIVE && edb == db)
                    .then(|| (tenant, *e.counters.get()))
            })
        })
        .collect()
}

/// The counters of one tenant of this database, if it has an entry.
pub fn of(tenant: &[u8; 16]) -> Option<Counters> {
    let db = unsafe { pg_sys::MyDatabaseId.to_u32() };
    let h = find(db, tenant)?;
    let e = &entries()[h.index as usize];
    locked(e, || {
        (e.generation.load(Ordering::Relaxed) == h.generation).then(|| unsafe { *e.counters.get() })
    })
}

/// Frees the entries of this database (of one tenant, or all): returns how many.
pub fn free(tenant: Option<&[u8; 16]>) -> usize {
    let db = unsafe { pg_sys::MyDatabaseId.to_u32() };
    let header = header();
    spin(&header.claim_lock);
    let mut freed = 0;
    for e in entries() {
        if e.state.load(Ordering::Acquire) != LIVE {
            continue;
        }
        let hit = locked(e, || unsafe {
            let (edb, t) = *e.key.get();
            let hit = edb == db && tenant.is_none_or(|x| *x == t);
            if hit {
                e.generation.store(
                    e.generation.load(Ordering::Relaxed).wrapping_add(1),
                    Ordering::Relaxed,
                );
                e.state.store(TOMBSTONE, Ordering::Release);
            }
            hit
        });
        if hit {
            freed += 1;
        }
    }
    header.live.fetch_sub(freed as u32, Ordering::Relaxed);
    header.frees.fetch_add(1, Ordering::Release);
    unlock(&header.claim_lock);
    freed
}
