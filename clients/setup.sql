-- The data every client example works on.
\set ON_ERROR_STOP on
CREATE EXTENSION pg_tenant;
DO $$ BEGIN CREATE ROLE client_app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
SELECT tenant.grant_gateway('client_app');
SELECT tenant.create_plan('starter', '{"notes": {"limit": 2}}');
SELECT tenant.create('acme', plan => 'starter');
SELECT tenant.create('globex', plan => 'starter');
SELECT tenant.create('initech', plan => 'starter');
CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL);
SELECT tenant.protect('notes');
SELECT tenant.attach_quota('notes', 'notes');
GRANT SELECT, INSERT, DELETE ON notes TO client_app;
GRANT USAGE ON SEQUENCE notes_id_seq TO client_app;
SELECT tenant.set('globex');
INSERT INTO notes (body) VALUES ('globex plan');
SELECT tenant.reset();
SELECT tenant.suspend('initech', 'invoice overdue');
