//! pg_tenant: multi-tenancy enforced inside PostgreSQL.
//!
//! One module per concern; the SQL each module owns is declared next to it
//! (`extension_sql_file!`), and `sql/finalize.sql` sets the privileges once everything exists.

use pgrx::prelude::*;

// The bottom layer: data and errors.
mod error;
mod types;
// Plumbing: PostgreSQL machinery the features share.
mod args;
mod citus;
mod exemption;
mod gucs;
mod hooks;
mod node_context;
mod owner;
mod pg_settings;
mod tenant_plans;
mod txn_cell;
mod xact;
// Features (scripts/layers.sh checks that imports only go down and features form no cycle).
mod citus_setup;
mod context;
mod export;
mod isolation;
mod lifecycle;
mod quotas;
mod registry;
mod schemas;
mod stats;

::pgrx::pg_module_magic!(name, version);

#[allow(non_snake_case)]
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    // pgrx puts a Rust backtrace into an error's DETAIL when the server's environment asks for
    // backtraces (RUST_BACKTRACE): no backtrace ever reaches a client. (The backend is single
    // threaded, and Backtrace::capture reads this once.)
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    // Before gucs::init(), which defines the parameters (reserving the "pg_tenant" prefix then
    // drops placeholders such as a pg_tenant.shared_counters set in postgresql.conf that is not
    // defined yet).
    quotas::shared_counters::init();
    gucs::init();
    context::tokens::init();
    node_context::init();
    gucs::reserve_prefix();
    registry::cache::init();
    // Before exemption's planner hook, which so runs first: a statement of pg_tenant's own is
    // rid of its FORCE exemption before anything else (routing's lookups) runs.
    isolation::routing::init();
    isolation::shard_truncate::init();
    exemption::init();
    quotas::row_counter::init();
    // Citus tables' quotas, counted on the coordinator per statement.
    quotas::distributed::init();
    // After row_counter's hooks, so that the context's run first.
    context::init();
    // Last: its hooks run first, and see each statement's rows before the others' ExecutorEnd.
    stats::init();
    // The transaction callbacks, in the order they run: a statement's counted rows are flushed
    // before the context's commit checks, shared counters settle after both, and the settings
    // and caches end with the transaction last.
    xact::on_xact(quotas::row_counter::on_xact);
    xact::on_xact(quotas::on_xact);
    xact::on_xact(quotas::sessions::on_xact);
    xact::on_xact(context::on_xact);
    xact::on_xact(quotas::shared_counters::on_xact);
    xact::on_xact(gucs::on_xact);
    xact::on_xact(context::settings::on_xact);
    xact::on_xact(context::tokens::on_xact);
    xact::on_xact(node_context::on_xact);
    xact::on_xact(registry::cache::on_xact);
    xact::on_xact(isolation::routing::on_xact);
    xact::on_xact(stats::on_xact);
    xact::on_subxact(quotas::shared_counters::on_subxact);
    xact::on_subxact(gucs::on_subxact);
    xact::on_subxact(context::settings::on_subxact);
    xact::on_subxact(quotas::row_counter::on_subxact);
    xact::on_subxact(isolation::routing::on_subxact);
    xact::on_subxact(quotas::sessions::on_subxact);
    xact::on_subxact(stats::on_subxact);
    xact::init();
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
