// SCHEDULE_CRON: 5-field UTC cron (parseCron / nextCronTime), the scheduler loop (runOnSchedule:
// one run per tick, never two at once, SIGINT/SIGTERM cancel the current run or stop the wait), and the CLI.
import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { nextCronTime, parseCron, runFlight, runOnSchedule, type RunSummary } from '../flight.ts';
import { FLIGHT_PATH, listDir, runCli, sleep, tempDir, testEnv, type Env } from './support.ts';

const next = (expression: string, after: string): string =>
  nextCronTime(parseCron(expression), new Date(after)).toISOString();

describe('parseCron / nextCronTime (UTC)', () => {
  const cases: [expression: string, after: string, expected: string][] = [
    // daily at 07:15, the Flight schedule of the README
    ['15 7 * * *', '2026-03-10T00:00:00Z', '2026-03-10T07:15:00.000Z'],
    ['15 7 * * *', '2026-03-10T07:14:00Z', '2026-03-10T07:15:00.000Z'],
    ['15 7 * * *', '2026-03-10T07:14:59.999Z', '2026-03-10T07:15:00.000Z'],
    ['15 7 * * *', '2026-03-10T07:15:00Z', '2026-03-11T07:15:00.000Z'], // strictly after
    ['15 7 * * *', '2026-03-10T07:15:00.001Z', '2026-03-11T07:15:00.000Z'],
    ['15 7 * * *', '2026-03-10T07:16:00Z', '2026-03-11T07:15:00.000Z'],
    ['15 7 * * *', '2026-01-31T08:00:00Z', '2026-02-01T07:15:00.000Z'], // month end
    ['15 7 * * *', '2026-04-30T23:59:00Z', '2026-05-01T07:15:00.000Z'],
    ['15 7 * * *', '2026-02-28T07:30:00Z', '2026-03-01T07:15:00.000Z'], // non-leap February
    ['15 7 * * *', '2028-02-28T07:30:00Z', '2028-02-29T07:15:00.000Z'], // leap February
    ['15 7 * * *', '2026-12-31T07:15:00Z', '2027-01-01T07:15:00.000Z'], // year end
    ['15 7 * * *', '2026-12-31T23:59:59Z', '2027-01-01T07:15:00.000Z'],
    // every 15 minutes
    ['*/15 * * * *', '2026-03-10T10:00:00Z', '2026-03-10T10:15:00.000Z'],
    ['*/15 * * * *', '2026-03-10T10:07:30Z', '2026-03-10T10:15:00.000Z'],
    ['*/15 * * * *', '2026-03-10T10:45:00Z', '2026-03-10T11:00:00.000Z'],
    ['*/15 * * * *', '2026-12-31T23:59:59.999Z', '2027-01-01T00:00:00.000Z'],
    // Mondays at 06:00 (2026-11-25 is a Wednesday)
    ['0 6 * * 1', '2026-11-25T12:00:00Z', '2026-11-30T06:00:00.000Z'],
    ['0 6 * * 1', '2026-11-30T05:59:00Z', '2026-11-30T06:00:00.000Z'],
    ['0 6 * * 1', '2026-11-30T06:00:00Z', '2026-12-07T06:00:00.000Z'],
    ['0 6 * * 1', '2026-12-29T00:00:00Z', '2027-01-04T06:00:00.000Z'],
    // the next leap day
    ['0 0 29 2 *', '2026-11-25T00:00:00Z', '2028-02-29T00:00:00.000Z'],
    ['0 0 29 2 *', '2028-02-29T00:00:00Z', '2032-02-29T00:00:00.000Z'],
    ['0 0 29 2 *', '2096-03-01T00:00:00Z', '2104-02-29T00:00:00.000Z'], // 2100 is not a leap year
    // lists, ranges, steps
    ['1,2,5-7 * * * *', '2026-03-10T10:00:30Z', '2026-03-10T10:01:00.000Z'],
    ['1,2,5-7 * * * *', '2026-03-10T10:02:00Z', '2026-03-10T10:05:00.000Z'],
    ['1,2,5-7 * * * *', '2026-03-10T10:06:00Z', '2026-03-10T10:07:00.000Z'],
    ['1,2,5-7 * * * *', '2026-03-10T10:07:00Z', '2026-03-10T11:01:00.000Z'],
    ['0-30/10 * * * *', '2026-03-10T10:00:00Z', '2026-03-10T10:10:00.000Z'],
    ['0-30/10 * * * *', '2026-03-10T10:25:00Z', '2026-03-10T10:30:00.000Z'],
    ['0-30/10 * * * *', '2026-03-10T10:30:00Z', '2026-03-10T11:00:00.000Z'],
    ['0 9-17/4 * * *', '2026-03-10T09:00:00Z', '2026-03-10T13:00:00.000Z'],
    ['0 9-17/4 * * *', '2026-03-10T17:00:00Z', '2026-03-11T09:00:00.000Z'],
    // names, any case
    ['0 0 * JAN MON', '2026-11-25T00:00:00Z', '2027-01-04T00:00:00.000Z'],
    ['0 0 * jan mon', '2027-01-04T00:00:00Z', '2027-01-11T00:00:00.000Z'],
    ['0 0 * JAN MON', '2027-01-25T00:00:00Z', '2028-01-03T00:00:00.000Z'],
    ['0 9 * * MON-FRI', '2026-11-27T10:00:00Z', '2026-11-30T09:00:00.000Z'],
    ['0 0 1 JUN-AUG *', '2026-11-25T00:00:00Z', '2027-06-01T00:00:00.000Z'],
    // day of week 7 is Sunday, like 0 and SUN
    ['0 12 * * 7', '2026-11-25T00:00:00Z', '2026-11-29T12:00:00.000Z'],
    ['0 12 * * 0', '2026-11-25T00:00:00Z', '2026-11-29T12:00:00.000Z'],
    ['0 12 * * SUN', '2026-11-25T00:00:00Z', '2026-11-29T12:00:00.000Z'],
    ['0 0 * * 6-7', '2026-11-28T00:00:00Z', '2026-11-29T00:00:00.000Z'],
    ['0 0 * * 6-7', '2026-11-29T00:00:00Z', '2026-12-05T00:00:00.000Z'],
    // day of month and day of week both restricted: either one matches (standard cron)
    ['0 0 13 * 5', '2026-11-25T00:00:00Z', '2026-11-27T00:00:00.000Z'], // Friday the 27th
    ['0 0 13 * 5', '2026-12-12T00:00:00Z', '2026-12-13T00:00:00.000Z'], // Sunday the 13th
    ['0 0 13 * 5', '2026-12-13T00:00:00Z', '2026-12-18T00:00:00.000Z'], // next Friday
    // only one of them restricted: that one alone decides
    ['0 0 13 * *', '2026-11-25T00:00:00Z', '2026-12-13T00:00:00.000Z'],
    ['0 0 * * 5', '2026-12-12T00:00:00Z', '2026-12-18T00:00:00.000Z'],
  ];
  for (const [expression, after, expected] of cases) {
    test(`${expression} after ${after} -> ${expected}`, () => {
      assert.equal(next(expression, after), expected);
    });
  }

  test('surrounding and repeated whitespace is accepted', () => {
    assert.equal(next('  15   7 * *\t*  ', '2026-03-10T00:00:00Z'), '2026-03-10T07:15:00.000Z');
  });

  const invalid: [expression: string, message: RegExp][] = [
    ['* * * *', /5 fields.*got 4/],
    ['* * * * * *', /5 fields.*got 6/],
    ['', /5 fields/],
    ['   ', /5 fields/],
    ['60 * * * *', /minute/],
    ['* 24 * * *', /hour/],
    ['* * 0 * *', /day of month/],
    ['* * 32 * *', /day of month/],
    ['* * * 13 *', /month/],
    ['* * * * 8', /day of week/],
    ['/5 * * * *', /minute/],
    ['5/10 * * * *', /minute/],
    ['a * * * *', /minute/],
    ['*/0 * * * *', /minute/],
    ['30-10 * * * *', /minute/],
    ['1,,2 * * * *', /minute/],
    ['* * * FOO *', /month/],
    ['-1 * * * *', /minute/],
  ];
  for (const [expression, message] of invalid) {
    test(`rejects ${JSON.stringify(expression)} with a message`, () => {
      assert.throws(
        () => parseCron(expression),
        (e: unknown) => {
          assert.ok(e instanceof Error);
          assert.match(e.message, message);
          return true;
        },
      );
    });
  }
});

