//! The wrapping (see the module's comment): a filtered table that is not its query's first entry
//! made a subquery of its own, the query's columns of it renumbered, and what Citus could not
//! print refused.

use std::ffi::{c_int, c_void};

use pgrx::pg_sys;
use pgrx::prelude::*;

use super::{has_sublink, rename_vars, Rename};
use crate::isolation::routing::is_filtered_table;

/// Wraps, in `parse` and every query below it, each table with row-security quals that is not
/// its query's first range-table entry in a subquery of its own (see the module's comment).
/// (Called where Citus's metadata is present.)
///
/// # Safety
/// `parse` is the query the planner hook received (or null).
#[pg_guard]
pub unsafe extern "C-unwind" fn wrap_filtered_tables(parse: *mut pg_sys::Query) {
    if parse.is_null() {
        return;
    }
    wrap_walk(parse.cast(), std::ptr::null_mut());
}

#[pg_guard]
unsafe extern "C-unwind" fn wrap_walk(node: *mut pg_sys::Node, context: *mut c_void) -> bool {
    if node.is_null() {
        return false;
    }
    if (*node).type_ != pg_sys::NodeTag::T_Query {
        return pg_sys::expression_tree_walker(node, Some(wrap_walk), context);
    }
    let query = node as *mut pg_sys::Query;
    // (Citus refuses to join a local target of UPDATE or DELETE with a subquery of a distributed
    // table where it joins it with the table: such a statement is left as it is unless it has an
    // outer join or joins two filtered tables (the target counted), where Citus's own copies
    // crash.)
    let wrapping = match (*query).commandType {
        pg_sys::CmdType::CMD_SELECT => true,
        pg_sys::CmdType::CMD_UPDATE | pg_sys::CmdType::CMD_DELETE => {
            crate::isolation::routing::has_outer_join(
                (*query).jointree.cast(),
                std::ptr::null_mut(),
            ) || filtered_tables(query) > 1
        }
        _ => false,
    };
    if wrapping {
        let rtable = pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*query).rtable);
        for (i, rte) in rtable.iter_ptr().enumerate() {
            let rtindex = i as c_int + 1;
            if rtindex > 1 && rtindex != (*query).resultRelation && is_filtered_table(rte) {
                wrap(query, rtindex, rte);
            }
        }
    }
    // (The new subqueries are walked too: their one table is their first entry.)
    pg_sys::query_tree_walker(query, Some(wrap_walk), context, 0)
}

/// How many tables with row-security quals `query`'s own range table has.
unsafe fn filtered_tables(query: *mut pg_sys::Query) -> usize {
    pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*query).rtable)
        .iter_ptr()
        .filter(|&rte| is_filtered_table(rte))
        .count()
}

