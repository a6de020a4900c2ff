/**
 * A follower's small catch-ups, the shared log's everyday read: in the postgres section's replay
 * part, and alone as `node dist/bench/pg-follow.js [rounds] [catch-ups]` after `npm run build`.
 * 16 Deposits are committed to the log in the store's format by raw pg (`fill`, as one
 * instance's batch of 16 commands: it sends no NOTIFY, so the follower does not start a catch-up
 * of its own, bar its head poll every 200 ms), then an App on that log calls `sync()`, which
 * reads and applies them; `catch-ups` times per round (1,000 by default). After each, the raw
 * reference: 16 rows committed the same way to a log nobody follows, then one `rawPage` of them
 * on a connection of its own. Each read follows the commit of what it reads (timed straight
 * after the App's catch-up instead, the raw read took 30 % longer, in CPU and wall time alike:
 * what ran just before it counts). Alone, it prints per round the CPU (`process.cpuUsage`) and
 * the wall time per event of each, the writes left out, then their medians and the App's ratio
 * to the reference with its spread.
 *
 * The catch-up of 500,000 events at once (the replay part's other row) is where the per-read
 * costs vanish; a follower beside busy writers reads a few at a time, so this is where the round
 * trips of a catch-up show.
 */
import 'reflect-metadata';
import pg from 'pg';
import { PostgresStore } from '../adapters/postgres/index';
import { createApp, type JsonValue, silentLogger } from '../src/index';
import { startPostgres } from '../test/support/postgres-cluster';
import { median, type Row, spread } from './measure';
import { fill, rawPage } from './pg-rows';
import { accounts, benchContext } from './workload';

/** Events per catch-up: one instance's batch with 16 commands in flight. */
const BATCH = 16;

/** What reads cost, per event. */
export interface Cost {
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

/**
 * `rounds` rounds of `times` small catch-ups and raw reads on the database `url` (its logs
 * `follow` and `fresh`, made here), after a warm-up of a fifth of a round; `each` hears of every
 * round. Their costs per event, a pair per round.
 */
export async function smallCatchUps(
  url: string,
  rounds: number,
  times: number,
  each: (app: Cost, raw: Cost) => void = () => {},
): Promise<{ apps: Cost[]; raws: Cost[] }> {
  // The two logs' head rows, made by a store's open; the writes go on a connection of a pool.
  const fresh = new PostgresStore({ connectionString: url, log: 'fresh' });
  await fresh.open(benchContext);
  await fresh.close();
  const follower = await createApp({
    ...accounts,
    store: new PostgresStore({
      connectionString: url,
      log: 'follow',
      appendfsync: 'no',
      autoRewritePercentage: 0,
    }),
    logger: silentLogger,
  });
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const writer = await pool.connect();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let next = 0;
  const map = new Map<string, JsonValue>();
  const rawRead = (after: number) => async () => {
    const { count } = await rawPage(client, 'fresh', after, BATCH, map);
    if (count !== BATCH) throw new Error(`raw read ${count} rows after ${after}`);
  };
  const round = async (n: number) => {
    const app: Cost = { cpuUs: 0, wallUs: 0 };
    const raw: Cost = { cpuUs: 0, wallUs: 0 };
    for (let i = 0; i < n; i++) {
      // Each read follows the commit of what it reads, on the writer's connection.
      await fill(writer, 'follow', next, BATCH);
      await timed(app, () => follower.sync());
      await fill(writer, 'fresh', next, BATCH);
      await timed(raw, rawRead(next));
      next += BATCH;
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
      each(app, raw);
    }
  } finally {
    await client.end();
    writer.release();
    await pool.end();
    await follower.close();
  }
  return { apps, raws };
}

/** The App against the raw read, in wall time and in CPU: medians of the per-round ratios. */
function ratios({ apps, raws }: { apps: Cost[]; raws: Cost[] }) {
  const wall = apps.map((a, k) => raws[k].wallUs / a.wallUs);
  const cpu = apps.map((a, k) => raws[k].cpuUs / a.cpuUs);
  return { wall, cpu };
}

/** The replay part's rows of small catch-ups (events/s from the wall time per event). */
export async function smallCatchUpRows(url: string, rounds: number, times: number): Promise<Row[]> {
  const costs = await smallCatchUps(url, rounds, times);
  const { wall, cpu } = ratios(costs);
  const perSecond = (us: number) => 1e6 / us;
  const raw = `raw pg: a keyset SELECT of ${BATCH} events just committed, ${times} times`;
  return [
    { name: raw, opsPerSec: perSecond(median(costs.raws.map((r) => r.wallUs))) },
    {
      name: `follower catch-up (App.sync after ${BATCH} events committed) (events/s)`,
      opsPerSec: perSecond(median(costs.apps.map((a) => a.wallUs))),
      reference: raw,
      ratio: median(wall),
      note: `median of ${rounds} rounds, ${spread(wall)}; in CPU per event ${median(cpu).toFixed(2)}× (${spread(cpu)})`,
    },
  ];
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 5);
  const times = Number(process.argv[3] ?? 1000);
  const server = await startPostgres();
  try {
    const costs = await smallCatchUps(await server.createDatabase(), rounds, times, (app, raw) => {
      process.stdout.write(
        `App.sync ${app.cpuUs.toFixed(1)} µs CPU, ${app.wallUs.toFixed(1)} µs wall per event; raw read ${raw.cpuUs.toFixed(1)} µs CPU, ${raw.wallUs.toFixed(1)} µs wall\n`,
      );
    });
    const { wall, cpu } = ratios(costs);
    const { apps, raws } = costs;
    process.stdout.write(
      `App.sync of ${BATCH} events: median ${median(apps.map((a) => a.cpuUs)).toFixed(1)} µs CPU, ${median(apps.map((a) => a.wallUs)).toFixed(1)} µs wall per event; raw ${median(raws.map((r) => r.cpuUs)).toFixed(1)} and ${median(raws.map((r) => r.wallUs)).toFixed(1)}; the App against the raw read: CPU ${median(cpu).toFixed(2)}× (${spread(cpu)}), wall ${median(wall).toFixed(2)}× (${spread(wall)})\n`,
    );
  } finally {
    await server.stop();
  }
}

if (require.main === module) void main();
