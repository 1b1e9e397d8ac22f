//! Row-level isolation: `tenant.protect()` / `tenant.unprotect()`, the per-statement write guard
//! they install, and deleting a tenant's rows everywhere when it is dropped.
//!
//! What `protect` installs on a table and on every partition or inheritance child below it:
//! - the tenant column (`uuid NOT NULL DEFAULT tenant.current()`) and an index leading with it;
//! - ENABLE and FORCE ROW LEVEL SECURITY, so table owners are filtered too;
//! - policy `tenant_isolation`, RESTRICTIVE, `tenant_column = tenant.current()` for reads and
//!   writes: being restrictive, no other (permissive) policy can widen it;
//! - with `shared_rows`: the column stays nullable, `tenant_isolation` reads
//!   `tenant_column = tenant.current() OR tenant_column IS NULL` (rows without a tenant are shared
//!   reference rows every tenant reads) and still checks `tenant_column = tenant.current()` for
//!   every row written; the RESTRICTIVE policies `tenant_shared_update` and `tenant_shared_delete`
//!   keep `tenant_column = tenant.current()` for UPDATE (and SELECT ... FOR UPDATE/SHARE) and
//!   DELETE, so only roles that bypass row security write shared rows;
//! - policy `tenant_access`, PERMISSIVE `true`: RLS needs one permissive policy to grant anything;
//! - trigger `tenant_guard`, BEFORE INSERT/UPDATE/DELETE/TRUNCATE FOR EACH STATEMENT: refuses
//!   writes for a suspended or unknown tenant, writes with no tenant, and TRUNCATE.

use std::cell::Cell;

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::quote_identifier;
use pgrx::spi::quote_literal;
use serde_json::{json, Map, Value};

use crate::audit;
use crate::error::{guarded, required, TenantError};
use crate::owner::{as_extension_owner, as_table_owner, bypasses_rls, current_role, run_with_args};
use crate::registry;

extension_sql_file!(
    "../sql/policies.sql",
    name = "protected_tables_view",
    requires = ["registry_tables", guard]
);

pub const ISOLATION_POLICY: &str = "tenant_isolation";
pub const ACCESS_POLICY: &str = "tenant_access";
/// With shared_rows: UPDATE and DELETE stay on the tenant's own rows.
pub const SHARED_UPDATE_POLICY: &str = "tenant_shared_update";
pub const SHARED_DELETE_POLICY: &str = "tenant_shared_delete";
pub const GUARD_TRIGGER: &str = "tenant_guard";
/// The permissive policy's expression: always true, yet dependent on the extension.
pub const ACCESS_QUAL: &str = "tenant.\"current\"(true) IS NULL OR true";

thread_local! {
    /// Set while tenant.drop() deletes a tenant's rows: the guard lets those deletes through.
    static MAINTENANCE: Cell<bool> = const { Cell::new(false) };
}

/// The statement-level write guard installed by protect().
#[pg_trigger]
fn guard<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, pgrx::AllocatedByPostgres>>, pgrx::PgTriggerError> {
    guarded(|| {
        let role = current_role();
        if trigger.event().fired_by_truncate() {
            if !bypasses_rls(role) {
                let table = format!("{}.{}", trigger.table_schema()?, trigger.table_name()?);
                TenantError::TruncateRefused(table).raise();
            }
            return Ok(None);
        }
        if MAINTENANCE.with(|m| m.get()) {
            return Ok(None);
        }
        match registry::current() {
            None if bypasses_rls(role) => {}
            None => TenantError::NoTenant.raise(),
            Some(t) => {
                registry::require_writable(t);
            }
        }
        Ok(None)
    })
}

