// The Flight Explainer contract: flight.ts declares its run chart (a Mermaid flowchart between
// `@flight` and `@end-flight` in a comment at the top of the file, every node with an explicit id)
// and a run prints one `@flight-run <step> <status> key=value ...` line per state change, each
// step printed being a node of that chart. Checked in-process (runFlight's `log`) and through the CLI.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runFlight, type Row } from '../flight.ts';
import { FLIGHT_PATH, dbFile, query, reply, runCli, startFakeGitHub, tempDir, testEnv } from './support.ts';

// ---------------------------------------------------------------------------
// The chart
// ---------------------------------------------------------------------------

interface Chart {
  kind: string;
  /** Node ids, in order of first appearance. */
  ids: string[];
  /** Label of each node that declares one. */
  labels: Map<string, string>;
  edges: [string, string][];
  /** Segments that are not `id` or `id<shape>` (a node without an explicit id, or garbage). */
  bad: string[];
}

const NODE = /^([A-Za-z_][A-Za-z0-9_-]*)\s*(?:(\[\[|\[\(|\(\(|\[|\(|\{\{|\{|>)(.*?)(\]\]|\)\]|\)\)|\]|\)|\}\}|\}))?$/;
const ARROW = /\s*(?:-->|---|-\.->|==>|--x|--o)(?:\|[^|]*\|)?\s*/;

function chartBlock(source: string): { block: string; startLine: number } {
  const lines = source.split('\n');
  const start = lines.findIndex((l) => l.trim() === '@flight');
  const end = lines.findIndex((l) => l.trim() === '@end-flight');
  assert.ok(start >= 0, 'flight.ts has a line "@flight"');
  assert.ok(end > start, 'flight.ts has a line "@end-flight" after "@flight"');
  assert.equal(lines.filter((l) => l.trim() === '@flight').length, 1, 'exactly one chart block');
  return { block: lines.slice(start + 1, end).join('\n'), startLine: start };
}

function parseChart(block: string): Chart {
  const lines = block
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('%%'));
  const [header = '', ...body] = lines;
  const chart: Chart = { kind: header, ids: [], labels: new Map(), edges: [], bad: [] };
  for (const line of body) {
    const ids: string[] = [];
    for (const segment of line.split(ARROW)) {
      const m = NODE.exec(segment.trim());
      if (!m || (m[2] !== undefined && m[4] === undefined)) {
        chart.bad.push(segment);
        continue;
      }
      const id = m[1]!;
      ids.push(id);
      if (!chart.ids.includes(id)) chart.ids.push(id);
      if (m[3] !== undefined) chart.labels.set(id, m[3].replace(/^"|"$/g, ''));
    }
    for (let i = 1; i < ids.length; i++) chart.edges.push([ids[i - 1]!, ids[i]!]);
  }
  return chart;
}

const flightSource = readFile(FLIGHT_PATH, 'utf8');

async function chart(): Promise<Chart> {
  return parseChart(chartBlock(await flightSource).block);
}

// ---------------------------------------------------------------------------
// The events
// ---------------------------------------------------------------------------

interface FlightEvent {
  line: string;
  step: string;
  status: string;
  fields: Record<string, string>;
}

const VALUE = String.raw`("(?:[^"\\]|\\.)*"|[^\s"'=]+)`;
const PAIR = new RegExp(String.raw`^ ([a-z_]+)=${VALUE}`);

/** Parses one `@flight-run` line strictly: every byte must belong to the prefix, step, status or a k=v pair. */
function parseEvent(line: string): FlightEvent {
  assert.ok(!line.includes('\n') && !line.includes('\r'), `one line: ${JSON.stringify(line)}`);
  const head = /^@flight-run (\S+) (running|ok|failed)/.exec(line);
  assert.ok(head, `starts with "@flight-run <step> <running|ok|failed>": ${JSON.stringify(line)}`);
  const fields: Record<string, string> = {};
  let rest = line.slice(head[0].length);
  while (rest !== '') {
    const m = PAIR.exec(rest);
    assert.ok(m, `unparsable field at ${JSON.stringify(rest)} in ${JSON.stringify(line)}`);
    const [whole, key = '', raw = ''] = m;
    assert.ok(!(key in fields), `field ${key} appears once in ${line}`);
    fields[key] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    rest = rest.slice(whole.length);
  }
  return { line, step: head[1]!, status: head[2]!, fields };
}

/** (step, status) pairs with consecutive repeats folded (extract running repeats with done/total). */
function sequence(events: FlightEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    const pair = `${e.step} ${e.status}`;
    if (out[out.length - 1] !== pair) out.push(pair);
  }
  return out;
}

