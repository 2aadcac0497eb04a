// dlt's schema contracts, per resource: for new tables, new columns and new data types (variant
// columns), `evolve` (the default), `freeze` (the run fails naming what would have changed, and nothing
// changes), `discard_row` (the row is dropped and counted) and `discard_value` (the value is dropped and
// counted). Counts of what was dropped are in the ledger's load summary.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { resource, runFlight, type ContractMode, type Row as SourceRow, type SchemaContract } from '../flight.ts';
import { dbFile, query, tempDir, type Row } from './support.ts';

const DS = 'flights_demo_dlt';
const quiet = (): void => {};
const items = (rows: SourceRow[], contract?: ContractMode | SchemaContract) =>
  resource('items', () => rows, { contract });
const run = (dir: string, rows: SourceRow[], contract?: ContractMode | SchemaContract) =>
  runFlight({ env: { LOCAL_DATA_DIR: dir }, source: [items(rows, contract)], log: quiet });
const sql = (dir: string, text: string): Promise<Row[]> => query(dbFile(dir), text);
const lastLedger = async (dir: string) =>
  (await sql(dir, `SELECT status, load_summary, error FROM main.dlt_ingest_runs ORDER BY run_at DESC LIMIT 1`))[0]!;

/** A table `items` with id BIGINT, name VARCHAR and a `tags` child table, loaded without a contract. */
async function seeded(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t);
  const first = await run(dir, [{ id: 1, name: 'a', tags: ['x'] }]);
  assert.equal(first.status, 'succeeded', first.error);
  return dir;
}

describe('freeze', () => {
  test('tables: a new table fails the run naming it; nothing is created', async (t) => {
    const dir = await tempDir(t);
    const failed = await run(dir, [{ id: 1 }], { tables: 'freeze' });
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /schema contract: table "items" is new.*tables=freeze/);
    assert.deepEqual(
      await sql(dir, `SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = '${DS}'`),
      [{ n: 0n }],
    );
  });

  test('tables: a new child table fails too, while known tables load', async (t) => {
    const dir = await seeded(t);
    assert.equal((await run(dir, [{ id: 2, name: 'b', tags: ['y'] }], { tables: 'freeze' })).status, 'succeeded');
    const failed = await run(dir, [{ id: 3, notes: ['z'] }], { tables: 'freeze' });
    assert.match(failed.error ?? '', /schema contract: table "items__notes" is new/);
  });

  test('columns: a new column fails naming it and the row; known columns load', async (t) => {
    const dir = await seeded(t);
    const failed = await run(
      dir,
      [
        { id: 2, name: 'b' },
        { id: 3, colour: 'red' },
      ],
      { columns: 'freeze' },
    );
    assert.equal(failed.status, 'failed');
    assert.match(
      failed.error ?? '',
      /source row 2: schema contract: column "colour" of table "items" is new.*columns=freeze/,
    );
    assert.deepEqual(await sql(dir, `SELECT id FROM ${DS}.items`), [{ id: 1n }]);
  });

  test('data_type: a value that would make a variant column fails naming the column and the type', async (t) => {
    const dir = await seeded(t);
    const failed = await run(dir, [{ id: 'not a number' }], { data_type: 'freeze' });
    assert.match(failed.error ?? '', /schema contract: column "id" of table "items" would get a variant of type text/);
    assert.equal((await lastLedger(dir)).status, 'failed');
  });
});

describe('discard_row', () => {
  test('columns: rows bringing a new column are dropped, counted in the load summary; the others load', async (t) => {
    const dir = await seeded(t);
    const summary = await run(
      dir,
      [
        { id: 2, name: 'b', tags: ['p'] },
        { id: 3, colour: 'red', tags: ['q'] },
        { id: 4, name: 'd' },
      ],
      { columns: 'discard_row' },
    );
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.deepEqual(await sql(dir, `SELECT id, name FROM ${DS}.items ORDER BY id`), [
      { id: 1n, name: 'a' },
      { id: 2n, name: 'b' },
      { id: 4n, name: 'd' },
    ]);
    assert.deepEqual(await sql(dir, `SELECT value FROM ${DS}.items__tags ORDER BY value`), [
      { value: 'p' },
      { value: 'x' },
    ]);
    assert.deepEqual(
      await sql(dir, `SELECT count(*) AS n FROM information_schema.columns WHERE column_name = 'colour'`),
      [{ n: 0n }],
    );
    assert.match(String((await lastLedger(dir)).load_summary), /discarded by the schema contract: items 1 row/);
  });

  test('data_type: rows with a value of another type are dropped', async (t) => {
    const dir = await seeded(t);
    const summary = await run(dir, [{ id: 'x' }, { id: 5 }], { data_type: 'discard_row' });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.deepEqual(await sql(dir, `SELECT id FROM ${DS}.items ORDER BY id`), [{ id: 1n }, { id: 5n }]);
  });

  test('tables: the rows of a new child table are dropped, their parents kept', async (t) => {
    const dir = await seeded(t);
    const summary = await run(dir, [{ id: 2, name: 'b', notes: ['n1', 'n2'] }], { tables: 'discard_row' });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.deepEqual(await sql(dir, `SELECT id FROM ${DS}.items ORDER BY id`), [{ id: 1n }, { id: 2n }]);
    assert.deepEqual(
      await sql(dir, `SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'items__notes'`),
      [{ n: 0n }],
    );
    assert.match(String((await lastLedger(dir)).load_summary), /items__notes 2 rows/);
  });
});

describe('discard_value', () => {
  test("columns: the new column's value is dropped, the row kept", async (t) => {
    const dir = await seeded(t);
    const summary = await run(dir, [{ id: 2, name: 'b', colour: 'red' }], { columns: 'discard_value' });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.deepEqual(await sql(dir, `SELECT id, name FROM ${DS}.items ORDER BY id`), [
      { id: 1n, name: 'a' },
      { id: 2n, name: 'b' },
    ]);
    assert.match(String((await lastLedger(dir)).load_summary), /items 1 value/);
  });

  test('data_type: a value of another type is dropped, the row kept', async (t) => {
    const dir = await seeded(t);
    // 42.5 into text converts (as dlt's); 'x' into BIGINT can't, so it would make id__v_text
    const summary = await run(dir, [{ id: 'x', name: 42.5 }], { data_type: 'discard_value' });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.deepEqual(await sql(dir, `SELECT id, name FROM ${DS}.items ORDER BY id NULLS LAST`), [
      { id: 1n, name: 'a' },
      { id: null, name: '42.5' },
    ]);
    assert.deepEqual(
      await sql(dir, `SELECT count(*) AS n FROM information_schema.columns WHERE column_name = 'id__v_text'`),
      [{ n: 0n }],
    );
  });

  test('evolve (the default) lets everything in', async (t) => {
    const dir = await seeded(t);
    assert.equal((await run(dir, [{ id: 'x', colour: 'red', notes: ['n'] }], 'evolve')).status, 'succeeded');
    assert.deepEqual(await sql(dir, `SELECT id__v_text, colour FROM ${DS}.items WHERE id IS NULL`), [
      { id__v_text: 'x', colour: 'red' },
    ]);
  });
});
