import { rmSync } from 'node:fs';
import Redis from 'ioredis';
import { MemoryStore, type ReplaySink, silentLogger } from 'appendonly';
import { ReplayMeter } from '../../examples/kv-server/replay-meter';
import { KvServer } from '../../examples/kv-server/server';
import { type Running, startServer } from './helpers';

/** Every command of the issue, through ioredis, on the AOF store. */
describe('kv-server with ioredis', () => {
  let running: Running;
  let redis: Redis;

  beforeAll(async () => {
    running = await startServer({ kind: 'aof', appendfsync: 'everysec' });
  });
  afterAll(async () => {
    await running.stop();
    rmSync(running.dir, { recursive: true, force: true }); // reopened on the same dir by the restart test
  });
  beforeEach(async () => {
    redis = new Redis({ port: running.port, lazyConnect: true, maxRetriesPerRequest: 0 });
    await redis.connect();
    await redis.flushall();
  });
  afterEach(() => {
    redis.disconnect();
  });

  it('PING, ECHO, SELECT 0', async () => {
    expect(await redis.ping()).toBe('PONG');
    expect(await redis.ping('hi')).toBe('hi');
    expect(await redis.echo('a b\r\nc')).toBe('a b\r\nc');
    expect(await redis.select(0)).toBe('OK');
    await expect(redis.select(1)).rejects.toThrow('ERR DB index is out of range');
  });

  it('SET and GET, with NX, XX and GET; values are binary-safe UTF-8', async () => {
    expect(await redis.get('k')).toBeNull();
    expect(await redis.set('k', 'v1')).toBe('OK');
    expect(await redis.get('k')).toBe('v1');
    expect(await redis.set('k', 'v2', 'NX')).toBeNull();
    expect(await redis.set('new', 'n', 'NX')).toBe('OK');
    expect(await redis.set('absent', 'x', 'XX')).toBeNull();
    expect(await redis.exists('absent')).toBe(0);
    expect(await redis.set('k', 'v3', 'XX')).toBe('OK');
    expect(await redis.set('k', 'v4', 'GET')).toBe('v3');
    expect(await redis.set('k', 'v5', 'NX', 'GET')).toBe('v4');
    expect(await redis.get('k')).toBe('v4');
    const text = 'ünïcödé 😀 "quotes" \\ \r\n\u0000';
    await redis.set('ü', text);
    expect(await redis.get('ü')).toBe(text);
    expect(await redis.strlen('ü')).toBe(Buffer.byteLength(text));
    await expect(redis.call('SET', 'k', 'v', 'NX', 'XX')).rejects.toThrow('ERR syntax error');
    await expect(redis.call('SET', 'k', 'v', 'EX', '10')).rejects.toThrow(/ERR EX is not supported/);
  });

  it('DEL and EXISTS count keys as Redis does', async () => {
    await redis.mset('a', '1', 'b', '2');
    expect(await redis.exists('a', 'a', 'b', 'c')).toBe(3);
    expect(await redis.del('a', 'a', 'c')).toBe(1);
    expect(await redis.del('a')).toBe(0);
    expect(await redis.exists('a')).toBe(0);
  });

  it('INCR, INCRBY, DECR, DECRBY in 64 bits, with Redis errors', async () => {
    expect(await redis.incr('n')).toBe(1);
    expect(await redis.incrby('n', 41)).toBe(42);
    expect(await redis.decr('n')).toBe(41);
    expect(await redis.decrby('n', 50)).toBe(-9);
    expect(await redis.get('n')).toBe('-9');
    await redis.set('big', '9223372036854775806');
    await redis.incr('big'); // the exact reply is checked with redis-cli: a JS number cannot hold it
    expect(await redis.get('big')).toBe('9223372036854775807');
    await expect(redis.incr('big')).rejects.toThrow('ERR increment or decrement would overflow');
    await redis.set('s', 'abc');
    await expect(redis.incr('s')).rejects.toThrow('ERR value is not an integer or out of range');
    await expect(redis.call('INCRBY', 'n', '1.5')).rejects.toThrow(
      'ERR value is not an integer or out of range',
    );
    await expect(redis.call('INCRBY', 'n', '007')).rejects.toThrow(
      'ERR value is not an integer or out of range',
    );
    await expect(redis.call('DECRBY', 'n', '-9223372036854775808')).rejects.toThrow(
      'ERR decrement would overflow',
    );
    expect(await redis.get('n')).toBe('-9');
  });

  it('INCR is atomic under concurrent clients (single writer)', async () => {
    const clients = Array.from({ length: 10 }, () => new Redis({ port: running.port }));
    await Promise.all(clients.map((c) => Promise.all(Array.from({ length: 100 }, () => c.incr('counter')))));
    expect(await redis.get('counter')).toBe('1000');
    for (const c of clients) c.disconnect();
  });

  it('APPEND and STRLEN count bytes', async () => {
    expect(await redis.append('s', 'héllo')).toBe(6);
    expect(await redis.append('s', ' wörld')).toBe(13);
    expect(await redis.get('s')).toBe('héllo wörld');
    expect(await redis.strlen('s')).toBe(13);
    expect(await redis.strlen('none')).toBe(0);
  });

  it('MSET and MGET', async () => {
    expect(await redis.mset('a', '1', 'b', '2', 'a', '3')).toBe('OK');
    expect(await redis.mget('a', 'b', 'c')).toEqual(['3', '2', null]);
    await expect(redis.call('MSET', 'a', '1', 'b')).rejects.toThrow(
      "ERR wrong number of arguments for 'mset' command",
    );
  });

  it('KEYS with glob patterns, DBSIZE, FLUSHALL', async () => {
    await redis.mset('user:1:name', 'a', 'user:2:name', 'b', 'user:1:mail', 'c', 'other', 'd');
    expect((await redis.keys('user:*:name')).sort()).toEqual(['user:1:name', 'user:2:name']);
    expect((await redis.keys('user:[1]:*')).sort()).toEqual(['user:1:mail', 'user:1:name']);
    expect((await redis.keys('*')).length).toBe(4);
    expect(await redis.dbsize()).toBe(4);
    expect(await redis.flushall()).toBe('OK');
    expect(await redis.dbsize()).toBe(0);
    expect(await redis.keys('*')).toEqual([]);
  });

  it('pipelining: replies keep the request order, reads see the writes before them', async () => {
    const pipeline = redis.pipeline();
    for (let i = 0; i < 200; i++) {
      pipeline.set(`p${i}`, String(i));
      pipeline.get(`p${i}`);
      pipeline.incr('pc');
      pipeline.exists(`p${i}`);
      pipeline.call('NOSUCH', String(i));
    }
    const results = await pipeline.exec();
    for (let i = 0; i < 200; i++) {
      const [set, get, incr, exists, bad] = results!.slice(i * 5, i * 5 + 5);
      expect(set).toEqual([null, 'OK']);
      expect(get).toEqual([null, String(i)]);
      expect(incr).toEqual([null, i + 1]);
      expect(exists).toEqual([null, 1]);
      expect(String(bad[0])).toContain(`ERR unknown command 'NOSUCH', with args beginning with: '${i}'`);
    }
  });

  it('unknown commands and wrong arity get Redis error texts and the connection stays usable', async () => {
    await expect(redis.call('FOO', 'a', 'b')).rejects.toThrow(
      "ERR unknown command 'FOO', with args beginning with: 'a' 'b' ",
    );
    await expect(redis.call('GET')).rejects.toThrow("ERR wrong number of arguments for 'get' command");
    await expect(redis.call('GET', 'a', 'b')).rejects.toThrow(
      "ERR wrong number of arguments for 'get' command",
    );
    await expect(redis.call('SET', 'a')).rejects.toThrow("ERR wrong number of arguments for 'set' command");
    expect(await redis.ping()).toBe('PONG');
  });

  it('INFO: persistence fields with Redis names, and the keyspace', async () => {
    await redis.mset('a', '1', 'b', '2');
    const info = await redis.info();
    for (const section of ['# Server', '# Clients', '# Persistence', '# Stats', '# Keyspace'])
      expect(info).toContain(section);
    for (const field of [
      'loading:0',
      'aof_enabled:1',
      'aof_rewrite_in_progress:0',
      'aof_last_write_status:ok',
      'aof_last_bgrewrite_status:ok',
      'aof_delayed_fsync:0',
      'aof_buffer_length:',
      'aof_pending_bio_fsync:',
    ]) {
      expect(info).toContain(field);
    }
    expect(Number(/aof_current_size:(\d+)/.exec(info)![1])).toBeGreaterThan(0);
    expect(/aof_base_size:(\d+)/.test(info)).toBe(true);
    expect(info).toContain('db0:keys=2,expires=0,avg_ttl=0');
    const persistence = await redis.info('persistence');
    expect(persistence).toContain('# Persistence');
    expect(persistence).not.toContain('# Keyspace');
  });

  it('reads never reach the store: the log does not move', async () => {
    await redis.mset('a', '1', 'b', '2');
    const before = await redis.info('persistence');
    await redis.get('a');
    await redis.mget('a', 'b', 'c');
    await redis.exists('a', 'b');
    await redis.strlen('a');
    await redis.keys('*');
    await redis.dbsize();
    await redis.set('a', 'x', 'NX'); // refused: no event
    await redis.del('nothing'); // deletes nothing: no event
    const after = await redis.info('persistence');
    const field = (text: string, name: string) => new RegExp(`${name}:(\\S+)`).exec(text)![1];
    expect(field(after, 'aof_current_size')).toBe(field(before, 'aof_current_size'));
    expect(field(after, 'aof_last_seq')).toBe(field(before, 'aof_last_seq'));
  });

  it('BGREWRITEAOF compacts the log and keeps the data', async () => {
    for (let i = 0; i < 50; i++) await redis.set('k', String(i));
    expect(await redis.bgrewriteaof()).toBe('Background append only file rewriting started');
    let info = '';
    for (let i = 0; i < 200; i++) {
      info = await redis.info('persistence');
      if (info.includes('aof_rewrites:1')) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(info).toContain('aof_rewrites:1');
    expect(info).toContain('aof_rewrite_in_progress:0');
    expect(await redis.get('k')).toBe('49');
  });

  it('CONFIG GET, and CONFIG SET appendfsync reopens the app on the same data, commands in flight kept in order', async () => {
    expect(await redis.config('GET', 'appendfsync')).toEqual(['appendfsync', 'everysec']);
    expect(await redis.config('GET', 'append*')).toEqual(['appendonly', 'yes', 'appendfsync', 'everysec']);
    expect(await redis.config('GET', 'save')).toEqual(['save', '']);
    await redis.set('before', '1');
    const other = new Redis({ port: running.port });
    const pipeline = redis.pipeline();
    pipeline.config('SET', 'appendfsync', 'always');
    for (let i = 0; i < 20; i++) pipeline.incr('during');
    const writes = Promise.all(Array.from({ length: 20 }, () => other.incr('during')));
    pipeline.config('GET', 'appendfsync');
    const results = await pipeline.exec();
    await writes;
    expect(results![0]).toEqual([null, 'OK']);
    expect(results!.pop()).toEqual([null, ['appendfsync', 'always']]);
    expect(results!.slice(1).map((r) => r[1])).toEqual(
      results!
        .slice(1)
        .map((r) => r[1])
        .sort((a, b) => Number(a) - Number(b)),
    );
    expect(await redis.get('during')).toBe('40');
    expect(await redis.get('before')).toBe('1');
    expect(await redis.config('GET', 'appendfsync')).toEqual(['appendfsync', 'always']);
    expect(await redis.info('persistence')).toContain('aof_appendfsync:always');
    await expect(redis.config('SET', 'appendfsync', 'sometimes')).rejects.toThrow(
      "ERR CONFIG SET failed (possibly related to argument 'appendfsync') - argument(s) must be one of the following: always, everysec, no",
    );
    await expect(redis.config('SET', 'port', '1')).rejects.toThrow(/immutable config/);
    expect(await redis.config('SET', 'appendfsync', 'everysec')).toBe('OK');
    other.disconnect();
  });

  it('COMMAND, COMMAND COUNT, CLIENT SETNAME/GETNAME', async () => {
    const commands = (await redis.call('COMMAND')) as unknown[][];
    expect(commands.map((c) => c[0])).toEqual(expect.arrayContaining(['get', 'set', 'incr', 'bgrewriteaof']));
    const get = commands.find((c) => c[0] === 'get')!;
    expect(get.slice(0, 2)).toEqual(['get', 2]);
    expect(await redis.call('COMMAND', 'COUNT')).toBe(commands.length);
    expect(await redis.client('SETNAME', 'tester')).toBe('OK');
    expect(await redis.client('GETNAME')).toBe('tester');
  });

  it('HELLO speaks RESP2 only', async () => {
    const hello = (await redis.call('HELLO', '2')) as unknown[];
    expect(hello.slice(0, 6)).toEqual(['server', 'redis', 'version', '7.0.0', 'proto', 2]);
    await expect(redis.call('HELLO', '3')).rejects.toThrow('NOPROTO this server speaks RESP2 only');
  });

  it('QUIT answers OK and closes the connection', async () => {
    const client = new Redis({ port: running.port, lazyConnect: true, retryStrategy: () => null });
    await client.connect();
    const closed = new Promise((resolve) => client.once('end', resolve));
    expect(await client.quit()).toBe('OK');
    await closed;
  });

  it('writes survive a restart of the server on the same data', async () => {
    await redis.mset('x', '1', 'y', '2');
    await redis.incr('x');
    await redis.append('y', 'z');
    redis.disconnect();
    await running.server.close();
    running = await startServer({ kind: 'aof', dir: running.dir });
    redis = new Redis({ port: running.port });
    expect(await redis.mget('x', 'y')).toEqual(['2', '2z']);
  });
});

describe('kv-server with --requirepass', () => {
  let running: Running;
  beforeAll(async () => {
    running = await startServer({ kind: 'memory', requirepass: 's3cret' });
  });
  afterAll(() => running.stop());

  it('refuses every command but AUTH before authentication', async () => {
    const redis = new Redis({
      port: running.port,
      lazyConnect: true,
      enableReadyCheck: false,
      maxRetriesPerRequest: 0,
    });
    await redis.connect();
    await expect(redis.ping()).rejects.toThrow('NOAUTH Authentication required.');
    await expect(redis.set('a', '1')).rejects.toThrow('NOAUTH Authentication required.');
    await expect(redis.get('a')).rejects.toThrow('NOAUTH Authentication required.');
    await expect(redis.auth('wrong')).rejects.toThrow(
      'WRONGPASS invalid username-password pair or user is disabled.',
    );
    await expect(redis.auth('other', 's3cret')).rejects.toThrow('WRONGPASS');
    await expect(redis.call('HELLO', '2')).rejects.toThrow(
      /^NOAUTH HELLO must be called with the client already authenticated/,
    );
    expect(((await redis.call('HELLO', '2', 'AUTH', 'default', 's3cret')) as unknown[])[0]).toBe('server');
    expect(await redis.auth('s3cret')).toBe('OK');
    expect(await redis.set('a', '1')).toBe('OK');
    redis.disconnect();
  });

  it('ioredis with a password works; AUTH without a password configured is refused as Redis does', async () => {
    const redis = new Redis({ port: running.port, password: 's3cret' });
    expect(await redis.get('a')).toBe('1');
    redis.disconnect();
    const open = await startServer({ kind: 'memory' });
    const client = new Redis({ port: open.port });
    await expect(client.auth('x')).rejects.toThrow(
      /ERR AUTH <password> called without any password configured/,
    );
    client.disconnect();
    await open.stop();
  });
});

describe('kv-server while loading', () => {
  it('listens at once and answers -LOADING until the log is replayed; INFO says loading:1', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const memory = new MemoryStore();
    // A store whose replay waits for the test: the log "takes" as long as the test wants to load.
    class SlowReplay extends ReplayMeter {
      override async replay(sink: ReplaySink) {
        await gate;
        return super.replay(sink);
      }
    }
    const printed: string[] = [];
    const server = new KvServer({
      port: 0,
      appendfsync: 'everysec',
      storeKind: 'memory',
      location: 'memory',
      openStore: () => new SlowReplay(memory),
      logger: silentLogger,
      print: (l) => printed.push(l),
      progressIntervalMs: 20,
    });
    const port = await server.listen();
    const loading = server.load();
    const redis = new Redis({ port, enableReadyCheck: false, maxRetriesPerRequest: 0 });
    await expect(redis.ping()).rejects.toThrow('LOADING Redis is loading the dataset in memory');
    await expect(redis.get('a')).rejects.toThrow('LOADING Redis is loading the dataset in memory');
    await expect(redis.set('a', '1')).rejects.toThrow('LOADING Redis is loading the dataset in memory');
    expect(await redis.info('persistence')).toContain('loading:1');
    await new Promise((r) => setTimeout(r, 50));
    expect(printed.some((l) => /^Loading: \d+\.\d% \(/.test(l))).toBe(true);
    release();
    await loading;
    expect(await redis.ping()).toBe('PONG');
    expect(await redis.info('persistence')).toContain('loading:0');
    expect(printed.some((l) => l.startsWith('Loaded 0 keys'))).toBe(true);
    redis.disconnect();
    await server.close();
  });
});
