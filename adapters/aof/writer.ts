import type { EventGroup, FsyncPolicy, Logger } from '../../src/index';
import type { FileSystem } from './file-system';
import { PersistenceError } from '../../src/index';
import {
  EverysecSyncer,
  GroupCommit,
  type PositionalWrite,
  type Waiting,
  type WriteProgress,
  writeFully,
  writeFullySync,
} from '../../src/kit/index';
import { FsyncPlacement, takeEarly } from './fsync-placement';
import { encodeGroup } from './record-codec';
import { RespEncoder } from './resp';

/** A file the writer appends to. `size` counts only bytes that are in it for good (acknowledgeable). */
export interface AppendTarget {
  readonly name: string;
  readonly path: string;
  readonly fd: number;
  size: number;
}

/** Bytes for one target, and the acknowledgements waiting on them: one batch of the group commit. */
interface Segment extends Waiting {
  target: AppendTarget;
  enc: RespEncoder;
  /** Bytes of it that reached the file by the last write (what a failure must cut back). */
  readonly progress: WriteProgress;
  /** Its write succeeded and its fdatasync (under `always`) had started when it failed. */
  fsyncing: boolean;
  /** Groups encoded into it. */
  groups: number;
  /**
   * The one promise every group of the segment is handed (null until its first group): they are
   * all acknowledged by the same write (and fdatasync), so one promise, one resolve, and the
   * groups' reactions run in append order, which is seq order. Its resolve and reject are the
   * only entries of `resolves` and `rejects`.
   */
  durable: Promise<void> | null;
  /** While `pipelined`: when its first and its last group were appended (performance.now()). */
  first: number;
  last: number;
}

/** What the writer needs from the store. */
export interface WriterOptions {
  readonly fs: FileSystem;
  readonly policy: FsyncPolicy;
  readonly logger: Logger;
  readonly timestamps: boolean;
  readonly noFsyncOnRewrite: boolean;
  /** Under `always`: where the fdatasync runs (see `AofStoreOptions.fsyncOnEventLoop`); default the thread pool. */
  readonly fsyncOnEventLoop?: boolean | 'adaptive';
  /** Called after each successful write (the store checks the auto-rewrite trigger there). */
  readonly onWritten?: () => void;
  /** Called after each fsync of appended data, with its seconds (`StoreContext.fsynced`). */
  readonly fsynced?: (seconds: number) => void;
  readonly now?: () => number;
}

/** What `recover()` writes (then cuts) to see that the disk takes writes: 8 comment lines, 4 KiB. */
const RECOVERY_PROBE = Buffer.from(
  `#${'probe after a write error, cut again '.repeat(14).slice(0, 509)}\r\n`.repeat(8),
  'latin1',
);

/**
 * The append path, as aof.c's feedAppendOnlyFile + flushAppendOnlyFile:
 *
 * - `append` encodes the group straight into the current segment's buffer and returns a promise;
 *   nothing is written yet. Once per event-loop turn (setImmediate), everything appended since
 *   the last write goes out in ONE write at the end of the file (group commit), and, under
 *   `always`, ONE fdatasync; only then are those promises resolved. While a write runs, new
 *   groups gather in the other buffer and go out together right after it. The fdatasync runs
 *   where `FsyncPlacement` says: on the event loop for a lone group while the disk is
 *   fast (`fsyncOnEventLoop: 'adaptive'`, the default) or always (`true`, as Redis runs it),
 *   else in libuv's pool; acknowledgements wait for it either way. Under `always` with the
 *   fdatasync in the pool, a batch may also go before the turn ends, once the disk is idle and
 *   the turn's work has lasted an fsync (`takeEarly`): its fdatasync then overlaps the rest of
 *   the turn, which is the next batch; `committed` merges the two again when they stop paying.
 * - `everysec` resolves after the write; a background fdatasync (libuv's pool, never the event
 *   loop) runs when a second has passed since the last one. While one runs, writes wait for it
 *   up to 2 s, then go anyway and count a delayed fsync, as Redis does.
 * - Invariant: `target.size` is the length of the file that holds only acknowledged (or, for
 *   everysec/no, written) groups. A failed or short write, or a failed fsync under `always`, is
 *   cut back to it, every promise not yet resolved rejects with PersistenceError, and every
 *   later append is refused with that error until `recover()` succeeds.
 *
 * The batching, the one-write-in-flight rule and the failed state are the kit's GroupCommit (the
 * SQLite store's too); this class says what a batch is (a segment of RESP bytes bound for one
 * file), how it is written, and how a failure is cut back.
 */
