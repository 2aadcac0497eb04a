// Pipeline state and incremental loading: the state a source keeps in ctx.state is stored in
// <dataset>._dlt_pipeline_state as dlt stores it (zlib level 9 + base64 JSON), one version row per
// change, in the load's transaction; it is scoped per pipeline name and per table, and read back as
// the newest version whose load completed. ctx.incremental keeps a cursor in that state: tested
// against a real HTTP server (127.0.0.1) serving a growing set of records with `?since=`.
import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { deflateSync, inflateSync } from 'node:zlib';
import {
  decodeState,
  encodeState,
  runFlight,
  type Env,
  type Row as SourceRow,
  type RunSummary,
  type Source,
} from '../flight.ts';
import { columns, dbFile, query, startFakeGitHub, tempDir, withoutDlt, type Row } from './support.ts';

const DATASET = 'flights_demo_dlt';
const EPOCH = '1970-01-01T00:00:00Z';
const quiet = (): void => {};

/** A JSON document as stored in the `state` column. */
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** Config for a local run into <dir>/flights_demo.duckdb; no network unless the source asks. */
function envFor(dir: string, extra: Env = {}): Env {
  return {
    LOCAL_DATA_DIR: dir,
    TABLE_NAME: 'items',
    PRIMARY_KEY: 'id',
    HTTP_TIMEOUT_S: '5',
    HTTP_MAX_RETRIES: '1',
    HTTP_MAX_WAIT_S: '2',
    ...extra,
  };
}

async function run(env: Env, source: Source): Promise<RunSummary> {
  return runFlight({ env, source, log: quiet });
}
async function mustRun(env: Env, source: Source): Promise<RunSummary> {
  const summary = await run(env, source);
  assert.equal(summary.status, 'succeeded', summary.error);
  assert.equal(summary.exitCode, 0);
  return summary;
}
async function mustFail(env: Env, source: Source): Promise<RunSummary> {
  const summary = await run(env, source);
  assert.equal(summary.status, 'failed', 'the run should fail');
  assert.equal(summary.exitCode, 1);
  assert.ok(summary.error, 'a failed run says why');
  return summary;
}

/** dlt's decoding of the `state` column, written out here (not flight.ts's decodeState). */
function decode(text: unknown): JsonObject {
  assert.equal(typeof text, 'string');
  return JSON.parse(inflateSync(Buffer.from(String(text), 'base64')).toString('utf8')) as JsonObject;
}
function obj(value: Json | undefined, what: string): JsonObject {
  assert.ok(
    value !== null && typeof value === 'object' && !Array.isArray(value),
    `${what} is an object: ${JSON.stringify(value)}`,
  );
  return value;
}
/** sources.<schema>.resources.<table> of a decoded state document. */
function resource(doc: JsonObject, schema: string, table: string): Json | undefined {
  const sources = doc.sources;
  if (!sources || typeof sources !== 'object' || Array.isArray(sources)) return undefined;
  const source = sources[schema];
  if (!source || typeof source !== 'object' || Array.isArray(source)) return undefined;
  const resources = source.resources;
  if (!resources || typeof resources !== 'object' || Array.isArray(resources)) return undefined;
  return resources[table];
}
/** JSON with keys sorted at every level, compact: what dlt's orjson `sort_keys=True` writes for these values. */
function sortedJsonText(value: Json): string {
  if (Array.isArray(value)) return `[${value.map(sortedJsonText).join(',')}]`;
  if (value !== null && typeof value === 'object')
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${sortedJsonText(value[k]!)}`)
      .join(',')}}`;
  return JSON.stringify(value);
}
/** dlt's digest128: standard base64 of SHAKE-128, '=' stripped. */
const digest128 = (text: string, bytes = 15) =>
  createHash('shake128', { outputLength: bytes }).update(text).digest('base64').replace(/=+$/, '');

/** Every state row of the dataset, oldest first. */
async function stateRows(dir: string, pipeline?: string): Promise<Row[]> {
  const where = pipeline === undefined ? '' : `WHERE pipeline_name = '${pipeline}'`;
  return query(dbFile(dir), `SELECT * FROM ${DATASET}._dlt_pipeline_state ${where} ORDER BY pipeline_name, version`);
}
/** The state a run would read: dlt's query (newest version whose load completed), decoded. */
async function storedState(dir: string, pipeline: string): Promise<JsonObject> {
  const rows = await query(
    dbFile(dir),
    `SELECT s.state FROM ${DATASET}._dlt_pipeline_state AS s JOIN ${DATASET}._dlt_loads AS l ON l.load_id = s._dlt_load_id
     WHERE s.pipeline_name = $1 AND l.status = 0 ORDER BY l.load_id DESC LIMIT 1`,
    { params: [pipeline] },
  );
  assert.equal(rows.length, 1, `a completed state for ${pipeline}`);
  return decode(rows[0]!.state);
}
async function tableRows(dir: string, table = 'items', orderBy = 'id'): Promise<Row[]> {
  return query(dbFile(dir), `SELECT * FROM ${DATASET}.${table} ORDER BY ${orderBy}`);
}
async function loadRows(dir: string): Promise<Row[]> {
  return query(dbFile(dir), `SELECT load_id, status FROM ${DATASET}._dlt_loads ORDER BY load_id`);
}