describe('an invalid SCHEDULE_CRON is a config error', () => {
  test('runFlight: exit 2, the problem names SCHEDULE_CRON', async (t) => {
    const dir = await tempDir(t);
    const lines: string[] = [];
    const summary = await runFlight({
      env: testEnv(dir, 'http://127.0.0.1:9', { SCHEDULE_CRON: '60 * * * *' }),
      log: (l) => lines.push(l),
      terminal: null,
    });
    assert.equal(summary.exitCode, 2);
    assert.match(summary.error ?? '', /SCHEDULE_CRON="60 \* \* \* \*".*minute/);
    assert.match(lines.join('\n'), /@flight-run config failed error="[^"]*SCHEDULE_CRON/);
    assert.deepEqual(await listDir(dir), []);
  });

  test('CLI: exit 2 naming SCHEDULE_CRON, nothing created', async (t) => {
    const dir = await tempDir(t);
    const res = await runCli(testEnv(dir, 'http://127.0.0.1:9', { SCHEDULE_CRON: '15 7 * *' }), { cwd: dir });
    assert.equal(res.code, 2, res.stdout + res.stderr);
    assert.match(res.stderr, /SCHEDULE_CRON/);
    assert.match(res.stderr, /5 fields/);
    assert.deepEqual(await listDir(dir), []);
  });

  test('CLI: an expression that never fires (Feb 30) is a config error too, not a crash', async (t) => {
    const dir = await tempDir(t);
    const res = await runCli(testEnv(dir, 'http://127.0.0.1:9', { SCHEDULE_CRON: '0 0 30 2 *' }), {
      cwd: dir,
      timeoutMs: 15_000,
    });
    assert.equal(res.code, 2, `exit code; stderr: ${res.stderr}`);
    assert.match(res.stderr, /SCHEDULE_CRON/);
    assert.doesNotMatch(res.stderr, /^\s+at /m, 'no stack trace');
  });
});

