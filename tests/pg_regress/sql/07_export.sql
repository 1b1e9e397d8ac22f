-- tenant.export() and tenant.import(): a lossless round trip of one tenant's data, and errors.
\set SHOW_CONTEXT never
CREATE SCHEMA crm;
CREATE TABLE crm.contacts (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL,
                           tags text[], meta jsonb, born date, upper_name text GENERATED ALWAYS AS (upper(name)) STORED,
                           tenant_id uuid, UNIQUE (tenant_id, id));
CREATE TABLE crm.notes (contact_id int, body text, at timestamptz, tenant_id uuid,
                        FOREIGN KEY (tenant_id, contact_id) REFERENCES crm.contacts (tenant_id, id));
SELECT tenant.protect('crm.contacts');
SELECT tenant.protect('crm.notes');
SELECT tenant.attach_quota('crm.contacts', 'contacts');
SELECT tenant.create('exp-src', plan => 'free') AS src \gset
SELECT tenant.set_limit('exp-src', 'contacts', 50);
SELECT tenant.set('exp-src') IS NOT NULL AS ok;
INSERT INTO crm.contacts (name, tags, meta, born) VALUES
    ('Ada', '{math,"first programmer"}', '{"lang": "en", "n": 1}', '1815-12-10'),
    ('Grace', NULL, '{"quote": "it''s easier to ask forgiveness"}', '1906-12-09'),
    ('Émilie "Q" O''Brien', '{}', NULL, NULL);
INSERT INTO crm.notes SELECT id, 'note for ' || name, '2026-01-02 03:04:05+00' FROM crm.contacts;
SELECT tenant.consume('api_calls', 3) AS remaining;
SELECT tenant.reset();

SELECT tenant.export('exp-src') AS doc \gset
SELECT jsonb_pretty(jsonb_build_object(
         'format', d->'format',
         'tenant', (d->'tenant') - 'id' - 'created_at' - 'updated_at',
         'plan', d->'plan'->'name',
         'limits', d->'limits',
         'usage', (SELECT jsonb_agg(u - 'period_start') FROM jsonb_array_elements(d->'usage') u),
         'tables', (SELECT jsonb_object_agg(k, (SELECT jsonb_agg(r ORDER BY r->>'name', r->>'body') FROM jsonb_array_elements(v) r))
                      FROM jsonb_each(d->'tables') t(k, v) WHERE k LIKE 'crm.%'))) AS export
  FROM (SELECT :'doc'::jsonb AS d) s;

-- The GDPR round trip: export, erase (tenant.drop), and load back into a new, empty tenant:
-- the same rows, keys and usage, under the new tenant's id.
SELECT tenant.drop('exp-src');
SELECT count(*) AS rows_left FROM crm.contacts WHERE tenant_id = :'src';
SELECT tenant.create('exp-dst', plan => 'free') AS dst \gset
SELECT jsonb_build_object('crm.contacts', r->'crm.contacts', 'crm.notes', r->'crm.notes') AS imported
  FROM tenant.import('exp-dst', :'doc', restore_quotas => true) r;
SELECT (tenant.export('exp-dst')->'tables') = (:'doc'::jsonb->'tables') AS tables_identical,
       (tenant.export('exp-dst')->'limits') = (:'doc'::jsonb->'limits') AS limits_identical,
       (tenant.export('exp-dst')->'usage') = (:'doc'::jsonb->'usage') AS usage_identical;
SELECT count(*) AS imported_rows_of_dst FROM crm.contacts WHERE tenant_id = :'dst';
-- The quota keeps counting from the imported usage; isolation holds for the imported rows.
SELECT tenant.set('exp-dst') IS NOT NULL AS ok;
INSERT INTO crm.contacts (name) VALUES ('New');
SELECT used, "limit" FROM tenant.check_quota('contacts');
SELECT tenant.reset();
-- Errors, each changing nothing.
SELECT test.try($$SELECT tenant.export('nope')$$);
SELECT test.try($$SELECT tenant.export(NULL)$$);
SELECT regexp_replace(test.try(format($$SELECT tenant.import('exp-dst', %L)$$, :'doc')), '\d+ row', 'N row') AS try;
SELECT test.try($$SELECT tenant.import('exp-dst', '{"tables": {}}')$$);
SELECT test.try($$SELECT tenant.import('exp-dst', NULL)$$);
SELECT test.try(format($$SELECT tenant.import('nope', %L)$$, :'doc'));
SELECT tenant.create('exp-dst2') AS dst2 \gset
SELECT test.try($$SELECT tenant.import('exp-dst2', '{"format": "pg_tenant-export-1", "tables": {"crm.nope": []}}')$$);
SELECT count(*) AS dst2_rows FROM crm.contacts WHERE tenant_id = :'dst2';
CREATE ROLE exp_app;
SET ROLE exp_app;
SELECT test.try($$SELECT tenant.export('exp-src')$$);
RESET ROLE;
DROP ROLE exp_app;
SELECT action, detail->>'slug' AS slug, detail->>'from' AS from_slug, detail->'rows'->'crm.contacts' AS contacts
  FROM tenant_data.audit_log WHERE action = 'import';
-- Numbers come back exactly: a numeric beyond a double's precision and range survives the
-- round trip (the rows pass to SQL as PostgreSQL holds them).
CREATE TABLE crm.amounts (amount numeric, tenant_id uuid);
SELECT tenant.protect('crm.amounts');
SELECT tenant.create('exp-num') AS num \gset
SELECT tenant.set('exp-num') IS NOT NULL AS ok;
INSERT INTO crm.amounts (amount) VALUES (12345678901234567890.123456789), (-0.000000000000000000000000001), (1e400);
SELECT tenant.reset();
SELECT tenant.create('exp-num2') AS num2 \gset
SELECT r->'crm.amounts' AS imported FROM tenant.import('exp-num2', tenant.export('exp-num')) r;
SELECT (SELECT array_agg(amount ORDER BY amount) FROM crm.amounts WHERE tenant_id = :'num2')
     = (SELECT array_agg(amount ORDER BY amount) FROM crm.amounts WHERE tenant_id = :'num') AS identical,
       (SELECT min(amount)::text || ' ' || (array_agg(amount::text ORDER BY amount))[2] FROM crm.amounts WHERE tenant_id = :'num2') AS smallest_two,
       (SELECT length(max(amount)::text) FROM crm.amounts WHERE tenant_id = :'num2') AS digits_of_1e400;
SELECT tenant.drop('exp-num'), tenant.drop('exp-num2');
SELECT tenant.unprotect('crm.amounts');
DROP TABLE crm.amounts;
