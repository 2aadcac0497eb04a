// The stored schema, as dlt keeps it: <dataset>._dlt_version holds dlt's schema JSON (engine 11, dlt's
// version hash), one row per change, written in the load's transaction and named by every _dlt_loads
// row. It is what the pipeline owns: a dataset dlt made is read from it, and one an earlier version of
// this port made (no _dlt_version) has its child tables recognised once by their rows.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { runFlight, schemaVersionHash, type DltSchema, type Env, type Row as SourceRow } from '../flight.ts';
import { columns, dbFile, query, tempDir, type Row } from './support.ts';

const DS = 'flights_demo_dlt';
const quiet = (): void => {};
/** dlt 1.26.0's own `_dlt_version.schema` text after one merge load of `issues` with a `labels` list (the dlt oracle). */
const DLT_SCHEMA_TEXT = readFileSync(
  new URL('./fixtures/dlt/schema-issues-merge.json', import.meta.url),
  'utf8',
).trim();

const run = (dir: string, rows: SourceRow[], env: Env = {}) =>
  runFlight({
    env: { LOCAL_DATA_DIR: dir, TABLE_NAME: 't', PRIMARY_KEY: 'id', ...env },
    source: () => rows,
    log: quiet,
  });
async function ok(dir: string, rows: SourceRow[], env: Env = {}) {
  const summary = await run(dir, rows, env);
  assert.equal(summary.status, 'succeeded', summary.error);
  return summary;
}
const sql = (dir: string, text: string): Promise<Row[]> => query(dbFile(dir), text);
type Version = { version: unknown; version_hash: unknown; schema_name: unknown; engine_version: unknown };
async function versions(dir: string): Promise<(Version & { parsed: DltSchema })[]> {
  const rows = await sql(dir, `SELECT * FROM ${DS}._dlt_version ORDER BY version`);
  return rows.map((r) => ({ ...(r as Version), parsed: JSON.parse(String(r.schema)) as DltSchema }));
}

describe('_dlt_version', () => {
  test("dlt's hash: the port's version hash of dlt's own stored schema is the hash dlt gave it", () => {
    const schema = JSON.parse(DLT_SCHEMA_TEXT) as DltSchema;
    assert.equal(schemaVersionHash(schema), schema.version_hash);
    assert.equal(schema.version_hash, 'bHky+6i0mU8v9YSRL4HgbfpuWllujRMZoIBuzOya424=');
  });

  test('a run stores a schema naming every table and column it created, with parents and hints; _dlt_loads names it', async (t) => {
    const dir = await tempDir(t);
    const summary = await ok(dir, [{ id: 1, name: 'a', owner: { login: 'x' }, tags: ['p', 'q'], n: 'many' }]);
    const [v, ...more] = await versions(dir);
    assert.equal(more.length, 0);
    assert.equal(v!.schema_name, 'flights_dlt_ingest');
    assert.equal(v!.engine_version, 11n);
    assert.equal(v!.version, 1n);
    const schema = v!.parsed;
    assert.equal(schema.version_hash, v!.version_hash);
    assert.equal(schemaVersionHash(schema), schema.version_hash, 'the stored hash is the content hash');
    for (const table of ['t', 't__tags']) {
      const physical = (await columns(dbFile(dir), DS, table)).map((c) => c.name);
      assert.deepEqual(Object.keys(schema.tables[table]!.columns), physical, `${table}: every column, in order`);
    }
    assert.equal(schema.tables.t__tags!.parent, 't');
    assert.equal(schema.tables.t!.write_disposition, 'merge');
    assert.equal(schema.tables.t!['x-merge-strategy'], undefined, 'as dlt: only a strategy given is recorded');
    assert.deepEqual(schema.tables.t!.columns.id, {
      name: 'id',
      data_type: 'bigint',
      nullable: false,
      primary_key: true,
    });
    assert.deepEqual(schema.tables.t!.columns._dlt_id, {
      name: '_dlt_id',
      data_type: 'text',
      nullable: false,
      unique: true,
      row_key: true,
    });
    assert.equal(schema.tables.t__tags!.columns._dlt_parent_id!.parent_key, true);
    assert.equal(schema.tables.t__tags!.columns._dlt_root_id!.root_key, true);
    assert.deepEqual(Object.keys(schema.tables).sort(), [
      '_dlt_loads',
      '_dlt_pipeline_state',
      '_dlt_version',
      't',
      't__tags',
    ]);
    const loads = await sql(dir, `SELECT load_id, schema_version_hash FROM ${DS}._dlt_loads`);
    assert.deepEqual(loads, [{ load_id: summary.loadId, schema_version_hash: v!.version_hash }]);
  });

  test('a new row only when the schema changes: new version, previous hash kept, variant flagged; a failed run stores none', async (t) => {
    const dir = await tempDir(t);
    const env = { WRITE_DISPOSITION: 'append' };
    await ok(dir, [{ id: 1, n: 5 }], env);
    await ok(dir, [{ id: 2, n: 6 }], env);
    assert.equal((await versions(dir)).length, 1, 'same shape: no new version');
    await ok(dir, [{ id: 3, n: 'many', extra: true }], env);
    await ok(
      dir,
      [
        { id: 4, brand_new: 1 },
        { id: 5, tags: ['x'] },
      ],
      { ...env, BATCH_ROWS: '1' },
    ); // version 3
    const broken = await runFlight({
      env: { LOCAL_DATA_DIR: dir, TABLE_NAME: 't', ...env },
      source: function* () {
        yield { id: 6, never_stored: 1 };
        throw new Error('source broke');
      },
      log: quiet,
    });
    assert.equal(broken.status, 'failed');
    const all = await versions(dir);
    assert.deepEqual(
      all.map((v) => v.version),
      [1n, 2n, 3n],
    );
    assert.equal(all[1]!.parsed.previous_hashes![0], all[0]!.version_hash);
    assert.equal(all[2]!.parsed.previous_hashes![0], all[1]!.version_hash);
    assert.deepEqual(all[1]!.parsed.tables.t!.columns.n__v_text, {
      name: 'n__v_text',
      data_type: 'text',
      nullable: true,
      variant: true,
    });
    assert.ok(!('never_stored' in all[2]!.parsed.tables.t!.columns), 'the failed run stored nothing');
    const hashes = await sql(dir, `SELECT DISTINCT schema_version_hash AS h FROM ${DS}._dlt_loads ORDER BY 1`);
    assert.deepEqual(hashes.map((r) => r.h).sort(), all.map((v) => v.version_hash).sort());
  });
});

