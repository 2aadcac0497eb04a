/**
 * HTTP side of the benchmark: the demo source (githubRepoRows) against a local stand-in for the
 * GitHub API that answers every `GET /repos/:owner/:name` after a fixed delay.
 *
 *   npx tsx bench/http.ts [--repos 200] [--delay 50] [--jitter 0] [--concurrency N]
 *   npm run bench -- --http [same options]
 *
 * Reports runFlight's wall time against the ideal (repos / concurrency x delay), the ratio (target
 * <= 1.5 at the default concurrency), and how many TCP connections the server saw (keep-alive
 * should keep it close to the concurrency). `--jitter J` makes each delay uniform in
 * [delay - J, delay + J] (same mean), which shows whether one slow response holds up the others.
 */
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig, runFlight } from '../flight.ts';
import { prng } from './synthetic.ts';

export interface HttpBenchOptions {
  repos: number;
  delayMs: number;
  jitterMs: number;
  /** GITHUB_CONCURRENCY; undefined means the pipeline's default. */
  concurrency?: number;
}

export interface HttpBenchResult {
  case: 'http-github-source';
  repos: number;
  delay_ms: number;
  jitter_ms: number;
  concurrency: number;
  /** runFlight end to end (config, DuckDB open, requests, load, ledger). */
  seconds: number;
  /** First request received to last response sent, as the server saw it. */
  http_seconds: number;
  ideal_seconds: number;
  ratio: number;
  http_ratio: number;
  tcp_connections: number;
  requests: number;
  max_in_flight: number;
  /** Server-side busy time over http_seconds: how many requests were in flight on average. */
  mean_in_flight: number;
  rows_loaded: number;
}

/** A `GET /repos/{owner}/{repo}` body shaped like GitHub's (about 6 KB, nested objects, extra fields). */
export function githubRepoBody(owner: string, name: string, n: number): Record<string, unknown> {
  const r = prng(n + 1);
  const full = `${owner}/${name}`;
  const api = `https://api.github.com/repos/${full}`;
  const at = (days: number) =>
    new Date(Date.UTC(2024, 0, 1) - Math.floor(days * 86_400_000)).toISOString().slice(0, 19) + 'Z';
  const ownerObj = {
    login: owner,
    id: 1000 + n,
    node_id: `MDQ6VXNlcj${n}`,
    avatar_url: `https://avatars.githubusercontent.com/u/${1000 + n}?v=4`,
    gravatar_id: '',
    url: `https://api.github.com/users/${owner}`,
    html_url: `https://github.com/${owner}`,
    followers_url: `https://api.github.com/users/${owner}/followers`,
    following_url: `https://api.github.com/users/${owner}/following{/other_user}`,
    gists_url: `https://api.github.com/users/${owner}/gists{/gist_id}`,
    starred_url: `https://api.github.com/users/${owner}/starred{/owner}{/repo}`,
    subscriptions_url: `https://api.github.com/users/${owner}/subscriptions`,
    organizations_url: `https://api.github.com/users/${owner}/orgs`,
    repos_url: `https://api.github.com/users/${owner}/repos`,
    events_url: `https://api.github.com/users/${owner}/events{/privacy}`,
    received_events_url: `https://api.github.com/users/${owner}/received_events`,
    type: 'Organization',
    user_view_type: 'public',
    site_admin: false,
  };
  const stars = Math.floor(r() * 50_000);
  const issues = Math.floor(r() * 2_000);
  const urls = Object.fromEntries(
    [
      'forks',
      'keys{/key_id}',
      'collaborators{/collaborator}',
      'teams',
      'hooks',
      'issues/events{/number}',
      'events',
      'assignees{/user}',
      'branches{/branch}',
      'tags',
      'blobs{/sha}',
      'git/tags{/sha}',
      'git/refs{/sha}',
      'git/trees{/sha}',
      'statuses/{sha}',
      'languages',
      'stargazers',
      'contributors',
      'subscribers',
      'subscription',
      'commits{/sha}',
      'git/commits{/sha}',
      'comments{/number}',
      'issues/comments{/number}',
      'contents/{+path}',
      'compare/{base}...{head}',
      'merges',
      '{archive_format}{/ref}',
      'downloads',
      'issues{/number}',
      'pulls{/number}',
      'milestones{/number}',
      'notifications{?since,all,participating}',
      'labels{/name}',
      'releases{/id}',
      'deployments',
    ].map((p) => [`${p.split('{')[0]!.replace(/\/$/, '').replaceAll('/', '_') || 'archive'}_url`, `${api}/${p}`]),
  );
  return {
    id: 100_000 + n,
    node_id: `MDEwOlJlcG9zaXRvcnk${n}`,
    name,
    full_name: full,
    private: false,
    owner: ownerObj,
    html_url: `https://github.com/${full}`,
    description: `Synthetic repository ${n} for the HTTP benchmark`,
    fork: false,
    url: api,
    ...urls,
    created_at: at(3000 * r()),
    updated_at: at(30 * r()),
    pushed_at: at(30 * r()),
    git_url: `git://github.com/${full}.git`,
    ssh_url: `git@github.com:${full}.git`,
    clone_url: `https://github.com/${full}.git`,
    svn_url: `https://github.com/${full}`,
    homepage: `https://${name}.example.org`,
    size: Math.floor(r() * 500_000),
    stargazers_count: stars,
    watchers_count: stars,
    language: 'C++',
    has_issues: true,
    has_projects: true,
    has_downloads: true,
    has_wiki: false,
    has_pages: true,
    has_discussions: true,
    forks_count: Math.floor(stars / 10),
    mirror_url: null,
    archived: false,
    disabled: false,
    open_issues_count: issues,
    license: {
      key: 'mit',
      name: 'MIT License',
      spdx_id: 'MIT',
      url: 'https://api.github.com/licenses/mit',
      node_id: 'MDc6TGljZW5zZTEz',
    },
    allow_forking: true,
    is_template: false,
    web_commit_signoff_required: false,
    topics: ['database', 'analytics', 'sql', 'olap'],
    visibility: 'public',
    forks: Math.floor(stars / 10),
    open_issues: issues,
    watchers: stars,
    default_branch: n % 5 === 0 ? 'master' : 'main',
    temp_clone_token: null,
    custom_properties: {},
    organization: ownerObj,
    network_count: Math.floor(stars / 10),
    subscribers_count: Math.floor(stars / 50),
  };
}

