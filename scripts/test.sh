#!/usr/bin/env bash
# Every test suite, then one closing line "N passed, N failed" over all of them.
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0; failed=0; status=0
log=$(mktemp)

scripts/regress.sh 2>&1 | tee "$log"; rc=${PIPESTATUS[0]}
p=$(grep -cE '^(ok|test) .*\.\.\. ok' "$log"); f=$(grep -cE '\.\.\. FAILED' "$log")
passed=$((passed + p)); failed=$((failed + f)); [ "$rc" = 0 ] || { status=1; [ "$f" -gt 0 ] || failed=$((failed + 1)); }

scripts/unit.sh 2>&1 | tee "$log"; rc=${PIPESTATUS[0]}
p=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^passed/) s += $i } END { print s + 0 }' "$log")
f=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^failed/) s += $i } END { print s + 0 }' "$log")
passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); [ "$rc" = 0 ] || { status=1; [ "${f:-0}" -gt 0 ] || failed=$((failed + 1)); }

rm -f "$log"
echo
echo "pg_tenant: $passed passed, $failed failed"
exit $status
