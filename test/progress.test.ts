// The live progress line: drawn on a terminal (`step: rows, rows/s`) once a step takes more than a
// moment, redrawn in place (\r + clear-line) and cleared when the step ends; nothing of it when
// stderr is not a TTY, so Flight logs stay clean.
import { test, describe, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { runFlight, type Row } from '../flight.ts';
import { runCli, sleep, startFakeGitHub, tempDir, testEnv } from './support.ts';

const CLEAR = '\r\x1b[K';
const PROGRESS = /^\r\x1b\[Kextract: ([\d,]+) rows, ([\d,]+) rows\/s, (\d+) s$/;

/** Yields `count` rows, `everyMs` apart: a step that lasts about count * everyMs. */
function slowSource(count: number, everyMs: number): () => AsyncGenerator<Row> {
  return async function* () {
    for (let i = 0; i < count; i++) {
      await sleep(everyMs);
      yield { repo: `o/r${i}`, i };
    }
  };
}

interface Timeline {
  entries: { kind: 'log' | 'term'; text: string }[];
  terminal: { write(text: string): boolean };
  log: (line: string) => void;
  writes(): string[];
}
function timeline(): Timeline {
  const entries: Timeline['entries'] = [];
  return {
    entries,
    terminal: { write: (text) => (entries.push({ kind: 'term', text }), true) },
    log: (line) => void entries.push({ kind: 'log', text: line }),
    writes: () => entries.filter((e) => e.kind === 'term').map((e) => e.text),
  };
}

/** Records what reaches process.stderr.write while the test runs. */
function captureStderr(t: TestContext): string[] {
  const seen: string[] = [];
  t.mock.method(process.stderr, 'write', (chunk: string | Uint8Array) => {
    seen.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  });
  return seen;
}

describe('progress line on a terminal', () => {
  test('a slow extract draws `extract: N rows, R rows/s` in place and clears it when the step ends', async (t) => {
    const dir = await tempDir(t);
    const tl = timeline();
    const summary = await runFlight({
      env: testEnv(dir, 'http://127.0.0.1:9'),
      source: slowSource(16, 100),
      log: tl.log,
      terminal: tl.terminal,
    });
    assert.equal(summary.status, 'succeeded', summary.error);

    const writes = tl.writes();
    const progress = writes.filter((w) => PROGRESS.test(w));
    assert.ok(progress.length >= 1, `at least one progress line: ${JSON.stringify(writes)}`);
    for (const w of writes) assert.ok(!w.includes('\n'), `drawn in place, never a newline: ${JSON.stringify(w)}`);
    for (const w of progress) {
      const [, rows = '', rate = ''] = PROGRESS.exec(w)!;
      const n = Number(rows.replace(/,/g, ''));
      assert.ok(n >= 1 && n <= 16, `rows counted so far: ${w}`);
      assert.ok(Number(rate.replace(/,/g, '')) >= 1, `a rate: ${w}`);
    }
    const counts = progress.map((w) => Number(PROGRESS.exec(w)![1]!.replace(/,/g, '')));
    assert.deepEqual(
      counts,
      [...counts].sort((a, b) => a - b),
      'the row count only grows',
    );
    assert.ok(
      !writes.some((w) => /^\r\x1b\[K(load|ledger|destination|config)/.test(w)),
      `only the slow step is drawn: ${JSON.stringify(writes)}`,
    );

    // Cleared when the step ends: after the last progress line comes a bare clear, before `extract ok`.
    const lastProgress = tl.entries.findLastIndex((e) => e.kind === 'term' && PROGRESS.test(e.text));
    const extractOk = tl.entries.findIndex((e) => e.kind === 'log' && e.text.startsWith('@flight-run extract ok '));
    assert.ok(lastProgress < extractOk, 'progress is drawn while extract runs');
    const between = tl.entries.slice(lastProgress + 1, extractOk);
    assert.deepEqual(between, [{ kind: 'term', text: CLEAR }], 'the line is cleared as the step ends');
    assert.equal(writes[writes.length - 1], CLEAR, 'the last thing written leaves the line empty');

    // Nothing more is drawn after the run.
    const before = writes.length;
    await sleep(600);
    assert.equal(tl.writes().length, before, 'no drawing after the run ended');
  });

  test('a quick run draws nothing (steps shorter than a moment)', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const tl = timeline();
    const summary = await runFlight({ env: testEnv(dir, gh), log: tl.log, terminal: tl.terminal });
    assert.equal(summary.status, 'succeeded', summary.error);
    // How long each step really took, from its events' timestamps (a loaded machine may stretch one).
    const events = tl.entries
      .filter((e) => e.kind === 'log')
      .map((e) => ({ step: e.text.split(' ')[1]!, at: Date.parse(/ ts=(\S+)/.exec(e.text)![1]!) }));
    const [began, ended] = [new Map<string, number>(), new Map<string, number>()];
    events.forEach((e, i) => {
      if (!began.has(e.step)) began.set(e.step, e.at);
      ended.set(e.step, (events[i + 1] ?? e).at); // a step lasts until whatever comes after its last event
    });
    const lasted = new Map([...began].map(([step, at]) => [step, ended.get(step)! - at]));
    const drawn = new Set(
      tl
        .writes()
        .filter((w) => w !== CLEAR)
        .map((w) => w.slice(CLEAR.length).split(':')[0]!),
    );
    for (const step of drawn)
      assert.ok((lasted.get(step) ?? 0) >= 900, `${step} was drawn although it lasted ${lasted.get(step)} ms`);
    if ([...lasted.values()].every((ms) => ms < 900)) assert.deepEqual(tl.writes(), []);
  });

  test('a failing slow extract also clears its line', async (t) => {
    const dir = await tempDir(t);
    const tl = timeline();
    const summary = await runFlight({
      env: testEnv(dir, 'http://127.0.0.1:9'),
      source: async function* () {
        yield* slowSource(16, 100)();
        throw new Error('source broke');
      },
      log: tl.log,
      terminal: tl.terminal,
    });
    assert.equal(summary.status, 'failed');
    const writes = tl.writes();
    assert.ok(
      writes.some((w) => PROGRESS.test(w)),
      JSON.stringify(writes),
    );
    assert.equal(writes[writes.length - 1], CLEAR);
    const failed = tl.entries.findIndex((e) => e.kind === 'log' && e.text.startsWith('@flight-run extract failed '));
    assert.equal(tl.entries[failed - 1]?.text, CLEAR, 'cleared before the failure line is printed');
  });

  test('a finished run leaves no timer behind (a scheduled process runs many times)', async (t) => {
    const dir = await tempDir(t);
    const live = new Set<unknown>();
    const realSet = globalThis.setInterval;
    const realClear = globalThis.clearInterval;
    t.mock.method(globalThis, 'setInterval', (...args: Parameters<typeof setInterval>) => {
      const handle = realSet(...args);
      live.add(handle);
      return handle;
    });
    t.mock.method(globalThis, 'clearInterval', (handle: Parameters<typeof clearInterval>[0]) => {
      live.delete(handle);
      realClear(handle);
    });
    const tl = timeline();
    for (let i = 0; i < 3; i++) {
      const summary = await runFlight({
        env: testEnv(dir, 'http://127.0.0.1:9'),
        source: () => [{ repo: `o/r${i}` }],
        log: tl.log,
        terminal: tl.terminal,
      });
      assert.equal(summary.status, 'succeeded', summary.error);
    }
    const leaked = live.size;
    for (const handle of live) realClear(handle as Parameters<typeof clearInterval>[0]);
    assert.equal(leaked, 0, `intervals still running after 3 runs: ${leaked}`);
  });

  test('the default terminal is stderr when stderr is a TTY', async (t) => {
    const dir = await tempDir(t);
    const original = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
    Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true, writable: true });
    t.after(() => {
      if (original) Object.defineProperty(process.stderr, 'isTTY', original);
      else delete (process.stderr as { isTTY?: boolean }).isTTY;
    });
    const seen = captureStderr(t);
    const summary = await runFlight({
      env: testEnv(dir, 'http://127.0.0.1:9'),
      source: slowSource(16, 100),
      log: () => {},
    });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.ok(
      seen.some((w) => PROGRESS.test(w)),
      JSON.stringify(seen),
    );
    assert.equal(seen[seen.length - 1], CLEAR);
  });
});

