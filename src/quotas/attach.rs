//! attach_quota and detach_quota: the quota trigger or counting index a table gets for a
//! resource, and the counters a change of what a resource counts sets again.

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, quote_literal};
use serde_json::json;

use crate::error::{guarded, required, TenantError};
use crate::exemption::unfiltered;
use crate::owner::{as_table_owner, run_as_owner, run_with_args};
use crate::registry::audit;
use crate::types::TreeRelation;

use super::recount::{count_rows, counted_tables};
use super::shared_counters::{self};
use super::usage::{add_usage, required_resource};

/// Quota attachment modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Count,
    Meter,
    Bytes,
}

impl Mode {
    pub(super) fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "count" => Mode::Count,
            "meter" => Mode::Meter,
            "bytes" => Mode::Bytes,
            _ => return None,
        })
    }
    fn as_str(self) -> &'static str {
        match self {
            Mode::Count => "count",
            Mode::Meter => "meter",
            Mode::Bytes => "bytes",
        }
    }
}

/// In the names of a distributed table's quota triggers (`tenant_quota_<hash>_dist_del`): they
/// only record the quota and refuse TRUNCATE (see quota_trigger).
pub(super) const DISTRIBUTED_TRIGGER: &str = "_dist_";

/// Trigger names of one attachment: a short hash of the resource keeps them unique and short.
pub(super) fn trigger_prefix(resource: &str) -> String {
    let mut h: u32 = 2166136261;
    for b in resource.bytes() {
        h = (h ^ b as u32).wrapping_mul(16777619);
    }
    format!("tenant_quota_{h:08x}")
}

/// The mode of `resource`'s quota on `tbl`, if attached.
pub(super) fn attached_mode(tbl: pg_sys::Oid, resource: &str) -> Option<Mode> {
    crate::owner::as_extension_owner(|| {
        Spi::get_one_with_args::<String>(
        crate::owner::data_sql("SELECT mode FROM tenant_data.quota_attachments WHERE table_name OPERATOR(pg_catalog.=) $1::pg_catalog.oid::pg_catalog.regclass AND resource OPERATOR(pg_catalog.=) $2"),
        &[tbl.into(), resource.into()],
    )
    .ok()
    .flatten()
    .and_then(|m| Mode::parse(&m))
    })
}

/// Per-tenant usage of the rows now in `tbl` (count or bytes), for attaching and detaching.
pub(super) fn existing_usage(rel: pg_sys::Oid, column: &str, mode: Mode) -> Vec<(pgrx::Uuid, i64)> {
    let measure = if mode == Mode::Bytes {
        "pg_catalog.sum(pg_catalog.pg_column_size(t.*))::pg_catalog.int8"
    } else {
        "pg_catalog.count(*)"
    };
    let read = |f: &dyn Fn() -> Result<Vec<(pgrx::Uuid, i64)>, pgrx::spi::Error>| {
        if crate::citus::is_citus_table(rel) {
            // A distributed table's rows are on the shards, where the exemption of pg_tenant's
            // own statements from FORCE ROW LEVEL SECURITY does not reach (the workers see only
            // the statement Citus sends them). Read as the extension owner, a superuser, whom
            // row security does not filter there: a count per tenant of a plain table runs no
            // code of the table owner's (no trigger, default, policy or function of theirs).
            if !crate::owner::is_superuser(crate::owner::extension_owner()) {
                TenantError::CitusQuota {
                    table: crate::owner::relation_name(rel),
                    reason: "its rows can be counted only when the extension owner is a superuser",
                }
                .raise();
            }
            crate::owner::as_extension_owner(f)
        } else {
            // As the table's owner (see count_rows).
            as_table_owner(rel, f)
        }
    };
    read(&|| {
        Spi::connect(|client| {
            let mut out = Vec::new();
            let sql = format!(
                // Shared rows (no tenant: protect(..., shared_rows => true)) count for nobody.
                "SELECT {col}, {measure} FROM {table} t WHERE {col} IS NOT NULL GROUP BY 1 ORDER BY 1",
                col = quote_identifier(column),
                table = crate::owner::relation_name(rel)
            );
            for row in unfiltered(|| client.select(&sql, None, &[]))? {
                out.push((row.get(1)?.expect("tenant"), row.get(2)?.unwrap_or(0)));
            }
            Ok::<_, pgrx::spi::Error>(out)
        })
    })
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
}

