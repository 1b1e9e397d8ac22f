//! Plans and quotas: per-plan limits, per-tenant overrides, usage per period, `consume` and
//! `check_quota` for application code, and quota triggers on protected tables.
//!
//! Exactness: every change of usage is one `INSERT ... ON CONFLICT DO UPDATE ... WHERE used +
//! delta <= limit` on the counter row of (tenant, resource, period). PostgreSQL applies it to the
//! latest row version under a row lock, so concurrent sessions serialize per tenant and resource,
//! exactly K of them win the last K units, and a rollback (or savepoint rollback) undoes its own
//! increment. Other tenants use other rows and never wait.
//!
//! - plans.rs: plans and per-tenant limits
//! - usage.rs: the quota in force, counters per period, `consume`, `check_quota`, what
//!   `tenant.info()` reports
//! - attach.rs: `attach_quota` and `detach_quota`
//! - trigger.rs: the quota trigger of meter and bytes quotas
//! - recount.rs: count quotas: charging rows, recounting them (a raw SPI layer reading with the
//!   latest snapshot), the shared-memory marker
//! - row_counter/: the `tenant_quota` index access method that sees a count quota's rows
//! - distributed.rs: count and meter quotas on Citus distributed tables, counted per statement
//!   on the coordinator
//! - shared_counters.rs: count quotas in shared memory, with shared_preload_libraries
//! - settings.rs: plan and tenant settings (statement_timeout, work_mem, ...) and the allowlist

mod attach;
pub mod distributed;
mod plans;
mod recount;
pub mod row_counter;
pub mod sessions;
pub mod settings;
pub mod shared_counters;
mod trigger;
mod usage;

pub use plans::require_plan;
pub use recount::on_xact;
pub use usage::{require_within, standing};

use pgrx::prelude::*;

use crate::owner::run_as_owner;

extension_sql_file!(
    "../../sql/quotas.sql",
    name = "quota_tables",
    requires = ["registry_tables", "protected_tables_view"]
);

/// Deletes a dropped tenant's usage and overrides.
pub fn forget_tenant(tenant: pgrx::Uuid) {
    run_as_owner(
        crate::owner::data_sql("DELETE FROM tenant_data.usage_counters WHERE tenant_id = $1"),
        &[tenant.into()],
    );
    run_as_owner(
        crate::owner::data_sql("DELETE FROM tenant_data.limit_overrides WHERE tenant_id = $1"),
        &[tenant.into()],
    );
}

extension_sql!(
    r#"
CREATE VIEW tenant_data.quota_attachments AS
SELECT DISTINCT ON (t.tgrelid, args[1])
       t.tgrelid::regclass AS table_name, args[1] AS resource, args[2] AS mode, args[3]::name AS tenant_column
  FROM pg_catalog.pg_trigger t
 CROSS JOIN LATERAL (SELECT pg_catalog.string_to_array(pg_catalog.encode(t.tgargs, 'escape'), '\000') AS args) a
 WHERE t.tgfoid = 'tenant.quota_trigger()'::regprocedure
 ORDER BY t.tgrelid, args[1];
-- pg_tenant's own code reads tenant_data.quota_attachments (see tenant.protected_tables).
CREATE VIEW tenant.quota_attachments AS
SELECT table_name, resource, mode, tenant_column FROM tenant_data.quota_attachments;
COMMENT ON VIEW tenant.quota_attachments IS 'pg_tenant: quotas attached to tables (tenant.attach_quota)';
GRANT SELECT ON tenant.quota_attachments TO PUBLIC;
"#,
    name = "quota_attachments_view",
    requires = ["quota_tables", quota_trigger]
);
