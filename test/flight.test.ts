// End to end: runFlight and the CLI against the GitHub stand-in and real DuckDB files.
// Table contents, write dispositions, schema evolution, type inference, the run ledger,
// failures leaving data untouched, and importing flight.ts not starting a run.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { runFlight } from '../flight.ts';
import {
  FLIGHT_PATH,
  LEDGER_COLUMNS,
  columns,
  dbFile,
  expectedRow,
  githubRepo,
  listDir,
  query,
  runCli,
  runNodeScript,
  startFakeGitHub,
  tableNames,
  tempDir,
  testEnv,
  withoutDlt,
  type Row,
} from './support.ts';

const TABLE = 'flights_demo_dlt.github_repo_stats';
const DEMO_COLUMNS = [
  { name: '_dlt_id', type: 'VARCHAR' },
  { name: '_dlt_load_id', type: 'VARCHAR' },
  { name: 'default_branch', type: 'VARCHAR' },
  { name: 'forks', type: 'BIGINT' },
  { name: 'open_issues', type: 'BIGINT' },
  { name: 'pushed_at', type: 'TIMESTAMP WITH TIME ZONE' },
  { name: 'repo', type: 'VARCHAR' },
  { name: 'stars', type: 'BIGINT' },
];
const DEFAULT_ROWS = (): Row[] => [
  expectedRow('dlt-hub/dlt'),
  expectedRow('duckdb/duckdb'),
  expectedRow('motherduckdb/motherduck-docs'),
];

async function rows(dataDir: string, table = TABLE, orderBy = 'repo'): Promise<Row[]> {
  return query(dbFile(dataDir), `SELECT * FROM ${table} ORDER BY ${orderBy}`);
}
async function ledger(dataDir: string, name = 'dlt_ingest_runs'): Promise<Row[]> {
  return query(dbFile(dataDir), `SELECT * FROM main.${name} ORDER BY run_at`);
}
async function loadIds(dataDir: string, dataset = 'flights_demo_dlt'): Promise<string[]> {
  const r = await query(dbFile(dataDir), `SELECT load_id FROM ${dataset}._dlt_loads ORDER BY load_id`);
  return r.map((x) => String(x.load_id));
}
const sortedColumns = async (dataDir: string, schema: string, table: string) =>
  (await columns(dbFile(dataDir), schema, table)).sort((a, b) => a.name.localeCompare(b.name));

describe('importing flight.ts', () => {
  test('in this process: exports runFlight', () => {
    assert.equal(typeof runFlight, 'function');
  });

  test('in a fresh process: no run, no output, no files, no requests', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const code = `const m = await import(${JSON.stringify(pathToFileURL(FLIGHT_PATH).href)}); process.stdout.write(typeof m.runFlight);`;
    const res = await runNodeScript(code, { GITHUB_API_URL: gh.url }, { cwd: dir });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'function');
    assert.equal(res.stderr, '');
    assert.deepEqual(await listDir(dir), [], 'no ./data or other files created');
    assert.equal(gh.requests.length, 0);
  });
});

