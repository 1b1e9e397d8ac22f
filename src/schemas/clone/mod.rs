//! `tenant.clone_schema(source, target, with_data)`: a faithful copy of a schema, made from the
//! catalogs in the caller's transaction (all of it or nothing).
//!
//! The statements come from [`catalog`] (PostgreSQL's own deparsers, read with the source on
//! the search_path), are put in an order that satisfies their dependencies (pg_depend, like
//! pg_dump's sort), have what still names the source rewritten ([`rewrite`]) and are run with
//! the target on the search_path, as the caller: clone_schema is not SECURITY DEFINER, so it
//! can only copy what the caller can read and create what the caller could create by hand.
//!
//! The source's owners' code never runs with the caller's rights (a superuser provisioning a
//! schema tenant from a template an ordinary role owns): each object gets its owner right
//! after it is created, as in a pg_dump restore, so PostgreSQL builds indexes and refreshes
//! materialized views as that owner; the statements during which PostgreSQL evaluates an
//! owner's expressions as the current user (see [`catalog::phase`]) run as that owner inside a
//! security-restricted operation, like VACUUM or REINDEX.

mod catalog;
mod rewrite;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use pgrx::pg_sys;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use pgrx::spi::quote_identifier;

use crate::error::{guarded, required, TenantError};
use crate::gucs::with_settings;
use crate::owner::{as_role, as_role_restricted, role_name};
use catalog::phase;
pub use rewrite::{Rewriter, Scope};

/// One statement (or a few, `;`-separated) of the clone.
struct Step {
    phase: i32,
    /// Definitions (phase 1) are sorted by their dependencies between these keys.
    node: Option<String>,
    ord: i64,
    /// What the statement counts as in clone_schema's result.
    kind: Option<String>,
    ddl: String,
    /// A function definition: its body is rewritten too, and its SET search_path.
    body: bool,
    /// Run as this role (a GRANT made by someone other than the owner).
    run_as: Option<pg_sys::Oid>,
    /// Run as this role, the owner of what the statement creates or acts on, inside a
    /// security-restricted operation.
    as_owner: Option<pg_sys::Oid>,
}

/// A dependency between two definitions (their `node` keys): `object` needs `needs` first.
struct Dependency {
    object: String,
    needs: String,
}

/// What the catalogs say the clone must do: its statements and the dependencies that order them.
struct Plan {
    steps: Vec<Step>,
    dependencies: Vec<Dependency>,
}

/// The kinds clone_schema reports, in the order it reports them.
const KINDS: &[&str] = &[
    "collation",
    "type",
    "domain",
    "function",
    "procedure",
    "aggregate",
    "sequence",
    "table",
    "view",
    "materialized view",
    "index",
    "constraint",
    "foreign key",
    "trigger",
    "rule",
    "policy",
    "statistics",
    "comment",
    "privilege",
    "rows",
];

#[pg_extern(sql = r#"
CREATE FUNCTION tenant.clone_schema(source name, target name, with_data boolean DEFAULT false)
RETURNS TABLE (kind text, cloned bigint) VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.clone_schema(name, name, boolean) IS 'pg_tenant: create schema target as an exact copy of schema source (and its rows with with_data); returns how many objects of each kind were cloned';
"#)]
fn clone_schema(
    source: Option<&core::ffi::CStr>,
    target: Option<&core::ffi::CStr>,
    with_data: Option<bool>,
) -> TableIterator<'static, (name!(kind, String), name!(cloned, i64))> {
    guarded(|| {
        // `name` arguments arrive as C strings.
        let source = required(source, "source").to_string_lossy().into_owned();
        let target = required(target, "target").to_string_lossy().into_owned();
        let with_data = required(with_data, "with_data");
        let counts = clone(&source, &target, with_data);
        TableIterator::new(
            KINDS
                .iter()
                .map(move |k| (k.to_string(), counts.get(*k).copied().unwrap_or(0))),
        )
    })
}

