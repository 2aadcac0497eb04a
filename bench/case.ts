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
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DuckDBInstance,
  DuckDBTimestampTZValue,
  listValue,
  type DuckDBConnection,
  type DuckDBAppender,
  type DuckDBPreparedStatement,
} from '@duckdb/node-api';
import {
  autoMemoryMb,
  Extractor,
  insertFileSql,
  ParquetWriter,
  parseConfig,
  planFor,
  runFlight,
  type Row as FlightRow,
} from '../flight.ts';
import { CASES, RESULT_MARK, type CaseArgs, type CaseResult } from './protocol.ts';
import {
  asyncRows,
  checks,
  columns,
  mergedCount,
  mergeRows,
  parseShape,
  primaryKey,
  rows,
  SQL_TYPE,
  type Column,
  type Row,
} from './synthetic.ts';

const DB = 'bench';
const SCHEMA = 'bench';
const TABLE = 'rows';
const q = (name: string) => `"${name.replaceAll('"', '""')}"`;
const FULL_TABLE = `${q(DB)}.${q(SCHEMA)}.${q(TABLE)}`;
const maxRssMb = () => process.resourceUsage().maxRSS / 1024;

/** Peaks of the main thread's JS memory, sampled on a timer and by the row loops that never yield. */
const js = { heap: 0, buffers: 0 };
function sampleMemory(): void {
  const m = process.memoryUsage();
  js.heap = Math.max(js.heap, m.heapUsed / 2 ** 20);
  js.buffers = Math.max(js.buffers, m.arrayBuffers / 2 ** 20);
}

/** The case's rows, from a generator or an async generator as the bench was told. */
function source(args: CaseArgs, make: () => Iterable<Row> = () => rows(args.shape, args.rows)) {
  if (args.source === 'sync') return make();
  return (async function* () {
    for (const row of make()) yield row;
  })();
}
/**
 * Calls `each` per row of the case's source, sync or async. A sync loop never lets the sampling
 * timer run, so it samples memory itself every 65536 rows (a sample costs about 0.1-0.5 ms).
 */
async function forEachRow(args: CaseArgs, each: (row: Row) => void, count = args.rows): Promise<number> {
  let n = 0;
  if (args.source === 'sync')
    for (const row of rows(args.shape, count)) {
      each(row);
      if (++n % 65536 === 0) sampleMemory();
    }
  else
    for await (const row of asyncRows(args.shape, count)) {
      each(row);
      n++;
    }
  return n;
}

function flightEnv(args: CaseArgs, disposition: 'append' | 'merge'): Record<string, string> {
  return {
    LOCAL_DATA_DIR: args.dir,
    DESTINATION_DATABASE: DB,
    DATASET_NAME: SCHEMA,
    TABLE_NAME: TABLE,
    WRITE_DISPOSITION: disposition,
    PRIMARY_KEY: primaryKey(args.shape),
    ...args.env,
  };
}

/** Per runFlight step, from its progress lines (`@flight-run <step> running|ok ...`): seconds, and the RSS when it ended. */
type Phases = Record<string, { seconds: number; rssMb: number }>;

async function flight(
  args: CaseArgs,
  disposition: 'append' | 'merge',
  rowsOf: () => Iterable<Row> | AsyncIterable<Row>,
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
  const summary = await runFlight({ env: flightEnv(args, disposition), source: rowsOf, log });
  if (summary.status !== 'succeeded')
    throw new Error(`runFlight ${disposition} failed (exit ${summary.exitCode}): ${summary.error}`);
  return { loaded: summary.rowsLoaded, phases };
}
const phaseNote = (p: Phases) =>
  Object.entries(p)
    .map(([step, s]) => `${step} ${s.seconds.toFixed(2)} s (RSS after ${s.rssMb.toFixed(0)} MB)`)
    .join(', ');

