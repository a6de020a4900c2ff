import * as path from 'node:path';
import {
  AppClosedError,
  type CompactionResult,
  type ConsumerRecord,
  type EventGroup,
  LogCompactedError,
  type EventStore,
  type ReplayEnd,
  type ReplayOptions,
  type ReplayProgress,
  type ReplaySink,
  type SnapshotSource,
  StoreLockedError,
  type StoreContext,
  type StoreOpenInfo,
  type StoreStats,
} from '../../src/index';
import { ReplayFeed, type ReplayRecord, toReplayGroup } from '../../src/store/replay-batch';
import { CompactionScheduler, ConsumerRetention, IDLE_COMPACTION_STATS } from '../../src/kit/index';
import { acquireDirLock, type DirLock } from '../common/dir-lock';
import { CONSUMERS_FILE, ConsumerFile } from './consumer-file';
import { LogDir, TEMP_PREFIX } from './log-dir';
import { SeqIndex } from './seq-index';
import type { Manifest } from './manifest';
import { type AofStoreOptions, type ResolvedAofOptions, resolveAofOptions } from './options';
import { type LogFile, type ReadOptions, type ReadSummary, readLog, readLoggedPositions } from './reader';
import type { AofGroup, LoggedPosition } from './record-codec';
import { type RewriteHost, runRewrite } from './rewrite';
import { AofWriter } from './writer';

/** Bytes per read of `read` (consumers' pages): the sparse index's spacing. */
const READ_CHUNK = 64 * 1024;

/**
 * The append-only-file store: Redis 7's multi-part AOF (manifest, base and incr files in
 * `<dir>/appendonlydir/`), RESP records with a `#CRC` per command, `appendfsync` policies with
 * group commit, streaming replay with Redis's repair rules, and BGREWRITEAOF-style compaction
 * that never stops the commands.
 *
 * ```ts
 * const app = await createApp({ handlers, projections, store: new AofStore({ dir: './data', appendfsync: 'always' }) });
 * ```
 */
export class AofStore implements EventStore {
  readonly kind = 'aof';
  private readonly options: ResolvedAofOptions;
  private readonly dir: LogDir;
  private context: StoreContext | null = null;
  private lock: DirLock | null = null;
  private writer: AofWriter | null = null;
  private lastSeq = 0;
  /** Bytes of the base and of the incr files no longer appended to. */
  private sealedSize = 0;
  private bytesRead = 0;
  private bytesTotal = 0;
  private closed = false;
  /** The last file ends with a whole group (replay or a check read it to the end). */
  private tailVerified = false;
  private tailCheck: Promise<void> | null = null;
  /** Compactions: when they run, who joins which, the trigger and its back-off (the kit's, as every store's). */
  private scheduler: CompactionScheduler | null = null;
  /** Where groups start in the incr files, for `read` (noted by replay and by reads). */
  private readonly index = new SeqIndex();
  private consumerFile: ConsumerFile | null = null;
  /**
   * The reactions' positions the log holds (`@pos`), by consumer, as far as they are durable:
   * read by a replay (or a scan, for a tool that did not replay), then moved by each durable
   * reaction. `loadConsumers` reports the greater of a record's position and this one (same epoch).
   */
  private readonly logged = new Map<string, LoggedPosition>();
  /** `logged` covers the whole log: a replay or a scan read it. */
  private positionsRead = false;
  /** Reactions appended and not yet durable, in seq order: a compaction folds those it covers. */
  private pendingPositions: { readonly seq: number; readonly position: LoggedPosition }[] = [];
  /** A reaction's position is in its group's MULTI (see `EventStore.reactions`). */
  readonly reactions = true;
  /** What compactions keep for consumers (made at open). */
  private retention: ConsumerRetention | null = null;

  /** Validates the options at once: an unknown option or a bad value throws `ConfigError`. */
  constructor(options: AofStoreOptions) {
    this.options = resolveAofOptions(options);
    this.dir = new LogDir(this.options);
  }

