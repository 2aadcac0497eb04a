// The offline demo (`npm run demo`): recorded GitHub API responses served from 127.0.0.1, a real
// run into a local file, the loaded table and the ledger row printed. And the fixtures themselves:
// the real shape of GitHub's GET /repos/{owner}/{repo}.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, readdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runDemo, serveRecordedGitHub } from './demo.ts';
import { PROJECT_ROOT, listDir, query, tempDir } from './support.ts';

const FIXTURES = fileURLToPath(new URL('./fixtures/github/', import.meta.url));

interface Fixture {
  /** owner/name from the file path. */
  pathName: string;
  body: Record<string, unknown>;
}

async function fixtures(): Promise<Fixture[]> {
  const out: Fixture[] = [];
  const reposDir = join(FIXTURES, 'repos');
  for (const owner of (await readdir(reposDir)).sort())
    for (const file of (await readdir(join(reposDir, owner))).sort()) {
      assert.match(file, /\.json$/, `only .json files under repos/<owner>/: ${owner}/${file}`);
      const pathName = relative(reposDir, join(reposDir, owner, file))
        .split(sep)
        .join('/')
        .replace(/\.json$/, '');
      out.push({
        pathName,
        body: JSON.parse(await readFile(join(reposDir, owner, file), 'utf8')) as Record<string, unknown>,
      });
    }
  return out;
}

const ISO_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const num = (v: unknown): number => {
  assert.equal(typeof v, 'number');
  return v as number;
};

