/**
 * What the Flight launcher costs: deploy/flight.py run as the Flights runtime runs it (main.py alone
 * in a folder, HOME unusable, Node on PATH: the version deploy/requirements.txt pins, from
 * test/node24.ts) against the recorded GitHub stand-in of `npm run demo`, into a local DuckDB file.
 *
 *   npx tsx bench/launcher.ts [--cold 3] [--warm 10]
 *
 * cold: a fresh TMPDIR each time, so the launcher installs the dependencies with npm ci from the
 * registry with an empty npm cache (a Flight's first run on a fresh machine). warm: the install reused.
 * Wall time is the launcher's, start to exit; the peak memory figures are the ones it prints.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { serveRecordedGitHub } from '../test/demo.ts';
import { ensureNode } from '../test/node24.ts';

const { values } = parseArgs({
  options: { cold: { type: 'string', default: '3' }, warm: { type: 'string', default: '10' } },
});
const root = new URL('../', import.meta.url).pathname;
const work = mkdtempSync(join(tmpdir(), 'bench-launcher-'));
const { url, server } = await serveRecordedGitHub();
const nodeBin = join(ensureNode(), 'bin');

interface Sample {
  seconds: number;
  nodeMb: number;
  npmMb?: number;
}

/** Spawned, not spawnSync: the stand-in answers from this process's event loop. */
async function launch(tmp: string): Promise<Sample> {
  const folder = mkdtempSync(join(work, 'flight-'));
  copyFileSync(join(root, 'deploy', 'flight.py'), join(folder, 'main.py'));
  const env: Record<string, string> = { PATH: `${nodeBin}:/usr/bin:/bin`, HOME: '/nonexistent', TMPDIR: tmp };
  env.GITHUB_API_URL = url;
  for (const k of ['NODE_EXTRA_CA_CERTS', 'HTTPS_PROXY', 'https_proxy', 'NO_PROXY', 'no_proxy'])
    if (process.env[k]) env[k] = process.env[k]!; // to reach the registry from this machine
  const started = performance.now();
  const child = spawn('python3', ['main.py'], { cwd: folder, env, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const seconds = (performance.now() - started) / 1000;
  if (status !== 0) throw new Error(`launcher exited ${status}:\n${stdout}`);
  const mb = (what: string) => Number(new RegExp(`${what} peak memory (\\d+) MB`).exec(stdout)?.[1]);
  return { seconds, nodeMb: mb('Node'), npmMb: mb('npm') || undefined };
}

function report(name: string, samples: Sample[]): void {
  const s = samples.map((x) => x.seconds);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  const npm = samples.map((x) => x.npmMb).filter(Boolean);
  console.log(
    `${name.padEnd(5)} runs ${String(s.length).padStart(2)}  mean ${mean.toFixed(2)} s  min ${Math.min(...s).toFixed(2)} s  max ${Math.max(...s).toFixed(2)} s` +
      `  Node peak ${Math.max(...samples.map((x) => x.nodeMb))} MB${npm.length ? `  npm peak ${Math.max(...(npm as number[]))} MB` : ''}`,
  );
}

try {
  const cold: Sample[] = [];
  for (let i = 0; i < Number(values.cold); i++) {
    const tmp = mkdtempSync(join(work, 'tmp-'));
    cold.push(await launch(tmp));
    rmSync(tmp, { recursive: true });
  }
  const warmTmp = mkdtempSync(join(work, 'tmp-'));
  await launch(warmTmp); // the install the warm runs reuse
  const warm: Sample[] = [];
  for (let i = 0; i < Number(values.warm); i++) warm.push(await launch(warmTmp));
  report('cold', cold);
  report('warm', warm);
} finally {
  server.close();
  rmSync(work, { recursive: true, force: true });
}
