import { type ConsumerLease, type ConsumerRecord, ConsumerError } from '../../src/index';
import { type HeldConnection, HoldOnce, letGo, persistenceError, Serial } from './connection';
import { bumpEpoch, saveFenced } from './consumers';
import type { PgPoolLike } from './driver';
import type { Tables } from './schema';

/*
 * One holder per consumer name on a shared log. The holder of a name is the session that holds
 * the name's session-level advisory lock, `pg_try_advisory_lock(hashtext('appendonly consumer
 * <schema>.<log>'), hashtext(name))` (the two-key form keeps these apart from the store's
 * one-key locks; two names of a log whose hashes collide share a lock: one waits for the other).
 *
 * Invariants:
 * - One session per store holds the locks of every name it runs (`ConsumerLocks`): taken from
 *   the pool once, held like the writer's and the watcher's (`hold`: an 'error' listener for its
 *   whole life), so however many consumers run, the store holds three connections, and the
 *   pool's others stay free for appends, replays, reads and saves.
 * - That session never goes back to the pool: a pooled connection holding a lock would make
 *   whoever checks it out next the holder of names it knows nothing of (the locks are
 *   re-entrant per session). When it is let go (lost, closed) it is destroyed, and its locks
 *   die with its server process.
 * - A lost session (its 'error', a failed statement, the heartbeat) loses every lease on it at
 *   once; the next `hold` takes a new session.
 * - A holder's checkpoints are fenced by an epoch, not by the session (see `saveFenced`): saves
 *   run on any pool connection, and none of a deposed holder lands after the next holder's bump.
 */

/** How often the session is probed while leases are held, in ms (a session that died without a word). */
const HEARTBEAT_MS = 1000;

/** The consumers' lock session of one store, and the leases held on it. */
export class ConsumerLocks {
  private conn: HeldConnection | null = null;
  private readonly holds: HoldOnce;
  private readonly queries = new Serial();
  /** Names held, or being taken, on the session: a second `hold` of one would succeed (re-entrant). */
  private readonly leases = new Map<string, PgConsumerLease | null>();
  private heartbeat: NodeJS.Timeout | null = null;
  private probing = false;
  private closed = false;

  constructor(
    private readonly pool: PgPoolLike,
    private readonly t: Tables,
    private readonly log: string,
    /** Where the log is, for messages. */
    readonly where: string,
  ) {
    this.holds = new HoldOnce(pool, () => this.closed, `the PostgresStore on ${where}`);
  }

  /** The name's lease, or null while another session (another instance) holds its lock. */
  async hold(name: string): Promise<ConsumerLease | null> {
    if (this.leases.has(name)) return null;
    this.leases.set(name, null);
    let conn: HeldConnection | null = null;
    let locked = false;
    try {
      conn = await this.connection();
      const session = conn;
      const r = await this.queries.run(() =>
        session.client.query(
          'SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS got',
          this.keys(name),
        ),
      );
      locked = (r.rows[0] as { got: boolean }).got;
      if (!locked) {
        this.leases.delete(name);
        return null;
      }
      const epoch = await this.queries.run(() => bumpEpoch(session.client, this.t, this.log, name));
      // Lost meanwhile: the lock went with the session, and the epoch may already be another's.
      if (this.conn !== session) throw new Error('the lock session was lost while taking the name');
      const lease = new PgConsumerLease(this, name, epoch, session);
      this.leases.set(name, lease);
      this.startHeartbeat();
      return lease;
    } catch (err) {
      this.leases.delete(name);
      // A lock taken, then an error: unlocking might fail too, and only the session's end is
      // sure to free it.
      if (conn !== null && (locked || conn.broken)) this.lose(conn, err);
      throw persistenceError(`consumer ${JSON.stringify(name)} of ${this.where}`, err);
    }
  }

  /** The epoch of the lease this store holds on `name`, or undefined when it holds none. */
  epochOf(name: string): number | undefined {
    const lease = this.leases.get(name);
    return lease?.held === true ? lease.epoch : undefined;
  }

  /** A reaction of `name` was fenced off in a transaction: its lease is lost, as after a refused save. */
  deposed(name: string): void {
    const lease = this.leases.get(name);
    if (lease?.held === true)
      this.refused(
        lease,
        new ConsumerError(name, `lost its name on ${this.where}: another instance took it over`),
      );
  }

