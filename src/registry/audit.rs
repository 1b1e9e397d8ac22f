//! The audit trail: one row in `tenant_data.audit_log` per administrative change. Rows outlive the
//! tenant they describe (no foreign key), so `tenant.drop()` keeps them.

use pgrx::prelude::*;
use serde_json::Value;

use crate::owner::as_extension_owner;

extension_sql_file!(
    "../../sql/audit.sql",
    name = "audit_tables",
    requires = ["registry_tables"]
);

/// Appends an audit row; `actor` is the session user, so SET ROLE does not hide who acted.
pub fn record(action: &str, tenant_id: Option<pgrx::Uuid>, detail: Value) {
    as_extension_owner(|| {
        Spi::run_with_args(
            crate::owner::data_sql(
                "INSERT INTO tenant_data.audit_log (tenant_id, action, detail) VALUES ($1, $2, $3)",
            ),
            &[tenant_id.into(), action.into(), pgrx::JsonB(detail).into()],
        )
        .unwrap_or_else(|e| error!("pg_tenant: could not write the audit log: {e}"));
    })
}
