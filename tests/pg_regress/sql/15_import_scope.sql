-- tenant.import() writes only where tenant.export() reads, and restores quotas only when asked
-- (security issue, item 14). The document comes from outside (a tenant hands in its export);
-- whatever it names, the import never writes into another tenant's schema, a table that is not
-- protected or a partition of one, and never takes a negative usage or an invalid limit. A
-- refused import changes nothing.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
CREATE SCHEMA imp;
CREATE TABLE imp.notes (id int PRIMARY KEY, body text);
SELECT tenant.protect('imp.notes');
CREATE TABLE imp.events (at int, body text) PARTITION BY RANGE (at);
CREATE TABLE imp.events_1 PARTITION OF imp.events FOR VALUES FROM (0) TO (100);
SELECT tenant.protect('imp.events');
CREATE TABLE imp.unprotected (id int, body text);
-- The template's table is protected too, so every tenant schema's copy of it is a protected table.
CREATE SCHEMA imp_tpl;
CREATE TABLE imp_tpl.items (id int PRIMARY KEY, body text);
SELECT tenant.protect('imp_tpl.items');
SELECT tenant.create_plan('imp_plan', '{"calls": {"limit": 100, "period": "month"}}');
SELECT tenant.create('imp-acme', plan => 'imp_plan', isolation => 'schema', template => 'imp_tpl') IS NOT NULL AS created;
SELECT tenant.create('imp-globex', plan => 'imp_plan', isolation => 'schema', template => 'imp_tpl') IS NOT NULL AS created;
SELECT tenant.create('imp-mallory', plan => 'imp_plan') IS NOT NULL AS created;
SELECT tenant.set('imp-mallory') IS NOT NULL AS set;
INSERT INTO imp.notes VALUES (1, 'mallory note');
SELECT tenant.consume('calls', 5) AS remaining;
SELECT tenant.set('imp-acme') IS NOT NULL AS set;
INSERT INTO tenant_imp_acme.items VALUES (1, 'acme item');
SELECT tenant.reset();
-- mallory's export, its note renumbered so that it can be loaded beside the original.
SELECT jsonb_set(tenant.export('imp-mallory'), '{tables,imp.notes}', '[{"id": 2, "body": "imported note"}]') AS mallory \gset
SELECT tenant.export('imp-acme') AS acme \gset
-- What export writes: shared protected tables by their root (the template's too; tables other
-- tests left are there as well), and a schema tenant's own tables in its "schema" part.
SELECT k AS exported_shared_table FROM jsonb_object_keys(:'mallory'::jsonb->'tables') k WHERE k LIKE 'imp%' ORDER BY 1;
SELECT jsonb_object_keys(:'acme'::jsonb->'schema'->'tables') AS exported_own_table;

-- The state that no refused import may change.
CREATE FUNCTION pg_temp.state() RETURNS text LANGUAGE sql AS $$
    SELECT concat_ws(' / ',
        'globex items ' || (SELECT count(*) FROM tenant_imp_globex.items),
        'notes ' || (SELECT count(*) FROM imp.notes),
        'events ' || (SELECT count(*) FROM imp.events),
        'unprotected ' || (SELECT count(*) FROM imp.unprotected),
        'limits ' || (SELECT count(*) FROM tenant_data.limit_overrides o JOIN tenant_data.tenants t ON t.id = o.tenant_id WHERE t.slug LIKE 'imp-%'),
        'usage ' || (SELECT coalesce(sum(used), 0) FROM tenant_data.usage_counters u JOIN tenant_data.tenants t ON t.id = u.tenant_id WHERE t.slug LIKE 'imp-%'),
        'imports ' || (SELECT count(*) FROM tenant_data.audit_log WHERE action = 'import'))
$$;
SELECT pg_temp.state() AS before \gset
SELECT :'before' AS state;
SELECT tenant.create('imp-new') IS NOT NULL AS created;
SELECT tenant.create('imp-initech', isolation => 'schema', template => 'imp_tpl') IS NOT NULL AS created;

-- A document naming another tenant's schema table among the shared tables: refused (42501),
-- whether the importer is a shared tenant or a schema tenant (even one made from the same template).
SELECT test.try(format($$SELECT tenant.import('imp-new', %L)$$,
    jsonb_set(:'mallory'::jsonb, '{tables,tenant_imp_globex.items}', '[{"id": 99, "body": "planted"}]')));
SELECT test.try(format($$SELECT tenant.import('imp-initech', %L)$$,
    jsonb_set(:'acme'::jsonb, '{tables,tenant_imp_globex.items}', '[{"id": 99, "body": "planted"}]')));
-- ... also spelled another way.
SELECT test.try(format($$SELECT tenant.import('imp-new', %L)$$,
    jsonb_set(:'mallory'::jsonb, '{tables,"\"tenant_imp_globex\".\"items\""}', '[{"id": 99}]')));
-- A partition of a protected table (export reads it through its root), and a table that is not
-- protected: refused (42809).
SELECT test.try(format($$SELECT tenant.import('imp-new', %L)$$,
    jsonb_set(:'mallory'::jsonb, '{tables,imp.events_1}', '[{"at": 1, "body": "x"}]')));
SELECT test.try(format($$SELECT tenant.import('imp-new', %L)$$,
    jsonb_set(:'mallory'::jsonb, '{tables,imp.unprotected}', '[{"id": 1, "body": "x"}]')));