/// A quota on a Citus table: only count and meter quotas, on a table hash-distributed by its
/// tenant column, which the coordinator counts (distributed.rs).
fn check_citus_table(tbl: pg_sys::Oid, column: &str, mode: Mode) {
    let refuse = |reason: &'static str| {
        TenantError::CitusQuota {
            table: crate::owner::relation_name(tbl),
            reason,
        }
        .raise()
    };
    if mode == Mode::Bytes {
        refuse("bytes quotas cannot be measured on a Citus table (the coordinator does not see its rows)");
    }
    if !super::distributed::preloaded() {
        refuse("count and meter quotas need pg_tenant in shared_preload_libraries on the coordinator (a session that never loads it would count nothing)");
    }
    if crate::citus::distribution_column(tbl).as_deref() != Some(column) {
        refuse("count and meter quotas need a table hash-distributed by its tenant column");
    }
}

#[pg_extern(
    sql = r#"
CREATE FUNCTION tenant.attach_quota(tbl regclass, resource text, mode text DEFAULT 'count')
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@'
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tenant.attach_quota(regclass, text, text) IS 'pg_tenant: limit a protected table''s rows (count), inserts per period (meter) or stored bytes (bytes) by a resource''s quota';
"#,
    requires = ["quota_attachments_view", quota_trigger]
)]
fn attach_quota(tbl: Option<pg_sys::Oid>, resource: Option<&str>, mode: Option<&str>) {
    guarded(|| {
        let tbl = required(tbl, "tbl");
        let resource = required_resource(resource);
        let mode_text = required(mode, "mode");
        let mode = Mode::parse(mode_text).unwrap_or_else(|| {
            TenantError::invalid("mode", "must be one of count, meter, bytes").raise()
        });
        let tree = crate::isolation::policies::relation_tree(tbl);
        let name = tree.first().map(|t| t.name.clone()).unwrap_or_default();
        let column = crate::isolation::policies::protected_column(tbl)
            .unwrap_or_else(|| TenantError::NotProtected(name.clone()).raise());
        match attached_mode(tbl, resource) {
            Some(m) if m == mode => return,
            Some(m) => TenantError::QuotaAttached {
                table: name,
                resource: resource.to_string(),
                mode: m.as_str(),
            }
            .raise(),
            None => {}
        }
        // A Citus table: counted on the coordinator (distributed.rs). Its triggers record the
        // quota on the coordinator only, where they never fire (its rows are on the shards)
        // except the TRUNCATE one; it gets no counting index.
        let citus_table = crate::citus::is_citus_table(tbl);
        if citus_table {
            check_citus_table(tbl, &column, mode);
        }
        // A count resource counts local tables (their rows, in shared memory when preloaded) or
        // distributed ones (the counter row), not both.
        if mode == Mode::Count
            && (if citus_table {
                !counted_tables(resource).is_empty()
            } else {
                super::distributed::on_distributed_table(resource)
            })
        {
            TenantError::CitusQuota {
                table: name.clone(),
                reason: "a count resource counts either distributed tables or local ones: use another resource name",
            }
            .raise();
        }
        let first_count = mode == Mode::Count && !count_resources().iter().any(|r| r == resource);
        let prefix = if citus_table {
            format!(
                "{}{}",
                trigger_prefix(resource),
                DISTRIBUTED_TRIGGER.trim_end_matches('_')
            )
        } else {
            trigger_prefix(resource)
        };
        let args = format!(
            "{}, {}, {}",
            quote_literal(resource),
            quote_literal(mode.as_str()),
            quote_literal(&column)
        );
        // Inserted rows of a count quota are counted by an index that stores nothing
        // (row_counter/); a database still at version 0.1.0 has no such index yet and
        // keeps the INSERT trigger until ALTER EXTENSION UPDATE replaces it.
        let counted_by_index = mode == Mode::Count
            && !citus_table
            && Spi::get_one::<bool>(
                "SELECT EXISTS (SELECT FROM pg_catalog.pg_am WHERE amname OPERATOR(pg_catalog.=) 'tenant_quota')",
            )
            .ok()
            .flatten()
            .unwrap_or(false);
        let ddl = |sql: &str| {
            if citus_table {
                crate::citus::with_ddl_settings(true, || run_with_args(sql, &[]));
            } else {
                run_with_args(sql, &[]);
            }
        };
        for TreeRelation { name: rel, .. } in &tree {
            let create = |suffix: &str, event: &str, transition: &str| {
                ddl(&format!(
                    "CREATE TRIGGER {} AFTER {event} ON {rel} {transition} FOR EACH STATEMENT EXECUTE FUNCTION tenant.quota_trigger({args})",
                    quote_identifier(format!("{prefix}_{suffix}"))
                ));
            };
            if !counted_by_index {
                create("ins", "INSERT", "REFERENCING NEW TABLE AS pg_tenant_new");
            }
            if mode != Mode::Meter {
                create("del", "DELETE", "REFERENCING OLD TABLE AS pg_tenant_old");
                ddl(&format!(
                    "CREATE TRIGGER {} BEFORE TRUNCATE ON {rel} FOR EACH STATEMENT EXECUTE FUNCTION tenant.quota_trigger({args})",
                    quote_identifier(format!("{prefix}_trunc"))
                ));
            }
            if mode == Mode::Bytes {
                create(
                    "upd",
                    "UPDATE",
                    "REFERENCING OLD TABLE AS pg_tenant_old NEW TABLE AS pg_tenant_new",
                );
            }
        }
        if mode == Mode::Count && citus_table {
            // No write of the table is under way while its rows are counted, and none that
            // started before the quota was attached (and so is not counted) commits after.
            run_with_args(
                &format!(
                    "LOCK TABLE {} IN SHARE MODE",
                    crate::owner::relation_name(tbl)
                ),
                &[],
            );
            prepare_count_change(resource);
            if first_count {
                zero_counter_rows(resource);
            }
        } else if mode == Mode::Count {
            prepare_count_change(resource);
            if counted_tables(resource).is_empty() {
                // The first table of a count quota: its usage is rows from now on, not what
                // consume() may have used of the resource before.
                zero_counter_rows(resource);
            }
        }
        if counted_by_index {
            // On the table and each inheritance child; a partition gets it from its partitioned
            // parent's index (PostgreSQL does not do that for inheritance children).
            for TreeRelation {
                oid: rel_oid,
                name: rel,
                ..
            } in &tree
            {
                if *rel_oid != tbl && crate::owner::is_partition(*rel_oid) {
                    continue;
                }
                run_with_args(
                    &format!(
                        "CREATE INDEX ON {rel} USING tenant_quota ({}) WITH (resource = {})",
                        quote_identifier(&column),
                        quote_literal(resource)
                    ),
                    &[],
                );
            }
        }
        if mode != Mode::Meter {
            for (tenant, amount) in existing_usage(tbl, &column, mode) {
                add_usage(tenant, resource, i64::MIN, amount, -1);
            }
        }
        if citus_table {
            super::distributed::forget_tree(&tree);
            crate::registry::cache::invalidate_everywhere();
        }
        audit::record(
            "attach_quota",
            None,
            json!({"table": name, "resource": resource, "mode": mode.as_str()}),
        );
    })
}

