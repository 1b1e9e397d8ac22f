//! Export and import of one tenant's data: `tenant.export()` / `tenant.import()`, written in
//! PL/pgSQL (sql/export.sql) because they walk the protected tables. Added in 0.2.0; the upgrade
//! from 0.1.0 is built from the same file (sql/upgrades/).
//!
//! They read and write user tables only through `tenant.table_data()`, which runs one of a fixed
//! set of statements, built here, on a protected table or a table of a tenant schema, as that
//! table's owner inside a security-restricted operation: a table owner's triggers, defaults,
//! checks, casts and index expressions never run with the rights of the admin who calls them,
//! and whoever may execute it can do no more than read a tenant's rows (what export() gives) and,
//! as a superuser, load rows (what import() does).

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::quote_identifier;

use crate::error::{guarded, required, TenantError};
use crate::exemption::unfiltered;
use crate::owner::{as_extension_owner, as_table_owner, read_one};

extension_sql_file!(
    "../sql/export.sql",
    name = "export_import",
    requires = [
        "registry_tables",
        "quota_tables",
        "protected_tables_view",
        table_data
    ]
);

/// What tenant.table_data() may do.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Operation {
    /// A protected table's rows of the target tenant, without the tenant column.
    TenantRows,
    /// How many rows of a protected table the target tenant has.
    TenantCount,
    /// Rows per tenant of a protected table: {"<tenant id>": count}.
    Counts,
    /// Every row of a tenant schema's table (without the tenant column if it is protected).
    AllRows,
    /// How many rows a tenant schema's table has.
    AllCount,
    /// Where a tenant schema's sequence stands: {"last_value", "is_called"}.
    Sequence,
    /// Inserts `rows` (a JSON array of exported rows), the tenant column set to the target
    /// tenant; superusers only (tenant.import()).
    Insert,
}

const OPERATIONS: &[(&str, Operation)] = &[
    ("tenant_rows", Operation::TenantRows),
    ("tenant_count", Operation::TenantCount),
    ("counts", Operation::Counts),
    ("all_rows", Operation::AllRows),
    ("all_count", Operation::AllCount),
    ("sequence", Operation::Sequence),
    ("insert", Operation::Insert),
];

/// A relation tenant.table_data() may act on, as pg_tenant's own catalogs describe it.
struct Target {
    name: String,
    kind: u8,
    /// The tenant column, when the relation is a protected table.
    tenant_column: Option<String>,
    /// Whether the relation lives in a tenant's own schema.
    in_tenant_schema: bool,
}

fn describe(rel: pg_sys::Oid) -> Option<Target> {
    let (schema, name, kind) = unsafe {
        let tuple_name = pg_sys::get_rel_name(rel);
        if tuple_name.is_null() {
            return None;
        }
        let ns = pg_sys::get_rel_namespace(rel);
        let schema = std::ffi::CStr::from_ptr(pg_sys::get_namespace_name(ns))
            .to_string_lossy()
            .into_owned();
        let name = std::ffi::CStr::from_ptr(tuple_name)
            .to_string_lossy()
            .into_owned();
        (schema, name, pg_sys::get_rel_relkind(rel) as u8)
    };
    let (tenant_column, in_tenant_schema) = as_extension_owner(|| {
        let column = read_one::<String>(
            crate::owner::data_sql(
                "SELECT tenant_column::pg_catalog.text FROM tenant_data.protected_tables
              WHERE table_name::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
            ),
            &[rel.into()],
        );
        let own = read_one::<bool>(
            crate::owner::data_sql("SELECT EXISTS (SELECT 1 FROM tenant_data.tenants WHERE schema_name OPERATOR(pg_catalog.=) $1)"),
            &[schema.as_str().into()],
        );
        (column, own.unwrap_or(false))
    });
    Some(Target {
        name: format!("{}.{}", quote_identifier(&schema), quote_identifier(&name)),
        kind,
        tenant_column,
        in_tenant_schema,
    })
}

