# shellcheck shell=bash
# Sourced by tests/citus/run.sh: count and meter quotas on a table hash-distributed by its tenant
# column (issue 14 part 5), counted per statement on the coordinator: attach_quota counts the rows
# already there, inserts (one row, several, ON CONFLICT DO NOTHING) add, DELETE gives back, the
# limit refuses the statement that would pass it (PT010, JSON DETAIL) and nothing of it stays on
# the workers; 16 clients racing through the coordinator for the last K units get exactly K;
# statements whose count is ambiguous (ON CONFLICT DO UPDATE, MERGE, writable CTEs) and writes of
# a role row security does not filter are refused (0A000); bytes quotas on a Citus table are
# refused (0A000); tenant.drop() deletes a tenant's counted rows; tenant.import() counts the rows it
# loads. Loaded on demand, count and meter quotas on a distributed table are refused (0A000): a
# coordinator session that never loads pg_tenant would count nothing. 22 checks preloaded, 2 loaded on demand.
#
# run_quotas MODE: uses C, W1, W2, q, err, check from run.sh; preloaded, creates and drops the
# tenant racer.
run_quotas() {
  local mode=$1
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || exit 1
CREATE TABLE stock (id bigserial, tenant_id uuid, body text);
SELECT tenant.protect('stock');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('stock', 'tenant_id', colocate_with => 'none');
CREATE UNIQUE INDEX stock_key ON stock (tenant_id, id);
GRANT SELECT, INSERT, UPDATE, DELETE ON stock TO app;
GRANT USAGE ON SEQUENCE stock_id_seq TO app;
SELECT tenant.create_plan('stocked', '{"stock": {"limit": 5}, "stock_ins": {"limit": 100, "period": "month"}, "stock_bytes": {"limit": 100000}}');
SELECT tenant.change_plan('acme', 'stocked'), tenant.change_plan('globex', 'stocked');
SQL
  # sq TENANT SQL...: one transaction of the gateway role app acting as TENANT (set_local()), with
  # command tags.
  sq() { local t=$1; shift; "$PG_BIN/psql" -X -t -A -h 127.0.0.1 -p "$C" -U app -d app -c "BEGIN" -c "SELECT tenant.set_local('$t') IS NULL" "$@" -c "COMMIT" 2>&1 | grep -v '^f$'; }
  sqerr() { local t=$1; shift; err "$C" app -c "BEGIN" -c "SELECT tenant.set_local('$t') IS NULL" "$@"; }
  used() { q "$C" postgres -c "SELECT coalesce((SELECT used FROM tenant.usage WHERE tenant = '$1' AND resource = '${2:-stock}'), 0)"; }
  rows() { q "$C" postgres -c "SELECT count(*) FROM stock WHERE tenant_id = (SELECT id FROM tenant_data.tenants WHERE slug = '$1')"; }
  sq globex -c "INSERT INTO stock (body) VALUES ('g1'), ('g2')" >/dev/null
  check "$mode: quotas: bytes on a distributed table is refused (0A000), nothing attached" "0A000|0" \
    "$(err "$C" postgres -c "SELECT tenant.attach_quota('stock', 'stock_bytes', 'bytes')")|$(q "$C" postgres -c "SELECT count(*) FROM tenant.quota_attachments WHERE table_name = 'stock'::regclass")"
  if [ "$mode" = plain ]; then
    check "$mode: quotas: loaded on demand, count and meter quotas on a distributed table are refused (0A000), nothing attached" "0A000|0A000|0" \
      "$(err "$C" postgres -c "SELECT tenant.attach_quota('stock', 'stock', 'count')")|$(err "$C" postgres -c "SELECT tenant.attach_quota('stock', 'stock_ins', 'meter')")|$(q "$C" postgres -c "SELECT count(*) FROM tenant.quota_attachments WHERE table_name = 'stock'::regclass")"
    return
  fi
  q "$C" postgres -c "SELECT tenant.create('racer', plan => 'stocked')" -c "SELECT tenant.set_limit('racer', 'stock', 20)" >/dev/null
  q "$C" postgres -c "SELECT tenant.attach_quota('stock', 'stock', 'count')" -c "SELECT tenant.attach_quota('stock', 'stock_ins', 'meter')" >/dev/null
  check "$mode: quotas: attach_quota(count) counts the rows already on the workers; no trigger or index reaches a shard" "2|0" \
    "$(used globex)|$(for p in $W1 $W2; do q "$p" postgres -c "SET citus.show_shards_for_app_name_prefixes = '*'" -c "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relname LIKE 'stock%' AND t.tgname LIKE 'tenant_quota%'" -c "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'tenant_quota'" | tail -2; done | awk "{ s += \$1 } END { print s }")"
  check "$mode: quotas: acme's single and multi-row INSERTs count on the coordinator (count and meter)" "INSERT 0 1|INSERT 0 2|3|3" \
    "$(sq acme -c "INSERT INTO stock (body) VALUES ('a1')" | grep INSERT)|$(sq acme -c "INSERT INTO stock (body) VALUES ('a2'), ('a3')" | grep INSERT)|$(used acme)|$(used acme stock_ins)"
  check "$mode: quotas: DELETE gives its rows back (meter keeps them); UPDATE changes nothing" "DELETE 1|UPDATE 2|2|3" \
    "$(sq acme -c "DELETE FROM stock WHERE body = 'a3'" | grep DELETE)|$(sq acme -c "UPDATE stock SET body = body || '!'" | grep UPDATE)|$(used acme)|$(used acme stock_ins)"
  check "$mode: quotas: a savepoint rolled back takes its rows' count with it" "2" \
    "$(sq acme -c "SAVEPOINT s" -c "INSERT INTO stock (body) VALUES ('s1'), ('s2')" -c "ROLLBACK TO s" >/dev/null; used acme)"
  check "$mode: quotas: INSERT ... ON CONFLICT (DO NOTHING too: Citus reports the rows it sent) is refused (0A000), nothing changed" "0A000|0A000|2|2" \
    "$(sqerr acme -c "INSERT INTO stock (id, body) SELECT min(id), 'dup' FROM stock UNION ALL SELECT nextval('stock_id_seq'), 'new' ON CONFLICT DO NOTHING")|$(sqerr acme -c "INSERT INTO stock (body) VALUES ('v') ON CONFLICT DO NOTHING")|$(rows acme)|$(used acme)"
  sq acme -c "INSERT INTO stock (body) VALUES ('new')" >/dev/null
  local over
  over=$(q "$C" app -c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "INSERT INTO stock (body) VALUES ('x1'), ('x2'), ('x3')" 2>&1 | grep -E '^(ERROR|DETAIL)' | paste -sd'|')
  check "$mode: quotas: the INSERT that would pass the limit is refused with the quota error and its JSON DETAIL" \
    'ERROR:  quota exceeded for "stock": 3 of 5 used (plan stocked)|DETAIL:  {"limit":5,"period_end":null,"plan":"stocked","requested":3,"resource":"stock","used":3}' "$over"
  check "$mode: quotas: ... nothing of it stays on any worker, the counters unchanged" "3|3|4" \
    "$(rows acme)|$(used acme)|$(used acme stock_ins)"
  check "$mode: quotas: ON CONFLICT DO UPDATE, writable CTEs and MERGE are refused (0A000), nothing changed" "0A000|0A000|0A000|0A000|3|3" \
    "$(sqerr acme -c "INSERT INTO stock (id, body) SELECT min(id), 'u' FROM stock ON CONFLICT (tenant_id, id) DO UPDATE SET body = 'u'")|$(sqerr acme -c "WITH d AS (DELETE FROM stock WHERE body = 'new' RETURNING body) INSERT INTO stock (body) SELECT body FROM d")|$(sqerr acme -c "WITH d AS (DELETE FROM stock WHERE body = 'new' RETURNING body) UPDATE stock SET body = 'w' WHERE body IN (SELECT body FROM d)")|$(sqerr acme -c "MERGE INTO stock s USING (SELECT 1 AS k) v ON false WHEN NOT MATCHED THEN INSERT (body) VALUES ('m')")|$(rows acme)|$(used acme)"
  check "$mode: quotas: a superuser's INSERT and COPY (rows of any tenant) are refused (0A000), nothing stays" "0A000|0A000|2" \
    "$(err "$C" postgres -c "INSERT INTO stock (tenant_id, body) SELECT id, 'su' FROM tenant_data.tenants WHERE slug = 'globex'")|$(printf '%s\tsu\n' "$(q "$C" postgres -c "SELECT id FROM tenant_data.tenants WHERE slug = 'globex'")" | err "$C" postgres -c "COPY stock (tenant_id, body) FROM STDIN")|$(rows globex)"
  check "$mode: quotas: TRUNCATE of the table is refused" "PT004" "$(err "$C" postgres -c "TRUNCATE stock")"
  check "$mode: quotas: check_quota() and tenant.info() on the coordinator read the counter" "3|2" \
    "$(sq acme -c "SELECT used FROM tenant.check_quota('stock')" | grep -E '^[0-9]+$')|$(sq acme -c "SELECT (usage->'stock'->>'remaining') FROM tenant.info()" | grep -E '^[0-9]+$')"
  # tenant.import() loads rows with triggers off and counts its count quotas from the rows loaded,
  # whatever usage the document holds (here 99 for a table holding 3 rows).
  q "$C" postgres -c "SELECT tenant.create('imported', plan => 'stocked')" >/dev/null
  check "$mode: quotas: tenant.import() into the counted distributed table counts the rows it loaded on the workers (not the document's usage)" "3|3|3" \
    "$(q "$C" postgres -c "SELECT tenant.import('imported', jsonb_set(jsonb_set(d, '{tables}', jsonb_build_object('public.stock', d->'tables'->'public.stock')), '{usage}', '[{\"resource\": \"stock\", \"period_start\": \"-infinity\", \"used\": 99}]'), restore_quotas => true)->>'public.stock' FROM (SELECT tenant.export('acme') AS d) s")|$(rows imported)|$(used imported)"
  q "$C" postgres -c "SELECT tenant.drop('imported')" >/dev/null
  check "$mode: quotas: a count resource counts distributed tables or local ones, not both (0A000 either way)" "0A000|0A000" \
    "$(err "$C" postgres -c "SELECT tenant.attach_quota('a_trap', 'stock', 'count')")|$(err "$C" postgres -c "SELECT tenant.attach_quota('a_trap', 'loc', 'count')" -c "SELECT tenant.attach_quota('stock', 'loc', 'count')")"
  q "$C" postgres -c "SELECT tenant.detach_quota('a_trap', 'loc')" >/dev/null
  # Citus copies a table's triggers (the quota's, which only record it there) to a placement it
  # moves: they must count nothing on the shard.
  local sid from to
  sid=$(q "$C" postgres -c "SELECT get_shard_id_for_distribution_column('stock', (SELECT id FROM tenant_data.tenants WHERE slug = 'acme'))")
  from=$(q "$C" postgres -c "SELECT nodeport FROM pg_dist_placement JOIN pg_dist_node USING (groupid) WHERE shardid = $sid")
  to=$W1; [ "$from" = "$W1" ] && to=$W2
  q "$C" postgres -c "SELECT citus_move_shard_placement($sid, '127.0.0.1', $from, '127.0.0.1', $to, shard_transfer_mode => 'block_writes')" >/dev/null
  check "$mode: quotas: after a shard move (the quota's triggers copied to the new placement count nothing there): DELETE and INSERT counted once" "t|DELETE 1|INSERT 0 2|4" \
    "$(q "$to" postgres -c "SET citus.show_shards_for_app_name_prefixes = '*'" -c "SELECT count(*) > 0 FROM pg_trigger WHERE tgname LIKE 'tenant_quota_%_dist_%' AND tgrelid::regclass::text LIKE '%stock_$sid'")|$(sq acme -c "DELETE FROM stock WHERE body = 'a1!'" | grep DELETE)|$(sq acme -c "INSERT INTO stock (body) VALUES ('m1'), ('m2')" | grep INSERT)|$(used acme)"
  # 16 clients, 5 attempts each, race for racer's 20 units through the coordinator.
  local c race
  race=$(mktemp -d)
  for c in $(seq 1 16); do
    for _ in 1 2 3 4 5; do
      echo "BEGIN; SELECT tenant.set_local('racer') IS NULL; INSERT INTO stock (body) VALUES ('race'); COMMIT;"
    done > "$race/$c.sql"
  done
  for c in $(seq 1 16); do
    "$PG_BIN/psql" -X -q -t -A -h 127.0.0.1 -p "$C" -U app -d app -f "$race/$c.sql" > "$race/$c.out" 2>&1 &
  done
  wait
  check "$mode: quotas: 16 clients race through the coordinator for racer's 20 units: exactly 20 rows on the workers, the counter says 20, the other 60 attempts got the quota error" "20|20|60" \
    "$(rows racer)|$(used racer)|$(cat "$race"/*.out | grep -c 'quota exceeded for "stock"')"
  rm -rf "$race"
  check "$mode: quotas: tenant.drop() deletes racer's counted rows on every worker" "0|0" \
    "$(q "$C" postgres -c "SELECT tenant.drop('racer')" >/dev/null; q "$C" postgres -c "SELECT count(*) FROM stock WHERE body = 'race'")|$(q "$C" postgres -c "SELECT count(*) FROM tenant_data.tenants WHERE slug = 'racer'")"
  check "$mode: quotas: detach_quota() gives the table's usage back" "0|0" \
    "$(q "$C" postgres -c "SELECT tenant.detach_quota('stock', 'stock')" >/dev/null; used acme)|$(used racer)"
  check "$mode: quotas: detached, inserts are no longer refused or counted" "INSERT 0 3|0" \
    "$(sq acme -c "INSERT INTO stock (body) VALUES ('y1'), ('y2'), ('y3')" | grep INSERT)|$(used acme)"
  # A session keeps what it read of a table's quotas across transactions: attach_quota() and
  # detach_quota() in another session take effect at its next statement all the same.
  q "$C" postgres -c "SELECT tenant.set_limit('acme', 'stock', 1000)" >/dev/null
  local pq="\\! $PG_BIN/psql -X -q -t -A -h 127.0.0.1 -p $C -U postgres -d app -c" ins=(-c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "INSERT INTO stock (body) VALUES ('z')" -c "COMMIT")
  local seen
  seen=$(q "$C" app "${ins[@]}" -c "$pq \"SELECT tenant.attach_quota('stock', 'stock', 'count')\" >/dev/null" -c "$pq \"SELECT used FROM tenant.usage WHERE tenant = 'acme' AND resource = 'stock'\"" \
    "${ins[@]}" -c "$pq \"SELECT used FROM tenant.usage WHERE tenant = 'acme' AND resource = 'stock'\"" -c "$pq \"SELECT tenant.detach_quota('stock', 'stock')\" >/dev/null" \
    "${ins[@]}" -c "$pq \"SELECT coalesce(sum(used), 0) FROM tenant.usage WHERE tenant = 'acme' AND resource = 'stock'\"" | grep -E '^(-?[0-9]+|ERROR.*)$' | paste -sd' ')
  check "$mode: quotas: one session's inserts count from its first statement after another session's attach_quota(), and stop after its detach_quota()" "1|0|$(rows acme)" \
    "$(echo "$seen" | awk '{ print $2 - $1 "|" $3 }')|$(echo "$seen" | awk '{ print $1 + 2 }')"
  # (Attack review, finding 1.) A REPEATABLE READ transaction whose snapshot predates the table's
  # distribution and quota: what the session keeps past it is read as committed now.
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || exit 1
CREATE TABLE rr (id bigserial, tenant_id uuid, body text);
SELECT tenant.protect('rr');
GRANT SELECT, INSERT ON rr TO app;
GRANT USAGE ON SEQUENCE rr_id_seq TO app;
SELECT tenant.set_limit('acme', 'rr', 2);
SQL
  local pqs="\\! $PG_BIN/psql -X -q -t -A -h 127.0.0.1 -p $C -U postgres -d app"
  check "$mode: quotas: a REPEATABLE READ transaction older than the table's distribution and quota counts its insert, and the session's next ones hit the limit" "PT010|1|1" \
    "$(q "$C" app -c '\set VERBOSITY sqlstate' -c "BEGIN ISOLATION LEVEL REPEATABLE READ" -c "SELECT tenant.set_local('acme') IS NULL" -c "SELECT 1" \
        -c "$pqs -c 'SET citus.enable_unsafe_triggers = on' -c \"SELECT create_distributed_table('rr', 'tenant_id', colocate_with => 'none')\" -c \"SELECT tenant.attach_quota('rr', 'rr', 'count')\" >/dev/null" \
        -c "INSERT INTO rr (body) VALUES ('1')" -c "COMMIT" -c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "INSERT INTO rr (body) VALUES ('2'), ('3')" | grep -E '^ERROR' | sed 's/^ERROR:  //')|$(q "$C" postgres -c "SELECT count(*) FROM rr")|$(used acme rr)"
  # (Attack review, finding 2.) A partition created after the quota was attached to its
  # distributed partitioned table counts for it, written through the partition or the parent; a
  # session that read a partition's quotas before attach_quota() sees them after it.
  q "$C" postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || exit 1
