// What the pipeline owns, and the data-loss defects found by adversarial testing (issue 10): a
// replace, a merge delete or a schema change touches only the tables of the pipeline's stored schema
// (`_dlt_version`), never a table that merely shares a name prefix; row identity can't reach another
// pipeline's rows; merge writes every value exactly once; two runs on one file never both win.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { symlinkSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { runFlight, type Env, type Row as SourceRow, type RunSummary } from '../flight.ts';
import { dbFile, query, tempDir, type Row } from './support.ts';

const DS = 'flights_demo_dlt';
const quiet = (): void => {};

const run = (dir: string, rows: SourceRow[] | (() => SourceRow[]), env: Env = {}): Promise<RunSummary> =>
  runFlight({
    env: { LOCAL_DATA_DIR: dir, TABLE_NAME: 't', PRIMARY_KEY: 'id', ...env },
    source: typeof rows === 'function' ? rows : () => rows,
    log: quiet,
  });
async function ok(dir: string, rows: SourceRow[], env: Env = {}): Promise<RunSummary> {
  const summary = await run(dir, rows, env);
  assert.equal(summary.status, 'succeeded', summary.error);
  return summary;
}
const sql = (dir: string, text: string): Promise<Row[]> => query(dbFile(dir), text);
const exec = (dir: string, text: string): Promise<Row[]> => query(dbFile(dir), text, { write: true });

describe('replace touches only the tables the pipeline owns', () => {
  test('hand-made t__backup and t__notes, and another pipeline whose TABLE_NAME is t__archive, keep their rows', async (t) => {
    const dir = await tempDir(t);
    await ok(dir, [{ id: 1, tags: ['a'] }], { WRITE_DISPOSITION: 'replace' });
    await exec(
      dir,
      `CREATE TABLE ${DS}.t__backup AS SELECT * FROM ${DS}.t; CREATE TABLE ${DS}.t__notes (note VARCHAR);
                     INSERT INTO ${DS}.t__notes VALUES ('keep me')`,
    );
    await ok(dir, [{ id: 9, items: [1, 2] }], {
      TABLE_NAME: 't__archive',
      PIPELINE_NAME: 'other',
      WRITE_DISPOSITION: 'append',
    });

    await ok(dir, [{ id: 2, tags: ['b', 'c'] }], { WRITE_DISPOSITION: 'replace' });

    assert.deepEqual(await sql(dir, `SELECT id FROM ${DS}.t`), [{ id: 2n }]);
    assert.deepEqual(await sql(dir, `SELECT value FROM ${DS}.t__tags ORDER BY value`), [
      { value: 'b' },
      { value: 'c' },
    ]);
    assert.deepEqual(await sql(dir, `SELECT id FROM ${DS}.t__backup`), [{ id: 1n }]);
    assert.deepEqual(await sql(dir, `SELECT note FROM ${DS}.t__notes`), [{ note: 'keep me' }]);
    assert.deepEqual(await sql(dir, `SELECT id FROM ${DS}.t__archive`), [{ id: 9n }]);
    assert.deepEqual(await sql(dir, `SELECT count(*) AS n FROM ${DS}.t__archive__items`), [{ n: 2n }]);
  });

  test('a run that would create a child table where a table it does not own stands fails, naming it; nothing changes', async (t) => {
    const dir = await tempDir(t);
    await ok(dir, [{ id: 1 }]);
    await exec(dir, `CREATE TABLE ${DS}.t__notes (note VARCHAR); INSERT INTO ${DS}.t__notes VALUES ('mine')`);
    const failed = await run(dir, [{ id: 2, notes: ['x'] }]);
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /t__notes.*exists.*not.*(own|schema)/i);
    assert.deepEqual(await sql(dir, `SELECT * FROM ${DS}.t__notes`), [{ note: 'mine' }]);
    assert.deepEqual(await sql(dir, `SELECT id FROM ${DS}.t`), [{ id: 1n }]);
  });
});

