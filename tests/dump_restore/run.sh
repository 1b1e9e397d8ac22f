#!/usr/bin/env bash
# pg_dump of a database using pg_tenant, whose application tables and template belong to an
# ordinary role (tests/dump_restore/setup.sql), restored into fresh databases four ways: pg_restore with
# its default options, with --single-transaction, with -j 4, and a plain-format dump replayed by
# psql (pg_dump | psql). Each restore must finish without an error; then the registry, plans,
# usage, audit log, protected tables with their owners, policies, triggers and counting indexes,
# and quotas all come back once, and isolation and every kind of quota are enforced as before.
# Prints "test NAME ... ok|FAILED" lines.
SUITE=dump/restore
. "$(dirname "$0")/../lib.sh"
EXPECTED_CHECKS=183   # 2 + 4 restore modes x (1 restore + 22 fingerprint kinds + 21 behaviours) + 5
start_cluster dump "$(suite_port dump_restore)"
sql() { local db=$1; shift; "$PG_BIN/psql" -X -q -t -A -U postgres -d "$db" "$@"; }
# Rows of pg_tenant's catalog that name a role or relation that does not exist (any more).
DANGLING="SELECT (SELECT count(*) FROM tenant_data.gateways g WHERE NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = g.role))
               + (SELECT count(*) FROM tenant_data.tenant_access a WHERE NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = a.role))
               + (SELECT count(*) FROM tenant_data.protected_relations p WHERE NOT EXISTS (SELECT FROM pg_class c WHERE c.oid = p.relid))"
as_role() { local role=$1 db=$2; shift 2; "$PG_BIN/psql" -X -q -t -A -U "$role" -d "$db" "$@" 2>&1; }
# acting ROLE DB TENANT ARGS...: psql's output and messages as ROLE acting as TENANT.
acting() { local role=$1 db=$2 tenant=$3; shift 3; as_role "$role" "$db" -c "SELECT tenant.set('$tenant') IS NULL" "$@"; }

sql postgres -c "CREATE DATABASE src" || exit 1
sql src -f tests/dump_restore/setup.sql >/dev/null || exit 1
check "the application's tables and the template belong to an ordinary role" "dump_owner|false" \
  "$(sql src -c "SELECT string_agg(DISTINCT c.relowner::regrole::text, ',') || '|' || bool_or(r.rolsuper)
                   FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner
                  WHERE c.relnamespace IN ('app'::regnamespace, 'tpl'::regnamespace, 'tenant_initech'::regnamespace) AND c.relkind IN ('r', 'p')")"
check "the source's catalog names 3 objects dropped since (a role's two grants, a protected table)" 3 "$(sql src -c "$DANGLING")"
"$PG_BIN/pg_dump" -U postgres -Fc -f "$dir/src.dump" src || exit 1
sql src -v ON_ERROR_STOP=1 -f tests/dump_restore/fingerprint.sql > "$dir/src.fingerprint" || exit 1

# restore MODE: a new database restored_MODE, restored from the dump the way MODE says; prints
# what the tools reported (nothing when all went well) and their exit status.
restore() {
  local db=restored_$1 out rc
  sql postgres -c "CREATE DATABASE $db" >/dev/null || return 1
  case $1 in
    default) out=$("$PG_BIN/pg_restore" -U postgres -d "$db" "$dir/src.dump" 2>&1) ;;
    single) out=$("$PG_BIN/pg_restore" -U postgres --exit-on-error --single-transaction -d "$db" "$dir/src.dump" 2>&1) ;;
    jobs) out=$("$PG_BIN/pg_restore" -U postgres -j 4 -d "$db" "$dir/src.dump" 2>&1) ;;
    plain) out=$({ "$PG_BIN/pg_dump" -U postgres src | "$PG_BIN/psql" -X -q -U postgres -v ON_ERROR_STOP=1 -d "$db"; } 2>&1 >/dev/null) ;;
  esac
  rc=$?
  echo "${out}exit=$rc"
}

