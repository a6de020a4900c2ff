import { randomUUID } from 'node:crypto';
import {
  AppClosedError,
  AppendConflictError,
  ConsumerError,
  type EventGroup,
  type FsyncPolicy,
  type Logger,
  LogLostError,
  PersistenceError,
} from '../../src/index';
import { GroupCommit, type Waiting } from '../../src/kit/index';
import {
  type AppendStatements,
  addGroup,
  appliedNow,
  type BatchRows,
  insertAndCommit,
  insertBatch,
  landed,
  newRows,
  readHead,
} from './append';
import { saveReactionPositions } from './consumers';
import { fence, type HeldConnection, hold, isConnectionLoss, letGo, persistenceError } from './connection';
import type { PgClientLike, PgPoolLike } from './driver';
import { FLUSH_BARRIER } from './flush';
import { HeadLock } from './head-lock';
import type { HeadRow, LockedRead } from './replay';
import type { Tables } from './schema';
import { pinSynchronousCommit, unpinSynchronousCommit } from './synchronous-commit';

/**
 * How long after a conflict the writer takes the head lock before each append instead of
 * appending optimistically. Under contention an optimistic append mostly queues behind another
 * instance's lock only to find the head moved, then reads the head, then queues again for the
 * lock of its catch-up: three round trips and two waits where locking first takes one of each
 * (the lock's round trip also reads the events the catch-up needs, see HeadLock.keep). Without
 * contention locking first costs a round trip per batch, so it ends a second after the last
 * conflict.
 */
export const CONTENDED_MS = 1000;

/** One batch: its rows, the appends waiting on it, and, once committed, its verdict. */
interface Batch extends Waiting {
  readonly rows: BatchRows;
  /** Set by the commit when the head had moved: every append of the batch rejects with it. */
  conflict: AppendConflictError | null;
}

/** What the writer tells its store. */
export interface WriterHooks {
  /** A batch committed up to `seq` (the store NOTIFYs the others after the commit, never inside it). */
  committed(seq: number): void;
  /** A batch's reaction was fenced off: these consumers lost their names (`saveReactionPositions`). */
  fenced(names: readonly string[]): void;
}

/**
 * Group commit on the kit's GroupCommit, one append in flight per instance: the appends of one
 * event-loop turn form a batch, committed in one statement; what arrives meanwhile forms the
 * next, so an instance never races itself.
 *
 * A conflict is a verdict, not a failure: the commit returns normally with `conflict` set and
 * the batch's appends reject with it; from then on every batch is refused with a conflict too,
 * without a round trip, until `caughtUp()` (a replay read up to the head), as the contract says.
 * For {@link CONTENDED_MS} after a conflict, each batch first locks the head (HeadLock) and
 * appends only if the head is where the batch's commands were decided; otherwise that is the
 * conflict, found without writing, and the lock stays for its catch-up.
 *
 * A failure (the connection lost, the server down) is the kit's failed state: every pending
 * append rejects with one PersistenceError until `recover`. When the connection is lost while a
 * batch was in flight, its COMMIT may have happened: the writer reconnects once at once, ends
 * the lost connection's server process (`fence`), and looks the batch id up: found, the batch is
 * acknowledged; not found, it is sent again on the new connection. Neither lost nor duplicated.
 */
export class PgWriter {
  private readonly commit: GroupCommit<Batch>;
  private readonly headLock: HeadLock;
  private pending: Batch | null = null;
  private stale: AppendConflictError | null = null;
  private closed = false;
  private conn: HeldConnection | null = null;
  /** A connection being taken, shared by the callers meanwhile (see `connection`). */
  private taking: Promise<HeldConnection> | null = null;
  /** Counters for `stats()`. */
  conflicts = 0;
  batches = 0;
  reconnects = 0;
  /** Batches whose answer was lost and that the look-up found committed. */
  recoveredBatches = 0;
  /** The last sequence number this instance knows committed: its own batches, and what its replays read. */
  lastCommitted = 0;
  /** Characters of event data committed by this instance (the compaction trigger's growth). */
  bytesWritten = 0;
  /** The last command this instance applied, with its batch id, checked after a reconnect (`verifyLast`). */
  private lastApplied: { readonly seq: number; readonly batch: string } | null = null;
  /** Set by a reconnect: the next append or catch-up first checks `lastApplied`. */
  private unverified = false;
  /** A lost connection whose server process has not been ended yet (see `connection`). */
  private unfenced: HeldConnection | null = null;
  /** Until when appends lock the head before they write (see {@link CONTENDED_MS}). */
  private contendedUntil = 0;
  /**
   * Under `always`, an append in the head lock's transaction commits without waiting for the WAL
   * flush and waits for it after, in the same round trip (`FLUSH_BARRIER`): the lock is not held
   * through the flush. Set by the store when the session may run the barrier.
   */
  flushOutside = false;