// ---------------------------------------------------------------------------
// runOnSchedule
// ---------------------------------------------------------------------------

function summary(rows: number): RunSummary {
  return {
    status: 'succeeded',
    exitCode: 0,
    loadId: `load-${rows}`,
    rowsLoaded: rows,
    tables: { stub_table: rows },
    destination: 'local',
    target: 'db.ds.stub_table',
    databasePath: '/nowhere/db.duckdb',
    durationS: 0.1,
  };
}

/** Console output of printSummary, captured so the test output stays clean and can be checked. */
function captureConsole(t: TestContext): string[] {
  const out: string[] = [];
  t.mock.method(console, 'log', (...args: unknown[]) => void out.push(args.map(String).join(' ')));
  t.mock.method(console, 'error', (...args: unknown[]) => void out.push(args.map(String).join(' ')));
  return out;
}

/** A schedule that may still be running when a test fails is stopped, so the file never hangs. */
function stopAfter(t: TestContext, done: () => boolean): void {
  t.after(() => {
    if (!done()) process.emit('SIGTERM');
  });
}

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** The scheduler's lines use the event format: `@flight-run @schedule <status> k=v ...`. */
const WAITING = '@flight-run @schedule waiting';
const signalCounts = () => [process.listenerCount('SIGTERM'), process.listenerCount('SIGINT')];

