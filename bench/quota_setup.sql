-- Quota benchmark: 100 tenants; three protected tables that differ only in how inserts are
-- limited: a pg_tenant count quota, nothing, or the usual PL/pgSQL row trigger.
\set ON_ERROR_STOP on
CREATE EXTENSION IF NOT EXISTS pg_tenant;
DO $$ BEGIN CREATE ROLE bench_app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
SELECT tenant.grant_gateway('bench_app');
SELECT tenant.create_plan('bench', '{"items": {"limit": 100000000}, "copy_items": {"limit": 100000000}, "calls": {"limit": 1000000000}}');
SELECT count(tenant.create('q' || g, plan => 'bench')) AS tenants FROM generate_series(1, 100) g;

CREATE TABLE items_plain (id bigserial PRIMARY KEY, payload text);
CREATE TABLE items_quota (id bigserial PRIMARY KEY, payload text);
CREATE TABLE items_plpgsql (id bigserial PRIMARY KEY, payload text);
SELECT tenant.protect('items_plain'), tenant.protect('items_quota'), tenant.protect('items_plpgsql');
SELECT tenant.attach_quota('items_quota', 'items', 'count');

-- The hand-written alternative: a usage table and a row trigger that counts and checks.
CREATE TABLE plpgsql_usage (tenant_id uuid PRIMARY KEY, used bigint NOT NULL, lim bigint NOT NULL);
INSERT INTO plpgsql_usage SELECT id, 0, 100000000 FROM tenant_data.tenants;
CREATE FUNCTION plpgsql_quota() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    UPDATE plpgsql_usage SET used = used + 1 WHERE tenant_id = NEW.tenant_id AND used < lim;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'quota exceeded' USING ERRCODE = 'P0001';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER plpgsql_quota BEFORE INSERT ON items_plpgsql FOR EACH ROW EXECUTE FUNCTION plpgsql_quota();

GRANT SELECT, INSERT ON items_plain, items_quota, items_plpgsql TO bench_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO bench_app;

-- The COPY tables (copy_plain, copy_quota) are made fresh for each round by scripts/bench.sh.
