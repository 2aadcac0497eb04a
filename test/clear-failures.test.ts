// Failures a careless user or an odd source meets, each told in one clear line that names the cause
// (issue 10): cancellation by SIGTERM/SIGINT, credentials in GITHUB_API_URL, a ledger the Python Flight
// left, data nested deeper than anything can recurse, sources returning the wrong thing, hand-made
// columns of narrower types, a pipeline state that can't be decoded, DuckDB's reserved names.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cancelOnSignals, runFlight, type Env, type Row as SourceRow, type Source } from '../flight.ts';
import { startChild } from './fixtures/child.ts';
import { dbFile, query, reply, runCli, startFakeGitHub, tempDir, testEnv, type Row } from './support.ts';

const DS = 'flights_demo_dlt';
const quiet = (): void => {};
const run = (dir: string, source: Source, env: Env = {}) =>
  runFlight({ env: { LOCAL_DATA_DIR: dir, TABLE_NAME: 't', PRIMARY_KEY: 'id', ...env }, source, log: quiet });
const sql = (dir: string, text: string): Promise<Row[]> => query(dbFile(dir), text);

describe('SIGTERM / SIGINT cancel the run: rolled back, a failed ledger row, exit 143 / 130', () => {
  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    test(`CLI, ${signal} while a request hangs: exit ${code} within seconds, "cancelled by ${signal}" in stderr and the ledger, table unchanged`, async (t) => {
      const dir = await tempDir(t);
      const gh = await startFakeGitHub(t);
      const env = testEnv(dir, gh, { GITHUB_REPOS: 'duckdb/duckdb', HTTP_TIMEOUT_S: '60' });
      assert.equal((await runCli(env)).code, 0);
      gh.route('/repos/duckdb/duckdb', reply.slow(60_000));
      const child = startChild('cli', env, { t });
      await child.waitForLine(/@flight-run extract running done=0/);
      const sent = performance.now();
      child.child.kill(signal);
      const res = await child.exited;
      assert.equal(res.code, code, res.stderr);
      assert.ok(performance.now() - sent < 5000, 'stops within a few seconds');
      assert.match(res.stderr, new RegExp(`cancelled by ${signal}`));
      const ledger = await sql(dir, `SELECT status, error FROM main.dlt_ingest_runs ORDER BY run_at`);
      assert.deepEqual(
        ledger.map((r) => r.status),
        ['succeeded', 'failed'],
      );
      assert.match(String(ledger[1]!.error), new RegExp(`cancelled by ${signal}`));
      assert.deepEqual(await sql(dir, `SELECT count(*) AS n FROM ${DS}.github_repo_stats`), [{ n: 1n }]);
    });
  }

  test('in process: an abort mid-load (DuckDB busy) rolls back the whole run and records it as cancelled', async (t) => {
    const dir = await tempDir(t);
    const cancel = new AbortController();
    const source = function* () {
      for (let i = 0; i < 300_000; i++) {
        if (i === 250_000) cancel.abort('SIGTERM');
        yield { id: i, text: `row ${i}` };
      }
    };
    const summary = await runFlight({
      env: { LOCAL_DATA_DIR: dir, TABLE_NAME: 't', WRITE_DISPOSITION: 'append', BATCH_ROWS: '50000' },
      source,
      log: quiet,
      signal: cancel.signal,
    });
    assert.equal(summary.status, 'failed');
    assert.equal(summary.error, 'cancelled by SIGTERM');
    assert.deepEqual(await sql(dir, `SELECT status, error FROM main.dlt_ingest_runs`), [
      { status: 'failed', error: 'cancelled by SIGTERM' },
    ]);
    assert.deepEqual(await sql(dir, `SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 't'`), [
      { n: 0n },
    ]);
  });

  test('a source that never yields again is cancelled all the same', async (t) => {
    const dir = await tempDir(t);
    const cancel = new AbortController();
    const source = async function* () {
      yield { id: 1 };
      setTimeout(() => cancel.abort('SIGINT'), 100);
      await new Promise(() => {}); // a request without a timeout, say
    };
    const started = performance.now();
    const cancelled = await runFlight({
      env: { LOCAL_DATA_DIR: dir, TABLE_NAME: 't', PRIMARY_KEY: 'id' },
      source,
      log: quiet,
      signal: cancel.signal,
    });
    assert.equal(cancelled.error, 'cancelled by SIGINT');
    assert.ok(performance.now() - started < 5000);
  });

  test('the first signal cancels, a second exits at once with 128 + its number', () => {
    const exits: number[] = [];
    const handle = cancelOnSignals((code) => void exits.push(code));
    try {
      assert.equal(handle.signal.aborted, false);
      process.emit('SIGTERM');
      assert.equal(handle.signal.aborted, true);
      assert.equal(handle.signal.reason, 'SIGTERM');
      assert.equal(handle.exitCode(), 143);
      assert.deepEqual(exits, []);
      process.emit('SIGINT');
      assert.deepEqual(exits, [130]);
    } finally {
      handle.dispose();
    }
    assert.equal(process.listenerCount('SIGTERM'), 0);
  });
});

