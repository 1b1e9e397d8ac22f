#!/usr/bin/env python3
"""Admin changes reach sessions connected before them (issue 12, item 1).

usage: run.py HOST PORT MODE

For each admin function: a session connects and uses pg_tenant (sets its tenant, checks a quota,
consumes...), so that its cache holds the state before the change; the change is made from
another session; the first session's next transaction must see the new state. Also: plain SQL on
pg_tenant's tables by the extension owner, rolled-back changes, a REPEATABLE READ transaction under
way when a change commits, ALTER EXTENSION UPDATE, DROP and CREATE EXTENSION; and every admin
function in pg_proc is either tested here or listed as changing nothing a session holds.

Prints "test admin_changes: MODE: NAME ... ok|FAILED (expected ..., got ...)" lines (counted by
scripts/test.sh); exits 1 if a check failed.
"""
import base64
import hashlib
import hmac
import json
import os
import sys
import time

import psycopg
from psycopg import sql

HOST, PORT, MODE = sys.argv[1], sys.argv[2], sys.argv[3]
DB = "ac"
failed = False
ran = 0


def connect(user="postgres", db=DB, options=""):
    conn = psycopg.connect(host=HOST, port=PORT, user=user, dbname=db, autocommit=True,
                           prepare_threshold=None, options=options)
    conn.add_notice_handler(lambda _n: None)
    return conn


def q(conn, query, *params):
    """The first column of the first row, or "ERROR <sqlstate>" (the transaction is rolled back)."""
    try:
        cur = conn.execute(query, params or None)
        row = cur.fetchone() if cur.description else None
        return None if row is None else row[0]
    except psycopg.Error as e:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
            conn.execute("ROLLBACK")
        return f"ERROR {e.sqlstate}"


def quota(conn, resource="calls"):
    """check_quota as "plan limit allowed", or the error."""
    try:
        row = conn.execute("SELECT plan, \"limit\", allowed FROM tenant.check_quota(%s)", (resource,)).fetchone()
        return f"{row[0]} {row[1]} {str(row[2]).lower()}"
    except psycopg.Error as e:
        return f"ERROR {e.sqlstate}"


def check(name, expected, actual):
    global failed, ran
    ran += 1
    if str(expected) == str(actual):
        print(f"test admin_changes: {MODE}: {name} ... ok", flush=True)
    else:
        print(f"test admin_changes: {MODE}: {name} ... FAILED (expected '{expected}', got '{actual}')", flush=True)
        failed = True


def jwt(secret, tenant):
    b64 = lambda d: base64.urlsafe_b64encode(d).rstrip(b"=").decode()
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"tenant": tenant, "iat": now, "exp": now + 600}).encode())
    sig = b64(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{sig}"


def in_transaction(conn, query):
    """q() inside a transaction block (rolled back after), as text."""
    q(conn, "BEGIN")
    result = q(conn, query)
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.execute("ROLLBACK")
    return str(result)


def session(tenant, user="ac_app", resource="calls"):
    """A session of `user` acting as `tenant` that has used its cache (set, check_quota)."""
    s = connect(user)
    q(s, "SELECT tenant.set(%s)", tenant)
    quota(s, resource)
    return s


admin = connect()
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "setup.sql")) as f:
    admin.execute(f.read())


def create(slug, plan="free"):
    q(admin, "SELECT tenant.create(%s, plan => %s)", slug, plan)


# --- plans and limits -------------------------------------------------------------------------
create("b21")
s = session("b21")
before = quota(s) + " / " + str(q(s, "SELECT tenant.consume('calls', 10)")) + " / " + q(s, "SELECT tenant.consume('calls')")
q(admin, "SELECT tenant.change_plan('b21', 'pro')")
check("change_plan: check_quota and consume follow the new plan",
      "free 10 true / 0 / ERROR PT010 -> pro 1000 true / 989",
      before + " -> " + quota(s) + " / " + str(q(s, "SELECT tenant.consume('calls')")))