describe('runOnSchedule', { timeout: 20_000 }, () => {
  test('runs once when the clock reaches the tick (~300 ms away), not before', async (t) => {
    const console_ = captureConsole(t);
    const listeners = signalCounts();
    const tick = Date.UTC(2030, 0, 1, 7, 15); // 07:15 UTC
    const offset = tick - 300 - Date.now();
    const now = () => Date.now() + offset;
    const calls: number[] = [];
    const log: string[] = [];
    let finished = false;
    stopAfter(t, () => finished);
    const realStart = performance.now();
    const result = runOnSchedule(
      '15 7 * * *',
      {},
      {
        now,
        log: (l) => log.push(l),
        run: async () => {
          calls.push(now());
          return summary(7);
        },
      },
    ).finally(() => (finished = true));

    await until('the first run', () => calls.length === 1);
    const waited = performance.now() - realStart;
    assert.ok(calls[0]! >= tick, `not started before the tick (${calls[0]! - tick} ms)`);
    assert.ok(calls[0]! < tick + 1000, `started at the tick, not much later (${calls[0]! - tick} ms)`);
    assert.ok(waited >= 250 && waited < 2000, `waited about 300 ms (${waited.toFixed(0)} ms)`);
    await until('waiting for the next tick', () => log.filter((l) => l.startsWith(WAITING)).length === 2);
    assert.match(log[0]!, /^@flight-run @schedule waiting cron="15 7 \* \* \*" next=2030-01-01T07:15:00\.000Z ts=/);
    assert.match(log[1]!, /next=2030-01-02T07:15:00\.000Z/);
    await sleep(100);
    assert.equal(calls.length, 1, 'one run per tick');
    assert.ok(
      console_.some((l) => l.includes('Loaded 7 row(s) into db.ds.stub_table')),
      'the run summary is printed',
    );

    process.emit('SIGTERM');
    assert.equal(await result, 0);
    assert.deepEqual(signalCounts(), listeners, 'signal listeners removed');
  });

  test('never two runs at once: a run longer than the interval is not started again until it finished', async (t) => {
    captureConsole(t);
    const listeners = signalCounts();
    const start = Date.UTC(2030, 0, 1, 0, 0);
    let offset = start - 100 - Date.now();
    const now = () => Date.now() + offset;
    let inFlight = 0;
    let maxInFlight = 0;
    const runs: { startedAt: number; endedAt?: number }[] = [];
    let finished = false;
    stopAfter(t, () => finished);
    const result = runOnSchedule(
      '* * * * *',
      {},
      {
        now,
        log: () => {},
        run: async () => {
          const record: { startedAt: number; endedAt?: number } = { startedAt: performance.now() };
          runs.push(record);
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          if (runs.length === 1) {
            // The clock jumps over several ticks while this run is still going; it ends 100 ms before a tick.
            offset = start + 5 * 60_000 - 100 - 400 - Date.now();
            await sleep(400);
          } else {
            process.emit('SIGTERM'); // stop after this one
            await sleep(50);
          }
          inFlight--;
          record.endedAt = performance.now();
          return summary(runs.length);
        },
      },
    ).finally(() => (finished = true));

    assert.equal(await result, 0);
    assert.equal(maxInFlight, 1, 'never two runs at once');
    assert.equal(runs.length, 2, 'the ticks passed during the first run did not start runs of their own');
    assert.ok(runs[1]!.startedAt >= runs[0]!.endedAt!, 'the second run started after the first ended');
    assert.deepEqual(signalCounts(), listeners);
  });

  test('SIGTERM while waiting resolves promptly with 0, and no run starts', async (t) => {
    captureConsole(t);
    const listeners = signalCounts();
    const log: string[] = [];
    let runs = 0;
    let finished = false;
    stopAfter(t, () => finished);
    const result = runOnSchedule(
      '0 0 1 1 *',
      {},
      {
        log: (l) => log.push(l),
        run: async () => {
          runs++;
          return summary(0);
        },
      },
    ).finally(() => (finished = true));
    await until('waiting', () => log.some((l) => l.startsWith(WAITING)));
    assert.deepEqual(
      signalCounts(),
      [listeners[0]! + 1, listeners[1]! + 1],
      'listens for SIGTERM and SIGINT while running',
    );
    const at = performance.now();
    process.emit('SIGTERM');
    assert.equal(await result, 0);
    assert.ok(performance.now() - at < 500, `promptly (${(performance.now() - at).toFixed(0)} ms)`);
    assert.equal(runs, 0);
    assert.ok(
      log.some((l) => /^@flight-run @schedule stopping signal=SIGTERM /.test(l)),
      log.join('\n'),
    );
    assert.deepEqual(signalCounts(), listeners, 'signal listeners removed');
  });

  test('SIGINT while waiting stops it too', async (t) => {
    captureConsole(t);
    const listeners = signalCounts();
    const log: string[] = [];
    let finished = false;
    stopAfter(t, () => finished);
    const result = runOnSchedule('0 0 1 1 *', {}, { log: (l) => log.push(l), run: async () => summary(0) }).finally(
      () => (finished = true),
    );
    await until('waiting', () => log.some((l) => l.startsWith(WAITING)));
    process.emit('SIGINT');
    assert.equal(await result, 0);
    assert.ok(log.some((l) => /^@flight-run @schedule stopping signal=SIGINT /.test(l)));
    assert.deepEqual(signalCounts(), listeners);
  });

  test('SIGTERM during a run cancels it (the run gets an aborted signal); a run that ends well anyway is used, 0, no other run', async (t) => {
    const console_ = captureConsole(t);
    const listeners = signalCounts();
    const tick = Date.UTC(2030, 0, 1, 0, 0);
    const offset = tick - 50 - Date.now();
    let calls = 0;
    let runFinished = false;
    let returnedAt = 0;
    let runEndedAt = 0;
    let finished = false;
    stopAfter(t, () => finished);
    const result = runOnSchedule(
      '* * * * *',
      {},
      {
        now: () => Date.now() + offset,
        log: () => {},
        run: async (signal) => {
          calls++;
          process.emit('SIGTERM');
          assert.equal(signal.aborted, true, 'the run is told to stop');
          await sleep(300);
          runFinished = true;
          runEndedAt = performance.now();
          return summary(42);
        },
      },
    ).then((code) => {
      returnedAt = performance.now();
      finished = true;
      return code;
    });
    assert.equal(await result, 0);
    assert.equal(calls, 1, 'no run after the signal');
    assert.ok(runFinished, 'the run was not abandoned');
    assert.ok(returnedAt >= runEndedAt, 'returned after the run ended');
    assert.ok(
      console_.some((l) => l.includes('Loaded 42 row(s) into db.ds.stub_table')),
      `the run's summary is used: ${console_.join('\n')}`,
    );
    assert.deepEqual(signalCounts(), listeners);
    // And nothing is scheduled behind our back: the clock passes more ticks, still one call.
    await sleep(200);
    assert.equal(calls, 1);
  });

  test('SIGINT during a run that stops on it: returns 130 with the cancelled summary, no other run', async (t) => {
    const console_ = captureConsole(t);
    const listeners = signalCounts();
    const offset = Date.UTC(2030, 0, 1, 0, 0) - 50 - Date.now();
    let calls = 0;
    let finished = false;
    stopAfter(t, () => finished);
    const code = await runOnSchedule(
      '* * * * *',
      {},
      {
        now: () => Date.now() + offset,
        log: () => {},
        run: async (signal) => {
          calls++;
          process.emit('SIGINT');
          return { ...summary(0), status: 'failed', exitCode: 1, error: `cancelled by ${signal.reason}` };
        },
      },
    ).finally(() => (finished = true));
    assert.equal(code, 130);
    assert.equal(calls, 1);
    assert.ok(
      console_.some((l) => l.includes('cancelled by SIGINT')),
      console_.join('\n'),
    );
    assert.deepEqual(signalCounts(), listeners);
  });

  test('an invalid expression is rejected before anything listens or runs', async () => {
    const listeners = signalCounts();
    let runs = 0;
    await assert.rejects(
      runOnSchedule('61 * * * *', {}, { log: () => {}, run: async () => (runs++, summary(0)) }),
      /minute/,
    );
    assert.equal(runs, 0);
    assert.deepEqual(signalCounts(), listeners);
  });
});

