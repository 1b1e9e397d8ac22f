//! Joins Citus 13.2 crashes on, refused before it plans them.
//!
//! To plan some joins Citus wraps a table in a subquery (`SELECT ... FROM table`) and plans that
//! apart; it carries the table's row-security quals into the subquery unchanged, and when they
//! name the table by another range-table index than the one it gets there, the planner crashes
//! (a segmentation fault: the server restarts every session). Reproduced with Citus alone and a
//! hand-written `current_setting()` policy (attack review of issue 14), as an ordinary role. It
//! wraps a table
//! - beside a distributed table, when a query joins a local (non-Citus) table with it (Citus
//!   plans one of the two sides apart: usually the local table, sometimes the distributed one);
//! - on the inner side of an outer join whose kept side "recurs" (a local or reference table,
//!   VALUES, a function, a CTE: rows Citus does not distribute).
//!
//! So a role that may read a protected table could take the coordinator down with `SELECT ...
//! FROM (VALUES (1)) v LEFT JOIN docs ...`. pg_tenant's planner hook runs before Citus's: it
//! refuses (0A000) a query where, at any level (subqueries, CTEs and sublinks included), a table
//! row security filters (row-security quals on the rewritten query) is in one of those places,
//! and says how to write it instead: with `citus.local_table_join_policy` (auto: either side of
//! a local-distributed join may be planned apart; prefer-local: the local tables;
//! prefer-distributed: the distributed ones; never: Citus refuses the join itself). Nothing
//! happens without Citus's metadata, or for a role row security does not filter (no quals, no
//! crash). Refused more often than Citus would crash (either table of a local-distributed join
//! under auto, whatever the index), never less.

use std::ffi::c_void;

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::routing::{distribution_attnum, is_citus_table};

/// What a part of a join tree holds.
#[derive(Clone, Copy, Default)]
struct Side {
    /// A hash-distributed Citus table.
    distributed: bool,
    /// A local (non-Citus) table.
    local: bool,
    /// A hash-distributed Citus table with row-security quals (the first found).
    filtered_distributed: Option<pg_sys::Oid>,
    /// A local table with row-security quals (the first found).
    filtered_local: Option<pg_sys::Oid>,
}

impl Side {
    fn with(self, other: Side) -> Side {
        Side {
            distributed: self.distributed || other.distributed,
            local: self.local || other.local,
            filtered_distributed: self.filtered_distributed.or(other.filtered_distributed),
            filtered_local: self.filtered_local.or(other.filtered_local),
        }
    }
}

/// Refuses `parse` when Citus would crash planning it (see the module's comment).
///
/// # Safety
/// `parse` is the query the planner hook received (or null).
#[pg_guard]
pub unsafe extern "C-unwind" fn refuse_crashing_joins(parse: *mut pg_sys::Query) {
    if parse.is_null() || !crate::citus::metadata_present() {
        return;
    }
    crate::error::guarded(|| {
        let mut found: Option<pg_sys::Oid> = None;
        walk(parse.cast(), (&raw mut found).cast());
        if let Some(rel) = found {
            crate::error::TenantError::CitusJoinCrash(crate::owner::relation_name(rel)).raise();
        }
    })
}

/// Walks the query tree (a Query or any node below one), stopping at the first crashing join.
#[pg_guard]
unsafe extern "C-unwind" fn walk(node: *mut pg_sys::Node, found: *mut c_void) -> bool {
    if node.is_null() {
        return false;
    }
    let out = found as *mut Option<pg_sys::Oid>;
    if (*node).type_ == pg_sys::NodeTag::T_Query {
        let query = node as *mut pg_sys::Query;
        if let Some(rel) = crashing(query) {
            *out = Some(rel);
            return true;
        }
        return pg_sys::query_tree_walker(query, Some(walk), found, 0);
    }
    pg_sys::expression_tree_walker(node, Some(walk), found)
}

/// A filtered table `query` itself (not its subqueries) would have Citus crash on, if any.
unsafe fn crashing(query: *mut pg_sys::Query) -> Option<pg_sys::Oid> {
    let jointree: *mut pg_sys::Node = (*query).jointree.cast();
    // Only queries that join tables can: most have a single relation and no join.
    if jointree.is_null() || !joins(jointree) {
        return None;
    }
    let whole = side(query, jointree);
    if whole.local && whole.distributed {
        // Which side Citus plans apart (citus.local_table_join_policy): the local tables, the
        // distributed ones, or (auto) either.
        let wrapped = match join_policy().as_str() {
            "prefer-local" => whole.filtered_local,
            "prefer-distributed" => whole.filtered_distributed,
            "never" => None,
            _ => whole.filtered_local.or(whole.filtered_distributed),
        };
        if wrapped.is_some() {
            return wrapped;
        }
    }
    outer_join(query, jointree)
}

