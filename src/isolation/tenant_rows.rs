//! Deleting a dropped tenant's rows from every protected table, in foreign-key order.

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::quote_identifier;
use serde_json::{json, Map, Value};

use crate::error::TenantError;
use crate::exemption::unfiltered;
use crate::owner::{as_extension_owner, as_table_owner, relation_name, run_with_args};

use super::policies::MAINTENANCE;

/// A protected table whose rows a dropped tenant leaves behind.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TenantTable {
    pub rel: pg_sys::Oid,
    /// Its qualified, quoted name.
    pub name: String,
    pub tenant_column: String,
    /// In a schema tenant's schema: its rows belong to that tenant (the schema goes with it), so
    /// another tenant's drop deletes none there, it only checks that it has none there.
    pub in_tenant_schema: bool,
}

/// A foreign key, from the referencing table to the referenced one (partition roots).
#[derive(Debug, Clone, Copy)]
pub(super) struct ForeignKey {
    pub from: pg_sys::Oid,
    pub to: pg_sys::Oid,
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
    // Top-level protected tables: a partition's rows go with its parent's.
    let tables: Vec<TenantTable> = protected_tables()
        .into_iter()
        .filter(|(_, top)| *top)
        .map(|(t, _)| t)
        .collect();
    let keys = as_extension_owner(|| {
        Spi::connect(|client| {
            let mut keys: Vec<ForeignKey> = Vec::new();
            for row in client.select(
                "SELECT DISTINCT COALESCE(pg_catalog.pg_partition_root(conrelid), conrelid)::pg_catalog.oid,
                                 COALESCE(pg_catalog.pg_partition_root(confrelid), confrelid)::pg_catalog.oid
                   FROM pg_catalog.pg_constraint WHERE contype OPERATOR(pg_catalog.=) 'f'",
                None,
                &[],
            )? {
                keys.push(ForeignKey {
                    from: row.get(1)?.expect("oid"),
                    to: row.get(2)?.expect("oid"),
                });
            }
            Ok::<_, pgrx::spi::Error>(keys)
        })
        .unwrap_or_else(|e| error!("pg_tenant: {e}"))
    });

