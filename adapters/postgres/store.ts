import {
  AppClosedError,
  AppendonlyError,
  type CompactionResult,
  ConsumerError,
  type ConsumerLease,
  type ConsumerRecord,
  type EventGroup,
  type EventStore,
  PersistenceError,
  type ReplayEnd,
  type ReplayOptions,
  type ReplaySink,
  type SnapshotSource,
  type StoreContext,
  type StoreOpenInfo,
  StoreLockedError,
  type StoreStats,
} from '../../src/index';
import { ReplayFeed } from '../../src/store/replay-batch';
import { CompactionScheduler, ConsumerRetention, IDLE_COMPACTION_STATS } from '../../src/kit/index';
import { appendStatements } from './append';
import { compactLog } from './compaction';
import { ConsumerLocks } from './consumer-locks';
import { deleteConsumer, loadConsumers, readGroups, saveConsumer } from './consumers';
import { describeLocation, persistenceError, poolFor, withConnection } from './connection';
import type { PgClientLike, PgPoolLike } from './driver';
import { IncompatibleSchemaError } from './errors';
import { canBarrier, Flusher, ServerRestartedError, serverRun } from './flush';
import { type PostgresStoreOptions, type ResolvedPostgresOptions, resolveOptions } from './options';
import { catchUpInSnapshot, type HeadRow, inSnapshot, type LockedRead, replayLog } from './replay';
import { ensureLog, ensureSchema, type Tables, tablesOf } from './schema';
import { HeadWatcher } from './watcher';
import { PgWriter } from './writer';

/** Redis's serverCron checks the rewrite trigger about once a second. */
const CRON_MS = 1000;

/** `stats()` of the PostgreSQL store: the common fields and its own. */
export interface PostgresStats extends StoreStats {
  /** Where the log is: the connection string without its password, the schema and the log. */
  readonly location: string;
  /** The last head this instance has seen (its own commits, its replays, its polls). */
  readonly headSeq: number;
  /** Appends refused because another instance appended first. */
  readonly conflicts: number;
  /** Batches committed by this instance. */
  readonly batches: number;
  /** Connections taken again after a loss. */
  readonly reconnects: number;
  /** Batches whose COMMIT answer was lost and that were found committed. */
  readonly recoveredBatches: number;
  /** NOTIFYs received from other instances, and head polls made. */
  readonly notifications: number;
  readonly polls: number;
}

/**
 * The PostgreSQL store: one log shared by any number of instances (processes) on one database.
 *
 * ```ts
 * const store = new PostgresStore({ connectionString: process.env.DATABASE_URL, log: 'bank', appendfsync: 'always' });
 * ```
 *
 * Every command is ordered against every other on its log (`sharedLog`): an append that finds
 * the head moved by another instance rejects with `AppendConflictError`, the App rolls back,
 * reads the others' commands and decides its own again. Sequence numbers are dense and global
 * and seq order is commit order (see `schema.ts`). `always` ↔ `synchronous_commit = on`,
 * `everysec` and `no` ↔ `off`. Followers learn of the others' commits by NOTIFY and by polling
 * the head (`watch`); `head()` reads it. Needs PostgreSQL 14 or later.
 */
export class PostgresStore implements EventStore {
  /** Always `'postgres'`. */
  readonly kind = 'postgres';
  /** Other instances append to the same log. */
  readonly sharedLog = true;
  /** A reaction's position is updated in the transaction of its rows (see `EventStore.reactions`). */
  readonly reactions = true;
  private readonly options: ResolvedPostgresOptions;
  private readonly where: string;
  private readonly t: Tables;
  private pool: PgPoolLike | null = null;
  private writer: PgWriter | null = null;
  private watcher: HeadWatcher | null = null;
  private locks: ConsumerLocks | null = null;
  private scheduler: CompactionScheduler | null = null;
  /** What the compactions this instance runs keep for consumers (made at open). */
  private retention: ConsumerRetention | null = null;
  private cron: NodeJS.Timeout | null = null;
  private closing = false;
  /** Replays running now (a compaction does not snapshot the state during one). */
  private replaying = 0;
  /** Characters of event data read by replays: with the writer's, the log's size for the trigger. */
  private readonly replayed = { bytes: 0 };
  /**
   * Under `always`: resolves once every commit this instance can see is durable. A contended
   * append commits before its WAL flush and is acknowledged after it (`PgWriter.flushOutside`),
   * so another instance may read it in between, for about one flush. Such an instance applies it
   * (its state may run ahead of the durable log, as it does with its own commands before their
   * appends are durable), but reports it on `events$` and to its consumers only once this
   * resolves: what is reported is never lost in a database crash. (A crash in between leaves
   * a state that the check after the reconnect finds out and reloads, see `PgWriter.verifyLast`;
   * when the barrier is answered by a restarted server, that check runs first, and this rejects
   * with LogLostError when the log lost what the instance applied: it is then never reported.)
   * Absent under `everysec` and `no`, where a crash may drop what followers applied anyway.
   */
  flushed?: () => Promise<void>;
  /** Full replays begun (the open's, and every reload): see `flushed`. */
  private reloads = 0;
  /** The barrier alone (`flushed` without its check after a restart): for `read`. */
  private durable?: () => Promise<void>;