/// Clones `source` into a new schema `target`; returns the number of objects cloned per kind.
pub fn clone(source: &str, target: &str, with_data: bool) -> HashMap<String, i64> {
    let source_oid = check_names(source, target);
    let steps = with_settings(
        &[(
            "search_path",
            format!("pg_catalog, {}, pg_temp", quote_identifier(source)),
        )],
        || {
            let members = Members::read(source_oid);
            refuse_unsupported(source_oid, source, &members);
            (
                read_steps(source_oid, source, target, &members),
                members.names(source_oid),
            )
        },
    );
    let (plan, names) = steps;
    let steps = order(plan, with_data);
    let rewriter = Rewriter::new(source, target, names);
    let mut counts: HashMap<String, i64> = HashMap::new();
    let target_path = format!("pg_catalog, {}, pg_temp", quote_identifier(target));
    let settings = [
        ("search_path", target_path.clone()),
        // Bodies may name objects created later, as in a pg_dump restore.
        ("check_function_bodies", "off".to_string()),
    ];
    with_settings(&settings, || {
        Spi::run(&format!("CREATE SCHEMA {}", quote_identifier(target)))
            .unwrap_or_else(|e| error!("pg_tenant: {e}"));
        for step in &steps {
            let reads_source = matches!(step.phase, phase::DATA | phase::SEQUENCE_VALUES);
            let ddl = if reads_source {
                // Built with format(%I) alone, and meant to name the source.
                step.ddl.clone()
            } else if step.body {
                let ddl = retarget_search_path(&step.ddl, source, target);
                rewriter.rewrite(&ddl, Scope::Everywhere)
            } else {
                rewriter.rewrite(&step.ddl, Scope::Code)
            };
            debug1!("clone_schema: {ddl}");
            let processed = match (step.as_owner, step.run_as) {
                // A copy of a count quota's index (on plain columns, without a predicate: it
                // evaluates nothing), built before the triggers that record the quota on the
                // copy exist: the caller issues it, as attach_quota() would.
                _ if counting_index_step(step) => {
                    crate::quotas::row_counter::issuing(|| execute(&ddl, false))
                }
                (Some(owner), _) => as_owner(owner, target, step.phase, || {
                    if step.phase == phase::DATA {
                        // Row security never silently thins the copy out: a source table the
                        // caller would only partly see (through the view) is an error (42501).
                        // The statement names everything with its schema: the path stays pinned.
                        with_settings(&[("row_security", "off".to_string())], || {
                            execute(&ddl, true)
                        })
                    } else {
                        with_settings(&[("search_path", target_path.clone())], || {
                            execute(&ddl, false)
                        })
                    }
                }),
                (None, Some(role)) => as_role(role, || execute(&ddl, false)),
                (None, None) => execute(&ddl, false),
            };
            if let Some(kind) = &step.kind {
                *counts.entry(kind.clone()).or_default() +=
                    if kind == "rows" { processed } else { 1 };
            }
        }
    });
    // The copies of the source's protected tables are protected as the originals are (their
    // policies and guard were cloned with them).
    crate::isolation::policies::register_copies(source, target);
    counts
}

/// Whether `step` creates a copy of a tenant_quota index of the source (on plain columns
/// without a predicate; its `ord` is the source index).
fn counting_index_step(step: &Step) -> bool {
    step.kind.as_deref() == Some("index")
        && crate::quotas::row_counter::is_plain_quota_index(pg_sys::Oid::from(step.ord as u32))
}

/// Runs `f` as `owner` (of something the source holds, and so of its clone) inside a
/// security-restricted operation. The target schema belongs to the source schema's owner; an
/// owner of something in it who may not use it (or, to create something, create in it) is
/// granted that on the new schema for the statement only. A data copy reads the source through
/// the caller's view, so row security applies to it as to the caller (FORCE included); nothing
/// else of the clone reads rows.
fn as_owner<R>(owner: pg_sys::Oid, target: &str, step_phase: i32, f: impl FnOnce() -> R) -> R {
    // (CREATE for what it creates, indexes included; a data copy only writes.)
    let wanted: &[&str] = if step_phase == phase::DATA {
        &["USAGE"]
    } else {
        &["USAGE", "CREATE"]
    };
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|privilege| {
            !Spi::get_one_with_args::<bool>(
                "SELECT pg_catalog.has_schema_privilege($1, $2, $3)",
                &[owner.into(), target.into(), (*privilege).into()],
            )
            .ok()
            .flatten()
            .unwrap_or(false)
        })
        .collect();
    let schema_grant = |verb: &str, preposition: &str| {
        if !missing.is_empty() {
            let sql = format!(
                "{verb} {} ON SCHEMA {} {preposition} {}",
                missing.join(", "),
                quote_identifier(target),
                quote_identifier(role_name(owner)),
            );
            Spi::run(&sql).unwrap_or_else(|e| error!("pg_tenant: {e}"));
        }
    };
    schema_grant("GRANT", "TO");
    let result = as_role_restricted(owner, f);
    schema_grant("REVOKE", "FROM");
    result
}