#[pg_extern(
    sql = r#"
CREATE FUNCTION tenant.detach_quota(tbl regclass, resource text)
RETURNS void VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@'
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tenant.detach_quota(regclass, text) IS 'pg_tenant: remove a quota from a table (a count or bytes quota gives its rows'' usage back)';
"#,
    requires = ["quota_attachments_view", quota_trigger]
)]
fn detach_quota(tbl: Option<pg_sys::Oid>, resource: Option<&str>) {
    guarded(|| {
        let tbl = required(tbl, "tbl");
        let resource = required(resource, "resource");
        let tree = crate::isolation::policies::relation_tree(tbl);
        let name = tree.first().map(|t| t.name.clone()).unwrap_or_default();
        let mode = attached_mode(tbl, resource).unwrap_or_else(|| {
            TenantError::QuotaNotAttached {
                table: name.clone(),
                resource: resource.to_string(),
            }
            .raise()
        });
        let column = crate::isolation::policies::protected_column(tbl)
            .unwrap_or_else(|| TenantError::NotProtected(name.clone()).raise());
        let prefix = trigger_prefix(resource);
        let citus_table = crate::citus::is_citus_table(tbl);
        for TreeRelation {
            oid: rel_oid,
            name: rel,
            ..
        } in &tree
        {
            let names = Spi::get_one_with_args::<Vec<String>>(
                "SELECT ARRAY(SELECT tgname::pg_catalog.text FROM pg_catalog.pg_trigger
                               WHERE tgrelid OPERATOR(pg_catalog.=) $1 AND tgname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($2))",
                &[(*rel_oid).into(), ["ins", "del", "upd", "trunc", "dist_ins", "dist_del", "dist_trunc"].map(|s| format!("{prefix}_{s}")).to_vec().into()],
            )
            .unwrap_or_else(|e| error!("pg_tenant: {e}"))
            .unwrap_or_default();
            for name in names {
                let sql = format!("DROP TRIGGER {} ON {rel}", quote_identifier(&name));
                if citus_table {
                    crate::citus::with_ddl_settings(true, || run_with_args(&sql, &[]));
                } else {
                    run_with_args(&sql, &[]);
                }
            }
        }
        if mode == Mode::Count {
            prepare_count_change(resource);
            for TreeRelation { oid: rel_oid, .. } in &tree {
                if let Some(index) = counting_index(*rel_oid, resource) {
                    run_with_args(&format!("DROP INDEX {index}"), &[]);
                }
            }
        }
        let last = if citus_table {
            !count_resources().iter().any(|r| r == resource)
        } else {
            counted_tables(resource).is_empty()
        };
        if citus_table {
            super::distributed::forget_tree(&tree);
            crate::registry::cache::invalidate_everywhere();
        }
        if mode == Mode::Count && last {
            // The last table of a count quota: no rows count any more.
            zero_counter_rows(resource);
        } else if mode != Mode::Meter {
            for (tenant, amount) in existing_usage(tbl, &column, mode) {
                add_usage(tenant, resource, i64::MIN, -amount, -1);
            }
        }
        audit::record(
            "detach_quota",
            None,
            json!({"table": name, "resource": resource, "mode": mode.as_str()}),
        );
    })
}

