import type { App } from 'appendonly';
import { fixtures } from 'appendonly/testing';
import pg from 'pg';
import { admin, usePostgres } from '../support/postgres';
import { eventually, useApps } from './helpers';

/**
 * A contended append under `always` commits in the head lock's transaction without waiting for
 * the WAL flush, then waits for it (the flush barrier) before it is acknowledged. Seen from
 * outside with a synchronous standby that never connects: no flush ever completes, so no commit
 * that waits for one can return.
 */
describe('PostgresStore: a contended append flushes outside the head lock', () => {
  const server = usePostgres({ local: true });
  const open = useApps();
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });

  it('is acknowledged only once durable, and another instance reports it only then', async () => {
    // given: A (always) deciding in turns because B (everysec: its commits never wait) keeps
    // writing, and C (always) listening on events$
    const log = 'flush';
    const a = await open(url, log, 'always');
    const b = await open(url, log, 'everysec');
    const c = await open(url, log, 'always');
    const reported: string[] = [];
    const seqs: number[] = [];
    c.app.events$.subscribe((e) => {
      reported.push(String((e.data as { key: string }).key));
      seqs.push(e.seq);
    });
    const writing = keepWriting(b.app);
    const probes: pg.Client[] = [];
    try {
      for (let i = 0; a.store.stats().conflicts === 0; i++) {
        await a.app.execute(new fixtures.Put(`a${i}`, i));
        if (i > 2000) throw new Error('A never met B on the head');
      }
      // when: no flush can complete, and A decides a command on the contended log
      probes.push(...(await noFlushCompletes()));
      const acked = a.app.execute(new fixtures.Put('decided', 1)).then(() => true);
      // then: it commits (C reads and applies it, and so do the commands B goes on writing) …
      await eventually(async () => {
        await c.app.sync();
        return c.app.state.get('decided') === 1;
      });
      // … but A does not acknowledge it, and C does not report it (nor what B wrote after it)
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await Promise.race([acked, Promise.resolve(false)])).toBe(false);
      expect(reported).not.toContain('decided');
      // when the WAL can be flushed again: A acknowledges, and C reports it, in seq order
      await standby('');
      await expect(acked).resolves.toBe(true);
      await eventually(() => reported.includes('decided'));
    } finally {
      await standby('');
      await writing.stop();
      for (const probe of probes) await probe.end().catch(() => {});
    }
    // and C reported every command once, in seq order, without a gap, up to the head
    await c.app.sync();
    await eventually(() => seqs.length === c.app.stats().lastSeq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
  }, 60_000);

  /** Sets `synchronous_standby_names` (a standby that never connects: no sync commit returns). */
  async function standby(names: string): Promise<void> {
    await admin(url, `ALTER SYSTEM SET synchronous_standby_names = '${names}'`);
    await admin(url, 'SELECT pg_reload_conf()');
  }

  /** Sets a standby that never connects, and waits until a commit that waits for it hangs. */
  async function noFlushCompletes(): Promise<pg.Client[]> {
    await standby('ghost');
    const hung: pg.Client[] = [];
    for (let i = 0; i < 100; i++) {
      const client = new pg.Client({ connectionString: url });
      // ended after the test, or cut by the server's stop: nothing to report either way
      client.on('error', () => {});
      await client.connect();
      hung.push(client);
      const done = client
        .query("SELECT pg_logical_emit_message(true, 'probe', '')")
        .then(() => true)
        .catch(() => true);
      const timedOut = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 200));
      if (!(await Promise.race([done, timedOut]))) return hung;
    }
    throw new Error('synchronous_standby_names never took effect');
  }
});

/** B's writer: a command every 2 ms until `stop`. */
function keepWriting(app: App): { stop(): Promise<void> } {
  let running = true;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      await app.execute(new fixtures.Put(`b${i}`, i));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
    },
  };
}
