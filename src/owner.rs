//! Runs pg_tenant's own catalog work with the extension owner's rights.
//!
//! The registry tables are readable only by the extension owner, yet `tenant.set()` and the
//! write guard run as the caller. They switch to the owner for their lookups the way PostgreSQL's
//! own code does (SetUserIdAndSecContext), and switch back however the closure ends.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use pgrx::pg_sys;
use pgrx::prelude::*;

thread_local! {
    static OWNER: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
}

/// The role that owns the pg_tenant extension (cached: an extension's owner never changes).
pub fn extension_owner() -> pg_sys::Oid {
    if let Some(owner) = OWNER.with(|o| o.get()) {
        return owner;
    }
    let owner = read_one::<pg_sys::Oid>(
        "SELECT extowner FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_tenant'",
        &[],
    )
    .unwrap_or_else(|| error!("pg_tenant: the extension is not installed in this database"));
    OWNER.with(|o| o.set(Some(owner)));
    owner
}

/// The schema pg_tenant keeps its tables in. Since 0.3.0 that is "tenant_data", on which PUBLIC
/// has no USAGE: a role that cannot name a table cannot lock it either (PostgreSQL takes a
/// statement's table locks while it parses it, before it checks privileges, so anyone who could
/// name the registry could queue an ACCESS EXCLUSIVE lock on it behind a lock they hold, and stop
/// every tenant.set() after it). A database still at 0.1.0 or 0.2.0 (the library updated, the
/// extension not yet) keeps them in "tenant"; only the extension owner can create a table there,
/// so "tenant.tenants" being a table tells the layout apart safely (a schema "tenant_data" somebody
/// created in such a database is never read).
pub fn tables_in_old_schema() -> bool {
    unsafe {
        let ns = pg_sys::get_namespace_oid(c"tenant".as_ptr(), true);
        if ns == pg_sys::Oid::INVALID {
            return false;
        }
        // Since 0.3.0 "tenant.tenants" is a view over tenant_data.tenants: only a table counts.
        let rel = pg_sys::get_relname_relid(c"tenants".as_ptr(), ns);
        rel != pg_sys::Oid::INVALID
            && pg_sys::get_rel_relkind(rel) == pg_sys::RELKIND_RELATION as std::ffi::c_char
    }
}

/// The oid of the schema pg_tenant's tables are in (InvalidOid when there is none).
pub fn data_namespace() -> pg_sys::Oid {
    let name = if tables_in_old_schema() {
        c"tenant"
    } else {
        c"tenant_data"
    };
    unsafe { pg_sys::get_namespace_oid(name.as_ptr(), true) }
}

thread_local! {
    static OLD_SCHEMA_SQL: RefCell<HashMap<&'static str, &'static str>> = RefCell::new(HashMap::new());
}