create("t-alter", "alt")
s = session("t-alter")
before = quota(s)
q(admin, """SELECT tenant.alter_plan('alt', '{"calls": {"limit": 7}}')""")
check("alter_plan: the plan's new limit applies", "alt 3 true -> alt 7 true / 3",
      before + " -> " + quota(s) + " / " + str(q(s, "SELECT tenant.consume('calls', 4)")))

# Plan settings (issue 15): a session that acted as the tenant before the change gets the new
# settings at its next tenant.set().
create("t-psettings", "alt")
s = session("t-psettings")
before = q(s, "SELECT current_setting('work_mem')")
q(admin, """SELECT tenant.set_plan_settings('alt', '{"work_mem": "9MB"}')""")
q(s, "SELECT tenant.set('t-psettings')")
check("set_plan_settings: a connected session's next set() applies the plan's settings",
      "4MB -> 9MB", before + " -> " + q(s, "SELECT current_setting('work_mem')"))
q(admin, """SELECT tenant.set_tenant_settings('t-psettings', '{"work_mem": "11MB"}')""")
q(s, "SELECT tenant.set('t-psettings')")
check("set_tenant_settings: a connected session's next set() applies the tenant's own over them",
      "11MB", q(s, "SELECT current_setting('work_mem')"))
q(admin, """SELECT tenant.set_plan_settings('alt', '{}')""")

# A tenant whose plan is not defined yet (plain SQL by the extension owner; or a restore that
# loads tenants before plans) is unlimited until create_plan defines it.
create("t-newplan")
s = session("t-newplan")
q(admin, "UPDATE tenant_data.tenants SET plan = 'gold' WHERE slug = 't-newplan'")
middle = quota(s)
q(admin, """SELECT tenant.create_plan('gold', '{"calls": {"limit": 5}}')""")
check("create_plan: a tenant on the plan gets its limits (plain SQL UPDATE of tenants before)",
      "free 10 true -> gold -1 true -> gold 5 true", "free 10 true -> " + middle + " -> " + quota(s))

q(admin, """SELECT tenant.create_plan('doomed', '{"calls": {"limit": 1}}')""")
create("t-dropplan")
s = connect()  # a pooled admin connection that has used the plan
q(s, "SELECT tenant.change_plan('t-dropplan', 'doomed')")
q(s, "SELECT tenant.change_plan('t-dropplan', 'free')")
q(admin, "SELECT tenant.drop_plan('doomed')")
check("drop_plan: a connected session can no longer move a tenant onto the plan", "ERROR PT005",
      q(s, "SELECT tenant.change_plan('t-dropplan', 'doomed')"))
# Plain SQL by the extension owner: a plan row deleted while a tenant is on it.
create("t-delplan", "alt")
s = session("t-delplan")
q(admin, "DELETE FROM tenant_data.plans WHERE name = 'alt'")
check("plain SQL DELETE FROM tenant_data.plans: the tenant's limit is gone", "alt -1 true", quota(s))

create("t-limit")
s = session("t-limit")
q(admin, "SELECT tenant.set_limit('t-limit', 'calls', 3)")
check("set_limit: the tenant's own limit applies", "free 3 true / 0 / ERROR PT010",
      quota(s) + " / " + str(q(s, "SELECT tenant.consume('calls', 3)")) + " / " + q(s, "SELECT tenant.consume('calls')"))
q(admin, "SELECT tenant.clear_limit('t-limit', 'calls')")
check("clear_limit: the plan's limit applies again", "free 10 true / 6",
      quota(s) + " / " + str(q(s, "SELECT tenant.consume('calls')")))
q(admin, "SELECT tenant.set_limit('t-limit', 'calls', 4)")
quota(s)
q(admin, "TRUNCATE tenant_data.limit_overrides")
check("plain SQL TRUNCATE tenant_data.limit_overrides: the plan's limit applies again", "free 10 true", quota(s))

