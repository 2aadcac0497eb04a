/**
 * One benchmark case, run in its own process so its peak RSS is its own:
 *
 *   node --import tsx bench/case.ts '<json CaseArgs>'
 *
 * Prints one line `@bench-result {...}` on stdout. Only the work is timed (not process start, not
 * module loading, not the checks afterwards). Every timed path opens the destination, loads, and
 * closes it (the close checkpoints), as runFlight does.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DuckDBInstance,
  DuckDBTimestampTZValue,
  type DuckDBAppender,
  type DuckDBPreparedStatement,
} from '@duckdb/node-api';
import { runFlight } from '../flight.ts';
import { CASES, RESULT_MARK, type CaseArgs, type CaseResult } from './protocol.ts';
import { columns, mergedCount, mergeRows, PRIMARY_KEY, rows, SQL_TYPE, type Column, type Row } from './synthetic.ts';

const DB = 'bench';
const SCHEMA = 'bench';
const TABLE = 'rows';
const q = (name: string) => `"${name.replaceAll('"', '""')}"`;
const FULL_TABLE = `${q(DB)}.${q(SCHEMA)}.${q(TABLE)}`;
const maxRssMb = () => process.resourceUsage().maxRSS / 1024;

function flightEnv(args: CaseArgs, disposition: 'append' | 'merge'): Record<string, string> {
  return {
    LOCAL_DATA_DIR: args.dir,
    DESTINATION_DATABASE: DB,
    DATASET_NAME: SCHEMA,
    TABLE_NAME: TABLE,
    WRITE_DISPOSITION: disposition,
    PRIMARY_KEY: PRIMARY_KEY[args.shape],
    ...args.env,
  };
}

/** Per runFlight step, from its progress lines (`@flight-run <step> running|ok ...`): seconds, and the RSS when it ended. */
type Phases = Record<string, { seconds: number; rssMb: number }>;

async function flight(
  args: CaseArgs,
  disposition: 'append' | 'merge',
  source: () => Iterable<Row>,
): Promise<{ loaded: number; phases: Phases }> {
  const started = new Map<string, number>();
  const phases: Phases = {};
  const log = (line: string) => {
    const m = /^@flight-run (\S+) (running|ok)\b/.exec(line);
    if (!m) return;
    const [step, status] = [m[1]!, m[2]!];
    if (status === 'running' && !started.has(step)) started.set(step, performance.now());
    if (status === 'ok' && started.has(step))
      phases[step] = {
        seconds: (performance.now() - started.get(step)!) / 1000,
        rssMb: process.memoryUsage.rss() / 2 ** 20,
      };
  };
  const summary = await runFlight({ env: flightEnv(args, disposition), source, log });
  if (summary.status !== 'succeeded')
    throw new Error(`runFlight ${disposition} failed (exit ${summary.exitCode}): ${summary.error}`);
  return { loaded: summary.rowsLoaded, phases };
}
const phaseNote = (p: Phases) =>
  Object.entries(p)
    .map(([step, s]) => `${step} ${s.seconds.toFixed(2)} s (RSS after ${s.rssMb.toFixed(0)} MB)`)
    .join(', ');

/** Reads one number from the case's database (not timed). */
async function scalar(dir: string, sql: string): Promise<number> {
  const instance = await DuckDBInstance.create(join(dir, `${DB}.duckdb`));
  try {
    const conn = await instance.connect();
    const value = (await conn.runAndReadAll(sql)).getRows()[0]?.[0];
    conn.closeSync();
    return Number(value);
  } finally {
    instance.closeSync();
  }
}
const countRows = (dir: string) => scalar(dir, `SELECT count(*) FROM ${FULL_TABLE}`);

/**
 * Checks the table holds exactly the `live` rows' values: the sums of one int column (so updates
 * took effect) and of one timestamp column's epoch seconds (so timestamps were read as instants),
 * and, for wide rows loaded by the pipeline, the number of `tags` items in the child table.
 */