  /** A lease's fenced save: false when its epoch is no longer the name's (another holder began). */
  save(record: ConsumerRecord, epoch: number): Promise<boolean> {
    return saveFenced(this.pool, this.t, this.log, this.where, record, epoch);
  }

  /** Unlocks a released lease's name; never rejects (a session that fails here is let go, and its locks with it). */
  async release(lease: PgConsumerLease): Promise<void> {
    if (this.leases.get(lease.name) !== lease) return;
    this.leases.delete(lease.name);
    const session = lease.session;
    if (this.conn !== session) return;
    if (this.leases.size === 0) this.stopHeartbeat();
    try {
      await this.queries.run(() =>
        session.client.query('SELECT pg_advisory_unlock(hashtext($1), hashtext($2))', this.keys(lease.name)),
      );
    } catch (err) {
      this.lose(session, err);
    }
  }

  /**
   * A lease's save found another epoch: another session took its name, so this one no longer
   * holds that lock, which only its end can do. It is let go, and every lease on it is lost.
   */
  refused(lease: PgConsumerLease, err: ConsumerError): void {
    lease.lose(err);
    this.lose(lease.session, err);
  }

  /** Lets the session go, destroyed (it may still hold locks of leases nobody released). */
  close(): void {
    this.closed = true;
    this.stopHeartbeat();
    const conn = this.conn;
    this.conn = null;
    for (const lease of this.leases.values()) lease?.lose(new Error('the store was closed'));
    this.leases.clear();
    if (conn !== null) {
      conn.broken = true;
      letGo(conn);
    }
  }

  private keys(name: string): string[] {
    return [`appendonly consumer ${this.t.schema}.${this.log}`, name];
  }

  private async connection(): Promise<HeldConnection> {
    if (this.conn !== null && !this.conn.broken) return this.conn;
    return this.holds.take(
      () => {
        if (this.conn !== null) this.lose(this.conn, new Error('the lock session broke'));
      },
      (conn) => {
        // hold's own listener stays for the connection's life; this one ends its leases.
        conn.client.on('error', (err) => this.lose(conn, err));
        this.conn = conn;
      },
    );
  }

  /** The session is gone (or can no longer be trusted to hold its locks): every lease on it is lost. */
  private lose(session: HeldConnection, cause: unknown): void {
    if (this.conn !== session) return;
    this.conn = null;
    this.stopHeartbeat();
    session.broken = true;
    letGo(session);
    const lost = [...this.leases.values()].filter((l): l is PgConsumerLease => l?.session === session);
    for (const lease of lost) {
      this.leases.delete(lease.name);
      lease.lose(cause);
    }
  }

  private startHeartbeat(): void {
    if (this.heartbeat !== null) return;
    this.heartbeat = setInterval(() => {
      const session = this.conn;
      if (session === null || this.probing) return;
      this.probing = true;
      this.queries
        .run(() => session.client.query('SELECT 1'))
        .then(
          () => {},
          (err: unknown) => this.lose(session, err),
        )
        .finally(() => {
          this.probing = false;
        });
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }
}

/** A held name: its epoch (the fence of its saves) and the session whose lock it is. */
class PgConsumerLease implements ConsumerLease {
  held = true;
  private listeners: ((err: Error) => void)[] = [];

  constructor(
    private readonly locks: ConsumerLocks,
    readonly name: string,
    readonly epoch: number,
    readonly session: HeldConnection,
  ) {}

  onLost(listener: (err: Error) => void): void {
    if (!this.held) listener(this.deposed());
    else this.listeners.push(listener);
  }

  async save(record: ConsumerRecord): Promise<void> {
    if (!this.held) throw this.deposed();
    if (!(await this.locks.save(record, this.epoch))) {
      const err = this.deposed();
      this.locks.refused(this, err);
      throw err;
    }
  }

  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    this.listeners = [];
    await this.locks.release(this);
  }

  /** Called by the locks when the session went, or by a refused save: tells the runner once. */
  lose(cause: unknown): void {
    if (!this.held) return;
    this.held = false;
    const err = cause instanceof ConsumerError ? cause : this.deposed(cause);
    const listeners = this.listeners;
    this.listeners = [];
    for (const l of listeners) l(err);
  }

  private deposed(cause?: unknown): ConsumerError {
    return new ConsumerError(
      this.name,
      `this instance no longer holds it on ${this.locks.where} (its lock session ended, or another instance took it over): the checkpoint is refused, and another instance may run it`,
      cause === undefined ? undefined : { cause },
    );
  }
}
