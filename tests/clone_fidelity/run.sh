#!/usr/bin/env bash
# Fidelity of tenant.clone_schema(): pagila and the hard cases of tests/clone_fidelity/hard_cases.sql
# are each cloned twice (without and with data) and compared with their source: pg_dump
# --schema-only identical once the schema is renamed, the same rows, no dependency of a clone on
# its source, the clones behaving as their own (pagila: sequence, trigger, foreign key, views,
# materialized view; the hard cases: sequence, procedure, functions, rule), and the error cases
# creating nothing. Prints "test NAME ... ok|FAILED" lines.
set -euo pipefail
SUITE=clone
. "$(dirname "$0")/../lib.sh"
set -e  # tests/lib.sh sets -uo pipefail; keep -e too
EXPECTED_CHECKS=75
start_cluster clone "$(suite_port clone_fidelity)"
DB=clone_fidelity
work=$(mktemp -d)

# sql [psql options]: runs SQL from -c/-f or stdin, stops at the first error.
sql() { "$PG_BIN/psql" -X -q -t -A -U postgres -d "$DB" -v ON_ERROR_STOP=1 "$@"; }
# sqlstate SQL: the SQLSTATE of the error SQL raises (empty if none).
sqlstate() {
  "$PG_BIN/psql" -X -q -t -A -U postgres -d "$DB" -c '\set VERBOSITY sqlstate' -c "$1" 2>&1 |
    sed -n 's/^ERROR:  \([0-9A-Z]\{5\}\)$/\1/p'
}
# qi NAME: NAME as an SQL identifier (quoted when it needs to be), as PostgreSQL quotes it.
qi() { sql -v n="$1" <<<"SELECT quote_ident(:'n')"; }

"$PG_BIN/psql" -X -q -U postgres -d postgres -c "CREATE DATABASE $DB" >/dev/null
sql -c "CREATE EXTENSION pg_tenant" >/dev/null
sql -f ../shared/fixtures/pagila/pagila-in-schema-pagila.sql >/dev/null
sql -f tests/clone_fidelity/hard_cases.sql >/dev/null

# ---- the dumps ----------------------------------------------------------------------------------
# dump SCHEMA [pg_dump options]: pg_dump of one schema, without the \restrict lines (their key is
# random).
dump() {
  local pattern
  pattern="\"${1//\"/\"\"}\""
  "$PG_BIN/pg_dump" -U postgres -d "$DB" -n "$pattern" "${@:2}" | grep -v '^\\\(un\)\?restrict '
}
# renamed FROM TO: stdin with every reference to schema FROM made a reference to schema TO:
# names qualified with it ("Hard Case".x, pagila.x, also inside literals like
# nextval('pagila.s')) when x is the name of one of its objects (so that a column qualified with a
# relation or alias named like the schema, "Hard Case".id, stays), '"Hard Case"'::regnamespace
# constants, the schema's own statements (CREATE/ALTER/COMMENT ON/GRANT ON/IN SCHEMA), and the
# "-- Name: ...; Schema: ...;" headers and a function's SET search_path TO 'a', 'b' list, which
# print names unquoted. Only the source's dump is renamed: a clone still naming its source shows
# up as a difference.
renamed() {
  local names
  names=$(sql -v s="$1" <<'SQL'
SELECT DISTINCT quote_ident(name) FROM (
  SELECT relname FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = :'s')
  UNION ALL SELECT typname FROM pg_type WHERE typnamespace = (SELECT oid FROM pg_namespace WHERE nspname = :'s')
  UNION ALL SELECT proname FROM pg_proc WHERE pronamespace = (SELECT oid FROM pg_namespace WHERE nspname = :'s')
  UNION ALL SELECT collname FROM pg_collation WHERE collnamespace = (SELECT oid FROM pg_namespace WHERE nspname = :'s')
  UNION ALL SELECT stxname FROM pg_statistic_ext WHERE stxnamespace = (SELECT oid FROM pg_namespace WHERE nspname = :'s')
) o(name)
SQL
  )
  NAMES=$names FROM_Q=$(qi "$1") TO_Q=$(qi "$2") FROM_R=$1 TO_R=$2 perl -pe '
    BEGIN { ($fq, $tq, $fr, $tr) = @ENV{qw(FROM_Q TO_Q FROM_R TO_R)}; %obj = map { $_ => 1 } split /\n/, $ENV{NAMES}; }
    s/(?<![\w"\$])\Q$fq\E(?=\.((?:"(?:[^"]|"")*")|[A-Za-z_\x80-\xff][\w\$\x80-\xff]*))/$obj{$1} ? $tq : $fq/ge;
    s/\x27\Q$fq\E\x27::regnamespace/\x27$tq\x27::regnamespace/g;
    s/\bSCHEMA \Q$fq\E(?=[ ;]|$)/SCHEMA $tq/g;
    s/^(-- Name: )\Q$fr\E(; Type: SCHEMA;)/$1$tr$2/;
    s/^(-- (?:Data for )?Name: .*; Schema: )\Q$fr\E(; Owner:)/$1$tr$2/;
    if (/^ +SET search_path TO /) {
      ($fl, $tl) = map { (my $x = $_) =~ s/\x27/\x27\x27/g; "\x27$x\x27" } ($fr, $tr);
      s/(?<=[ ,])\Q$fl\E(?=,|$)/$tl/g;
    }
  '
}

