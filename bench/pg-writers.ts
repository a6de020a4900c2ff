/**
 * Raw shared-log writers for the instances rows of `bench/postgres.ts`: the least work that a
 * process appending to one log beside others must do, with `pg` alone. Each writer follows the
 * others (their rows read in seq order, each row's data `JSON.parse`d and set in a `Map`),
 * decides 16 deposits on that state (a balance each, as the App's Deposit handler does) and
 * appends them as one batch with the head-row statement, `synchronous_commit = on`. It is the
 * physical limit of the instances rows on the machine that runs them: four App instances cannot
 * beat four of these, and what four of these reach against one is the share of one writer's rate
 * that the hardware leaves to a shared log.
 *
 * Two ways to meet the others:
 * - `retry`, plain optimistic retry: append at the head last read; when the head has moved, read
 *   the others' rows, decide again and retry (the reference, 0.55× one writer there).
 * - `lock`, the App's protocol by hand: lock the head row and read the others' rows in one round
 *   trip, decide, then append with COMMIT and the flush barrier in a second (see HeadLock).
 * - `hybrid`: optimistic retry, and a batch that conflicted {@link HYBRID_TRIES} times takes the
 *   head lock (as `lock`) for its next attempt: the Node work stays outside the lock while
 *   attempts land, and a starving writer still lands in bounded time. Measured on 2 cores
 *   (`node dist/bench/pg-instances.js 3 3 1,4 hybrid`): four writers 7,200–8,800 rows/s, p99
 *   26–37 ms, below `lock` (11,100–11,400, p99 18–19 ms): the optimistic appends queue behind
 *   the lock's holders and then find the head moved. So the App does not do it.
 */
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import pg from 'pg';
import { FLUSH_BARRIER } from '../adapters/postgres/flush';
import { quoteLiteral } from '../adapters/postgres/replay';
import type { InstanceResult } from './postgres';

/** The ways a raw writer meets the others (see the file's comment). */
export const RAW_WRITER_MODES = ['retry', 'lock', 'hybrid'] as const;

/** How a raw writer meets the others (see the file's comment). */
export type RawWriterMode = (typeof RAW_WRITER_MODES)[number];

/** True when `name` is one of {@link RAW_WRITER_MODES}. */
export function isRawWriterMode(name: string): name is RawWriterMode {
  return (RAW_WRITER_MODES as readonly string[]).includes(name);
}

/** Under `hybrid`, the optimistic attempts of a batch before it takes the head lock. */
const HYBRID_TRIES = 2;

/** Rows per append: the App instances' 16 commands in flight, each one Deposited event. */
export const RAW_WRITER_ROWS = 16;

/** The events and heads tables of the raw writers, in `schema` (the columns the store writes). */
export function rawWriterTables(schema: string): string[] {
  return [
    `CREATE SCHEMA IF NOT EXISTS ${schema}`,
    `CREATE TABLE IF NOT EXISTS ${schema}.events (log text NOT NULL, seq bigint NOT NULL, time bigint NOT NULL,
       type text NOT NULL, data text NOT NULL, n integer NOT NULL, batch uuid NOT NULL, PRIMARY KEY (log, seq))`,
    `CREATE TABLE IF NOT EXISTS ${schema}.heads (log text PRIMARY KEY, seq bigint NOT NULL, batch uuid)`,
  ];
}

/** The head-row append of one batch: its data as one text, a row per line (as the store sends it). */
const appendText = (s: string) =>
  `WITH moved AS (UPDATE ${s}.heads SET seq = $3, batch = $4 WHERE log = $1 AND seq = $2 RETURNING seq)
  INSERT INTO ${s}.events (log, seq, time, type, data, n, batch)
  SELECT $1, $2 + e.ord, $5, 'Deposited', e.data, 1, $4
  FROM moved, unnest(string_to_array($6, E'\\n')) WITH ORDINALITY AS e(data, ord)`;

/**
 * A writer child: says `ready`, waits for `go` on stdin, writes for `warmup` seconds, says
 * `measuring`, writes for `seconds` and prints its result as one JSON line (as an App instance
 * child does, see `spawnInstance`). `accounts` are the names it deposits to, from `offset` on.
 */
