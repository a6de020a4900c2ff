import * as fs from 'node:fs';
import Redis from 'ioredis';
import { createApp, silentLogger } from 'appendonly';
import { kvDomain, SetStrings } from '../../examples/kv-server/domain';
import { storeFactory } from '../../examples/kv-server/store';
import { rawExchange, spawnServer, tempDir } from './helpers';

/** A real log large enough that loading it takes a while, replayed by a server in its own process. */
describe('kv-server loading a large log', () => {
  let dir = '';
  const KEYS = 300_000;
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  beforeAll(async () => {
    dir = tempDir();
    const app = await createApp({ ...kvDomain, store: storeFactory('aof', dir)('no'), logger: silentLogger });
    // Commands of 10 keys: replay yields batches of groups, so progress counts events as it goes.
    const pending: Promise<unknown>[] = [];
    for (let batch = 0; batch < KEYS / 10; batch++) {
      const pairs: string[] = [];
      for (let i = 0; i < 10; i++) pairs.push(`key:${batch * 10 + i}`, `value ${batch * 10 + i}`);
      pending.push(app.execute(new SetStrings(pairs)));
    }
    await Promise.all(pending);
    await app.close();
  });

  it('listens at once, answers -LOADING, prints its progress, then serves the whole state', async () => {
    const server = await spawnServer(
      ['--store', 'aof', '--dir', dir, '--progress-interval', '20'],
      /listening on/,
    );
    try {
      const early = await rawExchange(server.port, 'PING\r\nINFO persistence\r\n', 300);
      expect(early.reply).toMatch(
        /^-LOADING Redis is loading the dataset in memory\r\n\$\d+\r\n# Persistence\r\nloading:1\r\n/,
      );
      const redis = new Redis({ port: server.port }); // its ready check waits for loading:0
      expect(await redis.dbsize()).toBe(KEYS);
      expect(await redis.get('key:299999')).toBe('value 299999');
      const out = server.output();
      expect(out).toMatch(
        /Loading: \d+\.\d% \(\d+\.\d MB of \d+\.\d MB\), [1-9]\d* events, [1-9]\d* events\/s/,
      );
      expect(out).toMatch(
        new RegExp(`Loaded ${KEYS} keys from ${KEYS} events in \\d+\\.\\d+ s \\(\\d+ events/s\\)`),
      );
      expect(out).toMatch(/Ready to accept connections/);
      redis.disconnect();
    } finally {
      server.child.kill('SIGKILL');
      await server.exited;
    }
  });
});
