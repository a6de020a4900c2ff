import { ConfigError, PersistenceError } from '../../src/index';
import { loadDriver } from '../common/drivers';
import { type PgClientLike, type PgPoolLike, type PgQueryClass, registerQueryClass } from './driver';

/**
 * Where the store connects, for messages and `stats()`: the connection string with its password
 * removed (URL form `postgres://user:secret@host/db` or `socket://…`, `?password=`, and key=value
 * `password=secret`), or `'pg.Pool'` for a pool the user gave. The password never leaves here.
 */
export function describeLocation(connectionString: string | null, schema: string, log: string): string {
  const where = connectionString === null ? 'pg.Pool' : redact(connectionString);
  return `${where} ${schema}.${log}`;
}

/**
 * `text` with every password in it (in any of the forms libpq and pg accept) replaced by `***`.
 * In a URL (any scheme: pg also takes `socket://`), the password runs from the user's `:` to the
 * last `@` of the line: pg takes an unencoded `@` or space in it as part of the password. Hiding
 * more than the password (an `@` further on in a message) is the safe side.
 */
export function redact(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)[^\n]*@/gi, '$1***@')
    .replace(/([?&]password=)[^&\s]*/gi, '$1***')
    .replace(/(^|\s)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)/gi, '$1$2***');
}

/**
 * A pool on `connectionString`, with `pg` loaded only now: it is an optional peer dependency,
 * so an application on the other stores never needs it installed.
 */
export function poolFor(connectionString: string): PgPoolLike {
  // An optional peer dependency: loaded when a store is made from a connection string, not at
  // import (a user's own pool needs no driver of ours); missing, it is MissingDriverError's one line.
  const pg = loadDriver<{ Pool: new (config: object) => PgPoolLike; Query?: PgQueryClass }>('pg', require);
  // Held: the writer, the watcher and, once a consumer runs, the session of the consumers' locks
  // (one for all of them); checked out while they run: a replay, a compaction (a consumer's read
  // and save are short); and one spare for a reconnect that overlaps the release of a broken one.
  const pool = pg.Pool === undefined ? null : new pg.Pool({ connectionString, max: 6 });
  if (pool === null) throw new ConfigError('PostgresStore: the pg package has no Pool');
  const events = pool as unknown as {
    on(e: 'error', l: () => void): void;
    on(e: 'connect', l: (client: PgClientLike) => void): void;
  };
  // An idle connection that dies (a server restart) is reported on the pool; without a listener
  // Node would crash the process. The store notices on its next query.
  events.on('error', () => {});
  // And one 'error' listener on each connection for its whole life, given before the pool hands
  // it out. The pool drops its own listener when it hands a new connection out from inside the
  // driver's parse of the server's ReadyForQuery; a FATAL in the same read (a server shutting
  // down as the connection is made: pg_ctl restart -m fast) is parsed before the caller's await
  // resumes to add its listener, and would be an uncaught 57P01. The store still learns of the
  // loss from its own listeners and failed queries.
  events.on('connect', (client) => {
    client.on('error', () => {});
    // This pg's own connections: prepared statements go as its Query (see queryNamed).
    if (typeof pg.Query === 'function') registerQueryClass(client, pg.Query);
  });
  return pool;
}

