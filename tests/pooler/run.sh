#!/usr/bin/env bash
# pg_tenant behind a real pgbouncer (Debian's), started here: transaction pooling with many
# clients sharing a few server connections, each working for its own tenant through
# tenant.set_local(); and session pooling with server_reset_query = DISCARD ALL.
# Prints "test NAME ... ok|FAILED" lines.
SUITE=pooler
. "$(dirname "$0")/../lib.sh"
EXPECTED_CHECKS=20
PORT=$(suite_port pooler)
BOUNCER_PORT=$(suite_port pgbouncer)
CLIENTS=20
TXNS=100
start_cluster pool "$PORT"
# shellcheck disable=SC2016 # expanded when the suite exits
on_exit '[ -f "$dir/pgbouncer.pid" ] && kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null'
psql_super() { "$PG_BIN/psql" -X -q -t -A -h "$dir" -p "$PORT" -U postgres -d pool "$@"; }
"$PG_BIN/psql" -X -q -h "$dir" -p "$PORT" -U postgres -d postgres -c "CREATE DATABASE pool" || exit 1
psql_super -f tests/pooler/setup.sql >/dev/null || exit 1

cat > "$dir/pgbouncer.ini" <<INI
[databases]
pool = host=127.0.0.1 port=$PORT dbname=pool pool_size=4
pool_session = host=127.0.0.1 port=$PORT dbname=pool pool_size=1 pool_mode=session
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
server_reset_query = DISCARD ALL
max_client_conn = 200
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
printf '"pool_app" ""\n"pool_token" ""\n' > "$dir/userlist.txt"
chown postgres "$dir/pgbouncer.ini" "$dir/userlist.txt"
runuser -u postgres -- pgbouncer -d "$dir/pgbouncer.ini" || exit 1
via_bouncer() { "$PG_BIN/psql" -X -q -t -A -h 127.0.0.1 -p "$BOUNCER_PORT" -U pool_app "$@"; }
wait_for 20 via_bouncer -d pool -c "SELECT 1"

work=$(mktemp -d)

# Transaction pooling: client i works for tenant t<i>; every transaction writes a row marked i,
# uses a unit of quota, and counts the rows it can see that are not its own (must be 0). Every
# fifth transaction forgets to set the tenant and must fail with PT001, not inherit one.
for c in $(seq 1 $CLIENTS); do
  {
    echo '\set VERBOSITY verbose'
    for i in $(seq 1 $TXNS); do
      echo "BEGIN; SELECT tenant.set_local('t$c') IS NOT NULL; INSERT INTO items (val) VALUES ($c); SELECT tenant.consume('calls') IS NOT NULL; SELECT 'foreign-rows:' || count(*) FROM items WHERE val <> $c; COMMIT;"
      if [ $((i % 5)) = 0 ]; then echo "SELECT 'inherited:' || count(*) FROM items;"; fi
    done
  } > "$work/client.$c.sql"
done
for c in $(seq 1 $CLIENTS); do via_bouncer -d pool -f "$work/client.$c.sql" > "$work/client.$c.out" 2>&1 & done
wait
check "transaction pooling: $CLIENTS clients x $TXNS transactions over 4 server connections, no foreign row seen" \
  "$((CLIENTS * TXNS))" "$(cat "$work"/client.*.out | grep -c '^foreign-rows:0$')"
check "transaction pooling: a transaction that forgot tenant.set_local() fails with PT001" \
  "$((CLIENTS * TXNS / 5))" "$(cat "$work"/client.*.out | grep -c 'ERROR:  PT001')"
check "transaction pooling: nothing was read without a tenant" 0 "$(cat "$work"/client.*.out | grep -c '^inherited:')"
check "transaction pooling: every row landed in its own tenant" 0 \
  "$(psql_super -c "SELECT count(*) FROM items i JOIN tenant_data.tenants t ON t.id = i.tenant_id WHERE t.slug <> 't' || i.val")"
check "transaction pooling: every tenant has exactly its $TXNS rows" "$CLIENTS" \
  "$(psql_super -c "SELECT count(*) FROM (SELECT tenant_id FROM items GROUP BY 1 HAVING count(*) = $TXNS) s")"
