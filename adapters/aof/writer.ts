import type { EventGroup, FsyncPolicy, Logger } from '../../src/index';
import type { FileSystem } from './file-system';
import { PersistenceError } from '../../src/index';
import { BackgroundFsync } from './background-fsync';
import { encodeGroup } from './record-codec';
import { RespEncoder } from './resp';

/** A file the writer appends to. `size` counts only bytes that are in it for good (acknowledgeable). */
export interface AppendTarget {
  readonly name: string;
  readonly path: string;
  readonly fd: number;
  size: number;
}

/** Bytes for one target, and the acknowledgements waiting on them. */
interface Segment {
  target: AppendTarget;
  enc: RespEncoder;
  resolves: (() => void)[];
  rejects: ((err: unknown) => void)[];
}

/** What the writer needs from the store. */
export interface WriterOptions {
  readonly fs: FileSystem;
  readonly policy: FsyncPolicy;
  readonly logger: Logger;
  readonly timestamps: boolean;
  readonly noFsyncOnRewrite: boolean;
  /** Under `always`: fdatasync with `fs.fdatasyncSync`, on the event loop (see `AofStoreOptions.fsyncOnEventLoop`). */
  readonly fsyncOnEventLoop?: boolean;
  /** Called after each successful write (the store checks the auto-rewrite trigger there). */
  readonly onWritten?: () => void;
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
 *   in libuv's pool, or, with `fsyncOnEventLoop`, on the event loop as Redis runs it.
 * - `everysec` resolves after the write; a background fdatasync (libuv's pool, never the event
 *   loop) runs when a second has passed since the last one. While one runs, writes wait for it
 *   up to 2 s, then go anyway and count a delayed fsync, as Redis does.
 * - Invariant: `target.size` is the length of the file that holds only acknowledged (or, for
 *   everysec/no, written) groups. A failed or short write, or a failed fsync under `always`, is
 *   cut back to it, every promise not yet resolved rejects with PersistenceError, and every
 *   later append is refused with that error until `recover()` succeeds.
 */
export class AofWriter {
  private target: AppendTarget;
  private cur: Segment;
  private spare: RespEncoder | null = new RespEncoder();
  /** Segments sealed by a switch of file, written before `cur`. */
  private readonly sealed: Segment[] = [];
  /** While true, `cur` (the new file of a compaction) is not written: the manifest does not name it yet. */
  private held = false;
  private scheduled = false;
  private running: Promise<void> | null = null;
  private failure: PersistenceError | null = null;
  private lastTs = -1;
  private readonly now: () => number;
  /** The file system's synchronous write, when it has one: see `FileSystem.writeSync`. */
  private readonly writeSync: NonNullable<FileSystem['writeSync']> | null;
  /** Under `always` with `fsyncOnEventLoop`: the file system's synchronous fdatasync. */
  private readonly fdatasyncSync: NonNullable<FileSystem['fdatasyncSync']> | null = null;

  /** `everysec`'s fsync in the background; null under the other policies. */
  private readonly bio: BackgroundFsync | null = null;
  private closed = false;

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
    this.cur = { target, enc: new RespEncoder(), resolves: [], rejects: [] };
    this.now = options.now ?? Date.now;
    const sync = options.fs.writeSync;
    this.writeSync = typeof sync === 'function' ? sync.bind(options.fs) : null;
    const fdatasyncSync = options.fs.fdatasyncSync;
    if (options.policy === 'always' && options.fsyncOnEventLoop && typeof fdatasyncSync === 'function')
      this.fdatasyncSync = fdatasyncSync.bind(options.fs);
    if (options.policy === 'everysec') {
      this.bio = new BackgroundFsync({
        fs: options.fs,
        logger: options.logger,
        now: this.now,
        target: () => {
          const skip = this.failure !== null || this.closed || (this.rewriting && options.noFsyncOnRewrite);
          return skip ? null : this.target;
        },
        resume: () => this.schedule(),
        failed: (name, err) => void this.fail(PersistenceError.from(`fsync of ${name}`, err), null, false),
      });
    }
  }

