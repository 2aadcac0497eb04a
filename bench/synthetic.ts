/**
 * Deterministic synthetic sources for the benchmark: the same arguments always yield the same rows.
 *
 * Rows are produced lazily by generator functions, so a case's memory is never the source's.
 *
 * Shapes (a shape with a parameter is written `name:N`, e.g. `sparse:600`):
 * - `flat`: the demo source's six columns: repo ('owner-N/name-N', unique per id), stars, forks,
 *   open_issues (ints), default_branch (string), pushed_at (ISO-8601 string, GitHub's format).
 *   No separate id column: `repo` is the key (PRIMARY_KEY=repo for merge). No nulls.
 * - `realistic`: 12 source keys as an API returns them, yielded by an async generator: `id`
 *   (int64 beyond 2^32, the key), three low-cardinality strings (status, category, region), a
 *   unique ~60-character `title`, two doubles (amount, score), a small int `priority` with ~10%
 *   nulls, a boolean `active`, `created_at` (ISO-8601 with milliseconds), a 3-letter `currency`,
 *   and a nested object `meta` {a: int, b: string} on about half the rows (absent on the rest).
 * - `nested`: 30 fields: `id` (int key), 7 ints, 6 doubles, 6 strings, 3 booleans, 3 ISO
 *   timestamps, one nested object `meta` {source, score, rank} (flattened to meta__source /
 *   meta__score / meta__rank) and one list `tags` (0-3 strings, a child table in the pipeline).
 *   Every field but id, meta and tags is null with probability 0.2; each field of meta too.
 * - `sparse:K` (default K 600): each row is `id` and one of K optional keys `k_0`..`k_<K-1>`
 *   (drawn at random; even ones hold ints, odd ones short strings): K sparse columns.
 * - `wide:N` (default N 300): `id` and N columns `c_000`.. cycling int, double, text, bool,
 *   timestamp, each null with probability 0.1.
 */

export type ShapeKind = 'flat' | 'realistic' | 'nested' | 'sparse' | 'wide';
/** A shape as written on the command line: `flat`, `sparse:600`, `wide:300`. */
export type Shape = string;
export const SHAPE_KINDS: readonly ShapeKind[] = ['flat', 'realistic', 'nested', 'sparse', 'wide'];
const DEFAULT_PARAM: Partial<Record<ShapeKind, number>> = { sparse: 600, wide: 300 };
export type Row = Record<string, unknown>;

/** `sparse:600` -> kind and parameter; throws on an unknown shape. */
export function parseShape(shape: Shape): { kind: ShapeKind; param: number } {
  const [kind, param] = shape.split(':') as [ShapeKind, string | undefined];
  if (!SHAPE_KINDS.includes(kind)) throw new Error(`shape ${JSON.stringify(shape)} is not one of ${SHAPE_KINDS}`);
  const fallback = DEFAULT_PARAM[kind];
  if (param !== undefined && (fallback === undefined || !/^\d+$/.test(param) || Number(param) < 1))
    throw new Error(`shape ${JSON.stringify(shape)}: only sparse:K and wide:N take a number (>= 1)`);
  return { kind, param: param === undefined ? (fallback ?? 0) : Number(param) };
}
/** The shape's name with its parameter spelled out (`sparse` -> `sparse:600`). */
export const shapeName = (shape: Shape) => {
  const { kind, param } = parseShape(shape);
  return DEFAULT_PARAM[kind] === undefined ? kind : `${kind}:${param}`;
};

/** The key column merge uses for each shape. */
export const primaryKey = (shape: Shape) => (parseShape(shape).kind === 'flat' ? 'repo' : 'id');
/** Whether a shape's source is an async generator unless the bench is told otherwise. */
export const asyncByDefault = (shape: Shape) => parseShape(shape).kind === 'realistic';

/** mulberry32: a small, fast, seeded 32-bit PRNG; returns floats in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BRANCHES = ['main', 'master', 'develop', 'trunk', 'gh-pages'];
const WORDS = [
  'duck',
  'flight',
  'parquet',
  'arrow',
  'merge',
  'append',
  'stream',
  'batch',
  'column',
  'schema',
  'load',
  'query',
];
const SOURCES = ['api', 'db', 'file', 'queue'];
const STATUSES = ['open', 'closed', 'pending', 'merged', 'draft'];
const REGIONS = ['us-east-1', 'us-west-2', 'eu-west-1', 'eu-central-1', 'ap-south-1', 'ap-northeast-1'];
const CURRENCIES = ['USD', 'EUR', 'GBP', 'JPY', 'CHF', 'CAD', 'AUD', 'SEK'];
const T0 = Date.UTC(2015, 0, 1) / 1000; // seconds
const T_SPAN = 10 * 365 * 86_400;
const ID0 = 5_000_000_000; // realistic ids start beyond 2^32

/** GitHub's timestamp format: whole seconds, UTC, `Z` (e.g. 2024-05-01T12:34:56Z). */
const isoSeconds = (seconds: number) => new Date(seconds * 1000).toISOString().slice(0, 19) + 'Z';
const pick = <T>(items: readonly T[], r: () => number) => items[Math.floor(r() * items.length)]!;

