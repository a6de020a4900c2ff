import { rmSync } from 'node:fs';
import Redis from 'ioredis';
import { AofStore } from 'appendonly/adapters/aof';
import { FaultyFileSystem } from '../aof/faulty-fs';
import { type Running, sleep, startServer, tempDir } from './helpers';

/**
 * A write failure reaches the client as Redis says it (-MISCONF), nothing unacknowledged shows
 * in the state, and the server takes writes again once the disk recovers (write failures).
 */
describe.each([
  ['in the thread pool', false],
  ['on the event loop (the default)', true],
] as const)('kv-server when the log cannot be written, the fsync %s', (_, fsyncOnEventLoop) => {
  let running: Running;
  let dir = '';
  const fs = new FaultyFileSystem();
  beforeAll(async () => {
    dir = tempDir();
    running = await startServer({
      kind: 'aof',
      dir,
      appendfsync: 'always',
      openStore: (appendfsync) => new AofStore({ dir, appendfsync, fs, fsyncOnEventLoop }),
    });
  });
  afterAll(async () => {
    await running.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers -MISCONF, refuses writes, serves reads, and recovers', async () => {
    const redis = new Redis({ port: running.port, maxRetriesPerRequest: 0 });
    expect(await redis.set('kept', '1')).toBe('OK');
    fs.inject({ op: 'fdatasync', code: 'EIO', times: Number.POSITIVE_INFINITY });
    await expect(redis.set('lost', '1')).rejects.toThrow(/^MISCONF Errors writing to the AOF file: .*EIO/);
    await expect(redis.incr('kept')).rejects.toThrow(/^MISCONF/);
    expect(await redis.get('kept')).toBe('1');
    expect(await redis.info('persistence')).toMatch(/aof_last_write_status:err/);
    fs.heal();
    let reply: unknown;
    for (let i = 0; i < 50; i++) {
      reply = await redis.set('after', '1').catch((e: Error) => e.message);
      if (reply === 'OK') break;
      await sleep(100);
    }
    expect(reply).toBe('OK');
    expect(await redis.get('lost')).toBeNull();
    expect(await redis.get('kept')).toBe('1');
    redis.disconnect();
  });
});