  /** Redis's aof_delayed_fsync. */
  get delayedFsync(): number {
    return this.bio?.delayed ?? 0;
  }

  /** The file appended to now. */
  get current(): AppendTarget {
    return this.target;
  }

  /** The error that makes the writer refuse appends, or null. */
  get error(): PersistenceError | null {
    return this.failure;
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
    if (this.failure !== null) return Promise.reject(this.failure);
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
    const promise = new Promise<void>((resolve, reject) => {
      seg.resolves.push(resolve);
      seg.rejects.push(reject);
    });
    this.schedule();
    return promise;
  }

  private schedule(): void {
    if (this.scheduled || this.running !== null) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.running !== null) return;
      this.running = this.pump().finally(() => {
        this.running = null;
        // An append that came while the pump was finishing (after its last check for work,
        // before this line) found it running and did not schedule: pick it up here.
        if (this.failure === null && (this.sealed.length > 0 || (!this.held && this.cur.enc.length > 0)))
          this.schedule();
      });
    });
  }

  /** Writes segments until there is nothing left to write (or the writer is held or failed). */
  private async pump(): Promise<void> {
    while (this.failure === null) {
      let seg: Segment;
      if (this.sealed.length > 0) {
        seg = this.sealed[0];
      } else if (!this.held && this.cur.enc.length > 0) {
        if (this.bio?.mustPostpone()) return;
        seg = this.cur;
        this.cur = { target: seg.target, enc: this.spare ?? new RespEncoder(), resolves: [], rejects: [] };
        this.spare = null;
      } else {
        return;
      }
      const ok = await this.writeSegment(seg);
      if (seg === this.sealed[0]) this.sealed.shift();
      if (!ok) return;
      seg.enc.reset();
      if (this.spare === null) this.spare = seg.enc;
      const resolves = seg.resolves;
      for (let i = 0; i < resolves.length; i++) resolves[i]();
      this.options.onWritten?.();
    }
  }

  /** Writes one segment whole, then fsyncs per policy; on failure cuts the file back and fails everything pending. */
  private async writeSegment(seg: Segment): Promise<boolean> {
    const fs = this.options.fs;
    const target = seg.target;
    const bytes = seg.enc.bytes();
    let done = 0;
    let fsyncing = false;
    try {
      while (done < bytes.length) {
        const n = this.writeSync
          ? this.writeSync(target.fd, bytes, done, bytes.length - done, target.size + done)
          : await fs.write(target.fd, bytes, done, bytes.length - done, target.size + done);
        if (n <= 0) throw Object.assign(new Error('write returned 0 bytes (disk full?)'), { code: 'ENOSPC' });
        done += n;
      }
      if (this.options.policy === 'always' && !(this.rewriting && this.options.noFsyncOnRewrite)) {
        fsyncing = true;
        // On the event loop, nothing else runs until the disk has the group: no command is read,
        // so the next group gathers in the sockets, as in Redis's beforeSleep.
        if (this.fdatasyncSync !== null) this.fdatasyncSync(target.fd);
        else await fs.fdatasync(target.fd);
      }
    } catch (err) {
      const what = fsyncing
        ? `fsync of ${target.name}`
        : `writing ${target.name} at offset ${target.size + done}`;
      await this.fail(PersistenceError.from(what, err), target, done > 0, seg);
      return false;
    }
    target.size += bytes.length;
    this.lastWriteStatus = 'ok';
    this.bio?.written();
    return true;
  }

  /**
   * Enters the failed state: every promise not resolved rejects, the buffers are dropped, and the
   * file is cut back to its last good size so that it holds nothing unacknowledged (if that cut
   * fails too, `recover()` retries it).
   */
  private async fail(
    error: PersistenceError,
    target: AppendTarget | null,
    cut: boolean,
    failed?: Segment,
  ): Promise<void> {
    if (this.failure === null) {
      this.failure = error;
      this.lastWriteStatus = 'err';
      this.options.logger.error(`${error.message}; refusing appends until the log can be written again`);
    }
    const all = [...this.sealed, this.cur];
    if (failed !== undefined && !all.includes(failed)) all.unshift(failed);
    this.sealed.length = 0;
    this.cur = { target: this.target, enc: this.spare ?? new RespEncoder(), resolves: [], rejects: [] };
    this.spare = null;
    // Cut first, reject after: once a caller hears of the failure, the file no longer holds its group.
    if (target !== null && (cut || this.options.policy === 'always')) {
      await this.options.fs.ftruncate(target.fd, target.size).catch(() => {});
    }
    for (const seg of all) {
      for (const reject of seg.rejects) reject(this.failure);
      seg.enc.reset();
    }
  }

  /** Waits until everything appended so far is written (or failed). */
  async drain(): Promise<void> {
    while (
      this.running !== null ||
      this.scheduled ||
      this.sealed.length > 0 ||
      (!this.held && this.cur.enc.length > 0)
    ) {
      if (this.failure !== null) return;
      if (this.running !== null) await this.running;
      else if (this.bio?.postponing) await this.bio.running;
      else if (!this.scheduled) this.schedule();
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
    if (this.cur.enc.length > 0 || this.cur.resolves.length > 0) this.sealed.push(this.cur);
    this.cur = { target: next, enc: this.spare ?? new RespEncoder(), resolves: [], rejects: [] };
    this.spare = null;
    this.target = next;
    this.held = true;
    this.lastTs = -1;
    this.schedule();
    await this.drain();
    if (this.failure !== null) throw this.failure;
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
    await this.fail(PersistenceError.from(what, error), null, false);
  }

  /** The manifest names the new file: write what was held. */
  release(): void {
    this.previous = null;
    this.held = false;
    this.schedule();
  }

  /** The switch failed before the manifest named the new file: append to `old` again, held groups included. */
  revert(): void {
    const old = this.previous ?? this.target;
    this.previous = null;
    this.cur.target = old;
    this.target = old;
    this.held = false;
    this.lastTs = -1;
    this.schedule();
  }

  /**
   * After a failure: cuts the file back to its last good size, fsyncs it, and accepts appends
   * again. Rejects (staying failed) while the fault lasts.
   */
  async recover(): Promise<void> {
    if (this.failure === null) return;
    if (this.running !== null) await this.running;
    if (this.bio?.running) await this.bio.running;
    const fs = this.options.fs;
    const target = this.target;
    await fs.ftruncate(target.fd, target.size);
    // Probe: the disk must take a write again before appends resume. ftruncate and fsync succeed
    // on a full disk, so without it the app flipped to ready every second and failed again on
    // the next command (Redis likewise only clears the error once a write succeeds). The probe
    // is `#` comment lines, skipped by every reader, so a crash before the cut leaves a log that loads.
    try {
      for (let done = 0; done < RECOVERY_PROBE.length; ) {
        const n = this.writeSync
          ? this.writeSync(target.fd, RECOVERY_PROBE, done, RECOVERY_PROBE.length - done, target.size + done)
          : await fs.write(target.fd, RECOVERY_PROBE, done, RECOVERY_PROBE.length - done, target.size + done);
        if (n <= 0) throw Object.assign(new Error('write returned 0 bytes (disk full?)'), { code: 'ENOSPC' });
        done += n;
      }
      await fs.fdatasync(target.fd);
    } finally {
      await fs.ftruncate(target.fd, target.size).catch(() => {});
    }
    await fs.fdatasync(target.fd);
    this.bio?.synced();
    this.failure = null;
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
    if (this.held && this.failure === null) this.release();
    await this.drain();
    this.closed = true;
    await this.bio?.stop();
    if (this.failure !== null) return;
    await this.options.fs.fdatasync(this.target.fd);
  }
}
