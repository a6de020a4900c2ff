import type { App } from 'appendonly';
import { fixtures } from 'appendonly/testing';
import pg from 'pg';
import { recordingLogger } from '../support/helpers';
import { admin, usePostgres } from '../support/postgres';
import { eventually, loseCommitsAfter, stateOf, useApps } from './helpers';

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
    // given: A (always) deciding in turns since B (everysec: its commits never wait) keeps
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
    const others = keepWriting(b.app, 'b');
    const probes: pg.Client[] = [];
    let own: Writing | null = null;
    try {
      await eventually(async () => {
        await a.app.execute(new fixtures.Put('a', 0));
        return a.store.stats().conflicts > 0;
      });
      // when: A goes on writing (in turns: each one reads what B wrote) while no flush can
      // complete any more
      own = keepWriting(a.app, 'a');
      probes.push(...(await noFlushCompletes()));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const waiting = own.waiting();
      expect(waiting).toBeDefined();
      const key = waiting!;
      // then: A's command in flight committed (C reads and applies it) …
      await eventually(async () => {
        await c.app.sync();
        return c.app.state.get(key) !== undefined;
      });
      // … but A does not acknowledge it, and C does not report it
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(own.waiting()).toBe(key);
      expect(reported).not.toContain(key);
      // when the WAL can be flushed again: A acknowledges it, and C reports it
      await standby('');
      await eventually(() => own!.waiting() !== key);
      await eventually(() => reported.includes(key));
    } finally {
      await standby('');
      await own?.stop();
      await others.stop();
      for (const probe of probes) await probe.end().catch(() => {});
    }
    // and C reported every command once, in seq order, without a gap, up to the head
    await c.app.sync();
    await eventually(() => seqs.length === c.app.stats().lastSeq);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
  }, 60_000);

  /**
   * Another writer's command, applied by X while no flush completes, then the server restarted
   * (its WAL flushed then, or the command lost by hand, as a crash before the flush loses it):
   * resolves with what X reported on events$ and its log lines, once X follows the log again.
   */
  async function restartedBeforeTheFlush(log: string, lost: boolean, follow: 'watch' | 'sync') {
    const xLog = recordingLogger();
    const x = await open(url, log, 'always', xLog);
    const y = await open(url, log, 'no');
    const reported: string[] = [];
    x.app.events$.subscribe((e) => reported.push(String((e.data as { key: string }).key)));
    const probes = await noFlushCompletes();
    try {
      // Y's command commits without waiting for the flush; X applies it and holds its report
      await y.app.execute(new fixtures.Put('y', 1));
      await x.app.sync();
      expect(stateOf(x.app)).toEqual({ y: 1 });
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(reported).toEqual([]);
      if (lost) await loseCommitsAfter(url, log, 0);
      // the standby is dropped at the restart only: no flush completes on the old run
      await admin(url, "ALTER SYSTEM SET synchronous_standby_names = ''");
      await server().restart();
    } finally {
      for (const probe of probes) await probe.end().catch(() => {});
    }
    // X follows the log by itself (its watcher), or when asked (sync)
    await eventually(async () => {
      if (follow === 'sync') await x.app.sync().catch(() => {});
      return JSON.stringify(stateOf(x.app)) === JSON.stringify(lost ? {} : { y: 1 });
    }, 20_000);
    return { reported, lines: xLog.lines };
  }

  it.each(['watch', 'sync'] as const)(
    'a command applied before a restart lost it is never reported, and the state reloads (%s)',
    async (follow) => {
      // when: the restart lost Y's command, which X had applied before any flush completed
      const { reported, lines } = await restartedBeforeTheFlush(`restart-lost-${follow}`, true, follow);
      // then: X follows the log as it is (above), and once its barrier is answered by the new
      // server, which proves nothing of it, it says it did not report it, and never does
      await eventually(() =>
        lines.some((l) =>
          /warn: 1 command\(s\) of other writers, seq 1 to 1, applied but not reported/.test(l),
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(reported).toEqual([]);
    },
    60_000,
  );

  it('a command applied before a restart that kept it is reported once', async () => {
    // when: the server restarted with Y's command in its log
    const { reported } = await restartedBeforeTheFlush('restart-kept', false, 'sync');
    // then: X reported it, once
    await eventually(() => reported.length > 0);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(reported).toEqual(['y']);
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
      // A second without an answer: far beyond any flush of a busy machine, so it waits for the standby.
      const timedOut = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 1000));
      if (!(await Promise.race([done, timedOut]))) return hung;
    }
    throw new Error('synchronous_standby_names never took effect');
  }
});

interface Writing {
  /** The key of the command sent and not yet acknowledged, if any. */
  waiting(): string | undefined;
  stop(): Promise<void>;
}

/** A writer: a command every 2 ms (keys `prefix0`, `prefix1`, …) until `stop`. */
function keepWriting(app: App, prefix: string): Writing {
  let running = true;
  let waiting: string | undefined;
  const loop = (async () => {
    for (let i = 0; running; i++) {
      waiting = `${prefix}${i}`;
      await app.execute(new fixtures.Put(waiting, i));
      waiting = undefined;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  return {
    waiting: () => waiting,
    stop: async () => {
      running = false;
      await loop;
    },
  };
}