/// citus.local_table_join_policy as it is now ("auto" when unknown).
fn join_policy() -> String {
    let value =
        unsafe { pg_sys::GetConfigOption(c"citus.local_table_join_policy".as_ptr(), true, false) };
    if value.is_null() {
        return "auto".into();
    }
    unsafe { std::ffi::CStr::from_ptr(value) }
        .to_string_lossy()
        .into_owned()
}

/// Whether the join tree `node` joins anything: two FROM items, or a JOIN.
unsafe fn joins(node: *mut pg_sys::Node) -> bool {
    match (*node).type_ {
        pg_sys::NodeTag::T_FromExpr => {
            let items =
                pgrx::PgList::<pg_sys::Node>::from_pg((*(node as *mut pg_sys::FromExpr)).fromlist);
            items.len() > 1 || items.iter_ptr().any(|item| !item.is_null() && joins(item))
        }
        pg_sys::NodeTag::T_JoinExpr => true,
        _ => false,
    }
}

/// In the join tree `node` of `query`: the filtered distributed table on the inner side of an
/// outer join whose kept side recurs, if any.
unsafe fn outer_join(query: *mut pg_sys::Query, node: *mut pg_sys::Node) -> Option<pg_sys::Oid> {
    if node.is_null() {
        return None;
    }
    match (*node).type_ {
        pg_sys::NodeTag::T_FromExpr => {
            let from = node as *mut pg_sys::FromExpr;
            pgrx::PgList::<pg_sys::Node>::from_pg((*from).fromlist)
                .iter_ptr()
                .find_map(|item| outer_join(query, item))
        }
        pg_sys::NodeTag::T_JoinExpr => {
            let join = node as *mut pg_sys::JoinExpr;
            if let Some(rel) =
                outer_join(query, (*join).larg).or_else(|| outer_join(query, (*join).rarg))
            {
                return Some(rel);
            }
            let kept_recurs = |kept: Side, inner: Side| {
                if kept.distributed {
                    None
                } else {
                    inner.filtered_distributed
                }
            };
            match (*join).jointype {
                pg_sys::JoinType::JOIN_LEFT => {
                    kept_recurs(side(query, (*join).larg), side(query, (*join).rarg))
                }
                pg_sys::JoinType::JOIN_RIGHT => {
                    kept_recurs(side(query, (*join).rarg), side(query, (*join).larg))
                }
                pg_sys::JoinType::JOIN_FULL => {
                    let (left, right) = (side(query, (*join).larg), side(query, (*join).rarg));
                    kept_recurs(left, right).or_else(|| kept_recurs(right, left))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// What the join tree `node` of `query` holds.
unsafe fn side(query: *mut pg_sys::Query, node: *mut pg_sys::Node) -> Side {
    if node.is_null() {
        return Side::default();
    }
    match (*node).type_ {
        pg_sys::NodeTag::T_RangeTblRef => {
            let index = (*(node as *mut pg_sys::RangeTblRef)).rtindex;
            let rtable = pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*query).rtable);
            rtable
                .get_ptr(index as usize - 1)
                .map_or(Side::default(), |rte| entry(rte))
        }
        pg_sys::NodeTag::T_JoinExpr => {
            let join = node as *mut pg_sys::JoinExpr;
            side(query, (*join).larg).with(side(query, (*join).rarg))
        }
        pg_sys::NodeTag::T_FromExpr => {
            pgrx::PgList::<pg_sys::Node>::from_pg((*(node as *mut pg_sys::FromExpr)).fromlist)
                .iter_ptr()
                .fold(Side::default(), |s, item| s.with(side(query, item)))
        }
        _ => Side::default(),
    }
}

/// What a range-table entry holds: a table itself; a subquery, for an outer join, whether it
/// reads a distributed table (it does not recur) and a filtered one (conservatively: Citus plans
/// a subquery apart, without wrapping its tables).
unsafe fn entry(rte: *mut pg_sys::RangeTblEntry) -> Side {
    match (*rte).rtekind {
        pg_sys::RTEKind::RTE_RELATION => {
            let rel = (*rte).relid;
            let filtered = (!(*rte).securityQuals.is_null()).then_some(rel);
            let distributed = distribution_attnum(rel).is_some();
            let local = !distributed && !is_citus_table(rel);
            Side {
                distributed,
                local,
                filtered_distributed: if distributed { filtered } else { None },
                filtered_local: if local { filtered } else { None },
            }
        }
        pg_sys::RTEKind::RTE_SUBQUERY if !(*rte).subquery.is_null() => {
            let inner = pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*(*rte).subquery).rtable)
                .iter_ptr()
                .fold(Side::default(), |s, inner| s.with(entry(inner)));
            // (Its own local tables are judged at its level.)
            Side {
                local: false,
                filtered_local: None,
                ..inner
            }
        }
        _ => Side::default(),
    }
}
