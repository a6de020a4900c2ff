import type { PgClientLike, PgPoolLike } from '../../adapters/postgres/driver';
import { tablesOf } from '../../adapters/postgres/schema';
import { HeadWatcher, NOTIFY_MS } from '../../adapters/postgres/watcher';

/** A pool of one fake connection that answers at once and records every NOTIFY's payload and time. */
function recordingPool(): { pool: PgPoolLike; notifies: { seq: number; at: number }[] } {
  const notifies: { seq: number; at: number }[] = [];
  const client = {
    query: async (text: string | { text: string }, values?: unknown[]) => {
      const sql = typeof text === 'string' ? text : text.text;
      if (sql.includes('pg_notify')) notifies.push({ seq: Number(values?.[1]), at: Date.now() });
      if (sql.includes('pg_backend_pid')) return { rows: [{ pid: 1, started: 'now' }], rowCount: 1 };
      return { rows: [], rowCount: 0 };
    },
    release: () => {},
    on: () => client,
    removeListener: () => client,
  } as unknown as PgClientLike;
  return { pool: { connect: async () => client, end: async () => {} }, notifies };
}

/** The NOTIFY after a commit is a transaction of its own: under a stream of commits it is throttled. */
describe('PostgresStore: NOTIFY after commits', () => {
  it('tells a lone commit at once, a stream of them at most once per NOTIFY_MS, and always the last seq', async () => {
    // given: a watcher on a fake connection
    const { pool, notifies } = recordingPool();
    const watcher = new HeadWatcher(pool, tablesOf('appendonly'), 'log');
    try {
      // when: one commit, then a quiet spell
      const first = Date.now();
      watcher.notify(1);
      await new Promise((resolve) => setTimeout(resolve, NOTIFY_MS * 3));
      // then: it was told at once
      expect(notifies).toHaveLength(1);
      expect(notifies[0].seq).toBe(1);
      expect(notifies[0].at - first).toBeLessThan(NOTIFY_MS);
      // when: a commit every millisecond for 10 windows
      const started = Date.now();
      let seq = 1;
      while (Date.now() - started < NOTIFY_MS * 10) {
        watcher.notify(++seq);
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      await new Promise((resolve) => setTimeout(resolve, NOTIFY_MS * 3));
      // then: about one NOTIFY per window, the last seq told last (the spacing is measured from
      // each NOTIFY's start, so two of them may arrive closer than a window on a busy machine:
      // checked on average)
      const stream = notifies.slice(1);
      expect(stream.length).toBeGreaterThan(2);
      expect(stream.length).toBeLessThanOrEqual(12);
      const spacing = (stream[stream.length - 1].at - stream[0].at) / (stream.length - 1);
      expect(spacing).toBeGreaterThanOrEqual(NOTIFY_MS - 1);
      expect(stream[stream.length - 1].seq).toBe(seq);
    } finally {
      watcher.close();
    }
  });

  it('sends nothing after close, even with a commit waiting for the end of its window', async () => {
    // given: a NOTIFY just sent, and a commit waiting for the window to end
    const { pool, notifies } = recordingPool();
    const watcher = new HeadWatcher(pool, tablesOf('appendonly'), 'log');
    watcher.notify(1);
    await new Promise((resolve) => setImmediate(resolve));
    watcher.notify(2);
    // when: the watcher closes
    watcher.close();
    await new Promise((resolve) => setTimeout(resolve, NOTIFY_MS * 3));
    // then: only the first was sent
    expect(notifies.map((n) => n.seq)).toEqual([1]);
  });
});
