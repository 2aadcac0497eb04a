// Shared test helpers: temp dirs, a scriptable stand-in for the GitHub API on
// 127.0.0.1, DuckDB file inspection and a CLI runner. Nothing here mocks our
// own code: the server is a real HTTP server and the databases are real files.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { DuckDBInstance, type JS } from '@duckdb/node-api';

/** Absolute path of flight.ts, computed from this file so a fresh clone works anywhere. */
export const FLIGHT_PATH = fileURLToPath(new URL('../flight.ts', import.meta.url));
/** The project root (where package.json lives). */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));
/** tsx's ESM loader, resolved from this file so the CLI can run with any cwd. */
const TSX_LOADER = import.meta.resolve('tsx');

export type Env = Record<string, string | undefined>;
export type Row = Record<string, JS>;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Temporary directories
// ---------------------------------------------------------------------------

/** A fresh empty directory, removed after the test. */
export async function tempDir(t: TestContext, prefix = 'flight-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export async function listDir(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return [];
  return (await readdir(dir)).sort();
}

// ---------------------------------------------------------------------------
// Fake GitHub API
// ---------------------------------------------------------------------------

/** A GitHub `GET /repos/{owner}/{repo}` body, trimmed but realistic (nested objects, extra fields). */
export interface GitHubRepo {
  id: number;
  node_id: string;
  name: string;
  full_name: string;
  private: boolean;
  owner: { login: string; id: number; type: string; html_url: string; site_admin: boolean };
  html_url: string;
  description: string | null;
  fork: boolean;
  url: string;
  created_at: string;
  updated_at: string;
  pushed_at: string;
  homepage: string | null;
  size: number;
  stargazers_count: number;
  watchers_count: number;
  language: string | null;
  has_issues: boolean;
  archived: boolean;
  disabled: boolean;
  forks_count: number;
  open_issues_count: number;
  license: { key: string; name: string; spdx_id: string } | null;
  topics: string[];
  visibility: string;
  forks: number;
  open_issues: number;
  watchers: number;
  default_branch: string;
  network_count: number;
  subscribers_count: number;
  [extra: string]: unknown;
}

/** Stats for the three default repos; other repos get deterministic values derived from the name. */
const KNOWN_STATS: Record<string, Partial<GitHubRepo>> = {
  'duckdb/duckdb': {
    id: 138754790,
    stargazers_count: 31245,
    forks_count: 2456,
    open_issues_count: 312,
    default_branch: 'main',
    pushed_at: '2025-11-24T18:02:11Z',
    language: 'C++',
  },
  'motherduckdb/motherduck-docs': {
    id: 596233318,
    stargazers_count: 87,
    forks_count: 45,
    open_issues_count: 21,
    default_branch: 'main',
    pushed_at: '2025-11-21T09:15:00Z',
    language: 'MDX',
  },
  'dlt-hub/dlt': {
    id: 452221115,
    stargazers_count: 4103,
    forks_count: 318,
    open_issues_count: 0,
    default_branch: 'devel',
    pushed_at: '2025-11-25T07:44:59Z',
    language: 'Python',
  },
};

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/** The JSON the fake server returns for `fullName` (owner/name), with optional overrides. */
export function githubRepo(fullName: string, overrides: Partial<GitHubRepo> = {}): GitHubRepo {
  const [owner = 'owner', name = 'name'] = fullName.split('/');
  const h = hash(fullName);
  const base = KNOWN_STATS[fullName] ?? {};
  const repo: GitHubRepo = {
    id: base.id ?? 1000 + (h % 900000),
    node_id: `R_kgDO${(h % 100000).toString(36)}`,
    name,
    full_name: fullName,
    private: false,
    owner: {
      login: owner,
      id: 10000 + (h % 5000),
      type: 'Organization',
      html_url: `https://github.com/${owner}`,
      site_admin: false,
    },
    html_url: `https://github.com/${fullName}`,
    description: `The ${name} repository`,
    fork: false,
    url: `https://api.github.com/repos/${fullName}`,
    created_at: '2018-06-26T15:03:05Z',
    updated_at: '2025-11-25T08:00:00Z',
    pushed_at: base.pushed_at ?? '2025-10-01T12:00:00Z',
    homepage: null,
    size: 100 + (h % 10000),
    stargazers_count: base.stargazers_count ?? h % 5000,
    watchers_count: 0,
    language: base.language ?? 'TypeScript',
    has_issues: true,
    archived: false,
    disabled: false,
    forks_count: base.forks_count ?? (h >>> 8) % 700,
    open_issues_count: base.open_issues_count ?? (h >>> 16) % 90,
    license: { key: 'mit', name: 'MIT License', spdx_id: 'MIT' },
    topics: ['database', 'analytics'],
    visibility: 'public',
    forks: 0,
    open_issues: 0,
    watchers: 0,
    default_branch: base.default_branch ?? 'main',
    network_count: 10,
    subscribers_count: 5,
    ...overrides,
  };
  // GitHub mirrors these legacy fields; keep them consistent with overrides.
  repo.watchers_count = repo.stargazers_count;
  repo.watchers = repo.stargazers_count;
  repo.forks = repo.forks_count;
  repo.open_issues = repo.open_issues_count;
  return repo;
}

