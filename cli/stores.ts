import {
  type EventStore,
  type Logger,
  type StateSnapshot,
  type StoreContext,
  StoreLockedError,
  systemClock,
} from '../src/index';
import { type CliError, invalid } from './errors';
import { note } from './output';

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

/**
 * Opens `store` (new, unopened) and so holds its lock while `work` runs. Refuses with one line
 * naming the holder when a live process has the store open.
 */
export async function withStoreLocked<T>(
  store: EventStore,
  what: string,
  work: (store: EventStore) => Promise<T>,
): Promise<T> {
  try {
    await store.open(toolContext());
  } catch (err) {
    if (err instanceof StoreLockedError) throw lockRefused(what, err);
    throw err;
  }
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/** The refusal when a live process holds the lock: exit 1, naming the holder. */
export function lockRefused(what: string, err: StoreLockedError): CliError {
  return invalid(`refusing to ${what}: ${err.message}; stop that process first`);
}