/// `sql`, which names pg_tenant's tables as tenant_data.x, for this database: unchanged since
/// 0.3.0, with tenant.x in a database not updated yet (see [`tables_in_old_schema`]). Each
/// statement is rewritten once per session (a fixed set of literals).
pub fn data_sql(sql: &'static str) -> &'static str {
    if !tables_in_old_schema() {
        return crate::citus::local_reads(sql);
    }
    OLD_SCHEMA_SQL.with(|m| {
        *m.borrow_mut()
            .entry(sql)
            .or_insert_with(|| Box::leak(sql.replace("tenant_data.", "tenant.").into_boxed_str()))
    })
}

/// The role whose privileges apply now (current_user).
pub fn current_role() -> pg_sys::Oid {
    unsafe { pg_sys::GetUserId() }
}

pub fn role_name(role: pg_sys::Oid) -> String {
    unsafe {
        let name = pg_sys::GetUserNameFromId(role, true);
        if name.is_null() {
            format!("{}", role.to_u32())
        } else {
            std::ffi::CStr::from_ptr(name)
                .to_string_lossy()
                .into_owned()
        }
    }
}

/// A type's name as format_type() prints it.
pub fn type_name(ty: pg_sys::Oid) -> String {
    unsafe {
        let name = pg_sys::format_type_be(ty);
        std::ffi::CStr::from_ptr(name)
            .to_string_lossy()
            .into_owned()
    }
}

/// Whether `role` has the privileges of `other` (as pg_has_role(..., 'USAGE')).
pub fn has_privileges_of(role: pg_sys::Oid, other: pg_sys::Oid) -> bool {
    unsafe { pg_sys::has_privs_of_role(role, other) }
}

pub fn is_superuser(role: pg_sys::Oid) -> bool {
    unsafe { pg_sys::superuser_arg(role) }
}

pub fn bypasses_rls(role: pg_sys::Oid) -> bool {
    unsafe { pg_sys::has_bypassrls_privilege(role) }
}

/// Runs one statement as the extension owner; an SPI failure becomes an ERROR.
pub fn run_as_owner(query: &str, args: &[pgrx::datum::DatumWithOid]) {
    as_extension_owner(|| run_with_args(query, args))
}

/// The first column of the first row of a read-only query (None for no row or NULL). Read-only
/// SPI takes no transaction id, so it works on a hot standby and in a parallel worker, where
/// pgrx's Spi::get_one (which marks the transaction as writing) fails.
pub fn read_one<T: pgrx::datum::FromDatum + pgrx::datum::IntoDatum>(
    query: &str,
    args: &[pgrx::datum::DatumWithOid],
) -> Option<T> {
    Spi::connect(|client| {
        let rows = client.select(query, Some(1), args)?;
        Ok::<_, pgrx::spi::Error>(match rows.into_iter().next() {
            Some(row) => row.get::<T>(1)?,
            None => None,
        })
    })
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
}

/// Runs one statement as the current role; an SPI failure becomes an ERROR.
pub fn run_with_args(query: &str, args: &[pgrx::datum::DatumWithOid]) {
    Spi::run_with_args(query, args).unwrap_or_else(|e| error!("pg_tenant: {e}"));
}

/// The search_path every statement pg_tenant runs with rights the caller lacks sees: nothing a
/// caller can create shadows a catalog function, operator or type, and temporary relations come
/// last (PostgreSQL never looks up functions or operators in pg_temp unless it is named).
pub const PINNED_SEARCH_PATH: &str = "pg_catalog, pg_temp";

/// Runs `f` as the extension owner with `search_path` pinned to [`PINNED_SEARCH_PATH`], then
/// restores the caller's identity and settings however `f` ends. The one way pg_tenant runs SQL
/// with rights the caller lacks on its own catalog; user tables go through [`as_table_owner`].
pub fn as_extension_owner<R>(f: impl FnOnce() -> R) -> R {
    elevated(extension_owner(), 0, f)
}

/// Runs `f` as the owner of `rel`, inside a security-restricted operation, as PostgreSQL's
/// VACUUM, ANALYZE, REINDEX and REFRESH MATERIALIZED VIEW do: the table owner's triggers,
/// defaults, index expressions and functions run with no more than their author's rights, and
/// cannot change the session (SET ROLE, temporary objects, ...). Row security applies to
/// everything `f` runs, FORCE ROW LEVEL SECURITY included, except to the statements `f` runs
/// through [`unfiltered`]; and everything it runs acts as no tenant, whatever the caller's
/// context (the owner's code must not borrow the caller's tenant). The search_path is pinned as
/// for the extension owner.
pub fn as_table_owner<R>(rel: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    let owner = relation_owner(rel)
        .unwrap_or_else(|| error!("pg_tenant: relation {} does not exist", rel.to_u32()));
    as_role_with(owner, pg_sys::SECURITY_RESTRICTED_OPERATION as i32, || {
        crate::gucs::without_tenant(|| {
            crate::gucs::with_settings(
                &[
                    ("search_path", PINNED_SEARCH_PATH.to_string()),
                    // (Parallel workers would not see that the tenant is hidden.)
                    ("max_parallel_workers_per_gather", "0".to_string()),
                ],
                f,
            )
        })
    })
}

/// Runs `f` as `role` inside a security-restricted operation, with the search_path pinned as
/// for the extension owner: for statements pg_tenant runs for `role` on `role`'s own objects
/// (during which PostgreSQL evaluates `role`'s expressions). Row security applies as in
/// [`as_table_owner`].
pub fn as_role_restricted<R>(role: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    elevated(role, pg_sys::SECURITY_RESTRICTED_OPERATION as i32, f)
}

// ---------------------------------------------------------------------------------------------
// The FORCE exemption of pg_tenant's own statements.
//
// pg_tenant's maintenance (a drop's deletes, counts, export and import, migrations) must see
// every row of a table it acts on as the table's owner, FORCE ROW LEVEL SECURITY or not.
// PostgreSQL decides row security when it rewrites a statement, and sets FORCE aside for an owner
// inside SECURITY_NOFORCE_RLS (as its referential checks do). Set for the whole operation, that
// flag would reach every piece of code the operation runs: the owner's triggers and functions,
// SECURITY DEFINER functions and views of other roles, and plans saved meanwhile. So pg_tenant
// sets it only while PostgreSQL parses and rewrites one statement pg_tenant wrote itself (no user
// code runs then), and clears it before that statement is planned or executed: its plan reads
// every row, while the owner's code it runs (triggers, defaults, index expressions and functions
// folded by the planner) plans its own statements with row security as usual. Rule actions are
// rewritten with the statement; one that reads a protected table through a view of the table's
// owner (another role) is refused (see `refuse_exempt_views`).
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Exemption {
    /// No statement of pg_tenant's is exempt.
    Off,
    /// The next statement parsed as `role` is exempt (set by [`unfiltered`]).
    Armed(pg_sys::Oid),
    /// That statement is being rewritten with SECURITY_NOFORCE_RLS set.
    Rewriting(pg_sys::Oid),
    /// Its queries are being planned (the flag is cleared).
    Planning(pg_sys::Oid),
}

thread_local! {
    static EXEMPTION: Cell<Exemption> = const { Cell::new(Exemption::Off) };
    /// Planner calls nested in the planning of the exempt statement (folded user functions).
    static PLANNING_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Runs `f`, whose first statement (one pg_tenant wrote, qualified, run with the caller acting
/// as a table's owner through [`as_table_owner`] or [`as_role_restricted`]) reads and writes
/// every row of the owner's tables, FORCE ROW LEVEL SECURITY notwithstanding. Nothing else `f`
/// or that statement runs is exempt.
pub fn unfiltered<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Exemption, u32);
    impl Drop for Restore {
        fn drop(&mut self) {
            if EXEMPTION.with(|e| e.get()) == Exemption::Rewriting(current_role()) {
                set_noforce_flag(false);
            }
            EXEMPTION.with(|e| e.set(self.0));
            PLANNING_DEPTH.with(|d| d.set(self.1));
        }
    }
    let _restore = Restore(
        EXEMPTION.with(|e| e.get()),
        PLANNING_DEPTH.with(|d| d.get()),
    );
    EXEMPTION.with(|e| e.set(Exemption::Armed(current_role())));
    PLANNING_DEPTH.with(|d| d.set(0));
    f()
}

fn set_noforce_flag(on: bool) {
    let mut user = pg_sys::Oid::INVALID;
    let mut context: i32 = 0;
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        let bit = pg_sys::SECURITY_NOFORCE_RLS as i32;
        let context = if on { context | bit } else { context & !bit };
        pg_sys::SetUserIdAndSecContext(user, context);
    }
}

