\if :ctx = 0
SELECT id AS tid FROM tenant_ids WHERE n = (:client_id % 1000 + 1)::int \gset
\set ctx 1
\endif
SELECT count(*), sum(amount) FROM orders_explicit WHERE tenant_id = :tid;