/// Makes entry `rtindex` of `query` (a table with row-security quals) the subquery
/// `(SELECT <columns> FROM table)`: its columns in the table's order, dropped ones left out,
/// those the query does not use as typed NULLs (nothing is read that the query did not ask for:
/// a column privilege is checked on every node), then each system column and the whole row the
/// table's own Vars use; the query's Vars of the table (and the joins it is an input of)
/// renumbered to them. Refused (0A000) where Citus could not print such a subquery inside a
/// join.
unsafe fn wrap(query: *mut pg_sys::Query, rtindex: c_int, rte: *mut pg_sys::RangeTblEntry) {
    let rel = pg_sys::RelationIdGetRelation((*rte).relid);
    if rel.is_null() {
        return; // (Not reached: the rewriter opened it.)
    }

    // The quals go into the subquery, naming its one entry.
    let quals = (*rte).securityQuals;
    (*rte).securityQuals = std::ptr::null_mut();
    let mut rename = Rename {
        from: rtindex,
        to: 1,
        level: 0,
    };
    rename_vars(quals.cast(), (&raw mut rename).cast());
    let inner = pg_sys::copyObjectImpl(rte.cast()) as *mut pg_sys::RangeTblEntry;
    (*inner).securityQuals = quals;

    // The columns the query uses: those its Vars name (join aliases aside: they list every
    // column) and those the parser marked as read (join aliases the query uses).
    let mut uses = Uses {
        rtindex,
        level: 0,
        named: Vec::new(),
        renumber: Vec::new(),
        renumbering: false,
        done: std::collections::HashSet::new(),
    };
    pg_sys::query_tree_walker(
        query,
        Some(uses_walk),
        (&raw mut uses).cast(),
        pg_sys::QTW_IGNORE_JOINALIASES as c_int,
    );
    let mut used = uses.named.clone();
    used.extend(selected_columns(query, rte));
    used.sort_unstable();
    used.dedup();
    let whole_row = used.contains(&0);

    let desc = (*rel).rd_att;
    let natts = (*desc).natts;
    let reltype = (*(*rel).rd_rel).reltype;
    let names = pgrx::PgList::<pg_sys::Node>::from_pg((*(*rte).eref).colnames);
    let mut targets = pgrx::PgList::<pg_sys::TargetEntry>::new();
    let mut colnames = pgrx::PgList::<pg_sys::Node>::new();
    // The columns the subquery passes on: (attno, type, typmod, collation).
    let mut grouped_columns: Vec<(i16, pg_sys::Oid, i32, pg_sys::Oid)> = Vec::new();
    // Adds a column to the subquery's target list; its number.
    let mut add = |expr: *mut pg_sys::Expr, name: String| {
        let name = std::ffi::CString::new(name).unwrap_or_default();
        let name = pg_sys::pstrdup(name.as_ptr());
        let resno = targets.len() as i16 + 1;
        targets.push(pg_sys::makeTargetEntry(expr, resno, name, false));
        colnames.push(pg_sys::makeString(pg_sys::pstrdup(name)).cast());
        resno
    };
    for attno in 1..=natts {
        let att = (*desc).attrs.as_mut_ptr().add(attno as usize - 1);
        let name = names
            .get_ptr(attno as usize - 1)
            .filter(|n| !n.is_null())
            .map(|n| {
                std::ffi::CStr::from_ptr((*(n as *mut pg_sys::String)).sval)
                    .to_string_lossy()
                    .into_owned()
            })
            .unwrap_or_default();
        if (*att).attisdropped {
            // (No column: Citus prints a subquery's columns as they are, and a placeholder would
            // not match what a join over it lists. The query's Vars are renumbered below.)
            continue;
        }
        let position = if whole_row || used.contains(&(attno as i16)) {
            grouped_columns.push((
                attno as i16,
                (*att).atttypid,
                (*att).atttypmod,
                (*att).attcollation,
            ));
            let var = pg_sys::makeVar(
                1,
                attno as i16,
                (*att).atttypid,
                (*att).atttypmod,
                (*att).attcollation,
                0,
            );
            add(var.cast(), name)
        } else {
            let null =
                pg_sys::makeNullConst((*att).atttypid, (*att).atttypmod, (*att).attcollation);
            add(null.cast(), name)
        };
        uses.renumber.push((attno as i16, position));
    }
    // System columns and the whole row its Vars name, after the table's columns. (The whole row
    // of a join holding the table marks the table's whole row read, which needs its columns only.)
    let mut extras: Vec<i16> = uses.named.iter().copied().filter(|&a| a <= 0).collect();
    extras.sort_unstable();
    extras.dedup();
    if !extras.is_empty() && has_named_join(query) {
        // Citus prints a join's column list from its inputs' and crashes on one input wider
        // than the join knew (attack review of the wrapping): refused, rather than unwrapped
        // (which Citus's own wrapping can crash on).
        pg_sys::RelationClose(rel);
        let table = crate::owner::relation_name((*inner).relid);
        // (Reported from here: the walk runs inside PostgreSQL's tree walkers.)
        crate::error::guarded(|| crate::error::TenantError::CitusWrappedColumns { table }.raise());
    }
    for &attno in &extras {
        let var = if attno == 0 {
            pg_sys::makeVar(1, 0, reltype, -1, pg_sys::Oid::INVALID, 0)
        } else {
            let att = pg_sys::SystemAttributeDefinition(attno);
            pg_sys::makeVar(
                1,
                attno,
                (*att).atttypid,
                (*att).atttypmod,
                (*att).attcollation,
                0,
            )
        };
        let name = match attno {
            0 => "pg_tenant_row".to_string(),
            _ => format!("pg_tenant_system_{}", -attno),
        };
        let position = add(var.cast(), name);
        uses.renumber.push((attno, position));
    }
    pg_sys::RelationClose(rel);
    if groups_by_key_of(query, (*inner).relid) {
        group_by_columns(query, rtindex, &grouped_columns);
    }

    let subquery = pg_sys::palloc0(std::mem::size_of::<pg_sys::Query>()) as *mut pg_sys::Query;
    (*subquery).type_ = pg_sys::NodeTag::T_Query;
    (*subquery).commandType = pg_sys::CmdType::CMD_SELECT;
    (*subquery).canSetTag = true;
    (*subquery).hasRowSecurity = true;
    (*subquery).hasSubLinks = has_sublink((*inner).securityQuals.cast(), std::ptr::null_mut());
    let mut from = pgrx::PgList::<pg_sys::Node>::new();
    let entry =
        pg_sys::palloc0(std::mem::size_of::<pg_sys::RangeTblRef>()) as *mut pg_sys::RangeTblRef;
    (*entry).type_ = pg_sys::NodeTag::T_RangeTblRef;
    (*entry).rtindex = 1;
    from.push(entry.cast());
    (*subquery).jointree = pg_sys::makeFromExpr(from.into_pg(), std::ptr::null_mut());
    let mut rtable = pgrx::PgList::<pg_sys::RangeTblEntry>::new();
    rtable.push(inner);
    (*subquery).rtable = rtable.into_pg();
    (*subquery).targetList = targets.into_pg();
    move_permissions(query, rte, subquery, inner);

    // A row lock on the table applies to it inside the subquery.
    let marks = pgrx::PgList::<pg_sys::RowMarkClause>::from_pg((*query).rowMarks);
    for mark in marks.iter_ptr() {
        if (*mark).rti as c_int == rtindex {
            pg_sys::applyLockingClause(subquery, 1, (*mark).strength, (*mark).waitPolicy, true);
        }
    }

    // The query's Vars of the table (join aliases included) name their columns' places in the
    // subquery, and so do the lists of the joins it is an input of.
    uses.level = 0;
    uses.renumbering = true;
    pg_sys::query_tree_walker(query, Some(uses_walk), (&raw mut uses).cast(), 0);
    renumber_join_inputs(query, rtindex, &uses.renumber);

    // The entry becomes the subquery, named as the table was (a subquery in FROM needs an alias).
    (*rte).rtekind = pg_sys::RTEKind::RTE_SUBQUERY;
    (*rte).subquery = subquery;
    (*rte).relid = pg_sys::Oid::INVALID;
    (*rte).relkind = 0;
    (*rte).rellockmode = 0;
    (*rte).tablesample = std::ptr::null_mut();
    (*rte).inh = false;
    (*rte).security_barrier = false;
    (*rte).values_lists = std::ptr::null_mut();
    (*rte).alias = pg_sys::makeAlias((*(*rte).eref).aliasname, std::ptr::null_mut());
    (*rte).eref = pg_sys::makeAlias((*(*rte).eref).aliasname, colnames.into_pg());
}

