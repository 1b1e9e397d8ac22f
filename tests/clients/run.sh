#!/usr/bin/env bash
# The application client examples (clients/): Python with psycopg, Node.js with pg, Rust with
# tokio-postgres, each run against a freshly set-up database on a throwaway cluster, over TCP as a
# non-superuser gateway role. Each prints "test client-LANG: ... ok|FAILED" lines.
SUITE=clients
. "$(dirname "$0")/../lib.sh"
EXPECTED_CHECKS=27   # 9 per client (the check() calls of clients/*/app.*, main.rs)
PORT=$(suite_port clients)
start_cluster clients "$PORT"
export PGOPTIONS="-c client_min_messages=warning"
fresh_db() {  # a new database with clients/setup.sql loaded
  "$PG_BIN/psql" -X -q -U postgres -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" &&
    "$PG_BIN/psql" -X -q -U postgres -d "$1" -f clients/setup.sql >/dev/null
}
fresh_db client_python || failed=1
count_checks python3 clients/python/app.py "postgresql://client_app@127.0.0.1:$PORT/client_python"
fresh_db client_node || failed=1
cd clients/node && count_checks node app.js "postgresql://client_app@127.0.0.1:$PORT/client_node"
cd "$ROOT" && fresh_db client_rust || failed=1
cd clients/rust && count_checks cargo run --quiet --release -- "host=127.0.0.1 port=$PORT user=client_app dbname=client_rust"
cd "$ROOT" || exit 1
exit "$failed"
