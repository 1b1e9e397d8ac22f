//! pg_tenant's errors: one enum, each variant with a stable SQLSTATE, message, detail and hint.
//!
//! pgrx can only raise the SQLSTATEs PostgreSQL itself defines, and pg_tenant needs codes of its
//! own (class `PT`, which PostgreSQL leaves to implementations) so that applications can branch on
//! them without parsing text. So an error is raised as a Rust panic carrying a [`TenantError`]; the
//! [`guarded`] wrapper around every SQL entry point catches it once all Rust destructors have run
//! and only then hands it to PostgreSQL's `ereport`, exactly like pgrx's own error path does.

mod report;
#[cfg(any(test, feature = "pg_test"))]
mod tests;
mod token;

pub use report::{guarded, log_server, notice, quietly, refuse_setting, reraise_with_detail, warn};
pub use token::TokenError;

use pgrx::prelude::*;

/// SQLSTATEs of pg_tenant. Class `PT` is not used by PostgreSQL.
pub mod sqlstate {
    pub const NO_TENANT: &str = "PT001";
    pub const UNKNOWN_TENANT: &str = "PT002";
    pub const TENANT_SUSPENDED: &str = "PT003";
    pub const TRUNCATE_REFUSED: &str = "PT004";
    pub const UNKNOWN_PLAN: &str = "PT005";
    pub const QUOTA_EXCEEDED: &str = "PT010";
    pub const NOT_IN_PLAN: &str = "PT011";
    pub const DEPENDENT_OBJECTS_STILL_EXIST: &str = "2BP01";
    pub const DUPLICATE_OBJECT: &str = "42710";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const CANT_CHANGE_PARAMETER: &str = "55P02";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const NULL_VALUE_NOT_ALLOWED: &str = "22004";
    pub const UNIQUE_VIOLATION: &str = "23505";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const WRONG_OBJECT_TYPE: &str = "42809";
    pub const TOKEN_MALFORMED: &str = "PT020";
    pub const TOKEN_SIGNATURE: &str = "PT021";
    pub const TOKEN_EXPIRED: &str = "PT022";
    pub const TOKEN_REPLAYED: &str = "PT023";
    pub const TOKEN_CLAIMS: &str = "PT024";
    pub const TOKEN_NO_KEY: &str = "PT025";
    pub const INVALID_TRANSACTION_STATE: &str = "25000";
    pub const INVALID_SCHEMA_NAME: &str = "3F000";
    pub const DUPLICATE_SCHEMA: &str = "42P06";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const INVALID_FOREIGN_KEY: &str = "42830";
    pub const NOT_NULL_VIOLATION: &str = "23502";
    pub const READ_ONLY_ACCESS: &str = "25006";
    pub const OBJECT_NOT_IN_PREREQUISITE_STATE: &str = "55000";
}

