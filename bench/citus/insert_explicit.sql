\if :ctx = 0
SELECT id AS tid FROM tenant_ids WHERE n = (:client_id % 100 + 1)::int \gset
\set ctx 1
\endif
INSERT INTO c_ins_explicit (tenant_id, payload) VALUES (':tid', 'x');