/// After a statement is parsed (post_parse_analyze_hook): the armed statement of pg_tenant's is
/// rewritten with FORCE set aside.
fn statement_parsed() {
    if let Exemption::Armed(role) = EXEMPTION.with(|e| e.get()) {
        if role == current_role() {
            set_noforce_flag(true);
            EXEMPTION.with(|e| e.set(Exemption::Rewriting(role)));
        }
    }
}

/// As a statement is planned (planner_hook): the exemption ends before the exempt statement's
/// queries are planned; each of them is checked for views of other owners once planned.
fn planning_starts() -> Option<pg_sys::Oid> {
    match EXEMPTION.with(|e| e.get()) {
        Exemption::Rewriting(role) => {
            set_noforce_flag(false);
            EXEMPTION.with(|e| e.set(Exemption::Planning(role)));
            Some(role)
        }
        Exemption::Planning(role) if PLANNING_DEPTH.with(|d| d.get()) == 0 => Some(role),
        _ => None,
    }
}

/// As a statement's executor starts, or a utility statement runs: the exempt statement has been
/// planned (its exemption is over; a plan made without pg_tenant's planner hook is checked here).
///
/// # Safety
/// `stmt` is the statement's plan (or null).
pub unsafe fn statement_executes(stmt: *mut pg_sys::PlannedStmt) {
    match EXEMPTION.with(|e| e.get()) {
        Exemption::Rewriting(role) => {
            set_noforce_flag(false);
            EXEMPTION.with(|e| e.set(Exemption::Off));
            refuse_exempt_views(stmt, role);
        }
        Exemption::Planning(_) if PLANNING_DEPTH.with(|d| d.get()) == 0 => {
            EXEMPTION.with(|e| e.set(Exemption::Off));
        }
        _ => {}
    }
    if let Some(role) = NOFORCE_DROP_ROLE.with(|r| r.get()) {
        refuse_exempt_views(stmt, role);
    }
}

