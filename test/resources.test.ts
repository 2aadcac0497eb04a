// Sources of several resources (dlt's source of resources): each resource its own table with its own
// disposition, keys and hints, all loaded in one transaction (all or nothing); rows routed to tables named
// by the data; transformers fed by another resource's rows, with bounded concurrency and in order; state
// per resource; the ledger, summary and status telling each table's count; mistakes in a resource's
// options refused like config errors.
import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  resource,
  runFlight,
  transformer,
  decodeState,
  type Env,
  type Resource,
  type Row as SourceRow,
  type RunSummary,
} from '../flight.ts';
import { columns, dbFile, query, runCli, tempDir, type Row } from './support.ts';

const DS = 'flights_demo_dlt';
const quiet = (): void => {};
const run = (dir: string, source: Resource[], env: Env = {}) =>
  runFlight({ env: { LOCAL_DATA_DIR: dir, ...env }, source, log: quiet });
async function ok(dir: string, source: Resource[], env: Env = {}): Promise<RunSummary> {
  const summary = await run(dir, source, env);
  assert.equal(summary.status, 'succeeded', summary.error);
  return summary;
}
const sql = (dir: string, text: string): Promise<Row[]> => query(dbFile(dir), text);
const ids = async (dir: string, table: string) =>
  (await sql(dir, `SELECT id FROM ${DS}.${table} ORDER BY id`)).map((r) => Number(r.id));

const orders = (rows: SourceRow[]) => resource('orders', () => rows, { writeDisposition: 'merge', primaryKey: 'id' });
const customers = (rows: SourceRow[] | (() => Generator<SourceRow>)) =>
  resource('customers', typeof rows === 'function' ? rows : () => rows, { writeDisposition: 'append' });

describe('several resources in one run', () => {
  test('each loads its own table with its own disposition; the ledger, summary and stored schema tell each', async (t) => {
    const dir = await tempDir(t);
    const first = await ok(dir, [
      orders([
        { id: 1, total: 10, lines: [{ sku: 'a' }, { sku: 'b' }] },
        { id: 2, total: 20, lines: [] },
      ]),
      customers([{ id: 7, name: 'ann' }]),
    ]);
    assert.deepEqual(first.tables, { orders: 2, orders__lines: 2, customers: 1 });
    assert.equal(first.rowsLoaded, 3);
    await ok(dir, [orders([{ id: 1, total: 11, lines: [{ sku: 'c' }] }]), customers([{ id: 8, name: 'bob' }])]);
    assert.deepEqual(await sql(dir, `SELECT id, total FROM ${DS}.orders ORDER BY id`), [
      { id: 1n, total: 11n },
      { id: 2n, total: 20n },
    ]);
    assert.deepEqual(await sql(dir, `SELECT sku FROM ${DS}.orders__lines`), [{ sku: 'c' }]);
    assert.deepEqual(await ids(dir, 'customers'), [7, 8]);
    const [ledger] = await sql(
      dir,
      `SELECT destination_table, rows_loaded, load_summary, table_counts FROM main.dlt_ingest_runs ORDER BY run_at DESC LIMIT 1`,
    );
    assert.equal(ledger!.destination_table, 'orders,customers');
    assert.equal(ledger!.rows_loaded, 2n);
    assert.match(String(ledger!.load_summary), /orders=1, orders__lines=1, customers=1/);
    assert.deepEqual(JSON.parse(String(ledger!.table_counts)), { orders: 1, orders__lines: 1, customers: 1 });
    const [{ schema }] = (await sql(dir, `SELECT schema FROM ${DS}._dlt_version ORDER BY version DESC LIMIT 1`)) as [
      { schema: string },
    ];
    const tables = JSON.parse(schema).tables;
    assert.equal(tables.orders.write_disposition, 'merge');
    assert.equal(tables.orders.resource, 'orders');
    assert.equal(tables.customers.write_disposition, 'append');
    assert.equal(tables.orders__lines.parent, 'orders');
  });

  test("all or nothing: the second resource failing leaves the first one's table as it was", async (t) => {
    const dir = await tempDir(t);
    await ok(dir, [orders([{ id: 1, total: 10 }]), customers([{ id: 7 }])]);
    const broken = customers(function* () {
      yield { id: 8 };
      throw new Error('customers API broke');
    });
    const failed = await run(dir, [
      orders([
        { id: 1, total: 99 },
        { id: 3, total: 30 },
      ]),
      broken,
    ]);
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /customers API broke/);
    assert.deepEqual(await sql(dir, `SELECT id, total FROM ${DS}.orders ORDER BY id`), [{ id: 1n, total: 10n }]);
    assert.deepEqual(await ids(dir, 'customers'), [7]);
    assert.deepEqual(
      (await sql(dir, `SELECT status FROM main.dlt_ingest_runs ORDER BY run_at`)).map((r) => r.status),
      ['succeeded', 'failed'],
    );
  });

  test('replace on one resource, append on another: a run with no rows empties the replaced table only', async (t) => {
    const dir = await tempDir(t);
    const snapshot = (rows: SourceRow[]) => resource('snapshot', () => rows, { writeDisposition: 'replace' });
    await ok(dir, [snapshot([{ id: 1 }, { id: 2 }]), customers([{ id: 7 }])]);
    await ok(dir, [snapshot([]), customers([{ id: 8 }])]);
    assert.deepEqual(await ids(dir, 'snapshot'), []);
    assert.deepEqual(await ids(dir, 'customers'), [7, 8]);
  });

  test('state is kept per resource, as dlt keeps it (sources.<pipeline>.resources.<resource>)', async (t) => {
    const dir = await tempDir(t);
    const counting = (name: string) =>
      resource(name, (ctx) => {
        const runs = ((ctx.state.runs as number | undefined) ?? 0) + 1;
        ctx.state.runs = runs;
        return [{ id: runs }];
      });
    await ok(dir, [counting('a'), counting('b')]);
    await ok(dir, [counting('a')]);
    const [{ state }] = (await sql(
      dir,
      `SELECT state FROM ${DS}._dlt_pipeline_state ORDER BY version DESC LIMIT 1`,
    )) as [{ state: string }];
    const resources = (decodeState(state).sources as Record<string, { resources: Record<string, { runs: number }> }>)
      .flights_dlt_ingest!.resources;
    assert.deepEqual(resources, { a: { runs: 2 }, b: { runs: 1 } });
  });
});

