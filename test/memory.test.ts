// Memory on wide and sparse data: the extractor writes a batch once its arrays have allocated the
// byte budget (not only at BATCH_ROWS), and DuckDB's memory limit follows the columns being loaded
// (DUCKDB_MEMORY_LIMIT=auto), or the run says which limit would do.
import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  Extractor,
  ParquetWriter,
  parseConfig,
  planFor,
  runFlight,
  type Row as SourceRow,
  type TableSchema,
} from '../flight.ts';
import { dbFile, query, tempDir } from './support.ts';

/** Rows with an id and three of `keys` sparse numeric keys each (k<n> = row number). */
function* sparseRows(rows: number, keys: number): Generator<SourceRow> {
  for (let r = 0; r < rows; r++) {
    const row: SourceRow = { id: r };
    for (let j = 0; j < 3; j++) row[`k${(r * 3 + j) % keys}`] = r;
    yield row;
  }
}

/** Rows of `cols` numeric columns. */
function* wideRows(rows: number, cols: number): Generator<SourceRow> {
  for (let r = 0; r < rows; r++) {
    const row: SourceRow = { id: r };
    for (let c = 0; c < cols; c++) row[`c${c}`] = (r + c) % 1000;
    yield row;
  }
}

/**
 * Extracts `rows` into table `table` (append) with a `budget`-byte batch budget, as runFlight's
 * extract step does; returns the loader files written, by table (each file's large bytes go into `largeBytes`).
 */
async function extractFiles(
  t: TestContext,
  table: string,
  budget: number,
  rows: Iterable<SourceRow>,
  batchRows = 122_880,
  largeBytes: number[] = [],
): Promise<Map<string, string[]>> {
  const out = join(await tempDir(t), 'files');
  await mkdir(out);
  const parsed = parseConfig({ WRITE_DISPOSITION: 'append', TABLE_NAME: table });
  assert.ok('config' in parsed);
  const files = new Map<string, string[]>();
  const writer = new ParquetWriter();
  t.after(() => writer.close());
  const onFile = (table: TableSchema, p: string, large: number) => {
    files.set(table.name, [...(files.get(table.name) ?? []), p]);
    largeBytes.push(large);
  };
  const options = { loadId: '1', dir: out, batchRows, batchBytes: budget, foreign: new Set<string>(), onFile };
  const extractor = new Extractor(new Map(), options, writer);
  const target = { plan: planFor(parsed.config) };
  for (const row of rows) extractor.add(row, target);
  await extractor.finish();
  return files;
}

/** A DuckDB list literal of loader file paths: temp paths this test made, with no quotes in them. */
const parquetList = (paths: string[]) => `[${paths.map((f) => `'${f}'`).join(',')}]`;

