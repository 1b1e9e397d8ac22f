#!/usr/bin/env bash
# pg_tenant on Citus (issue 14): a coordinator and two workers, three local clusters. The registry
# reaches every node (tenant.citus_setup()), protect() works on distributed and reference tables in
# either order with policies Citus copies faithfully (permissive only: Citus drops AS RESTRICTIVE
# on the shards), and a token set with SET LOCAL pg_tenant.token is verified on each worker, which
# then shows and accepts only that tenant's rows. Attacks from the application role, on the
# coordinator and directly on a worker and its shards. A tenant's queries routed to its shard
# (routing.sh). tenant.export() and import() across the workers (lifecycle.sh). Both modes:
# pg_tenant preloaded beside Citus, and loaded on demand (Citus is always preloaded; it must be).
SUITE=citus
. "$(dirname "$0")/../lib.sh"
EXPECTED_CHECKS=276   # 126 per mode (33 of them in routing.sh, 10 in lifecycle.sh, a closing no-crash check), and in quotas.sh 22 preloaded, 2 loaded on demand
if [ ! -f "$("$PG_CONFIG" --pkglibdir)/citus.so" ]; then
  echo "test citus: Citus is installed (scripts/bootstrap.sh builds it) ... FAILED"
  exit 1
fi
SECRET='citus-suite-secret-0123456789-abcdef'
C=$(suite_port citus_coord); W1=$(suite_port citus_w1); W2=$(suite_port citus_w2); W3=$(suite_port citus_w3)
# q PORT ROLE SQL...: one psql session over TCP (as Citus connects), unaligned, errors included.
q() { local port=$1 role=$2; shift 2; "$PG_BIN/psql" -X -q -t -A -h 127.0.0.1 -p "$port" -U "$role" -d app "$@" 2>&1; }
# token TENANT [SECRET]: an HS256 token naming TENANT, valid for 10 minutes.
token() {
  python3 - "$1" "${2:-$SECRET}" <<'PY'
import base64, hashlib, hmac, json, sys, time
tenant, secret = sys.argv[1], sys.argv[2]
now = int(time.time())
b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
body = b64(json.dumps({"tenant": tenant, "iat": now, "exp": now + 600}).encode())
sig = b64(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
print(f"{head}.{body}.{sig}")
PY
}
# node_token ROLE TENANT_ID SECRET [EXP_OFFSET] [AUD] [drop]: a node context token
# (src/node_context.rs) for ROLE, signed with SECRET (the database's node key, read by the suite as
# a superuser); with "drop", one tenant.drop() mints for a table's owner.
node_token() {
  python3 - "$@" <<'PY'
import base64, hashlib, hmac, json, sys, time
role, tenant, secret = sys.argv[1], sys.argv[2], sys.argv[3]
exp_off = int(sys.argv[4]) if len(sys.argv) > 4 else 120
aud = sys.argv[5] if len(sys.argv) > 5 else "pg_tenant-node"
drop = len(sys.argv) > 6 and sys.argv[6] == "drop"
now = int(time.time())
b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
claims = {"tenant": tenant, "role": role, "aud": aud, "iat": now, "exp": now + exp_off}
if drop:
    claims["drop"] = True
body = b64(json.dumps(claims).encode())
sig = b64(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
print(f"{head}.{body}.{sig}")
PY
}
# as_tenant PORT TOKEN SQL: SQL run by the application role in a transaction that set the token
# (with command tags: INSERT 0 1).
as_tenant() {
  "$PG_BIN/psql" -X -t -A -h 127.0.0.1 -p "$1" -U app -d app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$2'" -c "$3" -c "COMMIT" 2>&1
}
# refused PORT ROLE -c SQL...: "refused" when the statements fail for want of a tenant (PT001), a
# bad token (PT02x) or a parameter the role may not set (55P02); else the SQLSTATE or "none".
refused() {
  local state
  state=$(err "$@")
  case $state in PT001 | PT02? | 55P02) echo refused ;; *) echo "$state" ;; esac
}
# err PORT ROLE -c SQL...: the SQLSTATE of the first error the statements raise ("none" if none).
err() {
  local port=$1 role=$2; shift 2
  q "$port" "$role" -c '\set VERBOSITY sqlstate' "$@" | awk '/^ERROR:/ { print $2; found = 1; exit } END { if (!found) print "none" }'
}

. "$ROOT/tests/citus/routing.sh"
. "$ROOT/tests/citus/lifecycle.sh"
. "$ROOT/tests/citus/quotas.sh"

