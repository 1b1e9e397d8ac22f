\set ON_ERROR_STOP on
CREATE EXTENSION pg_tenant;
CREATE ROLE pool_app LOGIN;
SELECT tenant.grant_gateway('pool_app');
SELECT count(tenant.create('t' || g)) FROM generate_series(1, 20) g;
CREATE TABLE items (id bigserial PRIMARY KEY, val int NOT NULL);
SELECT tenant.protect('items');
GRANT SELECT, INSERT ON items TO pool_app;
GRANT USAGE ON SEQUENCE items_id_seq TO pool_app;