describe('credentials in GITHUB_API_URL', () => {
  test('are a config error saying to use GITHUB_TOKEN; the password is printed nowhere', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const url = gh.url.replace('http://', 'http://octo:hunter2-secret@');
    const res = await runCli(testEnv(dir, url));
    assert.equal(res.code, 2);
    assert.match(res.stderr, /GITHUB_API_URL.*(user name|password|credentials).*GITHUB_TOKEN/);
    assert.ok(!`${res.stdout}${res.stderr}`.includes('hunter2-secret'), 'the password is not printed');
    assert.equal(gh.requests.length, 0);
    assert.equal(existsSync(dbFile(dir)), false);
  });

  test("a source's URL with credentials is redacted in the error, the log and the ledger", async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t, { '/nope': reply.status(404) });
    const lines: string[] = [];
    const summary = await runFlight({
      env: { LOCAL_DATA_DIR: dir, TABLE_NAME: 't', PRIMARY_KEY: 'id' },
      source: async (ctx) => [
        (await ctx.getJson(gh.url.replace('//', '//user:pa55word@') + '/nope', 'thing')) as SourceRow,
      ],
      log: (l) => lines.push(l),
    });
    assert.equal(summary.status, 'failed');
    assert.match(summary.error ?? '', /404/);
    const everything = `${summary.error}\n${lines.join('\n')}\n${JSON.stringify(await sql(dir, 'SELECT error, load_summary FROM main.dlt_ingest_runs'))}`;
    assert.ok(!everything.includes('pa55word'), everything);
  });
});

describe('status on a ledger the Python Flight left (its five columns)', () => {
  test('shows its runs, the missing columns empty, exit 0, no stack trace', async (t) => {
    const dir = await tempDir(t);
    await query(
      dbFile(dir),
      `CREATE TABLE main.dlt_ingest_runs (run_at TIMESTAMPTZ, pipeline_name VARCHAR, destination_dataset VARCHAR,
         destination_table VARCHAR, load_summary VARCHAR);
       INSERT INTO main.dlt_ingest_runs VALUES ('2025-01-02 03:04:05+00', 'flights_dlt_ingest', 'flights_demo_dlt',
         'github_repo_stats', 'python flight summary');`,
      { write: true },
    );
    const res = await runCli({ LOCAL_DATA_DIR: dir }, { args: ['status'], cwd: dir });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stderr, '');
    assert.match(res.stdout, /2025-01-02T03:04:05/);
    assert.match(res.stdout, /github_repo_stats/);
  });

  test('a status that fails (an unreadable file) prints one line, no stack trace', async (t) => {
    const dir = await tempDir(t);
    await import('node:fs/promises').then((fs) => fs.writeFile(dbFile(dir), 'not a database'));
    const res = await runCli({ LOCAL_DATA_DIR: dir }, { args: ['status'], cwd: dir });
    assert.equal(res.code, 1);
    assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
    assert.match(res.stderr, /could not open/);
  });
});

describe('data nested deeper than anything can recurse', () => {
  const deep = (levels: number): SourceRow => {
    let o: SourceRow = { leaf: 1 };
    for (let i = 0; i < levels; i++) o = { a: o };
    return o;
  };

  test('an object 5,000 deep is stored as JSON below MAX_TABLE_NESTING, whatever it is', async (t) => {
    for (const nesting of ['2', '1000']) {
      const dir = await tempDir(t);
      const summary = await run(dir, () => [{ id: 1, deep: deep(5000) }], { MAX_TABLE_NESTING: nesting });
      assert.equal(summary.status, 'succeeded', summary.error);
      const json = await sql(dir, `SELECT count(*) AS n FROM information_schema.columns WHERE data_type = 'JSON'`);
      assert.deepEqual(json, [{ n: 1n }], `MAX_TABLE_NESTING=${nesting}: one JSON column holds the rest`);
    }
  });

  test('the JSON text of a deep value is exact (read back equal)', async (t) => {
    const dir = await tempDir(t);
    const value = deep(5000);
    const summary = await run(dir, () => [{ id: 1, deep: value }], { MAX_TABLE_NESTING: '0' });
    assert.equal(summary.status, 'succeeded', summary.error);
    const [row] = await sql(dir, `SELECT deep::VARCHAR AS j FROM ${DS}.t`);
    assert.equal(String(row!.j).length, JSON.stringify(deep(100)).length + 4900 * '{"a":}'.length);
    assert.ok(String(row!.j).startsWith('{"a":{"a":') && String(row!.j).endsWith('{"leaf":1}' + '}'.repeat(5000)));
  });
});