# --- lifecycle --------------------------------------------------------------------------------
create("t-susp")
s = session("t-susp")
q(s, "SELECT tenant.consume('calls')")
q(admin, "SELECT tenant.suspend('t-susp', 'unpaid')")
check("suspend: consume and inserts are refused, check_quota says not allowed",
      "ERROR PT003 / ERROR PT003 / free 10 false",
      q(s, "SELECT tenant.consume('calls')") + " / " + q(s, "INSERT INTO items (body) VALUES ('x')") + " / " + quota(s))
q(admin, "SELECT tenant.resume('t-susp')")
check("resume: writes work again", "8 / None / free 10 true",
      f"{q(s, 'SELECT tenant.consume(%s)', 'calls')} / {q(s, 'INSERT INTO items (body) VALUES (%s)', 'x')} / {quota(s)}")
q(admin, "UPDATE tenant_data.tenants SET status = 'suspended' WHERE slug = 't-susp'")
check("plain SQL UPDATE tenant_data.tenants SET status: the tenant is suspended", "ERROR PT003",
      q(s, "SELECT tenant.consume('calls')"))
q(admin, "BEGIN")
q(admin, "SET LOCAL session_replication_role = replica")
q(admin, "UPDATE tenant_data.tenants SET status = 'active' WHERE slug = 't-susp'")
q(admin, "COMMIT")
check("plain SQL under session_replication_role = replica (as a subscriber applies it): resumed",
      "7", q(s, "SELECT tenant.consume('calls')"))

create("t-drop")
s = session("t-drop")
q(admin, "SELECT tenant.drop('t-drop')")
check("drop: the session's tenant is unknown, and so is its slug",
      "ERROR PT002 / ERROR PT002", quota(s) + " / " + q(s, "SELECT tenant.set('t-drop')"))

s = connect("ac_app")
before = q(s, "SELECT tenant.set('t-late')")
create("t-late")
check("create: a slug looked up before it existed can be set", "ERROR PT002 -> set free 10 true",
      before + " -> " + ("set " if q(s, "SELECT tenant.set('t-late')") else "") + quota(s))

# --- grants -----------------------------------------------------------------------------------
create("t-grant")
s = connect("ac_late")
before = q(s, "SELECT tenant.set('t-grant')")
q(admin, "SELECT tenant.grant_gateway('ac_late')")
check("grant_gateway: the role may act as tenants", "ERROR 42501 -> ok",
      before + " -> " + ("ok" if q(s, "SELECT tenant.set('t-grant')") else "?"))

s = session("t-grant", "ac_rev")
q(admin, "SELECT tenant.revoke_gateway('ac_rev')")
check("revoke_gateway: the tenant the role set for its session is no longer in force", "ERROR 42501 / ERROR 42501",
      q(s, "SELECT tenant.current()") + " / " + q(s, "SELECT tenant.current(true)"))
check("revoke_gateway: the role may no longer set a tenant", "ERROR 42501 / ERROR 42501",
      q(s, "SELECT tenant.set('t-grant')") + " / " + in_transaction(s, "SELECT tenant.set_local('t-grant')"))

s = session("t-grant", "ac_txo")
q(admin, "SELECT tenant.grant_gateway('ac_txo', transaction_only => true)")
check("grant_gateway again with transaction_only: the session-level tenant ends", "ERROR 42501",
      q(s, "SELECT tenant.current()"))
check("grant_gateway again with transaction_only: tenant.set refused, set_local allowed", "ERROR 42501 / True",
      q(s, "SELECT tenant.set('t-grant')") + " / " + in_transaction(s, "SELECT tenant.set_local('t-grant') IS NOT NULL"))

s = connect("ac_acc")
before = q(s, "SELECT tenant.set('t-grant')")
q(admin, "SELECT tenant.grant_access('t-grant', 'ac_acc')")
check("grant_access: the role may act as that tenant", "ERROR 42501 -> ok",
      before + " -> " + ("ok" if q(s, "SELECT tenant.set('t-grant')") else "?"))
