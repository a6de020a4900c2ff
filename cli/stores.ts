import { AofStore } from '../adapters/aof/index';
import { SqliteWalStore } from '../adapters/sqlite-wal/index';
import {
  type EventStore,
  type Logger,
  type StateSnapshot,
  type StoreContext,
  StoreLockedError,
  systemClock,
} from '../src/index';
import { invalid } from './errors';
import { note } from './output';
import type { AofTarget, SqliteTarget, Target } from './target';

/*
 * The tool takes the same single-writer lock as the stores, by opening the store itself: the
 * AOF store's lock is the abstract socket of adapters/common/dir-lock, the SQLite store's is
 * SQLite's exclusive locking mode. Opening the store rather than re-implementing the lock means
 * the tool can never disagree with a running app about who holds it. AofStore.open reads the
 * manifest but no record, so a damaged log can still be locked and repaired.
 */

/** A context for a store opened by the tool: warnings go to stderr; compaction takes `snapshot`, if given. */
export function toolContext(snapshot?: () => StateSnapshot): StoreContext {
  const logger: Logger = {
    info: () => {},
    warn: (m) => note(`warning: ${m}`),
    error: (m) => note(`error: ${m}`),
  };
  return {
    logger,
    clock: systemClock,
    snapshots: {
      takeSnapshot: () => {
        if (snapshot === undefined)
          throw new Error('the appendonly tool does not compact through this store');
        return snapshot();
      },
    },
  };
}

/** A new (unopened) store for a target. */
export function storeFor(target: Target): EventStore {
  if (target.kind === 'aof') {
    return new AofStore({
      dir: target.dataDir,
      appendDirname: target.appendDirname,
      appendFilename: target.appendFilename,
      autoRewritePercentage: 0,
    });
  }
  return new SqliteWalStore({ file: target.file, autoRewritePercentage: 0 });
}

/**
 * Opens the store at `target` and so holds its lock while `work` runs. Refuses with one line
 * naming the holder when a live process has the store open.
 */
export async function withStoreLocked<T>(
  target: AofTarget | SqliteTarget,
  what: string,
  work: (store: EventStore) => Promise<T>,
): Promise<T> {
  const store = storeFor(target);
  try {
    await store.open(toolContext());
  } catch (err) {
    if (err instanceof StoreLockedError)
      throw invalid(`refusing to ${what}: ${err.message}; stop that process first`);
    throw err;
  }
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}
