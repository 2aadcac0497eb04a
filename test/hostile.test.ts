// Hostile input: config values and source rows are untrusted and flow towards SQL and URLs.
// - Identifier keys with quotes, semicolons, comment markers, inner whitespace, invisible
//   characters and unicode lookalikes are config errors (exit 2, nothing touched).
// - SQL reserved words are valid identifiers and work everywhere, because every name is quoted.
// - 1,000-character names: SQL-only names work; names that also become file or folder names
//   work or fail clearly, and runFlight never throws.
// - GITHUB_REPOS entries that could bend the request URL are config errors, no request made.
// - Source keys and values with SQL, control characters and lone surrogates: stored verbatim, or
//   (lone surrogates, which no database text can hold) a clear failure with the data untouched.
// In every case a canary table survives: nothing from the input is ever executed.
// (config.test.ts covers the first five identifier keys with basic injection strings and a few
// malformed repos; drift.test.ts covers hostile keys. This file extends both.)
import { test, describe } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runFlight, type Row as SourceRow, type RunSummary } from '../flight.ts';
import {
  dbFile,
  listDir,
  mentions,
  query,
  runCli,
  startFakeGitHub,
  tableNames,
  tempDir,
  testEnv,
  type Env,
  type Row,
} from './support.ts';

const NO_SERVER = 'http://127.0.0.1:9'; // runs with a custom source never call it
const quiet = { log: () => {} };
const stringify = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x));

/** A run with a custom source into `dataDir`. */
function run(dataDir: string, rows: SourceRow[] | (() => Iterable<SourceRow>), extra: Env = {}): Promise<RunSummary> {
  return runFlight({
    env: testEnv(dataDir, NO_SERVER, { TABLE_NAME: 't', PRIMARY_KEY: 'id', ...extra }),
    source: typeof rows === 'function' ? rows : () => rows,
    ...quiet,
  });
}
function assertOk(s: RunSummary): void {
  assert.equal(s.status, 'succeeded', s.error);
  assert.equal(s.exitCode, 0);
}

// ─── Identifier keys ────────────────────────────────────────────────────────────────────────────

const IDENTIFIER_KEYS = [
  'DESTINATION_DATABASE',
  'DATASET_NAME',
  'TABLE_NAME',
  'RUN_LEDGER_TABLE',
  'PRIMARY_KEY',
  'DELETE_COLUMN',
  'PIPELINE_NAME',
] as const;
type IdentifierKey = (typeof IDENTIFIER_KEYS)[number];

const HOSTILE_NAMES: [string, string][] = [
  ['double quote', 't"bl'],
  ['quote breaking out of the quoted name', 'x" ; DROP TABLE canary; --'],
  ['single quote', "t'bl"],
  ['backtick', 't`bl'],
  ['semicolon', 't;DROP TABLE canary'],
  ['line comment', 't -- c'],
  ['line comment, no spaces', 't--'],
  ['block comment', 't/*c*/'],
  ['hash comment', 't#c'],
  ['tab inside', 't\tbl'],
  ['newline inside', 't\nDROP TABLE canary'],
  ['carriage return inside', 't\rbl'],
  ['no-break space inside', 't\u00a0bl'],
  ['zero-width space at the end (not trimmed)', 'table\u200b'],
  ['right-to-left override', '\u202etable'],
  ['Cyrillic а lookalike', 't\u0430ble'],
  ['Cyrillic е lookalike at the end', 'tabl\u0435'],
  ['Greek ο lookalike', 'rep\u03bf'],
  ['fullwidth letters', '\uff54\uff41\uff42\uff4c\uff45'],
  ['combining accent', 'ta\u0301ble'],
  ['NUL byte', 't\u0000bl'],
  ['dot (schema.table)', 'main.canary'],
  ['brackets', '[t]'],
  ['dollar (parameter)', '$1'],
  ['only digits', '123'],
];