describe('default run', () => {
  test('runFlight loads the three demo repos with their values, dlt columns and a ledger row', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const dataDir = join(dir, 'nested', 'data');
    const before = Date.now();
    const summary = await runFlight({ env: testEnv(dataDir, gh) });
    const after = Date.now();

    assert.equal(summary.status, 'succeeded', summary.error);
    assert.equal(summary.exitCode, 0);
    assert.equal(summary.error, undefined);
    assert.equal(summary.destination, 'local');
    assert.equal(summary.rowsLoaded, 3);
    assert.deepEqual(summary.tables, { github_repo_stats: 3 });
    assert.equal(typeof summary.loadId, 'string');
    assert.ok(summary.loadId && summary.loadId.length > 0);
    assert.equal(resolve(summary.databasePath ?? ''), resolve(dbFile(dataDir)));
    assert.equal(typeof summary.durationS, 'number');
    assert.ok(summary.durationS >= 0 && summary.durationS <= (after - before) / 1000 + 0.5, String(summary.durationS));

    // The table: exactly the six demo fields plus dlt's two columns, with inferred types.
    assert.deepEqual(await sortedColumns(dataDir, 'flights_demo_dlt', 'github_repo_stats'), DEMO_COLUMNS);
    const loaded = await rows(dataDir);
    assert.deepEqual(withoutDlt(loaded), DEFAULT_ROWS());
    for (const r of loaded) assert.equal(r._dlt_load_id, summary.loadId);
    const ids = loaded.map((r) => r._dlt_id);
    assert.ok(ids.every((id) => typeof id === 'string' && id.length > 0));
    assert.equal(new Set(ids).size, 3, '_dlt_id is unique per row');

    // dlt's load bookkeeping.
    assert.deepEqual(await loadIds(dataDir), [summary.loadId]);

    // The ledger: leading columns in the seed's order, then the port's, and one row for this run.
    assert.deepEqual(
      (await columns(dbFile(dataDir), 'main', 'dlt_ingest_runs')).slice(0, LEDGER_COLUMNS.length),
      LEDGER_COLUMNS,
    );
    const runs = await ledger(dataDir);
    assert.equal(runs.length, 1);
    const run = runs[0]!;
    assert.equal(run.pipeline_name, 'flights_dlt_ingest');
    assert.equal(run.destination_dataset, 'flights_demo_dlt');
    assert.equal(run.destination_table, 'github_repo_stats');
    assert.equal(run.status, 'succeeded');
    assert.equal(run.load_id, summary.loadId);
    assert.equal(run.rows_loaded, 3n);
    assert.equal(run.error, null);
    assert.equal(run.destination, 'local');
    assert.ok(typeof run.load_summary === 'string' && run.load_summary.length > 0, 'load_summary is filled');
    assert.ok(run.run_at instanceof Date);
    assert.ok(run.run_at.getTime() >= before - 1000 && run.run_at.getTime() <= after + 1000, String(run.run_at));
    assert.equal(typeof run.duration_s, 'number');
    // the ledger row is written just before the commit, the summary's time taken after closing
    assert.ok(
      Number(run.duration_s) > 0 && Number(run.duration_s) <= summary.durationS,
      `${String(run.duration_s)} vs ${summary.durationS}`,
    );

    // Only the file it should have made.
    assert.deepEqual(await listDir(dataDir), ['flights_demo.duckdb']);
  });

  test('CLI: default LOCAL_DATA_DIR (./data), summary on stdout, exit 0, working files removed', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const cwd = join(dir, 'cwd');
    const tmp = join(dir, 'tmp');
    await mkdir(cwd);
    await mkdir(tmp);
    const res = await runCli(
      { GITHUB_API_URL: gh.url, HTTP_TIMEOUT_S: '5', HTTP_MAX_WAIT_S: '5', TMPDIR: tmp },
      { cwd },
    );
    assert.equal(res.code, 0, `stdout: ${res.stdout}\nstderr: ${res.stderr}`);
    const dataDir = join(cwd, 'data');
    assert.deepEqual(await listDir(dataDir), ['flights_demo.duckdb']);
    assert.deepEqual(withoutDlt(await rows(dataDir)), DEFAULT_ROWS());
    const runs = await ledger(dataDir);
    assert.equal(runs.length, 1);
    assert.equal(runs[0]?.status, 'succeeded');
    const loadId = String(runs[0]?.load_id);
    // Where it loaded, rows per table, load id.
    assert.ok(res.stdout.includes(loadId), res.stdout);
    assert.ok(res.stdout.includes('flights_demo.duckdb'), res.stdout);
    assert.match(res.stdout, /github_repo_stats\D{1,40}3\b|\b3\D{1,40}github_repo_stats/);
    // Working files (Parquet) are gone: no file left in TMPDIR apart from tsx's own compile cache
    // (an empty shared working folder may stay).
    const leftovers = (await readdir(tmp, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => relative(tmp, join(e.parentPath, e.name)))
      .filter((p) => !p.startsWith('tsx'));
    assert.deepEqual(leftovers, []);
  });
});