const DEFAULTS: HttpBenchOptions = { repos: 200, delayMs: 50, jitterMs: 0 };

export async function httpBench(options: Partial<HttpBenchOptions> = {}): Promise<HttpBenchResult> {
  const opts = { ...DEFAULTS, ...options };
  const parsed = parseConfig(opts.concurrency === undefined ? {} : { GITHUB_CONCURRENCY: String(opts.concurrency) });
  if ('problems' in parsed) throw new Error(`config: ${parsed.problems.join('; ')}`);
  const concurrency = parsed.config.GITHUB_CONCURRENCY;

  let connections = 0,
    requests = 0,
    inFlight = 0,
    maxInFlight = 0;
  let firstRequest = Infinity,
    lastResponse = 0,
    busyMs = 0;
  const jitter = prng(42);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const m = /^\/repos\/([^/]+)\/([^/?]+)$/.exec(req.url ?? '');
    requests++;
    firstRequest = Math.min(firstRequest, performance.now());
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    const delay = Math.max(0, opts.delayMs + (jitter() * 2 - 1) * opts.jitterMs);
    const arrived = performance.now();
    setTimeout(() => {
      inFlight--;
      busyMs += performance.now() - arrived;
      if (!m) {
        res.writeHead(404, { 'content-type': 'application/json; charset=utf-8' }).end('{"message":"Not Found"}');
        return;
      }
      const body = JSON.stringify(githubRepoBody(m[1]!, m[2]!, Number(/\d+/.exec(m[2]!)?.[0] ?? 0)));
      res.writeHead(200, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(body),
        'cache-control': 'public, max-age=60, s-maxage=60',
        etag: `W/"${requests.toString(16)}"`,
        'x-github-media-type': 'github.v3; format=json',
        'x-ratelimit-limit': '5000',
        'x-ratelimit-remaining': String(Math.max(0, 5000 - requests)),
        'x-ratelimit-used': String(requests),
        'x-ratelimit-resource': 'core',
      });
      res.end(body, () => (lastResponse = Math.max(lastResponse, performance.now())));
    }, delay);
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const dir = mkdtempSync(join(tmpdir(), 'flight-bench-http-'));
  try {
    const repos = Array.from({ length: opts.repos }, (_, i) => `owner-${i % 17}/repo-${i}`);
    const env: Record<string, string> = {
      LOCAL_DATA_DIR: dir,
      DESTINATION_DATABASE: 'httpbench',
      GITHUB_API_URL: `http://127.0.0.1:${port}`,
      GITHUB_REPOS: repos.join(','),
      HTTP_MAX_RETRIES: '0', // a retry would hide a problem; every request must succeed first time
      ...(opts.concurrency === undefined ? {} : { GITHUB_CONCURRENCY: String(opts.concurrency) }),
    };
    const t0 = performance.now();
    const summary = await runFlight({ env, log: () => {} });
    const seconds = (performance.now() - t0) / 1000;
    if (summary.status !== 'succeeded')
      throw new Error(`runFlight failed (exit ${summary.exitCode}): ${summary.error}`);
    if (summary.rowsLoaded !== opts.repos) throw new Error(`expected ${opts.repos} rows, loaded ${summary.rowsLoaded}`);
    const ideal = (opts.repos / concurrency) * (opts.delayMs / 1000);
    const httpSeconds = (lastResponse - firstRequest) / 1000;
    return {
      case: 'http-github-source',
      repos: opts.repos,
      delay_ms: opts.delayMs,
      jitter_ms: opts.jitterMs,
      concurrency,
      seconds,
      http_seconds: httpSeconds,
      ideal_seconds: ideal,
      ratio: seconds / ideal,
      http_ratio: httpSeconds / ideal,
      tcp_connections: connections,
      requests,
      max_in_flight: maxInFlight,
      mean_in_flight: busyMs / 1000 / httpSeconds,
      rows_loaded: summary.rowsLoaded,
    };
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatHttpResult(r: HttpBenchResult): string {
  const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const lines = [
    `HTTP: demo source, ${r.repos} repos, local server delaying each response ${r.delay_ms} ms${r.jitter_ms ? ` ± ${r.jitter_ms} ms (uniform)` : ''}, GITHUB_CONCURRENCY=${r.concurrency}`,
    `  runFlight end to end     ${r.seconds.toFixed(3)} s`,
    `  requests (server side)   ${r.http_seconds.toFixed(3)} s   first request in to last response out`,
    `  ideal                    ${r.ideal_seconds.toFixed(3)} s   ${r.repos} / ${r.concurrency} x ${r.delay_ms} ms`,
    `  ratio end to end         ${r.ratio.toFixed(2)}x   target <= 1.5: ${verdict(r.ratio <= 1.5)}`,
    `  ratio requests only      ${r.http_ratio.toFixed(2)}x`,
    `  TCP connections opened   ${r.tcp_connections}   (concurrency ${r.concurrency}; keep-alive: ${verdict(r.tcp_connections <= r.concurrency)})`,
    `  requests served          ${r.requests}, at most ${r.max_in_flight} in flight at once, ${r.mean_in_flight.toFixed(2)} on average`,
  ];
  return lines.join('\n');
}

/** `--name value` options shared with run.ts. */
export function httpOptionsFrom(get: (name: string) => string | undefined): Partial<HttpBenchOptions> {
  const num = (name: string) => {
    const v = get(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0)
      throw new Error(`--${name} must be a non-negative number, got ${JSON.stringify(v)}`);
    return n;
  };
  const out: Partial<HttpBenchOptions> = {};
  const [repos, delayMs, jitterMs, concurrency] = [num('repos'), num('delay'), num('jitter'), num('concurrency')];
  if (repos !== undefined) out.repos = repos;
  if (delayMs !== undefined) out.delayMs = delayMs;
  if (jitterMs !== undefined) out.jitterMs = jitterMs;
  if (concurrency !== undefined) out.concurrency = concurrency;
  return out;
}

export async function httpMain(get: (name: string) => string | undefined): Promise<number> {
  const result = await httpBench(httpOptionsFrom(get));
  console.log(formatHttpResult(result));
  console.log(JSON.stringify(result));
  return 0; // a benchmark: missing the target is reported, not an error
}

if (process.argv[1] && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const argv = process.argv.slice(2);
  const get = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  process.exitCode = await httpMain(get);
}