/// The statement for `op` on `t`; `$1` is the rows (Insert), `$2` the target tenant.
fn statement(op: Operation, t: &Target, rel: pg_sys::Oid) -> String {
    let name = &t.name;
    let only = if t.kind == pg_sys::RELKIND_PARTITIONED_TABLE {
        ""
    } else {
        "ONLY"
    };
    let column = t.tenant_column.as_deref().map(quote_identifier);
    let without_column = t
        .tenant_column
        .as_deref()
        .map(|c| {
            format!(
                " OPERATOR(pg_catalog.-) {}::pg_catalog.text",
                pgrx::spi::quote_literal(c)
            )
        })
        .unwrap_or_default();
    let col = column.clone().unwrap_or_default();
    match op {
        Operation::TenantRows => format!(
            "SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(x){without_column} ORDER BY x::pg_catalog.text), '[]')::pg_catalog.text
               FROM {name} x WHERE x.{col} OPERATOR(pg_catalog.=) $2"
        ),
        Operation::TenantCount => format!(
            "SELECT pg_catalog.to_jsonb(pg_catalog.count(*))::pg_catalog.text FROM {name} WHERE {col} OPERATOR(pg_catalog.=) $2"
        ),
        Operation::Counts => format!(
            "SELECT COALESCE(pg_catalog.jsonb_object_agg(t, n), '{{}}')::pg_catalog.text
               FROM (SELECT {col} AS t, pg_catalog.count(*) AS n FROM {name} WHERE {col} IS NOT NULL GROUP BY 1) s"
        ),
        Operation::AllRows => format!(
            "SELECT COALESCE(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(x){without_column} ORDER BY x::pg_catalog.text), '[]')::pg_catalog.text
               FROM {only} {name} x"
        ),
        Operation::AllCount => {
            format!("SELECT pg_catalog.to_jsonb(pg_catalog.count(*))::pg_catalog.text FROM {only} {name}")
        }
        Operation::Sequence => format!(
            "SELECT pg_catalog.jsonb_build_object('last_value', last_value, 'is_called', is_called)::pg_catalog.text FROM {name}"
        ),
        Operation::Insert => {
            let cols = insert_columns(rel).join(", ");
            let rows = match &column {
                // The tenant column of every row is the target tenant, whatever the document says.
                Some(_) => format!(
                    "(SELECT pg_catalog.jsonb_agg(e OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object({}::pg_catalog.text, $2))
                        FROM pg_catalog.jsonb_array_elements($1) e)",
                    pgrx::spi::quote_literal(t.tenant_column.as_deref().unwrap_or_default())
                ),
                None => "$1".into(),
            };
            format!(
                "WITH i AS (INSERT INTO {name} ({cols}) OVERRIDING SYSTEM VALUE
                            SELECT {cols} FROM pg_catalog.jsonb_populate_recordset(NULL::{name}, {rows}) RETURNING 1)
                 SELECT pg_catalog.to_jsonb(pg_catalog.count(*))::pg_catalog.text FROM i"
            )
        }
    }
}

/// The columns an import writes: every live column but generated ones, in order.
fn insert_columns(rel: pg_sys::Oid) -> Vec<String> {
    read_one::<Vec<String>>(
        "SELECT pg_catalog.array_agg(attname::pg_catalog.text ORDER BY attnum) FROM pg_catalog.pg_attribute
          WHERE attrelid OPERATOR(pg_catalog.=) $1 AND attnum OPERATOR(pg_catalog.>) 0
            AND NOT attisdropped AND attgenerated OPERATOR(pg_catalog.=) ''",
        &[rel.into()],
    )
    .unwrap_or_default()
    .iter()
    .map(|c| quote_identifier(c.as_str()))
    .collect()
}

/// Where a statement of tenant.table_data() on a protected Citus table finds its rows.
enum RowsOn {
    /// Not a Citus table (or no Citus): the table itself, on this node.
    ThisTable,
    /// A table hash-distributed by Citus: its shards on the workers, where this statement's
    /// exemption does not reach. Citus sends them the statement on the table owner's
    /// connections, with a node token for that owner (node_context::for_one_statement): for a
    /// read, naming the target tenant, so that each worker's own row security selects exactly
    /// its rows; for an import (`maintenance`), the token tenant.drop() passes, which sets FORCE
    /// ROW LEVEL SECURITY aside for the owner there as the exemption does here, and under which
    /// the owner's code (triggers on the shards) acts as no tenant, as it does here.
    Workers { maintenance: bool },
    /// A reference table (or Citus local table) read through this node's placement of it, a
    /// copy of every row, as a local table (Citus would read it on the coordinator itself,
    /// where no node token counts).
    Placement(Target),
}

