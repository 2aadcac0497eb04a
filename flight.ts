/**
 * flight.ts: MotherDuck's "dlt ingest Flight", ported to Node/TypeScript.
 *
 * One scheduled run pulls rows from an API (the demo: GitHub repository stats and issues), writes them as
 * Parquet loader files and loads them into MotherDuck (when MOTHERDUCK_TOKEN is set) or into a
 * local DuckDB file, doing what dlt does for the Python Flight: names normalized, schema inferred
 * and evolved, nested data split into child tables, merge / append / replace, one transaction per
 * load, dlt's metadata tables, and a run ledger row for every run, failed runs included.
 *
 *   node flight.ts               one run, configured by environment variables (Node 20: npx tsx flight.ts)
 *   node flight.ts status        the last runs from the ledger and the tables' row counts
 *   node flight.ts --help        every config key with its default
 *
 * Replace the demo source `github` with your own (a function of rows, or resources), or call
 * `runFlight({ env, source })`. The run chart below is read by MotherDuck's Flight Explainer; each
 * step prints `@flight-run` lines. What a user edits comes first, the engine after:
 *
 *   Knobs            the config schema: every key, its default and its help
 *   Output           progress lines, errors, redaction
 *   Source           resources and the GitHub demo (repository stats, issues): replace this
 *   HTTP and REST    the client sources call: retries, rate limits, pages, auth
 *   Normalize        dlt's names, flattening, types and conversion
 *   Write Parquet    column buffers and loader files
 *   Extract          rows into a load package; schema contracts
 *   Destination      MotherDuck or the local file
 *   Stored schema    _dlt_version: what the pipeline owns
 *   Load             one transaction; dispositions and merge strategies
 *   State            _dlt_pipeline_state and incremental cursors
 *   Ledger           one row per run
 *   Run              runFlight: the story of a run
 *   Main             the CLI, status and the scheduler
 */
/*
@flight
flowchart LR
  config["Read and validate config"] --> destination["Open MotherDuck or the local DuckDB file"]
  destination --> extract["Extract: source rows to Parquet loader files"]
  extract --> load["Load: one transaction, schema evolution, merge"]
  load --> ledger["Write the run ledger row"]
@end-flight
*/
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { deflateSync, inflateSync } from 'node:zlib';
import { basename, dirname, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DuckDBConnection, DuckDBInstance, type DuckDBValue } from '@duckdb/node-api';
import * as arrow from 'apache-arrow';
import { Agent, request } from 'undici';
import { z } from 'zod';

// ─── Knobs ───────────────────────────
// The config schema is the single source of truth: the Config type, the defaults, `--help` and
// the README table all come from it. Every value arrives as an environment variable; values are
// trimmed and an empty value means the default.

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const identifier = z.string().regex(IDENTIFIER, 'must be a letter or _ followed by letters, digits or _');
const RESERVED_NAMES = {
  catalog: new Set(['main', 'temp', 'system', 'memory', 'information_schema', 'pg_catalog']),
  schema: new Set(['information_schema', 'pg_catalog']),
};
// no `.` or `..`: it goes into a URL path
const REPO = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})\/(?!\.\.?$)[A-Za-z0-9._-]{1,100}$/;

/** A comma-separated list whose entries are trimmed; empty entries and duplicates are errors. */
const list = (entry: z.ZodString, what: string) =>
  z.string().transform((text, ctx) => {
    const items = text.split(',').map((s) => s.trim());
    const seen = new Set<string>();
    for (const item of items) {
      const parsed = entry.safeParse(item);
      if (item === '') ctx.addIssue({ code: 'custom', message: `has an empty ${what} (check the commas)` });
      else if (!parsed.success)
        ctx.addIssue({ code: 'custom', message: `${what} ${JSON.stringify(item)} ${parsed.error.issues[0]?.message}` });
      else if (seen.has(item.toLowerCase()))
        ctx.addIssue({ code: 'custom', message: `lists ${what} ${JSON.stringify(item)} twice` });
      seen.add(item.toLowerCase());
    }
    return items;
  });
const number = (min: number, max: number, int = false) =>
  z.coerce.number({ error: 'must be a number' }).refine((n) => n >= min && n <= max && (!int || Number.isInteger(n)), {
    message: `must be ${int ? 'a whole number' : 'a number'} from ${min} to ${max}`,
  });

const cronExpression = z.string().superRefine((text, ctx) => {
  try {
    nextCronTime(parseCron(text), new Date()); // also: an expression that never fires (30 February)
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: errorText(e) });
  }
});

type KnobInfo = { help: string; fallback?: string; secret?: boolean };
const blankToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
/** One config key: its schema, its default (parsed like any value) and its --help line. */
function knob<T extends z.ZodType>(schema: T, fallback: string, help: string) {
  return z
    .preprocess(blankToUndefined, schema.prefault(fallback as z.input<T>))
    .meta({ help, fallback } satisfies KnobInfo);
}
/** A key without a default; a secret is never printed and never stored. */
const optional = <T extends z.ZodType>(schema: T, help: string, secret = false) =>
  z.preprocess(blankToUndefined, schema.optional()).meta({ help, secret } satisfies KnobInfo);

export const ConfigSchema = z.object({
  DESTINATION: knob(
    z.enum(['auto', 'local', 'motherduck']),
    'auto',
    'Where to load: auto (MotherDuck when MOTHERDUCK_TOKEN is set, else local), local or motherduck.',
  ),
  DESTINATION_DATABASE: knob(
    identifier.refine(
      (n) => !RESERVED_NAMES.catalog.has(n.toLowerCase()),
      'is a name DuckDB keeps for itself (main, temp, system, memory, information_schema, pg_catalog)',
    ),
    'flights_demo',
    'MotherDuck database, or the local file name (<name>.duckdb); ' +
      'every table is addressed as <database>.<dataset>.<table>.',
  ),
  DATASET_NAME: knob(
    identifier.refine(
      (n) => !RESERVED_NAMES.schema.has(n.toLowerCase()),
      'is a schema DuckDB keeps for itself (information_schema, pg_catalog)',
    ),
    'flights_demo_dlt',
    'Schema (dlt dataset) that holds the loaded tables and dlt metadata tables; snake_cased as dlt does.',
  ),
  TABLE_NAME: knob(
    identifier,
    'github_repo_stats',
    'Table the source rows load into; snake_cased as dlt does. Lists in rows become child tables <table>__<field>.',
  ),
  WRITE_DISPOSITION: knob(
    z.enum(['merge', 'append', 'replace']),
    'merge',
    'merge (upsert on PRIMARY_KEY), append (add rows) or replace (swap the table contents).',
  ),
  PRIMARY_KEY: optional(
    list(identifier, 'column'),
    'Primary key column(s) for merge; a comma-separated list is a compound key. ' +
      "Unset: repo (the demo source's key) for delete-insert and upsert; none with MERGE_KEY or scd2.",
  ),
  MERGE_KEY: optional(
    list(identifier, 'column'),
    "With merge (delete-insert, scd2): dlt's merge_key, column(s) naming a partition. delete-insert replaces " +
      'every row of each partition the run brings; scd2 retires missing rows only in those partitions.',
  ),
  MERGE_STRATEGY: optional(
    z.enum(['delete-insert', 'upsert', 'scd2']),
    "With merge: delete-insert (replace rows by key; dlt's default when unset), upsert (update in place, via " +
      'MERGE INTO) or scd2 (keep every version with validity ranges).',
  ),
  DELETE_COLUMN: optional(
    identifier,
    'With merge: a column that marks a row as deleted (true, or any non-null value for non-boolean columns); ' +
      'delete-insert and upsert remove its key (scd2, as dlt 1.26, keeps it as a version).',
  ),
  PIPELINE_NAME: knob(identifier, 'flights_dlt_ingest', 'Pipeline name recorded in the ledger and dlt state.'),
  RUN_LEDGER_TABLE: knob(
    identifier,
    'dlt_ingest_runs',
    'Run ledger table, <database>.main.<name>: one row per run, failed runs included.',
  ),
  LOCAL_DATA_DIR: knob(
    z.string(),
    './data',
    'Folder of the local DuckDB file <LOCAL_DATA_DIR>/<DESTINATION_DATABASE>.duckdb (created when missing).',
  ),
  DUCKDB_MEMORY_LIMIT: knob(
    z
      .string()
      .regex(/^(auto|\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB))$/i, 'must be auto or a size like 256MB or 2GB'),
    'auto',
    "DuckDB's memory limit; above it DuckDB evicts written blocks and spills to disk, so memory stays flat on " +
      'large loads. auto: 128MB plus 0.75MB per column of the tables being loaded (DuckDB holds blocks of every ' +
      'column it appends to) plus the bytes of the large values (32 KB or more) of rows not yet written out as a ' +
      "full row group (it holds those until the commit), at most DuckDB's own default (80% of RAM).",
  ),
  LOCK_TIMEOUT_S: knob(
    number(0, 86_400),
    '30',
    'How long a run waits for another run that holds the local database file before it fails.',
  ),
  GITHUB_REPOS: knob(
    list(z.string().regex(REPO, 'is not owner/name'), 'repo'),
    'duckdb/duckdb,motherduckdb/motherduck-docs,dlt-hub/dlt',
    'Demo source: comma-separated owner/name repositories to fetch.',
  ),
  GITHUB_RESOURCES: knob(
    list(z.string().regex(/^(repo_stats|issues)$/, 'is not repo_stats or issues'), 'resource'),
    'repo_stats',
    'Demo source: what to load, comma-separated: repo_stats (one row per repository, into TABLE_NAME as configured) ' +
      "and issues (each repository's issues and pull requests into github_issues, merged on id, " +
      'incremental on updated_at).',
  ),
  GITHUB_API_URL: knob(
    z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
      .refine(
        (url) => !/^[a-z]+:\/\/[^/?#]*@/i.test(url),
        'has a user name or password in it, which is never sent (and would be printed); put the token in GITHUB_TOKEN',
      ),
    'https://api.github.com',
    'Demo source: GitHub API base URL (GitHub Enterprise, or a local stand-in).',
  ),
  GITHUB_CONCURRENCY: knob(
    number(1, 32, true),
    '4',
    'Demo source: requests in flight at once (GitHub asks for few concurrent requests).',
  ),
  HTTP_TIMEOUT_S: knob(number(0.1, 600), '30', 'Seconds one HTTP request may take, headers and body.'),
  HTTP_MAX_RETRIES: knob(
    number(0, 20, true),
    '5',
    'Retries of one request after 5xx, 429, rate limits or network errors.',
  ),
  HTTP_MAX_WAIT_S: knob(
    number(0, 3_600),
    '60',
    'Total seconds a run may spend waiting between retries (backoff, Retry-After, rate-limit reset) before it fails.',
  ),
  MAX_TABLE_NESTING: optional(
    number(0, 1000, true),
    'Levels of nested objects and lists that are flattened into columns and child tables (as dlt); deeper ' +
      "ones are stored as JSON. Unset: dlt's default, 1000.",
  ),
  SCHEDULE_CRON: optional(
    cronExpression,
    'Keep running and start a run at each tick of this 5-field UTC cron expression ' +
      '(as a Flight schedule, e.g. 15 7 * * *); unset: run once.',
  ),
  BATCH_ROWS: knob(
    number(1, 10_000_000, true),
    '61440',
    'Rows per Arrow record batch and Parquet loader file, per table; ' +
      "the default, half DuckDB's row group size, measured as fast as a full one with less memory " +
      '(memory use grows with it).',
  ),
  MOTHERDUCK_TOKEN: optional(
    z.string(),
    'MotherDuck access token (secret, injected by Flights); also read from motherduck_token.',
    true,
  ),
  GITHUB_TOKEN: optional(
    z.string(),
    'Optional GitHub token for a higher rate limit (secret); a single <secret>_GITHUB_TOKEN works too.',
    true,
  ),
});
export type Config = z.output<typeof ConfigSchema>;
export type Env = Record<string, string | undefined>;
type ConfigKey = keyof Config;
const CONFIG_KEYS = Object.keys(ConfigSchema.shape) as ConfigKey[];
/** A key's default, help and secrecy, as its knob declares them. */
const knobInfo = (key: ConfigKey) => z.globalRegistry.get(ConfigSchema.shape[key]) as KnobInfo;
/** The values of the secret keys: what redaction masks. */
const secretsOf = (config: Config) =>
  CONFIG_KEYS.filter((k) => knobInfo(k).secret).map((k) => config[k] as string | undefined);

/** Flights inject a secret as <secret_name>_<PARAM>; the bare names win when both are set. */
function withSecretAliases(env: Env): Env {
  const out = { ...env };
  if (!blankToUndefined(out.MOTHERDUCK_TOKEN)) out.MOTHERDUCK_TOKEN = env.motherduck_token;
  if (!blankToUndefined(out.GITHUB_TOKEN)) {
    const aliases = secretAliases(env, 'GITHUB_TOKEN');
    if (aliases.length === 1) out.GITHUB_TOKEN = env[aliases[0]!];
    if (aliases.length > 1) out.GITHUB_TOKEN_ALIASES = aliases.join(', ');
  }
  return out;
}
const secretAliases = (env: Env, name: string) =>
  Object.keys(env).filter((k) => k.endsWith(`_${name}`) && blankToUndefined(env[k]));
/** A source's secret: `name`, or the one Flight secret `<secret>_<name>`; several of those are an error. */
function secretFrom(env: Env, name: string): string | undefined {
  const own = blankToUndefined(env[name]) as string | undefined;
  if (own) return own;
  const aliases = secretAliases(env, name);
  if (aliases.length > 1)
    throw new FlightError(`several secrets provide ${name} (${aliases.join(', ')}); set ${name} to choose one`);
  return aliases[0] === undefined ? undefined : (blankToUndefined(env[aliases[0]]) as string);
}

/** Validates the whole config at once; every problem names its key and the offending value. */
export function parseConfig(rawEnv: Env): { config: Config } | { problems: string[] } {
  const env = withSecretAliases(rawEnv);
  const picked = Object.fromEntries(CONFIG_KEYS.map((k) => [k, env[k]]));
  const result = ConfigSchema.safeParse(picked);
  const problems = result.success
    ? []
    : result.error.issues.map((issue) => {
        const key = String(issue.path[0]) as ConfigKey;
        const shown = knobInfo(key).secret ? '(secret)' : JSON.stringify(hideUrlCredentials(env[key]?.trim() ?? ''));
        return `${key}=${shown} ${issue.message}`;
      });
  if (env.GITHUB_TOKEN_ALIASES)
    problems.push(
      `several *_GITHUB_TOKEN variables are set (${env.GITHUB_TOKEN_ALIASES}); set GITHUB_TOKEN to choose one`,
    );
  problems.push(...combinationProblems((k) => blankToUndefined(env[k])));
  return result.success && problems.length === 0 ? { config: result.data } : { problems };
}

/** Keys that are valid alone but not together; checked on the raw values so they join the other problems. */
function combinationProblems(raw: (key: ConfigKey) => string | undefined): string[] {
  const problems: string[] = [];
  const value = (key: ConfigKey) => raw(key) ?? knobInfo(key).fallback ?? '';
  const disposition = value('WRITE_DISPOSITION');
  if (raw('DESTINATION') === 'motherduck' && !raw('MOTHERDUCK_TOKEN'))
    problems.push('DESTINATION="motherduck" needs MOTHERDUCK_TOKEN, which is not set');
  const [dataset, table, ledger] = [
    snakeCase(value('DATASET_NAME')),
    normalizeKey(value('TABLE_NAME')),
    value('RUN_LEDGER_TABLE').toLowerCase(),
  ];
  if (dataset === 'main' && (table === ledger || ledger.startsWith(`${table}__`)))
    problems.push(
      `TABLE_NAME=${JSON.stringify(raw('TABLE_NAME'))} with DATASET_NAME="main" would load into the run ledger ` +
        `RUN_LEDGER_TABLE=${JSON.stringify(ledger)}; choose another name`,
    );
  if (table.startsWith('_dlt'))
    problems.push(
      `TABLE_NAME=${JSON.stringify(raw('TABLE_NAME'))} is a dlt metadata table name (_dlt...); choose another name`,
    );
  for (const key of ['MERGE_STRATEGY', 'DELETE_COLUMN', 'MERGE_KEY'] as const)
    if (raw(key) && disposition !== 'merge')
      problems.push(
        `${key}=${JSON.stringify(raw(key))} needs WRITE_DISPOSITION=merge (it is ${JSON.stringify(disposition)})`,
      );
  if (raw('MERGE_KEY') && raw('MERGE_STRATEGY') === 'upsert')
    problems.push(
      `MERGE_KEY=${JSON.stringify(raw('MERGE_KEY'))} works with MERGE_STRATEGY delete-insert or scd2; ` +
        "upsert matches on PRIMARY_KEY only (as dlt's)",
    );
  return problems;
}

/** `--help` and the README's config table, generated from the schema so they cannot drift from it. */
export function configHelp(format: 'text' | 'markdown' = 'text'): string {
  const keys = CONFIG_KEYS.map((key) => {
    const info = knobInfo(key);
    return { key, shown: info.secret ? '(secret)' : (info.fallback ?? '(unset)'), help: info.help };
  });
  if (format === 'markdown')
    return (
      [
        '| Key | Default | Purpose |',
        '|---|---|---|',
        ...keys.map(
          (k) =>
            `| \`${k.key}\` | ${k.shown.startsWith('(') ? k.shown : `\`${k.shown}\``} | ` +
            `${k.help.replace(/[^\s(]*<\S*?>[^\s,;:)]*?(?=[.,;:)]*(\s|$))/g, '`$&`')} |`,
        ),
      ].join('\n') + '\n'
    );
  const lines = keys.map((k) => `  ${k.key.padEnd(22)} ${k.shown}\n  ${''.padEnd(22)} ${k.help}`);
  const usage = [
    'Usage: node flight.ts            one run (or, with SCHEDULE_CRON, a run at each tick)',
    "       node flight.ts status     the last runs and the tables' row counts",
    '       node flight.ts --help',
    '(Node >= 22.18 runs flight.ts as it is; on Node 20: npx tsx flight.ts)',
  ];
  return `${usage.join('\n')}\n\nConfig (environment variables, default shown):\n${lines.join('\n')}\n`;
}

/** What the config resolves to: where the data goes and under which (dlt-normalized) names. */
export interface Plan {
  destination: 'local' | 'motherduck';
  database: string;
  databasePath: string | null;
  dataset: string;
  table: string;
  /** The table as configured, before normalization: dlt's resource name. */
  resource: string;
  primaryKey: string[];
  /** dlt's merge_key: delete-insert replaces every destination row whose values of these columns the run brings. */
  mergeKey: string[];
  disposition: Config['WRITE_DISPOSITION'];
  mergeStrategy: NonNullable<Config['MERGE_STRATEGY']>;
  /** The strategy as set; dlt records `x-merge-strategy` only for a strategy given explicitly. */
  strategySet: boolean;
  deleteColumn: string | null;
  /** dlt's max_table_nesting (1000 when unset); recorded in the stored schema only when set. */
  maxNesting: number;
  maxNestingSet: boolean;
  /** dlt's column hints of the table (its `columns=`), in their order: the run's, the delete marker, the cursor. */
  hints: ColumnHints;
  /** What may change in the table's schema, and what happens to a row that would change it (dlt's contract). */
  contract: Required<SchemaContract>;
  /** dlt's schema name: the normalized pipeline name; keys the state and `_dlt_loads` rows. */
  schemaName: string;
  ledger: string;
}
/**
 * dlt's schema contract, per resource: for new tables, new columns and new data types (a variant column),
 * `evolve` (the default: the schema grows), `freeze` (the run fails naming what would change, and nothing
 * does), `discard_row` (the row is dropped and counted) or `discard_value` (the value is dropped and counted).
 */
export type ContractMode = 'evolve' | 'freeze' | 'discard_row' | 'discard_value';
export interface SchemaContract {
  tables?: ContractMode;
  columns?: ContractMode;
  data_type?: ContractMode;
}
const CONTRACT_MODES = new Set(['evolve', 'freeze', 'discard_row', 'discard_value']);
const EVOLVE: Required<SchemaContract> = { tables: 'evolve', columns: 'evolve', data_type: 'evolve' };
const contractOf = (c: ContractMode | SchemaContract | undefined): Required<SchemaContract> =>
  typeof c === 'string' ? { tables: c, columns: c, data_type: c } : { ...EVOLVE, ...c };
/**
 * A column hint, as dlt's `columns=` of a resource takes it: the column's type (it is created with it, before
 * any data, and values are converted into it) and whether it may be null (`nullable: false` makes it NOT NULL
 * and a row without a value fails the run). dlt's `data_type: json` keeps an object or a list whole, as JSON.
 */
export interface ColumnHint {
  data_type?: 'text' | 'bigint' | 'double' | 'bool' | 'timestamp' | 'date' | 'json' | 'decimal';
  nullable?: boolean;
  /** With `decimal`: DECIMAL(precision, scale) (default 38, 9 as dlt's); a value it can't hold exactly is a variant. */
  precision?: number;
  scale?: number;
}
/** Hints by normalized column name, in their order; DELETE_COLUMN and ctx.incremental add their flags. */
export type ColumnHints = Map<string, ColumnHint & { hard_delete?: true; incremental?: true }>;
const HINT_TYPES = new Set(['text', 'bigint', 'double', 'bool', 'timestamp', 'date', 'json', 'decimal']);

/** What is wrong with the hints given to runFlight: config errors, like a bad key. */
export function columnHintProblems(columns: Record<string, ColumnHint>): string[] {
  return Object.entries(columns).flatMap(([key, hint]) => {
    const wrong = ([k, v]: [string, unknown]) =>
      k === 'data_type'
        ? !HINT_TYPES.has(v as string)
        : k === 'precision' || k === 'scale'
          ? !(Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 38) || hint.data_type !== 'decimal'
          : k !== 'nullable' || typeof v !== 'boolean';
    return isRecord(hint) && !Object.entries(hint).some(wrong)
      ? []
      : [
          `column hint ${JSON.stringify(key)}: ${JSON.stringify(hint)} is not one (data_type one of ` +
            `${[...HINT_TYPES].join(', ')}; precision and scale 0-38 with decimal; and/or nullable true or false)`,
        ];
  });
}

function columnHintsOf(columns: Record<string, ColumnHint>, deleteColumn: string | null): ColumnHints {
  const hints: ColumnHints = new Map(
    [...Object.entries(columns)].map(([key, hint]) => [normalizeKey(key), { ...hint }]),
  );
  if (deleteColumn) hints.set(deleteColumn, { ...hints.get(deleteColumn), hard_delete: true });
  return hints;
}

export function planFor(config: Config, columns: Record<string, ColumnHint> = {}): Plan {
  const motherduck =
    config.DESTINATION === 'motherduck' || (config.DESTINATION === 'auto' && !!config.MOTHERDUCK_TOKEN);
  return {
    destination: motherduck ? 'motherduck' : 'local',
    database: config.DESTINATION_DATABASE,
    databasePath: motherduck ? null : resolve(config.LOCAL_DATA_DIR, `${config.DESTINATION_DATABASE}.duckdb`),
    dataset: snakeCase(config.DATASET_NAME),
    table: normalizeKey(config.TABLE_NAME),
    resource: config.TABLE_NAME,
    // as the columns are named: `owner__id` is a nested key. The demo's `repo` where a key is needed and unset
    primaryKey: (config.PRIMARY_KEY ?? (config.MERGE_KEY || config.MERGE_STRATEGY === 'scd2' ? [] : ['repo'])).map(
      normalizeKey,
    ),
    mergeKey: (config.MERGE_KEY ?? []).map(normalizeKey),
    disposition: config.WRITE_DISPOSITION,
    mergeStrategy: config.MERGE_STRATEGY ?? 'delete-insert',
    strategySet: config.MERGE_STRATEGY !== undefined,
    deleteColumn: config.DELETE_COLUMN ? normalizeKey(config.DELETE_COLUMN) : null,
    maxNesting: config.MAX_TABLE_NESTING ?? 1000,
    maxNestingSet: config.MAX_TABLE_NESTING !== undefined,
    hints: columnHintsOf(columns, config.DELETE_COLUMN ? normalizeKey(config.DELETE_COLUMN) : null),
    contract: EVOLVE,
    schemaName: snakeCase(config.PIPELINE_NAME),
    ledger: config.RUN_LEDGER_TABLE,
  };
}

/** How a resource's table loads: its options over the run's destination (`table`: a table it routes rows to). */
function planOf(base: Plan, r: Resource, table?: string): Plan {
  if (r.options === 'config') return table === undefined ? base : { ...base, table: normalizeKey(table) };
  const o = r.options;
  const columns = (v: string | string[] | undefined) => (v === undefined ? [] : [v].flat().map(normalizeKey));
  const deleteColumn = o.deleteColumn ? normalizeKey(o.deleteColumn) : null;
  return {
    ...base,
    table: normalizeKey(table ?? r.name),
    resource: r.name,
    primaryKey: columns(o.primaryKey),
    mergeKey: columns(o.mergeKey),
    disposition: o.writeDisposition ?? 'append',
    mergeStrategy: o.mergeStrategy ?? 'delete-insert',
    strategySet: o.mergeStrategy !== undefined,
    deleteColumn,
    maxNesting: o.maxNesting ?? 1000,
    maxNestingSet: o.maxNesting !== undefined,
    hints: columnHintsOf(o.columns ?? {}, deleteColumn),
    contract: contractOf(o.contract),
  };
}

/** What is wrong with a source's resources, told like config errors (exit 2) before anything runs. */
function resourceProblems(resources: Resource[], base: Plan): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string>();
  for (const r of resources) {
    const at = `resource ${JSON.stringify(r.name)}`;
    if (r.options === 'config') continue; // checked as the config it comes from
    const o = r.options;
    const table = normalizeKey(r.name);
    if (!r.name.trim() || table.startsWith('_dlt'))
      problems.push(`${at}: a resource needs a name that is not a dlt table name (_dlt...)`);
    if (seen.has(table))
      problems.push(`${at}: loads into table "${table}" as resource ${JSON.stringify(seen.get(table))} does`);
    seen.set(table, r.name);
    if (base.dataset === 'main' && table === base.ledger.toLowerCase())
      problems.push(`${at}: would load into the run ledger`);
    if (r.parent && !resources.includes(r.parent))
      problems.push(`${at}: its parent ${JSON.stringify(r.parent.name)} is not one of the source's resources`);
    const merge = o.writeDisposition === 'merge';
    for (const key of ['mergeStrategy', 'deleteColumn', 'mergeKey'] as const)
      if (o[key] !== undefined && !merge) problems.push(`${at}: ${key} needs writeDisposition 'merge'`);
    const keys = (v?: string | string[]) => (v === undefined ? [] : [v].flat());
    for (const name of [...keys(o.primaryKey), ...keys(o.mergeKey), ...keys(o.deleteColumn)])
      if (!IDENTIFIER.test(name))
        problems.push(
          `${at}: column ${JSON.stringify(name)} ${'must be a letter or _ followed by letters, digits or _'}`,
        );
    if (merge && o.mergeStrategy !== 'scd2' && !keys(o.primaryKey).length && !keys(o.mergeKey).length)
      problems.push(`${at}: writeDisposition 'merge' needs a primaryKey (or a mergeKey)`);
    if (o.mergeStrategy === 'upsert' && (!keys(o.primaryKey).length || keys(o.mergeKey).length))
      problems.push(`${at}: mergeStrategy 'upsert' matches on a primaryKey only`);
    if (o.maxNesting !== undefined && !(Number.isInteger(o.maxNesting) && o.maxNesting >= 0 && o.maxNesting <= 1000))
      problems.push(`${at}: maxNesting must be a whole number from 0 to 1000`);
    const contract = typeof o.contract === 'string' ? [o.contract] : Object.values(o.contract ?? {});
    if (o.contract !== undefined && !contract.every((m) => CONTRACT_MODES.has(m)))
      problems.push(`${at}: contract ${JSON.stringify(o.contract)} is not one (${[...CONTRACT_MODES].join(', ')})`);
    problems.push(...columnHintProblems(o.columns ?? {}).map((p) => `${at}: ${p}`));
  }
  return problems;
}

