\set n random(1, 1000)
BEGIN;
SELECT count(*), sum(amount) FROM orders_explicit WHERE tenant_id = (SELECT id FROM tenant_ids WHERE n = (:n)::int);
COMMIT;
