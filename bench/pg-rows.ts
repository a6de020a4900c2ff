/**
 * The PostgreSQL benchmarks' rows, written and read by hand: the Deposit data every writer logs,
 * the store-format fill the readers read (bench/postgres.ts, bench/pg-follow.ts), and one page of
 * the raw reference read.
 */
import { randomUUID } from 'node:crypto';
import { type JsonValue, newEventId } from 'appendonly';
import type pg from 'pg';
import { addGroup, appendStatements, insertBatch, newRows } from '../adapters/postgres/append';
import { TEXT_COLUMNS } from '../adapters/postgres/driver';
import { tablesOf } from '../adapters/postgres/schema';
import { Deposited } from './workload';

/** Every command deposits into one of 10,000 accounts: about 50 characters of event data. */
export const ACCOUNTS = 10_000;
/** The accounts' names. */
export const names = Array.from({ length: ACCOUNTS }, (_, i) => `acct:${i}`);
/** Command `i`'s amount. */
export const amountOf = (i: number) => 1 + (i % 100);
/** Event `i`'s data as a Deposit logs it: what the raw rows write, and what the fills write. */
export const dataOf = (i: number) => ({ account: names[i % ACCOUNTS], amount: amountOf(i), balance: i * 3 });
/** The batch (and page) size of the fills and the raw reads: the store's replay page. */
export const PAGE = 4096;

/**
 * Appends `count` Deposit events after `from` to the store's log `log`, in the store's format
 * (its own append statement and rows, an id on every event as the App logs them), 4096 per
 * statement, all in one transaction: a reader sees none of them, then all (the follower's
 * catch-up then reads them all at once). No NOTIFY: a follower hears of them by its own reads.
 */
export async function fill(client: pg.PoolClient, log: string, from: number, count: number): Promise<void> {
  const statements = appendStatements(tablesOf('appendonly'));
  await client.query('BEGIN');
  for (let at = from; at < from + count; at += PAGE) {
    const rows = newRows(randomUUID(), at + 1);
    for (let i = at; i < Math.min(from + count, at + PAGE); i++) {
      const time = 1_700_000_000_000 + i;
      addGroup(rows, { seq: i + 1, time, events: [Deposited(dataOf(i))], ids: [newEventId(time)] });
    }
    if (!(await insertBatch(client, statements, log, 'no', rows))) throw new Error(`${log}: the head moved`);
  }
  await client.query('COMMIT');
}

/**
 * One page of the reference read: up to `limit` rows after `after` of the columns the store
 * reads that the fills fill (`version` and `metadata`, NULL here, left out), in seq order, each
 * row's data `JSON.parse`d and set in `map` as the projection sets it, with no type parsers, as
 * the store reads. Returns the rows' count and the last seq read.
 */
export async function rawPage(
  client: pg.ClientBase,
  log: string,
  after: number | string,
  limit: number,
  map: Map<string, JsonValue>,
): Promise<{ count: number; last: number | string }> {
  const { rows }: { rows: unknown[] } = await client.query({
    text: `SELECT seq, time, type, data, n, id FROM appendonly.events WHERE log = $1 AND seq > $2 ORDER BY seq LIMIT ${limit}`,
    values: [log, after],
    rowMode: 'array',
    types: TEXT_COLUMNS,
  });
  for (let i = 0; i < rows.length; i++) {
    const d = JSON.parse((rows[i] as string[])[3]) as { account: string; amount: number; balance: number };
    map.set(d.account, { balance: d.balance, last: d.amount });
  }
  return { count: rows.length, last: rows.length === 0 ? after : (rows[rows.length - 1] as string[])[0] };
}
