import * as path from 'node:path';
import { ConfigError, type EventStore, type FsyncPolicy, MemoryStore } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';

/** The stores the kv-server runs on (`--store`). */
export type StoreKind = 'aof' | 'sqlite' | 'memory';

/** The store kinds, default first. */
export const STORE_KINDS: readonly StoreKind[] = ['aof', 'sqlite', 'memory'];

/** Where a store of `kind` keeps its data inside `dir`, for the startup line and INFO. */
export function dataLocation(kind: StoreKind, dir: string): string {
  if (kind === 'memory') return '(memory)';
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
  readonly fsyncOnEventLoop: boolean;
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
): StoreFactory {
  switch (kind) {
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