static mut PREV_PLANNER_HOOK: pg_sys::planner_hook_type = None;
static mut PREV_POST_PARSE_ANALYZE_HOOK: pg_sys::post_parse_analyze_hook_type = None;

unsafe extern "C-unwind" {
    fn standard_planner(
        parse: *mut pg_sys::Query,
        query_string: *const std::ffi::c_char,
        cursor_options: std::ffi::c_int,
        bound_params: pg_sys::ParamListInfo,
    ) -> *mut pg_sys::PlannedStmt;
}

#[pg_guard]
unsafe extern "C-unwind" fn post_parse_analyze(
    pstate: *mut pg_sys::ParseState,
    query: *mut pg_sys::Query,
    jstate: *mut pg_sys::JumbleState,
) {
    if let Some(prev) = PREV_POST_PARSE_ANALYZE_HOOK {
        prev(pstate, query, jstate);
    }
    statement_parsed();
}

// Not #[pg_guard]: an error in the planner passes through as PostgreSQL raised it (see
// crate::hooks); the Rust work runs in guarded functions.
unsafe extern "C-unwind" fn planner(
    parse: *mut pg_sys::Query,
    query_string: *const std::ffi::c_char,
    cursor_options: std::ffi::c_int,
    bound_params: pg_sys::ParamListInfo,
) -> *mut pg_sys::PlannedStmt {
    let exempt = exempt_planning_starts();
    if exempt {
        PLANNING_DEPTH.with(|d| d.set(d.get() + 1));
    }
    let stmt = match PREV_PLANNER_HOOK {
        Some(prev) => prev(parse, query_string, cursor_options, bound_params),
        None => standard_planner(parse, query_string, cursor_options, bound_params),
    };
    if exempt {
        PLANNING_DEPTH.with(|d| d.set(d.get() - 1));
        exempt_statement_planned(stmt);
    }
    stmt
}

#[pg_guard]
unsafe extern "C-unwind" fn exempt_planning_starts() -> bool {
    crate::error::guarded(planning_starts).is_some()
}

#[pg_guard]
unsafe extern "C-unwind" fn exempt_statement_planned(stmt: *mut pg_sys::PlannedStmt) {
    if let Exemption::Planning(role) = EXEMPTION.with(|e| e.get()) {
        crate::error::guarded(|| refuse_exempt_views(stmt, role));
    }
}

/// The owner of a relation (from the syscache), or None when it does not exist.
pub fn relation_owner(rel: pg_sys::Oid) -> Option<pg_sys::Oid> {
    unsafe {
        let tuple = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::RELOID as _,
            pg_sys::Datum::from(rel),
        );
        if tuple.is_null() {
            return None;
        }
        let form = pg_sys::GETSTRUCT(tuple) as pg_sys::Form_pg_class;
        let owner = (*form).relowner;
        pg_sys::ReleaseSysCache(tuple);
        Some(owner)
    }
}

fn elevated<R>(role: pg_sys::Oid, flags: i32, f: impl FnOnce() -> R) -> R {
    as_role_with(role, flags, || {
        crate::gucs::with_settings(&[("search_path", PINNED_SEARCH_PATH.to_string())], f)
    })
}

/// Runs `f` with `role`'s privileges (the caller's own settings), then restores the caller's
/// identity however `f` ends. For DDL that must create objects as their future owner; SQL with
/// rights the caller lacks goes through [`as_extension_owner`] or [`as_table_owner`].
pub fn as_role<R>(role: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    as_role_with(role, 0, f)
}

