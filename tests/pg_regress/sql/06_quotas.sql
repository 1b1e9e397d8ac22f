-- Plans and quotas: plans and their limits, overrides, consume/check_quota, period rollover,
-- quotas attached to tables (count, meter, bytes), the views, and every error.
\set SHOW_CONTEXT never
-- error_of() returns the SQLSTATE, message and the DETAIL parsed as JSON when it is JSON.
CREATE OR REPLACE FUNCTION test.error_of(statement text) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE st text; msg text; det text;
BEGIN
    EXECUTE statement;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL;
    RETURN jsonb_build_object('sqlstate', st, 'message', msg,
                              'detail', CASE WHEN det LIKE '{%' THEN det::jsonb ELSE to_jsonb(det) END);
END
$$;

-- ===== Plans =====
SELECT name, limits FROM tenant_data.plans WHERE name = 'default';
SELECT tenant.create_plan('free', '{"articles": {"limit": 10, "period": "month"}, "images": {"limit": 25}, "videos": {"limit": 0}}');
SELECT tenant.create_plan('paid', '{"articles": {"limit": 100, "period": "month"}, "videos": {"limit": 20}}');
SELECT tenant.create_plan('enterprise', '{"articles": {"limit": -1}}');
SELECT name, limits FROM tenant_data.plans WHERE name IN ('free', 'paid', 'enterprise') ORDER BY name;
-- Malformed limits are refused with the offending key named.
SELECT test.try($$SELECT tenant.create_plan('bad', '[]')$$);
SELECT test.try($$SELECT tenant.create_plan('bad', '{"articles": 10}')$$);
SELECT test.try($$SELECT tenant.create_plan('bad', '{"articles": {"period": "month"}}')$$);
SELECT test.try($$SELECT tenant.create_plan('bad', '{"articles": {"limit": -2}}')$$);
SELECT test.try($$SELECT tenant.create_plan('bad', '{"articles": {"limit": "ten"}}')$$);
SELECT test.try($$SELECT tenant.create_plan('bad', '{"articles": {"limit": 1.5}}')$$);
-- jsonb holds numbers serde_json cannot: a bad argument (22023), not an internal error.
SELECT test.try($$SELECT tenant.create_plan('bad', '{"articles": {"limit": 1e400}}')$$);
SELECT test.try($$SELECT tenant.alter_plan('free', '{"articles": {"limit": -1e400}}')$$);
SELECT test.try($$SELECT tenant.create_plan('bad', '{"articles": {"limit": 10, "period": "week"}}')$$);
SELECT test.try($$SELECT tenant.create_plan('bad', '{"articles": {"limit": 10, "per": "month"}}')$$);
SELECT test.try($$SELECT tenant.create_plan('bad', '{"": {"limit": 1}}')$$);
SELECT test.try($$SELECT tenant.create_plan('bad', NULL)$$);
SELECT test.try($$SELECT tenant.create_plan(NULL, '{}')$$);
SELECT test.try($$SELECT tenant.create_plan('', '{}')$$);
SELECT test.try($$SELECT tenant.create_plan('free', '{}')$$);
SELECT test.try($$SELECT tenant.alter_plan('nope', '{}')$$);
SELECT test.try($$SELECT tenant.alter_plan('free', '{"x": {}}')$$);
SELECT test.try($$SELECT tenant.drop_plan('nope')$$);
SELECT count(*) AS plans FROM tenant_data.plans;

-- ===== consume() and check_quota() =====
SELECT tenant.create('q-free', plan => 'free') AS free_id \gset
SELECT tenant.create('q-paid', plan => 'paid') AS paid_id \gset
SELECT test.try($$SELECT tenant.consume('articles')$$);
SELECT tenant.set('q-free') IS NOT NULL AS ok;
SELECT test.try($$SELECT tenant.consume('articles', 0)$$);
SELECT test.try($$SELECT tenant.consume('articles', -1)$$);
SELECT test.try($$SELECT tenant.consume(NULL)$$);
SELECT test.try($$SELECT tenant.consume('articles', NULL)$$);
SELECT tenant.consume('articles') AS remaining FROM generate_series(1, 10);
-- The 11th article: the quota error, with JSON DETAIL, and nothing changed.
SELECT e->>'sqlstate' AS sqlstate, e->>'message' AS message, (e->'detail') - 'period_end' AS detail,
       (e->'detail'->>'period_end')::timestamptz = (SELECT period_end FROM tenant.check_quota('articles')) AS period_end_ok
  FROM test.error_of($$SELECT tenant.consume('articles')$$) e;
