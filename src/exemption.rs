//! The FORCE ROW LEVEL SECURITY exemption of pg_tenant's own maintenance statements.
//!
//! pg_tenant's maintenance (a drop's deletes, counts, export and import, migrations) must see
//! every row of a table it acts on as the table's owner (crate::owner::as_table_owner), FORCE
//! ROW LEVEL SECURITY or not. PostgreSQL decides row security when it rewrites a statement, and
//! sets FORCE aside for an owner inside SECURITY_NOFORCE_RLS (as its referential checks do). Set
//! for a whole operation, that flag would reach every piece of code the operation runs: the
//! owner's triggers and functions, SECURITY DEFINER functions and views of other roles, and plans
//! saved meanwhile. So pg_tenant sets it only while PostgreSQL parses and rewrites one statement
//! pg_tenant wrote itself ([`unfiltered`]; no user code runs then), and clears it before that
//! statement is planned or executed: its plan reads every row, while the owner's code it runs
//! (triggers, defaults, index expressions and functions folded by the planner) plans its own
//! statements with row security as usual. Rule actions are rewritten with the statement; one that
//! reads a protected table through a view of the table's owner (another role) is refused.
//!
//! A Citus worker's drop (crate::node_context) sets FORCE aside for whole statements Citus sends;
//! the fmgr hook and the view check here refuse what would carry that exemption to other roles.

use std::cell::Cell;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::owner::{bypasses_rls, current_role, role_name};

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
/// as a table's owner through [`crate::owner::as_table_owner`] or [`crate::owner::as_role_restricted`]) reads and writes
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

/// Sets or clears SECURITY_NOFORCE_RLS in the backend's security context (the current role
/// stays).
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

crate::hooks::post_parse_analyze_hook!(fn post_parse_analyze(PREV_POST_PARSE_ANALYZE_HOOK, query) {
    statement_parsed();
    if noforce_role().is_some() {
        note_target(query);
    }
});

thread_local! {
    /// The target table of the last statement parsed with FORCE set aside (for the message of
    /// [`refuse_rule`]: a rule's action does not name the table of its rule).
    static EXEMPT_TARGET: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::Oid::INVALID) };
}

/// Notes the target table of a statement parsed with FORCE set aside.
#[pg_guard]
unsafe extern "C-unwind" fn note_target(query: *mut pg_sys::Query) {
    EXEMPT_TARGET.with(|t| t.set(target_relation(query).unwrap_or(pg_sys::Oid::INVALID)));
    if fires_rules(query) {
        crate::error::guarded(refuse_rule);
    }
}

/// Whether PostgreSQL will fire a rule of the table `query` writes, or of one its WITH queries
/// write, as it rewrites the statement: any rule on that event, enabled or not (which rules fire
/// depends on session_replication_role). A conditional `DO INSTEAD NOTHING` rule leaves no query
/// of its own to refuse later: its condition (a sub-select reading every row) joins the
/// statement's own qual. So the statement is refused before it is rewritten.
///
/// # Safety
/// `query` is an analyzed query (or null).
unsafe fn fires_rules(query: *mut pg_sys::Query) -> bool {
    if query.is_null() {
        return false;
    }
    let event = (*query).commandType;
    let writes = matches!(
        event,
        pg_sys::CmdType::CMD_INSERT | pg_sys::CmdType::CMD_UPDATE | pg_sys::CmdType::CMD_DELETE
    );
    if let Some(relid) = target_relation(query).filter(|_| writes) {
        let rel = pg_sys::RelationIdGetRelation(relid);
        if !rel.is_null() {
            let locks = (*rel).rd_rules;
            let found = !locks.is_null()
                && (0..(*locks).numLocks as usize).any(|i| {
                    let rule = *(*locks).rules.add(i);
                    !rule.is_null() && (*rule).event == event
                });
            pg_sys::RelationClose(rel);
            if found {
                return true;
            }
        }
    }
    any_with_query(query, |q| fires_rules(q))
}

/// The table a query writes (its result relation), if any.
///
/// # Safety
/// `query` is an analyzed query (or null).
unsafe fn target_relation(query: *mut pg_sys::Query) -> Option<pg_sys::Oid> {
    if query.is_null() || (*query).resultRelation <= 0 {
        return None;
    }
    let rtable = pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*query).rtable);
    let rte = rtable.get_ptr((*query).resultRelation as usize - 1)?;
    ((*rte).rtekind == pg_sys::RTEKind::RTE_RELATION).then(|| (*rte).relid)
}

/// Whether `test` holds for one of `query`'s WITH queries.
///
/// # Safety
/// `query` is a query (not null).
unsafe fn any_with_query(
    query: *mut pg_sys::Query,
    test: impl Fn(*mut pg_sys::Query) -> bool,
) -> bool {
    let ctes = pgrx::PgList::<pg_sys::CommonTableExpr>::from_pg((*query).cteList);
    let found = ctes.iter_ptr().any(|cte| {
        !cte.is_null()
            && !(*cte).ctequery.is_null()
            && (*(*cte).ctequery).type_ == pg_sys::NodeTag::T_Query
            && test((*cte).ctequery as *mut pg_sys::Query)
    });
    found
}

