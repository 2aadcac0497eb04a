// Write Parquet: the worker that encodes loader files yields the CPU to the main thread, which runs the
// source and normalizes every row (the run's critical path).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { runFlight } from '../flight.ts';
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
