/**
 * Deterministic synthetic sources for the benchmark: the same arguments always yield the same rows.
 *
 * Rows are produced lazily by generator functions, so a case's memory is never the source's.
 *
 * Shapes:
 * - `flat`: the demo source's six columns: repo ('owner-N/name-N', unique per id), stars, forks,
 *   open_issues (ints), default_branch (string), pushed_at (ISO-8601 string, GitHub's format).
 *   No separate id column: `repo` is the key (PRIMARY_KEY=repo for merge). No nulls.
 * - `wide`: 30 fields: `id` (int key, PRIMARY_KEY=id for merge), 7 ints, 6 doubles, 6 strings,
 *   3 booleans, 3 ISO timestamps, one nested object `meta` {source, score, rank} (flattened to
 *   meta__source / meta__score / meta__rank) and one list `tags` (0-3 strings, a child table in
 *   the pipeline). Every field but id, meta and tags is null with probability 0.2; each field of
 *   meta too. That is 29 scalar columns in the root table plus the list.
 */

export type Shape = 'flat' | 'wide';
export const SHAPES: readonly Shape[] = ['flat', 'wide'];
export type Row = Record<string, unknown>;

/** The key column merge uses for each shape. */
export const PRIMARY_KEY: Record<Shape, string> = { flat: 'repo', wide: 'id' };

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
const T0 = Date.UTC(2015, 0, 1) / 1000; // seconds
const T_SPAN = 10 * 365 * 86_400;

/** GitHub's timestamp format: whole seconds, UTC, `Z` (e.g. 2024-05-01T12:34:56Z). */
const isoSeconds = (seconds: number) => new Date(seconds * 1000).toISOString().slice(0, 19) + 'Z';

function flatRow(id: number, r: () => number): Row {
  return {
    repo: `owner-${id}/name-${id}`,
    stars: Math.floor(r() * 200_000),
    forks: Math.floor(r() * 50_000),
    open_issues: Math.floor(r() * 5_000),
    default_branch: BRANCHES[Math.floor(r() * BRANCHES.length)]!,
    pushed_at: isoSeconds(T0 + Math.floor(r() * T_SPAN)),
  };
}

const NULL_RATE = 0.2;
const word = (r: () => number) => WORDS[Math.floor(r() * WORDS.length)]!;
const hex8 = (r: () => number) =>
  Math.floor(r() * 2 ** 32)
    .toString(16)
    .padStart(8, '0');
const ts = (r: () => number) => isoSeconds(T0 + Math.floor(r() * T_SPAN));

// Written out, with no closures per row, so the source stays cheap next to what is measured.
function wideRow(id: number, r: () => number): Row {
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
    s_6: some() ? BRANCHES[Math.floor(r() * BRANCHES.length)]! : null,
    b_1: some() ? r() < 0.5 : null,
    b_2: some() ? r() < 0.1 : null,
    b_3: some() ? r() < 0.9 : null,
    t_1: some() ? ts(r) : null,
    t_2: some() ? ts(r) : null,
    t_3: some() ? ts(r) : null,
    meta: {
      source: some() ? SOURCES[Math.floor(r() * SOURCES.length)]! : null,
      score: some() ? r() * 10 + 0.001 : null,
      rank: some() ? Math.floor(r() * 1000) : null,
    },
    tags,
  };
}

const MAKERS: Record<Shape, (id: number, r: () => number) => Row> = { flat: flatRow, wide: wideRow };

/** `count` rows with ids 0..count-1. */
export function* rows(shape: Shape, count: number, seed = 1): Generator<Row> {
  const make = MAKERS[shape];
  const r = prng(seed);
  for (let id = 0; id < count; id++) yield make(id, r);
}

/**
 * The merge batch for a table that holds ids 0..n-1: n rows, interleaved, where even positions
 * update an existing id (0, 2, 4, ...: values differ, another seed) and odd positions are new ids
 * (n, n+1, ...). The table then holds `mergedCount(n)` rows: 1.5 n for an even n.
 */
export function* mergeRows(shape: Shape, n: number, seed = 2): Generator<Row> {
  const make = MAKERS[shape];
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
 * The flattened columns of a shape, in order. For `wide`, `meta` is flattened like the pipeline
 * does, and the list `tags` becomes one JSON-text column (the baselines do not build child tables).
 */
export function columns(shape: Shape): Column[] {
  if (shape === 'flat')
    return [
      top('repo', 'text'),
      top('stars', 'bigint'),
      top('forks', 'bigint'),
      top('open_issues', 'bigint'),
      top('default_branch', 'text'),
      top('pushed_at', 'timestamp'),
    ];
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
