/**
 * `ctx.incremental` cost: N rows that all share one cursor value against N ascending values, both
 * through `accept` with the state saved as a run saves it. Linear bookkeeping makes the ratio about 1.
 *
 *   npx tsx bench/incremental.ts [rows=40000]
 */
import { makeIncremental, sortedJson, type Row } from '../flight.ts';

const rows = Number(process.argv[2] ?? 40_000);

function time(cursor: (i: number) => string): number {
  const state: Record<string, unknown> = {};
  const started = performance.now();
  const incremental = makeIncremental<string>(state, 'updated_at', { initialValue: '2024-01-01T00:00:00Z' });
  for (let i = 0; i < rows; i++) incremental.accept({ id: i, updated_at: cursor(i) } as Row);
  sortedJson(state); // what saving the state reads
  return performance.now() - started;
}

const iso = (i: number) => new Date(Date.UTC(2025, 0, 1) + i * 1000).toISOString();
time(iso); // warm up
const ascending = time(iso);
const shared = time(() => '2025-06-01T00:00:00.000Z');
console.log(`${rows} rows: ascending cursor ${ascending.toFixed(0)} ms, one shared value ${shared.toFixed(0)} ms`);
console.log(`ratio shared / ascending: ${(shared / ascending).toFixed(2)}x`);