-- Rows that are not one array per table (22023).
SELECT test.try(format($$SELECT tenant.import('imp-new', %L)$$,
    jsonb_set(:'mallory'::jsonb, '{tables,imp.notes}', '{"id": 1}')));
SELECT test.try(format($$SELECT tenant.import('imp-new', %L)$$,
    jsonb_set(:'mallory'::jsonb, '{tables,"\"imp\".\"notes\""}', '[]')));

-- Limits and usage: restored only with restore_quotas => true, each checked (22023): usage not
-- negative, limits as tenant.set_limit checks them (-1 is unlimited, below that is refused).
SELECT test.try(format($$SELECT tenant.import('imp-new', %L, restore_quotas => true)$$,
    jsonb_set(:'mallory'::jsonb, '{usage}', '[{"resource": "calls", "period_start": "-infinity", "used": -1000000000}]')));
SELECT test.try(format($$SELECT tenant.import('imp-new', %L, restore_quotas => true)$$,
    jsonb_set(:'mallory'::jsonb, '{limits}', '[{"resource": "calls", "limit": -5, "period": null}]')));
SELECT test.try(format($$SELECT tenant.import('imp-new', %L, restore_quotas => true)$$,
    jsonb_set(:'mallory'::jsonb, '{limits}', '[{"resource": "calls", "limit": 10, "period": "fortnight"}]')));
SELECT test.try(format($$SELECT tenant.import('imp-new', %L, restore_quotas => true)$$,
    jsonb_set(:'mallory'::jsonb, '{limits}', '[{"resource": "", "limit": 10}]')));
SELECT test.try(format($$SELECT tenant.import('imp-new', %L, restore_quotas => true)$$,
    jsonb_set(:'mallory'::jsonb, '{usage}', '[{"resource": "calls", "used": 3}]')));
SELECT test.try($$SELECT tenant.import('imp-new', '{"format": "pg_tenant-export-1", "tables": {}}', NULL)$$);
-- With restore_quotas the tenant's plan comes too, and must exist here (PT005).
SELECT test.try(format($$SELECT tenant.import('imp-new', %L, restore_quotas => true)$$,
    jsonb_set(:'mallory'::jsonb, '{plan}', '{"name": "no-such-plan", "limits": {}}')));
-- Nothing changed.
SELECT pg_temp.state() = :'before' AS nothing_changed;

-- A schema tenant's own tables come from the document's "schema" part, always into its own schema.
SELECT key AS imported_table, value AS imported_rows
  FROM jsonb_each(tenant.import('imp-initech', jsonb_set(:'acme'::jsonb, '{schema,tables,items}', '[{"id": 7, "body": "own"}]')))
 WHERE key LIKE 'tenant_imp_%' ORDER BY 1;
SELECT (SELECT count(*) FROM tenant_imp_initech.items) AS initech_items, (SELECT count(*) FROM tenant_imp_globex.items) AS globex_items;

-- Without restore_quotas the document's limits and usage are not taken (an unlimited limit and a
-- negative usage in it change nothing); the rows are loaded.
SELECT tenant.import('imp-new', jsonb_set(jsonb_set(:'mallory'::jsonb,
           '{limits}', '[{"resource": "calls", "limit": -1, "period": null}]'),
           '{usage}', '[{"resource": "calls", "period_start": "-infinity", "used": -1000000000}]'))->'imp.notes' AS imported_notes;
SELECT count(*) AS new_limits FROM tenant_data.limit_overrides o JOIN tenant_data.tenants t ON t.id = o.tenant_id WHERE t.slug = 'imp-new';
SELECT count(*) AS new_calls_usage FROM tenant_data.usage_counters u JOIN tenant_data.tenants t ON t.id = u.tenant_id
 WHERE t.slug = 'imp-new' AND u.resource = 'calls';
SELECT count(*) AS negative_usage_rows FROM tenant_data.usage_counters WHERE used < 0;
SELECT body FROM imp.notes n JOIN tenant_data.tenants t ON t.id = n.tenant_id WHERE t.slug = 'imp-new';
-- With restore_quotas, valid limits and usage are restored (-1: unlimited, as set_limit allows).
SELECT tenant.create('imp-restored') IS NOT NULL AS created;
SELECT tenant.import('imp-restored', jsonb_set(jsonb_set(:'mallory'::jsonb, '{tables,imp.notes}', '[]'),
           '{limits}', '[{"resource": "calls", "limit": -1, "period": null}]'), restore_quotas => true)->'imp.notes' AS imported_notes;
SELECT o.resource, o."limit", o.period, u.used
  FROM tenant_data.tenants t JOIN tenant_data.limit_overrides o ON o.tenant_id = t.id
  JOIN tenant_data.usage_counters u ON u.tenant_id = t.id AND u.resource = o.resource
 WHERE t.slug = 'imp-restored';
SELECT action, detail->>'slug' AS slug, detail->'restore_quotas' AS restore_quotas FROM tenant_data.audit_log
 WHERE action IN ('import', 'set_limit') AND detail->>'slug' IN ('imp-new', 'imp-initech', 'imp-restored') ORDER BY id;

SELECT count(tenant.drop(slug)) AS dropped FROM tenant_data.tenants WHERE slug LIKE 'imp-%';
SELECT tenant.unprotect('imp.notes'), tenant.unprotect('imp.events'), tenant.unprotect('imp_tpl.items');
DROP SCHEMA imp, imp_tpl CASCADE;
SELECT tenant.drop_plan('imp_plan');
RESET client_min_messages;
