//! `tenant.protect()` and `tenant.unprotect()`: what they install on a table tree (see
//! [`super::policies`]), and what they refuse (rows without a tenant, foreign keys across
//! tenants).

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::quote_identifier;
use pgrx::spi::quote_literal;
use serde_json::json;

use crate::error::{guarded, required, TenantError};
use crate::exemption::unfiltered;
use crate::owner::{as_table_owner, current_role, run_with_args};
use crate::registry::audit;
use crate::types::TreeRelation;

use super::policies::{
    permissive_policies, protected_column, register, relation_tree, restrictive_policies,
    ACCESS_POLICY, ACCESS_QUAL, GUARD_TRIGGER, ISOLATION_POLICY, SHARED_DELETE_POLICY,
    SHARED_INSERT_POLICY, SHARED_UPDATE_POLICY, TRUNCATE_GUARD_TRIGGER,
};

/// What protect() needs to know of a live column.
pub(super) struct ColumnInfo {
    pub type_name: String,
    pub not_null: bool,
    pub has_default: bool,
}

/// The live column `column` of `rel`, if it exists.
pub(super) fn column_info(rel: pg_sys::Oid, column: &str) -> Option<ColumnInfo> {
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT atttypid::pg_catalog.regtype::pg_catalog.text, attnotnull, atthasdef FROM pg_catalog.pg_attribute
              WHERE attrelid OPERATOR(pg_catalog.=) $1 AND attname OPERATOR(pg_catalog.=) $2::pg_catalog.name
                AND attnum OPERATOR(pg_catalog.>) 0 AND NOT attisdropped",
            Some(1),
            &[rel.into(), column.into()],
        )?;
        Ok::<_, pgrx::spi::Error>(rows.into_iter().next().map(|r| ColumnInfo {
            type_name: r.get::<String>(1).ok().flatten().unwrap_or_default(),
            not_null: r.get::<bool>(2).ok().flatten().unwrap_or(false),
            has_default: r.get::<bool>(3).ok().flatten().unwrap_or(false),
        }))
    })
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
}

pub(super) fn has_index_leading_with(rel: pg_sys::Oid, column: &str) -> bool {
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

/// Drops the policies and trigger protect() installs on `rel`, where they exist (quietly: DROP
/// ... IF EXISTS would print a NOTICE for each one missing).
pub(super) fn drop_installed_objects(rel: pg_sys::Oid, rel_name: &str) {
    let (policies, triggers) = Spi::get_two_with_args::<Vec<String>, Vec<String>>(
        "SELECT ARRAY(SELECT polname::pg_catalog.text FROM pg_catalog.pg_policy
                       WHERE polrelid OPERATOR(pg_catalog.=) $1 AND polname OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.name[])),
                ARRAY(SELECT tgname::pg_catalog.text FROM pg_catalog.pg_trigger
                       WHERE tgrelid OPERATOR(pg_catalog.=) $1 AND tgname OPERATOR(pg_catalog.=) ANY ($3::pg_catalog.name[]))",
        &[
            rel.into(),
            vec![
                ISOLATION_POLICY,
                ACCESS_POLICY,
                SHARED_UPDATE_POLICY,
                SHARED_DELETE_POLICY,
                SHARED_INSERT_POLICY,
            ]
            .into(),
            vec![GUARD_TRIGGER, TRUNCATE_GUARD_TRIGGER].into(),
        ],
    )
    .unwrap_or_else(|e| error!("pg_tenant: {e}"));
    for policy in policies.unwrap_or_default() {
        run(&format!(
            "DROP POLICY {} ON {rel_name}",
            quote_identifier(&policy)
        ));
    }
    for trigger in triggers.unwrap_or_default() {
        // (Citus refuses to drop a trigger of a Citus table otherwise: a partition protected again.)
        crate::citus::with_ddl_settings(false, || {
            run(&format!(
                "DROP TRIGGER {} ON {rel_name}",
                quote_identifier(&trigger)
            ))
        });
    }
}

