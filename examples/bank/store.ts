import { ConfigError, type EventStore, MemoryStore } from 'appendonly';

/** The stores the demo can run on, chosen by `--store` or `APPENDONLY_STORE`. */
export type StoreKind = 'aof' | 'sqlite' | 'memory';

/**
 * Makes the demo's store: the one binding that changes when an app moves between stores.
 * Everything else (handlers, projections, commands) stays the same.
 */
export function makeStore(kind: StoreKind, dataDir: string): EventStore {
  switch (kind) {
    case 'memory':
      return new MemoryStore();
    default:
      throw new ConfigError(`unknown store ${JSON.stringify(kind)} (expected aof, sqlite or memory); data dir ${dataDir}`);
  }
}