/// The source exists and is an ordinary schema; the target is a new, valid name.
fn check_names(source: &str, target: &str) -> pg_sys::Oid {
    if target.is_empty() {
        TenantError::invalid("target", "a schema name must not be empty").raise();
    }
    if source.is_empty() {
        TenantError::invalid("source", "a schema name must not be empty").raise();
    }
    let oid = Spi::get_one_with_args::<pg_sys::Oid>(
        "SELECT oid FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) $1",
        &[source.into()],
    )
    .ok()
    .flatten()
    .unwrap_or_else(|| TenantError::UnknownSchema(source.to_string()).raise());
    let system = source == "pg_catalog"
        || source == "information_schema"
        || source.starts_with("pg_toast")
        || source.starts_with("pg_temp")
        || source == "tenant"
        || source == "tenant_data";
    if system {
        TenantError::invalid("source", format!("\"{source}\" is a system schema")).raise();
    }
    let target_exists = Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) $1)",
        &[target.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false);
    if target_exists {
        TenantError::SchemaExists(target.to_string()).raise();
    }
    oid
}

/// The source's relations, types and functions ($4, $5, $6 of the catalog queries).
struct Members {
    relations: Vec<pg_sys::Oid>,
    types: Vec<pg_sys::Oid>,
    functions: Vec<pg_sys::Oid>,
}

impl Members {
    /// Found through the schema's own dependency entries (pg_depend's index), not by scanning
    /// pg_class, pg_type and pg_proc, which grow with every tenant schema: everything PostgreSQL
    /// creates in a schema depends on it, except what belongs to something there (indexes,
    /// a composite type's relation, row and array types, multiranges), added from their owners.
    fn read(source_oid: pg_sys::Oid) -> Members {
        let list = |query: &str| {
            Spi::get_one_with_args::<Vec<pg_sys::Oid>>(query, &[source_oid.into()])
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        let members = |catalog: &str| {
            format!(
                "SELECT objid FROM pg_catalog.pg_depend WHERE refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
                    AND refobjid OPERATOR(pg_catalog.=) $1 AND classid OPERATOR(pg_catalog.=) 'pg_catalog.{catalog}'::pg_catalog.regclass
                    AND deptype OPERATOR(pg_catalog.=) 'n'"
            )
        };
        let (classes, types, procs) = (members("pg_class"), members("pg_type"), members("pg_proc"));
        Members {
            relations: list(&format!(
                "WITH r AS ({classes} UNION SELECT typrelid FROM pg_catalog.pg_type WHERE oid OPERATOR(pg_catalog.=) ANY (ARRAY({types})) AND typrelid OPERATOR(pg_catalog.<>) 0)
                 SELECT ARRAY(SELECT objid FROM r UNION SELECT indexrelid FROM pg_catalog.pg_index WHERE indrelid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT objid FROM r)))"
            )),
            types: list(&format!(
                "WITH t AS ({types}
                           UNION SELECT reltype FROM pg_catalog.pg_class WHERE oid OPERATOR(pg_catalog.=) ANY (ARRAY({classes})) AND reltype OPERATOR(pg_catalog.<>) 0
                           UNION SELECT rngmultitypid FROM pg_catalog.pg_range WHERE rngtypid OPERATOR(pg_catalog.=) ANY (ARRAY({types})))
                 SELECT ARRAY(SELECT objid FROM t UNION SELECT typarray FROM pg_catalog.pg_type
                              WHERE oid OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT objid FROM t)) AND typarray OPERATOR(pg_catalog.<>) 0)"
            )),
            functions: list(&format!("SELECT ARRAY({procs})")),
        }
    }

    /// The names of the source's objects (what `source.name` can refer to).
    fn names(&self, source_oid: pg_sys::Oid) -> HashSet<String> {
        Spi::get_one_with_args::<Vec<String>>(
            "SELECT ARRAY(SELECT relname::pg_catalog.text FROM pg_catalog.pg_class WHERE oid OPERATOR(pg_catalog.=) ANY ($2)
                    UNION SELECT typname::pg_catalog.text FROM pg_catalog.pg_type WHERE oid OPERATOR(pg_catalog.=) ANY ($3)
                    UNION SELECT proname::pg_catalog.text FROM pg_catalog.pg_proc WHERE oid OPERATOR(pg_catalog.=) ANY ($4)
                    UNION SELECT collname::pg_catalog.text FROM pg_catalog.pg_collation WHERE collnamespace OPERATOR(pg_catalog.=) $1
                    UNION SELECT stxname::pg_catalog.text FROM pg_catalog.pg_statistic_ext WHERE stxnamespace OPERATOR(pg_catalog.=) $1)",
            &[source_oid.into(), self.relations.clone().into(), self.types.clone().into(), self.functions.clone().into()],
        )
        .ok()
        .flatten()
        .unwrap_or_default()
        .into_iter()
        .collect()
    }

    fn args<'a>(
        &self,
        source_oid: pg_sys::Oid,
        source: &'a str,
        target: &'a str,
    ) -> [pgrx::datum::DatumWithOid<'a>; 6] {
        [
            source_oid.into(),
            target.into(),
            source.into(),
            self.relations.clone().into(),
            self.types.clone().into(),
            self.functions.clone().into(),
        ]
    }
}

