#!/usr/bin/env bash
# ALTER EXTENSION pg_tenant UPDATE from each released version (0.1.0 and 0.2.0, sql/archive/) on a
# database that holds data: the data and the guarantees stay, the new functions work, and the
# upgraded extension is object for object the same as a fresh install (definitions, privileges,
# settings). Prints "test NAME ... ok|FAILED".
SUITE=upgrade
. "$(dirname "$0")/../lib.sh"
EXPECTED_CHECKS=33
start_cluster upgrade "$(suite_port upgrade)"
sql() { local db=$1; shift; "$PG_BIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 -U postgres -d "$db" "$@"; }
as_app() { "$PG_BIN/psql" -X -q -t -A -U up_app -d old "$@" 2>&1; }
sql postgres -c "CREATE DATABASE old" -c "CREATE DATABASE fresh" -c "CREATE DATABASE v02" || exit 1
{ gateway_fixture 0.1.0 up_app small '{"notes": {"limit": 3}}' acme globex; cat <<'SQL'; } | sql old >/dev/null || exit 1
CREATE TABLE notes (id serial PRIMARY KEY, body text);
SELECT tenant.protect('notes');
SELECT tenant.attach_quota('notes', 'notes');
GRANT SELECT, INSERT ON notes TO up_app;
GRANT USAGE ON SEQUENCE notes_id_seq TO up_app;
SELECT tenant.set('acme');
INSERT INTO notes (body) VALUES ('a1'), ('a2'), ('a3');
SELECT tenant.set('globex');
INSERT INTO notes (body) VALUES ('g1');
SQL
check "starts at 0.1.0" 0.1.0 "$(sql old -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_tenant'")"
audit_before=$(sql old -c "SELECT count(*) FROM tenant.audit_log")
sql old -c "ALTER EXTENSION pg_tenant UPDATE" || failed=1
check "ALTER EXTENSION UPDATE reaches 0.3.0 (through 0.2.0)" 0.3.0 "$(sql old -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_tenant'")"
check "the audit log is intact" "$audit_before" "$(sql old -c "SELECT count(*) FROM tenant_data.audit_log")"
check "isolation still holds (acme sees its 3 notes)" 3 "$(as_app -c "SELECT tenant.set('acme') IS NULL" -c "SELECT count(*) FROM notes" | tail -1)"
check "the quota still holds (acme's 4th note is refused)" 1 "$(as_app -c "SELECT tenant.set('acme') IS NULL" -c "INSERT INTO notes (body) VALUES ('a4')" | grep -c 'quota exceeded for "notes": 3 of 3')"
check "the count quota's INSERT trigger became a tenant_quota index" "0 1" "$(sql old -c "SELECT (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'notes'::regclass AND tgname LIKE 'tenant_quota%ins') || ' ' || (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = 'notes'::regclass AND a.amname = 'tenant_quota' AND c.reloptions = '{resource=notes}')")"
check "the index counts: globex (1 note) adds 2 more" 3 "$(as_app -c "SELECT tenant.set('globex') IS NULL" -c "INSERT INTO notes (body) VALUES ('g2'), ('g3')" -c "SELECT count(*) FROM notes" | tail -1)"
check "the index counts: globex's 4th note is refused" 1 "$(as_app -c "SELECT tenant.set('globex') IS NULL" -c "INSERT INTO notes (body) VALUES ('g4')" | grep -c 'quota exceeded for "notes": 3 of 3')"
check "the new tenant.export() works on the old data" 3 "$(sql old -c "SELECT jsonb_array_length(tenant.export('acme')->'tables'->'public.notes')")"
check "a 0.1.0 database creates tenants before the update (old tenant.create signature)" 1 "$(sql old -c "SELECT count(*) FROM tenant_data.tenants WHERE slug = 'acme'")"
check "after the update a schema tenant can be provisioned" tenant_initech "$(sql old -c "CREATE SCHEMA tpl" -c "CREATE TABLE tpl.items (id int PRIMARY KEY)" -c "SELECT tenant.create('initech', isolation => 'schema', template => 'tpl') IS NOT NULL" -c "SELECT nspname FROM pg_namespace WHERE nspname = 'tenant_initech'" | tail -1)"
check "after the update plan settings apply, and the view tenant.plans shows them" '7MB|{"work_mem": "7MB"}' \
  "$(sql old -c "SELECT tenant.set_plan_settings('small', '{\"work_mem\": \"7MB\"}')" >/dev/null; as_app -c "SELECT tenant.set('acme') IS NULL" -c "SELECT current_setting('work_mem')" | tail -1)|$(sql old -c "SELECT context_settings FROM tenant.plans WHERE name = 'small'")"
