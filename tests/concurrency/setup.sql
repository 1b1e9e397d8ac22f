\set ON_ERROR_STOP on
CREATE EXTENSION pg_tenant;
CREATE ROLE conc_app LOGIN;
SELECT tenant.grant_gateway('conc_app');
SELECT tenant.create_plan('race', '{"credits": {"limit": 100}, "docs": {"limit": 50}, "events": {"limit": 40, "period": "day"}}');
SELECT tenant.create('race-a', plan => 'race');
SELECT tenant.create('race-b', plan => 'race');
CREATE SCHEMA conc;
GRANT USAGE ON SCHEMA conc TO conc_app;
CREATE TABLE conc.docs (id bigserial PRIMARY KEY, body text);
CREATE TABLE conc.events (id bigserial PRIMARY KEY, kind text);
SELECT tenant.protect('conc.docs');
SELECT tenant.protect('conc.events');
SELECT tenant.attach_quota('conc.docs', 'docs', 'count');
SELECT tenant.attach_quota('conc.events', 'events', 'meter');
GRANT SELECT, INSERT, DELETE ON conc.docs, conc.events TO conc_app;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA conc TO conc_app;