thread_local! {
    /// The role a Citus worker acts as for tenant.drop() with FORCE set aside (node_context).
    static NOFORCE_DROP_ROLE: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
}

/// A Citus worker sets FORCE ROW LEVEL SECURITY aside for `role` while a drop token is in force
/// (None when it ends). That exemption covers whole statements Citus sends (the shards' deletes)
/// and the code they run, so SECURITY DEFINER functions and views of other roles are refused
/// meanwhile, and the plans made meanwhile are forgotten when it ends.
pub fn noforce_for_drop(role: Option<pg_sys::Oid>) {
    let ended = role.is_none() && NOFORCE_DROP_ROLE.with(|r| r.get()).is_some();
    NOFORCE_DROP_ROLE.with(|r| r.set(role));
    if ended {
        // Row security is decided when a statement is planned: a plan the owner's code saved
        // (a PL/pgSQL function's) would read without it later in the session. Every cached
        // plan of this backend is made again at its next use (as DISCARD PLANS does).
        unsafe { pg_sys::ResetPlanCache() };
    }
}

/// The role for which FORCE ROW LEVEL SECURITY is set aside at this moment, if any: an exempt
/// statement of pg_tenant's being rewritten, or a Citus worker's drop.
fn noforce_role() -> Option<pg_sys::Oid> {
    match EXEMPTION.with(|e| e.get()) {
        Exemption::Rewriting(role) => Some(role),
        _ => NOFORCE_DROP_ROLE.with(|r| r.get()),
    }
}

static mut PREV_FMGR_HOOK: pg_sys::fmgr_hook_type = None;

/// Installs the hooks (from _PG_init): the fmgr hook, which PostgreSQL calls as a SECURITY
/// DEFINER function (or one with SET clauses) starts and ends; the parse-analysis and planner
/// hooks, which bound the exemption of pg_tenant's own statements.
pub fn init() {
    unsafe {
        PREV_FMGR_HOOK = pg_sys::fmgr_hook;
        pg_sys::fmgr_hook = Some(fmgr_hook);
        PREV_POST_PARSE_ANALYZE_HOOK = pg_sys::post_parse_analyze_hook;
        pg_sys::post_parse_analyze_hook = Some(post_parse_analyze);
        PREV_PLANNER_HOOK = pg_sys::planner_hook;
        pg_sys::planner_hook = Some(planner);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn fmgr_hook(
    event: pg_sys::FmgrHookEventType::Type,
    flinfo: *mut pg_sys::FmgrInfo,
    arg: *mut pg_sys::Datum,
) {
    if event == pg_sys::FmgrHookEventType::FHET_START && !flinfo.is_null() {
        let function = (*flinfo).fn_oid;
        crate::error::guarded(|| refuse_foreign_definer(function));
    }
    if let Some(prev) = PREV_FMGR_HOOK {
        prev(event, flinfo, arg);
    }
}

/// While FORCE ROW LEVEL SECURITY is set aside for a role, PostgreSQL passes that exemption on
/// to every SECURITY DEFINER function called meanwhile: one of another role would read that
/// role's protected tables unfiltered. Refused (42501). (No function runs while pg_tenant's own
/// statement is rewritten; this holds for a Citus worker's drop, and in case one ever did.)
fn refuse_foreign_definer(function: pg_sys::Oid) {
    let Some(acting) = noforce_role() else {
        return;
    };
    let (definer, owner) = unsafe {
        let tuple = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::PROCOID as _,
            pg_sys::Datum::from(function),
        );
        if tuple.is_null() {
            return;
        }
        let form = pg_sys::GETSTRUCT(tuple) as pg_sys::Form_pg_proc;
        let found = ((*form).prosecdef, (*form).proowner);
        pg_sys::ReleaseSysCache(tuple);
        found
    };
    // (A definer that bypasses row security anyway, a superuser's, gains nothing from it.)
    if definer && owner != acting && !bypasses_rls(owner) {
        crate::error::TenantError::DefinerInMaintenance {
            function: unsafe {
                std::ffi::CStr::from_ptr(pg_sys::format_procedure(function))
                    .to_string_lossy()
                    .into_owned()
            },
            owner: role_name(owner),
        }
        .raise();
    }
}

/// PostgreSQL reads the tables under a view (or in a rule's action) with the view's owner's
/// rights, and with FORCE ROW LEVEL SECURITY set aside it would read the view owner's own
/// protected table unfiltered. A plan made from a statement rewritten with the exemption for
/// `acting` that reads a table with FORCE ROW LEVEL SECURITY with the rights of that table's
/// owner (another role, subject to row security) is refused (42501).
///
/// # Safety
/// `stmt` is a plan (or null).
unsafe fn refuse_exempt_views(stmt: *mut pg_sys::PlannedStmt, acting: pg_sys::Oid) {
    if stmt.is_null() {
        return;
    }
    let rtable = pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*stmt).rtable);
    for rte in rtable.iter_ptr() {
        if rte.is_null() || (*rte).rtekind != pg_sys::RTEKind::RTE_RELATION {
            continue;
        }
        let reader = (*rte).checkAsUser;
        if reader == pg_sys::Oid::INVALID || reader == acting || bypasses_rls(reader) {
            continue;
        }
        let tuple = pg_sys::SearchSysCache1(
            pg_sys::SysCacheIdentifier::RELOID as _,
            pg_sys::Datum::from((*rte).relid),
        );
        if tuple.is_null() {
            continue;
        }
        let form = pg_sys::GETSTRUCT(tuple) as pg_sys::Form_pg_class;
        let exempted = (*form).relrowsecurity
            && (*form).relforcerowsecurity
            // (Owner as PostgreSQL decides it: a member of the owning role counts.)
            && pg_sys::has_privs_of_role(reader, (*form).relowner);
        pg_sys::ReleaseSysCache(tuple);
        if exempted {
            crate::error::TenantError::ViewInMaintenance {
                table: std::ffi::CStr::from_ptr(pg_sys::get_rel_name((*rte).relid))
                    .to_string_lossy()
                    .into_owned(),
                owner: role_name(reader),
            }
            .raise();
        }
    }
}