/// In the joins of `query` that have entry `rtindex` as a direct input, the input's column
/// numbers (`joinleftcols`, `joinrightcols`) renumbered as its Vars were.
unsafe fn renumber_join_inputs(query: *mut pg_sys::Query, rtindex: c_int, renumber: &[(i16, i16)]) {
    let mut joins: Vec<(c_int, bool)> = Vec::new();
    find_join_inputs((*(*query).jointree).fromlist.cast(), rtindex, &mut joins);
    let rtable = pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*query).rtable);
    for (join, left) in joins {
        let Some(rte) = rtable.get_ptr(join as usize - 1) else {
            continue;
        };
        let cols = if left {
            (*rte).joinleftcols
        } else {
            (*rte).joinrightcols
        };
        if cols.is_null() {
            continue;
        }
        for i in 0..(*cols).length as usize {
            let cell = (*cols).elements.add(i);
            if let Some(&(_, to)) = renumber
                .iter()
                .find(|(from, _)| *from as c_int == (*cell).int_value)
            {
                (*cell).int_value = to as c_int;
            }
        }
    }
}

/// The joins below `node` (a FROM list or a join tree node) whose left or right input is entry
/// `rtindex`: (the join's range-table index, whether on the left).
unsafe fn find_join_inputs(
    node: *mut pg_sys::Node,
    rtindex: c_int,
    joins: &mut Vec<(c_int, bool)>,
) {
    if node.is_null() {
        return;
    }
    match (*node).type_ {
        pg_sys::NodeTag::T_List => {
            for item in pgrx::PgList::<pg_sys::Node>::from_pg(node.cast()).iter_ptr() {
                find_join_inputs(item, rtindex, joins);
            }
        }
        pg_sys::NodeTag::T_FromExpr => find_join_inputs(
            (*(node as *mut pg_sys::FromExpr)).fromlist.cast(),
            rtindex,
            joins,
        ),
        pg_sys::NodeTag::T_JoinExpr => {
            let join = node as *mut pg_sys::JoinExpr;
            let names = |side: *mut pg_sys::Node| {
                !side.is_null()
                    && (*side).type_ == pg_sys::NodeTag::T_RangeTblRef
                    && (*(side as *mut pg_sys::RangeTblRef)).rtindex == rtindex
            };
            if (*join).rtindex != 0 {
                if names((*join).larg) {
                    joins.push(((*join).rtindex, true));
                }
                if names((*join).rarg) {
                    joins.push(((*join).rtindex, false));
                }
            }
            find_join_inputs((*join).larg, rtindex, joins);
            find_join_inputs((*join).rarg, rtindex, joins);
        }
        _ => {}
    }
}

