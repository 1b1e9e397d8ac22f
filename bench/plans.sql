-- The plans of the three reads, as the application role sees them.
SELECT tenant.set('t42') IS NOT NULL AS tenant_set;
SELECT id AS tid FROM tenant_ids WHERE n = 42 \gset
SELECT set_config('app.tenant_id', :'tid', false) IS NOT NULL AS setting_set;
PREPARE protected AS SELECT count(*), sum(amount) FROM orders_protected;
PREPARE explicit(uuid) AS SELECT count(*), sum(amount) FROM orders_explicit WHERE tenant_id = $1;
PREPARE handwritten AS SELECT count(*), sum(amount) FROM orders_handwritten;
EXPLAIN (COSTS OFF) EXECUTE protected;
EXPLAIN (COSTS OFF) EXECUTE explicit(:'tid');
EXPLAIN (COSTS OFF) EXECUTE handwritten;
-- Same answers from all three.
EXECUTE protected; EXECUTE explicit(:'tid'); EXECUTE handwritten;
