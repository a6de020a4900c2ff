import * as path from 'node:path';
import { ConfigError, type EventStore, type FsyncPolicy, MemoryStore } from 'appendonly';
import { AofStore } from 'appendonly/adapters/aof';
import { SqliteWalStore } from 'appendonly/adapters/sqlite-wal';

/** The stores the demo can run on, chosen by `--store` or `APPENDONLY_STORE`. */
export type StoreKind = 'aof' | 'sqlite' | 'memory';

/**
 * Makes the demo's store: the one binding that changes when an app moves between stores.
 * Everything else (handlers, projections, commands) stays the same.
 */
export function makeStore(kind: string, dataDir: string, appendfsync: FsyncPolicy = 'everysec'): EventStore {
  switch (kind) {
    case 'aof':
      return new AofStore({ dir: dataDir, appendfsync });
    case 'sqlite':
      return new SqliteWalStore({ file: path.join(dataDir, 'bank.db'), appendfsync });
    case 'memory':
      return new MemoryStore();
    default:
      throw new ConfigError(`unknown store ${JSON.stringify(kind)}: use aof, sqlite or memory`);
  }
}
