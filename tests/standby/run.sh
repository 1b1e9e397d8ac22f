#!/usr/bin/env bash
# Read replicas (issue 12, item 6): a primary and a streaming hot standby (pg_basebackup -R). On
# the standby, as an application role, every way to choose a tenant works and reads see exactly
# the tenant's rows (serial and parallel), quotas can be checked, and writes are refused by
# PostgreSQL as on any standby; with and without shared_preload_libraries on the standby.
SUITE=standby
. "$(dirname "$0")/../lib.sh"
EXPECTED_CHECKS=12   # 6 per mode
start_cluster standby_primary "$(suite_port standby)"
primary_dir=$dir
SPORT=$(suite_port standby_replica)
sdir=${PG_TENANT_CLUSTER_DIR:-/tmp}/pg_tenant_standby_replica
as_owner() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }
stop_standby() { [ -f "$sdir/data/postgresql.conf" ] && as_owner "$PG_BIN/pg_ctl" -D "$sdir/data" -m immediate -w stop >/dev/null 2>&1; }
on_exit stop_standby
SECRET='standby-suite-secret-0123456789-abcdef'
psql() { "$PG_BIN/psql" -X -q -t -A -v ON_ERROR_STOP=0 "$@" 2>&1; }

cat >>"$primary_dir/data/postgresql.conf" <<CONF
wal_level = replica
max_wal_senders = 4
CONF
echo "local replication all trust" >>"$primary_dir/data/pg_hba.conf"
as_owner "$PG_BIN/pg_ctl" -D "$primary_dir/data" -w restart -l "$primary_dir/server.log" >/dev/null

psql -d postgres -U postgres -v secret="$SECRET" >/dev/null <<'SQL'
CREATE EXTENSION pg_tenant;
SELECT tenant.create('acme'), tenant.create('globex');
SELECT tenant.create_plan('replica', '{"calls": {"limit": 10}}');
SELECT tenant.change_plan('acme', 'replica');
SELECT tenant.set_signing_key('HS256', :'secret');
CREATE ROLE web LOGIN;
SELECT tenant.grant_gateway('web', transaction_only => true);
CREATE ROLE bearer LOGIN;
CREATE TABLE docs (id int, body text);
SELECT tenant.protect('docs');
GRANT SELECT, INSERT ON docs TO web, bearer;
SELECT tenant.set('acme'); INSERT INTO docs SELECT g, 'acme-' || g FROM generate_series(1, 500) g;
SELECT tenant.set('globex'); INSERT INTO docs SELECT g, 'globex-' || g FROM generate_series(1, 300) g;
SELECT tenant.reset();
ANALYZE docs;
SQL

rm -rf "$sdir"; mkdir -p "$sdir"; chown postgres "$sdir"
as_owner "$PG_BIN/pg_basebackup" -h "$primary_dir" -p "$PGPORT" -U postgres -D "$sdir/data" -R -X stream >/dev/null 2>&1
sed -i '/^port = /d; /^unix_socket_directories = /d; /^shared_preload_libraries/d' "$sdir/data/postgresql.conf"
printf "port = %s\nunix_socket_directories = '%s'\nhot_standby = on\n" "$SPORT" "$sdir" >>"$sdir/data/postgresql.conf"

jwt() { hs256_token "$SECRET" "$1"; }

for mode in plain preload; do
  stop_standby
  sed -i '/^shared_preload_libraries/d' "$sdir/data/postgresql.conf"
  [ "$mode" = preload ] && echo "shared_preload_libraries = 'pg_tenant'" >>"$sdir/data/postgresql.conf"
  as_owner "$PG_BIN/pg_ctl" -D "$sdir/data" -l "$sdir/server.log" -w start >/dev/null
  s() { psql -h "$sdir" -p "$SPORT" -d postgres "$@"; }
  check "$mode: the standby is in recovery" "t" "$(s -U postgres -c 'SELECT pg_is_in_recovery()')"
  tok=$(jwt acme)
  out=$(s -U web -v VERBOSITY=verbose <<SQL
BEGIN;
SELECT 'set_local:' || (tenant.set_local('acme') IS NOT NULL);
SELECT 'rows:' || count(*) || ':' || count(*) FILTER (WHERE body LIKE 'acme-%') FROM docs;
SET LOCAL force_parallel_mode = on; SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0;
SELECT 'parallel:' || count(*) || ':' || count(*) FILTER (WHERE body LIKE 'acme-%') FROM docs;
SELECT 'quota:' || allowed || ':' || "limit" FROM tenant.check_quota('calls', 0);
SELECT 'info:' || slug || ':' || plan FROM tenant.info();
COMMIT;
BEGIN;
SELECT tenant.set_local('globex') IS NOT NULL;
SELECT 'globex:' || count(*) FROM docs;
INSERT INTO docs VALUES (0, 'write on a standby');
ROLLBACK;
SQL
)
  echo "$out" > "/tmp/pg_tenant_standby.$mode.gateway.out"
  check "$mode: set_local on the standby, serial and parallel reads see exactly the tenant's rows" \
    "set_local:true rows:500:500 parallel:500:500" \
    "$(grep -o '^set_local:.*' <<<"$out") $(grep -o '^rows:.*' <<<"$out") $(grep -o '^parallel:.*' <<<"$out")"
  check "$mode: check_quota and info on the standby" "quota:true:10 info:acme:replica" \
    "$(grep -o '^quota:.*' <<<"$out") $(grep -o '^info:.*' <<<"$out")"
  check "$mode: another tenant's context sees its own rows; a write is refused as on any standby" \
    "globex:300 25006" "$(grep -o '^globex:.*' <<<"$out") $(grep -o '25006' <<<"$out" | head -1)"
  out=$(s -U bearer -v VERBOSITY=verbose <<SQL
SELECT 'fn:' || (tenant.set_token('$tok') IS NOT NULL);
SELECT 'fn-rows:' || count(*) FROM docs;
SELECT tenant.reset();
SET pg_tenant.token = '$tok';
SELECT 'param-rows:' || count(*) FROM docs;
RESET pg_tenant.token;
BEGIN;
SELECT set_config('pg_tenant.token', '$tok', true) IS NOT NULL;
SET LOCAL force_parallel_mode = on; SET LOCAL parallel_setup_cost = 0; SET LOCAL parallel_tuple_cost = 0;
SELECT 'local-parallel:' || count(*) FROM docs;
COMMIT;
SQL
)
  echo "$out" > "/tmp/pg_tenant_standby.$mode.token.out"
  check "$mode: tokens on the standby (set_token, SET, set_config local with a parallel plan)" \
    "fn:true fn-rows:500 param-rows:500 local-parallel:500" \
    "$(grep -o '^fn:.*' <<<"$out") $(grep -o '^fn-rows:.*' <<<"$out") $(grep -o '^param-rows:.*' <<<"$out") $(grep -o '^local-parallel:.*' <<<"$out")"
  check "$mode: no transaction id was needed" "0" "$(grep -c 'cannot assign' <<<"$out$(cat /tmp/pg_tenant_standby.$mode.gateway.out)")"
done
exit "$failed"
