//! `tenant.citus_setup()`: pg_tenant's registry on every node of a Citus cluster (see
//! src/citus.rs for how it is read there, and docs/operations.md, "Citus").

use pgrx::prelude::*;
use pgrx::spi::quote_identifier;
use serde_json::json;

use crate::citus::{self, REFERENCE_TABLES};
use crate::error::{guarded, TenantError};
use crate::owner::{as_extension_owner, current_role, is_superuser, read_one, run_with_args};
use crate::registry::{audit, cache};

#[pg_extern(sql = r#"
CREATE FUNCTION tenant.citus_setup()
RETURNS text[] VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@'
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION tenant.citus_setup() IS 'pg_tenant on Citus (run on the coordinator, superusers only): makes the tables workers need (tenants, plans, limit_overrides, signing_keys, node_key) reference tables, makes the node key that signs the context tenant.set_local() passes to the workers, lets SET LOCAL reach the workers, and (unless the server preloads pg_tenant) makes each session of the database load pg_tenant at its start; returns the tables it converted';
"#)]
fn citus_setup() -> Vec<String> {
    guarded(|| {
        if !is_superuser(current_role()) {
            TenantError::NotSuperuser("tenant.citus_setup()").raise();
        }
        if !citus::installed() {
            TenantError::CitusRequired(
                "Citus is not installed in this database (shared_preload_libraries = 'citus,pg_tenant', then CREATE EXTENSION citus)".into(),
            )
            .raise();
        }
        if read_one::<bool>("SELECT pg_catalog.citus_is_coordinator()", &[]) != Some(true) {
            TenantError::CitusRequired(
                "tenant.citus_setup() runs on the Citus coordinator (after citus_set_coordinator_host() and citus_add_node())".into(),
            )
            .raise();
        }
        let mut converted = Vec::new();
        let quiet = [("client_min_messages", "warning".to_string())];
        citus::with_ddl_settings(false, || {
            crate::gucs::with_settings(&quiet, || {
                as_extension_owner(|| {
                    for table in REFERENCE_TABLES {
                        let name = format!("tenant_data.{table}");
                        let done = read_one::<bool>(
                        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition
                                         WHERE logicalrelid OPERATOR(pg_catalog.=) $1::pg_catalog.regclass)",
                        &[name.as_str().into()],
                    );
                        if done == Some(true) {
                            continue;
                        }
                        if table == "plans" {
                            // It turns a restore's INSERT of a plan into an UPDATE of the table:
                            // on a shard that would be a distributed statement inside a shard's.
                            run_with_args(
                            "ALTER TABLE tenant_data.plans DISABLE TRIGGER plans_insert_as_update",
                            &[],
                        );
                        }
                        run_with_args(
                            "SELECT pg_catalog.create_reference_table($1::pg_catalog.regclass)",
                            &[name.as_str().into()],
                        );
                        // Citus copied the rows to the placements; the table's own copy is stale.
                        run_with_args(
                        "SELECT pg_catalog.truncate_local_data_after_distributing_table($1::pg_catalog.regclass)",
                        &[name.as_str().into()],
                    );
                        converted.push(name);
                    }
                })
            })
        });
        // SET LOCAL pg_tenant.token reaches the workers only with this (each worker verifies the
        // token itself); session-level SET is never propagated by Citus.
        let database = read_one::<String>("SELECT pg_catalog.current_database()::text", &[])
            .unwrap_or_default();
        run_with_args(
            &format!(
                "ALTER DATABASE {} SET citus.propagate_set_commands = 'local'",
                quote_identifier(&database)
            ),
            &[],
        );
        // Loaded on demand, pg_tenant's planner hook misses a session's statements planned before
        // the library loads (a first statement that follows only SET LOCAL pg_tenant.token):
        // unrouted, and open to the Citus crash src/isolation/citus_wrapped/ keeps queries
        // from. Unless the server preloads it, each session of the database loads it at its start.
        load_in_each_session(&database);
        // The key that signs the tenant context set_local() passes to the workers
        // (node_context.rs), read from this node's placement.
        citus::forget();
        let node_key_made = crate::node_context::make_node_key();
        citus::forget();
        cache::invalidate_everywhere();
        audit::record(
            "citus_setup",
            None,
            json!({"reference_tables": converted, "node_key_made": node_key_made}),
        );
        converted
    })
}

/// Adds pg_tenant to the database's `session_preload_libraries` (after what the session has)
/// unless `shared_preload_libraries` or `session_preload_libraries` already loads it.
fn load_in_each_session(database: &str) {
    let libraries = |setting: &str| -> Vec<String> {
        read_one::<String>("SELECT pg_catalog.current_setting($1)", &[setting.into()])
            .unwrap_or_default()
            .split(',')
            .map(|l| l.trim().trim_matches('"').to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let is_ours = |l: &String| l == "pg_tenant" || l == "$libdir/pg_tenant";
    if libraries("shared_preload_libraries").iter().any(is_ours) {
        return;
    }
    let mut session = libraries("session_preload_libraries");
    if session.iter().any(is_ours) {
        return;
    }
    session.push("pg_tenant".into());
    let list = session
        .iter()
        .map(pgrx::spi::quote_literal)
        .collect::<Vec<_>>()
        .join(", ");
    run_with_args(
        &format!(
            "ALTER DATABASE {} SET session_preload_libraries = {list}",
            quote_identifier(database)
        ),
        &[],
    );
}
