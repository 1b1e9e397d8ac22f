//! Row-level isolation: what `tenant.protect()` installs (protect.rs), the per-statement write
//! guard, and the catalog of protected relations.
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
//!   writes for a suspended or unknown tenant, writes with no tenant, and TRUNCATE (in a database
//!   with Citus, TRUNCATE apart: `tenant_guard_truncate`).

use std::cell::Cell;

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::error::{guarded, TenantError};
use crate::owner::{as_extension_owner, bypasses_rls, current_role, run_with_args};
use crate::registry;
use crate::types::TreeRelation;

extension_sql_file!(
    "../../sql/policies.sql",
    name = "protected_tables_view",
    requires = ["registry_tables", guard]
);

pub const ISOLATION_POLICY: &str = "tenant_isolation";
pub const ACCESS_POLICY: &str = "tenant_access";
/// With shared_rows: UPDATE and DELETE stay on the tenant's own rows.
pub const SHARED_UPDATE_POLICY: &str = "tenant_shared_update";
pub const SHARED_DELETE_POLICY: &str = "tenant_shared_delete";
/// In a database with Citus, with shared_rows: INSERT stays on the tenant's own rows.
pub const SHARED_INSERT_POLICY: &str = "tenant_shared_insert";
pub const GUARD_TRIGGER: &str = "tenant_guard";
/// In a database with Citus, the write guard's TRUNCATE part, apart: Citus copies no trigger
/// with a TRUNCATE event to a table's shards when it creates them after the trigger (a partition
/// created after its table was distributed, a table it makes a Citus local table), and
/// `tenant_guard` (INSERT/UPDATE/DELETE there) must reach them.
pub const TRUNCATE_GUARD_TRIGGER: &str = "tenant_guard_truncate";
/// The permissive policy's expression: always true, yet dependent on the extension.
pub const ACCESS_QUAL: &str = "tenant.\"current\"(true) IS NULL OR true";

/// One policy protect() creates.
pub(super) struct Policy {
    name: &'static str,
    restrictive: bool,
    command: &'static str,
    using: Option<String>,
    check: Option<String>,
}

impl Policy {
    fn new(
        name: &'static str,
        command: &'static str,
        using: Option<String>,
        check: Option<String>,
    ) -> Self {
        Policy {
            name,
            restrictive: false,
            command,
            using,
            check,
        }
    }

    fn restrictive(self) -> Self {
        Policy {
            restrictive: true,
            ..self
        }
    }

    pub(super) fn create_sql(&self, rel_name: &str) -> String {
        format!(
            "CREATE POLICY {} ON {rel_name} AS {} FOR {} TO PUBLIC{}{}",
            self.name,
            if self.restrictive {
                "RESTRICTIVE"
            } else {
                "PERMISSIVE"
            },
            self.command,
            self.using
                .as_ref()
                .map(|u| format!(" USING ({u})"))
                .unwrap_or_default(),
            self.check
                .as_ref()
                .map(|c| format!(" WITH CHECK ({c})"))
                .unwrap_or_default(),
        )
    }
}

/// The restrictive policies of a protected relation.
/// `tenant_column = tenant.current()` stays a plain comparison (an index condition); with shared
/// rows the reads add `OR tenant_column IS NULL` (a second index condition: a BitmapOr). With no
/// tenant set, tenant.current() raises for the first row either way: shared rows too fail closed.
pub(super) fn restrictive_policies(col: &str, shared_rows: bool) -> Vec<Policy> {
    let own = own_rows(col);
    let mut policies = vec![Policy::new(
        ISOLATION_POLICY,
        "ALL",
        Some(if shared_rows {
            format!("{own} OR {col} IS NULL")
        } else {
            own.clone()
        }),
        Some(own),
    )];
    if shared_rows {
        policies.extend(shared_row_writes(col));
    }
    policies.into_iter().map(Policy::restrictive).collect()
}

/// `tenant_column = tenant.current()`, qualified.
fn own_rows(col: &str) -> String {
    format!("{col} OPERATOR(pg_catalog.=) tenant.current()")
}