// Not #[pg_guard]: an error in the planner passes through as PostgreSQL raised it (see
// crate::hooks); the Rust work runs in guarded functions.
crate::hooks::planner_hook!(fn planner(call) {
    let exempt = exempt_planning_starts();
    // (Read before planning, which may scribble on the query.)
    let from_rule = made_by_rule(call.parse);
    if !exempt && from_rule {
        refuse_rule_in_worker_drop();
    }
    if exempt {
        PLANNING_DEPTH.with(|d| d.set(d.get() + 1));
    }
    let stmt = call.run(PREV_PLANNER_HOOK);
    if exempt {
        PLANNING_DEPTH.with(|d| d.set(d.get() - 1));
        exempt_statement_planned(stmt, from_rule);
    }
    stmt
});

/// Whether a rule made `query` (querySource) or one of its WITH queries: PostgreSQL rewrites a
/// data-modifying WITH query by the rules of its table in place (an unconditional `DO INSTEAD`
/// rule's action replaces it).
///
/// # Safety
/// `query` is a query (or null).
unsafe fn made_by_rule(query: *mut pg_sys::Query) -> bool {
    if query.is_null() {
        return false;
    }
    if (*query).querySource != pg_sys::QuerySource::QSRC_ORIGINAL {
        return true;
    }
    any_with_query(query, |q| made_by_rule(q))
}

#[pg_guard]
unsafe extern "C-unwind" fn exempt_planning_starts() -> bool {
    crate::error::guarded(planning_starts).is_some()
}

/// After one query of the exempt statement is planned: refused if it reads a table through
/// another role's view, or if it is a rule's action (`from_rule`).
#[pg_guard]
unsafe extern "C-unwind" fn exempt_statement_planned(
    stmt: *mut pg_sys::PlannedStmt,
    from_rule: bool,
) {
    if let Exemption::Planning(role) = EXEMPTION.with(|e| e.get()) {
        crate::error::guarded(|| {
            refuse_exempt_views(stmt, role);
            if from_rule {
                refuse_rule();
            }
        });
    }
}

/// A Citus worker's drop sets FORCE aside for whole statements, and their rules' actions are
/// rewritten with it: refused like those of pg_tenant's own exempt statements.
#[pg_guard]
unsafe extern "C-unwind" fn refuse_rule_in_worker_drop() {
    if NOFORCE_DROP_ROLE.with(|r| r.get()).is_some() {
        crate::error::guarded(refuse_rule);
    }
}

/// PostgreSQL rewrites a statement's rules with the statement, so the actions of the table
/// owner's rules on a table pg_tenant maintains would be rewritten with FORCE ROW LEVEL
/// SECURITY set aside too, and read or write every tenant's rows of the owner's tables (a
/// `DO ALSO INSERT INTO stash SELECT * FROM docs` during tenant.drop()). The owner's code runs
/// with row security as usual, so a rule's action in an exempt statement (or in one of its
/// WITH queries) is refused (42501) before anything runs. (A `DO INSTEAD NOTHING` rule has no action to plan: the rows it keeps
/// are found by tenant.drop()'s count.)
///
/// (Called as a query made by a rule, querySource not QSRC_ORIGINAL, is planned.)
fn refuse_rule() {
    let table = unsafe { relation_display_name(EXEMPT_TARGET.with(|t| t.get())) };
    crate::error::TenantError::RuleInMaintenance { table }.raise();
}

/// A relation's name as a message shows it.
unsafe fn relation_display_name(rel: pg_sys::Oid) -> String {
    if rel == pg_sys::Oid::INVALID {
        return "(unknown)".into();
    }
    let name = pg_sys::get_rel_name(rel);
    if name.is_null() {
        return "(unknown)".into();
    }
    std::ffi::CStr::from_ptr(name)
        .to_string_lossy()
        .into_owned()
}

thread_local! {
    /// The role a Citus worker acts as for tenant.drop() with FORCE set aside (node_context).
    static NOFORCE_DROP_ROLE: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
}

/// A Citus worker sets FORCE ROW LEVEL SECURITY aside for `role` while a drop token is in force
/// (None when it ends): sets or clears SECURITY_NOFORCE_RLS. That exemption covers whole
/// statements Citus sends (the shards' deletes) and the code they run, so SECURITY DEFINER
/// functions and views of other roles are refused meanwhile, and the plans made meanwhile are
/// forgotten when it ends.
pub fn noforce_for_drop(role: Option<pg_sys::Oid>) {
    set_noforce_flag(role.is_some());
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
        crate::hooks::install_hook!(PREV_FMGR_HOOK, fmgr_hook, fmgr_hook);
        crate::hooks::install_hook!(
            PREV_POST_PARSE_ANALYZE_HOOK,
            post_parse_analyze_hook,
            post_parse_analyze
        );
        crate::hooks::install_hook!(PREV_PLANNER_HOOK, planner_hook, planner);
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