  constructor(
    private readonly pool: PgPoolLike,
    private readonly t: Tables,
    private readonly log: string,
    private readonly policy: FsyncPolicy,
    private readonly statements: AppendStatements,
    private readonly where: string,
    private readonly logger: Logger,
    private readonly hooks: WriterHooks,
  ) {
    this.headLock = new HeadLock(t, log);
    this.commit = new GroupCommit<Batch>({
      take: () => this.take(),
      commit: (batch) => this.send(batch),
      drop: () => (this.pending === null ? [] : [this.take()!]),
      // One statement is one transaction: a failed one left nothing to undo.
      undo: () => {},
      error: (err) => persistenceError(`cannot append to ${where}`, err),
      failed: (error) => logger.error(`${error.message}; appends refused until the database is back`),
    });
  }

  /**
   * The connection, held for the store's lifetime; replays run on it too (never during an
   * append). Callers at once (an append's resend, a catch-up's check) share one attempt: two
   * would take two, and the one overwritten would stay checked out.
   */
  connection(): Promise<HeldConnection> {
    if (this.conn !== null && !this.conn.broken) return Promise.resolve(this.conn);
    this.taking ??= this.takeConnection().finally(() => {
      this.taking = null;
    });
    return this.taking;
  }

  private async takeConnection(): Promise<HeldConnection> {
    // A new connection after a lost one: the database may have restarted (see verifyLast).
    if (this.conn !== null) {
      this.unverified = true;
      this.unfenced ??= this.conn;
    }
    letGo(this.conn);
    this.conn = null;
    const conn = await hold(this.pool);
    // The lost one's server process may live on (only this side was cut: a proxy's reset, a
    // partition), in the head lock's transaction or in an append waiting for the row: every
    // instance would wait on it until the server's keepalive ends it. Ended before this
    // connection writes; kept to end until then, however many attempts that takes.
    try {
      if (this.unfenced !== null) await fence(conn.client, this.unfenced);
      this.unfenced = null;
      // Appends then find the policy's synchronous_commit on the session (under `always`).
      await pinSynchronousCommit(conn.client, this.policy);
    } catch (err) {
      conn.broken = true;
      letGo(conn);
      throw err;
    }
    if (this.closed) {
      // Closed meanwhile: `close` found no connection to give back, so this one goes back here.
      await unpinSynchronousCommit(conn.client).catch(() => {
        conn.broken = true;
      });
      letGo(conn);
      throw new AppClosedError(`the PostgresStore on ${this.where} is closed`);
    }
    this.conn = conn;
    return conn;
  }

  /** The error appends are refused with, or null. */
  get error(): PersistenceError | null {
    return this.commit.error;
  }

  /** True while appends are refused after a conflict, until a replay reaches the head. */
  get isStale(): boolean {
    return this.stale !== null;
  }

  /** Failures so far (a compaction asked before one is cancelled). */
  get failures(): number {
    return this.commit.failures;
  }

  append(group: EventGroup, epoch?: number): Promise<void> {
    const failure = this.commit.error;
    if (failure !== null) return Promise.reject(failure);
    if (this.closed)
      return Promise.reject(new AppClosedError(`the PostgresStore on ${this.where} is closed`));
    let batch = this.pending;
    if (batch === null) {
      batch = { rows: newRows(randomUUID(), group.seq), conflict: null, resolves: [], rejects: [] };
      this.pending = batch;
    }
    addGroup(batch.rows, group, epoch);
    const settled = batch;
    const promise = new Promise<void>((resolve, reject) => {
      settled.resolves.push(() => (settled.conflict === null ? resolve() : reject(settled.conflict)));
      settled.rejects.push(reject);
    });
    this.commit.schedule();
    return promise;
  }

