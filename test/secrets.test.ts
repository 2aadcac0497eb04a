// Secrets: MOTHERDUCK_TOKEN and GITHUB_TOKEN never leave the process, not in stdout, stderr,
// the ledger, the working files, the DuckDB file's bytes or error messages; not when MotherDuck
// can't be reached (offline here), not when GitHub echoes the Authorization header back, not
// when a message is cut short around the token. (github-source.test.ts checks that the
// token is sent to GitHub and kept out of a plain 404's output; this extends it.)
import { test, describe } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { githubRepoRows, runFlight, type SourceContext } from '../flight.ts';
import {
  dbFile,
  listDir,
  query,
  runCli,
  startFakeGitHub,
  tempDir,
  testEnv,
  type Env,
  type RawHandler,
} from './support.ts';

const MD_TOKEN = 'mdtok_SECRET_123';
const GH_TOKEN = 'ghp_Zq9WvX4tLk2RnB7yHs3JdP6mF1cA8eU0'; // no 8-character piece in common with MD_TOKEN
const TOKENS = [MD_TOKEN, GH_TOKEN];

const stringify = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x));

/** Every run of 8+ characters of a token: a message cut in the middle of a token must not keep half of it. */
function fragments(token: string, min = 8): string[] {
  const out: string[] = [];
  for (let i = 0; i + min <= token.length; i++) out.push(token.slice(i, i + min));
  return out;
}

/** Fails if `text` holds a token, whole or any 8-character piece of it. */
function assertNoSecret(text: string, where: string): void {
  for (const token of TOKENS) {
    assert.equal(text.includes(token), false, `${where} holds the token ${token}`);
    const piece = fragments(token).find((f) => text.includes(f));
    assert.equal(
      piece,
      undefined,
      `${where} holds a piece of the token ${token}: ${JSON.stringify(piece)}\n${text.slice(0, 2000)}`,
    );
  }
}

/** Every file under `dir` (recursively), read as bytes and as latin1 text, must not hold a token. */
function assertNoSecretInFiles(dir: string, where: string): number {
  let files = 0;
  if (!existsSync(dir)) return 0;
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    files++;
    const bytes = readFileSync(path);
    for (const token of TOKENS) {
      assert.equal(bytes.includes(Buffer.from(token, 'utf8')), false, `${where}: ${path} holds the token ${token}`);
      assert.equal(
        bytes.includes(Buffer.from(token, 'utf16le')),
        false,
        `${where}: ${path} holds the token ${token} (UTF-16)`,
      );
    }
  }
  return files;
}

async function ledgerText(dataDir: string): Promise<string> {
  return stringify(await query(dbFile(dataDir), 'SELECT * FROM main.dlt_ingest_runs ORDER BY run_at'));
}

