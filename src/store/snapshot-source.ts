import type { JsonValue } from '../events/json';

/**
 * A consistent, frozen view of the state at one sequence number. Commands keep changing the live
 * state while a snapshot is read: the snapshot still shows the state as it was when taken.
 * It must be released when done, or the state keeps its copy-on-write overlay forever.
 */
export interface StateSnapshot {
  /** The sequence number of the last event the snapshot includes (0 for none). */
  readonly seq: number;
  /** The number of keys. */
  readonly size: number;
  /**
   * The projections version that computed this state (`createApp({ projectionsVersion })`),
   * absent for an unversioned app. A compacting store records it with the snapshot it writes.
   */
  readonly projectionsVersion?: string;
  /** The entries; may be read lazily, across many event-loop turns. */
  entries(): IterableIterator<[string, JsonValue]>;
  /** Ends the snapshot; the state merges its overlay back. Idempotent. */
  release(): void;
}

/** Given to a store so it can take a snapshot at the exact moment it switches logs. */
export interface SnapshotSource {
  /**
   * Takes a snapshot of the state as of the last event passed to `append`. O(1): nothing is
   * copied until the state changes. At most one snapshot is open at a time.
   */
  takeSnapshot(): StateSnapshot;
}
