#!/usr/bin/env bash
# The code gate: rustfmt's layout, no clippy warning (pg15, the version this machine tests), and
# the layering of src/ (scripts/layers.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
failed=0
if cargo fmt --check >/tmp/pg_tenant_fmt.$$ 2>&1; then
  echo "test lint: cargo fmt --check ... ok"
else
  echo "test lint: cargo fmt --check ... FAILED ($(grep -c '^Diff in' /tmp/pg_tenant_fmt.$$) places; run cargo fmt)"
  failed=1
fi
rm -f /tmp/pg_tenant_fmt.$$
if out=$(cargo clippy --no-default-features --features pg15 -- -D warnings 2>&1); then
  echo "test lint: cargo clippy -D warnings ... ok"
else
  echo "test lint: cargo clippy -D warnings ... FAILED"
  grep -E '^(error|warning)' -A6 <<<"$out" | head -40
  failed=1
fi
scripts/layers.sh || failed=1
exit $failed
