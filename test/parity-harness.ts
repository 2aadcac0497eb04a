// Parity with dlt itself (issue 14): every case in test/fixtures/dlt-parity/ is a payload run through the
// real dlt 1.26.0 (by regenerate.py there, with the dlt oracle and a real load); the fixture holds what dlt's
// destination contains after EVERY run. Here each case runs through runFlight into a temporary DuckDB file,
// run by run, and after each run the dataset is compared with the fixture: table names, columns in order with
// their DuckDB SQL types and nullability, and every row's values. Then dlt's metadata (`_dlt_version`,
// `_dlt_loads.schema_version_hash`) and, for incremental cases, the pipeline state.
//
// Nothing here needs Python or dlt. Values are compared in one canonical form on both sides (bigint as a
// number, or a string beyond 2^53; timestamps as 2024-01-02T03:04:05.000000Z; decimals without trailing
// zeros; JSON parsed). Row ids: where dlt's root ids are random (append, replace, delete-insert), rows are
// paired by content and ids are compared by structure (a child must hang off the paired parent at the same
// list index); ids dlt derives by hashing (upsert key hashes, scd2 row hashes, their child rows' ids) and
// ids the data brings (`_dlt_id` in a row) are compared verbatim. Load ids are compared as `<load_id:N>`.
//
// A case's settings become the port's (test/parity-cases.ts): its keys and disposition env keys, dlt's column
// hints runFlight's `columns` (`hard_delete` is DELETE_COLUMN). A difference the port keeps on purpose is
// declared in the case (`kept_deviation`) and then expected exactly.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { before, describe, test } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { DuckDBInstance, type DuckDBValue, type Json } from '@duckdb/node-api';
import { runFlight, type RunSummary } from '../flight.ts';
import {
  caseSettings,
  caseSource,
  DATASET,
  PIPELINE,
  readFixtures,
  type CaseInput,
  type ExpRun,
  type ExpTable,
  type Fixture,
  type Rec,
  type StoredSchema,
} from './parity-cases.ts';

/** `PARITY_CASES=12,4` runs only the cases whose names start so (while working on them). */
const ALL_FIXTURES = readFixtures(process.env.PARITY_CASES?.split(',').filter(Boolean));
/**
 * The corpus in `parts` parts of about as many runs each, so that the parts (test files) run in parallel
 * processes: much of a run's time is on the main thread (DuckDB's close), which one process can't spread.
 */
function partOf(part: number, parts: number): Fixture[] {
  const load = Array.from({ length: parts }, () => 0);
  const owner = new Map<Fixture, number>();
  for (const fx of [...ALL_FIXTURES].sort((a, b) => b.input.runs.length - a.input.runs.length)) {
    const least = load.indexOf(Math.min(...load));
    owner.set(fx, least);
    load[least]! += fx.input.runs.length;
  }
  return ALL_FIXTURES.filter((fx) => owner.get(fx) === part - 1);
}
/** Case folders in memory where the system has such a folder: DuckDB's checkpoints then cost no disk syncs. */
const TMP = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

// ─── Reading the port's dataset in the canonical form ──────────────────────────────────────────────

const q = (name: string) => `"${name.replaceAll('"', '""')}"`;
interface ActualColumn {
  name: string;
  sql_type: string;
  nullable: boolean;
}
interface ActualTable {
  columns: ActualColumn[];
  rows: Rec[];
}

/** The dataset of one case's file, read through the one reader instance: a query, and a table's full name. */
interface Db {
  all(sql: string, params?: DuckDBValue[]): Promise<Rec[]>;
  table(name: string): string;
  catalog: string;
}
let reader: Promise<DuckDBInstance> | undefined;
let attached = 0;
/** Opens a case's DuckDB file read-only in a shared in-memory instance (cheaper than an instance per read). */
async function withDb<T>(dir: string, fn: (db: Db) => Promise<T>): Promise<T> {
  const conn = await (await (reader ??= DuckDBInstance.create(':memory:'))).connect();
  const catalog = `case${attached++}`;
  try {
    await conn.run(`SET TimeZone = 'UTC'`);
    const file = join(dir, 'flights_demo.duckdb').replaceAll("'", "''");
    await conn.run(`ATTACH '${file}' AS ${catalog} (READ_ONLY)`);
    try {
      return await fn({
        all: async (sql, params) => (await conn.runAndReadAll(sql, params)).getRowObjectsJson(),
        table: (name) => `${catalog}.${DATASET}.${q(name)}`,
        catalog,
      });
    } finally {
      await conn.run(`DETACH ${catalog}`);
    }
  } finally {
    conn.closeSync();
  }
}

