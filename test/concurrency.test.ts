// Concurrent runs against one local database file. DuckDB lets one process at a time open the
// file for writing; a second run waits up to LOCK_TIMEOUT_S for it, then fails with a clear
// "another run holds the database" message (exit 1). Either way no ledger row is lost or
// corrupted, and the first run's data is intact.
// (A run that could not open the database cannot write its own failed ledger row: its failure
// is reported on stdout/stderr only.)
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runFlight } from '../flight.ts';
import {
  dbFile,
  githubRepo,
  listDir,
  query,
  sleep,
  startFakeGitHub,
  tempDir,
  testEnv,
  type Env,
  type RawHandler,
} from './support.ts';
import { SLOW_FLIGHT, startChild } from './fixtures/child.ts';

const LOCK_MESSAGE = /another run holds the database/;
/** The ts= field of a `@flight-run` line, in ms. */
const tsOf = (line: string | undefined): number => Date.parse(/ ts=(\S+)/.exec(line ?? '')?.[1] ?? 'NaN');

async function ledger(dataDir: string) {
  return query(dbFile(dataDir), 'SELECT * FROM main.dlt_ingest_runs ORDER BY run_at');
}

describe('two CLI runs on the same database at the same time', () => {
  test('generous LOCK_TIMEOUT_S: the second waits for the first, both succeed, two intact ledger rows', async (t) => {
    const dir = await tempDir(t, 'flight-conc-');
    // GitHub answers only once both runs are trying to open the database, and then slowly: the run
    // that got the database holds it (fetching happens with the database open) while the other waits.
    let bothTrying: Promise<unknown> = new Promise(() => {});
    const slowOnceBothTry: RawHandler = async (req, res) => {
      await bothTrying;
      await sleep(400);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(githubRepo(new URL(req.url ?? '/', 'http://x').pathname.slice('/repos/'.length))));
    };
    const gh = await startFakeGitHub(t, {
      '/repos/duckdb/duckdb': slowOnceBothTry,
      '/repos/dlt-hub/dlt': slowOnceBothTry,
    });
    const dataDir = join(dir, 'data');
    const env: Env = {
      ...testEnv(dataDir, gh, { GITHUB_REPOS: 'duckdb/duckdb,dlt-hub/dlt', LOCK_TIMEOUT_S: '60' }),
      TMPDIR: join(dir),
    };
    const a = startChild('cli', env, { t });
    const b = startChild('cli', env, { t });
    bothTrying = Promise.all([
      a.waitForLine(/^@flight-run destination running/),
      b.waitForLine(/^@flight-run destination running/),
    ]);
    const [ra, rb] = await Promise.all([a.exited, b.exited]);
    assert.equal(ra.code, 0, `first: ${ra.stderr}`);
    assert.equal(rb.code, 0, `second: ${rb.stderr}`);

    // They did overlap: one opened the database only after the other had finished with it.
    const opened = (r: typeof a) => tsOf(r.lines.find((l) => l.startsWith('@flight-run destination ok')));
    const done = (r: typeof a) => tsOf(r.lines.find((l) => l.startsWith('@flight-run ledger ok')));
    const [first, waiter] = opened(a) <= opened(b) ? [a, b] : [b, a];
    assert.ok(
      opened(waiter) >= done(first) - 5,
      `the second opened the database (${opened(waiter)}) after the first wrote its ledger row (${done(first)})`,
    );
    const waitedMs = opened(waiter) - tsOf(waiter.lines.find((l) => l.startsWith('@flight-run destination running')));
    assert.ok(waitedMs >= 300, `the second waited for the lock (${waitedMs} ms)`);

    const runs = await ledger(dataDir);
    assert.deepEqual(
      runs.map((r) => r.status),
      ['succeeded', 'succeeded'],
    );
    assert.equal(new Set(runs.map((r) => r.load_id)).size, 2, 'two distinct runs');
    for (const r of runs) {
      assert.equal(r.rows_loaded, 2n);
      assert.equal(r.error, null);
      assert.equal(r.pipeline_name, 'flights_dlt_ingest');
    }
    const rows = await query(dbFile(dataDir), 'SELECT repo FROM flights_demo_dlt.github_repo_stats ORDER BY repo');
    assert.deepEqual(
      rows.map((r) => r.repo),
      ['dlt-hub/dlt', 'duckdb/duckdb'],
      'merge: one row per repo',
    );
    assert.deepEqual(await listDir(join(dir, 'flight-dlt-ingest')), [], 'no working folder left');
  });

  test('LOCK_TIMEOUT_S=0.5 while a slow run holds the database: the second fails with "another run holds the database", exit 1; the first run is intact', async (t) => {
    const dir = await tempDir(t, 'flight-conc-');
    const gh = await startFakeGitHub(t);
    const dataDir = join(dir, 'data');
    const base: Env = {
      LOCAL_DATA_DIR: dataDir,
      TMPDIR: dir,
      TABLE_NAME: 't',
      PRIMARY_KEY: 'id',
      GITHUB_API_URL: gh.url,
    };
    // The holder: opens the database, then waits inside extract until the test lets it go on.
    const go = join(dir, 'go');
    const holder = startChild(
      SLOW_FLIGHT,
      { ...base, FIXTURE_HOLD_UNTIL: go, FIXTURE_ROWS: '500', FIXTURE_RUN: '1' },
      { t },
    );
    await holder.waitForLine(/^@flight-run extract running/);
    const started = performance.now();
    const second = startChild('cli', { ...base, LOCK_TIMEOUT_S: '0.5', GITHUB_REPOS: 'duckdb/duckdb' }, { t });
    const rs = await second.exited;
    const secondMs = performance.now() - started;
    t.diagnostic(`second run stderr: ${rs.stderr.trim()}`);
    assert.equal(rs.code, 1, `exit 1; stdout: ${rs.stdout}\nstderr: ${rs.stderr}`);
    assert.match(rs.stderr, LOCK_MESSAGE);
    assert.ok(rs.stderr.includes(dbFile(dataDir)), 'names the database file');
    assert.match(rs.stderr, /LOCK_TIMEOUT_S/, 'names the knob');
    assert.equal(
      holder.child.exitCode,
      null,
      `the second gave up while the first still held the database (after ${Math.round(secondMs)} ms)`,
    );
    assert.equal(gh.requests.length, 0, 'the second run never reached its source');

    await writeFile(go, '');
    const rh = await holder.exited;
    assert.equal(rh.code, 0, `the holder succeeds: ${rh.stderr}`);
    const runs = await ledger(dataDir);
    assert.equal(runs.length, 1, "exactly the holder's ledger row (the locked-out run could not write one)");
    assert.equal(runs[0]?.status, 'succeeded');
    assert.equal(runs[0]?.load_id, holder.summary()?.loadId);
    assert.equal(runs[0]?.rows_loaded, 500n);
    assert.equal(runs[0]?.error, null);
    const n = await query(
      dbFile(dataDir),
      'SELECT count(*)::INT AS n, count(DISTINCT i)::INT AS d, min(run)::INT AS r FROM flights_demo_dlt.t',
    );
    assert.deepEqual(n, [{ n: 500, d: 500, r: 1 }], "the holder's data is complete");
    assert.deepEqual(await listDir(join(dir, 'flight-dlt-ingest')), [], 'no working folder left by either run');
  });

  test('three runs at once with a generous LOCK_TIMEOUT_S: all succeed one after another, three ledger rows, all data', async (t) => {
    const dir = await tempDir(t, 'flight-conc-');
    const dataDir = join(dir, 'data');
    const base: Env = {
      LOCAL_DATA_DIR: dataDir,
      TMPDIR: dir,
      TABLE_NAME: 't',
      WRITE_DISPOSITION: 'append',
      LOCK_TIMEOUT_S: '60',
      FIXTURE_ROWS: '2000',
      FIXTURE_HOLD_MS: '300',
      GITHUB_API_URL: 'http://127.0.0.1:9',
    };
    const children = [1, 2, 3].map((run) => startChild(SLOW_FLIGHT, { ...base, FIXTURE_RUN: String(run) }, { t }));
    const results = await Promise.all(children.map((c) => c.exited));
    results.forEach((r, i) => assert.equal(r.code, 0, `run ${i + 1}: ${r.stderr}`));
    const runs = await ledger(dataDir);
    assert.deepEqual(
      runs.map((r) => r.status),
      ['succeeded', 'succeeded', 'succeeded'],
    );
    assert.deepEqual(runs.map((r) => r.load_id).sort(), children.map((c) => c.summary()?.loadId).sort());
    const perRun = await query(
      dbFile(dataDir),
      'SELECT run::INT AS run, count(*)::INT AS n, count(DISTINCT i)::INT AS d FROM flights_demo_dlt.t GROUP BY run ORDER BY run',
    );
    assert.deepEqual(
      perRun,
      [1, 2, 3].map((run) => ({ run, n: 2000, d: 2000 })),
    );
  });
});