/**
 * A source that records what it saw in ctx.state (a deep copy, before changing it) and then
 * applies `change` to it, yields one row, and optionally fails after yielding.
 */
function stateSource(
  seen: JsonObject[],
  change: (state: Record<string, unknown>) => void,
  opts: { fail?: boolean; row?: SourceRow } = {},
): Source {
  return function* (ctx) {
    seen.push(JSON.parse(JSON.stringify(ctx.state)) as JsonObject);
    change(ctx.state);
    yield opts.row ?? { id: 1, name: 'one' };
    if (opts.fail) throw new Error('the source failed after yielding');
  };
}

describe('pipeline state: storage', () => {
  test("stored in _dlt_pipeline_state with dlt's columns, readable with plain SQL + base64/zlib decoding", async (t) => {
    const dir = await tempDir(t);
    const env = envFor(dir, { PIPELINE_NAME: 'MyPipeline' });
    const before = Date.now();
    const summary = await mustRun(env, (ctx) => {
      ctx.state.counter = 3;
      ctx.state.names = ['a', 'b'];
      ctx.state.nested = { deep: { x: true }, none: null, text: 'zß€' };
      return [{ id: 1 }];
    });
    const after = Date.now();

    assert.deepEqual(
      (await columns(dbFile(dir), DATASET, '_dlt_pipeline_state')).map((c) => [c.name, c.type]),
      [
        ['version', 'BIGINT'],
        ['engine_version', 'BIGINT'],
        ['pipeline_name', 'VARCHAR'],
        ['state', 'VARCHAR'],
        ['created_at', 'TIMESTAMP WITH TIME ZONE'],
        ['version_hash', 'VARCHAR'],
        ['_dlt_load_id', 'VARCHAR'],
        ['_dlt_id', 'VARCHAR'],
      ],
    );
    const rows = await stateRows(dir);
    assert.equal(rows.length, 1);
    const row = rows[0]!;
    assert.equal(row.version, 1n, "the first stored version is 1, as dlt's (test/fixtures/dlt-parity/55_*)");
    assert.equal(row.engine_version, 4n);
    assert.equal(row.pipeline_name, 'my_pipeline', 'PIPELINE_NAME snake_cased');
    assert.equal(row._dlt_load_id, summary.loadId);
    assert.match(String(row._dlt_id), /^[A-Za-z0-9+/]{14}$/, "dlt's random id: 10 bytes, base64 without padding");
    assert.ok(row.created_at instanceof Date);
    assert.ok(
      row.created_at.getTime() >= before - 1000 && row.created_at.getTime() <= after + 1000,
      String(row.created_at),
    );
    assert.deepEqual(
      await loadRows(dir),
      [{ load_id: summary.loadId, status: 0n }],
      'the state row belongs to a completed load',
    );

    // dlt's encoding: standard base64 of a zlib stream compressed at level 9 (header 78 DA).
    const text = String(row.state);
    assert.match(text, /^[A-Za-z0-9+/]+={0,2}$/);
    assert.deepEqual([...Buffer.from(text, 'base64').subarray(0, 2)], [0x78, 0xda]);
    const doc = decode(text);
    assert.equal(doc._state_engine_version, 4);
    assert.equal(doc._state_version, 1);
    assert.equal(doc._version_hash, row.version_hash);
    assert.equal(doc.pipeline_name, 'my_pipeline');
    assert.equal(doc.dataset_name, DATASET);
    assert.equal(doc._local, undefined, '_local is never synced');
    assert.deepEqual(resource(doc, 'my_pipeline', 'items'), {
      counter: 3,
      names: ['a', 'b'],
      nested: { deep: { x: true }, none: null, text: 'zß€' },
    });

    // The version hash is dlt's: base64 SHA3-256 of the sorted JSON without the version keys.
    const { _state_version, _state_engine_version, _version_hash, ...content } = doc;
    assert.equal(row.version_hash, createHash('sha3-256').update(sortedJsonText(content)).digest('base64'));
    assert.equal(String(row.version_hash).length, 44);

    // The exported helpers agree with the plain decoding.
    assert.deepEqual(decodeState(text), doc);
  });

  test("the state is found with plain SQL (dlt's read query over _dlt_pipeline_state and _dlt_loads); the column is valid base64", async (t) => {
    const dir = await tempDir(t);
    await mustRun(envFor(dir, { PIPELINE_NAME: 'sql_reader' }), (ctx) => {
      ctx.state.marker = 'visible';
      return [{ id: 1 }];
    });
    const rows = await query(
      dbFile(dir),
      `SELECT s.version, s.pipeline_name, s.state, octet_length(from_base64(s.state)) AS bytes
       FROM ${DATASET}._dlt_pipeline_state s JOIN ${DATASET}._dlt_loads l ON l.load_id = s._dlt_load_id
       WHERE s.pipeline_name = 'sql_reader' AND l.status = 0 ORDER BY l.load_id DESC LIMIT 1`,
    );
    assert.equal(rows.length, 1);
    assert.ok(Number(rows[0]!.bytes) > 2, 'the column is valid base64');
    assert.deepEqual(resource(decode(rows[0]!.state), 'sql_reader', 'items'), { marker: 'visible' });
  });

  test('encodeState / decodeState: zlib level 9 + base64; decoding also reads plain JSON and strips Python dlt type tags', () => {
    const state = {
      _state_version: 2,
      _state_engine_version: 4,
      sources: { p: { resources: { t: { a: [1, 'x'] } } } },
    };
    const text = encodeState(state);
    assert.equal(text, deflateSync(JSON.stringify(state), { level: 9 }).toString('base64'));
    assert.deepEqual(decode(text), state);
    assert.deepEqual(decodeState(text), state);
    assert.deepEqual(decodeState(JSON.stringify(state)), state, 'dlt falls back to plain JSON');
    const tagged = { last: '\uf0272024-01-02T03:04:05+00:00', amount: '\uf02612.50' };
    assert.deepEqual(decodeState(encodeState(tagged)), { last: '2024-01-02T03:04:05+00:00', amount: '12.50' });
  });
});

