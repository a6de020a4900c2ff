import type { Logger } from '../../src/index';
import type { FileSystem } from './file-system';

/** Redis postpones a write for at most 2 s while a background fsync runs, then counts a delayed fsync. */
const MAX_POSTPONE_MS = 2000;
const EVERYSEC_MS = 1000;

/** What the background fsync needs from the writer. */
export interface BackgroundFsyncHost {
  readonly fs: FileSystem;
  readonly logger: Logger;
  readonly now: () => number;
  /** The file to fsync now (the one appended to), or null when fsyncing is not allowed now. */
  target(): { readonly fd: number; readonly name: string } | null;
  /** The fsync that writes were waiting for has finished: write them. */
  resume(): void;
  /** The fsync failed: the writer enters its failed state. */
  failed(name: string, err: unknown): void;
}

/**
 * `everysec`'s fsync, as aof.c runs it in a bio thread: an fdatasync in libuv's pool (never on
 * the event loop) once a second has passed since the last one and something was written, and
 * from a 1-second timer when writes stop (serverCron). While one runs, writes wait for it, for
 * up to 2 s; then they go anyway, and the wait counts as a delayed fsync (aof_delayed_fsync),
 * with Redis's warning that the disk is busy.
 */
export class BackgroundFsync {
  /** The fdatasync in flight, if any. */
  running: Promise<void> | null = null;
  /** Redis's aof_delayed_fsync. */
  delayed = 0;
  private unsynced = false;
  private lastFsync: number;
  private postponedSince = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly host: BackgroundFsyncHost) {
    this.lastFsync = host.now();
    this.timer = setInterval(() => this.start(), EVERYSEC_MS);
    this.timer.unref();
  }

  /** True while writes wait for the running fsync. */
  get postponing(): boolean {
    return this.postponedSince !== 0 && this.running !== null;
  }

  /** Bytes were written: fsync them if a second has passed since the last fsync. */
  written(): void {
    this.unsynced = true;
    if (this.host.now() - this.lastFsync >= EVERYSEC_MS) this.start();
  }

  /** Everything written is on disk (an fsync made elsewhere). */
  synced(): void {
    this.unsynced = false;
    this.lastFsync = this.host.now();
  }

  /** Redis's rule before a write: wait while a background fsync runs, for up to 2 s. */
  mustPostpone(): boolean {
    if (this.running === null) {
      this.postponedSince = 0;
      return false;
    }
    const now = this.host.now();
    if (this.postponedSince === 0) {
      this.postponedSince = now;
      setTimeout(() => this.host.resume(), MAX_POSTPONE_MS).unref();
      return true;
    }
    if (now - this.postponedSince < MAX_POSTPONE_MS) return true;
    this.postponedSince = 0;
    this.delayed++;
    this.host.logger.warn(
      'Asynchronous AOF fsync is taking too long (disk is busy?). Writing the AOF buffer without waiting for fsync to complete.',
    );
    return false;
  }

  /** Starts an fdatasync if something was written since the last one and none is running. */
  start(): void {
    if (this.running !== null || !this.unsynced) return;
    const target = this.host.target();
    if (target === null) return;
    this.synced();
    this.running = this.host.fs.fdatasync(target.fd).then(
      () => {
        this.running = null;
        if (this.postponedSince !== 0) this.host.resume();
      },
      (err: unknown) => {
        this.running = null;
        this.host.failed(target.name, err);
      },
    );
  }

  /** Stops the timer and waits for a running fsync. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (this.running !== null) await this.running;
  }
}
