//! Citus: pg_tenant on a coordinator with workers (docs/operations.md, "Citus").
//!
//! `tenant.citus_setup()` makes the registry tables every node needs (tenants, plans,
//! limit_overrides, signing_keys) Citus reference tables: a copy on every node, written by 2PC.
//! A worker serving a shard task may not run a distributed query, and Citus plans a query on a
//! reference table as one; so pg_tenant reads its reference tables from this node's placement
//! (`tenant_data.tenants_<shardid>`), a plain table, on every node (see [`local_reads`]). Writes
//! (the admin functions, on the coordinator) go through the table itself, so Citus applies them
//! to every placement.
//!
//! Citus copies a table's policies to its shards as PERMISSIVE policies, whatever they were
//! (a RESTRICTIVE `tenant_isolation` OR-ed with the permissive `tenant_access` would admit every
//! row): in a database with Citus, `protect()` installs permissive policies only, each of which
//! means the same alone ([`crate::policies`]).

use std::cell::RefCell;
use std::collections::HashMap;

use pgrx::pg_sys;
use pgrx::prelude::*;

/// The registry tables that are reference tables after `citus_setup()`: what a worker needs to
/// verify a token, resolve its tenant, refuse a suspended tenant's writes and know its limits.
pub const REFERENCE_TABLES: [&str; 5] = [
    "tenants",
    "plans",
    "limit_overrides",
    "signing_keys",
    "node_key",
];

thread_local! {
    /// This node's placement of each reference table ("tenants" -> "tenants_102008"); None until
    /// read. Emptied with the registry cache (crate::cache::clear), which every change of a
    /// registry table and citus_setup() trigger.
    static PLACEMENTS: RefCell<Option<HashMap<&'static str, String>>> = const { RefCell::new(None) };
    /// The placements REWRITTEN was made with: kept across forget(), so that the statements
    /// (leaked, 'static) are rewritten again only when the placements really changed.
    static REWRITTEN_WITH: RefCell<HashMap<&'static str, String>> = RefCell::new(HashMap::new());
    /// Statements rewritten by local_reads, per original text.
    static REWRITTEN: RefCell<HashMap<&'static str, &'static str>> = RefCell::new(HashMap::new());
}

/// Whether the citus extension is installed in this database.
pub fn installed() -> bool {
    unsafe { pg_sys::get_extension_oid(c"citus".as_ptr(), true) != pg_sys::Oid::INVALID }
}

/// Whether this database has Citus's metadata (pg_catalog.pg_dist_partition): a syscache lookup,
/// cheap enough for every planner call, and never stale (the syscache follows CREATE and DROP
/// EXTENSION citus).
pub fn metadata_present() -> bool {
    unsafe {
        pg_sys::get_relname_relid(
            c"pg_dist_partition".as_ptr(),
            pg_sys::Oid::from(pg_sys::PG_CATALOG_NAMESPACE),
        ) != pg_sys::Oid::INVALID
    }
}

/// Forgets the placements (called when the registry cache is emptied).
pub fn forget() {
    PLACEMENTS.with(|p| *p.borrow_mut() = None);
}