describe('identifier keys with hostile values are config errors (exit 2, nothing created, no request)', () => {
  for (const key of IDENTIFIER_KEYS) {
    test(`${key}: quotes, semicolons, comments, inner whitespace, invisible and lookalike characters are rejected`, async (t) => {
      const dir = await tempDir(t, 'flight-hostile-');
      const gh = await startFakeGitHub(t);
      for (const [what, value] of HOSTILE_NAMES) {
        const dataDir = join(dir, `d${HOSTILE_NAMES.findIndex(([w]) => w === what)}`);
        const summary = await runFlight({ env: testEnv(dataDir, gh, { [key]: value }), ...quiet });
        const error = summary.error ?? '';
        assert.equal(
          summary.exitCode,
          2,
          `${key} with a ${what} (${JSON.stringify(value)}) must be a config error; got ${summary.status}: ${error}`,
        );
        assert.equal(summary.loadId, null, what);
        assert.ok(error.includes(key), `${what}: the message names ${key}: ${error}`);
        assert.ok(mentions(error, value), `${what}: the message shows the value ${JSON.stringify(value)}: ${error}`);
        assert.equal(existsSync(dataDir), false, `${what}: nothing created`);
      }
      assert.equal(gh.requests.length, 0, 'no request made');
      assert.deepEqual(await listDir(dir), []);
    });
  }

  test('CLI: exit 2 and every offending key on stderr (lookalike TABLE_NAME, PIPELINE_NAME with ;, DELETE_COLUMN with --)', async (t) => {
    const dir = await tempDir(t, 'flight-hostile-');
    const gh = await startFakeGitHub(t);
    const cwd = join(dir, 'cwd');
    await mkdir(cwd);
    const dataDir = join(dir, 'data');
    const res = await runCli(
      testEnv(dataDir, gh, { TABLE_NAME: 't\u0430ble', PIPELINE_NAME: 'p;DROP TABLE x', DELETE_COLUMN: 'd--x' }),
      { cwd },
    );
    assert.equal(res.code, 2, res.stderr);
    for (const [key, value] of [
      ['TABLE_NAME', 't\u0430ble'],
      ['PIPELINE_NAME', 'p;DROP TABLE x'],
      ['DELETE_COLUMN', 'd--x'],
    ] as const) {
      assert.ok(res.stderr.includes(key) && mentions(res.stderr, value), `stderr names ${key}=${value}: ${res.stderr}`);
    }
    assert.equal(existsSync(dataDir), false);
    assert.deepEqual(await listDir(cwd), []);
    assert.equal(gh.requests.length, 0);
  });
});

/** Runs once (twice for PRIMARY_KEY / DELETE_COLUMN, to exercise merge) with `key` set to `name`; checks the object exists under that name. */
async function assertNameWorks(t: TestContext, key: IdentifierKey, name: string): Promise<void> {
  const dir = await tempDir(t, 'flight-hostile-');
  const dataDir = join(dir, 'data');
  const db = key === 'DESTINATION_DATABASE' ? join(dataDir, `${name}.duckdb`) : dbFile(dataDir);
  const dataset = key === 'DATASET_NAME' ? name : 'flights_demo_dlt';
  const table = key === 'TABLE_NAME' ? name : 't';
  const ledger = key === 'RUN_LEDGER_TABLE' ? name : 'dlt_ingest_runs';
  const pk = key === 'PRIMARY_KEY' ? name : 'id';
  const del = key === 'DELETE_COLUMN' ? name : 'gone';
  const env: Env = { [key]: name, PRIMARY_KEY: pk, DELETE_COLUMN: del, TABLE_NAME: table };
  const first = await run(
    dataDir,
    [
      { [pk]: 1, v: 'one', [del]: false },
      { [pk]: 2, v: 'two', [del]: false },
    ],
    env,
  );
  assert.equal(
    first.status,
    'succeeded',
    `${key}=${JSON.stringify(name)} must work (names are quoted): ${first.error}`,
  );
  const second = await run(
    dataDir,
    [
      { [pk]: 1, v: 'uno', [del]: false },
      { [pk]: 2, v: 'two', [del]: true },
    ],
    env,
  );
  assertOk(second);
  // Read through the file's default catalog, whatever DuckDB named it.
  const q = (s: string) => `"${s.replaceAll('"', '""')}"`;
  const rows = await query(db, `SELECT ${q(pk)}::INT AS k, v FROM ${q(dataset)}.${q(table)} ORDER BY 1`);
  assert.deepEqual(rows, [{ k: 1, v: 'uno' }], 'merge updated key 1 and deleted key 2');
  const runs = await query(db, `SELECT status, pipeline_name FROM main.${q(ledger)} ORDER BY run_at`);
  assert.deepEqual(
    runs.map((r) => r.status),
    ['succeeded', 'succeeded'],
  );
  if (key === 'PIPELINE_NAME') assert.equal(runs[0]?.pipeline_name, name);
}

