// Faults from the source, against the GitHub stand-in on 127.0.0.1: resets mid-body, truncated
// and non-JSON bodies, stalled and trickling bodies, 5xx bursts, primary and secondary rate
// limits, redirect loops and oversized bodies. Every test seeds a first successful run, injects
// the fault into the second, and checks the outcome: either success after retries (the new
// values are loaded), or a failed run with a clear message, the table exactly as the first run
// left it and a 'failed' ledger row carrying that message.
// Simple one-off retries (500, 502+503, reset before headers, truncated content-length, slow
// headers, 429 + Retry-After, x-ratelimit-reset within the budget) are in github-source.test.ts.
import { test, describe } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { runFlight, type RunSummary } from '../flight.ts';
import {
  dbFile,
  githubRepo,
  query,
  reply,
  startFakeGitHub,
  tempDir,
  testEnv,
  type Env,
  type FakeGitHub,
  type RawHandler,
  type Route,
  type Row,
} from './support.ts';

const REPOS = 'duckdb/duckdb,dlt-hub/dlt';
const FAULTY = '/repos/duckdb/duckdb';
const TABLE = 'flights_demo_dlt.github_repo_stats';
/** Stars the second run would load for duckdb/duckdb if it got through. */
const NEW_STARS = 99_999;

/** Fast-failing HTTP knobs: one retry, half-second timeouts. */
const FAST: Env = { HTTP_TIMEOUT_S: '0.5', HTTP_MAX_RETRIES: '1', HTTP_MAX_WAIT_S: '5' };

interface Seeded {
  t: TestContext;
  gh: FakeGitHub;
  dataDir: string;
  env: Env;
  before: Row[];
  firstLoadId: string;
}

const tableRows = (dataDir: string) => query(dbFile(dataDir), `SELECT * FROM ${TABLE} ORDER BY repo`);
const ledgerRows = (dataDir: string) => query(dbFile(dataDir), 'SELECT * FROM main.dlt_ingest_runs ORDER BY run_at');
const loadIds = async (dataDir: string) =>
  (await query(dbFile(dataDir), 'SELECT load_id FROM flights_demo_dlt._dlt_loads ORDER BY load_id')).map((r) =>
    String(r.load_id),
  );

/** A first, clean run; then the repo's stats change so a second successful run would be visible. */
async function seed(t: TestContext, extra: Env = {}): Promise<Seeded> {
  const dir = await tempDir(t, 'flight-faults-');
  const dataDir = join(dir, 'data');
  const clean = await startFakeGitHub(t);
  const first = await runFlight({ env: testEnv(dataDir, clean, { GITHUB_REPOS: REPOS, ...extra }), log: () => {} });
  assert.equal(first.status, 'succeeded', first.error);
  const before = await tableRows(dataDir);
  assert.equal(before.length, 2);
  // A fresh server for the second run, so scripted attempts count from 1.
  const gh = await startFakeGitHub(t);
  gh.setRepo('duckdb/duckdb', { stargazers_count: NEW_STARS });
  return {
    t,
    gh,
    dataDir,
    env: testEnv(dataDir, gh, { GITHUB_REPOS: REPOS, ...extra }),
    before,
    firstLoadId: first.loadId!,
  };
}

/** The second run failed cleanly: clear message, data as before, one more ledger row, 'failed'. */
async function assertFailedCleanly(s: Seeded, summary: RunSummary, mustMention: (string | RegExp)[]): Promise<void> {
  assert.equal(summary.status, 'failed', 'the run must fail');
  assert.equal(summary.exitCode, 1);
  assert.equal(summary.rowsLoaded, 0);
  const error = summary.error ?? '';
  s.t.diagnostic(`message: ${error}`);
  assert.ok(error.includes('duckdb/duckdb'), `the message names the repo: ${error}`);
  for (const m of mustMention)
    assert.ok(typeof m === 'string' ? error.includes(m) : m.test(error), `the message mentions ${m}: ${error}`);
  assert.deepEqual(await tableRows(s.dataDir), s.before, 'the table is exactly as the first run left it');
  assert.deepEqual(await loadIds(s.dataDir), [s.firstLoadId], 'no load was recorded');
  const ledger = await ledgerRows(s.dataDir);
  assert.deepEqual(
    ledger.map((r) => r.status),
    ['succeeded', 'failed'],
  );
  assert.equal(ledger[1]?.error, error, 'the failed ledger row carries the same message');
  assert.equal(ledger[1]?.rows_loaded, 0n);
}