  constructor(options: PostgresStoreOptions) {
    this.options = resolveOptions(options);
    this.t = tablesOf(this.options.schema);
    this.where = describeLocation(this.options.connectionString, this.options.schema, this.options.log);
  }

  async open(context: StoreContext): Promise<StoreOpenInfo> {
    if (this.pool !== null || this.closing)
      throw new StoreLockedError(`this PostgresStore on ${this.where} is already open`);
    this.retention = new ConsumerRetention(this, this.options.maxConsumerLag, context);
    const { connectionString, log, appendfsync } = this.options;
    const pool = this.options.pool ?? poolFor(connectionString!);
    this.pool = pool;
    const writer = new PgWriter(
      pool,
      this.t,
      log,
      appendfsync,
      appendStatements(this.t),
      this.where,
      context.logger,
      {
        committed: (seq) => this.watcher?.notify(seq),
        fenced: (names) => {
          for (const name of names) this.locks?.deposed(name);
        },
      },
    );
    try {
      const conn = await writer.connection();
      const createdSchema = await ensureSchema(conn.client, this.t);
      const createdLog = await ensureLog(conn.client, this.t, log);
      if (appendfsync === 'always' && (await canBarrier(conn.client))) {
        writer.flushOutside = true;
        const flusher = new Flusher(
          pool,
          () => this.closing || this.pool === null,
          await serverRun(conn.client),
        );
        this.durable = () => flusher.flushed();
        // After a restart the barrier proves nothing of what this instance read before it: what
        // it applied last (an own commit, or a catch-up's head, every held group at or before
        // it) must still be in the log. A crash drops a suffix, so the rest is there too. A
        // reload since the call (the catch-up after the reconnect may come first) replaced what
        // was applied last: nothing then vouches for what was read before, and it is refused.
        this.flushed = () => {
          const reloads = this.reloads;
          return flusher.flushed().catch(async (err: unknown) => {
            if (!(err instanceof ServerRestartedError)) throw err;
            if (this.reloads !== reloads)
              throw new PersistenceError(
                `${this.where}: ${err.message}, and the state was reloaded since: what was read before is not known to be in the log`,
                'ERESTARTED',
              );
            writer.suspect();
            await withConnection(pool, (client) => writer.verifyLast(client));
          });
        };
      }
      this.writer = writer;
      // A lost LISTEN connection may mean a database restart: check what was applied (verifyLast).
      this.watcher = new HeadWatcher(
        pool,
        this.t,
        log,
        () => writer.suspect(),
        () => writer.isContended,
      );
      this.locks = new ConsumerLocks(pool, this.t, log, this.where);
      this.scheduler = new CompactionScheduler(this.options, context, {
        unit: 'bytes',
        writes: writer,
        size: () => this.size(),
        run: (snapshots) => this.runCompaction(snapshots),
      });
      this.cron = setInterval(() => {
        if (!this.closing) this.scheduler?.maybeCompact();
      }, CRON_MS);
      this.cron.unref();
      return { kind: this.kind, location: this.where, created: createdSchema || createdLog, sizeBytes: 0 };
    } catch (err) {
      await writer.close();
      await this.release();
      if (err instanceof IncompatibleSchemaError) throw err;
      throw persistenceError(`cannot open ${this.where}`, err);
    }
  }

