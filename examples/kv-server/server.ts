import { createHash, timingSafeEqual } from 'node:crypto';
import * as net from 'node:net';
import {
  type App,
  AppClosedError,
  createApp,
  FSYNC_POLICIES,
  type FsyncPolicy,
  type Logger,
  PersistenceError,
} from 'appendonly';
import { type ClientState, COMMANDS, type Reply, type ServerApi } from './commands';
import { Connection, type Dispatcher } from './connection';
import { kvDomain, RedisError } from './domain';
import { globMatch } from './glob';
import { renderInfo } from './info';
import { DEFAULT_LIMITS, type ProtocolLimits, type Request } from './protocol';
import { ReplayMeter } from './replay-meter';
import { bulkArray, bulkBytes, error, OK, simple } from './reply';
import type { StoreFactory } from './store';

/** How a kv-server is set up. */
export interface KvServerOptions {
  readonly port: number;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Opens the store on the data, with a policy (again on CONFIG SET appendfsync). */
  readonly openStore: StoreFactory;
  readonly appendfsync: FsyncPolicy;
  /** `aof`, `sqlite`, `memory`: for INFO and CONFIG GET. */
  readonly storeKind: string;
  /** Where the data is, for the startup line, INFO and CONFIG GET dir. */
  readonly location: string;
  readonly requirepass?: string | null;
  readonly limits?: ProtocolLimits;
  readonly maxClients?: number;
  /** Where the server prints what an operator should see (default stdout). */
  readonly print?: (line: string) => void;
  /** The app's logger (repairs, write failures). */
  readonly logger?: Logger;
  /** How often to print load progress, in ms (default 1000). */
  readonly progressIntervalMs?: number;
  /** Called once SHUTDOWN has closed the server (main exits the process). */
  readonly onShutdown?: () => void;
}

type Phase = 'loading' | 'ready' | 'switching' | 'closing' | 'closed';

const LOADING = '-LOADING Redis is loading the dataset in memory\r\n';
const NOAUTH = '-NOAUTH Authentication required.\r\n';
const NOT_UTF8 = error('ERR an argument is not valid UTF-8: this server stores strings as JSON text');

/**
 * A Redis-protocol server on an appendonly app. Reads answer from `app.state` and never touch
 * the store; writes are framework commands, answered when `app.execute` resolves, that is when
 * they are durable per appendfsync. The server listens before the log is loaded and answers
 * -LOADING until the app is ready, as Redis does.
 */
export class KvServer implements ServerApi, Dispatcher {
  private current: App | null = null;
  private phase: Phase = 'loading';
  private policy: FsyncPolicy;
  private requirepass: Buffer | null;
  private meter: ReplayMeter | null = null;
  private loadStartedAt = 0;
  /** While the app is reopened with another policy: commands wait for it. */
  private gate: Promise<void> | null = null;
  private readonly tcp: net.Server;
  private readonly connections = new Set<Connection>();
  private readonly limits: ProtocolLimits;
  private readonly maxClients: number;
  private readonly print: (line: string) => void;
  private readonly startedAt = Date.now();
  private nextClientId = 1;
  private totalCommands = 0;
  /** Input figures of the connections already closed (see `inputFigures`). */
  private closedMaxInputBuffer = 0;
  private closedInputBytesDropped = 0;
  private totalConnections = 0;
  private rejectedConnections = 0;
  private boundPort = 0;
  private closing: Promise<void> | null = null;

  constructor(private readonly options: KvServerOptions) {
    this.policy = options.appendfsync;
    this.requirepass = hashPassword(options.requirepass ?? null);
    this.limits = options.limits ?? DEFAULT_LIMITS;
    this.maxClients = options.maxClients ?? 10_000;
    this.print = options.print ?? ((line) => process.stdout.write(`${line}\n`));
    this.tcp = net.createServer((socket) => this.accept(socket));
  }

  /** The port it listens on (useful with port 0). */
  get port(): number {
    return this.boundPort;
  }

  /** The ready app. Commands that use it are never dispatched while loading or switching. */
  get app(): App {
    if (this.current === null) throw new AppClosedError('the server has no open app');
    return this.current;
  }