# restored MODE: the database restored_MODE holds what src held and behaves as src did.
restored() {
  local db=restored_$1 kind value other
  # (A query that fails here leaves the file empty: every kind's check below fails.)
  sql "$db" -v ON_ERROR_STOP=1 -f tests/dump_restore/fingerprint.sql > "$dir/$db.fingerprint"
  while IFS='|' read -r kind value; do
    other=$(grep "^$kind|" "$dir/$db.fingerprint" | cut -d'|' -f2-)
    check "$1: $kind identical after restore" "$value" "$other"
  done < "$dir/src.fingerprint"
  # A dropped object's oid, restored, would name whatever has that oid here.
  check "$1: no grant or protected relation names a missing role or table" 0 "$(sql "$db" -c "$DANGLING")"
  check "$1: exactly one default plan" 1 "$(sql "$db" -c "SELECT count(*) FROM tenant_data.plans WHERE name = 'default'")"

  # Isolation: the application role sees its tenant's rows only, and needs a tenant.
  check "$1: isolation: acme sees its 5 docs" 5 "$(acting dump_app "$db" acme -c "SELECT count(*) FROM app.docs" | tail -1)"
  check "$1: isolation: no tenant, no rows (PT001)" 1 "$(as_role dump_app "$db" -c '\set VERBOSITY verbose' -c "SELECT count(*) FROM app.docs" | grep -c 'PT001')"
  check "$1: isolation: dump_acme may not act as globex" 1 "$(as_role dump_acme "$db" -c "SELECT tenant.set('globex')" | grep -c 'may not act as tenant')"
  check "$1: isolation: a partition queried directly is filtered" 2 "$(acting dump_app "$db" acme -c "SELECT count(*) FROM app.events_2026" | tail -1)"
  # Quotas of every kind continue from their restored usage.
  check "$1: count quota: acme's 6th doc is refused" 1 "$(acting dump_app "$db" acme -c "INSERT INTO app.docs VALUES (6, 'x')" | grep -c 'quota exceeded for "docs": 5 of 5')"
  check "$1: count quota: after a delete one more fits" inserted "$(acting dump_app "$db" acme -c "DELETE FROM app.docs WHERE id = 1" -c "INSERT INTO app.docs VALUES (6, 'x') RETURNING 'inserted'" | tail -1)"
  check "$1: meter quota: a 3rd event this month fits, a 4th is refused" "inserted|1" \
    "$(acting dump_app "$db" acme -c "INSERT INTO app.events VALUES (4, '2026-05-01') RETURNING 'inserted'" | tail -1)|$(acting dump_app "$db" acme -c "INSERT INTO app.events VALUES (5, '2026-05-02')" | grep -c 'quota exceeded for "event_rows": 3 of 3')"
  check "$1: bytes quota: a 500-character file is refused, a 100-character one fits" "1|inserted" \
    "$(acting dump_app "$db" acme -c "INSERT INTO app.files VALUES (2, repeat('b', 500))" | grep -c 'quota exceeded for "file_bytes"')|$(acting dump_app "$db" acme -c "INSERT INTO app.files VALUES (3, repeat('c', 100)) RETURNING 'inserted'" | tail -1)"
  check "$1: calls: restored monthly usage continues (7 of 100 used, one more leaves 92)" 92 "$(acting dump_app "$db" acme -c "SELECT tenant.consume('calls')" | tail -1)"
  check "$1: plan settings survive: acting as acme, its own work_mem and its plan's statement_timeout" "24MB|45s" \
    "$(acting dump_app "$db" acme -c "SELECT current_setting('work_mem') || '|' || current_setting('statement_timeout')" | tail -1)"
  check "$1: suspension survives: globex cannot write" 1 "$(acting dump_app "$db" globex -c "INSERT INTO app.docs VALUES (101, 'x')" | grep -c 'is suspended')"
  # The schema tenant, cloned from dump_owner's template.
  check "$1: schema tenant: initech sees its 2 items through its search_path" "tenant_initech, \"\$user\", public, pg_temp|2" \
    "$(as_role dump_app "$db" -c "SELECT tenant.set('initech') IS NULL" -c "SHOW search_path" -c "SELECT count(*) FROM items" | tail -2 | paste -sd'|')"
  check "$1: schema tenant: acme sees none of initech's items" 0 "$(acting dump_app "$db" acme -c "SELECT count(*) FROM tenant_initech.items" | tail -1)"
  check "$1: schema tenant: the restored sequence continues (next id 3)" 3 "$(acting dump_app "$db" initech -c "INSERT INTO items (name) VALUES ('desk') RETURNING id" | tail -1)"
  check "$1: schema tenant: its count quota refuses a 4th item" 1 "$(acting dump_app "$db" initech -c "INSERT INTO items (name) VALUES ('lamp')" | grep -c 'quota exceeded for "items": 3 of 3')"
  check "$1: schema tenant: a new one cloned from the restored template counts its items" "t|1" \
    "$(sql "$db" -c "SELECT tenant.create('hooli', plan => 'free', isolation => 'schema', template => 'tpl') IS NOT NULL")|$(sql "$db" -c "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = 'tenant_hooli.items'::regclass AND a.amname = 'tenant_quota'")"
  check "$1: schema tenant: no drift from the template" 0 "$(sql "$db" -c "SELECT count(*) FROM tenant.schema_drift()")"
  check "$1: schema tenant: a migration re-run skips every schema" 0 "$(sql "$db" -c "SET client_min_messages = warning" -c "SELECT tenant.migrate('001_sku', 'ALTER TABLE items ADD COLUMN sku text')" | tail -1)"
  check "$1: the tenant parameter still cannot be forged" t "$(as_role dump_app "$db" -c "SET pg_tenant.tenant_id = '00000000-0000-0000-0000-000000000000'" -c "SELECT tenant.current(true) IS NULL" | tail -1)"
}

