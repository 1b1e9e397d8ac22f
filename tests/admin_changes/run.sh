#!/usr/bin/env bash
# Admin changes reach sessions connected before them, at their next transaction (issue 12, item
# 1): tests/admin_changes/run.py over real connections, on a fresh cluster without the library
# preloaded ("plain:") and on one with shared_preload_libraries = 'pg_tenant' ("preload:").
# Prints "test admin_changes: MODE: NAME ... ok|FAILED" lines; exits non-zero if a check failed.
SUITE=admin_changes
. "$(dirname "$0")/../lib.sh"
EXPECTED_CHECKS=86   # 43 per mode (tests/admin_changes/run.py)
PORT=$(suite_port admin_changes)
PRE_PORT=$(suite_port admin_changes_pre)
on_exit 'scripts/cluster.sh stop admin_changes >/dev/null 2>&1; scripts/cluster.sh stop admin_changes_pre >/dev/null 2>&1'
for mode in plain preload; do
  if [ $mode = plain ]; then name=admin_changes port=$PORT preload=0; else name=admin_changes_pre port=$PRE_PORT preload=1; fi
  dir=$(PG_TENANT_PRELOAD=$preload scripts/cluster.sh start $name "$port") || exit 1
  "$PG_BIN/psql" -X -q -h "$dir" -p "$port" -U postgres -d postgres -c "CREATE DATABASE ac" || exit 1
  count_checks python3 tests/admin_changes/run.py "$dir" "$port" $mode
  scripts/cluster.sh stop $name
done
exit "$failed"
