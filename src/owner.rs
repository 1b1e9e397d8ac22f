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

/// The first column of the first row of a query without parameters, as text, read with the
/// latest snapshot (what is committed now, and this transaction's own changes), whatever the
/// transaction's isolation: for values a backend keeps past its transaction, which an older
/// REPEATABLE READ snapshot must not decide. Read-only SPI, which runs in that snapshot.
pub fn read_latest(query: &str) -> Option<String> {
    let sql = std::ffi::CString::new(query).expect("a query has no NUL");
    unsafe {
        pg_sys::PushCopiedSnapshot(pg_sys::GetLatestSnapshot());
        pg_sys::SPI_connect();
        let status = pg_sys::SPI_execute(sql.as_ptr(), true, 1);
        let value = if status == pg_sys::SPI_OK_SELECT as i32 && pg_sys::SPI_processed > 0 {
            let table = pg_sys::SPI_tuptable;
            let v = pg_sys::SPI_getvalue(*(*table).vals, (*table).tupdesc, 1);
            (!v.is_null()).then(|| std::ffi::CStr::from_ptr(v).to_string_lossy().into_owned())
        } else {
            None
        };
        pg_sys::SPI_finish();
        pg_sys::PopActiveSnapshot();
        if status < 0 {
            error!("pg_tenant: a read failed (SPI status {status})");
        }
        value
    }
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
/// through [`crate::exemption::unfiltered`]; and everything it runs acts as no tenant, whatever the caller's
/// context (the owner's code must not borrow the caller's tenant). The search_path is pinned as
/// for the extension owner.
pub fn as_table_owner<R>(rel: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    let owner = relation_owner(rel)
        .unwrap_or_else(|| error!("pg_tenant: relation {} does not exist", rel.to_u32()));
    as_role_restricted(owner, f)
}

/// Runs `f` as `role` inside a security-restricted operation, with the search_path pinned as
/// for the extension owner: for statements pg_tenant runs for `role` on `role`'s own objects
/// (during which PostgreSQL evaluates `role`'s expressions). Row security applies, and the
/// caller's tenant is hidden, as in [`as_table_owner`].
pub fn as_role_restricted<R>(role: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    elevated(role, pg_sys::SECURITY_RESTRICTED_OPERATION as i32, || {
        crate::gucs::without_tenant(f)
    })
}

/// A relation's qualified, quoted name as it is now. pg_tenant builds each statement on a user
/// table from this, right before it runs, never from a name read earlier: the owner's code that
/// an operation runs can rename a table meanwhile and put another one under its old name.
pub fn relation_name(rel: pg_sys::Oid) -> String {
    unsafe {
        let name = pg_sys::get_rel_name(rel);
        if name.is_null() {
            error!("pg_tenant: relation {} does not exist", rel.to_u32());
        }
        let namespace = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(rel));
        std::ffi::CStr::from_ptr(pg_sys::quote_qualified_identifier(namespace, name))
            .to_string_lossy()
            .into_owned()
    }
}

/// Whether a relation is a partition (from the syscache).
pub fn is_partition(rel: pg_sys::Oid) -> bool {
    unsafe { pg_sys::get_rel_relispartition(rel) }
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

fn as_role_with<R>(role: pg_sys::Oid, flags: i32, f: impl FnOnce() -> R) -> R {
    let mut saved_user = pg_sys::Oid::INVALID;
    let mut saved_context: i32 = 0;
    unsafe { pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context) };

    struct Restore(pg_sys::Oid, i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) };
        }
    }
    let _restore = Restore(saved_user, saved_context);
    unsafe {
        pg_sys::SetUserIdAndSecContext(
            role,
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32 | flags,
        )
    };
    // As PostgreSQL's maintenance commands do: every setting changed while the role acts (a
    // plain SET or set_config(..., false) in its code included, which would otherwise outlive
    // this and reach the caller's session) is undone when it is done, before the caller's
    // identity is back.
    crate::gucs::in_nest_level(f)
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
