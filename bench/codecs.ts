/**
 * How the loader files' Parquet options were chosen: for one batch the pipeline really makes
 * (BATCH_ROWS rows of a shape, through runFlight's extract step), the time parquet-wasm takes to
 * encode it, to write the file, and DuckDB takes to load it (one thread, as runFlight loads), per
 * codec and option. On a machine where fresh memory and page cache are expensive, the bytes a file
 * takes count as much as the encoder.
 *
 *   npx tsx bench/codecs.ts [--shape realistic] [--rows 122880] [--repeat 5] [--all: dictionaries too]
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import {
  Compression,
  EnabledStatistics,
  readParquet,
  Table,
  WriterPropertiesBuilder,
  WriterVersion,
  writeParquet,
} from 'parquet-wasm';
import { Extractor, ParquetWriter, parseConfig, planFor } from '../flight.ts';
import { rows as syntheticRows } from './synthetic.ts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : fallback;
};
const [shape, rows, repeat] = [arg('shape', 'realistic'), Number(arg('rows', '122880')), Number(arg('repeat', '5'))];
const dir = mkdtempSync(join(tmpdir(), 'flight-codecs-'));

/** One batch as the pipeline writes it: runFlight's extractor, into `dir`/batch. */
async function pipelineBatch(): Promise<Uint8Array> {
  const parsed = parseConfig({ WRITE_DISPOSITION: 'append', TABLE_NAME: 'rows', BATCH_ROWS: String(rows) });
  if ('problems' in parsed) throw new Error(parsed.problems.join('; '));
  const out = join(dir, 'batch');
  mkdirSync(out);
  const writer = new ParquetWriter();
  const extractor = new Extractor(
    new Map(),
    { loadId: '1700000000.000000', dir: out, batchRows: rows, batchBytes: 1e9, foreign: new Set(), onFile: () => {} },
    writer,
  );
  const target = { plan: planFor(parsed.config) };
  for (const row of syntheticRows(shape, rows)) extractor.add(row, target);
  await extractor.finish();
  await writer.close();
  const [file] = readdirSync(out);
  return readFileSync(join(out, file!));
}

const ipc = readParquet(await pipelineBatch()).intoIPCStream();
const db = await DuckDBInstance.create(join(dir, 'codecs.duckdb'), { threads: '1' });
const conn = await db.connect();
/** CPU time of the process (user + sys) in ms: steadier than wall time on a busy machine, and every step here runs on one thread. */
const cpu = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`Parquet options for one ${shape} batch of ${rows.toLocaleString('en-US')} rows (median of ${repeat})\n`);
console.log('CPU ms:        dictionary  options     encode ms  write ms  load ms  total ms  file KiB');
type Variant = [string, Compression, boolean, string, (b: WriterPropertiesBuilder) => WriterPropertiesBuilder];
const variants: Variant[] = [];
const batch8k = (b: WriterPropertiesBuilder) => b.setWriteBatchSize(8192);
for (const [name, codec] of Object.entries({
  UNCOMPRESSED: Compression.UNCOMPRESSED,
  SNAPPY: Compression.SNAPPY,
  LZ4_RAW: Compression.LZ4_RAW,
  ZSTD: Compression.ZSTD,
})) {
  variants.push([name, codec, false, '', (b) => b], [name, codec, false, 'batch 8k', batch8k]);
  if (process.argv.includes('--all')) variants.push([name, codec, true, '', (b) => b]);
}
variants.push(['UNCOMPRESSED', Compression.UNCOMPRESSED, false, 'batch 64k', (b) => b.setWriteBatchSize(65536)]);
variants.push([
  'UNCOMPRESSED',
  Compression.UNCOMPRESSED,
  false,
  'v2 8k',
  (b) => batch8k(b).setWriterVersion(WriterVersion.V2),
]);
// round-robin, so a busy moment of the machine is spread over all variants
const times = variants.map(() => ({ encode: [] as number[], write: [] as number[], load: [] as number[], size: 0 }));
for (let i = 0; i < repeat; i++)
  for (const [v, [, codec, dictionary, , more]] of variants.entries()) {
    const properties = more(
      new WriterPropertiesBuilder()
        .setCompression(codec)
        .setDictionaryEnabled(dictionary)
        .setStatisticsEnabled(EnabledStatistics.None),
    ).build();
    let t = cpu();
    const file = writeParquet(Table.fromIPCStream(ipc), properties);
    times[v]!.encode.push(cpu() - t);
    const path = join(dir, `batch-${v}.parquet`);
    t = cpu();
    writeFileSync(path, file);
    times[v]!.write.push(cpu() - t);
    times[v]!.size = file.length;
    t = cpu();
    await conn.run('CREATE OR REPLACE TABLE t AS SELECT * FROM read_parquet($path)', { path });
    times[v]!.load.push(cpu() - t);
    rmSync(path);
  }
for (const [v, [name, , dictionary, label]] of variants.entries()) {
  const { encode, write, load, size } = times[v]!;
  const [e, w, l] = [median(encode), median(write), median(load)];
  console.log(
    `${name.padEnd(14)} ${String(dictionary).padEnd(11)} ${label.padEnd(10)} ${e.toFixed(1).padStart(9)} ${w.toFixed(1).padStart(9)} ${l.toFixed(1).padStart(8)} ${(e + w + l).toFixed(1).padStart(9)} ${(size / 1024).toFixed(0).padStart(9)}`,
  );
}
conn.closeSync();
db.closeSync();
rmSync(dir, { recursive: true, force: true });
