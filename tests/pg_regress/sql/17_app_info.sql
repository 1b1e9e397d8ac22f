-- What the application may know about its own tenancy: tenant.info() (the current tenant, its
-- plan, limits and usage) and tenant.my_tenants() (the tenants the current role may act as),
-- both executable by the application role; check_quota(resource, 0) peeks.
\set SHOW_CONTEXT never
SELECT tenant.create_plan('info-plan', '{"calls": {"limit": 5, "period": "day"}, "seats": {"limit": 3}, "exports": {"limit": 0}}');
SELECT tenant.create('info-a', 'Info A', 'info-plan') IS NOT NULL AS created;
SELECT tenant.create('info-b', 'Info B', 'info-plan') IS NOT NULL AS created;
SELECT tenant.create('info-c') IS NOT NULL AS created;
SELECT tenant.set_limit('info-a', 'storage', 100);
CREATE ROLE info_gateway;
CREATE ROLE info_tx;
CREATE ROLE info_one;
CREATE ROLE info_none;
SELECT tenant.grant_gateway('info_gateway');
SELECT tenant.grant_gateway('info_tx', transaction_only => true);
SELECT tenant.grant_access('info-b', 'info_one');
SELECT tenant.grant_access('info-c', 'info_one', transaction_only => true);

-- my_tenants: a gateway sees every tenant; a transaction_only one too, marked; a role with
-- access grants sees those tenants; a role with no grant sees none.
SET ROLE info_gateway;
SELECT slug, name, status, transaction_only FROM tenant.my_tenants() WHERE slug LIKE 'info-%';
SET ROLE info_tx;
SELECT slug, transaction_only FROM tenant.my_tenants() WHERE slug LIKE 'info-%';
SET ROLE info_one;
SELECT slug, transaction_only FROM tenant.my_tenants();
SET ROLE info_none;
SELECT count(*) AS none FROM tenant.my_tenants();
RESET ROLE;

-- info: no tenant set is PT001; then the current tenant with its plan's limits, its own limit,
-- and usage that follows consume(). The application role reads it (no table privilege needed).
SET ROLE info_gateway;
SELECT test.try($$SELECT * FROM tenant.info()$$);
SELECT tenant.set('info-a') IS NOT NULL AS ok;
SELECT slug, name, status, plan, limits FROM tenant.info();
SELECT tenant.consume('calls', 2) AS remaining;
SELECT usage->'calls'->'used' AS calls_used, usage->'calls'->'remaining' AS calls_remaining,
       usage->'calls'->>'period_end' IS NOT NULL AS calls_period_ends,
       usage->'seats'->>'period_end' IS NULL AS seats_never_end,
       usage->'exports'->'remaining' AS exports_remaining
  FROM tenant.info();
-- check_quota with amount 0 peeks: nothing consumed, allowed while not over the limit.
SELECT allowed, used, "limit", remaining FROM tenant.check_quota('calls', 0);
SELECT allowed, used, "limit", remaining FROM tenant.check_quota('exports', 0);
SELECT (tenant.info()).usage->'calls'->'used' AS still_two;
SELECT test.try($$SELECT * FROM tenant.check_quota('calls', -1)$$);
-- Another tenant's info is not reachable: info() takes no argument, and follows the context.
SELECT tenant.set('info-b') IS NOT NULL AS ok;
SELECT slug, limits, usage->'calls'->'used' AS calls_used FROM tenant.info();
SELECT tenant.reset();
RESET ROLE;

SELECT tenant.revoke_gateway('info_gateway'), tenant.revoke_gateway('info_tx');
SELECT tenant."drop"(s) FROM unnest(ARRAY['info-a', 'info-b', 'info-c']) s;
SELECT tenant.drop_plan('info-plan');
DROP ROLE info_gateway, info_tx, info_one, info_none;