/// How `op` reaches the rows of protected table `rel` (`t`) on Citus. An import into a table
/// that is not hash-distributed is refused (0A000): Citus writes its placement on the
/// coordinator too. (Counts per tenant and tenant-schema tables keep the table itself: no node
/// context names every tenant, and schema tenants are not distributed.)
fn on_citus(op: Operation, rel: pg_sys::Oid, t: &Target) -> RowsOn {
    let reads = matches!(op, Operation::TenantRows | Operation::TenantCount);
    if !reads && op != Operation::Insert {
        return RowsOn::ThisTable;
    }
    match crate::citus::partition_method(rel).as_deref() {
        None => RowsOn::ThisTable,
        Some("h") => {
            if reads {
                refuse_user_casts(rel, &t.name);
            }
            RowsOn::Workers {
                maintenance: op == Operation::Insert,
            }
        }
        Some(_) if reads => match crate::citus::local_placement(rel).and_then(describe) {
            Some(placement) => RowsOn::Placement(Target {
                tenant_column: t.tenant_column.clone(),
                ..placement
            }),
            None => RowsOn::ThisTable,
        },
        Some(_) => TenantError::ImportIntoCitusTable(t.name.clone()).raise(),
    }
}

/// An export reads a distributed table's rows on the workers as the tenant, where
/// `to_jsonb()` runs the cast to `json` or `jsonb` of a column's type (of an element, a domain's
/// base type or a composite's attribute) when the type has one made with a function: that
/// function (a role's code, not PostgreSQL's) would run with the tenant's context there, where
/// on one node it runs as no tenant. Refused (0A000) when there is one. (Output functions, which
/// `x::text` runs, are C functions only superusers create.)
fn refuse_user_casts(rel: pg_sys::Oid, table: &str) {
    let cast = read_one::<String>(
        "WITH RECURSIVE types(t) AS (
             SELECT atttypid FROM pg_catalog.pg_attribute
              WHERE attrelid OPERATOR(pg_catalog.=) $1 AND attnum OPERATOR(pg_catalog.>) 0 AND NOT attisdropped
             UNION
             SELECT u.x FROM types JOIN pg_catalog.pg_type y ON y.oid OPERATOR(pg_catalog.=) types.t
              CROSS JOIN LATERAL (SELECT y.typelem UNION ALL SELECT y.typbasetype
                                  UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a
                                   WHERE a.attrelid OPERATOR(pg_catalog.=) y.typrelid AND a.attnum OPERATOR(pg_catalog.>) 0
                                     AND NOT a.attisdropped) u(x)
              WHERE u.x OPERATOR(pg_catalog.<>) 0)
         SELECT pg_catalog.format('the cast from %s to %s', c.castsource::pg_catalog.regtype, c.casttarget::pg_catalog.regtype)
           FROM pg_catalog.pg_cast c JOIN types ON c.castsource OPERATOR(pg_catalog.=) types.t
          WHERE c.casttarget OPERATOR(pg_catalog.=) ANY ('{json,jsonb}'::pg_catalog.regtype[]::pg_catalog.oid[])
            AND c.castfunc OPERATOR(pg_catalog.>=) 16384
          LIMIT 1",
        &[rel.into()],
    );
    if let Some(cast) = cast {
        TenantError::ExportWithUserCast {
            table: table.to_string(),
            cast,
        }
        .raise();
    }
}

/// A tenant's rows in protected table `rel`, counted as tenant.import() counts them before it
/// loads any (`table_data(rel, 'tenant_count', tenant)`: on Citus, on the workers, as the table's
/// owner with a node token naming the tenant).
pub fn tenant_row_count(rel: pg_sys::Oid, tenant: pgrx::Uuid) -> i64 {
    table_data(Some(rel), Some("tenant_count"), Some(tenant), None)
        .and_then(|n| n.text().parse::<i64>().ok())
        .unwrap_or_else(|| error!("pg_tenant: could not count the rows of a tenant"))
}

#[pg_extern(
    sql = r#"