/// Whether the query has a join with an alias or merged columns (USING, NATURAL).
unsafe fn has_named_join(query: *mut pg_sys::Query) -> bool {
    pgrx::PgList::<pg_sys::RangeTblEntry>::from_pg((*query).rtable)
        .iter_ptr()
        .any(|rte| {
            !rte.is_null()
                && (*rte).rtekind == pg_sys::RTEKind::RTE_JOIN
                && (!(*rte).alias.is_null() || (*rte).joinmergedcols > 0)
        })
}

/// Whether the query's GROUP BY relies on a key of `relid` (the other columns of the table
/// depend on it): PostgreSQL knows that of a table, not of a subquery, and the workers would
/// refuse the columns not grouped by.
unsafe fn groups_by_key_of(query: *mut pg_sys::Query, relid: pg_sys::Oid) -> bool {
    if (*query).groupClause.is_null() || !(*query).groupingSets.is_null() {
        return false;
    }
    if (*query).constraintDeps.is_null() {
        return false;
    }
    let constraints: Vec<pg_sys::Oid> =
        pgrx::PgList::<pg_sys::Node>::from_pg((*query).constraintDeps)
            .iter_oid()
            .collect();
    // (Read once per GROUP BY on a key, read-only: no syscache bindings for pg_constraint.)
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_constraint
                             WHERE oid OPERATOR(pg_catalog.=) ANY ($1) AND conrelid OPERATOR(pg_catalog.=) $2)",
            Some(1),
            &[constraints.into(), relid.into()],
        )?;
        Ok::<_, pgrx::spi::Error>(match rows.into_iter().next() {
            Some(row) => row.get::<bool>(1)?.unwrap_or(false),
            None => false,
        })
    })
    .unwrap_or(false)
}

