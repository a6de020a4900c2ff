import type { App } from 'appendonly';
import {
  AppendString,
  DeleteKeys,
  FlushAll,
  IncrementBy,
  parseInteger,
  SetString,
  SetStrings,
  WRONGTYPE,
} from './domain';
import { globMatch } from './glob';
import { array, bulk, bulkArray, EMPTY_ARRAY, error, integer, NIL, OK, simple } from './reply';

/** What a command answers: an encoded reply now (bytes only for binary echoes), or once its write is durable. */
export type Reply = string | Buffer | Promise<string | Buffer>;

/** What a command may see of its connection. */
export interface ClientState {
  readonly id: number;
  authenticated: boolean;
  name: string | null;
  /** Set by QUIT: the connection closes once this reply is written. */
  closeAfterReply: boolean;
}

/** What a command may ask of the server (implemented by KvServer). */
export interface ServerApi {
  /** The ready app; commands that need it never run while the server is loading. */
  readonly app: App;
  /** Runs a write command through the bus; answers `reply()` once durable, or the error. */
  write<T extends object>(command: T, reply: (command: T) => string): Promise<string>;
  authenticate(client: ClientState, user: string, password: string): string;
  info(sections: readonly string[]): string;
  configGet(patterns: readonly string[]): string;
  configSet(name: string, value: string): Reply;
  rewrite(): string;
  shutdown(): Reply;
}

/** One command of the table, with Redis's arity convention: N exactly, -N at least N (the name counts). */
export interface CommandSpec {
  readonly name: string;
  readonly arity: number;
  /** Redis's flags, as COMMAND lists them; `noauth`, `loading` and `write` also steer the server. */
  readonly flags: readonly string[];
  readonly firstKey: number;
  readonly lastKey: number;
  readonly step: number;
  /** Allowed before AUTH. */
  readonly noauth: boolean;
  /** Allowed while the log loads (others answer -LOADING). */
  readonly loading: boolean;
  run(server: ServerApi, client: ClientState, args: readonly string[]): Reply;
}

const SYNTAX = error('ERR syntax error');
const NOT_INTEGER = error('ERR value is not an integer or out of range');

function stringOrNil(value: unknown): string | null {
  return value === undefined ? null : typeof value === 'string' ? value : null;
}

function get(server: ServerApi, key: string): string {
  const value = server.app.state.get(key);
  if (value !== undefined && typeof value !== 'string') return error(`WRONGTYPE ${WRONGTYPE}`);
  return bulk(value ?? null);
}

function set(server: ServerApi, args: readonly string[]): Reply {
  let condition: 'NX' | 'XX' | null = null;
  let withGet = false;
  for (let i = 3; i < args.length; i++) {
    const option = args[i].toUpperCase();
    if ((option === 'NX' || option === 'XX') && condition === null) condition = option;
    else if (option === 'GET' && !withGet) withGet = true;
    else if (option === 'KEEPTTL')
      continue; // keys never expire here: keeping no TTL is what it asks
    else if (option === 'EX' || option === 'PX' || option === 'EXAT' || option === 'PXAT') {
      return error(`ERR ${option} is not supported: keys do not expire on this server`);
    } else return SYNTAX;
  }
  return server.write(new SetString(args[1], args[2], condition, withGet), (c) =>
    withGet ? bulk(c.previous) : c.written ? OK : NIL,
  );
}

function increment(server: ServerApi, key: string, by: number | bigint | null): Reply {
  if (by === null) return NOT_INTEGER;
  return server.write(new IncrementBy(key, by), (c) => `:${c.value}\r\n`);
}

function negate(by: number | bigint | null): number | bigint | null {
  if (by === null) return null;
  // -LLONG_MIN does not fit in 64 bits: Redis refuses it with its own message.
  if (typeof by === 'bigint' && by === -(2n ** 63n)) return null;
  return -by;
}

function keys(server: ServerApi, pattern: string): string {
  const out: string[] = [];
  const all = pattern === '*';
  for (const key of server.app.state.keys()) if (all || globMatch(pattern, key)) out.push(key);
  return bulkArray(out);
}

