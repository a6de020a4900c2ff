import type { Logger } from '../runtime/logger';

/** Redis postpones a write for at most 2 s while a background fsync runs, then counts a delayed fsync. */
const MAX_POSTPONE_MS = 2000;
const EVERYSEC_MS = 1000;

/** What the syncer needs from its store. */
export interface EverysecHost {
  readonly logger: Logger;
  /** The store's clock (`StoreContext.clock.now`). */
  readonly now: () => number;
  /**
   * Starts the fsync of everything written so far, off the event loop (libuv's pool), or returns
   * null when no fsync may run now (the store failed or closed, or a compaction runs with
   * noAppendfsyncOnRewrite): what was written stays due, and the next second tries again.
   */
  fsync(): Promise<void> | null;
  /** The fsync that writes were postponed for has finished, or 2 s have passed: write them now. */
  resume(): void;
  /** The fsync failed: the store enters its failed state. */
  failed(err: unknown): void;
  /** An fsync succeeded, in this many seconds (`StoreContext.fsynced`, for telemetry). */
  readonly fsynced?: (seconds: number) => void;
}

/**
 * `everysec`, as aof.c runs it with its bio thread:
 *
 * - after a write, if a second has passed since the last fsync and none runs, an fsync starts in
 *   the background; a 1-second timer (serverCron) starts it too when writes stop, so nothing
 *   written stays unsynced for more than about two seconds;
 * - before a write, {@link mustPostpone}: while an fsync runs, the write waits (writing into a
 *   file being fsynced can block the event loop in the kernel) — for at most 2 s; then it goes
 *   anyway, and that counts one delayed fsync (Redis's aof_delayed_fsync) with Redis's warning;
 * - `delayed` counts exactly that: writes that waited the full 2 s for a slow fsync, not seconds
 *   in which an fsync was skipped.
 *
 * Invariant: whatever was written before an fsync started is on disk when it resolves.
 */
export class EverysecSyncer {
  /** The fsync in flight, if any (`pendingBioFsync`). */
  running: Promise<void> | null = null;
  /** Redis's aof_delayed_fsync. */
  delayed = 0;
  private unsynced = false;
  private lastFsync: number;
  private postponedSince = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly host: EverysecHost) {
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

  /** Everything written is on disk (an fsync made elsewhere: recovery, a switch of file). */
  synced(): void {
    this.unsynced = false;
    this.lastFsync = this.host.now();
  }

  /** Redis's rule before a write: true while a background fsync runs, for up to 2 s. */
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

  /** Starts an fsync if something was written since the last one and none is running. */
  start(): void {
    if (this.running !== null || !this.unsynced) return;
    const fsync = this.host.fsync();
    if (fsync === null) return;
    this.synced();
    const observe = this.host.fsynced;
    const started = observe === undefined ? 0 : performance.now();
    this.running = fsync.then(
      () => {
        this.running = null;
        if (observe !== undefined) observe((performance.now() - started) / 1000);
        if (this.postponedSince !== 0) this.host.resume();
      },
      (err: unknown) => {
        this.running = null;
        this.host.failed(err);
      },
    );
  }

  /** Stops the timer and waits for a running fsync. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    if (this.running !== null) await this.running;
  }
}
