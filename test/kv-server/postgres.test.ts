import { type PostgresLog, storeFactory } from '../../examples/kv-server/store';
import { usePostgres } from '../support/postgres';
import { redisCli, type Running, spawnServer, startServer } from './helpers';

/*
 * `--store postgres`: servers on one database and one `--log` share one log. A SET on one is
 * applied by the others once they follow (the App's watch: NOTIFY, or the head poll), so a GET
 * on another server is polled for, with a deadline.
 */

/** Polls `read` until it returns `want` (bounded: 10 s), and returns what it read last. */
async function eventually(read: () => Promise<string>, want: string, ms = 10_000): Promise<string> {
  const deadline = Date.now() + ms;
  let got = await read();
  while (got !== want && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    got = await read();
  }
  return got;
}

describe('kv-server --store postgres', () => {
  const server = usePostgres();
  let url = '';
  const running: Running[] = [];
  beforeAll(async () => {
    url = await server().createDatabase();
  });
  afterEach(async () => {
    for (const r of running.splice(0)) await r.stop().catch(() => {});
  });

  const start = async (postgres: PostgresLog) => {
    const r = await startServer({
      kind: 'postgres',
      location: `postgres ${postgres.log}`,
      openStore: storeFactory('postgres', '', undefined, postgres),
    });
    running.push(r);
    return r;
  };

  it('two servers on two ports share one log: a SET on one is read by a GET on the other', async () => {
    const a = await start({ connectionString: url, log: 'shared' });
    const b = await start({ connectionString: url, log: 'shared' });
    expect(a.port).not.toBe(b.port);

    expect((await redisCli(a.port, ['SET', 'greeting', 'hello'])).trim()).toBe('OK');
    expect(await eventually(() => redisCli(b.port, ['GET', 'greeting']).then((s) => s.trim()), 'hello')).toBe(
      'hello',
    );

    // and the other way, overwriting: both servers end on the last write
    expect((await redisCli(b.port, ['SET', 'greeting', 'bye'])).trim()).toBe('OK');
    expect((await redisCli(b.port, ['INCR', 'n'])).trim()).toBe('1');
    expect(await eventually(() => redisCli(a.port, ['GET', 'greeting']).then((s) => s.trim()), 'bye')).toBe(
      'bye',
    );
    // a write decided on a follower's state after it caught up: INCR continues the count
    expect(await eventually(() => redisCli(a.port, ['GET', 'n']).then((s) => s.trim()), '1')).toBe('1');
    expect((await redisCli(a.port, ['INCR', 'n'])).trim()).toBe('2');
    expect(await eventually(() => redisCli(b.port, ['GET', 'n']).then((s) => s.trim()), '2')).toBe('2');

    // another log on the same database is another keyspace
    const c = await start({ connectionString: url, log: 'other' });
    expect((await redisCli(c.port, ['GET', 'greeting'])).trim()).toBe('');
  });

  it('main.ts: --store postgres --database-url --log; the password is never printed', async () => {
    const u = new URL(url);
    u.password = 'kv-s3cret';
    const child = await spawnServer(['--store', 'postgres', '--database-url', u.toString(), '--log', 'main']);
    try {
      expect((await redisCli(child.port, ['SET', 'k', 'v'])).trim()).toBe('OK');
      expect((await redisCli(child.port, ['CONFIG', 'GET', 'dir'])).trim()).toContain('postgres:***@');
      expect((await redisCli(child.port, ['INFO', 'persistence'])).toString()).not.toContain('kv-s3cret');
      expect(child.output()).toMatch(
        /data: postgresql:\/\/postgres:\*\*\*@\S+ appendonly\.main \(postgres store/,
      );
      expect(child.output()).not.toContain('kv-s3cret');
    } finally {
      child.child.kill('SIGTERM');
      await child.exited;
    }
    // what it wrote is in the shared log: another server on the same log reads it
    const b = await start({ connectionString: url, log: 'main' });
    expect((await redisCli(b.port, ['GET', 'k'])).trim()).toBe('v');
  });

  it('main.ts: --store postgres without a database URL is one line and exit 1', async () => {
    const env = process.env.DATABASE_URL;
    delete process.env.DATABASE_URL;
    try {
      const child = await spawnServer(['--store', 'postgres'], /needs --database-url/);
      expect(await child.exited).toBe(1);
      expect(child.output().trim()).toBe(
        'kv-server: --store postgres needs --database-url postgres://… (or DATABASE_URL)',
      );
    } finally {
      if (env !== undefined) process.env.DATABASE_URL = env;
    }
  });
});
