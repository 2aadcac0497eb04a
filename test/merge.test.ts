// Merge strategies (MERGE_STRATEGY=delete-insert | upsert | scd2) and DELETE_COLUMN, each on a
// sequence of runs with inserts, updates, deletes and duplicate keys inside one run, asserting the
// exact table contents after every run; invalid combinations are config errors (exit 2).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { runFlight, type Env, type Row as SourceRow, type RunSummary } from '../flight.ts';
import { columns, dbFile, listDir, mentions, query, tempDir, type Row } from './support.ts';

const DATASET = 'flights_demo_dlt';
const quiet = (): void => {};

function envFor(dir: string, extra: Env = {}): Env {
  return { LOCAL_DATA_DIR: dir, TABLE_NAME: 'items', PRIMARY_KEY: 'id', ...extra };
}
/** One run loading exactly `rows`; it must succeed. */
async function load(env: Env, rows: SourceRow[]): Promise<RunSummary> {
  const summary = await runFlight({ env, source: () => rows, log: quiet });
  assert.equal(summary.status, 'succeeded', summary.error);
  assert.equal(summary.exitCode, 0);
  return summary;
}
async function sql(dir: string, text: string): Promise<Row[]> {
  return query(dbFile(dir), text);
}
/** dlt's digest128: standard base64 of SHAKE-128 over `bytes` bytes, '=' stripped. */
const digest128 = (text: string, bytes = 10) =>
  createHash('shake128', { outputLength: bytes }).update(text).digest('base64').replace(/=+$/, '');

/** Root rows as [id, name, deleted, load]: `load` is the index of the run (1-based) whose load id the row carries. */
async function rootRows(dir: string, loads: RunSummary[], extra = ''): Promise<unknown[][]> {
  const rows = await sql(
    dir,
    `SELECT id, name, deleted${extra ? `, ${extra}` : ''}, _dlt_load_id FROM ${DATASET}.items ORDER BY id`,
  );
  return rows.map((r) => [
    ...Object.entries(r)
      .filter(([k]) => k !== '_dlt_load_id')
      .map(([, v]) => v),
    runOf(loads, r._dlt_load_id),
  ]);
}
/** `L<n>` for the n-th run's load id (1-based), or the raw value when it is no run's. */
function runOf(loads: RunSummary[], loadId: unknown): string {
  const i = loads.findIndex((s) => s.loadId === loadId);
  return i < 0 ? `?${String(loadId)}` : `L${i + 1}`;
}

// ─── delete-insert ──────────────────────────────────────────────────────────────────────────────

