BEGIN;
SELECT tenant.set_local('t' || (:client_id % 100 + 1)::int) IS NULL;
INSERT INTO c_ins_protected (payload) VALUES ('x');
COMMIT;