/** The second run got through: new values loaded, two 'succeeded' ledger rows. */
async function assertSucceeded(s: Seeded, summary: RunSummary): Promise<void> {
  assert.equal(summary.status, 'succeeded', summary.error);
  assert.equal(summary.rowsLoaded, 2);
  const rows = await tableRows(s.dataDir);
  assert.equal(
    rows.find((r) => r.repo === 'duckdb/duckdb')?.stars,
    BigInt(NEW_STARS),
    'the second run loaded the new values',
  );
  assert.deepEqual(
    (await ledgerRows(s.dataDir)).map((r) => r.status),
    ['succeeded', 'succeeded'],
  );
}

async function second(s: Seeded, route: Route, extra: Env = {}): Promise<{ summary: RunSummary; elapsedMs: number }> {
  s.gh.route(FAULTY, route);
  const started = performance.now();
  const summary = await runFlight({ env: { ...s.env, ...extra }, log: () => {} });
  return { summary, elapsedMs: performance.now() - started };
}

// ─── Raw exchanges the support helpers don't have ──────────────────────────────────────────────

/** 200 with headers and half the (chunked) body, then a TCP reset. */
const resetMidBody = (): RawHandler => (req, res, info) => {
  const full = JSON.stringify(info.server.repos.get('duckdb/duckdb') ?? githubRepo('duckdb/duckdb'));
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
  res.write(full.slice(0, Math.floor(full.length / 2)));
  setTimeout(() => req.socket.resetAndDestroy(), 20);
};

/** A complete, well-formed HTTP response whose JSON body is cut off (Content-Length matches the cut). */
const truncatedJson = (): RawHandler => (_req, res, info) => {
  const full = JSON.stringify(info.server.repos.get('duckdb/duckdb') ?? githubRepo('duckdb/duckdb'));
  const cut = full.slice(0, Math.floor(full.length * 0.6));
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(cut) });
  res.end(cut);
};

const HTML =
  '<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Oops, the proxy</h1></body></html>';
const htmlPage: Route = { status: 200, headers: { 'content-type': 'text/html; charset=utf-8' }, body: HTML };

/** Headers at once, then the body never comes. */
const stalledBody = (): RawHandler => (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write('{"stargazers_count":');
  // nothing more; the socket is closed when the server closes
};

/** A body that trickles one byte every 50 ms: never idle long, but far longer than the timeout in total. */
const tricklingBody = (): RawHandler => (_req, res, info) => {
  const full = JSON.stringify(info.server.repos.get('duckdb/duckdb') ?? githubRepo('duckdb/duckdb'));
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(full) });
  let i = 0;
  const timer = setInterval(() => {
    if (res.destroyed || i >= full.length) {
      clearInterval(timer);
      if (!res.destroyed) res.end();
      return;
    }
    res.write(full[i++]);
  }, 50);
  res.on('close', () => clearInterval(timer));
};

/** Primary rate limit: remaining 0, reset an hour away. Records the reset time it announced. */
function primaryLimit(status: 403 | 429, announced: { resetS: number }): RawHandler {
  return (_req, res) => {
    announced.resetS = Math.floor(Date.now() / 1000) + 3600;
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'x-ratelimit-limit': '60',
      'x-ratelimit-remaining': '0',
      'x-ratelimit-used': '60',
      'x-ratelimit-reset': String(announced.resetS),
    });
    res.end(
      JSON.stringify({
        message: 'API rate limit exceeded for 127.0.0.1.',
        documentation_url: 'https://docs.github.com/rest/rate-limit',
      }),
    );
  };
}

