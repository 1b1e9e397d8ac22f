//! Citus routing: a tenant's query on a table distributed by its tenant column goes to the
//! tenant's shard only, without the application writing `WHERE tenant_id = ...`.
//!
//! Citus prunes shards on `distribution_column = <constant>` (or a prepared statement's
//! parameter), never on the row-security policy's `tenant_column = tenant.current()`: a stable
//! function call, which Citus neither prunes on nor evaluates first (the policy alone makes every
//! query fan out to all shards). So, before Citus's planner sees a SELECT, UPDATE or DELETE
//! (pg_tenant's planner hook runs first: Citus must be loaded first and calls no earlier hook),
//! this adds `tenant_column OPERATOR(pg_catalog.=) '<the tenant>'::uuid` to each relation of the
//! query, subqueries, CTEs and sublinks included, that
//! - carries a row-security qual (PostgreSQL's rewriter put it there: the policy applies to this
//!   role and command) with the conjunct `tenant_column = tenant.current()`, that of the policy
//!   protect() installs; a policy that also admits other rows (shared rows: `OR ... IS NULL`) has
//!   no such conjunct. Every row the query can read or change there already satisfies that
//!   conjunct, so the constant, the current tenant's id, narrows nothing the policy admits: the
//!   results are the same, only the shards asked are fewer;
//! - is a Citus table hash-distributed by that very column (not a reference table, a local table,
//!   a table distributed by another column).
//!
//! Nothing is added with no tenant in force (an administrator, tenant.drop(), pg_tenant's
//! maintenance, a table owner's code run with the tenant hidden), for a role row security does
//! not filter (a superuser acting as a tenant sees what it saw), for INSERT (Citus routes it by
//! the row), the SELECT of an INSERT ... SELECT and MERGE, nor when `pg_tenant.citus_routing` is
//! off.
//!
//! The constant goes into the query's WHERE clause when the relation is one of its FROM items
//! (where Citus's fast-path planner looks for it) unless the WHERE clause already names that
//! column (the application's own `tenant_id = $1` keeps Citus's pruning at execution); otherwise
//! (a relation inside a JOIN ... ON, beside an outer join) it joins the relation's row-security
//! quals, which apply to the relation's own rows exactly as the policy does.
//!
//! A plan that names the tenant is valid for that tenant only: crate::tenant_plans marks it, and
//! PostgreSQL plans it again when the tenant context changes (a prepared statement, a PL/pgSQL
//! function's plans). A plan no cache holds that starts for another tenant than its own (a SQL
//! function's later statements, all planned when it starts, after its body changed the tenant)
//! is refused by the executor hook here rather than run on the wrong shard.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr};

use pgrx::pg_sys;
use pgrx::prelude::*;

/// A relation of the query whose row-security qual compares `var` with tenant.current().
struct Candidate {
    query: *mut pg_sys::Query,
    rtindex: c_int,
    relid: pg_sys::Oid,
    var: *mut pg_sys::Var,
    /// The function compared with (tenant.current() once checked).
    function: pg_sys::Oid,
}

thread_local! {
    /// The hash distribution column (attnum) of each relation looked up, None when it is no
    /// Citus table distributed by hash. Forgotten on the relation's relcache invalidation (Citus
    /// sends one when it changes a table's distribution; protect() when it changes policies).
    static DISTRIBUTION: RefCell<HashMap<pg_sys::Oid, Option<i16>>> = RefCell::new(HashMap::new());
    /// tenant."current"(boolean), once a function id was found to be it.
    static CURRENT_FUNCTION: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::Oid::INVALID) };
    /// uuid's equality operator (pg_catalog.=).
    static UUID_EQ: Cell<pg_sys::Oid> = const { Cell::new(pg_sys::Oid::INVALID) };
    /// INSERT or MERGE statements being planned (an error while planning one leaves it set until
    /// its transaction or savepoint aborts: see [`on_xact`]).
    static PLANNING_INSERT: Cell<u32> = const { Cell::new(0) };
}

