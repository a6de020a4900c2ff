import { fixtures } from 'appendonly/testing';
import { admin, usePostgres } from '../support/postgres';
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
});
