import { type FileHandle, open } from 'node:fs/promises';

/**
 * The `-wal` file, as the everysec syncer fsyncs it: `synchronous=NORMAL` writes each commit to
 * the WAL without fsyncing it, so the kit's EverysecSyncer fsyncs it once a second from libuv's
 * thread pool, off the event loop, as Redis's bio thread fsyncs the AOF. Everything committed
 * before an fsync starts is on disk when it ends: a power loss loses at most about two seconds.
 *
 * The WAL's descriptor stays open: SQLite reuses the same file (a checkpoint rewinds or
 * truncates it, never replaces it) while the connection lives. Only the `-wal` file is opened
 * here, never the database file, whose POSIX lock a close would drop.
 */
export class WalFile {
  private handle: FileHandle | null = null;
  private syncing: Promise<void> | null = null;

  constructor(private readonly path: string) {}

  /** Fsyncs the WAL now (nothing to do before SQLite has made it). */
  sync(): Promise<void> {
    const run = this.fsync().finally(() => {
      if (this.syncing === run) this.syncing = null;
    });
    this.syncing = run;
    return run;
  }

  private async fsync(): Promise<void> {
    if (this.handle === null) {
      try {
        this.handle = await open(this.path, 'r');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
    }
    await this.handle.sync();
  }

  /** Waits for a running fsync and closes the descriptor. */
  async close(): Promise<void> {
    await this.syncing?.catch(() => {});
    await this.handle?.close();
    this.handle = null;
  }
}
