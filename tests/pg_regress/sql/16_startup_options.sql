-- A tenant chosen before any pg_tenant function runs: in a connection's startup options
-- (PGOPTIONS, options=-c ...), in a role default, by a placeholder SET before the library is
-- loaded, and a token in the startup options. What the connection gets depends on whether the
-- library is preloaded, so this file has two expected outputs: 16_startup_options.out without
-- preloading (the value is discarded with a WARNING when the library loads) and
-- 16_startup_options_1.out with shared_preload_libraries = 'pg_tenant' (a connection with the
-- tenant in its startup options is refused, SET is refused at once, a role default is discarded
-- at login). The first query says which mode ran, so neither output can pass in the other mode.
-- Uses test.try (01_registry) and test.jwt/test.claims (11_tokens).
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT 'pg_tenant' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ',')) AS preloaded \gset
SELECT :'preloaded'::boolean AS preloaded;
CREATE EXTENSION IF NOT EXISTS dblink;
-- The lowest role there is: no gateway, no access to any tenant, only SELECT on the table.
CREATE ROLE so_app LOGIN;
SELECT tenant.create('so-acme') AS acme \gset
SELECT tenant.create('so-globex') AS globex \gset
CREATE TABLE so_items (id int, name text);
SELECT tenant.protect('so_items');
GRANT SELECT ON so_items TO so_app;
SELECT tenant.set('so-acme') IS NOT NULL AS ok;
INSERT INTO so_items VALUES (1, 'acme item');
SELECT tenant.set('so-globex') IS NOT NULL AS ok;
INSERT INTO so_items VALUES (2, 'globex item');
SELECT tenant.reset();
SELECT format('host=%s port=%s dbname=%s user=so_app', :'HOST', :'PORT', current_database()) AS app_conninfo,
       format('dbname=%s user=so_app options=''-c pg_tenant.tenant_id=%s''', current_database(), :'globex') AS spoof_options,
       format('dbname=%s user=postgres options=''''', current_database()) AS plain_postgres \gset
-- test.session_of(conninfo, planted): opens a second session over dblink and reports what it
-- got: refused (the server's message), or accepted, with pg_tenant.tenant_id as its very first
-- statement saw it, then the tenant pg_tenant acts as, the parameter afterwards and what a read
-- of so_items returns. The planted tenant's id is shown as PLANTED wherever it appears.
CREATE FUNCTION test.session_of(conninfo text, planted uuid,
    OUT connection text, OUT setting_at_start text, OUT tenant text, OUT setting text, OUT reads text)
LANGUAGE plpgsql AS $$
DECLARE
    detail text;
BEGIN
    BEGIN
        PERFORM dblink_connect('probe', conninfo);
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
        -- The socket's path and port vary from run to run: keep the server's FATAL line.
        connection := 'refused: ' || SQLSTATE || ': ' || coalesce(substring(detail from '(FATAL:[^\n]*)'), detail);
        RETURN;
    END;
    connection := 'accepted';
    SELECT s INTO setting_at_start FROM dblink('probe', $q$SELECT current_setting('pg_tenant.tenant_id', true)$q$) AS t(s text);
    SELECT s INTO tenant FROM dblink('probe', $q$SELECT tenant.current(true)::text$q$) AS t(s text);
    SELECT s INTO setting FROM dblink('probe', $q$SELECT current_setting('pg_tenant.tenant_id')$q$) AS t(s text);
    BEGIN
        SELECT s INTO reads FROM dblink('probe', $q$SELECT string_agg(name, ', ' ORDER BY id) FROM so_items$q$) AS t(s text);
    EXCEPTION WHEN OTHERS THEN
        reads := SQLSTATE || ': ' || SQLERRM;
    END;
    PERFORM dblink_disconnect('probe');
    setting_at_start := replace(setting_at_start, planted::text, 'PLANTED');
    tenant := coalesce(replace(tenant, planted::text, 'PLANTED'), 'none');
    setting := replace(setting, planted::text, 'PLANTED');
END
$$;

-- ===== A tenant in the startup options =====
-- Another tenant's (valid) id, given by a role that may not act as any tenant. Preloaded: the
-- connection is refused. Otherwise the value stands as a placeholder until the library loads
-- (the first statement still sees it), and is then discarded: no tenant, nothing readable.
SELECT * FROM test.session_of(format('%s options=''-c pg_tenant.tenant_id=%s''', :'app_conninfo', :'globex'), :'globex');
-- The same with psql's own connection (PGOPTIONS), when the server lets it in: the WARNING.
\if :preloaded
\else
\c :spoof_options
SELECT current_user, tenant.current(true) IS NULL AS not_spoofed;
SHOW pg_tenant.tenant_id;
SELECT test.try($$SELECT count(*) FROM so_items$$);
\endif
-- (psql's \c keeps the last connection's options: drop them.)
\c :plain_postgres

