"""A prepared INSERT run as a cached generic plan (extended protocol: no parse or planner hook)
after pg_advisory_unlock_all() released the session's sessions slot and another session took it:
it must get PT010, not write as the tenant without a slot. Prints one verdict line.
Usage: generic_plan.py HOST PORT DB ROLE"""
import sys

import psycopg

host, port, db, role = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def connect():
    return psycopg.connect(host=host, port=port, user=role, dbname=db, autocommit=True)


insert = "INSERT INTO gp_items (body) VALUES (%s)"
a = connect()
a.execute("SELECT tenant.set('acme')")
a.execute("SET plan_cache_mode = force_generic_plan")
a.execute(insert, ("generic-before",), prepare=True)
a.execute("SELECT pg_advisory_unlock_all()")
b = connect()
b.execute("SELECT tenant.set('acme')")
try:
    a.execute(insert, ("generic-after",), prepare=True)
    verdict = "wrote"
except psycopg.Error as e:
    verdict = e.sqlstate or "error"
b.execute("SELECT tenant.reset()")
print(verdict)
