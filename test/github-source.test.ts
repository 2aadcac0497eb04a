// The GitHub demo source against a real HTTP server on 127.0.0.1: request shape, tokens,
// redirects, retries (5xx, 429 + Retry-After, x-ratelimit-reset, network errors, timeouts),
// bounded waiting, bounded concurrency, and 4xx failing at once.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runFlight } from '../flight.ts';
import {
  dbFile,
  expectedRow,
  githubRepo,
  query,
  reply,
  runCli,
  startFakeGitHub,
  tableNames,
  tempDir,
  testEnv,
  withoutDlt,
  type Row,
} from './support.ts';

const DEFAULT_PATHS = ['/repos/dlt-hub/dlt', '/repos/duckdb/duckdb', '/repos/motherduckdb/motherduck-docs'];

async function tableRows(dataDir: string): Promise<Row[]> {
  return withoutDlt(await query(dbFile(dataDir), 'SELECT * FROM flights_demo_dlt.github_repo_stats ORDER BY repo'));
}

async function ledgerRows(dataDir: string): Promise<Row[]> {
  return query(dbFile(dataDir), 'SELECT * FROM main.dlt_ingest_runs ORDER BY run_at');
}

const stringify = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x));

describe('requests', () => {
  test('one GET per repo with the GitHub headers and no Authorization without a token', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const summary = await runFlight({ env: testEnv(join(dir, 'data'), gh) });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.deepEqual(gh.requests.map((r) => r.path).sort(), DEFAULT_PATHS);
    for (const r of gh.requests) {
      assert.equal(r.method, 'GET');
      assert.equal(r.headers.accept, 'application/vnd.github+json');
      assert.match(String(r.headers['x-github-api-version']), /^\d{4}-\d{2}-\d{2}$/);
      assert.ok(r.headers['user-agent'] && r.headers['user-agent'].length > 0, 'User-Agent is set');
      assert.equal(r.headers.authorization, undefined);
    }
  });

  test('GITHUB_API_URL with a path prefix (GitHub Enterprise /api/v3) is honoured', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    for (const p of DEFAULT_PATHS) gh.route(`/api/v3${p}`, reply.ok(githubRepo(p.slice('/repos/'.length))));
    const dataDir = join(dir, 'data');
    const summary = await runFlight({ env: testEnv(dataDir, `${gh.url}/api/v3`) });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.deepEqual(
      gh.requests.map((r) => r.path).sort(),
      DEFAULT_PATHS.map((p) => `/api/v3${p}`),
    );
    assert.equal((await tableRows(dataDir)).length, 3);
  });

  test('GITHUB_API_URL with a trailing slash does not double the slash', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const summary = await runFlight({
      env: testEnv(join(dir, 'data'), `${gh.url}/`, { GITHUB_REPOS: 'duckdb/duckdb' }),
    });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.deepEqual(
      gh.requests.map((r) => r.path),
      ['/repos/duckdb/duckdb'],
    );
  });
});

