-- A count quota's row counter (src/row_counter.rs): an index access method that stores nothing
-- and cannot be scanned; PostgreSQL hands it every row written to the table, and pg_tenant
-- counts them. tenant.attach_quota(tbl, resource, 'count') creates the index.
CREATE FUNCTION tenant.quota_index_handler(internal) RETURNS index_am_handler
LANGUAGE c STRICT AS 'MODULE_PATHNAME', 'quota_index_handler';
CREATE ACCESS METHOD tenant_quota TYPE INDEX HANDLER tenant.quota_index_handler;
COMMENT ON ACCESS METHOD tenant_quota IS 'pg_tenant: counts the rows of a count quota (tenant.attach_quota); stores nothing';
CREATE OPERATOR CLASS tenant.quota_uuid_ops DEFAULT FOR TYPE uuid USING tenant_quota AS STORAGE uuid;