  /** Takes the lock, reads the manifest (creating a new log if there is none) and opens the last incr file for appending. */
  async open(context: StoreContext): Promise<StoreOpenInfo> {
    if (this.context !== null || this.closed)
      throw new StoreLockedError('this AofStore was opened already; make a new one');
    const fs = this.options.fs;
    const dir = this.dir;
    // The folder must exist before the lock can name it.
    await dir.ensureFolders();
    this.lock = await acquireDirLock(dir.path, 'AofStore');
    try {
      const created = !(await dir.load());
      await dir.removeTempFiles();
      await dir.removeOrphans(this.options.keepHistory, (m) => context.logger.info(m));
      let manifest: Manifest = dir.manifest;
      const files = [...(manifest.base ? [manifest.base] : []), ...manifest.incrs];
      const sizes: number[] = [];
      for (const f of files) sizes.push((await fs.stat(dir.file(f.name))).size);
      if (manifest.incrs.length === 0) {
        const incr = dir.nextIncr((manifest.base?.lastSeq ?? 0) + 1);
        const fd = await dir.createFile(incr.name);
        await fs.close(fd);
        manifest = { base: manifest.base, incrs: [incr], history: manifest.history };
        await dir.persist(manifest);
        sizes.push(0);
      }
      const last = manifest.incrs[manifest.incrs.length - 1];
      const fd = await fs.open(dir.file(last.name), 'r+');
      const lastSize = sizes[sizes.length - 1];
      this.sealedSize = sizes.slice(0, -1).reduce((a, b) => a + b, 0);
      this.writer = new AofWriter(
        { name: last.name, path: dir.file(last.name), fd, size: lastSize },
        {
          fs,
          policy: this.options.appendfsync,
          logger: context.logger,
          timestamps: this.options.aofTimestamps,
          noFsyncOnRewrite: this.options.noAppendfsyncOnRewrite,
          fsyncOnEventLoop: this.options.fsyncOnEventLoop,
          onWritten: () => this.maybeAutoRewrite(),
          fsynced: context.fsynced,
          now: () => context.clock.now(),
        },
      );
      // Nothing is written until the end of the last file is known to be whole (replay checks it,
      // or the first append does): appending after a torn record would bury it mid-file.
      this.writer.hold();
      this.context = context;
      const writer = this.writer;
      this.scheduler = new CompactionScheduler(this.options, context, {
        unit: 'bytes',
        writes: writer,
        size: () => this.currentSize(),
        run: (snapshots) => this.rewrite(writer, snapshots),
      });
      this.bytesTotal = this.currentSize();
      this.lastSeq = (manifest.base?.lastSeq ?? 0) + 0;
      this.consumerFile = new ConsumerFile(
        fs,
        dir.path,
        dir.file(CONSUMERS_FILE),
        dir.file(`${TEMP_PREFIX}${CONSUMERS_FILE}`),
        this.options.fileMode,
      );
      this.retention = new ConsumerRetention(this, this.options.maxConsumerLag, context);
      return { kind: this.kind, location: this.options.dir, created, sizeBytes: this.bytesTotal };
    } catch (err) {
      await this.lock.release();
      this.lock = null;
      throw err;
    }
  }

  /**
   * Reads base then incr files into `sink`; cuts a torn tail of the last file (or refuses, with
   * `loadTruncated: false`). With `after`, the files are still read whole (the tail must be
   * checked), and only the commands after it are handed over. With `after` below the base, the
   * events the base covers are read from the files kept for consumers or from history/ when
   * they still hold them (see `belowBase`); otherwise the replay rejects with `LogCompactedError`.
   */
  async replay(sink: ReplaySink, options?: ReplayOptions): Promise<ReplayEnd> {
    this.assertOpen();
    const feed = new ReplayFeed(sink, options, this.dir.path);
    const after = options?.after;
    const base = this.dir.manifest.base;
    const history =
      after !== undefined && base !== null && after < (base.lastSeq ?? 0)
        ? await this.belowBase(after)
        : null;
    for await (const batch of this.records(history)) feed.push(batch);
    return feed.end;
  }