// ─── Output ──────────────────────────
// One progress event per line, in the Flight Explainer's `@flight-run <step> <status> k=v` form,
// so a Flight's log shows which step of the chart above ran, with what effect.

export type Step = 'config' | 'destination' | 'extract' | 'load' | 'ledger';
type Fields = Record<string, string | number | undefined>;

/** An error whose message is meant for the operator; exitCode 2 marks a config error. */
export class FlightError extends Error {
  readonly exitCode: 1 | 2;
  constructor(message: string, exitCode: 1 | 2 = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

const fieldValue = (v: string | number) => (/^[^\s"'=]+$/.test(String(v)) ? String(v) : JSON.stringify(String(v)));
export function formatEvent(step: string, status: string, fields: Fields = {}): string {
  const pairs = Object.entries({ ...fields, ts: new Date().toISOString() }).flatMap(([k, v]) =>
    v === undefined ? [] : [`${k}=${fieldValue(v)}`],
  );
  return [`@flight-run`, step, status, ...pairs].join(' ');
}

/** Secrets never leave the process: every line and stored error passes through this. */
function redactor(secrets: (string | undefined)[]) {
  const known: string[] = [];
  const add = (secret: string | undefined) => {
    if (secret && secret.length >= 4 && !known.includes(secret)) known.push(secret);
    known.sort((a, b) => b.length - a.length); // a secret inside a longer one: the longer goes first
  };
  secrets.forEach(add);
  // and anything shaped like a JWT (MotherDuck tokens are), in case an error quotes part of one
  const redact = (text: string) =>
    hideUrlCredentials(known.reduce((t, s) => t.split(s).join('***'), text)).replace(
      /eyJ[\w-]{8,}\.[\w-]+\.?[\w-]*/g,
      '***',
    );
  return Object.assign(redact, { add });
}
/** `https://user:password@host/` → `https://***@host/`: a URL's credentials are never printed. */
const hideUrlCredentials = (text: string) => text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]*@/gi, '$1***@');

/** Resolves after `ms`, or at once when `signal` aborts. */
const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' | ').slice(0, 2000);
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

// ─── Source: replace this with your own ─────────────────
// A source is a function of a context that returns rows: plain objects, any shape, loaded into the
// table the config names (TABLE_NAME, WRITE_DISPOSITION, PRIMARY_KEY, ...). Or several resources, each
// its own table with its own disposition, keys, column hints and schema contract, all loaded in one
// transaction (dlt's source of resources). Nested objects flatten into parent__child columns, lists
// become child tables. Yield as you fetch: rows are streamed to Parquet, never all held in memory.

export type Row = Record<string, unknown>;
export interface SourceContext {
  config: Config;
  /** This source's pipeline state: JSON-serializable, loaded from the destination, saved with the load. */
  state: Record<string, unknown>;
  /** A cursor over a field that only grows (e.g. updated_at), remembered between runs; see `Incremental`. */
  incremental<T extends Cursor>(cursorPath: string, options?: IncrementalOptions<T>): Incremental<T>;
  /**
   * JSON GET with timeouts, retries, rate-limit handling and a size cap; fails with a clear message naming
   * `what`. Options: `headers`, query `params`, `auth` (bearer, api_key, basic: sent to the URL's origin only).
   */
  getJson(url: string, what: string, options?: RequestOptions): Promise<unknown>;
  /** The pages of a REST endpoint, each as its list of records (paginator declared or detected; see Paginator). */
  pages(url: string, what: string, options?: PageOptions): AsyncGenerator<Row[]>;
  /** A secret from the environment: `name`, or one Flight secret `<secret>_<name>`; redacted from all output. */
  secret(name: string): string | undefined;
  /** Report fetch progress: one `@flight-run extract running done=.. total=..` line. */
  progress(done: number, total?: number, effect?: string): void;
}
/** What a source yields: rows, or pages of rows (a list is a page, as dlt takes it). */
export type Rows = Iterable<Row | Row[]> | AsyncIterable<Row | Row[]>;
export type SourceFunction = (ctx: SourceContext) => Rows | Promise<Rows>;
/** A function for the configured table, resources, or resources made from the config (as the demo's). */
export type Source = SourceFunction | Resource[] | { resources(config: Config): Resource[] };

/** One table's rows and how they load, as dlt's resource. `options: 'config'`: as the env config says. */
export interface Resource {
  name: string;
  options: ResourceOptions | 'config';
  rows?: SourceFunction;
  /** A transformer's: called with each row of `parent`, its rows load into this resource's table. */
  parent?: Resource;
  each?: (item: Row, ctx: SourceContext) => Rows | Promise<Rows>;
}
export interface ResourceOptions {
  /** `append` (the default, as dlt's), `replace` or `merge`. */
  writeDisposition?: 'append' | 'replace' | 'merge';
  primaryKey?: string | string[];
  mergeKey?: string | string[];
  mergeStrategy?: 'delete-insert' | 'upsert' | 'scd2';
  deleteColumn?: string;
  /** dlt's max_table_nesting (default 1000). */
  maxNesting?: number;
  /** Column hints by column: `{ price: { data_type: 'decimal', precision: 10, scale: 2, nullable: false } }`. */
  columns?: Record<string, ColumnHint>;
  /** `evolve` (default), `freeze`, `discard_row` or `discard_value`, for all or per tables / columns / data_type. */
  contract?: ContractMode | SchemaContract;
  /** The table of each row, from the data (dlt's dynamic table name); default the resource's name. */
  table?: (row: Row) => string;
  /** A transformer's parent rows worked on at once (default 4); its rows still load in the parent rows' order. */
  concurrency?: number;
}
/** A resource: its rows load into the table `name` (normalized as dlt does). */
export const resource = (name: string, rows: SourceFunction, options: ResourceOptions = {}): Resource => ({
  name,
  rows,
  options,
});
/** A transformer: `each` runs for every row of `parent` (for each repository, its issues). */
export const transformer = (
  name: string,
  parent: Resource,
  each: (item: Row, ctx: SourceContext) => Rows | Promise<Rows>,
  options: ResourceOptions = {},
): Resource => ({ name, parent, each, options });
/** A source function's rows as the table the env config describes (TABLE_NAME, WRITE_DISPOSITION, ...). */
export const configured = (rows: SourceFunction): Resource => ({ name: '', rows, options: 'config' });

/** The demo: repository stats into TABLE_NAME as configured; with GITHUB_RESOURCES=...,issues also issues. */
export const github = {
  resources: (config: Config): Resource[] => [
    ...(config.GITHUB_RESOURCES.includes('repo_stats') ? [configured(githubRepoRows)] : []),
    ...(config.GITHUB_RESOURCES.includes('issues') ? [githubIssues] : []),
  ],
};

/** GitHub's media type and API version, and the token when there is one (sent to the API's origin only). */
const gitHubRequest = (config: Config): RequestOptions => ({
  headers: { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
  auth: config.GITHUB_TOKEN ? { type: 'bearer', token: config.GITHUB_TOKEN } : undefined,
});

const GitHubRepo = z.object({
  stargazers_count: z.number(),
  forks_count: z.number(),
  open_issues_count: z.number(),
  default_branch: z.string(),
  pushed_at: z.string().nullable(),
});

/** The demo source: one row of stats per configured repository, in the configured order. */
export async function* githubRepoRows(ctx: SourceContext): AsyncGenerator<Row> {
  const { GITHUB_REPOS: repos, GITHUB_API_URL: api, GITHUB_CONCURRENCY: concurrency } = ctx.config;
  const base = api.replace(/\/+$/, '');
  const effect = `net:${new URL(base).host}/repos`;
  let done = 0;
  ctx.progress(0, repos.length, effect);
  const fetchRepo = async (repo: string) => {
    const what = `GitHub repo ${repo}`;
    const parsed = GitHubRepo.safeParse(await ctx.getJson(`${base}/repos/${repo}`, what, gitHubRequest(ctx.config)));
    if (!parsed.success)
      throw new FlightError(
        `${what}: unexpected response shape ` +
          `(${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')})`,
      );
    ctx.progress(++done, repos.length, effect);
    return parsed.data;
  };
  for await (const [repo, stats] of inOrder(repos, concurrency, fetchRepo)) {
    yield {
      repo,
      stars: stats.stargazers_count,
      forks: stats.forks_count,
      open_issues: stats.open_issues_count,
      default_branch: stats.default_branch,
      pushed_at: stats.pushed_at,
    };
  }
}

const GitHubIssue = z.object({
  id: z.number(),
  number: z.number(),
  title: z.string(),
  state: z.string(),
  user: z.object({ login: z.string() }).nullable(),
  labels: z.array(z.object({ name: z.string(), color: z.string().optional() })),
  comments: z.number(),
  created_at: z.string(),
  updated_at: z.string(),
  closed_at: z.string().nullable(),
  pull_request: z.object({}).passthrough().optional(),
});

/**
 * The demo's second resource (GITHUB_RESOURCES=repo_stats,issues): each repository's issues and pull
 * requests, merged on `id`, labels as a child table. Incremental on `updated_at`, per repository: a run
 * asks GitHub only for what changed since the last one (`since=`), and drops what it already loaded.
 */
export const githubIssues = resource(
  'github_issues',
  async function* (ctx) {
    const base = ctx.config.GITHUB_API_URL.replace(/\/+$/, '');
    for (const repo of ctx.config.GITHUB_REPOS) {
      const what = `GitHub issues of ${repo}`;
      const updated = ctx.incremental<string>('updated_at', { key: repo, primaryKey: ['id'] });
      const pages = ctx.pages(`${base}/repos/${repo}/issues`, what, {
        ...gitHubRequest(ctx.config),
        params: { state: 'all', sort: 'updated', direction: 'asc', per_page: 100, since: updated.startValue },
        paginator: { type: 'link_header' },
      });
      for await (const page of pages)
        for (const item of page) {
          const parsed = GitHubIssue.safeParse(item);
          if (!parsed.success) throw new FlightError(`${what}: unexpected response shape (${parsed.error.message})`);
          const issue = parsed.data;
          if (!updated.accept(issue)) continue;
          yield {
            id: issue.id,
            repo,
            number: issue.number,
            title: issue.title,
            state: issue.state,
            is_pull_request: issue.pull_request !== undefined,
            author: issue.user?.login ?? null,
            comments: issue.comments,
            created_at: issue.created_at,
            updated_at: issue.updated_at,
            closed_at: issue.closed_at,
            labels: issue.labels.map(({ name, color }) => ({ name, color })),
          };
        }
    }
  },
  { writeDisposition: 'merge', primaryKey: 'id' },
);

/**
 * Runs `fn` over items with at most `limit` in flight, yielding results in the items' order. A
 * finished request starts the next at once (a slow one doesn't hold the others back), looking at
 * most 4 x `limit` items ahead of the one awaited.
 */
async function* inOrder<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): AsyncGenerator<[T, R]> {
  const results: Promise<R>[] = [];
  let [next, inFlight] = [0, 0];
  const start = (yielded: number) => {
    while (inFlight < limit && next < items.length && next < yielded + 4 * limit) {
      inFlight++;
      const p = fn(items[next++]!);
      // awaited below in order; this only keeps Node from calling a failure unhandled meanwhile
      p.catch(() => {}).finally(() => (inFlight--, start(yielded)));
      results.push(p);
    }
  };
  for (let i = 0; i < items.length; i++) {
    start(i);
    yield [items[i]!, await results[i]!];
    delete results[i];
  }
}

// ─── HTTP and REST: what sources call ──────────────────
// undici with keep-alive; redirects followed here, so credentials never go to another origin; retries
// bounded by count and by the run's total wait; REST pages with dlt's paginators. Every credential a
// request carries is redacted from every line, error and ledger row.

const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
const MAX_REDIRECTS = 5;
const RETRYABLE_NETWORK = new RegExp(
  [
    'ECONNRESET',
    'ECONNREFUSED',
    'EPIPE',
    'ETIMEDOUT',
    'EAI_AGAIN',
    'UND_ERR_(SOCKET|CLOSED|CONNECT_TIMEOUT|HEADERS_TIMEOUT|BODY_TIMEOUT)',
    'terminated',
    'other side closed',
    'TimeoutError',
    'AbortError',
  ].join('|'),
  'i',
);

/** Credentials of a request: sent only to the origin of the URL asked for, never after a redirect elsewhere. */
export type Auth =
  | { type: 'bearer'; token: string | undefined }
  | { type: 'api_key'; name: string; key: string | undefined; location?: 'header' | 'query' }
  | { type: 'basic'; username: string; password: string | undefined };
export type Params = Record<string, string | number | boolean | null | undefined>;
export interface RequestOptions {
  headers?: Record<string, string>;
  /** Query parameters added to the URL (null and undefined ones are left out). */
  params?: Params;
  auth?: Auth;
}
export interface JsonResponse {
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  /** Where the body came from, after redirects. */
  url: string;
}

class RetryableError extends Error {
  readonly waitS?: number;
  constructor(message: string, waitS?: number) {
    super(message);
    this.waitS = waitS;
  }
}

/** The origin credentials belong to, when it isn't the URL's own (the later pages of an endpoint). */
type Internal = { authOrigin?: string };
interface HttpClient {
  get(url: string, what: string, options?: RequestOptions & Internal): Promise<JsonResponse>;
  close(): Promise<void>;
}

const withParams = (url: string, params: Params = {}) => {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) u.searchParams.set(k, String(v));
  return u.href;
};

/** The headers and URL that carry `auth`; its secret values are handed to `secret` for redaction. */
function applyAuth(url: string, auth: Auth | undefined, secret: (value: string) => void) {
  const headers: Record<string, string> = {};
  if (!auth) return { url, headers };
  const need = (value: string | undefined, what: string) => {
    if (!value) throw new FlightError(`the ${auth.type} auth of this request has no ${what} (is its secret set?)`);
    secret(value);
    return value;
  };
  if (auth.type === 'bearer') headers.authorization = `Bearer ${need(auth.token, 'token')}`;
  else if (auth.type === 'basic') {
    const pair = `${auth.username}:${need(auth.password, 'password')}`;
    headers.authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
    secret(Buffer.from(pair).toString('base64'));
  } else if (auth.location === 'query') url = withParams(url, { [auth.name]: need(auth.key, 'key') });
  else headers[auth.name.toLowerCase()] = need(auth.key, 'key');
  return { url, headers };
}