check "transaction pooling: every tenant was charged exactly $TXNS units" "$CLIENTS" \
  "$(psql_super -c "SELECT count(*) FROM tenant_data.usage_counters WHERE resource = 'calls' AND used = $TXNS")"
check "transaction pooling: the clients really shared server connections" 1 \
  "$(psql_super -c "SELECT (count(*) <= 4)::int FROM pg_stat_activity WHERE usename = 'pool_app'")"

# Tokens through transaction pooling: 5 clients of a role with no gateway, each sending its own
# tenant's token with SET LOCAL in every transaction, interleaved on the same server
# connections. Every fifth transaction sends none and must fail with PT001.
TOKEN_CLIENTS=5
for c in $(seq 1 $TOKEN_CLIENTS); do
  token=$(psql_super -c "SELECT pool_jwt('t$c')")
  {
    echo '\set VERBOSITY verbose'
    for i in $(seq 1 40); do
      echo "BEGIN; SET LOCAL pg_tenant.token = '$token'; INSERT INTO items (val) VALUES ($((100 + c))); SELECT 'token-foreign-rows:' || count(*) FROM items WHERE val NOT IN ($c, $((100 + c))); COMMIT;"
      if [ $((i % 5)) = 0 ]; then echo "SELECT 'token-inherited:' || count(*) FROM items;"; fi
    done
  } > "$work/token.$c.sql"
done
for c in $(seq 1 $TOKEN_CLIENTS); do
  "$PG_BIN/psql" -X -q -t -A -h 127.0.0.1 -p "$BOUNCER_PORT" -U pool_token -d pool -f "$work/token.$c.sql" > "$work/token.$c.out" 2>&1 &
done
wait
check "tokens: $TOKEN_CLIENTS clients x 40 transactions with SET LOCAL pg_tenant.token, no foreign row seen" \
  "$((TOKEN_CLIENTS * 40))" "$(cat "$work"/token.*.out | grep -c '^token-foreign-rows:0$')"
check "tokens: a transaction without its token fails with PT001" "$((TOKEN_CLIENTS * 8))" "$(cat "$work"/token.*.out | grep -c 'ERROR:  PT001')"
check "tokens: nothing was read without a token" 0 "$(cat "$work"/token.*.out | grep -c '^token-inherited:')"
check "tokens: every row landed in the token's tenant" 0 \
  "$(psql_super -c "SELECT count(*) FROM items i JOIN tenant_data.tenants t ON t.id = i.tenant_id WHERE i.val > 100 AND t.slug <> 't' || (i.val - 100)")"
check "tokens: every token tenant has exactly its 40 rows" "$TOKEN_CLIENTS" \
  "$(psql_super -c "SELECT count(*) FROM (SELECT tenant_id FROM items WHERE val > 100 GROUP BY 1 HAVING count(*) = 40) s")"

# The bind-parameter form through transaction pooling (psycopg 3, prepared statements off as the
# README advises): the token travels as a parameter, so no server session's query text (what
# pg_stat_activity shows other sessions of the role, and pg_stat_statements and logs keep) holds it.
token=$(psql_super -c "SELECT pool_jwt('t1')")
bound=$(python3 - "$BOUNCER_PORT" "$token" <<'PY' 2>&1
import sys, psycopg
port, token = sys.argv[1], sys.argv[2]
with psycopg.connect(host="127.0.0.1", port=port, user="pool_token", dbname="pool",
                     prepare_threshold=None, autocommit=False) as conn:
    ok = 0
    for i in range(20):
        with conn.transaction():
            conn.execute("SELECT tenant.set_token(%s, local => true)", (token,))
            own, foreign = conn.execute(
                "SELECT count(*) FILTER (WHERE val IN (1, 101)), count(*) FILTER (WHERE val NOT IN (1, 101)) FROM items").fetchone()
            ok += own > 0 and foreign == 0
    print(f"bound:{ok}")
PY
)
check "tokens as a bind parameter (SELECT tenant.set_token(\$1, local => true)) through pgbouncer: 20 transactions see only their tenant" \
  "bound:20" "$(grep -o 'bound:.*' <<<"$bound")"
check "tokens as a bind parameter: no server session's query text holds the token" 0 \
  "$(psql_super -c "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND strpos(query, split_part('$token', '.', 3)) > 0")"