q(s, "SELECT tenant.check_quota('calls')")
q(admin, "SELECT tenant.revoke_access('t-grant', 'ac_acc')")
check("revoke_access: the tenant the role set is no longer in force", "ERROR 42501",
      q(s, "SELECT tenant.current()"))
check("revoke_access: the role may no longer set that tenant", "ERROR 42501",
      q(s, "SELECT tenant.set('t-grant')"))

# --- signing keys -----------------------------------------------------------------------------
KEY1, KEY2 = "admin-changes-first-key-0123456789abcdef", "admin-changes-second-key-0123456789abcdef"
create("t-token")
q(admin, "SELECT tenant.set_signing_key('HS256', %s)", KEY1)
s = connect("ac_tok")
q(s, "SELECT tenant.current(true)")  # loads the library (without shared_preload_libraries)
s.execute(sql.SQL("SET pg_tenant.token = {}").format(sql.Literal(jwt(KEY1, "t-token"))))
tid = q(admin, "SELECT id FROM tenant_data.tenants WHERE slug = 't-token'")
before = q(s, "SELECT tenant.current()") == tid
q(admin, "SELECT tenant.set_signing_key('HS256', %s)", KEY2)
check("set_signing_key: a token set in the session no longer verifies once its key is replaced",
      "True -> ERROR PT021", f"{before} -> {q(s, 'SELECT tenant.current()')}")
s2 = connect("ac_tok")
before = q(s2, "SELECT tenant.set_token(%s, local => true) = %s", jwt(KEY2, "t-token"), tid)
q(admin, "SELECT tenant.set_signing_key('HS256', NULL)")
check("set_signing_key NULL: tokens are refused (no key)", "True -> ERROR PT025",
      f"{before} -> {q(s2, 'SELECT tenant.set_token(%s, local => true)', jwt(KEY2, 't-token'))}")

# --- quotas on tables -------------------------------------------------------------------------
create("t-quota")
s = session("t-quota", resource="items")
before = str(q(s, "SELECT tenant.consume('items')"))
q(admin, "SELECT tenant.attach_quota('items', 'items', 'count')")
check("attach_quota count: consume refused, rows counted against the plan's limit",
      "1 -> ERROR 22023 / None / ERROR PT010",
      before + " -> " + q(s, "SELECT tenant.consume('items')") + " / "
      + str(q(s, "INSERT INTO items (body) VALUES ('a'), ('b')")) + " / " + q(s, "INSERT INTO items (body) VALUES ('c')"))
q(admin, "SELECT tenant.set_limit('t-quota', 'items', 3)")
check("set_limit on a count quota: one more row fits, not two", "None / ERROR PT010",
      f"{q(s, 'INSERT INTO items (body) VALUES (%s)', 'c')} / {q(s, 'INSERT INTO items (body) VALUES (%s)', 'd')}")
q(admin, "SELECT tenant.detach_quota('items', 'items')")
check("detach_quota: consume of the resource works again (1 of 3 used)", "2", q(s, "SELECT tenant.consume('items')"))
q(s, "INSERT INTO items (body) VALUES ('m')")
q(admin, "SELECT tenant.attach_quota('items', 'writes', 'meter')")
check("attach_quota meter: inserts are metered (limit 1)", "None / ERROR PT010",
      f"{q(s, 'INSERT INTO items (body) VALUES (%s)', 'm1')} / {q(s, 'INSERT INTO items (body) VALUES (%s)', 'm2')}")
q(admin, "SELECT tenant.detach_quota('items', 'writes')")
check("detach_quota meter: inserts are no longer metered", "None", q(s, "INSERT INTO items (body) VALUES ('m3')"))

