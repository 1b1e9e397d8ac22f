//! Deleting a dropped tenant's rows from every protected table, in foreign-key order.

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::quote_identifier;
use serde_json::{json, Map, Value};

use crate::owner::{as_extension_owner, as_table_owner, run_with_args};

use super::policies::MAINTENANCE;

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
pub(super) fn delete_order<T: Clone>(
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