describe('tokens', () => {
  test('GITHUB_TOKEN is sent as a Bearer token and never appears in the summary or ledger', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const dataDir = join(dir, 'data');
    const token = 'ghp_bareTokenValue1234567890';
    const summary = await runFlight({ env: testEnv(dataDir, gh, { GITHUB_TOKEN: token }) });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.equal(gh.requests.length, 3);
    for (const r of gh.requests) assert.equal(r.headers.authorization, `Bearer ${token}`);
    assert.equal(stringify(summary).includes(token), false);
    assert.equal(stringify(await ledgerRows(dataDir)).includes(token), false);
  });

  test('a single *_GITHUB_TOKEN is used when GITHUB_TOKEN is absent; the bare one wins when both are set', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const secret = 'ghp_fromFlightsSecret_abcdef';
    const first = await runFlight({
      env: testEnv(join(dir, 'a'), gh, { GITHUB_REPOS: 'duckdb/duckdb', MYSECRET_GITHUB_TOKEN: secret }),
    });
    assert.equal(first.status, 'succeeded', first.error);
    assert.deepEqual(
      gh.requests.map((r) => r.headers.authorization),
      [`Bearer ${secret}`],
    );
    assert.equal(stringify(first).includes(secret), false);
    assert.equal(stringify(await ledgerRows(join(dir, 'a'))).includes(secret), false);

    const second = await runFlight({
      env: testEnv(join(dir, 'b'), gh, {
        GITHUB_REPOS: 'duckdb/duckdb',
        MYSECRET_GITHUB_TOKEN: secret,
        GITHUB_TOKEN: 'ghp_bare_wins_999',
      }),
    });
    assert.equal(second.status, 'succeeded', second.error);
    assert.equal(gh.requests[1]?.headers.authorization, 'Bearer ghp_bare_wins_999');
  });

  test('CLI: tokens reach GitHub but never stdout, stderr or the ledger, on success and on failure', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t, { '/repos/ghost/missing': reply.status(404) });
    const cwd = join(dir, 'cwd');
    await mkdir(cwd);
    const secret = 'ghp_cliSecretToken_zyx987';
    const okDir = join(dir, 'ok');
    const ok = await runCli(testEnv(okDir, gh, { MYSECRET_GITHUB_TOKEN: secret }), { cwd });
    assert.equal(ok.code, 0, ok.stderr);
    for (const r of gh.requests) assert.equal(r.headers.authorization, `Bearer ${secret}`);
    assert.equal(ok.stdout.includes(secret), false);
    assert.equal(ok.stderr.includes(secret), false);
    assert.equal(stringify(await ledgerRows(okDir)).includes(secret), false);

    const failDir = join(dir, 'fail');
    const bare = 'ghp_bareCliToken_555444';
    const failed = await runCli(
      testEnv(failDir, gh, { GITHUB_TOKEN: bare, GITHUB_REPOS: 'duckdb/duckdb,ghost/missing' }),
      { cwd },
    );
    assert.equal(failed.code, 1, failed.stderr);
    assert.equal(gh.requestsFor('/repos/ghost/missing')[0]?.headers.authorization, `Bearer ${bare}`);
    assert.equal((failed.stdout + failed.stderr).includes(bare), false);
    assert.equal(stringify(await ledgerRows(failDir)).includes(bare), false);
  });
});

describe('client errors fail at once', () => {
  for (const status of [404, 401, 410, 422]) {
    test(`${status} fails the run naming the repo and the status, without retrying`, async (t) => {
      const dir = await tempDir(t);
      const gh = await startFakeGitHub(t, { '/repos/ghost/missing': reply.status(status) });
      const dataDir = join(dir, 'data');
      const started = performance.now();
      const summary = await runFlight({
        env: testEnv(dataDir, gh, { GITHUB_REPOS: 'duckdb/duckdb,ghost/missing', HTTP_MAX_WAIT_S: '30' }),
      });
      const elapsed = performance.now() - started;
      assert.equal(summary.status, 'failed');
      assert.equal(summary.exitCode, 1);
      assert.equal(summary.rowsLoaded, 0);
      assert.ok(summary.error?.includes('ghost/missing'), summary.error);
      assert.ok(summary.error?.includes(String(status)), summary.error);
      assert.equal(gh.requestsFor('/repos/ghost/missing').length, 1, 'no retry on a client error');
      assert.ok(elapsed < 5000, `failed at once (took ${elapsed} ms)`);
      // The destination was reachable: the failed run is in the ledger, and no data table was made.
      const ledger = await ledgerRows(dataDir);
      assert.equal(ledger.length, 1);
      assert.equal(ledger[0]?.status, 'failed');
      assert.equal(ledger[0]?.rows_loaded, 0n);
      assert.ok(String(ledger[0]?.error).includes('ghost/missing'), String(ledger[0]?.error));
      assert.ok(String(ledger[0]?.error).includes(String(status)), String(ledger[0]?.error));
      assert.equal((await tableNames(dbFile(dataDir))).includes('flights_demo_dlt.github_repo_stats'), false);
    });
  }

  test('CLI: a 404 exits 1 with the repo and the status on stderr', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t, { '/repos/ghost/missing': reply.status(404) });
    const cwd = join(dir, 'cwd');
    await mkdir(cwd);
    const dataDir = join(dir, 'data');
    const res = await runCli(testEnv(dataDir, gh, { GITHUB_REPOS: 'ghost/missing' }), { cwd });
    assert.equal(res.code, 1, `stdout: ${res.stdout}\nstderr: ${res.stderr}`);
    assert.ok(res.stderr.includes('ghost/missing'), res.stderr);
    assert.ok(res.stderr.includes('404'), res.stderr);
    const ledger = await ledgerRows(dataDir);
    assert.deepEqual(
      ledger.map((r) => r.status),
      ['failed'],
    );
  });
});