CREATE FUNCTION tenant.table_data(tbl regclass, operation text, target uuid DEFAULT NULL, "rows" jsonb DEFAULT NULL)
RETURNS jsonb VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.table_data(regclass, text, uuid, jsonb) IS 'pg_tenant (internal): read a tenant''s rows of a protected or tenant-schema table, or load rows into one (superusers), as the table''s owner in a security-restricted operation';
REVOKE EXECUTE ON FUNCTION tenant.table_data(regclass, text, uuid, jsonb) FROM PUBLIC;
"#,
    name = "table_data"
)]
fn table_data(
    tbl: Option<pg_sys::Oid>,
    operation: Option<&str>,
    target: Option<pgrx::Uuid>,
    rows: Option<crate::args::JsonbDatum>,
) -> Option<crate::args::JsonbDatum> {
    guarded(|| {
        let rel = required(tbl, "tbl");
        let op_name = required(operation, "operation");
        let Some(op) = OPERATIONS
            .iter()
            .find(|(n, _)| *n == op_name)
            .map(|(_, op)| *op)
        else {
            TenantError::invalid(
                "operation",
                "must be one of tenant_rows, tenant_count, counts, all_rows, all_count, sequence, insert",
            )
            .raise()
        };
        let t = describe(rel).unwrap_or_else(|| {
            TenantError::invalid("tbl", format!("relation {} does not exist", rel.to_u32())).raise()
        });
        let sequence = t.kind == pg_sys::RELKIND_SEQUENCE;
        let allowed = match op {
            Operation::TenantRows | Operation::TenantCount | Operation::Counts => {
                t.tenant_column.is_some()
            }
            Operation::AllRows | Operation::AllCount => t.in_tenant_schema && !sequence,
            Operation::Sequence => t.in_tenant_schema && sequence,
            Operation::Insert => t.tenant_column.is_some() || t.in_tenant_schema && !sequence,
        };
        if !allowed {
            TenantError::invalid(
                "tbl",
                format!(
                    "{} is not a {} (operation {op_name})",
                    t.name,
                    match op {
                        Operation::TenantRows | Operation::TenantCount | Operation::Counts =>
                            "protected table",
                        Operation::Sequence => "sequence of a tenant schema",
                        Operation::AllRows | Operation::AllCount => "table of a tenant schema",
                        Operation::Insert => "protected table or a table of a tenant schema",
                    }
                ),
            )
            .raise();
        }
        let needs_target = matches!(op, Operation::TenantRows | Operation::TenantCount)
            || op == Operation::Insert && t.tenant_column.is_some();
        if needs_target && target.is_none() {
            TenantError::NullArgument("target").raise();
        }
        if op == Operation::Insert {
            if !crate::owner::is_superuser(crate::owner::current_role()) {
                TenantError::NotSuperuser("tenant.table_data(..., 'insert')").raise();
            }
            if rows.is_none() {
                TenantError::NullArgument("rows").raise();
            }
        }
        // Nothing to load (an export's empty table): no statement, whatever the table is.
        if op == Operation::Insert && rows.as_ref().is_some_and(|r| r.text() == "[]") {
            return Some(crate::args::JsonbDatum::from_text("0"));
        }
        // On Citus, a protected table's rows are on the workers (a hash-distributed table's) or
        // on every node (a reference table's): see [`on_citus`].
        let citus = if t.tenant_column.is_some() {
            as_extension_owner(|| on_citus(op, rel, &t))
        } else {
            RowsOn::ThisTable
        };
        let (sql, on_workers) = match &citus {
            RowsOn::ThisTable => (statement(op, &t, rel), None),
            RowsOn::Workers { maintenance } => (statement(op, &t, rel), Some(*maintenance)),
            RowsOn::Placement(placement) => (statement(op, placement, rel), None),
        };
        as_table_owner(rel, || {
            let run = || {
                Spi::connect_mut(|client| {
                    unfiltered(|| client.update(&sql, Some(1), &[rows.into(), target.into()]))?
                        .first()
                        .get_one::<String>()
                })
            };
            match (on_workers, target) {
                (Some(maintenance), Some(tenant)) => {
                    crate::node_context::for_one_statement(tenant, maintenance, run)
                }
                _ => run(),
            }
        })
        .unwrap_or_else(|e| error!("pg_tenant: {e}"))
        // (As text, made jsonb again here: serde_json would round its numbers to doubles.)
        .map(|text| crate::args::JsonbDatum::from_text(&text))
    })
}