function createHttpClient(config: Config, redact: (t: string) => string, secret: (value: string) => void): HttpClient {
  const timeoutMs = config.HTTP_TIMEOUT_S * 1000;
  const closing = new AbortController(); // a run that ended (or failed) stops its requests and backoff waits at once
  const agent = new Agent({
    connections: config.GITHUB_CONCURRENCY,
    keepAliveTimeout: 30_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const base = { accept: 'application/json', 'user-agent': 'flight-dlt-ingest (+https://motherduck.com)' };
  let waitedS = 0; // shared by all requests of the run: HTTP_MAX_WAIT_S bounds the run, not a request

  /** One exchange: the response's status, headers and text, with our own timeout. */
  async function exchange(url: string, headers: Record<string, string>) {
    // A timer of our own, not AbortSignal.any([AbortSignal.timeout()]): Node may garbage-collect the
    // timeout signal inside a composite before it fires, and a trickling body then never times out.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new DOMException('timed out', 'TimeoutError')), timeoutMs);
    const stop = () => abort.abort(closing.signal.reason);
    closing.signal.addEventListener('abort', stop, { once: true });
    try {
      const res = await request(url, { dispatcher: agent, headers, signal: abort.signal });
      return { status: res.statusCode, headers: res.headers, text: await readCapped(res.body, MAX_RESPONSE_BYTES) };
    } finally {
      clearTimeout(timer);
      closing.signal.removeEventListener('abort', stop);
    }
  }

  async function attempt(url: string, options: RequestOptions & Internal): Promise<JsonResponse> {
    const first = withParams(url, options.params);
    const origin = options.authOrigin ?? new URL(first).origin;
    const signed =
      new URL(first).origin === origin ? applyAuth(first, options.auth, secret) : { url: first, headers: {} };
    let at = signed.url;
    for (let hops = 0; ; hops++) {
      // credentials go to the origin asked for only: a redirect elsewhere loses them
      const own = new URL(at).origin === origin ? signed.headers : {};
      const res = await exchange(at, { ...base, ...options.headers, ...own });
      const h = (name: string) => [res.headers[name]].flat()[0];
      const location = h('location');
      if (res.status >= 300 && res.status < 400 && location && hops < MAX_REDIRECTS) {
        at = new URL(location, at).href;
        continue;
      }
      if (res.status >= 200 && res.status < 300) {
        try {
          return { body: JSON.parse(res.text), headers: res.headers, url: at };
        } catch {
          throw new RetryableError(
            `answered ${res.status} with a body that is not JSON (content-type ${h('content-type') ?? 'none'}, ` +
              `starts ${JSON.stringify(redact(res.text).slice(0, 60))})`,
          );
        }
      }
      throw failureOf(res.status, h, `answered HTTP ${res.status}${jsonMessage(redact(res.text))}`, at, options);
    }
  }

  /** What a non-2xx answer means: a retry (after how long), or a failure with a hint. */
  function failureOf(
    status: number,
    h: (name: string) => string | undefined,
    detail: string,
    url: string,
    options: RequestOptions,
  ) {
    const gitHub = new URL(url).origin === new URL(config.GITHUB_API_URL).origin;
    if (status >= 300 && status < 400)
      return new FlightError(`${detail}: too many redirects (more than ${MAX_REDIRECTS}), or one without a Location`);
    const retryAfter = Number(h('retry-after'));
    if (Number.isFinite(retryAfter) && retryAfter >= 0 && (status === 429 || status === 403 || status >= 500))
      return new RetryableError(`${detail} with Retry-After ${retryAfter}s (secondary rate limit)`, retryAfter);
    if ((status === 403 || status === 429) && h('x-ratelimit-remaining') === '0') {
      const reset = Number(h('x-ratelimit-reset'));
      const waitS = Number.isFinite(reset) ? Math.max(0, reset - Date.now() / 1000) : undefined;
      const when = Number.isFinite(reset) ? `; it resets at ${new Date(reset * 1000).toISOString()}` : '';
      const hint = gitHub && !options.auth ? '; set GITHUB_TOKEN for a higher limit' : '';
      return new RetryableError(`${detail}: rate limit exhausted${when}${hint}`, waitS);
    }
    if (status === 429 || status >= 500) return new RetryableError(detail);
    const credentials = gitHub && !options.auth ? 'GITHUB_TOKEN' : 'the credentials of this request';
    if (status === 404)
      return new FlightError(`${detail} (not found: check the name, or ${credentials} can not see it)`);
    if (status === 401) return new FlightError(`${detail} (bad credentials: check ${credentials})`);
    return new FlightError(detail);
  }

  async function get(url: string, what: string, options: RequestOptions & Internal = {}): Promise<JsonResponse> {
    const shown = () => redact(withParams(url, options.params));
    for (let tries = 0; ; tries++) {
      let failure: RetryableError;
      try {
        return await attempt(url, options);
      } catch (e) {
        if (e instanceof FlightError) throw new FlightError(redact(`${what}: ${e.message} (GET ${shown()})`));
        if (e instanceof RetryableError) failure = e;
        else if (RETRYABLE_NETWORK.test(`${(e as { code?: string }).code ?? ''} ${(e as Error).name} ${errorText(e)}`))
          failure = new RetryableError(`network error: ${errorText(e)}`);
        else throw new FlightError(redact(`${what}: ${errorText(e)} (GET ${shown()})`));
      }
      const waitS = failure.waitS ?? Math.min(30, 0.5 * 2 ** tries) * (0.75 + Math.random() / 2);
      if (tries >= config.HTTP_MAX_RETRIES)
        throw new FlightError(
          redact(
            `${what}: gave up after ${tries + 1} attempt${tries ? 's' : ''} ` +
              `(HTTP_MAX_RETRIES=${config.HTTP_MAX_RETRIES}); ` +
              `last: ${failure.message} (GET ${shown()})`,
          ),
        );
      if (waitedS + waitS > config.HTTP_MAX_WAIT_S)
        throw new FlightError(
          redact(
            `${what}: ${failure.message}; waiting ${waitS.toFixed(1)}s more would exceed ` +
              `HTTP_MAX_WAIT_S=${config.HTTP_MAX_WAIT_S} (GET ${shown()})`,
          ),
        );
      waitedS += waitS;
      await sleep(waitS * 1000, closing.signal);
    }
  }
  return {
    get,
    close: () => (closing.abort(), agent.destroy()),
  };
}

async function readCapped(body: AsyncIterable<Buffer | Uint8Array>, cap: number): Promise<string> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > cap) throw new FlightError(`response body is larger than ${cap / 1024 / 1024} MiB; refusing to read it`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

const jsonMessage = (text: string) => {
  try {
    const m = (JSON.parse(text) as { message?: unknown }).message;
    return typeof m === 'string' ? ` (${m.slice(0, 200)})` : '';
  } catch {
    return '';
  }
};

// REST pages. A paginator says how to reach the next page, as dlt's do; undeclared, it is detected from
// the first page (dlt's order): a `Link: <…>; rel="next"` header, else a next URL in the body, else one page.
export type Paginator =
  | 'auto'
  | { type: 'link_header' }
  /** `path`: where the body holds the next page's URL (`next`, `links.next`, `_links.next.href`). */
  | { type: 'next_url'; path: string }
  /** The body's `path` holds a cursor, sent back as query parameter `param`; stops when it is empty. */
  | { type: 'cursor'; path: string; param: string }
  /** `offset` / `limit` query parameters; stops at a short page, or at `totalPath`'s count. */
  | { type: 'offset'; limit: number; offsetParam?: string; limitParam?: string; totalPath?: string }
  /** `page` query parameter from `start` (1); stops at an empty page, or at `totalPath`'s page count. */
  | { type: 'page_number'; param?: string; start?: number; totalPath?: string }
  | { type: 'single_page' };
export interface PageOptions extends RequestOptions {
  paginator?: Paginator;
  /** Where a page's records are: a dotted path (`data.items`); default the page when it is a list, else the
   * list among its fields named like records (`data`, `items`, `results`, …), else the least nested list. */
  records?: string;
  /** Stop after this many pages. */
  maxPages?: number;
}

const RECORD_KEYS = new Set(['data', 'items', 'results', 'entries', 'records', 'rows', 'entities', 'payload']);
const at = (body: unknown, path: string): unknown =>
  path.split('.').reduce<unknown>((v, key) => (isRecord(v) ? v[key] : undefined), body);

/** The records of a page: at `path`, or found as dlt's detector finds them. */
function recordsOf(body: unknown, path: string | undefined, what: string): Row[] {
  const found = path !== undefined ? at(body, path) : Array.isArray(body) ? body : findRecords(body);
  if (Array.isArray(found)) return found as Row[];
  if (path !== undefined || found !== undefined)
    throw new FlightError(`${what}: no list of records at "${path ?? '(detected)'}" in the response`);
  return body === null || body === undefined ? [] : [body as Row]; // a single object is one record
}
function findRecords(body: unknown): unknown[] | undefined {
  const lists: [string, unknown[]][] = [];
  const walk = (v: unknown, depth: number) => {
    if (!isRecord(v) || depth > 2) return;
    for (const [k, x] of Object.entries(v)) Array.isArray(x) ? lists.push([k, x]) : walk(x, depth + 1);
  };
  walk(body, 0);
  return (lists.find(([k]) => RECORD_KEYS.has(k.toLowerCase())) ?? lists[0])?.[1];
}

/** The URL of the `rel="next"` link of a Link header. */
function linkNext(header: string | string[] | undefined): string | undefined {
  for (const part of [header]
    .flat()
    .join(',')
    .split(/,(?=\s*<)/)) {
    const m = /<([^>]*)>\s*;(.*)/.exec(part);
    if (m && /\brel\s*=\s*"?([^"]*\s)?next(\s[^"]*)?"?/i.test(m[2]!)) return m[1];
  }
  return undefined;
}
/** The path of a next-page URL in a body (`next`, or `next.href` / `next.url`), at any depth. */
function findNextPath(body: unknown, path = ''): string | undefined {
  if (!isRecord(body)) return undefined;
  for (const [k, v] of Object.entries(body)) {
    const here = path ? `${path}.${k}` : k;
    if (k.toLowerCase() === 'next') {
      if (typeof v === 'string') return here;
      for (const inner of ['href', 'url']) if (isRecord(v) && typeof v[inner] === 'string') return `${here}.${inner}`;
    }
    const deeper = findNextPath(v, here);
    if (deeper) return deeper;
  }
  return undefined;
}

/** The pages of an endpoint, each as its list of records. */
async function* pagesOf(http: HttpClient, url: string, what: string, options: PageOptions = {}): AsyncGenerator<Row[]> {
  let paginator = options.paginator ?? 'auto';
  let params: Params = { ...options.params };
  let offset = 0;
  let page = paginator !== 'auto' && paginator.type === 'page_number' ? (paginator.start ?? 1) : 1;
  if (paginator !== 'auto' && paginator.type === 'offset')
    Object.assign(params, {
      [paginator.offsetParam ?? 'offset']: 0,
      [paginator.limitParam ?? 'limit']: paginator.limit,
    });
  if (paginator !== 'auto' && paginator.type === 'page_number') params[paginator.param ?? 'page'] = page;
  let next: string | undefined = url;
  for (let n = 1; next !== undefined && n <= (options.maxPages ?? Infinity); n++) {
    const res = await http.get(next, `${what} page ${n}`, { ...options, params, authOrigin: new URL(url).origin });
    const records = recordsOf(res.body, options.records, `${what} page ${n}`);
    yield records;
    if (paginator === 'auto') {
      const nextPath = linkNext(res.headers.link) ? undefined : findNextPath(res.body);
      paginator = linkNext(res.headers.link)
        ? { type: 'link_header' }
        : nextPath
          ? { type: 'next_url', path: nextPath }
          : { type: 'single_page' };
    }
    const total = 'totalPath' in paginator && paginator.totalPath ? Number(at(res.body, paginator.totalPath)) : NaN;
    switch (paginator.type) {
      case 'link_header':
      case 'next_url': {
        // the next URL carries its own query: ours were for the first request
        const link = paginator.type === 'link_header' ? linkNext(res.headers.link) : at(res.body, paginator.path);
        [next, params] = [typeof link === 'string' && link ? new URL(link, res.url).href : undefined, {}];
        break;
      }
      case 'cursor': {
        const cursor = at(res.body, paginator.path);
        if (cursor === undefined || cursor === null || cursor === '' || records.length === 0) next = undefined;
        else params = { ...params, [paginator.param]: String(cursor) };
        break;
      }
      case 'offset':
        offset += paginator.limit;
        if (records.length < paginator.limit || offset >= total) next = undefined;
        else params = { ...params, [paginator.offsetParam ?? 'offset']: offset };
        break;
      case 'page_number':
        page++;
        if (records.length === 0 || page > total + (paginator.start ?? 1) - 1) next = undefined;
        else params = { ...params, [paginator.param ?? 'page']: page };
        break;
      case 'single_page':
        next = undefined;
    }
  }
}

// ─── Normalize: dlt's naming, flattening, child tables and types ─────────
// Rows become rows of tables as dlt's relational normalizer makes them: objects flatten into
// parent__child columns, lists become child tables linked by _dlt_parent_id / _dlt_list_idx, columns
// come in dlt's order, and a value of another type than its column's is converted as dlt converts it or,
// where it can't be, goes to a variant column <column>__v_<type>. test/parity.test.ts holds it to dlt.

/** dlt's default `snake_case` naming convention, for one identifier. */
export function snakeCase(name: string): string {
  const reduced = name.trim().replace(/[+\-*@|]/g, (c) => ({ '+': 'x', '-': '_', '*': 'x', '@': 'a', '|': 'l' })[c]!);
  let id = reduced
    .replace(/[^a-zA-Z\p{Nd}_]+/gu, '_')
    .replace(/([^_])([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase();
  if (/^\p{Nd}/u.test(id)) id = `_${id}`;
  const stripped = id.replace(/_+$/, '');
  id = stripped + 'x'.repeat(id.length - stripped.length);
  return id.replace(/__+/g, '_');
}

/** A key is a path: `__` separates levels, each normalized on its own; empty levels are dropped. */
const namesSeen = new Map<string, string>();
export function normalizeKey(key: string): string {
  let name = namesSeen.get(key);
  if (name === undefined) {
    name =
      key
        .split('__')
        .filter((p) => p.trim() !== '')
        .map(snakeCase)
        .join('__') || '_empty';
    if (namesSeen.size > 100_000) namesSeen.clear(); // keys that are data (ids as keys) must not grow memory
    namesSeen.set(key, name);
  }
  return name;
}

export type DataType = 'bigint' | 'double' | 'bool' | 'text' | 'timestamp' | 'date' | 'decimal' | 'json';
/** A column's type as found in the destination may be none of ours (a table made by hand). */
type ColumnType = DataType | 'other';
export const SQL_TYPES: Record<DataType, string> = {
  bigint: 'BIGINT',
  double: 'DOUBLE',
  bool: 'BOOLEAN',
  text: 'VARCHAR',
  timestamp: 'TIMESTAMPTZ',
  date: 'DATE',
  decimal: 'DECIMAL(38,0)',
  json: 'JSON',
};
const FROM_SQL = new Map(
  Object.entries(SQL_TYPES).map(([t, sql]) => [
    sql === 'TIMESTAMPTZ' ? 'TIMESTAMP WITH TIME ZONE' : sql,
    t as DataType,
  ]),
);
/** Whether a value (of our type `t`) is held exactly by a column of a narrower type made by hand. */
type Narrow = (t: DataType, v: unknown) => boolean;
const intRange =
  (bits: number, signed = true): Narrow =>
  (t, v) =>
    t === 'bigint' &&
    BigInt(v as number) >= (signed ? -(2n ** BigInt(bits - 1)) : 0n) &&
    BigInt(v as number) < 2n ** BigInt(signed ? bits - 1 : bits);
const NARROW: Record<string, [DataType, Narrow]> = {
  TINYINT: ['bigint', intRange(8)],
  SMALLINT: ['bigint', intRange(16)],
  INTEGER: ['bigint', intRange(32)],
  UTINYINT: ['bigint', intRange(8, false)],
  USMALLINT: ['bigint', intRange(16, false)],
  UINTEGER: ['bigint', intRange(32, false)],
  UBIGINT: ['bigint', intRange(64, false)],
  FLOAT: ['double', (t, v) => (t === 'bigint' || t === 'double') && Math.fround(Number(v)) === Number(v)],
  TIMESTAMP: ['timestamp', (t) => t === 'timestamp'], // read as UTC: the session's TimeZone is UTC
  TIMESTAMP_NS: ['timestamp', (t) => t === 'timestamp'],
  TIMESTAMP_MS: ['timestamp', (t) => t === 'timestamp' && parsed.fraction % 1000 === 0],
  TIMESTAMP_S: ['timestamp', (t) => t === 'timestamp' && parsed.fraction === 0],
};
/** DECIMAL(p,s) holds an integer or a plain decimal number with at most p-s digits before the point and s after. */
function decimalFits(precision: number, scale: number): Narrow {
  return (t, v) => {
    const m = (t === 'bigint' || t === 'double' || t === 'decimal') && /^-?(\d+)(?:\.(\d+))?$/.exec(String(v));
    return !!m && m[1]!.replace(/^0+/, '').length <= precision - scale && (m[2]?.length ?? 0) <= scale;
  };
}
/** A column type found in the destination (as information_schema spells it), as ours. */
function fromSqlType(sql: string): Pick<ColumnInfo, 'type' | 'narrow' | 'sql'> {
  const ours = FROM_SQL.get(sql);
  if (ours) return { type: ours };
  const narrow = NARROW[sql];
  if (narrow) return { type: narrow[0], narrow: narrow[1], sql };
  const decimal = /^DECIMAL\((\d+),(\d+)\)$/.exec(sql);
  if (decimal) return { type: 'decimal', narrow: decimalFits(Number(decimal[1]), Number(decimal[2])), sql };
  return { type: 'other' };
}

export interface ColumnInfo {
  type: ColumnType;
  /** The destination had it before this run. */
  stored: boolean;
  /** dlt's variant flag: the column holds values of another column that did not fit its type. */
  variant?: boolean;
  /** A hand-made column of a narrower type than ours (INTEGER, REAL, TIMESTAMP, DECIMAL(p,s)): what fits it. */
  narrow?: Narrow;
  /** ...and its SQL type, which staging tables take too (so a value is never cast through a wider type). */
  sql?: string;
}
/** A column a hint declares: a decimal's precision and scale make its SQL type and what fits it. */
function hintedColumn(type: DataType, hint: ColumnHint): ColumnInfo {
  if (type !== 'decimal') return newColumn(type);
  const [precision, scale] = [hint.precision ?? 38, hint.scale ?? 9]; // dlt's default DECIMAL on DuckDB
  return { ...newColumn('decimal'), sql: `DECIMAL(${precision},${scale})`, narrow: decimalFits(precision, scale) };
}
/** A column this run adds. */
const newColumn = (type: DataType, variant = false): ColumnInfo => ({
  type,
  stored: false,
  ...(variant ? { variant } : {}),
});
export interface TableSchema {
  name: string;
  parent: string | null;
  /** In column order; `stored` marks the ones the destination had before this run. */
  columns: Map<string, ColumnInfo>;
}
export type Schema = Map<string, TableSchema>;

// Timestamps are recognised as dlt's `iso_timestamp` detection recognises them: a string that pendulum's
// ISO 8601 parser (or, failing that, its "common" parser) reads as a date and a time, e.g.
// `2024-01-02T03:04:05Z`, `2024-01-02 03:04`, `20240102T030405Z`, `2024-01-02T03`, `2024/01/15 10:00`;
// naive ones are UTC, offsets are applied. A date alone (`2024-01-02`) stays text: dlt's date detection is
// off. Kept apart from dlt: more than microseconds of precision keeps a string text (dlt cuts the digits).
// The usual extended form is parsed by hand, as it is met on every string of a column that is not text; the
// rest through the parsers' own patterns (dlt 1.26 with pendulum 2.1, as in test/fixtures/dlt-parity).
function daysFromCivil(y: number, m: number, d: number): number {
  const yy = m <= 2 ? y - 1 : y;
  const era = Math.floor(yy / 400);
  const yoe = yy - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  return era * 146097 + yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy - 719468;
}
const isLeap = (y: number) => y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
const daysInMonth = (y: number, m: number) => (m === 2 ? (isLeap(y) ? 29 : 28) : [4, 6, 9, 11].includes(m) ? 30 : 31);
/** Python's datetime range (years 1 to 9999), in seconds from the epoch. */
const [FIRST_SECOND, LAST_SECOND] = [daysFromCivil(1, 1, 1) * 86400, daysFromCivil(10000, 1, 1) * 86400 - 1];

/** The parsed form of the last string `typeOf` recognised; read right after the call. */
const parsed = { days: 0, seconds: 0, fraction: 0 };
const setInstant = (seconds: number, fraction: number) => (
  (parsed.seconds = seconds),
  (parsed.fraction = fraction),
  (parsed.days = Math.floor(seconds / 86400))
);
/** The value of `n` decimal digits at `at`, or -1. */
function digits(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const c = s.charCodeAt(i) - 48;
    if (!(c >= 0 && c <= 9)) return -1;
    v = v * 10 + c;
  }
  return v;
}
/** Microseconds of a fraction's digits; -1 when digits below a microsecond are not zeros (exact text is kept). */
function micros(f: string): number {
  if (f.length > 6 && !/^0+$/.test(f.slice(6))) return -1;
  return Number(f.slice(0, 6).padEnd(6, '0'));
}

/** `YYYY-MM-DD[T ]HH:MM[:SS[.f]][Z|±HH[[:]MM]]`, by hand: true when `s` is such a timestamp (in `parsed`). */
function usualTimestamp(s: string): boolean {
  const len = s.length;
  if (len < 16 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(13) !== 58) return false;
  const sep = s.charCodeAt(10);
  if (sep !== 84 && sep !== 32) return false;
  const [y, mo, d, hh, mi] = [digits(s, 0, 4), digits(s, 5, 2), digits(s, 8, 2), digits(s, 11, 2), digits(s, 14, 2)];
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > daysInMonth(y, mo) || hh < 0 || hh > 23 || mi < 0 || mi > 59)
    return false;
  let at = 16;
  let ss = 0;
  let fraction = 0;
  if (s.charCodeAt(at) === 58) {
    ss = digits(s, 17, 2);
    at = 19;
    if (ss < 0 || ss > 59) return false;
    if (s.charCodeAt(at) === 46 || s.charCodeAt(at) === 44) {
      let n = 0;
      for (let c = s.charCodeAt(++at) - 48; c >= 0 && c <= 9; c = s.charCodeAt(++at) - 48, n++) {
        if (n < 6) fraction = fraction * 10 + c;
        else if (c !== 0 || n >= 9) return false; // below a microsecond: not exact, so not a timestamp
      }
      if (n === 0) return false;
      for (; n < 6; n++) fraction *= 10;
    }
  }
  let offset = 0;
  const zone = s.charCodeAt(at);
  if (zone === 90) at++;
  else if (zone === 43 || zone === 45) {
    const oh = digits(s, at + 1, 2);
    let om = 0;
    let end = at + 3;
    if (end < len) {
      if (s.charCodeAt(end) === 58) end++;
      om = digits(s, end, 2);
      end += 2;
    }
    if (oh < 0 || om < 0 || end !== len || oh * 60 + om >= 1440) return false;
    offset = (zone === 45 ? -1 : 1) * (oh * 60 + om);
    at = len;
  }
  if (at !== len) return false;
  setInstant((daysFromCivil(y, mo, d) * 24 + hh) * 3600 + mi * 60 + ss - offset * 60, fraction);
  return true;
}

// pendulum 2.1's ISO 8601 pattern (dates: calendar, ordinal, week; times down to the hour) and its
// "common" pattern (`2024/01/15 10:00`); `$` as Python's, which also matches before a final newline.
const ISO_8601 = new RegExp(
  [
    '^(?:(\\d{4})(?:(-)?(\\d{2})(?:(-)?(\\d{1,2}))?)?', // year, month, day (or ordinal day)
    '|(\\d{4})(-)?W(\\d{2})(-)?(\\d)?)?', // or year, week, weekday
    '(?:([T ])?(\\d{1,2})(:)?(\\d{1,2})?(:)?(\\d{1,2})?', // hour, minute, second
    '(?:[.,](\\d{1,9}))?([-+]\\d{2}:?(?:\\d{2})?|Z)?)?\\n?$', // fraction, offset
  ].join(''),
);
const COMMON =
  /^(?:(\d{4})(?:([/:])?(\d{2})([/:])?(\d{2}))?)?(?:( )?(\d{1,2}):(\d{1,2})?(?::(\d{1,2}))?(?:[.|,](\d{1,9}))?)?\n?$/;
const MONTH_OFFSETS = [-1, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];
type Kind = 'datetime' | 'date' | 'time';

/** A date and time of day as Python's datetime takes them (else undefined), into `parsed`; offset in minutes. */
function dateTime(
  days: number | undefined,
  h: number,
  mi: number,
  s: number,
  us: number,
  offset = 0,
): Kind | undefined {
  if (days === undefined || h > 23 || mi > 59 || s > 59 || us < 0 || Math.abs(offset) >= 1440) return undefined;
  setInstant(((days * 24 + h) * 60 + mi - offset) * 60 + s, us);
  return 'datetime';
}
const calendarDays = (y: number, m: number, d: number) =>
  y >= 1 && y <= 9999 && m >= 1 && m <= 12 && d >= 1 && d <= daysInMonth(y, m) ? daysFromCivil(y, m, d) : undefined;
const daysInYear = (y: number) => (isLeap(y) ? 366 : 365);
/** pendulum's ISO week date (`2024-W01-1`), as days from the epoch. */
function weekDays(year: number, week: number, weekday: number): number | undefined {
  const p = (y: number) => y + Math.floor(y / 4) - Math.floor(y / 100) + Math.floor(y / 400);
  const longYear = p(year) % 7 === 4 || p(year - 1) % 7 === 3;
  if (week > 53 || (week > 52 && !longYear) || weekday > 7) return undefined;
  const y = year - 1; // pendulum's week_day(year, 1, 4): January counts in the year before
  const jan4 = (y + Math.floor(y / 4) - Math.floor(y / 100) + Math.floor(y / 400) + 0 + 4) % 7 || 7;
  let ordinal = week * 7 + weekday - (jan4 + 3);
  if (ordinal < 1) ordinal += daysInYear(--year);
  if (ordinal > daysInYear(year)) ordinal -= daysInYear(year++);
  return year >= 1 && year <= 9999 && ordinal >= 1 ? daysFromCivil(year, 1, 1) + ordinal - 1 : undefined;
}

/** pendulum's parse_iso8601: what `s` names, or undefined where it raises; a date or date-time goes to `parsed`. */
function iso8601(s: string): Kind | undefined {
  const m = ISO_8601.exec(s);
  if (!m) return undefined;
  const [, year, monthSep, month, daySep, day, isoYear, weekSep, week, weekdaySep, weekday] = m;
  const [, , , , , , , , , , , timeSep, hour, minuteSep, minute, secondSep, second, subsecond, tz] = m;
  let days: number | undefined;
  let ambiguous = false;
  if (isoYear !== undefined) {
    if ((weekSep && !weekdaySep && weekday) || (!weekSep && weekdaySep)) return undefined;
    days = weekDays(Number(isoYear), Number(week), weekday ? Number(weekday) : 1);
  } else if (year !== undefined) {
    const y = Number(year);
    if (month === undefined) days = calendarDays(y, 1, 1);
    else if (day === undefined) {
      ambiguous = !monthSep; // 201207: a time hhmmss rather than a date
      days = calendarDays(y, Number(month), 1);
    } else if (!daySep && day.length === 1) {
      // ordinal date: 2024-002
      const ordinal = Number(month + day);
      const offsets = MONTH_OFFSETS.map((o, i) => o + (isLeap(y) && i > 2 ? 1 : 0));
      if (ordinal > offsets[13]!) return undefined;
      const i = offsets.findIndex((o, i) => i > 0 && ordinal <= o);
      days = calendarDays(y, i - 1, ordinal - offsets[i - 1]!);
    } else days = calendarDays(y, Number(month), Number(day));
  }
  const isDate = year !== undefined || isoYear !== undefined;
  if (hour === undefined) {
    if (ambiguous)
      return Number(year!.slice(0, 2)) < 24 && Number(year!.slice(2)) < 60 && Number(month) < 60 ? 'time' : undefined;
    if (days === undefined) return undefined;
    setInstant(days * 86400, 0);
    return 'date';
  }
  if (ambiguous || (isDate && !timeSep)) return undefined;
  if ((minute === undefined && minuteSep) || (secondSep && !minuteSep && minute !== undefined)) return undefined;
  if ((second !== undefined && !secondSep && minuteSep) || (second === undefined && secondSep)) return undefined;
  const us = subsecond === undefined ? 0 : micros(subsecond);
  let offset = 0;
  if (tz && tz !== 'Z') {
    const [oh, om] = tz.includes(':') ? tz.slice(1).split(':') : [tz.slice(1, 3), tz.slice(3, 5) || '00'];
    if (!om) return undefined;
    offset = (tz[0] === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om));
  }
  const [h, mi, sec] = [Number(hour), Number(minute ?? 0), Number(second ?? 0)];
  if (!isDate) return h < 24 && mi < 60 && sec < 60 && us >= 0 ? 'time' : undefined;
  return dateTime(days, h, mi, sec, us, offset);
}

/** pendulum's fallback for what ISO 8601 doesn't read (`2024/01/15`, `2024/01/15 10:00`), as `iso8601`. */
function commonFormat(s: string): Kind | undefined {
  const m = COMMON.exec(s);
  if (!m) return undefined;
  const [, year, , month, , day, , hour, minute, second, subsecond] = m;
  const days = calendarDays(Number(year ?? 0), Number(month ?? 1), Number(day ?? 1));
  if (hour === undefined) return days === undefined ? undefined : (setInstant(days * 86400, 0), 'date');
  if (minute === undefined) return undefined; // pendulum fails here (int(None)); so does dlt, with a crash
  const us = subsecond === undefined ? 0 : micros(subsecond);
  if (year === undefined)
    return Number(hour) < 24 && Number(minute) < 60 && Number(second ?? 0) < 60 ? 'time' : undefined;
  return dateTime(days, Number(hour), Number(minute), Number(second ?? 0), us);
}

/** dlt's timestamp detection: does the string name a date and a time (in `parsed`)? */
function isTimestamp(s: string): boolean {
  if (usualTimestamp(s)) return true;
  // only a string that starts with a 4-digit year can hold a date
  return digits(s, 0, 4) >= 0 && (iso8601(s) ?? commonFormat(s)) === 'datetime';
}

/** Python's str.strip(): its whitespace is not quite JavaScript's (no BOM; the separators 0x1c-0x1f, NEL). */
const PY_SPACE = '[\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const PY_STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, 'g');
const pyStrip = (s: string) => s.replace(PY_STRIP, '');
/** Python's float() of a string: decimal, exponent, `_` between digits, inf, nan; else undefined. */
function pyFloat(s: string): number | undefined {
  const t = pyStrip(s);
  const special = /^([+-]?)(inf|infinity|nan)$/i.exec(t);
  if (special) return special[2]!.toLowerCase() === 'nan' ? NaN : special[1] === '-' ? -Infinity : Infinity;
  if (!/^[+-]?(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?$/.test(t)) return undefined;
  return Number(t.replaceAll('_', ''));
}
/** Python's int() of a stripped string, base 10 or 16; undefined when it isn't one. */
function pyInt(t: string, base: 10 | 16): bigint | undefined {
  const m = (base === 10 ? /^([+-]?)(\d(?:_?\d)*)$/ : /^([+-]?)(?:0[xX]_?)?([0-9a-fA-F](?:_?[0-9a-fA-F])*)$/).exec(
    pyStrip(t),
  );
  if (!m) return undefined;
  const n = BigInt((base === 16 ? '0x' : '') + m[2]!.replaceAll('_', ''));
  return m[1] === '-' ? -n : n;
}
/** A whole number for a BIGINT column (a JS number when exact), or NO beyond 64 bits. */
const int64 = (n: bigint) => (n < INT64_MIN || n > INT64_MAX ? NO : n >= -MAX_SAFE && n <= MAX_SAFE ? Number(n) : n);
/** Python's repr of a float, as dlt writes one into a text column: `10.5`, `1e+16`, `1e-05`, `nan`, `inf`. */
function pythonFloat(n: number): string {
  if (!Number.isFinite(n)) return Number.isNaN(n) ? 'nan' : n > 0 ? 'inf' : '-inf';
  const [mantissa, e] = Math.abs(n).toExponential().split('e'); // the shortest digits, as Python's repr finds them
  const [exp, ds] = [Number(e), mantissa!.replace('.', '')];
  const sign = n < 0 || Object.is(n, -0) ? '-' : '';
  if (exp < -4 || exp >= 16) {
    const power = `${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
    return `${sign}${ds[0]}${ds.length > 1 ? `.${ds.slice(1)}` : ''}e${power}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${ds}`;
  return ds.length > exp + 1
    ? `${sign}${ds.slice(0, exp + 1)}.${ds.slice(exp + 1)}`
    : `${sign}${ds.padEnd(exp + 1, '0')}.0`;
}
/** Python's isoformat of the instant in `parsed`, as UTC: `2024-01-02T03:04:05+00:00`. */
function isoformat(): string {
  const date = new Date(parsed.seconds * 1000).toISOString().slice(0, 19);
  return `${date}${parsed.fraction ? `.${String(parsed.fraction).padStart(6, '0')}` : ''}+00:00`;
}
/** Python's round(), half to even. */
const roundHalfEven = (v: number) => {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};
/** pendulum.from_timestamp: seconds from the epoch, rounded to the microsecond as Python rounds, into `parsed`. */
function fromEpoch(x: number): boolean {
  if (!Number.isFinite(x)) return false;
  let seconds = Math.trunc(x);
  let us = roundHalfEven((x - seconds) * 1e6);
  if (us >= 1e6) [seconds, us] = [seconds + 1, us - 1e6];
  else if (us < 0) [seconds, us] = [seconds - 1, us + 1e6];
  if (seconds < FIRST_SECOND || seconds > LAST_SECOND) return false;
  setInstant(seconds, us);
  return true;
}
/** dlt's text to timestamp: an ISO or common date-time or date (midnight), else seconds from the epoch. */
function textToInstant(s: string): boolean {
  if (usualTimestamp(s)) return true;
  const kind = iso8601(s) ?? commonFormat(s);
  if (kind !== undefined) return kind !== 'time';
  const x = pyFloat(s);
  return x !== undefined && fromEpoch(x);
}

const INT64_MIN = -(2n ** 63n),
  INT64_MAX = 2n ** 63n - 1n,
  MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER),
  DECIMAL_MAX = 10n ** 38n - 1n;
/** A value that can't be converted. */
const NO = Symbol('no conversion');
const TRUE_TEXT = new Set(['yes', 'true', 't', 'y', '1']);
const FALSE_TEXT = new Set(['no', 'false', 'f', 'n', '0']);

/**
 * dlt's conversion (`_COERCE_DISPATCH`) of a value of type `from` into a column of type `to`: the value to
 * write, or NO. Timestamps and dates land in `parsed`. From text: `"123"` and `"0x1f"` to BIGINT, `"3.25"`
 * to DOUBLE, `yes/no/true/false/t/f/y/n/1/0` (any case) to BOOLEAN, a date-time, a date or epoch seconds to a
 * timestamp, JSON text to JSON; into text anything goes, as Python's str() writes it (`True`, `10.5`, `1e+16`);
 * numbers to BOOLEAN (not zero: true), integral doubles to BIGINT, epoch seconds to a timestamp.
 */
function coerce(to: DataType, from: DataType, v: unknown): unknown {
  const number = from === 'bigint' || from === 'double' || from === 'decimal';
  switch (to) {
    case 'text':
      if (from === 'double') return pythonFloat(v as number);
      if (from === 'bool') return v ? 'True' : 'False';
      if (from === 'timestamp') return isoformat();
      if (from === 'json') return jsonText(v);
      return number ? String(v) : NO;
    case 'bigint': {
      if (from === 'text') {
        const t = pyStrip(v as string);
        const n = t.startsWith('0x') ? pyInt(t.slice(2), 16) : pyInt(t, 10);
        return n === undefined ? NO : int64(n);
      }
      if (from === 'double') return Number.isInteger(v) ? int64(BigInt(v as number)) : NO;
      return from === 'decimal' ? int64(v as bigint) : NO;
    }
    case 'double': {
      if (from !== 'text') return number ? Number(v) : NO;
      const t = pyStrip(v as string);
      const n = t.startsWith('0x') ? pyInt(t.slice(2), 16) : undefined;
      return n !== undefined ? Number(n) : (pyFloat(t) ?? NO);
    }
    case 'bool':
      if (from === 'text') {
        const t = (v as string).toLowerCase();
        return TRUE_TEXT.has(t) ? true : FALSE_TEXT.has(t) ? false : NO;
      }
      return number ? (typeof v === 'bigint' ? v !== 0n : v !== 0) : NO;
    case 'json':
      if (from !== 'text') return NO;
      try {
        return JSON.parse(v as string) as unknown;
      } catch {
        return NO;
      }
    case 'timestamp':
      if (from === 'text') return textToInstant(v as string) ? v : NO;
      return (from === 'bigint' || from === 'double') && fromEpoch(Number(v)) ? v : NO;
    case 'date': {
      const at =
        from === 'text' ? textToInstant(v as string) : from === 'timestamp' || (number && fromEpoch(Number(v)));
      return at ? v : NO; // the day of the instant, in UTC (`parsed.days`)
    }
    case 'decimal':
      if (from === 'text') return /^[+-]?(?:\d+\.?\d*|\.\d+)$/.test(pyStrip(v as string)) ? pyStrip(v as string) : NO;
      return number ? v : NO;
  }
}

/** The dlt type of a scalar, or null for null; objects and lists are handled by the walker. */
function typeOf(v: unknown): DataType | null {
  switch (typeof v) {
    case 'string':
      return isTimestamp(v) ? 'timestamp' : 'text';
    case 'number':
      return Number.isSafeInteger(v) && (v !== 0 || 1 / v > 0) ? 'bigint' : 'double'; // -0 is a float's (JSON -0.0)
    case 'boolean':
      return 'bool';
    case 'bigint':
      return v >= INT64_MIN && v <= INT64_MAX ? 'bigint' : v >= -DECIMAL_MAX && v <= DECIMAL_MAX ? 'decimal' : 'text';
    case 'undefined':
      return null;
    case 'object':
      if (v === null) return null;
      if (Array.isArray(v) || isRecord(v)) return 'json'; // reached only for a column typed json
      if (v instanceof Date) {
        if (Number.isNaN(v.getTime())) return 'text';
        setInstant(Math.floor(v.getTime() / 1000), (((v.getTime() % 1000) + 1000) % 1000) * 1000);
        return 'timestamp';
      }
  }
  throw new FlightError(
    `unsupported value of type ${Object.prototype.toString.call(v).slice(8, -1)}; ` +
      'yield plain objects, arrays, strings, numbers, booleans, bigints, Dates or null',
  );
}

/** A value of type `from` as the column takes it (converted as dlt converts), or NO. */
function convert(info: ColumnInfo, from: DataType, v: unknown): unknown {
  if (info.type === 'other') return NO;
  const value = info.type === from ? v : coerce(info.type, from, v);
  return value !== NO && info.narrow && !info.narrow(info.type, value) ? NO : value;
}

/** The value at a column path (`owner__id`) of a source row: under a flat key, or through nested objects. */
function valueAtPath(row: Row, path: string): unknown {
  for (const key of Object.keys(row)) {
    const name = normalizeKey(key);
    const v = row[key];
    if (name === path) return v;
    if (isRecord(v) && path.startsWith(`${name}__`)) {
      const found = valueAtPath(v, path.slice(name.length + 2));
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

const isRecord = (v: unknown): v is Row =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  !(v instanceof Date) &&
  !ArrayBuffer.isView(v) &&
  !(v instanceof Map) &&
  !(v instanceof Set);

// ─── Write Parquet: columns built straight into typed arrays ──────────
// The hot path. Each table buffers one batch of rows as Arrow columns: typed arrays and validity
// bitmaps, text encoded to UTF-8 as it arrives (no JS string is kept for a batch). A batch becomes
// one Parquet loader file at BATCH_ROWS rows, or once the arrays of all tables' batches have
// allocated BATCH_BYTES, so memory stays flat however long, wide or sparse the source. The batch
// is copied into an IPC stream for the worker, so its arrays are reused by the next batch: fresh
// large arrays cost more CPU than filling them (page faults, zeroing, garbage collection).

type Physical = 'int64' | 'float64' | 'bool' | 'date32' | 'utf8';
const PHYSICAL: Record<DataType, Physical> = {
  bigint: 'int64',
  timestamp: 'int64',
  double: 'float64',
  bool: 'bool',
  date: 'date32',
  text: 'utf8',
  json: 'utf8',
  decimal: 'utf8',
};
const TWO_32 = 4294967296;
const UTF8 = new TextEncoder();
const MIN_TEXT_BYTES = 65536; // a text buffer's first size: one this small is reused however little its column wrote

class ColumnBuffer {
  physical: Physical;
  valid = new Uint8Array(0);
  num = new Float64Array(0); // float64 data, or the int64/date32 data through the views below
  i64 = new BigInt64Array(this.num.buffer);
  u32 = new Uint32Array(this.num.buffer);
  i32 = new Int32Array(this.num.buffer);
  /** Text is encoded to UTF-8 as it arrives (no JS string is kept for the batch): bytes, and each row's end offset. */
  bytes = new Uint8Array(0);
  offsets = new Int32Array(1);
  private end = 0; // bytes used
  private filled = 0; // rows whose offsets are set

  type: DataType;
  constructor(type: DataType, capacity: number) {
    this.type = type;
    this.physical = PHYSICAL[type];
    this.grow(capacity);
  }

  /** Bytes its arrays have allocated. */
  get allocated(): number {
    return (
      this.valid.byteLength +
      (this.physical === 'utf8' ? this.offsets.byteLength + this.bytes.byteLength : this.num.byteLength)
    );
  }

  /** The same arrays for the next batch, cleared (see above); a text buffer grown past `maxText` bytes is let go. */
  reuse(type: DataType, capacity: number, maxText: number): this {
    this.type = type;
    this.valid.fill(0);
    if (this.physical === 'bool') new Uint8Array(this.num.buffer, 0, Math.ceil(this.num.length / 8)).fill(0);
    // nor kept is one its column filled less than a quarter of: the text has moved to another column
    if (this.bytes.length > maxText || (this.bytes.length > MIN_TEXT_BYTES && this.end * 4 < this.bytes.length))
      this.bytes = new Uint8Array(0);
    [this.end, this.filled] = [0, 0];
    this.grow(capacity);
    return this;
  }

  /** Bytes the arrays take per row of capacity: the validity bit and an 8-byte value, or a text's offset. */
  get rowBytes(): number {
    return this.physical === 'utf8' ? 4.125 : 8.125;
  }

  /** Rows its arrays have room for. */
  private get room(): number {
    return this.physical === 'utf8' ? this.offsets.length - 1 : this.num.length;
  }

  grow(capacity: number) {
    if (capacity <= this.room) return; // a reused buffer may have more
    const valid = new Uint8Array(Math.ceil(capacity / 8));
    valid.set(this.valid);
    this.valid = valid;
    if (this.physical === 'utf8') {
      const offsets = new Int32Array(capacity + 1);
      offsets.set(this.offsets);
      this.offsets = offsets;
      return;
    }
    const num = new Float64Array(capacity);
    num.set(this.num);
    this.num = num;
    [this.i64, this.u32, this.i32] = [
      new BigInt64Array(num.buffer),
      new Uint32Array(num.buffer),
      new Int32Array(num.buffer),
    ];
  }

  /** Writes a value already known to fit; returns the bytes it made the text buffer allocate (numbers: 0). */
  write(row: number, t: DataType, v: unknown): number {
    this.valid[row >> 3]! |= 1 << (row & 7);
    switch (this.physical) {
      case 'utf8': {
        return this.writeText(row, this.type === 'json' ? jsonText(v) : typeof v === 'string' ? v : String(v));
      }
      case 'float64':
        this.num[row] = Number(v);
        return 0;
      case 'bool':
        if (v) this.u32[row >> 5]! |= 1 << (row & 31);
        return 0;
      case 'date32':
        this.i32[row] = parsed.days;
        return 0;
      case 'int64':
        if (typeof v === 'bigint') this.i64[row] = v;
        else {
          // microseconds as a double are exact between the years 1685 and 2255; outside, BigInt does it
          const n = t === 'timestamp' ? parsed.seconds * 1_000_000 + parsed.fraction : (v as number);
          if (!Number.isSafeInteger(n)) this.i64[row] = BigInt(parsed.seconds) * 1_000_000n + BigInt(parsed.fraction);
          else {
            // a safe integer as two 32-bit halves: no BigInt allocated per value
            this.u32[2 * row] = n >>> 0;
            this.i32[2 * row + 1] = Math.floor(n / TWO_32);
          }
        }
        return 0;
    }
  }

  private writeText(row: number, s: string): number {
    const start = this.end;
    let grown = 0;
    if (this.bytes.length < start + s.length * 3) {
      const bytes = new Uint8Array(Math.max(this.bytes.length * 2, start + s.length * 3, MIN_TEXT_BYTES));
      grown = bytes.length - this.bytes.length;
      bytes.set(this.bytes.subarray(0, start));
      this.bytes = bytes;
    }
    let at = start;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 128) this.bytes[at++] = c;
      else {
        // not ASCII: the encoder does the whole string (and a lone surrogate, which UTF-8 can't hold, is refused)
        if (!s.isWellFormed())
          throw new FlightError(
            'a string holds a lone UTF-16 surrogate, which no database text can store as it is: ' +
              `${JSON.stringify(s.slice(0, 80))}; clean it in the source (String.prototype.toWellFormed)`,
          );
        at = start + UTF8.encodeInto(s, this.bytes.subarray(start)).written;
        break;
      }
    }
    this.fill(row);
    this.end = this.offsets[row + 1] = at;
    this.filled = row + 1;
    return grown;
  }

  /** Rows skipped since the last value (nulls) end where the last value ended. */
  private fill(upTo: number) {
    for (let r = this.filled; r < upTo; r++) this.offsets[r + 1] = this.end;
  }

  /** Bytes the text buffer would add when it next grows (it doubles), once it is seven eighths full; else 0. */
  get nextGrowth(): number {
    return this.physical === 'utf8' && this.bytes.length - this.end < this.bytes.length / 8 ? this.bytes.length : 0;
  }
  /** Forgets row `row`, the last one written (the schema contract dropped it). */
  undo(row: number) {
    this.valid[row >> 3]! &= ~(1 << (row & 7));
    if (this.physical === 'bool') this.u32[row >> 5]! &= ~(1 << (row & 31));
    if (this.physical === 'utf8' && this.filled > row) [this.end, this.filled] = [this.offsets[row]!, row];
  }

  /** Bytes of the first `rows` values that are large (LARGE_VALUE_BYTES or more): DuckDB can't evict those. */
  largeBytes(rows: number): number {
    if (this.physical !== 'utf8') return 0;
    let large = 0;
    for (let i = 0; i < rows; i++) {
      const n = this.offsets[i + 1]! - this.offsets[i]!;
      if (n >= LARGE_VALUE_BYTES) large += n;
    }
    return large;
  }

  toArrow(rows: number): arrow.Data {
    const nullBitmap = this.valid.subarray(0, Math.ceil(rows / 8));
    switch (this.physical) {
      case 'utf8':
        this.fill(rows);
        return arrow.makeData({
          type: new arrow.Utf8(),
          length: rows,
          nullBitmap,
          valueOffsets: this.offsets.subarray(0, rows + 1),
          data: this.bytes.subarray(0, this.end),
        });
      case 'float64':
        return arrow.makeData({
          type: new arrow.Float64(),
          length: rows,
          nullBitmap,
          data: this.num.subarray(0, rows),
        });
      case 'bool':
        return arrow.makeData({
          type: new arrow.Bool(),
          length: rows,
          nullBitmap,
          data: new Uint8Array(this.num.buffer, 0, Math.ceil(rows / 8)),
        });
      case 'date32':
        return arrow.makeData({
          type: new arrow.DateDay(),
          length: rows,
          nullBitmap,
          data: this.i32.subarray(0, rows),
        });
      case 'int64':
        return this.type === 'timestamp'
          ? arrow.makeData({
              type: new arrow.TimestampMicrosecond('UTC'),
              length: rows,
              nullBitmap,
              data: this.i64.subarray(0, rows),
            })
          : arrow.makeData({ type: new arrow.Int64(), length: rows, nullBitmap, data: this.i64.subarray(0, rows) });
    }
  }
}

/** JSON text of a value for a json column; BigInts keep their digits. */
const jsonText = (v: unknown) => toJson(v, false);
const bigintAsText = (_k: string, x: unknown) => (typeof x === 'bigint' ? x.toString() : x);

/**
 * JSON text, keys sorted at every level when asked; BigInts keep their digits. JSON.stringify recurses
 * and overflows the stack a few thousand levels down, so deeper data is written with an explicit stack.
 */
function toJson(value: unknown, sortKeys: boolean): string {
  try {
    return sortKeys ? JSON.stringify(value, sortedReplacer) : JSON.stringify(value, bigintAsText);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
  }
  const out: string[] = [];
  const open = new Set<object>(); // the objects being written, to refuse a cycle as JSON.stringify does
  const todo: ({ text: string; leave?: object } | { value: unknown })[] = [{ value }];
  const later = (parts: typeof todo) => {
    for (let i = parts.length - 1; i >= 0; i--) todo.push(parts[i]!);
  };
  while (todo.length > 0) {
    const task = todo.pop()!;
    if ('text' in task) {
      out.push(task.text);
      if (task.leave) open.delete(task.leave);
      continue;
    }
    const v = task.value;
    const nested = Array.isArray(v) || (isRecord(v) && typeof v.toJSON !== 'function');
    if (!nested) {
      out.push(JSON.stringify(v, bigintAsText) ?? 'null');
      continue;
    }
    if (open.has(v)) throw new TypeError('Converting circular structure to JSON');
    open.add(v);
    const parts: typeof todo = [];
    if (Array.isArray(v)) {
      v.forEach((x: unknown, i) =>
        parts.push({ text: i > 0 ? ',' : '' }, { value: typeof x === 'function' ? null : (x ?? null) }),
      );
      later([{ text: '[' }, ...parts, { text: ']', leave: v }]);
    } else {
      const keys = Object.keys(v).filter((k) => v[k] !== undefined && typeof v[k] !== 'function');
      for (const [i, k] of (sortKeys ? keys.sort() : keys).entries())
        parts.push({ text: `${i > 0 ? ',' : ''}${JSON.stringify(k)}:` }, { value: v[k] });
      later([{ text: '{' }, ...parts, { text: '}', leave: v }]);
    }
  }
  return out.join('');
}
const sortedReplacer = (_k: string, v: unknown) =>
  typeof v === 'bigint'
    ? v.toString()
    : isRecord(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, v[k]]),
        )
      : v;

/** Arrow's IPC writer writes into this: one buffer, grown as needed, starting from one the Parquet worker gave back. */
class IpcSink extends arrow.AsyncByteQueue {
  private bytes: Uint8Array;
  private length = 0;
  /** `size`: what the stream is expected to take, so a batch of large text isn't copied as its buffer doubles. */
  constructor(spare: ArrayBuffer | undefined, size: number) {
    super();
    this.bytes = new Uint8Array(spare && spare.byteLength >= size ? spare : new ArrayBuffer(roomFor(size)));
  }
  override write(chunk: Uint8Array): void {
    if (this.length + chunk.length > this.bytes.length) {
      const bytes = new Uint8Array(Math.max(this.bytes.length * 2, this.length + chunk.length, 1 << 20));
      bytes.set(this.bytes.subarray(0, this.length));
      this.bytes = bytes;
    }
    this.bytes.set(chunk, this.length);
    this.length += chunk.length;
  }
  get written(): Uint8Array {
    return this.bytes.subarray(0, this.length);
  }
}

/** One batch as an Arrow IPC stream, the form parquet-wasm reads. */
function batchToIpc(columns: [string, arrow.Data][], rows: number, spare?: ArrayBuffer): Uint8Array {
  const fields = columns.map(([name, data]) => new arrow.Field(name, data.type, true));
  const batch = new arrow.RecordBatch(
    new arrow.Schema(fields),
    arrow.makeData({ type: new arrow.Struct(fields), length: rows, children: columns.map(([, d]) => d) }),
  );
  // the columns' buffers, each padded to 8 bytes, and the schema and batch headers
  const size = columns.reduce((n, [, data]) => n + data.byteLength + 32, 4096 + 256 * columns.length);
  const sink = new IpcSink(spare, size);
  const writer = new arrow.RecordBatchStreamWriter();
  writer.reset(sink, batch.schema);
  writer.write(batch);
  writer.finish();
  return sink.written;
}

// Parquet encoding runs on a worker thread, beside the normalizer, so the two use both cores; the
// worker is this small script over parquet-wasm. No compression, dictionary or statistics: a loader
// file lives for a moment on local disk, and these write 1.5x (Snappy) to 6x (ZSTD with dictionaries)
// faster while DuckDB reads them as fast (`npx tsx bench/codecs.ts`; README, Performance).
// The worker lowers its own priority (nice 10, on Linux, where it is per thread): the main thread, which runs
// the source and normalizes every row in order, is the run's critical path, and a worker taking turns
// with it on a busy core only delays the batches it is waiting for.
const WORKER_NICE = 10;
const PARQUET_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { writeFileSync } = require('node:fs');
const pq = require(workerData.parquetWasm);
// Linux keeps a nice value per thread; elsewhere it would lower the whole process, so it is left alone there
if (process.platform === 'linux') try { require('node:os').setPriority(${WORKER_NICE}); } catch {}
// parquet-wasm hands each file over as a copy out of its memory into new memory (a view's .slice()), and new
// memory costs page faults every batch; so while writeParquet runs, that copy goes into one buffer kept for
// the next files (none over KEEP_BYTES). The file is written from it before the next batch is taken.
const wasm = pq.wasmMemory();
const slice = Uint8Array.prototype.slice;
let kept = new Uint8Array(0);
function copyOut(...args) {
  const ours = args.length === 0 && this.buffer === wasm.buffer && this.length <= workerData.keepBytes;
  if (!ours) return slice.apply(this, args);
  if (kept.length < this.length) kept = new Uint8Array(Math.ceil(Math.min(this.length * 1.125, workerData.keepBytes)));
  kept.set(this);
  return kept.subarray(0, this.length);
}
function writeParquet(table, properties) {
  Uint8Array.prototype.slice = copyOut;
  try {
    return pq.writeParquet(table, properties);
  } finally {
    Uint8Array.prototype.slice = slice;
  }
}
parentPort.on('message', ({ path, ipc }) => {
  try {
    const properties = new pq.WriterPropertiesBuilder()
      .setCompression(pq.Compression.UNCOMPRESSED)
      .setDictionaryEnabled(false)
      .setStatisticsEnabled(pq.EnabledStatistics.None)
      .build();
    const table = pq.Table.fromIPCStream(ipc); // a copy in parquet-wasm's memory: the IPC buffer goes back
    parentPort.postMessage({ spare: ipc.buffer }, [ipc.buffer]);
    writeFileSync(path, writeParquet(table, properties));
    parentPort.postMessage({ path });
  } catch (e) {
    parentPort.postMessage({ path, error: String((e && e.message) || e) });
  }
});`;

/** Writes loader files on the worker, in order; `pending` of them are not written yet. */
export class ParquetWriter {
  private worker = new Worker(PARQUET_WORKER, {
    eval: true,
    workerData: { parquetWasm: createRequire(import.meta.url).resolve('parquet-wasm'), keepBytes: KEEP_BYTES },
  });
  private waiting: { path: string; done: () => void; fail: (e: Error) => void }[] = [];
  /** IPC buffers the worker is done with, for the next batches: at most two, none over KEEP_BYTES. */
  private spares: ArrayBuffer[] = [];
  /** Why the worker is gone (it failed, or was closed): every write from then on fails with it. */
  private stopped: FlightError | null = null;
  private closing = false;
  constructor() {
    this.worker.unref();
    this.worker.on('message', ({ path, error, spare }: { path: string; error?: string; spare?: ArrayBuffer }) => {
      if (spare) return void (this.spares.length < 2 && spare.byteLength <= KEEP_BYTES && this.spares.push(spare));
      const job = this.waiting.shift()!;
      const hint = /ENOSPC|EACCES|EROFS|EDQUOT/.test(error ?? '')
        ? '; free space there or set TMPDIR to another folder'
        : '';
      if (error) job.fail(new FlightError(`could not write the loader file ${path}: ${error}${hint}`));
      else job.done();
    });
    // a worker that fails to start or dies is gone: what waits for it, and what comes later, fails
    this.worker.on('error', (e) => this.stop(`the Parquet writer stopped: ${errorText(e)}`));
    this.worker.on('exit', (code) =>
      this.stop(this.closing ? 'the Parquet writer was closed' : `the Parquet writer stopped (exit code ${code})`),
    );
  }
  private stop(why: string): void {
    this.stopped ??= new FlightError(why);
    this.waiting.splice(0).forEach((job) => job.fail(this.stopped!));
  }
  get pending() {
    return this.waiting.length;
  }
  /** One batch as the IPC stream write() takes, in a buffer the worker gave back when there is one. */
  ipc(columns: [string, arrow.Data][], rows: number): Uint8Array {
    return batchToIpc(columns, rows, this.spares.pop());
  }
  write(path: string, ipc: Uint8Array): Promise<void> {
    if (this.stopped) return Promise.reject(this.stopped);
    return new Promise((done, fail) => {
      this.waiting.push({ path, done, fail });
      this.worker.postMessage({ path, ipc }, [ipc.buffer as ArrayBuffer]);
    });
  }
  close(): Promise<number> {
    this.closing = true;
    return this.worker.terminate();
  }
}

/** Row numbers (the order rows arrived in), so merge can keep the last row of a key. Never loaded into a table. */
function int64Column(rows: number, value: (i: number) => number): arrow.Data {
  const data = new BigInt64Array(rows);
  const [low, high] = [new Uint32Array(data.buffer), new Int32Array(data.buffer)];
  for (let i = 0; i < rows; i++) {
    const n = value(i);
    low[2 * i] = n >>> 0;
    high[2 * i + 1] = Math.floor(n / TWO_32);
  }
  return arrow.makeData({ type: new arrow.Int64(), length: rows, data });
}

// ─── Extract: source rows into a load package ───────────────

/** What extract hands to load, as dlt's load package: the files of each table and a load id. */
export interface LoadPackage {
  loadId: string;
  schema: Schema;
  tables: Map<string, { files: string[]; rows: number }>;
}

const DLT_ID_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-';
/** Row ids unique across runs: a random prefix per run and a counter, cheaper than random per row. */
class RowIds {
  private readonly prefix = Array.from(randomBytes(8), (b) => DLT_ID_CHARS[b & 63]).join('');
  private count = 0;
  /** The id of row number `n` of the run: the prefix and `n` in base 36, fixed width. */
  id(n = this.count++): string {
    return this.prefix + n.toString(36).padStart(9, '0');
  }
  private data = new Uint8Array(0);
  private offsets = new Int32Array(1);
  /**
   * The ids of rows `start`.. as an Arrow column, written as bytes rather than a string per row; `given` are ids the
   * data brought. Its arrays are reused by the next call (the batch is copied into its IPC stream before that), and
   * as every id has the same width only their digits are rewritten.
   */
  column(start: number, rows: number, given: Map<number, string>): arrow.Data {
    if (given.size > 0)
      return arrow.vectorFromArray(
        Array.from({ length: rows }, (_, i) => given.get(i) ?? this.id(start + i)),
        new arrow.Utf8(),
      ).data[0]!;
    const width = 17;
    if (this.offsets.length < rows + 1) {
      this.offsets = new Int32Array(rows + 1);
      for (let i = 0; i <= rows; i++) this.offsets[i] = i * width;
      this.data = new Uint8Array(rows * width);
      const prefix = Buffer.from(this.prefix, 'latin1');
      for (let at = 0; at < this.data.length; at += width) this.data.set(prefix, at);
    }
    const data = this.data;
    for (let i = 0, at = 0; i < rows; i++, at += width)
      for (let n = start + i, k = width - 1; k >= 8; k--, n = Math.floor(n / 36)) data[at + k] = BASE36[n % 36]!;
    return arrow.makeData({
      type: new arrow.Utf8(),
      length: rows,
      valueOffsets: this.offsets.subarray(0, rows + 1),
      data: data.subarray(0, rows * width),
    });
  }
}
const BASE36 = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz', 'latin1');

/** What the extractor keeps per column name of a table: its schema entry, this batch's buffer, who wrote it last. */
interface Slot {
  name: string;
  info: ColumnInfo | undefined;
  /** This batch's buffer; flush clears it. */
  col: ColumnBuffer | undefined;
  /**
   * The row (counted over the run) and source key that last wrote the name, so two keys that normalize to it are
   * caught.
   */
  lastRow: number;
  lastKey: string;
  /** The last batch's buffer, for this batch to take up again. */
  spare: ColumnBuffer | undefined;
}

class TableBuffer {
  slots = new Map<string, Slot>();
  /** Slot of each raw top-level key (null for a reserved name): one lookup per value on the common path. */
  private top = new Map<string, Slot | null>();
  private nested = new Map<string, Map<string, Slot>>();
  /** Slots with a buffer in this batch, in column order. */
  active: Slot[] = [];
  row = 0;
  /** Bytes the batch's text buffers have allocated. */
  bytes = 0;
  /** Rows every column's arrays have room for, and the bytes they take per row: the rest of the batch's memory. */
  capacity = 1024;
  rowBytes = 0;
  files: string[] = [];
  total = 0;
  /** Rows begun, discarded ones too: what a claim is counted against. */
  serial = 0;
  /** What its root table's disposition asks of the rows. */
  rules!: ReturnType<typeof rowRules>;
  /** Merge: for each child row, the arrival number of its root row (duplicates of a key may share ids). */
  rootSeqs: Float64Array | null = null;
  /** `_dlt_id`s the data brought, by row of the batch (other root ids are made from the row number). */
  givenIds = new Map<number, string>();
  readonly schema: TableSchema;
  readonly index: number;
  constructor(schema: TableSchema, index: number) {
    this.schema = schema;
    this.index = index;
  }

  slot(name: string): Slot {
    let slot = this.slots.get(name);
    if (!slot)
      this.slots.set(
        name,
        (slot = {
          name,
          info: this.schema.columns.get(name),
          col: undefined,
          lastRow: -1,
          lastKey: '',
          spare: undefined,
        }),
      );
    return slot;
  }

  topSlot(key: string): Slot | null {
    let slot = this.top.get(key);
    if (slot === undefined) {
      const name = normalizeKey(key);
      if (this.top.size > 100_000) this.top.clear(); // keys that are data (ids as keys) must not grow memory
      // dlt's own columns come from the normalizer, not the source
      this.top.set(key, (slot = RESERVED.has(name) ? null : this.slot(name)));
    }
    return slot;
  }

  /** Slot of a raw key of a nested object at column path `prefix`, cached as topSlot's (no name is built per value). */
  nestedSlot(prefix: string, key: string): Slot {
    let keys = this.nested.get(prefix);
    if (!keys) {
      if (this.nested.size > 100_000) this.nested.clear();
      this.nested.set(prefix, (keys = new Map()));
    }
    let slot = keys.get(key);
    if (!slot) {
      if (keys.size > 100_000) keys.clear();
      keys.set(key, (slot = this.slot(`${prefix}__${normalizeKey(key)}`)));
    }
    return slot;
  }

  /** Each leaf of a row is visited once, so a second value for one name in one row is a collision. */
  claim(slot: Slot, key: string, sourceRow: number): void {
    if (slot.lastRow === this.serial)
      throw new FlightError(
        `source row ${sourceRow}: keys ${JSON.stringify(slot.lastKey)} and ${JSON.stringify(key)} ` +
          'both land in column ' +
          `"${slot.name}" of table "${this.schema.name}" (their names normalize to it, or one is a variant of the ` +
          `other's column); rename one in the source`,
      );
    slot.lastRow = this.serial;
    slot.lastKey = key;
  }

  /** Forgets the row being written (the schema contract dropped it): its values, and the columns it created. */
  undoRow(created: Slot[]): void {
    for (const slot of this.active) slot.col!.undo(this.row);
    for (const slot of created) {
      this.schema.columns.delete(slot.name);
      slot.info = undefined;
      if (slot.col) {
        this.active.splice(this.active.indexOf(slot), 1);
        this.rowBytes -= slot.col.rowBytes;
      }
      slot.col = undefined;
    }
    this.serial++;
  }

  column(slot: Slot, type: DataType, budget: number): ColumnBuffer {
    if (!slot.col) {
      const spare = slot.spare;
      if (spare) [slot.spare, this.spareBytes] = [undefined, this.spareBytes - spare.allocated];
      if (spare?.physical === PHYSICAL[type]) {
        slot.col = spare.reuse(type, this.capacity, budget / 2); // a batch written by textFull holds up to half
        this.bytes += spare.allocated - spare.rowBytes * this.capacity; // beyond what the row count accounts for
      } else slot.col = new ColumnBuffer(type, this.capacity);
      this.active.push(slot);
      this.rowBytes += slot.col.rowBytes;
    }
    return slot.col;
  }

  /** The last batch's buffers not taken up again, and what they hold: the batch's memory includes them. */
  private spares: Slot[] = [];
  spareBytes = 0;

  /**
   * After a batch is handed to the writer: the older spares are let go, and a full batch's buffers become
   * spares. One cut short for memory leaves none: its buffers may be larger than the next batch is allowed.
   */
  recycle(full: boolean): void {
    this.dropSpares();
    if (!full) {
      for (const slot of this.active) slot.col = undefined;
      return;
    }
    for (const slot of this.active) {
      slot.spare = slot.col;
      slot.col = undefined;
      this.spareBytes += slot.spare!.allocated;
    }
    this.spares = this.active;
  }

  /** Lets the spares go: the memory they hold is wanted for rows. */
  dropSpares(): void {
    for (const slot of this.spares) slot.spare = undefined;
    [this.spares, this.spareBytes] = [[], 0];
  }
}

interface ExtractOptions {
  loadId: string;
  dir: string;
  batchRows: number;
  /** Bytes of memory the batches' arrays may take (allocated, all tables together); default 64 MiB. */
  batchBytes?: number;
  /** Tables in the dataset the pipeline doesn't own: a child table by one of these names fails the run. */
  foreign: Set<string>;
  /** Called with each loader file as soon as it is written, and the bytes of its large values. */
  onFile(table: TableSchema, path: string, largeBytes: number): void;
}

/** What the disposition and merge strategy ask of the rows, as in dlt. */
function rowRules(plan: Plan) {
  const strategy = plan.disposition === 'merge' ? plan.mergeStrategy : null;
  return {
    /** Every root row needs these (merge by key; scd2 too when one is given). */
    primaryKey: strategy ? plan.primaryKey : null,
    /** And these (dlt's merge_key). */
    mergeKey: strategy ? plan.mergeKey : null,
    /** Child rows carry _dlt_root_id, so a merge finds the children of a replaced row. */
    rootIds: !!strategy && strategy !== 'scd2',
    /**
     * Root _dlt_id: random; a hash of the key (upsert: a row keeps its id); a hash of the row (scd2: the id is the
     * version).
     */
    ids: strategy === 'upsert' ? 'key' : strategy === 'scd2' ? 'content' : ('random' as 'random' | 'key' | 'content'),
    /** scd2: the root table gets _dlt_valid_from / _dlt_valid_to (set at load, not in the files). */
    validity: strategy === 'scd2',
    /** Root files carry _dlt_seq (arrival order), for merge to keep the last row of a key. */
    sequence: !!strategy,
  };
}
const VALIDITY = ['_dlt_valid_from', '_dlt_valid_to'];
/** Columns the normalizer writes; the same keys in source data are not loaded over them. */
const RESERVED = new Set([
  '_dlt_id',
  '_dlt_load_id',
  '_dlt_seq',
  '_dlt_root_seq',
  '_dlt_parent_id',
  '_dlt_list_idx',
  '_dlt_root_id',
  '_dlt_valid_from',
  '_dlt_valid_to',
]);
/** Bytes of a batch's arrays (allocated, of all tables together) at which the largest batch is written. */
const BATCH_BYTES = 64 * 1024 * 1024;
/**
 * The largest buffer kept for the next batches (IPC streams, the worker's files): a full batch's stream is a little
 * over BATCH_BYTES (the columns extract adds), and buffers are made an eighth larger than they need, so that the
 * next, slightly larger batch fits in them.
 */
const KEEP_BYTES = BATCH_BYTES * 1.125;
const roomFor = (size: number) => Math.ceil(Math.min(size * 1.125, Math.max(size, KEEP_BYTES)));

/** Where a resource's rows go: its table's plan, or (`route`) the plan of the table each row names. */
export interface Target {
  plan: Plan;
  route?: (row: Row) => Plan;
}
/** A root table's plan with what the extractor asks of its rows. */
interface Prepared {
  plan: Plan;
  rules: ReturnType<typeof rowRules>;
  /** Columns every root row must bring, and how to name them: merge keys, columns hinted not nullable. */
  required: [string, string][];
}
function prepare(plan: Plan): Prepared {
  const rules = rowRules(plan);
  const keys = (list: string[] | null, key: string, what: string) =>
    (list ?? []).map((c): [string, string] => [c, `${what} column "${c}" (${key}=${list!.join(',')})`]);
  const required = [
    ...keys(rules.primaryKey, 'PRIMARY_KEY', 'primary key'),
    ...keys(rules.mergeKey, 'MERGE_KEY', 'merge key'),
    ...[...plan.hints]
      .filter(([name, h]) => h.nullable === false && !rules.primaryKey?.includes(name))
      .map(([c]): [string, string] => [c, `column "${c}", which its hint makes not nullable`]),
  ];
  return { plan, rules, required };
}

/** Thrown where the schema contract drops the row being added; caught where the row began. */
const DISCARD_ROW = Symbol('the schema contract drops this row');

/** Streams rows into table buffers, writing a Parquet file whenever a buffer fills. */
export class Extractor {
  private buffers = new Map<string, TableBuffer>();
  /** The root table of the row being added, and its rules (a run may load several root tables). */
  private current!: Prepared;
  private readonly prepared = new Map<Plan, Prepared>();
  private rootIds = new RowIds();
  /** Rows and values the schema contract dropped, by table. */
  readonly discarded = new Map<string, { rows: number; values: number }>();
  /** Tables this run creates: a contract's rules on columns and data types don't apply to a new table's. */
  private newTables = new Set<string>();
  /** Columns the row being written created: forgotten if the contract drops the row. */
  private newColumns: Slot[] = [];
  private childIds = new RowIds();
  private sourceRow = 0;
  private rootSeq = 0;
  /** The `_dlt_id` the row being added brought, if any. */
  private givenId = '';
  /** Lists met while flattening, waiting for their row's id: a stack, each row's above its parent's. */
  private lists: { parent: TableBuffer; path: string; items: unknown[]; depth: number }[] = [];
  private writes: Promise<void>[] = [];
  readonly schema: Schema;
  readonly opts: ExtractOptions;
  private readonly writer: ParquetWriter;
  constructor(schema: Schema, opts: ExtractOptions, writer: ParquetWriter) {
    [this.schema, this.opts, this.writer] = [schema, opts, writer];
  }

  /**
   * One item the source yielded, into `target`'s table. As in dlt, a list is a page of items, an item that is
   * not an object is the row `{value: item}`, and null is skipped.
   */
  add(item: unknown, target: Target): void {
    if (Array.isArray(item)) for (const one of item) this.addRow(one, target);
    else this.addRow(item, target);
  }

  /** The root tables that got rows, with their plans. */
  get roots(): Plan[] {
    return [...this.prepared.values()].filter((p) => this.buffers.has(p.plan.table)).map((p) => p.plan);
  }

  private addRow(item: unknown, target: Target): void {
    this.sourceRow++;
    if (item === null || item === undefined) return;
    const row = isRecord(item) ? item : { value: item };
    const plan = target.route ? target.route(row) : target.plan;
    if (this.current?.plan !== plan) {
      let prepared = this.prepared.get(plan);
      if (!prepared) this.prepared.set(plan, (prepared = prepare(plan)));
      this.current = prepared;
    }
    const lists = this.lists.length;
    this.newColumns.length = 0;
    let buf: TableBuffer | undefined;
    let id: string;
    try {
      buf = this.table(plan.table, null);
      this.rootSeq = buf.total;
      this.givenId = '';
      this.walk(buf, row, '', plan.maxNesting);
      if (buf.total === 0)
        for (const name of ['_dlt_load_id', '_dlt_id'])
          if (!buf.schema.columns.has(name)) buf.schema.columns.set(name, newColumn('text'));
      // dlt keeps an id the row brings (`_dlt_id`, in any case), except where the id is the version (scd2)
      id = this.givenId && this.current.rules.ids !== 'content' ? this.givenId : this.rootId(row);
      if (this.current.rules.ids !== 'random') this.put(buf, buf.slot('_dlt_id'), '_dlt_id', id);
      else if (id) buf.givenIds.set(buf.row, id);
      for (const [column, what] of this.current.required) this.requireValue(buf, column, what);
    } catch (e) {
      if (e !== DISCARD_ROW) throw e;
      buf?.undoRow(this.newColumns);
      this.lists.length = lists;
      return;
    }
    this.endRow(buf);
    this.walkLists(lists, id, id);
  }

  /**
   * What the schema contract says of a change: true to go on, false to drop the value (counted); a dropped
   * row throws DISCARD_ROW to where the row began, a frozen schema fails the run.
   */
  private allowed(kind: keyof SchemaContract, table: string, change: string): boolean {
    const mode = this.current.plan.contract[kind];
    if (mode === 'evolve') return true;
    if (mode === 'freeze')
      throw new FlightError(
        `source row ${this.sourceRow}: schema contract: ${change} ` +
          `(resource ${JSON.stringify(this.current.plan.resource)} ` +
          `has ${kind}=freeze); nothing was loaded`,
      );
    let count = this.discarded.get(table);
    if (!count) this.discarded.set(table, (count = { rows: 0, values: 0 }));
    if (mode === 'discard_value' && kind !== 'tables') return (count.values++, false);
    count.rows++;
    throw DISCARD_ROW;
  }
  /** Whether the contract's columns and data_type rules apply: not to a table this run creates, nor dlt's columns. */
  private contracted(buf: TableBuffer, column: string): boolean {
    return !this.newTables.has(buf.schema.name) && !column.startsWith('_dlt');
  }

  /** The root row's id: a hash of its key (upsert) or of its content (scd2); '' when made from the row number. */
  private rootId(row: Row): string {
    if (this.current.rules.ids === 'random') return '';
    if (this.current.rules.ids === 'content')
      return digest128(sortedJson(Object.fromEntries(Object.entries(row).filter(([k]) => !k.startsWith('_dlt')))), 10);
    const key = this.current.rules.primaryKey!.map((column) => [column, valueAtPath(row, column) ?? null]);
    return digest128(sortedJson(Object.fromEntries(key)), 10);
  }

  /** Set when a batch was handed to the writer: the caller should let the writer and loader catch up. */
  flushed = false;

  /** Waits while the Parquet writer is more than a file behind. */
  async keepUp(): Promise<void> {
    this.flushed = false;
    while (this.writer.pending > 1) await this.writes.shift();
  }

  /** Writes what is still buffered and returns the load package. */
  async finish(): Promise<LoadPackage> {
    for (const buf of this.buffers.values()) if (buf.row > 0) this.flush(buf);
    await Promise.all(this.writes.splice(0));
    const tables = new Map([...this.buffers.values()].map((b) => [b.schema.name, { files: b.files, rows: b.total }]));
    return { loadId: this.opts.loadId, schema: this.schema, tables };
  }

  private table(name: string, parent: string | null): TableBuffer {
    let buf = this.buffers.get(name);
    if (!buf) {
      let schema = this.schema.get(name);
      if (!schema && this.opts.foreign.has(name))
        throw new FlightError(
          `the rows ${parent ? 'have a list that loads' : 'go'} into table "${name}", which exists in the dataset ` +
            `but is not one of this pipeline's tables (its stored schema, _dlt_version, doesn't list it): rename ` +
            `or drop that table, or load into another table`,
        );
      if (!schema) {
        this.allowed('tables', name, `table "${name}" is new`);
        this.schema.set(name, (schema = { name, parent, columns: new Map() }));
        this.newTables.add(name);
      }
      if (parent === null) this.declareColumns(schema.columns);
      this.buffers.set(name, (buf = new TableBuffer(schema, this.buffers.size)));
      buf.rules = this.current.rules;
      if (parent !== null && buf.rules.rootIds) buf.rootSeqs = new Float64Array(buf.capacity);
    }
    return buf;
  }

  /**
   * The root table's declared columns come first, as dlt puts them: the typed column hints, then scd2's validity
   * columns (set at load, not in the files). A hint without a type waits in the stored schema for data.
   */
  private declareColumns(columns: Map<string, ColumnInfo>): void {
    for (const [name, hint] of this.current.plan.hints)
      if (hint.data_type && !columns.has(name)) columns.set(name, hintedColumn(hint.data_type, hint));
    if (this.current.rules.validity)
      for (const name of VALIDITY) if (!columns.has(name)) columns.set(name, newColumn('timestamp'));
  }

  /**
   * Flattens an object into the row as dlt's normalizer does: a level's values first, then its objects, the
   * last one first; lists wait in `lists` for the row's id. `depth` counts down dlt's max_table_nesting: at 0,
   * objects and lists stay JSON.
   */
  private walk(buf: TableBuffer, obj: Row, prefix: string, depth: number): void {
    let objects: [Slot, Row][] | undefined;
    // for-in reads the values of same-shaped rows about 3x faster than Object.keys + obj[key]; an object
    // with a prototype of its own is copied first, so that only its own keys are walked (as Object.keys)
    const proto: unknown = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) obj = { ...obj };
    for (const key in obj) {
      const v = obj[key];
      const slot = prefix ? buf.nestedSlot(prefix, key) : buf.topSlot(key);
      if (slot === null) {
        if (buf.schema.parent === null && normalizeKey(key) === '_dlt_id') this.giveId(buf, v);
        continue;
      }
      if (typeof v !== 'object' || v === null || v instanceof Date || !(Array.isArray(v) || isRecord(v)))
        this.put(buf, slot, key, v);
      else if (depth <= 0 || slot.info?.type === 'json') this.put(buf, slot, key, v);
      else if (Array.isArray(v)) {
        buf.claim(slot, key, this.sourceRow);
        if (v.length > 0) this.lists.push({ parent: buf, path: slot.name, items: v, depth: depth - 1 });
      } else (objects ??= []).push([slot, v]);
    }
    if (objects)
      for (let i = objects.length - 1; i >= 0; i--) this.walk(buf, objects[i]![1], objects[i]![0].name, depth - 1);
  }

  /** A `_dlt_id` the root row brings: its column stands where the row has it (dlt's order), its value is the id. */
  private giveId(buf: TableBuffer, v: unknown): void {
    if (!buf.schema.columns.has('_dlt_id')) buf.schema.columns.set('_dlt_id', newColumn('text'));
    if (typeof v === 'string') this.givenId = v;
  }

  /** The lists found since `from` (a row's, flattened), each into its child table, linked to the row. */
  private walkLists(from: number, parentId: string, rootId: string): void {
    const end = this.lists.length;
    for (let i = from; i < end; i++) {
      const { parent, path, items, depth } = this.lists[i]!;
      this.walkList(parent, path, items, parentId, rootId, depth);
    }
    this.lists.length = from;
  }

  private walkList(
    parent: TableBuffer,
    path: string,
    items: unknown[],
    parentId: string,
    rootId: string,
    depth: number,
  ): void {
    const name = `${parent.schema.name}__${path}`;
    let child: TableBuffer;
    try {
      child = this.table(name, parent.schema.name);
    } catch (e) {
      if (e !== DISCARD_ROW) throw e;
      this.discarded.get(name)!.rows += items.length - 1; // a new table the contract refuses: all its rows
      return;
    }
    if (!rootId) parentId = rootId = this.rootIds.id(this.rootSeq); // the root row's id, made now that a child needs it
    items.forEach((item, idx) => {
      // with hashed root ids, a child's id follows from its parent's, as dlt makes it
      const id =
        this.current.rules.ids === 'random'
          ? this.childIds.id()
          : digest128(`${parentId}_${child.schema.name}_${idx}`, 10);
      const lists = this.lists.length;
      const created = this.newColumns.length;
      try {
        if (isRecord(item)) this.walk(child, item, '', depth);
        else if (Array.isArray(item))
          this.walk(child, { list: item }, '', depth - 1); // dlt's row for a list in a list
        else this.put(child, child.slot('value'), 'value', item);
      } catch (e) {
        if (e !== DISCARD_ROW) throw e;
        child.undoRow(this.newColumns.splice(created));
        this.lists.length = lists;
        return;
      }
      if (this.current.rules.rootIds) this.put(child, child.slot('_dlt_root_id'), '_dlt_root_id', rootId);
      this.put(child, child.slot('_dlt_parent_id'), '_dlt_parent_id', parentId);
      this.put(child, child.slot('_dlt_list_idx'), '_dlt_list_idx', idx);
      this.put(child, child.slot('_dlt_id'), '_dlt_id', id);
      this.endRow(child);
      this.walkLists(lists, id, rootId);
    });
  }

  /**
   * One scalar into its column. A value of another type is converted as dlt converts it (`"5"` into BIGINT);
   * one that can't be goes to the variant column named after its own type (a string's is text, even one that
   * looks like a timestamp), which is typed as a new column would be.
   */
  private put(buf: TableBuffer, slot: Slot, key: string, v: unknown): void {
    let info = slot.info;
    // any string fits text: no need to parse it
    let t = typeof v === 'string' && info?.type === 'text' ? 'text' : typeOf(v);
    if (t === null) return; // nulls are the default; a column that only ever sees nulls is never created
    buf.claim(slot, key, this.sourceRow);
    if (!info) {
      const change = `column "${slot.name}" of table "${buf.schema.name}" is new`;
      if (this.contracted(buf, slot.name) && !this.allowed('columns', buf.schema.name, change)) return;
      buf.schema.columns.set(slot.name, (slot.info = info = newColumn(t)));
      this.newColumns.push(slot);
    }
    let target = slot;
    if (info.type !== t || info.narrow) {
      if (t === 'text' && typeof v !== 'string') v = String(v); // a BigInt beyond DECIMAL, an invalid Date: as text
      const from = typeof v === 'string' ? 'text' : t;
      let value = convert(info, from, v);
      if (value === NO) {
        target = buf.slot(`${slot.name}__v_${from}`);
        buf.claim(target, key, this.sourceRow); // a source key named like the variant must not write it too
        const column = info;
        const change = `column "${slot.name}" of table "${buf.schema.name}" would get a variant of type ${from}`;
        if (!target.info && this.contracted(buf, slot.name) && !this.allowed('data_type', buf.schema.name, change))
          return;
        info = target.info ?? newColumn(t, true);
        if (!target.info) {
          buf.schema.columns.set(target.name, (target.info = info));
          this.newColumns.push(target);
        }
        value = convert(info, from, v);
        if (value === NO)
          throw new FlightError(
            `source row ${this.sourceRow}: ${String(jsonText(v)).slice(0, 80)} fits neither column "${slot.name}" ` +
              `(${column.type}) of table "${buf.schema.name}" nor its variant column "${target.name}" ` +
              `(${info.type}); dlt fails here too. Clean the value in the source`,
          );
      }
      if (value === null) return; // JSON text `null` into a json column: nothing to store
      [v, t] = [value, info.type as DataType];
    }
    const col = target.col ?? buf.column(target, info.type as DataType, this.opts.batchBytes ?? BATCH_BYTES);
    buf.bytes += col.write(buf.row, t, v);
  }

  private requireValue(buf: TableBuffer, column: string, what: string): void {
    const slot = buf.slots.get(column);
    if (!slot?.col || slot.lastRow !== buf.serial || !(slot.col.valid[buf.row >> 3]! & (1 << (buf.row & 7))))
      throw new FlightError(
        `source row ${this.sourceRow} has no value for ${what}` +
          (buf.schema.columns.has(`${column}__v_text`) ? ' of its type' : '') +
          '; dlt makes it NOT NULL: fix the source' +
          (this.current.rules.primaryKey ? ', or use WRITE_DISPOSITION=append' : ''),
      );
  }

  private endRow(buf: TableBuffer): void {
    if (buf.rootSeqs) buf.rootSeqs[buf.row] = this.rootSeq;
    buf.row++;
    buf.total++;
    buf.serial++;
    // a batch is written at BATCH_ROWS rows, or once its arrays hold the budget: what they allocated, not
    // what they hold, so sparse and wide tables write smaller batches rather than take more memory
    const budget = this.opts.batchBytes ?? BATCH_BYTES;
    // (the last batch's buffers kept for this one are only a saving: they go first)
    const used = buf.bytes + buf.capacity * buf.rowBytes;
    if (buf.row >= this.opts.batchRows || used >= budget) this.flush(buf, used < budget);
    else if (used * 2 >= budget && this.textFull(buf, budget - used)) this.flush(buf, true);
    else if (used + buf.spareBytes >= budget) buf.dropSpares();
    else if (buf.row >= buf.capacity) {
      buf.dropSpares();
      const room = Math.floor((budget - buf.bytes) / Math.max(buf.rowBytes + 8, 1));
      const capacity = Math.min(buf.capacity * 4, this.opts.batchRows, room);
      if (capacity <= buf.row) return this.flush(buf);
      buf.capacity = capacity;
      for (const slot of buf.active) slot.col!.grow(buf.capacity);
      if (buf.rootSeqs) buf.rootSeqs = Float64Array.from({ length: buf.capacity }, (_, i) => buf.rootSeqs![i] ?? 0);
    }
    // and all tables' batches together: every 4096 rows, the largest is written while they hold more
    if ((++this.rowsAdded & 4095) === 0) this.holdBudget(budget);
  }

  /**
   * Whether a text buffer of the batch would double past the budget's `room` (a buffer is counted in what the batch
   * used, so only a batch at half its budget can have one): its batch is then written before, and being within the
   * budget, leaves its buffers to the next. Text-heavy rows would otherwise fill every batch to the budget by
   * doubling, leave nothing, and grow new buffers again from 64 KB (200,000 rows of 1 KB text: 88 times).
   */
  private textFull(buf: TableBuffer, room: number): boolean {
    for (const slot of buf.active) if (slot.col!.nextGrowth >= room) return true;
    return false;
  }

  private rowsAdded = 0;
  private holdBudget(budget: number): void {
    for (;;) {
      let [total, largest, most, spares] = [0, undefined as TableBuffer | undefined, 0, 0];
      for (const buf of this.buffers.values()) {
        spares += buf.spareBytes;
        const bytes = buf.bytes + buf.spareBytes + buf.capacity * buf.rowBytes;
        total += bytes;
        if (buf.row > 0 && bytes > most) [largest, most] = [buf, bytes];
      }
      if (total < budget || !largest) return;
      // spares are only a saving: they go before a batch is cut short
      if (spares > 0) for (const buf of this.buffers.values()) buf.dropSpares();
      else this.flush(largest);
    }
  }

  /**
   * `full`: the batch ended within the byte budget (at BATCH_ROWS, or by textFull), so the next one may reuse its
   * buffers (a batch that ended over the budget holds more than the next is allowed: it would be cut at its first
   * row).
   */
  private flush(buf: TableBuffer, full = false): void {
    const path = join(
      this.opts.dir,
      `t${String(buf.index).padStart(3, '0')}.${String(buf.files.length).padStart(6, '0')}.parquet`,
    );
    const columns = buf.active.map((slot): [string, arrow.Data] => [slot.name, slot.col!.toArrow(buf.row)]);
    const large = buf.active.reduce((n, slot) => n + slot.col!.largeBytes(buf.row), 0);
    const rules = buf.rules; // a flush may come while another root table's row is being added
    if (buf.schema.parent === null && rules.ids === 'random')
      columns.push(['_dlt_id', this.rootIds.column(buf.total - buf.row, buf.row, buf.givenIds)]);
    buf.givenIds.clear();
    if (buf.schema.parent === null && rules.sequence)
      columns.push(['_dlt_seq', int64Column(buf.row, (i) => buf.total - buf.row + i)]);
    else if (buf.rootSeqs) columns.push(['_dlt_root_seq', int64Column(buf.row, (i) => buf.rootSeqs![i]!)]);
    this.flushed = true;
    const written = this.writer
      .write(path, this.writer.ipc(columns, buf.row))
      .then(() => this.opts.onFile(buf.schema, path, large));
    this.writes.push(written);
    written.catch(() => {}); // reported by finish() or keepUp()
    buf.files.push(path);
    // the next batch starts with room for what the budget allows of the columns this one had
    const fits = Math.floor((this.opts.batchBytes ?? BATCH_BYTES) / Math.max(buf.rowBytes, 1));
    buf.recycle(full);
    buf.capacity = Math.max(64, Math.min(buf.capacity, fits));
    [buf.active, buf.row, buf.bytes, buf.rowBytes] = [[], 0, 0, 0];
  }
}

// ─── Destination ─────────────────────────
// One DuckDB instance: MotherDuck (`md:`) or the local file, whose catalog has the database's name,
// so every statement below addresses <database>.<dataset>.<table> the same way for both.

/** The one helper that puts a name into SQL. Values never go into SQL text: they are bound. */
export const q = (name: string) => `"${name.replaceAll('"', '""')}"`;

export interface Destination {
  /** Fully qualified name of a table in the dataset. */
  table(name: string): string;
  run(sql: string, params?: Record<string, DuckDBValue>): Promise<number>;
  rows(sql: string, params?: Record<string, DuckDBValue>): Promise<Record<string, unknown>[]>;
  /** Stops the statement DuckDB is running (it fails with an interrupt error); the next one runs normally. */
  interrupt(): void;
  close(): void;
}

const LOCKED = /Could not set lock|Conflicting lock/i;
const heldInProcess = new Set<string>(); // DuckDB's file lock is per process; this covers runs in one process

async function openDestination(
  plan: Plan,
  config: Config,
  readOnly = false,
  signal?: AbortSignal,
): Promise<Destination> {
  let instance: DuckDBInstance;
  let release = () => {};
  const path = plan.databasePath;
  if (path !== null && readOnly) {
    instance = await DuckDBInstance.create(path, { access_mode: 'READ_ONLY' }).catch((e: unknown) => {
      throw new FlightError(
        `could not open ${path} to read it` +
          `${LOCKED.test(errorText(e)) ? ' (a run holds it; try again when it ends)' : ''}: ${oneLine(errorText(e))}`,
      );
    });
  } else if (path === null) {
    try {
      instance = await DuckDBInstance.create('md:', {
        motherduck_token: config.MOTHERDUCK_TOKEN ?? '',
        ...memoryOption(config),
      });
    } catch (e) {
      throw new FlightError(`could not connect to MotherDuck: ${errorText(e)}`);
    }
  } else {
    ({ instance, release } = await openLocked(path, config.LOCK_TIMEOUT_S, memoryOption(config), signal));
  }
  let conn: DuckDBConnection | undefined;
  const close = () => {
    try {
      conn?.closeSync();
    } finally {
      instance.closeSync();
      release();
    }
  };
  try {
    const c = (conn = await instance.connect());
    const dest: Destination = {
      table: (name) => `${q(plan.database)}.${q(plan.dataset)}.${q(name)}`,
      run: async (sql, params) => (await c.run(sql, params)).rowsChanged,
      rows: async (sql, params) => (await c.runAndReadAll(sql, params)).getRowObjectsJS(),
      interrupt: () => c.interrupt(),
      close,
    };
    await dest.run(`SET TimeZone = 'UTC'`); // a hand-made TIMESTAMP (no zone) column holds UTC
    if (path === null && !readOnly) await dest.run(`CREATE DATABASE IF NOT EXISTS ${q(plan.database)}`);
    return dest;
  } catch (e) {
    close();
    throw e;
  }
}

/** Opens the local file, waiting up to LOCK_TIMEOUT_S while another run holds it; `release` on close. */
async function openLocked(path: string, timeoutS: number, options: Record<string, string>, signal?: AbortSignal) {
  let key: string; // the file's real path: one file reached through a symlink is still one file
  try {
    mkdirSync(dirname(path), { recursive: true });
    key = existsSync(path) ? realpathSync(path) : join(realpathSync(dirname(path)), basename(path));
  } catch (e) {
    throw new FlightError(`could not create the folder of ${path}: ${errorText(e)}`);
  }
  const deadline = Date.now() + timeoutS * 1000;
  for (;;) {
    let held = `a run in this process`;
    if (!heldInProcess.has(key)) {
      try {
        heldInProcess.add(key);
        const instance = await DuckDBInstance.create(path, options);
        return { instance, release: () => heldInProcess.delete(key) };
      } catch (e) {
        heldInProcess.delete(key);
        if (!LOCKED.test(errorText(e))) throw new FlightError(`could not open ${path}: ${errorText(e)}`);
        held = oneLine(errorText(e));
      }
    }
    if (Date.now() >= deadline)
      throw new FlightError(`another run holds the database ${path}; waited ${timeoutS}s (LOCK_TIMEOUT_S). ${held}`);
    await sleep(Math.min(250, Math.max(10, deadline - Date.now())), signal);
    if (signal?.aborted) throw cancelledError(signal.reason);
  }
}

// ─── Stored schema: what the pipeline owns ──────────────
// As dlt does, the pipeline keeps its schema in the destination: <dataset>._dlt_version holds one row
// per version (dlt's schema JSON, engine 11, dlt's version hash), written in the load's transaction;
// `_dlt_loads.schema_version_hash` names it. Its tables are the pipeline's own: a run replaces, merges
// and evolves only those (the configured table and its child tables), and a table it would create that
// already stands there, unowned, fails the run. A dataset that dlt or the Python Flight made is read
// the same way, and dlt can restore its pipeline from what this port writes.

const SCHEMA_ENGINE_VERSION = 11;
interface DltColumn {
  name: string;
  data_type?: string;
  nullable?: boolean;
  [hint: string]: unknown;
}
interface DltTable {
  name?: string;
  columns: Record<string, DltColumn>;
  parent?: string;
  [key: string]: unknown;
}
/** dlt's stored schema (`Schema.to_dict()`): what `_dlt_version.schema` holds. */
export interface DltSchema {
  version: number;
  version_hash: string;
  engine_version: number;
  name: string;
  tables: Record<string, DltTable>;
  previous_hashes?: string[];
  [key: string]: unknown;
}

/** dlt's own tables, as dlt describes them in every schema. */
function dltTable(name: string, columns: [string, string, boolean, object?][], rest: object): DltTable {
  const cols = columns.map(([n, data_type, nullable, hints]) => [n, { name: n, data_type, nullable, ...hints }]);
  return { name, columns: Object.fromEntries(cols), ...rest };
}
const ROW_KEY = { unique: true, row_key: true };
const DLT_TABLES = {
  _dlt_version: dltTable(
    '_dlt_version',
    [
      ['version', 'bigint', false],
      ['engine_version', 'bigint', false],
      ['inserted_at', 'timestamp', false],
      ['schema_name', 'text', false],
      ['version_hash', 'text', false],
      ['schema', 'text', false],
    ],
    { write_disposition: 'skip', resource: '_dlt_version', description: 'Created by DLT. Tracks schema updates' },
  ),
  _dlt_loads: dltTable(
    '_dlt_loads',
    [
      ['load_id', 'text', false, { precision: 64 }],
      ['schema_name', 'text', true],
      ['status', 'bigint', false],
      ['inserted_at', 'timestamp', false],
      ['schema_version_hash', 'text', true],
    ],
    { write_disposition: 'skip', resource: '_dlt_loads', description: 'Created by DLT. Tracks completed loads' },
  ),
  _dlt_pipeline_state: dltTable(
    '_dlt_pipeline_state',
    [
      ['version', 'bigint', false],
      ['engine_version', 'bigint', false],
      ['pipeline_name', 'text', false],
      ['state', 'text', false],
      ['created_at', 'timestamp', false],
      ['version_hash', 'text', true],
      ['_dlt_load_id', 'text', false, { precision: 64 }],
      ['_dlt_id', 'text', false, ROW_KEY],
    ],
    {
      write_disposition: 'append',
      file_format: 'preferred',
      resource: '_dlt_pipeline_state',
      'x-normalizer': { 'seen-data': true },
    },
  ),
};
const newDltSchema = (name: string): DltSchema => ({
  version: 0,
  version_hash: '',
  engine_version: SCHEMA_ENGINE_VERSION,
  name,
  tables: { _dlt_version: DLT_TABLES._dlt_version, _dlt_loads: DLT_TABLES._dlt_loads },
  settings: {
    detections: ['iso_timestamp'],
    default_hints: {
      not_null: ['_dlt_id', '_dlt_root_id', '_dlt_parent_id', '_dlt_list_idx', '_dlt_load_id'],
      parent_key: ['_dlt_parent_id'],
      root_key: ['_dlt_root_id'],
      unique: ['_dlt_id'],
      row_key: ['_dlt_id'],
    },
  },
  normalizers: { names: 'snake_case', json: { module: 'dlt.common.normalizers.json.relational' } },
  previous_hashes: [],
});

/** dlt's `generate_version_hash`: SHA3-256 of the sorted-key JSON (no version fields), then names in column order. */
export function schemaVersionHash(schema: DltSchema): string {
  const { version, version_hash, imported_version_hash, previous_hashes, ...content } = schema;
  const hash = createHash('sha3-256').update(sortedJson(content));
  for (const table of Object.keys(content.tables).sort()) {
    hash.update(table);
    for (const column of Object.keys(content.tables[table]!.columns ?? {})) hash.update(column);
  }
  return hash.digest('base64');
}

/** The newest stored version of the pipeline's schema (dlt reads it the same way), or null. */
async function readStoredSchema(dest: Destination, plan: Plan): Promise<DltSchema | null> {
  const rows = await dest
    .rows(
      `SELECT version, schema FROM ${dest.table('_dlt_version')} WHERE schema_name = $name
       ORDER BY inserted_at DESC, version DESC LIMIT 1`,
      { name: plan.schemaName },
    )
    .catch(orNoTable);
  if (!rows[0]) return null;
  try {
    const text = String(rows[0].schema);
    const json = /^[A-Za-z0-9+/]+=*$/.test(text) ? inflateSync(Buffer.from(text, 'base64')).toString('utf8') : text;
    const schema = JSON.parse(json) as DltSchema;
    if (typeof schema.tables !== 'object' || schema.tables === null) throw new Error('it has no "tables"');
    return schema;
  } catch (e) {
    throw new FlightError(
      `the stored schema of pipeline "${plan.schemaName}" (${plan.dataset}._dlt_version, version ${rows[0].version}) ` +
        `can't be read: ${errorText(e)}. Delete that row to fall back to the version before it.`,
    );
  }
}
const orNoTable = (e: unknown) => (/does not exist/i.test(errorText(e)) ? [] : Promise.reject(e));

/** The pipeline's tables as this run starts: the stored schema's, with their columns as they stand. */
interface Owned {
  stored: DltSchema | null;
  /** The pipeline's tables and the run's root tables (adopted when they stand there unowned). */
  schema: Schema;
  /** Tables in the dataset the pipeline doesn't own: this run must not create any of them. */
  foreign: Set<string>;
}
async function readOwnedSchema(dest: Destination, plan: Plan, plans: Plan[]): Promise<Owned> {
  const roots = new Set(plans.map((p) => p.table));
  const stored = await readStoredSchema(dest, plan);
  const physical = new Map<string, Map<string, string>>();
  const found = await dest.rows(
    `SELECT table_name, column_name, data_type FROM information_schema.columns
     WHERE table_catalog = $db AND table_schema = $dataset ORDER BY table_name, ordinal_position`,
    { db: plan.database, dataset: plan.dataset },
  );
  for (const r of found as { table_name: string; column_name: string; data_type: string }[]) {
    if (!physical.has(r.table_name)) physical.set(r.table_name, new Map());
    physical.get(r.table_name)!.set(r.column_name, r.data_type);
  }
  const tables: Record<string, Pick<DltTable, 'parent' | 'columns'>> = stored
    ? stored.tables
    : await adoptLegacyTables(dest, plan, plans, physical);
  const schema: Schema = new Map();
  const owned = Object.keys(tables).filter((t) => !t.startsWith('_dlt') && !roots.has(t));
  for (const name of [...roots, ...owned]) {
    const columns = new Map<string, ColumnInfo>();
    for (const c of Object.values(tables[name]?.columns ?? {})) {
      if (c.data_type === undefined) continue; // a hint waiting for data: no column yet
      const type = DATA_TYPES.has(c.data_type) ? (c.data_type as DataType) : 'other';
      columns.set(c.name, { type, stored: false, ...(c.variant ? { variant: true } : {}) });
    }
    for (const [column, sql] of physical.get(name) ?? [])
      // as they stand: the destination's type decides
      columns.set(column, { ...columns.get(column), ...fromSqlType(sql), stored: true });
    if (columns.size > 0)
      schema.set(name, { name, parent: roots.has(name) ? null : (tables[name]!.parent ?? null), columns });
  }
  const foreign = new Set([...physical.keys()].filter((t) => !(t in tables) && !roots.has(t)));
  return { stored, schema, foreign };
}
const DATA_TYPES = new Set(Object.keys(SQL_TYPES));

/**
 * A dataset an earlier version of this port loaded has no `_dlt_version`: once, its child tables are
 * recognised by their rows, each of whose `_dlt_parent_id` must be a row of the parent (an empty table
 * by its dlt columns), never by the name alone.
 */
async function adoptLegacyTables(
  dest: Destination,
  plan: Plan,
  plans: Plan[],
  physical: Map<string, Map<string, string>>,
) {
  const tables: Record<string, Pick<DltTable, 'parent' | 'columns'>> = {};
  const loaded = await dest
    .rows(`SELECT 1 FROM ${dest.table('_dlt_loads')} WHERE schema_name = $name LIMIT 1`, { name: plan.schemaName })
    .catch(orNoTable);
  const roots = plans.map((p) => p.table).filter((t) => physical.has(t));
  if (loaded.length === 0 || roots.length === 0) return tables;
  for (const root of roots) tables[root] = { columns: {} };
  const candidates = [...physical.keys()]
    .filter((t) => roots.some((root) => t.startsWith(`${root}__`)))
    .sort((a, b) => a.length - b.length);
  for (const name of candidates) {
    const parent = Object.keys(tables)
      .filter((p) => name.startsWith(`${p}__`))
      .sort((a, b) => b.length - a.length)[0]!;
    if (!['_dlt_parent_id', '_dlt_list_idx', '_dlt_id'].every((c) => physical.get(name)!.has(c))) continue;
    const [check] = await dest.rows(
      `SELECT count(*) AS rows, count(*) FILTER (WHERE p._dlt_id IS NULL) AS orphans
       FROM ${dest.table(name)} AS c LEFT JOIN ${dest.table(parent)} AS p ON p._dlt_id = c._dlt_parent_id`,
    );
    if (Number(check?.orphans) === 0) tables[name] = { parent, columns: {} };
  }
  return tables;
}

/** The stored schema with this run's tables and columns in it; the same object when nothing changed. */
function evolveStoredSchema(previous: DltSchema | null, loaded: Map<TableSchema, Plan>, name: string): DltSchema {
  const next: DltSchema = structuredClone(previous ?? newDltSchema(name));
  for (const [t, plan] of loaded) {
    const root = t.parent === null;
    const entry = (next.tables[t.name] ??= root ? { columns: {} } : { name: t.name, columns: {}, parent: t.parent! });
    const normalizer = (entry['x-normalizer'] ?? {}) as Record<string, unknown>;
    if (root) {
      // dlt records the strategy and the nesting only when they were given
      if (plan.disposition !== 'merge') delete entry['x-merge-strategy'];
      else if (plan.strategySet) entry['x-merge-strategy'] = plan.mergeStrategy;
      if (plan.maxNestingSet) normalizer.max_nesting = plan.maxNesting;
      Object.assign(entry, { write_disposition: plan.disposition, name: t.name, resource: plan.resource });
    }
    entry['x-normalizer'] = { ...normalizer, 'seen-data': true };
    entry.columns = storedColumns(entry.columns, t, root ? plan.hints : new Map());
    for (const [name, info] of t.columns)
      if (entry.columns[name]) Object.assign(entry.columns[name], columnHints(name, root, info, plan));
    const json = next.normalizers as { json: { config?: { propagation?: { tables?: Record<string, object> } } } };
    if (root && rowRules(plan).rootIds)
      (((json.json.config ??= {}).propagation ??= {}).tables ??= {})[plan.table] = { _dlt_id: '_dlt_root_id' };
  }
  next.tables._dlt_pipeline_state ??= DLT_TABLES._dlt_pipeline_state;
  const hash = schemaVersionHash(next);
  if (previous && hash === previous.version_hash) return previous;
  if (previous) next.previous_hashes = [previous.version_hash, ...(previous.previous_hashes ?? [])].slice(0, 10);
  return Object.assign(next, { version: (previous?.version ?? 0) + 1, version_hash: hash });
}

/**
 * A table's columns in the stored schema, in dlt's order: the ones it had stay where they are; then the hints
 * not there yet (a hint without a type waits, without data_type, until data completes it, and then moves to
 * the end as dlt moves it); then the run's new columns as they came.
 */
function storedColumns(had: Record<string, DltColumn>, t: TableSchema, hints: ColumnHints) {
  const typed = (name: string) => (t.columns.get(name)?.type ?? 'other') !== 'other';
  const columns: Record<string, DltColumn> = {};
  for (const [name, c] of Object.entries(had)) if (c.data_type !== undefined || !typed(name)) columns[name] = c;
  for (const [name, hint] of hints)
    if (!(name in columns) && (hint.data_type !== undefined || !typed(name))) columns[name] = { ...hint, name };
  for (const [name, info] of t.columns)
    if (info.type !== 'other' && !(name in columns))
      columns[name] = { name, data_type: info.type, nullable: true, ...hints.get(name) };
  return columns;
}

/** dlt's hints of a column: its own columns' keys, the primary key, the delete marker, variants, scd2's. */
function columnHints(name: string, root: boolean, info: ColumnInfo, plan: Plan): Partial<DltColumn> {
  const rules = rowRules(plan);
  switch (name) {
    case '_dlt_id':
      if (root && rules.validity) return { nullable: false, 'x-row-version': true, unique: false, row_key: false };
      return { nullable: false, unique: true, row_key: true };
    case '_dlt_load_id':
    case '_dlt_list_idx':
      return { nullable: false };
    case '_dlt_parent_id':
      return { nullable: false, parent_key: true };
    case '_dlt_root_id':
      return { nullable: false, root_key: true };
    case '_dlt_valid_from':
      if (root && rules.validity) return { nullable: true, 'x-valid-from': true };
      break;
    case '_dlt_valid_to':
      if (root && rules.validity) return { nullable: true, 'x-valid-to': true, 'x-active-record-timestamp': null };
  }
  const key = root && plan.disposition === 'merge' && plan.primaryKey.includes(name);
  const mergeKey = root && plan.disposition === 'merge' && plan.mergeKey.includes(name);
  return {
    ...(info.variant ? { variant: true } : {}),
    ...(key || mergeKey ? { nullable: false } : {}),
    primary_key: key || undefined, // a key no longer configured loses its hint
    merge_key: mergeKey || undefined,
    hard_delete: (root && name === plan.deleteColumn) || undefined,
  };
}

/** Whether dlt's stored schema makes the column not nullable (then NOT NULL when its table is created). */
const notNullable = (name: string, root: boolean, info: ColumnInfo, plan: Plan) =>
  columnHints(name, root, info, plan).nullable === false || (root && plan.hints.get(name)?.nullable === false);

/** Writes a new `_dlt_version` row when the schema changed (inside the load's transaction). */
async function saveStoredSchema(dest: Destination, schema: DltSchema, previous: DltSchema | null): Promise<void> {
  if (schema === previous) return;
  const table = dest.table('_dlt_version');
  await dest.run(`CREATE TABLE IF NOT EXISTS ${table} (version BIGINT NOT NULL, engine_version BIGINT NOT NULL,
    inserted_at TIMESTAMPTZ NOT NULL, schema_name VARCHAR NOT NULL, version_hash VARCHAR NOT NULL,
    schema VARCHAR NOT NULL)`);
  await dest.run(`INSERT INTO ${table} VALUES ($version, $engine, now(), $name, $hash, $schema)`, {
    version: schema.version,
    engine: schema.engine_version,
    name: schema.name,
    hash: schema.version_hash,
    schema: JSON.stringify(schema),
  });
}

// ─── Load: one transaction ─────────────────────
// Everything a load changes (new tables and columns, the rows, _dlt_loads, state, the ledger row)
// commits together or not at all, so a failure anywhere leaves the destination as it was. The
// transaction opens before extract: each loader file goes into DuckDB as soon as it is written
// (DuckDB reads it on its own threads while the next batch is built) and is then deleted, so neither
// memory nor the working folder grows with the source. With append, files go straight into their
// tables; with replace and merge into temporary staging tables, applied at the end (DuckDB can't
// alter a table after deleting from it in one transaction, and merge needs all the run's rows).

/** A failure while loading, as opposed to while extracting. */
class LoadError extends FlightError {}

// DuckDB's memory while it loads. It holds blocks of every column of a table it appends to (about
// 0.65 MB per column at full row groups: 601 columns need ~400 MB, whatever the files' size), so a
// wide table needs more than a narrow one, and beyond its limit DuckDB fails. With
// DUCKDB_MEMORY_LIMIT=auto the limit starts small, so DuckDB evicts the blocks it has written and
// memory stays flat however long the load, and grows with the columns of the tables being loaded. It
// also holds the values of each table's open row group (the rows since its last full one) until the
// commit, and large values it can't evict (128 MB held 200 MB of 50 KB values, not of 64 KB ones):
// so auto adds the bytes of the values of 32 KB or more in the open row groups. Small values, which
// DuckDB evicts, add nothing, however wide the table.
const LARGE_VALUE_BYTES = 32 * 1024;
const AUTO_MEMORY_MB = 128;
const MEMORY_PER_COLUMN_MB = 0.75;
const ROW_GROUP_ROWS = 122_880;
/**
 * The memory (MB) DuckDB gets with DUCKDB_MEMORY_LIMIT=auto (before the cap) to load tables of `columns` columns,
 * with `openBytes` of large values in their open row groups.
 */
export const autoMemoryMb = (columns: number, openBytes = 0): number =>
  AUTO_MEMORY_MB + MEMORY_PER_COLUMN_MB * columns + openBytes / 1e6;
interface OpenRowGroup {
  rows: number;
  bytes: number;
}
/** A table's open row group after a file of `rows` rows with `bytes` of large values went in: a full one is written. */
function afterLoad(open: OpenRowGroup, rows: number, bytes: number): OpenRowGroup {
  const total = open.rows + rows;
  if (total < ROW_GROUP_ROWS) return { rows: total, bytes: open.bytes + bytes };
  const left = total % ROW_GROUP_ROWS; // what the file put into the next, still open, row group
  return { rows: left, bytes: (bytes * left) / rows };
}

/**
 * Loads one loader file. A root table's rows all carry the run's load id, so DuckDB adds it as it reads
 * (a bound value) instead of every file holding the same 17 bytes a row: that measured 5% less CPU.
 */
export const insertFileSql = (target: string, root: boolean) =>
  `INSERT INTO ${target} BY NAME SELECT *${root ? ', $load_id AS _dlt_load_id' : ''} FROM read_parquet($file)`;

/** The instance option for a configured limit; auto leaves DuckDB's default until the loader sets its own. */
const memoryOption = (config: Config): Record<string, string> =>
  config.DUCKDB_MEMORY_LIMIT.toLowerCase() === 'auto' ? {} : { memory_limit: config.DUCKDB_MEMORY_LIMIT };

/** Megabytes (10^6 bytes, as DuckDB reads MB) of a size as DuckDB or DUCKDB_MEMORY_LIMIT writes it: 256MB, 18.8 GiB. */
function megabytes(size: string): number {
  const m = /^([\d.]+)\s*(bytes|[KMGT]i?B)$/i.exec(size.trim());
  if (!m) return NaN;
  const unit = m[2]!.toUpperCase();
  const power = unit === 'BYTES' ? 0 : 'BKMGT'.indexOf(unit[0]!);
  return (Number(m[1]) * (unit.includes('I') ? 1024 : 1000) ** power) / 1e6;
}

const STAGE = 'temp.main._flight_stage'; // merge: one root row per key (or version)

export class Loader {
  readonly counts = new Map<string, number>();
  private queue: Promise<void> = Promise.resolve();
  /** The loads queued and not yet done, oldest first. */
  private loading: Promise<void>[] = [];
  /** Columns (and types) of each physical table as they stand inside the transaction. */
  private known = new Map<string, Map<string, ColumnType>>();
  /** The staging table of each table of the run (replace, merge). */
  private stages = new Map<string, string>();

  private readonly dest: Destination;
  private readonly plan: Plan;
  private readonly stored: DltSchema | null;
  private readonly schema: Schema;
  /** The plan of each root table of the run (a routed table's joins when its first row comes). */
  readonly plans: Map<string, Plan>;
  /** DUCKDB_MEMORY_LIMIT as configured; with auto, the limit set (MB) and DuckDB's default, never exceeded. */
  private readonly memoryLimit: string;
  private memory = { auto: false, mb: 0, cap: Infinity };
  /** Columns of each table loaded into in this run (staging tables and their hidden columns included). */
  private widths = new Map<string, number>();
  /** Rows and large values' bytes of each table's open row group, which DuckDB holds until the commit. */
  private open = new Map<string, OpenRowGroup>();

  private readonly loadId: string;

  constructor(
    dest: Destination,
    base: Plan,
    plans: Map<string, Plan>,
    owned: Owned,
    loadId: string,
    memoryLimit = 'auto',
  ) {
    [this.dest, this.plan, this.plans, this.stored, this.schema] = [dest, base, plans, owned.stored, owned.schema];
    this.loadId = loadId;
    this.memoryLimit = memoryLimit;
    for (const t of owned.schema.values()) {
      const standing = [...t.columns].filter(([, c]) => c.stored).map(([n, c]): [string, ColumnType] => [n, c.type]);
      if (standing.length > 0) this.known.set(dest.table(t.name), new Map(standing));
    }
  }

  /** Inside the transaction runFlight opened. */
  async begin(): Promise<void> {
    await this.dest.run(`CREATE SCHEMA IF NOT EXISTS ${q(this.plan.database)}.${q(this.plan.dataset)}`);
    // A loader file is one row group, which DuckDB scans on one thread anyway; more threads only add
    // coordination (about 40% more CPU for the same files) and take the core that JavaScript builds the
    // next batch on. finish() gives merge and replace, whose queries do use them, the default back.
    await this.dest.run('SET threads = 1');
    if (this.memoryLimit.toLowerCase() === 'auto') {
      const [setting] = await this.dest.rows(`SELECT current_setting('memory_limit') AS "limit"`);
      this.memory = { auto: true, mb: 0, cap: megabytes(String(setting?.limit)) || Infinity };
      await this.fitMemory();
    }
  }

  /** auto: DuckDB's limit follows the columns of the tables loaded so far and their open row groups' bytes. */
  private async fitMemory(coming = 0): Promise<void> {
    const mb = Math.round(Math.min(this.memory.cap, this.takesMb(coming)));
    if (!this.memory.auto || mb <= this.memory.mb) return;
    await this.dest.run(`SET memory_limit = '${mb}MB'`); // a number this code computed: SET takes no parameters
    this.memory.mb = mb;
  }

  private get columns(): number {
    return [...this.widths.values()].reduce((a, b) => a + b, 0);
  }
  /** What auto gives DuckDB (MB) for what was loaded so far, with `coming` bytes of a file about to be. */
  private takesMb(coming = 0): number {
    return autoMemoryMb(
      this.columns,
      [...this.open.values()].reduce((n, o) => n + o.bytes, coming),
    );
  }

  /** DuckDB's out-of-memory error, rewritten to say which setting to raise and to what. */
  private outOfMemory(e: unknown, doing: string, coming = 0): unknown {
    const text = errorText(e);
    // at COMMIT it comes as "Failed to commit: failed to pin block ..."
    if (!/Out of Memory|failed to pin block/i.test(text)) return e;
    const columns = this.columns;
    const now = this.memory.auto ? this.memory.mb : megabytes(this.memoryLimit);
    const takes = this.takesMb(coming);
    const need = Math.max(takes, 2 * now);
    const advice = need >= 1000 ? `${Math.ceil(need / 1000)}GB` : `${Math.ceil(need / 64) * 64}MB`;
    const setting = this.memory.auto
      ? `DUCKDB_MEMORY_LIMIT=auto (${now} MB here${now >= this.memory.cap ? ", DuckDB's default on this machine" : ''})`
      : `DUCKDB_MEMORY_LIMIT=${this.memoryLimit}`;
    // a fixed limit that failed while files were still loading knows only the rows loaded so far: auto follows them all
    const orAuto = this.memory.auto ? '' : ', or DUCKDB_MEMORY_LIMIT=auto, which follows what the whole load needs';
    return new LoadError(
      `DuckDB ran out of memory ${doing} with ${setting}: tables of ${columns} columns take about ` +
        `${Math.ceil(takes)} MB to load (${MEMORY_PER_COLUMN_MB} MB per column, and the large values of the rows ` +
        `not yet written out); set DUCKDB_MEMORY_LIMIT=${advice} or more${orAuto} (${oneLine(text).split(' | ')[0]})`,
    );
  }

  private closed = false;

  /** Queues one loader file; a file that fails to load fails the run at the next `keepUp` or `finish`. */
  add(table: TableSchema, path: string, largeBytes = 0): void {
    if (this.closed) return; // the run failed: nothing more goes into DuckDB
    const job = this.queue.then(() => this.loadFile(table, path, largeBytes));
    // loads run in order, so the one that ends is the oldest
    this.queue = job.finally(() => void this.loading.shift());
    this.loading.push(this.queue);
    this.queue.catch((e: unknown) => void (this.failed ??= e)); // thrown by keepUp() and finish()
  }
  /** The first load that failed: the loads queued after it fail with it, and extract stops at its next turn. */
  private failed: unknown;

  /**
   * While DuckDB is more than a file behind, waits for its oldest load: extract never runs far ahead of the load.
   * Not for all of them: DuckDB would then sit idle while the next batch is built.
   */
  async keepUp(): Promise<void> {
    while (this.loading.length > 1) await this.loading[0];
    if (this.failed) throw this.failed;
  }

  /** The root table a table belongs to, through its parents. */
  private rootOf(name: string): string {
    for (let t = this.schema.get(name), hops = 0; t && hops < 1000; t = this.schema.get(t.parent ?? ''), hops++)
      if (t.parent === null) return t.name;
    return name;
  }
  /** Where a table comes in the run: by its root's place among the plans, roots first. */
  private order(name: string): number {
    const root = this.rootOf(name);
    return [...this.plans.keys()].indexOf(root) * 2 + (root === name ? 0 : 1);
  }
  private planOf(table: TableSchema): Plan {
    return this.plans.get(this.rootOf(table.name)) ?? this.plan;
  }

  /** Applies each root table's disposition to it and its child tables, records the load and commits. */
  async finish(pkg: LoadPackage, beforeCommit: (counts: Map<string, number>) => Promise<void>): Promise<void> {
    await this.queue;
    // merge and replace copy each staging table into its table: the copy's open row groups come on top
    const staged = [...this.stages.values()].reduce((n, stage) => n + (this.open.get(stage)?.bytes ?? 0), 0);
    try {
      await this.fitMemory(staged);
      await this.apply(pkg, beforeCommit);
    } catch (e) {
      throw this.outOfMemory(e, `applying the load to ${this.plan.database}.${this.plan.dataset}`, staged);
    }
  }

  private async apply(pkg: LoadPackage, beforeCommit: (counts: Map<string, number>) => Promise<void>): Promise<void> {
    await this.dest.run('RESET threads');
    const loaded = new Map<TableSchema, Plan>(); // the run's tables: the roots it loads and their child tables
    for (const table of pkg.schema.values())
      if (this.plans.has(this.rootOf(table.name))) loaded.set(table, this.planOf(table));
    for (const table of loaded.keys()) await this.evolve(this.dest.table(table.name), table);
    for (const plan of this.plans.values()) {
      const tables = [...loaded].filter(([, p]) => p === plan).map(([t]) => t);
      const stages = new Map([...this.stages].filter(([name]) => tables.some((t) => t.name === name)));
      if (plan.disposition === 'replace') {
        // child tables too, as dlt
        for (const table of tables) await this.dest.run(`DELETE FROM ${this.dest.table(table.name)}`);
        for (const [name, stage] of stages)
          this.counts.set(
            name,
            await this.dest.run(`INSERT INTO ${this.dest.table(name)} BY NAME SELECT * FROM ${stage}`),
          );
      }
      if (plan.disposition === 'merge' && stages.has(plan.table)) {
        await stageRoot(this.dest, plan, stages, plan.mergeStrategy === 'scd2' ? ['_dlt_id'] : plan.primaryKey);
        await MERGE[plan.mergeStrategy](this.dest, pkg, plan, { tables, stages, counts: this.counts });
        await this.dest.run(`DROP TABLE ${STAGE}`);
      }
    }
    for (const stage of this.stages.values()) await this.dest.run(`DROP TABLE ${stage}`);
    // counts told in the resources' order, each root table before its child tables
    const counts = [...this.counts].sort(([a], [b]) => this.order(a) - this.order(b));
    this.counts.clear();
    for (const [table, n] of counts) this.counts.set(table, n);
    const schema = evolveStoredSchema(this.stored, loaded, this.plan.schemaName);
    await saveStoredSchema(this.dest, schema, this.stored);
    await recordLoad(this.dest, pkg, schema);
    await beforeCommit(this.counts);
    await this.dest.run('COMMIT');
  }

  /** Stops taking files and waits for the one DuckDB may be loading; the caller rolls back. */
  async abort(): Promise<void> {
    this.closed = true;
    await this.queue.catch(() => {});
  }

  private async loadFile(table: TableSchema, path: string, large: number): Promise<void> {
    if (this.closed) return; // queued before the run failed: the working folder goes with the run
    try {
      const root = table.parent === null;
      const plan = this.planOf(table);
      let stage = this.stages.get(table.name);
      if (!stage && plan.disposition !== 'append')
        this.stages.set(table.name, (stage = `temp.main._flight_stage_${this.stages.size}`));
      const merge = plan.disposition === 'merge';
      const hidden: [string, DataType][] = !merge
        ? []
        : root
          ? [['_dlt_seq', 'bigint']]
          : plan.mergeStrategy !== 'scd2'
            ? [['_dlt_root_seq', 'bigint']]
            : [];
      const target = stage ?? table.name;
      await this.evolve(stage ?? this.dest.table(table.name), table, hidden, stage ? VALIDITY : []);
      this.widths.set(target, table.columns.size + hidden.length);
      await this.fitMemory(large);
      const n = await this.dest.run(
        insertFileSql(stage ?? this.dest.table(table.name), root),
        root ? { file: path, load_id: this.loadId } : { file: path },
      );
      this.open.set(target, afterLoad(this.open.get(target) ?? { rows: 0, bytes: 0 }, n, large));
      if (!stage) this.counts.set(table.name, (this.counts.get(table.name) ?? 0) + n);
      rmSync(path);
    } catch (e) {
      const where = `loading ${table.name} into ${this.plan.database}.${this.plan.dataset}`;
      const error = this.outOfMemory(e, where);
      throw error instanceof FlightError ? error : new LoadError(`${where}: ${errorText(e)}`);
    }
  }

  /**
   * Creates the table, or adds the columns the source has grown. As dlt's, a table is created with NOT NULL on
   * the columns its stored schema makes not nullable (its own id columns, the keys, hinted ones); columns added
   * later are nullable.
   */
  private async evolve(
    target: string,
    table: TableSchema,
    extra: [string, DataType][] = [],
    skip: string[] = [],
  ): Promise<void> {
    const wanted = [...[...table.columns].map(([n, c]): [string, ColumnType] => [n, c.type]), ...extra].filter(
      (c): c is [string, DataType] => c[1] !== 'other' && !skip.includes(c[0]),
    );
    const known = this.known.get(target);
    const temp = target.startsWith('temp.');
    const sqlType = (name: string, type: DataType) => table.columns.get(name)?.sql ?? SQL_TYPES[type];
    if (!known) {
      if (wanted.length === 0) return;
      const plan = this.planOf(table);
      const notNull = (name: string) =>
        !temp && notNullable(name, table.parent === null, table.columns.get(name)!, plan) ? ' NOT NULL' : '';
      const defs = wanted.map(([n, t]) => `${q(n)} ${sqlType(n, t)}${notNull(n)}`);
      await this.dest.run(`CREATE ${temp ? 'TEMP ' : ''}TABLE ${target} (${defs.join(', ')})`);
      this.known.set(target, new Map(wanted));
      return;
    }
    for (const [name, type] of wanted) {
      if (known.has(name)) continue;
      await this.dest.run(`ALTER TABLE ${target} ADD COLUMN ${q(name)} ${sqlType(name, type)}`);
      known.set(name, type);
    }
  }
}

// Merge strategies, as dlt's (see README): each runs inside the load transaction and returns rows
// written per table. The run's root rows are staged once, one row per key, the last one the
// source yielded winning (dlt keeps an arbitrary one); `DELETE_COLUMN` marks rows whose key is to be
// removed; `MERGE_KEY` widens what a run replaces to whole partitions.
type MergeRun = { tables: TableSchema[]; stages: Map<string, string>; counts: Map<string, number> };
type MergeStrategy = (dest: Destination, pkg: LoadPackage, plan: Plan, run: MergeRun) => Promise<void>;

async function stageRoot(
  dest: Destination,
  plan: Plan,
  stages: Map<string, string>,
  partitionBy: string[],
): Promise<void> {
  // no key (a merge key alone): every row is kept, as dlt keeps them
  const dedup = partitionBy.length
    ? ` QUALIFY row_number() OVER (PARTITION BY ${partitionBy.map(q).join(', ')} ORDER BY _dlt_seq DESC) = 1`
    : '';
  await dest.run(`CREATE OR REPLACE TEMP TABLE _flight_stage AS SELECT * FROM ${stages.get(plan.table)}${dedup}`);
}
/** SQL that is true for a staged row marked deleted: a true boolean, or any non-null value. */
function deletedSql(pkg: LoadPackage, plan: Plan, alias: string): string {
  const type = plan.deleteColumn ? pkg.schema.get(plan.table)?.columns.get(plan.deleteColumn)?.type : undefined;
  if (!plan.deleteColumn || !type) return 'false';
  return type === 'bool'
    ? `coalesce(${alias}.${q(plan.deleteColumn)}, false)`
    : `${alias}.${q(plan.deleteColumn)} IS NOT NULL`;
}
const keyMatch = (key: string[], a: string, b: string) => key.map((k) => `${a}.${q(k)} = ${b}.${q(k)}`).join(' AND ');
const childTables = (tables: TableSchema[]) => tables.filter((t) => t.parent !== null);
/**
 * SQL that is true for a destination row `d` the run replaces, as dlt's: a row of a key the run brings, or of a
 * merge-key partition the run brings (any staged row counts, duplicates and rows marked deleted included).
 */
function replacedSql(plan: Plan, stages: Map<string, string>): string {
  const staged = (key: string[], from: string) =>
    `EXISTS (SELECT 1 FROM ${from} AS s WHERE ${keyMatch(key, 'd', 's')})`;
  return [
    ...(plan.primaryKey.length ? [staged(plan.primaryKey, STAGE)] : []),
    ...(plan.mergeKey.length ? [staged(plan.mergeKey, stages.get(plan.table)!)] : []),
  ].join(' OR ');
}

/** Child rows of the root rows about to be replaced go first; found through _dlt_root_id. */
async function deleteChildrenOfReplaced(dest: Destination, plan: Plan, run: MergeRun): Promise<void> {
  for (const child of childTables(run.tables).filter((t) => t.columns.get('_dlt_root_id')?.stored))
    await dest.run(
      `DELETE FROM ${dest.table(child.name)} WHERE _dlt_root_id IN
       (SELECT d._dlt_id FROM ${dest.table(plan.table)} AS d WHERE ${replacedSql(plan, run.stages)})`,
    );
}
/**
 * Child rows of the merged root rows that are kept, linked by the root row's arrival number: duplicates
 * of a key (and rows that brought the same `_dlt_id`) share ids, so an id would take all their children.
 */
async function insertStagedChildren(
  dest: Destination,
  pkg: LoadPackage,
  plan: Plan,
  stages: Map<string, string>,
  counts: Map<string, number>,
): Promise<void> {
  const kept = `SELECT _dlt_seq FROM ${STAGE} AS s WHERE NOT ${deletedSql(pkg, plan, 's')}`;
  for (const [name, stage] of stages) {
    if (name === plan.table) continue;
    const sql = `INSERT INTO ${dest.table(name)} BY NAME
                 SELECT * EXCLUDE (_dlt_root_seq) FROM ${stage} WHERE _dlt_root_seq IN (${kept})`;
    counts.set(name, await dest.run(sql));
  }
}

const MERGE: Record<Plan['mergeStrategy'], MergeStrategy> = {
  /** dlt's default: delete the rows of every staged key and merge-key partition, insert the unmarked staged rows. */
  async 'delete-insert'(dest, pkg, plan, run) {
    const { stages, counts } = run;
    const root = dest.table(plan.table);
    await deleteChildrenOfReplaced(dest, plan, run);
    await dest.run(`DELETE FROM ${root} AS d WHERE ${replacedSql(plan, stages)}`);
    counts.set(
      plan.table,
      await dest.run(
        `INSERT INTO ${root} BY NAME SELECT * EXCLUDE (_dlt_seq) FROM ${STAGE} AS s
         WHERE NOT ${deletedSql(pkg, plan, 's')}`,
      ),
    );
    await insertStagedChildren(dest, pkg, plan, stages, counts);
  },

  /**
   * Update matching keys in place, every column from the run's row (as dlt: what it lacks is NULL), insert new keys.
   */
  async upsert(dest, pkg, plan, run) {
    const { stages, counts } = run;
    const root = [...(pkg.schema.get(plan.table)?.columns ?? [])];
    const brought = root.filter(([, c]) => c.type !== 'other').map(([name]) => name);
    const deleted = deletedSql(pkg, plan, 's');
    await deleteChildrenOfReplaced(dest, plan, run);
    await dest.run(
      `MERGE INTO ${dest.table(plan.table)} AS d USING ${STAGE} AS s ON ${keyMatch(plan.primaryKey, 'd', 's')}
       WHEN MATCHED AND ${deleted} THEN DELETE
       WHEN MATCHED THEN UPDATE SET ${brought.map((c) => `${q(c)} = s.${q(c)}`).join(', ')}
       WHEN NOT MATCHED AND NOT ${deleted} THEN INSERT (${brought.map(q).join(', ')})
         VALUES (${brought.map((c) => `s.${q(c)}`).join(', ')})`,
    );
    counts.set(
      plan.table,
      Number((await dest.rows(`SELECT count(*) AS n FROM ${STAGE} AS s WHERE NOT ${deleted}`))[0]?.n ?? 0),
    );
    await insertStagedChildren(dest, pkg, plan, stages, counts);
  },

  /**
   * History: a row is a version identified by its content hash; changed and vanished rows are closed (with a
   * merge key, only those of the partitions the run brings), new versions opened, all at the load's instant.
   * As in dlt 1.26, a row marked by DELETE_COLUMN is a version like any other.
   */
  async scd2(dest, pkg, plan, { stages, counts }) {
    const root = dest.table(plan.table);
    const at = { at: loadInstant(pkg.loadId) };
    const partition = plan.mergeKey.length
      ? ` AND EXISTS (SELECT 1 FROM ${STAGE} AS s WHERE ${keyMatch(plan.mergeKey, 'd', 's')})`
      : '';
    await dest.run(
      `UPDATE ${root} AS d SET _dlt_valid_to = CAST($at AS TIMESTAMPTZ) WHERE _dlt_valid_to IS NULL
       AND NOT EXISTS (SELECT 1 FROM ${STAGE} AS s WHERE s._dlt_id = d._dlt_id)${partition}`,
      at,
    );
    counts.set(
      plan.table,
      await dest.run(
        `INSERT INTO ${root} BY NAME SELECT * EXCLUDE (_dlt_seq), CAST($at AS TIMESTAMPTZ) AS _dlt_valid_from
         FROM ${STAGE} AS n
         WHERE NOT EXISTS (SELECT 1 FROM ${root} AS d WHERE d._dlt_valid_to IS NULL AND d._dlt_id = n._dlt_id)`,
        at,
      ),
    );
    for (const [name, stage] of stages) {
      if (name === plan.table) continue;
      // versions share child rows by content hash: only rows not stored yet, once each
      const child = dest.table(name);
      counts.set(
        name,
        await dest.run(
          `INSERT INTO ${child} BY NAME SELECT * FROM ${stage} AS n
           WHERE NOT EXISTS (SELECT 1 FROM ${child} AS d WHERE d._dlt_id = n._dlt_id)
           QUALIFY row_number() OVER (PARTITION BY _dlt_id) = 1`,
        ),
      );
    }
  },
};

/** The instant a load id names, to the microsecond, as ISO-8601 UTC. */
function loadInstant(loadId: string): string {
  const [seconds, fraction = ''] = loadId.split('.');
  return `${new Date(Number(seconds) * 1000).toISOString().slice(0, 19)}.${fraction.padEnd(6, '0').slice(0, 6)}Z`;
}

/** dlt's `_dlt_loads` row: status 0 marks the load complete, in the same transaction as its data. */
async function recordLoad(dest: Destination, pkg: LoadPackage, schema: DltSchema): Promise<void> {
  const loads = dest.table('_dlt_loads');
  await dest.run(
    `CREATE TABLE IF NOT EXISTS ${loads} (load_id VARCHAR NOT NULL, schema_name VARCHAR, status BIGINT NOT NULL,
     inserted_at TIMESTAMPTZ NOT NULL, schema_version_hash VARCHAR)`,
  );
  await dest.run(`INSERT INTO ${loads} VALUES ($id, $schema, 0, now(), $hash)`, {
    id: pkg.loadId,
    schema: schema.name,
    hash: schema.version_hash,
  });
}

// ─── State: what a source remembers between runs ──────────────
// dlt's pipeline state: one JSON document per pipeline, stored in <dataset>._dlt_pipeline_state as
// dlt stores it (zlib level 9, base64), a new version row only when it changed, written in the
// load's transaction so a failed run never advances it. Read back like dlt: the newest version
// whose load completed.

const STATE_ENGINE_VERSION = 4;
export type PipelineState = Record<string, unknown> & { _state_version?: number; _version_hash?: string };

/** JSON with keys sorted at every level: the stable text that version and row hashes are made of. */
export const sortedJson = (value: unknown): string => toJson(value, true);
/** dlt's digest128: base64 of a SHAKE-128 digest, padding stripped. */
const digest128 = (text: string, bytes: number) =>
  createHash('shake128', { outputLength: bytes }).update(text).digest('base64').replace(/=+$/, '');

export const encodeState = (state: PipelineState) =>
  deflateSync(JSON.stringify(state), { level: 9 }).toString('base64');
/**
 * Decodes dlt's state column; values Python dlt tagged with a private-use character (dates, decimals) come back as
 * their text.
 */
export function decodeState(text: string): PipelineState {
  const json = /^[A-Za-z0-9+/]+=*$/.test(text) ? inflateSync(Buffer.from(text, 'base64')).toString('utf8') : text;
  return JSON.parse(json, (_k, v: unknown) =>
    typeof v === 'string' && /^[\uf026-\uf02d]/.test(v) ? v.slice(1) : v,
  ) as PipelineState;
}
function stateVersionHash(state: PipelineState): string {
  const { _state_version, _state_engine_version, _version_hash, _local, ...content } = state;
  return createHash('sha3-256').update(sortedJson(content)).digest('base64');
}

async function loadState(dest: Destination, plan: Plan): Promise<PipelineState> {
  const stored = await dest
    .rows(
      `SELECT s.version, s.state FROM ${dest.table('_dlt_pipeline_state')} AS s
       JOIN ${dest.table('_dlt_loads')} AS l ON l.load_id = s._dlt_load_id
       WHERE s.pipeline_name = $pipeline AND l.status = 0 ORDER BY l.load_id DESC LIMIT 1`,
      { pipeline: plan.schemaName },
    )
    .catch(orNoTable);
  let state: PipelineState = { _state_version: 0, _state_engine_version: STATE_ENGINE_VERSION };
  if (stored[0]) {
    const { version } = stored[0];
    try {
      state = decodeState(String(stored[0].state));
    } catch (e) {
      const table = `${plan.database}.${plan.dataset}._dlt_pipeline_state`;
      throw new FlightError(
        `the pipeline state of "${plan.schemaName}" in ${table} (version ${version}) can't be decoded ` +
          `(${errorText(e)}). To reset it, and restart its incremental cursors from their initial values, delete ` +
          `it: DELETE FROM ${table} WHERE pipeline_name = '${plan.schemaName}' AND version = ${version}`,
      );
    }
  }
  Object.assign(state, {
    pipeline_name: plan.schemaName,
    dataset_name: plan.dataset,
    default_schema_name: plan.schemaName,
    schema_names: [plan.schemaName],
  });
  state.destination_type = `dlt.destinations.${plan.destination === 'local' ? 'duckdb' : 'motherduck'}`;
  return state;
}

/** The state of one table's source inside the pipeline state: sources.<schema>.resources.<table>. */
function resourceState(state: PipelineState, plan: Plan): Record<string, unknown> {
  const sources = (state.sources ??= {}) as Record<string, Record<string, unknown>>;
  const resources = ((sources[plan.schemaName] ??= {}).resources ??= {}) as Record<string, Record<string, unknown>>;
  return (resources[plan.table] ??= {});
}

/** Writes a new state version when the content changed (the hash decides, as in dlt). */
async function saveState(dest: Destination, plan: Plan, state: PipelineState, loadId: string): Promise<boolean> {
  const serialized = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw new FlightError(`the source's state is not JSON-serializable: ${errorText(e)}`);
    }
  };
  const hash = serialized(() => stateVersionHash(state));
  if (hash === state._version_hash) return false;
  // a new pipeline's first stored state is version 1, as dlt's (which counts the state it starts from as 0)
  state._state_version = (state._state_version ?? 0) + 1;
  state._version_hash = hash;
  const encoded = serialized(() => encodeState(state));
  const table = dest.table('_dlt_pipeline_state');
  await dest.run(`CREATE TABLE IF NOT EXISTS ${table} (version BIGINT NOT NULL, engine_version BIGINT NOT NULL,
    pipeline_name VARCHAR NOT NULL, state VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL, version_hash VARCHAR, _dlt_load_id VARCHAR NOT NULL, _dlt_id VARCHAR NOT NULL)`);
  await dest.run(`INSERT INTO ${table} VALUES ($version, $engine, $pipeline, $state, now(), $hash, $loadId, $id)`, {
    version: state._state_version ?? 0,
    engine: STATE_ENGINE_VERSION,
    pipeline: plan.schemaName,
    state: encoded,
    hash,
    loadId,
    id: randomBytes(10).toString('base64').replace(/=+$/, ''),
  });
  return true;
}

// Incremental loading, as dlt's `incremental`: the cursor's last value is kept in state; rows at or
// before it are dropped, except rows that share the boundary value and were not loaded last time
// (recognised by a hash of their key, or of the whole row), so none is lost or loaded twice.

export type Cursor = string | number;
export interface IncrementalOptions<T extends Cursor> {
  /** Where to start on the first run. */
  initialValue?: T;
  /** Columns that identify a row for the boundary check; default: the whole row. */
  primaryKey?: string[];
  /** A cursor of its own per key (a transformer's parent id, say): kept in the state under the key. */
  key?: string | number;
}
export interface Incremental<T extends Cursor> {
  /** The cursor value this run starts from (last run's maximum, or initialValue): ask the API for rows after it. */
  readonly startValue: T | undefined;
  /** The largest cursor value accepted so far. */
  readonly lastValue: T | undefined;
  /** True for a row to load; false for one already loaded by an earlier run. Records the new maximum. */
  accept(row: Row): boolean;
  /** The rows to load of `rows`. */
  filter<R extends Row>(rows: Iterable<R> | AsyncIterable<R>): AsyncGenerator<R>;
}
interface IncrementalState {
  initial_value?: unknown;
  last_value?: unknown;
  unique_hashes: string[];
  start_value?: unknown;
}

function compareCursor(a: Cursor, b: Cursor, path: string): number {
  if (typeof a !== typeof b)
    throw new FlightError(
      `incremental cursor "${path}": cannot compare ${JSON.stringify(String(a))} with ${JSON.stringify(String(b))} ` +
        '(different types)',
    );
  return a < b ? -1 : a > b ? 1 : 0;
}

export function makeIncremental<T extends Cursor>(
  state: Record<string, unknown>,
  cursorPath: string,
  options: IncrementalOptions<T> = {},
): Incremental<T> {
  const all = (state.incremental ??= {}) as Record<string, IncrementalState>;
  const saved = (all[cursorPath] ??= {
    initial_value: options.initialValue,
    last_value: options.initialValue,
    unique_hashes: [],
    start_value: options.initialValue,
  });
  const startValue = (saved.last_value ?? options.initialValue) as T | undefined;
  const startHashes = new Set(saved.unique_hashes);
  let lastValue = startValue;
  let boundary = new Set(saved.unique_hashes); // hashes of rows whose cursor equals lastValue
  // Read when the state is saved (JSON reads the getter), not copied per row: that made a run quadratic
  // when many rows share the cursor value.
  Object.defineProperty(saved, 'unique_hashes', { get: () => [...boundary], enumerable: true, configurable: true });
  const rowHash = (row: Row) =>
    digest128(sortedJson(options.primaryKey ? options.primaryKey.map((k) => row[k]) : row), 15);
  const accept = (row: Row): boolean => {
    const value = row[cursorPath] as T | null | undefined;
    if (value === undefined || value === null)
      throw new FlightError(
        `incremental cursor "${cursorPath}" is missing or null in a row: ${sortedJson(row).slice(0, 200)}`,
      );
    if (typeof value !== 'string' && typeof value !== 'number')
      throw new FlightError(
        `incremental cursor "${cursorPath}" must be a string or a number (an ISO timestamp as text, say), ` +
          `got ${Object.prototype.toString.call(value).slice(8, -1)}`,
      );
    if (startValue !== undefined) {
      const vsStart = compareCursor(value, startValue, cursorPath);
      if (vsStart < 0 || (vsStart === 0 && startHashes.has(rowHash(row)))) return false;
    }
    const vsLast = lastValue === undefined ? 1 : compareCursor(value, lastValue, cursorPath);
    if (vsLast > 0) [lastValue, boundary] = [value, new Set()];
    if (vsLast >= 0) boundary.add(rowHash(row));
    Object.assign(saved, { last_value: lastValue, start_value: startValue });
    return true;
  };
  return {
    startValue,
    get lastValue() {
      return lastValue;
    },
    accept,
    async *filter(rows) {
      for await (const row of rows) if (accept(row)) yield row;
    },
  };
}

// ─── Ledger ──────────────────────────
// One row per run in <database>.main.<RUN_LEDGER_TABLE>. The first five columns are the Python
// Flight's, in its order, so its ledger is upgraded in place and its rows are kept.

const LEDGER_COLUMNS = {
  run_at: 'TIMESTAMPTZ',
  pipeline_name: 'VARCHAR',
  destination_dataset: 'VARCHAR',
  destination_table: 'VARCHAR',
  load_summary: 'VARCHAR',
  status: 'VARCHAR',
  load_id: 'VARCHAR',
  rows_loaded: 'BIGINT',
  error: 'VARCHAR',
  duration_s: 'DOUBLE',
  destination: 'VARCHAR',
  table_counts: 'VARCHAR',
} as const;
export type LedgerEntry = { [K in keyof typeof LEDGER_COLUMNS]: string | number | null };
const ledgerName = (plan: Plan) => `${q(plan.database)}.main.${q(plan.ledger)}`;

async function ensureLedger(dest: Destination, plan: Plan): Promise<void> {
  const defs = Object.entries(LEDGER_COLUMNS).map(([name, type]) => `${q(name)} ${type}`);
  await dest.run(`CREATE TABLE IF NOT EXISTS ${ledgerName(plan)} (${defs.join(', ')})`);
  for (const def of defs.slice(5)) await dest.run(`ALTER TABLE ${ledgerName(plan)} ADD COLUMN IF NOT EXISTS ${def}`);
}

async function writeLedger(dest: Destination, plan: Plan, entry: LedgerEntry): Promise<void> {
  const names = Object.keys(LEDGER_COLUMNS) as (keyof LedgerEntry)[];
  const values = names.map((n) => `CAST($${n} AS ${LEDGER_COLUMNS[n]})`);
  await dest.run(`INSERT INTO ${ledgerName(plan)} (${names.map(q).join(', ')}) VALUES (${values.join(', ')})`, entry);
}

// ─── Run ───────────────────────────

export interface RunOptions {
  env: Env;
  /** Replaces the GitHub demo source. */
  source?: Source;
  /** Column hints of the table, as dlt's `columns=` (see ColumnHint): `{ payload: { data_type: 'json' } }`. */
  columns?: Record<string, ColumnHint>;
  /** Receives each progress line; defaults to stdout. */
  log?: (line: string) => void;
  /** Where a live progress line goes; defaults to stderr when it is a terminal, else nowhere. */
  terminal?: { write(text: string): unknown } | null;
  /**
   * Cancels the run when it aborts (main aborts it on SIGTERM / SIGINT): requests and DuckDB's statement
   * stop, everything rolls back, the ledger records `cancelled by <reason>`. A source blocked in code that
   * ignores the cancel is left behind.
   */
  signal?: AbortSignal;
}
export interface RunSummary {
  status: 'succeeded' | 'failed';
  exitCode: 0 | 1 | 2;
  loadId: string | null;
  rowsLoaded: number;
  tables: Record<string, number>;
  destination: Plan['destination'] | null;
  target: string | null;
  databasePath?: string;
  durationS: number;
  error?: string;
  /** Rows and values the schema contract dropped, by table. */
  discarded?: Record<string, { rows: number; values: number }>;
}

/** A run its caller cancelled (main: on SIGTERM / SIGINT) fails with this. */
const cancelledError = (reason: unknown) =>
  new FlightError(typeof reason === 'string' ? `cancelled by ${reason}` : `cancelled (${errorText(reason)})`);

/** `work`, or a cancellation as soon as `signal` aborts (a source may be stuck where nothing can stop it). */
function orCancelled<T>(work: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(cancelledError(signal.reason));
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** dlt's load id: the start time in seconds, with microseconds (fixed width, so ids sort as text). */
const newLoadId = () => ((performance.timeOrigin + performance.now()) / 1000).toFixed(6);

/** One run: config, destination, extract, load, ledger. Resolves to a summary; never exits. */
export async function runFlight({
  env,
  source = github,
  columns = {},
  log = (line) => console.log(line),
  terminal = process.stderr.isTTY ? process.stderr : null,
  signal,
}: RunOptions): Promise<RunSummary> {
  const started = Date.now();
  const seconds = () => Math.round(Date.now() - started) / 1000;
  log(formatEvent('config', 'running'));
  const parsedConfig = parseConfig(env);
  const config = 'config' in parsedConfig ? parsedConfig.config : undefined;
  const base = config && planFor(config, columns);
  const resources = config && resourcesOf(source, config);
  const problems = !config
    ? (parsedConfig as { problems: string[] }).problems
    : [...columnHintProblems(columns), ...resourceProblems(resources!, base!)];
  if (!config || !base || !resources || problems.length > 0) {
    const error = `invalid config (nothing was run):\n${problems.map((p) => `  - ${p}`).join('\n')}`;
    log(formatEvent('config', 'failed', { error: oneLine(error) }));
    log(formatEvent('@flight', 'failed', { exit: 2 }));
    return {
      status: 'failed',
      exitCode: 2,
      loadId: null,
      rowsLoaded: 0,
      tables: {},
      destination: null,
      target: null,
      durationS: seconds(),
      error,
    };
  }
  const { plans, targets } = runPlans(resources, base);
  const redact = redactor(secretsOf(config)); // and every credential a request of the run carries
  const meter = progressMeter(terminal);
  const effects = new Map<string, string | number | undefined>(); // a failed line repeats its step's effect
  const say = (step: string, status: string, fields: Fields = {}) => {
    meter.step(status === 'running' ? step : null);
    if (fields.effect !== undefined) effects.set(step, fields.effect);
    const context =
      status === 'failed' && effects.has(step)
        ? { rows: step === 'extract' ? meter.rows : 0, effect: effects.get(step) }
        : {};
    log(redact(formatEvent(step, status, { ...context, ...fields })));
  };
  const where = `${base.database}.${base.dataset}`;
  const rootNames = () => [...plans.keys()].join(',') || resources.map((r) => r.name).join(',');
  const target = `${where}.${plans.size === 1 ? [...plans.keys()][0] : `{${rootNames()}}`}`;
  const loadId = newLoadId();
  const workDir = join(tmpdir(), 'flight-dlt-ingest', `${config.PIPELINE_NAME.slice(0, 64)}-${loadId}-${process.pid}`);
  const http = createHttpClient(config, redact, redact.add);
  const summary: RunSummary = {
    status: 'failed',
    exitCode: 1,
    loadId,
    rowsLoaded: 0,
    tables: {},
    destination: base.destination,
    target,
    ...(base.databasePath ? { databasePath: base.databasePath } : {}),
    durationS: 0,
  };
  const ledgerEntry = (status: string, counts: Map<string, number>, loadSummary: string, error: string | null) => ({
    run_at: new Date(started).toISOString(),
    pipeline_name: config.PIPELINE_NAME,
    destination_dataset: base.dataset,
    destination_table: rootNames(),
    load_summary: loadSummary,
    status,
    load_id: loadId,
    rows_loaded: [...plans.keys()].reduce((n, t) => n + (counts.get(t) ?? 0), 0),
    error,
    duration_s: seconds(),
    destination: base.destination,
    table_counts: counts.size ? JSON.stringify(Object.fromEntries(counts)) : null,
  });
  const disposition = resources.length === 1 ? plans.values().next().value?.disposition : 'per resource';
  say('config', 'ok', { destination: base.destination, table: target, disposition });

  let step: Step = 'destination';
  let dest: Destination | undefined;
  let loader: Loader | undefined;
  let writer: ParquetWriter | undefined;
  let ended = false; // a failed run's stray requests report no more progress
  const onCancel = () => {
    ended = true;
    void http.close().catch(() => {}); // waits and requests end at once
    dest?.interrupt(); // so does the statement DuckDB is running
  };
  signal?.addEventListener('abort', onCancel, { once: true });
  const cancelled = () => {
    if (signal?.aborted) throw cancelledError(signal.reason);
  };
  try {
    say(step, 'running', { effect: base.databasePath ? `file:${base.databasePath}` : `md:${base.database}` });
    prepareWorkDir(workDir);
    dest = await openDestination(base, config, false, signal);
    cancelled();
    await ensureLedger(dest, base);
    say(step, 'ok');

    step = 'extract';
    say(step, 'running', { effect: `table:${target}` });
    await dest.run('BEGIN TRANSACTION'); // state and schema are read in the load's own transaction
    const state = await loadState(dest, base);
    const owned = await readOwnedSchema(dest, base, [...plans.values()]);
    loader = new Loader(dest, base, plans, owned, loadId, config.DUCKDB_MEMORY_LIMIT);
    await loader.begin();
    const extractor = new Extractor(
      owned.schema,
      {
        loadId,
        foreign: owned.foreign,
        dir: workDir,
        batchRows: config.BATCH_ROWS,
        onFile: (table, path, large) => loader!.add(table, path, large),
      },
      (writer = new ParquetWriter()),
    );
    const contextOf = (r: Resource): SourceContext => {
      const plan = targets.get(r)!.plan;
      const cursors = new Map<string, Incremental<Cursor>>();
      const ctx: SourceContext = {
        config,
        get state() {
          return resourceState(state, plan); // created on first use: a source that keeps none adds no entry
        },
        incremental: <T extends Cursor>(cursorPath: string, options: IncrementalOptions<T> = {}) => {
          // dlt hints the cursor column `incremental` in the stored schema
          const cursor = normalizeKey(cursorPath);
          plan.hints.set(cursor, { ...plan.hints.get(cursor), incremental: true });
          // one cursor per path and key for the run, however often a source asks for it
          const id = JSON.stringify([cursorPath, options.key ?? null]);
          if (!cursors.has(id)) {
            const state = options.key === undefined ? ctx.state : ((ctx.state[options.key] ??= {}) as Row);
            cursors.set(id, makeIncremental(state, cursorPath, options));
          }
          return cursors.get(id) as Incremental<T>;
        },
        getJson: async (url, what, options) => (await http.get(url, what, options)).body,
        pages: (url, what, options) => pagesOf(http, url, what, options),
        secret: (name) => {
          const value = secretFrom(env, name);
          redact.add(value);
          return value;
        },
        progress: (done, total, effect) => ended || say('extract', 'running', { done, total, effect }),
      };
      return ctx;
    };
    await orCancelled(pump(resources, targets, contextOf, extractor, loader, meter), signal);
    const pkg = await extractor.finish();
    const extracted = [...plans.keys()].reduce((n, t) => n + (pkg.tables.get(t)?.rows ?? 0), 0);
    say(step, 'ok', { rows: extracted, files: [...pkg.tables.values()].reduce((n, t) => n + t.files.length, 0) });

    step = 'load';
    say(step, 'running', { effect: `table:${target}` });
    await loader.finish(pkg, async (counts) => {
      const perTable = [...counts].map(([t, n]) => `${t}=${n}`).join(', ') || 'no rows';
      const how = disposition === 'per resource' ? 'loaded' : disposition;
      const dropped = [...extractor.discarded].flatMap(([t, { rows, values }]) => [
        ...(rows ? [`${t} ${rows} row${rows > 1 ? 's' : ''}`] : []),
        ...(values ? [`${t} ${values} value${values > 1 ? 's' : ''}`] : []),
      ]);
      const discarded = dropped.length ? `; discarded by the schema contract: ${dropped.join(', ')}` : '';
      cancelled(); // the last moment a cancel can still undo the run
      await saveState(dest!, base, state, loadId);
      const loadSummary = `${how} into ${where}: ${perTable}${discarded}`;
      await writeLedger(dest!, base, ledgerEntry('succeeded', counts, loadSummary, null));
      summary.discarded = Object.fromEntries(extractor.discarded);
    });
    summary.tables = Object.fromEntries(loader.counts);
    summary.rowsLoaded = [...plans.keys()].reduce((n, t) => n + (loader!.counts.get(t) ?? 0), 0);
    summary.target = `${where}.${plans.size === 1 ? [...plans.keys()][0] : `{${rootNames()}}`}`;
    say(step, 'ok', { rows: summary.rowsLoaded, effect: `table:${summary.target}` });
    say('ledger', 'ok', { effect: `table:${base.database}.main.${base.ledger}`, status: 'succeeded' });
    Object.assign(summary, { status: 'succeeded', exitCode: 0 });
  } catch (failure) {
    ended = true;
    // whatever failed once the run was cancelled (an aborted request, an interrupted statement), the cancel is why
    const e = signal?.aborted ? cancelledError(signal.reason) : failure;
    await writer?.close(); // no file finishing now may reach the loader
    await loader?.abort();
    await dest?.run('ROLLBACK').catch(() => {}); // nothing of the run stays (an error if it never began: fine)
    if (failure instanceof LoadError) step = 'load';
    summary.error = redact(errorText(e));
    say(step, 'failed', { error: oneLine(summary.error) });
    if (dest) {
      try {
        await writeLedger(dest, base, ledgerEntry('failed', new Map(), `failed during ${step}`, summary.error));
        say('ledger', 'ok', { effect: `table:${base.database}.main.${base.ledger}`, status: 'failed' });
      } catch (ledgerError) {
        summary.error +=
          '\n(and the failed run could not be recorded in the ledger: ' + `${redact(errorText(ledgerError))})`;
        say('ledger', 'failed', { error: oneLine(redact(errorText(ledgerError))) });
      }
    }
  } finally {
    signal?.removeEventListener('abort', onCancel);
    meter.stop();
    await writer?.close();
    await http.close().catch(() => {});
    try {
      dest?.close();
    } catch (e) {
      summary.error ??= `closing the database failed: ${redact(errorText(e))}`;
    }
    try {
      rmSync(workDir, { recursive: true, force: true });
    } catch {
      // it was never made (the working folder is what failed); nothing to clean up
    }
  }
  summary.durationS = seconds();
  say('@flight', summary.status === 'succeeded' ? 'ok' : 'failed', { exit: summary.exitCode });
  return summary;
}

/** A source as its resources: a function is the configured table's. */
function resourcesOf(source: Source, config: Config): Resource[] {
  if (typeof source === 'function') return [configured(source)];
  return Array.isArray(source) ? source : source.resources(config);
}

/**
 * The plan of each root table (a routed resource's tables join as their first rows come, each named as
 * dlt names a table and checked like a configured one) and where each resource's rows go.
 */
function runPlans(resources: Resource[], base: Plan) {
  const plans = new Map<string, Plan>();
  const targets = new Map<Resource, Target>();
  for (const r of resources) {
    const plan = planOf(base, r);
    const route = r.options !== 'config' ? r.options.table : undefined;
    if (!route) {
      plans.set(plan.table, plan);
      targets.set(r, { plan });
      continue;
    }
    const routed = new Map<string, Plan>();
    targets.set(r, {
      plan,
      route: (row) => {
        const name = String(route(row) ?? '');
        let p = routed.get(name);
        if (!p) {
          p = planOf(base, r, name);
          if (
            !name.trim() ||
            p.table.startsWith('_dlt') ||
            (p.dataset === 'main' && p.table === p.ledger.toLowerCase())
          )
            throw new FlightError(
              `resource ${JSON.stringify(r.name)} routes a row to table ${JSON.stringify(name)}, ` +
                "which can't be a table of the dataset (empty, a dlt table or the ledger)",
            );
          const other = plans.get(p.table);
          if (other && other.resource !== r.name)
            throw new FlightError(
              `resource ${JSON.stringify(r.name)} routes a row to table "${p.table}", ` +
                `which resource ${JSON.stringify(other.resource)} loads`,
            );
          routed.set(name, p);
          plans.set(p.table, p);
        }
        return p;
      },
    });
  }
  return { plans, targets };
}

/** A live `step: rows, rows/s` line for a person at a terminal, drawn only once a step takes more than a moment. */
function progressMeter(terminal: { write(text: string): unknown } | null) {
  let current: string | null = null;
  let started = 0;
  let drawn = false;
  const meter = {
    rows: 0,
    step(step: string | null) {
      if (step === current) return;
      if (drawn) terminal?.write('\r\x1b[K');
      [current, started, drawn, meter.rows] = [step, Date.now(), false, step === 'extract' ? 0 : meter.rows];
    },
  };
  let timer: NodeJS.Timeout | undefined;
  if (terminal) {
    timer = setInterval(() => {
      const elapsed = (Date.now() - started) / 1000;
      if (current === null || elapsed < 1) return;
      const rate = current === 'extract' ? `, ${Math.round(meter.rows / elapsed).toLocaleString('en-US')} rows/s` : '';
      terminal.write(`\r\x1b[K${current}: ${meter.rows.toLocaleString('en-US')} rows${rate}, ${elapsed.toFixed(0)} s`);
      drawn = true;
    }, 250);
    timer.unref();
  }
  return Object.assign(meter, { stop: () => (meter.step(null), clearInterval(timer)) });
}

/**
 * Feeds the resources' rows to the extractor, one resource after another (a plain iterable without a
 * promise per row). A transformer's rows follow its parent's as they come: `concurrency` parent rows are
 * worked on at once, their rows loaded in the parent rows' order. Every 1024 rows, and after each batch,
 * the event loop gets a turn: written files and DuckDB's finished loads are taken up and the next handed
 * over, so Parquet writing and loading run while the next batch is built; keepUp waits when either falls
 * behind.
 */
async function pump(
  resources: Resource[],
  targets: Map<Resource, Target>,
  contextOf: (r: Resource) => SourceContext,
  extractor: Extractor,
  loader: Loader,
  counter: { rows: number },
): Promise<void> {
  const turn = async () => {
    await new Promise(setImmediate);
    await extractor.keepUp();
    await loader.keepUp();
  };
  const contexts = new Map(resources.map((r) => [r, contextOf(r)]));
  const feed = async (r: Resource, rows: Rows): Promise<void> => {
    const target = targets.get(r)!;
    const kids = resources.filter((k) => k.parent === r);
    if (kids.length === 0 && Symbol.iterator in rows) {
      for (const row of rows) {
        extractor.add(row, target);
        if (++counter.rows % 1024 === 0 || extractor.flushed) await turn();
      }
      return;
    }
    const jobs: { kid: Resource; rows: Rows }[] = []; // the kids' calls, in their parent rows' order
    const limit = Math.max(1, ...kids.map((k) => (k.options !== 'config' && k.options.concurrency) || 4));
    for await (const row of rows) {
      extractor.add(row, target);
      if (++counter.rows % 1024 === 0 || extractor.flushed) await turn();
      if (kids.length > 0)
        for (const item of Array.isArray(row) ? row : [row])
          for (const kid of kids) {
            if (item === null || item === undefined) continue;
            while (jobs.length >= limit) await feed(jobs[0]!.kid, jobs.shift()!.rows);
            jobs.push({ kid, rows: ahead(() => kid.each!(item as Row, contexts.get(kid)!)) });
          }
    }
    while (jobs.length > 0) await feed(jobs[0]!.kid, jobs.shift()!.rows);
  };
  try {
    for (const r of resources.filter((r) => !r.parent)) await feed(r, await sourceRows(r.rows!(contexts.get(r)!)));
  } catch (e) {
    if (!(e instanceof RangeError && /call stack/i.test(e.message))) throw e;
    throw new FlightError(
      `source row ${counter.rows + 1} is nested too deeply to process (${e.message}); ` +
        `flatten it in the source, or make it shallower`,
    );
  }
}

/** A transformer's call, running now: its rows gather until they are read (a failure is told then). */
function ahead(call: () => Rows | Promise<Rows>): AsyncIterable<Row | Row[]> {
  const got: (Row | Row[] | undefined)[] = [];
  let [done, failure, wake] = [false, undefined as unknown, () => {}];
  void (async () => {
    try {
      for await (const row of await sourceRows(call())) (got.push(row), wake());
    } catch (e) {
      failure = e ?? new Error('a transformer failed');
    } finally {
      done = true;
      wake();
    }
  })();
  return {
    async *[Symbol.asyncIterator]() {
      for (let i = 0; ;) {
        while (i < got.length) {
          const row = got[i]!;
          got[i++] = undefined; // read rows are not held
          yield row;
        }
        if (failure) throw failure;
        if (done) return;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
  };
}

/** What a source returned, checked: rows as an array, a generator or an async generator, or a Promise of them. */
async function sourceRows(returned: Rows | Promise<Rows>): Promise<Rows> {
  const rows: unknown = await returned;
  if (typeof rows === 'object' && rows !== null && (Symbol.iterator in rows || Symbol.asyncIterator in rows))
    return rows as Rows;
  const got = rows === null ? 'null' : typeof rows === 'object' ? 'an object that is not iterable' : typeof rows;
  throw new FlightError(
    'a source must return its rows as an array, a generator or an async generator (or a Promise of an array), ' +
      `got ${got}`,
  );
}

/** The working folder for this run's loader files; fails before the destination is touched. */
function prepareWorkDir(dir: string): void {
  try {
    sweepStaleWorkDirs(dirname(dir));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '.probe'), 'flight');
  } catch (e) {
    throw new FlightError(
      `the working folder ${dir} is not writable (${errorText(e)}); set TMPDIR to a writable folder`,
    );
  }
}

/** Working folders of runs that were killed (their process is gone) are removed by the next run. */
function sweepStaleWorkDirs(base: string): void {
  if (!existsSync(base)) return;
  for (const name of readdirSync(base)) {
    const pid = Number(/-(\d+)$/.exec(name)?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(base, name), { recursive: true, force: true });
    }
  }
}

// ─── Main ───────────────────────────

function printSummary(s: RunSummary): void {
  if (s.status === 'succeeded') {
    const where = s.databasePath ? `local file ${s.databasePath}` : 'MotherDuck';
    console.log(`\nLoaded ${s.rowsLoaded} row(s) into ${s.target} (${where})`);
    for (const [table, rows] of Object.entries(s.tables)) console.log(`  ${table.padEnd(40)} ${rows} row(s)`);
    console.log(`  load id ${s.loadId}, ${s.durationS.toFixed(2)} s`);
  } else {
    console.error(`\nFlight failed${s.exitCode === 2 ? '' : ` (load ${s.loadId})`}: ${s.error}`);
  }
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(configHelp(argv.includes('--markdown') ? 'markdown' : 'text'));
    return 0;
  }
  if (existsSync('.env')) process.loadEnvFile('.env'); // the shell's variables win over the file's
  if (argv[0] === 'status') return showStatus(process.env);
  if (argv.length > 0) {
    console.error(`unknown argument ${JSON.stringify(argv[0])}\n\n${configHelp()}`);
    return 2;
  }
  const cron = blankToUndefined(process.env.SCHEDULE_CRON) as string | undefined;
  if (cron && !('problems' in parseConfig(process.env))) return runOnSchedule(cron, process.env);
  const cancel = cancelOnSignals();
  const summary = await runFlight({ env: process.env, signal: cancel.signal });
  printSummary(summary);
  cancel.dispose();
  const code = (summary.status === 'failed' && cancel.exitCode()) || summary.exitCode;
  if (cancel.signal.aborted) process.exit(code); // a source the cancel left behind must not keep the process alive
  return code;
}

/**
 * SIGTERM and SIGINT (a scheduler's stop, a Flight's cancel, Ctrl-C) abort `signal`: the run stops, rolls
 * back and records `cancelled by SIGTERM`, and the process exits 143 (SIGINT: 130). A second signal exits
 * at once, without waiting for the rollback (DuckDB's write-ahead log keeps the file whole either way).
 */
export function cancelOnSignals(
  exit: (code: number) => void = (code) => process.exit(code),
  onFirst?: (name: string) => void,
) {
  const controller = new AbortController();
  const codes = { SIGINT: 130, SIGTERM: 143 };
  let received: keyof typeof codes | undefined;
  const on = (name: keyof typeof codes) => () => {
    if (received) {
      console.error(`${name} again: exiting now, without waiting for the rollback`);
      return exit(codes[name]);
    }
    received = name;
    onFirst?.(name);
    controller.abort(name);
  };
  const [onInt, onTerm] = [on('SIGINT'), on('SIGTERM')];
  process.on('SIGINT', onInt).on('SIGTERM', onTerm);
  return {
    signal: controller.signal,
    /** 128 + the number of the signal received, if one was. */
    exitCode: () => (received ? codes[received] : undefined),
    dispose: () => void process.off('SIGINT', onInt).off('SIGTERM', onTerm),
  };
}

// Status: what `dlt pipeline info` shows, read from the destination.
async function showStatus(env: Env): Promise<number> {
  const parsed = parseConfig(env);
  if ('problems' in parsed) {
    console.error(`invalid config:\n${parsed.problems.map((p) => `  - ${p}`).join('\n')}`);
    return 2;
  }
  const plan = planFor(parsed.config);
  if (plan.databasePath && !existsSync(plan.databasePath)) {
    console.log(`No runs yet: ${plan.databasePath} does not exist.`);
    return 0;
  }
  const dest = await openDestination(plan, parsed.config, true).catch((e: unknown) => e as Error);
  if (dest instanceof Error) {
    console.error(redactor(secretsOf(parsed.config))(errorText(dest)));
    return 1;
  }
  try {
    // A ledger the Python Flight left has only its first five columns: the others show empty.
    const ledgerColumns = await dest.rows(
      `SELECT column_name FROM information_schema.columns
       WHERE table_catalog = $db AND table_schema = 'main' AND table_name = $ledger`,
      { db: plan.database, ledger: plan.ledger },
    );
    const has = new Set(ledgerColumns.map((c) => String(c.column_name)));
    const pick = (column: keyof LedgerEntry, expr: string = q(column), as: string = column) =>
      `${has.has(column) ? expr : 'NULL'} AS ${q(as)}`;
    const runs = has.size
      ? await dest.rows(
          `SELECT run_at, ${pick('status')}, ${pick('rows_loaded')}, ${pick('duration_s', 'round(duration_s, 2)')},
                  destination_table AS "tables", ${pick('table_counts')}, ${pick('error', 'left(error, 120)')}
           FROM ${ledgerName(plan)} WHERE pipeline_name = $p ORDER BY run_at DESC LIMIT 10`,
          { p: parsed.config.PIPELINE_NAME },
        )
      : [];
    for (const run of runs) {
      // rows per table where the ledger has them: `orders=3, orders__lines=7`
      const counts = run.table_counts ? (JSON.parse(String(run.table_counts)) as Record<string, number>) : null;
      if (counts)
        run.tables = Object.entries(counts)
          .map(([t, n]) => `${t}=${n}`)
          .join(', ');
      delete run.table_counts;
    }
    const tables = await dest.rows(
      `SELECT table_name FROM information_schema.tables
       WHERE table_catalog = $db AND table_schema = $ds ORDER BY table_name`,
      { db: plan.database, ds: plan.dataset },
    );
    const counts = [];
    for (const { table_name } of tables)
      counts.push({
        table: `${plan.dataset}.${table_name}`,
        rows: (await dest.rows(`SELECT count(*) AS n FROM ${dest.table(String(table_name))}`))[0]?.n,
      });
    console.log(
      `Pipeline ${parsed.config.PIPELINE_NAME} at ${plan.databasePath ?? `md:${plan.database}`}\n\n` +
        `Last runs (newest first):\n${formatTable(runs) || '  none yet'}\n\n` +
        `Tables:\n${formatTable(counts) || '  none yet'}`,
    );
    return 0;
  } finally {
    dest.close();
  }
}

/** Rows as an aligned text table, for people. */
export function formatTable(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return '';
  const names = Object.keys(rows[0]!);
  const cell = (v: unknown) =>
    v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : String(v).replace(/\s+/g, ' ');
  const widths = names.map((n) => Math.max(n.length, ...rows.map((r) => cell(r[n]).length)));
  const line = (values: string[]) => `  ${values.map((v, i) => v.padEnd(widths[i]!)).join('  ')}`.trimEnd();
  return [
    line(names),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(names.map((n) => cell(r[n])))),
  ].join('\n');
}

