//! Schema-isolated tenants: a tenant with `isolation => 'schema'` gets its own schema cloned from
//! a template, guarded so that only that tenant reads or writes it; `tenant.set` puts it first
//! on the search_path; `tenant.migrate` changes the template and every tenant schema alike.
//!
//! What guards a tenant schema (installed on every table by [`secure`], again after migrations):
//! - policy `tenant_schema_isolation`, RESTRICTIVE, `tenant.current() = '<tenant id>'`, with
//!   ENABLE and FORCE ROW LEVEL SECURITY, so another tenant's session sees no row and writes none;
//! - policy `tenant_schema_access`, PERMISSIVE `true`, only where the template had no permissive
//!   policy of its own (row security grants nothing without one);
//! - trigger `tenant_schema_guard`, BEFORE each statement: no tenant, a suspended tenant, or a
//!   `schema_bytes` quota already passed (see tenant.refresh_usage) stop writes; so does TRUNCATE.

pub mod clone;

use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::{quote_identifier, quote_literal};

use crate::error::{guarded, required, TenantError};
use crate::gucs::with_settings;
use crate::isolation::policies::ACCESS_QUAL;
use crate::owner::{
    as_extension_owner, bypasses_rls, current_role, run_as_owner, run_with_args, PINNED_SEARCH_PATH,
};
use crate::registry;
use crate::types::Tenant;

extension_sql_file!(
    "../../sql/schemas.sql",
    name = "schema_tenants",
    requires = ["registry_tables", "quota_tables", schema_guard]
);

pub const ISOLATION_POLICY: &str = "tenant_schema_isolation";
pub const ACCESS_POLICY: &str = "tenant_schema_access";
pub const GUARD_TRIGGER: &str = "tenant_schema_guard";
/// The resource a schema tenant's total size is metered as.
pub const SCHEMA_BYTES: &str = "schema_bytes";

/// `tenant_<slug>`, dashes made underscores; refused when longer than a PostgreSQL name.
pub fn schema_name_for(slug: &str) -> String {
    let name = format!("tenant_{}", slug.replace('-', "_"));
    if name.len() > 63 {
        TenantError::invalid("slug", "is too long for a schema tenant: its schema name would pass 63 characters (56 for the slug)")
            .raise();
    }
    name
}

