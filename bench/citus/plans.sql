-- What each read variant plans to (as the application role): one task for the explicit
-- filter and for pg_tenant's routed query, every shard for the hand-written policy. (Each in
-- its own transaction: in one that called tenant.set_local(), a query Citus sends to the
-- coordinator's own placement of a reference table fails, see docs/operations.md.)
SELECT id AS tid FROM tenant_ids WHERE n = 1 \gset
BEGIN;
SELECT tenant.set_local('t1') IS NULL;
EXPLAIN (COSTS OFF) SELECT amount FROM c_protected WHERE id = 100;
COMMIT;
BEGIN;
SET LOCAL app.tenant_id = :'tid';
EXPLAIN (COSTS OFF) SELECT amount FROM c_rls WHERE id = 100;
COMMIT;
EXPLAIN (COSTS OFF) SELECT amount FROM c_explicit WHERE tenant_id = :'tid' AND id = 100;
