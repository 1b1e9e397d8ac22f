//! Building a tenant_quota index (CREATE INDEX, REINDEX, a table rewrite, a new partition), and
//! who may make one.
//!
//! A build stores nothing and counts nothing (the rows already there were counted when the quota
//! was attached). But once built, the index counts every row written to its table into its
//! resource, for whatever tenant id the row holds: an index pg_tenant does not stand behind would
//! let the owner of any table charge any tenant's quota. PostgreSQL builds an index as the
//! table's owner (inside a security-restricted operation), so the owner's rights alone cannot
//! decide. A build is accepted when one of these holds:
//!
//! 1. the quota is attached where the index is: its table or a partitioned ancestor has the
//!    resource attached as a count quota on this column (`tenant.quota_attachments`, whose
//!    triggers only those who may execute `tenant.quota_trigger()` can create). attach_quota
//!    creates those triggers before the index; REINDEX, table rewrites and new partitions
//!    rebuild or extend an index of an attached quota;
//! 2. the table's owner may run `tenant.attach_quota()`;
//! 3. the CREATE INDEX was issued by a role that may run `tenant.attach_quota()`: a statement a
//!    client sent itself (the superuser replaying a dump with pg_restore or psql, an
//!    administrator), or one pg_tenant sends for such a caller ([`issuing`]: clone_schema copying
//!    a template's index). A restore cannot rely on 1: pg_restore builds indexes before it creates
//!    triggers, and with `-j` even before it copies pg_tenant's configuration tables.
//!
//! For 3 the issuer must be known exactly, since the role PostgreSQL switched away from is not
//! kept: it is the session's role (after SET ROLE) only while the statement running is the very
//! CREATE INDEX the client sent (the active portal's only statement), with no security-definer
//! function or pg_tenant elevation in effect. A CREATE INDEX run from inside any function (a
//! table owner's security-definer function, or a function a materialized view's refresh calls,
//! both running as that owner while a superuser's statement is active) is not the client's
//! statement and gets no issuer. And the statement must name plain columns and no predicate:
//! such a CREATE INDEX evaluates none of the table owner's expressions before its build (an
//! IMMUTABLE function with constant arguments is folded, that is run, while an expression or
//! predicate is checked), so no code of the owner's can run during it and make an index of its
//! own under the client's name. pg_dump writes counting indexes in that form.

use std::cell::Cell;
use std::ffi::CStr;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::TenantError;

use super::handler::resource_of;

thread_local! {
    /// The role a CREATE INDEX that pg_tenant itself is running was issued by (see [`issuing`]).
    static ISSUER: Cell<Option<pg_sys::Oid>> = const { Cell::new(None) };
}

/// Runs `f`, one CREATE INDEX of a tenant_quota index on plain columns without a predicate that
/// pg_tenant runs as the current role, with the current role as its issuer (rule 3 above).
/// clone_schema copies a template's counting indexes this way, before the triggers that record
/// the quota on the copy exist. The issuer is forgotten however `f` ends.
pub fn issuing<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(Option<pg_sys::Oid>);
    impl Drop for Restore {
        fn drop(&mut self) {
            ISSUER.with(|i| i.set(self.0));
        }
    }
    let _restore = Restore(ISSUER.with(|i| i.replace(Some(unsafe { pg_sys::GetUserId() }))));
    f()
}

