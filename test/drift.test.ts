// Schema drift and normalization, end to end: rows go through runFlight into a temporary DuckDB
// file and the resulting tables, columns (information_schema) and values are compared exactly.
//
// Values are read with getRowObjectsJson in UTC, so nothing is rounded on the way back:
// BIGINT / DECIMAL come back as strings ('42'), DOUBLE as numbers (NaN / ±Infinity as the strings
// 'NaN' / 'Infinity' / '-Infinity'), TIMESTAMPTZ as '2024-01-15 10:30:00.123456+00'. Column types are
// checked separately, so '42' in a BIGINT column and '42' in a VARCHAR column are told apart.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DuckDBInstance, type DuckDBValue, type Json } from '@duckdb/node-api';
import { runFlight, type Env, type Row, type RunSummary } from '../flight.ts';
import { tempDir } from './support.ts';

// ─── Helpers ────────────────────────────────────────────────────────────────────────────────────

const DATASET = 'flights_demo_dlt';
const LEDGER = 'main.dlt_ingest_runs';
type Rec = Record<string, Json>;
type Columns = Record<string, string>;

const B = 'BIGINT';
const D = 'DOUBLE';
const BOOL = 'BOOLEAN';
const V = 'VARCHAR';
const TS = 'TIMESTAMP WITH TIME ZONE';
const DEC = 'DECIMAL(38,0)';

const q = (name: string) => `"${name.replaceAll('"', '""')}"`;
const tbl = (name: string) => `${DATASET}.${q(name)}`;

/** One run of the Flight into `dir`: local DuckDB, table `t`, append unless `env` says otherwise. */
function flight(
  dir: string,
  rows: Row[] | (() => Iterable<Row> | AsyncIterable<Row>),
  env: Env = {},
): Promise<RunSummary> {
  return runFlight({
    env: { LOCAL_DATA_DIR: dir, TABLE_NAME: 't', WRITE_DISPOSITION: 'append', LOCK_TIMEOUT_S: '10', ...env },
    source: typeof rows === 'function' ? rows : () => rows,
    log: () => {},
  });
}

function assertOk(s: RunSummary): void {
  assert.equal(s.status, 'succeeded', `run failed: ${s.error}`);
  assert.equal(s.exitCode, 0);
}

interface Db {
  all(sql: string, params?: DuckDBValue[]): Promise<Rec[]>;
}

/** Opens the run's DuckDB file, hands a query function to `fn`, and closes it again (the next run needs the file). */
async function inspect<T>(dir: string, fn: (db: Db) => Promise<T>): Promise<T> {
  const instance = await DuckDBInstance.create(join(dir, 'flights_demo.duckdb'));
  try {
    const conn = await instance.connect();
    try {
      await conn.run(`SET TimeZone = 'UTC'`);
      return await fn({ all: async (sql, params) => (await conn.runAndReadAll(sql, params)).getRowObjectsJson() });
    } finally {
      conn.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}

/** Every table of the dataset with its columns and DuckDB type names. */
async function datasetColumns(db: Db): Promise<Record<string, Columns>> {
  const rows = await db.all(
    `SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name, ordinal_position`,
    [DATASET],
  );
  const out: Record<string, Columns> = {};
  for (const r of rows) (out[String(r.table_name)] ??= {})[String(r.column_name)] = String(r.data_type);
  return out;
}

/** The dataset's tables without dlt's metadata tables (_dlt_loads, _dlt_pipeline_state, ...). */
const dataTables = (t: Record<string, Columns>): Record<string, Columns> =>
  Object.fromEntries(Object.entries(t).filter(([name]) => !name.startsWith('_dlt_')));

/** Every table in the file, as schema.table. */
async function allTables(db: Db): Promise<string[]> {
  const rows = await db.all(`SELECT table_schema || '.' || table_name AS t FROM information_schema.tables ORDER BY 1`);
  return rows.map((r) => String(r.t));
}

const sortKeys = (r: Rec): Rec =>
  Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
/** Rows in a canonical order (by their JSON), keys sorted, so two row sets compare as sets. */
const canonical = (rows: Rec[]): Rec[] =>
  rows
    .map((r) => sortKeys(r))
    .map((r) => [JSON.stringify(r), r] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, r]) => r);

/** The table of the dataset a child table hangs off: the longest other table whose name prefixes it. */
function parentOf(name: string, tables: string[]): string | undefined {
  return tables.filter((t) => name.startsWith(`${t}__`)).sort((a, b) => b.length - a.length)[0];
}

/** Ancestors of `name` from its parent up to the root table. */
function chain(name: string, tables: string[], root: string): string[] {
  const out: string[] = [];
  let at = name;
  while (at !== root) {
    const p = parentOf(at, tables);
    if (!p) throw new Error(`table ${name} has no parent table in ${tables.join(', ')}`);
    out.push(p);
    at = p;
  }
  return out;
}

const LINKS = new Set(['_dlt_id', '_dlt_parent_id', '_dlt_root_id', '_dlt_load_id']);

/**
 * The rows of a table as the tests describe them: every column except the id/link columns, plus for
 * a child table `_root` (the root row's `rootExpr`, over alias r) and, two levels down or more,
 * `_parent_idx` (the parent row's _dlt_list_idx). Left joins, so an orphan shows `_root: null`.
 */
async function describedRows(
  db: Db,
  table: string,
  columns: Columns,
  tables: string[],
  root: string,
  rootExpr: string | null,
): Promise<Rec[]> {
  const keep = Object.keys(columns).filter((c) => !LINKS.has(c));
  const select = keep.map((c) => `c0.${q(c)}`);
  let from = `${tbl(table)} AS c0`;
  if (table !== root) {
    const ancestors = chain(table, tables, root);
    const alias = (i: number) => (i === 0 ? 'c0' : i === ancestors.length ? 'r' : `c${i}`);
    ancestors.forEach((a, i) => {
      from += ` LEFT JOIN ${tbl(a)} AS ${alias(i + 1)} ON ${alias(i)}._dlt_parent_id = ${alias(i + 1)}._dlt_id`;
    });
    if (rootExpr) select.push(`${rootExpr} AS _root`);
    if (ancestors.length >= 2) select.push(`c1._dlt_list_idx AS _parent_idx`);
  }
  if (select.length === 0) select.push(`'row' AS _row`);
  return db.all(`SELECT ${select.join(', ')} FROM ${from}`);
}

/** Fills the keys an expected row leaves out with null, so a case lists only what is not null. */
function completed(expected: Rec[], actual: Rec[]): Rec[] {
  const keys = new Set(actual.flatMap((r) => Object.keys(r)));
  return expected.map((r) => ({ ...Object.fromEntries([...keys].map((k) => [k, null])), ...r }));
}

/**
 * What must hold after any sequence of runs: unique non-null row ids everywhere, root rows stamped
 * with a load id of a successful run, child rows linked to an existing parent with a unique
 * (_dlt_parent_id, _dlt_list_idx), _dlt_root_id (merge only) equal to the root row's _dlt_id,
 * _dlt_loads holding exactly the successful loads and the ledger every run.
 */
