// pg_tenant from Node.js with pg: the per-request pattern and HTTP-style error mapping.
// Run: node app.js postgresql://client_app@127.0.0.1:PORT/DB
'use strict';
const { Client } = require('pg');

// pg_tenant's SQLSTATEs -> HTTP status codes.
const STATUS = { PT010: 429, PT011: 402, PT003: 423, PT001: 400, PT002: 404, '42501': 403 };

// One request: BEGIN; tenant.set_local(tenant); work(client); COMMIT. Resolves to [status, body].
async function handle(client, tenant, work) {
  await client.query('BEGIN');
  try {
    if (tenant !== null) await client.query('SELECT tenant.set_local($1)', [tenant]);
    const body = await work(client);
    await client.query('COMMIT');
    return [200, body];
  } catch (e) {
    await client.query('ROLLBACK');
    const status = STATUS[e.code];
    if (status === undefined) throw e;
    const body = { error: e.message, sqlstate: e.code };
    if (e.code === 'PT010' || e.code === 'PT011') body.quota = JSON.parse(e.detail); // the DETAIL is JSON
    return [status, body];
  }
}

const listNotes = async (c) => (await c.query('SELECT body FROM notes ORDER BY id')).rows.map((r) => r.body);
const addNote = (body) => async (c) => (await c.query('INSERT INTO notes (body) VALUES ($1) RETURNING id', [body])).rows[0];

async function main(dsn) {
  const client = new Client({ connectionString: dsn });
  await client.connect();
  let failures = 0;
  const check = (name, ok) => {
    if (!ok) failures += 1;
    console.log(`test client-node: ${name} ... ${ok ? 'ok' : 'FAILED'}`);
  };
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  check('acme starts with no notes', same(await handle(client, 'acme', listNotes), [200, []]));
  check('acme adds a note', (await handle(client, 'acme', addNote('js 1')))[0] === 200);
  check('acme sees only its note', same(await handle(client, 'acme', listNotes), [200, ['js 1']]));
  check('globex sees only its note', same(await handle(client, 'globex', listNotes), [200, ['globex plan']]));
  check("acme's second note fits the quota", (await handle(client, 'acme', addNote('js 2')))[0] === 200);
  const [status, body] = await handle(client, 'acme', addNote('js 3'));
  check('the third is 429 with the quota as JSON',
    status === 429 && body.quota.resource === 'notes' && body.quota.limit === 2 && body.quota.used === 2);
  check("a suspended tenant's write is 423", (await handle(client, 'initech', addNote('x')))[0] === 423);
  check('a request that forgot its tenant is 400', (await handle(client, null, listNotes))[0] === 400);
  check('an unknown tenant is 404', (await handle(client, 'nope', listNotes))[0] === 404);
  await client.end();
  return failures === 0 ? 0 : 1;
}

main(process.argv[2]).then((code) => process.exit(code), (e) => { console.error(e); process.exit(2); });