function flatRow(id: number, r: () => number): Row {
  return {
    repo: `owner-${id}/name-${id}`,
    stars: Math.floor(r() * 200_000),
    forks: Math.floor(r() * 50_000),
    open_issues: Math.floor(r() * 5_000),
    default_branch: pick(BRANCHES, r),
    pushed_at: isoSeconds(T0 + Math.floor(r() * T_SPAN)),
  };
}

const word = (r: () => number) => pick(WORDS, r);
const hex8 = (r: () => number) =>
  Math.floor(r() * 2 ** 32)
    .toString(16)
    .padStart(8, '0');

function realisticRow(id: number, r: () => number): Row {
  const row: Row = {
    id: ID0 + id * 3,
    status: pick(STATUSES, r),
    category: word(r),
    region: pick(REGIONS, r),
    title: `${word(r)} ${word(r)} ${word(r)} issue ${hex8(r)}${hex8(r)} reported for item ${id}`,
    // + 0.005: never a whole number, so these stay double columns
    amount: Math.floor(r() * 1_000_000) / 100 + 0.005,
    score: r() * 5 + 0.001,
    priority: r() < 0.1 ? null : Math.floor(r() * 6),
    active: r() < 0.7,
    created_at: new Date((T0 + r() * T_SPAN) * 1000).toISOString(), // milliseconds: 2019-03-04T05:06:07.891Z
    currency: pick(CURRENCIES, r),
  };
  if (r() < 0.5) row.meta = { a: Math.floor(r() * 1000), b: word(r) };
  return row;
}

const NULL_RATE = 0.2;
const ts = (r: () => number) => isoSeconds(T0 + Math.floor(r() * T_SPAN));

// Written out, with no closures per row, so the source stays cheap next to what is measured.
function nestedRow(id: number, r: () => number): Row {
  const tagCount = Math.floor(r() * 4);
  const tags: string[] = [];
  for (let i = 0; i < tagCount; i++) tags.push(word(r));
  const some = () => r() >= NULL_RATE;
  return {
    id,
    n_1: some() ? Math.floor(r() * 100) : null,
    n_2: some() ? Math.floor(r() * 10_000) : null,
    n_3: some() ? Math.floor(r() * 1_000_000) : null,
    n_4: some() ? Math.floor(r() * 2 ** 31) : null,
    n_5: some() ? Math.floor(r() * 2 ** 40) : null,
    n_6: some() ? Math.floor(r() * 7) : null,
    n_7: some() ? Math.floor(r() * 365) : null,
    // + 0.001: never a whole number, so these stay double columns
    d_1: some() ? r() + 0.001 : null,
    d_2: some() ? r() * 100 + 0.001 : null,
    d_3: some() ? r() * 1e6 + 0.001 : null,
    d_4: some() ? r() * 1e-3 + 0.001 : null,
    d_5: some() ? r() * 360 + 0.001 : null,
    d_6: some() ? r() * 1e9 + 0.001 : null,
    s_1: some() ? word(r) : null,
    s_2: some() ? `user-${Math.floor(r() * 1e6)}` : null,
    s_3: some() ? `${word(r)} ${word(r)} ${word(r)} ${word(r)} ${word(r)} ${word(r)}` : null,
    s_4: some() ? hex8(r) + hex8(r) : null,
    s_5: some() ? `https://example.com/${word(r)}/${id}` : null,
    s_6: some() ? pick(BRANCHES, r) : null,
    b_1: some() ? r() < 0.5 : null,
    b_2: some() ? r() < 0.1 : null,
    b_3: some() ? r() < 0.9 : null,
    t_1: some() ? ts(r) : null,
    t_2: some() ? ts(r) : null,
    t_3: some() ? ts(r) : null,
    meta: {
      source: some() ? pick(SOURCES, r) : null,
      score: some() ? r() * 10 + 0.001 : null,
      rank: some() ? Math.floor(r() * 1000) : null,
    },
    tags,
  };
}