/** A column rendered in SQL so that its JSON form is the canonical one. */
function canonicalSelect(c: ActualColumn): string {
  const col = q(c.name);
  if (/^TIMESTAMP/.test(c.sql_type)) return `strftime(${col}, '%Y-%m-%dT%H:%M:%S.%fZ') AS ${col}`;
  if (/^(DATE|JSON|DECIMAL|BIGINT|HUGEINT|INTEGER|SMALLINT|TINYINT|UBIGINT|UINTEGER|TIME)/.test(c.sql_type))
    return `CAST(${col} AS VARCHAR) AS ${col}`;
  if (c.sql_type === 'BLOB') return `base64(${col}) AS ${col}`;
  return col;
}

function canonicalValue(v: Json, sqlType: string): Json {
  if (v === null) return null;
  if (/^(BIGINT|HUGEINT|INTEGER|SMALLINT|TINYINT|UBIGINT|UINTEGER)$/.test(sqlType)) {
    const n = BigInt(String(v));
    return n <= 2n ** 53n && n >= -(2n ** 53n) ? Number(n) : n.toString();
  }
  if (/^DECIMAL/.test(sqlType)) {
    let s = String(v);
    if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
    return s === '-0' || s === '' ? '0' : s;
  }
  if (sqlType === 'JSON') return JSON.parse(String(v)) as Json;
  return v;
}

/** Every table of the dataset except dlt's own, with columns (in order) and canonical rows. */
async function readDataset(db: Db): Promise<Record<string, ActualTable>> {
  const cols = await db.all(
    `SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns
     WHERE table_catalog = $1 AND table_schema = $2 ORDER BY table_name, ordinal_position`,
    [db.catalog, DATASET],
  );
  const tables: Record<string, ActualTable> = {};
  for (const r of cols) {
    const t = String(r.table_name);
    if (t.startsWith('_dlt_')) continue;
    (tables[t] ??= { columns: [], rows: [] }).columns.push({
      name: String(r.column_name),
      sql_type: String(r.data_type),
      nullable: r.is_nullable === 'YES',
    });
  }
  for (const [name, t] of Object.entries(tables)) {
    const rows = await db.all(`SELECT ${t.columns.map(canonicalSelect).join(', ')} FROM ${db.table(name)}`);
    t.rows = rows.map((r) =>
      Object.fromEntries(t.columns.map((c) => [c.name, canonicalValue(r[c.name] ?? null, c.sql_type)])),
    );
  }
  return tables;
}

async function readMeta(db: Db, table: string, orderBy: string): Promise<Rec[] | null> {
  const exists = await db.all(
    `SELECT 1 FROM information_schema.tables WHERE table_catalog = $1 AND table_schema = $2 AND table_name = $3`,
    [db.catalog, DATASET, table],
  );
  return exists.length ? db.all(`SELECT * FROM ${db.table(table)} ORDER BY ${orderBy}`) : null;
}

// ─── Comparison ───────────────────────────────────────────────────────────────────────────────────

const show = (v: unknown) => (v === undefined ? '(missing)' : JSON.stringify(v));
const ID_COLUMNS = new Set(['_dlt_id', '_dlt_parent_id', '_dlt_root_id']);
const sortKeys = (v: unknown): unknown =>
  Array.isArray(v)
    ? v.map(sortKeys)
    : v !== null && typeof v === 'object'
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
        )
      : v;
const same = (a: unknown, b: unknown) => JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));

/** How dlt makes the root `_dlt_id` of a case's table: random, or a hash the port can reproduce. */
function rootIdKind(input: CaseInput): 'random' | 'hash' {
  return input.write_disposition === 'merge' && (input.merge_strategy === 'upsert' || input.merge_strategy === 'scd2')
    ? 'hash'
    : 'random';
}