describe('pipeline state: versions', () => {
  test('a new version row only when the state changed: version +1; an unchanged run adds no row', async (t) => {
    const dir = await tempDir(t);
    const env = envFor(dir, { PIPELINE_NAME: 'versions' });
    const seen: JsonObject[] = [];
    const r1 = await mustRun(
      env,
      stateSource(seen, (s) => (s.counter = 1)),
    );
    const r2 = await mustRun(
      env,
      stateSource(seen, (s) => (s.counter = 1)),
    ); // same value: unchanged
    const r3 = await mustRun(
      env,
      stateSource(seen, () => {}),
    ); // untouched
    const r4 = await mustRun(
      env,
      stateSource(seen, (s) => (s.counter = 2)),
    );
    const r5 = await mustRun(
      env,
      stateSource(seen, (s) => (s.other = 'x')),
    );
    const r6 = await mustRun(
      env,
      stateSource(seen, () => {}),
    );

    assert.deepEqual(
      seen,
      [{}, { counter: 1 }, { counter: 1 }, { counter: 1 }, { counter: 2 }, { counter: 2, other: 'x' }],
      'each run sees the last saved state',
    );
    const rows = await stateRows(dir);
    assert.deepEqual(
      rows.map((r) => [r.version, r._dlt_load_id]),
      [
        [1n, r1.loadId],
        [2n, r4.loadId],
        [3n, r5.loadId],
      ],
    );
    for (const r of rows) {
      const doc = decode(r.state);
      assert.equal(doc._state_version, Number(r.version), 'the version column matches the document');
      assert.equal(doc._version_hash, r.version_hash);
    }
    assert.equal(new Set(rows.map((r) => r.version_hash)).size, 3, 'each version has its own hash');
    assert.deepEqual(resource(decode(rows[2]!.state), 'versions', 'items'), { counter: 2, other: 'x' });
    // Every run completed a load, whether it wrote state or not.
    assert.deepEqual(
      (await loadRows(dir)).map((r) => r.load_id),
      [r1, r2, r3, r4, r5, r6].map((r) => r.loadId),
    );
  });

  test('a source that never touches ctx.state keeps no resource state (the pipeline document is still versioned once)', async (t) => {
    const dir = await tempDir(t);
    const env = envFor(dir, { PIPELINE_NAME: 'stateless' });
    await mustRun(env, () => [{ id: 1 }]);
    await mustRun(env, () => [{ id: 2 }]);
    const rows = await stateRows(dir);
    assert.equal(rows.length, 1);
    assert.equal(resource(decode(rows[0]!.state), 'stateless', 'items'), undefined);
  });

  test('a failed run (the source throws after yielding) never advances the state; the next run sees the old one', async (t) => {
    const dir = await tempDir(t);
    const env = envFor(dir, { PIPELINE_NAME: 'failing' });
    const seen: JsonObject[] = [];
    const r1 = await mustRun(
      env,
      stateSource(seen, (s) => (s.counter = 1)),
    );
    const failed = await mustFail(
      env,
      stateSource(seen, (s) => (s.counter = 2), { fail: true, row: { id: 2, name: 'lost' } }),
    );
    assert.match(failed.error ?? '', /failed after yielding/);
    const r3 = await mustRun(
      env,
      stateSource(seen, (s) => (s.counter = Number(s.counter) + 10)),
    );

    assert.deepEqual(seen, [{}, { counter: 1 }, { counter: 1 }]);
    assert.deepEqual(
      (await stateRows(dir)).map((r) => [r.version, r._dlt_load_id]),
      [
        [1n, r1.loadId],
        [2n, r3.loadId],
      ],
    );
    assert.deepEqual(resource(await storedState(dir, 'failing'), 'failing', 'items'), { counter: 11 });
    assert.deepEqual(
      (await loadRows(dir)).map((r) => r.load_id),
      [r1.loadId, r3.loadId],
      'the failed run has no _dlt_loads row',
    );
    assert.deepEqual(withoutDlt(await tableRows(dir)), [{ id: 1n, name: 'one' }], 'nor any data');
  });

  test('a run that fails in the load step (a CHECK constraint) rolls its state change back with its data', async (t) => {
    const dir = await tempDir(t);
    const env = envFor(dir, { PIPELINE_NAME: 'load_fails' });
    await query(
      dbFile(dir),
      `CREATE SCHEMA ${DATASET}; CREATE TABLE ${DATASET}.items (id BIGINT, v BIGINT CHECK (v < 100))`,
      { write: true },
    );
    const seen: JsonObject[] = [];
    const r1 = await mustRun(
      env,
      stateSource(seen, (s) => (s.counter = 1), { row: { id: 1, v: 5 } }),
    );
    const failed = await mustFail(
      env,
      stateSource(seen, (s) => (s.counter = 2), { row: { id: 2, v: 500 } }),
    );
    assert.match(failed.error ?? '', /constraint/i);
    await mustRun(
      env,
      stateSource(seen, () => {}, { row: { id: 3, v: 6 } }),
    );
    assert.deepEqual(seen, [{}, { counter: 1 }, { counter: 1 }]);
    assert.deepEqual(
      (await stateRows(dir)).map((r) => [r.version, r._dlt_load_id]),
      [[1n, r1.loadId]],
    );
    assert.deepEqual(withoutDlt(await tableRows(dir)), [
      { id: 1n, v: 5n },
      { id: 3n, v: 6n },
    ]);
  });

  const noDatasetTables = async (dir: string) =>
    assert.deepEqual(
      await query(dbFile(dir), `SELECT table_name FROM information_schema.tables WHERE table_schema = '${DATASET}'`),
      [],
      'no table, no state, no load',
    );

  test('a state that is not JSON-serializable (a cycle) fails the run with a message naming the state; nothing is loaded', async (t) => {
    const dir = await tempDir(t);
    const failed = await mustFail(envFor(dir, { PIPELINE_NAME: 'cyclic' }), (ctx) => {
      ctx.state.self = ctx.state;
      return [{ id: 1 }];
    });
    assert.match(failed.error ?? '', /state/i);
    assert.match(failed.error ?? '', /JSON/);
    await noDatasetTables(dir);
  });

  test('a BigInt in the state fails the run; nothing is loaded', async (t) => {
    const dir = await tempDir(t);
    await mustFail(envFor(dir, { PIPELINE_NAME: 'bigint_state' }), (ctx) => {
      ctx.state.big = 12345678901234567890n;
      return [{ id: 1 }];
    });
    await noDatasetTables(dir);
  });

  test('a BigInt in the state fails with a message naming the state, as a cycle does', async (t) => {
    const dir = await tempDir(t);
    const failed = await mustFail(envFor(dir, { PIPELINE_NAME: 'bigint_message' }), (ctx) => {
      ctx.state.big = 1n;
      return [{ id: 1 }];
    });
    assert.match(failed.error ?? '', /state/i, failed.error);
  });
});