async function checkInvariants(db: Db, root: string, merge: boolean, runs: RunSummary[]): Promise<void> {
  const cols = await datasetColumns(db);
  const tables = Object.keys(cols).filter((t) => !t.startsWith('_dlt_'));
  const ok = runs.filter((r) => r.status === 'succeeded').map((r) => r.loadId ?? '');
  if (tables.length > 0) {
    const ids = tables.map((t) => `SELECT _dlt_id FROM ${tbl(t)}`).join(' UNION ALL ');
    const [u] = await db.all(
      `SELECT count(*)::INT AS n, count(DISTINCT _dlt_id)::INT AS d, count(_dlt_id)::INT AS nn FROM (${ids})`,
    );
    assert.equal(u?.d, u?.n, `_dlt_id is not unique across ${tables.join(', ')}`);
    assert.equal(u?.nn, u?.n, `_dlt_id is null somewhere`);
  }
  for (const t of tables) {
    const c = cols[t] ?? {};
    if (t === root) {
      assert.equal(c._dlt_load_id, V, `${t}._dlt_load_id`);
      assert.equal(c._dlt_id, V, `${t}._dlt_id`);
      assert.equal(c._dlt_parent_id, undefined, `${t} is the root table, without _dlt_parent_id`);
      assert.equal(c._dlt_root_id, undefined, `${t} is the root table, without _dlt_root_id`);
      const stamps = await db.all(`SELECT DISTINCT _dlt_load_id AS id FROM ${tbl(t)}`);
      for (const s of stamps)
        assert.ok(
          ok.includes(String(s.id)),
          `${t}._dlt_load_id ${s.id} is not the load id of a successful run (${ok.join(', ')})`,
        );
      continue;
    }
    assert.equal(c._dlt_load_id, undefined, `child table ${t} has no _dlt_load_id`);
    assert.equal(c._dlt_parent_id, V, `${t}._dlt_parent_id`);
    assert.equal(c._dlt_list_idx, B, `${t}._dlt_list_idx`);
    assert.equal(c._dlt_root_id, merge ? V : undefined, `${t}._dlt_root_id ${merge ? 'with' : 'without'} merge`);
    const parent = parentOf(t, tables) ?? root;
    const [links] = await db.all(
      `SELECT count(*)::INT AS n,
              count(*) FILTER (WHERE p._dlt_id IS NULL)::INT AS orphans,
              count(*) FILTER (WHERE c._dlt_list_idx IS NULL OR c._dlt_list_idx < 0)::INT AS bad_idx,
              count(DISTINCT (c._dlt_parent_id, c._dlt_list_idx))::INT AS distinct_pos
       FROM ${tbl(t)} c LEFT JOIN ${tbl(parent)} p ON c._dlt_parent_id = p._dlt_id`,
    );
    assert.equal(links?.orphans, 0, `${t}: rows whose _dlt_parent_id is not a ${parent}._dlt_id`);
    assert.equal(links?.bad_idx, 0, `${t}: null or negative _dlt_list_idx`);
    assert.equal(links?.distinct_pos, links?.n, `${t}: two rows at the same (_dlt_parent_id, _dlt_list_idx)`);
    if (merge) {
      const ancestors = chain(t, tables, root);
      const joins = ancestors
        .map((a, i) => `LEFT JOIN ${tbl(a)} AS c${i + 1} ON c${i}._dlt_parent_id = c${i + 1}._dlt_id`)
        .join(' ');
      const [m] = await db.all(
        `SELECT count(*) FILTER (WHERE c0._dlt_root_id IS DISTINCT FROM c${ancestors.length}._dlt_id)::INT AS wrong FROM ${tbl(t)} AS c0 ${joins}`,
      );
      assert.equal(m?.wrong, 0, `${t}: _dlt_root_id differs from the root row's _dlt_id`);
    }
  }
  if (ok.length > 0) {
    const loads = await db.all(`SELECT load_id, status FROM ${tbl('_dlt_loads')} ORDER BY load_id`);
    assert.deepEqual(
      loads,
      [...ok].sort().map((id) => ({ load_id: id, status: '0' })),
      '_dlt_loads: one row with status 0 per successful load',
    );
  } else {
    assert.equal(cols._dlt_loads, undefined, 'no successful load, so no _dlt_loads table');
  }
  const ledger = await db.all(`SELECT load_id, status FROM ${LEDGER} ORDER BY load_id`);
  const expectedLedger = runs
    .map((r) => ({ load_id: r.loadId, status: r.status }))
    .sort((a, b) => ((a.load_id ?? '') < (b.load_id ?? '') ? -1 : 1));
  assert.deepEqual(ledger, expectedLedger, 'ledger: one row per run with its load id and status');
}

// ─── Table-driven cases ─────────────────────────────────────────────────────────────────────────

interface RunSpec {
  rows: Row[];
  /** Extra config for this run only. */
  env?: Env;
  /** The run must fail (exit 1) with an error containing each of these. */
  fails?: (string | RegExp)[];
  /** Data columns per table right after this run (link columns are added as for the final check). */
  tables?: Record<string, Columns>;
}

interface Case {
  name: string;
  env?: Env;
  /** Root table name; 't' unless TABLE_NAME says otherwise. */
  root?: string;
  runs: (Row[] | RunSpec)[];
  /** Every table of the dataset after the last run (besides _dlt_loads), with its data columns and types. */
  tables: Record<string, Columns>;
  /** Expected rows per table (any order); omitted keys are null. Child rows carry _dlt_list_idx, _root and _parent_idx. */
  rows?: Record<string, Rec[]>;
  /** SQL over alias r (the root row) that identifies a child row's root; default r.id when the root has an id column. */
  rootExpr?: string;
}

/** The data columns of a case plus the dlt columns the table must also have. */
function withLinks(tables: Record<string, Columns>, root: string, merge: boolean): Record<string, Columns> {
  return Object.fromEntries(
    Object.entries(tables).map(([name, cols]) => [
      name,
      name === root
        ? { ...cols, _dlt_load_id: V, _dlt_id: V }
        : { ...cols, ...(merge ? { _dlt_root_id: V } : {}), _dlt_parent_id: V, _dlt_list_idx: B, _dlt_id: V },
    ]),
  );
}

const sortedCols = (cols: Columns): Columns =>
  Object.fromEntries(Object.entries(cols).sort(([a], [b]) => (a < b ? -1 : 1)));
const sortedTables = (t: Record<string, Columns>): Record<string, Columns> =>
  Object.fromEntries(
    Object.entries(t)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => [k, sortedCols(v)]),
  );

const LONG = 'x'.repeat(100_000);