/** `_dlt_id` values the case's rows bring themselves (kept by dlt as the row id). */
function userIds(input: CaseInput): Set<string> {
  const ids = new Set<string>();
  for (const run of input.runs)
    for (const row of run)
      if (row && typeof row === 'object' && !Array.isArray(row))
        for (const [k, v] of Object.entries(row))
          if (k.toLowerCase() === '_dlt_id' && typeof v === 'string') ids.add(v);
  return ids;
}

/** Depth of a table below the root (number of ancestors), from the expected parents or by name. */
function ancestry(name: string, parents: Map<string, string | null>, all: string[]): number {
  let depth = 0;
  let at: string | null | undefined = name;
  while (at) {
    at = parents.has(at)
      ? parents.get(at)
      : all.filter((t) => at!.startsWith(`${t}__`)).sort((a, b) => b.length - a.length)[0];
    if (at) depth++;
  }
  return depth;
}

/** How a row is named in a message: its primary key, or its first few non-dlt values. */
function rowLabel(row: Rec | undefined, input: CaseInput): string {
  if (!row) return '(none)';
  const pk = (input.primary_key ?? []).filter((k) => k in row);
  const keys = pk.length
    ? pk
    : Object.keys(row)
        .filter((k) => !k.startsWith('_dlt_') || k === '_dlt_list_idx')
        .slice(0, 3);
  const shown = Object.fromEntries(keys.map((k) => [k, row[k]]));
  if ('_dlt_parent_id' in row) shown._dlt_parent_id = row._dlt_parent_id ?? null;
  return JSON.stringify(shown);
}

/**
 * Pairs actual rows with expected rows. Child rows pair on (_dlt_parent_id, _dlt_list_idx) once the parent ids
 * are translated; other rows on the most equal values (ids excluded when they are random).
 */
function pairRows(expected: Rec[], actual: Rec[], ignoreIds: boolean): [Rec | undefined, Rec | undefined][] {
  const pairs: [Rec | undefined, Rec | undefined][] = [];
  const left = new Set(actual.map((_, i) => i));
  const score = (e: Rec, a: Rec) => {
    let n = 0;
    for (const k of Object.keys(e))
      if (!(ignoreIds && ID_COLUMNS.has(k)) && same(e[k], a[k]))
        n += k === '_dlt_parent_id' || k === '_dlt_list_idx' ? 100 : 1;
    return n;
  };
  // the best pairs first, so a near-duplicate does not take another row's partner
  const candidates: [number, number, number][] = [];
  expected.forEach((e, i) => actual.forEach((a, j) => candidates.push([score(e, a), i, j])));
  candidates.sort((x, y) => y[0] - x[0] || x[1] - y[1] || x[2] - y[2]);
  const taken = new Set<number>();
  const partner = new Map<number, number>();
  for (const [s, i, j] of candidates) {
    if (s === 0 || taken.has(i) || !left.has(j)) continue;
    taken.add(i);
    left.delete(j);
    partner.set(i, j);
  }
  expected.forEach((e, i) => pairs.push([e, partner.has(i) ? actual[partner.get(i)!] : undefined]));
  for (const j of left) pairs.push([undefined, actual[j]]);
  return pairs;
}

interface RunContext {
  input: CaseInput;
  run: number;
  loadTokens: Map<string, string>;
  instants: [number, string][];
}

/** The port's load ids and load instants, as the fixture's tokens. */
function tokenize(rows: Rec[], ctx: RunContext): Rec[] {
  return rows.map((r) =>
    Object.fromEntries(
      Object.entries(r).map(([k, v]) => {
        if (typeof v === 'string' && ctx.loadTokens.has(v)) return [k, ctx.loadTokens.get(v)!];
        if ((k === '_dlt_valid_from' || k === '_dlt_valid_to') && typeof v === 'string') {
          const at = Date.parse(v) / 1000;
          const hit = ctx.instants.find(([t]) => Math.abs(t - at) < 0.002);
          if (hit) return [k, `<timestamp of ${hit[1]}>`];
        }
        return [k, v];
      }),
    ),
  );
}