describe('merge: delete-insert', () => {
  test('inserts, replaces rows by key, duplicates in a run collapse to the last, DELETE_COLUMN=true removes the key', async (t) => {
    const dir = await tempDir(t);
    const env = envFor(dir, { MERGE_STRATEGY: 'delete-insert', DELETE_COLUMN: 'deleted' });
    const runs: RunSummary[] = [];

    runs.push(
      await load(env, [
        { id: 1, name: 'a' },
        { id: 2, name: 'b' },
        { id: 3, name: 'c', deleted: false },
        { id: 2, name: 'b2' },
      ]),
    );
    assert.equal(runs[0]!.rowsLoaded, 3);
    assert.deepEqual(await rootRows(dir, runs), [
      [1n, 'a', null, 'L1'],
      [2n, 'b2', null, 'L1'],
      [3n, 'c', false, 'L1'],
    ]);

    runs.push(
      await load(env, [
        { id: 1, name: 'a1' }, // update
        { id: 4, name: 'd' }, // insert
        { id: 3, deleted: true }, // delete
        { id: 5, name: 'e', deleted: true }, // delete of an unknown key: nothing
        { id: 4, name: 'd2' }, // duplicate: the last wins
      ]),
    );
    assert.deepEqual(await rootRows(dir, runs), [
      [1n, 'a1', null, 'L2'],
      [2n, 'b2', null, 'L1'],
      [4n, 'd2', null, 'L2'],
    ]);

    runs.push(
      await load(env, [
        { id: 1, name: 'x' },
        { id: 1, deleted: true }, // the last of the key is a delete: the key goes
        { id: 2, deleted: true },
        { id: 2, name: 'b3', deleted: false }, // the last is a keep: replaced
      ]),
    );
    assert.deepEqual(await rootRows(dir, runs), [
      [2n, 'b3', false, 'L3'],
      [4n, 'd2', null, 'L2'],
    ]);
    // A replaced row is a new row: columns it does not bring are NULL (here: name).
    runs.push(await load(env, [{ id: 4, deleted: false }]));
    assert.deepEqual(await rootRows(dir, runs), [
      [2n, 'b3', false, 'L3'],
      [4n, null, false, 'L4'],
    ]);
  });

  test('child rows (lists, nested lists) are replaced with their parent and removed with a deleted key', async (t) => {
    const dir = await tempDir(t);
    const env = envFor(dir, { DELETE_COLUMN: 'deleted' }); // MERGE_STRATEGY left to its default
    await load(env, [
      { id: 1, tags: ['x', 'y'], events: [{ kind: 'k1', labels: ['l1', 'l2'] }] },
      {
        id: 2,
        tags: ['z'],
        events: [
          { kind: 'k2', labels: ['l3'] },
          { kind: 'k2b', labels: [] },
        ],
      },
    ]);
    assert.deepEqual(await tree(dir), {
      tags: [
        [1n, 'x'],
        [1n, 'y'],
        [2n, 'z'],
      ],
      events: [
        [1n, 'k1', 'l1'],
        [1n, 'k1', 'l2'],
        [2n, 'k2', 'l3'],
        [2n, 'k2b', null],
      ],
      counts: { tags: 3n, events: 3n, labels: 3n },
    });

    await load(env, [
      { id: 1, tags: ['w'], events: [] }, // lists replaced, an empty list empties them
      { id: 2, deleted: true }, // its children and grandchildren go
      { id: 3, tags: ['p'], events: [{ kind: 'first', labels: ['gone'] }] },
      { id: 3, tags: ['q', 'r'], events: [{ kind: 'k3', labels: ['l4'] }] }, // duplicate: only the last row's children
    ]);
    assert.deepEqual(await tree(dir), {
      tags: [
        [1n, 'w'],
        [3n, 'q'],
        [3n, 'r'],
      ],
      events: [[3n, 'k3', 'l4']],
      counts: { tags: 3n, events: 1n, labels: 1n },
    });

    await load(env, [{ id: 1, name: 'no lists now', deleted: false }]); // a row without its lists loses its children
    assert.deepEqual(await tree(dir), {
      tags: [
        [3n, 'q'],
        [3n, 'r'],
      ],
      events: [[3n, 'k3', 'l4']],
      counts: { tags: 2n, events: 1n, labels: 1n },
    });
    // Every child row points at its root row.
    const strays = await sql(
      dir,
      `SELECT count(*) AS n FROM (SELECT _dlt_root_id FROM ${DATASET}.items__tags UNION ALL SELECT _dlt_root_id FROM ${DATASET}.items__events
         UNION ALL SELECT _dlt_root_id FROM ${DATASET}.items__events__labels) WHERE _dlt_root_id NOT IN (SELECT _dlt_id FROM ${DATASET}.items)`,
    );
    assert.equal(strays[0]!.n, 0n);
  });
});

/** The child rows reachable from root rows, by root id, plus the row count of each child table (orphans would show there). */
async function tree(dir: string): Promise<{ tags: unknown[][]; events: unknown[][]; counts: Record<string, unknown> }> {
  const tags = await sql(
    dir,
    `SELECT p.id, c.value FROM ${DATASET}.items p JOIN ${DATASET}.items__tags c ON c._dlt_parent_id = p._dlt_id ORDER BY p.id, c._dlt_list_idx`,
  );
  const events = await sql(
    dir,
    `SELECT p.id, e.kind, l.value FROM ${DATASET}.items p JOIN ${DATASET}.items__events e ON e._dlt_parent_id = p._dlt_id
     LEFT JOIN ${DATASET}.items__events__labels l ON l._dlt_parent_id = e._dlt_id ORDER BY p.id, e._dlt_list_idx, l._dlt_list_idx`,
  );
  const counts = await sql(
    dir,
    `SELECT (SELECT count(*) FROM ${DATASET}.items__tags) AS tags, (SELECT count(*) FROM ${DATASET}.items__events) AS events,
            (SELECT count(*) FROM ${DATASET}.items__events__labels) AS labels`,
  );
  return {
    tags: tags.map((r) => Object.values(r)),
    events: events.map((r) => Object.values(r)),
    counts: { ...counts[0] },
  };
}

