import * as fs from 'node:fs';
import { type EventGroup, type JsonValue, type Logger, systemClock } from '../../../src/index';
import { SqliteWalStore } from '../store';

/** Appends in flight before the writer waits for them: bounds memory, keeps group commit busy. */
const IN_FLIGHT = 1024;

/**
 * Writes a new store from a log read elsewhere (`appendonly convert`): a snapshot, then commands
 * in order with their own sequence numbers and times. It goes through SqliteWalStore itself, so
 * the file is exactly what the store writes: its compaction writes the snapshot, its appends the
 * commands (`appendfsync: no`, one fsync at close: a half-written copy is removed by `abort`, not
 * recovered). The file must not exist or be empty.
 */
export class DatabaseWriter {
  private pending: Promise<void>[] = [];
  /** The snapshot being written, for the store's compaction to take. */
  private snap: { seq: number; entries: Map<string, JsonValue>; projectionsVersion?: string } | null = null;

  private constructor(
    private readonly store: SqliteWalStore,
    private readonly file: string,
  ) {}

  /** Creates the store at `file`; `logger` gets the store's warnings. */
  static async create(file: string, logger: Logger): Promise<DatabaseWriter> {
    const store = new SqliteWalStore({ file, appendfsync: 'no', autoRewritePercentage: 0 });
    const writer = new DatabaseWriter(store, file);
    await store.open({
      logger,
      clock: systemClock,
      snapshots: {
        takeSnapshot: () => {
          const snap = writer.snap!;
          return {
            seq: snap.seq,
            size: snap.entries.size,
            projectionsVersion: snap.projectionsVersion,
            entries: () => snap.entries.entries(),
            release: () => {},
          };
        },
      },
    });
    return writer;
  }

  /** The snapshot: every key up to `seq`, with its projections version. Before any command. */
  async snapshot(seq: number, entries: Map<string, JsonValue>, projectionsVersion?: string): Promise<void> {
    this.snap = { seq, entries, projectionsVersion };
    await this.store.compact();
    this.snap = null;
  }

  /** One command, after the previous one. */
  async group(g: EventGroup): Promise<void> {
    this.pending.push(this.store.append(g));
    if (this.pending.length >= IN_FLIGHT) {
      await Promise.all(this.pending);
      this.pending = [];
    }
  }

  /** Waits for every append and closes the store (which checkpoints and fsyncs). */
  async close(): Promise<void> {
    await Promise.all(this.pending);
    await this.store.close();
  }

  /** Gives up: closes the store and removes what was written. */
  async abort(): Promise<void> {
    await Promise.allSettled(this.pending);
    await this.store.close().catch(() => {});
    fs.rmSync(this.file, { force: true });
    fs.rmSync(`${this.file}-wal`, { force: true });
  }
}