/** The error every failed write or read rejects with: the driver's code kept, the password never shown. */
export function persistenceError(what: string, err: unknown): PersistenceError {
  if (err instanceof PersistenceError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const reason = redact(err instanceof Error ? err.message : String(err));
  // pg's "Connection terminated unexpectedly" carries no code: a caller branching on the code
  // still learns that the connection went, not merely that something failed.
  const known = typeof code === 'string' ? code : CONNECTION_LOST.test(reason) ? 'ECONNRESET' : undefined;
  return new PersistenceError(`${redact(what)}: ${reason}`, known);
}

/** The driver's messages for a connection that went away, when it gives no code. */
const CONNECTION_LOST = /Connection terminated|not queryable|connection.*(closed|ended)/i;

/** How {@link withConnection} treats failures. */
export interface ConnectionUse {
  /** The error a failure to connect rejects with (default: the pool's own). */
  readonly unreachable?: (err: unknown) => Error;
  /** Whether a failure of the work left the connection unfit for the next user (default: it did). */
  readonly broken?: (client: PgClientLike, err: unknown) => boolean | Promise<boolean>;
}

/**
 * Runs `work` on a connection of the pool, then gives it back; it rejects as `work` does. While
 * the connection is checked out its 'error' events are heard: one cut mid-query (a server
 * restart) also emits one, which unheard would end the process, and the failed query already
 * says so. A connection `broken` is destroyed, and keeps its listener, since the server's FATAL
 * may still arrive after.
 */
export async function withConnection<T>(
  pool: PgPoolLike,
  work: (client: PgClientLike) => Promise<T>,
  { unreachable, broken = () => true }: ConnectionUse = {},
): Promise<T> {
  const client = await pool.connect().catch((err: unknown) => {
    throw unreachable === undefined ? err : unreachable(err);
  });
  client.on('error', ignore);
  let destroy = false;
  try {
    return await work(client);
  } catch (err) {
    destroy = await broken(client, err);
    throw err;
  } finally {
    if (!destroy) client.removeListener('error', ignore);
    client.release(destroy);
  }
}

function ignore(): void {}

/**
 * A connection checked out for the store's lifetime, with the identity of its server process
 * (pid, start time), so that after losing it the store can make sure that process is gone before
 * it looks at what it committed (see `fence`).
 */
export interface HeldConnection {
  readonly client: PgClientLike;
  pid: number;
  startedAt: string;
  /** Set when the driver reported the connection broken. */
  broken: boolean;
}

/** Checks a connection out and reads who serves it. */
export async function hold(pool: PgPoolLike): Promise<HeldConnection> {
  const client = await pool.connect();
  const held: HeldConnection = { client, pid: 0, startedAt: '', broken: false };
  client.on('error', () => {
    held.broken = true;
  });
  try {
    const { rows } = await client.query(
      'SELECT pg_backend_pid() AS pid, backend_start::text AS started FROM pg_stat_activity WHERE pid = pg_backend_pid()',
    );
    const row = rows[0] as { pid: unknown; started: string } | undefined;
    held.pid = Number(row?.pid ?? 0);
    held.startedAt = row?.started ?? '';
    return held;
  } catch (err) {
    client.release(true);
    throw err;
  }
}

/**
 * Takes held connections for one user (the watcher, the consumers' lock session) that many
 * callers may ask for at once: they share one attempt. A connection taken after the user
 * closed is destroyed and the call rejects, so a late attempt never leaves one checked out.
 */
export class HoldOnce {
  private taking: Promise<HeldConnection> | null = null;

  constructor(
    private readonly pool: PgPoolLike,
    private readonly closed: () => boolean,
    private readonly what: string,
  ) {}

  /**
   * The attempt under way, if there is one; otherwise `start` runs (the user lets its last
   * connection go), then a new one is taken, `ready` run on it before any caller has it.
   */
  take(start: () => void, ready: (conn: HeldConnection) => void): Promise<HeldConnection> {
    if (this.taking === null) {
      start();
      this.taking = hold(this.pool).then(
        (conn) => {
          this.taking = null;
          if (this.closed()) {
            conn.broken = true;
            letGo(conn);
            throw new Error(`${this.what} is closed`);
          }
          ready(conn);
          return conn;
        },
        (err: unknown) => {
          this.taking = null;
          throw err;
        },
      );
    }
    return this.taking;
  }
}

/** Gives a held connection back: destroyed when broken, so that the pool never hands it out again. */
export function letGo(held: HeldConnection | null): void {
  if (held === null) return;
  try {
    held.client.release(held.broken);
  } catch {
    // released already (a pool that was ended)
  }
}

/**
 * Makes sure the server process behind a lost connection has ended, so that a transaction it
 * was running can no longer commit: after this, what is in the log is final. A process that is
 * already gone (the server restarted) is not there to match; pid and start time together make
 * sure another connection that reused the pid is left alone. Waits up to 5 s (PostgreSQL ≥ 14).
 */
export async function fence(client: PgClientLike, lost: HeldConnection): Promise<void> {
  if (lost.pid === 0) return;
  await client.query(
    'SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE pid = $1 AND backend_start::text = $2',
    [lost.pid, lost.startedAt],
  );
}

/**
 * The queries of one connection, one after another: its users (timers, callers) send them
 * independently, and pg's own queueing of a query sent while another runs is deprecated (removed
 * in pg 9). A failed query does not stop the ones after it.
 */
export class Serial {
  private tail: Promise<void> = Promise.resolve();

  /** Runs `query` once every query queued before it has settled. */
  run<T>(query: () => Promise<T>): Promise<T> {
    const run = this.tail.then(query, query);
    this.tail = run.then(
      () => {},
      () => {},
    );
    return run;
  }
}

/** Lost connections (not SQL errors): the server went away, or the driver closed the connection. */
export function isConnectionLoss(err: unknown, conn: HeldConnection): boolean {
  if (conn.broken) return true;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string')
    return /^(08|57P0[123])/.test(code) || /^E(CONN|PIPE|TIMEDOUT|NOTFOUND)/.test(code);
  return CONNECTION_LOST.test((err as Error)?.message ?? '');
}