  /**
   * The sealed files that hold the events from `after + 1` up to the base's seq, read in its
   * place by `replay` and `read` alike: the files kept for consumers (`type h`, one run ending at
   * the base) when they start early enough, else history/'s (keepHistory), else null (compacted
   * away: the caller's LogCompactedError).
   */
  private async belowBase(after: number): Promise<LogFile[] | null> {
    const kept = this.dir.manifest.history;
    if (kept.length > 0 && kept[0].startSeq !== undefined && kept[0].startSeq <= after + 1) {
      return kept.map((e) => ({ name: e.name, path: this.dir.file(e.name), kind: 'incr', seq: e.startSeq }));
    }
    return this.historyFiles();
  }

  /**
   * The history/ incr files that hold exactly the events the base covers, or null. The chain's
   * names are dense from the first incr file (`LogDir.historyChain`); read once here, without
   * handing anything over, its events must end at the base's seq: a log that began with a base
   * (a converted one) numbers its first file otherwise, and must not be read as if it did not.
   * A damaged history file is CorruptLogError, as any file of the log.
   */
  private async historyFiles(): Promise<LogFile[] | null> {
    const chain = await this.dir.historyChain();
    if (chain === null) return null;
    const files: LogFile[] = chain.map((p, i) => ({
      name: `history/${path.basename(p)}`,
      path: p,
      kind: 'incr',
      ...(i === 0 ? { seq: 1 } : {}),
    }));
    const summary: ReadSummary = { lastSeq: 0, sizes: [] };
    const reading = readLog(files, this.historyReadOptions(), summary);
    while (!(await reading.next()).done);
    return summary.lastSeq === (this.dir.manifest.base?.lastSeq ?? 0) ? files : null;
  }

  /** History files are sealed: one that ends inside a record is damage, never cut. */
  private historyReadOptions(): ReadOptions {
    return {
      fs: this.options.fs,
      loadTruncated: false,
      truncate: async () => {},
      warn: (m) => this.context?.logger.warn(m),
      progress: (n) => {
        this.bytesRead += n;
      },
      setRecords: true,
    };
  }

  /** The log as a reader's batches: history/'s incr files instead of the base, when given. */
  private async *records(history: readonly LogFile[] | null = null): AsyncIterable<readonly ReplayRecord[]> {
    const writer = this.assertOpen();
    const manifest = this.dir.manifest;
    const files: LogFile[] = [];
    const baseSeq = manifest.base?.lastSeq ?? 0;
    this.bytesRead = 0;
    this.bytesTotal = this.currentSize();
    if (history !== null) {
      for (const f of history) this.bytesTotal += (await this.options.fs.stat(f.path)).size;
      yield* readLog(history, this.historyReadOptions(), { lastSeq: 0, sizes: [] });
    } else if (manifest.base) {
      files.push({
        name: manifest.base.name,
        path: this.dir.file(manifest.base.name),
        kind: 'base',
        seq: baseSeq,
        projectionsVersion: manifest.base.projectionsVersion,
      });
    }
    manifest.incrs.forEach((e, i) => {
      // Without the base before it, the first incr file's numbering must be given: it follows the base.
      const seq = e.startSeq ?? (history !== null && i === 0 ? baseSeq + 1 : undefined);
      files.push({ name: e.name, path: this.dir.file(e.name), kind: 'incr', seq });
    });
    const summary: ReadSummary = { lastSeq: 0, sizes: [] };
    yield* this.indexed(
      readLog(
        files,
        {
          fs: this.options.fs,
          loadTruncated: this.options.loadTruncated,
          truncate: (_file, offset) => writer.truncateTo(offset),
          warn: (m) => this.context?.logger.warn(m),
          progress: (n) => {
            this.bytesRead += n;
          },
          setRecords: true,
        },
        summary,
      ),
    );
    // An incr file without events leaves the reader's last seq where the base (read or not) ends.
    this.lastSeq = Math.max(summary.lastSeq, baseSeq);
    this.noteLogged(summary.positions);
    this.scheduler?.rebase();
    this.tailChecked();
  }