/// Forgets an issuer left behind by an error that skipped [`issuing`]'s cleanup (transaction
/// abort).
pub(super) fn forget_issuer() {
    ISSUER.with(|i| i.set(None));
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn ambuild(
    heap: pg_sys::Relation,
    index: pg_sys::Relation,
    info: *mut pg_sys::IndexInfo,
) -> *mut pg_sys::IndexBuildResult {
    crate::error::guarded(|| {
        if (*index).rd_options.is_null() {
            TenantError::invalid(
                "reloptions",
                "a tenant_quota index needs WITH (resource = '<name>')",
            )
            .raise();
        }
        if (*info).ii_NumIndexAttrs != 1
            || !(*info).ii_Expressions.is_null()
            || !(*info).ii_Predicate.is_null()
        {
            TenantError::invalid(
                "columns",
                "a tenant_quota index is on the tenant column alone, without a predicate",
            )
            .raise();
        }
        let table = (*heap).rd_id;
        let resource = resource_of(index);
        let attnum = (*info).ii_IndexAttrNumbers[0];
        let accepted = attached(table, &resource, attnum)
            || crate::owner::relation_owner(table).is_some_and(may_attach_quotas)
            || issuer().is_some_and(may_attach_quotas);
        if !accepted {
            TenantError::QuotaIndexRefused {
                table: relation_name(table),
                resource,
            }
            .raise();
        }
    });
    PgBox::<pg_sys::IndexBuildResult>::alloc0().into_pg()
}

#[pg_guard]
pub(super) unsafe extern "C-unwind" fn ambuildempty(_index: pg_sys::Relation) {}

/// Rule 1: `resource` is attached as a count quota to `table` or a partitioned ancestor, on the
/// column `attnum` names.
fn attached(table: pg_sys::Oid, resource: &str, attnum: i16) -> bool {
    crate::owner::as_extension_owner(|| {
        Spi::get_one_with_args::<bool>(
        crate::owner::data_sql("SELECT EXISTS (SELECT FROM tenant_data.quota_attachments a
                         WHERE a.table_name::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (SELECT $1 UNION SELECT relid FROM pg_catalog.pg_partition_ancestors($1))
                           AND a.resource OPERATOR(pg_catalog.=) $2 AND a.mode OPERATOR(pg_catalog.=) 'count'
                           AND a.tenant_column OPERATOR(pg_catalog.=) (SELECT attname FROM pg_catalog.pg_attribute
                                                    WHERE attrelid OPERATOR(pg_catalog.=) $1 AND attnum OPERATOR(pg_catalog.=) $3))"),
        &[table.into(), resource.into(), attnum.into()],
    )
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
    .unwrap_or(false)
    })
}

/// Whether `role` may run tenant.attach_quota() (superusers, the extension owner, and roles it
/// was granted to).
fn may_attach_quotas(role: pg_sys::Oid) -> bool {
    Spi::get_one_with_args::<bool>(
        "SELECT pg_catalog.has_function_privilege($1, 'tenant.attach_quota(pg_catalog.regclass, pg_catalog.text, pg_catalog.text)', 'EXECUTE')",
        &[role.into()],
    )
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
    .unwrap_or(false)
}

/// The role that issued the CREATE INDEX this build belongs to, when it is known (rule 3).
fn issuer() -> Option<pg_sys::Oid> {
    ISSUER
        .with(|i| i.get())
        .or_else(|| unsafe { client_statement_issuer() })
}

/// The session's role, when the statement running is a CREATE INDEX ... USING tenant_quota on
/// plain columns without a predicate that the client sent itself, and no security-definer
/// function or pg_tenant elevation is in effect (so the role PostgreSQL switched away from to
/// build the index as the table's owner was the session's).
unsafe fn client_statement_issuer() -> Option<pg_sys::Oid> {
    let portal = pg_sys::ActivePortal;
    if portal.is_null() {
        return None;
    }
    let stmts = pgrx::PgList::<pg_sys::PlannedStmt>::from_pg((*portal).stmts);
    if stmts.len() != 1 {
        return None;
    }
    let planned = stmts.get_ptr(0)?;
    let node = (*planned).utilityStmt;
    if node.is_null() || (*node).type_ != pg_sys::NodeTag::T_IndexStmt {
        return None;
    }
    let stmt = node as *mut pg_sys::IndexStmt;
    if (*stmt).accessMethod.is_null()
        || CStr::from_ptr((*stmt).accessMethod) != c"tenant_quota"
        || !(*stmt).whereClause.is_null()
    {
        return None;
    }
    let columns = pgrx::PgList::<pg_sys::IndexElem>::from_pg((*stmt).indexParams);
    if columns
        .iter_ptr()
        .any(|c| (*c).name.is_null() || !(*c).expr.is_null())
    {
        return None;
    }
    let mut user = pg_sys::Oid::INVALID;
    let mut context = 0;
    pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
    if context & pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32 != 0 {
        return None;
    }
    Some(pg_sys::GetOuterUserId())
}

fn relation_name(rel: pg_sys::Oid) -> String {
    Spi::get_one_with_args::<String>(
        "SELECT $1::pg_catalog.regclass::pg_catalog.text",
        &[rel.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| rel.to_u32().to_string())
}

/// Whether `index` is a tenant_quota index on plain columns without a predicate: one whose copy
/// clone_schema may make through [`issuing`].
pub fn is_plain_quota_index(index: pg_sys::Oid) -> bool {
    Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_index i
                          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
                          JOIN pg_catalog.pg_am a ON a.oid OPERATOR(pg_catalog.=) c.relam
                         WHERE i.indexrelid OPERATOR(pg_catalog.=) $1 AND a.amname OPERATOR(pg_catalog.=) 'tenant_quota'
                           AND i.indexprs IS NULL AND i.indpred IS NULL)",
        &[index.into()],
    )
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
    .unwrap_or(false)
}