describe('retries', () => {
  test('500 then success: the run succeeds after a retry', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t, { '/repos/duckdb/duckdb': [reply.status(500), {}] });
    const dataDir = join(dir, 'data');
    const summary = await runFlight({ env: testEnv(dataDir, gh) });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.equal(summary.rowsLoaded, 3);
    assert.equal(gh.requestsFor('/repos/duckdb/duckdb').length, 2);
    assert.deepEqual(await tableRows(dataDir), [
      expectedRow('dlt-hub/dlt'),
      expectedRow('duckdb/duckdb'),
      expectedRow('motherduckdb/motherduck-docs'),
    ]);
  });

  test('502 and 503 in a row, then success', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t, { '/repos/dlt-hub/dlt': [reply.status(502), reply.status(503), {}] });
    const summary = await runFlight({ env: testEnv(join(dir, 'data'), gh, { HTTP_MAX_WAIT_S: '20' }) });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.equal(gh.requestsFor('/repos/dlt-hub/dlt').length, 3);
  });

  test('429 with Retry-After: 1 waits at least a second, then succeeds', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t, {
      '/repos/duckdb/duckdb': [reply.status(429, { 'retry-after': '1', 'x-ratelimit-remaining': 0 }), {}],
    });
    const dataDir = join(dir, 'data');
    const summary = await runFlight({ env: testEnv(dataDir, gh) });
    assert.equal(summary.status, 'succeeded', summary.error);
    const [first, second] = gh.requestsFor('/repos/duckdb/duckdb');
    assert.ok(first && second, 'two requests');
    assert.ok(second.at - first.at >= 950, `waited ${second.at - first.at} ms`);
    assert.equal((await tableRows(dataDir)).length, 3);
  });

  test('429 with x-ratelimit-reset waits until the reset time, then succeeds', async (t) => {
    const dir = await tempDir(t);
    let resetEpochS = 0;
    const gh = await startFakeGitHub(t, {
      '/repos/duckdb/duckdb': [
        (_req, res) => {
          resetEpochS = Math.floor(Date.now() / 1000) + 2;
          res.writeHead(429, {
            'content-type': 'application/json',
            'x-ratelimit-limit': '60',
            'x-ratelimit-remaining': '0',
            'x-ratelimit-reset': String(resetEpochS),
          });
          res.end(JSON.stringify({ message: 'API rate limit exceeded', documentation_url: 'https://docs.github.com' }));
        },
        {},
      ],
    });
    const summary = await runFlight({ env: testEnv(join(dir, 'data'), gh, { HTTP_MAX_WAIT_S: '10' }) });
    assert.equal(summary.status, 'succeeded', summary.error);
    const second = gh.requestsFor('/repos/duckdb/duckdb')[1];
    assert.ok(second, 'retried');
    assert.ok(
      second.wallAt >= resetEpochS * 1000 - 100,
      `retried ${resetEpochS * 1000 - second.wallAt} ms before the reset`,
    );
  });

  test('a Retry-After beyond HTTP_MAX_WAIT_S fails promptly instead of waiting', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t, { '/repos/duckdb/duckdb': reply.status(429, { 'retry-after': '120' }) });
    const dataDir = join(dir, 'data');
    const started = performance.now();
    const summary = await runFlight({ env: testEnv(dataDir, gh, { HTTP_MAX_WAIT_S: '1' }) });
    const elapsed = performance.now() - started;
    assert.equal(summary.status, 'failed');
    assert.equal(summary.exitCode, 1);
    assert.ok(elapsed < 8000, `took ${elapsed} ms`);
    assert.ok(summary.error?.includes('duckdb/duckdb'), summary.error);
    assert.ok(summary.error?.includes('429'), summary.error);
    const ledger = await ledgerRows(dataDir);
    assert.deepEqual(
      ledger.map((r) => r.status),
      ['failed'],
    );
  });

  test('a 500 that persists fails after HTTP_MAX_RETRIES retries, naming the repo and the status', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t, { '/repos/duckdb/duckdb': reply.status(500) });
    const summary = await runFlight({
      env: testEnv(join(dir, 'data'), gh, { HTTP_MAX_RETRIES: '2', HTTP_MAX_WAIT_S: '30' }),
    });
    assert.equal(summary.status, 'failed');
    assert.equal(summary.exitCode, 1);
    assert.equal(gh.requestsFor('/repos/duckdb/duckdb').length, 3, 'one try plus two retries');
    assert.ok(summary.error?.includes('duckdb/duckdb'), summary.error);
    assert.ok(summary.error?.includes('500'), summary.error);
  });

  test('a connection reset is retried', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t, { '/repos/duckdb/duckdb': [reply.reset(), {}] });
    const dataDir = join(dir, 'data');
    const summary = await runFlight({ env: testEnv(dataDir, gh) });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.equal(gh.requestsFor('/repos/duckdb/duckdb').length, 2);
    assert.equal((await tableRows(dataDir)).length, 3);
  });

  test('a truncated body is retried', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t, { '/repos/duckdb/duckdb': [reply.truncated(), {}] });
    const dataDir = join(dir, 'data');
    const summary = await runFlight({ env: testEnv(dataDir, gh) });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.equal(gh.requestsFor('/repos/duckdb/duckdb').length, 2);
    assert.deepEqual(
      (await tableRows(dataDir)).find((r) => r.repo === 'duckdb/duckdb'),
      expectedRow('duckdb/duckdb'),
    );
  });

  test('a response slower than HTTP_TIMEOUT_S times out and is retried', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t, { '/repos/duckdb/duckdb': [reply.slow(4000), {}] });
    const started = performance.now();
    const summary = await runFlight({
      env: testEnv(join(dir, 'data'), gh, { HTTP_TIMEOUT_S: '1', HTTP_MAX_WAIT_S: '10' }),
    });
    const elapsed = performance.now() - started;
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.equal(gh.requestsFor('/repos/duckdb/duckdb').length, 2);
    assert.ok(elapsed < 3900, `gave up on the slow response after HTTP_TIMEOUT_S (took ${elapsed} ms)`);
  });

  test('a timeout with no retries left fails the run naming the repo', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t, { '/repos/duckdb/duckdb': reply.slow(5000) });
    const started = performance.now();
    const summary = await runFlight({
      env: testEnv(join(dir, 'data'), gh, { HTTP_TIMEOUT_S: '1', HTTP_MAX_RETRIES: '0' }),
    });
    const elapsed = performance.now() - started;
    assert.equal(summary.status, 'failed');
    assert.equal(summary.exitCode, 1);
    assert.ok(summary.error?.includes('duckdb/duckdb'), summary.error);
    assert.ok(elapsed < 4500, `took ${elapsed} ms`);
  });
});