describe('what a source returns', () => {
  test('a Promise of an array (an async function returning rows) works', async (t) => {
    const dir = await tempDir(t);
    const summary = await run(dir, async () => [{ id: 1 }, { id: 2 }]);
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.equal(summary.rowsLoaded, 2);
  });

  for (const [what, value] of [
    ['undefined', undefined],
    ['null', null],
    ['a number', 42],
    ['a string', 'rows'],
    ['a plain object', { id: 1 }],
    ['a Promise of undefined', Promise.resolve(undefined)],
  ] as const) {
    test(`${what}: fails with one line saying what a source must return`, async (t) => {
      const dir = await tempDir(t);
      const summary = await run(dir, (() => value) as unknown as Source);
      assert.equal(summary.status, 'failed');
      assert.match(summary.error ?? '', /a source must return.*(array|iterable).*got/i);
      assert.doesNotMatch(summary.error ?? '', /\n/);
    });
  }
});

describe('a table made by hand with narrower column types', () => {
  test('INTEGER, SMALLINT, REAL, TIMESTAMP, VARCHAR(10), DECIMAL(10,2) take the values that fit; others go to variants', async (t) => {
    const dir = await tempDir(t);
    await query(
      dbFile(dir),
      `CREATE SCHEMA ${DS}; CREATE TABLE ${DS}.t (id INTEGER, small SMALLINT, r REAL, seen TIMESTAMP, code VARCHAR(10),
         price DECIMAL(10,2))`,
      { write: true },
    );
    const rows = [
      { id: 1, small: 7, r: 0.5, seen: '2024-01-02T03:04:05+02:00', code: 'longer than ten', price: 3.25 },
      { id: 2, small: 70000, r: 0.1, seen: 'not a time', code: 'x', price: 123456789.5 },
    ];
    const merge = await run(dir, () => rows);
    assert.equal(merge.status, 'succeeded', merge.error);
    const got = await sql(
      dir,
      `SELECT id, small, small__v_bigint, r, r__v_double, seen::VARCHAR AS seen, seen__v_text, code, price::VARCHAR AS price,
              price__v_double FROM ${DS}.t ORDER BY id`,
    );
    assert.deepEqual(got, [
      {
        id: 1,
        small: 7,
        small__v_bigint: null,
        r: 0.5,
        r__v_double: null,
        seen: '2024-01-02 01:04:05',
        seen__v_text: null,
        code: 'longer than ten',
        price: '3.25',
        price__v_double: null,
      },
      {
        id: 2,
        small: null,
        small__v_bigint: 70000n,
        r: null,
        r__v_double: 0.1,
        seen: null,
        seen__v_text: 'not a time',
        code: 'x',
        price: null,
        price__v_double: 123456789.5,
      },
    ]);
    const again = await run(dir, () => [{ id: 1, small: 8 }]);
    assert.equal(again.status, 'succeeded', again.error);
    assert.deepEqual(await sql(dir, `SELECT id, small FROM ${DS}.t ORDER BY id`), [
      { id: 1, small: 8 },
      { id: 2, small: null },
    ]);
  });
});

describe('a pipeline state that cannot be decoded', () => {
  test('fails naming _dlt_pipeline_state, the pipeline and the version, and how to reset it', async (t) => {
    const dir = await tempDir(t);
    assert.equal((await run(dir, () => [{ id: 1 }])).status, 'succeeded');
    await query(dbFile(dir), `UPDATE ${DS}._dlt_pipeline_state SET state = 'garbage-that-is-not-zlib'`, {
      write: true,
    });
    const summary = await run(dir, () => [{ id: 2 }]);
    assert.equal(summary.status, 'failed');
    const error = summary.error ?? '';
    assert.match(error, /_dlt_pipeline_state/);
    assert.match(error, /flights_dlt_ingest/);
    assert.match(error, /version 1/); // the first stored version, as dlt numbers it
    assert.match(error, /DELETE FROM .*_dlt_pipeline_state/);
  });
});

describe("DuckDB's reserved names as DESTINATION_DATABASE", () => {
  for (const name of ['information_schema', 'pg_catalog']) {
    test(`${name}: a config error, exit 2, no file created`, async (t) => {
      const dir = await tempDir(t);
      const res = await runCli({ LOCAL_DATA_DIR: dir, DESTINATION_DATABASE: name });
      assert.equal(res.code, 2, res.stderr);
      assert.match(res.stderr, new RegExp(`DESTINATION_DATABASE="${name}"`));
      assert.equal(existsSync(join(dir, `${name}.duckdb`)), false);
    });
  }
});
