//! Plain data that more than one feature reads: a tenant's registry row, a granted role, a quota
//! in force. The bottom layer: no SQL, no PostgreSQL state; the features that own each table
//! load these (registry/ the tenants and grants, quotas/ the limits).

use pgrx::pg_sys;

/// A registry row, as much of it as the Rust side needs.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: pgrx::Uuid,
    pub slug: String,
    pub status: String,
    pub suspended_reason: Option<String>,
    /// The tenant's own schema, for `isolation => 'schema'` tenants.
    pub schema_name: Option<String>,
}

impl Tenant {
    pub fn is_suspended(&self) -> bool {
        self.status == "suspended"
    }
}

/// A relation of a table tree: the table, or a partition or inheritance child below it
/// (isolation::policies::relation_tree).
#[derive(Debug, Clone)]
pub struct TreeRelation {
    pub oid: pg_sys::Oid,
    /// As regclass prints it: schema-qualified and quoted when needed.
    pub name: String,
    /// pg_class.relkind.
    pub relkind: String,
}

/// A role granted tenant.grant_gateway() or tenant.grant_access().
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoleGrant {
    pub role: pg_sys::Oid,
    /// Granted with transaction_only => true: may act as a tenant for a transaction only.
    pub transaction_only: bool,
    /// Granted with read_only => true: may read as a tenant, not write (issue 15).
    pub read_only: bool,
}

/// How long a period lasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    None,
    Minute,
    Hour,
    Day,
    Month,
}

impl Period {
    pub const NAMES: &'static str = "none, minute, hour, day, month";

    pub fn parse(s: &str) -> Option<Period> {
        Some(match s {
            "none" => Period::None,
            "minute" => Period::Minute,
            "hour" => Period::Hour,
            "day" => Period::Day,
            "month" => Period::Month,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::None => "none",
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Month => "month",
        }
    }
}

/// The limit in force for a tenant and resource, with the bounds of the current period.
#[derive(Debug, Clone)]
pub struct Quota {
    pub plan: String,
    pub limit: i64,
    pub period: Period,
    /// The resource is a count quota on some table (its usage is rows, see charge_counted).
    pub counted: bool,
    /// A plan or a per-tenant limit names the resource (else it is unlimited and unmetered).
    pub named: bool,
    pub(crate) anchor: i64,
    pub(crate) bounds: Option<(i64, i64)>,
}