  /** Listens; clients get -LOADING until `load` has finished. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.tcp.once('error', reject);
      this.tcp.listen(this.options.port, this.options.host ?? '127.0.0.1', () => {
        this.tcp.off('error', reject);
        const address = this.tcp.address();
        this.boundPort = typeof address === 'object' && address !== null ? address.port : this.options.port;
        resolve(this.boundPort);
      });
    });
  }

  /** Opens the store and replays its log, printing progress; then serves commands. */
  async load(): Promise<void> {
    await this.open(this.policy);
    this.phase = 'ready';
  }

  private async open(policy: FsyncPolicy): Promise<void> {
    const meter = new ReplayMeter(this.options.openStore(policy));
    this.meter = meter;
    const started = Date.now();
    this.loadStartedAt = started;
    const timer = setInterval(() => {
      const { done, total, unit } = meter.replayProgress?.() ?? { done: 0, total: 0, unit: 'bytes' };
      const seconds = (Date.now() - started) / 1000;
      const percent = total > 0 ? ((100 * done) / total).toFixed(1) : '0.0';
      const amount = (n: number) => (unit === 'bytes' ? mb(n) : `${n} records`);
      this.print(
        `Loading: ${percent}% (${amount(done)} of ${amount(total)}), ${meter.events} events, ${Math.round(meter.events / seconds)} events/s`,
      );
    }, this.options.progressIntervalMs ?? 1000);
    try {
      this.current = await createApp({ ...kvDomain, store: meter, logger: this.options.logger });
    } finally {
      clearInterval(timer);
      this.meter = null;
    }
    const seconds = (Date.now() - started) / 1000;
    this.print(
      `Loaded ${this.current.state.size} keys from ${meter.events} events in ${seconds.toFixed(2)} s` +
        (seconds > 0 ? ` (${Math.round(meter.events / seconds)} events/s)` : '') +
        `; appendfsync ${policy}`,
    );
  }

  /** Stops listening, lets dispatched writes finish and be answered, closes the app and every connection. */
  close(): Promise<void> {
    if (this.closing === null) this.closing = this.shutdownNow();
    return this.closing;
  }

  private async shutdownNow(): Promise<void> {
    this.phase = 'closing';
    const listening = new Promise<void>((resolve) => this.tcp.close(() => resolve()));
    await this.gate?.catch(() => {});
    await this.current?.close();
    // The last acknowledgements reach their connections in microtasks: let them be written.
    await new Promise((resolve) => setImmediate(resolve));
    for (const c of this.connections) c.destroy();
    await listening;
    this.phase = 'closed';
  }

  private accept(socket: net.Socket): void {
    this.totalConnections++;
    if (this.connections.size >= this.maxClients || this.phase === 'closing' || this.phase === 'closed') {
      this.rejectedConnections++;
      socket.end(error('ERR max number of clients reached'));
      return;
    }
    const connection = new Connection(
      this.nextClientId++,
      socket,
      this,
      this.limits,
      this.requirepass === null,
    );
    this.connections.add(connection);
  }

  /** @internal Connection callback. */
  closed(connection: Connection): void {
    this.connections.delete(connection);
    this.closedMaxInputBuffer = Math.max(this.closedMaxInputBuffer, connection.maxInputBuffer);
    this.closedInputBytesDropped += connection.inputBytesDropped;
  }

  /**
   * What the connections have held of their clients' requests: the most bytes one held
   * unparsed at once, and the bytes dropped unread after a protocol error, since the start.
   * A hostile header (`$999999999999`) must leave the first small and put the rest in the second.
   */
  inputFigures(): { maxInputBuffer: number; inputBytesDropped: number } {
    let maxInputBuffer = this.closedMaxInputBuffer;
    let inputBytesDropped = this.closedInputBytesDropped;
    for (const c of this.connections) {
      maxInputBuffer = Math.max(maxInputBuffer, c.maxInputBuffer);
      inputBytesDropped += c.inputBytesDropped;
    }
    return { maxInputBuffer, inputBytesDropped };
  }

