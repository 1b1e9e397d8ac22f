-- Signed tenant tokens: tenant.set_signing_key, tenant.set_token, the pg_tenant.token parameter,
-- and every way a token is refused, tried from an unprivileged role over a real connection.
-- Tokens are made here with pgcrypto's HMAC (EdDSA is covered by a #[pg_test] in tokens.rs).
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE OR REPLACE FUNCTION test.b64url(b bytea) RETURNS text LANGUAGE sql IMMUTABLE
AS $$ SELECT translate(rtrim(encode(b, 'base64'), '='), E'+/\n', '-_') $$;
-- test.jwt(claims, secret[, header]): an HS256 JWT (or whatever the header says, HMAC-signed).
CREATE OR REPLACE FUNCTION test.jwt(claims jsonb, secret text, header jsonb DEFAULT '{"alg": "HS256", "typ": "JWT"}')
RETURNS text LANGUAGE sql AS $$
    SELECT s || '.' || test.b64url(hmac(s, secret, 'sha256'))
      FROM (SELECT test.b64url(convert_to(header::text, 'utf8')) || '.' || test.b64url(convert_to(claims::text, 'utf8')) AS s) x
$$;
-- Claims valid now for a minute, issued at now + age seconds.
CREATE OR REPLACE FUNCTION test.claims(tenant text, age int DEFAULT 0, extra jsonb DEFAULT '{}')
RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('tenant', tenant, 'exp', extract(epoch FROM now())::int + 60,
                              'iat', extract(epoch FROM now())::int + age) || extra
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA test TO PUBLIC;
CREATE ROLE tok_app LOGIN;
SELECT tenant.create('tok-acme') IS NOT NULL AS created, tenant.create('tok-globex') IS NOT NULL AS created;
CREATE TABLE tok_notes (body text);
SELECT tenant.protect('tok_notes');
GRANT SELECT, INSERT ON tok_notes TO tok_app;

-- Keys: superusers only, checked, never readable by others.
SELECT test.try($$SELECT tenant.set_signing_key('HS256', 'too short')$$);
SELECT test.try($$SELECT tenant.set_signing_key('RS256', repeat('k', 40))$$);
SELECT test.try($$SELECT tenant.set_signing_key('EdDSA', 'not a pem')$$);
SELECT test.try($$SELECT tenant.set_signing_key(NULL, repeat('k', 40))$$);
SELECT tenant.set_signing_key('HS256', 'tok-secret-0123456789-0123456789-abc');
SELECT tenant.set_signing_key('ES256', NULL);
SELECT algorithm FROM tenant_data.signing_keys;
SELECT action, detail FROM tenant_data.audit_log WHERE action = 'set_signing_key' ORDER BY id;

\c - tok_app
SET client_min_messages = warning;
\set secret '''tok-secret-0123456789-0123456789-abc'''
SELECT test.try($$SELECT tenant.set_signing_key('HS256', repeat('x', 40))$$);
SELECT test.try($$SELECT * FROM tenant_data.signing_keys$$);
-- The token is the credential: a role with no gateway or access grant acts as the tenant it names.
SELECT test.try($$SELECT tenant.set('tok-acme')$$);
-- (That loaded the library:) the claim settings are a superuser's.
SELECT test.try($$SET pg_tenant.jwt_audience = 'anything'$$);
SELECT test.try($$SET pg_tenant.jwt_claim = 'sub'$$);
SELECT tenant.set_token(test.jwt(test.claims('tok-acme'), :secret)) = (SELECT tenant.current()) AS acting_as_acme;
INSERT INTO tok_notes VALUES ('acme note');
SELECT body FROM tok_notes;
-- Refused, each with its own SQLSTATE, and the tenant stays acme.
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-globex', 1), 'another-secret-0123456789-0123456789')));
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-globex', 1), '', '{"alg": "none"}')));
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-globex', 1), :secret, '{"alg": "RS256"}')));
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-globex', 1), :secret, '{"alg": "ES256"}')));
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-globex', 1, '{"exp": 1000}'), :secret)));
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-globex', 1, jsonb_build_object('nbf', extract(epoch FROM now())::int + 3600)), :secret)));
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-globex', 1) - 'exp', :secret)));
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-globex', 1) - 'tenant', :secret)));
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('no-such-tenant', 1), :secret)));
SELECT test.try($$SELECT tenant.set_token('not.a.jwt')$$);
SELECT test.try($$SELECT tenant.set_token('')$$);
SELECT test.try($$SELECT tenant.set_token(NULL)$$);
-- A forged payload under a genuine signature.
SELECT test.try(format('SELECT tenant.set_token(%L)',
    (SELECT split_part(t, '.', 1) || '.' || test.b64url(convert_to(test.claims('tok-globex', 1)::text, 'utf8')) || '.' || split_part(t, '.', 3)
       FROM test.jwt(test.claims('tok-acme', 1), :secret) t)));