describe('SQL reserved words are valid identifiers and work in every key (every name is quoted)', () => {
  for (const word of ['select', 'order', 'main']) {
    for (const key of IDENTIFIER_KEYS) {
      if (key === 'DESTINATION_DATABASE' && word === 'main') continue; // DuckDB's own catalog name: refused, below
      test(`${key}=${word} loads, merges and records the run`, async (t) => {
        await assertNameWorks(t, key, word);
      });
    }
  }

  test("DESTINATION_DATABASE=main (the name of DuckDB's own catalog) is refused as a config error naming the key, creating nothing", async (t) => {
    const dir = await tempDir(t, 'flight-hostile-');
    const dataDir = join(dir, 'data');
    const summary = await run(dataDir, [{ id: 1, v: 'x' }], { DESTINATION_DATABASE: 'main' });
    assert.equal(summary.exitCode, 2, summary.error);
    assert.match(summary.error ?? '', /DESTINATION_DATABASE="main"/);
    assert.equal(existsSync(dataDir), false, 'a config error creates nothing');
  });

  test('CLI: TABLE_NAME=select succeeds and the table "select" exists', async (t) => {
    const dir = await tempDir(t, 'flight-hostile-');
    const gh = await startFakeGitHub(t);
    const dataDir = join(dir, 'data');
    const res = await runCli(
      testEnv(dataDir, gh, { TABLE_NAME: 'select', DATASET_NAME: 'order', GITHUB_REPOS: 'duckdb/duckdb' }),
    );
    assert.equal(res.code, 0, res.stderr);
    assert.ok((await tableNames(dbFile(dataDir))).includes('order.select'));
    assert.deepEqual(await query(dbFile(dataDir), 'SELECT repo FROM "order"."select"'), [{ repo: 'duckdb/duckdb' }]);
  });
});

describe("DuckDB's own catalog and schema names", () => {
  // Valid identifiers that DuckDB itself reserves. Decision: each must either work, or be refused
  // up front as a config error (exit 2) that names the key; never a half-run that fails (exit 1)
  // with a catalog error after creating files.
  for (const [key, name] of [
    ['DESTINATION_DATABASE', 'temp'],
    ['DESTINATION_DATABASE', 'system'],
    ['DATASET_NAME', 'information_schema'],
    ['DATASET_NAME', 'pg_catalog'],
  ] as const) {
    test(`${key}=${name} works, or is refused as a config error naming ${key}`, async (t) => {
      const dir = await tempDir(t, 'flight-hostile-');
      const dataDir = join(dir, 'data');
      const summary = await run(dataDir, [{ id: 1, v: 'x' }], { [key]: name });
      t.diagnostic(`${summary.status} (exit ${summary.exitCode}): ${summary.error ?? ''}`);
      if (summary.exitCode === 2) {
        assert.ok(summary.error?.includes(key) && summary.error.includes(name), summary.error);
        assert.equal(existsSync(dataDir), false, 'a config error creates nothing');
      } else {
        assertOk(summary);
      }
    });
  }

  for (const disposition of ['merge', 'append', 'replace']) {
    test(`DATASET_NAME=main with TABLE_NAME equal to RUN_LEDGER_TABLE (${disposition}): no data rows in the ledger, no ledger row lost`, async (t) => {
      const dir = await tempDir(t, 'flight-hostile-');
      const dataDir = join(dir, 'data');
      assertOk(await run(dataDir, [{ id: 1, v: 'x' }], { DATASET_NAME: 'main' }));
      const ledgerBefore = await query(dbFile(dataDir), 'SELECT * FROM main.dlt_ingest_runs');
      assert.equal(ledgerBefore.length, 1);
      const clash = await run(dataDir, [{ id: 7, v: 'data, not a run' }], {
        DATASET_NAME: 'main',
        TABLE_NAME: 'dlt_ingest_runs',
        WRITE_DISPOSITION: disposition,
      });
      t.diagnostic(`${clash.status} (exit ${clash.exitCode}): ${clash.error ?? ''}`);
      if (clash.exitCode === 2)
        assert.ok(/TABLE_NAME/.test(clash.error ?? '') && /RUN_LEDGER_TABLE/.test(clash.error ?? ''), clash.error);
      const ledgerAfter = await query(dbFile(dataDir), 'SELECT * FROM main.dlt_ingest_runs ORDER BY run_at');
      const own = (row: Row | undefined) => Object.fromEntries(Object.keys(ledgerBefore[0]!).map((k) => [k, row?.[k]]));
      assert.deepEqual(own(ledgerAfter[0]), ledgerBefore[0], 'the first ledger row is still there, unchanged');
      for (const row of ledgerAfter)
        assert.ok(
          row.status === 'succeeded' || row.status === 'failed',
          `only run rows in the ledger, found: ${stringify(row)}`,
        );
      assert.deepEqual(
        Object.keys(ledgerAfter[0]!),
        Object.keys(ledgerBefore[0]!),
        'no data columns added to the ledger',
      );
    });
  }
});