const ISO_TS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Checks shared by every run: prefix, ts, chart ids, one closing line at the end. */
async function checkCommon(lines: string[]): Promise<FlightEvent[]> {
  const { ids } = await chart();
  assert.ok(lines.length >= 3, `some events: ${lines.join('\n')}`);
  const events = lines.map(parseEvent);
  let previous = 0;
  for (const e of events) {
    assert.ok(e.line.startsWith('@flight-run '), e.line);
    assert.match(e.fields.ts ?? '', ISO_TS, `ts= is ISO-8601 UTC in ${e.line}`);
    const ts = Date.parse(e.fields.ts!);
    assert.ok(ts >= previous, `ts never goes back: ${e.line}`);
    previous = ts;
    if (e.step !== '@flight')
      assert.ok(ids.includes(e.step), `step "${e.step}" is a node of the chart (${ids.join(', ')})`);
  }
  const closing = events.filter((e) => e.step === '@flight');
  assert.equal(closing.length, 1, 'exactly one closing @flight line');
  assert.equal(events[events.length - 1]?.step, '@flight', 'the closing line is the last');
  return events;
}

const SUCCESS_SEQUENCE = [
  'config running',
  'config ok',
  'destination running',
  'destination ok',
  'extract running',
  'extract ok',
  'load running',
  'load ok',
  'ledger ok',
  '@flight ok',
];

// ---------------------------------------------------------------------------

describe('the run chart in flight.ts', () => {
  test('is a Mermaid flowchart in a comment at the top of the file, every node with an explicit id', async () => {
    const source = await flightSource;
    const { block, startLine } = chartBlock(source);
    const lines = source.split('\n');
    const firstImport = lines.findIndex((l) => /^import\s/.test(l));
    assert.ok(firstImport > startLine, 'the chart comes before the first import (top of the file)');
    const before = lines.slice(0, startLine).join('\n');
    assert.ok(before.lastIndexOf('/*') > before.lastIndexOf('*/'), 'the chart is inside a /* */ comment');

    const c = parseChart(block);
    assert.match(c.kind, /^(flowchart|graph)\s+(LR|RL|TB|TD|BT)$/, 'a Mermaid flowchart header');
    assert.deepEqual(c.bad, [], 'every node is written as an id, or an id with a shape and label');
    assert.ok(c.ids.length >= 5, `nodes: ${c.ids.join(', ')}`);
    for (const id of c.ids) {
      assert.match(id, /^[a-z][a-z0-9_]*$/, `node id ${id} is a plain identifier`);
      assert.ok(c.labels.get(id), `node ${id} is declared with an explicit id and a label`);
    }
    // The steps runFlight prints, in the order the chart links them.
    for (const step of ['config', 'destination', 'extract', 'load', 'ledger'])
      assert.ok(c.ids.includes(step), `chart has node ${step}`);
    assert.deepEqual(c.edges, [
      ['config', 'destination'],
      ['destination', 'extract'],
      ['extract', 'load'],
      ['load', 'ledger'],
    ]);
  });

  test('the parser used here rejects a node without an explicit id', () => {
    const c = parseChart('flowchart LR\n  a["A"] --> ["no id"]\n');
    assert.deepEqual(c.bad, ['["no id"]']);
  });
});