fn refuse_unsupported(source_oid: pg_sys::Oid, source: &str, members: &Members) {
    let objects = Spi::connect(|client| {
        let mut found = Vec::new();
        for row in client.select(
            catalog::UNSUPPORTED,
            None,
            &members.args(source_oid, source, source),
        )? {
            found.extend(row.get::<String>(1)?);
        }
        Ok::<_, pgrx::spi::Error>(found)
    })
    .unwrap_or_else(|e| error!("pg_tenant: reading schema {source} failed: {e}"));
    if !objects.is_empty() {
        TenantError::CloneUnsupported {
            schema: source.to_string(),
            objects,
        }
        .raise();
    }
}

fn read_steps(source_oid: pg_sys::Oid, source: &str, target: &str, members: &Members) -> Plan {
    Spi::connect(|client| {
        let args = members.args(source_oid, source, target);
        let mut steps = Vec::new();
        for query in catalog::step_queries() {
            for row in client.select(query.as_str(), None, &args)? {
                let ddl: Option<String> = row.get(5)?;
                let Some(ddl) = ddl.filter(|d| !d.is_empty()) else {
                    continue;
                };
                steps.push(Step {
                    phase: row.get(1)?.unwrap_or(0),
                    node: row.get(2)?,
                    ord: row.get(3)?.unwrap_or(0),
                    kind: row.get(4)?,
                    ddl,
                    body: row.get(6)?.unwrap_or(false),
                    run_as: row.get(7)?,
                    as_owner: row.get(8)?,
                });
            }
        }
        let mut dependencies = Vec::new();
        for row in client.select(catalog::DEPENDENCIES, None, &args)? {
            if let (Some(object), Some(needs)) = (row.get::<String>(1)?, row.get::<String>(2)?) {
                dependencies.push(Dependency { object, needs });
            }
        }
        Ok::<_, pgrx::spi::Error>(Plan {
            steps,
            dependencies,
        })
    })
    .unwrap_or_else(|e| error!("pg_tenant: reading schema {source} failed: {e}"))
}

/// Phases in order; definitions in an order their dependencies allow (oid order otherwise, which
/// is creation order); materialized views refreshed in their definitions' order.
fn order(
    Plan {
        steps,
        dependencies,
    }: Plan,
    with_data: bool,
) -> Vec<Step> {
    let (definitions, rest): (Vec<Step>, Vec<Step>) = steps
        .into_iter()
        .partition(|s| s.phase == phase::DEFINITION);
    let mut definitions = definitions;
    definitions.sort_by_key(|s| s.ord);
    let position: HashMap<String, usize> = definitions
        .iter()
        .enumerate()
        .filter_map(|(i, s)| s.node.clone().map(|n| (n, i)))
        .collect();
    let mut needs: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); definitions.len()];
    let mut needed_by: Vec<Vec<usize>> = vec![Vec::new(); definitions.len()];
    for d in &dependencies {
        if let (Some(&ia), Some(&ib)) = (position.get(&d.object), position.get(&d.needs)) {
            if needs[ia].insert(ib) {
                needed_by[ib].push(ia);
            }
        }
    }
    let mut ready: BTreeSet<usize> = (0..definitions.len())
        .filter(|&i| needs[i].is_empty())
        .collect();
    let mut done = vec![false; definitions.len()];
    let mut sorted_index = Vec::with_capacity(definitions.len());
    while sorted_index.len() < definitions.len() {
        // A cycle (functions calling each other through types, say): take the oldest object.
        let next = match ready.pop_first() {
            Some(i) => i,
            None => (0..definitions.len())
                .find(|&i| !done[i])
                .expect("an object is left"),
        };
        if done[next] {
            continue;
        }
        done[next] = true;
        sorted_index.push(next);
        for &dependent in &needed_by[next] {
            needs[dependent].remove(&next);
            if needs[dependent].is_empty() && !done[dependent] {
                ready.insert(dependent);
            }
        }
    }
    let rank: HashMap<String, usize> = sorted_index
        .iter()
        .enumerate()
        .filter_map(|(r, &i)| definitions[i].node.clone().map(|n| (n, r)))
        .collect();
    let mut slots: Vec<Option<Step>> = definitions.into_iter().map(Some).collect();
    let sorted: Vec<Step> = sorted_index
        .into_iter()
        .filter_map(|i| slots[i].take())
        .collect();
    let (owners, mut rest): (Vec<Step>, Vec<Step>) = rest.into_iter().partition(|s| {
        s.phase == phase::OWNER
            && s.node
                .as_ref()
                .is_some_and(|n| n == "schema" || rank.contains_key(n))
    });
    let mut ordered = with_owners(sorted, owners);

    rest.retain(|s| with_data || !matches!(s.phase, phase::DATA | phase::SEQUENCE_VALUES));
    let key = |s: &Step| -> (i32, i64) {
        let within = match (s.phase, &s.node) {
            (phase::REFRESH, Some(n)) => rank.get(n).copied().unwrap_or(0) as i64,
            _ => s.ord,
        };
        (s.phase, within)
    };
    // Stable: statements of one object keep the order their query gave them.
    let mut by_key: BTreeMap<(i32, i64), Vec<Step>> = BTreeMap::new();
    for s in rest {
        by_key.entry(key(&s)).or_default().push(s);
    }
    ordered.extend(by_key.into_values().flatten());
    ordered
}