describe('1,000-character names', () => {
  test('TABLE_NAME, DATASET_NAME, RUN_LEDGER_TABLE, PRIMARY_KEY and DELETE_COLUMN of 1,000 characters work (DuckDB has no length limit)', async (t) => {
    const dir = await tempDir(t, 'flight-hostile-');
    const dataDir = join(dir, 'data');
    const [table, dataset, ledger, pk, del] = ['t', 'd', 'l', 'k', 'x'].map((c) => c.repeat(1000)) as [
      string,
      string,
      string,
      string,
      string,
    ];
    const env: Env = {
      TABLE_NAME: table,
      DATASET_NAME: dataset,
      RUN_LEDGER_TABLE: ledger,
      PRIMARY_KEY: pk,
      DELETE_COLUMN: del,
    };
    assertOk(
      await run(
        dataDir,
        [
          { [pk]: 1, v: 'a', [del]: false },
          { [pk]: 2, v: 'b', [del]: false },
        ],
        env,
      ),
    );
    assertOk(await run(dataDir, [{ [pk]: 2, v: 'b', [del]: true }], env));
    const rows = await query(dbFile(dataDir), `SELECT "${pk}"::INT AS k, v FROM "${dataset}"."${table}"`);
    assert.deepEqual(rows, [{ k: 1, v: 'a' }]);
    assert.equal(
      (await query(dbFile(dataDir), `SELECT count(*)::INT AS n FROM main."${ledger}" WHERE status = 'succeeded'`))[0]
        ?.n,
      2,
    );
  });

  test('PIPELINE_NAME of 1,000 characters (longer than a folder name may be) works or is a config error; runFlight never throws', async (t) => {
    const dir = await tempDir(t, 'flight-hostile-');
    const dataDir = join(dir, 'data');
    const name = 'p'.repeat(1000);
    let summary: RunSummary | undefined;
    await assert.doesNotReject(async () => {
      summary = await run(dataDir, [{ id: 1 }], { PIPELINE_NAME: name });
    }, 'runFlight resolves to a summary; it never throws');
    t.diagnostic(`${summary?.status} (exit ${summary?.exitCode}): ${summary?.error?.slice(0, 300) ?? ''}`);
    if (summary?.exitCode === 2) assert.ok(summary.error?.includes('PIPELINE_NAME'), summary.error);
    else assertOk(summary!);
  });

  test('DESTINATION_DATABASE of 1,000 characters (a file name the file system refuses) fails clearly and runFlight does not throw', async (t) => {
    const dir = await tempDir(t, 'flight-hostile-');
    const dataDir = join(dir, 'data');
    const name = 'd'.repeat(1000);
    const summary = await run(dataDir, [{ id: 1 }], { DESTINATION_DATABASE: name });
    t.diagnostic(`${summary.status} (exit ${summary.exitCode}): ${summary.error?.replaceAll(name, '<name>')}`);
    assert.equal(summary.status, 'failed');
    assert.ok(summary.exitCode === 1 || summary.exitCode === 2, String(summary.exitCode));
    assert.match(summary.error ?? '', /too long|DESTINATION_DATABASE/i, 'the message says what is wrong');
  });
});