describe('the recorded GitHub fixtures', () => {
  test('three repos, the demo defaults, each in the real GET /repos/{owner}/{repo} shape', async () => {
    const all = await fixtures();
    assert.deepEqual(all.map((f) => f.pathName).sort(), [
      'dlt-hub/dlt',
      'duckdb/duckdb',
      'motherduckdb/motherduck-docs',
    ]);
    for (const { pathName, body } of all) {
      const [owner, name] = pathName.split('/');
      assert.ok(Number.isSafeInteger(body.id) && num(body.id) > 0, `${pathName}: id`);
      assert.equal(typeof body.node_id, 'string', `${pathName}: node_id`);
      assert.equal(body.full_name, pathName, `${pathName}: full_name matches the file path`);
      assert.equal(body.name, name);
      const ownerObj = body.owner as Record<string, unknown> | null;
      assert.ok(ownerObj && typeof ownerObj === 'object', `${pathName}: owner is an object`);
      assert.equal(ownerObj.login, owner, `${pathName}: owner.login matches the folder`);
      assert.ok(Number.isSafeInteger(ownerObj.id), `${pathName}: owner.id`);
      for (const k of ['stargazers_count', 'forks_count', 'open_issues_count', 'watchers_count', 'size'])
        assert.ok(Number.isSafeInteger(body[k]) && num(body[k]) >= 0, `${pathName}: ${k} is a count`);
      // GitHub mirrors these legacy fields.
      assert.equal(body.watchers, body.stargazers_count, `${pathName}: watchers`);
      assert.equal(body.watchers_count, body.stargazers_count, `${pathName}: watchers_count`);
      assert.equal(body.forks, body.forks_count, `${pathName}: forks`);
      assert.equal(body.open_issues, body.open_issues_count, `${pathName}: open_issues`);
      assert.equal(typeof body.default_branch, 'string');
      assert.ok((body.default_branch as string).length > 0);
      for (const k of ['pushed_at', 'created_at', 'updated_at']) {
        assert.match(String(body[k]), ISO_SECONDS, `${pathName}: ${k} is ISO-8601 as GitHub writes it`);
        assert.ok(!Number.isNaN(Date.parse(String(body[k]))));
      }
      assert.ok(
        Date.parse(String(body.created_at)) <= Date.parse(String(body.pushed_at)),
        `${pathName}: created before pushed`,
      );
      assert.equal(body.html_url, `https://github.com/${pathName}`);
      assert.equal(body.url, `https://api.github.com/repos/${pathName}`);
      assert.equal(body.private, false);
      assert.equal(typeof body.fork, 'boolean');
      assert.ok(Array.isArray(body.topics));
    }
  });

  test("serveRecordedGitHub answers the fixtures on 127.0.0.1 and 404 with GitHub's error body otherwise", async (t) => {
    const { url, server } = await serveRecordedGitHub();
    t.after(() => server.close());
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const ok = await fetch(`${url}/repos/duckdb/duckdb`);
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await ok.json()) as Record<string, unknown>;
    const fixture = JSON.parse(await readFile(join(FIXTURES, 'repos/duckdb/duckdb.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    assert.deepEqual(body, fixture);
    const missing = await fetch(`${url}/repos/ghost/missing`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { message?: string }).message, 'Not Found');
  });
});

describe('runDemo', () => {
  test('loads the fixtures into a local file in LOCAL_DATA_DIR and prints the table and a succeeded ledger row', async (t) => {
    const dir = await tempDir(t);
    const printed: string[] = [];
    // A GITHUB_API_URL that goes nowhere (TEST-NET-1): the demo must replace it with its local server.
    const code = await runDemo(
      { LOCAL_DATA_DIR: dir, GITHUB_API_URL: 'http://192.0.2.1', HTTP_TIMEOUT_S: '2', HTTP_MAX_RETRIES: '0' },
      (s) => printed.push(s),
    );
    const text = printed.join('\n');
    assert.equal(code, 0, text);

    // Only 127.0.0.1 was used.
    const served = /Serving recorded GitHub API responses at (http:\/\/127\.0\.0\.1:\d+)/.exec(text);
    assert.ok(served, text);
    const effects = [...text.matchAll(/effect=net:(\S+)/g)].map((m) => m[1]);
    assert.ok(effects.length > 0, 'the fetch progress names the host');
    for (const e of effects) assert.equal(e, `${new URL(served[1]!).host}/repos`);
    assert.ok(!text.includes('192.0.2.1'), 'the configured URL was not used');

    // The loaded table, printed: every fixture repo with its stars, forks, open issues, branch.
    const lines = text.split('\n');
    for (const { pathName, body } of await fixtures()) {
      const row = lines.find((l) => l.trim().split(/\s+/)[0] === pathName);
      assert.ok(row, `a printed row for ${pathName}:\n${text}`);
      const cells = row.trim().split(/\s+/);
      assert.equal(cells[1], String(body.stargazers_count), `${pathName} stars in ${row}`);
      assert.ok(cells.includes(String(body.forks_count)), `${pathName} forks in ${row}`);
      assert.ok(cells.includes(String(body.open_issues_count)), `${pathName} open issues in ${row}`);
      assert.ok(cells.includes(String(body.default_branch)), `${pathName} branch in ${row}`);
      assert.ok(cells.includes(new Date(String(body.pushed_at)).toISOString()), `${pathName} pushed_at in ${row}`);
    }
    // The ledger row, printed as column/value pairs.
    assert.match(text, /^\s+status\s+succeeded\s*$/m);
    assert.match(text, /^\s+rows_loaded\s+3\s*$/m);
    assert.match(text, /^\s+error\s*$/m, 'no error');

    // The file is in the temp dir, and holds the fixture values.
    const file = join(dir, 'flights_demo_offline.duckdb');
    assert.ok(existsSync(file), `${file} exists`);
    assert.ok(text.includes(file), 'the printed text says where the file is');
    assert.deepEqual(
      (await listDir(dir)).filter((f) => !f.endsWith('.wal')),
      ['flights_demo_offline.duckdb'],
    );
    const rows = await query(file, 'SELECT repo, stars FROM flights_demo_dlt.github_repo_stats ORDER BY repo');
    const expected = (await fixtures()).map((f) => ({ repo: f.pathName, stars: BigInt(num(f.body.stargazers_count)) }));
    assert.deepEqual(
      rows,
      expected.sort((a, b) => a.repo.localeCompare(b.repo)),
    );
    const ledger = await query(file, 'SELECT status, rows_loaded, error FROM main.dlt_ingest_runs');
    assert.deepEqual(ledger, [{ status: 'succeeded', rows_loaded: 3n, error: null }]);
  });

  test('npm run demo is `tsx test/demo.ts`, and running it works end to end', { timeout: 60_000 }, async (t) => {
    const pkg = JSON.parse(await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
      scripts?: Record<string, string>;
    };
    assert.equal(pkg.scripts?.demo, 'tsx test/demo.ts');
    const dir = await tempDir(t);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? tmpdir(),
      TMPDIR: process.env.TMPDIR ?? tmpdir(),
      LOCAL_DATA_DIR: dir,
    };
    const res = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn('npm', ['run', '--silent', 'demo'], {
        cwd: PROJECT_ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /@flight-run @flight ok exit=0/);
    assert.match(res.stdout, /^\s+status\s+succeeded\s*$/m);
    assert.ok(existsSync(join(dir, 'flights_demo_offline.duckdb')), res.stdout);
  });
});