# --- protection -------------------------------------------------------------------------------
create("t-docs")
create("t-other")
q(admin, "INSERT INTO docs SELECT 1, id FROM tenant_data.tenants WHERE slug IN ('t-docs', 't-other')")
s = session("t-docs")
before = q(s, "SELECT count(*) FROM docs")
q(admin, "SELECT tenant.protect('docs')")
middle = q(s, "SELECT count(*) FROM docs")
q(admin, "SELECT tenant.unprotect('docs')")
check("protect / unprotect: the session reads its own rows, then every row again", "2 -> 1 -> 2",
      f"{before} -> {middle} -> {q(s, 'SELECT count(*) FROM docs')}")

# --- schema tenants: migrations and measured size -------------------------------------------
q(admin, "SELECT tenant.create('t-sch', isolation => 'schema', template => 'tpl')")
s = session("t-sch")
q(s, "INSERT INTO notes VALUES (1, 'a')")
q(admin, "SELECT tenant.migrate('v2', 'ALTER TABLE notes ADD COLUMN tag text; CREATE TABLE extra (n int); GRANT SELECT, INSERT ON extra TO ac_app')")
check("migrate: the new column and table are there, guarded", "None / 1 / ERROR PT001",
      f"{q(s, 'INSERT INTO notes VALUES (2, %s, %s)', 'b', 't')} / "
      f"{q(s, 'INSERT INTO extra VALUES (1)') or q(s, 'SELECT count(*) FROM extra')} / "
      f"{q(connect('ac_app'), 'INSERT INTO tenant_t_sch.extra VALUES (2)')}")
q(admin, "SELECT tenant.migrate_next('v3', 'ALTER TABLE extra ADD COLUMN m int', 10)")
check("migrate_next: the new column is there", "None", q(s, "INSERT INTO extra VALUES (2, 2)"))
q(admin, "CALL tenant.migrate_batches('v4', 'ALTER TABLE extra ADD COLUMN b int', 1)")
check("migrate_batches: the new column is there", "None", q(s, "INSERT INTO extra VALUES (3, 3, 3)"))
q(admin, "SELECT tenant.set_limit('t-sch', 'schema_bytes', 1)")
q(s, "INSERT INTO notes VALUES (3, 'c')")
q(admin, "SELECT tenant.refresh_usage()")
check("refresh_usage: the measured size over the limit stops writes", "ERROR PT010",
      q(s, "INSERT INTO notes VALUES (4, 'd')"))

# --- import -----------------------------------------------------------------------------------
create("t-exp")
q(admin, "SELECT tenant.set_limit('t-exp', 'calls', 77)")
doc = q(admin, "SELECT tenant.export('t-exp')::text")
create("t-imp")
s = session("t-imp")
q(admin, "SELECT tenant.import('t-imp', %s::jsonb, restore_quotas => true)", doc)
check("import with restore_quotas: the imported limit applies", "free 77 true", quota(s))

# --- rolled-back changes, and a transaction under way -------------------------------------------
create("t-rb")
s = session("t-rb")
q(admin, "SELECT tenant.set('t-rb')")
q(admin, "BEGIN")
q(admin, "SELECT tenant.change_plan('t-rb', 'pro')")
inside = quota(admin)
middle = quota(s)
q(admin, "ROLLBACK")
check("a rolled-back change_plan: seen inside its transaction only, nowhere after",
      "pro 1000 true / free 10 true / free 10 true / free 10 true",
      f"{inside} / {middle} / {quota(s)} / {quota(admin)}")
q(admin, "BEGIN")
q(admin, "SAVEPOINT a")
q(admin, "SELECT tenant.set_limit('t-rb', 'calls', 2)")
inside = quota(admin)
q(admin, "ROLLBACK TO SAVEPOINT a")
after_savepoint = quota(admin)
q(admin, "COMMIT")
check("a set_limit rolled back to a savepoint: gone in that session and the other",
      "free 2 true / free 10 true / free 10 true", f"{inside} / {after_savepoint} / {quota(s)}")