describe('pipeline state: scope and read-back', () => {
  test('scoped per pipeline name: two PIPELINE_NAMEs in one dataset do not see each other', async (t) => {
    const dir = await tempDir(t);
    const seenA: JsonObject[] = [];
    const seenB: JsonObject[] = [];
    await mustRun(
      envFor(dir, { PIPELINE_NAME: 'alpha' }),
      stateSource(seenA, (s) => (s.owner = 'alpha')),
    );
    await mustRun(
      envFor(dir, { PIPELINE_NAME: 'beta' }),
      stateSource(seenB, (s) => (s.owner = 'beta')),
    );
    await mustRun(
      envFor(dir, { PIPELINE_NAME: 'alpha' }),
      stateSource(seenA, (s) => (s.count = 1)),
    );
    await mustRun(
      envFor(dir, { PIPELINE_NAME: 'beta' }),
      stateSource(seenB, () => {}),
    );
    assert.deepEqual(seenA, [{}, { owner: 'alpha' }]);
    assert.deepEqual(seenB, [{}, { owner: 'beta' }]);
    assert.deepEqual(
      (await stateRows(dir)).map((r) => [r.pipeline_name, r.version]),
      [
        ['alpha', 1n],
        ['alpha', 2n],
        ['beta', 1n],
      ],
    );
    const alpha = await storedState(dir, 'alpha');
    assert.equal(alpha.pipeline_name, 'alpha');
    assert.deepEqual(resource(alpha, 'alpha', 'items'), { owner: 'alpha', count: 1 });
    assert.equal(resource(alpha, 'beta', 'items'), undefined);
    assert.deepEqual(resource(await storedState(dir, 'beta'), 'beta', 'items'), { owner: 'beta' });
  });

  test('scoped per table: one pipeline loading two tables keeps a state for each, in one document', async (t) => {
    const dir = await tempDir(t);
    const seenA: JsonObject[] = [];
    const seenB: JsonObject[] = [];
    const a = envFor(dir, { PIPELINE_NAME: 'multi', TABLE_NAME: 'table_a' });
    const b = envFor(dir, { PIPELINE_NAME: 'multi', TABLE_NAME: 'TableB' });
    await mustRun(
      a,
      stateSource(seenA, (s) => (s.cursor = 'a1')),
    );
    await mustRun(
      b,
      stateSource(seenB, (s) => (s.cursor = 'b1')),
    );
    await mustRun(
      a,
      stateSource(seenA, (s) => (s.cursor = 'a2')),
    );
    await mustRun(
      b,
      stateSource(seenB, () => {}),
    );
    assert.deepEqual(seenA, [{}, { cursor: 'a1' }]);
    assert.deepEqual(seenB, [{}, { cursor: 'b1' }]);
    const doc = await storedState(dir, 'multi');
    assert.deepEqual(resource(doc, 'multi', 'table_a'), { cursor: 'a2' });
    assert.deepEqual(resource(doc, 'multi', 'table_b'), { cursor: 'b1' }, 'keyed by the snake_cased table name');
    assert.deepEqual(
      (await stateRows(dir)).map((r) => r.version),
      [1n, 2n, 3n],
    );
  });

  test('read back like dlt: the newest version whose load completed; a version without a completed load is ignored', async (t) => {
    const dir = await tempDir(t);
    const env = envFor(dir, { PIPELINE_NAME: 'readback' });
    const seen: JsonObject[] = [];
    const r1 = await mustRun(
      env,
      stateSource(seen, (s) => (s.counter = 1)),
    );
    const first = (await stateRows(dir))[0]!;

    // A newer version written by "another tool" whose load never completed (no _dlt_loads row).
    const foreign = decode(first.state);
    foreign._state_version = 7;
    obj(obj(obj(obj(foreign.sources, 'sources').readback, 'source').resources, 'resources').items, 'items').counter =
      99;
    const foreignLoad = (Number(r1.loadId) + 1).toFixed(6);
    await query(
      dbFile(dir),
      `INSERT INTO ${DATASET}._dlt_pipeline_state VALUES (7, 4, 'readback', $1, now(), 'h', $2, 'x1')`,
      { write: true, params: [deflateSync(JSON.stringify(foreign), { level: 9 }).toString('base64'), foreignLoad] },
    );
    await mustRun(
      env,
      stateSource(seen, () => {}),
    );
    assert.deepEqual(seen[1], { counter: 1 }, 'the incomplete version is invisible');

    // Once its load is recorded as complete (status 0) it is the newest: it is read.
    await query(dbFile(dir), `INSERT INTO ${DATASET}._dlt_loads VALUES ($1, 'readback', 1, now(), NULL)`, {
      write: true,
      params: [foreignLoad],
    });
    await mustRun(
      env,
      stateSource(seen, () => {}),
    );
    assert.deepEqual(seen[2], { counter: 1 }, 'a load with status 1 is not complete');
    await query(dbFile(dir), `UPDATE ${DATASET}._dlt_loads SET status = 0 WHERE load_id = $1`, {
      write: true,
      params: [foreignLoad],
    });
    await mustRun(
      env,
      stateSource(seen, (s) => (s.counter = Number(s.counter) + 1)),
    );
    assert.deepEqual(seen[3], { counter: 99 }, 'the newest completed version is read');
    const rows = await stateRows(dir);
    assert.equal(rows.at(-1)!.version, 8n, 'the next version follows the one read');
    assert.deepEqual(resource(decode(rows.at(-1)!.state), 'readback', 'items'), { counter: 100 });
  });
});