    // Writers of the tenant still under way would commit rows after the deletes' snapshot:
    // wait for them, and keep new ones out until the drop commits (they then find no tenant).
    for table in tables.iter().filter(|t| !t.in_tenant_schema) {
        as_table_owner(table.rel, || {
            run_with_args(
                &format!(
                    "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
                    relation_name(table.rel)
                ),
                &[],
            )
        });
    }
    let mut deleted = Map::new();
    let ordered = delete_order(tables, &keys);
    for table in ordered.iter().filter(|t| !t.in_tenant_schema) {
        let count = as_table_owner(table.rel, || {
            // On Citus: the owner's connections to the workers act as the tenant (node token).
            crate::node_context::pass_to_workers_for_maintenance(tenant);
            // Every row of the tenant, FORCE notwithstanding; the owner's triggers run with row
            // security as usual (see exemption::unfiltered).
            Spi::connect_mut(|client| {
                unfiltered(|| {
                    client.update(
                        &format!(
                            "DELETE FROM {} WHERE {} OPERATOR(pg_catalog.=) $1",
                            relation_name(table.rel),
                            quote_identifier(&table.tenant_column)
                        ),
                        None,
                        &[tenant.into()],
                    )
                })
                .map(|t| t.len())
            })
        })
        .unwrap_or_else(|e| error!("pg_tenant: {e}"));
        deleted.insert(table.name.clone(), json!(count));
    }
    // A rule (DO INSTEAD) or a BEFORE trigger returning NULL can keep rows from a delete: an
    // erasure that left rows behind is no erasure. Counted when every delete is done (a trigger
    // on a later table could write rows back into an earlier one), in every protected relation
    // and every table that inherits from one, listed again now (the owner's code could have
    // detached a partition; a partition created after protect() was never registered; a table
    // under two protected parents, by each parent's tenant column). Heap tables are read last,
    // straight from their heaps: planning a count would run the owner's code (a function folded
    // from an index expression), which could write a row back into a table counted before it.
    // Other tables (Citus tables, other access methods) are counted with SQL, first.
    refuse_unlisted_tables();
    let citus = crate::citus::installed();
    let mut all: Vec<(TenantTable, bool)> = Vec::new();
    for (t, top) in protected_tables() {
        let tree = as_extension_owner(|| super::policies::relation_tree(t.rel));
        for member in tree {
            if all
                .iter()
                .any(|(a, _)| a.rel == member.oid && a.tenant_column == t.tenant_column)
            {
                continue;
            }
            let is_root = member.oid == t.rel;
            all.push((
                TenantTable {
                    rel: member.oid,
                    name: member.name,
                    tenant_column: t.tenant_column.clone(),
                    in_tenant_schema: t.in_tenant_schema,
                },
                top && is_root,
            ));
        }
    }
    // (table, whether at the top, whether a Citus table, whether a heap table to read)
    let mut checks: Vec<(&TenantTable, bool, bool, bool)> = all
        .iter()
        .map(|(t, top)| {
            let on_workers = citus && citus_table(t.rel);
            (t, *top, on_workers, !on_workers && heap_of(t).is_some())
        })
        .collect();
    checks.sort_by_key(|&(_, _, _, heap)| heap);
    for (table, top, on_workers, heap) in checks {
        // (The heap is looked at again: the owner's code run by the SQL counts before could
        // have changed the table.)
        let left = match heap.then(|| heap_of(table)).flatten() {
            Some(Heap::NoRows) => 0,
            Some(Heap::Column(attnum)) => rows_in_heap(table.rel, attnum, tenant),
            // (A Citus table's partitions are counted through their parent.)
            None if on_workers && !top => 0,
            None => count_left(table, tenant, !on_workers),
        };
        if left > 0 {
            TenantError::RowsKeptByDrop {
                table: relation_name(table.rel),
                rows: left,
                in_tenant_schema: table.in_tenant_schema,
            }
            .raise();
        }
    }
    Value::Object(deleted)
}

/// Orders tables so that a table referencing another (by foreign key) comes first. Cycles are
/// broken in name order; a cycle of non-cascading keys then fails with PostgreSQL's own error.
pub(super) fn delete_order(mut tables: Vec<TenantTable>, keys: &[ForeignKey]) -> Vec<TenantTable> {
    let mut ordered = Vec::with_capacity(tables.len());
    while !tables.is_empty() {
        let pending: Vec<pg_sys::Oid> = tables.iter().map(|t| t.rel).collect();
        let referenced_by_pending = |rel: pg_sys::Oid| {
            keys.iter()
                .any(|k| k.to == rel && k.from != rel && pending.contains(&k.from))
        };
        let next = tables
            .iter()
            .position(|t| !referenced_by_pending(t.rel))
            .unwrap_or(0);
        ordered.push(tables.remove(next));
    }
    ordered
}

#[cfg(test)]
mod unit {
    use super::{delete_order, ForeignKey, TenantTable};
    use pgrx::pg_sys::Oid;

    fn table(rel: u32, name: &str) -> TenantTable {
        TenantTable {
            rel: Oid::from(rel),
            name: name.into(),
            tenant_column: "tenant_id".into(),
            in_tenant_schema: false,
        }
    }
    fn key(from: u32, to: u32) -> ForeignKey {
        ForeignKey {
            from: Oid::from(from),
            to: Oid::from(to),
        }
    }
    fn names(v: Vec<TenantTable>) -> Vec<String> {
        v.into_iter().map(|t| t.name).collect()
    }