q(admin, "SELECT tenant.reset()")

create("t-rr")
s = session("t-rr")
q(s, "BEGIN ISOLATION LEVEL REPEATABLE READ")
q(s, "SELECT 1")
q(admin, "SELECT tenant.set_limit('t-rr', 'calls', 4)")
quota(s)
inside = quota(s)
q(s, "COMMIT")
check("a REPEATABLE READ transaction under way: its snapshot inside, the change at the next",
      "free 10 true -> free 4 true", inside + " -> " + quota(s))

# --- every admin function is tested above, or changes nothing a session holds -----------------
TESTED = {"change_plan", "alter_plan", "create_plan", "drop_plan", "set_limit", "clear_limit",
          "suspend", "resume", "drop", "create", "grant_gateway", "revoke_gateway", "grant_access",
          "revoke_access", "set_signing_key", "attach_quota", "detach_quota", "protect",
          "unprotect", "migrate", "migrate_next", "migrate_batches", "refresh_usage", "import",
          "set_plan_settings", "set_tenant_settings"}
UNCHANGING = {
    "check", "export", "export_schema", "schema_structure", "schema_drift",
    "protected_row_counts", "counted_usage", "effective_limit",  # read only
    "clone_schema",  # a new schema no tenant uses until create or migrate
    "table_data", "import_rows", "recount_tenant",  # steps of export and import
    "plans_insert_as_update", "quota_trigger",  # triggers
    # Needs Citus: tests/citus/run.sh checks that sessions on every node read the registry after it.
    "citus_setup",
    "stats_rows",  # read only
    # Statistics only: tests/stats/run.sh checks a session connected across a reset counting on.
    "stats_reset",
}
admin_functions = set(q(admin, """
    SELECT array_agg(DISTINCT proname::text) FROM pg_proc
     WHERE pronamespace = 'tenant'::regnamespace AND NOT has_function_privilege('public', oid, 'EXECUTE')"""))
check("every admin function in pg_proc is tested here or changes nothing a session holds", "[]",
      sorted(admin_functions - TESTED - UNCHANGING))

# --- the extension itself: updated, and dropped and created again ------------------------------
admin.execute("CREATE DATABASE ac_old")
old = connect(db="ac_old")
old.execute("""CREATE EXTENSION pg_tenant VERSION '0.2.0';
               SELECT tenant.grant_gateway('ac_app');
               SELECT tenant.create('t-old')""")
s = connect("ac_app", db="ac_old")
q(s, "SELECT tenant.set('t-old')")
quota(s)
old.execute("ALTER EXTENSION pg_tenant UPDATE")
q(old, "SELECT tenant.grant_gateway('ac_app', transaction_only => true)")
check("ALTER EXTENSION UPDATE: a transaction_only grant made afterwards applies", "ERROR 42501",
      q(s, "SELECT tenant.set('t-old')"))

admin.execute("CREATE DATABASE ac_re")
re_ = connect(db="ac_re")
re_.execute("CREATE EXTENSION pg_tenant; SELECT tenant.grant_gateway('ac_app'); SELECT tenant.create('t-re')")
s = connect("ac_app", db="ac_re")
q(s, "SELECT tenant.set('t-re')")
quota(s)
re_.execute("""DROP EXTENSION pg_tenant CASCADE; CREATE EXTENSION pg_tenant;
               SELECT tenant.grant_gateway('ac_app'); SELECT tenant.create('t-re')""")
before = ("set " if q(s, "SELECT tenant.set('t-re')") else "") + quota(s)
q(re_, "SELECT tenant.set_limit('t-re', 'calls', 6)")
check("DROP EXTENSION and CREATE EXTENSION: the new registry is read, and its changes reach",
      "set default -1 true -> default 6 true", before + " -> " + quota(s))

print(f"# admin_changes: {MODE}: {ran} checks", flush=True)
sys.exit(1 if failed else 0)