// ─── GITHUB_REPOS ───────────────────────────────────────────────────────────────────────────────

describe('GITHUB_REPOS entries that would bend the request URL are config errors (exit 2, no request)', () => {
  // [value, the offending entry or a word the message must contain]
  const BAD_REPOS: [string, string][] = [
    ['..', '..'],
    ['../etc', '../etc'],
    ['duckdb/..', 'duckdb/..'],
    ['duckdb/.', 'duckdb/.'],
    ['duckdb/../../admin', 'duckdb/../../admin'],
    ['../../repos/x', '../../repos/x'],
    ['duckdb%2Fduckdb', 'duckdb%2Fduckdb'],
    ['duckdb/duckdb%2F..%2F..', 'duckdb/duckdb%2F..%2F..'],
    ['%2e%2e/duckdb', '%2e%2e/duckdb'],
    ['duckdb/duckdb?per_page=100', 'duckdb/duckdb?per_page=100'],
    ['duckdb/duckdb?', 'duckdb/duckdb?'],
    ['duckdb/duckdb#readme', 'duckdb/duckdb#readme'],
    ['duckdb/duck db', 'duckdb/duck db'],
    ['duck\tdb/duckdb', 'duck\tdb/duckdb'],
    ['duckdb/duck\ndb', 'duckdb/duck\ndb'],
    ['duckdb\\duckdb', 'duckdb\\duckdb'],
    ['https://evil.example/x', 'https://evil.example/x'],
    ['//evil.example/x', '//evil.example/x'],
    ['@evil/x', '@evil/x'],
    ['d\u0443ckdb/duckdb', 'd\u0443ckdb/duckdb'],
    ['duckdb/duckdb,,dlt-hub/dlt', 'empty'],
    [',duckdb/duckdb', 'empty'],
    ['duckdb/duckdb,', 'empty'],
    ['duckdb/duckdb, ,dlt-hub/dlt', 'empty'],
    ['duckdb/duckdb,dlt-hub/dlt,duckdb/duckdb', 'twice'],
    ['duckdb/duckdb,DuckDB/DuckDB', 'twice'],
    ['duckdb/duckdb, duckdb/duckdb ', 'twice'],
  ];

  test('`..`, encoded slashes and dots, query strings, fragments, inner whitespace, URLs, lookalikes, empty entries and duplicates', async (t) => {
    const dir = await tempDir(t, 'flight-hostile-');
    const gh = await startFakeGitHub(t);
    for (const [i, [value, shown]] of BAD_REPOS.entries()) {
      const dataDir = join(dir, `d${i}`);
      const summary = await runFlight({ env: testEnv(dataDir, gh, { GITHUB_REPOS: value }), ...quiet });
      const error = summary.error ?? '';
      assert.equal(
        summary.exitCode,
        2,
        `GITHUB_REPOS=${JSON.stringify(value)} must be a config error; got ${summary.status}: ${error}`,
      );
      assert.ok(error.includes('GITHUB_REPOS'), `names the key: ${error}`);
      assert.ok(
        mentions(error, shown),
        `GITHUB_REPOS=${JSON.stringify(value)}: the message shows ${JSON.stringify(shown)}: ${error}`,
      );
      assert.equal(existsSync(dataDir), false);
    }
    assert.equal(gh.requests.length, 0, 'no request made');
  });

  test('CLI: exit 2, every bad entry on stderr, no request', async (t) => {
    const dir = await tempDir(t, 'flight-hostile-');
    const gh = await startFakeGitHub(t);
    const cwd = join(dir, 'cwd');
    await mkdir(cwd);
    const res = await runCli(
      testEnv(join(dir, 'data'), gh, { GITHUB_REPOS: 'duckdb/duckdb,../../admin,dlt-hub/dlt?x=1,a%2Fb' }),
      { cwd },
    );
    assert.equal(res.code, 2, res.stderr);
    for (const bad of ['../../admin', 'dlt-hub/dlt?x=1', 'a%2Fb'])
      assert.ok(mentions(res.stderr, bad), `stderr shows ${bad}: ${res.stderr}`);
    assert.equal(gh.requests.length, 0);
    assert.deepEqual(await listDir(cwd), []);
  });
});