export async function rawWriterChild(
  url: string,
  schema: string,
  log: string,
  mode: RawWriterMode,
  seconds: number,
  warmup: number,
  accounts: readonly string[],
): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`INSERT INTO ${schema}.heads (log, seq) VALUES ($1, 0) ON CONFLICT DO NOTHING`, [log]);
  const name = `bench_writer_${mode}`;
  const text = appendText(schema);
  // Prepared once (a head that never matches inserts nothing): `lock` runs it as EXECUTE.
  await client.query({ name, text, values: [log, -1, -1, randomUUID(), 0, '{}'] });
  // Under `lock` the COMMIT does not wait for the flush (the barrier after it does): the session's
  // setting, as the store's `set_config(…, true)` sets it for the lock's transaction.
  await client.query(`SET synchronous_commit = ${mode === 'lock' ? 'off' : 'on'}`);
  // `hybrid` locks on the session's `on`: its lock's transaction says `off` for itself.
  const begin = mode === 'hybrid' ? 'BEGIN; SET LOCAL synchronous_commit = off' : 'BEGIN';
  const l = quoteLiteral(log);
  const balances = new Map<string, number>();
  let known = 0;
  const follow = (rows: readonly unknown[]) => {
    for (const row of rows as [string, string][]) {
      const data = JSON.parse(row[1]) as { account: string; balance: number };
      balances.set(data.account, data.balance);
      known = Number(row[0]);
    }
  };
  const readAfter = `SELECT seq, data FROM ${schema}.events WHERE log = ${l} AND seq > `;
  let next = process.pid % accounts.length;
  /** One batch decided on the state as followed: the balances it sets, and its rows' JSON. */
  const decide = () => {
    const decided = new Map<string, number>();
    const data: string[] = [];
    for (let i = 0; i < RAW_WRITER_ROWS; i++) {
      const account = accounts[(next + i) % accounts.length];
      const amount = 1 + ((next + i) % 100);
      const balance = (decided.get(account) ?? balances.get(account) ?? 0) + amount;
      decided.set(account, balance);
      data.push(JSON.stringify({ account, amount, balance }));
    }
    return { decided, data: data.join('\n') };
  };
  let conflicts = 0;
  let decisions = 0;
  /** One batch appended, however many attempts it takes (each conflict counted). */
  const appendOne = async (): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      const locked = mode === 'lock' || (mode === 'hybrid' && attempt >= HYBRID_TRIES);
      if (locked) {
        const results = (await client.query({
          text: `${begin}; SELECT seq FROM ${schema}.heads WHERE log = ${l} FOR UPDATE; ${readAfter}${known} ORDER BY seq`,
          rowMode: 'array',
        })) as unknown as pg.QueryArrayResult[];
        follow(results[results.length - 1].rows);
      }
      const batch = decide();
      decisions += RAW_WRITER_ROWS;
      const values = [log, known, known + RAW_WRITER_ROWS, randomUUID(), Date.now(), batch.data];
      let landed: boolean;
      if (locked) {
        const args = values.map((v) => (typeof v === 'number' ? String(v) : quoteLiteral(v))).join(', ');
        const results = (await client.query(
          `EXECUTE ${name}(${args}); COMMIT; ${FLUSH_BARRIER}`,
        )) as unknown as pg.QueryResult[];
        landed = results[0].rowCount === RAW_WRITER_ROWS;
      } else landed = (await client.query({ name, text, values })).rowCount === RAW_WRITER_ROWS;
      if (landed) {
        for (const [account, balance] of batch.decided) balances.set(account, balance);
        known += RAW_WRITER_ROWS;
        next += RAW_WRITER_ROWS;
        return;
      }
      if (locked) throw new Error(`${log}: the head moved under the lock`);
      conflicts++;
      follow(
        (await client.query({ text: `${readAfter}$1 ORDER BY seq`, values: [known], rowMode: 'array' })).rows,
      );
    }
  };
  const run = async (forSeconds: number, latencies: number[]) => {
    const start = performance.now();
    const end = start + forSeconds * 1000;
    let batches = 0;
    for (let now = start; now < end; batches++) {
      await appendOne();
      const done = performance.now();
      latencies.push(done - now);
      now = done;
    }
    return { batches, seconds: (performance.now() - start) / 1000 };
  };
  fs.writeSync(1, 'ready\n');
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));
  if (warmup > 0) await run(warmup, []);
  conflicts = 0;
  decisions = 0;
  fs.writeSync(1, 'measuring\n');
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const m = await run(seconds, latencies);
  const cpu = process.cpuUsage(cpu0);
  await client.end();
  const ops = m.batches * RAW_WRITER_ROWS;
  const result: InstanceResult = {
    ops,
    seconds: m.seconds,
    failed: 0,
    conflicts,
    batches: m.batches,
    decisions,
    // An append's latency is each of its rows' (as a command's, in the App's rows).
    latencies: latencies.map((l) => Math.round(l * 1000) / 1000),
    cpu,
    notifications: 0,
    polls: 0,
  };
  fs.writeSync(1, `${JSON.stringify(result)}\n`);
}
