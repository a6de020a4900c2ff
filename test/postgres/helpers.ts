import 'reflect-metadata';
import * as path from 'node:path';
import { type App, createApp, type FsyncPolicy, type JsonValue, type Logger, silentLogger } from 'appendonly';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { fixtures } from 'appendonly/testing';
import type { PgClientLike } from '../../adapters/postgres/driver';
import { lockAndRead, pages } from '../../adapters/postgres/replay';
import { tablesOf } from '../../adapters/postgres/schema';
import type { ReplayRecord } from '../../src/store/replay-batch';
import { type Child, useChildren } from '../support/child';
import { admin } from '../support/postgres';
import { classes } from './domain';

/** An app on a PostgreSQL log, and its store. */
export interface Opened {
  readonly app: App;
  readonly store: PostgresStore;
}

/** Opens apps on PostgreSQL logs (the test domain's classes) and closes them after each test. */
export function useApps(): (
  url: string,
  log: string,
  policy?: FsyncPolicy,
  logger?: Logger,
) => Promise<Opened> {
  const apps: App[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close().catch(() => {});
  });
  return async (url, log, policy = 'always', logger = silentLogger) => {
    const store = new PostgresStore({ connectionString: url, log, appendfsync: policy });
    const app = await createApp({ ...classes, store, logger });
    apps.push(app);
    return { app, store };
  };
}

/**
 * A store opened on its own, with no app on it (an app would follow it): for tests of what the
 * store itself reports. The caller closes it.
 */
export async function bareStore(url: string, log: string): Promise<PostgresStore> {
  const store = new PostgresStore({ connectionString: url, log });
  await store.open({
    logger: silentLogger,
    clock: { now: Date.now },
    snapshots: {
      takeSnapshot: () => {
        throw new Error('no compaction in this test');
      },
    },
  });
  return store;
}

/**
 * A store opened on its own, keeping history, whose compaction records the snapshot `{ k:
 * snapshotSeq }` at `snapshotSeq` (a state the test sets, not one an app built): for tests that
 * switch a snapshot in and then delete its covered events by hand. The caller closes it.
 */
export async function snapshotAtStore(url: string, log: string, snapshotSeq: number): Promise<PostgresStore> {
  const store = new PostgresStore({ connectionString: url, log, keepHistory: true });
  await store.open({
    logger: silentLogger,
    clock: { now: Date.now },
    snapshots: {
      takeSnapshot: () => ({
        seq: snapshotSeq,
        size: 1,
        entries: () => [['k', snapshotSeq] as [string, JsonValue]][Symbol.iterator](),
        release: () => {},
      }),
    },
  });
  return store;
}

/**
 * The catch-up after `after` on the locked head, as the App runs it (the lock and the first page
 * in one round trip, then a statement per page in READ COMMITTED), on the `appendonly` schema:
 * for tests that change the log between its pages.
 */
export async function lockedCatchUp(
  client: PgClientLike,
  log: string,
  after: number,
): Promise<AsyncGenerator<readonly ReplayRecord[]>> {
  const t = tablesOf('appendonly');
  const prefetched = await lockAndRead(client, t, log, after);
  return pages({ client, t, log, where: log, after, counter: { bytes: 0 }, prefetched });
}

/**
 * What a database crash under `synchronous_commit = off` does, by hand: the commits after `seq`
 * are gone, and the head row is back at `seq` (with its batch). One statement, committed without
 * waiting for a flush (a test may have made every flush wait).
 */
export async function loseCommitsAfter(url: string, log: string, seq: number): Promise<void> {
  await admin(
    url,
    `WITH lost AS (DELETE FROM appendonly.events WHERE log = $1 AND seq > $2),
          off AS (SELECT set_config('synchronous_commit', 'off', true))
     UPDATE appendonly.heads SET seq = $2,
       batch = (SELECT batch FROM appendonly.events WHERE log = $1 AND seq = $2)
     WHERE log = $1 AND (SELECT count(*) FROM off) = 1`,
    [log, seq],
  );
}

/** The state as a plain object. */
export function stateOf(app: App): Record<string, JsonValue> {
  return Object.fromEntries(app.state.entries());
}

/** Waits until `condition` holds, polling every 20 ms, up to `ms`. */
export async function eventually(condition: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('the condition never held');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Sends `command` to a worker (`child/worker.ts`) and resolves with the JSON of its answer line. */
export async function ask<T = Record<string, JsonValue>>(
  child: Child,
  command: string,
  answer: string,
): Promise<T> {
  const from = child.lines.length;
  child.send(command);
  const line = await child.waitFor(new RegExp(`^${answer} `), from);
  return JSON.parse(line.slice(answer.length + 1)) as T;
}

/** For a describe block: starts `child/worker.ts` (argv: url log id mode), SIGKILLed after each test. */
export function useWorkers(): (
  url: string,
  log: string,
  id: number,
  mode: 'mixed' | 'write' | 'retry-write' | 'follow',
) => Child {
  const spawn = useChildren(path.join(__dirname, 'child/worker.ts'));
  return (url, log, id, mode) => spawn([url, log, String(id), mode]);
}

/** The log's events: how many, the first and last seq (0 when none), and the head row's snapshot seq. */
export async function logShape(
  url: string,
  log: string,
): Promise<{ n: number; min: number; max: number; snapshotSeq: number }> {
  const { rows } = await admin(
    url,
    `SELECT count(*)::int AS n, coalesce(min(seq), 0)::int AS min, coalesce(max(seq), 0)::int AS max,
       (SELECT snapshot_seq::int FROM appendonly.heads WHERE log = $1) AS "snapshotSeq"
     FROM appendonly.events WHERE log = $1`,
    [log],
  );
  return rows[0];
}

/** How many commands of each kind a worker had acknowledged when it stopped (its `stopped` line). */
export interface Acked {
  readonly put: number;
  readonly increment: number;
  readonly transfer: number;
}

/** Puts five accounts of 1000 (acct:0..4) in the log, from an app that is closed again. */
export async function fund(open: ReturnType<typeof useApps>, url: string, log: string): Promise<void> {
  const { app } = await open(url, log);
  for (let i = 0; i < 5; i++) await app.execute(new fixtures.Put(`acct:${i}`, 1000));
  await app.close();
}

/** The Puts a `write` worker printed as acknowledged (`ack <i>`): key `w<id>:<i>` → i. */
export function ackedPuts(child: Child, id: number): Map<string, number> {
  const acked = new Map<string, number>();
  for (const line of child.lines)
    if (line.startsWith('ack ')) acked.set(`w${id}:${line.slice(4)}`, Number(line.slice(4)));
  return acked;
}

/** The acknowledged keys that `state` does not hold with their value. */
export function missing(state: Record<string, JsonValue>, acked: Map<string, number>): string[] {
  return [...acked].filter(([key, value]) => state[key] !== value).map(([key]) => key);
}
