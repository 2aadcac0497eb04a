// `flight.ts status` (and `npm run status`): the last runs from the ledger, newest first, and the
// row count of each table in the dataset, read from the destination; read-only, nothing created.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { runFlight } from '../flight.ts';
import { PROJECT_ROOT, dbFile, listDir, query, reply, runCli, startFakeGitHub, tempDir, testEnv } from './support.ts';

/** Splits a formatTable block (header, dashes, rows) into records, by the dash columns. */
function parseTable(lines: string[]): Record<string, string>[] {
  const [header = '', dashes = '', ...rows] = lines;
  assert.match(dashes, /^\s+-+(\s+-+)*$/, `a dash line under the header: ${JSON.stringify(dashes)}`);
  const spans: [number, number][] = [];
  for (const m of dashes.matchAll(/-+/g)) spans.push([m.index, m.index + m[0].length]);
  const cut = (line: string) =>
    spans.map(([from], i) => line.slice(from, i + 1 < spans.length ? spans[i + 1]![0] : undefined).trim());
  const names = cut(header);
  return rows.map((r) => Object.fromEntries(cut(r).map((v, i) => [names[i]!, v])));
}

/** The block of lines after a heading line, up to the next blank line. */
function section(text: string, heading: RegExp): string[] {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => heading.test(l));
  assert.ok(at >= 0, `a ${heading} heading in:\n${text}`);
  const rest = lines.slice(at + 1);
  const end = rest.findIndex((l) => l.trim() === '');
  return end < 0 ? rest : rest.slice(0, end);
}

describe('flight.ts status', () => {
  test('after a success and a failure: runs newest first with status, rows, duration, error; tables with row counts', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t, { '/repos/ghost/missing': reply.status(404) });
    const env = testEnv(dir, gh);
    const quiet = { log: () => {}, terminal: null };
    const ok = await runFlight({ env, ...quiet });
    assert.equal(ok.status, 'succeeded', ok.error);
    const bad = await runFlight({ env: { ...env, GITHUB_REPOS: 'duckdb/duckdb,ghost/missing' }, ...quiet });
    assert.equal(bad.status, 'failed');
    const before = await stat(dbFile(dir));

    const res = await runCli(env, { args: ['status'], cwd: dir });
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stderr, '');

    // Runs, newest first.
    const runs = parseTable(section(res.stdout, /^Last runs/));
    assert.equal(runs.length, 2, res.stdout);
    const [newest, oldest] = runs as [Record<string, string>, Record<string, string>];
    for (const column of ['run_at', 'status', 'rows_loaded', 'duration_s', 'error'])
      assert.ok(column in newest, `column ${column}: ${res.stdout}`);
    assert.equal(newest.status, 'failed');
    assert.equal(oldest.status, 'succeeded');
    assert.ok(Date.parse(newest.run_at!) >= Date.parse(oldest.run_at!), 'newest first');
    assert.equal(newest.rows_loaded, '0');
    assert.equal(oldest.rows_loaded, '3');
    assert.match(newest.error ?? '', /ghost\/missing.*404/, 'the failed run shows its error');
    assert.equal(oldest.error, '');
    for (const r of runs) {
      const d = Number(r.duration_s);
      assert.ok(Number.isFinite(d) && d >= 0 && d < 60, `a duration in seconds: ${r.duration_s}`);
    }
    const ledger = await query(dbFile(dir), 'SELECT run_at FROM main.dlt_ingest_runs ORDER BY run_at DESC');
    assert.deepEqual(
      runs.map((r) => Date.parse(r.run_at!)),
      ledger.map((l) => (l.run_at as Date).getTime()),
      'run_at as stored in the ledger',
    );

    // Tables of the dataset, each with its row count, as in the destination.
    const tables = parseTable(section(res.stdout, /^Tables/));
    const expected = await query(
      dbFile(dir),
      `SELECT table_name FROM information_schema.tables WHERE table_schema = 'flights_demo_dlt' ORDER BY table_name`,
    );
    const counts: Record<string, string> = {};
    for (const { table_name } of expected) {
      const [n] = await query(dbFile(dir), `SELECT count(*) AS n FROM flights_demo_dlt."${String(table_name)}"`);
      counts[`flights_demo_dlt.${String(table_name)}`] = String(n?.n);
    }
    assert.deepEqual(Object.fromEntries(tables.map((r) => [r.table, r.rows])), counts);
    assert.equal(counts['flights_demo_dlt.github_repo_stats'], '3');
    assert.equal(counts['flights_demo_dlt._dlt_loads'], '1', 'only the successful run completed a load');

    // Read-only: the file was not written.
    const after = await stat(dbFile(dir));
    assert.equal(after.mtimeMs, before.mtimeMs);
    assert.equal(after.size, before.size);
  });

  test('with no database yet: exit 0, "no runs yet", and neither the file nor its folder is created', async (t) => {
    const dir = await tempDir(t);
    const dataDir = join(dir, 'not', 'there');
    const res = await runCli(testEnv(dataDir, 'http://127.0.0.1:9'), { args: ['status'], cwd: dir });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /no runs yet/i);
    assert.ok(!existsSync(join(dir, 'not')), 'no folder created');
    assert.deepEqual(await listDir(dir), []);
  });

  test('invalid config: exit 2 naming the key', async (t) => {
    const dir = await tempDir(t);
    const res = await runCli(testEnv(dir, 'http://127.0.0.1:9', { DATASET_NAME: 'bad-name!' }), {
      args: ['status'],
      cwd: dir,
    });
    assert.equal(res.code, 2, res.stdout);
    assert.match(res.stderr, /DATASET_NAME/);
    assert.deepEqual(await listDir(dir), [], 'nothing created');
  });

  test('npm run status runs flight.ts status', async () => {
    const pkg = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
      scripts?: Record<string, string>;
    };
    assert.match(pkg.scripts?.status ?? '', /^tsx flight\.ts status$/);
  });
});
