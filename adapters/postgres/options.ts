import type { FsyncPolicy } from '../../src/index';
import { OptionReader, SHARED_OPTIONS } from '../../src/kit/index';
import type { PgPoolLike } from './driver';

/** Options of {@link PostgresStore}; the durability names are Redis's AOF options in camelCase. */
export interface PostgresStoreOptions {
  /**
   * `postgres://user:password@host:port/database?…` (or key=value pairs), given to `pg.Pool`.
   * The store then owns that pool and ends it on close. Its password never appears in a log
   * line, an error message or `stats()`. Exactly one of `connectionString` and `pool`.
   */
  readonly connectionString?: string;
  /** A `pg.Pool` you own (TLS and every other `pg` option are yours to set); never ended by the store. */
  readonly pool?: PgPoolLike;
  /** The log's name: several logs share one database and one schema (default `'default'`). */
  readonly log?: string;
  /** The PostgreSQL schema that holds the store's tables (default `'appendonly'`). */
  readonly schema?: string;
  /**
   * When an append counts as durable (default `everysec`): `always` ↔ `synchronous_commit = on`
   * (acknowledged once the commit is flushed, and with a synchronous standby, once it has it);
   * `everysec` and `no` ↔ `off` (PostgreSQL's WAL writer flushes within 3 × `wal_writer_delay`).
   */
  readonly appendfsync?: FsyncPolicy;
  /** Compaction trigger, as Redis's `auto-aof-rewrite-percentage` (default 100; 0 disables). */
  readonly autoRewritePercentage?: number;
  /** …and `auto-aof-rewrite-min-size`, in bytes of event data (default 64 MiB). */
  readonly autoRewriteMinSize?: number;
  /** Keep the events a compaction covers instead of deleting them (default false). */
  readonly keepHistory?: boolean;
  /**
   * A consumer further behind than this many events when a compaction runs is marked stale: its
   * events are no longer kept for it, and it must be reset (`app.resetConsumer`). Default 1,000,000.
   */
  readonly maxConsumerLag?: number;
}

/** The options with their defaults applied. */
export interface ResolvedPostgresOptions {
  readonly connectionString: string | null;
  readonly pool: PgPoolLike | null;
  readonly log: string;
  readonly schema: string;
  readonly appendfsync: FsyncPolicy;
  readonly autoRewritePercentage: number;
  readonly autoRewriteMinSize: number;
  readonly keepHistory: boolean;
  readonly maxConsumerLag: number;
}

/** A schema name is put in SQL as a quoted identifier: a plain one is required (no quoting games). */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
/** Log names are values, never SQL: any text, bounded so that it stays an index key. */
const MAX_LOG_NAME = 200;

const KNOWN: readonly string[] = [
  'connectionString',
  'pool',
  'log',
  'schema',
  ...SHARED_OPTIONS.filter((o) => o !== 'noAppendfsyncOnRewrite'),
];

/** Checks the options at construction, so that a typo fails before anything is opened. */
export function resolveOptions(options: PostgresStoreOptions): ResolvedPostgresOptions {
  const o = new OptionReader('PostgresStore', options, KNOWN, '{ connectionString } or { pool }');
  const connectionString = o.raw('connectionString');
  const pool = o.raw('pool');
  if ((connectionString === undefined) === (pool === undefined))
    throw o.error('give exactly one of connectionString and pool');
  if (connectionString !== undefined && (typeof connectionString !== 'string' || connectionString === ''))
    throw o.error('connectionString must be a non-empty string');
  if (pool !== undefined && typeof (pool as { connect?: unknown } | null)?.connect !== 'function')
    throw o.error('pool must be a pg.Pool (an object with connect())');
  const log = o.raw('log') ?? 'default';
  if (typeof log !== 'string' || log.length === 0 || log.length > MAX_LOG_NAME)
    throw o.error(`log must be a non-empty string of at most ${MAX_LOG_NAME} characters`);
  const schema = o.raw('schema') ?? 'appendonly';
  if (typeof schema !== 'string' || !IDENTIFIER.test(schema))
    throw o.error(
      `schema must be a plain identifier (letters, digits, _; at most 63); got ${JSON.stringify(schema)}`,
    );
  const { appendfsync, autoRewritePercentage, autoRewriteMinSize, keepHistory, maxConsumerLag } = o.shared();
  return {
    connectionString: (connectionString as string | undefined) ?? null,
    pool: (pool as PgPoolLike | undefined) ?? null,
    log,
    schema,
    appendfsync,
    autoRewritePercentage,
    autoRewriteMinSize,
    keepHistory,
    maxConsumerLag,
  };
}