/** Every difference between the dataset after a run and dlt's, one precise line each. */
function compareDataset(exp: Record<string, ExpTable>, act: Record<string, ActualTable>, ctx: RunContext): string[] {
  const out: string[] = [];
  const at = `[${ctx.input.name}] run ${ctx.run}`;
  for (const t of Object.keys(exp))
    if (!(t in act)) out.push(`${at}: table ${t} missing (dlt has it, ${exp[t]!.rows.length} rows)`);
  for (const t of Object.keys(act))
    if (!(t in exp))
      out.push(
        `${at}: table ${t} not in dlt's dataset (port has ${act[t]!.rows.length} rows; columns ${act[t]!.columns.map((c) => c.name).join(', ')})`,
      );
  const parents = new Map(Object.entries(exp).map(([n, t]) => [n, t.parent]));
  const names = [...new Set([...Object.keys(exp), ...Object.keys(act)])];
  const order = names
    .filter((t) => t in exp && t in act)
    .sort((a, b) => ancestry(a, parents, names) - ancestry(b, parents, names) || a.localeCompare(b));
  const random = rootIdKind(ctx.input) === 'random';
  const given = userIds(ctx.input);
  const idMap = new Map<string, string>(); // port id -> dlt id, for ids that are random in dlt
  for (const t of order) {
    const e = exp[t]!;
    const a = act[t]!;
    const where = `${at}, table ${t}`;
    // columns: names in order, SQL types, nullability
    const en = e.columns.map((c) => c.name);
    const an = a.columns.map((c) => c.name);
    for (const c of e.columns) {
      const ac = a.columns.find((x) => x.name === c.name);
      if (!ac) out.push(`${where}: column ${c.name} missing (dlt: ${c.sql_type}${c.variant ? ', variant' : ''})`);
      else {
        if (ac.sql_type !== c.sql_type) out.push(`${where}, column ${c.name}: type ${ac.sql_type}, dlt ${c.sql_type}`);
        const nullable = (c.nullable_in_destination as boolean | undefined) ?? c.nullable;
        if (ac.nullable !== nullable)
          out.push(
            `${where}, column ${c.name}: ${ac.nullable ? 'nullable' : 'NOT NULL'}, dlt ${nullable ? 'nullable' : 'NOT NULL'}`,
          );
      }
    }
    for (const c of a.columns)
      if (!en.includes(c.name)) out.push(`${where}: column ${c.name} (${c.sql_type}) not in dlt's table`);
    const common = en.filter((n) => an.includes(n));
    const actualOrder = an.filter((n) => en.includes(n));
    if (common.join() !== actualOrder.join())
      out.push(`${where}: column order [${actualOrder.join(', ')}], dlt [${common.join(', ')}]`);
    // rows: translate ids that are random in dlt, pair, compare
    const rows = tokenize(a.rows, ctx).map((r) => {
      const x = { ...r };
      for (const k of ['_dlt_parent_id', '_dlt_root_id'])
        if (typeof x[k] === 'string' && idMap.has(x[k] as string)) x[k] = idMap.get(x[k] as string)!;
      return x;
    });
    const randomHere = random; // child ids follow their root's kind: random roots, random-derived children
    const pairs = pairRows(e.rows, rows, randomHere);
    for (const [er, ar] of pairs) {
      if (er && ar && randomHere && typeof ar._dlt_id === 'string' && typeof er._dlt_id === 'string') {
        if (!given.has(ar._dlt_id) && !given.has(er._dlt_id)) {
          idMap.set(ar._dlt_id, er._dlt_id);
          ar._dlt_id = er._dlt_id;
        }
      }
    }
    for (const [er, ar] of pairs) {
      if (!ar) {
        out.push(`${where}: row ${rowLabel(er, ctx.input)} missing: dlt has ${show(er)}`);
        continue;
      }
      if (!er) {
        out.push(`${where}: row ${rowLabel(ar, ctx.input)} not in dlt's table: port has ${show(ar)}`);
        continue;
      }
      for (const c of common) {
        if (!same(er[c], ar[c]))
          out.push(`${where}, row ${rowLabel(er, ctx.input)}, column ${c}: port ${show(ar[c])}, dlt ${show(er[c])}`);
      }
      for (const c of en.filter((n) => !an.includes(n)))
        if (er[c] !== null)
          out.push(`${where}, row ${rowLabel(er, ctx.input)}, column ${c} (missing): dlt ${show(er[c])}`);
      for (const c of an.filter((n) => !en.includes(n)))
        if (ar[c] !== null)
          out.push(`${where}, row ${rowLabel(er, ctx.input)}, column ${c} (not in dlt): port ${show(ar[c])}`);
    }
  }
  return out;
}