// ─── upsert ─────────────────────────────────────────────────────────────────────────────────────

describe('merge: upsert', () => {
  const keyId = (id: number) => digest128(`{"id":${id}}`); // dlt: get_row_hash(row, subset=primary key)

  test('updates matching keys in place, inserts new ones, _dlt_id is the key hash (stable), DELETE_COLUMN removes, duplicates collapse to the last (dlt requires unique keys)', async (t) => {
    const dir = await tempDir(t);
    const env = envFor(dir, { MERGE_STRATEGY: 'upsert', DELETE_COLUMN: 'deleted' });
    const runs: RunSummary[] = [];
    const rows = () => rootRows(dir, runs, 'score, _dlt_id');

    runs.push(
      await load(env, [
        { id: 1, name: 'a', score: 1 },
        { id: 2, name: 'b', score: 2 },
        { id: 3, name: 'c', score: 3, deleted: false },
      ]),
    );
    assert.deepEqual(await rows(), [
      [1n, 'a', null, 1n, keyId(1), 'L1'],
      [2n, 'b', null, 2n, keyId(2), 'L1'],
      [3n, 'c', false, 3n, keyId(3), 'L1'],
    ]);

    runs.push(
      await load(env, [
        { id: 1, name: 'a1', score: 10 }, // update
        { id: 4, name: 'd', score: 4 }, // insert
        { id: 3, deleted: true }, // delete
        { id: 5, name: 'e', score: 5, deleted: true }, // delete of an unknown key: not inserted
        { id: 4, name: 'd2', score: 40 }, // duplicate: the last wins
      ]),
    );
    assert.deepEqual(await rows(), [
      [1n, 'a1', null, 10n, keyId(1), 'L2'],
      [2n, 'b', null, 2n, keyId(2), 'L1'],
      [4n, 'd2', null, 40n, keyId(4), 'L2'],
    ]);

    runs.push(
      await load(env, [
        { id: 1, name: 'x', score: 0 },
        { id: 1, deleted: true }, // the last of the key is a delete
        { id: 2, deleted: true },
        { id: 2, name: 'b3', score: 20, deleted: false }, // the last is a keep
        { id: 6, name: 'f', score: 6, deleted: false },
      ]),
    );
    assert.deepEqual(await rows(), [
      [2n, 'b3', false, 20n, keyId(2), 'L3'],
      [4n, 'd2', null, 40n, keyId(4), 'L2'],
      [6n, 'f', false, 6n, keyId(6), 'L3'],
    ]);
  });

  test('an updated row is replaced whole, as dlt does: a column the row lacks becomes NULL, whether or not the run brings it', async (t) => {
    const dir = await tempDir(t);
    const env = envFor(dir, { MERGE_STRATEGY: 'upsert' });
    const rows = async () =>
      (await sql(dir, `SELECT id, name, score FROM ${DATASET}.items ORDER BY id`)).map((r) => Object.values(r));
    await load(env, [
      { id: 1, name: 'a', score: 1 },
      { id: 2, name: 'b', score: 2 },
    ]);
    await load(env, [
      { id: 1, name: 'a2' },
      { id: 3, name: 'c' },
    ]); // no row brings score
    assert.deepEqual(await rows(), [
      [1n, 'a2', null],
      [2n, 'b', 2n],
      [3n, 'c', null],
    ]);
    await load(env, [
      { id: 1, score: 5 },
      { id: 2, name: 'b3' },
    ]); // both columns come with the run: a row lacking one gets NULL
    assert.deepEqual(await rows(), [
      [1n, null, 5n],
      [2n, 'b3', null],
      [3n, 'c', null],
    ]);
  });

  test('an explicit null in an updated row clears the column', async (t) => {
    const dir = await tempDir(t);
    const env = envFor(dir, { MERGE_STRATEGY: 'upsert' });
    await load(env, [{ id: 1, name: 'a', score: 1 }]);
    await load(env, [{ id: 1, name: 'a', score: null }]);
    assert.deepEqual(
      (await sql(dir, `SELECT id, name, score FROM ${DATASET}.items`)).map((r) => Object.values(r)),
      [[1n, 'a', null]],
    );
  });

  test('child rows of an upserted row are replaced; a deleted key takes its children; child ids follow the stable parent id', async (t) => {
    const dir = await tempDir(t);
    const env = envFor(dir, { MERGE_STRATEGY: 'upsert', DELETE_COLUMN: 'deleted' });
    const childIds = async () =>
      (
        await sql(
          dir,
          `SELECT _dlt_root_id, _dlt_parent_id, _dlt_list_idx, _dlt_id, value FROM ${DATASET}.items__tags ORDER BY _dlt_root_id, _dlt_list_idx`,
        )
      ).map((r) => Object.values(r));
    await load(env, [
      { id: 1, tags: ['x', 'y'], events: [{ kind: 'k1', labels: ['l1'] }] },
      { id: 2, tags: ['z'], events: [{ kind: 'k2', labels: ['l2'] }] },
    ]);
    await load(env, [
      { id: 1, tags: ['w'], events: [{ kind: 'k1b', labels: [] }] },
      { id: 2, deleted: true },
      { id: 3, tags: ['p', 'q'] },
    ]);
    assert.deepEqual(await tree(dir), {
      tags: [
        [1n, 'w'],
        [3n, 'p'],
        [3n, 'q'],
      ],
      events: [[1n, 'k1b', null]],
      counts: { tags: 3n, events: 1n, labels: 0n },
    });
    const tagId = (id: number, idx: number) => digest128(`${keyId(id)}_items__tags_${idx}`);
    assert.deepEqual(
      [...(await childIds())].sort((a, b) => String(a[4]).localeCompare(String(b[4]))),
      [
        [keyId(3), keyId(3), 0n, tagId(3, 0), 'p'],
        [keyId(3), keyId(3), 1n, tagId(3, 1), 'q'],
        [keyId(1), keyId(1), 0n, tagId(1, 0), 'w'],
      ],
    );

    await load(env, [
      { id: 1, name: 'no lists now', deleted: false },
      { id: 3, tags: ['q2'] },
    ]);
    assert.deepEqual(await tree(dir), { tags: [[3n, 'q2']], events: [], counts: { tags: 1n, events: 0n, labels: 0n } });
    assert.deepEqual(await childIds(), [[keyId(3), keyId(3), 0n, tagId(3, 0), 'q2']]);
  });

  test('duplicates of a key inside one run: only the last row and its children are kept', async (t) => {
    const dir = await tempDir(t);
    const env = envFor(dir, { MERGE_STRATEGY: 'upsert' });
    await load(env, [{ id: 1, name: 'old', tags: ['o'] }]);
    await load(env, [
      { id: 1, name: 'first', tags: ['a', 'b'] },
      { id: 2, name: 'two', tags: ['t1', 't2'] },
      { id: 1, name: 'last', tags: ['c'] },
      { id: 2, name: 'two-last', tags: [] },
    ]);
    assert.deepEqual(
      (await sql(dir, `SELECT id, name FROM ${DATASET}.items ORDER BY id`)).map((r) => Object.values(r)),
      [
        [1n, 'last'],
        [2n, 'two-last'],
      ],
    );
    const tags = await sql(
      dir,
      `SELECT _dlt_root_id, value FROM ${DATASET}.items__tags ORDER BY _dlt_root_id, _dlt_list_idx`,
    );
    assert.deepEqual(
      tags.map((r) => Object.values(r)),
      [[keyId(1), 'c']],
    );
  });
});