fn placements() -> HashMap<&'static str, String> {
    if let Some(p) = PLACEMENTS.with(|p| p.borrow().clone()) {
        return p;
    }
    let mut found = HashMap::new();
    if installed() {
        let ns = unsafe { pg_sys::get_namespace_oid(c"tenant_data".as_ptr(), true) };
        if ns != pg_sys::Oid::INVALID {
            // Citus's catalogs (pg_catalog.pg_dist_*), read as the caller: readable by everyone.
            let rows: Vec<(String, i64)> = Spi::connect(|client| {
                let table = client.select(
                    "SELECT c.relname::pg_catalog.text, s.shardid
                       FROM pg_catalog.pg_dist_partition p
                       JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.logicalrelid
                       JOIN pg_catalog.pg_dist_shard s ON s.logicalrelid OPERATOR(pg_catalog.=) p.logicalrelid
                       JOIN pg_catalog.pg_dist_placement pl ON pl.shardid OPERATOR(pg_catalog.=) s.shardid
                      WHERE c.relnamespace OPERATOR(pg_catalog.=) $1
                        AND p.partmethod OPERATOR(pg_catalog.=) 'n'
                        AND pl.groupid OPERATOR(pg_catalog.=) (SELECT groupid FROM pg_catalog.pg_dist_local_group)",
                    None,
                    &[ns.into()],
                )?;
                let mut rows = Vec::new();
                for row in table {
                    if let (Some(name), Some(shard)) = (row.get::<String>(1)?, row.get::<i64>(2)?) {
                        rows.push((name, shard));
                    }
                }
                Ok::<_, pgrx::spi::Error>(rows)
            })
            .unwrap_or_else(|e| error!("pg_tenant: reading Citus placements: {e}"));
            for (name, shard) in rows {
                if let Some(known) = REFERENCE_TABLES.iter().find(|t| **t == name) {
                    let placement = format!("{known}_{shard}");
                    // Only a placement that exists here (a node added later may lack one until
                    // Citus replicates the reference tables; reads then go through Citus).
                    let cname = std::ffi::CString::new(placement.clone()).expect("name");
                    if unsafe { pg_sys::get_relname_relid(cname.as_ptr(), ns) }
                        != pg_sys::Oid::INVALID
                    {
                        found.insert(*known, placement);
                    }
                }
            }
        }
    }
    PLACEMENTS.with(|p| *p.borrow_mut() = Some(found.clone()));
    if REWRITTEN_WITH.with(|w| *w.borrow() != found) {
        REWRITTEN.with(|r| r.borrow_mut().clear());
        REWRITTEN_WITH.with(|w| *w.borrow_mut() = found.clone());
    }
    found
}

/// The relids of this node's placements of the reference tables, by table name: their changes
/// must empty the registry cache as the tables' own do (Citus fires the triggers on placements).
pub fn placement_relid(table: &str) -> pg_sys::Oid {
    match placements().get(table) {
        Some(name) => unsafe {
            let ns = pg_sys::get_namespace_oid(c"tenant_data".as_ptr(), true);
            let cname = std::ffi::CString::new(name.as_str()).expect("name");
            pg_sys::get_relname_relid(cname.as_ptr(), ns)
        },
        None => pg_sys::Oid::INVALID,
    }
}

/// Whether `sql` only reads (a SELECT without row locks): only those may read a placement.
fn only_reads(sql: &str) -> bool {
    let upper = sql.trim_start().to_ascii_uppercase();
    upper.starts_with("SELECT")
        && ![
            "INSERT ",
            "UPDATE ",
            "DELETE ",
            " FOR UPDATE",
            " FOR SHARE",
            " FOR NO KEY",
            " FOR KEY",
        ]
        .iter()
        .any(|w| upper.contains(w))
}

/// `sql` with each reference table it reads named by this node's placement when the statement
/// only reads; unchanged otherwise (and without Citus).
pub fn local_reads(sql: &'static str) -> &'static str {
    // (Known placements first: a change of them empties REWRITTEN.)
    if PLACEMENTS.with(|p| p.borrow().is_none()) {
        placements();
    }
    if let Some(done) = REWRITTEN.with(|r| r.borrow().get(sql).copied()) {
        return done;
    }
    if !sql.contains("tenant_data.") || !only_reads(sql) {
        REWRITTEN.with(|r| r.borrow_mut().insert(sql, sql));
        return sql;
    }
    let placements = placements();
    let mut out = sql.to_string();
    for (table, placement) in &placements {
        out = replace_table(&out, table, placement);
    }
    let out: &'static str = if out == sql {
        sql
    } else {
        Box::leak(out.into_boxed_str())
    };
    REWRITTEN.with(|r| r.borrow_mut().insert(sql, out));
    out
}