/** The first value of a query's first row, as a number DuckDB counted or summed. */
async function scalarOn(conn: DuckDBConnection, sql: string): Promise<bigint> {
  return BigInt((await conn.runAndReadAll(sql)).getRows()[0]?.[0] as number | bigint);
}
/** Reads one number from the case's database (not timed). */
async function scalar(dir: string, sql: string): Promise<bigint> {
  const instance = await DuckDBInstance.create(join(dir, `${DB}.duckdb`));
  try {
    const conn = await instance.connect();
    const value = await scalarOn(conn, sql);
    conn.closeSync();
    return value;
  } finally {
    instance.closeSync();
  }
}
/** The root table's column names. */
async function columnNames(dir: string): Promise<string[]> {
  const instance = await DuckDBInstance.create(join(dir, `${DB}.duckdb`));
  try {
    const conn = await instance.connect();
    const sql = `SELECT column_name FROM information_schema.columns WHERE table_schema = $s AND table_name = $t`;
    const rows = (await conn.runAndReadAll(sql, { s: SCHEMA, t: TABLE })).getRows();
    conn.closeSync();
    return rows.map((r) => String(r[0]));
  } finally {
    instance.closeSync();
  }
}
const countRows = (dir: string) => scalar(dir, `SELECT count(*) FROM ${FULL_TABLE}`);

/**
 * Checks the table holds exactly the `live` rows' values (bench/synthetic.ts, `checks`): sums of
 * an int and a timestamp column (so updates took effect and timestamps were read as instants),
 * null counts, the nested object's columns, every value of sparse and wide rows, and for rows
 * loaded by the pipeline the child table's rows.
 */
async function checkContents(args: CaseArgs, live: Iterable<Row>, childTable = true): Promise<void> {
  const list = checks(args.shape, childTable);
  const want = list.map(() => 0n);
  for (const row of live) for (let i = 0; i < list.length; i++) want[i] = list[i]!.fold(want[i]!, row);
  for (let i = 0; i < list.length; i++) {
    const c = list[i]!;
    const table = c.child ? `${q(DB)}.${q(SCHEMA)}.${q(`${TABLE}__tags`)}` : FULL_TABLE;
    let sql = c.sql;
    if (c.columns) {
      const have = new Set((await columnNames(args.dir)).map(String));
      sql = `list_sum([${c.columns
        .filter((name) => have.has(name))
        .map((name) => `count(${q(name)})`)
        .join(', ')}])`;
    }
    expect(c.what, await scalar(args.dir, `SELECT ${sql} FROM ${table}`), want[i]!);
  }
}
function* filter<T>(items: Iterable<T>, keep: (item: T, index: number) => boolean): Generator<T> {
  let i = 0;
  for (const item of items) if (keep(item, i++)) yield item;
}

function expect(what: string, got: bigint | number, want: bigint | number): void {
  if (BigInt(got) !== BigInt(want)) throw new Error(`${what}: expected ${want}, got ${got}`);
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

type Timed = { seconds: number; cpuS: number; rows: number; note?: string };
/** Times `work`: wall and the process's CPU (user + sys, every thread), with memory sampled meanwhile. */
async function timed(work: () => Promise<{ rows: number; note?: string }>): Promise<Timed> {
  const timer = setInterval(sampleMemory, 100);
  const [t0, cpu0] = [performance.now(), process.cpuUsage()];
  try {
    const { rows: n, note } = await work();
    const cpu = process.cpuUsage(cpu0);
    sampleMemory();
    return { seconds: (performance.now() - t0) / 1000, cpuS: (cpu.user + cpu.system) / 1e6, rows: n, note };
  } finally {
    clearInterval(timer);
  }
}

async function pipelineAppend(args: CaseArgs): Promise<Timed> {
  let phases: Phases = {};
  const t = await timed(async () => {
    const result = await flight(args, 'append', () => source(args));
    expect('rows loaded', result.loaded, args.rows);
    phases = result.phases;
    return { rows: args.rows };
  });
  expect('rows in table', await countRows(args.dir), args.rows);
  await checkContents(args, rows(args.shape, args.rows));
  return { ...t, note: `runFlight steps: ${phaseNote(phases)}` };
}

/** Not timed: fills the table for case b. Merge, so child tables carry _dlt_root_id as in a merge pipeline. */
async function prefill(args: CaseArgs): Promise<Timed> {
  const t = await timed(async () => {
    await flight(args, 'merge', () => rows(args.shape, args.rows));
    return { rows: args.rows };
  });
  expect('prefilled rows', await countRows(args.dir), args.rows);
  return t;
}

/** Runs untimed set-up (another case of this file) in a process of its own, so its memory doesn't count here. */
function inChild(args: CaseArgs, kind: 'prefill' | 'files'): void {
  const child = spawnSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), JSON.stringify({ ...args, case: kind })],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  if (child.status !== 0) throw new Error(`${kind} failed (exit ${child.status ?? child.signal})`);
}

