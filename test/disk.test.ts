// Disk: the working folder (<TMPDIR>/flight-dlt-ingest/...) unusable or full.
// - Not a folder (TMPDIR under a regular file: ENOTDIR), read-only, or full before the run:
//   a clear failure naming the folder, before the destination is touched (no DuckDB file, no
//   ledger row, no request), exit 1, and runFlight resolves instead of throwing.
// - Full during extract (a tiny tmpfs): a clear failure naming the loader file, the previous
//   data untouched, a 'failed' ledger row, and the partial working folder removed.
// Read-only and full folders need a tmpfs mount (root): these tests run when `mount -t tmpfs`
// works and are reported as skipped, with the reason, when it does not. As root, chmod 0555 does
// not stop writes, so a read-only tmpfs is used instead when chmod alone is not enough.
import { test, describe } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFlight, type RunSummary } from '../flight.ts';
import { dbFile, listDir, query, runCli, startFakeGitHub, tempDir, testEnv, type Env } from './support.ts';
import { SLOW_FLIGHT, startChild } from './fixtures/child.ts';

// tsx caches compiled files under TMPDIR; with the cache off the CLI starts even when TMPDIR is
// unusable, so what is tested is the Flight, not the loader.
const NO_TSX_CACHE: Env = { TSX_DISABLE_CACHE: '1' };

function mountTmpfs(dir: string, options: string): boolean {
  return spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'ignore' }).status === 0;
}
function unmount(dir: string): void {
  spawnSync('umount', ['-l', dir], { stdio: 'ignore' });
}

/** Can this process mount a tmpfs? Probed once, left as found. */
const CAN_MOUNT = (() => {
  const dir = mkdtempSync(join(tmpdir(), 'flight-mount-probe-'));
  try {
    if (!mountTmpfs(dir, 'size=64k')) return false;
    unmount(dir);
    return true;
  } finally {
    rmdirSync(dir);
  }
})();
const NEEDS_MOUNT = CAN_MOUNT
  ? false
  : 'cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN); a full or read-only working folder is not testable';

/** A tmpfs mounted on a fresh folder of its own; unmounted, then removed, after the test. */
function tmpfs(t: TestContext, options: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'flight-disk-mnt-'));
  t.after(() => {
    unmount(dir);
    rmSync(dir, { recursive: true, force: true });
  });
  assert.ok(mountTmpfs(dir, options), `mount -t tmpfs -o ${options}`);
  return dir;
}

/** Writes into `dir` until it is full. */
function fill(dir: string): void {
  const chunk = Buffer.alloc(4096, 1);
  for (let i = 0; ; i++) {
    try {
      writeFileSync(join(dir, `filler-${i}`), chunk);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOSPC') return;
      throw e;
    }
  }
}

/** The CLI with `tmp` as TMPDIR; asserts a failure before the destination was touched. Returns stderr. */
async function assertFailsBeforeDestination(t: TestContext, tmp: string, why: RegExp): Promise<string> {
  const dir = await tempDir(t, 'flight-disk-');
  const gh = await startFakeGitHub(t);
  const dataDir = join(dir, 'data');
  const cwd = join(dir, 'cwd');
  await mkdir(cwd);
  const res = await runCli({ ...testEnv(dataDir, gh), ...NO_TSX_CACHE, TMPDIR: tmp }, { cwd });
  t.diagnostic(`stderr: ${res.stderr.trim()}`);
  assert.equal(res.code, 1, `exit 1; stdout: ${res.stdout}\nstderr: ${res.stderr}`);
  assert.match(res.stderr, /Flight failed/, 'the CLI reports the failure itself');
  assert.doesNotMatch(
    res.stderr,
    /^\s+at .*\(.*:\d+:\d+\)$/m,
    'a clear message, not a stack trace of an uncaught exception',
  );
  assert.ok(res.stderr.includes(join(tmp, 'flight-dlt-ingest')), `the message names the working folder: ${res.stderr}`);
  assert.match(res.stderr, why);
  assert.match(res.stderr, /TMPDIR/, 'the message says how to fix it');
  assert.equal(
    existsSync(dataDir),
    false,
    'the destination was not touched: no LOCAL_DATA_DIR, no DuckDB file, no ledger row',
  );
  assert.equal(gh.requests.length, 0, 'the source was not called');
  assert.deepEqual(await listDir(cwd), []);
  return res.stderr;
}

/** runFlight in this process with TMPDIR pointed elsewhere for the run. */
async function runWithTmpdir(tmp: string, env: Env): Promise<RunSummary> {
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  try {
    return await runFlight({ env, log: () => {} });
  } finally {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
  }
}

