import {
  type ConsumerLease,
  type ConsumerRecord,
  ConsumerError,
  type EventGroup,
  LogCompactedError,
  type ParkedEvent,
} from '../../src/index';
import { EVENT_ROW_COLUMNS, type EventRow, groupsOfRows } from '../common/row-groups';
import { persistenceError } from './connection';
import type { PgClientLike, PgPoolLike } from './driver';
import { inSnapshot, parse, readHeadRow } from './replay';
import type { Tables } from './schema';

/*
 * Durable consumers on PostgreSQL. `read` is a keyset query on the events' primary key in a
 * REPEATABLE READ transaction of its own (never the writer's connection), so it sees committed
 * groups only, whole. The records are rows of `<schema>.consumers`, one per (log, name), made by
 * the first save (CREATE TABLE IF NOT EXISTS: an administrator may make it beforehand for a role
 * without CREATE); the schema version does not move, so older appendonly code shares the log.
 *
 * One holder per name: an instance runs a consumer only while it holds a session-level advisory
 * lock for (schema, log, name) on a connection it keeps checked out for as long as it runs it
 * (`holdConsumer`); the others wait as standbys and try again. Its checkpoints are written on
 * that same session, which is the fence: a session that can still run a statement still holds
 * its lock (it is only unlocked by `release`), and once it ended (killed, terminated, lost) no
 * statement of it can commit, so a deposed holder cannot move the position of the next one.
 * And since every save of a holder commits before its lock goes, the next holder, which loads
 * the record after it took the lock, sees the last one. A save never moves a stored position
 * back either (belt and braces, and for stores' callers without a lease).
 */

/** How often a held lease checks that its session is alive, in ms (a lost one stops the runner). */
const LEASE_HEARTBEAT_MS = 1000;

function consumersTable(t: Tables): string {
  return `"${t.schema}".consumers`;
}

/** The groups holding events after `after`, whole, up to about `limit` events (see `EventStore.read`). */
export async function readGroups(
  pool: PgPoolLike,
  t: Tables,
  log: string,
  where: string,
  after: number,
  limit: number,
): Promise<EventGroup[]> {
  let out: EventGroup[] = [];
  await inSnapshot(pool, where, async (client) => {
    const head = await readHeadRow(client, t, log, where);
    const first = await client.query(
      `SELECT max(seq)::float8 AS seq FROM ${t.events} WHERE log = $1 AND seq <= $2 AND n > 0`,
      [log, after + 1],
    );
    const at = (first.rows[0] as { seq: number | null } | undefined)?.seq;
    const start = at === null || at === undefined ? after + 1 : Number(at);
    for (let rowsWanted = limit + 64; ; rowsWanted *= 2) {
      const rows = (
        await client.query({
          text: `SELECT ${EVENT_ROW_COLUMNS} FROM ${t.events} WHERE log = $1 AND seq >= $2 ORDER BY seq LIMIT $3`,
          values: [log, start, rowsWanted],
          rowMode: 'array',
        })
      ).rows as EventRow[];
      // Below the snapshot the rows may be gone (compacted); a store keeping history still has them.
      if (after < head.snapshotSeq && (rows.length === 0 || Number(rows[0][0]) > after + 1))
        throw new LogCompactedError(
          after,
          rows.length === 0 ? head.snapshotSeq + 1 : Number(rows[0][0]),
          where,
        );
      const groups = groupsOfRows(rows, where, limit, (text, seq) => parse(text, where, seq));
      if (groups.length > 0 || rows.length < rowsWanted) {
        out = groups.filter((g) => g.seq + g.events.length - 1 > after);
        return;
      }
    }
  });
  return out;
}

async function withClient<T>(
  pool: PgPoolLike,
  where: string,
  work: (client: PgClientLike) => Promise<T>,
): Promise<T> {
  const client = await pool.connect().catch((err: unknown) => {
    throw persistenceError(`cannot reach ${where}`, err);
  });
  const ignore = () => {};
  client.on('error', ignore);
  let broken = false;
  try {
    return await work(client);
  } catch (err) {
    broken = true;
    throw persistenceError(`consumers of ${where}`, err);
  } finally {
    // A destroyed connection keeps the listener: the server's FATAL may still arrive after it.
    if (!broken) client.removeListener('error', ignore);
    client.release(broken);
  }
}

async function tableExists(client: PgClientLike, t: Tables): Promise<boolean> {
  const r = await client.query('SELECT to_regclass($1) IS NOT NULL AS found', [consumersTable(t)]);
  return (r.rows[0] as { found: boolean }).found;
}

export function loadConsumers(
  pool: PgPoolLike,
  t: Tables,
  log: string,
  where: string,
): Promise<ConsumerRecord[]> {
  return withClient(pool, where, async (client) => {
    if (!(await tableExists(client, t))) return [];
    const r = await client.query(
      `SELECT name, position::float8 AS position, parked FROM ${consumersTable(t)} WHERE log = $1 ORDER BY name`,
      [log],
    );
    return (r.rows as { name: string; position: number; parked: string }[]).map((row) => ({
      name: row.name,
      position: Number(row.position),
      parked: JSON.parse(row.parked) as ParkedEvent[],
    }));
  });
}

/** An upsert that never moves a stored position back (see above). */
export function saveConsumer(
  pool: PgPoolLike,
  t: Tables,
  log: string,
  where: string,
  record: ConsumerRecord,
): Promise<void> {
  return withClient(pool, where, (client) => upsert(client, t, log, record));
}