  async replay(sink: ReplaySink, options?: ReplayOptions): Promise<ReplayEnd> {
    const writer = this.assertOpen();
    const feed = new ReplayFeed(sink, options, this.where);
    const full = options?.after === undefined;
    if (full) this.reloads++;
    if (full) this.replayed.bytes = 0;
    if (options?.after !== undefined) {
      await writer.verifyLast().catch((err: unknown) => {
        throw persistenceError(`cannot read ${this.where}`, err);
      });
    }
    this.replaying++;
    const found: { head: HeadRow | null } = { head: null };
    try {
      const where = this.where;
      const read = (client: PgClientLike, prefetched?: LockedRead) =>
        replayLog(
          {
            client,
            t: this.t,
            log: this.options.log,
            where,
            after: options?.after,
            counter: this.replayed,
            found,
            prefetched,
          },
          (b) => feed.push(b),
        );
      if (options?.after !== undefined && (writer.isStale || options.lock === true)) {
        // A catch-up after a conflict, or a turn's: on the locked head, so that the next append
        // lands (HeadLock).
        const locked = await writer.lockHead(options.after).catch((err: unknown) => {
          throw persistenceError(`cannot read ${where}`, err);
        });
        await read(locked.client, locked.read).then(
          () => writer.headRead(true),
          async (err: unknown) => {
            await writer.headRead(false);
            throw err;
          },
        );
      } else if (options?.after !== undefined)
        // A follower's catch-up: one round trip while it is small.
        await catchUpInSnapshot(this.pool!, this.t, this.options.log, options.after, where, read);
      else await inSnapshot(this.pool!, where, read);
    } finally {
      this.replaying--;
    }
    // Read up to the head: appends may go again after a conflict.
    writer.caughtUp(feed.lastSeq);
    if (found.head !== null && feed.lastSeq === found.head.seq) writer.applied(found.head, full);
    const watcher = this.watcher!;
    // A full replay (a reload) reads the log as it is: below what was known when it lost commits.
    if (feed.lastSeq > watcher.known || full) watcher.known = feed.lastSeq;
    if (full) this.scheduler?.rebase();
    return feed.end;
  }

  append(group: EventGroup): Promise<void> {
    if (this.writer === null)
      return Promise.reject(new AppClosedError(`the PostgresStore on ${this.where} is not open`));
    let epoch: number | undefined;
    if (group.consumer !== undefined && this.locks !== null) {
      // A reaction is decided only while its consumer holds the name; one that lost it since
      // must not commit (the next holder reacts to that event itself): refused here, and fenced
      // by the epoch in the transaction (saveReactionPositions) for a loss still on its way.
      epoch = this.locks.epochOf(group.consumer.name);
      if (epoch === undefined)
        return Promise.reject(
          new ConsumerError(
            group.consumer.name,
            `does not hold its name on ${this.where} any more: its reaction is not appended`,
          ),
        );
    }
    this.scheduler!.appended();
    return this.writer.append(group, epoch);
  }

  /** BGREWRITEAOF on the shared log; a call while one runs joins it or its follow-up (CompactionScheduler). */
  compact(): Promise<CompactionResult> {
    if (this.writer === null || this.closing)
      return Promise.reject(new AppClosedError(`the PostgresStore on ${this.where} is not open`));
    return this.scheduler!.compact();
  }

  /**
   * Calls `changed` when another instance may have appended (NOTIFY, or a head poll); not while
   * this instance's own append is going to read those commits anyway (`catchesUpItself`). A
   * commit that lands just after that append is then heard of at the latest by the next poll
   * (the hint may arrive before the append's answer is handled), or by the next append. The
   * head the hint saw goes with it, for the App's `lag`.
   */
  watch(changed: (head?: number) => void): () => void {
    const writer = this.assertOpen();
    return this.watcher!.watch((head) => {
      if (!writer.catchesUpItself) changed(head);
    });
  }

  /** Reactions: true while this instance holds the consumer's name (see `EventStore.holdsConsumer`). */
  holdsConsumer(name: string): boolean {
    return this.locks?.epochOf(name) !== undefined;
  }

  /** Consumers: committed groups after `after`, a keyset query in a transaction of its own. */
  async read(after: number, limit: number): Promise<readonly EventGroup[]> {
    this.assertOpen();
    const groups = await readGroups(this.pool!, this.t, this.options.log, this.where, after, limit);
    // A consumer acts on what it reads: only on what is durable (see `flushed`). Across a
    // restart that proves nothing, and the read is refused (the consumer reads again).
    if (groups.length > 0 && this.durable !== undefined)
      await this.durable().catch((err: unknown) => {
        throw persistenceError(`cannot read ${this.where}`, err);
      });
    return groups;
  }

  /** This log's consumers' records, from `<schema>.consumers`. */
  loadConsumers(): Promise<readonly ConsumerRecord[]> {
    this.assertOpen();
    return loadConsumers(this.pool!, this.t, this.options.log, this.where);
  }