describe('rows routed to tables named by the data', () => {
  test('each kind of event into its own table (merge on id), child tables of routed tables, a new kind later', async (t) => {
    const dir = await tempDir(t);
    const events = (rows: SourceRow[]) =>
      resource('events', () => rows, {
        table: (row) => `${row.kind}_events`,
        writeDisposition: 'merge',
        primaryKey: 'id',
      });
    const first = await ok(dir, [
      events([
        { id: 1, kind: 'click', tags: ['x'] },
        { id: 2, kind: 'view' },
        { id: 3, kind: 'click' },
      ]),
    ]);
    assert.deepEqual(first.tables, { click_events: 2, click_events__tags: 1, view_events: 1 });
    await ok(dir, [
      events([
        { id: 1, kind: 'click', tags: ['y', 'z'] },
        { id: 4, kind: 'Scroll' },
      ]),
    ]);
    assert.deepEqual(await ids(dir, 'click_events'), [1, 3]);
    assert.deepEqual(await sql(dir, `SELECT value FROM ${DS}.click_events__tags ORDER BY value`), [
      { value: 'y' },
      { value: 'z' },
    ]);
    assert.deepEqual(await ids(dir, 'scroll_events'), [4]);
  });

  test("a row routed to a table that is not the pipeline's fails the run, naming it", async (t) => {
    const dir = await tempDir(t);
    await query(dbFile(dir), `CREATE SCHEMA ${DS}; CREATE TABLE ${DS}.admin (secret VARCHAR)`, { write: true });
    const failed = await run(dir, [resource('any', () => [{ to: 'admin', id: 1 }], { table: (r) => String(r.to) })]);
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /table "admin", which exists in the dataset but is not one of this pipeline's/);
  });
});