describe('write dispositions', () => {
  test('merge: a rerun keeps one row per repo and the new values win', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const dataDir = join(dir, 'data');
    const first = await runFlight({ env: testEnv(dataDir, gh) });
    assert.equal(first.status, 'succeeded', first.error);

    gh.setRepo('duckdb/duckdb', { stargazers_count: 40000, open_issues_count: 7, pushed_at: '2025-12-01T00:00:00Z' });
    gh.setRepo('dlt-hub/dlt', { default_branch: 'main' });
    const second = await runFlight({ env: testEnv(dataDir, gh) });
    assert.equal(second.status, 'succeeded', second.error);
    assert.equal(second.rowsLoaded, 3);
    assert.notEqual(second.loadId, first.loadId);

    const loaded = await rows(dataDir);
    assert.deepEqual(withoutDlt(loaded), [
      expectedRow('dlt-hub/dlt', githubRepo('dlt-hub/dlt', { default_branch: 'main' })),
      expectedRow(
        'duckdb/duckdb',
        githubRepo('duckdb/duckdb', {
          stargazers_count: 40000,
          open_issues_count: 7,
          pushed_at: '2025-12-01T00:00:00Z',
        }),
      ),
      expectedRow('motherduckdb/motherduck-docs'),
    ]);
    for (const r of loaded) assert.equal(r._dlt_load_id, second.loadId);
    assert.deepEqual(await loadIds(dataDir), [first.loadId, second.loadId].sort());
    assert.deepEqual(
      (await ledger(dataDir)).map((r) => [r.status, r.load_id, r.rows_loaded]),
      [
        ['succeeded', first.loadId, 3n],
        ['succeeded', second.loadId, 3n],
      ],
    );
  });

  test('merge: duplicates of one key inside a run collapse to the last row', async (t) => {
    const dir = await tempDir(t);
    const dataDir = join(dir, 'data');
    const env = testEnv(dataDir, 'http://127.0.0.1:9', { TABLE_NAME: 'items', PRIMARY_KEY: 'id' });
    const summary = await runFlight({
      env,
      source: async function* () {
        yield { id: 1, name: 'first' };
        yield { id: 2, name: 'two' };
        yield { id: 1, name: 'middle' };
        yield { id: 3, name: 'three' };
        yield { id: 1, name: 'last' };
      },
    });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.deepEqual(withoutDlt(await rows(dataDir, 'flights_demo_dlt.items', 'id')), [
      { id: 1n, name: 'last' },
      { id: 2n, name: 'two' },
      { id: 3n, name: 'three' },
    ]);
    // A rerun with the same keys still leaves one row per key.
    const again = await runFlight({
      env,
      source: () => [
        { id: 1, name: 'again' },
        { id: 1, name: 'again-last' },
      ],
    });
    assert.equal(again.status, 'succeeded', again.error);
    assert.deepEqual(withoutDlt(await rows(dataDir, 'flights_demo_dlt.items', 'id')), [
      { id: 1n, name: 'again-last' },
      { id: 2n, name: 'two' },
      { id: 3n, name: 'three' },
    ]);
  });

  test('merge: with many rows over several loader files, the last row per key still wins', async (t) => {
    const dir = await tempDir(t);
    const dataDir = join(dir, 'data');
    // BATCH_ROWS (if the implementation has it) splits the run into many Parquet files.
    const env = testEnv(dataDir, 'http://127.0.0.1:9', { TABLE_NAME: 'counters', PRIMARY_KEY: 'k', BATCH_ROWS: '7' });
    const summary = await runFlight({
      env,
      source: function* () {
        for (let i = 0; i < 1000; i++) yield { k: `key_${i % 13}`, i };
      },
    });
    assert.equal(summary.status, 'succeeded', summary.error);
    const expected = Array.from({ length: 13 }, (_, k) => ({
      k: `key_${k}`,
      i: BigInt(Math.max(...Array.from({ length: 1000 }, (_, i) => i).filter((i) => i % 13 === k))),
    }));
    expected.sort((a, b) => (a.k < b.k ? -1 : 1));
    assert.deepEqual(withoutDlt(await rows(dataDir, 'flights_demo_dlt.counters', 'k')), expected);
  });

  test('merge on a compound PRIMARY_KEY upserts on all of its columns', async (t) => {
    const dir = await tempDir(t);
    const dataDir = join(dir, 'data');
    const env = testEnv(dataDir, 'http://127.0.0.1:9', { TABLE_NAME: 'branches', PRIMARY_KEY: 'repo,branch' });
    const first = await runFlight({
      env,
      source: () => [
        { repo: 'a', branch: 'main', commits: 1 },
        { repo: 'a', branch: 'dev', commits: 2 },
      ],
    });
    assert.equal(first.status, 'succeeded', first.error);
    const second = await runFlight({
      env,
      source: () => [
        { repo: 'a', branch: 'main', commits: 10 },
        { repo: 'b', branch: 'main', commits: 3 },
      ],
    });
    assert.equal(second.status, 'succeeded', second.error);
    assert.deepEqual(withoutDlt(await rows(dataDir, 'flights_demo_dlt.branches', 'repo, branch')), [
      { repo: 'a', branch: 'dev', commits: 2n },
      { repo: 'a', branch: 'main', commits: 10n },
      { repo: 'b', branch: 'main', commits: 3n },
    ]);
  });

  test('append: a rerun adds the rows again, under a new load id', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const dataDir = join(dir, 'data');
    const env = testEnv(dataDir, gh, { WRITE_DISPOSITION: 'append' });
    const first = await runFlight({ env });
    assert.equal(first.status, 'succeeded', first.error);
    gh.setRepo('duckdb/duckdb', { stargazers_count: 31300 });
    const second = await runFlight({ env });
    assert.equal(second.status, 'succeeded', second.error);
    assert.equal(second.rowsLoaded, 3);
    assert.notEqual(first.loadId, second.loadId);

    const all = await query(dbFile(dataDir), `SELECT * FROM ${TABLE} ORDER BY _dlt_load_id, repo`);
    assert.equal(all.length, 6);
    const byLoad = (id: string | null) => withoutDlt(all.filter((r) => r._dlt_load_id === id));
    assert.deepEqual(byLoad(first.loadId), DEFAULT_ROWS());
    assert.deepEqual(byLoad(second.loadId), [
      expectedRow('dlt-hub/dlt'),
      expectedRow('duckdb/duckdb', githubRepo('duckdb/duckdb', { stargazers_count: 31300 })),
      expectedRow('motherduckdb/motherduck-docs'),
    ]);
  });

  test('replace: a rerun swaps the table contents', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const dataDir = join(dir, 'data');
    const first = await runFlight({ env: testEnv(dataDir, gh, { WRITE_DISPOSITION: 'replace' }) });
    assert.equal(first.status, 'succeeded', first.error);
    assert.deepEqual(withoutDlt(await rows(dataDir)), DEFAULT_ROWS());

    gh.setRepo('duckdb/duckdb', { stargazers_count: 50000 });
    const second = await runFlight({
      env: testEnv(dataDir, gh, { WRITE_DISPOSITION: 'replace', GITHUB_REPOS: 'duckdb/duckdb' }),
    });
    assert.equal(second.status, 'succeeded', second.error);
    assert.equal(second.rowsLoaded, 1);
    const loaded = await rows(dataDir);
    assert.deepEqual(withoutDlt(loaded), [
      expectedRow('duckdb/duckdb', githubRepo('duckdb/duckdb', { stargazers_count: 50000 })),
    ]);
    assert.equal(loaded[0]?._dlt_load_id, second.loadId);
  });

  test('replace after merge runs also drops rows the source no longer yields', async (t) => {
    const dir = await tempDir(t);
    const dataDir = join(dir, 'data');
    const env = testEnv(dataDir, 'http://127.0.0.1:9', { TABLE_NAME: 'things', PRIMARY_KEY: 'id' });
    assert.equal(
      (
        await runFlight({
          env,
          source: () => [
            { id: 1, v: 'a' },
            { id: 2, v: 'b' },
          ],
        })
      ).status,
      'succeeded',
    );
    const replaced = await runFlight({
      env: { ...env, WRITE_DISPOSITION: 'replace' },
      source: () => [{ id: 3, v: 'c' }],
    });
    assert.equal(replaced.status, 'succeeded', replaced.error);
    assert.deepEqual(withoutDlt(await rows(dataDir, 'flights_demo_dlt.things', 'id')), [{ id: 3n, v: 'c' }]);
  });
});