    #[test]
    fn referencing_tables_are_deleted_first() {
        let tables = vec![table(1, "customers"), table(2, "orders"), table(3, "lines")];
        // orders -> customers, lines -> orders, and a self reference on customers.
        let keys = [key(2, 1), key(3, 2), key(1, 1)];
        assert_eq!(
            names(delete_order(tables, &keys)),
            ["lines", "orders", "customers"]
        );
    }

    #[test]
    fn a_cycle_still_yields_every_table_once() {
        let tables = vec![table(1, "a"), table(2, "b")];
        let mut out = names(delete_order(tables, &[key(1, 2), key(2, 1)]));
        out.sort();
        assert_eq!(out, ["a", "b"]);
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pg_schema]
mod tests {
    use pgrx::prelude::*;

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

/// The tenant's rows left in `table` (its own only, with `only`), counted with SQL as its
/// owner (FORCE set aside for the count; on Citus, on the workers).
fn count_left(table: &TenantTable, tenant: pgrx::Uuid, only: bool) -> i64 {
    as_table_owner(table.rel, || {
        crate::node_context::pass_to_workers_for_maintenance(tenant);
        unfiltered(|| {
            Spi::get_one_with_args::<i64>(
                &format!(
                    "SELECT pg_catalog.count(*) FROM {}{} WHERE {} OPERATOR(pg_catalog.=) $1",
                    if only { "ONLY " } else { "" },
                    relation_name(table.rel),
                    quote_identifier(&table.tenant_column)
                ),
                &[tenant.into()],
            )
        })
    })
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
    .unwrap_or(0)
}

/// Whether `rel` is in Citus's metadata (a distributed or reference table, whose rows are on
/// the workers).
fn citus_table(rel: pg_sys::Oid) -> bool {
    as_extension_owner(|| {
        crate::owner::read_one::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition WHERE logicalrelid OPERATOR(pg_catalog.=) $1)",
            &[rel.into()],
        )
    })
    .unwrap_or(false)
}

/// How drop() reads a table's rows straight from its heap.
enum Heap {
    /// A partitioned table: no rows of its own.
    NoRows,
    /// A heap table whose tenant column (a uuid) has this attribute number.
    Column(i16),
}

/// `table` as a heap to read, when it is a heap table whose tenant column is a uuid, or a
/// partitioned table; None otherwise (counted with SQL).
fn heap_of(table: &TenantTable) -> Option<Heap> {
    let column = std::ffi::CString::new(table.tenant_column.as_str()).ok()?;
    unsafe {
        let kind = pg_sys::get_rel_relkind(table.rel) as u8;
        if kind == pg_sys::RELKIND_PARTITIONED_TABLE {
            return Some(Heap::NoRows);
        }
        if kind != pg_sys::RELKIND_RELATION {
            return None;
        }
        let attnum = pg_sys::get_attnum(table.rel, column.as_ptr());
        let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        let relation = pg_sys::table_open(table.rel, lock);
        let heap = (*(*relation).rd_rel).relam == pg_sys::HEAP_TABLE_AM_OID;
        pg_sys::table_close(relation, lock);
        if !heap || attnum <= 0 || pg_sys::get_atttype(table.rel, attnum) != pg_sys::UUIDOID {
            return None;
        }
        Some(Heap::Column(attnum))
    }
}

