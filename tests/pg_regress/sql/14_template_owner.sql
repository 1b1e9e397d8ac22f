-- A template owner to superuser (security issue, item 13): an ordinary role owns the template a
-- superuser provisions schema tenants from. Everything of the owner's that PostgreSQL evaluates
-- while the clone is built (index and partition key expressions, generated columns, CHECK and
-- domain constraints, a SECURITY DEFINER function, a materialized view, an aggregate's initial
-- value, the data copy) runs as the owner, never as the superuser; a function planted in the
-- template to capture the clone's own catalog queries (quote_ident(name)) is never called.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE ROLE tpl_owner NOLOGIN;
GRANT CREATE ON DATABASE :"DBNAME" TO tpl_owner;

SET ROLE tpl_owner;
-- Every call of the owner's code is recorded with the role it ran as; each call tries to make
-- the owner a superuser (which only works when it runs as one).
CREATE SCHEMA attacker;
CREATE TABLE attacker.calls (tag text, who name, was_superuser boolean);
GRANT USAGE ON SCHEMA attacker TO PUBLIC;
GRANT INSERT ON attacker.calls TO PUBLIC;
CREATE FUNCTION attacker.pwn(tag text) RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO attacker.calls
    SELECT tag, current_user, r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user;
    BEGIN
        EXECUTE 'ALTER ROLE tpl_owner SUPERUSER';
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
END
$$;
GRANT EXECUTE ON FUNCTION attacker.pwn(text) TO PUBLIC;

CREATE SCHEMA tpl;
-- IMMUTABLE, so that PostgreSQL folds a call with constant arguments while it plans an expression.
CREATE FUNCTION tpl.f(tag text, x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM attacker.pwn(tag);
    RETURN x;
END
$$;
CREATE FUNCTION tpl.definer(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE SECURITY DEFINER AS $$
BEGIN
    PERFORM attacker.pwn('security definer');
    RETURN x;
END
$$;
-- An exact-type overload that beats pg_catalog's quote_ident(text) for the name columns the
-- clone's catalog queries quote, were it found through the search_path (the template is on it
-- while they run, for the deparsers). (An operator in the template makes the clone refuse it.)
CREATE FUNCTION tpl.quote_ident(n name) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM attacker.pwn('quote_ident overload');
    RETURN pg_catalog.quote_ident(n::text);
END
$$;

CREATE DOMAIN tpl.positive AS int CHECK (tpl.f('domain check', VALUE) > 0);
CREATE TABLE tpl.items (
    id int PRIMARY KEY,
    x int,
    doubled int GENERATED ALWAYS AS (tpl.f('generated column', 2) * x) STORED,
    score tpl.positive DEFAULT 1,
    CHECK (tpl.f('check constraint', 1) + x > 0)
);
CREATE INDEX items_expr ON tpl.items ((tpl.f('index expression', 1) + x));
CREATE INDEX items_partial ON tpl.items (x) WHERE tpl.f('index predicate', 1) > 0;
CREATE INDEX items_definer ON tpl.items ((tpl.definer(1) + x));
CREATE TABLE tpl.notes (item_id int REFERENCES tpl.items, body text);
CREATE TABLE tpl.events (x int, k int) PARTITION BY RANGE ((tpl.f('partition key', 1) + x));
CREATE TABLE tpl.events_low PARTITION OF tpl.events FOR VALUES FROM (0) TO (100);
ALTER TABLE tpl.events_low ADD CONSTRAINT events_low_check CHECK (tpl.f('partition check', 1) > 0);
CREATE INDEX events_expr ON tpl.events ((tpl.f('partition index', 1) + k));
CREATE TABLE tpl.by_score (s tpl.positive) PARTITION BY LIST (s);
CREATE TABLE tpl.by_score_5 PARTITION OF tpl.by_score FOR VALUES IN (5);
CREATE MATERIALIZED VIEW tpl.summary AS SELECT tpl.f('materialized view', 1) AS v;
-- CREATE AGGREGATE reads an initial value with its state type's input function (domain check).
CREATE FUNCTION tpl.keep(tpl.positive, int) RETURNS tpl.positive LANGUAGE sql IMMUTABLE AS 'SELECT $1';
CREATE AGGREGATE tpl.first_positive(int) (SFUNC = tpl.keep, STYPE = tpl.positive, INITCOND = '3');
INSERT INTO tpl.items (id, x) VALUES (1, 1), (2, 2);
INSERT INTO tpl.notes VALUES (1, 'first');
INSERT INTO tpl.events VALUES (1, 1);
INSERT INTO tpl.by_score VALUES (5);
TRUNCATE attacker.calls;
RESET ROLE;

-- A superuser provisions a schema tenant from the template.
SELECT tenant.create('tpl-acme', isolation => 'schema', template => 'tpl') IS NOT NULL AS created;
SELECT rolsuper AS owner_became_superuser FROM pg_roles WHERE rolname = 'tpl_owner';
SELECT count(*) AS calls_as_a_superuser FROM attacker.calls WHERE was_superuser OR who <> 'tpl_owner';
-- The owner's expressions did run while the clone was built: as the owner.
SELECT tag, who FROM attacker.calls GROUP BY tag, who ORDER BY tag;
-- Every object of the clone belongs to the template's owner, as after a pg_dump restore.
SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner) AS owner
  FROM pg_class c WHERE c.relnamespace = 'tenant_tpl_acme'::regnamespace ORDER BY c.relname;