  /** Passes a reader's batches on, noting where groups start in the sparse index. */
  private async *indexed(batches: AsyncIterable<ReplayRecord[]>): AsyncGenerator<ReplayRecord[]> {
    const index = this.index;
    for await (const batch of batches) {
      for (let i = 0; i < batch.length; i++) {
        const r = batch[i];
        if ((r.kind === 'group' || r.kind === 'set') && r.file !== undefined && r.offset !== undefined)
          index.note(r.file, r.offset, r.seq, r.time > 0 ? r.time / 1000 : -1);
      }
      yield batch;
    }
  }

  /**
   * Consumers: the groups holding events after `after` (see `EventStore.read`), read from the
   * sparse index's nearest point before it, never from the start of the log. Safe beside the
   * writer: the files are only read, up to their size at open, and a tail still being written
   * reads as torn and is left alone (never cut: the writer owns the end of the file). A file a
   * compaction removed meanwhile is looked up again in the new manifest.
   */
  async read(after: number, limit: number): Promise<readonly EventGroup[]> {
    this.assertOpen();
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.readOnce(after, limit);
      } catch (err) {
        if (attempt >= 3 || (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }

  private async readOnce(after: number, limit: number): Promise<EventGroup[]> {
    const manifest = this.dir.manifest;
    const baseSeq = manifest.base?.lastSeq ?? 0;
    let history: LogFile[] = [];
    if (after < baseSeq) {
      const below = await this.belowBase(after);
      if (below === null)
        throw new LogCompactedError(after, manifest.history[0]?.startSeq ?? baseSeq + 1, this.dir.path);
      history = below;
    }
    const incrs: LogFile[] = manifest.incrs.map((e, i) => ({
      name: e.name,
      path: this.dir.file(e.name),
      kind: 'incr',
      seq: e.startSeq ?? (i === 0 ? baseSeq + 1 : undefined),
    }));
    const files = [...history, ...incrs];
    // The last file whose start (or an index point in it) is at or before after + 1.
    let from = 0;
    let start: LogFile = files[0];
    for (let i = files.length - 1; i >= 0; i--) {
      const f = files[i];
      const point = this.index.find(f.name, after + 1);
      if (point !== undefined) {
        from = i;
        start = { ...f, seq: point.seq, startOffset: point.offset, startTs: point.ts };
        break;
      }
      if (f.seq !== undefined && f.seq <= after + 1) {
        from = i;
        start = f;
        break;
      }
    }
    if (start === undefined) return [];
    const list = [start, ...files.slice(from + 1)];
    const options: ReadOptions = {
      fs: this.options.fs,
      loadTruncated: true,
      truncate: async () => {},
      warn: () => {},
      // A page is small: read in steps of the index's spacing, not the replay's 1 MB.
      chunkSize: READ_CHUNK,
      batchRecords: 64,
    };
    const out: EventGroup[] = [];
    let events = 0;
    const index = this.index;
    outer: for await (const batch of readLog(list, options, { lastSeq: 0, sizes: [] })) {
      for (const r of batch) {
        if (r.kind !== 'group' && r.kind !== 'set') continue;
        const g = toReplayGroup(r);
        if (g.file !== undefined && g.offset !== undefined)
          index.note(g.file, g.offset, g.seq, g.time > 0 ? g.time / 1000 : -1);
        if (g.seq + g.events.length - 1 <= after) continue;
        if (events >= limit) break outer;
        // The group as logged, envelope included (ids, versions, metadata), without its position.
        const { kind: _kind, file: _file, offset: _offset, ...group } = g;
        out.push(group);
        events += g.events.length;
      }
    }
    return out;
  }

  /**
   * The consumers' records, from their file in the log folder (read once, then kept), each at the
   * greater of its position and the last one a reaction of its epoch logged (`@pos`). A store
   * that has not replayed (a tool) reads the log's positions first.
   */
  async loadConsumers(): Promise<readonly ConsumerRecord[]> {
    this.assertOpen();
    if (!this.positionsRead) await this.scanPositions();
    return this.consumerFile!.loadWith(this.logged);
  }

  /**
   * Replaces the consumers' file atomically (temp, fsync, rename, fsync the folder): durable when
   * it resolves. A position below the log's (a tool moving it back) starts a new epoch.
   */
  async saveConsumer(record: ConsumerRecord): Promise<void> {
    this.assertOpen();
    return this.consumerFile!.save(record, this.logged.get(record.name));
  }

  /** Reads the whole log for its `@pos` records only (a tool's store, which never replays). */
  private async scanPositions(): Promise<void> {
    const manifest = this.dir.manifest;
    const files: LogFile[] = manifest.incrs.map((e) => ({
      name: e.name,
      path: this.dir.file(e.name),
      kind: 'incr',
      seq: e.startSeq,
    }));
    this.noteLogged(await readLoggedPositions(this.options.fs, files));
  }

  /** Takes the positions a read of the log found; the log now has no others. */
  private noteLogged(positions: ReadonlyMap<string, LoggedPosition> | undefined): void {
    for (const p of positions?.values() ?? []) this.noteDurable(p);
    this.positionsRead = true;
  }

  /** A reaction's position is durable (or was read from the log): the later of it and the one known. */
  private noteDurable(p: LoggedPosition): void {
    const known = this.logged.get(p.name);
    if (
      known === undefined ||
      p.epoch > known.epoch ||
      (p.epoch === known.epoch && p.position > known.position)
    )
      this.logged.set(p.name, p);
  }

  /**
   * A compaction is about to drop the files holding the groups up to `through` (all durable by
   * now): their `@pos` records go into the consumers' file first, so that no position moves
   * back when they leave the log.
   */
  private async foldPositions(through: number): Promise<void> {
    const fold = [...this.logged.values()];
    for (const p of this.pendingPositions) if (p.seq <= through) fold.push(p.position);
    if (fold.length > 0) await this.consumerFile!.fold(fold);
  }

  /** Rewrites the file without the consumer; false when it had none of that name. */
  async deleteConsumer(name: string): Promise<boolean> {
    this.assertOpen();
    return this.consumerFile!.remove(name);
  }

  private tailChecked(): void {
    if (this.tailVerified) return;
    this.tailVerified = true;
    this.writer?.release();
  }

  /** Appends came before any replay: read the last file once, cutting a torn tail, then let them through. */
  private checkTail(writer: AofWriter): void {
    this.tailCheck ??= (async () => {
      const last = this.dir.manifest.incrs[this.dir.manifest.incrs.length - 1];
      const file: LogFile = {
        name: last.name,
        path: this.dir.file(last.name),
        kind: 'incr',
        seq: last.startSeq,
      };
      const options = {
        fs: this.options.fs,
        loadTruncated: this.options.loadTruncated,
        truncate: (_f: LogFile, offset: number) => writer.truncateTo(offset),
        warn: (m: string) => this.context?.logger.warn(m),
        setRecords: true,
      };
      // Only the end of the file matters here: the records are dropped as they come.
      const records = readLog([file], options, { lastSeq: 0, sizes: [] });
      while (!(await records.next()).done);
    })().then(
      () => this.tailChecked(),
      (err: unknown) => writer.abort('checking the end of the log before appending', err),
    );
  }

  /** Logs one command's events; resolves when durable per `appendfsync`. */
  append(group: EventGroup): Promise<void> {
    const writer = this.writer;
    if (writer === null || this.closed) return Promise.reject(new AppClosedError('the AofStore is not open'));
    this.lastSeq = group.seq + group.events.length - 1;
    this.scheduler!.appended();
    const consumer = group.consumer;
    if (consumer === undefined) {
      const durable = writer.append(group);
      if (!this.tailVerified) this.checkTail(writer);
      return durable;
    }
    // A reaction: its `@pos` carries the record's epoch (the hub loaded the records before the
    // consumer ran, so the file's map is in memory).
    const position: LoggedPosition = { ...consumer, epoch: this.consumerFile!.epochOf(consumer.name) };
    const entry = { seq: group.seq, position };
    this.pendingPositions.push(entry);
    const aof: AofGroup = { ...group, consumerEpoch: position.epoch };
    const durable = writer.append(aof);
    if (!this.tailVerified) this.checkTail(writer);
    const settled = () => {
      this.pendingPositions = this.pendingPositions.filter((p) => p !== entry);
    };
    return durable.then(
      () => {
        settled();
        this.noteDurable(position);
      },
      (err: unknown) => {
        settled();
        throw err;
      },
    );
  }

  /** BGREWRITEAOF; a call while one runs joins it or its follow-up (see CompactionScheduler). */
  compact(): Promise<CompactionResult> {
    try {
      this.assertOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.scheduler!.compact();
  }

  /** One compaction, once the end of the log is known to be whole. */
  private async rewrite(writer: AofWriter, snapshots: SnapshotSource): Promise<CompactionResult> {
    if (!this.tailVerified) {
      this.checkTail(writer);
      await this.tailCheck;
      if (writer.error !== null) throw writer.error;
    }
    const store = this;
    const host: RewriteHost = {
      options: this.options,
      dir: this.dir,
      writer,
      context: this.context!,
      snapshots,
      lastSeq: () => store.lastSeq,
      get sealedSize() {
        return store.sealedSize;
      },
      set sealedSize(size: number) {
        store.sealedSize = size;
      },
      currentSize: () => store.sealedSize + writer.current.size,
      beforeDrop: (through) => store.foldPositions(through),
      retain: (seq) => (this.options.keepHistory ? Promise.resolve(null) : this.retention!.plan(seq)),
    };
    return runRewrite(host);
  }

  /** Checked after each write, as Redis's serverCron checks its trigger. */
  private maybeAutoRewrite(): void {
    if (!this.closed) this.scheduler?.maybeCompact();
  }

  /** After a PersistenceError: cuts what was not acknowledged, fsyncs, and accepts appends again. */
  async recover(): Promise<void> {
    await this.assertOpen().recover();
    // The cut may have removed groups an index point named.
    this.index.forget();
    this.scheduler?.recovered();
  }

  replayProgress(): ReplayProgress {
    return { done: this.bytesRead, total: this.bytesTotal, unit: 'bytes' };
  }

  private currentSize(): number {
    return this.sealedSize + (this.writer?.current.size ?? 0);
  }

  /** The AOF fields of Redis's INFO persistence. */
  stats(): StoreStats {
    const w = this.writer;
    return {
      kind: this.kind,
      appendfsync: this.options.appendfsync,
      ...(this.scheduler?.stats() ?? IDLE_COMPACTION_STATS),
      lastWriteStatus: w?.lastWriteStatus ?? 'ok',
      bufferLength: w?.bufferLength ?? 0,
      pendingBioFsync: w?.pendingFsync ?? 0,
      delayedFsync: w?.delayedFsync ?? 0,
      ...(this.options.appendfsync === 'always' && w !== null
        ? {
            eventLoopFsyncs: w.fsyncPlacement.onLoop,
            poolFsyncs: w.fsyncPlacement.inPool,
            fsyncFallBacks: w.fsyncPlacement.fallBacks,
          }
        : {}),
      ...this.retention?.field(),
    };
  }

  /** Waits for a running compaction, writes and fsyncs everything pending, releases the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      this.scheduler?.stop(new AppClosedError('the AofStore is closing'));
      await this.scheduler?.idle();
      if (this.tailCheck !== null) await this.tailCheck;
      const w = this.writer;
      if (w !== null) {
        await w.close();
        await this.options.fs.close(w.current.fd).catch(() => {});
      }
    } finally {
      this.writer = null;
      await this.lock?.release();
      this.lock = null;
    }
  }

  private assertOpen(): AofWriter {
    if (this.writer === null || this.closed) throw new AppClosedError('the AofStore is not open');
    return this.writer;
  }
}
