-- tenant.drop(): every row of the tenant in every protected table goes, in an order foreign keys
-- accept, in one transaction; other tenants are untouched; the audit trail stays; a new tenant
-- with the same slug sees none of the old data.
\set SHOW_CONTEXT never
CREATE SCHEMA shop;
-- Foreign keys between protected tables pair the tenant columns (protect() refuses them
-- otherwise, below); protect() makes each tenant_id NOT NULL DEFAULT tenant.current().
CREATE TABLE shop.customers (id int PRIMARY KEY, name text, tenant_id uuid, UNIQUE (tenant_id, id));
CREATE TABLE shop.orders (id int PRIMARY KEY, customer_id int NOT NULL, tenant_id uuid, UNIQUE (tenant_id, id),
                          FOREIGN KEY (tenant_id, customer_id) REFERENCES shop.customers (tenant_id, id));
CREATE TABLE shop.order_lines (order_id int NOT NULL, sku text, tenant_id uuid,
                               FOREIGN KEY (tenant_id, order_id) REFERENCES shop.orders (tenant_id, id));
CREATE TABLE shop.payments (id int, paid_on date NOT NULL, order_id int, tenant_id uuid,
                            FOREIGN KEY (tenant_id, order_id) REFERENCES shop.orders (tenant_id, id))
    PARTITION BY RANGE (paid_on);
CREATE TABLE shop.payments_2026 PARTITION OF shop.payments FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
-- Protected in an order unrelated to the foreign keys.
SELECT tenant.protect('shop.order_lines');
SELECT tenant.protect('shop.customers');
SELECT tenant.protect('shop.payments');
SELECT tenant.protect('shop.orders');

-- A foreign key to a protected table without the tenant columns: protect() refuses it (42830;
-- referential checks and cascades bypass row security) and changes nothing.
CREATE TABLE shop.returns (order_id int REFERENCES shop.orders (id), reason text);
SELECT test.try($$SELECT tenant.protect('shop.returns')$$);
SELECT (SELECT count(*) FROM tenant.protected_tables WHERE table_name = 'shop.returns'::regclass) AS protected,
       (SELECT count(*) FROM pg_attribute WHERE attrelid = 'shop.returns'::regclass AND attname = 'tenant_id') AS tenant_columns,
       (SELECT count(*) FROM pg_policy WHERE polrelid = 'shop.returns'::regclass) AS policies,
       (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'shop.returns'::regclass AND NOT tgisinternal) AS triggers,
       (SELECT relrowsecurity OR relforcerowsecurity FROM pg_class WHERE oid = 'shop.returns'::regclass) AS row_security;
DROP TABLE shop.returns;

SELECT tenant.create('drop-me') AS doomed \gset
SELECT tenant.create('keep-me') AS kept \gset
SELECT tenant.set('drop-me') IS NOT NULL AS ok;
INSERT INTO shop.customers VALUES (1, 'c1'), (2, 'c2');
INSERT INTO shop.orders VALUES (10, 1), (11, 2);
INSERT INTO shop.order_lines VALUES (10, 'a'), (10, 'b'), (11, 'c');
INSERT INTO shop.payments VALUES (100, '2026-03-01', 10);
SELECT tenant.set('keep-me') IS NOT NULL AS ok;
INSERT INTO shop.customers VALUES (3, 'k1');
INSERT INTO shop.orders VALUES (12, 3);
INSERT INTO shop.order_lines VALUES (12, 'k');
INSERT INTO shop.payments VALUES (101, '2026-04-01', 12);
SELECT tenant.reset();

-- A drop that fails half way changes nothing: a foreign key from an unprotected table blocks it.
CREATE TABLE shop.notes (order_id int REFERENCES shop.orders (id));
INSERT INTO shop.notes VALUES (10);
SELECT test.try($$SELECT tenant.drop('drop-me')$$);
SELECT (SELECT count(*) FROM shop.order_lines) AS lines, (SELECT count(*) FROM tenant_data.tenants WHERE slug = 'drop-me') AS registered;
DROP TABLE shop.notes;

-- Suspended tenants can be dropped too; its access grants and own limits go with it.
CREATE ROLE drop_role;
SELECT tenant.grant_access('drop-me', 'drop_role'), tenant.set_limit('drop-me', 'things', 3);
SELECT tenant.suspend('drop-me');
SELECT tenant.drop('drop-me');
SELECT (SELECT count(*) FROM tenant_data.tenant_access WHERE tenant_id = :'doomed') AS grants_left,
       (SELECT count(*) FROM tenant_data.limit_overrides WHERE tenant_id = :'doomed') AS limits_left,
       (SELECT count(*) FROM tenant_data.tenant_access t JOIN pg_roles r ON r.oid = t.role WHERE r.rolname = 'drop_role') AS role_grants_left;
DROP ROLE drop_role;
SELECT 'customers' AS tbl, tenant_id = :'kept' AS kept_only, count(*) FROM shop.customers GROUP BY 2
UNION ALL SELECT 'orders', tenant_id = :'kept', count(*) FROM shop.orders GROUP BY 2
UNION ALL SELECT 'order_lines', tenant_id = :'kept', count(*) FROM shop.order_lines GROUP BY 2
UNION ALL SELECT 'payments', tenant_id = :'kept', count(*) FROM shop.payments GROUP BY 2
ORDER BY 1;
SELECT action, CASE WHEN action = 'drop'
                    THEN (SELECT jsonb_object_agg(k, v) FROM jsonb_each(detail->'deleted_rows') e(k, v) WHERE k LIKE 'shop.%')
                    ELSE detail END AS detail
  FROM tenant_data.audit_log WHERE tenant_id = :'doomed' ORDER BY id;

-- A session still set to the dropped tenant can no longer write, and reads nothing.
SELECT tenant.create('drop-me-too') AS doomed2 \gset
SELECT tenant.set('drop-me-too') IS NOT NULL AS ok;
INSERT INTO shop.customers VALUES (5, 'x');
SELECT tenant.drop('drop-me-too');
SELECT count(*) AS visible FROM shop.customers WHERE tenant_id = tenant.current();
SELECT regexp_replace(test.try($$INSERT INTO shop.customers VALUES (6, 'ghost')$$), '[0-9a-f-]{36}', '<id>') AS try;
SELECT tenant.reset();

-- Re-created with the same slug: a new id, and none of the old rows (this is a superuser, which
-- row-level security does not filter, hence the explicit condition).
SELECT tenant.create('drop-me') <> :'doomed' AS new_id;
SELECT tenant.set('drop-me') IS NOT NULL AS ok;
SELECT (SELECT count(*) FROM shop.customers WHERE tenant_id = tenant.current())
     + (SELECT count(*) FROM shop.orders WHERE tenant_id = tenant.current())
     + (SELECT count(*) FROM shop.order_lines WHERE tenant_id = tenant.current())
     + (SELECT count(*) FROM shop.payments WHERE tenant_id = tenant.current()) AS rows_seen;
SELECT tenant.reset();
