"""pg_tenant from Python with psycopg: the per-request pattern and HTTP-style error mapping.

Run: python3 app.py postgresql://client_app@127.0.0.1:PORT/DB
"""
import json
import sys

import psycopg

# pg_tenant's SQLSTATEs -> HTTP status codes.
STATUS = {"PT010": 429, "PT011": 402, "PT003": 423, "PT001": 400, "PT002": 404, "42501": 403}


def handle(conn, tenant, work):
    """One request: BEGIN; tenant.set_local(tenant); work(cur); COMMIT. Returns (status, body)."""
    try:
        with conn.transaction(), conn.cursor() as cur:
            if tenant is not None:
                cur.execute("SELECT tenant.set_local(%s)", (tenant,))
            return 200, work(cur)
    except psycopg.errors.DatabaseError as e:
        status = STATUS.get(e.sqlstate)
        if status is None:
            raise
        detail = e.diag.message_detail
        body = {"error": e.diag.message_primary, "sqlstate": e.sqlstate}
        if e.sqlstate in ("PT010", "PT011"):
            body["quota"] = json.loads(detail)  # the DETAIL is JSON
        return status, body


def list_notes(cur):
    cur.execute("SELECT body FROM notes ORDER BY id")
    return [r[0] for r in cur.fetchall()]


def add_note(body):
    def work(cur):
        cur.execute("INSERT INTO notes (body) VALUES (%s) RETURNING id", (body,))
        return {"id": cur.fetchone()[0]}
    return work


def main(dsn):
    results = []

    def check(name, ok):
        results.append(ok)
        print(f"test client-python: {name} ... {'ok' if ok else 'FAILED'}")

    with psycopg.connect(dsn, autocommit=True) as conn:
        check("acme starts with no notes", handle(conn, "acme", list_notes) == (200, []))
        check("acme adds a note", handle(conn, "acme", add_note("py 1"))[0] == 200)
        check("acme sees only its note", handle(conn, "acme", list_notes) == (200, ["py 1"]))
        check("globex sees only its note", handle(conn, "globex", list_notes) == (200, ["globex plan"]))
        check("acme's second note fits the quota", handle(conn, "acme", add_note("py 2"))[0] == 200)
        status, body = handle(conn, "acme", add_note("py 3"))
        check("the third is 429 with the quota as JSON",
              status == 429 and body["quota"]["resource"] == "notes" and body["quota"]["limit"] == 2
              and body["quota"]["used"] == 2)
        check("a suspended tenant's write is 423", handle(conn, "initech", add_note("x"))[0] == 423)
        check("a request that forgot its tenant is 400", handle(conn, None, list_notes)[0] == 400)
        check("an unknown tenant is 404", handle(conn, "nope", list_notes)[0] == 404)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
