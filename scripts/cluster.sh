#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the demo, the tests and the benchmark.
#   scripts/cluster.sh start NAME PORT   (re)create and start /tmp/pg_tenant_NAME, listening on a
#                                        private Unix socket in that directory and on PORT
#   scripts/cluster.sh stop NAME         stop it (the files stay for inspection)
# With PG_TENANT_PRELOAD=1 the cluster preloads pg_tenant (count quotas in shared memory);
# PG_TENANT_CONF adds postgresql.conf lines.
# PostgreSQL refuses to run as root, so the cluster belongs to the unprivileged OS user
# "postgres" (created by Debian's postgresql package); root drives it through runuser.
set -euo pipefail
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
OS_USER=${PG_OS_USER:-postgres}
cmd=${1:?usage: cluster.sh start NAME PORT | stop NAME}
name=${2:?cluster name}
# PG_TENANT_CLUSTER_DIR: where clusters live (a second checkout testing beside this one sets its own).
dir=${PG_TENANT_CLUSTER_DIR:-/tmp}/pg_tenant_$name

as_owner() {
  if [ "$(id -un)" = "$OS_USER" ]; then "$@"; else runuser -u "$OS_USER" -- "$@"; fi
}

stop() {
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
}

case "$cmd" in
  start)
    port=${3:?port}
    stop
    rm -rf "$dir"
    mkdir -p "$dir"
    chown "$OS_USER" "$dir"
    as_owner "$PG_BIN/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log"
    cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
max_worker_processes = 16
max_parallel_workers = 8
shared_buffers = 512MB
log_min_messages = warning
CONF
    # PG_TENANT_PRELOAD=1: count quotas in shared memory (src/shared_counters.rs).
    if [ "${PG_TENANT_PRELOAD:-0}" = 1 ]; then
      echo "shared_preload_libraries = 'pg_tenant'" >>"$dir/data/postgresql.conf"
    fi
    # PG_TENANT_CONF: more postgresql.conf lines (they win over the ones above), e.g. for Citus.
    if [ -n "${PG_TENANT_CONF:-}" ]; then
      printf '%s\n' "$PG_TENANT_CONF" >>"$dir/data/postgresql.conf"
    fi
    # The private ports lie in the kernel's ephemeral range: a client connection of another
    # cluster may hold one for a moment ("Address already in use"). Wait and try again.
    for attempt in 1 2 3 4 5 6; do
      if as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null; then
        break
      fi
      if [ "$attempt" = 6 ] || ! grep -q 'Address already in use' "$dir/server.log"; then
        echo "cluster.sh: $name did not start (see $dir/server.log)" >&2
        exit 1
      fi
      sleep 2
    done
    echo "$dir"
    ;;
  stop)
    stop
    ;;
  *)
    echo "usage: cluster.sh start NAME PORT | stop NAME" >&2
    exit 2
    ;;
esac
