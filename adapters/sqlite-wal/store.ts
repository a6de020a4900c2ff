import * as fs from 'node:fs';
import type { SqliteDatabase } from './driver';
import {
  AppClosedError,
  type CompactionResult,
  type ConsumerRecord,
  type EventGroup,
  type EventStore,
  PersistenceError,
  type ReplayEnd,
  type ReplayOptions,
  type ReplayProgress,
  type ReplaySink,
  type SnapshotSource,
  type StoreContext,
  type StoreOpenInfo,
  StaleConsumerError,
  StoreLockedError,
  type StoreStats,
} from '../../src/index';
import { ReplayFeed } from '../../src/store/replay-batch';
import {
  CompactionScheduler,
  EverysecSyncer,
  ConsumerRetention,
  IDLE_COMPACTION_STATS,
} from '../../src/kit/index';
import { compactDatabase, historyBytes } from './compaction';
import { deleteConsumer, loadConsumers, readGroups, saveConsumer } from './consumers';
import { openDatabase, SYNCHRONOUS } from './database';
import { GroupWriter } from './group-writer';
import { resolveOptions, type ResolvedSqliteWalOptions, type SqliteWalStoreOptions } from './options';
import { estimateRows, type ReplayCounter, replayDatabase } from './replay';
import { cutTornTail } from './torn-tail';
import { WalFile } from './wal-syncer';

/** Redis's serverCron checks the rewrite trigger about once a second (stat() of two files: not per write). */
const CRON_MS = 1000;

/** `stats()` of the SQLite store: the common fields and its own. */
export interface SqliteWalStats extends StoreStats {
  /** Bytes of the database file. */
  readonly databaseSize: number;
  /** Bytes of the `-wal` file. */
  readonly walSize: number;
  /** The last sequence number the snapshot table covers. */
  readonly snapshotSeq: number;
}

/**
 * The SQLite-WAL store: one database file in WAL mode, on better-sqlite3. Same contract and
 * semantics as the AOF store, swapped in by one binding:
 *
 * ```ts
 * const app = await createApp({ ..., store: new SqliteWalStore({ file: './data/app.db', appendfsync: 'always' }) });
 * ```
 *
 * `always` ↔ `synchronous=FULL` with group commit (appends of one event-loop turn share one
 * transaction), `everysec` ↔ `NORMAL` with the WAL fsynced in the background every second,
 * `no` ↔ `OFF`. An append resolves once its transaction has committed. The file is locked
 * (SQLite's exclusive locking mode) while the store is open.
 *
 * Group commit, the everysec syncer and the compaction scheduler are the kit's, as the AOF
 * store's. Under `everysec`, "a write waits for a slow fsync" means a COMMIT: it writes WAL frames
 * into the file the pool is fsyncing, so a batch is postponed while that fsync runs, for up to
 * 2 s, then committed anyway and counted in `delayedFsync`, exactly as the AOF store postpones
 * its write(). The synchronous flushes (a compaction's swap, close) never wait.
 */
export class SqliteWalStore implements EventStore {
  readonly kind = 'sqlite-wal';
  /** A reaction's position is updated in the transaction of its events (see `EventStore.reactions`). */
  readonly reactions = true;
  private readonly options: ResolvedSqliteWalOptions;
  private db: SqliteDatabase | null = null;
  private context: StoreContext | null = null;
  private writer: GroupWriter | null = null;
  private wal: WalFile | null = null;
  private syncer: EverysecSyncer | null = null;
  /** Set while a compaction runs with noAppendfsyncOnRewrite: the background fsync skips. */
  private walPaused = false;
  private scheduler: CompactionScheduler | null = null;
  /** Bytes of `events_history` (kept below the snapshot): in the file, not in the trigger's size. */
  private keptBytes = 0;
  /** What compactions keep for consumers (made at open). */
  private retention: ConsumerRetention | null = null;
  private cron: NodeJS.Timeout | null = null;
  private closing = false;
  private replayed: ReplayCounter = { rowsRead: 0 };
  private replayRows = 0;

  constructor(options: SqliteWalStoreOptions) {
    this.options = resolveOptions(options);
  }

  /**
   * The better-sqlite3 connection, for reads and pragmas (e.g. `max_page_count`) by tools and
   * tests. Writing to the store's tables through it breaks the store's invariants.
   */
  get database(): SqliteDatabase {
    if (this.db === null) throw new AppClosedError(`the SqliteWalStore on ${this.options.file} is not open`);
    return this.db;
  }