/// Creates the tenant's schema from the template (in the caller's transaction) and guards it.
pub fn provision(tenant: pgrx::Uuid, template: &str, schema: &str) {
    // Not while a migration runs: the clone and the migrations it records must agree.
    crate::owner::take_named_lock("migrate", false, "SELECT 1");
    crate::schemas::clone::clone(template, schema, false);
    secure(schema, tenant);
    run_as_owner(
        crate::owner::data_sql("INSERT INTO tenant_data.schema_templates (schema_name) VALUES ($1) ON CONFLICT DO NOTHING"),
        &[template.into()],
    );
    // The clone has the template's structure, migrations included.
    run_as_owner(
        crate::owner::data_sql("INSERT INTO tenant_data.schema_migrations (version, schema_name, applied_at, duration)
         SELECT version, $2, pg_catalog.now(), '0'::pg_catalog.interval FROM tenant_data.schema_migrations
         WHERE schema_name OPERATOR(pg_catalog.=) $1"),
        &[template.into(), schema.into()],
    );
}

/// Installs the guard policies and trigger on every table of a tenant schema that lacks them.
/// Runs as the caller (who provisions or migrates), with the search_path pinned: the tenant
/// schema's owner (the template's) may have put functions and operators on the caller's path,
/// and every name here is qualified.
pub fn secure(schema: &str, tenant: pgrx::Uuid) {
    with_settings(&[("search_path", PINNED_SEARCH_PATH.to_string())], || {
        secure_tables(schema, tenant)
    })
}

fn secure_tables(schema: &str, tenant: pgrx::Uuid) {
    let tables = Spi::connect(|client| {
        let mut tables = Vec::new();
        for row in client.select(
            "SELECT c.oid, pg_catalog.format('%I.%I', n.nspname, c.relname),
                    EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) c.oid
                            AND p.polname OPERATOR(pg_catalog.=) $2),
                    EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid OPERATOR(pg_catalog.=) c.oid AND p.polpermissive),
                    EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid OPERATOR(pg_catalog.=) c.oid
                            AND t.tgname OPERATOR(pg_catalog.=) $3)
             FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
             -- the schema's tables through pg_depend's index: pg_class has none on the namespace
             WHERE c.oid OPERATOR(pg_catalog.=) ANY (ARRAY(
                       SELECT objid FROM pg_catalog.pg_depend
                        WHERE refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
                          AND refobjid OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) $1)
                          AND classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass))
               AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p}'::pg_catalog.\"char\"[]) ORDER BY c.oid",
            None,
            &[schema.into(), ISOLATION_POLICY.into(), GUARD_TRIGGER.into()],
        )? {
            tables.push((
                row.get::<String>(2)?.unwrap_or_default(),
                row.get::<bool>(3)?.unwrap_or(false),
                row.get::<bool>(4)?.unwrap_or(false),
                row.get::<bool>(5)?.unwrap_or(false),
            ));
        }
        Ok::<_, pgrx::spi::Error>(tables)
    })
    .unwrap_or_else(|e| error!("pg_tenant: {e}"));
    let id = quote_literal(tenant.to_string());
    for (table, has_isolation, has_permissive, has_guard) in tables {
        let mut ddl = Vec::new();
        if !has_isolation {
            ddl.push(format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"));
            ddl.push(format!("ALTER TABLE {table} FORCE ROW LEVEL SECURITY"));
            ddl.push(format!(
                "CREATE POLICY {ISOLATION_POLICY} ON {table} AS RESTRICTIVE FOR ALL TO PUBLIC \
                 USING (tenant.current() OPERATOR(pg_catalog.=) {id}::pg_catalog.uuid) \
                 WITH CHECK (tenant.current() OPERATOR(pg_catalog.=) {id}::pg_catalog.uuid)"
            ));
            if !has_permissive {
                ddl.push(format!("CREATE POLICY {ACCESS_POLICY} ON {table} AS PERMISSIVE FOR ALL TO PUBLIC USING ({ACCESS_QUAL}) WITH CHECK ({ACCESS_QUAL})"));
            }
        }
        if !has_guard {
            ddl.push(format!(
                "CREATE TRIGGER {GUARD_TRIGGER} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} \
                 FOR EACH STATEMENT EXECUTE FUNCTION tenant.schema_guard({id})"
            ));
        }
        for statement in ddl {
            run_with_args(&statement, &[]);
        }
    }
}

/// Drops a tenant's schema with everything in it, and forgets its migrations.
pub fn drop_schema(schema: &str) {
    // Without the NOTICE listing every object the cascade drops.
    with_settings(&[("client_min_messages", "warning".to_string())], || {
        run_with_args(
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", quote_identifier(schema)),
            &[],
        )
    });
    run_as_owner(
        crate::owner::data_sql(
            "DELETE FROM tenant_data.schema_migrations WHERE schema_name OPERATOR(pg_catalog.=) $1",
        ),
        &[schema.into()],
    );
}

