# shellcheck shell=bash
# Sourced by tests/citus/run.sh: routing (issue 14 part 4). With a tenant in force, a SELECT,
# UPDATE or DELETE on a table distributed by its tenant column goes to the tenant's shard only
# (pg_tenant adds the constant the row-security policy implies before Citus plans it; EXPLAIN shows
# one task), with the results the fan-out gives; nothing changes without a tenant, for a reference
# table with shared rows, a table distributed by another column or a local table; plans cached
# for one tenant are planned again for the next; the joins Citus crashed the server on give the
# tenant's rows. 27 checks per mode.
#
# run_routing MODE ACME_ID: uses C, q, err, check and token from run.sh; creates the tenants ra
# and rb1 (rb2... when rb1 shares ra's shard).
run_routing() {
  local mode=$1 acme_id=$2 ra rb rb_slug n=0
  ra=$(q "$C" postgres -c "SELECT tenant.create('ra')")
  # A second tenant on another shard than ra's: a plan cached for ra that was not planned again
  # would ask ra's shard and find none of rb's rows there.
  while :; do
    n=$((n + 1))
    rb_slug=rb$n
    rb=$(q "$C" postgres -c "SELECT tenant.create('$rb_slug')")
    [ "$(q "$C" postgres -c "SELECT get_shard_id_for_distribution_column('docs', '$ra'::uuid) <> get_shard_id_for_distribution_column('docs', '$rb'::uuid)")" = t ] && break
    [ "$n" -ge 8 ] && break
  done
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL || exit 1
CREATE TABLE orders (id int, tenant_id uuid, amount int);
SELECT tenant.protect('orders');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('orders', 'tenant_id', colocate_with => 'docs');
CREATE TABLE items (order_id int, tenant_id uuid, qty int);
SELECT tenant.protect('items');
SELECT create_distributed_table('items', 'tenant_id', colocate_with => 'docs');
CREATE TABLE by_other (id int, tenant_id uuid);
SELECT tenant.protect('by_other');
SELECT create_distributed_table('by_other', 'id');
CREATE TABLE local_rows (id int, tenant_id uuid);
SELECT tenant.protect('local_rows');
GRANT SELECT, INSERT, UPDATE, DELETE ON orders, items, by_other, local_rows TO app;
INSERT INTO orders VALUES (1, '$ra', 10), (2, '$ra', 20), (3, '$ra', 30), (4, '$rb', 5), (5, '$acme_id', 7);
INSERT INTO items VALUES (1, '$ra', 2), (1, '$ra', 3), (2, '$ra', 1), (4, '$rb', 9);
INSERT INTO by_other VALUES (1, '$ra'), (2, '$rb');
INSERT INTO local_rows VALUES (1, '$ra'), (2, '$rb');
CREATE FUNCTION public.order_total() RETURNS text LANGUAGE plpgsql AS \$f\$
DECLARE r text;
BEGIN
    SELECT count(*) || ':' || sum(amount) INTO r FROM public.orders;
    RETURN r;
END
\$f\$;
CREATE FUNCTION public.count_as(t text) RETURNS bigint LANGUAGE sql AS \$f\$
    SELECT tenant.set_local(t) IS NULL;
    SELECT count(*) FROM public.orders;
\$f\$;
SQL
  # as SLUG -c SQL...: the gateway role's transaction acting as SLUG (set_local); tasks: the task
  # counts EXPLAIN shows, comma-separated.
  as_slug() { local slug=$1; shift; q "$C" app -c "BEGIN" -c "SELECT tenant.set_local('$slug') IS NULL" "$@" -c "COMMIT" | grep -v '^f$'; }
  tasks() { grep -o 'Task Count: [0-9]*' | grep -o '[0-9]*$' | paste -sd,; }
  # tag SLUG SQL: the command tag of SQL run acting as SLUG (INSERT 0 1).
  tag() {
    "$PG_BIN/psql" -X -t -A -h 127.0.0.1 -p "$C" -U app -d app -c "BEGIN" -c "SELECT tenant.set_local('$1') IS NULL" -c "$2" -c "COMMIT" 2>&1 |
      grep -oE '^(INSERT|UPDATE|DELETE) [0-9 ]*[0-9]'
  }
  check "$mode: routing: the two tenants of the switch tests live on different shards" "t" \
    "$(q "$C" postgres -c "SELECT get_shard_id_for_distribution_column('docs', '$ra'::uuid) <> get_shard_id_for_distribution_column('docs', '$rb'::uuid)")"

  # Each query: tasks as the tenant | its result | with an explicit WHERE | the administrator's
  # fan-out filtered by tenant (a cast Citus does not prune on).
  local agg="SELECT count(*) || ':' || sum(amount) FROM orders"
  check "$mode: routing: an aggregate goes to one shard, with the explicit WHERE's and the fan-out's result" "1|3:60|3:60|3:60" \
    "$(as_slug ra -c "EXPLAIN $agg" | tasks)|$(as_slug ra -c "$agg")|$(as_slug ra -c "$agg WHERE tenant_id = '$ra'")|$(q "$C" postgres -c "$agg WHERE tenant_id::text = '$ra'")"
  local join="SELECT string_agg(o.amount || 'x' || i.qty, ',' ORDER BY o.amount, i.qty) FROM orders o JOIN items i ON i.order_id = o.id AND i.tenant_id = o.tenant_id"
  check "$mode: routing: a join of two colocated tables goes to one shard, same result" "1|10x2,10x3,20x1|10x2,10x3,20x1|10x2,10x3,20x1" \
    "$(as_slug ra -c "EXPLAIN $join" | tasks)|$(as_slug ra -c "$join")|$(as_slug ra -c "$join WHERE o.tenant_id = '$ra'")|$(q "$C" postgres -c "$join WHERE o.tenant_id::text = '$ra'")"
  local top="SELECT string_agg(amount::text, ',' ORDER BY amount DESC) FROM (SELECT amount FROM orders ORDER BY amount DESC LIMIT 2) t"
  check "$mode: routing: ORDER BY ... LIMIT in a subquery goes to one shard, same result" "1|30,20|30,20" \
    "$(as_slug ra -c "EXPLAIN $top" | tasks)|$(as_slug ra -c "$top")|$(q "$C" postgres -c "SELECT string_agg(amount::text, ',' ORDER BY amount DESC) FROM (SELECT amount FROM orders WHERE tenant_id::text = '$ra' ORDER BY amount DESC LIMIT 2) t")"
  # The constant filters the relation, never the join's result: an order without items stays.
  local left="SELECT count(*) || ':' || count(i.qty) FROM orders o LEFT JOIN items i ON i.order_id = o.id AND i.tenant_id = o.tenant_id"
  check "$mode: routing: a LEFT JOIN goes to one shard and keeps the order without items" "1|4:3|4:3" \
    "$(as_slug ra -c "EXPLAIN $left" | tasks)|$(as_slug ra -c "$left")|$(q "$C" postgres -c "$left WHERE o.tenant_id::text = '$ra'")"
  local cte="WITH big AS (SELECT id, tenant_id FROM orders WHERE amount > 15) SELECT count(*) FROM big b WHERE EXISTS (SELECT 1 FROM items i WHERE i.order_id = b.id AND i.tenant_id = b.tenant_id)"
  check "$mode: routing: a CTE with a correlated EXISTS goes to one shard, same result" "1|1|1" \
    "$(as_slug ra -c "EXPLAIN $cte" | tasks)|$(as_slug ra -c "$cte")|$(q "$C" postgres -c "WITH big AS (SELECT id, tenant_id FROM orders WHERE amount > 15 AND tenant_id::text = '$ra') SELECT count(*) FROM big b WHERE EXISTS (SELECT 1 FROM items i WHERE i.order_id = b.id AND i.tenant_id = b.tenant_id)")"
  check "$mode: routing: UPDATE and DELETE go to one shard and reach the tenant's rows only" "1|1|UPDATE 3|DELETE 0|5" \
    "$(as_slug ra -c "EXPLAIN UPDATE orders SET amount = amount" | tasks)|$(as_slug ra -c "EXPLAIN DELETE FROM orders WHERE amount = 5" | tasks)|$(tag ra "UPDATE orders SET amount = amount * 1")|$(tag ra "DELETE FROM orders WHERE amount = 5")|$(q "$C" postgres -c "SELECT amount FROM orders WHERE tenant_id::text = '$rb'")"
  check "$mode: routing: INSERT is unaffected: the row gets the tenant's id; the tenant deletes it again" "INSERT 0 1|$rb|DELETE 1" \
    "$(tag "$rb_slug" "INSERT INTO orders (id, amount) VALUES (6, 1)")|$(q "$C" postgres -c "SELECT tenant_id FROM orders WHERE id = 6")|$(tag "$rb_slug" "DELETE FROM orders WHERE id = 6")"
  # (Routed, its SELECT would make Citus pull the rows to the coordinator and COPY them into the
  # shards, which row security refuses: an INSERT ... SELECT is left to Citus's own strategy.)
  check "$mode: routing: INSERT ... SELECT is unaffected too" "INSERT 0 3|DELETE 3|3:60" \
    "$(tag ra "INSERT INTO orders (id, amount) SELECT id + 100, amount FROM orders")|$(tag ra "DELETE FROM orders WHERE id > 100")|$(as_slug ra -c "$agg")"
  check "$mode: routing: no tenant (an administrator), or a superuser acting as one (no row security): every shard, as before" "32|32|5" \
    "$(q "$C" postgres -c "EXPLAIN $agg" | tasks)|$(q "$C" postgres -c "SELECT tenant.set('ra') IS NULL" -c "EXPLAIN $agg" | tasks)|$(q "$C" postgres -c "SELECT tenant.set('ra') IS NULL" -c "SELECT count(*) FROM orders" | grep -v '^f$')"
  # Loaded on demand too, pg_tenant's hook is there from a session's first statement: the session
  # loads the library at its start (citus_setup()).
  check "$mode: routing: SET LOCAL pg_tenant.token routes too, from a session's first statement" "1|3:60|1" \
    "$(q "$C" app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$(token ra)'" -c "EXPLAIN $agg" -c "COMMIT" | tasks)|$(q "$C" app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$(token ra)'" -c "$agg" -c "EXPLAIN $agg" -c "COMMIT" | sed -n 1p)|$(q "$C" app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$(token ra)'" -c "$agg" -c "EXPLAIN $agg" -c "COMMIT" | tasks)"

  # Cached plans across a switch of tenant.
  check "$mode: routing: a prepared statement (generic plan) planned for one tenant, executed for another" "3:60|1:5|3:60|3" \
    "$(q "$C" app -c "PREPARE p AS $agg" \
        -c "BEGIN" -c "SELECT tenant.set_local('ra') IS NULL" -c "EXECUTE p" -c "COMMIT" \
        -c "BEGIN" -c "SELECT tenant.set_local('$rb_slug') IS NULL" -c "EXECUTE p" -c "COMMIT" \
        -c "BEGIN" -c "SELECT tenant.set_local('ra') IS NULL" -c "EXECUTE p" -c "COMMIT" \
        -c "SELECT generic_plans FROM pg_prepared_statements" | grep -v '^f$' | paste -sd'|')"
  check "$mode: routing: force_generic_plan with a parameter, across switches" "3|1|3" \
    "$(q "$C" app -c "SET plan_cache_mode = force_generic_plan" -c "PREPARE p(int) AS SELECT count(*) FROM orders WHERE amount > \$1" \
        -c "BEGIN" -c "SELECT tenant.set_local('ra') IS NULL" -c "EXECUTE p(0)" -c "COMMIT" \
        -c "BEGIN" -c "SELECT tenant.set_local('$rb_slug') IS NULL" -c "EXECUTE p(0)" -c "COMMIT" \
        -c "BEGIN" -c "SELECT tenant.set_local('ra') IS NULL" -c "EXECUTE p(0)" -c "COMMIT" | grep -v '^f$' | paste -sd'|')"
  local alternate=() i
  for i in 1 2 3 4 5 6 7 8; do
    alternate+=(-c "BEGIN" -c "SELECT tenant.set_local('$([ $((i % 2)) = 1 ] && echo ra || echo "$rb_slug")') IS NULL" -c "EXECUTE p($((i % 2)))" -c "COMMIT")
  done
  check "$mode: routing: custom plans, then the generic one, alternating tenants" "3|1|3|1|3|1|3|1" \
    "$(q "$C" app -c "PREPARE p(int) AS SELECT count(*) FROM orders WHERE amount > \$1" "${alternate[@]}" | grep -v '^f$' | paste -sd'|')"
  check "$mode: routing: set_local() twice in one transaction, one prepared statement" "3:60|1:5" \
    "$(q "$C" app -c "PREPARE p AS $agg" -c "BEGIN" -c "SELECT tenant.set_local('ra') IS NULL" -c "EXECUTE p" \
        -c "SELECT tenant.set_local('$rb_slug') IS NULL" -c "EXECUTE p" -c "COMMIT" | grep -v '^f$' | paste -sd'|')"
  check "$mode: routing: a PL/pgSQL function's cached plan follows the tenant" "3:60|1:5|3:60" \
    "$(q "$C" app -c "BEGIN" -c "SELECT tenant.set_local('ra') IS NULL" -c "SELECT order_total()" -c "COMMIT" \
        -c "BEGIN" -c "SELECT tenant.set_local('$rb_slug') IS NULL" -c "SELECT order_total()" -c "COMMIT" \
        -c "BEGIN" -c "SELECT tenant.set_local('ra') IS NULL" -c "SELECT order_total()" -c "COMMIT" | grep -v '^f$' | paste -sd'|')"
  # (The library loaded first, in both modes: see above.)
  check "$mode: routing: a prepared statement across two tokens (SET LOCAL pg_tenant.token)" "3:60|1:5" \
    "$(q "$C" app -c "SELECT tenant.current(true) IS NULL" -c "PREPARE p AS $agg" -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$(token ra)'" -c "EXECUTE p" -c "COMMIT" \
        -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$(token "$rb_slug")'" -c "EXECUTE p" -c "COMMIT" | grep -v '^t$' | paste -sd'|')"
  # A SQL function plans all its statements when it starts: its query was planned for the caller's
  # tenant, before its body changed the tenant.
  check "$mode: routing: a SQL function whose body changes the tenant: its earlier-planned query is refused, never run on the wrong shard" "55000|1" \
    "$(err "$C" app -c "BEGIN" -c "SELECT tenant.set_local('ra') IS NULL" -c "SELECT count_as('$rb_slug')")|$(as_slug ra -c "SET LOCAL pg_tenant.citus_routing = off" -c "SELECT count_as('$rb_slug')")"
  check "$mode: routing: a savepoint rolled back to brings the earlier tenant back, and its plan" "3:60|1:5|3:60" \
    "$(q "$C" app -c "PREPARE p AS $agg" -c "BEGIN" -c "SELECT tenant.set_local('ra') IS NULL" -c "EXECUTE p" -c "SAVEPOINT s" \
        -c "SELECT tenant.set_local('$rb_slug') IS NULL" -c "EXECUTE p" -c "ROLLBACK TO s" -c "EXECUTE p" -c "COMMIT" | grep -v '^f$' | paste -sd'|')"

  # Where no constant may be added.
  check "$mode: routing: the reference table with shared rows: no constant, the shared rows still read" "0|2" \
    "$(as_slug ra -c "EXPLAIN (VERBOSE) SELECT * FROM categories" | grep -c "$ra")|$(as_slug ra -c "SELECT count(*) FROM categories")"
  check "$mode: routing: a table distributed by another column: every shard, no constant, the tenant's row" "32|0|1" \
    "$(as_slug ra -c "EXPLAIN SELECT * FROM by_other" | tasks)|$(as_slug ra -c "EXPLAIN (VERBOSE) SELECT * FROM by_other" | grep -c "$ra")|$(as_slug ra -c "SELECT count(*) FROM by_other")"
  check "$mode: routing: a protected local table: no constant, the tenant's row" "0|1" \
    "$(as_slug ra -c "EXPLAIN (VERBOSE) SELECT * FROM local_rows" | grep -c "$ra")|$(as_slug ra -c "SELECT count(*) FROM local_rows")"
  check "$mode: routing: pg_tenant.citus_routing = off: every shard again, the same result" "32|3:60" \
    "$(as_slug ra -c "SET LOCAL pg_tenant.citus_routing = off" -c "EXPLAIN $agg" | tasks)|$(as_slug ra -c "SET LOCAL pg_tenant.citus_routing = off" -c "$agg")"
  # (Not on the distribution column: Citus refuses such a join across shards. Unrouted, Citus
  # plans the second table apart, pg_tenant having made it a subquery: see below.)
  check "$mode: routing: a join not on the distribution column runs on the tenant's shard; unrouted, the same answer" "1|4:3|4:3" \
    "$(as_slug ra -c "EXPLAIN SELECT count(*) FROM orders o LEFT JOIN items i ON i.order_id = o.id" | tasks)|$(as_slug ra -c "SELECT count(*) || ':' || count(i.qty) FROM orders o LEFT JOIN items i ON i.order_id = o.id")|$(as_slug ra -c "SET LOCAL pg_tenant.citus_routing = off" -c "SELECT count(*) || ':' || count(i.qty) FROM orders o LEFT JOIN items i ON i.order_id = o.id")"
  # Citus 13.2 wraps a table in a subquery to plan some joins (a local table with a distributed
  # one; a distributed table under an outer join that keeps a local or reference table's, VALUES',
  # a function's rows) and left its row-security quals naming its old place: the server crashed
  # (segfault) whoever the policy's author, also where Citus plans without the planner hook
  # (self-joins and chains of outer joins, views over them). pg_tenant makes each filtered table
  # that is not its query's first a subquery of its own before Citus plans: each such query
  # returns what the tenant may see (the superuser's answer over the tenant's rows), under each
  # citus.local_table_join_policy, and no node crashes (closing check).
  q "$C" postgres -c "CREATE TABLE plain_local (id int)" -c "INSERT INTO plain_local SELECT generate_series(1, 5)" -c "GRANT SELECT ON plain_local TO app" >/dev/null
  local wrap_q=(
    "SELECT count(*) || ':' || count(o.id) FROM local_rows l LEFT JOIN orders o ON o.id = l.id"
    "SELECT count(*) || ':' || count(o.id) FROM (VALUES (1), (4)) v(id) LEFT JOIN orders o ON o.id = v.id"
    "SELECT count(*) || ':' || count(o.id) FROM orders o RIGHT JOIN categories c ON c.name = o.id::text"
    "SELECT count(*) || ':' || count(o.id) FROM generate_series(1, 4) g FULL JOIN orders o ON o.id = g"
    "SELECT count(*) || ':' || count(o.id) FROM orders o JOIN local_rows l ON l.id = o.id"
    "SELECT count(*) || ':' || count(o.id) FROM plain_local l JOIN orders o ON o.id = l.id"
    "SELECT count(*) || ':' || count(o.id) FROM (SELECT id FROM orders ORDER BY id LIMIT 2) k LEFT JOIN orders o ON o.id = k.id + 1"
    "SELECT count(*) || ':' || count(a.id) * 10 + count(b.id) FROM plain_local l LEFT JOIN orders a ON a.id = l.id LEFT JOIN orders b ON b.id = l.id + 1"
    "SELECT count(*) || ':' || count(a.id) * 10 + count(b.id) FROM (VALUES (1), (2), (4)) v(id) LEFT JOIN orders a ON a.id = v.id LEFT JOIN orders b ON b.id = v.id + 1"
    "SELECT count(*) || ':' || count(o.id) * 10 + count(p.id) FROM plain_local l JOIN orders o ON o.id = l.id LEFT JOIN local_rows p ON p.id = l.id"
    "SELECT count(*) || ':' || count(o.id) FROM local_rows a FULL JOIN local_rows b ON b.id = a.id + 1 LEFT JOIN orders o ON o.id = coalesce(a.id, b.id)"
    "SELECT count(*) || ':' || count(oid) FROM local_orders"
    "SELECT count(*) || ':' || count(DISTINCT o::text) FROM plain_local l LEFT JOIN orders o ON o.id = l.id"
  )
  # (The superuser's answer: the same query over views of the tenant's rows, which row security
  # does not filter for it.)
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL || exit 1
CREATE SCHEMA ra_only;
CREATE VIEW ra_only.orders AS SELECT * FROM public.orders WHERE tenant_id = '$ra';
CREATE VIEW ra_only.local_rows AS SELECT * FROM public.local_rows WHERE tenant_id = '$ra';
CREATE VIEW ra_only.categories AS SELECT * FROM public.categories WHERE tenant_id = '$ra' OR tenant_id IS NULL;
CREATE VIEW public.local_orders WITH (security_invoker) AS
  SELECT l.id lid, o.id oid FROM plain_local l LEFT JOIN public.orders o ON o.id = l.id;
CREATE VIEW ra_only.local_orders AS SELECT l.id lid, o.id oid FROM plain_local l LEFT JOIN ra_only.orders o ON o.id = l.id;
GRANT SELECT ON public.local_orders TO app;
SQL
  local policy expect got wq
  for policy in auto prefer-distributed prefer-local; do
    expect=""; got=""
    for wq in "${wrap_q[@]}"; do
      expect+="$(q "$C" postgres -c "SET search_path = ra_only, public" -c "$wq")|"
      got+="$(as_slug ra -c "SET LOCAL citus.local_table_join_policy = '$policy'" -c "$wq" | grep -E '^[0-9]+:[0-9]+$|ERROR' | head -1)|"
    done
    check "$mode: routing: joins Citus wraps a filtered table for (local and distributed tables, outer joins keeping a local or reference table's, VALUES', a function's rows, a LIMIT subquery, self-joins under outer joins, a view, the whole row) give the tenant's rows ($policy)" "$expect" "$got"
  done
  # A session's first statement, after only SET LOCAL pg_tenant.token (no pg_tenant function
  # called yet: loaded on demand, the library loads at the session's start, see citus_setup()).
  local values_two="SELECT count(*) || ':' || count(a.id) * 10 + count(b.id) FROM (VALUES (1), (2), (4)) v(id) LEFT JOIN orders a ON a.id = v.id LEFT JOIN orders b ON b.id = v.id + 1"
  check "$mode: routing: a session's first statement after only SET LOCAL pg_tenant.token, VALUES LEFT JOIN a filtered table twice: the tenant's rows" \
    "$(q "$C" postgres -c "SET search_path = ra_only, public" -c "$values_two")" \
    "$(q "$C" app -c "BEGIN" -c "SET LOCAL pg_tenant.token = '$(token ra)'" -c "$values_two" -c "COMMIT")"
  # The same from a TEMP table of the application's own, and an UPDATE from such a join.
  local two_joins="SELECT count(*) || ':' || count(a.id) * 10 + count(b.id) FROM t LEFT JOIN orders a ON a.id = t.id LEFT JOIN orders b ON b.id = t.id + 1"
  local update_from="UPDATE local_rows p SET id = p.id FROM plain_local l LEFT JOIN orders o ON o.id = l.id + 1 WHERE p.id = l.id RETURNING p.id || ':' || coalesce(o.id, 0)"
  check "$mode: routing: a TEMP table LEFT JOIN a filtered table twice, and UPDATE ... FROM local LEFT JOIN filtered: the tenant's rows" \
    "$(q "$C" postgres -c "SET search_path = ra_only, public" -c "CREATE TEMP TABLE t AS SELECT generate_series(1, 4) id" -c "$two_joins")|1:2" \
    "$(as_slug ra -c "CREATE TEMP TABLE t AS SELECT generate_series(1, 4) id" -c "$two_joins" | grep -E '^[0-9]+:[0-9]+$|ERROR' | head -1)|$(as_slug ra -c "$update_from" | paste -sd,)"
  # Attack review of the wrapping (helper-50): the whole row of an aliased join holding a wrapped
  # table crashed the coordinator (Citus prints the join's columns from its inputs'); the table's
  # own whole row or system column inside such a join is refused; a GROUP BY on a wrapped
  # table's key with its other columns failed on the workers.
  local j_rows="SELECT string_agg(j::text, ',' ORDER BY j::text) FROM (plain_local l JOIN orders o ON o.id = l.id) j"
  check "$mode: routing: the whole row of an aliased join holding a filtered table: the tenant's rows; the table's own ctid or whole row inside it: refused (0A000)" \
    "$(q "$C" postgres -c "SET search_path = ra_only, public" -c "$j_rows")|0A000|0A000" \
    "$(as_slug ra -c "$j_rows")|$(err "$C" app -c "BEGIN" -c "SELECT tenant.set_local('ra') IS NULL" -c "SELECT j.amount FROM (plain_local l JOIN orders o ON o.id = l.id AND o.ctid IS NOT NULL) j")|$(err "$C" app -c "BEGIN" -c "SELECT tenant.set_local('ra') IS NULL" -c "SELECT count(*) FROM plain_local l JOIN orders o USING (id) WHERE o IS NOT NULL")"
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL || exit 1
CREATE TABLE keyed (junk int, id int, tenant_id uuid, body text, PRIMARY KEY (tenant_id, id));
SELECT tenant.protect('keyed');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('keyed', 'tenant_id', colocate_with => 'orders');
ALTER TABLE keyed DROP COLUMN junk;
INSERT INTO keyed VALUES (1, '$ra', 'k1'), (2, '$ra', 'k2'), (1, '$rb', 'other');
GRANT SELECT ON keyed TO app;
CREATE VIEW ra_only.keyed AS SELECT * FROM public.keyed WHERE tenant_id = '$ra';
SQL
  check "$mode: routing: GROUP BY a filtered table's key, with its other columns, in a join: the tenant's groups" \
    "$(q "$C" postgres -c "SET search_path = ra_only, public" -c "SELECT string_agg(id || body || n, ',' ORDER BY id) FROM (SELECT k.id, k.body, count(*) n FROM orders x JOIN keyed k ON k.id = x.id GROUP BY k.tenant_id, k.id, k.body) s")" \
    "$(as_slug ra -c "SELECT string_agg(id || body || n, ',' ORDER BY id) FROM (SELECT k.id, k.body, count(*) n FROM orders x JOIN keyed k ON k.id = x.id AND k.tenant_id = x.tenant_id GROUP BY k.tenant_id, k.id) s")"
  # (A dropped column: the subquery leaves it out, and the query's columns are renumbered.)
  local using_j="SELECT string_agg(j::text, ',' ORDER BY j::text) FROM (orders x JOIN keyed k USING (tenant_id, id)) j"
  local star_k="SELECT string_agg(l.id || ':' || k::text, ',' ORDER BY l.id) FROM (SELECT l.id, k.* FROM plain_local l LEFT JOIN keyed k ON k.id = l.id) k JOIN plain_local l USING (id)"
  check "$mode: routing: a filtered table with a dropped column in an aliased USING join, and its columns (k.*) beside a LEFT JOIN: the tenant's rows" \
    "$(q "$C" postgres -c "SET search_path = ra_only, public" -c "$using_j")|$(q "$C" postgres -c "SET search_path = ra_only, public" -c "$star_k")" \
    "$(as_slug ra -c "$using_j")|$(as_slug ra -c "$star_k")"
  # UPDATE of a local table FROM a join of two filtered tables crashed the coordinator (Citus's
  # wrapping, helper-52): pg_tenant wraps them, and Citus refuses the statement.
  check "$mode: routing: UPDATE of a local table FROM a join of two filtered tables: refused by Citus (0A000), no crash" "0A000" \
    "$(err "$C" app -c "BEGIN" -c "SELECT tenant.set_local('ra') IS NULL" -c "UPDATE plain_local SET id = plain_local.id FROM orders a JOIN orders b ON b.tenant_id = a.tenant_id AND b.id = a.id WHERE a.id = plain_local.id")"
  # (check() rates a table distributed by another column; the next section counts its own.)
  q "$C" postgres -c "DROP TABLE by_other" >/dev/null
}