async function pipelineMerge(args: CaseArgs): Promise<Timed> {
  inChild(args, 'prefill'); // this process's peak RSS is the merge's
  let phases: Phases = {};
  const t = await timed(async () => {
    phases = (await flight(args, 'merge', () => source(args, () => mergeRows(args.shape, args.rows)))).phases;
    return { rows: args.rows };
  });
  const want = mergedCount(args.rows);
  expect('rows after merge', await countRows(args.dir), want);
  const key = q(primaryKey(args.shape));
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
    ...t,
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
  const t = await timed(async () => {
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
    return { rows: sample };
  });
  expect('rows in table', await countRows(args.dir), sample);
  await checkContents(args, rows(args.shape, sample), false);
  const how = transaction ? 'all in one transaction' : 'each its own (autocommit) transaction';
  return { ...t, note: `prepared INSERT, one row per execution, typed binds, ${how}; timed on a sample` };
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
  const t = await timed(async () => {
    const { conn, cols, close } = await openBaseline(args);
    const app = await conn.createAppender(TABLE, SCHEMA, DB);
    await forEachRow(args, (row) => {
      for (const col of cols) appendValue(app, col, col.get(row));
      app.endRow();
    });
    app.flushSync();
    app.closeSync();
    close();
    return { rows: args.rows };
  });
  expect('rows in table', await countRows(args.dir), args.rows);
  await checkContents(args, rows(args.shape, args.rows), false);
  const nested = parseShape(args.shape).kind === 'nested';
  const note = `one append call per value; timestamps appended as ISO text (DuckDB casts)${nested ? '; tags appended as JSON text (no child table)' : ''}`;
  return { ...t, note };
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
  const t = await timed(async () => {
    const fd = openSync(file, 'w');
    let chunk: string[] = [];
    await forEachRow(args, (row) => {
      chunk.push(JSON.stringify(row));
      if (chunk.length === 8192) {
        writeSync(fd, chunk.join('\n') + '\n');
        chunk = [];
      }
    });
    if (chunk.length) writeSync(fd, chunk.join('\n') + '\n');
    closeSync(fd);
    const { conn, cols, close } = await openBaseline(args);
    const { spec, select } = jsonColumns(cols);
    await conn.run(
      `INSERT INTO ${FULL_TABLE} SELECT ${select} FROM read_json($file, format = 'newline_delimited', columns = ${spec})`,
      { file },
    );
    close();
    return { rows: args.rows };
  });
  rmSync(file);
  expect('rows in table', await countRows(args.dir), args.rows);
  await checkContents(args, rows(args.shape, args.rows), false);
  const nested = parseShape(args.shape).kind === 'nested';
  const note = `time includes writing the NDJSON file; read_json with declared column types${nested ? '; meta read as STRUCT and flattened, tags as JSON text (no child table)' : ''}`;
  return { ...t, note };
}

async function sourceOnly(args: CaseArgs): Promise<Timed> {
  const t = await timed(async () => {
    const n = await forEachRow(args, () => {});
    expect('rows generated', n, args.rows);
    return { rows: n };
  });
  return { ...t, note: 'only iterates the synthetic source: the floor every case pays' };
}