describe('schema and types', () => {
  test('a field appearing in a later run adds a column; earlier rows have NULL there', async (t) => {
    const dir = await tempDir(t);
    const dataDir = join(dir, 'data');
    const env = testEnv(dataDir, 'http://127.0.0.1:9', { TABLE_NAME: 'events', PRIMARY_KEY: 'id' });
    const first = await runFlight({ env, source: () => [{ id: 1, name: 'a' }] });
    assert.equal(first.status, 'succeeded', first.error);
    assert.deepEqual(
      (await sortedColumns(dataDir, 'flights_demo_dlt', 'events')).map((c) => c.name),
      ['_dlt_id', '_dlt_load_id', 'id', 'name'],
    );

    const second = await runFlight({ env, source: () => [{ id: 2, name: 'b', score: 4.5, active: true }] });
    assert.equal(second.status, 'succeeded', second.error);
    assert.deepEqual(await sortedColumns(dataDir, 'flights_demo_dlt', 'events'), [
      { name: '_dlt_id', type: 'VARCHAR' },
      { name: '_dlt_load_id', type: 'VARCHAR' },
      { name: 'active', type: 'BOOLEAN' },
      { name: 'id', type: 'BIGINT' },
      { name: 'name', type: 'VARCHAR' },
      { name: 'score', type: 'DOUBLE' },
    ]);
    assert.deepEqual(withoutDlt(await rows(dataDir, 'flights_demo_dlt.events', 'id')), [
      { id: 1n, name: 'a', score: null, active: null },
      { id: 2n, name: 'b', score: 4.5, active: true },
    ]);
  });

  test('types are inferred from values: BIGINT, DOUBLE, BOOLEAN, VARCHAR, TIMESTAMPTZ, with NULLs', async (t) => {
    const dir = await tempDir(t);
    const dataDir = join(dir, 'data');
    const summary = await runFlight({
      env: testEnv(dataDir, 'http://127.0.0.1:9', {
        TABLE_NAME: 'typed',
        PRIMARY_KEY: 'id',
        WRITE_DISPOSITION: 'append',
      }),
      source: () => [
        { id: 1, i: 42, f: 1.25, mixed: 1, b: true, s: 'hello', ts: '2025-11-24T18:02:11Z', big: 9007199254740991 },
        { id: 2, i: null, f: null, mixed: 2.5, b: null, s: null, ts: null, big: -1 },
        { id: 3, i: -7, f: 0.5, mixed: 3, b: false, s: '', ts: '2025-11-24T20:02:11.250+02:00', big: 0 },
      ],
    });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.equal(summary.rowsLoaded, 3);
    assert.deepEqual(await sortedColumns(dataDir, 'flights_demo_dlt', 'typed'), [
      { name: '_dlt_id', type: 'VARCHAR' },
      { name: '_dlt_load_id', type: 'VARCHAR' },
      { name: 'b', type: 'BOOLEAN' },
      { name: 'big', type: 'BIGINT' },
      { name: 'f', type: 'DOUBLE' },
      { name: 'i', type: 'BIGINT' },
      { name: 'id', type: 'BIGINT' },
      { name: 'mixed', type: 'BIGINT' },
      { name: 'mixed__v_double', type: 'DOUBLE' }, // the first value types the column, as in dlt
      { name: 's', type: 'VARCHAR' },
      { name: 'ts', type: 'TIMESTAMP WITH TIME ZONE' },
    ]);
    assert.deepEqual(withoutDlt(await rows(dataDir, 'flights_demo_dlt.typed', 'id')), [
      {
        id: 1n,
        i: 42n,
        f: 1.25,
        mixed: 1n,
        mixed__v_double: null,
        b: true,
        s: 'hello',
        ts: new Date('2025-11-24T18:02:11Z'),
        big: 9007199254740991n,
      },
      { id: 2n, i: null, f: null, mixed: null, mixed__v_double: 2.5, b: null, s: null, ts: null, big: -1n },
      {
        id: 3n,
        i: -7n,
        f: 0.5,
        mixed: 3n,
        mixed__v_double: null,
        b: false,
        s: '',
        ts: new Date('2025-11-24T18:02:11.250Z'),
        big: 0n,
      },
    ]);
  });

  test('column names are normalized to snake_case as dlt does', async (t) => {
    const dir = await tempDir(t);
    const dataDir = join(dir, 'data');
    const summary = await runFlight({
      env: testEnv(dataDir, 'http://127.0.0.1:9', { TABLE_NAME: 'named', PRIMARY_KEY: 'id' }),
      source: () => [{ id: 1, camelCase: 'x', 'Some Field': 'y' }],
    });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.deepEqual(withoutDlt(await rows(dataDir, 'flights_demo_dlt.named', 'id')), [
      { id: 1n, camel_case: 'x', some_field: 'y' },
    ]);
  });
});