-- ===== A role default =====
-- ALTER ROLE ... SET in a backend where the library is not loaded (this one: nothing of
-- pg_tenant ran in it yet) is stored as a placeholder; preloaded, it is refused at once.
SELECT test.try(format($$ALTER ROLE so_app SET pg_tenant.tenant_id = %L$$, :'globex'));
-- A default stored while the server did not preload the library (as above, before preloading
-- was turned on) is still there when it does: write it as that ALTER ROLE would have.
INSERT INTO pg_db_role_setting (setdatabase, setrole, setconfig)
SELECT 0, 'so_app'::regrole, ARRAY['pg_tenant.tenant_id=' || :'globex']
 WHERE NOT EXISTS (SELECT FROM pg_db_role_setting WHERE setdatabase = 0 AND setrole = 'so_app'::regrole);
SELECT setconfig = ARRAY['pg_tenant.tenant_id=' || :'globex'] AS role_default_is_globex
  FROM pg_db_role_setting WHERE setdatabase = 0 AND setrole = 'so_app'::regrole;
-- The login goes ahead in both modes (PostgreSQL applies role and database defaults with
-- WARNING-level errors, so a check hook cannot refuse the connection), and the value never
-- becomes the tenant: preloaded, it is discarded at login (the first statement no longer sees
-- it); otherwise when the library loads.
SELECT * FROM test.session_of(:'app_conninfo', :'globex');
\c - so_app
SELECT tenant.current(true) IS NULL AS role_default_discarded;
SHOW pg_tenant.tenant_id;
SELECT test.try($$SELECT count(*) FROM so_items$$);
\c - postgres
ALTER ROLE so_app RESET pg_tenant.tenant_id;
SELECT count(*) AS role_defaults_left FROM pg_db_role_setting WHERE setrole = 'so_app'::regrole;

-- ===== A placeholder SET before the library is loaded =====
-- Without preloading the SET is accepted as a placeholder and discarded when the library loads;
-- preloaded, it is refused.
\c - so_app
SET pg_tenant.tenant_id = :'globex';
SELECT tenant.current(true) IS NULL AS placeholder_discarded;
SHOW pg_tenant.tenant_id;
SELECT test.try($$SELECT count(*) FROM so_items$$);

-- ===== A token in the startup options =====
-- Verified when the library loads or, preloaded, at its first use. A good one acts as its
-- tenant; one signed with another key, naming another tenant, never does: discarded with a
-- WARNING (not preloaded) or refused at first use (preloaded), failing closed either way.
\c - postgres
SET client_min_messages = warning;
SELECT tenant.set_signing_key('HS256', 'so-secret-0123456789-0123456789-abc');
\set secret '''so-secret-0123456789-0123456789-abc'''
SELECT format('dbname=%s user=so_app options=''-c pg_tenant.token=%s''', current_database(),
              test.jwt(test.claims('so-acme', 12), :secret)) AS good_token_conninfo,
       format('dbname=%s user=so_app options=''-c pg_tenant.token=%s''', current_database(),
              test.jwt(test.claims('so-globex', 12), 'another-secret-0123456789-0123456789')) AS bad_token_conninfo \gset
\c :good_token_conninfo
SET client_min_messages = warning;
SELECT name FROM so_items;
\c :bad_token_conninfo
SELECT tenant.current(true) IS NULL AS no_tenant;
SELECT test.try($$SELECT string_agg(name, ', ') FROM so_items$$);
\c :plain_postgres

SET client_min_messages = warning;
SELECT tenant.set_signing_key('HS256', NULL);
DROP FUNCTION test.session_of(text, uuid);
SELECT tenant.unprotect('so_items');
DROP TABLE so_items;
SELECT tenant.drop('so-acme'), tenant.drop('so-globex');
DROP ROLE so_app;
RESET client_min_messages;