describe('MotherDuck unreachable (offline here: the extension cannot be downloaded)', () => {
  /** CLI with a private HOME, TMPDIR and cwd, so every file the run could write is inspected. */
  async function offlineRun(t: TestContext, env: Env, args: string[] = []) {
    const dir = await tempDir(t, 'flight-secrets-');
    const [home, tmp, cwd] = [join(dir, 'home'), join(dir, 'tmp'), join(dir, 'cwd')];
    await Promise.all([mkdir(home), mkdir(tmp), mkdir(cwd)]);
    const dataDir = join(dir, 'data');
    const res = await runCli(
      { HOME: home, TMPDIR: tmp, LOCAL_DATA_DIR: dataDir, GITHUB_API_URL: 'http://127.0.0.1:9', ...env },
      { cwd, args },
    );
    return { dir, home, tmp, cwd, dataDir, res };
  }

  test('DESTINATION=motherduck with a fake token: exit 1, a message naming MotherDuck, the token nowhere, nothing written locally', async (t) => {
    const { dir, tmp, cwd, dataDir, res } = await offlineRun(t, {
      DESTINATION: 'motherduck',
      MOTHERDUCK_TOKEN: MD_TOKEN,
      GITHUB_TOKEN: GH_TOKEN,
    });
    t.diagnostic(`stderr: ${res.stderr.trim()}`);
    assert.equal(res.code, 1, `exit code; stdout: ${res.stdout}\nstderr: ${res.stderr}`);
    assert.match(res.stderr, /MotherDuck/, 'the failure names MotherDuck');
    assert.match(res.stderr, /Flight failed/);
    assertNoSecret(res.stdout, 'stdout');
    assertNoSecret(res.stderr, 'stderr');
    assert.equal(existsSync(dataDir), false, 'LOCAL_DATA_DIR is not created for a MotherDuck run');
    assert.deepEqual(await listDir(cwd), [], 'nothing written in the working directory (no ./data)');
    assert.deepEqual(await listDir(join(tmp, 'flight-dlt-ingest')), [], 'no working folder left behind');
    assertNoSecretInFiles(dir, 'files written during the run (HOME, TMPDIR, cwd)');
  });

  test('the lowercase motherduck_token (DESTINATION=auto) takes the MotherDuck path and is redacted the same way', async (t) => {
    const { dir, cwd, dataDir, res } = await offlineRun(t, { motherduck_token: MD_TOKEN });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /MotherDuck/);
    assertNoSecret(res.stdout + res.stderr, 'output');
    assert.equal(existsSync(dataDir), false);
    assert.deepEqual(await listDir(cwd), []);
    assertNoSecretInFiles(dir, 'files');
  });

  test('`flight.ts status` against MotherDuck offline: exit 1, token not printed', async (t) => {
    const { res, cwd } = await offlineRun(t, { DESTINATION: 'motherduck', MOTHERDUCK_TOKEN: MD_TOKEN }, ['status']);
    assert.equal(res.code, 1, `stdout: ${res.stdout}\nstderr: ${res.stderr}`);
    assertNoSecret(res.stdout + res.stderr, 'status output');
    assert.deepEqual(await listDir(cwd), []);
  });
});

describe('local runs with both tokens set', () => {
  test('success: tokens reach GitHub only; not in the log, summary, ledger, working files or DuckDB file bytes', async (t) => {
    const dir = await tempDir(t, 'flight-secrets-');
    const gh = await startFakeGitHub(t);
    const dataDir = join(dir, 'data');
    const pipeline = `secrets_${process.pid}_${Date.now()}`;
    const lines: string[] = [];
    let workFiles = 0;
    // The demo source, plus a look into this run's working folder after every row. Loader files are
    // loaded and deleted as they are written, so each look sees what exists at that moment (at least
    // the folder's probe file).
    async function* source(ctx: SourceContext) {
      const base = join(tmpdir(), 'flight-dlt-ingest');
      for await (const row of githubRepoRows(ctx)) {
        yield row;
        for (const name of await readdir(base))
          if (name.startsWith(`${pipeline}-`)) workFiles += assertNoSecretInFiles(join(base, name), 'working folder');
      }
    }
    const summary = await runFlight({
      env: testEnv(dataDir, gh, {
        DESTINATION: 'local',
        MOTHERDUCK_TOKEN: MD_TOKEN,
        GITHUB_TOKEN: GH_TOKEN,
        PIPELINE_NAME: pipeline,
        BATCH_ROWS: '1',
      }),
      source,
      log: (l) => lines.push(l),
    });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.ok(workFiles >= 3, `inspected the working folder's files (${workFiles})`);
    for (const r of gh.requests)
      assert.equal(r.headers.authorization, `Bearer ${GH_TOKEN}`, 'the token was really in play');
    assertNoSecret(lines.join('\n'), 'log');
    assertNoSecret(stringify(summary), 'summary');
    assertNoSecret(await ledgerText(dataDir), 'ledger');
    assertNoSecretInFiles(dataDir, 'DuckDB file');
  });

  test('a source error quoting the token is redacted in the summary, the log and the ledger', async (t) => {
    const dir = await tempDir(t, 'flight-secrets-');
    const dataDir = join(dir, 'data');
    const lines: string[] = [];
    const summary = await runFlight({
      env: testEnv(dataDir, 'http://127.0.0.1:9', {
        DESTINATION: 'local',
        MOTHERDUCK_TOKEN: MD_TOKEN,
        GITHUB_TOKEN: GH_TOKEN,
        TABLE_NAME: 't',
        PRIMARY_KEY: 'id',
      }),
      source: (ctx) => {
        throw new Error(`upstream refused token ${ctx.config.GITHUB_TOKEN} (and md ${ctx.config.MOTHERDUCK_TOKEN})`);
      },
      log: (l) => lines.push(l),
    });
    assert.equal(summary.status, 'failed');
    assert.match(summary.error ?? '', /upstream refused token/);
    assertNoSecret(summary.error ?? '', 'error');
    assertNoSecret(lines.join('\n'), 'log');
    assertNoSecret(await ledgerText(dataDir), 'ledger');
    assertNoSecretInFiles(dataDir, 'DuckDB file');
  });
});