/// A relation and everything that inherits from it (partitions at every level included),
/// parents first.
pub fn relation_tree(root: pg_sys::Oid) -> Vec<(pg_sys::Oid, String, String)> {
    Spi::connect(|client| {
        let rows = client.select(
            "WITH RECURSIVE tree(relid, depth) AS (
                 SELECT $1::pg_catalog.oid, 0
                 UNION ALL
                 SELECT i.inhrelid, t.depth + 1 FROM pg_catalog.pg_inherits i JOIN tree t ON i.inhparent OPERATOR(pg_catalog.=) t.relid)
             SELECT c.oid, c.oid::pg_catalog.regclass::pg_catalog.text, c.relkind::pg_catalog.text
               FROM tree JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) tree.relid
              ORDER BY tree.depth",
            None,
            &[root.into()],
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push((
                row.get::<pg_sys::Oid>(1)?.expect("oid"),
                row.get::<String>(2)?.expect("name"),
                row.get::<String>(3)?.expect("relkind"),
            ));
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
}

/// (type name, not null, has default) of a live column, if it exists.
fn column_info(rel: pg_sys::Oid, column: &str) -> Option<(String, bool, bool)> {
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT atttypid::pg_catalog.regtype::pg_catalog.text, attnotnull, atthasdef FROM pg_catalog.pg_attribute
              WHERE attrelid OPERATOR(pg_catalog.=) $1 AND attname OPERATOR(pg_catalog.=) $2::pg_catalog.name
                AND attnum OPERATOR(pg_catalog.>) 0 AND NOT attisdropped",
            Some(1),
            &[rel.into(), column.into()],
        )?;
        Ok::<_, pgrx::spi::Error>(rows.into_iter().next().map(|r| {
            (
                r.get::<String>(1).ok().flatten().unwrap_or_default(),
                r.get::<bool>(2).ok().flatten().unwrap_or(false),
                r.get::<bool>(3).ok().flatten().unwrap_or(false),
            )
        }))
    })
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
}

fn has_index_leading_with(rel: pg_sys::Oid, column: &str) -> bool {
    Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a
                          ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum OPERATOR(pg_catalog.=) i.indkey[0]
                        WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name)",
        &[rel.into(), column.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// The tenant column of a protected table, read back from its guard trigger's argument.
pub fn protected_column(rel: pg_sys::Oid) -> Option<String> {
    crate::owner::as_extension_owner(|| {
        Spi::get_one_with_args::<String>(
        crate::owner::data_sql("SELECT tenant_column::pg_catalog.text FROM tenant_data.protected_tables WHERE table_name::pg_catalog.oid OPERATOR(pg_catalog.=) $1"),
        &[rel.into()],
    )
    .ok()
    .flatten()
    })
}

/// Drops the policies and trigger protect() installs on `rel`, where they exist (quietly: DROP
/// ... IF EXISTS would print a NOTICE for each one missing).
fn drop_installed_objects(rel: pg_sys::Oid, rel_name: &str) {
    let (policies, trigger) = Spi::get_two_with_args::<Vec<String>, bool>(
        "SELECT ARRAY(SELECT polname::pg_catalog.text FROM pg_catalog.pg_policy
                       WHERE polrelid OPERATOR(pg_catalog.=) $1 AND polname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.name[])),
                EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid OPERATOR(pg_catalog.=) $1 AND tgname OPERATOR(pg_catalog.=) $3::pg_catalog.name)",
        &[
            rel.into(),
            vec![ISOLATION_POLICY, ACCESS_POLICY, SHARED_UPDATE_POLICY, SHARED_DELETE_POLICY].into(),
            GUARD_TRIGGER.into(),
        ],
    )
    .unwrap_or_else(|e| error!("pg_tenant: {e}"));
    for policy in policies.unwrap_or_default() {
        run(&format!(
            "DROP POLICY {} ON {rel_name}",
            quote_identifier(&policy)
        ));
    }
    if trigger.unwrap_or(false) {
        run(&format!("DROP TRIGGER {GUARD_TRIGGER} ON {rel_name}"));
    }
}

