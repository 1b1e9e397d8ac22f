\set n random(1, 1000)
BEGIN;
SELECT set_config('app.tenant_id', (SELECT id::text FROM tenant_ids WHERE n = (:n)::int), true);
SELECT count(*), sum(amount) FROM orders_handwritten;
COMMIT;
