import { type FileHandle, open } from 'node:fs/promises';

/**
 * The `everysec` background fsync: `synchronous=NORMAL` writes each commit to the WAL without
 * fsyncing it, so once a second the WAL is fsynced from libuv's thread pool, off the event loop,
 * as Redis's bio thread fsyncs the AOF. Everything committed before an fsync starts is on disk
 * when it ends: a power loss loses at most about two seconds.
 *
 * The WAL's descriptor stays open: SQLite reuses the same file (a checkpoint rewinds or
 * truncates it, never replaces it) while the connection lives. Only the `-wal` file is opened
 * here, never the database file, whose POSIX lock a close would drop.
 */
export class WalSyncer {
  /** True while an fsync runs (`pendingBioFsync`). */
  running = false;
  /** Seconds in which the previous fsync was still running, so none was started (`delayedFsync`). */
  delayed = 0;
  /** Set while a compaction runs with noAppendfsyncOnRewrite: the store skips the ticks. */
  paused = false;
  private handle: FileHandle | null = null;

  constructor(private readonly path: string) {}

  /** The once-a-second call: fsyncs, unless the last fsync is still running. */
  async tick(): Promise<void> {
    if (this.running) {
      this.delayed++;
      return;
    }
    await this.sync();
  }

  /** Fsyncs the WAL now (nothing to do before SQLite has made it). */
  async sync(): Promise<void> {
    this.running = true;
    try {
      if (this.handle === null) {
        try {
          this.handle = await open(this.path, 'r');
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
          throw err;
        }
      }
      await this.handle.sync();
    } finally {
      this.running = false;
    }
  }

  /** Waits for a running fsync and closes the descriptor. */
  async close(): Promise<void> {
    while (this.running) await new Promise((resolve) => setImmediate(resolve));
    await this.handle?.close();
    this.handle = null;
  }
}
