\set ON_ERROR_STOP on
CREATE EXTENSION pg_tenant;
CREATE ROLE pool_app LOGIN;
SELECT tenant.grant_gateway('pool_app');
-- Metered without a limit: a resource no plan names is not metered.
SELECT tenant.alter_plan('default', '{"calls": {"limit": -1}}');
SELECT count(tenant.create('t' || g)) FROM generate_series(1, 20) g;
CREATE TABLE items (id bigserial PRIMARY KEY, val int NOT NULL);
SELECT tenant.protect('items');
GRANT SELECT, INSERT ON items TO pool_app;
GRANT USAGE ON SEQUENCE items_id_seq TO pool_app;
-- Signed tokens through the pooler: a role with no gateway or access grant, whose tenant comes
-- only from the token it sends with SET LOCAL.
CREATE EXTENSION pgcrypto;
SELECT tenant.set_signing_key('HS256', 'pooler-secret-0123456789-0123456789');
CREATE ROLE pool_token LOGIN;
GRANT SELECT, INSERT ON items TO pool_token;
GRANT USAGE ON SEQUENCE items_id_seq TO pool_token;
CREATE FUNCTION pool_jwt(tenant text) RETURNS text LANGUAGE sql AS $$
    SELECT s || '.' || translate(rtrim(encode(hmac(s, 'pooler-secret-0123456789-0123456789', 'sha256'), 'base64'), '='), E'+/\n', '-_')
      FROM (SELECT translate(rtrim(encode(convert_to('{"alg":"HS256","typ":"JWT"}', 'utf8'), 'base64'), '='), E'+/\n', '-_') || '.' ||
                   translate(rtrim(encode(convert_to(jsonb_build_object('tenant', tenant, 'iat', extract(epoch FROM now())::int,
                                                                        'exp', extract(epoch FROM now())::int + 600)::text, 'utf8'), 'base64'), '='), E'+/\n', '-_') AS s) x
$$;
