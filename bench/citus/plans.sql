-- What each read variant plans to (as the application role): one task for the explicit
-- filter and for pg_tenant's routed query, every shard for the hand-written policy.
BEGIN;
SELECT tenant.set_local('t1') IS NULL;
EXPLAIN (COSTS OFF) SELECT amount FROM c_protected WHERE id = 100;
SELECT set_config('app.tenant_id', (SELECT id::text FROM tenant_ids WHERE n = 1), true);
EXPLAIN (COSTS OFF) SELECT amount FROM c_rls WHERE id = 100;
EXPLAIN (COSTS OFF) SELECT amount FROM c_explicit WHERE tenant_id = (SELECT id FROM tenant_ids WHERE n = 1) AND id = 100;
COMMIT;