async function checkContents(args: CaseArgs, live: Iterable<Row>, childTable = true): Promise<void> {
  const [int, ts] = args.shape === 'flat' ? ['stars', 'pushed_at'] : ['n_3', 't_1'];
  let ints = 0,
    seconds = 0,
    tags = 0;
  for (const row of live) {
    ints += (row[int] as number | null) ?? 0;
    seconds += row[ts] ? Date.parse(row[ts] as string) / 1000 : 0;
    if (args.shape === 'wide') tags += (row.tags as unknown[]).length;
  }
  expect(`sum(${int})`, await scalar(args.dir, `SELECT coalesce(sum(${q(int)}), 0) FROM ${FULL_TABLE}`), ints);
  expect(
    `sum(epoch(${ts}))`,
    await scalar(args.dir, `SELECT coalesce(sum(epoch(${q(ts)})), 0) FROM ${FULL_TABLE}`),
    seconds,
  );
  if (args.shape === 'wide' && childTable)
    expect(
      'rows in child table rows__tags',
      await scalar(args.dir, `SELECT count(*) FROM ${q(DB)}.${q(SCHEMA)}.${q(`${TABLE}__tags`)}`),
      tags,
    );
}
function* filter<T>(items: Iterable<T>, keep: (item: T, index: number) => boolean): Generator<T> {
  let i = 0;
  for (const item of items) if (keep(item, i++)) yield item;
}

function expect(what: string, got: number, want: number): void {
  if (got !== want) throw new Error(`${what}: expected ${want}, got ${got}`);
}

/** Opens the case's database with the baseline table (same columns and types as the pipeline's). */
async function openBaseline(args: CaseArgs) {
  const instance = await DuckDBInstance.create(join(args.dir, `${DB}.duckdb`));
  const conn = await instance.connect();
  const cols = columns(args.shape);
  await conn.run(`CREATE SCHEMA IF NOT EXISTS ${q(DB)}.${q(SCHEMA)}`);
  await conn.run(`CREATE TABLE ${FULL_TABLE} (${cols.map((c) => `${q(c.name)} ${SQL_TYPE[c.type]}`).join(', ')})`);
  const close = () => {
    conn.closeSync();
    instance.closeSync();
  };
  return { conn, cols, close };
}

// ─── The cases ──────────────────────────────────────────────────────────────────────────────────

type Timed = { seconds: number; rows: number; note?: string };
const now = () => performance.now() / 1000;

async function pipelineAppend(args: CaseArgs): Promise<Timed> {
  const t0 = now();
  const { loaded, phases } = await flight(args, 'append', () => rows(args.shape, args.rows));
  const seconds = now() - t0;
  expect('rows loaded', loaded, args.rows);
  expect('rows in table', await countRows(args.dir), args.rows);
  await checkContents(args, rows(args.shape, args.rows));
  return { seconds, rows: args.rows, note: `runFlight steps: ${phaseNote(phases)}` };
}

/** Not timed: fills the table for case b. Merge, so child tables carry _dlt_root_id as in a merge pipeline. */
async function prefill(args: CaseArgs): Promise<Timed> {
  const t0 = now();
  await flight(args, 'merge', () => rows(args.shape, args.rows));
  expect('prefilled rows', await countRows(args.dir), args.rows);
  return { seconds: now() - t0, rows: args.rows };
}

async function pipelineMerge(args: CaseArgs): Promise<Timed> {
  // the prefill runs in a process of its own, so this process's peak RSS is the merge's
  const child = spawnSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), JSON.stringify({ ...args, case: 'prefill' })],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  if (child.status !== 0) throw new Error(`prefill failed (exit ${child.status ?? child.signal})`);
  const t0 = now();
  const { phases } = await flight(args, 'merge', () => mergeRows(args.shape, args.rows));
  const seconds = now() - t0;
  const want = mergedCount(args.rows);
  expect('rows after merge', await countRows(args.dir), want);
  const key = q(PRIMARY_KEY[args.shape]);
  expect('distinct keys after merge', await scalar(args.dir, `SELECT count(DISTINCT ${key}) FROM ${FULL_TABLE}`), want);
  // the merge replaced the even ids' rows (and their child rows); the odd ids keep the prefill's
  const untouched = filter(rows(args.shape, args.rows), (_row, i) => i % 2 === 1);
  await checkContents(
    args,
    (function* () {
      yield* untouched;
      yield* mergeRows(args.shape, args.rows);
    })(),
  );
  return {
    seconds,
    rows: args.rows,
    note: `table prefilled with ${args.rows} rows first (untimed, another process); merge of ${args.rows} (half new) ends with ${want}; runFlight steps: ${phaseNote(phases)}`,
  };
}

