import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { rawExchange, type Running, redisCli, startServer } from './helpers';

/** Every command through Debian's redis-cli, as a user would type them. */
describe('kv-server with redis-cli', () => {
  let running: Running;
  // redis-cli prints an error reply followed by an empty line when stdout is not a terminal.
  const cli = async (...args: string[]) =>
    (await redisCli(running.port, args)).replace(/^((?:ERR|NOAUTH|WRONGPASS).*\n)\n$/, '$1');

  beforeAll(async () => {
    running = await startServer({ kind: 'aof', appendfsync: 'always' });
  });
  afterAll(() => running.stop());
  beforeEach(async () => {
    await cli('FLUSHALL');
  });

  it('connection commands: PING, ECHO, SELECT, QUIT, COMMAND', async () => {
    expect(await cli('PING')).toBe('PONG\n');
    expect(await cli('PING', 'hello world')).toBe('hello world\n');
    expect(await cli('ECHO', 'héllo')).toBe('héllo\n');
    expect(await cli('SELECT', '0')).toBe('OK\n');
    expect(await cli('SELECT', '3')).toBe('ERR DB index is out of range\n');
    expect(await cli('QUIT')).toBe('OK\n');
    expect(Number(await cli('COMMAND', 'COUNT'))).toBeGreaterThan(20);
    expect(await cli('COMMAND', 'DOCS')).toBe('\n');
  });

  it('strings: SET (NX, XX, GET), GET, APPEND, STRLEN, MSET, MGET', async () => {
    expect(await cli('SET', 'k', 'v')).toBe('OK\n');
    expect(await cli('SET', 'k', 'w', 'NX')).toBe('\n');
    expect(await cli('SET', 'k', 'w', 'XX', 'GET')).toBe('v\n');
    expect(await cli('GET', 'k')).toBe('w\n');
    expect(await cli('GET', 'missing')).toBe('\n');
    expect(await cli('APPEND', 'k', 'xyz')).toBe('4\n');
    expect(await cli('STRLEN', 'k')).toBe('4\n');
    expect(await cli('MSET', 'a', '1', 'b', '2')).toBe('OK\n');
    expect(await cli('MGET', 'a', 'nope', 'b')).toBe('1\n\n2\n');
  });

  it('counters: INCR, INCRBY, DECR, DECRBY, up to the 64-bit limit', async () => {
    expect(await cli('INCR', 'n')).toBe('1\n');
    expect(await cli('INCRBY', 'n', '9')).toBe('10\n');
    expect(await cli('DECR', 'n')).toBe('9\n');
    expect(await cli('DECRBY', 'n', '10')).toBe('-1\n');
    expect(await cli('SET', 'max', '9223372036854775806')).toBe('OK\n');
    expect(await cli('INCR', 'max')).toBe('9223372036854775807\n');
    expect(await cli('INCR', 'max')).toBe('ERR increment or decrement would overflow\n');
    expect(await cli('INCRBY', 'n', 'x')).toBe('ERR value is not an integer or out of range\n');
  });

  it('keyspace: DEL, EXISTS, KEYS, DBSIZE, FLUSHALL', async () => {
    await cli('MSET', 'user:1', 'a', 'user:2', 'b', 'other', 'c');
    expect(await cli('EXISTS', 'user:1', 'user:1', 'none')).toBe('2\n');
    expect((await cli('KEYS', 'user:*')).split('\n').filter(Boolean).sort()).toEqual(['user:1', 'user:2']);
    expect(await cli('DBSIZE')).toBe('3\n');
    expect(await cli('DEL', 'user:1', 'none')).toBe('1\n');
    expect(await cli('FLUSHALL')).toBe('OK\n');
    expect(await cli('DBSIZE')).toBe('0\n');
  });

  it('server: INFO sections, CONFIG GET/SET, BGREWRITEAOF', async () => {
    await cli('SET', 'k', 'v');
    const info = await cli('INFO');
    expect(info).toMatch(/# Persistence\r?\n/);
    expect(info).toMatch(/aof_enabled:1/);
    expect(info).toMatch(/db0:keys=1,expires=0,avg_ttl=0/);
    expect(await cli('INFO', 'keyspace')).toMatch(/^# Keyspace\r?\ndb0:keys=1/);
    expect(await cli('INFO', 'memory')).toMatch(/^# Memory\r?\nused_memory:\d+/);
    expect(await cli('CONFIG', 'GET', 'appendfsync')).toBe('appendfsync\nalways\n');
    expect(await cli('CONFIG', 'SET', 'appendfsync', 'everysec')).toBe('OK\n');
    expect(await cli('CONFIG', 'GET', 'appendfsync')).toBe('appendfsync\neverysec\n');
    expect(await cli('CONFIG', 'SET', 'appendfsync', 'always')).toBe('OK\n');
    expect(await cli('CONFIG', 'SET', 'nosuch', 'x')).toBe(
      "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\n",
    );
    expect(await cli('BGREWRITEAOF')).toBe('Background append only file rewriting started\n');
    expect(await cli('GET', 'k')).toBe('v\n');
  });

  it('errors: unknown command and wrong arity', async () => {
    expect(await cli('FOO', 'bar')).toBe("ERR unknown command 'FOO', with args beginning with: 'bar' \n");
    expect(await cli('GET')).toBe("ERR wrong number of arguments for 'get' command\n");
    expect(await cli('INCR', 'a', 'b')).toBe("ERR wrong number of arguments for 'incr' command\n");
  });

  it('commands piped to redis-cli run in order on one connection', async () => {
    const input = `${Array.from({ length: 100 }, (_, i) => `SET k${i} ${i}\nINCR c\nGET k${i}`).join('\n')}\n`;
    const out = (await redisCli(running.port, [], input)).trim().split('\n');
    expect(out).toHaveLength(300);
    for (let i = 0; i < 100; i++)
      expect(out.slice(i * 3, i * 3 + 3)).toEqual(['OK', String(i + 1), String(i)]);
  });

  it('redis-cli --pipe mass insertion: every reply, no error', async () => {
    let input = '';
    for (let i = 0; i < 5000; i++) input += `*3\r\n$3\r\nSET\r\n$${`m${i}`.length}\r\nm${i}\r\n$1\r\nx\r\n`;
    const out = await redisCli(running.port, ['--pipe'], input);
    expect(out).toMatch(/errors: 0, replies: 5000/);
    expect(await cli('DBSIZE')).toBe('5000\n');
  });

  it('an interactive redis-cli session starts quietly (COMMAND DOCS) and works', async () => {
    // A terminal through `script`; TERM=dumb keeps linenoise from querying the cursor position.
    const steps = ['set a 1', 'get a', 'incr a', 'quit'];
    const feeder = `for l in ${steps.map((l) => `'${l}'`).join(' ')}; do sleep 0.3; echo "$l"; done`;
    // Asynchronously: the server runs in this process.
    const { stdout } = await promisify(execFile)(
      'sh',
      ['-c', `(${feeder}) | script -qec "redis-cli -p ${running.port}" /dev/null`],
      {
        encoding: 'utf8',
        env: { ...process.env, TERM: 'dumb' },
        timeout: 15_000,
      },
    );
    const out = stdout.replace(/\r/g, '');
    expect(out).toBe(
      [
        `127.0.0.1:${running.port}> set a 1`,
        'OK',
        `127.0.0.1:${running.port}> get a`,
        '"1"',
        `127.0.0.1:${running.port}> incr a`,
        '(integer) 2',
        `127.0.0.1:${running.port}> quit`,
        '',
      ].join('\n'),
    );
  });

  it('inline requests, as typed into telnet', async () => {
    const { reply } = await rawExchange(running.port, 'SET "a b" \'c d\'\r\nGET "a b"\r\nPING\r\nQUIT\r\n');
    expect(reply).toBe('+OK\r\n$3\r\nc d\r\n+PONG\r\n+OK\r\n');
  });
});

describe('redis-cli with --requirepass', () => {
  it('-a authenticates; without it every command is refused', async () => {
    const running = await startServer({ kind: 'memory', requirepass: 'pw' });
    try {
      expect(await redisCli(running.port, ['SET', 'a', '1'])).toBe('NOAUTH Authentication required.\n\n');
      expect(await redisCli(running.port, ['--no-auth-warning', '-a', 'pw', 'SET', 'a', '1'])).toBe('OK\n');
      expect(await redisCli(running.port, ['--no-auth-warning', '-a', 'bad', 'GET', 'a'])).toMatch(
        /NOAUTH|WRONGPASS/,
      );
    } finally {
      await running.stop();
    }
  });
});
