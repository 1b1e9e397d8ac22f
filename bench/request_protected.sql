\set n random(1, 1000)
BEGIN;
SELECT tenant.set_local('t' || (:n)::int);
SELECT count(*), sum(amount) FROM orders_protected;
COMMIT;