/// A relation protect() registered that tenant_data.protected_tables no longer lists (its tenant
/// column renamed, dropped or of another type now): drop() cannot check it, and fails (55000).
/// (A database not updated to 0.3.0 has no register to read.)
fn refuse_unlisted_tables() {
    if crate::owner::tables_in_old_schema() {
        return;
    }
    let unlisted = as_extension_owner(|| {
        Spi::connect(|client| {
            let rows = client.select(
                "SELECT r.relid::pg_catalog.text, r.tenant_column::pg_catalog.text
                   FROM tenant_data.protected_relations r
                   JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.relid::pg_catalog.oid
                  WHERE c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog.\"char\"[])
                    AND c.relpersistence OPERATOR(pg_catalog.<>) 't'
                    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                                     WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attname OPERATOR(pg_catalog.=) r.tenant_column
                                       AND a.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.uuid'::pg_catalog.regtype AND NOT a.attisdropped)
                  ORDER BY 1 LIMIT 1",
                None,
                &[],
            )?;
            Ok::<_, pgrx::spi::Error>(match rows.into_iter().next() {
                Some(row) => Some((
                    row.get::<String>(1)?.unwrap_or_default(),
                    row.get::<String>(2)?.unwrap_or_default(),
                )),
                None => None,
            })
        })
        .unwrap_or_else(|e| error!("pg_tenant: {e}"))
    });
    if let Some((table, column)) = unlisted {
        TenantError::UncheckableTable { table, column }.raise();
    }
}

/// Every protected relation (partitions and inheritance children included), and whether it is
/// at the top (no protected parent).
fn protected_tables() -> Vec<(TenantTable, bool)> {
    as_extension_owner(|| {
        Spi::connect(|client| {
            let mut tables = Vec::new();
            for row in client.select(
                crate::owner::data_sql("SELECT p.table_name::pg_catalog.oid, p.table_name::pg_catalog.text, p.tenant_column::pg_catalog.text,
                        EXISTS (SELECT 1 FROM tenant_data.tenants t WHERE t.schema_name OPERATOR(pg_catalog.=) n.nspname),
                        (p.parent IS NULL OR NOT EXISTS (SELECT 1 FROM tenant_data.protected_tables q
                                                          WHERE q.table_name::pg_catalog.oid OPERATOR(pg_catalog.=) p.parent::pg_catalog.oid))
                   FROM tenant_data.protected_tables p
                   JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.table_name::pg_catalog.oid
                   JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
                  ORDER BY 2"),
                None,
                &[],
            )? {
                tables.push((
                    TenantTable {
                        rel: row.get(1)?.expect("oid"),
                        name: row.get(2)?.expect("name"),
                        tenant_column: row.get(3)?.expect("column"),
                        in_tenant_schema: row.get(4)?.unwrap_or(false),
                    },
                    row.get(5)?.unwrap_or(true),
                ));
            }
            Ok::<_, pgrx::spi::Error>(tables)
        })
        .unwrap_or_else(|e| error!("pg_tenant: {e}"))
    })
}

/// The tenant's rows in heap table `rel` (its tenant column is attribute `attnum`), read from
/// its heap with the latest snapshot: no statement is planned or run, so no code of the table
/// owner's runs meanwhile.
fn rows_in_heap(rel: pg_sys::Oid, attnum: i16, tenant: pgrx::Uuid) -> i64 {
    let wanted = *tenant.as_bytes();
    let mut rows = 0;
    unsafe {
        let lock = pg_sys::AccessShareLock as pg_sys::LOCKMODE;
        let relation = pg_sys::table_open(rel, lock);
        let snapshot = pg_sys::RegisterSnapshot(pg_sys::GetLatestSnapshot());
        let scan = pg_sys::heap_beginscan(
            relation,
            snapshot,
            0,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            pg_sys::ScanOptions::SO_TYPE_SEQSCAN
                | pg_sys::ScanOptions::SO_ALLOW_STRAT
                | pg_sys::ScanOptions::SO_ALLOW_SYNC
                | pg_sys::ScanOptions::SO_ALLOW_PAGEMODE,
        );
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            let mut null = false;
            let value = pg_sys::heap_getattr(tuple, attnum as i32, (*relation).rd_att, &mut null);
            if !null && std::slice::from_raw_parts(value.cast_mut_ptr::<u8>(), 16) == wanted {
                rows += 1;
            }
        }
        pg_sys::heap_endscan(scan);
        pg_sys::UnregisterSnapshot(snapshot);
        pg_sys::table_close(relation, lock);
    }
    rows
}
