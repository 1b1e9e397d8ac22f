\if :ctx = 0
SELECT tenant.set('q' || (:client_id % 100 + 1)::int);
\set ctx 1
\endif
SELECT 1;