/// Each object's owner right after its definition (the schema's before anything), as in a
/// pg_dump restore: PostgreSQL then builds indexes and refreshes materialized views as that
/// owner, never as the caller.
fn with_owners(definitions: Vec<Step>, owners: Vec<Step>) -> Vec<Step> {
    let mut by_node: HashMap<String, Vec<Step>> = HashMap::new();
    for s in owners {
        by_node
            .entry(s.node.clone().unwrap_or_default())
            .or_default()
            .push(s);
    }
    let mut ordered: Vec<Step> = by_node.remove("schema").unwrap_or_default();
    for definition in definitions {
        let owner = definition.node.as_ref().and_then(|n| by_node.remove(n));
        ordered.push(definition);
        ordered.extend(owner.into_iter().flatten());
    }
    ordered
}

/// Runs one statement of the clone; returns the rows it processed when asked (data copies).
fn execute(ddl: &str, count: bool) -> i64 {
    run_counting(ddl, count, &format!("Statement: {ddl}"))
}

/// Runs SQL (one or more statements); a failure keeps PostgreSQL's error and adds `context`
/// to its DETAIL, so the caller learns which step of a clone or migration failed.
pub fn run_reporting(sql: &str, context: &str) {
    run_counting(sql, false, context);
}

fn run_counting(sql: &str, count: bool, context: &str) -> i64 {
    PgTryBuilder::new(|| {
        let result = if count {
            Spi::connect_mut(|client| client.update(sql, None, &[]).map(|t| t.len() as i64))
        } else {
            Spi::run(sql).map(|_| 0)
        };
        result.unwrap_or_else(|e| error!("pg_tenant: {e}"))
    })
    .catch_others(|caught| match caught {
        CaughtError::PostgresError(e) | CaughtError::ErrorReport(e) => {
            let detail = match e.detail() {
                Some(d) if !d.is_empty() => format!("{d}\n{context}"),
                _ => context.to_string(),
            };
            crate::error::reraise_with_detail(&e, &detail)
        }
        other => other.rethrow(),
    })
    .execute()
}

/// pg_get_functiondef prints `SET search_path TO 'src', 'public'`: point it at the target.
fn retarget_search_path(def: &str, source: &str, target: &str) -> String {
    let mut lines: Vec<String> = Vec::new();
    let mut in_header = true;
    for (i, line) in def.split('\n').enumerate() {
        if i > 0 && !line.starts_with(' ') {
            in_header = false;
        }
        match line.strip_prefix(" SET search_path TO ") {
            Some(value) if in_header => {
                let names: Vec<String> = value
                    .split(", ")
                    .map(|lit| {
                        let name = lit.trim_matches('\'').replace("''", "'");
                        let name = if name == source {
                            target.to_string()
                        } else {
                            name
                        };
                        pgrx::spi::quote_literal(&name)
                    })
                    .collect();
                lines.push(format!(" SET search_path TO {}", names.join(", ")));
            }
            _ => lines.push(line.to_string()),
        }
    }
    lines.join("\n")
}
