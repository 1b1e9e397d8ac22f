-- tenant.clone_schema: what it copies, how references to the source are rewritten, data, and
-- every error (with nothing left behind). The pagila fidelity proof (pg_dump of source and
-- clone identical) is tests/clone_fidelity/run.sh.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE ROLE clone_reader NOLOGIN;
CREATE ROLE clone_owner NOLOGIN;

-- A source schema whose name needs quoting, with a bit of everything.
CREATE SCHEMA "Src Schema";
COMMENT ON SCHEMA "Src Schema" IS 'the template';
CREATE TYPE "Src Schema".mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN "Src Schema".positive AS integer DEFAULT 1 NOT NULL CONSTRAINT positive_check CHECK (VALUE > 0);
CREATE SEQUENCE "Src Schema".ticket_seq START 1000 INCREMENT 10;
CREATE TABLE "Src Schema".people (
    id      integer GENERATED ALWAYS AS IDENTITY (START WITH 100) PRIMARY KEY,
    name    text NOT NULL CHECK (name <> ''),
    mood    "Src Schema".mood NOT NULL DEFAULT 'ok',
    moods   "Src Schema".mood[],
    karma   "Src Schema".positive,
    ticket  bigint DEFAULT nextval('"Src Schema".ticket_seq'),
    shout   text GENERATED ALWAYS AS (upper(name)) STORED,
    touched timestamptz
);
COMMENT ON COLUMN "Src Schema".people.karma IS 'always positive';
CREATE TABLE "Src Schema".notes (
    id        serial PRIMARY KEY,
    person_id integer NOT NULL REFERENCES "Src Schema".people ON DELETE CASCADE,
    body      text
);
CREATE INDEX notes_body_idx ON "Src Schema".notes (lower(body)) WHERE body IS NOT NULL;
CREATE FUNCTION "Src Schema".touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.touched := '2000-01-01 00:00:00+00';
    RETURN NEW;
END
$$;
CREATE TRIGGER people_touch BEFORE INSERT OR UPDATE ON "Src Schema".people
    FOR EACH ROW EXECUTE FUNCTION "Src Schema".touch();
-- A body naming the source schema explicitly, in code and in dynamic SQL.
CREATE FUNCTION "Src Schema".people_count() RETURNS bigint LANGUAGE plpgsql
SET search_path = "Src Schema", pg_catalog AS $$
DECLARE n bigint;
BEGIN
    EXECUTE 'SELECT count(*) FROM "Src Schema".people' INTO n;
    RETURN n + (SELECT count(*) FROM "Src Schema".people) - n;
END
$$;
CREATE FUNCTION "Src Schema".note_count(p integer) RETURNS bigint LANGUAGE sql
BEGIN ATOMIC
    SELECT count(*) FROM "Src Schema".notes WHERE person_id = p;
END;
CREATE VIEW "Src Schema".happy_people WITH (security_barrier = true) AS
    SELECT id, name FROM "Src Schema".people WHERE mood = 'happy'
    WITH CASCADED CHECK OPTION;
ALTER TABLE "Src Schema".notes ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY notes_readers ON "Src Schema".notes FOR SELECT TO clone_reader USING ("Src Schema".note_count(person_id) >= 0);
GRANT USAGE ON SCHEMA "Src Schema" TO clone_reader;
GRANT SELECT ON "Src Schema".people TO clone_reader;
GRANT UPDATE (name) ON "Src Schema".people TO clone_reader;
REVOKE EXECUTE ON FUNCTION "Src Schema".people_count() FROM PUBLIC;
ALTER TABLE "Src Schema".notes OWNER TO clone_owner;
INSERT INTO "Src Schema".people (name, mood, moods, karma) VALUES ('ann', 'happy', '{happy,ok}', 3), ('bob', 'sad', NULL, 1);
INSERT INTO "Src Schema".notes (person_id, body) VALUES (100, 'Hello'), (100, NULL), (101, 'hi');

-- Without data: every object, no row; the counts come back per kind.
SELECT kind, cloned FROM tenant.clone_schema('Src Schema', 'Copy') WHERE cloned > 0;
SELECT count(*) AS people, (SELECT count(*) FROM "Copy".notes) AS notes FROM "Copy".people;
-- References to the source now name the clone: defaults, bodies, SET search_path, the view, the policy.
SELECT pg_get_expr(d.adbin, d.adrelid) AS ticket_default FROM pg_attrdef d
  JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
 WHERE d.adrelid = '"Copy".people'::regclass AND a.attname = 'ticket';
