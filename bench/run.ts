/**
 * The benchmark: `npm run bench -- [options]` (see --help). Each case runs in a fresh child
 * process (bench/case.ts) so its peak RSS is its own; this process only orchestrates and reports.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CASES, RESULT_MARK, type CaseArgs, type CaseId, type CaseResult } from './protocol.ts';
import { SHAPES, type Shape } from './synthetic.ts';

const HELP = `Usage: npm run bench -- [options]

  --rows N[,N...]     rows per case; 200000, 2e5, 200k, 1m, 1_000_000 (default 200k)
  --shape S[,S...]    flat, wide (default flat,wide)
  --cases X[,X...]    a pipeline-append, b pipeline-merge, c insert-rowwise (autocommit),
                      h insert-rowwise-txn (one transaction), d appender, e ndjson-read_json,
                      g source-only (default a,b,c,h,d,e,g)
  --sample N          rows cases c and h really insert (default 20000, c: 5000); rows/s is extrapolated
  --env KEY=VALUE     extra config for runFlight in cases a and b (repeatable), e.g. --env BATCH_ROWS=50000
  --rss-check         flat append at 500k and 5m rows; prints RSS(5m)/RSS(500k)
  --http              the HTTP-side benchmark instead (bench/http.ts): --repos 200 --delay 50
                      --jitter 0 --concurrency <GITHUB_CONCURRENCY default>
  --keep              keep the temp folders (printed) instead of removing them
  --help

Every case runs in a fresh process (node --import tsx bench/case.ts) and times only its work;
peak_rss_mb is that process's maxRSS, node + DuckDB baseline included (start_rss_mb is the RSS
before the case touches DuckDB). The readable table and ratios go to stdout, followed by one JSON
line per case; progress goes to stderr.`;

const NAME_TO_ID = Object.fromEntries(Object.entries(CASES).map(([id, name]) => [name, id])) as Record<string, CaseId>;

/** 1e6, 1000000, 1_000_000, 1m, 200k, 1.5m. */
export function parseRows(text: string): number {
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)([km]?)$/i.exec(text.trim().replaceAll('_', ''));
  const n = m ? Number(m[1]) * ({ '': 1, k: 1e3, m: 1e6 } as Record<string, number>)[m[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`--rows: ${JSON.stringify(text)} is not a whole number of rows (try 200000, 2e5, 200k, 1m)`);
  return n;
}

interface Options {
  rows: number[];
  shapes: Shape[];
  cases: CaseId[];
  sample: number;
  env: Record<string, string>;
  keep: boolean;
}

