import * as path from 'node:path';
import { ConfigError, type EventStore, type FsyncPolicy, MemoryStore } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { PostgresStore } from 'appendonly/adapters/postgres';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';

/** The stores the kv-server runs on (`--store`). */
export type StoreKind = 'aof' | 'sqlite' | 'memory' | 'postgres';

/** The store kinds, default first. */
export const STORE_KINDS: readonly StoreKind[] = ['aof', 'sqlite', 'memory', 'postgres'];

/**
 * Where the PostgreSQL store's log is (`--store postgres`): one log that several servers share,
 * each on its own port; every server follows the others' commands (the App's watch).
 */
export interface PostgresLog {
  /** `--database-url` or `DATABASE_URL`. */
  readonly connectionString: string;
  /** `--log`: the log's name in the database. */
  readonly log: string;
}

/**
 * Where a store of `kind` keeps its data inside `dir` (or, for PostgreSQL, in the database), for
 * the startup line and INFO.
 */
export function dataLocation(kind: StoreKind, dir: string, postgres?: PostgresLog): string {
  if (kind === 'memory') return '(memory)';
  // The store's own description: the connection string without its password. Nothing connects yet.
  if (kind === 'postgres')
    return (postgresStore(postgres, 'everysec').stats() as { location: string }).location;
  if (kind === 'sqlite') return path.resolve(dir, 'kv.db');
  return path.resolve(dir, 'appendonlydir');
}

/** Opens a new store on the same data with the given policy. */
export type StoreFactory = (appendfsync: FsyncPolicy) => EventStore;

/** How the AOF store is tuned for a server (other stores ignore it). */
export interface AofTuning {
  /**
   * Under `always`, fsync on the event loop as Redis does (see `AofStoreOptions.fsyncOnEventLoop`):
   * a process that only serves commands loses nothing by blocking for the disk, and on few cores
   * the fsync then competes with no other work (measured in the README).
   */
  readonly fsyncOnEventLoop: boolean | 'adaptive';
}

/**
 * Makes the server's store factory: the one place that changes between stores. The server calls
 * it again with another policy when CONFIG SET appendfsync reopens the app on the same data.
 * `aof` tunes the AOF store (default: the fsync of `always` on the event loop, as Redis).
 */
export function storeFactory(
  kind: StoreKind,
  dir: string,
  aof: AofTuning = { fsyncOnEventLoop: true },
  postgres?: PostgresLog,
): StoreFactory {
  switch (kind) {
    case 'postgres':
      postgresStore(postgres, 'everysec');
      return (appendfsync) => postgresStore(postgres, appendfsync);
    case 'sqlite':
      return (appendfsync) => new SqliteWalStore({ file: path.join(dir, 'kv.db'), appendfsync });
    case 'memory': {
      // A MemoryStore's log outlives close(): reopening the same instance keeps the data.
      const memory = new MemoryStore();
      return () => memory;
    }
    case 'aof':
      return (appendfsync) => new AofStore({ dir, appendfsync, fsyncOnEventLoop: aof.fsyncOnEventLoop });
    default:
      throw new ConfigError(`unknown store ${JSON.stringify(kind)} (expected ${STORE_KINDS.join(', ')})`);
  }
}

/** A PostgresStore on `postgres` (which `--store postgres` requires). */
function postgresStore(postgres: PostgresLog | undefined, appendfsync: FsyncPolicy): PostgresStore {
  if (postgres === undefined || postgres.connectionString === '')
    throw new ConfigError('--store postgres needs --database-url postgres://… (or DATABASE_URL)');
  return new PostgresStore({ connectionString: postgres.connectionString, log: postgres.log, appendfsync });
}