describe('extract: batches sized by the bytes their arrays allocate', () => {
  test('a sparse table (50 columns, 3 set per row) is cut into batches within the byte budget, no row lost', async (t) => {
    const budget = 1024 * 1024;
    const files = (await extractFiles(t, 'sparse', budget, sparseRows(10_000, 50))).get('sparse') ?? [];

    // every column's arrays hold a row of every batch row: 51 numeric columns and two text ones
    // take over 400 bytes a row, so a 1 MiB budget is about 2,500 rows, well short of BATCH_ROWS
    assert.ok(files.length >= 4, `${files.length} files`);
    const list = parquetList(files);
    const perFile = await query(
      ':memory:',
      `SELECT count(*) AS n FROM read_parquet(${list}, filename = true) GROUP BY filename`,
      {
        write: true,
      },
    );
    for (const { n } of perFile) assert.ok(Number(n) <= budget / 400, `a batch of ${n} rows`);
    const [sums] = await query(
      ':memory:',
      `SELECT count(*) AS n, sum(id) AS ids, sum(k0) AS k0, count(k49) AS k49 FROM read_parquet(${list}, union_by_name = true)`,
      { write: true },
    );
    // k0 is set on the rows r where (3r + j) % 50 == 0 for some j in 0..2
    let k0 = 0n;
    for (let r = 0; r < 10_000; r++) if ([0, 1, 2].some((j) => (r * 3 + j) % 50 === 0)) k0 += BigInt(r);
    assert.deepEqual(sums, { n: 10_000n, ids: 49_995_000n, k0, k49: 600n });
  });

  test("a wide table's last batch buffers, kept for its next batch, don't cut another table's batches short", async (t) => {
    const budget = 2 * 1024 * 1024;
    const out = join(await tempDir(t), 'files');
    await mkdir(out);
    const files = new Map<string, number>();
    const writer = new ParquetWriter();
    t.after(() => writer.close());
    const onFile = (table: TableSchema) => files.set(table.name, (files.get(table.name) ?? 0) + 1);
    const options = {
      loadId: '1',
      dir: out,
      batchRows: 122_880,
      batchBytes: budget,
      foreign: new Set<string>(),
      onFile,
    };
    const extractor = new Extractor(new Map(), options, writer);
    const target = (table: string) => {
      const parsed = parseConfig({ WRITE_DISPOSITION: 'append', TABLE_NAME: table });
      assert.ok('config' in parsed);
      return { plan: planFor(parsed.config) };
    };
    const [wide, narrow] = [target('wide'), target('narrow')];
    for (const row of wideRows(3_000, 100)) extractor.add(row, wide); // batches of the whole budget
    for (let id = 0; id < 20_000; id++) extractor.add({ id }, narrow); // 20,000 x 8 bytes: one batch
    await extractor.finish();
    assert.ok((files.get('wide') ?? 0) >= 2, `wide: ${files.get('wide')} files`);
    assert.equal(files.get('narrow'), 1, 'the narrow table is written as one batch');
  });

  test('a table that turns wide after a run of narrow rows keeps batches of many rows, none lost', async (t) => {
    // the narrow rows grow the batch's capacity far; the wide ones cut it to what the budget fits, while
    // the narrow batch's arrays are still there to be reused
    const budget = 1024 * 1024;
    function* rows(): Generator<SourceRow> {
      for (let r = 0; r < 30_000; r++) yield { id: r };
      yield* Array.from(wideRows(5_000, 50), (row) => ({ ...row, id: Number(row.id) + 30_000 }));
    }
    const files = (await extractFiles(t, 'turns', budget, rows())).get('turns') ?? [];
    // 5,000 wide rows of over 400 bytes each are about 2 MB of arrays: a few batches, not one per row
    assert.ok(files.length <= 12, `${files.length} files`);
    const [sums] = await query(
      ':memory:',
      `SELECT count(*) AS n, sum(id) AS ids, count(c49) AS c49 FROM read_parquet(${parquetList(files)}, union_by_name = true)`,
      { write: true },
    );
    assert.deepEqual(sums, { n: 35_000n, ids: 612_482_500n, c49: 5_000n });
  });

  test('a batch that reaches BATCH_ROWS on the row that takes it past the budget leaves no buffers: the next is not cut after a row', async (t) => {
    // every 100th row brings five 80,000-character values: the batch's text buffers pass the 1 MiB budget
    // on the row that also makes it full; reused, they would fill the next batch's budget at its first row
    function* rows(): Generator<SourceRow> {
      for (let r = 0; r < 1_000; r++) {
        const row: SourceRow = { id: r };
        for (let c = 0; c < 5; c++) row[`t${c}`] = r % 100 === 99 ? 'x'.repeat(80_000) : 'short';
        yield row;
      }
    }
    const files = (await extractFiles(t, 'overfull', 1024 * 1024, rows(), 100)).get('overfull') ?? [];
    const perFile = await query(
      ':memory:',
      `SELECT count(*)::INT AS n FROM read_parquet(${parquetList(files)}, filename = true) GROUP BY filename ORDER BY filename`,
      { write: true },
    );
    assert.deepEqual(
      perFile.map(({ n }) => n),
      Array(10).fill(100),
      'ten batches of BATCH_ROWS rows',
    );
  });

  test('text-heavy batches, each written at the byte budget, are built in the same text buffer, no row lost', async (t) => {
    // every batch's text column, as handed to the writer: reused, its values are in the same ArrayBuffer
    const seen: { rows: number; text: ArrayBufferLike }[] = [];
    const ipc = ParquetWriter.prototype.ipc;
    ParquetWriter.prototype.ipc = function (this: ParquetWriter, columns, rows) {
      const body = columns.find(([name]) => name === 'body')?.[1];
      if (body) seen.push({ rows, text: body.values.buffer });
      return ipc.call(this, columns, rows);
    };
    t.after(() => (ParquetWriter.prototype.ipc = ipc));
    const body = (id: number) => `${id} `.padEnd(1_000, 'lorem ipsum ');
    const rows = function* () {
      for (let id = 0; id < 20_000; id++) yield { id, body: body(id) };
    };
    const files = (await extractFiles(t, 'docs', 2 * 1024 * 1024, rows())).get('docs') ?? [];

    assert.ok(seen.length >= 10, `${seen.length} batches`); // 20 MB of text in a 2 MiB budget
    const fresh = seen.filter((batch, i) => i > 0 && batch.text !== seen[i - 1]!.text).length;
    assert.ok(fresh <= 1, `${fresh} of ${seen.length - 1} batches after the first got a new text buffer`);
    const sizes = seen.slice(0, -1).map((batch) => batch.rows);
    assert.ok(Math.min(...sizes) >= 500, `rows per batch: ${sizes.join(', ')}`);
    const [loaded] = await query(
      ':memory:',
      `SELECT count(*)::INT AS n, sum(id)::BIGINT AS ids, sum(length(body))::BIGINT AS chars
       FROM read_parquet(${parquetList(files)})`,
      { write: true },
    );
    assert.deepEqual(loaded, { n: 20_000, ids: 199_990_000n, chars: 20_000_000n });
  });

  test('a text buffer its column no longer fills is not kept batch after batch: the text moving between columns keeps batches long', async (t) => {
    const sizes: number[] = [];
    const ipc = ParquetWriter.prototype.ipc;
    ParquetWriter.prototype.ipc = function (this: ParquetWriter, columns, rows) {
      sizes.push(rows);
      return ipc.call(this, columns, rows);
    };
    t.after(() => (ParquetWriter.prototype.ipc = ipc));
    const rows = function* () {
      // six phases of 10,000 rows: in phase k, column c<k> carries 1 KB of text and the others one character
      for (let id = 0; id < 60_000; id++) {
        const row: SourceRow = { id };
        for (let c = 0; c < 6; c++)
          row[`c${c}`] = c === Math.floor(id / 10_000) ? `${id} `.padEnd(1_000, 'lorem ') : 'x';
        yield row;
      }
    };
    const files = (await extractFiles(t, 'shift', 2 * 1024 * 1024, rows())).get('shift') ?? [];
    assert.ok(files.length <= 100, `${files.length} files`);
    assert.ok(Math.min(...sizes.slice(0, -1)) >= 400, `rows per batch: ${sizes.join(', ')}`);
  });

  test('each loader file comes with the bytes of its large values (32 KB or more), none for small ones however wide', async (t) => {
    // DUCKDB_MEMORY_LIMIT=auto counts these: DuckDB can't evict large values before the commit, small ones it can
    function* rows(): Generator<SourceRow> {
      for (let r = 0; r < 300; r++) {
        const row: SourceRow = { id: r };
        for (let c = 0; c < 200; c++) row[`c${c}`] = 'x'.repeat(100); // a wide row of small values
        // every 10th row: one value of 40,000 bytes (large) and one of 30,000 (not)
        if (r % 10 === 9) Object.assign(row, { body: 'é'.repeat(20_000), note: 'n'.repeat(30_000) });
        yield row;
      }
    }
    const large: number[] = [];
    await extractFiles(t, 'docs', 64 * 1024 * 1024, rows(), 100, large);
    assert.deepEqual(large, [400_000, 400_000, 400_000], 'ten 40,000-byte values in each batch of 100 rows');
  });

  test('a child table cut into many batches by the byte budget while its root table is not: every child keeps its parent', async (t) => {
    // each order has 1-8 lines of 20 columns: the child table reaches the budget many times over
    // while the root's batch stays open, so the files of the two interleave
    function* orders(): Generator<SourceRow> {
      for (let r = 0; r < 6_000; r++) {
        const lines = Array.from({ length: 1 + (r % 8) }, (_, i) =>
          Object.fromEntries([['n', i], ...Array.from({ length: 19 }, (_, c) => [`c${c}`, r + c])]),
        );
        yield { id: r, note: `order ${r}`, lines };
      }
    }
    const files = await extractFiles(t, 'orders', 512 * 1024, orders());

    const roots = files.get('orders') ?? [];
    const children = files.get('orders__lines') ?? [];
    assert.ok(children.length >= 3, `${children.length} child files`);
    const [check] = await query(
      ':memory:',
      `SELECT (SELECT count(*) FROM read_parquet(${parquetList(roots)})) AS roots,
              count(*) AS lines,
              count(o._dlt_id) AS linked,
              sum(l.c0 - o.id) AS drift
       FROM read_parquet(${parquetList(children)}) AS l
       LEFT JOIN read_parquet(${parquetList(roots)}) AS o ON o._dlt_id = l._dlt_parent_id`,
      { write: true },
    );
    let lines = 0;
    for (let r = 0; r < 6_000; r++) lines += 1 + (r % 8);
    // every line found its order, and the order it found is its own (c0 = the order's id)
    assert.deepEqual(check, { roots: 6_000n, lines: BigInt(lines), linked: BigInt(lines), drift: 0n });
  });
});

