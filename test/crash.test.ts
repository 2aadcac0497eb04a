// Crashes: the Flight (a child process running the slow-flight fixture: ~100k root rows plus one
// child-table row each, over a couple of seconds) is SIGKILLed at varied random moments: at any
// time, during extract, during load, and right after the commit (while closing). After each kill a normal run must succeed, and then:
// the tables hold exactly the data of the committed runs (whole runs, no partial rows, no
// duplicates, no orphaned child rows), the ledger and _dlt_loads agree with the data, no staging
// tables or stale working folders are left, and the DuckDB file opens cleanly.
//
//   CRASH_LOOPS  kills per test run (default 6; a release check runs e.g. CRASH_LOOPS=100)
//   CRASH_ROWS   root rows of a killed run (default 100000)
//   CRASH_SEED   seed for the kill moments (default: random, printed as a diagnostic)
import { prng } from '../bench/synthetic.ts'; // seeded, so a failing sequence of kill moments can be replayed with CRASH_SEED
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runFlight, type Row as SourceRow, type RunSummary } from '../flight.ts';
import { dbFile, listDir, query, sleep, tableNames, tempDir, type Env } from './support.ts';
import { SLOW_FLIGHT, startChild, type ChildRun } from './fixtures/child.ts';

const LOOPS = Number(process.env.CRASH_LOOPS || 6);
const ROWS = Number(process.env.CRASH_ROWS || 100_000);
const SEED = Number(process.env.CRASH_SEED || Math.floor(Math.random() * 2 ** 31));
const RECOVERY_ROWS = 50;
const DISPOSITIONS = ['replace', 'merge', 'append'] as const;
const MODES = ['any time', 'during extract', 'during load', 'right after commit'] as const;