/// With shared rows: a tenant updates and deletes its own rows only (shared rows stay read-only).
fn shared_row_writes(col: &str) -> [Policy; 2] {
    let own = own_rows(col);
    [
        Policy::new(
            SHARED_UPDATE_POLICY,
            "UPDATE",
            Some(own.clone()),
            Some(own.clone()),
        ),
        Policy::new(SHARED_DELETE_POLICY, "DELETE", Some(own), None),
    ]
}

/// The policies protect() installs in a database with Citus: permissive only, each of which
/// means the same alone, because Citus copies every policy to the shards as PERMISSIVE (a
/// RESTRICTIVE `tenant_isolation` beside the permissive `tenant_access` would admit every row
/// there). One policy per command; a command no policy allows is refused by row security.
/// With shared rows, PostgreSQL also applies the SELECT policy to the rows an UPDATE or DELETE
/// reads, so the shared rows stay read-only for tenants.
pub(super) fn permissive_policies(col: &str, shared_rows: bool) -> Vec<Policy> {
    let own = own_rows(col);
    if !shared_rows {
        return vec![Policy::new(
            ISOLATION_POLICY,
            "ALL",
            Some(own.clone()),
            Some(own),
        )];
    }
    let mut policies = vec![
        Policy::new(
            ISOLATION_POLICY,
            "SELECT",
            Some(format!("{own} OR {col} IS NULL")),
            None,
        ),
        Policy::new(SHARED_INSERT_POLICY, "INSERT", None, Some(own)),
    ];
    policies.extend(shared_row_writes(col));
    policies
}

thread_local! {
    /// Set while tenant.drop() deletes a tenant's rows: the guard lets those deletes through.
    pub(super) static MAINTENANCE: Cell<bool> = const { Cell::new(false) };
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
        if MAINTENANCE.with(|m| m.get()) || crate::node_context::acting_for_drop() {
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
pub fn relation_tree(root: pg_sys::Oid) -> Vec<TreeRelation> {
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
            out.push(TreeRelation {
                oid: row.get::<pg_sys::Oid>(1)?.expect("oid"),
                name: row.get::<String>(2)?.expect("name"),
                relkind: row.get::<String>(3)?.expect("relkind"),
            });
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
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
pub(super) fn register(tree: &[TreeRelation], column: Option<(&str, bool)>) {
    let rels: Vec<pg_sys::Oid> = tree.iter().map(|r| r.oid).collect();
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

#[cfg(test)]
mod unit {
    use super::{permissive_policies, restrictive_policies};

    #[test]
    fn a_table_without_shared_rows_gets_one_isolation_policy() {
        let sql: Vec<String> = restrictive_policies("tenant_id", false)
            .iter()
            .map(|p| p.create_sql("public.t"))
            .collect();
        assert_eq!(
            sql,
            ["CREATE POLICY tenant_isolation ON public.t AS RESTRICTIVE FOR ALL TO PUBLIC USING (tenant_id OPERATOR(pg_catalog.=) tenant.current()) WITH CHECK (tenant_id OPERATOR(pg_catalog.=) tenant.current())"]
        );
    }

    #[test]
    fn shared_rows_are_read_by_every_tenant_and_written_by_none() {
        let restrictive = restrictive_policies("t", true);
        assert!(restrictive.iter().all(|p| p.restrictive));
        assert_eq!(
            restrictive[0].using.as_deref(),
            Some("t OPERATOR(pg_catalog.=) tenant.current() OR t IS NULL")
        );
        assert!(restrictive
            .iter()
            .all(|p| p.check.as_deref().is_none_or(|c| !c.contains("IS NULL"))));
        // With Citus: permissive only, and only SELECT admits a shared row.
        let permissive = permissive_policies("t", true);
        assert!(permissive.iter().all(|p| !p.restrictive));
        let admitting_null: Vec<&str> = permissive
            .iter()
            .filter(|p| {
                [&p.using, &p.check]
                    .iter()
                    .any(|q| q.as_deref().is_some_and(|q| q.contains("IS NULL")))
            })
            .map(|p| p.command)
            .collect();
        assert_eq!(admitting_null, ["SELECT"]);
    }
}
