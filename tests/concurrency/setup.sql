-- After gateway_fixture (tests/lib.sh): conc_app, plan race, tenants race-a and race-b.
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
