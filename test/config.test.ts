// Config validation: every bad value is a config error (exit code 2) that names the key and
// the value, all problems are reported at once, and nothing is created. Valid values are
// trimmed, empty means default, and runFlight reads its config only from `env`.
import { test, describe } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runFlight, type ColumnHint } from '../flight.ts';
import {
  dbFile,
  expectedRow,
  listDir,
  mentions,
  query,
  runCli,
  startFakeGitHub,
  tableNames,
  tempDir,
  testEnv,
  withoutDlt,
  type Env,
} from './support.ts';

/** Run with `bad` on top of a valid test env; assert a config error that touched nothing. Returns the message. */
async function expectConfigError(t: TestContext, bad: Env, columns?: Record<string, ColumnHint>): Promise<string> {
  const dir = await tempDir(t);
  const gh = await startFakeGitHub(t);
  const dataDir = join(dir, 'data');
  const summary = await runFlight({ env: testEnv(dataDir, gh, bad), ...(columns ? { columns } : {}) });
  assert.equal(summary.status, 'failed');
  assert.equal(summary.exitCode, 2);
  assert.equal(summary.loadId, null);
  assert.equal(summary.rowsLoaded, 0);
  assert.equal(typeof summary.error, 'string');
  assert.equal(existsSync(dataDir), false, 'a config error must not create LOCAL_DATA_DIR');
  assert.deepEqual(await listDir(dir), [], 'a config error must not create any file');
  assert.equal(gh.requests.length, 0, 'a config error must not call the API');
  return summary.error ?? '';
}

function assertNames(error: string, key: string, value: string): void {
  assert.ok(error.includes(key), `error should name ${key}: ${error}`);
  assert.ok(mentions(error, value), `error should show the offending value ${JSON.stringify(value)}: ${error}`);
}

const IDENTIFIER_KEYS = [
  'DESTINATION_DATABASE',
  'DATASET_NAME',
  'TABLE_NAME',
  'RUN_LEDGER_TABLE',
  'PRIMARY_KEY',
  'MERGE_KEY',
] as const;
const BAD_IDENTIFIERS = [
  'x"; DROP TABLE y; --',
  'a b',
  '1abc',
  'tbl--',
  'a.b',
  "x'y",
  'tbl;',
  'naïve',
  '"quoted"',
] as const;

describe('identifier keys reject injection attempts', () => {
  for (const key of IDENTIFIER_KEYS) {
    for (const value of BAD_IDENTIFIERS) {
      test(`${key}=${JSON.stringify(value)} is a config error`, async (t) => {
        const error = await expectConfigError(t, { [key]: value });
        assertNames(error, key, value);
      });
    }
  }

  test('one bad column in a compound PRIMARY_KEY is a config error naming that column', async (t) => {
    const error = await expectConfigError(t, { PRIMARY_KEY: 'repo,x"; DROP TABLE y; --' });
    assertNames(error, 'PRIMARY_KEY', 'x"; DROP TABLE y; --');
  });
});

