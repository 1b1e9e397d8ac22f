-- Citus benchmark data (on the coordinator): 100 tenants, 200,000 rows in three tables
-- distributed by tenant_id (32 shards over two workers):
--   c_protected    isolated by tenant.protect(), then distributed (pg_tenant routes)
--   c_explicit     no RLS: the application filters with WHERE tenant_id = $1
--   c_rls          the usual hand-written policy on current_setting('app.tenant_id') (fan-out)
-- and three for single-row inserts: c_ins_explicit (plain), c_ins_protected (protected, no
-- quota), c_ins_quota (protected, a count quota counted on the coordinator).
\set ON_ERROR_STOP on
CREATE EXTENSION pg_tenant;
SELECT tenant.citus_setup() IS NOT NULL AS setup;
CREATE ROLE bench_app LOGIN;
-- (The hand-written policy's SET LOCAL app.tenant_id reaches the workers only so.)
ALTER ROLE bench_app SET citus.propagate_set_commands = 'local';
SELECT tenant.grant_gateway('bench_app');
SELECT tenant.create_plan('bench', '{"c_rows": {"limit": 100000000}}');
SELECT count(tenant.create('t' || g, plan => 'bench')) AS tenants FROM generate_series(1, 100) g;
CREATE TABLE tenant_ids (n int PRIMARY KEY, id uuid NOT NULL);
INSERT INTO tenant_ids SELECT substr(slug, 2)::int, id FROM tenant_data.tenants;
SELECT create_reference_table('tenant_ids');

CREATE TABLE c_explicit (id bigint NOT NULL, tenant_id uuid NOT NULL, amount numeric NOT NULL, note text, PRIMARY KEY (tenant_id, id));
CREATE TABLE c_protected (LIKE c_explicit INCLUDING ALL);
CREATE TABLE c_rls (LIKE c_explicit INCLUDING ALL);
SELECT tenant.protect('c_protected');
ALTER TABLE c_rls ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY by_setting ON c_rls USING (tenant_id = current_setting('app.tenant_id')::uuid);
SET citus.enable_unsafe_triggers = on;
SELECT create_distributed_table('c_explicit', 'tenant_id');
SELECT create_distributed_table('c_protected', 'tenant_id', colocate_with => 'c_explicit');
SELECT create_distributed_table('c_rls', 'tenant_id', colocate_with => 'c_explicit');
INSERT INTO c_explicit
SELECT g, t.id, (g % 997)::numeric, md5(g::text)
  FROM generate_series(1, 200000) g JOIN tenant_ids t ON t.n = g % 100 + 1;
INSERT INTO c_protected SELECT * FROM c_explicit;
INSERT INTO c_rls SELECT * FROM c_explicit;

CREATE TABLE c_ins_explicit (id bigserial, tenant_id uuid NOT NULL, payload text);
CREATE TABLE c_ins_protected (id bigserial, tenant_id uuid, payload text);
CREATE TABLE c_ins_quota (id bigserial, tenant_id uuid, payload text);
SELECT tenant.protect('c_ins_protected'), tenant.protect('c_ins_quota');
SELECT create_distributed_table('c_ins_explicit', 'tenant_id', colocate_with => 'c_explicit');
SELECT create_distributed_table('c_ins_protected', 'tenant_id', colocate_with => 'c_explicit');
SELECT create_distributed_table('c_ins_quota', 'tenant_id', colocate_with => 'c_explicit');
RESET citus.enable_unsafe_triggers;
SELECT tenant.attach_quota('c_ins_quota', 'c_rows', 'count');

GRANT SELECT ON tenant_ids, c_explicit, c_protected, c_rls TO bench_app;
GRANT SELECT, INSERT ON c_ins_explicit, c_ins_protected, c_ins_quota TO bench_app;
GRANT USAGE ON SEQUENCE c_ins_explicit_id_seq, c_ins_protected_id_seq, c_ins_quota_id_seq TO bench_app;
VACUUM ANALYZE;