// ─── Incremental ────────────────────────────────────────────────────────────────────────────────

interface Rec {
  id: number;
  name: string;
  updated_at: string;
}
interface RecordsServer {
  url: string;
  /** The records served; push to grow, replace to change. */
  records: Rec[];
  /** The `since` parameter of each request, in order. */
  sinces: string[];
}

/** A real HTTP server on 127.0.0.1: GET /records?since=<iso> answers the records with updated_at >= since (inclusive, as many APIs are). */
async function startRecords(t: TestContext, initial: Rec[]): Promise<RecordsServer> {
  const server: RecordsServer = { url: '', records: [...initial], sinces: [] };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const since = new URL(req.url ?? '/', 'http://x').searchParams.get('since') ?? '';
    server.sinces.push(since);
    const body = server.records.filter((r) => r.updated_at >= since);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const fake = await startFakeGitHub(t, { '/records': handler });
  server.url = `${fake.url}/records`;
  return server;
}

/** The few lines an incremental source takes: ask for rows since the cursor, keep the new ones. */
function incrementalSource(
  url: string,
  opts: { primaryKey?: string[]; failAfterYield?: boolean; seen?: (string | undefined)[] } = {},
): Source {
  return async function* (ctx) {
    const updated = ctx.incremental('updated_at', { initialValue: EPOCH, primaryKey: opts.primaryKey });
    opts.seen?.push(updated.startValue);
    const body = (await ctx.getJson(
      `${url}?since=${encodeURIComponent(updated.startValue ?? EPOCH)}`,
      'records',
    )) as SourceRow[];
    yield* updated.filter(body);
    if (opts.failAfterYield) throw new Error('the source failed after fetching');
  };
}