// ─── Source rows ────────────────────────────────────────────────────────────────────────────────

const CONTROL = Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join('');
const SQL_VALUES = [
  "'; DROP TABLE canary; --",
  '"); DELETE FROM main.canary_main; --',
  "x' OR '1'='1",
  '$1 ? :name @p ${x}',
  '/* comment */ SELECT 1; -- tail',
  "COPY canary TO '/tmp/leak.csv'",
];

/** A database with a canary table in the dataset and one in main; returns a check that both are intact. */
async function withCanaries(dataDir: string): Promise<() => Promise<void>> {
  assertOk(await run(dataDir, [{ id: 1, note: 'canary' }], { TABLE_NAME: 'canary' }));
  await query(dbFile(dataDir), 'CREATE TABLE main.canary_main AS SELECT 42 AS v', { write: true });
  return async () => {
    assert.deepEqual(
      await query(dbFile(dataDir), 'SELECT id::INT AS id, note FROM flights_demo_dlt.canary'),
      [{ id: 1, note: 'canary' }],
      'canary intact',
    );
    assert.deepEqual(
      await query(dbFile(dataDir), 'SELECT v FROM main.canary_main'),
      [{ v: 42 }],
      'main.canary_main intact',
    );
  };
}

describe('source rows with SQL, control characters and lone surrogates', () => {
  test('values with SQL and every control character (\\u0000-\\u001f) are stored verbatim and read back equal; nothing executes', async (t) => {
    const dir = await tempDir(t, 'flight-hostile-');
    const dataDir = join(dir, 'data');
    const canariesIntact = await withCanaries(dataDir);
    const values = [
      ...SQL_VALUES,
      CONTROL,
      ...CONTROL.split(''),
      'a\u0000b',
      '\u007f\u0085\u2028\u2029\ufeff',
      'pair \ud83e\udd86 ok',
    ];
    const rows = values.map((v, i) => ({
      id: `'; DROP TABLE canary; -- ${i}`,
      v,
      nested: { v },
      list: [v, SQL_VALUES[0]!],
    }));
    assertOk(await run(dataDir, rows));
    // merge again on the same SQL-looking keys: the key match is by value, never by SQL text
    const updated = (v: string) => `${v} (updated)`;
    assertOk(
      await run(
        dataDir,
        rows
          .slice(0, 3)
          .map((r) => ({ ...r, v: updated(r.v), nested: { v: updated(r.v) }, list: [updated(r.v), SQL_VALUES[0]!] })),
      ),
    );

    const back = await query(dbFile(dataDir), 'SELECT id, v, nested__v, _dlt_id FROM flights_demo_dlt.t');
    assert.equal(back.length, values.length, 'one row per key, none duplicated by the merge');
    const byId = new Map(back.map((r) => [String(r.id), r]));
    values.forEach((v, i) => {
      const r = byId.get(`'; DROP TABLE canary; -- ${i}`);
      assert.ok(r, `row ${i} is there`);
      assert.equal(r.v, i < 3 ? updated(v) : v, `value ${i} ${JSON.stringify(v)} reads back equal`);
      assert.equal(r.nested__v, i < 3 ? updated(v) : v, `nested value ${i} reads back equal`);
    });
    const list = await query(dbFile(dataDir), 'SELECT value FROM flights_demo_dlt.t__list WHERE _dlt_list_idx = 0');
    assert.deepEqual(
      list.map((r) => r.value).sort(),
      values.map((v, i) => (i < 3 ? updated(v) : v)).sort(),
      'list items read back equal, old child rows of updated keys replaced',
    );
    await canariesIntact();
  });

  test('keys with SQL and control characters become normalized column names; the values stay verbatim', async (t) => {
    const dir = await tempDir(t, 'flight-hostile-');
    const dataDir = join(dir, 'data');
    const canariesIntact = await withCanaries(dataDir);
    const row = {
      id: 1,
      'k\u0000ey': 'nul',
      'tab\tkey': 'tab',
      'new\nline': 'nl',
      [`${CONTROL}ctl`]: 'all',
      '"; DROP TABLE canary; --': 'sql',
      '\ud800lone': 'lone surrogate key',
    };
    assertOk(await run(dataDir, [row]));
    const [back] = await query(dbFile(dataDir), 'SELECT * EXCLUDE (_dlt_id, _dlt_load_id) FROM flights_demo_dlt.t');
    t.diagnostic(`columns: ${stringify(Object.keys(back ?? {}))}`);
    const values = Object.values(back ?? {})
      .map(String)
      .sort();
    assert.deepEqual(
      values,
      ['1', 'all', 'lone surrogate key', 'nl', 'nul', 'sql', 'tab'].sort(),
      'every value stored under some column',
    );
    for (const name of Object.keys(back ?? {}))
      assert.match(name, /^[a-z_][a-z0-9_]*$/, `normalized column name ${JSON.stringify(name)}`);
    await canariesIntact();
  });

  const LONE: [string, (v: string) => SourceRow][] = [
    ['a lone surrogate in a value', (v) => ({ id: 2, v })],
    ['a lone surrogate in a nested (flattened) value', (v) => ({ id: 2, nested: { deep: v } })],
    ['a lone surrogate in a list item (child table)', (v) => ({ id: 2, list: ['fine', v] })],
    ['a lone surrogate in the primary key', (v) => ({ id: v, v: 'x' })],
  ];
  for (const [what, make] of LONE) {
    for (const bad of ['broken \ud800 high', 'broken \udc00 low', 'reversed \udc00\ud800 pair']) {
      if (bad !== 'broken \ud800 high' && what !== 'a lone surrogate in a value') continue; // every shape once, every kind once
      test(`${what} (${JSON.stringify(bad)}): the run fails clearly (mentions the surrogate), previous data untouched`, async (t) => {
        const dir = await tempDir(t, 'flight-hostile-');
        const dataDir = join(dir, 'data');
        const canariesIntact = await withCanaries(dataDir);
        assertOk(await run(dataDir, [{ id: 1, v: 'kept', nested: { deep: 'kept' }, list: ['kept'] }]));
        const before = await query(dbFile(dataDir), 'SELECT * FROM flights_demo_dlt.t');
        const beforeList = await query(dbFile(dataDir), 'SELECT * FROM flights_demo_dlt.t__list');
        const summary = await run(dataDir, [{ id: 1, v: 'would change', list: ['would change'] }, make(bad)]);
        assert.equal(summary.status, 'failed');
        assert.equal(summary.exitCode, 1);
        assert.match(summary.error ?? '', /surrogate/i);
        assert.deepEqual(await query(dbFile(dataDir), 'SELECT * FROM flights_demo_dlt.t'), before, 'table untouched');
        assert.deepEqual(
          await query(dbFile(dataDir), 'SELECT * FROM flights_demo_dlt.t__list'),
          beforeList,
          'child table untouched',
        );
        const ledger = await query(
          dbFile(dataDir),
          "SELECT status, error FROM main.dlt_ingest_runs WHERE destination_table = 't' ORDER BY run_at",
        );
        assert.deepEqual(
          ledger.map((r) => r.status),
          ['succeeded', 'failed'],
        );
        assert.match(String(ledger[1]?.error), /surrogate/i, 'the ledger row says why');
        await canariesIntact();
      });
    }
  }
});
