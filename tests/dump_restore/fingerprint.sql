-- One line per object kind: what must be identical after pg_dump | pg_restore.
SELECT 'tenants', md5(string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s', id, slug, name, status, plan, settings, suspended_reason, context_settings), ',' ORDER BY slug)) FROM tenant_data.tenants
UNION ALL SELECT 'plans', md5(string_agg(name || limits::text || context_settings::text, ',' ORDER BY name)) || ' n=' || count(*) FROM tenant_data.plans
UNION ALL SELECT 'gateways', string_agg(role::text, ',' ORDER BY role::text) FROM tenant_data.gateways g WHERE EXISTS (SELECT FROM pg_roles r WHERE r.oid = g.role)
UNION ALL SELECT 'tenant_access', md5(string_agg(tenant_id || role::text, ',' ORDER BY tenant_id, role::text)) FROM tenant_data.tenant_access a WHERE EXISTS (SELECT FROM pg_roles r WHERE r.oid = a.role)
UNION ALL SELECT 'limit_overrides', md5(string_agg(format('%s|%s|%s|%s', tenant_id, resource, "limit", period), ',' ORDER BY tenant_id, resource)) FROM tenant_data.limit_overrides
UNION ALL SELECT 'usage_counters', md5(string_agg(format('%s|%s|%s|%s', tenant_id, resource, period_start, used), ',' ORDER BY tenant_id, resource, period_start)) FROM tenant_data.usage_counters
UNION ALL SELECT 'audit_log', md5(string_agg(format('%s|%s|%s|%s|%s|%s', id, at, tenant_id, actor, action, detail), ',' ORDER BY id)) || ' n=' || count(*) FROM tenant_data.audit_log
UNION ALL SELECT 'protected_tables', string_agg(format('%s:%s:%s', table_name, tenant_column, rls_forced), ',' ORDER BY table_name::text) FROM tenant.protected_tables
UNION ALL SELECT 'quota_attachments', string_agg(format('%s:%s:%s', table_name, resource, mode), ',' ORDER BY table_name::text) FROM tenant.quota_attachments
UNION ALL SELECT 'policies', string_agg(format('%s.%s:%s', schemaname, tablename, policyname), ',' ORDER BY schemaname, tablename, policyname) FROM pg_policies WHERE schemaname IN ('app', 'tpl')
UNION ALL SELECT 'triggers', string_agg(format('%s:%s', tgrelid::regclass, tgname), ',' ORDER BY tgrelid::regclass::text, tgname) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid::regclass::text ~ '^(app|tpl|tenant_initech)\.'
UNION ALL SELECT 'quota_indexes', string_agg(format('%s:%s', i.indrelid::regclass, pg_get_indexdef(i.indexrelid)), ',' ORDER BY i.indrelid::regclass::text) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam WHERE a.amname = 'tenant_quota'
UNION ALL SELECT 'owners_and_row_security', string_agg(format('%s:%s:%s:%s', c.oid::regclass, c.relowner::regrole, c.relrowsecurity, c.relforcerowsecurity), ',' ORDER BY c.oid::regclass::text) FROM pg_class c WHERE c.relnamespace IN ('app'::regnamespace, 'tpl'::regnamespace, 'tenant_initech'::regnamespace) AND c.relkind IN ('r', 'p', 'S')
UNION ALL SELECT 'rows', string_agg(format('%s:%s:%s', t, tenant_id, n), ',' ORDER BY t, tenant_id) FROM (SELECT 'docs' t, tenant_id, count(*) n FROM app.docs GROUP BY 2 UNION ALL SELECT 'events', tenant_id, count(*) FROM app.events GROUP BY 2 UNION ALL SELECT 'files', tenant_id, sum(length(data)) FROM app.files GROUP BY 2) d
UNION ALL SELECT 'audit_next_id', (SELECT last_value::text FROM tenant_data.audit_log_id_seq)
UNION ALL SELECT 'schema_tenants', string_agg(format('%s:%s:%s:%s', slug, isolation, schema_name, template), ',' ORDER BY slug) FROM tenant_data.tenants WHERE isolation = 'schema'
UNION ALL SELECT 'schema_templates', string_agg(schema_name::text, ',' ORDER BY schema_name) FROM tenant_data.schema_templates
UNION ALL SELECT 'schema_migrations', string_agg(format('%s:%s', version, schema_name), ',' ORDER BY version, schema_name) FROM tenant_data.schema_migrations
UNION ALL SELECT 'tenant_schema_rows', (SELECT md5(string_agg(i::text, ',' ORDER BY id)) FROM tenant_initech.items i)
UNION ALL SELECT 'tenant_schema_guard', string_agg(format('%s:%s', tablename, policyname), ',' ORDER BY tablename, policyname) FROM pg_policies WHERE schemaname = 'tenant_initech'
UNION ALL SELECT 'tenant_schema_sequence', (SELECT last_value::text FROM tenant_initech.items_id_seq)
UNION ALL SELECT 'signing_keys', string_agg(algorithm || ':' || md5(key), ',') FROM tenant_data.signing_keys;