/// Refuses to protect `tree` while a foreign key joins it with a protected table (or itself)
/// without pairing the two tenant columns: referential checks and cascades bypass row security,
/// so such a key lets a row reference another tenant's row, a cascade delete another tenant's
/// rows, and a failed insert reveal another tenant's keys. The HINT gives the composite key.
fn refuse_cross_tenant_foreign_keys(tree: &[(pg_sys::Oid, String, String)], column: &str) {
    crate::owner::as_extension_owner(|| {
        let rels: Vec<pg_sys::Oid> = tree.iter().map(|(rel, _, _)| *rel).collect();
        let found = Spi::connect(|client| {
        let rows = client.select(
            crate::owner::data_sql("WITH cols(rel, col) AS (
                 SELECT r, $2::pg_catalog.name FROM pg_catalog.unnest($1::pg_catalog.oid[]) AS r
                 UNION ALL
                 SELECT p.table_name::pg_catalog.oid, p.tenant_column FROM tenant_data.protected_tables p
                  WHERE p.table_name::pg_catalog.oid OPERATOR(pg_catalog.<>) ALL ($1::pg_catalog.oid[]))
             SELECT con.conname::pg_catalog.text, con.conrelid::pg_catalog.regclass::pg_catalog.text,
                    con.confrelid::pg_catalog.regclass::pg_catalog.text, src.col::pg_catalog.text, dst.col::pg_catalog.text,
                    (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.n)
                       FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY k(attnum, n)
                       JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) con.conrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum),
                    (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.n)
                       FROM pg_catalog.unnest(con.confkey) WITH ORDINALITY k(attnum, n)
                       JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) con.confrelid AND a.attnum OPERATOR(pg_catalog.=) k.attnum)
               FROM pg_catalog.pg_constraint con
               JOIN cols src ON src.rel OPERATOR(pg_catalog.=) con.conrelid
               JOIN cols dst ON dst.rel OPERATOR(pg_catalog.=) con.confrelid
              WHERE con.contype OPERATOR(pg_catalog.=) 'f' AND con.conparentid OPERATOR(pg_catalog.=) 0
                AND (con.conrelid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[]) OR con.confrelid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[]))
                AND NOT EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest(con.conkey), pg_catalog.unnest(con.confkey)) k(a, b)
                                  JOIN pg_catalog.pg_attribute sa ON sa.attrelid OPERATOR(pg_catalog.=) con.conrelid AND sa.attnum OPERATOR(pg_catalog.=) k.a
                                  JOIN pg_catalog.pg_attribute da ON da.attrelid OPERATOR(pg_catalog.=) con.confrelid AND da.attnum OPERATOR(pg_catalog.=) k.b
                                 WHERE sa.attname OPERATOR(pg_catalog.=) src.col AND da.attname OPERATOR(pg_catalog.=) dst.col)
              ORDER BY 2, 1
              LIMIT 1"),
            None,
            &[rels.into(), column.into()],
        )?;
        let mut found = None;
        for r in rows {
            found = Some((
                r.get::<String>(1)?.unwrap_or_default(),
                r.get::<String>(2)?.unwrap_or_default(),
                r.get::<String>(3)?.unwrap_or_default(),
                r.get::<String>(4)?.unwrap_or_default(),
                r.get::<String>(5)?.unwrap_or_default(),
                r.get::<String>(6)?.unwrap_or_default(),
                r.get::<String>(7)?.unwrap_or_default(),
            ));
        }
        Ok::<_, pgrx::spi::Error>(found)
    })
    .unwrap_or_else(|e| error!("pg_tenant: {e}"));
        if let Some((constraint, table, referenced, src_col, dst_col, cols, ref_cols)) = found {
            let (src_col, dst_col) = (quote_identifier(&src_col), quote_identifier(&dst_col));
            TenantError::CrossTenantForeignKey {
            constraint: constraint.clone(),
            table: table.clone(),
            referenced: referenced.clone(),
            fix: format!(
                "ALTER TABLE {referenced} ADD UNIQUE ({dst_col}, {ref_cols}); \
                 ALTER TABLE {table} DROP CONSTRAINT {}, ADD FOREIGN KEY ({src_col}, {cols}) REFERENCES {referenced} ({dst_col}, {ref_cols});",
                quote_identifier(&constraint)
            ),
        }
        .raise();
        }
    })
}