export function githubError(status: number): { message: string; documentation_url: string; status: string } {
  const messages: Record<number, string> = {
    401: 'Bad credentials',
    403: 'Forbidden',
    404: 'Not Found',
    410: 'Gone',
    422: 'Validation Failed',
    429: 'API rate limit exceeded',
    500: 'Internal Server Error',
    502: 'Bad Gateway',
    503: 'Service Unavailable',
  };
  return {
    message: messages[status] ?? 'Error',
    documentation_url: 'https://docs.github.com/rest/repos/repos#get-a-repository',
    status: String(status),
  };
}

/** A scripted reply. Missing body: repo JSON for /repos/:owner/:name on 2xx, a GitHub error body otherwise. */
export interface Reply {
  status?: number;
  headers?: Record<string, string | number>;
  /** string/Buffer sent verbatim, anything else JSON-encoded. */
  body?: unknown;
  /** Wait before answering (headers included). */
  delayMs?: number;
}

export interface HandlerInfo {
  /** 1-based count of requests seen on this path, this one included. */
  attempt: number;
  server: FakeGitHub;
}

/** Full control of the exchange (resets, truncated bodies, streaming...). */
export type RawHandler = (req: IncomingMessage, res: ServerResponse, info: HandlerInfo) => void | Promise<void>;
export type Step = Reply | RawHandler;
/** A single step, or a sequence by attempt; the last step repeats once the sequence is used up. */
export type Route = Step | Step[];

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** performance.now() when the request arrived. */
  at: number;
  /** Date.now() when the request arrived (for comparing with x-ratelimit-reset). */
  wallAt: number;
}

export interface FakeGitHub {
  /** Base URL to use as GITHUB_API_URL (no trailing slash). */
  url: string;
  requests: RecordedRequest[];
  requestsFor(path: string): RecordedRequest[];
  /** Repo bodies served by the default handler, by full name; replace entries to change stats between runs. */
  repos: Map<string, GitHubRepo>;
  setRepo(fullName: string, overrides: Partial<GitHubRepo>): void;
  route(path: string, route: Route): void;
  /** Highest number of requests in flight at the same time. */
  maxInFlight: number;
  close(): Promise<void>;
}

const REPO_PATH = /^\/repos\/([^/]+)\/([^/]+)\/?$/;

/** Default behaviour: 200 + repo JSON for /repos/:owner/:name, 404 otherwise. */
function defaultReply(path: string, server: FakeGitHub): { status: number; body: unknown } {
  const m = REPO_PATH.exec(path);
  if (!m) return { status: 404, body: githubError(404) };
  const full = `${decodeURIComponent(m[1] ?? '')}/${decodeURIComponent(m[2] ?? '')}`;
  return { status: 200, body: server.repos.get(full) ?? githubRepo(full) };
}

async function sendReply(req: IncomingMessage, res: ServerResponse, reply: Reply, server: FakeGitHub): Promise<void> {
  if (reply.delayMs) await sleep(reply.delayMs);
  if (res.destroyed) return;
  const status = reply.status ?? 200;
  let body = reply.body;
  if (body === undefined) {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    body =
      status >= 200 && status < 300
        ? defaultReply(path, server).body
        : status >= 300 && status < 400
          ? ''
          : githubError(status);
  }
  const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'x-github-api-version-selected': '2022-11-28',
    'x-ratelimit-limit': 60,
    'x-ratelimit-remaining': 59,
    ...reply.headers,
  };
  res.writeHead(status, headers);
  res.end(payload);
}