/// Refuses to protect `tree` while a foreign key joins it with a protected table (or itself)
/// without pairing the two tenant columns: referential checks and cascades bypass row security,
/// so such a key lets a row reference another tenant's row, a cascade delete another tenant's
/// rows, and a failed insert reveal another tenant's keys. The HINT gives the composite key.
pub(super) fn refuse_cross_tenant_foreign_keys(tree: &[TreeRelation], column: &str) {
    crate::owner::as_extension_owner(|| {
        let rels: Vec<pg_sys::Oid> = tree.iter().map(|r| r.oid).collect();
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

pub(super) fn run(sql: &str) {
    run_with_args(sql, &[]);
}

pub(super) fn table_root(tbl: Option<pg_sys::Oid>) -> (pg_sys::Oid, String) {
    let tbl = required(tbl, "tbl");
    let tree = relation_tree(tbl);
    let TreeRelation {
        name,
        relkind: kind,
        ..
    } = tree.first().cloned().unwrap_or_else(|| {
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
pub(super) fn rows_without_tenant(
    rel: pg_sys::Oid,
    name: &str,
    column: &str,
    column_exists: bool,
) -> i64 {
    let sql = if column_exists {
        format!(
            "SELECT pg_catalog.count(*) FROM {name} WHERE {} IS NULL",
            quote_identifier(column)
        )
    } else {
        format!("SELECT pg_catalog.count(*) FROM {name}")
    };
    as_table_owner(rel, || unfiltered(|| Spi::get_one::<i64>(&sql)))
        .unwrap_or_else(|e| error!("pg_tenant: {e}"))
        .unwrap_or(0)
}

/// protect() makes the tenant column NOT NULL (without shared_rows): rows that have no tenant yet
/// (or no tenant column at all) are refused with how to backfill them, instead of PostgreSQL's
/// bare NOT NULL error.
pub(super) fn refuse_rows_without_tenant(
    rel: pg_sys::Oid,
    name: &str,
    column: &str,
    column_exists: bool,
) {
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

/// Creates the policies on `rel_name`: the restrictive set and `tenant_access`, or in a database
/// with Citus the permissive set.
fn create_policies(rel_name: &str, col: &str, shared_rows: bool, citus: bool) {
    if citus {
        for policy in permissive_policies(col, shared_rows) {
            run(&policy.create_sql(rel_name));
        }
        return;
    }
    for policy in restrictive_policies(col, shared_rows) {
        run(&policy.create_sql(rel_name));
    }
    // Grants every row the restrictive policy lets through. It names tenant.current() (and the
    // planner folds it to true) so that DROP EXTENSION ... CASCADE drops it with the restrictive
    // one: the table is then left with row security and no policy, which shows no row to a role
    // subject to it (fails closed).
    run(&format!(
        "CREATE POLICY {ACCESS_POLICY} ON {rel_name} AS PERMISSIVE FOR ALL TO PUBLIC USING ({ACCESS_QUAL}) WITH CHECK ({ACCESS_QUAL})"
    ));
}

#[pg_extern(
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
        let citus = crate::citus::installed();
        let distributed_by = crate::citus::distribution_column(tbl);
        // Citus copies a table's triggers to its shards when it distributes the table, not a
        // trigger created later: a table distributed first would have no write guard on its
        // shards (attack review: a read-only grant and a suspension did not hold there).
        // (A partition is allowed: one created after its table was distributed is distributed
        // with it and must get the policies; its shards may lack the write guard, see
        // docs/security.md.)
        if citus && crate::citus::is_citus_table(tbl) && !crate::owner::is_partition(tbl) {
            TenantError::AlreadyDistributed {
                table: name.clone(),
            }
            .raise();
        }
        if shared_rows && distributed_by.is_some() {
            TenantError::SharedRowsDistributed {
                table: name.clone(),
            }
            .raise();
        }
        // (Only for the owner: anyone else gets PostgreSQL's "must be owner" from the DDL.)
        let owner = crate::owner::relation_owner(tbl)
            .is_some_and(|o| crate::owner::has_privileges_of(current_role(), o));
        match column_info(tbl, &column) {
            Some(ColumnInfo { not_null: true, .. }) => {}
            info if owner && !shared_rows => {
                refuse_rows_without_tenant(tbl, &name, &column, info.is_some())
            }
            _ => {}
        }
        match column_info(tbl, &column) {
            Some(ColumnInfo { type_name, .. }) if type_name != "uuid" => {
                TenantError::WrongColumnType {
                    table: name.clone(),
                    column: column.clone(),
                    found: type_name,
                }
                .raise()
            }
            Some(ColumnInfo {
                not_null,
                has_default,
                ..
            }) => {
                if !has_default {
                    // Citus refuses to change a distribution column's default; the coordinator
                    // evaluates it (the shards need none).
                    let on_distribution_column = distributed_by.as_deref() == Some(column.as_str());
                    crate::citus::with_ddl_settings(on_distribution_column, || {
                        run(&format!(
                            "ALTER TABLE {name} ALTER COLUMN {col} SET DEFAULT tenant.current()"
                        ))
                    });
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
        for TreeRelation {
            oid: rel,
            name: rel_name,
            ..
        } in &tree
        {
            if !has_index_leading_with(*rel, &column) {
                run(&format!("CREATE INDEX ON {rel_name} ({col})"));
            }
            run(&format!(
                "ALTER TABLE {rel_name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"
            ));
            drop_installed_objects(*rel, rel_name);
            create_policies(rel_name, &col, shared_rows, citus);
            // (A trigger on a Citus table, which Citus copies to its shards, is allowed only when
            // asked for: the guard fires on the workers.)
            crate::citus::with_ddl_settings(false, || {
                let guard = format!(
                    "FOR EACH STATEMENT EXECUTE FUNCTION tenant.guard({})",
                    quote_literal(&column)
                );
                if citus {
                    // Citus copies no trigger with a TRUNCATE event to shards it makes later:
                    // TRUNCATE apart (see TRUNCATE_GUARD_TRIGGER).
                    run(&format!(
                        "CREATE TRIGGER {GUARD_TRIGGER} BEFORE INSERT OR UPDATE OR DELETE ON {rel_name} {guard}"
                    ));
                    run(&format!(
                        "CREATE TRIGGER {TRUNCATE_GUARD_TRIGGER} BEFORE TRUNCATE ON {rel_name} {guard}"
                    ));
                } else {
                    run(&format!(
                        "CREATE TRIGGER {GUARD_TRIGGER} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {rel_name} {guard}"
                    ));
                }
            });
        }
        register(&tree, Some((&column, shared_rows)));
        if shared_rows && owner {
            let shared = rows_without_tenant(tbl, &name, &column, true);
            if shared > 0 {
                notice!("{shared} row(s) of {name} have no tenant: they are shared rows, which every tenant reads");
            }
        }
        let children: Vec<&str> = tree.iter().skip(1).map(|r| r.name.as_str()).collect();
        audit::record(
            "protect",
            None,
            json!({"table": name, "tenant_column": column, "shared_rows": shared_rows, "children": children}),
        );
    })
}

/// The C symbol 0.1.0's and 0.2.0's `tenant.protect(regclass, name)` call (until they are
/// updated).
#[pg_extern(sql = false)]
fn protect(tbl: Option<pg_sys::Oid>, tenant_column: Option<&std::ffi::CStr>) {
    protect_with_shared_rows(tbl, tenant_column, Some(false))
}

#[pg_extern(
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
        // (Citus keeps the guard's copies on the shards it made with the table; unprotecting
        // only the coordinator's table would leave its shards refusing writes.)
        if crate::citus::installed()
            && relation_tree(tbl)
                .iter()
                .any(|r| crate::citus::is_citus_table(r.oid))
        {
            TenantError::UnprotectCitusTable {
                table: name.clone(),
            }
            .raise();
        }
        let col = quote_identifier(&column);
        let tree = relation_tree(tbl);
        register(&tree, None);
        for TreeRelation {
            oid: rel,
            name: rel_name,
            ..
        } in tree
        {
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