/// Whether this database has tenant_data.protected_relations (0.3.0 on); a database still at
/// 0.1.0 or 0.2.0 reads protection from the guard triggers until it is updated.
pub fn protection_catalog_exists() -> bool {
    // (Not to_regclass('tenant_data.protected_relations'): naming a schema the caller may not
    // use is an error, not NULL.)
    !crate::owner::tables_in_old_schema()
}

/// Records the copies (in schema `target`) of the protected tables of schema `source` as
/// protected, with the same tenant column and shared_rows: tenant.clone_schema() copies their
/// policies and guard.
pub fn register_copies(source: &str, target: &str) {
    if !protection_catalog_exists() {
        return;
    }
    crate::owner::run_as_owner(
        crate::owner::data_sql("INSERT INTO tenant_data.protected_relations (relid, tenant_column, shared_rows)
         SELECT pg_catalog.format('%I.%I', $2::pg_catalog.text, c.relname)::pg_catalog.regclass, r.tenant_column, r.shared_rows
           FROM tenant_data.protected_relations r
           JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.relid::pg_catalog.oid
           JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
          WHERE n.nspname OPERATOR(pg_catalog.=) $1
         ON CONFLICT (relid) DO NOTHING"),
        &[source.into(), target.into()],
    );
}

/// Records `tree` in tenant_data.protected_relations with its tenant column and shared_rows
/// (protect), or forgets it (None: unprotect). Rows of relations dropped since are forgotten too.
fn register(tree: &[(pg_sys::Oid, String, String)], column: Option<(&str, bool)>) {
    let rels: Vec<pg_sys::Oid> = tree.iter().map(|(rel, _, _)| *rel).collect();
    as_extension_owner(|| {
        // A database still at 0.1.0/0.2.0 reads protection from the guard triggers; the update
        // to 0.3.0 fills the catalog from them.
        if !protection_catalog_exists() {
            return;
        }
        run_with_args(
            crate::owner::data_sql("DELETE FROM tenant_data.protected_relations
              WHERE relid::pg_catalog.oid OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.oid[])
                 OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) relid::pg_catalog.oid)"),
            &[rels.clone().into()],
        );
        if let Some((column, shared_rows)) = column {
            run_with_args(
                crate::owner::data_sql("INSERT INTO tenant_data.protected_relations (relid, tenant_column, shared_rows)
                 SELECT r::pg_catalog.regclass, $2::pg_catalog.name, $3 FROM pg_catalog.unnest($1::pg_catalog.oid[]) AS r"),
                &[rels.into(), column.into(), shared_rows.into()],
            );
        }
    })
}

fn run(sql: &str) {
    run_with_args(sql, &[]);
}

fn table_root(tbl: Option<pg_sys::Oid>) -> (pg_sys::Oid, String) {
    let tbl = required(tbl, "tbl");
    let tree = relation_tree(tbl);
    let (_, name, kind) = tree.first().cloned().unwrap_or_else(|| {
        TenantError::WrongObjectType {
            object: format!("relation {}", tbl.to_u32()),
            expected: "a table",
        }
        .raise()
    });
    if kind != "r" && kind != "p" {
        TenantError::WrongObjectType {
            object: name,
            expected: "a table",
        }
        .raise();
    }
    (tbl, name)
}

/// Rows of `name` without a tenant (every row when the column does not exist yet), counted as
/// the table's owner (see owner::as_table_owner: no row is hidden from the count).
fn rows_without_tenant(rel: pg_sys::Oid, name: &str, column: &str, column_exists: bool) -> i64 {
    let sql = if column_exists {
        format!(
            "SELECT pg_catalog.count(*) FROM {name} WHERE {} IS NULL",
            quote_identifier(column)
        )
    } else {
        format!("SELECT pg_catalog.count(*) FROM {name}")
    };
    as_table_owner(rel, || Spi::get_one::<i64>(&sql))
        .unwrap_or_else(|e| error!("pg_tenant: {e}"))
        .unwrap_or(0)
}

