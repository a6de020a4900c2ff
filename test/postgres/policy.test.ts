import { createApp, silentLogger } from 'appendonly';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { fixtures } from 'appendonly/testing';
import pg from 'pg';
import { admin, usePostgres } from '../support/postgres';
import { classes } from './domain';
import { useApps } from './helpers';

/**
 * The policies, seen from PostgreSQL's own counters: `always` waits for a WAL flush at every
 * commit (synchronous_commit = on), `everysec` and `no` do not (off). `pg_stat_wal.wal_sync`
 * counts the flushes; a backend's counts are flushed to it when it exits, so the app is closed
 * before they are read.
 */
describe('PostgresStore: appendfsync ↔ synchronous_commit', () => {
  const server = usePostgres();
  const open = useApps();
  let url = '';
  beforeAll(async () => {
    url = await server().createDatabase();
  });

  const walSyncs = async (): Promise<number> => {
    await new Promise((resolve) => setTimeout(resolve, 200)); // the exiting backends report
    return Number((await admin(url, 'SELECT wal_sync FROM pg_stat_wal')).rows[0].wal_sync);
  };

  const syncsFor = async (policy: 'always' | 'everysec' | 'no'): Promise<number> => {
    const before = await walSyncs();
    const { app } = await open(url, `policy-${policy}`, policy);
    for (let i = 0; i < 100; i++) await app.execute(new fixtures.Put(`k${i}`, i));
    await app.close();
    return (await walSyncs()) - before;
  };

  it('always: a WAL flush per commit', async () => {
    expect(await syncsFor('always')).toBeGreaterThanOrEqual(100);
  });

  it.each(['everysec', 'no'] as const)('%s: commits do not wait for a flush', async (policy) => {
    expect(await syncsFor(policy)).toBeLessThan(30);
  });

  it('always: a WAL flush per commit where the database’s default is off', async () => {
    // given: a database whose sessions start with synchronous_commit = off
    const off = await server().createDatabase();
    const name = new URL(off).pathname.slice(1);
    await admin(off, `ALTER DATABASE ${name} SET synchronous_commit = off`);
    const before = Number((await admin(off, 'SELECT wal_sync FROM pg_stat_wal')).rows[0].wal_sync);
    // when: 100 commands under always
    const { app } = await open(off, 'policy-always-default-off', 'always');
    for (let i = 0; i < 100; i++) await app.execute(new fixtures.Put(`k${i}`, i));
    await app.close();
    // then: each waited for its flush (the policy is the session's, set by the store)
    await new Promise((resolve) => setTimeout(resolve, 200));
    const after = Number((await admin(off, 'SELECT wal_sync FROM pg_stat_wal')).rows[0].wal_sync);
    expect(after - before).toBeGreaterThanOrEqual(100);
  });

  it('a pool of the user’s gets no connection back with the store’s session setting', async () => {
    // given: the user's pool, a store under everysec on it (its writer's session: off)
    const pool = new pg.Pool({ connectionString: url, max: 8 });
    pool.on('error', () => {});
    try {
      const store = new PostgresStore({ pool, log: 'policy-user-pool', appendfsync: 'everysec' });
      const app = await createApp({ ...classes, store, logger: silentLogger });
      for (let i = 0; i < 10; i++) await app.execute(new fixtures.Put(`k${i}`, i));
      // when: the app closes
      await app.close();
      // then: every connection the pool hands out has the server's setting
      const clients = await Promise.all(Array.from({ length: 8 }, () => pool.connect()));
      const settings = await Promise.all(
        clients.map(async (c) => (await c.query('SHOW synchronous_commit')).rows[0].synchronous_commit),
      );
      for (const c of clients) c.release();
      expect(settings).toEqual(Array(8).fill('on'));
    } finally {
      await pool.end();
    }
  });
});
