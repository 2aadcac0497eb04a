// The REST helper sources call: ctx.pages() with each of dlt's paginators (declared, and detected from
// the first page), records found in a page, page limits and query parameters; ctx.getJson()/pages() auth
// (bearer, API key in a header or the query, basic) sent only to the origin asked for and redacted from
// every line, error and ledger row; ctx.secret() reading a config key or a Flight secret. Real servers on
// 127.0.0.1.
import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runFlight, type Env, type PageOptions, type Row as SourceRow, type RunSummary } from '../flight.ts';
import { dbFile, query, tempDir } from './support.ts';

interface Seen {
  path: string;
  query: Record<string, string>;
  headers: IncomingMessage['headers'];
}
/** A JSON server on 127.0.0.1: `handler` answers [status, body, headers?] for each request. */
async function serve(
  t: TestContext,
  handler: (seen: Seen, base: string) => [number, unknown, Record<string, string | undefined>?],
): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  let base = '';
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', base);
    const s = { path: u.pathname, query: Object.fromEntries(u.searchParams), headers: req.headers };
    seen.push(s);
    const [status, body, headers = {}] = handler(s, base);
    res.writeHead(status, { 'content-type': 'application/json', ...(headers as Record<string, string>) });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
  return { url: base, seen };
}

const items = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => ({ id: from + i }));
/** Runs a source that loads every record of `url`'s pages; returns the ids loaded, in order. */
async function loadPages(t: TestContext, url: string, options: PageOptions = {}, env: Env = {}) {
  const dir = await tempDir(t);
  const lines: string[] = [];
  const summary = await runFlight({
    env: { LOCAL_DATA_DIR: dir, TABLE_NAME: 'items', WRITE_DISPOSITION: 'append', ...env },
    source: async function* (ctx) {
      for await (const page of ctx.pages(url, 'items', options)) yield* page;
    },
    log: (l) => lines.push(l),
  });
  const ids =
    summary.status === 'succeeded'
      ? (await query(dbFile(dir), 'SELECT id FROM flights_demo_dlt.items')).map((r) => Number(r.id))
      : [];
  return { summary, ids, lines, dir };
}
const ok = (summary: RunSummary) => assert.equal(summary.status, 'succeeded', summary.error);

