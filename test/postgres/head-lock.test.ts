import pg from 'pg';
import { HeadLock } from '../../adapters/postgres/head-lock';
import { tablesOf } from '../../adapters/postgres/schema';
import { usePostgres } from '../support/postgres';
import { bareStore } from './helpers';

/**
 * The head row's lock, taken by a catch-up on the writer's connection for the append that
 * follows it: that append runs in the lock's transaction only on the connection that holds it.
 */
describe('PostgresStore: the head lock', () => {
  const server = usePostgres();
  let url = '';
  let pool: pg.Pool;
  const clients: pg.PoolClient[] = [];
  beforeAll(async () => {
    url = await server().createDatabase();
    await (await bareStore(url, 'locked')).close(); // the schema and the log's head row
    pool = new pg.Pool({ connectionString: url, max: 4 });
    pool.on('error', () => {});
  });
  afterAll(() => pool.end());
  afterEach(async () => {
    for (const c of clients.splice(0)) c.release(true);
  });
  const connect = async () => {
    const client = await pool.connect();
    clients.push(client);
    return client;
  };
  /** Whether another session can lock the head row within a second. */
  const headFree = async () => {
    const other = await pool.connect();
    await other.query('BEGIN');
    await other.query("SET LOCAL lock_timeout = '1s'");
    const free = await other.query("SELECT 1 FROM appendonly.heads WHERE log = 'locked' FOR UPDATE").then(
      () => true,
      () => false,
    );
    await other.query('ROLLBACK').catch(() => {});
    other.release();
    return free;
  };

  it('is claimed on the connection that took it, and dropped when the writer has another', async () => {
    // given: the lock taken on connection A (the head row locked, A's transaction open)
    const lock = new HeadLock(tablesOf('appendonly'), 'locked');
    const a = await connect();
    await lock.take(a, 0);
    expect(await headFree()).toBe(false);
    // when: the writer, now on connection B (A lost and replaced), claims it
    const b = await connect();
    // then: refused, and A's transaction is ended: the head is free for every writer
    expect(lock.claim(b)).toBe(false);
    expect(await headFree()).toBe(true);
    expect(lock.claim(b)).toBe(false);
    // and taken again on B, it is B's to claim: B's transaction holds the row
    await lock.take(b, 0);
    expect(lock.claim(b)).toBe(true);
    expect(await headFree()).toBe(false);
    await b.query('ROLLBACK');
    expect(await headFree()).toBe(true);
  });

  it('ends its transaction before the next lock is asked for on the same connection', async () => {
    // given: the lock taken on A after seq 0, then asked for after seq 5 (nothing kept for that)
    const lock = new HeadLock(tablesOf('appendonly'), 'locked');
    const a = await connect();
    await lock.take(a, 0);
    const overlaps = sentWhileBusy(a);
    // when: it is taken again on A
    await lock.take(a, 5);
    // then: the first transaction's COMMIT was answered before the lock's query went (pg 8.23
    // queues a query sent meanwhile with a deprecation warning; pg 9 refuses it)
    expect(overlaps).toEqual([]);
    expect(lock.claim(a)).toBe(true);
    await a.query('ROLLBACK');
    expect(await headFree()).toBe(true);
  });
});

/** The queries sent on `client` while another was still under way on it (pg answers in order). */
function sentWhileBusy(client: pg.PoolClient): string[] {
  const overlaps: string[] = [];
  let busy = 0;
  const query = client.query.bind(client) as (config: unknown) => Promise<unknown>;
  (client as unknown as { query: (config: unknown) => Promise<unknown> }).query = (config) => {
    if (busy > 0)
      overlaps.push(typeof config === 'string' ? config : String((config as { text: string }).text));
    busy++;
    const answer = query(config);
    answer.then(
      () => busy--,
      () => busy--,
    );
    return answer;
  };
  return overlaps;
}
