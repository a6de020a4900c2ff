import { LogCompactedError } from 'appendonly';
import pg from 'pg';
import type { PgArrayQuery, PgClientLike, PgResult } from '../../adapters/postgres/driver';
import { eventPageSelect, pages } from '../../adapters/postgres/replay';
import { tablesOf } from '../../adapters/postgres/schema';
import { admin, usePostgres } from '../support/postgres';
import { lockedCatchUp, snapshotAtStore } from './helpers';

/**
 * The replay's pages read one query ahead (the next page asked for before this one is decoded):
 * whatever ends a read, none of its queries is still running on the connection afterwards, and
 * what it reads is what reading one page at a time reads.
 */
describe('PostgresStore: replay pages read ahead', () => {
  const server = usePostgres();
  let url = '';
  const t = tablesOf('appendonly');
  beforeAll(async () => {
    url = await server().createDatabase();
  });

  /** A log of `events` commands of one event; `snapshotSeq`: switched in, covered events kept. */
  async function logOf(log: string, events: number, snapshotSeq = 0): Promise<void> {
    const store = await snapshotAtStore(url, log, snapshotSeq);
    try {
      await Promise.all(
        Array.from({ length: events }, (_, i) =>
          store.append({ seq: i + 1, time: 0, events: [{ type: 'Set', data: { key: 'k', value: i + 1 } }] }),
        ),
      );
      if (snapshotSeq > 0) expect(await store.compact()).toMatchObject({ seq: snapshotSeq });
    } finally {
      await store.close();
    }
  }

  /** A pool's connection, counting the queries sent on it and not yet answered. */
  async function counted(pool: pg.Pool): Promise<{ client: PgClientLike; running(): number }> {
    const client = await pool.connect();
    let running = 0;
    const query = (config: PgArrayQuery | string, values?: unknown[]): Promise<PgResult> => {
      running++;
      const answer = (
        typeof config === 'string' ? client.query(config, values) : client.query(config)
      ) as Promise<PgResult | PgResult[]>;
      return answer.finally(() => running--) as Promise<PgResult>;
    };
    return {
      client: {
        query: query as PgClientLike['query'],
        release: (destroy?: boolean) => client.release(destroy),
        on: ((event: 'error', listener: (err: Error) => void) =>
          client.on(event, listener)) as PgClientLike['on'],
        removeListener: (event: 'error', listener: (err: Error) => void) =>
          client.removeListener(event, listener),
      },
      running: () => running,
    };
  }

  it('a page reads no more rows than a page, on a table not yet analysed', async () => {
    // given: 10,000 events in tables nobody has analysed (autovacuum off on them from the start:
    // a log just converted into PostgreSQL, before autovacuum's ANALYZE)
    const fresh = await server().createDatabase();
    const store = await snapshotAtStore(fresh, 'unanalysed', 0);
    try {
      await admin(fresh, 'ALTER TABLE appendonly.events SET (autovacuum_enabled = false)');
      for (let from = 0; from < 10_000; from += 1000)
        await Promise.all(
          Array.from({ length: 1000 }, (_, i) =>
            store.append({
              seq: from + i + 1,
              time: 0,
              events: [{ type: 'Set', data: { key: 'k', value: i } }],
            }),
          ),
        );
    } finally {
      await store.close();
    }
    // when: the first page of a whole replay, as the planner runs it
    const { rows } = await admin(fresh, `EXPLAIN (ANALYZE, FORMAT JSON) ${eventPageSelect(t, '$1', '$2')}`, [
      'unanalysed',
      0,
    ]);
    // then: no node of the plan reads past the page (unbounded, a bitmap scan read all 10,000
    // and sorted them: a whole replay then sorted the rest of the log once a page)
    type PlanNode = { 'Node Type': string; 'Actual Rows': number; Plans?: PlanNode[] };
    const read = (node: PlanNode): number => Math.max(node['Actual Rows'], ...(node.Plans ?? []).map(read));
    const plan = (rows[0] as { 'QUERY PLAN': [{ Plan: PlanNode }] })['QUERY PLAN'][0].Plan;
    expect(read(plan)).toBeLessThanOrEqual(4096);
  });

  it('a consumer that stops after the first page leaves no query of the read running', async () => {
    // given: a log of three pages, read in REPEATABLE READ
    const log = 'stopped';
    await logOf(log, 10_000);
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    const { client, running } = await counted(pool);
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      // when: the consumer takes the first page (the second is asked for before it is handed
      // over) and stops
      let seen = 0;
      for await (const batch of pages({
        client,
        t,
        log,
        where: log,
        after: undefined,
        counter: { bytes: 0 },
      })) {
        seen += batch.length;
        expect(running()).toBe(1);
        break;
      }
      // then: the read ended with its query answered
      expect(seen).toBe(4096);
      expect(running()).toBe(0);
      await client.query('COMMIT');
    } finally {
      client.release();
      await pool.end();
    }
  });

  it('a read that fails on a page waits for the page it asked for before it rejects', async () => {
    // given: a log of 20,000 commands, a snapshot at 18,000; a catch-up after seq 100 on the
    // locked head (READ COMMITTED), the covered events deleted up to 8500 after its first page
    const log = 'failed';
    await logOf(log, 20_000, 18_000);
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    const { client, running } = await counted(pool);
    try {
      const read = await lockedCatchUp(client, log, 100);
      expect((await read.next()).done).toBe(false);
      await admin(url, 'DELETE FROM appendonly.events WHERE log = $1 AND seq <= 8500', [log]);
      // when: the next pages find the gap (the second was read ahead, before the delete; the
      // third, asked for while the second is decoded, starts past the deleted slice, and is
      // full: the fourth is asked for before the third is decoded and found to jump)
      const rest = (async () => {
        for (let page = await read.next(); !page.done; page = await read.next());
      })();
      // then: LOG_COMPACTED, once no query of the read is running
      await expect(rest).rejects.toBeInstanceOf(LogCompactedError);
      expect(running()).toBe(0);
      await client.query('ROLLBACK');
    } finally {
      client.release();
      await pool.end();
    }
  });
});
