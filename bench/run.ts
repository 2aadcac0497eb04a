/**
 * The benchmark: `npm run bench -- [options]` (see --help). Each case runs in a fresh child
 * process (bench/case.ts) so its peak RSS is its own; this process only orchestrates and reports.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CASES, RESULT_MARK, type CaseArgs, type CaseId, type CaseResult } from './protocol.ts';
import { asyncByDefault, parseShape, shapeName, type Shape } from './synthetic.ts';

const HELP = `Usage: npm run bench -- [options]

  --rows N[,N...]     rows per case; 200000, 2e5, 200k, 1m, 1_000_000 (default 200k)
  --shape S[,S...]    flat, realistic, nested, sparse:K, wide:N (default flat,realistic)
  --cases X[,X...]    a pipeline-append, b pipeline-merge, c insert-rowwise (autocommit),
                      h insert-rowwise-txn (one transaction), d appender, e ndjson-read_json,
                      g source-only, x extract-only (no DuckDB), p parquet-only (the Parquet worker
                      alone on the pipeline's batches), r read_parquet-only (DuckDB alone on the
                      pipeline's loader files) (default a,b,c,h,d,e,g)
  --rounds N          run the cases N times, interleaved (a d a d ...); the table shows medians (default 1)
  --cores N           pin every case process to the first N cores (taskset -c 0..N-1), as a small Flight
  --source S          sync or async: how every shape's source yields rows (default: async for
                      realistic, sync for the others)
  --sample N          rows cases c and h really insert (default 20000, c: 5000); rows/s is extrapolated
  --env KEY=VALUE     extra config for runFlight in cases a, b, x, p, r (repeatable), e.g. --env BATCH_ROWS=50000
  --rss-check         memory targets: flat append at 500k and 5m (RSS 5m/500k), sparse:1 and sparse:600
                      at 200k (RSS K=600 / K=1), wide:300 at 20k rows and wide:4000 at one row, with the
                      Appender and DuckDB alone (r) beside each (default cases a,d,r)
  --profile DIR       write a V8 CPU profile of each case process into DIR (node --cpu-prof)
  --http              the HTTP-side benchmark instead (bench/http.ts): --repos 200 --delay 50
                      --jitter 0 --concurrency <GITHUB_CONCURRENCY default>
  --keep              keep the temp folders (printed) instead of removing them
  --help

Every case runs in a fresh process (node --import tsx bench/case.ts) and times only its work:
wall time, and CPU time (user + sys of that process, every thread). peak_rss_mb is that process's
maxRSS, node + DuckDB baseline included (start_rss_mb is the RSS before the case touches DuckDB);
js_heap and js_buffers are the main thread's peak heapUsed and ArrayBuffers. The readable table
and ratios go to stdout, followed by one JSON line per case run; progress goes to stderr.`;

const NAME_TO_ID = Object.fromEntries(Object.entries(CASES).map(([id, name]) => [name, id])) as Record<string, CaseId>;

/** 1e6, 1000000, 1_000_000, 1m, 200k, 1.5m. */
export function parseRows(text: string): number {
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)([km]?)$/i.exec(text.trim().replaceAll('_', ''));
  const n = m ? Number(m[1]) * ({ '': 1, k: 1e3, m: 1e6 } as Record<string, number>)[m[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`--rows: ${JSON.stringify(text)} is not a whole number of rows (try 200000, 2e5, 200k, 1m)`);
  return n;
}

/** One group of cases compared with each other: a shape at a row count. */
interface Job {
  shape: Shape;
  rows: number;
}
interface Options {
  jobs: Job[];
  cases: CaseId[];
  rounds: number;
  cores: number | null;
  source: 'sync' | 'async' | null;
  sample: number;
  env: Record<string, string>;
  profile: string | null;
  keep: boolean;
}