  /**
   * After a reconnect: does the log still hold what this instance applied last, as it was (the
   * same seq from the same batch)? Under `synchronous_commit = off` a database crash drops the
   * last commits, acknowledged or not, and their sequence numbers are then given again to other
   * commands: the state this instance holds is then not the log's, and it must reload (rejects
   * with `LogLostError`, which the App answers by reloading). Checked before the first append and
   * the first catch-up after any connection of the store was lost; a full replay clears it.
   * `client`: another connection than the writer's (the check of `PostgresStore.flushed`).
   */
  async verifyLast(client?: PgClientLike): Promise<void> {
    if (!this.unverified) return;
    const last = this.lastApplied;
    if (last !== null) {
      const now = await appliedNow(client ?? (await this.connection()).client, this.t, this.log, last.seq);
      // Compacted away (its seq in the snapshot, the log gone on past it) is not lost.
      const compacted = now.batch === null && now.snapshotSeq >= last.seq && now.head >= last.seq;
      if (now.batch !== last.batch && !compacted) {
        const found =
          now.head < last.seq
            ? `the log ends at seq ${now.head}`
            : `seq ${last.seq} is now from batch ${now.batch ?? '(none)'}, not ${last.batch}`;
        throw new LogLostError(this.where, last.seq, found);
      }
    }
    this.unverified = false;
  }

  /** The last command this instance applied (its own commit or a replay's head), with its batch. */
  get last(): { readonly seq: number; readonly batch: string } | null {
    return this.lastApplied;
  }

  /** A connection of the store (the watcher's, a replay's) was lost: the database may have restarted. */
  suspect(): void {
    this.unverified = true;
  }

  /**
   * A replay read up to `head`: the instance has applied its batch. After a full replay the state
   * is the log's as it is now, so nothing earlier needs checking any more.
   */
  applied(head: HeadRow, full: boolean): void {
    if (head.seq >= (this.lastApplied?.seq ?? 0) || full)
      this.lastApplied = head.batch === null ? null : { seq: head.seq, batch: head.batch };
    if (full) this.unverified = false;
  }

  /**
   * After a conflict: locks the head row on the writer's connection for the catch-up (see
   * HeadLock) and returns that connection, which the catch-up goes on reading on, with what the
   * lock's round trip read already (the head, the first page after `after`).
   */
  async lockHead(after: number): Promise<{ client: PgClientLike; read: LockedRead }> {
    const conn = await this.connection();
    const read = await this.headLock.take(conn.client, after);
    // Others committed since this instance's last read: the log is contended (a turn's read
    // finds it so where no conflict does any more, see `Turns`).
    if (read.head.seq > after) this.contendedUntil = performance.now() + CONTENDED_MS;
    return { client: conn.client, read };
  }

  /**
   * The catch-up on the locked head ended: held a moment for the append, or released at once
   * after a failure (resolves once the ROLLBACK is answered, before the connection is used again).
   */
  async headRead(ok: boolean): Promise<void> {
    if (ok) this.headLock.expire();
    else await this.headLock.release(true);
  }

  /** A replay has read up to the head, `seq`: appends may go again. */
  caughtUp(seq: number): void {
    this.stale = null;
    if (seq > this.lastCommitted) this.lastCommitted = seq;
  }