describe('load: DuckDB memory follows the columns loaded', () => {
  test('a 600-column table loads with the default DUCKDB_MEMORY_LIMIT (auto)', async (t) => {
    const dir = await tempDir(t);
    const summary = await runFlight({
      env: { LOCAL_DATA_DIR: dir, WRITE_DISPOSITION: 'append', TABLE_NAME: 'wide' },
      source: () => wideRows(3_000, 600),
      log: () => {},
    });
    assert.equal(summary.status, 'succeeded', summary.error);
    const [row] = await query(
      dbFile(dir),
      'SELECT count(*) AS n, sum(c599) AS s FROM flights_demo.flights_demo_dlt.wide',
    );
    let s = 0n;
    for (let r = 0; r < 3_000; r++) s += BigInt((r + 599) % 1000);
    assert.deepEqual(row, { n: 3_000n, s });
  });

  test('with a limit too small, the run fails naming DUCKDB_MEMORY_LIMIT and a limit that would do', async (t) => {
    const dir = await tempDir(t);
    const summary = await runFlight({
      env: { LOCAL_DATA_DIR: dir, WRITE_DISPOSITION: 'append', TABLE_NAME: 'wide', DUCKDB_MEMORY_LIMIT: '64MB' },
      source: () => wideRows(3_000, 600),
      log: () => {},
    });
    assert.equal(summary.status, 'failed');
    assert.equal(summary.exitCode, 1);
    assert.match(summary.error ?? '', /ran out of memory .* with DUCKDB_MEMORY_LIMIT=64MB/);
    const advice = /set DUCKDB_MEMORY_LIMIT=(\d+)MB or more/.exec(summary.error ?? '');
    assert.ok(advice && Number(advice[1]) >= 450, summary.error);
    // one transaction: nothing of the failed load is left
    const tables = await query(
      dbFile(dir),
      `SELECT table_name FROM information_schema.tables WHERE table_name = 'wide'`,
    );
    assert.deepEqual(tables, []);
  });
  // DuckDB keeps the values of a table's open row group in memory until the commit; values of a megabyte
  // or more can't be evicted as small ones are, so 140 MB of them failed at COMMIT with 128 MB
  const BODY = 'x'.repeat(1_000_000);
  /** 170 rows of a 1 MB text each into table docs; `env` on top of append. */
  const loadDocs = (dir: string, env: Record<string, string> = {}) =>
    runFlight({
      env: { LOCAL_DATA_DIR: dir, WRITE_DISPOSITION: 'append', TABLE_NAME: 'docs', ...env },
      source: function* () {
        for (let id = 0; id < 170; id++) yield { id, body: `${id}:${BODY}` };
      },
      log: () => {},
    });
  const docsLoaded = async (dir: string) =>
    (
      await query(
        dbFile(dir),
        'SELECT count(*)::INT AS n, sum(length(body))::BIGINT AS chars FROM flights_demo.flights_demo_dlt.docs',
      )
    )[0];
  let chars = 0n;
  for (let id = 0; id < 170; id++) chars += BigInt(`${id}:`.length + BODY.length);

  for (const disposition of ['append', 'merge'])
    test(`rows of large values (170 of 1 MB) load with the default DUCKDB_MEMORY_LIMIT (auto): ${disposition}`, async (t) => {
      const dir = await tempDir(t);
      // merge goes through a staging table, copied into the table at the end: the values are held twice
      const summary = await loadDocs(dir, { WRITE_DISPOSITION: disposition, PRIMARY_KEY: 'id' });
      assert.equal(summary.status, 'succeeded', summary.error);
      assert.deepEqual(await docsLoaded(dir), { n: 170, chars });
    });

  test('large values over a set limit fail naming DUCKDB_MEMORY_LIMIT, and the limit it names loads them', async (t) => {
    const dir = await tempDir(t);
    const failed = await loadDocs(dir, { DUCKDB_MEMORY_LIMIT: '128MB' });
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /ran out of memory .* with DUCKDB_MEMORY_LIMIT=128MB/);
    const advice = /set DUCKDB_MEMORY_LIMIT=(\d+(?:MB|GB)) or more/.exec(failed.error ?? '');
    assert.ok(advice, failed.error);
    const retried = await loadDocs(dir, { DUCKDB_MEMORY_LIMIT: advice[1]! });
    assert.equal(retried.status, 'succeeded', retried.error);
    assert.deepEqual(await docsLoaded(dir), { n: 170, chars });
  });
});