// ─── scd2 ───────────────────────────────────────────────────────────────────────────────────────

/** The instant a load id names, in microseconds since the epoch (the id is <seconds>.<6 digits>). */
function loadMicros(loadId: string | null): bigint {
  assert.match(loadId ?? '', /^\d+\.\d{6}$/);
  return BigInt(loadId!.replace('.', ''));
}
/** Versions as [id, v, from, to, _dlt_id]: from/to are `L<n>` when they equal the n-th run's load instant to the microsecond. */
async function versions(dir: string, runs: RunSummary[], table = 'items', cols = 'id, v'): Promise<unknown[][]> {
  const rows = await sql(
    dir,
    `SELECT ${cols}, epoch_us(_dlt_valid_from) AS f, epoch_us(_dlt_valid_to) AS t, _dlt_valid_from, _dlt_id FROM ${DATASET}.${table} ORDER BY ${cols}, f`,
  );
  const runIndex = (us: unknown) => runs.findIndex((r) => loadMicros(r.loadId) === us);
  const label = (us: unknown) => (us === null ? null : runIndex(us) < 0 ? `?${String(us)}` : `L${runIndex(us) + 1}`);
  return rows.map((r) => {
    // The same instant as a JS Date: new Date(Number(loadId) * 1000), to the millisecond it can hold.
    const from = r._dlt_valid_from as Date;
    const run = runs[runIndex(r.f)];
    if (run)
      assert.ok(
        Math.abs(from.getTime() - Number(run.loadId) * 1000) < 1,
        `valid_from ${from.toISOString()} is the load id's time`,
      );
    return [...cols.split(',').map((c) => r[c.trim()]), label(r.f), label(r.t), r._dlt_id];
  });
}