describe('paginators', () => {
  test('Link header (detected): follows rel="next" until there is none; the first request carries the params', async (t) => {
    const api = await serve(t, ({ query: q }, base) => {
      const page = Number(q.page ?? 1);
      const link =
        page < 3 ? { link: `<${base}/items?page=${page + 1}>; rel="next", <${base}/items?page=3>; rel="last"` } : {};
      return [200, items((page - 1) * 2, page * 2), link];
    });
    const { summary, ids } = await loadPages(t, `${api.url}/items`, { params: { per_page: 2, state: 'all' } });
    ok(summary);
    assert.deepEqual(ids, [0, 1, 2, 3, 4, 5]);
    assert.deepEqual(
      api.seen.map((s) => s.query),
      [{ per_page: '2', state: 'all' }, { page: '2' }, { page: '3' }],
    );
  });

  test('a next URL in the body (detected, also nested as links.next.href); relative URLs resolve', async (t) => {
    const flat = await serve(t, ({ query: q }) => {
      const page = Number(q.p ?? 1);
      return [200, { results: items(page * 10, page * 10 + 2), next: page < 3 ? `/x?p=${page + 1}` : null }];
    });
    const a = await loadPages(t, `${flat.url}/x`);
    ok(a.summary);
    assert.deepEqual(a.ids, [10, 11, 20, 21, 30, 31]);
    const nested = await serve(t, ({ query: q }, base) => {
      const page = Number(q.p ?? 1);
      const links = page < 2 ? { next: { href: `${base}/y?p=${page + 1}` } } : {};
      return [200, { meta: { count: 2 }, data: items(page, page + 1), links }];
    });
    const b = await loadPages(t, `${nested.url}/y`);
    ok(b.summary);
    assert.deepEqual(b.ids, [1, 2]);
  });

  test('cursor: taken from the body, sent back as a query parameter, until it is empty', async (t) => {
    const api = await serve(t, ({ query: q }) => {
      const at = Number(q.after ?? 0);
      return [200, { items: items(at, at + 3), meta: { next_cursor: at < 6 ? String(at + 3) : '' } }];
    });
    const { summary, ids } = await loadPages(t, `${api.url}/c`, {
      paginator: { type: 'cursor', path: 'meta.next_cursor', param: 'after' },
    });
    ok(summary);
    assert.deepEqual(
      ids,
      items(0, 9).map((r) => r.id),
    );
    assert.deepEqual(
      api.seen.map((s) => s.query.after),
      [undefined, '3', '6'],
    );
  });

  test('offset / limit: stops at a short page, or at the total', async (t) => {
    const all = items(0, 25);
    const api = await serve(t, ({ query: q }) => {
      const [offset, limit] = [Number(q.offset), Number(q.limit)];
      return [200, { total: 25, rows: all.slice(offset, offset + limit) }];
    });
    const short = await loadPages(t, `${api.url}/o`, { paginator: { type: 'offset', limit: 10 } });
    ok(short.summary);
    assert.equal(short.ids.length, 25);
    assert.deepEqual(
      api.seen.map((s) => [s.query.offset, s.query.limit]),
      [
        ['0', '10'],
        ['10', '10'],
        ['20', '10'],
      ],
    );
    api.seen.length = 0;
    const exact = await loadPages(t, `${api.url}/o`, { paginator: { type: 'offset', limit: 5, totalPath: 'total' } });
    ok(exact.summary);
    assert.equal(exact.ids.length, 25);
    assert.equal(api.seen.length, 5, 'no request past the total');
  });

  test('page numbers: from 1 until an empty page, or up to the page count', async (t) => {
    const api = await serve(t, ({ query: q }) => {
      const page = Number(q.page);
      return [200, { pages: 3, entries: page <= 3 ? items(page * 100, page * 100 + 2) : [] }];
    });
    const untilEmpty = await loadPages(t, `${api.url}/n`, { paginator: { type: 'page_number' } });
    ok(untilEmpty.summary);
    assert.deepEqual(untilEmpty.ids, [100, 101, 200, 201, 300, 301]);
    assert.equal(api.seen.length, 4, 'the empty page 4 ends it');
    api.seen.length = 0;
    const counted = await loadPages(t, `${api.url}/n`, { paginator: { type: 'page_number', totalPath: 'pages' } });
    ok(counted.summary);
    assert.equal(api.seen.length, 3, 'the page count ends it');
  });

  test('one page when nothing says there is another; records found under `data`; an explicit path; maxPages', async (t) => {
    const api = await serve(t, ({ path }, base) =>
      path === '/one'
        ? [200, { meta: { total: 2 }, data: items(0, 2) }]
        : path === '/deep'
          ? [200, { result: { rows: items(5, 7) } }]
          : [200, items(0, 1), { link: `<${base}/many>; rel="next"` }],
    );
    const one = await loadPages(t, `${api.url}/one`);
    ok(one.summary);
    assert.deepEqual(one.ids, [0, 1]);
    const deep = await loadPages(t, `${api.url}/deep`, { records: 'result.rows' });
    ok(deep.summary);
    assert.deepEqual(deep.ids, [5, 6]);
    api.seen.length = 0;
    const capped = await loadPages(t, `${api.url}/many`, { maxPages: 4 });
    ok(capped.summary);
    assert.equal(api.seen.length, 4);
    const wrong = await loadPages(t, `${api.url}/one`, { records: 'result.rows' });
    assert.equal(wrong.summary.status, 'failed');
    assert.match(wrong.summary.error ?? '', /items page 1: no list of records at "result\.rows"/);
  });
});