/**
 * Start the GitHub stand-in on 127.0.0.1 (random port). `routes` maps a request path
 * (e.g. `/repos/duckdb/duckdb`) to a scripted route; unrouted paths get the default reply.
 * Closed after the test.
 */
export async function startFakeGitHub(t: TestContext, routes: Record<string, Route> = {}): Promise<FakeGitHub> {
  const table = new Map<string, Route>(Object.entries(routes));
  const counts = new Map<string, number>();
  let inFlight = 0;
  const server = createServer();
  const fake: FakeGitHub = {
    url: '',
    requests: [],
    requestsFor: (path) => fake.requests.filter((r) => r.path === path),
    repos: new Map(),
    setRepo: (fullName, overrides) => {
      fake.repos.set(fullName, githubRepo(fullName, overrides));
    },
    route: (path, route) => {
      table.set(path, route);
    },
    maxInFlight: 0,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    fake.requests.push({
      method: req.method ?? 'GET',
      path,
      headers: req.headers,
      at: performance.now(),
      wallAt: Date.now(),
    });
    const attempt = (counts.get(path) ?? 0) + 1;
    counts.set(path, attempt);
    inFlight++;
    fake.maxInFlight = Math.max(fake.maxInFlight, inFlight);
    let done = false;
    const finish = (): void => {
      if (!done) {
        done = true;
        inFlight--;
      }
    };
    res.on('close', finish);
    req.resume();
    const route = table.get(path);
    const step: Step = Array.isArray(route) ? (route[Math.min(attempt, route.length) - 1] ?? {}) : (route ?? {});
    const info: HandlerInfo = { attempt, server: fake };
    const run = typeof step === 'function' ? step(req, res, info) : sendReply(req, res, step, fake);
    Promise.resolve(run).catch((err: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(599);
        res.end(String(err));
      }
    });
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(() => fake.close());
  return fake;
}

// Ready-made steps for fault injection.

export const reply = {
  ok: (body?: unknown, headers?: Record<string, string | number>): Reply => ({ status: 200, body, headers }),
  status: (status: number, headers?: Record<string, string | number>, body?: unknown): Reply => ({
    status,
    headers,
    body,
  }),
  redirect: (location: string, status = 301): Reply => ({ status, headers: { location }, body: '' }),
  slow: (delayMs: number, r: Reply = {}): Reply => ({ ...r, delayMs }),
  /** Destroy the socket without answering (ECONNRESET / "other side closed" on the client). */
  reset: (): RawHandler => (req) => {
    req.socket.destroy();
  },
  /** Announce a full body, send half of it, then cut the connection. */
  truncated: (): RawHandler => (req, res, info) => {
    const full = JSON.stringify(defaultReply(new URL(req.url ?? '/', 'http://x').pathname, info.server).body);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(full) });
    res.write(full.slice(0, Math.floor(full.length / 2)));
    setTimeout(() => req.socket.destroy(), 10);
  },
};

// ---------------------------------------------------------------------------
// DuckDB inspection
// ---------------------------------------------------------------------------

/**
 * Run `sql` against the DuckDB file at `dbPath` and return the rows as JS values
 * (BIGINT -> bigint, DOUBLE -> number, TIMESTAMPTZ -> Date). Opens read-only by default
 * (a missing file is an error, nothing is created); the instance is closed before returning
 * so the file is not locked.
 */
export async function query(
  dbPath: string,
  sql: string,
  opts: { write?: boolean; params?: (string | number | boolean | null)[] } = {},
): Promise<Row[]> {
  const instance = await DuckDBInstance.create(dbPath, opts.write ? {} : { access_mode: 'READ_ONLY' });
  try {
    const connection = await instance.connect();
    try {
      const reader = await connection.runAndReadAll(sql, opts.params);
      return reader.getRowObjectsJS();
    } finally {
      connection.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}

export interface ColumnInfo {
  name: string;
  type: string;
}

/** Columns of `<schema>.<table>` in ordinal order, with DuckDB's type names (e.g. TIMESTAMP WITH TIME ZONE). */
export async function columns(dbPath: string, schema: string, table: string): Promise<ColumnInfo[]> {
  const rows = await query(
    dbPath,
    `SELECT column_name, data_type FROM information_schema.columns
     WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`,
    { params: [schema, table] },
  );
  return rows.map((r) => ({ name: String(r.column_name), type: String(r.data_type) }));
}

/** Names of the tables in the file, as `schema.table`, sorted. */
export async function tableNames(dbPath: string): Promise<string[]> {
  const rows = await query(
    dbPath,
    `SELECT table_schema || '.' || table_name AS t FROM information_schema.tables ORDER BY 1`,
  );
  return rows.map((r) => String(r.t));
}

/** True when `text` contains `value`, raw or JSON-escaped (a message may quote the offending value). */
export function mentions(text: string, value: string): boolean {
  return text.includes(value) || text.includes(JSON.stringify(value).slice(1, -1));
}

/** Drop dlt bookkeeping columns so rows can be compared with expected data. */
export function withoutDlt(rows: Row[]): Row[] {
  return rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('_dlt_'))));
}