describe('GitHub echoing the Authorization header', () => {
  const SAID = 'Bad credentials, you sent: Authorization: ';
  /** A 401 whose JSON message (and an extra field) repeats the Authorization header it received, after `pad` characters. */
  const echo401 =
    (pad: number): RawHandler =>
    (req, res) => {
      res.writeHead(401, { 'content-type': 'application/json; charset=utf-8' });
      res.end(
        JSON.stringify({ message: `${'.'.repeat(pad)}${SAID}${req.headers.authorization}`, echoed: req.headers }),
      );
    };

  test('CLI: a 401 echoing the header fails with exit 1; the token is not in stdout, stderr or the ledger', async (t) => {
    const dir = await tempDir(t, 'flight-secrets-');
    const gh = await startFakeGitHub(t, { '/repos/duckdb/duckdb': echo401(0) });
    const cwd = join(dir, 'cwd');
    await mkdir(cwd);
    const dataDir = join(dir, 'data');
    const res = await runCli(testEnv(dataDir, gh, { GITHUB_TOKEN: GH_TOKEN, GITHUB_REPOS: 'duckdb/duckdb' }), { cwd });
    assert.equal(res.code, 1, res.stderr);
    assert.match(res.stderr, /401/);
    assert.match(res.stderr, /Bad credentials/, 'the server message is kept, minus the token');
    assertNoSecret(res.stdout, 'stdout');
    assertNoSecret(res.stderr, 'stderr');
    const ledger = await ledgerText(dataDir);
    assert.match(ledger, /401/);
    assertNoSecret(ledger, 'ledger');
    assertNoSecretInFiles(dataDir, 'DuckDB file');
  });

  // A server message is shortened (to 200 characters) before the error is redacted: a token that
  // straddles the cut would leave its first part in the error unless redaction comes first.
  for (const kept of [8, 35]) {
    test(`a 401 whose long message is cut ${kept} characters into the echoed token leaks no part of it`, async (t) => {
      const dir = await tempDir(t, 'flight-secrets-');
      const pad = 200 - SAID.length - 'Bearer '.length - kept;
      const gh = await startFakeGitHub(t, { '/repos/duckdb/duckdb': echo401(pad) });
      const dataDir = join(dir, 'data');
      const lines: string[] = [];
      const summary = await runFlight({
        env: testEnv(dataDir, gh, { GITHUB_TOKEN: GH_TOKEN, GITHUB_REPOS: 'duckdb/duckdb' }),
        log: (l) => lines.push(l),
      });
      assert.equal(summary.status, 'failed');
      assert.match(summary.error ?? '', /401/);
      assertNoSecret(summary.error ?? '', 'error');
      assertNoSecret(lines.join('\n'), 'log');
      assertNoSecret(await ledgerText(dataDir), 'ledger');
    });
  }

  test('a 200 HTML page echoing the header, quoted in the "not JSON" message, leaks no part of the token', async (t) => {
    const dir = await tempDir(t, 'flight-secrets-');
    const gh = await startFakeGitHub(t, {
      '/repos/duckdb/duckdb': (req, res) => {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end(`<html>Authorization: ${req.headers.authorization} was rejected by the proxy</html>`);
      },
    });
    const dataDir = join(dir, 'data');
    const lines: string[] = [];
    const summary = await runFlight({
      env: testEnv(dataDir, gh, { GITHUB_TOKEN: GH_TOKEN, GITHUB_REPOS: 'duckdb/duckdb', HTTP_MAX_RETRIES: '0' }),
      log: (l) => lines.push(l),
    });
    assert.equal(summary.status, 'failed');
    assert.match(summary.error ?? '', /not JSON/);
    assertNoSecret(summary.error ?? '', 'error');
    assertNoSecret(lines.join('\n'), 'log');
    assertNoSecret(await ledgerText(dataDir), 'ledger');
  });
});