/** Key names made once per shape, not per row. */
const names = (prefix: string, n: number, width = 0) =>
  Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(width, '0')}`);

function sparseMaker(k: number) {
  const keys = names('k_', k);
  return (id: number, r: () => number): Row => {
    const j = Math.floor(r() * k);
    return { id, [keys[j]!]: j % 2 === 0 ? id : `v${id}` };
  };
}

const WIDE_TYPES = ['bigint', 'double', 'text', 'bool', 'timestamp'] as const;
const wideNames = (n: number) => names('c_', n, 3);
function wideMaker(n: number) {
  const keys = wideNames(n);
  return (id: number, r: () => number): Row => {
    const row: Row = { id };
    for (let i = 0; i < n; i++) {
      const key = keys[i]!;
      if (r() < 0.1) {
        row[key] = null;
        continue;
      }
      switch (i % 5) {
        case 0:
          row[key] = Math.floor(r() * 1_000_000);
          break;
        case 1:
          row[key] = r() * 1000 + 0.001;
          break;
        case 2:
          row[key] = word(r);
          break;
        case 3:
          row[key] = r() < 0.5;
          break;
        default:
          row[key] = ts(r);
      }
    }
    return row;
  };
}

function maker(shape: Shape): (id: number, r: () => number) => Row {
  const { kind, param } = parseShape(shape);
  switch (kind) {
    case 'flat':
      return flatRow;
    case 'realistic':
      return realisticRow;
    case 'nested':
      return nestedRow;
    case 'sparse':
      return sparseMaker(param);
    case 'wide':
      return wideMaker(param);
  }
}

/** `count` rows with ids 0..count-1. */
export function* rows(shape: Shape, count: number, seed = 1): Generator<Row> {
  const make = maker(shape);
  const r = prng(seed);
  for (let id = 0; id < count; id++) yield make(id, r);
}

/** The same rows from an async generator, as a source that awaits an API yields them: a promise per row. */
export async function* asyncRows(shape: Shape, count: number, seed = 1): AsyncGenerator<Row> {
  for (const row of rows(shape, count, seed)) yield row;
}

/**
 * The merge batch for a table that holds ids 0..n-1: n rows, interleaved, where even positions
 * update an existing id (0, 2, 4, ...: values differ, another seed) and odd positions are new ids
 * (n, n+1, ...). The table then holds `mergedCount(n)` rows: 1.5 n for an even n.
 */
export function* mergeRows(shape: Shape, n: number, seed = 2): Generator<Row> {
  const make = maker(shape);
  const r = prng(seed);
  for (let k = 0; k < n; k++) yield make(k % 2 === 0 ? k : n + (k - 1) / 2, r);
}
export const mergedCount = (n: number) => n + Math.floor(n / 2);

// ─── Column layout for the baselines (the same columns the pipeline makes) ──────────────────────

export type ColumnType = 'bigint' | 'double' | 'text' | 'bool' | 'timestamp' | 'json';
export const SQL_TYPE: Record<ColumnType, string> = {
  bigint: 'BIGINT',
  double: 'DOUBLE',
  text: 'VARCHAR',
  bool: 'BOOLEAN',
  timestamp: 'TIMESTAMPTZ',
  json: 'VARCHAR',
};
export interface Column {
  name: string;
  type: ColumnType;
  /** The value for this column, taken from a source row; `json` columns get JSON text. */
  get(row: Row): unknown;
}

const top = (name: string, type: ColumnType): Column => ({ name, type, get: (row) => row[name] });
const nested = (parent: string, child: string, type: ColumnType): Column => ({
  name: `${parent}__${child}`,
  type,
  get: (row) => (row[parent] as Row | null | undefined)?.[child],
});

/**
 * The flattened columns of a shape, in order. Nested objects are flattened like the pipeline
 * does; `nested`'s list `tags` becomes one JSON-text column (the baselines build no child tables).
 */
export function columns(shape: Shape): Column[] {
  const { kind, param } = parseShape(shape);
  switch (kind) {
    case 'flat':
      return [
        top('repo', 'text'),
        top('stars', 'bigint'),
        top('forks', 'bigint'),
        top('open_issues', 'bigint'),
        top('default_branch', 'text'),
        top('pushed_at', 'timestamp'),
      ];
    case 'realistic':
      return [
        top('id', 'bigint'),
        ...['status', 'category', 'region', 'title'].map((n) => top(n, 'text')),
        top('amount', 'double'),
        top('score', 'double'),
        top('priority', 'bigint'),
        top('active', 'bool'),
        top('created_at', 'timestamp'),
        top('currency', 'text'),
        nested('meta', 'a', 'bigint'),
        nested('meta', 'b', 'text'),
      ];
    case 'sparse':
      return [top('id', 'bigint'), ...names('k_', param).map((n, j) => top(n, j % 2 === 0 ? 'bigint' : 'text'))];
    case 'wide':
      return [top('id', 'bigint'), ...wideNames(param).map((n, i) => top(n, WIDE_TYPES[i % 5]!))];
    case 'nested': {
      const cols: Column[] = [top('id', 'bigint')];
      for (let i = 1; i <= 7; i++) cols.push(top(`n_${i}`, 'bigint'));
      for (let i = 1; i <= 6; i++) cols.push(top(`d_${i}`, 'double'));
      for (let i = 1; i <= 6; i++) cols.push(top(`s_${i}`, 'text'));
      for (let i = 1; i <= 3; i++) cols.push(top(`b_${i}`, 'bool'));
      for (let i = 1; i <= 3; i++) cols.push(top(`t_${i}`, 'timestamp'));
      cols.push(nested('meta', 'source', 'text'), nested('meta', 'score', 'double'), nested('meta', 'rank', 'bigint'));
      cols.push({ name: 'tags', type: 'json', get: (row) => JSON.stringify(row.tags) });
      return cols;
    }
  }
}

// ─── What every case checks in the loaded table ─────────────────────────────────────────────────

/** One check: an SQL aggregate over the table and the same figure folded over the source rows. */
export interface Check {
  what: string;
  /** An aggregate over the root table (`child`: over the child table `<table>__tags`). */
  sql: string;
  /** Columns the aggregate sums over: the ones the table lacks are left out (the pipeline creates no null-only column). */
  columns?: string[];
  child?: boolean;
  fold(acc: bigint, row: Row): bigint;
}
const count = (name: string, get: (row: Row) => unknown): Check => ({
  what: `count(${name})`,
  sql: `count("${name}")`,
  fold: (acc, row) => (get(row) === null || get(row) === undefined ? acc : acc + 1n),
});
const sum = (name: string, get: (row: Row) => unknown): Check => ({
  what: `sum(${name})`,
  sql: `coalesce(sum("${name}"), 0)`,
  fold: (acc, row) => acc + BigInt((get(row) as number | null) ?? 0),
});
const sumMs = (name: string): Check => ({
  what: `sum(epoch_ms(${name}))`,
  sql: `coalesce(sum(epoch_ms("${name}")), 0)`,
  fold: (acc, row) => acc + BigInt(row[name] ? Date.parse(row[name] as string) : 0),
});
const allValues = (cols: string[]): Check => ({
  what: `non-null values in ${cols.length} columns`,
  // a list, not a + b + ...: DuckDB refuses expressions deeper than 1000 (wide:4000)
  sql: `list_sum([${cols.map((c) => `count("${c}")`).join(', ')}])`,
  columns: cols,
  fold: (acc, row) => acc + BigInt(cols.filter((c) => row[c] !== null && row[c] !== undefined).length),
});

/**
 * Row count aside: sums of an int and a timestamp column (updates took effect, timestamps read as
 * instants), null counts, the nested object's columns, the child table's rows, every sparse value.
 */
export function checks(shape: Shape, childTable: boolean): Check[] {
  const { kind, param } = parseShape(shape);
  const meta = (key: string) => (row: Row) => (row.meta as Row | undefined)?.[key];
  switch (kind) {
    case 'flat':
      return [sum('stars', (r) => r.stars), sumMs('pushed_at')];
    case 'realistic':
      return [
        sum('id', (r) => r.id),
        sum('priority', (r) => r.priority),
        count('priority', (r) => r.priority),
        count('active', (r) => r.active),
        sumMs('created_at'),
        sum('meta__a', meta('a')),
        count('meta__b', meta('b')),
      ];
    case 'nested':
      return [
        sum('n_3', (r) => r.n_3),
        count('n_3', (r) => r.n_3),
        sumMs('t_1'),
        count('meta__rank', meta('rank')),
        ...(childTable
          ? [
              {
                what: 'rows in child table rows__tags',
                sql: 'count(*)',
                child: true,
                fold: (acc: bigint, row: Row) => acc + BigInt((row.tags as unknown[]).length),
              },
            ]
          : []),
      ];
    case 'sparse':
      return [sum('id', (r) => r.id), sum('k_0', (r) => r.k_0), allValues(names('k_', param))];
    case 'wide':
      return [sum('c_000', (r) => r.c_000), sumMs('c_004'), allValues(wideNames(param))];
  }
}