/**
 * The pipeline without DuckDB: rows normalized into batches and written as Parquet loader files
 * (runFlight's extract step, append, into an empty schema), the files left in `dir`/files.
 */
const LOAD_ID = '1700000000.000000';
async function extractToFiles(args: CaseArgs, dir: string, writer = new ParquetWriter()): Promise<string[]> {
  const parsed = parseConfig(flightEnv(args, 'append'));
  if ('problems' in parsed) throw new Error(parsed.problems.join('; '));
  const files: string[] = [];
  try {
    const target = { plan: planFor(parsed.config) };
    const extractor = new Extractor(
      new Map(),
      {
        loadId: LOAD_ID,
        dir,
        batchRows: parsed.config.BATCH_ROWS,
        foreign: new Set(),
        onFile: (_table, path) => files.push(path),
      },
      writer,
    );
    let n = 0;
    const turn = async () => {
      await new Promise(setImmediate);
      await extractor.keepUp();
    };
    if (args.source === 'sync')
      for (const row of rows(args.shape, args.rows)) {
        extractor.add(row as FlightRow, target);
        if (++n % 1024 === 0 || extractor.flushed) await turn();
      }
    else
      for await (const row of asyncRows(args.shape, args.rows)) {
        extractor.add(row as FlightRow, target);
        if (++n % 1024 === 0 || extractor.flushed) await turn();
      }
    await extractor.finish();
  } finally {
    await writer.close();
  }
  return files;
}

async function extractOnly(args: CaseArgs): Promise<Timed> {
  const dir = join(args.dir, 'files');
  mkdirSync(dir);
  let count = 0;
  const t = await timed(async () => {
    count = (await extractToFiles(args, dir)).length;
    return { rows: args.rows };
  });
  expect('files written', readdirSync(dir).length, count);
  return { ...t, note: `the extract step alone (normalize, Parquet files on the worker), no DuckDB: ${count} file(s)` };
}

/** Not timed: the pipeline's loader files for case r, left in `dir`/files. */
async function files(args: CaseArgs): Promise<Timed> {
  const dir = join(args.dir, 'files');
  mkdirSync(dir);
  return timed(async () => ({ rows: (await extractToFiles(args, dir)).length }));
}

/**
 * DuckDB alone: the pipeline's loader files (made first, untimed, in another process so this one's peak RSS is
 * DuckDB's) loaded one by one in one transaction, as the loader does: one thread, the memory limit
 * DUCKDB_MEMORY_LIMIT=auto would set for the table's columns. Each table's files (a child table's too) go into a
 * table of their own.
 */
