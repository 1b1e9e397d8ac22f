//! Row isolation: what protects a table (policies.rs: the policies, the write guard, the catalog
//! of protected relations), `tenant.protect()` and `unprotect()` (protect.rs), deleting a dropped
//! tenant's rows (tenant_rows.rs), the isolation checker `tenant.check()` (check.rs), a
//! tenant's queries routed to its Citus shard (routing.rs), and the joins Citus would crash on
//! refused before it plans them (citus_joins.rs).

pub mod check;
mod citus_joins;
pub mod policies;
mod protect;
pub mod routing;
pub mod tenant_rows;