/// Transaction events (registered with crate::xact from _PG_init): an error that left the
/// planner of an INSERT has aborted a transaction or a savepoint by the time anything is planned
/// again.
pub fn on_xact(event: pg_sys::XactEvent::Type) {
    if crate::xact::ended(event).is_some() {
        PLANNING_INSERT.with(|p| p.set(0));
    }
}

/// Subtransaction events (registered with crate::xact): see [`on_xact`].
pub fn on_subxact(event: pg_sys::SubXactEvent::Type, _level: i32) {
    if event == pg_sys::SubXactEvent::SUBXACT_EVENT_ABORT_SUB {
        PLANNING_INSERT.with(|p| p.set(0));
    }
}

static mut PREV_PLANNER_HOOK: pg_sys::planner_hook_type = None;
static mut PREV_EXECUTOR_START: pg_sys::ExecutorStart_hook_type = None;

/// Installs the planner and executor hooks and the relcache callback (from _PG_init).
pub fn init() {
    unsafe {
        crate::hooks::install_hook!(PREV_PLANNER_HOOK, planner_hook, planner);
        crate::hooks::install_hook!(PREV_EXECUTOR_START, ExecutorStart_hook, executor_start);
    }
    crate::xact::on_relcache(forget_relation);
}

// Not #[pg_guard]: an error in the planner passes through as PostgreSQL raised it (see
// crate::hooks); the Rust work runs in guarded functions.
crate::hooks::planner_hook!(fn planner(call) {
    let parse = call.parse;
    // (Looked up once per planning: the three steps below need Citus's metadata.)
    let citus = !parse.is_null() && citus_metadata();
    if citus {
        super::citus_wrapped::wrap_filtered_tables(parse);
        super::citus_wrapped::repair_security_quals(parse);
    }
    let mut tenant = [0u8; 16];
    let insert = !parse.is_null()
        && matches!(
            (*parse).commandType,
            pg_sys::CmdType::CMD_INSERT | pg_sys::CmdType::CMD_MERGE
        );
    // Citus plans the SELECT of an INSERT ... SELECT apart (with no query string): left alone as
    // the INSERT is (routed, Citus would pull its rows to the coordinator and COPY them into the
    // shards, which row security refuses).
    let part_of_insert = call.query_string.is_null() && PLANNING_INSERT.with(|p| p.get()) > 0;
    let routed = citus && !insert && !part_of_insert && route_query(parse, &mut tenant);
    if insert {
        PLANNING_INSERT.with(|p| p.set(p.get() + 1));
    }
    let stmt = call.run(PREV_PLANNER_HOOK);
    if insert {
        PLANNING_INSERT.with(|p| p.set(p.get().saturating_sub(1)));
    }
    if routed {
        routed_plan(stmt, &tenant);
    }
    stmt
});

#[pg_guard]
unsafe extern "C-unwind" fn citus_metadata() -> bool {
    crate::citus::metadata_present()
}

#[pg_guard]
unsafe extern "C-unwind" fn route_query(parse: *mut pg_sys::Query, tenant: &mut [u8; 16]) -> bool {
    crate::error::guarded(|| match route(parse) {
        Some(id) => {
            *tenant = *id.as_bytes();
            true
        }
        None => false,
    })
}

#[pg_guard]
unsafe extern "C-unwind" fn routed_plan(stmt: *mut pg_sys::PlannedStmt, tenant: &[u8; 16]) {
    crate::tenant_plans::depends_on_tenant(stmt, tenant);
}

unsafe extern "C-unwind" fn executor_start(query: *mut pg_sys::QueryDesc, eflags: c_int) {
    refuse_plan_of_another_tenant((*query).plannedstmt);
    crate::hooks::executor_start(PREV_EXECUTOR_START, query, eflags);
}