  async open(context: StoreContext): Promise<StoreOpenInfo> {
    if (this.db !== null || this.closing)
      throw new StoreLockedError(`this SqliteWalStore on ${this.options.file} is already open`);
    const { file, appendfsync } = this.options;
    const { db, created } = openDatabase(file, appendfsync);
    try {
      cutTornTail(db, file, context.logger);
    } catch (err) {
      db.close();
      throw PersistenceError.from(`cannot repair ${file}`, err);
    }
    this.db = db;
    this.context = context;
    const writer = new GroupWriter(
      db,
      file,
      appendfsync === 'everysec'
        ? { mustPostpone: () => this.syncer!.mustPostpone(), committed: () => this.syncer!.written() }
        : {},
    );
    this.writer = writer;
    writer.lastSeq = Number(db.prepare('SELECT max(seq) FROM events').pluck().get() ?? 0);
    this.keptBytes = historyBytes(db);
    if (appendfsync === 'everysec') {
      const wal = new WalFile(`${file}-wal`);
      this.wal = wal;
      this.syncer = new EverysecSyncer({
        logger: context.logger,
        now: () => context.clock.now(),
        fsync: () => (this.closing || this.walPaused || writer.error !== null ? null : wal.sync()),
        resume: () => writer.schedule(),
        fsynced: context.fsynced,
        failed: (err) => {
          context.logger.error(`fsync of ${file}-wal failed: ${(err as Error).message}`);
          writer.fail(err);
        },
      });
    }
    this.scheduler = new CompactionScheduler(this.options, context, {
      unit: 'bytes',
      writes: writer,
      size: () => this.size(),
      run: (snapshots) => this.runCompaction(snapshots),
    });
    this.retention = new ConsumerRetention(this, this.options.maxConsumerLag, context);
    this.cron = setInterval(() => this.tick(), CRON_MS);
    this.cron.unref();
    return { kind: this.kind, location: file, created, sizeBytes: this.scheduler.stats().baseSize };
  }

  async replay(sink: ReplaySink, options?: ReplayOptions): Promise<ReplayEnd> {
    const db = this.assertOpen();
    this.replayed = { rowsRead: 0 };
    this.replayRows = Math.max(1, estimateRows(db));
    const feed = new ReplayFeed(sink, options, this.options.file);
    const file = this.options.file;
    for await (const batch of replayDatabase(db, file, this.context!.logger, this.replayed, options?.after))
      feed.push(batch);
    return feed.end;
  }

  append(group: EventGroup): Promise<void> {
    if (this.writer === null)
      return Promise.reject(new AppClosedError(`the SqliteWalStore on ${this.options.file} is not open`));
    this.scheduler!.appended();
    return this.writer.append(group);
  }

  /** BGREWRITEAOF; a call while one runs joins it or its follow-up (see CompactionScheduler). */
  compact(): Promise<CompactionResult> {
    if (this.db === null || this.closing) {
      return Promise.reject(new AppClosedError(`the SqliteWalStore on ${this.options.file} is not open`));
    }
    return this.scheduler!.compact();
  }

  /**
   * Probes that the database takes writes again: a committed write of eight pages (which needs
   * new pages and WAL frames, as a batch of appends does), then its removal, then an fsync of
   * the WAL under `everysec`. Rejects while the fault lasts. The probe proves that the fault
   * is gone now, not that the next batch will fit: if it fails, it is refused like any other.
   */
  async recover(): Promise<void> {
    const db = this.assertOpen();
    const writer = this.writer!;
    if (writer.error === null) return;
    try {
      if (db.inTransaction) db.exec('ROLLBACK');
      const pageSize = Number(db.pragma('page_size', { simple: true }));
      db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', zeroblob(?))").run(pageSize * 8);
      db.prepare("DELETE FROM meta WHERE key = 'probe'").run();
      await this.wal?.sync();
      this.syncer?.synced();
    } catch (err) {
      throw PersistenceError.from(`${this.options.file} still cannot be written`, err);
    }
    writer.lastSeq = Number(db.prepare('SELECT max(seq) FROM events').pluck().get() ?? 0);
    writer.clear();
    // The app now reloads its state from the log: no automatic compaction may snapshot it before
    // the app appends again.
    this.scheduler!.recovered();
  }

  /** Rows read against the rows there are (estimated from the sequence range: no byte count exists). */
  replayProgress(): ReplayProgress {
    return { done: this.replayed.rowsRead, total: this.replayRows, unit: 'records' };
  }

  stats(): SqliteWalStats {
    const writer = this.writer;
    const { databaseSize, walSize } = this.sizes();
    return {
      kind: this.kind,
      appendfsync: this.options.appendfsync,
      ...(this.scheduler?.stats() ?? IDLE_COMPACTION_STATS),
      lastWriteStatus: writer?.error ? 'err' : 'ok',
      // The size the trigger reads (events kept below the snapshot left out); the file's own are below.
      currentSize: this.size(),
      bufferLength: writer?.bufferLength ?? 0,
      pendingBioFsync: this.syncer?.running ? 1 : 0,
      delayedFsync: this.syncer?.delayed ?? 0,
      databaseSize,
      walSize,
      snapshotSeq:
        this.db !== null
          ? Number(this.db.prepare("SELECT value FROM meta WHERE key = 'snapshot_seq'").pluck().get())
          : 0,
      ...this.retention?.field(),
    };
  }