const CASES: Case[] = [
  // ── nesting ──
  {
    name: 'nested objects flatten into parent__child columns at any depth',
    runs: [
      [
        { id: 1, user: { name: 'ann', address: { city: 'Oslo', geo: { lat: 59.91, precise: true } } } },
        { id: 2, user: { name: 'bob' } },
      ],
    ],
    tables: {
      t: {
        id: B,
        user__name: V,
        user__address__city: V,
        user__address__geo__lat: D,
        user__address__geo__precise: BOOL,
      },
    },
    rows: {
      t: [
        {
          id: '1',
          user__name: 'ann',
          user__address__city: 'Oslo',
          user__address__geo__lat: 59.91,
          user__address__geo__precise: true,
        },
        { id: '2', user__name: 'bob' },
      ],
    },
  },
  {
    name: 'an empty object and an object of nulls produce no column',
    runs: [[{ id: 1, meta: {}, extra: { a: null, b: { c: null } } }]],
    tables: { t: { id: B } },
    rows: { t: [{ id: '1' }] },
  },
  {
    name: 'a list of objects becomes child table t__items with _dlt_parent_id / _dlt_list_idx / _dlt_id (append: no _dlt_root_id)',
    runs: [
      [
        {
          id: 1,
          items: [
            { sku: 'a', qty: 2 },
            { sku: 'b', qty: null, dims: { w: 1.5 } },
          ],
        },
        { id: 2, items: [{ sku: 'c' }] },
        { id: 3, items: [] },
      ],
    ],
    tables: { t: { id: B }, t__items: { sku: V, qty: B, dims__w: D } },
    rows: {
      t: [{ id: '1' }, { id: '2' }, { id: '3' }],
      t__items: [
        { _root: '1', _dlt_list_idx: '0', sku: 'a', qty: '2' },
        { _root: '1', _dlt_list_idx: '1', sku: 'b', dims__w: 1.5 },
        { _root: '2', _dlt_list_idx: '0', sku: 'c' },
      ],
    },
  },
  {
    name: 'lists of scalars land in a value column',
    runs: [[{ id: 1, tags: ['x', 'y'], nums: [10, 20, 30], flags: [true] }]],
    tables: { t: { id: B }, t__tags: { value: V }, t__nums: { value: B }, t__flags: { value: BOOL } },
    rows: {
      t__tags: [
        { _root: '1', _dlt_list_idx: '0', value: 'x' },
        { _root: '1', _dlt_list_idx: '1', value: 'y' },
      ],
      t__nums: [
        { _root: '1', _dlt_list_idx: '0', value: '10' },
        { _root: '1', _dlt_list_idx: '1', value: '20' },
        { _root: '1', _dlt_list_idx: '2', value: '30' },
      ],
      t__flags: [{ _root: '1', _dlt_list_idx: '0', value: true }],
    },
  },
  {
    name: 'a list of nulls gives child rows but no value column',
    runs: [[{ id: 1, xs: [null, null] }]],
    tables: { t: { id: B }, t__xs: {} },
    rows: {
      t__xs: [
        { _root: '1', _dlt_list_idx: '0' },
        { _root: '1', _dlt_list_idx: '1' },
      ],
    },
  },
  {
    name: 'an empty list adds no rows and no child table',
    runs: [
      [
        { id: 1, items: [] },
        { id: 2, items: [] },
      ],
    ],
    tables: { t: { id: B } },
    rows: { t: [{ id: '1' }, { id: '2' }] },
  },
  {
    name: 'two-level nesting: a list inside list items (t__orders__parts) and a list inside a nested object (t__meta__labels)',
    runs: [
      [
        {
          id: 1,
          orders: [
            { sku: 'x', parts: [{ n: 1 }, { n: 2 }] },
            { sku: 'y', parts: [{ n: 3 }] },
          ],
          meta: { owner: 'o', labels: ['l1'] },
        },
      ],
    ],
    tables: {
      t: { id: B, meta__owner: V },
      t__orders: { sku: V },
      t__orders__parts: { n: B },
      t__meta__labels: { value: V },
    },
    rows: {
      t: [{ id: '1', meta__owner: 'o' }],
      t__orders: [
        { _root: '1', _dlt_list_idx: '0', sku: 'x' },
        { _root: '1', _dlt_list_idx: '1', sku: 'y' },
      ],
      t__orders__parts: [
        { _root: '1', _parent_idx: '0', _dlt_list_idx: '0', n: '1' },
        { _root: '1', _parent_idx: '0', _dlt_list_idx: '1', n: '2' },
        { _root: '1', _parent_idx: '1', _dlt_list_idx: '0', n: '3' },
      ],
      t__meta__labels: [{ _root: '1', _dlt_list_idx: '0', value: 'l1' }],
    },
  },
  {
    name: 'a list of lists: link-only rows in t__matrix, the items in t__matrix__list',
    runs: [[{ id: 1, matrix: [[1, 2], [3]] }]],
    tables: { t: { id: B }, t__matrix: {}, t__matrix__list: { value: B } },
    rows: {
      t__matrix: [
        { _root: '1', _dlt_list_idx: '0' },
        { _root: '1', _dlt_list_idx: '1' },
      ],
      t__matrix__list: [
        { _root: '1', _parent_idx: '0', _dlt_list_idx: '0', value: '1' },
        { _root: '1', _parent_idx: '0', _dlt_list_idx: '1', value: '2' },
        { _root: '1', _parent_idx: '1', _dlt_list_idx: '0', value: '3' },
      ],
    },
  },
  {
    name: 'merge: every descendant row (child, grandchild, scalar list, list of lists) carries _dlt_root_id = the root _dlt_id',
    env: { WRITE_DISPOSITION: 'merge', PRIMARY_KEY: 'id' },
    runs: [
      [
        { id: 1, orders: [{ sku: 'x', parts: [{ n: 1 }] }], tags: ['a'], matrix: [[1]] },
        { id: 2, orders: [{ sku: 'y', parts: [{ n: 2 }, { n: 3 }] }], tags: ['b', 'c'], matrix: [[2, 3]] },
      ],
    ],
    tables: {
      t: { id: B },
      t__orders: { sku: V },
      t__orders__parts: { n: B },
      t__tags: { value: V },
      t__matrix: {},
      t__matrix__list: { value: B },
    },
    rows: {
      t__orders__parts: [
        { _root: '1', _parent_idx: '0', _dlt_list_idx: '0', n: '1' },
        { _root: '2', _parent_idx: '0', _dlt_list_idx: '0', n: '2' },
        { _root: '2', _parent_idx: '0', _dlt_list_idx: '1', n: '3' },
      ],
      t__matrix__list: [
        { _root: '1', _parent_idx: '0', _dlt_list_idx: '0', value: '1' },
        { _root: '2', _parent_idx: '0', _dlt_list_idx: '0', value: '2' },
        { _root: '2', _parent_idx: '0', _dlt_list_idx: '1', value: '3' },
      ],
    },
  },
  {
    name: 'replace: child tables have no _dlt_root_id',
    env: { WRITE_DISPOSITION: 'replace' },
    runs: [[{ id: 1, tags: ['a'], orders: [{ parts: [{ n: 1 }] }] }]],
    tables: { t: { id: B }, t__tags: { value: V }, t__orders: {}, t__orders__parts: { n: B } },
  },
  {
    name: 'a scalar, then an object, then a list under one key: column a, columns a__b, child table t__a',
    runs: [[{ id: 1, a: 1 }], [{ id: 2, a: { b: 2 } }], [{ id: 3, a: [7] }]],
    tables: { t: { id: B, a: B, a__b: B }, t__a: { value: B } },
    rows: {
      t: [{ id: '1', a: '1' }, { id: '2', a__b: '2' }, { id: '3' }],
      t__a: [{ _root: '3', _dlt_list_idx: '0', value: '7' }],
    },
  },

  // ── names ──
  {
    name: 'keys are snake_cased as dlt does, and keys with __ are paths',
    runs: [
      [
        {
          camelCase: 1,
          HTTPServer: 2,
          'stars count': 3,
          '1st': 4,
          'a-b': 5,
          trailing_: 6,
          __private: 7,
          Parent__ChildKey: 8,
          '': 9,
          'price €': 10,
          'emoji 🦆': 11,
          ID: 12,
          x___y: 13,
          'user@host': 14,
          'a+b': 15,
          meta: { '': 16, b__c: 17, 'Deep Key': { innerKey: 18 } },
        },
      ],
    ],
    tables: {
      t: {
        camel_case: B,
        http_server: B,
        stars_count: B,
        _1st: B,
        a_b: B,
        trailingx: B,
        private: B,
        parent__child_key: B,
        _empty: B,
        pricex: B,
        emojix: B,
        id: B,
        x___y: B,
        userahost: B,
        axb: B,
        meta___empty: B,
        meta__b__c: B,
        meta__deep_key__inner_key: B,
      },
    },
    rows: {
      t: [
        {
          camel_case: '1',
          http_server: '2',
          stars_count: '3',
          _1st: '4',
          a_b: '5',
          trailingx: '6',
          private: '7',
          parent__child_key: '8',
          _empty: '9',
          pricex: '10',
          emojix: '11',
          id: '12',
          x___y: '13',
          userahost: '14',
          axb: '15',
          meta___empty: '16',
          meta__b__c: '17',
          meta__deep_key__inner_key: '18',
        },
      ],
    },
  },
  {
    name: 'a whitespace-only key becomes _empty too',
    runs: [[{ id: 1, '  ': 'blank' }]],
    tables: { t: { id: B, _empty: V } },
    rows: { t: [{ id: '1', _empty: 'blank' }] },
  },
  {
    name: 'TABLE_NAME=MyTable loads into my_table; child tables are my_table__<field>',
    env: { TABLE_NAME: 'MyTable' },
    root: 'my_table',
    runs: [[{ Id: 1, Labels: ['a'], OwnerInfo: { LoginName: 'x' }, OpenIssues: [{ IssueNo: 5 }] }]],
    tables: {
      my_table: { id: B, owner_info__login_name: V },
      my_table__labels: { value: V },
      my_table__open_issues: { issue_no: B },
    },
    rows: {
      my_table: [{ id: '1', owner_info__login_name: 'x' }],
      my_table__labels: [{ _root: '1', _dlt_list_idx: '0', value: 'a' }],
      my_table__open_issues: [{ _root: '1', _dlt_list_idx: '0', issue_no: '5' }],
    },
  },
  {
    name: 'keys that normalize to one column but never co-occur with values share it; a null never collides',
    runs: [
      [
        { id: 1, 'a b': 1 },
        { id: 2, a_b: 2 },
        { id: 3, 'A B': 3, a_b: null },
        { id: 4, 'a b': null, a_b: 4 },
        { id: 5, user: { firstName: 'x' } },
        { id: 6, user__first_name: 'y', user: { firstName: null } },
      ],
    ],
    tables: { t: { id: B, a_b: B, user__first_name: V } },
    rows: {
      t: [
        { id: '1', a_b: '1' },
        { id: '2', a_b: '2' },
        { id: '3', a_b: '3' },
        { id: '4', a_b: '4' },
        { id: '5', user__first_name: 'x' },
        { id: '6', user__first_name: 'y' },
      ],
    },
  },
  {
    name: 'collision: two keys of one row normalizing to one column fail the run, naming both keys; earlier data untouched',
    runs: [[{ id: 1, a_b: 0 }], { rows: [{ id: 2, 'a b': 1, a_b: 2 }], fails: ['a b', 'a_b'] }],
    tables: { t: { id: B, a_b: B } },
    rows: { t: [{ id: '1', a_b: '0' }] },
  },
  {
    name: 'collision: a nested key and a __ path key for the same column fail the run',
    runs: [
      { rows: [{ id: 1, user: { firstName: 'x' }, user__first_name: 'y' }], fails: ['firstName', 'user__first_name'] },
    ],
    tables: {},
  },
  {
    name: 'collision: two keys of a list item (child table row) fail the run',
    runs: [{ rows: [{ id: 1, items: [{ Sku: 'a', sku: 'b' }] }], fails: ['Sku', 'sku'] }],
    tables: {},
  },
  {
    name: 'collision: two string values for a BIGINT column (both would go to a_b__v_text) fail the run',
    runs: [[{ id: 1, a_b: 1 }], { rows: [{ id: 2, 'a b': 'x', a_b: 'y' }], fails: ['a b', 'a_b'] }],
    tables: { t: { id: B, a_b: B } },
    rows: { t: [{ id: '1', a_b: '1' }] },
  },
  {
    name: 'collision: one value fits the column, the other would go to a variant: still a collision',
    runs: [[{ id: 1, a_b: 1 }], { rows: [{ id: 2, 'a b': 'x', a_b: 2 }], fails: ['a b', 'a_b'] }],
    tables: { t: { id: B, a_b: B } },
    rows: { t: [{ id: '1', a_b: '1' }] },
  },
  {
    name: 'collision: two lists whose keys normalize to one child table fail the run',
    runs: [{ rows: [{ id: 1, tags: ['a'], Tags: ['b'] }], fails: ['tags', 'Tags'] }],
    tables: {},
  },

  // ── types ──
  {
    name: 'types of new columns: BIGINT, DOUBLE, BOOLEAN, VARCHAR, TIMESTAMPTZ (exact), DECIMAL(38,0); a date is text',
    runs: [
      [
        {
          int: 42,
          neg: -7,
          max_safe: Number.MAX_SAFE_INTEGER,
          two_pow53: 2 ** 53,
          frac: 0.1 + 0.2,
          big: 1e300,
          tiny: 5e-324,
          nan: NaN,
          inf: Infinity,
          ninf: -Infinity,
          yes: true,
          no: false,
          text: 'hello',
          empty: '',
          ts_z: '2024-01-15T10:30:00Z',
          ts_offset: '2024-01-15T10:30:00.123456+02:00',
          ts_naive: '2024-01-15 10:30:00',
          ts_minutes: '2024-01-15T10:30',
          ts_neg_offset: '2024-01-15T10:30:00-05:30',
          ts_compact_offset: '2024-01-15T10:30:00+0530',
          ts_pre1970: '1969-12-31T23:59:59.999999Z',
          ts_millis: '2024-06-01T00:00:00.5Z',
          day: '2024-02-29',
          bad_day: '2024-02-30',
          bad_day2: '2023-02-29',
          bad_month: '2024-13-01',
          not_iso: '2024-1-5',
          date_obj: new Date('2024-01-15T10:30:00.123Z'),
          i64: 9007199254740993n,
          i64_min: -(2n ** 63n),
          i64_max: 2n ** 63n - 1n,
          dec: 2n ** 63n,
          dec_max: 10n ** 38n - 1n,
          dec_min: -(10n ** 38n - 1n),
          huge: 10n ** 38n,
          huge_neg: -(10n ** 38n),
        },
      ],
    ],
    tables: {
      t: {
        int: B,
        neg: B,
        max_safe: B,
        two_pow53: D,
        frac: D,
        big: D,
        tiny: D,
        nan: D,
        inf: D,
        ninf: D,
        yes: BOOL,
        no: BOOL,
        text: V,
        empty: V,
        ts_z: TS,
        ts_offset: TS,
        ts_naive: TS,
        ts_minutes: TS,
        ts_neg_offset: TS,
        ts_compact_offset: TS,
        ts_pre1970: TS,
        ts_millis: TS,
        day: V,
        bad_day: V,
        bad_day2: V,
        bad_month: V,
        not_iso: V,
        date_obj: TS,
        i64: B,
        i64_min: B,
        i64_max: B,
        dec: DEC,
        dec_max: DEC,
        dec_min: DEC,
        huge: V,
        huge_neg: V,
      },
    },
    rows: {
      t: [
        {
          int: '42',
          neg: '-7',
          max_safe: '9007199254740991',
          two_pow53: 9007199254740992,
          frac: 0.30000000000000004,
          big: 1e300,
          tiny: 5e-324,
          nan: 'NaN',
          inf: 'Infinity',
          ninf: '-Infinity',
          yes: true,
          no: false,
          text: 'hello',
          empty: '',
          ts_z: '2024-01-15 10:30:00+00',
          ts_offset: '2024-01-15 08:30:00.123456+00',
          ts_naive: '2024-01-15 10:30:00+00',
          ts_minutes: '2024-01-15 10:30:00+00',
          ts_neg_offset: '2024-01-15 16:00:00+00',
          ts_compact_offset: '2024-01-15 05:00:00+00',
          ts_pre1970: '1969-12-31 23:59:59.999999+00',
          ts_millis: '2024-06-01 00:00:00.5+00',
          day: '2024-02-29',
          bad_day: '2024-02-30',
          bad_day2: '2023-02-29',
          bad_month: '2024-13-01',
          not_iso: '2024-1-5',
          date_obj: '2024-01-15 10:30:00.123+00',
          i64: '9007199254740993',
          i64_min: '-9223372036854775808',
          i64_max: '9223372036854775807',
          dec: '9223372036854775808',
          dec_max: '99999999999999999999999999999999999999',
          dec_min: '-99999999999999999999999999999999999999',
          huge: '100000000000000000000000000000000000000',
          huge_neg: '-100000000000000000000000000000000000000',
        },
      ],
    },
  },
  {
    name: 'a column that is only ever null is not created; it appears, typed by the value, when a value arrives',
    runs: [
      {
        rows: [
          { id: 1, x: null, y: null },
          { id: 2, y: null },
        ],
        tables: { t: { id: B } },
      },
      [
        { id: 3, x: '2024-01-01T00:00:00Z', y: null },
        { id: 4, x: null, y: true },
      ],
    ],
    tables: { t: { id: B, x: TS, y: BOOL } },
    rows: { t: [{ id: '1' }, { id: '2' }, { id: '3', x: '2024-01-01 00:00:00+00' }, { id: '4', y: true }] },
  },
  {
    name: "a null-only column in the same run as its first value gets that value's type",
    runs: [
      [
        { id: 1, x: null },
        { id: 2, x: 2.5 },
        { id: 3, x: null },
      ],
    ],
    tables: { t: { id: B, x: D } },
    rows: { t: [{ id: '1' }, { id: '2', x: 2.5 }, { id: '3' }] },
  },

  // ── drift ──
  {
    name: 'a field appearing in run 2 adds a column; run-1 rows are NULL there',
    runs: [
      { rows: [{ id: 1, a: 'x' }], tables: { t: { id: B, a: V } } },
      [{ id: 2, a: 'y', b: 1.5, c: { d: true }, tags: ['n'] }],
    ],
    tables: { t: { id: B, a: V, b: D, c__d: BOOL }, t__tags: { value: V } },
    rows: {
      t: [
        { id: '1', a: 'x' },
        { id: '2', a: 'y', b: 1.5, c__d: true },
      ],
      t__tags: [{ _root: '2', _dlt_list_idx: '0', value: 'n' }],
    },
  },
  {
    name: 'a field disappearing in run 2 keeps its column; run-2 rows are NULL there',
    runs: [[{ id: 1, a: 'x', b: 2, c: { d: 'e' } }], [{ id: 2, a: 'y' }]],
    tables: { t: { id: B, a: V, b: B, c__d: V } },
    rows: {
      t: [
        { id: '1', a: 'x', b: '2', c__d: 'e' },
        { id: '2', a: 'y' },
      ],
    },
  },
  {
    name: 'within one run, integers then a fraction: the first value types the column; the fraction: x__v_double',
    runs: [
      [
        { id: 1, x: 1 },
        { id: 2, x: 2.5 },
        { id: 3, x: Number.MAX_SAFE_INTEGER },
        { id: 4, x: -3 },
      ],
    ],
    tables: { t: { id: B, x: B, x__v_double: D } },
    rows: {
      t: [
        { id: '1', x: '1' },
        { id: '2', x__v_double: 2.5 },
        { id: '3', x: '9007199254740991' },
        { id: '4', x: '-3' },
      ],
    },
  },
  {
    name: 'within one run, a fraction in a later loader file (BATCH_ROWS=2) goes to x__v_double; x stays BIGINT',
    env: { BATCH_ROWS: '2' },
    runs: [
      [
        { id: 1, x: 1 },
        { id: 2, x: 2 },
        { id: 3, x: 3 },
        { id: 4, x: 4.5 },
        { id: 5, x: 5 },
      ],
    ],
    tables: { t: { id: B, x: B, x__v_double: D } },
    rows: {
      t: [
        { id: '1', x: '1' },
        { id: '2', x: '2' },
        { id: '3', x: '3' },
        { id: '4', x__v_double: 4.5 },
        { id: '5', x: '5' },
      ],
    },
  },
  {
    name: 'a fraction as the first row of a new loader file (BATCH_ROWS=2) goes to x__v_double; later integers to x',
    env: { BATCH_ROWS: '2' },
    runs: [
      [
        { id: 1, x: 1 },
        { id: 2, x: 2 },
        { id: 3, x: 3.5 },
        { id: 4, x: 4 },
        { id: 5, x: 5 },
      ],
    ],
    tables: { t: { id: B, x: B, x__v_double: D } },
    rows: {
      t: [
        { id: '1', x: '1' },
        { id: '2', x: '2' },
        { id: '3', x__v_double: 3.5 },
        { id: '4', x: '4' },
        { id: '5', x: '5' },
      ],
    },
  },
  {
    name: 'drift inside nested objects and scalar lists: user__age__v_text; a number in a text list is its text',
    runs: [[{ id: 1, user: { age: 30 }, tags: ['a'] }], [{ id: 2, user: { age: 'old' }, tags: [1, 'b'] }]],
    tables: { t: { id: B, user__age: B, user__age__v_text: V }, t__tags: { value: V } },
    rows: {
      t: [
        { id: '1', user__age: '30' },
        { id: '2', user__age__v_text: 'old' },
      ],
      t__tags: [
        { _root: '1', _dlt_list_idx: '0', value: 'a' },
        { _root: '2', _dlt_list_idx: '0', value: '1' },
        { _root: '2', _dlt_list_idx: '1', value: 'b' },
      ],
    },
  },
  {
    name: 'a list mixing scalars and objects: scalars in value (converted), object fields in their columns, one table',
    runs: [[{ id: 1, mixed: ['a', { x: 1 }, 2.5] }]],
    tables: { t: { id: B }, t__mixed: { value: V, x: B } },
    rows: {
      t__mixed: [
        { _root: '1', _dlt_list_idx: '0', value: 'a' },
        { _root: '1', _dlt_list_idx: '1', x: '1' },
        { _root: '1', _dlt_list_idx: '2', value: '2.5' },
      ],
    },
  },
  {
    name: 'a BigInt beyond DECIMAL(38,0) into a BIGINT column whose n__v_text exists goes there as its digits',
    runs: [[{ id: 1, n: 1 }], [{ id: 2, n: 'x' }], [{ id: 3, n: 10n ** 40n }]],
    tables: { t: { id: B, n: B, n__v_text: V } },
    rows: {
      t: [
        { id: '1', n: '1' },
        { id: '2', n__v_text: 'x' },
        { id: '3', n__v_text: '10000000000000000000000000000000000000000' },
      ],
    },
  },
  {
    name: 'within one run, a BigInt beyond 2^53 then a fraction: no lossy widening, the fraction goes to x__v_double',
    runs: [
      [
        { id: 1, x: 9007199254740993n },
        { id: 2, x: 0.5 },
      ],
    ],
    tables: { t: { id: B, x: B, x__v_double: D } },
    rows: {
      t: [
        { id: '1', x: '9007199254740993' },
        { id: '2', x__v_double: 0.5 },
      ],
    },
  },
  {
    name: 'a BIGINT column in the destination: a fraction in a later run goes to x__v_double, integers still to x',
    runs: [
      [{ id: 1, x: 1 }],
      [
        { id: 2, x: 2.5 },
        { id: 3, x: 3 },
        { id: 4, x: NaN },
      ],
    ],
    tables: { t: { id: B, x: B, x__v_double: D } },
    rows: {
      t: [
        { id: '1', x: '1' },
        { id: '2', x__v_double: 2.5 },
        { id: '3', x: '3' },
        { id: '4', x__v_double: 'NaN' },
      ],
    },
  },
  {
    name: 'a DOUBLE column takes integers and NaN / Infinity without a variant',
    runs: [
      [{ id: 1, x: 0.5 }],
      [
        { id: 2, x: 3 },
        { id: 3, x: NaN },
        { id: 4, x: -Infinity },
      ],
    ],
    tables: { t: { id: B, x: D } },
    rows: {
      t: [
        { id: '1', x: 0.5 },
        { id: '2', x: 3 },
        { id: '3', x: 'NaN' },
        { id: '4', x: '-Infinity' },
      ],
    },
  },
  {
    name: 'int then string in one run: strings to stars__v_text verbatim (ISO-looking too); numeric ones converted',
    runs: [
      [
        { id: 1, stars: 10 },
        { id: 2, stars: 'many' },
        { id: 3, stars: '2024-01-15T10:30:00Z' },
        { id: 4, stars: '12' },
        { id: 5, stars: 20 },
      ],
    ],
    tables: { t: { id: B, stars: B, stars__v_text: V } },
    rows: {
      t: [
        { id: '1', stars: '10' },
        { id: '2', stars__v_text: 'many' },
        { id: '3', stars__v_text: '2024-01-15T10:30:00Z' },
        { id: '4', stars: '12' },
        { id: '5', stars: '20' },
      ],
    },
  },
  {
    name: 'int then string across runs: stars__v_text is added, run-1 rows keep their value',
    runs: [
      [{ id: 1, stars: 10 }],
      [
        { id: 2, stars: 'many' },
        { id: 3, stars: 30 },
      ],
      [{ id: 4, stars: 'more' }],
    ],
    tables: { t: { id: B, stars: B, stars__v_text: V } },
    rows: {
      t: [
        { id: '1', stars: '10' },
        { id: '2', stars__v_text: 'many' },
        { id: '3', stars: '30' },
        { id: '4', stars__v_text: 'more' },
      ],
    },
  },
  {
    name: "a VARCHAR column in the destination: numbers and booleans are written as Python's str() writes them",
    runs: [
      [{ id: 1, s: 'a' }],
      [
        { id: 2, s: 5 },
        { id: 3, s: 1.5 },
        { id: 4, s: true },
        { id: 5, s: 'b' },
      ],
    ],
    tables: { t: { id: B, s: V } },
    rows: {
      t: [
        { id: '1', s: 'a' },
        { id: '2', s: '5' },
        { id: '3', s: '1.5' },
        { id: '4', s: 'True' },
        { id: '5', s: 'b' },
      ],
    },
  },
  {
    name: 'string then number and boolean in the same run: the same text',
    runs: [
      [
        { id: 1, s: 'a' },
        { id: 2, s: 5 },
        { id: 3, s: false },
        { id: 4, s: 0.25 },
      ],
    ],
    tables: { t: { id: B, s: V } },
    rows: {
      t: [
        { id: '1', s: 'a' },
        { id: '2', s: '5' },
        { id: '3', s: 'False' },
        { id: '4', s: '0.25' },
      ],
    },
  },
  {
    name: 'strings into BIGINT, DOUBLE, BOOLEAN, TIMESTAMPTZ, VARCHAR columns: converted as dlt does, else __v_text',
    runs: [
      [{ id: 1, n: 1, d: 1.5, b: true, ts: '2024-01-15T10:30:00Z', day: '2024-01-15' }],
      [{ id: 2, n: '2024-01-15T10:30:00Z', d: '2024-01-15', b: 'true', ts: 'not a time', day: '2024-01-15T00:00:00Z' }],
      [{ id: 3, n: ' 42 ', d: '1e3', b: 'no', ts: '2024-01-16', day: 'x' }],
    ],
    tables: {
      t: {
        id: B,
        n: B,
        d: D,
        b: BOOL,
        ts: TS,
        day: V,
        n__v_text: TS,
        d__v_text: V,
        ts__v_text: V,
      },
    },
    rows: {
      t: [
        { id: '1', n: '1', d: 1.5, b: true, ts: '2024-01-15 10:30:00+00', day: '2024-01-15' },
        {
          id: '2',
          n__v_text: '2024-01-15 10:30:00+00',
          d__v_text: '2024-01-15',
          b: true,
          ts__v_text: 'not a time',
          day: '2024-01-15T00:00:00Z',
        },
        { id: '3', n: '42', d: 1000, b: false, ts: '2024-01-16 00:00:00+00', day: 'x' },
      ],
    },
  },
  {
    name: 'numbers into TIMESTAMPTZ / BOOLEAN columns are converted (epoch seconds, not zero); a boolean: n__v_bool',
    runs: [[{ id: 1, ts: '2024-01-15T10:30:00Z', b: true, n: 1 }], [{ id: 2, ts: 1700000000, b: 0, n: false }]],
    tables: { t: { id: B, ts: TS, b: BOOL, n: B, n__v_bool: BOOL } },
    rows: {
      t: [
        { id: '1', ts: '2024-01-15 10:30:00+00', b: true, n: '1' },
        { id: '2', ts: '2023-11-14 22:13:20+00', b: false, n__v_bool: false },
      ],
    },
  },
  {
    name: 'a BigInt beyond int64 into a BIGINT column goes to n__v_decimal, exactly',
    runs: [[{ id: 1, n: 1 }], [{ id: 2, n: 2n ** 64n }]],
    tables: { t: { id: B, n: B, n__v_decimal: DEC } },
    rows: {
      t: [
        { id: '1', n: '1' },
        { id: '2', n__v_decimal: '18446744073709551616' },
      ],
    },
  },
  {
    name: 'child tables follow schema evolution like the root: new columns and variants',
    runs: [
      [{ id: 1, items: [{ sku: 'a', qty: 1 }] }],
      [
        {
          id: 2,
          items: [
            { sku: 'b', qty: 'lots', color: 'red' },
            { sku: 7, qty: 2 },
          ],
        },
      ],
    ],
    tables: { t: { id: B }, t__items: { sku: V, qty: B, qty__v_text: V, color: V } },
    rows: {
      t__items: [
        { _root: '1', _dlt_list_idx: '0', sku: 'a', qty: '1' },
        { _root: '2', _dlt_list_idx: '0', sku: 'b', qty__v_text: 'lots', color: 'red' },
        { _root: '2', _dlt_list_idx: '1', sku: '7', qty: '2' },
      ],
    },
  },
  {
    name: 'a drifting value in a merge run is kept in its variant column and the run succeeds',
    env: { WRITE_DISPOSITION: 'merge', PRIMARY_KEY: 'id' },
    runs: [
      [
        { id: 1, stars: 10 },
        { id: 2, stars: 20 },
      ],
      [{ id: 1, stars: 'ten' }],
    ],
    tables: { t: { id: B, stars: B, stars__v_text: V } },
    rows: {
      t: [
        { id: '1', stars__v_text: 'ten' },
        { id: '2', stars: '20' },
      ],
    },
  },

  // ── merge / replace with child tables ──
  {
    name: 'merge: rerunning a parent key replaces its child and grandchild rows (no orphans, no duplicates), also when the list is empty or missing',
    env: { WRITE_DISPOSITION: 'merge', PRIMARY_KEY: 'id' },
    runs: [
      [
        { id: 1, tags: ['a', 'b'], orders: [{ sku: 'x', parts: [{ n: 1 }] }] },
        { id: 2, tags: ['c'], orders: [{ sku: 'y', parts: [{ n: 2 }] }] },
        { id: 3, tags: ['d'] },
        { id: 4, tags: ['e'], orders: [{ sku: 'w', parts: [{ n: 4 }] }] },
      ],
      [
        { id: 1, tags: ['z'], orders: [{ sku: 'x2', parts: [{ n: 10 }, { n: 11 }] }] },
        { id: 2, tags: [], orders: [] },
        { id: 3 },
      ],
    ],
    tables: { t: { id: B }, t__tags: { value: V }, t__orders: { sku: V }, t__orders__parts: { n: B } },
    rows: {
      t: [{ id: '1' }, { id: '2' }, { id: '3' }, { id: '4' }],
      t__tags: [
        { _root: '1', _dlt_list_idx: '0', value: 'z' },
        { _root: '4', _dlt_list_idx: '0', value: 'e' },
      ],
      t__orders: [
        { _root: '1', _dlt_list_idx: '0', sku: 'x2' },
        { _root: '4', _dlt_list_idx: '0', sku: 'w' },
      ],
      t__orders__parts: [
        { _root: '1', _parent_idx: '0', _dlt_list_idx: '0', n: '10' },
        { _root: '1', _parent_idx: '0', _dlt_list_idx: '1', n: '11' },
        { _root: '4', _parent_idx: '0', _dlt_list_idx: '0', n: '4' },
      ],
    },
  },
  {
    name: 'merge with MERGE_STRATEGY=upsert also replaces the child rows of a re-sent key',
    env: { WRITE_DISPOSITION: 'merge', PRIMARY_KEY: 'id', MERGE_STRATEGY: 'upsert' },
    runs: [
      [
        { id: 1, tags: ['a', 'b'], orders: [{ sku: 'x', parts: [{ n: 1 }] }] },
        { id: 2, tags: ['c'] },
      ],
      [{ id: 1, tags: ['z'], orders: [] }, { id: 2 }],
    ],
    tables: { t: { id: B }, t__tags: { value: V }, t__orders: { sku: V }, t__orders__parts: { n: B } },
    rows: {
      t: [{ id: '1' }, { id: '2' }],
      t__tags: [{ _root: '1', _dlt_list_idx: '0', value: 'z' }],
      t__orders: [],
      t__orders__parts: [],
    },
  },
  {
    name: 'merge: a key repeated within one run keeps the last row and only its children',
    env: { WRITE_DISPOSITION: 'merge', PRIMARY_KEY: 'id' },
    runs: [
      [
        { id: 1, v: 'first', tags: ['a', 'b'] },
        { id: 1, v: 'last', tags: ['c'] },
      ],
    ],
    tables: { t: { id: B, v: V }, t__tags: { value: V } },
    rows: { t: [{ id: '1', v: 'last' }], t__tags: [{ _root: '1', _dlt_list_idx: '0', value: 'c' }] },
  },
  {
    name: 'merge on a compound PRIMARY_KEY=a,b upserts on both columns, children included',
    env: { WRITE_DISPOSITION: 'merge', PRIMARY_KEY: 'a,b' },
    runs: [
      [
        { a: 1, b: 1, v: 'x', tags: ['t1'] },
        { a: 1, b: 2, v: 'y', tags: ['t2'] },
      ],
      [
        { a: 1, b: 1, v: 'z', tags: ['t3'] },
        { a: 2, b: 1, v: 'w' },
      ],
    ],
    rootExpr: `r.a || '/' || r.b`,
    tables: { t: { a: B, b: B, v: V }, t__tags: { value: V } },
    rows: {
      t: [
        { a: '1', b: '1', v: 'z' },
        { a: '1', b: '2', v: 'y' },
        { a: '2', b: '1', v: 'w' },
      ],
      t__tags: [
        { _root: '1/1', _dlt_list_idx: '0', value: 't3' },
        { _root: '1/2', _dlt_list_idx: '0', value: 't2' },
      ],
    },
  },
  {
    name: 'merge on PRIMARY_KEY=repoId uses the snake_cased column repo_id',
    env: { WRITE_DISPOSITION: 'merge', PRIMARY_KEY: 'repoId' },
    runs: [
      [
        { repoId: 1, v: 1 },
        { repoId: 2, v: 1 },
      ],
      [{ repoId: 1, v: 2 }],
    ],
    rootExpr: 'r.repo_id',
    tables: { t: { repo_id: B, v: B } },
    rows: {
      t: [
        { repo_id: '1', v: '2' },
        { repo_id: '2', v: '1' },
      ],
    },
  },
  {
    name: 'merge: a null or missing primary key fails the run naming the key column; nothing of that run is loaded',
    env: { WRITE_DISPOSITION: 'merge', PRIMARY_KEY: 'id' },
    runs: [
      [{ id: 1, v: 1 }],
      {
        rows: [
          { id: 2, v: 2 },
          { id: null, v: 3 },
        ],
        fails: ['"id"', /primary key/i],
      },
      { rows: [{ v: 4 }], fails: ['"id"', /primary key/i] },
    ],
    tables: { t: { id: B, v: B } },
    rows: { t: [{ id: '1', v: '1' }] },
  },
  {
    name: 'merge on a compound key: a null in one key column fails the run naming that column',
    env: { WRITE_DISPOSITION: 'merge', PRIMARY_KEY: 'a,b' },
    runs: [{ rows: [{ a: 1, b: null, v: 1 }], fails: ['"b"', /primary key/i] }],
    tables: {},
  },
  {
    name: 'append: rows with a null or missing "primary key" load fine',
    env: { WRITE_DISPOSITION: 'append', PRIMARY_KEY: 'id' },
    runs: [[{ id: null, v: 1 }, { v: 2 }, { id: 3, v: 3 }]],
    tables: { t: { id: B, v: B } },
    rows: { t: [{ v: '1' }, { v: '2' }, { id: '3', v: '3' }] },
  },
  {
    name: 'replace: the new rows replace the old, and child tables are emptied even when the new rows have no list',
    env: { WRITE_DISPOSITION: 'replace' },
    runs: [
      [
        { id: 1, tags: ['a', 'b'], orders: [{ sku: 'x', parts: [{ n: 1 }] }] },
        { id: 2, tags: ['c'] },
      ],
      [{ id: 3, name: 'only' }],
    ],
    tables: { t: { id: B, name: V }, t__tags: { value: V }, t__orders: { sku: V }, t__orders__parts: { n: B } },
    rows: { t: [{ id: '3', name: 'only' }], t__tags: [], t__orders: [], t__orders__parts: [] },
  },
  {
    name: 'replace: new rows with lists replace the old child rows',
    env: { WRITE_DISPOSITION: 'replace' },
    runs: [[{ id: 1, tags: ['a', 'b'] }], [{ id: 1, tags: ['z'] }]],
    tables: { t: { id: B }, t__tags: { value: V } },
    rows: { t: [{ id: '1' }], t__tags: [{ _root: '1', _dlt_list_idx: '0', value: 'z' }] },
  },
  {
    name: 'replace: a run that yields no rows empties the root and child tables (dlt truncates them)',
    env: { WRITE_DISPOSITION: 'replace' },
    runs: [[{ id: 1, tags: ['a'] }], []],
    tables: { t: { id: B }, t__tags: { value: V } },
    rows: { t: [], t__tags: [] },
  },

  // ── faithful values ──
  {
    name: 'unicode, emoji, empty string vs null, quotes and SQL in values are stored verbatim',
    runs: [
      [
        { id: 1, s: 'Ünïcödé 日本語 ✓' },
        { id: 2, s: '🦆👨‍👩‍👧‍👦' },
        { id: 3, s: '' },
        { id: 4, s: null },
        { id: 5 },
        { id: 6, s: "'); DROP TABLE t; --" },
        { id: 7, s: 'line1\nline2\t"quoted"\\ \'single\'' },
      ],
    ],
    tables: { t: { id: B, s: V } },
    rows: {
      t: [
        { id: '1', s: 'Ünïcödé 日本語 ✓' },
        { id: '2', s: '🦆👨‍👩‍👧‍👦' },
        { id: '3', s: '' },
        { id: '4' },
        { id: '5' },
        { id: '6', s: "'); DROP TABLE t; --" },
        { id: '7', s: 'line1\nline2\t"quoted"\\ \'single\'' },
      ],
    },
  },
];

