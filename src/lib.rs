//! pg_tenant: multi-tenancy enforced inside PostgreSQL.
//!
//! One module per concern; the SQL each module owns is declared next to it
//! (`extension_sql_file!`), and `sql/finalize.sql` sets the privileges once everything exists.

use pgrx::prelude::*;

mod audit;
mod cache;
mod check;
mod clone;
mod context;
mod error;
mod export;
mod gucs;
mod info;
mod owner;
mod policies;
mod quotas;
mod registry;
mod row_counter;
mod schemas;
mod shared_counters;
mod tokens;
mod txn_cell;
mod types;

::pgrx::pg_module_magic!(name, version);

#[allow(non_snake_case)]
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // pgrx puts a Rust backtrace into an error's DETAIL when the server's environment asks for
    // backtraces (RUST_BACKTRACE): no backtrace ever reaches a client. (The backend is single
    // threaded, and Backtrace::capture reads this once.)
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    // Before gucs::init(), which reserves the "pg_tenant" prefix (dropping placeholders such as
    // a pg_tenant.shared_counters set in postgresql.conf that is not defined yet).
    shared_counters::init();
    gucs::init();
    cache::init();
    row_counter::init();
    // Loaded in the middle of a transaction (not preloaded): a cursor WITH HOLD may have been
    // declared before the utility hook was installed; the first commit checks every one.
    if unsafe { pgrx::pg_sys::IsTransactionState() } {
        context::check_all_holdable_cursors_at_next_commit();
    }
}

extension_sql_file!("../sql/finalize.sql", name = "finalize", finalize);

/// Required by `cargo pgrx test`.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    #[must_use]
    pub fn postgresql_conf_options() -> Vec<&'static str> {
        vec![]
    }
}