sql fresh -c "CREATE EXTENSION pg_tenant" || failed=1
# objects DB: the md5 of DB's object list, or "error in DB" when tests/upgrade/objects.sql fails
# there (so that two failures never compare equal).
objects() {
  local out
  out=$(sql "$1" -f tests/upgrade/objects.sql 2>&1) || { echo "$out" | tail -3 >&2; echo "error in $1"; return; }
  echo "$out" | md5sum
}
upgraded=$(objects old)
installed=$(objects fresh)
check "the extension upgraded from 0.1.0 equals a fresh install, object for object" "$installed" "$upgraded"
if [ "$upgraded" != "$installed" ]; then diff <(sql fresh -f tests/upgrade/objects.sql) <(sql old -f tests/upgrade/objects.sql) | head -20; fi

# From 0.2.0: shared and schema tenants (the template owned by an ordinary role), quotas of every
# kind, a signing key.
secret=0123456789abcdef0123456789abcdef
sql v02 >/dev/null <<SQL || exit 1
CREATE EXTENSION pg_tenant VERSION '0.2.0';
CREATE ROLE up_app2 LOGIN;
CREATE ROLE up_owner2;
CREATE ROLE up_protector;
GRANT EXECUTE ON FUNCTION tenant.protect(regclass, name) TO up_protector;
SELECT tenant.grant_gateway('up_app2');
SELECT tenant.set_signing_key('HS256', '$secret');
SELECT tenant.create_plan('small', '{"notes": {"limit": 3}, "calls": {"limit": 5, "period": "day"}, "bytes": {"limit": 100000}}');
SELECT tenant.create('acme', plan => 'small');
SELECT tenant.create('globex', plan => 'small');
CREATE TABLE notes (id serial PRIMARY KEY, body text);
ALTER TABLE notes OWNER TO up_owner2;
SELECT tenant.protect('notes');
SELECT tenant.attach_quota('notes', 'notes');
SELECT tenant.attach_quota('notes', 'bytes', 'bytes');
GRANT SELECT, INSERT, DELETE ON notes TO up_app2;
GRANT USAGE ON SEQUENCE notes_id_seq TO up_app2;
CREATE SCHEMA tpl AUTHORIZATION up_owner2;
CREATE TABLE tpl.items (id int PRIMARY KEY);
ALTER TABLE tpl.items OWNER TO up_owner2;
SELECT tenant.create('initech', isolation => 'schema', template => 'tpl');
SELECT tenant.set('acme');
INSERT INTO notes (body) VALUES ('a1'), ('a2'), ('a3');
SELECT tenant.consume('calls', 2);
SELECT tenant.set('globex');
INSERT INTO notes (body) VALUES ('g1');
SQL
as_app2() { "$PG_BIN/psql" -X -q -t -A -U up_app2 -d v02 "$@" 2>&1; }
sql v02 -c "ALTER EXTENSION pg_tenant UPDATE" || failed=1
check "0.2.0: ALTER EXTENSION UPDATE reaches 0.3.0" 0.3.0 "$(sql v02 -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_tenant'")"
check "0.2.0: the protected table is in pg_tenant's own catalog" "notes tenant_id" "$(sql v02 -c "SELECT table_name::text || ' ' || tenant_column FROM tenant.protected_tables")"
check "0.2.0: isolation still holds (acme sees its 3 notes)" 3 "$(as_app2 -c "SELECT tenant.set('acme') IS NULL" -c "SELECT count(*) FROM notes" | tail -1)"
check "0.2.0: the count quota still holds" 1 "$(as_app2 -c "SELECT tenant.set('acme') IS NULL" -c "INSERT INTO notes (body) VALUES ('a4')" | grep -c 'quota exceeded for "notes": 3 of 3')"
check "0.2.0: the meter usage is kept" "2" "$(as_app2 -c "SELECT tenant.set('acme') IS NULL" -c "SELECT used FROM tenant.check_quota('calls')" | tail -1)"
token=$(python3 -c "
import base64, hashlib, hmac, json, time
b = lambda d: base64.urlsafe_b64encode(d).rstrip(b'=').decode()
h = b(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode()); p = b(json.dumps({'tenant': 'globex', 'exp': int(time.time()) + 600}).encode())
print(h + '.' + p + '.' + b(hmac.new(b'$secret', (h + '.' + p).encode(), hashlib.sha256).digest()))")
check "0.2.0: a token signed with the kept key sets the tenant" 1 "$(as_app2 -c "SELECT tenant.set_token('$token') IS NULL" -c "SELECT count(*) FROM notes" | tail -1)"
check "0.2.0: transaction_only gateways exist after the update" "refused" "$(sql v02 -c "CREATE ROLE up_tx LOGIN" -c "SELECT tenant.grant_gateway('up_tx', transaction_only => true)" >/dev/null; "$PG_BIN/psql" -X -q -t -A -U up_tx -d v02 -c "SELECT tenant.set('acme')" 2>&1 | grep -o 'only for a transaction' | sed s/.*/refused/)"
check "0.2.0: the schema tenant's search_path ends with pg_temp" "tenant_initech, \"\$user\", public, pg_temp" "$(sql v02 -c "SELECT tenant.set('initech') IS NULL" -c "SHOW search_path" | tail -1)"
# tenant.protect() gained shared_rows: the 0.2.0 function was replaced, its grants kept as the
# database's own (pg_dump writes them), its calls and protected tables unchanged.
check "0.2.0: EXECUTE granted on tenant.protect(regclass, name) is kept on the new function" t "$(sql v02 -c "SELECT has_function_privilege('up_protector', 'tenant.protect(regclass, name, boolean)', 'EXECUTE')")"
init_privs="SELECT initprivs FROM pg_init_privs WHERE objoid = 'tenant.protect(regclass, name, boolean)'::regprocedure"
check "0.2.0: the kept grant is not an initial privilege of the extension" "$(sql fresh -c "$init_privs")" "$(sql v02 -c "$init_privs")"
check "0.2.0: pg_dump writes the kept grant" 1 "$("$PG_BIN/pg_dump" -U postgres -d v02 --schema-only 2>/dev/null | grep -c '^GRANT ALL ON FUNCTION tenant.protect(tbl regclass, tenant_column name, shared_rows boolean) TO up_protector;')"
check "0.2.0: the upgraded table has no shared rows" "notes false" "$(sql v02 -c "SELECT table_name::text || ' ' || shared_rows FROM tenant.protected_tables")"
sql v02 >/dev/null <<'SQL' || failed=1
SET client_min_messages = warning;
CREATE TABLE refs (id int, name text);
INSERT INTO refs VALUES (1, 'shared default');
SELECT tenant.protect('refs', shared_rows => true);
GRANT SELECT ON refs TO up_app2;
SELECT tenant.protect('notes', 'tenant_id');
SQL
check "0.2.0: after the update, a tenant reads shared rows of a table protected with shared_rows" "1 shared default" "$(as_app2 -c "SELECT tenant.set('acme') IS NULL" -c "SELECT id || ' ' || name FROM refs" | tail -1)"
check "0.2.0: tenant.protect(tbl, column) still protects as before" "3 false" "$(as_app2 -c "SELECT tenant.set('acme') IS NULL" -c "SELECT count(*) || ' ' || (SELECT shared_rows FROM tenant.protected_tables WHERE table_name = 'notes'::regclass) FROM notes" | tail -1)"
sql v02 -c "REVOKE EXECUTE ON FUNCTION tenant.protect(regclass, name, boolean) FROM up_protector" || failed=1
v02=$(objects v02)
check "the extension upgraded from 0.2.0 equals a fresh install, object for object" "$installed" "$v02"
if [ "$v02" != "$installed" ]; then diff <(sql fresh -f tests/upgrade/objects.sql) <(sql v02 -f tests/upgrade/objects.sql) | head -20; fi
# The permissive policy the update rewrote goes with DROP EXTENSION ... CASCADE: fail closed.
sql v02 -c "DROP EXTENSION pg_tenant CASCADE" >/dev/null 2>&1 || failed=1
check "0.2.0: after DROP EXTENSION CASCADE the upgraded table shows no row" 0 "$(as_app2 -c "SELECT count(*) FROM notes" | tail -1)"
# A schema named tenant_data that someone else made first (a role with CREATE on the database can)
# is refused with a clear error, and nothing changes; renamed away, the update goes through.
sql postgres -c "CREATE DATABASE planted" -c "CREATE ROLE up_planter LOGIN" -c "GRANT CREATE ON DATABASE planted TO up_planter" >/dev/null || exit 1
sql planted -c "CREATE EXTENSION pg_tenant VERSION '0.2.0'" -c "SELECT tenant.create('acme')" >/dev/null || exit 1
"$PG_BIN/psql" -X -q -U up_planter -d planted -c "CREATE SCHEMA tenant_data" -c "CREATE TABLE tenant_data.tenants (id uuid)" || failed=1
planted_err=$(sql planted -c '\set VERBOSITY verbose' -c "ALTER EXTENSION pg_tenant UPDATE" 2>&1)
check "a planted tenant_data schema stops the update with 42P06, naming its owner, with a hint" "ERROR:  42P06: pg_tenant needs schema \"tenant_data\" for its tables, and a schema of that name exists already|DETAIL:  Schema \"tenant_data\" belongs to role up_planter; pg_tenant did not create it and reads nothing from it.|HINT:  Look at what it holds, then rename or drop it (ALTER SCHEMA tenant_data RENAME TO ...) and run the command again." "$(echo "$planted_err" | grep -E '^(ERROR|DETAIL|HINT)' | paste -sd'|')"
check "after the refused update the extension is still 0.2.0, its tables where they were" "0.2.0 1 0" "$(sql planted -c "SELECT extversion || ' ' || (SELECT count(*) FROM tenant.tenants) || ' ' || (SELECT count(*) FROM tenant_data.tenants) FROM pg_extension WHERE extname = 'pg_tenant'")"
sql planted -c "ALTER SCHEMA tenant_data RENAME TO planted_data" -c "ALTER EXTENSION pg_tenant UPDATE" >/dev/null 2>&1 || failed=1
check "renamed away, the update goes through and leaves the renamed schema alone" "0.3.0 1 planted_data.tenants" "$(sql planted -c "SELECT extversion || ' ' || (SELECT count(*) FROM tenant_data.tenants) || ' ' || (SELECT string_agg(c.oid::regclass::text, ',') FROM pg_class c WHERE c.relnamespace = 'planted_data'::regnamespace) FROM pg_extension WHERE extname = 'pg_tenant'")"
sql postgres -c "CREATE DATABASE planted_fresh" -c "GRANT CREATE ON DATABASE planted_fresh TO up_planter" >/dev/null || exit 1
"$PG_BIN/psql" -X -q -U up_planter -d planted_fresh -c "CREATE SCHEMA tenant_data" || failed=1
check "a planted tenant_data schema stops CREATE EXTENSION with the same error, leaving nothing" "42P06 0" "$(sql planted_fresh -c '\set VERBOSITY verbose' -c "CREATE EXTENSION pg_tenant" 2>&1 | grep -o '^ERROR:  42P06' | sed 's/ERROR:  //') $(sql planted_fresh -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'tenant'")"
exit "$failed"
