//! Export and import of one tenant's data: `tenant.export()` / `tenant.import()`, written in
//! PL/pgSQL (sql/export.sql) because they are dynamic SQL over the protected tables. Added in
//! 0.2.0; the upgrade from 0.1.0 is built from the same file (sql/upgrades/).

use pgrx::prelude::*;

extension_sql_file!(
    "../sql/export.sql",
    name = "export_import",
    requires = ["registry_tables", "quota_tables", "protected_tables_view"]
);
