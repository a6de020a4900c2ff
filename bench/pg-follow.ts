/**
 * A follower's small catch-ups, the shared log's everyday read: `node dist/bench/pg-follow.js
 * [rounds] [catch-ups]` after `npm run build`. One App appends 16 Deposits (one batch, as one
 * instance with 16 in flight commits them), and a second App on the same log calls `sync()`,
 * which reads and applies them; `catch-ups` times per round (1,000 by default). After each, the
 * raw reference: one keyset SELECT of 16 rows just committed the same way to a log nobody
 * follows (both read fresh rows), on a connection of its own, each row's data `JSON.parse`d and
 * set in a Map. Prints, per round, the CPU and the
 * wall time per event of each (`process.cpuUsage` around the reads only, the appends left out),
 * then their medians and the App's ratio to the reference with its spread.
 *
 * The full postgres section measures the catch-up of 500,000 events at once, where the
 * per-read costs vanish; a follower beside busy writers reads a few at a time, so this is where
 * the round trips of a catch-up show.
 */
import 'reflect-metadata';
import pg from 'pg';
import { PostgresStore } from '../adapters/postgres/index';
import { type App, createApp, silentLogger } from '../src/index';
import { startPostgres } from '../test/support/postgres-cluster';
import { median, spread } from './measure';
import { accounts, Deposit } from './workload';

/** Events per catch-up: one instance's batch with 16 commands in flight. */
const BATCH = 16;

/** Names the Deposits go to: enough that a batch touches 16 keys. */
const ACCOUNTS = 1000;

interface Cost {
  /** CPU per event, µs. */
  cpuUs: number;
  /** Wall time per event, µs. */
  wallUs: number;
}

/** Adds the CPU and wall time of `read` to `cost`. */
async function timed(cost: Cost, read: () => Promise<void>): Promise<void> {
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  await read();
  const wall = performance.now() - w0;
  const c = process.cpuUsage(c0);
  cost.cpuUs += c.user + c.system;
  cost.wallUs += wall * 1000;
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 5);
  const times = Number(process.argv[3] ?? 1000);
  const server = await startPostgres();
  const url = await server.createDatabase();
  const appOn = (log: string) =>
    createApp({
      ...accounts,
      store: new PostgresStore({ connectionString: url, log, appendfsync: 'no', autoRewritePercentage: 0 }),
      logger: silentLogger,
    });
  const writer = await appOn('follow');
  const follower = await appOn('follow');
  const freshWriter = await appOn('fresh');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let next = 0;
  const write = (app: App) =>
    Promise.all(
      Array.from({ length: BATCH }, (_, k) => {
        const i = next + k;
        return app.execute(new Deposit(`acct-${i % ACCOUNTS}`, 1 + (i % 7)));
      }),
    );
  const map = new Map<string, { balance: number; last: number }>();
  const rawRead = (after: number) => async () => {
    const { rows } = await client.query({
      text: `SELECT seq, data FROM appendonly.events WHERE log = 'fresh' AND seq > $1 ORDER BY seq LIMIT ${BATCH}`,
      values: [after],
      rowMode: 'array',
    });
    for (const row of rows as [string, string][]) {
      const d = JSON.parse(row[1]) as { account: string; amount: number; balance: number };
      map.set(d.account, { balance: d.balance, last: d.amount });
    }
    if (rows.length !== BATCH) throw new Error(`raw read ${rows.length} rows after ${after}`);
  };
  const round = async (n: number) => {
    const app: Cost = { cpuUs: 0, wallUs: 0 };
    const raw: Cost = { cpuUs: 0, wallUs: 0 };
    for (let i = 0; i < n; i++) {
      await Promise.all([write(writer), write(freshWriter)]);
      const after = next;
      next += BATCH;
      await timed(app, () => follower.sync());
      await timed(raw, rawRead(after));
    }
    if (follower.stats().durableSeq !== next) throw new Error('the follower did not reach the head');
    for (const cost of [app, raw]) {
      cost.cpuUs /= n * BATCH;
      cost.wallUs /= n * BATCH;
    }
    return { app, raw };
  };
  const apps: Cost[] = [];
  const raws: Cost[] = [];
  try {
    await round(Math.ceil(times / 5)); // warm-up
    for (let k = 0; k < rounds; k++) {
      const { app, raw } = await round(times);
      apps.push(app);
      raws.push(raw);
      process.stdout.write(
        `round ${k}: App.sync ${app.cpuUs.toFixed(1)} µs CPU, ${app.wallUs.toFixed(1)} µs wall per event; raw read ${raw.cpuUs.toFixed(1)} µs CPU, ${raw.wallUs.toFixed(1)} µs wall\n`,
      );
    }
    const cpuRatios = apps.map((a, k) => raws[k].cpuUs / a.cpuUs);
    const wallRatios = apps.map((a, k) => raws[k].wallUs / a.wallUs);
    process.stdout.write(
      `App.sync of ${BATCH} events: median ${median(apps.map((a) => a.cpuUs)).toFixed(1)} µs CPU, ${median(apps.map((a) => a.wallUs)).toFixed(1)} µs wall per event; raw ${median(raws.map((r) => r.cpuUs)).toFixed(1)} and ${median(raws.map((r) => r.wallUs)).toFixed(1)}; the App against the raw read: CPU ${median(cpuRatios).toFixed(2)}× (${spread(cpuRatios)}), wall ${median(wallRatios).toFixed(2)}× (${spread(wallRatios)})\n`,
    );
  } finally {
    await client.end();
    await follower.close();
    await freshWriter.close();
    await writer.close();
    await server.stop();
  }
}

void main();