export class AofWriter {
  private target: AppendTarget;
  private cur: Segment;
  private spare: RespEncoder | null = new RespEncoder();
  /** Segments sealed by a switch of file, written before `cur`. */
  private readonly sealed: Segment[] = [];
  /** While true, `cur` (the new file of a compaction) is not written: the manifest does not name it yet. */
  private held = false;
  private lastTs = -1;
  private readonly now: () => number;
  /** The file system's synchronous write when it has one (see `FileSystem.writeSync`), else its write. */
  private readonly write: PositionalWrite;
  /** The file system's synchronous write, or null: then every segment goes through a promise. */
  private readonly writeSync: NonNullable<FileSystem['writeSync']> | null = null;
  /** Under `always` with `fsyncOnEventLoop` true or adaptive: the file system's synchronous fdatasync. */
  private readonly fdatasyncSync: NonNullable<FileSystem['fdatasyncSync']> | null = null;
  /** Under `always`: where each group's fdatasync runs. */
  private readonly placement: FsyncPlacement;
  private readonly commit: GroupCommit<Segment>;
  /** `everysec`'s fsync in the background; null under the other policies. */
  private readonly bio: EverysecSyncer | null = null;
  private closed = false;
  /**
   * Under `always`, with a synchronous write and fdatasyncs that may go to the pool: batches are
   * taken as soon as `takeEarly` says (see there), not only at the end of the turn.
   */
  private readonly pipelined: boolean;
  /**
   * Set when an acknowledgement finds the next batch not worth sending alone (see `committed`):
   * it waits for the end of the turn, and nothing is taken early meanwhile.
   */
  private merging = false;
  /** The take that follows that acknowledgement at once is to return nothing. */
  private skipTake = false;

  /** During a switch of file: the file appended to before it. */
  previous: AppendTarget | null = null;
  /** True while a compaction runs (for `noAppendfsyncOnRewrite`). */
  rewriting = false;
  lastWriteStatus: 'ok' | 'err' = 'ok';

  constructor(
    target: AppendTarget,
    private readonly options: WriterOptions,
  ) {
    this.target = target;
    this.cur = segment(target, new RespEncoder());
    this.now = options.now ?? Date.now;
    const fs = options.fs;
    if (typeof fs.writeSync === 'function') this.writeSync = fs.writeSync.bind(fs);
    this.write = this.writeSync ?? fs.write.bind(fs);
    const onLoop = options.policy === 'always' && typeof fs.fdatasyncSync === 'function';
    if (onLoop) this.fdatasyncSync = fs.fdatasyncSync!.bind(fs);
    this.placement = new FsyncPlacement(onLoop ? (options.fsyncOnEventLoop ?? false) : false);
    this.pipelined =
      options.policy === 'always' &&
      this.writeSync !== null &&
      !(onLoop && options.fsyncOnEventLoop === true);
    this.commit = new GroupCommit<Segment>({
      take: () => this.take(),
      commit: (seg) => this.writeSegment(seg),
      drop: () => this.drop(),
      undo: (failed) => this.cutBack(failed),
      committed: (seg) => this.committed(seg),
      error: (err, seg) => this.describe(err, seg),
      failed: (error) => {
        this.lastWriteStatus = 'err';
        options.logger.error(`${error.message}; refusing appends until the log can be written again`);
      },
    });
    if (options.policy === 'everysec') {
      this.bio = new EverysecSyncer({
        logger: options.logger,
        now: this.now,
        fsync: () => {
          const skip =
            this.commit.error !== null || this.closed || (this.rewriting && options.noFsyncOnRewrite);
          if (skip) return null;
          const t = this.target;
          return fs.fdatasync(t.fd).catch((err: unknown) => {
            throw PersistenceError.from(`fsync of ${t.name}`, err);
          });
        },
        resume: () => this.commit.schedule(),
        fsynced: options.fsynced,
        failed: (err) => void this.commit.fail(err),
      });
    }
  }

