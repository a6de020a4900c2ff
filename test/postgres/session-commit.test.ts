import 'reflect-metadata';
import { createApp, silentLogger } from 'appendonly';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { fixtures } from 'appendonly/testing';
import pg from 'pg';
import { admin, usePostgres } from '../support/postgres';
import { classes } from './domain';

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

  it('always: flushes every commit on a session lent with off, and gives the session back', async () => {
    // given: a pool of the user's whose sessions start with synchronous_commit = off
    const size = 6;
    const pool = new pg.Pool({ connectionString: url, max: size, options: '-c synchronous_commit=off' });
    pool.on('error', () => {});
    const before = await walSyncs();
    try {
      // when: an always app appends 100 commands on it, then closes
      const app = await createApp({
        ...classes,
        store: new PostgresStore({ pool, log: 'lent-off', appendfsync: 'always' }),
        logger: silentLogger,
      });
      for (let i = 0; i < 100; i++) await app.execute(new fixtures.Put(`k${i}`, i));
      // then: its appends set nothing in their transactions
      const { rows } = await admin(
        url,
        "SELECT query FROM pg_stat_activity WHERE query LIKE 'WITH%INSERT INTO%' AND pid <> pg_backend_pid()",
      );
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) expect(row.query).not.toContain('set_config');
      await app.close();
      // and every session is back to off
      expect(await settingsOf(pool, size)).toEqual(Array(size).fill('off'));
    } finally {
      await pool.end();
    }
    // and each of the 100 commits waited for a flush
    expect((await walSyncs()) - before).toBeGreaterThanOrEqual(100);
  });

  it('keeps its own through a reload that turns it off, and gives the session back to the configuration', async () => {
    // given: an always app on a pool whose sessions take synchronous_commit from the configuration (on)
    const size = 6;
    const pool = new pg.Pool({ connectionString: url, max: size });
    pool.on('error', () => {});
    try {
      const app = await createApp({
        ...classes,
        store: new PostgresStore({ pool, log: 'reloaded', appendfsync: 'always' }),
        logger: silentLogger,
      });
      await app.execute(new fixtures.Put('first', 0));
      const before = await walSyncs();
      // when: the server's configuration turns synchronous_commit off while the app appends
      await admin(url, 'ALTER SYSTEM SET synchronous_commit = off');
      await admin(url, 'SELECT pg_reload_conf()');
      try {
        for (let i = 0; i < 100; i++) await app.execute(new fixtures.Put(`k${i}`, i));
        await app.close();
        // then: every session follows the configuration again
        expect(await settingsOf(pool, size)).toEqual(Array(size).fill('off'));
      } finally {
        await admin(url, 'ALTER SYSTEM RESET synchronous_commit');
        await admin(url, 'SELECT pg_reload_conf()');
      }
      await pool.end();
      // and each of the 100 commits still waited for a flush
      expect((await walSyncs()) - before).toBeGreaterThanOrEqual(100);
    } finally {
      await pool.end().catch(() => {});
    }
  });

  it('gives back a value the session had SET', async () => {
    // given: a pool whose every session was SET to remote_write before the store took one
    const size = 6;
    const pool = new pg.Pool({ connectionString: url, max: size });
    pool.on('error', () => {});
    try {
      const clients = await Promise.all(Array.from({ length: size }, () => pool.connect()));
      for (const c of clients) await c.query('SET synchronous_commit = remote_write');
      for (const c of clients) c.release();
      // when: an always app appends on it, then closes
      const app = await createApp({
        ...classes,
        store: new PostgresStore({ pool, log: 'session-set', appendfsync: 'always' }),
        logger: silentLogger,
      });
      for (let i = 0; i < 10; i++) await app.execute(new fixtures.Put(`k${i}`, i));
      await app.close();
      // then: every session is back to remote_write
      expect(await settingsOf(pool, size)).toEqual(Array(size).fill('remote_write'));
    } finally {
      await pool.end();
    }
  });
});