/** The fixture's row shape, for runs made in this process. */
function rowsOf(run: number, n: number): SourceRow[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${run}-${i}`,
    run,
    i,
    n,
    payload: `run ${run} row ${i} ${'x'.repeat(24)}`,
    items: [{ run, i, k: 0 }],
  }));
}

/** runFlight in this process with TMPDIR pointed at the test's folder (so its sweep of stale working folders is what is checked). */
async function runHere(tmp: string, env: Env, rows: SourceRow[]): Promise<RunSummary> {
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  try {
    return await runFlight({ env, source: () => rows, log: () => {} });
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
}

/** Last `@flight-run <step> <status>` the child printed: where it was when killed. */
function phase(child: ChildRun): string {
  const last = child.lines.filter((l) => l.startsWith('@flight-run ')).at(-1);
  return last ? last.split(' ').slice(1, 3).join(' ') : 'starting';
}

test(`SIGKILL at ${LOOPS} random moments during extract and load: the next run succeeds; exactly the committed runs' rows, no partial rows, duplicates, orphans, staging tables or stale working folders; the file opens cleanly`, async (t) => {
  const random = prng(SEED);
  t.diagnostic(`CRASH_SEED=${SEED} CRASH_LOOPS=${LOOPS} CRASH_ROWS=${ROWS}`);
  const dir = await tempDir(t, 'flight-crash-');
  const dataDir = join(dir, 'data');
  const tmp = join(dir, 'tmp');
  await mkdir(tmp);
  const db = dbFile(dataDir);
  const base: Env = {
    LOCAL_DATA_DIR: dataDir,
    TABLE_NAME: 't',
    PRIMARY_KEY: 'id',
    GITHUB_API_URL: 'http://127.0.0.1:9',
  };

  /** Runs expected in the table, with their row counts. */
  const model = new Map<number, number>();
  const seed = await runHere(tmp, { ...base, WRITE_DISPOSITION: 'append' }, rowsOf(0, RECOVERY_ROWS));
  assert.equal(seed.status, 'succeeded', seed.error);
  model.set(0, RECOVERY_ROWS);
  const phases: string[] = [];

  for (let k = 0; k < LOOPS; k++) {
    const killedRun = 1 + 2 * k;
    const recoveryRun = killedRun + 1;
    const disposition = DISPOSITIONS[(k + 1 + Math.floor(k / MODES.length)) % 3]!; // every mode meets every disposition over 12 loops
    const mode = MODES[k % MODES.length]!;
    const ledgerBefore = (await query(db, 'SELECT count(*)::INT AS n FROM main.dlt_ingest_runs'))[0]!.n as number;

    const child = startChild(
      SLOW_FLIGHT,
      {
        ...base,
        TMPDIR: tmp,
        WRITE_DISPOSITION: disposition,
        BATCH_ROWS: '25000',
        FIXTURE_RUN: String(killedRun),
        FIXTURE_ROWS: String(ROWS),
        FIXTURE_CHILDREN: '1',
        FIXTURE_SLEEP_EVERY: '10000',
        FIXTURE_SLEEP_MS: '100',
      },
      { t },
    );
    if (mode === 'during extract') {
      await child.waitForLine(/^@flight-run extract running/);
      await sleep(random() * 1200);
    } else if (mode === 'during load') {
      await child.waitForLine(/^@flight-run load running/); // the load step takes ~40-300 ms
      await sleep(random() * 25);
    } else if (mode === 'right after commit') {
      await child.waitForLine(/^@flight-run ledger ok/); // committed; now closing (checkpoint) and cleaning up
      await sleep(random() * 40);
    } else {
      await sleep(random() * 3500);
    }
    const where = phase(child);
    child.child.kill('SIGKILL');
    const res = await child.exited;
    const killed = res.signal === 'SIGKILL';
    if (!killed) assert.equal(res.code, 0, `a run that was not killed must have succeeded: ${res.stderr}`);
    phases.push(killed ? where : 'finished before the kill');

    // A run killed mid-way leaves its working folder behind (named with its pid) ...
    const leftBehind = (await listDir(join(tmp, 'flight-dlt-ingest'))).filter((name) => name.endsWith(`-${child.pid}`));
    if (killed && (where === 'extract running' || where === 'load running'))
      assert.equal(leftBehind.length, 1, `loop ${k}: the killed run's working folder is there before the next run`);

    // The next normal run succeeds (and sweeps that folder).
    const recovery = await runHere(tmp, { ...base, WRITE_DISPOSITION: 'append' }, rowsOf(recoveryRun, RECOVERY_ROWS));
    assert.equal(
      recovery.status,
      'succeeded',
      `loop ${k}: the run after the kill (${mode}, ${where}) must succeed: ${recovery.error}`,
    );

    // Did the killed run commit? Its ledger row is written in the load transaction.
    const ledger = await query(db, 'SELECT status, load_id FROM main.dlt_ingest_runs ORDER BY run_at');
    const growth = ledger.length - ledgerBefore;
    assert.ok(growth === 1 || growth === 2, `loop ${k}: one or two new ledger rows, got ${growth}`);
    const committed = growth === 2;
    if (!killed) assert.ok(committed, 'a run that exited 0 committed');
    if (committed) {
      if (disposition === 'replace') model.clear();
      model.set(killedRun, ROWS);
    }
    model.set(recoveryRun, RECOVERY_ROWS);
    t.diagnostic(
      `loop ${k}: ${disposition}, killed ${mode} after "${phases.at(-1)}" -> ${committed ? 'committed' : 'rolled back'}`,
    );

    // Exactly the committed runs, each complete and without duplicates.
    const perRun = await query(
      db,
      `SELECT run::INT AS run, count(*)::INT AS rows, count(DISTINCT i)::INT AS distinct_i, min(i)::INT AS lo, max(i)::INT AS hi,
              count(DISTINCT id)::INT AS ids, count(DISTINCT _dlt_load_id)::INT AS loads, min(n)::INT AS n,
              count(*) FILTER (payload IS NULL OR n IS NULL OR _dlt_id IS NULL)::INT AS incomplete
       FROM flights_demo_dlt.t GROUP BY run ORDER BY run`,
    );
    const expected = [...model]
      .sort(([a], [b]) => a - b)
      .map(([run, n]) => ({ run, rows: n, distinct_i: n, lo: 0, hi: n - 1, ids: n, loads: 1, n, incomplete: 0 }));
    assert.deepEqual(perRun, expected, `loop ${k}: the table holds exactly the committed runs, each whole`);

    const [children] = await query(
      db,
      `SELECT count(*)::INT AS total,
              count(*) FILTER (p._dlt_id IS NULL)::INT AS orphans,
              count(*) FILTER (p._dlt_id IS NOT NULL AND (c.run <> p.run OR c.i <> p.i))::INT AS mismatched,
              (SELECT count(*)::INT FROM (SELECT _dlt_parent_id FROM flights_demo_dlt.t__items GROUP BY 1 HAVING count(*) > 1)) AS duplicated
       FROM flights_demo_dlt.t__items AS c LEFT JOIN flights_demo_dlt.t AS p ON c._dlt_parent_id = p._dlt_id`,
    );
    const total = [...model.values()].reduce((a, b) => a + b, 0);
    assert.deepEqual(
      children,
      { total, orphans: 0, mismatched: 0, duplicated: 0 },
      `loop ${k}: one child row per root row, no orphans`,
    );

    // Ledger, _dlt_loads and the data agree; every ledger row is a whole, successful run.
    assert.ok(
      ledger.every((r) => r.status === 'succeeded'),
      `loop ${k}: ${JSON.stringify(ledger.map((r) => r.status))}`,
    );
    assert.equal(new Set(ledger.map((r) => r.load_id)).size, ledger.length, 'no ledger row twice');
    const loads = (
      await query(db, 'SELECT load_id FROM flights_demo_dlt._dlt_loads WHERE status = 0 ORDER BY load_id')
    ).map((r) => String(r.load_id));
    assert.deepEqual(
      loads,
      ledger.map((r) => String(r.load_id)).sort(),
      `loop ${k}: _dlt_loads lists exactly the committed loads`,
    );
    const inTable = (await query(db, 'SELECT DISTINCT _dlt_load_id AS id FROM flights_demo_dlt.t')).map((r) =>
      String(r.id),
    );
    for (const id of inTable) assert.ok(loads.includes(id), `loop ${k}: rows of load ${id} belong to a committed load`);
    const dangling = await query(
      db,
      `SELECT l.load_id FROM flights_demo_dlt._dlt_loads AS l
       WHERE NOT EXISTS (SELECT 1 FROM flights_demo_dlt._dlt_version AS v WHERE v.version_hash = l.schema_version_hash)`,
    );
    assert.deepEqual(dangling, [], `loop ${k}: every load names a stored schema version (_dlt_version)`);

    // No staging tables, no stale working folders.
    const tables = await tableNames(db);
    assert.deepEqual(
      tables,
      [
        'flights_demo_dlt._dlt_loads',
        'flights_demo_dlt._dlt_pipeline_state',
        'flights_demo_dlt._dlt_version',
        'flights_demo_dlt.t',
        'flights_demo_dlt.t__items',
        'main.dlt_ingest_runs',
      ],
      `loop ${k}: only the expected tables`,
    );
    assert.deepEqual(
      await listDir(join(tmp, 'flight-dlt-ingest')),
      [],
      `loop ${k}: the killed run's working folder was swept by the next run`,
    );
  }

  // The file opens cleanly for writing too, checkpoints, and still says the same.
  const before = await query(db, 'SELECT count(*)::INT AS n FROM flights_demo_dlt.t');
  await query(db, 'CHECKPOINT', { write: true });
  assert.deepEqual(await query(db, 'SELECT count(*)::INT AS n FROM flights_demo_dlt.t'), before);

  t.diagnostic(`kill moments: ${phases.join(' | ')}`);
  if (LOOPS >= 3) {
    assert.ok(phases.includes('extract running'), `at least one kill landed during extract: ${phases.join(' | ')}`);
    assert.ok(phases.includes('load running'), `at least one kill landed during load: ${phases.join(' | ')}`);
  }
});
