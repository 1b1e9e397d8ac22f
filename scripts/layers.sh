#!/usr/bin/env bash
# The layering of src/ (docs/architecture.md): each top-level module (a file, or a folder with
# everything in it) sits in one layer, and its `crate::` paths may only name modules of its own
# layer or a lower one; the modules together form no import cycle. Fails naming the offending
# file and path, or the modules of a cycle.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

# Bottom to top. A new top-level module must be added here (an unknown one fails).
declare -A layer_of=(
  [error]=0 [types]=0
  [txn_cell]=1 [args]=1 [citus]=1 [exemption]=1 [gucs]=1 [pg_settings]=1 [hooks]=1 [node_context]=1 [owner]=1 [tenant_plans]=1 [xact]=1
  [registry]=2 [isolation]=2 [quotas]=2 [schemas]=2 [context]=2 [citus_setup]=2 [lifecycle]=2 [export]=2 [stats]=2
)
layer_names=(base plumbing features)

failed=0
edges=$(mktemp /tmp/pg_tenant_layers.XXXXXX)
trap 'rm -f "$edges"' EXIT

top_of() {  # src/quotas/row_counter/mod.rs -> quotas; src/gucs.rs -> gucs
  local rel=${1#src/}
  rel=${rel%%/*}
  echo "${rel%.rs}"
}

while IFS= read -r file; do
  from=$(top_of "$file")
  [ "$from" = lib ] && continue  # lib.rs only wires
  if [ -z "${layer_of[$from]+x}" ]; then
    echo "test layers: $file: module $from has no layer in scripts/layers.sh"
    failed=1
    continue
  fi
  # Every crate:: path outside comments, `use crate::x::{...}` and inline `crate::x::f()` alike.
  while IFS=: read -r line to; do
    [ "$to" = "$from" ] && continue
    if [ -z "${layer_of[$to]+x}" ]; then
      echo "test layers: $file:$line names crate::$to, which has no layer in scripts/layers.sh"
      failed=1
      continue
    fi
    if ((layer_of[$to] > layer_of[$from])); then
      echo "test layers: $file:$line: $from (${layer_names[${layer_of[$from]}]}) imports $to (${layer_names[${layer_of[$to]}]}), a higher layer"
      failed=1
    fi
    echo "$from $to" >>"$edges"
  done < <(grep -n 'crate::' "$file" | grep -v '^[0-9]*:[[:space:]]*//' |
    grep -o '^[0-9]*:\|crate::[a-z_]*' | awk '/^[0-9]+:$/ {n=$0; next} {sub("crate::", ""); print n $0}')
done < <(find src -name '*.rs' | sort)

# tsort reports the modules of each cycle ("input contains a loop") on stderr.
if loops=$(sort -u "$edges" | tsort 2>&1 >/dev/null) && [ -z "$loops" ]; then
  :
else
  echo "test layers: import cycle between top-level modules:"
  while IFS= read -r l; do echo "  $l"; done <<<"$loops"
  failed=1
fi

if [ $failed = 0 ]; then
  echo "test layers: imports go down the layers, no cycle ... ok"
else
  echo "test layers: ... FAILED"
fi
exit $failed