function parseArgs(
  argv: string[],
): { help: true } | { http: true; get: (name: string) => string | undefined } | { http: false; opts: Options } {
  const values = new Map<string, string[]>();
  const flags = new Set<string>();
  const FLAGS = new Set(['rss-check', 'http', 'keep', 'help']);
  const VALUES = new Set([
    'rows',
    'shape',
    'cases',
    'rounds',
    'cores',
    'source',
    'sample',
    'env',
    'profile',
    'repos',
    'delay',
    'jitter',
    'concurrency',
  ]);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) throw new Error(`unexpected argument ${JSON.stringify(arg)} (see --help)`);
    const name = m[1]!;
    if (FLAGS.has(name)) flags.add(name);
    else if (VALUES.has(name)) {
      const value = m[2] ?? argv[++i];
      if (value === undefined) throw new Error(`--${name} needs a value`);
      values.set(name, [...(values.get(name) ?? []), value]);
    } else throw new Error(`unknown option --${name} (see --help)`);
  }
  if (flags.has('help')) return { help: true };
  const get = (name: string) => values.get(name)?.at(-1);
  if (flags.has('http')) return { http: true, get };
  const list = (name: string, fallback: string) =>
    (get(name) ?? fallback)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const count = (name: string, fallback: string) => {
    const n = Number(get(name) ?? fallback);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: ${JSON.stringify(get(name))} is not a count (>= 1)`);
    return n;
  };

  const rss = flags.has('rss-check');
  const shapes = list('shape', 'flat,realistic').map((s) => {
    parseShape(s); // throws on an unknown shape
    return shapeName(s);
  });
  const rows = list('rows', '200k').map(parseRows);
  const jobs: Job[] = rss
    ? [
        { shape: 'flat', rows: 500_000 },
        { shape: 'flat', rows: 5_000_000 },
        { shape: 'sparse:1', rows: 200_000 },
        { shape: 'sparse:600', rows: 200_000 },
        { shape: 'wide:300', rows: 20_000 },
        { shape: 'wide:4000', rows: 1 },
      ]
    : rows.flatMap((n) => shapes.map((shape) => ({ shape, rows: n })));
  const cases = list('cases', rss ? 'a,d,r' : 'a,b,c,h,d,e,g').map((c) => {
    const id = c in CASES ? (c as CaseId) : NAME_TO_ID[c];
    if (!id)
      throw new Error(
        `--cases: ${JSON.stringify(c)} is not one of ${Object.entries(CASES)
          .map(([k, v]) => `${k} (${v})`)
          .join(', ')}`,
      );
    return id;
  });
  const source = get('source') ?? null;
  if (source !== null && source !== 'sync' && source !== 'async')
    throw new Error(`--source: ${JSON.stringify(source)} is not sync or async`);
  const cores = get('cores') === undefined ? null : count('cores', '1');
  if (cores !== null && spawnSync('taskset', ['--version']).status !== 0)
    throw new Error('--cores needs taskset (util-linux), which is not installed');
  const sample = parseRows(get('sample') ?? '20000');
  const env: Record<string, string> = {};
  for (const kv of values.get('env') ?? []) {
    const eq = kv.indexOf('=');
    if (eq < 1) throw new Error(`--env: ${JSON.stringify(kv)} is not KEY=VALUE`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return {
    http: false,
    opts: {
      jobs,
      cases: [...new Set(cases)],
      rounds: count('rounds', '1'),
      cores,
      source,
      sample,
      env,
      profile: get('profile') ?? null,
      keep: flags.has('keep'),
    },
  };
}

// ─── Running cases ──────────────────────────────────────────────────────────────────────────────

const CASE_FILE = fileURLToPath(new URL('./case.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

function runCase(args: CaseArgs, opts: Options): Promise<CaseResult> {
  const node = [
    ...(opts.profile ? ['--cpu-prof', '--cpu-prof-dir', opts.profile] : []),
    '--import',
    TSX,
    CASE_FILE,
    JSON.stringify(args),
  ];
  const [command, argv] =
    opts.cores === null
      ? [process.execPath, node]
      : ['taskset', ['-c', `0-${opts.cores - 1}`, process.execPath, ...node]];
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith(RESULT_MARK));
      if (code !== 0 || !line)
        return reject(
          new Error(
            `case ${args.case} (${args.shape}, ${args.rows} rows) exited with ${signal ?? code}${line ? '' : ', no result'}${out.trim() ? `; stdout: ${out.trim().slice(-500)}` : ''}`,
          ),
        );
      resolve(JSON.parse(line.slice(RESULT_MARK.length)) as CaseResult);
    });
  });
}

// ─── Reporting ──────────────────────────────────────────────────────────────────────────────────

const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
const fmtRows = (n: number) =>
  n >= 1e6 && n % 1e5 === 0 ? `${n / 1e6}m` : n >= 1e3 && n % 100 === 0 ? `${n / 1e3}k` : String(n);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** The median of each figure over a case's rounds. */
interface Summary extends CaseResult {
  rounds: number;
  /** Each round's figures, in the order run: paired with another case's same round for per-round ratios. */
  runs: CaseResult[];
}
function summarize(runs: CaseResult[]): Summary {
  const m = (key: 'seconds' | 'cpu_s' | 'peak_rss_mb' | 'start_rss_mb' | 'js_heap_mb' | 'js_buffers_mb') =>
    median(runs.map((r) => r[key]));
  const seconds = m('seconds');
  return {
    ...runs[0]!,
    seconds,
    cpu_s: m('cpu_s'),
    rows_per_s: runs[0]!.rows / seconds,
    peak_rss_mb: m('peak_rss_mb'),
    start_rss_mb: m('start_rss_mb'),
    js_heap_mb: m('js_heap_mb'),
    js_buffers_mb: m('js_buffers_mb'),
    rounds: runs.length,
    runs,
  };
}

/**
 * x/y of each round (the two ran back to back, so they share that moment's load): on this noisy machine the
 * spread of these says more than one ratio of medians. Empty with one round.
 */
function perRound(x: Summary, y: Summary, figure: (r: CaseResult) => number): string {
  if (x.runs.length < 2 || x.runs.length !== y.runs.length) return '';
  const each = x.runs.map((r, i) => figure(r) / figure(y.runs[i]!));
  return `; per round ${each.map((v) => `${v.toFixed(2)}x`).join(' ')}, median ${median(each).toFixed(2)}x`;
}

function table(results: Summary[]): string {
  const head = ['shape', 'rows', 'case', 'wall s', 'CPU s', 'rows/s', 'peak RSS MB', 'JS heap MB', 'JS buffers MB'];
  const body = results.map((r) => [
    r.shape,
    r.requested_rows ? `${fmtInt(r.rows)} of ${fmtInt(r.requested_rows)}` : fmtInt(r.rows),
    r.case,
    r.seconds.toFixed(3),
    r.cpu_s.toFixed(3),
    fmtInt(r.rows_per_s),
    r.peak_rss_mb.toFixed(0),
    r.js_heap_mb.toFixed(0),
    r.js_buffers_mb.toFixed(0),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const right = new Set([1, 3, 4, 5, 6, 7, 8]);
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const notes = new Map<string, string>();
  for (const r of results) {
    const extra = r.requested_rows
      ? ` (${fmtInt(r.requested_rows)} rows at this rate ≈ ${(r.requested_rows / r.rows_per_s).toFixed(1)} s)`
      : '';
    if (r.note)
      notes.set(
        `${r.case} ${r.shape} ${r.requested_rows ?? r.rows}`,
        `  ${r.case}, ${r.shape}, ${fmtRows(r.requested_rows ?? r.rows)}: ${r.note}${extra}`,
      );
  }
  return [
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
    ...body.map(line),
    ...(notes.size ? ['', 'Notes (of the first round):', ...notes.values()] : []),
  ].join('\n');
}

function ratios(results: Summary[], opts: Options): string[] {
  const find = (name: string, shape: Shape, rows: number) =>
    results.find((r) => r.case === name && r.shape === shape && (r.requested_rows ?? r.rows) === rows);
  const out: string[] = [];
  const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const oneCore = opts.cores === 1;
  for (const { shape, rows } of opts.jobs) {
    const [a, b, c, d, e, h] = (
      [
        'pipeline-append',
        'pipeline-merge',
        'insert-rowwise',
        'appender',
        'ndjson-read_json',
        'insert-rowwise-txn',
      ] as const
    ).map((n) => find(n, shape, rows));
    const at = `${shape} ${fmtRows(rows)}`;
    const headline = shape === 'realistic' && rows === 1_000_000;
    const where = (target: string) => (headline ? '' : ` (the target is set for ${target})`);
    if (a && d) {
      const wall = a.seconds / d.seconds;
      const cpu = a.cpu_s / d.cpu_s;
      const wallTarget = oneCore ? 1.0 : 0.8;
      out.push(
        `${at}: append vs Appender, wall (a/d)   ${wall.toFixed(2)}x   target <= ${wallTarget.toFixed(1)} on ${oneCore ? 'one core' : 'two cores'}: ${verdict(wall <= wallTarget)}${where('realistic, 1m rows')}${perRound(a, d, (r) => r.seconds)}`,
        `${at}: append vs Appender, CPU (a/d)    ${cpu.toFixed(2)}x   target <= 1.0: ${verdict(cpu <= 1)}${where('realistic, 1m rows')}${perRound(a, d, (r) => r.cpu_s)}`,
        `${at}: append vs Appender, peak RSS     ${(a.peak_rss_mb / d.peak_rss_mb).toFixed(2)}x   (${a.peak_rss_mb.toFixed(0)} / ${d.peak_rss_mb.toFixed(0)} MB; no target)`,
      );
      if (shape === 'flat')
        out.push(
          `${at}: append vs Appender throughput (a/d)   ${(a.rows_per_s / d.rows_per_s).toFixed(2)}x   target >= 1.0: ${verdict(a.rows_per_s >= d.rows_per_s)}${perRound(a, d, (r) => r.rows_per_s)}`,
        );
    }
    if (a && c)
      out.push(
        `${at}: append vs row-wise INSERT (a/c)      ${(a.rows_per_s / c.rows_per_s).toFixed(0)}x   target >= 200: ${verdict(a.rows_per_s / c.rows_per_s >= 200)}`,
      );
    if (a && h)
      out.push(
        `${at}: append vs row-wise INSERT in one transaction (a/h)  ${(a.rows_per_s / h.rows_per_s).toFixed(0)}x   (no target; a stronger baseline than c)`,
      );
    if (a && b)
      out.push(
        `${at}: merge time vs append time (b/a)      ${(b.seconds / a.seconds).toFixed(2)}x   target <= 2.5: ${verdict(b.seconds / a.seconds <= 2.5)}`,
      );
    if (a && e)
      out.push(
        `${at}: append vs NDJSON+read_json (a/e)     ${(a.rows_per_s / e.rows_per_s).toFixed(2)}x   (no target)`,
      );
    const [g, p, r] = (['source-only', 'parquet-only', 'read_parquet-only'] as const).map((n) => find(n, shape, rows));
    if (d && g && p && r) {
      const floor = g.cpu_s + p.cpu_s + r.cpu_s;
      out.push(
        `${at}: floor CPU, source + Parquet + read_parquet (g+p+r)   ${floor.toFixed(2)} s = ${(floor / d.cpu_s).toFixed(2)}x the Appender's ${d.cpu_s.toFixed(2)} s` +
          (a ? `; the pipeline's other work (a - floor): ${(a.cpu_s - floor).toFixed(2)} s` : ''),
      );
    }
  }
  const appendRss = (shape: Shape, rows: number) => find('pipeline-append', shape, rows)?.peak_rss_mb;
  const [small, large] = [appendRss('flat', 500_000), appendRss('flat', 5_000_000)];
  if (small && large)
    out.push(
      `flat: peak RSS append 5m / 500k   ${large.toFixed(0)} / ${small.toFixed(0)} MB = ${(large / small).toFixed(2)}x   target <= 1.5: ${verdict(large / small <= 1.5)}`,
    );
  for (const rows of new Set(opts.jobs.map((j) => j.rows))) {
    const one = appendRss('sparse:1', rows);
    for (const { shape } of opts.jobs.filter((j) => j.rows === rows && j.shape.startsWith('sparse:'))) {
      const many = appendRss(shape, rows);
      const duckdb = find('read_parquet-only', shape, rows)?.peak_rss_mb;
      if (one && many && shape !== 'sparse:1')
        out.push(
          `${shape} / sparse:1 at ${fmtRows(rows)}: peak RSS append   ${many.toFixed(0)} / ${one.toFixed(0)} MB = ${(many / one).toFixed(2)}x   target <= 1.5: ${verdict(many / one <= 1.5)}` +
            (duckdb
              ? `; DuckDB alone loading ${shape}'s files (r): ${duckdb.toFixed(0)} MB = ${(duckdb / one).toFixed(2)}x`
              : ''),
        );
    }
  }
  return out;
}

