\if :ctx = 0
SELECT tenant.set('t' || (:client_id % 1000 + 1)::int);
\set ctx 1
\endif
SELECT count(*), sum(amount) FROM orders_protected;
