#!/usr/bin/env bash
# pg_dump | pg_restore of a database using pg_tenant into a fresh database: the registry, plans,
# usage, audit log, protected tables with their policies and triggers, and quotas all come back
# once, and isolation and quotas are enforced as before. Prints "test NAME ... ok|FAILED" lines.
SUITE=dump/restore
. "$(dirname "$0")/suite_lib.sh"
start_cluster dump "${DUMP_PORT:-54323}"
sql() { local db=$1; shift; "$PG_BIN/psql" -X -q -t -A -U postgres -d "$db" "$@"; }
as_role() { local role=$1 db=$2; shift 2; "$PG_BIN/psql" -X -q -t -A -U "$role" -d "$db" "$@" 2>&1; }

sql postgres -c "CREATE DATABASE src" -c "CREATE DATABASE dst" || exit 1
sql src -f tests/dump/setup.sql >/dev/null || exit 1
"$PG_BIN/pg_dump" -U postgres -Fc -f "$dir/src.dump" src || exit 1
restore_log=$("$PG_BIN/pg_restore" -U postgres --exit-on-error --single-transaction -d dst "$dir/src.dump" 2>&1)
check "pg_restore --exit-on-error --single-transaction succeeds" "" "$restore_log"

while IFS='|' read -r kind value; do
  other=$(sql dst -f tests/dump/fingerprint.sql | grep "^$kind|" | cut -d'|' -f2-)
  check "$kind identical after restore" "$value" "$other"
done < <(sql src -f tests/dump/fingerprint.sql)
check "exactly one default plan" 1 "$(sql dst -c "SELECT count(*) FROM tenant.plans WHERE name = 'default'")"

# Isolation: the application role sees its tenant's rows only, and needs a tenant.
check "isolation: acme sees its 5 docs" 5 "$(as_role dump_app dst -c "SELECT tenant.set('acme') IS NULL" -c "SELECT count(*) FROM app.docs" | tail -1)"
check "isolation: no tenant, no rows (PT001)" 1 "$(as_role dump_app dst -c '\set VERBOSITY verbose' -c "SELECT count(*) FROM app.docs" | grep -c 'PT001')"
check "isolation: dump_acme may not act as globex" 1 "$(as_role dump_acme dst -c "SELECT tenant.set('globex')" | grep -c 'may not act as tenant')"
check "isolation: a partition queried directly is filtered" 2 "$(as_role dump_app dst -c "SELECT tenant.set('acme') IS NULL" -c "SELECT count(*) FROM app.events_2026" | tail -1)"
# Quotas: acme is at its 5 docs; the counter continues from the restored value.
check "quota: the 6th doc is refused" 1 "$(as_role dump_app dst -c "SELECT tenant.set('acme') IS NULL" -c "INSERT INTO app.docs VALUES (6, 'x')" | grep -c 'quota exceeded for "docs": 5 of 5')"
check "quota: after a delete one more fits" inserted "$(as_role dump_app dst -c "SELECT tenant.set('acme') IS NULL" -c "DELETE FROM app.docs WHERE id = 1" -c "INSERT INTO app.docs VALUES (6, 'x') RETURNING 'inserted'" | tail -1)"
check "quota: restored monthly usage continues (7 of 100 used, one more leaves 92)" 92 "$(as_role dump_app dst -c "SELECT tenant.set('acme') IS NULL" -c "SELECT tenant.consume('calls')" | tail -1)"
check "suspension survives: globex cannot write" 1 "$(as_role dump_app dst -c "SELECT tenant.set('globex') IS NULL" -c "INSERT INTO app.docs VALUES (101, 'x')" | grep -c 'is suspended')"
check "schema tenant: initech sees its 2 items through its search_path" "tenant_initech, \"\$user\", public, pg_temp|2" \
  "$(as_role dump_app dst -c "SELECT tenant.set('initech') IS NULL" -c "SHOW search_path" -c "SELECT count(*) FROM items" | tail -2 | paste -sd'|')"
check "schema tenant: acme sees none of initech's items" 0 "$(as_role dump_app dst -c "SELECT tenant.set('acme') IS NULL" -c "SELECT count(*) FROM tenant_initech.items" | tail -1)"
check "schema tenant: the restored sequence continues (next id 3)" 3 "$(as_role dump_app dst -c "SELECT tenant.set('initech') IS NULL" -c "INSERT INTO items (name) VALUES ('desk') RETURNING id" | tail -1)"
check "schema tenant: no drift from the template" 0 "$(sql dst -c "SELECT count(*) FROM tenant.schema_drift()")"
check "schema tenant: a migration re-run skips every schema" 0 "$(sql dst -c "SET client_min_messages = warning" -c "SELECT tenant.migrate('001_sku', 'ALTER TABLE items ADD COLUMN sku text')" | tail -1)"
check "the tenant parameter still cannot be forged" t "$(as_role dump_app dst -c "SET pg_tenant.tenant_id = '00000000-0000-0000-0000-000000000000'" -c "SELECT tenant.current(true) IS NULL" | tail -1)"

# A server without the extension: simulated by restoring the same dump with the extension's name
# changed to one that is not installed. The restore stops at CREATE EXTENSION and leaves nothing.
sql postgres -c "CREATE DATABASE nolib" >/dev/null
"$PG_BIN/pg_restore" -f - "$dir/src.dump" | sed 's/EXTENSION IF NOT EXISTS pg_tenant /EXTENSION IF NOT EXISTS pg_tenant_not_installed /' > "$dir/nolib.sql"
nolib=$("$PG_BIN/psql" -X -q -U postgres -d nolib -v ON_ERROR_STOP=1 --single-transaction -f "$dir/nolib.sql" 2>&1)
check "without the extension the restore fails clearly" 1 "$(echo "$nolib" | grep -c 'extension "pg_tenant_not_installed" is not available\|could not open extension control file')"
check "... and restores nothing" 0 "$(sql nolib -c "SELECT count(*) FROM pg_class WHERE relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'pg_toast'::regnamespace)")"

# DROP EXTENSION: refused while tables depend on it; clean once they are unprotected.
check "DROP EXTENSION is refused while tables are protected" 1 "$(sql dst -c "DROP EXTENSION pg_tenant" 2>&1 | grep -c 'other objects depend on it')"
sql dst -c "SELECT tenant.detach_quota('app.docs', 'docs')" -c "SELECT tenant.unprotect(table_name) FROM tenant.protected_tables WHERE parent IS NULL" \
  -c "SELECT tenant.drop(slug) FROM tenant.tenants WHERE isolation = 'schema'" >/dev/null
# (The schema itself is not an extension member in PostgreSQL: it stays, empty.)
check "after unprotect, DROP EXTENSION removes every object" "0|0|0" \
  "$(sql dst -c "DROP EXTENSION pg_tenant" 2>&1; sql dst -c "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'tenant'::regnamespace) || '|' || (SELECT count(*) FROM pg_proc WHERE pronamespace = 'tenant'::regnamespace) || '|' || (SELECT count(*) FROM pg_policy)")"
check "the data stays" 6 "$(sql dst -c "SELECT count(*) FROM app.docs")"
exit $failed