  /** @internal Runs one request: checks as Redis does (name, arity, auth, loading), then the command. */
  dispatch(client: ClientState, request: Request): Reply {
    const args = request.args;
    const spec = COMMANDS.get(args[0].toLowerCase());
    if (spec === undefined) return error(unknownCommand(args));
    if (spec.arity > 0 ? args.length !== spec.arity : args.length < -spec.arity) {
      return error(`ERR wrong number of arguments for '${spec.name}' command`);
    }
    if (!client.authenticated && !spec.noauth) return NOAUTH;
    if (request.invalidUtf8) {
      // Bytes that are not UTF-8 cannot be stored as JSON text, but a command that stores nothing
      // can give them back: redis-cli --pipe ends with an ECHO of 20 random bytes.
      const bytes = request.binary?.[1];
      if (bytes !== undefined && args.length === 2 && (spec.name === 'echo' || spec.name === 'ping'))
        return bulkBytes(bytes);
      return NOT_UTF8;
    }
    if (this.gate !== null) {
      // The app is being reopened (CONFIG SET appendfsync): every command, even CONFIG GET,
      // waits for it and then runs, so what it sees is what follows the switch.
      const retry = () => this.dispatch(client, request);
      return this.gate.then(retry, retry);
    }
    if (this.phase !== 'ready' && !spec.loading) {
      return this.phase === 'loading' ? LOADING : error('ERR the server is shutting down');
    }
    this.totalCommands++;
    try {
      return spec.run(this, client, args);
    } catch (err) {
      return this.errorReply(err);
    }
  }

  write<T extends object>(command: T, reply: (command: T) => string): Promise<string> {
    return this.app.execute(command).then(
      () => reply(command),
      (err: unknown) => this.errorReply(err),
    );
  }

  /** @internal The RESP error for a failed command. */
  errorReply(err: unknown): string {
    if (err instanceof RedisError) return error(`${err.redisCode} ${err.message}`);
    if (err instanceof PersistenceError)
      return error(`MISCONF Errors writing to the AOF file: ${err.message}`);
    if (err instanceof AppClosedError) return error('ERR the server is shutting down');
    const message = err instanceof Error ? err.message : String(err);
    this.print(`error: ${message}`);
    return error(`ERR ${message}`);
  }

  authenticate(client: ClientState, user: string, password: string): string {
    if (this.requirepass === null) {
      return error(
        'ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?',
      );
    }
    const given = hashPassword(password)!;
    // Compare digests in constant time: the time taken tells nothing about the password.
    if (user !== 'default' || !timingSafeEqual(given, this.requirepass)) {
      return error('WRONGPASS invalid username-password pair or user is disabled.');
    }
    client.authenticated = true;
    return OK;
  }