for mode in default single jobs plain; do
  check "$mode: the restore reports nothing and succeeds" "exit=0" "$(restore "$mode")"
  restored "$mode"
done

# A server without the extension: simulated by restoring the same dump with the extension's name
# changed to one that is not installed. The restore stops at CREATE EXTENSION and leaves nothing.
sql postgres -c "CREATE DATABASE nolib" >/dev/null
"$PG_BIN/pg_restore" -f - "$dir/src.dump" | sed 's/EXTENSION IF NOT EXISTS pg_tenant /EXTENSION IF NOT EXISTS pg_tenant_not_installed /' > "$dir/nolib.sql"
nolib=$("$PG_BIN/psql" -X -q -U postgres -d nolib -v ON_ERROR_STOP=1 --single-transaction -f "$dir/nolib.sql" 2>&1)
check "without the extension the restore fails clearly" 1 "$(echo "$nolib" | grep -c 'extension "pg_tenant_not_installed" is not available\|could not open extension control file')"
check "... and restores nothing" 0 "$(sql nolib -c "SELECT count(*) FROM pg_class WHERE relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'pg_toast'::regnamespace)")"

# DROP EXTENSION: refused while tables depend on it; clean once they are unprotected.
check "DROP EXTENSION is refused while tables are protected" 1 "$(sql restored_single -c "DROP EXTENSION pg_tenant" 2>&1 | grep -c 'other objects depend on it')"
sql restored_single -c "SELECT tenant.detach_quota(t, r) FROM (VALUES ('app.docs'::regclass, 'docs'), ('app.events', 'event_rows'), ('app.files', 'file_bytes'), ('tpl.items', 'items')) q(t, r)" \
  -c "SELECT tenant.drop(slug) FROM tenant_data.tenants WHERE isolation = 'schema'" \
  -c "SELECT tenant.unprotect(table_name) FROM tenant.protected_tables WHERE parent IS NULL" >/dev/null
# (The schema itself is not an extension member in PostgreSQL: it stays, empty.)
check "after unprotect, DROP EXTENSION removes every object" "0|0|0" \
  "$(sql restored_single -c "DROP EXTENSION pg_tenant" 2>&1; sql restored_single -c "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'tenant'::regnamespace) || '|' || (SELECT count(*) FROM pg_proc WHERE pronamespace = 'tenant'::regnamespace) || '|' || (SELECT count(*) FROM pg_policy)")"
check "the data stays" 6 "$(sql restored_single -c "SELECT count(*) FROM app.docs")"
exit "$failed"