/** A body of `bytes` bytes of valid JSON, streamed in 64 KiB chunks with backpressure. */
function bigBody(bytes: number): RawHandler {
  return (_req, res) => {
    const head =
      '{"stargazers_count":1,"forks_count":1,"open_issues_count":1,"default_branch":"main","pushed_at":null,"description":"';
    const tail = '"}';
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes });
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let left = bytes - head.length - tail.length;
    res.write(head);
    const pump = () => {
      while (left > 0 && !res.destroyed) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!res.write(chunk.subarray(0, n))) return void res.once('drain', pump);
      }
      if (!res.destroyed) res.end(tail);
    };
    pump();
  };
}

/** A 200 whose body never ends: only a size cap stops a client from reading forever. */
const endlessBody = (): RawHandler => (_req, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write('{"description":"');
  const chunk = Buffer.alloc(64 * 1024, 'z');
  const pump = () => {
    while (!res.destroyed) if (!res.write(chunk)) return void res.once('drain', pump);
  };
  pump();
};

// ─── Network faults ─────────────────────────────────────────────────────────────────────────────

describe('connection reset mid-body', () => {
  test('once: retried, the run succeeds with the new values', async (t) => {
    const s = await seed(t);
    const { summary } = await second(s, [resetMidBody(), {}], FAST);
    await assertSucceeded(s, summary);
    assert.equal(s.gh.requestsFor(FAULTY).length, 2);
  });

  test('on every attempt: failed run after HTTP_MAX_RETRIES, previous data untouched, failed ledger row', async (t) => {
    const s = await seed(t);
    const { summary } = await second(s, resetMidBody(), FAST);
    await assertFailedCleanly(s, summary, [/gave up after 2 attempts/, /network error|reset|closed|terminated/i]);
    assert.equal(s.gh.requestsFor(FAULTY).length, 2, 'one try and one retry');
  });
});

describe('truncated JSON (a complete response whose body is cut)', () => {
  test('once: retried, the run succeeds', async (t) => {
    const s = await seed(t);
    const { summary } = await second(s, [truncatedJson(), {}], FAST);
    await assertSucceeded(s, summary);
  });

  test('on every attempt: failed run saying the body is not JSON, previous data untouched', async (t) => {
    const s = await seed(t);
    const { summary } = await second(s, truncatedJson(), FAST);
    await assertFailedCleanly(s, summary, [/not JSON/i, '200']);
  });
});

describe('a 200 with an HTML body (content-type text/html)', () => {
  test('once (a proxy error page): retried, the run succeeds', async (t) => {
    const s = await seed(t);
    const { summary } = await second(s, [htmlPage, {}], FAST);
    await assertSucceeded(s, summary);
  });

  test('on every attempt: failed run naming the content type, previous data untouched', async (t) => {
    const s = await seed(t);
    const { summary } = await second(s, htmlPage, FAST);
    await assertFailedCleanly(s, summary, [/not JSON/i, 'text/html']);
  });
});

describe('responses slower than HTTP_TIMEOUT_S', () => {
  test('headers on time, then the body stalls: timed out per attempt, failed run, previous data untouched', async (t) => {
    const s = await seed(t);
    const { summary, elapsedMs } = await second(s, stalledBody(), FAST);
    await assertFailedCleanly(s, summary, [/gave up after 2 attempts/, /time|abort/i]);
    assert.ok(elapsedMs < 4000, `two 0.5 s attempts and one backoff, not a hang (took ${Math.round(elapsedMs)} ms)`);
  });

  test('a body trickling a byte every 50 ms is cut at HTTP_TIMEOUT_S in total (headers and body), not per read', async (t) => {
    const s = await seed(t);
    const { summary, elapsedMs } = await second(s, tricklingBody(), FAST);
    await assertFailedCleanly(s, summary, [/time|abort/i]);
    assert.ok(
      elapsedMs < 5000,
      `each attempt stops after ~0.5 s although bytes keep coming (took ${Math.round(elapsedMs)} ms)`,
    );
  });
});

