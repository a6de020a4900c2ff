import {
  CorruptLogError,
  type EventGroup,
  LogCompactedError,
  LogLostError,
  PersistenceError,
} from 'appendonly';
import type { PostgresStore } from 'appendonly/adapters/postgres';
import pg from 'pg';
import { catchUpInSnapshot, type LockedRead, pages } from '../../adapters/postgres/replay';
import { tablesOf } from '../../adapters/postgres/schema';
import { type ReplayedRecord, recordingSink } from '../../src/store/replay-sink';
import { admin, usePostgres } from '../support/postgres';
import { bareStore, loseCommitsAfter, snapshotAtStore } from './helpers';

/**
 * A follower's catch-up (`replay({ after })` on an instance that is not appending, as the App
 * runs it on every commit of the others): one round trip while what it reads fits in a page, the
 * rest in one snapshot when it does not. Either way it reads each command after `after` once, in
 * order, and refuses what the log can no longer give.
 */
describe('PostgresStore: a follower catches up', () => {
  const server = usePostgres();
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });

  /** What each test opened (stores, pools), closed after it, the last opened first. */
  const opened: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of opened.splice(0).reverse()) await close();
  });

  /** A store on `log`, closed after the test; with `snapshotSeq`, one that compacts at that seq. */
  async function storeOn(log: string, snapshotSeq?: number): Promise<PostgresStore> {
    const store =
      snapshotSeq === undefined ? await bareStore(url, log) : await snapshotAtStore(url, log, snapshotSeq);
    opened.push(() => store.close());
    return store;
  }

  /** A pool of one connection, ended after the test. */
  function onePool(): pg.Pool {
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    opened.push(() => pool.end());
    return pool;
  }

  const command = (seq: number): EventGroup => ({
    seq,
    time: 0,
    events: [{ type: 'Set', data: { key: 'k', value: seq } }],
  });

  /** Appends commands 1 to `n`, all in flight at once (batched as an instance batches them). */
  const writeCommands = (store: { append(group: EventGroup): Promise<void> }, n: number) =>
    Promise.all(Array.from({ length: n }, (_, i) => store.append(command(i + 1))));

  /**
   * `commands` commands on `log`, compacted at `at`, the events the snapshot covers deleted (as
   * a compaction without history does); the writer and a store that follows it, opened before.
   */
  const compactedLog = async (log: string, commands: number, at: number) => {
    const writer = await storeOn(log, at);
    const follower = await storeOn(log);
    await writeCommands(writer, commands);
    expect(await writer.compact()).toMatchObject({ seq: at });
    await admin(url, 'DELETE FROM appendonly.events WHERE log = $1 AND seq <= $2', [log, at]);
    return { writer, follower };
  };

  /** The seqs of the commands a replay handed over, in the order it handed them. */
  const seqsOf = (records: readonly ReplayedRecord[]) =>
    records.map((r) => (r.kind === 'group' ? r.seq : `${r.kind} record`));

  it.each([
    { commands: 20, after: 5, what: 'a few commands, in the first page' },
    { commands: 10_000, after: 100, what: 'more than a page' },
  ])('reads every command after its position once, in order ($what)', async ({ commands, after }) => {
    // given: a log of `commands` commands, written by one instance
    const log = `follow-${commands}`;
    const writer = await storeOn(log);
    const follower = await storeOn(log);
    await writeCommands(writer, commands);
    // when: another instance catches up from `after`
    const records: ReplayedRecord[] = [];
    const end = await follower.replay(recordingSink(records), { after });
    // then: the commands after it, each once, in order, up to the head
    expect(seqsOf(records)).toEqual(Array.from({ length: commands - after }, (_, i) => after + 1 + i));
    expect(end.lastSeq).toBe(commands);
  });

  it('behind a compaction that deleted what it asks for: LOG_COMPACTED; from the snapshot on: the rest', async () => {
    // given: 20 commands, compacted at seq 15, the events it covers deleted
    const { follower } = await compactedLog('follow-compacted', 20, 15);
    // when: a follower that applied seq 5 catches up, then one that applied seq 15
    const behind = follower.replay(recordingSink([]), { after: 5 });
    // then: the first is told to reload (from the snapshot), the second gets seqs 16 to 20
    await expect(behind).rejects.toBeInstanceOf(LogCompactedError);
    const records: ReplayedRecord[] = [];
    const atSnapshot = await follower.replay(recordingSink(records), { after: 15 });
    expect(seqsOf(records)).toEqual([16, 17, 18, 19, 20]);
    expect(atSnapshot.lastSeq).toBe(20);
  });

  it('more than a page is read in one snapshot: a compaction deleting meanwhile is not seen', async () => {
    // given: 10,000 commands and a snapshot switched in at seq 9000, its covered events kept
    const log = 'follow-snapshot';
    const writer = await storeOn(log, 9000);
    const pool = onePool();
    await writeCommands(writer, 10_000);
    expect(await writer.compact()).toMatchObject({ seq: 9000 });
    // when: a catch-up from seq 100, which finds its first page full, reads the rest page by
    // page, and after the first the covered events go up to seq 8500 (as deleteCovered does)
    let seen = 0;
    let reread = false;
    await catchUpInSnapshot(pool, tablesOf('appendonly'), log, 100, log, async (client, prefetched) => {
      reread = prefetched === undefined;
      const read = pages({
        client,
        t: tablesOf('appendonly'),
        log,
        where: log,
        after: 100,
        counter: { bytes: 0 },
      });
      for await (const batch of read) {
        if (seen === 0)
          await admin(url, 'DELETE FROM appendonly.events WHERE log = $1 AND seq <= 8500', [log]);
        seen += batch.length;
      }
    });
    // then: read again in a transaction of its own, it sees the log as it was: every command
    expect(reread).toBe(true);
    expect(seen).toBe(9900);
  });

  it('a few commands come in the one query: the head and the page, and no second read', async () => {
    // given: 20 commands
    const log = 'follow-one-trip';
    const writer = await storeOn(log);
    const pool = onePool();
    await writeCommands(writer, 20);
    // when: a catch-up from seq 5
    let given: LockedRead | undefined;
    await catchUpInSnapshot(pool, tablesOf('appendonly'), log, 5, log, async (_client, prefetched) => {
      given = prefetched;
    });
    // then: what it hands over is the log's head and the 15 rows after seq 5, already read
    expect(given?.head.seq).toBe(20);
    expect(given?.page.map((row) => Number((row as string[])[0]))).toEqual(
      Array.from({ length: 15 }, (_, i) => i + 6),
    );
  });

  it.each([
    { what: 'at the head', log: 'follow-at-head', commands: 20, after: 20, head: 20 },
    { what: 'on a log never appended to', log: 'follow-never', commands: 0, after: 0, head: 0 },
  ])('$what, the one query hands over the head and no rows', async ({ log, commands, after, head }) => {
    // given: `commands` commands on the log (none: no store ever opened it, so no head row)
    const writer = await storeOn(commands === 0 ? 'follow-other' : log);
    await writeCommands(writer, commands);
    // when
    let given: LockedRead | undefined;
    await catchUpInSnapshot(
      onePool(),
      tablesOf('appendonly'),
      log,
      after,
      log,
      async (_client, prefetched) => {
        given = prefetched;
      },
    );
    // then
    expect(given?.head.seq).toBe(head);
    expect(given?.page).toEqual([]);
  });

  it('a first page that ends before the head (what it asks for compacted away) is read again', async () => {
    // given: 5,000 commands, compacted at seq 4,500, the events it covers deleted: none is left
    // in the page after seq 5
    const log = 'follow-page-compacted';
    const { follower } = await compactedLog(log, 5000, 4500);
    // when: a catch-up from seq 5
    let reread = false;
    await catchUpInSnapshot(onePool(), tablesOf('appendonly'), log, 5, log, async (_client, prefetched) => {
      reread = prefetched === undefined;
    });
    // then: not taken as caught up at seq 5: read again, and a follower there is told to reload
    expect(reread).toBe(true);
    await expect(follower.replay(recordingSink([]), { after: 5 })).rejects.toBeInstanceOf(LogCompactedError);
  });

  it.each([
    { what: 'a catch-up', after: 10 as number | undefined },
    { what: 'a whole replay', after: undefined },
  ])(
    'events that end before the head row (rows deleted by hand): $what refuses the log as corrupt',
    async ({ after }) => {
      // given: 20 commands, the last two rows deleted by hand, the head row left at seq 20
      const log = `follow-short-${after ?? 'all'}`;
      const writer = await storeOn(log);
      const follower = await storeOn(log);
      await writeCommands(writer, 20);
      await admin(url, 'DELETE FROM appendonly.events WHERE log = $1 AND seq > 18', [log]);
      // when
      const read = follower.replay(recordingSink([]), after === undefined ? undefined : { after });
      // then: never taken as caught up at seq 18
      await expect(read).rejects.toBeInstanceOf(CorruptLogError);
      await expect(read).rejects.toThrow('the events end at seq 18, the head row is at seq 20');
    },
  );

  it('a failed catch-up, in its query or in what reads it, leaves the connection fit for the next', async () => {
    // given: 20 commands, and a pool of one connection
    const log = 'follow-failed';
    const writer = await storeOn(log);
    const pool = onePool();
    const t = tablesOf('appendonly');
    await writeCommands(writer, 20);
    // when: a catch-up whose query fails inside its transaction (a table that is not there),
    // then one whose reader throws after the query's COMMIT
    const missing = catchUpInSnapshot(pool, tablesOf('missing'), log, 5, log, async () => {});
    await expect(missing).rejects.toBeInstanceOf(PersistenceError);
    const thrown = catchUpInSnapshot(pool, t, log, 5, log, async () => {
      throw new Error('the sink refused');
    });
    await expect(thrown).rejects.toThrow('the sink refused');
    // then: the next catch-up on that connection reads as usual (no transaction left aborted)
    let head = 0;
    await catchUpInSnapshot(pool, t, log, 5, log, async (_client, prefetched) => {
      head = prefetched?.head.seq ?? -1;
    });
    expect(head).toBe(20);
  });

  it('past the end of a log that lost commits (a crash under synchronous_commit = off): LOG_LOST', async () => {
    // given: 20 commands, of which the last 8 are lost as a database crash loses them
    const log = 'follow-lost';
    const writer = await storeOn(log);
    const follower = await storeOn(log);
    await writeCommands(writer, 20);
    await loseCommitsAfter(url, log, 12);
    // when: a follower that had applied seq 15 catches up
    const caughtUp = follower.replay(recordingSink([]), { after: 15 });
    // then: it is told that the log no longer holds what it applied (the App reloads)
    await expect(caughtUp).rejects.toBeInstanceOf(LogLostError);
  });
});