describe('other config errors', () => {
  for (const value of ['duckdb', 'a/b/c', '/duckdb', 'duckdb/', 'duckdb/duckdb,not-a-repo', 'duck db/duckdb']) {
    test(`GITHUB_REPOS=${JSON.stringify(value)} is a config error`, async (t) => {
      const error = await expectConfigError(t, { GITHUB_REPOS: value });
      const badEntry = value === 'duckdb/duckdb,not-a-repo' ? 'not-a-repo' : value;
      assertNames(error, 'GITHUB_REPOS', badEntry);
    });
  }

  test('a column hint of a type the port has no column for, or with another key, is a config error', async (t) => {
    const columns = { blob: { data_type: 'binary' }, id: { nullable: 'no' }, x: { precision: 3 } };
    const error = await expectConfigError(t, {}, columns as unknown as Record<string, ColumnHint>);
    for (const name of ['"blob"', 'binary', '"id"', '"x"', 'precision']) assert.ok(mentions(error, name), error);
  });

  test('WRITE_DISPOSITION outside merge|append|replace is a config error', async (t) => {
    const error = await expectConfigError(t, { WRITE_DISPOSITION: 'upsert' });
    assertNames(error, 'WRITE_DISPOSITION', 'upsert');
  });

  test('DESTINATION outside auto|local|motherduck is a config error', async (t) => {
    const error = await expectConfigError(t, { DESTINATION: 'cloud' });
    assertNames(error, 'DESTINATION', 'cloud');
  });

  test('DUCKDB_MEMORY_LIMIT that is neither auto nor a size is a config error', async (t) => {
    const error = await expectConfigError(t, { DUCKDB_MEMORY_LIMIT: 'lots' });
    assertNames(error, 'DUCKDB_MEMORY_LIMIT', 'lots');
    assert.ok(mentions(error, 'auto'), error);
  });

  test('DESTINATION=motherduck without MOTHERDUCK_TOKEN is a config error', async (t) => {
    const error = await expectConfigError(t, { DESTINATION: 'motherduck' });
    assert.ok(error.includes('DESTINATION'), error);
    assert.ok(error.includes('MOTHERDUCK_TOKEN'), error);
  });

  test('DESTINATION=motherduck with a blank MOTHERDUCK_TOKEN is a config error', async (t) => {
    const error = await expectConfigError(t, { DESTINATION: 'motherduck', MOTHERDUCK_TOKEN: '   ' });
    assert.ok(error.includes('MOTHERDUCK_TOKEN'), error);
  });

  for (const [key, value] of [
    ['HTTP_TIMEOUT_S', 'abc'],
    ['HTTP_MAX_RETRIES', 'lots'],
    ['HTTP_MAX_WAIT_S', '-5'],
    ['GITHUB_CONCURRENCY', '0'],
    ['GITHUB_CONCURRENCY', 'four'],
    ['GITHUB_API_URL', 'not a url'],
  ] as const) {
    test(`${key}=${JSON.stringify(value)} is a config error`, async (t) => {
      const error = await expectConfigError(t, { [key]: value });
      assertNames(error, key, value);
    });
  }

  test('several problems are reported at once', async (t) => {
    const error = await expectConfigError(t, {
      TABLE_NAME: 'a b',
      DATASET_NAME: '1abc',
      WRITE_DISPOSITION: 'upsert',
      GITHUB_REPOS: 'nope',
      RUN_LEDGER_TABLE: 'tbl--',
    });
    assertNames(error, 'TABLE_NAME', 'a b');
    assertNames(error, 'DATASET_NAME', '1abc');
    assertNames(error, 'WRITE_DISPOSITION', 'upsert');
    assertNames(error, 'GITHUB_REPOS', 'nope');
    assertNames(error, 'RUN_LEDGER_TABLE', 'tbl--');
  });

  test('CLI: a bad config exits 2, prints every problem and creates nothing', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const cwd = join(dir, 'cwd');
    await mkdir(cwd);
    const explicitDataDir = join(dir, 'explicit-data');
    // First with the default LOCAL_DATA_DIR (./data relative to cwd), then with an explicit one.
    for (const dataDir of [undefined, explicitDataDir]) {
      const res = await runCli(
        {
          GITHUB_API_URL: gh.url,
          LOCAL_DATA_DIR: dataDir,
          TABLE_NAME: 'x"; DROP TABLE y; --',
          WRITE_DISPOSITION: 'sometimes',
          GITHUB_REPOS: 'duckdb/duckdb,justaname',
        },
        { cwd },
      );
      assert.equal(res.code, 2, `exit code; stderr: ${res.stderr}`);
      const out = res.stdout + res.stderr;
      assertNames(out, 'TABLE_NAME', 'x"; DROP TABLE y; --');
      assertNames(out, 'WRITE_DISPOSITION', 'sometimes');
      assertNames(out, 'GITHUB_REPOS', 'justaname');
      assert.deepEqual(await listDir(cwd), [], 'nothing created in cwd');
      assert.equal(existsSync(explicitDataDir), false, 'LOCAL_DATA_DIR not created');
    }
    assert.equal(gh.requests.length, 0);
  });
});