/// A plan routed for one tenant starting while another is in force: refused (see the module's
/// comment). With no tenant in force it runs, and fails closed on the workers as any other would.
#[pg_guard]
unsafe extern "C-unwind" fn refuse_plan_of_another_tenant(stmt: *mut pg_sys::PlannedStmt) {
    let Some(planned) = crate::tenant_plans::planned_for(stmt) else {
        return;
    };
    crate::error::guarded(|| {
        if let Some(now) = crate::gucs::current_tenant() {
            if crate::tenant_plans::tenant_hash(now.as_bytes()) != planned {
                crate::error::TenantError::RoutedForAnotherTenant.raise();
            }
        }
    })
}

/// Adds the tenant's constant to `parse` where it narrows nothing (see the module's comment);
/// the tenant when it added any.
/// (Called where Citus's metadata is present.)
unsafe fn route(parse: *mut pg_sys::Query) -> Option<pgrx::Uuid> {
    if parse.is_null() || !crate::gucs::citus_routing() {
        return None;
    }
    match (*parse).commandType {
        pg_sys::CmdType::CMD_SELECT | pg_sys::CmdType::CMD_UPDATE | pg_sys::CmdType::CMD_DELETE => {
        }
        _ => return None,
    }
    let mut found = candidates(parse);
    found.retain(|c| {
        is_tenant_current(c.function) && distribution_attnum(c.relid) == Some((*c.var).varattno)
    });
    if found.is_empty() {
        return None;
    }
    // The accessor tenant.current() uses (raising as it would when the context no longer holds).
    let tenant = crate::gucs::current_tenant()?;
    let outer_joins = has_outer_join(parse.cast(), std::ptr::null_mut());
    for candidate in &found {
        add_tenant_qual(candidate, tenant, outer_joins);
    }
    Some(tenant)
}

/// Whether the query tree below `node` holds an outer join (at any level: the planner pulls
/// subqueries up into their parent).
#[pg_guard]
pub(super) unsafe extern "C-unwind" fn has_outer_join(
    node: *mut pg_sys::Node,
    context: *mut c_void,
) -> bool {
    if node.is_null() {
        return false;
    }
    match (*node).type_ {
        pg_sys::NodeTag::T_Query => {
            pg_sys::query_tree_walker(node.cast(), Some(has_outer_join), context, 0)
        }
        pg_sys::NodeTag::T_JoinExpr
            if matches!(
                (*(node as *mut pg_sys::JoinExpr)).jointype,
                pg_sys::JoinType::JOIN_LEFT
                    | pg_sys::JoinType::JOIN_RIGHT
                    | pg_sys::JoinType::JOIN_FULL
                    | pg_sys::JoinType::JOIN_ANTI
            ) =>
        {
            true
        }
        _ => pg_sys::expression_tree_walker(node, Some(has_outer_join), context),
    }
}

/// What [`each_filtered_table`] calls: (query, range-table index, entry).
pub(super) type VisitTable<'a> =
    &'a mut dyn FnMut(*mut pg_sys::Query, c_int, *mut pg_sys::RangeTblEntry);

/// Calls `visit` for each table with row-security quals (as PostgreSQL's rewriter put them) of
/// each query in the tree below `node`: subqueries, CTEs and sublinks included.
///
/// # Safety
/// `node` is a query tree (or null).
pub(super) unsafe fn each_filtered_table(node: *mut pg_sys::Node, mut visit: VisitTable) {
    walk_filtered(node, (&raw mut visit).cast());
}

/// Whether range-table entry `rte` (or null) is a table with row-security quals.
///
/// # Safety
/// `rte` is a range-table entry of a query tree (or null).
pub(super) unsafe fn is_filtered_table(rte: *mut pg_sys::RangeTblEntry) -> bool {
    !rte.is_null()
        && (*rte).rtekind == pg_sys::RTEKind::RTE_RELATION
        && !(*rte).securityQuals.is_null()
}