SELECT p.proname, p.prosrc LIKE '%"Src Schema"%' AS names_source, p.prosrc LIKE '%"Copy".people%' AS names_clone, p.proconfig
  FROM pg_proc p WHERE p.pronamespace = '"Copy"'::regnamespace AND p.proname = 'people_count';
SELECT pg_get_viewdef('"Copy".happy_people'::regclass) LIKE '%Src Schema%' AS view_names_source,
       (SELECT reloptions FROM pg_class WHERE oid = '"Copy".happy_people'::regclass) AS view_options;
-- Nothing in the clone depends on anything in the source. pg_identify_object() quotes the schema
-- ("Copy"); an object without a schema of its own (a column default, a view's rule, a trigger, a
-- policy) is in its table's. The clone's dependencies on itself show the query sees them.
WITH deps AS (
  SELECT coalesce(o.schema, (pg_identify_object('pg_class'::regclass, CASE d.classid
           WHEN 'pg_attrdef'::regclass THEN (SELECT adrelid FROM pg_attrdef WHERE oid = d.objid)
           WHEN 'pg_rewrite'::regclass THEN (SELECT ev_class FROM pg_rewrite WHERE oid = d.objid)
           WHEN 'pg_trigger'::regclass THEN (SELECT tgrelid FROM pg_trigger WHERE oid = d.objid)
           WHEN 'pg_policy'::regclass THEN (SELECT polrelid FROM pg_policy WHERE oid = d.objid) END, 0)).schema) AS dependent,
         (pg_identify_object(d.refclassid, d.refobjid, 0)).schema AS referenced
    FROM pg_depend d CROSS JOIN LATERAL pg_identify_object(d.classid, d.objid, 0) o)
SELECT count(*) FILTER (WHERE referenced = quote_ident('Src Schema')) AS dependencies_on_source,
       count(*) FILTER (WHERE referenced = quote_ident('Copy')) > 10 AS dependencies_within_clone
  FROM deps WHERE dependent = quote_ident('Copy');
-- Row security, policies, grants, revokes, owners and comments are as in the source.
SELECT relname, relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner) = 'clone_owner' AS owned_by_clone_owner,
       coalesce(relacl::text LIKE '%clone_reader=r/%', false) AS reader_grant
  FROM pg_class WHERE relnamespace = '"Copy"'::regnamespace AND relkind = 'r' ORDER BY relname;
SELECT polname, polroles::regrole[] AS roles, pg_get_expr(polqual, polrelid) AS qual FROM pg_policy WHERE polrelid = '"Copy".notes'::regclass;
SELECT attname, attacl FROM pg_attribute WHERE attrelid = '"Copy".people'::regclass AND attacl IS NOT NULL;
SELECT has_function_privilege('clone_reader', '"Copy".people_count()', 'EXECUTE') AS public_execute_revoked_stays_revoked;
SELECT obj_description('"Copy"'::regnamespace, 'pg_namespace') AS schema_comment,
       col_description('"Copy".people'::regclass, 5) AS column_comment;

-- Behaviour: the clone's identity and sequences are its own, its trigger and checks work.
INSERT INTO "Copy".people (name, karma) VALUES ('cy', 2) RETURNING id, ticket, mood, shout, touched;
SELECT last_value FROM "Src Schema".ticket_seq;
SELECT test.try($$INSERT INTO "Copy".people (name, karma) VALUES ('dee', -1)$$);
SELECT test.try($$INSERT INTO "Copy".notes (person_id) VALUES (999)$$);
SELECT test.try($$INSERT INTO "Copy".happy_people (name) VALUES ('sad one')$$);
SELECT "Copy".people_count(), "Copy".note_count(100);

-- With data: every row, sequences where the source left them, values of the source's own types.
SELECT kind, cloned FROM tenant.clone_schema('Src Schema', 'Copy With Data', true) WHERE kind IN ('table', 'rows');
SELECT id, name, mood, moods, karma, ticket, shout FROM "Copy With Data".people ORDER BY id;
SELECT (SELECT md5(string_agg(n::text, ',' ORDER BY id)) FROM "Src Schema".notes n)
     = (SELECT md5(string_agg(n::text, ',' ORDER BY id)) FROM "Copy With Data".notes n) AS notes_identical;
INSERT INTO "Copy With Data".notes (person_id, body) VALUES (101, 'next') RETURNING id;
SELECT last_value, is_called FROM "Copy With Data".ticket_seq;

-- Names that need quoting.
SELECT cloned FROM tenant.clone_schema('Src Schema', 'it''s "quoted"; drop table x') WHERE kind = 'table';
SELECT count(*) FROM "it's ""quoted""; drop table x".people;