  /** Redis's aof_delayed_fsync. */
  get delayedFsync(): number {
    return this.bio?.delayed ?? 0;
  }

  /** Under `always`: fdatasyncs of appended data run on the event loop and in the pool, and the adaptive placement's fall backs to the pool. */
  get fsyncPlacement(): { readonly onLoop: number; readonly inPool: number; readonly fallBacks: number } {
    return this.placement;
  }

  /** The file appended to now. */
  get current(): AppendTarget {
    return this.target;
  }

  /** The error that makes the writer refuse appends, or null. */
  get error(): PersistenceError | null {
    return this.commit.error;
  }

  /** Failures so far (a compaction compares it to tell that a write failed while it ran). */
  get failures(): number {
    return this.commit.failures;
  }

  /** Bytes accepted but not yet written (Redis's aof_buffer_length). */
  get bufferLength(): number {
    let n = this.cur.enc.length;
    for (const s of this.sealed) n += s.enc.length;
    return n;
  }

  /** Background fsyncs running (0 or 1). */
  get pendingFsync(): number {
    return this.bio?.running ? 1 : 0;
  }

  /** Logs a group; resolves when it is durable per the policy. */
  append(group: EventGroup): Promise<void> {
    const failure = this.commit.error;
    if (failure !== null) return Promise.reject(failure);
    const seg = this.cur;
    let ts = -1;
    if (this.options.timestamps) {
      const s = Math.floor(group.time / 1000);
      if (s !== this.lastTs) ts = this.lastTs = s;
    }
    try {
      encodeGroup(seg.enc, group, ts);
    } catch (err) {
      return Promise.reject(PersistenceError.from('the events could not be encoded', err));
    }
    let promise = seg.durable;
    if (promise === null) promise = seg.durable = this.commit.waitFor(seg);
    const groups = ++seg.groups;
    if (this.pipelined) {
      const now = performance.now();
      if (groups === 1) seg.first = now;
      seg.last = now;
      if (
        !this.merging &&
        this.commit.running === null &&
        !(this.rewriting && this.options.noFsyncOnRewrite) &&
        takeEarly(groups, now - seg.first, this.placement.poolFsyncMs)
      ) {
        // The disk is idle and this turn's work has lasted an fsync: this batch goes now, the
        // rest of the turn gathers the next one (the fdatasync still covers every group it acknowledges).
        this.commit.flushNow();
      }
    }
    this.commit.schedule();
    return promise;
  }

  /** The next segment to write: a sealed one first, then `cur` unless held or postponed (everysec). */
  private take(): Segment | null {
    // Only the take right after the acknowledgement that set it is skipped; the turn's end takes `cur`.
    const skip = this.skipTake;
    this.skipTake = false;
    if (this.sealed.length > 0) return this.sealed.shift()!;
    if (this.held || this.cur.enc.length === 0) return null;
    if (this.bio?.mustPostpone()) return null;
    if (skip) return null;
    this.merging = false;
    const seg = this.cur;
    this.cur = segment(seg.target, this.spare ?? new RespEncoder());
    this.spare = null;
    return seg;
  }

  /**
   * Writes one segment whole, then fdatasyncs per policy. Throws on failure; the kit then cuts
   * back. With a synchronous write and no fsync to wait for in the pool (`everysec`, `no`, or an
   * `always` group the placement puts on the event loop), it all runs now and returns nothing:
   * the kit acknowledges the group at once, with no promise nor microtask per group.
   */
  private writeSegment(seg: Segment): void | Promise<void> {
    const fsync = this.options.policy === 'always' && !(this.rewriting && this.options.noFsyncOnRewrite);
    const onLoop = fsync && this.placement.onEventLoop(seg.groups);
    if (this.writeSync === null || (fsync && !onLoop)) return this.writeSegmentAsync(seg, fsync, onLoop);
    const target = seg.target;
    const bytes = seg.enc.bytes();
    writeFullySync(this.writeSync, target.fd, bytes, target.size, seg.progress);
    if (fsync) {
      seg.fsyncing = true;
      const started = performance.now();
      // On the event loop, nothing else runs until the disk has the group: no command is read,
      // so the next group gathers in the sockets, as in Redis's beforeSleep.
      this.fdatasyncSync!(target.fd);
      this.observeFsync(performance.now() - started, true);
    }
    this.written(seg, bytes.length);
  }