describe('valid config', () => {
  test('values are trimmed and empty values mean the default', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const dataDir = join(dir, 'data');
    const summary = await runFlight({
      env: testEnv(dataDir, gh, {
        TABLE_NAME: '  trimmed_table  ',
        DATASET_NAME: '',
        DESTINATION_DATABASE: '   ',
        WRITE_DISPOSITION: ' append ',
        PRIMARY_KEY: '',
        PIPELINE_NAME: '',
        RUN_LEDGER_TABLE: ' ',
        DESTINATION: '',
        GITHUB_REPOS: ' duckdb/duckdb , dlt-hub/dlt ',
      }),
    });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.equal(summary.exitCode, 0);
    assert.equal(summary.destination, 'local');
    assert.deepEqual(summary.tables, { trimmed_table: 2 });
    const db = dbFile(dataDir);
    const rows = await query(db, 'SELECT * FROM flights_demo_dlt.trimmed_table ORDER BY repo');
    assert.deepEqual(withoutDlt(rows), [expectedRow('dlt-hub/dlt'), expectedRow('duckdb/duckdb')]);
    assert.deepEqual(gh.requests.map((r) => r.path).sort(), ['/repos/dlt-hub/dlt', '/repos/duckdb/duckdb']);
    const ledger = await query(
      db,
      'SELECT pipeline_name, destination_dataset, destination_table, status FROM main.dlt_ingest_runs',
    );
    assert.deepEqual(ledger, [
      {
        pipeline_name: 'flights_dlt_ingest',
        destination_dataset: 'flights_demo_dlt',
        destination_table: 'trimmed_table',
        status: 'succeeded',
      },
    ]);
  });

  test('custom names: database file, dataset, table, ledger table and pipeline name', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const dataDir = join(dir, 'nested', 'data');
    const summary = await runFlight({
      env: testEnv(dataDir, gh, {
        DESTINATION_DATABASE: 'my_db_1',
        DATASET_NAME: '_raw',
        TABLE_NAME: 'repo_stats',
        RUN_LEDGER_TABLE: 'runs_v2',
        PIPELINE_NAME: 'nightly_pipe',
      }),
    });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.deepEqual(await listDir(dataDir), ['my_db_1.duckdb']);
    const db = dbFile(dataDir, 'my_db_1');
    const catalog = await query(db, 'SELECT current_database() AS db');
    assert.deepEqual(catalog, [{ db: 'my_db_1' }]);
    const tables = await tableNames(db);
    assert.ok(tables.includes('main.runs_v2'), tables.join(','));
    assert.ok(tables.includes('_raw.repo_stats'), tables.join(','));
    assert.equal(tables.includes('main.dlt_ingest_runs'), false);
    const rows = await query(db, 'SELECT count(*) AS n FROM _raw.repo_stats');
    assert.deepEqual(rows, [{ n: 3n }]);
    const ledger = await query(
      db,
      'SELECT pipeline_name, destination_dataset, destination_table, status FROM main.runs_v2',
    );
    assert.deepEqual(ledger, [
      {
        pipeline_name: 'nightly_pipe',
        destination_dataset: '_raw',
        destination_table: 'repo_stats',
        status: 'succeeded',
      },
    ]);
  });

  test('DESTINATION=local with a MOTHERDUCK_TOKEN loads locally and never records the token', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const dataDir = join(dir, 'data');
    const token = 'md_secret_token_4f9a2c';
    const summary = await runFlight({
      env: testEnv(dataDir, gh, { DESTINATION: 'local', MOTHERDUCK_TOKEN: token }),
    });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.equal(summary.destination, 'local');
    assert.equal(summary.rowsLoaded, 3);
    assert.equal(JSON.stringify(summary).includes(token), false);
    const ledger = await query(dbFile(dataDir), 'SELECT * FROM main.dlt_ingest_runs');
    assert.equal(ledger.length, 1);
    assert.equal(ledger[0]?.destination, 'local');
    assert.equal(
      JSON.stringify(ledger, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)).includes(token),
      false,
    );
    for (const r of gh.requests) {
      assert.equal(JSON.stringify(r.headers).includes(token), false, 'MOTHERDUCK_TOKEN must not be sent to GitHub');
    }
  });

  test('runFlight takes its config from env only, not from process.env', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const dataDir = join(dir, 'data');
    const saved = {
      TABLE_NAME: process.env.TABLE_NAME,
      DESTINATION: process.env.DESTINATION,
      GITHUB_REPOS: process.env.GITHUB_REPOS,
    };
    t.after(() => {
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });
    process.env.TABLE_NAME = 'from_process_env';
    process.env.DESTINATION = 'motherduck';
    process.env.GITHUB_REPOS = 'process/env';
    const summary = await runFlight({ env: testEnv(dataDir, gh) });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.equal(summary.destination, 'local');
    assert.deepEqual(summary.tables, { github_repo_stats: 3 });
    const tables = await tableNames(dbFile(dataDir));
    assert.ok(tables.includes('flights_demo_dlt.github_repo_stats'), tables.join(','));
    assert.equal(gh.requestsFor('/repos/process/env').length, 0);
  });
});
