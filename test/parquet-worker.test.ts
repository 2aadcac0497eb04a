// Write Parquet: the worker that encodes loader files yields the CPU to the main thread, which runs the
// source and normalizes every row (the run's critical path).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as arrow from 'apache-arrow';
import { ParquetWriter, runFlight } from '../flight.ts';
import { dbFile, query, tempDir } from './support.ts';

/** Each thread of this process and its nice value (field 19 of /proc/<pid>/task/<tid>/stat). */
function niceByThread(): Map<number, number> {
  const nice = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    nice.set(Number(tid), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]));
  }
  return nice;
}

test('the Parquet worker runs at nice 10 while the main thread keeps its priority (Linux)', async (t) => {
  assert.equal(process.platform, 'linux', 'this test reads /proc: run it on Linux');
  const dir = await tempDir(t);
  const before = niceByThread();
  let during = new Map<number, number>();
  const summary = await runFlight({
    env: {
      LOCAL_DATA_DIR: dir,
      DATASET_NAME: 'flight',
      TABLE_NAME: 'rows',
      WRITE_DISPOSITION: 'append',
      BATCH_ROWS: '1000',
    },
    source: function* () {
      for (let i = 0; i < 5000; i++) {
        // the worker is alive after the first batch has been handed over
        if (i === 4000) during = niceByThread();
        yield { id: i, name: `row ${i}` };
      }
    },
  });
  assert.equal(summary.status, 'succeeded', summary.error ?? '');
  const [rows] = await query(dbFile(dir), 'SELECT count(*)::INT AS n FROM flights_demo.flight.rows');
  assert.equal(rows?.n, 5000);
  assert.equal(during.get(process.pid), before.get(process.pid) ?? 0, 'the main thread keeps its nice value');
  const lowered = [...during].filter(([tid, nice]) => !before.has(tid) && nice === 10);
  assert.equal(lowered.length, 1, `one new thread at nice 10: ${JSON.stringify([...during])}`);
  assert.ok(
    [...during].every(([tid, nice]) => tid === lowered[0]![0] || nice === (before.get(tid) ?? 0)),
    'no other thread is lowered',
  );
});

// A batch's column buffers (and its IPC buffer, and the row ids' bytes) are reused by the next batch
// of the table: nothing of one batch may show in another.
test('batches that reuse the last batch buffers carry no value over: nulls, false, shorter text, skipped columns, ids', async (t) => {
  const dir = await tempDir(t);
  const BATCH = 50;
  const batchOf = (i: number) => Math.floor(i / BATCH);
  /** Row i as the source yields it; each batch has its own pattern. */
  const row = (i: number): Record<string, unknown> => {
    const b = batchOf(i);
    const r: Record<string, unknown> = { id: i };
    if (b === 0) Object.assign(r, { flag: true, txt: `${'long '.repeat(40)}${i}`, num: i + 0.5, tags: [i, i + 1] });
    if (b === 1) Object.assign(r, i % 2 ? { flag: false } : {}, i % 3 ? { txt: `s${i}` } : {});
    if (b === 2) Object.assign(r, { num: -i - 0.25, tags: [i] }, i % 4 === 0 ? { flag: false, txt: '' } : {});
    if (b === 3) Object.assign(r, i % 2 ? { txt: 'é'.repeat(3) } : {});
    return r;
  };
  const total = 4 * BATCH + 7; // a last, short batch after four full ones
  const summary = await runFlight({
    env: {
      LOCAL_DATA_DIR: dir,
      DATASET_NAME: 'flight',
      TABLE_NAME: 'rows',
      WRITE_DISPOSITION: 'append',
      BATCH_ROWS: String(BATCH),
    },
    source: function* () {
      for (let i = 0; i < total; i++) yield row(i);
    },
  });
  assert.equal(summary.status, 'succeeded', summary.error ?? '');
  const db = dbFile(dir);
  const loaded = await query(db, 'SELECT id::INT AS id, flag, txt, num FROM flights_demo.flight.rows ORDER BY id');
  const expected = Array.from({ length: total }, (_, i) => {
    const r = row(i);
    return { id: i, flag: r.flag ?? null, txt: r.txt ?? null, num: r.num ?? null };
  });
  assert.deepEqual(loaded, expected);
  const [ids] = await query(
    db,
    'SELECT count(DISTINCT _dlt_id)::INT AS n, min(length(_dlt_id))::INT AS short FROM flights_demo.flight.rows',
  );
  assert.deepEqual(ids, { n: total, short: 17 }, 'every row has its own id of the full width');
  const tags = await query(
    db,
    `SELECT r.id::INT AS id, t.value::INT AS value FROM flights_demo.flight.rows__tags AS t
     JOIN flights_demo.flight.rows AS r ON r._dlt_id = t._dlt_parent_id ORDER BY id, t._dlt_list_idx`,
  );
  const expectedTags = expected.flatMap(({ id }) =>
    ((row(id).tags as number[] | undefined) ?? []).map((value) => ({ id, value })),
  );
  assert.deepEqual(tags, expectedTags, 'each child row joins the root row it came with');
});