/** Binds one value of a column to a prepared statement parameter. */
function bindValue(stmt: DuckDBPreparedStatement, i: number, col: Column, v: unknown): void {
  if (v === null || v === undefined) return stmt.bindNull(i);
  switch (col.type) {
    case 'bigint':
      return stmt.bindBigInt(i, BigInt(v as number));
    case 'double':
      return stmt.bindDouble(i, v as number);
    case 'bool':
      return stmt.bindBoolean(i, v as boolean);
    // Parsed in JS and bound as TIMESTAMPTZ: binding the ISO text instead measured 1.5x slower here
    // (a VARCHAR value for a TIMESTAMPTZ parameter), so this is the stronger baseline.
    case 'timestamp':
      return stmt.bindTimestampTZ(i, new DuckDBTimestampTZValue(BigInt(Date.parse(v as string)) * 1000n));
    case 'text':
    case 'json':
      return stmt.bindVarchar(i, v as string);
  }
}

/**
 * Row-wise prepared INSERT: one execution per row. `transaction` false is the loop the seed warns
 * against, each INSERT its own autocommit transaction; true wraps the sample in one transaction
 * (a stronger baseline, reported too).
 */
async function insertRowwise(args: CaseArgs, transaction: boolean): Promise<Timed> {
  const sample = Math.min(args.rows, transaction ? args.sample : Math.ceil(args.sample / 4)); // autocommit is slow: a smaller sample
  const t0 = now();
  const { conn, cols, close } = await openBaseline(args);
  const stmt = await conn.prepare(`INSERT INTO ${FULL_TABLE} VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`);
  if (transaction) await conn.run('BEGIN TRANSACTION');
  for (const row of rows(args.shape, sample)) {
    for (let i = 0; i < cols.length; i++) bindValue(stmt, i + 1, cols[i]!, cols[i]!.get(row));
    await stmt.run();
  }
  if (transaction) await conn.run('COMMIT');
  stmt.destroySync();
  close();
  const seconds = now() - t0;
  expect('rows in table', await countRows(args.dir), sample);
  await checkContents(args, rows(args.shape, sample), false);
  const how = transaction ? 'all in one transaction' : 'each its own (autocommit) transaction';
  return {
    seconds,
    rows: sample,
    note: `prepared INSERT, one row per execution, typed binds, ${how}; timed on a sample`,
  };
}

/** Appends one value, the way the Appender's documentation shows: one typed call per value. */
function appendValue(app: DuckDBAppender, col: Column, v: unknown): void {
  if (v === null || v === undefined) return app.appendNull();
  switch (col.type) {
    case 'bigint':
      return app.appendBigInt(BigInt(v as number));
    case 'double':
      return app.appendDouble(v as number);
    case 'bool':
      return app.appendBoolean(v as boolean);
    // A timestamp goes in as its ISO text and DuckDB casts it to TIMESTAMPTZ: measured 1.4x faster
    // (flat, 200k rows) than Date.parse + appendTimestampTZ, so the stronger baseline.
    case 'timestamp':
    case 'text':
    case 'json':
      return app.appendVarchar(v as string);
  }
}

async function appender(args: CaseArgs): Promise<Timed> {
  const t0 = now();
  const { conn, cols, close } = await openBaseline(args);
  const app = await conn.createAppender(TABLE, SCHEMA, DB);
  for (const row of rows(args.shape, args.rows)) {
    for (const col of cols) appendValue(app, col, col.get(row));
    app.endRow();
  }
  app.flushSync();
  app.closeSync();
  close();
  const seconds = now() - t0;
  expect('rows in table', await countRows(args.dir), args.rows);
  await checkContents(args, rows(args.shape, args.rows), false);
  const note = `one append call per value; timestamps appended as ISO text (DuckDB casts)${args.shape === 'wide' ? '; meta flattened to meta__* columns, tags appended as JSON text (no child table)' : ''}`;
  return { seconds, rows: args.rows, note };
}