describe('merge: scd2', () => {
  const rowHash = (row: Record<string, string | number | boolean>) =>
    digest128(
      `{${Object.keys(row)
        .sort()
        .map((k) => `${JSON.stringify(k)}:${JSON.stringify(row[k])}`)
        .join(',')}}`,
    );

  test(
    'history: changed rows close and reopen at one instant, missing rows retire, a returning row gets a new version, ' +
      'a row marked deleted is a version (dlt 1.26); no PRIMARY_KEY needed',
    async (t) => {
      const dir = await tempDir(t);
      // PRIMARY_KEY unset: with scd2 there is none (the demo's `repo` only stands in for the key strategies).
      const env: Env = { LOCAL_DATA_DIR: dir, TABLE_NAME: 'items', MERGE_STRATEGY: 'scd2', DELETE_COLUMN: 'deleted' };
      const runs: RunSummary[] = [];
      const A = { id: 1, v: 'a' };
      const B = { id: 2, v: 'b' };
      const B2 = { id: 2, v: 'b2' };
      const C = { id: 3, v: 'c' };
      const D = { id: 4, v: 'd' };

      runs.push(await load(env, [A, B, C, { ...A }])); // an exact duplicate is one version
      assert.deepEqual(
        (await columns(dbFile(dir), DATASET, 'items'))
          .filter((c) => c.name.startsWith('_dlt_valid'))
          .map((c) => [c.name, c.type]),
        [
          ['_dlt_valid_from', 'TIMESTAMP WITH TIME ZONE'],
          ['_dlt_valid_to', 'TIMESTAMP WITH TIME ZONE'],
        ],
      );
      assert.deepEqual(await versions(dir, runs), [
        [1n, 'a', 'L1', null, rowHash(A)],
        [2n, 'b', 'L1', null, rowHash(B)],
        [3n, 'c', 'L1', null, rowHash(C)],
      ]);

      runs.push(await load(env, [A, B2, D])); // B changes, C is missing, D is new
      assert.deepEqual(await versions(dir, runs), [
        [1n, 'a', 'L1', null, rowHash(A)],
        [2n, 'b', 'L1', 'L2', rowHash(B)],
        [2n, 'b2', 'L2', null, rowHash(B2)],
        [3n, 'c', 'L1', 'L2', rowHash(C)],
        [4n, 'd', 'L2', null, rowHash(D)],
      ]);
      const untouched = await sql(dir, `SELECT _dlt_load_id FROM ${DATASET}.items WHERE id = 1`);
      assert.deepEqual(
        untouched.map((r) => r._dlt_load_id),
        [runs[0]!.loadId],
        'an unchanged row is not rewritten',
      );

      // C comes back; D is marked deleted, which dlt 1.26's scd2 takes as a change (test/fixtures/dlt-parity/47_*)
      runs.push(await load(env, [A, B2, C, { ...D, deleted: true }]));
      const afterRun3 = [
        [1n, 'a', 'L1', null, rowHash(A)],
        [2n, 'b', 'L1', 'L2', rowHash(B)],
        [2n, 'b2', 'L2', null, rowHash(B2)],
        [3n, 'c', 'L1', 'L2', rowHash(C)],
        [3n, 'c', 'L3', null, rowHash(C)],
        [4n, 'd', 'L2', 'L3', rowHash(D)],
        [4n, 'd', 'L3', null, rowHash({ ...D, deleted: true })],
      ];
      assert.deepEqual(await versions(dir, runs), afterRun3);
      assert.deepEqual(
        (await sql(dir, `SELECT count(*) AS n FROM ${DATASET}.items WHERE deleted AND _dlt_valid_to IS NULL`))[0]!.n,
        1n,
        'the row marked deleted is the current version',
      );

      runs.push(await load(env, [A, B2, C, { ...D, deleted: true }])); // the same extract again: nothing changes
      assert.deepEqual(await versions(dir, runs), afterRun3);
    },
  );

  test('all validity timestamps written by one run are one instant, the load id time, across loader files', async (t) => {
    const dir = await tempDir(t);
    const env = envFor(dir, { MERGE_STRATEGY: 'scd2', BATCH_ROWS: '40' });
    const rows = (n: number, tag: string) => Array.from({ length: n }, (_, i) => ({ id: i, tag }));
    const r1 = await load(env, rows(300, 'one'));
    const r2 = await load(env, rows(300, 'two'));
    const r3 = await load(env, rows(100, 'two')); // ids 100..299 retire
    const stats = await sql(
      dir,
      `SELECT tag, count(*) AS n, list(DISTINCT epoch_us(_dlt_valid_from)) AS f, list(DISTINCT epoch_us(_dlt_valid_to)) AS t
       FROM ${DATASET}.items GROUP BY tag, _dlt_valid_to IS NULL ORDER BY tag, n DESC`,
    );
    const [l1, l2, l3] = [r1, r2, r3].map((r) => loadMicros(r.loadId));
    assert.deepEqual(
      stats.map((s) => Object.values(s)),
      [
        ['one', 300n, [l1], [l2]],
        ['two', 200n, [l2], [l3]],
        ['two', 100n, [l2], [null]],
      ],
    );
  });

  test("child rows: inserted once per version, kept for history; ids are dlt's (row hash, nested hash test vectors)", async (t) => {
    const dir = await tempDir(t);
    const env = envFor(dir, { TABLE_NAME: 'dim_test', MERGE_STRATEGY: 'scd2', PRIMARY_KEY: '' }); // rows without id
    const runs: RunSummary[] = [];
    runs.push(
      await load(env, [
        { nk: 1, c1: 'foo', c2: [1] },
        { nk: 2, c1: 'bar', c2: [2, 3] },
      ]),
    );
    // tests/load/pipeline/test_scd2.py::test_child_table: row hash and child id of this row.
    const root1 = 'xckkyP06CR5now';
    assert.deepEqual(await versions(dir, runs, 'dim_test', 'nk, c1'), [
      [1n, 'foo', 'L1', null, root1],
      [2n, 'bar', 'L1', null, digest128('{"c1":"bar","c2":[2,3],"nk":2}')],
    ]);
    const children = async () =>
      (
        await sql(
          dir,
          `SELECT _dlt_parent_id, _dlt_list_idx, value, _dlt_id FROM ${DATASET}.dim_test__c2 ORDER BY _dlt_parent_id, _dlt_list_idx`,
        )
      ).map((r) => Object.values(r));
    const root2 = digest128('{"c1":"bar","c2":[2,3],"nk":2}');
    const childId = (parent: string, idx: number) => digest128(`${parent}_dim_test__c2_${idx}`);
    assert.equal(childId(root1, 0), 'DVp8ashfqPeSOA', "dlt's test vector");
    const firstChildren = [
      [root2, 0n, 2n, childId(root2, 0)],
      [root2, 1n, 3n, childId(root2, 1)],
      [root1, 0n, 1n, 'DVp8ashfqPeSOA'],
    ].sort((a, b) => String(a[0]).localeCompare(String(b[0])) || Number(a[1]) - Number(b[1]));
    assert.deepEqual(await children(), firstChildren);

    // A change only in the list is a new version of the row, with its own children; the old ones stay.
    runs.push(
      await load(env, [
        { nk: 1, c1: 'foo', c2: [1, 9] },
        { nk: 2, c1: 'bar', c2: [2, 3] },
      ]),
    );
    const root1b = digest128('{"c1":"foo","c2":[1,9],"nk":1}');
    assert.deepEqual(await versions(dir, runs, 'dim_test', 'nk, c1'), [
      [1n, 'foo', 'L1', 'L2', root1],
      [1n, 'foo', 'L2', null, root1b],
      [2n, 'bar', 'L1', null, root2],
    ]);
    const secondChildren = [
      ...firstChildren,
      [root1b, 0n, 1n, childId(root1b, 0)],
      [root1b, 1n, 9n, childId(root1b, 1)],
    ].sort((a, b) => String(a[0]).localeCompare(String(b[0])) || Number(a[1]) - Number(b[1]));
    assert.deepEqual(await children(), secondChildren);

    // The first version returns: a new root row, its children are not inserted again.
    runs.push(
      await load(env, [
        { nk: 1, c1: 'foo', c2: [1] },
        { nk: 2, c1: 'bar', c2: [2, 3] },
      ]),
    );
    assert.deepEqual(await versions(dir, runs, 'dim_test', 'nk, c1'), [
      [1n, 'foo', 'L1', 'L2', root1],
      [1n, 'foo', 'L2', 'L3', root1b],
      [1n, 'foo', 'L3', null, root1],
      [2n, 'bar', 'L1', null, root2],
    ]);
    assert.deepEqual(await children(), secondChildren);
  });
});

