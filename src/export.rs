//! Export and import of one tenant's data: `tenant.export()` / `tenant.import()`, written in
//! PL/pgSQL (sql/export.sql) because they are dynamic SQL over the protected tables. Added in
//! 0.2.0; the upgrade from 0.1.0 is built from the same file (sql/upgrades/).

use pgrx::prelude::*;

extension_sql_file!(
    "../sql/export.sql",
    name = "export_import",
    requires = ["registry_tables", "quota_tables", "protected_tables_view"]
);

/// Runs `query` (one statement returning one jsonb value) on `tbl` as the table's owner inside a
/// security-restricted operation (see owner::as_table_owner), with `$1` = `rows` and `$2` =
/// `target`. tenant.export() and tenant.import() read and write user tables through it, so that
/// a table owner's triggers, defaults, checks, casts and index expressions never run with the
/// rights of the admin who calls them.
#[pg_extern(
    volatile,
    parallel_unsafe,
    sql = r#"
CREATE FUNCTION tenant.as_table_owner(tbl regclass, query text, "rows" jsonb DEFAULT NULL, target uuid DEFAULT NULL)
RETURNS jsonb VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.as_table_owner(regclass, text, jsonb, uuid) IS 'pg_tenant (internal): run one statement on a table as its owner, in a security-restricted operation';
REVOKE EXECUTE ON FUNCTION tenant.as_table_owner(regclass, text, jsonb, uuid) FROM PUBLIC;
"#
)]
fn as_table_owner(
    tbl: Option<pgrx::pg_sys::Oid>,
    query: Option<&str>,
    rows: Option<pgrx::JsonB>,
    target: Option<pgrx::Uuid>,
) -> Option<pgrx::JsonB> {
    crate::error::guarded(|| {
        let tbl = crate::error::required(tbl, "tbl");
        let query = crate::error::required(query, "query");
        crate::owner::as_table_owner(tbl, || {
            Spi::get_one_with_args::<pgrx::JsonB>(query, &[rows.into(), target.into()])
        })
        .unwrap_or_else(|e| error!("pg_tenant: {e}"))
    })
}