// Schedule: SCHEDULE_CRON keeps the process running and starts a run at each tick, one at a time.
// SIGINT / SIGTERM let the current run finish, then the process exits.
interface Cron {
  fields: Set<number>[];
  anyDay: boolean;
  anyWeekday: boolean;
}
const CRON_FIELDS = [
  ['minute', 0, 59],
  ['hour', 0, 23],
  ['day of month', 1, 31],
  ['month', 1, 12],
  ['day of week', 0, 7],
] as const;
const CRON_NAMES: Record<number, Record<string, number>> = {
  3: Object.fromEntries('jan feb mar apr may jun jul aug sep oct nov dec'.split(' ').map((m, i) => [m, i + 1])),
  4: Object.fromEntries('sun mon tue wed thu fri sat'.split(' ').map((d, i) => [d, i])),
};

export function parseCron(expression: string): Cron {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== 5)
    throw new Error(`needs 5 fields (minute hour day-of-month month day-of-week), got ${parts.length}`);
  const fields = parts.map((part, f) => {
    const [name, min, max] = CRON_FIELDS[f]!;
    const values = new Set<number>();
    for (const item of part.split(',')) {
      const m = /^(?:(\*)|(\w+)(?:-(\w+))?)(?:\/(\d+))?$/.exec(item);
      const value = (text: string) =>
        /^\d+$/.test(text) ? Number(text) : (CRON_NAMES[f]?.[text.toLowerCase()] ?? NaN);
      const [from, to] = m?.[1] ? [min, max] : [value(m?.[2] ?? ''), value(m?.[3] ?? m?.[2] ?? '')];
      const step = m?.[4] === undefined ? 1 : Number(m[4]);
      if (
        !m ||
        !(from >= min && to <= max && from <= to) ||
        step < 1 ||
        (m[4] !== undefined && !m[1] && m[3] === undefined)
      )
        throw new Error(
          `${name} field ${JSON.stringify(item)} is not valid (${min}-${max}, *, lists, ranges, */step or a-b/step)`,
        );
      for (let v = from; v <= to; v += step) values.add(f === 4 && v === 7 ? 0 : v);
    }
    return values;
  });
  return { fields, anyDay: parts[2] === '*', anyWeekday: parts[4] === '*' };
}

