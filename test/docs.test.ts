// The README's config table and .env.example are generated from / checked against the zod schema,
// so documentation cannot drift from the code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigSchema, configHelp } from '../flight.ts';

const root = new URL('../', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, root), 'utf8');

test('README config table is exactly the one generated from the schema', () => {
  const readme = read('README.md');
  const table = readme.split('<!-- config:start -->\n')[1]?.split('<!-- config:end -->')[0];
  assert.equal(table, configHelp('markdown'), 'regenerate with: npx tsx flight.ts --help --markdown');
});

test('.env.example and --help mention every config key', () => {
  const example = read('.env.example');
  const help = configHelp();
  for (const key of Object.keys(ConfigSchema.shape)) {
    assert.match(example, new RegExp(`^# ${key}=`, 'm'), `.env.example lacks ${key}`);
    assert.match(help, new RegExp(`^  ${key} `, 'm'), `--help lacks ${key}`);
  }
});
