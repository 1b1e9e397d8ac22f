\if :ctx = 0
SELECT id AS tid FROM tenant_ids WHERE n = (:client_id % 100 + 1)::int \gset
\set ctx 1
\endif
\set k random(0, 1999)
SELECT amount FROM c_explicit WHERE tenant_id = ':tid' AND id = :k * 100 + :client_id % 100;
