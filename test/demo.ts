// `npm run demo`: a real run with no network and no account. Serves the recorded GitHub API
// responses in test/fixtures/github from a local server, runs the Flight against it into a local
// DuckDB file (./data/flights_demo_offline.duckdb), then prints the loaded table and the ledger row.
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { DuckDBInstance } from '@duckdb/node-api';
import { formatTable, runFlight, type Env } from '../flight.ts';

const FIXTURES = new URL('./fixtures/github/', import.meta.url);

/** A stand-in for api.github.com on 127.0.0.1 that answers /repos/<owner>/<name> from the fixtures. */
export async function serveRecordedGitHub(): Promise<{ url: string; server: Server }> {
  const server = createServer(async (req, res) => {
    const match = /^\/repos\/([\w.-]+)\/([\w.-]+)$/.exec(req.url ?? '');
    const body = match
      ? await readFile(new URL(`repos/${match[1]}/${match[2]}.json`, FIXTURES), 'utf8').catch(() => null)
      : null;
    res.writeHead(body ? 200 : 404, {
      'content-type': 'application/json; charset=utf-8',
      'x-ratelimit-limit': '60',
      'x-ratelimit-remaining': '59',
    });
    res.end(
      body ??
        JSON.stringify({
          message: 'Not Found',
          documentation_url: 'https://docs.github.com/rest/repos/repos#get-a-repository',
          status: '404',
        }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

export async function runDemo(env: Env, print: (text: string) => void = console.log): Promise<number> {
  const { url, server } = await serveRecordedGitHub();
  try {
    const demoEnv: Env = {
      LOCAL_DATA_DIR: './data',
      DESTINATION_DATABASE: 'flights_demo_offline',
      ...env,
      DESTINATION: 'local',
      GITHUB_API_URL: url,
    };
    print(`Serving recorded GitHub API responses at ${url}; loading into a local file.\n`);
    const summary = await runFlight({ env: demoEnv, log: print });
    if (summary.status !== 'succeeded') {
      print(`\nDemo run failed: ${summary.error}`);
      return summary.exitCode;
    }
    const db = await DuckDBInstance.create(summary.databasePath!, { access_mode: 'READ_ONLY' });
    const conn = await db.connect();
    try {
      const [database, dataset, table] = summary.target!.split('.');
      const rows = async (sql: string, params: Record<string, string>) =>
        (await conn.runAndReadAll(sql, params)).getRowObjectsJS();
      print(`\n${summary.target} (in ${summary.databasePath}):\n`);
      print(
        formatTable(
          await rows(`SELECT * EXCLUDE (_dlt_id) FROM "${database}"."${dataset}"."${table}" ORDER BY repo`, {}),
        ),
      );
      print(`\nThe ledger row of this run (${database}.main.dlt_ingest_runs):\n`);
      const ledger = await rows(`SELECT * FROM "${database}".main.dlt_ingest_runs WHERE load_id = $id`, {
        id: summary.loadId!,
      });
      print(formatTable(Object.entries(ledger[0] ?? {}).map(([column, value]) => ({ column, value }))));
      print(`\nNext: DESTINATION_DATABASE=flights_demo_offline npx tsx flight.ts status`);
    } finally {
      conn.closeSync();
      db.closeSync();
    }
    return 0;
  } finally {
    server.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) process.exitCode = await runDemo(process.env);