// ─── DELETE_COLUMN details ──────────────────────────────────────────────────────────────────────

describe('merge: DELETE_COLUMN', () => {
  for (const strategy of ['delete-insert', 'upsert'] as const) {
    test(`${strategy}: a non-boolean column deletes on any non-null value; a boolean false keeps; DELETE_COLUMN is snake_cased`, async (t) => {
      const dir = await tempDir(t);
      const rows = async (col: string) =>
        (await sql(dir, `SELECT id, name FROM ${DATASET}.items ORDER BY id`)).map((r) => [r.id, r.name, col]);
      const stamp = envFor(dir, { MERGE_STRATEGY: strategy, DELETE_COLUMN: 'deleted_at' });
      await load(stamp, [
        { id: 1, name: 'a' },
        { id: 2, name: 'b' },
        { id: 3, name: 'c' },
        { id: 4, name: 'd' },
      ]);
      await load(stamp, [
        { id: 1, name: 'a', deleted_at: '2024-05-01T00:00:00Z' }, // a timestamp: deleted
        { id: 2, name: 'b2', deleted_at: null }, // null: kept (updated)
        { id: 5, name: 'e', deleted_at: '2024-05-01T00:00:00Z' }, // unknown key marked deleted: not inserted
      ]);
      assert.deepEqual(await rows('deleted_at'), [
        [2n, 'b2', 'deleted_at'],
        [3n, 'c', 'deleted_at'],
        [4n, 'd', 'deleted_at'],
      ]);

      const flag = envFor(dir, { MERGE_STRATEGY: strategy, DELETE_COLUMN: 'isGone' });
      await load(flag, [
        { id: 2, name: 'b3', isGone: false },
        { id: 3, isGone: true },
        { id: 4, name: 'd2', isGone: null },
      ]);
      assert.deepEqual(await rows('is_gone'), [
        [2n, 'b3', 'is_gone'],
        [4n, 'd2', 'is_gone'],
      ]);
      const stored = await sql(dir, `SELECT id, is_gone FROM ${DATASET}.items ORDER BY id`);
      assert.deepEqual(
        stored.map((r) => [r.id, r.is_gone]),
        [
          [2n, false],
          [4n, null],
        ],
      );
    });
  }

  for (const strategy of ['delete-insert', 'upsert', 'scd2'] as const) {
    test(`${strategy}: a run whose rows lack the DELETE_COLUMN (already in the table) loads normally`, async (t) => {
      const dir = await tempDir(t);
      const env = envFor(dir, { MERGE_STRATEGY: strategy, DELETE_COLUMN: 'deleted' });
      await load(env, [
        { id: 1, name: 'a', deleted: false },
        { id: 2, name: 'b' },
      ]);
      await load(env, [
        { id: 1, name: 'a2' },
        { id: 2, name: 'b' },
        { id: 3, name: 'c' },
      ]);
      const active = strategy === 'scd2' ? 'WHERE _dlt_valid_to IS NULL' : '';
      const rows = await sql(dir, `SELECT id, name FROM ${DATASET}.items ${active} ORDER BY id`);
      assert.deepEqual(
        rows.map((r) => [r.id, r.name]),
        [
          [1n, 'a2'],
          [2n, 'b'],
          [3n, 'c'],
        ],
      );
    });
  }
});