/// Replaces `tenant_data.<table>` (a whole name) with `tenant_data.<placement>`.
fn replace_table(sql: &str, table: &str, placement: &str) -> String {
    let needle = format!("tenant_data.{table}");
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find(&needle) {
        let end = at + needle.len();
        let whole = rest[end..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        out.push_str(&rest[..at]);
        if whole {
            out.push_str("tenant_data.");
            out.push_str(placement);
        } else {
            out.push_str(&needle);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Runs `f` with Citus settings pg_tenant's own DDL needs on a Citus table: its statement trigger
/// (the write guard) and, when `no_propagation`, a column default Citus would refuse to change
/// on a distribution column (it is evaluated on the coordinator; shards need none).
pub fn with_ddl_settings<R>(no_propagation: bool, f: impl FnOnce() -> R) -> R {
    if !installed() {
        return f();
    }
    let mut settings = vec![("citus.enable_unsafe_triggers", "on".to_string())];
    if no_propagation {
        settings.push(("citus.enable_ddl_propagation", "off".to_string()));
    }
    crate::gucs::with_settings(&settings, f)
}

/// The distribution column of `rel` when it is a hash-distributed Citus table (None for any
/// other table, or without Citus).
pub fn distribution_column(rel: pg_sys::Oid) -> Option<String> {
    if !installed() {
        return None;
    }
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT pg_catalog.column_to_column_name(logicalrelid, partkey)
               FROM pg_catalog.pg_dist_partition
              WHERE logicalrelid OPERATOR(pg_catalog.=) $1 AND partmethod OPERATOR(pg_catalog.=) 'h'",
            Some(1),
            &[rel.into()],
        )?;
        Ok::<_, pgrx::spi::Error>(match rows.into_iter().next() {
            Some(row) => row.get::<String>(1)?,
            None => None,
        })
    })
    .unwrap_or_else(|e| error!("pg_tenant: reading Citus metadata: {e}"))
}

/// Makes the current transaction a Citus coordinated transaction (Citus's own
/// `UseCoordinatedTransaction()`, as its intermediate results do): Citus then opens a remote
/// transaction block on every worker connection the transaction uses, and sends the `SET LOCAL`
/// statements of the transaction there first. Citus does that by itself for writes and inside
/// transaction blocks only: a read outside one runs on the workers without them, so a node
/// context set for it would never arrive (a statement pg_tenant runs for tenant.export()).
/// Fails (an ERROR) when the library does not have the function.
pub fn use_coordinated_transaction() {
    unsafe {
        let f = pg_sys::load_external_function(
            c"$libdir/citus".as_ptr(),
            c"UseCoordinatedTransaction".as_ptr(),
            true,
            std::ptr::null_mut(),
        );
        if f.is_null() {
            error!("pg_tenant: the Citus library has no UseCoordinatedTransaction()");
        }
        let f: unsafe extern "C-unwind" fn() = std::mem::transmute(f);
        f();
    }
}

/// The first column of the first row of a read-only query on Citus's catalogs (readable by
/// everyone), or None. (As owner::read_one, which this layer cannot import.)
fn read_one<T: pgrx::datum::FromDatum + pgrx::datum::IntoDatum>(
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
    .unwrap_or_else(|e| error!("pg_tenant: reading Citus metadata: {e}"))
}

/// How Citus keeps `rel`'s rows: its partition method (`h` hash-distributed, `n` a reference
/// table or a Citus local table, ...), None for a table Citus does not know (or without Citus).
pub fn partition_method(rel: pg_sys::Oid) -> Option<String> {
    if !installed() {
        return None;
    }
    read_one::<String>(
        "SELECT partmethod::pg_catalog.text FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) $1",
        &[rel.into()],
    )
}

/// This node's placement of `rel`, a Citus table with a single shard (a reference table or a
/// Citus local table), when it has one here: a local copy of every row, as Citus committed it.
pub fn local_placement(rel: pg_sys::Oid) -> Option<pg_sys::Oid> {
    // (Citus's own name of the placement, as its local execution reads it; shard_name() leaves
    // it unqualified in schema public, so it is qualified here: never looked up through a
    // search_path. Not from pg_class, where Citus hides shards from most sessions.)
    read_one::<pg_sys::Oid>(
        "SELECT pg_catalog.to_regclass(CASE WHEN n.nspname OPERATOR(pg_catalog.=) 'public'
                                            THEN 'public.' OPERATOR(pg_catalog.||) pg_catalog.shard_name(s.logicalrelid, s.shardid)
                                            ELSE pg_catalog.shard_name(s.logicalrelid, s.shardid) END)::pg_catalog.oid
           FROM pg_catalog.pg_dist_shard s
           JOIN pg_catalog.pg_dist_placement pl ON pl.shardid OPERATOR(pg_catalog.=) s.shardid
           JOIN pg_catalog.pg_class t ON t.oid OPERATOR(pg_catalog.=) s.logicalrelid
           JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) t.relnamespace
          WHERE s.logicalrelid OPERATOR(pg_catalog.=) $1
            AND pl.groupid OPERATOR(pg_catalog.=) (SELECT groupid FROM pg_catalog.pg_dist_local_group)
            AND (SELECT pg_catalog.count(*) FROM pg_catalog.pg_dist_shard x WHERE x.logicalrelid OPERATOR(pg_catalog.=) $1) OPERATOR(pg_catalog.=) 1",
        &[rel.into()],
    )
    .filter(|placement| unsafe {
        pg_sys::get_rel_namespace(*placement) == pg_sys::get_rel_namespace(rel)
            && pg_sys::get_rel_relkind(*placement) == pg_sys::RELKIND_RELATION as std::ffi::c_char
    })
}