async function upsert(client: PgClientLike, t: Tables, log: string, record: ConsumerRecord): Promise<void> {
  if (!(await tableExists(client, t))) {
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${consumersTable(t)} (log text NOT NULL, name text NOT NULL, position bigint NOT NULL, parked text NOT NULL, PRIMARY KEY (log, name))`,
    );
  }
  await client.query(
    `INSERT INTO ${consumersTable(t)} AS c (log, name, position, parked) VALUES ($1, $2, $3, $4)
     ON CONFLICT (log, name) DO UPDATE SET position = excluded.position, parked = excluded.parked
     WHERE c.position <= excluded.position`,
    [log, record.name, record.position, JSON.stringify(record.parked)],
  );
}

/**
 * True when a statement's error says its session is gone or going (no SQLSTATE: the socket
 * broke; class 08: connection exception; 57P: the server terminated it), as opposed to an error
 * of the statement on a session that still holds its locks (a missing grant, say).
 */
function sessionEnded(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return true;
  return code.startsWith('08') || code.startsWith('57P');
}

/**
 * Takes the consumer name's advisory lock on a connection of its own, kept checked out while
 * the lease is held; null (the connection back to the pool) when another session holds it.
 * The two-key form keeps these locks apart from the store's one-key locks (compaction, schema);
 * two names of a log whose hashes collide would share a lock: one would wait for the other.
 */
export async function holdConsumer(
  pool: PgPoolLike,
  t: Tables,
  log: string,
  where: string,
  name: string,
): Promise<ConsumerLease | null> {
  const client = await pool.connect().catch((err: unknown) => {
    throw persistenceError(`cannot reach ${where}`, err);
  });
  const ignore = () => {};
  client.on('error', ignore);
  let got: boolean;
  try {
    const r = await client.query('SELECT pg_try_advisory_lock(hashtext($1), hashtext($2)) AS got', [
      `appendonly consumer ${t.schema}.${log}`,
      name,
    ]);
    got = (r.rows[0] as { got: boolean }).got;
  } catch (err) {
    client.release(true); // keeps `ignore`: a late 'error' of the destroyed connection is heard
    throw persistenceError(`consumer ${JSON.stringify(name)} of ${where}`, err);
  }
  client.removeListener('error', ignore);
  if (!got) {
    client.release();
    return null;
  }
  return new PgConsumerLease(client, t, log, where, name);
}

/** A held consumer lock: its session, a heartbeat on it, and saves through it. */
class PgConsumerLease implements ConsumerLease {
  held = true;
  private listeners: ((err: Error) => void)[] = [];
  private readonly heartbeat: ReturnType<typeof setInterval>;
  /** The last statement on the session: one at a time (pg queues them, deprecated in pg 9). */
  private inFlight: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly client: PgClientLike,
    private readonly t: Tables,
    private readonly log: string,
    private readonly where: string,
    private readonly name: string,
  ) {
    client.on('error', this.onError);
    // A session that died without a word (a cut cable) is found by the next statement on it: one
    // each second, so a holder stops handing events soon after it can no longer be sure.
    this.heartbeat = setInterval(() => {
      void this.exclusive(() => this.client.query('SELECT 1')).catch((err: unknown) => {
        if (sessionEnded(err)) this.lose(err);
      });
    }, LEASE_HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  private readonly onError = (err: Error) => this.lose(err);

  /** Runs `work` once the statement before it settled. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.inFlight.then(work, work);
    this.inFlight = run.catch(() => {});
    return run;
  }

  onLost(listener: (err: Error) => void): void {
    if (!this.held) listener(this.deposed());
    else this.listeners.push(listener);
  }

  async save(record: ConsumerRecord): Promise<void> {
    if (!this.held) throw this.deposed();
    try {
      await this.exclusive(() => {
        // Checked again in turn: the session may have ended while a heartbeat ran.
        if (!this.held) throw this.deposed();
        return upsert(this.client, this.t, this.log, record);
      });
    } catch (err) {
      if (err instanceof ConsumerError) throw err;
      if (sessionEnded(err)) {
        this.lose(err);
        throw this.deposed(err);
      }
      throw persistenceError(`consumers of ${this.where}`, err);
    }
  }

  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    clearInterval(this.heartbeat);
    await this.inFlight;
    let broken = false;
    try {
      await this.client.query('SELECT pg_advisory_unlock(hashtext($1), hashtext($2))', [
        `appendonly consumer ${this.t.schema}.${this.log}`,
        this.name,
      ]);
    } catch {
      broken = true; // the session is gone, and its lock with it
    }
    this.client.removeListener('error', this.onError);
    this.client.release(broken);
  }

  private lose(cause: unknown): void {
    if (!this.held) return;
    this.held = false;
    clearInterval(this.heartbeat);
    this.client.removeListener('error', this.onError);
    // Keep a listener: the broken connection may still report errors after it is let go.
    this.client.on('error', () => {});
    this.client.release(true);
    const err = this.deposed(cause);
    const listeners = this.listeners;
    this.listeners = [];
    for (const l of listeners) l(err);
  }

  private deposed(cause?: unknown): ConsumerError {
    return new ConsumerError(
      this.name,
      `this instance no longer holds it on ${this.where} (its lock session ended): the checkpoint is refused, and another instance may run it`,
      cause === undefined ? undefined : { cause },
    );
  }
}

export function deleteConsumer(
  pool: PgPoolLike,
  t: Tables,
  log: string,
  where: string,
  name: string,
): Promise<boolean> {
  return withClient(pool, where, async (client) => {
    if (!(await tableExists(client, t))) return false;
    const r = await client.query(`DELETE FROM ${consumersTable(t)} WHERE log = $1 AND name = $2`, [
      log,
      name,
    ]);
    return (r.rowCount ?? 0) > 0;
  });
}
