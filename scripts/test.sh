#!/usr/bin/env bash
# Every test suite, then one closing line "N passed, N failed" over all of them.
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0; failed=0; status=0
log=$(mktemp)

# Runs one suite and adds its counts: pg_regress and the shell suites print "test NAME ... ok"
# lines, cargo prints "test result: ok. N passed; M failed".
run_suite() {  # command, "lines" or "cargo"
  local rc p f
  "$1" 2>&1 | tee "$log"; rc=${PIPESTATUS[0]}
  if [ "$2" = cargo ]; then
    p=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ /^passed/) s += $i } END { print s + 0 }' "$log")
    f=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ /^failed/) s += $i } END { print s + 0 }' "$log")
  else
    p=$(grep -cE '^test .*\.\.\. ok' "$log"); f=$(grep -cE '\.\.\. FAILED' "$log")
  fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$rc" != 0 ]; then status=1; [ "$f" -gt 0 ] || failed=$((failed + 1)); fi
}

run_suite scripts/lint.sh lines
run_suite scripts/regress.sh lines
run_suite scripts/clone_fidelity.sh lines
run_suite scripts/concurrency.sh lines
run_suite scripts/shared_counters.sh lines
run_suite scripts/pooler.sh lines
run_suite scripts/dump_restore.sh lines
run_suite scripts/upgrade.sh lines
run_suite scripts/faults.sh lines
run_suite tests/security/run.sh lines
run_suite scripts/admin_changes.sh lines
run_suite scripts/standby.sh lines
run_suite scripts/clients.sh lines
run_suite scripts/unit.sh cargo

rm -f "$log"
echo
echo "pg_tenant: $passed passed, $failed failed"
exit $status