function command(args: readonly string[]): string {
  const sub = args.length > 1 ? args[1].toUpperCase() : '';
  if (sub === '') return array([...COMMANDS.values()].map(describe));
  if (sub === 'COUNT') return integer(COMMANDS.size);
  if (sub === 'DOCS') return EMPTY_ARRAY; // redis-cli then uses its built-in help
  if (sub === 'INFO')
    return array(
      args
        .slice(2)
        .map((n) => (COMMANDS.has(n.toLowerCase()) ? describe(COMMANDS.get(n.toLowerCase())!) : '*-1\r\n')),
    );
  if (sub === 'LIST') return bulkArray([...COMMANDS.keys()]);
  return error(`ERR unknown subcommand '${args[1]}'. Try COMMAND HELP.`);
}

function describe(spec: CommandSpec): string {
  return array([
    bulk(spec.name),
    integer(spec.arity),
    array(spec.flags.map(simple)),
    integer(spec.firstKey),
    integer(spec.lastKey),
    integer(spec.step),
  ]);
}

function config(server: ServerApi, args: readonly string[]): Reply {
  const sub = args[1].toUpperCase();
  if (sub === 'GET' && args.length >= 3) return server.configGet(args.slice(2));
  if (sub === 'SET' && args.length === 4) return server.configSet(args[2].toLowerCase(), args[3]);
  if (sub === 'RESETSTAT' && args.length === 2) return OK;
  if (sub === 'GET' || sub === 'SET')
    return error(`ERR wrong number of arguments for 'config|${sub.toLowerCase()}' command`);
  return error(`ERR unknown subcommand '${args[1]}'. Try CONFIG HELP.`);
}

function client(clientState: ClientState, args: readonly string[]): string {
  const sub = args[1].toUpperCase();
  if (sub === 'ID') return integer(clientState.id);
  if (sub === 'GETNAME') return bulk(clientState.name);
  if (sub === 'SETNAME' && args.length === 3) {
    if (/[\s]/.test(args[2]))
      return error('ERR Client names cannot contain spaces, newlines or special characters.');
    clientState.name = args[2] === '' ? null : args[2];
    return OK;
  }
  if (sub === 'SETINFO' && args.length === 4) return OK;
  return error(`ERR unknown subcommand '${args[1]}'. Try CLIENT HELP.`);
}

function hello(server: ServerApi, clientState: ClientState, args: readonly string[]): string {
  if (args.length > 1 && args[1] !== '2') {
    return args[1] === '3'
      ? error('NOPROTO this server speaks RESP2 only')
      : error('ERR Protocol version is not an integer or out of range');
  }
  for (let i = 2; i < args.length; i++) {
    const option = args[i].toUpperCase();
    if (option === 'AUTH' && i + 2 < args.length) {
      const reply = server.authenticate(clientState, args[i + 1], args[i + 2]);
      if (reply !== OK) return reply;
      i += 2;
    } else if (option === 'SETNAME' && i + 1 < args.length) {
      clientState.name = args[++i];
    } else return SYNTAX;
  }
  if (!clientState.authenticated)
    return error(
      'NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time',
    );
  return array([
    bulk('server'),
    bulk('redis'),
    bulk('version'),
    bulk(REDIS_VERSION),
    bulk('proto'),
    integer(2),
    bulk('id'),
    integer(clientState.id),
    bulk('mode'),
    bulk('standalone'),
    bulk('role'),
    bulk('master'),
    bulk('modules'),
    EMPTY_ARRAY,
  ]);
}

/** The Redis version the server claims, for clients that look at it. */
export const REDIS_VERSION = '7.0.0';

type Run = CommandSpec['run'];

function spec(
  name: string,
  arity: number,
  flags: string[],
  keys: [number, number, number],
  run: Run,
): CommandSpec {
  const [firstKey, lastKey, step] = keys;
  return {
    name,
    arity,
    flags,
    firstKey,
    lastKey,
    step,
    noauth: flags.includes('noauth'),
    loading: flags.includes('loading'),
    run,
  };
}

const NO_KEYS: [number, number, number] = [0, 0, 0];
const ONE_KEY: [number, number, number] = [1, 1, 1];
const ALL_KEYS: [number, number, number] = [1, -1, 1];