// ─── Server errors ──────────────────────────────────────────────────────────────────────────────

describe('bursts of 502/503', () => {
  test('a burst on two repos at once (502, 503 then OK; 503 then OK): the run succeeds with the new values', async (t) => {
    const s = await seed(t);
    s.gh.route('/repos/dlt-hub/dlt', [reply.status(503), {}]);
    const { summary } = await second(s, [reply.status(502), reply.status(503), {}], {
      HTTP_MAX_RETRIES: '2',
      HTTP_MAX_WAIT_S: '20',
    });
    await assertSucceeded(s, summary);
    assert.equal(s.gh.requestsFor(FAULTY).length, 3);
    assert.equal(s.gh.requestsFor('/repos/dlt-hub/dlt').length, 2);
  });

  test('a burst longer than HTTP_MAX_RETRIES: failed run naming the status, previous data untouched', async (t) => {
    const s = await seed(t);
    const { summary } = await second(s, [reply.status(503), reply.status(502), reply.status(503), {}], FAST);
    await assertFailedCleanly(s, summary, [/gave up after 2 attempts/, '502']);
  });

  test('a burst longer than the HTTP_MAX_WAIT_S budget: failed run naming the budget, previous data untouched', async (t) => {
    const s = await seed(t);
    const { summary, elapsedMs } = await second(s, reply.status(503), { HTTP_MAX_RETRIES: '10', HTTP_MAX_WAIT_S: '1' });
    await assertFailedCleanly(s, summary, ['HTTP_MAX_WAIT_S', '503']);
    assert.ok(elapsedMs < 4000, `took ${Math.round(elapsedMs)} ms`);
  });
});

// ─── Rate limits ────────────────────────────────────────────────────────────────────────────────

describe('primary rate limit (x-ratelimit-remaining: 0, reset beyond HTTP_MAX_WAIT_S)', () => {
  for (const status of [403, 429] as const) {
    test(`${status}: fails at once with a message saying when the limit resets (ISO time); previous data untouched`, async (t) => {
      const s = await seed(t);
      const announced = { resetS: 0 };
      const { summary, elapsedMs } = await second(s, primaryLimit(status, announced), {
        HTTP_MAX_RETRIES: '5',
        HTTP_MAX_WAIT_S: '10',
      });
      const resetIso = new Date(announced.resetS * 1000).toISOString();
      await assertFailedCleanly(s, summary, [String(status), /rate limit/i, resetIso, 'HTTP_MAX_WAIT_S']);
      assert.equal(s.gh.requestsFor(FAULTY).length, 1, 'no point retrying before the reset');
      assert.ok(elapsedMs < 3000, `did not wait (took ${Math.round(elapsedMs)} ms)`);
      const ledger = await ledgerRows(s.dataDir);
      assert.ok(String(ledger[1]?.error).includes(resetIso), 'the ledger row says when the limit resets');
    });
  }

  test('a 403 without rate-limit headers (no permission) fails at once, without retrying', async (t) => {
    const s = await seed(t);
    const { summary } = await second(s, reply.status(403), { HTTP_MAX_RETRIES: '5' });
    await assertFailedCleanly(s, summary, ['403']);
    assert.equal(s.gh.requestsFor(FAULTY).length, 1);
  });
});

describe('secondary rate limit (Retry-After)', () => {
  for (const status of [403, 429] as const) {
    test(`${status} with Retry-After: 1 waits at least a second, then succeeds`, async (t) => {
      const s = await seed(t);
      const { summary } = await second(
        s,
        [
          reply.status(
            status,
            { 'retry-after': '1' },
            { message: 'You have exceeded a secondary rate limit.', documentation_url: 'https://docs.github.com' },
          ),
          {},
        ],
        { HTTP_MAX_RETRIES: '2', HTTP_MAX_WAIT_S: '5' },
      );
      await assertSucceeded(s, summary);
      const [a, b] = s.gh.requestsFor(FAULTY);
      assert.ok(a && b, 'retried');
      assert.ok(b.at - a.at >= 950, `waited ${Math.round(b.at - a.at)} ms`);
    });
  }
});