/** The first minute after `after` (UTC) that the expression selects. */
export function nextCronTime(cron: Cron, after: Date): Date {
  const [minutes, hours, days, months, weekdays] = cron.fields as [
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
    Set<number>,
  ];
  const t = new Date(Math.floor(after.getTime() / 60_000) * 60_000 + 60_000);
  for (let guard = 0; guard < 100_000; guard++) {
    const dayOk =
      cron.anyDay && cron.anyWeekday
        ? true
        : cron.anyDay
          ? weekdays.has(t.getUTCDay())
          : cron.anyWeekday
            ? days.has(t.getUTCDate())
            : days.has(t.getUTCDate()) || weekdays.has(t.getUTCDay());
    if (!months.has(t.getUTCMonth() + 1)) (t.setUTCMonth(t.getUTCMonth() + 1, 1), t.setUTCHours(0, 0));
    else if (!dayOk) (t.setUTCDate(t.getUTCDate() + 1), t.setUTCHours(0, 0));
    else if (!hours.has(t.getUTCHours())) t.setUTCHours(t.getUTCHours() + 1, 0);
    else if (!minutes.has(t.getUTCMinutes())) t.setUTCMinutes(t.getUTCMinutes() + 1);
    else return t;
  }
  throw new FlightError('never fires: no date matches it', 2);
}