const rec = (id: number, updated_at: string, name = `r${id}`): Rec => ({ id, name, updated_at });
const T = (n: number) => `2024-01-0${n}T00:00:00Z`;

interface IncrementalDoc {
  initial_value: Json;
  last_value: Json;
  unique_hashes: string[];
  start_value: Json;
}
async function cursorState(dir: string, pipeline: string, table = 'items'): Promise<IncrementalDoc> {
  const res = obj(resource(await storedState(dir, pipeline), pipeline, table), 'resource state');
  return obj(obj(res.incremental, 'incremental').updated_at, 'updated_at') as unknown as IncrementalDoc;
}
/** Loaded (id, name, updated_at) in load order, then id: with append, a row loaded twice shows twice. */
async function loaded(dir: string): Promise<[bigint, string, string][]> {
  const rows = await query(
    dbFile(dir),
    `SELECT id, name, strftime(updated_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ') AS u FROM ${DATASET}.items ORDER BY id, _dlt_load_id`,
  );
  return rows.map((r) => [r.id as bigint, String(r.name), String(r.u)]);
}

describe('incremental', () => {
  test('first run loads all, later runs only the new records (asking the server ?since=<cursor>)', async (t) => {
    const dir = await tempDir(t);
    const server = await startRecords(t, [rec(1, T(1)), rec(2, T(3)), rec(3, T(2))]);
    const env = envFor(dir, { PIPELINE_NAME: 'inc', WRITE_DISPOSITION: 'append' });
    const starts: (string | undefined)[] = [];
    const source = incrementalSource(server.url, { seen: starts });

    const r1 = await mustRun(env, source);
    assert.equal(r1.rowsLoaded, 3);
    assert.deepEqual(await loaded(dir), [
      [1n, 'r1', T(1)],
      [2n, 'r2', T(3)],
      [3n, 'r3', T(2)],
    ]);
    assert.deepEqual(await cursorState(dir, 'inc'), {
      initial_value: EPOCH,
      last_value: T(3),
      unique_hashes: [digest128(sortedJsonText({ id: 2, name: 'r2', updated_at: T(3) }))],
      start_value: EPOCH,
    });

    // Nothing new: the server returns the boundary record again, which is dropped; the state is unchanged.
    const r2 = await mustRun(env, source);
    assert.equal(r2.rowsLoaded, 0);
    assert.equal((await stateRows(dir)).length, 1, 'no new state version');

    server.records.push(rec(4, T(4)), rec(5, T(5)));
    const r3 = await mustRun(env, source);
    assert.equal(r3.rowsLoaded, 2);
    assert.deepEqual(await loaded(dir), [
      [1n, 'r1', T(1)],
      [2n, 'r2', T(3)],
      [3n, 'r3', T(2)],
      [4n, 'r4', T(4)],
      [5n, 'r5', T(5)],
    ]);
    assert.deepEqual(starts, [EPOCH, T(3), T(3)]);
    assert.deepEqual(server.sinces, [EPOCH, T(3), T(3)]);
    const cursor = await cursorState(dir, 'inc');
    assert.equal(cursor.last_value, T(5));
    assert.equal(cursor.start_value, T(3), 'start_value: the cursor this run started from');
    assert.equal(cursor.initial_value, EPOCH);
    assert.deepEqual(
      (await stateRows(dir)).map((r) => r.version),
      [1n, 2n],
    );
  });

  test('a run that fails after fetching leaves the cursor where it was; the next run loads the missed rows exactly once', async (t) => {
    const dir = await tempDir(t);
    const server = await startRecords(t, [rec(1, T(1)), rec(2, T(2))]);
    const env = envFor(dir, { PIPELINE_NAME: 'inc_fail', WRITE_DISPOSITION: 'append' });
    await mustRun(env, incrementalSource(server.url));
    const before = await cursorState(dir, 'inc_fail');
    assert.equal(before.last_value, T(2));

    server.records.push(rec(3, T(3)), rec(4, T(4)));
    const failed = await mustFail(env, incrementalSource(server.url, { failAfterYield: true }));
    assert.match(failed.error ?? '', /failed after fetching/);
    assert.deepEqual(server.sinces, [EPOCH, T(2)], 'the failed run did fetch the new records');
    assert.deepEqual(await cursorState(dir, 'inc_fail'), before, 'the cursor did not move');
    assert.equal((await stateRows(dir)).length, 1);
    assert.equal((await loaded(dir)).length, 2, 'nothing of the failed run was loaded');

    server.records.push(rec(5, T(5)));
    const r3 = await mustRun(env, incrementalSource(server.url));
    assert.equal(r3.rowsLoaded, 3);
    assert.deepEqual(server.sinces, [EPOCH, T(2), T(2)], 'the next run asks from the old cursor');
    assert.deepEqual(await loaded(dir), [
      [1n, 'r1', T(1)],
      [2n, 'r2', T(2)],
      [3n, 'r3', T(3)],
      [4n, 'r4', T(4)],
      [5n, 'r5', T(5)],
    ]);
    assert.equal((await cursorState(dir, 'inc_fail')).last_value, T(5));
  });

  test('boundary ties: rows sharing the max cursor value across runs are neither lost nor loaded twice', async (t) => {
    const dir = await tempDir(t);
    const server = await startRecords(t, [rec(1, T(1)), rec(2, T(2)), rec(3, T(2))]);
    const env = envFor(dir, { PIPELINE_NAME: 'ties', WRITE_DISPOSITION: 'append' });
    await mustRun(env, incrementalSource(server.url));
    const c1 = await cursorState(dir, 'ties');
    assert.equal(c1.last_value, T(2));
    assert.deepEqual(
      [...c1.unique_hashes].sort(),
      [rec(2, T(2)), rec(3, T(2))].map((r) => digest128(sortedJsonText({ ...r }))).sort(),
      'the hashes of both rows at the boundary (dlt: digest128 of the sorted row JSON)',
    );

    // The server answers `>= T(2)`: the two loaded rows again, a third at T(2) and one at T(3).
    server.records.push(rec(4, T(2)), rec(5, T(3)));
    const r2 = await mustRun(env, incrementalSource(server.url));
    assert.equal(r2.rowsLoaded, 2);
    assert.deepEqual(await loaded(dir), [
      [1n, 'r1', T(1)],
      [2n, 'r2', T(2)],
      [3n, 'r3', T(2)],
      [4n, 'r4', T(2)],
      [5n, 'r5', T(3)],
    ]);
    const c2 = await cursorState(dir, 'ties');
    assert.equal(c2.last_value, T(3));
    assert.deepEqual(
      c2.unique_hashes,
      [digest128(sortedJsonText({ ...rec(5, T(3)) }))],
      'a new maximum resets the boundary hashes',
    );

    // A run whose only new row ties with the current maximum adds its hash and keeps the old one.
    server.records.push(rec(6, T(3)));
    const r3 = await mustRun(env, incrementalSource(server.url));
    assert.equal(r3.rowsLoaded, 1);
    assert.deepEqual(
      [...(await cursorState(dir, 'ties')).unique_hashes].sort(),
      [rec(5, T(3)), rec(6, T(3))].map((r) => digest128(sortedJsonText({ ...r }))).sort(),
    );
    const r4 = await mustRun(env, incrementalSource(server.url));
    assert.equal(r4.rowsLoaded, 0, 'both boundary rows are recognised');
    assert.equal((await loaded(dir)).length, 6);
  });

  test('with primaryKey, the boundary check uses the key: a changed row at the boundary value is not reloaded (without it, it is)', async (t) => {
    const withKey = await tempDir(t);
    const wholeRow = await tempDir(t);
    const server = await startRecords(t, [rec(1, T(1)), rec(2, T(2), 'before')]);
    const keyed = incrementalSource(server.url, { primaryKey: ['id'] });
    const plain = incrementalSource(server.url);
    await mustRun(envFor(withKey, { PIPELINE_NAME: 'by_key', WRITE_DISPOSITION: 'append' }), keyed);
    await mustRun(envFor(wholeRow, { PIPELINE_NAME: 'by_row', WRITE_DISPOSITION: 'append' }), plain);
    assert.deepEqual(
      (await cursorState(withKey, 'by_key')).unique_hashes,
      [digest128('[2]')],
      "dlt's key hash: digest128 of the JSON list of key values",
    );

    // Record 2 changes its content but not its cursor value; record 3 is new at the boundary.
    server.records[1] = rec(2, T(2), 'after');
    server.records.push(rec(3, T(2)));
    const k = await mustRun(envFor(withKey, { PIPELINE_NAME: 'by_key', WRITE_DISPOSITION: 'append' }), keyed);
    const p = await mustRun(envFor(wholeRow, { PIPELINE_NAME: 'by_row', WRITE_DISPOSITION: 'append' }), plain);
    assert.equal(k.rowsLoaded, 1);
    assert.deepEqual(await loaded(withKey), [
      [1n, 'r1', T(1)],
      [2n, 'before', T(2)],
      [3n, 'r3', T(2)],
    ]);
    assert.equal(p.rowsLoaded, 2);
    assert.deepEqual(await loaded(wholeRow), [
      [1n, 'r1', T(1)],
      [2n, 'before', T(2)],
      [2n, 'after', T(2)],
      [3n, 'r3', T(2)],
    ]);
    assert.deepEqual(
      [...(await cursorState(withKey, 'by_key')).unique_hashes].sort(),
      [digest128('[2]'), digest128('[3]')].sort(),
    );
  });

  test('a missing or null cursor value fails the run with a message naming the cursor; nothing loaded, cursor kept', async (t) => {
    const dir = await tempDir(t);
    const server = await startRecords(t, [rec(1, T(1))]);
    const env = envFor(dir, { PIPELINE_NAME: 'no_cursor', WRITE_DISPOSITION: 'append' });
    await mustRun(env, incrementalSource(server.url));
    const before = await cursorState(dir, 'no_cursor');

    const missing: SourceRow = { id: 2, name: 'no cursor here' };
    server.records.push(rec(3, T(3)));
    for (const bad of [missing, { ...missing, updated_at: null }]) {
      const failed = await mustFail(env, async function* (ctx) {
        const updated = ctx.incremental('updated_at', { initialValue: EPOCH });
        const body = (await ctx.getJson(
          `${server.url}?since=${encodeURIComponent(updated.startValue ?? EPOCH)}`,
          'records',
        )) as SourceRow[];
        yield* updated.filter([...body, bad]);
      });
      assert.match(failed.error ?? '', /updated_at/, failed.error);
    }
    assert.deepEqual(await cursorState(dir, 'no_cursor'), before);
    assert.deepEqual(await loaded(dir), [[1n, 'r1', T(1)]]);
  });

  test('accept() and lastValue: a source can filter row by row; state lives at resources.<table>.incremental.<cursor>', async (t) => {
    const dir = await tempDir(t);
    const env = envFor(dir, { PIPELINE_NAME: 'by_hand', TABLE_NAME: 'Events', WRITE_DISPOSITION: 'append' });
    const observed: (number | undefined)[] = [];
    const source = (values: number[]): Source =>
      function* (ctx) {
        const seq = ctx.incremental<number>('seq', { initialValue: 0 });
        for (const seqValue of values) if (seq.accept({ seq: seqValue })) yield { seq: seqValue };
        observed.push(seq.lastValue);
      };
    await mustRun(env, source([3, 1, 2]));
    await mustRun(env, source([2, 3, 4, 3]));
    assert.deepEqual(observed, [3, 4]);
    const rows = await query(dbFile(dir), `SELECT seq FROM ${DATASET}.events ORDER BY seq`);
    assert.deepEqual(
      rows.map((r) => r.seq),
      [1n, 2n, 3n, 4n],
    );
    const res = obj(resource(await storedState(dir, 'by_hand'), 'by_hand', 'events'), 'resource');
    assert.deepEqual(obj(obj(res.incremental, 'incremental').seq, 'seq'), {
      initial_value: 0,
      last_value: 4,
      unique_hashes: [digest128('{"seq":4}')],
      start_value: 3,
    });
  });
});
