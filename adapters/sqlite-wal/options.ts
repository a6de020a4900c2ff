import { ConfigError, type FsyncPolicy, parseFsyncPolicy } from '../../src/index';

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
}

/** The options with their defaults applied. */
export interface ResolvedSqliteWalOptions {
  readonly file: string;
  readonly appendfsync: FsyncPolicy;
  readonly autoRewritePercentage: number;
  readonly autoRewriteMinSize: number;
  readonly noAppendfsyncOnRewrite: boolean;
  readonly keepHistory: boolean;
}

const KNOWN = new Set([
  'file',
  'appendfsync',
  'autoRewritePercentage',
  'autoRewriteMinSize',
  'noAppendfsyncOnRewrite',
  'keepHistory',
]);

/** Checks the options at construction, so that a typo fails before anything is opened. */
export function resolveOptions(options: SqliteWalStoreOptions): ResolvedSqliteWalOptions {
  if (options === null || typeof options !== 'object')
    throw new ConfigError('SqliteWalStore needs options { file }');
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new ConfigError(`SqliteWalStore: unknown option ${JSON.stringify(key)}`);
  }
  if (typeof options.file !== 'string' || options.file === '') {
    throw new ConfigError('SqliteWalStore: option file must be a non-empty path');
  }
  if (options.file === ':memory:')
    throw new ConfigError('SqliteWalStore: file must be a file; use MemoryStore for memory');
  return {
    file: options.file,
    appendfsync: parseFsyncPolicy(options.appendfsync ?? 'everysec'),
    autoRewritePercentage: count(options.autoRewritePercentage, 100, 'autoRewritePercentage'),
    autoRewriteMinSize: count(options.autoRewriteMinSize, 64 * 1024 * 1024, 'autoRewriteMinSize'),
    noAppendfsyncOnRewrite: flag(options.noAppendfsyncOnRewrite, 'noAppendfsyncOnRewrite'),
    keepHistory: flag(options.keepHistory, 'keepHistory'),
  };
}

function count(value: unknown, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new ConfigError(
      `SqliteWalStore: ${name} must be a non-negative integer; got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

function flag(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw new ConfigError(`SqliteWalStore: ${name} must be true or false`);
  return value;
}