describe('transformers', () => {
  /** A server answering /items/<n> after a delay that shrinks with n (later items answer first). */
  async function slowServer(t: TestContext) {
    let [inFlight, most] = [0, 0];
    const server = createServer((req, res) => {
      const n = Number(req.url!.split('/').pop());
      most = Math.max(most, ++inFlight);
      setTimeout(
        () => {
          inFlight--;
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify([{ detail: `${n}-a` }, { detail: `${n}-b` }]));
        },
        200 - n * 15,
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, most: () => most };
  }

  test("a transformer's rows load in its parent rows' order, with at most `concurrency` calls at once", async (t) => {
    const dir = await tempDir(t);
    const api = await slowServer(t);
    const items = resource('items', () => Array.from({ length: 8 }, (_, i) => ({ n: i })));
    const details = transformer(
      'details',
      items,
      async (item, ctx) =>
        ((await ctx.getJson(`${api.url}/items/${item.n}`, `item ${item.n}`)) as SourceRow[]).map((d) => ({
          n: item.n,
          ...d,
        })),
      { concurrency: 3 },
    );
    const summary = await ok(dir, [items, details]);
    assert.deepEqual(summary.tables, { items: 8, details: 16 });
    const order = await sql(dir, `SELECT detail FROM ${DS}.details ORDER BY _dlt_id`);
    assert.deepEqual(
      order.map((r) => r.detail),
      Array.from({ length: 8 }, (_, n) => [`${n}-a`, `${n}-b`]).flat(),
      "in the parent rows' order, although later calls answered first",
    );
    assert.equal(api.most(), 3);
  });

  test('a cursor per key: each parent row keeps its own; asked twice in a run, it is the same cursor', async (t) => {
    const dir = await tempDir(t);
    const data: Record<string, number[]> = { a: [1, 2, 3], b: [1, 2, 3, 4, 5] };
    const parents = resource('parents', () => [{ p: 'a' }, { p: 'b' }]);
    const children = transformer('children', parents, (item, ctx) => {
      const key = String(item.p);
      const cursor = ctx.incremental<number>('n', { key });
      assert.equal(ctx.incremental<number>('n', { key }), cursor);
      return data[key]!.map((n) => ({ p: key, n })).filter((row) => cursor.accept(row));
    });
    assert.deepEqual((await ok(dir, [parents, children])).tables, { parents: 2, children: 8 });
    data.a!.push(4); // below b's cursor (5): a shared cursor would drop it
    assert.deepEqual((await ok(dir, [parents, children])).tables, { parents: 2, children: 1 });
    assert.deepEqual(await sql(dir, `SELECT p, n FROM ${DS}.children WHERE n = 4 ORDER BY p`), [
      { p: 'a', n: 4n },
      { p: 'b', n: 4n },
    ]);
  });

  test("a transformer's failure fails the run: nothing of either table is kept", async (t) => {
    const dir = await tempDir(t);
    const items = resource('items', () => [{ n: 1 }, { n: 2 }]);
    const details = transformer('details', items, async function* (item) {
      if (item.n === 2) throw new Error('detail 2 is gone');
      yield { n: item.n };
    });
    const failed = await run(dir, [items, details]);
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /detail 2 is gone/);
    assert.deepEqual(
      await sql(dir, `SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = '${DS}'`),
      [{ n: 0n }],
    );
  });
});

describe('column hints on a resource', () => {
  test("decimal(10,2), not-null, json: created with the type; a value the decimal can't hold goes to a variant", async (t) => {
    const dir = await tempDir(t);
    const prices = (rows: SourceRow[]) =>
      resource('prices', () => rows, {
        columns: {
          price: { data_type: 'decimal', precision: 10, scale: 2 },
          sku: { nullable: false },
          meta: { data_type: 'json' },
        },
      });
    await ok(dir, [
      prices([
        { sku: 'a', price: 3.25, meta: { tags: ['x'] } },
        { sku: 'b', price: 1.234, meta: { tags: [] } },
      ]),
    ]);
    const types = Object.fromEntries((await columns(dbFile(dir), DS, 'prices')).map((c) => [c.name, c.type]));
    assert.equal(types.price, 'DECIMAL(10,2)');
    assert.equal(types.meta, 'JSON');
    assert.deepEqual(
      await sql(dir, `SELECT sku, price::VARCHAR AS price, price__v_double FROM ${DS}.prices ORDER BY sku`),
      [
        { sku: 'a', price: '3.25', price__v_double: null },
        { sku: 'b', price: null, price__v_double: 1.234 },
      ],
    );
    const failed = await run(dir, [prices([{ price: 1 }, { sku: 'c' }])]);
    assert.match(failed.error ?? '', /source row 1 has no value for column "sku", which its hint makes not nullable/);
  });
});

describe("a resource's options are checked before anything runs (exit 2)", () => {
  for (const [what, resources, message] of [
    [
      'merge without a key',
      [resource('a', () => [], { writeDisposition: 'merge' })],
      /resource "a": writeDisposition 'merge' needs a primaryKey/,
    ],
    [
      'two resources into one table',
      [resource('Orders', () => []), resource('orders', () => [])],
      /loads into table "orders" as resource "Orders" does/,
    ],
    [
      'a transformer whose parent is missing',
      [
        transformer(
          't',
          resource('gone', () => []),
          () => [],
        ),
      ],
      /its parent "gone" is not one of the source's resources/,
    ],
    [
      'a contract that is not one',
      [resource('a', () => [], { contract: 'lock' as 'freeze' })],
      /contract "lock" is not one/,
    ],
    [
      'a hint that is not one',
      [resource('a', () => [], { columns: { x: { data_type: 'money' as 'text' } } })],
      /column hint "x"/,
    ],
    ['a key that is not an identifier', [resource('a', () => [], { primaryKey: 'a b' })], /column "a b" must be/],
  ] as const) {
    test(what, async (t) => {
      const dir = await tempDir(t);
      const summary = await run(dir, [...resources]);
      assert.equal(summary.exitCode, 2);
      assert.match(summary.error ?? '', message);
      assert.deepEqual(await import('node:fs/promises').then((fs) => fs.readdir(dir)), [], 'nothing created');
    });
  }

  test("status shows each run's tables", async (t) => {
    const dir = await tempDir(t);
    await ok(dir, [orders([{ id: 1 }]), customers([{ id: 2 }])]);
    const res = await runCli({ LOCAL_DATA_DIR: dir }, { args: ['status'], cwd: dir });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /orders=1, customers=1/);
  });
});