  /**
   * Resolves once everything up to `seq` has committed (a compaction's snapshot holds the
   * commands applied but not yet committed); rejects if a conflict or a failure comes first,
   * as those commands will then never be in the log as the snapshot has them.
   *
   * The conflict is looked for before the position, at every look: the catch-up that follows a
   * conflict also moves `lastCommitted`, past `seq` as often as not, with the other instances'
   * commands where the snapshot has this one's. It can do so between two looks (on the head
   * lock the conflicting append kept, it reads without a round trip), and the snapshot then
   * recorded at `seq` is a state the log never had, `seq` perhaps inside another's command
   * (issue 14: a reload from it met a continuation row first). A conflict of a batch after
   * `seq` within the same wait also abandons the snapshot: the next one is taken at once.
   */
  async committedThrough(seq: number): Promise<void> {
    const conflicts = this.conflicts;
    const failures = this.commit.failures;
    for (;;) {
      if (this.conflicts !== conflicts || this.commit.failures !== failures || this.closed)
        throw new PersistenceError(
          'compaction abandoned: commands of its snapshot did not commit',
          'ECONFLICT',
        );
      if (this.lastCommitted >= seq) return;
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  /** Resolves once nothing is pending or in flight (close). */
  async drain(): Promise<void> {
    while (this.commit.error === null && (this.pending !== null || this.commit.running !== null)) {
      this.commit.schedule();
      await (this.commit.running ?? new Promise((resolve) => setImmediate(resolve)));
    }
    await this.commit.running;
  }

  /** Refuses later appends; the connection goes back to the pool once the head lock's transaction has ended. */
  async close(): Promise<void> {
    this.closed = true;
    await this.headLock.release();
    // A pool the user owns gets the session back as it lent it; failing that, not at all.
    if (this.conn !== null && !this.conn.broken)
      await unpinSynchronousCommit(this.conn.client).catch(() => {
        if (this.conn !== null) this.conn.broken = true;
      });
    letGo(this.conn);
    this.conn = null;
  }

  /** After a failure: a new connection, probed by a write to the head row; clears the failed state. */
  async recover(): Promise<void> {
    if (this.commit.error === null) return;
    // The connection is taken again, and the lost one's server process ended (`connection`).
    if (this.conn !== null) this.conn.broken = true;
    try {
      const conn = await this.connection();
      // A write (not a SELECT): a server that came back read-only (a standby) refuses it here.
      await conn.client.query(`UPDATE ${this.t.heads} SET seq = seq WHERE log = $1`, [this.log]);
      // Checked by the App's catch-up that follows, which reloads when the log lost commands.
      this.unverified = true;
    } catch (err) {
      throw persistenceError(`${this.where} still cannot be written`, err);
    }
    this.reconnects++;
    this.stale = null;
    this.commit.clear();
  }

  private take(): Batch | null {
    const batch = this.pending;
    this.pending = null;
    return batch;
  }

  private async send(batch: Batch): Promise<void> {
    if (this.stale !== null) {
      batch.conflict = this.stale;
      return;
    }
    const conn = await this.connection();
    await this.verifyLast();
    // After a conflict, the catch-up locked the head for this append: it runs in that transaction.
    let locked = this.headLock.claim(conn.client);
    let ok: boolean;
    try {
      if (!locked && this.contended() && batch.rows.reactions.length === 0) {
        // Contended: lock first, rather than fail after queueing behind the holder's lock.
        const after = batch.rows.firstSeq - 1;
        const read = await this.headLock.take(conn.client, after);
        if (read.head.seq !== after) {
          // Decided on a stale state: a conflict, the lock kept for the catch-up (HeadLock.keep).
          this.headLock.keep(after, read);
          this.conflict(batch, read.head.seq);
          return;
        }
        locked = this.headLock.claim(conn.client);
      }
      // In the lock's transaction: the append and its COMMIT in one round trip when it can.
      if (locked && batch.rows.reactions.length === 0)
        ok = await insertAndCommit(
          conn.client,
          this.statements,
          this.log,
          this.policy,
          batch.rows,
          this.flushOutside,
        );
      else {
        ok = await this.insert(conn.client, batch.rows, locked);
        if (locked) await conn.client.query(ok ? 'COMMIT' : 'ROLLBACK');
      }
    } catch (err) {
      if (!isConnectionLoss(err, conn)) {
        if (locked || batch.rows.reactions.length > 0) await conn.client.query('ROLLBACK').catch(() => {});
        if (!(err instanceof ConsumerError)) throw err;
        // A reaction's consumer was deposed before the commit: nothing of the batch landed. As
        // a conflict, the App rolls back what is in flight and decides it again, the reaction
        // now refused up front (its consumer no longer holds the name).
        this.hooks.fenced(batch.rows.reactions.map((r) => r.name));
        this.conflicts++;
        this.stale = new AppendConflictError(`${this.where}: ${err.message}`, undefined);
        batch.conflict = this.stale;
        return;
      }
      ok = await this.resend(conn, batch);
    }
    if (ok) {
      this.batches++;
      this.lastCommitted = batch.rows.lastSeq;
      this.lastApplied = { seq: batch.rows.lastSeq, batch: batch.rows.id };
      this.bytesWritten += batch.rows.bytes;
      this.hooks.committed(batch.rows.lastSeq);
      return;
    }
    const head = await readHead(conn.client, this.t, this.log).catch(() => undefined);
    this.conflict(batch, head);
  }

  /** Another instance appended first: the batch, and every one after it until `caughtUp`, is refused. */
  private conflict(batch: Batch, head: number | undefined): void {
    this.conflicts++;
    this.contendedUntil = performance.now() + CONTENDED_MS;
    this.stale = new AppendConflictError(
      `${this.where}: another instance appended first (seq ${batch.rows.firstSeq} expected the head at ${batch.rows.firstSeq - 1}${head === undefined ? '' : `, it is at ${head}`})`,
      head,
    );
    batch.conflict = this.stale;
  }

  /**
   * True while the log is contended and an append is pending or in flight: its outcome brings in
   * what the others committed before it by itself (the head moved: a conflict, whose catch-up
   * reads them; the head where this instance had it: there was nothing). A follower's catch-up
   * beside it is work done twice, whose reads compete with the lock holder's turn for the CPU
   * and the server (measured: 4 instances made ~75 follow catch-ups each per 1.5 s run, 4 round
   * trips apiece; skipped, the run's Node CPU went from ~600 to ~420 µs per command).
   */
  get catchesUpItself(): boolean {
    return this.contended() && (this.pending !== null || this.commit.running !== null);
  }

  /** True for {@link CONTENDED_MS} after a conflict or a locked read that found others' commands. */
  get isContended(): boolean {
    return this.contended();
  }

  /** True for {@link CONTENDED_MS} after a conflict: appends then lock the head first. */
  private contended(): boolean {
    return performance.now() < this.contendedUntil;
  }

  /** The answer to the batch was lost: once the old server process is gone, look, then send again if absent. */
  private async resend(lost: HeldConnection, batch: Batch): Promise<boolean> {
    // `lost` is the writer's connection (no catch-up runs beside an append to replace it):
    // `connection` replaces it and ends its server process before the look-up.
    lost.broken = true;
    const conn = await this.connection();
    this.reconnects++;
    this.unverified = true;
    await this.verifyLast();
    if (await landed(conn.client, this.t, this.log, batch.rows)) {
      // Committed, but perhaps not flushed (its commit did not wait, see flushOutside): the
      // server may still be up, the answer lost on the way. Acknowledged once it is durable.
      if (this.flushOutside) await conn.client.query(FLUSH_BARRIER);
      this.recoveredBatches++;
      this.logger.warn(
        `${this.where}: the connection was lost after COMMIT; batch ${batch.rows.id} had landed`,
      );
      return true;
    }
    return this.insert(conn.client, batch.rows, false);
  }

  /**
   * The batch's statement; with reactions, in one transaction with their consumers' positions
   * (`inTransaction`: the head lock's, committed by the caller), so that a batch found landed
   * after a lost answer has its positions too.
   */
  private async insert(client: PgClientLike, rows: BatchRows, inTransaction: boolean): Promise<boolean> {
    if (rows.reactions.length === 0) return insertBatch(client, this.statements, this.log, this.policy, rows);
    if (!inTransaction) await client.query('BEGIN');
    const ok = await insertBatch(client, this.statements, this.log, this.policy, rows);
    if (ok) await saveReactionPositions(client, this.t, this.log, rows.reactions);
    if (!inTransaction) await client.query(ok ? 'COMMIT' : 'ROLLBACK');
    return ok;
  }
}