SELECT allowed, used, "limit", remaining, plan, period_end > now() AS ends_later FROM tenant.check_quota('articles');
-- Not in the plan: its own SQLSTATE and message (shown as a client sees it).
SELECT tenant.consume('videos');
SELECT e->>'sqlstate' AS sqlstate, (e->'detail') - 'period_end' AS detail FROM test.error_of($$SELECT tenant.consume('videos')$$) e;
SELECT allowed, used, "limit", remaining, plan, period_end FROM tenant.check_quota('videos');
-- A resource no plan or limit names is unlimited and not metered: no counter row (security issue,
-- item 12: any name a caller sends would otherwise store one). Name it with limit -1 to meter it.
SELECT tenant.consume('api_calls', 5) AS remaining;
SELECT allowed, used, "limit", remaining, period_end FROM tenant.check_quota('api_calls', 1000000);
-- More than what is left is refused whole.
SELECT tenant.consume('images', 20) AS remaining;
SELECT (test.error_of($$SELECT tenant.consume('images', 6)$$)->'detail') - 'period_end' AS detail;
SELECT tenant.consume('images', 5) AS remaining;
SELECT tenant.consume('images');
-- Rolled back with the transaction, and with a savepoint.
SELECT tenant.set('q-paid') IS NOT NULL AS ok;
BEGIN;
SELECT tenant.consume('videos', 15) AS remaining;
ROLLBACK;
BEGIN;
SELECT tenant.consume('videos', 2) AS remaining;
SAVEPOINT s;
SELECT tenant.consume('videos', 10) AS remaining;
ROLLBACK TO s;
COMMIT;
SELECT used FROM tenant.check_quota('videos');
-- check_quota consumes nothing.
SELECT allowed, used, remaining FROM tenant.check_quota('videos', 18);
SELECT allowed, used, remaining FROM tenant.check_quota('videos', 19);
SELECT used FROM tenant.check_quota('videos');
-- Amount 0 peeks (usage and limit, allowed while not over); a negative amount is refused.
SELECT allowed, used, "limit", remaining FROM tenant.check_quota('videos', 0);
SELECT used FROM tenant.check_quota('videos', 0);
SELECT test.try($$SELECT * FROM tenant.check_quota('videos', -1)$$);

-- ===== Overrides and plan changes =====
SELECT tenant.set_limit('q-free', 'videos', 3);
SELECT tenant.set('q-free') IS NOT NULL AS ok;
SELECT tenant.consume('videos', 3) AS remaining;
SELECT (test.error_of($$SELECT tenant.consume('videos')$$))->>'message' AS message;
SELECT tenant.clear_limit('q-free', 'videos');
SELECT (test.error_of($$SELECT tenant.consume('videos')$$))->>'sqlstate' AS back_to_not_in_plan;
SELECT test.try($$SELECT tenant.set_limit('q-free', 'videos', -2)$$);
SELECT test.try($$SELECT tenant.set_limit('q-free', 'videos', 1, 'fortnight')$$);
SELECT test.try($$SELECT tenant.set_limit('nope', 'videos', 1)$$);
SELECT test.try($$SELECT tenant.set_limit('q-free', NULL, 1)$$);
SELECT test.try($$SELECT tenant.set_limit('q-free', 'videos', NULL)$$);
-- change_plan takes effect at once; usage already counted stays.
SELECT tenant.change_plan('q-free', 'paid');
SELECT used, "limit", remaining, plan FROM tenant.check_quota('articles');
SELECT tenant.consume('articles') AS remaining;
SELECT test.try($$SELECT tenant.change_plan('q-free', 'nope')$$);
SELECT test.try($$SELECT tenant.change_plan('nope', 'free')$$);
SELECT test.try($$SELECT tenant.drop_plan('paid')$$);
SELECT tenant.change_plan('q-free', 'free');
SELECT tenant.create_plan('unused', '{}');
SELECT tenant.drop_plan('unused');
SELECT action, detail->>'from' AS from_plan, detail->>'to' AS to_plan FROM tenant_data.audit_log WHERE action = 'change_plan' ORDER BY id;
-- Suspended tenants cannot consume.
SELECT tenant.suspend('q-paid');
SELECT tenant.set('q-paid') IS NOT NULL AS ok;
SELECT test.try($$SELECT tenant.consume('videos')$$);
SELECT allowed FROM tenant.check_quota('videos');
SELECT tenant.resume('q-paid');

-- ===== Periods =====
-- Month periods follow the billing anchor (clamped to short months), the others UTC boundaries.
SELECT p.period, b.period_start, b.period_end
  FROM (VALUES ('none'), ('minute'), ('hour'), ('day'), ('month')) p(period),
       tenant.period_bounds('2026-01-31 10:00+00', p.period, '2026-03-15 12:34:56+00') b;