#[pg_guard]
unsafe extern "C-unwind" fn walk_filtered(node: *mut pg_sys::Node, context: *mut c_void) -> bool {
    if node.is_null() {
        return false;
    }
    if (*node).type_ == pg_sys::NodeTag::T_Query {
        let query = node as *mut pg_sys::Query;
        let visit = &mut *(context as *mut VisitTable);
        let rtable = pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*query).rtable);
        for (i, rte) in rtable.iter_ptr().enumerate() {
            if is_filtered_table(rte) {
                visit(query, i as c_int + 1, rte);
            }
        }
        return pg_sys::query_tree_walker(query, Some(walk_filtered), context, 0);
    }
    pg_sys::expression_tree_walker(node, Some(walk_filtered), context)
}

/// The relations of the query tree with a row-security conjunct `column = f()` where f might be
/// tenant.current().
unsafe fn candidates(parse: *mut pg_sys::Query) -> Vec<Candidate> {
    let eq = uuid_eq();
    let mut found = Vec::new();
    each_filtered_table(parse.cast(), &mut |query, rtindex, rte| {
        let quals = pgrx::PgList::<pg_sys::Node>::from_pg((*rte).securityQuals);
        let conjunct = quals
            .iter_ptr()
            .find_map(|qual| tenant_conjunct(qual, rtindex, eq));
        if let Some((var, function)) = conjunct {
            found.push(Candidate {
                query,
                rtindex,
                relid: (*rte).relid,
                var,
                function,
            });
        }
    });
    found
}

/// In `qual` (a security qual of range-table entry `rtindex`, or part of one that must hold for
/// it to hold): a conjunct `column = f()` with uuid's equality, as (column, f).
unsafe fn tenant_conjunct(
    qual: *mut pg_sys::Node,
    rtindex: c_int,
    eq: pg_sys::Oid,
) -> Option<(*mut pg_sys::Var, pg_sys::Oid)> {
    if qual.is_null() {
        return None;
    }
    let any_of = |list: *mut pg_sys::List| {
        let items = pgrx::PgList::<pg_sys::Node>::from_pg(list);
        let found = items
            .iter_ptr()
            .find_map(|q| tenant_conjunct(q, rtindex, eq));
        found
    };
    match (*qual).type_ {
        pg_sys::NodeTag::T_List => any_of(qual.cast()),
        pg_sys::NodeTag::T_BoolExpr => {
            let expr = qual as *mut pg_sys::BoolExpr;
            if (*expr).boolop != pg_sys::BoolExprType::AND_EXPR {
                return None;
            }
            any_of((*expr).args)
        }
        pg_sys::NodeTag::T_OpExpr => {
            let op = qual as *mut pg_sys::OpExpr;
            let args = pgrx::PgList::<pg_sys::Node>::from_pg((*op).args);
            if (*op).opno != eq || args.len() != 2 {
                return None;
            }
            let (a, b) = (args.get_ptr(0)?, args.get_ptr(1)?);
            column_and_function(a, b, rtindex).or_else(|| column_and_function(b, a, rtindex))
        }
        _ => None,
    }
}

unsafe fn column_and_function(
    column: *mut pg_sys::Node,
    function: *mut pg_sys::Node,
    rtindex: c_int,
) -> Option<(*mut pg_sys::Var, pg_sys::Oid)> {
    if (*column).type_ != pg_sys::NodeTag::T_Var || (*function).type_ != pg_sys::NodeTag::T_FuncExpr
    {
        return None;
    }
    let var = column as *mut pg_sys::Var;
    ((*var).varno == rtindex && (*var).varlevelsup == 0 && (*var).varattno > 0)
        .then(|| (var, (*(function as *mut pg_sys::FuncExpr)).funcid))
}