  /** `writeSegment` through promises: an asynchronous write, or an fsync in the pool. */
  private async writeSegmentAsync(seg: Segment, fsync: boolean, onLoop: boolean): Promise<void> {
    const target = seg.target;
    const bytes = seg.enc.bytes();
    // A synchronous write goes out at once, so that the fdatasync is in the pool before the rest
    // of the turn runs (not one microtask later, behind the commands still being decided).
    if (this.writeSync !== null) writeFullySync(this.writeSync, target.fd, bytes, target.size, seg.progress);
    else await writeFully(this.write, target.fd, bytes, target.size, seg.progress);
    if (fsync) {
      seg.fsyncing = true;
      const started = performance.now();
      if (onLoop) this.fdatasyncSync!(target.fd);
      else await this.options.fs.fdatasync(target.fd);
      this.observeFsync(performance.now() - started, onLoop);
    }
    this.written(seg, bytes.length);
  }

  private observeFsync(ms: number, onLoop: boolean): void {
    this.placement.observe(ms / 1000, onLoop);
    this.options.fsynced?.(ms / 1000);
  }

  /** The segment is in the file for good (and durable per the policy): the size may count it. */
  private written(seg: Segment, length: number): void {
    seg.target.size += length;
    this.lastWriteStatus = 'ok';
    this.bio?.written();
  }

  private committed(seg: Segment): void {
    const cur = this.cur;
    if (
      this.pipelined &&
      cur.groups > 0 &&
      this.sealed.length === 0 &&
      this.placement.poolFsyncMs >= seg.last - seg.first + (cur.last - cur.first)
    ) {
      // Two batches in alternation pay an fsync each; that pays only while the loop's work on
      // both (their gathering spans) outlasts an fsync. Here it does not (a slow disk, fewer
      // commands): `cur` waits for the end of this turn, so that the successors of the commands
      // just acknowledged join it, and the turn is one batch again.
      this.merging = true;
      this.skipTake = true;
      this.commit.schedule();
    }
    seg.enc.reset();
    if (this.spare === null) this.spare = seg.enc;
    this.options.onWritten?.();
  }

  private describe(err: unknown, seg: Segment | null): PersistenceError {
    if (seg === null) return PersistenceError.from('the log', err);
    const t = seg.target;
    const what = seg.fsyncing
      ? `fsync of ${t.name}`
      : `writing ${t.name} at offset ${t.size + seg.progress.done}`;
    return PersistenceError.from(what, err);
  }

  /** The failed state: every pending segment is dropped (the kit rejects its appends). */
  private drop(): Segment[] {
    this.merging = false;
    this.skipTake = false;
    const all = [...this.sealed, this.cur];
    this.sealed.length = 0;
    this.cur = segment(this.target, this.spare ?? new RespEncoder());
    this.spare = null;
    for (const seg of all) seg.enc.reset();
    return all;
  }

  /**
   * Cuts the file back to its last good size, so that it holds nothing unacknowledged: after a
   * torn write, or under `always` after any failure (the bytes may be written but not durable).
   * If the cut fails too, `recover()` retries it.
   */
  private async cutBack(failed: Segment | null): Promise<void> {
    if (failed === null) return;
    failed.enc.reset();
    if (failed.progress.done > 0 || this.options.policy === 'always')
      await this.options.fs.ftruncate(failed.target.fd, failed.target.size).catch(() => {});
  }

  /** Waits until everything appended so far is written (or failed). */
  async drain(): Promise<void> {
    const commit = this.commit;
    while (
      commit.running !== null ||
      commit.isScheduled ||
      this.sealed.length > 0 ||
      (!this.held && this.cur.enc.length > 0)
    ) {
      if (commit.error !== null) return;
      if (commit.running !== null) await commit.running;
      else if (this.bio?.postponing) await this.bio.running;
      else if (!commit.isScheduled) commit.schedule();
      else await new Promise<void>((r) => setImmediate(r));
    }
  }