  /** A row of `<schema>.consumers`, committed (durable per the server's synchronous_commit). */
  saveConsumer(record: ConsumerRecord): Promise<void> {
    this.assertOpen();
    return saveConsumer(this.pool!, this.t, this.options.log, this.where, record);
  }

  /**
   * The name's lease: its advisory lock, on the one session this store holds for the locks of
   * all its consumers; null while another instance holds it. Checkpoints go through the lease,
   * fenced by its epoch (see `consumer-locks.ts`).
   */
  holdConsumer(name: string): Promise<ConsumerLease | null> {
    this.assertOpen();
    return this.locks!.hold(name);
  }

  /** Deletes the consumer's row of this log; false when there was none. */
  deleteConsumer(name: string): Promise<boolean> {
    this.assertOpen();
    return deleteConsumer(this.pool!, this.t, this.options.log, this.where, name);
  }

  /** The last sequence number committed to the log by any instance, read from the head row now. */
  async head(): Promise<number> {
    this.assertOpen();
    try {
      return await this.watcher!.head();
    } catch (err) {
      throw persistenceError(`cannot read the head of ${this.where}`, err);
    }
  }

  /** After a PersistenceError: a new connection, the lost one's server process ended, a probe write. */
  async recover(): Promise<void> {
    await this.assertOpen().recover();
    // The app now reloads its state: no automatic compaction may snapshot it before it appends again.
    this.scheduler?.recovered();
  }

  stats(): PostgresStats {
    const w = this.writer;
    const watcher = this.watcher;
    return {
      kind: this.kind,
      appendfsync: this.options.appendfsync,
      ...(this.scheduler?.stats() ?? IDLE_COMPACTION_STATS),
      ...this.retention?.field(),
      lastWriteStatus: w?.error ? 'err' : 'ok',
      location: this.where,
      headSeq: watcher?.known ?? 0,
      conflicts: w?.conflicts ?? 0,
      batches: w?.batches ?? 0,
      reconnects: w?.reconnects ?? 0,
      recoveredBatches: w?.recoveredBatches ?? 0,
      notifications: watcher?.notifications ?? 0,
      polls: watcher?.polls ?? 0,
    };
  }

  async close(): Promise<void> {
    if (this.writer === null || this.closing) return;
    this.closing = true;
    if (this.cron !== null) clearInterval(this.cron);
    this.scheduler?.stop(new AppClosedError(`the PostgresStore on ${this.where} is closing`));
    await this.scheduler?.idle();
    try {
      await this.writer.drain();
    } finally {
      await this.writer.close();
      this.watcher?.close();
      this.locks?.close();
      this.writer = null;
      this.watcher = null;
      this.locks = null;
      await this.release();
      this.closing = false;
    }
  }

  /** One compaction (the scheduler decides when). */
  private async runCompaction(snapshots: SnapshotSource): Promise<CompactionResult> {
    const writer = this.assertOpen();
    const started = Date.now();
    const sizeBefore = this.size();
    try {
      const { seq, keys } = await compactLog(
        {
          pool: this.pool!,
          t: this.t,
          log: this.options.log,
          keepHistory: this.options.keepHistory,
          retain: (seq) => this.retention!.plan(seq),
          committedThrough: (seq) => writer.committedThrough(seq),
          steady: () => this.replaying === 0 && !writer.isStale,
          lastApplied: () => writer.last,
          suspect: () => writer.suspect(),
          where: this.where,
        },
        snapshots,
      );
      // The log now starts from the snapshot: its size is counted from here.
      this.replayed.bytes = 0;
      writer.bytesWritten = 0;
      return { seq, keys, sizeBefore, sizeAfter: this.size(), durationMs: Date.now() - started };
    } catch (err) {
      // The driver's errors (they carry a code) become PersistenceError; ours and a snapshot's pass as they are.
      if (err instanceof AppendonlyError || !(err instanceof Error && 'code' in err)) throw err;
      throw persistenceError(`cannot compact ${this.where}`, err);
    }
  }

  /** Characters of event data in the log, as this instance knows them (read, and written since). */
  private size(): number {
    return this.replayed.bytes + (this.writer?.bytesWritten ?? 0);
  }

  /** Ends the pool if the store made it (a pool the user gave stays theirs). */
  private async release(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    if (pool !== null && this.options.pool === null) await pool.end().catch(() => {});
  }

  private assertOpen(): PgWriter {
    if (this.writer === null || this.closing)
      throw new AppClosedError(`the PostgresStore on ${this.where} is not open`);
    return this.writer;
  }
}