describe('merge finds child rows only through its own tables and keys', () => {
  test('upsert with a nested primary key (owner__id): each key keeps its own id and children', async (t) => {
    const dir = await tempDir(t);
    const env = { MERGE_STRATEGY: 'upsert', PRIMARY_KEY: 'owner__id' };
    await ok(
      dir,
      [
        { owner: { id: 1 }, tags: ['a'] },
        { owner: { id: 2 }, tags: ['b'] },
      ],
      env,
    );
    await ok(dir, [{ owner: { id: 1 }, tags: ['c'] }], env);
    const roots = await sql(dir, `SELECT owner__id, _dlt_id FROM ${DS}.t ORDER BY owner__id`);
    assert.equal(roots.length, 2);
    assert.notEqual(roots[0]!._dlt_id, roots[1]!._dlt_id, 'each key hashes to its own _dlt_id');
    assert.deepEqual(
      await sql(
        dir,
        `SELECT r.owner__id, c.value FROM ${DS}.t__tags c JOIN ${DS}.t r ON c._dlt_root_id = r._dlt_id ORDER BY 1`,
      ),
      [
        { owner__id: 1n, value: 'c' },
        { owner__id: 2n, value: 'b' },
      ],
    );
  });

  test('a compound key with a nested part (id, owner__login) works the same', async (t) => {
    const dir = await tempDir(t);
    const env = { MERGE_STRATEGY: 'upsert', PRIMARY_KEY: 'id,owner__login' };
    await ok(
      dir,
      [
        { id: 1, owner: { login: 'ann' }, tags: ['a'] },
        { id: 1, owner: { login: 'bob' }, tags: ['b'] },
      ],
      env,
    );
    await ok(dir, [{ id: 1, owner: { login: 'ann' }, tags: ['c'] }], env);
    assert.deepEqual(await sql(dir, `SELECT value FROM ${DS}.t__tags ORDER BY value`), [
      { value: 'b' },
      { value: 'c' },
    ]);
  });

  test("an upsert on t re-sending id=1 keeps the rows of pipeline t__x's child table t__x__items", async (t) => {
    const dir = await tempDir(t);
    const other = { TABLE_NAME: 't__x', PIPELINE_NAME: 'other', MERGE_STRATEGY: 'upsert' };
    await ok(dir, [{ id: 1, items: [1, 2] }], other);
    await ok(dir, [{ id: 1, tags: ['a'] }], { MERGE_STRATEGY: 'upsert' });
    await ok(dir, [{ id: 1, tags: ['b'] }], { MERGE_STRATEGY: 'upsert' });
    assert.deepEqual(await sql(dir, `SELECT value FROM ${DS}.t__x__items ORDER BY value`), [
      { value: 1n },
      { value: 2n },
    ]);
    assert.deepEqual(await sql(dir, `SELECT value FROM ${DS}.t__tags`), [{ value: 'b' }]);
  });

  test('delete-insert: duplicates carrying the same _dlt_id (rows copied from a dlt table) load their children once', async (t) => {
    const dir = await tempDir(t);
    const row = { _dlt_id: 'copied-id-0001', id: 1, tags: ['a', 'b'] };
    await ok(dir, [row, { ...row }]);
    assert.deepEqual(await sql(dir, `SELECT value FROM ${DS}.t__tags ORDER BY value`), [
      { value: 'a' },
      { value: 'b' },
    ]);
    await ok(dir, [row, { ...row }]);
    assert.deepEqual(await sql(dir, `SELECT value FROM ${DS}.t__tags ORDER BY value`), [
      { value: 'a' },
      { value: 'b' },
    ]);
  });
});