// ---------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** The minimal environment a child Flight gets (never a real token from this shell), plus `env`. */
export function childEnv(env: Env): Record<string, string> {
  const out: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? tmpdir(),
    TMPDIR: process.env.TMPDIR ?? tmpdir(),
  };
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined) delete out[k];
    else out[k] = v;
  }
  return out;
}

/** Runs node (with tsx) on `args` and collects its output; killed after `timeoutMs`. */
function runNode(args: string[], env: Env, opts: { cwd?: string; timeoutMs: number }): Promise<CliResult> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX_LOADER, ...args], {
      cwd: opts.cwd ?? PROJECT_ROOT,
      env: childEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, durationMs: performance.now() - started });
    });
  });
}

/**
 * Run the real CLI (`node --import tsx flight.ts ...args`) with a minimal environment: PATH, HOME,
 * TMPDIR and the given keys only, so no real token from the developer's shell leaks in.
 */
export function runCli(env: Env, opts: { args?: string[]; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return runNode([FLIGHT_PATH, ...(opts.args ?? [])], env, { cwd: opts.cwd, timeoutMs: opts.timeoutMs ?? 60_000 });
}

/** Run a snippet of ES module code in a fresh node (with tsx) and the same minimal environment. */
export function runNodeScript(
  code: string,
  env: Env,
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return runNode(['--input-type=module', '-e', code], env, { cwd: opts.cwd, timeoutMs: opts.timeoutMs ?? 30_000 });
}

// ---------------------------------------------------------------------------
// Common env
// ---------------------------------------------------------------------------

export const DEFAULT_REPOS = ['duckdb/duckdb', 'motherduckdb/motherduck-docs', 'dlt-hub/dlt'] as const;

/**
 * Env for a test run: the fake server as GitHub, `dataDir` as LOCAL_DATA_DIR, short HTTP
 * timeouts/waits so failures are fast. Everything else is left to the defaults unless given.
 */
export function testEnv(dataDir: string, server: { url: string } | string, extra: Env = {}): Env {
  return {
    LOCAL_DATA_DIR: dataDir,
    GITHUB_API_URL: typeof server === 'string' ? server : server.url,
    HTTP_TIMEOUT_S: '5',
    HTTP_MAX_RETRIES: '3',
    HTTP_MAX_WAIT_S: '5',
    ...extra,
  };
}

/** Path of the local destination file for a data dir and database name. */
export function dbFile(dataDir: string, database = 'flights_demo'): string {
  return join(dataDir, `${database}.duckdb`);
}

/** The ledger's leading columns, in order: the seed's five, then the ones this port adds. */
export const LEDGER_COLUMNS: readonly ColumnInfo[] = [
  { name: 'run_at', type: 'TIMESTAMP WITH TIME ZONE' },
  { name: 'pipeline_name', type: 'VARCHAR' },
  { name: 'destination_dataset', type: 'VARCHAR' },
  { name: 'destination_table', type: 'VARCHAR' },
  { name: 'load_summary', type: 'VARCHAR' },
  { name: 'status', type: 'VARCHAR' },
  { name: 'load_id', type: 'VARCHAR' },
  { name: 'rows_loaded', type: 'BIGINT' },
  { name: 'error', type: 'VARCHAR' },
  { name: 'duration_s', type: 'DOUBLE' },
  { name: 'destination', type: 'VARCHAR' },
];

/** The demo row the flight should build from a GitHub repo body (BIGINTs as bigint, pushed_at as Date). */
export function expectedRow(configured: string, body: GitHubRepo = githubRepo(configured)): Row {
  return {
    repo: configured,
    stars: BigInt(body.stargazers_count),
    forks: BigInt(body.forks_count),
    open_issues: BigInt(body.open_issues_count),
    default_branch: body.default_branch,
    pushed_at: new Date(body.pushed_at),
  };
}