export interface ScheduleOptions {
  /** The clock, in ms since the epoch (tests shift it). */
  now?: () => number;
  /** One run, cancelled by `signal`; default runFlight with the given env. */
  run?: (signal: AbortSignal) => Promise<RunSummary>;
  log?: (line: string) => void;
}
/** Runs at each tick until SIGTERM / SIGINT: 0 when it came between runs, 143 / 130 when it cancelled one. */
export async function runOnSchedule(expression: string, env: Env, options: ScheduleOptions = {}): Promise<number> {
  const { now = Date.now, run = (signal) => runFlight({ env, signal }), log = (line) => console.log(line) } = options;
  const cron = parseCron(expression);
  let wake = () => {};
  const cancel = cancelOnSignals(undefined, (signal) => {
    log(formatEvent('@schedule', 'stopping', { signal }));
    wake();
  });
  try {
    while (!cancel.signal.aborted) {
      const next = nextCronTime(cron, new Date(now()));
      log(formatEvent('@schedule', 'waiting', { cron: expression, next: next.toISOString() }));
      while (!cancel.signal.aborted && now() < next.getTime()) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(next.getTime() - now(), 60_000));
          wake = () => (clearTimeout(timer), resolve());
        });
      }
      if (cancel.signal.aborted) break;
      const summary = await run(cancel.signal); // a signal now cancels this run; the loop then ends
      printSummary(summary);
      if (cancel.signal.aborted && summary.status === 'failed') return cancel.exitCode()!;
    }
  } finally {
    cancel.dispose();
  }
  return 0;
}

const invokedDirectly =
  process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
if (invokedDirectly)
  process.exitCode = await main(process.argv.slice(2)).catch((e: unknown) => {
    // a known condition is one line; only a bug shows its stack
    console.error(
      e instanceof FlightError ? e.message : `unexpected error (a bug: please report it): ${(e as Error)?.stack ?? e}`,
    );
    return 1;
  });