/// Whether this node is the Citus coordinator (its group is 0; also a database with Citus but
/// no node added yet).
pub fn is_coordinator() -> bool {
    installed()
        && Spi::get_one::<bool>(
            "SELECT pg_catalog.bool_and(groupid OPERATOR(pg_catalog.=) 0) FROM pg_catalog.pg_dist_local_group",
        )
        .ok()
        .flatten()
        .unwrap_or(true)
}

/// Whether `rel` is a Citus table (distributed or reference).
pub fn is_citus_table(rel: pg_sys::Oid) -> bool {
    installed()
        && Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) $1)",
            &[rel.into()],
        )
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::{only_reads, replace_table};

    #[test]
    fn only_whole_names_are_replaced() {
        assert_eq!(
            replace_table(
                "SELECT 1 FROM tenant_data.tenants t JOIN tenant_data.tenant_access a ON true WHERE x IN (SELECT id FROM tenant_data.tenants)",
                "tenants",
                "tenants_7"
            ),
            "SELECT 1 FROM tenant_data.tenants_7 t JOIN tenant_data.tenant_access a ON true WHERE x IN (SELECT id FROM tenant_data.tenants_7)"
        );
        assert_eq!(
            replace_table(
                "SELECT * FROM tenant_data.tenants_x",
                "tenants",
                "tenants_7"
            ),
            "SELECT * FROM tenant_data.tenants_x"
        );
    }

    #[test]
    fn only_plain_reads_read_placements() {
        assert!(only_reads("  SELECT id FROM tenant_data.tenants"));
        assert!(!only_reads(
            "SELECT 1 FROM tenant_data.locks WHERE name = $1 FOR UPDATE"
        ));
        assert!(!only_reads("INSERT INTO tenant_data.tenants SELECT 1"));
        assert!(!only_reads(
            "WITH d AS (DELETE FROM tenant_data.plans) SELECT 1"
        ));
        assert!(!only_reads("UPDATE tenant_data.tenants SET status = 'x'"));
    }
}
