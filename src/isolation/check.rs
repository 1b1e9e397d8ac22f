//! The isolation checker, `tenant.check()`: a catalog query (sql/check.sql) listing where a
//! tenancy setup is weak, each finding with a fix.

use pgrx::prelude::*;

extension_sql_file!(
    "../../sql/check.sql",
    name = "isolation_checker",
    requires = ["protected_tables_view"]
);