/// Whether `function` is pg_tenant's tenant."current"(boolean).
fn is_tenant_current(function: pg_sys::Oid) -> bool {
    if function == CURRENT_FUNCTION.with(|f| f.get()) {
        return true;
    }
    let found = unsafe {
        let name = pg_sys::get_func_name(function);
        !name.is_null()
            && CStr::from_ptr(name) == c"current"
            && {
                let schema = pg_sys::get_namespace_name(pg_sys::get_func_namespace(function));
                !schema.is_null() && CStr::from_ptr(schema) == c"tenant"
            }
            && {
                let extension = pg_sys::get_extension_oid(c"pg_tenant".as_ptr(), true);
                extension != pg_sys::Oid::INVALID
                    && pg_sys::getExtensionOfObject(pg_sys::ProcedureRelationId, function)
                        == extension
            }
    };
    if found {
        CURRENT_FUNCTION.with(|f| f.set(function));
    }
    found
}

fn uuid_eq() -> pg_sys::Oid {
    let known = UUID_EQ.with(|u| u.get());
    if known != pg_sys::Oid::INVALID {
        return known;
    }
    let eq = unsafe {
        (*pg_sys::lookup_type_cache(pg_sys::UUIDOID, pg_sys::TYPECACHE_EQ_OPR as c_int)).eq_opr
    };
    UUID_EQ.with(|u| u.set(eq));
    eq
}

/// The column `rel` is hash-distributed by (None: not a Citus table distributed by hash).
fn distribution_attnum(rel: pg_sys::Oid) -> Option<i16> {
    if let Some(known) = DISTRIBUTION.with(|d| d.borrow().get(&rel).copied()) {
        return known;
    }
    // (Reads Citus's metadata with SPI; the planner call it makes comes back here with no
    // candidate.)
    let attnum = crate::citus::distribution_column(rel).and_then(|name| {
        let name = std::ffi::CString::new(name).ok()?;
        let attnum = unsafe { pg_sys::get_attnum(rel, name.as_ptr()) };
        (attnum > 0).then_some(attnum)
    });
    DISTRIBUTION.with(|d| {
        if let Ok(mut d) = d.try_borrow_mut() {
            d.insert(rel, attnum);
        }
    });
    attnum
}

/// A relation's relcache entry was invalidated (InvalidOid: all of them).
fn forget_relation(rel: pg_sys::Oid) {
    DISTRIBUTION.with(|d| {
        if let Ok(mut d) = d.try_borrow_mut() {
            if rel == pg_sys::Oid::INVALID {
                d.clear();
            } else {
                d.remove(&rel);
            }
        }
    });
}

/// Adds `column = '<tenant>'::uuid` for the candidate (in a query tree with an outer join,
/// `column = ANY ('{<tenant>}'::uuid[])`).
unsafe fn add_tenant_qual(candidate: &Candidate, tenant: pgrx::Uuid, outer_joins: bool) {
    let eq = uuid_eq();
    let value = pg_sys::palloc(16) as *mut u8;
    std::ptr::copy_nonoverlapping(tenant.as_bytes().as_ptr(), value, 16);
    let column = pg_sys::copyObjectImpl(candidate.var.cast()) as *mut pg_sys::Expr;
    let qual: *mut pg_sys::Node = if outer_joins {
        // `column = ANY ('{<tenant>}'::uuid[])`, on which Citus prunes as on the equality, but
        // which joins no equivalence class: with the policy's `column = tenant.current()`, the
        // equality would make the planner derive `tenant.current() = <tenant>`, a pseudoconstant
        // qual, which Citus refuses under an outer join on PostgreSQL 15 and 16 (XX000).
        tenant_in_array(eq, column, value)
    } else {
        // `column = <tenant>`, the form Citus's fast-path router planner takes.
        let constant = pg_sys::makeConst(
            pg_sys::UUIDOID,
            -1,
            pg_sys::Oid::INVALID,
            16,
            pg_sys::Datum::from(value),
            false,
            false,
        );
        let qual = pg_sys::make_opclause(
            eq,
            pg_sys::BOOLOID,
            false,
            column,
            constant.cast(),
            pg_sys::Oid::INVALID,
            pg_sys::Oid::INVALID,
        );
        (*(qual as *mut pg_sys::OpExpr)).opfuncid = pg_sys::get_opcode(eq);
        qual.cast()
    };
    place_tenant_qual(candidate, qual);
}