// ---------------------------------------------------------------------------
// The CLI
// ---------------------------------------------------------------------------

const TSX_LOADER = import.meta.resolve('tsx');

test(
  'CLI: SCHEDULE_CRON keeps the process waiting; SIGTERM exits 0 within a few seconds',
  { timeout: 30_000 },
  async (t) => {
    const dir = await tempDir(t);
    const env: Env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME ?? tmpdir(),
      TMPDIR: process.env.TMPDIR ?? tmpdir(),
      ...testEnv(dir, 'http://127.0.0.1:9', { SCHEDULE_CRON: '0 0 1 1 *' }),
    };
    const child = spawn(process.execPath, ['--import', TSX_LOADER, FLIGHT_PATH], {
      cwd: dir,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('close', (code, signal) => resolve({ code, signal })),
    );

    await until('the @schedule waiting line', () => stdout.includes(WAITING) || child.exitCode !== null, 20_000);
    const line = stdout.split('\n').find((l) => l.startsWith(WAITING));
    assert.ok(line, `stdout: ${stdout}\nstderr: ${stderr}`);
    const nextAt = /next=(\S+)/.exec(line)?.[1] ?? '';
    assert.match(nextAt, /^\d{4}-01-01T00:00:00\.000Z$/);
    assert.equal(nextAt, nextCronTime(parseCron('0 0 1 1 *'), new Date()).toISOString());
    assert.deepEqual(await listDir(dir), [], 'no run yet, nothing created');

    const signalledAt = performance.now();
    child.kill('SIGTERM');
    const { code, signal } = await exited;
    const took = performance.now() - signalledAt;
    assert.equal(signal, null, `exited by itself, not killed by the signal; stderr: ${stderr}`);
    assert.equal(code, 0, stderr);
    assert.ok(took < 3000, `within a few seconds (${took.toFixed(0)} ms)`);
    assert.match(stdout, /^@flight-run @schedule stopping signal=SIGTERM /m);
    assert.ok(!/@flight-run (?!@schedule)/.test(stdout), 'no run started');
    assert.deepEqual(await listDir(dir), [], 'no database file');
  },
);