// ─── dlt's metadata ───────────────────────────────────────────────────────────────────────────────

/** Every path where two JSON values differ (object key order aside), as `path: port …, dlt …` lines. */
function jsonDiff(exp: unknown, act: unknown, path: string, out: string[]): void {
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObj(exp) && isObj(act)) {
    for (const k of Object.keys(exp))
      if (k in act) jsonDiff(exp[k], act[k], `${path}.${k}`, out);
      else out.push(`${path}.${k}: port (missing), dlt ${show(exp[k])}`);
    for (const k of Object.keys(act)) if (!(k in exp)) out.push(`${path}.${k}: port ${show(act[k])}, dlt (missing)`);
  } else if (!same(exp, act)) out.push(`${path}: port ${show(act)}, dlt ${show(exp)}`);
}

/**
 * Differences between the port's stored schema and dlt's: table by table, columns in order, then every other
 * key of the schema (hints, settings, normalizers). Only `version` and `previous_hashes` are not compared: they
 * count in-memory versions dlt never stores, and neither enters the version hash.
 */
function compareStoredSchema(exp: StoredSchema, act: StoredSchema, where: string): string[] {
  const out: string[] = [];
  for (const [t, et] of Object.entries(exp.tables)) {
    const at = act.tables?.[t];
    if (!at) continue;
    const ec = Object.keys(et.columns);
    const ac = Object.keys(at.columns ?? {});
    if (ec.join() !== ac.join())
      out.push(`${where}, schema table ${t}: columns [${ac.join(', ')}], dlt [${ec.join(', ')}]`);
  }
  const { version: _v, previous_hashes: _p, ...expContent } = exp;
  const { version: _av, previous_hashes: _ap, ...actContent } = act;
  void [_v, _p, _av, _ap];
  jsonDiff(expContent, actContent, `${where}: schema`, out);
  return out;
}

async function compareMeta(db: Db, exp: ExpRun, ctx: RunContext): Promise<string[]> {
  const at = `[${ctx.input.name}] run ${ctx.run}`;
  const out: string[] = [];
  const versions = await readMeta(db, '_dlt_version', 'version');
  const expVersions = exp.dlt_version ?? [];
  if (!versions) out.push(`${at}: no _dlt_version table (dlt has ${expVersions.length} row(s))`);
  else {
    if (versions.length !== expVersions.length)
      out.push(`${at}: _dlt_version has ${versions.length} row(s), dlt ${expVersions.length}`);
    const newest = versions[versions.length - 1];
    const expNewest = expVersions[expVersions.length - 1];
    if (newest && expNewest) {
      if (newest.version_hash !== expNewest.version_hash)
        out.push(
          `${at}: newest _dlt_version.version_hash ${show(newest.version_hash)}, dlt ${show(expNewest.version_hash)}`,
        );
      if (Number(newest.engine_version) !== expNewest.engine_version)
        out.push(`${at}: _dlt_version.engine_version ${show(newest.engine_version)}, dlt ${expNewest.engine_version}`);
      if (newest.schema_name !== expNewest.schema_name)
        out.push(`${at}: _dlt_version.schema_name ${show(newest.schema_name)}, dlt ${show(expNewest.schema_name)}`);
      let schema: StoredSchema | null = null;
      try {
        schema = JSON.parse(String(newest.schema)) as StoredSchema;
      } catch (e) {
        out.push(`${at}: _dlt_version.schema is not JSON: ${String(e)}`);
      }
      if (schema) out.push(...compareStoredSchema(expNewest.schema, schema, `${at}, _dlt_version`));
    }
  }
  const loads = (await readMeta(db, '_dlt_loads', 'load_id')) ?? [];
  const expLoads = exp.dlt_loads ?? [];
  if (loads.length !== expLoads.length)
    out.push(`${at}: _dlt_loads has ${loads.length} row(s), dlt ${expLoads.length}`);
  loads.forEach((l, i) => {
    const e = expLoads[i];
    if (!e) return;
    if (l.status !== e.status && Number(l.status) !== e.status)
      out.push(`${at}: _dlt_loads row ${i + 1} status ${show(l.status)}, dlt ${e.status}`);
    if (l.schema_name !== e.schema_name)
      out.push(`${at}: _dlt_loads row ${i + 1} schema_name ${show(l.schema_name)}, dlt ${show(e.schema_name)}`);
    if (l.schema_version_hash !== e.schema_version_hash)
      out.push(
        `${at}: _dlt_loads row ${i + 1} schema_version_hash ${show(l.schema_version_hash)}, dlt ${show(e.schema_version_hash)}`,
      );
  });
  return out;
}