/// protect() makes the tenant column NOT NULL (without shared_rows): rows that have no tenant yet
/// (or no tenant column at all) are refused with how to backfill them, instead of PostgreSQL's
/// bare NOT NULL error.
fn refuse_rows_without_tenant(rel: pg_sys::Oid, name: &str, column: &str, column_exists: bool) {
    let rows = rows_without_tenant(rel, name, column, column_exists);
    if rows > 0 {
        TenantError::RowsWithoutTenant {
            table: name.to_string(),
            column: column.to_string(),
            rows,
        }
        .raise();
    }
}

/// The restrictive policies of a protected relation: (name, command, USING, WITH CHECK).
/// `tenant_column = tenant.current()` stays a plain comparison (an index condition); with shared
/// rows the reads add `OR tenant_column IS NULL` (a second index condition: a BitmapOr). With no
/// tenant set, tenant.current() raises for the first row either way: shared rows too fail closed.
fn restrictive_policies(
    col: &str,
    shared_rows: bool,
) -> Vec<(&'static str, &'static str, String, Option<String>)> {
    let own = format!("{col} OPERATOR(pg_catalog.=) tenant.current()");
    if !shared_rows {
        return vec![(ISOLATION_POLICY, "ALL", own.clone(), Some(own))];
    }
    vec![
        (
            ISOLATION_POLICY,
            "ALL",
            format!("{own} OR {col} IS NULL"),
            Some(own.clone()),
        ),
        (
            SHARED_UPDATE_POLICY,
            "UPDATE",
            own.clone(),
            Some(own.clone()),
        ),
        (SHARED_DELETE_POLICY, "DELETE", own, None),
    ]
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.protect(tbl regclass, tenant_column name DEFAULT 'tenant_id', shared_rows boolean DEFAULT false)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@'
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tenant.protect(regclass, name, boolean) IS 'pg_tenant: isolate a table (and its partitions) by tenant with row-level security (with shared_rows, rows without a tenant are read by every tenant and written only by roles that bypass row security)';
"#,
    requires = [guard]
)]
fn protect_with_shared_rows(
    tbl: Option<pg_sys::Oid>,
    tenant_column: Option<&std::ffi::CStr>,
    shared_rows: Option<bool>,
) {
    guarded(|| {
        let (tbl, name) = table_root(tbl);
        let column = required(tenant_column, "tenant_column")
            .to_string_lossy()
            .into_owned();
        let shared_rows = required(shared_rows, "shared_rows");
        let col = quote_identifier(&column);
        // (Only for the owner: anyone else gets PostgreSQL's "must be owner" from the DDL.)
        let owner = crate::owner::relation_owner(tbl)
            .is_some_and(|o| crate::owner::has_privileges_of(current_role(), o));
        match column_info(tbl, &column) {
            Some((_, true, _)) => {}
            info if owner && !shared_rows => {
                refuse_rows_without_tenant(tbl, &name, &column, info.is_some())
            }
            _ => {}
        }
        match column_info(tbl, &column) {
            Some((ty, _, _)) if ty != "uuid" => TenantError::WrongColumnType {
                table: name.clone(),
                column: column.clone(),
                found: ty,
            }
            .raise(),
            Some((_, not_null, has_default)) => {
                if !has_default {
                    run(&format!(
                        "ALTER TABLE {name} ALTER COLUMN {col} SET DEFAULT tenant.current()"
                    ));
                }
                if !not_null && !shared_rows {
                    run(&format!(
                        "ALTER TABLE {name} ALTER COLUMN {col} SET NOT NULL"
                    ));
                }
                if not_null && shared_rows {
                    // Partitions and children follow (DROP NOT NULL recurses).
                    run(&format!(
                        "ALTER TABLE {name} ALTER COLUMN {col} DROP NOT NULL"
                    ));
                }
            }
            None => {
                // Added without a default first: a non-volatile default would be evaluated once,
                // right now, for the existing rows, and fail when no tenant is set.
                run(&format!("ALTER TABLE {name} ADD COLUMN {col} uuid"));
                run(&format!(
                    "ALTER TABLE {name} ALTER COLUMN {col} SET DEFAULT tenant.current()"
                ));
                if !shared_rows {
                    run(&format!(
                        "ALTER TABLE {name} ALTER COLUMN {col} SET NOT NULL"
                    ));
                }
            }
        }
        let tree = relation_tree(tbl);
        refuse_cross_tenant_foreign_keys(&tree, &column);
        for (rel, rel_name, _) in &tree {
            if !has_index_leading_with(*rel, &column) {
                run(&format!("CREATE INDEX ON {rel_name} ({col})"));
            }
            run(&format!(
                "ALTER TABLE {rel_name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"
            ));
            drop_installed_objects(*rel, rel_name);
            for (policy, command, using, check) in restrictive_policies(&col, shared_rows) {
                let check = check
                    .map(|c| format!(" WITH CHECK ({c})"))
                    .unwrap_or_default();
                run(&format!(
                    "CREATE POLICY {policy} ON {rel_name} AS RESTRICTIVE FOR {command} TO PUBLIC USING ({using}){check}"
                ));
            }
            // Grants every row the restrictive policy lets through. It names tenant.current()
            // (and the planner folds it to true) so that DROP EXTENSION ... CASCADE drops it
            // with the restrictive one: the table is then left with row security and no
            // policy, which shows no row to a role subject to it (fails closed).
            run(&format!(
                "CREATE POLICY {ACCESS_POLICY} ON {rel_name} AS PERMISSIVE FOR ALL TO PUBLIC USING ({ACCESS_QUAL}) WITH CHECK ({ACCESS_QUAL})"
            ));
            run(&format!(
                "CREATE TRIGGER {GUARD_TRIGGER} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {rel_name} \
                 FOR EACH STATEMENT EXECUTE FUNCTION tenant.guard({})",
                quote_literal(&column)
            ));
        }
        register(&tree, Some((&column, shared_rows)));
        if shared_rows && owner {
            let shared = rows_without_tenant(tbl, &name, &column, true);
            if shared > 0 {
                notice!("{shared} row(s) of {name} have no tenant: they are shared rows, which every tenant reads");
            }
        }
        let children: Vec<&str> = tree.iter().skip(1).map(|(_, n, _)| n.as_str()).collect();
        audit::record(
            "protect",
            None,
            json!({"table": name, "tenant_column": column, "shared_rows": shared_rows, "children": children}),
        );
    })
}

