import type { FsyncPolicy } from '../../src/index';
import { OptionReader, SHARED_OPTIONS } from '../../src/kit/index';

/** Options of {@link SqliteWalStore}; the names are Redis's AOF options in camelCase. */
export interface SqliteWalStoreOptions {
  /** The database file (created, mode 0600, if missing). Its `-wal` file sits beside it. */
  readonly file: string;
  /**
   * When an append counts as durable (default `everysec`):
   * `always` ↔ `synchronous=FULL` with group commit, `everysec` ↔ `NORMAL` with the WAL fsynced
   * in the background about every second, `no` ↔ `OFF`.
   */
  readonly appendfsync?: FsyncPolicy;
  /** Compact automatically when db + WAL have grown by this percent since the last compaction (default 100; 0 disables). */
  readonly autoRewritePercentage?: number;
  /** …and are larger than this many bytes (default 64 MiB). */
  readonly autoRewriteMinSize?: number;
  /** While a compaction runs, appends are not fsynced (as if `appendfsync no`), as Redis's `no-appendfsync-on-rewrite`. */
  readonly noAppendfsyncOnRewrite?: boolean;
  /** Keep the events a compaction covers in an `events_history` table instead of deleting them (default false). */
  readonly keepHistory?: boolean;
  /**
   * A consumer further behind than this many events when a compaction runs is marked stale: its
   * events are no longer kept for it, and it must be reset (`app.resetConsumer`). Default 1,000,000.
   */
  readonly maxConsumerLag?: number;
}

/** The options with their defaults applied. */
export interface ResolvedSqliteWalOptions {
  readonly file: string;
  readonly appendfsync: FsyncPolicy;
  readonly autoRewritePercentage: number;
  readonly autoRewriteMinSize: number;
  readonly noAppendfsyncOnRewrite: boolean;
  readonly keepHistory: boolean;
  readonly maxConsumerLag: number;
}

const KNOWN: readonly string[] = ['file', ...SHARED_OPTIONS];

/** Checks the options at construction, so that a typo fails before anything is opened. */
export function resolveOptions(options: SqliteWalStoreOptions): ResolvedSqliteWalOptions {
  const o = new OptionReader('SqliteWalStore', options, KNOWN, '{ file }');
  const file = o.path('file');
  if (file === ':memory:') throw o.error('file must be a file; use MemoryStore for memory');
  return { file, ...o.shared() };
}
