// The dlt parity corpus (test/fixtures/dlt-parity/): its fixtures, and how a case becomes the port's settings
// and source. Used by test/parity.test.ts and by the fixture scripts beside the corpus.
import { readdirSync, readFileSync } from 'node:fs';
import type { Json } from '@duckdb/node-api';
import type { ColumnHint, Env, Row, SourceContext } from '../flight.ts';

// ─── Fixtures ─────────────────────────────────────────────────────────────────────────────────────

export type Rec = Record<string, Json>;
export interface Hint {
  data_type?: string;
  nullable?: boolean;
  hard_delete?: boolean;
  merge_key?: boolean;
  primary_key?: boolean;
  [k: string]: unknown;
}
export interface CaseInput {
  name: string;
  description: string;
  table: string;
  write_disposition?: 'append' | 'replace' | 'merge';
  primary_key?: string[];
  merge_key?: string[];
  merge_strategy?: 'delete-insert' | 'upsert' | 'scd2';
  columns?: Record<string, Hint>;
  max_table_nesting?: number;
  incremental?: { cursor_path: string; initial_value?: string | number };
  /** Settings the port needs for this case beyond today's env keys. */
  needs?: string[];
  /**
   * A difference from dlt the port keeps on purpose (README, "Where this port differs from dlt"): why, and the
   * exact difference lines the data test then expects instead of none.
   */
  kept_deviation?: { why: string; differences: string[] };
  runs: unknown[][];
}
export interface ExpColumn {
  name: string;
  data_type: string;
  sql_type: string;
  nullable: boolean;
  variant?: boolean;
  [hint: string]: unknown;
}
export interface ExpTable {
  parent: string | null;
  write_disposition?: string;
  columns: ExpColumn[];
  rows: Rec[];
}
export interface StoredSchema {
  version: number;
  version_hash: string;
  engine_version: number;
  name: string;
  tables: Record<string, { columns: Record<string, Record<string, unknown>>; [prop: string]: unknown }>;
  [k: string]: unknown;
}
export interface ExpRun {
  run: number;
  error?: { step: string; type: string; message: string };
  tables: Record<string, ExpTable>;
  dlt_version?: {
    version: number;
    engine_version: number;
    schema_name: string;
    version_hash: string;
    schema: StoredSchema;
  }[];
  dlt_loads?: { load_id: string; schema_name: string; status: number; schema_version_hash: string }[];
  pipeline_state_row?: { row: Record<string, Json>; decoded: Record<string, Json>; version_hash_recomputed: string };
}
export interface Fixture {
  input: CaseInput;
  expected: { dlt_version: string; runs: ExpRun[] };
}

const FIXTURE_DIR = new URL('./fixtures/dlt-parity/', import.meta.url);
/** The corpus, in name order; `only` keeps the cases whose names start with one of its prefixes. */
export function readFixtures(only?: string[]): Fixture[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.json') && (!only || only.some((p) => f.startsWith(p))))
    .sort()
    .map((f) => {
      const fx = JSON.parse(readFileSync(new URL(f, FIXTURE_DIR), 'utf8')) as Fixture;
      fx.input.name = f.slice(0, -5);
      return fx;
    });
}

export const DATASET = 'flights_demo_dlt';
export const PIPELINE = 'flights_dlt_ingest';

// ─── Case settings → the port's env ───────────────────────────────────────────────────────────────

/**
 * The port's settings for a case: env keys, and dlt's column hints (`columns=`) as runFlight's `columns`; of a
 * hint, `hard_delete` is DELETE_COLUMN, `merge_key`/`primary_key` are MERGE_KEY/PRIMARY_KEY.
 */
export function caseSettings(input: CaseInput, dir: string): { env: Env; columns: Record<string, ColumnHint> } {
  const columns: Record<string, ColumnHint> = {};
  let deleteColumn: string | undefined;
  const mergeKey = [...(input.merge_key ?? [])];
  const primaryKey = [...(input.primary_key ?? [])];
  for (const [name, hint] of Object.entries(input.columns ?? {})) {
    const { hard_delete, merge_key, primary_key, name: _name, ...rest } = hint;
    void _name;
    if (hard_delete) deleteColumn = name;
    if (merge_key && !mergeKey.includes(name)) mergeKey.push(name);
    if (primary_key && !primaryKey.includes(name)) primaryKey.push(name);
    if (Object.keys(rest).length > 0) columns[name] = rest as ColumnHint;
  }
  const disposition = input.write_disposition ?? 'append';
  const env: Env = {
    LOCAL_DATA_DIR: dir,
    DATASET_NAME: DATASET,
    PIPELINE_NAME: PIPELINE,
    TABLE_NAME: input.table,
    WRITE_DISPOSITION: disposition,
    LOCK_TIMEOUT_S: '10',
  };
  if (disposition === 'merge') {
    if (input.merge_strategy) env.MERGE_STRATEGY = input.merge_strategy;
    if (primaryKey.length > 0) env.PRIMARY_KEY = primaryKey.join(',');
    if (mergeKey.length > 0) env.MERGE_KEY = mergeKey.join(',');
    if (deleteColumn) env.DELETE_COLUMN = deleteColumn;
  }
  if (input.max_table_nesting !== undefined) env.MAX_TABLE_NESTING = String(input.max_table_nesting);
  return { env, columns };
}

/** The source of one run: that run's rows (copied), through `ctx.incremental` when the case has one. */
export function caseSource(input: CaseInput, rows: unknown[]) {
  return (ctx: SourceContext): Iterable<Row> | AsyncIterable<Row> => {
    const copy = structuredClone(rows) as Row[];
    if (!input.incremental) return copy;
    const inc = ctx.incremental(input.incremental.cursor_path, {
      initialValue: input.incremental.initial_value,
      ...(input.primary_key ? { primaryKey: input.primary_key } : {}),
    });
    return inc.filter(copy);
  };
}
