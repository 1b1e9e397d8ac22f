//! Protected tables kept out of Citus's faulty wrapping, and row-security quals repaired.
//!
//! To plan some joins (a local table joined with a distributed one, a distributed table under an
//! outer join that keeps the rows of a local or reference table, `VALUES` or a function, a
//! subquery Citus plans apart beside them) Citus 13.2 wraps a table in a subquery of its own
//! (`WrapRteRelationIntoSubquery`: the table's range-table entry copied as the subquery's only
//! one; `CreateOuterSubquery`: another such copy). It copies the entry with its row-security
//! quals but leaves their columns naming the entry's place in the outer query; PostgreSQL's
//! planner then crashes (a segmentation fault: the server restarts every session) whenever that
//! place was not the first. Reproduced with Citus alone and a hand-written `current_setting()`
//! policy, as an ordinary role (attack review of issue 14): any role that may read a protected
//! table could take the coordinator down with `SELECT ... FROM (VALUES (1)) v LEFT JOIN docs ...`.
//!
//! Two defences, both in pg_tenant's planner hook, which runs before Citus's planner:
//! - [`wrap_filtered_tables`]: each table with row-security quals that is not the first entry of
//!   its query's range table (nor the query's target) becomes a subquery of its own first,
//!   `(SELECT <its columns> FROM table) alias`, the quals inside naming entry 1, exactly what an
//!   application could have written. Citus's copies of the table then name entry 1 of a
//!   one-entry query, which is right, wherever Citus copies them, including the copies it
//!   plans with `standard_planner` directly, which no hook sees. PostgreSQL's planner pulls such
//!   a subquery back up into its parent, so a local plan is the plan the query had.
//! - [`repair_security_quals`]: for what Citus plans through the planner hooks, the quals of each
//!   table are made to name that table where it is.
//!
//! In a well-formed query a table's row-security quals always name that table (a policy's quals
//! are about its own table's row): neither changes what a query returns.

use std::ffi::{c_int, c_void};

use pgrx::pg_sys;
use pgrx::prelude::*;

mod wrap;
pub use wrap::wrap_filtered_tables;

/// Repairs `parse` before it is planned (see the module's comment), where Citus's metadata is present.
///
/// # Safety
/// `parse` is the query the planner hook received (or null).
#[pg_guard]
pub unsafe extern "C-unwind" fn repair_security_quals(parse: *mut pg_sys::Query) {
    if parse.is_null() {
        return;
    }
    // Each table whose row-security quals name one other entry of its query (and not its own)
    // gets them renamed to its own.
    super::routing::each_filtered_table(parse.cast(), &mut |_, own, rte| {
        let mut named: Vec<c_int> = Vec::new();
        collect_varnos((*rte).securityQuals.cast(), (&raw mut named).cast());
        named.sort_unstable();
        named.dedup();
        if let [other] = named[..] {
            if other != own {
                let mut rename = Rename {
                    from: other,
                    to: own,
                    level: 0,
                };
                rename_vars((*rte).securityQuals.cast(), (&raw mut rename).cast());
            }
        }
    });
}

/// The range-table indexes the Vars of this level (not of sublinks' queries) name.
#[pg_guard]
unsafe extern "C-unwind" fn collect_varnos(node: *mut pg_sys::Node, named: *mut c_void) -> bool {
    if node.is_null() {
        return false;
    }
    match (*node).type_ {
        pg_sys::NodeTag::T_Var => {
            let var = node as *mut pg_sys::Var;
            if (*var).varlevelsup == 0 {
                (*(named as *mut Vec<c_int>)).push((*var).varno);
            }
            false
        }
        // (A sublink's own query: its Vars of this level have varlevelsup 1; left alone.)
        pg_sys::NodeTag::T_Query => false,
        _ => pg_sys::expression_tree_walker(node, Some(collect_varnos), named),
    }
}

pub(super) struct Rename {
    pub(super) from: c_int,
    pub(super) to: c_int,
    /// How many query levels below the quals' own the walk is.
    pub(super) level: u32,
}

/// Renames the Vars naming `from` at the quals' level (in sublinks' queries too) to `to`, as
/// PostgreSQL's ChangeVarNodes does.
#[pg_guard]
pub(super) unsafe extern "C-unwind" fn rename_vars(
    node: *mut pg_sys::Node,
    context: *mut c_void,
) -> bool {
    if node.is_null() {
        return false;
    }
    let rename = context as *mut Rename;
    match (*node).type_ {
        pg_sys::NodeTag::T_Var => {
            let var = node as *mut pg_sys::Var;
            if (*var).varlevelsup == (*rename).level && (*var).varno == (*rename).from {
                (*var).varno = (*rename).to;
                if (*var).varnosyn as c_int == (*rename).from {
                    (*var).varnosyn = (*rename).to as _;
                }
            }
            false
        }
        pg_sys::NodeTag::T_Query => {
            (*rename).level += 1;
            let done = pg_sys::query_tree_walker(node.cast(), Some(rename_vars), context, 0);
            (*rename).level -= 1;
            done
        }
        _ => pg_sys::expression_tree_walker(node, Some(rename_vars), context),
    }
}

/// Whether the expression holds a sublink.
#[pg_guard]
pub(super) unsafe extern "C-unwind" fn has_sublink(
    node: *mut pg_sys::Node,
    context: *mut c_void,
) -> bool {
    if node.is_null() {
        return false;
    }
    if (*node).type_ == pg_sys::NodeTag::T_SubLink {
        return true;
    }
    pg_sys::expression_tree_walker(node, Some(has_sublink), context)
}