function header(opts: Options): string {
  const flight = readFileSync(fileURLToPath(new URL('../flight.ts', import.meta.url)));
  const duckdb = (
    JSON.parse(
      readFileSync(fileURLToPath(new URL('../node_modules/@duckdb/node-api/package.json', import.meta.url)), 'utf8'),
    ) as { version: string }
  ).version;
  const env = Object.entries(opts.env).map(([k, v]) => `${k}=${v}`);
  return [
    `flight-dlt-ingest bench, ${new Date().toISOString()}`,
    `node ${process.version}, @duckdb/node-api ${duckdb}, ${cpus().length} CPU(s) (${cpus()[0]?.model.trim() ?? 'unknown'}), flight.ts sha256 ${createHash('sha256').update(flight).digest('hex').slice(0, 12)}`,
    `load average at start ${loadavg()
      .map((l) => l.toFixed(2))
      .join(
        ' ',
      )}${opts.cores === null ? '' : `; every case pinned to ${opts.cores} core(s) (taskset -c 0-${opts.cores - 1})`}`,
    `command: npm run bench -- ${process.argv.slice(2).join(' ')}`.trimEnd(),
    `jobs ${opts.jobs.map((j) => `${j.shape}@${fmtRows(j.rows)}`).join(', ')}; cases ${opts.cases.join(',')}; ${opts.rounds} round(s); source ${opts.source ?? 'async for realistic, sync otherwise'}; case h sample ${fmtInt(opts.sample)}, case c ${fmtInt(Math.ceil(opts.sample / 4))}${env.length ? `; runFlight env ${env.join(' ')}` : ''}`,
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const parsed = parseArgs(argv);
  if ('help' in parsed) {
    console.log(HELP);
    return 0;
  }
  if (parsed.http) {
    const { httpMain } = await import('./http.ts');
    return httpMain(parsed.get);
  }
  const opts = parsed.opts;
  console.log(header(opts) + '\n');
  if (opts.profile) mkdirSync(opts.profile, { recursive: true });
  const root = mkdtempSync(join(tmpdir(), 'flight-bench-'));
  const runs = new Map<string, CaseResult[]>(); // by job and case, in the order first run
  const failures: string[] = [];
  const total = opts.jobs.length * opts.cases.length * opts.rounds;
  let n = 0;
  const interrupted = () => {
    if (!opts.keep) rmSync(root, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  try {
    for (const { shape, rows } of opts.jobs)
      for (let round = 1; round <= opts.rounds; round++)
        for (const id of opts.cases) {
          const dir = join(root, `${fmtRows(rows)}-${shape.replace(':', '')}-${id}-${round}`);
          mkdirSync(dir);
          const source = opts.source ?? (asyncByDefault(shape) ? 'async' : 'sync');
          process.stderr.write(
            `[${++n}/${total}] ${shape} ${fmtRows(rows)} ${CASES[id]}${opts.rounds > 1 ? ` round ${round}` : ''} ... `,
          );
          try {
            const r = await runCase({ case: id, shape, rows, dir, sample: opts.sample, env: opts.env, source }, opts);
            const key = `${shape}/${rows}/${id}`;
            runs.set(key, [...(runs.get(key) ?? []), r]);
            process.stderr.write(
              `${r.seconds.toFixed(2)} s, CPU ${r.cpu_s.toFixed(2)} s, ${fmtInt(r.rows_per_s)} rows/s, peak RSS ${r.peak_rss_mb.toFixed(0)} MB\n`,
            );
          } catch (e) {
            const msg = e instanceof Error ? e.message : String(e);
            failures.push(msg);
            process.stderr.write(`FAILED\n  ${msg}\n`);
          } finally {
            if (!opts.keep) rmSync(dir, { recursive: true, force: true });
          }
        }
  } finally {
    process.off('SIGINT', interrupted);
    if (opts.keep) console.error(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }

  const results = [...runs.values()].map(summarize);
  if (results.length) {
    console.log(table(results));
    if (opts.rounds > 1) console.log(`\nFigures are medians of ${opts.rounds} rounds, run interleaved.`);
    const r = ratios(results, opts);
    if (r.length) console.log('\nRatios (issue targets):\n' + r.map((l) => `  ${l}`).join('\n'));
    console.log('');
    for (const list of runs.values())
      for (const x of list)
        console.log(
          JSON.stringify({
            case: x.case,
            shape: x.shape,
            rows: x.rows,
            seconds: +x.seconds.toFixed(4),
            cpu_s: +x.cpu_s.toFixed(4),
            rows_per_s: Math.round(x.rows_per_s),
            peak_rss_mb: +x.peak_rss_mb.toFixed(1),
            js_heap_mb: +x.js_heap_mb.toFixed(1),
            js_buffers_mb: +x.js_buffers_mb.toFixed(1),
          }),
        );
  }
  if (failures.length) {
    console.error(`\n${failures.length} case(s) FAILED:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
    return 1;
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2)).catch((e: unknown) => {
  console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
  return 2;
});