// ─── State ────────────────────────────────────────────────────────────────────────────────────────

const decodeState = (text: string) =>
  JSON.parse(inflateSync(Buffer.from(text, 'base64')).toString('utf8')) as Record<string, Json>;
/** dlt's generate_state_version_hash: sha3-256 of the sorted, compact JSON without the version keys and _local. */
function dltStateHash(state: Record<string, Json>): string {
  const { _state_version, _state_engine_version, _version_hash, _local, ...content } = state;
  void [_state_version, _state_engine_version, _version_hash, _local];
  return createHash('sha3-256')
    .update(JSON.stringify(sortKeys(content)))
    .digest('base64');
}

/**
 * The port's own state rows of the incremental cases, as the real dlt decoded them (dlt's decompress_state and
 * version hash; state/decode-in-dlt.py): the port must keep writing rows that dlt reads as exactly that.
 */
const PORT_ROWS_IN_DLT = (
  JSON.parse(readFileSync(new URL('./fixtures/dlt-parity/state/port-rows-in-dlt.json', import.meta.url), 'utf8')) as {
    rows: { case: string; run: number; state: string; decoded_by_dlt: Rec; version_hash_by_dlt: string }[];
  }
).rows;

async function compareState(db: Db, exp: ExpRun | undefined, ctx: RunContext): Promise<string[]> {
  const at = `[${ctx.input.name}] run ${ctx.run}`;
  if (!exp?.pipeline_state_row) return [];
  const rows = await readMeta(db, '_dlt_pipeline_state', 'version');
  const newest = rows?.[rows.length - 1];
  if (!newest) return [`${at}: no _dlt_pipeline_state row (dlt wrote version ${exp.pipeline_state_row.row.version})`];
  const out: string[] = [];
  const state = decodeState(String(newest.state));
  const inDlt = PORT_ROWS_IN_DLT.find((r) => r.case === ctx.input.name && r.run === ctx.run);
  if (!inDlt) out.push(`${at}: state/port-rows-in-dlt.json has no row for this run (run decode-in-dlt.py)`);
  else {
    if (!same(state, inDlt.decoded_by_dlt))
      out.push(
        `${at}, _dlt_pipeline_state: ${show(state)}, but dlt decoded the port's row as ${show(inDlt.decoded_by_dlt)}`,
      );
    if (newest.version_hash !== inDlt.version_hash_by_dlt)
      out.push(
        `${at}, _dlt_pipeline_state: version_hash ${show(newest.version_hash)}, dlt's ${inDlt.version_hash_by_dlt}`,
      );
  }
  const e = exp.pipeline_state_row.decoded;
  for (const k of [
    'pipeline_name',
    'dataset_name',
    'default_schema_name',
    'schema_names',
    'destination_type',
    '_state_engine_version',
    'sources',
  ])
    if (!same(state[k] ?? null, e[k] ?? null))
      out.push(`${at}, _dlt_pipeline_state: ${k} ${show(state[k])}, dlt ${show(e[k])}`);
  if (newest.version_hash !== dltStateHash(state))
    out.push(
      `${at}, _dlt_pipeline_state: version_hash ${show(newest.version_hash)} is not dlt's hash of its content (${dltStateHash(state)})`,
    );
  if (Number(newest.version) !== exp.pipeline_state_row.row.version)
    out.push(
      `${at}, _dlt_pipeline_state: version ${show(newest.version)}, dlt ${show(exp.pipeline_state_row.row.version)}`,
    );
  if (Number(newest.engine_version) !== exp.pipeline_state_row.row.engine_version)
    out.push(
      `${at}, _dlt_pipeline_state: engine_version ${show(newest.engine_version)}, dlt ${show(exp.pipeline_state_row.row.engine_version)}`,
    );
  return out;
}

