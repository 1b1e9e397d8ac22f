-- Read-only support access (issue 15, part 4): grant_gateway() and grant_access() with
-- read_only => true let a role act as tenants (any, or the one granted) and read, while every
-- write to protected tables and tenant schemas is refused (25006), through functions and
-- triggers too; every tenant.set()/set_local() of such a role is in the audit log; a role that
-- also holds a writing grant writes where that grant reaches (the stronger grant wins).
\set SHOW_CONTEXT never
SELECT tenant.create_plan('ro-plan', '{"calls": {"limit": 10, "period": "day"}}');
SELECT tenant.create('ro-a', plan => 'ro-plan') IS NOT NULL AS created;
SELECT tenant.create('ro-b', plan => 'ro-plan') IS NOT NULL AS created;
CREATE TABLE ro_notes (id int, body text);
SELECT tenant.protect('ro_notes');
CREATE TABLE ro_log (what text);
CREATE ROLE ro_support;
CREATE ROLE ro_mixed;
CREATE ROLE ro_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON ro_notes, ro_log TO ro_support, ro_mixed, ro_writer;
SELECT tenant.grant_gateway('ro_writer');
SELECT tenant.grant_gateway('ro_support', read_only => true);
SELECT tenant.grant_gateway('ro_mixed', read_only => true);
SELECT tenant.grant_access('ro-a', 'ro_mixed');
-- A NULL read_only is an error and grants nothing.
SELECT test.try($$SELECT tenant.grant_access('ro-b', 'ro_writer', read_only => NULL)$$);
SELECT count(*) AS no_grant FROM tenant_data.tenant_access a JOIN tenant.tenants t ON t.id = a.tenant_id
 WHERE t.slug = 'ro-b';
SELECT role::text, transaction_only, read_only FROM tenant_data.gateways WHERE role::text LIKE 'ro\_%' ORDER BY 1;

SET ROLE ro_writer;
SELECT tenant.set('ro-a') IS NOT NULL AS ok;
INSERT INTO ro_notes VALUES (1, 'a1');
SELECT tenant.set('ro-b') IS NOT NULL AS ok;
INSERT INTO ro_notes VALUES (2, 'b1');
SELECT tenant.reset();
RESET ROLE;

-- The support role acts as any tenant and reads; every write to the protected table is refused.
SET ROLE ro_support;
SELECT tenant.set('ro-a') IS NOT NULL AS ok;
SELECT id, body FROM ro_notes;
SELECT test.try($$INSERT INTO ro_notes VALUES (3, 'x')$$);
SELECT test.try($$UPDATE ro_notes SET body = 'x'$$);
SELECT test.try($$DELETE FROM ro_notes$$);
-- consume() writes usage as the tenant: refused too.
SELECT test.try($$SELECT tenant.consume('calls', 1)$$);
-- Tables pg_tenant does not protect stay writable.
INSERT INTO ro_log VALUES ('support was here');
SELECT tenant.set('ro-b') IS NOT NULL AS ok;
SELECT id, body FROM ro_notes;
SELECT test.try($$DELETE FROM ro_notes$$);
-- For a transaction too.
BEGIN;
SELECT tenant.set_local('ro-a') IS NOT NULL AS ok;
SELECT test.try($$UPDATE ro_notes SET body = 'x'$$);
COMMIT;
RESET ROLE;

-- Through a SECURITY DEFINER function of a superuser, and through a trigger on an unprotected
-- table: the context is read-only whoever's code writes.
CREATE FUNCTION ro_write(b text) RETURNS void LANGUAGE sql SECURITY DEFINER
    AS $$INSERT INTO ro_notes VALUES (9, b)$$;
CREATE FUNCTION ro_log_copies() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ro_notes VALUES (8, NEW.what);
    RETURN NEW;
END
$$;
CREATE TRIGGER ro_log_copies AFTER INSERT ON ro_log FOR EACH ROW EXECUTE FUNCTION ro_log_copies();
SET ROLE ro_support;
SELECT tenant.set('ro-a') IS NOT NULL AS ok;
SELECT test.try($$SELECT ro_write('via definer')$$);
SELECT test.try($$INSERT INTO ro_log VALUES ('via trigger')$$);
RESET ROLE;

-- Schema tenants: their own tables are read-only for the support role too.
CREATE SCHEMA ro_tpl;
CREATE TABLE ro_tpl.items (id int);
GRANT USAGE ON SCHEMA ro_tpl TO ro_support;
GRANT SELECT, INSERT ON ro_tpl.items TO ro_support;
SELECT tenant.create('ro-s', isolation => 'schema', template => 'ro_tpl') IS NOT NULL AS created;
SET ROLE ro_support;
SELECT tenant.set('ro-s') IS NOT NULL AS ok;
SELECT count(*) AS items FROM items;
SELECT test.try($$INSERT INTO items VALUES (1)$$);
SELECT tenant.reset();
RESET ROLE;