CREATE TABLE qparted (id bigserial, tenant_id uuid, body text, k int) PARTITION BY RANGE (k);
CREATE TABLE qparted_a PARTITION OF qparted FOR VALUES FROM (0) TO (10);
SELECT tenant.protect('qparted');
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('qparted', 'tenant_id', colocate_with => 'none');
GRANT SELECT, INSERT, DELETE ON qparted, qparted_a TO app;
GRANT USAGE ON SEQUENCE qparted_id_seq TO app;
SELECT tenant.set_limit('acme', 'qparted', 4);
SQL
  local pins=(-c "BEGIN" -c "SELECT tenant.set_local('acme') IS NULL" -c "INSERT INTO qparted_a (body, k) VALUES ('a', 1)" -c "COMMIT")
  q "$C" app "${pins[@]}" -c "$pqs -c \"SELECT tenant.attach_quota('qparted', 'qparted', 'count')\" >/dev/null" "${pins[@]}" >/dev/null
  q "$C" postgres -c "SET citus.enable_unsafe_triggers = on" -c "CREATE TABLE qparted_b PARTITION OF qparted FOR VALUES FROM (10) TO (20)" -c "SELECT tenant.protect('qparted_b')" -c "GRANT SELECT, INSERT ON qparted_b TO app" >/dev/null
  check "$mode: quotas: writes into a partition count for its partitioned table's quota: one a session read before attach_quota(), one created after it, through the parent; past the limit PT010" "2|INSERT 0 1|3|PT010|3|3" \
    "$(used acme qparted)|$(sq acme -c "INSERT INTO qparted_b (body, k) VALUES ('b', 11)" | grep INSERT)|$(used acme qparted)|$(sqerr acme -c "INSERT INTO qparted (body, k) VALUES ('c', 12), ('d', 2)")|$(q "$C" postgres -c "SELECT count(*) FROM qparted")|$(used acme qparted)"
}