function parseArgs(
  argv: string[],
): { help: true } | { http: true; get: (name: string) => string | undefined } | { http: false; opts: Options } {
  const values = new Map<string, string[]>();
  const flags = new Set<string>();
  const FLAGS = new Set(['rss-check', 'http', 'keep', 'help']);
  const VALUES = new Set(['rows', 'shape', 'cases', 'sample', 'env', 'repos', 'delay', 'jitter', 'concurrency']);
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

  const rss = flags.has('rss-check');
  const rows = list('rows', rss ? '500k,5m' : '200k').map(parseRows);
  const shapes = list('shape', rss ? 'flat' : 'flat,wide').map((s) => {
    if (!SHAPES.includes(s as Shape))
      throw new Error(`--shape: ${JSON.stringify(s)} is not one of ${SHAPES.join(', ')}`);
    return s as Shape;
  });
  const cases = list('cases', rss ? 'a' : 'a,b,c,h,d,e,g').map((c) => {
    const id = c in CASES ? (c as CaseId) : NAME_TO_ID[c];
    if (!id)
      throw new Error(
        `--cases: ${JSON.stringify(c)} is not one of ${Object.entries(CASES)
          .map(([k, v]) => `${k} (${v})`)
          .join(', ')}`,
      );
    return id;
  });
  const sample = parseRows(get('sample') ?? '20000');
  const env: Record<string, string> = {};
  for (const kv of values.get('env') ?? []) {
    const eq = kv.indexOf('=');
    if (eq < 1) throw new Error(`--env: ${JSON.stringify(kv)} is not KEY=VALUE`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return { http: false, opts: { rows, shapes, cases: [...new Set(cases)], sample, env, keep: flags.has('keep') } };
}

// ─── Running cases ──────────────────────────────────────────────────────────────────────────────

const CASE_FILE = fileURLToPath(new URL('./case.ts', import.meta.url));
const TSX = import.meta.resolve('tsx');

function runCase(args: CaseArgs): Promise<CaseResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, CASE_FILE, JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
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

function table(results: CaseResult[]): string {
  const head = ['shape', 'rows', 'case', 'seconds', 'rows/s', 'peak RSS MB', 'start RSS MB'];
  const body = results.map((r) => [
    r.shape,
    r.requested_rows ? `${fmtInt(r.rows)} of ${fmtInt(r.requested_rows)}` : fmtInt(r.rows),
    r.case,
    r.seconds.toFixed(3),
    fmtInt(r.rows_per_s),
    r.peak_rss_mb.toFixed(0),
    r.start_rss_mb.toFixed(0),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const right = new Set([1, 3, 4, 5, 6]);
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
    ...(notes.size ? ['', 'Notes:', ...notes.values()] : []),
  ].join('\n');
}

function ratios(results: CaseResult[]): string[] {
  const find = (name: string, shape: Shape, rows: number) =>
    results.find((r) => r.case === name && r.shape === shape && (r.requested_rows ?? r.rows) === rows);
  const out: string[] = [];
  const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const groups = [
    ...new Map(
      results.map((r) => [`${r.shape}/${r.requested_rows ?? r.rows}`, [r.shape, r.requested_rows ?? r.rows] as const]),
    ).values(),
  ];
  for (const [shape, rows] of groups) {
    const [a, b, c, d] = (['pipeline-append', 'pipeline-merge', 'insert-rowwise', 'appender'] as const).map((n) =>
      find(n, shape, rows),
    );
    const where = shape === 'flat' && rows === 1_000_000 ? '' : ' (the target is set for flat, 1m rows)';
    const e = find('ndjson-read_json', shape, rows);
    if (a && d)
      out.push(
        `${shape} ${fmtRows(rows)}: append vs Appender throughput (a/d)   ${(a.rows_per_s / d.rows_per_s).toFixed(2)}x   target >= 1.0: ${verdict(a.rows_per_s >= d.rows_per_s)}${where}`,
      );
    if (a && c)
      out.push(
        `${shape} ${fmtRows(rows)}: append vs row-wise INSERT (a/c)      ${(a.rows_per_s / c.rows_per_s).toFixed(0)}x   target >= 200: ${verdict(a.rows_per_s / c.rows_per_s >= 200)}${where}`,
      );
    const h = find('insert-rowwise-txn', shape, rows);
    if (a && h)
      out.push(
        `${shape} ${fmtRows(rows)}: append vs row-wise INSERT in one transaction (a/h)  ${(a.rows_per_s / h.rows_per_s).toFixed(0)}x   (no target; a stronger baseline than c)`,
      );
    if (a && b)
      out.push(
        `${shape} ${fmtRows(rows)}: merge time vs append time (b/a)      ${(b.seconds / a.seconds).toFixed(2)}x   target <= 2.5: ${verdict(b.seconds / a.seconds <= 2.5)}${where}`,
      );
    if (a && e)
      out.push(
        `${shape} ${fmtRows(rows)}: append vs NDJSON+read_json (a/e)     ${(a.rows_per_s / e.rows_per_s).toFixed(2)}x   (no target)`,
      );
  }
  for (const shape of new Set(results.map((r) => r.shape))) {
    const appends = results
      .filter((r) => r.case === 'pipeline-append' && r.shape === shape)
      .sort((x, y) => x.rows - y.rows);
    const small = appends.find((r) => r.rows === 500_000),
      large = appends.find((r) => r.rows === 5_000_000);
    if (small && large) {
      const ratio = large.peak_rss_mb / small.peak_rss_mb;
      out.push(
        `${shape}: peak RSS append 5m / 500k   ${large.peak_rss_mb.toFixed(0)} / ${small.peak_rss_mb.toFixed(0)} MB = ${ratio.toFixed(2)}x   target <= 1.5: ${verdict(ratio <= 1.5)}${shape === 'flat' ? '' : ' (the target is set for flat)'}`,
      );
    } else if (appends.length >= 2) {
      const [lo, hi] = [appends[0]!, appends.at(-1)!];
      out.push(
        `${shape}: peak RSS append ${fmtRows(hi.rows)} / ${fmtRows(lo.rows)}   ${hi.peak_rss_mb.toFixed(0)} / ${lo.peak_rss_mb.toFixed(0)} MB = ${(hi.peak_rss_mb / lo.peak_rss_mb).toFixed(2)}x   (the target compares 5m with 500k)`,
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
  return [
    `flight-dlt-ingest bench, ${new Date().toISOString()}`,
    `node ${process.version}, @duckdb/node-api ${duckdb}, ${cpus().length} CPU(s) (${cpus()[0]?.model.trim() ?? 'unknown'}), flight.ts sha256 ${createHash('sha256').update(flight).digest('hex').slice(0, 12)}`,
    `command: npm run bench -- ${process.argv.slice(2).join(' ')}`.trimEnd(),
    `rows ${opts.rows.map(fmtRows).join(',')}; shapes ${opts.shapes.join(',')}; cases ${opts.cases.join(',')}; case h sample ${fmtInt(opts.sample)}, case c ${fmtInt(Math.ceil(opts.sample / 4))}${
      Object.keys(opts.env).length
        ? `; runFlight env ${Object.entries(opts.env)
            .map(([k, v]) => `${k}=${v}`)
            .join(' ')}`
        : ''
    }`,
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
  const root = mkdtempSync(join(tmpdir(), 'flight-bench-'));
  const results: CaseResult[] = [];
  const failures: string[] = [];
  const total = opts.rows.length * opts.shapes.length * opts.cases.length;
  let n = 0;
  const interrupted = () => {
    if (!opts.keep) rmSync(root, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  try {
    for (const rows of opts.rows)
      for (const shape of opts.shapes)
        for (const id of opts.cases) {
          const dir = join(root, `${fmtRows(rows)}-${shape}-${id}`);
          mkdirSync(dir);
          process.stderr.write(`[${++n}/${total}] ${shape} ${fmtRows(rows)} ${CASES[id]} ... `);
          try {
            const r = await runCase({ case: id, shape, rows, dir, sample: opts.sample, env: opts.env });
            results.push(r);
            process.stderr.write(
              `${r.seconds.toFixed(2)} s, ${fmtInt(r.rows_per_s)} rows/s, peak RSS ${r.peak_rss_mb.toFixed(0)} MB\n`,
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

  if (results.length) {
    console.log(table(results));
    const r = ratios(results);
    if (r.length) console.log('\nRatios (issue targets):\n' + r.map((l) => `  ${l}`).join('\n'));
    console.log('');
    for (const x of results) {
      const { case: name, shape, rows, seconds, rows_per_s, peak_rss_mb } = x;
      console.log(
        JSON.stringify({
          case: name,
          shape,
          rows,
          seconds: +seconds.toFixed(4),
          rows_per_s: Math.round(rows_per_s),
          peak_rss_mb: +peak_rss_mb.toFixed(1),
        }),
      );
    }
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