# Plan settings through transaction pooling: t3's own settings (work_mem, a 500ms statement
# timeout ceiling) are in force in the transactions that set_local('t3'), and in no other, on any
# of the shared server connections; the ceiling cancels a statement (57014) even after SET LOCAL
# statement_timeout = 0, in the simple protocol (psql) and the extended one (psycopg: Parse, Bind,
# Execute).
psql_super -c "SELECT tenant.set_tenant_settings('t3', '{\"work_mem\": \"12MB\", \"statement_timeout\": \"500ms\"}')" >/dev/null
{
  for i in $(seq 1 20); do
    echo "BEGIN; SELECT tenant.set_local('t3') IS NOT NULL; SELECT 'in:' || current_setting('work_mem') || ',' || current_setting('statement_timeout'); COMMIT;"
    echo "SELECT 'after:' || current_setting('work_mem') || ',' || current_setting('statement_timeout');"
  done
} > "$work/settings.sql"
for c in 1 2 3 4; do via_bouncer -d pool -f "$work/settings.sql" > "$work/settings.$c.out" 2>&1 & done
wait
check "plan settings: set_local('t3') applies t3's settings for its transaction (80 transactions)" 80 \
  "$(cat "$work"/settings.*.out | grep -c '^in:12MB,500ms$')"
check "plan settings: no transaction after it, on any server connection, has them (80)" 80 \
  "$(cat "$work"/settings.*.out | grep -c '^after:4MB,0$')"
ceiling=$(via_bouncer -d pool <<'SQL' 2>&1
\set VERBOSITY verbose
BEGIN;
SELECT tenant.set_local('t3') IS NOT NULL;
SET LOCAL statement_timeout = 0;
SELECT 'started:' || extract(epoch FROM clock_timestamp());
SELECT pg_sleep(3);
ROLLBACK;
SELECT 'ended:' || extract(epoch FROM clock_timestamp());
SQL
)
started=$(grep -o 'started:[0-9.]*' <<<"$ceiling" | cut -d: -f2)
ended=$(grep -o 'ended:[0-9.]*' <<<"$ceiling" | cut -d: -f2)
check "plan settings: the ceiling cancels pg_sleep(3) with 57014 after SET LOCAL statement_timeout = 0 (simple protocol)" \
  "1 fast" "$(grep -c 'ERROR:  57014: canceling statement due to statement timeout' <<<"$ceiling") $(awk -v s="${started:-0}" -v e="${ended:-99}" 'BEGIN { print (e - s < 2 && e - s >= 0.4) ? "fast" : "took " e - s " s" }')"
extended=$(python3 - "$BOUNCER_PORT" <<'PY' 2>&1
import sys, time, psycopg
port = sys.argv[1]
with psycopg.connect(host="127.0.0.1", port=port, user="pool_app", dbname="pool",
                     prepare_threshold=None, autocommit=False) as conn:
    result = "not cancelled"
    try:
        with conn.transaction():
            conn.execute("SELECT tenant.set_local(%s)", ("t3",))
            conn.execute("SET LOCAL statement_timeout = 0")
            t0 = time.monotonic()
            conn.execute("SELECT pg_sleep(%s)", (3,))
    except psycopg.errors.QueryCanceled as e:
        took = time.monotonic() - t0
        result = f"{e.sqlstate} {'fast' if 0.4 <= took < 2 else f'took {took:.2f} s'}"
    print(f"extended:{result}")
PY
)
check "plan settings: the ceiling holds for the extended protocol too (psycopg, Parse/Bind/Execute)" \
  "extended:57014 fast" "$(grep -o 'extended:.*' <<<"$extended")"

# Session pooling (one server connection, DISCARD ALL between clients): the next client of the
# connection starts with no tenant.
first=$(via_bouncer -d pool_session -c "SELECT tenant.set('t1') IS NOT NULL" -c "SELECT pg_backend_pid()" | tail -1)
second=$(via_bouncer -d pool_session -c "SELECT pg_backend_pid() || ':' || (tenant.current(true) IS NULL)")
check "session pooling: the next client gets the same server connection" "$first" "${second%%:*}"
check "session pooling: DISCARD ALL left it without a tenant" true "${second#*:}"

[ "$failed" = 0 ] && rm -rf "$work" || echo "outputs kept in $work"
exit "$failed"
