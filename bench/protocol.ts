/** What the parent (run.ts) and a case process (case.ts) exchange. No heavy imports here. */
import type { Shape } from './synthetic.ts';

export const CASES = {
  a: 'pipeline-append',
  b: 'pipeline-merge',
  c: 'insert-rowwise',
  h: 'insert-rowwise-txn',
  d: 'appender',
  e: 'ndjson-read_json',
  g: 'source-only',
  x: 'extract-only',
  p: 'parquet-only',
  r: 'read_parquet-only',
} as const;
export type CaseId = keyof typeof CASES;

export interface CaseArgs {
  /** prefill and files: untimed set-up another case runs in a process of its own. */
  case: CaseId | 'prefill' | 'files';
  shape: Shape;
  rows: number;
  /** An empty folder of this case's own; the database file goes there. */
  dir: string;
  /** Rows actually inserted by case c. */
  sample: number;
  /** Extra config keys for runFlight (e.g. BATCH_ROWS), on top of the bench's own. */
  env: Record<string, string>;
  /** How the source yields its rows: a plain generator, or an async generator (a promise per row). */
  source: 'sync' | 'async';
}

export interface CaseResult {
  case: string;
  shape: Shape;
  rows: number;
  /** Wall time of the timed work. */
  seconds: number;
  /** CPU time (user + sys) of the case's whole process over the same span: every thread, DuckDB's and workers' included. */
  cpu_s: number;
  rows_per_s: number;
  peak_rss_mb: number;
  /** maxRSS when the case starts (node + modules loaded, no DuckDB instance yet). */
  start_rss_mb: number;
  /** Peak of the main thread's JS heap (heapUsed) and of its ArrayBuffers (process.memoryUsage().arrayBuffers), sampled. */
  js_heap_mb: number;
  js_buffers_mb: number;
  /** Rows the case was asked for, when it measured fewer (case c's sample). */
  requested_rows?: number;
  note?: string;
}

export const RESULT_MARK = '@bench-result ';