/// Before attach_quota/detach_quota change what a count quota counts: its tables take no writes
/// until this transaction ends (so no reservation in shared memory is under way when the slots
/// count again), the slots count again after commit, and every session reads the quota afresh
/// (Quota::counted).
pub(super) fn prepare_count_change(resource: &str) {
    lock_counted_tables(resource);
    shared_counters::invalidate_at_commit(resource);
    crate::registry::cache::invalidate_everywhere();
}

/// Holds off writes to a count quota's tables until this transaction ends.
pub(super) fn lock_counted_tables(resource: &str) {
    let tables: Vec<String> = counted_tables(resource)
        .into_iter()
        .map(|t| t.name)
        .collect();
    if !tables.is_empty() {
        run_with_args(
            &format!("LOCK TABLE {} IN SHARE MODE", tables.join(", ")),
            &[],
        );
    }
}

/// The resources attached as count quotas to some table.
pub(super) fn count_resources() -> Vec<String> {
    crate::owner::as_extension_owner(|| {
        Spi::connect(|client| {
        let rows = client.select(
            crate::owner::data_sql("SELECT DISTINCT resource FROM tenant_data.quota_attachments WHERE mode OPERATOR(pg_catalog.=) 'count' ORDER BY 1"),
            None,
            &[],
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push(row.get::<String>(1)?.unwrap_or_default());
        }
        Ok::<_, pgrx::spi::Error>(out)
    })
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
    })
}

/// Sets the counter rows of a count quota to 0 for every tenant (its first table attached, its
/// last detached, or before every tenant's rows are counted again).
pub(super) fn zero_counter_rows(resource: &str) {
    run_as_owner(
        crate::owner::data_sql("UPDATE tenant_data.usage_counters SET used = 0 WHERE resource = $1 AND period_start = '-infinity'"),
        &[resource.into()],
    );
}

/// Sets a tenant's counter row of a count quota to its rows (see count_rows), locking the row
/// first: whoever charged it before has committed when the count runs.
pub(super) fn set_counter_to_rows(tenant: pgrx::Uuid, resource: &str, hide_own: bool) {
    add_usage(tenant, resource, i64::MIN, 0, -1);
    let rows = count_rows(tenant, resource, hide_own);
    run_as_owner(
        crate::owner::data_sql("UPDATE tenant_data.usage_counters SET used = $3 WHERE tenant_id = $1 AND resource = $2 AND period_start = '-infinity'"),
        &[tenant.into(), resource.into(), rows.into()],
    );
}

/// The index counting `tbl`'s rows for `resource` (attach_quota's count mode), qualified.
pub(super) fn counting_index(tbl: pg_sys::Oid, resource: &str) -> Option<String> {
    Spi::get_one_with_args::<String>(
        "SELECT pg_catalog.max(i.indexrelid::pg_catalog.regclass::pg_catalog.text)
           FROM pg_catalog.pg_index i
           JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
           JOIN pg_catalog.pg_am a ON a.oid OPERATOR(pg_catalog.=) c.relam
          WHERE i.indrelid OPERATOR(pg_catalog.=) $1 AND a.amname OPERATOR(pg_catalog.=) 'tenant_quota'
            AND c.reloptions OPERATOR(pg_catalog.@>) ARRAY['resource=' OPERATOR(pg_catalog.||) $2]",
        &[tbl.into(), resource.into()],
    )
    .unwrap_or_else(|e| error!("pg_tenant: {e}"))
}