describe('upsert replaces the whole row, as dlt does', () => {
  test('a value that drifted to a variant column clears the original column', async (t) => {
    const dir = await tempDir(t);
    const env = { MERGE_STRATEGY: 'upsert' };
    await ok(
      dir,
      [
        { id: 1, stars: 10 },
        { id: 2, stars: 20 },
      ],
      env,
    );
    await ok(dir, [{ id: 1, stars: 'many' }], env);
    assert.deepEqual(await sql(dir, `SELECT id, stars, stars__v_text FROM ${DS}.t ORDER BY id`), [
      { id: 1n, stars: null, stars__v_text: 'many' },
      { id: 2n, stars: 20n, stars__v_text: null },
    ]);
  });

  test('an object set to null clears its flattened columns', async (t) => {
    const dir = await tempDir(t);
    const env = { MERGE_STRATEGY: 'upsert' };
    await ok(dir, [{ id: 1, owner: { login: 'ann' } }], env);
    await ok(dir, [{ id: 1, owner: null }], env);
    assert.deepEqual(await sql(dir, `SELECT id, owner__login FROM ${DS}.t`), [{ id: 1n, owner__login: null }]);
  });

  test('a column the run did not bring becomes NULL on the updated row', async (t) => {
    const dir = await tempDir(t);
    const env = { MERGE_STRATEGY: 'upsert' };
    await ok(dir, [{ id: 1, a: 'x', b: 'y' }], env);
    await ok(dir, [{ id: 1, a: 'x2' }], env);
    assert.deepEqual(await sql(dir, `SELECT id, a, b FROM ${DS}.t`), [{ id: 1n, a: 'x2', b: null }]);
  });
});

describe('a source key named like a variant column', () => {
  test('text: {stars: "many", stars__v_text: "other"} into a BIGINT stars fails, naming both keys', async (t) => {
    const dir = await tempDir(t);
    await ok(dir, [{ id: 1, stars: 10 }], { WRITE_DISPOSITION: 'append' });
    const failed = await run(dir, [{ id: 2, stars: 'many', stars__v_text: 'other' }], { WRITE_DISPOSITION: 'append' });
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /"stars".*"stars__v_text".*stars__v_text|"stars__v_text".*"stars"/);
    assert.deepEqual(await sql(dir, `SELECT id FROM ${DS}.t`), [{ id: 1n }]);
  });

  test('double: {n: 2.5, n__v_double: 3.5} into a BIGINT n fails instead of keeping one silently', async (t) => {
    const dir = await tempDir(t);
    await ok(dir, [{ id: 1, n: 1 }], { WRITE_DISPOSITION: 'append' });
    const failed = await run(dir, [{ id: 2, n: 2.5, n__v_double: 3.5 }], { WRITE_DISPOSITION: 'append' });
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /n__v_double/);
  });
});

describe('two runs in one process on one file', () => {
  test('through a symlinked LOCAL_DATA_DIR: both runs are kept (the second waits for the first)', async (t) => {
    const dir = await tempDir(t);
    const data = join(dir, 'data');
    mkdirSync(data);
    symlinkSync(data, join(dir, 'link'));
    const slow = async function* (id: number) {
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 50));
        yield { id: id * 10 + i };
      }
    };
    const env = { TABLE_NAME: 't', PRIMARY_KEY: 'id', WRITE_DISPOSITION: 'append', LOCK_TIMEOUT_S: '20' };
    const [a, b] = await Promise.all([
      runFlight({ env: { ...env, LOCAL_DATA_DIR: data }, source: () => slow(1), log: quiet }),
      runFlight({ env: { ...env, LOCAL_DATA_DIR: join(dir, 'link') }, source: () => slow(2), log: quiet }),
    ]);
    assert.equal(a.status, 'succeeded', a.error);
    assert.equal(b.status, 'succeeded', b.error);
    assert.deepEqual(
      (await sql(data, `SELECT id FROM ${DS}.t ORDER BY id`)).map((r) => r.id),
      [10n, 11n, 12n, 20n, 21n, 22n],
    );
    assert.deepEqual(await sql(data, `SELECT count(*) AS n FROM main.dlt_ingest_runs WHERE status = 'succeeded'`), [
      { n: 2n },
    ]);
    assert.deepEqual(await sql(data, `SELECT count(*) AS n FROM ${DS}._dlt_loads`), [{ n: 2n }]);
  });
});