# ---- the clones ---------------------------------------------------------------------------------
audit_before=$(sql -c "SELECT count(*) FROM clone_hc_other.audit_log")
n=0
clone() {  # SOURCE TARGET WITH_DATA: runs tenant.clone_schema, logging every statement it ran
  n=$((n + 1))
  local out
  out=$(sql -v s="$1" -v t="$2" -v d="$3" 2>"$work/clone.$n.log" <<'SQL' || echo "FAILED: $(sed -n '/^ERROR:/,$p' "$work/clone.$n.log" | head -3)"
SET client_min_messages = debug1;
SELECT string_agg(kind || '=' || cloned, ' ' ORDER BY kind) FROM tenant.clone_schema(:'s', :'t', :'d');
SQL
  )
  echo "$n: clone_schema('$1', '$2', $3): $out" >> "$work/clones.txt"
  check "clone_schema('$1', '$2', with_data => $3) succeeds" ok "$(case "$out" in FAILED*) echo "$out";; *) echo ok;; esac)"
}

declare -A TARGETS=(
  [pagila]="pagila_clone|pagila_data"
  ["Hard Case"]='Clone of Hard Case|Hard "Case" Data'
)
SOURCES=(pagila "Hard Case")
for src in "${SOURCES[@]}"; do
  IFS='|' read -r plain data <<<"${TARGETS[$src]}"
  clone "$src" "$plain" false
  clone "$src" "$data" true
done
check "cloning fired no trigger of the source's (clone_hc_other.audit_log unchanged)" "$audit_before" \
  "$(sql -c "SELECT count(*) FROM clone_hc_other.audit_log")"

# ---- a) pg_dump --schema-only identical ---------------------------------------------------------
k=0
for src in "${SOURCES[@]}"; do
  IFS='|' read -r plain data <<<"${TARGETS[$src]}"
  for tgt in "$plain" "$data"; do
    k=$((k + 1))
    dump "$src" --schema-only | renamed "$src" "$tgt" > "$work/schema.$k.source"
    dump "$tgt" --schema-only > "$work/schema.$k.clone" || true
    check "a) pg_dump --schema-only of '$tgt' equals '$src' renamed" "" \
      "$(diff -q "$work/schema.$k.source" "$work/schema.$k.clone" >/dev/null || echo "differs, see below")"
    if ! diff -q "$work/schema.$k.source" "$work/schema.$k.clone" >/dev/null; then
      diff -u --label "$src (renamed)" --label "$tgt" "$work/schema.$k.source" "$work/schema.$k.clone" | head -300 || true
    fi
  done
done

