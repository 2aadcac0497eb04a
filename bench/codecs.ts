/**
 * How the loader files' Parquet options were chosen: for one batch of the flat shape (BATCH_ROWS
 * rows), the time parquet-wasm takes to write it and DuckDB takes to load it, per codec, with and
 * without dictionary encoding and column statistics.
 *
 *   npx tsx bench/codecs.ts [--rows 122880] [--repeat 5]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { tableFromJSON, tableToIPC } from 'apache-arrow';
import { Compression, EnabledStatistics, Table, WriterPropertiesBuilder, writeParquet } from 'parquet-wasm';
import { rows as syntheticRows } from './synthetic.ts';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const [rows, repeat] = [arg('rows', 122_880), arg('repeat', 5)];
const ipc = tableToIPC(tableFromJSON([...syntheticRows('flat', rows)]), 'stream');
const dir = mkdtempSync(join(tmpdir(), 'flight-codecs-'));
const db = await DuckDBInstance.create(join(dir, 'codecs.duckdb'));
const conn = await db.connect();
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`Parquet options for one batch of ${rows.toLocaleString('en-US')} flat rows (median of ${repeat})\n`);
console.log('codec          dictionary  statistics   write ms   load ms   file KiB');
for (const [name, codec] of Object.entries({
  UNCOMPRESSED: Compression.UNCOMPRESSED,
  SNAPPY: Compression.SNAPPY,
  LZ4_RAW: Compression.LZ4_RAW,
  ZSTD: Compression.ZSTD,
})) {
  for (const [dictionary, statistics] of [
    [true, true],
    [false, false],
  ] as const) {
    const writes: number[] = [];
    const loads: number[] = [];
    let size = 0;
    for (let i = 0; i < repeat; i++) {
      const builder = new WriterPropertiesBuilder().setCompression(codec).setDictionaryEnabled(dictionary);
      const properties = (statistics ? builder : builder.setStatisticsEnabled(EnabledStatistics.None)).build();
      let t = performance.now();
      const file = writeParquet(Table.fromIPCStream(ipc), properties);
      writes.push(performance.now() - t);
      const path = join(dir, 'batch.parquet');
      writeFileSync(path, file);
      size = file.length;
      t = performance.now();
      await conn.run('CREATE OR REPLACE TABLE t AS SELECT * FROM read_parquet($path)', { path });
      loads.push(performance.now() - t);
    }
    console.log(
      `${name.padEnd(14)} ${String(dictionary).padEnd(11)} ${String(statistics).padEnd(10)} ${median(writes).toFixed(1).padStart(9)} ${median(loads).toFixed(1).padStart(9)} ${(size / 1024).toFixed(0).padStart(10)}`,
    );
  }
}
conn.closeSync();
db.closeSync();
rmSync(dir, { recursive: true, force: true });