/// Adds the columns of entry `rtindex` the query uses to its GROUP BY (where they are not yet):
/// they depend on the key it groups by, so the groups stay the same.
unsafe fn group_by_columns(
    query: *mut pg_sys::Query,
    rtindex: c_int,
    columns: &[(i16, pg_sys::Oid, i32, pg_sys::Oid)],
) {
    let mut targets = pgrx::PgList::<pg_sys::TargetEntry>::from_pg((*query).targetList);
    let mut grouped = Vec::new();
    let mut next_ref = 0;
    for tle in targets.iter_ptr() {
        next_ref = next_ref.max((*tle).ressortgroupref);
        let expr = (*tle).expr as *mut pg_sys::Node;
        if (*tle).ressortgroupref != 0 && !expr.is_null() && (*expr).type_ == pg_sys::NodeTag::T_Var
        {
            let var = expr as *mut pg_sys::Var;
            if (*var).varno == rtindex && (*var).varlevelsup == 0 {
                grouped.push((*var).varattno);
            }
        }
    }
    let mut groups = pgrx::PgList::<pg_sys::SortGroupClause>::from_pg((*query).groupClause);
    for &(attno, typid, typmod, collation) in columns {
        if grouped.contains(&attno) {
            continue;
        }
        let (mut lt, mut eq, mut hashable) = (pg_sys::Oid::INVALID, pg_sys::Oid::INVALID, false);
        pg_sys::get_sort_group_operators(
            typid,
            false,
            false,
            false,
            &mut lt,
            &mut eq,
            std::ptr::null_mut(),
            &mut hashable,
        );
        if eq == pg_sys::Oid::INVALID {
            continue; // (No equality: left out, as the workers would have it.)
        }
        next_ref += 1;
        let var = pg_sys::makeVar(rtindex, attno, typid, typmod, collation, 0);
        let tle = pg_sys::makeTargetEntry(
            var.cast(),
            targets.len() as i16 + 1,
            std::ptr::null_mut(),
            true,
        );
        (*tle).ressortgroupref = next_ref;
        targets.push(tle);
        let group = pg_sys::palloc0(std::mem::size_of::<pg_sys::SortGroupClause>())
            as *mut pg_sys::SortGroupClause;
        (*group).type_ = pg_sys::NodeTag::T_SortGroupClause;
        (*group).tleSortGroupRef = next_ref;
        (*group).eqop = eq;
        (*group).sortop = lt;
        (*group).nulls_first = false;
        (*group).hashable = hashable;
        groups.push(group);
    }
    (*query).targetList = targets.into_pg();
    (*query).groupClause = groups.into_pg();
}

/// The attribute numbers the parser marked as read in entry `rte` of `query` (its SELECT
/// privilege's columns).
#[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
unsafe fn selected_columns(
    _query: *mut pg_sys::Query,
    rte: *mut pg_sys::RangeTblEntry,
) -> Vec<i16> {
    bitmap_attnos((*rte).selectedCols)
}

#[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
unsafe fn selected_columns(query: *mut pg_sys::Query, rte: *mut pg_sys::RangeTblEntry) -> Vec<i16> {
    let infos = pgrx::PgList::<pg_sys::RTEPermissionInfo>::from_pg((*query).rteperminfos);
    match (*rte).perminfoindex {
        0 => Vec::new(),
        i => infos
            .get_ptr(i as usize - 1)
            .map(|info| bitmap_attnos((*info).selectedCols))
            .unwrap_or_default(),
    }
}