describe('failures', () => {
  test('a source that throws mid-way leaves the earlier data untouched and records a failed run', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const dataDir = join(dir, 'data');
    const first = await runFlight({ env: testEnv(dataDir, gh) });
    assert.equal(first.status, 'succeeded', first.error);
    const before = await rows(dataDir);
    const columnsBefore = await sortedColumns(dataDir, 'flights_demo_dlt', 'github_repo_stats');

    const second = await runFlight({
      env: testEnv(dataDir, gh),
      source: async function* () {
        yield {
          repo: 'duckdb/duckdb',
          stars: 0,
          forks: 0,
          open_issues: 0,
          default_branch: 'gone',
          pushed_at: '2025-01-01T00:00:00Z',
          extra_field: 'new column',
        };
        yield {
          repo: 'brand/new',
          stars: 1,
          forks: 1,
          open_issues: 1,
          default_branch: 'main',
          pushed_at: '2025-01-01T00:00:00Z',
        };
        throw new Error('source exploded after two rows');
      },
    });
    assert.equal(second.status, 'failed');
    assert.equal(second.exitCode, 1);
    assert.equal(second.rowsLoaded, 0);
    assert.ok(second.error?.includes('source exploded after two rows'), second.error);

    assert.deepEqual(await rows(dataDir), before, 'table rows unchanged');
    assert.deepEqual(
      await sortedColumns(dataDir, 'flights_demo_dlt', 'github_repo_stats'),
      columnsBefore,
      'no column added',
    );
    assert.deepEqual(await loadIds(dataDir), [first.loadId]);
    const runs = await ledger(dataDir);
    assert.deepEqual(
      runs.map((r) => r.status),
      ['succeeded', 'failed'],
    );
    const failed = runs[1]!;
    assert.ok(String(failed.error).includes('source exploded after two rows'), String(failed.error));
    assert.equal(failed.rows_loaded, 0n);
    assert.equal(failed.pipeline_name, 'flights_dlt_ingest');
    assert.equal(failed.destination_dataset, 'flights_demo_dlt');
    assert.equal(failed.destination_table, 'github_repo_stats');
    assert.equal(failed.destination, 'local');
    assert.ok(Number(failed.duration_s) >= 0);
  });

  test('a failure inside the load transaction rolls back deletes, new columns and _dlt_loads', async (t) => {
    const dir = await tempDir(t);
    const dataDir = join(dir, 'data');
    await mkdir(dataDir);
    // A table made by hand whose CHECK constraint the second run violates on INSERT, after the
    // merge has already deleted the matching rows and added a column.
    await query(
      dbFile(dataDir),
      `CREATE SCHEMA flights_demo_dlt;
       CREATE TABLE flights_demo_dlt.guarded (id BIGINT, v BIGINT CHECK (v < 100), _dlt_load_id VARCHAR, _dlt_id VARCHAR);`,
      { write: true },
    );
    const env = testEnv(dataDir, 'http://127.0.0.1:9', { TABLE_NAME: 'guarded', PRIMARY_KEY: 'id' });
    const first = await runFlight({
      env,
      source: () => [
        { id: 1, v: 1 },
        { id: 2, v: 2 },
      ],
    });
    assert.equal(first.status, 'succeeded', first.error);
    const before = await rows(dataDir, 'flights_demo_dlt.guarded', 'id');
    assert.deepEqual(withoutDlt(before), [
      { id: 1n, v: 1n },
      { id: 2n, v: 2n },
    ]);

    const second = await runFlight({
      env,
      source: () => [
        { id: 1, v: 10, note: 'new column' },
        { id: 3, v: 500, note: 'too big' },
      ],
    });
    assert.equal(second.status, 'failed');
    assert.equal(second.exitCode, 1);
    assert.equal(second.rowsLoaded, 0);
    assert.ok(second.error && second.error.length > 0);
    assert.deepEqual(await rows(dataDir, 'flights_demo_dlt.guarded', 'id'), before, 'rows exactly as before');
    assert.deepEqual(
      (await sortedColumns(dataDir, 'flights_demo_dlt', 'guarded')).map((c) => c.name),
      ['_dlt_id', '_dlt_load_id', 'id', 'v'],
    );
    assert.deepEqual(await loadIds(dataDir), [first.loadId]);
    assert.deepEqual(
      (await ledger(dataDir)).map((r) => [r.status, r.rows_loaded]),
      [
        ['succeeded', 2n],
        ['failed', 0n],
      ],
    );
  });

  test('the ledger stores an error with quotes and SQL verbatim (bound parameters)', async (t) => {
    const dir = await tempDir(t);
    const dataDir = join(dir, 'data');
    const nasty = `it's "broken"'); DROP TABLE main.dlt_ingest_runs; -- $1 ?`;
    const summary = await runFlight({
      env: testEnv(dataDir, 'http://127.0.0.1:9', { TABLE_NAME: 'quotes', PRIMARY_KEY: 'id' }),
      source: () => {
        throw new Error(nasty);
      },
    });
    assert.equal(summary.status, 'failed');
    assert.ok(summary.error?.includes(nasty), summary.error);
    const runs = await ledger(dataDir);
    assert.equal(runs.length, 1);
    assert.equal(runs[0]?.status, 'failed');
    assert.ok(String(runs[0]?.error).includes(nasty), String(runs[0]?.error));
  });

  test('a source that throws on the first run creates no data table but a failed ledger row', async (t) => {
    const dir = await tempDir(t);
    const dataDir = join(dir, 'data');
    const summary = await runFlight({
      env: testEnv(dataDir, 'http://127.0.0.1:9', { TABLE_NAME: 'never', PRIMARY_KEY: 'id' }),
      source: async function* () {
        yield { id: 1 };
        throw new TypeError('bad upstream payload');
      },
    });
    assert.equal(summary.status, 'failed');
    assert.equal(summary.exitCode, 1);
    assert.ok(summary.error?.includes('bad upstream payload'), summary.error);
    const tables = await tableNames(dbFile(dataDir));
    assert.equal(tables.includes('flights_demo_dlt.never'), false, tables.join(','));
    const runs = await ledger(dataDir);
    assert.equal(runs.length, 1);
    assert.equal(runs[0]?.status, 'failed');
    assert.ok(String(runs[0]?.error).includes('bad upstream payload'));
  });
});