# ---- b) the rows --------------------------------------------------------------------------------
# rows SCHEMA: for each table and materialized view, "name|rows|md5 of its rows in text form,
# sorted" (ONLY: an inheritance parent without its children's rows), or "name|unpopulated".
rows() {
  sql -v s="$1" <<'SQL'
SELECT CASE WHEN c.relkind = 'm' AND NOT c.relispopulated THEN format('SELECT %L', c.relname || '|unpopulated') ELSE
       format('SELECT %L || ''|'' || count(*) || ''|'' || coalesce(md5(string_agg(t::text, E''\n'' ORDER BY t::text COLLATE "C")), ''-'') FROM ONLY %I.%I t',
              c.relname, n.nspname, c.relname) END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :'s' AND c.relkind IN ('r', 'm') ORDER BY c.relname COLLATE "C"
\gexec
SQL
}
for src in "${SOURCES[@]}"; do
  IFS='|' read -r plain data <<<"${TARGETS[$src]}"
  rows "$src" > "$work/rows.source"
  rows "$data" > "$work/rows.data" || true
  rows "$plain" > "$work/rows.plain" || true
  check "b) '$data': every table's row count and md5 equal '$src's" "" \
    "$(diff "$work/rows.source" "$work/rows.data" | grep '^[<>]' | tr '\n' ' ' || true)"
  check "b) '$plain': has every table, all empty" "$(wc -l < "$work/rows.source") tables, 0 with rows" \
    "$(wc -l < "$work/rows.plain") tables, $(awk -F'|' '$2 != 0 && $2 != "unpopulated"' "$work/rows.plain" | wc -l) with rows"
  check "b) '$plain': the materialized views are populated as the source's" \
    "$(grep -c '|unpopulated' "$work/rows.source" || true)" "$(grep -c '|unpopulated' "$work/rows.plain" || true)"
  check "b) '$plain': every sequence is at its start (never used)" "" \
    "$(sql -v s="$plain" <<<"SELECT string_agg(sequencename, ' ') FROM pg_sequences WHERE schemaname = :'s' AND last_value IS NOT NULL" || true)"
  dump "$src" --data-only | renamed "$src" "$data" > "$work/data.source"
  dump "$data" --data-only > "$work/data.clone" || true
  check "b) pg_dump --data-only of '$data' equals '$src' renamed (rows and sequence values)" "" \
    "$(diff -q "$work/data.source" "$work/data.clone" >/dev/null || echo "differs, see below")"
  if ! diff -q "$work/data.source" "$work/data.clone" >/dev/null; then
    diff -u --label "$src (renamed)" --label "$data" "$work/data.source" "$work/data.clone" | head -100 || true
  fi
done

# ---- c) no dependency of a clone on its source --------------------------------------------------
# The schema of an object, quoted as pg_identify_object prints it: pg_identify_object's, or for
# the objects it has none for (a column default, rule, trigger, policy) their table's; a schema is
# its own.
deps_on_source() {  # SOURCE TARGET: "object -> source object" for each dependency, one a line
  sql -v s="$1" -v t="$2" <<'SQL'
CREATE FUNCTION pg_temp.schema_of(classid oid, objid oid) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT coalesce(
    (pg_identify_object(classid, objid, 0)).schema,
    (SELECT quote_ident(n.nspname) FROM pg_namespace n WHERE classid = 'pg_namespace'::regclass AND n.oid = objid),
    (SELECT quote_ident(n.nspname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = CASE classid
       WHEN 'pg_attrdef'::regclass THEN (SELECT adrelid FROM pg_attrdef WHERE oid = objid)
       WHEN 'pg_rewrite'::regclass THEN (SELECT ev_class FROM pg_rewrite WHERE oid = objid)
       WHEN 'pg_trigger'::regclass THEN (SELECT tgrelid FROM pg_trigger WHERE oid = objid)
       WHEN 'pg_policy'::regclass THEN (SELECT polrelid FROM pg_policy WHERE oid = objid) END))
$$;
SELECT 'no schema ' || quote_ident(:'t') WHERE NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = :'t')
UNION ALL
(SELECT pg_describe_object(d.classid, d.objid, d.objsubid) || ' -> ' || pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)
FROM pg_depend d
WHERE d.classid IN ('pg_class'::regclass, 'pg_type'::regclass, 'pg_proc'::regclass, 'pg_constraint'::regclass,
                    'pg_attrdef'::regclass, 'pg_rewrite'::regclass, 'pg_trigger'::regclass, 'pg_policy'::regclass)
AND pg_temp.schema_of(d.classid, d.objid) = quote_ident(:'t')
AND pg_temp.schema_of(d.refclassid, d.refobjid) = quote_ident(:'s')
ORDER BY 1);
SQL
}
for src in "${SOURCES[@]}"; do
  IFS='|' read -r plain data <<<"${TARGETS[$src]}"
  for tgt in "$plain" "$data"; do
    check "c) no object of '$tgt' depends on an object of '$src'" "" "$(deps_on_source "$src" "$tgt" | tr '\n' ';')"
  done
  # The query itself finds dependencies where there are (the source's views on its tables).
  self=$(deps_on_source "$src" "$src" | wc -l)
  check "c) (the query does find dependencies: '$src's on itself)" yes "$([ "$self" -gt 0 ] && echo yes || echo no)"