thread_local! {
    /// The schema tenant.migrate() runs a migration in at this moment.
    static MIGRATING: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` while tenant.migrate() migrates `schema` (see schema_guard).
fn migrating<R>(schema: &str, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<String>);
    impl Drop for Restore {
        fn drop(&mut self) {
            MIGRATING.with(|m| *m.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(MIGRATING.with(|m| m.borrow_mut().replace(schema.to_string())));
    f()
}

/// The statement-level guard of tenant-schema tables; its argument is the schema's tenant id.
#[pg_trigger]
fn schema_guard<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, pgrx::AllocatedByPostgres>>, pgrx::PgTriggerError> {
    guarded(|| {
        // tenant.migrate()'s own statements in the schema it migrates (its owner's code they
        // run is still subject to the schema's row security, as no tenant).
        let schema = trigger.table_schema()?;
        if MIGRATING.with(|m| m.borrow().as_deref() == Some(schema.as_str())) {
            return Ok(None);
        }
        let role = current_role();
        let event = trigger.event();
        if bypasses_rls(role) && registry::current().is_none() {
            return Ok(None);
        }
        if event.fired_by_truncate() {
            let table = format!("{}.{}", trigger.table_schema()?, trigger.table_name()?);
            TenantError::TruncateRefused(table).raise();
        }
        let t = registry::require_writable(
            registry::current().unwrap_or_else(|| TenantError::NoTenant.raise()),
        );
        if !event.fired_by_delete() {
            // Deletes stay allowed: they are how a tenant gets back under its limit.
            crate::quotas::require_within(&t, SCHEMA_BYTES);
        }
        Ok(None)
    })
}

/// Puts the tenant's schema first on the search_path (or, for a shared tenant or none, takes
/// any tenant schema off it), with the same scope as the tenant setting itself.
pub fn apply_search_path(previous: Option<pgrx::Uuid>, tenant: Option<&Tenant>, local: bool) {
    let current = current_search_path();
    let elements: Vec<String> = current
        .split(',')
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    let unquoted = |e: &str| {
        if e.starts_with('"') && e.len() >= 2 {
            e[1..e.len() - 1].replace("\"\"", "\"")
        } else {
            e.to_string()
        }
    };
    // The tenant schemas to take off: usually just the previous tenant's (from the registry
    // cache, no query); the whole list only when the path holds another `tenant_` schema.
    let known: Vec<String> = [
        previous.and_then(|id| registry::lookup(&id.to_string())),
        tenant.cloned(),
    ]
    .into_iter()
    .flatten()
    .filter_map(|t| t.schema_name)
    .collect();
    let tenant_schemas = if elements
        .iter()
        .map(|e| unquoted(e))
        .any(|n| n.starts_with("tenant_") && !known.contains(&n))
    {
        registered_schemas()
    } else {
        known
    };
    let mut wanted: Vec<String> = Vec::new();
    if let Some(schema) = tenant.and_then(|t| t.schema_name.as_deref()) {
        wanted.push(quote_identifier(schema));
    }
    let schema_tenant = !wanted.is_empty();
    for e in elements {
        if !tenant_schemas.contains(&unquoted(&e))
            && !wanted.contains(&e)
            && unquoted(&e) != "pg_temp"
        {
            wanted.push(e);
        }
    }
    // PostgreSQL searches pg_temp first unless the path names it: a TEMP table left behind on a
    // pooled connection would capture unqualified names meant for the tenant's schema.
    wanted.push("pg_temp".to_string());
    let new_path = wanted.join(", ");
    if new_path == current || (!schema_tenant && tenant_schemas.is_empty()) {
        return;
    }
    crate::gucs::set_parameter(c"search_path", &new_path, crate::gucs::set_action(local));
}

fn current_search_path() -> String {
    unsafe {
        let value = pg_sys::GetConfigOption(c"search_path".as_ptr(), false, false);
        if value.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(value)
                .to_string_lossy()
                .into_owned()
        }
    }
}

fn registered_schemas() -> Vec<String> {
    as_extension_owner(|| {
        crate::owner::read_one::<Vec<String>>(
            crate::owner::data_sql("SELECT coalesce(pg_catalog.array_agg(schema_name::pg_catalog.text), '{}') FROM tenant_data.tenants WHERE schema_name IS NOT NULL"),
            &[],
        )
    })
    .unwrap_or_default()
}

#[pg_extern(
    sql = r#"
CREATE FUNCTION tenant.migrate(version text, ddl text)
RETURNS integer VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.migrate(text, text) IS 'pg_tenant: run ddl in every template and schema tenant schema that has not recorded version, all or nothing; returns how many schemas it ran in';
"#,
    requires = ["schema_tenants"]
)]
fn migrate(version: Option<&str>, ddl: Option<&str>) -> i32 {
    guarded(|| migrate_schemas(version, ddl, i32::MAX))
}

#[pg_extern(
    sql = r#"
CREATE FUNCTION tenant.migrate_next(version text, ddl text, batch_size integer DEFAULT 100)
RETURNS integer VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.migrate_next(text, text, integer) IS 'pg_tenant: like tenant.migrate, for at most batch_size schemas; returns how many it ran in (0: all done). CALL tenant.migrate_batches() commits after each batch';
"#,
    requires = ["schema_tenants"]
)]
fn migrate_next(version: Option<&str>, ddl: Option<&str>, batch_size: Option<i32>) -> i32 {
    guarded(|| {
        let batch_size = required(batch_size, "batch_size");
        if batch_size <= 0 {
            TenantError::invalid("batch_size", "must be positive").raise();
        }
        migrate_schemas(version, ddl, batch_size)
    })
}

fn migrate_schemas(version: Option<&str>, ddl: Option<&str>, batch_size: i32) -> i32 {
    let version = required(version, "version");
    let ddl = required(ddl, "ddl");
    if version.trim().is_empty() {
        TenantError::invalid("version", "must not be empty").raise();
    }
    if ddl.trim().is_empty() {
        TenantError::invalid("ddl", "must not be empty").raise();
    }
    // Run one statement at a time (each is exempt from FORCE on its own, see below); a syntax
    // error stops the migration before any schema is touched.
    let statements = split_statements(ddl);
    // One migration at a time (two would both see a schema as pending), and none while a schema
    // tenant is being provisioned (it copies the template's migrations): a named lock no other
    // role can take or block.
    crate::owner::take_named_lock(
        "migrate",
        true,
        crate::owner::data_sql(
            "LOCK TABLE tenant_data.schema_migrations IN SHARE ROW EXCLUSIVE MODE",
        ),
    );
    let pending: Vec<(String, Option<pgrx::Uuid>)> = as_extension_owner(|| {
        Spi::connect(|client| {
            let mut pending = Vec::new();
            for row in client.select(
                crate::owner::data_sql("SELECT s.schema_name::pg_catalog.text, s.tenant_id FROM (
                     SELECT schema_name, NULL::pg_catalog.uuid AS tenant_id, 0 AS rank, ''::pg_catalog.text AS slug FROM tenant_data.schema_templates
                     -- a template dropped since has nothing left to migrate
                     WHERE schema_name IN (SELECT nspname FROM pg_catalog.pg_namespace)
                     UNION ALL
                     SELECT schema_name, id, 1, slug FROM tenant_data.tenants WHERE schema_name IS NOT NULL) s
                 WHERE NOT EXISTS (SELECT 1 FROM tenant_data.schema_migrations m
                                   WHERE m.version OPERATOR(pg_catalog.=) $1 AND m.schema_name OPERATOR(pg_catalog.=) s.schema_name)
                 ORDER BY s.rank, s.slug"),
                None,
                &[version.into()],
            )? {
                pending.push((row.get::<String>(1)?.unwrap_or_default(), row.get::<pgrx::Uuid>(2)?));
            }
            Ok::<_, pgrx::spi::Error>(pending)
        })
        .unwrap_or_else(|e| error!("pg_tenant: {e}"))
    });
    let total = pending.len();
    let mut done = 0;
    for (schema, tenant) in pending.into_iter().take(batch_size as usize) {
        let exists = Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) $1)",
            &[schema.as_str().into()],
        )
        .ok()
        .flatten()
        .unwrap_or(false);
        if !exists {
            TenantError::UnknownSchema(schema).raise();
        }
        done += 1;
        let started = std::time::Instant::now();
        // As the schema's owner (the template's, who owns what is in it) inside a
        // security-restricted operation, as PostgreSQL's maintenance commands act: the owner's
        // constraints, defaults, index expressions and triggers that the DDL evaluates never run
        // with the caller's rights. Each statement of the migration sees every row of the
        // schema's tables (FORCE notwithstanding, see exemption::unfiltered); the owner's code it
        // runs (triggers, defaults, functions) does so with row security as usual.
        let owner = crate::owner::read_one::<pg_sys::Oid>(
            "SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname OPERATOR(pg_catalog.=) $1",
            &[schema.as_str().into()],
        )
        .unwrap_or_else(|| TenantError::UnknownSchema(schema.clone()).raise());
        crate::owner::as_role_restricted(owner, || {
            migrating(&schema, || {
                with_settings(&[("search_path", quote_identifier(&schema))], || {
                    for statement in &statements {
                        crate::exemption::unfiltered(|| {
                            crate::schemas::clone::run_reporting(
                                statement,
                                &format!("migration {version} in schema {schema}"),
                            )
                        })
                    }
                })
            })
        });
        if let Some(tenant) = tenant {
            secure(&schema, tenant);
        }
        let elapsed = started.elapsed();
        run_as_owner(
            crate::owner::data_sql("INSERT INTO tenant_data.schema_migrations (version, schema_name, applied_at, duration)
             VALUES ($1, $2, pg_catalog.clock_timestamp(), pg_catalog.make_interval(secs => $3))"),
            &[
                version.into(),
                schema.as_str().into(),
                elapsed.as_secs_f64().into(),
            ],
        );
        crate::error::notice(&format!("pg_tenant: migration {version} applied to schema {schema} ({done} of {total}) in {:.1} ms", elapsed.as_secs_f64() * 1000.0));
    }
    done
}

#[pg_extern(
    sql = r#"
CREATE FUNCTION tenant.refresh_usage()
RETURNS integer VOLATILE PARALLEL UNSAFE LANGUAGE c AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
COMMENT ON FUNCTION tenant.refresh_usage() IS 'pg_tenant: measure every schema tenant''s schema size as its schema_bytes usage; returns how many it measured';
"#,
    requires = ["schema_tenants"]
)]
fn refresh_usage() -> i32 {
    guarded(|| {
        let sizes = schema_sizes();
        let count = sizes.len() as i32;
        let (ids, bytes): (Vec<pgrx::Uuid>, Vec<i64>) = sizes.into_iter().unzip();
        run_as_owner(
            crate::owner::data_sql("INSERT INTO tenant_data.usage_counters (tenant_id, resource, period_start, used)
             SELECT t, $3, '-infinity', b FROM ROWS FROM (pg_catalog.unnest($1::pg_catalog.uuid[]), pg_catalog.unnest($2::pg_catalog.int8[])) AS u(t, b)
             ON CONFLICT (tenant_id, resource, period_start) DO UPDATE SET used = EXCLUDED.used"),
            &[ids.into(), bytes.into(), SCHEMA_BYTES.into()],
        );
        count
    })
}

/// Each schema tenant's size on disk: its tables, materialized views and indexes, with their
/// TOAST tables and every fork and segment. Measured from the files themselves (a backend's
/// working directory is the data directory): pg_total_relation_size() would open every
/// relation, and building thousands of relation cache entries takes seconds.
fn schema_sizes() -> Vec<(pgrx::Uuid, i64)> {
    let files: Vec<(pgrx::Uuid, String)> = as_extension_owner(|| {
        Spi::connect(|client| {
            let mut files = Vec::new();
            for row in client.select(
                crate::owner::data_sql("WITH own AS (
                     SELECT t.id, c.oid, c.reltoastrelid
                       FROM tenant_data.tenants t
                       JOIN pg_catalog.pg_namespace n ON n.nspname OPERATOR(pg_catalog.=) t.schema_name
                       JOIN pg_catalog.pg_depend d ON d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
                                                  AND d.refobjid OPERATOR(pg_catalog.=) n.oid
                                                  AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                       JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) d.objid AND c.relkind IN ('r', 'm')
                 ), stored AS (
                     SELECT id, oid FROM own
                     UNION ALL SELECT id, reltoastrelid FROM own WHERE reltoastrelid OPERATOR(pg_catalog.<>) 0
                 ), with_indexes AS (
                     SELECT id, oid FROM stored
                     UNION ALL SELECT s.id, i.indexrelid FROM stored s JOIN pg_catalog.pg_index i ON i.indrelid OPERATOR(pg_catalog.=) s.oid
                 )
                 SELECT id, pg_catalog.pg_relation_filepath(oid) FROM with_indexes"),
                None,
                &[],
            )? {
                if let (Some(id), Some(path)) = (row.get::<pgrx::Uuid>(1)?, row.get::<String>(2)?) {
                    files.push((id, path));
                }
            }
            Ok::<_, pgrx::spi::Error>(files)
        })
        .unwrap_or_else(|e| error!("pg_tenant: {e}"))
    });
    let mut sizes: std::collections::BTreeMap<[u8; 16], i64> = std::collections::BTreeMap::new();
    // Every schema tenant gets a row, an empty schema too.
    for id in as_extension_owner(|| {
        Spi::get_one::<Vec<pgrx::Uuid>>(
            crate::owner::data_sql("SELECT pg_catalog.array_agg(id) FROM tenant_data.tenants WHERE schema_name IS NOT NULL"),
        )
    })
    .ok()
    .flatten()
    .unwrap_or_default()
    {
        sizes.insert(*id.as_bytes(), 0);
    }
    for (id, path) in files {
        *sizes.entry(*id.as_bytes()).or_default() += relation_file_bytes(&path);
    }
    sizes
        .into_iter()
        .map(|(id, bytes)| (pgrx::Uuid::from_bytes(id), bytes))
        .collect()
}

/// The bytes of one relation's files: main fork segments (`path`, `path.1`, ...), free space
/// map and visibility map. Files that do not exist (yet) count as 0.
fn relation_file_bytes(path: &str) -> i64 {
    let size = |p: &str| std::fs::metadata(p).map(|m| m.len() as i64).ok();
    let mut total = 0;
    for fork in ["", "_fsm", "_vm", "_init"] {
        let base = format!("{path}{fork}");
        let Some(first) = size(&base) else { continue };
        total += first;
        // Only a full first segment can have more after it.
        let segment_bytes = (pg_sys::RELSEG_SIZE as i64) * (pg_sys::BLCKSZ as i64);
        let mut segment = 1;
        let mut last = first;
        while last == segment_bytes {
            let Some(more) = size(&format!("{base}.{segment}")) else {
                break;
            };
            total += more;
            last = more;
            segment += 1;
        }
    }
    total
}

/// The statements of `sql`, as PostgreSQL's parser splits them (empty ones left out).
fn split_statements(sql: &str) -> Vec<String> {
    let text = std::ffi::CString::new(sql)
        .unwrap_or_else(|_| TenantError::invalid("ddl", "must not contain a NUL byte").raise());
    let bytes = sql.as_bytes();
    let parsed = unsafe { pg_sys::pg_parse_query(text.as_ptr()) };
    let list = unsafe { pgrx::PgList::<pg_sys::RawStmt>::from_pg(parsed) };
    let mut out = Vec::new();
    for raw in list.iter_ptr() {
        let (start, len) = unsafe {
            (
                (*raw).stmt_location.max(0) as usize,
                (*raw).stmt_len as usize,
            )
        };
        let end = if len == 0 {
            bytes.len()
        } else {
            (start + len).min(bytes.len())
        };
        let statement = String::from_utf8_lossy(&bytes[start.min(end)..end])
            .trim()
            .to_string();
        if !statement.is_empty() {
            out.push(statement);
        }
    }
    out
}