SELECT b.* FROM tenant.period_bounds('2026-01-31 10:00+00', 'month', '2026-02-28 10:00+00') b;
SELECT b.* FROM tenant.period_bounds('2026-01-31 10:00+00', 'month', '2026-01-31 09:59+00') b;
-- Rollover by moving the anchor (no waiting): the old period's usage stays in the history.
SELECT tenant.create('q-roll', plan => 'free',
       settings => jsonb_build_object('billing_anchor', now() - interval '1 month' - interval '1 day')) AS roll_id \gset
SELECT tenant.set('q-roll') IS NOT NULL AS ok;
SELECT count(tenant.consume('articles')) AS consumed FROM generate_series(1, 10);
SELECT (test.error_of($$SELECT tenant.consume('articles')$$))->>'sqlstate' AS exhausted;
UPDATE tenant_data.tenants SET settings = jsonb_build_object('billing_anchor', now() - interval '2 hours') WHERE slug = 'q-roll';
SELECT tenant.consume('articles') AS remaining_in_new_period;
SELECT resource, used, is_current, period_end - period_start > interval '27 days' AS month_long
  FROM tenant.usage_history WHERE tenant = 'q-roll' ORDER BY period_start;

-- ===== Quotas attached to tables =====
CREATE SCHEMA media;
CREATE TABLE media.images (id int PRIMARY KEY, name text);
CREATE TABLE media.articles (id serial PRIMARY KEY, title text);
CREATE TABLE media.files (id int PRIMARY KEY, body text);
SELECT tenant.protect('media.images');
SELECT tenant.protect('media.articles');
SELECT tenant.protect('media.files');
SELECT tenant.create('q-media', plan => 'free') AS media_id \gset
SELECT tenant.set('q-media') IS NOT NULL AS ok;
INSERT INTO media.images VALUES (1, 'already there'), (2, 'also there');
-- count: usage starts from the rows already there.
SELECT tenant.attach_quota('media.images', 'images');
SELECT used, "limit" FROM tenant.check_quota('images');
-- A count quota's usage is rows: consume() is refused for it, and the 25 "images" q-free
-- consumed before the attachment are gone (the usage view below shows 0 for it).
SELECT test.try($$SELECT tenant.consume('images')$$);
INSERT INTO media.images SELECT g, 'img' FROM generate_series(3, 24) g;
SELECT used FROM tenant.check_quota('images');
-- A multi-row insert that would pass the limit fails whole: no row, no counter change.
SELECT (test.error_of($$INSERT INTO media.images VALUES (25, 'a'), (26, 'b')$$)) - 'detail' AS error;
SELECT count(*) AS rows, (SELECT used FROM tenant.check_quota('images')) AS used FROM media.images;
INSERT INTO media.images VALUES (25, 'the 25th');
SELECT test.try($$INSERT INTO media.images VALUES (26, 'one too many')$$);
-- Deleting gives units back; INSERT ... ON CONFLICT counts only inserted rows.
DELETE FROM media.images WHERE id > 20;
SELECT used FROM tenant.check_quota('images');
INSERT INTO media.images VALUES (1, 'dup'), (21, 'new') ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name;
SELECT used, (SELECT count(*) FROM media.images) AS rows FROM tenant.check_quota('images');
-- COPY (as this superuser: RLS refuses COPY FROM to roles it filters) is counted too.
COPY media.images (id, name) FROM STDIN;
30	copied
31	copied
\.
SELECT used, (SELECT count(*) FROM media.images) AS rows FROM tenant.check_quota('images');
-- One counter update per tenant for a bulk statement, not one per row.
BEGIN;
SELECT n_tup_ins + n_tup_upd AS writes_before FROM pg_stat_xact_user_tables WHERE relid = 'tenant_data.usage_counters'::regclass \gset
DELETE FROM media.images WHERE id >= 3;
-- (None when count quotas live in shared memory: pg_tenant preloaded, see 13_row_counter.)
SELECT n_tup_ins + n_tup_upd - :writes_before
       = CASE WHEN coalesce(current_setting('pg_tenant.shared_counters', true), '0') <> '0' THEN 0 ELSE 1 END
       AS one_counter_write
  FROM pg_stat_xact_user_tables WHERE relid = 'tenant_data.usage_counters'::regclass;
ROLLBACK;
-- TRUNCATE of a table with a count quota is refused, even for a superuser (it would leave the
-- counters wrong); DELETE is the way.
SELECT test.try($$TRUNCATE media.images$$);

