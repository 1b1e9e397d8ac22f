#!/usr/bin/env bash
# The application client examples (clients/): Python with psycopg, Node.js with pg, Rust with
# tokio-postgres, each run against a freshly set-up database on a throwaway cluster, over TCP as a
# non-superuser gateway role. Each prints "test client-LANG: ... ok|FAILED" lines.
set -uo pipefail
cd "$(dirname "$0")/.."
PG_BIN=$(${PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config} --bindir)
PORT=${CLIENTS_PORT:-54321}
dir=$(scripts/cluster.sh start clients "$PORT") || exit 1
trap 'scripts/cluster.sh stop clients' EXIT
export PGHOST=$dir PGPORT=$PORT PGOPTIONS="-c client_min_messages=warning"
fresh_db() {  # a new database with clients/setup.sql loaded
  "$PG_BIN/psql" -X -q -U postgres -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" &&
    "$PG_BIN/psql" -X -q -U postgres -d "$1" -f clients/setup.sql >/dev/null
}
status=0
fresh_db client_python && python3 clients/python/app.py "postgresql://client_app@127.0.0.1:$PORT/client_python" || status=1
fresh_db client_node && (cd clients/node && node app.js "postgresql://client_app@127.0.0.1:$PORT/client_node") || status=1
fresh_db client_rust && (cd clients/rust && cargo run --quiet --release -- "host=127.0.0.1 port=$PORT user=client_app dbname=client_rust") || status=1
exit $status