/** The commands, by lower-case name. */
export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(
  [
    spec('ping', -1, ['fast'], NO_KEYS, (_s, _c, a) =>
      a.length === 1
        ? '+PONG\r\n'
        : a.length === 2
          ? bulk(a[1])
          : error("ERR wrong number of arguments for 'ping' command"),
    ),
    spec('echo', 2, ['fast'], NO_KEYS, (_s, _c, a) => bulk(a[1])),
    spec('quit', -1, ['noauth', 'loading', 'fast'], NO_KEYS, (_s, c) => {
      c.closeAfterReply = true;
      return OK;
    }),
    spec('auth', -2, ['noauth', 'loading', 'fast'], NO_KEYS, (s, c, a) =>
      a.length === 2
        ? s.authenticate(c, 'default', a[1])
        : a.length === 3
          ? s.authenticate(c, a[1], a[2])
          : SYNTAX,
    ),
    spec('hello', -1, ['noauth', 'loading', 'fast'], NO_KEYS, (s, c, a) => hello(s, c, a)),
    spec('select', 2, ['loading', 'fast'], NO_KEYS, (_s, _c, a) => {
      const db = parseInteger(a[1]);
      if (db === null) return NOT_INTEGER;
      return db === 0 ? OK : error('ERR DB index is out of range');
    }),
    spec('get', 2, ['readonly', 'fast'], ONE_KEY, (s, _c, a) => get(s, a[1])),
    spec('set', -3, ['write'], ONE_KEY, (s, _c, a) => set(s, a)),
    spec('del', -2, ['write'], ALL_KEYS, (s, _c, a) =>
      s.write(new DeleteKeys(a.slice(1)), (c) => integer(c.deleted)),
    ),
    spec('exists', -2, ['readonly', 'fast'], ALL_KEYS, (s, _c, a) => {
      let n = 0;
      for (let i = 1; i < a.length; i++) if (s.app.state.has(a[i])) n++;
      return integer(n);
    }),
    spec('incr', 2, ['write', 'fast'], ONE_KEY, (s, _c, a) => increment(s, a[1], 1)),
    spec('decr', 2, ['write', 'fast'], ONE_KEY, (s, _c, a) => increment(s, a[1], -1)),
    spec('incrby', 3, ['write', 'fast'], ONE_KEY, (s, _c, a) => increment(s, a[1], parseInteger(a[2]))),
    spec('decrby', 3, ['write', 'fast'], ONE_KEY, (s, _c, a) => {
      const by = parseInteger(a[2]);
      if (typeof by === 'bigint' && by === -(2n ** 63n)) return error('ERR decrement would overflow');
      return increment(s, a[1], negate(by));
    }),
    spec('append', 3, ['write'], ONE_KEY, (s, _c, a) =>
      s.write(new AppendString(a[1], a[2]), (c) => integer(c.length)),
    ),
    spec('strlen', 2, ['readonly', 'fast'], ONE_KEY, (s, _c, a) => {
      const value = s.app.state.get(a[1]);
      if (value !== undefined && typeof value !== 'string') return error(`WRONGTYPE ${WRONGTYPE}`);
      return integer(value === undefined ? 0 : Buffer.byteLength(value, 'utf8'));
    }),
    spec('mget', -2, ['readonly', 'fast'], ALL_KEYS, (s, _c, a) => {
      const values: (string | null)[] = [];
      for (let i = 1; i < a.length; i++) values.push(stringOrNil(s.app.state.get(a[i])));
      return bulkArray(values);
    }),
    spec('mset', -3, ['write'], [1, -1, 2], (s, _c, a) =>
      a.length % 2 === 0
        ? error("ERR wrong number of arguments for 'mset' command")
        : s.write(new SetStrings(a.slice(1)), () => OK),
    ),
    spec('keys', 2, ['readonly'], NO_KEYS, (s, _c, a) => keys(s, a[1])),
    spec('dbsize', 1, ['readonly', 'fast'], NO_KEYS, (s) => integer(s.app.state.size)),
    spec('flushall', -1, ['write'], NO_KEYS, (s, _c, a) => {
      if (a.length > 2 || (a.length === 2 && !/^(a?sync)$/i.test(a[1]))) return SYNTAX;
      return s.write(new FlushAll(), () => OK);
    }),
    spec('bgrewriteaof', 1, ['admin', 'noscript'], NO_KEYS, (s) => s.rewrite()),
    spec('info', -1, ['loading'], NO_KEYS, (s, _c, a) => s.info(a.slice(1))),
    spec('config', -2, ['admin', 'loading'], NO_KEYS, (s, _c, a) => config(s, a)),
    spec('command', -1, ['loading'], NO_KEYS, (_s, _c, a) => command(a)),
    spec('client', -2, ['loading'], NO_KEYS, (_s, c, a) => client(c, a)),
    spec('shutdown', -1, ['admin', 'loading'], NO_KEYS, (s) => s.shutdown()),
  ].map((c) => [c.name, c]),
);
