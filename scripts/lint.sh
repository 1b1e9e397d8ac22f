#!/usr/bin/env bash
# The code gate: rustfmt's layout and no clippy warning (pg15, the version this machine tests).
SUITE=lint
. "$(dirname "$0")/../tests/lib.sh"
EXPECTED_CHECKS=2
if cargo fmt --check >/tmp/pg_tenant_fmt.$$ 2>&1; then
  check "cargo fmt --check" ok ok
else
  check "cargo fmt --check" ok "$(grep -c '^Diff in' /tmp/pg_tenant_fmt.$$) places differ; run cargo fmt"
fi
rm -f /tmp/pg_tenant_fmt.$$
if out=$(cargo clippy --no-default-features --features pg15 -- -D warnings 2>&1); then
  check "cargo clippy -D warnings" ok ok
else
  check "cargo clippy -D warnings" ok "warnings"
  grep -E '^(error|warning)' -A6 <<<"$out" | head -40
fi
exit $failed