// ─── Running a case ───────────────────────────────────────────────────────────────────────────────

interface CaseResult {
  data: string[];
  meta: string[];
  state: string[];
}

async function runCase(fx: Fixture, dir: string): Promise<CaseResult> {
  const result: CaseResult = { data: [], meta: [], state: [] };
  const loadTokens = new Map<string, string>();
  const instants: [number, string][] = [];
  let loads = 0;
  for (const [i, rows] of fx.input.runs.entries()) {
    const exp = fx.expected.runs[i]!;
    const ctx: RunContext = { input: fx.input, run: i + 1, loadTokens, instants };
    const summary: RunSummary = await runFlight({
      ...caseSettings(fx.input, dir),
      source: caseSource(fx.input, rows),
      log: () => {},
      terminal: null,
    });
    const at = `[${fx.input.name}] run ${i + 1}`;
    if (summary.status === 'succeeded' && summary.loadId) {
      loads++;
      loadTokens.set(summary.loadId, `<load_id:${loads}>`);
      instants.push([Number(summary.loadId), `<load_id:${loads}>`]);
    }
    if (exp.error && summary.status === 'succeeded')
      result.data.push(
        `${at}: the port succeeded; dlt failed (${exp.error.step}: ${exp.error.type}: ${exp.error.message})`,
      );
    if (!exp.error && summary.status !== 'succeeded')
      result.data.push(`${at}: the port's run failed: ${summary.error}`);
    await withDb(dir, async (db) => {
      result.data.push(...compareDataset(exp.tables, await readDataset(db), ctx));
      result.meta.push(...(await compareMeta(db, exp, ctx)));
      if (fx.input.incremental) result.state.push(...(await compareState(db, exp, ctx)));
    });
  }
  return result;
}

/**
 * Cases are independent (a DuckDB file each), so several run at once: a run spends much of its time waiting
 * (the Parquet worker starting, DuckDB opening and checkpointing its file), which the others fill.
 */
