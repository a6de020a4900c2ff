import * as fs from 'node:fs';
import * as net from 'node:net';
import Redis from 'ioredis';
import { type Child, rawExchange, type Running, sleep, spawnServer, startServer, tempDir } from './helpers';

/** Hostile and broken clients: answered with Redis's protocol errors and disconnected; others unaffected. */
describe('kv-server against malformed protocol', () => {
  let running: Running;
  beforeAll(async () => {
    running = await startServer({ kind: 'memory' });
  });
  afterAll(() => running.stop());

  it.each([
    ['a bulk length of 999999999999', '*1\r\n$999999999999\r\n', 'invalid bulk length'],
    ['a negative bulk length', '*1\r\n$-1\r\n', 'invalid bulk length'],
    ['a huge argument count', '*99999999999\r\n', 'invalid multibulk length'],
    ['an argument count beyond 1024 × 1024', '*1048577\r\n', 'invalid multibulk length'],
    ['a bulk without $', '*1\r\n+PING\r\n', "expected '$', got '+'"],
    ['unbalanced quotes inline', 'SET "a b\r\n', 'unbalanced quotes in request'],
    ['an inline request over 64 KiB', 'x'.repeat(70 * 1024), 'too big inline request'],
  ])('%s: -ERR Protocol error, then the server closes the connection', async (_what, bytes, detail) => {
    const { reply, closedByServer } = await rawExchange(running.port, bytes);
    expect(reply).toBe(`-ERR Protocol error: ${detail}\r\n`);
    expect(closedByServer).toBe(true);
  });

  it('answers the requests before the bad one, in order, before the error', async () => {
    const { reply, closedByServer } = await rawExchange(
      running.port,
      'SET a 1\r\nINCR a\r\n*1\r\n$-5\r\nPING\r\n',
    );
    expect(reply).toBe('+OK\r\n:2\r\n-ERR Protocol error: invalid bulk length\r\n');
    expect(closedByServer).toBe(true);
  });

  it('a value that is not UTF-8 is refused, and the connection stays usable', async () => {
    const bytes = Buffer.concat([
      Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('\r\nPING\r\n'),
    ]);
    const { reply } = await rawExchange(running.port, bytes, 300);
    expect(reply).toBe(
      '-ERR an argument is not valid UTF-8: this server stores strings as JSON text\r\n+PONG\r\n',
    );
  });

  it('other clients do not notice', async () => {
    const redis = new Redis({ port: running.port });
    await redis.set('x', '1');
    await Promise.all([rawExchange(running.port, '*1\r\n$999999999999\r\n'), redis.incr('x')]);
    expect(await redis.get('x')).toBe('2');
    redis.disconnect();
  });

  it('before AUTH, only small requests are read', async () => {
    const locked = await startServer({ kind: 'memory', requirepass: 'pw' });
    try {
      const many = await rawExchange(locked.port, '*11\r\n');
      expect(many.reply).toBe('-ERR Protocol error: unauthenticated multibulk length\r\n');
      const big = await rawExchange(locked.port, '*2\r\n$4\r\nAUTH\r\n$100000\r\n');
      expect(big.reply).toBe('-ERR Protocol error: unauthenticated bulk length\r\n');
      expect(big.closedByServer).toBe(true);
    } finally {
      await locked.stop();
    }
  });
});

/** A numeric field of INFO. */
async function infoField(redis: Redis, section: string, field: string): Promise<number> {
  const m = new RegExp(`^${field}:(\\d+)\r$`, 'm').exec(await redis.info(section));
  if (m === null) throw new Error(`INFO ${section} has no ${field}`);
  return Number(m[1]);
}

/** Sends `header`, then garbage in 1 MiB writes until the server closes or `total` bytes are sent. */
function flood(port: number, header: string, total: number): Promise<{ reply: string; sent: number }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    let sent = 0;
    let reply = '';
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ reply, sent });
    };
    const pump = () => {
      while (!done && sent < total) {
        sent += chunk.length;
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
      setTimeout(finish, 500);
    };
    socket.on('connect', () => {
      socket.write(header);
      pump();
    });
    socket.on('data', (d) => (reply += d.toString()));
    socket.on('close', finish);
    socket.on('error', finish);
  });
}

describe('kv-server memory under a hostile client (own process)', () => {
  let child: Child;
  let dir = '';
  beforeAll(async () => {
    dir = tempDir();
    child = await spawnServer(['--store', 'memory', '--dir', dir]);
  });
  afterAll(async () => {
    child.child.kill('SIGKILL');
    await child.exited;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a client sending $999999999999 and then data is refused at once; the server buffers none of what follows', async () => {
    const redis = new Redis({ port: child.port });
    try {
      const results = await Promise.all(
        Array.from({ length: 8 }, () => flood(child.port, '*1\r\n$999999999999\r\n', 32 * 1024 * 1024)),
      );
      for (const r of results) expect(r.reply).toBe('-ERR Protocol error: invalid bulk length\r\n');
      // 8 clients tried to send 256 MiB in all. What a connection holds unparsed is one read at
      // most (64 KiB): the bytes after the header are read only to be dropped. A server that
      // buffered them, waiting for the 999999999999 bytes announced, would hold up to 32 MiB.
      expect(await infoField(redis, 'clients', 'appendonly_max_input_buffer')).toBeLessThan(1024 * 1024);
      expect(await infoField(redis, 'stats', 'appendonly_input_bytes_dropped')).toBeGreaterThan(0);
      expect(await redis.ping()).toBe('PONG');
      // The figure does count what a connection holds: a 4 MiB argument is held whole before it runs.
      await redis.set('big', 'v'.repeat(4 * 1024 * 1024));
      expect(await infoField(redis, 'clients', 'appendonly_max_input_buffer')).toBeGreaterThanOrEqual(
        4 * 1024 * 1024,
      );
    } finally {
      redis.disconnect();
    }
  });
});

describe('kv-server and a client that pipelines without reading', () => {
  it('stops reading its requests while replies pile up, then answers all of them in order', async () => {
    const running = await startServer({ kind: 'memory' });
    try {
      const N = 20_000;
      const value = 'v'.repeat(10_000);
      const redis = new Redis({ port: running.port });
      await redis.set('big', value);
      const processed = async () =>
        Number(/total_commands_processed:(\d+)/.exec(await redis.info('stats'))![1]);
      const before = await processed();
      const socket = net.connect(running.port, '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.pause(); // read nothing for now: 200 MB of replies are asked for
      socket.write('GET big\r\n'.repeat(N));
      await sleep(500);
      // The server stopped reading that connection once 16 MiB of replies were unsent.
      const served = (await processed()) - before - 1;
      expect(served).toBeGreaterThan(0);
      expect(served).toBeLessThan(N / 2);
      let bytes = 0;
      const expected = N * (value.length + 10);
      const done = new Promise<void>((resolve) =>
        socket.on('data', (d: Buffer) => {
          bytes += d.length;
          if (bytes >= expected) resolve();
        }),
      );
      socket.resume();
      await done;
      expect(bytes).toBe(expected);
      expect((await processed()) - before).toBe(N + 2);
      redis.disconnect();
      socket.destroy();
    } finally {
      await running.stop();
    }
  });
});