// ─── Summary ──────────────────────────────────────────────────────────────────────────────────

describe('merge: the run summary', () => {
  for (const strategy of ['delete-insert', 'upsert', 'scd2'] as const) {
    test(`${strategy}: rowsLoaded and the ledger count the root rows written (inserted or updated), not deleted keys`, async (t) => {
      const dir = await tempDir(t);
      const env = envFor(dir, { MERGE_STRATEGY: strategy, DELETE_COLUMN: 'deleted' });
      await load(env, [
        { id: 1, name: 'a', deleted: false },
        { id: 2, name: 'b' },
        { id: 3, name: 'c' },
      ]);
      const summary = await load(env, [
        { id: 1, name: 'a2', deleted: false }, // updated (scd2: a new version)
        { id: 3, name: 'c', deleted: true }, // deleted (scd2, as dlt 1.26: a new version, marked)
        { id: 4, name: 'd', deleted: false }, // inserted
        { id: 9, deleted: true }, // a delete of an unknown key (scd2: a new version)
      ]);
      const written = strategy === 'scd2' ? 4 : 2;
      assert.equal(summary.rowsLoaded, written);
      assert.deepEqual(summary.tables, { items: written });
      const ledger = await sql(dir, `SELECT rows_loaded FROM main.dlt_ingest_runs WHERE load_id = '${summary.loadId}'`);
      assert.deepEqual(
        ledger.map((r) => r.rows_loaded),
        [BigInt(written)],
      );
    });
  }
});