unsafe fn bitmap_attnos(set: *mut pg_sys::Bitmapset) -> Vec<i16> {
    let mut attnos = Vec::new();
    let mut member = -1;
    loop {
        member = pg_sys::bms_next_member(set, member);
        if member < 0 {
            return attnos;
        }
        attnos.push((member + pg_sys::FirstLowInvalidHeapAttributeNumber) as i16);
    }
}

/// The table's privileges are checked on the subquery's entry (the outer one is a subquery now).
#[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
unsafe fn move_permissions(
    _query: *mut pg_sys::Query,
    rte: *mut pg_sys::RangeTblEntry,
    _subquery: *mut pg_sys::Query,
    _inner: *mut pg_sys::RangeTblEntry,
) {
    (*rte).requiredPerms = 0;
    (*rte).checkAsUser = pg_sys::Oid::INVALID;
    (*rte).selectedCols = std::ptr::null_mut();
    (*rte).insertedCols = std::ptr::null_mut();
    (*rte).updatedCols = std::ptr::null_mut();
    (*rte).extraUpdatedCols = std::ptr::null_mut();
}

#[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
unsafe fn move_permissions(
    query: *mut pg_sys::Query,
    rte: *mut pg_sys::RangeTblEntry,
    subquery: *mut pg_sys::Query,
    inner: *mut pg_sys::RangeTblEntry,
) {
    // (The outer list keeps the entry's permissions too: they are checked once more.)
    let infos = pgrx::PgList::<pg_sys::RTEPermissionInfo>::from_pg((*query).rteperminfos);
    if let Some(info) = infos.get_ptr((*rte).perminfoindex as usize - 1) {
        let mut own = pgrx::PgList::<pg_sys::RTEPermissionInfo>::new();
        own.push(pg_sys::copyObjectImpl(info.cast()).cast());
        (*subquery).rteperminfos = own.into_pg();
        (*inner).perminfoindex = 1;
    }
    (*rte).perminfoindex = 0;
}

/// The Vars of one range-table entry at one query level: their attribute numbers, collected;
/// then those in `renumber` renumbered.
struct Uses {
    rtindex: c_int,
    /// How many query levels below the entry's own the walk is.
    level: u32,
    named: Vec<i16>,
    /// (from, to) attribute numbers.
    renumber: Vec<(i16, i16)>,
    /// Whether the walk renumbers (else it collects).
    renumbering: bool,
    /// The Vars renumbered already (a node the tree holds twice is renumbered once).
    done: std::collections::HashSet<usize>,
}

#[pg_guard]
unsafe extern "C-unwind" fn uses_walk(node: *mut pg_sys::Node, context: *mut c_void) -> bool {
    if node.is_null() {
        return false;
    }
    let uses = &mut *(context as *mut Uses);
    match (*node).type_ {
        pg_sys::NodeTag::T_Var => {
            let var = node as *mut pg_sys::Var;
            if (*var).varlevelsup == uses.level && (*var).varno == uses.rtindex {
                if !uses.renumbering {
                    uses.named.push((*var).varattno);
                } else if uses.done.insert(var as usize) {
                    if let Some(&(_, to)) = uses
                        .renumber
                        .iter()
                        .find(|(from, _)| *from == (*var).varattno)
                    {
                        (*var).varattno = to;
                        if (*var).varnosyn as c_int == uses.rtindex {
                            (*var).varattnosyn = to;
                        }
                    }
                }
            }
            false
        }
        pg_sys::NodeTag::T_Query => {
            uses.level += 1;
            let flags = if uses.renumbering {
                0
            } else {
                pg_sys::QTW_IGNORE_JOINALIASES as c_int
            };
            let done = pg_sys::query_tree_walker(node.cast(), Some(uses_walk), context, flags);
            uses.level -= 1;
            done
        }
        _ => pg_sys::expression_tree_walker(node, Some(uses_walk), context),
    }
}