describe('normalization and drift (table-driven)', () => {
  for (const c of CASES) {
    test(c.name, async (t) => {
      const dir = await tempDir(t, 'flight-drift-');
      const env: Env = { ...c.env };
      const root = c.root ?? 't';
      const merge = env.WRITE_DISPOSITION === 'merge';
      const summaries: RunSummary[] = [];
      for (const [i, spec] of c.runs.entries()) {
        const run: RunSpec = Array.isArray(spec) ? { rows: spec } : spec;
        const s = await flight(dir, run.rows, { ...env, ...run.env });
        summaries.push(s);
        if (run.fails) {
          assert.equal(s.status, 'failed', `run ${i + 1} should fail`);
          assert.equal(s.exitCode, 1, `run ${i + 1} exit code`);
          for (const needle of run.fails) {
            if (typeof needle === 'string')
              assert.ok(s.error?.includes(needle), `run ${i + 1} error should mention ${needle}: ${s.error}`);
            else assert.match(s.error ?? '', needle);
          }
        } else {
          assert.equal(s.status, 'succeeded', `run ${i + 1} failed: ${s.error}`);
          assert.equal(s.exitCode, 0);
        }
        if (run.tables) {
          const expected = sortedTables(withLinks(run.tables, root, merge));
          const got = dataTables(await inspect(dir, datasetColumns));
          assert.deepEqual(sortedTables(got), expected, `tables and columns after run ${i + 1}`);
        }
      }

      await inspect(dir, async (db) => {
        const all = await datasetColumns(db);
        const hasLoads = all._dlt_loads !== undefined;
        const got = dataTables(all);
        assert.deepEqual(sortedTables(got), sortedTables(withLinks(c.tables, root, merge)), 'tables and columns');
        assert.equal(
          hasLoads,
          summaries.some((s) => s.status === 'succeeded'),
          '_dlt_loads exists once a load succeeded',
        );
        const names = Object.keys(got);
        for (const [table, expectedRows] of Object.entries(c.rows ?? {})) {
          const cols = got[table] ?? {};
          const rootExpr = c.rootExpr ?? ((got[root] ?? {}).id ? 'r.id' : null);
          const actual = await describedRows(db, table, cols, names, root, rootExpr);
          assert.deepEqual(canonical(actual), canonical(completed(expectedRows, actual)), `rows of ${table}`);
        }
        await checkInvariants(db, root, merge, summaries);
      });
    });
  }
});