describe('working folder unusable before the run', () => {
  test('TMPDIR under a regular file (ENOTDIR): CLI exits 1 naming the folder, before the destination is touched', async (t) => {
    const dir = await tempDir(t, 'flight-disk-');
    await writeFile(join(dir, 'file'), 'not a folder');
    await assertFailsBeforeDestination(t, join(dir, 'file', 'sub'), /ENOTDIR|not a directory/);
  });

  test('TMPDIR under a regular file: runFlight resolves to a failed summary naming the folder (it never throws)', async (t) => {
    const dir = await tempDir(t, 'flight-disk-');
    await writeFile(join(dir, 'file'), 'not a folder');
    const tmp = join(dir, 'file', 'sub');
    const dataDir = join(dir, 'data');
    let summary: RunSummary | undefined;
    await assert.doesNotReject(async () => {
      summary = await runWithTmpdir(tmp, testEnv(dataDir, 'http://127.0.0.1:9'));
    });
    assert.equal(summary?.status, 'failed');
    assert.equal(summary?.exitCode, 1);
    assert.ok(summary?.error?.includes(join(tmp, 'flight-dlt-ingest')), summary?.error);
    assert.equal(existsSync(dataDir), false);
  });

  test(
    'a read-only TMPDIR: CLI exits 1 naming the folder, before the destination is touched',
    {
      skip: (() => {
        if (CAN_MOUNT) return false;
        // Without mount, chmod 0555 is the only way; it only works when it really blocks writes (not root).
        const probe = mkdtempSync(join(tmpdir(), 'flight-ro-probe-'));
        chmodSync(probe, 0o555);
        let blocked = false;
        try {
          mkdirSync(join(probe, 'x'));
        } catch {
          blocked = true;
        }
        spawnSync('rm', ['-rf', probe]);
        return blocked ? false : 'chmod 0555 does not stop this user (root) and a read-only tmpfs cannot be mounted';
      })(),
    },
    async (t) => {
      const dir = await tempDir(t, 'flight-disk-');
      let tmp: string;
      if (CAN_MOUNT) {
        tmp = tmpfs(t, 'ro,size=64k');
      } else {
        tmp = join(dir, 'ro');
        await mkdir(tmp);
        chmodSync(tmp, 0o555);
        t.after(() => chmodSync(tmp, 0o755));
      }
      await assertFailsBeforeDestination(t, tmp, /not writable|EROFS|EACCES|read-only|permission/i);
    },
  );

  test(
    'a full TMPDIR (tmpfs filled to the last byte): CLI exits 1 naming the folder and ENOSPC, before the destination is touched',
    { skip: NEEDS_MOUNT },
    async (t) => {
      const tmp = tmpfs(t, 'size=64k');
      fill(tmp);
      await assertFailsBeforeDestination(t, tmp, /ENOSPC|no space/i);
    },
  );
});

describe('working folder full during extract', () => {
  test(
    'ENOSPC while writing loader files: clear failure naming the file, previous data untouched, failed ledger row, folder cleaned',
    { skip: NEEDS_MOUNT },
    async (t) => {
      const dir = await tempDir(t, 'flight-disk-');
      const dataDir = join(dir, 'data');
      const env: Env = {
        LOCAL_DATA_DIR: dataDir,
        TABLE_NAME: 't',
        PRIMARY_KEY: 'id',
        GITHUB_API_URL: 'http://127.0.0.1:9',
      };
      // First run: a few rows of the fixture's shape, with a normal TMPDIR.
      const seed = await runFlight({
        env,
        source: () => Array.from({ length: 10 }, (_, i) => ({ id: `0-${i}`, run: 0, i, n: 10, payload: `seed ${i}` })),
        log: () => {},
      });
      assert.equal(seed.status, 'succeeded', seed.error);
      const before = await query(dbFile(dataDir), 'SELECT * FROM flights_demo_dlt.t ORDER BY id');

      // Second run: incompressible rows in small batches into a 256 KiB tmpfs (room for the probe and a few files, not all).
      const tmp = tmpfs(t, 'size=256k');
      const child = startChild(
        SLOW_FLIGHT,
        {
          ...env,
          ...NO_TSX_CACHE,
          TMPDIR: tmp,
          BATCH_ROWS: '2000',
          FIXTURE_RUN: '1',
          FIXTURE_ROWS: '40000',
          FIXTURE_PAYLOAD: 'random',
        },
        { t },
      );
      const res = await child.exited;
      const summary = child.summary();
      t.diagnostic(`error: ${summary?.error}`);
      assert.equal(res.code, 1, `exit 1; stdout: ${res.stdout.slice(-2000)}\nstderr: ${res.stderr}`);
      assert.ok(summary, 'the run reported a summary');
      assert.match(summary.error ?? '', /loader file/);
      assert.ok(
        summary.error?.includes(join(tmp, 'flight-dlt-ingest')),
        `names the file in the working folder: ${summary.error}`,
      );
      assert.match(summary.error ?? '', /ENOSPC|no space/i);
      assert.match(summary.error ?? '', /TMPDIR/, 'says how to fix it');

      assert.deepEqual(
        await query(dbFile(dataDir), 'SELECT * FROM flights_demo_dlt.t ORDER BY id'),
        before,
        'previous data untouched',
      );
      const ledger = await query(dbFile(dataDir), 'SELECT status, error FROM main.dlt_ingest_runs ORDER BY run_at');
      assert.deepEqual(
        ledger.map((r) => r.status),
        ['succeeded', 'failed'],
      );
      assert.match(String(ledger[1]?.error), /ENOSPC|no space/i);
      assert.deepEqual(
        await listDir(join(tmp, 'flight-dlt-ingest')),
        [],
        'the partial working folder was removed, freeing the space',
      );

      // And the next run, with room, succeeds.
      const next = await runFlight({
        env,
        source: () => [{ id: '2-0', run: 2, i: 0, n: 1, payload: 'after' }],
        log: () => {},
      });
      assert.equal(next.status, 'succeeded', next.error);
    },
  );
});