  /**
   * The switch point of a compaction: everything appended so far stays bound for the old file;
   * everything appended from now on goes to `next`, but is held (not written, not acknowledged)
   * until `release()`, because the manifest does not name `next` yet. Resolves when the old file
   * holds all its groups and is fsynced, so that it can never end in a torn record once it is
   * no longer the last file of the log.
   */
  async switchTo(next: AppendTarget): Promise<AppendTarget> {
    const old = this.target;
    this.previous = old;
    if (this.cur.enc.length > 0 || this.cur.groups > 0) this.sealed.push(this.cur);
    this.cur = segment(next, this.spare ?? new RespEncoder());
    this.spare = null;
    this.target = next;
    this.held = true;
    this.lastTs = -1;
    this.commit.schedule();
    await this.drain();
    if (this.commit.error !== null) throw this.commit.error;
    if (this.bio?.running) await this.bio.running;
    await this.options.fs.fdatasync(old.fd);
    return old;
  }

  /** Holds appends (accepted, neither written nor acknowledged) until `release()`. */
  hold(): void {
    this.held = true;
  }

  /** Fails the writer from outside (the end of the log could not be checked): every append rejects with `error`. */
  async abort(what: string, error: unknown): Promise<void> {
    await this.commit.fail(PersistenceError.from(what, error));
  }

  /** The manifest names the new file: write what was held. */
  release(): void {
    this.previous = null;
    this.held = false;
    this.commit.schedule();
  }

  /** The switch failed before the manifest named the new file: append to `old` again, held groups included. */
  revert(): void {
    const old = this.previous ?? this.target;
    this.previous = null;
    this.cur.target = old;
    this.target = old;
    this.held = false;
    this.lastTs = -1;
    this.commit.schedule();
  }

  /**
   * After a failure: cuts the file back to its last good size, fsyncs it, and accepts appends
   * again. Rejects (staying failed) while the fault lasts.
   */
  async recover(): Promise<void> {
    if (this.commit.error === null) return;
    if (this.commit.running !== null) await this.commit.running;
    if (this.bio?.running) await this.bio.running;
    const fs = this.options.fs;
    const target = this.target;
    await fs.ftruncate(target.fd, target.size);
    // Probe: the disk must take a write again before appends resume. ftruncate and fsync succeed
    // on a full disk, so without it the app flipped to ready every second and failed again on
    // the next command (Redis likewise only clears the error once a write succeeds). The probe
    // is `#` comment lines, skipped by every reader, so a crash before the cut leaves a log that loads.
    try {
      await writeFully(this.write, target.fd, RECOVERY_PROBE, target.size);
      await fs.fdatasync(target.fd);
    } finally {
      await fs.ftruncate(target.fd, target.size).catch(() => {});
    }
    await fs.fdatasync(target.fd);
    this.bio?.synced();
    this.commit.clear();
    this.lastWriteStatus = 'ok';
    this.options.logger.info('AOF write error looks solved, appending again');
  }

  /** Cuts the file being appended to (replay found a torn tail there). */
  async truncateTo(size: number): Promise<void> {
    await this.options.fs.ftruncate(this.target.fd, size);
    await this.options.fs.fdatasync(this.target.fd);
    this.target.size = size;
  }

  /** Writes and fsyncs everything pending, then stops. The descriptor is the store's to close. */
  async close(): Promise<void> {
    if (this.held && this.commit.error === null) this.release();
    await this.drain();
    this.closed = true;
    await this.bio?.stop();
    if (this.commit.error !== null) return;
    await this.options.fs.fdatasync(this.target.fd);
  }
}

function segment(target: AppendTarget, enc: RespEncoder): Segment {
  return {
    target,
    enc,
    resolves: [],
    rejects: [],
    progress: { done: 0 },
    fsyncing: false,
    groups: 0,
    durable: null,
    first: 0,
    last: 0,
  };
}