fn as_role_with<R>(role: pg_sys::Oid, flags: i32, f: impl FnOnce() -> R) -> R {
    let mut saved_user = pg_sys::Oid::INVALID;
    let mut saved_context: i32 = 0;
    unsafe { pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context) };

    // As PostgreSQL's maintenance commands do: every setting changed while the role acts (a
    // plain SET or set_config(..., false) in its code included, which would otherwise outlive
    // this and reach the caller's session) is undone when it is done.
    struct Restore(pg_sys::Oid, i32, std::ffi::c_int);
    impl Drop for Restore {
        fn drop(&mut self) {
            unsafe {
                pg_sys::AtEOXact_GUC(false, self.2);
                pg_sys::SetUserIdAndSecContext(self.0, self.1);
            }
        }
    }
    let _restore = Restore(saved_user, saved_context, unsafe {
        pg_sys::NewGUCNestLevel()
    });
    unsafe {
        pg_sys::SetUserIdAndSecContext(
            role,
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32 | flags,
        )
    };
    f()
}

/// Takes one of pg_tenant's named locks until the end of the transaction: `exclusive` (FOR
/// UPDATE) or shared with other shared holders (FOR SHARE). They are row locks on
/// tenant_data.locks, which only the extension owner may lock: an advisory lock's key is public, and
/// a table lock in SHARE mode can be blocked by anyone's PREPARE of an INSERT (which locks the
/// table while it is parsed, before privileges are checked). On a database not updated to 0.3.0
/// (no tenant_data.locks), `fallback` is run instead.
pub fn take_named_lock(name: &str, exclusive: bool, fallback: &str) {
    // (Not to_regclass('tenant_data.locks'): naming a schema the caller may not use is an error.)
    let exists = !tables_in_old_schema();
    if !exists {
        run_as_owner(fallback, &[]);
        return;
    }
    let mode = if exclusive { "UPDATE" } else { "SHARE" };
    run_as_owner(
        &format!("SELECT 1 FROM tenant_data.locks WHERE name OPERATOR(pg_catalog.=) $1 FOR {mode}"),
        &[name.into()],
    );
}
