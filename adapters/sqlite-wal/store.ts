import * as fs from 'node:fs';
import type Database from 'better-sqlite3';
import {
  AppClosedError,
  type CompactionResult,
  type EventGroup,
  type EventStore,
  PersistenceError,
  type ReplayEnd,
  type ReplayOptions,
  type ReplaySink,
  type StoreContext,
  type StoreOpenInfo,
  StoreLockedError,
  type StoreStats,
} from '../../src/index';
import { ReplayFeed } from '../../src/store/replay-batch';
import { compactDatabase } from './compaction';
import { openDatabase, SYNCHRONOUS } from './database';
import { GroupWriter } from './group-writer';
import { resolveOptions, type ResolvedSqliteWalOptions, type SqliteWalStoreOptions } from './options';
import { estimateRows, type ReplayCounter, replayDatabase } from './replay';
import { cutTornTail } from './torn-tail';
import { WalSyncer } from './wal-syncer';

/** Redis's serverCron checks the rewrite trigger and fsyncs the AOF about once a second. */
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
 */
export class SqliteWalStore implements EventStore {
  readonly kind = 'sqlite-wal';
  private readonly options: ResolvedSqliteWalOptions;
  private db: Database.Database | null = null;
  private context: StoreContext | null = null;
  private writer: GroupWriter | null = null;
  private syncer: WalSyncer | null = null;
  private cron: NodeJS.Timeout | null = null;
  private closing = false;
  private running: Promise<CompactionResult> | null = null;
  private scheduled: Promise<CompactionResult> | null = null;
  private rewriteStartedAt = 0;
  private rewrites = 0;
  private consecutiveFailures = 0;
  private lastRewriteTimeSec = -1;
  private lastBgrewriteStatus: 'ok' | 'err' = 'ok';
  private baseSize = 0;
  /** Set by `recover()` until the next append: see there. */
  private holdAutoCompaction = false;
  private replayed: ReplayCounter = { rowsRead: 0 };
  private replayRows = 0;
  private replayBytes = 0;

  constructor(options: SqliteWalStoreOptions) {
    this.options = resolveOptions(options);
  }

  /**
   * The better-sqlite3 connection, for reads and pragmas (e.g. `max_page_count`) by tools and
   * tests. Writing to the store's tables through it breaks the store's invariants.
   */
  get database(): Database.Database {
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
    this.writer = new GroupWriter(db, file);
    this.writer.lastSeq = Number(db.prepare('SELECT max(seq) FROM events').pluck().get() ?? 0);
    this.syncer = appendfsync === 'everysec' ? new WalSyncer(`${file}-wal`) : null;
    this.baseSize = this.size();
    this.cron = setInterval(() => this.tick(), CRON_MS);
    this.cron.unref();
    return { kind: this.kind, location: file, created, sizeBytes: this.baseSize };
  }

  async replay(sink: ReplaySink, options?: ReplayOptions): Promise<ReplayEnd> {
    const db = this.assertOpen();
    this.replayed = { rowsRead: 0 };
    this.replayRows = Math.max(1, estimateRows(db));
    this.replayBytes = this.size();
    const feed = new ReplayFeed(sink, options, this.options.file);
    for await (const batch of replayDatabase(db, this.options.file, this.context!.logger, this.replayed))
      feed.push(batch);
    return feed.end;
  }

  append(group: EventGroup): Promise<void> {
    if (this.writer === null)
      return Promise.reject(new AppClosedError(`the SqliteWalStore on ${this.options.file} is not open`));
    this.holdAutoCompaction = false;
    return this.writer.append(group);
  }