done

# ---- d) the pagila clones behave as their own ---------------------------------------------------
# (pagila's materialized view is not populated: its rows are counted once the source's is refreshed.)
sql -c "REFRESH MATERIALIZED VIEW pagila.rental_by_category"
for tgt in pagila_clone pagila_data; do
  q=$(qi "$tgt")
  if [ "$tgt" = pagila_data ]; then with_data=true; else with_data=false; fi
  # Views read the clone's rows: as many as the source's with data, none without.
  while read -r view; do
    src_n=$(sql -c "SELECT count(*) FROM pagila.$view")
    expected=$([ "$with_data" = true ] && echo "$src_n" || echo 0)
    check "d) $tgt.$view reads the clone's rows ($expected)" "$expected" "$(sql -c "SELECT count(*) FROM $q.$view" 2>&1)"
  done < <(sql -c "SELECT quote_ident(relname) FROM pg_class WHERE relnamespace = 'pagila'::regnamespace AND relkind = 'v' ORDER BY 1")
  check "d) $tgt: the materialized view can be refreshed" ok \
    "$(sql -c "REFRESH MATERIALIZED VIEW $q.rental_by_category" 2>&1 && echo ok)"
  src_n=$(sql -c "SELECT count(*) FROM pagila.rental_by_category")
  check "d) $tgt: the refreshed materialized view reads the clone's rows" "$([ "$with_data" = true ] && echo "$src_n" || echo 0)" \
    "$(sql -c "SELECT count(*) FROM $q.rental_by_category" 2>&1)"

  # The clone's own sequence.
  check "d) $tgt.actor.actor_id takes its default from $tgt's sequence" "nextval('$q.actor_actor_id_seq'::regclass)" \
    "$(sql -c "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = '$q.actor'::regclass AND adnum = 1" 2>&1)"
  src_seq=$(sql -c "SELECT last_value || '/' || is_called FROM pagila.actor_actor_id_seq")
  src_actors=$(sql -c "SELECT count(*) FROM pagila.actor_info")
  clone_actors=$(sql -c "SELECT count(*) FROM $q.actor_info")
  new_id=$(sql -c "INSERT INTO $q.actor (first_name, last_name) VALUES ('CLONE', 'ONLY') RETURNING actor_id" 2>&1 || true)
  expected=$([ "$with_data" = true ] && echo $(( ${src_seq%/*} + 1 )) || echo 1)
  check "d) $tgt: an actor inserted without an id gets the clone's next value ($expected)" "$expected" "$new_id"
  check "d) $tgt: ... and pagila.actor_actor_id_seq did not move" "$src_seq" \
    "$(sql -c "SELECT last_value || '/' || is_called FROM pagila.actor_actor_id_seq")"
  check "d) $tgt: $tgt.actor_info sees the new actor, pagila.actor_info does not" "$((clone_actors + 1))|$src_actors" \
    "$(sql -c "SELECT count(*) FROM $q.actor_info")|$(sql -c "SELECT count(*) FROM pagila.actor_info")"

  # The last_updated trigger fires on the clone.
  check "d) $tgt: the last_updated trigger sets last_update on UPDATE" t \
    "$(sql -c "UPDATE $q.actor SET last_update = '2000-01-01' WHERE first_name = 'CLONE' RETURNING last_update > now() - interval '1 hour'" 2>&1)"

  # A payment of an unknown customer is refused by the clone's foreign key.
  if [ "$with_data" = true ]; then
    others="(SELECT min(staff_id) FROM $q.staff), (SELECT min(rental_id) FROM $q.rental)"
  else
    others="1, 1"
  fi
  check "d) $tgt: a payment of a non-existent customer is refused (23503)" 23503 \
    "$(sqlstate "INSERT INTO $q.payment (customer_id, staff_id, rental_id, amount, payment_date) VALUES (999999, $others, 1.99, '2022-03-15 12:00+00')")"
  if [ "$with_data" = true ]; then
    check "d) $tgt: ... by the customer foreign key, and a known customer is accepted" "customer|1" \
      "$(sql -c "INSERT INTO $q.payment (customer_id, staff_id, rental_id, amount, payment_date) VALUES (999999, $others, 1.99, '2022-03-15 12:00+00')" 2>&1 | grep -o 'customer_id_fkey' | sed 's/_id_fkey//')|$(sql -c "WITH i AS (INSERT INTO $q.payment (customer_id, staff_id, rental_id, amount, payment_date) VALUES ((SELECT min(customer_id) FROM $q.customer), $others, 1.99, '2022-03-15 12:00+00') RETURNING 1) SELECT count(*) FROM i" 2>&1)"
  fi
done

# ---- d') the hard-case clones behave as their own -------------------------------------------------
for tgt in 'Clone of Hard Case' 'Hard "Case" Data'; do
  q=$(qi "$tgt")
  src_seq=$(sql -c 'SELECT last_value FROM "Hard Case".ticket_seq')
  check "d') $tgt: items.id comes from the clone's ticket_seq, the source's does not move" \
    "$q.ticket_seq|$src_seq" \
    "$(sql -c "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = '$q.items'::regclass AND adnum = 1" | sed "s/^nextval('\(.*\)'::regclass)$/\1/")|$(sql -c "INSERT INTO $q.items (name, qty, price) VALUES ('clone-only', 1, 1)" -c 'SELECT last_value FROM "Hard Case".ticket_seq' 2>&1)"
  check "d') $tgt: the procedure, item_count() and total_value() act on the clone's items" \
    "$(sql -c "SELECT count(*) + 1 FROM $q.items")|$(sql -c 'SELECT count(*) FROM "Hard Case".items')" \
    "$(sql -c "CALL $q.add_item('via procedure')" -c "SELECT $q.item_count() || '|' || (SELECT count(*) FROM \"Hard Case\".items)" 2>&1)"
  check "d') $tgt: total_value() (BEGIN ATOMIC) sums the clone's items" \
    "$(sql -c "SELECT coalesce(sum(total), 0) FROM $q.items")" "$(sql -c "SELECT $q.total_value()" 2>&1)"
  check "d') $tgt: the INSTEAD rule of tag_entry inserts into the clone's tags" "1|0" \
    "$(sql -c "INSERT INTO $q.tag_entry VALUES ('violet', 'rule')" 2>&1; sql -c "SELECT count(*) FROM $q.tags WHERE code = 'VIOLET'")|$(sql -c "SELECT count(*) FROM \"Hard Case\".tags WHERE code = 'VIOLET'")"
  check "d') $tgt: default_label() (SET search_path) counts the clone's tags" \
    "L$(sql -c "SELECT count(*) FROM $q.tags")" "$(sql -c "SELECT $q.default_label()" 2>&1)"
done

# ---- e) errors create nothing -------------------------------------------------------------------
schemas() { sql -c "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace"; }
sql -c "CREATE SCHEMA clone_err_existing"
before=$(schemas)
check "e) target exists: 42P06" 42P06 "$(sqlstate "SELECT * FROM tenant.clone_schema('pagila', 'clone_err_existing')")"
check "e) ... the existing target is left empty" "0|0|0" \
  "$(sql -c "SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'clone_err_existing'::regnamespace) || '|' || (SELECT count(*) FROM pg_proc WHERE pronamespace = 'clone_err_existing'::regnamespace) || '|' || (SELECT count(*) FROM pg_type WHERE typnamespace = 'clone_err_existing'::regnamespace)")"
check "e) target exists (an earlier clone): 42P06" 42P06 "$(sqlstate "SELECT * FROM tenant.clone_schema('Hard Case', 'pagila_clone')")"
check "e) source missing: 3F000" 3F000 "$(sqlstate "SELECT * FROM tenant.clone_schema('no_such_schema', 'clone_err_target')")"
check "e) source pg_catalog: 22023" 22023 "$(sqlstate "SELECT * FROM tenant.clone_schema('pg_catalog', 'clone_err_target')")"
check "e) NULL source: 22004" 22004 "$(sqlstate "SELECT * FROM tenant.clone_schema(NULL, 'clone_err_target')")"
check "e) NULL target: 22004" 22004 "$(sqlstate "SELECT * FROM tenant.clone_schema('pagila', NULL)")"
check "e) NULL with_data: 22004" 22004 "$(sqlstate "SELECT * FROM tenant.clone_schema('pagila', 'clone_err_target', NULL)")"
check "e) after the errors no schema was created (clone_err_target does not exist)" "$before|f" \
  "$(schemas)|$(sql -c "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'clone_err_target')")"

[ "$failed" = 0 ] && rm -rf "$work" || echo "outputs kept in $work"
exit "$failed"