describe('ledger', () => {
  test('an old five-column ledger is upgraded in place and its rows kept', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const dataDir = join(dir, 'data');
    await mkdir(dataDir);
    const db = dbFile(dataDir);
    await query(
      db,
      `CREATE TABLE main.dlt_ingest_runs (
         run_at TIMESTAMPTZ, pipeline_name VARCHAR, destination_dataset VARCHAR,
         destination_table VARCHAR, load_summary VARCHAR);
       INSERT INTO main.dlt_ingest_runs VALUES
         ('2025-06-01 12:00:00+00', 'flights_dlt_ingest', 'flights_demo_dlt', 'github_repo_stats', 'Pipeline flights_dlt_ingest load step completed');`,
      { write: true },
    );
    const summary = await runFlight({ env: testEnv(dataDir, gh) });
    assert.equal(summary.status, 'succeeded', summary.error);

    assert.deepEqual((await columns(db, 'main', 'dlt_ingest_runs')).slice(0, LEDGER_COLUMNS.length), LEDGER_COLUMNS);
    const runs = await ledger(dataDir);
    assert.equal(runs.length, 2);
    const [old, fresh] = runs;
    assert.deepEqual(
      {
        run_at: old?.run_at,
        pipeline_name: old?.pipeline_name,
        destination_dataset: old?.destination_dataset,
        destination_table: old?.destination_table,
        load_summary: old?.load_summary,
      },
      {
        run_at: new Date('2025-06-01T12:00:00Z'),
        pipeline_name: 'flights_dlt_ingest',
        destination_dataset: 'flights_demo_dlt',
        destination_table: 'github_repo_stats',
        load_summary: 'Pipeline flights_dlt_ingest load step completed',
      },
    );
    assert.equal(fresh?.status, 'succeeded');
    assert.equal(fresh?.load_id, summary.loadId);
    assert.equal(fresh?.rows_loaded, 3n);
  });

  test('a custom RUN_LEDGER_TABLE and PIPELINE_NAME are used; every run adds one row', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const dataDir = join(dir, 'data');
    const env = testEnv(dataDir, gh, {
      RUN_LEDGER_TABLE: 'flight_runs',
      PIPELINE_NAME: 'hourly_stats',
      GITHUB_REPOS: 'duckdb/duckdb',
    });
    for (let i = 0; i < 3; i++) assert.equal((await runFlight({ env })).status, 'succeeded');
    const runs = await ledger(dataDir, 'flight_runs');
    assert.deepEqual(
      runs.map((r) => [r.pipeline_name, r.status, r.rows_loaded]),
      [
        ['hourly_stats', 'succeeded', 1n],
        ['hourly_stats', 'succeeded', 1n],
        ['hourly_stats', 'succeeded', 1n],
      ],
    );
    assert.equal(new Set(runs.map((r) => r.load_id)).size, 3);
    assert.equal((await tableNames(dbFile(dataDir))).includes('main.dlt_ingest_runs'), false);
    assert.equal(existsSync(join(dataDir, 'flights_demo.duckdb')), true);
  });
});