// A run hands the worker a batch long after it started: a worker that has stopped by then (it failed to
// start, or died) must fail that write, not leave the run waiting for an answer that never comes.
test('a write to a Parquet worker that has stopped fails at once, naming the writer, instead of hanging', async (t) => {
  const dir = await tempDir(t);
  const ipc = () => arrow.tableToIPC(arrow.tableFromArrays({ id: Int32Array.of(1, 2, 3) }), 'stream');
  const writer = new ParquetWriter();
  await writer.write(join(dir, 'first.parquet'), ipc()); // a working worker writes
  assert.ok(existsSync(join(dir, 'first.parquet')));
  await writer.close();
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error('the write neither succeeded nor failed within 10 s')), 10_000);
  });
  try {
    await assert.rejects(Promise.race([writer.write(join(dir, 'second.parquet'), ipc()), hung]), (e: Error) => {
      assert.match(e.message, /Parquet writer.*(stopped|closed)/);
      return true;
    });
  } finally {
    clearTimeout(timer);
  }
  assert.ok(!existsSync(join(dir, 'second.parquet')));
});

// The worker hands each batch's IPC buffer back for the next batches to write into; one huge batch (a
// single large value) must not leave its buffer held, unused, for the rest of the run.
test('after a batch far over the byte budget, the writer does not keep its IPC buffer for later batches', async (t) => {
  const dir = await tempDir(t);
  const writer = new ParquetWriter();
  t.after(() => writer.close());
  const text = (s: string) => arrow.vectorFromArray([s], new arrow.Utf8()).data[0]!;
  const huge = 80 * 1024 * 1024; // over the 64 MiB batch budget
  await writer.write(join(dir, 'huge.parquet'), writer.ipc([['t', text('x'.repeat(huge))]], 1));
  // the worker gave the buffer back before it answered the write: the next batch would start from it
  const next = writer.ipc([['t', text('small')]], 1);
  assert.ok(
    next.buffer.byteLength <= 64 * 1024 * 1024,
    `the next batch is written into a buffer of ${next.buffer.byteLength} bytes`,
  );
  await writer.write(join(dir, 'next.parquet'), next);
  const [row] = await query(':memory:', `SELECT t FROM read_parquet('${join(dir, 'next.parquet')}')`, { write: true });
  assert.deepEqual(row, { t: 'small' });
});

test('a batch of large text goes into an IPC buffer of about its size, not a doubling one', async (t) => {
  const dir = await tempDir(t);
  const writer = new ParquetWriter();
  t.after(() => writer.close());
  // 20,000 values of 1,000 characters: 20 MB, which a buffer doubling as the stream was written held in 40 MB
  const bodies = Array.from({ length: 20_000 }, (_, i) => `${i} `.padEnd(1_000, 'lorem ipsum '));
  const batch = writer.ipc([['body', arrow.vectorFromArray(bodies, new arrow.Utf8()).data[0]!]], bodies.length);
  assert.ok(batch.length > 20_000_000, `${batch.length} bytes of stream`);
  assert.ok(
    batch.buffer.byteLength <= batch.length * 1.2,
    `a stream of ${batch.length} bytes in a buffer of ${batch.buffer.byteLength}`,
  );
  await writer.write(join(dir, 'bodies.parquet'), batch);
  const [row] = await query(
    ':memory:',
    `SELECT count(*)::INT AS n, sum(length(body))::INT AS chars FROM read_parquet('${join(dir, 'bodies.parquet')}')`,
    { write: true },
  );
  assert.deepEqual(row, { n: 20_000, chars: 20_000_000 });
});