/// `column = ANY ('{<value>}'::uuid[])` with uuid's equality `eq` (`value`: 16 bytes, palloc'd).
unsafe fn tenant_in_array(
    eq: pg_sys::Oid,
    column: *mut pg_sys::Expr,
    value: *mut u8,
) -> *mut pg_sys::Node {
    let mut element = pg_sys::Datum::from(value);
    let array = pg_sys::construct_array(
        &mut element,
        1,
        pg_sys::UUIDOID,
        16,
        false,
        pg_sys::TYPALIGN_CHAR as std::ffi::c_char,
    );
    let constant = pg_sys::makeConst(
        pg_sys::UUIDARRAYOID,
        -1,
        pg_sys::Oid::INVALID,
        -1,
        pg_sys::Datum::from(array),
        false,
        false,
    );
    let qual = pg_sys::palloc0(std::mem::size_of::<pg_sys::ScalarArrayOpExpr>())
        as *mut pg_sys::ScalarArrayOpExpr;
    (*qual).xpr.type_ = pg_sys::NodeTag::T_ScalarArrayOpExpr;
    (*qual).opno = eq;
    (*qual).opfuncid = pg_sys::get_opcode(eq);
    (*qual).useOr = true;
    (*qual).inputcollid = pg_sys::Oid::INVALID;
    (*qual).args = pg_sys::list_make2_impl(
        pg_sys::NodeTag::T_List,
        pg_sys::ListCell {
            ptr_value: column.cast(),
        },
        pg_sys::ListCell {
            ptr_value: constant.cast(),
        },
    );
    (*qual).location = -1;
    qual.cast()
}

/// Adds `qual` (see [`add_tenant_qual`]): to its query's WHERE clause when the relation is one
/// of the query's FROM items and the clause does not name the column yet, else to the
/// relation's security quals.
unsafe fn place_tenant_qual(candidate: &Candidate, qual: *mut pg_sys::Node) {
    let query = candidate.query;
    let jointree = (*query).jointree;
    if !jointree.is_null()
        && in_from_list(jointree, candidate.rtindex)
        && !names_column(
            (*jointree).quals,
            candidate.rtindex,
            (*candidate.var).varattno,
        )
    {
        (*jointree).quals = pg_sys::make_and_qual((*jointree).quals, qual.cast());
    } else {
        let rtable = pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*query).rtable);
        let Some(rte) = rtable.get_ptr(candidate.rtindex as usize - 1) else {
            return;
        };
        (*rte).securityQuals = pg_sys::lappend((*rte).securityQuals, qual.cast());
    }
}

/// Whether range-table entry `rtindex` is itself one of the FROM items of `jointree` (not inside
/// a JOIN).
unsafe fn in_from_list(jointree: *mut pg_sys::FromExpr, rtindex: c_int) -> bool {
    pgrx::PgList::<pg_sys::Node>::from_pg((*jointree).fromlist)
        .iter_ptr()
        .any(|item| {
            !item.is_null()
                && (*item).type_ == pg_sys::NodeTag::T_RangeTblRef
                && (*(item as *mut pg_sys::RangeTblRef)).rtindex == rtindex
        })
}

/// Whether `quals` name column `attnum` of range-table entry `rtindex`.
unsafe fn names_column(quals: *mut pg_sys::Node, rtindex: c_int, attnum: i16) -> bool {
    if quals.is_null() {
        return false;
    }
    let mut columns: *mut pg_sys::Bitmapset = std::ptr::null_mut();
    pg_sys::pull_varattnos(quals, rtindex as pg_sys::Index, &mut columns);
    pg_sys::bms_is_member(
        attnum as c_int - pg_sys::FirstLowInvalidHeapAttributeNumber,
        columns,
    )
}