describe('two runs in one process', () => {
  test('runFlight twice at once on one file: with LOCK_TIMEOUT_S=0.5 the second fails clearly; with a generous one both succeed', async (t) => {
    const dir = await tempDir(t, 'flight-conc-');
    const dataDir = join(dir, 'data');
    const env = (extra: Env) =>
      testEnv(dataDir, 'http://127.0.0.1:9', {
        TABLE_NAME: 't',
        PRIMARY_KEY: 'id',
        WRITE_DISPOSITION: 'append',
        ...extra,
      });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let opened!: () => void;
    const holding = new Promise<void>((r) => (opened = r));
    const slow = async function* () {
      opened();
      await gate;
      yield { id: 1 };
    };
    const first = runFlight({ env: env({}), source: slow, log: () => {} });
    await holding;
    const blocked = await runFlight({ env: env({ LOCK_TIMEOUT_S: '0.5' }), source: () => [{ id: 2 }], log: () => {} });
    assert.equal(blocked.status, 'failed');
    assert.equal(blocked.exitCode, 1);
    assert.match(blocked.error ?? '', LOCK_MESSAGE);

    const waiting = runFlight({ env: env({ LOCK_TIMEOUT_S: '30' }), source: () => [{ id: 3 }], log: () => {} });
    setTimeout(release, 300);
    const [a, b] = await Promise.all([first, waiting]);
    assert.equal(a.status, 'succeeded', a.error);
    assert.equal(b.status, 'succeeded', b.error);
    assert.deepEqual(
      (await ledger(dataDir)).map((r) => r.status),
      ['succeeded', 'succeeded'],
    );
    assert.deepEqual(
      (await query(dbFile(dataDir), 'SELECT id::INT AS id FROM flights_demo_dlt.t ORDER BY id')).map((r) => r.id),
      [1, 3],
    );
  });
});