  info(sections: readonly string[]): string {
    const meter = this.meter;
    const progress = meter?.replayProgress?.();
    const text = renderInfo(
      {
        port: this.boundPort,
        startedAt: this.startedAt,
        storeKind: this.options.storeKind,
        location: this.options.location,
        appendfsync: this.policy,
        connectedClients: this.connections.size,
        maxClients: this.maxClients,
        totalConnections: this.totalConnections,
        totalCommands: this.totalCommands,
        rejectedConnections: this.rejectedConnections,
        ...this.inputFigures(),
        stats: this.current !== null && this.phase === 'ready' ? this.current.stats() : null,
        loading:
          meter !== null
            ? {
                ...(progress ?? { done: 0, total: 0, unit: 'bytes' as const }),
                events: meter.events,
                startedAt: this.loadStartedAt,
              }
            : null,
      },
      sections,
    );
    return `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
  }

  configGet(patterns: readonly string[]): string {
    const params: [string, string][] = [
      ['appendonly', this.options.storeKind === 'memory' ? 'no' : 'yes'],
      ['appendfsync', this.policy],
      ['save', ''],
      ['dir', this.options.location],
      ['port', String(this.boundPort)],
      ['bind', this.options.host ?? '127.0.0.1'],
      ['requirepass', this.options.requirepass ?? ''],
      ['databases', '1'],
      ['maxclients', String(this.maxClients)],
      ['proto-max-bulk-len', String(this.limits.maxBulk)],
    ];
    const out: string[] = [];
    for (const [name, value] of params) {
      if (patterns.some((p) => globMatch(p.toLowerCase(), name))) out.push(name, value);
    }
    return bulkArray(out);
  }

  configSet(name: string, value: string): Reply {
    if (name === 'appendfsync') return this.switchPolicy(value.toLowerCase());
    if (name === 'requirepass') {
      // As Redis: clients already authenticated stay so; new ones need the new password.
      this.requirepass = hashPassword(value === '' ? null : value);
      return OK;
    }
    if (
      ['appendonly', 'save', 'dir', 'port', 'bind', 'databases', 'maxclients', 'proto-max-bulk-len'].includes(
        name,
      )
    ) {
      return error(
        `ERR CONFIG SET failed (possibly related to argument '${name}') - can't set immutable config`,
      );
    }
    return error(`ERR Unknown option or number of arguments for CONFIG SET - '${name}'`);
  }

  /**
   * CONFIG SET appendfsync: a store takes its policy when it opens, so the app is closed (every
   * acknowledged write flushed and fsynced) and reopened on the same data with the new policy.
   * Commands that arrive meanwhile wait and then run, in order; none is refused.
   */
  private switchPolicy(value: string): Reply {
    if (!(FSYNC_POLICIES as readonly string[]).includes(value)) {
      return error(
        `ERR CONFIG SET failed (possibly related to argument 'appendfsync') - argument(s) must be one of the following: ${FSYNC_POLICIES.join(', ')}`,
      );
    }
    const policy = value as FsyncPolicy;
    if (policy === this.policy) return OK;
    if (this.phase !== 'ready') return error('ERR CONFIG SET appendfsync: the server is busy, try again');
    this.phase = 'switching';
    const switching = (async () => {
      await this.current!.close();
      this.current = null;
      try {
        await this.open(policy);
        this.policy = policy;
      } catch (err) {
        this.print(
          `could not reopen with appendfsync ${policy}: ${(err as Error).message}; reopening with ${this.policy}`,
        );
        await this.open(this.policy);
        throw err;
      }
    })();
    this.gate = switching.then(
      () => {
        this.phase = 'ready';
        this.gate = null;
      },
      (err: unknown) => {
        this.phase = this.current !== null ? 'ready' : 'closed';
        this.gate = null;
        throw err;
      },
    );
    return this.gate.then(
      () => OK,
      (err: unknown) =>
        error(
          `ERR CONFIG SET failed (possibly related to argument 'appendfsync') - ${(err as Error).message}`,
        ),
    );
  }

  rewrite(): string {
    const app = this.app;
    if (app.stats().store?.rewriteInProgress)
      return error('ERR Background append only file rewriting already in progress');
    app.compact().then(
      (r) =>
        this.print(
          `Background AOF rewrite finished: ${r.keys} keys, ${r.sizeBefore} → ${r.sizeAfter} bytes in ${r.durationMs} ms`,
        ),
      (err: unknown) => this.print(`Background AOF rewrite failed: ${(err as Error).message}`),
    );
    return simple('Background append only file rewriting started');
  }

  shutdown(): Reply {
    // As Redis, a successful SHUTDOWN has no reply: the connection just closes.
    return this.close().then(() => {
      this.options.onShutdown?.();
      return '';
    });
  }
}

function hashPassword(password: string | null): Buffer | null {
  return password === null ? null : createHash('sha256').update(password, 'utf8').digest();
}

/** Redis 7's text: the name as typed, then the first arguments, each quoted, within 128 bytes. */
function unknownCommand(args: readonly string[]): string {
  let rest = '';
  for (let i = 1; i < args.length && rest.length < 128; i++)
    rest += `'${args[i].slice(0, 128 - rest.length)}' `;
  return `ERR unknown command '${args[0].slice(0, 128)}', with args beginning with: ${rest}`;
}

function mb(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