/// The C symbol 0.1.0's and 0.2.0's `tenant.protect(regclass, name)` call (until they are
/// updated).
#[pg_extern(volatile, parallel_unsafe, sql = false)]
fn protect(tbl: Option<pg_sys::Oid>, tenant_column: Option<&std::ffi::CStr>) {
    protect_with_shared_rows(tbl, tenant_column, Some(false))
}

#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.unprotect(tbl regclass)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@'
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tenant.unprotect(regclass) IS 'pg_tenant: remove what tenant.protect() installed; the tenant column and the data stay';
"#,
    requires = ["protected_tables_view"]
)]
fn unprotect(tbl: Option<pg_sys::Oid>) {
    guarded(|| {
        let (tbl, name) = table_root(tbl);
        let column = protected_column(tbl)
            .unwrap_or_else(|| TenantError::NotProtected(name.clone()).raise());
        let col = quote_identifier(&column);
        let tree = relation_tree(tbl);
        register(&tree, None);
        for (rel, rel_name, _) in tree {
            drop_installed_objects(rel, &rel_name);
            let other_policies = Spi::get_one_with_args::<bool>(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_policy WHERE polrelid OPERATOR(pg_catalog.=) $1)",
                &[rel.into()],
            )
            .ok()
            .flatten()
            .unwrap_or(false);
            if !other_policies {
                run(&format!("ALTER TABLE {rel_name} NO FORCE ROW LEVEL SECURITY, DISABLE ROW LEVEL SECURITY"));
            }
        }
        let default_is_ours = Spi::get_one_with_args::<bool>(
            "SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid) OPERATOR(pg_catalog.=) 'tenant.current()'
               FROM pg_catalog.pg_attrdef d JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) d.adrelid AND a.attnum OPERATOR(pg_catalog.=) d.adnum
              WHERE d.adrelid OPERATOR(pg_catalog.=) $1 AND a.attname OPERATOR(pg_catalog.=) $2::pg_catalog.name",
            &[tbl.into(), column.as_str().into()],
        )
        .ok()
        .flatten()
        .unwrap_or(false);
        if default_is_ours {
            run(&format!(
                "ALTER TABLE {name} ALTER COLUMN {col} DROP DEFAULT"
            ));
        }
        audit::record(
            "unprotect",
            None,
            json!({"table": name, "tenant_column": column}),
        );
    })
}