describe('@flight-run events of a run', () => {
  test('a successful run: exact sequence, rows, effects, done/total, ts', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const lines: string[] = [];
    const summary = await runFlight({ env: testEnv(dir, gh), log: (l) => lines.push(l), terminal: null });
    assert.equal(summary.status, 'succeeded', summary.error);

    const events = await checkCommon(lines);
    assert.deepEqual(sequence(events), SUCCESS_SEQUENCE);
    const target = 'flights_demo.flights_demo_dlt.github_repo_stats';
    const host = new URL(gh.url).host;

    const loadOk = events.find((e) => e.step === 'load' && e.status === 'ok');
    assert.equal(loadOk?.fields.rows, '3', 'load ok carries rows=');
    assert.equal(loadOk?.fields.effect, `table:${target}`);
    const loadRunning = events.find((e) => e.step === 'load' && e.status === 'running');
    assert.equal(loadRunning?.fields.effect, `table:${target}`);
    assert.equal(
      events.find((e) => e.step === 'extract' && e.status === 'ok')?.fields.rows,
      '3',
      'extract ok carries rows=',
    );
    const ledger = events.find((e) => e.step === 'ledger');
    assert.equal(ledger?.fields.effect, 'table:flights_demo.main.dlt_ingest_runs');
    assert.equal(ledger?.fields.status, 'succeeded');
    assert.equal(events[events.length - 1]?.fields.exit, '0');
    assert.equal(events[events.length - 1]?.line.startsWith('@flight-run @flight ok exit=0 '), true);

    const progress = events.filter(
      (e) => e.step === 'extract' && e.status === 'running' && e.fields.done !== undefined,
    );
    assert.ok(progress.length >= 2, 'extract reports progress while fetching');
    for (const p of progress) {
      assert.equal(p.fields.total, '3', `total= in ${p.line}`);
      assert.equal(p.fields.effect, `net:${host}/repos`, `effect=net:<host>/repos in ${p.line}`);
    }
    assert.deepEqual(
      progress.map((p) => Number(p.fields.done)),
      [0, 1, 2, 3],
      'done counts up to total',
    );
    assert.equal(events.filter((e) => e.status === 'failed').length, 0);
  });

  test('a 404 from GitHub: extract failed with a quoted one-line error, then the ledger row, then exit=1', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t, { '/repos/ghost/missing': reply.status(404) });
    const lines: string[] = [];
    const summary = await runFlight({
      env: testEnv(dir, gh, { GITHUB_REPOS: 'duckdb/duckdb,ghost/missing' }),
      log: (l) => lines.push(l),
      terminal: null,
    });
    assert.equal(summary.status, 'failed');
    const events = await checkCommon(lines);
    assert.deepEqual(sequence(events), [
      'config running',
      'config ok',
      'destination running',
      'destination ok',
      'extract running',
      'extract failed',
      'ledger ok',
      '@flight failed',
    ]);
    const failed = events.find((e) => e.status === 'failed' && e.step === 'extract')!;
    assert.match(failed.line, / error="[^"\n]*404/, 'error= is a quoted value');
    assert.match(failed.fields.error ?? '', /ghost\/missing.*404/);
    const ledger = events.find((e) => e.step === 'ledger')!;
    assert.equal(ledger.fields.status, 'failed');
    assert.match(lines[lines.length - 1]!, /^@flight-run @flight failed exit=1 ts=\S+$/);
  });

  test('a source error with spaces, quotes, = and a newline stays on one line, quoted and redacted', async (t) => {
    const dir = await tempDir(t);
    const secret = 'ghp_SeCrEt0123456789abcdef';
    const message = `bad "value" it's\nsecond line key=value token ${secret}`;
    const lines: string[] = [];
    const summary = await runFlight({
      env: testEnv(dir, 'http://127.0.0.1:9', { GITHUB_TOKEN: secret }),
      source: async function* (): AsyncGenerator<Row> {
        yield { repo: 'a/b' };
        throw new Error(message);
      },
      log: (l) => lines.push(l),
      terminal: null,
    });
    assert.equal(summary.status, 'failed');
    assert.equal(summary.exitCode, 1);
    const events = await checkCommon(lines);
    for (const l of lines) assert.ok(!l.includes(secret), `the token never appears: ${l}`);
    const failed = events.find((e) => e.status === 'failed' && e.step !== '@flight')!;
    assert.equal(failed.step, 'extract');
    const error = failed.fields.error ?? '';
    assert.ok(failed.line.includes(' error="'), 'quoted');
    assert.ok(!error.includes('\n'), 'the newline is gone from the value, not just escaped');
    assert.ok(error.includes('bad "value" it\'s'), error);
    assert.ok(error.includes('second line key=value'), error);
    assert.ok(error.includes('***'), `the token is masked: ${error}`);
    assert.deepEqual(sequence(events).slice(-3), ['extract failed', 'ledger ok', '@flight failed']);
    assert.match(lines[lines.length - 1]!, /^@flight-run @flight failed exit=1 /);
    // The value each field had is recoverable: nothing else was swallowed by the quoting.
    assert.deepEqual(Object.keys(failed.fields).sort(), ['effect', 'error', 'rows', 'ts']);
    assert.match(failed.fields.rows ?? '', /^\d+$/, 'rows extracted before the failure');
    assert.match(
      failed.fields.effect ?? '',
      /^table:flights_demo\.flights_demo_dlt\./,
      "the step's effect is repeated",
    );
  });

  test('a failed load: load failed carries rows= and effect=table:<db>.<dataset>.<table>, then the ledger row', async (t) => {
    const dir = await tempDir(t);
    // A table made by hand with a CHECK the rows break: extract succeeds, the load's INSERT fails.
    await query(
      dbFile(dir),
      `CREATE SCHEMA flights_demo_dlt; CREATE TABLE flights_demo_dlt.github_repo_stats (repo VARCHAR, stars BIGINT CHECK (stars < 0))`,
      { write: true },
    );
    const lines: string[] = [];
    const summary = await runFlight({
      env: testEnv(dir, 'http://127.0.0.1:9'),
      source: () => [{ repo: 'a/b', stars: 5 }],
      log: (l) => lines.push(l),
      terminal: null,
    });
    assert.equal(summary.status, 'failed');
    const events = await checkCommon(lines);
    assert.deepEqual(sequence(events).slice(-4), ['load running', 'load failed', 'ledger ok', '@flight failed']);
    const failed = events.find((e) => e.step === 'load' && e.status === 'failed')!;
    assert.match(failed.fields.error ?? '', /CHECK constraint/);
    assert.equal(
      failed.fields.effect,
      'table:flights_demo.flights_demo_dlt.github_repo_stats',
      `effect= on ${failed.line}`,
    );
    assert.equal(failed.fields.rows, '0', `rows= on ${failed.line}`);
  });

  test('a config error: config running, config failed with the problem, exit=2, nothing opened', async (t) => {
    const dir = await tempDir(t);
    const lines: string[] = [];
    const summary = await runFlight({
      env: testEnv(join(dir, 'data'), 'http://127.0.0.1:9', {
        WRITE_DISPOSITION: 'sideways',
        GITHUB_TOKEN: 'ghp_config_secret_1234',
      }),
      log: (l) => lines.push(l),
      terminal: null,
    });
    assert.equal(summary.exitCode, 2);
    const events = await checkCommon(lines);
    assert.deepEqual(sequence(events), ['config running', 'config failed', '@flight failed']);
    const failed = events[1]!;
    assert.match(failed.fields.error ?? '', /WRITE_DISPOSITION="sideways"/);
    assert.ok(!failed.fields.error?.includes('\n'));
    assert.match(lines[lines.length - 1]!, /^@flight-run @flight failed exit=2 ts=\S+$/);
    for (const l of lines) assert.ok(!l.includes('ghp_config_secret_1234'), l);
  });
});