-- A role with a read-only gateway and a writing grant for ro-a writes as ro-a, reads ro-b.
SET ROLE ro_mixed;
SELECT tenant.set('ro-a') IS NOT NULL AS ok;
INSERT INTO ro_notes VALUES (4, 'a-by-mixed');
SELECT tenant.set('ro-b') IS NOT NULL AS ok;
SELECT test.try($$INSERT INTO ro_notes VALUES (5, 'b-by-mixed')$$);
SELECT tenant.reset();
RESET ROLE;

-- The tenant cannot change while a statement writes rows (the write guards judge it once, before
-- the first row): ro_mixed, writing as ro-a, cannot switch to ro-b, which it may only read, from
-- inside an INSERT, UPDATE or DELETE (55000), nor through the token parameter.
SET ROLE ro_mixed;
SELECT tenant.set('ro-a') IS NOT NULL AS ok;
SELECT test.try($$INSERT INTO ro_notes (id, body) SELECT 51, 'x' FROM (SELECT tenant.set_local('ro-b')) s$$);
SELECT test.try($$UPDATE ro_notes SET body = 'y' WHERE (SELECT tenant.set_local('ro-b')) IS NOT NULL$$);
SELECT test.try($$DELETE FROM ro_notes WHERE (SELECT tenant.reset()) IS NULL$$);
SELECT test.try($$INSERT INTO ro_notes (id, body) SELECT 52, set_config('pg_tenant.token', 'x', true)$$);
SELECT slug AS still FROM tenant.info();
SELECT tenant.reset();
RESET ROLE;

-- Every other way to change the tenant while a statement writes fails that statement when it
-- finishes (55000), with its rows: here the token parameter is dropped by a function the INSERT
-- calls for each row, which would fall back to a suspended tenant chosen with tenant.set(), whose
-- write guard never ran. RESET pg_tenant.tenant_id is tenant.reset() (refused while writing).
SELECT tenant.set_signing_key('HS256', 'ro-secret-0123456789-0123456789-abc');
SELECT tenant.create('ro-susp') IS NOT NULL AS created;
SELECT tenant.suspend('ro-susp', 'unpaid');
CREATE FUNCTION ro_drop_token() RETURNS int LANGUAGE plpgsql
    AS $$BEGIN PERFORM set_config('pg_tenant.token', NULL, false); RETURN 0; END$$;
CREATE FUNCTION ro_reset_tenant() RETURNS int LANGUAGE plpgsql
    AS $$BEGIN RESET pg_tenant.tenant_id; RETURN 0; END$$;
SET ROLE ro_writer;
SELECT tenant.set('ro-susp') IS NOT NULL AS ok;
SELECT set_config('pg_tenant.token', test.jwt(test.claims('ro-a'), 'ro-secret-0123456789-0123456789-abc'), false) IS NOT NULL AS token_set;
SELECT slug AS acting_as FROM tenant.info();
SELECT test.try($$INSERT INTO ro_notes (id, body) SELECT g + ro_drop_token(), 'into ro-susp?' FROM generate_series(60, 62) g$$);
SELECT set_config('pg_tenant.token', NULL, false) = '' AS token_dropped;
SELECT tenant.set('ro-a') IS NOT NULL AS ok;
SELECT test.try($$INSERT INTO ro_notes (id, body) SELECT g + ro_reset_tenant(), 'x' FROM generate_series(63, 64) g$$);
SELECT tenant.reset();
RESET ROLE;
SELECT count(*) AS none_written FROM ro_notes WHERE id BETWEEN 60 AND 64;
SELECT tenant.set_signing_key('HS256', NULL);

-- Nothing the support role tried was written.
SELECT t.slug, n.id, n.body FROM ro_notes n JOIN tenant.tenants t ON t.id = n.tenant_id ORDER BY n.id;

-- Every set by a read-only role is in the audit log, with the role (not ro_mixed's set of ro-a,
-- which writes).
SELECT action, detail->>'slug' AS slug, detail->>'role' AS role, detail->>'local' AS local
  FROM tenant.audit_log WHERE action = 'read_only_access' ORDER BY id;

-- Granting again without read_only makes the gateway a writing one (from the next transaction).
SELECT tenant.grant_gateway('ro_support');
SET ROLE ro_support;
SELECT tenant.set('ro-b') IS NOT NULL AS ok;
INSERT INTO ro_notes VALUES (6, 'b-by-support');
SELECT tenant.reset();
RESET ROLE;
SELECT count(*) AS written FROM ro_notes WHERE id = 6;
SELECT tenant.revoke_gateway('ro_support');
SET ROLE ro_support;
SELECT test.try($$SELECT tenant.set('ro-a')$$);
RESET ROLE;
