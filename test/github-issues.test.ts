// The demo's second resource, GITHUB_RESOURCES=issues: each repository's issues and pull requests through
// GitHub's Link-header pagination, merged on id, labels as a child table, incremental on updated_at
// (`since=` on the request, dlt's boundary dedup). Served from 127.0.0.1: the first run gets the five
// pages GitHub answered for `paginate-issues` (recorded by @octokit/fixtures); later runs a changed list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { runFlight, type RunSummary } from '../flight.ts';
import { dbFile, query, tempDir, type Row } from './support.ts';

type Issue = Record<string, unknown> & { id: number; number: number; updated_at: string; labels: object[] };
interface Exchange {
  path: string;
  status: number;
  response: Issue[];
  headers: Record<string, string>;
}
const RECORDED = JSON.parse(
  readFileSync(new URL('./fixtures/github/octokit/paginate-issues.json', import.meta.url), 'utf8'),
) as Exchange[];
const REPO = 'octokit-fixture-org/paginate-issues';
const DS = 'flights_demo_dlt';

/** api.github.com on 127.0.0.1: the recorded pages, or (with `since`) `current` filtered, 3 a page. */
async function github(t: TestContext) {
  const seen: URL[] = [];
  let current: Issue[] = RECORDED.flatMap((e) => e.response);
  let base = '';
  const server = createServer((req, res) => {
    const url = new URL(req.url!, base);
    seen.push(url);
    const send = (issues: Issue[], link?: string) => {
      res.writeHead(200, { 'content-type': 'application/json', ...(link ? { link } : {}) });
      res.end(JSON.stringify(issues));
    };
    const since = url.searchParams.get('since');
    if (since) {
      const page = Number(url.searchParams.get('page') ?? 1);
      const matching = current.filter((i) => i.updated_at >= since);
      const next =
        page * 3 < matching.length ? `<${base}${url.pathname}?since=${since}&page=${page + 1}>; rel="next"` : undefined;
      return send(matching.slice((page - 1) * 3, page * 3), next);
    }
    // the recorded exchange for this page (the first request's query is ours, not the recording's)
    const recorded = RECORDED.find((e) =>
      url.searchParams.has('page') ? e.path === `${url.pathname}${url.search}` : e.path.startsWith(url.pathname),
    );
    if (!recorded) return (res.writeHead(404), res.end('{"message":"Not Found"}'));
    send(recorded.response, recorded.headers.link?.replaceAll('https://api.github.com', base));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(() => new Promise<void>((resolve) => (server.closeAllConnections(), server.close(() => resolve()))));
  return { url: base, seen, set: (issues: Issue[]) => (current = issues), current: () => current };
}

test('issues across runs: all pages first, then only what changed since the last run, merged on id', async (t) => {
  const dir = await tempDir(t);
  const api = await github(t);
  const run = async (): Promise<RunSummary> => {
    const summary = await runFlight({
      env: { LOCAL_DATA_DIR: dir, GITHUB_API_URL: api.url, GITHUB_REPOS: REPO, GITHUB_RESOURCES: 'issues' },
      log: () => {},
    });
    assert.equal(summary.status, 'succeeded', summary.error);
    return summary;
  };
  const sql = (text: string): Promise<Row[]> => query(dbFile(dir), text);

  const first = await run();
  assert.equal(first.rowsLoaded, 13);
  assert.deepEqual(
    api.seen.map((u) => u.searchParams.get('page')),
    [null, '2', '3', '4', '5'],
    'the five recorded pages, through their Link headers',
  );
  assert.equal(api.seen[0]!.searchParams.get('since'), null, 'the first run asks for everything');
  const numbers = await sql(
    `SELECT number, repo, state, is_pull_request, author FROM ${DS}.github_issues ORDER BY number`,
  );
  assert.deepEqual(
    numbers.map((r) => r.number),
    Array.from({ length: 13 }, (_, i) => BigInt(i + 1)),
  );
  assert.deepEqual(numbers[0], {
    number: 1n,
    repo: REPO,
    state: 'open',
    is_pull_request: false,
    author: 'octokit-fixture-user-a',
  });

  // GitHub now has issue 13 edited and labelled, and a new issue 14
  const issues = api.current();
  const edited = {
    ...issues[0]!,
    title: 'Test issue 13, edited',
    updated_at: '2017-10-11T09:00:00Z',
    labels: [{ name: 'bug', color: 'd73a4a' }],
  };
  const added = {
    ...issues[0]!,
    id: 1013,
    number: 14,
    title: 'Test issue 14',
    updated_at: '2017-10-11T10:00:00Z',
    labels: [],
  };
  api.set([edited, ...issues.slice(1), added]);
  api.seen.length = 0;
  const second = await run();
  assert.equal(api.seen[0]!.searchParams.get('since'), '2017-10-10T16:00:00Z', 'asks only for what changed since');
  assert.equal(second.rowsLoaded, 2, 'the edited and the new issue; the others, at the boundary, were loaded before');
  assert.deepEqual(second.tables, { github_issues: 2, github_issues__labels: 1 });
  assert.deepEqual(await sql(`SELECT count(*) AS n FROM ${DS}.github_issues`), [{ n: 14n }]);
  assert.deepEqual(
    await sql(
      `SELECT i.number, i.title, l.name FROM ${DS}.github_issues i JOIN ${DS}.github_issues__labels l ON l._dlt_parent_id = i._dlt_id`,
    ),
    [{ number: 13n, title: 'Test issue 13, edited', name: 'bug' }],
  );

  const third = await run();
  assert.equal(third.rowsLoaded, 0, 'nothing changed: nothing loaded');
});