describe('extract keeps pace with the load', () => {
  test('loader files waiting on disk stay few however many batches a run writes', async (t) => {
    const tmp = await tempDir(t);
    const work = join(tmp, 'flight-dlt-ingest');
    let [most, looks] = [0, 0];
    function* rows(): Generator<SourceRow> {
      for (let id = 0; id < 30_000; id++) {
        if (id % 100 === 0 && existsSync(work))
          for (const run of readdirSync(work)) {
            const files = readdirSync(join(work, run)).filter((f) => f.endsWith('.parquet')).length;
            [most, looks] = [Math.max(most, files), looks + 1];
          }
        yield { id, name: `row ${id}`, amount: id / 4 };
      }
    }
    const saved = process.env.TMPDIR;
    process.env.TMPDIR = tmp; // the working folder, where loader files wait for DuckDB
    t.after(() => (saved === undefined ? delete process.env.TMPDIR : (process.env.TMPDIR = saved)));
    const dir = await tempDir(t);
    const summary = await runFlight({
      env: { LOCAL_DATA_DIR: dir, WRITE_DISPOSITION: 'append', TABLE_NAME: 'paced', BATCH_ROWS: '100' },
      source: rows,
      log: () => {},
    });
    assert.equal(summary.status, 'succeeded', summary.error);
    // 300 files, written far faster than DuckDB loads them: at most one being written, one loading, one waiting
    assert.ok(looks >= 250, `${looks} looks at the working folder`);
    assert.ok(most >= 1 && most <= 3, `${most} loader files on disk at once`);
    const [row] = await query(dbFile(dir), 'SELECT count(*)::INT AS n FROM flights_demo.flights_demo_dlt.paced');
    assert.deepEqual(row, { n: 30_000 });
  });

  test('a load that fails stops extract within a few batches, not at the end of the source', async (t) => {
    const dir = await tempDir(t);
    // a table DuckDB refuses rows from: ids of 1,000 and more fail the CHECK, in the 11th file
    await query(
      dbFile(dir),
      'CREATE SCHEMA flights_demo_dlt; CREATE TABLE flights_demo_dlt.paced (id BIGINT CHECK (id < 1000))',
      { write: true },
    );
    let pulled = 0;
    async function* rows(): AsyncGenerator<SourceRow> {
      for (let id = 0; id < 20_000; id++) {
        if (id % 100 === 0) await new Promise((r) => setTimeout(r, 10)); // slower than DuckDB, as an API is
        pulled++;
        yield { id };
      }
    }
    const summary = await runFlight({
      env: { LOCAL_DATA_DIR: dir, WRITE_DISPOSITION: 'append', TABLE_NAME: 'paced', BATCH_ROWS: '100' },
      source: rows,
      log: () => {},
    });
    assert.equal(summary.status, 'failed');
    assert.match(summary.error ?? '', /CHECK constraint/);
    assert.ok(pulled <= 1_500, `the source was read to row ${pulled} after the load of rows 1,000-1,099 failed`);
  });
});
