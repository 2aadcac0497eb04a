// Behaviour a code review found broken or at risk. The first five fail on the code before their fixes;
// the last two guard paths (a reserved hidden column, files still in flight when a run fails) whose
// failures were timing-dependent, so they pass on the old code too but would catch a regression.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { nextCronTime, parseCron, parseConfig, runFlight, type Row, type Source } from '../flight.ts';
import { dbFile, query, tempDir } from './support.ts';

const quiet = () => {};
const run = (dir: string, source: Source, env: Record<string, string> = {}) =>
  runFlight({ env: { LOCAL_DATA_DIR: join(dir, 'data'), PRIMARY_KEY: 'id', ...env }, source, log: quiet });

test('a value in a JSON column: JSON text is parsed into it, others go to variants (as dlt)', async (t) => {
  const dir = await tempDir(t);
  const env = { MAX_TABLE_NESTING: '0', WRITE_DISPOSITION: 'append' };
  assert.equal((await run(dir, () => [{ id: 1, payload: { a: [1, 2] } }], env)).status, 'succeeded');
  const second = await run(
    dir,
    () => [
      { id: 2, payload: 'n/a' },
      { id: 3, payload: 5 },
      { id: 4, payload: '{"b": "c"}' },
    ],
    env,
  );
  assert.equal(second.status, 'succeeded', second.error);
  const rows = await query(
    dbFile(join(dir, 'data')),
    `SELECT id, payload::VARCHAR AS payload, payload__v_text, payload__v_bigint
     FROM flights_demo_dlt.github_repo_stats ORDER BY id`,
  );
  assert.deepEqual(rows, [
    { id: 1n, payload: '{"a":[1,2]}', payload__v_text: null, payload__v_bigint: null },
    { id: 2n, payload: null, payload__v_text: 'n/a', payload__v_bigint: null },
    { id: 3n, payload: null, payload__v_text: null, payload__v_bigint: 5n },
    { id: 4n, payload: '{"b":"c"}', payload__v_text: null, payload__v_bigint: null },
  ]);
});

test('a primary key that is a nested field (owner__id) is found under its flattened column name', async (t) => {
  const dir = await tempDir(t);
  const rows = (v: string): Row[] => [{ owner: { id: 7 }, v }];
  assert.equal((await run(dir, () => rows('a'), { PRIMARY_KEY: 'owner__id' })).status, 'succeeded');
  const second = await run(dir, () => rows('b'), { PRIMARY_KEY: 'owner__id' });
  assert.equal(second.status, 'succeeded', second.error);
  assert.deepEqual(
    await query(dbFile(join(dir, 'data')), 'SELECT owner__id, v FROM flights_demo_dlt.github_repo_stats'),
    [{ owner__id: 7n, v: 'b' }],
  );
});

test('cron month names only in the month field, weekday names only in the weekday field', () => {
  assert.throws(() => parseCron('0 0 * mon *'), /month field "mon"/);
  assert.throws(() => parseCron('* * * * jan'), /day of week field "jan"/);
  const next = nextCronTime(parseCron('0 0 * feb sun'), new Date('2027-01-01T00:00:00Z'));
  assert.equal(next.toISOString(), '2027-02-07T00:00:00.000Z'); // the first Sunday of February 2027
});

test('an empty MOTHERDUCK_TOKEN falls back to motherduck_token', () => {
  const parsed = parseConfig({ MOTHERDUCK_TOKEN: '  ', motherduck_token: 'lower-case-token' });
  assert.ok('config' in parsed);
  assert.equal(parsed.config.MOTHERDUCK_TOKEN, 'lower-case-token');
});

test('an incremental cursor that is neither text nor a number fails the run, naming the cursor', async (t) => {
  const dir = await tempDir(t);
  const summary = await run(
    dir,
    (ctx) =>
      ctx
        .incremental<string>('updated_at', { initialValue: '2024-01-01' })
        .filter([{ id: 1, updated_at: new Date() } as Row]),
    { WRITE_DISPOSITION: 'append' },
  );
  assert.equal(summary.status, 'failed');
  assert.match(summary.error ?? '', /cursor "updated_at" must be a string or a number/);
});

test('a source key named like a hidden loader column (_dlt_root_seq) does not break an upsert with child rows', async (t) => {
  const dir = await tempDir(t);
  const summary = await run(dir, () => [{ id: 1, _dlt_root_seq: 99, tags: ['a'] }], { MERGE_STRATEGY: 'upsert' });
  assert.equal(summary.status, 'succeeded', summary.error);
  assert.deepEqual(
    await query(dbFile(join(dir, 'data')), 'SELECT value FROM flights_demo_dlt.github_repo_stats__tags'),
    [{ value: 'a' }],
  );
});

test('a run that fails while loader files are still being written commits nothing of them', async (t) => {
  const dir = await tempDir(t);
  const env = { WRITE_DISPOSITION: 'append', BATCH_ROWS: '1' };
  assert.equal((await run(dir, () => [{ id: 0 }], env)).status, 'succeeded');
  // Many one-row files in flight at the moment the source fails.
  const failing: Source = function* () {
    for (let id = 1; id <= 50; id++) yield { id };
    throw new Error('the source broke');
  };
  const failed = await run(dir, failing, env);
  assert.equal(failed.status, 'failed');
  await new Promise((r) => setTimeout(r, 300)); // anything still in flight would land now
  assert.deepEqual(await query(dbFile(join(dir, 'data')), 'SELECT id FROM flights_demo_dlt.github_repo_stats'), [
    { id: 0n },
  ]);
});