describe('@flight-run events through the CLI', () => {
  test('a successful CLI run prints the same events on stdout and never the GitHub token', async (t) => {
    const dir = await tempDir(t);
    const gh = await startFakeGitHub(t);
    const secret = 'ghp_CliSecretToken0123456789';
    const res = await runCli(testEnv(dir, gh, { GITHUB_TOKEN: secret }), { cwd: dir });
    assert.equal(res.code, 0, res.stderr);
    assert.ok(
      gh.requests.length > 0 && gh.requests.every((r) => r.headers.authorization === `Bearer ${secret}`),
      'the token was used',
    );
    assert.ok(!res.stdout.includes(secret) && !res.stderr.includes(secret), 'the token is never printed');

    const all = res.stdout.split('\n');
    const closing = all.findIndex((l) => l.startsWith('@flight-run @flight '));
    assert.ok(closing > 0, res.stdout);
    const eventLines = all.slice(0, closing + 1);
    const events = await checkCommon(eventLines); // every line up to the closing one is an event
    assert.deepEqual(sequence(events), SUCCESS_SEQUENCE);
    assert.ok(!all.slice(closing + 1).some((l) => l.startsWith('@flight-run')), 'nothing after the closing event');
    assert.equal(
      events.find((e) => e.step === 'load' && e.status === 'ok')?.fields.effect,
      'table:flights_demo.flights_demo_dlt.github_repo_stats',
    );
    assert.ok(existsSync(dbFile(dir)), 'the local file was written');
  });

  test('a failing CLI run whose URL contains the token: the token is masked everywhere, exit 1', async (t) => {
    const dir = await tempDir(t);
    const secret = 'ghp_InUrlSecret0123456789';
    const gh = await startFakeGitHub(t, { [`/${secret}/repos/duckdb/duckdb`]: reply.status(404) });
    // The token ends up in the request URL, and so in the error message; it must be masked.
    const res = await runCli(
      testEnv(dir, `${gh.url}/${secret}`, { GITHUB_TOKEN: secret, GITHUB_REPOS: 'duckdb/duckdb' }),
      { cwd: dir },
    );
    assert.equal(res.code, 1, res.stderr);
    assert.ok(
      gh.requests.some((r) => r.path.includes(secret)),
      'the request did use that URL',
    );
    assert.ok(!res.stdout.includes(secret), res.stdout);
    assert.ok(!res.stderr.includes(secret), res.stderr);
    const events = await checkCommon(res.stdout.split('\n').filter((l) => l.startsWith('@flight-run')));
    const failed = events.find((e) => e.step === 'extract' && e.status === 'failed');
    assert.ok(failed?.fields.error?.includes('***'), failed?.line);
    assert.match(res.stdout, /^@flight-run @flight failed exit=1 /m);
  });
});