SELECT p.proname, pg_get_userbyid(p.proowner) AS owner, p.prosecdef
  FROM pg_proc p WHERE p.pronamespace = 'tenant_tpl_acme'::regnamespace ORDER BY p.proname;
SELECT pg_get_userbyid(nspowner) AS schema_owner FROM pg_namespace WHERE nspname = 'tenant_tpl_acme';
-- The clone works: its foreign key, index and constraints are there.
SELECT conname, contype, convalidated FROM pg_constraint
 WHERE connamespace = 'tenant_tpl_acme'::regnamespace ORDER BY conname;

-- A migration: the caller's DDL, then the schema's guard on the new table; nothing of the
-- owner's runs as the superuser either.
TRUNCATE attacker.calls;
SELECT tenant.migrate('tpl_002', 'CREATE TABLE extra (id int)') > 0 AS migrated;
SELECT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'tenant_tpl_acme.extra'::regclass
                                        AND tgname = 'tenant_schema_guard') AS extra_guarded;
SELECT count(*) AS calls_as_a_superuser FROM attacker.calls WHERE was_superuser OR who <> 'tpl_owner';

-- clone_schema with the data: the rows are inserted (defaults, generated columns, CHECK and
-- domain constraints, partition routing) and checked (foreign keys) as their table's owner.
TRUNCATE attacker.calls;
SELECT kind, cloned FROM tenant.clone_schema('tpl', 'tpl_copy', true) WHERE kind IN ('table', 'rows', 'foreign key');
SELECT rolsuper AS owner_became_superuser FROM pg_roles WHERE rolname = 'tpl_owner';
SELECT count(*) AS calls_as_a_superuser FROM attacker.calls WHERE was_superuser OR who <> 'tpl_owner';
SELECT count(*) FILTER (WHERE tag IN ('domain check', 'generated column', 'check constraint')) > 0 AS row_checks_ran_as_owner
  FROM attacker.calls;
SELECT id, x, doubled, score FROM tpl_copy.items ORDER BY id;
SELECT (SELECT count(*) FROM tpl_copy.notes) AS notes, (SELECT count(*) FROM tpl_copy.events) AS events,
       (SELECT count(*) FROM tpl_copy.by_score) AS by_score;

-- A caller who would not see every row of a source table still gets an error, not a partial
-- copy: the owner's rights insert the rows, the caller's decide what may be read (here a member
-- of the owner, under FORCE ROW LEVEL SECURITY).
CREATE ROLE tpl_reader NOLOGIN;
GRANT CREATE ON DATABASE :"DBNAME" TO tpl_reader;
GRANT EXECUTE ON FUNCTION tenant.clone_schema(name, name, boolean) TO tpl_reader;
GRANT tpl_owner TO tpl_reader;
SET ROLE tpl_owner;
CREATE SCHEMA tpl_rls;
CREATE TABLE tpl_rls.t (x int);
INSERT INTO tpl_rls.t VALUES (1), (2);
ALTER TABLE tpl_rls.t ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
CREATE POLICY only_one ON tpl_rls.t USING (x = 1);
RESET ROLE;
SET ROLE tpl_reader;
SELECT test.try($$SELECT * FROM tenant.clone_schema('tpl_rls', 'tpl_rls_copy', true)$$);
RESET ROLE;
SELECT count(*) AS partial_copies FROM pg_namespace WHERE nspname = 'tpl_rls_copy';

SELECT tenant.drop('tpl-acme');
DROP SCHEMA tpl, tpl_copy, tpl_rls, attacker CASCADE;
REVOKE CREATE ON DATABASE :"DBNAME" FROM tpl_owner, tpl_reader;
REVOKE EXECUTE ON FUNCTION tenant.clone_schema(name, name, boolean) FROM tpl_reader;
DROP ROLE tpl_reader;
DROP ROLE tpl_owner;
RESET client_min_messages;