/// Deletes a tenant's rows from every protected table, referencing tables before the tables they
/// reference, and returns the count per table. Each table is locked and deleted from by its owner
/// inside a security-restricted operation (as VACUUM works on a table): the owner's triggers and
/// the cascades of its foreign keys run with the owner's rights, whoever calls tenant.drop().
pub fn delete_tenant_rows(tenant: pgrx::Uuid) -> Value {
    struct EndMaintenance;
    impl Drop for EndMaintenance {
        fn drop(&mut self) {
            MAINTENANCE.with(|m| m.set(false));
        }
    }
    let _end = EndMaintenance;
    MAINTENANCE.with(|m| m.set(true));
    let (tables, edges) = as_extension_owner(|| {
        Spi::connect(|client| {
            // Top-level protected tables: a partition's rows go with its parent's.
            let mut tables: Vec<(pg_sys::Oid, String, String)> = Vec::new();
            for row in client.select(
                // Tables in schema tenants' schemas hold only their own tenant's rows: skipped.
                crate::owner::data_sql("SELECT p.table_name::pg_catalog.oid, p.table_name::pg_catalog.text, p.tenant_column::pg_catalog.text
                   FROM tenant_data.protected_tables p
                   JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.table_name::pg_catalog.oid
                   JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                  WHERE (p.parent IS NULL OR NOT EXISTS (SELECT 1 FROM tenant_data.protected_tables q
                                                          WHERE q.table_name::pg_catalog.oid OPERATOR(pg_catalog.=) p.parent::pg_catalog.oid))
                    AND NOT EXISTS (SELECT 1 FROM tenant_data.tenants t WHERE t.schema_name OPERATOR(pg_catalog.=) n.nspname)
                  ORDER BY 2"),
                None,
                &[],
            )? {
                tables.push((row.get(1)?.expect("oid"), row.get(2)?.expect("name"), row.get(3)?.expect("column")));
            }
            let mut edges: Vec<(pg_sys::Oid, pg_sys::Oid)> = Vec::new();
            for row in client.select(
                "SELECT DISTINCT COALESCE(pg_catalog.pg_partition_root(conrelid), conrelid)::pg_catalog.oid,
                                 COALESCE(pg_catalog.pg_partition_root(confrelid), confrelid)::pg_catalog.oid
                   FROM pg_catalog.pg_constraint WHERE contype OPERATOR(pg_catalog.=) 'f'",
                None,
                &[],
            )? {
                edges.push((row.get(1)?.expect("oid"), row.get(2)?.expect("oid")));
            }
            Ok::<_, pgrx::spi::Error>((tables, edges))
        })
        .unwrap_or_else(|e| error!("pg_tenant: {e}"))
    });

    // Writers of the tenant still under way would commit rows after the deletes' snapshot:
    // wait for them, and keep new ones out until the drop commits (they then find no tenant).
    for (rel, name, _) in &tables {
        as_table_owner(*rel, || {
            run_with_args(
                &format!("LOCK TABLE {name} IN SHARE ROW EXCLUSIVE MODE"),
                &[],
            )
        });
    }
    let mut deleted = Map::new();
    for (rel, name, column) in delete_order(tables, &edges) {
        let count = as_table_owner(rel, || {
            Spi::connect_mut(|client| {
                client
                    .update(
                        &format!(
                            "DELETE FROM {name} WHERE {} OPERATOR(pg_catalog.=) $1",
                            quote_identifier(&column)
                        ),
                        None,
                        &[tenant.into()],
                    )
                    .map(|t| t.len())
            })
        })
        .unwrap_or_else(|e| error!("pg_tenant: {e}"));
        deleted.insert(name, json!(count));
    }
    Value::Object(deleted)
}

/// Orders tables so that a table referencing another (by foreign key) comes first. Cycles are
/// broken in name order; a cycle of non-cascading keys then fails with PostgreSQL's own error.
fn delete_order<T: Clone>(
    mut tables: Vec<(pg_sys::Oid, String, T)>,
    edges: &[(pg_sys::Oid, pg_sys::Oid)],
) -> Vec<(pg_sys::Oid, String, T)> {
    let mut ordered = Vec::with_capacity(tables.len());
    while !tables.is_empty() {
        let pending: Vec<pg_sys::Oid> = tables.iter().map(|t| t.0).collect();
        let referenced_by_pending = |rel: pg_sys::Oid| {
            edges
                .iter()
                .any(|(from, to)| *to == rel && *from != rel && pending.contains(from))
        };
        let next = tables
            .iter()
            .position(|t| !referenced_by_pending(t.0))
            .unwrap_or(0);
        ordered.push(tables.remove(next));
    }
    ordered
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use super::delete_order;
    use pgrx::pg_sys::Oid;
    use pgrx::prelude::*;

    fn names(v: Vec<(Oid, String, ())>) -> Vec<String> {
        v.into_iter().map(|t| t.1).collect()
    }

    #[pg_test]
    fn referencing_tables_are_deleted_first() {
        let (c, o, l) = (Oid::from(1u32), Oid::from(2u32), Oid::from(3u32));
        let tables = vec![
            (c, "customers".into(), ()),
            (o, "orders".into(), ()),
            (l, "lines".into(), ()),
        ];
        // orders -> customers, lines -> orders, and a self reference on customers.
        let edges = [(o, c), (l, o), (c, c)];
        assert_eq!(
            names(delete_order(tables, &edges)),
            ["lines", "orders", "customers"]
        );
    }

    #[pg_test]
    fn a_cycle_still_yields_every_table_once() {
        let (a, b) = (Oid::from(1u32), Oid::from(2u32));
        let tables = vec![(a, "a".into(), ()), (b, "b".into(), ())];
        let mut out = names(delete_order(tables, &[(a, b), (b, a)]));
        out.sort();
        assert_eq!(out, ["a", "b"]);
    }

    /// pg_tests run as a superuser, who bypasses row-level security: switch to a plain role.
    #[pg_test]
    fn protected_table_filters_a_plain_role() {
        Spi::run(
            "CREATE ROLE pgtest_policies_app;
             CREATE TABLE pgtest_policies_t (n int);
             SELECT tenant.protect('pgtest_policies_t');
             GRANT SELECT, INSERT ON pgtest_policies_t TO pgtest_policies_app;
             SELECT tenant.create('pgtest-policies-a'), tenant.create('pgtest-policies-b');
             SELECT tenant.grant_gateway('pgtest_policies_app');
             SELECT tenant.set('pgtest-policies-a');
             INSERT INTO pgtest_policies_t VALUES (1), (2);
             SELECT tenant.set('pgtest-policies-b');
             INSERT INTO pgtest_policies_t VALUES (3);
             SET ROLE pgtest_policies_app;
             SELECT tenant.set('pgtest-policies-a');",
        )
        .unwrap();
        assert_eq!(
            Spi::get_one::<i64>("SELECT sum(n) FROM pgtest_policies_t").unwrap(),
            Some(3)
        );
        Spi::run("SELECT tenant.set('pgtest-policies-b')").unwrap();
        assert_eq!(
            Spi::get_one::<i64>("SELECT sum(n) FROM pgtest_policies_t").unwrap(),
            Some(3)
        );
        assert_eq!(
            Spi::get_one::<i64>("SELECT count(*) FROM pgtest_policies_t").unwrap(),
            Some(1)
        );
        Spi::run("RESET ROLE").unwrap();
    }
}
