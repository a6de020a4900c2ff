import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { type Child, sleep, spawnServer, tempDir } from './helpers';

/**
 * SIGKILL of the server under `appendfsync always` while clients write: after a restart on the
 * same data, every write a client saw acknowledged is there (the acknowledgement promise, through the wire).
 */
describe.each(['aof', 'sqlite'] as const)(
  'kv-server killed with SIGKILL under always (%s store)',
  (store) => {
    let dir = '';
    beforeAll(() => {
      dir = tempDir();
    });
    afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('keeps every acknowledged write', async () => {
      const args = ['--store', store, '--dir', dir, '--appendfsync', 'always'];
      const first: Child = await spawnServer(args);
      const clients = Array.from(
        { length: 20 },
        () =>
          new Redis({
            port: first.port,
            maxRetriesPerRequest: 0,
            retryStrategy: () => null,
            enableOfflineQueue: false,
          }),
      );
      for (const c of clients) c.on('error', () => {});
      await Promise.all(clients.map((c) => new Promise((resolve) => c.once('ready', resolve))));
      const acknowledgedSets = new Map<string, string>();
      let maxCounter = 0;
      let appended = 0;
      let stop = false;
      const loops = clients.map(async (client, n) => {
        for (let i = 0; !stop; i++) {
          try {
            const key = `c${n}:k${i % 50}`;
            const value = `${n}-${i}`;
            await client.set(key, value);
            acknowledgedSets.set(key, value);
            maxCounter = Math.max(maxCounter, await client.incr('counter'));
            if (n === 0) {
              await client.append('log', 'x');
              appended++;
            }
          } catch {
            return; // the server is gone
          }
        }
      });
      await sleep(1500);
      first.child.kill('SIGKILL');
      await first.exited;
      stop = true;
      await Promise.all(loops);
      for (const c of clients) c.disconnect();
      expect(acknowledgedSets.size).toBeGreaterThan(100);

      const second = await spawnServer(args);
      try {
        const redis = new Redis({ port: second.port });
        const keys = [...acknowledgedSets.keys()];
        const values = await redis.mget(...keys);
        // Each client writes one command at a time, so after its last acknowledged SET of a key,
        // at most a later SET of its own may have reached the log unacknowledged.
        const lost = keys.filter((k, i) => {
          const got = values[i];
          if (got === null) return true;
          const [gotClient, gotStep] = got.split('-').map(Number);
          const [ackClient, ackStep] = acknowledgedSets.get(k)!.split('-').map(Number);
          return gotClient !== ackClient || gotStep < ackStep;
        });
        expect(lost).toEqual([]);
        expect(Number(await redis.get('counter'))).toBeGreaterThanOrEqual(maxCounter);
        expect((await redis.strlen('log')) >= appended).toBe(true);
        redis.disconnect();
      } finally {
        second.child.kill('SIGKILL');
        await second.exited;
      }
    });
  },
);

describe('kv-server after redis-benchmark', () => {
  let dir = '';
  beforeAll(() => {
    dir = tempDir();
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('SIGKILL right after redis-benchmark INCR under always: every increment is there', async () => {
    const args = ['--store', 'aof', '--dir', dir, '--appendfsync', 'always'];
    const first = await spawnServer(args);
    // Without -r, redis-benchmark increments the one key `counter:__rand_int__`; -P 8 pipelines.
    await promisify(execFile)('redis-benchmark', [
      '-p',
      String(first.port),
      '-t',
      'incr,set',
      '-n',
      '5000',
      '-c',
      '20',
      '-P',
      '8',
      '-q',
    ]);
    first.child.kill('SIGKILL');
    await first.exited;
    const second = await spawnServer(args);
    try {
      const redis = new Redis({ port: second.port });
      expect(await redis.get('counter:__rand_int__')).toBe('5000');
      expect(await redis.strlen('key:__rand_int__')).toBe(3); // redis-benchmark's 3-byte payload
      redis.disconnect();
    } finally {
      second.child.kill('SIGKILL');
      await second.exited;
    }
  });

  it('SIGTERM closes cleanly (exit 0) and a restart finds every write', async () => {
    const args = ['--store', 'aof', '--dir', dir, '--appendfsync', 'everysec'];
    const first = await spawnServer(args);
    const redis = new Redis({ port: first.port });
    await redis.flushall();
    await Promise.all(Array.from({ length: 500 }, (_, i) => redis.set(`t${i}`, String(i))));
    redis.disconnect();
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.output()).toMatch(/SIGTERM: closing/);
    const second = await spawnServer(args);
    try {
      const client = new Redis({ port: second.port });
      expect(await client.dbsize()).toBe(500);
      expect(await client.get('t499')).toBe('499');
      client.disconnect();
    } finally {
      second.child.kill('SIGKILL');
      await second.exited;
    }
  });
});