/** read_json's column spec: the source's own (nested) shape, typed, so nothing is sniffed. */
function jsonColumns(cols: Column[]): { spec: string; select: string } {
  const spec: string[] = [];
  const select: string[] = [];
  const structs = new Map<string, string[]>();
  for (const c of cols) {
    const [parent, child] = c.name.split('__') as [string, string | undefined];
    if (child !== undefined) {
      if (!structs.has(parent)) structs.set(parent, []);
      structs.get(parent)!.push(`${q(child)} ${SQL_TYPE[c.type]}`);
      select.push(`${q(parent)}.${q(child)} AS ${q(c.name)}`);
    } else if (c.type === 'json') {
      spec.push(`${q(c.name)}: 'JSON'`);
      select.push(`CAST(${q(c.name)} AS VARCHAR) AS ${q(c.name)}`);
    } else {
      spec.push(`${q(c.name)}: '${SQL_TYPE[c.type]}'`);
      select.push(q(c.name));
    }
  }
  for (const [parent, fields] of structs)
    spec.push(`${q(parent)}: 'STRUCT(${fields.join(', ').replaceAll("'", "''")})'`);
  return { spec: `{${spec.join(', ')}}`, select: select.join(', ') };
}

async function ndjson(args: CaseArgs): Promise<Timed> {
  const file = join(args.dir, 'rows.ndjson');
  const t0 = now();
  const fd = openSync(file, 'w');
  let chunk: string[] = [];
  for (const row of rows(args.shape, args.rows)) {
    chunk.push(JSON.stringify(row));
    if (chunk.length === 8192) {
      writeSync(fd, chunk.join('\n') + '\n');
      chunk = [];
    }
  }
  if (chunk.length) writeSync(fd, chunk.join('\n') + '\n');
  closeSync(fd);
  const { conn, cols, close } = await openBaseline(args);
  const { spec, select } = jsonColumns(cols);
  await conn.run(
    `INSERT INTO ${FULL_TABLE} SELECT ${select} FROM read_json($file, format = 'newline_delimited', columns = ${spec})`,
    { file },
  );
  close();
  const seconds = now() - t0;
  rmSync(file);
  expect('rows in table', await countRows(args.dir), args.rows);
  await checkContents(args, rows(args.shape, args.rows), false);
  const note = `time includes writing the NDJSON file; read_json with declared column types${args.shape === 'wide' ? '; meta read as STRUCT and flattened, tags as JSON text (no child table)' : ''}`;
  return { seconds, rows: args.rows, note };
}

async function sourceOnly(args: CaseArgs): Promise<Timed> {
  const t0 = now();
  let n = 0;
  for (const row of rows(args.shape, args.rows)) if (row) n++;
  const seconds = now() - t0;
  expect('rows generated', n, args.rows);
  return { seconds, rows: n, note: 'only iterates the synthetic source: the floor every case pays' };
}

const RUN: Record<CaseArgs['case'], (args: CaseArgs) => Promise<Timed>> = {
  a: pipelineAppend,
  b: pipelineMerge,
  c: (args) => insertRowwise(args, false),
  h: (args) => insertRowwise(args, true),
  d: appender,
  e: ndjson,
  g: sourceOnly,
  prefill,
};

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '') as CaseArgs;
  const start = maxRssMb();
  const run = RUN[args.case];
  if (!run) throw new Error(`unknown case ${args.case}`);
  const timed = await run(args);
  if (args.case === 'prefill') return;
  const result: CaseResult = {
    case: CASES[args.case],
    shape: args.shape,
    rows: timed.rows,
    seconds: timed.seconds,
    rows_per_s: timed.rows / timed.seconds,
    peak_rss_mb: maxRssMb(),
    start_rss_mb: start,
    ...(timed.rows !== args.rows ? { requested_rows: args.rows } : {}),
    ...(timed.note ? { note: timed.note } : {}),
  };
  process.stdout.write(RESULT_MARK + JSON.stringify(result) + '\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: unknown) => {
    process.stderr.write(`bench case failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  });
}