// ─── Focused tests ──────────────────────────────────────────────────────────────────────────────

describe('load metadata', () => {
  test('_dlt_load_id on root rows = summary.loadId = ledger load_id; _dlt_loads gets one status-0 row per successful load only', async (t) => {
    const dir = await tempDir(t, 'flight-drift-');
    const s1 = await flight(dir, [{ id: 1, tags: ['a'] }, { id: 2 }]);
    assertOk(s1);
    const s2 = await flight(dir, [{ id: 3, tags: ['b', 'c'] }]);
    assertOk(s2);
    const s3 = await flight(dir, [{ id: 4, 'a b': 1, a_b: 2 }]); // a collision: fails
    assert.equal(s3.status, 'failed');
    assert.equal(s3.exitCode, 1);
    assert.ok(s1.loadId && s2.loadId && s3.loadId);
    assert.equal(new Set([s1.loadId, s2.loadId, s3.loadId]).size, 3, 'every run has its own load id');

    await inspect(dir, async (db) => {
      const stamps = await db.all(`SELECT id::INT AS id, _dlt_load_id FROM ${tbl('t')} ORDER BY id`);
      assert.deepEqual(stamps, [
        { id: 1, _dlt_load_id: s1.loadId },
        { id: 2, _dlt_load_id: s1.loadId },
        { id: 3, _dlt_load_id: s2.loadId },
      ]);
      const ids = await db.all(`SELECT _dlt_id FROM ${tbl('t')} UNION ALL SELECT _dlt_id FROM ${tbl('t__tags')}`);
      assert.equal(new Set(ids.map((r) => r._dlt_id)).size, 6, '_dlt_id unique over root and child rows');
      for (const r of ids) assert.ok(typeof r._dlt_id === 'string' && r._dlt_id.length > 0);

      const loadCols = await db.all(
        `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = $1 AND table_name = '_dlt_loads' ORDER BY ordinal_position`,
        [DATASET],
      );
      assert.deepEqual(loadCols, [
        { column_name: 'load_id', data_type: V },
        { column_name: 'schema_name', data_type: V },
        { column_name: 'status', data_type: B },
        { column_name: 'inserted_at', data_type: TS },
        { column_name: 'schema_version_hash', data_type: V },
      ]);
      const loads = await db.all(
        `SELECT load_id, status, schema_name IS NOT NULL AS has_schema, inserted_at IS NOT NULL AS has_time, schema_version_hash IS NOT NULL AS has_hash FROM ${tbl('_dlt_loads')} ORDER BY load_id`,
      );
      assert.deepEqual(loads, [
        { load_id: s1.loadId, status: '0', has_schema: true, has_time: true, has_hash: true },
        { load_id: s2.loadId, status: '0', has_schema: true, has_time: true, has_hash: true },
      ]);
      const ledger = await db.all(`SELECT load_id, status FROM ${LEDGER} ORDER BY load_id`);
      assert.deepEqual(ledger, [
        { load_id: s1.loadId, status: 'succeeded' },
        { load_id: s2.loadId, status: 'succeeded' },
        { load_id: s3.loadId, status: 'failed' },
      ]);
      const childCols = await db.all(
        `SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = 't__tags' ORDER BY column_name`,
        [DATASET],
      );
      assert.deepEqual(
        childCols.map((r) => r.column_name),
        ['_dlt_id', '_dlt_list_idx', '_dlt_parent_id', 'value'],
        'child table: no _dlt_load_id (and no _dlt_root_id with append)',
      );
    });
  });

  test('merge: _dlt_load_id of a re-sent row is the new load id; summary counts match the tables', async (t) => {
    const dir = await tempDir(t, 'flight-drift-');
    const env = { WRITE_DISPOSITION: 'merge', PRIMARY_KEY: 'id' };
    const s1 = await flight(
      dir,
      [
        { id: 1, tags: ['a'] },
        { id: 2, tags: ['b', 'c'] },
      ],
      env,
    );
    assertOk(s1);
    assert.equal(s1.rowsLoaded, 2);
    assert.deepEqual(s1.tables, { t: 2, t__tags: 3 });
    const s2 = await flight(dir, [{ id: 2, tags: ['d'] }], env);
    assertOk(s2);
    assert.equal(s2.rowsLoaded, 1);
    assert.deepEqual(s2.tables, { t: 1, t__tags: 1 });
    await inspect(dir, async (db) => {
      const rows = await db.all(`SELECT id::INT AS id, _dlt_load_id FROM ${tbl('t')} ORDER BY id`);
      assert.deepEqual(rows, [
        { id: 1, _dlt_load_id: s1.loadId },
        { id: 2, _dlt_load_id: s2.loadId },
      ]);
      const loads = await db.all(`SELECT load_id FROM ${tbl('_dlt_loads')} ORDER BY load_id`);
      assert.deepEqual(loads, [{ load_id: s1.loadId }, { load_id: s2.loadId }]);
    });
  });
});