describe('no progress line off a terminal', () => {
  test('terminal: null writes nothing, not even to stderr', async (t) => {
    const dir = await tempDir(t);
    const seen = captureStderr(t);
    const summary = await runFlight({
      env: testEnv(dir, 'http://127.0.0.1:9'),
      source: slowSource(15, 100),
      log: () => {},
      terminal: null,
    });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.deepEqual(seen, []);
  });

  test('the default under a non-TTY stderr (this test runner) writes nothing', async (t) => {
    assert.ok(!process.stderr.isTTY, 'the test runner pipes stderr');
    const dir = await tempDir(t);
    const seen = captureStderr(t);
    const summary = await runFlight({
      env: testEnv(dir, 'http://127.0.0.1:9'),
      source: slowSource(15, 100),
      log: () => {},
    });
    assert.equal(summary.status, 'succeeded', summary.error);
    assert.deepEqual(seen, []);
  });

  test('the CLI, stderr a pipe: a successful run leaves stderr empty and stdout free of escapes', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t, { '/repos/duckdb/duckdb': { delayMs: 1300 } });
    const res = await runCli(testEnv(dir, gh), { cwd: dir });
    assert.equal(res.code, 0, res.stderr);
    assert.ok(res.durationMs > 1300, 'the extract step lasted more than a moment');
    assert.equal(res.stderr, '');
    assert.ok(!res.stdout.includes('\x1b') && !res.stdout.includes('\r'), 'no terminal control in the log');
  });
});
