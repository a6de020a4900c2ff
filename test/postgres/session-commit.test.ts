import 'reflect-metadata';
import { type App, createApp, type FsyncPolicy, PersistenceError, silentLogger } from 'appendonly';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { fixtures } from 'appendonly/testing';
import pg from 'pg';
import type { PgClientLike } from '../../adapters/postgres/driver';
import { admin, usePostgres } from '../support/postgres';
import { classes } from './domain';
import type { Opened } from './helpers';

/** The user's pools here: the store holds 2 connections and checks a third out per replay. */
const POOL_SIZE = 6;

/**
 * The writer's session is pinned to the policy's `synchronous_commit` (so that its appends need
 * not set it in each transaction), whatever the session was lent with, whatever the server's
 * configuration turns to meanwhile; and a pool the user owns gets its sessions back as it lent
 * them. Its own cluster: the test changes the server's configuration.
 */
describe('PostgresStore: the writer session commits as the policy says', () => {
  const server = usePostgres({ local: true });
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });

  /** WAL flushes so far: a backend's counts reach pg_stat_wal when it exits, so end its pool first. */
  const walSyncs = async (): Promise<number> => {
    await new Promise((resolve) => setTimeout(resolve, 200));
    return Number((await admin(url, 'SELECT wal_sync FROM pg_stat_wal')).rows[0].wal_sync);
  };

  /** Every connection of `pool` checked out at once: what `SHOW synchronous_commit` says on each. */
  const settingsOf = async (pool: pg.Pool, size: number): Promise<string[]> => {
    const clients = await Promise.all(Array.from({ length: size }, () => pool.connect()));
    try {
      return await Promise.all(
        clients.map(async (c) => (await c.query('SHOW synchronous_commit')).rows[0].synchronous_commit),
      );
    } finally {
      for (const c of clients) c.release();
    }
  };

  /** The writer's own connection (the store's internals): `first` run on it, then its server process and its setting. */
  const writerSession = async (
    store: PostgresStore,
    first?: string,
  ): Promise<{ pid: number; setting: string }> => {
    const writer = (store as unknown as { writer: { connection(): Promise<{ client: PgClientLike }> } })
      .writer;
    const { client } = await writer.connection();
    if (first !== undefined) await client.query(first);
    const { rows } = await client.query(
      "SELECT pg_backend_pid() AS pid, current_setting('synchronous_commit') AS setting",
    );
    const row = rows[0] as { pid: number; setting: string };
    return { pid: Number(row.pid), setting: row.setting };
  };

  /** `command`, sent again while the app refuses for a lost connection (it reconnects by itself). */
  const executeRetrying = async (app: App, command: object): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        await app.execute(command);
        return;
      } catch (err) {
        if (!(err instanceof PersistenceError) || attempt >= 200) throw err;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  };

  /**
   * A pool of the user's (`max` 6), given to `work` with a way to open apps on it (`always` by default); the
   * apps are closed (if the test did not) before the pool is ended, also when the test fails.
   */
  const withPool = async (
    options: pg.PoolConfig,
    work: (pool: pg.Pool, open: (log: string, policy?: FsyncPolicy) => Promise<Opened>) => Promise<void>,
  ): Promise<void> => {
    const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE, ...options });
    pool.on('error', () => {});
    const apps: App[] = [];
    const open = async (log: string, policy: FsyncPolicy = 'always'): Promise<Opened> => {
      const store = new PostgresStore({ pool, log, appendfsync: policy });
      const app = await createApp({ ...classes, store, logger: silentLogger });
      apps.push(app);
      return { app, store };
    };
    try {
      await work(pool, open);
    } finally {
      for (const app of apps) await app.close().catch(() => {});
      await pool.end();
    }
  };

  it('always: flushes every commit on a session lent with off, and gives the session back', async () => {
    const before = await walSyncs();
    // given: a pool of the user's whose sessions start with synchronous_commit = off
    await withPool({ options: '-c synchronous_commit=off' }, async (pool, open) => {
      // when: an always app appends 100 commands on it, its writer's connection lost (its server
      // process ended) and taken again halfway, then closes
      const { app, store } = await open('lent-off');
      for (let i = 0; i < 50; i++) await app.execute(new fixtures.Put(`k${i}`, i));
      await admin(url, `SELECT pg_terminate_backend(${(await writerSession(store)).pid})`);
      for (let i = 50; i < 100; i++) await executeRetrying(app, new fixtures.Put(`k${i}`, i));
      // then: the writer's session, the new one too, holds on
      expect((await writerSession(store)).setting).toBe('on');
      await app.close();
      // and every session is back to off
      expect(await settingsOf(pool, POOL_SIZE)).toEqual(Array(POOL_SIZE).fill('off'));
    });
    // and each of the 100 commits waited for a flush
    expect((await walSyncs()) - before).toBeGreaterThanOrEqual(100);
  });

  it('keeps its own through a reload that turns it off, and gives the session back to the configuration', async () => {
    let before = 0;
    // given: an always app on a pool whose sessions take synchronous_commit from the configuration (on)
    await withPool({}, async (pool, open) => {
      const { app } = await open('reloaded');
      await app.execute(new fixtures.Put('first', 0));
      before = await walSyncs();
      // when: the server's configuration turns synchronous_commit off while the app appends
      await admin(url, 'ALTER SYSTEM SET synchronous_commit = off');
      try {
        await admin(url, 'SELECT pg_reload_conf()');
        for (let i = 0; i < 100; i++) await app.execute(new fixtures.Put(`k${i}`, i));
        await app.close();
        // then: every session follows the configuration again
        expect(await settingsOf(pool, POOL_SIZE)).toEqual(Array(POOL_SIZE).fill('off'));
      } finally {
        await admin(url, 'ALTER SYSTEM RESET synchronous_commit');
        await admin(url, 'SELECT pg_reload_conf()');
      }
    });
    // and each of the 100 commits still waited for a flush
    expect((await walSyncs()) - before).toBeGreaterThanOrEqual(100);
  });

  it('an append checks the session it runs on: set off behind the store, it still flushes', async () => {
    let before = 0;
    await withPool({}, async (_pool, open) => {
      // given: an always app whose writer's session is SET to off behind the store's back (as a
      // pooler in transaction mode would hand its appends another session)
      const { app, store } = await open('behind');
      await app.execute(new fixtures.Put('first', 0));
      await writerSession(store, 'SET synchronous_commit = off');
      expect((await writerSession(store)).setting).toBe('off');
      before = await walSyncs();
      // when: it appends 100 commands
      for (let i = 0; i < 100; i++) await app.execute(new fixtures.Put(`k${i}`, i));
    });
    // then: each of them waited for a flush
    expect((await walSyncs()) - before).toBeGreaterThanOrEqual(100);
  });

  it('everysec: leaves the session as lent, each commit setting off for itself', async () => {
    let before = 0;
    await withPool({}, async (pool, open) => {
      // given: an everysec app on a pool whose sessions are on
      const { app, store } = await open('lent-on', 'everysec');
      await app.execute(new fixtures.Put('first', 0));
      before = await walSyncs();
      // when: it appends 100 commands
      for (let i = 0; i < 100; i++) await app.execute(new fixtures.Put(`k${i}`, i));
      // then: its writer's session is still on (never lowered for others), and after close all are
      expect((await writerSession(store)).setting).toBe('on');
      await app.close();
      expect(await settingsOf(pool, POOL_SIZE)).toEqual(Array(POOL_SIZE).fill('on'));
    });
    // and its commits did not wait for a flush each
    expect((await walSyncs()) - before).toBeLessThan(30);
  });

  it('gives back a value the session had SET', async () => {
    // given: a pool whose every session was SET to remote_write before the store took one
    await withPool({}, async (pool, open) => {
      const clients = await Promise.all(Array.from({ length: POOL_SIZE }, () => pool.connect()));
      for (const c of clients) await c.query('SET synchronous_commit = remote_write');
      for (const c of clients) c.release();
      // when: an always app appends on it, then closes
      const { app } = await open('session-set');
      for (let i = 0; i < 10; i++) await app.execute(new fixtures.Put(`k${i}`, i));
      await app.close();
      // then: every session is back to remote_write
      expect(await settingsOf(pool, POOL_SIZE)).toEqual(Array(POOL_SIZE).fill('remote_write'));
    });
  });
});