describe('redirects and concurrency', () => {
  test('a 301 (renamed repo) is followed; the row keeps the configured name', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const renamed = githubRepo('new-owner/new-name', {
      id: 4242,
      stargazers_count: 777,
      forks_count: 12,
      open_issues_count: 3,
      default_branch: 'trunk',
      pushed_at: '2025-09-30T23:59:59Z',
    });
    gh.route('/repos/old-owner/old-name', reply.redirect(`${gh.url}/repositories/4242`));
    gh.route('/repositories/4242', reply.ok(renamed));
    const dataDir = join(dir, 'data');
    const summary = await runFlight({ env: testEnv(dataDir, gh, { GITHUB_REPOS: 'old-owner/old-name' }) });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.deepEqual(
      gh.requests.map((r) => r.path),
      ['/repos/old-owner/old-name', '/repositories/4242'],
    );
    assert.deepEqual(await tableRows(dataDir), [expectedRow('old-owner/old-name', renamed)]);
  });

  test('a relative Location is followed too', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    gh.route('/repos/old-owner/old-name', reply.redirect('/repos/new-owner/new-name', 301));
    const dataDir = join(dir, 'data');
    const summary = await runFlight({ env: testEnv(dataDir, gh, { GITHUB_REPOS: 'old-owner/old-name' }) });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.deepEqual(await tableRows(dataDir), [expectedRow('old-owner/old-name', githubRepo('new-owner/new-name'))]);
  });

  test('GITHUB_CONCURRENCY bounds the requests in flight', async (t) => {
    const dir = await tempDir(t);
    const repos = ['o/r1', 'o/r2', 'o/r3', 'o/r4', 'o/r5', 'o/r6'];
    const routes = Object.fromEntries(repos.map((r) => [`/repos/${r}`, reply.slow(250)]));
    const gh = await startFakeGitHub(t, routes);
    const two = await runFlight({
      env: testEnv(join(dir, 'two'), gh, { GITHUB_REPOS: repos.join(','), GITHUB_CONCURRENCY: '2' }),
    });
    assert.equal(two.status, 'succeeded', two.error);
    assert.equal(gh.requests.length, 6);
    assert.equal(gh.maxInFlight, 2);

    const gh4 = await startFakeGitHub(t, routes);
    const dflt = await runFlight({ env: testEnv(join(dir, 'dflt'), gh4, { GITHUB_REPOS: repos.join(',') }) });
    assert.equal(dflt.status, 'succeeded', dflt.error);
    assert.equal(gh4.maxInFlight, 4, 'default GITHUB_CONCURRENCY is 4');
    assert.equal(dflt.rowsLoaded, 6);
  });
});