// ─── Redirects and size ─────────────────────────────────────────────────────────────────────────

describe('redirect loop', () => {
  test('A -> B -> A -> ...: failed run saying too many redirects, bounded requests, previous data untouched', async (t) => {
    const s = await seed(t);
    s.gh.route('/loop/a', reply.redirect('/loop/b', 302));
    s.gh.route('/loop/b', reply.redirect('/loop/a', 302));
    const { summary, elapsedMs } = await second(s, reply.redirect('/loop/a', 301), { ...FAST, HTTP_MAX_RETRIES: '3' });
    await assertFailedCleanly(s, summary, [/redirect/i]);
    const hops = s.gh.requests.filter((r) => r.path.startsWith('/loop/') || r.path === FAULTY).length;
    assert.ok(hops <= 8, `the loop is cut after a few hops and not retried (${hops} requests)`);
    assert.ok(elapsedMs < 3000, `took ${Math.round(elapsedMs)} ms`);
  });

  test('a redirect to itself: failed run, previous data untouched', async (t) => {
    const s = await seed(t);
    const { summary } = await second(s, reply.redirect(FAULTY, 307), FAST);
    await assertFailedCleanly(s, summary, [/redirect/i]);
    assert.ok(s.gh.requestsFor(FAULTY).length <= 8, `${s.gh.requestsFor(FAULTY).length} requests`);
  });
});

describe('redirect chain', () => {
  test('seven distinct hops (more than the 5 followed): failed run saying too many redirects, previous data untouched', async (t) => {
    const s = await seed(t);
    for (let i = 1; i <= 7; i++) s.gh.route(`/hop/${i}`, reply.redirect(`/hop/${i + 1}`, 302));
    const { summary } = await second(s, reply.redirect('/hop/1', 301), FAST);
    await assertFailedCleanly(s, summary, [/redirect/i]);
    assert.equal(
      s.gh.requests.some((r) => r.path === '/hop/7'),
      false,
      'stopped following before the end of the chain',
    );
  });
});

describe('body beyond the size cap (8 MiB)', () => {
  test('a 9 MiB body: failed run naming the cap, not retried, previous data untouched', async (t) => {
    const s = await seed(t);
    const { summary } = await second(s, bigBody(9 * 1024 * 1024), {
      ...FAST,
      HTTP_TIMEOUT_S: '20',
      HTTP_MAX_RETRIES: '3',
    });
    await assertFailedCleanly(s, summary, ['8 MiB']);
    assert.equal(s.gh.requestsFor(FAULTY).length, 1, 'an oversized body is not fetched again');
  });

  test('an endless body is cut by the cap long before HTTP_TIMEOUT_S', async (t) => {
    const s = await seed(t);
    const { summary, elapsedMs } = await second(s, endlessBody(), { HTTP_TIMEOUT_S: '60', HTTP_MAX_RETRIES: '0' });
    await assertFailedCleanly(s, summary, ['8 MiB']);
    assert.ok(elapsedMs < 15_000, `stopped reading at the cap (took ${Math.round(elapsedMs)} ms)`);
  });

  test('a 7 MiB body is under the cap and loads', async (t) => {
    const s = await seed(t);
    const seven = bigBody(7 * 1024 * 1024);
    const { summary } = await second(s, [(req: IncomingMessage, res: ServerResponse, info) => seven(req, res, info)], {
      HTTP_TIMEOUT_S: '20',
    });
    assert.equal(summary.status, 'succeeded', summary.error);
    const rows = await tableRows(s.dataDir);
    assert.equal(rows.find((r) => r.repo === 'duckdb/duckdb')?.stars, 1n, 'the big body was parsed');
  });
});
