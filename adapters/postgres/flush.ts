import { withConnection } from './connection';
import type { PgClientLike, PgPoolLike } from './driver';

/**
 * The flush barrier: a transaction that writes one WAL record (a logical decoding message, which
 * no output plugin forwards unless asked to) and commits with `synchronous_commit = on`. Its
 * COMMIT returns once the WAL is flushed through its own commit record, hence through every
 * commit made before it was sent, and, with a synchronous standby, once the standby has them.
 * A transaction that writes no WAL would not wait: an xid alone is not enough (measured with
 * pgbench on this project's machine: `SELECT txid_current()` 15,800/s, the flush-free rate;
 * this statement 3,600/s, the flush-bound one).
 *
 * Why (issue 14): a contended append commits in the head lock's transaction, and every other
 * instance waits on that lock through its COMMIT. With `synchronous_commit = on` the lock is
 * held through the WAL flush (1.9 ms of a 2.4 ms turn, measured with four instances); committed
 * with `off` and followed by this barrier in the same round trip, the lock goes as soon as the
 * commit record is written, the acknowledgement still waits for the flush, and the barriers of
 * several instances share one flush. The commit is visible to the others before it is durable:
 * what they do with it is said in `PostgresStore.flushed`.
 */
export const FLUSH_BARRIER =
  "SELECT set_config('synchronous_commit', 'on', true), pg_logical_emit_message(true, 'appendonly', '')";

/**
 * True when this session may run {@link FLUSH_BARRIER} (a built-in that PUBLIC may execute;
 * a server that revoked it, or lacks it, gets appends that flush inside the lock as before).
 */
export async function canBarrier(client: PgClientLike): Promise<boolean> {
  try {
    const { rows } = await client.query(
      "SELECT has_function_privilege('pg_logical_emit_message(boolean, text, text)', 'EXECUTE') AS ok",
    );
    return (rows[0] as { ok?: boolean } | undefined)?.ok === true;
  } catch {
    return false;
  }
}

/** The server's run (its start time): a barrier answered by another run proves nothing of before. */
const BARRIER_AND_RUN = `${FLUSH_BARRIER}, pg_postmaster_start_time()::text AS run`;

/** The run of the server `client` is connected to (see {@link ServerRestartedError}). */
export async function serverRun(client: PgClientLike): Promise<string> {
  const { rows } = await client.query('SELECT pg_postmaster_start_time()::text AS run');
  return String((rows[0] as { run: unknown }).run);
}

/**
 * The barrier was answered by a server that started after the last one this flusher saw: what
 * was read before may have been lost in a crash (a commit not yet flushed is gone, whatever the
 * new run flushes), so the barrier proves nothing of it.
 */
export class ServerRestartedError extends Error {}

/**
 * Waits for durability, one barrier at a time: a barrier covers what committed before it was
 * sent, so a call made while one is under way waits for the next, which every call made in the
 * meantime shares. At most one connection of the pool is taken, however many readers ask (each
 * taking its own, a slow flush would drain the pool: a synchronous standby that is away holds
 * every barrier until it is back).
 */
export class Flusher {
  private running: Promise<void> | null = null;
  private queued: Promise<void> | null = null;

  constructor(
    private readonly pool: PgPoolLike,
    private readonly closed: () => boolean,
    /** The server run the store opened on: what it reads from then on is this run's. */
    private run: string,
  ) {}

  /**
   * Resolves once everything committed before the call is durable; rejects once closed, and
   * with {@link ServerRestartedError} when the server restarted since the last barrier (once:
   * the next call trusts the new run).
   */
  flushed(): Promise<void> {
    if (this.queued !== null) return this.queued;
    if (this.running === null) return this.start();
    const queued = this.running.then(ignore, ignore).then(() => {
      this.queued = null;
      return this.start();
    });
    this.queued = queued;
    return queued;
  }

  private start(): Promise<void> {
    const run = flushedOn(this.pool, this.closed).then((answered) => {
      if (answered === this.run) return;
      const before = this.run;
      this.run = answered;
      throw new ServerRestartedError(`the database restarted (started ${before}, now ${answered})`);
    });
    this.running = run;
    const clear = () => {
      if (this.running === run) this.running = null;
    };
    run.then(clear, clear);
    return run;
  }
}

/** Longest pause between two attempts of {@link flushedOn} while the database is away. */
const MAX_RETRY_MS = 1000;

/**
 * The barrier on a connection of the pool, tried again (50 ms, doubling to a second) while the
 * database is unreachable, since what waits on it is a report that must not be lost; resolves
 * with the run of the server that answered. Rejects once `closed()`.
 */
async function flushedOn(pool: PgPoolLike, closed: () => boolean): Promise<string> {
  for (let pause = 50; ; pause = Math.min(pause * 2, MAX_RETRY_MS)) {
    if (closed()) throw new Error('the store closed before the log was known to be durable');
    const run = await withConnection(pool, (client) => client.query(BARRIER_AND_RUN)).then(
      (r) => String((r.rows[0] as { run: unknown }).run),
      () => null,
    );
    if (run !== null) return run;
    await new Promise((resolve) => setTimeout(resolve, pause).unref());
  }
}

function ignore(): void {}