const CONCURRENT_CASES = Number(process.env.PARITY_CONCURRENCY ?? 4);
let running = 0;
const waiting: (() => void)[] = [];
async function runCaseInTempDir(fx: Fixture): Promise<CaseResult> {
  if (running >= CONCURRENT_CASES) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  const dir = await mkdtemp(join(TMP, 'flight-parity-'));
  try {
    return await runCase(fx, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
    running--;
    waiting.shift()?.();
  }
}

/** Defines the tests of part `part` of `parts` of the corpus (test/parity.test.ts, test/parity-2.test.ts). */
export function paritySuite(part: number, parts: number): void {
  const fixtures = partOf(part, parts);
  // every case starts now, CONCURRENT_CASES at a time; each suite below awaits its own
  const results = new Map(fixtures.map((fx) => [fx, runCaseInTempDir(fx)]));
  for (const result of results.values()) result.catch(() => {}); // reported by the suite's `before`

  const report = (lines: string[]) => `${lines.length} difference(s) from dlt:\n  ${lines.join('\n  ')}`;

  for (const fx of fixtures) {
    const needs = fx.input.needs?.length ? ` [needs ${fx.input.needs.join(', ')}]` : '';
    describe(`${fx.input.name}: ${fx.input.description}${needs}`, () => {
      let result: CaseResult | undefined;
      before(async () => {
        result = await results.get(fx)!;
      });

      const kept = fx.input.kept_deviation;
      if (kept)
        test(`tables, columns, types and values after every run match dlt but for a kept deviation`, () => {
          assert.deepEqual(
            [...result!.data].sort(),
            [...kept.differences].sort(),
            `${kept.why}\n${report(result!.data)}`,
          );
        });
      else
        test('tables, columns, types and values after every run match dlt', () => {
          if (result!.data.length) assert.fail(report(result!.data));
        });
      test('_dlt_version and _dlt_loads match dlt after every run', () => {
        if (result!.meta.length) assert.fail(report(result!.meta));
      });
      if (fx.input.incremental) {
        test('pipeline state after every run matches the state dlt writes', () => {
          if (result!.state.length) assert.fail(report(result!.state));
        });
        test("the port's state rows decode in dlt: the fixture's rows, decoded here, are what dlt decoded", () => {
          const rows = PORT_ROWS_IN_DLT.filter((r) => r.case === fx.input.name);
          assert.equal(rows.length, fx.input.runs.length, 'a row for every run');
          for (const r of rows) {
            assert.deepEqual(decodeState(r.state), r.decoded_by_dlt);
            assert.equal(dltStateHash(r.decoded_by_dlt), r.version_hash_by_dlt);
          }
        });
        test('a state row written by dlt is read by the port and the incremental cursor continues', async (t) => {
          const first = fx.expected.runs[0]!.pipeline_state_row!;
          // the fixture's hash recipe is dlt's own: it reproduces the version_hash dlt wrote
          assert.equal(dltStateHash(first.decoded), first.row.version_hash);
          assert.deepEqual(decodeState(String(first.row.state)), first.decoded);
          const fresh = await mkdtemp(join(TMP, 'flight-parity-state-'));
          t.after(() => rm(fresh, { recursive: true, force: true }));
          const dltLoadId = '1640995200.000001';
          const instance = await DuckDBInstance.create(join(fresh, 'flights_demo.duckdb'));
          try {
            const conn = await instance.connect();
            await conn.run(`CREATE SCHEMA ${DATASET}`);
            // the tables as dlt's duckdb destination creates them, holding dlt's rows of run 1
            await conn.run(
              `CREATE TABLE ${DATASET}._dlt_loads (load_id VARCHAR NOT NULL, schema_name VARCHAR, status BIGINT NOT NULL, inserted_at TIMESTAMP WITH TIME ZONE NOT NULL, schema_version_hash VARCHAR)`,
            );
            await conn.run(
              `CREATE TABLE ${DATASET}._dlt_pipeline_state (version BIGINT NOT NULL, engine_version BIGINT NOT NULL, pipeline_name VARCHAR NOT NULL, state VARCHAR NOT NULL, created_at TIMESTAMP WITH TIME ZONE NOT NULL, version_hash VARCHAR, _dlt_load_id VARCHAR NOT NULL, _dlt_id VARCHAR NOT NULL)`,
            );
            await conn.run(`INSERT INTO ${DATASET}._dlt_loads VALUES ($1, $2, 0, now(), $3)`, [
              dltLoadId,
              PIPELINE,
              fx.expected.runs[0]!.dlt_loads?.[0]?.schema_version_hash ?? null,
            ]);
            await conn.run(
              `INSERT INTO ${DATASET}._dlt_pipeline_state VALUES ($1, $2, $3, $4, now(), $5, $6, 'dltRowId0000')`,
              [
                Number(first.row.version),
                Number(first.row.engine_version),
                String(first.row.pipeline_name),
                String(first.row.state),
                String(first.row.version_hash),
                dltLoadId,
              ],
            );
            conn.closeSync();
          } finally {
            instance.closeSync();
          }
          const summary = await runFlight({
            ...caseSettings(fx.input, fresh),
            source: caseSource(fx.input, fx.input.runs[1]!),
            log: () => {},
            terminal: null,
          });
          assert.equal(summary.status, 'succeeded', `the port's run after dlt's state failed: ${summary.error}`);
          // what dlt loaded in run 2 (its rows with <load_id:2>) is what the port loads now
          const root = fx.input.table;
          const expected = fx.expected.runs[1]!.tables[root]!.rows.filter((r) => r._dlt_load_id === '<load_id:2>');
          const actual = (await withDb(fresh, readDataset))[root]?.rows ?? [];
          const strip = (rows: Rec[]) =>
            rows
              .map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('_dlt_'))))
              .map((r) => JSON.stringify(sortKeys(r)))
              .sort();
          assert.deepEqual(
            strip(actual),
            strip(expected),
            `[${fx.input.name}] rows loaded after dlt's state row differ from dlt's run 2`,
          );
        });
      }
    });
  }
}