run_mode() {
  local mode=$1 preload
  if [ "$mode" = preload ]; then preload="citus,pg_tenant"; else preload="citus"; fi
  local conf
  conf=$(citus_conf "$preload")
  for node in citus_coord:$C citus_w1:$W1 citus_w2:$W2; do
    PG_TENANT_CONF="$conf" start_cluster "${node%%:*}" "${node##*:}"
    "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "${node##*:}" -U postgres -d postgres -c "CREATE DATABASE app" >/dev/null || exit 1
    q "${node##*:}" postgres -c "CREATE EXTENSION citus" >/dev/null || exit 1
  done
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL || exit 1
SELECT citus_set_coordinator_host('127.0.0.1', $C);
SELECT citus_add_node('127.0.0.1', $W1);
SELECT citus_add_node('127.0.0.1', $W2);
CREATE EXTENSION pg_tenant;
CREATE ROLE app LOGIN;
SQL

  # 1. Set-up: the registry on every node.
  check "$mode: before citus_setup(), tenant.check() says the five registry tables are not reference tables" 5 \
    "$(q "$C" postgres -c "SELECT count(*) FROM tenant.check() WHERE severity = 'high' AND problem LIKE 'not a Citus reference table%'")"
  local unloaded=0
  [ "$mode" = plain ] && unloaded=1
  check "$mode: before citus_setup(), tenant.check() says pg_tenant is not loaded at each session's start unless preloaded" "$unloaded" \
    "$(q "$C" postgres -c "SELECT count(*) FROM tenant.check() WHERE severity = 'high' AND problem LIKE 'pg_tenant is neither preloaded%' AND fix = 'SELECT tenant.citus_setup();'")"
  check "$mode: citus_setup() makes the five tables workers need reference tables" \
    "{tenant_data.tenants,tenant_data.plans,tenant_data.limit_overrides,tenant_data.signing_keys,tenant_data.node_key}" \
    "$(q "$C" postgres -c "SELECT tenant.citus_setup()")"
  check "$mode: a second citus_setup() has nothing left to do" "{}" "$(q "$C" postgres -c "SELECT tenant.citus_setup()")"
  # Loaded on demand, a session's first statement could be planned before pg_tenant's hooks exist
  # (routing.sh: the first statement after only SET LOCAL pg_tenant.token).
  local session_libs="[pg_tenant]"
  [ "$mode" = preload ] && session_libs="[]"
  check "$mode: citus_setup() makes each session of the database load pg_tenant unless the server preloads it" "$session_libs" \
    "$(q "$C" postgres -c "SELECT '[' || current_setting('session_preload_libraries') || ']'")"
  check "$mode: each has a placement on all three nodes" 15 \
    "$(q "$C" postgres -c "SELECT count(*) FROM pg_dist_placement pl JOIN pg_dist_shard s USING (shardid)
                            WHERE s.logicalrelid::regclass::text LIKE 'tenant_data.%'")"
  check "$mode: citus_setup() is for superusers only" 42501 \
    "$(err "$C" app -c "SELECT tenant.citus_setup()")"
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL || exit 1
SELECT tenant.set_signing_key('HS256', '$SECRET');
SELECT tenant.create('acme'), tenant.create('globex');
SQL
  check "$mode: keys and tenants written on the coordinator are on both workers" "1|2 1|2" \
    "$(for p in $W1 $W2; do q "$p" postgres -c "SELECT (SELECT count(*) FROM tenant_data.signing_keys) || '|' || (SELECT count(*) FROM tenant_data.tenants)"; done | tr '\n' ' ' | sed 's/ $//')"
  local node_secret
  node_secret=$(q "$C" postgres -c "SELECT secret FROM tenant_data.node_key")
  check "$mode: citus_setup() made one node key, the same on every node" "1 1 1" \
    "$(for p in $C $W1 $W2; do q "$p" postgres -c "SELECT count(*) FROM tenant_data.node_key WHERE secret = '$node_secret'"; done | tr '\n' ' ' | sed 's/ $//')"

  # 2. Protection, then distribution (the other order is refused).
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || exit 1
CREATE TABLE docs (id bigserial, tenant_id uuid, body text);
SELECT tenant.protect('docs');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('docs', 'tenant_id');
CREATE TABLE notes (id bigserial, tenant_id uuid, body text);
SELECT tenant.protect('notes');
SELECT create_distributed_table('notes', 'tenant_id', colocate_with => 'docs');
RESET citus.enable_unsafe_triggers;
CREATE TABLE late (id bigserial, tenant_id uuid, body text);
SELECT create_distributed_table('late', 'tenant_id', colocate_with => 'docs');
GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON docs, notes TO app;
GRANT USAGE ON SEQUENCE docs_id_seq, notes_id_seq TO app;
SQL
  check "$mode: on the coordinator protect() installs one permissive policy (no tenant_access)" "docs|tenant_isolation|true notes|tenant_isolation|true" \
    "$(q "$C" postgres -c "SELECT polrelid::regclass || '|' || polname || '|' || polpermissive FROM pg_policy WHERE polrelid IN ('docs'::regclass, 'notes'::regclass) ORDER BY 1" | tr '\n' ' ' | sed 's/ $//')"
  check "$mode: every shard on a worker has exactly that policy, row security forced" "0" \
    "$(q "$W1" postgres -c "SET citus.show_shards_for_app_name_prefixes = '*';
        SELECT count(*) FROM pg_class c WHERE c.relname ~ '^(docs|notes)_[0-9]+$'
           AND NOT (c.relrowsecurity AND c.relforcerowsecurity
                    AND (SELECT array_agg(polname::text || polpermissive) FROM pg_policy WHERE polrelid = c.oid) = '{tenant_isolationtrue}')" | tail -1)"
  check "$mode: the tenant column of both tables has its default on the coordinator" "2" \
    "$(q "$C" postgres -c "SELECT count(*) FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                            WHERE d.adrelid IN ('docs'::regclass, 'notes'::regclass) AND a.attname = 'tenant_id'
                              AND pg_get_expr(d.adbin, d.adrelid) = 'tenant.current()'")"
  check "$mode: shared_rows on a hash-distributed table is refused" "0A000" \
    "$(err "$C" postgres -c "SELECT tenant.protect('notes', shared_rows => true)")"
  # Citus copies a table's triggers to its shards when it distributes it, not a trigger created
  # later: a table distributed before protect() would have no write guard on its shards (attack
  # review: a read-only grant and a suspension did not hold there). Refused, nothing changed.
  # A partition created after its table was distributed is distributed with it: protect() of it
  # is allowed (its policies reach the shards).
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || exit 1
CREATE TABLE parted (id int, tenant_id uuid, d date) PARTITION BY RANGE (d);
CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
SELECT tenant.protect('parted');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('parted', 'tenant_id', colocate_with => 'none');
CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SQL
  local late_fix
  late_fix=$(q "$C" postgres -c "SELECT fix FROM tenant.check() WHERE object = 'public.parted_b' AND problem LIKE 'partition or child of protected table%'")
  check "$mode: a partition created after distribution: check()'s fix protects it alone (protect() of its table is refused), allowed, row security on" "SELECT tenant.protect('public.parted_b', 'tenant_id');|0A000|none|t" \
    "$late_fix|$(err "$C" postgres -c "SELECT tenant.protect('parted')")|$(err "$C" postgres -c "$late_fix")|$(q "$C" postgres -c "SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = 'parted_b'::regclass")"
  # Its shards were made without the write guard, and Citus copies no trigger with a TRUNCATE
  # event to shards it makes later: with Citus, the guard's TRUNCATE part is a trigger apart, and
  # protect() of the partition gives its shards the guard (second attack review: a suspended
  # tenant wrote straight into such a partition). Again: the same.
  local late_shards
  late_shards=$(q "$C" postgres -c "SELECT count(*) FROM pg_dist_shard WHERE logicalrelid = 'parted_b'::regclass")
  check "$mode: the late partition's shards get the write guard, once, also when protect() runs again" "none|$late_shards" \
    "$(err "$C" postgres -c "SELECT tenant.protect('parted_b')")|$(for p in $W1 $W2; do q "$p" postgres -c "SET citus.override_table_visibility = off" -c "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relname ~ '^parted_b_[0-9]+$' AND t.tgname ~ '^tenant_guard'"; done | awk '{ s += $1 } END { print s }')"
  # The same for a protected table Citus makes a Citus local table afterwards (its shard, on
  # the coordinator, is made then).
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || exit 1
CREATE TABLE made_local (id int, tenant_id uuid);
SELECT tenant.protect('made_local');
SELECT citus_add_local_table_to_metadata('made_local');
GRANT SELECT, INSERT, TRUNCATE ON parted, parted_a, parted_b, made_local TO app;
SELECT tenant.create('late_t') IS NULL;
SELECT tenant.suspend('late_t', 'test');
SQL
  check "$mode: a suspended tenant's write straight into the late partition, through its table, and into a table made a Citus local table is refused (PT003); TRUNCATE of them too (PT004)" "PT003|PT003|PT003|PT004|PT004" \
    "$(err "$C" app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$(token late_t)'" -c "INSERT INTO parted_b (id, d) VALUES (1, '2026-06-01')")|$(err "$C" app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$(token late_t)'" -c "INSERT INTO parted (id, d) VALUES (1, '2026-06-01')")|$(err "$C" app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$(token late_t)'" -c "INSERT INTO made_local (id) VALUES (1)")|$(err "$C" app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$(token acme)'" -c "TRUNCATE parted_b")|$(err "$C" app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$(token acme)'" -c "TRUNCATE made_local")"
  q "$C" postgres -c "SELECT tenant.drop('late_t')" >/dev/null
  # A write guard a table owner disabled (Citus passes that on to the shards): check() says so,
  # and its fix enables it again.
  local guard_fix
  q "$C" postgres -c "SET citus.enable_unsafe_triggers = on" -c "ALTER TABLE parted_b DISABLE TRIGGER tenant_guard" >/dev/null
  guard_fix=$(q "$C" postgres -c "SELECT fix FROM tenant.check() WHERE object = 'public.parted_b' AND problem LIKE 'the write guard trigger tenant_guard is missing or disabled%'")
  check "$mode: check() reports a disabled write guard (high), and its fix enables it again" "ALTER TABLE public.parted_b ENABLE TRIGGER tenant_guard;|0" \
    "$guard_fix|$(q "$C" postgres -c "SET citus.enable_unsafe_triggers = on" -c "$guard_fix" >/dev/null; q "$C" postgres -c "SELECT count(*) FROM tenant.check() WHERE problem LIKE 'the write guard trigger%'")"
  # Citus copies no TRUNCATE trigger to those shards: TRUNCATE of the shard itself, with no tenant
  # (the coordinator's Citus local shard; a late partition's shard on a worker), is refused by
  # pg_tenant's utility hook (attack review: it emptied every tenant's rows).
  local local_shard late_shard
  local_shard=$(q "$C" postgres -c "SELECT 'made_local_' || shardid FROM pg_dist_shard WHERE logicalrelid = 'made_local'::regclass")
  late_shard=$(q "$C" postgres -c "SELECT 'parted_b_' || s.shardid FROM pg_dist_shard s JOIN pg_dist_placement p USING (shardid) JOIN pg_dist_node n USING (groupid) WHERE s.logicalrelid = 'parted_b'::regclass AND n.nodeport = $W1 LIMIT 1")
  check "$mode: TRUNCATE of the shard of a table made a Citus local table (coordinator) and of a late partition (worker), as the application with no tenant: refused (PT004)" "PT004|PT004" \
    "$(err "$C" app -c "SET citus.enable_manual_changes_to_shards = on" -c "TRUNCATE $local_shard")|$(err "$W1" app -c "SET citus.enable_manual_changes_to_shards = on" -c "TRUNCATE $late_shard")"
  # ... and through CASCADE from a reference table's shard its foreign key references (helper-52).
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || exit 1
CREATE TABLE refx (id int PRIMARY KEY);
SELECT create_reference_table('refx');
INSERT INTO refx VALUES (1);
CREATE TABLE fk_local (id int, rid int, tenant_id uuid);
SELECT tenant.protect('fk_local');
ALTER TABLE fk_local ADD FOREIGN KEY (rid) REFERENCES refx (id);
GRANT TRUNCATE ON refx, fk_local TO app;
SQL
  local ref_shard
  ref_shard=$(q "$C" postgres -c "SELECT 'refx_' || shardid FROM pg_dist_shard WHERE logicalrelid = 'refx'::regclass")
  check "$mode: TRUNCATE ... CASCADE of a reference table's shard reaching a guarded table's shard: refused (PT004)" "PT004" \
    "$(err "$C" app -c "SET citus.enable_manual_changes_to_shards = on" -c "TRUNCATE $ref_shard CASCADE")"
  # Citus keeps the guard's copies on a table's shards: unprotect() would leave them refusing.
  check "$mode: unprotect() of a Citus table (or a table with a Citus partition) is refused (0A000), nothing changed" "0A000|0A000|t|t" \
    "$(err "$C" postgres -c "SELECT tenant.unprotect('docs')")|$(err "$C" postgres -c "SELECT tenant.unprotect('parted_b')")|$(q "$C" postgres -c "SELECT count(*) = 2 FROM pg_trigger WHERE tgrelid = 'docs'::regclass AND tgname ~ '^tenant_guard'")|$(q "$C" postgres -c "SELECT EXISTS (SELECT FROM tenant.protected_tables WHERE table_name = 'parted_b'::regclass)")"
  check "$mode: protect() of a table Citus already distributed is refused (0A000), nothing changed" "0A000|0|0" \
    "$(err "$C" postgres -c "SELECT tenant.protect('late')")|$(q "$C" postgres -c "SELECT count(*) FROM pg_policy WHERE polrelid = 'late'::regclass")|$(q "$C" postgres -c "SELECT count(*) FROM tenant.protected_tables WHERE table_name = 'late'::regclass")"

  # 3. Context: SET LOCAL pg_tenant.token, verified on the workers.
  local acme globex
  acme=$(token acme); globex=$(token globex)
  check "$mode: acme inserts without the tenant column (the coordinator fills it)" "INSERT 0 3" \
    "$(as_tenant "$C" "$acme" "INSERT INTO docs (body) VALUES ('a1'), ('a2'), ('a3')" | grep INSERT)"
  as_tenant "$C" "$globex" "INSERT INTO docs (body) VALUES ('g1'); INSERT INTO notes (body) VALUES ('gn')" >/dev/null
  check "$mode: the rows carry their tenant's id and sit on that tenant's shard" "acme|3|1 globex|1|1" \
    "$(q "$C" postgres -c "SELECT t.slug || '|' || count(*) || '|' || count(DISTINCT get_shard_id_for_distribution_column('docs', d.tenant_id))
                            FROM docs d JOIN tenant_data.tenants t ON t.id = d.tenant_id GROUP BY t.slug ORDER BY 1" | tr '\n' ' ' | sed 's/ $//')"
  check "$mode: acme reads its 3 rows only (every shard filters)" "3|a1,a2,a3" \
    "$(as_tenant "$C" "$acme" "SELECT count(*) || '|' || string_agg(body, ',' ORDER BY body) FROM docs" | grep '|')"
  check "$mode: globex reads its 1 row only" "1" "$(as_tenant "$C" "$globex" "SELECT count(*) FROM docs" | grep -E '^[0-9]+$')"
  check "$mode: a join of colocated tables sees the tenant's rows only" "1" \
    "$(as_tenant "$C" "$globex" "SELECT count(*) FROM docs d JOIN notes n ON n.tenant_id = d.tenant_id" | grep -E '^[0-9]+$')"
  check "$mode: acme cannot write a row for globex (WITH CHECK on the shard)" "1" \
    "$(as_tenant "$C" "$acme" "INSERT INTO docs (tenant_id, body) SELECT id, 'forged' FROM (VALUES ('$(q "$C" postgres -c "SELECT id FROM tenant_data.tenants WHERE slug = 'globex'")'::uuid)) v(id)" | grep -c 'row-level security')"
  check "$mode: acme's UPDATE and DELETE reach only its rows" "UPDATE 3|DELETE 1" \
    "$(as_tenant "$C" "$acme" "UPDATE docs SET body = body || '!'" | grep UPDATE)|$(as_tenant "$C" "$acme" "DELETE FROM docs WHERE body = 'a3!'" | grep DELETE)"
  check "$mode: globex's row is untouched" "g1" "$(q "$C" postgres -c "SELECT string_agg(body, ',') FROM docs WHERE body LIKE 'g%'")"
  check "$mode: a savepoint rolled back keeps the token of the transaction" "2" \
    "$(q "$C" app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$acme'" -c "SAVEPOINT s" -c "INSERT INTO docs (body) VALUES ('x')" -c "ROLLBACK TO s" -c "SELECT count(*) FROM docs" -c "COMMIT" | grep -E '^[0-9]+$')"

  # 4. Attacks by the application role.
  check "$mode: no tenant: an error, never rows (coordinator)" "PT001" \
    "$(err "$C" app -c "SELECT count(*) FROM docs")"
  # (Preloaded, the token is judged when set (PT021); loaded on demand, at its first use, where a
  # value the library did not verify is no tenant (PT001).)
  check "$mode: a token signed with another key is refused, no row read" "refused" \
    "$(refused "$C" app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$(token acme wrong-secret-0123456789-0123456789)'" -c "SELECT count(*) FROM docs")"
  check "$mode: TRUNCATE by the application role is refused" "PT004" \
    "$(err "$C" app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$acme'" -c "TRUNCATE docs")"
  local shard
  shard=$(q "$C" postgres -c "SELECT 'docs_' || get_shard_id_for_distribution_column('docs', id) FROM tenant_data.tenants WHERE slug = 'globex'")
  local wport
  wport=$(q "$C" postgres -c "SELECT nodeport FROM pg_dist_placement pl JOIN pg_dist_node n USING (groupid)
                               WHERE shardid = get_shard_id_for_distribution_column('docs', (SELECT id FROM tenant_data.tenants WHERE slug = 'globex'))")
  check "$mode: on the worker, globex's shard read directly without a token: an error" "PT001" \
    "$(err "$wport" app -c "SELECT count(*) FROM $shard")"
  check "$mode: on the worker, globex's shard read with acme's token: no globex row" "0" \
    "$(q "$wport" app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$acme'" -c "SELECT count(*) FROM $shard WHERE body LIKE 'g%'" | grep -E '^[0-9]+$')"
  check "$mode: on the worker, SET pg_tenant.tenant_id naming globex reads no row of globex's shard" "refused" \
    "$(refused "$wport" app -c "SET pg_tenant.tenant_id = '$(q "$C" postgres -c "SELECT id FROM tenant_data.tenants WHERE slug = 'globex'")'" -c "SELECT count(*) FROM $shard")"
  q "$C" postgres -c "SELECT tenant.suspend('globex', 'citus suite')" >/dev/null
  check "$mode: a tenant suspended on the coordinator cannot write on the workers" "PT003" \
    "$(err "$C" app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$globex'" -c "INSERT INTO docs (body) VALUES ('g2')")"
  check "$mode: ... and still reads" "1" "$(as_tenant "$C" "$globex" "SELECT count(*) FROM docs" | grep -E '^[0-9]+$')"
  check "$mode: ... nor on notes" "PT003" \
    "$(err "$C" app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$globex'" -c "INSERT INTO notes (body) VALUES ('g2')")"
  q "$C" postgres -c "SELECT tenant.resume('globex')" >/dev/null

  # 5. tenant.set_local() on the coordinator reaches the workers as a node token they verify.
  q "$C" postgres -c "SELECT tenant.grant_gateway('app')" -c "CREATE ROLE app2 LOGIN" -c "GRANT SELECT, INSERT ON docs TO app2" >/dev/null
  # gw SQL...: one transaction of the gateway role that set_local()s acme first.
  gw() { q "$C" app -c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" "$@" -c "COMMIT" | grep -v '^f$'; }
  check "$mode: set_local(): acme reads its rows only, on every shard" "2|a1!,a2!" \
    "$(gw -c "SELECT count(*) || '|' || string_agg(body, ',' ORDER BY body) FROM docs")"
  # Plan settings (issue 15): read through the coordinator's placements of the reference tables.
  q "$C" postgres -c "SELECT tenant.set_tenant_settings('acme', '{\"work_mem\": \"12MB\", \"statement_timeout\": \"300ms\"}')" >/dev/null
  check "$mode: plan settings: set_local() on the coordinator applies acme's settings, and its ceiling cancels (57014)" "12MB|57014" \
    "$(gw -c "SELECT current_setting('work_mem')")|$(q "$C" app -c '\set VERBOSITY verbose' -c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "SET LOCAL statement_timeout = 0" -c "SELECT pg_sleep(3)" -c "ROLLBACK" | grep -o '57014')"
  q "$C" postgres -c "SELECT tenant.set_tenant_settings('acme', '{}')" >/dev/null
  check "$mode: set_local(): insert without the tenant column, update, delete reach acme's rows only" "INSERT 0 1|UPDATE 3|DELETE 1" \
    "$("$PG_BIN/psql" -X -t -A -h 127.0.0.1 -p "$C" -U app -d app -c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "INSERT INTO docs (body) VALUES ('a4')" -c "UPDATE docs SET body = body || '+'" -c "DELETE FROM docs WHERE body = 'a4+'" -c "COMMIT" 2>&1 | grep -E '^(INSERT|UPDATE|DELETE)' | paste -sd'|')"
  # A read-only grant (issue 15) judged on the coordinator holds on the workers: the node token
  # says so, and the write guards on the shards refuse as the coordinator's would.
  q "$C" postgres -c "CREATE ROLE support LOGIN" -c "GRANT SELECT, INSERT, UPDATE, DELETE ON docs TO support" -c "GRANT USAGE ON SEQUENCE docs_id_seq TO support" \
    -c "SELECT tenant.grant_gateway('support', read_only => true)" >/dev/null
  ro() { err "$C" support -c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "$1"; }
  check "$mode: a read-only gateway reads acme's rows through set_local(); its INSERT, UPDATE and DELETE are refused on the workers" \
    "$(gw -c "SELECT count(*) FROM docs")|25006|25006|25006" \
    "$(q "$C" support -c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "SELECT count(*) FROM docs" -c "COMMIT" | grep -E '^[0-9]+$')|$(ro "INSERT INTO docs (body) VALUES ('ro')")|$(ro "UPDATE docs SET body = body")|$(ro "DELETE FROM docs")"
  check "$mode: ... also on notes: INSERT, UPDATE refused on the workers" "25006|25006" \
    "$(q "$C" postgres -c "GRANT SELECT, INSERT, UPDATE ON notes TO support" -c "GRANT USAGE ON SEQUENCE notes_id_seq TO support" >/dev/null; ro "INSERT INTO notes (body) VALUES ('ro')")|$(ro "UPDATE notes SET body = body")"
  # (COPY FROM into a table with row security is refused by PostgreSQL itself, Citus or not.
  # COPY table TO runs on connections of its own, outside the transaction's: fails closed.)
  # COPY docs TO: Citus reads the shards on a connection of the transaction when it has one (the
  # node token went there) and else opens one outside it (no tenant there: PT001, fail closed).
  local copied
  copied=$(q "$C" app -c '\set VERBOSITY sqlstate' -c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "COPY docs (body) TO STDOUT" | grep -v '^f$' | sort | paste -sd,)
  case $copied in 'a1!+,a2!+' | 'ERROR:  PT001') copied="acme's rows or PT001" ;; esac
  check "$mode: set_local(): COPY (SELECT ...) TO reads acme's rows only; COPY docs TO reads acme's rows or fails closed" "a1!+,a2!+|acme's rows or PT001" \
    "$(gw -c "COPY (SELECT body FROM docs) TO STDOUT" | sort | paste -sd,)|$copied"
  check "$mode: set_local(): a router query by id finds acme's row, not globex's" "1|0" \
    "$(gw -c "SELECT count(*) FROM docs WHERE id = (SELECT min(id) FROM docs)")|$(gw -c "SELECT count(*) FROM docs WHERE tenant_id = '$(q "$C" postgres -c "SELECT id FROM tenant_data.tenants WHERE slug = 'globex'")'")"
  check "$mode: set_local(): a prepared statement runs as the tenant of its transaction" "2|1" \
    "$(q "$C" app -c "PREPARE c AS SELECT count(*) FROM docs" -c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "EXECUTE c" -c "COMMIT" -c "BEGIN" -c "SELECT tenant.set_local('globex') IS NULL" -c "EXECUTE c" -c "COMMIT" | grep -E '^[0-9]+$' | paste -sd'|')"
  check "$mode: set_local() twice in one transaction: each tenant in turn, on connections already open" "2|1|2" \
    "$(gw -c "SELECT count(*) FROM docs" -c "SELECT tenant.set_local('globex') IS NULL" -c "SELECT count(*) FROM docs" -c "SELECT tenant.set_local('acme') IS NULL" -c "SELECT count(*) FROM docs" | grep -E '^[0-9]+$' | paste -sd'|')"
  # (Attack review of read-only access) tenant.reset() after set_local() in a transaction left the
  # node context in force: the coordinator and the workers still acted as the tenant.
  check "$mode: tenant.reset() after set_local() ends the node context too: an error, never rows" "PT001" \
    "$(err "$C" app -c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "SELECT tenant.reset()" -c "SELECT count(*) FROM docs")"
  check "$mode: set_token(local => true) reaches the workers too" "1" \
    "$(q "$C" app -c "BEGIN" -c "SELECT tenant.set_token('$globex', local => true) IS NULL" -c "SELECT count(*) FROM docs" -c "COMMIT" | grep -E '^[0-9]+$')"
  check "$mode: after the transaction, no context is left on the workers" "PT001" \
    "$(err "$C" app -c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "COMMIT" -c "SELECT count(*) FROM docs")"
  check "$mode: session-level tenant.set() does not reach the workers: an error with a hint, never rows" "PT001|HINT:  On a Citus worker: no tenant context reached it." \
    "$(err "$C" app -c "SELECT tenant.set('acme') IS NULL" -c "SELECT count(*) FROM docs")|$(q "$C" app -c "SELECT tenant.set('acme') IS NULL" -c "BEGIN" -c "SELECT count(*) FROM docs" | grep -o '^HINT:  On a Citus worker: no tenant context reached it.')"
  check "$mode: SHOW pg_tenant.context never prints the token" "(hidden)" \
    "$(gw -c "SHOW pg_tenant.context")"
  # Attacks on the node token, as the application roles (the suite signs tokens with the node key
  # it read as a superuser, to try what a role that saw one could do).
  local acme_id
  acme_id=$(q "$C" postgres -c "SELECT id FROM tenant_data.tenants WHERE slug = 'acme'")
  check "$mode: a node token signed with another key is refused" "refused" \
    "$(refused "$wport" app -c "BEGIN" -c "SET LOCAL pg_tenant.context = '$(node_token app "$acme_id" 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef)'" -c "SELECT count(*) FROM $shard")"
  # (Loaded on demand, a value set before the library is refused when it loads, with a WARNING: PT001 follows.)
  check "$mode: a node token for another role: refused on the coordinator, names no tenant on a worker" "refused PT001" \
    "$(refused "$C" app2 -c "BEGIN" -c "SET LOCAL pg_tenant.context = '$(node_token app "$acme_id" "$node_secret")'" -c "SELECT count(*) FROM docs") $(err "$wport" app2 -c "BEGIN" -c "SET LOCAL pg_tenant.context = '$(node_token app "$acme_id" "$node_secret")'" -c "SELECT count(*) FROM $shard")"
  check "$mode: an expired node token is refused" "refused" \
    "$(refused "$wport" app -c "BEGIN" -c "SET LOCAL pg_tenant.context = '$(node_token app "$acme_id" "$node_secret" -5)'" -c "SELECT count(*) FROM $shard")"
  check "$mode: a token of the right key with another audience is refused" "refused" \
    "$(refused "$wport" app -c "BEGIN" -c "SET LOCAL pg_tenant.context = '$(node_token app "$acme_id" "$node_secret" 120 my-app)'" -c "SELECT count(*) FROM $shard")"
  check "$mode: a node token set for the session names no tenant in later transactions" "PT001" \
    "$(err "$wport" app -c "SET pg_tenant.context = '$(node_token app "$acme_id" "$node_secret")'" -c "SELECT count(*) FROM $shard")"
  check "$mode: on the coordinator only pg_tenant sets pg_tenant.context (a valid node token replayed by its own role is refused)" "refused" \
    "$(refused "$C" app -c "BEGIN" -c "SET LOCAL pg_tenant.context = '$(node_token app "$acme_id" "$node_secret")'" -c "SELECT count(*) FROM docs")"
  check "$mode: a session locked to acme's token cannot pass globex to the workers with a node token" "55P02|0" \
    "$(err "$C" app -c "SELECT tenant.set_token('$acme', lock => true) IS NULL" -c "BEGIN" -c "SET LOCAL pg_tenant.context = '$(node_token app "$(q "$C" postgres -c "SELECT id FROM tenant_data.tenants WHERE slug = 'globex'")" "$node_secret")'" -c "SELECT count(*) FROM docs WHERE body LIKE 'g%'")|$(q "$C" app -c "SELECT tenant.set_token('$acme', lock => true) IS NULL" -c "BEGIN" -c "SET LOCAL pg_tenant.context = '$(node_token app "$(q "$C" postgres -c "SELECT id FROM tenant_data.tenants WHERE slug = 'globex'")" "$node_secret")'" -c "SELECT count(*) FROM docs WHERE body LIKE 'g%'" 2>&1 | grep -cx 'g1')"
  check "$mode: an application's token is not a node token" "refused" \
    "$(refused "$wport" app -c "BEGIN" -c "SET LOCAL pg_tenant.context = '$acme'" -c "SELECT count(*) FROM $shard")"
  # The node key changes (written through Citus to every node's placement): sessions that read
  # the old one (each node caches it) verify and sign with the new one from their next statement.
  local rotated=fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210 globex_id g_rows a_rows
  globex_id=$(q "$C" postgres -c "SELECT id FROM tenant_data.tenants WHERE slug = 'globex'")
  g_rows=$(q "$wport" postgres -c "SELECT count(*) FROM $shard WHERE tenant_id = '$globex_id'")
  a_rows=$(q "$C" postgres -c "SELECT count(*) FROM docs WHERE tenant_id = '$acme_id'")
  set_key() { echo "\\! $PG_BIN/psql -X -q -h 127.0.0.1 -p $C -U postgres -d app -c \"UPDATE tenant_data.node_key SET secret = '$1'\""; }
  check "$mode: a worker session that accepted a node token of the old key refuses it once the key changed" "$g_rows|refused" \
    "$(q "$wport" app -c '\set VERBOSITY sqlstate' -c "BEGIN" -c "SET LOCAL pg_tenant.context = '$(node_token app "$globex_id" "$node_secret")'" -c "SELECT count(*) FROM $shard" -c "COMMIT" \
        -c "$(set_key "$rotated")" -c "BEGIN" -c "SET LOCAL pg_tenant.context = '$(node_token app "$globex_id" "$node_secret")'" -c "SELECT count(*) FROM $shard" \
        | sed -E 's/^ERROR:  (PT001|PT02.|55P02)$/refused/' | grep -E '^([0-9]+|refused|ERROR.*)$' | grep -vx 'ERROR:  25P02' | paste -sd'|')"
  check "$mode: a coordinator session's set_local() reaches the workers before and after the key changes (signed and verified with the new one)" "$a_rows|$a_rows" \
    "$(q "$C" app -c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "SELECT count(*) FROM docs" -c "COMMIT" \
        -c "$(set_key "$node_secret")" -c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "SELECT count(*) FROM docs" -c "COMMIT" \
        | grep -E '^([0-9]+|ERROR.*)$' | paste -sd'|')"
  # (Attack review of the key cache, finding 3.) Inside a transaction already open when the key
  # changes, READ COMMITTED or REPEATABLE READ, a new token of the old key is refused at once.
  local iso open_tx=""
  for iso in "READ COMMITTED" "REPEATABLE READ"; do
    open_tx+="$(q "$wport" app -c '\set VERBOSITY sqlstate' -c "BEGIN ISOLATION LEVEL $iso" -c "SET LOCAL pg_tenant.context = '$(node_token app "$globex_id" "$node_secret")'" -c "SELECT count(*) FROM $shard" \
        -c "$(set_key "$rotated")" -c "SET LOCAL pg_tenant.context = '$(node_token app "$globex_id" "$node_secret" 121)'" -c "SELECT count(*) FROM $shard" -c "$(set_key "$node_secret")" \
        | sed -E 's/^ERROR:  (PT001|PT02.|55P02)$/refused/' | grep -E '^([0-9]+|refused|ERROR.*)$' | grep -vx 'ERROR:  25P02' | paste -sd'|') "
  done
  check "$mode: in a worker transaction open when the key changes (read committed, repeatable read), a new token of the old key is refused" "$g_rows|refused $g_rows|refused " "$open_tx"

  # Lifecycle: tenant.drop() deletes the tenant's rows on every worker (as each table's owner,
  # with a node token minted for it), a suspended tenant's too.
  # (Tables of an ordinary owner, who is subject to the tables' row security; Citus connects to the
  # workers as the current role, so it must be able to log in.)
  q "$C" postgres -c "CREATE ROLE tblowner LOGIN" -c "ALTER TABLE docs OWNER TO tblowner" -c "ALTER TABLE notes OWNER TO tblowner" -c "SELECT tenant.create('gone')" >/dev/null
  # (Fourth attack review) the owner's code that the drop runs must not see the tenant's rows in
  # a table of someone else's it may read: a statement trigger on its own protected table.
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || exit 1
CREATE TABLE vault (id bigserial, tenant_id uuid, body text);
SELECT tenant.protect('vault');
SET citus.enable_unsafe_triggers = on;
-- (Not colocated with docs: Citus refuses a transaction that modifies placements of one
-- colocation group as two users, which the drop, deleting as each table's owner, would do.)
SELECT create_distributed_table('vault', 'tenant_id', colocate_with => 'none');
GRANT INSERT ON vault TO app;
GRANT USAGE ON SEQUENCE vault_id_seq TO app;
GRANT SELECT ON vault TO tblowner;
CREATE TABLE loot (what text);
ALTER TABLE loot OWNER TO tblowner;
CREATE TABLE a_trap (id int, tenant_id uuid);
SELECT tenant.protect('a_trap');
ALTER TABLE a_trap OWNER TO tblowner;
CREATE FUNCTION grab() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    BEGIN
        INSERT INTO public.loot SELECT 'read: ' || body FROM public.vault;
    EXCEPTION WHEN OTHERS THEN
        INSERT INTO public.loot VALUES ('refused: ' || SQLSTATE);
    END;
    RETURN NULL;
END
$f$;
ALTER FUNCTION grab() OWNER TO tblowner;
CREATE TRIGGER grab BEFORE DELETE ON a_trap FOR EACH STATEMENT EXECUTE FUNCTION grab();
ALTER TABLE a_trap OWNER TO tblowner;
SQL
  as_tenant "$C" "$(token gone)" "INSERT INTO docs (body) VALUES ('x1'), ('x2'); INSERT INTO notes (body) VALUES ('xn'); INSERT INTO vault (body) VALUES ('gone-secret')" >/dev/null
  local gone_id
  gone_id=$(q "$C" postgres -c "SELECT id FROM tenant_data.tenants WHERE slug = 'gone'")
  q "$C" postgres -c "SELECT tenant.suspend('gone', 'leaving')" >/dev/null
  # (Loaded on demand too: each session of the database loads pg_tenant at its start, see
  # citus_setup(), before the workers decide the statement's row security.)
  local tenants=3
  check "$mode: tenant.drop() of a suspended tenant deletes its rows on every shard" "2|1|0" \
    "$(q "$C" postgres -c "SELECT count(*) FROM docs WHERE tenant_id = '$gone_id'")|$(q "$C" postgres -c "SELECT count(*) FROM notes WHERE tenant_id = '$gone_id'")|$(q "$C" postgres -c "SELECT tenant.drop('gone')" >/dev/null; q "$C" postgres -c "SELECT (SELECT count(*) FROM docs WHERE tenant_id = '$gone_id') + (SELECT count(*) FROM notes WHERE tenant_id = '$gone_id') + (SELECT count(*) FROM tenant_data.tenants WHERE id = '$gone_id')")"
  check "$mode: ... and no other tenant's row" "2|1" \
    "$(gw -c "SELECT count(*) FROM docs")|$(q "$C" postgres -c "SELECT count(*) FROM docs WHERE body LIKE 'g%'")"
  local drop_tok
  drop_tok=$(node_token tblowner "$gone_id" "$node_secret" 120 pg_tenant-node drop)
  check "$mode: a drop token set at session level, or in an earlier transaction, sets nothing aside for its owner" "PT001|PT001" \
    "$(err "$wport" tblowner -c "SET pg_tenant.context = '$drop_tok'" -c "SELECT count(*) FROM $shard")|$(err "$wport" tblowner -c "BEGIN" -c "SET LOCAL pg_tenant.context = '$drop_tok'" -c "COMMIT" -c "SELECT count(*) FROM $shard")"
  check "$mode: the owner's trigger run by the drop read none of the tenant's rows elsewhere" "refused: PT001" \
    "$(q "$C" postgres -c "SELECT coalesce(string_agg(what, ','), 'none') FROM loot")"

  # 6. No other permissive policy beside a permissive tenant_isolation (second attack review):
  # Citus makes every policy permissive on the shards.
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || exit 1
CREATE TABLE owned (id int, tenant_id uuid, owner_name text DEFAULT current_user);
ALTER TABLE owned ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON owned USING (owner_name = current_user);
SQL
  check "$mode: protect() of a table with a policy of its own is refused, nothing changed" "0A000|0|own_rows" \
    "$(err "$C" postgres -c "SELECT tenant.protect('owned')")|$(q "$C" postgres -c "SELECT count(*) FROM tenant.protected_tables WHERE table_name = 'owned'::regclass")|$(q "$C" postgres -c "SELECT string_agg(polname, ',') FROM pg_policy WHERE polrelid = 'owned'::regclass")"
  check "$mode: a permissive policy added to a protected table is refused (even by a superuser)" "0A000" \
    "$(err "$C" postgres -c "CREATE POLICY wide ON docs USING (true)")"
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || exit 1
-- What protect() made before Citus was installed: RESTRICTIVE tenant_isolation, PERMISSIVE tenant_access.
CREATE TABLE before_citus (id int, tenant_id uuid NOT NULL DEFAULT tenant.current());
ALTER TABLE before_citus ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON before_citus AS RESTRICTIVE USING (tenant_id = tenant.current()) WITH CHECK (tenant_id = tenant.current());
CREATE POLICY tenant_access ON before_citus USING (true) WITH CHECK (true);
SQL
  check "$mode: a table protected the pre-Citus way cannot be distributed (the shards would admit every row)" "0A000|0" \
    "$(err "$C" postgres -c "SELECT create_distributed_table('before_citus', 'tenant_id')")|$(q "$C" postgres -c "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'before_citus'::regclass")"
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || exit 1
CREATE SCHEMA tplc;
CREATE TABLE tplc.items (id int, title text);
SELECT tenant.create('sc', isolation => 'schema', template => 'tplc');
SQL
  check "$mode: a schema tenant's schema cannot be distributed (its shards would admit every row)" "0A000|0" \
    "$(err "$C" postgres -c "SET citus.enable_unsafe_triggers = on" -c "SELECT citus_schema_distribute('tenant_sc')")|$(q "$C" postgres -c "SELECT count(*) FROM pg_dist_partition WHERE logicalrelid = 'tenant_sc.items'::regclass")"

  # 7. A reference table with shared rows.
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || exit 1
CREATE TABLE categories (name text, tenant_id uuid);
INSERT INTO categories VALUES ('shared-1', NULL), ('shared-2', NULL);
SELECT tenant.protect('categories', shared_rows => true);
SET citus.enable_unsafe_triggers = on;
SELECT create_reference_table('categories');
GRANT SELECT, INSERT, UPDATE, DELETE ON categories TO app;
SQL
  check "$mode: reference table: acme reads the shared rows and writes its own" "INSERT 0 1|3" \
    "$(as_tenant "$C" "$acme" "INSERT INTO categories (name) VALUES ('acme-only')" | grep INSERT)|$(as_tenant "$C" "$acme" "SELECT count(*) FROM categories" | grep -E '^[0-9]+$')"
  check "$mode: reference table: acme cannot change a shared row; globex does not see acme's" "UPDATE 0|2" \
    "$(as_tenant "$C" "$acme" "UPDATE categories SET name = 'x' WHERE name = 'shared-1'" | grep UPDATE)|$(as_tenant "$C" "$globex" "SELECT count(*) FROM categories" | grep -E '^[0-9]+$')"

  # 8. Export and import (lifecycle.sh).
  run_lifecycle "$mode"
  tenants=$((tenants + $(q "$C" postgres -c "SELECT count(*) FROM tenant_data.tenants WHERE slug ~ '^x[a-d]$'")))

  # 8a. Count and meter quotas on a distributed table (quotas.sh). (Before routing.sh, whose
  # tables colocated with docs have another owner, which tenant.drop() cannot delete from.)
  run_quotas "$mode"

  # 8b. Routing to the tenant's shard (routing.sh).
  run_routing "$mode" "$acme_id"
  tenants=$((tenants + $(q "$C" postgres -c "SELECT count(*) FROM tenant_data.tenants WHERE slug ~ '^r(a|b[0-9]+)$'")))

  # 9. tenant.check() on Citus.
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || exit 1
CREATE TABLE by_id (id bigint, tenant_id uuid);
SELECT tenant.protect('by_id');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('by_id', 'id');
-- What a table protected before Citus was installed looks like.
CREATE TABLE old_layout (id int, tenant_id uuid);
SELECT tenant.protect('old_layout');
DROP POLICY tenant_isolation ON old_layout;
CREATE POLICY tenant_isolation ON old_layout AS RESTRICTIVE USING (tenant_id = tenant.current());
CREATE POLICY tenant_access ON old_layout USING (true);
SQL
  check "$mode: check() after citus_setup(): no registry table left to convert, no node without the keys, pg_tenant loaded at each session's start" "0|0|0" \
    "$(q "$C" postgres -c "SELECT count(*) FROM tenant.check() WHERE problem LIKE 'not a Citus reference table%'")|$(q "$C" postgres -c "SELECT count(*) FROM tenant.check() WHERE object LIKE 'node %'")|$(q "$C" postgres -c "SELECT count(*) FROM tenant.check() WHERE problem LIKE 'pg_tenant is neither preloaded%'")"
  check "$mode: check() rates a protected table distributed by another column medium" "medium|public.by_id|distributed by column id, not by its tenant column tenant_id" \
    "$(q "$C" postgres -c "SELECT severity || '|' || object || '|' || split_part(problem, ':', 1) FROM tenant.check() WHERE problem LIKE 'distributed by column%'")"
  check "$mode: check() rates a table protected the pre-Citus way high" "high|public.old_layout" \
    "$(q "$C" postgres -c "SELECT severity || '|' || object FROM tenant.check() WHERE problem LIKE 'protected before Citus%'")"
  local key_shard
  key_shard=$(q "$C" postgres -c "SELECT 'tenant_data.node_key_' || shardid FROM pg_dist_shard WHERE logicalrelid = 'tenant_data.node_key'::regclass")
  q "$W1" postgres -c "SET citus.enable_manual_changes_to_shards = on" -c "DELETE FROM $key_shard" >/dev/null
  check "$mode: check() rates a node without the node key high" "high|node 127.0.0.1:$W1" \
    "$(q "$C" postgres -c "SELECT severity || '|' || object FROM tenant.check() WHERE object LIKE 'node %'")"

  # 10. A worker added later: Citus creates the extension there; the registry's reference tables
  # reach it with replicate_reference_tables(); then it verifies tokens itself.
  PG_TENANT_CONF="$conf" start_cluster citus_w3 "$W3"
  "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$W3" -U postgres -d postgres -c "CREATE DATABASE app" >/dev/null || exit 1
  q "$W3" postgres -c "CREATE EXTENSION citus" >/dev/null || exit 1
  q "$C" postgres -c "SELECT citus_add_node('127.0.0.1', $W3)" >/dev/null || exit 1
  check "$mode: a worker added later has pg_tenant (Citus creates the extension there)" "0.3.0" \
    "$(q "$W3" postgres -c "SELECT extversion FROM pg_extension WHERE extname = 'pg_tenant'")"
  # (block_writes: the suite's own reference table categories has no primary key, so Citus's
  # default logical replication refused it, the whole call failed, and the new worker read the
  # registry from the coordinator's placements instead of its own.)
  q "$C" postgres -c "SELECT replicate_reference_tables('block_writes')" >/dev/null
  check "$mode: after replicate_reference_tables() it holds the registry, the keys and the node key, as placements of its own" "$tenants|1|1|5" \
    "$(q "$W3" postgres -c "SELECT (SELECT count(*) FROM tenant_data.tenants) || '|' || (SELECT count(*) FROM tenant_data.signing_keys) || '|' || (SELECT count(*) FROM tenant_data.node_key)")|$(q "$C" postgres -c "SELECT count(*) FROM pg_dist_placement pl JOIN pg_dist_shard s USING (shardid) JOIN pg_dist_node n USING (groupid) WHERE n.nodeport = $W3 AND s.logicalrelid::regclass::text LIKE 'tenant_data.%'")"
  check "$mode: check() then finds no node without the keys (other than the one this suite broke)" "node 127.0.0.1:$W1" \
    "$(q "$C" postgres -c "SELECT string_agg(object, ',') FROM tenant.check() WHERE object LIKE 'node %'")"
  check "$mode: the new worker verifies a token itself (SET LOCAL pg_tenant.token, direct connection)" "$acme_id" \
    "$(q "$W3" app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$acme'" -c "SELECT tenant.current()" | grep -E '^[0-9a-f-]{36}$')"

  # Closing: no backend of any node crashed during the mode (nothing in this suite kills one).
  check "$mode: no backend crashed on any node (server logs)" "none" \
    "$(for node in citus_coord citus_w1 citus_w2 citus_w3; do grep -hE 'PANIC|terminated by signal|was terminated by exception' "${PG_TENANT_CLUSTER_DIR:-/tmp}/pg_tenant_$node/server.log" 2>/dev/null; done | head -3 | tr '\n' ' ' | sed 's/ $//' | grep . || echo none)"
  for node in citus_coord citus_w1 citus_w2 citus_w3; do scripts/cluster.sh stop "$node" >/dev/null 2>&1; done
}

run_mode preload
run_mode plain