describe('auth', () => {
  const SECRET = 'sk-live-0123456789abcdef';
  /** A server that fails with 500 echoing the request headers and query, and records what it saw. */
  const echo = (t: TestContext) =>
    serve(t, ({ path, headers, query: q }) =>
      path === '/fail' ? [500, { message: JSON.stringify({ headers, q }) }] : [200, items(0, 1)],
    );

  for (const [kind, auth, sees] of [
    ['bearer', { type: 'bearer', token: SECRET }, (s: Seen) => s.headers.authorization === `Bearer ${SECRET}`],
    [
      'api key in a header',
      { type: 'api_key', name: 'X-Api-Key', key: SECRET },
      (s: Seen) => s.headers['x-api-key'] === SECRET,
    ],
    [
      'api key in the query',
      { type: 'api_key', name: 'api_key', key: SECRET, location: 'query' },
      (s: Seen) => s.query.api_key === SECRET,
    ],
    [
      'basic',
      { type: 'basic', username: 'ann', password: SECRET },
      (s: Seen) => s.headers.authorization === `Basic ${Buffer.from(`ann:${SECRET}`).toString('base64')}`,
    ],
  ] as const) {
    test(`${kind}: reaches the server; a failure echoing it leaks it nowhere (summary, log, ledger)`, async (t) => {
      const api = await echo(t);
      const good = await loadPages(t, `${api.url}/ok`, { auth });
      ok(good.summary);
      assert.ok(sees(api.seen[0]!), JSON.stringify(api.seen[0]));
      const bad = await loadPages(t, `${api.url}/fail`, { auth }, { HTTP_MAX_RETRIES: '0' });
      assert.equal(bad.summary.status, 'failed');
      const ledger = JSON.stringify(await query(dbFile(bad.dir), 'SELECT error FROM main.dlt_ingest_runs'));
      const everything = `${bad.summary.error}\n${bad.lines.join('\n')}\n${ledger}`;
      assert.match(everything, /HTTP 500/);
      assert.ok(!everything.includes(SECRET), everything);
      assert.ok(!everything.includes(Buffer.from(`ann:${SECRET}`).toString('base64')), 'nor its base64 form');
    });
  }

  test('a redirect to another origin loses the credentials; one to the same origin keeps them', async (t) => {
    const elsewhere = await serve(t, () => [200, items(0, 1)]);
    const api = await serve(t, ({ path }, base) =>
      path === '/moved'
        ? [301, {}, { location: `${elsewhere.url}/there` }]
        : path === '/here'
          ? [302, {}, { location: `${base}/ok` }]
          : [200, items(1, 2)],
    );
    for (const auth of [
      { type: 'bearer', token: SECRET },
      { type: 'api_key', name: 'X-Api-Key', key: SECRET },
    ] as const) {
      ok((await loadPages(t, `${api.url}/moved`, { auth })).summary);
      ok((await loadPages(t, `${api.url}/here`, { auth })).summary);
    }
    for (const s of elsewhere.seen)
      assert.deepEqual([s.headers.authorization, s.headers['x-api-key']], [undefined, undefined]);
    const own = api.seen.filter((s) => s.path === '/ok');
    assert.equal(own.length, 2);
    assert.ok(own[0]!.headers.authorization && own[1]!.headers['x-api-key'], 'kept on the same origin');
  });

  test("the next page on another origin doesn't get the API key either", async (t) => {
    const elsewhere = await serve(t, () => [200, items(9, 10)]);
    const api = await serve(t, () => [200, items(0, 1), { link: `<${elsewhere.url}/p2>; rel="next"` }]);
    const auth = { type: 'api_key', name: 'key', key: SECRET, location: 'query' } as const;
    const { summary, ids } = await loadPages(t, `${api.url}/p1`, { auth });
    ok(summary);
    assert.deepEqual(ids, [0, 9]);
    assert.equal(api.seen[0]!.query.key, SECRET);
    assert.equal(elsewhere.seen[0]!.query.key, undefined);
  });

  test('GITHUB_TOKEN goes to the GitHub API origin only, not to other URLs a source fetches', async (t) => {
    const other = await serve(t, () => [200, { id: 1 }]);
    const dir = await tempDir(t);
    const summary = await runFlight({
      env: { LOCAL_DATA_DIR: dir, TABLE_NAME: 'x', PRIMARY_KEY: 'id', GITHUB_TOKEN: 'ghp_never_elsewhere_123' },
      source: async (ctx) => [(await ctx.getJson(`${other.url}/thing`, 'thing')) as SourceRow],
      log: () => {},
    });
    ok(summary);
    assert.equal(other.seen[0]!.headers.authorization, undefined);
  });
});

describe('ctx.secret', () => {
  test('reads NAME or a single Flight secret <secret>_NAME, is redacted, and several candidates are an error', async (t) => {
    const api = await serve(t, ({ path }) => (path === '/fail' ? [401, { message: 'bad token' }] : [200, items(0, 1)]));
    const dir = await tempDir(t);
    const lines: string[] = [];
    const run = (env: Env, path: string) =>
      runFlight({
        env: { LOCAL_DATA_DIR: dir, TABLE_NAME: 's', WRITE_DISPOSITION: 'append', ...env },
        source: async function* (ctx) {
          const token = ctx.secret('API_TOKEN');
          ctx.progress(0, 1, `token length ${token?.length}; token ${token}`);
          for await (const page of ctx.pages(`${api.url}${path}`, 'things', { auth: { type: 'bearer', token } }))
            yield* page;
        },
        log: (l) => lines.push(l),
      });
    ok(await run({ myapi_API_TOKEN: 'tok-from-flight-secret' }, '/ok'));
    assert.equal(api.seen[0]!.headers.authorization, 'Bearer tok-from-flight-secret');
    assert.ok(!lines.join('\n').includes('tok-from-flight-secret'), 'redacted even where the source prints it');
    const direct = await run({ API_TOKEN: 'tok-direct-value', other_API_TOKEN: 'tok-ignored' }, '/fail');
    assert.equal(direct.status, 'failed');
    assert.match(direct.error ?? '', /401.*check the credentials of this request/);
    const two = await run({ a_API_TOKEN: 'tok-one-value', b_API_TOKEN: 'tok-two-value' }, '/ok');
    assert.match(two.error ?? '', /several secrets provide API_TOKEN \(a_API_TOKEN, b_API_TOKEN\)/);
    const none = await run({}, '/ok');
    assert.match(none.error ?? '', /bearer auth of this request has no token/);
  });
});