describe('a dataset dlt made is read from its _dlt_version', () => {
  test("dlt's child table is the pipeline's own: merge replaces its rows, the schema evolves from dlt's", async (t) => {
    const dir = await tempDir(t);
    const dlt = JSON.parse(DLT_SCHEMA_TEXT) as DltSchema;
    // What dlt 1.26.0 leaves in DuckDB after that load (its DDL and rows, ids as dlt makes them).
    await query(
      dbFile(dir),
      `CREATE SCHEMA ${DS};
       CREATE TABLE ${DS}._dlt_version (version BIGINT NOT NULL, engine_version BIGINT NOT NULL,
         inserted_at TIMESTAMPTZ NOT NULL, schema_name VARCHAR NOT NULL, version_hash VARCHAR NOT NULL, schema VARCHAR NOT NULL);
       CREATE TABLE ${DS}._dlt_loads (load_id VARCHAR NOT NULL, schema_name VARCHAR, status BIGINT NOT NULL,
         inserted_at TIMESTAMPTZ NOT NULL, schema_version_hash VARCHAR);
       INSERT INTO ${DS}._dlt_loads VALUES ('1700000000.000001', 'oracle', 0, now(), '${dlt.version_hash}');
       CREATE TABLE ${DS}.issues (id BIGINT NOT NULL, title VARCHAR, _dlt_load_id VARCHAR NOT NULL, _dlt_id VARCHAR NOT NULL);
       INSERT INTO ${DS}.issues VALUES (1, 'first', '1700000000.000001', 'root-1'), (2, 'second', '1700000000.000001', 'root-2');
       CREATE TABLE ${DS}.issues__labels (name VARCHAR, _dlt_root_id VARCHAR NOT NULL, _dlt_parent_id VARCHAR NOT NULL,
         _dlt_list_idx BIGINT NOT NULL, _dlt_id VARCHAR NOT NULL);
       INSERT INTO ${DS}.issues__labels VALUES ('bug', 'root-1', 'root-1', 0, 'c1'), ('ui', 'root-1', 'root-1', 1, 'c2');`,
      { write: true },
    );
    await query(dbFile(dir), `INSERT INTO ${DS}._dlt_version VALUES (2, 11, now(), 'oracle', $1, $2)`, {
      write: true,
      params: [dlt.version_hash, DLT_SCHEMA_TEXT],
    });
    const env = { TABLE_NAME: 'issues', PIPELINE_NAME: 'oracle', PRIMARY_KEY: 'id' };
    await ok(dir, [{ id: 1, title: 'first, edited', labels: [{ name: 'docs' }], milestone: 'v2' }], env);
    assert.deepEqual(await sql(dir, `SELECT name FROM ${DS}.issues__labels ORDER BY name`), [{ name: 'docs' }]);
    assert.deepEqual(await sql(dir, `SELECT id, title FROM ${DS}.issues ORDER BY id`), [
      { id: 1n, title: 'first, edited' },
      { id: 2n, title: 'second' },
    ]);
    const [, next] = await versions(dir);
    assert.equal(next!.version, 3n);
    assert.equal(next!.parsed.previous_hashes![0], dlt.version_hash);
    assert.deepEqual(Object.keys(next!.parsed.tables.issues!.columns), [
      'id',
      'title',
      '_dlt_load_id',
      '_dlt_id',
      'milestone',
    ]);
    assert.deepEqual(next!.parsed.settings, dlt.settings, "dlt's settings are kept");
    assert.equal(schemaVersionHash(next!.parsed), next!.version_hash);
  });
});

describe('a dataset an earlier version of this port made (no _dlt_version)', () => {
  test('its child tables are recognised once by their parent ids; a look-alike table is left alone', async (t) => {
    const dir = await tempDir(t);
    await ok(dir, [{ id: 1, tags: ['a', 'b'] }], { WRITE_DISPOSITION: 'replace' });
    // As the earlier port left it: no _dlt_version; a hand-made copy under a child-like name.
    await query(
      dbFile(dir),
      `DROP TABLE ${DS}._dlt_version;
       CREATE TABLE ${DS}.t__copy AS SELECT 'z' AS value, 'not-a-parent' AS _dlt_parent_id, 0 AS _dlt_list_idx, 'c' AS _dlt_id;`,
      { write: true },
    );
    await ok(dir, [{ id: 2, tags: ['c'] }], { WRITE_DISPOSITION: 'replace' });
    assert.deepEqual(await sql(dir, `SELECT value FROM ${DS}.t__tags`), [{ value: 'c' }]);
    assert.deepEqual(await sql(dir, `SELECT value FROM ${DS}.t__copy`), [{ value: 'z' }]);
    const [v] = await versions(dir);
    assert.deepEqual(
      Object.keys(v!.parsed.tables)
        .filter((n) => !n.startsWith('_dlt'))
        .sort(),
      ['t', 't__tags'],
    );
  });
});