-- Inside a transaction that rolls back, nothing remains.
BEGIN;
SELECT cloned FROM tenant.clone_schema('Src Schema', 'rolled_back') WHERE kind = 'table';
ROLLBACK;
SELECT count(*) AS rolled_back_schemas FROM pg_namespace WHERE nspname = 'rolled_back';

-- Errors, each leaving no schema behind.
SELECT test.try($$SELECT * FROM tenant.clone_schema('Src Schema', 'Copy')$$);
SELECT test.try($$SELECT * FROM tenant.clone_schema('no_such_schema', 'new_one')$$);
SELECT test.try($$SELECT * FROM tenant.clone_schema('pg_catalog', 'new_one')$$);
SELECT test.try($$SELECT * FROM tenant.clone_schema('information_schema', 'new_one')$$);
SELECT test.try($$SELECT * FROM tenant.clone_schema('tenant', 'new_one')$$);
SELECT test.try($$SELECT * FROM tenant.clone_schema(NULL, 'new_one')$$);
SELECT test.try($$SELECT * FROM tenant.clone_schema('Src Schema', NULL)$$);
SELECT test.try($$SELECT * FROM tenant.clone_schema('Src Schema', 'new_one', NULL)$$);
SELECT test.try($$SELECT * FROM tenant.clone_schema('Src Schema', '')$$);
SELECT test.try($$SELECT * FROM tenant.clone_schema('Src Schema', 'pg_new')$$);
-- Objects clone_schema cannot reproduce are refused by name, not skipped.
CREATE SCHEMA with_operator;
CREATE FUNCTION with_operator.eq(int, int) RETURNS boolean LANGUAGE sql AS 'SELECT $1 = $2';
CREATE OPERATOR with_operator.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = with_operator.eq);
SELECT test.try($$SELECT * FROM tenant.clone_schema('with_operator', 'new_one')$$);
SELECT count(*) AS new_one_schemas FROM pg_namespace WHERE nspname IN ('new_one', '', 'pg_new');
-- Only superusers and the extension owner may clone (and the caller needs CREATE on the database).
SET ROLE clone_reader;
SELECT test.try($$SELECT * FROM tenant.clone_schema('Src Schema', 'new_one')$$);
RESET ROLE;

-- Row security never thins a copy out silently: a caller who would see only some rows of a
-- source table gets an error, not a partial clone.
CREATE ROLE clone_admin;
GRANT CREATE ON DATABASE :"DBNAME" TO clone_admin;
GRANT EXECUTE ON FUNCTION tenant.clone_schema(name, name, boolean) TO clone_admin;
SET ROLE clone_admin;
CREATE SCHEMA rls_src;
CREATE TABLE rls_src.t (x int);
INSERT INTO rls_src.t VALUES (1), (2);
ALTER TABLE rls_src.t ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY only_one ON rls_src.t USING (x = 1);
SELECT count(*) AS rows_the_owner_sees FROM rls_src.t;
SELECT test.try($$SELECT * FROM tenant.clone_schema('rls_src', 'rls_copy', true)$$);
SELECT cloned FROM tenant.clone_schema('rls_src', 'rls_copy') WHERE kind = 'table';
DROP SCHEMA rls_src, rls_copy CASCADE;
RESET ROLE;
REVOKE CREATE ON DATABASE :"DBNAME" FROM clone_admin;
REVOKE EXECUTE ON FUNCTION tenant.clone_schema(name, name, boolean) FROM clone_admin;
DROP ROLE clone_admin;

DROP SCHEMA "Src Schema", "Copy", "Copy With Data", "it's ""quoted""; drop table x", with_operator CASCADE;
DROP ROLE clone_reader;
DROP ROLE clone_owner;
RESET client_min_messages;

-- A copy of a protected table is protected as the original is (its policies and guard come
-- with it), whether the clone provisions a schema tenant or is a plain clone_schema().
CREATE SCHEMA prot_src;
CREATE TABLE prot_src.items (id int, owner_tenant uuid NOT NULL);
SELECT tenant.protect('prot_src.items', 'owner_tenant');
CREATE TABLE prot_src.plain (id int);
SELECT cloned FROM tenant.clone_schema('prot_src', 'prot_copy') WHERE kind = 'table';
SELECT table_name, tenant_column FROM tenant.protected_tables
 WHERE table_name::text LIKE 'prot\_%' ORDER BY table_name::text;
SELECT tenant.unprotect('prot_copy.items'), tenant.unprotect('prot_src.items');
SET client_min_messages = warning;
DROP SCHEMA prot_src, prot_copy CASCADE;
RESET client_min_messages;