SELECT body AS still_acme FROM tok_notes;
-- Replay: a token issued before the newest one this session used.
SELECT tenant.set_token(test.jwt(test.claims('tok-globex', 5), :secret)) IS NOT NULL AS newer_token;
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-acme', 2), :secret)));
SELECT tenant.set_token(test.jwt(test.claims('tok-globex', 6, '{"jti": "j-1"}'), :secret)) IS NOT NULL AS with_jti;
SELECT tenant.set_token(test.jwt(test.claims('tok-globex', 7, '{"jti": "j-2"}'), :secret)) IS NOT NULL AS next_jti;
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-globex', 7, '{"jti": "j-1"}'), :secret)));
SELECT body FROM tok_notes;
-- set_token(local => true) lasts until the end of the transaction. It is the pooled form
-- (transaction poolers interleave many clients' tokens on one server session), so it is not
-- judged against the session's newest token: this one is older, and accepted.
BEGIN;
SELECT tenant.set_token(test.jwt(test.claims('tok-acme', 3), :secret), local => true) IS NOT NULL AS local_token;
SELECT body FROM tok_notes;
COMMIT;
SELECT body FROM tok_notes;

-- The parameter: verified when set, honoured by tenant.current(), undone by RESET.
SELECT test.try(format('SET pg_tenant.token = %L', test.jwt(test.claims('tok-acme', 9), 'another-secret-0123456789-0123456789')));
-- The parameter is the form poolers and Citus forward: no replay judgement either (exp bounds it).
SELECT test.try(format('SET pg_tenant.token = %L', test.jwt(test.claims('tok-acme', 1), :secret)));
SELECT set_config('pg_tenant.token', test.jwt(test.claims('tok-acme', 9), :secret), false) IS NOT NULL AS parameter_set;
SELECT body FROM tok_notes;
SELECT test.try($$SELECT tenant.set('tok-globex')$$);
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-globex', 10), :secret)));
RESET pg_tenant.token;
SELECT body FROM tok_notes;
BEGIN;
SELECT set_config('pg_tenant.token', test.jwt(test.claims('tok-acme', 11), :secret), true) IS NOT NULL AS local_parameter;
SELECT body FROM tok_notes;
COMMIT;
SELECT body FROM tok_notes;

-- A token in the connection's startup options: 16_startup_options.sql (what it gets depends on
-- whether the library is preloaded).

-- Lock: afterwards only a newer token changes the tenant, not tenant.set by a gateway role.
\c - postgres
SET client_min_messages = warning;
SELECT tenant.grant_gateway('tok_app');
\c - tok_app
SET client_min_messages = warning;
\set secret '''tok-secret-0123456789-0123456789-abc'''
SELECT tenant.set_token(test.jwt(test.claims('tok-acme'), :secret), lock => true) IS NOT NULL AS locked;
SELECT test.try($$SELECT tenant.set('tok-globex')$$);
SELECT test.try($$SELECT tenant.set_local('tok-globex')$$);
SELECT test.try($$SELECT tenant.reset()$$);
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-globex') - 'iat', :secret)));
SELECT body FROM tok_notes;
SELECT tenant.set_token(test.jwt(test.claims('tok-globex', 1), :secret)) IS NOT NULL AS newer_token_changes_it;
SELECT body FROM tok_notes;
-- DISCARD ALL (a pooler's reset) clears the tenant and the lock with it.
SELECT tenant.set_token(test.jwt(test.claims('tok-acme', 2), :secret), lock => true) IS NOT NULL AS locked_again;
DISCARD ALL;
SET client_min_messages = warning;
SELECT tenant.current(true) IS NULL AS no_tenant;
SELECT tenant.set('tok-globex') IS NOT NULL AS gateway_sets_again;

\c - postgres
SET client_min_messages = warning;
-- aud, iss and the tenant claim's name, when configured: superuser settings.
SET pg_tenant.jwt_audience = 'orders-api';
SET pg_tenant.jwt_issuer = 'https://auth.example';
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-acme', 20, '{"iss": "https://auth.example"}'), :secret)));
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-acme', 20, '{"aud": "orders-api"}'), :secret)));
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-acme', 21, '{"aud": "other-api", "iss": "https://auth.example"}'), :secret)));
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-acme', 22, '{"aud": "orders-api", "iss": "https://evil.example"}'), :secret)));
SELECT tenant.set_token(test.jwt(test.claims('tok-acme', 23, '{"aud": "orders-api", "iss": "https://auth.example"}'), :secret)) IS NOT NULL AS audience_and_issuer_match;
SELECT tenant.set_token(test.jwt(test.claims('tok-acme', 24, '{"aud": ["billing", "orders-api"], "iss": "https://auth.example"}'), :secret)) IS NOT NULL AS one_of_the_audiences;
RESET pg_tenant.jwt_audience;
RESET pg_tenant.jwt_issuer;
SET pg_tenant.jwt_claim = 'org';
SELECT test.try(format('SELECT tenant.set_token(%L)', test.jwt(test.claims('tok-globex', 25), :secret)));
SELECT tenant.set_token(test.jwt(test.claims('ignored', 26, '{"org": "tok-globex"}'), :secret)) = (SELECT id FROM tenant_data.tenants WHERE slug = 'tok-globex') AS claim_renamed;
RESET pg_tenant.jwt_claim;
SELECT tenant.reset();
SELECT tenant.revoke_gateway('tok_app');
SELECT tenant.unprotect('tok_notes');
DROP TABLE tok_notes;
SELECT tenant.set_signing_key('HS256', NULL);
SELECT count(*) AS keys_left FROM tenant_data.signing_keys;
SELECT tenant.drop('tok-acme'), tenant.drop('tok-globex');
DROP OWNED BY tok_app;
DROP ROLE tok_app;
RESET client_min_messages;
