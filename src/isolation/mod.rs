//! Row isolation: what protects a table (policies.rs: the policies, the write guard, the catalog
//! of protected relations), `tenant.protect()` and `unprotect()` (protect.rs), deleting a dropped
//! tenant's rows (tenant_rows.rs), the isolation checker `tenant.check()` (check.rs), a
//! tenant's queries routed to its Citus shard (routing.rs), filtered tables kept out of Citus's
//! faulty wrapping (citus_wrapped/: the wrapping in wrap.rs, the quals repair in mod.rs), and
//! TRUNCATE of a protected table's Citus shard refused (shard_truncate.rs).

pub mod check;
mod citus_wrapped;
pub mod policies;
mod protect;
pub mod routing;
pub mod shard_truncate;
pub mod tenant_rows;
