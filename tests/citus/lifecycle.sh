# shellcheck shell=bash
# Sourced by tests/citus/run.sh: tenant.export() and tenant.import() on Citus (issue 14, lifecycle).
# Export reads a tenant's rows on every worker, as that tenant there (a node token for each
# table's owner), and nothing of another tenant's; import loads them into the shards (the token
# tenant.drop() passes: the owner's code there acts as no tenant); the round trip export, drop,
# import into a new tenant gives the same rows; a refused or failed import changes nothing on any
# worker; only superusers import. 10 checks per mode.
#
# run_lifecycle MODE: uses C, q, err and check from run.sh and the roles app (a gateway) and
# tblowner; creates the tenants xa (dropped, preloaded), xb, xc and xd.
run_lifecycle() {
  local mode=$1 xa xb
  xa=$(q "$C" postgres -c "SELECT tenant.create('xa')")
  xb=$(q "$C" postgres -c "SELECT tenant.create('xb')")
  # docs is distributed by its tenant column (a tenant's rows on one shard); ex_items by id, so
  # that one tenant's rows are on both workers. Both belong to an ordinary role, subject to the
  # tables' FORCE ROW LEVEL SECURITY.
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL || exit 1
CREATE TABLE ex_items (id bigint, tenant_id uuid, body text CHECK (length(body) < 20), price numeric);
SELECT tenant.protect('ex_items');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('ex_items', 'id', colocate_with => 'none');
ALTER TABLE ex_items OWNER TO tblowner;
GRANT SELECT ON ex_items TO app;
INSERT INTO ex_items SELECT g, '$xa', 'xa-item-' || g, g * 1.5 FROM generate_series(1, 8) g;
INSERT INTO ex_items SELECT g, '$xb', 'xb-item-' || g, g FROM generate_series(9, 12) g;
INSERT INTO docs (tenant_id, body) VALUES ('$xa', 'xa-doc-1'), ('$xa', 'xa-doc-2'), ('$xb', 'xb-doc-1');
INSERT INTO notes (tenant_id, body) VALUES ('$xa', 'xa-note');
SQL
  # as SLUG SQL: what the gateway role reads acting as SLUG (set_local()).
  lc_as() { q "$C" app -c "BEGIN" -c "SELECT tenant.set_local('$1') IS NULL" -c "$2" -c "COMMIT" | grep -v '^f$'; }
  # rows TABLE: a table's rows as export() writes them (without the tenant column, in text order).
  rows() { echo "SELECT COALESCE(jsonb_agg(to_jsonb(x) - 'tenant_id' ORDER BY x::text), '[]') FROM $1 x"; }
  # on_shards TABLE TENANT_ID: the tenant's rows in TABLE counted on each shard, on the workers
  # themselves: "rows|nodes holding them".
  on_shards() {
    q "$C" postgres -c "SELECT COALESCE(sum(r.result::int), 0) || '|' || count(DISTINCT n.nodeport) FILTER (WHERE r.result::int > 0)
                          FROM run_command_on_shards('$1', \$\$SELECT count(*) FROM %s WHERE tenant_id = '$2'\$\$) r
                          JOIN pg_dist_placement p ON p.shardid = r.shardid JOIN pg_dist_node n ON n.groupid = p.groupid"
  }
  q "$C" postgres -c "CREATE TABLE ex_saved AS SELECT tenant.export('xa') AS d" >/dev/null

  check "$mode: export: xa's rows are on both workers, and the export holds exactly the rows xa reads as itself" \
    "8|2|t|t|t" \
    "$(on_shards ex_items "$xa")|$(q "$C" postgres -c "SELECT (d->'tables'->'public.ex_items')::text FROM ex_saved" | { read -r e; [ "$e" = "$(lc_as xa "$(rows ex_items)")" ] && echo t || echo f; })|$(q "$C" postgres -c "SELECT (d->'tables'->'public.docs')::text FROM ex_saved" | { read -r e; [ "$e" = "$(lc_as xa "$(rows docs)")" ] && echo t || echo f; })|$(q "$C" postgres -c "SELECT (d->'tables'->'public.notes')::text FROM ex_saved" | { read -r e; [ "$e" = "$(lc_as xa "$(rows notes)")" ] && echo t || echo f; })"
  check "$mode: export: no other tenant's row (xb's rows sit on the same shards)" "8|2|1|0" \
    "$(q "$C" postgres -c "SELECT jsonb_array_length(d->'tables'->'public.ex_items') || '|' || jsonb_array_length(d->'tables'->'public.docs') || '|' || jsonb_array_length(d->'tables'->'public.notes') || '|' || (SELECT count(*) FROM jsonb_each(d->'tables') t, jsonb_array_elements(t.value) r WHERE r::text NOT LIKE '%xa%') FROM ex_saved")"
  # A reference table is read through the coordinator's own placement (acme has one row there).
  check "$mode: export: a reference table holding tenant rows: exactly the tenant's" "t" \
    "$([ "$(q "$C" postgres -c "SELECT (tenant.export('acme')->'tables'->'public.categories')::text")" = "$(lc_as acme "SELECT COALESCE(jsonb_agg(to_jsonb(x) - 'tenant_id' ORDER BY x::text), '[]') FROM categories x WHERE tenant_id IS NOT NULL")" ] && echo t || echo f)"

  # The round trip.
  local dropped="0|0" xc
  q "$C" postgres -c "SELECT tenant.drop('xa')" >/dev/null 2>&1
  xc=$(q "$C" postgres -c "SELECT tenant.create('xc')")
  check "$mode: round trip: export, drop, import into a new tenant: same rows, on both workers" \
    "$dropped|2,1,8|t|8|2" \
    "$(on_shards ex_items "$xa")|$(q "$C" postgres -c "SELECT (r->>'public.docs') || ',' || (r->>'public.notes') || ',' || (r->>'public.ex_items') FROM (SELECT tenant.import('xc', d) AS r FROM ex_saved) s")|$(q "$C" postgres -c "SELECT (SELECT d->'tables' FROM ex_saved) = tenant.export('xc')->'tables'")|$(on_shards ex_items "$xc")"
  check "$mode: round trip: the new tenant reads the imported rows as itself, sorted rows equal" "t|t" \
    "$([ "$(q "$C" postgres -c "SELECT (d->'tables'->'public.ex_items')::text FROM ex_saved")" = "$(lc_as xc "$(rows ex_items)")" ] && echo t || echo f)|$([ "$(q "$C" postgres -c "SELECT (d->'tables'->'public.docs')::text FROM ex_saved")" = "$(lc_as xc "$(rows docs)")" ] && echo t || echo f)"

  # Refused and failed imports change nothing, on any worker.
  local xd
  xd=$(q "$C" postgres -c "SELECT tenant.create('xd')")
  check "$mode: import of a document naming a table the tenant may not write (a table of a schema tenant's schema, an unprotected table): refused, nothing on any worker" \
    "42809|42809|0|0|0" \
    "$(err "$C" postgres -c "SELECT tenant.import('xd', jsonb_set(d, '{tables,tenant_sc.items}', '[{\"id\": 1, \"title\": \"x\"}]')) FROM ex_saved")|$(err "$C" postgres -c "SELECT tenant.import('xd', jsonb_set(d, '{tables,public.late}', '[{\"id\": 1, \"body\": \"x\"}]')) FROM ex_saved")|$(on_shards ex_items "$xd")|$(on_shards docs "$xd" | cut -d'|' -f1)"
  # docs is loaded first (the document's order), then ex_items, where a row fails its CHECK on
  # its worker: the distributed transaction rolls back everywhere.
  check "$mode: an import that fails on a worker midway (a CHECK of ex_items, after docs was loaded) changes nothing on any node" \
    "23514|0|0|0|0" \
    "$(err "$C" postgres -c "SELECT tenant.import('xd', jsonb_set(d, '{tables,public.ex_items}', (d->'tables'->'public.ex_items') || '[{\"id\": 99, \"body\": \"a body far too long for the check\"}]')) FROM ex_saved")|$(on_shards ex_items "$xd")|$(on_shards docs "$xd" | cut -d'|' -f1)|$(on_shards notes "$xd" | cut -d'|' -f1)"
  check "$mode: import by a role that may not import (the application role): refused, nothing written; into a reference table: 0A000" \
    "42501|0|0A000|0" \
    "$(err "$C" app -c "SELECT tenant.import('xd', '{\"format\": \"pg_tenant-export-1\", \"tables\": {\"public.docs\": [{\"id\": 1, \"body\": \"x\"}]}}')")|$(on_shards docs "$xd" | cut -d'|' -f1)|$(err "$C" postgres -c "SELECT tenant.import('xd', jsonb_set(d, '{tables,public.categories}', '[{\"name\": \"xd-cat\"}]')) FROM ex_saved")|$(q "$C" postgres -c "SELECT count(*) FROM categories WHERE tenant_id = '$xd'")"
  # The owner's connections act as the tenant for pg_tenant's own statement only: later in the
  # same transaction no node token is left on them (a table of no tenant, distributed by id, on
  # both workers, shows the setting there; without the reset it showed "(hidden)" on every shard).
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || exit 1
CREATE TABLE ex_probe (id int);
SELECT create_distributed_table('ex_probe', 'id', colocate_with => 'none');
INSERT INTO ex_probe SELECT generate_series(1, 8);
GRANT SELECT ON ex_probe TO tblowner;
SQL
  local probe="SELECT count(*) FILTER (WHERE current_setting('pg_tenant.context', true) <> '') || '/' || count(*) FROM ex_probe"
  check "$mode: after export() and import() in a transaction, no node token is left on the table owner's worker connections" "0/8|0/8" \
    "$(q "$C" postgres -c "BEGIN" -c "SELECT tenant.export('xc') IS NULL" -c "SET LOCAL ROLE tblowner" -c "$probe" -c "ROLLBACK" | grep /)|$(q "$C" postgres -c "BEGIN" -c "SELECT tenant.import('xd', d) IS NULL FROM ex_saved" -c "SET LOCAL ROLE tblowner" -c "$probe" -c "ROLLBACK" | grep /)"
  # A cast to json made with a role's function would run on the workers, as the exported
  # tenant, when to_jsonb() converts the column there: such an export is refused (on one node the
  # same function runs as no tenant).
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || exit 1
CREATE TYPE ex_mood AS ENUM ('ok', 'sad');
ALTER TYPE ex_mood OWNER TO tblowner;
CREATE FUNCTION ex_mood_json(m ex_mood) RETURNS json LANGUAGE sql AS $f$ SELECT to_json(m::text) $f$;
ALTER FUNCTION ex_mood_json(ex_mood) OWNER TO tblowner;
CREATE CAST (ex_mood AS json) WITH FUNCTION ex_mood_json(ex_mood);
CREATE TABLE ex_moods (id int, tenant_id uuid, m ex_mood[]);
SELECT tenant.protect('ex_moods');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('ex_moods', 'tenant_id', colocate_with => 'none');
ALTER TABLE ex_moods OWNER TO tblowner;
SQL
  check "$mode: export of a distributed table whose column converts to JSON with a role's function (a cast): refused" "0A000" \
    "$(err "$C" postgres -c "SELECT tenant.export('xc')")"
  q "$C" postgres -c "DROP TABLE ex_moods" -c "DROP CAST (ex_mood AS json)" >/dev/null
  # (check() rates a table distributed by another column; section 9 counts its own.)
  q "$C" postgres -c "DROP TABLE ex_items, ex_saved, ex_probe" >/dev/null
}