async function readParquetOnly(args: CaseArgs): Promise<Timed> {
  inChild(args, 'files');
  const dir = join(args.dir, 'files');
  const byTable = new Map<string, string[]>(); // t000.000001.parquet: table 0's second file
  for (const name of readdirSync(dir).sort()) {
    const table = name.split('.')[0]!;
    byTable.set(table, [...(byTable.get(table) ?? []), name]);
  }
  const target = (table: string) =>
    table === 't000' ? FULL_TABLE : `${q(DB)}.${q(SCHEMA)}.${q(`${TABLE}__${table}`)}`;
  let columnCount = 0;
  const t = await timed(async () => {
    const instance = await DuckDBInstance.create(join(args.dir, `${DB}.duckdb`), { threads: '1' });
    const conn = await instance.connect();
    await conn.run('BEGIN TRANSACTION');
    await conn.run(`CREATE SCHEMA ${q(DB)}.${q(SCHEMA)}`);
    for (const [table, names] of byTable) {
      const paths = listValue(names.map((name) => join(dir, name)));
      await conn.run(
        `CREATE TABLE ${target(table)} AS SELECT *${table === 't000' ? ', $load_id AS _dlt_load_id' : ''} ` +
          'FROM read_parquet($paths, union_by_name = true) LIMIT 0',
        table === 't000' ? { paths, load_id: LOAD_ID } : { paths },
      );
      columnCount += Number(await scalarOn(conn, `SELECT count(*) FROM (DESCRIBE ${target(table)})`));
    }
    const limit = args.env.DUCKDB_MEMORY_LIMIT ?? 'auto';
    await conn.run(`SET memory_limit = '${limit === 'auto' ? `${Math.round(autoMemoryMb(columnCount))}MB` : limit}'`);
    for (const [table, names] of byTable)
      for (const name of names)
        await conn.run(
          insertFileSql(target(table), table === 't000'),
          table === 't000' ? { file: join(dir, name), load_id: LOAD_ID } : { file: join(dir, name) },
        );
    await conn.run('COMMIT');
    conn.closeSync();
    instance.closeSync();
    return { rows: args.rows };
  });
  expect('rows in table', await countRows(args.dir), args.rows);
  await checkContents(args, rows(args.shape, args.rows), false);
  const fileCount = [...byTable.values()].flat().length;
  return {
    ...t,
    note: `DuckDB alone: read_parquet of the pipeline's ${fileCount} loader file(s) (${byTable.size} table(s), ${columnCount} columns), one thread, one transaction`,
  };
}

/**
 * The Parquet worker alone: the pipeline's batches, made first (untimed) as the Arrow IPC streams the worker
 * receives, written as loader files by a fresh writer (its worker's start included, as in a run).
 */
async function parquetOnly(args: CaseArgs): Promise<Timed> {
  const dir = join(args.dir, 'files');
  mkdirSync(dir);
  const batches: { path: string; ipc: Uint8Array }[] = [];
  class Capture extends ParquetWriter {
    override write(path: string, ipc: Uint8Array): Promise<void> {
      batches.push({ path, ipc });
      return Promise.resolve();
    }
  }
  await extractToFiles(args, dir, new Capture());
  const bytes = batches.reduce((n, b) => n + b.ipc.length, 0);
  const t = await timed(async () => {
    const writer = new ParquetWriter();
    try {
      await Promise.all(batches.map(({ path, ipc }) => writer.write(path, ipc)));
    } finally {
      await writer.close();
    }
    return { rows: args.rows };
  });
  expect('files written', readdirSync(dir).length, batches.length);
  return {
    ...t,
    note: `Parquet alone: ${batches.length} batch(es), ${(bytes / 2 ** 20).toFixed(0)} MiB of Arrow IPC, written by the worker`,
  };
}

const RUN: Record<CaseArgs['case'], (args: CaseArgs) => Promise<Timed>> = {
  a: pipelineAppend,
  b: pipelineMerge,
  c: (args) => insertRowwise(args, false),
  h: (args) => insertRowwise(args, true),
  d: appender,
  e: ndjson,
  g: sourceOnly,
  x: extractOnly,
  p: parquetOnly,
  r: readParquetOnly,
  prefill,
  files,
};

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '') as CaseArgs;
  const start = maxRssMb();
  const run = RUN[args.case];
  if (!run) throw new Error(`unknown case ${args.case}`);
  const t = await run(args);
  if (args.case === 'prefill' || args.case === 'files') return;
  const result: CaseResult = {
    case: CASES[args.case],
    shape: args.shape,
    rows: t.rows,
    seconds: t.seconds,
    cpu_s: t.cpuS,
    rows_per_s: t.rows / t.seconds,
    peak_rss_mb: maxRssMb(),
    start_rss_mb: start,
    js_heap_mb: js.heap,
    js_buffers_mb: js.buffers,
    ...(t.rows !== args.rows ? { requested_rows: args.rows } : {}),
    ...(t.note ? { note: t.note } : {}),
  };
  process.stdout.write(RESULT_MARK + JSON.stringify(result) + '\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: unknown) => {
    process.stderr.write(`bench case failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  });
}