describe('faithful values and hostile keys', () => {
  test('a 100k-character string and a 100k multi-byte string load unchanged', async (t) => {
    const dir = await tempDir(t, 'flight-drift-');
    const multibyte = `${'🦆é'.repeat(33_333)}a`; // 100,000 UTF-16 units, no pair cut in half
    assertOk(
      await flight(dir, [
        { id: 1, s: LONG },
        { id: 2, s: multibyte },
      ]),
    );
    await inspect(dir, async (db) => {
      const rows = await db.all(`SELECT id::INT AS id, s, strlen(s)::INT AS bytes FROM ${tbl('t')} ORDER BY id`);
      assert.equal(rows.length, 2);
      assert.ok(rows[0]?.s === LONG, 'the 100k ASCII string comes back identical');
      assert.ok(rows[1]?.s === multibyte, 'the 100k multi-byte string comes back identical');
      assert.equal(rows[0]?.bytes, 100_000);
      assert.equal(rows[1]?.bytes, Buffer.byteLength(multibyte));
    });
  });

  test('keys with quotes, semicolons, -- and "; DROP TABLE x; --" load under normalized names; no SQL runs', async (t) => {
    const dir = await tempDir(t, 'flight-drift-');
    // a canary table named x, in the same dataset
    assertOk(await flight(dir, [{ id: 1 }], { TABLE_NAME: 'x' }));
    const s = await flight(dir, [
      {
        id: 1,
        'a"b': 'q1',
        'semi;colon': 's',
        'dash--dash': 'd',
        '"; DROP TABLE x; --': 'inj',
        "x'); DROP TABLE x; --": 'inj2',
        '/* c */ col': 'c',
        'back`tick': 'b',
        '"quoted"': 'qq',
        'o"bj': { 'k;--': 1 },
        'ta"gs': ['a', "'); DROP TABLE x; --"],
      },
      { id: 2, "a'b": 'q2' },
      { id: 3, 'a\\b': 'q3' },
    ]);
    assertOk(s);
    await inspect(dir, async (db) => {
      const tables = await allTables(db);
      assert.ok(tables.includes(`${DATASET}._dlt_loads`));
      assert.deepEqual(
        tables.filter((n) => !n.startsWith(`${DATASET}._dlt_`)),
        [`${DATASET}.t`, `${DATASET}.t__ta_gs`, `${DATASET}.x`, LEDGER],
      );
      const cols = await datasetColumns(db);
      assert.deepEqual(
        sortedCols(cols.t ?? {}),
        sortedCols({
          id: B,
          a_b: V,
          semi_colon: V,
          dash_dash: V,
          _drop_table_xxxx: V,
          x_drop_table_xxxx: V,
          _x_c_x_col: V,
          back_tick: V,
          _quotedx: V,
          o_bj__kxxx: B,
          _dlt_load_id: V,
          _dlt_id: V,
        }),
      );
      const canary = await db.all(`SELECT id::INT AS id FROM ${tbl('x')}`);
      assert.deepEqual(canary, [{ id: 1 }], 'the canary table x is intact');
      const rows = await db.all(`SELECT * EXCLUDE (_dlt_load_id, _dlt_id) FROM ${tbl('t')} ORDER BY id`);
      const expected: Rec[] = [
        {
          id: '1',
          a_b: 'q1',
          semi_colon: 's',
          dash_dash: 'd',
          _drop_table_xxxx: 'inj',
          x_drop_table_xxxx: 'inj2',
          _x_c_x_col: 'c',
          back_tick: 'b',
          _quotedx: 'qq',
          o_bj__kxxx: '1',
        },
        { id: '2', a_b: 'q2' },
        { id: '3', a_b: 'q3' },
      ];
      assert.deepEqual(rows, completed(expected, rows));
      const tags = await db.all(`SELECT value FROM ${tbl('t__ta_gs')} ORDER BY _dlt_list_idx`);
      assert.deepEqual(tags, [{ value: 'a' }, { value: "'); DROP TABLE x; --" }]);
    });
  });
});