#[derive(Debug, Clone, PartialEq)]
pub enum TenantError {
    /// A tenant-scoped operation ran with no tenant in the session.
    NoTenant,
    /// The slug or id names no registered tenant.
    UnknownTenant(String),
    /// A write for a suspended tenant.
    Suspended {
        slug: String,
        reason: Option<String>,
    },
    /// The current role may not act as this tenant.
    NotAllowedToActAs {
        tenant: String,
        role: String,
    },
    InvalidSlug {
        slug: String,
        reason: &'static str,
    },
    DuplicateSlug(String),
    /// A NULL where pg_tenant needs a value.
    NullArgument(&'static str),
    /// A jsonb argument holding a value serde_json cannot (a number out of its range).
    UnreadableJson(String),
    InvalidArgument {
        argument: &'static str,
        reason: String,
    },
    WrongColumnType {
        table: String,
        column: String,
        found: String,
    },
    WrongObjectType {
        object: String,
        expected: &'static str,
    },
    NotProtected(String),
    TruncateRefused(String),
    UnknownPlan(String),
    DuplicatePlan(String),
    PlanInUse {
        plan: String,
        tenants: i64,
    },
    /// A malformed `limits` object; the text names the offending key.
    InvalidLimits(String),
    /// A quota would be passed. `detail` is the JSON object applications read.
    QuotaExceeded {
        resource: String,
        used: i64,
        limit: i64,
        plan: String,
        detail: serde_json::Value,
    },
    /// The resource's limit is 0: the feature is not part of the plan.
    NotInPlan {
        resource: String,
        plan: String,
        detail: serde_json::Value,
    },
    QuotaAttached {
        table: String,
        resource: String,
        mode: &'static str,
    },
    QuotaNotAttached {
        table: String,
        resource: String,
    },
    /// A tenant_quota index pg_tenant does not stand behind (src/row_counter/build.rs).
    QuotaIndexRefused {
        table: String,
        resource: String,
    },
    UnknownSchema(String),
    SchemaExists(String),
    /// clone_schema met objects it cannot reproduce faithfully; it refuses rather than lose them.
    CloneUnsupported {
        schema: String,
        objects: Vec<String>,
    },
    /// A signed tenant token was refused.
    Token(TokenError),
    /// A function only superusers may call.
    NotSuperuser(&'static str),
    /// tenant.set()/set_local()/set_token()/reset() called inside a security-restricted
    /// operation (code run as a table's owner by pg_tenant or by PostgreSQL's maintenance).
    InRestrictedOperation(&'static str),
    /// A SECURITY DEFINER function of another role called by a table owner's code that
    /// pg_tenant runs with FORCE ROW LEVEL SECURITY set aside.
    DefinerInMaintenance {
        function: String,
        owner: String,
    },
    /// A table read through a view of its owner's in a rule of a table pg_tenant maintains.
    ViewInMaintenance {
        table: String,
        owner: String,
    },
    /// A rule's action in a statement pg_tenant runs with FORCE ROW LEVEL SECURITY set aside.
    RuleInMaintenance {
        table: String,
    },
    /// A PostgreSQL error caught and raised again with more detail (reraise_with_detail).
    Reraised {
        sqlstate: &'static str,
        message: String,
        detail: String,
        hint: Option<String>,
    },
    /// tenant.set()/set_local()/reset()/set_token() or the token parameter while a statement
    /// writes rows.
    ChangedWhileWriting(&'static str),
    /// A protected table tenant.drop() cannot check (its tenant column is gone).
    UncheckableTable {
        table: String,
        column: String,
    },
    /// A write while acting as a tenant through a read-only grant.
    ReadOnlyAccess {
        slug: String,
        role: String,
    },
    /// Rows of a dropped tenant that a table's delete left in place (a rule or trigger of the
    /// table's kept them).
    RowsKeptByDrop {
        table: String,
        rows: i64,
        in_tenant_schema: bool,
    },
    /// A function that must run at READ COMMITTED.
    NeedsReadCommitted(&'static str),
    /// tenant.set/set_local/reset while set_token(..., lock => true) holds the session.
    SessionLocked,
    /// tenant.set/set_local/set_token while pg_tenant.token decides the tenant.
    TokenParameterSet,
    /// A foreign key between protected tables that does not pair their tenant columns.
    CrossTenantForeignKey {
        constraint: String,
        table: String,
        referenced: String,
        fix: String,
    },
    /// A role granted transaction_only tried to act as a tenant for the whole session.
    TransactionOnly(String),
    /// A plan routed to one tenant's Citus shard started for another tenant (a plan no cache
    /// could plan again: one a SQL function made before its body changed the tenant).
    RoutedForAnotherTenant,
    /// A cursor WITH HOLD that would keep a tenant's rows past the tenant's context.
    HoldableCursor(String),
    /// `SET pg_tenant.token FROM CURRENT`.
    TokenFromCurrent,
    /// protect() of a table whose existing rows have no tenant yet.
    RowsWithoutTenant {
        table: String,
        column: String,
        rows: i64,
    },
    /// protect(..., shared_rows => true) of a hash-distributed Citus table.
    SharedRowsDistributed {
        table: String,
    },
    /// protect() of a table Citus already distributed (its shards would get no write guard).
    AlreadyDistributed {
        table: String,
    },
    /// unprotect() of a Citus table (the write guard's copies on its shards would stay).
    UnprotectCitusTable {
        table: String,
    },
    /// On Citus, the whole row or a system column of a row-filtered table that is not its
    /// query's first entry, inside a join with an alias or USING (src/isolation/citus_wrapped/wrap.rs).
    CitusWrappedColumns {
        table: String,
    },
    /// A quota on a Citus table that the coordinator cannot count exactly (attach_quota of
    /// bytes, of a table not hash-distributed by its tenant column; a statement whose count is
    /// ambiguous, or whose rows are not the tenant in force's).
    CitusQuota {
        table: String,
        reason: &'static str,
    },
    /// A Citus function in a database without Citus, or not on the coordinator.
    CitusRequired(String),
    /// tenant.import() into a protected Citus table that is not hash-distributed (a reference
    /// table, a Citus local table): Citus writes its placement on the coordinator too, where no
    /// node context reaches.
    ImportIntoCitusTable(String),
    /// tenant.export() of a distributed table with a column whose type converts to JSON with a
    /// function of a role (a cast): it would run on the workers, where the owner's connection
    /// acts as the exported tenant.
    ExportWithUserCast {
        table: String,
        cast: String,
    },
    /// Per-tenant statistics read or reset where the server keeps none: pg_tenant is not in
    /// shared_preload_libraries (false), or pg_tenant.stats_max_tenants is 0 (true).
    NoStatistics {
        preloaded: bool,
    },
}

impl TenantError {
    pub fn invalid(argument: &'static str, reason: impl Into<String>) -> TenantError {
        TenantError::InvalidArgument {
            argument,
            reason: reason.into(),
        }
    }

    pub fn sqlstate(&self) -> &'static str {
        use sqlstate::*;
        match self {
            TenantError::Reraised { sqlstate, .. } => sqlstate,
            TenantError::NoTenant => NO_TENANT,
            TenantError::UnknownTenant(_) => UNKNOWN_TENANT,
            TenantError::Suspended { .. } => TENANT_SUSPENDED,
            TenantError::NotAllowedToActAs { .. } => INSUFFICIENT_PRIVILEGE,
            TenantError::InvalidSlug { .. }
            | TenantError::InvalidArgument { .. }
            | TenantError::UnreadableJson(_) => INVALID_PARAMETER_VALUE,
            TenantError::DuplicateSlug(_) => UNIQUE_VIOLATION,
            TenantError::NullArgument(_) => NULL_VALUE_NOT_ALLOWED,
            TenantError::WrongColumnType { .. } => DATATYPE_MISMATCH,
            TenantError::WrongObjectType { .. } | TenantError::NotProtected(_) => WRONG_OBJECT_TYPE,
            TenantError::TruncateRefused(_) => TRUNCATE_REFUSED,
            TenantError::UnknownPlan(_) => UNKNOWN_PLAN,
            TenantError::DuplicatePlan(_) => UNIQUE_VIOLATION,
            TenantError::PlanInUse { .. } => DEPENDENT_OBJECTS_STILL_EXIST,
            TenantError::InvalidLimits(_) => INVALID_PARAMETER_VALUE,
            TenantError::QuotaExceeded { .. } => QUOTA_EXCEEDED,
            TenantError::NotInPlan { .. } => NOT_IN_PLAN,
            TenantError::QuotaAttached { .. } => DUPLICATE_OBJECT,
            TenantError::QuotaNotAttached { .. } => UNDEFINED_OBJECT,
            TenantError::QuotaIndexRefused { .. } => INVALID_PARAMETER_VALUE,
            TenantError::UnknownSchema(_) => INVALID_SCHEMA_NAME,
            TenantError::SchemaExists(_) => DUPLICATE_SCHEMA,
            TenantError::CloneUnsupported { .. } => FEATURE_NOT_SUPPORTED,
            TenantError::Token(e) => e.sqlstate(),
            TenantError::SessionLocked
            | TenantError::NotSuperuser(_)
            | TenantError::InRestrictedOperation(_)
            | TenantError::DefinerInMaintenance { .. }
            | TenantError::ViewInMaintenance { .. }
            | TenantError::RuleInMaintenance { .. } => INSUFFICIENT_PRIVILEGE,
            TenantError::NeedsReadCommitted(_) => INVALID_TRANSACTION_STATE,
            TenantError::TokenParameterSet | TenantError::TokenFromCurrent => CANT_CHANGE_PARAMETER,
            TenantError::RowsWithoutTenant { .. } => NOT_NULL_VIOLATION,
            TenantError::SharedRowsDistributed { .. }
            | TenantError::AlreadyDistributed { .. }
            | TenantError::UnprotectCitusTable { .. }
            | TenantError::CitusWrappedColumns { .. }
            | TenantError::CitusQuota { .. } => FEATURE_NOT_SUPPORTED,
            TenantError::CitusRequired(_) => OBJECT_NOT_IN_PREREQUISITE_STATE,
            TenantError::ImportIntoCitusTable(_) | TenantError::ExportWithUserCast { .. } => {
                FEATURE_NOT_SUPPORTED
            }
            TenantError::NoStatistics { .. } => OBJECT_NOT_IN_PREREQUISITE_STATE,
            TenantError::HoldableCursor(_) => FEATURE_NOT_SUPPORTED,
            TenantError::RowsKeptByDrop { .. } => OBJECT_NOT_IN_PREREQUISITE_STATE,
            TenantError::ReadOnlyAccess { .. } => READ_ONLY_ACCESS,
            TenantError::UncheckableTable { .. } => OBJECT_NOT_IN_PREREQUISITE_STATE,
            TenantError::ChangedWhileWriting(_) => OBJECT_NOT_IN_PREREQUISITE_STATE,
            TenantError::TransactionOnly(_) => INSUFFICIENT_PRIVILEGE,
            TenantError::RoutedForAnotherTenant => OBJECT_NOT_IN_PREREQUISITE_STATE,
            TenantError::CrossTenantForeignKey { .. } => INVALID_FOREIGN_KEY,
        }
    }

    pub fn message(&self) -> String {
        match self {
            TenantError::Reraised { message, .. } => message.clone(),
            TenantError::NoTenant => "no tenant is set for this session".into(),
            TenantError::UnknownTenant(t) => format!("tenant \"{t}\" does not exist"),
            TenantError::Suspended { slug, .. } => {
                format!("tenant \"{slug}\" is suspended: writes are not allowed")
            }
            TenantError::NotAllowedToActAs { tenant, role } => {
                format!("role \"{role}\" may not act as tenant \"{tenant}\"")
            }
            TenantError::InvalidSlug { slug, reason } => {
                format!("invalid tenant slug \"{slug}\": {reason}")
            }
            TenantError::DuplicateSlug(s) => format!("tenant \"{s}\" already exists"),
            TenantError::NullArgument(a) => format!("argument \"{a}\" must not be NULL"),
            TenantError::UnreadableJson(reason) => {
                format!("a jsonb argument holds a value pg_tenant cannot read ({reason})")
            }
            TenantError::InvalidArgument { argument, reason } => {
                format!("invalid value for argument \"{argument}\": {reason}")
            }
            TenantError::WrongColumnType {
                table,
                column,
                found,
            } => format!("tenant column \"{column}\" of table {table} has type {found}, not uuid"),
            TenantError::WrongObjectType { object, expected } => {
                format!("{object} is not {expected}")
            }
            TenantError::NotProtected(t) => format!("table {t} is not protected by pg_tenant"),
            TenantError::TruncateRefused(t) => {
                format!("TRUNCATE of protected table {t} is not allowed")
            }
            TenantError::UnknownPlan(p) => format!("plan \"{p}\" does not exist"),
            TenantError::DuplicatePlan(p) => format!("plan \"{p}\" already exists"),
            TenantError::PlanInUse { plan, tenants } => {
                format!("plan \"{plan}\" cannot be dropped: {tenants} tenant(s) are on it")
            }
            TenantError::InvalidLimits(reason) => format!("invalid plan limits: {reason}"),
            TenantError::QuotaExceeded {
                resource,
                used,
                limit,
                plan,
                ..
            } => {
                format!("quota exceeded for \"{resource}\": {used} of {limit} used (plan {plan})")
            }
            TenantError::NotInPlan { resource, plan, .. } => {
                format!("\"{resource}\" is not available on plan {plan}")
            }
            TenantError::QuotaAttached {
                table,
                resource,
                mode,
            } => {
                format!("quota \"{resource}\" is already attached to table {table} in mode {mode}")
            }
            TenantError::QuotaNotAttached { table, resource } => {
                format!("quota \"{resource}\" is not attached to table {table}")
            }
            TenantError::QuotaIndexRefused { table, resource } => format!(
                "tenant_quota index on table {table} refused: quota \"{resource}\" is not attached to it"
            ),
            TenantError::UnknownSchema(s) => format!("schema \"{s}\" does not exist"),
            TenantError::SchemaExists(s) => format!("schema \"{s}\" already exists"),
            TenantError::Token(e) => e.message(),
            TenantError::SessionLocked => "the session is locked to the tenant of its token".into(),
            TenantError::NotSuperuser(f) => format!("only superusers may call {f}"),
            TenantError::DefinerInMaintenance { function, owner } => format!(
                "SECURITY DEFINER function {function} of role {owner} cannot run in a table owner's code that pg_tenant runs on someone else's behalf"
            ),
            TenantError::ViewInMaintenance { table, owner } => format!(
                "table {table}, read with the rights of its owner {owner} (through a view or rule of that role's) in a rule of a table pg_tenant maintains, cannot be read with FORCE ROW LEVEL SECURITY set aside"
            ),
            TenantError::RuleInMaintenance { table } => format!(
                "a rule on table {table} cannot run in a statement pg_tenant runs with FORCE ROW LEVEL SECURITY set aside"
            ),
            TenantError::UncheckableTable { table, column } => format!(
                "tenant.drop() cannot check the protected table {table}: its tenant column \"{column}\" is gone or no longer a uuid"
            ),
            TenantError::RoutedForAnotherTenant => {
                "this statement was planned for another tenant's Citus shard".into()
            }
            TenantError::ChangedWhileWriting(f) => format!(
                "{f} cannot change the tenant while a statement writes rows"
            ),
            TenantError::ReadOnlyAccess { slug, role } => format!(
                "role {role} may only read tenant \"{slug}\" (its grant is read-only)"
            ),
            TenantError::RowsKeptByDrop {
                table,
                rows,
                in_tenant_schema: false,
            } => format!("the delete of the tenant's rows from {table} left {rows} of them in place"),
            TenantError::RowsKeptByDrop {
                table,
                rows,
                in_tenant_schema: true,
            } => format!(
                "the tenant has {rows} rows in {table}, a protected table in a schema tenant's schema, where tenant.drop() deletes nothing"
            ),
            TenantError::InRestrictedOperation(f) => format!(
                "{f} cannot be called inside a security-restricted operation (code run as a table's owner on someone else's behalf)"
            ),
            TenantError::NeedsReadCommitted(f) => {
                format!("{f} must run at the READ COMMITTED isolation level")
            }
            TenantError::TokenParameterSet => {
                "the tenant comes from pg_tenant.token in this session".into()
            }
            TenantError::CrossTenantForeignKey {
                constraint,
                table,
                referenced,
                ..
            } => format!(
                "foreign key \"{constraint}\" of {table} references {referenced} without the tenant columns: its checks and cascades would cross tenants"
            ),
            TenantError::TransactionOnly(role) => format!(
                "role \"{role}\" may act as a tenant only for a transaction"
            ),
            TenantError::HoldableCursor(name) => format!(
                "cursor \"{name}\" cannot be WITH HOLD while a tenant context is in force"
            ),
            TenantError::TokenFromCurrent => {
                "parameter \"pg_tenant.token\" cannot be set FROM CURRENT".into()
            }
            TenantError::RowsWithoutTenant { table, column, rows } => format!(
                "{rows} row(s) of {table} have no tenant in column \"{column}\""
            ),
            TenantError::SharedRowsDistributed { table } => format!(
                "table {table} is distributed by Citus: a hash-distributed table cannot keep shared rows (rows without a tenant)"
            ),
            TenantError::AlreadyDistributed { table } => format!(
                "table {table} is already a Citus table: protect it before distributing it"
            ),
            TenantError::CitusWrappedColumns { table } => format!(
                "on Citus, the whole row or a system column of {table} cannot be read inside a join with an alias or USING"
            ),
            TenantError::UnprotectCitusTable { table } => format!(
                "table {table} is a Citus table: unprotect() cannot take the write guard off its shards"
            ),
            TenantError::CitusRequired(what) => what.clone(),
            TenantError::ExportWithUserCast { table, cast } => format!(
                "tenant.export() cannot read {table} on the Citus workers: {cast} converts a column to JSON with a function of a role, which would run there as the tenant"
            ),
            TenantError::ImportIntoCitusTable(table) => format!(
                "tenant.import() cannot load rows into {table}: a Citus reference table (or Citus local table) is not supported yet"
            ),
            TenantError::CitusQuota { table, reason } => {
                format!("quota on Citus table {table}: {reason}")
            }
            TenantError::NoStatistics { preloaded: false } => {
                "per-tenant statistics need pg_tenant in shared_preload_libraries".into()
            }
            TenantError::NoStatistics { preloaded: true } => {
                "per-tenant statistics are not kept: pg_tenant.stats_max_tenants is 0".into()
            }
            TenantError::CloneUnsupported { schema, objects } => format!(
                "schema \"{schema}\" holds {} object(s) clone_schema cannot reproduce",
                objects.len()
            ),
        }
    }

    pub fn detail(&self) -> Option<String> {
        match self {
            TenantError::Reraised { detail, .. } => Some(detail.clone()),
            TenantError::Suspended {
                reason: Some(r), ..
            } => Some(format!("Reason: {r}")),
            TenantError::TruncateRefused(_) => Some(
                "TRUNCATE bypasses row-level security and would remove every tenant's rows.".into(),
            ),
            TenantError::QuotaExceeded { detail, .. } | TenantError::NotInPlan { detail, .. } => {
                Some(detail.to_string())
            }
            TenantError::CloneUnsupported { objects, .. } => {
                Some(format!("Unsupported: {}.", objects.join(", ")))
            }
            _ => None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            TenantError::Reraised { hint, .. } => hint.clone(),
            TenantError::RuleInMaintenance { .. } => Some(
                "Nothing was changed. pg_tenant's maintenance (tenant.drop(), recounts, export and import, migrations) reads every row of a table, and a rule's action would too: drop the rule, or do its work in a trigger, which runs with row security as usual.".into(),
            ),
            TenantError::CitusWrappedColumns { .. } => Some(
                "Name the columns you need instead of the whole row, or write the join without an alias and without USING: Citus cannot plan this row-filtered table there safely.".into(),
            ),
            TenantError::UnprotectCitusTable { table } => Some(format!(
                "Nothing was changed. Make it a local table again first (SELECT undistribute_table('{table}')), then unprotect it."
            )),
            TenantError::ImportIntoCitusTable(_) => Some(
                "Nothing was imported. Import into tables distributed by their tenant column or local tables; load this table's rows as the tenant (tenant.set_local() and INSERT).".into(),
            ),
            TenantError::UncheckableTable { .. } => Some(
                "Nothing was deleted or dropped. Give the table its tenant column back (or protect it again), then drop the tenant.".into(),
            ),
            TenantError::ReadOnlyAccess { .. } => Some(
                "It was granted with read_only => true (tenant.grant_gateway or tenant.grant_access); a writing grant for this tenant and scope lets it write.".into(),
            ),
            TenantError::RowsKeptByDrop {
                in_tenant_schema: false,
                ..
            } => Some(
                "A rule (DO INSTEAD) or a BEFORE DELETE trigger of the table kept them, or the table's owner changed the table during the drop (a partition detached, say); nothing was deleted or dropped. Change that, or delete those rows first.".into(),
            ),
            TenantError::RowsKeptByDrop {
                in_tenant_schema: true,
                ..
            } => Some(
                "Nothing was deleted or dropped. Move the table out of that schema, or delete those rows first.".into(),
            ),
            TenantError::SharedRowsDistributed { .. } => Some(
                "Keep shared rows in a reference table (create_reference_table()), or protect this table without shared_rows.".into(),
            ),
            TenantError::NoTenant if serving_citus_coordinator() => Some(
                "On a Citus worker: no tenant context reached it. tenant.set() and session-level tokens stay on the coordinator; call tenant.set_local() (or SET LOCAL pg_tenant.token) inside a transaction block.".into(),
            ),
            TenantError::NoTenant => {
                Some("Call tenant.set() or tenant.set_local() before using protected tables.".into())
            }
            TenantError::Suspended { .. } => Some("Reads still work; tenant.resume() allows writes again.".into()),
            TenantError::NotAllowedToActAs { .. } => Some(
                "A superuser grants it with tenant.grant_access(tenant, role) or tenant.grant_gateway(role)."
                    .into(),
            ),
            TenantError::InvalidSlug { .. } => Some(
                "A slug has 1 to 63 characters: lowercase letters, digits, '-' and '_', starting with a letter or digit."
                    .into(),
            ),
            TenantError::TruncateRefused(_) => {
                Some("Use DELETE, which row-level security limits to the current tenant, or tenant.drop().".into())
            }
            TenantError::QuotaExceeded { .. } => Some(
                "The DETAIL is JSON: retry after period_end, free some units, or move the tenant to a larger plan.".into(),
            ),
            TenantError::NotInPlan { .. } => {
                Some("The DETAIL is JSON: the tenant's plan does not include this resource.".into())
            }
            TenantError::PlanInUse { .. } => Some("Move its tenants with tenant.change_plan() first.".into()),
            TenantError::SessionLocked => Some(
                "tenant.set_token(..., lock => true) was called: only a newer token can change the tenant.".into(),
            ),
            TenantError::TokenParameterSet => Some("RESET pg_tenant.token first.".into()),
            TenantError::RowsWithoutTenant { table, column, .. } => Some(format!(
                "Give every existing row its tenant first, then protect the table: ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {col} uuid; UPDATE {table} SET {col} = (SELECT id FROM tenant.tenants WHERE slug = '<its tenant>') WHERE <which rows>; (see docs/reference.md, section Converting an existing application). Rows that are global defaults every tenant may read can keep no tenant: tenant.protect({table_literal}, {column_literal}, shared_rows => true)",
                col = pgrx::spi::quote_identifier(column),
                table_literal = pgrx::spi::quote_literal(table),
                column_literal = pgrx::spi::quote_literal(column)
            )),
            TenantError::TokenFromCurrent => Some("Set the token itself: SET LOCAL pg_tenant.token = '<jwt>' or tenant.set_token($1, local => true).".into()),
            TenantError::CrossTenantForeignKey { fix, .. } => Some(format!(
                "Make it a composite key over the tenant columns: {fix}"
            )),
            TenantError::RoutedForAnotherTenant => Some(
                "The tenant changed after the statement was planned (in a SQL function, whose statements are all planned when it starts). Change the tenant before calling the function, write it in PL/pgSQL, or SET pg_tenant.citus_routing = off.".into(),
            ),
            TenantError::TransactionOnly(_) => Some(
                "Its grant was made with transaction_only => true, or pg_tenant.transaction_only is on for it (a transaction pooler hands the server session to other clients after each transaction): use tenant.set_local(), tenant.set_token(..., local => true) or SET LOCAL pg_tenant.token inside a transaction.".into(),
            ),
            TenantError::HoldableCursor(_) => Some(
                "A holdable cursor keeps its rows after the transaction, past the tenant's context: declare it WITHOUT HOLD, or fetch its rows before the context ends.".into(),
            ),
            TenantError::QuotaAttached { .. } => Some("Detach it with tenant.detach_quota() first.".into()),
            TenantError::NoStatistics { preloaded: false } => Some(
                "Add pg_tenant to shared_preload_libraries in postgresql.conf and restart the server: statistics are counted in shared memory.".into(),
            ),
            TenantError::NoStatistics { preloaded: true } => Some(
                "Set pg_tenant.stats_max_tenants to the number of tenants to keep and restart the server.".into(),
            ),
            TenantError::QuotaIndexRefused { .. } => Some(
                "Count quotas are attached with tenant.attach_quota(tbl, resource, 'count'). Otherwise only a CREATE INDEX sent by a role that may run attach_quota() (such as the superuser restoring a dump) makes such an index.".into(),
            ),
            _ => None,
        }
    }

    /// Raise this error. Must be reached from inside [`guarded`].
    pub fn raise(self) -> ! {
        if !report::under_guard() {
            // Not under a guard (should not happen): fall back to pgrx's reporting, which keeps
            // the message but can only use a standard SQLSTATE.
            let mut report = pgrx::pg_sys::panic::ErrorReport::new(
                PgSqlErrorCode::ERRCODE_RAISE_EXCEPTION,
                self.message(),
                "pg_tenant",
            );
            if let Some(d) = self.detail() {
                report = report.set_detail(d);
            }
            if let Some(h) = self.hint() {
                report = report.set_hint(h);
            }
            report.report(PgLogLevel::ERROR);
            unreachable!()
        }
        std::panic::panic_any(self)
    }
}

impl std::fmt::Display for TenantError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.sqlstate(), self.message())
    }
}

/// Shorthand for the many "argument must not be NULL" checks.
pub fn required<T>(value: Option<T>, argument: &'static str) -> T {
    value.unwrap_or_else(|| TenantError::NullArgument(argument).raise())
}

/// Whether this backend serves a Citus coordinator (a connection Citus opened to run shard tasks;
/// its application_name says so). Only chooses a hint's words, never a decision.
fn serving_citus_coordinator() -> bool {
    let name = unsafe { pgrx::pg_sys::application_name };
    !name.is_null()
        && unsafe { std::ffi::CStr::from_ptr(name) }
            .to_bytes()
            .starts_with(b"citus_internal")
}