// ─── Config ─────────────────────────────────────────────────────────────────────────────────────

describe('merge: invalid combinations are config errors (exit 2, nothing created)', () => {
  const cases: { env: Env; names: [string, string] }[] = [
    { env: { WRITE_DISPOSITION: 'append', MERGE_STRATEGY: 'upsert' }, names: ['MERGE_STRATEGY', 'upsert'] },
    { env: { WRITE_DISPOSITION: 'replace', MERGE_STRATEGY: 'scd2' }, names: ['MERGE_STRATEGY', 'scd2'] },
    {
      env: { WRITE_DISPOSITION: 'append', MERGE_STRATEGY: 'delete-insert' },
      names: ['MERGE_STRATEGY', 'delete-insert'],
    },
    { env: { WRITE_DISPOSITION: 'append', DELETE_COLUMN: 'deleted' }, names: ['DELETE_COLUMN', 'deleted'] },
    { env: { WRITE_DISPOSITION: 'replace', DELETE_COLUMN: 'deleted' }, names: ['DELETE_COLUMN', 'deleted'] },
    { env: { MERGE_STRATEGY: 'insert-only' }, names: ['MERGE_STRATEGY', 'insert-only'] },
    { env: { MERGE_STRATEGY: 'Upsert' }, names: ['MERGE_STRATEGY', 'Upsert'] },
    { env: { WRITE_DISPOSITION: 'append', MERGE_KEY: 'day' }, names: ['MERGE_KEY', 'day'] },
    { env: { MERGE_STRATEGY: 'upsert', MERGE_KEY: 'day' }, names: ['MERGE_KEY', 'upsert'] },
    { env: { MERGE_KEY: 'day,day' }, names: ['MERGE_KEY', 'day'] },
  ];
  for (const { env, names } of cases) {
    test(
      Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join(' '),
      async (t) => {
        const dir = await tempDir(t);
        const dataDir = join(dir, 'data');
        let called = false;
        const summary = await runFlight({
          env: { ...envFor(dataDir), ...env },
          source: () => {
            called = true;
            return [{ id: 1 }];
          },
          log: quiet,
        });
        assert.equal(summary.status, 'failed');
        assert.equal(summary.exitCode, 2);
        assert.equal(summary.loadId, null);
        assert.ok(mentions(summary.error ?? '', names[0]) && mentions(summary.error ?? '', names[1]), summary.error);
        assert.equal(called, false, 'the source never runs');
        assert.deepEqual(await listDir(dir), [], 'no data folder, no database file');
      },
    );
  }

  test('a blank MERGE_STRATEGY / DELETE_COLUMN means unset, so append is fine', async (t) => {
    const dir = await tempDir(t);
    const summary = await load(envFor(dir, { WRITE_DISPOSITION: 'append', MERGE_STRATEGY: '  ', DELETE_COLUMN: '' }), [
      { id: 1 },
      { id: 1 },
    ]);
    assert.equal(summary.rowsLoaded, 2);
  });
});
