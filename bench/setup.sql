-- Benchmark data: 1,000 tenants, 1,000,000 rows, three copies of one table:
--   orders_protected    isolated by tenant.protect()
--   orders_explicit     no RLS, the application filters with WHERE tenant_id = $1
--   orders_handwritten  the usual hand-written policy on current_setting('app.tenant_id')
\set ON_ERROR_STOP on
CREATE EXTENSION pg_tenant;
CREATE ROLE bench_app LOGIN;
SELECT tenant.grant_gateway('bench_app');
SELECT count(tenant.create('t' || g)) AS tenants FROM generate_series(1, 1000) g;
CREATE TABLE tenant_ids (n int PRIMARY KEY, id uuid NOT NULL);
INSERT INTO tenant_ids SELECT substr(slug, 2)::int, id FROM tenant_data.tenants;

-- Rows of all tenants interleaved, as concurrent inserts leave them.
CREATE TABLE orders_explicit (id bigint PRIMARY KEY, tenant_id uuid NOT NULL, amount numeric NOT NULL, note text);
INSERT INTO orders_explicit
SELECT g, t.id, (g % 997)::numeric, md5(g::text)
  FROM generate_series(1, 1000000) g JOIN tenant_ids t ON t.n = g % 1000 + 1;
CREATE INDEX ON orders_explicit (tenant_id);

CREATE TABLE orders_protected (LIKE orders_explicit INCLUDING ALL);
INSERT INTO orders_protected SELECT * FROM orders_explicit;
SELECT tenant.protect('orders_protected');

CREATE TABLE orders_handwritten (LIKE orders_explicit INCLUDING ALL);
INSERT INTO orders_handwritten SELECT * FROM orders_explicit;
ALTER TABLE orders_handwritten ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY by_setting ON orders_handwritten USING (tenant_id = current_setting('app.tenant_id')::uuid);

GRANT SELECT ON tenant_ids, orders_explicit, orders_protected, orders_handwritten TO bench_app;
VACUUM ANALYZE;
