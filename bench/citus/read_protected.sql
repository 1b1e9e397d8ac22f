\set k random(0, 1999)
BEGIN;
SELECT tenant.set_local('t' || (:client_id % 100 + 1)::int) IS NULL;
SELECT amount FROM c_protected WHERE id = :k * 100 + :client_id % 100;
COMMIT;