  compact(): Promise<CompactionResult> {
    if (this.db === null || this.closing) {
      return Promise.reject(new AppClosedError(`the SqliteWalStore on ${this.options.file} is not open`));
    }
    if (this.running === null) return this.startCompaction();
    // Like BGREWRITEAOF during a rewrite: one more runs after it, covering what came since. A
    // write failure meanwhile cancels it: the app is about to reload its state from the log, and
    // a snapshot taken during that reload would be of a half-loaded state.
    const failures = this.writer!.failures;
    this.scheduled ??= this.running
      .catch(() => {})
      .then(() => {
        this.scheduled = null;
        const writer = this.writer!;
        if (writer.failures !== failures) {
          throw new PersistenceError(
            `compaction of ${this.options.file} cancelled: a write failed`,
            writer.error?.code,
          );
        }
        return this.startCompaction();
      });
    return this.scheduled;
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
      await this.syncer?.sync();
    } catch (err) {
      throw PersistenceError.from(`${this.options.file} still cannot be written`, err);
    }
    writer.lastSeq = Number(db.prepare('SELECT max(seq) FROM events').pluck().get() ?? 0);
    writer.clear();
    // The app now reloads its state from the log: no automatic compaction may snapshot it before
    // the app appends again.
    this.holdAutoCompaction = true;
  }

  replayProgress(): { bytesRead: number; bytesTotal: number } {
    const share = Math.min(1, this.replayed.rowsRead / Math.max(1, this.replayRows));
    return { bytesRead: Math.round(this.replayBytes * share), bytesTotal: this.replayBytes };
  }

  stats(): SqliteWalStats {
    const writer = this.writer;
    const { databaseSize, walSize } = this.sizes();
    return {
      kind: this.kind,
      appendfsync: this.options.appendfsync,
      rewriteInProgress: this.running !== null,
      rewriteScheduled: this.scheduled !== null,
      lastRewriteTimeSec: this.lastRewriteTimeSec,
      currentRewriteTimeSec:
        this.running !== null ? Math.round((Date.now() - this.rewriteStartedAt) / 1000) : -1,
      lastBgrewriteStatus: this.lastBgrewriteStatus,
      rewrites: this.rewrites,
      rewritesConsecutiveFailures: this.consecutiveFailures,
      lastWriteStatus: writer?.error ? 'err' : 'ok',
      currentSize: databaseSize + walSize,
      baseSize: this.baseSize,
      bufferLength: writer?.bufferLength ?? 0,
      pendingBioFsync: this.syncer?.running ? 1 : 0,
      delayedFsync: this.syncer?.delayed ?? 0,
      databaseSize,
      walSize,
      snapshotSeq:
        this.db !== null
          ? Number(this.db.prepare("SELECT value FROM meta WHERE key = 'snapshot_seq'").pluck().get())
          : 0,
    };
  }

  async close(): Promise<void> {
    if (this.db === null || this.closing) return;
    this.closing = true;
    if (this.cron !== null) clearInterval(this.cron);
    while (this.running !== null || this.scheduled !== null) {
      await (this.scheduled ?? this.running)?.catch(() => {});
    }
    const db = this.db;
    this.writer!.close();
    await this.syncer?.close();
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

  private startCompaction(): Promise<CompactionResult> {
    const db = this.assertOpen();
    const writer = this.writer!;
    if (writer.error !== null) return Promise.reject(writer.error);
    const started = Date.now();
    this.rewriteStartedAt = started;
    const sizeBefore = this.size();
    const relaxed = this.options.noAppendfsyncOnRewrite && this.options.appendfsync !== 'no';
    if (relaxed) this.relaxSync(true);
    const run = compactDatabase({
      db,
      file: this.options.file,
      writer,
      snapshots: this.context!.snapshots,
      keepHistory: this.options.keepHistory,
    }).then(
      ({ seq, keys }) => {
        if (relaxed) this.relaxSync(false);
        const sizeAfter = this.size();
        this.baseSize = sizeAfter;
        this.finishRewrite(started, 'ok');
        return { seq, keys, sizeBefore, sizeAfter, durationMs: Date.now() - started };
      },
      (err: unknown) => {
        if (relaxed) this.relaxSync(false);
        this.finishRewrite(started, 'err');
        this.context?.logger.error(`compaction of ${this.options.file} failed: ${(err as Error).message}`);
        throw err;
      },
    );
    this.running = run;
    return run;
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
    if (this.syncer !== null) this.syncer.paused = on;
  }

  private finishRewrite(started: number, status: 'ok' | 'err'): void {
    this.running = null;
    this.lastBgrewriteStatus = status;
    this.lastRewriteTimeSec = Math.round((Date.now() - started) / 1000);
    if (status === 'ok') {
      this.rewrites++;
      this.consecutiveFailures = 0;
    } else {
      this.consecutiveFailures++;
    }
  }

  /** Once a second: the background fsync (everysec) and the automatic compaction trigger. */
  private tick(): void {
    const writer = this.writer;
    if (this.db === null || writer === null || this.closing) return;
    if (this.syncer !== null && !this.syncer.paused && writer.error === null) {
      this.syncer.tick().catch((err: unknown) => {
        writer.fail(err);
        this.context?.logger.error(`fsync of ${this.options.file}-wal failed: ${(err as Error).message}`);
      });
    }
    const { autoRewritePercentage: percent, autoRewriteMinSize: minSize } = this.options;
    if (percent === 0 || this.running !== null || writer.error !== null || this.holdAutoCompaction) return;
    const size = this.size();
    const base = Math.max(1, this.baseSize);
    if (size > minSize && ((size - base) * 100) / base >= percent) {
      this.context?.logger.info(
        `starting automatic compaction of ${this.options.file}: ${size} bytes, ${Math.round(((size - base) * 100) / base)}% growth`,
      );
      this.startCompaction().catch(() => {});
    }
  }

  /** Bytes of the database and its WAL (never opened by Node: see openDatabase). */
  private sizes(): { databaseSize: number; walSize: number } {
    return { databaseSize: fileSize(this.options.file), walSize: fileSize(`${this.options.file}-wal`) };
  }

  private size(): number {
    const { databaseSize, walSize } = this.sizes();
    return databaseSize + walSize;
  }

  private assertOpen(): Database.Database {
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