-- meter: every insert uses a unit of the period, deletes give nothing back.
SELECT tenant.set('q-paid') IS NOT NULL AS ok;
SELECT tenant.attach_quota('media.articles', 'articles', 'meter');
SELECT used FROM tenant.check_quota('articles');
INSERT INTO media.articles (title) SELECT 'a' || g FROM generate_series(1, 99) g;
DELETE FROM media.articles;
SELECT used, remaining FROM tenant.check_quota('articles');
INSERT INTO media.articles (title) VALUES ('the 100th');
SELECT test.try($$INSERT INTO media.articles (title) VALUES ('101st')$$);

-- bytes: stored size; inserts add, deletes subtract, updates adjust.
SELECT tenant.set_limit('q-paid', 'storage', 2000);
SELECT tenant.attach_quota('media.files', 'storage', 'bytes');
INSERT INTO media.files VALUES (1, repeat('x', 500));
SELECT used BETWEEN 500 AND 600 AS about_500 FROM tenant.check_quota('storage');
UPDATE media.files SET body = repeat('x', 1500) WHERE id = 1;
SELECT used BETWEEN 1500 AND 1600 AS about_1500 FROM tenant.check_quota('storage');
SELECT (test.error_of($$INSERT INTO media.files VALUES (2, repeat('y', 600))$$))->>'sqlstate' AS too_big;
SELECT test.try($$UPDATE media.files SET body = repeat('x', 2500) WHERE id = 1$$);
DELETE FROM media.files;
SELECT used FROM tenant.check_quota('storage');

-- Attachments, errors, detaching.
SELECT table_name, resource, mode, tenant_column FROM tenant.quota_attachments ORDER BY 1::text, 2;
CREATE TABLE media.unprotected (id int);
SELECT test.try($$SELECT tenant.attach_quota('media.unprotected', 'x')$$);
SELECT test.try($$SELECT tenant.attach_quota('media.images', 'images', 'weight')$$);
SELECT test.try($$SELECT tenant.attach_quota('media.images', 'images', 'meter')$$);
SELECT test.try($$SELECT tenant.attach_quota('media.images', NULL)$$);
SELECT test.try($$SELECT tenant.attach_quota(NULL, 'x')$$);
SELECT test.try($$SELECT tenant.detach_quota('media.images', 'nope')$$);
SELECT tenant.attach_quota('media.images', 'images');   -- again, same mode: nothing changes
SELECT tenant.set('q-media') IS NOT NULL AS ok;
SELECT used FROM tenant.check_quota('images');
SELECT tenant.detach_quota('media.images', 'images');
SELECT used FROM tenant.check_quota('images');
INSERT INTO media.images SELECT g, 'free again' FROM generate_series(100, 140) g;
SELECT count(*) AS quota_triggers FROM pg_trigger WHERE tgrelid = 'media.images'::regclass AND tgname LIKE 'tenant_quota%';

-- ===== Views =====
SELECT tenant, resource, used, "limit", remaining, period_start IS NOT NULL AS has_period
  FROM tenant.usage WHERE tenant IN ('q-free', 'q-paid', 'q-media') ORDER BY 1, 2;
SELECT tenant, status, plan, protected_rows, max_quota_use_pct
  FROM tenant.overview WHERE tenant LIKE 'q-%' ORDER BY 1;

-- ===== What the application role cannot do =====
CREATE ROLE quota_app LOGIN;
SELECT tenant.grant_access('q-free', 'quota_app');
GRANT USAGE ON SCHEMA media TO quota_app;
GRANT SELECT, INSERT, DELETE ON media.images TO quota_app;
\c - quota_app
SELECT tenant.set('q-free') IS NOT NULL AS ok;
SELECT tenant.consume('api_calls') AS remaining;
SELECT test.try($$UPDATE tenant_data.usage_counters SET used = 0$$);
SELECT test.try($$DELETE FROM tenant_data.usage_counters$$);
SELECT test.try($$INSERT INTO tenant_data.limit_overrides VALUES (tenant.current(), 'images', -1)$$);
SELECT test.try($$UPDATE tenant_data.plans SET limits = '{}'$$);
SELECT test.try($$SELECT tenant.set_limit('q-free', 'images', -1)$$);
SELECT test.try($$SELECT tenant.alter_plan('free', '{}')$$);
SELECT test.try($$SELECT tenant.change_plan('q-free', 'enterprise')$$);
SELECT test.try($$SELECT tenant.detach_quota('media.images', 'images')$$);
SELECT test.try($$ALTER TABLE media.images DISABLE TRIGGER ALL$$);
SELECT test.try($$SET session_replication_role = replica$$);
SELECT test.try($$SELECT * FROM tenant.usage$$);
\c - postgres
