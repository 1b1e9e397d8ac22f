\if :ctx = 0
SELECT id AS tid FROM tenant_ids WHERE n = (:client_id % 100 + 1)::int \gset
\set ctx 1
\endif
\set k random(0, 1999)
BEGIN;
SET LOCAL app.tenant_id = ':tid';
SELECT amount FROM c_rls WHERE id = :k * 100 + :client_id % 100;
COMMIT;