  /** Consumers: a keyset query on `events` (see `readGroups`); safe beside the group writer, whose transactions never span a turn. */
  async read(after: number, limit: number): Promise<readonly EventGroup[]> {
    return readGroups(this.assertOpen(), this.options.file, after, limit);
  }

  /** The consumers' records, from the `consumers` table. */
  async loadConsumers(): Promise<readonly ConsumerRecord[]> {
    return loadConsumers(this.assertOpen());
  }

  /** One transaction of its own, committed per the store's policy (`synchronous`), as an append. */
  async saveConsumer(record: ConsumerRecord): Promise<void> {
    const db = this.assertOpen();
    try {
      saveConsumer(db, record);
    } catch (err) {
      if (err instanceof StaleConsumerError) throw err;
      throw PersistenceError.from(
        `cannot store consumer ${JSON.stringify(record.name)} in ${this.options.file}`,
        err,
      );
    }
  }

  /** Deletes the consumer's row; false when there was none. */
  async deleteConsumer(name: string): Promise<boolean> {
    return deleteConsumer(this.assertOpen(), name);
  }

  async close(): Promise<void> {
    if (this.db === null || this.closing) return;
    this.closing = true;
    if (this.cron !== null) clearInterval(this.cron);
    this.scheduler?.stop(new AppClosedError(`the SqliteWalStore on ${this.options.file} is closing`));
    await this.scheduler?.idle();
    const db = this.db;
    this.writer!.close();
    await this.syncer?.stop();
    await this.wal?.close();
    try {
      // Whatever the policy, close leaves everything on disk: a FULL checkpoint fsyncs the WAL
      // and the database, then the WAL is emptied.
      if (this.writer!.error === null) {
        db.pragma('synchronous = FULL');
        db.pragma('wal_checkpoint(TRUNCATE)');
      }
    } finally {
      db.close();
      this.db = null;
      this.closing = false;
    }
  }

  /** One compaction (the scheduler decides when): compactDatabase, with noAppendfsyncOnRewrite around it. */
  private async runCompaction(snapshots: SnapshotSource): Promise<CompactionResult> {
    const db = this.assertOpen();
    const started = Date.now();
    const sizeBefore = this.size();
    const relaxed = this.options.noAppendfsyncOnRewrite && this.options.appendfsync !== 'no';
    if (relaxed) this.relaxSync(true);
    try {
      const { seq, keys } = await compactDatabase({
        db,
        file: this.options.file,
        writer: this.writer!,
        snapshots,
        keepHistory: this.options.keepHistory,
        retain: (seq) => this.retention!.plan(seq),
      });
      this.keptBytes = historyBytes(db);
      return { seq, keys, sizeBefore, sizeAfter: this.size(), durationMs: Date.now() - started };
    } finally {
      if (relaxed) this.relaxSync(false);
    }
  }

  /**
   * noAppendfsyncOnRewrite, as Redis: while a compaction runs, appends are not fsynced. Under
   * `always` commits drop to `synchronous=NORMAL` (written to the WAL, not fsynced); under
   * `everysec` the background fsync pauses. Checkpoints still fsync, so what was synced before
   * the compaction is never put at risk, only what is appended during it.
   */
  private relaxSync(on: boolean): void {
    const db = this.db;
    if (db === null || !db.open) return;
    if (this.options.appendfsync === 'always')
      db.pragma(`synchronous = ${on ? 'NORMAL' : SYNCHRONOUS.always}`);
    this.walPaused = on;
  }

  /** Once a second: the automatic compaction trigger (the everysec syncer has its own timer). */
  private tick(): void {
    if (this.db === null || this.writer === null || this.closing) return;
    this.scheduler?.maybeCompact();
  }

  /** Bytes of the database and its WAL (never opened by Node: see openDatabase). */
  private sizes(): { databaseSize: number; walSize: number } {
    return { databaseSize: fileSize(this.options.file), walSize: fileSize(`${this.options.file}-wal`) };
  }

  /** What the trigger reads: the file and its WAL, without the pages of the events kept below the snapshot. */
  private size(): number {
    const { databaseSize, walSize } = this.sizes();
    return Math.max(0, databaseSize + walSize - this.keptBytes);
  }

  private assertOpen(): SqliteDatabase {
    if (this.db === null || this.closing)
      throw new AppClosedError(`the SqliteWalStore on ${this.options.file} is not open`);
    return this.db;
  }
}

function fileSize(path: string): number {
  try {
    return fs.statSync(path).size;
  } catch {
    return 0;
  }
}
