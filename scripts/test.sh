#!/usr/bin/env bash
# Every test suite, then one closing line "N passed, N failed" over all of them. The counts are
# checks (assertions): each suite declares how many it runs and closes with tests/lib.sh's line
#   summary SUITE: P passed, F failed, M missing of E declared
# (missing checks, those of a suite that stopped early, count as failed); a pg_regress file counts
# as one check per pass; cargo's unit tests count from "test result: ok. N passed; M failed".
# The lines of failed checks are printed again before the closing line (a CI log shows its tail).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
passed=0; failed=0; status=0
log=$(mktemp); failures=$(mktemp)

run_suite() {  # command, "summary" or "cargo"
  local rc p f
  "$1" 2>&1 | tee "$log"; rc=${PIPESTATUS[0]}
  if [ "$2" = cargo ]; then
    p=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ /^passed/) s += $i } END { print s + 0 }' "$log")
    f=$(awk '/^test result:/ { for (i = 1; i < NF; i++) if ($(i+1) ~ /^failed/) s += $i } END { print s + 0 }' "$log")
  elif grep -q '^summary ' "$log"; then
    p=$(awk '/^summary / { s += $3 } END { print s + 0 }' "$log")
    f=$(awk '/^summary / { s += $5 + $7 } END { print s + 0 }' "$log")
  else
    echo "test.sh: $1 printed no summary line ... FAILED" | tee -a "$failures"
    p=0; f=1
  fi
  # (Each failing check's line again at the end, where a CI log's tail shows it.)
  grep -E '\.\.\. FAILED|^test result: FAILED' "$log" | cut -c1-400 >> "$failures"
  if [ "$rc" != 0 ] && [ "$f" = 0 ]; then echo "$1 exited with $rc" >> "$failures"; fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" -gt 0 ]; then status=1; fi
  if [ "$rc" != 0 ]; then status=1; [ "$f" -gt 0 ] || failed=$((failed + 1)); fi
}

for suite in scripts/lint.sh tests/pg_regress/run.sh tests/clone_fidelity/run.sh tests/concurrency/run.sh \
             tests/shared_counters/run.sh tests/stats/run.sh tests/pooler/run.sh tests/dump_restore/run.sh tests/upgrade/run.sh \
             tests/faults/run.sh tests/security/run.sh tests/admin_changes/run.sh tests/standby/run.sh tests/citus/run.sh tests/sessions/run.sh \
             tests/clients/run.sh; do
  run_suite "$suite" summary
done
run_suite scripts/unit.sh cargo

rm -f "$log"
echo
if [ -s "$failures" ]; then
  echo "Failed checks:"
  head -40 "$failures"
fi
rm -f "$failures"
echo "pg_tenant: $passed checks passed, $failed failed (a pg_regress file counts as one check)"
exit $status
