#!/usr/bin/env bash
# The code gate: rustfmt's layout and no clippy warning (pg15, the version this machine tests);
# the layering of src/ (scripts/layers.sh); no finding of shellcheck in any shell script (.shellcheckrc; skipped when shellcheck is not
# installed: scripts/bootstrap.sh installs it).
SUITE=lint
. "$(dirname "$0")/../tests/lib.sh"
EXPECTED_CHECKS=3
if cargo fmt --check >/tmp/pg_tenant_fmt.$$ 2>&1; then
  check "cargo fmt --check" ok ok
else
  check "cargo fmt --check" ok "$(grep -c '^Diff in' /tmp/pg_tenant_fmt.$$) places differ; run cargo fmt"
fi
rm -f /tmp/pg_tenant_fmt.$$
if out=$(scripts/layers.sh 2>&1); then
  check "layers: no module imports a higher layer, no cycle" ok ok
else
  check "layers: no module imports a higher layer, no cycle" ok "violations"
  head -20 <<<"$out"
fi
if out=$(cargo clippy --no-default-features --features pg15 -- -D warnings 2>&1); then
  check "cargo clippy -D warnings" ok ok
else
  check "cargo clippy -D warnings" ok "warnings"
  grep -E '^(error|warning)' -A6 <<<"$out" | head -40
fi

# Every shell script: *.sh, and files whose first line runs a shell (tracked ones in a git checkout).
shell_scripts() {
  { git ls-files 2>/dev/null || find . -path ./target -prune -o -type f -print; } |
    while read -r f; do
      case $f in *.sh) echo "$f" ;; *) head -1 "$f" 2>/dev/null | grep -qE '^#!.*/(env )?(ba)?sh$' && echo "$f" ;; esac
    done
}
if command -v shellcheck >/dev/null; then
  EXPECTED_CHECKS=4
  mapfile -t scripts < <(shell_scripts)
  if out=$(shellcheck -x "${scripts[@]}" 2>&1); then
    check "shellcheck (${#scripts[@]} scripts)" ok ok
  else
    check "shellcheck (${#scripts[@]} scripts)" ok "$(grep -c '^In ' <<<"$out") findings"
    head -60 <<<"$out"
  fi
else
  echo "# lint: shellcheck is not installed (scripts/bootstrap.sh installs it): skipped"
fi
exit "$failed"
